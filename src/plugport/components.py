"""UI component trees: what a plugin's UI handler returns and the host renders with its own
templates. A tree is data, never markup; this module is the one rule for what a tree may hold:
a published JSON Schema (:data:`COMPONENT_SCHEMA`) plus limits a schema cannot say (how many
nodes, how deep, how many bytes). Pure: JSON in, the same JSON or a :class:`ComponentError` out.

Every string in a tree is text. The host escapes it wherever it lands, Markdown included (raw
HTML in Markdown is never passed through), so a tree cannot carry script, style or a request to
anywhere but the plugin's own assets and ``https`` links the user clicks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from plugport.errors import InvalidInputError

__all__ = [
    "COMPONENT_EXAMPLES",
    "COMPONENT_SCHEMA",
    "COMPONENT_TYPES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TREE_BYTES",
    "ComponentError",
    "actions_of",
    "check_tree",
    "widget_config",
]

MAX_TREE_BYTES = 256 * 1024
MAX_NODES = 2000
MAX_DEPTH = 12

_LEVEL = {"enum": ["info", "ok", "warn", "bad"]}
_ID = {
    "type": "string",
    "pattern": r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$",
    "maxLength": 100,
}
_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"}
_NAME_PART = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])"
_WIDGET_PATTERN = (
    rf"^(?:{_NAME_PART}\.{_NAME_PART}:)?[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$"
)
"""A field type: ``plugin.name:field-id`` (a plugin name as the manifest spells it, then a
contribution id), or a bare ``field-id`` for the answering plugin's own."""
_SHORT = {"type": "string", "minLength": 1, "maxLength": 200}
_LABEL = {"type": "string", "maxLength": 200}
_TEXT = {"type": "string", "maxLength": 20_000}
_SCALAR = {"type": ["string", "number", "boolean", "null"]}
_CHILDREN = {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 200}
_ACTION = {
    "type": "object",
    "description": "What the host sends back to the plugin's handler: request.action and "
    "request.payload.",
    "properties": {"name": _ID, "payload": {"type": "object"}},
    "required": ["name"],
    "additionalProperties": False,
}
_AXIS = {
    "type": "object",
    "properties": {
        "label": _LABEL,
        "unit": {"type": "string", "maxLength": 20},
        "min": {"type": "number"},
        "max": {"type": "number"},
    },
    "additionalProperties": False,
}


def _component(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"type": {"const": name}, **properties},
        "required": ["type", *required],
        "additionalProperties": False,
    }


