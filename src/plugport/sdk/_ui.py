"""What a plugin's UI handlers (``@widget``, ``@page``, ``@menu_item``, ``@field``, ``@view``)
receive: one request to render a surface, or to answer an action taken on it. The handler
returns a component tree (plain dicts, see the components reference); the host checks it and
draws it with its own templates, so a handler never writes markup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SURFACES", "UiRequest"]

SURFACES = ("widget", "page", "menu", "field", "view")


@dataclass(frozen=True, slots=True)
class UiRequest:
    """``surface`` is the kind of contribution and ``id`` its manifest id. ``config`` is the
    widget's settings (the manifest schema's defaults, then the user's), ``action`` the name of
    the button or form the user used (``None``: a plain render), ``payload`` the action's own
    data, ``values`` a submitted form's fields, ``context`` what a menu item was opened on
    (e.g. ``{"menu": "task", "task": "t-1"}``) and, for ``@field`` handlers, ``{"value": ...}``
    to validate. ``workspace`` names the host workspace the user is in."""

    surface: str
    id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    action: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    workspace: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {
            "surface": self.surface,
            "id": self.id,
            "config": dict(self.config),
            "action": self.action,
            "payload": dict(self.payload),
            "values": dict(self.values),
            "context": dict(self.context),
            "workspace": self.workspace,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> UiRequest:
        return cls(
            surface=str(data["surface"]),
            id=str(data["id"]),
            config=dict(data.get("config") or {}),
            action=data.get("action"),
            payload=dict(data.get("payload") or {}),
            values=dict(data.get("values") or {}),
            context=dict(data.get("context") or {}),
            workspace=str(data.get("workspace") or ""),
        )
