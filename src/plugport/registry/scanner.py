"""The automated security scan every uploaded archive gets before a human reviews it.

:func:`scan_members` decides from names and bytes alone; :func:`scan_archive` is the thin layer
that reads the members of a ``.plugport`` zip into memory, one at a time and within the archive
limits, without unpacking anything to disk.

The locked wheels under ``wheels/`` are code the plugin runs too, so each is opened in memory and
its members get the same rules, within caps of their own (members per wheel, bytes read from all
wheels, expansion per member): a wheel that breaks a cap or is not a readable zip is a finding,
never an exception, and its findings name the wheel and the member,
``wheels/markdown-3.7-py3-none-any.whl!markdown/core.py``. Native code in a wheel is allowed
when the plugin declares ``[python] platforms`` (a medium finding, so a reviewer sees it);
anywhere else it is high, as native code at the top of the plugin is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NamedTuple

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from plugport.archive import ArchiveLimits, check_members, iter_members
from plugport.deps.lockfile import LOCK_FILENAME, WHEELS_DIR
from plugport.deps.wheels import COMPILED_SUFFIXES, inspect_wheel
from plugport.errors import ArchiveLimitError, DependencyError, UnsafeArchiveError
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

__all__ = [
    "WHEEL_MEMBER_SEPARATOR",
    "ArchivedWheel",
    "ScanReport",
    "UploadScan",
    "inspect_archive",
    "scan_archive",
    "scan_members",
    "scan_upload",
]

WHEEL_MEMBER_SEPARATOR = "!"
"""Between a wheel and a member inside it in a finding's file: ``wheels/x.whl!pkg/mod.py``."""

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
_WHEEL_PREFIX = f"{WHEELS_DIR}/"
_CHUNK = 64 * 1024
# What reading a damaged zip from memory raises (see archive._DAMAGED).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError)
_HOSTS_REFUSE = "hosts refuse to install this wheel, so the plugin cannot be installed"


class _NativeRule(NamedTuple):
    severity: Severity
    why: str


_TOP_LEVEL_NATIVE = _NativeRule("high", _NATIVE_WHY)


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


@dataclass(frozen=True)
class ArchivedWheel:
    """A file under ``wheels/`` as the archive holds it: what the upload's lock is checked
    against, and whether it ships native code (``compiled``: the members that are)."""

    member: str
    sha256: str
    size: int
    compiled: tuple[str, ...] = ()


@dataclass(frozen=True)
class UploadScan:
    """One pass over an upload: the findings, every file under ``wheels/`` (by member name)
    and the archived ``plugport.lock`` (``None`` when there is none)."""

    report: ScanReport
    wheels: dict[str, ArchivedWheel]
    lock: bytes | None


def scan_upload(
    members: Iterable[tuple[str, bytes]],
    *,
    platforms: Sequence[str] = (),
    limits: ArchiveLimits = _DEFAULT_LIMITS,
) -> UploadScan:
    """Scan ``(name, bytes)`` pairs as they come, so only one member need be in memory.

    Names ending in ``/`` are directories and are skipped. The same source rules as
    ``plugport validate`` apply to ``.py`` files, so an author sees these findings first;
    ``wheels/*.whl`` members are scanned inside (``platforms``: the manifest's ``[python]
    platforms``, which allow native code in wheels; ``limits``: the caps on reading them).
    """
    findings: list[Finding] = []
    wheels: dict[str, ArchivedWheel] = {}
    lock: bytes | None = None
    files = 0
    budget = _Budget(limits.max_unpacked_bytes)
    for name, data in members:
        if name.endswith("/"):
            continue
        files += 1
        if name == LOCK_FILENAME:
            lock = data
        if not name.startswith(_WHEEL_PREFIX):
            findings += _member_findings(name, data)
            continue
        compiled: tuple[str, ...] = ()
        if _is_wheel(name):
            inside = _scan_wheel(name, data, platforms=platforms, limits=limits, budget=budget)
            findings += inside.findings
            files += inside.files
            compiled = inside.compiled
        else:
            findings += _member_findings(name, data)
        digest = hashlib.sha256(data).hexdigest()
        wheels[name] = ArchivedWheel(name, digest, len(data), compiled)
    return UploadScan(ScanReport.of(findings, files_scanned=files), wheels, lock)


def scan_members(
    members: Iterable[tuple[str, bytes]],
    *,
    platforms: Sequence[str] = (),
    limits: ArchiveLimits = _DEFAULT_LIMITS,
) -> ScanReport:
    """:func:`scan_upload`'s findings alone."""
    return scan_upload(members, platforms=platforms, limits=limits).report


