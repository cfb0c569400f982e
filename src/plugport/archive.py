"""The ``.plugport`` archive format: a zip packed byte-for-byte reproducibly from a source tree,
and unpacked only after every member has been shown unable to escape, link, or blow up."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pathspec

from plugport.errors import ArchiveError, ArchiveLimitError, UnsafeArchiveError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator, Mapping

__all__ = [
    "ARCHIVE_SUFFIX",
    "DEFAULT_IGNORES",
    "MANIFEST_NAME",
    "ArchiveLimits",
    "PackResult",
    "UnpackResult",
    "check_members",
    "iter_members",
    "iter_source_files",
    "member_names",
    "pack_tree",
    "read_member",
    "safe_unpack",
    "sha256_file",
]

MANIFEST_NAME = "plugport.toml"
ARCHIVE_SUFFIX = ".plugport"
_IGNORE_FILE = ".plugportignore"

# Gitignore lines applied before the tree's own .plugportignore. Archives and their signatures
# are skipped at any depth so that packing into the source tree, then packing again, yields the
# same bytes instead of swallowing the previous output.
DEFAULT_IGNORES: tuple[str, ...] = (
    ".git",
    ".plugport-dev/",  # ``plugport dev``'s state (storage, settings, staged code)
    "__pycache__/",
    ".venv/",
    "*.pyc",
    f"*{ARCHIVE_SUFFIX}",
    f"*{ARCHIVE_SUFFIX}.sig",
)

_CHUNK = 64 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest date zip can store; any fixed value would do
_UNIX = 3  # ZipInfo.create_system: the mode bits in external_attr are meaningful
_FILE_MODE = stat.S_IFREG | 0o644
_COMPRESSLEVEL = 9
_STORED_SUFFIXES = (".whl",)  # already compressed: deflating again costs time and saves nothing
# Each name rule is a pattern that must not match, and the reason given when it does.
_NAME_RULES = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"\A\Z", "empty name"),
        (r"\x00", "NUL byte in name"),
        (r"\\", "backslash in name (a Windows path separator)"),
        (r"\A/", "absolute path"),
        (r"\A[A-Za-z]:", "Windows drive letter"),
        (r"(\A|/)\.\.(/|\Z)", "'..' component (parent directory)"),
        (r"(\A|/)\.(/|\Z)", "'.' component"),
        (r"//", "empty component ('a//b')"),
        (r"[\ud800-\udfff]", "name is not valid UTF-8"),
    )
)
_SPECIAL_TYPES = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
# What reading a damaged archive raises: a CRC mismatch is a BadZipFile, an unknown compression
# method a NotImplementedError, an offset outside the file an OSError from seek, and a name
# flagged as UTF-8 but not decodable a UnicodeDecodeError.
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    OSError,
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps shared by pack and unpack, so that pack never builds what unpack would refuse."""

    max_archive_bytes: int = 50 * 1024 * 1024  # the zip file itself
    max_unpacked_bytes: int = 200 * 1024 * 1024  # sum of member bytes actually written
    max_members: int = 10_000
    max_ratio: float = 100.0  # uncompressed / compressed, per member
    # Small files can legitimately compress far beyond max_ratio and cannot bomb anyone, so the
    # ratio is only enforced once a member has produced more than this many bytes.
    ratio_floor_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class PackResult:
    """``sha256`` and ``size`` are what a signature binds, so they come from the bytes on disk."""

    path: Path
    size: int
    sha256: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class UnpackResult:
    path: Path
    members: tuple[str, ...]
    total_bytes: int


