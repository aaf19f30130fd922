"""News feeder throughput on one core: headlines scored per second, feed items processed per second.

    .venv/bin/python bench/news_feeder.py [--items 200] [--rounds 20]

"Processed" is the whole path of a poll after the bytes arrive: XML safety check, feedparser, cleaning,
de-duplication in SQLite, sentiment, asset tagging and line protocol queued to the writer. A second figure
adds the HTTP fetch from a local server in the same process (so the server's work is on the same core).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

from marketdash.core.influx import InfluxSettings
from marketdash.news.evaluation import read_labelled
from marketdash.news.sentiment import FinanceSentiment, plain_score
from marketdash.news.service import NewsFeeder
from marketdash.news.settings import NewsSettings

HEADLINES = Path(__file__).resolve().parent.parent / "collectors/tests/news/data/headlines.tsv"


def rss(round_no: int, count: int, headlines: list[str]) -> bytes:
    when = datetime.now(UTC) - timedelta(hours=1)
    # A number makes each title unique: repeated titles would be de-duplicated, which is cheaper.
    items = "".join(
        f"<item><title>{escape(headlines[i % len(headlines)])} ({round_no}.{i})</title>"
        f"<link>https://news.example/{round_no}/{i}?utm_source=rss</link><guid>{round_no}-{i}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<description>&lt;p&gt;{escape(headlines[(i * 7) % len(headlines)])}"
        " &lt;b&gt;more&lt;/b&gt;&lt;/p&gt;</description>"
        "<category>Markets</category></item>"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>bench</title>'
        f"<link>https://news.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def bench_scoring(headlines: list[str], rounds: int = 5, seconds: float = 1.0) -> None:
    """Ours and plain VADER in alternate rounds (a noisy machine slows both alike); medians and ratio."""
    model = FinanceSentiment()
    scorers = {"finance VADER (ours)": model.score, "plain VADER": plain_score}
    rates: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(rounds):
        for name, score in scorers.items():
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                for headline in headlines:
                    score(headline)
                done += len(headlines)
            rates[name].append(done / (time.perf_counter() - started))
    for name, measured in rates.items():
        print(f"headlines scored/s, {name:22s}: {statistics.median(measured):10,.0f}")
    ours, plain = (statistics.median(measured) for measured in rates.values())
    print(f"ours / plain VADER (medians of {rounds} rounds) : {ours / plain:10.2f}")


async def bench_pipeline(items: int, rounds: int, headlines: list[str]) -> None:
    bodies = [rss(r, items, headlines) for r in range(rounds)]
    served = iter(bodies)

    async def feed(_: web.Request) -> web.Response:
        return web.Response(body=next(served), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/feed", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    with tempfile.TemporaryDirectory() as tmp:
        settings = NewsSettings(
            data_dir=Path(tmp),
            feeds=[{"name": "bench", "url": f"http://127.0.0.1:{port}/feed"}],
            max_body_bytes=50 * 1024 * 1024,
            connect_timeout_s=5,
            read_timeout_s=30,
            total_timeout_s=60,
        )
        # The writer is never started: write() only queues, which is all a poll does with it.
        feeder = NewsFeeder(
            settings, InfluxSettings(url="http://127.0.0.1:9", max_buffered_points=10_000_000)
        )
        writer = feeder.writer
        source = feeder.source("bench")
        # From bytes: what the feeder does with a body once it has it (every item is new).
        half = rounds // 2
        started = time.perf_counter()
        for body in bodies[:half]:
            parsed = source.source.parse(body, "application/rss+xml")
            await feeder._ingest("bench", parsed.entries)
        elapsed = time.perf_counter() - started
        print(f"feed items processed/s (parse..queue)    : {half * items / elapsed:10,.0f}")
        # Through HTTP: whole polls of the local server.
        for _ in range(half):
            next(served)
        started = time.perf_counter()
        written = 0
        for _ in range(rounds - half):
            outcome = await feeder.poll(source)
            written += len(outcome.new_items)
        elapsed = time.perf_counter() - started
        print(f"feed items processed/s (HTTP poll..queue): {written / elapsed:10,.0f}")
        print(f"points queued for InfluxDB               : {writer.pending:10,d}")
        await feeder.close()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200, help="items per feed body")
    parser.add_argument(
        "--rounds", type=int, default=20, help="feed bodies (half from bytes, half over HTTP)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    headlines = [headline for _, headline in read_labelled(HEADLINES)]
    print(f"one core, {len(headlines)} distinct headlines, {args.items} items x {args.rounds} feed bodies")
    bench_scoring(headlines)
    asyncio.run(bench_pipeline(args.items, args.rounds, headlines))


if __name__ == "__main__":
    main()
