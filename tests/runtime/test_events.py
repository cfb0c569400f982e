"""The event bus: the pure topic and payload checks, then a real bus on a real event loop with a
recording ``deliver``, covering routing, copies, isolation of failing receivers and the limits."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from plugport.errors import InvalidInputError, ResourceLimitExceededError
from plugport.manifest import match_topic
from plugport.runtime.capabilities.events import (
    HOST,
    Event,
    EventBus,
    check_pattern,
    check_topic,
    encode_payload,
    receivers,
)

T = TypeVar("T")
A, B, C = "acme.alpha", "acme.beta", "acme.gamma"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Recorder:
    """A ``deliver`` that records every (plugin, event) and can be told to hold or to fail."""

    def __init__(self, *, fail_for: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, Event]] = []
        self.fail_for = fail_for
        self.gate: asyncio.Event | None = None
        self.cancelled = 0

    async def __call__(self, plugin: str, event: Event) -> None:
        self.calls.append((plugin, event))
        if plugin in self.fail_for:
            raise RuntimeError(f"{plugin} broke")
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise

    def plugins(self) -> list[str]:
        return sorted(plugin for plugin, _ in self.calls)


# --- pure: matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("tasks.created", "tasks.created", True),
        ("tasks.created", "tasks.deleted", False),
        ("tasks.created", "tasks.created.late", False),
        ("tasks.*", "tasks.created", True),
        ("tasks.*", "tasks", False),
        ("tasks.*", "tasks.created.late", False),
        ("*.created", "tasks.created", True),
        ("*.created", "notes.created", True),
        ("*.created", "tasks.deleted", False),
        ("tasks.**", "tasks.created", True),
        ("tasks.**", "tasks.created.late", True),
        ("tasks.**", "tasks", False),
        ("tasks.**", "notes.created", False),
        ("*.*.done", "a.b.done", True),
        ("*.**", "tasks.created.late", True),
        ("**", "tasks", True),
        ("**", "tasks.created.late", True),
    ],
)
def test_match_topic(pattern: str, topic: str, expected: bool) -> None:
    assert match_topic(check_pattern(pattern), check_topic(topic)) is expected


@pytest.mark.parametrize("topic", ["tasks", "tasks.created", "a-b.c_d.0"])
def test_check_topic_accepts_exact_topics(topic: str) -> None:
    assert check_topic(topic) == topic


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("tasks.*", r"topic 'tasks\.\*' contains a wildcard; publish to one exact topic"),
        ("tasks.**", "contains a wildcard"),
        ("**", "contains a wildcard"),
        ("", r"topic: '' is not a topic pattern; write dot-separated lowercase words"),
        ("Tasks.Created", "topic: 'Tasks.Created' is not a topic pattern"),
        ("tasks..created", "is not a topic pattern"),
        ("tasks.created.", "is not a topic pattern"),
        ("tasks created", "is not a topic pattern"),
        (42, "topic must be a string such as 'tasks.created', not int"),
        (None, "topic must be a string such as 'tasks.created', not NoneType"),
    ],
)
def test_check_topic_refuses(topic: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_topic(topic)


@pytest.mark.parametrize("pattern", ["tasks.**.x", "**.tasks", "tasks.*x", "TASKS", "", "a..b"])
def test_check_pattern_refuses(pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=r"pattern: .* is not a topic pattern"):
        check_pattern(pattern)


def test_receivers_are_sorted_and_never_the_source() -> None:
    subs = {C: ("tasks.*",), A: ("tasks.created",), B: ("notes.*",)}
    assert receivers(subs, "tasks.created") == [A, C]
    assert receivers(subs, "tasks.created", source=A) == [C]
    assert receivers(subs, "other.topic") == []


# --- pure: payloads ------------------------------------------------------------------------------


def test_encode_payload_is_compact_utf8_json() -> None:
    assert encode_payload({"a": [1, 2.5, None, True], "é": "ü"}, 100, A) == (
        '{"a":[1,2.5,null,true],"é":"ü"}'.encode()
    )


def test_encode_payload_limit_boundary_counts_utf8_bytes() -> None:
    exact = "é" * 10  # 20 bytes of UTF-8 plus two quotes
    assert len(encode_payload(exact, 22, A)) == 22
    with pytest.raises(ResourceLimitExceededError) as info:
        encode_payload(exact, 21, A)
    assert info.value.plugin == A
    assert info.value.limit == "event_payload_bytes"
    assert "the payload is 22 bytes as JSON; at most 21 are allowed" in str(info.value)


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (object(), "Object of type object is not JSON serializable"),
        ({1, 2}, "Object of type set"),
        (b"bytes", "Object of type bytes"),
        (math.nan, "Out of range float values"),
        ({"x": math.inf}, "Out of range float values"),
        ({(1, 2): "tuple key"}, "keys must be str"),
        (_circular(), "Circular reference"),
        ("\ud800", "surrogates not allowed"),
        (_deep(100_000), "nested too deeply"),
    ],
)
def test_encode_payload_refuses_what_is_not_json(payload: Any, detail: str) -> None:
    with pytest.raises(InvalidInputError, match="payload is not JSON") as info:
        encode_payload(payload, 10**9, A)
    assert detail in str(info.value)


# --- the bus: routing ----------------------------------------------------------------------------


def test_publish_routes_by_pattern_and_never_back_to_the_source() -> None:
    deliver = Recorder()
    bus = EventBus(deliver)
    bus.subscribe_plugin(A, ["tasks.*"])
    bus.subscribe_plugin(B, ["tasks.**", "notes.created"])
    bus.subscribe_plugin(C, ["notes.*"])

    async def go() -> list[int]:
        counts = [
            await bus.publish("tasks.created", {"id": 1}, source=A),
            await bus.publish("tasks.created.late", {"id": 2}, source=C),
            await bus.publish("notes.created", None, source=HOST),
            await bus.publish("unrelated", 3, source=HOST),
        ]
        await bus.drain()
        return counts

    assert run(go()) == [1, 1, 2, 0]
    assert [(p, e.topic, e.payload, e.source) for p, e in deliver.calls] == [
        (B, "tasks.created", {"id": 1}, A),
        (B, "tasks.created.late", {"id": 2}, C),
        (B, "notes.created", None, HOST),
        (C, "notes.created", None, HOST),
    ]
    assert bus.subscribers("tasks.created") == [A, B]
    assert bus.subscribers("tasks.created", source=A) == [B]
    assert bus.subscribers("notes.created", source=HOST) == [B, C]


def test_publish_returns_before_any_delivery_runs() -> None:
    deliver = Recorder()
    deliver_calls_at_return: list[int] = []
    bus = EventBus(deliver)
    bus.subscribe_plugin(A, ["x"])

    async def go() -> None:
        deliver.gate = asyncio.Event()  # every delivery would block until released
        assert await bus.publish("x", 1, source=HOST) == 1
        deliver_calls_at_return.append(len(deliver.calls))
        assert bus.in_flight == 1
        await asyncio.sleep(0)
        assert deliver.plugins() == [A]  # it started, and is still held
        assert bus.in_flight == 1
        deliver.gate.set()
        await bus.drain()
        assert bus.in_flight == 0

    run(go())
    assert deliver_calls_at_return == [0]


def test_host_listeners_sync_and_async_get_every_event_including_their_own() -> None:
    bus = EventBus(Recorder())
    seen: list[tuple[str, str, Any, str]] = []

    def sync_listener(event: Event) -> None:
        seen.append(("sync", event.topic, event.payload, event.source))

    async def async_listener(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(("async", event.topic, event.payload, event.source))

    bus.listen("tasks.*", sync_listener)
    bus.listen("**", async_listener)

    async def go() -> list[int]:
        counts = [
            await bus.publish("tasks.created", [1], source=HOST),
            await bus.publish("notes.created", [2], source=A),
        ]
        await bus.drain()
        return counts

    assert run(go()) == [2, 1]
    assert sorted(seen) == [
        ("async", "notes.created", [2], A),
        ("async", "tasks.created", [1], HOST),
        ("sync", "tasks.created", [1], HOST),
    ]


def test_listen_unsubscribe_function_removes_only_that_listener() -> None:
    bus = EventBus(Recorder())
    seen: list[str] = []
    stop_first = bus.listen("x", lambda event: seen.append("first"))
    bus.listen("x", lambda event: seen.append("second"))

    async def go() -> int:
        stop_first()
        stop_first()  # calling it again is harmless
        count = await bus.publish("x", None, source=HOST)
        await bus.drain()
        return count

    assert run(go()) == 1
    assert seen == ["second"]


def test_invalid_listener_pattern_adds_nothing() -> None:
    bus = EventBus(Recorder())
    seen: list[Event] = []
    with pytest.raises(InvalidInputError, match=r"pattern: 'tasks\.\*\*\.x' is not a topic"):
        bus.listen("tasks.**.x", seen.append)
    assert run(bus.publish("tasks.a.x", None, source=HOST)) == 0
    assert seen == []


def test_subscribe_plugin_replaces_and_unsubscribes() -> None:
    bus = EventBus(Recorder())
    bus.subscribe_plugin(A, ["tasks.*", "tasks.*"])
    assert bus.subscribers("tasks.created") == [A]
    bus.subscribe_plugin(A, ["notes.*"])
    assert bus.subscribers("tasks.created") == []
    assert bus.subscribers("notes.created") == [A]
    bus.subscribe_plugin(A, [])
    assert bus.subscribers("notes.created") == []
    bus.subscribe_plugin(A, ["notes.*"])
    bus.unsubscribe_plugin(A)
    bus.unsubscribe_plugin(A)  # unknown plugins are fine
    assert bus.subscribers("notes.created") == []


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["notes.*", "Bad"], r"patterns: 'Bad' is not a topic pattern"),
        (["notes.*", 7], "patterns must be a string such as 'tasks.*', not int"),
        ("tasks.*", r"patterns must be a list of topic patterns, not the single string"),
    ],
)
def test_invalid_subscription_keeps_the_old_one(patterns: Any, message: str) -> None:
    bus = EventBus(Recorder())
    bus.subscribe_plugin(A, ["tasks.*"])
    with pytest.raises(InvalidInputError, match=message):
        bus.subscribe_plugin(A, patterns)
    assert bus.subscribers("tasks.created") == [A]
    assert bus.subscribers("notes.created") == []


def test_subscribers_checks_the_topic() -> None:
    bus = EventBus(Recorder())
    with pytest.raises(InvalidInputError, match="contains a wildcard"):
        bus.subscribers("tasks.*")


# --- the bus: copies and isolation ---------------------------------------------------------------


def test_every_receiver_gets_its_own_copy_of_the_payload() -> None:
    deliver = Recorder()
    bus = EventBus(deliver)
    bus.subscribe_plugin(A, ["x"])
    bus.subscribe_plugin(B, ["x"])
    listener_payloads: list[Any] = []

    def vandal(event: Event) -> None:
        event.payload["items"].append("vandal")
        listener_payloads.append(event.payload)

    bus.listen("x", vandal)
    original: dict[str, Any] = {"items": [1, 2], "tuple": (3, 4)}

    async def go() -> None:
        await bus.publish("x", original, source=HOST)
        original["items"].append("after publish")  # the publisher's object is not shared either
        await bus.drain()

    run(go())
    assert listener_payloads == [{"items": [1, 2, "vandal"], "tuple": [3, 4]}]
    payloads = [e.payload for _, e in deliver.calls]
    assert payloads == [{"items": [1, 2], "tuple": [3, 4]}] * 2
    assert payloads[0] is not payloads[1]
    assert payloads[0] is not original


def test_a_failing_receiver_is_logged_and_harms_no_one(caplog: pytest.LogCaptureFixture) -> None:
    deliver = Recorder(fail_for=(A,))
    bus = EventBus(deliver)
    for plugin in (A, B, C):
        bus.subscribe_plugin(plugin, ["x"])
    seen: list[str] = []

    def broken_listener(event: Event) -> None:
        raise ValueError("sync listener broke")

    async def broken_async_listener(event: Event) -> None:
        raise KeyError("async listener broke")

    bus.listen("x", broken_listener)
    bus.listen("x", broken_async_listener)
    bus.listen("x", lambda event: seen.append(event.topic))

    async def go() -> list[int]:
        counts = [await bus.publish("x", 1, source=HOST)]
        await bus.drain()
        counts.append(await bus.publish("x", 2, source=HOST))  # the bus still works
        await bus.drain()
        return counts

    with caplog.at_level(logging.ERROR, logger="plugport.events"):
        assert run(go()) == [6, 6]
    assert deliver.plugins() == [A, A, B, B, C, C]
    assert seen == ["x", "x"]
    failures = [r for r in caplog.records if r.name == "plugport.events"]
    assert len(failures) == 6
    messages = "\n".join(r.getMessage() for r in failures)
    assert "delivering event 'x' from 'host' to plugin 'acme.alpha' failed" in messages
    assert "broken_listener" in messages
    assert "broken_async_listener" in messages
    assert all(r.exc_info is not None for r in failures)
    assert bus.in_flight == 0


# --- the bus: refusals and limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "error", "message"),
    [
        ("tasks.*", 1, InvalidInputError, "topic 'tasks.*' contains a wildcard"),
        ("Tasks", 1, InvalidInputError, "topic: 'Tasks' is not a topic pattern"),
        ("x", {"n": math.nan}, InvalidInputError, "payload is not JSON"),
        ("x", object(), InvalidInputError, "payload is not JSON"),
        ("x", "a" * 15, ResourceLimitExceededError, "exceeded event_payload_bytes"),
    ],
)
def test_refused_publish_delivers_nothing(
    topic: str, payload: Any, error: type[Exception], message: str
) -> None:
    deliver = Recorder()
    bus = EventBus(deliver, max_payload_bytes=16)
    bus.subscribe_plugin(A, ["**"])
    seen: list[Event] = []
    bus.listen("**", seen.append)

    async def go() -> None:
        with pytest.raises(error, match=re.escape(message)):
            await bus.publish(topic, payload, source=B)
        assert bus.in_flight == 0
        await bus.drain()

    run(go())
    assert deliver.calls == []
    assert seen == []


def test_publish_payload_limit_boundary() -> None:
    deliver = Recorder()
    bus = EventBus(deliver, max_payload_bytes=16)
    bus.subscribe_plugin(A, ["x"])

    async def go() -> None:
        assert await bus.publish("x", "a" * 14, source=B) == 1  # 16 bytes with the quotes
        with pytest.raises(ResourceLimitExceededError) as info:
            await bus.publish("x", "a" * 15, source=B)
        assert (info.value.plugin, info.value.limit) == (B, "event_payload_bytes")
        assert "17 bytes as JSON; at most 16" in str(info.value)
        await bus.drain()

    run(go())
    assert [e.payload for _, e in deliver.calls] == ["a" * 14]


def test_in_flight_limit_refuses_a_flood_before_scheduling_anything() -> None:
    deliver = Recorder()
    bus = EventBus(deliver, max_in_flight=3)
    bus.subscribe_plugin(A, ["two.*", "one"])
    bus.subscribe_plugin(B, ["two.*"])

    async def go() -> None:
        deliver.gate = asyncio.Event()
        assert await bus.publish("two.a", 1, source=HOST) == 2
        await asyncio.sleep(0)
        with pytest.raises(ResourceLimitExceededError) as info:
            await bus.publish("two.b", 2, source=C)  # 2 pending + 2 more > 3
        assert (info.value.plugin, info.value.limit) == (C, "events_in_flight")
        assert "2 deliveries are pending and this event has 2 receivers" in str(info.value)
        assert "at most 3 may be pending" in str(info.value)
        assert bus.in_flight == 2
        await asyncio.sleep(0)
        assert deliver.plugins() == [A, B]  # nothing of the refused event was scheduled
        assert await bus.publish("one", 3, source=HOST) == 1  # exactly 3: allowed
        assert await bus.publish("nobody.listens", 4, source=HOST) == 0  # takes no slot
        with pytest.raises(ResourceLimitExceededError):
            await bus.publish("one", 5, source=C)
        deliver.gate.set()
        await bus.drain()
        assert bus.in_flight == 0
        assert await bus.publish("two.c", 6, source=HOST) == 2  # room again
        await bus.drain()

    run(go())
    assert [e.payload for _, e in deliver.calls] == [1, 1, 3, 6, 6]


def test_drain_waits_for_deliveries_scheduled_by_deliveries() -> None:
    deliver = Recorder()
    bus = EventBus(deliver)
    bus.subscribe_plugin(A, ["second"])

    async def relay(event: Event) -> None:
        await asyncio.sleep(0)
        await bus.publish("second", event.payload, source=HOST)

    bus.listen("first", relay)

    async def go() -> None:
        await bus.publish("first", "relayed", source=HOST)
        await bus.drain()

    run(go())
    assert [(p, e.topic, e.payload) for p, e in deliver.calls] == [(A, "second", "relayed")]
    assert bus.in_flight == 0


def test_close_cancels_pending_deliveries_and_the_bus_stays_usable() -> None:
    deliver = Recorder()
    bus = EventBus(deliver)
    bus.subscribe_plugin(A, ["x"])
    bus.subscribe_plugin(B, ["x"])

    async def go() -> None:
        deliver.gate = asyncio.Event()
        await bus.publish("x", "started", source=HOST)
        await asyncio.sleep(0)  # both deliveries are now waiting on the gate
        await bus.publish("x", "never started", source=HOST)
        assert bus.in_flight == 4
        await bus.close()
        assert bus.in_flight == 0
        deliver.gate = None
        assert await bus.publish("x", "after close", source=HOST) == 2
        await bus.drain()

    run(go())
    assert deliver.cancelled == 2
    assert [e.payload for _, e in deliver.calls] == ["started"] * 2 + ["after close"] * 2
