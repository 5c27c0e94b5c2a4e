"""Normalization of patient input shared by the API serializers and the Django admin."""

import re
from datetime import date

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from patient.models import age_on

MAX_AGE = 150
# What a person types in a phone field; letters (vanity numbers, "ext.") are refused.
_PHONE_CHARACTERS = re.compile(r"^[0-9+()./\s-]+$")
# E.164 allows at most 15 digits; the shortest numbers in service (e.g. Niue) have 7.
_E164_DIGITS = range(7, 16)


def normalize_phone(raw: str) -> str:
    """A phone number in E.164 (`+12025550143`), or "" for an empty value.

    Lenient by default: a number is accepted when it has a known country code and 7–15 digits,
    the structure E.164 allows (the seed's `+1234567890` passes). `PATIENT_PHONE_STRICT`
    additionally requires libphonenumber to know the number as valid for its region. Numbers
    without `+` are read in `PATIENT_PHONE_DEFAULT_REGION`; without one they are refused.
    """
    value = raw.strip()
    if not value:
        return ""
    if not _PHONE_CHARACTERS.match(value):
        raise ValidationError("Enter a phone number of digits, with an optional leading +.")
    region = settings.PATIENT_PHONE_DEFAULT_REGION or None
    if not value.startswith("+") and region is None:
        raise ValidationError("Enter the phone number in international format: + country code.")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("Enter a valid phone number.") from exc
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) - 1 not in _E164_DIGITS:
        raise ValidationError("Enter a valid phone number.")
    if settings.PATIENT_PHONE_STRICT and not phonenumbers.is_valid_number(number):
        raise ValidationError("Enter a valid phone number.")
    return e164


def validate_date_of_birth(value: date) -> None:
    today = timezone.localdate()
    if value > today:
        raise ValidationError("The date of birth cannot be in the future.")
    if age_on(value, today) > MAX_AGE:
        raise ValidationError(f"The date of birth gives an age over {MAX_AGE}.")


def normalize_full_name(value: str) -> str:
    """Collapses runs of whitespace so "John  Doe" and "John Doe" are one spelling."""
    return " ".join(value.split())


def normalize_mrn(value: str) -> str:
    return value.strip().upper()
