"""Component trees: every component has a valid example, every limit holds at its boundary,
errors point into the tree with a JSON pointer, overlays only answer actions, links go only to
https, unknown keys are refused, and hostile strings pass as the text they are."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import jsonschema
import pytest

from plugport.components import (
    COMPONENT_EXAMPLES,
    COMPONENT_SCHEMA,
    COMPONENT_TYPES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_TREE_BYTES,
    ComponentError,
    actions_of,
    check_tree,
    widget_config,
)
from plugport.errors import InvalidInputError


def refused(tree: Any, **options: Any) -> ComponentError:
    """The error ``check_tree`` raises, having checked it left the tree as it was."""
    before = copy.deepcopy(tree)
    with pytest.raises(ComponentError) as info:
        check_tree(tree, **options)
    assert tree == before
    return info.value


def stack(*children: Any) -> dict[str, Any]:
    return {"type": "stack", "children": list(children)}


def text(value: str = "x") -> dict[str, Any]:
    return {"type": "text", "text": value}


# --- the schema and its examples --------------------------------------------------------------


def test_the_schema_is_a_valid_2020_12_schema_naming_every_type() -> None:
    jsonschema.Draft202012Validator.check_schema(COMPONENT_SCHEMA)
    assert list(COMPONENT_TYPES) == sorted(COMPONENT_TYPES)
    assert COMPONENT_SCHEMA["$defs"]["node"]["properties"]["type"]["enum"] == list(COMPONENT_TYPES)
    assert set(COMPONENT_TYPES) <= set(COMPONENT_SCHEMA["$defs"])
    assert len(COMPONENT_TYPES) == 19
    json.dumps(COMPONENT_SCHEMA)  # publishable as is


def test_every_component_type_has_an_example() -> None:
    assert sorted(COMPONENT_EXAMPLES) == list(COMPONENT_TYPES)


@pytest.mark.parametrize("kind", COMPONENT_TYPES)
def test_each_example_is_a_valid_tree_alone_and_inside_a_stack(kind: str) -> None:
    example = COMPONENT_EXAMPLES[kind]
    assert example["type"] == kind
    if kind == "overlay":
        assert check_tree(example, overlay_allowed=True) is example
        return
    assert check_tree(example) is example  # the same object back: nothing is rewritten
    nested = stack(example)
    assert check_tree(nested) == stack(COMPONENT_EXAMPLES[kind])


@pytest.mark.parametrize("kind", COMPONENT_TYPES)
def test_each_component_refuses_an_unknown_key_at_its_own_pointer(kind: str) -> None:
    node = {**COMPONENT_EXAMPLES[kind], "onclick": "alert(1)"}
    if kind == "overlay":
        error = refused(node, overlay_allowed=True)
        assert error.field == ""
    else:
        error = refused(stack(text(), node))
        assert error.field == "/children/1"
    assert "'onclick' was unexpected" in error.reason


@pytest.mark.parametrize("kind", COMPONENT_TYPES)
def test_each_component_refuses_a_missing_required_field(kind: str) -> None:
    required = [k for k in COMPONENT_SCHEMA["$defs"][kind]["required"] if k != "type"]
    assert required, kind
    node = {k: v for k, v in COMPONENT_EXAMPLES[kind].items() if k != required[0]}
    error = refused(node, overlay_allowed=kind == "overlay")
    assert "is a required property" in error.reason
    if kind != "chart":  # a chart without its kind is first held to the kind-specific fields
        assert f"'{required[0]}' is a required property" in error.reason


# --- errors name the place --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "pointer", "reason"),
    [
        ({"type": "nope"}, "/type", "'nope' is not one of"),
        ({"text": "no type"}, "", "'type' is a required property"),
        ([], "", "is not of type 'object'"),
        ("just text", "", "is not of type 'object'"),
        (stack(text(), {"type": "text", "text": 5}), "/children/1/text", "5 is not of type"),
        (stack(stack(text(), "bare")), "/children/0/children/1", "is not of type 'object'"),
        (
            {"type": "tabs", "tabs": [{"id": "a", "label": "A", "children": [{"type": "x"}]}]},
            "/tabs/0/children/0/type",
            "'x' is not one of",
        ),
        (
            stack({"type": "button", "label": "Go", "action": {"name": "Do It"}}),
            "/children/0/action/name",
            "does not match",
        ),
        (
            stack({"type": "table", "columns": [], "rows": []}),
            "/children/0/columns",
            "should be non-empty",
        ),
        (
            {"type": "chart", "kind": "gauge", "title": "CPU", "max": 100},
            "",
            "'value' is a required property",
        ),
        (
            {"type": "chart", "kind": "bar", "title": "Runs", "labels": ["a"]},
            "",
            "'series' is a required property",
        ),
        (
            {"type": "heading", "text": "Too deep a level", "level": 1},
            "/level",
            "1 is not one of [2, 3, 4]",
        ),
        (
            {
                "type": "form",
                "fields": [{"name": "1bad", "label": "x"}],
                "submit": {"label": "Go", "action": {"name": "go"}},
            },
            "/fields/0/name",
            "does not match",
        ),
        ({"type": "text", "text": "x" * 20_001}, "/text", "is too long"),
    ],
)
def test_errors_carry_a_json_pointer_into_the_tree(tree: Any, pointer: str, reason: str) -> None:
    error = refused(tree)
    assert error.field == pointer
    assert reason in error.reason


def test_the_error_is_invalid_input_and_says_whose_answer_it_was() -> None:
    error = refused(stack({"type": "badge"}), plugin="acme.ci", surface="ci.status")
    assert isinstance(error, InvalidInputError)
    assert (error.plugin, error.surface, error.field) == ("acme.ci", "ci.status", "/children/0")
    assert str(error).startswith("acme.ci ci.status: UI component field '/children/0': ")
    assert str(refused({"type": "nope"})).startswith("UI component field '/type': ")
    assert "UI component the tree: " in str(refused([]))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (math.nan, "Out of range float"),
        (math.inf, "Out of range float"),
        ({1, 2}, "set is not JSON serializable"),
        (object(), "object is not JSON serializable"),
        (b"bytes", "bytes is not JSON serializable"),
    ],
)
def test_what_is_not_json_is_refused_as_a_whole(value: Any, why: str) -> None:
    with pytest.raises(ComponentError) as info:
        check_tree({"type": "kv", "items": [{"key": "k", "value": value}]})
    error = info.value
    assert error.field == ""
    assert "is not JSON" in error.reason
    assert why in error.reason


# --- limits -----------------------------------------------------------------------------------


def _size(tree: Any) -> int:
    return len(json.dumps(tree, allow_nan=False, ensure_ascii=False).encode())


def _tree_of_bytes(total: int, char: str = "x") -> dict[str, Any]:
    """A valid stack of text nodes whose JSON is exactly ``total`` bytes (``char`` fills the
    texts; a last byte a two-byte character cannot fill is an ``x``)."""
    width = len(char.encode())
    tree = stack()
    while True:
        before = _size(tree)
        tree["children"].append(text(""))
        needed = total - _size(tree)  # bytes the new node's text must hold
        if needed <= 20_000:
            tree["children"][-1]["text"] = char * (needed // width) + "x" * (needed % width)
            break
        tree["children"][-1]["text"] = char * (10_000 // width)
        assert _size(tree) > before
    assert _size(tree) == total
    return tree


@pytest.mark.parametrize("char", ["x", "é"])
def test_the_byte_limit_counts_utf8_bytes_at_the_boundary(char: str) -> None:
    at_limit = _tree_of_bytes(MAX_TREE_BYTES, char)
    assert check_tree(at_limit) is at_limit
    over = _tree_of_bytes(MAX_TREE_BYTES + 1, char)
    error = refused(over)
    assert error.field == ""
    assert f"is {MAX_TREE_BYTES + 1} bytes, over the limit of {MAX_TREE_BYTES}" in error.reason
    assert "max_tree_bytes" in error.reason


def test_characters_are_not_bytes() -> None:
    """Half the limit in two-byte characters is the whole limit in bytes."""
    tree = stack(*[text("é" * 10_000) for _ in range(MAX_TREE_BYTES // 20_000 + 1)])
    assert len(json.dumps(tree, ensure_ascii=False)) < MAX_TREE_BYTES < _size(tree)
    assert "max_tree_bytes" in refused(tree).reason


def _tree_of_nodes(count: int) -> dict[str, Any]:
    """Root + 10 stacks of 198 texts + the rest as texts on the root: ``count`` components."""
    inner = [stack(*[text() for _ in range(198)]) for _ in range(10)]
    tree = stack(*inner, *[text() for _ in range(count - 1 - 10 - 10 * 198)])
    return tree


def test_the_node_limit_at_the_boundary_names_the_first_node_over() -> None:
    at_limit = _tree_of_nodes(MAX_NODES)
    assert check_tree(at_limit) is at_limit
    over = _tree_of_nodes(MAX_NODES + 1)
    error = refused(over)
    assert f"more than {MAX_NODES} components (max_nodes)" in error.reason
    # walked in document order: the last child of the root is the one over the limit
    assert error.field == f"/children/{len(over['children']) - 1}"


def _nested(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = text("bottom")
    for _ in range(depth - 1):
        tree = stack(tree)
    return tree


def test_the_depth_limit_at_the_boundary() -> None:
    at_limit = _nested(MAX_DEPTH)
    assert check_tree(at_limit) is at_limit
    error = refused(_nested(MAX_DEPTH + 1))
    assert error.field == "/children/0" * MAX_DEPTH
    assert f"nested deeper than {MAX_DEPTH} levels (max_depth)" in error.reason


def test_tab_panels_count_as_a_level() -> None:
    panel = _nested(MAX_DEPTH - 1)
    tabs = {"type": "tabs", "tabs": [{"id": "a", "label": "A", "children": [panel]}]}
    assert check_tree(tabs) is tabs
    deeper = {"type": "tabs", "tabs": [{"id": "a", "label": "A", "children": [stack(panel)]}]}
    error = refused(deeper)
    assert error.field.startswith("/tabs/0/children/0/children/0")
    assert "max_depth" in error.reason


# --- overlays ---------------------------------------------------------------------------------

OVERLAY = COMPONENT_EXAMPLES["overlay"]


def test_an_overlay_is_only_the_whole_answer_to_an_action() -> None:
    assert check_tree(OVERLAY, overlay_allowed=True) is OVERLAY
    error = refused(OVERLAY)  # a plain render
    assert (error.field, error.reason) == (
        "",
        "an overlay can only be the whole answer to an action",
    )


@pytest.mark.parametrize(
    ("tree", "pointer"),
    [
        (stack(text(), OVERLAY), "/children/1"),
        (stack(stack(OVERLAY)), "/children/0/children/0"),
        (
            {"type": "tabs", "tabs": [{"id": "a", "label": "A", "children": [OVERLAY]}]},
            "/tabs/0/children/0",
        ),
        ({**OVERLAY, "children": [OVERLAY]}, "/children/0"),
    ],
)
def test_a_nested_overlay_is_refused_even_in_an_action_answer(tree: Any, pointer: str) -> None:
    error = refused(tree, overlay_allowed=True)
    assert error.field == pointer
    assert "overlay can only be the whole answer" in error.reason


# --- text is text -----------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(document.cookie)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "{{constructor.constructor('alert(1)')()}}",
    "</textarea><svg onload=alert(1)>",
    "\u202eexe.txt",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_strings_are_accepted_as_plain_text(payload: str) -> None:
    """The schema does not try to sanitise: every string is text, and the host's templates
    escape it wherever it lands; the tree comes back unchanged."""
    tree = stack(
        {"type": "heading", "text": payload},
        {"type": "text", "text": payload},
        {"type": "markdown", "source": f"{payload} and [x]({payload})"},
        {"type": "alert", "title": payload, "text": payload},
        {"type": "kv", "items": [{"key": payload, "value": payload}]},
        {"type": "list", "items": [payload, {"text": payload, "secondary": payload}]},
        {"type": "table", "columns": [{"key": "c", "label": payload}], "rows": [{"c": payload}]},
        {
            "type": "button",
            "label": payload[:60],
            "action": {"name": "go", "payload": {"p": payload}},
        },
        {
            "type": "form",
            "fields": [{"name": "f", "label": payload, "default": payload, "help": payload}],
            "submit": {"label": "Send", "action": {"name": "send"}},
            "error": payload,
        },
        {"type": "link", "label": payload, "href": "https://example.com/?q=<script>"},
    )
    kept = copy.deepcopy(tree)
    assert check_tree(tree) is tree
    assert tree == kept


# --- links and assets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "href",
    ["https://example.com", "https://example.com/a?b=c#d", "https://[::1]:8443/x"],
)
def test_a_link_to_https_is_accepted(href: str) -> None:
    tree = stack({"type": "link", "label": "Open", "href": href})
    assert check_tree(tree) is tree


@pytest.mark.parametrize(
    "href",
    [
        "http://example.com",
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "/relative/path",
        "HTTPS://example.com",
        " https://example.com",
        "https://example.com/a b",
        "https://",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "https://" + "a" * 2000,
    ],
)
def test_a_link_anywhere_but_https_is_refused(href: str) -> None:
    error = refused(stack({"type": "link", "label": "Open", "href": href}))
    assert error.field == "/children/0/href"


def test_a_link_names_exactly_one_target() -> None:
    assert check_tree({"type": "link", "label": "Settings", "page": "ci.settings"})
    both = refused({"type": "link", "label": "x", "href": "https://a.example", "page": "ci.home"})
    assert "is valid under each of" in both.reason
    neither = refused({"type": "link", "label": "x"})
    assert "is a required property" in neither.reason
    bad_page = refused({"type": "link", "label": "x", "page": "../admin"})
    assert bad_page.field == "/page"


@pytest.mark.parametrize(
    "asset",
    [
        "../plugport.toml",
        "assets/../../etc/passwd",
        "/etc/passwd",
        ".hidden",
        "a/.env",
        "a//b",
        "a\\b",
    ],
)
def test_an_image_asset_stays_inside_the_archive(asset: str) -> None:
    error = refused({"type": "image", "asset": asset, "alt": "x"})
    assert error.field == "/asset"


# --- actions ----------------------------------------------------------------------------------


def test_actions_of_lists_buttons_and_form_submits_anywhere_in_the_tree() -> None:
    tree = stack(
        COMPONENT_EXAMPLES["button"],
        {
            "type": "tabs",
            "tabs": [{"id": "t", "label": "T", "children": [COMPONENT_EXAMPLES["form"]]}],
        },
        {
            "type": "row",
            "children": [{"type": "button", "label": "x", "action": {"name": "retry"}}],
        },
        COMPONENT_EXAMPLES["link"],
    )
    check_tree(tree)
    assert actions_of(tree) == {"retry", "save"}
    assert actions_of(COMPONENT_EXAMPLES["text"]) == set()


# --- widget settings --------------------------------------------------------------------------

SETTINGS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "label": {"type": "string", "default": "Count", "maxLength": 20},
        "refresh_s": {"type": "integer", "minimum": 5, "default": 60},
        "colour": {"enum": ["red", "blue"]},
    },
}


def test_widget_config_starts_from_the_schema_defaults() -> None:
    assert widget_config(SETTINGS, None) == {"label": "Count", "refresh_s": 60}
    assert widget_config(SETTINGS, {}) == {"label": "Count", "refresh_s": 60}
    given = {"label": "Visits", "colour": "red"}
    assert widget_config(SETTINGS, given) == {"label": "Visits", "refresh_s": 60, "colour": "red"}
    assert given == {"label": "Visits", "colour": "red"}  # the caller's dict is not touched
    assert SETTINGS["properties"]["label"]["default"] == "Count"


def test_widget_config_without_a_schema_passes_the_settings_through() -> None:
    assert widget_config({}, None) == {}
    assert widget_config({}, {"anything": [1, 2]}) == {"anything": [1, 2]}


@pytest.mark.parametrize(
    ("given", "pointer", "reason"),
    [
        ({"refresh_s": 1}, "/refresh_s", "1 is less than the minimum of 5"),
        ({"label": 7}, "/label", "7 is not of type 'string'"),
        ({"label": "x" * 21}, "/label", "is too long"),
        ({"colour": "green"}, "/colour", "'green' is not one of"),
        ({"script": "<b>"}, "", "'script' was unexpected"),
    ],
)
def test_widget_config_refuses_settings_the_schema_does_not_allow(
    given: dict[str, Any], pointer: str, reason: str
) -> None:
    with pytest.raises(ComponentError) as info:
        widget_config(SETTINGS, given)
    assert (info.value.field, info.value.surface) == (pointer, "config")
    assert info.value.reason.startswith("setting: ")
    assert reason in info.value.reason


def test_a_default_the_schema_refuses_is_reported_too() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": "ten"}}}
    with pytest.raises(ComponentError) as info:
        widget_config(schema, None)
    assert info.value.field == "/n"


@pytest.mark.parametrize(
    "node",
    [
        {"type": "link", "label": "x", "href": "https://example.com/\n"},
        {"type": "link", "label": "x", "href": "https://example.com/\tx"},
        {"type": "image", "asset": "assets/a.png\n", "alt": "a"},
    ],
)
def test_an_address_with_a_trailing_newline_is_refused(node: dict[str, Any]) -> None:
    """JSON Schema's ``$`` matches before a final newline; the host refuses it anyway."""
    with pytest.raises(ComponentError) as caught:
        check_tree(node)
    assert caught.value.field in ("/href", "/asset")
