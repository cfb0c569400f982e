"""Which file events make ``plugport dev`` reload, and what each batch asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.dev._watch_rules import Changes, classify, ignored

ROOT = Path("/plugin")


@pytest.mark.parametrize(
    "path",
    [
        ".plugport-dev/runtime.sqlite",
        ".plugport-dev/code/3/acme/plugin.py",
        "acme/__pycache__/plugin.cpython-311.pyc",
        "acme/plugin.pyc",
        ".git/index",
        "dist/acme.hello-0.1.0.plugport",
        ".venv/lib/site.py",
        "acme/.plugin.py.swp",
        "acme/plugin.py~",
        "acme/.#plugin.py",
        "acme/#plugin.py#",
        "acme/4913",
        "acme.hello-0.1.0.plugport",
        ".mypy_cache/x.json",
    ],
)
def test_dev_state_caches_swap_files_and_build_output_are_ignored(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path", ["plugport.toml", "acme/plugin.py", "acme/data/words.txt", "README.md", "build.py"]
)
def test_the_plugins_own_files_are_watched(path: str) -> None:
    assert not ignored(path)


def test_a_batch_is_sorted_into_manifest_python_config_and_other() -> None:
    settings = Path("/elsewhere/settings.toml")
    changes = classify(
        [
            (ROOT / "plugport.toml", True),
            (ROOT / "acme" / "plugin.py", True),
            (ROOT / "acme" / "old.py", False),  # deleted: nothing to compile, still a reload
            (ROOT / "acme" / "words.txt", True),
            (ROOT / ".plugport-dev" / "runtime.sqlite", True),
            (Path("/other/file.py"), True),
            (settings, True),
        ],
        ROOT,
        config_file=settings,
    )
    assert changes == Changes(
        manifest=True,
        python=("acme/plugin.py",),
        config=True,
        other=("acme/old.py", "acme/words.txt"),
    )
    assert changes.reload


def test_only_the_settings_file_is_not_a_reload_and_ignored_files_are_nothing() -> None:
    settings = ROOT / "dev-settings.json"
    only_settings = classify([(settings, True)], ROOT, config_file=settings)
    assert (only_settings.config, only_settings.reload, only_settings.empty) == (True, False, False)
    nothing = classify([(ROOT / "acme" / "x.pyc", True)], ROOT)
    assert nothing.empty
