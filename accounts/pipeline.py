"""The social-auth pipeline of Google sign-in (`SOCIAL_AUTH_PIPELINE` in settings).

It never creates a user: clinic administrators create accounts, Google only proves who is
signing in. The identity is keyed on (provider, sub) in social-auth's `UserSocialAuth`:

1. social-auth's `social_details` and `social_uid` (uid = Google's `sub`);
2. `require_allowed_domain`: the optional `GOOGLE_OAUTH2_ALLOWED_DOMAINS` allow-list;
3. `linked_user`: the user already linked to this Google account, if any;
4. `user_by_verified_email`: else the one user whose email equals Google's verified email,
   provided no other Google account is linked to that user already;
5. `require_active_user`;
6. social-auth's `associate_user` (creates the link on a first sign-in) and `load_extra_data`
   (the backend strips Google's access token from it);
7. `mark_email_verified`: a first link proves the user's email address.

Every refusal raises an API error the view renders. The steps run in one transaction
(`accounts.oauth.GoogleOAuth2.run_authentication`), so a refusal leaves no trace.
"""

from typing import Any

from django.conf import settings
from social_django.models import UserSocialAuth

from accounts import oauth
from accounts.models import User


def require_allowed_domain(details: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    allowed = {domain.strip().lower() for domain in settings.GOOGLE_OAUTH2_ALLOWED_DOMAINS}
    if not allowed:
        return
    domain = str(details.get("email") or "").rpartition("@")[2].lower()
    if domain not in allowed:
        raise oauth.GoogleDomainNotAllowed()


def linked_user(backend: Any, uid: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    social = (
        UserSocialAuth.objects.select_related("user__organization")
        .filter(provider=backend.name, uid=uid)
        .first()
    )
    if social is None:
        return {"social": None, "user": None}
    return {"social": social, "user": social.user}


def user_by_verified_email(
    backend: Any,
    details: dict[str, Any],
    response: dict[str, Any],
    *args: Any,
    user: User | None = None,
    **kwargs: Any,
) -> dict[str, Any] | None:
    if user is not None:
        return None
    email = details.get("email")
    # Both token paths already insist on it; linking by email is only safe because of it.
    if not email or response.get("email_verified") is not True:
        raise oauth.GoogleEmailNotVerified()
    # Locked so that two Google accounts racing to link the same user cannot both win.
    matches = list(
        User.objects.select_related("organization")
        .select_for_update(of=("self",))
        .filter(email__iexact=email)[:2]
    )
    if not matches:
        raise oauth.GoogleAccountNotLinked()
    if len(matches) > 1:
        raise oauth.GoogleAccountAmbiguous()
    match = matches[0]
    # `linked_user` found no link for this Google account, so any link is another one's.
    if UserSocialAuth.objects.filter(user=match, provider=backend.name).exists():
        raise oauth.GoogleIdentityConflict()
    return {"user": match}


def require_active_user(user: User, *args: Any, **kwargs: Any) -> None:
    if not user.is_active:
        raise oauth.AccountInactive()


def mark_email_verified(
    user: User, *args: Any, new_association: bool = False, **kwargs: Any
) -> None:
    if new_association and not user.email_verified:
        user.email_verified = True
        user.save(update_fields=["email_verified"])
