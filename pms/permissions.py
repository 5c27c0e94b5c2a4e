"""Role checks shared by every app (docs/architecture.md, "Roles"). Which clinic's rows a user
sees is the scoping rule's business (pms/scoping.py); these classes only decide what a role may
do inside its own organization."""

from collections.abc import Iterable
from typing import Any

from rest_framework.permissions import BasePermission


def user_has_role(user: Any, roles: Iterable[str]) -> bool:
    """Superusers hold every role."""
    if not (user and user.is_authenticated):
        return False
    return bool(user.is_superuser or user.role in roles)


class HasActionRole(BasePermission):
    """Per-action role rules declared on the view.

    A view sets ``action_roles = {"destroy": {"admin", "clinician"}, ...}``; an action that is
    not listed is open to every authenticated member of the organization.
    """

    message = "Your role does not allow this action."

    def has_permission(self, request: Any, view: Any) -> bool:
        rules: dict[str, Iterable[str]] = getattr(view, "action_roles", {})
        roles = rules.get(getattr(view, "action", None) or "")
        return roles is None or user_has_role(request.user, roles)


class IsOrgAdmin(BasePermission):
    """Organization administrators (and superusers) only."""

    message = "Only organization administrators may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_has_role(request.user, {"admin"})
