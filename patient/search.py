"""Patient text search: the `search` substring filter and the ranked `/search/`.

On PostgreSQL both are served by trigram GIN indexes (migration 0002) built on exactly the
expressions used here: `UPPER(col::text)`, which is what Django's `icontains` compiles to and
what the fuzzy name match below is written against. A ranked page that the nearest names prove
is read from the nearest-names GiST index (migration 0007, `RankedPagination`). On
SQLite the ranked search falls back to substring matching with a simple rank.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordDistance
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BooleanField,
    Case,
    F,
    FloatField,
    Func,
    Lookup,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Upper
from rest_framework.request import Request

from patient.models import Patient, PatientAlias, PatientQuerySet
from pms.pagination import PageNumberPagination

# Only digits and phone punctuation: the term may be (part of) a phone number.
_PHONE_LIKE = re.compile(r"^[0-9+()./\s-]*[0-9][0-9+()./\s-]*$")
# Queries longer than this get no transposition variants: their other trigrams carry them.
_MAX_VARIANT_QUERY = 16
# A transposition-corrected spelling ranks just below the same match typed correctly.
_VARIANT_WEIGHT = 0.9
# A term with at most this many transposed spellings may have its page proven from them when
# its own nearest names do not prove it (`nearest_names`): a short term has the most
# candidates to rank and the fewest spellings to walk (`jhon`: 27,000 candidates, 205 ms a
# request ranked, 66 ms proven, its three walks 2 ms); `sanodval`'s seven walks cost 10 ms,
# more than ranking its 400 candidates (docs/performance.md, "Short typos from their
# transposed spellings").
_MAX_WALKED_SPELLINGS = 4
# The rank of an exact MRN, email or former MRN, and of a substring match anywhere.
_EXACT_IDENTIFIER = 1.0
_SUBSTRING = 0.5
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


def exact_identifier_condition(term: str) -> Q:
    """The term is a patient's MRN, email or former MRN, exactly (the best match there is)."""
    return Q(mrn__iexact=term) | Q(email__iexact=term) | alias_condition(term)


def search_condition(term: str) -> Q:
    """Substring match on name, email, MRN and, for phone-like terms, phone digits; the exact
    former MRN of a merged record."""
    return substring_condition(term) | alias_condition(term)


def substring_condition(term: str) -> Q:
    """`search_condition` but the former MRNs."""
    condition = Q(full_name__icontains=term) | Q(email__icontains=term) | Q(mrn__icontains=term)
    if _PHONE_LIKE.match(term):
        # Phones are stored as E.164 digits: "(202) 555-01" must match "+1202555014".
        condition |= Q(phone__icontains=re.sub(r"\D", "", term))
    return condition


def indexed_upper(field: str) -> Upper:
    """`UPPER(field::text)`: the expression of the trigram indexes."""
    return Upper(Cast(F(field), output_field=TextField()))


def word_similar(text: Upper, query: str | Func) -> TrigramWordSimilar:
    """`text %> query` (django.contrib.postgres): some word extent of `text` is trigram-similar
    to `query`, at least `pg_trgm.word_similarity_threshold` (set per connection from
    SEARCH_SIMILARITY). Unlike `word_similarity()`, the operator is index-served."""
    return TrigramWordSimilar(text, Value(query) if isinstance(query, str) else query)


class Unestimated(Func):
    """`(SELECT 'term'::text)`: a term the planner does not estimate a condition from.

    PostgreSQL runs the one-row sub-select once, before the statement (an InitPlan), and the
    trigram index serves the condition as it does a constant; but `%>`'s estimator, which with
    a constant applies `word_similarity` to each of the expression's 1,000 most common values
    and 1,001 histogram bounds (migrations 0004 and 0008), takes its default instead. That was
    3-8 ms of a ranked search's 4-11 ms of planning, on the same plans (docs/performance.md,
    "Ranked search planning: the fuzzy term is not estimated"). PostgreSQL only.
    """

    template = "(SELECT %(expressions)s::text)"
    output_field = TextField()


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


def normalized(term: str) -> str:
    return " ".join(term.split())


