"""``plugport secret`` as an operator types it: values from stdin, a file or a hidden prompt,
never from argv; refusals name the fix, exit non-zero and change nothing; every change is
audited without the value."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import RunCli

VALUE = "tok-S3cr3t-CLI-4d5e6f"
MANIFEST = """\
name = "acme.jira"
version = "1.0.0"
entry = "main:Main"
display_name = "Jira"
description = "A test plugin."

[credentials.token]
kind = "bearer"
hosts = ["api.example.com"]

[credentials.hook]
kind = "hmac"
"""
CODE = "from plugport.sdk import Plugin\n\n\nclass Main(Plugin):\n    pass\n"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGPORT_MASTER_KEY", raising=False)


def _audit(home: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(home / "host.sqlite") as db:
        return [
            (r[0], r[1], r[2], r[3])
            for r in db.execute("SELECT action, subject, outcome, detail FROM audit ORDER BY id")
        ]


def _everything(home: Path) -> bytes:
    """Every file of the home but the encrypted store, as bytes."""
    return b"".join(
        p.read_bytes() for p in home.rglob("*") if p.is_file() and "secrets.sqlite" not in p.name
    )


def test_set_list_rotate_delete_before_install(run_cli: RunCli, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    result = run_cli("secret", "set", "acme.jira", "token", *home, input=VALUE + "\n")
    assert result.exit_code == 0, result.output
    assert "set acme.jira token (fingerprint " in result.output
    assert "acme.jira is not installed" in result.output
    listed = run_cli("secret", "list", *home, "--json")
    [row] = json.loads(listed.output)
    assert (row["plugin"], row["name"], row["last_used_at"]) == ("acme.jira", "token", None)
    table = run_cli("secret", "list", "acme.jira", *home)
    assert row["fingerprint"] in table.output
    assert "never" in table.output

    secret_file = tmp_path / "new-value"
    secret_file.write_text("rotated-" + VALUE + "\n")
    rotated = run_cli(
        "secret", "rotate", "acme.jira", "token", "--from-file", str(secret_file), *home
    )
    assert rotated.exit_code == 0, rotated.output
    assert (
        json.loads(run_cli("secret", "list", *home, "--json").output)[0]["fingerprint"]
        != (row["fingerprint"])
    )
    from plugport.host.secrets import EncryptedSecretStore

    assert EncryptedSecretStore(tmp_path / "home").get("acme.jira", "token") == (
        b"rotated-" + VALUE.encode()
    )
    deleted = run_cli("secret", "delete", "acme.jira", "token", *home)
    assert deleted.exit_code == 0
    assert "deleted acme.jira token" in deleted.output
    gone = run_cli("secret", "delete", "acme.jira", "token", *home)
    assert gone.exit_code == 1
    assert "no secret 'acme.jira/token'" in gone.output

    actions = [(a, o) for a, s, o, _ in _audit(tmp_path / "home") if a.startswith("secret")]
    assert actions == [
        ("secret-set", "ok"),
        ("secret-rotated", "ok"),
        ("secret-deleted", "ok"),
        ("secret-deleted", "refused"),
    ]
    for output in (result, listed, table, rotated, deleted, gone):
        assert VALUE not in output.output
    assert VALUE.encode() not in _everything(tmp_path / "home")


def test_value_on_argv_is_refused_without_echo(run_cli: RunCli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    for command in ("set", "rotate"):
        result = run_cli("secret", command, "acme.jira", "token", VALUE, "--home", str(home))
        assert result.exit_code == 2
        assert "never taken from the command line" in result.output
        assert VALUE not in result.output
    assert not home.exists()


def test_hidden_prompt_on_a_terminal(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugport.cli.secrets as module

    monkeypatch.setattr(module, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    result = run_cli(
        "secret",
        "set",
        "acme.jira",
        "token",
        "--home",
        str(tmp_path / "h"),
        input=f"{VALUE}\n{VALUE}\n",
    )
    assert result.exit_code == 0, result.output
    assert VALUE not in result.output


def test_bad_input_changes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    where = ["--home", str(home)]
    empty = run_cli("secret", "set", "acme.jira", "token", *where, input="")
    assert empty.exit_code == 1
    assert "the value is empty" in empty.output
    bad_name = run_cli("secret", "set", "acme.jira", "no-dash", *where, input=VALUE)
    assert bad_name.exit_code == 1
    assert "secret name 'no-dash'" in bad_name.output
    missing_file = run_cli(
        "secret", "set", "acme.jira", "token", "--from-file", str(tmp_path / "nope"), *where
    )
    assert missing_file.exit_code != 0
    not_set = run_cli("secret", "rotate", "acme.jira", "token", *where, input=VALUE)
    assert not_set.exit_code == 1
    assert json.loads(run_cli("secret", "list", *where, "--json").output) == []
    assert not (home / "secrets.sqlite").exists()
    assert not (home / "master.key").exists()
    no_home = run_cli("secret", "delete", "acme.jira", "token", "--home", str(tmp_path / "x"))
    assert no_home.exit_code == 1
    assert "no host home" in no_home.output
    for result in (empty, bad_name, missing_file, not_set):
        assert VALUE not in result.output


def test_installed_plugin_accepts_only_declared_credentials(
    run_cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "jira"
    source.mkdir()
    (source / "plugport.toml").write_text(MANIFEST)
    (source / "main.py").write_text(CODE)
    home = tmp_path / "home"
    where = ["--home", str(home)]
    installed = run_cli("install", str(source), *where, "--yes", "--sandbox", "best-effort")
    assert installed.exit_code == 0, installed.output
    refused = run_cli("secret", "set", "acme.jira", "other", *where, input=VALUE)
    assert refused.exit_code == 1
    expected = "its [credentials] tables and [webhooks] secrets: hook, token"
    assert f"declares no credential 'other' ({expected})" in refused.output
    assert not (home / "secrets.sqlite").exists()
    assert ("secret-set", "acme.jira", "refused") in [a[:3] for a in _audit(home)]
    ok = run_cli("secret", "set", "acme.jira", "hook", *where, input=VALUE)
    assert ok.exit_code == 0
    assert "not installed" not in ok.output
    assert VALUE.encode() not in _everything(home)


def test_rotate_master_key(run_cli: RunCli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    where = ["--home", str(home)]
    assert run_cli("secret", "set", "acme.jira", "token", *where, input=VALUE).exit_code == 0
    old = (home / "master.key").read_text()
    result = run_cli("secret", "rotate-master-key", *where)
    assert result.exit_code == 0
    assert "new key id" in result.output
    assert (home / "master.key").read_text() != old
    from plugport.host.secrets import EncryptedSecretStore

    assert EncryptedSecretStore(home).get("acme.jira", "token") == VALUE.encode()
    bad = run_cli("secret", "rotate-master-key", "--new-key-env", "NOPE_NOT_SET", *where)
    assert bad.exit_code == 1
    assert "$NOPE_NOT_SET is not set" in bad.output
    assert ("master-key-rotated", "secrets", "ok") in [a[:3] for a in _audit(home)]
