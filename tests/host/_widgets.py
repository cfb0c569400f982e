"""Real plugins with dashboard widgets for the host service's UI tests: one that counts clicks
(actions, a form, invalidation), one whose every text is an XSS payload, one that hangs, one
that raises, one that answers with a tree outside the schema, and one granted no widgets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.host._plugins import write
from tests.host._service import Service, market_at, serving, settings_for

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"

COUNTER = """\
from plugport.sdk import Plugin, command, widget


class Main(Plugin):
    @widget("counter.clicks")
    async def clicks(self, request):
        count = int(await self.api.storage.get("count", 0))
        if request.action == "add":
            count += int(request.payload.get("by", 1))
            await self.api.storage.set("count", count)
        elif request.action == "set":
            text = request.values.get("to", "")
            if not text.isdigit():
                return self.tree(count, request.config, error="'to' must be a whole number")
            count = int(text)
            await self.api.storage.set("count", count)
        elif request.action == "details":
            return {"type": "overlay", "kind": "panel", "title": "Details",
                    "children": [{"type": "text", "text": f"count is {count}"}]}
        return self.tree(count, request.config)

    def tree(self, count, config, error=""):
        form = {"type": "form", "fields": [{"name": "to", "label": "Set to", "kind": "integer"}],
                "submit": {"label": "Set", "action": {"name": "set"}}}
        if error:
            form["error"] = error
        return {"type": "stack", "children": [
            {"type": "stat", "label": config["label"], "value": count},
            {"type": "image", "asset": "assets/logo.png", "alt": "Counter logo"},
            {"type": "button", "label": "Add one", "action": {"name": "add", "payload": {"by": 1}}},
            {"type": "button", "label": "Details", "action": {"name": "details"}},
            form,
            {"type": "table", "columns": [{"key": "n", "label": "N"}],
             "rows": [{"n": i} for i in range(min(count, 30))], "page_size": 5},
        ]}

    @command("counter.bump")
    async def bump(self):
        count = int(await self.api.storage.get("count", 0)) + 10
        await self.api.storage.set("count", count)
        await self.api.ui.invalidate("counter.clicks")
        return count
"""
COUNTER_MANIFEST = """\
[permissions]
ui = ["widgets"]
storage = "64 KiB"
[[contributes.commands]]
id = "counter.bump"
title = "Bump"
[[contributes.widgets]]
id = "counter.clicks"
title = "Clicks"
refresh_s = 60
size = "medium"
[contributes.widgets.config]
type = "object"
[contributes.widgets.config.properties.label]
type = "string"
default = "Clicks"
maxLength = 40
"""

HOSTILE = f"""\
from plugport.sdk import Plugin, widget

X = {XSS!r}


class Main(Plugin):
    @widget("hostile.all")
    def everything(self, request):
        return {{"type": "stack", "children": [
            {{"type": "heading", "text": X}},
            {{"type": "text", "text": X}},
            {{"type": "markdown", "source": "# " + X + " [link](javascript:alert(3))"}},
            {{"type": "stat", "label": X, "value": X}},
            {{"type": "table", "columns": [{{"key": "a", "label": X}}], "rows": [{{"a": X}}]}},
            {{"type": "list", "items": [X, {{"text": X, "badge": "b"}}]}},
            {{"type": "kv", "items": [{{"key": X, "value": X}}]}},
            {{"type": "form", "fields": [{{"name": "f", "label": X, "error": X}}],
             "submit": {{"label": "Go", "action": {{"name": "go"}}}}}},
        ]}}
"""
HOSTILE_MANIFEST = """\
[permissions]
ui = ["widgets"]
[[contributes.widgets]]
id = "hostile.all"
title = "Hostile"
"""

SLOW = """\
import asyncio

from plugport.sdk import Plugin, widget


class Main(Plugin):
    @widget("slow.wait")
    async def wait(self, request):
        await asyncio.sleep(30)
        return {"type": "text", "text": "too late"}

    @widget("slow.boom")
    def boom(self, request):
        raise RuntimeError("the widget broke")

    @widget("slow.bad")
    def bad(self, request):
        return {"type": "stack", "children": [{"type": "marquee", "text": "no"}]}
"""
SLOW_MANIFEST = """\
[permissions]
ui = ["widgets"]
[limits]
timeout_ms = 60000
[[contributes.widgets]]
id = "slow.wait"
title = "Hangs"
[[contributes.widgets]]
id = "slow.boom"
title = "Raises"
[[contributes.widgets]]
id = "slow.bad"
title = "Invalid"
"""

UNGRANTED = """\
from plugport.sdk import Plugin, widget


class Main(Plugin):
    @widget("quiet.w")
    def w(self, request):
        return {"type": "text", "text": "should never be asked"}
"""
UNGRANTED_MANIFEST = """\
[[contributes.widgets]]
id = "quiet.w"
title = "No permission"
"""

WIDGET_PLUGINS = {
    "acme.counter": (COUNTER, COUNTER_MANIFEST),
    "acme.hostile": (HOSTILE, HOSTILE_MANIFEST),
    "acme.slow": (SLOW, SLOW_MANIFEST),
    "acme.quiet": (UNGRANTED, UNGRANTED_MANIFEST),
}


GREET = """
    @hook("greet")
    def greet(self, name):
        return name
"""
"""Every test plugin implements the ``greet`` hook ``write`` declares."""


def with_greet(code: str) -> str:
    return code.replace("from plugport.sdk import ", "from plugport.sdk import hook, ", 1) + GREET


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
"""A 1x1 PNG: the counter's logo."""


def widget_sources(root: Path) -> list[Path]:
    sources = [
        write(root, name, "1.0.0", code=with_greet(code), extra=manifest)
        for name, (code, manifest) in WIDGET_PLUGINS.items()
    ]
    assets = sources[0] / "assets"
    assets.mkdir()
    (assets / "logo.png").write_bytes(PNG)
    (assets / "notes.txt").write_text("not an image")
    return sources


@contextlib.contextmanager
def widget_service(root: Path) -> Iterator[Service]:
    """A registry with the sample plugins and the widget plugins above, and the host service on
    it with a short UI deadline (1.5 s), so a hanging widget fails its tile quickly."""
    with market_at(root / "market") as market:
        for source in widget_sources(root / "widgets"):
            market.publish(source)
        with serving(settings_for(root, market, ui_timeout_ms=1500)) as service:
            yield service
