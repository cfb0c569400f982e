"""Template rendering: names derived from the plugin name, nothing left behind on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport import scaffold
from plugport.errors import InvalidInputError


def test_template_values() -> None:
    values = scaffold.template_values("acme.slack-notify", "integration")
    assert values["module"] == "slack_notify"
    assert values["class_name"] == "SlackNotifyPlugin"
    assert values["display_name"] == "Slack Notify"
    assert values["namespace"] == "acme"
    assert scaffold.template_values("acme.3d-view", "basic")["module"] == "plugin_3d_view"
    assert values["task_type"] == "SLACK_NOTIFY_SUMMARIZE"


def test_the_task_processor_declares_a_type_of_its_own_and_handles_it(tmp_path: Path) -> None:
    """Task types are global on a host: two plugins made from the template do not collide,
    and a name at the length limit still makes a valid type whose handler matches."""
    import tomllib

    from plugport._engines import raise_engine
    from plugport.authoring import validate_tree

    long_short = "a" + "-b" * 31 + "c"  # 64 characters: the longest a plugin name part may be
    for name in ("acme.my-plugin", f"acme.{long_short}"):
        root = tmp_path / name
        scaffold.create_plugin(name, "task-processor", root)
        report = validate_tree(root)
        assert report.errors == [], name
        assert report.manifest is not None
        [task_type] = report.manifest.tasks
        assert task_type == scaffold.template_values(name, "task-processor")["task_type"]
        assert len(task_type) <= 64
        assert task_type.endswith("_SUMMARIZE")
        module = report.manifest.entry.split(".")[0]
        assert f'@task("{task_type}")' in (root / module / "plugin.py").read_text()
        spec = report.manifest.tasks[task_type]
        assert spec.payload["required"] == ["id", "text"]
        assert spec.idempotency_key == "/id"
        text = (root / "plugport.toml").read_text()
        assert raise_engine(text, tomllib.loads(text)) is None  # asks for >=0.3 already
    assert scaffold.template_values("acme.3d-view", "x")["task_type"] == "PLUGIN_3D_VIEW_SUMMARIZE"


def test_no_placeholder_left(tmp_path: Path) -> None:
    for template in scaffold.TEMPLATES:
        files = scaffold.create_plugin("acme.demo-one", template, tmp_path / template)
        for file in files:
            assert "{{" not in file.read_text(), file


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown template"):
        scaffold.create_plugin("acme.x1", "fancy", tmp_path / "missing" / "x1")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match=r"--path: .*file is a file, not a directory"):
        scaffold.create_plugin("acme.x1", "basic", tmp_path / "file" / "a" / "x1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "x"


def test_missing_parents_are_created(tmp_path: Path) -> None:
    files = scaffold.create_plugin("acme.x1", "basic", tmp_path / "a" / "b" / "x1")
    assert (tmp_path / "a" / "b" / "x1" / "plugport.toml") in files


def test_a_failed_render_removes_the_parents_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> list[Path]:
        raise OSError("disk full")

    monkeypatch.setattr(scaffold, "_render_tree", broken)
    with pytest.raises(OSError, match="disk full"):
        scaffold.create_plugin("acme.x1", "basic", tmp_path / "a" / "b" / "x1")
    assert list(tmp_path.iterdir()) == []


def test_empty_existing_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "x1").mkdir()
    scaffold.create_plugin("acme.x1", "basic", tmp_path / "x1")
    assert (tmp_path / "x1" / "plugport.toml").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["x1"]


@pytest.mark.slow
def test_the_widget_template_pushes_its_widget_in_the_sandbox(tmp_path: Path) -> None:
    """What the widget template asks permission for, it uses: an increment updates the
    widget through ``ui.update_widget``, and ``widget_data`` answers the same data."""
    import asyncio

    from plugport.manifest import load_manifest
    from plugport.runtime import HookSpec, PluginInstall, Supervisor, SupervisorConfig

    source = tmp_path / "counter"
    scaffold.create_plugin("acme.counter", "widget", source)

    async def main() -> tuple[object, object, object]:
        config = SupervisorConfig(state_dir=tmp_path / "state", ping_interval_s=0)
        async with Supervisor(config) as runtime:
            runtime.declare_hook(HookSpec("widget_data", args=("widget_id", "settings")))
            runtime.add(PluginInstall(load_manifest(source / "plugport.toml"), source))
            count = await runtime.run_command("acme.counter", "counter.increment")
            [widget] = runtime.ui.widgets("acme.counter")
            [outcome] = await runtime.call_hook(
                "widget_data", widget_id="counter.counter", settings={}
            )
            return count, (widget.id, widget.data), outcome.value

    count, pushed, answered = asyncio.run(main())
    assert count == 1
    assert pushed == ("counter.counter", {"type": "stat", "label": "Count", "value": 1})
    assert answered == {"type": "stat", "label": "Count", "value": 1}
