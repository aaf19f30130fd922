"""The three looks of R4.4, as colours every panel takes from here (never a colour literal elsewhere).

Grafana loads no custom theme (its themes are compiled into its frontend), so each look is two things:
- the built-in Grafana theme closest to it for the chrome, selected by `?theme=` in the links between
  variants (and by user/team preference): Classic -> `gloom`, Light -> `light`, Trading Dark -> `matrix`;
- these colours, written into every panel of that variant's dashboards (thresholds, fixed colours,
  candle colours, the ticker's CSS), since panel colours in dashboard JSON are literals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Palette:
    key: str  # used in dashboard UIDs, file names and tags
    name: str
    grafana_theme: str
    background: str
    text: str
    gain: str
    loss: str
    flat: str
    border: str
    # Overlays on the price chart, and volume bars, chosen to stay readable on `background`.
    sma_fast: str
    sma_slow: str
    volume: str
    font: str = "'IBM Plex Mono', Consolas, 'Courier New', monospace"


# R3.2 exactly: #0a0a0a background, #ff8c00 text, #00d4aa gain, #ff3b3b loss, #1a1a2e borders.
BLOOMBERG_CLASSIC = Palette(
    key="classic",
    name="Bloomberg Classic",
    grafana_theme="gloom",
    background="#0a0a0a",
    text="#ff8c00",
    gain="#00d4aa",
    loss="#ff3b3b",
    flat="#8a8a8a",
    border="#1a1a2e",
    sma_fast="#ffd700",
    sma_slow="#4da6ff",
    volume="#5c4a2e",
)

# White + navy (R4.4); gain/loss darkened so they keep contrast on white.
BLOOMBERG_LIGHT = Palette(
    key="light",
    name="Bloomberg Light",
    grafana_theme="light",
    background="#ffffff",
    text="#0b1f4b",
    gain="#007a5e",
    loss="#c62828",
    flat="#6b7280",
    border="#d0d7e2",
    sma_fast="#b45309",
    sma_slow="#1d4ed8",
    volume="#b8c4d9",
)

# Black + neon green (R4.4), on Grafana's `matrix` theme (black canvas, monospace).
TRADING_DARK = Palette(
    key="trading",
    name="Trading Dark",
    grafana_theme="matrix",
    background="#000000",
    text="#39ff14",
    gain="#39ff14",
    loss="#ff2e63",
    flat="#7a7a7a",
    border="#0f2f1a",
    sma_fast="#f5f500",
    sma_slow="#00e5ff",
    volume="#1f4d2b",
)

PALETTES: tuple[Palette, ...] = (BLOOMBERG_CLASSIC, BLOOMBERG_LIGHT, TRADING_DARK)
