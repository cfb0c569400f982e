"""One task node in its own process, for the tests that kill it: a :class:`PluginHost` on
``home`` that runs tasks (optionally on a shared ``--tasks-url``), submits ``--submit`` gated
``EFFECT`` tasks, writes its node name to ``home/node``, and opens the tasker's gate once the
file ``home/open-gate`` appears. It runs until it is killed.

Run as ``python -m tests.host.tasks._node HOME ...`` from the repository root; see
:func:`start_node`."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions
from tests.host.tasks._tasks import open_gate

ROOT = Path(__file__).resolve().parents[3]


def start_node(
    home: Path,
    *,
    concurrency: int,
    submit: int = 0,
    tasks_url: str | None = None,
    lease_s: float = 15.0,
    workflow: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The node, started in its own session; its output goes to ``home/node.log``.
    ``workflow``: a workflow file it starts one run of (input ``{}``) after submitting."""
    command = [sys.executable, "-m", "tests.host.tasks._node", str(home)]
    command += ["--concurrency", str(concurrency), "--submit", str(submit)]
    if workflow is not None:
        command += ["--workflow", str(workflow)]
    if tasks_url is not None:
        command += ["--tasks-url", tasks_url, "--lease-s", str(lease_s)]
    with (home / "node.log").open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


async def _main(args: argparse.Namespace) -> None:
    home = Path(args.home)
    shared = args.tasks_url is not None
    options = QueueOptions(
        concurrency=args.concurrency,
        exclusive=not shared,
        lease_s=args.lease_s,  # a killed peer's tasks are swept at each heartbeat past it
    )
    host = PluginHost(
        app="myapp",
        app_version="2.4.0",
        home=home,
        consent=lambda r: True,
        tasks_url=args.tasks_url,
        task_options=options,
    )
    async with host:
        for i in range(args.submit):
            await host.tasks.submit("EFFECT", {"key": f"k{i:03}", "gated": True})
        if args.workflow:
            run = await host.workflows.start(Path(args.workflow), {})
            (home / "run").write_text(run.id)
        (home / "node").write_text(host.tasks.node)
        while not (home / "open-gate").exists():
            await asyncio.sleep(0.05)
        open_gate(host)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--tasks-url")
    parser.add_argument("--lease-s", type=float, default=15.0)
    parser.add_argument("--workflow")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
