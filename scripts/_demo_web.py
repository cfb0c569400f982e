"""The web half of ``make demo``: the marketplace's pages and the host service, both served by
the same ``plugport serve --host-service`` process.

It reads the pages a visitor would open, then acts as a server application would: creates a
workspace with the CLI, asks the host service over HTTP to install a plugin (refused until the
operator's consent names what it may do), follows the install's progress, runs a hook in the
sandbox and reads the audit trail, all through the workspace's own token.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import httpx
from _demo_registry import BOLD, DIM, RESET, SHOWN, WORD_COUNT, Cli, DemoRegistry, fail

TASK = {"id": "7", "text": "The host service ran this in a sandbox."}
WORD_COUNT_TASK = "WORD_COUNT_SUMMARIZE"
WORKSPACE = "shop"


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.DOTALL)
    return html.unescape(found.group(1).strip()) if found else "(no title)"


def _show(method: str, url: str, body: Any = None, answer: Any = None) -> None:
    data = (
        f" -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}" if body else ""
    )
    print(f"$ curl -s -H \"Authorization: Bearer $TOKEN\" -X {method} '{url}'{data}")
    if answer is not None:
        for key, value in answer.items():
            print(f"  {key}: {json.dumps(value)}")


def pages(registry: DemoRegistry) -> None:
    print(f"\n{BOLD}== the marketplace in a browser{RESET}")
    print(
        f"{DIM}Server-rendered pages (readable without JavaScript; search results follow "
        f"typing when it is on): home, search, a plugin's page, a namespace.{RESET}"
    )
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        for path in ("/", "/search?q=notifier", f"/plugins/{SHOWN}", "/namespaces/acme"):
            response = client.get(path)
            if response.status_code != 200:
                fail(f"GET {path} answered {response.status_code}", response.text[:500])
            cards = response.text.count('data-testid="plugin-card"')
            extra = f", {cards} plugin cards" if cards else ""
            print(f"  GET {path:<34} 200  {_title(response.text)!r}{extra}")
        page = client.get(f"/plugins/{SHOWN}").text
        permissions = re.findall(r'<li data-testid="permission">(.*?)</li>', page)
        print(f"  {SHOWN}'s page says it may: {'; '.join(map(html.unescape, permissions))}")


def host_service(registry: DemoRegistry, work: Path, cli: Cli) -> None:
    url = registry.url
    service_dir = str(registry.data_dir / "host-service")
    print(f"\n{BOLD}== the host service: workspaces over HTTP{RESET}")
    print(
        f"{DIM}A server application manages its plugins through the same process: one host "
        f"home per workspace, each with its own tokens.{RESET}"
    )
    token = cli(
        "create a workspace",
        "Its token ($TOKEN below) is printed once and stored only as a hash.",
        "host", "workspace", "create", WORKSPACE, "--data-dir", service_dir,
        cwd=work,
    ).strip().splitlines()[-1]  # fmt: skip
    api = f"{url}/api/v1/workspaces/{WORKSPACE}"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        body: dict[str, Any] = {"plugin": WORD_COUNT}
        print(
            f"\n{DIM}Install without consent: the operation fails and names what it needs.{RESET}"
        )
        refused = _operation(client, api, body)
        _show("POST", f"{api}/installations", body, refused["error"])
        if refused["state"] != "failed" or refused["error"]["code"] != "consent_required":
            fail("the host service installed without consent", json.dumps(refused))
        body["consent"] = refused["error"]["details"]["added"]
        print(f"\n{DIM}With the operator's consent to exactly that, it installs.{RESET}")
        done = _operation(client, api, body)
        steps = [step["step"] for step in done["progress"]]
        _show("POST", f"{api}/installations", body)
        print(f"  operation {done['id']}: {done['state']} after {', '.join(dict.fromkeys(steps))}")
        if done["state"] != "succeeded":
            fail("the host service's install failed", json.dumps(done))
        call = {"type": WORD_COUNT_TASK, "payload": TASK}
        queued = client.post(f"{api}/tasks", json=call)
        if queued.status_code != 201:
            fail(f"the task was not queued: {queued.status_code}", queued.text)
        task = queued.json()
        deadline = time.monotonic() + 60
        while task["state"] not in ("succeeded", "dead", "cancelled", "rejected"):
            if time.monotonic() > deadline:
                fail("the task did not finish within 60 s", json.dumps(task))
            time.sleep(0.05)
            task = client.get(f"{api}/tasks/{task['id']}").json()
        _show("POST", f"{api}/tasks", call, {"id": task["id"], "state": task["state"]})
        _show("GET", f"{api}/tasks/{task['id']}", None, {"result": task["result"]})
        if task["state"] != "succeeded":
            fail("the task did not succeed", json.dumps(task))
        trail = client.get(f"{api}/audit", params={"limit": 8}).json()["items"]
        _show("GET", f"{api}/audit?limit=8")
        for row in trail:
            print(f"  {row['action']:<16} {row['subject']:<24} {row['outcome']}")
    print(
        f"\n{DIM}In a browser: {url}/ is the marketplace; {url}/workspaces signs in with the "
        f"workspace token above to manage {WORKSPACE}'s plugins.{RESET}"
    )


def _operation(client: httpx.Client, api: str, body: dict[str, Any]) -> dict[str, Any]:
    started = client.post(f"{api}/installations", json=body)
    if started.status_code != 202:
        fail(f"install answered {started.status_code}", started.text)
    operation: dict[str, Any] = started.json()
    deadline = time.monotonic() + 60
    while operation["state"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            fail("the install did not finish within 60 s", json.dumps(operation))
        time.sleep(0.05)
        operation = client.get(f"{api}/operations/{operation['id']}").json()
    return operation


def main(registry: DemoRegistry, work: Path, cli: Cli) -> None:
    pages(registry)
    host_service(registry, work, cli)
