# The Celery app loads with Django, so `delay()` anywhere in the project uses its configuration.
from pms.celery import app as celery_app

__all__ = ("celery_app",)
