"""``Supervisor.call_ui`` with real sandboxed workers: the host pulls a surface's tree from the
plugin's UI handler, which receives one typed ``UiRequest``; a surface the manifest does not
contribute, or whose ``permissions.ui`` value the operator did not consent to, is refused before
any worker starts; a handler that does not answer in time is killed at the tighter of the
caller's and the plugin's own limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plugport.components import check_tree
from plugport.errors import InvalidInputError, PermissionDeniedError, ResourceLimitExceededError
from plugport.manifest import Permissions
from plugport.runtime.supervisor import PluginInstall, Supervisor
from tests.runtime._supervised import kinds, supervise, write_plugin

PANEL = """
import dataclasses
from plugport.sdk import UiRequest, page, widget

class Main(Plugin):
    @widget("panel.stats")
    async def stats(self, request):
        if request.action == "echo":
            return {
                "class": f"{type(request).__module__}.{type(request).__qualname__}",
                "typed": isinstance(request, UiRequest) and dataclasses.is_dataclass(request),
                **request.to_wire(),
            }
        runs = int(await self.api.storage.get("runs", 0)) + 1
        await self.api.storage.set("runs", runs)
        return {
            "type": "stack",
            "children": [
                {"type": "stat", "label": request.config["label"], "value": runs},
                {"type": "button", "label": "Again", "action": {"name": "again"}},
            ],
        }

    @page("panel.board")
    def board(self, request):  # a plain function works too
        return {"type": "heading", "text": "Board of " + request.workspace}

    @widget("panel.slow")
    def slow(self, request):
        time.sleep(30)
"""
PANEL_MANIFEST = """
[permissions]
ui = ["widgets", "pages"]
storage = 1024

[limits]
timeout_ms = 400

[contributes]
pages = [{ id = "panel.board", title = "Board" }]

[[contributes.widgets]]
id = "panel.stats"
title = "Stats"
config = { type = "object", properties.label = { type = "string", default = "Runs" } }

[[contributes.widgets]]
id = "panel.slow"
title = "Slow"
"""


def request(surface: str, surface_id: str, **fields: Any) -> dict[str, Any]:
    return {"surface": surface, "id": surface_id, **fields}


def panel(tmp_path: Path, name: str = "acme.panel", **install: Any) -> PluginInstall:
    made = write_plugin(tmp_path, name, PANEL, PANEL_MANIFEST)
    return PluginInstall(made.manifest, made.code_dir, **install)


def test_the_handler_gets_a_typed_request_and_its_tree_comes_back(tmp_path: Path) -> None:
    async def scenario(runtime: Supervisor) -> None:
        tree = await runtime.call_ui(
            "acme.panel", "panel.stats", request("widget", "panel.stats", config={"label": "Runs"})
        )
        assert check_tree(tree) == {
            "type": "stack",
            "children": [
                {"type": "stat", "label": "Runs", "value": 1},
                {"type": "button", "label": "Again", "action": {"name": "again"}},
            ],
        }
        echoed = await runtime.call_ui(
            "acme.panel",
            "panel.stats",
            request(
                "widget",
                "panel.stats",
                config={"label": "x"},
                action="echo",
                payload={"row": 3},
                values={"name": "Ada"},
                context={"menu": "task", "task": "t-1"},
                workspace="team",
            ),
        )
        assert echoed == {
            "class": "plugport.sdk._ui.UiRequest",
            "typed": True,
            "surface": "widget",
            "id": "panel.stats",
            "config": {"label": "x"},
            "action": "echo",
            "payload": {"row": 3},
            "values": {"name": "Ada"},
            "context": {"menu": "task", "task": "t-1"},
            "workspace": "team",
        }
        # the fields a caller leaves out arrive as their defaults
        board = await runtime.call_ui("acme.panel", "panel.board", request("page", "panel.board"))
        assert board == {"type": "heading", "text": "Board of "}
        # the handler's own capabilities still go through the broker
        assert runtime.services.storage.get("acme.panel", "runs") == 1

    supervise(tmp_path, [panel(tmp_path)], scenario)


def test_refusals_come_before_any_worker_starts(tmp_path: Path) -> None:
    narrow = panel(tmp_path, "acme.narrow", permissions=Permissions(ui=["widgets"], storage=1024))

    async def scenario(runtime: Supervisor) -> None:
        with pytest.raises(InvalidInputError) as caught:
            await runtime.call_ui("acme.narrow", "panel.nope", request("widget", "panel.nope"))
        assert str(caught.value) == (
            "plugin 'acme.narrow' contributes no UI surface 'panel.nope' "
            "(it has: panel.board, panel.slow, panel.stats)"
        )
        # contributed by the manifest, but the operator consented to widgets only
        with pytest.raises(PermissionDeniedError) as denied:
            await runtime.call_ui("acme.narrow", "panel.board", request("page", "panel.board"))
        assert (denied.value.plugin, denied.value.capability) == ("acme.narrow", "ui")
        assert "page 'panel.board' needs 'pages' in permissions.ui" in str(denied.value)
        # a request that names another surface, or another kind, than the one called
        for wrong in (request("widget", "panel.slow"), request("page", "panel.stats"), {}):
            with pytest.raises(InvalidInputError, match=r"request is for widget 'panel\.stats'"):
                await runtime.call_ui("acme.narrow", "panel.stats", wrong)
        with pytest.raises(InvalidInputError, match=r"no plugin 'acme\.other' is added"):
            await runtime.call_ui("acme.other", "panel.stats", request("widget", "panel.stats"))
        assert runtime.status("acme.narrow")[0].state == "inactive"
        # the granted surface of the same plugin works
        tree = await runtime.call_ui(
            "acme.narrow", "panel.stats", request("widget", "panel.stats", config={"label": "n"})
        )
        assert tree["children"][0] == {"type": "stat", "label": "n", "value": 1}

    audit = supervise(tmp_path, [narrow], scenario)
    assert kinds(audit, "acme.narrow") == ["activate", "deactivate"]  # no deny, one start


def test_a_handler_that_does_not_answer_is_killed_at_the_tighter_limit(tmp_path: Path) -> None:
    async def scenario(runtime: Supervisor) -> None:
        loop = asyncio.get_running_loop()
        for asked, within in ((150, 0.15), (60_000, 0.4)):  # the caller's, then the plugin's
            started = loop.time()
            with pytest.raises(ResourceLimitExceededError) as caught:
                await runtime.call_ui(
                    "acme.panel",
                    "panel.slow",
                    request("widget", "panel.slow"),
                    timeout_ms=asked,
                )
            took = loop.time() - started
            assert caught.value.limit == "timeout_ms"
            assert within <= took < within + 5, (asked, took)
        # a fresh worker answers the next render
        tree = await runtime.call_ui(
            "acme.panel", "panel.board", request("page", "panel.board", workspace="w")
        )
        assert tree == {"type": "heading", "text": "Board of w"}

    audit = supervise(tmp_path, [panel(tmp_path)], scenario)
    assert kinds(audit, "acme.panel").count("kill") == 2
