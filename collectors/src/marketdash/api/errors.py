"""Database errors caused by the request's data become 4xx with PostgreSQL's own explanation.

The models refuse bad input first; these handlers are the net for what only the database can know
(a duplicate name, an owner that does not exist) so that bad input never surfaces as a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError, errors
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)


def _message(error: errors.Error) -> str:
    diag = error.diag
    return "; ".join(part for part in (diag.message_primary, diag.message_detail) if part) or str(error)


def _handler(code: int):
    async def handle(_request: Request, error: Exception) -> JSONResponse:
        message = _message(error) if isinstance(error, errors.Error) else str(error)
        return JSONResponse({"detail": message}, status_code=code)

    return handle


async def _unavailable(_request: Request, error: Exception) -> JSONResponse:
    log.warning("database unavailable", extra={"error": str(error)})
    return JSONResponse(
        {"detail": "database unavailable, retry later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
    # FastAPI's default echoes each bad input back: that can be a password, and a NaN that JSON cannot
    # encode (a 500). Where and what is wrong is enough.
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _too_deep(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "request body is nested too deeply"}, status_code=400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(errors.UniqueViolation, _handler(status.HTTP_409_CONFLICT))
    app.add_exception_handler(errors.ForeignKeyViolation, _handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(errors.CheckViolation, _handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(errors.NotNullViolation, _handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(errors.DataError, _handler(status.HTTP_422_UNPROCESSABLE_CONTENT))
    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    # json.loads recurses: a body of 100k nested brackets would otherwise be a 500.
    app.add_exception_handler(RecursionError, _too_deep)
