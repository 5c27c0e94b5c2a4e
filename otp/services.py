"""Issuing and verifying one-time codes (NIST SP 800-63B / OWASP rules).

- Codes are `CODE_LENGTH` digits from `secrets`, stored only as an HMAC-SHA256 keyed from
  `OTP_HMAC_KEY` (or SECRET_KEY) over purpose, user id and code; compared in constant time.
- A code lives `OTP_TTL_SECONDS`, is used once, and dies after `OTP_MAX_ATTEMPTS` tries. A try is
  claimed with one conditional UPDATE before the code is compared, so concurrent guesses can never
  compare more than `OTP_MAX_ATTEMPTS` times.
- Requests for a code are limited per address (cooldown and hourly cap) whether or not an account
  has the address, so neither the answer nor a 429 tells an account exists.
- A request only enqueues a delivery; the code is issued and emailed by a Celery task, so the
  answer takes the same time for every address however slow the mail server is.
"""

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework import exceptions, status

from accounts.lockout import lockout_clear
from accounts.models import User
from accounts.services import user_set_password
from otp.delivery import send_code
from otp.models import OTPAddressLimit, OTPCode, OTPDelivery, Purpose
from pms.exceptions import ApplicationError

logger = logging.getLogger("otp")

HOURLY_WINDOW = timedelta(hours=1)
# Digits in a code: 10^6 codes against at most OTP_MAX_ATTEMPTS tries each (NIST SP 800-63B).
CODE_LENGTH = 6


