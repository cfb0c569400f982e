"""``benchmarks/archive.py`` runs end to end and reports its targets block."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ARCHIVE = Path(__file__).parent.parent / "benchmarks" / "archive.py"


def test_a_short_archive_run_reports_its_targets() -> None:
    done = subprocess.run(
        [sys.executable, str(ARCHIVE), "--json", "--runs", "2", "--size-mb", "0.2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    targets = json.loads(done.stdout)["targets"]
    assert set(targets) == {"verify_and_unpack_p50_ms", "pack_reproducible"}
    assert targets["pack_reproducible"] == {"value": True, "target": True, "met": True}
    share = targets["verify_and_unpack_p50_ms"]
    assert share["met"] == (share["value"] <= share["target"])
