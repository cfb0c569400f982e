"""``benchmarks/ui.py --quick`` runs end to end (a real registry, the host service on uvicorn,
sandboxed widgets, a client in another process) and reports its targets, the figures behind
them and the baselines they are compared with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

UI = Path(__file__).parent.parent / "benchmarks" / "ui.py"
KINDS = {"page", "tile", "slowest_tile", "view_wall", "action", "static", "versions"}


@pytest.mark.slow
def test_a_quick_ui_run_reports_its_targets_and_baselines() -> None:
    done = subprocess.run(
        [sys.executable, str(UI), "--quick", "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["benchmark"] == "ui"
    assert result["quick"] is True
    assert result["cpus"] >= 1
    assert result["python"].count(".") == 2
    targets = result["targets"]
    assert set(targets) == {"dashboard_10_widgets_p95_ms", "widget_action_roundtrip_p95_ms"}
    for target in targets.values():
        assert {"value", "target", "met"} <= set(target)
        assert target["value"] > 0
        assert target["met"] == (target["value"] <= target["target"])
    assert targets["dashboard_10_widgets_p95_ms"]["target"] == 150.0
    assert targets["widget_action_roundtrip_p95_ms"]["target"] == 100.0

    sizes, http = result["sizes"], result["http"]
    assert set(http) >= KINDS
    for kind in KINDS:
        figures = http[kind]
        assert set(figures) == {"p50_ms", "p95_ms", "p99_ms"}
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert http["tile_requests"] == sizes["views"] * sizes["plugins"]
    assert targets["dashboard_10_widgets_p95_ms"]["value"] == http["slowest_tile"]["p95_ms"]
    assert http["slowest_tile"]["p50_ms"] >= http["tile"]["p50_ms"]
    assert http["server_cpu_ms_per_view"] > 0
    assert 0 < http["server_cpu_share_during_views"] <= 2.5  # of one core; a few threads

    bare = result["in_process"]
    for kind in ("call_ui", "ask_call_and_check", "render_html"):
        assert bare[kind]["p50_ms"] > 0
    assert bare["tile_html_bytes"] > 5000  # a stat, a chart, a table of 20 rows, a button
    assert all(ratio > 0 for ratio in result["ratios"].values())


def test_bad_options_are_refused_with_their_name() -> None:
    for option in ("--views", "--actions"):
        done = subprocess.run(
            [sys.executable, str(UI), option, "0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert option in done.stderr
