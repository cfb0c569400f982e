"""Runtime metrics, read back the way Prometheus reads them: from the rendered text."""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from plugport.runtime.metrics import PLUGIN_STATES, RuntimeMetrics

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(metrics: RuntimeMetrics) -> dict[Key, float]:
    """Every rendered sample, keyed by sample name and labels."""
    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(metrics: RuntimeMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def plugins_in(metrics: RuntimeMetrics) -> set[str]:
    return {dict(labels)["plugin"] for _, labels in samples(metrics) if "plugin" in dict(labels)}


@pytest.fixture
def metrics() -> RuntimeMetrics:
    return RuntimeMetrics()


def test_call_counts_by_outcome(metrics: RuntimeMetrics) -> None:
    metrics.call("acme.hello", "hook", "ok", 0.001)
    metrics.call("acme.hello", "hook", "ok", 0.001)
    metrics.call("acme.hello", "hook", "timeout", 5.0)
    metrics.call("acme.hello", "command", "ok", 0.001)

    name = "plugport_plugin_calls_total"
    assert value(metrics, name, plugin="acme.hello", kind="hook", outcome="ok") == 2
    assert value(metrics, name, plugin="acme.hello", kind="hook", outcome="timeout") == 1
    assert value(metrics, name, plugin="acme.hello", kind="command", outcome="ok") == 1
    assert value(metrics, name, plugin="acme.hello", kind="event", outcome="ok") is None


def test_call_duration_histogram(metrics: RuntimeMetrics) -> None:
    metrics.call("acme.hello", "hook", "ok", 0.0003)
    metrics.call("acme.hello", "hook", "error", 2.0)

    name = "plugport_plugin_call_duration_seconds"
    labels = {"plugin": "acme.hello", "kind": "hook"}
    assert value(metrics, f"{name}_count", **labels) == 2
    assert math.isclose(value(metrics, f"{name}_sum", **labels) or 0, 2.0003)

    buckets = {
        float(dict(key)["le"]): count
        for (sample, key), count in samples(metrics).items()
        if sample == f"{name}_bucket"
    }
    assert min(buckets) == 0.0001
    assert max(b for b in buckets if b != math.inf) == 60
    assert buckets[0.00025] == 0  # buckets are cumulative: "at most le"
    assert buckets[0.0005] == 1
    assert buckets[1.0] == 1
    assert buckets[2.5] == 2
    assert buckets[math.inf] == 2


def test_capability_counts(metrics: RuntimeMetrics) -> None:
    metrics.capability("acme.hello", "net.fetch", "ok")
    metrics.capability("acme.hello", "net.fetch", "denied")
    metrics.capability("acme.hello", "net.fetch", "denied")
    metrics.capability("acme.hello", "storage.set", "error")

    name = "plugport_capability_calls_total"
    assert value(metrics, name, plugin="acme.hello", capability="net.fetch", outcome="ok") == 1
    assert value(metrics, name, plugin="acme.hello", capability="net.fetch", outcome="denied") == 2
    assert value(metrics, name, plugin="acme.hello", capability="storage.set", outcome="error") == 1


def test_activation_restart_and_crash(metrics: RuntimeMetrics) -> None:
    metrics.activation("acme.hello", 0.2)
    metrics.activation("acme.hello", 0.4)
    metrics.restart("acme.hello")
    metrics.crash("acme.hello", "signal")
    metrics.crash("acme.hello", "signal")
    metrics.crash("acme.hello", "memory")

    assert value(metrics, "plugport_plugin_activations_total", plugin="acme.hello") == 2
    hist = "plugport_plugin_activation_duration_seconds"
    assert value(metrics, f"{hist}_count", plugin="acme.hello") == 2
    assert math.isclose(value(metrics, f"{hist}_sum", plugin="acme.hello") or 0, 0.6)
    assert value(metrics, f"{hist}_bucket", plugin="acme.hello", le="0.25") == 1
    assert value(metrics, "plugport_plugin_restarts_total", plugin="acme.hello") == 1
    crashes = "plugport_plugin_crashes_total"
    assert value(metrics, crashes, plugin="acme.hello", cause="signal") == 2
    assert value(metrics, crashes, plugin="acme.hello", cause="memory") == 1


def test_resources_are_the_latest_reading(metrics: RuntimeMetrics) -> None:
    metrics.resources("acme.hello", cpu_seconds=1.5, peak_rss_bytes=50_000_000)
    metrics.resources("acme.hello", cpu_seconds=0.25, peak_rss_bytes=20_000_000)

    assert value(metrics, "plugport_plugin_cpu_seconds", plugin="acme.hello") == 0.25
    assert value(metrics, "plugport_plugin_peak_rss_bytes", plugin="acme.hello") == 20_000_000


def state_of(metrics: RuntimeMetrics, plugin: str) -> dict[str, float | None]:
    return {
        s: value(metrics, "plugport_plugin_state", plugin=plugin, state=s) for s in PLUGIN_STATES
    }


def test_state_is_one_hot(metrics: RuntimeMetrics) -> None:
    metrics.state("acme.hello", "starting")
    assert state_of(metrics, "acme.hello") == {s: float(s == "starting") for s in PLUGIN_STATES}

    metrics.state("acme.hello", "active")
    metrics.state("acme.other", "quarantined")
    assert state_of(metrics, "acme.hello") == {s: float(s == "active") for s in PLUGIN_STATES}
    assert state_of(metrics, "acme.other") == {s: float(s == "quarantined") for s in PLUGIN_STATES}


def test_unknown_state_is_refused_and_changes_nothing(metrics: RuntimeMetrics) -> None:
    metrics.state("acme.hello", "active")
    before = samples(metrics)
    with pytest.raises(ValueError, match="unknown plugin state 'sleeping'"):
        metrics.state("acme.hello", "sleeping")
    assert samples(metrics) == before


def record_everything(metrics: RuntimeMetrics, plugin: str) -> None:
    metrics.call(plugin, "hook", "ok", 0.01)
    metrics.capability(plugin, "net.fetch", "denied")
    metrics.activation(plugin, 0.1)
    metrics.restart(plugin)
    metrics.crash(plugin, "exit")
    metrics.resources(plugin, cpu_seconds=1.0, peak_rss_bytes=1024)
    metrics.state(plugin, "active")


def test_forget_removes_only_that_plugin(metrics: RuntimeMetrics) -> None:
    record_everything(metrics, "acme.hello")
    record_everything(metrics, "acme.other")
    kept = {key: v for key, v in samples(metrics).items() if ("plugin", "acme.other") in key[1]}

    metrics.forget("acme.hello")

    assert plugins_in(metrics) == {"acme.other"}
    assert samples(metrics) == kept  # every series has a plugin label; the other's are intact
    metrics.forget("acme.hello")  # twice, or never seen: nothing to do
    metrics.forget("acme.nobody")
    assert plugins_in(metrics) == {"acme.other"}


def test_a_forgotten_plugin_starts_again_from_zero(metrics: RuntimeMetrics) -> None:
    metrics.restart("acme.hello")
    metrics.restart("acme.hello")
    metrics.forget("acme.hello")
    metrics.restart("acme.hello")
    assert value(metrics, "plugport_plugin_restarts_total", plugin="acme.hello") == 1
    metrics.forget("acme.hello")
    assert plugins_in(metrics) == set()


def test_every_metric_name_is_exported() -> None:
    metrics = RuntimeMetrics()
    record_everything(metrics, "acme.hello")
    names = {name for name, _ in samples(metrics)}
    assert names >= {
        "plugport_plugin_calls_total",
        "plugport_plugin_call_duration_seconds_bucket",
        "plugport_capability_calls_total",
        "plugport_plugin_activations_total",
        "plugport_plugin_activation_duration_seconds_count",
        "plugport_plugin_restarts_total",
        "plugport_plugin_crashes_total",
        "plugport_plugin_cpu_seconds",
        "plugport_plugin_peak_rss_bytes",
        "plugport_plugin_state",
    }


def test_instances_are_independent_and_leave_the_default_registry_alone() -> None:
    one, two = RuntimeMetrics(), RuntimeMetrics()
    one.restart("acme.hello")
    one.restart("acme.hello")
    two.restart("acme.hello")

    assert one.registry is not two.registry
    assert value(one, "plugport_plugin_restarts_total", plugin="acme.hello") == 2
    assert value(two, "plugport_plugin_restarts_total", plugin="acme.hello") == 1
    assert (
        REGISTRY.get_sample_value("plugport_plugin_restarts_total", {"plugin": "acme.hello"})
        is None
    )


def test_a_given_registry_is_used() -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.restart("acme.hello")
    assert metrics.registry is registry
    assert (
        registry.get_sample_value("plugport_plugin_restarts_total", {"plugin": "acme.hello"}) == 1
    )


def test_render_is_prometheus_text(metrics: RuntimeMetrics) -> None:
    metrics.restart("acme.hello")
    text = metrics.render()
    assert isinstance(text, bytes)
    assert b'plugport_plugin_restarts_total{plugin="acme.hello"} 1.0' in text
    assert RuntimeMetrics.CONTENT_TYPE.startswith("text/plain; version=0.0.4")
