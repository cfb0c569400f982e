"""Whether a plugin has a problem an operator should look at, decided from plain windows of
observations (counts, samples, timestamps), with no clock, no I/O and no state of their own.

Every rule answers one of three things: a :class:`Finding` (the problem, in plain words, with the
numbers behind it), a :class:`Clear` (there were enough observations and no problem, and why), or
``None``: too few observations to say either way. ``None`` leaves a finding raised earlier as it
is, so a host runtime that has just started (and knows nothing yet) never clears a problem an
earlier run reported, and a plugin that is called three times never has an "error rate"."""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "KINDS",
    "SEVERITIES",
    "CallWindow",
    "Clear",
    "FanoutShare",
    "Finding",
    "LatencyWindow",
    "Thresholds",
    "Verdict",
    "error_rate",
    "fanout_shares",
    "latency_regression",
    "memory_growth",
    "p95",
    "restarts",
    "slow_hook",
    "storage_quota",
    "theil_sen",
    "timeouts",
]

KINDS = (
    "error-rate",
    "latency-regression",
    "memory-growth",
    "restarts",
    "timeouts",
    "storage-quota",
    "slow-hook",
)
"""Every kind of finding: a closed vocabulary, one Prometheus series per kind and plugin."""
SEVERITIES = ("warning", "critical")
MIB = 1024 * 1024

Number = int | float | str


