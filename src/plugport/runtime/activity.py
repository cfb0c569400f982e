"""What the runtime is doing, as it happens, for whoever watches: ``plugport dev`` prints it,
``plugport run -v`` streams it, the host writes plugin log lines to disk from it, and the
testing kit records capability calls with it.

The audit log keeps decisions; the feed carries everything (every capability call with its
verdict, every handler call with its duration, every log line) and keeps nothing. With no
listener an emit is one attribute test, so production pays nothing for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ACTIVITY_KINDS", "Activity", "ActivityFeed", "Listener"]

ActivityKind = Literal["log", "capability", "call", "audit"]
ACTIVITY_KINDS: tuple[ActivityKind, ...] = ("log", "capability", "call", "audit")

logger = logging.getLogger("plugport.runtime")


@dataclass(frozen=True)
class Activity:
    """One thing one plugin did or had done to it.

    - ``log``: ``name`` is the level, ``detail`` the line, ``fields`` the record's extras;
    - ``capability``: ``name`` is ``"storage.get"``, ``outcome`` ``granted``, ``denied`` or
      ``error``, ``detail`` why (the broker's reason or the error);
    - ``call``: a hook, command, event or UI handler the host called: ``name`` is
      ``"hook greet"`` or ``"ui counter.counter"``, ``outcome`` as the call metrics (``ok``,
      ``error``, ``timeout`` …);
    - ``audit``: a runtime decision (activate, crash, restart, kill …): ``name`` is the audit
      kind, ``detail`` its reason.
    """

    plugin: str
    kind: ActivityKind
    name: str
    outcome: str = ""
    detail: str = ""
    duration_ms: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # epoch seconds


Listener = Callable[[Activity], None]


class ActivityFeed:
    """Fans each activity out to the listeners subscribed to its kind. A listener that raises is
    logged and kept: one broken watcher must not break the plugin it watches."""

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[Listener, ...]] = dict.fromkeys(ACTIVITY_KINDS, ())

    def watching(self, kind: ActivityKind) -> bool:
        """Whether anyone listens to ``kind``: callers skip building an :class:`Activity`
        when not, so a host that only keeps log lines pays nothing per capability call."""
        return bool(self._listeners[kind])

    def subscribe(
        self, listener: Listener, kinds: Iterable[ActivityKind] = ACTIVITY_KINDS
    ) -> Callable[[], None]:
        """Add ``listener`` for ``kinds`` (default: all); call what this returns to remove it."""
        chosen = tuple(kinds)
        for kind in chosen:
            self._listeners[kind] = (*self._listeners[kind], listener)

        def unsubscribe() -> None:
            for kind in chosen:
                self._listeners[kind] = tuple(x for x in self._listeners[kind] if x is not listener)

        return unsubscribe

    def emit(self, activity: Activity) -> None:
        for listener in self._listeners[activity.kind]:
            try:
                listener(activity)
            except Exception:
                logger.exception("an activity listener failed on %s", activity.kind)
