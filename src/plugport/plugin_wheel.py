"""A plugin distributed as a wheel: its one ``plugport.plugins`` entry point leads to its
manifest, and a host runs it from a code directory laid out like an unpacked ``.plugport``.

The rule it protects: a wheel names exactly one plugin, and the manifest a host reads is the one
that entry point leads to (``<top package>/plugport.toml``), with the entry's name as its
``name`` and the entry's value as its ``entry``, and the wheel's version as its ``version``. So
what the wheel says it is, what its signature binds and what the host runs cannot differ.

Reading needs only the zip's directory and three small members; nothing is extracted until the
caller has verified the wheel (:func:`unpack_plugin_wheel`)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from plugport import archive
from plugport.deps.lockfile import LOCK_FILENAME
from plugport.deps.wheels import inspect_wheel
from plugport.errors import ArchiveError, DependencyError, PluginValidationError, Problem
from plugport.manifest import MANIFEST_FILENAME, Manifest, parse_manifest_bytes

__all__ = [
    "ENTRY_POINT_GROUP",
    "WHEEL_SUFFIX",
    "PluginEntry",
    "PluginWheel",
    "plugin_entry",
    "read_plugin_wheel",
    "unpack_plugin_wheel",
]

ENTRY_POINT_GROUP = "plugport.plugins"
WHEEL_SUFFIX = ".whl"

_ENTRY_VALUE_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_SECTION_RE = re.compile(r"^\[\s*(?P<name>[^\]]+?)\s*\]$")
_MAX_ENTRY_POINTS_BYTES = 64 * 1024
_EXAMPLE = f"[{ENTRY_POINT_GROUP}] acme.hello = acme_hello.plugin:Hello"


@dataclass(frozen=True, slots=True)
class PluginEntry:
    """``<plugin name> = <module>:<Class>`` in the ``plugport.plugins`` group."""

    name: str
    value: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0]

    @property
    def package(self) -> str:
        """The top-level package that holds the manifest: the module's first component."""
        return self.module.split(".", 1)[0]

    @property
    def manifest_member(self) -> str:
        return f"{self.package}/{MANIFEST_FILENAME}"

    @property
    def lock_member(self) -> str:
        return f"{self.package}/{LOCK_FILENAME}"


@dataclass(frozen=True, slots=True)
class PluginWheel:
    manifest: Manifest
    entry: PluginEntry
    dist_info: str
    """The wheel's ``NAME-VERSION.dist-info`` directory (not installed: the host needs none of
    it once the entry point has been read)."""
    has_lock: bool


def plugin_entry(text: str, *, where: str) -> PluginEntry:
    """The one entry of the ``plugport.plugins`` group in ``entry_points.txt`` (``where`` names
    the file in errors): none, two, or one that is not ``module:Class`` is refused."""
    entries: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _SECTION_RE.match(line)
        if header:
            section = header.group("name")
            continue
        if section != ENTRY_POINT_GROUP:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise _invalid(where, f"[{ENTRY_POINT_GROUP}] line {line!r} is not NAME = module:Class")
        entries.append((name.strip(), value.strip()))
    if not entries:
        raise _invalid(
            where,
            f"no [{ENTRY_POINT_GROUP}] entry point; a plugin wheel declares exactly one, "
            f"e.g. {_EXAMPLE}",
        )
    if len(entries) > 1:
        listed = ", ".join(f"{n} = {v}" for n, v in entries)
        raise _invalid(
            where,
            f"{len(entries)} [{ENTRY_POINT_GROUP}] entry points ({listed}); a plugin wheel "
            "declares exactly one plugin: ship each plugin in its own wheel",
        )
    name, value = entries[0]
    if not _ENTRY_VALUE_RE.match(value):
        raise _invalid(
            where,
            f"[{ENTRY_POINT_GROUP}] {name} = {value!r} is not module:Class (no extras, no "
            f"attribute paths), e.g. {_EXAMPLE}",
        )
    return PluginEntry(name, value)


