"""``plugport sign``/``verify`` on a plugin wheel and ``plugport install --index-url`` as an
operator types them, against a local package index (real HTTP on 127.0.0.1): a signed wheel
installs and runs; an unsigned one only where the operator's policy (``policy.toml`` or the
environment) allows it, never because of a command-line flag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugport.signing import generate_private_key, write_keypair
from plugport.testing.pypi import LocalIndex
from tests.conftest import RunCli
from tests.host.test_index_install import Scene

pytestmark = pytest.mark.slow  # starts sandboxed workers: runs first (tests/conftest.py)


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    (tmp_path / "index").mkdir()
    with LocalIndex(tmp_path / "index") as index:
        yield Scene(tmp_path, index)


def test_sign_install_run_list_and_update(run_cli: RunCli, scene: Scene, tmp_path: Path) -> None:
    private, public = write_keypair(tmp_path / "publisher", generate_private_key())
    wheel = scene.wheel(signed=False)
    signed = run_cli("sign", str(wheel), "--key", str(private))
    assert signed.exit_code == 0, signed.output
    assert f"signed acme.hello 1.0.0 -> {wheel}.sig" in signed.output
    verified = run_cli("verify", str(wheel), "--key", str(public))
    assert verified.exit_code == 0, verified.output
    assert "verified acme.hello 1.0.0" in verified.output

    home = ["--home", str(scene.home)]
    where = [*home, "--index-url", scene.index.url]
    installed = run_cli("install", "acme.hello==1.0.0", *where, "--key", str(public))
    assert installed.exit_code == 0, installed.output
    assert "installed acme.hello 1.0.0" in installed.output
    assert "unsigned" not in installed.output
    ran = run_cli("run", "acme.hello", "greet", "--arg", "name=Ada", *home)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output) == "acme.hello 1.0.0 says hello to Ada"
    [row] = json.loads(run_cli("list", *home, "--json").output)
    assert (row["source_kind"], row["source"]) == ("index", scene.url(wheel))

    update = run_cli("update", "acme.hello", *home)
    assert update.exit_code == 1, update.output
    assert "plugport install --index-url INDEX_URL acme.hello" in update.output


def test_unsigned_only_by_the_operators_policy(run_cli: RunCli, scene: Scene) -> None:
    scene.wheel(signed=False)
    home = ["--home", str(scene.home)]
    where = [*home, "--index-url", scene.index.url]

    refused = run_cli("install", "acme.hello", *where)
    assert refused.exit_code == 1, refused.output
    assert "has no signature" in refused.output
    assert "allow_unsigned_index = true" in refused.output
    flag = run_cli("install", "acme.hello", *where, "--allow-unsigned")
    assert flag.exit_code == 2, flag.output  # no such option: the command line cannot decide
    assert json.loads(run_cli("list", *home, "--json").output) == []

    policy = scene.home / "policy.toml"
    policy.write_text('allow_unsigned_index = "yes"\n')
    bad = run_cli("install", "acme.hello", *where)
    assert bad.exit_code == 1, bad.output
    assert "allow_unsigned_index must be true or false" in bad.output
    off = run_cli("install", "acme.hello", *where, env={"PLUGPORT_ALLOW_UNSIGNED_INDEX": "0"})
    assert off.exit_code == 1, off.output  # the environment, when set, decides
    assert "has no signature" in off.output
    listed = run_cli("list", *home, "--json", env={"PLUGPORT_ALLOW_UNSIGNED_INDEX": "0"})
    assert json.loads(listed.output) == []

    policy.write_text("allow_unsigned_index = true\n")
    installed = run_cli("install", "acme.hello", *where)
    assert installed.exit_code == 0, installed.output
    assert "installed acme.hello 1.0.0" in installed.output
    assert "acme.hello is unsigned" in installed.output
    [row] = json.loads(run_cli("list", *home, "--json").output)
    assert (row["source_kind"], row["key_id"]) == ("index", "")
    trail = json.loads(run_cli("audit", *home, "--json", "--plugin", "acme.hello").output)
    assert "install-unsigned" in {event["action"] for event in trail}


def test_the_environment_can_allow_unsigned(run_cli: RunCli, scene: Scene) -> None:
    scene.wheel(signed=False)
    where = ["--home", str(scene.home), "--index-url", scene.index.url]
    allowed = run_cli("install", "acme.hello", *where, env={"PLUGPORT_ALLOW_UNSIGNED_INDEX": "1"})
    assert allowed.exit_code == 0, allowed.output
    assert "acme.hello is unsigned" in allowed.output
    typo = run_cli("install", "acme.hello", *where, env={"PLUGPORT_ALLOW_UNSIGNED_INDEX": "sure"})
    assert typo.exit_code == 1
    assert "PLUGPORT_ALLOW_UNSIGNED_INDEX='sure'" in typo.output
