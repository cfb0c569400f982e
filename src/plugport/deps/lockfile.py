"""``plugport.lock``: the exact wheels a plugin's ``[python]`` dependencies resolved to, each
with its sha256 and size, and the inputs they were resolved from so that a changed manifest is
noticed (a *stale* lock).

Pure: text in, data out, and data in, text out. ``plugport lock`` writes it, ``plugport pack``
copies the wheels it names into the archive, the registry shows it, and the host installs
exactly these files after checking each hash (the lock is inside the signed archive).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from plugport.errors import DependencyError
from plugport.manifest import Manifest, PythonDependencies

__all__ = [
    "LOCK_FILENAME",
    "LOCK_VERSION",
    "WHEELS_DIR",
    "Lock",
    "LockedPackage",
    "LockedWheel",
    "load_lock",
    "parse_lock",
]

LOCK_FILENAME = "plugport.lock"
LOCK_VERSION = 1
WHEELS_DIR = "wheels"
"""Where the locked wheels sit inside a ``.plugport`` archive: ``wheels/<filename>``."""

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HEADER = (
    "# plugport.lock: written by `plugport lock` from [python] in plugport.toml; do not edit.\n"
    "# `plugport pack` copies each wheel below into the archive, and a host installs it only\n"
    "# if its sha256 matches.\n"
)


@dataclass(frozen=True, slots=True)
class LockedWheel:
    filename: str
    sha256: str
    size: int

    @property
    def member(self) -> str:
        """Its name inside the archive."""
        return f"{WHEELS_DIR}/{self.filename}"

    def tags(self) -> frozenset[Tag]:
        return parse_wheel_filename(self.filename)[3]

    @property
    def pure(self) -> bool:
        return all(tag.platform == "any" for tag in self.tags())


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str  # canonical (PEP 503)
    version: str
    wheels: tuple[LockedWheel, ...]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True, slots=True)
class Lock:
    dependencies: tuple[str, ...]
    requires_python: str
    platforms: tuple[str, ...]
    packages: tuple[LockedPackage, ...]

    @classmethod
    def for_inputs(cls, python: PythonDependencies, packages: Iterable[LockedPackage]) -> Lock:
        return cls(
            dependencies=tuple(sorted(python.dependencies)),
            requires_python=python.requires_python,
            platforms=tuple(sorted(python.platforms)),
            packages=tuple(sorted(packages, key=lambda p: p.name)),
        )

    def wheels(self) -> list[LockedWheel]:
        return [wheel for package in self.packages for wheel in package.wheels]

    def package(self, name: str) -> LockedPackage | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.packages if p.name == wanted), None)

    def stale_reasons(self, manifest: Manifest) -> list[str]:
        """Why this lock no longer answers the manifest's ``[python]`` table (empty: it does).
        Beyond the recorded inputs, every requirement must hold for the locked version, so a
        hand-edited pin that conflicts with the manifest is caught too."""
        python = manifest.python
        reasons = []
        wanted = tuple(sorted(python.dependencies))
        if wanted != self.dependencies:
            added = sorted(set(wanted) - set(self.dependencies))
            removed = sorted(set(self.dependencies) - set(wanted))
            change = "; ".join(
                part
                for part in (
                    f"added {', '.join(added)}" if added else "",
                    f"removed {', '.join(removed)}" if removed else "",
                )
                if part
            )
            reasons.append(f"[python] dependencies changed since it was locked ({change})")
        if python.requires_python != self.requires_python:
            reasons.append(
                f"[python] requires-python is {python.requires_python or 'unset'!r}, but the "
                f"lock was made for {self.requires_python or 'unset'!r}"
            )
        if tuple(sorted(python.platforms)) != self.platforms:
            reasons.append(
                f"[python] platforms are {sorted(python.platforms)}, but the lock was made for "
                f"{list(self.platforms)}"
            )
        for text in python.dependencies:
            requirement = Requirement(text)
            locked = self.package(requirement.name)
            if locked is None:
                if requirement.marker is None:
                    reasons.append(f"{requirement.name} is required but not in the lock")
                continue
            if not requirement.specifier.contains(locked.version, prereleases=True):
                reasons.append(
                    f"the lock pins {locked}, which {text!r} does not allow (a conflicting pin)"
                )
        return reasons

    def select(self, tags: Sequence[Tag] | None = None, *, plugin: str = "") -> list[LockedWheel]:
        """The one wheel of each package this interpreter installs: the first in ``tags``'
        order of preference (``sys_tags()``: most specific first) that any wheel carries."""
        ranked = {tag: rank for rank, tag in enumerate(sys_tags() if tags is None else tags)}
        chosen = []
        for package in self.packages:
            best = min(
                package.wheels,
                key=lambda w: min((ranked.get(t, len(ranked)) for t in w.tags()), default=0),
            )
            if not any(t in ranked for t in best.tags()):
                offered = ", ".join(w.filename for w in package.wheels)
                who = f"{plugin}: " if plugin else ""
                raise DependencyError(
                    f"{who}no wheel of {package} runs on this platform (locked: {offered}); "
                    "the plugin's author must add this platform to [python] platforms and "
                    "lock again",
                    package=package.name,
                )
            chosen.append(best)
        return chosen

    def dumps(self) -> str:
        def s(value: str) -> str:
            return json.dumps(value)  # a JSON string is a TOML basic string

        def strings(values: Iterable[str]) -> str:
            return "[" + ", ".join(s(v) for v in values) + "]"

        lines = [
            _HEADER,
            f"lock-version = {LOCK_VERSION}",
            f"dependencies = {strings(self.dependencies)}",
            f"requires-python = {s(self.requires_python)}",
            f"platforms = {strings(self.platforms)}",
        ]
        for package in self.packages:
            lines += ["", "[[package]]", f"name = {s(package.name)}"]
            lines.append(f"version = {s(package.version)}")
            for wheel in package.wheels:
                lines += [
                    "",
                    "[[package.wheel]]",
                    f"filename = {s(wheel.filename)}",
                    f"sha256 = {s(wheel.sha256)}",
                    f"size = {wheel.size}",
                ]
        return "\n".join(lines) + "\n"


def parse_lock(text: str, *, source: str = LOCK_FILENAME) -> Lock:
    """Read ``plugport.lock``; any problem names the file and the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(source, f"not valid TOML ({exc})") from None
    if data.get("lock-version") != LOCK_VERSION:
        raise _bad(
            source,
            f"lock-version is {data.get('lock-version')!r}; this Plugport reads version "
            f"{LOCK_VERSION}: run `plugport lock` again",
        )
    packages = []
    seen: set[str] = set()
    for index, entry in enumerate(_list(data, "package", source)):
        where = f"package[{index}]"
        name = _text(entry, "name", source, where)
        if canonicalize_name(name) != name:
            raise _bad(source, f"{where}.name {name!r} is not a normalised package name")
        if name in seen:
            raise _bad(source, f"{name} is locked twice", package=name)
        seen.add(name)
        version = _text(entry, "version", source, where)
        try:
            Version(version)
        except InvalidVersion:
            raise _bad(source, f"{where}.version {version!r} is not a version") from None
        wheels = tuple(
            _wheel(item, source, f"{where}.wheel[{i}]", name, version)
            for i, item in enumerate(_list(entry, "wheel", source))
        )
        if not wheels:
            raise _bad(source, f"{name} {version} has no wheel", package=name)
        packages.append(LockedPackage(name, version, wheels))
    return Lock(
        dependencies=tuple(_strings(data, "dependencies", source)),
        requires_python=_text(data, "requires-python", source, "", empty=True),
        platforms=tuple(_strings(data, "platforms", source)),
        packages=tuple(packages),
    )


