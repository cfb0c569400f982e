"""Plugin sources that declare ``[python]`` dependencies (the local index they lock against,
``wheelhouse`` and ``index``, is in tests/conftest.py: the template tests use it too)."""

from __future__ import annotations

import textwrap
from pathlib import Path

MARKDOWN_PLUGIN = """\
import markdown

from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("render")
    def render(self, text):
        return markdown.markdown(text) + " via markdown " + markdown.__version__

    @hook("where")
    def where(self):
        return markdown.__file__
"""


def plugin_source(
    root: Path,
    name: str,
    dependencies: list[str],
    *,
    code: str = MARKDOWN_PLUGIN,
    extra: str = "",
    hooks: tuple[str, ...] = ("render", "where"),
) -> Path:
    source = root / name
    source.mkdir(parents=True)
    (source / "main.py").write_text(code)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (source / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n'
        'description = "Renders Markdown."\n'
        "[contributes]\nhooks = { " + ", ".join(f"{h} = 0" for h in hooks) + " }\n"
        f"[python]\ndependencies = [{deps}]\n" + textwrap.dedent(extra)
    )
    return source
