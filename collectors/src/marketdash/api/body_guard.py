"""What a request must show before its body is read: a size within the cap, and a valid token.

Parsing JSON costs CPU on the event loop. Without this, anyone could make the API parse megabytes of
JSON without a token (the token is checked by a dependency, which FastAPI solves after the body) and
stall every other request. So, before the body is read:
- a declared Content-Length over `max_body_bytes` (over `open_paths`' own cap for the paths without a
  token: a login is a few hundred bytes) is answered 413;
- a request that carries a body (POST, PUT, PATCH) to any path but the login must carry a bearer token
  whose signature, expiry, issuer and audience hold (401 otherwise; whether its user still exists and
  its password version are checked later, with the database);
and while the body streams, one that grows past the cap (a chunked upload declares no length) is cut
and answered 413.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketdash.api.tokens import InvalidTokenError, TokenIssuer

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLargeError(HTTPException):
    """Raised by the guarded `receive`; an HTTPException, so FastAPI's body reader lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {limit} bytes")


class BodyGuardMiddleware:
    def __init__(
        self, app: ASGIApp, tokens: TokenIssuer, max_body_bytes: int, open_paths: dict[str, int]
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes
        # Paths whose body is read without a token -> their (small) cap.
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = min(self.max_body_bytes, self.open_paths.get(scope["path"], self.max_body_bytes))
        refusal = self._refusal(scope, limit)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit)
            return message

        await self.app(scope, guarded_receive, send)

    def _refusal(self, scope: Scope, limit: int) -> JSONResponse | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0").strip()
        if not length.isdigit() or int(length) > limit:
            return JSONResponse(
                {"detail": f"request body larger than {limit} bytes"}, status.HTTP_413_CONTENT_TOO_LARGE
            )
        if scope["method"] not in WITH_BODY or scope["path"] in self.open_paths:
            return None
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise InvalidTokenError("missing bearer token: POST /api/auth/token first")
            self.tokens.claims(token.strip())
        except InvalidTokenError as error:
            return JSONResponse(
                {"detail": str(error)}, status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
            )
        return None
