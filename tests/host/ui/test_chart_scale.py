"""Axis arithmetic without markup: ticks on 1-2-5 steps that cover the data, compact labels, and
the exact numbers of the data table, on ordinary, equal, tiny, huge and hostile inputs."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from plugport.host.ui._chart_scale import (
    GEOMETRY_LIMIT,
    finite,
    format_number,
    format_plain,
    nice_ticks,
    with_unit,
)


def _step_shape(step: float) -> int:
    """The step's leading digit, checked to be the whole of it (1, 2 or 5 times 10**k)."""
    exponent = math.floor(math.log10(step) + 1e-9)  # a step of 9.99...e-16 is 1e-15
    mantissa = step / 10.0**exponent
    assert mantissa == pytest.approx(round(mantissa), rel=1e-9), step
    return round(mantissa)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 100, (0, 20, 40, 60, 80, 100)),
        (3, 120, (0, 50, 100, 150)),
        (-4, 15, (-5, 0, 5, 10, 15)),
        (0, 1, (0, 0.2, 0.4, 0.6, 0.8, 1)),
        (0.1, 0.3, (0.1, 0.15, 0.2, 0.25, 0.3)),
        (1000, 2000, (1000, 1200, 1400, 1600, 1800, 2000)),
        (120, 3, (0, 50, 100, 150)),  # bounds in either order
    ],
)
def test_ticks_are_round_and_cover_the_range(
    low: float, high: float, expected: tuple[float, ...]
) -> None:
    assert nice_ticks(low, high) == expected


def test_tenths_are_exact_not_float_noise() -> None:
    ticks = nice_ticks(0, 0.5)
    assert ticks == (0, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert 0.30000000000000004 not in ticks


@pytest.mark.parametrize(
    ("low", "high"),
    [(5, 5), (0, 0), (-7.5, -7.5), (1e15, 1e15 + 1), (1e-300, 1e-300), (2**60, 2**60)],
)
def test_equal_bounds_are_widened_to_two_distinct_ticks(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert len(ticks) >= 2
    assert ticks[0] < ticks[-1]
    assert ticks[0] <= low
    assert ticks[-1] >= high


def test_random_ranges_keep_every_promise() -> None:
    """Seeded so a failure repeats: ticks cover the range, step evenly on 1-2-5 and stay few."""
    rng = random.Random(20)  # noqa: S311 - reproducible ranges, not a secret
    for _ in range(2000):
        scale = 10.0 ** rng.randint(-12, 12)
        low = rng.uniform(-1, 1) * scale
        high = low + rng.uniform(0, 2) * scale * 10.0 ** rng.randint(-3, 0)
        ticks = nice_ticks(low, high)
        assert 2 <= len(ticks) <= 5 + 3, (low, high, ticks)
        assert ticks[0] <= low, (low, high, ticks)
        assert ticks[-1] >= high, (low, high, ticks)
        steps = [b - a for a, b in itertools.pairwise(ticks)]
        assert all(s == pytest.approx(steps[0], rel=1e-6) for s in steps), ticks
        assert _step_shape(steps[0]) in (1, 2, 5), ticks


@pytest.mark.parametrize(
    ("low", "high"),
    [(-1.7e308, 1.7e308), (-1e300, 1e300), (5e-324, 1e-323), (0, 5e-324), (-1e-320, 0)],
)
def test_extreme_floats_neither_overflow_nor_divide_by_zero(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert all(math.isfinite(t) for t in ticks)
    assert 2 <= len(ticks) <= 8
    assert ticks[0] < ticks[-1]
    assert ticks[0] <= max(low, -GEOMETRY_LIMIT)


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [
        (0, None, "0"),
        (-0.0, None, "0"),
        (3, None, "3"),
        (120, None, "120"),
        (3.14159, None, "3.14"),
        (12.345, None, "12.3"),
        (1234, None, "1.23k"),
        (1200, 200, "1.2k"),
        (1000, 200, "1k"),
        (1500, 500, "1.5k"),
        (-1500, 500, "-1.5k"),
        (3_400_000, None, "3.4M"),
        (999_960, None, "1M"),  # rounds up into the next suffix
        (2.5e9, None, "2.5B"),
        (7e12, None, "7T"),
        (1e18, None, "1e18"),
        (0.05, None, "0.05"),
        (0.001234, None, "0.00123"),
        (0.000012, None, "1.20e-5"),
        (0.30000000000000004, 0.1, "0.3"),
        (0.15, 0.05, "0.15"),
        (4.5, 0.1, "4.5"),
        (-0.0001, 0.5, "0"),
    ],
)
def test_compact_numbers(value: float, step: float | None, text: str) -> None:
    assert format_number(value, step=step) == text


def test_neighbouring_ticks_read_differently() -> None:
    for low, high in [(0, 1), (1000, 1300), (0.001, 0.002), (5e6, 5.5e6), (-3, 3), (4.5, 5.5)]:
        ticks = nice_ticks(low, high)
        step = ticks[1] - ticks[0]
        labels = [format_number(t, step=step) for t in ticks]
        assert len(set(labels)) == len(labels), labels


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (-42, "-42"),
        (2.0, "2"),
        (0.1, "0.1"),
        (3.14159, "3.14159"),
        (2.5e-7, "2.5e-07"),
        (1e20, "1e+20"),
        (10**40, "1e40"),
        (10**400, "out of range"),
    ],
)
def test_plain_numbers_for_the_table_keep_every_digit(value: object, text: str) -> None:
    assert format_plain(value) == text


def test_units_follow_numbers() -> None:
    assert with_unit("120", "req/s") == "120 req/s"
    assert with_unit("72", "%") == "72%"
    assert with_unit("5", "") == "5"


@pytest.mark.parametrize(
    "value", [None, True, False, float("nan"), float("inf"), -float("inf"), 10**400, "5", [1], {}]
)
def test_what_is_not_a_finite_number_is_a_gap(value: object) -> None:
    assert finite(value) is None


def test_finite_numbers_pass() -> None:
    assert finite(3) == 3.0
    assert finite(-2.5) == -2.5
    assert finite(2**62) == float(2**62)
