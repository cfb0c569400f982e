"""What the plugin resolver reasons about: a published version of a plugin (:class:`Candidate`),
where candidates come from (:class:`CandidateSource`), and a range of versions someone asked for
(:class:`Requirement`). Both the resolver and its explanations import these; neither imports the
other's internals.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from packaging.specifiers import SpecifierSet

from plugport._manifest_fields import check_plugin_name
from plugport.errors import InvalidInputError, NotFoundError
from plugport.versions import ANY, normalize_specifier, parse_specifier

__all__ = [
    "Candidate",
    "CandidateSource",
    "MemorySource",
    "Requirement",
    "parse_requirement",
    "specifier_set",
]

_REQUIREMENT_HELP = (
    "a requirement is a plugin name with an optional version range, e.g. 'acme.hello', "
    "'acme.hello==1.2.0' or 'acme.hello>=1,<2'"
)
_REQUIREMENT_RE = re.compile(r"^\s*([^\s<>=!~]+)\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Candidate:
    """One published version of a plugin as a registry (or a local archive) describes it."""

    name: str
    version: str
    dependencies: Mapping[str, str] = field(default_factory=dict)  # plugin name -> range
    engines: Mapping[str, str] = field(default_factory=dict)  # "plugport" or host app -> range
    yanked: bool = False

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class CandidateSource(Protocol):
    """Where candidates come from: a registry index, a directory of archives, a test's list."""

    def versions(self, name: str) -> Sequence[Candidate]:
        """Every known version of ``name``, in any order; ``NotFoundError`` if it is unknown."""
        ...


class MemorySource:
    """A :class:`CandidateSource` over candidates held in memory (tests, local archives)."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._by_name: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            self._by_name.setdefault(candidate.name, []).append(candidate)

    def versions(self, name: str) -> Sequence[Candidate]:
        try:
            return tuple(self._by_name[name])
        except KeyError:
            raise NotFoundError("plugin", name) from None


@dataclass(frozen=True)
class Requirement:
    """A range of versions of one plugin, and who asked for it (``None``: the user; else the
    dependent, as ``"acme.b 1.0.0"``) so that a conflict can name both sides."""

    name: str
    specifier: str = ANY
    parent: str | None = None

    def __post_init__(self) -> None:
        try:
            normal = normalize_specifier(self.specifier)
        except ValueError as exc:
            raise InvalidInputError(f"{self.name}: {exc}") from None
        object.__setattr__(self, "specifier", normal)

    @property
    def pinned(self) -> bool:
        """Whether this names one exact version (``==X`` without a wildcard, or ``===X``);
        only such a requirement may choose a yanked version."""
        return _pins(self.specifier)

    def __str__(self) -> str:
        return self.name if self.specifier == ANY else f"{self.name}{self.specifier}"


def parse_requirement(text: str) -> Requirement:
    """Read what a user types (``acme.hello``, ``acme.hello>=1,<2``) as a requirement."""
    match = _REQUIREMENT_RE.match(text)
    if match is None:
        raise InvalidInputError(f"{text!r} is not a requirement; {_REQUIREMENT_HELP}")
    name, specifier = match.groups()
    try:
        check_plugin_name(name)
        normal = normalize_specifier(specifier)
    except ValueError as exc:
        raise InvalidInputError(
            f"{text!r} is not a requirement: {exc}; {_REQUIREMENT_HELP}"
        ) from None
    return Requirement(name, normal)


@functools.lru_cache(maxsize=1024)
def specifier_set(text: str) -> SpecifierSet:
    return parse_specifier(text)


@functools.lru_cache(maxsize=1024)
def _pins(text: str) -> bool:
    return any(
        s.operator == "===" or (s.operator == "==" and not s.version.endswith(".*"))
        for s in specifier_set(text)
    )
