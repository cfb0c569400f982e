"""``plugport check`` through the real CLI: generated templates, archives, bad invocations, the
version against a real registry on 127.0.0.1, and ``publish`` refusing what check refuses."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugport import scaffold
from tests.conftest import RunCli, snapshot
from tests.registry.conftest import Registry, engine_for, running

USES_STORAGE = (
    "\n    async def count(self) -> int:\n        return await self.api.storage.get('n', 0)\n"
)


@pytest.fixture
def cli(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """The CLI with no registry configured, whatever this machine's user has stored."""
    monkeypatch.setenv("PLUGPORT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("PLUGPORT_REGISTRY", raising=False)
    monkeypatch.delenv("PLUGPORT_TOKEN", raising=False)
    return run_cli


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with engine_for("sqlite", tmp_path) as engine, running(engine, tmp_path / "data") as served:
        yield served


def add_code(root: Path, code: str) -> None:
    plugin = next(root.glob("*/plugin.py"))
    plugin.write_text(plugin.read_text() + code)


@pytest.mark.parametrize("template", scaffold.TEMPLATES)
def test_every_template_passes(
    cli: RunCli, make_plugin: Callable[..., Path], template: str, request: pytest.FixtureRequest
) -> None:
    root = make_plugin("acme.my-plugin", template)
    if "[python]" in (root / "plugport.toml").read_text():
        index = request.getfixturevalue("index")
        assert cli("lock", str(root), "--index-url", index.url).exit_code == 0
    result = cli("check", str(root), "--offline")
    assert result.exit_code == 0, result.output
    assert f"passed acme.my-plugin 0.1.0 ({root}): 0 errors" in result.output
    assert "error " not in result.output


def test_storage_without_permission_fails_naming_the_manifest_line(
    cli: RunCli, make_plugin: Callable[..., Path]
) -> None:
    root = make_plugin()
    add_code(root, USES_STORAGE)
    before = snapshot(root)
    result = cli("check", str(root), "--offline")
    assert result.exit_code == 1
    assert (
        "error hello/plugin.py:17: self.api.storage.get(...) is refused at run time: "
        "permissions.storage is 0 (no storage granted); add to plugport.toml: [permissions] "
        'storage = "64 KiB"' in result.output
    )
    assert "failed acme.hello 0.1.0" in result.output
    assert snapshot(root) == before


def test_a_widget_without_its_handler_or_an_unknown_surface_fails(
    cli: RunCli, make_plugin: Callable[..., Path]
) -> None:
    root = make_plugin("acme.counter", "widget")
    code = root / "counter" / "plugin.py"
    good = code.read_text()
    add_code(
        root, "\n    async def later(self) -> None:\n        await self.api.ui.invalidate(GONE)\n"
    )
    code.write_text(code.read_text().replace("WIDGET_ID = ", 'GONE = "counter.gone"\nWIDGET_ID = '))
    line = len(code.read_text().splitlines())
    result = cli("check", str(root), "--offline")
    assert result.exit_code == 1
    assert (
        f"error counter/plugin.py:{line}: self.api.ui.invalidate('counter.gone') is refused at "
        "run time: 'counter.gone' is not a widget, page, menu item, field type or view the "
        "manifest contributes (it contributes: counter.counter)" in result.output
    )
    code.write_text(good.replace('    @widget("counter.counter")\n', ""))
    before = snapshot(root)
    result = cli("check", str(root), "--offline")
    assert result.exit_code == 1
    assert (
        "error plugport.toml: contributes.widgets[0]: CounterPlugin has no method decorated "
        "with @widget('counter.counter')" in result.output
    )
    assert snapshot(root) == before


def test_unused_network_permission_is_a_warning(
    cli: RunCli, make_plugin: Callable[..., Path]
) -> None:
    root = make_plugin()
    manifest = root / "plugport.toml"
    manifest.write_text(
        manifest.read_text().replace(
            "[contributes]", '[permissions]\nnetwork = ["api.example.com"]\n\n[contributes]'
        )
    )
    result = cli("check", str(root), "--offline")
    assert result.exit_code == 0, result.output
    assert (
        "warning plugport.toml: permissions.network: network 'api.example.com' is requested but "
        "never used" in result.output
    )


def test_json_report_and_archive_input(cli: RunCli, make_plugin: Callable[..., Path]) -> None:
    root = make_plugin()
    add_code(root, USES_STORAGE)
    assert cli("pack", str(root)).exit_code == 0
    result = cli("check", "acme.hello-0.1.0.plugport", "--offline", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["name"], report["version"], report["passed"]) == ("acme.hello", "0.1.0", False)
    assert report["errors"] == 1
    assert report["items"][0] == {
        "level": "error",
        "check": "capabilities",
        "where": "hello/plugin.py:17",
        "message": "self.api.storage.get(...) is refused at run time: permissions.storage is 0 "
        '(no storage granted); add to plugport.toml: [permissions] storage = "64 KiB"',
    }


def test_recorded_calls_count_as_used(
    cli: RunCli, make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_plugin("acme.board")  # a code path the AST cannot see: getattr(api, name)
    manifest = root / "plugport.toml"
    manifest.write_text(manifest.read_text() + '\n[permissions]\nui = ["messages"]\n')
    unused = cli("check", str(root), "--offline")
    assert "ui 'messages' is requested but never used" in unused.output
    recorded = tmp_path / "calls.json"
    calls = [{"capability": "ui", "method": "message", "verdict": "granted", "reason": ""}]
    recorded.write_text(json.dumps({"plugin": "acme.board", "calls": calls}))
    used = cli("check", str(root), "--offline", "--recorded", str(recorded))
    assert used.exit_code == 0, used.output
    assert "never used" not in used.output


def test_bad_invocations_exit_2_with_a_message(
    cli: RunCli, make_plugin: Callable[..., Path], tmp_path: Path
) -> None:
    missing = cli("check", "nowhere", "--offline")
    assert missing.exit_code == 2
    assert "nowhere does not exist: give a plugin directory or a .plugport archive" in (
        missing.output
    )
    root = make_plugin()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"plugin": "acme.other", "calls": []}))
    wrong = cli("check", str(root), "--offline", "--recorded", str(other))
    assert wrong.exit_code == 2
    assert "recorded for 'acme.other', not 'acme.hello'" in wrong.output
    broken = cli("check", str(root), "--offline", "--recorded", str(tmp_path / "none.json"))
    assert broken.exit_code == 2
    assert "cannot read it" in broken.output


