"""OTP test helpers: request a code through the API and read it from the email that was sent."""

import asyncio
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from aiosmtpd.smtp import SMTP
from django.core import mail
from rest_framework.test import APIClient

GENERATE_URL = "/api/otp/generate/"
VERIFY_URL = "/api/otp/verify/"
STRONG_PASSWORD = "quiet-meadow-lantern-42"
_CODE = re.compile(r"Your one-time code is: (\d+)")


def code_in(text: str) -> str:
    match = _CODE.search(text)
    assert match, "no code in the message"
    return match.group(1)


def last_code() -> str:
    """The code in the newest message of Django's test outbox."""
    assert mail.outbox, "no email was sent"
    return code_in(str(mail.outbox[-1].body))


def error_of(response: Any) -> dict[str, Any]:
    """The envelope without the parts that differ on every request."""
    error = dict(response.json()["error"])
    error.pop("timestamp")
    error.pop("request_id")
    return error


INVALID_CODE = {
    "status_code": 400,
    "code": "invalid_code",
    "message": "Invalid or expired code.",
    "details": {},
}


@pytest.fixture
def request_code(
    api_client: APIClient, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    """POST generate/ and run the after-commit email (the test's transaction never commits)."""

    def request(email: str, purpose: str | None = None, client: APIClient | None = None) -> Any:
        body = {"email": email} if purpose is None else {"email": email, "purpose": purpose}
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api_client).post(GENERATE_URL, body)

    return request


@pytest.fixture
def verify(api_client: APIClient) -> Callable[..., Any]:
    def post(email: str, code: str, purpose: str = "login", **extra: str) -> Any:
        return api_client.post(
            VERIFY_URL, {"email": email, "code": code, "purpose": purpose, **extra}
        )

    return post


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox(Message):
    """Keeps every message the server accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[EmailMessage] = []

    def handle_message(self, message: EmailMessage) -> None:
        self.messages.append(message)


class _SlowSMTP(SMTP):
    def __init__(self, *args: Any, reply_delay: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reply_delay = reply_delay

    async def push(self, status: Any) -> None:
        await asyncio.sleep(self.reply_delay)
        await super().push(status)


class _Controller(Controller):
    def __init__(self, handler: Any, *, reply_delay: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.reply_delay = reply_delay

    def factory(self) -> SMTP:
        if not self.reply_delay:
            return super().factory()
        return _SlowSMTP(self.handler, reply_delay=self.reply_delay, **self.SMTP_kwargs)


@contextmanager
def smtp_server(
    handler: Inbox, *, port: int | None = None, reply_delay: float = 0
) -> Iterator[int]:
    """A real SMTP server on a loopback port (yielded), answering each command after
    `reply_delay` seconds."""
    controller = _Controller(
        handler, hostname="127.0.0.1", port=port or free_port(), reply_delay=reply_delay
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def send_email_to(settings: Any, port: int) -> None:
    """Point Django's email settings at an SMTP server on this loopback port."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


@pytest.fixture
def smtp_inbox(settings: Any) -> Iterator[list[EmailMessage]]:
    """A real SMTP server on a loopback port, with Django's email settings pointed at it."""
    handler = Inbox()
    with smtp_server(handler) as port:
        send_email_to(settings, port)
        yield handler.messages
