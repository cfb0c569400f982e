"""The plugin manifest: what a valid ``plugport.toml`` becomes, and what every mistake reports.

Negative tests check the exact problem path and that the message names the bad value and what
is allowed, because those messages are the only help a plugin author gets.
"""

from __future__ import annotations

import tomllib
import typing
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from pydantic import ValidationError

from plugport._permissions import describe_permissions
from plugport.errors import InvalidInputError, ManifestError, Problem
from plugport.manifest import (
    ACTIVATION_KINDS,
    CATEGORIES,
    LIMIT_BOUNDS,
    MANIFEST_FILENAME,
    MAX_MANIFEST_BYTES,
    PERMISSION_NAMES,
    UI_CONTRIBUTIONS,
    UI_PERMISSIONS,
    Limits,
    Manifest,
    Permissions,
    check_plugin_name,
    load_manifest,
    manifest_json_schema,
    match_host,
    match_topic,
    parse_manifest,
    parse_manifest_bytes,
    validate_manifest_data,
)

if TYPE_CHECKING:
    from pathlib import Path

FULL_TOML = """\
name = "acme.hello"
version = "1.0.0"
display_name = "Hello"
description = "Greets people when tasks are created."
authors = ["Ada Lovelace <ada@example.com>"]
license = "Apache-2.0"
homepage = "https://example.com/hello"
repository = "https://github.com/acme/hello"
categories = ["automation", "integration"]
tags = ["greeting", "demo"]
icon = "assets/icon.png"
runtime = "python"
entry = "acme_hello.plugin:HelloPlugin"
activation = [
    "on_startup",
    "on_hook:on_task_created",
    "on_command:hello.greet",
    "on_event:tasks.created",
]

[engines]
plugport = ">=0.1"
myapp = ">=2.3,<3"

[dependencies]
"acme.utils" = "~=1.2"

[permissions]
network = ["api.slack.com", "*.github.com", "hooks.example.com:8443"]
storage = "10 MiB"
ui = ["messages", "commands", "widgets"]
config = true

[permissions.events]
publish = ["hello.greeted"]
subscribe = ["tasks.*"]

[limits]
memory_mb = 256
cpu_seconds = 60
timeout_ms = 10000
max_concurrency = 2

[contributes.hooks]
on_task_created = 10

[[contributes.commands]]
id = "hello.greet"
title = "Say hello"
description = "Greets the user."

[[contributes.widgets]]
id = "hello.banner"
title = "Hello banner"

[contributes.widgets.config]
type = "object"

[contributes.widgets.config.properties.colour]
type = "string"
default = "blue"

[config]
type = "object"
required = ["greeting"]

[config.properties.greeting]
type = "string"
default = "Hello"

[config.properties.repeat]
type = "integer"
minimum = 1
default = 1

[config.properties.loud]
type = "boolean"
"""

MINIMAL: dict[str, Any] = {
    "name": "acme.hello",
    "version": "1.0.0",
    "entry": "acme_hello.plugin:HelloPlugin",
}
MINIMAL_TOML = """\
name = "acme.hello"
version = "1.0.0"
entry = "acme_hello.plugin:HelloPlugin"
"""


def make(**fields: Any) -> Manifest:
    """A valid manifest: the minimal one with ``fields`` added or replaced."""
    return validate_manifest_data({**MINIMAL, **fields})


def problems_of(**fields: Any) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        validate_manifest_data({**MINIMAL, **fields})
    return info.value.problems


def only_problem(**fields: Any) -> Problem:
    problems = problems_of(**fields)
    assert len(problems) == 1, problems
    return problems[0]


def toml_problems(text: str) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    return info.value.problems


def assert_problem(problem: Problem, path: str, *fragments: str) -> None:
    assert problem.path == path, problem
    for fragment in fragments:
        assert fragment in problem.message, (fragment, problem.message)


# --- a complete manifest -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full() -> Manifest:
    return parse_manifest(FULL_TOML)


def test_full_manifest_identity(full: Manifest) -> None:
    assert full.name == "acme.hello"
    assert full.version == "1.0.0"
    assert full.display_name == "Hello"
    assert full.description == "Greets people when tasks are created."
    assert full.authors == ["Ada Lovelace <ada@example.com>"]
    assert full.license == "Apache-2.0"
    assert full.homepage == "https://example.com/hello"
    assert full.repository == "https://github.com/acme/hello"
    assert full.categories == ["automation", "integration"]
    assert full.tags == ["greeting", "demo"]
    assert full.icon == "assets/icon.png"
    assert full.runtime == "python"
    assert full.entry == "acme_hello.plugin:HelloPlugin"
    assert full.namespace == "acme"
    assert full.archive_filename == "acme.hello-1.0.0.plugport"


def test_full_manifest_engines_and_dependencies_are_normalised(full: Manifest) -> None:
    assert full.engines == {"plugport": ">=0.1", "myapp": "<3,>=2.3"}
    assert full.dependencies == {"acme.utils": "~=1.2"}


def test_full_manifest_permissions(full: Manifest) -> None:
    permissions = full.permissions
    assert permissions.network == ["api.slack.com", "*.github.com", "hooks.example.com:8443"]
    assert permissions.storage == 10 * 2**20
    assert permissions.events.publish == ["hello.greeted"]
    assert permissions.events.subscribe == ["tasks.*"]
    assert permissions.ui == ["messages", "commands", "widgets"]
    assert permissions.config is True
    assert not permissions.is_empty()


def test_full_manifest_limits_and_contributions(full: Manifest) -> None:
    assert full.limits == Limits(
        memory_mb=256, cpu_seconds=60, timeout_ms=10_000, max_concurrency=2
    )
    assert full.contributes.hooks == {"on_task_created": 10}
    [command] = full.contributes.commands
    assert (command.id, command.title, command.description) == (
        "hello.greet",
        "Say hello",
        "Greets the user.",
    )
    [widget] = full.contributes.widgets
    assert widget.id == "hello.banner"
    assert widget.config["properties"]["colour"] == {"type": "string", "default": "blue"}


def test_full_manifest_activation_and_config(full: Manifest) -> None:
    assert full.activation_events() == [
        "on_startup",
        "on_hook:on_task_created",
        "on_command:hello.greet",
        "on_event:tasks.created",
    ]
    # Properties without a default (loud) are left out.
    assert full.config_defaults() == {"greeting": "Hello", "repeat": 1}
    assert full.config["required"] == ["greeting"]


