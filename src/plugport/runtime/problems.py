"""Problem detection: per plugin, the supervisor's observations (calls, restarts, memory and
storage readings, hook fan-outs) kept in bounded windows, the rules of
:mod:`plugport.runtime._problem_rules` run over them now and then, and the findings they raise
kept with the time each was first seen, audited when raised and when cleared, and exported as
``plugport_plugin_problem{plugin,kind}``.

Recording must cost next to nothing, because it sits on every call into a plugin: a call is
two counter increments in the current time bucket and, for a successful call, one store into
a preallocated ring. Rules run on the health-ping interval or when someone asks
(:meth:`ProblemDetector.findings`), never per call."""

from __future__ import annotations

import array
import collections
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from plugport.runtime import _problem_rules as rules
from plugport.runtime._problem_rules import KINDS, SEVERITIES, Clear, Finding, Thresholds
from plugport.runtime.audit import AuditEvent, AuditLog

if TYPE_CHECKING:
    from plugport.runtime.hooks import HookOutcome
    from plugport.runtime.metrics import RuntimeMetrics

__all__ = ["KINDS", "Finding", "ProblemDetector", "Thresholds", "open_findings"]

_FAILED = frozenset({"error", "timeout", "limit", "crash"})
"""Outcomes that count as the plugin failing a call (quarantined and denied calls never
reached it, so they count neither way)."""
_UNCOUNTED = frozenset({"quarantined", "denied"})
_UNTIMED = frozenset({"task"})
"""Call kinds left out of latency: a task's duration is its work's, not the plugin's speed."""
_LATENCY_SAMPLES = 256
_MEMORY_SAMPLES = 30
_FANOUTS_KEPT = 64
_BUCKETS = 10
_BASELINE_HALF_LIFE_S = 6 * 3600.0
_SEPARATOR = " — "
_BASELINES_KEPT = 256
"""Removed plugins whose latency baseline is kept for their re-add (an update removes the old
version and adds the new one)."""


class _Calls:
    """Call and failure counts in ``_BUCKETS`` time buckets covering the error window, and a
    decaying total of everything older (the baseline, half-life ``_BASELINE_HALF_LIFE_S``)."""

    __slots__ = (
        "base_at",
        "base_calls",
        "base_errors",
        "bucket",
        "bucket_s",
        "calls",
        "closed",
        "errors",
    )

    def __init__(self, window_s: float) -> None:
        self.bucket_s = window_s / _BUCKETS
        self.bucket = -1
        self.calls = self.errors = 0
        self.closed: collections.deque[tuple[int, int, int]] = collections.deque()
        self.base_calls = self.base_errors = 0.0
        self.base_at = 0.0

    def add(self, now: float, failed: bool) -> None:
        index = int(now / self.bucket_s)
        if index != self.bucket:
            self._close(index)
        self.calls += 1
        if failed:
            self.errors += 1

    def _close(self, index: int) -> None:
        """Start bucket ``index``: the current one joins the recent ones, and those older than
        the window fold into the baseline (so memory stays at ``_BUCKETS`` buckets even when
        nobody evaluates)."""
        if self.calls:
            self.closed.append((self.bucket, self.calls, self.errors))
        self.bucket, self.calls, self.errors = index, 0, 0
        oldest = index - _BUCKETS + 1
        while self.closed and self.closed[0][0] < oldest:
            bucket, calls, errors = self.closed.popleft()
            at = bucket * self.bucket_s
            if self.base_calls:
                decay = 0.5 ** (max(0.0, at - self.base_at) / _BASELINE_HALF_LIFE_S)
                self.base_calls *= decay
                self.base_errors *= decay
            self.base_calls += calls
            self.base_errors += errors
            self.base_at = at

    def window(self, now: float, observed_s: float) -> rules.CallWindow:
        index = int(now / self.bucket_s)
        if index != self.bucket:
            self._close(index)
        return rules.CallWindow(
            recent_calls=self.calls + sum(c for _, c, _ in self.closed),
            recent_errors=self.errors + sum(e for _, _, e in self.closed),
            baseline_calls=self.base_calls,
            baseline_errors=self.base_errors,
            observed_s=observed_s,
        )


