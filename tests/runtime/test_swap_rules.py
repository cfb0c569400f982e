"""The hot swap's decisions and words, without a process: the drain deadline, the error of a
call the drain outlasted, refusals and the audit line."""

from __future__ import annotations

import math

import pytest

from plugport.errors import (
    InvalidInputError,
    PluginCallError,
    ResourceLimitExceededError,
    SwapRefusedError,
)
from plugport.runtime._swap_rules import (
    DRAIN_LIMIT,
    SwapReport,
    audit_line,
    drain_deadline_s,
    overdue_call,
    refusal,
)


def test_the_drain_deadline_is_the_callers_else_the_configured_one() -> None:
    assert drain_deadline_s(None, 10.0) == 10.0
    assert drain_deadline_s(0, 10.0) == 0.0
    assert drain_deadline_s(2.5, 10.0) == 2.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, r"drain_deadline_s must be >= 0 \(got -1\)"),
        (math.nan, r"must be a number of seconds, not nan"),
        (True, r"must be a number of seconds, not True"),
        ("5", r"must be a number of seconds, not '5'"),
    ],
)
def test_a_drain_deadline_that_is_not_seconds_is_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        drain_deadline_s(value, 10.0)  # type: ignore[arg-type]


def test_a_refusal_names_the_plugin_the_versions_and_why() -> None:
    cause = PluginCallError("demo.hot", "RuntimeError", "boom")
    error = refusal("demo.hot", "1.2.0", "start", kept_version="1.1.0", serving=True, cause=cause)
    assert isinstance(error, SwapRefusedError)
    assert str(error) == (
        "swap of demo.hot to 1.2.0 refused: the new worker did not start: plugin 'demo.hot' "
        "raised RuntimeError: boom; 1.1.0 keeps running"
    )
    assert (error.plugin, error.version, error.stage) == ("demo.hot", "1.2.0", "start")
    assert error.kept == "1.1.0 keeps running"


@pytest.mark.parametrize(
    ("stage", "cause", "serving", "settings", "expected"),
    [
        (
            "health",
            TimeoutError(),
            True,
            False,
            "the new worker failed its health check: it did not answer a ping in time; "
            "1.1.0 keeps running",
        ),
        ("removed", None, False, False, "removed while the new worker started; 1.1.0 stays"),
        ("closing", None, True, False, "the runtime is shutting down; 1.1.0 keeps running"),
        (
            "start",
            OSError("no zygote"),
            True,
            True,
            "did not start: OSError: no zygote; the previous settings are restored and 1.1.0 "
            "keeps running",
        ),
    ],
)
def test_each_stage_has_its_reason(
    stage: str, cause: BaseException | None, serving: bool, settings: bool, expected: str
) -> None:
    error = refusal(
        "demo.hot",
        "1.2.0",
        stage,  # type: ignore[arg-type]
        kept_version="1.1.0",
        serving=serving,
        cause=cause,
        settings=settings,
    )
    assert expected in str(error)


def test_a_call_the_drain_outlasted_ends_with_a_limit_that_names_the_deadline() -> None:
    error = overdue_call("demo.hot", "1.1.0", "1.2.0", 0.5)
    assert isinstance(error, ResourceLimitExceededError)
    assert error.limit == DRAIN_LIMIT == "swap_drain_deadline_s"
    assert "1.1.0 was replaced by 1.2.0" in str(error)
    assert "the 0.5 s drain deadline passed" in str(error)


def test_the_audit_line_says_what_the_swap_did() -> None:
    hot = SwapReport(
        "demo.hot",
        "1.1.0",
        "1.2.0",
        hot=True,
        old_pid=10,
        new_pid=20,
        switch_ms=41.6,
        drained=3,
        ended=1,
        drain_ms=500.2,
        stopped="cleanup() finished",
    )
    assert audit_line(hot, 0.5) == (
        "1.1.0 -> 1.2.0; pid 10 -> 20, switched after 42 ms; old worker: 3 call(s) drained, "
        "1 ended at the 0.5 s deadline in 500 ms, cleanup() finished"
    )
    settings = SwapReport("demo.hot", "1.1.0", "1.1.0", hot=False, new_settings=True)
    assert audit_line(settings, 10) == (
        "1.1.0 onto new settings; no worker was running: the new one starts on its next activation"
    )
