"""When an alert rule fires: on the crossing, once, and again only after it has re-armed.

The rule, for one rule and one observation of what its condition measures (its *value*):
- the value is the last price (above, below), the change of the price in percent over the rule's window
  (pct_change, compared by magnitude), or the window's volume over its usual level (volume_spike);
- the condition *holds* when the value is at or past the threshold: above value >= t, below value <= t,
  pct_change |value| >= t, volume_spike value >= t;
- an *armed* rule whose condition holds fires, unless it fired less than cooldown_seconds ago: then it
  stays armed and fires when the cooldown is over, if the condition still holds. Firing disarms it;
- a disarmed rule re-arms once its value has gone back past the threshold by the hysteresis margin
  m = h·|t| (above: value < t - m; below: value > t + m; the other two: magnitude < t - m), so a price
  wobbling around its threshold fires once, not on every wobble;
- a new rule, or one whose condition, threshold or window was edited, starts armed: when its condition
  already holds, its owner is told at once;
- an observation older than `stale_after_s`, or none at all, decides nothing: the state is kept as it
  was and the rule is reported stale. Stale data never fires a rule.
The state (armed, last firing) is what the engine keeps in PostgreSQL across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

Condition = Literal["above", "below", "pct_change", "volume_spike"]
PRICE_CONDITIONS: frozenset[str] = frozenset({"above", "below"})


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    user_id: int
    asset: str
    condition: Condition
    threshold: float
    window_minutes: int
    channel: str
    target: str | None
    cooldown_seconds: int
    # Changes when what the rule tests changes (condition, threshold, window, asset): its state restarts.
    version: str
    # The rule's own re-arm margin (a fraction of the threshold); None: the engine's default.
    hysteresis: float | None = None


@dataclass(frozen=True, slots=True)
class RuleState:
    version: str
    armed: bool = True
    last_fired_at: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    value: float
    # Unix time of the newest data the value was computed from.
    at: float


class Verdict(Enum):
    FIRE = "fire"
    REARM = "rearm"
    HOLD = "hold"  # nothing to do: the state is unchanged
    STALE = "stale"


def holds(condition: str, value: float, threshold: float) -> bool:
    if condition == "above":
        return value >= threshold
    if condition == "below":
        return value <= threshold
    return abs(value) >= threshold


def _back_past(condition: str, value: float, threshold: float, margin: float) -> bool:
    if condition == "above":
        return value < threshold - margin
    if condition == "below":
        return value > threshold + margin
    return abs(value) < threshold - margin


def evaluate(
    rule: Rule,
    state: RuleState | None,
    observation: Observation | None,
    now: float,
    *,
    stale_after_s: float,
    hysteresis: float,
) -> tuple[Verdict, RuleState]:
    """The verdict for `rule` now, and its state afterwards (the same object when nothing changed)."""
    if state is None or state.version != rule.version:
        state = RuleState(rule.version)
    if observation is None or now - observation.at > stale_after_s:
        return Verdict.STALE, state
    value, threshold = observation.value, rule.threshold
    if not state.armed:
        if _back_past(rule.condition, value, threshold, hysteresis * abs(threshold)):
            return Verdict.REARM, replace(state, armed=True)
        return Verdict.HOLD, state
    if not holds(rule.condition, value, threshold):
        return Verdict.HOLD, state
    if state.last_fired_at is not None and now - state.last_fired_at < rule.cooldown_seconds:
        return Verdict.HOLD, state
    return Verdict.FIRE, replace(state, armed=False, last_fired_at=now)