def test_validate_warns_about_capabilities_the_manifest_does_not_grant(
    cli: RunCli, make_plugin: Callable[..., Path]
) -> None:
    root = make_plugin()
    add_code(root, USES_STORAGE)
    result = cli("validate", str(root))
    assert result.exit_code == 0  # a warning: validate's errors are the manifest's own
    assert (
        "warning hello/plugin.py:17: [undeclared-capability] self.api.storage.get(...): "
        "permissions.storage is 0" in result.output
    )


# --- the registry round trip --------------------------------------------------------------------


def _publish(cli: RunCli, root: Path, registry: Registry, env: dict[str, str]) -> None:
    assert cli("namespace", "create", "acme", "--owner", "ada", env=env).exit_code == 0
    assert cli("keygen", "--output", "keys/acme.key").exit_code == 0
    assert cli("namespace", "add-key", "acme", "keys/acme.key.pub", env=env).exit_code == 0
    assert cli("pack", str(root)).exit_code == 0
    assert cli("sign", "acme.hello-0.1.0.plugport", "--key", "keys/acme.key").exit_code == 0
    published = cli("publish", "acme.hello-0.1.0.plugport", env=env)
    assert published.exit_code == 0, published.output
    approve = ("review", "approve", "acme.hello", "0.1.0", "--reason", "ok")
    assert cli(*approve, env=env).exit_code == 0


@pytest.mark.slow
def test_the_version_is_checked_against_a_real_registry(
    cli: RunCli, make_plugin: Callable[..., Path], registry: Registry
) -> None:
    root = make_plugin()
    env = {"PLUGPORT_REGISTRY": registry.url, "PLUGPORT_TOKEN": registry.admin}
    new = cli("check", str(root), "--registry", registry.url)
    assert new.exit_code == 0, new.output  # a plugin the registry has never seen
    assert "plugport.toml: version" not in new.output
    _publish(cli, root, registry, env)

    taken = cli("check", str(root), env={"PLUGPORT_REGISTRY": registry.url})
    assert taken.exit_code == 1
    assert (
        "error plugport.toml: version: bump `version` in plugport.toml (registry has 0.1.0)"
        in taken.output
    )
    manifest = root / "plugport.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.1.1"'))
    bumped = cli("check", str(root), "--registry", registry.url)
    assert bumped.exit_code == 0, bumped.output

    # The upload of a version the registry has says the same thing.
    again = cli("publish", "acme.hello-0.1.0.plugport", env=env)
    assert again.exit_code == 1
    assert "bump `version` in plugport.toml (the registry has 0.1.0)" in again.output


def test_an_unreachable_registry_is_a_warning_not_a_failure(
    cli: RunCli, make_plugin: Callable[..., Path]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("check", str(make_plugin()), "--registry", f"http://127.0.0.1:{port}")
    assert result.exit_code == 0, result.output
    assert (
        f"warning plugport.toml: version: not checked against the registry: cannot reach the "
        f"registry at http://127.0.0.1:{port}" in result.output
    )


@pytest.mark.slow
def test_publish_refuses_what_check_refuses_and_uploads_nothing(
    cli: RunCli, make_plugin: Callable[..., Path], registry: Registry
) -> None:
    env = {"PLUGPORT_REGISTRY": registry.url, "PLUGPORT_TOKEN": registry.admin}
    root = make_plugin()
    add_code(root, USES_STORAGE)
    assert cli("namespace", "create", "acme", "--owner", "ada", env=env).exit_code == 0
    assert cli("keygen", "--output", "keys/acme.key").exit_code == 0
    assert cli("namespace", "add-key", "acme", "keys/acme.key.pub", env=env).exit_code == 0
    assert cli("pack", str(root)).exit_code == 0
    assert cli("sign", "acme.hello-0.1.0.plugport", "--key", "keys/acme.key").exit_code == 0

    refused = cli("publish", "acme.hello-0.1.0.plugport", env=env)
    assert refused.exit_code == 1
    assert 'add to plugport.toml: [permissions] storage = "64 KiB"' in refused.output
    assert "refused: acme.hello-0.1.0.plugport has 1 error" in refused.output
    assert registry.count("plugin_versions") == 0

    forced = cli("publish", "acme.hello-0.1.0.plugport", "--skip-check", env=env)
    assert forced.exit_code == 0, forced.output
    assert registry.count("plugin_versions") == 1
