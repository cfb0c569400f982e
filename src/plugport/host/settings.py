"""A plugin's settings as the operator edits them one key at a time (``plugport config``,
``PluginHost.configure``): what a value on the command line means, and which settings the
manifest's ``config`` schema marks ``required`` that are still missing.

The rule it protects: a plugin never runs without a setting its schema requires. Partial
settings may be stored while it is disabled (so keys can be set one by one); enabling it, and
installing it enabled, wait until every required key has a value (given or a default)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plugport.runtime.capabilities.config import effective_settings

__all__ = ["missing_required", "parse_value", "setting_command", "without_required"]


def parse_value(text: str, *, force_str: bool = False) -> Any:
    """``VALUE`` of ``config set``: JSON when it parses as JSON (``8080``, ``true``,
    ``["a"]``), else the text itself; ``force_str`` keeps it text (``--str``)."""
    if force_str:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def missing_required(schema: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """The top-level keys ``schema`` requires that neither ``stored`` nor a default gives."""
    required = schema.get("required") or []
    effective = effective_settings(dict(schema), dict(stored))
    return [key for key in required if isinstance(key, str) and key not in effective]


def without_required(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with its top-level ``required`` left out: what one key's change is checked
    against (every other rule still applies); completeness is :func:`missing_required`'s."""
    return {key: value for key, value in schema.items() if key != "required"}


def setting_command(name: str, missing: list[str]) -> str:
    """How to fix it, as the user would type it."""
    return "; ".join(f"plugport config set {name} {key} VALUE" for key in missing)
