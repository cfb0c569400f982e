"""Which plugin pages, menu items and field types the host offers, and what it accepts back
from a browser: pure rules, no server."""

from __future__ import annotations

import pytest

from plugport.components import ComponentError, check_tree
from plugport.errors import NotFoundError
from plugport.host.ui._extension_rules import (
    MAX_NAV_PAGES,
    MAX_VALUES,
    ActionFormError,
    Contribution,
    action_form,
    action_signature,
    back_url,
    field_error,
    field_types,
    find_menu_item,
    find_page,
    menu_context,
    menu_entries,
    nav_pages,
    signature_valid,
    widget_key,
)
from plugport.manifest import parse_manifest

SECRET = b"k" * 32


def manifest(name: str, extra: str) -> object:
    return parse_manifest(
        f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n'
        'engines = { plugport = ">=0.4" }\n' + extra
    )


PANELS = manifest(
    "acme.panels",
    """
[permissions]
ui = ["pages", "menus", "forms"]
[[contributes.pages]]
id = "overview"
title = "Overview"
[[contributes.pages]]
id = "quiet"
title = "Quiet"
nav = false
[[contributes.menus]]
id = "inspect"
title = "Inspect"
menu = "task"
overlay = "panel"
[[contributes.fields]]
id = "zip"
title = "Zip"
placeholder = "12345"
pattern = "[0-9]{5}"
""",
)


def contribution(granted: tuple[str, ...] = ("pages", "menus", "forms")) -> Contribution:
    return Contribution("acme.panels", PANELS, frozenset(granted))  # type: ignore[arg-type]


def test_navigation_lists_granted_pages_that_ask_for_it() -> None:
    links = nav_pages("ops", [contribution()])
    assert [(link.plugin, link.id, link.url) for link in links] == [
        ("acme.panels", "overview", "/workspaces/ops/plugins/acme.panels/pages/overview")
    ]
    assert nav_pages("ops", [contribution(("menus", "forms"))]) == []
    many = [
        Contribution(f"acme.p{i:02d}", PANELS, frozenset({"pages"}))  # type: ignore[arg-type]
        for i in range(MAX_NAV_PAGES + 5)
    ]
    assert len(nav_pages("ops", many)) == MAX_NAV_PAGES


def test_menus_and_field_types_need_their_permission() -> None:
    menus = menu_entries("ops", [contribution()])
    assert set(menus) == {"installation", "task", "workflow_run"}
    [item] = menus["task"]
    assert (item.id, item.overlay, item.url) == (
        "inspect",
        "panel",
        "/workspaces/ops/plugins/acme.panels/menus/inspect",
    )
    assert menu_entries("ops", [contribution(("pages",))])["task"] == []
    types = field_types([contribution()])
    assert types["acme.panels:zip"].placeholder == "12345"
    assert types["acme.panels:zip"].help == "Zip"  # the title, when there is no help
    assert field_types([contribution(("pages", "menus"))]) == {}


def test_a_page_not_offered_says_why() -> None:
    assert (
        find_page([contribution()], "acme.panels", "overview", installed=True).title == "Overview"
    )
    with pytest.raises(NotFoundError, match=r"acme\.other is not installed in this workspace"):
        find_page([contribution()], "acme.other", "x", installed=False)
    with pytest.raises(NotFoundError, match="installed but not enabled"):
        find_page([], "acme.panels", "overview", installed=True)
    with pytest.raises(
        NotFoundError, match=r"contributes no page 'nope' \(it has: overview, quiet\)"
    ):
        find_page([contribution()], "acme.panels", "nope", installed=True)
    with pytest.raises(NotFoundError, match=r"was not granted 'pages' in permissions\.ui"):
        find_page([contribution(("menus",))], "acme.panels", "overview", installed=True)
    with pytest.raises(NotFoundError, match="was not granted 'menus'"):
        find_menu_item([contribution(("pages",))], "acme.panels", "inspect", installed=True)
    with pytest.raises(NotFoundError, match="contributes no menu item 'overview'"):
        find_menu_item([contribution()], "acme.panels", "overview", installed=True)


def test_widget_references() -> None:
    assert widget_key("acme.panels:zip", "acme.other") == "acme.panels:zip"
    assert widget_key("zip", "acme.other") == "acme.other:zip"
    assert widget_key("Nope:zip", "acme.other") is None
    assert widget_key("acme.panels:Zip!", "acme.other") is None
    tree = {
        "type": "form",
        "fields": [{"name": "z", "label": "Z", "widget": "acme.panels:zip"}],
        "submit": {"label": "Go", "action": {"name": "go"}},
    }
    assert check_tree(tree) is tree
    tree["fields"][0]["widget"] = "zip"  # type: ignore[index]
    assert check_tree(tree) is tree
    tree["fields"][0]["widget"] = "acme:zip"  # type: ignore[index]
    with pytest.raises(ComponentError, match="/fields/0/widget"):
        check_tree(tree)


