"""``config.*``: the pure defaults/validation functions, then :class:`PluginSettings` on real
SQLite, where a refused ``set`` must leave the stored settings exactly as they were."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import InvalidInputError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.capabilities.config import (
    PluginSettings,
    effective_settings,
    settings_problems,
)

PLUGIN = "acme.notes"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "retries": {"type": "integer", "minimum": 0, "default": 3},
        "mode": {"enum": ["fast", "safe"], "default": "safe"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
        "server": {
            "type": "object",
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            "required": ["host"],
        },
        "token": {"type": "string"},
    },
}

REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
    "properties": {
        "port": {"$ref": "#/$defs/port", "default": 8080},
        "ports": {"type": "array", "items": {"$ref": "#/$defs/port"}},
    },
}


@pytest.fixture(params=["memory", "file"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeDatabase]:
    path = ":memory:" if request.param == "memory" else tmp_path / "rt.sqlite"
    database = RuntimeDatabase(path)
    yield database
    database.close()


@pytest.fixture
def settings(db: RuntimeDatabase) -> PluginSettings:
    return PluginSettings(db)


# --- pure functions ------------------------------------------------------------------------


def test_effective_settings_are_defaults_overlaid_by_values() -> None:
    assert effective_settings(SCHEMA, {}) == {"retries": 3, "mode": "safe", "tags": ["a"]}
    assert effective_settings(SCHEMA, {"retries": 0, "token": "t"}) == {
        "retries": 0,
        "mode": "safe",
        "tags": ["a"],
        "token": "t",
    }
    assert effective_settings({}, {"anything": 1}) == {"anything": 1}


def test_effective_settings_copy_defaults() -> None:
    result = effective_settings(SCHEMA, {})
    result["tags"].append("b")

    assert SCHEMA["properties"]["tags"]["default"] == ["a"]


def test_valid_settings_have_no_problems() -> None:
    assert settings_problems(SCHEMA, {}) == []
    assert settings_problems(SCHEMA, {"server": {"host": "h", "port": 443}, "mode": "fast"}) == []
    assert settings_problems({}, {"free": ["form"]}) == []


def test_every_problem_is_listed_by_path() -> None:
    problems = settings_problems(
        SCHEMA,
        {
            "retries": "many",
            "tags": ["ok", 5, "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", 10],
            "server": {"port": 0},
            "mode": "slow",
            "colour": "red",
        },
    )

    assert problems == [
        "config: Additional properties are not allowed ('colour' was unexpected)",
        "config.mode: 'slow' is not one of ['fast', 'safe']",
        "config.retries: 'many' is not of type 'integer'",
        "config.server: 'host' is a required property",
        "config.server.port: 0 is less than the minimum of 1",
        "config.tags.1: 5 is not of type 'string'",
        "config.tags.10: 10 is not of type 'string'",  # indexes sort as numbers
    ]


def test_a_default_can_be_the_problem() -> None:
    schema = {"properties": {"n": {"type": "integer", "default": 1}}, "required": ["m"]}

    assert settings_problems(schema, {}) == ["config: 'm' is a required property"]
    assert settings_problems(schema, {"n": None, "m": 0}) == [
        "config.n: None is not of type 'integer'"
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([], "config: settings must be an object, got list"),
        (None, "config: settings must be an object, got NoneType"),
        ({1: "x"}, "config: setting names must be strings, got 1"),
    ],
)
def test_settings_must_be_an_object_with_string_names(values: Any, problem: str) -> None:
    assert settings_problems({}, values) == [problem]


# --- PluginSettings ------------------------------------------------------------------------


def test_unset_plugin_gets_the_defaults(settings: PluginSettings) -> None:
    assert settings.get(PLUGIN, SCHEMA) == {"retries": 3, "mode": "safe", "tags": ["a"]}
    assert settings.stored(PLUGIN) == {}


def test_stored_values_override_defaults_and_only_they_are_stored(
    settings: PluginSettings,
) -> None:
    values = {"retries": 5, "server": {"host": "example.org"}}

    effective = settings.set(PLUGIN, SCHEMA, values)

    assert effective == {
        "retries": 5,
        "mode": "safe",
        "tags": ["a"],
        "server": {"host": "example.org"},
    }
    assert settings.get(PLUGIN, SCHEMA) == effective
    assert settings.stored(PLUGIN) == values
    # A later schema's new defaults apply to everything the operator left unset.
    newer = {"properties": {**SCHEMA["properties"], "mode": {"default": "fast"}}}
    assert settings.get(PLUGIN, newer)["mode"] == "fast"


def test_set_replaces_rather_than_merges(settings: PluginSettings) -> None:
    settings.set(PLUGIN, SCHEMA, {"retries": 5, "token": "t"})
    settings.set(PLUGIN, SCHEMA, {"mode": "fast"})

    assert settings.stored(PLUGIN) == {"mode": "fast"}
    assert settings.get(PLUGIN, SCHEMA)["retries"] == 3


def test_invalid_settings_list_every_problem_and_store_nothing(settings: PluginSettings) -> None:
    settings.set(PLUGIN, SCHEMA, {"retries": 1})

    with pytest.raises(InvalidInputError) as info:
        settings.set(
            PLUGIN,
            SCHEMA,
            {"retries": "many", "server": {"host": "h", "port": 70000}, "extra": True},
        )

    assert str(info.value) == "\n".join(
        [
            "invalid settings for plugin 'acme.notes' (3 problems)",
            "  - config: Additional properties are not allowed ('extra' was unexpected)",
            "  - config.retries: 'many' is not of type 'integer'",
            "  - config.server.port: 70000 is greater than the maximum of 65535",
        ]
    )
    assert settings.stored(PLUGIN) == {"retries": 1}


def test_single_problem_message_is_singular(settings: PluginSettings) -> None:
    with pytest.raises(InvalidInputError, match=r"\(1 problem\)\n  - config.retries: -1 is less"):
        settings.set(PLUGIN, SCHEMA, {"retries": -1})

    assert settings.stored(PLUGIN) == {}


@pytest.mark.parametrize(
    ("schema", "values", "fragment"),
    [
        (SCHEMA, ["not", "a", "dict"], "config: settings must be an object, got list"),
        (SCHEMA, "retries=3", "config: settings must be an object, got str"),
        (SCHEMA, {("a",): 1}, "config: setting names must be strings"),
        (SCHEMA, {"token": {1, 2}}, "config.token: {1, 2} is not of type 'string'"),
        ({}, {"token": float("nan")}, "are not JSON: Out of range float values"),
        ({}, {"token": {1, 2}}, "are not JSON: Object of type set is not JSON serializable"),
    ],
)
def test_malformed_values_are_refused_and_nothing_is_stored(
    settings: PluginSettings, schema: dict[str, Any], values: Any, fragment: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        settings.set(PLUGIN, schema, values)

    assert fragment in str(info.value)
    assert settings.stored(PLUGIN) == {}


def test_empty_schema_accepts_any_object(settings: PluginSettings) -> None:
    values = {"anything": [1, {"goes": None}], "n": 1.5}

    assert settings.set(PLUGIN, {}, values) == values
    assert settings.get(PLUGIN, {}) == values


def test_ref_schema_fills_defaults_and_validates_through_refs(settings: PluginSettings) -> None:
    assert settings.get(PLUGIN, REF_SCHEMA) == {"port": 8080}
    assert settings.set(PLUGIN, REF_SCHEMA, {"ports": [80, 443]}) == {
        "port": 8080,
        "ports": [80, 443],
    }

    with pytest.raises(InvalidInputError) as info:
        settings.set(PLUGIN, REF_SCHEMA, {"port": 0, "ports": [80, "https", 65536]})

    message = str(info.value)
    assert "config.port: 0 is less than the minimum of 1" in message
    assert "config.ports.1: 'https' is not of type 'integer'" in message
    assert "config.ports.2: 65536 is greater than the maximum of 65535" in message
    assert settings.stored(PLUGIN) == {"ports": [80, 443]}


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "objekt"}, "the config schema is not a valid JSON Schema at '/type'"),
        (
            {"properties": {"x": {"$ref": "#/$defs/missing"}}},
            "the config schema has an unresolvable $ref",
        ),
    ],
)
def test_broken_schema_is_refused_and_nothing_is_stored(
    settings: PluginSettings, schema: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        settings.set(PLUGIN, schema, {"x": 1})

    assert fragment in str(info.value)
    assert settings.stored(PLUGIN) == {}


def test_plugins_are_isolated_and_clear_restores_defaults(settings: PluginSettings) -> None:
    settings.set(PLUGIN, SCHEMA, {"retries": 9})
    settings.set("acme.other", SCHEMA, {"mode": "fast"})

    assert settings.stored("acme.other") == {"mode": "fast"}
    settings.clear(PLUGIN)
    settings.clear("never.set")

    assert settings.stored(PLUGIN) == {}
    assert settings.get(PLUGIN, SCHEMA)["retries"] == 3
    assert settings.stored("acme.other") == {"mode": "fast"}


def test_settings_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rt.sqlite"
    db = RuntimeDatabase(path)
    PluginSettings(db).set(PLUGIN, SCHEMA, {"token": "ünï", "server": {"host": "h"}})
    db.close()

    reopened = RuntimeDatabase(path)
    try:
        settings = PluginSettings(reopened)
        assert settings.stored(PLUGIN) == {"token": "ünï", "server": {"host": "h"}}
        assert settings.get(PLUGIN, SCHEMA)["retries"] == 3
    finally:
        reopened.close()
