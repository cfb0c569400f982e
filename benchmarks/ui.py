"""Dashboard figures (issue 20), over real HTTP: a real registry (``plugport serve``) with ten
signed plugins, each contributing one widget (a stat, a line chart of 50 points drawn as SVG by
the host, a table of 20 rows and a button), installed with consent into one workspace of the
host service (``create_host_service_app`` on uvicorn, 127.0.0.1, in this process), one tile of
each on the workspace's dashboard. The workers are warmed (every widget rendered) before
anything is timed. Prints one JSON object with a ``targets`` block.

The load comes from a separate client process (this script with ``--load``), so the client's
own Python work does not share the server's interpreter lock; it signs in with the workspace
token like a browser (cookie + CSRF token) and keeps its connections alive. Every latency is
measured by that client, from sending a request to reading its whole answer.

- ``dashboard_10_widgets_p95_ms`` (target <= 150): one page view is ``GET
  /workspaces/{ws}/dashboard`` and then its 10 tiles, ``GET .../dashboard/tiles/{id}`` with
  ``x-plugport-partial: 1``, six at a time as a browser does over HTTP/1.1 (a tile's time
  starts when it gets one of the six connections, so time spent queued behind the others is
  not counted). ``value`` is the nearest-rank 95th percentile, over the page views, of each
  view's slowest tile request. Next to it: p50/p95/p99 of the page request and of all tile
  requests, and the view's wall time (page sent -> last tile answered, what a user waits for).
- ``widget_action_roundtrip_p95_ms`` (target <= 100): a tile's button pressed as the page's
  script does it: ``POST .../tiles/{id}/actions`` with its form's fields (``csrf``,
  ``action``, ``payload``) and the partial header -> the plugin's handler -> the re-rendered
  fragment (whose button is the next one pressed), one call at a time, round robin over the
  tiles; p95.
- Baselines in the same run, for the ratios: the bare ``Supervisor.call_ui`` of the same
  widgets (in process, on the server's event loop, no HTTP, no schema check, no HTML), the
  same through ``UiSurfaces.ask`` (the call plus the component-schema check), the HTML render
  of a kept answer alone, a static file (``/host-service/static/host-service.css``) and the
  signed-in ``/workspaces/{ws}/ui/versions`` (cookie check and a small JSON answer) over the
  same HTTP connection.
- ``server_cpu_ms_per_view`` (and per action): the CPU time the service's process used per
  page view while the views ran, read from ``/proc``. The service answers on one event loop
  and a tile's work there (schema check, HTML) is CPU, so the tiles of one view take turns:
  on an otherwise idle core the slowest tile answers after about this much.
  ``server_cpu_share_during_views`` is how much of one core the process got meanwhile: far
  under 1 means the latencies above waited for a CPU the machine was giving to others (see
  the load averages).

Run: ``.venv/bin/python benchmarks/ui.py --json`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from html import unescape
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _common import SigningNamespace, percentiles, registry

from plugport.authoring import pack_plugin, sign_archive

T = TypeVar("T")
TARGET_DASHBOARD_P95_MS = 150.0
TARGET_ACTION_P95_MS = 100.0
WORKSPACE = "bench"
NAMESPACE = "bench"
PLUGINS = 10
BROWSER_CONNECTIONS = 6
"""What a browser opens to one origin over HTTP/1.1."""
PARTIAL = {"x-plugport-partial": "1", "accept": "application/json"}
STATIC = "/host-service/static/host-service.css"

WIDGET = """\
import math

from plugport.sdk import Plugin, widget

N = {n}


