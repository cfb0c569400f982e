"""``deploy/prometheus/plugport-alerts.yml``: valid rules that name only metrics, and labels,
the runtime really exports (read from ``RuntimeMetrics``' own output), checked and unit-tested
by ``promtool`` where the machine has it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from plugport.runtime.metrics import PLUGIN_STATES, RuntimeMetrics
from plugport.runtime.problems import KINDS

RULES = Path(__file__).parents[1] / "deploy" / "prometheus" / "plugport-alerts.yml"
RULE_TESTS = RULES.with_name("plugport-alerts.test.yml")
SELECTOR = re.compile(r"\b(plugport_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
OUTCOMES = ("ok", "error", "timeout", "limit", "crash", "denied", "quarantined")


def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, from a RuntimeMetrics that recorded one of everything."""
    metrics = RuntimeMetrics()
    for outcome in OUTCOMES:
        metrics.call("acme.p", "hook", outcome, 0.01)
    metrics.capability("acme.p", "net.fetch", "ok")
    metrics.activation("acme.p", 0.1)
    metrics.restart("acme.p")
    metrics.crash("acme.p", "exit")
    metrics.resources("acme.p", cpu_seconds=1.0, peak_rss_bytes=1)
    metrics.state("acme.p", "active")
    for kind in KINDS:
        metrics.problem("acme.p", kind, False)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_rule_is_a_complete_alert() -> None:
    found = rules()
    assert len(found) >= 6
    names = [rule["alert"] for rule in found]
    assert len(set(names)) == len(names)
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"], rule
        assert rule["annotations"]["description"], rule


def test_rules_name_only_metrics_and_labels_the_runtime_exports() -> None:
    known = exported()
    assert "plugport_plugin_problem" in known
    for rule in rules():
        expr = rule["expr"]
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{rule['alert']}: no plugport metric in {expr!r}"
        labels_in_rule: set[str] = set()
        for metric, matchers in selectors:
            assert metric in known, f"{rule['alert']}: {metric} is not exported"
            for label, _, wanted in MATCHER.findall(matchers):
                assert label in known[metric], f"{rule['alert']}: {metric} has no {label}"
                labels_in_rule.add(label)
                values = {
                    "outcome": OUTCOMES,
                    "state": PLUGIN_STATES,
                    "kind": (*KINDS, "hook", "command", "event"),
                }.get(label)
                for value in wanted.split("|") if values else ():
                    assert value in values, f"{rule['alert']}: {label}={value!r} never exported"
        all_labels = set().union(*(known[m] for m, _ in selectors))
        for grouping in GROUPING.findall(expr):
            for label in (word.strip() for word in grouping.split(",")):
                assert label in all_labels, f"{rule['alert']}: groups by unknown {label}"
        for template in re.findall(r"\$labels\.(\w+)", str(rule["annotations"])):
            assert template in all_labels, f"{rule['alert']}: annotation uses {template}"


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: the prometheus package ships it)")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
