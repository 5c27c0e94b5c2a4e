"""`purge_stale_uploads`: pending documents past an age go, with whatever they stored."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from document.models import Document
from document.storage import LocalStorage, StorageUnavailable
from document.tasks import purge_stale_uploads
from patient.models import Patient
from pms.models import FailedTask
from tests.factories import DocumentFactory


def aged(document: Document, hours: float) -> Document:
    Document.objects.filter(pk=document.pk).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )
    return document


@pytest.fixture
def documents(patient: Patient, local_storage: LocalStorage) -> dict[str, Document]:
    stale = aged(DocumentFactory.create(patient=patient, size_bytes=3), hours=30)
    local_storage.write(stale.object_name, [b"pdf"], content_type="application/pdf", max_bytes=3)
    return {
        "stale": stale,
        "stale_without_file": aged(DocumentFactory.create(patient=patient), hours=25),
        "recent": aged(DocumentFactory.create(patient=patient), hours=2),
        "old_uploaded": aged(DocumentFactory.create(patient=patient, uploaded=True), hours=500),
    }


def run(*args: str) -> str:
    out = StringIO()
    call_command("purge_stale_uploads", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[int]:
    return set(Document.objects.values_list("pk", flat=True))


def test_it_removes_pending_documents_older_than_the_setting_and_their_files(
    documents: dict[str, Document],
    local_storage: LocalStorage,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        output = run()

    assert output.strip() == "Deleted 2 pending document(s) older than 24 hour(s)."
    assert remaining() == {documents["recent"].pk, documents["old_uploaded"].pk}
    assert local_storage.stat(documents["stale"].object_name) is None


def test_the_age_is_an_option(
    documents: dict[str, Document], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run("--older-than-hours", "1")

    assert remaining() == {documents["old_uploaded"].pk}


def test_the_default_age_is_a_setting(
    documents: dict[str, Document], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.DOCUMENT_PENDING_MAX_AGE_HOURS = 26

    with django_capture_on_commit_callbacks(execute=True):
        run()

    assert documents["stale_without_file"].pk in remaining()
    assert documents["stale"].pk not in remaining()


def test_a_dry_run_only_counts(documents: dict[str, Document], local_storage: LocalStorage) -> None:
    output = run("--dry-run")

    assert output.strip() == "Would delete 2 pending document(s) older than 24 hour(s)."
    assert len(remaining()) == 4
    assert local_storage.stat(documents["stale"].object_name) is not None


def test_a_zero_age_is_refused(documents: dict[str, Document]) -> None:
    with pytest.raises(CommandError, match="at least 1"):
        run("--older-than-hours", "0")

    assert len(remaining()) == 4


@pytest.mark.parametrize(
    "purge",
    [
        pytest.param(run, id="the command"),
        pytest.param(lambda: purge_stale_uploads.delay().get(), id="the beat task"),
    ],
)
def test_the_beat_task_purges_what_the_command_purges(
    purge: Any,
    documents: dict[str, Document],
    local_storage: LocalStorage,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DOCUMENT_PENDING_MAX_AGE_HOURS = 26

    with django_capture_on_commit_callbacks(execute=True):
        purge()

    assert remaining() == {
        documents["stale_without_file"].pk,
        documents["recent"].pk,
        documents["old_uploaded"].pk,
    }
    assert local_storage.stat(documents["stale"].object_name) is None


def test_a_storage_outage_during_the_beat_task_deletes_nothing_and_the_retry_purges_all(
    documents: dict[str, Document], local_storage: LocalStorage, monkeypatch: Any
) -> None:
    outages = iter([StorageUnavailable()])
    delete = LocalStorage.delete

    def delete_unless_down(self: LocalStorage, object_name: str) -> None:
        error = next(outages, None)
        if error is not None:
            assert len(remaining()) == len(documents)  # no row deleted before storage
            raise error
        delete(self, object_name)

    monkeypatch.setattr(LocalStorage, "delete", delete_unless_down)

    assert purge_stale_uploads.delay().get() == 2  # eagerly: the failed try, then the retry

    assert remaining() == {documents["recent"].pk, documents["old_uploaded"].pk}
    assert local_storage.stat(documents["stale"].object_name) is None
    assert not FailedTask.objects.exists()
