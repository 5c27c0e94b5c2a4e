"""The gcs backend against gcp-storage-emulator, and its V4 signatures checked by hand."""

import base64
import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from django.utils import timezone

from document import storage as storage_module
from document.storage import GCSStorage, ObjectIncomplete, ObjectTooLarge, get_storage
from tests.document.v4 import query_params, verify_v4_signed_url
from tests.gcs import EMULATOR_BUCKET, Emulator, ServiceAccount

OBJECT_NAME = "documents/7/0123456789abcdef0123456789abcdef"


def _with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = query_params(url) | changes
    return urlunsplit(parts._replace(query=urlencode(params)))


def _upload(storage: Any, body: bytes, content_type: str = "application/pdf") -> None:
    signed = storage.sign_upload(
        object_name=OBJECT_NAME, content_type=content_type, size_bytes=len(body)
    )
    response = requests.put(signed.url, data=body, headers=signed.headers, timeout=10)
    assert response.status_code == 200


def test_the_gcs_backend_is_chosen_by_the_setting(gcs_backend: Emulator) -> None:
    assert isinstance(get_storage(), GCSStorage)


def test_an_upload_url_is_a_v4_url_on_the_emulator_signed_by_the_service_account(
    gcs_backend: Emulator, service_account: ServiceAccount
) -> None:
    signed = get_storage().sign_upload(
        object_name=OBJECT_NAME, content_type="application/pdf", size_bytes=1024
    )

    assert signed.method == "PUT"
    assert signed.headers == {"Content-Type": "application/pdf"}
    assert signed.url.startswith(f"{gcs_backend.url}/{EMULATOR_BUCKET}/{OBJECT_NAME}?")
    params = query_params(signed.url)
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"].startswith(f"{service_account.email}/")
    assert params["X-Goog-SignedHeaders"] == "content-type;host"
    verify_v4_signed_url(
        signed.url, method="PUT", headers=signed.headers, public_key=service_account.public_key
    )


def test_the_upload_signature_binds_the_content_type(
    gcs_backend: Emulator, service_account: ServiceAccount
) -> None:
    signed = get_storage().sign_upload(
        object_name=OBJECT_NAME, content_type="application/pdf", size_bytes=1024
    )

    for other_type in ("image/png", "application/octet-stream", ""):
        with pytest.raises(InvalidSignature):
            verify_v4_signed_url(
                signed.url,
                method="PUT",
                headers={"Content-Type": other_type},
                public_key=service_account.public_key,
            )


def test_the_upload_signature_binds_the_expiry_and_the_signing_time(
    gcs_backend: Emulator, service_account: ServiceAccount
) -> None:
    signed = get_storage().sign_upload(
        object_name=OBJECT_NAME, content_type="application/pdf", size_bytes=1024
    )
    date = query_params(signed.url)["X-Goog-Date"]
    later_date = date[:-3] + ("59Z" if not date.endswith("59Z") else "58Z")

    for tampered in (
        _with_params(signed.url, **{"X-Goog-Expires": "604800"}),
        _with_params(signed.url, **{"X-Goog-Date": later_date}),
    ):
        with pytest.raises(InvalidSignature):
            verify_v4_signed_url(
                tampered,
                method="PUT",
                headers=signed.headers,
                public_key=service_account.public_key,
            )


def test_the_upload_signature_binds_the_method_and_the_object(
    gcs_backend: Emulator, service_account: ServiceAccount
) -> None:
    signed = get_storage().sign_upload(
        object_name=OBJECT_NAME, content_type="application/pdf", size_bytes=1024
    )
    other_object = signed.url.replace(OBJECT_NAME, "documents/8/ffffffffffffffffffffffffffffffff")

    with pytest.raises(InvalidSignature):
        verify_v4_signed_url(
            signed.url, method="GET", headers=signed.headers, public_key=service_account.public_key
        )
    with pytest.raises(InvalidSignature):
        verify_v4_signed_url(
            other_object,
            method="PUT",
            headers=signed.headers,
            public_key=service_account.public_key,
        )


def test_upload_and_download_urls_live_for_the_configured_minutes(
    gcs_backend: Emulator, settings: Any
) -> None:
    settings.DOCUMENT_UPLOAD_URL_MINUTES = 20
    settings.DOCUMENT_DOWNLOAD_URL_MINUTES = 3
    before = timezone.now()

    upload = get_storage().sign_upload(
        object_name=OBJECT_NAME, content_type="application/pdf", size_bytes=1
    )
    download = get_storage().sign_download(
        object_name=OBJECT_NAME, filename="a.pdf", content_type="application/pdf"
    )

    assert query_params(upload.url)["X-Goog-Expires"] == str(20 * 60)
    assert query_params(download.url)["X-Goog-Expires"] == str(3 * 60)
    assert (
        before + timedelta(minutes=20)
        <= upload.expires_at
        <= timezone.now() + timedelta(minutes=20)
    )
    assert (
        before + timedelta(minutes=3)
        <= download.expires_at
        <= timezone.now() + timedelta(minutes=3)
    )


