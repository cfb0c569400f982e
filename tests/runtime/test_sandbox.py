"""The sandbox layers against the real kernel: each test forks a child, confines it, makes one
attempt in it and reports what happened through a pipe the sandbox was told to keep. A test that
needs a layer this machine lacks is skipped with the kernel's reason (from ``doctor()``)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import pytest

from plugport.errors import PluginRuntimeError, SandboxUnavailableError
from plugport.manifest import Limits
from plugport.runtime import sandbox
from plugport.runtime.sandbox import (
    LAYERS,
    LayerStatus,
    SandboxReport,
    SandboxSpec,
    apply_sandbox,
    doctor,
    environment,
    interpreter_paths,
    landlock,
    namespaces,
    pid_namespace,
    process,
    rlimits,
    seccomp,
)

MIB = 1024 * 1024
LAYER_NAMES = [layer.name for layer in LAYERS]
ALL = tuple(LAYER_NAMES)
PR_GET_NO_NEW_PRIVS = 39
PR_GET_SECCOMP = 21
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


# --- running an attempt in a sandboxed child -----------------------------------------------------


@dataclass
class Outcome:
    """What the child reported (``value`` or ``error``) and how it ended."""

    value: Any = None
    error: dict[str, Any] | None = None
    report: dict[str, str] | None = None
    signal: int | None = None
    exit_code: int | None = None


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "errno": getattr(exc, "errno", None),
        "message": str(exc),
        "layer": getattr(exc, "layer", None),
    }


def outcome_of(fn: Callable[[], object]) -> str:
    """``"ok"``, the errno name of the OSError raised, or the exception type."""
    try:
        fn()
    except socket.gaierror:
        return "gaierror"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def run_sandboxed(
    spec: SandboxSpec,
    attempt: Callable[[SandboxSpec], object],
    *,
    layers: Sequence[str] = ALL,
    before: Callable[[], None] | None = None,
    timeout_s: float = 10.0,
    own_pid_namespace: bool = True,
) -> Outcome:
    """Fork; in the child run ``before``, apply ``layers`` (all of them through
    ``apply_sandbox``, a subset one by one), run ``attempt`` and send back one JSON line on a
    kept pipe. The child is born in a PID namespace of its own, as the zygote's workers are,
    unless ``own_pid_namespace`` is false (to test another layer against its real parent)."""
    read_end, write_end = os.pipe()
    spec = replace(spec, keep_fds=(*spec.keep_fds, write_end))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        run = lambda: _child(spec, attempt, layers, before, write_end)  # noqa: E731
        if own_pid_namespace:
            _born_in_pid_namespace(run)
        run()
    os.close(write_end)
    try:
        raw, finished = _read_until_eof(read_end, timeout_s)
    finally:
        os.close(read_end)
    if not finished:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not finished:
        pytest.fail(f"the sandboxed child did not finish within {timeout_s} s")
    data = json.loads(raw or b"{}")
    return Outcome(
        value=data.get("value"),
        error=data.get("error"),
        report=data.get("report"),
        signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    )


def _born_in_pid_namespace(run: Callable[[], NoReturn]) -> NoReturn:  # pragma: no cover
    """As the zygote does: make a PID namespace and run the attempt as its pid 1; this process
    waits and ends the same way, so the test sees the attempt's exit code or signal."""
    try:
        pid_namespace.enter_for_children()
    except Exception as exc:
        pid_namespace.spawn_refusal = str(exc)
    child = os.fork()
    if child == 0:
        run()
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status))


def _child(
    spec: SandboxSpec,
    attempt: Callable[[SandboxSpec], object],
    layers: Sequence[str],
    before: Callable[[], None] | None,
    write_end: int,
) -> NoReturn:  # pragma: no cover - runs in the forked child
    try:
        result: dict[str, Any] = {}
        try:
            if before is not None:
                before()
            if tuple(layers) == ALL:
                result["report"] = apply_sandbox(spec, "strict").as_dict()
            else:
                by_name = {layer.name: layer for layer in LAYERS}
                for name in layers:
                    by_name[name].apply(spec)
            result["value"] = attempt(spec)
        except BaseException as exc:
            result["error"] = describe(exc)
        os.write(write_end, json.dumps(result, default=repr).encode() + b"\n")
    finally:
        os._exit(0)


