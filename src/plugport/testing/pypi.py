"""A local package index for tests of plugins with ``[python]`` dependencies: wheels a test
builds (or rebuilds from a library installed in this environment, such as ``markdown``),
served over real HTTP on 127.0.0.1 as a PEP 503 "simple" index (PEP 691 JSON too), so that
``plugport lock`` can run in a test without reaching a public index::

    from plugport.testing.pypi import LocalIndex, build_wheel, isolated_pip_env

    def test_lock(tmp_path, monkeypatch):
        build_wheel(tmp_path / "index", "tinyfmt", "1.0", {"tinyfmt.py": "X = 1"})
        isolated_pip_env(monkeypatch, tmp_path / "wheel-cache")
        with LocalIndex(tmp_path / "index") as index:
            subprocess.run(["plugport", "lock", "--index-url", index.url], check=True)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.server
import importlib.metadata
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from plugport.testing._local_server import serve_locally, stop_serving

__all__ = ["LocalIndex", "build_wheel", "isolated_pip_env", "serve_index", "wheel_from_installed"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    files: Mapping[str, str | bytes],
    *,
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
    requires_python: str | None = None,
    entry_points: str = "",
    raw_members: Mapping[str, bytes] | None = None,
) -> Path:
    """A valid wheel (METADATA, WHEEL, RECORD with hashes) holding ``files``; ``raw_members``
    go in as they are, outside RECORD (for wheels that must be refused)."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    members: dict[str, bytes] = {
        path: content.encode() if isinstance(content, str) else content
        for path, content in files.items()
    }
    members[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    members[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: plugport-tests\nRoot-Is-Purelib: "
        f"{'true' if tag.endswith('any') else 'false'}\nTag: {tag}\n"
    ).encode()
    if entry_points:
        members[f"{info}/entry_points.txt"] = entry_points.encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members.items()]
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    members.update(raw_members or {})
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in sorted(members):
            entry = zipfile.ZipInfo(member, _EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, members[member])
    return path


def wheel_from_installed(distribution: str, dest: Path) -> Path:
    """Rebuild an installed pure-Python distribution (its files as RECORD lists them) into a
    wheel, so a test can serve a real library without downloading it."""
    dist = importlib.metadata.distribution(distribution)
    files: dict[str, bytes] = {}
    for item in dist.files or []:
        path = item.as_posix()
        if "__pycache__" in path or path.endswith((".pyc", "RECORD", "INSTALLER", "REQUESTED")):
            continue
        if path.startswith("..") or "/bin/" in path or "direct_url.json" in path:
            continue
        if ".dist-info/" in path and not path.endswith(("METADATA", "entry_points.txt")):
            continue
        files[path] = Path(str(item.locate())).read_bytes()
    name, version = dist.metadata["Name"], dist.version
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    # build_wheel writes METADATA itself; keep the real one's Requires-Dist.
    requires = tuple(
        r for r in dist.requires or () if "extra ==" not in r and "python_version" not in r
    )
    entry_points = dist.read_text("entry_points.txt") or ""
    for path in list(files):
        if path.endswith((".dist-info/METADATA", ".dist-info/entry_points.txt")):
            del files[path]
    del info
    return build_wheel(dest, name, version, files, requires=requires, entry_points=entry_points)


