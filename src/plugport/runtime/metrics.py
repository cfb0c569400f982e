"""Prometheus metrics for the plugin runtime: calls, capability use, activations, restarts,
crashes, resources and state per plugin, in a registry owned by one host."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["PLUGIN_STATES", "RuntimeMetrics"]

PLUGIN_STATES = ("inactive", "starting", "active", "backoff", "quarantined", "stopped")

# A hook that answers from memory takes ~50 µs over the channel; the slowest allowed call is
# bounded by the per-call timeout, at most a minute.
_CALL_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_CALL_BOUNDS = (*(floatToGoString(b) for b in _CALL_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]
# Activation starts (or forks) a worker and imports the plugin: milliseconds at best.
_ACTIVATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_Series = tuple[MetricWrapperBase, tuple[str, ...]]
_Metric = TypeVar("_Metric", bound=MetricWrapperBase)


class _CallMetrics(Collector):
    """Calls into plugins, counted in plain numbers and turned into Prometheus families only
    when scraped: every call counts, and a labelled Counter and Histogram cost several
    microseconds and three locks per call where this costs a dict update and a bisect."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[tuple[str, str, str], int] = {}
        # (plugin, kind) -> per-bucket counts (the last one +Inf), then the sum of seconds
        self.durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def call(self, plugin: str, kind: str, outcome: str, seconds: float) -> None:
        key = (plugin, kind, outcome)
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            histogram = self.durations.get((plugin, kind))
            if histogram is None:
                histogram = self.durations[plugin, kind] = ([0] * (len(_CALL_BUCKETS) + 1), [0.0])
            histogram[0][bisect.bisect_left(_CALL_BUCKETS, seconds)] += 1
            histogram[1][0] += seconds

    def forget(self, plugin: str) -> None:
        with self.lock:
            for counted in [k for k in self.calls if k[0] == plugin]:
                del self.calls[counted]
            for timed in [k for k in self.durations if k[0] == plugin]:
                del self.durations[timed]

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "plugport_plugin_calls",
            "Calls into plugins (hooks, commands, events) by outcome.",
            labels=("plugin", "kind", "outcome"),
        )
        durations = HistogramMetricFamily(
            "plugport_plugin_call_duration_seconds",
            "Wall time of calls into plugins, including the channel round trip.",
            labels=("plugin", "kind"),
        )
        with self.lock:
            counted = list(self.calls.items())
            timed = [(k, list(counts), total[0]) for k, (counts, total) in self.durations.items()]
        for outcome_labels, count in sorted(counted):
            calls.add_metric(outcome_labels, count)
        bounds = _CALL_BOUNDS
        for kind_labels, counts, total in sorted(timed):
            running, buckets = 0, []
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                buckets.append((bound, float(running)))
            durations.add_metric(kind_labels, buckets, total)
        yield calls
        yield durations

    def describe(self) -> Iterator[Metric]:
        return iter(())


