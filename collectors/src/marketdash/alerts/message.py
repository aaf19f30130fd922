"""The text of a notification, in the team's template (the same on every channel):

    🚨 ALERT: BTC/USDT
    Price: $67,500 (+3.2% in 1h)
    Condition: Above $67,000
    Time: 2026-02-12 14:32 UTC

Prices of assets quoted in dollars (a /USD, /USDT or /USDC pair, equities, commodities) carry a "$";
indices and other pairs are plain numbers. The change shown is over the rule's window when the price of
that time is known, else it is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from marketdash.alerts.rules import Rule

_DOLLAR_QUOTES = ("/USD", "/USDT", "/USDC")
_DOLLAR_CLASSES = frozenset({"equity", "commodity"})


@dataclass(frozen=True, slots=True)
class Firing:
    rule: Rule
    # What the condition measured (price, change in percent, volume ratio).
    value: float
    price: float | None
    change_pct: float | None
    # When the rule fired, and the time of the market data it fired on.
    at: float
    observed_at: float


def window_label(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def format_number(value: float) -> str:
    """Thousands separated; as many decimals as a price of that size needs (67,500 / 1.0834 / 0.000012)."""
    magnitude = abs(value)
    if magnitude >= 1000:
        decimals = 0 if value == round(value) else 2
    elif magnitude >= 1:
        decimals = 2 if magnitude >= 100 else 4
    elif magnitude == 0:
        decimals = 0
    else:
        decimals = 8
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text and magnitude < 1000 else text


def format_price(value: float, asset: str, asset_class: str | None) -> str:
    dollar = asset.endswith(_DOLLAR_QUOTES) or asset_class in _DOLLAR_CLASSES
    sign = "-" if value < 0 else ""
    return f"{sign}{'$' if dollar else ''}{format_number(abs(value))}"


def condition_text(rule: Rule, asset_class: str | None) -> str:
    window = window_label(rule.window_minutes)
    if rule.condition == "above":
        return f"Above {format_price(rule.threshold, rule.asset, asset_class)}"
    if rule.condition == "below":
        return f"Below {format_price(rule.threshold, rule.asset, asset_class)}"
    if rule.condition == "pct_change":
        return f"Change of {format_number(rule.threshold)}% or more in {window}"
    return f"Volume {format_number(rule.threshold)}x its usual level or more in {window}"


def title(firing: Firing) -> str:
    return f"🚨 ALERT: {firing.rule.asset}"


def render(firing: Firing, asset_class: str | None) -> str:
    rule = firing.rule
    lines = [title(firing)]
    if firing.price is not None:
        price = f"Price: {format_price(firing.price, rule.asset, asset_class)}"
        if firing.change_pct is not None:
            price += f" ({firing.change_pct:+.1f}% in {window_label(rule.window_minutes)})"
        lines.append(price)
    if rule.condition == "volume_spike":
        lines.append(f"Volume: {firing.value:.1f}x usual in {window_label(rule.window_minutes)}")
    lines.append(f"Condition: {condition_text(rule, asset_class)}")
    lines.append(f"Time: {datetime.fromtimestamp(firing.at, UTC):%Y-%m-%d %H:%M} UTC")
    return "\n".join(lines)
