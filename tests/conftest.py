"""Shared fixtures: real files in tmp_path, and the real CLI."""

from __future__ import annotations

import os
import signal
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from plugport import scaffold
from plugport.cli import app
from plugport.testing.pypi import LocalIndex, build_wheel, isolated_pip_env, wheel_from_installed

RunCli = Callable[..., Result]


def pytest_configure(config: pytest.Config) -> None:
    """Tests stop child processes with SIGINT (Ctrl-C) and expect them to exit 0. A suite run
    as a background job of a non-interactive shell (``.ci/run &``) starts with SIGINT ignored,
    and an ignored signal stays ignored across exec: the children would never see it and run
    on after the test. Restore the default here, in every test process, so they can."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _reuse_default_ssl_contexts() -> None:
    """httpx builds a fresh SSL context for every client, loading certifi's CA bundle each
    time: 19 ms, for clients that mostly talk plain HTTP to 127.0.0.1, thousands of times in
    the suite. Tests reuse one context per (verify, trust_env, SSL_CERT_FILE, SSL_CERT_DIR);
    a test that passes its own context or CA file gets exactly that, as before."""
    from httpx._transports import default

    made = default.create_ssl_context
    kept: dict[tuple[object, ...], ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if not isinstance(verify, bool) or cert is not None:
            return made(verify=verify, cert=cert, trust_env=trust_env)
        key = (verify, trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in kept:
            kept[key] = made(verify=verify, cert=cert, trust_env=trust_env)
        return kept[key]

    default.create_ssl_context = create_ssl_context  # type: ignore[assignment]


_reuse_default_ssl_contexts()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow end-to-end tests run first. xdist hands out whole modules (``--dist
    loadfile``) in collection order, so a long module collected last (the demo, the tutorial)
    ran alone at the end while the other worker idled; started first, they overlap with the
    many short ones. The sort is stable: within each group, the collection order stays."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Run ``plugport ARGS`` in-process with tmp_path as the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLUGPORT_KEY_PASSPHRASE", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """A freshly generated plugin directory (basic template unless told otherwise)."""

    def make(name: str = "acme.hello", template: str = "basic") -> Path:
        dest = tmp_path / name.split(".", 1)[1]
        scaffold.create_plugin(name, template, dest)
        return dest

    return make


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index's files: the real ``markdown`` rebuilt from this environment, and small
    libraries with a dependency between them and two versions."""
    house = tmp_path_factory.mktemp("wheelhouse")
    wheel_from_installed("markdown", house)
    build_wheel(
        house, "tinyfmt", "1.0", {"tinyfmt/__init__.py": "def shout(x):\n    return x.upper()\n"}
    )
    build_wheel(
        house,
        "tinyfmt",
        "1.1",
        {
            "tinyfmt/__init__.py": (
                "from tinyutil import BANG\n\ndef shout(x):\n    return x.upper() + BANG\n"
            )
        },
        requires=("tinyutil>=1",),
    )
    build_wheel(house, "tinyutil", "1.0", {"tinyutil.py": "BANG = '!'\n"})
    return house


@pytest.fixture
def index(
    wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalIndex]:
    """The wheelhouse served over HTTP; pip sees only it; the wheel cache is the test's."""
    isolated_pip_env(monkeypatch, tmp_path / "wheel-cache")
    with LocalIndex(wheelhouse) as served:
        yield served


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to assert that nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    } | {os.fspath(d.relative_to(root)) + "/": b"" for d in root.rglob("*") if d.is_dir()}
