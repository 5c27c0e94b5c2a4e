"""`Idempotency-Key` on creates, after the IETF draft draft-ietf-httpapi-idempotency-key-header.

A client that retries a create (a timeout, a lost answer) sends the same key again and gets the
first answer instead of a second record:

- same key, same body, within 24 hours: the stored status and body, with
  `Idempotent-Replayed: true`;
- same key, another body: 422 `idempotency_key_reused`;
- same key while the first request still runs: 409 `idempotency_key_in_progress`.

Keys belong to the user who sent them. The key is claimed by inserting its row before the
request runs, so of two concurrent requests with one key exactly one runs (the unique
constraint decides). Only a success spends a key: after an error (a 400, a 409
`possible_duplicate`...) the claim is released, so the client may correct the body and send it
again under the same key. Rows are deleted 24 hours after their claim by
`idempotency_purge_expired()` (`manage.py purge_idempotency_keys`).
"""

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import IdempotencyKey, User
from pms.exceptions import ApplicationError, Conflict

# How long a key holds its answer: the draft's suggestion, and long enough for any retry.
KEY_LIFETIME = timedelta(hours=24)
# A claim whose request never finished (its process died) is given up after this long.
ABANDONED_AFTER = timedelta(minutes=5)
# Headers of a create's answer that its replay repeats.
REPLAYED_HEADERS = ("ETag", "Location")
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_MAX_LENGTH = 255

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="A unique value per intended create (e.g. a UUID), at most 255 printable ASCII "
    "characters. Retried with the same body within 24 hours, the request answers the first "
    "response again with `Idempotent-Replayed: true`; with another body, 422 "
    "`idempotency_key_reused`; while the first still runs, 409 `idempotency_key_in_progress`. "
    "Only a success uses the key up.",
)


class IdempotencyKeyReused(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with another request body."


class IdempotencyKeyInProgress(Conflict):
    default_code = "idempotency_key_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."


def _key(header: str) -> str:
    key = header.strip()
    if not key or len(key) > _KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError(
            {"Idempotency-Key": ["Send 1 to 255 printable ASCII characters, e.g. a UUID."]}
        )
    return key


def request_fingerprint(request: Request) -> str:
    """SHA-256 of the operation and its body as canonical JSON (sorted keys, no spaces)."""
    data = request.data
    if hasattr(data, "lists"):  # a form body: every value of every field
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(stored: IdempotencyKey) -> Response:
    headers = {**stored.response_headers, REPLAYED_HEADER: "true"}
    return Response(stored.response_body, status=stored.response_status, headers=headers)


def _claim(request: Request, key: str) -> IdempotencyKey | Response:
    """The new claim on `key`, or the stored answer to replay; raises for a reused or busy key."""
    user = cast(User, request.user)
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user=user, key=key, fingerprint=fingerprint, created_at=now
            )
    except IntegrityError:
        pass
    stored = IdempotencyKey.objects.filter(user=user, key=key).first()
    if stored is None:  # released by a failed first request in between: busy, retry later
        raise IdempotencyKeyInProgress()
    expired = stored.created_at <= now - KEY_LIFETIME
    abandoned = stored.response_status is None and stored.created_at <= now - ABANDONED_AFTER
    if expired or abandoned:
        # Take it over, unless a concurrent request took it over first.
        taken = IdempotencyKey.objects.filter(pk=stored.pk, created_at=stored.created_at).update(
            created_at=now,
            fingerprint=fingerprint,
            response_status=None,
            response_body=None,
            response_headers={},
        )
        if not taken:
            raise IdempotencyKeyInProgress()
        stored.refresh_from_db()
        return stored
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if stored.response_status is None:
        raise IdempotencyKeyInProgress()
    return _replay(stored)


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Decorates a create handler (`create` of a ViewSet, `post` of an APIView) so that it
    honours `Idempotency-Key`. A replay sets `view.idempotent_replay` for the audit trail."""

    @functools.wraps(handler)
    def run(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        header = request.headers.get("Idempotency-Key")
        if header is None:
            return handler(view, request, *args, **kwargs)
        claim = _claim(request, _key(header))
        if isinstance(claim, Response):
            view.idempotent_replay = True
            return claim
        try:
            response = handler(view, request, *args, **kwargs)
        except BaseException:
            claim.delete()
            raise
        if status.is_success(response.status_code):
            IdempotencyKey.objects.filter(pk=claim.pk).update(
                response_status=response.status_code,
                response_body=response.data,
                response_headers={
                    name: response[name] for name in REPLAYED_HEADERS if name in response
                },
            )
        else:
            claim.delete()
        return response

    return run


def idempotency_purge_expired() -> int:
    """Deletes the keys (and the answers they hold) claimed more than 24 hours ago; returns
    how many. Run it periodically (beat, cron)."""
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lte=timezone.now() - KEY_LIFETIME
    ).delete()
    return deleted
