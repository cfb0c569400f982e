"""Tests for plugport.archive: reproducible packing, and unpacking that refuses hostile archives
without leaving anything behind."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import unicodedata
import warnings
import zipfile
from pathlib import Path
from typing import TypeVar

import pytest

from plugport.archive import (
    ARCHIVE_SUFFIX,
    DEFAULT_IGNORES,
    MANIFEST_NAME,
    ArchiveLimits,
    check_members,
    iter_source_files,
    pack_tree,
    read_member,
    safe_unpack,
    sha256_file,
)
from plugport.errors import ArchiveError, ArchiveLimitError, UnsafeArchiveError

E = TypeVar("E", bound=ArchiveError)
Entry = tuple[str | zipfile.ZipInfo, bytes]

MiB = 1024 * 1024
DEFAULT_LIMITS = ArchiveLimits()
FILES = {
    MANIFEST_NAME: b'name = "demo"\nversion = "1.0.0"\n',
    "README.md": b"# demo\n",
    "src/demo/__init__.py": b"def hello():\n    return 'hi'\n",
    "src/demo/data/table.bin": bytes(range(256)) * 64,
    "src/demo/data/empty.txt": b"",
}


# --- helpers ----------------------------------------------------------------------------------


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root with its content (or file type), without following links."""
    state: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            mode = path.lstat().st_mode
            rel = path.relative_to(root).as_posix()
            state[rel] = path.read_bytes() if stat.S_ISREG(mode) else stat.S_IFMT(mode)
    return state


def unix_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def build_zip(path: Path, entries: list[Entry], compression: int = zipfile.ZIP_STORED) -> Path:
    with warnings.catch_warnings():
        # Some hostile archives repeat a name on purpose.
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def patch_single_member(path: Path, **fields: int) -> None:
    """Overwrite header fields of a one-member zip in both its local and central headers."""
    local = {"flag_bits": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "size": (22, "<I")}
    central = {"flag_bits": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "size": (24, "<I")}
    data = bytearray(path.read_bytes())
    assert data.count(b"PK\x01\x02") == 1
    central_at = data.index(b"PK\x01\x02")
    for field, value in fields.items():
        offset, fmt = local[field]
        struct.pack_into(fmt, data, offset, value)
        offset, fmt = central[field]
        struct.pack_into(fmt, data, central_at + offset, value)
    path.write_bytes(bytes(data))


def unpack_refused(
    archive: Path, tmp_path: Path, error: type[E], limits: ArchiveLimits = DEFAULT_LIMITS
) -> E:
    """Unpack, expect `error`, and check that not a single file was left anywhere."""
    dest = tmp_path / "out" / "plugin"
    dest.parent.mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    with pytest.raises(error) as caught:
        safe_unpack(archive, dest, limits=limits)
    assert caught.value.path == str(archive)
    assert snapshot(tmp_path) == before  # no dest, no .unpack-* leftovers, nothing outside
    assert not dest.exists()
    assert not (tmp_path / "evil").exists()
    return caught.value


# --- pack -------------------------------------------------------------------------------------


