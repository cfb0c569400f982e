"""The data every layer shares: what the worker must be confined to (:class:`SandboxSpec`) and
what this kernel can do about it (:class:`LayerStatus`). No I/O here, so layers and tests can
build and compare them freely."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugport.manifest import Limits

__all__ = ["MIB", "LayerFailedError", "LayerStatus", "SandboxSpec"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What one worker may touch and use; every layer reads the part it enforces.

    ``read_only`` holds the plugin's code and everything the interpreter imports lazily (see
    :func:`plugport.runtime.sandbox.interpreter_paths`); ``data_dir`` is the only writable place.
    ``keep_fds`` are descriptors that survive the fd sweep (the host channel); 0-2 are handled by
    ``keep_stdio`` instead. ``max_threads`` becomes ``RLIMIT_NPROC`` inside the worker's own user
    namespace, where it counts only the worker's threads (see ``namespaces.py``). ``uid``/``gid``
    are the unprivileged identity a root host gives the plugin (``identity.py``);
    ``data_quota_bytes`` is set when the data dir is a volume of that size (``quota.py``).
    ``without`` names layers to leave out: only the attack suite sets it, to show that each
    remaining layer holds its line alone; the supervisor never does.
    """

    data_dir: Path
    read_only: tuple[Path, ...]
    memory_mb: int
    cpu_seconds: int
    max_open_files: int = 64
    max_file_bytes: int = 64 * MIB
    max_threads: int = 32
    keep_fds: tuple[int, ...] = ()
    keep_stdio: bool = False
    uid: int | None = None
    gid: int | None = None
    data_quota_bytes: int | None = None
    without: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.data_dir.is_absolute():
            raise ValueError(f"data_dir must be an absolute path, not {str(self.data_dir)!r}")
        relative = [str(p) for p in self.read_only if not p.is_absolute()]
        if relative:
            raise ValueError(f"read_only paths must be absolute: {', '.join(relative)}")
        for name in ("memory_mb", "cpu_seconds", "max_open_files", "max_file_bytes", "max_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if (self.uid is None) != (self.gid is None):
            raise ValueError("uid and gid go together")
        stdio = sorted(fd for fd in self.keep_fds if fd <= 2)
        if stdio:
            raise ValueError(f"keep_fds may not list {stdio}; use keep_stdio for 0, 1 and 2")

    @classmethod
    def from_limits(
        cls,
        limits: Limits,
        *,
        data_dir: Path,
        code_dir: Path,
        read_only: tuple[Path, ...] = (),
        keep_fds: tuple[int, ...] = (),
        keep_stdio: bool = False,
    ) -> SandboxSpec:
        """The spec for a plugin whose effective manifest limits are ``limits``."""
        return cls(
            data_dir=data_dir,
            read_only=(code_dir, *read_only),
            memory_mb=limits.memory_mb,
            cpu_seconds=limits.cpu_seconds,
            keep_fds=keep_fds,
            keep_stdio=keep_stdio,
        )


@dataclass(frozen=True, slots=True)
class LayerStatus:
    """Whether this kernel offers a layer, and the kernel fact that decides it, so ``plugport
    doctor`` and a strict refusal can tell the operator exactly what to change."""

    name: str
    available: bool
    detail: str


class LayerFailedError(Exception):
    """A layer was available but the kernel refused to apply it; ``reason`` is the fact."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
