from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from otp.models import OTPCode
from tests.factories import OTPCodeFactory, UserFactory

CHANGELIST = "/admin/otp/otpcode/"


def test_support_sees_codes_without_their_hashes(admin_client, clinician: User) -> None:
    otp = OTPCodeFactory.create(user=clinician, purpose="password_reset", attempts=2)

    listing = admin_client.get(CHANGELIST)
    detail = admin_client.get(f"{CHANGELIST}{otp.pk}/change/")

    assert listing.status_code == 200
    assert "carol" in listing.content.decode()
    assert "Password reset" in listing.content.decode()
    assert detail.status_code == 200
    for page in (listing, detail):
        assert otp.code_hmac not in page.content.decode()
    assert 'name="attempts"' not in detail.content.decode()  # read-only, not a form field


def test_codes_cannot_be_added_or_edited_in_the_admin(admin_client, clinician: User) -> None:
    otp = OTPCodeFactory.create(user=clinician, attempts=3)

    add = admin_client.get(f"{CHANGELIST}add/")
    edit = admin_client.post(f"{CHANGELIST}{otp.pk}/change/", {"attempts": 0})

    assert add.status_code == 403
    assert edit.status_code == 403
    otp.refresh_from_db()
    assert otp.attempts == 3


def test_support_can_delete_a_code_to_kill_it(admin_client, clinician: User) -> None:
    otp = OTPCodeFactory.create(user=clinician)

    response = admin_client.post(f"{CHANGELIST}{otp.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not OTPCode.objects.exists()


def test_the_code_list_costs_the_same_queries_for_one_or_many_codes(
    admin_client, organization
) -> None:
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(queries)

    OTPCodeFactory.create(user=UserFactory.create(organization=organization))
    one = count_queries()
    for _ in range(5):
        OTPCodeFactory.create(user=UserFactory.create(organization=organization))

    assert count_queries() == one
