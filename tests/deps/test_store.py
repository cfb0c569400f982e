"""The wheel store on its own: hash-checked adds, verification, repair, collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.deps.compile import compile_entry
from plugport.deps.lockfile import LockedWheel
from plugport.deps.store import COMPILED, MARKER, WheelStore, sha256_of
from plugport.errors import DependencyError, SignatureError
from plugport.testing.pypi import build_wheel


def locked(path: Path) -> LockedWheel:
    return LockedWheel(path.name, sha256_of(path), path.stat().st_size)


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return build_wheel(
        tmp_path / "house",
        "tinyfmt",
        "1.0",
        {"tinyfmt/__init__.py": "X = 1\n", "tinyfmt/data.txt": "hello\n"},
    )


def writable(entry: Path) -> None:
    for path in [entry, *entry.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_add_installs_once_read_only_and_verified(tmp_path: Path, wheel: Path) -> None:
    store = WheelStore(tmp_path / "store")
    entry = store.add(wheel, locked(wheel))
    assert entry == tmp_path / "store" / locked(wheel).sha256
    assert (entry / "tinyfmt" / "__init__.py").read_text() == "X = 1\n"
    assert (entry / "tinyfmt" / "data.txt").is_file()
    assert entry.stat().st_mode & 0o777 == 0o555
    assert (entry / "tinyfmt" / "__init__.py").stat().st_mode & 0o777 == 0o444
    assert store.verify(locked(wheel)) is None
    assert store.import_paths([locked(wheel)]) == [str(entry)]
    inode = entry.stat().st_ino
    assert store.add(wheel, locked(wheel)).stat().st_ino == inode  # reused, not reinstalled


def test_a_wheel_whose_hash_is_not_the_locks_is_refused(tmp_path: Path, wheel: Path) -> None:
    store = WheelStore(tmp_path / "store")
    wrong = LockedWheel(wheel.name, "0" * 64, wheel.stat().st_size)
    with pytest.raises(SignatureError, match=r"tinyfmt-1.0-py3-none-any.whl: sha256 is"):
        store.add(wheel, wrong)
    assert store.entries() == []


def test_a_changed_entry_is_noticed_and_replaced(tmp_path: Path, wheel: Path) -> None:
    store = WheelStore(tmp_path / "store")
    entry = store.add(wheel, locked(wheel))
    writable(entry)
    (entry / "tinyfmt" / "__init__.py").write_text("X = 'changed'\n")
    assert "was changed after it was installed" in (store.verify(locked(wheel)) or "")
    store.add(wheel, locked(wheel))
    assert (entry / "tinyfmt" / "__init__.py").read_text() == "X = 1\n"
    assert store.verify(locked(wheel)) is None


def test_an_entry_without_its_marker_is_not_used(tmp_path: Path, wheel: Path) -> None:
    store = WheelStore(tmp_path / "store")
    entry = store.add(wheel, locked(wheel))
    writable(entry)
    (entry / MARKER).unlink()
    with pytest.raises(DependencyError, match="is not in the wheel store") as caught:
        store.import_paths([locked(wheel)])
    assert caught.value.file == wheel.name
    store.add(wheel, locked(wheel))  # an interrupted install is replaced
    assert store.import_paths([locked(wheel)]) == [str(entry)]


def test_collect_keeps_what_is_needed_and_sweeps_leftovers(tmp_path: Path, wheel: Path) -> None:
    store = WheelStore(tmp_path / "store")
    other = build_wheel(tmp_path / "house", "tinyutil", "1.0", {"tinyutil.py": ""})
    store.add(wheel, locked(wheel))
    store.add(other, locked(other))
    (tmp_path / "store" / ".installing-dead").mkdir()  # a crash mid-install
    removed = store.collect({locked(wheel).sha256})
    assert removed == [locked(other).sha256]
    assert store.entries() == [locked(wheel).sha256]
    assert not (tmp_path / "store" / ".installing-dead").exists()


def test_compiling_writes_bytecode_and_leaves_the_entry_read_only(
    tmp_path: Path, wheel: Path
) -> None:
    store = WheelStore(tmp_path / "store")
    entry = store.add(wheel, locked(wheel))
    assert compile_entry(entry)
    assert (entry / COMPILED).exists()
    assert list((entry / "tinyfmt" / "__pycache__").glob("__init__.*.pyc"))
    assert entry.stat().st_mode & 0o777 == 0o555
    assert store.verify(locked(wheel)) is None  # bytecode is not part of what is verified
    process = store.compile_later([locked(wheel)])
    assert process is None  # already compiled: nothing to start


def test_a_malformed_wheel_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    store = WheelStore(tmp_path / "store")
    with pytest.raises(DependencyError, match=r"broken-1.0-py3-none-any.whl is not a readable"):
        store.add(bad, locked(bad))
    assert store.entries() == []
