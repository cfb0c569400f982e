"""A delivery survives a ``kill -9`` of the real host service: ``plugport host serve`` runs in a
subprocess, accepts a signed delivery (202), and is killed while the plugin's handler is still
working on it; started again on the same data directory, it hands the delivery over once more
and the plugin records it exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.host.service.store import ServiceStore
from plugport.testing import sign_webhook
from tests.host.inbound._hooks import PLUGIN, SECRET, install_into

WS = "team"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Served:
    """One ``plugport host serve`` process (its own process group, so whatever it leaves
    behind is ended with it) and its output in a file."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = os.environ | {
            "PLUGPORT_HOST_SERVICE_TELEMETRY": "false",
            "PLUGPORT_HOST_SERVICE_WEBHOOK_RETRY_BASE_S": "0.05",
        }
        command = [sys.executable, "-m", "plugport", "host", "serve", "--data-dir", str(data_dir)]
        command += ["--port", str(self.port), "--app", "myapp", "--app-version", "2.4.0"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, token: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited: {self.log.read_text()}")
            try:
                answer = httpx.get(
                    f"{self.url}/api/v1/workspaces/{WS}/installations",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert answer.status_code == 200, answer.text
            return
        pytest.fail(f"the service never answered: {self.log.read_text()}")

    def kill(self) -> None:
        """``kill -9`` the service alone, as a crash would; then anything of its group left."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        self.kill()


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, str]:
    """A data directory with workspace ``team`` holding the plugin (its secret set); a token."""
    data_dir = tmp_path / "service"
    data_dir.mkdir()
    store = ServiceStore(data_dir / "service.sqlite")
    try:
        store.create_workspace(WS)
        token, _ = store.create_token("workspace", WS, description="restart test")
    finally:
        store.close()
    home = data_dir / "workspaces" / WS
    home.mkdir(parents=True)
    install_into(home, tmp_path)
    return data_dir, token


def _row(data_dir: Path, delivery: str) -> dict[str, Any] | None:
    """The delivery's task, read from the workspace's queue file by another process."""
    path = data_dir / "workspaces" / WS / "tasks.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        db.row_factory = sqlite3.Row
        row = db.execute(
            "SELECT CASE state WHEN 'queued' THEN 'pending' WHEN 'succeeded' THEN 'done' "
            "ELSE state END AS state, attempts FROM tasks WHERE id = ?",
            (delivery,),
        ).fetchone()
    finally:
        db.close()
    return None if row is None else dict(row)


def _wait_row(data_dir: Path, delivery: str, state: str, timeout_s: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = _row(data_dir, delivery)
        if row is not None and row["state"] == state:
            return row
        time.sleep(0.02)
    pytest.fail(f"delivery {delivery} is {_row(data_dir, delivery)}, never {state}")


def test_a_delivery_cut_off_by_kill_9_is_handled_once_after_restart(
    prepared: tuple[Path, str], tmp_path: Path
) -> None:
    data_dir, token = prepared
    log = tmp_path / "service.log"
    first = _Served(data_dir, log)
    try:
        first.wait_ready(token)
        body = json.dumps({"n": 7}).encode()
        headers = sign_webhook("github", SECRET, body, delivery_id="r-1")
        answer = httpx.post(f"{first.url}/hooks/{WS}/{PLUGIN}/slow", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        delivery = answer.json()["delivery"]
        # claimed: the handler's first attempt is running (it sleeps two minutes)
        assert _wait_row(data_dir, delivery, "running")["attempts"] == 1
        time.sleep(0.3)  # well inside the handler
    finally:
        first.kill()
    assert _row(data_dir, delivery) == {"state": "running", "attempts": 1}

    second = _Served(data_dir, log)
    try:
        # no request needed: the service resumes the queue when it starts
        done = _wait_row(data_dir, delivery, "done")
        assert done["attempts"] == 2
        second.wait_ready(token)
        with httpx.Client(
            base_url=second.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            seen = api.post(
                f"/api/v1/workspaces/{WS}/installations/{PLUGIN}/execute",
                json={"command": "inbox.seen"},
            )
            assert seen.json()["result"] == ["r-1"], seen.text
            # the sender retries after the outage: a duplicate, not handled again
            again = httpx.post(
                f"{second.url}/hooks/{WS}/{PLUGIN}/slow", content=body, headers=headers
            )
            assert (again.status_code, again.json()["duplicate"]) == (200, True)
            time.sleep(0.3)
            seen = api.post(
                f"/api/v1/workspaces/{WS}/installations/{PLUGIN}/execute",
                json={"command": "inbox.seen"},
            )
            assert seen.json()["result"] == ["r-1"], seen.text
    finally:
        second.stop()
    assert SECRET not in log.read_text()
