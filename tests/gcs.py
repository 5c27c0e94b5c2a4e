"""The GCS emulator for every test that needs the `gcs` backend (a plugin: tests/conftest.py).

gcp-storage-emulator is started once per test session on a free loopback port with in-memory
storage. The emulator accepts any signature, so the tests verify V4 signatures themselves
against the generated service account's public key.
"""

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects as emulator_objects
from gcp_storage_emulator.server import create_server

EMULATOR_BUCKET = "pms-test-documents"
QUARANTINE_BUCKET = "pms-test-quarantine"
# Created for the tests that set GCS_EXPORT_BUCKET; gcs_backend leaves that setting empty.
EXPORT_BUCKET = "pms-test-exports"
SERVICE_ACCOUNT_EMAIL = "pms-signer@pms-test.iam.gserviceaccount.com"


@dataclass(frozen=True)
class ServiceAccount:
    path: Path
    public_key: rsa.RSAPublicKey
    email: str


@dataclass(frozen=True)
class Emulator:
    url: str
    server: Any


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _only_the_requested_generation(handler: Any) -> Any:
    """GCS answers a read that names a `generation` (metadata or media) with that generation
    or 404 (a bucket without versioning keeps no overwritten generation); the emulator ignores
    the parameter and serves the newest object, so the tests give it GCS's behaviour."""

    def pinned(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = request.query.get("generation")
        if wanted and not request.query.get("softDeleted"):
            try:
                current = storage.get_file_obj(
                    request.params["bucket_name"], request.params["object_id"]
                )
            except NotFound:
                current = {}
            if str(current.get("generation")) != wanted[0]:
                response.status = HTTPStatus.NOT_FOUND
                return None
        return handler(request, response, storage, *args, **kwargs)

    return pinned


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[Emulator]:
    originals = {"download": emulator_objects.download, "get": emulator_objects.get}
    pinned = {name: _only_the_requested_generation(handler) for name, handler in originals.items()}
    replaced: list[tuple[dict[Any, Any], Any, Any]] = []
    for _, handlers in emulator_server.HANDLERS:
        for method, handler in handlers.items():
            for name, original in originals.items():
                if handler is original:
                    handlers[method] = pinned[name]
                    replaced.append((handlers, method, original))
    # `get` hands `alt=media` reads to `download` by its module-level name.
    emulator_objects.download = pinned["download"]
    port = _free_loopback_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=EMULATOR_BUCKET)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for bucket in (QUARANTINE_BUCKET, EXPORT_BUCKET):
        created = requests.post(
            f"{url}/storage/v1/b",
            params={"project": "pms-test"},
            json={"name": bucket},
            timeout=10,
        )
        assert created.status_code == 200, created.text
    try:
        yield Emulator(url=url, server=server)
    finally:
        server.stop()
        emulator_objects.download = originals["download"]
        for handlers, method, original in replaced:
            handlers[method] = original


@pytest.fixture(scope="session")
def service_account(tmp_path_factory: pytest.TempPathFactory) -> ServiceAccount:
    """A fake service account: a fresh RSA key in the JSON layout google-auth reads."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    path = tmp_path_factory.mktemp("gcs") / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "pms-test",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT_EMAIL,
                "client_id": "100000000000000000001",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return ServiceAccount(
        path=path, public_key=private_key.public_key(), email=SERVICE_ACCOUNT_EMAIL
    )


@pytest.fixture
def gcs_backend(
    settings: Any, gcs_emulator: Emulator, service_account: ServiceAccount
) -> Iterator[Emulator]:
    """Switch the app to the gcs backend, pointed at the emulator; empty bucket per test."""
    settings.STORAGE_BACKEND = "gcs"
    settings.GCS_BUCKET_NAME = EMULATOR_BUCKET
    settings.GCS_QUARANTINE_BUCKET = QUARANTINE_BUCKET
    settings.GCS_CREDENTIALS_PATH = str(service_account.path)
    settings.STORAGE_EMULATOR_HOST = gcs_emulator.url
    yield gcs_emulator
    gcs_emulator.server.wipe(keep_buckets=True)
