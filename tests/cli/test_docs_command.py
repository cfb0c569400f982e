"""plugport docs: serves this checkout's site on 127.0.0.1; a missing docs extra, a missing site
or a taken port is one clear message, and nothing is started."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from plugport.cli import docs
from tests.conftest import RunCli

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"nothing may start: {args}")

    monkeypatch.setattr(docs.subprocess, "run", refuse)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.usefixtures("no_subprocess")
def test_missing_docs_extra_is_named_with_the_install_command(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs, "_importable", lambda module: module != "material")
    result = run_cli("docs", "--port", str(_free_port()))
    assert result.exit_code == 1
    assert "the docs extra is not installed (missing mkdocs-material)" in result.output
    assert "pip install 'plugport[docs]'" in result.output


@pytest.mark.usefixtures("no_subprocess")
def test_missing_site_sources_are_named(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docs, "CONFIG", tmp_path / "wheel" / "mkdocs.yml")
    result = run_cli("docs")
    assert result.exit_code == 1
    assert "no docs site here" in result.output
    assert "source checkout" in result.output
    assert not (tmp_path / "wheel").exists()


@pytest.mark.usefixtures("no_subprocess")
def test_a_taken_port_is_refused(run_cli: RunCli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("docs", "--port", str(port))
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output


def test_port_out_of_range_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("docs", "--port", "70000")
    assert result.exit_code == 2


@pytest.mark.slow
def test_docs_builds_and_serves_the_site_until_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "plugport", "docs", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said: queue.Queue[str] = queue.Queue()
    assert server.stdout is not None
    reader = threading.Thread(target=lambda: [said.put(x) for x in server.stdout], daemon=True)
    reader.start()
    lines: list[str] = []
    try:
        # The site is built before it is served: seconds when idle, much longer on a loaded
        # machine. Wait for the server to say it serves (or to end), then ask for a page.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("Serving on" in x for x in lines):
            with contextlib.suppress(queue.Empty):
                lines.append(said.get(timeout=0.5))
            if server.poll() is not None and said.empty():
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/tutorial/", timeout=30) as response:
            page = response.read().decode()
        assert "Your first plugin in 10 minutes" in page
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        reader.join(timeout=10)
        server.stdout.close()
        while not said.empty():
            lines.append(said.get())
    output = "".join(lines)
    assert server.returncode == 0, output
    assert f"serving on http://127.0.0.1:{port}/" in output
    with socket.socket() as probe:  # nothing listens there any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
