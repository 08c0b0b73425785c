"""Per-key rate limits: a token bucket for each API-key scope.

    limiter = RateLimiter(per_minute=60, burst=10)
    wait = limiter.take("team-a")   # 0.0: go ahead; else the seconds until a request is allowed (429 + Retry-After)

A scope starts with `burst` tokens; each request takes one; tokens come back at `per_minute / 60` a second,
up to `burst`. One bucket per scope, so one busy key cannot use up another key's requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError(f"per_minute and burst must be at least 1, got {per_minute} and {burst}")
        self.rate, self.burst, self.clock = per_minute / 60.0, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # scope -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request for `key`: 0.0 when allowed, else the seconds until one is (nothing is taken)."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
