"""FHIR search parameters → querysets (docs/fhir.md). The rows always come from the REST
selectors; this module only narrows and orders them.

Parameters follow FHIR's rules: a comma in a value is OR, a repeated parameter is AND. An
unknown parameter is a 400 unless the client sends `Prefer: handling=lenient` (FHIR's
`strict` is the default here: a silently ignored filter would return more patients than the
client meant to see).
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from document.models import Document, DocumentType
from fhir.mappers import (
    DOCUMENT_TYPE_LOINC,
    DOCUMENT_TYPE_SYSTEM,
    GENDER_FROM_FHIR,
    LOINC_SYSTEM,
)
from patient.models import Patient
from pms.pagination import PageNumberPagination

# Parameters every search takes besides its own filters.
RESULT_PARAMETERS = frozenset({"_count", "_page", "_sort", "_format"})
GENDER_SYSTEM = "http://hl7.org/fhir/administrative-gender"
_MRN_SYSTEM = re.compile(r"^urn:pms:(?P<slug>[-a-zA-Z0-9_]+):mrn$")
_DATE = re.compile(
    r"^(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<value>\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?)$"
)
_SUPPORTED_PREFIXES = {"eq", "ge", "le", "gt", "lt"}


def invalid(parameter: str, message: str) -> ValidationError:
    # Messages never repeat the value: it may be a name or a date of birth.
    return ValidationError({parameter: [message]})


class FHIRPagination(PageNumberPagination):
    """The REST list's page sizes and depth limit, under FHIR's parameter names."""

    page_query_param = "_page"
    page_size_query_param = "_count"


def _values(raw: str) -> list[str]:
    return [value.strip() for value in raw.split(",") if value.strip()]


def _any(values: Iterable[Q]) -> Q:
    combined = Q(pk__in=[])
    for condition in values:
        combined |= condition
    return combined


def _date_bounds(parameter: str, raw: str, *, as_datetime: bool) -> tuple[str, Any, Any]:
    """The prefix and the [start, end) the value's precision covers (2020 is the whole year)."""
    match = _DATE.match(raw)
    if not match:
        raise invalid(
            parameter, "Expected a FHIR date: [eq|ge|le|gt|lt]YYYY[-MM[-DD[Thh:mm:ss+zz:zz]]]."
        )
    prefix = match["prefix"] or "eq"
    if prefix not in _SUPPORTED_PREFIXES:
        raise invalid(parameter, "Supported prefixes: eq, ge, le, gt, lt.")
    value = match["value"]
    try:
        if "T" in value:
            moment = datetime.fromisoformat(value)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            step = timedelta(seconds=1) if value.count(":") >= 2 else timedelta(minutes=1)
            start_at, end_at = moment, moment + step
            if not as_datetime:
                return prefix, start_at.date(), start_at.date() + timedelta(days=1)
            return prefix, start_at, end_at
        parts = [int(part) for part in value.split("-")]
        start = date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
        if len(parts) == 3:
            end = start + timedelta(days=1)
        elif len(parts) == 2:
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            end = start.replace(year=start.year + 1)
    except (ValueError, OverflowError):
        raise invalid(parameter, "Not a valid date.") from None
    if not as_datetime:
        return prefix, start, end
    return (
        prefix,
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end, time.min, tzinfo=UTC),
    )


def instant_value(parameter: str, raw: str) -> datetime:
    """A plain instant (no prefix), e.g. `_since`."""
    if not raw[:1].isdigit():
        raise invalid(parameter, "Expected an instant, e.g. 2026-01-31T00:00:00Z.")
    _, start, _ = _date_bounds(parameter, raw, as_datetime=True)
    return start  # type: ignore[no-any-return]


def date_condition(parameter: str, field: str, raw: str, *, as_datetime: bool) -> Q:
    prefix, start, end = _date_bounds(parameter, raw, as_datetime=as_datetime)
    return {
        "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
        "ge": Q(**{f"{field}__gte": start}),
        "gt": Q(**{f"{field}__gte": end}),
        "le": Q(**{f"{field}__lt": end}),
        "lt": Q(**{f"{field}__lt": start}),
    }[prefix]


def _word_start(value: str) -> Q:
    # Any word of the name starts with the value (FHIR's default string match). `icontains`
    # is the lookup the trigram index serves.
    return Q(full_name__istartswith=value) | Q(full_name__icontains=f" {value}")


def _family(value: str) -> Q:
    # The words before a comma ("Doe, Jane"), else the last word.
    v = re.escape(value)
    return Q(full_name__iregex=rf"^{v}[^,]*,") | Q(full_name__iregex=rf"^([^,]*\s)?{v}[^\s,]*$")


def _given(value: str) -> Q:
    v = re.escape(value)
    return Q(full_name__iregex=rf",(.*\s)?{v}") | Q(
        full_name__iregex=rf"^([^,]*\s)?{v}[^\s,]*\s[^,]*$"
    )


