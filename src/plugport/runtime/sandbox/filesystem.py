"""Layer ``filesystem``: the worker gets a mount namespace whose root is an empty read-only tmpfs
holding only what it may see: the plugin's code and the interpreter's paths bound read-only at
their usual places, and its data directory bound read-write. The host's files, its state dir and
other plugins' data dirs are not in the worker's view at all, so no call that takes a path
(``stat``, ``inotify_add_watch``, ``statfs``, ``readlink``...) can learn about them, whether or not
Landlock and seccomp cover that call.

Sources are opened (``O_PATH``, in the new namespace) before the tmpfs is mounted and bound
through ``/proc/self/fd``, so a source the tmpfs covers (a data dir under ``/tmp``) is still
reachable. The old root
is detached after ``pivot_root``; mounts are made private first so nothing propagates back to the
host. Read-only remounts keep the source mount's locked flags (``nodev``, ``noexec``...), which a
user namespace may not clear.

:func:`plan` is pure (paths and their kinds in, mount steps out) and unit-tested; :func:`apply`
does the mounts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from plugport.runtime.sandbox import _libc
from plugport.runtime.sandbox import _probe as probe
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = ["Kind", "Step", "apply", "available", "enter_private_mount_namespace", "plan"]

NAME = "filesystem"
CLONE_NEWNS = _libc.CLONE_NEWNS
CLONE_NEWUSER = _libc.CLONE_NEWUSER
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 0x2
_STATVFS_TO_MS = {
    os.ST_RDONLY: MS_RDONLY,
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
# Where the new root is assembled: an existing directory that a private tmpfs then covers (only
# in the worker's own mount namespace; nothing is written to the host's /tmp).
_BASES = ("/tmp", "/mnt", "/run")  # noqa: S108
_PROBE_TIMEOUT_S = 5.0
_probe_cache: dict[str, LayerStatus] = {}

Kind = Literal["dir", "file", "device", "symlink"]


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to put into the new root: bind ``path`` (``writable`` or not), or recreate a
    symlink at ``path`` pointing to ``target``."""

    path: Path
    kind: Kind
    writable: bool = False
    target: str = ""


def plan(read_only: Mapping[Path, tuple[Kind, str]], data_dir: Path) -> list[Step]:
    """The steps that build the view, outermost first; ``read_only`` maps each path to its kind
    and, for a symlink, its target. A path inside another bound path is already visible and is
    not bound again (unless it is the writable data dir, bound on top)."""
    steps: list[Step] = []
    bound: list[Path] = []
    for path in sorted(read_only, key=lambda p: (len(p.parts), str(p))):
        if any(path.is_relative_to(outer) for outer in bound):
            continue
        kind, target = read_only[path]
        if kind == "symlink":
            steps.append(Step(path, "symlink", target=target))
            continue
        steps.append(Step(path, kind))
        if kind == "dir":
            bound.append(path)
    steps.append(Step(data_dir, "dir", writable=True))
    return steps


_described: dict[Path, tuple[Kind, str]] = {}


def prepare(paths: tuple[Path, ...]) -> None:
    """Describe the interpreter's paths ahead of time (the zygote does, once), so a worker only
    looks at its own code and data dir, and shares the rest."""
    _described.update(describe(paths))


def describe(paths: tuple[Path, ...]) -> dict[Path, tuple[Kind, str]]:
    """Each existing path's kind (and a symlink's target, whose own path is added too)."""
    found: dict[Path, tuple[Kind, str]] = {}
    pending = list(paths)
    while pending:
        path = pending.pop()
        if path in found:
            continue
        if path in _described:
            found[path] = kind, target = _described[path]
            if kind == "symlink":
                pending.append(Path(os.path.normpath(path.parent / target)))
            continue
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            found[path] = ("symlink", target)
            pending.append(Path(os.path.normpath(path.parent / target)))
        elif stat.S_ISDIR(info.st_mode):
            found[path] = ("dir", "")
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            found[path] = ("device", "")
        else:
            found[path] = ("file", "")
    return found


