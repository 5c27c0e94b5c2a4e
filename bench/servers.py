"""The HTTP servers the benchmark can serve a WSGI app with, and the measurement that chose one.

    python -m bench.servers [--scale 1.0] [--seconds 10] [--rounds 3]

serves the API with each candidate in turn (gunicorn gthread 2 x 4, gunicorn sync, granian's
WSGI interface), interleaved (gthread, sync, granian, gthread, ...), and prints each one's W1 and
W5 saturation throughput and latency one request at a time, medians of the rounds. `bench.run`
and the deployment serve with `SERVER`, the winner (granian: a runtime dependency; gunicorn, a
development one, is here only to be measured against).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bench.generate import BASE_DIR, BenchError, log

HOST = "127.0.0.1"
# Behind the TLS-terminating proxy of production: without it, DEBUG-off settings redirect to https.
PROXY_HEADERS = (("X-Forwarded-Proto", "https"),)
STOP_SECONDS = 3
# The server `make bench`, the reliability tests and the deployment use (docs/performance.md,
# The HTTP server: the measurement).
SERVER = "granian"


@dataclass(frozen=True)
class Server:
    """How to start one WSGI server with `workers` processes of `threads` threads."""

    kind: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        if self.kind == "sync":
            return f"gunicorn sync, {self.workers} workers"
        if self.kind == "granian":
            return f"granian (WSGI), {self.workers} workers x {self.threads} threads"
        return f"gunicorn gthread, {self.workers} workers x {self.threads} threads"

    def command(self, app: str, port: int, log_path: Path) -> list[str]:
        if self.kind == "granian":
            return [
                sys.executable, "-m", "granian", app,
                "--interface", "wsgi",
                "--host", HOST, "--port", str(port),
                "--workers", str(self.workers),
                "--blocking-threads", str(self.threads),
                "--http", "1", "--no-ws",
                "--backlog", "2048",
                "--log-level", "warning",
            ]  # fmt: skip
        command = [
            sys.executable, "-m", "gunicorn", app,
            "--bind", f"{HOST}:{port}",
            "--workers", str(self.workers),
            "--keep-alive", "75",
            "--backlog", "2048",
            "--log-level", "warning",
            "--error-logfile", str(log_path),
            # A listening socket per worker (SO_REUSEPORT): the kernel spreads new connections
            # over the workers. On one shared socket, whichever worker woke first took a burst
            # of them: wrk's 16 keep-alive connections all went to one worker in about one
            # round of four, on one core, at ~60 % of the throughput (docs/performance.md).
            "--reuse-port",
        ]  # fmt: skip
        if self.kind == "gthread":
            command += ["--worker-class", "gthread", "--threads", str(self.threads)]
        return command


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                if sock.recv(12).endswith(b"200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError("the server did not become ready")


@dataclass(frozen=True)
class App:
    """A WSGI app to serve with `server`, in the environment `env`, logging to `log_path`."""

    server: Server
    env: dict[str, str]
    log_path: Path
    wsgi: str = "pms.wsgi:application"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGINT: gunicorn's and granian's quick shutdown; SIGTERM would wait on keep-alive clients.
    # To the server's main process only, which passes it on: a gthread worker that got SIGINT
    # from the group and then SIGQUIT from its arbiter re-entered its thread pool's shutdown
    # from the second signal's handler and deadlocked on the pool's lock (py-spy), until the
    # arbiter killed it 30 s later. Whatever still runs after STOP_SECONDS is killed.
    os.kill(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log(f"the server (pid {process.pid}) outlived SIGINT by {STOP_SECONDS} s: killed")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Served(NamedTuple):
    """A running app: where it listens, and its process group (the server and its workers)."""

    port: int
    group: int


@contextmanager
def serve(*apps: App) -> Iterator[list[Served]]:
    """Runs each app on a free loopback port until the block ends. The apps start side by side
    (each imports Django for seconds) before the first is awaited."""
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for app in apps:
            port = free_port()
            log(f"{app.server.label} on {HOST}:{port} serving {app.wsgi}")
            with app.log_path.open("ab") as output:
                process = subprocess.Popen(
                    app.server.command(app.wsgi, port, app.log_path),
                    cwd=BASE_DIR,
                    env=app.env,
                    start_new_session=True,
                    stdout=output,
                    stderr=output,
                )
            started.append((process, port))
        for process, port in started:
            wait_until_ready(port, process)
        yield [Served(port, process.pid) for process, port in started]
    finally:
        for process, _port in started:
            _stop(process)


def main(argv: list[str] | None = None) -> int:
    from bench import loadgen, run

    parser = argparse.ArgumentParser(description="W1 and W5 under each server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync-workers", type=int, default=4)
    parser.add_argument(
        "--sequential", type=int, default=200, help="requests one at a time, per round"
    )
    known, rest = parser.parse_known_args(argv)
    options = run.parse_options(rest)
    candidates = [
        Server("gthread", options.workers, options.threads),
        Server("sync", known.sync_workers, 1),
        Server("granian", options.workers, options.threads),
    ]
    setup = run.prepare(options)
    keys = ("W1", "W5")
    workloads = [w for w in setup.workloads if w.key in keys]
    # (server, workload) -> each round's saturation rps, and its p50 ms one request at a time.
    throughput: dict[tuple[str, str], list[float]] = {}
    alone: dict[tuple[str, str], list[float]] = {}
    log_dir = BASE_DIR / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    for round_number in range(1, known.rounds + 1):
        for server in candidates:
            app = App(server, run.server_env(options), log_dir / "servers.log")
            with serve(app) as [(port, _group)]:
                tokens = run.obtain_tokens(port, setup.usernames)
                for workload in workloads:
                    targets = run.authorized(workload.targets, tokens)
                    run.warm_up(port, targets)
                    result = run.saturation(options, port, targets)
                    sequential = loadgen.sequential_latencies(
                        HOST, port, targets, count=known.sequential
                    )
                    measured = (server.label, workload.key)
                    throughput.setdefault(measured, []).append(result.throughput)
                    alone.setdefault(measured, []).append(sequential.percentile_ms(50))
                    log(
                        f"round {round_number} {server.label} {workload.key}: "
                        f"{result.throughput:.0f} rps, one at a time p50 "
                        f"{sequential.percentile_ms(50):.2f} ms, "
                        f"errors {result.errors + sequential.errors}"
                    )
    print("| server | " + " | ".join(f"{key} rps | {key} alone p50 ms" for key in keys) + " |")
    print("|---|" + "---:|" * 2 * len(keys))
    for server in candidates:
        cells = []
        for key in keys:
            rps, p50 = throughput[(server.label, key)], alone[(server.label, key)]
            cells.append(f"{statistics.median(rps):.0f} ({', '.join(f'{r:.0f}' for r in rps)})")
            cells.append(f"{statistics.median(p50):.2f} ({', '.join(f'{p:.2f}' for p in p50)})")
        print(f"| {server.label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
