"""What plugin code imports: the :class:`Plugin` base class and the handler decorators."""

from plugport.sdk._api import Api, CapabilityProxy, Response, Transport
from plugport.sdk._declare import Handler, command, handlers_of, hook, on_event
from plugport.sdk._plugin import Plugin

__all__ = [
    "Api",
    "CapabilityProxy",
    "Handler",
    "Plugin",
    "Response",
    "Transport",
    "command",
    "handlers_of",
    "hook",
    "on_event",
]
