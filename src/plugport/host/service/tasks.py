"""The task queue and workflow runs of a workspace in the host service's JSON API, under
``/api/v1/workspaces/{ws}/``: ``tasks`` (submit, list, show, cancel, retry, stats,
schedules) and ``workflows/runs``. The same workspace token as every other workspace route;
each action is audited with the token's actor by :class:`TaskService`; errors leave in the
API's one JSON shape, a bad field named in ``details.field``."""

# No ``from __future__ import annotations``: the routes' dependencies are bound to one service
# inside tasks_router, and FastAPI must see those local aliases as objects, not names.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, StrictInt, StrictStr

from plugport.host.service.api import ErrorRoute, _documented, _Strict, read_body
from plugport.host.service.deps import workspace_member
from plugport.host.service.service import HostService
from plugport.host.service.store import (
    FieldError,
    Principal,
)

__all__ = ["tasks_router"]

TaskState = Annotated[
    str | None, Query(pattern="^(queued|running|succeeded|dead|cancelled|rejected)$")
]
Name = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=1000)]


class TaskCreate(_Strict):
    type: StrictStr = Field(max_length=200, description="The task type, as a plugin declares it")
    payload: Any = Field(default=None, description="Checked against the type's payload schema")
    plugin: StrictStr | None = Field(
        default=None, max_length=200, description="Needed when several plugins declare the type"
    )
    priority: StrictInt | None = Field(default=None, ge=-100, le=100)
    delay_s: float | None = Field(default=None, ge=0, le=366 * 86400)
    idempotency_key: StrictStr | None = Field(default=None, min_length=1, max_length=500)


class ScheduleCreate(_Strict):
    name: StrictStr = Field(max_length=100, description="Letters, digits, '-' and '_'")
    type: StrictStr = Field(max_length=200)
    cron: StrictStr = Field(
        max_length=200, description="Five fields: minute hour day month weekday (local time)"
    )
    payload: Any = None
    plugin: StrictStr | None = Field(default=None, max_length=200)
    priority: StrictInt | None = Field(default=None, ge=-100, le=100)


class WorkflowRunCreate(_Strict):
    workflow: StrictStr = Field(
        max_length=256 * 1024, description="The workflow's TOML text (its steps and needs)"
    )
    input: Any = Field(default=None, description="The run's input, which steps refer to")