def sha256_file(path: Path) -> tuple[str, int]:
    """Hex digest and length, streamed so archives never have to fit in memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- validation without I/O -------------------------------------------------------------------


def check_members(
    infos: Iterable[zipfile.ZipInfo],
    *,
    limits: ArchiveLimits = ArchiveLimits(),
    path: str | None = None,
) -> None:
    """Refuse a central directory that could escape the target, overwrite one of its own files,
    or create anything but plain files and directories, before a single byte is written."""
    infos = list(infos)
    if len(infos) > limits.max_members:
        raise ArchiveLimitError(
            "max_members",
            len(infos),
            limits.max_members,
            f"archive has {len(infos)} members",
            path=path,
        )
    seen: dict[str, str] = {}  # folded name -> member name
    parents: dict[str, str] = {}  # folded directory -> a member that lives inside it
    for info in infos:
        name = info.orig_filename  # ZipInfo.filename silently cuts names at a NUL byte
        reason = _name_problem(name) or _type_problem(info)
        if reason:
            raise UnsafeArchiveError(name, reason, path=path)
        key = _fold(name.rstrip("/"))
        other = seen.get(key)
        if other is not None:
            if other == name:
                reason = "duplicate name"
            elif other.endswith("/") != name.endswith("/"):
                reason = f"is both a file and a directory (see {other!r})"
            else:
                reason = f"collides with {other!r} on a case-insensitive file system"
            raise UnsafeArchiveError(name, reason, path=path)
        seen[key] = name
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parents.setdefault("/".join(parts[:depth]), name)
    for key, name in seen.items():
        if not name.endswith("/") and key in parents:
            reason = f"is a file but {parents[key]!r} needs it to be a directory"
            raise UnsafeArchiveError(name, reason, path=path)


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _name_problem(name: str) -> str | None:
    return next((reason for rule, reason in _NAME_RULES if rule.search(name)), None)


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return "encrypted members are not supported"
    if info.create_system != _UNIX:
        return None  # other systems do not store Unix file types
    kind = _SPECIAL_TYPES.get(stat.S_IFMT(info.external_attr >> 16))
    return f"{kind} entries are not allowed, only files and directories" if kind else None


# --- pack -------------------------------------------------------------------------------------


def iter_source_files(src_dir: Path) -> list[str]:
    """Decide what a plugin ships: links and special files are refused rather than followed,
    because what they point at is not reproducible and may not be the author's to publish."""
    if not src_dir.is_dir():
        raise ArchiveError(f"{src_dir} is not a directory", path=str(src_dir))
    lines = list(DEFAULT_IGNORES)
    ignore_file = src_dir / _IGNORE_FILE
    if ignore_file.is_file():
        lines += ignore_file.read_text(encoding="utf-8").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    found: list[str] = []
    _walk(src_dir, "", spec, found)
    return sorted(found)


def _walk(src_dir: Path, prefix: str, spec: pathspec.GitIgnoreSpec, found: list[str]) -> None:
    with os.scandir(src_dir / prefix) as it:
        entries = sorted(it, key=lambda entry: entry.name)
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            # A link named like an ignored directory (a symlinked .venv) is ignored too.
            if spec.match_file(rel) or spec.match_file(rel + "/"):
                continue
            reason = "symbolic links are not allowed in a plugin; copy the file or ignore it"
            raise UnsafeArchiveError(rel, reason, path=str(src_dir))
        if entry.is_dir(follow_symlinks=False):
            if not spec.match_file(rel + "/"):
                _walk(src_dir, rel + "/", spec, found)
        elif spec.match_file(rel):
            continue
        elif entry.is_file(follow_symlinks=False):
            found.append(rel)
        else:
            reason = "only regular files can be packed, not a fifo, socket or device"
            raise UnsafeArchiveError(rel, reason, path=str(src_dir))


def pack_tree(
    src_dir: Path,
    dest: Path,
    *,
    limits: ArchiveLimits = ArchiveLimits(),
    extra: Mapping[str, Path | bytes] | None = None,
) -> PackResult:
    """Pack so that the same tree always gives the same bytes (and so the same signature), and
    replace ``dest`` only once the whole archive is known to pass ``safe_unpack``.

    ``extra`` adds members from elsewhere (a file's path, or bytes), or replaces a tree file of
    the same name: the locked wheels, the manifest with its engine raised. Wheels are stored,
    not deflated again."""
    where = str(src_dir)
    if not dest.parent.is_dir():
        raise ArchiveError(f"{dest.parent} does not exist", path=where)
    names = iter_source_files(src_dir)
    with contextlib.suppress(ValueError):  # dest may also be outside src_dir
        own = dest.resolve().relative_to(src_dir.resolve()).as_posix()
        names = [name for name in names if name != own]
    extra = dict(extra or {})
    sources: dict[str, Path | bytes] = {name: src_dir / name for name in names}
    sources.update(extra)
    names = sorted(sources)
    infos = [_file_info(name) for name in names]
    check_members(infos, limits=limits, path=where)

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            total = 0
            for info in infos:
                total += _add_file(
                    zf,
                    sources[info.filename],
                    info=info,
                    total=total,
                    limits=limits,
                    where=where,
                )
        digest, size = sha256_file(tmp)
        if size > limits.max_archive_bytes:
            detail = f"the archive would be {size} bytes"
            raise ArchiveLimitError(
                "max_archive_bytes", size, limits.max_archive_bytes, detail, path=where
            )
        tmp.chmod(0o644)  # mkstemp creates 0o600
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackResult(path=dest, size=size, sha256=digest, members=tuple(names))


