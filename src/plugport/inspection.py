"""Static checks of a plugin's Python source, without importing or running any of it.

``plugport validate`` uses them to tell an author before publishing that the manifest and the
code agree and which constructs the sandbox will refuse; the registry's upload scan
(``plugport.registry.scanner``) applies the same rules. Every function here takes source bytes
or text and returns findings, without I/O.
"""

from __future__ import annotations

import ast
import codecs
import io
import math
import re
import tokenize
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "SEVERITIES",
    "ClassInfo",
    "Finding",
    "Severity",
    "decode_source",
    "find_class",
    "find_private_key",
    "module_candidates",
    "parse_source",
    "scan_source",
]

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")  # most serious first
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}

_NO_PROCESSES = "the sandbox refuses new processes"
_NO_NETWORK = "the sandbox has no network; use self.api.net.fetch instead"
_HIDDEN_IMPORT = "imports chosen at run time hide what the code does from the scanner and review"
_RUNS_ON_LOAD = "loading runs code chosen by whoever wrote the bytes"

# Imported module (or a dotted prefix of it) -> (rule, severity, why it matters in the sandbox).
_RISKY_IMPORTS: dict[str, tuple[str, Severity, str]] = {
    "ctypes": ("native-code", "high", "loads native code; the sandbox forbids it"),
    "cffi": ("native-code", "high", "loads native code; the sandbox forbids it"),
    "subprocess": ("subprocess", "high", f"starts programs; {_NO_PROCESSES}"),
    "multiprocessing": ("subprocess", "medium", "forks processes; the sandbox refuses it"),
    "pty": ("subprocess", "high", f"starts programs; {_NO_PROCESSES}"),
    "socket": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "_socket": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "socketserver": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "ssl": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "urllib.request": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "http.client": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "http.server": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "ftplib": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "smtplib": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "poplib": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "imaplib": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "telnetlib": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "xmlrpc.client": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "requests": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "httpx": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "urllib3": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "aiohttp": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "websockets": ("network", "medium", f"opens sockets; {_NO_NETWORK}"),
    "marshal": ("deserialization", "medium", "loads code objects from bytes"),
    "pickle": ("deserialization", "medium", "pickle runs code while loading"),
    "_pickle": ("deserialization", "medium", "pickle runs code while loading"),
    "shelve": ("deserialization", "medium", "shelve is pickle underneath"),
    "dill": ("deserialization", "medium", "dill is pickle underneath"),
    "cloudpickle": ("deserialization", "medium", "cloudpickle is pickle underneath"),
    "importlib": ("dynamic-import", "low", "imports chosen at run time hide what the code does"),
    "importlib.util": (
        "dynamic-import",
        "medium",
        f"loads modules from anywhere; {_HIDDEN_IMPORT}",
    ),
    "importlib.machinery": (
        "dynamic-import",
        "medium",
        f"loads modules from anywhere; {_HIDDEN_IMPORT}",
    ),
}

