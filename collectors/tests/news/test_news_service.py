"""The feeder end to end against local feed/API servers and an InfluxDB write endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.news.service import NewsFeeder
from marketdash.news.settings import NewsSettings
from marketdash_testing.news_servers import (
    RECENT,
    HttpServer,
    InfluxCapture,
    Item,
    atom,
    conditional,
    rss,
    static,
)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    feeder: NewsFeeder
    writer: InfluxWriter
    registry: CollectorRegistry
    clock: Clock

    async def poll(self, name: str):
        return await self.feeder.poll(self.feeder.source(name))

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def feeder(
    tmp_path: Path, influx_url: str, max_body_bytes: int = 256 * 1024, **settings: object
) -> AsyncIterator[Rig]:
    config = NewsSettings(
        data_dir=tmp_path,
        max_body_bytes=max_body_bytes,
        connect_timeout_s=1,
        read_timeout_s=1,
        total_timeout_s=1,
        **settings,
    )
    clock = Clock()
    news = NewsFeeder(config, InfluxSettings(url=influx_url, token="t", flush_interval_s=0.05), clock=clock)
    await news.writer.start()
    try:
        yield Rig(news, news.writer, news.registry, clock)
    finally:
        assert await news.writer.flush(5)
        await news.writer.close()
        await news.close()


def feeds(server: HttpServer, *names: str, **extra: object) -> list[dict[str, object]]:
    return [{"name": name, "url": server.url(f"/{name}"), **extra} for name in names]


def fields_of(line: str) -> tuple[str, str]:
    """(measurement+tags, fields) of a line protocol line, split on the first unescaped space."""
    head, fields = re.split(r"(?<!\\) ", line, maxsplit=1)
    return head, fields.rsplit(" ", 1)[0]


async def test_rss_and_atom_items_become_points_with_text_as_fields(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/wire"] = static(
            rss(
                [
                    Item(
                        "Bitcoin plunges 10% as exchange hack drains $200M",
                        "https://news.example/btc-hack",
                        "1",
                        RECENT,
                        'Exchange says "funds safe", BTC and ETH slide',
                        ["Crypto"],
                    ),
                    Item("Apple beats estimates, raises guidance", "https://news.example/aapl", "2", RECENT),
                ]
            )
        )
        server.routes["/atomfeed"] = static(
            atom([Item("Gold hits record high", "https://other.example/gold", "urn:g", RECENT)]),
            "application/atom+xml",
        )
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "wire", "atomfeed")) as rig:
            wire = await rig.poll("wire")
            atom_outcome = await rig.poll("atomfeed")
            await rig.writer.flush(5)
        assert wire.result == "ok"
        assert len(wire.new_items) == 2
        assert atom_outcome.result == "ok"
        assert [i.assets for i in atom_outcome.new_items] == [("XAU",)]

    hack = wire.new_items[0]
    assert hack.assets == ("BTC/USDT", "ETH/USDT")
    assert hack.sentiment < -0.6
    assert hack.published == RECENT
    news = influx.measurement("news")
    assert len(news) == 3
    assert {b for b, _ in influx.lines} == {"news"}
    for line in news + influx.measurement("news_mention"):
        head, _ = fields_of(line)
        assert "http" not in head
        assert "plunges" not in head
    head, fields = fields_of(next(line for line in news if "btc-hack" in line))
    assert head == "news,source=wire"
    assert 'title="Bitcoin plunges 10% as exchange hack drains $200M"' in fields
    assert 'url="https://news.example/btc-hack"' in fields
    assert 'summary="Exchange says \\"funds safe\\", BTC and ETH slide"' in fields
    assert 'assets="BTC/USDT,ETH/USDT"' in fields
    assert 'categories="Crypto"' in fields
    assert f"sentiment={hack.sentiment!r}" in fields
    timestamp = int(next(line for line in news if "btc-hack" in line).rsplit(" ", 1)[1])
    assert 0 <= timestamp - int(RECENT.timestamp()) * 1000 < 1000
    mentions = sorted(fields_of(line)[0] for line in influx.measurement("news_mention"))
    assert mentions == [
        "news_mention,asset_class=commodity,source=atomfeed,symbol=XAU",
        "news_mention,asset_class=crypto,source=wire,symbol=BTC/USDT",
        "news_mention,asset_class=crypto,source=wire,symbol=ETH/USDT",
        "news_mention,asset_class=equity,source=wire,symbol=AAPL",
    ]


async def test_second_poll_is_a_304_and_restarts_keep_validators_and_seen_items(tmp_path):
    body = rss([Item("Ether rallies 12% after upgrade", "https://news.example/eth", "e1", RECENT)])
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/cond"] = conditional(body, '"abc"', "Mon, 02 Mar 2026 10:00:00 GMT")
        server.routes["/plain"] = static(body)  # no validators: only de-duplication can tell it is old
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "cond", "plain")) as rig:
            first = await rig.poll("cond")
            second = await rig.poll("cond")
            plain = await rig.poll("plain")
            assert rig.metric("marketdash_news_fetches_total", source="cond", result="not_modified") == 1
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "cond", "plain")) as rig:  # a restart
            after_restart = await rig.poll("cond")
            plain_again = await rig.poll("plain")
            assert rig.metric("marketdash_news_items_total", source="plain", outcome="duplicate") == 1
    assert (first.result, len(first.new_items)) == ("ok", 1)
    assert second.result == "not_modified"
    assert after_restart.result == "not_modified"
    assert server.seen("/cond")[2].headers["If-None-Match"] == '"abc"'
    assert plain.new_items == ()
    assert plain_again.new_items == ()
    assert len(influx.measurement("news")) == 1


async def test_duplicates_across_sources_are_written_once(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/one"] = static(
            rss(
                [
                    Item(
                        "Solana network suffers hours-long outage",
                        "https://www.site.example/sol?utm_source=rss",
                        "a",
                        RECENT,
                    )
                ]
            )
        )
        server.routes["/two"] = static(
            rss(
                [
                    Item(
                        "Solana network suffers hours-long outage", "http://site.example/sol/", "zz", RECENT
                    ),  # same URL
                    Item(
                        "Solana Network Suffers Hours-Long Outage", "https://mirror.example/copy", "q", RECENT
                    ),  # same story
                    Item("A different story", "https://site.example/other", "b", RECENT),
                ]
            )
        )
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "one", "two")) as rig:
            one, two = await rig.poll("one"), await rig.poll("two")
            assert rig.metric("marketdash_news_items_total", source="two", outcome="duplicate") == 2
    assert [i.title for i in one.new_items] == ["Solana network suffers hours-long outage"]
    assert [i.title for i in two.new_items] == ["A different story"]
    assert len(influx.measurement("news")) == 2


async def test_a_broken_feed_yields_its_readable_items_and_is_reported(tmp_path, caplog):
    body = rss(
        [Item(f"Readable headline number {i}", f"https://news.example/{i}", str(i), RECENT) for i in range(3)]
    )
    broken = body.replace("<title>Readable headline number 2</title>", "<title>Broken & <unclosed</title>")
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/broken"] = static(broken)
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "broken")) as rig:
            with caplog.at_level(logging.WARNING):
                outcome = await rig.poll("broken")
            assert rig.metric("marketdash_news_feed_problems_total", source="broken") == 1
            assert rig.metric("marketdash_news_source_up", source="broken") == 1
    assert outcome.result == "ok"
    assert outcome.problem
    titles = [i.title for i in outcome.new_items]
    assert titles[:2] == ["Readable headline number 0", "Readable headline number 1"]
    assert any(r.getMessage() == "feed malformed, kept what could be read" for r in caplog.records)


async def test_hostile_feeds_cost_nothing_and_the_others_carry_on(tmp_path):
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><item><title>&b;</title><link>https://evil.example/1</link></item></channel></rss>"""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.5)
        return web.Response(text="<rss/>")

    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/entities"] = static(bomb, ETag='"bomb"')
        server.routes["/huge"] = static(b"<rss>" + b" " * (512 * 1024) + b"</rss>")
        server.routes["/slow"] = slow
        server.routes["/good"] = static(
            rss([Item("Nvidia soars after blowout earnings", "https://news.example/nvda", "n", RECENT)])
        )
        async with feeder(
            tmp_path, influx.base, feeds=feeds(server, "entities", "huge", "slow", "good")
        ) as rig:
            results = {name: (await rig.poll(name)).result for name in ("entities", "huge", "slow", "good")}
            entities = rig.feeder.source("entities").schedule
            assert entities.failures == 1
            assert entities.next_due > rig.clock.now + 180
            assert rig.feeder.store.validators(f"entities {server.url('/entities')}") is None
            assert rig.metric("marketdash_news_source_up", source="huge") == 0
            assert rig.metric("marketdash_news_fetches_total", source="entities", result="refused") == 1
    assert results == {"entities": "refused", "huge": "too_large", "slow": "timeout", "good": "ok"}
    assert [fields_of(line)[0] for line in influx.measurement("news")] == ["news,source=good"]