_FIELD = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "label": _SHORT,
        "kind": {
            "enum": ["text", "textarea", "number", "integer", "checkbox", "select", "date", "email"]
        },
        "widget": {
            "type": "string",
            "pattern": _WIDGET_PATTERN,
            "maxLength": 230,
            "description": "A field type a plugin contributes (contributes.fields): "
            "'plugin.name:field-id', or just 'field-id' for the answering plugin's own.",
        },
        "required": {"type": "boolean"},
        "default": _SCALAR,
        "placeholder": {"type": "string", "maxLength": 100},
        "help": {"type": "string", "maxLength": 500},
        "error": {"type": "string", "maxLength": 500},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "pattern": {"type": "string", "maxLength": 500},
        "options": {
            "type": "array",
            "maxItems": 200,
            "items": {
                "type": "object",
                "properties": {"value": {"type": ["string", "number"]}, "label": _LABEL},
                "required": ["value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "label"],
    "additionalProperties": False,
}

_COMPONENTS: dict[str, dict[str, Any]] = {
    "stack": _component(
        "stack", "Children one under the other.", {"children": _CHILDREN}, ["children"]
    ),
    "row": _component(
        "row",
        "Children side by side, wrapping on narrow screens.",
        {"children": _CHILDREN},
        ["children"],
    ),
    "heading": _component(
        "heading",
        "A heading inside the surface.",
        {"text": _SHORT, "level": {"enum": [2, 3, 4]}},
        ["text"],
    ),
    "text": _component(
        "text",
        "A paragraph of plain text.",
        {"text": _TEXT, "tone": {"enum": ["normal", "muted", "strong", "code"]}},
        ["text"],
    ),
    "markdown": _component(
        "markdown",
        "CommonMark; raw HTML is shown as text, links only http(s) and mailto.",
        {"source": _TEXT},
        ["source"],
    ),
    "alert": _component(
        "alert", "A message box.", {"text": _TEXT, "title": _LABEL, "level": _LEVEL}, ["text"]
    ),
    "stat": _component(
        "stat",
        "One number (or short value) with its label.",
        {
            "label": _SHORT,
            "value": {"type": ["number", "string"], "maxLength": 100},
            "unit": {"type": "string", "maxLength": 20},
            "delta": {"type": "number"},
            "caption": _LABEL,
            "level": _LEVEL,
        },
        ["label", "value"],
    ),
    "badge": _component(
        "badge",
        "A short status label.",
        {"text": {"type": "string", "minLength": 1, "maxLength": 60}, "level": _LEVEL},
        ["text"],
    ),
    "progress": _component(
        "progress",
        "A bar from 0 to max.",
        {
            "label": _SHORT,
            "value": {"type": "number"},
            "max": {"type": "number", "exclusiveMinimum": 0},
            "unit": {"type": "string", "maxLength": 20},
        },
        ["label", "value"],
    ),
    "kv": _component(
        "kv",
        "Key-value pairs.",
        {
            "items": {
                "type": "array",
                "maxItems": 200,
                "items": {
                    "type": "object",
                    "properties": {"key": _SHORT, "value": _SCALAR},
                    "required": ["key", "value"],
                    "additionalProperties": False,
                },
            }
        },
        ["items"],
    ),
    "list": _component(
        "list",
        "A list of lines, each with an optional second line and badge.",
        {
            "ordered": {"type": "boolean"},
            "items": {
                "type": "array",
                "maxItems": 500,
                "items": {
                    "anyOf": [
                        {"type": "string", "maxLength": 2000},
                        {
                            "type": "object",
                            "properties": {
                                "text": {"type": "string", "maxLength": 2000},
                                "secondary": {"type": "string", "maxLength": 2000},
                                "badge": {"type": "string", "maxLength": 60},
                                "level": _LEVEL,
                            },
                            "required": ["text"],
                            "additionalProperties": False,
                        },
                    ]
                },
            },
        },
        ["items"],
    ),
    "table": _component(
        "table",
        "Rows under named columns; the host sorts and pages them.",
        {
            "caption": _LABEL,
            "columns": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20,
                "items": {
                    "type": "object",
                    "properties": {
                        "key": _NAME,
                        "label": _LABEL,
                        "align": {"enum": ["left", "right", "center"]},
                    },
                    "required": ["key"],
                    "additionalProperties": False,
                },
            },
            "rows": {
                "type": "array",
                "maxItems": 1000,
                "items": {"type": "object", "additionalProperties": _SCALAR, "maxProperties": 20},
            },
            "sortable": {"type": "boolean"},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 100},
            "empty": _LABEL,
        },
        ["columns", "rows"],
    ),
    "image": _component(
        "image",
        "A picture from the plugin's own archive (PNG, JPEG, GIF, WebP or SVG shown as an image).",
        {
            # Segments never start with a dot: no "..", no hidden files (as manifest paths).
            "asset": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$",
                "maxLength": 200,
            },
            "alt": {"type": "string", "minLength": 1, "maxLength": 300},
            "width": {"type": "integer", "minimum": 16, "maximum": 1200},
        },
        ["asset", "alt"],
    ),
    "chart": _component(
        "chart",
        "A line, bar, area or gauge chart, drawn by the host as SVG with a data table.",
        {
            "kind": {"enum": ["line", "bar", "area", "gauge"]},
            "title": _SHORT,
            "description": {"type": "string", "maxLength": 1000},
            "x": _AXIS,
            "y": _AXIS,
            "labels": {
                "type": "array",
                "maxItems": 500,
                "items": {"type": ["string", "number"], "maxLength": 100},
            },
            "series": {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": _SHORT,
                        "values": {
                            "type": "array",
                            "maxItems": 500,
                            "items": {"type": ["number", "null"]},
                        },
                    },
                    "required": ["name", "values"],
                    "additionalProperties": False,
                },
            },
            "legend": {"type": "boolean"},
            "stacked": {"type": "boolean"},
            "value": {"type": "number"},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "unit": {"type": "string", "maxLength": 20},
            "thresholds": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "level": {"enum": ["ok", "warn", "bad"]},
                    },
                    "required": ["value", "level"],
                    "additionalProperties": False,
                },
            },
        },
        ["kind", "title"],
    ),
    "button": _component(
        "button",
        "Sends its action to the plugin's handler, which answers with the new tree.",
        {
            "label": {"type": "string", "minLength": 1, "maxLength": 60},
            "action": _ACTION,
            "style": {"enum": ["primary", "secondary", "danger"]},
            "confirm": {"type": "string", "maxLength": 200},
        },
        ["label", "action"],
    ),
    "link": _component(
        "link",
        "A link to an https page (opened in a new tab) or to one of the plugin's own pages.",
        {
            "label": {"type": "string", "minLength": 1, "maxLength": 200},
            "href": {"type": "string", "pattern": r"^https://[^\s]+$", "maxLength": 2000},
            "page": _ID,
        },
        ["label"],
    ),
    "tabs": _component(
        "tabs",
        "Panels with a tab list to switch between them.",
        {
            "tabs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {"id": _NAME, "label": _SHORT, "children": _CHILDREN},
                    "required": ["id", "label", "children"],
                    "additionalProperties": False,
                },
            }
        },
        ["tabs"],
    ),
    "form": _component(
        "form",
        "Fields whose values go to the plugin's handler with the submit action.",
        {
            "fields": {"type": "array", "minItems": 1, "maxItems": 50, "items": _FIELD},
            "submit": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "minLength": 1, "maxLength": 60},
                    "action": _ACTION,
                },
                "required": ["label", "action"],
                "additionalProperties": False,
            },
            "error": {"type": "string", "maxLength": 500},
        },
        ["fields", "submit"],
    ),
    "overlay": _component(
        "overlay",
        "Only at the root of an action's answer: a modal dialog or a side panel.",
        {"kind": {"enum": ["modal", "panel"]}, "title": _SHORT, "children": _CHILDREN},
        ["title", "children"],
    ),
}

