"""Releasing many requests at the same instant, each on its own thread and database connection."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """Runs `work(0)` … `work(count - 1)` in `count` threads released by one barrier.

    Django gives each thread its own connection; each is closed when its work ends so the test
    database can be dropped afterwards.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        try:
            barrier.wait(timeout=30)
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
