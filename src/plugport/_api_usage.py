"""Which capabilities a plugin's code reaches, read from its AST without importing or running it.

A plugin reaches the host only through ``self.api.<capability>.<method>(...)`` (or the blocking
``self.api.sync.<capability>.<method>(...)``, also through local aliases such as
``api = self.api``) and receives events through ``@on_event(topic)``. This module finds those
uses, with file, line and the literal argument that decides a grant (the ``events.publish``
topic, the ``net.fetch`` URL, the ``tasks.submit`` type) or names a contribution (the surface
``ui.invalidate`` names) when the code spells it out; deciding them against a manifest is the
caller's job (:mod:`plugport.checks`, with the broker's own rule). Pure: AST in, data out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ApiUse", "EventHandler", "find_api_uses", "find_event_handlers"]

_Function = ast.FunctionDef | ast.AsyncFunctionDef
# The literal argument that decides the grant, by (capability, method): (position, keyword).
_DECIDING_ARGUMENT = {
    ("events", "publish"): (0, "topic"),
    ("net", "fetch"): (0, "url"),
    ("secrets", "sign"): (0, "name"),
    ("secrets", "reveal"): (0, "name"),
    ("tasks", "submit"): (0, "task_type"),
    # not a grant but a contribution: the surface must be one the manifest contributes
    ("ui", "invalidate"): (0, "surface_id"),
    ("ui", "update_widget"): (0, "widget_id"),
}


@dataclass(frozen=True, slots=True)
class ApiUse:
    """``self.api.<capability>.<method>`` at ``file:line``. ``argument`` is the topic, URL,
    secret name, task type or UI surface id when the code gives it literally (for a URL:
    enough of it to know the host), else None."""

    file: str
    line: int
    capability: str
    method: str
    argument: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def call(self) -> str:
        shown = f"{self.argument!r}" if self.argument is not None else "..."
        return f"self.api.{self.capability}.{self.method}({shown})"


@dataclass(frozen=True, slots=True)
class EventHandler:
    """``@on_event(topic)`` at ``file:line``, with a literal topic pattern."""

    file: str
    line: int
    topic: str


def find_api_uses(file: str, tree: ast.Module) -> list[ApiUse]:
    """Every reference to a capability method, in source order; a call through an alias
    (``fetch = self.api.net.fetch`` ... ``fetch(url)``) counts at both places."""
    constants = _module_constants(tree)
    found: dict[tuple[int, int, int], ApiUse] = {}
    for function in _top_functions(tree.body):
        _scan_function(function, {}, constants, file, found)
    return [found[key] for key in sorted(found)]


def find_event_handlers(file: str, tree: ast.Module) -> list[EventHandler]:
    """``@on_event("topic")`` decorators anywhere in the file (the topic given literally)."""
    handlers = []
    for node in ast.walk(tree):
        if not isinstance(node, _Function):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and _name_of(decorator.func) == "on_event"
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
                and isinstance(decorator.args[0].value, str)
            ):
                handlers.append(EventHandler(file, node.lineno, decorator.args[0].value))
    return sorted(handlers, key=lambda h: h.line)


# --- the walk ------------------------------------------------------------------------------------

# An alias maps a local name to the attribute chain it holds below ``self.api``: ``[]`` for
# ``api = self.api``, ``["storage"]`` for ``store = self.api.storage``.
_Aliases = dict[str, list[str]]


def _top_functions(body: list[ast.stmt]) -> Iterator[_Function]:
    for node in body:
        if isinstance(node, _Function):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from _top_functions(node.body)


def _scan_function(
    function: _Function,
    outer: _Aliases,
    constants: dict[str, str],
    file: str,
    found: dict[tuple[int, int, int], ApiUse],
) -> None:
    own, nested = _own_nodes(function)
    aliases = dict(outer)
    calls = {id(node.func): node for node in own if isinstance(node, ast.Call)}
    for node in own:  # in source order, so that a name means what it holds at that point
        target, value = _assignment(node)
        if target is not None and value is not None:
            chain = _chain(value, aliases)
            if chain is not None:
                aliases[target] = chain
            else:
                aliases.pop(target, None)  # rebound to something else
            continue
        if not isinstance(node, ast.Attribute | ast.Name) or not isinstance(node.ctx, ast.Load):
            continue
        chain = _chain(node, aliases)
        if chain is None:
            continue
        if chain[:1] == ["sync"]:
            chain = chain[1:]
        if len(chain) != 2:
            continue
        capability, method = chain
        call = calls.get(id(node))
        argument = _deciding_argument(capability, method, call, constants) if call else None
        found[node.lineno, node.col_offset, node.end_col_offset or 0] = ApiUse(
            file, node.lineno, capability, method, argument
        )
    for inner in nested:
        _scan_function(inner, aliases, constants, file, found)


def _own_nodes(function: _Function) -> tuple[list[ast.AST], list[_Function]]:
    """The nodes of ``function``'s own body, and the functions nested in it (scanned apart,
    each seeing the aliases of the function around it)."""
    own: list[ast.AST] = []
    nested: list[_Function] = []
    stack: list[ast.AST] = [*function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, _Function):
            nested.append(node)
            continue
        if isinstance(node, ast.ClassDef):
            nested.extend(_top_functions(node.body))
            continue
        own.append(node)
        stack.extend(ast.iter_child_nodes(node))
    own.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    return own, nested


def _assignment(node: ast.AST) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), node.value
    if isinstance(node, ast.AnnAssign | ast.NamedExpr) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _chain(node: ast.AST, aliases: _Aliases) -> list[str] | None:
    """The attributes below ``self.api`` that ``node`` names, or None if it is not below it."""
    if isinstance(node, ast.Name):
        held = aliases.get(node.id)
        return None if held is None else list(held)
    if not isinstance(node, ast.Attribute):
        return None
    if node.attr == "api" and isinstance(node.value, ast.Name) and node.value.id == "self":
        return []
    base = _chain(node.value, aliases)
    return None if base is None else [*base, node.attr]


def _deciding_argument(
    capability: str, method: str, call: ast.Call, constants: dict[str, str]
) -> str | None:
    place = _DECIDING_ARGUMENT.get((capability, method))
    if place is None:
        return None
    position, keyword = place
    node = next((k.value for k in call.keywords if k.arg == keyword), None)
    if node is None and len(call.args) > position:
        node = call.args[position]
    if node is None:
        return None
    text, complete = _literal_prefix(node, constants)
    if complete:
        return text
    if capability == "net":  # a URL prefix tells the host once the host part has ended
        _, scheme_sep, rest = text.partition("://")
        if scheme_sep and any(mark in rest for mark in "/?#"):
            return text
    return None


def _literal_prefix(node: ast.expr, constants: dict[str, str]) -> tuple[str, bool]:
    """The text ``node`` certainly starts with, and whether that is all of it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id], True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, left_complete = _literal_prefix(node.left, constants)
        if not left_complete:
            return left, False
        right, right_complete = _literal_prefix(node.right, constants)
        return left + right, right_complete
    if isinstance(node, ast.JoinedStr):
        return _fstring_prefix(node)
    return "", False


def _fstring_prefix(node: ast.JoinedStr) -> tuple[str, bool]:
    text = ""
    for part in node.values:
        if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
            return text, False
        text += part.value
    return text, True


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound once to a string literal (``TOPIC = "tasks.done"``)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target is not None and value is not None:
            bound.setdefault(target, []).append(value)
    return {
        name: values[0].value
        for name, values in bound.items()
        if len(values) == 1
        and isinstance(values[0], ast.Constant)
        and isinstance(values[0].value, str)
    }


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""
