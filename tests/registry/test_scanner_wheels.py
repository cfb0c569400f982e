"""The upload scan inside the wheels an archive ships: the plugin's own rules on every member,
named ``wheels/<wheel>!<member>``; native code judged by the declared platforms; unsafe names,
``.pth`` files, zip bombs and damaged wheels as findings, never as exceptions."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from plugport.archive import ArchiveLimits, pack_tree
from plugport.registry.scanner import ScanReport, inspect_archive, scan_archive, scan_upload
from plugport.testing.pypi import build_wheel, wheel_from_installed
from tests.conftest import snapshot

Row = tuple[str, int, str, str]
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 64
PLATFORM = "manylinux_2_28_x86_64"


def rows(report: ScanReport) -> list[Row]:
    return [(f.file, f.line, f.rule, f.severity) for f in report.findings]


def pack_with_wheels(tmp_path: Path, wheels: dict[str, Path | bytes]) -> Path:
    """A plugin tree with one clean module, packed with ``wheels`` (name -> file or bytes)
    under ``wheels/``, stored as ``plugport pack`` stores them."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "main.py").write_text("VALUE = 1\n")
    extra = {f"wheels/{name}": data for name, data in wheels.items()}
    return pack_tree(src, tmp_path / "plugin.plugport", extra=extra).path