class _Latency:
    """The durations of one version's last ``_LATENCY_SAMPLES`` successful calls: a ring
    allocated once, written in place."""

    __slots__ = ("changed_at", "count", "next", "values", "version")

    def __init__(self, version: str, changed_at: float) -> None:
        self.version = version
        self.changed_at = changed_at
        self.values = array.array("d", bytes(8 * _LATENCY_SAMPLES))
        self.next = 0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.values[self.next] = seconds
        self.next = (self.next + 1) % _LATENCY_SAMPLES
        self.count += 1

    def window(self) -> rules.LatencyWindow:
        kept = min(self.count, _LATENCY_SAMPLES)
        return rules.LatencyWindow(self.version, self.values[:kept].tolist())


@dataclass
class _Plugin:
    """Everything the detector keeps about one plugin: a few kilobytes, whatever its traffic."""

    calls: _Calls
    watched_since: float
    latency: _Latency | None = None
    previous: _Latency | None = None
    restarts: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=64))
    timeouts: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=256)
    )
    pid: int | None = None
    memory: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=_MEMORY_SAMPLES)
    )
    memory_limit: int = 0
    storage: dict[str, tuple[int, int]] = field(default_factory=dict)
    fanouts: dict[str, collections.deque[rules.FanoutShare]] = field(default_factory=dict)
    """Hook -> its part in the hook's last ``_FANOUTS_KEPT`` fan-outs."""
    found: dict[str, Finding] = field(default_factory=dict)
    adopted: set[str] = field(default_factory=set)


Record = Callable[[AuditEvent], None]


