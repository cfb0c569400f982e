"""What went wrong in the author's source, pointed at a file and a line: a manifest field (with
its TOML line when the text shows it), a syntax error (file:line:col), a settings file, or the
plugin failing to import in its worker (the line from the worker's traceback).

Pure functions over exceptions and text; the session prints what they return. No path outside
the plugin's directory and no Plugport frame ever reaches the author this way."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any, Literal

from plugport.errors import ManifestError, PluginCallError, PlugportError
from plugport.manifest import MANIFEST_FILENAME

__all__ = [
    "SourceProblem",
    "Stage",
    "from_call_error",
    "from_manifest_error",
    "from_syntax_error",
    "from_toml_error",
    "toml_line",
]

Stage = Literal["manifest", "syntax", "config", "import", "start"]


@dataclass(frozen=True)
class SourceProblem:
    """One problem, where it is (``file`` relative to the plugin; 0 when unknown) and what."""

    stage: Stage
    file: str
    message: str
    line: int = 0
    column: int = 0
    field: str = ""

    @property
    def where(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        subject = f"{self.field}: " if self.field else ""
        return f"{self.where}: {subject}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def toml_line(text: str, field: str) -> int:
    """The 1-based line of ``text`` that sets the dotted ``field`` (``permissions.storage``,
    ``contributes.hooks.greet``), or 0. Understands tables, dotted keys and inline tables as
    far as finding the line goes: the nearest line that names the field's deepest key that
    is written out, under the right table."""
    parts = [p for p in re.split(r"\.|\[\d+\]", field) if p]
    if not parts:
        return 0
    best, best_depth = 0, 0
    table: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _TABLE.match(raw):
            table = [p.strip().strip("\"'") for p in match.group(1).split(".")]
            depth = _common(table, parts)
            if depth == len(table) and depth > best_depth:
                best, best_depth = number, depth
            continue
        if match := _KEY.match(raw):
            key = [p.strip().strip("\"'") for p in match.group(1).split(".")]
            path = table + key
            depth = _common(path, parts)
            if depth == len(path) and depth > best_depth:
                best, best_depth = number, depth
            # An inline table on this line (``hooks = { greet = 0 }``) may hold the rest.
            rest = parts[len(path) :] if depth == len(path) else []
            inline = rest and re.search(rf"[{{,]\s*{re.escape(rest[0])}\s*=", raw)
            if inline and len(path) + 1 > best_depth:
                best, best_depth = number, len(path) + 1
    return best


def _common(path: list[str], parts: list[str]) -> int:
    count = 0
    for mine, wanted in zip(path, parts, strict=False):
        if mine != wanted:
            break
        count += 1
    return count


def from_manifest_error(error: ManifestError, text: str | None) -> list[SourceProblem]:
    """One problem per manifest finding, with its TOML line where ``text`` shows it."""
    problems = []
    for problem in error.problems:
        line = column = 0
        message = problem.message
        if not problem.path and (at := _TOML_AT.search(message)):
            line, column = int(at.group(1)), int(at.group(2))
        elif text is not None and problem.path:
            line = toml_line(text, problem.path)
        problems.append(
            SourceProblem("manifest", MANIFEST_FILENAME, message, line, column, problem.path)
        )
    return problems


def from_syntax_error(error: SyntaxError, file: str) -> SourceProblem:
    """``file:line:col: message`` as Python reports it (the column is 1-based)."""
    return SourceProblem(
        "syntax", file, error.msg or "invalid syntax", error.lineno or 0, error.offset or 0
    )


def from_toml_error(error: tomllib.TOMLDecodeError, file: str, stage: Stage) -> SourceProblem:
    """A TOML file that does not parse, at the line and column tomllib names."""
    message = str(error)
    line = column = 0
    if at := _TOML_AT.search(message):
        line, column = int(at.group(1)), int(at.group(2))
        message = message[: at.start()].rstrip()
    return SourceProblem(stage, file, message, line, column)


_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.MULTILINE)


def from_call_error(error: PlugportError) -> SourceProblem:
    """A worker that could not start the plugin: the last frame in the plugin's own files
    (tracebacks reach the host already trimmed to them, paths relative to the plugin)."""
    if isinstance(error, PluginCallError) and error.traceback:
        frames = _FRAME.findall(error.traceback)
        if frames:
            file, line = frames[-1]
            return SourceProblem("import", file, str(error), int(line))
    return SourceProblem("import", "", str(error))
