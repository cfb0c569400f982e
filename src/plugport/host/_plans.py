"""What an install, update or uninstall will do, decided without I/O from the installed state
and what the registries offer: the orchestration in :class:`~plugport.host.PluginHost` reads the
state under its lock, asks these functions, then acts. Each answer is data or our error, naming
the plugin and the command that fixes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.resolver import Requirement
from plugport.versions import parse_version

if TYPE_CHECKING:
    from plugport.host.state import Installation

__all__ = [
    "dependency_requirements",
    "needed_by",
    "update_requirements",
    "update_targets",
    "updates",
]


def needed_by(name: str, installations: Iterable[Installation]) -> list[str]:
    """The installed plugins that block uninstalling ``name``, as ``"acme.b 1.0 (needs
    acme.a>=1)"``, sorted; empty when nothing depends on it."""
    return sorted(
        f"{i.name} {i.version} (needs {name}{_spec(i.dependencies[name])})"
        for i in installations
        if name in i.dependencies and i.name != name
    )


def update_targets(names: Sequence[str], installed: Mapping[str, Installation]) -> list[str]:
    """What ``update(*names)`` moves: ``names``, or with none every registry install. A name
    not installed, or installed from somewhere ``update`` cannot ask again (a package index, a
    file, a URL, a directory), is refused saying how to update it instead."""
    targets = list(names) or [n for n, i in installed.items() if i.source_kind == "registry"]
    for name in targets:
        if name not in installed:
            raise NotFoundError("installed plugin", name)
        installation = installed[name]
        if installation.source_kind == "index":
            raise InvalidInputError(
                f"{name} was installed from the package index file {installation.source}; "
                "update it by installing from its index again: plugport install --index-url "
                f"INDEX_URL {name}"
            )
        if installation.source_kind != "registry":
            raise InvalidInputError(
                f"{name} was installed from {installation.source_kind} {installation.source}; "
                "install the new archive instead"
            )
    return targets


def update_requirements(
    targets: Sequence[str],
    installed: Mapping[str, Installation],
    versions: Mapping[str, str] | None = None,
) -> list[Requirement]:
    """What the resolver must satisfy for an update: each target at any version (or exactly
    at ``versions[name]``, when given: an automatic update chooses its own version), and what
    every installed plugin needs (so an update never breaks a dependent)."""
    pinned = versions or {}
    requirements = [
        Requirement(name, f"=={pinned[name]}" if name in pinned else "*", None) for name in targets
    ]
    for other in installed.values():
        requirements += dependency_requirements(other.name, other.version, other.dependencies)
    return requirements


def dependency_requirements(
    name: str, version: str, dependencies: Mapping[str, str]
) -> list[Requirement]:
    """``name version``'s dependencies as requirements that name who asks for them."""
    return [
        Requirement(dep, spec or "*", f"{name} {version}") for dep, spec in dependencies.items()
    ]


def updates(
    installed: Iterable[Installation], newest: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """``(name, installed, newest)`` for each registry install whose newest compatible version
    (``newest``, name -> version, as the registries answered) is higher than what is there."""
    return [
        (i.name, i.version, newest[i.name])
        for i in installed
        if i.source_kind == "registry"
        and i.name in newest
        and parse_version(newest[i.name]) > parse_version(i.version)
    ]


def _spec(spec: str) -> str:
    return "" if spec in ("", "*") else spec
