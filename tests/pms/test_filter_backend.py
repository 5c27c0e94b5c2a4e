"""The filter backend skips the FilterSet when a request gives none of its parameters."""

from typing import Any

import pytest

from patient.filters import PatientFilterSet, PatientSearchFilterSet
from pms.filters import optional_parameters

LIST_URL = "/api/patient/patients/"


def test_only_filtersets_without_required_or_multi_parameter_filters_are_skippable() -> None:
    assert optional_parameters(PatientFilterSet) == frozenset(PatientFilterSet.base_filters)
    # `q` is required: skipping would answer 200 where the FilterSet answers 400.
    assert optional_parameters(PatientSearchFilterSet) is None


@pytest.fixture
def filtersets_built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    built: list[dict[str, Any]] = []
    original: Any = PatientFilterSet.__init__

    def recording_init(self: PatientFilterSet, data: Any = None, *args: Any, **kwargs: Any) -> None:
        built.append(dict(data or {}))
        original(self, data, *args, **kwargs)

    monkeypatch.setattr(PatientFilterSet, "__init__", recording_init)
    return built


def test_an_unfiltered_list_builds_no_filterset(as_clinician, filtersets_built) -> None:
    assert as_clinician.get(f"{LIST_URL}?page_size=5").status_code == 200
    assert filtersets_built == []


def test_a_filtered_list_is_filtered_and_validated(as_clinician, filtersets_built) -> None:
    assert as_clinician.get(f"{LIST_URL}?gender=M").status_code == 200
    assert as_clinician.get(f"{LIST_URL}?gender=nonsense").status_code == 400
    assert len(filtersets_built) == 2


def test_the_search_still_requires_its_term(as_clinician) -> None:
    assert as_clinician.get(f"{LIST_URL}search/").status_code == 400
