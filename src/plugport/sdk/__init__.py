"""What plugin code imports: the :class:`Plugin` base class and the handler decorators."""

from plugport.sdk._declare import Handler, command, handlers_of, hook, on_event
from plugport.sdk._plugin import Plugin

__all__ = ["Handler", "Plugin", "command", "handlers_of", "hook", "on_event"]
