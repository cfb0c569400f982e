"""Decorators that mark plugin methods as hook, command, event, webhook and task handlers.

They only attach metadata; the runtime reads it when it loads the plugin, and
``plugport validate`` reads the same decorators statically, so declaring a handler
never runs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = [
    "Handler",
    "command",
    "field",
    "handlers_of",
    "hook",
    "menu_item",
    "on_event",
    "page",
    "task",
    "view",
    "webhook",
    "widget",
]

F = TypeVar("F", bound=Callable[..., Any])
HANDLER_ATTRIBUTE = "__plugport_handlers__"


@dataclass(frozen=True, slots=True)
class Handler:
    """One declaration: ``kind`` is ``hook``, ``command``, ``event``, ``webhook``, ``task`` or
    ``ui``; ``name`` the hook name, command id, topic pattern, webhook endpoint, task type or
    UI surface id."""

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


def _ui(surface_id: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return _mark(function, Handler("ui", surface_id))

    return decorate


def widget(widget_id: str, /) -> Callable[[F], F]:
    """Render the manifest's dashboard widget ``widget_id``: the method is called with one
    :class:`~plugport.sdk.UiRequest` (its ``config`` the tile's settings; its ``action`` set
    when a button or form in the tile was used) and returns a component tree. Needs
    ``permissions.ui = ["widgets"]``."""
    return _ui(widget_id)


def page(page_id: str, /) -> Callable[[F], F]:
    """Render the manifest's page ``page_id`` (``contributes.pages``; ``ui = ["pages"]``):
    called with a :class:`~plugport.sdk.UiRequest`, returns a component tree."""
    return _ui(page_id)


def menu_item(item_id: str, /) -> Callable[[F], F]:
    """Answer the manifest's menu item ``item_id`` (``contributes.menus``; ``ui = ["menus"]``):
    called with a :class:`~plugport.sdk.UiRequest` whose ``context`` names what it was opened
    on; returns a component tree shown as the item's overlay, or ``None``."""
    return _ui(item_id)


def field(field_id: str, /) -> Callable[[F], F]:
    """Validate a value of the manifest's field type ``field_id`` (``contributes.fields``;
    ``ui = ["forms"]``): called with a :class:`~plugport.sdk.UiRequest` whose
    ``context["value"]`` is the value; returns an error message, or ``None`` when it is valid."""
    return _ui(field_id)


def view(view_id: str, /) -> Callable[[F], F]:
    """Answer the calls a custom view (``contributes.views``; ``ui = ["custom_view"]``) makes
    through the host's bridge: ``action`` is the call's name, ``payload`` its data; the return
    value (any JSON) goes back to the view."""
    return _ui(view_id)


def handlers_of(obj: object) -> list[tuple[str, Handler]]:
    """``(attribute name, handler)`` for every decorated method of a plugin class or instance."""
    cls = obj if isinstance(obj, type) else type(obj)
    found = []
    for attribute in sorted(dir(cls)):
        for handler in getattr(getattr(cls, attribute, None), HANDLER_ATTRIBUTE, ()):
            found.append((attribute, handler))
    return found
