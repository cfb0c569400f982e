"""The capability fakes with a real plugin in a real sandboxed worker: routes, a local server,
cassettes (record, replay offline, mismatch, redaction), storage quota, events both ways, config
and UI snapshots, and that no fake lets a plugin past the production checks."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plugport.components import ComponentError
from plugport.errors import (
    InvalidInputError,
    NetworkFetchError,
    PermissionDeniedError,
    PluginCallError,
    ResourceLimitExceededError,
)
from plugport.runtime.capabilities.fakes import REDACTED_VALUE, FakeNetwork
from plugport.runtime.capabilities.network import FetchPolicy, NetworkBroker
from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner
from plugport.testing._world import World
from tests.testing._plugins import write_plugin

pytestmark = pytest.mark.slow

PROBE = """
from plugport.sdk import widget


class Main(Plugin):
    @command("probe.fetch")
    async def fetch(self, url, method="GET", headers=None, json=None):
        response = await self.api.net.fetch(url, method=method, headers=headers, json=json)
        return {"status": response.status, "body": response.text()}

    @command("probe.set")
    async def set(self, key, value):
        return await self.api.storage.set(key, value)

    @command("probe.publish")
    async def publish(self, topic, payload):
        return await self.api.events.publish(topic, payload)

    @command("probe.show")
    async def show(self, text):
        await self.api.ui.message(text, level="warning")
        await self.api.storage.set("shown", len(text))
        await self.api.ui.invalidate("probe.stat")

    @widget("probe.stat")
    async def stat(self, request):
        if request.action == "open":
            why = request.payload.get("why", "")
            return {"type": "overlay", "title": "Why", "children": [{"type": "text", "text": why}]}
        if request.action == "break":
            return {"type": "stack", "children": [{"type": "stat", "label": "no value"}]}
        if request.config["label"] == "overlay":  # an overlay as a plain render's answer
            return {"type": "overlay", "title": "x", "children": []}
        shown = await self.api.storage.get("shown", 0)
        return {"type": "stat", "label": request.config["label"], "value": shown}

    @command("probe.config")
    async def config(self):
        return await self.api.config.get()

    @on_event("jobs.*")
    async def on_job(self, payload, topic, source):
        if payload.get("explode"):
            raise RuntimeError("job handler exploded")
        await self.api.storage.set("last", {"topic": topic, "payload": payload, "from": source})
"""
PROBE_MANIFEST = """
[permissions]
network = ["api.example.com", "hooks.example.com"]
storage = 200
events.publish = ["probe.*"]
events.subscribe = ["jobs.*"]
ui = ["messages", "widgets"]
config = true

[contributes]
commands = [
    { id = "probe.fetch", title = "Fetch" },
    { id = "probe.set", title = "Set" },
    { id = "probe.publish", title = "Publish" },
    { id = "probe.show", title = "Show" },
    { id = "probe.config", title = "Config" },
]

[[contributes.widgets]]
id = "probe.stat"
title = "Stat"
config.type = "object"
config.properties.label = { type = "string", default = "Shown", maxLength = 10 }

[config]
type = "object"
properties.channel = { type = "string", default = "#general" }
properties.retries = { type = "integer", minimum = 0, maximum = 5 }
"""


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plugin(tmp_path_factory.mktemp("plugins"), "acme.probe", PROBE, PROBE_MANIFEST)


@pytest.fixture
def world(runner: Runner, tmp_path: Path) -> Iterator[World]:
    world = World(runner, tmp_path / "home", "strict")
    yield world
    world.close()


@pytest.fixture
def probe(world: World, probe_dir: Path) -> PluginHandle:
    return world.load(probe_dir)


BLOB = bytes(range(256))  # not UTF-8: kept as base64 in a cassette


class _Echo(BaseHTTPRequestHandler):
    """A local service: answers with what it was sent, and a cookie it must not leak."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.dumps(
            {"path": self.path, "got": json.loads(self.rfile.read(length) or b"null")}
        ).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "session=s3cr3t")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- net -----------------------------------------------------------------------------------------


