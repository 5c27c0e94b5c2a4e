"""Two confirms of one document at the same time end in one state (the row is locked)."""

import threading
import time

import pytest
from django.db import connection, transaction

from document.models import Document
from document.services import document_confirm
from document.storage import LocalStorage
from patient.models import Patient
from tests.factories import DocumentFactory


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirms_wait_for_the_row_lock_and_agree(
    postgres_only: None, patient: Patient, local_storage: LocalStorage
) -> None:
    body = b"%PDF-1.4"  # confirm checks the content too
    document = DocumentFactory.create(patient=patient, size_bytes=len(body))
    local_storage.write(
        document.object_name, [body], content_type="application/pdf", max_bytes=len(body)
    )
    results: list[Document] = []
    errors: list[BaseException] = []

    def confirm() -> None:
        try:
            results.append(document_confirm(document=document))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    with transaction.atomic():
        # Hold the row as another confirm would: both threads must wait for it.
        Document.objects.select_for_update().get(pk=document.pk)
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert all(thread.is_alive() for thread in threads)
        assert results == []
    for thread in threads:
        thread.join(timeout=10)

    assert errors == []
    assert len(results) == 2
    document.refresh_from_db()
    assert document.is_uploaded
    assert {result.uploaded_at for result in results} == {document.uploaded_at}
    assert {result.checksum for result in results} == {document.checksum}
