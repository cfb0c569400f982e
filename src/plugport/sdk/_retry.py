"""When a plugin's request to a service is worth sending again, and after how long: a 429 (or
GitHub's rate-limit 403) after the service's ``Retry-After`` or rate-limit reset, a 5xx or a
failed connection after an exponential backoff with full jitter — and never past the policy's
time budget, so a call still ends inside the plugin's ``limits.timeout_ms``. The decision is
pure (:func:`retry_delay`); ``NetProxy.fetch(retry=...)`` does the waiting."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["IDEMPOTENT_METHODS", "RETRIED_STATUSES", "RetryPolicy", "retry_delay"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (the first included); ``budget_s`` the most time spent waiting
    between them; ``base_s`` the first backoff. A 5xx or a failed connection is retried only
    for idempotent methods unless ``retry_unsafe`` (set it where the service deduplicates, e.g.
    an idempotency key); a 429 is always retried: the service did not act on the request."""

    attempts: int = 3
    budget_s: float = 3.0
    base_s: float = 0.25
    retry_unsafe: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.budget_s < 0 or self.base_s < 0:
            raise ValueError("RetryPolicy: attempts >= 1, budget_s >= 0 and base_s >= 0")


def retry_delay(
    policy: RetryPolicy,
    method: str,
    status: int | None,
    *,
    headers: Mapping[str, str],
    attempt: int,
    waited_s: float,
    now: float,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to give up and hand back what
    came. ``status`` None means the request failed without an answer; ``headers`` have
    lower-case names; ``now`` is Unix time (for reset headers)."""
    limited = status == 429 or (status == 403 and _rate_limited_403(headers))
    if attempt >= policy.attempts or (
        status is not None and status not in RETRIED_STATUSES and not limited
    ):
        return None
    if not limited and not (policy.retry_unsafe or method.upper() in IDEMPOTENT_METHODS):
        return None
    told = _told_delay(headers, now) if limited or status == 503 else None
    delay = told if told is not None else rand() * policy.base_s * 2 ** (attempt - 1)
    if waited_s + delay > policy.budget_s:
        return None
    return delay


def _rate_limited_403(headers: Mapping[str, str]) -> bool:
    """GitHub answers a rate limit with 403 as often as 429: ``Retry-After`` (a secondary limit)
    or ``x-ratelimit-remaining: 0`` (the primary one) says it is one."""
    return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"


def _told_delay(headers: Mapping[str, str], now: float) -> float | None:
    """What the service said: ``Retry-After`` (seconds or an HTTP date), or a reset time
    (``x-ratelimit-reset``/``ratelimit-reset``, Unix seconds) when nothing is left."""
    value = headers.get("retry-after", "").strip()
    if value:
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining, reset = headers.get(prefix + "remaining"), headers.get(prefix + "reset")
        if remaining == "0" and reset and reset.isdigit():
            return max(0.0, float(reset) - now)
    return None
