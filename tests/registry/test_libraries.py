"""The pure side of a version's libraries: the archive's wheels against its own lock (each
refusal names the wheel), the record a version keeps, and the diff between two versions."""

from __future__ import annotations

from typing import Any

import pytest

from plugport.deps.lockfile import Lock, LockedPackage, LockedWheel
from plugport.errors import DependencyError
from plugport.manifest import Manifest, parse_manifest
from plugport.registry.libraries import (
    check_locked_wheels,
    library_diff,
    python_table,
    record,
    shown,
)
from plugport.registry.scanner import ArchivedWheel

MD = "markdown-3.7-py3-none-any.whl"
FMT = "tinyfmt-1.0-py3-none-any.whl"
SHA_MD, SHA_FMT, SHA_OTHER = "a" * 64, "b" * 64, "c" * 64


def manifest(dependencies: tuple[str, ...] = ("markdown>=3", "tinyfmt")) -> Manifest:
    deps = ", ".join(f'"{d}"' for d in dependencies)
    return parse_manifest(
        'name = "acme.md"\nversion = "1.0.0"\nentry = "main:Main"\n'
        f"[python]\ndependencies = [{deps}]\n"
    )


def lock(dependencies: tuple[str, ...] = ("markdown>=3", "tinyfmt")) -> bytes:
    packages = [
        LockedPackage("markdown", "3.7", (LockedWheel(MD, SHA_MD, 1000),)),
        LockedPackage("tinyfmt", "1.0", (LockedWheel(FMT, SHA_FMT, 200),)),
    ]
    python = manifest(dependencies).python
    return Lock.for_inputs(python, packages).dumps().encode()


def archived(**overrides: ArchivedWheel | None) -> dict[str, ArchivedWheel]:
    wheels = {
        f"wheels/{MD}": ArchivedWheel(f"wheels/{MD}", SHA_MD, 1000),
        f"wheels/{FMT}": ArchivedWheel(f"wheels/{FMT}", SHA_FMT, 200, ("tinyfmt/_x.so",)),
    }
    for member, wheel in overrides.items():
        key = f"wheels/{member}"
        if wheel is None:
            del wheels[key]
        else:
            wheels[key] = wheel
    return wheels


def test_an_archive_that_holds_exactly_its_locked_wheels_passes() -> None:
    checked = check_locked_wheels(manifest(), lock(), archived())
    assert checked is not None
    assert [str(p) for p in checked.packages] == ["markdown 3.7", "tinyfmt 1.0"]
    assert record(checked, archived()) == [
        {
            "name": "markdown",
            "version": "3.7",
            "compiled": False,
            "wheels": [{"filename": MD, "sha256": SHA_MD, "size": 1000, "compiled": False}],
        },
        {
            "name": "tinyfmt",
            "version": "1.0",
            "compiled": True,
            "wheels": [{"filename": FMT, "sha256": SHA_FMT, "size": 200, "compiled": True}],
        },
    ]


def test_no_dependencies_and_no_wheels_need_no_lock() -> None:
    assert check_locked_wheels(manifest(()), None, {}) is None
    assert record(None, {}) == []


@pytest.mark.parametrize(
    ("case", "file", "says"),
    [
        ("absent", f"wheels/{FMT}", f"locks {FMT} (tinyfmt), but the archive has no wheels/{FMT}"),
        ("swapped", f"wheels/{MD}", f"has sha256 {SHA_OTHER}, but plugport.lock locked {SHA_MD}"),
        ("resized", f"wheels/{MD}", "is 999 bytes, but plugport.lock says 1000"),
        ("unlocked", "wheels/evil-1.0-py3-none-any.whl", "plugport.lock does not name it"),
        ("stray file", "wheels/README.txt", "wheels/README.txt is in the archive, but"),
    ],
)
def test_each_wheel_at_fault_is_named(case: str, file: str, says: str) -> None:
    wheels = {
        "absent": archived(**{FMT: None}),
        "swapped": archived(**{MD: ArchivedWheel(f"wheels/{MD}", SHA_OTHER, 1000)}),
        "resized": archived(**{MD: ArchivedWheel(f"wheels/{MD}", SHA_MD, 999)}),
        "unlocked": archived(**{"evil-1.0-py3-none-any.whl": ArchivedWheel("x", SHA_OTHER, 5)}),
        "stray file": archived(**{"README.txt": ArchivedWheel("x", SHA_OTHER, 5)}),
    }[case]
    with pytest.raises(DependencyError) as raised:
        check_locked_wheels(manifest(), lock(), wheels)
    assert raised.value.file == file
    assert says in str(raised.value)
    assert "run `plugport lock`, then `plugport pack`" in str(raised.value)


