"""Per-plugin data volumes: the data-dir quota enforced by the kernel when a file is written.

When the host is root and the machine has ``mkfs.ext4``, ``mount`` and loop devices, each plugin's
data dir is backed by an ext4 image next to it (``data/<name>.ext4``), sized to the quota and made
with a fixed inode count, owned by the plugin's uid. The host makes the image (:func:`prepare`,
off the event loop, once; an existing plain data dir is copied in and then emptied); the zygote
mounts it on the data dir inside its own private mount namespace (:class:`Mounts`), once per
image, so the host's mount table never changes and the mounts go away with the zygote. A write
that would pass the quota fails in the plugin with ``ENOSPC``.

Why ext4 images: project quotas need a filesystem mounted with them (this one is not, and
changing that is the operator's call); tmpfs would not survive a restart; a broker-mediated file
API would break ``open()``. No journal: the volume lives only while the zygote does, and a kill
of the worker or the host cannot leave it half-written (the kernel owns the mount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VOLUME_SUFFIX",
    "Mounts",
    "VolumePlan",
    "give",
    "image_path",
    "prepare",
    "unsupported_reason",
]

VOLUME_SUFFIX = ".ext4"
_BLOCK_BYTES = 4096
_INODE_BYTES = 256
_MKFS_TIMEOUT_S = 60.0
_MOUNT_TIMEOUT_S = 10.0
MNT_DETACH = 2


def unsupported_reason() -> str | None:
    """Why volumes cannot be made here (the fallback is used), or None when they can."""
    if os.geteuid() != 0:
        return "the host is not root, so it cannot mount volumes"
    for tool in ("mkfs.ext4", "debugfs", "mount"):
        if _which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists("/dev/loop-control"):
        return "no loop devices (/dev/loop-control is missing)"
    return None


def _which(tool: str) -> str | None:
    return shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """What a plugin's volume must be: its image, size and inode count, and its owner."""

    image: Path
    quota_bytes: int
    inodes: int
    uid: int
    gid: int

    @property
    def image_bytes(self) -> int:
        """The quota's data blocks plus the inode table and ext4's own metadata (bitmaps and
        group descriptors: under 1 %), so what the plugin can write is the quota, to within a
        few blocks."""
        data = -(-self.quota_bytes // _BLOCK_BYTES) * _BLOCK_BYTES
        metadata = self.inodes * _INODE_BYTES + data // 100 + 32 * _BLOCK_BYTES
        return -(-(data + metadata) // _BLOCK_BYTES) * _BLOCK_BYTES


def image_path(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + VOLUME_SUFFIX)


def prepare(plan: VolumePlan, data_dir: Path) -> bool:
    """Make the plugin's image when it does not exist yet (seeded with what ``data_dir`` holds,
    which is then emptied so there is one copy). Returns whether one was made.

    All or nothing: the image is made under a temporary name and renamed into place."""
    if plan.image.exists():
        return False
    partial = plan.image.with_name(plan.image.name + ".partial")
    partial.unlink(missing_ok=True)
    with open(partial, "wb") as handle:
        handle.truncate(plan.image_bytes)
    seed = data_dir if data_dir.is_dir() and any(data_dir.iterdir()) else None
    command = [
        _which("mkfs.ext4") or "mkfs.ext4",
        "-q",
        "-F",
        "-O",
        "^has_journal,^resize_inode",
        "-m",
        "0",
        "-b",
        str(_BLOCK_BYTES),
        "-I",
        str(_INODE_BYTES),
        "-N",
        str(plan.inodes),
        "-E",
        f"root_owner={plan.uid}:{plan.gid},lazy_itable_init=0",
        "-L",
        "plugport-data",
    ]
    if seed is not None:
        give(seed, plan.uid, plan.gid)  # mkfs -d copies owners: the plugin's, not ours
        command += ["-d", str(seed)]
    try:
        subprocess.run(
            [*command, str(partial)],
            check=True,
            capture_output=True,
            timeout=_MKFS_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        # mkfs makes lost+found; the plugin's data dir starts with what it had, nothing else.
        subprocess.run(
            [_which("debugfs") or "debugfs", "-w", "-R", "rmdir /lost+found", str(partial)],
            check=True,
            capture_output=True,
            timeout=_MKFS_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        partial.unlink(missing_ok=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise OSError(f"making {plan.image.name} failed: {detail.decode()[:200]}") from exc
    os.chmod(partial, 0o600)
    os.replace(partial, plan.image)
    if seed is not None:
        for item in list(seed.iterdir()):
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
    return True


def give(root: Path, uid: int, gid: int) -> None:
    """Make ``uid`` own ``root`` and everything in it (links are changed, never followed)."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for parent, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


class Mounts:
    """The zygote's mounted volumes (in its private mount namespace): an image is mounted on its
    data dir once and kept; a replaced image (the plugin was purged and installed again) is
    detached and the new one mounted."""

    def __init__(self) -> None:
        self._mounted: dict[str, tuple[int, int, int]] = {}  # data dir -> (dev, inode, ctime)

    def ensure(self, image: str, data_dir: str) -> None:
        """Mount ``image`` on ``data_dir`` unless it already is; OSError when it cannot."""
        info = os.stat(image)
        # The inode of a purged image is often reused by the next one at once, so the identity
        # has its change time too; and a data dir that was removed (purge) is no longer a mount.
        identity = (info.st_dev, info.st_ino, info.st_ctime_ns)
        if self._mounted.get(data_dir) == identity and os.path.ismount(data_dir):
            return
        if data_dir in self._mounted:
            self._detach(data_dir)
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        try:
            subprocess.run(
                [
                    _which("mount") or "mount",
                    "-t",
                    "ext4",
                    "-o",
                    "loop,nosuid,nodev,noexec,noatime",
                    image,
                    data_dir,
                ],
                check=True,
                capture_output=True,
                timeout=_MOUNT_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.CalledProcessError as exc:
            raise OSError(f"mount failed: {exc.stderr.decode()[:200]}") from None
        except subprocess.SubprocessError as exc:
            raise OSError(f"mount failed: {exc}") from None
        self._mounted[data_dir] = identity

    def _detach(self, data_dir: str) -> None:
        from plugport.runtime.sandbox import _libc

        del self._mounted[data_dir]
        with contextlib.suppress(OSError):  # gone already: removing the data dir detaches it
            _libc.umount2(data_dir, MNT_DETACH)
