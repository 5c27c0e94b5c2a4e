"""Password sign-in lockouts: a stranger can slow an account's sign-ins but not lock its user out.

- **Short lock, per (username, client address)**: django-axes counts the failures of a username
  from one address (`AXES_LOCKOUT_PARAMETERS`); `AXES_FAILURE_LIMIT` of them lock that pair for
  `AXES_COOLOFF_TIME`. The same user signing in from anywhere else is not affected.
- **Account lock, past NIST SP 800-63B's bound**: `ACCOUNT_LOCKOUT_FAILURES` consecutive failures
  from any address lock the account everywhere, until an OTP password reset or a platform
  operator (`manage.py axes_reset_username`) clears it. A successful sign-in ends the streak.

Attempts refused by either lock are not failures (they test no password), so a locked-out
address cannot run the account's streak up. Axes cannot express the account lock itself (one
failure limit for every lockout parameter, and every count expires with the cool-off), so it is a
counter row, `SignInFailureStreak`, kept by this axes handler (`AXES_HANDLER`). Both locks are
audited when they engage; each refused attempt is recorded by the sign-in view as usual.
"""

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_credentials
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import SignInFailureStreak, User
from audit.services import audit_record


def _account_locked(username: str | None) -> bool:
    if not username:
        return False
    return SignInFailureStreak.objects.filter(
        user__username=username, failures__gte=settings.ACCOUNT_LOCKOUT_FAILURES
    ).exists()


def _count_failure(username: str) -> int:
    """One more failure in the account's streak; the streak's length (0: no such account)."""
    user = User.objects.filter(username=username).only("pk").first()
    if user is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        streak, _ = SignInFailureStreak.objects.select_for_update().get_or_create(
            user=user, defaults={"last_failure_at": now}
        )
        streak.failures += 1
        streak.last_failure_at = now
        streak.save(update_fields=["failures", "last_failure_at"])
    return streak.failures


def _audit_lock(request: Any, action: str, username: str, failures: int | None) -> None:
    audit_record(
        request=request,
        action=action,
        resource_type="auth",
        status_code=429,
        actor_username=username,
        details={"failures": failures},
    )


class LockoutHandler(AxesDatabaseHandler):
    """axes' database handler plus the account lock (module docstring)."""

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        if _account_locked(get_client_username(request, credentials)):
            request.account_locked_out = True
            return True
        return bool(super().is_locked(request, credentials))

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        # Set by axes' backend when a lock refused the attempt (with
        # AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off): no password was tried.
        refused = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or refused:
            return
        username = get_client_username(request, credentials)
        if request.axes_locked_out:
            _audit_lock(request, "auth.lockout", username, request.axes_failures_since_start)
        if not username:
            return
        failures = _count_failure(username)
        if failures == settings.ACCOUNT_LOCKOUT_FAILURES:
            request.axes_locked_out = True
            request.account_locked_out = True
            _audit_lock(request, "auth.account_lockout", username, failures)

    def user_logged_in(self, sender: Any, request: Any, user: User, **kwargs: Any) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        SignInFailureStreak.objects.filter(user=user).delete()

    def reset_attempts(
        self,
        *,
        ip_address: str | None = None,
        username: str | None = None,
        ip_or_username: bool = False,
    ) -> int:
        count = super().reset_attempts(
            ip_address=ip_address, username=username, ip_or_username=ip_or_username
        )
        if username:
            SignInFailureStreak.objects.filter(user__username=username).delete()
        return int(count)


def token_signed_in(request: Any, user: User) -> None:
    """A password sign-in at the token endpoint succeeded. It logs nobody into a session, so
    Django sends no `user_logged_in`; this does what axes and the streak do on that signal."""
    if settings.AXES_RESET_ON_SUCCESS:
        credentials = get_credentials(user.get_username())
        AxesProxyHandler.update_request(request)
        AxesProxyHandler.get_implementation().reset_user_attempts(request, credentials)
    SignInFailureStreak.objects.filter(user=user).delete()


def lockout_clear(*, user: User) -> None:
    """Both locks of the account, from every address (an OTP password reset proves the user)."""
    AxesProxyHandler.reset_attempts(username=user.get_username())
