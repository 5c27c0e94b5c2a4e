"""Writes of accounts."""

from django.contrib.auth import password_validation
from django.db import transaction

from accounts.models import User


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    """Validate and set the user's password.

    Raises Django's `ValidationError` with what the password validators refuse. The save
    revokes every refresh token of the user and drops the cached user, in this transaction, as
    any password change does (`accounts.authentication.password_changed`).
    """
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
