"""``make demo`` is the README's first promise: it must run to the end and show what it claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plugport.runtime.sandbox import doctor

DEMO = Path(__file__).parent.parent / "scripts" / "demo.py"


def test_demo_runs_to_the_end_and_contains_the_hostile_plugin() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sha256 identical across packs: True" in out
    if all(layer.available for layer in doctor()):  # best-effort honestly shows what got through
        assert "ALLOWED" not in out
    assert "evil.hostile tried to run a program: refused" in out
    assert "process_task -> acme.word-count: {'words': 8" in out
    assert "the host heard tasks.processed" in out
    assert out.rstrip().endswith("Next: `make test` runs the whole suite.")
