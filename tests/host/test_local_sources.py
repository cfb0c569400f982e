"""Installing without a registry: a signed archive on disk, the same archive over HTTP from this
machine, and a development directory. Verified just the same (except development mode, which
is unsigned and says so); a refusal leaves nothing behind."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.authoring import archive_facts, pack_plugin
from plugport.errors import SignatureError
from plugport.host import PluginHost
from plugport.runtime.hooks import HookSpec
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.host._plugins import write


def host(home: Path) -> PluginHost:
    return PluginHost(
        app="myapp", app_version="2.4.0", home=home, hookspecs=[HookSpec("greet", ("name",))]
    )


def in_host(home: Path, *specs: str, **options: Any) -> tuple[Any, list[str]]:
    async def main() -> tuple[Any, list[str]]:
        async with host(home) as h:
            report = await h.install(*specs, **options)
            outcomes = await h.hooks.greet(name="Ada")
            return report, [o.value for o in outcomes]

    return asyncio.run(main())


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    """``dist/acme.alpha-1.0.0.plugport`` with its ``.sig``, and the publisher's public key."""
    key = generate_private_key()
    (tmp_path / "dist").mkdir()
    archive = pack_plugin(write(tmp_path / "src", "acme.alpha", "1.0.0"), tmp_path / "dist")
    path = archive.result.path
    Path(f"{path}.sig").write_bytes(sign(key, archive_facts(path)))
    public = tmp_path / "acme.pub"
    public.write_text(public_key_pem(key.public_key()))
    return path, public


@pytest.fixture
def served(signed: tuple[Path, Path]) -> Iterator[str]:
    """The dist directory over HTTP on 127.0.0.1."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(signed[0].parent)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{signed[0].name}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_signed_file_with_its_publisher_key(signed: tuple[Path, Path], tmp_path: Path) -> None:
    archive, key = signed
    report, answers = in_host(tmp_path / "home", str(archive), key=key)
    assert report.installed == [("acme.alpha", "1.0.0", None)]
    assert answers == ["acme.alpha 1.0.0 says hello to Ada"]


def test_a_url_on_this_machine(served: str, signed: tuple[Path, Path], tmp_path: Path) -> None:
    report, answers = in_host(tmp_path / "home", served, key=signed[1])
    assert report.installed == [("acme.alpha", "1.0.0", None)]
    assert answers == ["acme.alpha 1.0.0 says hello to Ada"]


def test_refusals_leave_nothing(signed: tuple[Path, Path], tmp_path: Path) -> None:
    archive, key = signed
    home = tmp_path / "home"
    other = tmp_path / "other.pub"
    other.write_text(public_key_pem(generate_private_key().public_key()))
    with pytest.raises(SignatureError, match=r"not by .*other\.pub"):
        in_host(home, str(archive), key=other)
    with pytest.raises(SignatureError, match=r"no key .* known for acme"):
        in_host(home, str(archive))  # no key given, no registry that lists one
    Path(f"{archive}.sig").unlink()
    with pytest.raises(SignatureError, match="no signature next to the archive"):
        in_host(home, str(archive), key=key)
    assert not any((home / "plugins").iterdir())
    assert not any((home / "staging").iterdir())


def test_a_development_directory_runs_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(tmp_path / "src", "acme.alpha", "0.1.0")
    monkeypatch.chdir(tmp_path)  # a relative home, as `plugport --home home` gives
    report, answers = in_host(Path("home"), str(source))
    assert report.installed == [("acme.alpha", "0.1.0", None)]
    assert answers == ["acme.alpha 0.1.0 says hello to Ada"]
    assert not any((tmp_path / "home" / "plugins").iterdir())  # nothing copied

    async def rows() -> list[Any]:
        async with host(tmp_path / "home") as h:
            return [(i.source_kind, i.source) for i in h.installed()]

    assert asyncio.run(rows()) == [("dev", str(source.resolve()))]