async def test_429_backs_off_for_at_least_retry_after(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/busy"] = static("Too Many Requests", status=429, **{"Retry-After": "3600"})
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "busy", interval_s=120)) as rig:
            outcome = await rig.poll("busy")
            assert rig.feeder.source("busy").schedule.due_at(rig.clock.now) >= rig.clock.now + 3600
    assert outcome.result == "rate_limited"


async def test_markup_and_script_links_from_a_feed_never_reach_the_panel(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/evil"] = static(
            rss(
                [
                    Item(
                        "<script>alert(1)</script>Tesla <b>rallies</b>",
                        "https://news.example/tsla",
                        "t",
                        RECENT,
                        '<img src=x onerror="alert(1)">Deliveries beat',
                    ),
                    Item("Click me", "javascript:alert(document.cookie)", None, RECENT),
                ]
            )
        )
        async with feeder(tmp_path, influx.base, feeds=feeds(server, "evil")) as rig:
            outcome = await rig.poll("evil")
            assert rig.metric("marketdash_news_items_total", source="evil", outcome="invalid") == 1
    (item,) = outcome.new_items
    assert (item.title, item.summary) == ("Tesla rallies", "Deliveries beat")
    assert not any(c in influx.measurement("news")[0] for c in "<>")


CRYPTOPANIC = {
    "count": 2,
    "next": None,
    "previous": None,
    "results": [
        {
            "kind": "news",
            "domain": "coindesk.com",
            "source": {"title": "CoinDesk", "region": "en", "domain": "coindesk.com", "path": None},
            "title": "XRP soars after court win against SEC",
            "published_at": (RECENT.isoformat().replace("+00:00", "Z")),
            "slug": "XRP-soars-after-court-win-against-SEC",
            "id": 19873455,
            "url": "https://cryptopanic.com/news/19873455/XRP-soars-after-court-win-against-SEC",
            "created_at": RECENT.isoformat().replace("+00:00", "Z"),
            "currencies": [
                {
                    "code": "XRP",
                    "title": "XRP",
                    "slug": "ripple",
                    "url": "https://cryptopanic.com/news/ripple/",
                }
            ],
            "votes": {
                "negative": 0,
                "positive": 11,
                "important": 6,
                "liked": 3,
                "disliked": 0,
                "lol": 0,
                "toxic": 0,
                "saved": 1,
                "comments": 0,
            },
        },
        {
            "kind": "news",
            "source": {"title": "The Block", "domain": "theblock.co"},
            "title": "Market wrap: quiet Sunday",
            "published_at": RECENT.isoformat(),
            "id": 19873456,
            "slug": "market-wrap",
            "instruments": [{"code": "ETH", "title": "Ethereum"}],
        },
        {"kind": "news", "id": 3},
    ],
}

