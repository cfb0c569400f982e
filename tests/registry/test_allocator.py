"""``plugport serve`` limits glibc's malloc arenas and fixes its mmap threshold (the RSS growth
under load), unless the operator's environment says otherwise. Each case runs in a fresh
process: the settings are process-wide."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from plugport.registry.allocator import ARENA_MAX, MMAP_THRESHOLD_BYTES


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018 present only in glibc
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


pytestmark = pytest.mark.skipif(not _glibc(), reason="the allocator settings are glibc's")

_PROBE = "import json; from plugport.registry.allocator import tune_allocator; " + (
    "print(json.dumps(tune_allocator()))"
)
_OURS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def tuned(**variables: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in _OURS} | variables
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_both_are_set_by_default() -> None:
    assert tuned() == {"arena_max": ARENA_MAX, "mmap_threshold_bytes": MMAP_THRESHOLD_BYTES}


def test_the_operators_environment_wins() -> None:
    assert tuned(MALLOC_ARENA_MAX="8") == {"mmap_threshold_bytes": MMAP_THRESHOLD_BYTES}
    assert tuned(MALLOC_MMAP_THRESHOLD_="65536") == {"arena_max": ARENA_MAX}
    assert tuned(GLIBC_TUNABLES="glibc.malloc.arena_max=4") == {}
