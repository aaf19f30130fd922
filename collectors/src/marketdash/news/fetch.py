"""Polite HTTP fetching for the news sources, on our own httpx client.

Every byte a source sends counts against a limit while it streams in, after decompression, and the
decompressor is never asked for more than the budget left: a gzip bomb is cut off as early as a plain
oversize body, whatever its ratio (a decoder that inflates whole chunks would first build gigabytes from
a few kilobytes of nested gzip). One content encoding at most (gzip or deflate, the ones we ask for):
stacked or unknown encodings are refused. The whole exchange has a deadline (a server trickling one byte
a second never trips a per-read timeout), and conditional GET headers go out when the store has
validators from the last 200.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

USER_AGENT = "marketdash-news/0.1 (+self-hosted market dashboard)"


class FetchError(Exception):
    """A fetch that produced no usable body; `reason` is the metrics label."""

    reason = "error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BodyTooLargeError(FetchError):
    reason = "too_large"


class FetchTimeoutError(FetchError):
    reason = "timeout"


class EncodingRefusedError(FetchError):
    reason = "refused"


class HttpStatusError(FetchError):
    reason = "http_error"

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        if status == 429:
            self.reason = "rate_limited"


@dataclass(frozen=True)
class Validators:
    """What a server gave us to ask "changed since?" next time."""

    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class FetchResult:
    status: int  # 200 or 304
    body: bytes
    content_type: str
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


class Fetcher:
    """One httpx client shared by every source (connection reuse), with the limits of the settings."""

    def __init__(
        self,
        *,
        max_body_bytes: int,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.total_timeout = total_timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        validators: Validators | None = None,
    ) -> FetchResult:
        request_headers = dict(headers or {})
        if validators:
            request_headers.update(validators.request_headers())
        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._get(url, params, request_headers, validators)
        except TimeoutError:
            raise FetchTimeoutError(f"no complete answer within {self.total_timeout:g}s") from None
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(f"{type(exc).__name__}: {exc}") from None
        except httpx.HTTPError as exc:
            # Connection refused, reset, bad gzip, too many redirects, ...: the source is unreachable now.
            raise FetchError(f"{type(exc).__name__}: {exc}") from None

    async def _get(
        self,
        url: str,
        params: dict[str, str] | None,
        headers: dict[str, str],
        validators: Validators | None,
    ) -> FetchResult:
        async with self._client.stream("GET", url, params=params, headers=headers) as response:
            if response.status_code == 304:
                return FetchResult(304, b"", "", validators or Validators())
            if response.status_code != 200:
                raise HttpStatusError(
                    response.status_code,
                    f"HTTP {response.status_code}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                raise BodyTooLargeError(f"Content-Length {declared} exceeds {self.max_body_bytes} bytes")
            body = await self._bounded_body(response)
            return FetchResult(
                200,
                body,
                response.headers.get("Content-Type", ""),
                Validators(response.headers.get("ETag"), response.headers.get("Last-Modified")),
            )

    async def _bounded_body(self, response: httpx.Response) -> bytes:
        encoding = _content_encoding(response.headers.get("Content-Encoding", ""))
        decoder: zlib._Decompress | None = None
        chunks: list[bytes] = []
        received = 0

        def take(data: bytes) -> None:
            nonlocal received
            received += len(data)
            if received > self.max_body_bytes:
                raise BodyTooLargeError(f"body exceeds {self.max_body_bytes} bytes (cut off while streaming)")
            chunks.append(data)

        pending = b""  # the first bytes, until there are enough to tell the deflate flavour
        try:
            async for raw in response.aiter_raw():
                if encoding is None:
                    take(raw)
                    continue
                if decoder is None:
                    pending += raw
                    if len(pending) < 2:
                        continue
                    decoder, raw, pending = _decompressor(encoding, pending), pending, b""
                while raw:
                    # One byte over the budget is enough to know it is exceeded.
                    take(decoder.decompress(raw, self.max_body_bytes - received + 1))
                    raw = decoder.unconsumed_tail
            if encoding is not None:
                decoder = decoder or _decompressor(encoding, pending)
                take(decoder.decompress(pending, self.max_body_bytes - received + 1) + decoder.flush())
                if not decoder.eof:
                    raise FetchError("the compressed body is truncated")
        except zlib.error as exc:
            raise FetchError(f"the body does not decompress: {exc}") from None
        return b"".join(chunks)


def _content_encoding(header: str) -> str | None:
    """The body's one content encoding, or None; stacked or unknown encodings are refused."""
    encodings = [part.strip().lower() for part in header.split(",") if part.strip()]
    encodings = [encoding for encoding in encodings if encoding != "identity"]
    if len(encodings) > 1:
        raise EncodingRefusedError(f"stacked content encodings refused: {header}")
    if not encodings:
        return None
    if encodings[0] in ("gzip", "x-gzip", "deflate"):
        return encodings[0]
    raise EncodingRefusedError(f"content encoding {encodings[0]!r} was not asked for")


def _decompressor(encoding: str, first: bytes) -> zlib._Decompress:
    if encoding != "deflate":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    # "deflate" is zlib-wrapped as HTTP says, or raw as some servers send it: told apart by its header.
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and int.from_bytes(first[:2], "big") % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