def test_manifest_is_immutable(full: Manifest) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        full.version = "2.0.0"  # type: ignore[misc]


def test_minimal_manifest_gets_defaults() -> None:
    manifest = parse_manifest(MINIMAL_TOML)
    assert manifest.runtime == "python"
    assert manifest.permissions == Permissions()
    assert manifest.permissions.is_empty()
    assert manifest.limits == Limits()
    assert manifest.engines == {}
    assert manifest.dependencies == {}
    assert manifest.config == {}
    assert manifest.config_defaults() == {}
    assert manifest.activation_events() == []
    assert manifest.homepage is None
    assert manifest.icon is None


def test_validate_manifest_data_takes_a_dict_equal_to_the_parsed_toml() -> None:
    data = tomllib.loads(FULL_TOML)
    assert validate_manifest_data(data) == parse_manifest(FULL_TOML)


# --- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "canonical"),
    [
        ("1.0.0", "1.0.0"),
        ("1.0.0-rc1", "1.0.0rc1"),
        ("v2.1", "2.1"),
        ("1.0-post1", "1.0.post1"),
        (" 1.2 ", "1.2"),
    ],
)
def test_version_is_normalised(version: str, canonical: str) -> None:
    manifest = make(version=version)
    assert manifest.version == canonical
    assert manifest.archive_filename == f"acme.hello-{canonical}.plugport"


@pytest.mark.parametrize(
    ("specifier", "canonical"),
    [
        (">=2.3,<3", "<3,>=2.3"),
        (" >= 1.0 ", ">=1.0"),
        ("*", "*"),
        ("", "*"),
        ("==1.4.*", "==1.4.*"),
    ],
)
def test_engine_and_dependency_ranges_are_normalised(specifier: str, canonical: str) -> None:
    manifest = make(engines={"myapp": specifier}, dependencies={"acme.utils": specifier})
    assert manifest.engines == {"myapp": canonical}
    assert manifest.dependencies == {"acme.utils": canonical}


@pytest.mark.parametrize(
    ("pattern", "canonical"),
    [
        ("api.slack.com", "api.slack.com"),
        ("*.github.com", "*.github.com"),
        ("hooks.example.com:8443", "hooks.example.com:8443"),
        ("API.Slack.COM", "api.slack.com"),
        ("*.GitHub.com", "*.github.com"),
        ("  api.slack.com  ", "api.slack.com"),
        ("Hooks.Example.com:08443", "hooks.example.com:8443"),
        ("*.example.com:8080", "*.example.com:8080"),
        ("my-host.example.co.uk", "my-host.example.co.uk"),
    ],
)
def test_network_patterns_accepted_and_normalised(pattern: str, canonical: str) -> None:
    assert make(permissions={"network": [pattern]}).permissions.network == [canonical]


# --- the acceptance case ----------------------------------------------------------------


def test_bad_version_unknown_permission_and_typo_give_exactly_three_problems() -> None:
    text = MINIMAL_TOML.replace('"1.0.0"', '"1.0.x"') + (
        'descripton = "Says hello"\n\n[permissions]\nfilesystem = true\n'
    )
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, source="plugins/hello/plugport.toml")

    error = info.value
    assert isinstance(error, InvalidInputError)
    assert error.source == "plugins/hello/plugport.toml"
    assert str(error).startswith("plugins/hello/plugport.toml: invalid manifest (3 problems)")
    by_path = {p.path: p for p in error.problems}
    assert len(error.problems) == 3
    assert set(by_path) == {"version", "permissions.filesystem", "descripton"}

    version = by_path["version"]
    assert_problem(version, "version", "'1.0.x'", "is not a PEP 440 version", "'1.0.0'")
    assert version.value == "1.0.x"

    permission = by_path["permissions.filesystem"]
    assert_problem(
        permission,
        "permissions.filesystem",
        "unknown permission 'filesystem'",
        "valid permissions here: config, credentials, events, mail, network, secrets, storage, "
        "tasks, ui",
    )

    typo = by_path["descripton"]
    assert_problem(typo, "descripton", "unknown key 'descripton'", "did you mean 'description'?")
    assert "valid keys here: activation, authors," in typo.message


def test_problem_str_and_error_str_list_every_problem() -> None:
    problems = problems_of(version="1.0.x", descripton="x")
    assert str(problems[0]).startswith("version: '1.0.x' is not a PEP 440 version")
    assert str(Problem("", "not valid TOML")) == "not valid TOML"
    error = ManifestError([Problem("name", "bad")])
    assert str(error) == "invalid manifest (1 problem)\n  - name: bad"


def test_missing_required_fields() -> None:
    with pytest.raises(ManifestError) as info:
        validate_manifest_data({})
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("name", "required, but missing"),
        ("version", "required, but missing"),
        ("entry", "required, but missing"),
    ]


def test_data_that_is_not_a_table() -> None:
    with pytest.raises(ManifestError) as info:
        validate_manifest_data(["name", "acme.hello"])
    [problem] = info.value.problems
    assert_problem(problem, "", "valid dictionary", "(got ['name', 'acme.hello'])")


# --- names, entry point, identity fields --------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "acme.hello",
        "a1.b2",
        "my-org.my-plugin",
        "00.11",
        f"{'a' * 64}.{'b' * 64}",
    ],
)
def test_valid_plugin_names(name: str) -> None:
    assert check_plugin_name(name) == name
    assert make(name=name).name == name


@pytest.mark.parametrize(
    "name",
    [
        "Acme.hello",
        "acme.Hello",
        "acme",
        "acme.hello.world",
        "a.hello",
        "acme.h",
        f"{'a' * 65}.hello",
        "-acme.hello",
        "acme-.hello",
        "acme.-hello",
        "acme.hello-",
        "acme.hel_lo",
        "acme_corp.hello",
        "acme..hello",
        "acme hello.x",
    ],
)
def test_invalid_plugin_names(name: str) -> None:
    problem = only_problem(name=name)
    assert_problem(problem, "name", repr(name), "is not a plugin name", "'namespace.plugin'")
    assert "2-64 lowercase letters, digits or '-'" in problem.message
    assert problem.value == name
    with pytest.raises(ValueError, match="is not a plugin name"):
        check_plugin_name(name)


