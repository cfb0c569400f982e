"""The demo's UI extensions: a workspace of the host service installs the UI examples from the
registry (with consent), puts the metrics widget and the cron field's tile on its dashboard,
renders them as a browser would ask for them (checked trees, host-drawn HTML and SVG), picks
the Nord theme, and says where to look in a browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from _demo_integrations import GREEN
from _demo_registry import BOLD, DIM, RESET, Cli, DemoRegistry, fail
from _demo_web import _operation, _show

WORKSPACE = "dashboards"
PLUGINS = (
    "plugport.metrics-widget",
    "plugport.cron-field",
    "plugport.release-notes",
    "plugport.task-inspector",
    "plugport.theme-nord",
)
TILES = (
    ("plugport.metrics-widget", "metrics.display", {"chart": "line"}),
    ("plugport.cron-field", "cron.next-runs", {}),
)


def main(registry: DemoRegistry, work: Path, cli: Cli) -> None:
    url = registry.url
    print(
        f"\n{BOLD}== UI extensions: a dashboard, a page, menu items, a field type, a theme{RESET}"
    )
    print(
        f"{DIM}Plugins return component trees (data); the host checks them against its schema and "
        f"draws them with its own templates, so no plugin script runs in the page.{RESET}"
    )
    token = cli(
        "create a workspace for the dashboard",
        "A second workspace of the same host service.",
        "host", "workspace", "create", WORKSPACE,
        "--data-dir", str(registry.data_dir / "host-service"),
        cwd=work,
    ).strip().splitlines()[-1]  # fmt: skip
    api = f"{url}/api/v1/workspaces/{WORKSPACE}"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for plugin in PLUGINS:
            body: dict[str, Any] = {"plugin": plugin}
            asked = _operation(client, api, body)
            if asked["state"] == "failed" and asked["error"]["code"] == "consent_required":
                body["consent"] = asked["error"]["details"]["added"]
                lines = asked["error"]["details"]["lines"]
                print(f"  {plugin:<26} consent: {'; '.join(lines)}")
                asked = _operation(client, api, body)
            if asked["state"] != "succeeded":
                fail(f"{plugin} did not install", json.dumps(asked))
        for plugin, widget, config in TILES:
            added = client.post(
                f"{api}/dashboard/tiles",
                json={"plugin": plugin, "widget": widget, "config": config},
            )
            if added.status_code != 201:
                fail(f"the {widget} tile was not added: {added.status_code}", added.text)
            tile = client.get(f"{api}/dashboard/tiles/{added.json()['added']}").json()
            if not tile["ok"]:
                fail(f"the {widget} tile did not render", json.dumps(tile["error"]))
            kinds = _types(tile["tree"])
            _show("GET", f"{api}/dashboard/tiles/{tile['tile']['id']}")
            size = len(tile["html"])
            print(f"  {widget}: a checked tree of {', '.join(kinds)}; {size} bytes of HTML")
            stat = _first(tile["tree"], "stat")
            if stat is not None:
                print(f"    {stat['label']}: {stat['value']}")
        bad = client.post(
            f"{api}/ui/plugport.cron-field/cron.expression",
            json={"context": {"value": "61 * * * *"}},
        ).json()
        print(f"  the cron field type on '61 * * * *': {bad['value']}")
        if not bad["value"]:
            fail("the cron field accepted a minute of 61", json.dumps(bad))
        themed = client.put(
            f"{api}/appearance",
            json={"theme": "plugport.theme-nord:nord", "mode": "auto", "scope": "workspace"},
        )
        if themed.status_code != 200:
            fail(f"the Nord theme was refused: {themed.status_code}", themed.text)
        print(f"  {GREEN}the workspace wears the Nord theme (checked for WCAG AA contrast){RESET}")
    print(
        f"\n{DIM}In a browser: sign in at {url}/workspaces with the token above, then open "
        f"{url}/workspaces/{WORKSPACE}/dashboard; the nav has the release-notes page, the task "
        f"pages have the inspector's menu items, and Appearance switches themes.{RESET}"
    )


def _first(node: Any, kind: str) -> Any:
    """The first component of ``kind`` in a tree, depth first."""
    if isinstance(node, dict):
        if node.get("type") == kind:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            if (found := _first(item, kind)) is not None:
                return found
    return None


def _types(tree: Any) -> list[str]:
    """The component types in a tree, in order of first appearance."""
    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "type" in node:
                found.setdefault(str(node["type"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(tree)
    return list(found)