def test_pack_is_byte_identical_and_ignores_mtimes_and_modes(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    first = pack_tree(src, tmp_path / "a.plugport")
    second = pack_tree(src, tmp_path / "b.plugport")
    assert first.path.read_bytes() == second.path.read_bytes()

    os.utime(src / "README.md", (1_700_000_000, 1_700_000_000))
    os.utime(src / "src", (0, 0))
    (src / "src/demo/__init__.py").chmod(0o755)
    (src / "src/demo/data").chmod(0o700)
    third = pack_tree(src, tmp_path / "c.plugport")
    assert third.path.read_bytes() == first.path.read_bytes()
    assert (third.sha256, third.size) == (first.sha256, first.size)


def test_pack_writes_sorted_fixed_entries(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    result = pack_tree(src, tmp_path / "demo.plugport")

    data = result.path.read_bytes()
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.members == tuple(sorted(FILES))
    with zipfile.ZipFile(result.path) as zf:
        assert zf.comment == b""
        assert zf.namelist() == sorted(FILES)
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.create_system == 3
            assert info.external_attr == (stat.S_IFREG | 0o644) << 16
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.extra == b""
            assert info.comment == b""
            assert zf.read(info) == FILES[info.filename]
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o644


def test_pack_applies_default_ignores_and_plugportignore(tmp_path: Path) -> None:
    src = make_tree(
        tmp_path / "src",
        {
            MANIFEST_NAME: b"",
            ".plugportignore": b"# comment\nbuild/\n*.log\n!keep.log\n/notes.txt\n",
            ".git/config": b"",
            "vendored/.git": b"gitdir: ../.git/modules/vendored\n",
            "vendored/lib.py": b"",
            "__pycache__/x.cpython-311.pyc": b"",
            "pkg/__pycache__/y.cpython-311.pyc": b"",
            "pkg/mod.py": b"",
            "pkg/stale.pyc": b"",
            ".venv/lib/site.py": b"",
            "build/out.txt": b"",
            "pkg/build/out.txt": b"",
            "debug.log": b"",
            "pkg/trace.log": b"",
            "keep.log": b"",
            "notes.txt": b"",
            "pkg/notes.txt": b"",
            "old.plugport": b"",
            "dist/old.plugport.sig": b"",
        },
    )
    # A .venv full of links must not be walked, let alone refused.
    (src / ".venv/bin").mkdir()
    (src / ".venv/bin/python").symlink_to("/usr/bin/python3")
    (src / "build/loop").symlink_to(src)

    assert iter_source_files(src) == [
        ".plugportignore",
        "keep.log",
        "pkg/mod.py",
        "pkg/notes.txt",
        MANIFEST_NAME,
        "vendored/lib.py",
    ]


def test_symlinked_venv_is_ignored(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {MANIFEST_NAME: b""})
    (tmp_path / "venv").mkdir()
    (src / ".venv").symlink_to(tmp_path / "venv")
    assert iter_source_files(src) == [MANIFEST_NAME]


def test_default_ignores_skip_archives_and_signatures() -> None:
    assert {f"*{ARCHIVE_SUFFIX}", f"*{ARCHIVE_SUFFIX}.sig", "__pycache__/"} <= set(DEFAULT_IGNORES)


@pytest.mark.parametrize("dest_name", ["dist/demo.plugport", "demo.zip"])
def test_pack_into_its_own_tree_is_repeatable(tmp_path: Path, dest_name: str) -> None:
    src = make_tree(tmp_path / "src", FILES)
    (src / "dist").mkdir()
    dest = src / dest_name
    first = pack_tree(src, dest).path.read_bytes()
    second = pack_tree(src, dest)
    assert second.path.read_bytes() == first
    assert dest_name not in second.members


@pytest.mark.parametrize("link", ["link", "pkg/link"])
def test_pack_refuses_symlink_and_leaves_nothing(tmp_path: Path, link: str) -> None:
    src = make_tree(tmp_path / "src", FILES | {"pkg/mod.py": b""})
    (src / link).symlink_to(src / "README.md")
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="symbolic links are not allowed") as caught:
        pack_tree(src, tmp_path / "demo.plugport")
    assert caught.value.member == link
    assert caught.value.path == str(src)
    assert snapshot(tmp_path) == before


def test_pack_refuses_fifo(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    os.mkfifo(src / "pipe")
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="only regular files") as caught:
        pack_tree(src, tmp_path / "demo.plugport")
    assert caught.value.member == "pipe"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("files", "member", "reason"),
    [
        ({"README": b"", "readme": b""}, "readme", "case-insensitive"),
        ({"back\\slash": b""}, "back\\slash", "backslash"),
    ],
)
def test_pack_refuses_names_unpack_would_refuse(
    tmp_path: Path, files: dict[str, bytes], member: str, reason: str
) -> None:
    src = make_tree(tmp_path / "src", files)
    with pytest.raises(UnsafeArchiveError, match=reason) as caught:
        pack_tree(src, tmp_path / "demo.plugport")
    assert caught.value.member == member
    assert not (tmp_path / "demo.plugport").exists()


@pytest.mark.parametrize(
    ("limits", "limit"),
    [
        (ArchiveLimits(max_members=4), "max_members"),
        (ArchiveLimits(max_unpacked_bytes=10_000), "max_unpacked_bytes"),
        (ArchiveLimits(max_archive_bytes=500), "max_archive_bytes"),
        (ArchiveLimits(max_ratio=2, ratio_floor_bytes=1000), "max_ratio"),
    ],
)
def test_pack_refuses_over_limits_and_keeps_old_dest(
    tmp_path: Path, limits: ArchiveLimits, limit: str
) -> None:
    src = make_tree(tmp_path / "src", FILES)
    dest = tmp_path / "demo.plugport"
    dest.write_bytes(b"previous archive")
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveLimitError) as caught:
        pack_tree(src, dest, limits=limits)
    assert caught.value.limit == limit
    assert caught.value.value > caught.value.maximum
    assert snapshot(tmp_path) == before  # old dest intact, no temp file left


