"""Which Plugport a manifest needs: a manifest that uses a table added after the first release
(``[python]``) gets its ``engines.plugport`` minimum raised when it is packed, so an older host
refuses it by version instead of by an unknown key; and a host that meets a table it does not
know, in a manifest whose ``engines.plugport`` excludes it, names the table and the version.

Pure: manifest data and text in, text and problems out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import Version

from plugport._version import __version__
from plugport.errors import Problem

__all__ = [
    "FEATURE_VERSIONS",
    "engine_conflicts",
    "newer_table_problems",
    "raise_engine",
    "required_plugport",
]

FEATURE_VERSIONS: Mapping[str, str] = {
    "python": "0.2",
    "credentials": "0.2",
    "webhooks": "0.2",
    "permissions.mail": "0.2",
    "permissions.webhooks": "0.2",
    "tasks": "0.3",
    "permissions.tasks": "0.3",
    "contributes.pages": "0.4",
    "contributes.menus": "0.4",
    "contributes.fields": "0.4",
    "contributes.themes": "0.4",
    "contributes.views": "0.4",
    "contributes.widgets[].refresh_s": "0.4",
    "contributes.widgets[].size": "0.4",
    "contributes.widgets[].description": "0.4",
    "permissions.ui[metrics]": "0.4",
    "readme": "0.5",
    "changelog": "0.5",
    "screenshots": "0.5",
}
"""Manifest table (or dotted path to a key inside one, e.g. a permission) -> the first
Plugport release that understands it. ``list[].key``: the key in any item of the list;
``key[value]``: ``value`` among the key's values."""

_LOWER_BOUNDS = (">=", ">", "==", "~=", "===")


def required_plugport(manifest_data: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """The lowest Plugport that reads every table ``manifest_data`` uses, and those tables;
    ``None`` when the first release reads it all."""
    used = [t for t in FEATURE_VERSIONS if _at(manifest_data, t) not in (None, {}, [])]
    if not used:
        return None
    minimum = max((FEATURE_VERSIONS[t] for t in used), key=Version)
    return minimum, [t for t in used if Version(FEATURE_VERSIONS[t]) == Version(minimum)]


def _at(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    parts = path.split(".")
    for index, key in enumerate(parts):
        if not isinstance(value, Mapping):
            return None
        if key.endswith("[]"):  # any item of the list that has the rest of the path
            items = value.get(key[:-2])
            rest = ".".join(parts[index + 1 :])
            found = [_at(i, rest) for i in items if isinstance(i, Mapping)] if items else []
            return next((f for f in found if f not in (None, {}, [])), None)
        if key.endswith("]") and "[" in key:  # one value among the key's values
            name, _, wanted = key[:-1].partition("[")
            values = value.get(name)
            return wanted if isinstance(values, list) and wanted in values else None
        value = value.get(key)
    return value


def raised_spec(current: str, minimum: str) -> str | None:
    """``current`` (an ``engines.plugport`` range, maybe empty) narrowed to ``>= minimum``, or
    ``None`` when it already admits nothing older."""
    floor = Version(minimum)
    spec = SpecifierSet(current)
    if any(s.operator in _LOWER_BOUNDS and _version(s) >= floor for s in spec):
        return None
    kept = [s for s in spec if not (s.operator in (">=", ">") and _version(s) < floor)]
    return ",".join([f">={minimum}", *sorted(map(str, kept))])


def _version(spec: Specifier) -> Version:
    return Version(spec.version.removesuffix(".*"))


def raise_engine(text: str, manifest_data: Mapping[str, Any]) -> str | None:
    """``plugport.toml`` text with ``engines.plugport`` raised to what its tables need,
    formatting and comments kept; ``None`` when nothing needs to change."""
    needed = required_plugport(manifest_data)
    if needed is None:
        return None
    engines = manifest_data.get("engines") or {}
    new = raised_spec(str(engines.get("plugport", "")), needed[0])
    if new is None:
        return None
    import tomlkit  # only packing edits TOML: not every reader of a manifest pays for it

    document = tomlkit.parse(text)
    if "engines" not in document:
        document["engines"] = tomlkit.table()
    document["engines"]["plugport"] = new
    return tomlkit.dumps(document)


def engine_conflicts(manifest_data: Mapping[str, Any]) -> list[Problem]:
    """A manifest whose ``engines.plugport`` admits no Plugport that reads the tables it uses
    (``"<0.3"`` with ``[tasks]``) would install nowhere: packing would narrow it to a range
    with no version in it. One problem naming the range, the tables and the version."""
    needed = required_plugport(manifest_data)
    engines = manifest_data.get("engines")
    wanted = engines.get("plugport") if isinstance(engines, Mapping) else None
    if needed is None or not isinstance(wanted, str):
        return []
    try:
        spec = SpecifierSet(wanted)
    except InvalidSpecifier:
        return []  # the manifest's own validation names it
    minimum, tables = needed
    floor = Version(minimum)
    bounds = [floor, Version(__version__), *(_version(s) for s in spec)]
    candidates = {c for v in bounds if v >= floor for c in _around(v)}
    if any(spec.contains(c, prereleases=True) for c in candidates):
        return []
    named = ", ".join(f"[{t}]" for t in tables)
    return [
        Problem(
            "engines.plugport",
            f"{wanted!r} admits no Plugport that reads {named} (those read it from {minimum}): "
            f"remove the upper bound or write '>={minimum}'",
            wanted,
        )
    ]


def _around(version: Version) -> list[Version]:
    """``version`` and the next micro, minor and major releases: where a range that admits
    anything from ``version`` on admits something (bounds are release numbers)."""
    major, minor, micro = (*version.release, 0, 0)[:3]
    return [
        version,
        Version(f"{major}.{minor}.{micro + 1}"),
        Version(f"{major}.{minor + 1}"),
        Version(f"{major + 1}"),
    ]


def newer_table_problems(data: Mapping[str, Any], known: set[str]) -> list[Problem]:
    """For tables this Plugport does not know in a manifest that asks for a newer Plugport:
    a problem per table that says which version reads it."""
    unknown = sorted(k for k in data if k not in known)
    engines = data.get("engines")
    wanted = engines.get("plugport") if isinstance(engines, Mapping) else None
    if not unknown or not isinstance(wanted, str):
        return []
    try:
        if SpecifierSet(wanted).contains(__version__, prereleases=True):
            return []
    except InvalidSpecifier:
        return []
    return [
        Problem(
            table,
            f"[{table}] is read by a newer Plugport: the plugin asks for plugport {wanted} "
            f"and this is {__version__}; upgrade Plugport to install it",
            table,
        )
        for table in unknown
    ]
