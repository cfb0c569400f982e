"""The workflow rules without I/O: every bad document names its workflow, step and field;
payloads are built by pointer; a run's next move follows each failure policy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from plugport import WorkflowError
from plugport.errors import InvalidInputError
from plugport.host.tasks._workflow_rules import (
    MAX_STEPS,
    advance,
    build_payload,
    check_input,
    compensation_order,
    parse_workflow,
    ready_steps,
    run_outcome,
)

RELEASE = """
name = "release"
description = "notes, then a post"
[input]
type = "object"
required = ["repo"]
properties = { repo = { type = "string" }, channel = { type = "string" } }
[steps.notes]
task = "GITHUB_RELEASE_NOTES"
plugin = "acme.github"
payload = { repo = "$input/repo", since = "$input/since" }
retry = { max-attempts = 5 }
[steps.post]
task = "SLACK_POST"
needs = ["notes"]
payload = { channel = "$input/channel", text = "$steps/notes/result/markdown" }
on-failure = "compensate"
compensate = { task = "SLACK_DELETE", payload = { ts = "$steps/post/result/ts" } }
"""


def doc(**steps: Any) -> dict[str, Any]:
    return {"name": "wf", "steps": steps}


def diamond(on_failure: str = "stop", **extra: Any) -> dict[str, Any]:
    """a -> (b, c) -> d, and e on its own."""
    return doc(
        a={"task": "T", "on-failure": on_failure, **extra},
        b={"task": "T", "needs": ["a"], "on-failure": on_failure, **extra},
        c={"task": "T", "needs": ["a"], "on-failure": on_failure, **extra},
        d={"task": "T", "needs": ["b", "c"], "on-failure": on_failure, **extra},
        e={"task": "T", "on-failure": on_failure, **extra},
    )


def refused(document: Any) -> WorkflowError:
    before = copy.deepcopy(document)
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(document)
    assert document == before  # the input is not changed
    assert isinstance(caught.value, InvalidInputError)
    return caught.value


def test_a_valid_workflow_parses_with_a_topological_order() -> None:
    definition = parse_workflow(RELEASE)
    assert definition.name == "release"
    assert definition.order == ("notes", "post")
    notes, post = definition.steps["notes"], definition.steps["post"]
    assert notes.plugin == "acme.github"
    assert notes.max_attempts == 5
    assert notes.on_failure == "stop"
    assert post.on_failure == "compensate"
    assert post.compensate is not None
    assert post.compensate.task == "SLACK_DELETE"
    assert [r.text for r in post.references] == [
        "$input/channel",
        "$steps/notes/result/markdown",
    ]
    public = definition.public()
    assert public["steps"][1]["needs"] == ["notes"]
    assert parse_workflow(definition.document) == definition  # what a run stores round-trips


def test_order_keeps_the_files_order_among_ready_steps() -> None:
    definition = parse_workflow(
        doc(z={"task": "T", "needs": ["y"]}, y={"task": "T"}, x={"task": "T"})
    )
    assert definition.order == ("y", "z", "x")


@pytest.mark.parametrize(
    ("document", "step", "field", "words"),
    [
        ({"steps": {"a": {"task": "T"}}}, None, "name", "is required"),
        ({"name": "bad name", "steps": {"a": {"task": "T"}}}, None, "name", "letters"),
        ({"name": "wf", "steps": {}}, None, "steps", "at least one"),
        ({"name": "wf"}, None, "steps", "at least one"),
        ({"name": "wf", "colour": 1, "steps": {"a": {"task": "T"}}}, None, "colour", "known"),
        ({"name": "wf", "input": "x", "steps": {"a": {"task": "T"}}}, None, "input", "table"),
        (
            {"name": "wf", "input": {"type": "nope"}, "steps": {"a": {"task": "T"}}},
            None,
            "input/type",
            "not a valid JSON Schema",
        ),
        (doc(a={"task": "T", "color": 1}), "a", "color", "is not a known key"),
        (doc(a={"payload": {}}), "a", "task", "is required"),
        (doc(a={"task": "T", "plugin": 3}), "a", "plugin", "plugin name"),
        (doc(a={"task": "T", "needs": "b"}), "a", "needs", "list of step names"),
        (doc(a={"task": "T", "needs": ["a"]}), "a", "needs", "a -> a"),
        (doc(a={"task": "T"}, b={"task": "T", "needs": ["a", "a"]}), "b", "needs", "twice"),
        (doc(a={"task": "T", "needs": ["ghost"]}), "a", "needs", "'ghost', which is not a step"),
        (doc(a={"task": "T", "on-failure": "panic"}), "a", "on-failure", "stop, continue"),
        (doc(a={"task": "T", "retry": {"max-attempts": 0}}), "a", "retry.max-attempts", "1 to"),
        (doc(a={"task": "T", "retry": {"max-attempts": 101}}), "a", "retry.max-attempts", "100"),
        (doc(a={"task": "T", "retry": {"tries": 2}}), "a", "retry.tries", "not a known key"),
        (doc(a={"task": "T", "retry": 3}), "a", "retry", "must be a table"),
        (doc(a={"task": "T", "compensate": "X"}), "a", "compensate", "must be a table"),
        (doc(a={"task": "T", "compensate": {"payload": {}}}), "a", "compensate.task", "required"),
        (doc(a={"task": "T", "compensate": {"task": "X", "x": 1}}), "a", "compensate.x", "known"),
        (doc(**{"bad step": {"task": "T"}}), "bad step", "", "a step name"),
        (doc(a="T"), "a", "", "a step is a table"),
        (
            doc(a={"task": "T", "payload": {"x": "$input"}}, b={"task": "T", "needs": "a"}),
            "b",
            "needs",
            "list",
        ),
    ],
)
def test_bad_documents_name_the_step_and_field(
    document: dict[str, Any], step: str | None, field: str, words: str
) -> None:
    error = refused(document)
    assert (error.step, error.field) == (step, field)
    assert words in error.reason
    assert words in str(error)


def test_a_cycle_is_named_as_a_path() -> None:
    error = refused(
        doc(
            a={"task": "T", "needs": ["c"]},
            b={"task": "T", "needs": ["a"]},
            c={"task": "T", "needs": ["b"]},
        )
    )
    assert error.field == "needs"
    assert "the steps form a cycle: a -> b -> c -> a" in str(error)
    two = refused(doc(a={"task": "T", "needs": ["b"]}, b={"task": "T", "needs": ["a"]}))
    assert "a -> b -> a" in two.reason


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"t": "$steps/notes/result"}, "payload.t", "refers to $steps/notes but does not need it"),
        ({"t": ["$steps/ghost/result/x"]}, "payload.t[0]", "$steps/ghost, which is not a step"),
        ({"t": "$steps/post/result"}, "payload.t", "its own result"),
        ({"t": "$steps/notes/output/x"}, "payload.t", "$steps/<step>/result<pointer>"),
        ({"t": "$steps/notes/results"}, "payload.t", "$steps/<step>/result<pointer>"),
        ({"t": "$inputx"}, "payload.t", "must start with '/'"),
        ({"t": "$input/a~2b"}, "payload.t", "~0 or ~1"),
        ({"t": {"deep": "$5.00"}}, "payload.t.deep", "write $$ for a literal $"),
    ],
)
def test_bad_references_are_precise(payload: Any, field: str, words: str) -> None:
    error = refused(doc(notes={"task": "T"}, post={"task": "T", "payload": payload}))
    assert (error.workflow, error.step, error.field) == ("wf", "post", field)
    assert words in error.reason


def test_a_reference_to_an_ancestor_through_another_step_is_allowed() -> None:
    definition = parse_workflow(
        doc(
            a={"task": "T"},
            b={"task": "T", "needs": ["a"]},
            c={"task": "T", "needs": ["b"], "payload": {"x": "$steps/a/result/x"}},
        )
    )
    assert definition.ancestors("c") == {"a", "b"}


def test_a_compensation_may_refer_to_its_own_step_but_not_to_others_it_does_not_need() -> None:
    parse_workflow(doc(a={"task": "T", "compensate": {"task": "U", "payload": "$steps/a/result"}}))
    error = refused(
        doc(
            a={"task": "T"},
            b={"task": "T", "compensate": {"task": "U", "payload": {"x": "$steps/a/result"}}},
        )
    )
    assert (error.step, error.field) == ("b", "compensate.payload.x")


def test_more_than_the_maximum_of_steps_is_refused() -> None:
    error = refused(doc(**{f"s{i}": {"task": "T"} for i in range(MAX_STEPS + 1)}))
    assert error.field == "steps"
    assert f"at most {MAX_STEPS}" in error.reason
    parse_workflow(doc(**{f"s{i}": {"task": "T"} for i in range(MAX_STEPS)}))


def test_bad_toml_is_refused() -> None:
    error = refused("name = ")
    assert "not TOML" in error.reason


def test_payloads_are_built_by_pointer_with_escapes_and_nesting() -> None:
    definition = parse_workflow(
        doc(
            a={"task": "T"},
            b={
                "task": "T",
                "needs": ["a"],
                "payload": {
                    "whole": "$input",
                    "deep": ["$steps/a/result/items/1", {"k": "$input/a~1b"}],
                    "price": "$$5",
                    "plain": 3,
                },
            },
        )
    )
    payload = build_payload(definition, "b", {"a/b": "slash"}, {"a": {"items": ["x", {"y": True}]}})
    assert payload == {
        "whole": {"a/b": "slash"},
        "deep": [{"y": True}, {"k": "slash"}],
        "price": "$5",
        "plain": 3,
    }


def test_a_missing_value_names_the_step_field_and_reference() -> None:
    definition = parse_workflow(RELEASE)
    with pytest.raises(WorkflowError) as caught:
        build_payload(definition, "post", {"repo": "r", "channel": "c"}, {"notes": {"md": ""}})
    error = caught.value
    assert (error.step, error.field) == ("post", "payload.text")
    assert "$steps/notes/result/markdown" in error.reason
    assert "'/markdown'" in error.reason
    with pytest.raises(WorkflowError, match="has no result"):
        build_payload(definition, "post", {"repo": "r", "channel": "c"}, {})


def test_compensation_payloads_are_built_from_the_steps_own_result() -> None:
    definition = parse_workflow(RELEASE)
    payload = build_payload(definition, "post", {}, {"post": {"ts": "1.2"}}, compensation=True)
    assert payload == {"ts": "1.2"}
    with pytest.raises(WorkflowError, match="has none"):
        build_payload(definition, "notes", {}, {}, compensation=True)


def test_input_is_checked_against_the_schema() -> None:
    definition = parse_workflow(RELEASE)
    check_input(definition, {"repo": "acme/x"})
    with pytest.raises(WorkflowError) as caught:
        check_input(definition, {"channel": "c"})
    assert caught.value.field == "input/repo"
    assert "required" in caught.value.reason
    with pytest.raises(WorkflowError) as wrong:
        check_input(definition, {"repo": 3})
    assert wrong.value.field == "input/repo"
    with pytest.raises(WorkflowError, match="not JSON"):
        check_input(definition, {"repo": object()})


def test_ready_steps_follow_the_needs() -> None:
    definition = parse_workflow(diamond())
    states = dict.fromkeys(definition.order, "pending")
    assert ready_steps(definition, states) == ["a", "e"]
    states.update(a="succeeded", e="queued")
    assert ready_steps(definition, states) == ["b", "c"]
    states.update(b="succeeded", c="running")
    assert ready_steps(definition, states) == []
    states.update(c="succeeded")
    assert ready_steps(definition, states) == ["d"]


def test_a_run_succeeds_when_every_step_did() -> None:
    definition = parse_workflow(diamond())
    states = dict.fromkeys(definition.order, "succeeded")
    assert run_outcome(definition, states) == "succeeded"
    states["d"] = "queued"
    assert run_outcome(definition, states) is None
    assert advance(definition, {**states, "d": "pending"}).submit == ("d",)


def test_stop_skips_pending_steps_and_fails_once_nothing_runs() -> None:
    definition = parse_workflow(diamond("stop"))
    states = {"a": "succeeded", "b": "failed", "c": "running", "d": "pending", "e": "pending"}
    decided = advance(definition, states)
    assert decided.run_state == "running"
    assert decided.skip == ("d", "e")
    assert decided.submit == ()
    assert "'b' failed" in decided.error
    states.update(c="succeeded", d="skipped", e="skipped")
    assert run_outcome(definition, states) == "failed"


def test_continue_skips_only_the_dependents() -> None:
    definition = parse_workflow(diamond("continue"))
    states = {"a": "succeeded", "b": "failed", "c": "pending", "d": "pending", "e": "pending"}
    decided = advance(definition, states)
    assert decided.skip == ("d",)
    assert decided.submit == ("c", "e")
    assert decided.run_state == "running"
    states.update(c="succeeded", d="skipped", e="succeeded")
    assert run_outcome(definition, states) == "failed"
    chain = parse_workflow(diamond("continue"))
    first = advance(chain, {"a": "cancelled", **dict.fromkeys("bcde", "pending")})
    assert first.skip == ("b", "c", "d")
    assert first.submit == ("e",)


def test_compensate_undoes_succeeded_steps_last_first_one_at_a_time() -> None:
    definition = parse_workflow(diamond("compensate", compensate={"task": "U"}))
    states = {"a": "succeeded", "b": "succeeded", "c": "failed", "d": "pending", "e": "running"}
    decided = advance(definition, states)
    assert decided.run_state == "compensating"
    assert decided.skip == ("d",)
    assert decided.compensate == ()  # e is still running: wait for it
    states.update(d="skipped", e="succeeded")
    assert compensation_order(definition, states) == ["e", "b", "a"]
    assert advance(definition, states).compensate == ("e",)
    states.update(e="compensated")
    assert advance(definition, states).compensate == ("b",)
    states.update(b="compensated", a="compensated")
    assert run_outcome(definition, states) == "compensated"
    states.update(a="failed")
    failed = advance(definition, states, compensation_failed=frozenset({"a"}))
    assert failed.run_state == "failed"
    assert "compensation failed: a" in failed.error


def test_the_strongest_policy_wins() -> None:
    definition = parse_workflow(
        doc(
            a={"task": "T", "on-failure": "continue"},
            b={"task": "T", "on-failure": "stop"},
            c={"task": "T"},
        )
    )
    decided = advance(definition, {"a": "failed", "b": "failed", "c": "pending"})
    assert decided.run_state == "failed"
    assert decided.skip == ("c",)
