"""``plugport task ...`` and ``plugport workflow ...`` on a host home with the tasker plugin:
they write to the queue (nothing runs them here), refuse bad input with a message and exit 1
(2 for usage) changing nothing, and ``workflow run --wait`` runs the queue while it waits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plugport.host import PluginHost
from tests.host.service._tasks_service import ONCE_CODE, ONCE_MANIFEST
from tests.host.tasks._tasks import PLUGIN, install_tasker, with_host


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    install_tasker(home, tmp_path / "scratch", code=ONCE_CODE, manifest=ONCE_MANIFEST)
    return home


def _listed(run_cli: Any, home: Path, *args: str) -> list[dict[str, Any]]:
    done = run_cli("task", "list", "--json", "--home", str(home), *args)
    assert done.exit_code == 0, done.output
    rows: list[dict[str, Any]] = json.loads(done.output)
    return rows


def test_submit_list_show_cancel_retry(run_cli: Any, home: Path, tmp_path: Path) -> None:
    h = str(home)
    made = run_cli("task", "submit", "ECHO", "--payload", '{"text": "hi"}', "--home", h)
    assert made.exit_code == 0, made.output
    assert f"(ECHO of {PLUGIN})" in made.output
    [row] = _listed(run_cli, home)
    assert row["state"] == "queued"  # a command does not run tasks
    assert row["submitted_by"].startswith("cli:")
    again = run_cli("task", "submit", "ECHO", "--payload", '{"text": "hi"}', "--home", h)
    assert again.exit_code == 0
    assert "submitted before with this idempotency key" in again.output
    payload = tmp_path / "p.json"
    payload.write_text('{"text": "from a file"}')
    from_file = run_cli(
        "task", "submit", "ECHO", "--payload", f"@{payload}", "--priority", "5",
        "--delay", "60", "--idempotency-key", "k1", "--home", h,
    )  # fmt: skip
    assert from_file.exit_code == 0, from_file.output
    rows = _listed(run_cli, home)
    assert len(rows) == 2
    task_id = rows[0]["id"]
    assert rows[0]["priority"] == 5

    shown = run_cli("task", "show", task_id, "--home", h)
    assert shown.exit_code == 0, shown.output
    assert '"from a file"' in shown.output
    as_json = json.loads(run_cli("task", "show", task_id, "--json", "--home", h).output)
    assert as_json["idempotency_key"] == "k1"
    assert as_json["attempts_list"] == []
    human = run_cli("task", "list", "--home", h, "--state", "queued")
    assert task_id in human.output

    refused = run_cli("task", "retry", task_id, "--home", h)
    assert refused.exit_code == 1
    assert "is queued" in refused.output
    cancelled = run_cli("task", "cancel", task_id, "--home", h)
    assert cancelled.exit_code == 0, cancelled.output
    assert _listed(run_cli, home, "--state", "cancelled")[0]["id"] == task_id
    assert run_cli("task", "cancel", task_id, "--home", h).exit_code == 1
    retried = run_cli("task", "retry", task_id, "--home", h)
    assert retried.exit_code == 0, retried.output
    assert "queued again" in retried.output

    async def trail(host: PluginHost) -> list[tuple[str, str]]:
        return [(a.outcome, a.actor) for a in host.audit(subject=PLUGIN) if a.action == "task"]

    mine = [o for o, actor in with_host(home, trail, run_tasks=False) if actor != "runtime"]
    assert mine[::-1] == ["submitted", "submitted", "cancelled", "retried"]


def test_bad_input_exits_non_zero_and_changes_nothing(
    run_cli: Any, home: Path, tmp_path: Path
) -> None:
    h = str(home)
    cases = [
        (("task", "submit", "NOPE", "--payload", "{}"), 1, "task type"),
        (("task", "submit", "ECHO", "--payload", '{"text": 5}'), 1, "payload field '/text'"),
        (("task", "submit", "ECHO", "--payload", "{nope"), 1, "--payload: not JSON"),
        (("task", "submit", "ECHO", "--payload", "@/nowhere.json"), 1, "cannot read"),
        (("task", "submit", "ECHO", "--priority", "500"), 2, "priority"),
        (("task", "list", "--state", "lost"), 2, "--state"),
        (("task", "show", "nope"), 1, "nope"),
        (("task", "cancel", "nope"), 1, "nope"),
        (("task", "schedule", "add", "s", "ECHO", "--cron", "0 3 * *"), 1, "five fields"),
        (("task", "schedule", "remove", "nope"), 1, "nope"),
        (("workflow", "status", "r1"), 1, "workflow"),
    ]
    for args, code, said in cases:
        done = run_cli(*args, "--home", h)
        assert done.exit_code == code, (args, done.output)
        assert said in done.output, (args, done.output)
    assert _listed(run_cli, home) == []
    assert "no schedules" in run_cli("task", "schedule", "list", "--home", h).output
    nowhere = tmp_path / "nowhere"
    done = run_cli("task", "submit", "ECHO", "--payload", '{"text": "x"}', "--home", str(nowhere))
    assert done.exit_code == 1
    assert "no host home" in done.output
    assert not nowhere.exists()


def test_schedules(run_cli: Any, home: Path) -> None:
    h = str(home)
    added = run_cli(
        "task", "schedule", "add", "nightly", "ECHO", "--cron", "0 3 * * *",
        "--payload", '{"text": "n"}', "--home", h,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "nightly" in run_cli("task", "schedule", "list", "--home", h).output
    taken = run_cli(
        "task", "schedule", "add", "nightly", "ECHO", "--cron", "* * * * *",
        "--payload", '{"text": "m"}', "--home", h,
    )  # fmt: skip
    assert taken.exit_code == 1
    assert "exists" in taken.output
    listed = json.loads(run_cli("task", "schedule", "list", "--json", "--home", h).output)
    assert [(s["name"], s["cron"]) for s in listed] == [("nightly", "0 3 * * *")]
    assert run_cli("task", "schedule", "remove", "nightly", "--home", h).exit_code == 0
    assert "no schedules" in run_cli("task", "schedule", "list", "--home", h).output


def test_workflow_run_and_wait(run_cli: Any, home: Path, tmp_path: Path) -> None:
    h = str(home)
    flow = tmp_path / "flow.toml"
    flow.write_text(
        'name = "twice"\n[steps.a]\ntask = "ADD"\npayload = { a = "$input/n", b = 1 }\n'
        '[steps.b]\ntask = "ADD"\nneeds = ["a"]\npayload = { a = "$steps/a/result/sum", b = 1 }\n'
    )
    started = run_cli("workflow", "run", str(flow), "--input", '{"n": 1}', "--home", h)
    assert started.exit_code == 0, started.output
    assert "(twice): running" in started.output
    assert [r["state"] for r in _listed(run_cli, home)] == ["queued"]  # nothing ran it yet

    waited = run_cli(
        "workflow", "run", str(flow), "--input", '{"n": 10}', "--wait", "--json",
        "--sandbox", "best-effort", "--home", h,
    )  # fmt: skip
    assert waited.exit_code == 0, waited.output
    run = json.loads(waited.output)
    assert run["state"] == "succeeded", run
    last = next(s for s in run["steps"] if s["name"] == "b")
    assert last["result"] == {"sum": 12}
    status = run_cli("workflow", "status", run["id"], "--home", h)
    assert status.exit_code == 0, status.output
    assert "succeeded" in status.output

    missing = run_cli("workflow", "run", str(tmp_path / "none.toml"), "--home", h)
    assert missing.exit_code == 1
    assert "cannot read" in missing.output
    bad_input = run_cli("workflow", "run", str(flow), "--input", "[1,", "--home", h)
    assert bad_input.exit_code == 1
    assert "--input: not JSON" in bad_input.output
    cycle = tmp_path / "cycle.toml"
    cycle.write_text('name = "c"\n[steps.a]\ntask = "ADD"\nneeds = ["a"]\n')
    refused = run_cli("workflow", "run", str(cycle), "--home", h)
    assert refused.exit_code == 1
    assert "a -> a" in refused.output


def test_the_commands_only_write_to_the_queue(home: Path) -> None:
    """What a service started on the same home later finds and runs."""

    async def count(host: PluginHost) -> int:
        return len(host.tasks.find())

    assert with_host(home, count, run_tasks=False) == 0
