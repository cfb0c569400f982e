"""Task metrics in the host's Prometheus registry: per plugin and type, tasks submitted and
ended (by state), attempts (by outcome), the wait from due to start and the run time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from plugport.host.tasks.store import TaskRecord

__all__ = ["QueueDepthCollector", "TaskMetrics"]

log = logging.getLogger(__name__)

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("plugin", "type")
        self._submitted = Counter(
            "plugport_tasks_submitted_total", "Tasks queued.", labels, registry=r
        )
        self._ended = Counter(
            "plugport_tasks_finished_total",
            "Tasks that ended, by state (succeeded, dead, cancelled, rejected).",
            (*labels, "state"),
            registry=r,
        )
        self._attempts = Counter(
            "plugport_task_attempts_total",
            "Attempts, by outcome (ok, error, timeout, crash, invalid, limit, rejected).",
            (*labels, "outcome"),
            registry=r,
        )
        self._wait = Histogram(
            "plugport_task_wait_seconds",
            "From when a task was due to when its attempt started.",
            labels,
            buckets=_SECONDS,
            registry=r,
        )
        self._run = Histogram(
            "plugport_task_run_seconds",
            "How long an attempt ran, whatever its outcome.",
            labels,
            buckets=_SECONDS,
            registry=r,
        )

    def submitted(self, plugin: str, task_type: str) -> None:
        self._submitted.labels(plugin, task_type).inc()

    def started(self, record: TaskRecord, now: float) -> None:
        self._wait.labels(record.plugin, record.type).observe(max(0.0, now - record.due_at))

    def attempt(self, record: TaskRecord, outcome: str, now: float) -> None:
        self._attempts.labels(record.plugin, record.type, outcome).inc()
        if record.started_at is not None:
            self._run.labels(record.plugin, record.type).observe(max(0.0, now - record.started_at))

    def finished(self, record: TaskRecord) -> None:
        self._ended.labels(record.plugin, record.type, record.state).inc()


class QueueDepthCollector(Collector):
    """``plugport_tasks{plugin, type, state}``: the tasks stored now, read from the store at
    each scrape (``counts``: its ``(plugin, type, state) -> n``), so the queue depth
    (``state="queued"``/``"running"``) and the dead letters (``state="dead"``) are what the
    database holds, whichever node ran them; counters could only say what this node saw."""

    def __init__(self, counts: Callable[[], Mapping[tuple[str, str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "plugport_tasks",
            "Tasks stored, by state (queue depth: queued and running; dead letters: dead).",
            labels=("plugin", "type", "state"),
        )
        try:
            counts = self._counts()
        except Exception:  # a closed or unreachable store: the scrape still answers
            log.warning("task counts for the metrics could not be read", exc_info=True)
            counts = {}
        for (plugin, task_type, state), n in sorted(counts.items()):
            family.add_metric((plugin, task_type, state), n)
        yield family
