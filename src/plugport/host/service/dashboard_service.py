"""A workspace's dashboard: which widgets its enabled plugins offer, the layout a token sees
(the workspace's, or the token's own), changes to it, and one tile rendered on its own so a
slow or failing widget only ever costs its own tile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from plugport.components import widget_config
from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.service import _layout_rules as rules
from plugport.host.service._layout_rules import Tile
from plugport.host.service.dashboards import WORKSPACE_LAYOUT
from plugport.host.service.store import FieldError, Principal
from plugport.host.ui.surfaces import Rendered

if TYPE_CHECKING:
    from plugport.host.service.service import HostService
    from plugport.host.service.workspaces import Workspace

__all__ = ["DashboardService", "granted_ui"]


def granted_ui(installation: Any) -> list[str]:
    """The ``permissions.ui`` surfaces the operator consented to for ``installation``."""
    ui = (installation.permissions or {}).get("ui") or []
    return [str(s) for s in ui]


class DashboardService:
    def __init__(self, service: HostService) -> None:
        self.service = service

    async def _workspace(self, ws: str) -> Workspace:
        workspace = self.service.workspace(ws)
        await workspace.started()
        return workspace

    async def catalogue(self, ws: str) -> list[dict[str, Any]]:
        """Widgets a user may add: those of enabled plugins granted ``ui = ["widgets"]``."""
        workspace = await self._workspace(ws)
        found = []
        for installation in workspace.host.state.installations():
            if not installation.enabled or "widgets" not in granted_ui(installation):
                continue
            manifest = workspace.host.supervisor.manifest_of(installation.name)
            for widget in manifest.contributes.widgets:
                found.append(
                    {
                        "plugin": installation.name,
                        "widget": widget.id,
                        "title": widget.title,
                        "description": widget.description,
                        "size": widget.size,
                        "refresh_s": self.refresh_s(widget.refresh_s),
                        "config_schema": widget.config,
                    }
                )
        return found

    def refresh_s(self, declared: int) -> int:
        return max(declared, self.service.settings.ui_min_refresh_s)

    def owner(self, principal: Principal, whose: str | None = None) -> str:
        return principal.prefix if whose == "mine" else WORKSPACE_LAYOUT

    async def layout(self, ws: str, principal: Principal) -> dict[str, Any]:
        workspace = await self._workspace(ws)
        whose, tiles = workspace.dashboards.layout(principal.prefix)
        return {
            "workspace": ws,
            "own": whose != WORKSPACE_LAYOUT,
            "tiles": [self._tile_public(workspace, t) for t in tiles],
        }

    def _tile_public(self, workspace: Workspace, tile: Tile) -> dict[str, Any]:
        public = tile.public()
        installation = workspace.host.state.get(tile.plugin)
        widget = None
        if installation is not None:
            manifest = workspace.host.supervisor.manifest_of(tile.plugin)
            widget = next((w for w in manifest.contributes.widgets if w.id == tile.widget), None)
        public["title"] = widget.title if widget else tile.widget
        public["refresh_s"] = self.refresh_s(widget.refresh_s) if widget else 0
        public["available"] = bool(
            installation is not None
            and installation.enabled
            and widget is not None
            and "widgets" in granted_ui(installation)
        )
        return public

    async def change(
        self, ws: str, principal: Principal, edit: Callable[[list[Tile]], list[Tile]]
    ) -> dict[str, Any]:
        workspace = await self._workspace(ws)
        whose, _ = workspace.dashboards.layout(principal.prefix)
        workspace.dashboards.change(whose, edit)
        return await self.layout(ws, principal)

    async def add(
        self,
        ws: str,
        principal: Principal,
        plugin: str,
        widget: str,
        config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        offered = {(w["plugin"], w["widget"]): w for w in await self.catalogue(ws)}
        entry = offered.get((plugin, widget))
        if entry is None:
            raise FieldError(
                "widget",
                f"{plugin} offers no widget {widget!r} here (the plugin must be enabled and "
                "granted 'widgets')",
            )
        settings = self._settings(entry["config_schema"], config)
        added: list[Tile] = []

        def edit(tiles: list[Tile]) -> list[Tile]:
            changed, tile = rules.add_tile(tiles, plugin, widget, entry["size"], settings)
            added.append(tile)
            return changed

        layout = await self.change(ws, principal, edit)
        return layout | {"added": added[0].id}

    def _settings(
        self, schema: Mapping[str, Any], config: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        try:
            return widget_config(schema, config)
        except InvalidInputError as exc:
            field = getattr(exc, "field", "")
            raise FieldError(f"config{field}", getattr(exc, "reason", str(exc))) from None

    async def configure(
        self, ws: str, principal: Principal, tile_id: str, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        workspace = await self._workspace(ws)
        _, tiles = workspace.dashboards.layout(principal.prefix)
        tile = tiles[rules.tile_at(tiles, tile_id)]
        schema = self.schema(ws, tile)
        settings = self._settings(schema, config)
        return await self.change(
            ws, principal, lambda t: rules.configure_tile(t, tile_id, settings)
        )

    def schema(self, ws: str, tile: Tile) -> dict[str, Any]:
        """The JSON Schema of the tile's widget settings."""
        workspace = self.service.workspace(ws)
        if workspace.host.state.get(tile.plugin) is None:
            raise NotFoundError("installed plugin", tile.plugin)
        manifest = workspace.host.supervisor.manifest_of(tile.plugin)
        widget = next((w for w in manifest.contributes.widgets if w.id == tile.widget), None)
        if widget is None:
            raise FieldError("tile", f"{tile.plugin} no longer offers widget {tile.widget!r}")
        return dict(widget.config)

    async def own_layout(self, ws: str, principal: Principal, own: bool) -> dict[str, Any]:
        """Start a layout of the token's own (a copy of what it sees) or go back to the
        workspace's."""
        workspace = await self._workspace(ws)
        if own:
            whose, tiles = workspace.dashboards.layout(principal.prefix)
            if whose == WORKSPACE_LAYOUT:
                workspace.dashboards.save(principal.prefix, tiles)
        else:
            workspace.dashboards.reset(principal.prefix)
        return await self.layout(ws, principal)

    async def tile(self, ws: str, principal: Principal, tile_id: str) -> Tile:
        workspace = await self._workspace(ws)
        _, tiles = workspace.dashboards.layout(principal.prefix)
        return tiles[rules.tile_at(tiles, tile_id)]

    async def render(
        self,
        ws: str,
        principal: Principal,
        tile_id: str,
        *,
        action: str | None = None,
        payload: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> tuple[Tile, Rendered | None, str]:
        """The tile, its plugin's answer (``None`` when the widget is unavailable) and why it
        is unavailable."""
        workspace = await self._workspace(ws)
        tile = await self.tile(ws, principal, tile_id)
        public = self._tile_public(workspace, tile)
        if not public["available"]:
            return tile, None, f"{tile.plugin} is not installed, enabled and granted 'widgets'"
        rendered = await workspace.ui.ask(
            tile.plugin,
            tile.widget,
            config=tile.config,
            action=action,
            payload=payload,
            values=values,
            workspace=ws,
        )
        return tile, rendered, ""

    async def versions(self, ws: str) -> dict[str, int]:
        workspace = await self._workspace(ws)
        return workspace.ui.versions()
