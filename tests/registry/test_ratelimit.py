"""Rate limits that made-up tokens cannot dodge: a token has its own budget only once it
authenticates; a missing, malformed, unknown, expired or revoked one spends its client
address's, so once that is spent every such request is refused, whatever it carries. Against
a real server, with the in-memory counter and with Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from plugport.registry.db import make_sessions
from plugport.registry.ratelimit import (
    KnownTokens,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    bucket,
)
from plugport.registry.services import tokens
from tests.registry.conftest import Registry, running
from tests.registry.test_access import error_of

REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")
LIMIT = 4


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    # A fixed instant in a window of its own: the minute cannot roll over mid-test, and no
    # other run (this machine's Redis is shared) counts in the same window.
    now = float(secrets.randbelow(10**9) * 60 + 7)
    if request.param == "memory":
        return MemoryRateLimiter(clock=lambda: now)
    if not REDIS_URL:
        pytest.skip("PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
    return RedisRateLimiter(REDIS_URL, clock=lambda: now)


@pytest.fixture
def limited(engine: Engine, tmp_path: Path, limiter: RateLimiter) -> Iterator[Registry]:
    with running(
        engine, tmp_path / "data", limiter=limiter, rate_limit_per_minute=LIMIT
    ) as registry:
        yield registry


def fake_token() -> str:
    return f"ppt_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def revoked(registry: Registry) -> str:
    token = registry.token("ada", "review")
    with make_sessions(registry.engine).begin() as session:
        tokens.revoke_token(session, token.split("_")[1])
    return token


def test_only_an_authenticated_token_has_its_own_bucket() -> None:
    assert bucket("10.0.0.1", "abcd1234") == "token:abcd1234"
    assert bucket("10.0.0.1", None) == "ip:10.0.0.1"
    known = KnownTokens("ppt_abcd1234_" + "x" * 43)
    assert known.prefix_of("Bearer ppt_abcd1234_" + "x" * 43) == "abcd1234"
    assert known.prefix_of("Bearer ppt_abcd1234_" + "y" * 43) is None
    assert known.prefix_of("Basic ppt_abcd1234_" + "x" * 43) is None


def test_made_up_tokens_spend_the_address_budget(limited: Registry) -> None:
    valid = limited.token("ada", "review")
    expired = limited.token("ada", "review", expires_in=timedelta(seconds=-1))
    gone = revoked(limited)
    with limited.client() as anonymous:
        spent = [anonymous.get("/api/v1/namespaces/x").status_code for _ in range(LIMIT)]
        assert spent == [404] * LIMIT
        assert anonymous.get("/api/v1/namespaces/x").status_code == 429
    dodges = [fake_token() for _ in range(20)]
    dodges += [expired, gone, "not-a-token", "ppt_short"]
    for token in dodges:
        with limited.client(token) as client:
            refused = client.get("/api/v1/namespaces/x")
            assert refused.status_code == 429, (token[:12], refused.text)
            assert error_of(refused)["code"] == "rate_limited"
            assert refused.headers["ratelimit-remaining"] == "0"
            assert 0 < int(refused.headers["retry-after"]) <= 60
            # an authenticated route too: refused before the token is even looked at
            assert client.get("/api/v1/tokens").status_code == 429
    with limited.client() as client:
        basic = {"Authorization": "Basic YWRhOnNlY3JldA=="}
        assert client.get("/api/v1/namespaces/x", headers=basic).status_code == 429
    with limited.client(valid) as ada:  # a real token still has its own, untouched budget
        answers = [ada.get("/api/v1/namespaces/x") for _ in range(LIMIT + 1)]
    assert [a.status_code for a in answers] == [404] * LIMIT + [429]
    assert answers[0].headers["ratelimit-remaining"] == str(LIMIT - 1)


def test_failed_authentication_counts_against_the_address(limited: Registry) -> None:
    """Guessing tokens costs the guesser's address budget: a flood of unknown tokens is cut
    off after ``LIMIT`` guesses, and then anonymous requests from there are refused too."""
    with limited.client() as client:
        guesses = [
            client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {fake_token()}"})
            for _ in range(LIMIT + 3)
        ]
        assert [g.status_code for g in guesses] == [401] * LIMIT + [429] * 3
        assert client.get("/api/v1/namespaces/x").status_code == 429
    with limited.client(limited.admin) as admin:
        assert admin.get("/api/v1/tokens").status_code == 200