NEWSAPI = {
    "status": "ok",
    "totalResults": 3,
    "articles": [
        {
            "source": {"id": "reuters", "name": "Reuters"},
            "author": "Staff",
            "title": "Stocks tumble as recession fears mount",
            "description": "The S&P 500 fell 2%.",
            "url": "https://www.reuters.example/markets/stocks-tumble",
            "urlToImage": "https://www.reuters.example/img.jpg",
            "publishedAt": RECENT.isoformat().replace("+00:00", "Z"),
            "content": "Stocks fell ... [+1234 chars]",
        },
        {
            "source": {"id": None, "name": "[Removed]"},
            "title": "[Removed]",
            "description": "[Removed]",
            "url": "https://removed.com",
            "publishedAt": "1970-01-01T00:00:00Z",
        },
        {
            "source": {"id": None, "name": "Blog"},
            "title": None,
            "url": "https://blog.example/x",
            "publishedAt": RECENT.isoformat(),
        },
    ],
}


async def test_cryptopanic_and_newsapi_in_their_documented_formats(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/api/developer/v2/posts/"] = static(json.dumps(CRYPTOPANIC), "application/json")
        server.routes["/v2/top-headlines"] = static(json.dumps(NEWSAPI), "application/json")
        async with feeder(
            tmp_path,
            influx.base,
            cryptopanic_token="cp-secret",
            cryptopanic_url=server.url("/api/developer/v2/posts/"),
            newsapi_key="na-secret",
            newsapi_url=server.url("/v2/top-headlines"),
        ) as rig:
            panic = await rig.poll("cryptopanic")
            newsapi = await rig.poll("newsapi")
            assert rig.metric("marketdash_news_items_total", source="cryptopanic", outcome="invalid") == 0
    cp_request = server.seen("/api/developer/v2/posts/")[0]
    assert cp_request.query["auth_token"] == "cp-secret"
    assert cp_request.query["public"] == "true"
    na_request = server.seen("/v2/top-headlines")[0]
    assert na_request.headers["X-Api-Key"] == "na-secret"
    assert "apiKey" not in na_request.query
    assert [(i.title, i.publisher, i.assets) for i in panic.new_items] == [
        ("XRP soars after court win against SEC", "CoinDesk", ("XRP/USDT",)),
        ("Market wrap: quiet Sunday", "The Block", ("ETH/USDT",)),
    ]
    assert panic.problem == "1 posts without a title skipped"
    assert panic.new_items[0].sentiment > 0.3
    (article,) = newsapi.new_items
    assert (article.publisher, article.summary, article.assets) == (
        "Reuters",
        "The S&P 500 fell 2%.",
        ("SPX",),
    )
    assert article.sentiment < -0.3
    assert not any("secret" in line for _, line in influx.lines)


async def test_api_errors_and_missing_keys(tmp_path, caplog):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/v2/top-headlines"] = static(
            json.dumps({"status": "error", "code": "apiKeyInvalid", "message": "Your API key is invalid."}),
            "application/json",
        )
        with caplog.at_level(logging.INFO):
            async with feeder(
                tmp_path, influx.base, newsapi_key="bad", newsapi_url=server.url("/v2/top-headlines")
            ) as rig:
                outcome = await rig.poll("newsapi")
                assert [e.source.name for e in rig.feeder.sources] == ["newsapi"]
                assert rig.metric("marketdash_news_source_enabled", source="cryptopanic") == 0
                assert rig.metric("marketdash_news_source_enabled", source="newsapi") == 1
    assert outcome.result == "malformed"
    assert "apiKeyInvalid" in (outcome.problem or "")
    off = [r.getMessage() for r in caplog.records if r.getMessage().startswith("source off")]
    assert off == ["source off: no CryptoPanic token (set MARKETDASH_NEWS_CRYPTOPANIC_TOKEN)"]


