"""The organization-wide document stats, cached and invalidated on every write.

Counting an organization's documents means aggregating hundreds of thousands of rows (0.8 s
at 2 million documents), while the numbers change only when a document or a patient of the
organization is written. So the stats are cached per organization together with the
organization's *generation*, a token replaced after every committed write that can change them
(document saved or deleted, patient archived or restored). A read fetches the token and the
cached stats in one cache round trip and uses them only if the tokens match, so stats computed
from a snapshot older than the latest write are never served, even when a slow read stores them
after the write. The cache entry also expires after STATS_CACHE_SECONDS, which bounds
how late the rolling 30-day window may be.
"""

import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction

# Superusers without an organization see every organization: one entry for that view.
ALL_ORGANIZATIONS = "all"
# Longest an organization's stats are served from the cache. Every write replaces them at once;
# this only bounds the lag of the rolling 30-day window.
STATS_CACHE_SECONDS = 60


def _keys(scope: Any) -> tuple[str, str]:
    return f"document-stats:generation:{scope}", f"document-stats:value:{scope}"


def cached_stats(scope: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The stats of `scope` (an organization id or ALL_ORGANIZATIONS), from the cache when
    they are current, else from `compute()` and stored."""
    generation_key, value_key = _keys(scope)
    found = cache.get_many([generation_key, value_key])
    generation = found.get(generation_key)
    entry = found.get(value_key)
    if generation is not None and entry is not None and entry["generation"] == generation:
        return dict(entry["stats"])
    if generation is None:
        generation = uuid.uuid4().hex
        # `add`: a generation set meanwhile by a write wins.
        if not cache.add(generation_key, generation, timeout=None):
            generation = cache.get(generation_key)
    stats = compute()
    cache.set(
        value_key,
        {"generation": generation, "stats": stats},
        timeout=STATS_CACHE_SECONDS,
    )
    return stats


def invalidate_stats(organization_id: Any) -> None:
    """After the current transaction commits, no cached stats of the organization (nor of all
    organizations) are served any more."""

    def renew() -> None:
        cache.set_many(
            {_keys(scope)[0]: uuid.uuid4().hex for scope in (organization_id, ALL_ORGANIZATIONS)},
            timeout=None,
        )

    transaction.on_commit(renew)


def on_document_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    invalidate_stats(instance.organization_id)


def on_patient_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Archiving or restoring a patient hides or shows their documents in the stats.
    invalidate_stats(instance.organization_id)