class Main(Plugin):
    clicks = 0
    renders = 0

    @widget("w{n}.overview")
    def overview(self, request):
        if request.action == "bump":
            self.clicks += int(request.payload.get("by", 1))
        self.renders += 1
        shift = self.clicks + self.renders + N
        points = [round(120 + 40 * math.sin((i + shift) / 4) + 3 * (i % 7), 2) for i in range(50)]
        rows = [
            {{"service": f"svc-{{N}}-{{r}}", "region": ("eu", "us", "ap")[r % 3],
             "requests": 1000 + 37 * r + shift, "errors": (r * 7 + shift) % 13,
             "p95_ms": round(12.5 + r * 1.3 + (shift % 5), 1)}}
            for r in range(20)
        ]
        return {{"type": "stack", "children": [
            {{"type": "stat", "label": request.config.get("label", "Requests"),
             "value": sum(points), "unit": "req/min", "delta": 4.2, "caption": "last hour"}},
            {{"type": "chart", "kind": "line", "title": "Requests per minute",
             "labels": [f"-{{50 - i}}m" for i in range(50)],
             "series": [{{"name": "requests", "values": points}}], "y": {{"label": "req/min"}}}},
            {{"type": "table", "caption": "Services",
             "columns": [{{"key": "service", "label": "Service"}},
                         {{"key": "region", "label": "Region"}},
                         {{"key": "requests", "label": "Requests", "align": "right"}},
                         {{"key": "errors", "label": "Errors", "align": "right"}},
                         {{"key": "p95_ms", "label": "p95 (ms)", "align": "right"}}],
             "rows": rows, "page_size": 20}},
            {{"type": "button", "label": "Refresh",
             "action": {{"name": "bump", "payload": {{"by": 1}}}}}},
        ]}}
"""
"""Widget ``n``: what a metrics tile answers; its numbers change with every render (live
figures), and the ``bump`` action moves them too."""

MANIFEST = """\
name = "{name}"
version = "1.0.0"
entry = "main:Main"
display_name = "Bench widget {n}"
description = "A benchmark widget."

[permissions]
ui = ["widgets"]

[[contributes.widgets]]
id = "w{n}.overview"
title = "Overview {n}"
refresh_s = 60
size = "medium"
[contributes.widgets.config]
type = "object"
[contributes.widgets.config.properties.label]
type = "string"
default = "Requests"
maxLength = 40
"""


@dataclass(frozen=True)
class Sizes:
    plugins: int
    views: int
    actions: int
    trivial: int
    bare: int


FULL = Sizes(plugins=PLUGINS, views=300, actions=1000, trivial=500, bare=1000)
QUICK = Sizes(plugins=3, views=10, actions=20, trivial=20, bare=30)


def _name(n: int) -> str:
    return f"{NAMESPACE}.w{n}"


def _widget(n: int) -> str:
    return f"w{n}.overview"


# --- setup ----------------------------------------------------------------------------------


def _publish(server: Any, root: Path, count: int) -> None:
    """``count`` widget plugins, packed, signed with the namespace's key and uploaded."""
    namespace = SigningNamespace(server, root, NAMESPACE, "bench")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for n in range(count):
            source = root / "src" / _name(n)
            source.mkdir(parents=True)
            (source / "main.py").write_text(WIDGET.format(n=n))
            (source / "plugport.toml").write_text(MANIFEST.format(name=_name(n), n=n))
            archive = pack_plugin(source, root / "dist").result.path
            signature, _, _ = sign_archive(archive, namespace.key)
            files = {
                "archive": (archive.name, archive.read_bytes(), "application/zip"),
                "signature": (signature.name, signature.read_bytes()),
            }
            done = _ok(
                http.post(
                    f"/api/v1/plugins/{_name(n)}/versions",
                    files=files,
                    headers={"Authorization": f"Bearer {namespace.token}"},
                )
            )
            if done["status"] != "published":  # the scan held it: the admin approves
                _ok(
                    http.post(
                        f"/api/v1/review/{_name(n)}/1.0.0/approve",
                        json={"reason": "benchmark"},
                        headers={"Authorization": f"Bearer {server.admin}"},
                    )
                )


def _ok(response: httpx.Response) -> Any:
    if not response.is_success:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


@dataclass
class Running:
    """The host service on uvicorn in a thread: its URL, its event loop and the service."""

    url: str
    loop: asyncio.AbstractEventLoop
    service: Any

    def on_loop(self, make: Callable[[], Awaitable[T]], timeout_s: float = 600) -> T:
        """Run a coroutine on the server's own loop (the supervisor's objects live there)."""

        async def wrapped() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        return future.result(timeout_s)


