"""Static checks of plugin source: findings without running the code."""

from __future__ import annotations

import ast

import pytest

from plugport import inspection


def scan(source: str) -> list[tuple[int, str, str]]:
    tree, problem = inspection.parse_source("p.py", source)
    assert problem is None
    assert tree is not None
    return [(f.line, f.rule, f.severity) for f in inspection.scan_source("p.py", tree)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import ctypes", [(1, "native-code", "high")]),
        ("from subprocess import run", [(1, "subprocess", "high")]),
        ("import socket, json", [(1, "network", "high")]),
        ("from urllib import request", [(1, "network", "medium")]),
        ("import pickle", [(1, "deserialization", "medium")]),
        ("import importlib\nimportlib.import_module('x')", [(1, "dynamic-import", "low")]),
        ("eval('1')", [(1, "dynamic-code", "high")]),
        ("exec('x=1')", [(1, "dynamic-code", "high")]),
        ("compile('1', 'f', 'eval')", [(1, "dynamic-code", "medium")]),
        ("__import__('os')", [(1, "dynamic-import", "medium")]),
        ("import os\nos.system('ls')", [(2, "subprocess", "high")]),
        ("import os\nos.execv('/bin/sh', [])", [(2, "subprocess", "high")]),
        ("import os\nos.posix_spawn('x', [], {})", [(2, "subprocess", "high")]),
        ("import json, os\nos.path.join('a')\nprint(json.dumps(1))", []),
        ("from . import sibling", []),
    ],
)
def test_risky_code(source: str, expected: list[tuple[int, str, str]]) -> None:
    assert scan(source) == expected


def test_syntax_error_becomes_finding() -> None:
    tree, problem = inspection.parse_source("bad.py", "def f(:\n")
    assert tree is None
    assert problem is not None
    assert (problem.file, problem.line, problem.rule) == ("bad.py", 1, "syntax-error")
    _, nul = inspection.parse_source("nul.py", "x = 1\0")
    assert nul is not None
    assert nul.rule == "syntax-error"


def test_find_class_collects_handlers() -> None:
    source = """
import plugport.sdk as sdk
from plugport.sdk import Plugin, hook, command, on_event

class Helper:
    pass

class P(sdk.Plugin):
    @hook
    def bare(self): ...

    @hook()
    def empty_call(self): ...

    @hook("named", priority=3)
    async def impl(self): ...

    @sdk.command("p.run")
    def run(self): ...

    @on_event("tasks.*")
    def listen(self, event): ...

    @staticmethod
    def helper(): ...
"""
    info = inspection.find_class(ast.parse(source), "P")
    assert info is not None
    assert info.bases == ("sdk.Plugin",)
    assert set(info.hooks) == {"bare", "empty_call", "named"}
    assert set(info.commands) == {"p.run"}
    assert set(info.events) == {"tasks.*"}
    assert inspection.find_class(ast.parse(source), "Missing") is None


def test_module_candidates() -> None:
    assert inspection.module_candidates("a.b") == ["a/b.py", "a/b/__init__.py"]


def test_private_key_detection() -> None:
    assert inspection.find_private_key("k", b"-----BEGIN PRIVATE KEY-----\n") is not None
    assert inspection.find_private_key("k", b"-----BEGIN OPENSSH PRIVATE KEY-----") is not None
    assert inspection.find_private_key("k", b"-----BEGIN PUBLIC KEY-----") is None