def test_routes_answer_first_match_and_record_requests(probe: PluginHandle) -> None:
    probe.net.route("GET", "https://api.example.com/items/*", json={"id": "glob"})
    probe.net.route("GET", "https://api.example.com/items/1", json={"id": "exact"})
    probe.net.route("POST", "https://hooks.example.com/x", status=204)
    got = probe.command("probe.fetch", "https://api.example.com/items/1")
    assert got == {"status": 200, "body": '{"id":"glob"}'}  # first match wins
    assert probe.command("probe.fetch", "https://hooks.example.com/x", method="POST")["status"] == (
        204
    )
    assert [(r.method, r.url, r.answered_by) for r in probe.net.requests] == [
        ("GET", "https://api.example.com/items/1", "route"),
        ("POST", "https://hooks.example.com/x", "route"),
    ]
    probe.assert_used("net.fetch")
    probe.assert_only_declared()


def test_an_unmatched_request_fails_the_call_and_is_listed(probe: PluginHandle) -> None:
    probe.net.route("GET", "https://api.example.com/ok", json={})
    with pytest.raises(PluginCallError) as caught:
        probe.command("probe.fetch", "https://hooks.example.com/x", method="POST")
    assert caught.value.type == "NetworkFetchError"
    assert (
        "no route for POST https://hooks.example.com/x; declared: GET https://api.example.com/ok"
    ) in str(caught.value)
    [unmatched] = probe.net.unmatched
    assert (unmatched.method, unmatched.url) == ("POST", "https://hooks.example.com/x")


def test_routes_cannot_open_an_undeclared_host(probe: PluginHandle) -> None:
    # The abuse case: a route (or a local server) for a host the manifest does not grant
    # changes nothing; the broker refuses before the fake network is asked.
    probe.net.route("*", "*", json={"pwned": True})
    for url in (
        "https://evil.example.net/",
        "http://127.0.0.1/",
        "http://localhost/",
        "https://api.example.com:8443/",
    ):
        with pytest.raises(PermissionDeniedError):
            probe.command("probe.fetch", url)
    assert probe.net.requests == []
    probe.assert_denied("net.fetch")
    probe.assert_audited("deny")
    with pytest.raises(AssertionError, match=r"no 'crash' audit entry for acme.probe; entries: "):
        probe.assert_audited("crash")
    with pytest.raises(AssertionError, match="was denied 4 call"):
        probe.assert_only_declared()


def test_allow_local_is_loopback_only(world: World) -> None:
    network = world.network
    for address in ("10.0.0.5:80", "example.com:80", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(InvalidInputError, match="loopback HOST:PORT"):
            network.allow_local(address)
    assert network.local is None


def test_record_then_replay_offline(probe: PluginHandle, echo_server: str, tmp_path: Path) -> None:
    tape = tmp_path / "cassettes" / "hooks.json"
    probe.net.allow_local(echo_server)
    probe.net.cassette(tape, mode="record")
    secret = {"Authorization": "Bearer tok-123", "X-Api-Key": "k-456", "Accept": "text/plain"}
    live = probe.command("probe.fetch", "https://hooks.example.com/x?a=1", "POST", secret, {"n": 1})
    assert live["status"] == 201
    assert json.loads(live["body"]) == {"path": "/x?a=1", "got": {"n": 1}}
    text = tape.read_text()
    for leaked in ("tok-123", "k-456", "s3cr3t"):
        assert leaked not in text
    [recorded] = json.loads(text)["interactions"]
    assert recorded["request"]["headers"]["authorization"] == REDACTED_VALUE
    assert recorded["request"]["headers"]["x-api-key"] == REDACTED_VALUE
    assert recorded["request"]["headers"]["accept"] == "text/plain"
    assert recorded["response"]["headers"]["set-cookie"] == REDACTED_VALUE
    assert json.loads(recorded["request"]["body"]) == {"n": 1}

    # A new runtime, no server: the cassette alone answers.
    other = World(probe._world.runner, tmp_path / "offline", "strict")
    try:
        replaying = other.load(probe.path)
        replaying.net.cassette(tape)  # mode="replay"
        again = replaying.command(
            "probe.fetch", "https://hooks.example.com/x?a=1", "POST", secret, {"n": 1}
        )
        assert again == live
        assert [r.answered_by for r in replaying.net.requests] == ["cassette"]
        with pytest.raises(PluginCallError) as caught:
            replaying.command("probe.fetch", "https://hooks.example.com/y", "POST")
        message = str(caught.value)
        assert (
            f"no recorded interaction for POST https://hooks.example.com/y in cassette {tape}"
            in (message)
        )
        assert "closest recorded: POST https://hooks.example.com/x?a=1" in message
    finally:
        other.close()


def test_cassette_mode_and_file_errors(tmp_path: Path) -> None:
    network = FakeNetwork()
    with pytest.raises(InvalidInputError, match="does not exist; record it once"):
        network.cassette(tmp_path / "missing.json")
    with pytest.raises(InvalidInputError, match="mode must be one of replay, record, once"):
        network.cassette(tmp_path / "x.json", mode="rewind")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"bad\.json is not readable JSON"):
        network.cassette(tmp_path / "bad.json")
    assert network.tape is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