class ProblemDetector:
    """Baselines and findings for the plugins a supervisor runs. Observations for a plugin
    not :meth:`track`-ed are ignored, so a late observation of a removed plugin is harmless."""

    def __init__(
        self,
        *,
        thresholds: Thresholds | None = None,
        record: Record | None = None,
        metrics: RuntimeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        min_interval_s: float = 1.0,
    ) -> None:
        """``record``: where raised and cleared findings go as audit events (kinds ``problem``
        and ``problem-cleared``, the finding's kind as the capability). ``min_interval_s``:
        evaluating every plugin (a status page) happens at most this often."""
        self.thresholds = thresholds or Thresholds()
        self._record = record
        self._metrics = metrics
        self._clock = clock
        self._wall = wall
        self._min_interval_s = min_interval_s
        self._plugins: dict[str, _Plugin] = {}
        self._baselines: collections.OrderedDict[str, _Latency] = collections.OrderedDict()
        self._evaluated_at = -float("inf")

    # --- which plugins -------------------------------------------------------------------------

    def track(self, plugin: str, *, adopted: Iterable[Finding] = ()) -> None:
        """Start watching ``plugin``. ``adopted``: findings an earlier run reported and never
        cleared (:func:`open_findings`), kept until this run has seen enough to decide."""
        state = _Plugin(_Calls(self.thresholds.error_window_s), self._clock())
        state.previous = self._baselines.pop(plugin, None)
        for finding in adopted:
            state.found[finding.kind] = finding
            state.adopted.add(finding.kind)
        self._plugins[plugin] = state
        if self._metrics is not None:
            for kind in KINDS:
                self._metrics.problem(plugin, kind, kind in state.found)

    def forget(self, plugin: str, reason: str, *, keep_baseline: bool = True) -> None:
        """Stop watching ``plugin``: its findings are cleared (audited with ``reason``) and its
        windows dropped. ``keep_baseline``: keep its last version's call times, so the version
        added next (after a remove and an add; a hot swap keeps the plugin tracked) is compared
        with it."""
        state = self._plugins.pop(plugin, None)
        if state is None:
            return
        for kind in sorted(state.found):
            self._cleared(Clear(plugin, kind, reason))
        baseline = state.latency
        if baseline is None or baseline.count < self.thresholds.latency_min_samples:
            baseline = state.previous
        if keep_baseline and baseline is not None:
            self._baselines[plugin] = baseline
            while len(self._baselines) > _BASELINES_KEPT:
                self._baselines.popitem(last=False)
        else:
            self._baselines.pop(plugin, None)

    def drop_baseline(self, plugin: str) -> None:
        """``plugin``'s data was purged (uninstalled): nothing of it is compared with again."""
        self._baselines.pop(plugin, None)

    # --- observations (the call path: O(1), no allocation beyond a float) ---------------------

    def call(self, plugin: str, version: str, kind: str, outcome: str, seconds: float) -> None:
        """One call into ``plugin`` (as ``RuntimeMetrics.call``), on ``version`` of it."""
        state = self._plugins.get(plugin)
        if state is None or outcome in _UNCOUNTED:
            return
        now = self._clock()
        state.calls.add(now, outcome in _FAILED)
        if outcome == "ok":
            if kind in _UNTIMED:
                return
            latency = state.latency
            if latency is None or latency.version != version:
                latency = self._new_version(state, version, now)
            latency.add(seconds)
        elif outcome == "timeout":
            state.timeouts.append(now)

    def _new_version(self, state: _Plugin, version: str, now: float) -> _Latency:
        current = state.latency
        if current is not None and current.count >= self.thresholds.latency_min_samples:
            state.previous = current  # else the one before it stays the baseline
        if state.previous is not None and state.previous.version == version:
            state.previous = None  # back to the baseline's own version: nothing to compare
        state.latency = _Latency(version, now)
        return state.latency

    def restart(self, plugin: str) -> None:
        state = self._plugins.get(plugin)
        if state is not None:
            state.restarts.append(self._clock())

    def memory(self, plugin: str, pid: int, rss_bytes: int, limit_bytes: int) -> None:
        """A health ping's memory reading of ``plugin``'s worker ``pid`` (a new pid, a new
        worker: its readings start again)."""
        state = self._plugins.get(plugin)
        if state is None:
            return
        if pid != state.pid:
            state.pid = pid
            state.memory.clear()
        state.memory.append((self._clock(), rss_bytes))
        state.memory_limit = limit_bytes

    def storage(self, plugin: str, store: str, used_bytes: int, quota_bytes: int) -> None:
        """How full one of ``plugin``'s stores is (``storage``, ``data_dir``)."""
        state = self._plugins.get(plugin)
        if state is not None:
            state.storage[store] = (used_bytes, quota_bytes)

    def fanout(self, hook: str, outcomes: Sequence[HookOutcome]) -> None:
        """One hook fan-out: which implementations ran and how long each took (with fewer
        than two there is nothing to compare)."""
        if len(outcomes) < 2:
            return
        timings = [(o.plugin, o.elapsed_ms / 1000) for o in outcomes]
        for name, part in rules.fanout_shares(self._clock(), timings).items():
            state = self._plugins.get(name)
            if state is None:
                continue
            kept = state.fanouts.get(hook)
            if kept is None:
                kept = state.fanouts[hook] = collections.deque(maxlen=_FANOUTS_KEPT)
            kept.append(part)

    # --- findings ------------------------------------------------------------------------------

    def findings(self, plugin: str | None = None) -> list[Finding]:
        """The current findings (of ``plugin``, or of every plugin watched), sorted by plugin
        and kind, evaluated first (every plugin: at most once per ``min_interval_s``)."""
        if plugin is not None:
            self.evaluate(plugin)
            state = self._plugins.get(plugin)
            return [] if state is None else [state.found[k] for k in sorted(state.found)]
        if self._clock() - self._evaluated_at >= self._min_interval_s:
            self.evaluate()
        return [
            state.found[kind]
            for name, state in sorted(self._plugins.items())
            for kind in sorted(state.found)
        ]

    def evaluate(self, plugin: str | None = None) -> None:
        """Run every rule for ``plugin`` (or every plugin), raising and clearing findings."""
        now = self._clock()
        if plugin is None:
            self._evaluated_at = now
            names = list(self._plugins)
        else:
            names = [plugin] if plugin in self._plugins else []
        for name in names:
            state = self._plugins[name]
            for verdict in self._verdicts(name, state, now):
                if isinstance(verdict, Finding):
                    self._raised(state, verdict)
                elif isinstance(verdict, Clear) and verdict.kind in state.found:
                    self._cleared(verdict, state)

    def _verdicts(self, name: str, state: _Plugin, now: float) -> list[rules.Verdict]:
        t = self.thresholds
        observed = now - state.watched_since
        latency = state.latency
        latency_verdict: rules.Verdict = None
        if latency is not None:
            before = state.previous.window() if state.previous is not None else None
            since = now - latency.changed_at
            latency_verdict = rules.latency_regression(name, before, latency.window(), since, t)
        return [
            rules.error_rate(
                name, state.calls.window(now, observed), t, raised="error-rate" in state.found
            ),
            latency_verdict,
            rules.memory_growth(name, list(state.memory), state.memory_limit, now, t),
            rules.restarts(name, list(state.restarts), now, observed, t),
            rules.timeouts(name, list(state.timeouts), now, observed, t),
            rules.storage_quota(name, state.storage, t, raised="storage-quota" in state.found),
            rules.slow_hook(name, state.fanouts, now, observed, t),
        ]

    def _raised(self, state: _Plugin, finding: Finding) -> None:
        known = state.found.get(finding.kind)
        now = self._wall()
        state.found[finding.kind] = replace(finding, since=now if known is None else known.since)
        if known is not None:
            state.adopted.discard(finding.kind)  # confirmed by this run; audited by the last
            return
        self._audit(AuditEvent(finding.plugin, "problem", _reason(finding), finding.kind, now))
        if self._metrics is not None:
            self._metrics.problem(finding.plugin, finding.kind, True)

    def _cleared(self, clear: Clear, state: _Plugin | None = None) -> None:
        if state is not None:
            state.found.pop(clear.kind, None)
            state.adopted.discard(clear.kind)
            if self._metrics is not None:
                self._metrics.problem(clear.plugin, clear.kind, False)
        event = AuditEvent(clear.plugin, "problem-cleared", clear.reason, clear.kind, self._wall())
        self._audit(event)

    def _audit(self, event: AuditEvent) -> None:
        if self._record is not None:
            self._record(event)


