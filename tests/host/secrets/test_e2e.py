"""End to end through the CLI and a real host: a secret set with ``plugport secret set`` is used
by the plugin's sandboxed worker (``api.secrets.sign`` with the key, the key never returned),
``uninstall --purge`` deletes it, and no output, audit row or file other than the encrypted
store holds the value."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import RunCli

pytestmark = pytest.mark.slow
VALUE = "e2e-Hm4c-K3y-0f1e2d3c"
MANIFEST = """\
name = "acme.signer"
version = "1.0.0"
entry = "main:Main"
display_name = "Signer"
description = "A test plugin."

[credentials.hook]
kind = "hmac"

[contributes]
commands = [{ id = "s.sign", title = "Sign" }]
"""
CODE = """\
from plugport.sdk import Plugin, command


class Main(Plugin):
    @command("s.sign")
    async def sign(self, data):
        return await self.api.secrets.sign("hook", data)
"""


def test_cli_secret_used_by_a_real_host_and_purged(
    run_cli: RunCli,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PLUGPORT_MASTER_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    source = tmp_path / "signer"
    source.mkdir()
    (source / "plugport.toml").write_text(MANIFEST)
    (source / "main.py").write_text(CODE)
    home = tmp_path / "home"
    where = ["--home", str(home)]
    outputs = []

    def ok(*args: str, input: str | None = None) -> str:
        result = run_cli(*args, input=input)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        return result.output

    ok("secret", "set", "acme.signer", "hook", *where, input=VALUE + "\n")
    ok("install", str(source), *where, "--yes", "--sandbox", "best-effort")
    signed = ok(
        "run", "acme.signer", "s.sign", "--arg", "data=hello", *where, "--sandbox", "best-effort"
    )
    expected = hmac.new(VALUE.encode(), b"hello", hashlib.sha256).hexdigest()
    assert json.loads(signed) == expected
    listed = json.loads(ok("secret", "list", *where, "--json"))
    assert listed[0]["last_used_at"] is not None
    ok("audit", *where)
    ok("uninstall", "acme.signer", "--purge", *where, "--sandbox", "best-effort")
    assert json.loads(ok("secret", "list", *where, "--json")) == []

    with sqlite3.connect(home / "host.sqlite") as db:
        audit = json.dumps(db.execute("SELECT * FROM audit").fetchall())
    assert "secret-set" in audit
    for text in (*outputs, caplog.text, audit):
        assert VALUE not in text
    for path in home.rglob("*"):
        if path.is_file() and "secrets.sqlite" not in path.name:
            assert VALUE.encode() not in path.read_bytes(), path