def _read_until_eof(fd: int, timeout_s: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def ok(outcome: Outcome) -> Any:
    assert outcome.error is None, outcome.error
    assert outcome.signal is None, f"killed by {signal.Signals(outcome.signal).name}"
    return outcome.value


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel() -> dict[str, LayerStatus]:
    """This machine's layers; also warms the namespace probe cache that children inherit."""
    return {status.name: status for status in doctor()}


@pytest.fixture
def need(kernel: dict[str, LayerStatus]) -> Callable[..., None]:
    def need(*names: str, landlock_abi: int = 1) -> None:
        for name in names or ALL:
            if not kernel[name].available:
                pytest.skip(f"sandbox layer {name} unavailable here: {kernel[name].detail}")
        if landlock_abi > 1 and landlock.abi_version() < landlock_abi:
            pytest.skip(f"needs Landlock ABI {landlock_abi}; {kernel['landlock'].detail}")

    return need


def _vm_size_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmSize in /proc/self/status")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "plugins" / "acme.hello"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def spec(data_dir: Path) -> SandboxSpec:
    # The child starts as a copy of this pytest process, so leave room above what it already
    # maps: 160 MiB of headroom for imports and a few thread stacks.
    return SandboxSpec(
        data_dir=data_dir,
        read_only=interpreter_paths(),
        memory_mb=_vm_size_mb() + 160,
        cpu_seconds=10,
        max_file_bytes=1 * MIB,
        **worker_identity(data_dir),
    )


TEST_WORKER_UID = 1_900_999_990


def worker_identity(data_dir: Path) -> dict[str, int]:
    """As root, the unprivileged uid the supervisor would give a plugin, owning its data dir."""
    if os.geteuid() != 0:
        return {}
    os.chown(data_dir, TEST_WORKER_UID, TEST_WORKER_UID)
    return {"uid": TEST_WORKER_UID, "gid": TEST_WORKER_UID}


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    """A TCP listener on the host's loopback; yields its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def proc_status(*keys: str) -> dict[str, str]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {key: fields[key].strip() for key in keys}


# --- environment, descriptors, working directory -------------------------------------------------


def test_environment_is_minimal_and_cwd_is_the_data_dir(
    spec: SandboxSpec, need: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    need()
    monkeypatch.setenv("PLUGPORT_TEST_SECRET", "hunter2")

    def attempt(spec: SandboxSpec) -> object:
        with tempfile.NamedTemporaryFile() as scratch:
            scratch_dir = str(Path(scratch.name).parent)
        return {
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "tmp": scratch_dir,
            "bytecode": sys.dont_write_bytecode,
        }

    value = ok(run_sandboxed(spec, attempt))
    assert value["env"] == environment.scrubbed_environment(spec.data_dir)
    assert "PLUGPORT_TEST_SECRET" not in value["env"]
    assert value["cwd"] == str(spec.data_dir)
    assert value["tmp"] == str(spec.data_dir / "tmp")  # tempfile forgot the zygote's choice
    assert value["bytecode"] is True
    assert os.environ["PLUGPORT_TEST_SECRET"] == "hunter2"  # noqa: S105 - the parent is untouched


def test_only_kept_descriptors_survive(spec: SandboxSpec, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("token")
    leaked = os.open(secret, os.O_RDONLY)  # inherited by the fork, as a zygote's fds would be
    kept_read, kept_write = os.pipe()
    try:
        kept = replace(spec, keep_fds=(kept_write,))

        def attempt(spec: SandboxSpec) -> object:
            open_fds = []
            for fd in range(1024):
                try:
                    os.fstat(fd)
                except OSError:
                    continue
                open_fds.append(fd)
            null = os.stat(os.devnull).st_rdev
            return {
                "open": open_fds,
                "kept": list(spec.keep_fds),
                "stdio_on_null": [os.fstat(fd).st_rdev == null for fd in (0, 1, 2)],
            }

        value = ok(run_sandboxed(kept, attempt, layers=["environment"]))
    finally:
        for fd in (leaked, kept_read, kept_write):
            os.close(fd)
    assert value["open"] == sorted([0, 1, 2, *value["kept"]])
    assert kept_write in value["kept"]
    assert leaked not in value["open"]
    assert value["stdio_on_null"] == [True, True, True]


def test_keep_stdio_leaves_stdout_and_stderr_alone(spec: SandboxSpec) -> None:
    before = [os.fstat(fd).st_ino for fd in (1, 2)]

    def attempt(spec: SandboxSpec) -> object:
        return [os.fstat(fd).st_ino for fd in (0, 1, 2)]

    value = ok(run_sandboxed(replace(spec, keep_stdio=True), attempt, layers=["environment"]))
    assert value[1:] == before
    assert value[0] == os.stat(os.devnull).st_ino


# --- resource limits -----------------------------------------------------------------------------


def test_rlimits_are_in_force(spec: SandboxSpec) -> None:
    def attempt(spec: SandboxSpec) -> object:
        return {str(k): list(resource.getrlimit(k)) for k in rlimits.limits_for(spec)}

    value = ok(run_sandboxed(spec, attempt, layers=["rlimits"]))
    assert value == {str(k): list(v) for k, v in rlimits.limits_for(spec).items()}
    assert value[str(resource.RLIMIT_AS)] == [spec.memory_mb * MIB] * 2
    assert value[str(resource.RLIMIT_CORE)] == [0, 0]


def test_memory_bomb_raises_memory_error_and_the_worker_survives(spec: SandboxSpec) -> None:
    def attempt(spec: SandboxSpec) -> object:
        try:
            bomb = b"x" * (2 * spec.memory_mb * MIB)
        except MemoryError:
            return "MemoryError, then " + str(sum(range(1000)))
        return f"allocated {len(bomb)} bytes"

    assert ok(run_sandboxed(spec, attempt, layers=["rlimits"])) == "MemoryError, then 499500"


def test_writing_past_the_file_size_limit_fails(spec: SandboxSpec) -> None:
    big = spec.data_dir / "big.bin"

    def attempt(spec: SandboxSpec) -> object:
        # write_bytes() retries the short write at the limit, so the next one reports it.
        return outcome_of(lambda: big.write_bytes(b"\0" * (2 * spec.max_file_bytes)))

    outcome = run_sandboxed(spec, attempt, layers=["environment", "rlimits"])
    # CPython ignores SIGXFSZ, so the write fails with EFBIG instead of the signal killing it.
    assert outcome.signal == signal.SIGXFSZ or ok(outcome) == "EFBIG"
    assert big.stat().st_size <= spec.max_file_bytes


def test_cpu_limit_stops_a_busy_loop(spec: SandboxSpec) -> None:
    def attempt(spec: SandboxSpec) -> object:
        while True:
            pass

    started = time.monotonic()
    outcome = run_sandboxed(replace(spec, cpu_seconds=1), attempt, layers=["rlimits"], timeout_s=30)
    # SIGXCPU, or, for the pid 1 of a PID namespace, which ignores it, SIGKILL at the hard limit
    # a second later (the zygote tells that apart by the CPU time it reaps: test_supervisor).
    assert outcome.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert time.monotonic() - started < 30


# --- parent death --------------------------------------------------------------------------------


def test_worker_dies_with_its_parent(spec: SandboxSpec, need: Callable[..., None]) -> None:
    """A middle process stands in for the zygote: once it exits, the sandboxed worker it
    forked must die too, which we see as EOF on a pipe only the worker holds open."""
    need()
    alive_read, alive_write = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - the stand-in zygote
        try:
            os.close(alive_read)
            ready_read, ready_write = os.pipe()
            if os.fork() == 0:
                os.close(ready_read)
                apply_sandbox(replace(spec, keep_fds=(alive_write, ready_write)), "strict")
                os.write(ready_write, str(process.parent_death_signal()).encode())
                time.sleep(30)
            else:
                os.close(ready_write)
                os.close(alive_write)
                os.read(ready_read, 16)  # the worker is sandboxed; now the "zygote" dies
        finally:
            os._exit(0)
    os.close(alive_write)
    try:
        os.waitpid(middle, 0)
        ready, _, _ = select.select([alive_read], [], [], 10)
        assert ready, "the worker outlived its parent by 10 s"
        assert os.read(alive_read, 16) == b""  # EOF: the worker is gone
    finally:
        os.close(alive_read)


def test_parent_death_signal_survives_the_namespace_switch(
    spec: SandboxSpec, need: Callable[..., None]
) -> None:
    need()
    value = ok(run_sandboxed(spec, lambda spec: process.parent_death_signal()))
    assert value == signal.SIGKILL


# --- network -------------------------------------------------------------------------------------


def test_network_namespace_cannot_reach_the_host_loopback(
    spec: SandboxSpec, need: Callable[..., None], tcp_listener: int
) -> None:
    need("namespaces")
    with socket.create_connection(("127.0.0.1", tcp_listener), timeout=2):
        pass  # the listener is real: the host can reach it

    def attempt(spec: SandboxSpec) -> object:
        return {
            "connect": outcome_of(lambda: socket.create_connection(("127.0.0.1", tcp_listener), 2)),
            "interfaces": [name for _, name in socket.if_nameindex()],
            "uid": os.getuid(),
            "write_own_file": outcome_of(lambda: (spec.data_dir / "mine.txt").write_text("x")),
        }

    value = ok(run_sandboxed(spec, attempt, layers=["filesystem", "identity", "namespaces"]))
    assert value["connect"] == "ENETUNREACH"
    assert value["interfaces"] == ["lo"]  # and it is down
    assert value["uid"] == (spec.uid if spec.uid is not None else os.getuid())  # mapped to itself
    assert value["write_own_file"] == "ok"  # files the user owns stay usable


def test_landlock_refuses_tcp_bind_and_connect(
    spec: SandboxSpec, need: Callable[..., None], tcp_listener: int
) -> None:
    need("no_new_privs", "landlock", landlock_abi=4)

    def attempt(spec: SandboxSpec) -> object:
        with socket.socket() as client, socket.socket() as server:
            return {
                "connect": outcome_of(lambda: client.connect(("127.0.0.1", tcp_listener))),
                "bind": outcome_of(lambda: server.bind(("127.0.0.1", 0))),
            }

    value = ok(run_sandboxed(spec, attempt, layers=["no_new_privs", "landlock"]))
    assert value == {"connect": "EACCES", "bind": "EACCES"}


def test_landlock_alone_does_not_stop_named_unix_sockets(
    spec: SandboxSpec, need: Callable[..., None], tmp_path: Path
) -> None:
    """Why seccomp refuses connect(): Landlock ABI <= 7 lets a worker connect to any named unix
    socket it can find (docker.sock, systemd's private socket...)."""
    need("no_new_privs", "landlock")
    path = tmp_path / "host.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()

        def attempt(spec: SandboxSpec) -> object:
            with socket.socket(socket.AF_UNIX) as client:
                return outcome_of(lambda: client.connect(str(path)))

        assert ok(run_sandboxed(spec, attempt, layers=["no_new_privs", "landlock"])) == "ok"
        assert ok(run_sandboxed(spec, attempt)) == "EPERM"  # the full sandbox refuses it


def test_full_sandbox_refuses_network_sockets_but_keeps_unix_pairs(
    spec: SandboxSpec, need: Callable[..., None], tcp_listener: int
) -> None:
    need()
    sys_socket = seccomp.ARCHES[os.uname().machine].syscalls["socket"]

    def raw_inet_socket() -> None:
        if libc.syscall(sys_socket, socket.AF_INET, socket.SOCK_STREAM, 0) < 0:
            raise OSError(ctypes.get_errno(), "socket")

    def pair_round_trip() -> None:
        left, right = socket.socketpair()
        with left, right:
            left.sendall(b"ping")
            assert right.recv(4) == b"ping"

    def attempt(spec: SandboxSpec) -> object:
        return {
            "inet": outcome_of(lambda: socket.socket(socket.AF_INET)),
            "inet6": outcome_of(lambda: socket.socket(socket.AF_INET6)),
            "udp": outcome_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
            "raw_syscall": outcome_of(raw_inet_socket),
            "connect": outcome_of(lambda: socket.create_connection(("127.0.0.1", tcp_listener))),
            "dns": outcome_of(lambda: socket.getaddrinfo("localhost", 80)),
            "unix_pair": outcome_of(pair_round_trip),
            "unix_datagram": outcome_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)),
        }

    assert ok(run_sandboxed(spec, attempt)) == {
        "inet": "EAFNOSUPPORT",
        "inet6": "EAFNOSUPPORT",
        "udp": "EAFNOSUPPORT",
        "raw_syscall": "EAFNOSUPPORT",
        "connect": "EAFNOSUPPORT",
        "dns": "gaierror",  # /etc/hosts and resolv.conf unreadable, no socket to ask with
        "unix_pair": "ok",
        "unix_datagram": "EPERM",
    }