class LocalIndex:
    """A directory of wheels behind ``http://127.0.0.1:PORT/simple/`` (PEP 503 HTML, PEP 691
    JSON by ``Accept``), files at ``/files/NAME`` (a ``NAME.sig`` beside a wheel is served
    too); ``requests`` records every path asked for.

    What a test may change about the pages it serves: ``yanked`` (file name -> reason, shown as
    ``data-yanked`` / ``"yanked"``), ``requires_python`` (file name -> specifier),
    ``hashes`` (file name -> the sha256 the page claims, instead of the real one), ``links``
    (file name -> the URL the page gives), and ``json=False`` to serve only PEP 503 HTML."""

    def __init__(self, directory: Path, *, json: bool = True) -> None:
        self.directory = directory
        self.json = json
        self.requests: list[str] = []
        self.yanked: dict[str, str] = {}
        self.requires_python: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the index is served only inside `with LocalIndex(...)`")
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    @property
    def files_url(self) -> str:
        return self.url.replace("/simple/", "/files/")

    def projects(self) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for path in sorted(self.directory.iterdir()):
            if path.suffix == ".whl":
                name = canonicalize_name(parse_wheel_filename(path.name)[0])
            elif path.name.endswith(".tar.gz"):
                name = canonicalize_name(path.name.rsplit("-", 1)[0])
            else:
                continue
            found.setdefault(name, []).append(path)
        return found

    def __enter__(self) -> LocalIndex:
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: PLR0911 - one return per route
                index.requests.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                wants_json = index.json and "application/vnd.pypi.simple.v1+json" in (
                    self.headers.get("Accept", "")
                )
                if parts == ["simple"]:
                    names = sorted(index.projects())
                    body = "".join(f'<a href="{n}/">{n}</a>\n' for n in names)
                    return self._send(200, f"<html><body>{body}</body></html>", "text/html")
                if len(parts) == 2 and parts[0] == "simple":
                    files = index.projects().get(canonicalize_name(parts[1]))
                    if files is None:
                        return self._send(404, "not found", "text/plain")
                    if parts[1] != canonicalize_name(parts[1]):
                        self.send_response(301)
                        self.send_header("Location", f"/simple/{canonicalize_name(parts[1])}/")
                        self.end_headers()
                        return None
                    return self._project(parts[1], files, wants_json)
                if len(parts) == 2 and parts[0] == "files":
                    path = index.directory / parts[1]
                    if "/" in parts[1] or not path.is_file():
                        return self._send(404, "not found", "text/plain")
                    return self._send(200, path.read_bytes(), "application/octet-stream")
                return self._send(404, "not found", "text/plain")

            def _project(self, name: str, files: list[Path], wants_json: bool) -> None:
                entries = [
                    (
                        p.name,
                        index.hashes.get(p.name) or hashlib.sha256(p.read_bytes()).hexdigest(),
                        index.links.get(p.name, f"../../files/{p.name}"),
                    )
                    for p in files
                ]
                if wants_json:
                    rows = []
                    for f, h, url in entries:
                        row: dict[str, object] = {
                            "filename": f,
                            "url": url,
                            "hashes": {"sha256": h},
                        }
                        if f in index.yanked:
                            row["yanked"] = index.yanked[f] or True
                        if f in index.requires_python:
                            row["requires-python"] = index.requires_python[f]
                        rows.append(row)
                    doc = {"meta": {"api-version": "1.0"}, "name": name, "files": rows}
                    return self._send(200, json.dumps(doc), "application/vnd.pypi.simple.v1+json")
                links = []
                for f, h, url in entries:
                    attributes = ""
                    if f in index.yanked:
                        attributes += f' data-yanked="{html.escape(index.yanked[f])}"'
                    if f in index.requires_python:
                        attributes += (
                            f' data-requires-python="{html.escape(index.requires_python[f])}"'
                        )
                    links.append(
                        f'<a href="{html.escape(url)}#sha256={h}"{attributes}>{html.escape(f)}</a>'
                    )
                body = "\n".join(links)
                return self._send(200, f"<html><body>{body}</body></html>", "text/html")

            def _send(self, status: int, body: str | bytes, kind: str) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = serve_locally(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._server)


@contextlib.contextmanager
def serve_index(directory: Path) -> Iterator[LocalIndex]:
    with LocalIndex(directory) as index:
        yield index


def isolated_pip_env(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Make pip ignore this machine's configuration (its extra indexes and find-links), so the
    test's index is the only one pip sees, and send the wheel cache to ``cache``."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PLUGPORT_WHEEL_CACHE", str(cache))
