"""A registry node that loses Redis keeps serving: rate limits are counted on the node alone
meanwhile (each node allows the limit), ``/healthz`` and ``/metrics`` say so, and Redis is
asked again a few seconds later. Before, every API and page request answered a plain-text
500 while ``/healthz`` said ok."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest
from sqlalchemy import Engine

from plugport.registry.ratelimit import (
    Decision,
    FallbackRateLimiter,
    LimiterUnavailableError,
    RedisRateLimiter,
)
from tests.registry.conftest import running

REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")


class Flaky:
    """A shared limiter that is down while ``down`` is set, counting what reaches it."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def hit(self, key: str, limit: int) -> Decision:
        self.calls += 1
        if self.down:
            raise LimiterUnavailableError("Redis: ConnectionError")
        return Decision(True, limit, limit - 1, 60)


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_counts_on_the_node_while_redis_is_down_and_asks_again_later() -> None:
    now = [0.0]
    shared = Flaky()
    limiter = FallbackRateLimiter(shared, shared=True, clock=lambda: now[0], retry_s=5)
    assert limiter.hit("ip:a", 2).allowed
    assert limiter.shared_counter
    shared.down = True
    assert limiter.hit("ip:a", 2).allowed  # counted here: 1 of 2
    assert limiter.health() == {
        "rate_limits": "this node until Redis answers",
        "redis": "unreachable",
    }
    assert not limiter.shared_counter
    assert limiter.hit("ip:a", 2).allowed  # 2 of 2, without asking Redis again
    assert shared.calls == 2
    assert not limiter.hit("ip:a", 2).allowed  # the node's own limit still holds
    now[0] = 5.0
    shared.down = False
    assert limiter.hit("ip:a", 2).allowed
    assert shared.calls == 3
    assert limiter.health() == {"rate_limits": "shared", "redis": "ok"}


def test_a_node_without_redis_says_it_counts_alone() -> None:
    limiter = FallbackRateLimiter(Flaky(), shared=False)
    assert limiter.health() == {"rate_limits": "this node"}
    assert not limiter.shared_counter


def test_an_unreachable_redis_is_named_without_its_url() -> None:
    secret = secrets.token_hex(8)
    limiter = RedisRateLimiter(f"redis://:{secret}@127.0.0.1:{closed_port()}/0")
    with pytest.raises(LimiterUnavailableError) as failed:
        limiter.hit("ip:a", 5)
    assert str(failed.value).startswith("Redis: ")
    assert secret not in str(failed.value)
    assert "127.0.0.1" not in str(failed.value)


def test_a_node_that_lost_redis_keeps_serving(engine: Engine, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    with running(engine, tmp_path / "data", redis_url=url) as registry, registry.client() as client:
        search = client.get("/api/v1/plugins", params={"q": "anything"})
        assert search.status_code == 200, search.text
        assert search.headers["content-type"] == "application/json"
        assert search.headers["ratelimit-limit"] == "600"
        page = client.get("/")
        assert page.status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 200  # the node serves: a balancer keeps it
        assert health.json()["status"] == "degraded"
        assert health.json()["redis"] == "unreachable"
        metrics = client.get("/metrics").text
        assert "plugport_registry_rate_limits_shared 0.0" in metrics
        assert "127.0.0.1:" + url.rsplit(":", 1)[1] not in metrics


def test_registries_sharing_a_redis_database_count_apart() -> None:
    if not REDIS_URL:
        pytest.skip("PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
    now = float(secrets.randbelow(10**9) * 60 + 7)
    one = RedisRateLimiter(REDIS_URL, clock=lambda: now, namespace=secrets.token_hex(8))
    other = RedisRateLimiter(REDIS_URL, clock=lambda: now, namespace=secrets.token_hex(8))
    assert one.hit("ip:127.0.0.1", 1).allowed
    assert not one.hit("ip:127.0.0.1", 1).allowed
    assert other.hit("ip:127.0.0.1", 1).allowed  # its own budget


def test_healthz_with_redis_reports_it(engine: Engine, tmp_path: Path) -> None:
    if not REDIS_URL:
        pytest.skip("PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
    with (
        running(engine, tmp_path / "data", redis_url=REDIS_URL) as registry,
        registry.client() as client,
    ):
        body = client.get("/healthz").json()
        assert (body["status"], body["redis"], body["rate_limits"]) == ("ok", "ok", "shared")
        assert "plugport_registry_rate_limits_shared 1.0" in client.get("/metrics").text
