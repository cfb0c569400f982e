"""The events fake: every event on the runtime's real bus recorded (topic, payload, source),
and events injected into the plugin through the same bus, as the host would publish them."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from plugport.runtime.capabilities.events import HOST, Event, EventBus

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeEvents"]

_BUS_LOGGER = "plugport.events"


class _Failures(logging.Handler):
    """Catches the delivery failures the bus logs (a handler that raised), so :meth:`emit`
    can raise the plugin's own error instead of leaving it in a log."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


class _Recorder:
    """One host listener per bus, however many plugins' fakes read it, so a publisher sees
    the same receiver count whether one plugin or several are under test."""

    _on: ClassVar[weakref.WeakKeyDictionary[EventBus, _Recorder]] = weakref.WeakKeyDictionary()

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.events: list[Event] = []
        self.users = 0
        self._stop = bus.listen("**", self.events.append)

    @classmethod
    def on(cls, bus: EventBus) -> _Recorder:
        recorder = cls._on.get(bus)
        if recorder is None:
            recorder = cls._on[bus] = cls(bus)
        recorder.users += 1
        return recorder

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self._stop()
            self._on.pop(self.bus, None)


class FakeEvents:
    """Records what is published on the bus; ``published`` is what this plugin sent."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._runtime = runtime
        self._recorder = _Recorder.on(runtime.events)

    @property
    def seen(self) -> list[Event]:
        """Every event on the bus since the first fake of this runtime started recording."""
        return list(self._recorder.events)

    @property
    def published(self) -> list[dict[str, Any]]:
        """The plugin's own events, oldest first, as ``{"topic", "payload"}``."""
        return [
            {"topic": e.topic, "payload": e.payload} for e in self.seen if e.source == self.plugin
        ]

    async def emit(self, topic: str, payload: Any = None) -> int:
        """Publish ``topic`` from the host and wait until every receiver has handled it; a
        receiver that raised makes this raise its error. Returns how many plugins received it
        (host listeners such as this recorder not counted)."""
        receivers = self._runtime.events.subscribers(topic, source=HOST)
        failures = _Failures()
        logger = logging.getLogger(_BUS_LOGGER)
        logger.addHandler(failures)
        try:
            await self._runtime.events.publish(topic, payload, source=HOST)
            await self._runtime.events.drain()
        finally:
            logger.removeHandler(failures)
        if failures.errors:
            raise failures.errors[0]
        return len(receivers)

    def close(self) -> None:
        self._recorder.release()
