"""The host's task queue with a real plugin in the real sandbox: results, schema refusals,
idempotency, retries with backoff, dead letters, timeouts that kill the worker, invalid
results, cancel and late results, priorities, concurrency limits, follow-up tasks and their
permission, progress, middleware that rejects, restarts, schedules and purge."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import shutil
import time
from pathlib import Path

import pytest

from plugport.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TaskValidationError,
)
from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions
from plugport.host.tasks.store import SqlTaskStore
from tests.host.tasks._tasks import (
    GUARD,
    GUARD_CODE,
    GUARD_MANIFEST,
    PLUGIN,
    install_tasker,
    with_host,
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host home with the tasker plugin, installed once; each test works on a copy."""
    root = tmp_path_factory.mktemp("tasker")
    home = root / "home"
    install_tasker(home, root)
    return home


@pytest.fixture
def home(installed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(installed, copy, symlinks=True)
    return copy


async def _effects(host: PluginHost) -> dict[str, int]:
    values = host.supervisor.services.storage
    return dict(values.get(PLUGIN, "effects") or {})


def _audit(host: PluginHost, plugin: str = PLUGIN) -> list[str]:
    return [e.reason for e in host.supervisor.audit.query(plugin=plugin, kind="task")]


def test_a_task_runs_in_the_sandbox_and_its_result_is_kept(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        submitted = await host.tasks.submit("ECHO", {"text": "hi"})
        assert submitted.state == "queued"
        assert submitted.idempotency_key == "hi"
        done = await host.tasks.await_result(submitted.id, 20)
        assert (done.state, done.result, done.error) == (
            "succeeded",
            {"echo": "hi", "attempt": 1},
            "",
        )
        assert done.progress == 100
        assert done.attempts == 1
        assert done.started_at is not None
        assert done.finished_at is not None
        assert done.started_at <= done.finished_at
        [attempt] = host.tasks.store.attempts_of(done.id)
        assert (attempt.attempt, attempt.outcome) == (1, "ok")
        assert await _effects(host) == {"hi": 1}
        metrics = host.supervisor.metrics.render().decode()
        assert (
            'plugport_tasks_finished_total{plugin="acme.tasker",state="succeeded",type="ECHO"} 1.0'
            in metrics
        )

    with_host(home, act)


def test_a_payload_that_breaks_its_schema_or_an_unknown_type_queues_nothing(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        with pytest.raises(TaskValidationError) as caught:
            await host.tasks.submit("ECHO", {"text": 5})
        assert caught.value.field == "/text"
        assert "payload field '/text': 5 is not of type 'string'" in str(caught.value)
        with pytest.raises(TaskValidationError, match="'/text': is required and missing"):
            await host.tasks.submit("ECHO", {})
        with pytest.raises(NotFoundError) as unknown:
            await host.tasks.submit("NOPE", {})
        assert "ECHO" in str(unknown.value)  # the declared types are listed
        with pytest.raises(NotFoundError, match=r"by plugin 'acme\.other'"):
            await host.tasks.submit("ECHO", {"text": "x"}, plugin="acme.other")
        with pytest.raises(InvalidInputError, match="priority must be -100 to 100"):
            await host.tasks.submit("ECHO", {"text": "x"}, priority=1000)
        with pytest.raises(InvalidInputError, match="delay_s"):
            await host.tasks.submit("ECHO", {"text": "x"}, delay_s=-1)
        assert host.tasks.find() == []
        assert host.tasks.engine.waiting() == set()

    with_host(home, act)


def test_the_same_idempotency_key_returns_the_first_task_and_runs_once(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        first = await host.tasks.submit("ECHO", {"text": "once"})
        again = await host.tasks.submit("ECHO", {"text": "once"})
        given = await host.tasks.submit("ECHO", {"text": "other"}, idempotency_key="once")
        assert again.id == first.id
        assert given.id == first.id  # a given key wins over the payload's: the same "once"
        await host.tasks.await_result(first.id, 20)
        assert len(host.tasks.find(type="ECHO")) == 1
        assert await _effects(host) == {"once": 1}

    with_host(home, act)


def test_a_failing_handler_is_retried_with_backoff_then_succeeds(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        record = await host.tasks.submit("FLAKY", {"succeed_on": 3})
        done = await host.tasks.await_result(record.id, 20)
        assert (done.state, done.attempts, done.result) == ("succeeded", 3, {"attempts": 3})
        attempts = host.tasks.store.attempts_of(record.id)
        assert [a.outcome for a in attempts] == ["error", "error", "ok"]
        assert "attempt 1 fails" in attempts[0].error
        # each retry waited at least half its backoff (0.05 s, then 0.1 s capped at 0.1 s)
        gaps = [b.started_at - (a.finished_at or 0) for a, b in itertools.pairwise(attempts)]
        assert all(gap >= 0.025 for gap in gaps), gaps

    with_host(home, act)


def test_a_handler_that_keeps_failing_is_dead_with_its_reason_then_retried(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        record = await host.tasks.submit("FLAKY", {"succeed_on": 5})
        dead = await host.tasks.await_result(record.id, 20)
        assert (dead.state, dead.attempts, dead.error_kind) == ("dead", 3, "raised")
        assert "attempt 3 fails" in dead.error
        assert any("dead" in line and "attempt 3 fails" in line for line in _audit(host))
        assert [t.id for t in host.tasks.find(state="dead")] == [record.id]
        again = await host.tasks.retry(record.id)
        assert (again.state, again.attempts) == ("queued", 0)
        dead_again = await host.tasks.await_result(record.id, 20)
        assert (dead_again.state, dead_again.attempts) == ("dead", 3)
        assert len(host.tasks.store.attempts_of(record.id)) == 6
        ok = await host.tasks.submit("FLAKY", {"succeed_on": 1})
        await host.tasks.await_result(ok.id, 20)
        with pytest.raises(ConflictError, match="is succeeded: only a dead"):
            await host.tasks.retry(ok.id)
        with pytest.raises(NotFoundError):
            await host.tasks.retry("missing")

    with_host(home, act)


def test_an_attempt_over_its_timeout_is_stopped_and_the_worker_killed(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        record = await host.tasks.submit("SLOW", {})
        dead = await host.tasks.await_result(record.id, 20)
        assert (dead.state, dead.error_kind, dead.attempts) == ("dead", "timeout", 1)
        assert "300 ms" in dead.error
        [status] = host.supervisor.status(PLUGIN)
        assert status.restarts >= 1 or status.state != "running"  # that worker is gone
        after = await host.tasks.submit("ECHO", {"text": "after"})  # a fresh worker serves
        assert (await host.tasks.await_result(after.id, 20)).state == "succeeded"

    with_host(home, act)


def test_an_invalid_result_is_dead_at_once_naming_the_field(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        record = await host.tasks.submit("BAD_RESULT", {})
        dead = await host.tasks.await_result(record.id, 20)
        assert (dead.state, dead.error_kind, dead.attempts) == ("dead", "invalid_result", 1)
        assert "result field '/count': 'many' is not of type 'integer'" in dead.error
        assert dead.result is None

    with_host(home, act)


def test_cancel_stops_a_queued_task_and_drops_a_running_ones_late_result(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        later = await host.tasks.submit("ECHO", {"text": "later"}, delay_s=60)
        cancelled = await host.tasks.cancel(later.id, reason="not needed")
        assert (cancelled.state, cancelled.error) == ("cancelled", "not needed")
        running = await host.tasks.submit("ECHO", {"text": "slowly", "sleep": 0.6})
        while host.tasks.get(running.id).state != "running":
            await asyncio.sleep(0.01)
        await host.tasks.cancel(running.id)
        async with asyncio.timeout(20):  # the handler ends in 0.6 s, then its result is dropped
            while not any("late result dropped" in line for line in _audit(host)):
                await asyncio.sleep(0.05)
        record = host.tasks.get(running.id)
        assert (record.state, record.result) == ("cancelled", None)
        with pytest.raises(ConflictError, match="is cancelled: it cannot be cancelled"):
            await host.tasks.cancel(running.id)
        with pytest.raises(NotFoundError):
            await host.tasks.cancel("missing")
        assert "later" not in await _effects(host)  # the queued one never ran

    with_host(home, act)


def test_higher_priorities_start_first(home: Path) -> None:
    async def queue(host: PluginHost) -> list[str]:
        return [
            (await host.tasks.submit("ECHO", {"text": text}, priority=priority)).id
            for text, priority in (("low", -5), ("normal", 0), ("high", 50), ("higher", 60))
        ]

    ids = with_host(home, queue, run_tasks=False)

    async def drain(host: PluginHost) -> list[str]:
        records = [await host.tasks.await_result(i, 20) for i in ids]
        return [r.payload["text"] for r in sorted(records, key=lambda r: r.started_at or 0)]

    order = with_host(home, drain, options=QueueOptions(concurrency=1))
    assert order == ["higher", "high", "normal", "low"]


def test_a_types_concurrency_limit_holds(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        ids = [(await host.tasks.submit("SLEEPY", {"s": 0.25})).id for _ in range(6)]
        records = [await host.tasks.await_result(i, 20) for i in ids]
        spans = [(r.started_at or 0, r.finished_at or 0) for r in records]
        most = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
        assert most <= 2  # [tasks.SLEEPY] concurrency = 2, though the plugin serves 4

    with_host(home, act)


def test_a_handler_submits_follow_ups_only_as_its_permission_allows(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        parent = await host.tasks.submit("FANOUT", {"n": 3})
        done = await host.tasks.await_result(parent.id, 20)
        children = [host.tasks.get(i) for i in done.result["children"]]
        assert {c.parent for c in children} == {parent.id}
        assert {c.submitted_by for c in children} == {f"plugin:{PLUGIN}"}
        for child in children:
            assert (await host.tasks.await_result(child.id, 20)).state == "succeeded"
        sneaky = await host.tasks.submit("SNEAKY", {})
        refused = await host.tasks.await_result(sneaky.id, 20)
        assert refused.state == "dead"
        assert "tasks.submit" in refused.error
        assert "'OTHER' matches no tasks.submit pattern (ECHO)" in refused.error

    with_host(home, act)


def test_progress_is_recorded_for_the_plugins_own_running_task_only(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        record = await host.tasks.submit("ECHO", {"text": "progress", "sleep": 0.5})
        while (current := host.tasks.get(record.id)).progress is None:
            await asyncio.sleep(0.01)
        assert (current.progress, current.progress_message) == (50, "half way")
        with pytest.raises(PermissionDeniedError, match="not one of its running tasks"):
            await host.tasks.progress_from("acme.other", record.id, 10, "mine?")
        await host.tasks.await_result(record.id, 20)
        with pytest.raises(PermissionDeniedError):  # finished: no more progress
            await host.tasks.progress_from(PLUGIN, record.id, 10, "late")

    with_host(home, act)


def test_middleware_sees_every_attempt_and_may_reject_a_task(home: Path, tmp_path: Path) -> None:
    install_tasker(
        home, tmp_path / "guard", code=GUARD_CODE, manifest=GUARD_MANIFEST, name=GUARD, trust=True
    )

    async def act(host: PluginHost) -> None:
        blocked = await host.tasks.submit("ECHO", {"text": "blocked"})
        rejected = await host.tasks.await_result(blocked.id, 20)
        assert (rejected.state, rejected.error_kind) == ("rejected", "rejected")
        assert rejected.error == "rejected by acme.guard: the text 'blocked' is over its rate"
        assert "blocked" not in await _effects(host)
        fine = await host.tasks.submit("ECHO", {"text": "fine"})
        await host.tasks.await_result(fine.id, 20)
        failing = await host.tasks.submit("FLAKY", {"succeed_on": 9})
        await host.tasks.await_result(failing.id, 20)
        storage = host.supervisor.services.storage
        assert storage.get(GUARD, "seen") == [fine.id]
        assert storage.get(GUARD, "errors") == [
            [failing.id, False],
            [failing.id, False],
            [failing.id, True],
        ]

    with_host(home, act)


def test_queued_tasks_survive_a_restart_and_cut_off_ones_run_again(home: Path) -> None:
    async def submit(host: PluginHost) -> list[str]:
        return [(await host.tasks.submit("ECHO", {"text": f"t{i}"})).id for i in range(3)]

    queued = with_host(home, submit, run_tasks=False)  # this process only submits

    async def cut_off(host: PluginHost) -> str:
        record = await host.tasks.submit("ECHO", {"text": "cut", "sleep": 2})
        while host.tasks.get(record.id).state != "running":
            await asyncio.sleep(0.01)
        return record.id  # the host stops with it running

    running = with_host(home, cut_off, options=QueueOptions(concurrency=1))

    async def drain(host: PluginHost) -> dict[str, int]:
        for task_id in [*queued, running]:
            done = await host.tasks.await_result(task_id, 30)
            assert done.state == "succeeded", done.error
        assert host.tasks.get(running).reruns == 1
        outcomes = [a.outcome for a in host.tasks.store.attempts_of(running)]
        assert outcomes == ["interrupted", "ok"]
        return await _effects(host)

    effects = with_host(home, drain)
    assert effects["cut"] == 1 or effects["cut"] == 2  # the cut-off attempt may have written
    assert all(effects[f"t{i}"] == 1 for i in range(3))


def test_a_second_process_on_the_same_home_only_submits(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        assert host.tasks.started
        other = PluginHost(app="myapp", app_version="2.4.0", home=home)
        async with other:
            assert other.tasks.runner_elsewhere
            assert not other.tasks.started
            record = await other.tasks.submit("ECHO", {"text": "from the other"})
        assert (await host.tasks.await_result(record.id, 20)).state == "succeeded"

    with_host(home, act)


def test_schedules_fire_once_per_minute_and_bad_ones_are_refused(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        host.tasks.add_schedule("nightly", "ECHO", {"text": "nightly"}, cron="30 2 * * *")
        with pytest.raises(ConflictError):
            host.tasks.add_schedule("nightly", "ECHO", {"text": "x"}, cron="* * * * *")
        with pytest.raises(InvalidInputError, match="the minute field '61'"):
            host.tasks.add_schedule("bad", "ECHO", {"text": "x"}, cron="61 * * * *")
        with pytest.raises(TaskValidationError):
            host.tasks.add_schedule("bad", "ECHO", {"text": 1}, cron="* * * * *")
        with pytest.raises(InvalidInputError, match="schedule name"):
            host.tasks.add_schedule("no spaces", "ECHO", {"text": "x"}, cron="* * * * *")
        assert [s.name for s in host.tasks.store.schedules()] == ["nightly"]
        at = datetime.datetime(2026, 12, 7, 2, 30)
        await host.tasks._fire(at)
        await host.tasks._fire(at)  # the same minute again (another node): nothing new
        await host.tasks._fire(at.replace(minute=31))  # not a matching minute
        [fired] = host.tasks.find(type="ECHO")
        assert fired.submitted_by == "schedule:nightly"
        assert (await host.tasks.await_result(fired.id, 20)).state == "succeeded"

    with_host(home, act)


def test_uninstall_purge_forgets_tasks_attempts_and_schedules(home: Path) -> None:
    async def act(host: PluginHost) -> None:
        done = await host.tasks.submit("ECHO", {"text": "x"})
        await host.tasks.await_result(done.id, 20)
        await host.tasks.submit("ECHO", {"text": "y"}, delay_s=3600)
        host.tasks.add_schedule("hourly", "ECHO", {"text": "z"}, cron="0 * * * *")
        await host.uninstall(PLUGIN, purge=True)
        assert host.tasks.find() == []
        assert host.tasks.store.schedules() == []
        assert host.tasks.store.attempts_of(done.id) == []

    with_host(home, act)
    store = SqlTaskStore(home / "tasks.sqlite")
    try:
        assert store.find() == []
    finally:
        store.close()


def test_an_idle_queue_starts_a_task_within_milliseconds(home: Path) -> None:
    async def act(host: PluginHost) -> float:
        warm = await host.tasks.submit("ECHO", {"text": "warm"})
        await host.tasks.await_result(warm.id, 20)
        await asyncio.sleep(0.3)
        before = time.time()
        record = await host.tasks.submit("ECHO", {"text": "timed"})
        done = await host.tasks.await_result(record.id, 20)
        return (done.started_at or 0) - before

    assert with_host(home, act) < 1.0  # generous: the benchmark measures it properly
