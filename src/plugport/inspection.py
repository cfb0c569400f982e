"""Static checks of a plugin's Python source, without importing or running any of it.

``plugport validate`` uses them to tell an author before publishing that the manifest and the
code agree and which constructs the sandbox will refuse; the registry's scanner builds on the
same rules. Every function here takes source text and returns findings.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ClassInfo",
    "Finding",
    "Severity",
    "find_class",
    "find_private_key",
    "module_candidates",
    "parse_source",
    "scan_source",
]

Severity = Literal["low", "medium", "high"]

# Imported module -> (rule, severity, why it matters inside the sandbox).
_RISKY_IMPORTS: dict[str, tuple[str, Severity, str]] = {
    "ctypes": ("native-code", "high", "loads native code; the sandbox forbids it"),
    "cffi": ("native-code", "high", "loads native code; the sandbox forbids it"),
    "subprocess": ("subprocess", "high", "starts programs; the sandbox refuses new processes"),
    "multiprocessing": ("subprocess", "medium", "forks processes; the sandbox refuses it"),
    "pty": ("subprocess", "high", "starts programs; the sandbox refuses new processes"),
    "socket": ("network", "high", "opens sockets; use self.api.net.fetch instead"),
    "ssl": ("network", "medium", "opens sockets; use self.api.net.fetch instead"),
    "urllib.request": ("network", "medium", "opens sockets; use self.api.net.fetch instead"),
    "http.client": ("network", "medium", "opens sockets; use self.api.net.fetch instead"),
    "requests": ("network", "medium", "opens sockets; use self.api.net.fetch instead"),
    "httpx": ("network", "medium", "opens sockets; use self.api.net.fetch instead"),
    "marshal": ("deserialization", "medium", "loads code objects from bytes"),
    "pickle": ("deserialization", "medium", "pickle runs code while loading"),
    "shelve": ("deserialization", "medium", "shelve is pickle underneath"),
    "importlib": ("dynamic-import", "low", "imports chosen at run time hide what the code does"),
}

# Called name -> (rule, severity, why).
_RISKY_CALLS: dict[str, tuple[str, Severity, str]] = {
    "eval": ("dynamic-code", "high", "runs code built at run time"),
    "exec": ("dynamic-code", "high", "runs code built at run time"),
    "compile": ("dynamic-code", "medium", "builds code at run time"),
    "__import__": (
        "dynamic-import",
        "medium",
        "imports chosen at run time hide what the code does",
    ),
    "os.system": ("subprocess", "high", "runs a shell; the sandbox refuses new processes"),
    "os.popen": ("subprocess", "high", "runs a shell; the sandbox refuses new processes"),
    "os.fork": ("subprocess", "high", "forks; the sandbox refuses new processes"),
    "os.forkpty": ("subprocess", "high", "forks; the sandbox refuses new processes"),
}
_RISKY_CALL_PREFIXES: dict[str, tuple[str, Severity, str]] = {
    "os.exec": ("subprocess", "high", "replaces the process; the sandbox refuses it"),
    "os.spawn": ("subprocess", "high", "starts programs; the sandbox refuses new processes"),
    "os.posix_spawn": ("subprocess", "high", "starts programs; the sandbox refuses new processes"),
}
_HANDLER_DECORATORS = {"hook": "hook", "command": "command", "on_event": "event"}


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


_PRIVATE_KEY_MARKERS = (b"PRIVATE KEY-----", b"-----BEGIN OPENSSH PRIVATE KEY")


def find_private_key(file: str, head: bytes) -> Finding | None:
    """A private key in a plugin would be published to everyone who downloads it."""
    if any(marker in head for marker in _PRIVATE_KEY_MARKERS):
        return Finding(
            file,
            1,
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


def parse_source(file: str, source: str) -> tuple[ast.Module | None, Finding | None]:
    """Parse ``source``; a syntax error becomes a finding instead of an exception."""
    try:
        return ast.parse(source, filename=file), None
    except SyntaxError as exc:
        line = exc.lineno or 1
        return None, Finding(file, line, "syntax-error", "high", f"syntax error: {exc.msg}")
    except ValueError as exc:  # e.g. NUL bytes in the source
        return None, Finding(file, 1, "syntax-error", "high", f"cannot parse: {exc}")


def scan_source(file: str, tree: ast.Module) -> list[Finding]:
    """Imports and calls that the sandbox will deny or that hide what the code does."""
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        for module in _imported_modules(node):
            rule = _RISKY_IMPORTS.get(module) or _RISKY_IMPORTS.get(module.split(".")[0])
            if rule:
                findings.append(
                    Finding(file, node.lineno, rule[0], rule[1], f"imports {module}: {rule[2]}")
                )
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            rule = _RISKY_CALLS.get(name) or next(
                (r for prefix, r in _RISKY_CALL_PREFIXES.items() if name.startswith(prefix)), None
            )
            if rule:
                findings.append(
                    Finding(file, node.lineno, rule[0], rule[1], f"calls {name}(): {rule[2]}")
                )
    unique = {(f.line, f.rule): f for f in reversed(findings)}  # one finding per rule per line
    return sorted(unique.values(), key=lambda f: (f.line, f.rule))


def find_class(tree: ast.Module, name: str) -> ClassInfo | None:
    """The top-level class ``name`` and the handlers its own body declares."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            handlers: dict[str, dict[str, int]] = {"hook": {}, "command": {}, "event": {}}
            priorities: dict[str, int] = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    for kind, handler_name, priority in _handlers(item):
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
            )
    return None


def _handlers(
    function: ast.FunctionDef | ast.AsyncFunctionDef,
) -> list[tuple[str, str, int | None]]:
    found: list[tuple[str, str, int | None]] = []
    for decorator in function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = _dotted(call.func if call else decorator).rsplit(".", 1)[-1]
        kind = _HANDLER_DECORATORS.get(target)
        if kind is None:
            continue
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