@pytest.mark.parametrize("entry", ["pkg:Plugin", "pkg.mod.sub:Plugin_1", "_p._m:_C"])
def test_valid_entry_points(entry: str) -> None:
    assert make(entry=entry).entry == entry


@pytest.mark.parametrize(
    "entry",
    ["pkg", "pkg:", ":Plugin", "pkg.mod:Plugin.method", "pkg-mod:Plugin", "1pkg:Plugin", "a/b:C"],
)
def test_invalid_entry_points(entry: str) -> None:
    assert_problem(
        only_problem(entry=entry),
        "entry",
        repr(entry),
        "is not an entry point",
        "'package.module:ClassName'",
    )


@pytest.mark.parametrize(
    ("field", "value", "fragments"),
    [
        ("homepage", "ftp://example.com", ("'ftp://example.com'", "'https://example.com/...'")),
        ("repository", "github.com/acme", ("'github.com/acme'", "not a web address")),
        ("homepage", "https://localhost", ("'https://localhost'", "not a web address")),
        ("icon", "../icon.png", ("'../icon.png'", "'assets/icon.png'", "no '..'")),
        ("icon", "/etc/icon.png", ("'/etc/icon.png'", "not a path inside the plugin")),
        ("icon", "assets\\icon.png", ("'assets\\\\icon.png'", "'/' separators")),
        ("display_name", "x" * 81, ("at most 80 characters", "(got 'xxx")),
        ("license", "x" * 101, ("at most 100 characters",)),
        ("description", "x" * 1001, ("at most 1000 characters",)),
    ],
)
def test_invalid_identity_fields(field: str, value: str, fragments: tuple[str, ...]) -> None:
    assert_problem(only_problem(**{field: value}), field, *fragments)


def test_empty_author_is_rejected_at_its_index() -> None:
    problem = only_problem(authors=["Ada", ""])
    assert_problem(problem, "authors[1]", "at least 1 character", "(got '')")


def test_icon_path_is_normalised() -> None:
    assert make(icon="assets/./icon.png").icon == "assets/icon.png"


# --- tags and categories ------------------------------------------------------------------------


def test_ten_tags_are_allowed_eleven_are_not() -> None:
    ten = [f"tag{i}" for i in range(10)]
    assert make(tags=ten).tags == ten
    problem = only_problem(tags=[*ten, "tag10"])
    assert_problem(problem, "tags", "at most 10 items", "not 11")
    # Long values are shortened in the message, not in .value.
    assert "...)" in problem.message
    assert problem.value == [*ten, "tag10"]


@pytest.mark.parametrize("tag", ["Bad!", "UPPER", "-lead", "has space", "a" * 33, "under_score"])
def test_tags_with_bad_characters(tag: str) -> None:
    assert_problem(
        only_problem(tags=["ok", tag]),
        "tags[1]",
        repr(tag),
        "is not a tag",
        "1-32 lowercase letters, digits or '-'",
    )


def test_duplicate_tags() -> None:
    assert_problem(
        only_problem(tags=["demo", "greeting", "demo"]),
        "tags",
        "each value may appear once",
        "repeated: demo",
    )


def test_category_outside_the_vocabulary() -> None:
    problem = only_problem(categories=["automation", "games"])
    assert_problem(problem, "categories[1]", "(got 'games')", "'automation'", "'task-processor'")
    assert problem.value == "games"


def test_duplicate_categories() -> None:
    assert_problem(only_problem(categories=["ui", "ui"]), "categories", "repeated: ui")


def test_exported_vocabularies_match_the_model() -> None:
    assert set(PERMISSION_NAMES) == set(Permissions.model_fields)
    assert set(LIMIT_BOUNDS) == set(Limits.model_fields)
    [category_type] = typing.get_args(Manifest.model_fields["categories"].annotation)
    assert set(CATEGORIES) == set(typing.get_args(category_type))
    assert MANIFEST_FILENAME == "plugport.toml"
    [surface] = typing.get_args(Permissions.model_fields["ui"].annotation)
    assert typing.get_args(surface) == UI_PERMISSIONS
    assert set(UI_CONTRIBUTIONS.values()) < set(UI_PERMISSIONS)
    for category in CATEGORIES:
        assert make(categories=[category]).categories == [category]
    assert make(permissions={"ui": list(UI_PERMISSIONS)}).permissions.ui == list(UI_PERMISSIONS)


# --- unknown keys at every level ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "path", "fragments"),
    [
        (
            "[limits]\nmemory = 1\n",
            "limits.memory",
            (
                "unknown key 'memory'",
                "did you mean 'memory_mb'?",
                "valid keys here: cpu_seconds, max_concurrency, memory_mb, timeout_ms",
            ),
        ),
        (
            "[permissions.events]\npublsh = []\n",
            "permissions.events.publsh",
            (
                "unknown key 'publsh'",
                "did you mean 'publish'?",
                "valid keys here: publish, subscribe",
            ),
        ),
        (
            "[permissions]\nnetwrk = []\n",
            "permissions.netwrk",
            ("unknown permission 'netwrk'", "did you mean 'network'?"),
        ),
        (
            "[contributes]\nhook = {}\n",
            "contributes.hook",
            ("unknown key 'hook'", "did you mean 'hooks'?"),
        ),
        (
            '[[contributes.commands]]\nid = "a.b"\ntitle = "A"\nsummary = "x"\n',
            "contributes.commands[0].summary",
            ("unknown key 'summary'", "valid keys here: description, id, title"),
        ),
        (
            '[[contributes.widgets]]\nid = "w"\ntitle = "W"\nschema = {}\n',
            "contributes.widgets[0].schema",
            (
                "unknown key 'schema'",
                "valid keys here: config, description, id, refresh_s, size, title",
            ),
        ),
        (
            "zzz = 1\n",
            "zzz",
            ("unknown key 'zzz';", "valid keys here: activation"),
        ),
    ],
)
def test_unknown_nested_keys(toml: str, path: str, fragments: tuple[str, ...]) -> None:
    [problem] = toml_problems(MINIMAL_TOML + toml)
    assert_problem(problem, path, *fragments)
    assert problem.value is None


def test_unknown_key_without_close_match_has_no_hint() -> None:
    problem = only_problem(zzz=1)
    assert "did you mean" not in problem.message


