from django.apps import AppConfig


class PmsConfig(AppConfig):
    """The project's own platform records, kept for the operators (superusers)."""

    name = "pms"
    verbose_name = "Platform"

    def ready(self) -> None:
        from pms import checks  # noqa: F401 - registers the system checks
        from pms.celery import app

        # Every process knows every task by name (the admin runs failed ones again by name).
        app.autodiscover_tasks(force=True)
