"""The SDK's retry decision (pure) and the proxy loop that waits on it, with a fake transport:
429 honours Retry-After and rate-limit resets, 5xx and failed connections are retried only for
idempotent methods, and nothing waits past the budget."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plugport.errors import NetworkFetchError
from plugport.sdk import RetryPolicy
from plugport.sdk._api import NetProxy
from plugport.sdk._retry import retry_delay

POLICY = RetryPolicy(attempts=4, budget_s=5.0, base_s=0.5)


def delay(status: int | None, headers: dict[str, str] | None = None, **kw: Any) -> float | None:
    options = {"attempt": 1, "waited_s": 0.0, "now": 1000.0, "rand": lambda: 1.0, **kw}
    method = options.pop("method", "GET")
    return retry_delay(POLICY, method, status, headers=headers or {}, **options)


def test_429_waits_as_long_as_the_service_says() -> None:
    assert delay(429, {"retry-after": "2"}, method="POST") == 2.0
    assert delay(429, {"retry-after": "Thu, 01 Jan 1970 00:16:43 GMT"}) == 3.0  # an HTTP date
    assert delay(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1004"}) == 4.0
    assert delay(429, {"ratelimit-remaining": "0", "ratelimit-reset": "1001"}) == 1.0
    assert delay(429, {"retry-after": "60"}) is None  # past the budget: give the 429 back


def test_a_rate_limit_403_is_a_429_and_a_plain_403_is_final() -> None:
    assert delay(403, {"retry-after": "2"}, method="POST") == 2.0  # GitHub's secondary limit
    assert delay(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1003"}) == 3.0
    assert delay(403) is None  # forbidden is forbidden
    assert delay(403, {"x-ratelimit-remaining": "12"}) is None


def test_5xx_and_failures_back_off_for_idempotent_methods_only() -> None:
    assert delay(503) == 0.5
    assert delay(502, attempt=3) == 2.0  # 0.5 * 2 ** 2, full jitter at its top
    assert delay(None) == 0.5  # no answer at all
    assert delay(500, method="POST") is None  # might have acted: not sent twice
    unsafe = RetryPolicy(retry_unsafe=True)
    got = retry_delay(unsafe, "POST", 500, headers={}, attempt=1, waited_s=0, now=0)
    assert got is not None


def test_other_answers_and_the_last_attempt_are_final() -> None:
    assert delay(200) is None
    assert delay(404) is None
    assert delay(401) is None
    assert delay(503, attempt=4) is None
    assert delay(503, waited_s=4.9) is None
    with pytest.raises(ValueError, match="attempts >= 1"):
        RetryPolicy(attempts=0)


class Scripted:
    """A transport that answers from a script: a status with headers, or an exception."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def call(self, capability: str, method: str, args: list[Any], kw: dict[str, Any]) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer
        return {"status": status, "headers": headers, "body": b"", "url": "", "elapsed_ms": 1.0}


def test_the_proxy_retries_and_hands_back_the_last_answer() -> None:
    fast = RetryPolicy(attempts=3, budget_s=1, base_s=0.001)
    transport = Scripted((429, {"retry-after": "0"}), (503, {}), (200, {}))
    got = asyncio.run(NetProxy(transport).fetch("https://x.example", retry=fast))
    assert (got.status, transport.calls) == (200, 3)
    transport = Scripted((503, {}), (503, {}), (503, {}), (200, {}))
    got = asyncio.run(NetProxy(transport).fetch("https://x.example", retry=fast))
    assert (got.status, transport.calls) == (503, 3)  # attempts spent: the last answer
    transport = Scripted((503, {}))
    got = asyncio.run(NetProxy(transport).fetch("https://x.example"))  # no retry asked
    assert (got.status, transport.calls) == (503, 1)


def test_a_failed_connection_is_raised_when_retries_run_out() -> None:
    down = NetworkFetchError("acme.x", "https://x.example", "ConnectError")
    transport = Scripted(down, down)
    policy = RetryPolicy(attempts=2, budget_s=1, base_s=0.001)
    with pytest.raises(NetworkFetchError, match="ConnectError"):
        asyncio.run(NetProxy(transport).fetch("https://x.example", retry=policy))
    assert transport.calls == 2
    transport = Scripted(down)
    with pytest.raises(NetworkFetchError):
        asyncio.run(NetProxy(transport).fetch("https://x.example", method="POST", retry=True))
    assert transport.calls == 1