async def test_the_loop_polls_each_source_on_its_own_interval_and_stops_promptly(tmp_path):
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/fast"] = static(rss([]))
        server.routes["/slowpoll"] = static(rss([]))
        async with feeder(
            tmp_path,
            influx.base,
            feeds=[*feeds(server, "fast", interval_s=0.1), *feeds(server, "slowpoll", interval_s=10)],
        ) as rig:
            rig.feeder.clock = time.time
            stop = asyncio.Event()
            task = asyncio.create_task(rig.feeder.run(stop))
            await asyncio.sleep(0.6)
            stop.set()
            await asyncio.wait_for(task, 2)
    assert len(server.seen("/fast")) >= 3
    assert len(server.seen("/slowpoll")) == 1


async def test_a_large_feed_is_read_without_holding_the_event_loop(tmp_path):
    """Parsing and scoring thousands of items takes seconds of CPU: meanwhile the loop runs the other
    sources and /healthz. Here a ticker task counts its turns while the poll is under way."""
    items = [
        Item(f"Gold story number {n} lifts miners", f"https://news.example/{n}", str(n), RECENT)
        for n in range(2000)
    ]
    async with HttpServer() as server, InfluxCapture() as influx:
        server.routes["/big"] = static(rss(items))
        async with feeder(
            tmp_path, influx.base, max_body_bytes=4 * 1024 * 1024, feeds=feeds(server, "big")
        ) as rig:
            turns = 0

            async def ticker() -> None:
                nonlocal turns
                while True:
                    await asyncio.sleep(0.01)
                    turns += 1

            ticking = asyncio.create_task(ticker())
            outcome = await rig.poll("big")
            ticking.cancel()
        assert outcome.result == "ok"
        assert len(outcome.new_items) == 2000
    # Held by a blocking parse, the ticker would get a turn or two (during the fetch) in all. Free, it gets
    # fewer than one per 10 ms: the parsing thread holds the GIL for a switch interval or more at a time
    # (16-17 turns in a 0.43 s poll on a 2-core machine), so the bound is well under that.
    assert turns >= 5
