"""Cron expressions for recurring tasks: five fields (minute, hour, day of month, month, day
of week; ``*``, ``*/n``, ``a-b`` and ``a,b``), matched by Huey's own ``crontab``. Pure."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import lru_cache

from plugport.errors import InvalidInputError

__all__ = ["cron_matches", "parse_cron"]

_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


@lru_cache(maxsize=256)
def parse_cron(expression: str) -> Callable[[datetime.datetime], bool]:
    """The test for ``expression``, or an :class:`InvalidInputError` naming the field."""
    from huey import crontab

    parts = expression.split()
    if len(parts) != len(_FIELDS):
        raise InvalidInputError(
            f"cron {expression!r}: write five fields (minute hour day month weekday), "
            f"e.g. '0 9 * * 1-5'; it has {len(parts)}"
        )
    for name, part in zip(_FIELDS, parts, strict=True):
        try:
            crontab(**{name: part}, strict=True)
        except ValueError as exc:
            raise InvalidInputError(
                f"cron {expression!r}: the {name} field {part!r}: {exc}"
            ) from None
    return crontab(**dict(zip(_FIELDS, parts, strict=True)), strict=True)  # type: ignore[no-any-return]


def cron_matches(expression: str, minute: datetime.datetime) -> bool:
    return bool(parse_cron(expression)(minute))