_COMPONENTS["link"]["oneOf"] = [{"required": ["href"]}, {"required": ["page"]}]
_COMPONENTS["chart"]["allOf"] = [
    {
        "if": {"properties": {"kind": {"const": "gauge"}}},
        "then": {"required": ["value", "max"]},
        "else": {"required": ["labels", "series"]},
    }
]

COMPONENT_TYPES = tuple(sorted(_COMPONENTS))

COMPONENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://plugport.dev/schemas/components.json",
    "title": "Plugport UI component tree",
    "$ref": "#/$defs/node",
    "$defs": {
        "node": {
            "type": "object",
            "properties": {"type": {"enum": list(COMPONENT_TYPES)}},
            "required": ["type"],
            # One branch per type, so an error names the component's own missing or bad field.
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                    "then": {"$ref": f"#/$defs/{name}"},
                }
                for name in COMPONENT_TYPES
            ],
        },
        **_COMPONENTS,
    },
}
"""The schema the docs publish (``docs/reference/components.json``); :func:`check_tree` holds
a tree to it and to the limits beside it."""


_ADDRESSES = ("href", "asset")
"""Fields that become a URL: checked for whitespace beyond what the schema's patterns say."""


class ComponentError(InvalidInputError):
    """A component tree breaks the schema or a limit: ``field`` is a JSON pointer into the tree
    (``""``: the whole tree), ``plugin`` and ``surface`` say whose answer it was."""

    def __init__(self, field: str, reason: str, *, plugin: str = "", surface: str = "") -> None:
        self.field = field
        self.reason = reason
        self.plugin = plugin
        self.surface = surface
        whose = f"{plugin} {surface}: " if plugin or surface else ""
        where = f"field '{field}'" if field else "the tree"
        super().__init__(f"{whose}UI component {where}: {reason}")


