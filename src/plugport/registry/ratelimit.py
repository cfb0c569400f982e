"""Rate limits per token (or per client address without one): a fixed one-minute window,
counted in memory for one node or in Redis so every node behind a load balancer shares it.

A token has its own bucket only once it authenticates (:func:`bucket`): a request with a
missing, malformed, unknown, expired or revoked token counts against its client's address,
so made-up tokens cannot buy a fresh budget when the address has spent its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Decision",
    "KnownTokens",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "TokenCheck",
    "bucket",
    "decide",
]

WINDOW_S = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    """Seconds until the window ends and the count starts again."""

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


def decide(count: int, limit: int, now: float) -> Decision:
    """The decision for the ``count``-th request of the window that contains ``now``."""
    reset = WINDOW_S - int(now) % WINDOW_S
    return Decision(count <= limit, limit, max(0, limit - count), reset)


def bucket(client_address: str, token_prefix: str | None) -> str:
    """Whose budget a request spends: its token's, if the token authenticated (``token_prefix``
    is then its public prefix), else its client address's."""
    return f"token:{token_prefix}" if token_prefix else f"ip:{client_address}"


class TokenCheck(Protocol):
    def prefix_of(self, authorization: str) -> str | None:
        """The public prefix of the token in this ``Authorization`` header if it
        authenticates now, else None. Reads only."""
        ...


class KnownTokens:
    """A :class:`TokenCheck` over a fixed set of ``Bearer`` tokens (tests, benchmarks)."""

    def __init__(self, *tokens: str) -> None:
        self._tokens = frozenset(tokens)

    def prefix_of(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self._tokens:
            return None
        return token.strip().split("_")[1]  # ppt_<prefix>_<secret>


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int) -> Decision: ...


class MemoryRateLimiter:
    """Per process; old windows are dropped as new ones start."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> Decision:
        now = self._clock()
        with self._lock:
            window = int(now) // WINDOW_S
            if window != self._window:
                self._window, self._counts = window, {}
            self._counts[key] = count = self._counts.get(key, 0) + 1
        return decide(count, limit, now)


class RedisRateLimiter:
    """``INCR`` + ``EXPIRE`` on a key per window, shared by every registry node."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis  # the optional dependency, only when a Redis URL is configured

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2)
        self._clock = clock

    def hit(self, key: str, limit: int) -> Decision:
        now = self._clock()
        name = f"plugport:rate:{int(now) // WINDOW_S}:{key}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, WINDOW_S + 5)
        count, _ = pipe.execute()
        return decide(int(count), limit, now)
