"""Static checks of plugin source: findings without running the code."""

from __future__ import annotations

import ast
import base64
import bz2
import gzip
import hashlib
import lzma
import zlib

import pytest

from plugport import inspection

# Random-looking but fixed bytes, so that a failure reproduces.
RANDOM = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(47))[:1500]


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
        ("import socket, json", [(1, "network", "medium")]),
        ("from urllib import request", [(1, "network", "medium")]),
        ("import pickle", [(1, "deserialization", "medium")]),
        ("import importlib\nimportlib.import_module('x')", [(1, "dynamic-import", "low")]),
        ("eval('1')", [(1, "dynamic-code", "high")]),
        ("exec('x=1')", [(1, "dynamic-code", "high")]),
        ("compile('1', 'f', 'eval')", [(1, "dynamic-code", "high")]),
        ("__import__('os')", [(1, "dynamic-import", "medium")]),
        ("import os\nos.system('ls')", [(2, "subprocess", "high")]),
        ("import os\nos.execv('/bin/sh', [])", [(2, "subprocess", "high")]),
        ("import os\nos.posix_spawn('x', [], {})", [(2, "subprocess", "high")]),
        ("import json, os\nos.path.join('a')\nprint(json.dumps(1))", []),
        ("from . import sibling", []),
        # names resolved through imports and aliases
        (
            "from os import system\nsystem('ls')",
            [(1, "subprocess", "high"), (2, "subprocess", "high")],
        ),
        ("import os as o\nrun = o.popen", [(2, "subprocess", "high")]),
        ("import builtins\nbuiltins.exec('x')", [(2, "dynamic-code", "high")]),
        ("e = eval", [(1, "dynamic-code", "high")]),
        ("import asyncio\nasyncio.create_subprocess_shell('ls')", [(2, "subprocess", "high")]),
        ("import asyncio\nasyncio.open_connection('h', 80)", [(2, "network", "medium")]),
        ("import ftplib", [(1, "network", "medium")]),
        ("from xmlrpc.client import ServerProxy", [(1, "network", "medium")]),
        # importlib tricks
        (
            "import importlib\nimportlib.import_module(name)",
            [(1, "dynamic-import", "low"), (2, "dynamic-import", "medium")],
        ),
        ("from importlib import import_module as im\nim('json')", [(1, "dynamic-import", "low")]),
        ("import importlib.util", [(1, "dynamic-import", "medium")]),
        ("from importlib import util", [(1, "dynamic-import", "medium")]),
        (
            "import importlib\nimportlib.util.find_spec('x')",
            [(1, "dynamic-import", "low"), (2, "dynamic-import", "medium")],
        ),
        ("import sys\nsys.modules['json'] = fake", [(2, "dynamic-import", "medium")]),
        ("import sys\ndel sys.modules['json']", [(2, "dynamic-import", "medium")]),
        ("from sys import modules\nmodules.update(fakes)", [(2, "dynamic-import", "medium")]),
        ("import sys\nmod = sys.modules['json']", []),
        # loading serialized objects
        (
            "import pickle\npickle.loads(data)",
            [(1, "deserialization", "medium"), (2, "deserialization", "high")],
        ),
        ("import pickle; pickle.load(fh)", [(1, "deserialization", "high")]),
        (
            "from marshal import loads\nloads(data)",
            [(1, "deserialization", "high"), (2, "deserialization", "high")],
        ),
        (
            "import shelve\nshelve.open('db')",
            [(1, "deserialization", "medium"), (2, "deserialization", "high")],
        ),
        (
            "import dill\ndill.loads(data)",
            [(1, "deserialization", "medium"), (2, "deserialization", "high")],
        ),
        ("import pickle\npickle.dumps(1)", [(1, "deserialization", "medium")]),
        # reflection on modules and builtins
        ("import os\ngetattr(os, name)('ls')", [(2, "dynamic-attribute", "medium")]),
        ("import builtins\nsetattr(builtins, name, f)", [(2, "dynamic-attribute", "medium")]),
        (
            "getattr(__import__('os'), name)",
            [(1, "dynamic-attribute", "medium"), (1, "dynamic-import", "medium")],
        ),
        ("import os\ngetattr(os, 'sep')", []),
        ("getattr(self, name)", []),
        # sandbox-escape gadgets
        ("().__class__.__base__.__subclasses__()", [(1, "escape-gadget", "medium")]),
        ("f.__globals__['os']", [(1, "escape-gadget", "medium")]),
        ("g = f.__code__", [(1, "escape-gadget", "medium")]),
        ("__builtins__['eval']", [(1, "escape-gadget", "medium")]),
        ("getattr(f, '__globals__')", [(1, "escape-gadget", "medium")]),
        ("import sys\nsys._getframe().f_globals", [(2, "escape-gadget", "medium")]),
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


def test_find_class_collects_ui_handlers_with_their_decorator() -> None:
    source = """
from plugport import sdk
from plugport.sdk import Plugin, command, field, menu_item, page, view, widget

TILE = "p.tile"
TILE_AGAIN: str = "p.other"
REBOUND = "p.first"
REBOUND = "p.second"
NOT_TEXT = 7

class P(Plugin):
    @widget(TILE)
    def tile(self, request): ...

    @sdk.page("p.board")
    async def board(self, request): ...

    @menu_item("p.retry")
    def retry(self, request): ...

    @field("p.cron")
    def cron(self, request): ...

    @view("p.map")
    def map(self, request): ...

    @widget(TILE_AGAIN)
    @command(TILE)
    def both(self): ...

    @widget(REBOUND)
    def ambiguous(self, request): ...

    @widget(NOT_TEXT)
    def number(self, request): ...

    @widget(f"p.{TILE}")
    def computed(self, request): ...
"""
    info = inspection.find_class(ast.parse(source), "P")
    assert info is not None
    assert info.ui == {
        "p.tile": ("widget", 13),
        "p.board": ("page", 16),
        "p.retry": ("menu_item", 19),
        "p.cron": ("field", 22),
        "p.map": ("view", 25),
        "p.other": ("widget", 29),
    }
    assert info.commands == {"p.tile": 29}  # a module constant names a command too
    assert info.hooks == {}


