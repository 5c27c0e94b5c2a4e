from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Also registers the OpenAPI extension of our authentication class.
        from accounts import authentication
        from accounts.models import Organization, User

        post_save.connect(authentication.forget_user, sender=User)
        post_save.connect(authentication.password_changed, sender=User)
        post_delete.connect(authentication.forget_user, sender=User)
        post_save.connect(authentication.forget_organization_users, sender=Organization)
