"""Real plugins with UI extensions for the host service's page tests, installed into a
workspace's home before the service opens it: ``acme.panels`` (two pages, one off the
navigation; menu items on installations, tasks and workflow runs; a field type; settings that
use it; a task type), ``acme.evil`` (script-shaped text in every string it can return),
``acme.dormant`` (a field type, disabled by the tests) and ``acme.locked`` (a page and a menu
item whose ``pages``/``menus`` grant the tests take away)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
from pathlib import Path

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.signing import generate_private_key, public_key_pem, sign

XSS = (
    "<script>window.__pp_xss=1;alert('x')</script>"
    '"><img src=x onerror="window.__pp_xss=1;alert(1)">'
)
"""What a hostile plugin writes into every text: a page that runs it would set ``window.__pp_xss``
or open a dialog."""

PANELS = "acme.panels"
EVIL = "acme.evil"
DORMANT = "acme.dormant"
LOCKED = "acme.locked"

SCORES = [5, 42, 7, 19, 3, 28, 11]

PANELS_CODE = """\
from plugport.sdk import Plugin, field, menu_item, page, task

ROWS = [{"name": "item-%d" % i, "score": s} for i, s in enumerate(SCORES)]


def overview(request):
    said = "Not bumped yet"
    if request.action == "bump":
        said = "Bumped by %s" % request.payload.get("by")
    elif request.action == "greet":
        said = "Hello, %s (%s)" % (request.values.get("who", ""), request.values.get("note", ""))
    return {"type": "stack", "children": [
        {"type": "heading", "level": 2, "text": "Overview"},
        {"type": "text", "text": said},
        {"type": "button", "label": "Bump", "action": {"name": "bump", "payload": {"by": 1}}},
        {"type": "button", "label": "Show details",
         "action": {"name": "details", "payload": {"item": "item-1"}}},
        {"type": "button", "label": "Wipe", "style": "danger", "confirm": "Wipe everything?",
         "action": {"name": "bump", "payload": {"by": -1}}},
        {"type": "table", "caption": "Items", "page_size": 3,
         "columns": [{"key": "name", "label": "Name"},
                     {"key": "score", "label": "Score", "align": "right"}],
         "rows": ROWS},
        {"type": "heading", "level": 2, "text": "Sections"},
        {"type": "tabs", "tabs": [
            {"id": "first", "label": "First",
             "children": [{"type": "text", "text": "First panel"}]},
            {"id": "second", "label": "Second",
             "children": [{"type": "text", "text": "Second panel"}]},
            {"id": "third", "label": "Third",
             "children": [{"type": "text", "text": "Third panel"}]},
        ]},
        {"type": "form",
         "fields": [{"name": "who", "label": "Who"},
                    {"name": "note", "label": "Region", "widget": "region-code"},
                    {"name": "old", "label": "Old code", "widget": "acme.dormant:code"}],
         "submit": {"label": "Greet", "action": {"name": "greet"}}},
    ]}


class Main(Plugin):
    @page("overview")
    def overview_page(self, request):
        if request.action == "details":
            return {"type": "overlay", "kind": "modal", "title": "Details", "children": [
                {"type": "text", "text": "Details of %s" % request.payload.get("item")},
                {"type": "button", "label": "Bump from the overlay",
                 "action": {"name": "bump", "payload": {"by": 10}}},
            ]}
        return overview(request)

    @page("hidden")
    def hidden(self, request):
        return {"type": "text", "text": "not in the navigation"}

    @menu_item("inspect")
    def inspect(self, request):
        items = [{"key": k, "value": v} for k, v in sorted(request.context.items())]
        items.append({"key": "workspace", "value": request.workspace})
        items.append({"key": "action", "value": request.action})
        return {"type": "stack", "children": [
            {"type": "kv", "items": items},
            {"type": "button", "label": "Again", "action": {"name": "again", "payload": {}}},
        ]}

    @menu_item("ping")
    def ping(self, request):
        return None

    @menu_item("task-info")
    def task_info(self, request):
        return {"type": "overlay", "kind": "panel", "title": "Task facts", "children": [
            {"type": "kv", "items": [{"key": k, "value": v}
                                     for k, v in sorted(request.context.items())]}]}

    @menu_item("run-info")
    def run_info(self, request):
        return {"type": "kv", "items": [{"key": k, "value": v}
                                        for k, v in sorted(request.context.items())]}

    @field("region-code")
    def region_code(self, request):
        if request.context.get("value") == "XX-0":
            return "XX-0 is reserved; pick another region"
        return None

    @task("PANEL")
    def run_panel(self, t):
        return {"ok": True}