def _token(raw: str) -> tuple[str | None, str]:
    """`system|code` → (system, code); a bare code has no system constraint (None)."""
    if "|" in raw:
        system, _, code = raw.partition("|")
        return system, code
    return None, raw


def _identifier(value: str) -> Q:
    system, code = _token(value)
    condition = Q()
    if system is not None:
        match = _MRN_SYSTEM.match(system)
        if not match:
            return Q(pk__in=[])  # no patient has an identifier in another (or no) system
        condition &= Q(organization__slug=match["slug"])
    if code:
        condition &= Q(mrn=code)
    return condition


def _gender(value: str) -> Q:
    system, code = _token(value)
    if system not in (None, GENDER_SYSTEM) or code not in GENDER_FROM_FHIR:
        raise invalid("gender", "Expected male, female, other or unknown.")
    return Q(gender=GENDER_FROM_FHIR[code])


def _pk(value: str) -> Q:
    if not value.isdigit():
        return Q(pk__in=[])
    return Q(pk=int(value))


def _document_type(value: str) -> Q:
    system, code = _token(value)
    if system == LOINC_SYSTEM:
        types = [kind for kind, (loinc, _) in DOCUMENT_TYPE_LOINC.items() if loinc == code]
        return Q(document_type__in=types)
    if system not in (None, DOCUMENT_TYPE_SYSTEM) or code not in DocumentType.values:
        raise invalid("type", f"Expected a code of {DOCUMENT_TYPE_SYSTEM} or {LOINC_SYSTEM}.")
    return Q(document_type=code)


def _subject(value: str) -> Q:
    reference = value.removeprefix("Patient/")
    if not reference.isdigit():
        raise invalid("patient", "Expected a patient id or Patient/<id>.")
    return Q(patient_id=int(reference))


@dataclass(frozen=True)
class SearchType:
    """A resource's search: one condition builder per parameter and the `_sort` keys."""

    conditions: dict[str, Callable[[str], Q]]
    sort_fields: dict[str, str]

    def narrow(self, queryset: QuerySet[Any], request: Request) -> tuple[QuerySet[Any], set[str]]:
        """The rows matching the request's parameters, ordered; and the parameters used."""
        lenient = "handling=lenient" in request.headers.get("Prefer", "").replace(" ", "")
        used: set[str] = set()
        for parameter, raws in request.query_params.lists():
            if parameter in RESULT_PARAMETERS:
                used.add(parameter)
                continue
            build = self.conditions.get(parameter)
            if build is None:
                if lenient:
                    continue
                raise invalid(
                    parameter,
                    "Unknown search parameter (send Prefer: handling=lenient to ignore it).",
                )
            used.add(parameter)
            for raw in raws:
                values = _values(raw)
                if not values:
                    raise invalid(parameter, "A value is required.")
                queryset = queryset.filter(_any(build(value) for value in values))
        return self.order(queryset, request.query_params.get("_sort")), used

    def order(self, queryset: QuerySet[Any], raw: str | None) -> QuerySet[Any]:
        if not raw:
            return queryset
        fields = []
        for key in _values(raw):
            descending = key.startswith("-")
            field = self.sort_fields.get(key.removeprefix("-"))
            if field is None:
                raise invalid("_sort", f"Sort by one of: {', '.join(sorted(self.sort_fields))}.")
            fields.append(F(field).desc() if descending else F(field).asc())
        # The primary key breaks ties, so pages never overlap.
        return queryset.order_by(*fields, "-pk" if raw.startswith("-") else "pk")


PATIENT_SEARCH = SearchType(
    conditions={
        "_id": _pk,
        "identifier": _identifier,
        "name": _word_start,
        "family": _family,
        "given": _given,
        "birthdate": lambda value: date_condition(
            "birthdate", "date_of_birth", value, as_datetime=False
        ),
        "gender": _gender,
        "_lastUpdated": lambda value: date_condition(
            "_lastUpdated", "updated_at", value, as_datetime=True
        ),
    },
    sort_fields={
        "_id": "id",
        "birthdate": "date_of_birth",
        "_lastUpdated": "updated_at",
        "name": "full_name",
        "identifier": "mrn",
    },
)

DOCUMENT_REFERENCE_SEARCH = SearchType(
    conditions={
        "_id": _pk,
        "patient": _subject,
        "subject": _subject,
        "type": _document_type,
        "date": lambda value: date_condition("date", "created_at", value, as_datetime=True),
        "_lastUpdated": lambda value: date_condition(
            "_lastUpdated", "updated_at", value, as_datetime=True
        ),
    },
    sort_fields={"_id": "id", "date": "created_at", "_lastUpdated": "updated_at"},
)


def patient_rows(queryset: QuerySet[Patient]) -> QuerySet[Patient]:
    """The clinic's slug rides along with each row: it names the MRN's identifier system."""
    return queryset.annotate(organization_slug=F("organization__slug"))


def document_rows(queryset: QuerySet[Document]) -> QuerySet[Document]:
    return queryset.order_by("-created_at", "-id")
