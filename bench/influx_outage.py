"""How soon the InfluxDB writer is back to normal after an outage: printed figures, not a timed test.

    .venv/bin/python bench/influx_outage.py [--outage-s 40] [--rate 1000]

A real sink (victoria-metrics, which takes the InfluxDB v2 write API) on loopback; a writer fed --rate
points a second; the sink stopped for --outage-s (long enough for the writer's back-off to grow towards
its 30 s cap), then started again. Measured from the moment the sink answers its /health again: until the
first batch is acknowledged, and until the queue is back under one second's worth of points. Two runs side
by side: the writer as shipped (it asks the sink's /health every `probe_every_s` while it cannot reach it)
and the same writer with the probe effectively off (probe_every_s above the back-off cap), as before.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from marketdash.core.influx import InfluxSettings, InfluxWriter
from marketdash.core.schema import BUCKET_MARKETS, TICKER
from marketdash_testing.servers import VictoriaMetrics, eventually, free_port


async def _feed(writer: InfluxWriter, rate: int, stop: asyncio.Event) -> None:
    series = TICKER.series(source="bench", symbol="BTC/USDT", asset_class="crypto")
    n, start_ms = 0, int(time.time() * 1000) - 3_600_000
    while not stop.is_set():
        writer.write_many(
            BUCKET_MARKETS, [series.line({"last": float(n + i)}, start_ms + n + i) for i in range(rate // 10)]
        )
        n += rate // 10
        await asyncio.sleep(0.1)


async def _run(probe_every_s: float, outage_s: float, rate: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as storage:
        sink = VictoriaMetrics(Path(storage), free_port())
        await asyncio.to_thread(sink.start)
        settings = InfluxSettings(url=sink.url, token="bench", probe_every_s=probe_every_s)
        writer = InfluxWriter(settings)
        stop = asyncio.Event()
        async with writer:
            feeding = asyncio.create_task(_feed(writer, rate, stop))
            await asyncio.sleep(2)
            await asyncio.to_thread(sink.stop)
            await asyncio.sleep(outage_s)
            queued = writer.pending
            await asyncio.to_thread(sink.start)  # returns once /health answers
            back = time.monotonic()
            success_before = writer.last_success
            # Polled every 20 ms: the figures are seconds.
            await eventually(lambda: writer.last_success != success_before, within_s=120)
            first_write = time.monotonic() - back
            await eventually(lambda: writer.pending <= rate, within_s=120)
            drained = time.monotonic() - back
            stop.set()
            await feeding
        await asyncio.to_thread(sink.stop)
    return {"queued_at_restart": queued, "first_write_s": first_write, "normal_s": drained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage-s", type=float, default=40.0)
    parser.add_argument("--rate", type=int, default=1000, help="points per second fed to the writer")
    args = parser.parse_args()
    print(f"sink down {args.outage_s:.0f} s, {args.rate} points/s fed; times from the sink answering again")
    for label, probe in (("probe every 1 s (shipped)", 1.0), ("no probe (back-off only)", 1000.0)):
        figures = asyncio.run(_run(probe, args.outage_s, args.rate))
        print(
            f"  {label:28s} queued {figures['queued_at_restart']:7,} points; first write after"
            f" {figures['first_write_s']:5.1f} s, queue normal after {figures['normal_s']:5.1f} s"
        )


if __name__ == "__main__":
    main()