# --- filesystem (Landlock) -----------------------------------------------------------------------


@pytest.mark.parametrize("view", ["landlock alone", "full"])
def test_files_outside_the_rules_are_denied(
    spec: SandboxSpec, need: Callable[..., None], tmp_path: Path, view: str
) -> None:
    """Landlock alone refuses (EACCES) but lets metadata through; with the filesystem layer
    nothing outside is even there (ENOENT), metadata included."""
    need()
    if view == "landlock alone":  # (and as root, the host's uid: a plugin uid needs the view)
        spec = replace(spec, without=("filesystem", "identity"), uid=None, gid=None)
        os.chown(spec.data_dir, os.getuid(), os.getgid())
    sibling = tmp_path / "plugins" / "acme.other"
    sibling.mkdir()
    (sibling / "data.txt").write_text("another plugin's data")
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    real_ssh = Path.home() / ".ssh"
    has_ssh = real_ssh.is_dir()
    escape = tmp_path / "escape.txt"
    code_file = Path(sandbox.__file__)

    def attempt(spec: SandboxSpec) -> object:
        attempts: dict[str, Callable[[], object]] = {
            "/etc/passwd": lambda: Path("/etc/passwd").read_bytes(),
            "/etc/hosts": lambda: Path("/etc/hosts").read_bytes(),
            "sibling file": (sibling / "data.txt").read_text,
            "sibling listing": lambda: os.listdir(sibling),
            "ssh key": (ssh / "id_ed25519").read_text,
            "/proc/self/environ": lambda: Path("/proc/self/environ").read_bytes(),
            "/proc/1/cmdline": lambda: Path("/proc/1/cmdline").read_bytes(),
            "write outside": lambda: escape.write_text("escaped"),
            "write code": lambda: code_file.open("a"),
            "write inside": lambda: (spec.data_dir / "inside.txt").write_text("kept"),
            "mkdir inside": (spec.data_dir / "sub").mkdir,
            "rename inside": lambda: (spec.data_dir / "inside.txt").rename(
                spec.data_dir / "sub" / "moved.txt"
            ),
            "read code": code_file.read_bytes,
            "stat outside": lambda: os.stat("/etc/passwd"),
        }
        if has_ssh:  # decided outside: inside, the view has no home directory at all
            attempts["~/.ssh"] = lambda: os.listdir(real_ssh)
        return {name: outcome_of(fn) for name, fn in attempts.items()}

    value = ok(run_sandboxed(spec, attempt))
    denied = {
        "/etc/passwd",
        "/etc/hosts",
        "sibling file",
        "sibling listing",
        "ssh key",
        "/proc/self/environ",  # procfs is a filesystem like any other to Landlock
        "/proc/1/cmdline",
        "write outside",
        "write code",
    } | ({"~/.ssh"} if has_ssh else set())
    if view == "landlock alone":
        assert {name: value[name] for name in denied} == dict.fromkeys(denied, "EACCES")
        assert value["stat outside"] == "ok"  # Landlock does not cover metadata; documented
    else:
        hidden = denied - {"write code", "write outside"}
        assert {name: value[name] for name in hidden} == dict.fromkeys(hidden, "ENOENT")
        assert value["write outside"] == "EROFS"  # the view is read-only
        assert value["write code"] in ("EACCES", "EROFS")  # and Landlock says so first
        assert value["stat outside"] == "ENOENT"
    assert value["write inside"] == value["mkdir inside"] == value["rename inside"] == "ok"
    assert value["read code"] == "ok"
    assert not escape.exists()
    assert (spec.data_dir / "sub" / "moved.txt").read_text() == "kept"


