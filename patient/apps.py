from django.apps import AppConfig
from django.db.backends.signals import connection_created


class PatientConfig(AppConfig):
    name = "patient"

    def ready(self) -> None:
        from patient.search import set_similarity_threshold

        connection_created.connect(set_similarity_threshold, dispatch_uid="patient.search")
