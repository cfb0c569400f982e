"""What plugins contribute to the host's UI: messages, commands and widget data. The host does
all rendering; this registry only checks, bounds and keeps the data plugins hand it."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from plugport._manifest_fields import _command_id
from plugport._permissions import RULES
from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._json import encode_json
from plugport.runtime.capabilities._record import Calls, Capability, Services
from plugport.sdk._api import UiProxy

__all__ = [
    "LEVELS",
    "MAX_TITLE_CHARS",
    "RECORD",
    "ChangeCallback",
    "UiCalls",
    "UiCommand",
    "UiMessage",
    "UiRegistry",
    "UiWidget",
    "check_contributed",
    "check_level",
    "check_text",
    "check_title",
    "encode_data",
]

LEVELS = ("info", "warning", "error")
MAX_TITLE_CHARS = 100

logger = logging.getLogger("plugport.ui")

ChangeCallback = Callable[[str, str], None]
"""``on_change(plugin, what)`` with ``what`` one of ``"message"``, ``"command"``, ``"widget"``:
tells the host's front end to re-read that part of the registry."""


@dataclass(frozen=True)
class UiMessage:
    plugin: str
    level: str
    text: str
    at: float  # epoch seconds


@dataclass(frozen=True)
class UiCommand:
    plugin: str
    id: str
    title: str


@dataclass(frozen=True)
class UiWidget:
    plugin: str
    id: str
    title: str
    data: Any  # decoded JSON, the registry's own copy
    updated_at: float  # epoch seconds


# --- decisions -----------------------------------------------------------------------------------


def check_level(level: object) -> str:
    if level not in LEVELS:
        raise InvalidInputError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    return str(level)


def check_text(text: object, max_chars: int) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, not {type(text).__name__}")
    if not 1 <= len(text) <= max_chars:
        raise InvalidInputError(f"text must be 1 to {max_chars} characters long; it is {len(text)}")
    return text


def check_title(title: object) -> str:
    if not isinstance(title, str):
        raise InvalidInputError(f"title must be a string, not {type(title).__name__}")
    if not 1 <= len(title) <= MAX_TITLE_CHARS:
        raise InvalidInputError(
            f"title must be 1 to {MAX_TITLE_CHARS} characters long; it is {len(title)}"
        )
    return title


