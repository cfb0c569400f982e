"""The two menu items. The host calls a handler with the context it built from the object the
menu was opened on (``{"menu": "task", "task": ID, "type": TYPE}`` or ``{"menu":
"installation", "plugin": NAME}``) and shows the overlay it answers; ``None`` shows nothing.
Saving or forgetting a note is an action on the same item, answered with the overlay again."""

from __future__ import annotations

from typing import Any

from plugport.errors import ResourceLimitExceededError
from plugport.sdk import Plugin, UiRequest, menu_item
from task_inspector.inspector import (
    FORGET,
    SAVE,
    NoteError,
    TaskTarget,
    check_note,
    note_key,
    plugin_overlay,
    plugin_target,
    runbook_for,
    task_overlay,
    task_target,
)


class TaskInspector(Plugin):
    @menu_item("inspector.task")
    async def inspect_task(self, request: UiRequest) -> Any:
        target = task_target(request.context)
        if target is None:
            return None
        error, typed = "", ""
        if request.action == SAVE:
            typed = request.values.get("note", "")
            error = await self._save(target, typed)
            if not error:
                typed = ""
        elif request.action == FORGET:
            await self.api.storage.delete(note_key(target))
        note = await self.api.storage.get(note_key(target))
        runbooks = await self.api.config.get("runbooks", {})
        return task_overlay(
            target,
            runbook=runbook_for(target.type, runbooks),
            note=note if isinstance(note, str) else None,
            error=error,
            typed=typed if isinstance(typed, str) else "",
        )

    @menu_item("inspector.plugin")
    async def about_plugin(self, request: UiRequest) -> Any:
        plugin = plugin_target(request.context)
        if plugin is None:
            return None
        return plugin_overlay(
            plugin, marketplace_url=await self.api.config.get("marketplace_url", "")
        )

    async def _save(self, target: TaskTarget, typed: Any) -> str:
        """Keep the note; what the form says when it cannot (``""``: kept)."""
        try:
            await self.api.storage.set(note_key(target), check_note(typed))
        except NoteError as exc:
            return str(exc)
        except ResourceLimitExceededError:
            return "The inspector's storage is full: forget the notes of finished tasks first."
        return ""
