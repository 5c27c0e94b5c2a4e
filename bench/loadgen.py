"""HTTP/1.1 load client for the benchmark: open-loop latency and closed-loop throughput.

Open loop: request k is due at `start + k / rate`, whether or not earlier ones have been
answered; its latency is measured from that intended time, so a stall of the server shows up
in the latency of every request that should have been sent during it (coordinated omission
corrected, as wrk2 and HdrHistogram's own tools do). Closed loop: N connections each send the
next request as soon as the previous answer arrives, for a bounded time; that gives the
saturation throughput (its latencies are not corrected and are reported as such).

Each sender (a request's credentials) has its own lane of connections, as a user's browser has
its own: a connection only sends its lane's requests, so one user never has more requests in
flight than its lane has connections. With one sender per connection, each user has at most
one, and a per-user concurrency limit of the API (2 on the expensive endpoints) never answers a
load run with a 429 that no real user would get.

Connections are keep-alive, plain asyncio streams, loopback only; every run is bounded both in
request count and in time.
"""

import asyncio
import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from hdrh.histogram import HdrHistogram

# Latencies are recorded in microseconds, 1 µs .. 60 s, 3 significant digits.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 60_000_000, 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


class LoopbackOnlyError(ValueError):
    """The benchmark only ever sends traffic to this machine."""


def require_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ip_address(host).is_loopback:
        raise LoopbackOnlyError(f"{host} is not a loopback address")


@dataclass(frozen=True)
class Target:
    """One request to send: a GET of `path` with extra headers, or another method with a
    JSON body."""

    path: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    body: bytes = b""

    def encode(self, host: str, port: int) -> bytes:
        lines = [
            f"{self.method} {self.path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Accept: application/json",
        ]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    @property
    def sender(self) -> str:
        """Who sends the request: its credentials (none: one anonymous sender)."""
        return next((value for name, value in self.headers if name == "Authorization"), "")


def lanes(targets: Sequence[Target], connections: int) -> list[list[Target]]:
    """`targets` split by sender into min(senders, connections) lanes, each in its original
    order; connection c sends lane c % len(lanes). Several senders share a lane only when
    there are more senders than connections."""
    senders = list(dict.fromkeys(target.sender for target in targets))
    count = max(1, min(len(senders), connections))
    lane_of = {sender: k % count for k, sender in enumerate(senders)}
    split: list[list[Target]] = [[] for _ in range(count)]
    for target in targets:
        split[lane_of[target.sender]].append(target)
    return split


@dataclass
class Result:
    """What a run measured. Latency percentiles are in milliseconds."""

    mode: str
    intended_rate: float | None
    duration_s: float
    sent: int = 0
    completed: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    histogram: HdrHistogram = field(
        default_factory=lambda: HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)
    )

    @property
    def throughput(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0

    def percentile_ms(self, percentile: float) -> float:
        if not self.histogram.get_total_count():
            return 0.0
        return self.histogram.get_value_at_percentile(percentile) / 1000

    def summary(self) -> dict[str, Any]:
        total = self.histogram.get_total_count()
        return {
            "mode": self.mode,
            "intended_rate": self.intended_rate,
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "completed": self.completed,
            "errors": self.errors,
            "statuses": dict(sorted(self.statuses.items())),
            "first_error": self.first_error,
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": {
                **{f"p{p:g}": round(self.percentile_ms(p), 3) for p in PERCENTILES},
                "max": round(self.histogram.get_max_value() / 1000, 3) if total else 0.0,
                "mean": round(self.histogram.get_mean_value() / 1000, 3) if total else 0.0,
            },
        }

    def record(self, status: int | None, latency_s: float, error: str = "") -> None:
        self.completed += 1
        key = str(status) if status is not None else "exception"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if status is None or not 200 <= status < 300:
            self.errors += 1
            if not self.first_error:
                self.first_error = error or f"HTTP {status}"
        self.histogram.record_value(max(_LOWEST_US, min(_HIGHEST_US, round(latency_s * 1e6))))