def test_module_candidates() -> None:
    assert inspection.module_candidates("a.b") == ["a/b.py", "a/b/__init__.py"]


def test_private_key_detection() -> None:
    assert inspection.find_private_key("k", b"-----BEGIN PRIVATE KEY-----\n") is not None
    assert inspection.find_private_key("k", b"-----BEGIN OPENSSH PRIVATE KEY-----") is not None
    assert inspection.find_private_key("k", b"-----BEGIN PUBLIC KEY-----") is None


def test_one_finding_per_rule_per_line_keeps_the_most_serious() -> None:
    findings = inspection.scan_source("p.py", ast.parse("from importlib import util"))
    assert [(f.line, f.rule, f.severity) for f in findings] == [(1, "dynamic-import", "medium")]
    assert findings[0].message.startswith("imports importlib.util:")


def _blob_rules(value: str | bytes) -> list[tuple[int, str, str]]:
    return scan(f"\n\nBLOB = {value!r}\n")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param(base64.b64encode(RANDOM).decode(), "base64-encoded", id="base64"),
        pytest.param(base64.urlsafe_b64encode(RANDOM).decode(), "base64-encoded", id="urlsafe"),
        pytest.param(base64.encodebytes(RANDOM).decode(), "base64-encoded", id="base64-lines"),
        pytest.param(base64.b85encode(RANDOM).decode(), "base85-encoded", id="base85"),
        pytest.param(base64.a85encode(RANDOM).decode(), "base85-encoded", id="ascii85"),
        pytest.param(RANDOM.hex(), "hex-encoded", id="hex"),
        pytest.param(RANDOM.hex().encode(), "hex-encoded", id="hex-bytes"),
        pytest.param(zlib.compress(RANDOM), "zlib-compressed", id="zlib"),
        pytest.param(gzip.compress(RANDOM, mtime=0), "gzip-compressed", id="gzip"),
        pytest.param(bz2.compress(RANDOM), "bzip2-compressed", id="bzip2"),
        pytest.param(lzma.compress(RANDOM), "xz-compressed", id="xz"),
        pytest.param(RANDOM, "compressed or encrypted", id="raw-bytes"),
    ],
)
def test_encoded_blob(value: str | bytes, kind: str) -> None:
    assert _blob_rules(value) == [(3, "encoded-blob", "medium")]
    tree = ast.parse(f"\n\nBLOB = {value!r}\n")
    (finding,) = inspection.scan_source("p.py", tree)
    unit = "byte" if isinstance(value, bytes) else "character"
    assert f"{len(value)}-{unit} literal that looks like {kind} data" in finding.message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(base64.b64encode(RANDOM[:750]).decode(), id="exactly-1000"),
        pytest.param("Plain prose is long, has spaces and low entropy. " * 30, id="prose"),
        pytest.param("a" * 5000, id="one-letter"),
        pytest.param("0123456789" * 200, id="digits"),  # a number, not hex
        pytest.param("x^" + "abc" * 500, id="zlib-lookalike"),  # a zlib header that won't inflate
        pytest.param("\u00e9\u4e2d" * 800, id="non-latin"),
        pytest.param("\n".join(f"opcode{i}Name" for i in range(200)), id="word-list"),
    ],
)
def test_long_literals_that_are_not_blobs(value: str) -> None:
    assert _blob_rules(value) == []


def test_decode_source_reports_what_python_would_read() -> None:
    assert inspection.decode_source("a.py", b"x = 1\n") == ("x = 1\n", None)
    assert inspection.decode_source("a.py", b"\xef\xbb\xbfx = 1\n") == ("x = 1\n", None)
    assert inspection.decode_source("a.py", b"# coding: ascii\nx = 1\n")[1] is None
    source, bad = inspection.decode_source("a.py", b"x = 1\ny = '\xff'\n")
    assert source == "x = 1\ny = '\ufffd'\n"
    assert bad is not None
    assert (bad.line, bad.rule, bad.severity) == (2, "non-utf8-source", "medium")
    source, cookie = inspection.decode_source("a.py", b"# coding: utf-7\nx = 1 +AAo-y = 2\n")
    assert source.splitlines()[1:] == ["x = 1 ", "y = 2"]
    assert cookie is not None
    assert (cookie.line, cookie.rule) == (1, "non-utf8-source")
    _, unknown = inspection.decode_source("a.py", b"# coding: no-such-codec\n")
    assert unknown is not None
    assert "does not know" in unknown.message


def test_a_byte_order_mark_is_not_a_syntax_error() -> None:
    tree, problem = inspection.parse_source("bom.py", "\ufeffimport ctypes\n")
    assert problem is None
    assert tree is not None
    assert [f.rule for f in inspection.scan_source("bom.py", tree)] == ["native-code"]


def test_private_key_finding_names_its_line() -> None:
    found = inspection.find_private_key("k.txt", b"a\nb\n-----BEGIN RSA PRIVATE KEY-----\n")
    assert found is not None
    assert (found.line, found.rule, found.severity) == (3, "private-key", "high")
