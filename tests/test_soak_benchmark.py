"""``benchmarks/soak.py --quick`` runs end to end against a real server and reports what the
full run is judged by (its targets, statuses, RSS samples)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._benchmarks import assert_options_refused

SOAK = Path(__file__).parent.parent / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_a_short_soak_reports_its_targets_and_no_server_error() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--quick", "--json", "--duration-s", "2", "--clients", "2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["targets"]) == {"server_errors", "rss_growth_last_half_mb"}
    assert result["targets"]["server_errors"] == {"value": 0, "target": 0, "met": True}
    assert result["dropped_connections"] == 0
    assert result["errors_by_status"] == {}
    assert result["requests"] > 0
    assert result["statuses"]["200"] > 0
    assert {"search", "detail", "download", "index"} <= set(result["by_kind"])
    assert set(result["latency_ms"]) == {"p50", "p95", "p99"}
    assert len(result["rss_mb"]["samples"]) >= 2
    assert all(rss > 10 for _, rss in result["rss_mb"]["samples"])


def test_bad_options_are_refused_with_their_name() -> None:
    assert_options_refused(SOAK, (("--duration-s", "0"), ("--clients", "0")))
