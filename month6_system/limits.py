"""Per-key rate limits: a token bucket for each API-key scope.

    limiter = RateLimiter(per_minute=60, burst=10)
    wait = limiter.take("team-a")   # 0.0: go ahead; else the seconds until a request is allowed (429 + Retry-After)

A scope starts with `burst` tokens; each request takes one; tokens come back at `per_minute / 60` a second,
up to `burst`. One bucket per scope, so one busy key cannot use up another key's requests. `RateLimiter`
keeps the buckets in the process (one server); `SharedRateLimiter` keeps them in PostgreSQL, so replicas
behind one load balancer enforce one limit per key between them (a row lock per key, the database's clock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.sql import Database


def _check(per_minute: int, burst: int) -> None:
    if per_minute < 1 or burst < 1:
        raise ValueError(f"per_minute and burst must be at least 1, got {per_minute} and {burst}")


def refill(tokens: float, at: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    """One request against a bucket that held `tokens` at time `at`: (tokens left, seconds to wait: 0 = allowed)."""
    tokens = min(burst, tokens + max(0.0, now - at) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        _check(per_minute, burst)
        self.rate, self.burst, self.clock = per_minute / 60.0, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # scope -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request for `key`: 0.0 when allowed, else the seconds until one is (nothing is taken)."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens, wait = refill(tokens, at, now, self.rate, self.burst)
            self._buckets[key] = (tokens, now)
            return wait


class SharedRateLimiter:
    """`RateLimiter` over the `rate_buckets` table of a PostgreSQL `Database` (month 6's migrations make it)."""

    def __init__(self, db: Database, per_minute: int, burst: int) -> None:
        _check(per_minute, burst)
        self.db, self.rate, self.burst = db, per_minute / 60.0, float(burst)

    def take(self, key: str) -> float:
        with self.db.transaction():
            self.db.execute("INSERT INTO rate_buckets (key, tokens, at) VALUES (?, ?, extract(epoch FROM "
                            "clock_timestamp())) ON CONFLICT (key) DO NOTHING", (key, self.burst))
            # the row lock makes replicas take from one bucket in turn; the clock is read once it is held
            tokens, at, now = self.db.execute("SELECT tokens, at, extract(epoch FROM clock_timestamp()) FROM "
                                              "rate_buckets WHERE key = ? FOR UPDATE", (key,)).fetchone()
            now = float(now)
            tokens, wait = refill(tokens, at, now, self.rate, self.burst)
            self.db.execute("UPDATE rate_buckets SET tokens = ?, at = ? WHERE key = ?", (tokens, now, key))
            return wait
