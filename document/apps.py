from django.apps import AppConfig


class DocumentConfig(AppConfig):
    name = "document"
