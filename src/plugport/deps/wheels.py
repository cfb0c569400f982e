"""What is inside a wheel, and whether a plugin may ship it.

A wheel is refused when installing it could reach beyond the plugin's own import path: a member
name that escapes (``..``, absolute, a link), a ``.pth`` file (code that ``site`` runs at start),
or a top-level module that would shadow the standard library or ``plugport`` itself. Compiled
members (``.so``) are allowed for declared platforms and reported, so a reviewer sees them.

Reads only the zip's directory and its ``METADATA``; extracts nothing.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import IO

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from plugport import archive
from plugport.errors import ArchiveLimitError, DependencyError, UnsafeArchiveError

__all__ = ["COMPILED_SUFFIXES", "WheelFacts", "check_record", "inspect_wheel", "wheel_problem"]

COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
_RESERVED = frozenset(sys.stdlib_module_names) | {"plugport", "__future__", "__main__"}
_MAX_METADATA_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WheelFacts:
    filename: str
    name: str  # canonical
    version: str
    tags: frozenset[Tag]
    top_level: tuple[str, ...]  # the importable names it adds
    python_files: tuple[str, ...]
    compiled: tuple[str, ...]
    requires: tuple[str, ...]  # Requires-Dist, as written

    @property
    def pure(self) -> bool:
        return all(tag.platform == "any" for tag in self.tags)


def wheel_problem(filename: str) -> str | None:
    """Why ``filename`` cannot be a locked artefact (an sdist, a malformed name), or ``None``."""
    if filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz")):
        return (
            f"{filename} is a source distribution; only wheels are reproducible to install. "
            "Ask the project for a wheel, build one and serve it from your own index, or "
            "choose a version that has wheels"
        )
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        return f"{filename} is not a wheel ({exc})"
    return None


def inspect_wheel(path: Path | IO[bytes], *, filename: str | None = None) -> WheelFacts:
    """The facts of the wheel at ``path`` (named ``filename``, default its own name), or
    :class:`DependencyError` naming the wheel, the member and the rule it breaks. ``path`` may
    also be an open binary file (the registry's scan reads wheels from memory); it then needs
    ``filename``."""
    if filename is None:
        if not isinstance(path, Path):
            raise TypeError("inspect_wheel: a file object needs filename=")
        filename = path.name
    problem = wheel_problem(filename)
    if problem:
        raise DependencyError(problem, file=filename)
    name, version, _, tags = parse_wheel_filename(filename)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            members = [info.filename for info in infos]
            _check_members(filename, name, infos)
            metadata = _metadata(zf, filename, name, str(version))
    except zipfile.BadZipFile as exc:
        raise DependencyError(f"{filename} is not a readable wheel ({exc})", package=name) from None
    top_level = _top_level(members)
    shadowing = set(top_level) & _RESERVED
    if shadowing:
        raise DependencyError(
            f"{filename} would shadow {', '.join(sorted(shadowing))} (the standard library or "
            "plugport itself) on the plugin's import path; remove the dependency or choose a "
            "release that does not ship that module",
            package=name,
            file=filename,
        )
    return WheelFacts(
        filename=filename,
        name=name,
        version=str(version),
        tags=tags,
        top_level=tuple(top_level),
        python_files=tuple(m for m in members if m.endswith(".py")),
        compiled=tuple(m for m in members if m.endswith(COMPILED_SUFFIXES) or ".so." in m),
        requires=tuple(metadata.get_all("Requires-Dist") or ()),
    )


def check_record(path: Path, package: str) -> None:
    """Every file in the wheel is listed in its RECORD with the right hash (what ``installer``
    checks; done once, when the wheel is locked)."""
    from installer.sources import WheelFile

    try:
        with WheelFile.open(path) as source:
            source.validate_record()
    except Exception as exc:  # installer's own exception types vary by version
        raise DependencyError(
            f"{path.name}: its RECORD does not match its files ({exc}); the wheel is damaged",
            package=package,
            file=path.name,
        ) from None


def _check_members(filename: str, package: str, infos: list[zipfile.ZipInfo]) -> None:
    try:
        archive.check_members(infos, path=filename)
    except UnsafeArchiveError as exc:
        raise _refused(filename, package, exc.member, exc.reason) from None
    except ArchiveLimitError as exc:
        raise DependencyError(f"{filename}: {exc}", package=package, file=filename) from None
    limits = archive.ArchiveLimits()
    total = 0
    for info in infos:
        if PurePosixPath(info.filename).suffix == ".pth":
            reason = (
                "a .pth file (Python runs code from .pth files at start-up, outside the "
                "plugin's control)"
            )
            raise _refused(filename, package, info.filename, reason)
        total += info.file_size
        expands = info.file_size > limits.ratio_floor_bytes and info.file_size > (
            limits.max_ratio * max(info.compress_size, 1)
        )
        if expands:
            reason = (
                f"it expands {info.compress_size} bytes to {info.file_size} (more than "
                f"{limits.max_ratio:.0f}x): a compression bomb"
            )
            raise _refused(filename, package, info.filename, reason)
    if total > limits.max_unpacked_bytes:
        raise DependencyError(
            f"{filename} unpacks to {total} bytes, more than the {limits.max_unpacked_bytes} "
            "a plugin's files may (max_unpacked_bytes)",
            package=package,
            file=filename,
        )


def _refused(filename: str, package: str, member: str, reason: str) -> DependencyError:
    return DependencyError(
        f"{filename}: member {member!r} is refused: {reason}; a plugin cannot ship this wheel",
        package=package,
        file=f"{filename}!{member}",
    )


def _metadata(zf: zipfile.ZipFile, filename: str, name: str, version: str) -> Message:
    wanted = [m for m in zf.namelist() if m.count("/") == 1 and m.endswith(".dist-info/METADATA")]
    if len(wanted) != 1:
        raise DependencyError(
            f"{filename} has {len(wanted)} .dist-info/METADATA files; a wheel has one",
            package=name,
            file=filename,
        )
    info = zf.getinfo(wanted[0])
    if info.file_size > _MAX_METADATA_BYTES:
        raise DependencyError(f"{filename}: METADATA is too large", package=name, file=filename)
    text = zf.read(info).decode("utf-8", errors="replace")
    return HeaderParser().parsestr(text)


def _top_level(members: list[str]) -> list[str]:
    """The names ``import`` finds at the top of the install directory: packages, modules and
    extension modules (``.data/purelib`` and ``.data/platlib`` contents land there too)."""
    found = set()
    for member in members:
        parts = member.split("/")
        if parts[0].endswith(".data") and len(parts) > 2 and parts[1] in ("purelib", "platlib"):
            parts = parts[2:]
        elif parts[0].endswith((".dist-info", ".data")):
            continue
        head = parts[0]
        if len(parts) > 1:
            if head != "__pycache__":
                found.add(head)
        elif head.endswith(".py"):
            found.add(head[:-3])
        elif head.endswith(COMPILED_SUFFIXES):
            found.add(head.split(".", 1)[0])
    return sorted(found)
