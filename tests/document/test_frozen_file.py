"""A confirmed file can't be swapped: a local PUT still streaming when confirm ran is refused
(over real HTTP, against the deployment's server), and a GCS object overwritten after confirm is
not what the pinned download URL serves."""

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient

from document.models import Document
from patient.models import Patient
from tests.document.samples import pdf
from tests.document.test_upload_flow import CONFIRM_URL, SIGN_URL, seed_body
from tests.reliability.servers import app_server, free_port, running_database_url

STALLED_BODY_BYTES = 2_000_000


def _read_response(connection_socket: socket.socket) -> tuple[int, bytes]:
    # The request said `Connection: close`: the server closes once it has answered. No half-close
    # from this side first: granian (hyper) takes a client's FIN as the end of the connection and
    # drops the answer of a request still being read.
    reply = b""
    while chunk := connection_socket.recv(65536):
        reply += chunk
    status_line, _, _ = reply.partition(b"\r\n")
    return int(status_line.split()[1]), reply


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_put_that_began_before_confirm_is_refused_and_the_confirmed_bytes_stay(
    as_clinician: APIClient, patient: Patient, local_media_root: Path
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the app server shares the test database: PostgreSQL")
    confirmed_body = (pdf() + b"%" * 110)[:110]
    signed = as_clinician.post(
        SIGN_URL, seed_body(patient, size_bytes=10_000_000), format="json"
    ).json()
    path = urlsplit(signed["upload_url"]).path
    env = {
        "DATABASE_URL": running_database_url(),
        "MEDIA_ROOT": str(local_media_root),
        # The signed URLs were made by this process.
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    with app_server(free_port(), **env) as base_url:
        first = requests.put(
            base_url + path,
            data=confirmed_body,
            headers={"Content-Type": "application/pdf"},
            timeout=10,
        )
        assert first.status_code == 200, first.text

        port = int(urlsplit(base_url).port or 80)
        stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
        stalled.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pdf\r\n"
            f"Content-Length: {STALLED_BODY_BYTES}\r\nConnection: close\r\n\r\n".encode()
            + b"%PDF-1.7\n"
            + b"A" * 100_000
        )
        confirmed = as_clinician.post(
            CONFIRM_URL, {"document_id": signed["document_id"]}, format="json"
        )
        assert confirmed.status_code == 200
        stalled.sendall(b"B" * (STALLED_BODY_BYTES - 100_009))
        status, reply = _read_response(stalled)
        stalled.close()

        assert status == 409, reply
        assert b'"upload_closed"' in reply
        document = Document.objects.get(pk=signed["document_id"])
        assert (document.is_uploaded, document.size_bytes) == (True, 110)
        download = as_clinician.get(f"/api/document/documents/{document.pk}/download_url/")
        fetched = requests.get(
            base_url + urlsplit(download.json()["download_url"]).path, timeout=10
        )
        assert fetched.status_code == 200
        assert fetched.content == confirmed_body
    assert not list(local_media_root.rglob(".upload-*"))


def test_a_gcs_object_overwritten_after_confirm_is_not_served_by_the_pinned_url(
    gcs_backend: Any, as_clinician: APIClient, patient: Patient
) -> None:
    body = pdf()
    signed = as_clinician.post(
        SIGN_URL, seed_body(patient, size_bytes=len(body)), format="json"
    ).json()
    assert requests.put(signed["upload_url"], data=body, headers=signed["headers"], timeout=10).ok
    confirmed = as_clinician.post(
        CONFIRM_URL, {"document_id": signed["document_id"]}, format="json"
    )
    assert confirmed.status_code == 200
    document = Document.objects.get(pk=signed["document_id"])
    assert document.object_generation
    before = as_clinician.get(f"/api/document/documents/{document.pk}/download_url/").json()
    assert f"generation={document.object_generation}" in before["download_url"]
    assert requests.get(before["download_url"], timeout=10).content == body

    # The upload URL is still within its lifetime: the object is overwritten in the bucket.
    swapped = b"%PDF-1.7\n" + b"swapped bytes " * 100
    assert requests.put(
        signed["upload_url"], data=swapped, headers=signed["headers"], timeout=10
    ).ok
    after = as_clinician.get(f"/api/document/documents/{document.pk}/download_url/").json()

    for url in (before["download_url"], after["download_url"]):
        served = requests.get(url, timeout=10)
        assert served.content != swapped
        assert served.status_code == 404
