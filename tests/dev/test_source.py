"""The source as dev reads it: compile only what changed, stage what pack would ship, and
settings files checked against the manifest's schema."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from plugport import scaffold
from plugport.dev._source import SourceProblems, SourceTree, load_settings_file

SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}, "times": {"type": "integer"}},
    "additionalProperties": False,
}


def test_only_changed_files_are_compiled_and_errors_are_collected(tmp_path: Path) -> None:
    root = tmp_path / "hello"
    scaffold.create_plugin("acme.hello", "basic", root)
    tree = SourceTree(root)
    files = tree.files()
    assert ".plugport-dev/x" not in files
    assert sorted(tree.compile_changed(files)) == sorted(f for f in files if f.endswith(".py"))
    assert tree.compile_changed(files) == []  # nothing changed
    plugin = root / "hello" / "plugin.py"
    good = tree.compiled["hello/plugin.py"]
    plugin.write_text("def broken(:\n")
    with pytest.raises(SourceProblems) as caught:
        tree.compile_changed(files)
    [problem] = caught.value.problems
    assert problem.where == "hello/plugin.py:1:12"
    assert tree.compiled["hello/plugin.py"] == good  # the last good version is remembered


def test_the_staged_copy_is_what_pack_ships_and_readable_by_anyone(tmp_path: Path) -> None:
    root = tmp_path / "hello"
    scaffold.create_plugin("acme.hello", "basic", root)
    (root / ".plugport-dev").mkdir()
    (root / ".plugport-dev" / "runtime.sqlite").write_bytes(b"state")
    os.chmod(root / "hello" / "plugin.py", 0o600)
    tree = SourceTree(root)
    staged = tree.stage(tree.files(), tmp_path / "stage")
    shipped = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert shipped == tree.files()
    assert not (staged / ".plugport-dev").exists()
    assert stat.S_IMODE((staged / "hello" / "plugin.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((staged / "hello").stat().st_mode) == 0o755


def test_a_missing_manifest_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(SourceProblems, match=r"no plugport\.toml"):
        SourceTree(tmp_path).read_manifest()


@pytest.mark.parametrize(
    ("name", "text"),
    [("dev.toml", 'greeting = "Hi"\ntimes = 2\n'), ("dev.json", '{"greeting": "Hi", "times": 2}')],
)
def test_settings_files_in_toml_or_json(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert load_settings_file(path, SCHEMA) == {"greeting": "Hi", "times": 2}


@pytest.mark.parametrize(
    ("name", "text", "where", "message"),
    [
        ("dev.toml", "times = \n", ":1:", "Invalid value"),
        ("dev.json", '{"times": }', ":1:11", "Expecting value"),
        ("dev.toml", 'times = "two"\n', "", "config.times: 'two' is not of type 'integer'"),
        ("dev.json", '{"colour": "red"}', "", "Additional properties are not allowed"),
        ("dev.json", "[1, 2]", "", "settings must be an object"),
    ],
)
def test_bad_settings_files_name_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, where: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SourceProblems) as caught:
        load_settings_file(path, SCHEMA)
    [problem] = caught.value.problems
    assert problem.stage == "config"
    assert str(problem).startswith(f"{path}{where}")
    assert message in problem.message


def test_an_unreadable_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SourceProblems, match="cannot read the settings file"):
        load_settings_file(tmp_path / "missing.toml", SCHEMA)
