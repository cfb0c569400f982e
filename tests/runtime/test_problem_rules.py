"""The problem rules on plain numbers: each kind of finding fires on a real problem, stays quiet
on noise and on too few observations (None: undecided), and clears with a reason."""

from __future__ import annotations

import random

import pytest

from plugport.runtime import _problem_rules as rules
from plugport.runtime._problem_rules import (
    MIB,
    CallWindow,
    Clear,
    FanoutShare,
    Finding,
    LatencyWindow,
    Thresholds,
    fanout_shares,
)

T = Thresholds()
P = "acme.p"


def finding(verdict: rules.Verdict) -> Finding:
    assert isinstance(verdict, Finding), verdict
    assert verdict.plugin == P
    assert verdict.kind in rules.KINDS
    assert verdict.severity in rules.SEVERITIES
    assert verdict.summary
    assert verdict.explanation
    return verdict


def clear(verdict: rules.Verdict) -> Clear:
    assert isinstance(verdict, Clear), verdict
    assert verdict.reason
    return verdict


# --- helpers ---------------------------------------------------------------------------------


def test_p95_is_a_nearest_rank_value() -> None:
    assert rules.p95([float(i) for i in range(1, 101)]) == 95.0
    assert rules.p95([3.0]) == 3.0
    assert rules.p95([1.0, 2.0]) == 2.0
    with pytest.raises(ValueError, match="no values"):
        rules.p95([])


def test_theil_sen_ignores_outliers_a_least_squares_line_would_follow() -> None:
    samples = [(float(t), 100.0 + 2.0 * t) for t in range(20)]
    samples[10] = (10.0, 10_000.0)  # one wild reading
    assert rules.theil_sen(samples) == pytest.approx(2.0)
    assert rules.theil_sen([(0.0, 5.0)]) == 0.0


def test_fanout_shares_read_each_plugins_others_median_off_one_sort() -> None:
    timings = [("a", 0.001), ("b", 0.004), ("c", 0.002), ("d", 0.093)]
    shares = fanout_shares(7.0, timings)
    for name, own in timings:
        others = sorted(s for n, s in timings if n != name)
        assert shares[name] == FanoutShare(7.0, own, others[1], pytest.approx(own / 0.1))
    # an even number of others: the mean of the middle two; equal times are handled
    tied = fanout_shares(0.0, [("a", 1.0), ("b", 1.0), ("c", 3.0)])
    assert tied["a"].others_median_s == 2.0
    assert tied["c"].others_median_s == 1.0
    assert fanout_shares(0.0, [("a", 1.0)]) == {}


def test_thresholds_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="error_min_calls must be > 0"):
        Thresholds(error_min_calls=0)
    with pytest.raises(ValueError, match="storage_clear_share <= storage_share"):
        Thresholds(storage_share=0.8, storage_clear_share=0.9)


# --- error rate ------------------------------------------------------------------------------


def calls(recent: int, failed: int, base: float = 0, base_failed: float = 0) -> CallWindow:
    return CallWindow(recent, failed, base, base_failed, observed_s=3600)


def test_error_rate_fires_far_above_the_plugins_own_baseline() -> None:
    found = finding(rules.error_rate(P, calls(200, 40, 10_000, 100), T))
    assert found.kind == "error-rate"
    assert found.severity == "warning"
    assert found.summary == "20.0% of calls failed in the last 5 min (40 of 200)"
    assert "1.0% (100 of 10000 calls)" in found.explanation
    assert found.numbers["rate"] == 0.2
    assert found.numbers["baseline_rate"] == 0.01
    assert found.numbers["calls"] == 200
    assert finding(rules.error_rate(P, calls(40, 30, 10_000, 100), T)).severity == "critical"


def test_error_rate_is_quiet_on_few_calls_and_on_a_plugins_usual_failures() -> None:
    # one error in three calls: too few calls; undecided until a whole window was watched
    assert rules.error_rate(P, CallWindow(3, 1, 0, 0, observed_s=10), T) is None
    assert "too few" in clear(rules.error_rate(P, CallWindow(3, 1, 0, 0, observed_s=600), T)).reason
    # 4 failures in 20 calls: 20 %, but fewer failures than error_min_errors
    assert isinstance(rules.error_rate(P, calls(20, 4), T), Clear)
    # a plugin that always fails 30 % of the time is not newly broken at 33 %
    assert isinstance(rules.error_rate(P, calls(300, 100, 10_000, 3000), T), Clear)
    # chance: 2 % of 500 calls against a 1 % baseline is under the 5-point margin
    assert isinstance(rules.error_rate(P, calls(500, 10, 10_000, 100), T), Clear)


