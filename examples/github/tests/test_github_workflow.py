"""``workflows/release.toml``: every step's task is one the examples declare, every reference
(``$input/...``, ``$steps/NAME/result/...``) points at something that exists (a required input
field, a step it ``needs``, a field the step's result schema requires), and the payloads built
from a sample input and a sample result pass the tasks' payload schemas. With the workflow
runner's rules present (``plugport.host.tasks._workflow_rules``) the file is also parsed by
them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from plugport._task_rules import check_document
from plugport.manifest import TaskSpec, load_manifest

HERE = Path(__file__).resolve().parent.parent
WORKFLOW = HERE / "workflows" / "release.toml"
SAMPLE_INPUT = {"repo": "acme/api", "since": "v1.0.0", "channel": "#releases"}
SAMPLE_NOTES = {"markdown": "## acme/api: changes since v1.0.0\n", "count": 0}
_REFERENCE = re.compile(r"^\$(input|steps)/(.+)$")


def _declared() -> dict[str, TaskSpec]:
    """Task types the examples process, by name."""
    found: dict[str, TaskSpec] = {}
    for folder in (HERE, HERE.parent / "slack"):
        found.update(load_manifest(folder).tasks)
    return found


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    if match[1] == "input":
        return SAMPLE_INPUT[match[2]]
    step, _, rest = match[2].partition("/result/")
    return results[step][rest]


def test_the_release_workflow_chains_declared_tasks_with_sound_references() -> None:
    document = tomllib.loads(WORKFLOW.read_text())
    assert document["name"] == "release"
    tasks = _declared()
    required_input = set(document["input"]["required"])
    steps = document["steps"]
    assert list(steps) == ["notes", "post"]
    for name, step in steps.items():
        spec = tasks[step["task"]]  # a KeyError names a task no example declares
        for value in step["payload"].values():
            match = _REFERENCE.match(value)
            assert match is not None, value
            if match[1] == "input":
                assert match[2] in required_input, (name, value)
                continue
            source, _, field = match[2].partition("/result/")
            assert source in step.get("needs", []), f"{name} uses {source} without needing it"
            assert field in tasks[steps[source]["task"]].result["required"], (name, field)
        payload = _resolve(step["payload"], {"notes": SAMPLE_NOTES})
        check_document(step["task"], "payload", spec.payload, payload)


def test_the_workflow_runner_parses_it() -> None:
    rules = pytest.importorskip(
        "plugport.host.tasks._workflow_rules", reason="the workflow runner has not landed yet"
    )
    definition = rules.parse_workflow(WORKFLOW.read_text())
    assert definition.name == "release"
    rules.check_input(definition, SAMPLE_INPUT)
