"""Which Plugport a manifest needs, for task processing: packing raises ``engines.plugport`` to
``>=0.3`` for ``[tasks]`` and ``permissions.tasks``, an older host names the table it cannot
read, and a range that admits no Plugport reading the tables is refused before packing."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from plugport import _engines, authoring
from plugport._engines import engine_conflicts, newer_table_problems, raise_engine
from plugport.errors import PluginValidationError
from plugport.manifest import Manifest, validate_manifest_data
from tests.conftest import snapshot

HEAD = 'name = "acme.tasker"\nversion = "1.0.0"\nentry = "tasker.plugin:Main"\n'
TASKS = '[tasks.RESIZE]\npayload = { type = "object" }\n'
SUBMIT = '[permissions]\ntasks.submit = ["GITHUB_*"]\n'


@pytest.mark.parametrize(
    ("tables", "used"),
    [(TASKS, ["tasks"]), (SUBMIT, ["permissions.tasks"]), (SUBMIT + TASKS, None)],
)
def test_tasks_need_plugport_0_3(tables: str, used: list[str] | None) -> None:
    text = HEAD + '[engines]\nplugport = ">=0.1,<1"\n' + tables
    data = tomllib.loads(text)
    needed = _engines.required_plugport(data)
    assert needed == ("0.3", used or ["tasks", "permissions.tasks"])
    raised = raise_engine(text, data)
    assert raised is not None
    assert tomllib.loads(raised)["engines"] == {"plugport": ">=0.3,<1"}
    assert raised.replace('">=0.3,<1"', '">=0.1,<1"') == text  # the author's text kept
    # An empty table asks for nothing newer.
    assert _engines.required_plugport(tomllib.loads(HEAD + "[permissions]\ntasks.submit = []\n"))
    assert _engines.required_plugport({"tasks": {}, "permissions": {"tasks": {}}}) is None


def _task_plugin(root: Path, engines: str) -> Path:
    (root / "tasker").mkdir(parents=True)
    (root / "tasker" / "plugin.py").write_text(
        "from plugport.sdk import Plugin, task\n\n\nclass Main(Plugin):\n"
        "    @task('RESIZE')\n    async def resize(self, job):\n        return {}\n"
    )
    (root / "plugport.toml").write_text(HEAD + engines + TASKS)
    return root


def test_packing_a_task_processor_raises_its_engine(tmp_path: Path) -> None:
    source = _task_plugin(tmp_path / "src", '[engines]\nplugport = ">=0.1"\n')
    packed = authoring.pack_plugin(source, tmp_path / "dist")
    with zipfile.ZipFile(packed.result.path) as archive:
        inside = tomllib.loads(archive.read("plugport.toml").decode())
    assert inside["engines"] == {"plugport": ">=0.3"}
    assert '">=0.1"' in (source / "plugport.toml").read_text()  # the source is not edited


def test_an_older_host_names_the_tasks_table_and_the_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    packed = tomllib.loads(HEAD + '[engines]\nplugport = ">=0.3"\n' + TASKS)
    monkeypatch.setattr(_engines, "__version__", "0.2.0")
    older = {info.alias or name for name, info in Manifest.model_fields.items()} - {"tasks"}
    [problem] = newer_table_problems(packed, older)
    assert problem.path == "tasks"
    assert problem.message == (
        "[tasks] is read by a newer Plugport: the plugin asks for plugport >=0.3 and this is "
        "0.2.0; upgrade Plugport to install it"
    )
    # This host reads [tasks]: the same manifest is valid here.
    assert "RESIZE" in validate_manifest_data(packed).tasks


@pytest.mark.parametrize("spec", ["<0.3", "==0.2.*", "~=0.2.1", ">=0.1,<0.3"])
def test_a_range_below_the_tasks_release_is_refused_before_packing(
    tmp_path: Path, spec: str
) -> None:
    [problem] = engine_conflicts(tomllib.loads(HEAD + f'[engines]\nplugport = "{spec}"\n' + TASKS))
    assert problem.path == "engines.plugport"
    assert problem.message == (
        f"{spec!r} admits no Plugport that reads [tasks] (those read it from 0.3): remove the "
        "upper bound or write '>=0.3'"
    )
    source = _task_plugin(tmp_path / "src", f'[engines]\nplugport = "{spec}"\n')
    before = snapshot(tmp_path)
    with pytest.raises(PluginValidationError) as caught:
        authoring.pack_plugin(source, tmp_path / "dist")
    assert [p.path for p in caught.value.problems] == ["engines.plugport"]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("spec", ["", ">=0.1", "<0.3.5", ">0.3", "~=0.2", "==0.3.*", "<1"])
def test_a_range_that_admits_a_reader_is_fine(spec: str) -> None:
    engines = f'[engines]\nplugport = "{spec}"\n' if spec else ""
    assert engine_conflicts(tomllib.loads(HEAD + engines + TASKS)) == []
    assert engine_conflicts(tomllib.loads(HEAD + '[engines]\nplugport = "<0.2"\n')) == []
