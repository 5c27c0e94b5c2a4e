"""The cache backends' own operations (pms/cache.py) and the request that reads its user and
counts itself against the rate limit in one of them."""

from typing import Any, cast

import pytest
import time_machine
from django.core.cache import cache, caches
from redis.connection import Connection
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts.models import User
from pms.cache import CountingCache, RedisCache
from pms.throttles import AuthRateThrottle, UserRateThrottle
from tests.factories import PatientFactory


def _on_redis() -> bool:
    return isinstance(caches["default"], RedisCache)


on_redis = pytest.mark.skipif(not _on_redis(), reason="needs Redis (REDIS_URL)")
counting = cast(CountingCache, cache)  # the configured backend is one of pms/cache.py's


def test_a_counter_counts_from_one_and_starts_again_once_it_expires() -> None:
    with time_machine.travel(1_000_000, tick=False) as traveller:
        counts = [counting.count("counter", 60) for _ in range(3)]
        if _on_redis():  # Redis expires it on its own clock
            assert 0 < cast(Any, cache).ttl("counter") <= 60
            cache.delete("counter")
        else:
            traveller.shift(61)
        again = counting.count("counter", 60)

    assert counts == [1, 2, 3]
    assert again == 1


def test_get_and_count_reads_the_entry_and_counts_in_the_same_counter_as_count() -> None:
    cache.set("entry", {"name": "value"}, 60)

    first = counting.get_and_count("entry", "counter", 60)
    counted = counting.count("counter", 60)
    missing = counting.get_and_count("absent", "counter", 60)

    assert first == ({"name": "value"}, 1)
    assert counted == 2
    assert missing == (None, 3)


@on_redis
def test_a_signed_in_request_reads_its_user_and_counts_itself_in_one_redis_round_trip(
    as_clinician: APIClient, clinician: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = PatientFactory.create(organization=clinician.organization, created_by=clinician)
    url = f"/api/patient/patients/{patient.pk}/"
    assert as_clinician.get(url).status_code == 200  # the user is cached from here on
    sent: list[bytes] = []
    send = Connection.send_packed_command

    def recorded(self: Connection, command: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else command)
        send(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", recorded)

    response = as_clinician.get(url)

    assert response.status_code == 200
    assert len(sent) == 1, sent
    assert b"GET" in sent[0]
    assert b"INCR" in sent[0]


def _request_to(view: type[APIView]) -> Request:
    request = Request(APIRequestFactory().get("/"))
    request.parser_context = {"view": view()}
    return request


def test_a_view_that_does_not_limit_users_gets_no_window_to_count() -> None:
    class Credentials(APIView):
        throttle_classes = [AuthRateThrottle]

    class Open(APIView):
        throttle_classes: list[Any] = []

    assert UserRateThrottle.counted_window(_request_to(Credentials), 7) is None
    assert UserRateThrottle.counted_window(_request_to(Open), 7) is None
    assert UserRateThrottle.counted_window(Request(APIRequestFactory().get("/")), 7) is None


def test_the_throttle_counts_a_request_itself_when_its_window_is_another_users(
    clinician: User, org_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UserRateThrottle, "rate", "1/min", raising=False)

    class Limited(APIView):
        throttle_classes = [UserRateThrottle]

    request = _request_to(Limited)
    window = UserRateThrottle.counted_window(request, org_admin.pk)
    assert window is not None
    window.count = 1  # the admin's request, counted at the limit
    request.user = clinician

    first = UserRateThrottle().allow_request(request, None)
    second = UserRateThrottle().allow_request(request, None)

    # The clinician's own counter: the first request passes, the second is over 1/min.
    assert (first, second) == (True, False)
    assert counting.count(window.key, 61) == 1  # the admin's counter was never touched
