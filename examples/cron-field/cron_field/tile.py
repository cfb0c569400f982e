"""The ``cron.next-runs`` tile, built without I/O from its settings and the current time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cron_field.cron import CronError, next_runs, parse, summary

__all__ = ["runs_tile"]

_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def runs_tile(config: Any, now: datetime) -> Any:
    """The tile for ``config["expression"]`` at ``now``: what each field allows and the next
    ``config["count"]`` runs, or the expression's problem."""
    expression = config["expression"]
    try:
        schedule = parse(expression)
    except CronError as exc:
        return {
            "type": "alert",
            "level": "bad",
            "title": "Not a cron expression",
            "text": f"{expression!r}: {exc}",
        }
    runs = next_runs(schedule, now, config["count"])
    return {
        "type": "stack",
        "children": [
            {
                "type": "kv",
                "items": [
                    {"key": "Expression", "value": " ".join(expression.split())},
                    *({"key": key, "value": value} for key, value in summary(schedule)),
                ],
            },
            {"type": "heading", "level": 3, "text": f"Next {len(runs)} runs (UTC)"},
            {
                "type": "list",
                "ordered": True,
                "items": [
                    {
                        "text": when.strftime("%Y-%m-%d %H:%M"),
                        "secondary": _WEEKDAYS[when.weekday()],
                    }
                    for when in runs
                ],
            },
        ],
    }
