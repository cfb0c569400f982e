"""Rate limits per token (or per client address without one): a fixed one-minute window,
counted in memory for one node or in Redis so every node behind a load balancer shares it.

A token has its own bucket only once it authenticates (:func:`bucket`): a request with a
missing, malformed, unknown, expired or revoked token counts against its client's address,
so made-up tokens cannot buy a fresh budget when the address has spent its own.

Losing Redis does not take the registry down: :class:`FallbackRateLimiter` counts on this node
alone while Redis does not answer (each node then allows the limit on its own), asks Redis
again every few seconds, and says which it uses for ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Decision",
    "FallbackRateLimiter",
    "KnownTokens",
    "LimiterUnavailableError",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "TokenCheck",
    "bucket",
    "decide",
]

WINDOW_S = 60
RETRY_SHARED_S = 5.0
"""How long a node counts on its own after Redis failed before it asks Redis again."""

log = logging.getLogger("plugport.registry")


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


class LimiterUnavailableError(Exception):
    """The shared counter did not answer (its message says why, without credentials)."""


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int) -> Decision:
        """Count one request against ``key``; :class:`LimiterUnavailableError` when the
        counter cannot be reached."""
        ...


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
    """``INCR`` + ``EXPIRE`` on a key per window, shared by every registry node.

    Keys carry ``namespace`` (the registry's index key id, which all of one registry's nodes
    share), so two registries on one Redis database never spend each other's budgets. Short
    timeouts: a node that cannot reach Redis must not hold requests waiting for it."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.time,
        *,
        namespace: str = "",
        timeout_s: float = 0.25,
    ) -> None:
        import redis  # the optional dependency, only when a Redis URL is configured

        self._redis: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._clock = clock
        self._prefix = f"plugport:rate:{namespace}:" if namespace else "plugport:rate:"

    def hit(self, key: str, limit: int) -> Decision:
        now = self._clock()
        name = f"{self._prefix}{int(now) // WINDOW_S}:{key}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, WINDOW_S + 5)
            count, _ = pipe.execute()
        except self._errors as exc:  # the URL (and its password) stay out of the message
            raise LimiterUnavailableError(f"Redis: {type(exc).__name__}") from None
        return decide(int(count), limit, now)


class FallbackRateLimiter:
    """``primary`` while it answers; this node's own counts while it does not. ``shared``
    says whether ``primary`` counts for every node (Redis) or for this one (memory)."""

    def __init__(
        self,
        primary: RateLimiter,
        *,
        shared: bool,
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = RETRY_SHARED_S,
    ) -> None:
        self._primary = primary
        self._shared = shared
        self._local = MemoryRateLimiter()
        self._clock = clock
        self._retry_s = retry_s
        self._retry_at = 0.0
        self.failure: str | None = None
        """Why ``primary`` is not in use, or None while it is."""

    @property
    def shared_counter(self) -> bool:
        """Whether the requests counted now are counted for every node."""
        return self._shared and self.failure is None

    def health(self) -> dict[str, str]:
        """For ``/healthz``: where rate limits are counted, and Redis's state if it is used."""
        if not self._shared:
            return {"rate_limits": "this node"}
        if self.failure is None:
            return {"rate_limits": "shared", "redis": "ok"}
        return {"rate_limits": "this node until Redis answers", "redis": "unreachable"}

    def hit(self, key: str, limit: int) -> Decision:
        now = self._clock()
        if self.failure is None or now >= self._retry_at:
            try:
                decision = self._primary.hit(key, limit)
            except LimiterUnavailableError as exc:
                if self.failure is None:
                    log.warning("rate limits: %s; counted on this node alone meanwhile", exc)
                self.failure = str(exc)
                self._retry_at = now + self._retry_s
            else:
                if self.failure is not None:
                    log.warning("rate limits: counted in Redis again")
                self.failure = None
                return decision
        return self._local.hit(key, limit)
