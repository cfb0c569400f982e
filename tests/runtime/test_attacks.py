"""The attack suite: hostile plugins run by a real supervisor in real workers under the strict
sandbox. Each test asserts the precise refusal, the audit trail of every host-side decision, and
that a well-behaved plugin is still started and served afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import platform
import shutil
import site
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from string import Template
from typing import Any, TypeVar

import pytest

import plugport
from plugport.errors import (
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    PluginQuarantinedError,
    PlugportError,
    ResourceLimitExceededError,
)
from plugport.runtime import volumes
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.audit import AuditEvent, MemoryAuditLog
from plugport.runtime.broker import NetOptions
from plugport.runtime.capabilities.network import StaticResolver
from plugport.runtime.hooks import HookOutcome, HookSpec
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.sandbox import LayerStatus, doctor
from plugport.runtime.sandbox.environment import scrubbed_environment
from plugport.runtime.supervisor import PluginInstall, PluginStatus, Supervisor
from tests.runtime._supervised import data_file, kinds, supervise, write_plugin

EVIL = "acme.evil"
GOOD = "acme.good"
HOOKS = (HookSpec("attack"), HookSpec("ping"))
E = TypeVar("E", bound=PlugportError)
Step = Callable[[Supervisor], Awaitable[Any]]

# Prepended to every hostile plugin: how one attempt came out, as the errno name when the kernel
# refused it ("EACCES"), the exception type otherwise, or "ok".
PRELUDE = """\
import errno


def attempt(action):
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def syscall(name, *args):
    import ctypes
    from plugport.runtime.sandbox.seccomp import ARCHES

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = ARCHES[os.uname().machine].syscalls[name]

    def call():
        if libc.syscall(number, *(ctypes.c_long(a) for a in args)) < 0:
            raise OSError(ctypes.get_errno(), f"{name}()")

    return call

"""

GOOD_BODY = """
class Main(Plugin):
    @hook("ping")
    def ping(self):
        return "pong"
"""


# --- running an attack ---------------------------------------------------------------------------


@functools.cache
def _machine() -> dict[str, LayerStatus]:
    return {status.name: status for status in doctor()}


def need(*layers: str) -> None:
    """Skip unless this machine offers ``layers`` (every layer when none is named)."""
    machine = _machine()
    for name in layers or tuple(machine):
        if not machine[name].available:
            pytest.skip(f"sandbox layer {name} unavailable here: {machine[name].detail}")


@pytest.fixture(autouse=True)
def strict_sandbox() -> None:
    """Every attack runs under ``sandbox = "strict"``, which refuses to start a worker at all
    unless every layer is available: each test relies on all of them."""
    need()


def good(root: Path) -> PluginInstall:
    """The well-behaved plugin every test calls after its attack. It activates lazily, so its
    first call also proves the zygote still forks workers."""
    return write_plugin(root, GOOD, GOOD_BODY, "[contributes]\nhooks = { ping = 0 }\n")


def hostile(
    root: Path, body: str, manifest: str = "", *, name: str = EVIL, priority: int = 0
) -> PluginInstall:
    contributes = f"\n[contributes]\nhooks = {{ attack = {priority} }}\n"
    return write_plugin(
        root, name, PRELUDE + textwrap.dedent(body), textwrap.dedent(manifest) + contributes
    )


async def good_is_served(runtime: Supervisor) -> None:
    started = time.perf_counter()
    outcomes = await runtime.call_hook("ping")
    assert [(o.plugin, o.value, o.error) for o in outcomes] == [(GOOD, "pong", None)]
    assert time.perf_counter() - started < 5


@dataclass
class Attack:
    """How an attack went: the attack hook's outcome for each call, the attacker's status once
    the scenario ended, and everything the host audited."""

    outcomes: list[HookOutcome]
    status: PluginStatus
    audit: MemoryAuditLog

    def value(self, call: int = 0) -> Any:
        outcome = self.outcomes[call]
        assert outcome.ok, outcome.error
        return outcome.value

    def error(self, cls: type[E], call: int = 0) -> E:
        error = self.outcomes[call].error
        assert isinstance(error, cls), f"expected {cls.__name__}, got {error!r}"
        return error

    @property
    def kinds(self) -> list[str]:
        return kinds(self.audit, EVIL)

    def events(self, kind: str) -> list[AuditEvent]:
        return list(reversed(self.audit.query(plugin=EVIL, kind=kind, limit=1000)))


def run_attack(
    root: Path,
    body: str,
    manifest: str = "",
    *,
    calls: int = 1,
    before: Step | None = None,
    during: Step | None = None,
    after: Step | None = None,
    others: Sequence[PluginInstall] = (),
    hooks: tuple[HookSpec, ...] = HOOKS,
    local_endpoints: tuple[str, ...] = (),
    **config: Any,
) -> Attack:
    """Add the hostile plugin ``body`` (granted ``local_endpoints``), the ``others`` and the
    good plugin to a real supervisor; call the ``attack`` hook ``calls`` times (``during`` runs
    alongside), then check that the good plugin is served."""
    evil = dataclasses.replace(hostile(root, body, manifest), local_endpoints=local_endpoints)
    installs = [evil, *others, good(root)]
    outcomes: list[HookOutcome] = []
    statuses: list[PluginStatus] = []

    async def attack(runtime: Supervisor) -> None:
        for _ in range(calls):
            [outcome] = await runtime.call_hook("attack")
            outcomes.append(outcome)

    async def scenario(runtime: Supervisor) -> None:
        if before is not None:
            await before(runtime)
        if during is None:
            await attack(runtime)
        else:
            await asyncio.gather(attack(runtime), during(runtime))
        if after is not None:
            await after(runtime)
        statuses.extend(runtime.status(EVIL))
        await good_is_served(runtime)

    audit = supervise(root, installs, scenario, hooks=hooks, **config)
    return Attack(outcomes, statuses[0], audit)


HIDDEN = "ENOENT"  # outside the worker's filesystem view: not refused, simply not there
VOLUMES = volumes.unsupported_reason() is None  # root here: data dirs are size-limited volumes


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid in /proc/{pid}/status")


# --- refused inside the worker -------------------------------------------------------------------

SPAWN = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        # Reach os and subprocess the way sandbox escapes do: from object, without importing.
        wrap_close = next(c for c in object.__subclasses__() if c.__name__ == "_wrap_close")
        os_module = wrap_close.__init__.__globals__
        os_module["__builtins__"]["__import__"]("subprocess")
        popen = next(c for c in object.__subclasses__() if c.__name__ == "Popen")
        return {
            "os.system": os_module["system"]("id"),
            "posix.fork": attempt(os_module["fork"]),
            "posix_spawn": attempt(lambda: os_module["posix_spawn"]("/usr/bin/id", ["id"], {})),
            "subprocess.Popen": attempt(lambda: popen(["id"])),
        }
"""

RAW_SYSCALLS = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        zygote = os.getppid()
        return {
            "ptrace(TRACEME)": attempt(syscall("ptrace", 0, 0, 0, 0)),
            "ptrace(ATTACH, zygote)": attempt(syscall("ptrace", 16, zygote, 0, 0)),
            "process_vm_readv(zygote)": attempt(syscall("process_vm_readv", zygote, 0, 0, 0, 0, 0)),
            "unshare(NEWUSER)": attempt(syscall("unshare", 0x10000000)),
            "unshare(NEWNS)": attempt(syscall("unshare", 0x00020000)),
            "clone(NEWUSER)": attempt(syscall("clone", 0x10000000 | 17, 0, 0, 0, 0)),
            "clone3": attempt(syscall("clone3", 0, 0)),
            "setns": attempt(syscall("setns", 0, 0)),
            "mount": attempt(syscall("mount", 0, 0, 0, 0, 0)),
            "chroot": attempt(syscall("chroot", 0)),
            "bpf": attempt(syscall("bpf", 0, 0, 0)),
            "io_uring_setup": attempt(syscall("io_uring_setup", 1, 0)),
            "keyctl": attempt(syscall("keyctl", 0, 0)),
            "perf_event_open": attempt(syscall("perf_event_open", 0, 0, 0, 0, 0)),
            "init_module": attempt(syscall("init_module", 0, 0, 0)),
            "kexec_load": attempt(syscall("kexec_load", 0, 0, 0, 0)),
            "reboot": attempt(syscall("reboot", 0, 0, 0, 0)),
            "settimeofday": attempt(syscall("settimeofday", 0, 0)),
        }
"""

SYSTEM_FILES = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        def read(path):
            return attempt(lambda: open(path, "rb").read())

        return {
            "/etc/passwd": read("/etc/passwd"),
            "/etc/shadow": read("/etc/shadow"),
            "/proc/self/mounts": read("/proc/self/mounts"),
            "/proc/1/cmdline": read("/proc/1/cmdline"),
            "list /": attempt(lambda: os.listdir("/")),
            "list /proc": attempt(lambda: os.listdir("/proc")),
            "list /sys": attempt(lambda: os.listdir("/sys")),
        }
"""

ESCAPE_HATCHES = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import fcntl, resource, termios

        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        return {
            "type into the terminal (TIOCSTI)": attempt(
                lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x")
            ),
            "raise RLIMIT_AS": attempt(lambda: resource.setrlimit(resource.RLIMIT_AS, unlimited)),
            "raise RLIMIT_NOFILE": attempt(
                lambda: resource.setrlimit(resource.RLIMIT_NOFILE, unlimited)
            ),
            "oom_score_adj": attempt(
                lambda: open("/proc/self/oom_score_adj", "w").write("-1000")
            ),
        }
"""

SOCKETS = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import socket

        def connect_unix(address):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(address)

        return {
            "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
            "raw icmp": attempt(
                lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            ),
            "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
            "inet6": attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)),
            "packet": attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
            "unix datagram": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)),
            "abstract unix connect": attempt(lambda: connect_unix("\\0plugport-attack")),
            "list interfaces": attempt(socket.if_nameindex),
        }
"""

DNS = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import socket

        try:
            socket.getaddrinfo("example.com", 80)
        except socket.gaierror as exc:
            return exc.errno
        return "resolved"
"""

FORK_BOMB = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        forks = 0
        try:
            while forks < 1000:
                if os.fork() == 0:
                    os._exit(0)
                forks += 1
        except OSError as exc:
            return [forks, errno.errorcode[exc.errno]]
        return [forks, "no error"]
"""

