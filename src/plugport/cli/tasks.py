"""``plugport task submit/list/show/cancel/retry``, ``plugport task schedule add/list/remove``
and ``plugport workflow run/status`` on a host home (``--home``).

These commands write to the home's queue and read it; they do not run tasks (the host service,
or the application embedding the host, does). ``workflow run --wait`` is the exception: to see
the run end it starts the home's queue in this process for as long as it waits, unless another
process already runs it (the queue's lock file, ``HOME/tasks.lock``, lets one runner in), in
which case it only watches."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from plugport.cli._hostcommon import Home, Sandbox, home_dir, run_host
from plugport.cli._output import err, out, reporting_errors
from plugport.errors import InvalidInputError, NotFoundError

__all__ = ["task_group", "workflow_group"]

STATES = ("queued", "running", "succeeded", "dead", "cancelled", "rejected")
RUN_FINAL = ("succeeded", "failed", "cancelled", "dead")
"""The workflow run states after which ``--wait`` stops waiting."""

Payload = Annotated[
    str | None,
    typer.Option("--payload", help="The payload: JSON text, or @FILE to read it from a file."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _json_arg(option: str, value: str | None) -> Any:
    """``value`` as JSON (``@FILE``: the file's text); ``None`` when not given."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{option}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{option}: not JSON ({exc})") from None


def _existing_home(home: Path | None) -> None:
    """Refuse, without creating it, a home that does not exist: no plugin declares a task there."""
    if not home_dir(home).exists():
        with reporting_errors():
            raise InvalidInputError(
                f"there is no host home at {home_dir(home)} (install a plugin that declares "
                "tasks first, or pass --home / set PLUGPORT_HOME)"
            )


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)


# --- tasks ---------------------------------------------------------------------------------


def submit(  # noqa: PLR0917 one parameter per command-line option
    task_type: Annotated[str, typer.Argument(metavar="TYPE", help="The task type.")],
    payload: Payload = None,
    plugin: Annotated[
        str | None, typer.Option("--plugin", help="The plugin, when several declare TYPE.")
    ] = None,
    priority: Annotated[
        int | None, typer.Option("--priority", min=-100, max=100, help="-100 to 100.")
    ] = None,
    delay: Annotated[
        float | None, typer.Option("--delay", min=0, help="Seconds before it is due.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="The same key again returns the task stored."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Run the home's queue here until the task ends (unless a host service runs "
            "it already), then exit 0 if it succeeded.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds --wait waits at most.")
    ] = 600.0,
    as_json: AsJson = False,
    sandbox: Sandbox = "strict",
    home: Home = None,
) -> None:
    """Queue a task; its payload is checked against the type's schema first."""
    with reporting_errors():
        given = _json_arg("--payload", payload)
    _existing_home(home)

    async def action(host: Any) -> tuple[Any, bool]:
        record, created = await host.tasks.submit_new(
            task_type,
            given,
            plugin=plugin,
            priority=priority,
            delay_s=delay,
            idempotency_key=idempotency_key,
            submitted_by=f"cli:{host.actor}",
        )
        if created:
            host.state.audit(
                "task", record.plugin, "submitted", actor=host.actor, task=record.id,
                type=record.type,
            )  # fmt: skip
        if wait:
            await host.tasks.start()  # a no-op when another process runs this home's tasks
            try:
                record = await host.tasks.await_result(record.id, timeout)
            except TimeoutError:
                raise InvalidInputError(
                    f"task {record.id} is not done after --timeout {timeout:g} s (it goes on: "
                    f"plugport task show {record.id})"
                ) from None
        return record, created

    record, created = run_host(home, None, action, sandbox=sandbox)
    if as_json:
        print(json.dumps(record.public()))
    elif wait:
        outcome = json.dumps(record.result) if record.state == "succeeded" else record.error
        _say(f"task {record.id} ({record.type} of {record.plugin}): {record.state}: {outcome}")
    elif created:
        _say(f"task {record.id} queued ({record.type} of {record.plugin})")
    else:
        _say(
            f"task {record.id} was submitted before with this idempotency key "
            f"({record.idempotency_key}); it is {record.state}"
        )
    if wait and record.state != "succeeded":
        raise typer.Exit(1)


