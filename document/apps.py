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
