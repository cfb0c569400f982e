"""The upload scan: real archives packed from tmp dirs, and the pure scan_members."""

from __future__ import annotations

import base64
import json
import os
import py_compile
import stat
import zipfile
from pathlib import Path

import pytest

from plugport import scaffold
from plugport.archive import ArchiveLimits, pack_tree
from plugport.errors import ArchiveError, ArchiveLimitError, UnsafeArchiveError
from plugport.registry.scanner import ScanReport, scan_archive, scan_members
from tests.conftest import snapshot

Row = tuple[str, int, str, str]

_PE = b"MZ" + b"\0" * 0x3A + (0x40).to_bytes(4, "little") + b"PE\0\0" + b"\0" * 64
_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH"


def pack(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    """Write ``files`` into a fresh tree and pack it the way ``plugport pack`` does."""
    src = tmp_path / "src"
    for name, content in files.items():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
    return pack_tree(src, tmp_path / "plugin.plugport").path


def rows(report: ScanReport) -> list[Row]:
    return [(f.file, f.line, f.rule, f.severity) for f in report.findings]


def scan_tree(tmp_path: Path, files: dict[str, bytes | str]) -> list[Row]:
    return rows(scan_archive(pack(tmp_path, files)))


# --- one test per rule, through a real archive ------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x7fELF\x02\x01\x01" + b"\0" * 64, id="elf"),
        pytest.param(b"\xcf\xfa\xed\xfe\x07\0\0\x01" + b"\0" * 32, id="macho-64-le"),
        pytest.param(b"\xfe\xed\xfa\xce\0\0\0\x07" + b"\0" * 32, id="macho-32-be"),
        pytest.param(b"\xca\xfe\xba\xbe\0\0\0\x02" + b"\0" * 32, id="macho-universal"),
        pytest.param(_PE, id="pe"),
        pytest.param(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", id="dos-mz"),
    ],
)
def test_native_binary_by_content_whatever_its_name(tmp_path: Path, content: bytes) -> None:
    found = scan_tree(tmp_path, {"plugport.toml": "", "assets/logo.png": content})
    assert found == [("assets/logo.png", 1, "native-binary", "high")]


@pytest.mark.parametrize("name", ["lib/fast.so", "lib/fast.so.1", "a.pyd", "b.DLL", "c.dylib"])
def test_native_binary_by_extension(tmp_path: Path, name: str) -> None:
    assert scan_tree(tmp_path, {name: "not really a library\n"}) == [
        (name, 1, "native-binary", "high")
    ]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"MZ is the start of this text file\n", id="text-starting-with-MZ"),
        pytest.param(b"\xca\xfe\xba\xbe\0\0\0\x34" + b"\0" * 32, id="java-class"),
        pytest.param(b"\x7fEL", id="too-short"),
    ],
)
def test_lookalikes_are_not_native(tmp_path: Path, content: bytes) -> None:
    assert scan_tree(tmp_path, {"data.bin": content}) == []


