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
def test_the_widget_template_renders_its_tree_in_the_sandbox(tmp_path: Path) -> None:
    """What the widget template asks permission for, it uses: the host pulls the tile's tree
    from its ``@widget`` handler (settings from the manifest's defaults), the button's action
    answers with the new tree, and the command invalidates the tile; every tree holds to the
    component schema, and the template declares no hook."""
    import asyncio

    from plugport.components import check_tree, widget_config
    from plugport.manifest import load_manifest
    from plugport.runtime import PluginInstall, Supervisor, SupervisorConfig
    from plugport.sdk import UiRequest

    source = tmp_path / "counter"
    scaffold.create_plugin("acme.counter", "widget", source)
    manifest = load_manifest(source / "plugport.toml")
    assert manifest.contributes.hooks == {}
    [tile] = manifest.contributes.widgets
    assert (tile.id, tile.refresh_s, tile.size) == ("counter.counter", 60, "small")
    code = (source / "counter" / "plugin.py").read_text()
    assert "widget_data" not in code
    assert "update_widget" not in code

    def request(action: str | None = None) -> dict[str, object]:
        config = widget_config(tile.config, None)
        return UiRequest("widget", tile.id, config=config, action=action).to_wire()

    async def main() -> list[object]:
        config = SupervisorConfig(state_dir=tmp_path / "state", ping_interval_s=0)
        async with Supervisor(config) as runtime:
            runtime.add(PluginInstall(manifest, source))
            seen: list[object] = [await runtime.call_ui("acme.counter", tile.id, request())]
            seen.append(await runtime.run_command("acme.counter", "counter.increment"))
            seen.append(runtime.ui.version("acme.counter", tile.id))
            seen.append(await runtime.call_ui("acme.counter", tile.id, request()))
            seen.append(await runtime.call_ui("acme.counter", tile.id, request("increment")))
            return seen

    first, count, version, after, pressed = asyncio.run(main())

    def tile_of(value: int) -> dict[str, object]:
        return {
            "type": "stack",
            "children": [
                {"type": "stat", "label": "Count", "value": value},
                {"type": "button", "label": "Add one", "action": {"name": "increment"}},
            ],
        }

    assert (count, version) == (1, 1)
    assert check_tree(first) == tile_of(0)
    assert check_tree(after) == tile_of(1)
    assert check_tree(pressed, overlay_allowed=True) == tile_of(2)
