"""What ``plugport dev`` prints: one line per thing that happened, coloured for a terminal or a
JSON object per line (``--json``) for tools and tests. Both show the same events.

Every line is written and flushed at once, so a reader on a pipe sees it as it happens."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from plugport.dev._problems import SourceProblem
from plugport.runtime.activity import Activity

__all__ = ["Stream", "activity_json", "activity_line"]

_LEVELS = {
    "debug": "dim",
    "info": "cyan",
    "warning": "yellow",
    "error": "red",
    "critical": "bold red",
}
_AUDIT = {
    "activate": "green",
    "deactivate": "dim",
    "restart": "yellow",
    "crash": "bold red",
    "kill": "bold red",
    "quarantine": "bold red",
    "refuse": "bold red",
    "deny": "red",
    "limit": "red",
    "release": "green",
}


def activity_json(number: int, activity: Activity) -> dict[str, Any]:
    """The JSON form of one activity, numbered so the page can ask for what came after."""
    return {
        "event": "activity",
        "id": number,
        "plugin": activity.plugin,
        "kind": activity.kind,
        "name": activity.name,
        "outcome": activity.outcome,
        "detail": activity.detail,
        "duration_ms": None if activity.duration_ms is None else round(activity.duration_ms, 3),
        "fields": activity.fields,
        "at": activity.at,
    }


def activity_line(activity: Activity) -> str:
    """One coloured line (Rich markup) for a terminal."""
    took = "" if activity.duration_ms is None else f" [dim]{activity.duration_ms:.1f} ms[/]"
    detail = escape(activity.detail)
    if activity.kind == "log":
        style = _LEVELS.get(activity.name.lower(), "white")
        extra = "".join(
            f" [dim]{escape(k)}={escape(repr(v))}[/]" for k, v in activity.fields.items()
        )
        return f"[{style}]{activity.name.upper():<7}[/] {detail}{extra}"
    if activity.kind == "capability":
        if activity.outcome == "granted":
            verdict = "[green]granted[/]"
        elif activity.outcome == "denied":
            verdict = f"[bold red]denied[/] [red]{detail}[/]"
        else:
            verdict = f"[red]{escape(activity.outcome)}[/] {detail}"
        return f"[magenta]api[/]     {escape(activity.name)} {verdict}{took}"
    if activity.kind == "call":
        outcome = (
            "[green]ok[/]" if activity.outcome == "ok" else f"[red]{escape(activity.outcome)}[/]"
        )
        return f"[blue]call[/]    {escape(activity.name)} {outcome}{took}"
    style = _AUDIT.get(activity.name, "white")
    return f"[{style}]{activity.name:<7}[/] {detail}"


class Stream:
    """Where dev's output goes: a Rich console, or JSON lines when ``as_json``."""

    def __init__(self, *, as_json: bool, out: TextIO | None = None) -> None:
        self.as_json = as_json
        self._out = out or sys.stdout
        self.console = Console(file=self._out, highlight=False, soft_wrap=True)

    def json(self, event: str, **fields: Any) -> None:
        """In JSON mode, one object; in text mode nothing (say it with :meth:`text`)."""
        if self.as_json:
            self._write(json.dumps({"event": event, **fields}, default=str))

    def text(self, markup: str) -> None:
        if not self.as_json:
            self.console.print(markup)
            self._out.flush()

    def say(self, event: str, markup: str, **fields: Any) -> None:
        """Both forms of one event."""
        self.json(event, **fields)
        self.text(markup)

    def activity(self, number: int, activity: Activity) -> None:
        if self.as_json:
            self._write(json.dumps(activity_json(number, activity), default=str))
        else:
            self.text(activity_line(activity))

    def problems(self, problems: Iterable[SourceProblem], *, keeping: str) -> None:
        """Source problems, then what dev does about them (``keeping``: the version running)."""
        problems = list(problems)
        for problem in problems:
            self.json("error", **problem.to_json(), keeping=keeping)
            subject = f"[bold]{escape(problem.field)}[/]: " if problem.field else ""
            self.text(
                f"[bold red]error[/] [bold]{escape(problem.where or '(plugin)')}[/]: "
                f"{subject}{escape(problem.message)}"
            )
        if keeping:
            self.text(f"[yellow]still running the previous version ({escape(keeping)})[/]")

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()