def load_lock(directory: Path) -> Lock | None:
    """The lock in a plugin directory, or ``None`` when it has none."""
    path = directory / LOCK_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"cannot read it ({exc})") from None
    return parse_lock(text, source=str(path))


def _wheel(item: object, source: str, where: str, name: str, version: str) -> LockedWheel:
    filename = _text(item, "filename", source, where)
    sha256 = _text(item, "sha256", source, where)
    size = item.get("size") if isinstance(item, dict) else None
    if not _SHA256_RE.match(sha256):
        raise _bad(source, f"{where}.sha256 is not 64 lowercase hex digits", package=name)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise _bad(source, f"{where}.size must be a positive byte count", package=name)
    if "/" in filename or "\\" in filename or filename.startswith("."):
        raise _bad(source, f"{where}.filename {filename!r} is not a file name", package=name)
    try:
        wheel_name, wheel_version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        raise _bad(
            source,
            f"{where}.filename {filename!r} is not a wheel; only wheels are installed "
            "(an sdist would run its build on every host)",
            package=name,
        ) from None
    if wheel_name != name or wheel_version != Version(version):
        raise _bad(source, f"{where}.filename {filename!r} is not {name} {version}", package=name)
    return LockedWheel(filename, sha256, size)


def _bad(source: str, message: str, *, package: str = "") -> DependencyError:
    return DependencyError(f"{source}: {message}", package=package, file=source)


def _list(data: object, key: str, source: str) -> list[dict[str, object]]:
    value = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _bad(source, f"{key} must be a list of tables")
    return value


def _strings(data: dict[str, object], key: str, source: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(source, f"{key} must be a list of strings")
    return value


def _text(data: object, key: str, source: str, where: str, *, empty: bool = False) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or (not value and not empty):
        path = f"{where}.{key}" if where else key
        raise _bad(source, f"{path} must be a {'' if empty else 'non-empty '}string")
    return value
