"""The tasks monitor pages of a workspace: queue depth and per-type figures, the task list with
a state filter, one task (payload, attempts, progress, error) with its Retry or Cancel button,
and the workflow runs with a run's graph (steps in topological columns, each state as text and
as a class; the ``needs`` edges as a server-rendered SVG, no script). Signed in and CSRF-checked
as the other pages; actions audit the signed-in token as the API's do."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from plugport.errors import NotFoundError, PlugportError
from plugport.host.service._task_view_rules import STATE_CLASSES, graph_columns
from plugport.host.service.operations import describe
from plugport.host.service.pages import FormText, _PageRoute, _Pages, templates
from plugport.host.service.service import HostService

__all__ = ["task_pages_router"]

TASKS_SHOWN = 50
RUNS_SHOWN = 20
COLUMN_W = 200
"""The graph's geometry (px): a column's width, a step box's height and the gap below it."""
BOX_W = 160
BOX_H = 56
ROW_H = 80


def _seconds(value: float | None) -> str:
    """A duration for the stats table: ``-`` for none, ms below a second."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


templates.env.filters["seconds"] = _seconds


def task_pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    route_class = type("TaskPageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    tasks = service.tasks

    @router.get("/workspaces/{ws}/tasks")
    async def monitor(
        request: Request,
        ws: str,
        state: Annotated[
            str | None, Query(pattern="^(|queued|running|succeeded|dead|cancelled|rejected)$")
        ] = None,
    ) -> Response:
        pages.member(request, ws)
        stats = await tasks.stats(ws)
        runs: list[dict[str, Any]] | None
        try:
            runs = await tasks.workflow_runs(ws, limit=RUNS_SHOWN)
        except NotFoundError:  # this host has no workflow runner
            runs = None
        context = {
            "ws": ws,
            "stats": stats,
            "depth": sum(s["queue_depth"] for s in stats),
            "dead_total": sum(s["dead_letters"] for s in stats),
            "state": state or "",
            "items": await tasks.tasks(ws, state=state or None, limit=TASKS_SHOWN),
            "schedules": await tasks.schedules(ws),
            "runs": runs,
            "classes": STATE_CLASSES,
        }
        return pages.render(request, "tasks.html", context)

    @router.get("/workspaces/{ws}/tasks/{task_id}")
    async def task(request: Request, ws: str, task_id: str) -> Response:
        pages.member(request, ws)
        found = await tasks.task(ws, task_id)
        context = {"ws": ws, "task": found, "classes": STATE_CLASSES}
        return pages.render(request, "task.html", context)

    @router.post("/workspaces/{ws}/tasks/{task_id}/{action}")
    async def act(
        request: Request, ws: str, task_id: str, action: str, csrf: FormText = None
    ) -> Response:
        """The Retry and Cancel buttons: as the API's, audited as the signed-in token."""
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        back = f"/workspaces/{ws}/tasks/{quote(task_id, safe='')}"
        if action not in ("retry", "cancel"):
            return pages.error_page(request, 404, f"No action {action!r}.")
        try:
            if action == "retry":
                done = await tasks.retry(ws, who, task_id)
            else:
                done = await tasks.cancel(ws, who, task_id)
        except PlugportError as exc:
            status, body = describe(exc)
            if status == 404:
                return pages.error_page(request, 404, body["message"])
            return pages.redirect(
                request, back, f"Could not {action} task {task_id}: {body['message']}", "error"
            )
        said = "is queued again" if action == "retry" else "is cancelled"
        return pages.redirect(request, back, f"Task {done['id']} ({done['type']}) {said}.")

    @router.get("/workspaces/{ws}/workflows/{run_id}")
    async def run(request: Request, ws: str, run_id: str) -> Response:
        pages.member(request, ws)
        found = await tasks.workflow_run(ws, run_id)
        context = {"ws": ws, "run": found, "classes": STATE_CLASSES} | _graph(found["steps"])
        return pages.render(request, "workflow_run.html", context)

    @router.post("/workspaces/{ws}/workflows/{run_id}/cancel")
    async def cancel_run(request: Request, ws: str, run_id: str, csrf: FormText = None) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        back = f"/workspaces/{ws}/workflows/{quote(run_id, safe='')}"
        try:
            await tasks.cancel_workflow(ws, who, run_id)
        except PlugportError as exc:
            _, body = describe(exc)
            return pages.redirect(request, back, f"Could not cancel: {body['message']}", "error")
        return pages.redirect(request, back, f"Workflow run {run_id} is cancelled.")

    return router


def _graph(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Where each step's box goes and the edges between them, for the run page's SVG."""
    columns = graph_columns(steps)
    boxes: dict[str, dict[str, Any]] = {}
    for x, column in enumerate(columns):
        for y, step in enumerate(column):
            boxes[step["name"]] = step | {"x": 20 + x * COLUMN_W, "y": 20 + y * ROW_H}
    edges = [
        {
            "from": need,
            "to": name,
            "x1": boxes[need]["x"] + BOX_W,
            "y1": boxes[need]["y"] + BOX_H / 2,
            "x2": box["x"],
            "y2": box["y"] + BOX_H / 2,
        }
        for name, box in boxes.items()
        for need in box["needs"]
    ]
    rows = max((len(c) for c in columns), default=1)
    return {
        "columns": [[boxes[s["name"]] for s in c] for c in columns],
        "edges": edges,
        "width": 40 + max(1, len(columns)) * COLUMN_W,
        "height": 40 + rows * ROW_H,
        "box_w": BOX_W,
        "box_h": BOX_H,
    }