def test_typo_inside_a_command_is_reported_with_the_missing_field() -> None:
    problems = toml_problems(MINIMAL_TOML + '[[contributes.commands]]\nid = "a.b"\ntitel = "A"\n')
    assert [p.path for p in problems] == [
        "contributes.commands[0].title",
        "contributes.commands[0].titel",
    ]
    assert problems[0].message == "required, but missing"
    assert "did you mean 'title'?" in problems[1].message


# --- network permissions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fragments"),
    [
        ("10.0.0.1", ("is an IP address", "'api.slack.com'")),
        ("::1", ("is an IP address", "'*.github.com'")),
        ("[::1]", ("is an IP address", "'host:port'")),
        ("2001:db8::1", ("is an IP address",)),
        ("10.0.0.1:8080", ("looks like an IP address", "'api.slack.com'")),
        ("127.1", ("looks like an IP address", "'api.slack.com'")),
        ("example.123", ("looks like an IP address",)),
        ("*", ("is too broad", "'*.github.com'")),
        ("*.com", ("is too broad", "subdomains of a named domain")),
        ("*.com:443", ("is too broad",)),
        ("a.*.com", ("is not a host pattern", "'*' only as a whole first label")),
        ("**.github.com", ("is not a host pattern", "'*' only as a whole first label")),
        ("localhost", ("is not a host pattern", "'api.slack.com'")),
        ("localhost:8080", ("is not a host pattern",)),
        ("api.slack.com.", ("is not a host pattern",)),
        ("-api.slack.com", ("is not a host pattern",)),
        ("https://api.slack.com", ("without scheme or path", "'api.slack.com'")),
        ("api.slack.com/hooks", ("without scheme or path",)),
        ("user@api.slack.com", ("without scheme or path",)),
        ("api.slack.com?x=1", ("without scheme or path",)),
        ("api slack.com", ("without scheme or path",)),
        ("", ("without scheme or path",)),
        ("api.slack.com:0", ("invalid port '0'", "ports are 1-65535")),
        ("api.slack.com:65536", ("invalid port '65536'", "ports are 1-65535")),
        ("api.slack.com:abc", ("invalid port 'abc'", "ports are 1-65535")),
        ("api.slack.com:-1", ("invalid port '-1'", "ports are 1-65535")),
    ],
)
def test_network_patterns_rejected(pattern: str, fragments: tuple[str, ...]) -> None:
    problem = only_problem(permissions={"network": ["api.slack.com", pattern]})
    assert_problem(problem, "permissions.network[1]", repr(pattern), *fragments)
    assert problem.value == pattern


def test_network_port_bounds_are_inclusive() -> None:
    network = ["a.example.com:1", "b.example.com:65535"]
    assert make(permissions={"network": network}).permissions.network == network


def test_duplicate_network_patterns_after_normalisation() -> None:
    problem = only_problem(permissions={"network": ["API.Slack.com", "api.slack.com"]})
    assert_problem(problem, "permissions.network", "each value may appear once", "api.slack.com")


def test_bracketed_ipv6_with_port_is_rejected_as_an_ip_address() -> None:
    problem = only_problem(permissions={"network": ["[::1]:443"]})
    assert_problem(problem, "permissions.network[0]", "'[::1]:443'", "IP address")


def test_empty_port_is_rejected() -> None:
    problem = only_problem(permissions={"network": ["api.slack.com:"]})
    assert_problem(problem, "permissions.network[0]", "'api.slack.com:'", "port")


def test_non_ascii_digit_port_gets_the_port_message() -> None:
    problem = only_problem(permissions={"network": ["api.slack.com:\u00b2"]})
    assert_problem(problem, "permissions.network[0]", "invalid port", "ports are 1-65535")


# --- match_host and match_topic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "port", "expected"),
    [
        ("api.slack.com", "api.slack.com", 443, True),
        ("api.slack.com", "api.slack.com", 80, True),
        ("api.slack.com", "api.slack.com", 8443, False),
        ("api.slack.com", "API.Slack.COM", 443, True),
        ("api.slack.com", "api.slack.com.", 443, True),
        ("api.slack.com", "slack.com", 443, False),
        ("api.slack.com", "x.api.slack.com", 443, False),
        ("api.slack.com", "api.slack.com.evil.net", 443, False),
        # A wildcard covers subdomains only, at any depth, never the domain itself.
        ("*.github.com", "api.github.com", 443, True),
        ("*.github.com", "a.b.github.com", 80, True),
        ("*.github.com", "API.GitHub.com.", 443, True),
        ("*.github.com", "github.com", 443, False),
        ("*.github.com", ".github.com", 443, False),
        ("*.github.com", "evilgithub.com", 443, False),
        ("*.github.com", "github.com.evil.net", 443, False),
        ("*.github.com", "api.github.com", 22, False),
        # An explicit port admits only that port.
        ("hooks.example.com:8443", "hooks.example.com", 8443, True),
        ("hooks.example.com:8443", "hooks.example.com", 443, False),
        ("hooks.example.com:8443", "hooks.example.com", 80, False),
        ("hooks.example.com:443", "hooks.example.com", 443, True),
        ("hooks.example.com:443", "hooks.example.com", 80, False),
        ("*.example.com:8443", "a.example.com", 8443, True),
        ("*.example.com:8443", "a.example.com", 443, False),
        ("*.example.com:8443", "example.com", 8443, False),
    ],
)
def test_match_host(pattern: str, host: str, port: int, expected: bool) -> None:
    assert match_host(pattern, host, port) is expected


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("tasks.created", "tasks.created", True),
        ("tasks.created", "tasks.deleted", False),
        ("tasks.created", "tasks.created.late", False),
        ("tasks.created", "tasks", False),
        ("tasks.*", "tasks.created", True),
        ("tasks.*", "tasks", False),
        ("tasks.*", "tasks.a.b", False),
        ("*.created", "tasks.created", True),
        ("*.created", "tasks.deleted", False),
        ("*.*", "a.b", True),
        ("*", "a", True),
        ("*", "a.b", False),
        ("tasks.**", "tasks.a", True),
        ("tasks.**", "tasks.a.b.c", True),
        ("tasks.**", "tasks", False),
        ("tasks.**", "other.a", False),
        ("*.**", "a", False),
        ("*.**", "a.b.c", True),
        ("**", "anything", True),
        ("**", "anything.at.all", True),
    ],
)
def test_match_topic(pattern: str, topic: str, expected: bool) -> None:
    assert match_topic(pattern, topic) is expected


