"""Every capability is complete: a permission rule, host handlers, a typed SDK proxy whose
methods match the handlers one to one, a purge, and words for consent and the permission diff.
A capability missing any part fails here rather than opening a silent hole."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from plugport._permissions import RULES, describe_permissions, permissions_beyond
from plugport.manifest import Permissions
from plugport.runtime.capabilities import CAPABILITIES, Capability
from plugport.sdk import _api

EVERYTHING = Permissions.model_validate(
    {
        "network": ["api.example.com"],
        "storage": 1024,
        "events": {"publish": ["a.*"], "subscribe": ["b.*"]},
        "ui": ["messages", "commands", "widgets"],
        "config": True,
        "credentials": {"jira": ["api.example.com/rest/"]},
        "secrets": {"reveal": ["jira"], "sign": ["hook"]},
        "mail": {"to": ["*@example.com"], "per_hour": 10},
        "webhooks": {"deliver": ["https://hooks.example.com/in/", "*.example.org"]},
        "tasks": {"submit": ["GITHUB_*"]},
    }
)
NOTHING = Permissions()


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"]


def test_the_list_the_rules_and_the_sdk_name_the_same_capabilities() -> None:
    assert set(CAPABILITIES) == set(RULES) == set(_api.CAPABILITIES)
    api = _api.Api(transport=None)  # type: ignore[arg-type]
    for name, record in CAPABILITIES.items():
        assert record.name == name
        assert record.rule is RULES[name]
        assert type(getattr(api, name)) is record.proxy
        assert record.proxy.capability == name


@pytest.mark.parametrize("record", CAPABILITIES.values(), ids=list(CAPABILITIES))
def test_each_handler_has_a_typed_documented_proxy_and_back(record: Capability) -> None:
    handlers = record.methods()
    proxies = {
        name: member
        for name, member in vars(record.proxy).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }
    assert handlers, f"{record.name} offers no calls"
    assert set(handlers) == set(proxies), f"{record.name}: handlers and proxy methods differ"
    for method, handler in handlers.items():
        proxy = proxies[method]
        local = getattr(record.proxy, "local_options", {}).get(method, ())
        sent = [p for p in _parameters(proxy) if p[0] not in local]  # handled in the plugin
        assert _parameters(handler) == sent, f"{record.name}.{method}"
        assert inspect.signature(proxy).return_annotation != inspect.Signature.empty
        assert proxy.__doc__, f"api.{record.name}.{method} has no docstring for the reference"
    assert record.proxy.__doc__
    assert "[permissions]" in record.proxy.__doc__ or "manifest" in record.proxy.__doc__


@pytest.mark.parametrize("record", CAPABILITIES.values(), ids=list(CAPABILITIES))
def test_each_rule_covers_consent_the_diff_and_the_fix(record: Capability) -> None:
    rule = record.rule
    assert rule.declared(EVERYTHING)
    assert not rule.declared(NOTHING)
    assert rule.describe(EVERYTHING), f"consent shows nothing for {record.name}"
    assert rule.describe(NOTHING) == []
    assert rule.beyond(NOTHING, EVERYTHING), f"the permission diff misses {record.name}"
    assert rule.beyond(EVERYTHING, EVERYTHING) == []
    method = next(iter(record.methods()))
    line = rule.manifest_line(method, {"topic": "a.b", "url": "https://api.example.com/"})
    fixed = _granted_by(line)
    assert rule.declared(fixed), f"{line!r} does not grant {record.name}"
    assert callable(record.purge)


@pytest.mark.parametrize("record", CAPABILITIES.values(), ids=list(CAPABILITIES))
def test_each_capability_has_a_fake_built_the_same_way(record: Capability) -> None:
    assert record.fake is not None, f"{record.name} has no fake for plugin authors' tests"
    assert list(inspect.signature(record.fake).parameters)[:2] == ["runtime", "grants"]
    assert callable(record.fake.close)


def _as_table(line: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(line)


def _granted_by(line: str) -> Permissions:
    """What a printed fix grants: a ``[permissions]`` line, or a table of its own (a
    ``[credentials.NAME]`` an HMAC key needs), read as part of a whole manifest."""
    if not line.startswith("["):
        return Permissions.model_validate(_as_table(line))
    from plugport.manifest import parse_manifest

    head = 'name = "acme.fix"\nversion = "1.0.0"\nentry = "main:Main"\n'
    table, _, rest = line.partition("] ")
    return parse_manifest(f"{head}{table}]\n{rest}\n").permissions


def test_consent_and_the_diff_loop_over_every_rule() -> None:
    lines = describe_permissions(EVERYTHING)
    assert len(lines) >= len(RULES)
    assert describe_permissions(NOTHING) == [
        "No permissions: it can only compute on what it is given"
    ]
    assert len(permissions_beyond(NOTHING, EVERYTHING)) >= len(RULES)


def test_an_unknown_method_names_the_ones_that_exist() -> None:
    api = _api.Api(transport=None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match=r"api.storage has no method 'gett' \(it has: delete"):
        api.storage.gett  # noqa: B018 the attribute access is the test
