"""When a failing plugin may run again: exponential backoff between restarts and a circuit
breaker that quarantines a plugin failing too often. Decisions only; the supervisor acts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Health", "RestartPolicy", "State"]


class State(StrEnum):
    INACTIVE = "inactive"  # installed, not started (activation is lazy)
    STARTING = "starting"
    ACTIVE = "active"
    BACKOFF = "backoff"  # failed; may start again after ``Health.not_before``
    QUARANTINED = "quarantined"  # failed too often; only an operator releases it
    STOPPED = "stopped"  # removed or the supervisor closed


@dataclass(frozen=True)
class RestartPolicy:
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 30.0
    breaker_failures: int = 5
    """This many failures within ``breaker_window_s`` quarantine the plugin."""
    breaker_window_s: float = 60.0
    stable_after_s: float = 30.0
    """Running this long without a failure resets the backoff to its initial value."""

    def __post_init__(self) -> None:
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("RestartPolicy needs 0 < backoff_initial_s <= backoff_max_s")
        if self.breaker_failures < 1 or self.breaker_window_s <= 0:
            raise ValueError("RestartPolicy needs breaker_failures >= 1, breaker_window_s > 0")


@dataclass
class Health:
    """One plugin's failure history under a :class:`RestartPolicy`."""

    policy: RestartPolicy
    failures: deque[float] = field(default_factory=deque)
    consecutive: int = 0
    not_before: float = 0.0
    quarantined: str | None = None
    """Why the breaker opened, or None while it is closed."""
    last_start: float = 0.0

    def started(self, now: float) -> None:
        self.last_start = now

    def failed(self, now: float, reason: str) -> bool:
        """Record a failure at ``now``; True when this one opens the breaker."""
        if self.consecutive and now - self.last_start >= self.policy.stable_after_s:
            self.consecutive = 0  # it ran fine for a while: this is a fresh start
        self.consecutive += 1
        self.failures.append(now)
        while self.failures and now - self.failures[0] > self.policy.breaker_window_s:
            self.failures.popleft()
        delay = self.policy.backoff_initial_s * 2 ** (self.consecutive - 1)
        self.not_before = now + min(self.policy.backoff_max_s, delay)
        if self.quarantined is None and len(self.failures) >= self.policy.breaker_failures:
            self.quarantined = (
                f"{len(self.failures)} failures within {self.policy.breaker_window_s:g} s; "
                f"last: {reason}"
            )
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds until the plugin may start again (0 when it may start now)."""
        return max(0.0, self.not_before - now)

    def release(self) -> None:
        """The operator's decision: forget the failures and close the breaker."""
        self.failures.clear()
        self.consecutive = 0
        self.not_before = 0.0
        self.quarantined = None
