"""The host CLI as an operator types it, against a real registry: install with and without
consent, run a hook, disable and enable, check for updates, offline, audit, and bad input."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.host import PluginHost
from tests.conftest import RunCli
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

pytestmark = pytest.mark.slow  # long: runs first (tests/conftest.py)

NETWORK = '[permissions]\nnetwork = ["api.example.com"]\n'


def test_the_operator_workflow(run_cli: RunCli, registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    src, dist = tmp_path / "src", tmp_path / "dist"
    publish(registry, publisher, write(src, "acme.alpha", "1.0.0"), dist)
    publish(registry, publisher, write(src, "acme.gamma", "1.0.0", extra=NETWORK), dist)
    home = ["--home", str(tmp_path / "home")]
    where = [*home, "--registry", registry.url]

    def ok(*args: str, env: dict[str, str] | None = None) -> str:
        result = run_cli(*args, env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def refused(*args: str) -> str:
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        return result.output

    assert "installed acme.alpha 1.0.0" in ok("install", "acme.alpha", *where)
    # no terminal and no --yes: what needs consent is refused, and named
    output = refused("install", "acme.gamma", *where)
    assert "acme.gamma 1.0.0 needs consent for: network 'api.example.com'" in output
    assert [row["name"] for row in json.loads(ok("list", *home, "--json"))] == ["acme.alpha"]
    opted_out = {"PLUGPORT_TELEMETRY": "0"}
    assert "installed acme.gamma 1.0.0" in ok(
        "install", "acme.gamma", *where, "--yes", env=opted_out
    )
    with registry.client() as client:
        for name, reported in (("acme.alpha", 1), ("acme.gamma", 0)):  # gamma: opted out
            stats = client.get(f"/api/v1/plugins/{name}/stats").json()
            assert stats["totals"]["installs"] == reported, name

    ran = ok("run", "acme.alpha", "greet", "--arg", "name=Ada", *home)
    assert json.loads(ran) == "acme.alpha 1.0.0 says hello to Ada"
    ok("disable", "acme.alpha", *home)
    assert "acme.alpha is disabled; plugport enable acme.alpha first" in refused(
        "run", "acme.alpha", "greet", "--arg", "name=Ada", *home
    )
    rows = {row["name"]: row for row in json.loads(ok("list", *home, "--json"))}
    assert (rows["acme.alpha"]["enabled"], rows["acme.gamma"]["enabled"]) == (False, True)
    ok("enable", "acme.alpha", *home)
    assert "says hello" in ok("run", "acme.alpha", "greet", "--arg", "name=Ada", *home)

    assert "everything is up to date" in ok("check-updates", *where)
    publish(registry, publisher, write(src, "acme.alpha", "1.1.0"), dist)
    assert "acme.alpha: 1.0.0 -> 1.1.0" in ok("check-updates", *where)
    # offline: metadata is cached, but the new archive is not: the message names it
    output = refused("update", "acme.alpha", *where, "--offline")
    assert "offline: no cached copy of" in output
    assert "acme.alpha" in output
    assert "updated acme.alpha 1.0.0 -> 1.1.0" in ok("update", "--all", *where)

    info = json.loads(ok("info", "acme.alpha", *where))
    assert info["latest_version"] == "1.1.0"
    assert "acme.gamma" in ok("search", "gamma", *where)

    audit = ok("audit", *home, "--limit", "100")
    for action in ("install", "consent", "disable", "enable", "update"):
        assert action in audit
    assert "uninstalled acme.gamma and its data" in ok("uninstall", "acme.gamma", *home, "--purge")


def test_bad_input_is_named_and_changes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    cases = [
        (["install", "Not A Plugin", *home], "'Not A Plugin'"),
        (["install", "http://example.com/x.plugport", *home], "only https URLs"),
        (["install", "./missing.plugport", *home], "no such archive"),
        (["install", "acme.hello", *home], "no registry configured"),
        (["uninstall", "acme.hello", *home], "acme.hello"),
        (["run", "acme.hello", "greet", "--arg", "novalue", *home], "--arg 'novalue': write key"),
        (["run", "acme.hello", "greet", "--arg", "name=Ada", *home], "acme.hello is not installed"),
        (["install", "acme.hello", "--sandbox", "loose", *home], "--sandbox: 'loose'"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    plugins = tmp_path / "home" / "plugins"
    assert not plugins.exists() or not any(plugins.iterdir())


def test_a_policy_preapproves_what_unattended_runs_may_grant(
    run_cli: RunCli, registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    src, dist = tmp_path / "src", tmp_path / "dist"
    publish(registry, publisher, write(src, "acme.gamma", "1.0.0", extra=NETWORK), dist)
    home = tmp_path / "home"
    home.mkdir()
    where = ["--home", str(home), "--registry", registry.url]
    (home / "policy.toml").write_text('[preapproved]\nnetwork = ["api.example.com"]\n')
    installed = run_cli("install", "acme.gamma", *where)  # no terminal, no --yes
    assert installed.exit_code == 0, installed.output
    grows = NETWORK.replace('"api.example.com"', '"api.example.com", "evil.example.net"')
    publish(registry, publisher, write(src, "acme.gamma", "1.1.0", extra=grows), dist)
    refused = run_cli("update", "acme.gamma", *where)
    assert refused.exit_code == 1
    assert "needs consent for: network 'evil.example.net'" in refused.output
    (home / "policy.toml").write_text("[preapproved]\nnetwork = 5\n")
    broken = run_cli("update", "acme.gamma", *where)
    assert broken.exit_code == 1
    assert "policy.toml: not a valid policy" in broken.output


def test_read_only_commands_create_no_home(
    run_cli: RunCli, registry: Registry, tmp_path: Path
) -> None:
    """list, status, audit, check-updates, search and info on a home that does not exist: a
    sensible answer, and not one file or directory created (not the home, its cache or its
    state, not under $HOME, not in the working directory, where the default home would be)."""
    before = sorted(tmp_path.rglob("*"))
    user = {"HOME": str(tmp_path / "user"), "PLUGPORT_HOME": ""}
    fresh = ["--home", str(tmp_path / "fresh")]
    at = ["--registry", registry.url]
    cases: list[tuple[list[str], int, str]] = [
        (["list", *fresh], 0, "no plugins installed in"),
        (["list", "--json", *fresh], 0, "[]"),
        (["list"], 0, "no plugins installed in plugport-home"),  # the default home
        (["status", *fresh], 0, "no plugins installed in"),
        (["audit", *fresh], 0, "outcome"),
        (["check-updates", *fresh, *at], 0, "everything is up to date"),
        (["search", "anything", *fresh, *at], 0, "0 found"),
        (["info", "acme.missing", *fresh, *at], 1, "acme.missing"),
        (["info", "acme.missing", *fresh, "--offline", *at], 1, "acme.missing"),
    ]
    for args, code, expected in cases:
        result = run_cli(*args, env=user)
        assert result.exit_code == code, (args, result.output)
        assert expected in result.output, (args, result.output)
    assert sorted(tmp_path.rglob("*")) == before


def test_an_existing_home_is_read_and_a_read_only_host_changes_nothing(
    run_cli: RunCli, tmp_path: Path
) -> None:
    home = tmp_path / "home"

    async def open_and(action: Callable[[PluginHost], Awaitable[object]], where: Path) -> None:
        host = PluginHost(app="a", app_version="1", home=where, read_only=where != home)
        try:
            await action(host)
        finally:
            await host.stop()

    asyncio.run(open_and(lambda host: _nothing(), home))  # a writable host creates the home
    assert (home / "host.sqlite").is_file()
    listed = run_cli("list", "--json", "--home", str(home))
    assert (listed.exit_code, json.loads(listed.output)) == (0, [])
    never = tmp_path / "no"
    for change in ("enable", "disable", "uninstall"):
        with pytest.raises(InvalidInputError, match=rf"{change}: the host home .* read-only"):
            asyncio.run(open_and(lambda host, c=change: getattr(host, c)("acme.x"), never))
    with pytest.raises(InvalidInputError, match=r"install: the host home .* read-only"):
        asyncio.run(open_and(lambda host: host.install("acme.x"), never))
    assert not never.exists()


async def _nothing() -> None:
    return None


class _Busy(BaseHTTPRequestHandler):
    """A registry that always answers 429, asking to wait 0 seconds."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"error": {"code": "rate_limited", "message": "more than 600 requests a minute"}}'
        self.send_response(429)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_registry_that_keeps_refusing_is_named_with_its_wait(
    run_cli: RunCli, tmp_path: Path
) -> None:
    _Busy.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = run_cli("search", "x", "--home", str(tmp_path / "home"), "--registry", url)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"the registry at {url} is rate limiting this host" in text
    assert "more than 600 requests a minute" in text
    assert "gave up after 3 retries" in text
    assert "it asks to wait 0 s more" in text
    assert "HTTP 429, rate_limited" in text
    assert _Busy.hits == 4  # the first request and 3 retries, then no more
    assert not (tmp_path / "home").exists()