# Called name, after import aliases are resolved -> (rule, severity, why).
_RISKY_CALLS: dict[str, tuple[str, Severity, str]] = {
    "eval": ("dynamic-code", "high", "runs code built at run time, which no review has seen"),
    "exec": ("dynamic-code", "high", "runs code built at run time, which no review has seen"),
    "compile": (
        "dynamic-code",
        "high",
        "builds code at run time, which no review has seen; the result runs without eval",
    ),
    "__import__": ("dynamic-import", "medium", _HIDDEN_IMPORT),
    "importlib.__import__": ("dynamic-import", "medium", _HIDDEN_IMPORT),
    "os.system": ("subprocess", "high", f"runs a shell; {_NO_PROCESSES}"),
    "os.popen": ("subprocess", "high", f"runs a shell; {_NO_PROCESSES}"),
    "os.fork": ("subprocess", "high", f"forks; {_NO_PROCESSES}"),
    "os.forkpty": ("subprocess", "high", f"forks; {_NO_PROCESSES}"),
    "asyncio.create_subprocess_exec": ("subprocess", "high", f"starts programs; {_NO_PROCESSES}"),
    "asyncio.create_subprocess_shell": ("subprocess", "high", f"runs a shell; {_NO_PROCESSES}"),
    "asyncio.open_connection": ("network", "medium", f"opens a socket; {_NO_NETWORK}"),
    "asyncio.open_unix_connection": ("network", "medium", f"opens a socket; {_NO_NETWORK}"),
    "asyncio.start_server": ("network", "medium", f"listens on a socket; {_NO_NETWORK}"),
    "asyncio.start_unix_server": ("network", "medium", f"listens on a socket; {_NO_NETWORK}"),
    **{
        f"{module}.{function}": ("deserialization", "high", _RUNS_ON_LOAD)
        for module in ("pickle", "_pickle", "dill", "cloudpickle")
        for function in ("load", "loads", "Unpickler")
    },
    "marshal.load": ("deserialization", "high", f"builds code objects; {_RUNS_ON_LOAD}"),
    "marshal.loads": ("deserialization", "high", f"builds code objects; {_RUNS_ON_LOAD}"),
    "shelve.open": ("deserialization", "high", f"shelve is pickle underneath; {_RUNS_ON_LOAD}"),
}
_RISKY_CALL_PREFIXES: dict[str, tuple[str, Severity, str]] = {
    "os.exec": ("subprocess", "high", "replaces the process; the sandbox refuses it"),
    "os.spawn": ("subprocess", "high", f"starts programs; {_NO_PROCESSES}"),
    "os.posix_spawn": ("subprocess", "high", f"starts programs; {_NO_PROCESSES}"),
}
_IMPORT_BY_NAME = {"importlib.import_module"}
_SYS_MODULES_WRITERS = {
    f"sys.modules.{method}"
    for method in ("update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__")
}
_SYS_MODULES_WHY = "swapping modules changes what every later import returns, unseen by review"
_REFLECTION_CALLS = {"getattr", "setattr", "delattr"}
_BUILTINS = {"builtins", "__builtins__"}
# Attributes that lead from any object to globals, builtins or every loaded class; names only a
# sandbox escape or scanner evasion needs.
_GADGETS = {"__subclasses__", "__globals__", "__builtins__", "__code__", "f_globals", "f_builtins"}
_GADGET_WHY = (
    "a sandbox-escape gadget: it reaches functions and modules without naming them, past "
    "the scanner and the reviewer"
)
_HANDLER_DECORATORS = {
    "hook": "hook",
    "command": "command",
    "on_event": "event",
    "webhook": "webhook",
    "task": "task",
    **dict.fromkeys(("widget", "page", "menu_item", "field", "view"), "ui"),
}

