from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from otp.models import OTPCode, OTPDelivery
from otp.services import otp_request
from otp.tasks import deliver_code
from pms.models import FailedTask
from tests.otp.conftest import Inbox, code_in, free_port, send_email_to, smtp_server


def test_a_code_really_leaves_through_smtp_and_the_received_code_verifies(
    clinician: User, smtp_inbox, request_code, verify, time_machine
) -> None:
    time_machine.move_to("2030-01-15T09:00:00Z", tick=False)

    assert request_code(clinician.email, "login").status_code == 202

    assert len(smtp_inbox) == 1
    message = smtp_inbox[0]
    assert message["To"] == clinician.email
    assert message["From"] == "PMS <no-reply@pms.local>"
    assert message["Subject"] == "Your sign-in code"
    assert message.get_content_type() == "text/plain"
    body = message.get_payload(decode=True).decode()
    assert "sign in to the Patient Management System" in body
    assert "expires in 10 minutes, at 2030-01-15 09:10 UTC" in body
    response = verify(clinician.email, code_in(body), "login")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "carol"


@pytest.mark.parametrize(
    ("purpose", "subject", "use"),
    [
        ("login", "Your sign-in code", "sign in to the Patient Management System"),
        ("verify_email", "Your email verification code", "verify your email address"),
        ("password_reset", "Your password reset code", "reset your Patient Management System"),
    ],
)
def test_the_message_says_what_the_code_is_for_and_when_it_expires(
    clinician: User, request_code, purpose, subject, use
) -> None:
    request_code(clinician.email, purpose)

    message = mail.outbox[0]
    assert message.subject == subject
    assert use in message.body
    assert "expires in 10 minutes" in message.body
    assert message.message().get_content_type() == "text/plain"  # no HTML part


def test_the_console_backend_prints_a_code_that_signs_in(
    clinician: User, request_code, verify, settings, capsys
) -> None:
    # The default of `make run`: the code appears on the server's console.
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    request_code(clinician.email)

    printed = capsys.readouterr().out
    assert "To: carol@example.com" in printed
    assert verify(clinician.email, code_in(printed)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_email_leaves_only_when_the_transaction_commits(clinician: User) -> None:
    with transaction.atomic():
        otp_request(email=clinician.email, purpose="login")
        assert mail.outbox == []  # not before the commit

    assert len(mail.outbox) == 1
    assert OTPCode.objects.filter(user=clinician).exists()


@pytest.mark.django_db(transaction=True)
def test_no_email_is_sent_when_the_transaction_rolls_back(clinician: User) -> None:
    def request_then_fail() -> None:
        with transaction.atomic():
            otp_request(email=clinician.email, purpose="login")
            raise RuntimeError("something later in the request failed")

    with pytest.raises(RuntimeError):
        request_then_fail()

    assert mail.outbox == []
    assert not OTPCode.objects.exists()
    assert not OTPDelivery.objects.exists()


def test_a_mail_server_that_stays_down_answers_202_and_records_the_failure_without_the_address(
    clinician: User, request_code, settings, caplog
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 2

    response = request_code(clinician.email)

    assert response.status_code == 202
    # Eagerly (no broker) the retries run at once: every try failed, then the task gave up.
    delivery = OTPDelivery.objects.get()
    assert delivery.attempts == deliver_code.max_retries + 1
    assert delivery.sent_at is None
    failed = FailedTask.objects.get()
    assert failed.task_name == "otp.deliver_code"
    assert failed.args == [delivery.pk]
    assert failed.error_message == "the mail server is unavailable: ConnectionRefusedError"
    assert failed.request_id == response["X-Request-ID"]
    assert "DeliveryUnavailable('the mail server is unavailable: ConnectionRefusedError')" in (
        caplog.text
    )
    assert clinician.email not in caplog.text
    assert clinician.email not in repr(FailedTask.objects.values().get())
    # A code was issued (and replaced) on every try; the user asks again after the cooldown.
    assert OTPCode.objects.filter(user=clinician).exists()
    assert mail.outbox == []


class RefuseRecipients(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        return "550 5.1.1 mailbox unavailable"


def test_a_message_refused_for_good_is_not_retried(clinician: User, request_code, settings) -> None:
    with smtp_server(RefuseRecipients()) as port:
        send_email_to(settings, port)

        assert request_code(clinician.email).status_code == 202

    assert OTPDelivery.objects.get().attempts == 1
    failed = FailedTask.objects.get()
    assert failed.retries == 0
    assert failed.error_type == "otp.delivery.DeliveryRejected"
    assert failed.error_message == ("the mail server refused the message: SMTPRecipientsRefused")


def test_running_the_delivery_again_after_it_was_sent_sends_nothing(
    clinician: User, request_code
) -> None:
    request_code(clinician.email)
    delivery = OTPDelivery.objects.get()
    code_row = OTPCode.objects.get(user=clinician)

    assert deliver_code.delay(delivery.pk).get() == "already sent"

    assert len(mail.outbox) == 1
    assert OTPCode.objects.get(user=clinician).code_hmac == code_row.code_hmac
    assert OTPDelivery.objects.get().attempts == 1


def test_the_delivery_of_an_unknown_address_sends_nothing(db: None, request_code) -> None:
    request_code("nobody@example.com")

    delivery = OTPDelivery.objects.get()
    assert delivery.user is None
    assert deliver_code.delay(delivery.pk).get() == "no active account"
    assert mail.outbox == []
    assert not OTPCode.objects.exists()


def test_an_account_deactivated_before_delivery_gets_nothing(clinician: User) -> None:
    delivery = OTPDelivery.objects.create(user=clinician, purpose="login")
    User.objects.filter(pk=clinician.pk).update(is_active=False)

    assert deliver_code.delay(delivery.pk).get() == "no active account"
    assert mail.outbox == []


def test_a_late_retry_does_not_replace_the_code_of_a_newer_request(clinician: User) -> None:
    older = OTPDelivery.objects.create(user=clinician, purpose="login")
    newer = OTPDelivery.objects.create(user=clinician, purpose="login")
    assert deliver_code.delay(newer.pk).get() == "sent"
    sent_code = OTPCode.objects.get(user=clinician).code_hmac

    assert deliver_code.delay(older.pk).get() == "superseded by a newer request"

    assert OTPCode.objects.get(user=clinician).code_hmac == sent_code
    assert len(mail.outbox) == 1


def test_a_delivery_older_than_a_code_lives_is_dropped(clinician: User) -> None:
    delivery = OTPDelivery.objects.create(
        user=clinician, purpose="login", requested_at=timezone.now() - timedelta(minutes=10)
    )

    assert deliver_code.delay(delivery.pk).get() == "requested longer ago than a code lives"
    assert mail.outbox == []


def test_a_delivery_already_cleaned_up_is_nothing_to_do(db: None) -> None:
    assert deliver_code.delay(987654).get() == "no such delivery"
