"""init / validate / pack / schema through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from plugport import __version__, scaffold
from tests.conftest import RunCli, snapshot
from tests.testing._plugins import kit_args

BROKEN_MANIFEST = """
name = "acme.broken"
version = "1.0.x"
descripton = "typo in a key"
entry = "broken.plugin:BrokenPlugin"

[permissions]
filesystem = ["/"]
"""


def test_version_and_help(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"plugport {__version__}"
    for command in ("init", "validate", "pack", "schema", "keygen", "sign", "verify"):
        help_result = run_cli(command, "--help")
        assert help_result.exit_code == 0, command
        assert "Usage" in help_result.output


@pytest.mark.parametrize("template", scaffold.TEMPLATES)
def test_every_template_validates_packs_and_tests(
    run_cli: RunCli, tmp_path: Path, template: str, request: pytest.FixtureRequest
) -> None:
    created = run_cli("init", "acme.my-plugin", "--template", template)
    assert created.exit_code == 0, created.output
    root = tmp_path / "my-plugin"
    if "[python]" in (root / "plugport.toml").read_text():
        assert "First: plugport lock my-plugin" in created.output
        index = request.getfixturevalue("index")  # a local index; pip sees nothing else
        locked = run_cli("lock", "my-plugin", "--index-url", index.url)
        assert locked.exit_code == 0, locked.output
    assert (root / "my_plugin" / "plugin.py").is_file()
    assert "MyPluginPlugin" in (root / "plugport.toml").read_text()

    validated = run_cli("validate", "my-plugin")
    assert validated.exit_code == 0, validated.output
    assert "valid acme.my-plugin 0.1.0" in validated.output

    packed = run_cli("pack", "my-plugin")
    assert packed.exit_code == 0, packed.output
    assert (tmp_path / "acme.my-plugin-0.1.0.plugport").is_file()
    assert run_cli("validate", "acme.my-plugin-0.1.0.plugport").exit_code == 0

    # The generated tests pass as generated, run the way an author would run them (their
    # sandbox tests through the `plugin` fixture of plugport.testing).
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *kit_args()],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "(plugin) -> None:" in (root / "tests" / "test_plugin.py").read_text()


def test_init_default_path_and_refusals(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("init", "acme.hello").exit_code == 0
    assert (tmp_path / "hello" / "plugport.toml").is_file()
    before = snapshot(tmp_path)

    again = run_cli("init", "acme.hello")
    assert again.exit_code == 1
    assert "already exists and is not empty" in again.output

    bad_name = run_cli("init", "Acme.Hello", "--path", "x")
    assert bad_name.exit_code == 1
    assert "NAME: 'Acme.Hello' is not a plugin name" in bad_name.output

    bad_template = run_cli("init", "acme.other", "--template", "nope")
    assert bad_template.exit_code == 1
    assert "unknown template 'nope'; choose one of basic, integration" in bad_template.output
    assert snapshot(tmp_path) == before


def test_validate_reports_three_precise_errors(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plugport.toml").write_text(BROKEN_MANIFEST)
    result = run_cli("validate", "broken")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert len(errors) == 3, result.output
    assert errors[0].startswith("error version: '1.0.x' is not a PEP 440 version; write e.g.")
    assert errors[1].startswith("error permissions.filesystem: unknown permission 'filesystem'")
    assert "config, credentials, events, mail, network, secrets, storage, tasks, ui" in errors[1]
    assert errors[2].startswith(
        "error descripton: unknown key 'descripton' (did you mean 'description'?)"
    )


def test_validate_json(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plugport.toml").write_text(BROKEN_MANIFEST)
    result = run_cli("validate", "broken", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [e["path"] for e in report["errors"]] == [
        "version",
        "permissions.filesystem",
        "descripton",
    ]
    assert report["errors"][0]["value"] == "1.0.x"


def test_validate_usage_errors_exit_2(run_cli: RunCli) -> None:
    assert run_cli("validate", "does-not-exist").exit_code == 2
    assert run_cli("validate").exit_code == 2
    assert run_cli("validate", ".", "--bogus").exit_code == 2


def test_validate_directory_without_manifest(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("validate", "empty")
    assert result.exit_code == 1
    assert "no plugport.toml found" in result.output


def test_pack_prints_path_size_sha256_and_is_reproducible(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("init", "acme.hello")
    (tmp_path / "out").mkdir()
    first = run_cli("pack", "hello", "-o", "out")
    data = (tmp_path / "out" / "acme.hello-0.1.0.plugport").read_bytes()
    (tmp_path / "hello" / "hello" / "plugin.py").touch()
    second = run_cli("pack", "hello", "-o", "out")
    assert first.exit_code == second.exit_code == 0
    assert first.output == second.output
    assert (tmp_path / "out" / "acme.hello-0.1.0.plugport").read_bytes() == data
    lines = first.output.splitlines()
    assert lines[0] == "packed out/acme.hello-0.1.0.plugport"
    assert lines[1].strip() == f"size    {len(data)} bytes, 5 files"
    assert lines[2].strip().startswith("sha256  ")
    assert len(lines[2].split()[-1]) == 64


def test_init_creates_missing_parents(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("init", "acme.hello", "--path", "a/b/hello")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "b" / "hello" / "plugport.toml").is_file()
    (tmp_path / "blocker").write_text("x")
    before = snapshot(tmp_path)
    refused = run_cli("init", "acme.other", "--path", "blocker/other")
    assert refused.exit_code == 1
    assert "--path: blocker is a file, not a directory" in refused.output
    assert snapshot(tmp_path) == before


def test_pack_into_a_directory_creates_it(run_cli: RunCli, tmp_path: Path) -> None:
    """``-o dist/`` (the README's example) and ``-o dist`` both mean a directory; a name
    ending in .plugport is the file."""
    run_cli("init", "acme.hello")
    for output, expected in (
        ("dist/", "dist/acme.hello-0.1.0.plugport"),
        ("build/nested", "build/nested/acme.hello-0.1.0.plugport"),
        ("named.plugport", "named.plugport"),
    ):
        result = run_cli("pack", "hello", "-o", output)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[0] == f"packed {expected}"
        assert (tmp_path / expected).is_file()
    data = (tmp_path / "named.plugport").read_bytes()
    assert (tmp_path / "dist" / "acme.hello-0.1.0.plugport").read_bytes() == data


def test_pack_refusals_leave_no_directory(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("init", "acme.hello")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plugport.toml").write_text(BROKEN_MANIFEST)
    (tmp_path / "blocker").write_text("x")
    before = snapshot(tmp_path)
    for args, message in (
        (["broken", "-o", "dist/"], "invalid plugin"),
        (["hello", "-o", "blocker/dist"], "--output: blocker is a file, not a directory"),
        (["hello", "-o", "missing/x.plugport"], "output directory missing does not exist"),
    ):
        result = run_cli("pack", *args)
        assert result.exit_code == 1, result.output
        assert message in result.output, result.output
    assert snapshot(tmp_path) == before


def test_pack_refuses_invalid_plugin(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plugport.toml").write_text(BROKEN_MANIFEST)
    before = snapshot(tmp_path)
    result = run_cli("pack", "broken")
    assert result.exit_code == 1
    assert "invalid plugin (3 problems)" in result.output
    assert snapshot(tmp_path) == before


def test_schema_is_valid_json_schema(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "permissions" in schema["properties"]
    assert run_cli("schema", "-o", "schema.json").exit_code == 0
    assert json.loads((tmp_path / "schema.json").read_text()) == schema
