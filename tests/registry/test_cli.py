"""The publisher's and reviewer's CLI against a real registry over HTTP: keygen, namespace,
add-key, pack, sign, publish, review, yank; refusals are one red line and exit 1."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.registry.conftest import Registry


def test_publish_review_and_yank_from_the_cli(cli: RunCli, registry: Registry) -> None:
    assert cli("namespace", "create", "acme", "--owner", "ada").exit_code == 0
    assert cli("keygen", "--output", "keys/acme.key").exit_code == 0
    added = cli("namespace", "add-key", "acme", "keys/acme.key.pub")
    assert added.exit_code == 0, added.output
    assert "may now sign for acme" in added.output
    assert cli("init", "acme.hello").exit_code == 0
    assert cli("pack", "hello").exit_code == 0
    archive = "acme.hello-0.1.0.plugport"
    assert cli("sign", archive, "--key", "keys/acme.key").exit_code == 0
    published = cli("publish", archive)
    assert published.exit_code == 0, published.output
    assert "uploaded acme.hello 0.1.0: waiting for review (scan: 0 high" in published.output
    listed = cli("review", "list")
    assert "acme.hello" in listed.output
    approved = cli("review", "approve", "acme.hello", "0.1.0", "--reason", "looks fine")
    assert "acme.hello 0.1.0: published" in approved.output
    again = cli("publish", archive)
    assert again.exit_code == 1
    assert (
        "versions are immutable, even yanked or rejected ones: bump `version` in plugport.toml "
        "(the registry has 0.1.0) (HTTP 409, conflict)" in again.output
    )
    assert cli("yank", "acme.hello", "0.1.0", "--reason", "bug").exit_code == 0
    assert cli("review", "list").output.strip() == "nothing waits for review"


def test_login_stores_a_private_credentials_file(
    cli: RunCli, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLUGPORT_TOKEN")
    monkeypatch.delenv("PLUGPORT_REGISTRY")
    bad = cli("login", "--registry", registry.url, "--token", "ppt_00000000_" + "A" * 43)
    assert bad.exit_code == 1
    assert "unknown token (HTTP 401, unauthenticated)" in bad.output
    assert not (tmp_path / "config" / "credentials.json").exists()
    good = cli("login", "--registry", registry.url, "--token", registry.admin)
    assert good.exit_code == 0, good.output
    assert "as root" in good.output
    stored = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"registry": registry.url, "token": registry.admin}
    assert cli("review", "list").exit_code == 0  # uses what login stored


def test_without_a_registry_the_error_says_how_to_give_one(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGPORT_CONFIG_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("PLUGPORT_REGISTRY", raising=False)
    monkeypatch.delenv("PLUGPORT_TOKEN", raising=False)
    result = run_cli("review", "list")
    assert result.exit_code == 1
    assert "pass --registry URL, set PLUGPORT_REGISTRY, or run plugport login" in result.output


def test_every_registry_setting_is_a_serve_option() -> None:
    """An operator sets each of ``RegistrySettings`` with an option or ``PLUGPORT_<NAME>``."""
    import typer.main

    from plugport.cli import app
    from plugport.registry.settings import RegistrySettings

    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in param.opts}
    wanted = {"--" + name.replace("_", "-") for name in RegistrySettings.model_fields}
    assert wanted - options == set()
