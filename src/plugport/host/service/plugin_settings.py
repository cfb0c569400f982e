"""A plugin's settings as the host service shows and takes them: one key at a time, checked
against the manifest's ``config`` schema before anything is stored, and secrets never shown.

The rule it protects: a property marked ``"writeOnly": true`` or ``"format": "password"`` is a
secret; its value leaves the host only as "set"/"not set", and an error about it names the key
and the rule it broke, never the value (jsonschema's messages quote the value)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from plugport.host.service.store import FieldError
from plugport.host.ui._extension_rules import widget_key
from plugport.host.ui.render import FieldTypeView

__all__ = ["SettingError", "check_setting", "public_settings", "secret_keys", "without_secrets"]

FORM_TYPES = ("string", "number", "integer", "boolean")
TEXT_TYPES = ("string", "number", "integer")
"""The kinds a plugin's field type may stand in for."""


class SettingError(FieldError):
    """A setting the schema refuses: ``details.field`` is ``config.<key>``, ``details.rule``
    the JSON Schema keyword it broke (``type``, ``minimum``, ``enum`` …, or ``unknown``)."""

    def __init__(self, key: str, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"config.{key}", message)


def secret_keys(schema: Mapping[str, Any]) -> set[str]:
    properties = schema.get("properties") or {}
    return {
        key
        for key, sub in properties.items()
        if isinstance(sub, dict)
        and (sub.get("writeOnly") is True or sub.get("format") == "password")
    }


def check_setting(schema: Mapping[str, Any], key: str, value: Any) -> None:
    """Refuse ``key`` when the schema does not name it (and allows no others), and ``value``
    when it breaks the key's own rules; the whole object is checked again when it is stored."""
    properties = schema.get("properties") or {}
    sub = properties.get(key)
    if sub is None:
        extra = schema.get("additionalProperties", True)
        if extra is False or not properties:
            known = ", ".join(sorted(properties)) or "none"
            raise SettingError(key, "unknown", f"no such setting (its schema names: {known})")
        sub = extra if isinstance(extra, dict) else {}
    if not isinstance(sub, dict):
        return
    secret = key in secret_keys(schema)
    validator = jsonschema.Draft202012Validator(sub)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = errors[0]
        rule = str(error.validator)
        where = "".join(f"[{part!r}]" for part in error.absolute_path)
        said = f"the value breaks '{rule}': {error.validator_value!r}" if secret else error.message
        raise SettingError(key, rule, f"{said}{' at ' + where if where else ''} (rule: {rule})")


def without_secrets(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every secret's value replaced by ``"set"``."""
    secrets = secret_keys(schema)
    return {key: ("set" if key in secrets else value) for key, value in values.items()}


def public_settings(
    name: str,
    schema: Mapping[str, Any],
    effective: Mapping[str, Any],
    stored: Mapping[str, Any],
    missing: list[str],
) -> dict[str, Any]:
    """What the API and the page show: effective values (defaults filled in; secrets as
    "set"/"not set"), which keys are set, required and missing, and the schema."""
    secrets = secret_keys(schema)
    properties = schema.get("properties") or {}
    keys = sorted(properties.keys() | effective.keys())
    return {
        "name": name,
        "values": without_secrets(schema, effective),
        "set": sorted(stored),
        "secrets": {key: ("set" if key in stored else "not set") for key in sorted(secrets)},
        "required": [k for k in schema.get("required") or [] if isinstance(k, str)],
        "missing": missing,
        "keys": keys,
        "schema": dict(schema),
    }


def form_fields(
    schema: Mapping[str, Any],
    settings: Mapping[str, Any],
    field_types: Mapping[str, FieldTypeView] | None = None,
) -> list[dict[str, Any]]:
    """One field per property for the page's form: the input kind (``string``, ``number``,
    ``integer``, ``boolean``, ``enum``, or ``json`` for anything else), its current value as
    text (empty for a secret), and whether it is required, missing or a secret.

    A text or number property whose ``"ui:widget"`` names a plugin's field type
    (``plugin:field-id``; a bare id is the settings' own plugin's) gets ``widget``: the type's
    placeholder, pattern and help when ``field_types`` (the enabled plugins' allowed ones) has
    it, else ``available: false`` and a plain input. A secret never uses one: its value would
    go to the field type's plugin."""
    properties = schema.get("properties") or {}
    values = settings["values"]
    fields = []
    for key in sorted(properties):
        sub = properties[key] if isinstance(properties[key], dict) else {}
        kind = "enum" if "enum" in sub else sub.get("type")
        kind = kind if kind == "enum" or kind in FORM_TYPES else "json"
        secret = key in settings["secrets"]
        widget = None
        named = sub.get("ui:widget")
        if isinstance(named, str) and kind in TEXT_TYPES and not secret:
            widget = _widget(named, settings["name"], field_types or {})
        value = values.get(key)
        if secret or value is None:
            text = ""
        elif kind in {"json", "enum"}:
            text = _json(value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        fields.append(
            {
                "key": key,
                "kind": kind,
                "title": sub.get("title") or key,
                "description": sub.get("description") or "",
                "choices": [_json(c) for c in sub.get("enum", [])],
                "text": text,
                "checked": value is True,
                "secret": secret,
                "secret_state": settings["secrets"].get(key),
                "required": key in settings["required"],
                "missing": key in settings["missing"],
                "set": key in settings["set"],
                "widget": widget,
                "error": None,
            }
        )
    return fields


def _widget(named: str, owner: str, field_types: Mapping[str, FieldTypeView]) -> dict[str, Any]:
    key = widget_key(named, owner) or named
    found = field_types.get(key)
    if found is None:
        return {"key": key, "available": False}
    return {
        "key": key,
        "available": True,
        "plugin": found.plugin,
        "id": found.id,
        "placeholder": found.placeholder,
        "pattern": found.pattern,
        "help": found.help,
    }


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
