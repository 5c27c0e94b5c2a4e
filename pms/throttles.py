"""Rate limits. State lives in the default cache: Redis when REDIS_URL is set, so every app
instance counts against the same limits."""

from rest_framework import throttling


class AuthRateThrottle(throttling.SimpleRateThrottle):
    """Credential endpoints (token, refresh, OAuth, OTP), per client IP, whoever is signed in."""

    scope = "auth"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRateThrottle(throttling.UserRateThrottle):
    """Per-user limit counted in fixed windows: one atomic increment per request.

    DRF's own throttle keeps the time of every request of the window in one cache entry that it
    reads, edits and rewrites whole on each request (two round trips, and a pickled list as long
    as the user's requests of the last minute), and two instances can overwrite each other's
    update. A counter per (user, window) costs one round trip whatever the user's rate and is
    exact across instances; the price is that a burst straddling two windows may reach twice the
    rate for a moment. Measured against DRF's in docs/performance.md ("Shortcuts measured").
    """

    def allow_request(self, request, view):  # type: ignore[no-untyped-def]
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:
            # First request of the window (or its counter just expired): start it, unless a
            # concurrent request did first.
            count = 1 if self.cache.add(key, 1, self.duration + 1) else self.cache.incr(key)
        return count <= self.num_requests

    def wait(self):  # type: ignore[no-untyped-def]
        return max(0.0, self.window_ends - self.now)
