"""``plugport dev --json`` as a real subprocess: its JSON lines read as they come, its page
called over HTTP, and the processes it started found in /proc."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"


def dev_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "plugport", "dev", *args]


def dev_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{path}" if path else str(SRC),
        "NO_COLOR": "1",
    }


def descendants(pid: int) -> set[int]:
    """Every process under ``pid`` now (children, their children ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class DevProcess:
    """One ``plugport dev`` run; use as a context manager (it is killed if the test fails)."""

    def __init__(self, path: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            dev_command(str(path), "--json", "--port", "0", *extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dev_env(),
        )
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""
        self.http = httpx.Client(timeout=10, trust_env=False)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def __enter__(self) -> DevProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def wait_for(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """The next line of ``event`` whose fields match (earlier lines are kept in events)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event} {fields} within {timeout} s: {self.events}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"dev exited before {event}: {self.events}\n{stderr}")
            self.events.append(line)
            if line["event"] == event and all(line.get(k) == v for k, v in fields.items()):
                return line

    def started(self) -> dict[str, Any]:
        page = self.wait_for("page")
        self.url = page["url"].rstrip("/")
        self.wait_for("watching")
        return page

    def call(self, target: str, **args: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/api/call", json={"target": target, "args": args})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str) -> Any:
        response = self.http.get(f"{self.url}{path}")
        assert response.status_code == 200, response.text
        return response.json()

    def interrupt(self, timeout: float = 20.0) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)