def list_tasks(  # noqa: PLR0917 one parameter per command-line option
    state: Annotated[
        str | None, typer.Option("--state", help="queued, running, succeeded, dead, ...")
    ] = None,
    plugin: Annotated[str | None, typer.Option("--plugin", help="Only this plugin's.")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 100,
    as_json: AsJson = False,
    home: Home = None,
) -> None:
    """List tasks, newest first (``--state dead``: the dead letters)."""
    if state is not None and state not in STATES:
        err.print(f"error: --state must be one of {', '.join(STATES)}, not {state!r}")
        raise typer.Exit(2)

    async def action(host: Any) -> list[dict[str, Any]]:
        found = host.tasks.find(state=state, plugin=plugin, type=task_type, limit=limit)
        return [r.public(payload=False) for r in found]

    rows = run_host(home, None, action, sandbox="best-effort", plugins=False, read_only=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        _say("no tasks")
        return
    for row in rows:
        error = f"  {row['error_kind']}: {row['error'][:100]}" if row["error"] else ""
        _say(
            f"{row['id']}  {row['state']:<9}  {row['plugin']}  {row['type']}  "
            f"{_when(row['submitted_at'])}  attempts {row['attempts']}/{row['max_attempts']}"
            f"{error}"
        )


def show(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="The task's id.")],
    as_json: AsJson = False,
    home: Home = None,
) -> None:
    """One task: its record, payload, result or error, and its attempts."""

    async def action(host: Any) -> dict[str, Any]:
        record = host.tasks.get(task_id)
        attempts = [a.public() for a in host.tasks.store.attempts_of(task_id)]
        return dict(record.public()) | {"attempts_list": attempts}

    found = run_host(home, None, action, sandbox="best-effort", plugins=False, read_only=True)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    _say(f"task {found['id']}: {found['state']}")
    for key in ("plugin", "type", "priority", "submitted_by", "idempotency_key", "parent"):
        if found[key] is not None:
            _say(f"  {key}: {found[key]}")
    _say(f"  submitted: {_when(found['submitted_at'])}, due {_when(found['due_at'])}")
    _say(f"  attempts: {found['attempts']} of {found['max_attempts']}")
    if found["progress"] is not None:
        _say(f"  progress: {found['progress']:.0f}% {found['progress_message']}")
    _say(f"  payload: {json.dumps(found['payload'])}")
    if found["result"] is not None:
        _say(f"  result: {json.dumps(found['result'])}")
    if found["error"]:
        _say(f"  error ({found['error_kind']}): {found['error']}")
    for attempt in found["attempts_list"]:
        error = f": {attempt['error']}" if attempt["error"] else ""
        started = _when(attempt["started_at"])
        _say(f"  attempt {attempt['attempt']}: {attempt['outcome']} at {started}{error}")


def _change(home: Path | None, task_id: str, what: str) -> Any:
    async def action(host: Any) -> Any:
        if what == "cancel":
            record = await host.tasks.cancel(task_id, reason=f"cancelled by cli:{host.actor}")
        else:
            record = await host.tasks.retry(task_id)
        outcome = "cancelled" if what == "cancel" else "retried"
        host.state.audit("task", record.plugin, outcome, actor=host.actor, task=task_id)
        return record

    _existing_home(home)
    return run_host(home, None, action, sandbox="best-effort", plugins=False)


def cancel(
    task_id: Annotated[str, typer.Argument(metavar="ID", help="A queued or running task.")],
    home: Home = None,
) -> None:
    """Cancel a queued or running task (a running attempt's result is dropped)."""
    record = _change(home, task_id, "cancel")
    _say(f"task {record.id} is cancelled")


def retry(
    task_id: Annotated[
        str, typer.Argument(metavar="ID", help="A dead, cancelled or rejected task.")
    ],
    home: Home = None,
) -> None:
    """Queue a dead, cancelled or rejected task again with a fresh count of attempts."""
    record = _change(home, task_id, "retry")
    _say(f"task {record.id} is queued again")


# --- schedules -----------------------------------------------------------------------------


def schedule_add(  # noqa: PLR0917 one parameter per command-line option
    name: Annotated[str, typer.Argument(help="The schedule's name (letters, digits, - and _).")],
    task_type: Annotated[str, typer.Argument(metavar="TYPE", help="The task type.")],
    cron: Annotated[
        str, typer.Option("--cron", help="minute hour day month weekday, e.g. '0 9 * * 1-5'.")
    ],
    payload: Payload = None,
    plugin: Annotated[
        str | None, typer.Option("--plugin", help="When several declare TYPE.")
    ] = None,
    priority: Annotated[int | None, typer.Option("--priority", min=-100, max=100)] = None,
    home: Home = None,
) -> None:
    """Submit TYPE at each minute CRON matches (the host's local time)."""
    with reporting_errors():
        given = _json_arg("--payload", payload)
    _existing_home(home)

    async def action(host: Any) -> Any:
        schedule = host.tasks.add_schedule(
            name, task_type, given, cron=cron, plugin=plugin, priority=priority
        )
        host.state.audit(
            "task", schedule.plugin, "schedule_added", actor=host.actor, schedule=name, cron=cron
        )
        return schedule

    schedule = run_host(home, None, action, sandbox="best-effort")
    _say(f"schedule {schedule.name}: {schedule.type} of {schedule.plugin} at '{schedule.cron}'")


def schedule_list(as_json: AsJson = False, home: Home = None) -> None:
    """The schedules of this home."""

    async def action(host: Any) -> list[dict[str, Any]]:
        return [s.public() for s in host.tasks.store.schedules()]

    rows = run_host(home, None, action, sandbox="best-effort", plugins=False, read_only=True)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        _say("no schedules")
    for row in rows:
        last = f", last fired {row['last_fired']}" if row["last_fired"] else ""
        _say(f"{row['name']}  '{row['cron']}'  {row['type']} of {row['plugin']}{last}")