def test_pack_ratio_floor_matches_unpack(tmp_path: Path) -> None:
    """Up to the floor any ratio is fine on both sides; one byte more and pack refuses."""
    src = make_tree(tmp_path / "src", {"zeros.bin": bytes(MiB)})
    result = pack_tree(src, tmp_path / "ok.plugport")
    assert safe_unpack(result.path, tmp_path / "ok").total_bytes == MiB

    (src / "zeros.bin").write_bytes(bytes(MiB + 1))
    with pytest.raises(ArchiveLimitError) as caught:
        pack_tree(src, tmp_path / "bomb.plugport")
    assert caught.value.limit == "max_ratio"
    assert not (tmp_path / "bomb.plugport").exists()


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_bytes(b"")])
def test_pack_needs_a_source_directory(tmp_path: Path, make: object) -> None:
    src = tmp_path / "src"
    make(src)  # type: ignore[operator]
    with pytest.raises(ArchiveError, match="is not a directory") as caught:
        pack_tree(src, tmp_path / "demo.plugport")
    assert caught.value.path == str(src)


def test_pack_needs_dest_parent(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    with pytest.raises(ArchiveError, match="does not exist"):
        pack_tree(src, tmp_path / "missing" / "demo.plugport")


def test_sha256_file_streams(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(200_000)
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


# --- unpack: what works -----------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    packed = pack_tree(src, tmp_path / "demo.plugport")
    dest = tmp_path / "installed"
    result = safe_unpack(packed.path, dest)
    assert result.path == dest
    assert result.members == packed.members
    assert result.total_bytes == sum(len(data) for data in FILES.values())
    assert snapshot(dest) == snapshot(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.plugport", "installed", "src"]


def test_unpack_ignores_archive_modes_and_times(tmp_path: Path) -> None:
    info = unix_info("bin/run", stat.S_IFREG | 0o4777)
    info.date_time = (2001, 2, 3, 4, 5, 6)
    archive = build_zip(
        tmp_path / "a.zip",
        [(unix_info("docs/", stat.S_IFDIR | 0o777), b""), (info, b"#!/bin/sh\n")],
    )
    dest = tmp_path / "out"
    result = safe_unpack(archive, dest)
    assert result.members == ("docs/", "bin/run")
    assert (dest / "docs").is_dir()
    run = (dest / "bin/run").stat()
    assert stat.S_IMODE(run.st_mode) & 0o7111 == 0
    assert run.st_mtime > 1_000_000_000 + 365 * 86400 * 10
    for directory in (dest, dest / "docs", dest / "bin"):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o7022 == 0


def test_unpack_accepts_entries_from_other_systems(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("dos.txt")
    info.create_system = 0
    info.external_attr = stat.S_IFLNK << 16  # meaningless outside Unix
    archive = build_zip(tmp_path / "a.zip", [(info, b"hello")])
    safe_unpack(archive, tmp_path / "out")
    assert (tmp_path / "out/dos.txt").read_bytes() == b"hello"


def test_unpack_counts_bytes_written_not_header_claims(tmp_path: Path) -> None:
    """A header may claim more than the limit; what counts is what actually comes out."""
    archive = build_zip(tmp_path / "a.zip", [("small.txt", b"x" * 1000)], zipfile.ZIP_DEFLATED)
    patch_single_member(archive, size=100 * MiB)
    result = safe_unpack(archive, tmp_path / "out", limits=ArchiveLimits(max_unpacked_bytes=MiB))
    assert result.total_bytes == 1000


# --- unpack: what is refused ------------------------------------------------------------------


def test_unpack_refuses_existing_dest(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "a.zip", [("x", b"")])
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError, match="already exists; unpack needs a fresh directory"):
        safe_unpack(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_unpack_refuses_missing_parent(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "a.zip", [("x", b"")])
    with pytest.raises(ArchiveError, match="does not exist"):
        safe_unpack(archive, tmp_path / "no" / "out")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("{tmp}/evil", "absolute path"),
        ("/evil", "absolute path"),
        ("//server/share/evil", "absolute path"),
        ("../evil", "'..' component"),
        ("../../evil", "'..' component"),
        ("a/../../evil", "'..' component"),
        ("a/..", "'..' component"),
        ("..\\evil", "backslash"),
        ("\\\\server\\share\\evil", "backslash"),
        ("C:evil", "drive letter"),
        ("c:/evil", "drive letter"),
        ("./evil", "'.' component"),
        ("a/./b", "'.' component"),
        ("a//b", "empty component"),
        ("", "empty name"),
    ],
)
def test_unpack_refuses_unsafe_name(tmp_path: Path, name: str, reason: str) -> None:
    name = name.replace("{tmp}", str(tmp_path))
    entries: list[Entry] = [("ok.txt", b"fine"), (zipfile.ZipInfo(name), b"pwned")]
    archive = build_zip(tmp_path / "bad.plugport", entries)
    error = unpack_refused(archive, tmp_path, UnsafeArchiveError)
    assert error.member == name
    assert reason in error.reason


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (stat.S_IFLNK, "symbolic link"),
        (stat.S_IFCHR, "character device"),
        (stat.S_IFBLK, "block device"),
        (stat.S_IFIFO, "fifo"),
        (stat.S_IFSOCK, "socket"),
    ],
)
def test_unpack_refuses_special_entries(tmp_path: Path, kind: int, name: str) -> None:
    entry = unix_info("evil", kind | 0o777)
    archive = build_zip(tmp_path / "bad.plugport", [("ok.txt", b"fine"), (entry, b"../../evil")])
    error = unpack_refused(archive, tmp_path, UnsafeArchiveError)
    assert error.member == "evil"
    assert error.reason.startswith(name)


