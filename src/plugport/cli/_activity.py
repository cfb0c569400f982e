"""How a plugin's activity reads in a terminal: one line per log line, capability call, handler
call or runtime decision, coloured by level or verdict (``run -v``, ``logs``)."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from plugport.runtime.activity import Activity

__all__ = ["activity_line", "log_line"]

_LEVEL_STYLES = {
    "debug": "dim",
    "info": "cyan",
    "warning": "yellow",
    "error": "red",
    "critical": "bold red",
}
_VERDICT_STYLES = {"granted": "green", "ok": "green", "denied": "bold red"}


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def _fields(fields: dict[str, Any]) -> str:
    return "".join(f" {key}={value!r}" for key, value in sorted(fields.items()))


def log_line(plugin: str, at: float, level: str, message: str, fields: dict[str, Any]) -> str:
    """``12:00:01.250 acme.hello WARNING message key='value'`` as Rich markup."""
    style = _LEVEL_STYLES.get(level.lower(), "")
    shown = escape(f"{level.upper():<8}")
    shown = f"[{style}]{shown}[/]" if style else shown
    return f"[dim]{_clock(at)}[/] {escape(plugin)} {shown} {escape(message + _fields(fields))}"


def activity_line(activity: Activity) -> str:
    """One feed entry as Rich markup: log lines as :func:`log_line`; a capability call with
    its verdict, why when it was not granted, and its duration; a handler call with its
    outcome and duration; a runtime decision with its reason."""
    if activity.kind == "log":
        return log_line(
            activity.plugin, activity.at, activity.name, activity.detail, activity.fields
        )
    took = f" {activity.duration_ms:.1f} ms" if activity.duration_ms is not None else ""
    head = f"[dim]{_clock(activity.at)}[/] {escape(activity.plugin)}"
    if activity.kind == "audit":
        style = "bold red" if activity.name in ("crash", "kill", "quarantine") else "magenta"
        return f"{head} [{style}]{escape(activity.name)}[/] {escape(activity.detail)}"
    style = _VERDICT_STYLES.get(activity.outcome, "red")
    verdict = f"[{style}]{escape(activity.outcome)}[/]"
    why = f": {escape(activity.detail)}" if activity.detail else ""
    what = "call" if activity.kind == "capability" else "ran"
    return f"{head} {what} {escape(activity.name)} {verdict}{why}[dim]{took}[/]"