def schedule_remove(
    name: Annotated[str, typer.Argument(help="The schedule's name.")], home: Home = None
) -> None:
    """Remove a schedule (tasks it submitted stay)."""
    _existing_home(home)

    async def action(host: Any) -> None:
        found = next((s for s in host.tasks.store.schedules() if s.name == name), None)
        host.tasks.store.delete_schedule(name)
        subject = found.plugin if found is not None else "-"
        host.state.audit("task", subject, "schedule_removed", actor=host.actor, schedule=name)

    run_host(home, None, action, sandbox="best-effort", plugins=False)
    _say(f"schedule {name} removed")


# --- workflows -----------------------------------------------------------------------------


def _runner(host: Any) -> Any:
    runner = getattr(host, "workflows", None)
    if runner is None:
        raise NotFoundError("workflow runner", str(host.paths.root), "this host runs no workflows")
    return runner


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value


def _public(run: Any) -> dict[str, Any]:
    return dict(run.public() if hasattr(run, "public") else run)


def _print_run(run: dict[str, Any]) -> None:
    _say(f"workflow run {run['id']} ({run['workflow']}): {run['state']}")
    for step in run.get("steps") or []:
        needs = f" after {', '.join(step['needs'])}" if step.get("needs") else ""
        task = f" task {step['task_id']}" if step.get("task_id") else ""
        error = f": {step['error']}" if step.get("error") else ""
        _say(f"  {step['name']} ({step['task']}{needs}): {step['state']}{task}{error}")
    if run.get("error"):
        _say(f"  error: {run['error']}")


def workflow_run(  # noqa: PLR0917 one parameter per command-line option
    file: Annotated[Path, typer.Argument(help="The workflow's TOML file.")],
    given_input: Annotated[
        str | None, typer.Option("--input", help="The run's input: JSON text, or @FILE.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Run the home's queue here until the run ends (unless a host service runs "
            "it already), then exit 0 if it succeeded.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds --wait waits at most.")
    ] = 600.0,
    as_json: AsJson = False,
    sandbox: Sandbox = "strict",
    home: Home = None,
) -> None:
    """Start a run of the workflow in FILE."""
    with reporting_errors():
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{file}: cannot read it: {exc.strerror}") from None
        data = _json_arg("--input", given_input)
    _existing_home(home)

    async def action(host: Any) -> dict[str, Any]:
        runner = _runner(host)
        run = _public(await _maybe(runner.start(text, data, submitted_by=f"cli:{host.actor}")))
        host.state.audit("task", "workflow", "workflow_started", actor=host.actor, run=run["id"])
        if not wait:
            return run
        await host.tasks.start()  # a no-op when another process runs this home's tasks
        deadline = time.monotonic() + timeout
        while run["state"] not in RUN_FINAL:
            if time.monotonic() > deadline:
                raise InvalidInputError(
                    f"workflow run {run['id']} is still {run['state']} after --timeout "
                    f"{timeout:g} s (it goes on: plugport workflow status {run['id']})"
                )
            await asyncio.sleep(0.1)
            run = _public(await _maybe(runner.status(run["id"])))
        return run

    run = run_host(home, None, action, sandbox=sandbox)
    if as_json:
        print(json.dumps(run, indent=2))
    else:
        _print_run(run)
    if wait and run["state"] != "succeeded":
        raise typer.Exit(1)


def workflow_status(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.")],
    as_json: AsJson = False,
    home: Home = None,
) -> None:
    """A workflow run and each of its steps."""

    async def action(host: Any) -> dict[str, Any]:
        run = await _maybe(_runner(host).status(run_id))
        if run is None:
            raise NotFoundError("workflow run", run_id)
        return _public(run)

    run = run_host(home, None, action, sandbox="best-effort")
    if as_json:
        print(json.dumps(run, indent=2))
        return
    _print_run(run)


def task_group() -> typer.Typer:
    tasks = typer.Typer(
        help="The home's task queue: submit, list, show, cancel, retry, schedules. These "
        "commands do not run tasks; the host service (or the application) does.",
        no_args_is_help=True,
    )
    tasks.command("submit")(submit)
    tasks.command("list")(list_tasks)
    tasks.command("show")(show)
    tasks.command("cancel")(cancel)
    tasks.command("retry")(retry)
    schedules = typer.Typer(help="Recurring tasks (cron).", no_args_is_help=True)
    schedules.command("add")(schedule_add)
    schedules.command("list")(schedule_list)
    schedules.command("remove")(schedule_remove)
    tasks.add_typer(schedules, name="schedule")
    return tasks


def workflow_group() -> typer.Typer:
    workflows = typer.Typer(
        help="Workflow runs: start one, see where it stands.", no_args_is_help=True
    )
    workflows.command("run")(workflow_run)
    workflows.command("status")(workflow_status)
    return workflows