def inspect_archive(
    path: Path,
    *,
    limits: ArchiveLimits = _DEFAULT_LIMITS,
    shown_as: str | None = None,
    platforms: Sequence[str] = (),
) -> UploadScan:
    """Scan an uploaded archive in memory; an archive that ``safe_unpack`` would refuse raises
    the same :class:`~plugport.errors.ArchiveError` before a single member is read, naming the
    archive ``shown_as`` (default: its path)."""
    members = iter_members(path, limits=limits, shown_as=shown_as)
    return scan_upload(members, platforms=platforms, limits=limits)


def scan_archive(
    path: Path,
    *,
    limits: ArchiveLimits = _DEFAULT_LIMITS,
    shown_as: str | None = None,
    platforms: Sequence[str] = (),
) -> ScanReport:
    """:func:`inspect_archive`'s findings alone."""
    return inspect_archive(path, limits=limits, shown_as=shown_as, platforms=platforms).report


# --- decisions --------------------------------------------------------------------------------


def _member_findings(
    name: str, data: bytes, *, shown: str = "", native_rule: _NativeRule = _TOP_LEVEL_NATIVE
) -> list[Finding]:
    """The rules for one file called ``name``, reported as ``shown`` (default: ``name``)."""
    file = shown or name
    found: list[Finding] = []
    native = _native_kind(name, data)
    if native:
        found.append(
            Finding(file, 1, "native-binary", native_rule.severity, f"{native}: {native_rule.why}")
        )
    compiled = _compiled_kind(name, data)
    if compiled:
        found.append(Finding(file, 1, "compiled-python", "high", f"{compiled}: {_COMPILED_WHY}"))
    secret = find_private_key(file, data)
    if secret:
        found.append(secret)
    if name.endswith(".py"):
        source, encoding = decode_source(file, data)
        if encoding:
            found.append(encoding)
        tree, problem = parse_source(file, source)
        if problem:
            found.append(problem)
        if tree is not None:
            found += scan_source(file, tree)
    return found


# --- inside a wheel ---------------------------------------------------------------------------


def _is_wheel(name: str) -> bool:
    """A locked wheel's place: directly under ``wheels/`` (anything else there is refused at
    upload as a file the lock does not name, and scanned as an ordinary file meanwhile)."""
    rest = name.removeprefix(_WHEEL_PREFIX)
    return "/" not in rest and rest.endswith(".whl")


