"""The cache backends' two operations of the project's own (the configured backends are their
timed subclasses in pms/metrics.py).

- `count(key, timeout)`: adds one to a counter that lives `timeout` seconds from its first count
  and returns the new value (the per-user rate limit, pms/throttles.py).
- `get_and_count(key, counter, timeout)`: `get(key)` and `count(counter, timeout)` at once (an
  API request reads its user and counts itself against the rate limit, accounts/authentication.py).

On Redis each is one round trip (a pipeline of SET NX, INCR and, for the second, GET); elsewhere
they are the stock operations one after the other. Measured in docs/performance.md ("Shortcuts
measured", the throttle and the user in one round trip).
"""

from typing import Any

from django.core.cache.backends.locmem import LocMemCache as StockLocMemCache
from django_redis.cache import RedisCache as StockRedisCache


class CountingCache:
    """`count` and `get_and_count` from the stock operations: two or three round trips."""

    def count(self, key: str, timeout: int) -> int:
        try:
            return int(self.incr(key))  # type: ignore[attr-defined]
        except ValueError:
            # The counter's first count (or it just expired): start it, unless a concurrent
            # count did first.
            if self.add(key, 1, timeout):  # type: ignore[attr-defined]
                return 1
            return int(self.incr(key))  # type: ignore[attr-defined]

    def get_and_count(self, key: str, counter: str, timeout: int) -> tuple[Any, int]:
        return self.get(key), self.count(counter, timeout)  # type: ignore[attr-defined]


class RedisCache(CountingCache, StockRedisCache):
    """django-redis, with each operation one pipelined round trip. The counter is created at 0
    with its expiry (SET NX EX) and incremented in the same pipeline, so its first count and its
    expiry cannot be separated, and every count is exact across instances."""

    def _counting(self, counter: str, timeout: int, *reads: str) -> list[Any]:
        """One pipeline: GET of each of `reads`, then the count; their answers in that order."""
        pipeline = self.client.get_client(write=True).pipeline(transaction=False)
        for key in reads:
            pipeline.get(self.client.make_key(key))
        counter = self.client.make_key(counter)
        pipeline.set(counter, 0, ex=timeout, nx=True)
        pipeline.incr(counter)
        *values, _created, count = pipeline.execute()
        return [*values, int(count)]

    def count(self, key: str, timeout: int) -> int:
        (count,) = self._counting(key, timeout)
        return int(count)

    def get_and_count(self, key: str, counter: str, timeout: int) -> tuple[Any, int]:
        value, count = self._counting(counter, timeout, key)
        return (None if value is None else self.client.decode(value)), int(count)


class LocMemCache(CountingCache, StockLocMemCache):
    """Django's local-memory cache (the embedded default)."""
