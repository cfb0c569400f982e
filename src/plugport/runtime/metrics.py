"""Prometheus metrics for the plugin runtime: calls, capability use, activations, restarts,
crashes, resources and state per plugin, in a registry owned by one host."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, ClassVar, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

__all__ = ["PLUGIN_STATES", "RuntimeMetrics"]

PLUGIN_STATES = ("inactive", "starting", "active", "backoff", "quarantined", "stopped")

# A hook that answers from memory takes ~50 µs over the channel; the slowest allowed call is
# bounded by the per-call timeout, at most a minute.
_CALL_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Activation starts (or forks) a worker and imports the plugin: milliseconds at best.
_ACTIVATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_Series = tuple[MetricWrapperBase, tuple[str, ...]]
_Metric = TypeVar("_Metric", bound=MetricWrapperBase)


class RuntimeMetrics:
    """The runtime's metrics. Each instance owns its registry, never the process-wide default,
    so two hosts in one process (and every test) count separately."""

    # The format generate_latest writes. prometheus_client's CONTENT_TYPE_LATEST names the
    # 1.0.0 text format since 0.22, which older scrapers do not ask for.
    CONTENT_TYPE: ClassVar[str] = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._calls = Counter(
            "plugport_plugin_calls_total",
            "Calls into plugins (hooks, commands, events) by outcome.",
            ("plugin", "kind", "outcome"),
            registry=r,
        )
        self._call_seconds = Histogram(
            "plugport_plugin_call_duration_seconds",
            "Wall time of calls into plugins, including the channel round trip.",
            ("plugin", "kind"),
            buckets=_CALL_BUCKETS,
            registry=r,
        )
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
        with self._lock:
            self._labels(self._calls, plugin, kind, outcome).inc()
            self._labels(self._call_seconds, plugin, kind).observe(seconds)

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
        with self._lock:
            for metric, labels in self._series.pop(plugin, set()):
                metric.remove(*labels)
                self._children.pop((id(metric), labels), None)

    def render(self) -> bytes:
        """The registry in the Prometheus text format, served as :attr:`CONTENT_TYPE`."""
        return generate_latest(self.registry)