class RuntimeMetrics:
    """The runtime's metrics. Each instance owns its registry, never the process-wide default,
    so two hosts in one process (and every test) count separately."""

    # The format generate_latest writes. prometheus_client's CONTENT_TYPE_LATEST names the
    # 1.0.0 text format since 0.22, which older scrapers do not ask for.
    CONTENT_TYPE: ClassVar[str] = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._calls = _CallMetrics()
        r.register(self._calls)
        self._capabilities = Counter(
            "plugport_capability_calls_total",
            "Capability requests from plugins to the host, by outcome.",
            ("plugin", "capability", "outcome"),
            registry=r,
        )
        self._activations = Counter(
            "plugport_plugin_activations_total", "Plugin activations.", ("plugin",), registry=r
        )
        self._activation_seconds = Histogram(
            "plugport_plugin_activation_duration_seconds",
            "Time from starting a plugin's worker to the plugin being active.",
            ("plugin",),
            buckets=_ACTIVATION_BUCKETS,
            registry=r,
        )
        self._restarts = Counter(
            "plugport_plugin_restarts_total",
            "Worker restarts after a crash.",
            ("plugin",),
            registry=r,
        )
        self._swaps = Counter(
            "plugport_plugin_swaps_total",
            "Hot swaps of a plugin's worker (a new version or new settings), by outcome: hot "
            "(a new worker took over from a running one), idle (none was running), rolled_back.",
            ("plugin", "outcome"),
            registry=r,
        )
        self._crashes = Counter(
            "plugport_plugin_crashes_total",
            "Workers that ended without being asked to, by cause.",
            ("plugin", "cause"),
            registry=r,
        )
        self._cpu_seconds = Gauge(
            "plugport_plugin_cpu_seconds",
            "CPU time used by the plugin's current worker.",
            ("plugin",),
            registry=r,
        )
        self._peak_rss_bytes = Gauge(
            "plugport_plugin_peak_rss_bytes",
            "Peak resident memory of the plugin's current worker.",
            ("plugin",),
            registry=r,
        )
        self._state = Gauge(
            "plugport_plugin_state",
            "1 for the plugin's current lifecycle state, 0 for the others.",
            ("plugin", "state"),
            registry=r,
        )
        self._problem = Gauge(
            "plugport_plugin_problem",
            "1 while the runtime holds a finding of this kind about the plugin (error rate, "
            "latency regression, memory growth, restarts, timeouts, storage quota, slow hook), "
            "else 0.",
            ("plugin", "kind"),
            registry=r,
        )
        # Every label set created per plugin, so forget() can remove exactly those; the lock
        # keeps a forget() on one thread from racing a late update on another.
        self._series: defaultdict[str, set[_Series]] = defaultdict(set)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def _labels(self, metric: _Metric, plugin: str, *rest: str) -> _Metric:
        """The labelled child, looked up once: every call into a plugin counts, so this is on
        the hot path."""
        labels = (plugin, *rest)
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            self._series[plugin].add((metric, labels))
            child = self._children[key] = metric.labels(*labels)
        return cast(_Metric, child)

    def call(self, plugin: str, kind: str, outcome: str, seconds: float) -> None:
        """One call into a plugin. ``kind``: hook, command or event; ``outcome``: ok, error,
        timeout, crash, limit, denied or quarantined."""
        self._calls.call(plugin, kind, outcome, seconds)

    def capability(self, plugin: str, capability: str, outcome: str) -> None:
        """One capability request (``net.fetch``, ``storage.set`` …); ``outcome``: ok, denied,
        error."""
        with self._lock:
            self._labels(self._capabilities, plugin, capability, outcome).inc()

    def activation(self, plugin: str, seconds: float) -> None:
        with self._lock:
            self._labels(self._activations, plugin).inc()
            self._labels(self._activation_seconds, plugin).observe(seconds)

    def restart(self, plugin: str) -> None:
        with self._lock:
            self._labels(self._restarts, plugin).inc()

    def swap(self, plugin: str, outcome: str) -> None:
        """One swap; ``outcome``: hot, idle or rolled_back."""
        with self._lock:
            self._labels(self._swaps, plugin, outcome).inc()

    def crash(self, plugin: str, cause: str) -> None:
        """``cause`` is a short label (signal, exit, launch, timeout, memory, cpu, unresponsive,
        protocol), never a free-form message: each distinct value is a new series."""
        with self._lock:
            self._labels(self._crashes, plugin, cause).inc()

    def resources(self, plugin: str, *, cpu_seconds: float, peak_rss_bytes: int) -> None:
        """The latest reading for the plugin's worker (gauges, not totals)."""
        with self._lock:
            self._labels(self._cpu_seconds, plugin).set(cpu_seconds)
            self._labels(self._peak_rss_bytes, plugin).set(peak_rss_bytes)

    def state(self, plugin: str, state: str) -> None:
        """Set the plugin's one-hot state: every state is written, so a query never sees a
        plugin in two states or in none."""
        if state not in PLUGIN_STATES:
            raise ValueError(f"unknown plugin state {state!r}; expected one of {PLUGIN_STATES}")
        with self._lock:
            for each in PLUGIN_STATES:
                self._labels(self._state, plugin, each).set(1 if each == state else 0)

    def problem(self, plugin: str, kind: str, active: bool) -> None:
        """Whether a finding of ``kind`` (``runtime/problems.py``) about ``plugin`` is up."""
        with self._lock:
            self._labels(self._problem, plugin, kind).set(1 if active else 0)

    def forget(self, plugin: str) -> None:
        """Drop every series of ``plugin`` (it was uninstalled), so it stops being exported."""
        self._calls.forget(plugin)
        with self._lock:
            for metric, labels in self._series.pop(plugin, set()):
                metric.remove(*labels)
                self._children.pop((id(metric), labels), None)

    def render(self) -> bytes:
        """The registry in the Prometheus text format, served as :attr:`CONTENT_TYPE`."""
        return generate_latest(self.registry)
