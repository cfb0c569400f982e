"""Layer ``environment``: the worker starts from a fixed, minimal environment, no inherited
descriptors but the channel, and its data directory as the working directory, so nothing the
host had lying around (tokens in ``os.environ``, open files, sockets) is reachable by accident."""

from __future__ import annotations

import os
import resource
import signal
import stat
import sys
from pathlib import Path

from plugport.runtime.sandbox._types import LayerStatus, SandboxSpec

__all__ = ["apply", "available", "scrubbed_environment"]

NAME = "environment"


def scrubbed_environment(data_dir: Path) -> dict[str, str]:
    """The whole environment a worker sees; anything else may carry a host secret."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(data_dir),
        "TMPDIR": str(data_dir / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }


def available() -> LayerStatus:
    return LayerStatus(NAME, True, "plain process state; needs no kernel feature")


def apply(spec: SandboxSpec) -> str:
    environment = scrubbed_environment(spec.data_dir)
    _make_tmpdir(spec)
    os.environ.clear()  # also unsetenv()s, so C code reading environ sees the same
    os.environ.update(environment)
    sys.dont_write_bytecode = True  # the code directories are read-only anyway
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        # Forget a directory the zygote may have cached, so TMPDIR is read again.
        tempfile.tempdir = None  # type: ignore[attr-defined]
    _reset_stdio(keep=spec.keep_stdio)
    closed_wakeup = _forget_wakeup_fd(spec.keep_fds)
    _close_fds_except(spec.keep_fds)
    os.chdir(spec.data_dir)
    kept = ", ".join(str(fd) for fd in sorted(spec.keep_fds)) or "none"
    stdio = "kept" if spec.keep_stdio else "stdin/stdout/stderr on /dev/null"
    extra = "; signal wakeup fd dropped" if closed_wakeup else ""
    return f"{len(environment)} variables; fds kept: {kept}; {stdio}; cwd = data dir{extra}"


def _make_tmpdir(spec: SandboxSpec) -> None:
    """``data_dir/tmp``, owned by the plugin's uid when it has its own. The data dir is the
    plugin's to fill, so ``tmp`` may be anything it left there (a symlink to a host file): it is
    never followed, and whatever is not a real directory is replaced."""
    fd = os.open(spec.data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            info = os.stat("tmp", dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink("tmp", dir_fd=fd)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkdir("tmp", 0o700, dir_fd=fd)
        if spec.uid is not None and spec.gid is not None:
            os.chown("tmp", spec.uid, spec.gid, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _reset_stdio(*, keep: bool) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    try:
        targets = (0,) if keep else (0, 1, 2)
        for fd in targets:
            if fd != null:
                os.dup2(null, fd)
    finally:
        if null > 2:
            os.close(null)


def _forget_wakeup_fd(keep_fds: tuple[int, ...]) -> bool:
    """A wakeup fd inherited from the zygote would point at whatever reuses its number once
    the sweep closes it; only the main thread may change it, which the worker is."""
    try:
        previous = signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread: nothing inherited to forget
        return False
    if previous in keep_fds:
        signal.set_wakeup_fd(previous)
        return False
    return previous != -1


def _close_fds_except(keep_fds: tuple[int, ...]) -> None:
    # closerange() is one close_range(2) call per gap, so an fd table of any size costs little.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    start = 3
    for fd in sorted(set(keep_fds)):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1
    os.closerange(start, max(limit, start + 1))
