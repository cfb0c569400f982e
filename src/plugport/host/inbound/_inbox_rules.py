"""When a delivery the plugin's handler refused is tried again, when it is given up, and when
a finished one may be forgotten: pure, so the schedule is tested without a clock or a plugin."""

from __future__ import annotations

from collections.abc import Callable

from plugport._task_rules import retry_delay_s

__all__ = [
    "DEFAULT_RETENTION_S",
    "MAX_ATTEMPTS",
    "REPLAY_GUARD_S",
    "after_failure",
    "prunable",
    "prune_cutoffs",
    "retry_delay_s",
]

MAX_ATTEMPTS = 8
BASE_DELAY_S = 1.0
MAX_DELAY_S = 3600.0
DEFAULT_RETENTION_S = 7 * 86400.0
"""How long a handled delivery is kept after it was handled (operators look back; the sender's
id keeps answering a resend as a duplicate)."""
REPLAY_GUARD_S = 2 * 3600.0
"""The longest a signed timestamp can be replayed after its delivery arrived: it may be dated
up to one window (``window-seconds`` is at most 3600) ahead of this host's clock and is
accepted until one window after its date. A handled delivery is kept at least this long past
its arrival (plus the retention), so its row still refuses the replay."""


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


def prune_cutoffs(now: float, retention_s: float) -> tuple[float, float]:
    """``(finished_before, received_before)``: a handled delivery is forgotten once it
    finished before the first and arrived before the second (see :func:`prunable`)."""
    return now - retention_s, now - retention_s - REPLAY_GUARD_S


def prunable(
    state: str, received_at: float, finished_at: float, now: float, retention_s: float
) -> bool:
    """Whether a delivery may be deleted: only a handled (``done``) one, ``retention_s`` after
    it was handled and after its replay window closed. Pending, running and dead ones stay
    (a dead one until the operator retries it or the plugin is purged)."""
    finished_before, received_before = prune_cutoffs(now, retention_s)
    return state == "done" and finished_at < finished_before and received_at < received_before
