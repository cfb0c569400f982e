"""What plugins contribute to the host's UI at run time: messages, commands, and the signal that
a surface (widget, page, view) changed. Component trees are pulled from the plugin's UI
handlers when a page renders (``plugport.host.ui``); a plugin never pushes a tree, so there is
one data path and nothing stale to keep. This registry checks, bounds and keeps the rest."""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plugport._manifest_fields import _command_id
from plugport._permissions import RULES
from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._record import Calls, Capability, Services
from plugport.sdk._api import UiProxy

__all__ = [
    "LEVELS",
    "MAX_TITLE_CHARS",
    "RECORD",
    "ChangeCallback",
    "MetricsSource",
    "UiCalls",
    "UiCommand",
    "UiMessage",
    "UiRegistry",
    "check_contributed",
    "check_level",
    "check_text",
    "check_title",
    "metric_samples",
]

LEVELS = ("info", "warning", "error")
MAX_TITLE_CHARS = 100

logger = logging.getLogger("plugport.ui")

ChangeCallback = Callable[[str, str], None]
"""``on_change(plugin, what)`` with ``what`` one of ``"message"``, ``"command"`` or a surface id
the plugin invalidated: tells the host's front end to re-read or re-render that part."""
MetricsSource = Callable[[], Iterable[Any]]
"""The host's metric families (``prometheus_client`` ``Metric`` objects), read when a plugin
with ``ui = ["metrics"]`` asks."""
MAX_METRIC_SAMPLES = 500


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


def metric_samples(families: Iterable[Any], prefix: str) -> list[dict[str, Any]]:
    """Samples whose name starts with ``prefix`` as ``{"name", "labels", "value"}``, sorted,
    at most :data:`MAX_METRIC_SAMPLES` (a plugin asks for what it charts, not a dump)."""
    if not isinstance(prefix, str) or len(prefix) > 200:
        raise InvalidInputError("prefix must be a string of at most 200 characters")
    found = [
        {"name": sample.name, "labels": dict(sample.labels), "value": float(sample.value)}
        for family in families
        for sample in family.samples
        if sample.name.startswith(prefix) and not sample.name.endswith("_created")
    ]
    found.sort(key=lambda s: (s["name"], sorted(s["labels"].items())))
    return found[:MAX_METRIC_SAMPLES]


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
        clock: Callable[[], float] = time.time,
        on_change: ChangeCallback | None = None,
        metrics: MetricsSource | None = None,
    ) -> None:
        self.max_messages_per_plugin = max_messages_per_plugin
        self.max_text_chars = max_text_chars
        self._clock = clock
        self._on_change = on_change
        self.metrics_source = metrics
        # Messages carry a global sequence number so the all-plugins view keeps posting order.
        self._messages: dict[str, deque[tuple[int, UiMessage]]] = {}
        self._sequence = itertools.count()
        self._commands: dict[tuple[str, str], UiCommand] = {}
        self._versions: dict[tuple[str, str], int] = {}

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

    # --- surfaces -------------------------------------------------------------------------------

    def invalidate(self, plugin: str, surface_id: str, *, contributed: Mapping[str, str]) -> int:
        """Mark a contributed surface changed; returns its new version, which pages compare to
        the one they rendered to know when to ask the handler again."""
        surface_id = check_contributed("surface_id", surface_id, contributed, plugin)
        version = self._versions.get((plugin, surface_id), 0) + 1
        self._versions[plugin, surface_id] = version
        self._changed(plugin, surface_id)
        return version

    def version(self, plugin: str, surface_id: str) -> int:
        """How many times the surface was invalidated (0: never)."""
        return self._versions.get((plugin, surface_id), 0)

    def versions(self, plugin: str | None = None) -> dict[tuple[str, str], int]:
        return {k: v for k, v in sorted(self._versions.items()) if plugin in (None, k[0])}

    def metrics(self, prefix: str = "") -> list[dict[str, Any]]:
        if self.metrics_source is None:
            return []
        return metric_samples(self.metrics_source(), prefix)

    # --- lifecycle -------------------------------------------------------------------------------

    def forget(self, plugin: str) -> None:
        """Drop a deactivated plugin's commands, which would no longer work; keep its messages,
        which explain what it did. Surface versions stay: a page that rendered version 3 must
        not mistake a fresh worker's first invalidation for one it has seen."""
        keys = [key for key in self._commands if key[0] == plugin]
        for key in keys:
            del self._commands[key]
        if keys:
            self._changed(plugin, "command")

    def replace_commands(self, plugin: str, commands: Iterable[UiCommand]) -> None:
        """Make ``commands`` exactly ``plugin``'s registered ones: a hot swap keeps what the new
        worker registered, or puts the old worker's back when it rolls back."""
        wanted = {(plugin, c.id): c for c in commands if c.plugin == plugin}
        current = {key: c for key, c in self._commands.items() if key[0] == plugin}
        if wanted.keys() == current.keys() and all(wanted[k] is current[k] for k in wanted):
            return
        for key in current:
            del self._commands[key]
        self._commands.update(wanted)
        self._changed(plugin, "command")

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
    """``api.ui.*``: messages, commands, invalidating surfaces (each only as the manifest
    contributes) and reading the host's metrics."""

    def message(self, text: str, level: str = "info") -> None:
        self.services.ui.post_message(self.plugin, text, level)

    def register_command(self, command_id: str, title: str = "") -> None:
        self.services.ui.register_command(
            self.plugin, command_id, title, contributed=self.grants.commands
        )

    def unregister_command(self, command_id: str) -> bool:
        return self.services.ui.unregister_command(self.plugin, command_id)

    def invalidate(self, surface_id: str) -> None:
        self.services.ui.invalidate(self.plugin, surface_id, contributed=self.grants.ui_surfaces)

    def update_widget(self, widget_id: str, data: Any = None) -> None:
        """Deprecated since 0.4 (the host pulls trees): invalidates the widget; ``data`` is
        ignored."""
        self.invalidate(widget_id)

    def metrics(self, prefix: str = "") -> list[dict[str, Any]]:
        return self.services.ui.metrics(prefix)


def _purge(services: Services, plugin: str) -> None:
    services.ui.forget(plugin)


RECORD = Capability("ui", RULES["ui"], UiCalls, UiProxy, _purge)