def test_lazy_imports_still_work_inside_the_sandbox(
    spec: SandboxSpec, need: Callable[..., None]
) -> None:
    need()
    fresh = ("decimal", "fractions", "json", "sqlite3", "statistics", "zoneinfo")

    def attempt(spec: SandboxSpec) -> object:
        already = [name for name in fresh if name in sys.modules]
        import datetime
        import decimal
        import fractions
        import json as json_module
        import sqlite3
        import statistics
        import zoneinfo

        with sqlite3.connect(":memory:") as db:  # _sqlite3.so and libsqlite3 via ld.so.cache
            answer = db.execute("select 6 * 7").fetchone()[0]
        paris = datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
        return {
            "already imported": already,
            "fraction": str(fractions.Fraction(1, 3) + fractions.Fraction(1, 6)),
            "decimal": str(decimal.Decimal("1.1") + decimal.Decimal("2.2")),
            "json": json_module.dumps({"a": [1, 2]}),
            "sqlite": answer,
            "zone": str(paris.utcoffset()),
            "mean": statistics.mean([1, 2, 3]),
            "localtime": time.localtime(0).tm_year,
        }

    # Forget the pure-Python modules so the sandboxed child must read them from disk.
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name.split(".")[0] in fresh and str(getattr(module, "__file__", "")).endswith(".py")
    }
    for name in saved:
        del sys.modules[name]
    try:
        value = ok(run_sandboxed(spec, attempt))
    finally:
        sys.modules.update(saved)
    assert value == {
        "already imported": [],
        "fraction": "1/2",
        "decimal": "3.3",
        "json": '{"a": [1, 2]}',
        "sqlite": 42,
        "zone": "1:00:00",
        "mean": 2,
        "localtime": 1970,
    }


