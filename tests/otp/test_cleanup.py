from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from otp.models import OTPAddressLimit, OTPCode, OTPDelivery
from otp.services import address_hmac
from otp.tasks import cleanup
from tests.factories import OTPCodeFactory, UserFactory


def test_cleanup_deletes_expired_used_and_dead_codes_and_stale_counters(
    clinician: User,
) -> None:
    now = timezone.now()
    live = OTPCodeFactory.create(user=clinician, purpose="login")
    OTPCodeFactory.create(user=clinician, purpose="verify_email", expires_at=now)
    OTPCodeFactory.create(user=clinician, purpose="password_reset", consumed_at=now)
    dead = UserFactory.create(username="gina", organization=clinician.organization)
    OTPCodeFactory.create(user=dead, attempts=5)
    fresh_limit = OTPAddressLimit.objects.create(
        address_hmac=address_hmac("recent@example.com"),
        last_requested_at=now - timedelta(minutes=5),
        window_started_at=now - timedelta(minutes=50),
        requests_in_window=5,  # still capped for ten more minutes: must stay
    )
    OTPAddressLimit.objects.create(
        address_hmac=address_hmac("old@example.com"),
        last_requested_at=now - timedelta(hours=1, minutes=1),
        window_started_at=now - timedelta(hours=2),
        requests_in_window=5,
    )
    # A delivery may still be sent within the life of a code; an older one never will be.
    pending = OTPDelivery.objects.create(user=clinician, purpose="login")
    OTPDelivery.objects.create(user=None, purpose="login", requested_at=now - timedelta(minutes=10))
    out = StringIO()

    call_command("cleanup_otp", stdout=out)

    assert list(OTPCode.objects.all()) == [live]
    assert list(OTPAddressLimit.objects.all()) == [fresh_limit]
    assert list(OTPDelivery.objects.all()) == [pending]
    assert out.getvalue().strip() == (
        "Deleted 3 one-time codes, 1 address counters and 1 code deliveries."
    )


def test_cleanup_with_nothing_to_delete_changes_nothing(clinician: User) -> None:
    OTPCodeFactory.create(user=clinician)
    out = StringIO()

    call_command("cleanup_otp", stdout=out)

    assert OTPCode.objects.count() == 1
    assert "Deleted 0 one-time codes" in out.getvalue()


def test_the_beat_task_cleans_up_what_the_command_cleans_up(clinician: User) -> None:
    now = timezone.now()
    live = OTPCodeFactory.create(user=clinician, purpose="login")
    OTPCodeFactory.create(user=clinician, purpose="verify_email", expires_at=now)
    OTPAddressLimit.objects.create(
        address_hmac=address_hmac("old@example.com"),
        last_requested_at=now - timedelta(hours=2),
        window_started_at=now - timedelta(hours=2),
    )
    OTPDelivery.objects.create(
        user=clinician, purpose="login", requested_at=now - timedelta(hours=1)
    )

    result = cleanup.delay().get()

    assert result == {"codes": 1, "address_counters": 1, "deliveries": 1}
    assert list(OTPCode.objects.all()) == [live]
    assert not OTPAddressLimit.objects.exists()
    assert not OTPDelivery.objects.exists()
