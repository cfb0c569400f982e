"""The host's event bus: plugins and the host publish JSON payloads on dotted topics, and every
subscribed plugin and host listener gets its own copy, delivered in the background so a slow or
failing receiver can never hold up or break the publisher or the other receivers."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plugport._manifest_fields import _topic_pattern
from plugport._permissions import RULES
from plugport.errors import InvalidInputError, ResourceLimitExceededError
from plugport.manifest import match_topic
from plugport.runtime.capabilities._json import encode_json
from plugport.runtime.capabilities._record import Calls, Capability, nothing_stored
from plugport.sdk._api import EventsProxy

__all__ = [
    "HOST",
    "RECORD",
    "Deliver",
    "Event",
    "EventBus",
    "EventsCalls",
    "Listener",
    "check_pattern",
    "check_topic",
    "encode_payload",
    "receivers",
]

HOST = "host"
"""The ``source`` of events the host itself publishes."""

logger = logging.getLogger("plugport.events")


@dataclass(frozen=True)
class Event:
    topic: str  # exact, never a pattern
    payload: Any  # decoded JSON, this receiver's own copy
    source: str  # the publishing plugin's name, or HOST


Deliver = Callable[[str, Event], Awaitable[None]]
"""``deliver(plugin, event)``: hand one event to one subscribed plugin, e.g. over its channel."""

Listener = Callable[[Event], Awaitable[None] | None]
"""A host-side receiver; it may be a plain function or a coroutine function."""


# --- decisions -----------------------------------------------------------------------------------


def check_pattern(pattern: object, argument: str = "pattern") -> str:
    """Return ``pattern`` if it is a topic pattern (wildcards allowed), else raise
    :class:`InvalidInputError` naming ``argument`` and the rule."""
    if not isinstance(pattern, str):
        raise InvalidInputError(
            f"{argument} must be a string such as 'tasks.*', not {type(pattern).__name__}"
        )
    try:
        return _topic_pattern(pattern)
    except ValueError as exc:
        raise InvalidInputError(f"{argument}: {exc}") from None


def check_topic(topic: object) -> str:
    """Return ``topic`` if one can publish to it: a topic pattern without wildcards, because an
    event happens on exactly one topic and only subscriptions choose a range."""
    if not isinstance(topic, str):
        raise InvalidInputError(
            f"topic must be a string such as 'tasks.created', not {type(topic).__name__}"
        )
    if "*" in topic:
        raise InvalidInputError(
            f"topic {topic!r} contains a wildcard; publish to one exact topic such as "
            "'tasks.created' ('*' and '**' are only for subscribing)"
        )
    return check_pattern(topic, "topic")


def encode_payload(payload: Any, limit: int, source: str) -> bytes:
    """The payload as compact UTF-8 JSON, the form that is measured and copied to receivers."""
    return encode_json(
        payload, "payload", plugin=source, limit=limit, limit_name="event_payload_bytes"
    )


def receivers(
    subscriptions: Mapping[str, Iterable[str]], topic: str, *, source: str | None = None
) -> list[str]:
    """The plugins (sorted) with a pattern matching ``topic``, never ``source`` itself, so a
    plugin that reacts to a topic by publishing on it cannot feed itself in a loop."""
    return sorted(
        plugin
        for plugin, patterns in subscriptions.items()
        if plugin != source and any(match_topic(p, topic) for p in patterns)
    )


# --- the bus -------------------------------------------------------------------------------------


class EventBus:
    """Routes published events to subscribed plugins (through ``deliver``) and host listeners.

    Permission checks happen in the broker before any call gets here; the bus checks the data,
    enforces the payload and in-flight limits, and keeps the subscriptions.
    """

    def __init__(
        self,
        deliver: Deliver,
        *,
        max_payload_bytes: int = 64 * 1024,
        max_in_flight: int = 1000,
    ) -> None:
        self._deliver = deliver
        self.max_payload_bytes = max_payload_bytes
        self.max_in_flight = max_in_flight
        self._subscriptions: dict[str, tuple[str, ...]] = {}
        self._listeners: dict[int, tuple[str, Listener]] = {}
        self._listener_ids = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- subscriptions ---------------------------------------------------------------------------

    def subscribe_plugin(self, plugin: str, patterns: Iterable[str]) -> None:
        """Replace ``plugin``'s patterns; an empty list unsubscribes it. All or nothing."""
        if isinstance(patterns, str):
            raise InvalidInputError(
                f"patterns must be a list of topic patterns, not the single string {patterns!r}"
            )
        checked = tuple(sorted({check_pattern(p, "patterns") for p in patterns}))
        if checked:
            self._subscriptions[plugin] = checked
        else:
            self._subscriptions.pop(plugin, None)

    def unsubscribe_plugin(self, plugin: str) -> None:
        self._subscriptions.pop(plugin, None)

    def listen(self, pattern: str, listener: Listener) -> Callable[[], None]:
        """Add a host listener; the returned function removes it and may be called repeatedly."""
        checked = check_pattern(pattern)
        key = next(self._listener_ids)
        self._listeners[key] = (checked, listener)

        def unsubscribe() -> None:
            self._listeners.pop(key, None)

        return unsubscribe

    def subscribers(self, topic: str, *, source: str | None = None) -> list[str]:
        return receivers(self._subscriptions, check_topic(topic), source=source)

    @property
    def in_flight(self) -> int:
        """Deliveries scheduled and not yet finished."""
        return len(self._tasks)

    # --- publishing ------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: Any, *, source: str) -> int:
        """Check the event, schedule one delivery per receiver and return how many there are,
        without waiting for any of them.

        Refused when the deliveries would take more than ``max_in_flight`` pending slots, so a
        plugin publishing in a tight loop gets an error instead of growing host memory.
        """
        topic = check_topic(topic)
        encoded = encode_payload(payload, self.max_payload_bytes, source)
        plugins = receivers(self._subscriptions, topic, source=source)
        listeners = [
            lst for pattern, lst in self._listeners.values() if match_topic(pattern, topic)
        ]
        count = len(plugins) + len(listeners)
        if self.in_flight + count > self.max_in_flight:
            raise ResourceLimitExceededError(
                source,
                "events_in_flight",
                f"{self.in_flight} deliveries are pending and this event has {count} receivers; "
                f"at most {self.max_in_flight} may be pending",
            )
        targets: list[str | Listener] = [*plugins, *listeners]
        for receiver in targets:
            task = asyncio.create_task(self._deliver_one(receiver, topic, encoded, source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return count

    async def drain(self) -> None:
        """Wait until every delivery, including ones scheduled meanwhile, has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every pending delivery and wait for them to stop. The bus stays usable."""
        for task in list(self._tasks):
            task.cancel()
        await self.drain()

    # --- delivery --------------------------------------------------------------------------------

    async def _deliver_one(
        self, receiver: str | Listener, topic: str, encoded: bytes, source: str
    ) -> None:
        # The event is built inside the task, so a task cancelled before it starts leaves no
        # un-awaited coroutine behind, and each receiver decodes its own copy of the payload.
        event = Event(topic, json.loads(encoded), source)
        try:
            if isinstance(receiver, str):
                await self._deliver(receiver, event)
            else:
                result = receiver(event)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            who = f"plugin {receiver!r}" if isinstance(receiver, str) else f"listener {receiver!r}"
            logger.exception("delivering event %r from %r to %s failed", topic, source, who)


class EventsCalls(Calls):
    """``api.events.*``: publishing, per topic as the plugin's publish patterns allow.
    Subscriptions are not calls: the manifest declares them and the supervisor wires them."""

    async def publish(self, topic: str, payload: Any = None) -> int:
        return await self.services.events.publish(topic, payload, source=self.plugin)


RECORD = Capability("events", RULES["events"], EventsCalls, EventsProxy, nothing_stored)
