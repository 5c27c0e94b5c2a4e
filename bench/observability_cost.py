"""What observability adds to each request: `python -m bench.observability_cost`.

Times `AccessLogMiddleware` around a view that answers at once (so only the middleware's own
work is measured), in both log formats with the console handler writing to /dev/null, then the
metrics alone and the timing wrapper of one database query. Best of five runs, microseconds.
"""

import logging
import os
import timeit
from collections.abc import Callable
from typing import Any

RUNS, CALLS = 5, 20000


def best_microseconds(call: Callable[[], Any]) -> float:
    return min(timeit.repeat(call, number=CALLS, repeat=RUNS)) / CALLS * 1e6


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve
    from django.utils.module_loading import import_string

    from pms.context import RequestIDLogFilter
    from pms.metrics import _time_query, observe_request
    from pms.middleware import AccessLogMiddleware

    request = RequestFactory().get("/api/patient/patients/7/")
    request.resolver_match = resolve("/api/patient/patients/7/")
    response = HttpResponse()

    def view(_: Any) -> HttpResponse:
        return response

    middleware = AccessLogMiddleware(view)
    bare = best_microseconds(lambda: view(request))
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    with open(os.devnull, "w") as devnull:
        for log_format in ("text", "json"):
            config = dict(settings.LOGGING["formatters"][log_format])  # type: ignore[index]
            factory = config.pop("()", None)
            formatter = (
                import_string(factory)(**config) if factory else logging.Formatter(config["format"])
            )
            handler = logging.StreamHandler(devnull)
            handler.addFilter(RequestIDLogFilter())
            handler.setFormatter(formatter)
            root.handlers[:] = [handler]
            cost = best_microseconds(lambda: middleware(request)) - bare
            print(f"access line ({log_format}) and metrics: {cost:.1f} us/request")
    print(
        f"metrics alone: {best_microseconds(lambda: observe_request('GET', 'r', 200, 0.01)):.1f} us"
    )

    class Connection:
        alias = "default"

    context = {"connection": Connection()}

    def execute(sql: str, params: Any, many: bool, context: Any) -> None:
        return None

    plain = best_microseconds(lambda: execute("SELECT 1", None, False, context))
    timed = best_microseconds(lambda: _time_query(execute, "SELECT 1", None, False, context))
    print(f"timing one database query: {timed - plain:.1f} us/query")


if __name__ == "__main__":
    main()
