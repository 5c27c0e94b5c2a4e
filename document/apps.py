from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


class DocumentConfig(AppConfig):
    name = "document"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from document import stats_cache

        checks.register(check_storage_settings)
        checks.register(check_scanner_settings)
        checks.register(check_scanner_on_in_production, deploy=True)
        for signal in (post_save, post_delete):
            signal.connect(stats_cache.on_document_change, sender="document.Document")
            signal.connect(stats_cache.on_patient_change, sender="patient.Patient")


def check_storage_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse to start with storage settings that would only fail at the first upload."""
    from document.storage import StorageSettings

    try:
        StorageSettings.from_django()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="document.E001")]
    return []


def check_scanner_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    from document.scanner import ScannerSettings

    try:
        ScannerSettings.from_django()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="document.E002")]
    return []


def check_scanner_on_in_production(**kwargs: Any) -> list[checks.CheckMessage]:
    """Only the setting is checked: a deploy check must pass before clamd is reachable."""
    from django.conf import settings

    if settings.DEBUG or settings.DOCUMENT_SCANNER.strip().lower() != "off":
        return []
    return [
        checks.Warning(
            "DOCUMENT_SCANNER is off: confirmed documents are downloadable without a malware scan.",
            hint="Set DOCUMENT_SCANNER=clamd and CLAMD_SOCKET or CLAMD_HOST/CLAMD_PORT.",
            id="document.W001",
        )
    ]