def test_action_forms() -> None:
    posted = action_form(
        [
            ("csrf", "c"),
            ("action", "save"),
            ("payload", '{"id":3}'),
            ("sig", "s"),
            ("target", "t"),
            ("back", "/x"),
            ("name", "Ada"),
            ("tag", "a"),
            ("tag", "b"),
        ]
    )
    assert (posted.action, posted.payload, posted.signature) == ("save", {"id": 3}, "s")
    assert posted.values == {"name": "Ada", "tag": ["a", "b"]}  # the host's own fields stay out
    assert action_form([]).action is None
    for items, field in [
        ([("action", "Drop Table")], "action"),
        ([("payload", "[1]")], "payload"),
        ([("payload", "{")], "payload"),
        ([("payload", "{" + " " * 9000 + "}")], "payload"),
        ([(f"f{i}", "x") for i in range(MAX_VALUES + 1)], "values"),
        ([("file", object())], "file"),
    ]:
        with pytest.raises(ActionFormError) as caught:
            action_form(items)
        assert caught.value.field == field


def test_signatures_bind_everything_the_host_rendered() -> None:
    binding = ("session", "ops", "acme.panels", "page", "overview", "")
    sig = action_signature(SECRET, binding, "save", {"b": 1, "a": [1, 2]})
    good = action_form([("action", "save"), ("payload", '{"a":[1,2],"b":1}'), ("sig", sig)])
    assert signature_valid(SECRET, binding, good)
    reordered = action_form(
        [("action", "save"), ("payload", '{"b": 1, "a": [1, 2]}'), ("sig", sig)]
    )
    assert signature_valid(SECRET, binding, reordered)  # the same payload, spelled otherwise
    assert not signature_valid(b"x" * 32, binding, good)
    for changed in [
        ("other-session", *binding[1:]),
        (binding[0], "dev", *binding[2:]),
        (*binding[:2], "acme.other", *binding[3:]),
        (*binding[:4], "quiet", ""),
        (*binding[:5], "another-target"),
    ]:
        assert not signature_valid(SECRET, changed, good), changed
    other_payload = action_form([("action", "save"), ("payload", '{"a":[1],"b":1}'), ("sig", sig)])
    assert not signature_valid(SECRET, binding, other_payload)
    other_action = action_form([("action", "drop"), ("payload", '{"a":[1,2],"b":1}'), ("sig", sig)])
    assert not signature_valid(SECRET, binding, other_action)
    assert not signature_valid(SECRET, binding, action_form([("action", "save")]))


def test_menu_contexts_come_from_what_the_host_found() -> None:
    found = {"name": "acme.x", "id": "ignored", "type": "ignored"}
    assert menu_context("installation", found) == {"menu": "installation", "plugin": "acme.x"}
    task = {"id": "t1", "type": "SYNC", "payload": {"secret": 1}}
    assert menu_context("task", task) == {"menu": "task", "task": "t1", "type": "SYNC"}
    assert menu_context("workflow_run", {"id": "r1", "steps": []}) == {
        "menu": "workflow_run",
        "run": "r1",
    }
    with pytest.raises(ValueError, match="no menu"):
        menu_context("settings", found)


def test_back_urls_are_the_hosts_own() -> None:
    assert back_url("ops", "installation", "acme.x", "/workspaces/ops") == "/workspaces/ops"
    own = "/workspaces/ops/installations/acme.x"
    assert back_url("ops", "installation", "acme.x", own) == own
    for given in ("https://evil.example/", "//evil.example", "/workspaces/dev", None, ""):
        assert back_url("ops", "installation", "acme.x", given) == own
    assert back_url("ops", "task", "t/1", None) == "/workspaces/ops/tasks/t%2F1"
    assert back_url("ops", "workflow_run", "r1", None) == "/workspaces/ops/workflows/r1"


def test_field_errors() -> None:
    assert field_error("acme.p", None) is None
    assert field_error("acme.p", "too short") == "too short"
    assert field_error("acme.p", "   ") == "is not valid"
    assert field_error("acme.p", "x" * 900) == "x" * 500
    assert field_error("acme.p", 3) == "acme.p answered with int, not an error message or None"
    said = field_error("acme.p", None, ("timeout", "acme.p did not answer within 5 s"))
    assert said == "acme.p could not check this value (timeout): acme.p did not answer within 5 s"
