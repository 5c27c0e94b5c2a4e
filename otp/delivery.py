"""Email delivery of one-time codes: the one module that talks to the mail system.

Django's email settings pick the transport (SMTP from `EMAIL_*` in production, the console
backend by default). The message leaves only after the surrounding transaction commits, so a
rolled-back request never sends a code that does not exist.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from otp.models import Purpose

logger = logging.getLogger("otp.delivery")

_SUBJECTS = {
    Purpose.LOGIN: "Your sign-in code",
    Purpose.VERIFY_EMAIL: "Your email verification code",
    Purpose.PASSWORD_RESET: "Your password reset code",
}
_USES = {
    Purpose.LOGIN: "sign in to the Patient Management System",
    Purpose.VERIFY_EMAIL: "verify your email address for the Patient Management System",
    Purpose.PASSWORD_RESET: "reset your Patient Management System password",
}


def code_message(*, purpose: str, code: str, expires_at: datetime) -> tuple[str, str]:
    """The subject and plain-text body: what the code is for and when it expires."""
    minutes = max(1, round(settings.OTP_TTL_SECONDS / 60))
    body = (
        f"Your one-time code is: {code}\n\n"
        f"Use it to {_USES[Purpose(purpose)]}.\n"
        f"It expires in {minutes} minutes, at {expires_at:%Y-%m-%d %H:%M} UTC, "
        "and works only once.\n\n"
        "If you did not ask for this code, ignore this email; nobody can use it without access "
        "to your mailbox. Never share it: our staff will never ask for it.\n"
    )
    return _SUBJECTS[Purpose(purpose)], body


def send_code_after_commit(*, to: str, purpose: str, code: str, expires_at: datetime) -> None:
    """Send the code by email once the current transaction commits (at once outside one)."""
    subject, body = code_message(purpose=purpose, code=code, expires_at=expires_at)

    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
        except Exception as exc:
            # The request still answers 202 (an error here would reveal that the account
            # exists); the user asks again after the cooldown. Neither address nor code is
            # logged, and the exception text may hold the address, so only its type is.
            logger.error("one-time code email not sent: %s", type(exc).__name__)

    transaction.on_commit(send)
