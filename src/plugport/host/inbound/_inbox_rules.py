"""How long received webhooks are tried and kept: the inbox's schedule on the task queue
(exponential backoff with jitter, :func:`plugport._task_rules.next_attempt`) and how long a
handled delivery still answers a resend as a duplicate."""

from __future__ import annotations

__all__ = [
    "BASE_DELAY_S",
    "DEFAULT_RETENTION_S",
    "MAX_ATTEMPTS",
    "MAX_DELAY_S",
    "REPLAY_GUARD_S",
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
its arrival (plus the retention), so its record still refuses the replay."""
