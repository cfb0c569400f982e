"""Dashboard layouts, decided without I/O: a layout is an ordered list of tiles, each a widget of
an installed plugin with its settings and its size on a four-column grid. Adding, removing,
moving, resizing and configuring return a new list or raise a :class:`FieldError` naming what
was wrong; nothing here touches the database."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from plugport.host.service.store import FieldError

__all__ = [
    "MAX_TILES",
    "SIZES",
    "Tile",
    "add_tile",
    "configure_tile",
    "move_tile",
    "remove_tile",
    "resize_tile",
    "tile_at",
]

MAX_TILES = 50
SIZES = {"small": (1, 1), "medium": (2, 1), "large": (4, 2)}
"""A widget's declared size -> (columns, rows) of the tile it starts as."""
MAX_WIDTH = 4
MAX_HEIGHT = 3


@dataclass(frozen=True)
class Tile:
    id: str
    plugin: str
    widget: str
    config: Mapping[str, Any] = field(default_factory=dict)
    width: int = 2
    height: int = 1

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plugin": self.plugin,
            "widget": self.widget,
            "config": dict(self.config),
            "width": self.width,
            "height": self.height,
        }


def tile_at(tiles: Sequence[Tile], tile_id: str) -> int:
    for index, tile in enumerate(tiles):
        if tile.id == tile_id:
            return index
    raise FieldError("tile", f"no tile {tile_id!r} on this dashboard")


def add_tile(
    tiles: Sequence[Tile], plugin: str, widget: str, size: str, config: Mapping[str, Any]
) -> tuple[list[Tile], Tile]:
    if len(tiles) >= MAX_TILES:
        raise FieldError("widget", f"a dashboard holds at most {MAX_TILES} tiles (max_tiles)")
    width, height = SIZES.get(size, SIZES["medium"])
    tile = Tile(secrets.token_hex(6), plugin, widget, dict(config), width, height)
    return [*tiles, tile], tile


def remove_tile(tiles: Sequence[Tile], tile_id: str) -> list[Tile]:
    index = tile_at(tiles, tile_id)
    return [*tiles[:index], *tiles[index + 1 :]]


def move_tile(tiles: Sequence[Tile], tile_id: str, direction: str) -> list[Tile]:
    """``earlier`` or ``later`` by one place, ``first`` or ``last``."""
    index = tile_at(tiles, tile_id)
    moved = list(tiles)
    tile = moved.pop(index)
    targets = {"earlier": max(index - 1, 0), "later": index + 1, "first": 0, "last": len(moved)}
    if direction not in targets:
        raise FieldError("direction", f"must be one of {', '.join(targets)}, not {direction!r}")
    moved.insert(min(targets[direction], len(moved)), tile)
    return moved


def resize_tile(tiles: Sequence[Tile], tile_id: str, width: int, height: int) -> list[Tile]:
    index = tile_at(tiles, tile_id)
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise FieldError("width", f"must be a whole number of columns from 1 to {MAX_WIDTH}")
    if isinstance(height, bool) or not isinstance(height, int) or not 1 <= height <= MAX_HEIGHT:
        raise FieldError("height", f"must be a whole number of rows from 1 to {MAX_HEIGHT}")
    changed = list(tiles)
    changed[index] = replace(changed[index], width=width, height=height)
    return changed


def configure_tile(tiles: Sequence[Tile], tile_id: str, config: Mapping[str, Any]) -> list[Tile]:
    """The tile with new settings (already held to the widget's schema by the caller)."""
    index = tile_at(tiles, tile_id)
    changed = list(tiles)
    changed[index] = replace(changed[index], config=dict(config))
    return changed
