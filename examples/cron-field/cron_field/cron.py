"""Five-field cron expressions (``minute hour day month weekday``), as Vixie cron and cronie
read them: parsed into the sets of values each field allows, or refused with one message that
names the field and what is wrong; and the times a parsed schedule runs. Pure: text and times in,
data out.

The one rule cron users trip over, kept here: when both ``day`` and ``weekday`` are restricted
(neither starts with ``*``), a time runs when *either* matches (``0 0 1 * MON``: the 1st and
every Monday); otherwise both must.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "FIELDS",
    "MAX_CHARS",
    "CronError",
    "Schedule",
    "next_runs",
    "parse",
    "problem",
    "summary",
]

MAX_CHARS = 200
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# English names whatever the locale, as cron reads them.
_MONTH_NAMES = [
    "", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
]  # fmt: skip
_DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
MONTHS = {name.upper(): n for n, name in enumerate(_MONTH_NAMES) if name}
WEEKDAYS = {name.upper(): n for n, name in enumerate(_DAY_NAMES)}
_DAYS_IN = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_SEARCH_YEARS = 9
"""How far ahead runs are looked for: the rarest schedule a valid expression can have, 29
February, skips at most 8 years (2096 to 2104)."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    named: str = ""  # how the message calls the names


FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day", 1, 31, {}),
    _Field("month", 1, 12, MONTHS, "a month name (JAN-DEC)"),
    _Field("weekday", 0, 7, WEEKDAYS, "a day name (SUN-SAT)"),
)


class CronError(ValueError):
    """Why an expression is not a cron expression; ``field`` names the part at fault (``""``:
    the whole expression)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class Schedule:
    """The values each field allows (weekday 7 already folded into 0, Sunday)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool  # the day field starts with '*'
    any_weekday: bool  # the weekday field starts with '*'

    def runs_on(self, year: int, month: int, day: int) -> bool:
        if month not in self.months:
            return False
        by_day = day in self.days
        by_weekday = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def runs_at(self, when: datetime) -> bool:
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and self.runs_on(when.year, when.month, when.day)
        )


def parse(expression: object) -> Schedule:
    """The schedule ``expression`` describes, or a :class:`CronError` for its first problem."""
    if not isinstance(expression, str):
        raise CronError("", f"a cron expression is text, not {type(expression).__name__}")
    if len(expression) > MAX_CHARS:
        raise CronError("", f"is {len(expression)} characters long; the most is {MAX_CHARS}")
    parts = expression.split()
    if len(parts) == 1 and parts[0].startswith("@"):
        macro = parts[0].lower()
        said = f" ({macro} is {MACROS[macro]})" if macro in MACROS else ""
        raise CronError("", f"write the five fields instead of {parts[0]!r}{said}")
    if len(parts) != len(FIELDS):
        raise CronError(
            "",
            f"a cron expression has 5 fields (minute hour day month weekday) separated by "
            f"spaces; this one has {len(parts)}",
        )
    values = [_values(field, text) for field, text in zip(FIELDS, parts, strict=True)]
    schedule = Schedule(
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=frozenset(v % 7 for v in values[4]),
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
    if schedule.any_weekday and not any(
        day <= _DAYS_IN[month] for day in schedule.days for month in schedule.months
    ):
        raise CronError(
            "day",
            f"never runs: no month in {_listed(schedule.months)} has a day "
            f"{_listed(schedule.days)}",
        )
    return schedule


def problem(expression: object) -> str | None:
    """What a form shows under the field: why ``expression`` is refused, or ``None``."""
    try:
        parse(expression)
    except CronError as exc:
        return str(exc)
    return None


def next_runs(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The first ``count`` minutes strictly after ``after`` (UTC) that ``schedule`` runs at."""
    found = []
    for when in _runs(schedule, after.astimezone(UTC)):
        found.append(when)
        if len(found) == count:
            break
    return found


def summary(schedule: Schedule) -> list[tuple[str, str]]:
    """Each field's values in words a person checks a schedule with, and the day rule when
    it is the surprising one."""
    said = [
        ("Minute", _described(schedule.minutes, 0, 59)),
        ("Hour", _described(schedule.hours, 0, 23)),
        ("Day of month", _described(schedule.days, 1, 31)),
        ("Month", _described(schedule.months, 1, 12, names=_MONTH_NAMES)),
        ("Weekday", _described(schedule.weekdays, 0, 6, names=_DAY_NAMES)),
    ]
    if not (schedule.any_day or schedule.any_weekday):
        said.append(("Runs on", "a listed day of the month or a listed weekday, either"))
    return said


def _runs(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    when = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    last_year = after.year + _SEARCH_YEARS  # past it, no run is coming (parse made sure)
    while when.year <= last_year:
        if when.month not in schedule.months:
            month = when.month % 12 + 1
            year = when.year + (when.month == 12)
            when = when.replace(year=year, month=month, day=1, hour=0, minute=0)
        elif not schedule.runs_on(when.year, when.month, when.day):
            when = (when + timedelta(days=1)).replace(hour=0, minute=0)
        elif when.hour not in schedule.hours:
            when = (when + timedelta(hours=1)).replace(minute=0)
        elif when.minute not in schedule.minutes:
            when += timedelta(minutes=1)
        else:
            yield when
            last_year = when.year + _SEARCH_YEARS
            when += timedelta(minutes=1)


def _values(field: _Field, text: str) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(field.name, f"{text!r} has an empty item in its list")
        found.update(_item(field, item))
    return frozenset(found)


def _item(field: _Field, item: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _digits(step_text) or int(step_text) < 1:
            raise CronError(field.name, f"the step in {item!r} must be a whole number from 1")
        step = int(step_text)
    if base == "*":
        return range(field.low, field.high + 1, step)
    low_text, dash, high_text = base.partition("-")
    low = _number(field, low_text, item)
    if dash:
        high = _number(field, high_text, item)
        if high < low:
            raise CronError(field.name, f"the range {base!r} goes backwards")
    else:
        # 'N/step' runs from N to the field's end (cronie and Vixie read it so).
        high = field.high if slash else low
    return range(low, high + 1, step)


def _number(field: _Field, text: str, item: str) -> int:
    if _digits(text):
        value = int(text)
    elif text.upper() in field.names:
        value = field.names[text.upper()]
    else:
        what = f"a number or {field.named}" if field.named else "a number"
        shown = f"{text!r} in {item!r}" if text != item else repr(text)
        raise CronError(field.name, f"{shown} is not {what}" if text else f"{item!r} is not {what}")
    if not field.low <= value <= field.high:
        raise CronError(field.name, f"{value} is out of range {field.low}-{field.high}")
    return value


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _described(
    values: frozenset[int], low: int, high: int, *, names: list[str] | None = None
) -> str:
    if values == frozenset(range(low, high + 1)):
        return "every"
    return _listed(values, names=names)


def _listed(values: frozenset[int], *, names: list[str] | None = None, most: int = 16) -> str:
    shown = [names[v] if names else str(v) for v in sorted(values)]
    if len(shown) > most:
        return ", ".join(shown[: most - 1]) + f", … ({len(shown)} values)"
    return ", ".join(shown)
