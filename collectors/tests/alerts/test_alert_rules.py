"""The firing rule (marketdash.alerts.rules) and the message template, on sequences of observations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from marketdash.alerts.message import Firing, format_number, render
from marketdash.alerts.rules import Observation, Rule, RuleState, Verdict, evaluate

RULE = Rule(
    id=1,
    user_id=7,
    asset="BTC/USDT",
    condition="above",
    threshold=100.0,
    window_minutes=60,
    channel="email",
    target=None,
    cooldown_seconds=0,
    version="v1",
)


def run(rule: Rule, values: list[float], *, state: RuleState | None = None, step: float = 1.0):
    """The verdicts for one observation a second, each fresh (None: no data at all)."""
    verdicts = []
    for i, value in enumerate(values):
        now = 1_000.0 + i * step
        observation = None if value is None else Observation(value, now)
        verdict, state = evaluate(rule, state, observation, now, stale_after_s=60, hysteresis=0.01)
        verdicts.append(verdict.value[0].upper() if verdict is not Verdict.HOLD else ".")
    return "".join(verdicts), state


@pytest.mark.parametrize(
    ("condition", "threshold", "values", "expected"),
    [
        # Fires on the crossing, not on every tick above; re-arms only 1 % below; fires again.
        ("above", 100, [90, 99, 100, 105, 101, 99.5, 100.5, 98.9, 99, 102], "..F....R.F"),
        ("below", 100, [110, 100.5, 99, 95, 100.9, 99, 101.1, 99.9], "..F...RF"),
        # pct_change compares the magnitude: a fall counts as much as a rise.
        ("pct_change", 5, [1, -2, -5.5, -6, 4.96, 4.94, 5.2], "..F..RF"),
        ("volume_spike", 3, [1, 2.9, 3.4, 8, 2.98, 2.96, 3.0], "..F..RF"),
    ],
)
def test_each_kind_fires_once_on_its_crossing_and_again_only_after_rearming(
    condition, threshold, values, expected
):
    rule = replace(RULE, condition=condition, threshold=float(threshold))
    verdicts, _ = run(rule, values)
    assert verdicts == expected


def test_a_rule_created_while_its_condition_holds_tells_its_owner_at_once():
    assert run(RULE, [150, 151, 152])[0] == "F.."


def test_cooldown_delays_a_second_firing_until_it_is_over_if_the_condition_still_holds():
    rule = replace(RULE, cooldown_seconds=5)
    verdicts, _ = run(rule, [101, 98, 101, 101, 101, 101, 101, 101])
    # Fired at t=0, re-armed at t=1, crossing again at t=2..4 is inside the cooldown, fires at t=5.
    assert verdicts == "FR...F.."


def test_stale_or_missing_data_never_fires_and_keeps_the_state():
    state = RuleState("v1", armed=True)
    old = Observation(150.0, 1_000.0)
    verdict, after = evaluate(RULE, state, old, 1_061.0, stale_after_s=60, hysteresis=0.01)
    assert verdict is Verdict.STALE
    assert after is state
    verdict, after = evaluate(RULE, state, None, 1_061.0, stale_after_s=60, hysteresis=0.01)
    assert verdict is Verdict.STALE
    assert after is state
    disarmed = RuleState("v1", armed=False, last_fired_at=900.0)
    verdict, after = evaluate(
        RULE, disarmed, Observation(10.0, 1_000.0), 1_100.0, stale_after_s=60, hysteresis=0
    )
    assert verdict is Verdict.STALE
    assert after is disarmed


def test_an_edited_rule_starts_afresh():
    fired = RuleState("v1", armed=False, last_fired_at=999.0)
    edited = replace(RULE, threshold=120.0, version="v2", cooldown_seconds=3600)
    verdict, state = evaluate(
        edited, fired, Observation(130.0, 1_000.0), 1_000.0, stale_after_s=60, hysteresis=0
    )
    assert verdict is Verdict.FIRE
    assert state.version == "v2"


def test_the_message_follows_the_team_template():
    firing = Firing(
        rule=replace(RULE, threshold=67_000.0),
        value=67_500.0,
        price=67_500.0,
        change_pct=3.24,
        at=1_770_906_720.0,  # 2026-02-12 14:32 UTC
        observed_at=1_770_906_719.5,
    )
    assert render(firing, "crypto") == (
        "🚨 ALERT: BTC/USDT\n"
        "Price: $67,500 (+3.2% in 1h)\n"
        "Condition: Above $67,000\n"
        "Time: 2026-02-12 14:32 UTC"
    )
    spike = replace(
        firing,
        rule=replace(RULE, asset="SPX", condition="volume_spike", threshold=3.0, window_minutes=1440),
        value=4.26,
        price=5_012.5,
        change_pct=None,
    )
    assert render(spike, "index").splitlines()[1:3] == ["Price: 5,012.50", "Volume: 4.3x usual in 1d"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(67_500.0, "67,500"), (1.08342, "1.0834"), (0.0000123, "0.0000123"), (2_431.25, "2,431.25")],
)
def test_numbers_carry_the_decimals_their_size_needs(value, text):
    assert format_number(value) == text
