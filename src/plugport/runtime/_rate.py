"""A token bucket: how many log lines or capability calls a plugin may make in a burst and per
second. Pure arithmetic on a clock reading, so it is tested without sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TokenBucket"]


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = field(default=0.0)
    refused: int = 0
    """Refusals since the last allowed take; reported once instead of once per refusal."""

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("TokenBucket needs rate_per_s > 0 and burst >= 1")
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough at time ``now`` (monotonic seconds)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        self.refused += 1
        return False

    def take_refused(self) -> int:
        """How many takes were refused since this was last asked, and start counting again."""
        refused, self.refused = self.refused, 0
        return refused
