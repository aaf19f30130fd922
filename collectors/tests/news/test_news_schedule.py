"""Per-source intervals, request budgets and back-off, on a clock the test holds."""

from __future__ import annotations

import random

from marketdash.news.schedule import RateBudget, SourceSchedule


def test_success_waits_the_interval():
    schedule = SourceSchedule(interval_s=180)
    assert schedule.due_at(1000) == 1000
    schedule.succeeded(1000)
    assert schedule.due_at(1001) == 1180


def test_failures_back_off_exponentially_up_to_the_cap():
    schedule = SourceSchedule(interval_s=60, max_backoff_s=600, rng=random.Random(1))
    delays = [schedule.failed(0) for _ in range(6)]
    assert all(60 * 2**n / 2 <= d <= 60 * 2**n for n, d in enumerate(delays[:3], 1))
    assert max(delays) <= 600
    assert delays[-1] >= 600 / 2
    schedule.succeeded(0)
    assert schedule.failures == 0
    assert schedule.due_at(0) == 60


def test_retry_after_is_a_floor():
    schedule = SourceSchedule(interval_s=60, rng=random.Random(1))
    assert schedule.failed(0, retry_after=900) == 900
    assert schedule.due_at(10) == 900


def test_budget_delays_a_due_poll_until_it_fits():
    schedule = SourceSchedule(interval_s=10, budget=RateBudget(max_requests=3, window_s=100))
    now = 0.0
    for _ in range(3):
        assert schedule.due_at(now) == now
        schedule.started(now)
        schedule.succeeded(now)
        now += 10
    # A fourth request inside the window would break the budget: it waits for the first to age out.
    assert schedule.due_at(now) == 100
