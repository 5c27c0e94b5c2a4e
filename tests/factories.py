import uuid
from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone
from social_django.models import UserSocialAuth

from accounts.models import Organization, Role, User
from audit.models import AuditEvent
from document.models import Document
from otp.models import OTPCode, Purpose
from otp.services import code_hmac
from patient.models import Gender, Patient

TEST_PASSWORD = "correct-horse-battery-staple"


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    role = Role.CLINICIAN
    organization = factory.SubFactory(OrganizationFactory)
    password = factory.django.Password(TEST_PASSWORD)


class GoogleIdentityFactory(factory.django.DjangoModelFactory[UserSocialAuth]):
    """A Google account linked to a user, as a first Google sign-in leaves it."""

    class Meta:
        model = UserSocialAuth

    user = factory.SubFactory(UserFactory)
    provider = "google-oauth2"
    id_key = "sub"
    uid = factory.Sequence(lambda n: f"1{n:020d}")
    extra_data = factory.LazyAttribute(lambda identity: {"sub": identity.uid})


class OTPCodeFactory(factory.django.DjangoModelFactory[OTPCode]):
    """A live code whose plaintext is `code` (default 123456); only its HMAC is stored."""

    class Meta:
        model = OTPCode

    class Params:
        code = "123456"

    user = factory.SubFactory(UserFactory)
    purpose = Purpose.LOGIN
    code_hmac = factory.LazyAttribute(
        lambda otp: code_hmac(user_id=otp.user.pk, purpose=otp.purpose, code=otp.code)
    )
    expires_at = factory.LazyFunction(
        lambda: timezone.now() + timedelta(seconds=settings.OTP_TTL_SECONDS)
    )


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    """A patient with a real birth date; pass `organization` to place it in a clinic."""

    class Meta:
        model = Patient

    organization = factory.SubFactory(OrganizationFactory)
    mrn = factory.Sequence(lambda n: f"T-{n:06d}")
    full_name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"patient{n}@example.com")
    phone = factory.Sequence(lambda n: f"+1202555{n % 10000:04d}")
    date_of_birth = factory.Faker("date_of_birth", minimum_age=0, maximum_age=100)
    gender = Gender.UNKNOWN


class DocumentFactory(factory.django.DjangoModelFactory[Document]):
    """A pending PDF of a patient; `uploaded=True` makes it confirmed (no bytes stored)."""

    class Meta:
        model = Document

    class Params:
        uploaded = factory.Trait(
            is_uploaded=True,
            uploaded_at=factory.LazyFunction(timezone.now),
            checksum="md5:AAAAAAAAAAAAAAAAAAAAAA==",
            # As confirmed with the scanner off (the test settings).
            scan_status="skipped",
        )

    patient = factory.SubFactory(PatientFactory)
    organization = factory.SelfAttribute("patient.organization")
    document_type = "medical_report"
    title = factory.Sequence(lambda n: f"Report {n}")
    filename = factory.LazyAttribute(lambda document: f"{document.title.lower()}.pdf")
    content_type = "application/pdf"
    size_bytes = 1024
    object_name = factory.LazyAttribute(
        lambda document: f"documents/{document.organization.pk}/{uuid.uuid4().hex}"
    )


class AuditEventFactory(factory.django.DjangoModelFactory[AuditEvent]):
    """A successful list of patients, as the API records one."""

    class Meta:
        model = AuditEvent

    action = "patient.list"
    resource_type = "patient"
    outcome = "success"
    status_code = 200
    method = "GET"
    path = "/api/patient/patients/"
