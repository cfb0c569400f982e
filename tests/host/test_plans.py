"""The decisions inside the host's locked orchestration, without I/O: who blocks an uninstall,
what an update moves and must keep satisfied, and which installs have something newer; and the
per-call context that says who an operation is for."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host._plans import (
    dependency_requirements,
    needed_by,
    update_requirements,
    update_targets,
    updates,
)
from plugport.host.consent import refuse_growth
from plugport.host.context import OperationContext
from plugport.host.resolver import Requirement
from plugport.host.state import Installation


def installed(name: str, version: str = "1.0.0", **fields: Any) -> Installation:
    values: dict[str, Any] = {
        "source_kind": "registry",
        "source": "https://registry.example",
        "sha256": "0" * 64,
        "key_id": "k",
        "enabled": True,
        "requested": True,
        "permissions": {},
        "dependencies": {},
    } | fields
    return Installation(name, version, **values)


A = installed("acme.a")
B = installed("acme.b", "2.0.0", dependencies={"acme.a": ">=1.0"})
C = installed("acme.c", "0.3.0", dependencies={"acme.a": "*", "acme.b": ""})
LOCAL = installed("acme.local", source_kind="file", source="/tmp/acme.local.plugport")
WHEEL = installed("acme.wheel", source_kind="index", source="https://pypi.example/acme.whl")
ALL = {i.name: i for i in (A, B, C, LOCAL, WHEEL)}


def test_needed_by_names_each_dependent_with_its_range() -> None:
    assert needed_by("acme.a", ALL.values()) == [
        "acme.b 2.0.0 (needs acme.a>=1.0)",
        "acme.c 0.3.0 (needs acme.a)",
    ]
    assert needed_by("acme.b", ALL.values()) == ["acme.c 0.3.0 (needs acme.b)"]
    assert needed_by("acme.c", ALL.values()) == []
    # a plugin naming itself never blocks its own uninstall
    assert needed_by("acme.self", [installed("acme.self", dependencies={"acme.self": "*"})]) == []


def test_update_targets_default_to_every_registry_install() -> None:
    assert update_targets([], ALL) == ["acme.a", "acme.b", "acme.c"]
    assert update_targets(["acme.b"], ALL) == ["acme.b"]


@pytest.mark.parametrize(
    ("names", "error", "message"),
    [
        (["acme.nope"], NotFoundError, "acme.nope"),
        (["acme.a", "acme.local"], InvalidInputError, "install the new archive instead"),
        (["acme.wheel"], InvalidInputError, "plugport install --index-url INDEX_URL acme.wheel"),
    ],
)
def test_update_targets_refuse_what_update_cannot_move(
    names: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        update_targets(names, ALL)


def test_update_requirements_keep_every_dependent_satisfied() -> None:
    assert update_requirements(["acme.a"], ALL) == [
        Requirement("acme.a", "*", None),
        Requirement("acme.a", ">=1.0", "acme.b 2.0.0"),
        Requirement("acme.a", "*", "acme.c 0.3.0"),
        Requirement("acme.b", "*", "acme.c 0.3.0"),
    ]
    assert dependency_requirements("x.y", "1", {}) == []


def test_an_update_may_be_pinned_to_one_version() -> None:
    pinned = update_requirements(["acme.a", "acme.b"], ALL, {"acme.a": "1.0.1", "acme.x": "9"})
    assert pinned[:2] == [Requirement("acme.a", "==1.0.1", None), Requirement("acme.b", "*", None)]
    assert pinned[0].pinned
    assert pinned[2:] == update_requirements(["acme.a", "acme.b"], ALL)[2:]  # dependents still


def test_updates_are_registry_installs_with_a_higher_newest_version() -> None:
    newest = {"acme.a": "1.0.1", "acme.b": "2.0.0", "acme.c": "0.2.0", "acme.local": "9.0"}
    assert updates(ALL.values(), newest) == [("acme.a", "1.0.0", "1.0.1")]
    assert updates(ALL.values(), {}) == []
    assert updates([installed("acme.pre", "1.0.0rc1")], {"acme.pre": "1.0.0"}) == [
        ("acme.pre", "1.0.0rc1", "1.0.0")
    ]


def test_the_context_is_a_value() -> None:
    context = OperationContext("token:abc")
    assert context.consent is refuse_growth
    assert context.progress is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.actor = "someone else"  # type: ignore[misc]
