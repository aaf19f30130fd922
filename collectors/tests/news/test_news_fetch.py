"""Our HTTP client against real local servers: limits, deadlines, conditional GET, 429."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from marketdash.news.fetch import (
    BodyTooLargeError,
    EncodingRefusedError,
    Fetcher,
    FetchError,
    FetchTimeoutError,
    HttpStatusError,
    Validators,
    parse_retry_after,
)
from marketdash_testing.news_servers import HttpServer, conditional, static

LIMIT = 64 * 1024


def fetcher(total_timeout: float = 5.0) -> Fetcher:
    return Fetcher(max_body_bytes=LIMIT, connect_timeout=2, read_timeout=2, total_timeout=total_timeout)


async def test_conditional_get_sends_the_validators_and_takes_a_304():
    async with HttpServer() as server:
        server.routes["/feed"] = conditional("<rss/>", '"v1"', "Wed, 21 Oct 2026 07:28:00 GMT")
        client = fetcher()
        first = await client.get(server.url("/feed"))
        second = await client.get(server.url("/feed"), validators=first.validators)
        await client.aclose()
    assert first.status == 200
    assert first.body == b"<rss/>"
    assert first.validators == Validators('"v1"', "Wed, 21 Oct 2026 07:28:00 GMT")
    assert second.not_modified
    assert second.body == b""
    sent = server.seen("/feed")[1].headers
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert "If-None-Match" not in server.seen("/feed")[0].headers


async def test_a_declared_oversize_body_is_refused_before_it_is_read():
    async with HttpServer() as server:
        server.routes["/huge"] = static(b"x" * (LIMIT + 1))
        client = fetcher()
        with pytest.raises(BodyTooLargeError, match="Content-Length"):
            await client.get(server.url("/huge"))
        await client.aclose()


async def test_an_undeclared_endless_body_is_cut_off_while_streaming():
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"<item>" + b"y" * 8192 + b"</item>"
        try:
            for _ in range(10_000):  # ~80 MB if nobody stopped reading
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async with HttpServer() as server:
        server.routes["/endless"] = endless
        client = fetcher()
        with pytest.raises(BodyTooLargeError, match="while streaming"):
            await client.get(server.url("/endless"))
        await client.aclose()
    assert sent < 16 * 1024 * 1024  # the client hung up long before the 80 MB were sent


async def test_a_gzip_bomb_counts_its_decompressed_size():
    bomb = gzip.compress(b"\0" * (50 * LIMIT))
    async with HttpServer() as server:
        server.routes["/bomb"] = static(bomb, **{"Content-Encoding": "gzip"})
        client = fetcher()
        assert len(bomb) < LIMIT
        with pytest.raises(BodyTooLargeError):
            await client.get(server.url("/bomb"))
        await client.aclose()


async def test_a_high_ratio_bomb_is_never_inflated_past_the_budget():
    # 20 MB of zeros in ~20 KB: decompressed a whole chunk at a time, it would be 20 MB in memory at once.
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)
    async with HttpServer() as server:
        server.routes["/bomb"] = static(bomb, **{"Content-Encoding": "gzip"})
        client = fetcher()
        tracemalloc.start()
        try:
            with pytest.raises(BodyTooLargeError):
                await client.get(server.url("/bomb"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await client.aclose()
    assert peak < 4 * 1024 * 1024


async def test_stacked_or_unasked_content_encodings_are_refused():
    nested = gzip.compress(gzip.compress(b"\0" * (8 * 1024 * 1024)))
    async with HttpServer() as server:
        server.routes["/nested"] = static(nested, **{"Content-Encoding": "gzip, gzip"})
        server.routes["/brotli"] = static(b"....", **{"Content-Encoding": "br"})
        client = fetcher()
        for path in ("/nested", "/brotli"):
            with pytest.raises(EncodingRefusedError):
                await client.get(server.url(path))
        await client.aclose()


async def test_deflate_is_read_zlib_wrapped_or_raw():
    text = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    async with HttpServer() as server:
        server.routes["/zlib"] = static(zlib.compress(text), **{"Content-Encoding": "deflate"})
        server.routes["/raw"] = static(raw.compress(text) + raw.flush(), **{"Content-Encoding": "deflate"})
        client = fetcher()
        for path in ("/zlib", "/raw"):
            assert (await client.get(server.url(path))).body == text
        await client.aclose()


async def test_deflate_split_after_its_first_byte_is_still_read():
    text = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
    wrapped = zlib.compress(text)

    async def first_byte_alone(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Encoding": "deflate"})
        await response.prepare(request)
        await response.write(wrapped[:1])
        await asyncio.sleep(0.05)
        await response.write(wrapped[1:])
        await response.write_eof()
        return response

    async with HttpServer() as server:
        server.routes["/split"] = first_byte_alone
        client = fetcher()
        assert (await client.get(server.url("/split"))).body == text
        await client.aclose()


async def test_a_truncated_compressed_body_is_an_error_not_a_short_feed():
    whole = gzip.compress(b"<rss>" + b"<item>x</item>" * 2000 + b"</rss>")
    async with HttpServer() as server:
        server.routes["/cut"] = static(whole[: len(whole) // 2], **{"Content-Encoding": "gzip"})
        client = fetcher()
        with pytest.raises(FetchError, match="truncated"):
            await client.get(server.url("/cut"))
        await client.aclose()


async def test_a_server_trickling_bytes_hits_the_overall_deadline():
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        try:
            for _ in range(100):  # each byte well inside the read timeout, the whole far past the deadline
                await response.write(b"<")
                await asyncio.sleep(0.1)
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async with HttpServer() as server:
        server.routes["/slow"] = trickle
        client = fetcher(total_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(FetchTimeoutError):
            await client.get(server.url("/slow"))
        await client.aclose()
    # Cut at the 1 s deadline, not after the 10 s the trickle lasts; the margin is for a loaded machine.
    assert time.monotonic() - started < 6


async def test_429_carries_its_retry_after_and_errors_are_fetch_errors():
    async with HttpServer() as server:
        server.routes["/limited"] = static("slow down", status=429, **{"Retry-After": "120"})
        server.routes["/broken"] = static("oops", status=503)
        client = fetcher()
        with pytest.raises(HttpStatusError) as limited:
            await client.get(server.url("/limited"))
        with pytest.raises(HttpStatusError) as broken:
            await client.get(server.url("/broken"))
        with pytest.raises(FetchError):
            await client.get("http://127.0.0.1:9/closed-port")
        await client.aclose()
    assert limited.value.reason == "rate_limited"
    assert limited.value.retry_after == 120
    assert broken.value.reason == "http_error"
    assert broken.value.status == 503


def test_retry_after_as_an_http_date():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 90
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