def _reason(finding: Finding) -> str:
    """The audit reason of a raised finding: what :func:`open_findings` reads back."""
    return f"{finding.severity}: {finding.summary}{_SEPARATOR}{finding.explanation}"


def open_findings(audit: AuditLog, plugin: str, *, since: float | None = None) -> list[Finding]:
    """``plugin``'s findings raised (at or after ``since``) and not cleared since, read from
    the audit log: what an earlier run of the runtime, or another process on the same home,
    last reported. Their numbers stay behind in that run; the summary and explanation are as
    it wrote them (in :func:`_reason`'s shape, which this reads back)."""
    events = [
        *audit.query(plugin=plugin, kind="problem", since=since, limit=100),
        *audit.query(plugin=plugin, kind="problem-cleared", since=since, limit=100),
    ]
    opened: dict[str, tuple[float, AuditEvent]] = {}  # kind -> (first raised, last raised)
    for event in sorted(events, key=lambda e: (e.at, e.id)):
        if event.kind == "problem-cleared":
            opened.pop(event.capability, None)
        elif event.capability in KINDS:
            first = opened.get(event.capability, (event.at, event))[0]
            opened[event.capability] = (first, event)
    found = []
    for kind, (first, event) in sorted(opened.items()):
        severity, _, rest = event.reason.partition(": ")
        if severity not in SEVERITIES:
            severity, rest = "warning", event.reason
        summary, _, explanation = rest.partition(_SEPARATOR)
        found.append(Finding(plugin, kind, severity, summary, explanation, {}, first))
    return found
