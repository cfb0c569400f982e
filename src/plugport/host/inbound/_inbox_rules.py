"""When a delivery the plugin's handler refused is tried again, and when it is given up: pure,
so the schedule is tested without a clock or a plugin."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MAX_ATTEMPTS", "after_failure", "retry_delay_s"]

MAX_ATTEMPTS = 8
BASE_DELAY_S = 1.0
MAX_DELAY_S = 3600.0


def retry_delay_s(
    attempt: int,
    *,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
    random: Callable[[], float],
) -> float:
    """The wait after failed attempt ``attempt`` (1 = the first): exponential, capped, with
    "equal jitter" (half fixed, half random) so retries of a burst spread out without any
    coming back at once."""
    ceiling: float = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + random() * ceiling / 2


def after_failure(
    attempts: int,
    now: float,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
    random: Callable[[], float],
) -> tuple[str, float]:
    """``(state, next_at)`` for a delivery whose attempt number ``attempts`` just failed:
    ``dead`` once ``max_attempts`` are used up, else ``pending`` again later."""
    if attempts >= max_attempts:
        return "dead", now
    return "pending", now + retry_delay_s(attempts, base_s=base_s, cap_s=cap_s, random=random)
