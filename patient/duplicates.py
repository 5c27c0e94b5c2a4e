"""Likely duplicates of a patient in their clinic: who they are, and how sure we are
(docs/identity.md).

Candidates come from one query whose branches are each served by an index led by the clinic
(PostgreSQL combines them with a BitmapOr): the same MRN, email (case-insensitive) or E.164
phone, or a birth date that matches exactly, with day and month swapped, or within a year where
either date is an estimate (an age only). Estimated dates name a three-year span, so that branch
is narrowed by the name too: trigram similarity on PostgreSQL (the GIN index of migration 0002),
the family name elsewhere (SQLite has no trigrams; the branch walks the birth-date index). A
name alone never makes a candidate: it cannot reach the threshold (namesakes are common).

Each candidate is scored in Python: the sum of the weights of the attributes that agree (the
name's scaled by how alike it is), at most 1.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jellyfish
from django.conf import settings
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.lookups import GreaterThanOrEqual
from rapidfuzz.distance import JaroWinkler

from patient.models import Patient
from patient.search import SEARCH_SIMILARITY, indexed_upper, word_similar

# The same MRN in one clinic is the same chart, whatever else differs.
WEIGHT_MRN = 1.0
# A phone or an email address is personal: shared within a family at most, so it alone asks
# the question (the clerk confirms a sibling with confirm_new).
WEIGHT_PHONE = 0.6
WEIGHT_EMAIL = 0.6
# The birth date is the strongest attribute after identifiers, but about 1 in 365 strangers
# share it, so it never decides alone; with the family name it does (siblings, twins).
WEIGHT_BIRTH_DATE = 0.4
# Day and month typed in the other order (US and European forms) is a classic entry error.
WEIGHT_BIRTH_DATE_SWAPPED = 0.35
# An age gives only a year, and a birthday may have passed since it was asked.
WEIGHT_BIRTH_YEAR_ESTIMATED = 0.2
# Family names are rarer than given names, so agreeing on one says more. Both together stay
# below any sensible threshold: namesakes are common.
WEIGHT_FAMILY_NAME = 0.25
WEIGHT_GIVEN_NAME = 0.15
# Two name parts agree from this similarity on (Jaro-Winkler, or PHONETIC_SIMILARITY when
# their metaphone codes are equal); below, they differ.
NAME_AGREEMENT = 0.85
PHONETIC_SIMILARITY = 0.9
# Metaphone drops vowels ("Jane" and "John" share a code), so it only lifts parts that are
# spelled alike to begin with ("Catherine" and "Kathryn", "Jeff" and "Geoff").
PHONETIC_MIN_SIMILARITY = 0.7
# Whole names whose trigram similarity (as pg_trgm computes it) reaches this agree in both
# parts: the words are the same but in another order or split differently ("Smith John",
# "Mary-Ann" and "Mary Ann").
TRIGRAM_AGREEMENT = 0.6

# Candidates the check reports (the API's 409 and /duplicates/), best first.
MAX_REPORTED = 5
# Rows scored at most per check: bounds the work for a clinic full of one birthday.
MAX_SCORED = 500

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Identity:
    """What the check compares: a patient, or the body of one about to be registered."""

    full_name: str
    date_of_birth: date
    birth_date_estimated: bool = False
    email: str = ""
    phone: str = ""
    mrn: str = ""

    @classmethod
    def of(cls, patient: Patient) -> "Identity":
        return cls(
            full_name=patient.full_name,
            date_of_birth=patient.date_of_birth,
            birth_date_estimated=patient.birth_date_estimated,
            email=patient.email,
            phone=patient.phone,
            mrn=patient.mrn,
        )


@dataclass
class Candidate:
    patient: Patient
    score: float
    matched: list[str] = field(default_factory=list)

    def as_details(self) -> dict[str, Any]:
        """What a response may carry: no PHI beyond the id and the MRN."""
        return {
            "id": self.patient.pk,
            "mrn": self.patient.mrn,
            "score": self.score,
            "matched": self.matched,
        }


def _words(name: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", name.casefold())
    return _WORD.findall("".join(char for char in folded if not unicodedata.combining(char)))


def _trigrams(words: list[str]) -> set[str]:
    # pg_trgm's trigrams: each word padded with two spaces in front and one behind.
    grams: set[str] = set()
    for word in words:
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(first: list[str], second: list[str]) -> float:
    grams_a, grams_b = _trigrams(first), _trigrams(second)
    if not grams_a or not grams_b:
        return 0.0
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def _agreement(first: str, second: str) -> float:
    """0, or how alike two name parts are once they agree (NAME_AGREEMENT..1)."""
    if not first or not second:
        return 0.0
    similarity = JaroWinkler.similarity(first, second)
    if similarity >= PHONETIC_MIN_SIMILARITY and (
        jellyfish.metaphone(first) == jellyfish.metaphone(second)
    ):
        similarity = max(similarity, PHONETIC_SIMILARITY)
    return similarity if similarity >= NAME_AGREEMENT else 0.0


def name_score(first: str, second: str) -> float:
    """The name's part of the score, 0..WEIGHT_FAMILY_NAME + WEIGHT_GIVEN_NAME: the family
    name (the last word) and the given names (the others), each counted when they agree."""
    words_a, words_b = _words(first), _words(second)
    if not words_a or not words_b:
        return 0.0
    family = _agreement(words_a[-1], words_b[-1])
    given = _agreement(" ".join(words_a[:-1]), " ".join(words_b[:-1]))
    by_parts = WEIGHT_FAMILY_NAME * family + WEIGHT_GIVEN_NAME * given
    trigram = trigram_similarity(words_a, words_b)
    if trigram >= TRIGRAM_AGREEMENT:
        return max(by_parts, (WEIGHT_FAMILY_NAME + WEIGHT_GIVEN_NAME) * trigram)
    return by_parts


def _swapped(day: date) -> date | None:
    if day.day > 12 or day.day == day.month:
        return None
    return day.replace(month=day.day, day=day.month)


def _birth_date_weight(new: Identity, old: Patient) -> float:
    if new.date_of_birth == old.date_of_birth:
        return WEIGHT_BIRTH_DATE
    if new.date_of_birth == _swapped(old.date_of_birth):
        return WEIGHT_BIRTH_DATE_SWAPPED
    estimated = new.birth_date_estimated or old.birth_date_estimated
    if estimated and abs(new.date_of_birth.year - old.date_of_birth.year) <= 1:
        return WEIGHT_BIRTH_YEAR_ESTIMATED
    return 0.0


def score(new: Identity, old: Patient) -> Candidate:
    weights: dict[str, float] = {}
    if new.mrn and new.mrn.upper() == old.mrn.upper():
        weights["mrn"] = WEIGHT_MRN
    if new.email and new.email.casefold() == old.email.casefold():
        weights["email"] = WEIGHT_EMAIL
    if new.phone and new.phone == old.phone:
        weights["phone"] = WEIGHT_PHONE
    birth = _birth_date_weight(new, old)
    if birth:
        weights["date_of_birth"] = birth
    name = name_score(new.full_name, old.full_name)
    if name:
        weights["full_name"] = name
    total = min(1.0, sum(weights.values()))
    matched = sorted(weights)
    return Candidate(patient=old, score=round(total, 3), matched=matched)


def _birth_years(day: date) -> tuple[date, date]:
    return date(day.year - 1, 1, 1), date(day.year + 1, 12, 31)


def _by_name(queryset: QuerySet[Patient], name: str, *, indexed: bool) -> Q:
    """The name is trigram-similar (PostgreSQL) or shares the family name (elsewhere).

    `indexed`: through the `%>` operator, which the trigram index serves. Else, where the birth
    dates already narrow the rows to a few, through `word_similarity()` itself: the same test,
    which the planner does not estimate from the name's 1,000-entry histogram (migrations 0004
    and 0008), an estimate that cost 9-11 ms of planning per registration against 2 without it.
    """
    if connections[queryset.db].vendor == "postgresql":
        if indexed:
            return Q(word_similar(indexed_upper("full_name"), name.upper()))
        similarity = TrigramWordSimilarity(name.upper(), indexed_upper("full_name"))
        return Q(GreaterThanOrEqual(similarity, SEARCH_SIMILARITY))
    words = _words(name)
    return Q(full_name__icontains=words[-1]) if words else Q(pk__in=[])


def candidate_condition(queryset: QuerySet[Patient], new: Identity) -> Q:
    """Rows that may be `new`: each branch is served by an index led by the clinic."""
    condition = Q(pk__in=[])
    if new.mrn:
        condition |= Q(mrn=new.mrn.upper())
    if new.email:
        condition |= Q(email__iexact=new.email)
    if new.phone:
        condition |= Q(phone=new.phone)
    day = new.date_of_birth
    condition |= Q(date_of_birth__in=[d for d in (day, _swapped(day)) if d is not None])
    if new.birth_date_estimated:
        start, end = _birth_years(day)
        # Three years of births: the name's trigram index narrows them.
        condition |= Q(date_of_birth__range=(start, end)) & _by_name(
            queryset, new.full_name, indexed=True
        )
    else:
        # Three days of births: the name only filters them.
        first_days = [date(day.year + offset, 1, 1) for offset in (-1, 0, 1)]
        condition |= Q(date_of_birth__in=first_days, birth_date_estimated=True) & _by_name(
            queryset, new.full_name, indexed=False
        )
    return condition


def find_duplicates(
    patients: QuerySet[Patient], new: Identity, *, exclude_pk: Any = None
) -> list[Candidate]:
    """Of `patients` (active patients of one clinic), those at or above the threshold, best
    first, at most MAX_REPORTED. One query."""
    rows = patients.filter(candidate_condition(patients, new))
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    # No ORDER BY: the planner combines the branches' indexes (BitmapOr) instead of walking
    # one ordering index through the whole clinic.
    scored = [score(new, patient) for patient in rows.order_by()[:MAX_SCORED]]
    threshold = settings.PATIENT_DUPLICATE_THRESHOLD
    found = [candidate for candidate in scored if candidate.score >= threshold]
    found.sort(key=lambda candidate: (-candidate.score, candidate.patient.pk))
    return found[:MAX_REPORTED]
