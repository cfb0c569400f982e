"""What the host service's task tests share: the tasker plugin with one more type, ``ONCE``
(its first run ever fails, with one attempt, so it is dead until retried, then succeeds),
installed into a workspace's home; a host service with no registry on real uvicorn; and a
stand-in workflow runner with the interface ``host.workflows`` has (start, status, runs,
cancel), until the real one is wired in."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from plugport.errors import ConflictError, NotFoundError
from plugport.host.service import HostServiceSettings
from tests.host._service import Service, serving
from tests.host.tasks._tasks import CODE, MANIFEST, PLUGIN, install_tasker

__all__ = ["PLUGIN", "FakeRunner", "install_into", "service_at", "wait_until"]

ONCE_CODE = (
    CODE
    + """
    @task("ONCE")
    async def once(self, t):
        runs = await self.api.storage.get("runs") or 0
        await self.api.storage.set("runs", runs + 1)
        if runs == 0:
            raise RuntimeError("the first run of ONCE fails")
        return {"runs": runs + 1}
"""
)
ONCE_MANIFEST = MANIFEST + "\n[tasks.ONCE]\nmax-attempts = 1\n"


def install_into(service: Service, ws: str, root: Path) -> str:
    """A new workspace ``ws`` with the tasker installed in its home (before the service opens
    it); its token."""
    token = service.workspace(ws)
    install_tasker(service.home(ws), root / ws, code=ONCE_CODE, manifest=ONCE_MANIFEST)
    return token


@contextlib.contextmanager
def service_at(root: Path) -> Iterator[Service]:
    settings = HostServiceSettings(
        data_dir=root / "service", app="myapp", app_version="2.4.0", telemetry=False
    )
    with serving(settings) as service:
        yield service


def wait_until(
    client: httpx.Client, url: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


@dataclass
class FakeRun:
    id: str
    workflow: str
    input: Any
    steps: list[dict[str, Any]]
    state: str = "running"
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "state": self.state,
            "input": self.input,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "steps": [dict(s) for s in self.steps],
        }


class FakeRunner:
    """Stands in for ``host.workflows``: a diamond of four steps, ``fetch`` done,
    ``left`` running, ``right`` dead, ``merge`` waiting on both."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Any, str]] = []
        self._runs: dict[str, FakeRun] = {}

    async def close(self) -> None:
        """Nothing to close: the service calls it when it stops."""

    async def start(self, workflow: Any, given: Any, *, submitted_by: str = "host") -> FakeRun:
        self.started.append((workflow, given, submitted_by))
        if "broken" in str(workflow):
            from plugport.errors import InvalidInputError

            raise InvalidInputError("workflow: step 'merge' needs 'nowhere', which is no step")
        step = {"task": "ECHO", "task_id": None, "error": None, "result": None}
        run = FakeRun(
            uuid.uuid4().hex,
            "diamond",
            given,
            [
                step | {"name": "fetch", "needs": [], "state": "succeeded", "task_id": "t1"},
                step | {"name": "left", "needs": ["fetch"], "state": "running"},
                step | {"name": "right", "needs": ["fetch"], "state": "dead", "error": "boom"},
                step | {"name": "merge", "needs": ["left", "right"], "state": "waiting"},
            ],
        )
        self._runs[run.id] = run
        return run

    def status(self, run_id: str) -> FakeRun:
        if run_id not in self._runs:
            raise NotFoundError("workflow run", run_id)
        return self._runs[run_id]

    def runs(self, state: str | None = None, limit: int = 100) -> list[FakeRun]:
        found = [r for r in self._runs.values() if state is None or r.state == state]
        return sorted(found, key=lambda r: r.created_at, reverse=True)[:limit]

    async def cancel(self, run_id: str) -> FakeRun:
        run = self.status(run_id)
        if run.state != "running":
            raise ConflictError("workflow run", run_id, f"is {run.state}: it cannot be cancelled")
        run.state = "cancelled"
        run.finished_at = time.time()
        return run
