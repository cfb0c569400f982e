"""Asking a plugin for one of its UI surfaces and turning the answer into something a page can
show: a checked component tree, or a :class:`SurfaceFailure` that the page draws as an error
tile. A plugin that raises, hangs past the host's UI deadline or answers with a tree outside the
schema never breaks the page around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugport.components import ComponentError, check_tree, widget_config
from plugport.errors import (
    InvalidInputError,
    PermissionDeniedError,
    PluginCallError,
    PluginRuntimeError,
    ResourceLimitExceededError,
)
from plugport.sdk._ui import UiRequest

if TYPE_CHECKING:
    from plugport.runtime.supervisor import Supervisor

__all__ = ["DEFAULT_UI_TIMEOUT_MS", "MIN_REFRESH_S", "Rendered", "SurfaceFailure", "UiSurfaces"]

DEFAULT_UI_TIMEOUT_MS = 5_000
"""How long a page waits for one surface: a tile that takes longer shows its error."""
MIN_REFRESH_S = 5
"""The shortest refresh interval the host allows a widget, whatever its manifest says."""

logger = logging.getLogger("plugport.host.ui")


@dataclass(frozen=True)
class SurfaceFailure:
    """Why a surface could not be shown: ``kind`` is ``raised``, ``timeout``, ``invalid``
    (the tree broke the schema), ``refused`` (not contributed or not granted) or ``crashed``;
    ``message`` is safe to show (no traceback, no secret)."""

    kind: str
    message: str


@dataclass(frozen=True)
class Rendered:
    """One answer: ``tree`` (checked) or ``failure``; ``value`` is a view's or field's raw
    answer; ``version`` the surface's invalidation count when it was asked."""

    plugin: str
    surface: str
    kind: str
    version: int
    tree: Any = None
    value: Any = None
    failure: SurfaceFailure | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None


class UiSurfaces:
    """One host's UI surfaces: which exist, and asking their handlers under a deadline."""

    def __init__(self, supervisor: Supervisor, *, timeout_ms: int = DEFAULT_UI_TIMEOUT_MS) -> None:
        self.supervisor = supervisor
        self.timeout_ms = timeout_ms

    def kind_of(self, plugin: str, surface_id: str) -> str:
        manifest = self.supervisor.manifest_of(plugin)
        surface = manifest.contributes.ui_surface(surface_id)
        if surface is None:
            offered = ", ".join(s.id for s in manifest.contributes.ui_surfaces()) or "none"
            raise InvalidInputError(
                f"plugin {plugin!r} contributes no UI surface {surface_id!r} (it has: {offered})"
            )
        from plugport.runtime.capabilities._record import ui_surfaces

        return ui_surfaces(manifest)[surface_id]

    def version(self, plugin: str, surface_id: str) -> int:
        return self.supervisor.services.ui.version(plugin, surface_id)

    def versions(self) -> dict[str, int]:
        """``plugin:surface`` -> invalidation count, for pages that poll for changes."""
        return {f"{p}:{s}": v for (p, s), v in self.supervisor.services.ui.versions().items()}

    async def ask(
        self,
        plugin: str,
        surface_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        action: str | None = None,
        payload: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        workspace: str = "",
    ) -> Rendered:
        """The surface's answer. What the caller got wrong (an unknown surface, a bad config)
        raises :class:`InvalidInputError`; what the plugin got wrong is a failure."""
        kind = self.kind_of(plugin, surface_id)
        settings: dict[str, Any] = dict(config or {})
        if kind == "widget":
            widget = self.supervisor.manifest_of(plugin).contributes.ui_surface(surface_id)
            settings = widget_config(getattr(widget, "config", {}), config)
        request = UiRequest(
            kind,
            surface_id,
            config=settings,
            action=action,
            payload=dict(payload or {}),
            values=dict(values or {}),
            context=dict(context or {}),
            workspace=workspace,
        ).to_wire()
        version = self.version(plugin, surface_id)
        base: dict[str, Any] = {
            "plugin": plugin,
            "surface": surface_id,
            "kind": kind,
            "version": version,
        }
        try:
            answer = await asyncio.wait_for(
                self.supervisor.call_ui(plugin, surface_id, request, timeout_ms=self.timeout_ms),
                timeout=self.timeout_ms / 1000 + 1,  # the runtime's own limit fires first
            )
        except (TimeoutError, PluginRuntimeError) as exc:
            return Rendered(**base, failure=self._failure(plugin, exc), config=settings)
        if kind in ("view", "field") or (kind == "menu" and answer is None):
            return Rendered(**base, value=answer, config=settings)
        try:
            tree = check_tree(
                answer,
                plugin=plugin,
                surface=surface_id,
                overlay_allowed=action is not None or kind == "menu",
            )
        except ComponentError as exc:
            logger.warning("%s", exc)
            return Rendered(**base, failure=SurfaceFailure("invalid", str(exc)), config=settings)
        return Rendered(**base, tree=tree, config=settings)

    def _failure(self, plugin: str, exc: Exception) -> SurfaceFailure:
        if isinstance(exc, PermissionDeniedError):
            return SurfaceFailure("refused", exc.reason)
        timed_out = isinstance(exc, TimeoutError) or (
            isinstance(exc, ResourceLimitExceededError) and exc.limit == "timeout_ms"
        )
        if timed_out:
            return SurfaceFailure(
                "timeout", f"{plugin} did not answer within {self.timeout_ms / 1000:g} s"
            )
        if isinstance(exc, PluginCallError):
            return SurfaceFailure("raised", str(exc))
        return SurfaceFailure("crashed", str(exc))
