"""Backoff, the circuit breaker and the token bucket: decisions on a clock reading, no sleeping."""

from __future__ import annotations

import pytest

from plugport.runtime._lifecycle import Health, RestartPolicy
from plugport.runtime._rate import TokenBucket

POLICY = RestartPolicy(
    backoff_initial_s=1,
    backoff_max_s=8,
    breaker_failures=4,
    breaker_window_s=60,
    stable_after_s=30,
)


def test_backoff_doubles_up_to_the_maximum() -> None:
    health = Health(POLICY)
    waits = []
    for now in (0.0, 100.0, 200.0, 300.0, 400.0, 500.0):
        health.started(now - 1)  # each run lasted one second: never stable
        health.failed(now, "boom")
        waits.append(health.wait_s(now))
    assert waits == [1, 2, 4, 8, 8, 8]
    assert health.wait_s(health.not_before + 1) == 0


def test_a_stable_run_resets_the_backoff() -> None:
    health = Health(POLICY)
    health.failed(0, "a")
    health.started(1)
    health.failed(2, "b")
    assert health.wait_s(2) == 2
    health.started(10)
    health.failed(10 + POLICY.stable_after_s, "c")
    assert health.wait_s(10 + POLICY.stable_after_s) == 1


def test_the_breaker_opens_on_failures_within_the_window_only() -> None:
    health = Health(POLICY)
    assert not any(health.failed(t, "slow") for t in (0, 61, 122, 183))  # never 4 in 60 s
    assert health.quarantined is None
    opened = [health.failed(t, f"crash {t}") for t in (300, 301, 302, 303)]
    assert opened == [False, False, False, True]
    assert health.quarantined == "4 failures within 60 s; last: crash 303"
    assert health.failed(304, "again") is False  # already open: reported once
    health.release()
    assert (health.quarantined, health.wait_s(304), health.consecutive) == (None, 0, 0)
    assert not health.failed(305, "fresh start")


@pytest.mark.parametrize(
    "arguments",
    [
        {"backoff_initial_s": 0},
        {"backoff_initial_s": 5, "backoff_max_s": 1},
        {"breaker_failures": 0},
        {"breaker_window_s": 0},
    ],
)
def test_policy_refuses_nonsense(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RestartPolicy needs"):
        RestartPolicy(**arguments)  # type: ignore[arg-type]


def test_token_bucket_bursts_then_refills_and_counts_refusals() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)
    assert bucket.take_refused() == 2
    assert bucket.take_refused() == 0
    assert [bucket.take(100) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_token_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate_per_s > 0"):
        TokenBucket(rate_per_s=0, burst=1)
