"""What a plugin's failure shows: its own frames, with paths relative to its code dir, and the
complete trace in the host's log only."""

from __future__ import annotations

import importlib.util
import logging
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from plugport.errors import PluginCallError
from plugport.runtime._tracebacks import MAX_TRACEBACK_CHARS, complete, plugin_only
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import supervise, write_plugin


def load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ModuleType]:
    """A plugin (``code/main.py``, ``code/pkg/util.py``) that calls a library outside its code
    dir (``site-packages/lib.py``, standing in for a dependency or Plugport itself)."""
    code, outside = tmp_path / "code", tmp_path / "site-packages"
    (code / "pkg").mkdir(parents=True)
    outside.mkdir()
    (outside / "lib.py").write_text("def call(f):\n    return f()\n")
    (code / "pkg" / "util.py").write_text("def fail():\n    raise KeyError('missing')\n")
    (code / "main.py").write_text(
        textwrap.dedent(
            """
            import lib, pkg_util

            def run():
                try:
                    return lib.call(pkg_util.fail)
                except KeyError as exc:
                    raise ValueError("could not run") from exc
            """
        )
    )
    load(outside / "lib.py", "lib", monkeypatch)
    load(code / "pkg" / "util.py", "pkg_util", monkeypatch)
    return code, load(code / "main.py", "plugin_main", monkeypatch)


def test_only_the_plugins_frames_with_relative_paths(layout: tuple[Path, ModuleType]) -> None:
    code, main = layout
    with pytest.raises(ValueError, match="could not run") as caught:
        main.run()
    shown = plugin_only(caught.value, str(code))
    assert 'File "main.py", line 6, in run' in shown
    assert 'File "pkg/util.py", line 2, in fail' in shown  # the chained cause, trimmed alike
    assert "KeyError: 'missing'" in shown
    assert "ValueError: could not run" in shown
    assert "lib.py" not in shown
    assert str(code.parent) not in shown
    assert "test_tracebacks.py" not in shown  # the caller's frame is outside the plugin too
    whole = complete(caught.value)
    assert str(code / "main.py") in whole
    assert str(code.parent / "site-packages" / "lib.py") in whole


def test_a_syntax_error_names_the_file_relative_to_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    broken = tmp_path / "code" / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(SyntaxError) as caught:
        compile(broken.read_text(), str(broken), "exec")
    shown = plugin_only(caught.value, str(tmp_path / "code"))
    assert 'File "broken.py", line 1' in shown
    assert str(tmp_path) not in shown
    elsewhere = plugin_only(caught.value, str(tmp_path / "other"))
    assert 'File "broken.py", line 1' in elsewhere  # outside the plugin: its base name only
    assert str(tmp_path) not in elsewhere


def test_a_long_traceback_keeps_its_end() -> None:
    with pytest.raises(RuntimeError) as caught:
        raise RuntimeError("x" * (2 * MAX_TRACEBACK_CHARS) + " the end")
    for text in (complete(caught.value), plugin_only(caught.value, "/nowhere")):
        assert len(text) == MAX_TRACEBACK_CHARS + len("...\n")
        assert text.startswith("...\nxxx")
        assert text.rstrip().endswith("x the end")


FAILING = """
def helper():
    raise ValueError("no good")


class Main(Plugin):
    @hook("fail")
    def fail(self):
        helper()

    @hook("fail_async")
    async def fail_async(self):
        helper()
"""


def test_a_real_workers_failure_shows_the_plugin_and_logs_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install = write_plugin(
        tmp_path, "acme.fails", FAILING, "[contributes]\nhooks = { fail = 0, fail_async = 0 }\n"
    )
    shown: list[str] = []

    async def scenario(runtime: Supervisor) -> None:
        for hook in ("fail", "fail_async"):
            with pytest.raises(PluginCallError) as caught:
                await runtime.call_hook_on("acme.fails", hook, {})
            shown.append(caught.value.traceback)

    with caplog.at_level(logging.INFO, logger="plugport.runtime"):
        supervise(tmp_path, [install], scenario, hooks=(HookSpec("fail"), HookSpec("fail_async")))
    lines = (install.code_dir / "main.py").read_text().splitlines()
    where = {
        "fail": lines.index("    def fail(self):") + 2,
        "fail_async": lines.index("    async def fail_async(self):") + 2,
    }
    where["helper"] = lines.index('    raise ValueError("no good")') + 1
    for hook, traceback in zip(("fail", "fail_async"), shown, strict=True):
        assert traceback.startswith("Traceback (most recent call last):\n")
        assert f'File "main.py", line {where[hook]}, in {hook}' in traceback
        assert f'File "main.py", line {where["helper"]}, in helper' in traceback
        assert traceback.rstrip().endswith("ValueError: no good")
        assert "/" not in traceback  # no absolute path of any kind
    logged = [r.getMessage() for r in caplog.records if "raised ValueError" in r.getMessage()]
    assert len(logged) == 2
    assert all(str(install.code_dir / "main.py") in text for text in logged)
    assert all("plugport/runtime/worker.py" in text for text in logged)
