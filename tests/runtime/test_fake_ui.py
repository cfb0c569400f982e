"""The UI fake's metrics hook: a test sets the host metrics ``api.ui.metrics`` reads, a plugin in
the real sandbox reads exactly those (still through the broker's ``ui = ["metrics"]`` check and
the host's prefix filter), ``None`` gives the runtime's own counters back, and samples no host
could produce are refused with nothing changed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import InvalidInputError, PermissionDeniedError, PluginCallError
from plugport.runtime.capabilities.fakes.ui import metric_families
from plugport.runtime.capabilities.ui import metric_samples
from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner
from plugport.testing._world import World
from tests.testing._plugins import write_plugin

pytestmark = pytest.mark.slow

READER = """
class Main(Plugin):
    @command("reader.read")
    async def read(self, prefix):
        return await self.api.ui.metrics(prefix)
"""
READER_MANIFEST = """
[permissions]
ui = ["metrics"]

[contributes]
commands = [{ id = "reader.read", title = "Read" }]
"""
BLIND_MANIFEST = """
[permissions]
ui = ["messages"]

[contributes]
commands = [{ id = "reader.read", title = "Read" }]
"""
SAMPLES = [
    {"name": "app_jobs_total", "labels": {"queue": "b"}, "value": 2},
    {"name": "app_jobs_total", "labels": {"queue": "a"}, "value": 3.5},
    {"name": "app_jobs_created", "labels": {}, "value": 1.0},
    {"name": "other_total", "value": 9},
]


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    write_plugin(root, "acme.reader", READER, READER_MANIFEST)
    write_plugin(root, "acme.blind", READER, BLIND_MANIFEST)
    return root


@pytest.fixture
def world(runner: Runner, tmp_path: Path) -> Iterator[World]:
    world = World(runner, tmp_path / "home", "strict")
    yield world
    world.close()


@pytest.fixture
def reader(world: World, plugins: Path) -> PluginHandle:
    return world.load(plugins / "reader")


def test_the_plugin_reads_the_samples_the_test_set(reader: PluginHandle) -> None:
    reader.ui.set_metrics(SAMPLES)
    assert reader.command("reader.read", "app_") == [
        {"name": "app_jobs_total", "labels": {"queue": "a"}, "value": 3.5},
        {"name": "app_jobs_total", "labels": {"queue": "b"}, "value": 2.0},
    ]  # sorted, floats, '_created' left out: as the host answers
    assert reader.command("reader.read", "nothing_") == []
    reader.assert_only_declared()


def test_none_gives_the_runtime_counters_back(reader: PluginHandle) -> None:
    reader.ui.set_metrics([])
    assert reader.command("reader.read", "plugport_") == []
    reader.ui.set_metrics(None)
    calls = reader.command("reader.read", "plugport_plugin_calls_total")
    mine = [s for s in calls if s["labels"].get("plugin") == "acme.reader"]
    assert mine, calls  # the commands this test made were counted by the real runtime
    assert all(s["value"] >= 1 for s in mine)


def test_the_set_samples_are_copied(reader: PluginHandle) -> None:
    samples: list[dict[str, Any]] = [{"name": "app_x", "labels": {"a": "1"}, "value": 1}]
    reader.ui.set_metrics(samples)
    samples[0]["value"] = 99
    samples.append({"name": "app_y", "value": 2})
    assert reader.command("reader.read", "app_") == [
        {"name": "app_x", "labels": {"a": "1"}, "value": 1.0}
    ]


def test_the_broker_still_checks_the_permission(world: World, plugins: Path) -> None:
    blind = world.load(plugins / "blind")
    blind.ui.set_metrics(SAMPLES)
    with pytest.raises(PermissionDeniedError, match="does not include 'metrics'"):
        blind.command("reader.read", "app_")
    blind.assert_denied("ui.metrics")


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ({"name": "a", "value": 1}, "must be a list"),
        ("a", "must be a list"),
        ([1], r"samples\[0\] must be an object"),
        ([{"name": "", "value": 1}], r"samples\[0\]\.name must be a metric name"),
        ([{"name": "a", "value": 1, "help": "x"}], r"samples\[0\] has unknown keys: help"),
        ([{"name": "a", "labels": {"k": 1}, "value": 1}], r"samples\[0\]\.labels must map"),
        ([{"name": "a", "value": True}], r"samples\[0\]\.value must be a finite number"),
        ([{"name": "a", "value": "3"}], r"value must be a finite number, not '3'"),
        ([{"name": "a", "value": 1}, {"name": "b", "value": math.inf}], r"samples\[1\]\.value"),
    ],
)
def test_samples_no_host_could_answer_are_refused(samples: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        metric_families(samples)


def test_a_refused_set_keeps_what_was_set(reader: PluginHandle) -> None:
    reader.ui.set_metrics(SAMPLES[:1])
    with pytest.raises(InvalidInputError, match="value must be a finite number"):
        reader.ui.set_metrics([{"name": "app_z", "value": math.nan}])
    assert reader.command("reader.read", "app_") == [
        {"name": "app_jobs_total", "labels": {"queue": "b"}, "value": 2.0}
    ]


def test_families_read_as_the_host_reads_prometheus_families() -> None:
    assert metric_samples(metric_families(SAMPLES), "other") == [
        {"name": "other_total", "labels": {}, "value": 9.0}
    ]


def test_the_hosts_prefix_check_still_applies(reader: PluginHandle) -> None:
    reader.ui.set_metrics(SAMPLES)
    with pytest.raises(PluginCallError, match="prefix must be a string of at most 200"):
        reader.command("reader.read", "x" * 201)
