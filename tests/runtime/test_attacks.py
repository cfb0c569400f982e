"""The attack suite: hostile plugins run by a real supervisor in real workers under the strict
sandbox. Each test asserts the precise refusal, the audit trail of every host-side decision, and
that a well-behaved plugin is still started and served afterwards."""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import socket
import stat
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

from plugport.errors import (
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    PluginQuarantinedError,
    PlugportError,
    ResourceLimitExceededError,
)
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.audit import AuditEvent, MemoryAuditLog
from plugport.runtime.broker import NetOptions
from plugport.runtime.capabilities.network import StaticResolver
from plugport.runtime.hooks import HookOutcome, HookSpec
from plugport.runtime.sandbox import LayerStatus, doctor
from plugport.runtime.sandbox.environment import scrubbed_environment
from plugport.runtime.supervisor import PluginInstall, PluginStatus, Supervisor
from tests.runtime._supervised import kinds, supervise, write_plugin

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
    **config: Any,
) -> Attack:
    """Add the hostile plugin ``body``, the ``others`` and the good plugin to a real supervisor;
    call the ``attack`` hook ``calls`` times (``during`` runs alongside), then check that the
    good plugin is served."""
    installs = [hostile(root, body, manifest), *others, good(root)]
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
            "/etc/passwd": "EACCES",
            "/etc/shadow": "EACCES",
            "/proc/self/mounts": "EACCES",
            "/proc/1/cmdline": "EACCES",
            "list /": "EACCES",
            "list /proc": "EACCES",
            "list /sys": "EACCES",
        },
        id="system-files",
    ),
    pytest.param(
        ESCAPE_HATCHES,
        {
            "type into the terminal (TIOCSTI)": EPERM,
            "raise RLIMIT_AS": "ValueError",  # "not allowed to raise maximum limit"
            "raise RLIMIT_NOFILE": "ValueError",
            "oom_score_adj": "EACCES",
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
    assert attack.value() == {"read": "EACCES", "list its directory": "EACCES"}


def test_the_host_environment_does_not_reach_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGPORT_CANARY_SECRET", "canary-51f0")
    body = Template("""
class Main(Plugin):
    @hook("attack")
    def attack(self):
        zygote = os.getppid()
        return {
            "os.environ": dict(os.environ),
            "zygote": zygote,
            "its own environ": attempt(lambda: open("/proc/self/environ", "rb").read()),
            "zygote's environ": attempt(lambda: open(f"/proc/{zygote}/environ", "rb").read()),
            "host's environ": attempt(lambda: open("/proc/$host/environ", "rb").read()),
        }
""").substitute(host=os.getpid())
    zygotes: list[int] = []

    async def the_zygote_has_the_secret(runtime: Supervisor) -> None:
        [status] = runtime.status(EVIL)
        assert status.pid is not None
        zygotes.append(parent_of(status.pid))
        assert (
            b"PLUGPORT_CANARY_SECRET=canary-51f0"
            in Path(f"/proc/{zygotes[0]}/environ").read_bytes()
        )

    attack = run_attack(tmp_path, body, after=the_zygote_has_the_secret)
    value = attack.value()
    assert value["os.environ"] == scrubbed_environment(tmp_path / "state" / "data" / EVIL)
    assert value["zygote"] == zygotes[0]
    assert {k: value[k] for k in ("its own environ", "zygote's environ", "host's environ")} == {
        "its own environ": "EACCES",
        "zygote's environ": "EACCES",
        "host's environ": "EACCES",
    }
    assert "canary-51f0" not in repr(value)


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
        "read": "EACCES",
        "list": "EACCES",
        "overwrite": "EACCES",
        "plant": "EACCES",
        "delete": "EACCES",
        "same key in own storage": None,  # keys live in the plugin's own namespace
    }
    assert named.startswith("InvalidInputError: storage.get(")
    assert named.endswith("got an unexpected keyword argument 'plugin'")
    victim_data = tmp_path / "state" / "data" / "acme.victim"
    assert sorted(p.name for p in victim_data.iterdir()) == ["notes.txt", "tmp"]
    assert (victim_data / "notes.txt").read_text() == "victim secret"
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
    assert attack.value() == {
        **dict.fromkeys(targets, "EACCES"),
        "through a symlink": "EACCES",
        "hard link own code in": "EXDEV",  # Landlock: no REFER right across the rule boundary
        "rename a host file in": "EACCES",
        "truncate a host file": "EACCES",
        "delete a host file": "EACCES",
        "own data dir": "ok",
    }
    assert (code / "main.py").read_text() == sources[0]
    for path in [*list(targets.values())[1:], through_symlink]:
        assert not path.exists(), path
    assert secret.read_text() == "host secret"
    assert (tmp_path / "state" / "data" / EVIL / "mine.txt").read_text() == "pwned"


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
except PermissionError:
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
        if set(refused.values()) != {"EACCES"}:
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
    assert str(error) == f"plugin '{EVIL}' may not use net.fetch: {denial.reason}"


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
        net=NetOptions(
            resolver=StaticResolver({"allowed.example": ["127.0.0.1"]}),
            extra_allowed_networks=("127.0.0.1/32",),  # only so the first hop can be served
        ),
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
    assert "the worker ran out of memory" in str(error)
    again, pid = attack.value(1)
    assert (again, pid) == ("running again", attack.status.pid)
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
    assert attack.value() == ["EFBIG", 2 * 1024 * 1024]  # CPython ignores SIGXFSZ
    assert (tmp_path / "state" / "data" / EVIL / "big.bin").stat().st_size == 2 * 1024 * 1024
    assert attack.kinds == ["activate", "deactivate"]


def test_many_files_over_the_data_dir_limit_stop_the_plugin(tmp_path: Path) -> None:
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

    attack = run_attack(tmp_path, body, after=ping_and_retry, max_data_dir_mb=2)
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
    # As root RLIMIT_NPROC is not enforced: each thread's 8 MiB stack against RLIMIT_AS is.
    assert failure == "RuntimeError: can't start new thread"
    assert 0 < started <= 128 // 8
    assert attack.value(1) == [started, failure]  # the same worker, fine afterwards
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
    assert attack.outcomes[0].elapsed_ms < 3000
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
    assert attack.outcomes[0].elapsed_ms < 10_000
    assert attack.kinds == ["activate", "kill"]


# --- other processes -----------------------------------------------------------------------------


def test_the_zygote_and_the_host_cannot_be_signalled_or_traced(tmp_path: Path) -> None:
    body = Template("""
class Main(Plugin):
    @hook("attack")
    def attack(self):
        import signal

        zygote, host = os.getppid(), $host
        pidfd = os.pidfd_open(zygote)
        return {
            "kill(zygote)": attempt(lambda: os.kill(zygote, signal.SIGKILL)),
            "kill(host)": attempt(lambda: os.kill(host, signal.SIGKILL)),
            "kill(-1)": attempt(lambda: os.kill(-1, signal.SIGKILL)),
            "killpg(0)": attempt(lambda: os.killpg(0, signal.SIGKILL)),
            "kill(1)": attempt(lambda: os.kill(1, signal.SIGKILL)),
            "tkill(zygote)": attempt(syscall("tkill", zygote, signal.SIGKILL)),
            "tgkill(zygote)": attempt(syscall("tgkill", zygote, zygote, signal.SIGKILL)),
            "pidfd_send_signal(zygote)": attempt(
                syscall("pidfd_send_signal", pidfd, signal.SIGKILL, 0, 0)
            ),
            "ptrace(ATTACH, zygote)": attempt(syscall("ptrace", 16, zygote, 0, 0)),
            "ptrace(SEIZE, host)": attempt(syscall("ptrace", 0x4206, host, 0, 0)),
        }
""").substitute(host=os.getpid())

    async def the_zygote_lives(runtime: Supervisor) -> None:
        [status] = runtime.status(EVIL)
        assert status.pid is not None
        os.kill(parent_of(status.pid), 0)  # raises if the zygote were gone

    attack = run_attack(tmp_path, body, after=the_zygote_lives)
    assert set(attack.value().values()) == {EPERM}
    assert attack.kinds == ["activate", "deactivate"]


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
    assert attack.value(1) == [2, attack.status.pid]  # the same worker answered
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
        'api.ui.update_widget("stats", {})',
        'permissions.ui = ["messages"]\n',
        "ui.update_widget",
        "permissions.ui does not include 'widgets' (messages)",
        id="ui-widget-beyond-grant",
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
