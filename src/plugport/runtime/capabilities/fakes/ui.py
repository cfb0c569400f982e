"""The UI fake: what the plugin contributed to the host's UI registry (messages, commands,
widget data), read back as plain JSON-able data for assertions and snapshot tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugport.errors import InvalidInputError

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeUi"]


class FakeUi:
    """One plugin's contributions, without timestamps, so snapshots are stable."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._ui = runtime.services.ui
        self._widgets = dict(grants.widgets)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"level": m.level, "text": m.text} for m in self._ui.messages(self.plugin)]

    @property
    def commands(self) -> dict[str, str]:
        """Registered command id -> title."""
        return {c.id: c.title for c in self._ui.commands(self.plugin)}

    @property
    def widgets(self) -> dict[str, dict[str, Any]]:
        """Widget id -> ``{"title", "data"}`` for every widget the plugin has filled."""
        return {w.id: {"title": w.title, "data": w.data} for w in self._ui.widgets(self.plugin)}

    def widget(self, widget_id: str) -> Any:
        """The data the plugin last gave ``widget_id``."""
        filled = self.widgets
        if widget_id not in filled:
            if widget_id not in self._widgets:
                declared = ", ".join(sorted(self._widgets)) or "none"
                raise InvalidInputError(
                    f"plugin {self.plugin!r} contributes no widget {widget_id!r} "
                    f"(its manifest declares: {declared})"
                )
            raise InvalidInputError(
                f"plugin {self.plugin!r} has not filled widget {widget_id!r} yet "
                "(it calls ui.update_widget to do so)"
            )
        return filled[widget_id]["data"]

    def snapshot(self) -> dict[str, Any]:
        """Everything at once, as plain data: compare it with a stored JSON file."""
        return {"messages": self.messages, "commands": self.commands, "widgets": self.widgets}

    def close(self) -> None:
        """Nothing to release: the registry belongs to the runtime."""
