"""``plugport init``: a new plugin from a template that validates, packs and tests as it is."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from plugport._dirs import created_directory
from plugport._version import __version__
from plugport.errors import InvalidInputError
from plugport.manifest import check_plugin_name

__all__ = ["TEMPLATES", "create_plugin", "template_values"]

TEMPLATES = ("basic", "integration", "markdown", "task-processor", "widget")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SUFFIX = ".tmpl"
_TASK_SUFFIX = "_SUMMARIZE"
_TASK_TYPE_CHARS = 64  # the manifest's limit on a task type's name


def template_values(name: str, template: str, author: str = "") -> dict[str, str]:
    """Everything a template may mention, derived from the plugin name."""
    try:
        check_plugin_name(name)
    except ValueError as exc:
        raise InvalidInputError(f"NAME: {exc}") from None
    namespace, short = name.split(".", 1)
    module = short.replace("-", "_")
    if module[0].isdigit():
        module = f"plugin_{module}"
    words = [w for w in re.split(r"[-_]", short) if w]
    major, minor, *_ = __version__.split(".")
    # Task types are global on a host, so the template's is the plugin's, not a common word.
    task_type = f"{module.upper()[: _TASK_TYPE_CHARS - len(_TASK_SUFFIX)]}{_TASK_SUFFIX}"
    return {
        "name": name,
        "namespace": namespace,
        "short": short,
        "module": module,
        "class_name": "".join(w.capitalize() for w in words) + "Plugin",
        "display_name": " ".join(w.capitalize() for w in words),
        "author": author or "Your Name <you@example.com>",
        "template": template,
        "plugport_minor": f"{major}.{minor}",
        "task_type": task_type,
    }


def create_plugin(name: str, template: str, dest: Path, *, author: str = "") -> list[Path]:
    """Render ``template`` into the new directory ``dest``; returns the files written.

    Missing parents of ``dest`` are created (``init --path a/b``). The files are rendered
    into a scratch directory first, so a failure leaves nothing behind, parents included.
    """
    if template not in TEMPLATES:
        raise InvalidInputError(
            f"--template: unknown template {template!r}; choose one of {', '.join(TEMPLATES)}"
        )
    values = template_values(name, template, author)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInputError(f"{dest} already exists and is not empty; choose another --path")
    with created_directory(dest.parent, what="--path"):
        return _render_into(dest, template, values)


def _render_into(dest: Path, template: str, values: dict[str, str]) -> list[Path]:
    root = resources.files("plugport.sdk") / "templates"
    scratch = Path(tempfile.mkdtemp(prefix=".plugport-init-", dir=dest.parent))
    try:
        written = []
        for layer in ("_common", template):
            written += _render_tree(root / layer, scratch, values)
        if dest.exists():
            dest.rmdir()
        umask = os.umask(0)
        os.umask(umask)
        scratch.chmod(0o777 & ~umask)  # mkdtemp makes 0o700: a new directory gets the usual mode
        os.rename(scratch, dest)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return sorted({dest / p.relative_to(scratch) for p in written})


def _render_tree(source: Traversable, target: Path, values: dict[str, str]) -> list[Path]:
    written = []
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        name = item.name.replace("__module__", values["module"])
        if item.is_dir():
            written += _render_tree(item, target / name, values)
            continue
        if not name.endswith(_SUFFIX):
            continue
        path = target / name.removesuffix(_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], item.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
