"""Email delivery of one-time codes: the one module that talks to the mail system.

Django's email settings pick the transport (SMTP from `EMAIL_*` in production, the console
backend by default). It is called by the delivery task (otp/tasks.py), never in a request.
"""

import smtplib
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail

from otp.models import Purpose
from pms.celery import TaskError, TransientError


class DeliveryUnavailable(TransientError):
    """The mail server could not be reached or asked to try later: the task retries."""


class DeliveryRejected(TaskError):
    """The mail server refused the message for good (5xx): retrying would not help."""


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


def _refused_for_good(error: OSError) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500


def send_code(*, to: str, purpose: str, code: str, expires_at: datetime) -> None:
    """Send the code by email now; raise DeliveryUnavailable or DeliveryRejected on failure.

    The errors name only the exception type and SMTP status: the originals may quote the
    address, so they are dropped from the chain and never reach a log or the failure record.
    """
    subject, body = code_message(purpose=purpose, code=code, expires_at=expires_at)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    except OSError as error:  # smtplib.SMTPException is an OSError, as are socket errors
        status = getattr(error, "smtp_code", None)
        reason = type(error).__name__ + (f" {status}" if status else "")
        if _refused_for_good(error):
            raise DeliveryRejected(f"the mail server refused the message: {reason}") from None
        raise DeliveryUnavailable(f"the mail server is unavailable: {reason}") from None
