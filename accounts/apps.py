from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Registers the OpenAPI extension of our authentication class.
        from accounts import authentication  # noqa: F401
