"""keygen / sign / verify through the real CLI, including every kind of tampering."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from tests.conftest import RunCli

ARCHIVE = "acme.hello-0.1.0.plugport"


@pytest.fixture
def signed(run_cli: RunCli, tmp_path: Path) -> Path:
    assert run_cli("init", "acme.hello").exit_code == 0
    assert run_cli("pack", "hello").exit_code == 0
    assert run_cli("keygen", "-o", "keys/pub.key").exit_code == 0
    result = run_cli("sign", ARCHIVE, "--key", "keys/pub.key")
    assert result.exit_code == 0, result.output
    assert f"signed acme.hello 0.1.0 -> {ARCHIVE}.sig" in result.output
    return tmp_path


def test_keygen_writes_private_key_0600_and_pub(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keygen", "-o", "k/signing.key")
    assert result.exit_code == 0
    private = tmp_path / "k" / "signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in (tmp_path / "k" / "signing.key.pub").read_bytes()
    again = run_cli("keygen", "-o", "k/signing.key")
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert run_cli("keygen", "-o", "k/signing.key", "--force").exit_code == 0


def test_keygen_with_passphrase(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("keygen", "-o", "enc.key", "--passphrase", input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert b"ENCRYPTED" in (tmp_path / "enc.key").read_bytes()
    run_cli("init", "acme.hello")
    run_cli("pack", "hello")
    no_pass = run_cli("sign", ARCHIVE, "--key", "enc.key")
    assert no_pass.exit_code == 1
    assert "encrypted" in no_pass.output
    wrong = run_cli("sign", ARCHIVE, "--key", "enc.key", "--passphrase", input="nope\n")
    assert wrong.exit_code == 1
    assert "wrong passphrase" in wrong.output
    assert not (tmp_path / f"{ARCHIVE}.sig").exists()
    ok = run_cli("sign", ARCHIVE, "--key", "enc.key", env={"PLUGPORT_KEY_PASSPHRASE": "s3cret"})
    assert ok.exit_code == 0, ok.output


def test_verify_ok(run_cli: RunCli, signed: Path) -> None:
    result = run_cli("verify", ARCHIVE, "--key", "keys/pub.key.pub")
    assert result.exit_code == 0, result.output
    assert "verified acme.hello 0.1.0" in result.output


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_sig(path: Path, edit: object) -> None:
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


def test_changed_archive_byte(run_cli: RunCli, signed: Path) -> None:
    _flip_byte(signed / ARCHIVE, 40)
    result = run_cli("verify", ARCHIVE, "--key", "keys/pub.key.pub")
    assert result.exit_code == 1
    assert "archive does not match what was signed: sha256 is" in result.output


def test_changed_statement(run_cli: RunCli, signed: Path) -> None:
    _edit_sig(signed / f"{ARCHIVE}.sig", lambda d: d["statement"].update(length=1))
    result = run_cli("verify", ARCHIVE, "--key", "keys/pub.key.pub")
    assert result.exit_code == 1
    assert "signed statement was altered: its length does not match" in result.output


def test_changed_signature_byte(run_cli: RunCli, signed: Path) -> None:
    def flip(doc: dict[str, str]) -> None:
        raw = bytearray(base64.b64decode(doc["signature"]))
        raw[0] ^= 0x01
        doc["signature"] = base64.b64encode(bytes(raw)).decode()

    _edit_sig(signed / f"{ARCHIVE}.sig", flip)
    result = run_cli("verify", ARCHIVE, "--key", "keys/pub.key.pub")
    assert result.exit_code == 1
    assert "altered signature" in result.output


def test_other_key(run_cli: RunCli, signed: Path) -> None:
    run_cli("keygen", "-o", "keys/other.key")
    result = run_cli("verify", ARCHIVE, "--key", "keys/other.key.pub")
    assert result.exit_code == 1
    assert "not by the given key" in result.output


def test_verify_usage_errors(run_cli: RunCli, signed: Path) -> None:
    assert run_cli("verify", ARCHIVE).exit_code == 2  # --key is required
    assert run_cli("verify", "missing.plugport", "--key", "keys/pub.key.pub").exit_code == 2
    wrong_kind = run_cli("verify", ARCHIVE, "--key", "keys/pub.key")
    assert wrong_kind.exit_code == 1
    assert "give the .pub file" in wrong_kind.output