def raw_wheel(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    """A zip written member by member, for wheels no builder would make."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buffer.getvalue()


def test_wheel_members_get_the_plugins_rules_and_are_named_with_the_wheel(
    tmp_path: Path,
) -> None:
    code = {
        "risky/__init__.py": "import subprocess\n\n\ndef run(x):\n    return eval(x)\n",
        "risky/keys.txt": "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n",
    }
    wheel = build_wheel(tmp_path / "house", "risky", "1.0", code)
    in_wheel = rows(scan_archive(pack_with_wheels(tmp_path, {wheel.name: wheel})))
    prefix = "wheels/risky-1.0-py3-none-any.whl!"
    assert in_wheel == [
        (prefix + "risky/__init__.py", 1, "subprocess", "high"),
        (prefix + "risky/__init__.py", 5, "dynamic-code", "high"),
        (prefix + "risky/keys.txt", 1, "private-key", "high"),
    ]
    # The same files at the top of a plugin give the same rules, lines and severities.
    plain = tmp_path / "plain"
    for name, text in code.items():
        (plain / name).parent.mkdir(parents=True, exist_ok=True)
        (plain / name).write_text(text)
    top = rows(scan_archive(pack_tree(plain, tmp_path / "plain.plugport").path))
    assert [(prefix + f, line, rule, sev) for f, line, rule, sev in top] == in_wheel


def test_a_real_library_is_scanned_file_by_file(tmp_path: Path) -> None:
    wheel = wheel_from_installed("markdown", tmp_path / "house")
    scanned = inspect_archive(pack_with_wheels(tmp_path, {wheel.name: wheel}))
    with zipfile.ZipFile(wheel) as zf:
        inside = [i for i in zf.infolist() if not i.is_dir()]
    # plugport.toml-less tree: main.py and the wheel itself, then every file inside it
    assert scanned.report.files_scanned == 2 + len(inside)
    assert scanned.report.counts["high"] == 0
    assert all(f.file.startswith(f"wheels/{wheel.name}!markdown/") for f in scanned.report.findings)
    assert {f.rule for f in scanned.report.findings} == {"dynamic-import"}
    [archived] = scanned.wheels.values()
    assert archived.member == f"wheels/{wheel.name}"
    assert archived.size == wheel.stat().st_size
    assert archived.compiled == ()


@pytest.mark.parametrize(
    ("tag", "platforms", "severity", "says"),
    [
        (f"cp311-cp311-{PLATFORM}", (PLATFORM,), "medium", "allowed, because the plugin declares"),
        (f"cp311-cp311-{PLATFORM}", (), "high", "declares no [python] platforms"),
        ("py3-none-any", (PLATFORM,), "high", "tagged for any platform"),
    ],
)
def test_native_code_in_a_wheel_is_allowed_only_for_declared_platforms(
    tmp_path: Path, tag: str, platforms: tuple[str, ...], severity: str, says: str
) -> None:
    files = {"fast/__init__.py": "from fast._speed import go\n", "fast/_speed.so": ELF}
    wheel = build_wheel(tmp_path / "house", "fast", "2.0", files, tag=tag)
    scanned = inspect_archive(pack_with_wheels(tmp_path, {wheel.name: wheel}), platforms=platforms)
    assert rows(scanned.report) == [
        (f"wheels/{wheel.name}!fast/_speed.so", 1, "native-binary", severity)
    ]
    assert says in scanned.report.findings[0].message
    assert scanned.wheels[f"wheels/{wheel.name}"].compiled == ("fast/_speed.so",)


def test_native_code_disguised_by_its_name_is_still_native(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "house", "sly", "1.0", {"sly/data.bin": ELF})
    scanned = inspect_archive(pack_with_wheels(tmp_path, {wheel.name: wheel}))
    assert rows(scanned.report) == [
        (f"wheels/{wheel.name}!sly/data.bin", 1, "native-binary", "high")
    ]
    assert scanned.wheels[f"wheels/{wheel.name}"].compiled == ("sly/data.bin",)


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "rule", "says"),
    [
        ("../evil.py", "wheel-unsafe-member", "'..' component"),
        ("/etc/cron.d/evil", "wheel-unsafe-member", "absolute path"),
        (_symlink("evil/link.py"), "wheel-unsafe-member", "symbolic link"),
        ("evil-hook.pth", "wheel-pth", "runs the code in .pth files at start-up"),
    ],
)
def test_members_a_host_refuses_are_high_findings_and_not_read(
    tmp_path: Path, member: zipfile.ZipInfo | str, rule: str, says: str
) -> None:
    wheel = build_wheel(
        tmp_path / "house",
        "evil",
        "1.0",
        {"evil/__init__.py": "X = 1\n"},
        raw_members={"placeholder": b""},
    )
    # Rebuild with the hostile member itself (build_wheel takes names, not ZipInfo).
    with zipfile.ZipFile(wheel) as zf:
        kept = [(i, zf.read(i)) for i in zf.infolist() if i.filename != "placeholder"]
    data = raw_wheel([*kept, (member, b"import subprocess\n")])
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    report = scan_archive(pack_with_wheels(tmp_path, {wheel.name: data}))
    assert rows(report) == [(f"wheels/{wheel.name}!{name}", 1, rule, "high")]
    assert says in report.findings[0].message
    assert "hosts refuse to install this wheel" in report.findings[0].message


def test_clashing_member_names_are_a_finding(tmp_path: Path) -> None:
    data = raw_wheel([("pkg/Mod.py", b"X = 1\n"), ("pkg/mod.py", b"X = 2\n")])
    report = scan_archive(pack_with_wheels(tmp_path, {"pkg-1.0-py3-none-any.whl": data}))
    assert ("wheels/pkg-1.0-py3-none-any.whl!pkg/mod.py", 1, "wheel-unsafe-member", "high") in (
        rows(report)
    )
    assert "case-insensitive" in report.findings[0].message


def test_a_zip_bomb_wheel_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    zeros = b"\0" * (30 * 1024 * 1024)
    data = raw_wheel([("bomb/__init__.py", b"import subprocess\n"), ("bomb/zeros.txt", zeros)])
    assert len(data) < 100_000  # 30 MiB of zeros deflate to almost nothing
    bomb = tmp_path / "bomb-1.0-py3-none-any.whl"
    bomb.write_bytes(data)
    archive = pack_with_wheels(tmp_path, {bomb.name: bomb})
    before = snapshot(tmp_path)
    report = scan_archive(archive)
    assert snapshot(tmp_path) == before  # read in memory: nothing unpacked anywhere here
    member = f"wheels/{bomb.name}"
    [limit] = [f for f in report.findings if f.rule == "wheel-limit"]
    assert (limit.file, limit.severity) == (member, "high")
    assert "'bomb/zeros.txt' expands" in limit.message
    assert "max_ratio = 100" in limit.message
    # what was read before the bomb was scanned
    assert (f"{member}!bomb/__init__.py", 1, "subprocess", "high") in rows(report)


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        (ArchiveLimits(max_members=3), "has 5 members, more than the scan reads"),
        (ArchiveLimits(max_unpacked_bytes=50_000), "add up to more than 50000 bytes"),
    ],
)
def test_the_caps_on_reading_wheels_are_findings(
    tmp_path: Path, limits: ArchiveLimits, says: str
) -> None:
    files = {"big/a.py": "A = 1\n", "big/b.txt": "b" * 60_000}
    wheel = build_wheel(tmp_path / "house", "big", "1.0", files)  # + METADATA, WHEEL, RECORD
    members = [(f"wheels/{wheel.name}", wheel.read_bytes()), ("b/data.txt", b"b" * 20_000)]
    report = scan_upload(members, limits=limits).report
    assert rows(report) == [(f"wheels/{wheel.name}", 1, "wheel-limit", "high")]
    assert says in report.findings[0].message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not a zip at all", id="not-a-zip"),
        pytest.param(b"PK\x03\x04 truncated", id="truncated"),
    ],
)
def test_a_damaged_wheel_is_a_finding(tmp_path: Path, data: bytes) -> None:
    report = scan_archive(pack_with_wheels(tmp_path, {"x-1.0-py3-none-any.whl": data}))
    assert rows(report) == [("wheels/x-1.0-py3-none-any.whl", 1, "wheel-unreadable", "high")]


def test_a_corrupt_member_is_a_finding(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "house", "bad", "1.0", {"bad/__init__.py": "X = 1\n" * 500})
    data = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("bad/__init__.py")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 2 : start + 12] = b"\xff" * 10  # inside the deflated stream
    report = scan_archive(pack_with_wheels(tmp_path, {wheel.name: bytes(data)}))
    assert [(r[0], r[2]) for r in rows(report)] == [(f"wheels/{wheel.name}", "wheel-unreadable")]
    assert "the rest was not scanned" in report.findings[0].message


def test_what_a_host_refuses_beyond_names_is_a_finding(tmp_path: Path) -> None:
    shadow = build_wheel(tmp_path / "house", "shadow", "1.0", {"json/__init__.py": "X = 1\n"})
    no_metadata = raw_wheel([("nometa/__init__.py", b"X = 1\n")])
    report = scan_archive(
        pack_with_wheels(
            tmp_path, {shadow.name: shadow, "nometa-1.0-py3-none-any.whl": no_metadata}
        )
    )
    assert rows(report) == [
        ("wheels/nometa-1.0-py3-none-any.whl", 1, "wheel-not-installable", "high"),
        (f"wheels/{shadow.name}", 1, "wheel-not-installable", "high"),
    ]
    assert "METADATA" in report.findings[0].message
    assert "would shadow json" in report.findings[1].message


def test_files_elsewhere_under_wheels_are_recorded_for_the_lock_check(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "house", "ok", "1.0", {"ok.py": "X = 1\n"})
    scanned = inspect_archive(
        pack_with_wheels(
            tmp_path,
            {wheel.name: wheel, "notes.txt": b"hello", "sub/ok-1.0-py3-none-any.whl": b"x"},
        )
    )
    assert set(scanned.wheels) == {
        f"wheels/{wheel.name}",
        "wheels/notes.txt",
        "wheels/sub/ok-1.0-py3-none-any.whl",
    }
    assert scanned.lock is None
    assert rows(scanned.report) == []