def available() -> LayerStatus:
    """Whether a mount namespace with a tmpfs can be made here (tried in a throwaway child)."""
    if NAME not in _probe_cache:
        _probe_cache[NAME] = _probe()
    return _probe_cache[NAME]


def apply(spec: SandboxSpec) -> str:
    steps = plan(describe(spec.read_only), spec.data_dir)
    sources: dict[Path, int] = {}
    try:
        enter_private_mount_namespace()
        # Opened inside the new namespace (a bind source must be one of its mounts) and before
        # the tmpfs may cover them.
        for step in steps:
            if step.kind != "symlink":
                sources[step.path] = os.open(step.path, os.O_PATH | os.O_CLOEXEC)
        base = next((b for b in _BASES if os.path.isdir(b)), None)
        if base is None:
            raise LayerFailedError(f"no directory to assemble the new root in ({_BASES})")
        _mount(
            "plugport-root", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096"
        )
        for step in steps:
            _place(base, step, sources)
        _mount(None, base, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        _libc.keep_proc_self()  # the namespaces layer still writes its uid/gid maps there
        os.chdir(base)
        _libc.pivot_root(".", ".")
        _libc.umount2(".", MNT_DETACH)
        os.chdir("/")
        os.chdir(spec.data_dir)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise LayerFailedError(f"{_libc.errno_name(exc.errno or 0)}{where}") from None
    finally:
        for fd in sources.values():
            os.close(fd)
    binds = sum(1 for s in steps if s.kind != "symlink")
    return (
        f"own mount namespace: {binds - 1} read-only binds and the data dir on an empty "
        "read-only root; the host's other files are not in view"
    )


def enter_private_mount_namespace() -> None:
    """A mount namespace of the caller's own, with every mount private, so nothing mounted in
    it reaches the host (a non-root caller gets a user namespace with it)."""
    try:
        _libc.unshare(CLONE_NEWNS)
    except OSError as exc:
        if exc.errno != 1 or os.geteuid() == 0:  # EPERM as non-root: needs a user namespace
            raise
        uid, gid = os.getuid(), os.getgid()
        _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)
        from plugport.runtime.sandbox.namespaces import map_ids

        map_ids(uid, gid)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount may reach the host


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _libc.mount(source, target, fstype, flags, data)


def _place(base: str, step: Step, sources: Mapping[Path, int]) -> None:
    inside = base + str(step.path)
    if step.kind == "symlink":
        os.makedirs(os.path.dirname(inside), mode=0o755, exist_ok=True)
        if not os.path.lexists(inside):
            os.symlink(step.target, inside)
        return
    if not os.path.lexists(inside):
        if step.kind == "dir":
            os.makedirs(inside, mode=0o755)
        else:
            os.makedirs(os.path.dirname(inside), mode=0o755, exist_ok=True)
            os.close(os.open(inside, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    source = f"/proc/self/fd/{sources[step.path]}"
    locked = _locked_flags(source)
    _mount(source, inside, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | locked
    if not step.writable:
        flags |= MS_RDONLY
    if step.kind != "device":
        flags |= MS_NODEV
    _mount(None, inside, None, flags)


def _locked_flags(path: str) -> int:
    """The source mount's flags that a remount must keep (a user namespace cannot clear them)."""
    current = os.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS.items() if current & st and ms != MS_RDONLY)


def _probe() -> LayerStatus:
    def attempt() -> str:
        enter_private_mount_namespace()
        base = next(b for b in _BASES if os.path.isdir(b))
        _mount("plugport-probe", base, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k")
        return "ok"

    message = probe.in_child(attempt, _PROBE_TIMEOUT_S)
    if message == "ok":
        return LayerStatus(NAME, True, "mount namespace with a private tmpfs root (pivot_root)")
    reason = message or "the probe did not answer"
    return LayerStatus(NAME, False, f"cannot make a private mount namespace: {reason}")