@dataclass(frozen=True)
class Finding:
    """A problem with one plugin: ``summary`` is one line for a table, ``explanation`` says what
    it means and where to look, ``numbers`` are the measurements it was decided from."""

    plugin: str
    kind: str  # one of KINDS
    severity: str  # one of SEVERITIES
    summary: str
    explanation: str
    numbers: Mapping[str, Number] = field(default_factory=dict)
    since: float = 0.0
    """Epoch seconds it was first seen (kept while it lasts); the detector fills it in."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "explanation": self.explanation,
            "numbers": dict(self.numbers),
            "since": self.since,
        }


@dataclass(frozen=True)
class Clear:
    """Enough observations, and no problem of this kind: ``reason`` says so with numbers."""

    plugin: str
    kind: str
    reason: str


Verdict = Finding | Clear | None


@dataclass(frozen=True)
class Thresholds:
    """Where each rule draws its line. The defaults suit a host pinging every 10 s; units are in
    the names."""

    error_window_s: float = 300.0
    error_min_calls: int = 20
    """Fewer calls than this in the window are no evidence (one error in three calls is not a
    problem)."""
    error_min_errors: int = 5
    error_ratio: float = 2.0
    """The recent failure rate must be this many times the baseline's ..."""
    error_margin: float = 0.05
    """... and this much above it in absolute terms (5 points)."""
    error_min_z: float = 3.0
    """... and that far above it in binomial standard deviations: not chance."""
    error_default_baseline: float = 0.01
    """The baseline of a plugin without ``error_baseline_min_calls`` earlier calls."""
    error_baseline_min_calls: int = 100
    latency_min_samples: int = 50
    latency_ratio: float = 1.5
    latency_min_increase_s: float = 0.005
    """A p95 rise smaller than this is not worth an operator's time however large its ratio
    (50 µs to 120 µs is noise on a loaded machine)."""
    latency_horizon_s: float = 86_400.0
    """After this long on the new version, the new version is the baseline."""
    memory_min_samples: int = 10
    memory_min_rising: float = 0.7
    """The share of consecutive readings that must rise: steady growth, not one jump."""
    memory_min_growth_bytes: int = 8 * MIB
    memory_min_growth_share: float = 0.1
    """Growth over the samples must be at least this share of the first reading too."""
    memory_stale_s: float = 600.0
    """Readings older than this say nothing about a worker that is not running any more."""
    restart_window_s: float = 900.0
    restart_count: int = 3
    timeout_window_s: float = 900.0
    storage_share: float = 0.9
    storage_clear_share: float = 0.85
    """A raised storage finding clears below this, so usage hovering at 90 % does not flap."""
    storage_critical_share: float = 0.98
    fanout_window_s: float = 1800.0
    fanout_min: int = 20
    fanout_ratio: float = 3.0
    fanout_min_share: float = 0.5
    fanout_min_p95_s: float = 0.005

    def __post_init__(self) -> None:
        wrong = [
            f"{name} must be > 0 (got {value})"
            for name, value in vars(self).items()
            if not value > 0
        ]
        if not self.storage_clear_share <= self.storage_share <= self.storage_critical_share <= 1:
            wrong.append("need storage_clear_share <= storage_share <= storage_critical_share <= 1")
        if wrong:
            raise ValueError("Thresholds: " + "; ".join(wrong))


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _mb(size: float) -> str:
    return f"{size / MIB:.1f} MiB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank (an observed value, never an interpolation)."""
    if not values:
        raise ValueError("p95 of no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def theil_sen(samples: Sequence[tuple[float, float]]) -> float:
    """The median of the slopes between every pair of ``(t, y)`` samples: a trend that one
    outlier (a burst, a reading taken mid-garbage-collection) cannot swing, as a least-squares
    line through the same points would."""
    slopes = [
        (y2 - y1) / (t2 - t1)
        for i, (t1, y1) in enumerate(samples)
        for t2, y2 in samples[i + 1 :]
        if t2 != t1
    ]
    return statistics.median(slopes) if slopes else 0.0


@dataclass(frozen=True)
class CallWindow:
    """A plugin's calls: the last ``error_window_s`` (recent) and before it (baseline, which
    may be decayed, hence floats). Failures are calls that ended in error, timeout, limit or
    crash; calls refused before reaching the plugin (quarantined, denied) are in neither."""

    recent_calls: int
    recent_errors: int
    baseline_calls: float
    baseline_errors: float
    observed_s: float
    """How long the detector has watched the plugin."""


def error_rate(plugin: str, w: CallWindow, t: Thresholds, *, raised: bool = False) -> Verdict:
    """The last window's failure rate far above the plugin's own long-run rate. ``raised``: the
    finding is up now, so it stays up at a lower bar (three quarters of the ratio, 60 % of the
    margin, two thirds of the deviations) and does not flap at the threshold."""
    kind = "error-rate"
    window = _minutes(t.error_window_s)
    if w.recent_calls < t.error_min_calls:
        if w.observed_s < t.error_window_s:
            return None
        return Clear(plugin, kind, f"{w.recent_calls} calls in the last {window}: too few to judge")
    rate = w.recent_errors / w.recent_calls
    known = w.baseline_calls >= t.error_baseline_min_calls
    base = w.baseline_errors / w.baseline_calls if known else t.error_default_baseline
    # A binomial deviation at the baseline's rate, floored so a perfect plugin (0 %) is not
    # "infinitely" surprised by its first two errors.
    spread = math.sqrt(max(base, 0.005) * (1 - min(base, 0.995)) / w.recent_calls)
    z = (rate - base) / spread
    ratio, margin, min_z = (
        (0.75 * t.error_ratio, 0.6 * t.error_margin, 2.0 / 3.0 * t.error_min_z)
        if raised
        else (t.error_ratio, t.error_margin, t.error_min_z)
    )
    numbers: dict[str, Number] = {
        "window_s": t.error_window_s,
        "calls": w.recent_calls,
        "failures": w.recent_errors,
        "rate": round(rate, 4),
        "baseline_rate": round(base, 4),
        "baseline_calls": round(w.baseline_calls),
        "z": round(z, 1),
    }
    high = (
        w.recent_errors >= t.error_min_errors
        and rate >= ratio * base
        and rate >= base + margin
        and z >= min_z
    )
    if not high:
        return Clear(
            plugin,
            kind,
            f"{_percent(rate)} of {w.recent_calls} calls failed in the last {window}, near its "
            f"baseline of {_percent(base)}",
        )
    if known:
        baseline = (
            f"its long-run rate before that is {_percent(base)} "
            f"({round(w.baseline_errors)} of {round(w.baseline_calls)} calls)"
        )
    else:
        baseline = (
            f"it has no long-run rate yet (under {t.error_baseline_min_calls} earlier calls), "
            f"so it is held to {_percent(base)}"
        )
    return Finding(
        plugin,
        kind,
        "critical" if rate >= 0.5 else "warning",
        f"{_percent(rate)} of calls failed in the last {window} "
        f"({w.recent_errors} of {w.recent_calls})",
        f"Calls fail far more often than usual: {baseline}. Something changed (the plugin, "
        "its settings, a service it calls): its last errors are in the audit log and its logs.",
        numbers,
    )


@dataclass(frozen=True)
class LatencyWindow:
    """The durations (seconds) of recent successful calls into one version of a plugin."""

    version: str
    samples: Sequence[float]


def latency_regression(
    plugin: str,
    before: LatencyWindow | None,
    after: LatencyWindow,
    since_change_s: float,
    t: Thresholds,
) -> Verdict:
    """The current version's p95 call time well above the previous version's, measured on the
    last successful calls of each. ``before`` is None when the plugin has run one version only
    (or the previous one answered too few calls to compare with). A call that started the
    worker counts its start too: with ``latency_min_samples`` (50) calls, one such outlier per
    start stays out of the p95."""
    kind = "latency-regression"
    if before is None or len(before.samples) < t.latency_min_samples:
        return Clear(plugin, kind, "no earlier version to compare with") if before else None
    if since_change_s >= t.latency_horizon_s:
        return Clear(
            plugin,
            kind,
            f"{after.version} has run for {since_change_s / 3600:.0f} h: it is the baseline now",
        )
    if len(after.samples) < t.latency_min_samples:
        return None
    old, new = p95(before.samples), p95(after.samples)
    numbers: dict[str, Number] = {
        "version": after.version,
        "previous_version": before.version,
        "p95_s": round(new, 6),
        "previous_p95_s": round(old, 6),
        "samples": len(after.samples),
        "previous_samples": len(before.samples),
    }
    if new < t.latency_ratio * old or new - old < t.latency_min_increase_s:
        return Clear(
            plugin,
            kind,
            f"p95 {_ms(new)} on {after.version}, {_ms(old)} on {before.version}: no regression",
        )
    ratio = new / old if old > 0 else math.inf
    numbers["ratio"] = round(ratio, 2)
    return Finding(
        plugin,
        kind,
        "critical" if ratio >= 3 else "warning",
        f"p95 call time {_ms(new)} on {after.version}, was {_ms(old)} on {before.version}",
        f"Since the update to {after.version}, its slowest calls take {ratio:.1f} times as long "
        f"(the 95th percentile of its last {len(after.samples)} successful calls, against the "
        f"last {len(before.samples)} of {before.version}). Every host call waiting on it waits "
        "longer: compare the versions' changes, or roll back.",
        numbers,
    )


def memory_growth(
    plugin: str,
    samples: Sequence[tuple[float, int]],
    limit_bytes: int,
    now: float,
    t: Thresholds,
) -> Verdict:
    """A worker whose memory keeps rising reading after reading: a leak. ``samples`` are
    ``(monotonic time, resident bytes)`` from the health pings of one worker process (a new
    process starts a new series); the slope is Theil-Sen, and most steps must rise."""
    kind = "memory-growth"
    if len(samples) < t.memory_min_samples:
        return None
    if now - samples[-1][0] > t.memory_stale_s:
        return Clear(plugin, kind, "no memory reading lately: its worker is not running")
    span = samples[-1][0] - samples[0][0]
    slope = theil_sen(samples)  # bytes per second
    steps = list(itertools.pairwise(samples))
    rising = sum(1 for (_, a), (_, b) in steps if b > a) / len(steps)
    growth = slope * span
    first, last = samples[0][1], samples[-1][1]
    numbers: dict[str, Number] = {
        "samples": len(samples),
        "span_s": round(span, 1),
        "first_bytes": first,
        "last_bytes": last,
        "slope_bytes_per_min": round(slope * 60),
        "rising_share": round(rising, 2),
    }
    enough = max(t.memory_min_growth_bytes, t.memory_min_growth_share * first)
    if slope <= 0 or rising < t.memory_min_rising or growth < enough:
        return Clear(
            plugin,
            kind,
            f"memory {_mb(last)}, {_mb(slope * 60)}/min over the last {len(samples)} "
            "readings: not a steady rise",
        )
    severity = "warning"
    reach = ""
    if limit_bytes > 0:
        numbers["limit_bytes"] = limit_bytes
        left_s = max(0.0, (limit_bytes - last) / slope)
        numbers["minutes_to_limit"] = round(left_s / 60, 1)
        reach = (
            f" At this rate it reaches its {_mb(limit_bytes)} limit in about "
            f"{_minutes(round(left_s / 60) * 60)}, and is then killed."
        )
        severity = "critical" if left_s <= 3600 else "warning"
    return Finding(
        plugin,
        kind,
        severity,
        f"memory rising {_mb(slope * 60)}/min, now {_mb(last)}",
        f"Its worker's memory rose in {rising * 100:.0f}% of the last {len(samples)} readings "
        f"over {_minutes(round(span))}, from {_mb(first)} to {_mb(last)}: it keeps something "
        f"it never frees (a cache without a bound, a growing list).{reach}",
        numbers,
    )


def restarts(
    plugin: str, times: Sequence[float], now: float, observed_s: float, t: Thresholds
) -> Verdict:
    """``restart_count`` or more worker restarts within ``restart_window_s`` (``times`` are
    the restarts' monotonic times)."""
    kind = "restarts"
    window = _minutes(t.restart_window_s)
    count = sum(1 for at in times if now - at <= t.restart_window_s)
    if count < t.restart_count:
        if observed_s < t.restart_window_s:
            return None
        return Clear(plugin, kind, f"{_count(count, 'restart')} in the last {window}")
    return Finding(
        plugin,
        kind,
        "critical" if count >= 2 * t.restart_count else "warning",
        f"restarted {count} times in the last {window}",
        "Each restart follows a crash or a kill of its worker, and costs the calls in flight "
        "and a cold start; the audit log (plugport audit) says why each one ended. Failing "
        "faster would quarantine it.",
        {"restarts": count, "window_s": t.restart_window_s},
    )


def timeouts(
    plugin: str, times: Sequence[float], now: float, observed_s: float, t: Thresholds
) -> Verdict:
    """Any call that ran past its time limit within ``timeout_window_s``."""
    kind = "timeouts"
    window = _minutes(t.timeout_window_s)
    recent = [at for at in times if now - at <= t.timeout_window_s]
    if not recent:
        if observed_s < t.timeout_window_s:
            return None
        return Clear(plugin, kind, f"no call timed out in the last {window}")
    return Finding(
        plugin,
        kind,
        "warning",
        f"{_count(len(recent), 'call')} timed out in the last {window}",
        "A call past its time limit (limits.timeout_ms, or the hook's) fails, and its worker is "
        "killed and started again. If the work is slow by nature, raise the limit; otherwise "
        "something it waits on hangs.",
        {
            "timeouts": len(recent),
            "window_s": t.timeout_window_s,
            "last_s_ago": round(now - max(recent), 1),
        },
    )


_STORES = {
    "storage": "its key-value storage (permissions.storage)",
    "data_dir": "its data directory (max_data_dir_mb)",
}


def storage_quota(
    plugin: str,
    readings: Mapping[str, tuple[int, int]],
    t: Thresholds,
    *,
    raised: bool = False,
) -> Verdict:
    """A store filled to ``storage_share`` of its quota. ``readings``: store (``storage``,
    ``data_dir``) -> ``(used bytes, quota bytes)``; a quota of 0 (storage switched off) is no
    store. ``raised``: the finding is up now, so it clears only below ``storage_clear_share``."""
    kind = "storage-quota"
    stores = {name: pair for name, pair in readings.items() if pair[1] > 0}
    if not stores:
        return None
    bar = t.storage_clear_share if raised else t.storage_share
    shares = {name: used / quota for name, (used, quota) in stores.items()}
    worst = max(shares, key=lambda name: shares[name])
    used, quota = stores[worst]
    if shares[worst] < bar:
        return Clear(plugin, kind, f"{_STORES.get(worst, worst)} is {_percent(shares[worst])} full")
    numbers: dict[str, Number] = {"store": worst}
    for name, (each_used, each_quota) in sorted(stores.items()):
        numbers[f"{name}_used_bytes"] = each_used
        numbers[f"{name}_quota_bytes"] = each_quota
    return Finding(
        plugin,
        kind,
        "critical" if shares[worst] >= t.storage_critical_share else "warning",
        f"{worst.replace('_', ' ')} {_percent(shares[worst])} full ({used} of {quota} bytes)",
        f"{_STORES.get(worst, worst).capitalize()} is close to its quota: a write that would "
        "go past it is refused, so the plugin starts failing. Raise the quota (a new grant, or "
        "the operator's max_data_dir_mb), or have the plugin delete what it no longer needs.",
        numbers,
    )


class FanoutShare(NamedTuple):
    """One plugin's part in one hook fan-out (of two or more plugins)."""

    at: float  # monotonic seconds
    own_s: float
    others_median_s: float
    """The median time of the other plugins in the same fan-out."""
    share: float
    """Its time over the fan-out's total (the implementations' times added up)."""


def fanout_shares(at: float, timings: Sequence[tuple[str, float]]) -> dict[str, FanoutShare]:
    """Each plugin's :class:`FanoutShare` of one fan-out, ``timings`` being ``(plugin,
    seconds)`` per implementation called: one sort, then each plugin's "median of the
    others" read off the sorted times without it (O(n log n) for the fan-out, not O(n²))."""
    if len(timings) < 2:
        return {}
    ordered = sorted(s for _, s in timings)
    total = sum(ordered)
    left = len(ordered) - 1  # how many others each plugin has
    shares = {}
    for name, own in timings:
        skip = bisect.bisect_left(ordered, own)  # one copy of its own time, left out
        low, high = (left - 1) // 2, left // 2
        median = (
            ordered[low if low < skip else low + 1] + ordered[high if high < skip else high + 1]
        ) / 2
        shares[name] = FanoutShare(at, own, median, own / total if total > 0 else 0.0)
    return shares


def slow_hook(
    plugin: str,
    fanouts: Mapping[str, Sequence[FanoutShare]],
    now: float,
    observed_s: float,
    t: Thresholds,
) -> Verdict:
    """A plugin that, across at least ``fanout_min`` recent fan-outs of a hook, takes far
    longer than the others called with it (its p95 over ``fanout_ratio`` times the others'
    median) and most of the fan-out's time (a median share of ``fanout_min_share``): every
    caller of that hook waits on it. ``fanouts``: hook -> its parts in recent fan-outs."""
    kind = "slow-hook"
    slow: list[tuple[str, int, float, float, float]] = []
    judged = 0
    for hook, parts in sorted(fanouts.items()):
        recent = [p for p in parts if now - p.at <= t.fanout_window_s]
        if len(recent) < t.fanout_min:
            continue
        judged += 1
        mine_p95 = p95([p.own_s for p in recent])
        theirs = statistics.median(p.others_median_s for p in recent)
        share = statistics.median(p.share for p in recent)
        if (
            mine_p95 >= t.fanout_min_p95_s
            and mine_p95 > t.fanout_ratio * theirs
            and share >= t.fanout_min_share
        ):
            slow.append((hook, len(recent), mine_p95, theirs, share))
    if not slow:
        if judged or observed_s >= t.fanout_window_s:
            return Clear(plugin, kind, "no hook fan-out waits mostly on it")
        return None
    hook, count, mine_p95, theirs, share = max(slow, key=lambda s: s[2])
    numbers: dict[str, Number] = {
        "hook": hook,
        "fanouts": count,
        "p95_s": round(mine_p95, 6),
        "others_median_s": round(theirs, 6),
        "median_share": round(share, 2),
    }
    if len(slow) > 1:
        numbers["hooks"] = ", ".join(s[0] for s in slow)
    times = f"{mine_p95 / theirs:.1f} times" if theirs > 0 else "far above"
    return Finding(
        plugin,
        kind,
        "warning",
        f"slows the {hook!r} hook: p95 {_ms(mine_p95)}, the others' median {_ms(theirs)}",
        f"In the last {count} fan-outs of {hook!r} it took {share * 100:.0f}% of the time "
        f"(median), its p95 {times} the other plugins' median: the application waits on it "
        "at every call of the hook. Lower its priority, give the hook a timeout_ms, or have "
        "it do the slow part in a task.",
        numbers,
    )
