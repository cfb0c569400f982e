"""Which file events ``plugport dev`` reacts to, and what each batch of them asks for, decided
from paths alone: the watcher (``_runner``) feeds events in, the session acts on the answer.

The rule it protects: dev's own state, caches, editor swap files and build output never trigger
a reload (a reload writes some of them, and reacting to those would loop forever)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from plugport.manifest import MANIFEST_FILENAME

__all__ = ["DEV_HOME_NAME", "IGNORED_DIRS", "IGNORED_FILES", "Changes", "classify", "ignored"]

DEV_HOME_NAME = ".plugport-dev"
"""The default dev home, inside the plugin's directory (``plugport pack`` leaves it out)."""

IGNORED_DIRS = frozenset(
    {
        DEV_HOME_NAME,
        "__pycache__",
        ".git",
        ".hg",
        "dist",
        "build",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "node_modules",
    }
)
IGNORED_FILES = (
    "*.pyc",
    "*.pyo",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",  # vim's "can I write here" probe
    ".DS_Store",
    "*.plugport",
    "*.plugport.sig",
    "*.tmp",
)


def ignored(relative: str | PurePosixPath) -> bool:
    """Whether a path (relative to the plugin directory, ``/``-separated) is never watched."""
    parts = PurePosixPath(relative).parts
    if any(part in IGNORED_DIRS for part in parts[:-1]):
        return True
    if not parts:
        return True
    name = parts[-1]
    if name in IGNORED_DIRS:
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in IGNORED_FILES)


@dataclass(frozen=True)
class Changes:
    """One batch of file events, sorted into what the session must do about them."""

    manifest: bool = False
    python: tuple[str, ...] = ()
    """Changed ``.py`` files (relative paths) that still exist: each is byte-compiled."""
    config: bool = False
    """The ``--config`` settings file changed: re-validate and apply it."""
    other: tuple[str, ...] = ()
    """Any other file of the plugin (data files, removed modules): a reload is enough."""

    @property
    def reload(self) -> bool:
        """Whether the plugin must be replaced (anything but the settings file changed)."""
        return self.manifest or bool(self.python) or bool(self.other)

    @property
    def empty(self) -> bool:
        return not (self.reload or self.config)


def classify(
    paths: Iterable[tuple[Path, bool]], root: Path, *, config_file: Path | None = None
) -> Changes:
    """Sort changed ``paths`` (absolute, each with whether it exists now) under ``root``.

    The settings file may live outside ``root``; anything else outside it, and anything
    :func:`ignored`, is dropped."""
    manifest = config = False
    python: set[str] = set()
    other: set[str] = set()
    for path, exists in paths:
        if config_file is not None and path == config_file:
            config = True
            continue
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            continue
        if ignored(relative):
            continue
        if relative == MANIFEST_FILENAME:
            manifest = True
        elif relative.endswith(".py") and exists:
            python.add(relative)
        else:
            other.add(relative)
    return Changes(manifest, tuple(sorted(python)), config, tuple(sorted(other)))
