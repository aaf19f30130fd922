"""Helpers of the dashboard tests: the committed JSON, and a real InfluxQL parser (Debian's influxd 1.6)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketdash_testing.servers import free_port

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "files" / "grafana" / "dashboards"


def committed_models() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(COMMITTED.glob("*.json"))
    }


@pytest.fixture(scope="session")
def influxql_url() -> Iterator[str]:
    """InfluxDB 1.6 on 127.0.0.1 with the buckets as databases (retention policy autogen, as DBRP maps them).

    InfluxDB 2's InfluxQL endpoint comes from the same parser lineage; 1.6 is what Debian ships.
    """
    binary = shutil.which("influxd")
    if binary is None:
        pytest.fail(
            "influxd not found: apt-get install influxdb (the InfluxQL parser of the dashboard tests)"
        )
    root = Path(tempfile.mkdtemp(prefix="marketdash-influxql-"))
    http_port, rpc_port = free_port(), free_port()
    config = root / "influxdb.conf"
    config.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""
    )
    process = subprocess.Popen(
        [binary, "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("influxd did not answer /ping within 20 s")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)
