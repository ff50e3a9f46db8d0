"""A token bucket: at most ``burst`` SMS parts at once, then ``rate_per_minute`` on average.

Reservations may run the bucket into debt: taking more tokens than are there returns how long to wait before
sending, and later callers queue behind that debt. Time is passed in, so the arithmetic is testable as is.
"""

from __future__ import annotations

import asyncio


class TokenBucket:
    """Pure bucket arithmetic over a monotonic clock given by the caller."""

    def __init__(self, *, rate_per_minute: float, burst: int, now: float) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least one")
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def reserve(self, now: float, tokens: int = 1) -> float:
        """Take ``tokens`` now; the seconds to wait before using them (0 when they were there)."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        self._tokens -= tokens
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s


class RateLimiter:
    """The bucket on the event loop's clock: ``await acquire()`` returns when one more part may go."""

    def __init__(self, *, rate_per_minute: float, burst: int) -> None:
        self._loop_time = asyncio.get_running_loop().time
        self.bucket = TokenBucket(rate_per_minute=rate_per_minute, burst=burst, now=self._loop_time())

    async def acquire(self, tokens: int = 1) -> None:
        wait = self.bucket.reserve(self._loop_time(), tokens)
        if wait > 0:
            await asyncio.sleep(wait)
