"""A workspace's dashboards, in ``HOME/ui/dashboards.sqlite`` (so deleting the workspace's home
deletes them): one layout for the workspace, and one per token that arranged its own. The
layout rules are in :mod:`plugport.host.service._layout_rules`; this store only keeps their
results, each change in one transaction."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from plugport._sqlite import connect, create_schema, immediate
from plugport.host.service._layout_rules import Tile

__all__ = ["WORKSPACE_LAYOUT", "DashboardStore"]

WORKSPACE_LAYOUT = ""
"""The owner of the workspace's shared layout; a token's own layout is owned by its prefix."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (
    owner TEXT NOT NULL,          -- '' for the workspace's layout, else a token prefix
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    plugin TEXT NOT NULL,
    widget TEXT NOT NULL,
    config TEXT NOT NULL,         -- JSON, held to the widget's schema when it was set
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE TABLE IF NOT EXISTS layouts (
    owner TEXT PRIMARY KEY        -- owners that saved a layout, even an empty one
)
"""


class DashboardStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self._db = connect(path)
        with immediate(self._db, self._lock) as db:
            create_schema(db, _SCHEMA)

    def owners(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT owner FROM layouts ORDER BY owner")]

    def layout(self, owner: str) -> tuple[str, list[Tile]]:
        """``owner``'s layout when it saved one, else the workspace's: (whose it is, tiles)."""
        with self._lock:
            saved = {r[0] for r in self._db.execute("SELECT owner FROM layouts")}
            whose = owner if owner in saved else WORKSPACE_LAYOUT
            rows = self._db.execute(
                "SELECT id, plugin, widget, config, width, height FROM tiles WHERE owner = ? "
                "ORDER BY position",
                (whose,),
            ).fetchall()
        return whose, [Tile(r[0], r[1], r[2], json.loads(r[3]), int(r[4]), int(r[5])) for r in rows]

    def save(self, owner: str, tiles: list[Tile]) -> None:
        with immediate(self._db, self._lock) as db:
            db.execute("DELETE FROM tiles WHERE owner = ?", (owner,))
            db.execute("INSERT OR IGNORE INTO layouts (owner) VALUES (?)", (owner,))
            db.executemany(
                "INSERT INTO tiles (owner, position, id, plugin, widget, config, width, height) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        owner,
                        i,
                        t.id,
                        t.plugin,
                        t.widget,
                        json.dumps(dict(t.config)),
                        t.width,
                        t.height,
                    )
                    for i, t in enumerate(tiles)
                ],
            )

    def change(self, owner: str, edit: Callable[[list[Tile]], list[Tile]]) -> list[Tile]:
        """Apply ``edit`` to the layout ``owner`` sees and save the result as ``owner``'s."""
        with self._lock:
            _, tiles = self.layout(owner)
            changed = edit(tiles)
            self.save(owner, changed)
            return changed

    def reset(self, owner: str) -> None:
        """Forget ``owner``'s own layout: it sees the workspace's again."""
        with immediate(self._db, self._lock) as db:
            db.execute("DELETE FROM tiles WHERE owner = ?", (owner,))
            db.execute("DELETE FROM layouts WHERE owner = ?", (owner,))

    def purge_plugin(self, plugin: str) -> int:
        """Remove every tile of ``plugin`` from every layout (uninstall with ``--purge``)."""
        with immediate(self._db, self._lock) as db:
            return db.execute("DELETE FROM tiles WHERE plugin = ?", (plugin,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