def test_compiled_python_by_extension_and_by_content(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    pyc = Path(py_compile.compile(str(source), cfile=str(tmp_path / "mod.pyc"))).read_bytes()
    files: dict[str, bytes | str] = {
        ".plugportignore": "!*.pyc\n",  # *.pyc is ignored by default; this author insists
        "pkg/mod.pyc": pyc,
        "pkg/old.pyo": b"anything",
        "pkg/data.bin": pyc,
    }
    assert scan_tree(tmp_path, files) == [
        ("pkg/data.bin", 1, "compiled-python", "high"),
        ("pkg/mod.pyc", 1, "compiled-python", "high"),
        ("pkg/old.pyo", 1, "compiled-python", "high"),
    ]


def test_private_key_anywhere_with_its_line(tmp_path: Path) -> None:
    files = {
        "notes/deploy.txt": b"how to deploy\n\n" + _KEY,
        "pkg/keys.py": b'KEY = """\n' + _KEY + b'"""\n',
    }
    assert scan_tree(tmp_path, files) == [
        ("notes/deploy.txt", 3, "private-key", "high"),
        ("pkg/keys.py", 2, "private-key", "high"),
    ]


def test_syntax_error(tmp_path: Path) -> None:
    assert scan_tree(tmp_path, {"pkg/bad.py": "x = 1\ndef (:\n"}) == [
        ("pkg/bad.py", 2, "syntax-error", "high")
    ]


def test_source_that_is_not_utf8(tmp_path: Path) -> None:
    assert scan_tree(tmp_path, {"pkg/latin.py": b"x = 1\ny = '\xe9'\n"}) == [
        ("pkg/latin.py", 2, "non-utf8-source", "medium")
    ]


def test_a_coding_declaration_cannot_hide_code(tmp_path: Path) -> None:
    # In UTF-7, "+AAo-" is a line break: Python runs "import subprocess" on a line of its own,
    # while an editor shows one harmless assignment.
    hidden = b"# coding: utf-7\nx = 1 +AAo-import subprocess\n"
    report = scan_archive(pack(tmp_path, {"pkg/sneaky.py": hidden}))
    assert rows(report) == [
        ("pkg/sneaky.py", 3, "subprocess", "high"),
        ("pkg/sneaky.py", 1, "non-utf8-source", "medium"),
    ]
    assert "'utf-7'" in report.findings[1].message


def test_source_rules_apply_to_python_files_only(tmp_path: Path) -> None:
    files = {
        "pkg/plugin.py": "import json\n\n\ndef run(code):\n    return eval(code)\n",
        "docs/howto.md": "never call eval(code) or import subprocess\n",
    }
    assert scan_tree(tmp_path, files) == [("pkg/plugin.py", 5, "dynamic-code", "high")]


def test_encoded_blob_in_source(tmp_path: Path) -> None:
    blob = base64.b64encode(os.urandom(900)).decode()
    report = scan_archive(pack(tmp_path, {"pkg/payload.py": f"\n\nDATA = {blob!r}\n"}))
    assert rows(report) == [("pkg/payload.py", 3, "encoded-blob", "medium")]
    assert "1200-character" in report.findings[0].message


@pytest.mark.parametrize("template", scaffold.TEMPLATES)
def test_generated_plugins_have_no_high_findings(tmp_path: Path, template: str) -> None:
    src = tmp_path / "plugin"
    scaffold.create_plugin("acme.clean-check", template, src)
    packed = pack_tree(src, tmp_path / "clean.plugport")
    report = scan_archive(packed.path)
    assert report.counts["high"] == 0, report.findings
    assert report.files_scanned == len(packed.members)


# --- the report -------------------------------------------------------------------------------

_MIXED = [
    ("b.py", b"import importlib\n\nimport pickle\n"),  # low line 1, medium line 3
    ("a.py", b"import socket\neval('1')\n"),  # medium line 1, high line 2
    ("a/", b""),  # a directory entry: skipped, not counted
    ("lib.so", b""),  # high
    ("c.txt", b"plain"),
]


def test_findings_are_ordered_by_severity_then_file_then_line() -> None:
    report = scan_members(_MIXED)
    assert rows(report) == [
        ("a.py", 2, "dynamic-code", "high"),
        ("lib.so", 1, "native-binary", "high"),
        ("a.py", 1, "network", "medium"),
        ("b.py", 3, "deserialization", "medium"),
        ("b.py", 1, "dynamic-import", "low"),
    ]


def test_counts_highest_and_files_scanned() -> None:
    report = scan_members(_MIXED)
    assert report.counts == {"high": 2, "medium": 2, "low": 1}
    assert report.highest == "high"
    assert report.files_scanned == 4
    assert scan_members([("b.py", b"import importlib\n")]).highest == "low"


def test_a_clean_scan_reports_zero_of_every_severity() -> None:
    report = scan_members([("pkg/__init__.py", b""), ("README.md", b"# hi\n")])
    assert report.findings == []
    assert report.counts == {"high": 0, "medium": 0, "low": 0}
    assert report.highest is None
    assert report.files_scanned == 2


def test_json_shape() -> None:
    report = scan_members([("a.py", b"x = 1\neval('1')\n"), ("b.txt", b"")])
    assert json.loads(json.dumps(report.as_dict())) == {
        "findings": [
            {
                "file": "a.py",
                "line": 2,
                "rule": "dynamic-code",
                "severity": "high",
                "message": report.findings[0].message,
            }
        ],
        "counts": {"high": 1, "medium": 0, "low": 0},
        "highest": "high",
        "files_scanned": 2,
    }
    assert "eval" in report.findings[0].message


def test_archive_and_members_give_the_same_report(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {
        "pkg/plugin.py": "import subprocess\n",
        "pkg/fast.so": b"\x7fELF",
        "README.md": "hi\n",
    }
    from_archive = scan_archive(pack(tmp_path, files))
    as_bytes = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    assert from_archive == scan_members(sorted(as_bytes.items()))


def test_scanning_writes_nothing(tmp_path: Path) -> None:
    path = pack(tmp_path, {"pkg/plugin.py": "import ctypes\n"})
    before = snapshot(tmp_path)
    assert rows(scan_archive(path)) == [("pkg/plugin.py", 1, "native-code", "high")]
    assert snapshot(tmp_path) == before


# --- archives that must not be scanned --------------------------------------------------------


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.py", "'..' component"),
        ("/etc/evil.py", "absolute path"),
        (_symlink("pkg/link.py"), "symbolic link"),
    ],
)
def test_an_unsafe_archive_raises_before_anything_is_read(
    tmp_path: Path, member: zipfile.ZipInfo | str, reason: str
) -> None:
    path = _zip(tmp_path / "bad.plugport", [("ok.py", b"import ctypes\n"), (member, b"x")])
    before = snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=reason) as raised:
        scan_archive(path)
    assert raised.value.path == str(path)
    assert snapshot(tmp_path) == before


def test_a_file_that_is_not_a_zip_raises(tmp_path: Path) -> None:
    path = tmp_path / "bad.plugport"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArchiveError, match="damaged or not a plugin archive"):
        scan_archive(path)
    with pytest.raises(ArchiveError, match="cannot open"):
        scan_archive(tmp_path / "missing.plugport")


@pytest.mark.parametrize(
    ("limits", "limit"),
    [
        (ArchiveLimits(max_archive_bytes=100), "max_archive_bytes"),
        (ArchiveLimits(max_members=1), "max_members"),
        (ArchiveLimits(max_unpacked_bytes=10_000), "max_unpacked_bytes"),
        (ArchiveLimits(max_ratio=10, ratio_floor_bytes=1024), "max_ratio"),
    ],
)
def test_archive_limits_are_enforced_while_reading(
    tmp_path: Path, limits: ArchiveLimits, limit: str
) -> None:
    path = _zip(tmp_path / "big.plugport", [("a.txt", b"a" * 8000), ("b.txt", b"b" * 8000)])
    with pytest.raises(ArchiveLimitError) as raised:
        scan_archive(path, limits=limits)
    assert raised.value.limit == limit
    assert rows(scan_archive(path)) == []  # within the default limits it is fine