@contextlib.contextmanager
def _host_service(root: Path, registry_url: str) -> Iterator[Running]:
    import uvicorn

    from plugport.host.service import HostServiceSettings, create_host_service_app

    settings = HostServiceSettings(
        data_dir=root / "service",
        registries=(registry_url,),
        app="benchapp",
        app_version="1.0",
        telemetry=False,
    )
    app = create_host_service_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the host service did not start")
        time.sleep(0.01)
    listening = server.servers[0]
    port = listening.sockets[0].getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{port}", listening.get_loop(), app.state.host_service)
    finally:
        server.should_exit = True
        thread.join(60)


def _wait(api: httpx.Client, operation: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        body: dict[str, Any] = _ok(
            api.get(f"/api/v1/workspaces/{WORKSPACE}/operations/{operation['id']}")
        )
        if body["state"] in ("succeeded", "failed"):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"operation {operation['id']} still {body['state']}")
        time.sleep(0.02)


def _install(api: httpx.Client, plugin: str, consent: list[str]) -> list[str]:
    """Install, consenting to exactly what the plugin asks for: ``consent`` first (what the
    previous plugin, with the same permissions, asked for), else what the refusal names.
    Returns the consent that was given."""
    for _ in range(2):
        started = api.post(
            f"/api/v1/workspaces/{WORKSPACE}/installations",
            json={"plugin": plugin, "consent": consent},
        )
        done = _wait(api, _ok(started))
        if done["state"] == "succeeded":
            return consent
        if done["error"]["code"] != "consent_required":
            break
        consent = done["error"]["details"]["added"]
    raise SystemExit(f"installing {plugin} failed: {done}")


