"""Task processing: plugins' ``[tasks.TYPE]`` work on a durable queue (Huey: SQLite embedded,
PostgreSQL for several worker hosts), with the records, retries, leases and schedules in
:mod:`~plugport.host.tasks.store` and the node that runs them in
:mod:`~plugport.host.tasks.queue`; workflows (DAGs of task steps) in
:mod:`~plugport.host.tasks.workflows`."""

from plugport.host.tasks._workflow_rules import WorkflowDefinition, parse_workflow
from plugport.host.tasks.engine import HueyEngine, QueueEngine, engine_for
from plugport.host.tasks.queue import MIDDLEWARE_HOOKS, QueueOptions, TaskQueue
from plugport.host.tasks.store import Schedule, SqlTaskStore, TaskRecord, open_task_store
from plugport.host.tasks.workflows import StepRun, WorkflowRun, WorkflowRunner

__all__ = [
    "MIDDLEWARE_HOOKS",
    "HueyEngine",
    "QueueEngine",
    "QueueOptions",
    "Schedule",
    "SqlTaskStore",
    "StepRun",
    "TaskQueue",
    "TaskRecord",
    "WorkflowDefinition",
    "WorkflowRun",
    "WorkflowRunner",
    "engine_for",
    "open_task_store",
    "parse_workflow",
]
