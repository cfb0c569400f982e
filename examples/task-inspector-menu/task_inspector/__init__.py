"""Context menu items: a task's details, runbook and team note; an installed plugin's facts."""

from task_inspector.plugin import TaskInspector

__all__ = ["TaskInspector"]