EPERM = "EPERM"
REFUSED_INSIDE = [
    pytest.param(
        SPAWN,
        {
            "os.system": 127 << 8,  # glibc: the shell could not be started, as if it exit(127)ed
            "posix.fork": EPERM,
            "posix_spawn": EPERM,
            "subprocess.Popen": EPERM,
        },
        id="spawn-through-object-subclasses",
    ),
    pytest.param(
        RAW_SYSCALLS,
        {
            **dict.fromkeys(
                [
                    "ptrace(TRACEME)",
                    "ptrace(ATTACH, zygote)",
                    "process_vm_readv(zygote)",
                    "unshare(NEWUSER)",
                    "unshare(NEWNS)",
                    "clone(NEWUSER)",
                    "setns",
                    "mount",
                    "chroot",
                    "bpf",
                    "io_uring_setup",
                    "keyctl",
                    "perf_event_open",
                    "init_module",
                    "kexec_load",
                    "reboot",
                    "settimeofday",
                ],
                EPERM,
            ),
            "clone3": "ENOSYS",  # so that glibc falls back to clone, whose flags BPF can read
        },
        id="ctypes-raw-syscalls",
    ),
    pytest.param(
        SYSTEM_FILES,
        {
            "/etc/passwd": HIDDEN,
            "/etc/shadow": HIDDEN,
            "/proc/self/mounts": HIDDEN,
            "/proc/1/cmdline": HIDDEN,
            "list /": "EACCES",  # the view's own root: Landlock grants no reading of it
            "list /proc": HIDDEN,
            "list /sys": HIDDEN,
        },
        id="system-files",
    ),
    pytest.param(
        ESCAPE_HATCHES,
        {
            "type into the terminal (TIOCSTI)": EPERM,
            "raise RLIMIT_AS": "ValueError",  # "not allowed to raise maximum limit"
            "raise RLIMIT_NOFILE": "ValueError",
            "oom_score_adj": HIDDEN,
        },
        id="escape-hatches",
    ),
    pytest.param(
        SOCKETS,
        {
            "udp": "EAFNOSUPPORT",
            "raw icmp": "EAFNOSUPPORT",
            "netlink": "EAFNOSUPPORT",
            "inet6": "EAFNOSUPPORT",
            "packet": "EAFNOSUPPORT",
            "unix datagram": EPERM,
            "abstract unix connect": EPERM,
            "list interfaces": "EAFNOSUPPORT",  # it needs a netlink socket
        },
        id="socket-families",
    ),
    pytest.param(DNS, socket.EAI_AGAIN, id="dns-lookup"),
    pytest.param(FORK_BOMB, [0, EPERM], id="fork-bomb"),
]


@pytest.mark.parametrize(("body", "expected"), REFUSED_INSIDE)
def test_refused_inside_the_worker(tmp_path: Path, body: str, expected: Any) -> None:
    attack = run_attack(tmp_path, body)
    assert attack.value() == expected
    assert attack.kinds == ["activate", "deactivate"]  # refused by the kernel, not by the host


# --- files ---------------------------------------------------------------------------------------

READ_TARGET = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        target = $target
        return {
            "read": attempt(lambda: open(target, "rb").read()),
            "list its directory": attempt(lambda: os.listdir(os.path.dirname(target))),
        }
"""


@pytest.mark.parametrize("target", ["etc-passwd", "ssh-key", "runtime-db"])
def test_host_files_cannot_be_read(tmp_path: Path, target: str) -> None:
    key = tmp_path / "home" / ".ssh" / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    path = {
        "etc-passwd": Path("/etc/passwd"),
        "ssh-key": key,
        "runtime-db": tmp_path / "state" / "runtime.sqlite",
    }[target]

    async def the_target_is_there(runtime: Supervisor) -> None:
        assert path.read_bytes()  # the host can read it: the refusal is the sandbox's

    attack = run_attack(
        tmp_path,
        Template(READ_TARGET).substitute(target=repr(str(path))),
        after=the_target_is_there,
    )
    value = attack.value()
    assert value["read"] == HIDDEN
    assert value["list its directory"] in (HIDDEN, "EACCES")  # a parent the view needs


def test_the_host_environment_does_not_reach_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGPORT_CANARY_SECRET", "canary-51f0")
    body = Template("""
import ctypes


