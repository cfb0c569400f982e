"""What the benchmark scripts' tests share."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def assert_options_refused(script: Path, cases: Iterable[tuple[str, str]]) -> None:
    """Each ``(option, value)`` makes ``script`` exit 2 with the option named on stderr."""
    for option, value in cases:
        done = subprocess.run(
            [sys.executable, str(script), option, value],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert option in done.stderr
