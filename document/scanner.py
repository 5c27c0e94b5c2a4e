"""The malware scanner: clamd, spoken to through `clamav-client`, behind one function.

`scan(stream)` sends a stored object to clamd with ``INSTREAM``, a chunk at a time (the
library reads the stream 1 KiB at a time; nothing holds the whole object), and answers a
`Verdict`. Any failure to get an answer (clamd down, a timeout, clamd's own ERROR such as its
stream size limit) raises `ScannerUnavailable`, a transient error: the scan task retries it.

Settings, validated by `ScannerSettings` and the system check `document.E002`:
``DOCUMENT_SCANNER`` (``clamd`` or ``off``) and ``CLAMD_SOCKET`` or ``CLAMD_HOST``/``CLAMD_PORT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from clamav_client.clamd import ClamdError, ClamdNetworkSocket, ClamdUnixSocket
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from pms.celery import TransientError

MODES = ("clamd", "off")
# A 50 MiB document streams to a local clamd in a few seconds; a stalled clamd must not hold a
# worker until the task's time limit.
_CLAMD_TIMEOUT_SECONDS = 60


class ScannerUnavailable(TransientError):
    """clamd gave no verdict; the scan is retried."""


@dataclass(frozen=True)
class Verdict:
    infected: bool
    # clamd's signature name for an infected object; empty when clean.
    finding: str = ""


@dataclass(frozen=True)
class ScannerSettings:
    mode: str
    host: str
    port: int
    socket_path: str

    @classmethod
    def from_django(cls) -> ScannerSettings:
        values = cls(
            mode=settings.DOCUMENT_SCANNER.strip().lower(),
            host=settings.CLAMD_HOST.strip(),
            port=settings.CLAMD_PORT,
            socket_path=settings.CLAMD_SOCKET.strip(),
        )
        values.validate()
        return values

    @property
    def enabled(self) -> bool:
        return self.mode == "clamd"

    def validate(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"DOCUMENT_SCANNER must be one of {', '.join(MODES)}.")
        if self.enabled and not (self.socket_path or self.host):
            problems.append("DOCUMENT_SCANNER=clamd needs CLAMD_SOCKET or CLAMD_HOST.")
        if not 0 < self.port < 65536:
            problems.append("CLAMD_PORT must be between 1 and 65535.")
        if (
            self.enabled
            and settings.STORAGE_BACKEND.strip().lower() == "gcs"
            and not settings.GCS_QUARANTINE_BUCKET.strip()
        ):
            problems.append("The scanner with the gcs backend needs GCS_QUARANTINE_BUCKET.")
        if problems:
            raise ImproperlyConfigured(" ".join(problems))

    def client(self) -> ClamdNetworkSocket:
        if self.socket_path:
            return ClamdUnixSocket(self.socket_path, timeout=_CLAMD_TIMEOUT_SECONDS)
        return ClamdNetworkSocket(self.host, self.port, timeout=_CLAMD_TIMEOUT_SECONDS)


def scanner_enabled() -> bool:
    return ScannerSettings.from_django().enabled


def scan(stream: IO[bytes]) -> Verdict:
    """clamd's verdict on the stream's bytes (read from its current position to the end)."""
    try:
        result = ScannerSettings.from_django().client().instream(cast(BinaryIO, stream))
    except (ClamdError, OSError) as error:  # OSError: clamd gone in the middle of a stream
        raise ScannerUnavailable(f"clamd gave no verdict ({type(error).__name__})") from error
    status, finding = result.get("stream", ("ERROR", None))
    if status == "FOUND":
        return Verdict(infected=True, finding=(finding or "unknown")[:255])
    if status == "OK":
        return Verdict(infected=False)
    raise ScannerUnavailable("clamd answered ERROR")