def test_error_rate_without_a_baseline_is_held_to_the_default_and_says_so() -> None:
    found = finding(rules.error_rate(P, calls(50, 10, 20, 0), T))
    assert "no long-run rate yet" in found.explanation
    assert found.numbers["baseline_rate"] == T.error_default_baseline


def test_error_rate_clears_with_hysteresis() -> None:
    # 8 % against 4 %: 4 points is under the margin to raise (5) but over the one to stay (3)
    window = calls(1000, 80, 10_000, 400)
    assert isinstance(rules.error_rate(P, window, T), Clear)
    assert isinstance(rules.error_rate(P, window, T, raised=True), Finding)
    back = clear(rules.error_rate(P, calls(1000, 40, 10_000, 400), T, raised=True))
    assert "near its baseline of 4.0%" in back.reason


# --- latency regression ----------------------------------------------------------------------


def latencies(version: str, center: float, n: int = 200, seed: int = 1) -> LatencyWindow:
    rng = random.Random(seed)  # noqa: S311 - reproducible noise, not a secret
    return LatencyWindow(version, [center * rng.uniform(0.8, 1.2) for _ in range(n)])


def test_latency_regression_fires_when_the_new_versions_p95_is_well_above() -> None:
    before, after = latencies("1.0.0", 0.010), latencies("1.1.0", 0.030, seed=2)
    found = finding(rules.latency_regression(P, before, after, 600, T))
    assert found.kind == "latency-regression"
    assert found.summary.startswith("p95 call time 3")
    assert "on 1.1.0, was 1" in found.summary
    assert found.numbers["version"] == "1.1.0"
    assert found.numbers["previous_version"] == "1.0.0"
    assert found.numbers["ratio"] == pytest.approx(3.0, rel=0.1)


def test_latency_regression_is_quiet_on_noise_small_numbers_and_few_samples() -> None:
    before = latencies("1.0.0", 0.010)
    assert isinstance(
        rules.latency_regression(P, before, latencies("1.1.0", 0.011, seed=3), 600, T), Clear
    )
    # tripled, but 50 µs -> 150 µs is under latency_min_increase_s
    tiny = rules.latency_regression(
        P, latencies("1.0.0", 0.00005), latencies("1.1.0", 0.00015), 600, T
    )
    assert isinstance(tiny, Clear)
    # too few calls on the new version yet: undecided
    few = latencies("1.1.0", 0.1, n=10)
    assert rules.latency_regression(P, before, few, 600, T) is None
    # one version only: nothing to compare, undecided
    assert rules.latency_regression(P, None, latencies("1.0.0", 0.1), 600, T) is None


def test_latency_regression_clears_when_the_new_version_becomes_the_baseline() -> None:
    before, after = latencies("1.0.0", 0.010), latencies("1.1.0", 0.030)
    aged = clear(rules.latency_regression(P, before, after, T.latency_horizon_s, T))
    assert "1.1.0 has run for 24 h" in aged.reason


# --- memory growth ---------------------------------------------------------------------------


def readings(start: int, per_step: int, n: int = 20, noise: int = 0) -> list[tuple[float, int]]:
    rng = random.Random(4)  # noqa: S311 - reproducible noise, not a secret
    return [(10.0 * i, start + per_step * i + rng.randint(-noise, noise)) for i in range(n)]


def test_memory_growth_fires_on_a_steady_rise_and_says_when_it_hits_the_limit() -> None:
    samples = readings(40 * MIB, 1 * MIB)  # +1 MiB every 10 s: a leak
    found = finding(rules.memory_growth(P, samples, 256 * MIB, now=200.0, t=T))
    assert found.kind == "memory-growth"
    assert found.numbers["slope_bytes_per_min"] == 6 * MIB
    assert found.numbers["rising_share"] == 1.0
    assert found.numbers["minutes_to_limit"] == pytest.approx((256 - 59) / 6, abs=0.1)
    assert found.severity == "critical"  # under an hour to the limit
    assert "reaches its 256.0 MiB limit" in found.explanation


def test_memory_growth_is_quiet_on_a_plateau_a_jump_and_few_readings() -> None:
    flat = readings(40 * MIB, 0, noise=200_000)
    assert isinstance(rules.memory_growth(P, flat, 256 * MIB, 200.0, T), Clear)
    # one jump (a cache filled once), then flat: the median slope is 0
    jump = [(10.0 * i, 40 * MIB if i < 5 else 80 * MIB) for i in range(20)]
    assert isinstance(rules.memory_growth(P, jump, 256 * MIB, 200.0, T), Clear)
    # rising, but by 2 MiB in all: allocator noise, not worth a finding
    slow = readings(40 * MIB, 100_000)
    assert isinstance(rules.memory_growth(P, slow, 256 * MIB, 200.0, T), Clear)
    assert rules.memory_growth(P, readings(40 * MIB, MIB, n=5), 256 * MIB, 50.0, T) is None


