"""Database errors caused by the request's data become 4xx, said in the API's own words.

The models refuse bad input first; these handlers are the net for what only the database can know
(a duplicate name, an owner that does not exist) so that bad input never surfaces as a 500. PostgreSQL's
own messages name tables, constraints and key values: they describe the schema to whoever sends bad
input, so they go to the log and the client gets a sentence about its request.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError, errors
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)


# Constraints a request can run into, by name (PostgreSQL's default names for the migrations' UNIQUEs).
_CONSTRAINTS = {
    "users_username_key": "a user with this username already exists",
    "user_layouts_user_id_layout_name_key": "a layout with this name already exists for this user",
    "user_layouts_one_default_idx": "this user already has a default layout",
}
# What each kind of error means when the constraint is not one of the above.
_KINDS: dict[type[errors.Error], str] = {
    errors.UniqueViolation: "this conflicts with an existing record",
    errors.ForeignKeyViolation: "this refers to something that does not exist",
    errors.CheckViolation: "a value is outside what is allowed",
    errors.NotNullViolation: "a required value is missing",
    errors.DataError: "a value cannot be stored as given",
}


def client_message(error: errors.Error) -> str:
    constraint = error.diag.constraint_name or ""
    if constraint in _CONSTRAINTS:
        return _CONSTRAINTS[constraint]
    if constraint.endswith("_user_id_fkey"):
        return "user_id names no user"
    return next(text for kind, text in _KINDS.items() if isinstance(error, kind))


def _handler(code: int):
    async def handle(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, errors.Error)
        diag = error.diag
        log.info(
            "request refused by the database",
            extra={
                "sqlstate": error.sqlstate,
                "constraint": diag.constraint_name,
                "error": diag.message_primary,
            },
        )
        return JSONResponse({"detail": client_message(error)}, status_code=code)

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