FAILING = """\
from plugport.sdk import Plugin, command, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        raise ValueError("cannot greet " + name)

    @command("alpha.fail")
    def fail(self):
        self.greet("from a command")
"""


def test_a_plugins_failure_shows_its_own_frames_only(run_cli: RunCli, tmp_path: Path) -> None:
    source = write(tmp_path / "src", "acme.alpha", "0.1.0", code=FAILING)
    manifest = source / "plugport.toml"
    manifest.write_text(
        manifest.read_text() + '[[contributes.commands]]\nid = "alpha.fail"\ntitle = "Fail"\n'
    )
    home = ["--home", str(tmp_path / "home")]
    installed = run_cli("install", str(source), *home, "--yes")
    assert installed.exit_code == 0, installed.output
    in_greet, in_fail = 'File "main.py", line 7, in greet', 'File "main.py", line 11, in fail'
    for target, arguments, frames in (
        ("greet", ["--arg", "name=Ada"], [in_greet]),
        ("alpha.fail", [], [in_fail, in_greet]),
    ):
        result = run_cli("run", "acme.alpha", target, *arguments, *home)
        assert result.exit_code == 1, result.output
        assert "plugin 'acme.alpha' raised ValueError: cannot greet" in result.output
        assert "Traceback (most recent call last):" in result.output
        for frame in frames:
            assert frame in result.output, result.output
        for host_path in (str(tmp_path), "site-packages", "plugport/runtime", "asyncio"):
            assert host_path not in result.output, result.output
