"""Workflow runs on a real host with the tasker plugin in its sandbox: a DAG passes results by
pointer, each failure policy, cancel, a bad file refused with nothing stored, resume after a
restart with each step run once, and a run on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import ConflictError, WorkflowError
from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions
from tests.host.tasks._tasks import PLUGIN, install_tasker, with_host

FAST = QueueOptions(poll_s=0.02)

DAG = """
name = "sums"
[input]
type = "object"
required = ["x", "y"]
[steps.left]
task = "ADD"
payload = { a = "$input/x", b = 1 }
[steps.right]
task = "ADD"
payload = { a = "$input/y", b = 2 }
[steps.join]
task = "CONCAT"
needs = ["left", "right"]
payload = { parts = ["$steps/left/result/sum", "$steps/right/result/sum", "$$"], sep = "+" }
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    install_tasker(home, tmp_path_factory.mktemp("scratch"))
    return home


def effects(host: PluginHost, run_id: str) -> dict[str, int]:
    storage = host.supervisor.services.storage
    prefix = f"effect:workflow:{run_id}:"
    return {
        key.removeprefix(prefix): storage.get(PLUGIN, key)
        for key in storage.keys(PLUGIN, prefix, limit=1000)
    }


def failing(policy: str) -> str:
    return f"""
name = "policy"
[steps.first]
task = "ADD"
payload = {{ a = 1, b = 1 }}
compensate = {{ task = "UNDO", payload = {{ what = "first", sum = "$steps/first/result/sum" }} }}
[steps.side]
task = "ADD"
payload = {{ a = 5, b = 5 }}
compensate = {{ task = "UNDO", payload = {{ what = "side" }} }}
[steps.broken]
task = "FAIL"
needs = ["first"]
on-failure = "{policy}"
retry = {{ max-attempts = 2 }}
[steps.after]
task = "ADD"
needs = ["broken"]
payload = {{ a = 0, b = 0 }}
[steps.other]
task = "ADD"
needs = ["first", "side"]
payload = {{ a = "$steps/first/result/sum", b = 1, sleep = 0.3 }}
"""


def test_a_dag_with_a_fan_in_passes_results_by_pointer(home: Path) -> None:
    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(DAG, {"x": 10, "y": 20}, submitted_by="app")
        done = await host.workflows.await_run(run.id, 30)
        assert done.state == "succeeded"
        assert done.steps["join"].result == {"text": "11+22+$"}
        assert {s.state for s in done.steps.values()} == {"succeeded"}
        tasks = host.tasks.find(workflow_run=run.id)
        assert sorted(t.workflow_step or "" for t in tasks) == ["join", "left", "right"]
        assert {t.submitted_by for t in tasks} == {f"workflow:{run.id}"}
        assert effects(host, run.id) == {"left": 1, "right": 1, "join": 1}
        public = done.public()
        assert [s["needs"] for s in public["steps"]] == [[], [], ["left", "right"]]
        assert public["steps"][2]["task_id"] in {t.id for t in tasks}
        assert host.workflows.runs(state="succeeded")[0].id == run.id
        trail = host.supervisor.audit.query(plugin=PLUGIN, kind="task", limit=50)
        assert any(f"workflow run {run.id} (sums) succeeded" in e.reason for e in trail)

    with_host(home, action, options=FAST)


def test_stop_skips_pending_steps_and_fails_the_run(home: Path) -> None:
    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(failing("stop"), {})
        done = await host.workflows.await_run(run.id, 30)
        assert done.state == "failed"
        states = done.states()
        assert states.pop("other") in {"succeeded", "skipped"}  # running ones are left to end
        assert states == {
            "first": "succeeded",
            "side": "succeeded",
            "broken": "failed",
            "after": "skipped",
        }
        assert "broken" in done.error
        broken = host.tasks.get(done.steps["broken"].task_id or "")
        assert broken.attempts == 2  # the step's retry overrode the type's max-attempts
        assert "after" not in effects(host, run.id)

    with_host(home, action, options=FAST)


def test_continue_lets_independent_branches_finish(home: Path) -> None:
    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(failing("continue"), {})
        done = await host.workflows.await_run(run.id, 30)
        assert done.state == "failed"
        assert done.states() == {
            "first": "succeeded",
            "side": "succeeded",
            "broken": "failed",
            "after": "skipped",
            "other": "succeeded",
        }
        assert done.steps["other"].result == {"sum": 3}

    with_host(home, action, options=FAST)


def test_compensate_undoes_succeeded_steps_in_reverse_order(home: Path) -> None:
    async def action(host: PluginHost) -> None:
        storage = host.supervisor.services.storage
        storage.set(PLUGIN, "undone", [], quota_bytes=1 << 20)
        run = await host.workflows.start(failing("compensate"), {})
        done = await host.workflows.await_run(run.id, 30)
        assert done.state == "compensated"
        assert done.steps["first"].state == "compensated"
        assert done.steps["side"].state == "compensated"
        assert done.steps["broken"].state == "failed"
        assert done.steps["after"].state == "skipped"
        undone = storage.get(PLUGIN, "undone")
        assert undone == ["side", "first"]  # reverse topological order, one at a time
        first = host.tasks.get(done.steps["first"].compensation_task_id or "")
        assert first.payload == {"what": "first", "sum": 2}
        assert first.workflow_step == "first/compensate"

    with_host(home, action, options=FAST)