# --- processes, threads, syscalls (seccomp) ------------------------------------------------------


def test_seccomp_refuses_new_processes_and_escape_hatches(
    spec: SandboxSpec, need: Callable[..., None]
) -> None:
    need()
    numbers = seccomp.ARCHES[os.uname().machine].syscalls
    libc.unshare.argtypes = [ctypes.c_int]

    def raw(number: int, *args: int) -> Callable[[], None]:
        def call() -> None:
            if libc.syscall(number, *(ctypes.c_long(a) for a in args)) < 0:
                raise OSError(ctypes.get_errno(), "syscall")

        return call

    def threaded_sum() -> None:
        results: list[int] = []
        worker = threading.Thread(target=lambda: results.append(sum(range(10))))
        worker.start()
        worker.join()
        assert results == [45]

    def attempt(spec: SandboxSpec) -> object:
        import subprocess

        return {
            "fork": outcome_of(os.fork),
            "subprocess": outcome_of(lambda: subprocess.run(["/bin/true"], check=False)),
            "thread": outcome_of(threaded_sum),
            "ptrace": outcome_of(raw(numbers["ptrace"], 0, 0, 0, 0)),  # PTRACE_TRACEME
            "unshare": outcome_of(raw(numbers["unshare"], 0x10000000)),  # CLONE_NEWUSER
            "bpf": outcome_of(raw(numbers["bpf"], 0, 0, 0)),
            "io_uring": outcome_of(raw(numbers["io_uring_setup"], 1, 0)),
            "kill self": outcome_of(lambda: os.kill(os.getpid(), 0)),
            "seccomp mode": libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0),
        }

    assert ok(run_sandboxed(spec, attempt)) == {
        "fork": "EPERM",
        "subprocess": "EPERM",
        "thread": "ok",
        "ptrace": "EPERM",
        "unshare": "EPERM",
        "bpf": "EPERM",
        "io_uring": "EPERM",
        "kill self": "ok",
        "seccomp mode": 2,
    }