def tasks_router(service: HostService) -> APIRouter:
    settings = service.settings
    tasks = service.tasks

    Member = Annotated[Principal, Depends(workspace_member(service))]

    router = APIRouter(prefix="/api/v1/workspaces/{ws}", route_class=ErrorRoute)
    task_routes = APIRouter(prefix="/tasks", tags=["host service: tasks"], route_class=ErrorRoute)
    flow_routes = APIRouter(
        prefix="/workflows", tags=["host service: workflows"], route_class=ErrorRoute
    )

    # --- tasks -----------------------------------------------------------------------------

    @task_routes.post(
        "",
        status_code=201,
        openapi_extra=_documented(TaskCreate),
        responses={200: {"description": "The idempotency key matched: the task stored before"}},
    )
    async def submit(ws: str, request: Request, who: Member) -> Response:
        """Queue a task; 201 with its record, or 200 with the record already stored when the
        idempotency key matched (``created`` says which). A payload its schema refuses is 400
        with ``details.field`` (``payload/pointer``); an unknown type is 404."""
        given = await read_body(request, TaskCreate, settings.max_input_bytes)
        record, created = await tasks.submit(
            ws,
            who,
            given.type,
            given.payload,
            plugin=given.plugin,
            priority=given.priority,
            delay_s=given.delay_s,
            idempotency_key=given.idempotency_key,
        )
        return JSONResponse(record | {"created": created}, 201 if created else 200)

    @task_routes.get("")
    async def list_tasks(  # noqa: PLR0917 one parameter per query parameter
        ws: str,
        who: Member,
        state: TaskState = None,
        plugin: Name = None,
        type: Name = None,
        limit: Limit = 100,
        before: Annotated[float | None, Query(description="submitted_at below this")] = None,
    ) -> dict[str, Any]:
        """Newest first, without payloads; ``state=dead`` lists the dead letters."""
        found = await tasks.tasks(
            ws, state=state, plugin=plugin, task_type=type, limit=limit, before=before
        )
        return {"items": found}

    @task_routes.get("/stats")
    async def stats(ws: str, who: Member) -> dict[str, Any]:
        """Per (plugin, type): counts by state (queue depth = queued + running; dead letters),
        and over the last hour: throughput, wait and run p50/p95 (seconds), attempts, failures
        by error kind."""
        return {"items": await tasks.stats(ws)}

    @task_routes.get("/schedules")
    async def list_schedules(ws: str, who: Member) -> dict[str, Any]:
        return {"items": await tasks.schedules(ws)}

    @task_routes.post("/schedules", status_code=201, openapi_extra=_documented(ScheduleCreate))
    async def add_schedule(ws: str, request: Request, who: Member) -> dict[str, Any]:
        """A recurring task; a cron that does not parse is 400 naming ``cron``, a name taken
        is 409."""
        given = await read_body(request, ScheduleCreate, settings.max_input_bytes)
        return await tasks.add_schedule(
            ws,
            who,
            given.name,
            given.type,
            given.payload,
            cron=given.cron,
            plugin=given.plugin,
            priority=given.priority,
        )

    @task_routes.delete("/schedules/{name}", status_code=204)
    async def delete_schedule(ws: str, name: str, who: Member) -> Response:
        await tasks.delete_schedule(ws, who, name)
        return Response(status_code=204)

    @task_routes.get("/{task_id}")
    async def get_task(ws: str, task_id: str, who: Member) -> dict[str, Any]:
        """The record with its payload, and its attempts (``attempts_list``)."""
        return await tasks.task(ws, task_id)

    @task_routes.post("/{task_id}/cancel")
    async def cancel(ws: str, task_id: str, who: Member) -> dict[str, Any]:
        """Cancel a queued or running task; 409 naming its state when it already ended."""
        return await tasks.cancel(ws, who, task_id)

    @task_routes.post("/{task_id}/retry")
    async def retry(ws: str, task_id: str, who: Member) -> dict[str, Any]:
        """Queue a dead, cancelled or rejected task again with a fresh count of attempts;
        409 naming its state otherwise."""
        return await tasks.retry(ws, who, task_id)

    # --- workflows -------------------------------------------------------------------------

    @flow_routes.post("/runs", status_code=201, openapi_extra=_documented(WorkflowRunCreate))
    async def start_run(ws: str, request: Request, who: Member) -> dict[str, Any]:
        """Start a run of a workflow (TOML text) with ``input``."""
        given = await read_body(request, WorkflowRunCreate, settings.max_input_bytes)
        if not given.workflow.strip():
            raise FieldError("workflow", "give the workflow's TOML text")
        return await tasks.start_workflow(ws, who, given.workflow, given.input)

    @flow_routes.get("/runs")
    async def list_runs(
        ws: str,
        who: Member,
        state: Annotated[str | None, Query(max_length=40)] = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        return {"items": await tasks.workflow_runs(ws, state=state, limit=limit)}

    @flow_routes.get("/runs/{run_id}")
    async def get_run(ws: str, run_id: str, who: Member) -> dict[str, Any]:
        """The run with each step's state, task id, result and error."""
        return await tasks.workflow_run(ws, run_id)

    @flow_routes.post("/runs/{run_id}/cancel")
    async def cancel_run(ws: str, run_id: str, who: Member) -> dict[str, Any]:
        return await tasks.cancel_workflow(ws, who, run_id)

    router.include_router(task_routes)
    router.include_router(flow_routes)
    return router
