"""The cron rules without I/O: what each field accepts (numbers, names, ``*``, lists, ranges,
steps), every refusal with the message a form shows, the day/weekday rule, and the next runs,
checked against a minute-by-minute scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cron_field.cron import MAX_CHARS, CronError, next_runs, parse, problem, summary

AT = datetime(2026, 12, 6, 3, 47, 30, tzinfo=UTC)  # a Sunday


def fields(expression: str) -> tuple[list[int], ...]:
    s = parse(expression)
    return tuple(sorted(x) for x in (s.minutes, s.hours, s.days, s.months, s.weekdays))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


FIELD_NAMES = ("minute:", "hour:", "day:", "month:", "weekday:")
EVERY = (list(range(60)), list(range(24)), list(range(1, 32)), list(range(1, 13)), list(range(7)))


# --- what each field accepts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "index", "values"),
    [
        ("*/5 * * * *", 0, list(range(0, 60, 5))),
        ("0,15,30,45 * * * *", 0, [0, 15, 30, 45]),
        ("5/15 * * * *", 0, [5, 20, 35, 50]),  # N/step: from N to the field's end
        ("0 9-17/2 * * *", 1, [9, 11, 13, 15, 17]),
        ("0 1-3,20-22 * * *", 1, [1, 2, 3, 20, 21, 22]),
        ("0 0 1,15,31 * *", 2, [1, 15, 31]),
        ("0 0 1 jan,Jul,DEC *", 3, [1, 7, 12]),
        ("0 0 1 FEB-APR *", 3, [2, 3, 4]),
        ("0 0 * * MON-FRI", 4, [1, 2, 3, 4, 5]),
        ("0 0 * * 7", 4, [0]),  # 7 and 0 are both Sunday
        ("0 0 * * 5-7", 4, [0, 5, 6]),
        ("0 0 * * sun,sat", 4, [0, 6]),
        ("0 0 * * */2", 4, [0, 2, 4, 6]),
        ("*/90 * * * *", 0, [0]),  # a step past the end: only the start
        ("7 * * * *", 0, [7]),
        ("0 0 1-31/10 * *", 2, [1, 11, 21, 31]),
    ],
)
def test_accepted_fields(expression: str, index: int, values: list[int]) -> None:
    assert problem(expression) is None
    found = fields(expression)
    assert found[index] == values
    others = [i for i in range(5) if i != index and expression.split()[i] == "*"]
    assert all(found[i] == EVERY[i] for i in others)


def test_bounds_whitespace_and_the_star_expression() -> None:
    assert fields("* * * * *") == EVERY
    assert fields("0 0 1 1 0") == ([0], [0], [1], [1], [0])
    assert fields("59 23 31 12 7") == ([59], [23], [31], [12], [0])
    assert fields("  0\t0  *\n*   * ") == fields("0 0 * * *")


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "has 5 fields (minute hour day month weekday) separated by spaces; this one has 0"),
        ("* * * *", "this one has 4"),
        ("0 * * * * *", "this one has 6"),  # a seconds field (Quartz) is not cron
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day: 0 is out of range 1-31"),
        ("* * 32 * *", "day: 32 is out of range 1-31"),
        ("* * * 0 *", "month: 0 is out of range 1-12"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "weekday: 8 is out of range 0-7"),
        ("1-70 * * * *", "minute: 70 is out of range 0-59"),
        ("*/0 * * * *", "minute: the step in '*/0' must be a whole number from 1"),
        ("*/ * * * *", "minute: the step in '*/' must be a whole number from 1"),
        ("*/x * * * *", "minute: the step in '*/x' must be a whole number from 1"),
        ("1-5/2/3 * * * *", "minute: the step in '1-5/2/3' must be a whole number from 1"),
        ("10-5 * * * *", "minute: the range '10-5' goes backwards"),
        ("* * * DEC-JAN *", "month: the range 'DEC-JAN' goes backwards"),
        ("1,,2 * * * *", "minute: '1,,2' has an empty item in its list"),
        ("1, * * * *", "minute: '1,' has an empty item in its list"),
        ("a * * * *", "minute: 'a' is not a number"),
        ("-5 * * * *", "minute: '-5' is not a number"),
        ("5- * * * *", "minute: '5-' is not a number"),
        ("*-5 * * * *", "minute: '*' in '*-5' is not a number"),
        ("0 0 * foo *", "month: 'foo' is not a number or a month name (JAN-DEC)"),
        ("0 0 * * MON-FUN", "weekday: 'FUN' in 'MON-FUN' is not a number or a day name (SUN-SAT)"),
        ("0 0 * * MONDAY", "weekday: 'MONDAY' is not a number or a day name (SUN-SAT)"),
        ("0 JAN * * *", "hour: 'JAN' is not a number"),  # names only where they mean something
        ("\u00b2 * * * *", "minute: '\u00b2' is not a number"),  # a digit int() refuses
        ("\u0663 * * * *", "minute: '\u0663' is not a number"),  # a digit int() would accept
        ("1.5 * * * *", "minute: '1.5' is not a number"),
        ("@daily", "write the five fields instead of '@daily' (@daily is 0 0 * * *)"),
        ("@HOURLY", "(@hourly is 0 * * * *)"),
        ("@reboot", "write the five fields instead of '@reboot'"),
        ("0 0 31 2 *", "day: never runs: no month in 2 has a day 31"),
        ("0 0 30,31 2 *", "day: never runs: no month in 2 has a day 30, 31"),
        ("0 0 31 4,6,9,11 *", "day: never runs: no month in 4, 6, 9, 11 has a day 31"),
    ],
)
def test_refused_with_a_message_naming_the_field(expression: str, message: str) -> None:
    said = problem(expression)
    assert said is not None
    assert message in said
    with pytest.raises(CronError) as raised:
        parse(expression)
    field = raised.value.field
    assert str(raised.value) == said
    assert field in {"", "minute", "hour", "day", "month", "weekday"}
    assert said.startswith(f"{field}: ") if field else not said.startswith(FIELD_NAMES)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "a cron expression is text, not NoneType"),
        (5, "a cron expression is text, not int"),
        (["*"] * 5, "a cron expression is text, not list"),
        ("* " * (MAX_CHARS // 2 + 1), f"is {MAX_CHARS + 2} characters long; the most is 200"),
    ],
)
def test_refused_values_that_are_not_expressions(value: Any, message: str) -> None:
    assert problem(value) == message


def test_leap_days_and_the_or_rule_are_not_never() -> None:
    assert problem("0 0 29 2 *") is None  # every fourth year or so
    assert problem("0 0 31 1,2 *") is None  # January has a 31st
    assert problem("0 0 31 2 MON") is None  # both restricted: every Monday in February


# --- when it runs ---------------------------------------------------------------------------


def scan(expression: str, after: datetime, until: datetime) -> list[datetime]:
    """The runs up to ``until`` found the slow way: every minute, one by one."""
    schedule = parse(expression)
    when = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while when <= until:
        if schedule.runs_at(when):
            found.append(when)
        when += timedelta(minutes=1)
    return found


@pytest.mark.parametrize(
    "expression",
    [
        "*/5 * * * *",
        "0 9-17/2 * * MON-FRI",
        "30 2 * * 1-5",
        "0 0 1 * MON",
        "0 0 */2 * MON",
        "15 6 1,15 * *",
        "0 12 * 1,2 *",
        "*/20 23 31 * *",
        "0 0 * * 0,7",
    ],
)
def test_next_runs_agree_with_a_minute_by_minute_scan(expression: str) -> None:
    runs = next_runs(parse(expression), AT, 8)
    assert len(runs) == 8
    assert runs == scan(expression, AT, runs[-1])  # none missed, none made up


def test_next_runs_examples() -> None:
    assert next_runs(parse("*/5 * * * *"), AT, 5) == [
        utc(2026, 12, 6, 3, 50),
        utc(2026, 12, 6, 3, 55),
        utc(2026, 12, 6, 4, 0),
        utc(2026, 12, 6, 4, 5),
        utc(2026, 12, 6, 4, 10),
    ]
    # Both restricted: the 1st of the month OR a Monday.
    assert next_runs(parse("0 0 1 * MON"), AT, 5) == [
        utc(2026, 12, 7, 0, 0),
        utc(2026, 12, 14, 0, 0),
        utc(2026, 12, 21, 0, 0),
        utc(2026, 12, 28, 0, 0),
        utc(2027, 1, 1, 0, 0),
    ]
    # Day starts with '*': odd days AND Mondays.
    assert next_runs(parse("0 0 */2 * MON"), AT, 3) == [
        utc(2026, 12, 7, 0, 0),
        utc(2026, 12, 21, 0, 0),
        utc(2027, 1, 11, 0, 0),
    ]
    assert next_runs(parse("30 2 * * MON-FRI"), utc(2026, 12, 11, 3, 0), 1) == [
        utc(2026, 12, 14, 2, 30)
    ]


def test_runs_are_strictly_after_and_across_years() -> None:
    assert next_runs(parse("59 23 31 12 *"), utc(2026, 12, 31, 23, 59), 2) == [
        utc(2027, 12, 31, 23, 59),
        utc(2028, 12, 31, 23, 59),
    ]
    assert next_runs(parse("* * * * *"), utc(2026, 12, 31, 23, 59, 59), 1) == [utc(2027, 1, 1)]


def test_leap_days_even_across_a_century_without_one() -> None:
    assert next_runs(parse("0 0 29 2 *"), AT, 3) == [
        utc(2028, 2, 29),
        utc(2032, 2, 29),
        utc(2036, 2, 29),
    ]
    assert next_runs(parse("0 0 29 2 *"), utc(2096, 3, 1), 1) == [utc(2104, 2, 29)]  # not 2100


def test_a_time_in_another_zone_is_read_as_utc() -> None:
    plus_two = datetime(2026, 12, 6, 5, 47, 30, tzinfo=timezone(timedelta(hours=2)))
    assert next_runs(parse("*/5 * * * *"), plus_two, 1) == [utc(2026, 12, 6, 3, 50)]


def test_summary_in_words() -> None:
    assert summary(parse("*/15 9-17 * * 1-5")) == [
        ("Minute", "0, 15, 30, 45"),
        ("Hour", "9, 10, 11, 12, 13, 14, 15, 16, 17"),
        ("Day of month", "every"),
        ("Month", "every"),
        ("Weekday", "Mon, Tue, Wed, Thu, Fri"),
    ]
    said = dict(summary(parse("*/2 0 1,15 jan-mar 0,7")))
    assert said["Minute"] == "0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, … (30 values)"
    assert said["Month"] == "Jan, Feb, Mar"
    assert said["Weekday"] == "Sun"
    assert said["Runs on"] == "a listed day of the month or a listed weekday, either"