def test_thread_bomb_is_bounded(spec: SandboxSpec, need: Callable[..., None]) -> None:
    """As root ``RLIMIT_NPROC`` is not enforced; each thread's stack counts against
    ``RLIMIT_AS`` instead, so the bomb stops after a few dozen threads either way."""
    need()

    def attempt(spec: SandboxSpec) -> object:
        stop = threading.Event()
        started: list[threading.Thread] = []
        failure = "none"
        try:
            while len(started) < 10_000:
                thread = threading.Thread(target=stop.wait)
                thread.start()
                started.append(thread)
        except (RuntimeError, MemoryError) as exc:
            failure = type(exc).__name__
        stop.set()
        for thread in started:
            thread.join()
        return {"started": len(started), "failure": failure}

    value = ok(run_sandboxed(spec, attempt))
    assert value["failure"] in ("RuntimeError", "MemoryError")
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    per_thread_mb = max(stack, 2 * MIB) // MIB if stack != resource.RLIM_INFINITY else 2
    limit = spec.max_threads if os.getuid() != 0 else spec.memory_mb // per_thread_mb
    assert 1 <= value["started"] <= limit


def test_rlimit_nproc_caps_threads_of_an_unprivileged_worker(
    spec: SandboxSpec, need: Callable[..., None]
) -> None:
    """Inside its own user namespace the worker's uid has a task count of its own, so
    ``RLIMIT_NPROC`` caps its threads however many processes that uid runs on the host. (As
    root the kernel never enforces it; the test plays an unprivileged host by becoming nobody.)"""
    need("namespaces")
    nobody = 65534
    capped = replace(spec, max_threads=4)
    sleepers: list[int] = []

    def become_nobody() -> None:
        os.setgroups([])
        os.setresgid(nobody, nobody, nobody)
        os.setresuid(nobody, nobody, nobody)

    def attempt(spec: SandboxSpec) -> object:
        stop = threading.Event()
        started = 0
        try:
            while started < 100:
                threading.Thread(target=stop.wait).start()
                started += 1
        except RuntimeError:
            pass
        stop.set()
        return started

    try:
        if os.getuid() == 0:
            for _ in range(2 * capped.max_threads):  # the host user's other processes
                pid = os.fork()
                if pid == 0:  # pragma: no cover - a sleeping process owned by nobody
                    try:
                        become_nobody()
                        time.sleep(30)
                    finally:
                        os._exit(0)
                sleepers.append(pid)
        before = become_nobody if os.getuid() == 0 else None
        started = ok(run_sandboxed(capped, attempt, layers=["namespaces"], before=before))
    finally:
        for pid in sleepers:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert started == capped.max_threads - 1  # the main thread is the first task


def test_landlock_scopes_signals_to_the_worker(
    spec: SandboxSpec, need: Callable[..., None]
) -> None:
    need("no_new_privs", "landlock", landlock_abi=6)

    def attempt(spec: SandboxSpec) -> object:
        return {
            "parent": outcome_of(lambda: os.kill(os.getppid(), 0)),
            "self": outcome_of(lambda: os.kill(os.getpid(), 0)),
        }

    # Landlock alone (no seccomp, no PID namespace, and uid 0 would otherwise pass the kernel's
    # uid check).
    layers = ["no_new_privs", "landlock"]
    assert ok(run_sandboxed(spec, attempt, layers=layers, own_pid_namespace=False)) == {
        "parent": "EPERM",
        "self": "ok",
    }


