"""Why a registry no longer offers what was asked for (``host._withdrawn_rules``), without I/O:
named only when withdrawn versions are all that meet the requirement."""

from __future__ import annotations

from typing import Any

import pytest

from plugport.host._withdrawn_rules import withdrawn_refusal
from plugport.host.candidates import Requirement

KEY = "ab" * 32
AT = "2025-03-04T05:06:07Z"


def row(version: str, *, withdrawn: bool = False) -> dict[str, Any]:
    if not withdrawn:
        return {"version": version, "withdrawn": False, "key_id": "cd" * 32, "key_revoked_at": None}
    return {"version": version, "withdrawn": True, "key_id": KEY, "key_revoked_at": AT}


LISTED = [row("1.0.0"), row("1.1.0", withdrawn=True), row("1.2.0rc1", withdrawn=True)]


def test_a_pin_to_a_withdrawn_version_names_the_key_and_the_time() -> None:
    message = withdrawn_refusal(Requirement("acme.a", "==1.1.0"), LISTED)
    assert message == (
        f"acme.a 1.1.0 is signed by acme's key {KEY[:16]}…, which its publisher revoked at {AT}: "
        "the registry withdrew it, so it cannot be installed; nothing was installed"
    )


def test_only_withdrawn_versions_in_range_names_the_newest_and_counts_the_rest() -> None:
    message = withdrawn_refusal(Requirement("acme.a", ">1.0"), LISTED)
    assert message is not None
    assert message.startswith(f"acme.a 1.2.0rc1 is signed by acme's key {KEY[:16]}…")
    assert "(and 1 more matching version)" in message


@pytest.mark.parametrize(
    ("specifier", "rows"),
    [
        ("==1.0.0", LISTED),  # offered: the failure is something else
        ("", LISTED),  # an offered version meets it too
        ("==2.0", LISTED),  # nothing of that version at all
        ("==1.1.0", [row("1.1.0")]),  # not withdrawn
        ("==1.1.0", [{"version": "1.1.0", "withdrawn": True}]),  # no key to name
        ("", [{"version": "not a version", "withdrawn": True, "key_id": KEY}]),
        ("", []),
    ],
)
def test_anything_else_is_left_to_the_resolver(specifier: str, rows: list[dict[str, Any]]) -> None:
    assert withdrawn_refusal(Requirement("acme.a", specifier), rows) is None