# --- events and activation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["tasks.created", "tasks.*", "*.created", "tasks.**", "**", "*", "a-b.c_d.e1"]
)
def test_valid_topic_patterns(pattern: str) -> None:
    events = {"publish": [pattern], "subscribe": [pattern]}
    permissions = make(permissions={"events": events}).permissions
    assert permissions.events.publish == permissions.events.subscribe == [pattern]


@pytest.mark.parametrize(
    "pattern",
    ["Tasks.created", "tasks..created", "tasks.**.x", "tasks.***", "tasks. created", ".tasks", ""],
)
@pytest.mark.parametrize("direction", ["publish", "subscribe"])
def test_invalid_topic_patterns(pattern: str, direction: str) -> None:
    problem = only_problem(permissions={"events": {direction: ["tasks.created", pattern]}})
    assert_problem(
        problem,
        f"permissions.events.{direction}[1]",
        repr(pattern),
        "is not a topic pattern",
        "'tasks.created'",
        "a final '**'",
    )


def test_valid_activation_events() -> None:
    manifest = make(
        activation=["on_startup", "on_hook:on_save", "on_command:hello.greet", "on_event:a.b"],
        contributes={"hooks": {"on_save": 0}, "commands": [{"id": "hello.greet", "title": "Hi"}]},
        permissions={"events": {"subscribe": ["a.b"]}},
    )
    assert manifest.activation_events() == list(manifest.activation)


@pytest.mark.parametrize("event", ["on_boot", "on_startup:now", "on_hook", "startup", "on_event"])
def test_unknown_activation_kind_lists_the_valid_kinds(event: str) -> None:
    problem = only_problem(activation=[event])
    assert_problem(
        problem,
        "activation[0]",
        f"{event!r} is not an activation event",
        "use one of " + ", ".join(ACTIVATION_KINDS),
    )


@pytest.mark.parametrize(
    ("event", "fragments"),
    [
        ("on_hook:", ("'on_hook:'", "'' is not a name", "letters, digits and '_'")),
        ("on_hook:1st", ("'1st' is not a name",)),
        ("on_command:Hello", ("'Hello' is not a command or widget id", "'hello.greet'")),
        ("on_event:Tasks", ("'Tasks' is not a topic pattern", "'tasks.created'")),
    ],
)
def test_activation_event_with_a_bad_argument(event: str, fragments: tuple[str, ...]) -> None:
    assert_problem(only_problem(activation=[event]), "activation[0]", *fragments)


def test_activation_events_must_refer_to_contributions_and_subscriptions() -> None:
    problems = problems_of(activation=["on_startup", "on_hook:x", "on_command:y", "on_event:t"])
    assert [(p.path, p.value) for p in problems] == [
        ("activation[1]", "on_hook:x"),
        ("activation[2]", "on_command:y"),
        ("activation[3]", "on_event:t"),
    ]
    assert_problem(
        problems[0], "activation[1]", "names hook 'x'", "contributes.hooks", "(contributed: none)"
    )
    assert_problem(
        problems[1],
        "activation[2]",
        "names command 'y'",
        "contributes.commands",
        "(contributed: none)",
    )
    assert_problem(
        problems[2],
        "activation[3]",
        "topic 't'",
        "permissions.events.subscribe does not cover",
        "(subscribed: none)",
    )


def test_activation_problems_list_what_is_contributed() -> None:
    problems = problems_of(
        activation=["on_hook:on_load", "on_command:b.c", "on_event:x.y"],
        contributes={
            "hooks": {"on_save": 1, "on_open": 2},
            "commands": [{"id": "b.a", "title": "A"}, {"id": "a.a", "title": "B"}],
        },
        permissions={"events": {"subscribe": ["tasks.*", "x.z"]}},
    )
    assert [p.path for p in problems] == ["activation[0]", "activation[1]", "activation[2]"]
    assert "(contributed: on_open, on_save)" in problems[0].message
    assert "(contributed: a.a, b.a)" in problems[1].message
    assert "(subscribed: tasks.*, x.z)" in problems[2].message


@pytest.mark.parametrize(
    ("subscribe", "topic"),
    [
        ("a.b", "a.b"),
        ("a.*", "a.b"),
        ("*.b", "a.b"),
        ("a.**", "a.b"),
        ("a.**", "a.b.c"),
        ("a.*", "a.*"),
        ("a.**", "a.*"),
        ("a.**", "a.**"),
        ("a.**", "a.*.c"),
        ("**", "a.**"),
    ],
)
def test_on_event_covered_by_subscription(subscribe: str, topic: str) -> None:
    manifest = make(
        activation=[f"on_event:{topic}"], permissions={"events": {"subscribe": [subscribe]}}
    )
    assert manifest.activation_events() == [f"on_event:{topic}"]


@pytest.mark.parametrize(
    ("subscribe", "topic"),
    [
        ("a.b", "a.c"),
        ("a.*", "a.b.c"),
        ("a.*", "a.**"),
        ("a.**", "a"),
        ("a.**", "ab.*"),
        ("b.**", "a.*"),
    ],
)
def test_on_event_not_covered_by_subscription(subscribe: str, topic: str) -> None:
    problem = only_problem(
        activation=[f"on_event:{topic}"], permissions={"events": {"subscribe": [subscribe]}}
    )
    assert_problem(
        problem, "activation[0]", f"topic {topic!r}", "does not cover", f"(subscribed: {subscribe})"
    )


def test_activation_is_implied_by_hooks_then_commands() -> None:
    manifest = make(
        contributes={
            "hooks": {"on_save": 0, "on_open": 5},
            "commands": [{"id": "hello.greet", "title": "Hi"}],
            "widgets": [{"id": "hello.banner", "title": "Banner"}],
        }
    )
    assert manifest.activation == []
    assert manifest.activation_events() == [
        "on_hook:on_save",
        "on_hook:on_open",
        "on_command:hello.greet",
    ]
    # The returned list is a copy; the manifest stays as validated.
    manifest.activation_events().append("on_startup")
    assert "on_startup" not in manifest.activation_events()


# --- storage, ui, config permissions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "size"),
    [
        (0, 0),
        (1024, 1024),
        ("10 MiB", 10 * 2**20),
        ("512 KiB", 512 * 2**10),
        ("10 MB", 10 * 10**6),
        ("3 kb", 3000),
        (" 2048 ", 2048),
        ("5b", 5),
        ("1 GB", 10**9),
        ("1 GiB", 2**30),
        (2**30, 2**30),
    ],
)
def test_storage_sizes(storage: int | str, size: int) -> None:
    assert make(permissions={"storage": storage}).permissions.storage == size


