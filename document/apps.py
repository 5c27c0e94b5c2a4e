from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


class DocumentConfig(AppConfig):
    name = "document"

    def ready(self) -> None:
        checks.register(check_storage_settings)


def check_storage_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse to start with storage settings that would only fail at the first upload."""
    from document.storage import StorageSettings

    try:
        StorageSettings.from_django()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="document.E001")]
    return []
