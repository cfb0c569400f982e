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
    TasksProxy,
    Transport,
    UiProxy,
)
from plugport.sdk._declare import (
    Handler,
    command,
    field,
    handlers_of,
    hook,
    menu_item,
    on_event,
    page,
    task,
    view,
    webhook,
    widget,
)
from plugport.sdk._plugin import Plugin
from plugport.sdk._retry import RetryPolicy
from plugport.sdk._task import Task
from plugport.sdk._ui import UiRequest
from plugport.sdk._webhook import WebhookEvent

__all__ = [
    "Api",
    "CapabilityProxy",
    "ConfigProxy",
    "EventsProxy",
    "Handler",
    "NetProxy",
    "Plugin",
    "Response",
    "RetryPolicy",
    "StorageProxy",
    "StorageUsage",
    "Task",
    "TasksProxy",
    "Transport",
    "UiProxy",
    "UiRequest",
    "WebhookEvent",
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