@pytest.mark.parametrize(
    ("storage", "fragments"),
    [
        (-1, ("greater than or equal to 0", "(got -1)")),
        (2**30 + 1, ("less than or equal to 1073741824", "(got 1073741825)")),
        ("2 GiB", ("less than or equal to 1073741824", "(got '2 GiB')")),
        ("10 TiB", ("'10 TiB' is not a size", "'512 KiB', '10 MB'")),
        ("1.5 MiB", ("'1.5 MiB' is not a size", "number of bytes")),
        ("-1 KiB", ("'-1 KiB' is not a size",)),
        ("lots", ("'lots' is not a size",)),
        (1.5, ("(got 1.5)",)),
    ],
)
def test_storage_rejected(storage: object, fragments: tuple[str, ...]) -> None:
    assert_problem(
        only_problem(permissions={"storage": storage}), "permissions.storage", *fragments
    )


def test_ui_value_outside_the_vocabulary() -> None:
    problem = only_problem(permissions={"ui": ["messages", "files"]})
    assert_problem(
        problem,
        "permissions.ui[1]",
        "(got 'files')",
        "'messages', 'metrics', 'pages', 'themes' or 'widgets'",
    )


def test_duplicate_ui_values() -> None:
    problem = only_problem(permissions={"ui": ["widgets", "widgets"]})
    assert_problem(problem, "permissions.ui", "repeated: widgets")


def test_config_permission_must_be_a_boolean() -> None:
    problem = only_problem(permissions={"config": "sometimes"})
    assert_problem(problem, "permissions.config", "valid boolean", "(got 'sometimes')")


# --- runtime ------------------------------------------------------------------------------------


def test_runtime_wasm_is_reserved() -> None:
    problem = only_problem(runtime="wasm")
    assert_problem(problem, "runtime", "'wasm' is reserved", "runs 'python'")


def test_runtime_java_is_rejected() -> None:
    problem = only_problem(runtime="java")
    assert_problem(problem, "runtime", "unknown runtime 'java'", "'python'")


def test_runtime_java_message_does_not_offer_wasm() -> None:
    problem = only_problem(runtime="java")
    assert "'wasm'" not in problem.message


# --- limits -------------------------------------------------------------------------------------


def test_limit_defaults() -> None:
    defaults = {name: default for name, (default, _, _) in LIMIT_BOUNDS.items()}
    assert Limits().model_dump() == defaults
    assert defaults == {
        "memory_mb": 128,
        "cpu_seconds": 30,
        "timeout_ms": 5_000,
        "max_concurrency": 4,
    }
    assert make(limits={"memory_mb": 96}).limits == Limits(memory_mb=96)


@pytest.mark.parametrize("name", list(LIMIT_BOUNDS))
def test_limit_bounds_are_inclusive(name: str) -> None:
    _, low, high = LIMIT_BOUNDS[name]
    assert getattr(make(limits={name: low}).limits, name) == low
    assert getattr(make(limits={name: high}).limits, name) == high


@pytest.mark.parametrize("name", list(LIMIT_BOUNDS))
def test_limit_just_below_minimum(name: str) -> None:
    _, low, _ = LIMIT_BOUNDS[name]
    problem = only_problem(limits={name: low - 1})
    assert_problem(problem, f"limits.{name}", f"greater than or equal to {low}", f"(got {low - 1})")


@pytest.mark.parametrize("name", list(LIMIT_BOUNDS))
def test_limit_just_above_maximum(name: str) -> None:
    _, _, high = LIMIT_BOUNDS[name]
    problem = only_problem(limits={name: high + 1})
    assert_problem(problem, f"limits.{name}", f"less than or equal to {high}", f"(got {high + 1})")


def test_limits_tightened_takes_the_smaller_of_each() -> None:
    wanted = Limits(memory_mb=512, cpu_seconds=10, timeout_ms=20_000, max_concurrency=2)
    ceiling = Limits(memory_mb=256, cpu_seconds=60, timeout_ms=10_000, max_concurrency=8)
    assert wanted.tightened(ceiling) == Limits(
        memory_mb=256, cpu_seconds=10, timeout_ms=10_000, max_concurrency=2
    )
    assert wanted.tightened(wanted) == wanted
    # Neither side changes.
    assert wanted.memory_mb == 512
    assert ceiling.cpu_seconds == 60


# --- contributions ------------------------------------------------------------------------------


def test_duplicate_command_ids() -> None:
    commands = [
        {"id": "hello.greet", "title": "A"},
        {"id": "hello.wave", "title": "B"},
        {"id": "hello.greet", "title": "C"},
    ]
    problem = only_problem(contributes={"commands": commands})
    assert_problem(problem, "contributes", "commands ids must be unique", "repeated: hello.greet")


def test_duplicate_widget_ids() -> None:
    widgets = [{"id": "w", "title": "A"}, {"id": "w", "title": "B"}]
    problem = only_problem(contributes={"widgets": widgets})
    assert_problem(problem, "contributes", "widgets ids must be unique", "repeated: w")


@pytest.mark.parametrize(
    ("contributes", "path", "fragments"),
    [
        (
            {"commands": [{"id": "Hello.Greet", "title": "A"}]},
            "contributes.commands[0].id",
            ("'Hello.Greet' is not a command or widget id", "'hello.greet'"),
        ),
        (
            {"commands": [{"id": "hello", "title": ""}]},
            "contributes.commands[0].title",
            ("at least 1 character",),
        ),
        (
            {"widgets": [{"id": "w..x", "title": "W"}]},
            "contributes.widgets[0].id",
            ("'w..x' is not a command or widget id",),
        ),
        (
            {"hooks": {"on_save": 1001}},
            "contributes.hooks.on_save",
            ("less than or equal to 1000", "(got 1001)"),
        ),
        (
            {"hooks": {"on_save": -1001}},
            "contributes.hooks.on_save",
            ("greater than or equal to -1000", "(got -1001)"),
        ),
        (
            {"hooks": {"1st": 0}},
            "contributes.hooks.1st (key)",
            ("'1st' is not a name", "not first a digit"),
        ),
    ],
)
def test_invalid_contributions(
    contributes: dict[str, Any], path: str, fragments: tuple[str, ...]
) -> None:
    assert_problem(only_problem(contributes=contributes), path, *fragments)