# --- storage, config, events, ui --------------------------------------------------------------


def test_storage_seed_and_quota(probe: PluginHandle) -> None:
    assert probe.storage.seed({"a": [1, 2]}) == len("a") + len("[1,2]")
    with pytest.raises(ResourceLimitExceededError, match="storage quota of 200 bytes"):
        probe.storage.seed({"big": "x" * 300})
    with pytest.raises(PluginCallError, match="exceeded storage"):
        probe.command("probe.set", "big", "x" * 300)
    assert probe.storage.data == {"a": [1, 2]}  # neither write changed anything
    assert probe.command("probe.set", "b", True) == probe.storage.usage


def test_config_is_checked_by_the_schema(probe: PluginHandle) -> None:
    assert probe.command("probe.config") == {"channel": "#general"}
    probe.config.set(retries=2)
    with pytest.raises(InvalidInputError, match=r"config\.retries: 9 is greater than"):
        probe.config.set(retries=9)
    assert probe.config.values == {"channel": "#general", "retries": 2}
    assert probe.command("probe.config") == {"channel": "#general", "retries": 2}


def test_events_recorded_and_injected(probe: PluginHandle) -> None:
    # No plugin subscribes; the recorder is a host listener, counted as production counts one.
    assert probe.command("probe.publish", "probe.done", {"n": 1}) == 1
    assert probe.events.published == [{"topic": "probe.done", "payload": {"n": 1}}]
    assert probe.emit("jobs.new", {"id": 3}) == 1
    assert probe.storage.data["last"] == {
        "topic": "jobs.new",
        "payload": {"id": 3},
        "from": "host",
    }
    with pytest.raises(PluginCallError, match="job handler exploded"):
        probe.emit("jobs.bad", {"explode": True})
    with pytest.raises(PermissionDeniedError, match="matches no granted publish pattern"):
        probe.command("probe.publish", "other.topic", {})
    assert probe.events.published == [{"topic": "probe.done", "payload": {"n": 1}}]


def test_ui_snapshot_is_plain_data(probe: PluginHandle) -> None:
    probe.command("probe.show", "disk almost full")
    snapshot = probe.ui.snapshot()
    assert snapshot == {
        "messages": [{"level": "warning", "text": "disk almost full"}],
        "commands": {},
        "invalidated": {"probe.stat": 1},
    }
    assert json.loads(json.dumps(snapshot)) == snapshot


def test_ui_renders_a_widget_through_its_handler(probe: PluginHandle) -> None:
    assert probe.ui.widget("probe.stat") == {"type": "stat", "label": "Shown", "value": 0}
    probe.command("probe.show", "disk almost full")
    assert probe.ui.invalidated == {"probe.stat": 1}
    # the schema's defaults under the test's settings, as the host merges them
    assert probe.ui.widget("probe.stat", {"label": "Chars"}) == {
        "type": "stat",
        "label": "Chars",
        "value": 16,
    }
    answer = probe.ui.render("probe.stat", action="open", payload={"why": "<b>full</b>"})
    assert answer == {
        "type": "overlay",
        "title": "Why",
        "children": [{"type": "text", "text": "<b>full</b>"}],
    }
    with pytest.raises(InvalidInputError, match="contributes no UI surface 'nope'"):
        probe.ui.widget("nope")