class HTTPConnection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server has closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Sends one request; returns (status, body). A connection the server closed while idle
        is reopened once: nothing of the request had reached the application."""
        for attempt in (1, 2):
            if self.writer is None:
                await self._connect()
            reader, writer = self._streams()
            try:
                writer.write(raw)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
                continue
            return await self._read_response(head)
        raise ConnectionError("unreachable")

    def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            raise ConnectionError("not connected")
        return self.reader, self.writer

    async def _read_response(self, head: bytes) -> tuple[int, bytes]:
        reader, _writer = self._streams()
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304):
            body = b""
        else:
            body = await reader.read()
            await self.close()
            return status, body
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        reader, _writer = self._streams()
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)


async def _timed_request(
    connection: HTTPConnection, raw: bytes, timeout: float
) -> tuple[int | None, str]:
    try:
        status, _body = await asyncio.wait_for(connection.request(raw), timeout)
        return status, ""
    except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as error:
        await connection.close()
        return None, f"{type(error).__name__}: {error}"


async def open_loop(
    host: str,
    port: int,
    targets: Sequence[Target],
    *,
    rate: float,
    duration: float,
    connections: int = 32,
    timeout: float = 10.0,
) -> Result:
    """Sends `rate * duration` requests at fixed intended times over `connections` keep-alive
    connections; latency counts from each request's intended time."""
    require_loopback(host)
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    total = max(1, int(rate * duration))
    split = lanes(targets, connections)
    lane_of = {target.sender: k for k, lane in enumerate(split) for target in lane}
    encoded = [(lane_of[target.sender], target.encode(host, port)) for target in targets]
    result = Result(mode="open-loop", intended_rate=rate, duration_s=total / rate)
    # One queue per lane, served by that lane's connections only.
    queues: list[asyncio.Queue[tuple[float, bytes] | None]] = [asyncio.Queue() for _ in split]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def dispatcher() -> None:
        payloads = itertools.cycle(encoded)
        for k in range(total):
            due = start + k / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lane, raw = next(payloads)
            queues[lane].put_nowait((due, raw))
            result.sent += 1
        for c in range(connections):
            queues[c % len(queues)].put_nowait(None)

    async def worker(queue: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        connection = HTTPConnection(host, port)
        try:
            while (item := await queue.get()) is not None:
                due, raw = item
                status, error = await _timed_request(connection, raw, timeout)
                result.record(status, loop.time() - due, error)
        finally:
            await connection.close()

    tasks = [asyncio.create_task(worker(queues[c % len(queues)])) for c in range(connections)]
    tasks.append(asyncio.create_task(dispatcher()))
    # Bounded in time: whatever is still queued or in flight after this is an error.
    _done, pending = await asyncio.wait(tasks, timeout=duration + timeout + 5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    unfinished = total - result.completed
    if unfinished > 0:
        result.errors += unfinished
        result.statuses["unfinished"] = unfinished
        result.first_error = result.first_error or "requests unfinished at the deadline"
    return result


async def closed_loop(
    host: str,
    port: int,
    targets: Sequence[Target],
    *,
    connections: int,
    duration: float,
    timeout: float = 10.0,
    max_requests: int = 1_000_000,
) -> Result:
    """`connections` connections, each sending its next request when the previous answer
    arrives, for `duration` seconds (or `max_requests` in all). Throughput at saturation."""
    require_loopback(host)
    payloads = [
        itertools.cycle([target.encode(host, port) for target in lane])
        for lane in lanes(targets, connections)
    ]
    result = Result(mode="closed-loop", intended_rate=None, duration_s=duration)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration

    async def worker(lane: Iterator[bytes]) -> None:
        connection = HTTPConnection(host, port)
        try:
            while loop.time() < deadline and result.sent < max_requests:
                result.sent += 1
                sent_at = loop.time()
                status, error = await _timed_request(connection, next(lane), timeout)
                result.record(status, loop.time() - sent_at, error)
        finally:
            await connection.close()

    await asyncio.gather(*(worker(payloads[c % len(payloads)]) for c in range(connections)))
    result.duration_s = loop.time() - started
    return result


def run_open_loop(host: str, port: int, targets: Sequence[Target], **kwargs: Any) -> Result:
    return asyncio.run(open_loop(host, port, targets, **kwargs))


def run_closed_loop(host: str, port: int, targets: Sequence[Target], **kwargs: Any) -> Result:
    return asyncio.run(closed_loop(host, port, targets, **kwargs))


def sequential_latencies(
    host: str, port: int, targets: Sequence[Target], *, count: int, timeout: float = 10.0
) -> Result:
    """One request at a time over one connection: the unloaded latency of an endpoint."""
    return run_closed_loop(
        host,
        port,
        targets,
        connections=1,
        duration=count * timeout,
        timeout=timeout,
        max_requests=count,
    )
