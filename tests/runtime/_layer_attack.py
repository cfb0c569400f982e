"""Run as a script by ``test_attacks.py``, as root or as an unprivileged user (``setpriv``): a
host in this process starts a sibling worker and a hostile one from a real zygote, the hostile one
aims pid-taking calls at the host, the zygote and the sibling and probes host files, and the
script prints, as JSON, what the plugin saw and whether the targets were changed.

``python _layer_attack.py ROOT [LAYER ...]``: ROOT is a directory this user may write; the layers
named are left out of the hostile worker's sandbox (e.g. ``seccomp``), to show that the others
hold the line alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from plugport.errors import PermissionDeniedError
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.process import PluginProcess
from plugport.runtime.protocol import WorkerSpec

HOSTILE = """
import ctypes, errno, os, resource
from plugport.sdk import Plugin, hook

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def attempt(fn):
    try:
        fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


def ptrace_attach(pid):
    if libc.syscall(ctypes.c_long(101), ctypes.c_long(16), ctypes.c_long(pid), 0, 0) == -1:
        raise OSError(ctypes.get_errno(), "ptrace")


class Main(Plugin):
    @hook("attack")
    def attack(self, targets, files):
        seen = {}
        for name, pid in targets.items():
            seen[name] = {
                "signal": attempt(lambda: os.kill(pid, 0)),
                "prlimit": attempt(lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3))),
                "nice": attempt(lambda: os.setpriority(os.PRIO_PROCESS, pid, 19)),
                "affinity": attempt(lambda: os.sched_setaffinity(pid, {0})),
                "proc": attempt(lambda: open(f"/proc/{pid}/status").read()),
                "ptrace": attempt(lambda: ptrace_attach(pid)),
            }
        seen["files"] = {
            path: {
                "stat": attempt(lambda: os.stat(path)),
                "list": attempt(lambda: os.listdir(os.path.dirname(path))),
                "chmod": attempt(lambda: os.chmod(path, 0o777)),
            }
            for path in files
        }
        seen["self"] = {"pid": os.getpid(), "uid": os.getuid()}
        return seen
"""

SIBLING = """
from plugport.sdk import Plugin, hook


class Main(Plugin):
    def initialize(self):
        self.calls = 0

    @hook("ping")
    def ping(self):
        self.calls += 1
        return self.calls
"""


async def refuse(capability: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    raise PermissionDeniedError("test", capability, "no capabilities in this test")


def outside(pid: int) -> dict[str, Any]:
    return {
        "limits": Path(f"/proc/{pid}/limits").read_text(),
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "affinity": sorted(os.sched_getaffinity(pid)),
    }


def spec(root: Path, name: str, uid: int | None, without: tuple[str, ...]) -> WorkerSpec:
    data = root / "data" / name
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    if uid is not None:
        os.chown(data, uid, uid)
    return WorkerSpec(
        plugin=name,
        code_dir=str(root / name),
        data_dir=str(data),
        entry="main:Main",
        memory_mb=512,
        cpu_seconds=20,
        max_concurrency=2,
        uid=uid,
        gid=uid,
        without_layers=without,
    )


async def main(root: Path, without: tuple[str, ...]) -> dict[str, Any]:
    for name, body in (("acme.evil", HOSTILE), ("acme.sibling", SIBLING)):
        (root / name).mkdir(mode=0o755)
        (root / name / "main.py").write_text(textwrap.dedent(body))
    secret = root / "state" / "runtime.sqlite"
    secret.parent.mkdir(mode=0o700)
    secret.write_text("host state")
    secret.chmod(0o600)
    root_uid = os.geteuid() == 0
    launcher = ZygoteLauncher()
    try:
        sibling_handle = await launcher.launch(
            spec(root, "acme.sibling", 1_900_999_981 if root_uid else None, ())
        )
        sibling = PluginProcess("acme.sibling", sibling_handle, refuse)
        await sibling.start(20)
        first = (await sibling.call("hook", "ping", timeout_ms=10_000)).value
        evil_spec = spec(root, "acme.evil", 1_900_999_982 if root_uid else None, without)
        evil = PluginProcess("acme.evil", await launcher.launch(evil_spec), refuse)
        ready = await evil.start(20)
        assert launcher.pid is not None
        targets = {"host": os.getpid(), "zygote": launcher.pid, "sibling": sibling_handle.pid}
        before = {name: outside(pid) for name, pid in targets.items()}
        seen = await evil.call(
            "hook",
            "attack",
            kwargs={"targets": targets, "files": [str(secret)]},
            timeout_ms=20_000,
        )
        after = {name: outside(pid) for name, pid in targets.items()}
        second = (await sibling.call("hook", "ping", timeout_ms=10_000)).value
        mode = secret.stat().st_mode & 0o777
        await evil.stop(1000)
        await sibling.stop(1000)
    finally:
        await launcher.close()
    return {
        "host_uid": os.getuid(),
        "layers": ready.sandbox,
        "seen": seen.value,
        "targets_unchanged": before == after,
        "sibling_same_worker": [first, second] == [1, 2],
        "secret_mode": oct(mode),
    }


if __name__ == "__main__":
    report = asyncio.run(main(Path(sys.argv[1]), tuple(sys.argv[2:])))
    print(json.dumps(report))