def test_full_sandbox_cannot_signal_the_host(spec: SandboxSpec, need: Callable[..., None]) -> None:
    need()
    value = ok(run_sandboxed(spec, lambda spec: outcome_of(lambda: os.kill(os.getppid(), 0))))
    assert value == "EPERM"


# --- policy --------------------------------------------------------------------------------------


def _state() -> dict[str, Any]:
    """What the sandbox would change, read without needing any layer to be absent."""
    return {
        "secret": os.environ.get("PLUGPORT_TEST_SECRET"),
        "cwd": os.getcwd(),
        "no_new_privs": libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
        "seccomp": libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0),
        "user_ns": os.readlink("/proc/self/ns/user") if os.path.exists("/proc/self") else None,
        "as_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
    }


def _unavailable(detail: str) -> Callable[[], LayerStatus]:
    return lambda: LayerStatus("landlock", False, detail)


def test_strict_refuses_a_missing_layer_before_changing_anything(
    spec: SandboxSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGPORT_TEST_SECRET", "hunter2")
    monkeypatch.setattr(landlock, "available", _unavailable("landlock ABI 0 (forced by test)"))
    before = _state()

    def attempt(spec: SandboxSpec) -> object:
        try:
            apply_sandbox(spec, "strict")
        except SandboxUnavailableError as exc:
            return {"error": describe(exc), "state": _state()}
        return "applied"

    value = ok(run_sandboxed(spec, attempt, layers=()))
    assert value["error"]["type"] == "SandboxUnavailableError"
    assert value["error"]["layer"] == "landlock"
    assert "landlock ABI 0 (forced by test)" in value["error"]["message"]
    assert value["state"] == before


def test_strict_stops_at_a_layer_the_kernel_refuses(
    spec: SandboxSpec, need: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    need()

    def refuse(spec: SandboxSpec) -> str:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(landlock, "apply", refuse)

    def attempt(spec: SandboxSpec) -> object:
        try:
            apply_sandbox(spec, "strict")
        except SandboxUnavailableError as exc:
            return {"layer": exc.layer, "reason": exc.reason, "state": _state()}
        return "applied"

    value = ok(run_sandboxed(spec, attempt, layers=()))
    assert value["layer"] == "landlock"
    assert value["reason"].startswith("EPERM")
    assert value["state"]["no_new_privs"] == 1  # the layers before it took effect
    assert value["state"]["seccomp"] == 0  # none after it did


def test_best_effort_records_a_missing_layer_and_applies_the_rest(
    spec: SandboxSpec, need: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    need("environment", "rlimits", "parent_death", "namespaces", "no_new_privs", "seccomp")
    monkeypatch.setattr(landlock, "available", _unavailable("landlock ABI 0 (forced by test)"))

    def attempt(spec: SandboxSpec) -> object:
        report = apply_sandbox(spec, "best-effort")
        return {
            "report": report.as_dict(),
            "missing": report.missing,
            "seccomp": libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0),
            "passwd": outcome_of(lambda: Path("/etc/passwd").read_bytes()),
        }

    value = ok(run_sandboxed(spec, attempt, layers=()))
    assert value["missing"] == ["landlock"]
    assert (
        value["report"]["landlock"] == "not applied: unavailable: landlock ABI 0 (forced by test)"
    )
    assert value["report"]["seccomp"].startswith("applied: ")
    assert value["seccomp"] == 2
    # Without Landlock, the filesystem layer still keeps the host's files out of view.
    assert value["passwd"] == "ENOENT"  # noqa: S105


def test_an_unknown_policy_is_refused_before_anything_changes(spec: SandboxSpec) -> None:
    def attempt(spec: SandboxSpec) -> object:
        before = _state()
        error = outcome_of(lambda: apply_sandbox(spec, "lenient"))  # type: ignore[arg-type]
        return {"error": error, "unchanged": _state() == before}

    assert ok(run_sandboxed(spec, attempt, layers=())) == {"error": "ValueError", "unchanged": True}


# --- doctor --------------------------------------------------------------------------------------


def test_doctor_lists_every_layer_and_leaves_this_process_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(namespaces, "_probe_cache", {})  # force the forked probe to run

    def snapshot() -> dict[str, Any]:
        return {
            **proc_status("Seccomp", "NoNewPrivs", "CapEff", "CapBnd", "Threads"),
            "ns": [os.readlink(f"/proc/self/ns/{ns}") for ns in ("user", "net")],
            "uid_map": Path("/proc/self/uid_map").read_text(),
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "fds": sorted(os.listdir("/proc/self/fd")),
            "rlimits": [resource.getrlimit(r) for r in rlimits.limits_for(_dummy_spec())],
            "pdeathsig": process.parent_death_signal(),
            "children": _children(),
        }

    before = snapshot()
    statuses = doctor()
    after = snapshot()
    assert after == before
    assert before["Seccomp"] == "0"
    # The probe child was reaped: no child (a zombie included) is left that was not there
    # before. (Other children may be alive: a zygote kept by tests that ran earlier in this
    # process, such as the example plugins' with plugport.testing.)
    assert [s.name for s in statuses] == LAYER_NAMES
    assert all(s.detail for s in statuses)
    by_name = {s.name: s for s in statuses}
    if by_name["landlock"].available:
        assert by_name["landlock"].detail.startswith(f"landlock ABI {landlock.abi_version()}")
    if by_name["namespaces"].available:
        assert "unshare(CLONE_NEWUSER|CLONE_NEWNET)" in by_name["namespaces"].detail


def _children() -> set[int]:
    """This process's child pids, zombies included, from every thread's children list."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _dummy_spec() -> SandboxSpec:
    return SandboxSpec(data_dir=Path("/nonexistent"), read_only=(), memory_mb=1, cpu_seconds=1)


# --- data types ----------------------------------------------------------------------------------


def test_spec_rejects_nonsense(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        SandboxSpec(data_dir=Path("relative"), read_only=(), memory_mb=64, cpu_seconds=1)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxSpec(data_dir=data_dir, read_only=(), memory_mb=0, cpu_seconds=1)
    with pytest.raises(ValueError, match="keep_stdio"):
        SandboxSpec(data_dir=data_dir, read_only=(), memory_mb=64, cpu_seconds=1, keep_fds=(1,))
    with pytest.raises(ValueError, match="absolute"):
        SandboxSpec(data_dir=data_dir, read_only=(Path("lib"),), memory_mb=64, cpu_seconds=1)


def test_spec_from_manifest_limits(data_dir: Path, tmp_path: Path) -> None:
    limits = Limits(memory_mb=96, cpu_seconds=7)
    spec = SandboxSpec.from_limits(
        limits, data_dir=data_dir, code_dir=tmp_path / "code", keep_fds=(9,)
    )
    assert (spec.memory_mb, spec.cpu_seconds, spec.keep_fds) == (96, 7, (9,))
    assert spec.read_only == (tmp_path / "code",)


def test_interpreter_paths_cover_the_interpreter_but_not_the_host_app() -> None:
    paths = interpreter_paths()
    assert all(p.is_absolute() and p.exists() for p in paths)
    assert len(set(paths)) == len(paths)

    def covered(target: Path) -> bool:
        return any(target == p or target.is_relative_to(p) for p in paths)

    assert covered(Path(os.__file__))  # the stdlib
    assert covered(Path(pytest.__file__))  # site-packages
    assert covered(Path(sandbox.__file__))  # plugport itself, even when installed editable
    assert not covered(Path(__file__))  # the host's own tree (here: the tests) stays closed
    assert not covered(Path.cwd())


def test_report_lookups() -> None:
    report = SandboxReport(
        "best-effort",
        (
            sandbox.LayerResult("rlimits", True, "AS 64 MiB"),
            sandbox.LayerResult("landlock", False, "unavailable: ENOSYS"),
        ),
    )
    assert report["landlock"].detail == "unavailable: ENOSYS"
    assert report.missing == ["landlock"]
    assert not report.complete
    assert report.as_dict() == {
        "rlimits": "applied: AS 64 MiB",
        "landlock": "not applied: unavailable: ENOSYS",
    }
    with pytest.raises(KeyError):
        report["seccomp"]


def test_sandbox_unavailable_error_names_the_layer_and_the_kernel_fact() -> None:
    error = SandboxUnavailableError("namespaces", "kernel.unprivileged_userns_clone=0")
    assert isinstance(error, PluginRuntimeError)
    assert (error.layer, error.reason) == ("namespaces", "kernel.unprivileged_userns_clone=0")
    assert "namespaces" in str(error)
    assert "unprivileged_userns_clone=0" in str(error)


def test_facade_exports_are_sorted_and_present() -> None:
    assert sandbox.__all__ == sorted(sandbox.__all__)
    for name in sandbox.__all__:
        assert hasattr(sandbox, name), name