class _Budget:
    """Bytes still to be read from inside all of an upload's wheels together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit


class _WheelLimitError(Exception):
    def __init__(self, limit: str, detail: str) -> None:
        self.limit = limit
        self.detail = detail
        super().__init__(detail)


@dataclass
class _WheelScan:
    findings: list[Finding] = dataclasses.field(default_factory=list)
    files: int = 0
    compiled: tuple[str, ...] = ()


def _scan_wheel(
    member: str,
    data: bytes,
    *,
    platforms: Sequence[str],
    limits: ArchiveLimits,
    budget: _Budget,
) -> _WheelScan:
    """Every member of the wheel ``member`` (its bytes ``data``) through the same rules."""
    scan = _WheelScan()
    filename = member.removeprefix(_WHEEL_PREFIX)
    native_rule = _wheel_native_rule(filename, platforms)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED as exc:
        scan.findings.append(
            _wheel_finding(member, "wheel-unreadable", f"not a readable zip ({exc})")
        )
        return scan
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            why = (
                f"has {len(infos)} members, more than the scan reads (limit max_members = "
                f"{limits.max_members}); nothing in it was scanned"
            )
            scan.findings.append(_wheel_finding(member, "wheel-limit", why))
            return scan
        safe = _unsafe_member_findings(member, infos, scan.findings, limits)
        compiled: list[str] = []
        try:
            for info in safe:
                if info.is_dir():
                    continue
                inner = info.orig_filename
                content = _read_inner(zf, info, limits=limits, budget=budget)
                scan.files += 1
                shown = f"{member}{WHEEL_MEMBER_SEPARATOR}{inner}"
                found = _member_findings(inner, content, shown=shown, native_rule=native_rule)
                if any(f.rule == "native-binary" for f in found) or inner.endswith(
                    COMPILED_SUFFIXES
                ):
                    compiled.append(inner)
                scan.findings += found
        except _WheelLimitError as exc:
            scan.findings.append(
                _wheel_finding(member, "wheel-limit", f"{exc.detail}; the rest was not scanned")
            )
        except _DAMAGED as exc:
            scan.findings.append(
                _wheel_finding(
                    member, "wheel-unreadable", f"is damaged ({exc}); the rest was not scanned"
                )
            )
        scan.compiled = tuple(compiled)
        if len(safe) == len(infos):  # what hosts check besides names: METADATA, shadowing
            scan.findings += _host_refusal(member, filename, data)
    return scan


def _unsafe_member_findings(
    member: str, infos: list[zipfile.ZipInfo], findings: list[Finding], limits: ArchiveLimits
) -> list[zipfile.ZipInfo]:
    """Findings for members a host would refuse by name (escaping, linking, ``.pth``); the
    members left, which are safe to read."""
    safe: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.orig_filename
        shown = f"{member}{WHEEL_MEMBER_SEPARATOR}{name}"
        try:
            check_members([info], limits=limits, path=member)
        except UnsafeArchiveError as exc:
            why = f"{exc.reason}: installing it could write outside the library; {_HOSTS_REFUSE}"
            findings.append(Finding(shown, 1, "wheel-unsafe-member", "high", why))
            continue
        if PurePosixPath(name).suffix == ".pth":
            why = (
                "a .pth file: Python runs the code in .pth files at start-up, before and outside "
                f"the plugin; {_HOSTS_REFUSE}"
            )
            findings.append(Finding(shown, 1, "wheel-pth", "high", why))
            continue
        safe.append(info)
    try:  # names that are each fine but clash: duplicates, case collisions, file vs directory
        check_members(safe, limits=limits, path=member)
    except UnsafeArchiveError as exc:
        shown = f"{member}{WHEEL_MEMBER_SEPARATOR}{exc.member}"
        why = f"{exc.reason}; {_HOSTS_REFUSE}"
        findings.append(Finding(shown, 1, "wheel-unsafe-member", "high", why))
        return [info for info in safe if info.orig_filename != exc.member]
    return safe


def _read_inner(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limits: ArchiveLimits, budget: _Budget
) -> bytes:
    """A member's bytes, counted as they inflate against the wheels' budget and the ratio."""
    chunks: list[bytes] = []
    produced = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            produced += len(chunk)
            if produced > budget.left:
                raise _WheelLimitError(
                    "max_unpacked_bytes",
                    f"the wheels' contents add up to more than {budget.limit} bytes (limit "
                    f"max_unpacked_bytes = {budget.limit}), at {info.orig_filename!r}",
                )
            if produced > limits.ratio_floor_bytes and produced > limits.max_ratio * max(
                info.compress_size, 1
            ):
                ratio = produced / max(info.compress_size, 1)
                raise _WheelLimitError(
                    "max_ratio",
                    f"{info.orig_filename!r} expands {ratio:.0f} times ({info.compress_size} "
                    f"bytes to {produced} or more; limit max_ratio = {limits.max_ratio:g}): a "
                    "zip bomb, or data no library needs",
                )
            chunks.append(chunk)
    budget.left -= produced
    return b"".join(chunks)


def _host_refusal(member: str, filename: str, data: bytes) -> list[Finding]:
    """What a host's own check of the wheel (:func:`plugport.deps.wheels.inspect_wheel`) would
    refuse beyond names: no or several METADATA files, a module shadowing the standard library
    or plugport. The wheel's file name is the lock check's business, not this one's."""
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return []
    try:
        inspect_wheel(io.BytesIO(data), filename=filename)
    except DependencyError as exc:
        return [_wheel_finding(member, "wheel-not-installable", f"{exc}")]
    except (*_DAMAGED, ArchiveLimitError) as exc:
        return [_wheel_finding(member, "wheel-unreadable", f"is damaged ({exc})")]
    return []


def _wheel_finding(member: str, rule: str, why: str) -> Finding:
    return Finding(member, 1, rule, "high", why)


def _wheel_native_rule(filename: str, platforms: Sequence[str]) -> _NativeRule:
    """How serious native code in this wheel is: expected in a wheel built for a platform the
    plugin declares, a disguise anywhere else."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        tags = frozenset()
    built_for = sorted({tag.platform for tag in tags if tag.platform != "any"})
    if not built_for:
        return _NativeRule(
            "high",
            "in a wheel tagged for any platform: a pure-Python wheel has no native code, so "
            "this one is not what its name says",
        )
    if not platforms:
        return _NativeRule(
            "high",
            f"in a wheel built for {', '.join(built_for)}, but the plugin declares no [python] "
            "platforms, so it may ship pure-Python libraries only; declare the platforms in "
            "plugport.toml and run `plugport lock` again",
        )
    return _NativeRule(
        "medium",
        f"in a wheel built for {', '.join(built_for)}: allowed, because the plugin declares "
        f"[python] platforms ({', '.join(platforms)}), but neither this scan nor a reviewer can "
        "read native code; check that the library is its project's own build",
    )


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
