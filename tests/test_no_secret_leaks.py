"""No secret in any output: the integration tests run again in a child pytest with every
logger at DEBUG written to a file (httpx and httpcore traces, uvicorn, our audit logger,
everything the host and its workers log), and that file and the run's output, plus every file
the run left
behind (state databases, audit logs, inboxes, outboxes, plugin logs), is searched for each
test's stand-in secret values. Each module also checks its own outputs; this catches what a
module did not think to look at (a debug trace, a file)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# module -> the names of its stand-in secret values
WATCHED = {
    "tests.runtime.test_credentials": ("TOKEN", "KEY", "BASIC", "OTHER"),
    "tests.host.secrets.test_e2e": ("VALUE",),
    "tests.host.inbound.test_route": ("SECRET",),
    "tests.runtime.test_webhooks": ("KEY",),
}

FOREIGN_LOGGERS = ("mail.log",)
"""Loggers of the local fakes' own servers (aiosmtpd), which see what a real service would."""

KEPT_ON_PURPOSE = ("secrets.sqlite",)
"""Files that hold values by design; the store's are encrypted, so they are searched too, and
any plain value there fails the test like anywhere else. (Nothing is listed as exempt.)"""


def _values() -> dict[str, str]:
    found: dict[str, str] = {}
    for module, names in WATCHED.items():
        loaded = importlib.import_module(module)
        for name in names:
            value = getattr(loaded, name)
            found[f"{module}.{name}"] = value.decode() if isinstance(value, bytes) else value
    return found


def test_no_stand_in_secret_reaches_any_output_or_file(tmp_path: Path) -> None:
    values = _values()
    files = [str(ROOT / Path(*module.split("."))) + ".py" for module in WATCHED]
    basetemp = tmp_path / "run"
    log_file = tmp_path / "debug.log"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--log-file={log_file}",
            "--log-file-level=DEBUG",
            "--log-file-format=%(name)s %(levelname)s %(message)s",
            "-rA",
            f"--basetemp={basetemp}",
            *files,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    logged = log_file.read_text(errors="replace")
    assert "DEBUG" in logged  # the debug traces were written, and are searched
    output = "\n".join(
        line
        for line in (run.stdout + run.stderr + logged).splitlines()
        if not line.startswith(FOREIGN_LOGGERS)
    )
    leaks = [where for where, value in values.items() if value in output]
    assert leaks == [], f"stand-in secrets in the run's output: {leaks}"
    in_files = [
        f"{where} in {path.relative_to(basetemp)}"
        for path in basetemp.rglob("*")
        if path.is_file()
        for where, value in values.items()
        if value.encode() in path.read_bytes()
    ]
    assert in_files == [], f"stand-in secrets in files the run left: {in_files}"
