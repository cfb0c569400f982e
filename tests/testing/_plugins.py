"""Plugins written to disk for the testing kit's tests, and how to enable the kit in a pytest
run whether or not the ``pytest11`` entry point is installed yet."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

HEADER = """\
from plugport.sdk import Plugin, command, hook, on_event
"""


def kit_args() -> list[str]:
    """``-p plugport.testing.plugin`` until the venv is reinstalled with the entry point; after
    that pytest loads it by itself (and a second ``-p`` would register it twice)."""
    installed = importlib.metadata.entry_points(group="pytest11", name="plugport")
    return [] if installed else ["-p", "plugport.testing.plugin"]


def write_plugin(root: Path, name: str, body: str, manifest: str = "") -> Path:
    """A plugin directory ``root/<short name>`` whose ``main.py`` is HEADER + ``body`` (a
    class ``Main``) and whose manifest adds ``manifest`` (TOML) after identity and entry."""
    code = root / name.split(".", 1)[1]
    code.mkdir(parents=True)
    (code / "main.py").write_text(HEADER + textwrap.dedent(body))
    (code / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n' + textwrap.dedent(manifest)
    )
    return code