@pytest.mark.parametrize(
    ("names", "member", "reason"),
    [
        (["dup", "dup"], "dup", "duplicate name"),
        (["README", "readme"], "readme", "collides with 'README'"),
        (["a/Data.txt", "A/data.TXT"], "A/data.TXT", "case-insensitive"),
        (
            [unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")],
            unicodedata.normalize("NFD", "café"),
            "case-insensitive",
        ),
        (["a", "a/b"], "a", "'a/b' needs it to be a directory"),
        (["a/b", "a"], "a", "'a/b' needs it to be a directory"),
        (["x/", "X/y", "x/Y/z"], "X/y", "'x/Y/z' needs it"),
        (["a", "a/"], "a/", "both a file and a directory"),
    ],
)
def test_unpack_refuses_colliding_names(
    tmp_path: Path, names: list[str], member: str, reason: str
) -> None:
    archive = build_zip(tmp_path / "bad.plugport", [(name, b"data") for name in names])
    error = unpack_refused(archive, tmp_path, UnsafeArchiveError)
    assert error.member == member
    assert reason in error.reason


def test_unpack_refuses_encrypted_member(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "bad.plugport", [("secret", b"data")])
    patch_single_member(archive, flag_bits=0x1)
    error = unpack_refused(archive, tmp_path, UnsafeArchiveError)
    assert (error.member, error.reason) == ("secret", "encrypted members are not supported")


def test_unpack_refuses_too_many_members(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "bad.plugport", [(f"f{i}", b"") for i in range(4)])
    limits = ArchiveLimits(max_members=3)
    error = unpack_refused(archive, tmp_path, ArchiveLimitError, limits)
    assert (error.limit, error.value, error.maximum) == ("max_members", 4, 3)


def test_unpack_refuses_oversized_archive_before_opening(tmp_path: Path) -> None:
    archive = tmp_path / "bad.plugport"
    archive.write_bytes(b"not even a zip" * 20)
    limits = ArchiveLimits(max_archive_bytes=100)
    error = unpack_refused(archive, tmp_path, ArchiveLimitError, limits)
    assert (error.limit, error.value) == ("max_archive_bytes", 280)


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([("zeros", bytes(2 * MiB))], id="one-big-member"),
        pytest.param([(f"part{i}", bytes(300_000)) for i in range(4)], id="running-total"),
    ],
)
def test_unpack_refuses_bomb_by_total_size(tmp_path: Path, entries: list[Entry]) -> None:
    archive = build_zip(tmp_path / "bad.plugport", entries, zipfile.ZIP_DEFLATED)
    limits = ArchiveLimits(max_unpacked_bytes=MiB, max_ratio=1e9)
    error = unpack_refused(archive, tmp_path, ArchiveLimitError, limits)
    assert error.limit == "max_unpacked_bytes"
    assert MiB < error.value <= MiB + 64 * 1024  # stopped within one chunk


def test_unpack_refuses_ratio_bomb(tmp_path: Path) -> None:
    archive = build_zip(
        tmp_path / "bad.plugport", [("zeros", bytes(10 * MiB))], zipfile.ZIP_DEFLATED
    )
    error = unpack_refused(archive, tmp_path, ArchiveLimitError)
    assert error.limit == "max_ratio"
    assert error.maximum == 100.0


