"""Panel pieces shared by the dashboards, each coloured from a palette (never a colour literal elsewhere)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    TableCellHeight,
)
from grafana_foundation_sdk.models.dashboard import (
    DynamicConfigValue,
    FieldColorModeId,
    GridPos,
    Threshold,
    ThresholdsMode,
)

from .palette import Palette


def at(x: int, y: int, w: int, h: int) -> GridPos:
    """An explicit grid position: layouts are designed on Grafana's 24-column grid, not flowed."""
    return GridPos(x=x, y=y, w=w, h=h)


def fixed(color: str) -> dash.FieldColor:
    return dash.FieldColor().mode(FieldColorModeId.FIXED).fixed_color(color)


def palette_colors() -> dash.FieldColor:
    """Many series told apart (pie slices, one line per container): Grafana's categorical palette, by name so
    an asset keeps its colour across panels. A dashboard cannot redefine that palette (docs/dashboards.md)."""
    return dash.FieldColor().mode(FieldColorModeId.PALETTE_CLASSIC_BY_NAME)


def by_thresholds() -> dash.FieldColor:
    return dash.FieldColor().mode(FieldColorModeId.THRESHOLDS)


def gain_loss(p: Palette) -> dash.ThresholdsConfig:
    """Red below zero, green from zero: every change % on every dashboard."""
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(None, p.loss), Threshold(0, p.gain)])
    )


def load_levels(p: Palette) -> dash.ThresholdsConfig:
    """Usage gauges: gain colour while calm, text colour from 75 %, loss colour from 90 %."""
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(None, p.gain), Threshold(75, p.text), Threshold(90, p.loss)])
    )


def color_override(color: str) -> list[DynamicConfigValue]:
    return [DynamicConfigValue("color", {"mode": "fixed", "fixedColor": color})]


def sentiment_icons(p: Palette) -> list[dict[str, object]]:
    """R3.4's 🟢🟡🔴: VADER's usual cut-offs (±0.05) around neutral."""
    return [
        {
            "type": "range",
            "options": {"from": 0.05, "to": 1, "result": {"text": "🟢", "color": p.gain, "index": 0}},
        },
        {
            "type": "range",
            "options": {"from": -0.05, "to": 0.05, "result": {"text": "🟡", "color": p.text, "index": 1}},
        },
        {
            "type": "range",
            "options": {"from": -1, "to": -0.05, "result": {"text": "🔴", "color": p.loss, "index": 2}},
        },
    ]


def status_colors(p: Palette, ok: tuple[str, ...], bad: tuple[str, ...]) -> list[dict[str, object]]:
    options: dict[str, object] = {}
    for index, value in enumerate(ok):
        options[value] = {"color": p.gain, "index": index}
    for index, value in enumerate(bad, start=len(ok)):
        options[value] = {"color": p.loss, "index": index}
    return [{"type": "value", "options": options}]


def up_down(p: Palette) -> list[dict[str, object]]:
    return [
        {
            "type": "value",
            "options": {
                "1": {"text": "UP", "color": p.gain, "index": 0},
                "0": {"text": "DOWN", "color": p.loss, "index": 1},
            },
        }
    ]


def big_number(p: Palette, title: str) -> stat.Panel:
    """A terminal-style figure: palette text colour, no sparkline unless asked."""
    return (
        stat.Panel()
        .title(title)
        .color_scheme(fixed(p.text))
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .text_mode(BigValueTextMode.VALUE_AND_NAME)
    )


def data_table(p: Palette, title: str) -> table.Panel:
    return table.Panel().title(title).color_scheme(fixed(p.text)).cell_height(TableCellHeight.SM)
