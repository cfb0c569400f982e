"""Task processing: plugins' ``[tasks.TYPE]`` work on a durable queue (Huey: SQLite embedded,
PostgreSQL for several worker hosts), with the records, retries, leases and schedules in
:mod:`~plugport.host.tasks.store` and the node that runs them in
:mod:`~plugport.host.tasks.queue`."""

from plugport.host.tasks.engine import HueyEngine, QueueEngine, engine_for
from plugport.host.tasks.queue import MIDDLEWARE_HOOKS, QueueOptions, TaskQueue
from plugport.host.tasks.store import Schedule, SqlTaskStore, TaskRecord, open_task_store

__all__ = [
    "MIDDLEWARE_HOOKS",
    "HueyEngine",
    "QueueEngine",
    "QueueOptions",
    "Schedule",
    "SqlTaskStore",
    "TaskQueue",
    "TaskRecord",
    "engine_for",
    "open_task_store",
]
