"""Layer ``quota``: the data dir's size and file count are enforced by the kernel at the moment
of writing. When the host is root and the machine has ``mkfs.ext4`` and loop devices, each
plugin's data dir is an ext4 volume of its own (an image file next to it, sized to the quota with
an inode count), mounted by the zygote in its private mount namespace (``runtime/volumes.py``): a
write past the quota fails in the plugin with ``ENOSPC`` and the plugin keeps running.

Elsewhere (an unprivileged host, or ``data_volumes=False``) the fallback is the host's
measurement at every start and health ping: a plugin found over its quota is stopped and the
reason audited. Both are
reported here and by ``plugport doctor``; neither refuses a strict start.
"""

from __future__ import annotations

import os

from plugport.runtime.sandbox._types import MIB, LayerFailedError, LayerStatus, SandboxSpec

__all__ = ["apply", "available"]

NAME = "quota"
FALLBACK = "measured by the host at every start and health ping; stopped when over"


_cache: dict[str, LayerStatus] = {}


def available() -> LayerStatus:
    """Cached: a fact of the machine, asked once by the zygote rather than by every worker."""
    if NAME not in _cache:
        _cache[NAME] = _available()
    return _cache[NAME]


def _available() -> LayerStatus:
    from plugport.runtime import volumes  # the runtime's module; imported when first asked

    reason = volumes.unsupported_reason()
    if reason is None:
        return LayerStatus(
            NAME,
            True,
            "an ext4 volume per plugin: ENOSPC at the moment of writing (with data_volumes=False: "
            + FALLBACK
            + ")",
        )
    return LayerStatus(NAME, True, f"fallback ({reason}): {FALLBACK}")


def apply(spec: SandboxSpec) -> str:
    if spec.data_quota_bytes is None:
        return f"fallback: {FALLBACK}"
    info = os.statvfs(spec.data_dir)
    size = info.f_blocks * info.f_frsize
    if size > 2 * spec.data_quota_bytes + 16 * MIB:
        raise LayerFailedError(f"the data dir is not its {spec.data_quota_bytes} byte volume")
    size_mb = size // MIB
    return (
        f"data dir is its own volume: {size_mb} MiB and {info.f_files} inodes, "
        "ENOSPC at the moment of writing"
    )
