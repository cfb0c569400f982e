"""Permissions in plain words everywhere: every shape of the ``[permissions]`` vocabulary
renders to sentences (never a raw ``True``, ``False`` or ``None``), and the diff a reviewer
sees names exactly the grants added and removed, in the consent's own sentences."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from plugport._permissions import (
    NO_PERMISSIONS,
    describe_permissions,
    grant_lines,
    permission_changes,
)
from plugport.manifest import Permissions

EVERY_GRANT: dict[str, Any] = {
    "network": ["api.example.com", "*.github.com"],
    "storage": 1024 * 1024,
    "events": {"publish": ["tasks.*"], "subscribe": ["orders.created"]},
    "ui": ["messages", "commands", "widgets", "pages", "menus", "forms", "themes",
           "custom_view", "metrics"],
    "config": True,
    "credentials": {"github": ["api.github.com"]},
    "secrets": {"reveal": ["github"], "sign": ["hook_key"]},
    "webhooks": {"receive": ["push"], "deliver": ["https://hooks.example.com/in/"]},
    "mail": {"to": ["ops@example.org", "*@example.com"], "per_hour": 9},
    "tasks": {"submit": ["GITHUB_*"]},
}  # fmt: skip
"""One value for every leaf of the vocabulary; the first test fails when a field is added
to :class:`Permissions` without being added here."""

_RAW = re.compile(r"\b(True|False|None)\b|^\+|\{|\}")


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _leaves(annotation, f"{prefix}{name}.")
        else:
            found.add(prefix + name)
    return found


def _set_leaves(data: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and key != "credentials":
            found |= _set_leaves(value, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


def _alone(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: _alone(rest, value)} if rest else {head: value}


def test_the_sample_sets_every_leaf_of_the_vocabulary() -> None:
    assert _set_leaves(EVERY_GRANT) == _leaves(Permissions)


def test_every_grant_alone_renders_to_words_without_raw_values() -> None:
    everything = Permissions.model_validate(EVERY_GRANT)
    for path in sorted(_leaves(Permissions)):
        value: Any = EVERY_GRANT
        for key in path.split("."):
            value = value[key]
        if path == "mail.per_hour":  # means nothing without recipients (the model says so)
            alone = Permissions.model_validate({"mail": EVERY_GRANT["mail"]})
        else:
            alone = Permissions.model_validate(_alone(path, value))
        lines = describe_permissions(alone)
        assert lines != [NO_PERMISSIONS], path
        added = permission_changes(Permissions(), alone).added
        assert added, path
        for line in [*lines, *added, *permission_changes(alone, Permissions()).removed]:
            assert not _RAW.search(line), f"{path}: {line!r}"
            assert line[:1].isupper(), f"{path}: {line!r}"
    for line in grant_lines(everything):
        assert not _RAW.search(line), line


def test_the_words_of_each_grant_are_the_consent_sentences() -> None:
    """A grant's line is a sentence describe_permissions says for it (or for its table)."""
    everything = Permissions.model_validate(EVERY_GRANT)
    consent = describe_permissions(everything)
    for line in grant_lines(everything):
        head = line.split(":", 1)[0]
        assert any(c.startswith(head) for c in consent), line


def test_an_update_that_adds_network_and_removes_storage() -> None:
    before = Permissions.model_validate({"storage": "1 MiB", "config": True})
    after = Permissions.model_validate({"network": ["api.example.com"], "config": True})
    changes = permission_changes(before, after)
    assert changes.added == ["Connect to: api.example.com"]
    assert changes.removed == ["Store up to 1 MiB of its own data"]
    assert not permission_changes(after, after)
    first = permission_changes(None, after)
    assert first.added == ["Connect to: api.example.com", "Read its own settings"]
    assert first.removed == []


def test_a_changed_quota_and_one_more_host_are_each_one_line() -> None:
    before = Permissions.model_validate({"network": ["a.example.com"], "storage": 1024})
    after = Permissions.model_validate(
        {"network": ["a.example.com", "b.example.com"], "storage": 2048}
    )
    changes = permission_changes(before, after)
    assert changes.added == ["Connect to: b.example.com", "Store up to 2 KiB of its own data"]
    assert changes.removed == ["Store up to 1 KiB of its own data"]