def test_hook_priority_bounds_are_inclusive() -> None:
    hooks = {"first": 1000, "last": -1000}
    assert make(contributes={"hooks": hooks}).contributes.hooks == hooks


# --- settings schemas ---------------------------------------------------------------------------

OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "greeting": {"type": "string", "default": "Hello"},
        "repeat": {"type": "integer", "minimum": 1, "default": 3},
        "loud": {"type": "boolean"},
        "channel": {"type": ["string", "null"], "default": None},
    },
}


def test_config_defaults() -> None:
    manifest = make(config=OBJECT_SCHEMA)
    assert manifest.config_defaults() == {"greeting": "Hello", "repeat": 3, "channel": None}


@pytest.mark.parametrize(
    ("schema", "fragments"),
    [
        ({"type": "array"}, ("type = 'object'",)),
        ({"properties": {}}, ("type = 'object'",)),
        ({"type": 3}, ("type = 'object'",)),
        (
            {"type": "object", "properties": {"x": {"type": 3}}},
            ("not a valid JSON Schema at 'properties/x/type'", "3 is not valid"),
        ),
        (
            {"type": "object", "required": "x"},
            ("not a valid JSON Schema at 'required'", "'x' is not of type 'array'"),
        ),
        (
            {"type": "object", "properties": {"repeat": {"type": "integer", "default": "3"}}},
            ("default of property 'repeat' ('3')", "'3' is not of type 'integer'"),
        ),
        (
            {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "default": 0}},
            },
            ("default of property 'n' (0)", "0 is less than the minimum of 1"),
        ),
    ],
)
def test_invalid_config_schema(schema: dict[str, Any], fragments: tuple[str, ...]) -> None:
    problem = only_problem(config=schema)
    assert_problem(problem, "config", *fragments)
    assert problem.value == schema


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array"},
        {"type": "object", "properties": {"colour": {"type": 3}}},
        {"type": "object", "properties": {"colour": {"enum": ["red"], "default": "blue"}}},
    ],
)
def test_invalid_widget_config_schema(schema: dict[str, Any]) -> None:
    widgets = [{"id": "ok", "title": "OK"}, {"id": "w", "title": "W", "config": schema}]
    problem = only_problem(contributes={"widgets": widgets})
    assert problem.path == "contributes.widgets[1].config"
    assert any(
        fragment in problem.message
        for fragment in ("type = 'object'", "not a valid JSON Schema", "does not match")
    )


def test_empty_settings_schemas_are_allowed() -> None:
    manifest = make(config={}, contributes={"widgets": [{"id": "w", "title": "W", "config": {}}]})
    assert manifest.config == {}
    assert manifest.contributes.widgets[0].config == {}
    assert manifest.config_defaults() == {}


def test_widget_config_schema_is_kept() -> None:
    widget = {"id": "w", "title": "W", "config": OBJECT_SCHEMA}
    assert make(contributes={"widgets": [widget]}).contributes.widgets[0].config == OBJECT_SCHEMA


def test_config_default_may_use_a_local_ref() -> None:
    schema = {
        "type": "object",
        "$defs": {"level": {"enum": ["low", "high"]}},
        "properties": {"level": {"$ref": "#/$defs/level", "default": "low"}},
    }
    assert make(config=schema).config_defaults() == {"level": "low"}


# --- engines and dependencies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "version", "expected"),
    [
        ("myapp", "2.3", True),
        ("myapp", "2.9.1", True),
        ("myapp", "2.5rc1", True),
        ("myapp", "2.2", False),
        ("myapp", "3.0", False),
        ("plugport", "0.1", True),
        ("plugport", "0.0.9", False),
        ("otherapp", "0.0.1", True),
    ],
)
def test_supports(full: Manifest, engine: str, version: str, expected: bool) -> None:
    assert full.supports(engine, version) is expected


def test_engine_with_any_range_supports_everything() -> None:
    manifest = make(engines={"myapp": "*"})
    assert manifest.supports("myapp", "0.0.1a1")


def test_self_dependency() -> None:
    problem = only_problem(dependencies={"acme.hello": ">=1"})
    assert_problem(problem, "dependencies", "'acme.hello' cannot depend on itself")
    assert problem.value == "acme.hello"


@pytest.mark.parametrize(
    ("field", "mapping", "path", "fragments"),
    [
        (
            "dependencies",
            {"acme.utils": ">>1"},
            "dependencies['acme.utils']",
            ("'>>1' is not a PEP 440 version range", "'>=1.2,<2'"),
        ),
        (
            "dependencies",
            {"Acme.Utils": ">=1"},
            "dependencies['Acme.Utils'] (key)",
            ("'Acme.Utils' is not a plugin name", "'namespace.plugin'"),
        ),
        (
            "dependencies",
            {"utils": ">=1"},
            "dependencies.utils (key)",
            ("'utils' is not a plugin name",),
        ),
        (
            "engines",
            {"MyApp": ">=1"},
            "engines.MyApp (key)",
            ("'MyApp' is not an application name", "lowercase letters, digits"),
        ),
        (
            "engines",
            {"my app": ">=1"},
            "engines['my app'] (key)",
            ("'my app' is not an application name",),
        ),
        (
            "engines",
            {"myapp": "2.x"},
            "engines.myapp",
            ("'2.x' is not a PEP 440 version range", "'*' for any version"),
        ),
        (
            "engines",
            {"my.app": "=>2"},
            "engines['my.app']",
            ("'=>2' is not a PEP 440 version range",),
        ),
    ],
)
def test_invalid_engines_and_dependencies(
    field: str, mapping: dict[str, str], path: str, fragments: tuple[str, ...]
) -> None:
    assert_problem(only_problem(**{field: mapping}), path, *fragments)


# --- reading bytes, text and files --------------------------------------------------------------


def test_toml_syntax_error_is_one_problem() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest('name = "acme.hello\nversion = 1', source="x/plugport.toml")
    [problem] = info.value.problems
    assert problem.path == ""
    assert "not valid TOML" in problem.message
    assert info.value.source == "x/plugport.toml"


def test_parse_manifest_bytes_accepts_utf8() -> None:
    text = MINIMAL_TOML + 'description = "Grüße ✓"\n'
    assert parse_manifest_bytes(text.encode()).description == "Grüße ✓"