def test_memory_growth_clears_when_its_worker_stopped_reporting() -> None:
    samples = readings(40 * MIB, 1 * MIB)
    gone = clear(rules.memory_growth(P, samples, 256 * MIB, now=190.0 + T.memory_stale_s + 1, t=T))
    assert "not running" in gone.reason


# --- restarts and timeouts --------------------------------------------------------------------


def test_restarts_fire_at_the_count_within_the_window() -> None:
    found = finding(rules.restarts(P, [100.0, 400.0, 800.0], now=900.0, observed_s=900, t=T))
    assert found.summary == "restarted 3 times in the last 15 min"
    assert found.numbers == {"restarts": 3, "window_s": 900.0}
    many = rules.restarts(P, [float(i) for i in range(6)], 10.0, 10, T)
    assert finding(many).severity == "critical"


def test_restarts_are_quiet_below_the_count_and_clear_out_of_the_window() -> None:
    assert rules.restarts(P, [100.0, 200.0], now=300.0, observed_s=300, t=T) is None
    old = clear(rules.restarts(P, [100.0, 200.0, 500.0], now=1300.0, observed_s=1300, t=T))
    assert old.reason == "1 restart in the last 15 min"


def test_any_timeout_in_the_window_is_a_finding_with_its_count() -> None:
    found = finding(rules.timeouts(P, [10.0, 50.0], now=60.0, observed_s=60, t=T))
    assert found.summary == "2 calls timed out in the last 15 min"
    assert found.numbers["timeouts"] == 2
    assert found.numbers["last_s_ago"] == 10.0
    assert finding(rules.timeouts(P, [59.0], 60.0, 60, T)).summary.startswith("1 call timed")
    assert rules.timeouts(P, [], 60.0, 60, T) is None
    assert isinstance(rules.timeouts(P, [10.0], 1000.0, 1000, T), Clear)


# --- storage ---------------------------------------------------------------------------------


def test_storage_close_to_its_quota_is_a_finding_naming_the_store() -> None:
    readings = {"storage": (950, 1000), "data_dir": (10 * MIB, 256 * MIB)}
    found = finding(rules.storage_quota(P, readings, T))
    assert found.summary == "storage 95.0% full (950 of 1000 bytes)"
    assert found.numbers["store"] == "storage"
    assert found.numbers["data_dir_quota_bytes"] == 256 * MIB
    assert "permissions.storage" in found.explanation
    assert finding(rules.storage_quota(P, {"data_dir": (99, 100)}, T)).severity == "critical"


def test_storage_is_quiet_below_the_share_and_clears_with_hysteresis() -> None:
    assert isinstance(rules.storage_quota(P, {"storage": (890, 1000)}, T), Clear)
    assert isinstance(rules.storage_quota(P, {"storage": (870, 1000)}, T, raised=True), Finding)
    assert isinstance(rules.storage_quota(P, {"storage": (840, 1000)}, T, raised=True), Clear)
    assert rules.storage_quota(P, {}, T) is None
    assert rules.storage_quota(P, {"storage": (0, 0)}, T) is None  # storage switched off


# --- slow hook -------------------------------------------------------------------------------


def parts(n: int, own: float, others: float, share: float, at: float = 0.0) -> list[FanoutShare]:
    return [FanoutShare(at, own, others, share) for _ in range(n)]


def test_a_plugin_dominating_a_hooks_fan_outs_is_a_finding() -> None:
    fanouts = {"render": parts(20, 0.050, 0.002, 0.9), "greet": parts(30, 0.001, 0.001, 0.5)}
    found = finding(rules.slow_hook(P, fanouts, now=10.0, observed_s=10, t=T))
    assert found.kind == "slow-hook"
    assert found.numbers["hook"] == "render"
    assert found.numbers["fanouts"] == 20
    assert "'render'" in found.summary


def test_slow_hook_needs_enough_fan_outs_a_real_gap_and_a_dominant_share() -> None:
    assert rules.slow_hook(P, {"render": parts(19, 0.05, 0.002, 0.9)}, 10.0, 10, T) is None
    even = {"render": parts(20, 0.010, 0.008, 0.4)}
    assert isinstance(rules.slow_hook(P, even, 10.0, 10, T), Clear)
    tiny = {"render": parts(20, 0.001, 0.0001, 0.9)}  # 10x, but 1 ms
    assert isinstance(rules.slow_hook(P, tiny, 10.0, 10, T), Clear)
    # the fan-outs that made it slow are out of the window: cleared once watched that long
    old = {"render": parts(20, 0.05, 0.002, 0.9, at=0.0)}
    now = T.fanout_window_s + 1
    assert isinstance(rules.slow_hook(P, old, now, now, T), Clear)
