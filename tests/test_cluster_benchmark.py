"""``benchmarks/cluster.py --quick`` runs a real two-node cluster behind haproxy end to end and
reports what the full run is judged by: 1-node and 2-node throughput, no failed answer, and a
change on node 1 seen on node 2 within the target."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._benchmarks import assert_options_refused

CLUSTER = Path(__file__).parent.parent / "benchmarks" / "cluster.py"
POSTGRES_URL = os.environ.get("PLUGPORT_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")


def _needs() -> str | None:
    if not POSTGRES_URL:
        return "PLUGPORT_TEST_POSTGRES_URL is not set (.ci/run sets it)"
    if not REDIS_URL:
        return "PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)"
    if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")):
        return "haproxy is not installed (make haproxy installs Debian's when root)"
    return None


@pytest.mark.slow
def test_a_quick_cluster_run_reports_its_targets_without_errors() -> None:
    if reason := _needs():
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, str(CLUSTER), "--quick", "--json", "--duration-s", "1.5"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "PLUGPORT_TEST_POSTGRES_URL": str(POSTGRES_URL),
            "PLUGPORT_TEST_REDIS_URL": str(REDIS_URL),
        },
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    targets = result["targets"]
    assert set(targets) == {"two_node_scaling", "errors", "cross_node_visibility_ms"}
    assert targets["errors"] == {"value": 0, "target": 0, "met": True}
    assert targets["cross_node_visibility_ms"]["met"], result["cross_node_visibility_ms"]
    assert set(result["cross_node_visibility_ms"]) == {"publish", "approve", "yank"}
    # Scaling depends on the machine's cores; that it was measured on both is what counts here.
    phases = result["throughput"]["phases"]
    assert [phase["nodes"] for phase in phases] == [1, 2]
    for phase in phases:
        assert phase["requests"] > 0
        assert set(phase["by_kind"]) == {"search", "detail", "download"}
    one, two = phases
    assert one["cpu_cores_used"]["node2"] < 0.05  # in maintenance: the balancer sent it nothing
    assert two["cpu_cores_used"]["node2"] > 0.05
    assert targets["two_node_scaling"]["value"] > 0
    assert result["dropped"] == {}
    assert set(result["statuses"]) == {"200"}


def test_bad_options_are_refused_with_their_name() -> None:
    assert_options_refused(CLUSTER, (("--duration-s", "0"), ("--clients", "0"), ("--rounds", "0")))