def ranked_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    """Patients matching `term`, best first; ties by id, the order of registration (stable
    pages, and the order the nearest-names index gives ties in)."""
    term = normalized(term)
    if connections[queryset.db].vendor == "postgresql":
        ranked = _ranked_trigram_search(queryset, term)
    else:
        ranked = _ranked_substring_search(queryset, term)
    if isinstance(ranked, PatientQuerySet):
        ranked.ranked_from = (queryset, term)
    return ranked


def _ranked_trigram_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    name = indexed_upper("full_name")
    needle = term.upper()
    variants = transpositions(needle)
    # A corrected spelling counts where it is written in the name: a substring match per
    # variant (trigram-indexed, exact) rather than a fuzzy one. At a million patients fuzzy
    # matches of eight variants of an 8-letter name meant ~20,000 candidates each, all ranked
    # by nine similarity functions (300 ms); the user's own term stays fuzzy.
    fuzzy_name = Q(word_similar(name, Unestimated(Value(needle)))) | _spelled_in_name(variants)
    identifier = Case(
        When(exact_identifier_condition(term), then=Value(_EXACT_IDENTIFIER)),
        When(substring_condition(term), then=Value(_SUBSTRING)),
        default=Value(0.0),
        output_field=FloatField(),
    )
    return (
        queryset.filter(fuzzy_name | search_condition(term))
        .alias(search_rank=NameRank(name, needle, variants, identifier))
        .order_by("-search_rank", "id")
    )


def _spelled_in_name(spellings: list[str]) -> Q:
    """The name contains one of `spellings` (none: no condition)."""
    return Q(NameContainsAny(spellings)) if spellings else Q()


def _contains(connection: Any, column_sql: str, text: str) -> tuple[str, str]:
    """The SQL and the parameter of `column__icontains=text` (Django's own cast, operator and
    escaping), for a column already compiled."""
    cast = connection.ops.lookup_cast("icontains") % column_sql
    return (
        f"{cast} {connection.operators['icontains']}",
        f"%{connection.ops.prep_for_like_query(text)}%",
    )


