"""``plugport serve --host-service``: the real command serves the registry and its workspaces on
one origin, and a port it cannot listen on is an error naming ``--port``."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from plugport.cohost import bind
from tests.conftest import RunCli

PLUGPORT = [sys.executable, "-m", "plugport"]


def test_serve_with_the_host_service(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*PLUGPORT, "serve", "--host-service", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert found, first
        url = found.group(0)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 20 s"
            time.sleep(0.05)
        page = httpx.get(f"{url}/workspaces")
        assert page.status_code == 200
        assert 'id="signin-form"' in page.text
        refused = httpx.get(f"{url}/api/v1/workspaces/any/installations")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert (tmp_path / "host-service" / "service.sqlite").is_file()
    finally:
        process.terminate()
        process.wait(20)
        if process.stdout is not None:
            process.stdout.close()


def test_a_port_in_use_is_an_error_naming_the_option(tmp_path: Path) -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                *PLUGPORT,
                "serve",
                "--host-service",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        taken.close()
    assert result.returncode == 1
    assert "--port" in result.stderr + result.stdout
    assert not (tmp_path / "host-service").exists()


@pytest.mark.parametrize("extra", [[], ["--host-service"]])
def test_a_setting_out_of_range_is_an_error_naming_it(
    run_cli: RunCli, tmp_path: Path, extra: list[str]
) -> None:
    data = tmp_path / "data"
    result = run_cli("serve", *extra, "--port", "99999", "--data-dir", str(data))
    assert result.exit_code == 1
    assert "registry settings: port: Input should be less than or equal to 65535" in result.output
    assert not data.exists()