def test_non_utf8_bytes() -> None:
    raw = MINIMAL_TOML.encode() + b'description = "caf\xe9"\n'
    with pytest.raises(ManifestError) as info:
        parse_manifest_bytes(raw, source="hello.plugport")
    [problem] = info.value.problems
    assert problem.path == ""
    bad_byte = raw.index(b"\xe9")
    assert problem.message == f"not UTF-8 text (byte {bad_byte})"
    assert info.value.source == "hello.plugport"


def test_manifest_size_limit() -> None:
    padding = MAX_MANIFEST_BYTES - len(MINIMAL_TOML.encode()) - 2
    at_limit = (MINIMAL_TOML + "#" + "x" * padding + "\n").encode()
    assert len(at_limit) == MAX_MANIFEST_BYTES
    assert parse_manifest_bytes(at_limit).name == "acme.hello"

    with pytest.raises(ManifestError) as info:
        parse_manifest_bytes(at_limit + b"\n")
    [problem] = info.value.problems
    assert problem.message == "larger than the 256 KiB a manifest may be"


def test_load_manifest_from_file_and_directory(tmp_path: Path) -> None:
    file = tmp_path / MANIFEST_FILENAME
    file.write_text(FULL_TOML, encoding="utf-8")
    assert load_manifest(file) == load_manifest(tmp_path) == parse_manifest(FULL_TOML)


def test_load_manifest_reports_problems_with_the_file_as_source(tmp_path: Path) -> None:
    file = tmp_path / MANIFEST_FILENAME
    file.write_text(MINIMAL_TOML.replace("1.0.0", "1.0.x"), encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert info.value.source == str(file)
    assert [p.path for p in info.value.problems] == ["version"]


def test_load_manifest_rejects_an_oversized_file(tmp_path: Path) -> None:
    file = tmp_path / MANIFEST_FILENAME
    file.write_bytes(MINIMAL_TOML.encode() + b"#" * MAX_MANIFEST_BYTES)
    with pytest.raises(ManifestError, match="larger than the 256 KiB"):
        load_manifest(file)


def test_load_manifest_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / MANIFEST_FILENAME
    with pytest.raises(ManifestError) as info:
        load_manifest(missing)
    [problem] = info.value.problems
    assert problem.message == f"no plugport.toml found at {missing}"
    assert info.value.source == str(missing)
    assert not missing.parent.exists()


def test_load_manifest_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    [problem] = info.value.problems
    assert problem.message == f"no plugport.toml found at {tmp_path / MANIFEST_FILENAME}"
    assert list(tmp_path.iterdir()) == []


def test_load_manifest_unreadable_manifest(tmp_path: Path) -> None:
    # A directory where the manifest should be cannot be read as a file.
    (tmp_path / MANIFEST_FILENAME).mkdir()
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    [problem] = info.value.problems
    assert problem.message.startswith("cannot read: ")
    assert "directory" in problem.message.lower()
    assert info.value.source == str(tmp_path / MANIFEST_FILENAME)


# --- JSON Schema export -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft202012Validator:
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_json_schema_header() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Plugport plugin manifest (plugport.toml)"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "version", "entry"}


def test_valid_manifest_data_validates_against_the_json_schema(
    schema_validator: jsonschema.Draft202012Validator,
) -> None:
    data = tomllib.loads(FULL_TOML)
    data["permissions"]["storage"] = 10 * 2**20
    assert list(schema_validator.iter_errors(data)) == []
    assert list(schema_validator.iter_errors(MINIMAL)) == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({**MINIMAL, "descripton": "x"}, "'descripton' was unexpected"),
        ({**MINIMAL, "permissions": {"filesystem": True}}, "'filesystem' was unexpected"),
        ({**MINIMAL, "limits": {"memory": 1}}, "'memory' was unexpected"),
        ({**MINIMAL, "limits": {"memory_mb": 1}}, "less than the minimum of 96"),
        ({**MINIMAL, "categories": ["games"]}, "'games' is not one of"),
        ({"name": "acme.hello", "version": "1.0.0"}, "'entry' is a required property"),
    ],
)
def test_invalid_data_fails_the_json_schema(
    schema_validator: jsonschema.Draft202012Validator, data: dict[str, Any], fragment: str
) -> None:
    messages = [error.message for error in schema_validator.iter_errors(data)]
    assert any(fragment in message for message in messages), messages


def test_storage_size_string_validates_against_the_json_schema(
    schema_validator: jsonschema.Draft202012Validator,
) -> None:
    data = tomllib.loads(FULL_TOML)
    assert data["permissions"]["storage"] == "10 MiB"
    assert list(schema_validator.iter_errors(data)) == []


def test_storage_bounds_are_in_the_json_schema(
    schema_validator: jsonschema.Draft202012Validator,
) -> None:
    too_big = {**MINIMAL, "permissions": {"storage": 2**31}}
    assert list(schema_validator.iter_errors(too_big)) != []


# --- describe_permissions -----------------------------------------------------------------------


def test_describe_permissions_in_plain_language(full: Manifest) -> None:
    assert describe_permissions(full.permissions) == [
        "Connect to: api.slack.com, *.github.com, hooks.example.com:8443",
        "Store up to 10 MiB of its own data",
        "Publish events: hello.greeted",
        "Receive events: tasks.*",
        "User interface: show messages, add commands, add widgets",
        "Read its own settings",
    ]


def test_describe_no_permissions() -> None:
    assert describe_permissions(Permissions()) == [
        "No permissions: it can only compute on what it is given"
    ]


@pytest.mark.parametrize(
    ("storage", "line"),
    [
        (1, "Store up to 1 bytes of its own data"),
        (500, "Store up to 500 bytes of its own data"),
        (1024, "Store up to 1 KiB of its own data"),
        (1536, "Store up to 1.5 KiB of its own data"),
        ("10 MiB", "Store up to 10 MiB of its own data"),
        (2**30, "Store up to 1 GiB of its own data"),
    ],
)
def test_describe_storage(storage: int | str, line: str) -> None:
    assert describe_permissions(Permissions(storage=storage)) == [line]


def test_describe_ui_keeps_the_manifest_order() -> None:
    permissions = Permissions(ui=["widgets", "messages"], config=True)
    assert describe_permissions(permissions) == [
        "User interface: add widgets, show messages",
        "Read its own settings",
    ]