_BLOB_MIN_CHARS = 1000  # longer than this and it no longer reads as a key, hash or test vector
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_WHITESPACE = re.compile(r"\s+")
_MIN_LINE_CHARS = 32  # encoders wrap at 60 to 76 characters, if at all
# Entropy thresholds in bits per character, well below random data in each encoding (base64
# about 6, base85 about 6.3, compressed bytes about 7.8) and above prose and code.
_BASE64_BITS = 4.5
_BASE85_BITS = 5.5
_BINARY_BITS = 7.0
_COMPRESSION_MAGICS = {
    "gzip": re.compile(rb"\A\x1f\x8b\x08"),
    "bzip2": re.compile(rb"\ABZh[1-9]1AY&SY"),
    "xz": re.compile(rb"\A\xfd7zXZ\x00"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about a file: where, which rule, how serious, and why it matters."""

    file: str
    line: int
    rule: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """What the static check learns about the entry class."""

    name: str
    line: int
    bases: tuple[str, ...]
    hooks: dict[str, int]  # hook name -> line
    commands: dict[str, int]  # command id -> line
    events: dict[str, int]  # topic pattern -> line
    hook_priorities: dict[str, int] = field(default_factory=dict)  # literal @hook(priority=N)
    webhooks: dict[str, int] = field(default_factory=dict)  # webhook endpoint -> line
    tasks: dict[str, int] = field(default_factory=dict)  # task type -> line
    ui: dict[str, tuple[str, int]] = field(default_factory=dict)
    """UI surface id -> (``widget``, ``page``, ``menu_item``, ``field`` or ``view``: the
    decorator that names it, line)."""


_PRIVATE_KEY_MARKERS = (b"PRIVATE KEY-----", b"-----BEGIN OPENSSH PRIVATE KEY")


def find_private_key(file: str, head: bytes) -> Finding | None:
    """A private key in a plugin would be published to everyone who downloads it."""
    found = [i for i in (head.find(marker) for marker in _PRIVATE_KEY_MARKERS) if i >= 0]
    if found:
        return Finding(
            file,
            head.count(b"\n", 0, min(found)) + 1,
            "private-key",
            "high",
            "holds a private key; it would be published with the plugin. Move it out of the "
            "plugin directory or list it in .plugportignore",
        )
    return None


def module_candidates(module: str) -> list[str]:
    """Relative files that could hold ``module``, in the order Python would try them."""
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def decode_source(file: str, data: bytes) -> tuple[str, Finding | None]:
    """The text Python would run from ``data``, and a finding when that is not plain UTF-8.

    A coding declaration makes Python read other text than editors and review tools show
    (``# coding: utf-7`` turns ``+AAo-`` into a line break), so the rules scan the text as
    Python decodes it and the declaration itself is reported.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:  # an unknown codec, or bytes in the first two lines that are not UTF-8
        encoding = "utf-8"
        unknown_codec = True
    else:
        unknown_codec = False
    codec = codecs.lookup(encoding).name
    if codec not in {"utf-8", "utf-8-sig", "ascii"}:  # ASCII text reads the same as UTF-8
        try:
            source = data.decode(encoding, errors="replace")
        except LookupError:  # a codec Python refuses for source, such as rot13
            source = data.decode("utf-8", errors="replace")
        why = f"declares the source encoding {encoding!r}: Python then runs other text than "
        return source, Finding(
            file,
            1,
            "non-utf8-source",
            "medium",
            why + "editors and review tools show; save it as UTF-8 without a coding line",
        )
    try:
        source = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return data.decode(encoding, errors="replace"), Finding(
            file,
            data.count(b"\n", 0, exc.start) + 1,
            "non-utf8-source",
            "medium",
            f"is not valid {'ASCII' if codec == 'ascii' else 'UTF-8'} (byte {exc.start}): "
            "Python refuses to import it, and tools show it differently; save it as UTF-8",
        )
    if unknown_codec:
        return source, Finding(
            file,
            1,
            "non-utf8-source",
            "medium",
            "declares a source encoding Python does not know, so Python refuses to import it; "
            "save it as UTF-8 without a coding line",
        )
    return source, None


def parse_source(file: str, source: str) -> tuple[ast.Module | None, Finding | None]:
    """Parse ``source``; a syntax error becomes a finding instead of an exception."""
    try:
        # Python reads a file that starts with a UTF-8 byte order mark; ast.parse on str does not.
        return ast.parse(source.removeprefix("\ufeff"), filename=file), None
    except SyntaxError as exc:
        line = exc.lineno or 1
        return None, Finding(file, line, "syntax-error", "high", f"syntax error: {exc.msg}")
    except ValueError as exc:  # e.g. NUL bytes in the source
        return None, Finding(file, 1, "syntax-error", "high", f"cannot parse: {exc}")


def scan_source(file: str, tree: ast.Module) -> list[Finding]:
    """Constructs that the sandbox will deny, that reach past it, or that hide what the code does
    from the scanner and the reviewer; the most serious finding per rule and line."""
    names = _ImportNames.of(tree)
    best: dict[tuple[int, str], Finding] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        for rule, severity, message in _node_rules(node, names):
            finding = Finding(file, node.lineno, rule, severity, message)
            kept = best.get((finding.line, rule))
            if kept is None or _RANK[severity] < _RANK[kept.severity]:
                best[(finding.line, rule)] = finding
    return sorted(best.values(), key=lambda f: (f.line, f.rule))


@dataclass(frozen=True, slots=True)
class _ImportNames:
    """What the names bound by import statements stand for, so that ``from os import system``
    followed by ``system()`` is read as ``os.system()``."""

    aliases: dict[str, str]  # local name -> dotted name it was imported as
    modules: frozenset[str]  # local names that certainly hold a module (``import x [as y]``)

    @classmethod
    def of(cls, tree: ast.Module) -> _ImportNames:
        aliases: dict[str, str] = {}
        modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    modules.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name != "*":
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        return cls(aliases, frozenset(modules))

    def resolve(self, node: ast.expr) -> str:
        """The dotted name ``node`` refers to, ``builtins.`` dropped; ``""`` if not a name."""
        head, dot, rest = _dotted(node).partition(".")
        if not head:
            return ""
        name = self.aliases.get(head, head) + dot + rest
        return name.removeprefix("builtins.")

    def is_module(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Call):  # getattr(__import__("os"), name)
            return self.resolve(node.func) in {"__import__", *_IMPORT_BY_NAME}
        if isinstance(node, ast.Subscript):  # getattr(sys.modules["os"], name)
            return self.resolve(node.value) == "sys.modules"
        head = _dotted(node).split(".")[0]
        return head in self.modules or head in _BUILTINS


_Rule = tuple[str, Severity, str]


def _node_rules(node: ast.stmt | ast.expr, names: _ImportNames) -> list[_Rule]:
    found: list[_Rule] = []
    for module in _imported_modules(node):
        rule = _risky_name(module.removeprefix("builtins.")) or _lookup_import(module)
        if rule:
            found.append((rule[0], rule[1], f"imports {module}: {rule[2]}"))
    if isinstance(node, ast.Call):
        found += _call_rules(node, names)
    elif isinstance(node, ast.Attribute | ast.Subscript | ast.Name):
        found += _access_rules(node, names)
    elif isinstance(node, ast.Constant):
        blob = _encoded_blob(node.value)
        if blob:
            found.append(("encoded-blob", "medium", blob))
        if node.value in _GADGETS:
            found.append(("escape-gadget", "medium", f"names {node.value!r}: {_GADGET_WHY}"))
    return found


def _lookup_import(module: str) -> _Rule | None:
    """The rule for ``module`` or for its longest dotted prefix that has one."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        rule = _RISKY_IMPORTS.get(".".join(parts[:end]))
        if rule:
            return rule
    return None


def _risky_name(name: str) -> _Rule | None:
    return _RISKY_CALLS.get(name) or next(
        (r for prefix, r in _RISKY_CALL_PREFIXES.items() if name.startswith(prefix)), None
    )


def _call_rules(node: ast.Call, names: _ImportNames) -> list[_Rule]:
    name = names.resolve(node.func)
    found: list[_Rule] = []
    rule = _risky_name(name)
    if rule:
        found.append((rule[0], rule[1], f"calls {name}(): {rule[2]}"))
    if name in _IMPORT_BY_NAME and not (node.args and _is_str(node.args[0])):
        found.append(
            ("dynamic-import", "medium", f"calls {name}() with a computed name: {_HIDDEN_IMPORT}")
        )
    if name in _SYS_MODULES_WRITERS:
        found.append(("dynamic-import", "medium", f"calls {name}(): {_SYS_MODULES_WHY}"))
    if (
        name in _REFLECTION_CALLS
        and len(node.args) >= 2
        and not _is_str(node.args[1])
        and names.is_module(node.args[0])
    ):
        found.append(
            (
                "dynamic-attribute",
                "medium",
                f"calls {name}() on a module with a computed name: it hides which function is "
                "used, from the scanner and the reviewer",
            )
        )
    return found


def _access_rules(
    node: ast.Attribute | ast.Subscript | ast.Name, names: _ImportNames
) -> list[_Rule]:
    found: list[_Rule] = []
    if isinstance(node, ast.Subscript):
        if not isinstance(node.ctx, ast.Load) and names.resolve(node.value) == "sys.modules":
            found.append(("dynamic-import", "medium", f"writes to sys.modules: {_SYS_MODULES_WHY}"))
        return found
    gadget = node.id if isinstance(node, ast.Name) else node.attr
    if gadget in _GADGETS:
        found.append(("escape-gadget", "medium", f"uses {gadget}: {_GADGET_WHY}"))
    name = names.resolve(node)
    if not isinstance(node.ctx, ast.Load):
        if name == "sys.modules":
            found.append(("dynamic-import", "medium", f"replaces sys.modules: {_SYS_MODULES_WHY}"))
        return found
    # A risky function passed around instead of called (``run = os.system``) is just as risky;
    # when it is called here, the call's finding for the same line and rule is kept instead.
    rule = _risky_name(name)
    if rule:
        found.append((rule[0], rule[1], f"refers to {name}: {rule[2]}"))
    if name in {"importlib.util", "importlib.machinery"}:
        found.append(
            (
                "dynamic-import",
                "medium",
                f"uses {name}: loads modules from anywhere; {_HIDDEN_IMPORT}",
            )
        )
    return found


def _is_str(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _encoded_blob(value: object) -> str | None:
    """Why a long string or bytes literal looks like an encoded payload, or None."""
    if not isinstance(value, str | bytes) or len(value) <= _BLOB_MIN_CHARS:
        return None
    kind = _blob_kind(value)
    if kind is None:
        return None
    unit = "byte" if isinstance(value, bytes) else "character"
    return (
        f"{len(value)}-{unit} literal that looks like {kind}: a payload that no reviewer can "
        "read, usually decoded and run at run time; ship data as a file, code as source"
    )


def _blob_kind(value: str | bytes) -> str | None:
    if isinstance(value, bytes):
        return _binary_kind(value) or _text_kind(value.decode("latin-1"))
    try:
        raw = value.encode("latin-1")  # compressed bytes hidden in a str with escapes
    except UnicodeEncodeError:
        raw = b""
    return _binary_kind(raw) or _text_kind(value)


def _binary_kind(raw: bytes) -> str | None:
    kind = next((k for k, magic in _COMPRESSION_MAGICS.items() if magic.match(raw)), None)
    if kind or _is_zlib_stream(raw):
        return f"{kind or 'zlib'}-compressed data"
    if raw and _entropy(raw) >= _BINARY_BITS:  # beyond any text encoding (base85 tops at 6.4)
        return "compressed or encrypted data"
    return None


def _text_kind(text: str) -> str | None:
    compact = _WHITESPACE.sub("", text)
    if len(compact) < _MIN_LINE_CHARS * len(text.split()):
        return None  # short words between spaces or line breaks: a word list, not wrapped data
    if _HEX.fullmatch(compact) and len(set(compact.lower())) > 10:  # not just digits
        return "hex-encoded data"
    if _BASE64.fullmatch(compact) and _entropy(compact) >= _BASE64_BITS:
        return "base64-encoded data"
    printable = all(33 <= ord(c) <= 126 for c in compact)
    return "base85-encoded data" if printable and _entropy(compact) >= _BASE85_BITS else None


def _is_zlib_stream(raw: bytes) -> bool:
    # Two header bytes match by chance for some text ("x^"), so the start must also inflate.
    if len(raw) < 2 or raw[0] & 0x0F != 8 or (raw[0] << 8 | raw[1]) % 31:
        return False
    try:
        zlib.decompressobj().decompress(raw[:4096], 1024)
    except zlib.error:
        return False
    return True


def _entropy(symbols: str | bytes) -> float:
    """Shannon entropy in bits per symbol."""
    total = len(symbols)
    counts = Counter(symbols).values()
    return -sum(n / total * math.log2(n / total) for n in counts)


def find_class(tree: ast.Module, name: str) -> ClassInfo | None:
    """The top-level class ``name`` and the handlers its own body declares."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            handlers: dict[str, dict[str, int]] = {
                "hook": {},
                "command": {},
                "event": {},
                "webhook": {},
                "task": {},
            }
            priorities: dict[str, int] = {}
            ui: dict[str, tuple[str, int]] = {}
            constants = _string_constants(tree)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    for kind, handler_name, priority in _handlers(item, constants):
                        if kind in _UI_DECORATORS:
                            ui.setdefault(handler_name, (kind, item.lineno))
                            continue
                        handlers[kind].setdefault(handler_name, item.lineno)
                        if priority is not None:
                            priorities.setdefault(handler_name, priority)
            return ClassInfo(
                name=name,
                line=node.lineno,
                bases=tuple(_dotted(b) for b in node.bases),
                hooks=handlers["hook"],
                commands=handlers["command"],
                events=handlers["event"],
                hook_priorities=priorities,
                webhooks=handlers["webhook"],
                tasks=handlers["task"],
                ui=ui,
            )
    return None


_UI_DECORATORS = {d for d, kind in _HANDLER_DECORATORS.items() if kind == "ui"}


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound once, to a string literal (``WIDGET_ID = "acme.counter"``),
    so that ``@widget(WIDGET_ID)`` names its surface as plainly as a literal does."""
    bound: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            bound.setdefault(target.id, []).append(value)
    return {
        name: values[0].value
        for name, values in bound.items()
        if len(values) == 1
        and isinstance(values[0], ast.Constant)
        and isinstance(values[0].value, str)
    }


def _handlers(
    function: ast.FunctionDef | ast.AsyncFunctionDef, constants: dict[str, str] | None = None
) -> list[tuple[str, str, int | None]]:
    """``(kind, name, priority)`` per handler decorator; a UI decorator's kind is its own name
    (``widget``, ``page`` ...), so a widget's id cannot be answered by a ``@page``."""
    found: list[tuple[str, str, int | None]] = []
    for decorator in function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = _dotted(call.func if call else decorator).rsplit(".", 1)[-1]
        kind = _HANDLER_DECORATORS.get(target)
        if kind is None:
            continue
        if kind == "ui":
            kind = target
        first = call.args[0] if call and call.args else None
        priority = next(
            (
                k.value.value
                for k in (call.keywords if call else [])
                if k.arg == "priority"
                and isinstance(k.value, ast.Constant)
                and type(k.value.value) is int
            ),
            None,
        )
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((kind, first.value, priority))
        elif isinstance(first, ast.Name) and first.id in (constants or {}):
            found.append((kind, (constants or {})[first.id], priority))
        elif kind == "hook" and first is None:
            found.append((kind, function.name, priority))
    return found


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` for a name or attribute chain, ``""`` for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""
