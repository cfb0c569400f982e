"""The pure half of outbound webhook delivery: what an answer means (:func:`classify`), when
the next attempt is due (:func:`next_attempt`), how fast one target host may be sent to
(:class:`TokenBucket`), what the signature headers are (:func:`signature_headers`) and what a
plugin may hand in (:func:`encode_payload`, :func:`check_idempotency_key`). No I/O, no clock:
the sender in :mod:`plugport.runtime.capabilities.webhooks` passes ``now`` and a random source.

Rule: a delivery is retried only when the receiver might accept it later (5xx, 408, 429, a
timeout, a connection error); any other refusal is final at once, and a redirect is never
followed (a delivery goes to the URL the plugin was granted, or nowhere).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from plugport.errors import InvalidInputError

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Backoff",
    "TokenBucket",
    "Verdict",
    "WebhookOptions",
    "check_idempotency_key",
    "classify",
    "encode_payload",
    "next_attempt",
    "parse_retry_after",
    "signature_headers",
]

MAX_PAYLOAD_BYTES = 1024**2
MAX_IDEMPOTENCY_KEY_CHARS = 200
SIGNATURE_HEADER = "X-Plugport-Signature"
TIMESTAMP_HEADER = "X-Plugport-Timestamp"
DELIVERY_HEADER = "X-Plugport-Delivery"
_RETRIED_4XX = frozenset({408, 429})

Outcome = Literal["done", "retry", "dead"]


@dataclass(frozen=True)
class Verdict:
    """What to do with a delivery after one attempt, and why (a sentence for the operator)."""

    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` (1-based) waits a uniform random
    time in ``[0, min(cap_s, base_s * 2**(n-1))]``."""

    base_s: float = 1.0
    cap_s: float = 3600.0
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1:
            raise InvalidInputError(
                "webhook backoff: base_s must be > 0, cap_s >= base_s and max_attempts >= 1 "
                f"(got {self.base_s}, {self.cap_s}, {self.max_attempts})"
            )


@dataclass(frozen=True)
class WebhookOptions:
    """How the host delivers webhooks (the operator's settings; units in the names)."""

    rate_per_s: float = 10.0
    """Deliveries per second to one target host, on average (a token bucket per host)."""
    burst: float = 20.0
    host_rates: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Target host -> (rate_per_s, burst) overriding the default for that host."""
    backoff: Backoff = field(default_factory=Backoff)
    max_in_flight: int = 32
    """Attempts in progress at once, over all targets."""
    timeout_ms: int = 10_000
    """One attempt, from connecting to the whole answer."""
    poll_s: float = 1.0
    """How often the sender looks for deliveries made due from outside (the CLI's
    redeliver) when nothing wakes it sooner."""
    done_retention_s: float = 7 * 24 * 3600.0
    """How long a delivered (``done``) row stays in the outbox for the operator's list; the
    sender deletes older ones as it goes. Dead letters are kept until redelivered or purged."""
    prune_every_s: float = 600.0
    """How often the sender looks for ``done`` rows past ``done_retention_s``."""

    def __post_init__(self) -> None:
        TokenBucket(self.rate_per_s, self.burst)  # the same checks
        for host, (rate, burst) in self.host_rates.items():
            try:
                TokenBucket(rate, burst)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{exc} for host {host!r}") from None
        if self.max_in_flight < 1 or self.timeout_ms <= 0 or self.poll_s <= 0:
            raise InvalidInputError(
                "webhook options: max_in_flight must be >= 1, timeout_ms and poll_s > 0"
            )
        if self.done_retention_s < 0 or self.prune_every_s <= 0:
            raise InvalidInputError(
                "webhook options: done_retention_s must be >= 0 and prune_every_s > 0"
            )

    def bucket(self, host: str) -> TokenBucket:
        rate, burst = self.host_rates.get(host, (self.rate_per_s, self.burst))
        return TokenBucket(rate, burst)


def classify(status: int | None, error: str = "") -> Verdict:
    """An attempt's result: the receiver's HTTP ``status``, or ``None`` with the transport
    ``error`` (a timeout, a refused connection)."""
    if status is None:
        return Verdict("retry", error or "no answer")
    if 200 <= status < 300:
        return Verdict("done", f"HTTP {status}")
    if 300 <= status < 400:
        return Verdict(
            "dead",
            f"HTTP {status}: the receiver redirected; deliveries do not follow redirects "
            "(deliver to the final URL)",
        )
    if status in _RETRIED_4XX or status >= 500:
        return Verdict("retry", f"HTTP {status}")
    if 400 <= status < 500:
        return Verdict("dead", f"HTTP {status}: the receiver refused the delivery")
    return Verdict("retry", f"HTTP {status}")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or
    ``None`` when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)


def next_attempt(
    attempts: int,
    now: float,
    backoff: Backoff,
    *,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """When to try again after ``attempts`` failed attempts, or ``None`` when they are used
    up (the delivery is dead). A ``Retry-After`` is honoured (up to ``cap_s``) when it asks
    for longer than the jittered wait."""
    if attempts >= backoff.max_attempts:
        return None
    ceiling = min(backoff.cap_s, backoff.base_s * math.pow(2, max(attempts - 1, 0)))
    wait = rand() * ceiling
    if retry_after_s is not None:
        wait = max(wait, min(retry_after_s, backoff.cap_s))
    return now + wait


@dataclass
class TokenBucket:
    """Deliveries per second to one target host: ``rate_per_s`` on average, ``burst`` at
    once. :meth:`take` returns 0 when a token was taken, else the seconds until one is free
    (the delivery waits that long; it does not fail)."""

    rate_per_s: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise InvalidInputError(
                f"webhook rate limit: rate_per_s must be > 0 and burst >= 1 "
                f"(got {self.rate_per_s}, {self.burst})"
            )
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> float:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
            self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate_per_s


def signature_headers(key: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of a signed delivery: HMAC-SHA256 of ``"{timestamp}.{body}"``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"sha256={digest}", TIMESTAMP_HEADER: str(timestamp)}


def encode_payload(payload: Any, *, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The JSON body for ``payload``, or an :class:`InvalidInputError` naming the problem."""
    try:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"webhooks.deliver: payload is not JSON-able ({exc})") from None
    if len(body) > limit:
        raise InvalidInputError(
            f"webhooks.deliver: payload is {len(body)} bytes as JSON, over the {limit}-byte limit"
        )
    return body


def check_idempotency_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidInputError(
            "webhooks.deliver: idempotency_key must be a non-empty string of at most "
            f"{MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    if not key.isprintable():
        raise InvalidInputError("webhooks.deliver: idempotency_key must be printable text")
    return key
