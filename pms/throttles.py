"""Rate limits. State lives in the default cache: Redis when REDIS_URL is set, so every app
instance counts against the same limits."""

from dataclasses import dataclass
from typing import Any

from rest_framework import throttling


class AuthRateThrottle(throttling.SimpleRateThrottle):
    """Credential endpoints (token, refresh, OAuth, OTP), per client IP, whoever is signed in."""

    scope = "auth"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRateThrottle(throttling.UserRateThrottle):
    """Per-user limit counted in fixed windows: one atomic count per request.

    DRF's own throttle keeps the time of every request of the window in one cache entry that it
    reads, edits and rewrites whole on each request (two round trips, and a pickled list as long
    as the user's requests of the last minute), and two instances can overwrite each other's
    update. A counter per (user, window) is exact across instances; the price is that a burst
    straddling two windows may reach twice the rate for a moment.

    A request that signs in with a token is counted by the authentication, in the round trip
    that reads its user (`counted_window`, accounts/authentication.py); this throttle then
    only compares. Other requests (a session, a forced user in tests) are counted here. Both
    measured in docs/performance.md ("Shortcuts measured").
    """

    duration: int  # set by DRF from the rate

    def _window(self, base: str) -> "Window":
        now = self.timer()
        index = int(now // self.duration)
        return Window(
            base=base,
            key=f"{base}:{index}",
            timeout=self.duration + 1,
            now=now,
            ends=(index + 1) * self.duration,
        )

    @classmethod
    def counted_window(cls, request: Any, user_id: Any) -> "Window | None":
        """The window the request of `user_id` is to be counted in, when its view limits
        users with this throttle; left on the request for the throttle to find."""
        view = (getattr(request, "parser_context", None) or {}).get("view")
        if view is None:
            return None
        throttle = next((t for t in view.get_throttles() if isinstance(t, cls)), None)
        if throttle is None or throttle.rate is None:
            return None
        base = throttle.cache_format % {"scope": throttle.scope, "ident": user_id}
        request.user_window = window = throttle._window(base)
        return window

    def allow_request(self, request, view):  # type: ignore[no-untyped-def]
        if self.rate is None:
            return True
        base = self.get_cache_key(request, view)  # the user's, or the client IP's
        window = getattr(request, "user_window", None)
        if window is None or window.count is None or window.base != base:
            window = self._window(base)
            window.count = self.cache.count(window.key, window.timeout)
        self.window = window
        return window.count <= self.num_requests

    def wait(self):  # type: ignore[no-untyped-def]
        return max(0.0, self.window.ends - self.window.now)


@dataclass
class Window:
    """The counter of one user's current window (`UserRateThrottle`)."""

    base: str  # the throttle's key of the user
    key: str  # the counter's cache key: the base and the window's index
    timeout: int  # seconds it lives
    now: float
    ends: float
    count: int | None = None  # once counted