def initial_stack():
    \"\"\"The strings the kernel put at the top of this process's first stack (argv, then the
    environment it was started with), read from argv[0] up to the top of the stack: memory
    of its own, which no sandbox layer hides from it.\"\"\"
    libc = ctypes.CDLL(None)
    address = ctypes.c_void_p.in_dll(libc, "program_invocation_name").value
    end = (address // 4096 + 1) * 4096
    read, write = os.pipe()
    seen = b""
    for _ in range(64):
        seen += ctypes.string_at(address, end - address)
        if libc.write(write, ctypes.c_void_p(end), 1) != 1:  # EFAULT: the stack's top
            break
        os.read(read, 1)
        address, end = end, end + 4096
    return seen


class Main(Plugin):
    @hook("attack")
    def attack(self):
        zygote = os.getppid()
        stack = initial_stack()
        return {
            "os.environ": dict(os.environ),
            "zygote": zygote,
            "its own environ": attempt(lambda: open("/proc/self/environ", "rb").read()),
            "zygote's environ": attempt(lambda: open(f"/proc/{zygote}/environ", "rb").read()),
            "host's environ": attempt(lambda: open("/proc/$host/environ", "rb").read()),
            "its first stack was read": b"python" in stack,
            # By name: the value must not be in the plugin's code, whose memory is searched.
            "its first stack holds the secret": b"PLUGPORT_CANARY_SECRET=" in stack,
        }
""").substitute(host=os.getpid())
    found: dict[str, list[str]] = {}

    async def no_process_of_the_runtime_holds_the_secret(runtime: Supervisor) -> None:
        [status] = runtime.status(EVIL)
        assert status.pid is not None
        zygote = parent_of(status.pid)
        assert b"PLUGPORT_CANARY_SECRET" not in Path(f"/proc/{zygote}/environ").read_bytes()
        found["worker"] = memory_holding(status.pid, b"canary-51f0")
        found["zygote"] = memory_holding(zygote, b"canary-51f0")

    attack = run_attack(tmp_path, body, after=no_process_of_the_runtime_holds_the_secret)
    value = attack.value()
    assert value["os.environ"] == scrubbed_environment(tmp_path / "state" / "data" / EVIL)
    assert value["zygote"] == 0  # outside the worker's PID namespace: not nameable
    assert {k: value[k] for k in ("its own environ", "zygote's environ", "host's environ")} == {
        "its own environ": HIDDEN,
        "zygote's environ": HIDDEN,
        "host's environ": HIDDEN,
    }
    assert value["its first stack was read"] is True  # the probe works: it read argv[0]
    assert value["its first stack holds the secret"] is False
    assert found == {"worker": [], "zygote": []}
    assert "canary-51f0" not in repr(value)


def memory_holding(pid: int, needle: bytes) -> list[str]:
    """The mappings of ``pid`` whose memory holds ``needle`` (read as root through /proc):
    what a plugin reading its whole process with ``ctypes`` could find."""
    holding = []
    with (
        open(f"/proc/{pid}/maps") as maps,
        open(f"/proc/{pid}/mem", "rb", buffering=0) as memory,
    ):
        for line in maps:
            fields = line.split()
            if "r" not in fields[1]:
                continue
            start, end = (int(part, 16) for part in fields[0].split("-"))
            try:
                memory.seek(start)
                data = memory.read(end - start)
            except OSError:  # [vvar] and the like: not memory a plugin could read either
                continue
            if needle in data:
                holding.append(fields[5] if len(fields) > 5 else "[anonymous]")
    return holding


def test_no_trace_function_of_the_host_runs_in_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zygote runs whatever tracer its interpreter was started with (coverage's, a
    debugger's): host code, which must not run inside a plugin's process, in any thread."""
    # The zygote's interpreter starts with a trace and a profile function, as one started
    # under a debugger or coverage's subprocess hook does.
    startup = tmp_path / "startup"
    startup.mkdir()
    (startup / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys, threading

            def host_tracer(frame, event, arg):
                return None

            sys.settrace(host_tracer)
            sys.setprofile(host_tracer)
            threading.settrace(host_tracer)
            threading.setprofile(host_tracer)
            """
        )
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(startup), os.environ.get("PYTHONPATH")]))
    )
    body = """
import sys
import threading

from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("attack")
    def attack(self):
        seen = {}
        thread = threading.Thread(target=lambda: seen.update(thread=repr(sys.gettrace())))
        thread.start()
        thread.join()
        return {"trace": repr(sys.gettrace()), "profile": repr(sys.getprofile()), **seen}
"""
    attack = run_attack(tmp_path, body)
    assert attack.value() == {"trace": "None", "profile": "None", "thread": "None"}


def test_another_plugins_data_is_out_of_reach(tmp_path: Path) -> None:
    victim = write_plugin(
        tmp_path,
        "acme.victim",
        """
class Main(Plugin):
    @hook("store")
    async def store(self):
        with open("notes.txt", "w") as notes:
            notes.write("victim secret")
        await self.api.storage.set("token", "victim token")
""",
        'permissions.storage = "1 KiB"\n[contributes]\nhooks = { store = 0 }\n',
    )
    body = """
from plugport.errors import PlugportError


class Main(Plugin):
    @hook("attack")
    async def attack(self):
        victim = os.path.join(os.path.dirname(os.getcwd()), "acme.victim")
        notes = os.path.join(victim, "notes.txt")
        storage = self.api.storage
        try:
            await storage._transport.call("storage", "get", ["token"], {"plugin": "acme.victim"})
            named = "read"
        except PlugportError as exc:
            named = f"{type(exc).__name__}: {exc}"
        return {
            "read": attempt(lambda: open(notes).read()),
            "list": attempt(lambda: os.listdir(victim)),
            "overwrite": attempt(lambda: open(notes, "w").write("pwned")),
            "plant": attempt(lambda: open(os.path.join(victim, "evil.py"), "w").write("x")),
            "delete": attempt(lambda: os.unlink(notes)),
            "same key in own storage": await storage.get("token"),
            "storage naming the victim": named,
        }
"""

    async def victim_stores(runtime: Supervisor) -> None:
        [stored] = await runtime.call_hook("store")
        assert stored.ok, stored.error

    attack = run_attack(
        tmp_path,
        body,
        'permissions.storage = "1 KiB"\n',
        before=victim_stores,
        others=[victim],
        hooks=(*HOOKS, HookSpec("store")),
    )
    value = attack.value()
    named = value.pop("storage naming the victim")
    assert value == {
        "read": HIDDEN,
        "list": HIDDEN,
        "overwrite": HIDDEN,
        "plant": HIDDEN,
        "delete": HIDDEN,
        "same key in own storage": None,  # keys live in the plugin's own namespace
    }
    assert named.startswith("InvalidInputError: storage.get(")
    assert named.endswith("got an unexpected keyword argument 'plugin'")
    victim_data = tmp_path / "state" / "data" / "acme.victim"
    assert data_file(victim_data, "notes.txt") == b"victim secret"
    assert attack.events("deny") == []  # malformed, not a denial: it never named a capability


def test_writes_outside_the_data_dir_are_refused(tmp_path: Path) -> None:
    code = tmp_path / "plugins" / EVIL
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    targets = {
        "own code": code / "main.py",
        "new file in own code dir": code / "evil.py",
        "/tmp": Path(f"/tmp/plugport-attack-{uuid.uuid4().hex}"),
        "the host's directory": tmp_path / "escaped.txt",
        "the state dir": tmp_path / "state" / "evil.txt",
    }
    through_symlink = tmp_path / "through-symlink.txt"
    body = Template("""
class Main(Plugin):
    @hook("attack")
    def attack(self):
        def append(path):
            return attempt(lambda: open(path, "a").write("pwned"))

        def through_symlink():
            os.symlink($through_symlink, "out")
            open("out", "w").write("pwned")

        results = {name: append(path) for name, path in $targets.items()}
        return results | {
            "through a symlink": attempt(through_symlink),
            "hard link own code in": attempt(lambda: os.link($main, "main.py")),
            "rename a host file in": attempt(lambda: os.rename($secret, "stolen")),
            "truncate a host file": attempt(lambda: os.truncate($secret, 0)),
            "delete a host file": attempt(lambda: os.unlink($secret)),
            "own data dir": append("mine.txt"),
        }
""").substitute(
        targets=repr({name: str(path) for name, path in targets.items()}),
        through_symlink=repr(str(through_symlink)),
        main=repr(str(code / "main.py")),
        secret=repr(str(secret)),
    )
    sources: list[str] = []

    async def read_own_code(runtime: Supervisor) -> None:
        sources.append((code / "main.py").read_text())

    attack = run_attack(tmp_path, body, before=read_own_code)
    value = attack.value()
    # The code is bound read-only (Landlock refuses first); other host paths are not in view
    # (parents the view needs exist, read-only).
    assert value.pop("own data dir") == "ok"
    assert value.pop("hard link own code in") in ("EXDEV", "EACCES")
    assert set(value.values()) <= {HIDDEN, "EACCES", "EROFS", "EXDEV"}, value
    assert (code / "main.py").read_text() == sources[0]
    for path in [*list(targets.values())[1:], through_symlink]:
        assert not path.exists(), path
    assert secret.read_text() == "host secret"
    assert data_file(tmp_path / "state" / "data" / EVIL, "mine.txt") == b"pwned"


def test_host_file_metadata_cannot_be_changed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    secret.chmod(0o600)
    os.utime(secret, (1_000_000, 1_000_000))
    database = tmp_path / "state" / "runtime.sqlite"
    body = Template("""
class Main(Plugin):
    @hook("attack")
    def attack(self):
        return {
            "chmod a host secret": attempt(lambda: os.chmod($secret, 0o666)),
            "chmod the host's database": attempt(lambda: os.chmod($database, 0o666)),
            "utime a host file": attempt(lambda: os.utime($secret, (0, 0))),
            "setxattr on a host file": attempt(lambda: os.setxattr($secret, "user.evil", b"1")),
        }
""").substitute(secret=repr(str(secret)), database=repr(str(database)))
    modes: list[int] = []

    async def database_mode(runtime: Supervisor) -> None:
        modes.append(stat.S_IMODE(database.stat().st_mode))

    attack = run_attack(tmp_path, body, before=database_mode, after=database_mode)
    assert "ok" not in attack.value().values()
    assert modes[1] == modes[0]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.stat().st_mtime == 1_000_000
    assert os.listxattr(secret) == []


def test_execve_leaves_the_worker_but_not_the_sandbox(tmp_path: Path) -> None:
    # execve stays allowed by design (seccomp.py): what it runs inherits every layer. Only the
    # interpreter's own tree is executable; the probe reports through its exit code.
    body = """
PROBE = '''
import os, socket, sys
code = 40
try:
    open("/etc/passwd")
except (PermissionError, FileNotFoundError):  # refused, or not in the view at all
    code += 1
try:
    os.fork()
except PermissionError:
    code += 2
try:
    socket.socket(socket.AF_INET)
except OSError:
    code += 4
sys.exit(code)
'''


class Main(Plugin):
    @hook("attack")
    def attack(self):
        import sys

        refused = {
            "/usr/bin/id": attempt(lambda: os.execv("/usr/bin/id", ["id"])),
            "/bin/sh": attempt(lambda: os.execv("/bin/sh", ["sh", "-c", "id"])),
        }
        if not set(refused.values()) <= {"EACCES", "ENOENT"}:
            return refused
        os.execv(sys.executable, [sys.executable, "-c", PROBE])
"""
    attack = run_attack(tmp_path, body)
    error = attack.error(PluginCrashedError)
    assert error.cause == "exited with code 47"  # 40 + every probe refused (1 + 2 + 4)
    assert attack.kinds == ["activate", "crash"]


# --- network -------------------------------------------------------------------------------------


def test_direct_connections_to_host_listeners_are_refused(tmp_path: Path) -> None:
    unix_path = tmp_path / "host.sock"
    with socket.create_server(("127.0.0.1", 0)) as tcp, socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(unix_path))
        unix.listen()
        body = Template("""
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import socket

        def connect_unix():
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect($unix_path)

        return {
            "tcp connect": attempt(lambda: socket.create_connection(("127.0.0.1", $port), 2)),
            "tcp socket": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
            "unix connect": attempt(connect_unix),
        }
""").substitute(port=tcp.getsockname()[1], unix_path=repr(str(unix_path)))
        attack = run_attack(tmp_path, body)
        assert attack.value() == {
            "tcp connect": "EAFNOSUPPORT",
            "tcp socket": "EAFNOSUPPORT",
            "unix connect": EPERM,  # seccomp refuses connect(): Landlock does not cover it
        }
        tcp.setblocking(False)
        unix.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()  # nothing ever connected
        with pytest.raises(BlockingIOError):
            unix.accept()


FETCH = """
class Main(Plugin):
    @hook("attack")
    async def attack(self):
        await self.api.net.fetch($call)  # the PermissionDeniedError propagates to the host
"""
GRANTS = 'permissions.network = ["allowed.example", "rebind.example"]\n'
NOT_AN_ADDRESS = "is an IP address; only granted host names may be fetched"
NOT_GRANTED = "is not in the plugin's network grants (allowed.example, rebind.example)"

SSRF = [
    pytest.param('"http://127.0.0.1/"', f"'127.0.0.1' {NOT_AN_ADDRESS}", [], id="loopback"),
    pytest.param('"http://localhost/"', f"localhost:80 {NOT_GRANTED}", [], id="localhost"),
    pytest.param('"http://[::1]/"', f"'::1' {NOT_AN_ADDRESS}", [], id="ipv6-loopback"),
    pytest.param(
        '"http://[::ffff:127.0.0.1]/"', f"'::ffff:127.0.0.1' {NOT_AN_ADDRESS}", [], id="v4-mapped"
    ),
    pytest.param('"http://2130706433/"', f"'2130706433' {NOT_AN_ADDRESS}", [], id="decimal"),
    pytest.param('"http://0x7f000001/"', f"'0x7f000001' {NOT_AN_ADDRESS}", [], id="hex"),
    pytest.param('"http://127.1/"', f"'127.1' {NOT_AN_ADDRESS}", [], id="short-form"),
    pytest.param('"http://0177.0.0.1/"', "not a valid URL (", [], id="octal"),
    pytest.param(
        '"http://169.254.169.254/latest/meta-data/"',
        f"'169.254.169.254' {NOT_AN_ADDRESS}",
        [],
        id="cloud-metadata",
    ),
    pytest.param(
        '"http://allowed.example/"',
        "allowed.example resolves to 127.0.0.1, which is loopback (127.0.0.0/8)",
        [("allowed.example", 80)],
        id="granted-name-resolving-to-loopback",
    ),
    pytest.param(
        '"http://rebind.example/"',
        "rebind.example resolves to 10.0.0.1, which is private (10.0.0.0/8)",
        [("rebind.example", 80)],
        id="granted-name-with-one-private-address",
    ),
    pytest.param(
        '"https://allowed.example@127.0.0.1/"',
        "URLs with user info ('user@host') are refused: they hide the host",
        [],
        id="userinfo",
    ),
    pytest.param(
        '"http://allowed.example:22/"', f"allowed.example:22 {NOT_GRANTED}", [], id="other-port"
    ),
    pytest.param(
        '"file:///etc/passwd"', "only http and https URLs may be fetched, not 'file'", [], id="file"
    ),
    pytest.param(
        '"http://allowed.example/", headers={"Host": "169.254.169.254"}',
        "header 'host' is set by the host and never by a plugin",
        [],
        id="host-header",
    ),
]


@pytest.mark.parametrize(("call", "reason", "lookups"), SSRF)
def test_ssrf_through_net_fetch_is_refused(
    tmp_path: Path, call: str, reason: str, lookups: list[tuple[str, int]]
) -> None:
    resolver = StaticResolver(
        {"allowed.example": ["127.0.0.1"], "rebind.example": ["93.184.216.34", "10.0.0.1"]}
    )
    attack = run_attack(
        tmp_path,
        Template(FETCH).substitute(call=call),
        GRANTS,
        net=NetOptions(resolver=resolver),
    )
    error = attack.error(PermissionDeniedError)
    assert error.capability == "net.fetch"
    assert reason in str(error)
    [denial] = attack.events("deny")
    assert denial.capability == "net.fetch"
    assert denial.reason.startswith(reason)
    assert resolver.calls == lookups  # literals and bad URLs are refused before any DNS
    assert attack.kinds == ["activate", "deny", "deactivate"]  # a refusal, not a failure


def test_fetch_without_a_network_grant_is_refused_by_the_broker(tmp_path: Path) -> None:
    resolver = StaticResolver({"example.com": ["93.184.216.34"]})
    attack = run_attack(
        tmp_path,
        Template(FETCH).substitute(call='"https://example.com/"'),
        net=NetOptions(resolver=resolver),
    )
    error = attack.error(PermissionDeniedError)
    assert error.capability == "net.fetch"
    assert "permissions.network grants no hosts" in str(error)
    [denial] = attack.events("deny")
    assert (denial.capability, denial.reason) == (
        "net.fetch",
        "permissions.network grants no hosts",
    )
    assert resolver.calls == []


def test_a_denial_raised_through_a_hook_keeps_its_reason(tmp_path: Path) -> None:
    attack = run_attack(tmp_path, Template(FETCH).substitute(call='"https://example.com/"'))
    error = attack.error(PermissionDeniedError)
    [denial] = attack.events("deny")
    assert error.reason == denial.reason
    assert str(error) == f"plugin '{EVIL}' may not use net.fetch: {denial.reason}; {error.fix}"
    assert 'add `network = ["example.com"]` under [permissions]' in error.fix


@dataclass
class Redirector:
    port: int
    requests: list[str]


@pytest.fixture
def redirector() -> Iterator[Redirector]:
    """An HTTP server on 127.0.0.1: ``/ok`` answers, anything else redirects to the cloud
    metadata address."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path == "/ok":
                self.send_response(200)
                self.send_header("content-length", "4")
                self.end_headers()
                self.wfile.write(b"fine")
                return
            self.send_response(302)
            self.send_header("location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Redirector(server.server_address[1], requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_redirect_to_a_forbidden_address_is_refused(
    tmp_path: Path, redirector: Redirector
) -> None:
    port = redirector.port
    body = Template("""
class Main(Plugin):
    @hook("attack")
    async def attack(self):
        allowed = await self.api.net.fetch("http://allowed.example:$port/ok")
        assert (allowed.status, allowed.body) == (200, b"fine"), allowed
        await self.api.net.fetch("http://allowed.example:$port/redirect")
""").substitute(port=port)
    attack = run_attack(
        tmp_path,
        body,
        f'permissions.network = ["allowed.example:{port}"]\n',
        net=NetOptions(resolver=StaticResolver({"allowed.example": ["127.0.0.1"]})),
        local_endpoints=(f"allowed.example:{port}",),  # only so the first hop can be served
    )
    error = attack.error(PermissionDeniedError)
    assert error.capability == "net.fetch"
    [denial] = attack.events("deny")
    assert (denial.capability, denial.reason) == (
        "net.fetch",
        f"'169.254.169.254' {NOT_AN_ADDRESS}",
    )
    assert redirector.requests == ["/ok", "/redirect"]  # the second hop was never requested


# --- resources -----------------------------------------------------------------------------------


def test_memory_bomb_is_stopped_and_the_plugin_restarts(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        if os.path.exists("bombed"):
            return ["running again", os.getpid()]
        open("bombed", "w").close()
        hog = bytearray()
        while True:
            hog.extend(bytes(8 * 1024 * 1024))
"""
    attack = run_attack(tmp_path, body, "[limits]\nmemory_mb = 96\n", calls=2)
    error = attack.error(ResourceLimitExceededError)
    assert error.limit == "memory_mb"
    assert "over its memory limit: memory_mb 96 MiB, peak " in str(error)
    assert "raise limits.memory_mb or use less" in str(error)
    again, pid = attack.value(1)
    assert (again, pid) == ("running again", 1)  # pid 1 of its own PID namespace
    assert attack.status.pid is not None
    assert attack.status.restarts == 1
    assert attack.kinds == ["activate", "kill", "restart", "deactivate"]


def test_one_file_cannot_outgrow_the_data_dir_limit(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        try:
            with open("big.bin", "wb") as big:
                big.write(b"\\1" * (3 * 1024 * 1024))
        except OSError as exc:
            return [errno.errorcode[exc.errno], os.path.getsize("big.bin")]
        return ["written", os.path.getsize("big.bin")]
"""
    attack = run_attack(tmp_path, body, max_data_dir_mb=2)
    refusal, size = attack.value()
    if VOLUMES:  # the volume is full before the file limit is reached
        assert refusal == "ENOSPC"
        assert size <= 2 * 1024 * 1024
    else:
        assert [refusal, size] == ["EFBIG", 2 * 1024 * 1024]  # CPython ignores SIGXFSZ
        big = tmp_path / "state" / "data" / EVIL / "big.bin"
        assert big.stat().st_size == 2 * 1024 * 1024
    assert attack.kinds == ["activate", "deactivate"]


def test_a_disk_fill_stops_at_the_quota_within_one_write(tmp_path: Path) -> None:
    """Many small files (each far under the file limit): the write that would pass the quota
    fails in the plugin, which keeps running; nothing past the quota reaches the disk."""
    if not VOLUMES:
        pytest.skip(f"no data volumes here ({volumes.unsupported_reason()}): see the next test")
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        written = 0
        for part in range(100_000):
            try:
                with open(f"f{part}.bin", "wb") as out:
                    out.write(b"\\1" * 16384)
                written += 16384
            except OSError as exc:
                return [errno.errorcode[exc.errno], written, part]
        return ["never refused", written, part]
"""
    attack = run_attack(tmp_path, body, calls=2, max_data_dir_mb=2)
    refusal, written, files = attack.value()
    assert refusal in ("ENOSPC", "EDQUOT")
    assert 1.5 * 1024 * 1024 < written <= 2 * 1024 * 1024  # stopped at the quota, not before
    again, _, _ = attack.value(1)  # the same worker: still running, still refused
    assert again in ("ENOSPC", "EDQUOT")
    assert attack.status.state == "active"
    assert attack.kinds == ["activate", "deactivate"]
    image = volumes.image_path(tmp_path / "state" / "data" / EVIL)
    assert image.stat().st_blocks * 512 <= 3 * 1024 * 1024  # the bytes on disk stay bounded
    assert files > 100


def test_inodes_are_limited_too(tmp_path: Path) -> None:
    if not VOLUMES:
        pytest.skip(f"no data volumes here ({volumes.unsupported_reason()})")
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        for part in range(100_000):
            try:
                open(f"e{part}", "w").close()
            except OSError as exc:
                return [errno.errorcode[exc.errno], part]
        return ["never refused", part]
"""
    attack = run_attack(tmp_path, body, max_data_dir_mb=64, max_data_dir_inodes=256)
    refusal, made = attack.value()
    assert refusal in ("ENOSPC", "EDQUOT")
    assert made < 256
    assert attack.status.state == "active"


def test_many_files_over_the_data_dir_limit_stop_the_plugin(tmp_path: Path) -> None:
    """The fallback where the host makes no volumes (not root, or data_volumes off):
    measured, and the plugin stopped."""
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        for part in range(3):  # each under the 2 MiB file limit, together over the dir limit
            with open(f"part{part}.bin", "wb") as out:
                out.write(b"\\1" * (3 * 512 * 1024))
        return sorted(os.listdir("."))
"""
    over = "its data directory holds 4718592 bytes, over the 2097152 byte limit"
    refused: list[PlugportError | None] = []

    async def ping_and_retry(runtime: Supervisor) -> None:
        await runtime.ping_all()
        [status] = runtime.status(EVIL)
        assert (status.state, status.pid) == ("backoff", None)
        assert status.last_error is not None
        assert over in status.last_error
        [outcome] = await runtime.call_hook("attack")  # refused before a worker starts
        refused.append(outcome.error)

    attack = run_attack(tmp_path, body, after=ping_and_retry, max_data_dir_mb=2, data_volumes=False)
    assert attack.value() == ["part0.bin", "part1.bin", "part2.bin", "tmp"]
    [error] = refused
    assert isinstance(error, ResourceLimitExceededError)
    assert error.limit == "data_dir_bytes"
    assert over in str(error)
    assert attack.kinds == ["activate", "kill", "kill"]
    assert all(over in event.reason for event in attack.events("kill"))


def test_fd_exhaustion_stays_inside_the_worker(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    def initialize(self):
        self.held = []

    @hook("attack")
    def attack(self):
        opened = 0
        try:
            while True:
                self.held.append(os.open(".", os.O_RDONLY))
                opened += 1
        except OSError as exc:
            return [opened, len(self.held), errno.errorcode[exc.errno]]
"""
    attack = run_attack(tmp_path, body, calls=2)
    opened, held, error = attack.value()
    assert error == "EMFILE"
    assert 0 < opened == held < 64  # RLIMIT_NOFILE
    assert attack.value(1) == [0, held, "EMFILE"]  # it still answers while holding every fd
    assert attack.kinds == ["activate", "deactivate"]


def test_thread_bomb_fails_inside_the_worker(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import threading

        stop = threading.Event()
        started = []
        failure = "none"
        try:
            while len(started) < 10_000:
                thread = threading.Thread(target=stop.wait)
                thread.start()
                started.append(thread)
        except (RuntimeError, MemoryError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        stop.set()
        for thread in started:
            thread.join()
        return [len(started), failure]
"""
    attack = run_attack(tmp_path, body, calls=2)
    started, failure = attack.value()
    # Each thread's 8 MiB stack against RLIMIT_AS stops it (RLIMIT_NPROC, 32, is above that).
    # At that wall, whichever allocation comes first fails: the next stack's mmap (Python
    # says it cannot start the thread) or a small object of Python's own (MemoryError); which
    # one depends on how much the worker had mapped before, not on the limit.
    wall = ("RuntimeError: can't start new thread", "MemoryError: ")
    assert failure in wall
    assert 0 < started <= 128 // 8
    # The same worker, fine afterwards: it starts threads again up to the same wall (give or
    # take one stack, as the first call's memory is handed back).
    again, again_failure = attack.value(1)
    assert again_failure in wall
    assert abs(again - started) <= 1
    assert attack.kinds == ["activate", "deactivate"]


SLOW = [  # handlers, indented to sit under @hook("attack")
    pytest.param("def attack(self):\n        return pow(10, 10**8)", id="cpu-in-c"),
    pytest.param("def attack(self):\n        time.sleep(3600)", id="sleep"),
    pytest.param("async def attack(self):\n        await asyncio.sleep(3600)", id="async-sleep"),
    pytest.param("async def attack(self):\n        while True: pass", id="blocked-loop"),
]


@pytest.mark.parametrize("handler", SLOW)
def test_a_call_over_timeout_ms_is_killed(tmp_path: Path, handler: str) -> None:
    body = f'class Main(Plugin):\n    @hook("attack")\n    {handler}\n'
    attack = run_attack(tmp_path, body, "[limits]\ntimeout_ms = 300\n")
    error = attack.error(ResourceLimitExceededError)
    assert error.limit == "timeout_ms"
    assert "hook 'attack' ran over 300 ms" in str(error)
    assert attack.outcomes[0].elapsed_ms < 5000
    assert attack.status.state == "backoff"
    assert attack.kinds == ["activate", "kill"]


def test_cpu_seconds_stops_a_computation_in_c(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        return pow(10, 10**8) % 7
"""
    attack = run_attack(
        tmp_path, body, "[limits]\ncpu_seconds = 1\ntimeout_ms = 30000\nmemory_mb = 512\n"
    )
    error = attack.error(ResourceLimitExceededError)
    assert error.limit == "cpu_seconds"  # SIGXCPU at the soft limit, well before timeout_ms
    assert "CPU time limit reached" in str(error)
    # pid 1 of a PID namespace ignores SIGXCPU: the hard limit's SIGKILL comes a CPU second
    # later, and the zygote names it by the CPU time it reaps; still well before timeout_ms.
    assert attack.outcomes[0].elapsed_ms < 20_000
    assert attack.kinds == ["activate", "kill"]


# --- other processes -----------------------------------------------------------------------------


def test_the_zygote_and_the_host_cannot_be_signalled_or_traced(tmp_path: Path) -> None:
    """Even told the host's and the zygote's pids (which it cannot learn: they are outside its
    PID namespace), the plugin can signal or trace neither."""
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import json, signal

        here = os.path.dirname(__file__)
        with open(os.path.join(here, "targets.json")) as targets:
            zygote, host = json.load(targets)
        return {
            "getppid": os.getppid(),
            "kill(zygote)": attempt(lambda: os.kill(zygote, signal.SIGKILL)),
            "kill(host)": attempt(lambda: os.kill(host, signal.SIGKILL)),
            "kill(-1)": attempt(lambda: os.kill(-1, signal.SIGKILL)),
            "killpg(0)": attempt(lambda: os.killpg(0, signal.SIGKILL)),
            "pidfd_open(zygote)": attempt(lambda: os.pidfd_open(zygote)),
            "tkill(zygote)": attempt(syscall("tkill", zygote, signal.SIGKILL)),
            "tgkill(zygote)": attempt(syscall("tgkill", zygote, zygote, signal.SIGKILL)),
            "ptrace(ATTACH, zygote)": attempt(syscall("ptrace", 16, zygote, 0, 0)),
            "ptrace(SEIZE, host)": attempt(syscall("ptrace", 0x4206, host, 0, 0)),
        }
"""
    zygotes: list[int] = []

    async def tell_the_pids(runtime: Supervisor) -> None:
        await runtime.activate(GOOD)
        zygote = getattr(runtime.launcher, "pid", None)
        assert zygote is not None
        zygotes.append(zygote)
        targets = tmp_path / "plugins" / EVIL / "targets.json"
        targets.write_text(json.dumps([zygote, os.getpid()]))

    async def the_zygote_lives(runtime: Supervisor) -> None:
        [status] = runtime.status(EVIL)
        assert status.pid is not None
        assert parent_of(status.pid) == zygotes[0]
        os.kill(zygotes[0], 0)  # raises if the zygote were gone

    attack = run_attack(tmp_path, body, before=tell_the_pids, after=the_zygote_lives)
    value = attack.value()
    assert value.pop("getppid") == 0
    refusals = set(value.values())
    assert refusals <= {EPERM, "ESRCH", "ENOSYS"}, value
    assert attack.kinds == ["activate", "deactivate"]


# --- other processes and other files: the syscall inventory, class by class ---------------------
#
# One hostile plugin per class of the inventory (syscall_policy.py) aims every call of the class at
# the host (this test process), the zygote and a sibling plugin's worker, and at itself as a
# control: the same call must work on the worker itself, so a refusal of the others is the
# filter's and not a malformed argument's. Each target is then read from outside (limits, nice,
# affinity, scheduler, I/O priority, group, files) and must be unchanged, and must still serve.

SIBLING = "acme.sibling"
REFUSALS = {"EPERM", "ENOSYS", "ESRCH"}  # ESRCH: with a PID namespace, no other pid exists
PROBE_HOOKS = (HookSpec("probe", args=("targets", "paths")), HookSpec("ping"), HookSpec("sibling"))

# Prepended to each class's probes: `raw` returns what the call returned, `probes(pid)` (each
# class defines it) maps a probe name to a call aimed at `pid`, and `anywhere()` maps a probe name
# to a call that names no single process (a process group, every process of the uid, a path).
PROBE_PRELUDE = """
import ctypes, resource, signal, struct

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
TABLE = __import__("plugport.runtime.sandbox.seccomp", fromlist=["ARCHES"]).ARCHES[
    os.uname().machine
].syscalls
AT_FDCWD = -100


def raw(name, *args):
    if name not in TABLE:
        raise NotImplementedError(name)
    result = libc.syscall(TABLE[name], *(ctypes.c_long(a) for a in args))
    if result < 0:
        raise OSError(ctypes.get_errno(), name)
    return result


KEEP = []  # the buffers raw calls point into live as long as the worker


def buffer(size=256, data=b""):
    buf = ctypes.create_string_buffer(data, size)
    KEEP.append(buf)
    return buf, ctypes.addressof(buf)


def anywhere(paths):
    return {}


class Main(Plugin):
    @hook("probe")
    def probe(self, targets, paths):
        results = {}
        for target, pid in {**targets, "itself": os.getpid()}.items():
            for name, call in probes(pid).items():
                results[f"{name}({target})"] = attempt(call)
        for name, call in anywhere(paths).items():
            results[name] = attempt(call)
        return results
"""

SIBLING_BODY = """
class Main(Plugin):
    @hook("sibling")
    def sibling(self):
        with open("notes.txt", "a") as notes:
            notes.write("x")
        return sorted(os.listdir("."))
"""

SIGNAL_PROBES = """
def probes(pid):
    info, info_at = buffer(128, struct.pack("iii", 0, 0, -1))  # si_code SI_QUEUE, as sigqueue()

    def pidfd_send_signal():
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = os.pidfd_open(os.getpid())  # its own: the signal is refused all the same
        raw("pidfd_send_signal", pidfd, 0, 0, 0)

    return {
        "kill": lambda: os.kill(pid, 0),
        "tgkill": lambda: raw("tgkill", pid, pid, 0),
        "rt_sigqueueinfo": lambda: raw("rt_sigqueueinfo", pid, 0, info_at),
        "rt_tgsigqueueinfo": lambda: raw("rt_tgsigqueueinfo", pid, pid, 0, info_at),
        "pidfd_open": lambda: os.close(os.pidfd_open(pid)),
        "tkill": lambda: raw("tkill", pid, 0),
        "pidfd_send_signal": pidfd_send_signal,
    }


def anywhere(paths):
    return {
        "kill(0), its process group": lambda: os.kill(0, 0),
        "kill(-1), every process": lambda: os.kill(-1, 0),
        "kill(-host), the host's group": lambda: os.kill(-paths["host_pgid"], 0),
    }
"""

LIMIT_PROBES = """
def probes(pid):
    return {
        "prlimit64 read": lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE),
        "prlimit64 write": lambda: resource.prlimit(pid, resource.RLIMIT_MSGQUEUE, (0, 0)),
    }
"""

SCHEDULING_PROBES = """
SCHED_BATCH, IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 3, 1, 2, 3
IDLE_IO = 3 << 13  # IOPRIO_CLASS_IDLE


def probes(pid):
    attr, attr_at = buffer(56, struct.pack("IIQiI", 56, SCHED_BATCH, 0, 19, 0))
    cpu = min(os.sched_getaffinity(0))
    return {
        "setpriority": lambda: os.setpriority(os.PRIO_PROCESS, pid, 19),
        "getpriority": lambda: os.getpriority(os.PRIO_PROCESS, pid),
        "sched_setaffinity": lambda: os.sched_setaffinity(pid, {cpu}),
        "sched_getaffinity": lambda: os.sched_getaffinity(pid),
        "sched_setscheduler": lambda: os.sched_setscheduler(pid, SCHED_BATCH, os.sched_param(0)),
        "sched_getscheduler": lambda: os.sched_getscheduler(pid),
        "sched_setparam": lambda: os.sched_setparam(pid, os.sched_param(0)),
        "sched_getparam": lambda: os.sched_getparam(pid),
        "sched_rr_get_interval": lambda: os.sched_rr_get_interval(pid),
        "sched_setattr": lambda: raw("sched_setattr", pid, attr_at, 0),
        "sched_getattr": lambda: raw("sched_getattr", pid, attr_at, 56, 0),
        "ioprio_set": lambda: raw("ioprio_set", IOPRIO_WHO_PROCESS, pid, IDLE_IO),
        "ioprio_get": lambda: raw("ioprio_get", IOPRIO_WHO_PROCESS, pid),
    }


def anywhere(paths):
    return {
        "setpriority(PRIO_PGRP, 0)": lambda: os.setpriority(os.PRIO_PGRP, 0, 19),
        "setpriority(PRIO_PGRP, host)": lambda: os.setpriority(
            os.PRIO_PGRP, paths["host_pgid"], 19
        ),
        "setpriority(PRIO_USER, 0)": lambda: os.setpriority(os.PRIO_USER, 0, 19),
        "getpriority(PRIO_USER, 0)": lambda: os.getpriority(os.PRIO_USER, 0),
        "ioprio_set(WHO_PGRP, 0)": lambda: raw("ioprio_set", IOPRIO_WHO_PGRP, 0, IDLE_IO),
        "ioprio_set(WHO_USER, 0)": lambda: raw("ioprio_set", IOPRIO_WHO_USER, 0, IDLE_IO),
    }
"""

MEMORY_PROBES = """
def probes(pid):
    data, data_at = buffer(64, b"probe")
    iov, iov_at = buffer(16, struct.pack("QQ", data_at, 64))  # this worker's own buffer
    far, far_at = buffer(16, struct.pack("QQ", 0x10000, 64))  # mapped nowhere: never written
    nodes, nodes_at = buffer(8, struct.pack("Q", 1))  # NUMA node 0
    head, head_at = buffer(16)
    attr, attr_at = buffer(128, struct.pack("IIQ", 0, 128, 0))  # PERF_TYPE_HARDWARE, cycles
    pidfd = os.pidfd_open(os.getpid())
    return {
        "process_vm_readv": lambda: raw("process_vm_readv", pid, iov_at, 1, iov_at, 1, 0),
        "process_vm_writev": lambda: raw("process_vm_writev", pid, iov_at, 1, far_at, 1, 0),
        "move_pages": lambda: raw("move_pages", pid, 0, 0, 0, 0, 0),
        "migrate_pages": lambda: raw("migrate_pages", pid, 64, nodes_at, nodes_at),
        "get_robust_list": lambda: raw("get_robust_list", pid, head_at, head_at + 8),
        "kcmp": lambda: raw("kcmp", os.getpid(), pid, 0, 0, 0),  # KCMP_FILE 0 vs 0
        "ptrace(ATTACH)": lambda: raw("ptrace", 16, pid, 0, 0),
        "ptrace(SEIZE)": lambda: raw("ptrace", 0x4206, pid, 0, 0),
        "perf_event_open": lambda: raw("perf_event_open", attr_at, pid, -1, -1, 0),
        "process_madvise": lambda: raw("process_madvise", pidfd, iov_at, 1, 20, 0),  # COLD
        "process_mrelease": lambda: raw("process_mrelease", pidfd, 0),
        "pidfd_getfd": lambda: raw("pidfd_getfd", pidfd, 0, 0),
    }
"""

IDENTITY_PROBES = """
def probes(pid):
    header, header_at = buffer(8, struct.pack("Ii", 0x20080522, pid))  # _LINUX_CAPABILITY_V3
    caps, caps_at = buffer(24)
    return {
        "getpgid": lambda: os.getpgid(pid),
        "getsid": lambda: os.getsid(pid),
        "setpgid": lambda: os.setpgid(pid, pid),
        "capget": lambda: raw("capget", header_at, caps_at),
        "capset": lambda: raw("capset", header_at, caps_at),
        "setns(pidfd)": lambda: raw("setns", os.pidfd_open(os.getpid()), 0x40000000),
        "wait4": lambda: os.waitpid(pid, os.WNOHANG),
        "waitid": lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG),
    }


def anywhere(paths):
    name, name_at = buffer(16, b"/plugport-probe")
    return {
        "setsid": os.setsid,
        "setuid(0)": lambda: os.setuid(0),
        "setresuid": lambda: os.setresuid(0, 0, 0),
        "setgroups": lambda: os.setgroups([]),
        "unshare(NEWUSER)": lambda: raw("unshare", 0x10000000),
        "shmget": lambda: raw("shmget", 0, 4096, 0o1600),  # IPC_PRIVATE, IPC_CREAT | 0600
        "semget": lambda: raw("semget", 0, 1, 0o1600),
        "msgget": lambda: raw("msgget", 0, 0o1600),
        "mq_open": lambda: raw("mq_open", name_at, 0o100 | 2, 0o600, 0),  # O_CREAT | O_RDWR
    }
"""

FILE_PROBES = """
def probes(pid):
    return {}


def observe(path):
    path_buf, path_at = buffer(4096, path.encode())
    handle, handle_at = buffer(136, struct.pack("Ii", 128, 0))  # struct file_handle
    mount_id, mount_id_at = buffer(8)
    fsx, fsx_at = buffer(64)
    return {
        "inotify_add_watch": lambda: raw("inotify_add_watch", -1, path_at, 0x100),  # IN_CREATE
        "fanotify_mark": lambda: raw("fanotify_mark", -1, 1, 0x100, AT_FDCWD, path_at),
        "name_to_handle_at": lambda: raw(
            "name_to_handle_at", AT_FDCWD, path_at, handle_at, mount_id_at, 0
        ),
        "statfs": lambda: os.statvfs(path),
        "getxattr": lambda: os.getxattr(path, "user.probe"),
        "listxattr": lambda: os.listxattr(path),
        "file_getattr": lambda: raw("file_getattr", AT_FDCWD, path_at, fsx_at, 24, 0),
    }


def anywhere(paths):
    request, request_at = buffer(24, struct.pack("IIQQ", 24, 0, 0xFFFFFFFFFFFFFFFF, 0))
    ids, ids_at = buffer(8 * 64)
    handle, handle_at = buffer(136, struct.pack("Ii", 8, 1) + bytes(8))
    calls = {
        "inotify_init1": lambda: raw("inotify_init1", 0),
        "fanotify_init": lambda: raw("fanotify_init", 0x200, 0),  # FAN_REPORT_FID
        "open_by_handle_at": lambda: raw("open_by_handle_at", os.open(".", 0), handle_at, 0),
        "listmount": lambda: raw("listmount", request_at, ids_at, 64, 0),
        "statmount": lambda: raw("statmount", request_at, ids_at, 8 * 64, 0),
        "quotactl_fd": lambda: raw("quotactl_fd", os.open(".", 0), 0x800004 << 8, 0, 0),  # GETFMT
        "lookup_dcookie": lambda: raw("lookup_dcookie", 0, 0, 0),
    }
    if "sysfs" in TABLE:  # x86_64 only, as ustat
        calls["sysfs"] = lambda: raw("sysfs", 3)  # the number of filesystem types
        calls["ustat"] = lambda: raw("ustat", os.stat(".").st_dev, ids_at)
    for target, path in paths["watch"].items():
        calls |= {f"{name}({target})": call for name, call in observe(path).items()}
    return calls
"""


def _ioprio(pid: int) -> int:
    import ctypes

    from plugport.runtime.sandbox.seccomp import ARCHES

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = ARCHES[platform.machine()].syscalls["ioprio_get"]
    return int(libc.syscall(number, ctypes.c_long(1), ctypes.c_long(pid)))  # WHO_PROCESS


def outside_view(pid: int) -> dict[str, Any]:
    """What an attack on ``pid`` could have changed, read by the host. Limits come from
    /proc/PID/limits: prlimit() on a process of another uid (a sibling worker runs as its own)
    needs CAP_SYS_RESOURCE, which a root host need not hold."""
    return {
        "limits": Path(f"/proc/{pid}/limits").read_text(),
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "affinity": os.sched_getaffinity(pid),
        "scheduler": os.sched_getscheduler(pid),
        "priority": os.sched_getparam(pid).sched_priority,
        "ioprio": _ioprio(pid),
        "group": (os.getpgid(pid), os.getsid(pid)),
        "state": Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0],
    }


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mode)
        for path in sorted(directory.rglob("*"))
    }


@dataclass
class Probed:
    """What the hostile plugin saw, and what the host saw of each target before and after."""

    results: dict[str, str]
    before: dict[str, Any]
    after: dict[str, Any]

    def of(self, target: str) -> dict[str, str]:
        suffix = f"({target})"
        return {k[: -len(suffix)]: v for k, v in self.results.items() if k.endswith(suffix)}


def probe_everyone(root: Path, probes: str) -> Probed:
    """Run one class of probes against the host, the zygote and a sibling worker under a real
    supervisor; check that the sibling and a new activation are served afterwards."""
    sibling = write_plugin(root, SIBLING, SIBLING_BODY, "[contributes]\nhooks = { sibling = 0 }\n")
    body = PROBE_PRELUDE + textwrap.dedent(probes)
    evil = write_plugin(root, EVIL, PRELUDE + body, "[contributes]\nhooks = { probe = 0 }\n")
    state = root / "state"
    results: dict[str, str] = {}
    seen: dict[str, dict[str, Any]] = {}

    def view(targets: dict[str, int]) -> dict[str, Any]:
        return {
            **{name: outside_view(pid) for name, pid in targets.items()},
            "host group nice": os.getpriority(os.PRIO_PGRP, os.getpgid(0)),
            "sibling files": files_of(state / "data" / SIBLING),
            "state files": files_of(state),
        }

    async def scenario(runtime: Supervisor) -> None:
        [first] = await runtime.call_hook("sibling")
        assert first.ok, first.error
        [status] = runtime.status(SIBLING)
        assert isinstance(runtime.launcher, ZygoteLauncher)
        assert status.pid is not None
        assert runtime.launcher.pid is not None
        targets = {"host": os.getpid(), "zygote": runtime.launcher.pid, "sibling": status.pid}
        paths = {
            "host_pgid": os.getpgid(0),
            "watch": {
                "sibling's data": str(state / "data" / SIBLING),
                "sibling's notes": str(state / "data" / SIBLING / "notes.txt"),
                "host's state": str(state),
                "host's database": str(state / "runtime.sqlite"),
            },
        }
        # Activate the prober first, so its start-up is not mistaken for a change it made.
        [warm_up] = await runtime.call_hook("probe", targets={}, paths={**paths, "watch": {}})
        assert warm_up.ok, warm_up.error
        seen["before"] = view(targets)
        [probed] = await runtime.call_hook("probe", targets=targets, paths=paths)
        assert probed.ok, probed.error
        results.update(probed.value)
        seen["after"] = view(targets)
        [again] = await runtime.call_hook("sibling")  # the sibling still serves, same worker
        assert (again.ok, again.value) == (True, first.value), again.error
        assert "notes.txt" in again.value
        [still] = runtime.status(SIBLING)
        assert (still.pid, still.restarts) == (status.pid, 0)
        await good_is_served(runtime)  # a new activation still works: the zygote serves

    supervise(root, [evil, sibling, good(root)], scenario, hooks=PROBE_HOOKS)
    return Probed(results, seen["before"], seen["after"])


def assert_refused_everywhere_else(probed: Probed, on_itself: dict[str, str]) -> None:
    """Every probe was refused for the host, the zygote and the sibling; on the worker itself
    it came out as ``on_itself`` says; the host saw no change in any target."""
    assert probed.of("itself") == on_itself
    for target in ("host", "zygote", "sibling"):
        seen = probed.of(target)
        assert set(seen) == set(on_itself), target
        wrong = {name: e for name, e in seen.items() if e not in REFUSALS}
        assert not wrong, f"{target}: not refused: {wrong}"
    assert probed.after == probed.before


OK = "ok"


def test_signals_reach_no_other_process(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, SIGNAL_PROBES)
    assert_refused_everywhere_else(
        probed,
        {
            **dict.fromkeys(["kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"], OK),
            "pidfd_open": OK,
            "tkill": EPERM,  # a bare thread id: tgkill does the same for its own threads
            "pidfd_send_signal": EPERM,
        },
    )
    anywhere = {k: v for k, v in probed.results.items() if "), " in k}
    assert anywhere == dict.fromkeys(
        ["kill(0), its process group", "kill(-1), every process", "kill(-host), the host's group"],
        EPERM,
    )


def test_no_other_process_limits_can_be_read_or_changed(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, LIMIT_PROBES)
    assert_refused_everywhere_else(probed, {"prlimit64 read": OK, "prlimit64 write": OK})


def test_no_other_process_priority_affinity_or_scheduler_can_be_touched(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, SCHEDULING_PROBES)
    calls = [
        "setpriority", "getpriority", "sched_setaffinity", "sched_getaffinity",
        "sched_setscheduler", "sched_getscheduler", "sched_setparam", "sched_getparam",
        "sched_rr_get_interval", "sched_setattr", "sched_getattr", "ioprio_set", "ioprio_get",
    ]  # fmt: skip
    assert_refused_everywhere_else(probed, dict.fromkeys(calls, OK))
    assert {k: v for k, v in probed.results.items() if ", " in k} == dict.fromkeys(
        [
            "setpriority(PRIO_PGRP, 0)", "setpriority(PRIO_PGRP, host)",
            "setpriority(PRIO_USER, 0)", "getpriority(PRIO_USER, 0)",
            "ioprio_set(WHO_PGRP, 0)", "ioprio_set(WHO_USER, 0)",
        ],
        EPERM,
    )  # fmt: skip


def test_no_other_process_memory_can_be_reached(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, MEMORY_PROBES)
    refused = [
        "process_vm_readv", "process_vm_writev", "kcmp", "ptrace(ATTACH)", "ptrace(SEIZE)",
        "perf_event_open", "process_madvise", "process_mrelease", "pidfd_getfd",
    ]  # fmt: skip
    assert_refused_everywhere_else(
        probed,
        {
            **dict.fromkeys(["move_pages", "migrate_pages", "get_robust_list"], OK),
            **dict.fromkeys(refused, EPERM),
        },
    )


def test_no_other_process_group_session_or_capabilities_can_be_touched(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, IDENTITY_PROBES)
    # wait4/waitid stay allowed: the kernel refuses them for anything but the caller's children
    # (it has none); the filter refuses the rest, even on itself.
    itself = {"getpgid": OK, "getsid": OK, "wait4": "ECHILD", "waitid": "ECHILD"}
    itself |= dict.fromkeys(["setpgid", "capget", "capset", "setns(pidfd)"], EPERM)
    assert probed.of("itself") == itself
    for target in ("host", "zygote", "sibling"):
        seen = probed.of(target)
        assert {k: seen[k] for k in ("wait4", "waitid")} == {"wait4": "ECHILD", "waitid": "ECHILD"}
        assert {v for k, v in seen.items() if not k.startswith("wait")} <= REFUSALS, seen
    assert probed.after == probed.before
    shared = ["setsid", "setuid(0)", "setresuid", "setgroups", "unshare(NEWUSER)"]
    shared += ["shmget", "semget", "msgget", "mq_open"]
    assert {k: probed.results[k] for k in shared} == dict.fromkeys(shared, EPERM)


def test_no_file_outside_can_be_watched_or_observed(tmp_path: Path) -> None:
    probed = probe_everyone(tmp_path, FILE_PROBES)
    assert probed.after == probed.before
    observations = {k: v for k, v in probed.results.items() if "(" in k}
    assert len(observations) == 4 * 7
    assert set(observations.values()) == {EPERM}, observations
    rest = {k: v for k, v in probed.results.items() if "(" not in k}
    expected = dict.fromkeys(
        ["inotify_init1", "fanotify_init", "open_by_handle_at", "listmount", "statmount"], EPERM
    )
    expected |= {"quotactl_fd": EPERM, "lookup_dcookie": "ENOSYS"}  # removed from 6.10 kernels
    if platform.machine() == "x86_64":
        expected |= {"sysfs": EPERM, "ustat": EPERM}
    assert rest == expected


# --- the channel ---------------------------------------------------------------------------------


def test_an_oversized_result_is_refused_and_the_worker_stays(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    def initialize(self):
        self.calls = 0

    @hook("attack")
    def attack(self):
        self.calls += 1
        if self.calls == 1:
            return "x" * (5 * 1024 * 1024)
        return [self.calls, os.getpid()]
"""
    attack = run_attack(tmp_path, body, calls=2)
    error = attack.error(ResourceLimitExceededError)
    assert error.limit == "max_frame_bytes"
    assert "over the 4194304 byte limit" in str(error)
    assert attack.value(1) == [2, 1]  # the same worker answered (its second call)
    assert attack.kinds == ["activate", "limit", "deactivate"]


FLOOD_AT_ONCE = """
class Main(Plugin):
    @hook("attack")
    async def attack(self):
        calls = (self.api.storage.get("k") for _ in range(5000))
        results = await asyncio.gather(*calls, return_exceptions=True)
        refusals = sorted({f"{type(r).__name__}: {r}" for r in results if isinstance(r, Exception)})
        return [sum(not isinstance(r, Exception) for r in results), refusals]
"""


def test_a_flood_of_capability_calls_is_capped(tmp_path: Path) -> None:
    async def good_answers_during_the_flood(runtime: Supervisor) -> None:
        await asyncio.sleep(0.05)
        await good_is_served(runtime)

    attack = run_attack(
        tmp_path,
        FLOOD_AT_ONCE,
        'permissions.storage = "1 KiB"\n',
        during=good_answers_during_the_flood,
    )
    served, refusals = attack.value()
    assert 0 < served < 5000
    assert (
        "ResourceLimitExceededError: plugin 'acme.evil' exceeded concurrent_capability_calls: "
        "more than 32 capability calls at once"
    ) in refusals
    assert set(refusals) <= {
        f"ResourceLimitExceededError: plugin '{EVIL}' exceeded concurrent_capability_calls: "
        "more than 32 capability calls at once",
        f"ResourceLimitExceededError: plugin '{EVIL}' exceeded capability_calls_per_second: "
        "more than 500 calls per second (burst 1000)",
    }
    assert attack.status.state == "active"


def test_the_concurrency_cap_is_a_limit_like_the_others(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    async def attack(self):
        calls = (self.api.storage.get("k") for _ in range(5000))
        results = await asyncio.gather(*calls, return_exceptions=True)
        return sorted({str(getattr(r, "limit", None)) for r in results if isinstance(r, Exception)})
"""
    attack = run_attack(tmp_path, body, 'permissions.storage = "1 KiB"\n')
    assert "None" not in attack.value()
    limits = attack.events("limit")
    assert {e.capability for e in limits} == {"storage.get"}
    # Audited at most once a second (a loaded machine can stretch the attack past one second).
    times = sorted(e.at for e in limits)
    assert all(later - earlier >= 1.0 for earlier, later in pairwise(times))


def test_a_sustained_flood_hits_the_rate_limit_audited_once(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    async def attack(self):
        served, refusals = 0, set()
        for _ in range(120):  # 25 at a time: under the in-flight cap, over the rate
            batch = (self.api.storage.get("k") for _ in range(25))
            for result in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(result, Exception):
                    refusals.add(f"{type(result).__name__} {result.limit}")
                else:
                    served += 1
        return [served, sorted(refusals)]
"""
    attack = run_attack(
        tmp_path, body, 'permissions.storage = "1 KiB"\n', capability_calls_per_s=50.0
    )
    served, refusals = attack.value()
    assert 1000 <= served < 3000  # the burst, then 50 a second
    assert refusals == ["ResourceLimitExceededError capability_calls_per_second"]
    [limit] = attack.events("limit")
    assert (limit.capability, limit.reason) == (
        "storage.get",
        "capability calls over the rate limit",
    )
    assert attack.status.state == "active"


FORGE = """
import msgspec, socket, struct


def frame(message):
    body = msgspec.msgpack.encode(message)
    return struct.pack("!I", len(body)) + body


class Main(Plugin):
    @hook("attack")
    def attack(self):
        data = $data
        # The attacker does not know which descriptor is the channel, so it tries them all.
        for fd in range(3, 64):
            try:
                probe = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            if probe.family == socket.AF_UNIX:
                os.write(fd, data)
            probe.close()
        time.sleep(5)
"""

FORGED = [
    pytest.param(
        'frame({"t": "result", "id": 999999, "value": "forged"})',
        "answer to unknown request id 999999",
        id="forged-result-id",
    ),
    pytest.param(
        'frame({"t": "call", "id": 1, "kind": "hook", "name": "ping"})',
        "unexpected Call from the worker",
        id="call-from-the-worker",
    ),
    pytest.param(
        'struct.pack("!I", 2**31)',
        "frame of 2147483648 bytes is over the 4194304 byte limit",
        id="giant-length",
    ),
    pytest.param(
        'struct.pack("!I", 3) + b"\\xc1\\xc1\\xc1"',
        "malformed frame: MessagePack data is malformed",
        id="not-msgpack",
    ),
]


@pytest.mark.parametrize(("data", "reason"), FORGED)
def test_protocol_abuse_kills_the_worker(tmp_path: Path, data: str, reason: str) -> None:
    attack = run_attack(tmp_path, Template(FORGE).substitute(data=data))
    error = attack.error(PluginCrashedError)
    assert error.cause.startswith(f"protocol violation: {reason}")
    assert error.cause.endswith("; killed")
    assert error.kind == "protocol"
    assert attack.outcomes[0].elapsed_ms < 3000  # at once, not at the 5 s timeout
    [kill] = attack.events("kill")
    assert kill.reason == str(error)
    assert attack.kinds == ["activate", "kill"]


def test_a_deeply_nested_frame_is_a_protocol_violation(tmp_path: Path) -> None:
    data = 'b"\\x84\\xa1t\\xa3log\\xa5level\\xa4info\\xa7message\\xa1m\\xa6fields\\x81\\xa1x"'
    nested_log = f'(lambda body: struct.pack("!I", len(body)) + body)({data} + b"\\x91" * 200_000)'
    attack = run_attack(
        tmp_path, Template(FORGE).substitute(data=nested_log), "[limits]\ntimeout_ms = 1000\n"
    )
    error = attack.error(PluginCrashedError)
    assert "protocol violation" in error.cause
    assert error.kind == "protocol"
    assert attack.kinds == ["activate", "kill"]


# --- capabilities --------------------------------------------------------------------------------

CAPABILITY = """
from plugport.errors import PermissionDeniedError


class Main(Plugin):
    @hook("attack")
    async def attack(self):
        api = self.api
        try:
            await $call
        except PermissionDeniedError as exc:
            return [type(exc).__name__, exc.capability, exc.reason]
        return "allowed"
"""

STORAGE = 'permissions.storage = "1 KiB"\n'
OFFERED = " (it offers config.get, events.publish, "

DENIED = [
    pytest.param(
        'api.storage.set("k", "v")',
        "",
        "storage.set",
        "permissions.storage is 0 (no storage granted)",
        id="storage-without-grant",
    ),
    pytest.param(
        'api.ui.message("click here to update")',
        "",
        "ui.message",
        "permissions.ui does not include 'messages' (none granted)",
        id="ui-message-without-grant",
    ),
    pytest.param(
        'api.ui.invalidate("stats")',
        'permissions.ui = ["messages"]\n',
        "ui.invalidate",
        "permissions.ui includes no surface to invalidate (messages)",
        id="ui-invalidate-beyond-grant",
    ),
    pytest.param(
        'api.ui.update_widget("stats", {"<script>": 1})',
        'permissions.ui = ["messages", "commands"]\n',
        "ui.update_widget",
        "permissions.ui includes no surface to invalidate (messages, commands)",
        id="ui-deprecated-push-beyond-grant",
    ),
    pytest.param(
        'api.ui.metrics("plugport_")',
        'permissions.ui = ["widgets"]\n',
        "ui.metrics",
        "permissions.ui does not include 'metrics' (widgets)",
        id="ui-host-metrics-without-grant",
    ),
    pytest.param(
        'api.events.publish("billing.paid", {"amount": 0})',
        'permissions.events.publish = ["tasks.*"]\n',
        "events.publish",
        "topic 'billing.paid' matches no granted publish pattern (tasks.*)",
        id="publish-outside-patterns",
    ),
    pytest.param(
        "api.config.get()",
        "",
        "config.get",
        "permissions.config is not granted",
        id="config-without-grant",
    ),
    pytest.param(
        'api.storage._transport.call("storage", "drop_all", [], {})',
        STORAGE,
        "storage.drop_all",
        f"the host offers no 'storage.drop_all'{OFFERED}",
        id="made-up-method",
    ),
    pytest.param(
        'api.storage._transport.call("storage", "__init__", [], {})',
        STORAGE,
        "storage.__init__",
        f"the host offers no 'storage.__init__'{OFFERED}",
        id="dunder-method",
    ),
    pytest.param(
        'api.storage._transport.call("shell", "run", ["id"], {})',
        STORAGE,
        "shell.run",
        f"the host offers no 'shell.run'{OFFERED}",
        id="made-up-capability",
    ),
]


@pytest.mark.parametrize(("call", "manifest", "capability", "reason"), DENIED)
def test_capabilities_not_granted_are_denied_and_audited(
    tmp_path: Path, call: str, manifest: str, capability: str, reason: str
) -> None:
    attack = run_attack(tmp_path, Template(CAPABILITY).substitute(call=call), manifest)
    denied, denied_capability, denied_reason = attack.value()
    assert (denied, denied_capability) == ("PermissionDeniedError", capability)
    assert denied_reason.startswith(reason)
    [denial] = attack.events("deny")
    assert (denial.capability, denial.reason) == (capability, denied_reason)
    assert attack.kinds == ["activate", "deny", "deactivate"]


# --- failures ------------------------------------------------------------------------------------


def test_an_exception_is_an_outcome_and_the_fan_out_goes_on(tmp_path: Path) -> None:
    raiser = hostile(
        tmp_path,
        """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        raise ValueError("boom")
""",
        priority=10,
    )
    bystander = write_plugin(
        tmp_path,
        "acme.bystander",
        'class Main(Plugin):\n    @hook("attack")\n    def attack(self):\n        return "here"\n',
        "[contributes]\nhooks = { attack = 0 }\n",
    )
    outcomes: list[HookOutcome] = []

    async def scenario(runtime: Supervisor) -> None:
        outcomes.extend(await runtime.call_hook("attack"))
        assert runtime.status(EVIL)[0].state == "active"  # an exception is not a crash
        await good_is_served(runtime)

    audit = supervise(tmp_path, [raiser, bystander, good(tmp_path)], scenario, hooks=HOOKS)
    failed, ran = outcomes
    assert (failed.plugin, failed.ok) == (EVIL, False)
    assert isinstance(failed.error, PluginCallError)
    assert failed.error.type == "ValueError"
    assert str(failed.error) == f"plugin '{EVIL}' raised ValueError: boom"
    assert (ran.plugin, ran.ok, ran.value) == ("acme.bystander", True, "here")
    assert kinds(audit, EVIL) == ["activate", "deactivate"]


def test_a_segfault_is_a_crash_and_the_next_call_restarts(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import ctypes

        if os.path.exists("crashed"):
            return "running again"
        open("crashed", "w").close()
        ctypes.string_at(0)
"""
    attack = run_attack(tmp_path, body, calls=2)
    error = attack.error(PluginCrashedError)
    assert error.cause == "segmentation fault (SIGSEGV)"
    assert error.kind == "signal"
    assert attack.value(1) == "running again"
    assert attack.status.restarts == 1
    assert attack.kinds == ["activate", "crash", "restart", "deactivate"]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the x32 syscall ABI is x86_64's")
def test_an_x32_syscall_is_killed_by_seccomp(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import ctypes

        ctypes.CDLL(None).syscall(0x40000000 | 39)  # getpid through the x32 table
        return "survived"
"""
    attack = run_attack(tmp_path, body)
    error = attack.error(PluginCrashedError)
    assert error.cause == "forbidden system call (SIGSYS)"
    assert attack.kinds == ["activate", "crash"]


def test_repeated_crashes_quarantine_the_plugin_until_released(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import ctypes

        with open("crashes", "a+") as crashes:
            crashes.seek(0)
            if len(crashes.read()) >= 3:
                return "running again"
            crashes.write("x")
        ctypes.string_at(0)
"""
    released: list[HookOutcome] = []

    async def release(runtime: Supervisor) -> None:
        [status] = runtime.status(EVIL)
        assert (status.state, status.recent_failures) == ("quarantined", 3)
        assert status.quarantined is not None
        assert status.quarantined.startswith("3 failures within 60 s; last: ")
        runtime.release(EVIL)
        released.extend(await runtime.call_hook("attack"))

    attack = run_attack(
        tmp_path,
        body,
        calls=4,
        after=release,
        restart=RestartPolicy(backoff_initial_s=0.01, backoff_max_s=0.05, breaker_failures=3),
    )
    for call in range(3):
        assert attack.error(PluginCrashedError, call).cause == "segmentation fault (SIGSEGV)"
    quarantined = attack.error(PluginQuarantinedError, 3)
    assert "is quarantined: 3 failures within 60 s" in str(quarantined)
    assert [(o.ok, o.value) for o in released] == [(True, "running again")]
    assert attack.status.state == "active"
    assert attack.kinds == [
        "activate",
        "crash",
        "restart",
        "crash",
        "restart",
        "crash",
        "quarantine",
        "release",
        "activate",
        "deactivate",
    ]


# --- each layer alone, and an unprivileged host -------------------------------------------------

LAYER_ATTACK = Path(__file__).with_name("_layer_attack.py")
NOBODY = 65534
# The host starts its zygote with sys.executable: that must work for nobody too.
SPAWNS_ITSELF = (
    "import subprocess, sys; "
    "subprocess.run([sys.executable, '-c', 'import msgspec, plugport.runtime.zygote'], check=True)"
)


def _as_nobody() -> tuple[list[str], dict[str, str]] | str:
    """The command prefix and environment that run this interpreter, with this checkout's
    sources and installed packages, as the unprivileged user ``nobody``; or why it cannot."""
    if os.geteuid() != 0:
        return "the host already runs unprivileged here: the other tests cover that path"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "setpriv (util-linux) is not installed"
    paths = [str(Path(plugport.__file__).parents[1]), *site.getsitepackages()]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(paths), "LANG": "C.UTF-8"}
    prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for interpreter in (sys.executable, f"/usr/bin/{minor}", f"/usr/local/bin/{minor}"):
        probe = subprocess.run(
            [*prefix, interpreter, "-c", SPAWNS_ITSELF],
            env=env,
            capture_output=True,
            check=False,
            cwd="/",
        )
        if probe.returncode == 0:
            return [*prefix, interpreter], env
    return "no interpreter with this checkout's packages is readable by nobody (under /root?)"


@pytest.mark.parametrize("host", ["root", "unprivileged"])
@pytest.mark.parametrize("without", [(), ("seccomp",)], ids=["all layers", "without seccomp"])
def test_no_layer_alone_lets_a_worker_touch_another_process_or_host_file(
    host: str, without: tuple[str, ...]
) -> None:
    """Defence in depth: with seccomp switched off (a test-only spec), the PID namespace, the
    filesystem view, the plugin's own uid and Landlock still refuse every pid-taking call aimed
    at the host, the zygote and a sibling, and every look at a host file; nothing changes. Run
    with a root host and with a host that is the unprivileged user nobody (setpriv)."""
    prefix: list[str] = [sys.executable]
    env = dict(os.environ)
    if host == "unprivileged":
        found = _as_nobody()
        if isinstance(found, str):
            pytest.skip(found)
        prefix, env = found
    elif os.geteuid() != 0:
        pytest.skip("the host is not root here")
    root = Path(tempfile.mkdtemp(prefix="plugport-layers-"))
    try:
        if host == "unprivileged":
            os.chown(root, NOBODY, NOBODY)
        root.chmod(0o755)
        run = subprocess.run(
            [*prefix, str(LAYER_ATTACK), str(root), *without],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd="/",
        )
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(run.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert report["host_uid"] == (0 if host == "root" else NOBODY)
    layers = report["layers"]
    assert ("seccomp" in layers) is (not without)
    for layer in ("pid_namespace", "filesystem", "identity", "namespaces", "landlock"):
        assert layers[layer].startswith("applied"), (layer, layers[layer])
    seen = report["seen"]
    assert seen.pop("self")["pid"] == 1
    for target in ("host", "zygote", "sibling"):
        calls = seen.pop(target)
        refused = {call: outcome for call, outcome in calls.items() if outcome == "ok"}
        assert not refused, (target, calls)
    for path, calls in seen.pop("files").items():
        assert set(calls.values()) <= {"ENOENT", "EACCES", "EPERM"}, (path, calls)
    assert seen == {}
    assert report["targets_unchanged"]
    assert report["sibling_same_worker"]
    assert report["secret_mode"] == "0o600"  # noqa: S105 - a file mode, not a password
