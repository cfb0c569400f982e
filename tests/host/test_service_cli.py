"""``plugport host``: the admin token, workspaces and tokens an operator makes on the service's
machine, and ``plugport host serve`` answering with them over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from plugport.errors import AuthenticationError
from plugport.host.service.store import ServiceStore
from tests.conftest import RunCli


def test_tokens_and_workspaces_from_the_command_line(run_cli: RunCli, tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path / "svc")]

    def ok(*args: str) -> str:
        result = run_cli("host", *args, *where)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    def refused(*args: str) -> str:
        result = run_cli("host", *args, *where)
        assert result.exit_code == 1, result.output
        return result.output

    admin = ok("create-admin")
    member = ok("workspace", "create", "team-a")
    expiring = ok("token", "create", "--workspace", "team-a", "--expires-days", "2")
    assert "'../x' is not a workspace name" in refused("workspace", "create", "../x")
    assert "workspace 'team-a' exists already" in refused("workspace", "create", "team-a")
    assert "no workspace 'nope'" in refused("token", "create", "--workspace", "nope")
    assert "no token 'zzzzzzzz'" in refused("token", "revoke", "zzzzzzzz")
    assert "expires_days: 0 is not within" in refused(
        "token", "create", "--workspace", "team-a", "--expires-days", "0"
    )
    prefix = expiring.split("_")[1]
    assert f"revoked token {prefix} (team-a)" in ok("token", "revoke", prefix)

    store = ServiceStore(tmp_path / "svc" / "service.sqlite")
    try:
        assert store.authenticate(admin).kind == "admin"
        assert store.authenticate(member).workspace == "team-a"
        with pytest.raises(AuthenticationError, match="was revoked"):
            store.authenticate(expiring)
        assert [w.name for w in store.workspaces()] == ["team-a"]
        assert (tmp_path / "svc").is_dir()
        assert all(
            admin not in p.read_bytes().decode(errors="ignore")
            for p in (tmp_path / "svc").iterdir()
            if p.is_file()
        )
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_answers_with_the_tokens_it_was_given(run_cli: RunCli, tmp_path: Path) -> None:
    data = str(tmp_path / "svc")
    admin = run_cli("host", "create-admin", "--data-dir", data).output.strip()
    port = _free_port()
    command = [sys.executable, "-m", "plugport", "host", "serve", "--data-dir", data]
    command += ["--port", str(port), "--app", "myapp", "--app-version", "1.0"]
    server = subprocess.Popen(
        command,
        env=os.environ | {"PLUGPORT_TELEMETRY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while True:
                try:
                    response = client.get(
                        "/api/v1/workspaces", headers={"Authorization": f"Bearer {admin}"}
                    )
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stdout.read() if server.stdout else ""
                    assert time.monotonic() < deadline, "plugport host serve did not start"
                    time.sleep(0.1)
            assert response.status_code == 200, response.text
            assert response.json() == {"items": []}
            assert client.get("/api/v1/workspaces").status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert b"starting the plugport host service" in output
    bad = run_cli("host", "serve", "--data-dir", data, "--app-version", "not-a-version")
    assert bad.exit_code == 1
    assert "app_version" in bad.output