def test_unpack_refuses_header_understating_size(tmp_path: Path) -> None:
    """zipfile stops at the claimed size and then fails the CRC; either way nothing is kept."""
    archive = build_zip(
        tmp_path / "bad.plugport", [("zeros", bytes(2 * MiB))], zipfile.ZIP_DEFLATED
    )
    patch_single_member(archive, size=100)
    limits = ArchiveLimits(max_unpacked_bytes=MiB, max_ratio=1e9)
    unpack_refused(archive, tmp_path, ArchiveError, limits)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-30])


def _flip_data_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[data.index(b"content")] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_deflate(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[30 + len("payload.txt")] = 0xFF  # first byte of the deflate stream: invalid block type
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "compression"),
    [
        pytest.param(lambda p: p.write_bytes(b"plain text, not a zip"), 0, id="not-a-zip"),
        pytest.param(lambda p: p.write_bytes(b""), 0, id="empty-file"),
        pytest.param(_truncate, 0, id="truncated"),
        pytest.param(_flip_data_byte, zipfile.ZIP_STORED, id="crc-mismatch"),
        pytest.param(_corrupt_deflate, zipfile.ZIP_DEFLATED, id="bad-deflate"),
        pytest.param(lambda p: patch_single_member(p, method=99), 0, id="unknown-method"),
        pytest.param(lambda p: p.unlink(), 0, id="missing"),
    ],
)
def test_unpack_refuses_damaged_archive(tmp_path: Path, damage: object, compression: int) -> None:
    archive = build_zip(tmp_path / "bad.plugport", [("payload.txt", b"content" * 50)], compression)
    damage(archive)  # type: ignore[operator]
    error = unpack_refused(archive, tmp_path, ArchiveError)
    assert type(error) is ArchiveError


def test_check_members_refuses_nul_and_undecodable_names() -> None:
    with pytest.raises(UnsafeArchiveError, match="NUL byte") as caught:
        check_members([zipfile.ZipInfo("plugport.toml\0.txt")])
    assert caught.value.member == "plugport.toml\0.txt"
    with pytest.raises(UnsafeArchiveError, match="not valid UTF-8"):
        check_members([zipfile.ZipInfo("bad\udcff")])
    check_members([zipfile.ZipInfo("a/"), zipfile.ZipInfo("a/b"), zipfile.ZipInfo("ab")])


# --- read_member ------------------------------------------------------------------------------


def test_read_member(tmp_path: Path) -> None:
    packed = pack_tree(make_tree(tmp_path / "src", FILES), tmp_path / "demo.plugport")
    before = snapshot(tmp_path)
    assert read_member(packed.path, MANIFEST_NAME) == FILES[MANIFEST_NAME]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", [MANIFEST_NAME, "docs", "docs/"])
def test_read_member_missing(tmp_path: Path, name: str) -> None:
    archive = build_zip(tmp_path / "a.zip", [("docs/", b""), ("other.txt", b"")])
    with pytest.raises(ArchiveError, match=f"archive has no {name}") as caught:
        read_member(archive, name)
    assert caught.value.path == str(archive)


def test_read_member_caps_bytes_read(tmp_path: Path) -> None:
    archive = build_zip(tmp_path / "a.zip", [(MANIFEST_NAME, b"x" * 11)])
    assert read_member(archive, MANIFEST_NAME, max_bytes=11) == b"x" * 11
    with pytest.raises(ArchiveLimitError) as caught:
        read_member(archive, MANIFEST_NAME, max_bytes=10)
    assert (caught.value.limit, caught.value.value, caught.value.maximum) == ("max_bytes", 11, 10)


def test_read_member_applies_archive_checks(tmp_path: Path) -> None:
    link = unix_info("link", stat.S_IFLNK | 0o777)
    archive = build_zip(tmp_path / "a.zip", [(MANIFEST_NAME, b""), (link, b"/etc/passwd")])
    with pytest.raises(UnsafeArchiveError) as unsafe:
        read_member(archive, MANIFEST_NAME)
    assert unsafe.value.member == "link"
    with pytest.raises(ArchiveLimitError) as limit:
        read_member(archive, MANIFEST_NAME, limits=ArchiveLimits(max_archive_bytes=10))
    assert limit.value.limit == "max_archive_bytes"
    archive.write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="damaged or not a plugin archive"):
        read_member(archive, MANIFEST_NAME)