@cache
def _validator() -> Any:
    # The host pays for jsonschema when it first checks a tree, not at import.
    from plugport._tree_validator import fast_validator

    return fast_validator(COMPONENT_SCHEMA)


def check_tree(
    tree: Any, *, plugin: str = "", surface: str = "", overlay_allowed: bool = False
) -> Any:
    """``tree`` if it is a valid component tree within the limits, else a
    :class:`ComponentError` for the first problem found (the deepest one the schema reports)."""
    try:
        encoded = json.dumps(tree, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise ComponentError("", f"is not JSON: {exc}", plugin=plugin, surface=surface) from None
    if len(encoded) > MAX_TREE_BYTES:
        raise ComponentError(
            "",
            f"is {len(encoded)} bytes, over the limit of {MAX_TREE_BYTES} (max_tree_bytes)",
            plugin=plugin,
            surface=surface,
        )
    for count, (pointer, node, depth) in enumerate(_walk(tree, "", 1), start=1):
        if count > MAX_NODES:
            raise ComponentError(
                pointer,
                f"the tree has more than {MAX_NODES} components (max_nodes)",
                plugin=plugin,
                surface=surface,
            )
        if depth > MAX_DEPTH:
            raise ComponentError(
                pointer,
                f"is nested deeper than {MAX_DEPTH} levels (max_depth)",
                plugin=plugin,
                surface=surface,
            )
        if (
            isinstance(node, Mapping)
            and node.get("type") == "overlay"
            and (pointer or not overlay_allowed)
        ):
            raise ComponentError(
                pointer,
                "an overlay can only be the whole answer to an action",
                plugin=plugin,
                surface=surface,
            )
        for key in _ADDRESSES:  # a JSON Schema '$' also matches before a final newline
            value = node.get(key) if isinstance(node, Mapping) else None
            if isinstance(value, str) and any(c.isspace() or ord(c) < 0x20 for c in value):
                raise ComponentError(
                    f"{pointer}/{key}",
                    "an address holds no whitespace or control characters",
                    plugin=plugin,
                    surface=surface,
                )
    errors = list(_validator().iter_errors(tree))
    if errors:
        import jsonschema

        error = jsonschema.exceptions.best_match(errors)
        # best_match prefers shallow errors; the deepest path names the component at fault.
        error = max(_leaves(error), key=lambda e: len(e.absolute_path), default=error)
        pointer = "".join(f"/{part}" for part in error.absolute_path)
        raise ComponentError(pointer, error.message, plugin=plugin, surface=surface)
    return tree


def _leaves(error: Any) -> Iterator[Any]:
    if not error.context:
        yield error
        return
    for child in error.context:
        yield from _leaves(child)


def _walk(node: Any, pointer: str, depth: int) -> Iterator[tuple[str, Any, int]]:
    """Every component with its JSON pointer and nesting depth (containers and tab panels)."""
    yield pointer, node, depth
    if not isinstance(node, Mapping):
        return
    children = node.get("children")
    if isinstance(children, list):
        for index, child in enumerate(children):
            yield from _walk(child, f"{pointer}/children/{index}", depth + 1)
    tabs = node.get("tabs")
    if node.get("type") == "tabs" and isinstance(tabs, list):
        for t, tab in enumerate(tabs):
            if isinstance(tab, Mapping) and isinstance(tab.get("children"), list):
                for index, child in enumerate(tab["children"]):
                    yield from _walk(child, f"{pointer}/tabs/{t}/children/{index}", depth + 1)


def actions_of(tree: Any) -> set[str]:
    """The action names a (checked) tree offers: the only ones the host sends back for it."""
    found: set[str] = set()
    for _, node, _ in _walk(tree, "", 1):
        if not isinstance(node, Mapping):
            continue
        if node.get("type") == "button":
            found.add(node["action"]["name"])
        elif node.get("type") == "form":
            found.add(node["submit"]["action"]["name"])
    return found


def widget_config(schema: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """A widget's effective settings: the schema's property defaults, then ``given``, held to
    the schema (a :class:`ComponentError` whose ``field`` points into the settings)."""
    properties = schema.get("properties") or {}
    config = {
        key: spec["default"]
        for key, spec in properties.items()
        if isinstance(spec, Mapping) and "default" in spec
    }
    config.update(given or {})
    if schema:
        import jsonschema

        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(config))
        if errors:
            error = jsonschema.exceptions.best_match(errors)
            pointer = "".join(f"/{part}" for part in error.absolute_path)
            raise ComponentError(pointer, f"setting: {error.message}", surface="config")
    return config


COMPONENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "stack": {
        "type": "stack",
        "children": [{"type": "heading", "text": "Queue"}, {"type": "text", "text": "All clear."}],
    },
    "row": {
        "type": "row",
        "children": [
            {"type": "stat", "label": "Open", "value": 12},
            {"type": "stat", "label": "Closed", "value": 30},
        ],
    },
    "heading": {"type": "heading", "text": "Last runs", "level": 3},
    "text": {"type": "text", "text": "Synced 5 minutes ago.", "tone": "muted"},
    "markdown": {"type": "markdown", "source": "**3** tasks need a [review](https://example.com)."},
    "alert": {
        "type": "alert",
        "title": "Token expired",
        "text": "Reconnect Slack.",
        "level": "warn",
    },
    "stat": {
        "type": "stat",
        "label": "Queue depth",
        "value": 42,
        "unit": "tasks",
        "delta": -3,
        "level": "ok",
    },
    "badge": {"type": "badge", "text": "healthy", "level": "ok"},
    "progress": {"type": "progress", "label": "Import", "value": 30, "max": 120, "unit": "files"},
    "kv": {
        "type": "kv",
        "items": [{"key": "Region", "value": "eu-west-1"}, {"key": "Replicas", "value": 3}],
    },
    "list": {
        "type": "list",
        "items": ["plain line", {"text": "deploy", "secondary": "2 min ago", "badge": "ok"}],
    },
    "table": {
        "type": "table",
        "columns": [{"key": "name", "label": "Name"}, {"key": "runs", "align": "right"}],
        "rows": [{"name": "nightly", "runs": 31}, {"name": "hourly", "runs": 744}],
        "sortable": True,
        "page_size": 20,
    },
    "image": {"type": "image", "asset": "assets/logo.png", "alt": "Acme logo", "width": 64},
    "chart": {
        "type": "chart",
        "kind": "line",
        "title": "Tasks per hour",
        "labels": ["09:00", "10:00", "11:00"],
        "series": [{"name": "done", "values": [4, 9, None]}],
        "y": {"label": "tasks", "min": 0},
    },
    "button": {
        "type": "button",
        "label": "Retry",
        "action": {"name": "retry", "payload": {"task": "t-1"}},
        "style": "primary",
        "confirm": "Retry this task?",
    },
    "link": {"type": "link", "label": "Open the run", "href": "https://ci.example.com/runs/7"},
    "tabs": {
        "type": "tabs",
        "tabs": [
            {"id": "today", "label": "Today", "children": [{"type": "text", "text": "3 runs"}]},
            {"id": "week", "label": "This week", "children": [{"type": "text", "text": "19"}]},
        ],
    },
    "form": {
        "type": "form",
        "fields": [
            {"name": "channel", "label": "Channel", "kind": "text", "required": True},
            {"name": "limit", "label": "Limit", "kind": "integer", "min": 1, "default": 10},
        ],
        "submit": {"label": "Save", "action": {"name": "save"}},
    },
    "overlay": {
        "type": "overlay",
        "kind": "panel",
        "title": "Task t-1",
        "children": [{"type": "kv", "items": [{"key": "state", "value": "failed"}]}],
    },
}
"""One small valid tree per component type, for the reference docs and the tests (each is
held to :func:`check_tree`; ``overlay`` as an action's answer)."""
