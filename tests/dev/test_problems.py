"""Errors in the author's source, pointed at a file, a line and (for TOML) a field."""

from __future__ import annotations

import tomllib

import pytest

from plugport.dev._problems import (
    SourceProblem,
    from_call_error,
    from_manifest_error,
    from_syntax_error,
    from_toml_error,
    toml_line,
)
from plugport.errors import ManifestError, PluginCallError, PluginCrashedError
from plugport.manifest import parse_manifest

MANIFEST = """\
name = "acme.hello"
version = "0.1.0"
entry = "hello.plugin:Main"

[permissions]
storage = "64 KiB"
events.publish = ["x.*"]

[contributes]
hooks = { greet = 0, other = 1 }
"""


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("name", 1),
        ("version", 2),
        ("permissions", 5),
        ("permissions.storage", 6),
        ("permissions.events.publish", 7),
        ("permissions.events.publish[0]", 7),
        ("contributes.hooks", 10),
        ("contributes.hooks.other", 10),
        ("limits.memory_mb", 0),
        ("", 0),
    ],
)
def test_toml_line_finds_the_line_that_sets_a_field(field: str, line: int) -> None:
    assert toml_line(MANIFEST, field) == line


def test_a_manifest_error_names_field_and_line() -> None:
    text = MANIFEST.replace('storage = "64 KiB"', 'storage = "lots"')
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    [problem] = from_manifest_error(caught.value, text)
    assert (problem.stage, problem.file, problem.field, problem.line) == (
        "manifest",
        "plugport.toml",
        "permissions.storage",
        6,
    )
    assert str(problem).startswith("plugport.toml:6: permissions.storage: ")


def test_a_toml_syntax_error_names_line_and_column() -> None:
    text = MANIFEST.replace('version = "0.1.0"', "version = ")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    [problem] = from_manifest_error(caught.value, text)
    assert (problem.line, problem.column) == (2, 11)
    with pytest.raises(tomllib.TOMLDecodeError) as decoding:
        tomllib.loads("a = 1\nb = \n")
    settings = from_toml_error(decoding.value, "dev.toml", "config")
    assert (settings.stage, settings.file, settings.line) == ("config", "dev.toml", 2)
    assert "at line" not in settings.message


def test_a_syntax_error_is_file_line_column() -> None:
    with pytest.raises(SyntaxError) as caught:
        compile("x = 1\ndef broken(:\n", "acme/plugin.py", "exec")
    problem = from_syntax_error(caught.value, "acme/plugin.py")
    assert problem.where == "acme/plugin.py:2:12"
    assert problem.to_json()["stage"] == "syntax"


def test_an_import_failure_points_at_the_plugins_last_frame() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "acme/__init__.py", line 1, in <module>\n'
        '  File "acme/plugin.py", line 7, in <module>\n'
        "    raise RuntimeError('not yet')\n"
        "RuntimeError: not yet\n"
    )
    problem = from_call_error(PluginCallError("acme.hello", "RuntimeError", "not yet", trace))
    assert (problem.file, problem.line) == ("acme/plugin.py", 7)
    assert "not yet" in problem.message
    crashed = from_call_error(PluginCrashedError("acme.hello", "exit code 1"))
    assert crashed == SourceProblem("import", "", "plugin 'acme.hello' crashed: exit code 1")
