import pytest
from django.core import mail
from django.db import transaction

from accounts.models import User
from otp.models import OTPCode
from otp.services import otp_request
from tests.otp.conftest import code_in, free_port


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


def test_a_failed_delivery_still_answers_202_and_logs_no_address(
    clinician: User, request_code, settings, caplog
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 2

    response = request_code(clinician.email)

    assert response.status_code == 202
    assert "one-time code email not sent: ConnectionRefusedError" in caplog.text
    assert clinician.email not in caplog.text
    # The code exists (the user may ask again after the cooldown); the outbox stays empty.
    assert OTPCode.objects.filter(user=clinician).exists()
    assert mail.outbox == []
