"""Reading InfluxDB 2 with Flux over its HTTP API: a query in, rows of strings out.

InfluxDB answers in CSV: one header row per table, tables separated by a blank line (without
annotations, which the reader asks it to leave out). Values stay strings: the caller knows its columns.
"""

from __future__ import annotations

import csv
import io

import aiohttp

from marketdash.core.influx import InfluxSettings


class FluxError(RuntimeError):
    """InfluxDB refused or failed the query; the message carries its status and answer."""


def parse_flux_csv(text: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row or not any(row):
            header = None
        elif header is None:
            header = row
        else:
            rows.append(dict(zip(header, row, strict=True)))
    return rows


def flux_string(value: str) -> str:
    """A Flux string literal: backslash and quote escaped, and `${`, which would start an interpolation."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${").replace("\n", "\\n")
    return f'"{escaped}"'


def flux_set(values: list[str] | set[str]) -> str:
    return "[" + ", ".join(flux_string(value) for value in sorted(values)) + "]"


class FluxReader:
    def __init__(self, settings: InfluxSettings) -> None:
        self._endpoint = settings.url.rstrip("/") + "/api/v2/query"
        self._params = {"org": settings.org}
        self._headers = {"Content-Type": "application/json", "Accept": "application/csv"}
        if settings.token:
            self._headers["Authorization"] = f"Token {settings.token}"
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def rows(self, query: str) -> list[dict[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {"query": query, "dialect": {"annotations": []}}
        try:
            async with self._session.post(
                self._endpoint, params=self._params, json=body, headers=self._headers
            ) as response:
                text = await response.text()
                if response.status != 200:
                    raise FluxError(f"InfluxDB answered {response.status}: {text[:300]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FluxError(f"InfluxDB unreachable: {type(exc).__name__}: {exc}") from exc
        return parse_flux_csv(text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
