"""The problem detector on a fake clock: what it keeps per plugin (bounded, forgotten on
remove), findings raised and cleared with audit events and the Prometheus gauge, latency
baselines keyed by version across an update, and findings an earlier run left open."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

from plugport.runtime.audit import AuditEvent, MemoryAuditLog
from plugport.runtime.hooks import HookOutcome
from plugport.runtime.metrics import RuntimeMetrics
from plugport.runtime.problems import (
    KINDS,
    Finding,
    ProblemDetector,
    Thresholds,
    _reason,
    open_findings,
)
from tests.runtime.test_metrics import value

P = "acme.p"


@dataclass
class Clock:
    now: float = 1000.0
    wall: float = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def detector(
    clock: Clock, audit: MemoryAuditLog | None = None, metrics: RuntimeMetrics | None = None
) -> ProblemDetector:
    return ProblemDetector(
        record=(audit or MemoryAuditLog()).record,
        metrics=metrics,
        clock=lambda: clock.now,
        wall=lambda: clock.wall,
    )


def calls(found: ProblemDetector, n: int, outcome: str = "ok", seconds: float = 0.001, *,
          version: str = "1.0.0", kind: str = "hook") -> None:  # fmt: skip
    for _ in range(n):
        found.call(P, version, kind, outcome, seconds)


def kinds_of(found: ProblemDetector, plugin: str | None = P) -> list[str]:
    return [f.kind for f in found.findings(plugin)]


def gauge(metrics: RuntimeMetrics, kind: str) -> float | None:
    return value(metrics, "plugport_plugin_problem", plugin=P, kind=kind)


def test_an_error_burst_is_raised_once_audited_exported_then_cleared() -> None:
    clock, audit, metrics = Clock(), MemoryAuditLog(), RuntimeMetrics()
    found = detector(clock, audit, metrics)
    found.track(P)
    assert {k: gauge(metrics, k) for k in KINDS} == dict.fromkeys(KINDS, 0)
    for _ in range(60):  # an hour of healthy traffic: the baseline
        calls(found, 20)
        clock.advance(60)
    clock.advance(300)  # a quiet spell: the last window holds the burst alone
    calls(found, 30, "error")
    calls(found, 30)
    [finding] = found.findings(P)
    assert finding.kind == "error-rate"
    assert finding.numbers["calls"] == 60
    assert finding.numbers["failures"] == 30
    assert finding.numbers["baseline_rate"] == 0
    assert finding.since == clock.wall
    assert gauge(metrics, "error-rate") == 1
    [raised] = audit.query(kind="problem")
    assert (raised.plugin, raised.capability) == (P, "error-rate")
    assert raised.reason.startswith("critical: 50.0% of calls failed in the last 5 min")

    clock.advance(30)
    calls(found, 5, "error")
    [again] = found.findings(P)
    assert again.since == finding.since  # first seen is kept
    assert again.numbers["failures"] == 35
    assert len(audit.query(kind="problem")) == 1  # no second audit event

    clock.advance(400)  # the burst is out of the window; healthy calls again
    calls(found, 100)
    assert found.findings(P) == []
    assert gauge(metrics, "error-rate") == 0
    [cleared] = audit.query(kind="problem-cleared")
    assert cleared.capability == "error-rate"
    assert "near its baseline" in cleared.reason


def test_calls_never_reaching_the_plugin_do_not_count() -> None:
    clock = Clock()
    found = detector(clock)
    found.track(P)
    calls(found, 100, "quarantined")
    calls(found, 100, "denied")
    clock.advance(600)
    state = found._plugins[P]
    window = state.calls.window(clock.now, 600)
    assert (window.recent_calls, window.baseline_calls) == (0, 0)


def test_memory_is_bounded_whatever_the_traffic() -> None:
    clock = Clock()
    found = detector(clock)
    found.track(P)
    calls(found, 10)  # the rings exist
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):  # ~17 hours of buckets
            calls(found, 20)
            calls(found, 1, "timeout")
            clock.advance(31)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, after - before
    state = found._plugins[P]
    assert len(state.calls.closed) <= 10
    assert len(state.timeouts) == state.timeouts.maxlen


def test_latency_baseline_survives_an_update_that_removes_and_adds() -> None:
    clock, audit = Clock(), MemoryAuditLog()
    found = detector(clock, audit)
    found.track(P)
    calls(found, 100, seconds=0.010)
    calls(found, 100, seconds=5.0, kind="task")  # tasks are their work's time, not the plugin's
    found.forget(P, "removed: being updated")
    found.track(P)
    calls(found, 100, seconds=0.040, version="1.1.0")
    [finding] = found.findings(P)
    assert finding.kind == "latency-regression"
    assert finding.numbers["previous_p95_s"] == 0.010
    assert finding.numbers["p95_s"] == 0.040
    assert finding.numbers["previous_version"] == "1.0.0"

    # an uninstall with purge forgets the baseline too
    found.forget(P, "removed", keep_baseline=False)
    found.track(P)
    calls(found, 100, seconds=0.040, version="1.2.0")
    assert found.findings(P) == []


def test_a_version_change_without_a_remove_swap_is_compared_too() -> None:
    clock = Clock()
    found = detector(clock)
    found.track(P)
    calls(found, 100, seconds=0.010)
    calls(found, 10, seconds=0.010, version="1.0.1")  # too few to become the baseline
    calls(found, 100, seconds=0.030, version="1.1.0")
    [finding] = found.findings(P)
    assert finding.numbers["previous_version"] == "1.0.0"
    # rolled back: 1.0.0 is compared with 1.1.0 now, and is no slower
    calls(found, 100, seconds=0.010, version="1.0.0")
    assert kinds_of(found) == []


def test_memory_readings_start_again_with_a_new_worker() -> None:
    clock = Clock()
    found = detector(clock)
    found.track(P)
    for i in range(12):
        found.memory(P, 41, 40_000_000 + i * 2_000_000, 256 * 1024 * 1024)
        clock.advance(10)
    assert kinds_of(found) == ["memory-growth"]
    for _ in range(12):  # restarted: a new pid, flat
        found.memory(P, 42, 40_000_000, 256 * 1024 * 1024)
        clock.advance(10)
    assert kinds_of(found) == []


def test_restarts_timeouts_and_storage_are_raised_from_their_observations() -> None:
    clock = Clock()
    found = detector(clock)
    found.track(P)
    for _ in range(3):
        found.restart(P)
        clock.advance(60)
    calls(found, 1, "timeout")
    found.storage(P, "storage", 960, 1000)
    assert kinds_of(found) == ["restarts", "storage-quota", "timeouts"]
    found.storage(P, "storage", 100, 1000)
    clock.advance(1000)
    assert kinds_of(found) == []


def test_a_plugin_slowing_a_fan_out_is_found_from_call_hook_outcomes() -> None:
    clock = Clock()
    found = detector(clock)
    for name in (P, "acme.q", "acme.r"):
        found.track(name)
    for _ in range(25):
        found.fanout(
            "render",
            [
                HookOutcome(P, True, elapsed_ms=80.0),
                HookOutcome("acme.q", True, elapsed_ms=2.0),
                HookOutcome("acme.r", False, elapsed_ms=3.0),
            ],
        )
        clock.advance(1)
    found.fanout("render", [HookOutcome(P, True, elapsed_ms=1.0)])  # alone: nothing to compare
    assert [(f.plugin, f.kind) for f in found.findings()] == [(P, "slow-hook")]
    [finding] = found.findings(P)
    assert finding.numbers["hook"] == "render"
    assert finding.numbers["fanouts"] == 25
    assert finding.numbers["others_median_s"] == 0.0025


def test_forget_clears_open_findings_and_late_observations_are_ignored() -> None:
    clock, audit, metrics = Clock(), MemoryAuditLog(), RuntimeMetrics()
    found = detector(clock, audit, metrics)
    found.track(P)
    calls(found, 1, "timeout")
    assert kinds_of(found) == ["timeouts"]
    found.forget(P, "removed from the runtime")
    [cleared] = audit.query(kind="problem-cleared")
    assert (cleared.capability, cleared.reason) == ("timeouts", "removed from the runtime")
    calls(found, 5, "timeout")
    found.restart(P)
    found.memory(P, 1, 1, 1)
    assert found.findings() == []
    assert P not in found._plugins


def test_findings_an_earlier_run_left_open_are_kept_until_decided() -> None:
    clock, audit = Clock(), MemoryAuditLog()
    earlier = detector(clock, audit)
    earlier.track(P)
    for _ in range(3):
        earlier.restart(P)
    calls(earlier, 2, "timeout")
    raised = earlier.findings(P)
    assert [f.kind for f in raised] == ["restarts", "timeouts"]
    clock.advance(5)

    # another process reads them back from the audit log, as they were written
    adopted = open_findings(audit, P)
    assert [(f.kind, f.severity, f.summary, f.since) for f in adopted] == [
        (f.kind, f.severity, f.summary, f.since) for f in raised
    ]
    assert adopted[0].explanation == raised[0].explanation
    assert all(f.numbers == {} for f in adopted)

    # a new run knows nothing yet: it keeps them without auditing them again
    later = detector(clock, audit, RuntimeMetrics())
    later.track(P, adopted=adopted)
    assert kinds_of(later) == ["restarts", "timeouts"]
    calls(later, 1, "timeout")  # confirmed: numbers now, first seen as before, no audit
    timeouts = later.findings(P)[1]
    assert timeouts.numbers["timeouts"] == 1
    assert timeouts.since == raised[1].since
    assert len(audit.query(kind="problem")) == 2

    clock.advance(901)  # watched a whole window without a restart or a timeout
    assert kinds_of(later) == []
    assert sorted(e.capability for e in audit.query(kind="problem-cleared")) == [
        "restarts",
        "timeouts",
    ]
    assert open_findings(audit, P) == []


def test_open_findings_ignores_other_kinds_and_takes_the_first_raise() -> None:
    audit = MemoryAuditLog()
    first = Finding(P, "timeouts", "warning", "1 call timed out", "why", {}, 0)
    audit.record(AuditEvent(P, "problem", _reason(first), "timeouts", at=10.0))
    audit.record(AuditEvent(P, "problem", _reason(first), "timeouts", at=20.0))
    audit.record(AuditEvent(P, "problem", "something else", "not-a-kind", at=30.0))
    audit.record(AuditEvent(P, "problem", "bad", "restarts", at=30.0))
    audit.record(AuditEvent(P, "problem-cleared", "fine", "restarts", at=40.0))
    [found] = open_findings(audit, P)
    assert (found.kind, found.since, found.summary, found.explanation) == (
        "timeouts",
        10.0,
        "1 call timed out",
        "why",
    )
    assert open_findings(audit, P, since=15.0)[0].since == 20.0


def test_evaluating_every_plugin_happens_at_most_once_per_interval() -> None:
    clock = Clock()
    found = ProblemDetector(
        clock=lambda: clock.now, wall=lambda: clock.wall, thresholds=Thresholds()
    )
    found.track(P)
    assert found.findings() == []
    calls(found, 1, "timeout")
    assert found.findings() == []  # evaluated less than a second ago
    assert kinds_of(found) == ["timeouts"]  # one plugin: always now
    found.forget(P, "gone")
    found.track(P)
    calls(found, 1, "timeout")
    clock.advance(1)
    assert [f.kind for f in found.findings()] == ["timeouts"]
