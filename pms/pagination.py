"""Page-number pagination with the contract's `{count, next, previous, results}` body, built
to stay cheap on tables of millions of rows.

- `count` never scans more than `COUNT_LIMIT` rows. A view may know the exact number
  cheaply (`view.known_count()`, e.g. per-organization counters for an unfiltered list); otherwise
  the rows are counted up to the limit, and beyond it `count` is the limit, a lower bound, and
  the `X-Count-Exact: false` header says so (the client shows "1,000+").
- When the count is exact, it was read as the matches' ids, and the page is ordered from those
  ids alone: no plan rests on the planner's guess of how many rows a filter matches. The page
  is read by those ids under the scope only (`among`): the filters are not planned twice.
- Pages end at `MAX_RESULTS`: a page starting deeper is a 400 (narrow the filters or
  reverse the ordering), so OFFSET never walks far, and `next` stops there.
- A page after the first is read as a deferred join: the ids of the page come from the ordering
  index alone (`... WHERE id IN (SELECT id ... ORDER BY ... LIMIT n OFFSET m)`), then only the
  page's rows are read, in the same single query.
- One row more than the page is fetched to know whether there is a next page without a count.
"""

from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.where import WhereNode
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from pms.scoping import OrganizationScopedQuerySet

COUNT_EXACT_HEADER = "X-Count-Exact"
# Lists count at most this many rows (past it `count` is this value and X-Count-Exact false):
# counting a clinic's million rows costs 25-70 ms, counting a thousand under 1 (bench/).
COUNT_LIMIT = 1000
# Pages starting past this many results are refused (400), so an OFFSET never walks far: page
# 500 costs 1.3 ms of SQL, the OFFSET of the millionth row seconds.
MAX_RESULTS = 10000


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    page_size_query_description = "Results per page: 1 to 100 (larger values are capped at 100)."

    def get_page_size(self, request: Request) -> int:
        """DRF silently falls back to the default for a malformed `page_size`; here it is a 400
        like every other invalid parameter."""
        parameter = self.page_size_query_param or ""
        raw = request.query_params.get(parameter)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({parameter: ["A whole number of at least 1 is required."]})
        return min(size, self.max_page_size)

    @property
    def max_results(self) -> int:
        return int(MAX_RESULTS)

    @property
    def count_limit(self) -> int:
        return int(COUNT_LIMIT)

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request, self.view = request, view
        self._matches: list[Any] | None = None
        size = self.get_page_size(request)
        counter = getattr(view, "known_count", None)
        known = counter() if callable(counter) else None
        if known is not None:
            self.count, self.count_exact = known, True
        else:
            self.count, self.count_exact = self._capped_count(queryset)
        number = self._page_number(request, size)
        offset = (number - 1) * size
        if offset >= self.max_results:
            raise ValidationError(
                {
                    self.page_query_param: [
                        f"Only the first {self.max_results} results can be paged through; "
                        "narrow the filters or reverse the ordering."
                    ]
                }
            )
        if number > 1 and self.count_exact and offset >= self.count:
            raise NotFound(self.invalid_page_message)
        rows = self._rows(queryset, offset, size + 1)
        if number > 1 and not rows:
            raise NotFound(self.invalid_page_message)
        self.page_number = number
        self.has_next = len(rows) > size and offset + size < self.max_results
        return rows[:size]

    def _capped_count(self, queryset: Any) -> tuple[int, bool]:
        if not isinstance(queryset, QuerySet):
            return len(queryset), True
        # The ids of the matches, unordered: their number is the count, and when that is all of
        # them the page is read from them (`_rows`). Only the ids: the rows' other columns and
        # joins would be read for nothing (`smith`: 46 ms of SQL with them, 40 without).
        self._matches = list(
            queryset.order_by().values_list("pk", flat=True)[: self.count_limit + 1]
        )
        if len(self._matches) > self.count_limit:
            return self.count_limit, False
        return len(self._matches), True

    def _page_number(self, request: Request, size: int) -> int:
        raw = request.query_params.get(self.page_query_param) or "1"
        if raw in self.last_page_strings:
            return max(1, -(-self.count // size))
        try:
            number = int(raw)
        except ValueError:
            number = 0
        if number < 1:
            raise NotFound(self.invalid_page_message)
        return number

    def _rows(self, queryset: Any, offset: int, limit: int) -> list[Any]:
        matches = self._matches  # None: the view knew its count
        if isinstance(queryset, QuerySet) and matches is not None and self.count_exact:
            # Every match is known (at most COUNT_LIMIT): the page is ordered from them alone.
            # Left to itself the planner may walk the ordering index hoping to meet the page's
            # rows early, on a guess of how many rows match (`search=sandoval`: 339 match, 823
            # guessed, 19 ms walked against 2 ms from the ids).
            return list(self.among(queryset, matches)[offset : offset + limit])
        if not isinstance(queryset, QuerySet) or offset == 0:
            return list(queryset[offset : offset + limit])
        if not connections[queryset.db].features.allow_sliced_subqueries_with_in:
            return list(queryset[offset : offset + limit])
        # The subquery walks the ordering index only; the outer query reads `limit` rows.
        page_ids = queryset.values("pk")[offset : offset + limit]
        return list(queryset.filter(pk__in=page_ids))

    def among(self, queryset: QuerySet[Any], ids: list[Any]) -> QuerySet[Any]:
        """The rows of `queryset` that are `ids`, which this request has just read through it.

        Only the scope is sent again with the ids, not the filters: every id passed them, and
        planning a search's trigram conditions costs more than reading a page by primary key
        (the ranked `sanodval`: 10 ms to plan, under 1 to run). The ids' rows are in the scope's
        clinic for good (a patient never changes clinic); one archived meanwhile is shown as it
        would have been a moment earlier.
        """
        if not isinstance(queryset, OrganizationScopedQuerySet) or self.request is None:
            return queryset.filter(pk__in=ids)
        rows = queryset.all()
        rows.query.where = WhereNode()
        return rows.visible_to(self.request.user).filter(pk__in=ids)

    def get_paginated_response(self, data: Any) -> Response:
        response = Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )
        response[COUNT_EXACT_HEADER] = "true" if self.count_exact else "false"
        return response

    def get_next_link(self) -> str | None:
        if not self.has_next or self.request is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, self.page_number + 1)

    def get_previous_link(self) -> str | None:
        if self.page_number <= 1 or self.request is None:
            return None
        url = self.request.build_absolute_uri()
        if self.page_number == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.page_number - 1)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = super().get_paginated_response_schema(schema)
        response["properties"]["count"]["description"] = (
            f"Number of results. Exact up to {COUNT_LIMIT} (and for an "
            f"unfiltered patient list); beyond, the value is {COUNT_LIMIT} "
            f"and the `{COUNT_EXACT_HEADER}` header is `false`."
        )
        return response

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_query_param, self.page_size_query_param):
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_query_param:
                parameter["description"] = (
                    f"Page number. Pages starting past the first {MAX_RESULTS} "
                    "results are refused (400): narrow the filters or reverse the ordering."
                )
        return parameters