def _board(running: Running, count: int) -> tuple[str, list[str]]:
    """The workspace (its token) with the plugins installed and one tile of each."""
    admin, _ = running.service.store.create_token("admin", description="benchmark")
    with httpx.Client(
        base_url=running.url, timeout=60, headers={"Authorization": f"Bearer {admin}"}
    ) as http:
        token: str = _ok(http.post("/api/v1/workspaces", json={"name": WORKSPACE}))["token"]
    tiles = []
    with httpx.Client(
        base_url=running.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        consent: list[str] = []
        for n in range(count):
            consent = _install(api, _name(n), consent)
        for n in range(count):
            added = _ok(
                api.post(
                    f"/api/v1/workspaces/{WORKSPACE}/dashboard/tiles",
                    json={"plugin": _name(n), "widget": _widget(n)},
                )
            )
            tiles.append(added["added"])
        for tile in tiles:  # warm: every worker activated, every tile rendered once
            answer = _ok(api.get(f"/api/v1/workspaces/{WORKSPACE}/dashboard/tiles/{tile}"))
            if not answer["ok"]:
                raise SystemExit(f"tile {tile} did not render: {answer['error']}")
    return token, tiles


# --- the in-process baselines ---------------------------------------------------------------


def _in_process(running: Running, count: int, calls: int) -> dict[str, Any]:
    """``Supervisor.call_ui``, ``UiSurfaces.ask`` and the HTML render alone, same widgets."""
    from plugport.host.service.dashboard import _tile_context, render_rendered

    workspace = running.service.workspace(WORKSPACE)
    supervisor = workspace.host.supervisor
    surfaces = workspace.ui

    def request(n: int) -> dict[str, Any]:
        return {
            "surface": "widget",
            "id": _widget(n),
            "config": {"label": "Requests"},
            "action": None,
            "payload": {},
            "values": {},
            "context": {},
            "workspace": WORKSPACE,
        }

    async def timed(make: Callable[[int], Awaitable[Any]]) -> tuple[list[float], list[Any]]:
        samples: list[float] = []
        answers: list[Any] = []
        for i in range(calls + count):
            n = i % count
            started = time.perf_counter()
            answer = await make(n)
            if i >= count:  # one round of warm-up
                samples.append((time.perf_counter() - started) * 1000)
            if i < count:
                answers.append(answer)
        return samples, answers

    call_ms, _ = running.on_loop(
        lambda: timed(lambda n: supervisor.call_ui(_name(n), _widget(n), request(n)))
    )
    ask_ms, rendered = running.on_loop(
        lambda: timed(
            lambda n: surfaces.ask(
                _name(n), _widget(n), config={"label": "Requests"}, workspace=WORKSPACE
            )
        )
    )
    if not all(r.ok for r in rendered):
        raise SystemExit(f"a widget failed in process: {[r.failure for r in rendered]}")
    board = {t.plugin: t for t in workspace.dashboards.layout("")[1]}
    html_ms: list[float] = []
    sizes: list[int] = []
    for i in range(calls):
        n = i % count
        context = _tile_context(WORKSPACE, board[_name(n)], "x" * 43)
        started = time.perf_counter()
        html = render_rendered(rendered[n], context, "")
        html_ms.append((time.perf_counter() - started) * 1000)
        sizes.append(len(html))
    return {
        "calls": calls,
        "call_ui": percentiles(call_ms, 3, suffix="_ms"),
        "ask_call_and_check": percentiles(ask_ms, 3, suffix="_ms"),
        "render_html": percentiles(html_ms, 3, suffix="_ms"),
        "tile_html_bytes": round(sum(sizes) / len(sizes)),
    }


# --- the load (a separate process) ----------------------------------------------------------


class _Browser:
    """What a browser does on the dashboard, each request timed (ms) from send to the whole
    answer: at most six connections, kept alive, signed in with the cookie."""

    def __init__(self, config: dict[str, Any], http: httpx.AsyncClient) -> None:
        self.http = http
        self.ws: str = config["workspace"]
        self.tiles: list[str] = config["tiles"]
        self.server: int = config["server_pid"]
        self.connections = asyncio.Semaphore(BROWSER_CONNECTIONS)

    async def sign_in(self, token: str) -> None:
        form = await self.http.get("/workspaces")
        signed = await self.http.post(
            "/workspaces/signin", data={"token": token, "csrf": _csrf(form.text)}
        )
        if signed.status_code != 303:
            raise SystemExit(f"sign-in failed: HTTP {signed.status_code}: {signed.text[:300]}")
        page = await self.http.get(f"/workspaces/{self.ws}/dashboard")
        found = re.findall(r'data-testid="tile" data-tile="(\w+)"', page.text)
        if sorted(found) != sorted(self.tiles):
            raise SystemExit(f"the dashboard shows tiles {found}, expected {self.tiles}")
        # the six connections up, as a browser keeps them, before anything is timed
        await asyncio.gather(*(self.http.get(STATIC) for _ in range(BROWSER_CONNECTIONS)))

    async def timed(self, method: str, url: str, **options: Any) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = await self.http.request(method, url, **options)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{method} {url}: HTTP {response.status_code}: {response.text}")
        return elapsed, response

    async def trivial(self, count: int) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {"static": [], "versions": []}
        for _ in range(count):
            found["static"].append((await self.timed("GET", STATIC))[0])
            versions = f"/workspaces/{self.ws}/ui/versions"
            found["versions"].append((await self.timed("GET", versions, headers=PARTIAL))[0])
        return found

    async def tile(self, tile_id: str) -> float:
        async with self.connections:  # queued behind the other five: not counted
            elapsed, response = await self.timed(
                "GET", f"/workspaces/{self.ws}/dashboard/tiles/{tile_id}", headers=PARTIAL
            )
        _fragment(response)
        return elapsed

    async def view(self) -> tuple[float, list[float], float]:
        """One page view: the page's time, its tiles' times, page sent -> last tile answered."""
        started = time.perf_counter()
        page_ms, response = await self.timed("GET", f"/workspaces/{self.ws}/dashboard")
        ids = re.findall(r'data-pp-src="/workspaces/\w+/dashboard/tiles/(\w+)"', response.text)
        answered = await asyncio.gather(*(self.tile(t) for t in ids))
        return page_ms, list(answered), (time.perf_counter() - started) * 1000

    async def views(self, count: int, warm_up: int = 3) -> dict[str, Any]:
        found: dict[str, Any] = {"page": [], "tile": [], "slowest_tile": [], "view_wall": []}
        for _ in range(warm_up):
            await self.view()
        cpu, started = _cpu_ms(self.server), time.perf_counter()
        for _ in range(count):
            page_ms, tiles, wall = await self.view()
            found["page"].append(page_ms)
            found["tile"].extend(tiles)
            found["slowest_tile"].append(max(tiles))
            found["view_wall"].append(wall)
        used = _cpu_ms(self.server) - cpu
        found["server_cpu_ms_per_view"] = used / count
        found["server_cpu_share"] = used / ((time.perf_counter() - started) * 1000)
        return found

    async def action(self, form: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Submit a tile's button as the page's script does (its form's fields, to its form's
        URL); the time, and the button of the fragment that came back."""
        elapsed, response = await self.timed(
            "POST", form["url"], data=form["fields"], headers=PARTIAL
        )
        return elapsed, _button(_fragment(response))

    async def actions(self, count: int) -> dict[str, Any]:
        forms = {}
        for tile_id in self.tiles:  # warm-up: each tile's button, pressed once
            url = f"/workspaces/{self.ws}/dashboard/tiles/{tile_id}"
            _, response = await self.timed("GET", url, headers=PARTIAL)
            _, forms[tile_id] = await self.action(_button(_fragment(response)))
        cpu = _cpu_ms(self.server)
        times = []
        for n in range(count):
            tile_id = self.tiles[n % len(self.tiles)]
            elapsed, forms[tile_id] = await self.action(forms[tile_id])
            times.append(elapsed)
        return {"action": times, "server_cpu_ms_per_action": (_cpu_ms(self.server) - cpu) / count}


def _button(html: str) -> dict[str, Any]:
    """The URL and fields of the first button's form in a tile's HTML (what ``FormData`` sends:
    the CSRF token, the action, its payload and whatever else the host put there)."""
    found = re.search(
        r'<form method="post" action="([^"]+)"[^>]*data-pp-action>(.*?)</form>', html, re.S
    )
    if found is None:
        raise SystemExit(f"no button in the tile: {html[:300]}")
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found.group(2))
    form = {name: unescape(value) for name, value in fields}
    if form.get("action") != "bump":
        raise SystemExit(f"the tile's button sends {form}")
    return {"url": unescape(found.group(1)), "fields": form}


def _fragment(response: httpx.Response) -> str:
    answer = response.json()
    if not answer["ok"] or "pp-stat-value" not in answer["html"]:
        raise SystemExit(f"a tile answered without its tree: {answer}")
    html: str = answer["html"]
    return html


async def _load(config: dict[str, Any]) -> dict[str, Any]:
    """Sign in, then the trivial requests, the page views and the actions."""
    limits = httpx.Limits(
        max_connections=BROWSER_CONNECTIONS, max_keepalive_connections=BROWSER_CONNECTIONS
    )
    async with httpx.AsyncClient(
        base_url=config["url"], timeout=30, limits=limits, follow_redirects=False
    ) as http:
        browser = _Browser(config, http)
        await browser.sign_in(config["token"])
        result: dict[str, Any] = await browser.trivial(config["trivial"])
        result |= await browser.views(config["views"])
        result |= await browser.actions(config["actions"])
        return result


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    if found is None:
        raise SystemExit("no CSRF token on the page")
    return found.group(1)


def _run_load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--load"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the load client failed:\n{done.stdout}{done.stderr}")
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


# --- the whole run --------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


@contextlib.contextmanager
def _profiled(running: Running, path: Path | None) -> Iterator[None]:
    """With ``path``: cProfile of the server's thread (where every request is handled) for the
    block, written to ``path`` (``python -m pstats path``)."""
    if path is None:
        yield
        return
    import cProfile

    profile = cProfile.Profile()

    async def switch(on: bool) -> None:
        profile.enable() if on else profile.disable()

    running.on_loop(lambda: switch(True))
    try:
        yield
    finally:
        running.on_loop(lambda: switch(False))
        profile.dump_stats(str(path))


def run(sizes: Sizes, quick: bool, profile: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "ui",
        "quick": quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "sizes": asdict(sizes),
        "browser_connections": BROWSER_CONNECTIONS,
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        setup = time.perf_counter()
        with registry(root / "registry") as server:
            _publish(server, root / "plugins", sizes.plugins)
            with _host_service(root, server.url) as running:
                token, tiles = _board(running, sizes.plugins)
                result["setup_s"] = round(time.perf_counter() - setup, 1)
                with _profiled(running, profile):
                    loaded = _run_load(
                        {
                            "url": running.url,
                            "workspace": WORKSPACE,
                            "token": token,
                            "tiles": tiles,
                            "views": sizes.views,
                            "actions": sizes.actions,
                            "trivial": sizes.trivial,
                            "server_pid": os.getpid(),
                        }
                    )
                result["in_process"] = _in_process(running, sizes.plugins, sizes.bare)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    http = {
        kind: percentiles(loaded[kind], 2, suffix="_ms")
        for kind in ("page", "tile", "slowest_tile", "view_wall", "action", "static", "versions")
    }
    http["tile_requests"] = len(loaded["tile"])
    http["server_cpu_ms_per_view"] = round(loaded["server_cpu_ms_per_view"], 1)
    http["server_cpu_share_during_views"] = round(loaded["server_cpu_share"], 2)
    http["server_cpu_ms_per_action"] = round(loaded["server_cpu_ms_per_action"], 2)
    result["http"] = http
    bare = result["in_process"]["call_ui"]
    value = http["slowest_tile"]["p95_ms"]
    action = http["action"]["p95_ms"]
    result["ratios"] = {
        "tile_p50_to_call_ui_p50": _ratio(http["tile"]["p50_ms"], bare["p50_ms"]),
        "tile_p95_to_call_ui_p95": _ratio(http["tile"]["p95_ms"], bare["p95_ms"]),
        "action_p95_to_call_ui_p95": _ratio(action, bare["p95_ms"]),
        "tile_p50_to_static_p50": _ratio(http["tile"]["p50_ms"], http["static"]["p50_ms"]),
        "tile_p50_to_versions_p50": _ratio(http["tile"]["p50_ms"], http["versions"]["p50_ms"]),
    }
    result["targets"] = {
        "dashboard_10_widgets_p95_ms": {
            "value": value,
            "target": TARGET_DASHBOARD_P95_MS,
            "met": value <= TARGET_DASHBOARD_P95_MS,
            "widgets": sizes.plugins,
            "views": sizes.views,
            "what": "p95 over page views of the view's slowest tile request",
            "page_p95_ms": http["page"]["p95_ms"],
            "view_wall_p95_ms": http["view_wall"]["p95_ms"],
            "server_cpu_ms_per_view": http["server_cpu_ms_per_view"],
        },
        "widget_action_roundtrip_p95_ms": {
            "value": action,
            "target": TARGET_ACTION_P95_MS,
            "met": action <= TARGET_ACTION_P95_MS,
            "calls": sizes.actions,
            "call_ui_p95_ms": bare["p95_ms"],
        },
    }
    result["notes"] = [
        "latencies are the client's (another process): send -> whole answer",
        "the service runs in this process on uvicorn (one event loop), the widgets in their "
        "sandboxed workers, the registry in its own process (idle while timing)",
    ]
    if quick:
        result["notes"].append(f"quick: {sizes.plugins} widgets, not 10: a smoke run")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON on one line")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--views", type=int, help="page views to time")
    parser.add_argument("--actions", type=int, help="widget actions to time")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the server's thread under load here"
    )
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(json.load(sys.stdin)))))
        return
    sizes = QUICK if args.quick else FULL
    if args.views is not None:
        if args.views < 1:
            parser.error("--views must be at least 1")
        sizes = replace(sizes, views=args.views)
    if args.actions is not None:
        if args.actions < 1:
            parser.error("--actions must be at least 1")
        sizes = replace(sizes, actions=args.actions)
    result = run(sizes, args.quick, args.profile)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
