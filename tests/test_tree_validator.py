"""The fast component-tree validator gives exactly jsonschema's verdicts and errors: the same
errors, in the same order, at the same places, on valid trees and on thousands of broken ones
(every field of every component type replaced by values of the wrong type, size or shape,
required fields dropped, unknown ones added), so :func:`check_tree` says the same thing it
said before it got faster."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from plugport import components
from plugport._tree_validator import _KINDS, _NAMES, fast_validator
from plugport.components import COMPONENT_SCHEMA, COMPONENT_TYPES, ComponentError, check_tree

PLAIN = jsonschema.Draft202012Validator(COMPONENT_SCHEMA)
FAST = fast_validator(COMPONENT_SCHEMA)

EXAMPLES: dict[str, dict[str, Any]] = {
    "heading": {"type": "heading", "text": "Queue", "level": 3},
    "text": {"type": "text", "text": "All clear.", "tone": "muted"},
    "markdown": {"type": "markdown", "source": "**3** [tasks](https://example.com)"},
    "alert": {"type": "alert", "text": "Reconnect.", "title": "Expired", "level": "warn"},
    "stat": {"type": "stat", "label": "Depth", "value": 42.5, "unit": "tasks", "delta": -3},
    "badge": {"type": "badge", "text": "healthy", "level": "ok"},
    "progress": {"type": "progress", "label": "Import", "value": 30, "max": 120},
    "kv": {"type": "kv", "items": [{"key": "Region", "value": "eu"}, {"key": "N", "value": 3}]},
    "list": {"type": "list", "items": ["plain", {"text": "deploy", "badge": "ok"}]},
    "table": {
        "type": "table",
        "columns": [{"key": "name", "label": "Name"}, {"key": "runs", "align": "right"}],
        "rows": [{"name": "nightly", "runs": 31}, {"name": None, "runs": 2.5, "ok": True}],
        "page_size": 20,
    },
    "image": {"type": "image", "asset": "logo.png", "alt": "Logo", "width": 64},
    "chart": {
        "type": "chart",
        "kind": "line",
        "title": "Requests",
        "labels": ["a", 2, "c"],
        "series": [{"name": "r", "values": [1, None, 2.5]}],
    },
    "gauge": {"type": "chart", "kind": "gauge", "title": "CPU", "value": 40, "max": 100},
    "button": {"type": "button", "label": "Go", "action": {"name": "go", "payload": {"a": 1}}},
    "link": {"type": "link", "label": "Docs", "href": "https://example.com/x"},
    "form": {
        "type": "form",
        "fields": [{"name": "to", "label": "To", "kind": "integer"}],
        "submit": {"label": "Set", "action": {"name": "set"}},
    },
}
LEAVES = list(EXAMPLES.values())
TREE: dict[str, Any] = {
    "type": "stack",
    "children": [
        {"type": "row", "children": LEAVES[:5]},
        *LEAVES[5:],
        {"type": "tabs", "tabs": [{"id": "a", "label": "A", "children": LEAVES[:3]}]},
    ],
}
OVERLAY = {"type": "overlay", "kind": "panel", "title": "Details", "children": [TREE]}

WRONG: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "x" * 250,
    "Not An Id!",
    [],
    [1, "a"],
    {},
    {"type": "text"},
    {"unexpected": 1},
    {f"k{i}": i for i in range(25)},
]
"""Values of every JSON type, empty and oversized, put where they do not belong."""


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``node``."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _places(value, (*path, index))


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(tree)
    if not path:
        return value
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def _without(tree: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(tree)
    target = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def _broken(tree: Any) -> Iterator[Any]:
    for path in _places(tree):
        for value in WRONG:
            yield _set(tree, path, value)
        if path and isinstance(path[-1], str):
            yield _without(tree, path)
        if path and isinstance(path[-1], int):
            yield _set(tree, path, {"type": "marquee", "text": "no"})
    yield {**tree, "extra": 1}


def _errors(validator: Any, tree: Any) -> list[Any]:
    def described(error: Any) -> Any:
        return (
            error.message,
            list(error.absolute_path),
            list(error.absolute_schema_path),
            error.validator,
            [described(e) for e in error.context],
        )

    return [described(e) for e in validator.iter_errors(tree)]


def _verdict(tree: Any, overlay: bool = False) -> tuple[str, str] | None:
    try:
        check_tree(tree, overlay_allowed=overlay)
    except ComponentError as exc:
        return exc.field, exc.reason
    return None


def test_the_examples_cover_every_component_and_are_valid() -> None:
    assert {e["type"] for e in EXAMPLES.values()} | {"stack", "row", "tabs", "overlay"} == set(
        COMPONENT_TYPES
    )
    for tree in (TREE, OVERLAY, *LEAVES):
        assert _errors(PLAIN, tree) == []
        assert FAST.is_valid(tree)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_broken_components_get_the_same_errors(name: str) -> None:
    example = EXAMPLES[name]
    cases = 0
    for broken in _broken({"type": "stack", "children": [example]}):
        plain = _errors(PLAIN, broken)
        assert _errors(FAST, broken) == plain, broken
        assert FAST.is_valid(broken) == (plain == [])
        cases += 1
    assert cases > 40


def test_broken_whole_trees_get_the_same_errors_and_check_tree_the_same_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every component of a tree that nests all of them, replaced or broken in turn."""
    cases = [
        broken
        for path in _places(OVERLAY)
        if isinstance(_get(OVERLAY, path), dict) and "type" in _get(OVERLAY, path)
        for broken in (
            *(_set(OVERLAY, path, value) for value in (None, "x", [], {}, {"type": "text"})),
            _set(OVERLAY, path, {**_get(OVERLAY, path), "type": "marquee"}),
            _set(OVERLAY, path, {**_get(OVERLAY, path), "extra": 1}),
        )
    ]
    for broken in cases:
        assert _errors(FAST, broken) == _errors(PLAIN, broken)
    fast = [_verdict(broken, overlay=True) for broken in cases]
    monkeypatch.setattr(components, "_validator", lambda: PLAIN)  # check_tree as it was
    assert fast == [_verdict(broken, overlay=True) for broken in cases]
    assert len(cases) > 150
    assert all(verdict is not None for verdict in fast)


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, 7, -2, 1.0, 2.5, float("inf"), "", "s", [], [1], {}, {"a": 1}],
)
def test_the_type_table_agrees_with_the_type_checker(value: Any) -> None:
    asked = {name for name in _NAMES if PLAIN.is_type(value, name)}
    kinds = _KINDS[type(value)]
    if type(value) is float and value.is_integer():
        assert asked == kinds | {"integer"}  # why whole floats are asked of the validator
    else:
        assert set(kinds) == asked


