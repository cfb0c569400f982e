"""The base every service fake stands on: routes matched in full with captured parameters,
405 and 404 in the service's shape, failures switched on by a test (429 with the service's
rate-limit headers, 5xx) that run out, a request log, and ``mount`` putting a fake behind its
real host names so two fakes serve one plugin — through the host's real network broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner
from plugport.testing._world import World
from plugport.testing.services import FakeService, Refusal, Reply, ServiceRequest, route, send
from tests.testing._plugins import write_plugin


class FakeNotes(FakeService):
    """A tiny service: notes by id, a bearer token, errors as ``{"message": ...}``."""

    hosts: ClassVar[tuple[str, ...]] = ("notes.example.com",)
    name = "notes"

    def __init__(self, host_label: str = "notes") -> None:
        super().__init__()
        self.label = host_label
        self.notes: dict[str, str] = {}

    def error_reply(self, status: int, message: str) -> Reply:
        return Reply(status, json={"message": message})

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        return {"Retry-After": str(retry_after_s), "X-RateLimit-Remaining": "0"}

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        if request.headers.get("authorization") != "Bearer good":
            return self.error_reply(401, "Bad credentials")
        return None

    @route("PUT", r"/notes/(?P<id>[a-z0-9]+)")
    def put(self, request: ServiceRequest) -> Reply:
        body = self.parse_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise Refusal(self.error_reply(422, "text is required"))
        self.notes[request.params["id"]] = body["text"]
        return Reply(201, json={"id": request.params["id"], "by": self.label})

    @route("GET", r"/notes/(?P<id>[a-z0-9]+)")
    def get(self, request: ServiceRequest) -> Reply:
        note = self.notes.get(request.params["id"])
        if note is None:
            raise Refusal(self.error_reply(404, "Not Found"))
        return Reply(json={"text": note, "by": self.label})


class FakeOther(FakeNotes):
    hosts: ClassVar[tuple[str, ...]] = ("*.other.example",)


@pytest.fixture
def notes() -> Iterator[FakeNotes]:
    with FakeNotes() as fake:
        yield fake


def call(fake: FakeService, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": "Bearer good", **kw.pop("headers", {})}
    return httpx.request(method, fake.url + path, headers=headers, **kw)


def test_routes_answer_and_capture(notes: FakeNotes) -> None:
    assert call(notes, "PUT", "/notes/a1", json={"text": "hi"}).status_code == 201
    answer = call(notes, "GET", "/notes/a1")
    assert (answer.status_code, answer.json()) == (200, {"text": "hi", "by": "notes"})
    assert [r.method for r in notes.received()] == ["PUT", "GET"]
    assert notes.received("PUT", r"/notes/\w+")[0].json() == {"text": "hi"}


def test_refusals_are_in_the_services_shape(notes: FakeNotes) -> None:
    assert call(notes, "GET", "/notes/nope").json() == {"message": "Not Found"}
    assert call(notes, "DELETE", "/notes/a1").status_code == 405
    assert call(notes, "GET", "/elsewhere").status_code == 404
    assert call(notes, "GET", "/notes/a1", headers={"Authorization": "x"}).status_code == 401
    bad = call(notes, "PUT", "/notes/a1", content=b"{not json")
    assert (bad.status_code, bad.json()) == (400, {"message": "the body is not valid JSON"})
    assert call(notes, "PUT", "/notes/a1", json={"text": 3}).status_code == 422
    assert notes.notes == {}


def test_faults_run_out_and_can_target_a_path(notes: FakeNotes) -> None:
    notes.throttle(2, retry_after_s=7)
    first = call(notes, "GET", "/notes/x")
    assert first.status_code == 429
    assert (first.headers["retry-after"], first.headers["x-ratelimit-remaining"]) == ("7", "0")
    assert call(notes, "GET", "/notes/x").status_code == 429
    assert call(notes, "GET", "/notes/x").status_code == 404  # the throttle ran out
    notes.fail_next(503, path=r"/notes/b")
    assert call(notes, "GET", "/notes/x").status_code == 404  # another path: untouched
    assert call(notes, "GET", "/notes/b").status_code == 503
    assert call(notes, "GET", "/notes/b").status_code == 404


def test_send_posts_like_a_webhook_sender(notes: FakeNotes) -> None:
    sent = send(notes.url + "/notes/z", b"{}", {"Authorization": "Bearer good"})
    assert sent.status == 405
    assert sent.json() == {"message": "POST is not allowed here"}


def test_a_stopped_fake_says_so() -> None:
    fake = FakeNotes()
    with pytest.raises(RuntimeError, match="the fake notes is not running"):
        _ = fake.address


CLIENT = """
class Main(Plugin):
    @command("n.put")
    async def put(self, url, text):
        answer = await self.api.net.fetch(url, method="PUT", json={"text": text},
                                          credential="token", retry=True)
        return {"status": answer.status, "body": answer.json()}
"""
MANIFEST = """
[credentials.token]
kind = "bearer"
hosts = ["notes.example.com", "*.other.example"]

[permissions]
network = ["notes.example.com", "*.other.example"]

[contributes]
commands = [{ id = "n.put", title = "Put" }]
"""


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture
def client(runner: Runner, tmp_path: Path) -> Iterator[PluginHandle]:
    world = World(runner, tmp_path / "home", "strict")
    handle = world.load(write_plugin(tmp_path / "plugins", "acme.notes", CLIENT, MANIFEST))
    handle.secrets.set("token", "good")
    yield handle
    world.close()


@pytest.mark.slow
def test_two_fakes_behind_their_hosts_serve_one_plugin(client: PluginHandle) -> None:
    with FakeNotes() as notes, FakeOther("other") as other:
        notes.mount(client)
        other.mount(client)
        got = client.command("n.put", "https://notes.example.com/notes/a", "one")
        assert got == {"status": 201, "body": {"id": "a", "by": "notes"}}
        got = client.command("n.put", "https://eu.other.example/notes/b", "two")
        assert got["body"]["by"] == "other"
        assert (notes.notes, other.notes) == ({"a": "one"}, {"b": "two"})
        # The host injected the credential; the fake saw it, the plugin's record does not.
        assert notes.received()[0].headers["authorization"] == "Bearer good"
        assert client.net.requests[0].headers["authorization"] == "REDACTED"
        # A 429 with Retry-After is waited out by retry=True, then the request goes through.
        notes.throttle(1, retry_after_s=0)
        got = client.command("n.put", "https://notes.example.com/notes/c", "three")
        assert got["status"] == 201
        assert [r.path for r in notes.received("PUT")][-2:] == ["/notes/c", "/notes/c"]
