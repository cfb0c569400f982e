"""The worker's sandbox: kernel layers applied in the forked worker before any plugin code is
imported, in :data:`LAYERS` order, and a report of which are in force.

Order, and why:

1. ``environment``: scrub the environment, sweep fds, chdir to the data dir, while the process
   still has every right to do so.
2. ``rlimits``: memory, CPU, file and fd ceilings, before anything big is allocated.
3. ``parent_death``: from here on the worker dies with the zygote.
4. ``pid_namespace``: the worker was born pid 1 of its own PID namespace (the zygote's spawn did
   it); this checks and reports it.
5. ``filesystem``: a mount namespace whose root holds only the code, the interpreter and the data
   dir; binding host paths needs the host's rights, so before ``identity``.
6. ``quota``: reports whether the data dir is a size-limited volume (mounted by the zygote) or
   the host's measurement is the fallback.
7. ``identity``: a root host's worker becomes the plugin's own unprivileged uid.
8. ``namespaces``: user + network namespace (and ``RLIMIT_NPROC``, which only means something
   inside it); writing the uid/gid maps needs the capabilities the next layer drops.
9. ``no_new_privs``: no privilege gain, every capability cleared; Landlock and seccomp require it.
10. ``landlock``: filesystem, TCP, and signal/abstract-socket scoping; needs no_new_privs.
11. ``seccomp``: last, because it refuses syscalls the layers above make (``unshare``), and
   the filter is built for the worker's final pid, the only process it may signal.

The worker is single-threaded while this runs (forked from a single-threaded zygote); the
seccomp filter is installed with TSYNC anyway, so a stray thread could not escape it.

``strict`` checks every layer's availability first and refuses (:class:`SandboxUnavailableError`)
before changing anything; a layer that then fails to apply stops the sequence there.
``best-effort`` applies what it can and reports the rest.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal, cast

from plugport.errors import SandboxUnavailableError
from plugport.runtime.sandbox import (
    environment,
    filesystem,
    identity,
    landlock,
    namespaces,
    pid_namespace,
    process,
    quota,
    rlimits,
    seccomp,
)
from plugport.runtime.sandbox._libc import errno_name
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = [
    "LAYERS",
    "Layer",
    "LayerResult",
    "LayerStatus",
    "Policy",
    "SandboxReport",
    "SandboxSpec",
    "apply_sandbox",
    "doctor",
    "interpreter_paths",
]

Policy = Literal["strict", "best-effort"]


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer: a name and the module functions that probe and apply it, looked up at call
    time so a test can replace them."""

    name: str
    module: ModuleType
    check: str = "available"
    enforce: str = "apply"

    def available(self) -> LayerStatus:
        return cast(Callable[[], LayerStatus], getattr(self.module, self.check))()

    def apply(self, spec: SandboxSpec) -> str:
        """Apply the layer and return what is now in force."""
        return cast(Callable[[SandboxSpec], str], getattr(self.module, self.enforce))(spec)


LAYERS: tuple[Layer, ...] = (
    Layer("environment", environment),
    Layer("rlimits", rlimits),
    Layer("parent_death", process, "parent_death_available", "apply_parent_death"),
    Layer("pid_namespace", pid_namespace),
    Layer("filesystem", filesystem),
    Layer("quota", quota),
    Layer("identity", identity),
    Layer("namespaces", namespaces),
    Layer("no_new_privs", process, "no_new_privs_available", "apply_no_new_privs"),
    Layer("landlock", landlock),
    Layer("seccomp", seccomp),
)


@dataclass(frozen=True, slots=True)
class LayerResult:
    """Whether one layer is in force in this worker, with what it enforces or why it is not."""

    name: str
    applied: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SandboxReport:
    """What :func:`apply_sandbox` achieved, for the worker's ready message and the audit log."""

    policy: Policy
    layers: tuple[LayerResult, ...]

    def __getitem__(self, name: str) -> LayerResult:
        for result in self.layers:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def complete(self) -> bool:
        return all(result.applied for result in self.layers)

    @property
    def missing(self) -> list[str]:
        return [result.name for result in self.layers if not result.applied]

    def as_dict(self) -> dict[str, str]:
        """Layer name -> ``"applied: ..."`` or ``"not applied: ..."``, for JSON and msgpack."""
        return {
            r.name: f"{'applied' if r.applied else 'not applied'}: {r.detail}" for r in self.layers
        }


def apply_sandbox(spec: SandboxSpec, policy: Policy = "strict") -> SandboxReport:
    """Confine the calling process (a freshly forked, single-threaded worker) for good.

    Irreversible: call it only in the worker. Under ``strict`` a missing layer raises
    :class:`SandboxUnavailableError` before anything changes; a layer the kernel refuses while
    applying raises it too, after the layers before it took effect and before any after it.
    """
    if policy not in ("strict", "best-effort"):
        raise ValueError(f"policy must be 'strict' or 'best-effort', not {policy!r}")
    checked = [(layer, layer.available()) for layer in LAYERS if layer.name not in spec.without]
    if policy == "strict":
        for layer, status in checked:
            if not status.available:
                raise SandboxUnavailableError(layer.name, status.detail)
    results = []
    for layer, status in checked:
        if not status.available:
            results.append(LayerResult(layer.name, False, f"unavailable: {status.detail}"))
            continue
        try:
            detail = layer.apply(spec)
        except (LayerFailedError, OSError) as exc:
            reason = _reason(exc)
            if policy == "strict":
                raise SandboxUnavailableError(layer.name, reason) from exc
            results.append(LayerResult(layer.name, False, f"failed: {reason}"))
            continue
        results.append(LayerResult(layer.name, True, detail))
    return SandboxReport(policy, tuple(results))


def doctor() -> list[LayerStatus]:
    """Every layer and whether this machine offers it, for ``plugport doctor``.

    Leaves the calling process as it was: probes that would change it (``unshare``) run in a
    throwaway child; the others only ask the kernel.
    """
    return [layer.available() for layer in LAYERS]


_SYSTEM_PATHS = (
    "/usr/lib",
    "/lib",
    "/lib64",
    "/usr/lib64",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/dev/null",
    "/dev/urandom",
)


def interpreter_paths() -> tuple[Path, ...]:
    """What a worker must keep reading to import stdlib and installed modules lazily: the
    interpreter's prefixes and stdlib, site-packages, the plugport package itself (an editable
    install lives outside site-packages), shared libraries and the dynamic loader's cache, time
    zone data, ``/dev/null`` and ``/dev/urandom``.

    Other ``sys.path`` entries (the host's working directory, its own source tree) are left
    out on purpose: a plugin has no business reading the host application.
    """
    prefixes = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    prefixes |= {Path(sys.base_exec_prefix)}
    candidates = [*prefixes]
    scheme = sysconfig.get_paths()
    candidates += [Path(scheme[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    candidates += [Path(p) for p in site.getsitepackages()]
    for entry in sys.path:
        path = Path(entry)
        if (
            entry
            and path.is_absolute()
            and (
                path.name in ("site-packages", "dist-packages")
                or any(path.is_relative_to(prefix) for prefix in prefixes)
            )
        ):
            candidates.append(path)
    candidates.append(Path(__file__).resolve().parents[2])  # the plugport package
    candidates += [Path(p) for p in _SYSTEM_PATHS]
    seen: dict[Path, None] = {}
    for path in candidates:
        if path.exists():
            seen.setdefault(path, None)
    return tuple(seen)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LayerFailedError):
        return exc.reason
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{errno_name(exc.errno)}: {exc.strerror}{where}"
    return str(exc)
