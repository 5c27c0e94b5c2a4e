"""bench/cpu.py: whose CPU a workload spends (the server's process group, PostgreSQL, Redis)."""

import os
import subprocess
import sys
import time

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not cpu.PROC.is_dir(), reason="needs Linux's /proc")


def test_the_servers_share_is_its_process_groups_cpu() -> None:
    # A process of a group of its own burns ~0.3 s of CPU; this process's group is not its.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.process_time() + 0.3\n"
         "while time.process_time() < end: pass\nimport sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        before = cpu.sample(child.pid)
        assert before is not None
        time.sleep(0.6)
        after = cpu.sample(child.pid)
        mine = cpu.sample(os.getpgid(0))
    finally:
        child.communicate(b"")
    spent = cpu.per_request(before, after, requests=10)
    assert spent is not None
    # 0.3 s over 10 requests: ~30 ms each (the clock ticks every 10 ms).
    assert 15 <= spent["server"] <= 45
    assert spent["total"] == pytest.approx(
        spent["server"] + spent["postgres"] + spent["redis"], abs=0.01
    )
    assert mine is not None
    assert mine["server"] > 0


def test_no_sample_no_figures() -> None:
    assert cpu.per_request(None, {"server": 1.0}, 5) is None
    assert cpu.per_request({"server": 1.0}, {"server": 2.0}, 0) is None
    assert cpu.per_request(
        {"server": 1.0, "postgres": 0.5}, {"server": 1.5, "postgres": 0.7}, 100
    ) == {
        "server": 5.0,
        "postgres": 2.0,
        "total": 7.0,
    }
