"""A local package index (real HTTP on 127.0.0.1) of wheels built here, pip confined to it,
and plugin sources that declare ``[python]`` dependencies."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugport.testing.pypi import LocalIndex, build_wheel, isolated_pip_env, wheel_from_installed

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


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index's files: the real ``markdown`` rebuilt from this environment, and small
    libraries with a dependency between them and two versions."""
    house = tmp_path_factory.mktemp("wheelhouse")
    wheel_from_installed("markdown", house)
    build_wheel(
        house, "tinyfmt", "1.0", {"tinyfmt/__init__.py": "def shout(x):\n    return x.upper()\n"}
    )
    build_wheel(
        house,
        "tinyfmt",
        "1.1",
        {
            "tinyfmt/__init__.py": (
                "from tinyutil import BANG\n\ndef shout(x):\n    return x.upper() + BANG\n"
            )
        },
        requires=("tinyutil>=1",),
    )
    build_wheel(house, "tinyutil", "1.0", {"tinyutil.py": "BANG = '!'\n"})
    return house


@pytest.fixture
def index(
    wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalIndex]:
    """The wheelhouse served over HTTP; pip sees only it; the wheel cache is the test's."""
    isolated_pip_env(monkeypatch, tmp_path / "wheel-cache")
    with LocalIndex(wheelhouse) as served:
        yield served


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
