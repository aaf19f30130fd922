"""Token-bucket rate limiting, in process memory."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Allows ``per_minute`` requests a minute per key, in bursts of up to ``per_minute``.

    Keys idle long enough to have a full bucket are forgotten (they would be allowed anyway), and the
    least recently seen are dropped beyond ``max_keys``, so a flood of spoofed keys cannot exhaust memory.
    """

    def __init__(
        self, per_minute: int, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def hit(self, key: str) -> int:
        """Take one token for ``key``: 0 when allowed, else whole seconds until the next token."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0
        else:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[key] = (tokens, now)
        self._evict(now)
        return wait

    def blocked(self, key: str) -> int:
        """Like `hit` without taking a token: whole seconds until ``key`` has one, 0 when it has."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return 0 if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) / self.rate))

    def _evict(self, now: float) -> None:
        full_after = self.capacity / self.rate
        while self._buckets:
            key, (_tokens, last) = next(iter(self._buckets.items()))
            if len(self._buckets) <= self.max_keys and now - last < full_after:
                break
            del self._buckets[key]