class InvalidCode(ApplicationError):
    """Every verification failure looks the same: wrong, expired, used, dead or unknown email."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_code"
    default_detail = "Invalid or expired code."


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _hmac_hex(purpose_salt: str, value: str) -> str:
    secret = settings.OTP_HMAC_KEY or settings.SECRET_KEY
    return salted_hmac(f"otp.{purpose_salt}", value, secret, algorithm="sha256").hexdigest()


def code_hmac(*, user_id: int, purpose: str, code: str) -> str:
    return _hmac_hex("code", f"{purpose}:{user_id}:{code}")


def address_hmac(email: str) -> str:
    return _hmac_hex("address", normalize_email(email))


def _new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH))


def _active_user(email: str) -> User | None:
    return User.objects.filter(email__iexact=normalize_email(email), is_active=True).first()


# --- Requesting a code --------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeRequestResult:
    """What the client is told, identical for known and unknown addresses."""

    next_request_at: datetime


def _next_request_at(limit: OTPAddressLimit) -> datetime:
    next_at = limit.last_requested_at + timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS)
    if limit.requests_in_window >= settings.OTP_HOURLY_LIMIT:
        next_at = max(next_at, limit.window_started_at + HOURLY_WINDOW)
    return next_at


def _reserve_request(*, email: str, now: datetime) -> OTPAddressLimit:
    """Count one code request for the address, or raise 429 when the address must wait.

    The check and the increment are one UPDATE, so concurrent requests cannot both pass.
    """
    digest = address_hmac(email)
    OTPAddressLimit.objects.get_or_create(
        address_hmac=digest,
        defaults={
            # Counters that allow a request right away.
            "last_requested_at": now - timedelta(days=1),
            "window_started_at": now - HOURLY_WINDOW,
            "requests_in_window": 0,
        },
    )
    window_over = Q(window_started_at__lte=now - HOURLY_WINDOW)
    allowed = OTPAddressLimit.objects.filter(
        Q(address_hmac=digest),
        Q(last_requested_at__lte=now - timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS)),
        window_over | Q(requests_in_window__lt=settings.OTP_HOURLY_LIMIT),
    ).update(
        last_requested_at=now,
        # Every SET expression reads the row as it was before the UPDATE.
        window_started_at=Case(When(window_over, then=Value(now)), default=F("window_started_at")),
        requests_in_window=Case(
            When(window_over, then=Value(1)), default=F("requests_in_window") + 1
        ),
    )
    limit = OTPAddressLimit.objects.get(address_hmac=digest)
    if not allowed:
        raise exceptions.Throttled(wait=(_next_request_at(limit) - now).total_seconds())
    return limit


@transaction.atomic
def otp_request(*, email: str, purpose: str) -> CodeRequestResult:
    """Count the request against the address and enqueue its delivery once the request commits.

    Known or unknown, active or not, every address costs the same work here: the rate-limit
    update, one account lookup, one delivery row and one task. The task (`otp_deliver`) issues
    the code and sends it, so how long the mail server takes never shows in this answer. Neither
    the code nor the address goes to the broker: the task gets the delivery's id.
    """
    from otp.tasks import deliver_code  # the task module imports this one

    now = timezone.now()
    limit = _reserve_request(email=email, now=now)
    delivery = OTPDelivery.objects.create(
        user=_active_user(email), purpose=purpose, requested_at=now
    )
    deliver_code.delay_on_commit(delivery.pk)
    return CodeRequestResult(next_request_at=_next_request_at(limit))


def _issue_code(*, user: User, purpose: str, now: datetime) -> tuple[str, datetime]:
    """A new code for the user and purpose, replacing the old one; only its HMAC is stored."""
    code = _new_code()
    expires_at = now + timedelta(seconds=settings.OTP_TTL_SECONDS)
    OTPCode.objects.update_or_create(
        user=user,
        purpose=purpose,
        defaults={
            "code_hmac": code_hmac(user_id=user.pk, purpose=purpose, code=code),
            "expires_at": expires_at,
            "attempts": 0,
            "consumed_at": None,
            "created_at": now,
        },
    )
    logger.info("one-time code issued (user %s, purpose %s)", user.pk, purpose)
    return code, expires_at


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already sent"
    NO_ACCOUNT = "no active account"
    SUPERSEDED = "superseded by a newer request"
    EXPIRED = "requested longer ago than a code lives"
    GONE = "no such delivery"


def otp_deliver(*, delivery_id: int) -> DeliveryOutcome:
    """Issue and email the code of one request; once it was sent, running again sends nothing.

    Raises DeliveryUnavailable (the task retries with a fresh code: an unsent one is never
    used) or DeliveryRejected. The one window left: the mail server accepted the message and
    the process died before `sent_at` was saved. The task then runs again and sends a second
    email, whose code replaces the first: at least once, and the newest email always works.
    """
    delivery = OTPDelivery.objects.select_related("user").filter(pk=delivery_id).first()
    if delivery is None:
        return DeliveryOutcome.GONE
    if delivery.sent_at is not None:
        return DeliveryOutcome.ALREADY_SENT
    user = delivery.user
    if user is None or not user.is_active:
        return DeliveryOutcome.NO_ACCOUNT
    now = timezone.now()
    if delivery.requested_at <= now - timedelta(seconds=settings.OTP_TTL_SECONDS):
        return DeliveryOutcome.EXPIRED
    newer = OTPDelivery.objects.filter(user=user, purpose=delivery.purpose, pk__gt=delivery.pk)
    if newer.exists():
        # A late retry must not replace the code the user was sent since.
        return DeliveryOutcome.SUPERSEDED
    OTPDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    code, expires_at = _issue_code(user=user, purpose=delivery.purpose, now=now)
    send_code(to=user.email, purpose=delivery.purpose, code=code, expires_at=expires_at)
    OTPDelivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())
    return DeliveryOutcome.SENT


# --- Verifying a code ---------------------------------------------------------------------------


def _fail(reason: str, user: User | None, purpose: str) -> InvalidCode:
    logger.warning(
        "one-time code rejected: %s (user %s, purpose %s)",
        reason,
        user.pk if user else "-",
        purpose,
    )
    return InvalidCode()


def _claim_try(otp: OTPCode, now: datetime) -> bool:
    """Use up one try of a live code; False when it is used, expired or out of tries.

    Runs (and commits) before the comparison, so a wrong guess always counts, and N concurrent
    guesses get at most OTP_MAX_ATTEMPTS comparisons between them.
    """
    return bool(
        OTPCode.objects.filter(
            pk=otp.pk,
            code_hmac=otp.code_hmac,  # not a replacement issued meanwhile
            consumed_at__isnull=True,
            expires_at__gt=now,
            attempts__lt=settings.OTP_MAX_ATTEMPTS,
        ).update(attempts=F("attempts") + 1)
    )


def _consume(otp: OTPCode, now: datetime) -> bool:
    return bool(
        OTPCode.objects.filter(
            pk=otp.pk, code_hmac=otp.code_hmac, consumed_at__isnull=True, expires_at__gt=now
        ).update(consumed_at=now)
    )


def _check_code(*, email: str, purpose: str, code: str, now: datetime) -> tuple[User, OTPCode]:
    user = _active_user(email)
    if user is None:
        raise _fail("no active account", None, purpose)
    otp = OTPCode.objects.filter(user=user, purpose=purpose).first()
    if otp is None:
        raise _fail("no code", user, purpose)
    if not _claim_try(otp, now):
        raise _fail("used, expired or out of tries", user, purpose)
    expected = code_hmac(user_id=user.pk, purpose=purpose, code=code)
    if not hmac.compare_digest(otp.code_hmac, expected):
        raise _fail("wrong code", user, purpose)
    return user, otp


def otp_verify(*, email: str, purpose: str, code: str, new_password: str | None = None) -> User:
    """Check and consume a code, then apply its purpose; returns the user.

    - login: nothing more (the caller issues the JWT pair);
    - verify_email: marks the email verified;
    - password_reset: sets `new_password` through the password service (which revokes every
      refresh token of the user) and clears the account's sign-in lockouts. A weak password
      answers a validation error and leaves the code unused (the try it took still counts).
    """
    if purpose == Purpose.PASSWORD_RESET and new_password is None:
        raise TypeError("a password reset needs new_password")
    now = timezone.now()
    # Outside the transaction below: the try must stay counted when verification fails.
    user, otp = _check_code(email=email, purpose=purpose, code=code, now=now)
    with transaction.atomic():
        if not _consume(otp, now):
            raise _fail("used concurrently", user, purpose)
        if purpose == Purpose.VERIFY_EMAIL:
            user.email_verified = True
            user.save(update_fields=["email_verified"])
        elif new_password is not None and purpose == Purpose.PASSWORD_RESET:
            try:
                user_set_password(user=user, password=new_password)
            except DjangoValidationError as error:
                # Rolls the consumption back: the code stays usable.
                raise exceptions.ValidationError({"new_password": list(error.messages)}) from None
            # The code proved the user: the locks a stranger's guesses set no longer apply.
            lockout_clear(user=user)
            logger.info("password reset by one-time code (user %s)", user.pk)
    logger.info("one-time code accepted (user %s, purpose %s)", user.pk, purpose)
    return user


class CleanupResult(NamedTuple):
    codes: int
    address_counters: int
    deliveries: int


def otp_cleanup(*, now: datetime | None = None) -> CleanupResult:
    """Delete codes that can no longer be used, address counters that no longer limit, and
    deliveries too old to send (the delivery task drops those anyway)."""
    now = now or timezone.now()
    codes, _ = OTPCode.objects.filter(
        Q(expires_at__lte=now)
        | Q(consumed_at__isnull=False)
        | Q(attempts__gte=settings.OTP_MAX_ATTEMPTS)
    ).delete()
    cooldown = timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS)
    limits, _ = OTPAddressLimit.objects.filter(
        last_requested_at__lte=now - cooldown, window_started_at__lte=now - HOURLY_WINDOW
    ).delete()
    deliveries, _ = OTPDelivery.objects.filter(
        requested_at__lte=now - timedelta(seconds=settings.OTP_TTL_SECONDS)
    ).delete()
    return CleanupResult(codes, limits, deliveries)
