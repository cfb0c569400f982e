"""``config.*``: a plugin's settings as the operator set them, checked against the ``config`` JSON
Schema from its manifest and read back with the schema's defaults filled in."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from plugport._permissions import RULES
from plugport.errors import InvalidInputError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.capabilities._record import Calls, Capability, Services
from plugport.sdk._api import ConfigProxy

__all__ = [
    "RECORD",
    "ConfigCalls",
    "PluginSettings",
    "effective_settings",
    "settings_problems",
]

_SCHEMA = """CREATE TABLE IF NOT EXISTS plugin_settings (
    plugin TEXT PRIMARY KEY,
    settings TEXT NOT NULL
)"""


def effective_settings(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The top-level defaults of ``schema``'s properties, overlaid by ``values``.

    Defaults are copied, so a caller that edits the result cannot change the schema."""
    properties = schema.get("properties") or {}
    defaults = {
        name: copy.deepcopy(sub["default"])
        for name, sub in properties.items()
        if isinstance(sub, dict) and "default" in sub
    }
    return defaults | values


def settings_problems(schema: dict[str, Any], values: Any) -> list[str]:
    """Every way ``values`` (with defaults filled in) breaks ``schema``, as
    ``config.<path>: <message>`` lines sorted by path; empty when the settings are valid.

    All problems rather than the first, so an operator fixes the settings in one pass. A schema
    that is itself broken raises :class:`InvalidInputError`: no values could satisfy it."""
    if not isinstance(values, dict):
        return [f"config: settings must be an object, got {type(values).__name__}"]
    if bad := [name for name in values if not isinstance(name, str)]:
        return [f"config: setting names must be strings, got {bad[0]!r}"]
    # Loaded on first use: every host and plugin test imports this module, few check settings.
    import jsonschema
    from referencing.exceptions import Unresolvable

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        raise InvalidInputError(
            f"the config schema is not a valid JSON Schema at '/{where}': {exc.message}"
        ) from None
    validator = jsonschema.Draft202012Validator(schema)
    try:
        errors = sorted(
            validator.iter_errors(effective_settings(schema, values)),
            key=lambda e: (_sort_key(e.absolute_path), e.message),
        )
    except Unresolvable as exc:
        raise InvalidInputError(f"the config schema has an unresolvable $ref: {exc}") from None
    return [f"{_dotted(error.absolute_path)}: {error.message}" for error in errors]


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(["config", *(str(part) for part in path)])


def _sort_key(path: Iterable[str | int]) -> tuple[tuple[int, int, str], ...]:
    # Array indexes sort numerically (2 before 10) and ahead of names at the same depth.
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


class PluginSettings:
    """Operator-set settings, one JSON object per plugin. Only the values given are stored, not
    the defaults, so a new plugin version's defaults apply to every setting left unset."""

    def __init__(self, db: RuntimeDatabase) -> None:
        self.db = db
        with db.transaction() as conn:
            conn.execute(_SCHEMA)

    def set(self, plugin: str, schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """Replace the plugin's settings with ``values`` and return the effective settings.

        Invalid settings raise :class:`InvalidInputError` listing every problem, and the stored
        settings stay as they were."""
        if problems := settings_problems(schema, values):
            count = len(problems)
            raise InvalidInputError(
                "\n".join(
                    [
                        f"invalid settings for plugin {plugin!r} "
                        f"({count} problem{'s' if count != 1 else ''})",
                        *(f"  - {problem}" for problem in problems),
                    ]
                )
            )
        try:
            text = json.dumps(values, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"settings for plugin {plugin!r} are not JSON: {exc}") from None
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO plugin_settings (plugin, settings) VALUES (?, ?) "
                "ON CONFLICT (plugin) DO UPDATE SET settings = excluded.settings",
                (plugin, text),
            )
        return effective_settings(schema, json.loads(text))

    def get(self, plugin: str, schema: dict[str, Any]) -> dict[str, Any]:
        """What the plugin sees: its schema's defaults overlaid by the stored settings."""
        return effective_settings(schema, self.stored(plugin))

    def stored(self, plugin: str) -> dict[str, Any]:
        """Only the values the operator set; ``{}`` when none."""
        rows = self.db.execute("SELECT settings FROM plugin_settings WHERE plugin = ?", (plugin,))
        if not rows:
            return {}
        stored: dict[str, Any] = json.loads(str(rows[0][0]))
        return stored

    def clear(self, plugin: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM plugin_settings WHERE plugin = ?", (plugin,))


class ConfigCalls(Calls):
    """``api.config.*``: the plugin reads its own settings, defaults filled in."""

    def get(self, key: str | None = None, default: Any = None) -> Any:
        settings = self.services.settings.get(self.plugin, dict(self.grants.config_schema))
        return settings if key is None else settings.get(key, default)


def _purge(services: Services, plugin: str) -> None:
    services.settings.clear(plugin)


RECORD = Capability("config", RULES["config"], ConfigCalls, ConfigProxy, _purge)