def test_ui_holds_trees_and_settings_to_the_hosts_rules(probe: PluginHandle) -> None:
    with pytest.raises(ComponentError) as broken:
        probe.ui.render("probe.stat", action="break")
    assert (broken.value.plugin, broken.value.surface) == ("acme.probe", "probe.stat")
    assert broken.value.field == "/children/0"
    assert "'value' is a required property" in broken.value.reason
    with pytest.raises(ComponentError) as overlay:
        probe.ui.widget("probe.stat", {"label": "overlay"})
    assert (overlay.value.field, overlay.value.reason) == (
        "",
        "an overlay can only be the whole answer to an action",
    )
    with pytest.raises(ComponentError) as setting:
        probe.ui.widget("probe.stat", {"label": "much too long"})
    assert (setting.value.field, setting.value.surface) == ("/label", "config")
    assert probe.ui.invalidated == {}  # rendering is not invalidating


LISTENER = """
class Main(Plugin):
    @on_event("probe.*")
    async def heard(self, payload, topic, source):
        await self.api.storage.set("heard", {"topic": topic, "payload": payload, "from": source})
"""
LISTENER_MANIFEST = """
[permissions]
storage = 200
events.subscribe = ["probe.*"]
"""


def test_events_flow_between_plugins_of_one_world(
    world: World, probe_dir: Path, tmp_path: Path
) -> None:
    probe = world.load(probe_dir)
    listener = world.load(write_plugin(tmp_path, "acme.listener", LISTENER, LISTENER_MANIFEST))
    # The listener plugin and the one recording host listener, however many fakes read it.
    assert probe.command("probe.publish", "probe.done", {"n": 2}) == 2
    assert listener.storage.data == {
        "heard": {"topic": "probe.done", "payload": {"n": 2}, "from": "acme.probe"}
    }
    assert probe.events.published == [{"topic": "probe.done", "payload": {"n": 2}}]
    assert listener.events.published == []
    with pytest.raises(InvalidInputError, match=r"'acme\.probe' is already loaded"):
        world.load(probe_dir)


# --- the fake network under the real broker, without a worker ----------------------------------


def _broker(network: FakeNetwork) -> NetworkBroker:
    policy = FetchPolicy(allowed=("api.example.com",))
    return NetworkBroker("acme.direct", policy, resolver=network, transport=network)


def test_once_records_then_replays_binary_bodies(echo_server: str, tmp_path: Path) -> None:
    tape = tmp_path / "once.json"
    url = "https://api.example.com/blob?v=1"
    first = FakeNetwork()
    first.allow_local(echo_server)
    assert first.cassette(tape, mode="once").recording
    live = asyncio.run(_broker(first).fetch(url))
    assert (live.status, live.body) == (200, BLOB)
    [recorded] = json.loads(tape.read_text())["interactions"]
    assert "body_base64" in recorded["response"]

    replay = FakeNetwork()  # no server now
    assert not replay.cassette(tape, mode="once").recording  # the file exists: replay
    again = asyncio.run(_broker(replay).fetch(url))
    assert (again.status, again.body) == (live.status, live.body)
    with pytest.raises(NetworkFetchError, match="no recorded interaction for GET"):
        asyncio.run(_broker(replay).fetch("https://api.example.com/other"))
    assert json.loads(tape.read_text())["interactions"] == [recorded]  # replay wrote nothing


def test_regex_routes_match_in_full() -> None:
    network = FakeNetwork()
    network.route("GET", re.compile(r"https://api\.example\.com/items/\d+"), json={"ok": 1})
    broker = _broker(network)
    assert asyncio.run(broker.fetch("https://api.example.com/items/42")).status == 200
    with pytest.raises(
        NetworkFetchError, match=r"no route for GET https://api\.example\.com/items/4/x"
    ):
        asyncio.run(broker.fetch("https://api.example.com/items/4/x"))
    assert [r.answered_by for r in network.requests] == ["route", "unmatched"]
