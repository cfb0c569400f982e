"""Reading the plugin's source as dev needs it: the manifest (validated), its Python files
(byte-compiled in memory, so a syntax error is caught before the running version is touched),
the ``--config`` settings file, and a staged copy of exactly the files ``plugport pack`` would
ship, which is what the worker runs.

Why a staged copy and not the source directory itself: the worker then sees what an installed
archive would hold (no tests, no dev state, no ``.git``), a file the editor is half-way through
writing is never imported, and the copy is readable by the plugin's own uid however the
author's directory is set."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugport import archive
from plugport.dev._problems import (
    SourceProblem,
    from_manifest_error,
    from_syntax_error,
    from_toml_error,
)
from plugport.errors import ArchiveError, InvalidInputError, ManifestError
from plugport.manifest import MANIFEST_FILENAME, Manifest, parse_manifest_bytes
from plugport.runtime.capabilities.config import settings_problems

__all__ = ["SourceProblems", "SourceTree", "load_settings_file"]


class SourceProblems(InvalidInputError):
    """The source cannot run as it is; ``problems`` says where and why."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class SourceTree:
    """The plugin directory, and what dev last found good in it."""

    root: Path
    compiled: dict[str, tuple[int, int]] = field(default_factory=dict)
    """relative path -> (mtime_ns, size) of the last version of each file that compiled."""

    def read_manifest(self) -> Manifest:
        """The validated manifest, or :class:`SourceProblems` with the field and TOML line."""
        file = self.root / MANIFEST_FILENAME
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            problem = SourceProblem(
                "manifest",
                MANIFEST_FILENAME,
                f"no {MANIFEST_FILENAME} in {self.root}; is this a plugin directory?",
            )
            raise SourceProblems([problem]) from None
        except OSError as exc:
            problem = SourceProblem("manifest", MANIFEST_FILENAME, f"cannot read: {exc.strerror}")
            raise SourceProblems([problem]) from None
        try:
            return parse_manifest_bytes(raw, source=str(file))
        except ManifestError as exc:
            text = raw.decode("utf-8", errors="replace")
            raise SourceProblems(from_manifest_error(exc, text)) from None

    def files(self) -> list[str]:
        """What ``plugport pack`` would ship (its ignore rules and ``.plugportignore``)."""
        try:
            return archive.iter_source_files(self.root)
        except ArchiveError as exc:
            problem = SourceProblem("start", getattr(exc, "member", "") or "", str(exc))
            raise SourceProblems([problem]) from None

    def compile_changed(self, files: list[str]) -> list[str]:
        """Byte-compile (in memory) every ``.py`` file changed since it last compiled; returns
        those compiled. Raises :class:`SourceProblems` with every syntax error found; the files
        that did compile are remembered either way."""
        problems: list[SourceProblem] = []
        done: list[str] = []
        for relative in files:
            if not relative.endswith(".py"):
                continue
            path = self.root / relative
            try:
                info = path.stat()
                stamp = (info.st_mtime_ns, info.st_size)
                if self.compiled.get(relative) == stamp:
                    continue
                source = path.read_bytes()
            except FileNotFoundError:
                continue  # deleted while we looked: the next event says so
            try:
                compile(source, relative, "exec", dont_inherit=True)
            except SyntaxError as exc:
                problems.append(from_syntax_error(exc, relative))
                continue
            except ValueError as exc:  # NUL bytes
                problems.append(SourceProblem("syntax", relative, str(exc)))
                continue
            self.compiled[relative] = stamp
            done.append(relative)
        if problems:
            raise SourceProblems(problems)
        return done

    def stage(self, files: list[str], dest: Path) -> Path:
        """Copy ``files`` into ``dest`` (a new directory), readable by any uid."""
        dest.mkdir(parents=True, mode=0o755)
        os.chmod(dest, 0o755)  # noqa: S103 - whatever the umask: the plugin's uid reads it
        for relative in files:
            target = dest / relative
            parent = target.parent
            if not parent.is_dir():
                parent.mkdir(parents=True, exist_ok=True)
                for made in [parent, *parent.parents]:
                    if made == dest:
                        break
                    os.chmod(made, 0o755)  # noqa: S103 - code the plugin's uid reads
            shutil.copyfile(self.root / relative, target)
            os.chmod(target, 0o644)
        return dest


def load_settings_file(path: Path, schema: dict[str, Any]) -> dict[str, Any]:
    """The settings in a TOML or JSON file, checked against the manifest's ``config`` schema;
    :class:`SourceProblems` naming the file (and line for syntax) otherwise."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = SourceProblem("config", shown, f"cannot read the settings file: {exc.strerror}")
        raise SourceProblems([problem]) from None
    values: Any
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(raw)
        except ValueError as exc:
            line = getattr(exc, "lineno", 0)
            column = getattr(exc, "colno", 0)
            message = getattr(exc, "msg", str(exc))
            raise SourceProblems([SourceProblem("config", shown, message, line, column)]) from None
    else:
        try:
            values = tomllib.loads(raw.decode("utf-8", errors="replace"))
        except tomllib.TOMLDecodeError as exc:
            raise SourceProblems([from_toml_error(exc, shown, "config")]) from None
    try:
        problems = settings_problems(schema, values)
    except InvalidInputError as exc:
        raise SourceProblems([SourceProblem("config", MANIFEST_FILENAME, str(exc))]) from None
    if problems:
        raise SourceProblems([SourceProblem("config", shown, p) for p in problems])
    if not isinstance(values, dict):  # settings_problems refuses it already; for the types
        raise SourceProblems([SourceProblem("config", shown, "settings must be an object")])
    return values
