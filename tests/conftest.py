"""Shared fixtures. Actors follow CONVENTIONS: an owner-organization user, a colleague with a
weaker role, and a user of another organization."""

from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import authenticated_user
from accounts.models import Organization, Role, User
from accounts.onboarding import user_sync_admin_access
from patient.models import Patient
from tests.factories import OrganizationFactory, PatientFactory, UserFactory

# The GCS emulator's fixtures, for the document and FHIR export tests.
pytest_plugins = ["tests.gcs"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-xdist hands tests out in this order, two at a time (`--maxschedchunk=2`,
    Makefile): those marked slow go first, so that no worker ends the run alone on one of them
    (the outage drill's 28 s did, after everything else). pytest-django's own ordering runs
    after this one and keeps it within each of its groups: database tests, then transactional
    ones (whose flush empties what migrations wrote), then the rest."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle and lockout counters must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture
def bounded_queries() -> int:
    """Statements an expensive request (pms/bounded.py) adds on PostgreSQL inside a test's
    transaction: the statement timeout's SAVEPOINT, SET LOCAL, SET back to the default and
    RELEASE (in production, in autocommit: BEGIN, SET LOCAL and COMMIT). None on SQLite, which
    has no statement timeout."""
    return 4 if connection.vendor == "postgresql" else 0


@pytest.fixture
def organization(db: None) -> Organization:
    return OrganizationFactory.create(name="Northside Clinic", slug="northside")


@pytest.fixture
def other_organization(db: None) -> Organization:
    return OrganizationFactory.create(name="Southside Clinic", slug="southside")


@pytest.fixture
def org_admin(organization: Organization) -> User:
    return UserFactory.create(username="alice", role=Role.ADMIN, organization=organization)


@pytest.fixture
def clinician(organization: Organization) -> User:
    return UserFactory.create(username="carol", role=Role.CLINICIAN, organization=organization)


@pytest.fixture
def staff_user(organization: Organization) -> User:
    return UserFactory.create(username="bob", role=Role.STAFF, organization=organization)


@pytest.fixture
def foreign_clinician(other_organization: Organization) -> User:
    return UserFactory.create(
        username="charlie", role=Role.CLINICIAN, organization=other_organization
    )


@pytest.fixture
def clinic_admin(org_admin: User) -> User:
    """alice as a clinic admin: staff, in the "Clinic administrators" group, no superuser."""
    user_sync_admin_access(user=org_admin)
    org_admin.refresh_from_db()
    return org_admin


@pytest.fixture
def foreign_clinic_admin(other_organization: Organization) -> User:
    user = UserFactory.create(username="dave", role=Role.ADMIN, organization=other_organization)
    user_sync_admin_access(user=user)
    return user


@pytest.fixture
def platform_operator(db: None) -> User:
    """A superuser: no clinic, sees every clinic."""
    return User.objects.create_superuser("root", "root@example.com", "x-very-long-pass-1")


@pytest.fixture
def admin_client_for() -> Callable[[User], Client]:
    """A Django test client signed in to /admin/ as the given user (a fresh one per call)."""

    def login(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """An API client carrying a real access JWT for the given user. The user is cached as
    after a first request, so query counts are those of every later request (the cache miss is
    tested in tests/accounts/test_user_cache.py)."""

    def make(user: User) -> APIClient:
        authenticated_user(user.pk)
        client = APIClient()
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def as_clinician(client_for: Callable[[User], APIClient], clinician: User) -> APIClient:
    return client_for(clinician)


@pytest.fixture
def as_staff(client_for: Callable[[User], APIClient], staff_user: User) -> APIClient:
    return client_for(staff_user)


@pytest.fixture
def as_admin(client_for: Callable[[User], APIClient], org_admin: User) -> APIClient:
    return client_for(org_admin)


@pytest.fixture
def foreign_patient(other_organization: Organization) -> Patient:
    return PatientFactory.create(organization=other_organization, full_name="John Foreign")
