"""When each source may be polled next: its own interval, its request budget, and back-off after failures.

Pure bookkeeping on a clock passed in, so the service loop and the tests drive it the same way.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from marketdash.core.backoff import Backoff


@dataclass
class RateBudget:
    """At most `max_requests` in any sliding `window_s` seconds (NewsAPI's free plan: 100 a day)."""

    max_requests: int
    window_s: float
    _sent: deque[float] = field(default_factory=deque)

    def _forget_before(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()

    def available_at(self, now: float) -> float:
        """The earliest time a request fits in the budget (`now` if it fits already)."""
        self._forget_before(now)
        if len(self._sent) < self.max_requests:
            return now
        return self._sent[0] + self.window_s

    def spend(self, now: float) -> None:
        self._forget_before(now)
        self._sent.append(now)


@dataclass
class SourceSchedule:
    interval_s: float
    budget: RateBudget | None = None
    max_backoff_s: float = 3600.0
    failures: int = 0
    next_due: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def due_at(self, now: float) -> float:
        due = max(self.next_due, now)
        if self.budget is not None:
            due = max(due, self.budget.available_at(due))
        return due

    def started(self, now: float) -> None:
        if self.budget is not None:
            self.budget.spend(now)

    def succeeded(self, now: float) -> None:
        self.failures = 0
        self.next_due = now + self.interval_s

    def failed(self, now: float, retry_after: float | None = None) -> float:
        """Record a failure; returns the delay chosen before the next attempt."""
        self.failures += 1
        # From the source's own interval (the first failure waits one to two intervals); a server's
        # Retry-After is a floor, up to a day (NewsAPI's free plan counts its requests by the day).
        delay = Backoff(self.interval_s, self.max_backoff_s).delay(self.failures, self.rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 24 * 3600.0))
        self.next_due = now + delay
        return delay
