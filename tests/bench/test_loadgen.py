"""The benchmark's load client against a small HTTP/1.1 server on loopback."""

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import loadgen, run
from bench.loadgen import Target

STALL_SECONDS = 0.3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Header and body go out in two writes: without this, Nagle waits for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, *extra: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests += 1  # type: ignore[attr-defined]
        if self.path == "/fail":
            self._send(500, b'{"error": {}}')
        elif self.path == "/stall":
            time.sleep(STALL_SECONDS)
            self._send(200, b"{}")
        elif self.path.startswith("/held"):
            self._held(float(self.path.rsplit("=", 1)[1]))
        elif self.path == "/close":
            self._send(200, b"{}", ("Connection", "close"))
            self.close_connection = True
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b'{"a": ', b"1}"):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, json.dumps({"path": self.path}).encode())

    def _held(self, seconds: float) -> None:
        """Holds the request `seconds`, counting the sender's requests in flight meanwhile."""
        server = self.server
        sender = self.headers.get("Authorization", "")
        in_flight, peak = server.in_flight, server.peak  # type: ignore[attr-defined]
        with server.lock:  # type: ignore[attr-defined]
            in_flight[sender] += 1
            peak[sender] = max(peak[sender], in_flight[sender])
        time.sleep(seconds)
        with server.lock:  # type: ignore[attr-defined]
            in_flight[sender] -= 1
        self._send(200, b"{}")


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = 0  # type: ignore[attr-defined]
    httpd.lock = threading.Lock()  # type: ignore[attr-defined]
    httpd.in_flight = Counter()  # type: ignore[attr-defined]
    httpd.peak = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def port_of(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


def test_open_loop_sends_rate_times_duration_requests_and_counts_failures(
    server: ThreadingHTTPServer,
) -> None:
    result = loadgen.run_open_loop(
        "127.0.0.1",
        port_of(server),
        [Target("/ok"), Target("/fail")],
        rate=200,
        duration=0.5,
        connections=4,
    )

    assert result.sent == 100
    assert result.completed == 100
    assert server.requests == 100  # type: ignore[attr-defined]
    assert result.statuses == {"200": 50, "500": 50}
    assert result.errors == 50
    assert result.first_error == "HTTP 500"


def test_open_loop_charges_a_stall_to_every_request_due_during_it(
    server: ThreadingHTTPServer,
) -> None:
    # One stalled request in a hundred, one connection: the ~30 requests due during the
    # 300 ms stall wait behind it, and the open loop counts that wait.
    targets = [Target("/stall"), *[Target("/ok")] * 99]

    corrected = loadgen.run_open_loop(
        "127.0.0.1", port_of(server), targets, rate=100, duration=1.0, connections=1
    )
    uncorrected = loadgen.sequential_latencies("127.0.0.1", port_of(server), targets, count=100)

    assert corrected.errors == 0
    assert corrected.percentile_ms(90) > 100
    # Timed from the actual send, the same stall hides in the top percent.
    assert uncorrected.percentile_ms(95) < 50
    assert uncorrected.histogram.get_max_value() / 1000 >= STALL_SECONDS * 1000 * 0.9


def test_closed_loop_keeps_connections_alive_and_stops_at_its_deadline(
    server: ThreadingHTTPServer,
) -> None:
    started = time.monotonic()
    result = loadgen.run_closed_loop(
        "127.0.0.1", port_of(server), [Target("/ok")], connections=2, duration=0.3
    )

    assert time.monotonic() - started < 2
    assert result.errors == 0
    assert result.completed > 20
    assert result.throughput > 0


def test_responses_that_close_or_are_chunked_are_read_whole(server: ThreadingHTTPServer) -> None:
    result = loadgen.sequential_latencies(
        "127.0.0.1",
        port_of(server),
        [Target("/close"), Target("/chunked"), Target("/ok")],
        count=9,
    )

    assert result.statuses == {"200": 9}
    assert server.requests == 9  # type: ignore[attr-defined]


def test_a_request_without_an_answer_in_time_is_an_error(server: ThreadingHTTPServer) -> None:
    result = loadgen.sequential_latencies(
        "127.0.0.1", port_of(server), [Target("/stall")], count=1, timeout=0.05
    )

    assert result.errors == 1
    assert result.statuses == {"exception": 1}
    assert result.first_error.startswith("TimeoutError")


def test_requests_carry_the_target_headers() -> None:
    raw = Target("/x?a=1", (("Authorization", "Bearer t"),)).encode("127.0.0.1", 8000)

    assert raw.startswith(b"GET /x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"\r\nAuthorization: Bearer t\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("host", ["192.0.2.10", "10.0.0.1", "8.8.8.8"])
def test_the_load_client_refuses_any_address_off_this_machine(host: str) -> None:
    with pytest.raises(loadgen.LoopbackOnlyError):
        loadgen.run_open_loop(host, 80, [Target("/")], rate=1, duration=1)
    with pytest.raises(loadgen.LoopbackOnlyError):
        loadgen.run_closed_loop(host, 80, [Target("/")], connections=1, duration=1)


def peaks(server: ThreadingHTTPServer) -> dict[str, int]:
    """The most requests each sender had in flight at once."""
    return dict(server.peak)  # type: ignore[attr-defined]


def as_sender(sender: str, path: str) -> Target:
    return Target(path, (("Authorization", f"Bearer {sender}"),))


# Sender a's requests are slow, the others' fast: over one shared cycle, the fast connections
# would take a's next requests while its first is still held, and a would have several in
# flight.
SENDERS = [
    as_sender("a", "/held?s=0.05"),
    as_sender("b", "/held?s=0.001"),
    as_sender("c", "/held?s=0.001"),
    as_sender("d", "/held?s=0.001"),
]


def test_lanes_split_the_targets_by_sender_up_to_the_connections() -> None:
    a, b, anonymous = SENDERS[0], SENDERS[1], Target("/anonymous")

    assert loadgen.lanes([a, b, a, anonymous], 16) == [[a, a], [b], [anonymous]]
    # More senders than connections: they share lanes, and every target is still sent.
    assert loadgen.lanes([a, b, a, anonymous], 2) == [[a, a, anonymous], [b]]
    assert loadgen.lanes([Target("/ok")] * 3, 4) == [[Target("/ok")] * 3]


def test_closed_loop_gives_each_sender_its_own_connection(server: ThreadingHTTPServer) -> None:
    result = loadgen.run_closed_loop(
        "127.0.0.1", port_of(server), SENDERS, connections=4, duration=0.4
    )

    assert result.errors == 0
    assert peaks(server) == dict.fromkeys(["Bearer a", "Bearer b", "Bearer c", "Bearer d"], 1)


def test_open_loop_gives_each_sender_its_own_connection(server: ThreadingHTTPServer) -> None:
    result = loadgen.run_open_loop(
        "127.0.0.1", port_of(server), SENDERS, rate=200, duration=0.4, connections=4
    )

    assert result.errors == 0
    assert result.completed == 80
    assert peaks(server) == dict.fromkeys(["Bearer a", "Bearer b", "Bearer c", "Bearer d"], 1)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_saturation_gives_each_sender_its_own_connection(server: ThreadingHTTPServer) -> None:
    options = replace(run.parse_options([]), connections=4, saturation_seconds=1.0)

    result = run.wrk_saturation(options, port_of(server), SENDERS)

    assert result.errors == 0
    assert result.completed > 20
    assert peaks(server) == dict.fromkeys(["Bearer a", "Bearer b", "Bearer c", "Bearer d"], 1)