def _file_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.create_system = _UNIX
    info.external_attr = _FILE_MODE << 16
    return info


def _add_file(
    zf: zipfile.ZipFile,
    source: Path | bytes,
    *,
    info: zipfile.ZipInfo,
    total: int,
    limits: ArchiveLimits,
    where: str,
) -> int:
    budget = limits.max_unpacked_bytes - total
    if isinstance(source, bytes):
        data = source[: budget + 1]
    else:
        with source.open("rb") as fh:
            data = fh.read(budget + 1)  # never hold more than the limit in memory
    if len(data) > budget:
        detail = f"the files add up to more than {limits.max_unpacked_bytes} bytes"
        raise ArchiveLimitError(
            "max_unpacked_bytes", total + len(data), limits.max_unpacked_bytes, detail, path=where
        )
    if info.filename.endswith(_STORED_SUFFIXES):
        zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    else:
        zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESSLEVEL)
    if _too_compressed(len(data), info.compress_size, limits):
        raise _ratio_error(info.filename, len(data), info.compress_size, limits, where)
    return len(data)


# --- unpack -----------------------------------------------------------------------------------


def safe_unpack(
    archive: Path,
    dest: Path,
    *,
    limits: ArchiveLimits = ArchiveLimits(),
    shown_as: str | None = None,
) -> UnpackResult:
    """Unpack into a fresh directory that appears whole or not at all, trusting nothing the
    archive says about itself: names are checked up front and sizes are counted as written.
    Errors name the archive ``shown_as`` (default: its path)."""
    where = shown_as or str(archive)
    if dest.exists() or dest.is_symlink():
        raise ArchiveError(f"{dest} already exists; unpack needs a fresh directory", path=where)
    if not dest.parent.is_dir():
        raise ArchiveError(f"{dest.parent} does not exist", path=where)
    with _open_zip(archive, limits, where) as zf:
        infos = zf.infolist()
        check_members(infos, limits=limits, path=where)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
        try:
            total = 0
            for info in infos:
                total += _extract(zf, info, root=tmp, total=total, limits=limits, where=where)
            tmp.chmod(0o755)  # mkdtemp creates 0o700
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return UnpackResult(
        path=dest, members=tuple(info.filename for info in infos), total_bytes=total
    )


def read_member(
    archive: Path,
    name: str,
    *,
    max_bytes: int = 256 * 1024,
    limits: ArchiveLimits = ArchiveLimits(),
    shown_as: str | None = None,
) -> bytes:
    """Read one small member, typically the manifest, without unpacking anything to disk.
    Errors name the archive ``shown_as`` (default: its path)."""
    where = shown_as or str(archive)
    with _open_zip(archive, limits, where) as zf:
        infos = zf.infolist()
        # The whole directory is checked: a manifest is only worth reading from an archive
        # that could also be unpacked.
        check_members(infos, limits=limits, path=where)
        info = next((i for i in infos if i.filename == name and not i.is_dir()), None)
        if info is None:
            raise ArchiveError(f"archive has no {name}", path=where)
        with _reading(where), zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        detail = f"{name} is larger than {max_bytes} bytes"
        raise ArchiveLimitError("max_bytes", len(data), max_bytes, detail, path=where)
    return data


def member_names(
    archive: Path, *, limits: ArchiveLimits = ArchiveLimits(), shown_as: str | None = None
) -> tuple[str, ...]:
    """The names of every member, after the same checks ``safe_unpack`` makes, reading only the
    zip's directory. Errors name the archive ``shown_as`` (default: its path)."""
    where = shown_as or str(archive)
    with _open_zip(archive, limits, where) as zf:
        infos = zf.infolist()
        check_members(infos, limits=limits, path=where)
    return tuple(info.filename for info in infos)