class NameContainsAny(Func):
    """`(UPPER(full_name::text) LIKE UPPER('%S1%') OR ...)`, one arm per spelling: the SQL of
    `Q(full_name__icontains=s1) | ...`, which the name's trigram index serves arm by arm.

    One node instead of a Q per spelling: an 8-letter term has seven transposed spellings, and
    Django builds, resolves and compiles each lookup on its own (0.2-1.9 ms of CPU per ranked
    search on top of `NameRank`, below; docs/performance.md, "The ranked search's SQL in two
    nodes").
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, spellings: list[str]) -> None:
        super().__init__(F("full_name"))
        self.spellings = spellings

    def as_sql(  # type: ignore[override]  # no function, template or joiner to take
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column_sql, column_params = compiler.compile(self.get_source_expressions()[0])
        arms: list[str] = []
        params: list[Any] = []
        for spelling in self.spellings:
            arm, pattern = _contains(connection, column_sql, spelling)
            arms.append(arm)
            params += [*column_params, pattern]
        return f"({' OR '.join(arms)})", tuple(params)


class NameRank(Func):
    """The rank of a ranked search, in one node:

        GREATEST(
            WORD_SIMILARITY(needle, name),
            CASE WHEN name LIKE UPPER('%V%') THEN WORD_SIMILARITY(V, name) * 0.9 ELSE 0.0 END,
            identifier                              -- 1.0 exact identifier, 0.5 substring, else 0
        )

    where `name` is `UPPER(full_name::text)` and each V a transposed spelling of the needle.
    Built from Django's Greatest, Case, When and TrigramWordSimilarity, the same SQL is ~40
    expressions for an 8-letter term, each copied and resolved when the queryset is built and
    again whenever an ORDER BY by it is compiled (each pass of the paginator): 2.2-8.6 ms of
    CPU per ranked search on the bench database (docs/performance.md). PostgreSQL only.
    """

    output_field = FloatField()

    def __init__(self, name: Upper, needle: str, spellings: list[str], identifier: Case) -> None:
        super().__init__(name, F("full_name"), identifier)
        self.needle = needle
        self.spellings = spellings

    def as_sql(  # type: ignore[override]  # no function, template or joiner to take
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        name, column, identifier = self.get_source_expressions()
        name_sql, name_params = compiler.compile(name)
        column_sql, column_params = compiler.compile(column)
        identifier_sql, identifier_params = compiler.compile(identifier)
        parts = [f"WORD_SIMILARITY(%s, {name_sql})"]
        params: list[Any] = [self.needle, *name_params]
        for spelling in self.spellings:
            # The name's condition is `NameContainsAny`'s arm: one way to write "contains".
            contains, pattern = _contains(connection, column_sql, spelling)
            parts.append(
                f"CASE WHEN {contains} THEN (WORD_SIMILARITY(%s, {name_sql}) * %s) ELSE 0.0 END"
            )
            params += [*column_params, pattern, spelling, *name_params, _VARIANT_WEIGHT]
        sql = f"GREATEST({', '.join([*parts, identifier_sql])})"
        return sql, (*params, *identifier_params)


def substring_matches(searched: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    """The candidates of `ranked_search(searched, term)` but the fuzzy name matches: a
    substring of name, email, MRN or phone, a former MRN, a transposed spelling in the name.
    Each is an exact condition of a trigram index, several times cheaper than the fuzzy `%>`."""
    spelled = _spelled_in_name(transpositions(term.upper()))
    return searched.filter(search_condition(term) | spelled)


def _ranked_substring_search(queryset: QuerySet[Patient], term: str) -> QuerySet[Patient]:
    rank = Case(
        When(exact_identifier_condition(term), then=Value(3)),
        When(full_name__istartswith=term, then=Value(2)),
        When(full_name__icontains=term, then=Value(1)),
        default=Value(0),
    )
    return (
        queryset.filter(search_condition(term))
        .alias(search_rank=rank)
        .order_by("-search_rank", "id")
    )


class IdDistance(Func):
    """`id::float8 <-> 0`: the id as the nearest-names index's second ORDER BY distance (ties
    by id; PostgreSQL takes only a float beside the lossy word distance)."""

    arg_joiner = " <-> "
    template = "%(expressions)s"
    output_field = FloatField()

    def __init__(self) -> None:
        super().__init__(Cast(F("id"), FloatField()), Cast(Value(0.0), FloatField()))


def nearest_names_query(searched: QuerySet[Patient], needle: str, depth: int) -> QuerySet[Any]:
    """(id, word distance) of the `depth` names of `searched` nearest to `needle` that are
    similar at least the `%>` threshold, nearest first, ties by id: an ordered walk of the
    nearest-names GiST index (migration 0007)."""
    return _walk(searched, needle).values_list("pk", "name_distance")[:depth]


def _walk(searched: QuerySet[Patient], needle: str) -> QuerySet[Any]:
    return (
        searched.filter(full_name__trigram_word_similar=needle)
        .annotate(name_distance=TrigramWordDistance(needle, "full_name"))
        .order_by("name_distance", IdDistance())
    )


def whole_word_spellings(
    searched: QuerySet[Patient], spellings: list[str], limit: int
) -> list[list[Any]]:
    """For each spelling, the ids of the first `limit` rows of `searched`, by id, whose name
    holds it as a whole word (word distance 0), or all of them when fewer: one walk of the
    nearest-names index per spelling, in one statement. The threshold is the caller's; the
    rows at distance 0 come first whatever it is."""
    walks = [
        _walk(searched, spelling)
        .annotate(spelling=Value(index))
        .values_list("pk", "name_distance", "spelling")[:limit]
        for index, spelling in enumerate(spellings)
    ]
    found: list[list[Any]] = [[] for _ in spellings]
    for pk, distance, index in walks[0].union(*walks[1:], all=True):
        if distance == 0:
            found[index].append(pk)
    return found


def nearest_names(ranked: QuerySet[Patient], depth: int) -> QuerySet[Patient] | None:
    """`ranked` (a `ranked_search`) narrowed to the rows its first `depth` results are among,
    found with the nearest-names GiST index; None when that cannot be proven.

    The rank is the greatest of a name's word similarity, 0.9 x a transposed spelling's where
    the name contains it, 1.0 for an exact identifier and 0.5 for a substring anywhere. The
    index gives the `depth` names of the searched rows nearest to the term, ties by id, as the
    ranking orders them. When the last of them is similar above 0.9, no row ranked by
    anything but its name or an exact identifier can be among the first `depth`: those are
    the nearest names and the exact identifiers, and only they are ranked.

    When fewer than `depth` names are that near, they are every name similar above 0.9, and
    the page may still be proven from them, the exact identifiers and the whole-word rows of
    the term's transposed spellings (`_proven_by_spellings`), if it has at most
    `_MAX_WALKED_SPELLINGS` (`jhon`: `JOHN`). Otherwise (`sanodval`, `rodriguezrodrigu`) it is
    None, and every candidate is ranked. PostgreSQL only.
    """
    ranked_from = getattr(ranked, "ranked_from", None)
    if ranked_from is None or connections[ranked.db].vendor != "postgresql":
        return None
    searched, term = ranked_from
    needle = term.upper()
    spellings = transpositions(needle)
    spelled = None
    # Each spelling's walk reads twice the depth: spare rows for the names that only look
    # like it (`_proven_by_spellings`).
    walk = 2 * depth
    # From the searched rows, not `ranked`: beside the candidates' condition the planner
    # expects a handful of rows and sorts every name match instead of walking the index.
    # Only names similar at least 0.9 can prove anything, and with that threshold the index
    # skips every page of names that cannot reach it: a term with few near names costs 1 ms,
    # not the 30-70 ms of walking the clinic's names (`jhon`, `sanodval`). The threshold is
    # this transaction's (the search runs in `@bounded`'s), set back after the reads.
    with similarity_threshold(ranked.db, _VARIANT_WEIGHT):
        nearest = list(nearest_names_query(searched, needle, depth))
        if len(nearest) < depth and len(spellings) <= _MAX_WALKED_SPELLINGS:
            spelled = whole_word_spellings(searched, spellings, walk) if spellings else []
    ids = [pk for pk, _distance in nearest]
    if len(nearest) == depth:
        if nearest[-1][1] >= 1 - _VARIANT_WEIGHT:
            return None
        return _among_ranked(ranked, searched, term, ids)
    if spelled is None:
        return None
    return _proven_by_spellings(ranked, searched, term, ids, spelled, walk, depth)


def _proven_by_spellings(
    ranked: QuerySet[Patient],
    searched: QuerySet[Patient],
    term: str,
    nearest: list[Any],
    spelled: list[list[Any]],
    walk: int,
    depth: int,
) -> QuerySet[Patient] | None:
    """The first `depth` results among the nearest names (every name similar above 0.9),
    the exact identifiers and each spelling's whole-word rows (`whole_word_spellings`, cut at
    `walk` rows, more than `depth`), or None when these rows do not prove it.

    Outside them nothing ranks above 0.9: a transposed spelling ranks at most 0.9 x 1, a
    substring 0.5. A row outside ranks 0.9 only as a whole-word spelling its name contains
    (`JOHN` in `Mary John Smith`), so it is a row of a cut walk, past its last id. Such a row
    comes after every row here that ranks above 0.9, or 0.9 with an id up to the smallest
    last id of the cut walks: when at least `depth` rows are so ahead, no row outside is among
    the first `depth` (nor any row ranking below 0.9). The ranks are these rows' own: a name
    can hold a spelling's trigrams as a word without containing it (`Zachary Martinez` is a
    whole-word `MARY` to the index and ranks 0.2), which the walks' spare depth absorbs.
    """
    walked = [pk for ids in spelled for pk in ids]
    candidates = _among_ranked(ranked, searched, term, nearest + walked)
    ranks = candidates.annotate(rank=F("search_rank")).values_list("pk", "rank")
    cut = min((max(ids) for ids in spelled if len(ids) == walk), default=None)
    ahead = sum(
        rank > _VARIANT_WEIGHT or (rank == _VARIANT_WEIGHT and (cut is None or pk <= cut))
        for pk, rank in ranks
    )
    return candidates if ahead >= depth else None


def _among_ranked(
    ranked: QuerySet[Patient], searched: QuerySet[Patient], term: str, ids: list[Any]
) -> QuerySet[Patient]:
    """`ranked`'s rows that are `ids` or an exact identifier of `term`, under the searched
    rows' conditions only (scope, archive, the other filters): the nearest names and exact
    identifiers are candidates by construction, and planning the candidates' trigram
    conditions again costs more than the read (`maria`: 8 ms against 1)."""
    narrowed = ranked.all()
    narrowed.query.where = searched.query.where.clone()
    return narrowed.filter(Q(pk__in=ids) | exact_identifier_condition(term))


class RankedPagination(PageNumberPagination):
    """The ranked search's pages, without ranking more than a page needs.

    First the nearest names are asked whether they hold the page (`nearest_names`: a common
    name, such as `maria` with 22,866 candidates in the largest clinic, or a short typo of one,
    such as `jhon`, from its spellings' whole words). If they do, the count is the capped count
    of the candidates, unranked (at once capped when the candidates but the fuzzy ones pass
    the cap), and only the rows that proved it are ranked for the page. If not, one ranking
    pass gives both: the ids of the first `COUNT_LIMIT` + 1 candidates in rank order (their
    number is the capped count), and the page among them, read by primary key and put in their
    order (a page past them falls back to the ranked query with OFFSET).
    """

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        self._nearest = None
        raw = request.query_params.get(self.page_query_param) or "1"
        if isinstance(queryset, QuerySet) and raw.isdigit():
            depth = int(raw) * self.get_page_size(request) + 1
            if 0 < depth <= self.max_results + 1:
                self._nearest = nearest_names(queryset, depth)
        return super().paginate_queryset(queryset, request, view)

    def _capped_count(self, queryset: Any) -> tuple[int, bool]:
        self._ranked_ids = None
        if self._nearest is not None:
            return self._capped_from_substrings(queryset) or super()._capped_count(queryset)
        if not isinstance(queryset, QuerySet):
            return super()._capped_count(queryset)
        self._ranked_ids = list(queryset.values_list("pk", flat=True)[: self.count_limit + 1])
        if len(self._ranked_ids) > self.count_limit:
            return self.count_limit, False
        return len(self._ranked_ids), True

    def _capped_from_substrings(self, ranked: Any) -> tuple[int, bool] | None:
        """The capped count when the candidates found without the fuzzy name match already
        pass the cap (`substring_matches`; a common name: `maria`, `smith`, `jhon`'s `JOHN`),
        else None. The fuzzy `%>` is the costliest part of the candidates' count (`maria`: 55
        ms of SQL to count 1,001 candidates, 17 without it); where the rest stay under the cap,
        the full count follows (`sandoval`: 2-5 ms more)."""
        searched, term = ranked.ranked_from
        matches = substring_matches(searched, term).order_by()[: self.count_limit + 1]
        if matches.count() > self.count_limit:
            return self.count_limit, False
        return None

    def _rows(self, queryset: Any, offset: int, limit: int) -> list[Any]:
        if self._nearest is not None:
            return list(self._nearest[offset : offset + limit])
        ids = getattr(self, "_ranked_ids", None)  # None: the view knew its count
        if ids is None or (offset + limit > len(ids) and not self.count_exact):
            return super()._rows(queryset, offset, limit)
        page_ids = ids[offset : offset + limit]
        rows = {_pk_of(row): row for row in self.among(queryset, page_ids).order_by()}
        return [rows[pk] for pk in page_ids if pk in rows]


def _pk_of(row: Any) -> Any:
    """The primary key of a model row or of a `.values()` row (which names it `id`)."""
    return row["id"] if isinstance(row, dict) else row.pk


@contextmanager
def similarity_threshold(using: str, threshold: float) -> Iterator[None]:
    """The `%>` threshold at `threshold` for this transaction's statements in the block, and
    as it was again after it (a failed statement's rollback also restores it)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('pg_trgm.word_similarity_threshold'), "
            "set_config('pg_trgm.word_similarity_threshold', %s, true)",
            [str(threshold)],
        )
        (before, _now) = cursor.fetchone()
        try:
            yield
        finally:
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [before]
            )


def set_similarity_threshold(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created` receiver: the `%>` threshold of this connection's sessions.

    Per connection rather than per query, so a search costs no extra round trip. Behind a
    transaction-pooling proxy (PgBouncer) set it on the role instead, to `SEARCH_SIMILARITY`
    (`ALTER ROLE app SET pg_trgm.word_similarity_threshold = 0.4`): the duplicate check compares
    `word_similarity()` with that constant where it does not use the operator.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)",
            [str(SEARCH_SIMILARITY)],
        )
