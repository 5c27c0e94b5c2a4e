"""Patient text search: the `search` substring filter and the ranked `/search/`.

On PostgreSQL both are served by trigram GIN indexes (migration 0002) built on exactly the
expressions used here: `UPPER(col::text)`, which is what Django's `icontains` compiles to and
what the fuzzy name match below is written against. On SQLite the ranked search falls back to
substring matching with a simple rank.
"""

import re
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    Case,
    F,
    FloatField,
    Lookup,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Greatest, Upper

from patient.models import Patient, PatientAlias

# Only digits and phone punctuation: the term may be (part of) a phone number.
_PHONE_LIKE = re.compile(r"^[0-9+()./\s-]*[0-9][0-9+()./\s-]*$")
# Queries longer than this get no transposition variants: their other trigrams carry them.
_MAX_VARIANT_QUERY = 16
# A transposition-corrected spelling ranks just below the same match typed correctly.
_VARIANT_WEIGHT = 0.9
# pg_trgm word-similarity threshold of the ranked /search/. At 0.4 swapped letters are always
# found (`jhon`, `sanodval`) and a common name has few enough candidates to rank (17 ms at a
# million patients); 0.3 also finds a changed letter in a short name but is several times slower.
SEARCH_SIMILARITY = 0.4


class InSubquery(Lookup):
    """`lhs IN (subquery)`; on PostgreSQL `lhs = ANY(ARRAY(subquery))`, which the planner runs
    once up front and then serves from the index of `lhs`, also as one branch of an OR (a
    BitmapOr). An `IN (subquery)` branch in an OR is a hashed subplan tested on every row: a
    sequential scan of the clinic."""

    lookup_name = "in_subquery"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def alias_condition(mrn: str) -> Q:
    """Patients that `mrn` was the MRN of a record merged into (an alias)."""
    aliases = PatientAlias.objects.filter(mrn=mrn.strip().upper()).values("patient_id")
    return Q(InSubquery(F("pk"), Subquery(aliases)))


def search_condition(term: str) -> Q:
    """Substring match on name, email, MRN and, for phone-like terms, phone digits; the exact
    former MRN of a merged record."""
    condition = (
        Q(full_name__icontains=term)
        | Q(email__icontains=term)
        | Q(mrn__icontains=term)
        | alias_condition(term)
    )
    if _PHONE_LIKE.match(term):
        # Phones are stored as E.164 digits: "(202) 555-01" must match "+1202555014".
        condition |= Q(phone__icontains=re.sub(r"\D", "", term))
    return condition


def indexed_upper(field: str) -> Upper:
    """`UPPER(field::text)`: the expression of the trigram indexes."""
    return Upper(Cast(F(field), output_field=TextField()))


def word_similar(text: Upper, query: str) -> TrigramWordSimilar:
    """`text %> query` (django.contrib.postgres): some word extent of `text` is trigram-similar
    to `query`, at least `pg_trgm.word_similarity_threshold` (set per connection from
    SEARCH_SIMILARITY). Unlike `word_similarity()`, the operator is index-served."""
    return TrigramWordSimilar(text, Value(query))


def transpositions(needle: str) -> list[str]:
    """The spellings with one pair of adjacent letters swapped ("JHON" -> "JOHN", ...).

    Trigrams are weakest on exactly this typo: "jhon" shares a single trigram with "john",
    the same one it shares with "jane", so no similarity threshold tells them apart. Trying
    the swapped spellings, each an index-served condition, does.
    """
    if len(needle) > _MAX_VARIANT_QUERY:
        return []
    variants = []
    for i in range(len(needle) - 1):
        first, second = needle[i], needle[i + 1]
        if first != second and first.isalnum() and second.isalnum():
            variant = needle[:i] + second + first + needle[i + 2 :]
            if variant not in variants:
                variants.append(variant)
    return variants


def ranked_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    """Patients matching `term`, best first; ties by name, then id (stable pages)."""
    term = " ".join(term.split())
    if connections[queryset.db].vendor == "postgresql":
        return _ranked_trigram_search(queryset, term)
    return _ranked_substring_search(queryset, term)


def _ranked_trigram_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    name = indexed_upper("full_name")
    needle = term.upper()
    variants = transpositions(needle)
    # A corrected spelling counts where it is written in the name: a substring match per
    # variant (trigram-indexed, exact) rather than a fuzzy one. At a million patients fuzzy
    # matches of eight variants of an 8-letter name meant ~20,000 candidates each, all ranked
    # by nine similarity functions (300 ms); the user's own term stays fuzzy.
    contains = [Q(full_name__icontains=v) for v in variants]
    fuzzy_name = reduce(or_, contains, Q(word_similar(name, needle)))
    identifier = Case(
        When(Q(mrn__iexact=term) | Q(email__iexact=term) | alias_condition(term), then=Value(1.0)),
        When(search_condition(term), then=Value(0.5)),
        default=Value(0.0),
        output_field=FloatField(),
    )
    rank = Greatest(
        TrigramWordSimilarity(needle, name),
        *(
            Case(
                When(match, then=TrigramWordSimilarity(v, name) * Value(_VARIANT_WEIGHT)),
                default=Value(0.0),
                output_field=FloatField(),
            )
            for v, match in zip(variants, contains, strict=True)
        ),
        identifier,
        output_field=FloatField(),
    )
    return (
        queryset.filter(fuzzy_name | search_condition(term))
        .alias(search_rank=rank)
        .order_by("-search_rank", "full_name", "id")
    )


def _ranked_substring_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    rank = Case(
        When(Q(mrn__iexact=term) | Q(email__iexact=term) | alias_condition(term), then=Value(3)),
        When(full_name__istartswith=term, then=Value(2)),
        When(full_name__icontains=term, then=Value(1)),
        default=Value(0),
    )
    return (
        queryset.filter(search_condition(term))
        .alias(search_rank=rank)
        .order_by("-search_rank", "full_name", "id")
    )


def set_similarity_threshold(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created` receiver: the `%>` threshold of this connection's sessions.

    Per connection rather than per query, so a search costs no extra round trip. Behind a
    transaction-pooling proxy (PgBouncer) set it on the role instead:
    `ALTER ROLE app SET pg_trgm.word_similarity_threshold = 0.3`.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)",
            [str(SEARCH_SIMILARITY)],
        )
