"""``plugport dev`` as an author runs it: a subprocess on a generated template, driven through
its page API and its JSON lines; edits go live, broken edits keep the old version, Ctrl-C
leaves no process and no port behind."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport import scaffold
from tests.dev._devproc import DevProcess, alive, descendants, dev_command, dev_env

pytestmark = pytest.mark.slow

LIVE_WITHIN_S = 1.0


def counter(tmp_path: Path) -> tuple[Path, Path]:
    """The widget template, its command answering ``[mark, count]``."""
    root = tmp_path / "counter"
    scaffold.create_plugin("acme.counter", "widget", root)
    code = root / "counter" / "plugin.py"
    text = code.read_text()
    assert "        return count\n" in text
    code.write_text(text.replace("        return count\n", '        return ["v1", count]\n'))
    return root, code


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_edit_reload_broken_edits_and_ctrl_c(tmp_path: Path) -> None:
    root, code = counter(tmp_path)
    manifest = root / "plugport.toml"
    with DevProcess(root) as dev:
        page = dev.started()
        ready = next(e for e in dev.events if e["event"] == "ready")
        assert dev.call("counter.increment")["value"] == ["v1", 1]
        assert dev.get("/api/storage")["items"] == {"count": 1}
        info = dev.get("/api/plugin")
        assert (info["name"], info["state"], info["pid"]) == (
            "acme.counter",
            "active",
            ready["worker"],
        )

        # An edit is live within the target, counted from the write.
        written = time.monotonic()
        code.write_text(code.read_text().replace('"v1"', '"v2"'))
        count = 1  # the old version answers until the reload: each call still counts
        while (answer := dev.call("counter.increment"))["value"][0] != "v2":
            assert time.monotonic() - written < LIVE_WITHIN_S, answer
            count += 1
            assert answer["value"] == ["v1", count]
            time.sleep(0.02)
        assert time.monotonic() - written < LIVE_WITHIN_S
        count += 1
        assert answer["value"] == ["v2", count]  # storage survived the reload
        dev.wait_for("reloaded", version="0.1.0")

        # A broken manifest: the error names the field and line; the old version answers.
        good = manifest.read_text()
        manifest.write_text(good.replace('version = "0.1.0"', 'version = "one"'))
        error = dev.wait_for("error", stage="manifest")
        assert (error["file"], error["field"], error["line"]) == ("plugport.toml", "version", 2)
        assert error["keeping"] == "acme.counter 0.1.0"
        assert dev.call("counter.increment")["value"] == ["v2", count + 1]

        # Fixed (and bumped): reloaded.
        manifest.write_text(good.replace('version = "0.1.0"', 'version = "0.2.0"'))
        dev.wait_for("reloaded", version="0.2.0")

        # A syntax error: file:line:col; the old version answers.
        fine = code.read_text()
        lines = fine.splitlines()
        at = lines.index("from typing import Any")  # outside the module docstring
        lines.insert(at, "def broken(:")
        code.write_text("\n".join(lines) + "\n")
        error = dev.wait_for("error", stage="syntax")
        assert (error["file"], error["line"]) == ("counter/plugin.py", at + 1)
        assert error["column"] > 0
        assert dev.call("counter.increment")["value"] == ["v2", count + 2]
        code.write_text(fine.replace('"v2"', '"v3"'))
        dev.wait_for("reloaded", version="0.2.0")
        assert dev.call("counter.increment")["value"] == ["v3", count + 3]

        # What the stream showed: the capability calls with their verdict, the calls.
        names = {(e.get("kind"), e.get("name"), e.get("outcome")) for e in dev.events}
        assert ("capability", "storage.set", "granted") in names
        assert ("call", "command counter.increment", "ok") in names
        assert any(e["kind"] == "audit" for e in dev.get("/api/activity?since=0"))

        # Ctrl-C: exit 0, nothing left running, the port closed.
        started = descendants(dev.process.pid)
        assert started, "dev runs a zygote and a worker"
        assert dev.interrupt() == 0
        dev.wait_for("stopped")
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in started if alive(pid)]
        assert not port_open(page["port"])
    assert (root / ".plugport-dev" / "runtime.sqlite").is_file()  # storage kept for next time


def test_a_reload_waits_for_the_call_the_old_version_is_answering(tmp_path: Path) -> None:
    """An edit saved while a call runs: the version that took the call answers it, and the
    reload replaces it once that call has ended (a clean-clone run once saw such a call fail,
    its worker stopped under it)."""
    root, code = counter(tmp_path)
    slow = code.read_text()
    slow = slow.replace("from typing import Any\n", "import asyncio\nfrom typing import Any\n")
    slow = slow.replace("async def increment(self)", "async def increment(self, pause: float = 0)")
    slow = slow.replace(
        '        return ["v1", count]\n',
        '        await asyncio.sleep(pause)\n        return ["v1", count]\n',
    )
    assert "asyncio.sleep(pause)" in slow
    assert "pause: float" in slow
    code.write_text(slow)
    with DevProcess(root) as dev:
        dev.started()
        assert dev.call("counter.increment")["value"] == ["v1", 1]
        answered: dict[str, Any] = {}
        caller = threading.Thread(
            target=lambda: answered.update(dev.call("counter.increment", pause=1.0))
        )
        caller.start()
        time.sleep(0.3)  # the handler is in its pause
        code.write_text(code.read_text().replace('"v1"', '"v2"'))
        caller.join(15)
        assert answered.get("ok") is True, answered
        assert answered["value"] == ["v1", 2]
        dev.wait_for("reloaded", version="0.1.0")
        assert dev.call("counter.increment")["value"] == ["v2", 3]


def test_permission_edit_is_picked_up_on_reload(tmp_path: Path) -> None:
    root, _ = counter(tmp_path)
    manifest = root / "plugport.toml"
    granted = manifest.read_text()
    assert 'storage = "64 KiB"\n' in granted
    manifest.write_text(granted.replace('storage = "64 KiB"\n', ""))
    with DevProcess(root, "--fresh") as dev:
        dev.started()
        answer = dev.call("counter.increment")
        assert answer["ok"] is False
        assert "storage" in answer["error"]["message"]
        denied = dev.wait_for("activity", kind="capability", outcome="denied")
        assert denied["name"] == "storage.get"
        assert "permissions.storage is 0" in denied["detail"]
        assert dev.get("/api/storage")["items"] == {}
        # Another site in the author's browser: a rebound DNS name, a cross-site form post.
        rebound = dev.http.get(f"{dev.url}/api/storage", headers={"host": "evil.example"})
        assert rebound.status_code == 400
        form = dev.http.post(
            f"{dev.url}/api/call",
            content="target=counter.increment",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 422

        manifest.write_text(granted)
        diff = dev.wait_for("permissions")
        assert diff["added"] == ["storage 65536 > 0 bytes"]
        assert diff["removed"] == []
        dev.wait_for("reloaded")
        assert dev.call("counter.increment")["value"] == ["v1", 1]
        assert dev.interrupt() == 0


def tile(value: int, label: str = "Count") -> dict[str, Any]:
    return {
        "type": "stack",
        "children": [
            {"type": "stat", "label": label, "value": value},
            {"type": "button", "label": "Add one", "action": {"name": "increment"}},
        ],
    }


def test_the_page_renders_widgets_through_their_handler(tmp_path: Path) -> None:
    root, code = counter(tmp_path)
    with DevProcess(root, "--fresh") as dev:
        dev.started()
        assert dev.get("/api/widgets") == [
            {"id": "counter.counter", "title": "Counter", "version": 0}
        ]
        rendered = dev.get("/api/widgets/counter.counter")
        assert rendered == {
            "id": "counter.counter",
            "title": "Counter",
            "version": 0,
            "config": {"label": "Count"},
            "action": None,
            "tree": tile(0),
        }
        settings = json.dumps({"label": "Clicks"})
        assert dev.get(f"/api/widgets/counter.counter?config={settings}")["tree"] == tile(
            0, "Clicks"
        )

        # the command invalidates the tile: its version moves, the next render shows the count
        assert dev.call("counter.increment")["value"] == ["v1", 1]
        assert dev.get("/api/widgets")[0]["version"] == 1
        assert dev.get("/api/widgets/counter.counter")["tree"] == tile(1)
        # the tile's button, as the dashboard sends it
        pressed = dev.http.post(
            f"{dev.url}/api/widgets/counter.counter", json={"action": "increment"}
        )
        assert pressed.status_code == 200, pressed.text
        assert pressed.json()["tree"] == tile(2)

        # refusals name what is wrong, and change nothing
        def refused(response: httpx.Response, status: int) -> dict[str, Any]:
            assert response.status_code == status, response.text
            body: dict[str, Any] = response.json()
            return body

        missing = refused(dev.http.get(f"{dev.url}/api/widgets/counter.nope"), 404)
        assert (
            missing["detail"]
            == "no widget 'counter.nope'; acme.counter contributes: counter.counter"
        )
        made_up = refused(
            dev.http.post(f"{dev.url}/api/widgets/counter.counter", json={"action": "reset"}), 400
        )
        assert "offers no action 'reset' now (its tree offers: increment)" in made_up["detail"]
        bad_setting = refused(
            dev.http.get(
                f"{dev.url}/api/widgets/counter.counter", params={"config": '{"label": 7}'}
            ),
            400,
        )
        assert (bad_setting["field"], bad_setting["reason"]) == (
            "/label",
            "setting: 7 is not of type 'string'",
        )
        not_json = refused(
            dev.http.get(f"{dev.url}/api/widgets/counter.counter", params={"config": "[1]"}), 400
        )
        assert "config must be a JSON object" in not_json["detail"]
        rebound = dev.http.get(
            f"{dev.url}/api/widgets/counter.counter", headers={"host": "evil.example"}
        )
        assert rebound.status_code == 400
        assert dev.get("/api/storage")["items"] == {"count": 2}

        # a tree that breaks the schema: the field it breaks; a handler that raises: its traceback
        good = code.read_text()
        code.write_text(good.replace('"value": count}', '"value": [count]}'))
        dev.wait_for("reloaded")
        broken = refused(dev.http.get(f"{dev.url}/api/widgets/counter.counter"), 422)
        assert broken["field"] == "/children/0/value"
        assert "is not of type 'number', 'string'" in broken["reason"]
        code.write_text(
            good.replace("        if request.action", "        1 / 0\n        if request.action")
        )
        dev.wait_for("reloaded")
        raised = refused(dev.http.get(f"{dev.url}/api/widgets/counter.counter"), 502)
        assert raised["error"]["type"] == "ZeroDivisionError"
        assert "1 / 0" in raised["error"]["traceback"]
        assert dev.interrupt() == 0


def test_a_plugin_that_fails_to_import_is_reported_and_the_fix_picked_up(tmp_path: Path) -> None:
    root, code = counter(tmp_path)
    good = code.read_text()
    code.write_text(good.replace("WIDGET_ID = ", "raise RuntimeError('not yet')\nWIDGET_ID = "))
    line = code.read_text().splitlines().index("raise RuntimeError('not yet')") + 1
    with DevProcess(root, "--fresh") as dev:
        error = dev.wait_for("error", stage="import")
        assert (error["file"], error["line"]) == ("counter/plugin.py", line)
        assert "not yet" in error["message"]
        dev.started()
        answer = dev.call("counter.increment")
        assert answer["ok"] is False
        code.write_text(good)
        dev.wait_for("reloaded")
        assert dev.call("counter.increment")["value"] == ["v1", 1]
        assert dev.interrupt() == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such plugin directory"),
        ("no_manifest", "no plugport.toml"),
        ("invalid", "version"),
        ("bad_endpoint", "--allow-local"),
    ],
)
def test_bad_input_refuses_to_start_with_exit_2(tmp_path: Path, setup: str, message: str) -> None:
    root = tmp_path / "plugin"
    extra: list[str] = []
    if setup in ("no_manifest", "invalid"):
        root.mkdir()
    if setup == "invalid":
        (root / "plugport.toml").write_text('name = "acme.xx"\nversion = "one"\n')
    if setup == "bad_endpoint":
        scaffold.create_plugin("acme.xx", "basic", root)
        extra = ["--allow-local", "127.0.0.1"]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = subprocess.run(
        dev_command(str(root), "--port", "0", *extra),
        capture_output=True,
        text=True,
        timeout=60,
        env=dev_env(),
        check=False,
    )
    assert done.returncode == 2, done
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no dev home made


def test_allow_local_lets_net_fetch_reach_exactly_that_endpoint(tmp_path: Path) -> None:
    root = tmp_path / "fetcher"
    scaffold.create_plugin("acme.fetcher", "basic", root)
    code = root / "fetcher" / "plugin.py"
    code.write_text(
        "from plugport.sdk import Plugin, hook\n\n\n"
        "class FetcherPlugin(Plugin):\n"
        '    @hook("greet")\n'
        "    async def greet(self, name: str) -> list:\n"
        "        answer = await self.api.net.fetch(name)\n"
        "        return [answer.status, answer.body.decode()]\n"
    )
    with (
        serving_text("fake service") as port,
        serving_text("other service") as other,
        DevProcess(root, "--fresh", "--allow-local", f"127.0.0.1:{port}") as dev,
    ):
        dev.started()
        assert any(
            e["event"] == "allow_local" and e["endpoint"] == f"127.0.0.1:{port}" for e in dev.events
        )
        assert dev.call("greet", name=f"http://127.0.0.1:{port}/")["value"] == [
            200,
            "fake service",
        ]
        refused = dev.call("greet", name=f"http://127.0.0.1:{other}/")
        assert refused["ok"] is False
        assert "is an IP address" in refused["error"]["message"]
        refused = dev.call("greet", name=f"http://localhost:{port}/")
        assert refused["ok"] is False
        assert "not in the plugin's network grants" in refused["error"]["message"]
        assert dev.interrupt() == 0


@contextlib.contextmanager
def serving_text(text: str) -> Iterator[int]:
    body = text.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_plugin_with_locked_libraries_runs_and_a_stale_lock_is_reported(
    tmp_path: Path, index: Any
) -> None:
    """The markdown template: its lock goes into the development store, the plugin imports
    markdown in its sandbox; a [python] edit without `plugport lock` is a problem that keeps
    the running version, and locking again picks the change up."""
    from plugport.deps.locker import IndexOptions, lock_plugin

    root = tmp_path / "notes"
    scaffold.create_plugin("acme.notes", "markdown", root)
    lock_plugin(root, index=IndexOptions(index_url=index.url))
    manifest = root / "plugport.toml"
    with DevProcess(root, "--fresh") as dev:
        dev.started()
        answer = dev.call("render_markdown", text="# Hi")
        assert answer["value"] == "<h1>Hi</h1>", answer
        manifest.write_text(
            manifest.read_text().replace('"markdown>=3.5"', '"markdown>=3.5", "tinyutil"')
        )
        error = dev.wait_for("error", stage="manifest")
        assert error["file"] == "plugport.lock"
        assert "added tinyutil" in error["message"]
        assert "run `plugport lock`" in error["message"]
        assert dev.call("render_markdown", text="*still*")["value"] == "<p><em>still</em></p>"
        lock_plugin(root, index=IndexOptions(index_url=index.url))
        dev.wait_for("reloaded")
        assert dev.call("render_markdown", text="# Again")["value"] == "<h1>Again</h1>"
        assert dev.interrupt() == 0