def test_every_problem_is_in_the_message_and_the_first_is_named() -> None:
    wheels = archived(
        **{FMT: None, MD: ArchivedWheel(f"wheels/{MD}", SHA_OTHER, 1000)},
    )
    with pytest.raises(DependencyError) as raised:
        check_locked_wheels(manifest(), lock(), wheels)
    assert (raised.value.file, raised.value.package) == (f"wheels/{MD}", "markdown")
    assert f"wheels/{MD} has sha256" in str(raised.value)
    assert f"has no wheels/{FMT}" in str(raised.value)


@pytest.mark.parametrize(
    ("dependencies", "lock_bytes", "wheels", "file", "says"),
    [
        (("markdown>=3", "tinyfmt"), None, {}, "plugport.lock", "declares [python] dependencies"),
        ((), None, "all", f"wheels/{MD}", "the archive has no plugport.lock to name it"),
        (("markdown>=4",), "lock", "all", "plugport.lock", "does not match [python]"),
        ((), b"\xff\xfe", {}, "plugport.lock", "not UTF-8"),
        ((), b"lock-version = 99\n", {}, "archive!plugport.lock", "lock-version is 99"),
    ],
)
def test_a_missing_stale_or_unreadable_lock_is_refused(
    dependencies: tuple[str, ...], lock_bytes: Any, wheels: Any, file: str, says: str
) -> None:
    body = lock() if lock_bytes == "lock" else lock_bytes
    with pytest.raises(DependencyError) as raised:
        check_locked_wheels(manifest(dependencies), body, archived() if wheels == "all" else wheels)
    assert raised.value.file == file
    assert says in str(raised.value)


def _lib(name: str, version: str, *hashes: str) -> dict[str, Any]:
    wheels = [{"filename": f"{name}-{version}.whl", "sha256": h, "size": 1} for h in hashes]
    return {"name": name, "version": version, "compiled": False, "wheels": wheels}


def test_library_diff_names_added_removed_and_changed() -> None:
    before = [_lib("markdown", "3.6", "a"), _lib("six", "1.0", "s"), _lib("same", "1", "x")]
    after = [_lib("markdown", "3.7", "b"), _lib("tinyfmt", "1.1", "t"), _lib("same", "1", "y")]
    assert library_diff(before, after) == {
        "added": [{"name": "tinyfmt", "version": "1.1"}],
        "removed": [{"name": "six", "version": "1.0"}],
        "changed": [
            {"name": "markdown", "from": "3.6", "to": "3.7"},
            {"name": "same", "from": "1", "to": "1"},  # same version, other files
        ],
    }
    assert library_diff(after, after) == {"added": [], "removed": [], "changed": []}
    assert library_diff(None, after)["added"] == [
        {"name": "markdown", "version": "3.7"},
        {"name": "same", "version": "1"},
        {"name": "tinyfmt", "version": "1.1"},
    ]
    assert library_diff(before, None)["removed"] == [
        {"name": "markdown", "version": "3.6"},
        {"name": "same", "version": "1"},
        {"name": "six", "version": "1.0"},
    ]


def test_versions_recorded_before_the_column_existed() -> None:
    old_manifest: dict[str, Any] = {"name": "acme.old", "permissions": {}}
    declared = {"python": {"dependencies": ["markdown"], "requires_python": "", "platforms": []}}
    assert shown(None, old_manifest) == []  # nothing declared: nothing shipped
    assert shown(None, declared) is None  # declared, but not recorded: say so
    assert shown([], declared) == []
    assert python_table(old_manifest) == {
        "dependencies": [],
        "requires_python": "",
        "platforms": [],
    }