""".replace("SCORES", repr(SCORES))

PANELS_MANIFEST = """\
[permissions]
ui = ["pages", "menus", "forms"]
config = true

[config]
type = "object"
[config.properties.region]
type = "string"
title = "Region"
"ui:widget" = "region-code"
[config.properties.legacy]
type = "string"
title = "Legacy code"
"ui:widget" = "acme.dormant:code"
[config.properties.plain]
type = "string"
title = "Plain"

[tasks.PANEL]
max-attempts = 1

[[contributes.pages]]
id = "overview"
title = "Panels overview"
description = "Counts, a table and tabs."

[[contributes.pages]]
id = "hidden"
title = "Hidden page"
nav = false

[[contributes.menus]]
id = "inspect"
title = "Inspect"
menu = "installation"
overlay = "panel"

[[contributes.menus]]
id = "ping"
title = "Ping"
menu = "installation"

[[contributes.menus]]
id = "task-info"
title = "Task info"
menu = "task"

[[contributes.menus]]
id = "run-info"
title = "Run info"
menu = "workflow_run"

[[contributes.fields]]
id = "region-code"
title = "Region code"
placeholder = "EU-1"
pattern = "[A-Z]{2}-[0-9]+"
help = "Two capital letters, a dash and a number."
"""

EVIL_CODE = """\
from plugport.sdk import Plugin, field, menu_item, page

X = XSS


