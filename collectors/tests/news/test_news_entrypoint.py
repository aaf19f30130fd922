"""`python -m marketdash.news` as deployed: env settings, a local feed, real victoria-metrics, /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx

from marketdash.news.sentiment import FinanceSentiment
from marketdash_testing.news_servers import RECENT, HttpServer, Item, rss, static
from marketdash_testing.servers import VictoriaMetrics, free_port

HEADLINES = [
    ("Bitcoin plunges 10% as exchange hack drains $200M", "https://news.example/hack"),
    ("Ethereum rallies to all-time high", "https://news.example/eth"),
    ("Fed to release meeting minutes on Wednesday", "https://news.example/fed"),
]


async def test_the_service_writes_scores_to_influx_and_serves_metrics(
    tmp_path, victoria_metrics_server: VictoriaMetrics
):
    metrics_port = free_port()
    async with HttpServer() as server:
        server.routes["/wire"] = static(rss([Item(t, u, u, RECENT) for t, u in HEADLINES]))
        env = {
            **os.environ,
            "MARKETDASH_NEWS_FEEDS": json.dumps(
                [{"name": "wire", "url": server.url("/wire"), "interval_s": 0.5}]
            ),
            "MARKETDASH_NEWS_DATA_DIR": str(tmp_path / "data"),
            "MARKETDASH_NEWS_METRICS_HOST": "127.0.0.1",
            "MARKETDASH_NEWS_METRICS_PORT": str(metrics_port),
            "MARKETDASH_INFLUX_URL": victoria_metrics_server.url,
            "MARKETDASH_INFLUX_TOKEN": "news-writer",
            "MARKETDASH_INFLUX_FLUSH_INTERVAL_S": "0.1",
        }
        env.pop("MARKETDASH_NEWS_CRYPTOPANIC_TOKEN", None)
        env.pop("MARKETDASH_NEWS_NEWSAPI_KEY", None)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "marketdash.news",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stored: dict = {}
            async with httpx.AsyncClient() as client:
                for _ in range(150):  # up to ~15 s
                    await asyncio.sleep(0.1)
                    stored = await asyncio.to_thread(
                        victoria_metrics_server.export, '{__name__=~"news_sentiment|news_mention_sentiment"}'
                    )
                    if len(stored) >= 3 and len(server.seen("/wire")) >= 2:
                        break
                exposition = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                healthz = await client.get(f"http://127.0.0.1:{metrics_port}/healthz")
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 15)

    assert process.returncode == 0, stderr.decode()[-2000:]
    model = FinanceSentiment()
    expected = sorted(model.score(title) for title, _ in HEADLINES)
    by_metric = {}
    for labels, samples in stored.items():
        by_metric.setdefault(dict(labels)["__name__"], []).append((dict(labels), samples))
    news = by_metric["news_sentiment"]
    assert [labels["source"] for labels, _ in news] == ["wire"]
    assert sorted(value for _, value in news[0][1]) == expected  # three points, each its headline's score
    mentions = {
        labels["symbol"]: [value for _, value in samples]
        for labels, samples in by_metric["news_mention_sentiment"]
    }
    assert mentions == {
        "BTC/USDT": [model.score(HEADLINES[0][0])],
        "ETH/USDT": [model.score(HEADLINES[1][0])],
    }
    # Polled again after its interval, nothing new: written once.
    assert len(server.seen("/wire")) >= 2
    assert 'marketdash_news_items_total{outcome="new",source="wire"} 3.0' in exposition
    assert 'marketdash_news_items_total{outcome="duplicate",source="wire"}' in exposition
    assert 'marketdash_news_source_enabled{source="newsapi"} 0.0' in exposition
    assert "marketdash_influx_points_written_total" in exposition
    assert healthz.status_code == 200
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert sum(1 for entry in logs if entry["event"].startswith("source off")) == 2  # said once each
    assert any(entry["event"] == "service stopped" and entry["service"] == "news" for entry in logs)
