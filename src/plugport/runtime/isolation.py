"""What a root host adds to each worker it starts: the plugin's own unprivileged uid (from the
machine-wide registry in ``_uids.py``), code that uid can read, and a data volume of the
plugin's quota (``volumes.py``) or, without volumes, a data dir that uid owns. Also what goes
when a plugin is purged. A host that is not root adds nothing: its workers keep its uid.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugport import archive
from plugport.errors import PlugportError, SandboxUnavailableError
from plugport.runtime import volumes
from plugport.runtime._uids import UidRegistry

if TYPE_CHECKING:
    from plugport.runtime._supervised import SupervisorConfig, _Entry

__all__ = ["WorkerIsolation"]

MIB = 1024 * 1024


class WorkerIsolation:
    """One per supervisor. Blocking (files, subprocesses, SQLite): call it from a thread."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self._uids: UidRegistry | None = None  # opened on first need (a root host only)
        self._readable_code: set[Path] = set()

    def spec_fields(self, entry: _Entry) -> dict[str, Any]:
        """The WorkerSpec fields for ``entry``'s next worker (made ready on the way)."""
        if os.geteuid() != 0:
            return {}
        uid = self._registry().uid_for(self.config.state_dir, entry.name)
        self._check_code_readable(entry.install.code_dir, uid)
        fields: dict[str, Any] = {"uid": uid, "gid": uid}
        if self.config.data_volumes and volumes.unsupported_reason() is None:
            plan = volumes.VolumePlan(
                image=volumes.image_path(entry.data_dir),
                quota_bytes=entry.data_quota_mb(self.config) * MIB,
                inodes=self.config.max_data_dir_inodes,
                uid=uid,
                gid=uid,
            )
            volumes.prepare(plan, entry.data_dir)
            fields |= {"data_volume": str(plan.image), "data_quota_bytes": plan.quota_bytes}
        elif entry.data_dir.stat().st_uid != uid:
            volumes.give(entry.data_dir, uid, uid)
        return fields

    def purge(self, name: str, data_dir: Path) -> None:
        """Forget a purged plugin's volume and uid (its data dir is the caller's to remove)."""
        volumes.image_path(data_dir).unlink(missing_ok=True)
        if self._uids is not None:
            self._uids.release(self.config.state_dir, name)

    def close(self) -> None:
        if self._uids is not None:
            self._uids.close()

    def _registry(self) -> UidRegistry:
        if self._uids is None:
            self._uids = UidRegistry(self.config.worker_uid_registry, self.config.worker_uid_range)
        return self._uids

    def _check_code_readable(self, code_dir: Path, uid: int) -> None:
        """The worker reads its code as the plugin's uid, so the code must be readable by
        others (installed code is; a directory of one's own may not be). Checked once per code
        directory; refused with what to change, instead of an ImportError inside the worker."""
        if code_dir in self._readable_code:
            return
        unreadable = _first_unreadable(code_dir)
        if unreadable is not None:
            raise SandboxUnavailableError(
                "identity",
                f"the plugin's code is not readable by its uid {uid}: {unreadable} is mode "
                f"{unreadable.stat().st_mode & 0o777:o}; run: chmod -R o+rX {code_dir}",
            )
        self._readable_code.add(code_dir)


def _first_unreadable(root: Path) -> Path | None:
    """The first entry under ``root`` (itself included) that a uid other than its owner cannot
    read (a directory it cannot also enter), or None. Only what the plugin ships counts (pack's
    rules: ``plugport dev``'s state, a venv, caches and ``.plugportignore``'d files beside the
    code are none of the worker's business), so a source directory runs as its archive would."""
    try:
        shipped = archive.iter_source_files(root)
    except PlugportError:  # pack would refuse the tree (a link): check everything instead
        shipped = [
            os.path.relpath(os.path.join(parent, name), root)
            for parent, _, files in os.walk(root)
            for name in files
        ]
    folders = {"."}
    for name in shipped:  # every directory on the way to a shipped file must be enterable
        parts = name.split("/")[:-1]
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    entries = [(os.path.normpath(os.path.join(root, d)), 0o005) for d in sorted(folders)]
    entries += [(os.path.join(root, name), 0o004) for name in shipped]
    for path, need in entries:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & need != need:
            return Path(path)
    return None
