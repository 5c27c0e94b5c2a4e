"""Rate limits. State lives in the default cache: Redis when REDIS_URL is set, so every app
instance counts against the same limits."""

from rest_framework import throttling


class AuthRateThrottle(throttling.SimpleRateThrottle):
    """Credential endpoints (token, refresh, OAuth, OTP), per client IP, whoever is signed in."""

    scope = "auth"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
