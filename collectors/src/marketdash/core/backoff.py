"""The one back-off rule of every retry and slow-down in the collectors.

Retry n (0 for the first) may wait up to `initial_s * 2**n`, never more than `max_s`: the ceiling. The wait
drawn is half the ceiling fixed and half random ("equal jitter"), so that clients that failed together (our
network went down, an exchange restarted) do not come back in lock-step, and none retries sooner than half
the ceiling. A pacing that must stay regular (a poller slowed down by rate limits) takes the ceiling itself.

A server's Retry-After is not part of the rule: each caller decides how far it trusts one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class Backoff:
    initial_s: float
    max_s: float

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry `attempt`; `attempt` 0 gives `initial_s`."""
        return min(self.max_s, self.initial_s * 2 ** min(max(attempt, 0), 62))

    def delay(self, attempt: int, rng: random.Random = _JITTER) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


# Reconnecting to a database or an exchange: the first retry within a second, then at most a minute apart.
RECONNECT = Backoff(1.0, 60.0)
