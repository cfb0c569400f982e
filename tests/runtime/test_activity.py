"""The activity feed: every capability call with its verdict, every handler call with its
duration, log lines and runtime decisions reach a listener, from a real worker."""

from __future__ import annotations

from pathlib import Path

from plugport.runtime.activity import Activity, ActivityFeed
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import supervise, write_plugin

BODY = """
class Main(Plugin):
    @hook("work")
    async def work(self):
        self.log.info("working", extra={"step": 1})
        await self.api.storage.set("k", 1)
        await self.api.net.fetch("https://example.com/")
"""


def test_a_listener_sees_calls_verdicts_logs_and_decisions(tmp_path: Path) -> None:
    install = write_plugin(
        tmp_path,
        "acme.busy",
        BODY,
        '[permissions]\nstorage = "1 KiB"\n[contributes]\nhooks = { work = 0 }\n',
    )
    seen: list[Activity] = []

    async def scenario(runtime: Supervisor) -> None:
        unsubscribe = runtime.activity.subscribe(seen.append)
        [outcome] = await runtime.call_hook("work")
        assert isinstance(outcome.error, Exception)
        unsubscribe()
        await runtime.call_hook("work")  # nobody listens any more

    supervise(tmp_path, [install], scenario, hooks=(HookSpec("work", ()),))
    by_kind = {(a.kind, a.name): a for a in seen}
    assert by_kind["log", "info"].detail == "working"
    assert by_kind["log", "info"].fields == {"step": 1}
    assert by_kind["capability", "storage.set"].outcome == "granted"
    denied = by_kind["capability", "net.fetch"]
    assert denied.outcome == "denied"
    assert "permissions.network grants no hosts" in denied.detail
    assert by_kind["audit", "activate"].plugin == "acme.busy"
    call = by_kind["call", "hook work"]
    assert call.outcome == "denied"  # the hook raised the broker's refusal
    assert call.duration_ms is not None
    assert call.duration_ms > 0
    assert len([a for a in seen if a.kind == "call"]) == 1  # the second call went unheard


def test_a_failing_listener_does_not_stop_the_others() -> None:
    feed = ActivityFeed()
    got: list[str] = []

    def broken(_: Activity) -> None:
        raise RuntimeError("watcher bug")

    feed.subscribe(broken)
    feed.subscribe(lambda a: got.append(a.name))
    assert feed.watching("audit")
    feed.emit(Activity("acme.x", "audit", "activate"))
    assert got == ["activate"]


def test_a_listener_hears_only_the_kinds_it_asked_for() -> None:
    feed = ActivityFeed()
    lines: list[str] = []
    unsubscribe = feed.subscribe(lambda a: lines.append(a.detail), ("log",))
    assert feed.watching("log")
    assert not feed.watching("capability")  # the broker builds no record for calls then
    feed.emit(Activity("acme.x", "capability", "storage.get", "granted"))
    feed.emit(Activity("acme.x", "log", "info", detail="hello"))
    unsubscribe()
    feed.emit(Activity("acme.x", "log", "info", detail="unheard"))
    assert lines == ["hello"]
    assert not feed.watching("log")