def read_plugin_wheel(
    path: Path, *, shown_as: str | None = None, limits: archive.ArchiveLimits | None = None
) -> PluginWheel:
    """The manifest of the plugin wheel at ``path`` (whose file name must be a wheel's), found
    through its entry point and checked against it and the wheel's version; nothing is
    extracted. Errors name the wheel ``shown_as`` (default: its path)."""
    where = shown_as or str(path)
    limits = limits or archive.ArchiveLimits()
    try:
        _, wheel_version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise ArchiveError(f"{where} is not named like a wheel ({exc})", path=where) from None
    names = archive.member_names(path, limits=limits, shown_as=where)
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    dist_infos = sorted(top for top in tops if top.endswith(".dist-info"))
    if len(dist_infos) != 1:
        raise _invalid(where, f"has {len(dist_infos)} .dist-info directories; a wheel has one")
    dist_info = dist_infos[0]
    problems = [
        Problem(top, "a plugin wheel keeps its files in its packages; .data/ is not installed")
        for top in sorted(tops)
        if top.endswith(".data")
    ]
    problems += [
        Problem(name, "a plugin wheel keeps its manifest and lock inside its package")
        for name in (MANIFEST_FILENAME, LOCK_FILENAME)
        if name in names
    ]
    if problems:
        raise PluginValidationError(problems, source=where)
    entry_points = f"{dist_info}/entry_points.txt"
    if entry_points not in names:
        raise _invalid(
            where,
            f"has no {entry_points}, so no [{ENTRY_POINT_GROUP}] entry point; a plugin wheel "
            f"declares exactly one, e.g. {_EXAMPLE}",
        )
    text = archive.read_member(
        path, entry_points, max_bytes=_MAX_ENTRY_POINTS_BYTES, limits=limits, shown_as=where
    )
    entry = plugin_entry(text.decode("utf-8", errors="replace"), where=f"{where}!{entry_points}")
    if entry.manifest_member not in names:
        raise _invalid(
            where,
            f"has no {entry.manifest_member}: the manifest sits in the package of the entry "
            f"point {entry.name} = {entry.value}",
        )
    raw = archive.read_member(path, entry.manifest_member, limits=limits, shown_as=where)
    manifest = parse_manifest_bytes(raw, source=f"{where}!{entry.manifest_member}")
    problems = _mismatches(manifest, entry, wheel_version)
    if problems:
        raise PluginValidationError(problems, source=where)
    try:
        inspect_wheel(path)  # no .pth, nothing that shadows the standard library or plugport
    except DependencyError as exc:
        raise _invalid(where, str(exc)) from None
    return PluginWheel(manifest, entry, dist_info, entry.lock_member in names)


def _mismatches(manifest: Manifest, entry: PluginEntry, wheel_version: Version) -> list[Problem]:
    problems = []
    if manifest.name != entry.name:
        problems.append(
            Problem(
                "name",
                f"the manifest names the plugin {manifest.name!r}, but the [{ENTRY_POINT_GROUP}] "
                f"entry point names it {entry.name!r}; make them the same",
            )
        )
    if manifest.entry != entry.value:
        problems.append(
            Problem(
                "entry",
                f"the manifest's entry is {manifest.entry!r}, but the [{ENTRY_POINT_GROUP}] "
                f"entry point is {entry.value!r}; make them the same",
            )
        )
    if Version(manifest.version) != wheel_version:
        problems.append(
            Problem(
                "version",
                f"the manifest says {manifest.version}, but the wheel is version "
                f"{wheel_version}; build the wheel from the manifest's version",
            )
        )
    return problems


def unpack_plugin_wheel(
    path: Path,
    dest: Path,
    *,
    limits: archive.ArchiveLimits | None = None,
    shown_as: str | None = None,
) -> PluginWheel:
    """Unpack the plugin wheel at ``path`` into the fresh directory ``dest`` (safely, as an
    archive), as a host runs it: the packages at the root, the manifest (and lock) moved from
    the plugin's package to the root, the ``.dist-info`` left out. All or nothing."""
    limits = limits or archive.ArchiveLimits()
    wheel = read_plugin_wheel(path, shown_as=shown_as, limits=limits)
    archive.safe_unpack(path, dest, limits=limits, shown_as=shown_as)
    try:
        shutil.rmtree(dest / wheel.dist_info)
        os.rename(dest / wheel.entry.manifest_member, dest / MANIFEST_FILENAME)
        if wheel.has_lock:
            os.rename(dest / wheel.entry.lock_member, dest / LOCK_FILENAME)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return wheel


def _invalid(where: str, message: str) -> PluginValidationError:
    return PluginValidationError([Problem("", message)], source=where)
