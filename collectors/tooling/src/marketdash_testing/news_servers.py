"""The outside world of the news feeder, at HTTP level on 127.0.0.1: feed/API servers and an InfluxDB write
endpoint that keeps the line protocol it receives (victoria-metrics keeps only numbers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from aiohttp import web

# Publication time of test items: recent enough to be written, in whole seconds like real feeds.
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class HttpServer:
    """An aiohttp server whose routes a test sets by path; it remembers every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(request.path, dict(request.query), dict(request.headers)))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def __aenter__(self) -> HttpServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def static(
    body: bytes | str, content_type: str = "application/rss+xml", status: int = 200, **headers: str
) -> Handler:
    data = body.encode() if isinstance(body, str) else body

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=data, status=status, headers={"Content-Type": content_type, **headers})

    return handler


def conditional(body: str, etag: str, last_modified: str) -> Handler:
    """A feed that honours If-None-Match / If-Modified-Since like a well-behaved server."""

    async def handler(request: web.Request) -> web.Response:
        if (
            request.headers.get("If-None-Match") == etag
            or request.headers.get("If-Modified-Since") == last_modified
        ):
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=body.encode(),
            headers={"Content-Type": "application/rss+xml", "ETag": etag, "Last-Modified": last_modified},
        )

    return handler


class InfluxCapture(HttpServer):
    """`POST /api/v2/write` as InfluxDB 2 answers it (204), keeping each line with the bucket it went to."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []  # (bucket, line)
        self.routes["/api/v2/write"] = self._write

    async def _write(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already undone the writer's Content-Encoding: gzip
        bucket = request.query["bucket"]
        self.lines.extend((bucket, line) for line in body.decode().splitlines() if line)
        return web.Response(status=204)

    def measurement(self, name: str) -> list[str]:
        return [line for _, line in self.lines if line.startswith(name + ",")]


@dataclass
class Item:
    title: str
    link: str
    guid: str | None = None
    published: object = None  # datetime
    summary: str = ""
    categories: list[str] = field(default_factory=list)


def rss(items: list[Item], title: str = "Test feed") -> str:
    entries = []
    for item in items:
        parts = [f"<title>{escape(item.title)}</title>", f"<link>{escape(item.link)}</link>"]
        if item.guid:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.published is not None:
            parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")  # type: ignore[arg-type]
        if item.summary:
            parts.append(f"<description>{escape(item.summary)}</description>")
        parts.extend(f"<category>{escape(c)}</category>" for c in item.categories)
        entries.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link><description>d</description>"
        + "".join(entries)
        + "</channel></rss>"
    )


def atom(items: list[Item], title: str = "Test Atom feed") -> str:
    entries = []
    for item in items:
        updated = item.published.isoformat() if item.published is not None else "2000-01-01T00:00:00Z"  # type: ignore[attr-defined]
        entries.append(
            f'<entry><title>{escape(item.title)}</title><link rel="alternate" href="{escape(item.link)}"/>'
            f"<id>{escape(item.guid or item.link)}</id><updated>{updated}</updated>"
            f'<summary type="html">{escape(item.summary)}</summary></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:test</id><updated>2000-01-01T00:00:00Z</updated>"
        + "".join(entries)
        + "</feed>"
    )
