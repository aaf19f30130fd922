"""The one back-off rule: exponential from `initial_s`, capped at `max_s`, half of each wait random."""

from __future__ import annotations

import random

from marketdash.core.backoff import Backoff


def test_the_ceiling_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30  # no overflow however long the outage


def test_each_wait_is_between_half_the_ceiling_and_the_ceiling_and_spread() -> None:
    backoff = Backoff(0.5, 30.0)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(40)]
    assert all(backoff.ceiling(n) / 2 <= d <= backoff.ceiling(n) for n, d in enumerate(delays))
    at_the_cap = delays[10:]
    assert min(at_the_cap) < 25 < max(at_the_cap)  # clients failing together do not retry together


def test_a_negative_attempt_waits_the_initial_wait() -> None:
    assert Backoff(2.0, 10.0).ceiling(-1) == 2.0