@contextlib.contextmanager
def _open_zip(archive: Path, limits: ArchiveLimits, where: str) -> Iterator[zipfile.ZipFile]:
    try:
        fh = archive.open("rb")
    except OSError as exc:
        raise ArchiveError(f"cannot open {where}: {exc.strerror}", path=where) from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size  # of the file actually opened, not a stale path
        if size > limits.max_archive_bytes:
            detail = f"the archive is {size} bytes"
            raise ArchiveLimitError(
                "max_archive_bytes", size, limits.max_archive_bytes, detail, path=where
            )
        with _reading(where):
            zf = zipfile.ZipFile(fh)
        with zf:
            yield zf


@contextlib.contextmanager
def _reading(where: str) -> Iterator[None]:
    # Wraps only reads from the archive, so that a full disk while writing stays an OSError
    # instead of being blamed on the archive.
    try:
        yield
    except _DAMAGED as exc:
        msg = f"{where} is damaged or not a plugin archive: {exc}"
        raise ArchiveError(msg, path=where) from exc


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Generator[bytes, None, None]:
    with _reading(where), zf.open(info) as src:
        while chunk := src.read(_CHUNK):
            yield chunk


def _extract(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    *,
    root: Path,
    total: int,
    limits: ArchiveLimits,
    where: str,
) -> int:
    name = info.filename
    if info.is_dir():
        _make_dirs(root, name.removesuffix("/"))
        return 0
    parent, _, _ = name.rpartition("/")
    if parent:
        _make_dirs(root, parent)
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    chunks = _checked_chunks(zf, info, total=total, limits=limits, where=where)
    with contextlib.closing(chunks), open(os.open(root / name, flags, 0o644), "wb") as out:
        for chunk in chunks:
            written += len(chunk)
            out.write(chunk)
    return written


def _checked_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, total: int, limits: ArchiveLimits, where: str
) -> Generator[bytes, None, None]:
    """A member's bytes as they inflate, counted against the caps: ``total`` bytes of earlier
    members plus these may not pass ``max_unpacked_bytes``, nor may this one expand too much."""
    produced = 0
    chunks = _chunks(zf, info, where)
    with contextlib.closing(chunks):
        for chunk in chunks:
            produced += len(chunk)
            if total + produced > limits.max_unpacked_bytes:
                detail = f"unpacking writes more than {limits.max_unpacked_bytes} bytes"
                raise ArchiveLimitError(
                    "max_unpacked_bytes",
                    total + produced,
                    limits.max_unpacked_bytes,
                    detail,
                    path=where,
                )
            if _too_compressed(produced, info.compress_size, limits):
                raise _ratio_error(info.filename, produced, info.compress_size, limits, where)
            yield chunk


def iter_members(
    archive: Path, *, limits: ArchiveLimits = ArchiveLimits(), shown_as: str | None = None
) -> Iterator[tuple[str, bytes]]:
    """Every file member as ``(name, bytes)``, one at a time and never on disk, after the same
    checks ``safe_unpack`` makes: the scanner reads uploads this way. Errors name the archive
    ``shown_as`` (default: its path)."""
    where = shown_as or str(archive)
    with _open_zip(archive, limits, where) as zf:
        infos = zf.infolist()
        check_members(infos, limits=limits, path=where)
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            data = b"".join(_checked_chunks(zf, info, total=total, limits=limits, where=where))
            total += len(data)
            yield info.filename, data


def _make_dirs(root: Path, rel: str) -> None:
    # One level at a time, because os.makedirs does not apply its mode to intermediate levels.
    current = root
    for part in rel.split("/"):
        current = current / part
        with contextlib.suppress(FileExistsError):
            current.mkdir(mode=0o755)


def _too_compressed(produced: int, compressed: int, limits: ArchiveLimits) -> bool:
    return produced > limits.ratio_floor_bytes and produced > limits.max_ratio * compressed


def _ratio_error(
    name: str, produced: int, compressed: int, limits: ArchiveLimits, where: str
) -> ArchiveLimitError:
    ratio = produced / max(compressed, 1)
    detail = f"{name!r} expands {ratio:.0f} times ({compressed} bytes to {produced} or more)"
    return ArchiveLimitError("max_ratio", ratio, limits.max_ratio, detail, path=where)
