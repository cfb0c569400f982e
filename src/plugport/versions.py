"""PEP 440 versions and version ranges, with messages written for plugin authors.

Everything that compares versions (manifest engines, dependencies, resolution, the registry's
compatibility filter) goes through here so that ``*`` and the empty range mean the same
thing everywhere.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

__all__ = [
    "ANY",
    "canonical_version",
    "is_compatible",
    "normalize_specifier",
    "parse_specifier",
    "parse_version",
]

ANY = "*"
"""The range that admits every version; written as ``*`` or left empty."""


def parse_version(text: str) -> Version:
    """Parse a PEP 440 version or raise ``ValueError`` saying what a version looks like."""
    try:
        return Version(text)
    except InvalidVersion:
        raise ValueError(
            f"{text!r} is not a PEP 440 version; write e.g. '1.0.0', '2.1rc1' or '0.3.post1'"
        ) from None


def canonical_version(version: str | Version) -> str:
    """The one text every spelling of a version shares, for telling whether two are the same.

    PEP 440 compares ``1.0``, ``1.0.0`` and ``1.0.0.0`` equal, so trailing zeros are dropped
    (all three are ``1``); and a pin ``==1.0.0`` also matches ``1.0.0+local``, so the local
    label is dropped too. Two versions with the same canonical form cannot both exist, or a pin
    would no longer name one archive.
    """
    parsed = parse_version(version) if isinstance(version, str) else version
    return canonicalize_version(parsed.public, strip_trailing_zero=True)


def parse_specifier(text: str) -> SpecifierSet:
    """Parse a PEP 440 range such as ``>=1.2,<2``; ``*`` or an empty string admit everything."""
    stripped = text.strip()
    if stripped in ("", ANY):
        return SpecifierSet()
    try:
        return SpecifierSet(stripped)
    except InvalidSpecifier:
        raise ValueError(
            f"{text!r} is not a PEP 440 version range; write e.g. '>=1.2,<2', '==1.4.*', "
            "'~=2.1' or '*' for any version"
        ) from None


def normalize_specifier(text: str) -> str:
    """Canonical text of a range: clauses sorted, ``*`` for 'any'."""
    spec = parse_specifier(text)
    return str(spec) if str(spec) else ANY


def is_compatible(version: str | Version, specifier: str | SpecifierSet) -> bool:
    """Whether ``version`` lies in ``specifier``.

    Pre-releases are compared like any other version: a host running ``2.5rc1`` is inside
    ``>=2``, because the question is compatibility, not which release to pick.
    """
    spec = parse_specifier(specifier) if isinstance(specifier, str) else specifier
    parsed = parse_version(version) if isinstance(version, str) else version
    return spec.contains(parsed, prereleases=True)