def check_contributed(
    argument: str, value: object, contributed: Mapping[str, str], plugin: str
) -> str:
    """Return ``value`` if the plugin's manifest contributes it, so a plugin can only fill the
    slots its users saw when they installed it, never invent new ones at run time."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{argument} must be a string, not {type(value).__name__}")
    try:
        _command_id(value)
    except ValueError as exc:
        raise InvalidInputError(f"{argument}: {exc}") from None
    if value not in contributed:
        known = ", ".join(sorted(contributed)) or "none"
        raise InvalidInputError(
            f"{argument} {value!r} is not contributed by plugin {plugin!r}; its manifest "
            f"contributes: {known}"
        )
    return value


def encode_data(data: Any, limit: int, plugin: str) -> bytes:
    """Widget data as compact UTF-8 JSON, the form that is measured and stored, so the front
    end can always serialise what the registry holds."""
    return encode_json(data, "widget data", plugin=plugin, limit=limit, limit_name="widget_bytes")


# --- the registry --------------------------------------------------------------------------------


class UiRegistry:
    """Per-plugin messages (a bounded ring), commands and widgets, checked on the way in.

    Permission checks happen in the broker before any call gets here. Every refused call raises
    before touching state, so a refusal never leaves a partial change behind.
    """

    def __init__(
        self,
        *,
        max_messages_per_plugin: int = 100,
        max_text_chars: int = 2000,
        max_widget_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
        on_change: ChangeCallback | None = None,
    ) -> None:
        self.max_messages_per_plugin = max_messages_per_plugin
        self.max_text_chars = max_text_chars
        self.max_widget_bytes = max_widget_bytes
        self._clock = clock
        self._on_change = on_change
        # Messages carry a global sequence number so the all-plugins view keeps posting order.
        self._messages: dict[str, deque[tuple[int, UiMessage]]] = {}
        self._sequence = itertools.count()
        self._commands: dict[tuple[str, str], UiCommand] = {}
        self._widgets: dict[tuple[str, str], UiWidget] = {}

    # --- messages --------------------------------------------------------------------------------

    def post_message(self, plugin: str, text: str, level: str = "info") -> UiMessage:
        """Keep a message; past ``max_messages_per_plugin`` the plugin's oldest one is dropped."""
        message = UiMessage(
            plugin, check_level(level), check_text(text, self.max_text_chars), self._clock()
        )
        ring = self._messages.setdefault(plugin, deque(maxlen=self.max_messages_per_plugin))
        ring.append((next(self._sequence), message))
        self._changed(plugin, "message")
        return message

    def messages(self, plugin: str | None = None, *, limit: int = 100) -> list[UiMessage]:
        """The latest ``limit`` messages of one plugin or of all, newest last."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be a whole number >= 0, not {limit!r}")
        if plugin is None:
            entries = sorted((e for ring in self._messages.values() for e in ring), key=_first)
        else:
            entries = list(self._messages.get(plugin, ()))
        return [message for _, message in entries[-limit:]] if limit else []

    # --- commands --------------------------------------------------------------------------------

    def register_command(
        self, plugin: str, command_id: str, title: str, *, contributed: Mapping[str, str]
    ) -> UiCommand:
        """Show a command the manifest contributes; an empty ``title`` means the manifest's.
        Registering the same id again replaces its title."""
        command_id = check_contributed("command_id", command_id, contributed, plugin)
        command = UiCommand(
            plugin, command_id, check_title(contributed[command_id] if title == "" else title)
        )
        self._commands[plugin, command_id] = command
        self._changed(plugin, "command")
        return command

    def unregister_command(self, plugin: str, command_id: str) -> bool:
        """Whether the command was registered (and is now gone)."""
        if not isinstance(command_id, str):
            raise InvalidInputError(f"command_id must be a string, not {type(command_id).__name__}")
        if self._commands.pop((plugin, command_id), None) is None:
            return False
        self._changed(plugin, "command")
        return True

    def commands(self, plugin: str | None = None) -> list[UiCommand]:
        return [c for key, c in sorted(self._commands.items()) if plugin in (None, key[0])]

    # --- widgets ---------------------------------------------------------------------------------

    def update_widget(
        self, plugin: str, widget_id: str, data: Any, *, contributed: Mapping[str, str]
    ) -> UiWidget:
        """Replace a contributed widget's data with a copy, titled as in the manifest."""
        widget_id = check_contributed("widget_id", widget_id, contributed, plugin)
        encoded = encode_data(data, self.max_widget_bytes, plugin)
        widget = UiWidget(
            plugin, widget_id, contributed[widget_id], json.loads(encoded), self._clock()
        )
        self._widgets[plugin, widget_id] = widget
        self._changed(plugin, "widget")
        return widget

    def widgets(self, plugin: str | None = None) -> list[UiWidget]:
        """Sorted by (plugin, id)."""
        return [w for key, w in sorted(self._widgets.items()) if plugin in (None, key[0])]

    # --- lifecycle -------------------------------------------------------------------------------

    def forget(self, plugin: str) -> None:
        """Drop a deactivated plugin's commands and widgets, which would no longer work; keep its
        messages, which explain what it did."""
        for store, what in ((self._commands, "command"), (self._widgets, "widget")):
            keys = [key for key in store if key[0] == plugin]
            for key in keys:
                del store[key]
            if keys:
                self._changed(plugin, what)

    def _changed(self, plugin: str, what: str) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(plugin, what)
        except Exception:
            logger.exception("on_change(%r, %r) failed", plugin, what)


def _first(entry: tuple[int, UiMessage]) -> int:
    return entry[0]


class UiCalls(Calls):
    """``api.ui.*``: messages, commands and widget data, each only as the manifest contributes."""

    def message(self, text: str, level: str = "info") -> None:
        self.services.ui.post_message(self.plugin, text, level)

    def register_command(self, command_id: str, title: str = "") -> None:
        self.services.ui.register_command(
            self.plugin, command_id, title, contributed=self.grants.commands
        )

    def unregister_command(self, command_id: str) -> bool:
        return self.services.ui.unregister_command(self.plugin, command_id)

    def update_widget(self, widget_id: str, data: Any) -> None:
        self.services.ui.update_widget(
            self.plugin, widget_id, data, contributed=self.grants.widgets
        )


def _purge(services: Services, plugin: str) -> None:
    services.ui.forget(plugin)


RECORD = Capability("ui", RULES["ui"], UiCalls, UiProxy, _purge)