def test_a_download_url_forces_an_attachment_and_its_signature_covers_it(
    gcs_backend: Emulator, service_account: ServiceAccount
) -> None:
    signed = get_storage().sign_download(
        object_name=OBJECT_NAME, filename='scan "1".pdf', content_type="application/pdf"
    )

    params = query_params(signed.url)
    assert params["response-content-disposition"] == 'attachment; filename="scan \\"1\\".pdf"'
    assert params["response-content-type"] == "application/pdf"
    verify_v4_signed_url(
        signed.url, method="GET", headers={}, public_key=service_account.public_key
    )
    inline = _with_params(signed.url, **{"response-content-disposition": "inline"})
    with pytest.raises(InvalidSignature):
        verify_v4_signed_url(
            inline, method="GET", headers={}, public_key=service_account.public_key
        )


def test_stat_reports_the_stored_size_type_and_md5(gcs_backend: Emulator, pdf_bytes: Any) -> None:
    storage = get_storage()
    body = pdf_bytes(5000)
    _upload(storage, body)

    stored = storage.stat(OBJECT_NAME)

    assert stored is not None
    assert stored.size_bytes == 5000
    assert stored.content_type == "application/pdf"
    md5 = hashlib.md5(body, usedforsecurity=False).digest()
    assert stored.checksum == "md5:" + base64.b64encode(md5).decode()


def test_stat_of_a_missing_object_is_none(gcs_backend: Emulator) -> None:
    assert get_storage().stat(OBJECT_NAME) is None


def test_delete_removes_the_object_and_may_be_repeated(
    gcs_backend: Emulator, pdf_bytes: Any
) -> None:
    storage = get_storage()
    _upload(storage, pdf_bytes(100))

    storage.delete(OBJECT_NAME)
    storage.delete(OBJECT_NAME)

    assert storage.stat(OBJECT_NAME) is None


def test_a_download_url_fetches_the_bytes_as_an_attachment(
    gcs_backend: Emulator, pdf_bytes: Any
) -> None:
    storage = get_storage()
    body = pdf_bytes(3000)
    _upload(storage, body)
    signed = storage.sign_download(
        object_name=OBJECT_NAME, filename="report.pdf", content_type="application/pdf"
    )

    response = requests.get(signed.url, timeout=10)

    assert response.status_code == 200
    assert response.content == body
    assert response.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert response.headers["Content-Type"] == "application/pdf"


KIB = 1024
MIB = 1024 * KIB


@pytest.fixture
def upload_bodies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the bodies PUT to the emulator's resumable uploads, 256 KiB per request."""
    monkeypatch.setattr(storage_module, "_GCS_WRITE_CHUNK_BYTES", 256 * KIB)
    sizes: list[int] = []
    send = requests.Session.request

    def recording(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "PUT" and "upload_id=" in url:
            sizes.append(len(kwargs.get("data") or b""))
        return send(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    return sizes


def test_a_write_streams_its_chunks_in_a_resumable_upload(
    gcs_backend: Emulator, upload_bodies: list[int]
) -> None:
    body = bytes(range(256)) * 4000  # 1,024,000 bytes
    chunks = [body[start : start + 100 * KIB] for start in range(0, len(body), 100 * KIB)]

    stored = get_storage().write(
        OBJECT_NAME, iter(chunks), content_type="application/fhir+ndjson", max_bytes=len(body)
    )

    # Sent a request at a time as the chunks came, never as one body.
    assert len(upload_bodies) == 4
    assert max(upload_bodies) == 256 * KIB
    assert stored == get_storage().stat(OBJECT_NAME)
    assert stored.size_bytes == len(body)
    expected_md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    assert stored.checksum == f"md5:{expected_md5}"
    assert stored.content_type == "application/fhir+ndjson"
    handle = get_storage().open(OBJECT_NAME, generation=stored.generation)
    assert handle is not None
    assert handle.read() == body


def test_an_empty_write_is_an_empty_object_when_allowed(gcs_backend: Emulator) -> None:
    stored = get_storage().write(
        OBJECT_NAME, iter([]), content_type="application/fhir+ndjson", max_bytes=10, min_bytes=0
    )

    assert stored.size_bytes == 0
    assert get_storage().stat(OBJECT_NAME) == stored


def _previous_object() -> None:
    get_storage().write(OBJECT_NAME, [b"previous"], content_type="text/plain", max_bytes=100)


def test_a_write_past_its_limit_is_refused_and_keeps_the_previous_object(
    gcs_backend: Emulator, upload_bodies: list[int]
) -> None:
    _previous_object()
    chunks = (b"x" * 100 * KIB for _ in range(6))

    with pytest.raises(ObjectTooLarge):
        get_storage().write(OBJECT_NAME, chunks, content_type="text/plain", max_bytes=500 * KIB)

    assert upload_bodies[1:]  # part of the refused write had been sent
    handle = get_storage().open(OBJECT_NAME)
    assert handle is not None
    assert handle.read() == b"previous"


def test_a_write_whose_chunks_fail_midway_leaves_the_previous_object(
    gcs_backend: Emulator, upload_bodies: list[int]
) -> None:
    _previous_object()

    def failing() -> Any:
        yield b"x" * 300 * KIB
        raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError):
        get_storage().write(OBJECT_NAME, failing(), content_type="text/plain", max_bytes=MIB)

    assert upload_bodies[1:]
    stored = get_storage().stat(OBJECT_NAME)
    assert stored is not None
    assert stored.size_bytes == len(b"previous")


def test_a_write_shorter_than_its_minimum_stores_nothing(gcs_backend: Emulator) -> None:
    with pytest.raises(ObjectIncomplete):
        get_storage().write(
            OBJECT_NAME, [b"short"], content_type="text/plain", max_bytes=100, min_bytes=10
        )

    assert get_storage().stat(OBJECT_NAME) is None
