"""Decorators that mark plugin methods as hook, command, event, webhook and task handlers.

They only attach metadata; the runtime reads it when it loads the plugin, and
``plugport validate`` reads the same decorators statically, so declaring a handler
never runs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["Handler", "command", "handlers_of", "hook", "on_event", "task", "webhook"]

F = TypeVar("F", bound=Callable[..., Any])
HANDLER_ATTRIBUTE = "__plugport_handlers__"


@dataclass(frozen=True, slots=True)
class Handler:
    """One declaration: ``kind`` is ``hook``, ``command``, ``event``, ``webhook`` or ``task``;
    ``name`` the hook name, command id, topic pattern, webhook endpoint or task type."""

    kind: str
    name: str
    priority: int | None = None


def _mark(function: F, handler: Handler) -> F:
    existing: tuple[Handler, ...] = getattr(function, HANDLER_ATTRIBUTE, ())
    setattr(function, HANDLER_ATTRIBUTE, (*existing, handler))
    return function


@overload
def hook(name: F, /) -> F: ...
@overload
def hook(name: str | None = None, /, *, priority: int | None = None) -> Callable[[F], F]: ...
def hook(name: Any = None, /, *, priority: int | None = None) -> Any:
    """Implement the host's hook ``name`` (default: the method's name).

    The host orders implementations by the manifest's ``contributes.hooks`` priority (higher
    first), which it knows before the plugin starts; ``priority`` here documents it in the
    code, and ``plugport validate`` refuses a plugin where the two disagree.
    """
    if callable(name):
        return _mark(name, Handler("hook", name.__name__))

    def decorate(function: F) -> F:
        return _mark(function, Handler("hook", name or function.__name__, priority))

    return decorate


def command(command_id: str, /) -> Callable[[F], F]:
    """Handle the command ``command_id`` that the manifest contributes."""

    def decorate(function: F) -> F:
        return _mark(function, Handler("command", command_id))

    return decorate


def on_event(topic: str, /) -> Callable[[F], F]:
    """Receive events whose topic matches ``topic`` (needs ``permissions.events.subscribe``)."""

    def decorate(function: F) -> F:
        return _mark(function, Handler("event", topic))

    return decorate


def webhook(endpoint: str, /) -> Callable[[F], F]:
    """Receive the verified deliveries to the manifest's ``[webhooks.ENDPOINT]``: the method
    is called with one :class:`~plugport.sdk.WebhookEvent`; raising makes the host try the
    delivery again later."""

    def decorate(function: F) -> F:
        return _mark(function, Handler("webhook", endpoint))

    return decorate


def task(task_type: str, /) -> Callable[[F], F]:
    """Process the manifest's ``[tasks.TASK_TYPE]``: the method is called with one
    :class:`~plugport.sdk.Task` per attempt and returns the result (JSON, checked against the
    type's ``result`` schema); raising fails the attempt, and the host retries it with backoff
    until ``max-attempts``."""

    def decorate(function: F) -> F:
        return _mark(function, Handler("task", task_type))

    return decorate


def handlers_of(obj: object) -> list[tuple[str, Handler]]:
    """``(attribute name, handler)`` for every decorated method of a plugin class or instance."""
    cls = obj if isinstance(obj, type) else type(obj)
    found = []
    for attribute in sorted(dir(cls)):
        for handler in getattr(getattr(cls, attribute, None), HANDLER_ATTRIBUTE, ()):
            found.append((attribute, handler))
    return found