class Main(Plugin):
    @page("board")
    def board(self, request):
        if request.action == "boom":
            raise RuntimeError("failed: " + X)
        return {"type": "stack", "children": [
            {"type": "heading", "level": 2, "text": X},
            {"type": "text", "text": X},
            {"type": "markdown", "source": "# " + X + "\\n\\n[click](javascript:alert(1)) " + X
             + "\\n\\n<iframe src=\\"https://evil.example\\"></iframe>"},
            {"type": "alert", "title": X, "text": X, "level": "bad"},
            {"type": "badge", "text": "<b>bad</b>"},
            {"type": "kv", "items": [{"key": X, "value": X}]},
            {"type": "list", "items": [X, {"text": X, "secondary": X, "badge": "<i>x</i>"}]},
            {"type": "table", "caption": X, "columns": [{"key": "a", "label": X}],
             "rows": [{"a": X}, {"a": "plain"}]},
            {"type": "link", "label": X, "href": "https://example.com/\\"><script>alert(1)</script>"},
            {"type": "button", "label": X[:60], "confirm": X,
             "action": {"name": "boom", "payload": {"x": X}}},
            {"type": "form", "error": X,
             "fields": [{"name": "a", "label": X, "help": X, "error": X, "default": X,
                         "placeholder": X[:100]}],
             "submit": {"label": X[:60], "action": {"name": "boom"}}},
        ]}

    @menu_item("poke")
    def poke(self, request):
        return {"type": "overlay", "kind": "modal", "title": X,
                "children": [{"type": "text", "text": X}, {"type": "markdown", "source": X}]}

    @field("sly")
    def sly(self, request):
        return X
""".replace("XSS", repr(XSS))

TOML_XSS = json.dumps(XSS)  # a TOML basic string is spelled as a JSON one
EVIL_MANIFEST = f"""\
[permissions]
ui = ["pages", "menus", "forms"]
config = true

[config]
type = "object"
[config.properties.motto]
type = "string"
"ui:widget" = "sly"

[[contributes.pages]]
id = "board"
title = {TOML_XSS}
description = {TOML_XSS}

[[contributes.menus]]
id = "poke"
title = {TOML_XSS}
menu = "installation"

[[contributes.fields]]
id = "sly"
title = "Sly"
placeholder = {json.dumps(XSS[:100])}
help = {TOML_XSS}
"""

DORMANT_CODE = """\
from plugport.sdk import Plugin, field


class Main(Plugin):
    @field("code")
    def code(self, request):
        return "never valid"
"""

DORMANT_MANIFEST = """\
[permissions]
ui = ["forms"]

[[contributes.fields]]
id = "code"
title = "Code"
placeholder = "dormant-placeholder"
"""

LOCKED_CODE = """\
from plugport.sdk import Plugin, menu_item, page


class Main(Plugin):
    @page("secret")
    def secret(self, request):
        return {"type": "text", "text": "the locked page"}

    @menu_item("nudge")
    def nudge(self, request):
        return {"type": "text", "text": "nudged"}
"""

LOCKED_MANIFEST = """\
[permissions]
ui = ["pages", "menus"]

[[contributes.pages]]
id = "secret"
title = "Locked page"

[[contributes.menus]]
id = "nudge"
title = "Nudge"
menu = "installation"
"""

PLUGINS = {
    PANELS: (PANELS_CODE, PANELS_MANIFEST),
    EVIL: (EVIL_CODE, EVIL_MANIFEST),
    DORMANT: (DORMANT_CODE, DORMANT_MANIFEST),
    LOCKED: (LOCKED_CODE, LOCKED_MANIFEST),
}


def install_plugins(home: Path, root: Path, names: list[str] | None = None) -> None:
    """Pack, sign and install ``names`` (default: all) into host home ``home`` in one session
    (``root``: scratch space)."""
    archives = []
    key = generate_private_key()  # one publisher: the host pins one key per namespace
    for name in names or list(PLUGINS):
        code, manifest = PLUGINS[name]
        source = root / "src" / name
        source.mkdir(parents=True)
        (source / "main.py").write_text(code)
        (source / "plugport.toml").write_text(
            f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n'
            f'display_name = "{name}"\ndescription = "A UI test plugin."\n' + manifest
        )
        (root / "dist").mkdir(exist_ok=True)
        archive = pack_plugin(source, root / "dist").result.path
        Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
        public = root / f"{name}.pub"
        public.write_text(public_key_pem(key.public_key()))
        archives.append((archive, public))

    async def main() -> None:
        host = PluginHost(
            app="myapp", app_version="2.4.0", home=home, consent=lambda r: True, run_tasks=False
        )
        async with host:
            for archive, public in archives:
                await host.install(str(archive), key=public)

    # In a thread of its own: Playwright's sync API may be running an event loop here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


def take_ui_grant(home: Path, plugin: str, surface: str) -> None:
    """Record ``plugin``'s consent without ``surface`` in ``permissions.ui`` (as a host that
    let the operator refuse part of it would), straight in the home's state file; the service
    reads it when the plugin is next enabled."""
    from plugport.host.state import HostState, Installation

    state = HostState(home / "host.sqlite")
    try:
        found: Installation | None = state.get(plugin)
        assert found is not None
        permissions = dict(found.permissions)
        permissions["ui"] = [s for s in permissions.get("ui", []) if s != surface]
        with state.transaction() as db:
            HostState.put(db, dataclasses.replace(found, permissions=permissions))
    finally:
        state.close()


__all__ = [
    "DORMANT",
    "EVIL",
    "LOCKED",
    "PANELS",
    "SCORES",
    "XSS",
    "install_plugins",
    "take_ui_grant",
]
