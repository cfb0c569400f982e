"""The automated security scan every uploaded archive gets before a human reviews it.

:func:`scan_members` decides from names and bytes alone; :func:`scan_archive` is the thin layer
that reads the members of a ``.plugport`` zip into memory, one at a time and within the archive
limits, without unpacking anything to disk.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plugport.archive import ArchiveLimits, iter_members
from plugport.inspection import (
    SEVERITIES,
    Finding,
    Severity,
    decode_source,
    find_private_key,
    parse_source,
    scan_source,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ScanReport", "scan_archive", "scan_members"]

_DEFAULT_LIMITS = ArchiveLimits()  # frozen, so one shared default is safe
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_NATIVE_SUFFIX = re.compile(r"\.(so(\.\d+)*|pyd|dll|dylib)\Z", re.IGNORECASE)
_MACHO_MAGICS = {b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"}
_FAT_MACHO_MAGICS = {b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}
_JAVA_MIN_MAJOR = 45  # Java class files share 0xcafebabe; their next word is a version >= 45
_NATIVE_WHY = (
    "native code is out of reach of this scan and of the reviewer, and Python-level checks do "
    "not see what it does; ship Python source only"
)
_COMPILED_SUFFIXES = (".pyc", ".pyo")
_PYC_MAGICS = range(3000, 4000)  # CPython 3 bytecode magic numbers, little-endian, then b"\r\n"
_COMPILED_WHY = (
    "bytecode cannot be reviewed and need not match any source beside it; ship .py files only"
)


@dataclass(frozen=True)
class ScanReport:
    """What a reviewer reads first: the findings, most serious first, then by file and line."""

    findings: list[Finding]
    counts: dict[str, int]  # severity -> number of findings, every severity present
    highest: Severity | None  # None when nothing was found
    files_scanned: int

    @classmethod
    def of(cls, findings: Iterable[Finding], *, files_scanned: int) -> ScanReport:
        ordered = sorted(
            findings, key=lambda f: (_RANK[f.severity], f.file, f.line, f.rule, f.message)
        )
        counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        for finding in ordered:
            counts[finding.severity] += 1
        return cls(
            findings=ordered,
            counts=counts,
            highest=ordered[0].severity if ordered else None,
            files_scanned=files_scanned,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "counts": dict(self.counts),
            "highest": self.highest,
            "files_scanned": self.files_scanned,
        }


def scan_members(members: Iterable[tuple[str, bytes]]) -> ScanReport:
    """Scan ``(name, bytes)`` pairs as they come, so only one member need be in memory.

    Names ending in ``/`` are directories and are skipped. The same source rules as
    ``plugport validate`` apply to ``.py`` files, so an author sees these findings first.
    """
    findings: list[Finding] = []
    files = 0
    for name, data in members:
        if name.endswith("/"):
            continue
        files += 1
        findings += _member_findings(name, data)
    return ScanReport.of(findings, files_scanned=files)


def scan_archive(
    path: Path, *, limits: ArchiveLimits = _DEFAULT_LIMITS, shown_as: str | None = None
) -> ScanReport:
    """Scan an uploaded archive in memory; an archive that ``safe_unpack`` would refuse raises
    the same :class:`~plugport.errors.ArchiveError` before a single member is read, naming the
    archive ``shown_as`` (default: its path)."""
    return scan_members(iter_members(path, limits=limits, shown_as=shown_as))


# --- decisions --------------------------------------------------------------------------------


def _member_findings(name: str, data: bytes) -> list[Finding]:
    found: list[Finding] = []
    native = _native_kind(name, data)
    if native:
        found.append(Finding(name, 1, "native-binary", "high", f"{native}: {_NATIVE_WHY}"))
    compiled = _compiled_kind(name, data)
    if compiled:
        found.append(Finding(name, 1, "compiled-python", "high", f"{compiled}: {_COMPILED_WHY}"))
    secret = find_private_key(name, data)
    if secret:
        found.append(secret)
    if name.endswith(".py"):
        source, encoding = decode_source(name, data)
        if encoding:
            found.append(encoding)
        tree, problem = parse_source(name, source)
        if problem:
            found.append(problem)
        if tree is not None:
            found += scan_source(name, tree)
    return found


def _native_kind(name: str, data: bytes) -> str | None:
    """What native code ``data`` is, judged by content first because names are free to lie."""
    magic = data[:4]
    if magic == b"\x7fELF":
        return "an ELF executable or shared library"
    if magic in _MACHO_MAGICS:
        return "a Mach-O executable or library"
    if magic in _FAT_MACHO_MAGICS and 0 < int.from_bytes(data[4:8], "big") < _JAVA_MIN_MAJOR:
        return "a universal Mach-O binary"
    if magic.startswith(b"MZ") and (_has_pe_header(data) or not _is_utf8(data)):
        return "a Windows executable or DLL"
    if _NATIVE_SUFFIX.search(name):
        return "named like a native library"
    return None


def _has_pe_header(data: bytes) -> bool:
    offset = int.from_bytes(data[0x3C:0x40], "little")  # e_lfanew, where the PE header starts
    return len(data) >= 0x40 and data[offset : offset + 4] == b"PE\0\0"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _compiled_kind(name: str, data: bytes) -> str | None:
    if name.lower().endswith(_COMPILED_SUFFIXES):
        return "compiled Python"
    # The second magic byte is a control character (11-15), so text never looks like this.
    if data[2:4] == b"\r\n" and int.from_bytes(data[:2], "little") in _PYC_MAGICS:
        return "compiled Python, whatever its name"
    return None
