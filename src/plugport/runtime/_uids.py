"""Unprivileged uids for plugins when the host runs as root: one per plugin per host state dir,
allocated once from a configured range and kept in a machine-wide SQLite file, so two hosts (or
two workspaces of the host service) never hand the same uid to different plugins, and a plugin's
data dir keeps its owner across restarts. Like systemd's ``DynamicUser``, but stable.

:func:`pick` is the decision (pure); :class:`UidRegistry` keeps the allocations.
"""

from __future__ import annotations

import hashlib
import pwd
import sqlite3
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from plugport._sqlite import connect, create_schema, immediate
from plugport.errors import ResourceLimitExceededError

__all__ = ["DEFAULT_RANGE", "DEFAULT_REGISTRY", "UidRegistry", "pick"]

# Above the ranges useradd (1000-60000), systemd's DynamicUser (61184-65519) and systemd's
# container ranges (524288-1879048191) hand out, below 2^31 (signed-int trouble).
DEFAULT_RANGE = (1_900_000_000, 1_900_999_999)
DEFAULT_REGISTRY = Path("/var/lib/plugport/worker-uids.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS worker_uids (
    state_dir TEXT NOT NULL,
    plugin TEXT NOT NULL,
    uid INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (state_dir, plugin)
)
"""


def pick(
    key: str, first: int, last: int, taken: Collection[int], exists: Callable[[int], bool]
) -> int | None:
    """A free uid for ``key``: probing from a start derived from the key (so allocations spread
    and rarely collide), skipping uids already allocated or known to the system's user database.
    None when the range is full."""
    size = last - first + 1
    start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % size
    for offset in range(size):
        uid = first + (start + offset) % size
        if uid not in taken and not exists(uid):
            return uid
    return None


def _known_to_system(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


class UidRegistry:
    """The machine-wide allocation file; safe across processes (SQLite's own locking)."""

    def __init__(
        self, path: Path = DEFAULT_REGISTRY, uid_range: tuple[int, int] = DEFAULT_RANGE
    ) -> None:
        first, last = uid_range
        if not 0 < first <= last < 2**31:
            raise ValueError(f"worker uid range {uid_range} must be within 1..2^31-1")
        self.path = path
        self.first, self.last = first, last
        self._lock = threading.Lock()
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._db = connect(path, timeout_s=30, rows=False)
        with immediate(self._db, self._lock) as db:
            create_schema(db, _SCHEMA)

    def uid_for(self, state_dir: Path, plugin: str) -> int:
        """The plugin's uid under ``state_dir``, allocated now if it has none."""
        key = str(state_dir.resolve())
        with immediate(self._db, self._lock) as db:
            row = db.execute(
                "SELECT uid FROM worker_uids WHERE state_dir = ? AND plugin = ?", (key, plugin)
            ).fetchone()
            if row is not None:
                return int(row[0])
            self._forget_gone(db)
            taken = {int(uid) for (uid,) in db.execute("SELECT uid FROM worker_uids")}
            uid = pick(f"{key}\0{plugin}", self.first, self.last, taken, _known_to_system)
            if uid is None:
                raise ResourceLimitExceededError(
                    plugin,
                    "worker_uid_range",
                    f"every uid in {self.first}-{self.last} is allocated; widen the range",
                )
            db.execute("INSERT INTO worker_uids VALUES (?, ?, ?)", (key, plugin, uid))
            return uid

    def release(self, state_dir: Path, plugin: str) -> None:
        with immediate(self._db, self._lock) as db:
            db.execute(
                "DELETE FROM worker_uids WHERE state_dir = ? AND plugin = ?",
                (str(state_dir.resolve()), plugin),
            )

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _forget_gone(db: sqlite3.Connection) -> None:
        """Allocations of host state dirs that no longer exist are free again."""
        gone = [
            (state_dir,)
            for (state_dir,) in db.execute("SELECT DISTINCT state_dir FROM worker_uids")
            if not Path(state_dir).is_dir()
        ]
        db.executemany("DELETE FROM worker_uids WHERE state_dir = ?", gone)
