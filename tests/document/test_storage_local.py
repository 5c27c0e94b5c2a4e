"""The local backend: atomic files under MEDIA_ROOT, salted expiring grants, validated settings."""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from document.storage import (
    GrantExpired,
    LocalStorage,
    ObjectTooLarge,
    StorageSettings,
    get_storage,
)

OBJECT_NAME = "documents/3/00112233445566778899aabbccddeeff"


@pytest.fixture
def storage() -> LocalStorage:
    backend = get_storage()
    assert isinstance(backend, LocalStorage)
    return backend


def test_the_local_backend_is_the_default(storage: LocalStorage) -> None:
    assert storage.settings.backend == "local"


def test_write_stores_the_bytes_and_stat_reports_them(
    storage: LocalStorage, local_media_root: Path
) -> None:
    body = b"%PDF-1.7 hello"

    written = storage.write(
        OBJECT_NAME, [body[:5], body[5:]], content_type="application/pdf", max_bytes=100
    )

    assert (local_media_root / OBJECT_NAME).read_bytes() == body
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    assert written.checksum == f"md5:{md5}"
    assert storage.stat(OBJECT_NAME) == written
    assert written.size_bytes == len(body)
    assert written.content_type == "application/pdf"


def test_a_write_past_the_limit_stores_nothing_and_leaves_no_temporary_file(
    storage: LocalStorage, local_media_root: Path
) -> None:
    with pytest.raises(ObjectTooLarge):
        storage.write(OBJECT_NAME, [b"x" * 60, b"x" * 60], content_type="text/plain", max_bytes=100)

    assert storage.stat(OBJECT_NAME) is None
    assert list((local_media_root / "documents" / "3").iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_object_whole(storage: LocalStorage) -> None:
    storage.write(OBJECT_NAME, [b"first"], content_type="text/plain", max_bytes=10)

    with pytest.raises(ObjectTooLarge):
        storage.write(OBJECT_NAME, [b"second, too long"], content_type="text/plain", max_bytes=10)

    stored = storage.stat(OBJECT_NAME)
    assert stored is not None
    assert stored.size_bytes == len(b"first")


def test_delete_removes_the_object_and_may_be_repeated(storage: LocalStorage) -> None:
    storage.write(OBJECT_NAME, [b"bytes"], content_type="text/plain", max_bytes=10)

    storage.delete(OBJECT_NAME)
    storage.delete(OBJECT_NAME)

    assert storage.stat(OBJECT_NAME) is None
    assert storage.open(OBJECT_NAME) is None


@pytest.mark.parametrize(
    "object_name", ["../outside", "documents/../../etc/passwd", "/absolute", "a//b", "a.b", ""]
)
def test_object_names_cannot_leave_the_media_root(storage: LocalStorage, object_name: str) -> None:
    with pytest.raises(ValueError, match="invalid object name"):
        storage.stat(object_name)
    with pytest.raises(ValueError, match="invalid object name"):
        storage.sign_upload(object_name=object_name, content_type="text/plain", size_bytes=1)


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_an_upload_grant_carries_the_object_type_and_size(storage: LocalStorage) -> None:
    signed = storage.sign_upload(object_name=OBJECT_NAME, content_type="image/png", size_bytes=42)

    grant = storage.upload_grant(_token(signed.url))

    assert (grant.object_name, grant.content_type, grant.max_bytes) == (
        OBJECT_NAME,
        "image/png",
        42,
    )
    assert signed.url.startswith("/api/document/files/")
    assert signed.method == "PUT"
    assert signed.headers == {"Content-Type": "image/png"}


def test_a_grant_expires_after_the_configured_minutes(storage: LocalStorage) -> None:
    signed = storage.sign_upload(object_name=OBJECT_NAME, content_type="image/png", size_bytes=42)
    token = _token(signed.url)

    with time_machine.travel(timezone.now() + timedelta(minutes=14, seconds=50)):
        assert storage.upload_grant(token).object_name == OBJECT_NAME
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=15, seconds=2)),
        pytest.raises(GrantExpired),
    ):
        storage.upload_grant(token)


def test_a_tampered_grant_is_refused(storage: LocalStorage) -> None:
    token = _token(
        storage.sign_upload(object_name=OBJECT_NAME, content_type="image/png", size_bytes=42).url
    )
    payload, signature = token.rsplit(":", 1)
    forged = signing.dumps(
        {"o": OBJECT_NAME, "t": "image/png", "n": 10**12, "e": 2**40}, salt="another salt"
    )

    for bad in (f"{payload}:{signature[:-2]}xx", forged, "garbage"):
        with pytest.raises(signing.BadSignature):
            storage.upload_grant(bad)


def test_a_download_grant_is_not_an_upload_grant(storage: LocalStorage) -> None:
    download = storage.sign_download(
        object_name=OBJECT_NAME, filename="a.pdf", content_type="application/pdf"
    )
    upload = storage.sign_upload(object_name=OBJECT_NAME, content_type="image/png", size_bytes=4)

    with pytest.raises(signing.BadSignature):
        storage.upload_grant(_token(download.url))
    with pytest.raises(signing.BadSignature):
        storage.download_grant(_token(upload.url))
    assert storage.download_grant(_token(download.url)).filename == "a.pdf"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND must be one of"),
        ({"STORAGE_BACKEND": "gcs", "GCS_BUCKET_NAME": ""}, "GCS_BUCKET_NAME is required"),
        (
            {
                "STORAGE_BACKEND": "gcs",
                "GCS_BUCKET_NAME": "b",
                "STORAGE_EMULATOR_HOST": "localhost:9023",
                "GCS_CREDENTIALS_PATH": "",
            },
            "GCS_CREDENTIALS_PATH is required",
        ),
        (
            {
                "STORAGE_BACKEND": "gcs",
                "GCS_BUCKET_NAME": "b",
                "GCS_QUARANTINE_BUCKET": "q",
                "GCS_EXPORT_BUCKET": "q",
            },
            "GCS_EXPORT_BUCKET must differ from GCS_QUARANTINE_BUCKET",
        ),
        ({"DOCUMENT_MAX_BYTES": 0}, "DOCUMENT_MAX_BYTES"),
        ({"DOCUMENT_UPLOAD_URL_MINUTES": 0}, "must be positive"),
        ({"DOCUMENT_DOWNLOAD_URL_MINUTES": 60 * 24 * 8}, "at most 7 days"),
        ({"DOCUMENT_ALLOWED_CONTENT_TYPES": []}, "must not be empty"),
    ],
)
def test_bad_storage_settings_are_refused_at_startup(
    settings: Any, overrides: dict[str, Any], message: str
) -> None:
    for name, value in overrides.items():
        setattr(settings, name, value)

    with pytest.raises(ImproperlyConfigured, match=message):
        StorageSettings.from_django()
    errors = [error for error in run_checks() if error.id == "document.E001"]
    assert len(errors) == 1
    assert message in errors[0].msg


def test_a_bare_emulator_host_gets_a_scheme(settings: Any) -> None:
    settings.STORAGE_BACKEND = "gcs"
    settings.GCS_BUCKET_NAME = "bucket"
    settings.GCS_CREDENTIALS_PATH = "/run/secrets/key.json"
    settings.STORAGE_EMULATOR_HOST = "localhost:9023/"

    assert StorageSettings.from_django().emulator_host == "http://localhost:9023"
    assert not [error for error in run_checks() if error.id == "document.E001"]