def test_values_of_other_python_types_are_asked_of_the_validator() -> None:
    tree = _set(EXAMPLES["table"], ("rows", 0, "name"), ("a", "tuple"))
    assert _errors(FAST, tree) == _errors(PLAIN, tree) != []
    subclass = type("Label", (str,), {})("fine")
    tree = _set(EXAMPLES["chart"], ("labels", 0), subclass)
    assert _errors(FAST, tree) == _errors(PLAIN, tree) == []


SHORTCUT_SCHEMAS: list[dict[str, Any]] = [
    {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 3}},
    {"type": "array", "items": {"type": ["integer", "null"]}},
    {"type": "array", "items": {"minLength": 1}},
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "maxProperties": 2,
            "additionalProperties": {"type": ["string", "boolean"], "maxLength": 1},
        },
    },
    {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
]
INSTANCES: list[Any] = [
    [],
    ["ab", "abc"],
    ["a", "abcd", 3, None],
    [1, 1.0, 1.5, None, True],
    [{}, [], ""],
    {},
    {"x": {"a": "b", "c": True}},
    {"x": {"a": "bb"}, "y": {"a": 1, "b": 2, "c": 3}},
    {"a": 1, "b": "s", "c": 2},
    "not a container",
]


@pytest.mark.parametrize("schema", SHORTCUT_SCHEMAS)
def test_each_shortcut_keyword_decides_as_jsonschema_does(schema: dict[str, Any]) -> None:
    plain, fast = jsonschema.Draft202012Validator(schema), fast_validator(schema)
    for instance in INSTANCES:
        assert _errors(fast, instance) == _errors(plain, instance), instance
