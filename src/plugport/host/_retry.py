"""When the host's registry client asks again, decided without I/O. A ``429`` (rate limited) or
``503`` (unavailable) is the registry saying "not now": the client waits what ``Retry-After``
asks (seconds or an HTTP-date), never more than ``max_retry_after_s`` per wait nor
``max_total_wait_s`` in all, plus a little jitter so that many hosts told the same moment do
not all come back at once, and gives up after ``max_retries`` with the wait it was asked for."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE", "RetryDecision", "RetryPolicy", "decide_retry", "parse_retry_after"]

RETRYABLE = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How patient the client is with a registry that answers 429 or 503."""

    max_retries: int = 3
    """Requests sent again after the first one was refused (0: never retry)."""
    max_retry_after_s: float = 60.0
    """The longest single wait, whatever ``Retry-After`` asks (a registry's rate-limit window
    is a minute; an hour, or a date next year, is capped to this)."""
    max_total_wait_s: float = 120.0
    """The longest a request waits in all before the client gives up."""
    backoff_s: float = 0.5
    """The first wait when the answer has no usable ``Retry-After`` (doubled at each retry)."""
    jitter_ratio: float = 0.1
    """Up to this fraction of a wait is added at random (never taken away: the registry said
    "not before")."""

    def __post_init__(self) -> None:
        checks = {
            "max_retries": self.max_retries >= 0,
            "max_retry_after_s": self.max_retry_after_s >= 0,
            "max_total_wait_s": self.max_total_wait_s >= 0,
            "backoff_s": self.backoff_s >= 0,
            "jitter_ratio": 0 <= self.jitter_ratio <= 1,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                bound = "between 0 and 1" if name == "jitter_ratio" else "0 or more"
                raise ValueError(f"RetryPolicy.{name} must be {bound}, not {value!r}")


@dataclass(frozen=True)
class RetryDecision:
    wait_s: float | None
    """Seconds to wait before sending again; ``None``: give up."""
    asked_s: float | None
    """What the registry asked for (``Retry-After``), before any cap; ``None`` if it did not."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from ``now``: delay-seconds or an HTTP-date (a date in the past
    is 0). ``None`` when absent or unreadable, so the caller backs off on its own."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may parse naive
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def decide_retry(
    policy: RetryPolicy,
    *,
    status: int,
    retry_after: str | None,
    retries: int,
    waited_s: float,
    now: datetime,
    random: float,
) -> RetryDecision:
    """Whether to send again after the ``retries + 1``-th answer ``status``, having waited
    ``waited_s`` already; ``random`` in [0, 1) draws the jitter."""
    asked = parse_retry_after(retry_after, now)
    if status not in RETRYABLE or retries >= policy.max_retries:
        return RetryDecision(None, asked)
    base = asked if asked is not None else policy.backoff_s * 2**retries
    wait = min(base, policy.max_retry_after_s)
    wait = min(wait + wait * policy.jitter_ratio * random, policy.max_retry_after_s)
    if waited_s + wait > policy.max_total_wait_s:
        return RetryDecision(None, asked)
    return RetryDecision(wait, asked)
