"""``scripts/cluster.py`` (``make cluster``): ``--check`` starts two nodes behind haproxy,
publishes through one and reads back through the balancer and the other, and stops everything;
a piece that is missing is named with what to do, and nothing is left running."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "cluster.py"
POSTGRES_URL = os.environ.get("PLUGPORT_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _leftovers(marker: str) -> list[str]:
    """Processes still running whose command line names ``marker`` (our state dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in command:
                found.append(command)
    return found


@pytest.mark.slow
def test_check_publishes_through_one_node_and_reads_through_the_others(tmp_path: Path) -> None:
    if not (POSTGRES_URL and REDIS_URL):
        pytest.skip("PLUGPORT_TEST_POSTGRES_URL / PLUGPORT_TEST_REDIS_URL are not set (.ci/run)")
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (make haproxy installs Debian's when root)")
    state = tmp_path / f"state-{uuid.uuid4().hex[:8]}"
    done = _run(
        "--check", "--port", "0", "--node-port", "0", "--postgres-url", POSTGRES_URL,
        # The usual Redis database: each registry's rate-limit counters carry its index key's
        # id, so other registries' tests counting 127.0.0.1 there spend their own budgets.
        "--redis-url", REDIS_URL,
        "--database", f"plugport_cluster_test_{os.getpid()}", "--drop-database",
        "--state-dir", str(state),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "check passed" in done.stdout
    assert "through node1: pending_review" in done.stdout
    assert "node2 (http://127.0.0.1:" in done.stdout
    assert "signed by the shared key" in done.stdout
    assert "ppt_" not in done.stdout + done.stderr  # the admin token stays in its file
    assert _leftovers(str(state)) == []
    for log in ("node1.log", "node2.log", "haproxy.log", "s3.log"):
        assert (state / log).exists(), log


def test_a_taken_port_is_named_with_the_option_to_change_it() -> None:
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (make haproxy installs Debian's when root)")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("--port", str(port), "--check")
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 (the balancer) is taken" in done.stderr
    assert "--port" in done.stderr


def test_postgres_that_cannot_be_reached_is_named() -> None:
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (make haproxy installs Debian's when root)")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    done = _run(
        "--check", "--port", "0", "--node-port", "0",
        "--postgres-url", f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
    )  # fmt: skip
    assert done.returncode == 1
    assert f"PostgreSQL is not reachable at 127.0.0.1:{port}" in done.stderr
    assert "--postgres-url" in done.stderr
