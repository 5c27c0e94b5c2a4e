"""Whose CPU a workload spends: the HTTP server's processes, PostgreSQL's and Redis's.

Throughput alone cannot tell a build that spends more CPU per request from one that waits
more (on a commit, a round trip, a lock) and leaves the cores idle. Each comparison with the
plain build therefore reads, around each round, the CPU time (user + system, children included)
of the server's process group and of every `postgres` and `redis-server` process on this
machine, from Linux's /proc. The load client's own CPU is in none of them. Elsewhere than on
Linux the figures are None.
"""

import os
from pathlib import Path

PROC = Path("/proc")
_SERVICES = {"postgres": "postgres", "redis-server": "redis"}


def _ticks(stat: str) -> int:
    # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat, after the command's ")".
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15])


def sample(server_group: int) -> dict[str, float] | None:
    """Seconds of CPU so far of the server (process group `server_group`), PostgreSQL and Redis."""
    if not PROC.is_dir():
        return None
    ticks = {"server": 0, "postgres": 0, "redis": 0}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = stat.split("(", 1)[1].rsplit(")", 1)[0]
            service = next((v for k, v in _SERVICES.items() if command.startswith(k)), None)
            if service is None and os.getpgid(int(entry.name)) == server_group:
                service = "server"
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if service:
            ticks[service] += _ticks(stat)
    hertz = os.sysconf("SC_CLK_TCK")
    return {name: count / hertz for name, count in ticks.items()}


def per_request(
    before: dict[str, float] | None, after: dict[str, float] | None, requests: int
) -> dict[str, float] | None:
    """ms of CPU per request of each, and their total, between two samples."""
    if before is None or after is None or not requests:
        return None
    spent = {name: (after[name] - before[name]) * 1000 / requests for name in before}
    spent["total"] = sum(spent.values())
    return {name: round(ms, 3) for name, ms in spent.items()}