def test_cancel_cancels_the_steps_tasks(home: Path) -> None:
    workflow = """
name = "slow"
[steps.wait]
task = "ADD"
payload = { a = 1, b = 1, sleep = 5 }
[steps.next]
task = "ADD"
needs = ["wait"]
payload = { a = 1, b = 1 }
"""

    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(workflow, {})
        cancelled = await host.workflows.cancel(run.id)
        assert cancelled.state == "cancelled"
        assert cancelled.steps["next"].state == "cancelled"
        task = host.tasks.get(cancelled.steps["wait"].task_id or "")
        assert task.state == "cancelled"
        assert (await host.workflows.await_run(run.id, 5)).steps["wait"].state == "cancelled"
        with pytest.raises(ConflictError, match="is cancelled"):
            await host.workflows.cancel(run.id)

    with_host(home, action, options=FAST)


@pytest.mark.parametrize(
    ("workflow", "step", "field"),
    [
        (
            'name = "c"\n[steps.a]\ntask = "ADD"\nneeds = ["b"]\n'
            '[steps.b]\ntask = "ADD"\nneeds = ["a"]\n',
            "a",
            "needs",
        ),
        (
            'name = "d"\n[steps.a]\ntask = "ADD"\n[steps.b]\ntask = "ADD"\n'
            'payload = { a = "$steps/a/result/sum", b = 1 }\n',
            "b",
            "payload.a",
        ),
        ('name = "u"\n[steps.a]\ntask = "NOPE"\n', "a", "task"),
        ('name = "p"\n[steps.a]\ntask = "ADD"\npayload = { a = 1 }\n', "a", "payload/b"),
    ],
)
def test_a_bad_workflow_is_refused_audited_and_nothing_is_stored(
    home: Path, workflow: str, step: str, field: str
) -> None:
    async def action(host: PluginHost) -> None:
        before = (len(host.workflows.runs(limit=1000)), len(host.tasks.find(limit=1000)))
        with pytest.raises(WorkflowError) as caught:
            await host.workflows.start(workflow, {})
        assert (caught.value.step, caught.value.field) == (step, field)
        after = (len(host.workflows.runs(limit=1000)), len(host.tasks.find(limit=1000)))
        assert after == before
        trail = host.supervisor.audit.query(kind="task", limit=5)
        assert any("refused" in e.reason and field in e.reason for e in trail)

    with_host(home, action, options=FAST)


def test_bad_input_is_refused_before_anything_is_stored(home: Path) -> None:
    async def action(host: PluginHost) -> None:
        before = len(host.workflows.runs(limit=1000))
        with pytest.raises(WorkflowError) as caught:
            await host.workflows.start(DAG, {"x": 1})
        assert caught.value.field == "input/y"
        assert len(host.workflows.runs(limit=1000)) == before

    with_host(home, action, options=FAST)


def test_a_workflow_file_is_read_and_its_errors_name_it(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "sums.toml"
    good.write_text(DAG)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[steps.a]\ntask = "ADD"\nneeds = ["zz"]\n')

    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(good, {"x": 1, "y": 1})
        assert (await host.workflows.await_run(run.id, 30)).state == "succeeded"
        with pytest.raises(WorkflowError, match=r"bad\.toml"):
            await host.workflows.start(bad, {})

    with_host(home, action, options=FAST)


def test_an_interrupted_run_resumes_after_a_restart_and_each_step_runs_once(
    home: Path,
) -> None:
    async def submit_only(host: PluginHost) -> str:
        run = await host.workflows.start(DAG, {"x": 1, "y": 2})
        assert run.steps["left"].state == "queued"
        assert run.steps["join"].state == "pending"
        return run.id

    run_id = with_host(home, submit_only, run_tasks=False)

    async def resumed(host: PluginHost) -> dict[str, Any]:
        done = await host.workflows.await_run(run_id, 30)
        assert done.state == "succeeded"
        assert done.steps["join"].result == {"text": "2+4+$"}
        return effects(host, run_id)

    assert with_host(home, resumed, options=FAST) == {"left": 1, "right": 1, "join": 1}


def test_resume_catches_up_with_a_step_that_ended_while_nothing_listened(home: Path) -> None:
    """The step's task ended, but the run was not advanced (the host died between the
    task's commit and its listener): the next start advances it, submitting nothing twice."""

    async def action(host: PluginHost) -> None:
        runner = host.workflows
        assert runner._unsubscribe is not None
        runner._unsubscribe()  # deaf: as if the process died after each task's commit
        run = await runner.start(DAG, {"x": 0, "y": 0})
        for step in ("left", "right"):
            await host.tasks.await_result(run.steps[step].task_id or "", 30)
        assert runner.status(run.id).steps["join"].state == "pending"
        runner._unsubscribe = host.tasks.on_finished(runner._task_finished)
        await runner.resume()
        await runner.resume()  # a second look changes nothing
        done = await runner.await_run(run.id, 30)
        assert done.state == "succeeded"
        assert effects(host, run.id) == {"left": 1, "right": 1, "join": 1}
        assert len(host.tasks.find(workflow_run=run.id)) == 3

    with_host(home, action, options=FAST)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = os.environ.get("PLUGPORT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PLUGPORT_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"test_wf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_run_on_postgresql(home: Path, postgres_url: str) -> None:
    async def action(host: PluginHost) -> None:
        run = await host.workflows.start(DAG, {"x": 3, "y": 4})
        done = await host.workflows.await_run(run.id, 30)
        assert done.state == "succeeded"
        assert done.steps["join"].result == {"text": "4+6+$"}
        assert effects(host, run.id) == {"left": 1, "right": 1, "join": 1}

    with_host(
        home,
        action,
        options=QueueOptions(poll_s=0.02, exclusive=False),
        tasks_url=postgres_url,
    )
