"""What plugin code imports: the :class:`Plugin` base class and the handler decorators."""

from plugport.sdk._api import (
    Api,
    CapabilityProxy,
    ConfigProxy,
    EventsProxy,
    NetProxy,
    Response,
    StorageProxy,
    StorageUsage,
    Transport,
    UiProxy,
)
from plugport.sdk._declare import Handler, command, handlers_of, hook, on_event
from plugport.sdk._plugin import Plugin

__all__ = [
    "Api",
    "CapabilityProxy",
    "ConfigProxy",
    "EventsProxy",
    "Handler",
    "NetProxy",
    "Plugin",
    "Response",
    "StorageProxy",
    "StorageUsage",
    "Transport",
    "UiProxy",
    "command",
    "handlers_of",
    "hook",
    "on_event",
]
