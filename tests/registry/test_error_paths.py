"""No error the registry answers shows where it keeps things: garbage uploads of every kind
(refused by the archive reader, the manifest parser or the scanner) are named as the client
sent them ("archive"), and a path an error forgot to leave out is hidden at the edge."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine

from plugport.errors import InvalidInputError
from plugport.registry.app import create_app
from plugport.registry.blobs import BlobRef, MemoryBlobStore
from plugport.registry.settings import RegistrySettings
from tests._uvicorn import serving
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher, nothing_stored


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _damaged_member(publisher: Publisher, path: Path) -> Path:
    """A real archive with one byte of a code member's compressed data flipped (its CRC no
    longer matches), so only reading that member (the scan) finds out."""
    archive = publisher.build()
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("hello/plugin.py")
    start = info.header_offset + 30 + len(info.orig_filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _bomb_member(publisher: Publisher, path: Path) -> Path:
    """A real archive plus a member that inflates 1000 times (pack would refuse to make it)."""
    path.write_bytes(publisher.build().read_bytes())
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("hello/data.bin", b"\0" * (4 * 1024 * 1024))
    return path


Garbage = Callable[[Publisher, Path], Path]
CASES: dict[str, tuple[Garbage, int, bool]] = {
    # name: (make the upload, status, signed with the namespace's key so checks go further)
    "not a zip": (lambda p, t: _write(t, b"not a zip at all"), 400, False),
    "empty": (lambda p, t: _write(t, b""), 400, False),
    "truncated zip": (lambda p, t: _write(t, p.build().read_bytes()[:-40]), 400, False),
    "no manifest": (lambda p, t: _zip(t, {"hello/__init__.py": b""}), 400, False),
    "manifest not TOML": (lambda p, t: _zip(t, {"plugport.toml": b"name = ["}), 422, False),
    "manifest wrong": (lambda p, t: _zip(t, {"plugport.toml": b"name = 1"}), 422, False),
    "unsafe member": (
        lambda p, t: _zip(t, {"plugport.toml": b"", "../escape.py": b""}),
        400,
        False,
    ),
    "damaged member": (_damaged_member, 400, True),
    "compression bomb": (_bomb_member, 413, True),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _server_paths(registry: Registry, tmp_path: Path) -> list[str]:
    return [
        str(tmp_path),
        str(registry.data_dir),
        str(registry.data_dir.resolve()),
        tempfile.gettempdir(),
        "plugport-upload-",
        "upload.plugport",
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_garbage_upload_is_refused_without_a_server_path(
    registry: Registry, tmp_path: Path, case: str
) -> None:
    publisher = Publisher(registry, tmp_path)
    make, status, signed = CASES[case]
    upload = make(publisher, tmp_path / "acme.hello-0.1.0.plugport")
    signature = publisher.signature(upload) if signed else b"{}"
    response = publisher.upload(upload, signature, name="acme.hello")
    assert response.status_code == status, response.text
    error = error_of(response)
    for where in _server_paths(registry, tmp_path):
        assert where not in response.text, (where, response.text)
    assert "<server path>" not in response.text  # named at the source, not only hidden
    if "path" in error["details"]:
        assert error["details"]["path"] == "archive"
    if "source" in error["details"]:
        assert error["details"]["source"] == "archive!plugport.toml"
    nothing_stored(registry, tmp_path)


class _FailingStore(MemoryBlobStore):
    """A store whose error text names its own directory, as an OS error would."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        raise InvalidInputError(f"cannot write {self.root / 'tmp' / 'upload-x1'}: disk quota")


@pytest.fixture
def failing_registry(engine: Engine, tmp_path: Path) -> Iterator[Registry]:
    data_dir = tmp_path / "data"
    settings = RegistrySettings(data_dir=data_dir)
    app = create_app(settings, engine=engine, blobs=_FailingStore(data_dir / "blobs"))
    with serving(app) as url:
        registry = Registry(url, engine, "", data_dir)
        registry.admin = registry.token("root", "admin")
        yield registry


def test_a_path_an_error_forgot_is_hidden_at_the_edge(
    failing_registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(failing_registry, tmp_path)
    response = publisher.upload(publisher.build())
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["message"] == "cannot write <server path>: disk quota"
    assert str(failing_registry.data_dir) not in response.text
    assert failing_registry.count("plugin_versions") == 0
