"""The Python libraries a version ships, as the registry keeps and shows them.

The rule this module protects: an archive holds exactly the wheels its own ``plugport.lock``
names, each with the locked sha256 and size, and that lock answers the manifest's ``[python]``
table. Anything else is refused at upload, naming the wheel, because a host installs only what
the signed lock names and would refuse the plugin later, on every machine, for the same reason.
A version that passes is stored with :func:`record` (its packages, wheels and whether each is
compiled), and :func:`library_diff` tells a reviewer what changed since the last version.

Pure: data in, data out; the scan that reads the archive is :mod:`plugport.registry.scanner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from plugport.deps.lockfile import LOCK_FILENAME, WHEELS_DIR, Lock, parse_lock
from plugport.errors import DependencyError
from plugport.manifest import Manifest
from plugport.registry.scanner import ArchivedWheel

__all__ = ["check_locked_wheels", "library_diff", "python_table", "record", "shown"]

_REPACK = "run `plugport lock`, then `plugport pack`, and upload the new archive"


def check_locked_wheels(
    manifest: Manifest,
    lock_bytes: bytes | None,
    wheels: Mapping[str, ArchivedWheel],
    *,
    shown_as: str = "archive",
) -> Lock | None:
    """The archive's lock, once every file under ``wheels/`` is one it names with the hash and
    size it locked, and every wheel it names is there; else :class:`DependencyError` naming
    the first wheel at fault (``.file``, ``.package``) and, in its message, every problem."""
    source = f"{shown_as}!{LOCK_FILENAME}"
    if lock_bytes is None:
        if wheels:
            first = sorted(wheels)[0]
            raise DependencyError(
                f"{first} is in the archive, but the archive has no {LOCK_FILENAME} to name it: "
                f"hosts install only the wheels a plugin's lock names; {_REPACK}",
                package=_package_of(first),
                file=first,
            )
        if manifest.python.dependencies:
            raise DependencyError(
                f"plugport.toml declares [python] dependencies "
                f"({', '.join(manifest.python.dependencies)}), but the archive has no "
                f"{LOCK_FILENAME}: hosts install a plugin's libraries only from its lock; "
                f"{_REPACK}",
                file=LOCK_FILENAME,
            )
        return None
    try:
        text = lock_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise DependencyError(f"{source}: not UTF-8 text; {_REPACK}", file=LOCK_FILENAME) from None
    lock = parse_lock(text, source=source)
    stale = lock.stale_reasons(manifest)
    if stale:
        raise DependencyError(
            f"{source} does not match [python] in plugport.toml: {'; '.join(stale)}; {_REPACK}",
            file=LOCK_FILENAME,
        )
    problems = _wheel_problems(lock, wheels)
    if problems:
        member, package, _ = problems[0]
        raise DependencyError(
            "; ".join(message for _, _, message in problems) + f"; {_REPACK}",
            package=package,
            file=member,
        )
    return lock


def _wheel_problems(lock: Lock, wheels: Mapping[str, ArchivedWheel]) -> list[tuple[str, str, str]]:
    """``(member, package, message)`` for each wheel at fault, in member order."""
    locked = {
        wheel.member: (package.name, wheel) for package in lock.packages for wheel in package.wheels
    }
    problems: list[tuple[str, str, str]] = []
    for member in sorted(set(wheels) | set(locked)):
        archived = wheels.get(member)
        if member not in locked:
            problems.append(
                (
                    member,
                    _package_of(member),
                    f"{member} is in the archive, but {LOCK_FILENAME} does not name it (hosts "
                    "install only locked wheels)",
                )
            )
            continue
        package, wheel = locked[member]
        if archived is None:
            problems.append(
                (
                    member,
                    package,
                    f"{LOCK_FILENAME} locks {wheel.filename} ({package}), but the archive has no "
                    f"{member}",
                )
            )
        elif archived.sha256 != wheel.sha256:
            problems.append(
                (
                    member,
                    package,
                    f"{member} has sha256 {archived.sha256}, but {LOCK_FILENAME} locked "
                    f"{wheel.sha256}: the file was replaced by another with the same name",
                )
            )
        elif archived.size != wheel.size:
            problems.append(
                (
                    member,
                    package,
                    f"{member} is {archived.size} bytes, but {LOCK_FILENAME} says {wheel.size}",
                )
            )
    return problems


def _package_of(member: str) -> str:
    filename = member.rsplit("/", 1)[-1]
    try:
        return str(parse_wheel_filename(filename)[0])
    except ValueError:  # InvalidWheelFilename is a ValueError; a file that is no wheel at all
        return canonicalize_name(filename.split("-", 1)[0]) if filename else ""


def record(lock: Lock | None, wheels: Mapping[str, ArchivedWheel]) -> list[dict[str, Any]]:
    """What a version keeps about its libraries (the ``libraries`` column), in lock order:
    ``[{name, version, compiled, wheels: [{filename, sha256, size, compiled}]}]``, where a
    wheel is compiled when the scan found native code in it."""
    if lock is None:
        return []
    packages = []
    for package in lock.packages:
        entries = []
        for wheel in package.wheels:
            archived = wheels.get(f"{WHEELS_DIR}/{wheel.filename}")
            compiled = bool(archived and archived.compiled)
            entries.append(
                {
                    "filename": wheel.filename,
                    "sha256": wheel.sha256,
                    "size": wheel.size,
                    "compiled": compiled,
                }
            )
        packages.append(
            {
                "name": package.name,
                "version": package.version,
                "compiled": any(entry["compiled"] for entry in entries),
                "wheels": entries,
            }
        )
    return packages


def library_diff(
    previous: list[dict[str, Any]] | None, current: list[dict[str, Any]] | None
) -> dict[str, list[dict[str, Any]]]:
    """What ``current``'s libraries add, remove and change compared with ``previous``'s (both
    :func:`record` lists; ``None``, a version with nothing recorded, counts as none).

    A library is changed when its version differs, or when the version is the same but its
    wheels are other files (``from`` equals ``to`` then: rebuilt, or replaced).
    """
    before = {package["name"]: package for package in previous or []}
    after = {package["name"]: package for package in current or []}
    diff: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            diff["added"].append({"name": name, "version": new["version"]})
        elif new is None and old is not None:
            diff["removed"].append({"name": name, "version": old["version"]})
        elif (
            old is not None
            and new is not None
            and (old["version"] != new["version"] or _hashes(old) != _hashes(new))
        ):
            diff["changed"].append({"name": name, "from": old["version"], "to": new["version"]})
    return diff


def _hashes(package: Mapping[str, Any]) -> set[str]:
    return {wheel["sha256"] for wheel in package.get("wheels", [])}


def python_table(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A stored manifest's ``[python]`` table with every key present (manifests stored before
    the table existed have none)."""
    table = manifest.get("python") or {}
    return {
        "dependencies": list(table.get("dependencies") or []),
        "requires_python": table.get("requires_python") or "",
        "platforms": list(table.get("platforms") or []),
    }


def shown(
    libraries: list[dict[str, Any]] | None, manifest: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """A version's libraries as pages and the API show them: ``None`` only for a version that
    declares ``[python]`` dependencies but was uploaded before the registry recorded them."""
    if libraries is not None:
        return libraries
    return None if python_table(manifest)["dependencies"] else []
