"""HTTP behaviour every route shares: ETag and 304, Cache-Control, rate limits with their
headers (in memory, and shared through Redis), request size limits, /metrics, OpenAPI."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from plugport.registry.ratelimit import MemoryRateLimiter, RedisRateLimiter, decide
from tests.registry.conftest import Registry, running
from tests.registry.test_access import error_of
from tests.registry.test_lifecycle import two_published

REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")


def test_json_reads_carry_an_etag_and_answer_304(registry: Registry, tmp_path: Path) -> None:
    two_published(registry, tmp_path)
    with registry.client() as anonymous:
        first = anonymous.get("/api/v1/plugins/acme.hello")
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=30"
        again = anonymous.get("/api/v1/plugins/acme.hello", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        other = anonymous.get("/api/v1/plugins/acme.hello", headers={"If-None-Match": '"x"'})
        assert other.status_code == 200
    with registry.client(registry.admin) as admin:
        assert admin.get("/api/v1/plugins/acme.hello").headers["cache-control"] == (
            "private, no-cache"
        )


def test_rate_limit_headers_and_429(engine: Engine, tmp_path: Path) -> None:
    with running(engine, tmp_path / "data", rate_limit_per_minute=3) as registry:
        with registry.client() as client:
            answers = [client.get("/api/v1/namespaces/x") for _ in range(4)]
        assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        refused = answers[3]
        assert refused.status_code == 429
        assert error_of(refused)["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        with registry.client(registry.admin) as admin:  # a token has its own budget
            assert admin.get("/api/v1/namespaces/x").status_code == 404
        with registry.client() as client:
            assert client.get("/healthz").status_code == 200  # never limited


def test_request_size_limit(engine: Engine, tmp_path: Path) -> None:
    with running(engine, tmp_path / "data", max_request_bytes=2048) as registry:
        with registry.client(registry.admin) as admin:
            big = admin.post("/api/v1/namespaces", content=b"x" * 4096)
            assert big.status_code == 413
            assert "at most 2048" in error_of(big)["message"]

            streamed = admin.post(
                "/api/v1/namespaces",
                content=iter([b"{" + b" " * 3000 + b"}"]),  # chunked: counted as it arrives
                headers={"content-type": "application/json"},
            )
            assert streamed.status_code == 413
        assert registry.count("namespaces") == 0


def test_metrics_and_openapi(registry: Registry) -> None:
    with registry.client() as client:
        client.get("/api/v1/namespaces/nope")
        text = client.get("/metrics").text
        assert (
            'plugport_registry_requests_total{method="GET",route="/api/v1/namespaces/{name}",'
            'status="404"} 1.0'
        ) in text
        schema = client.get("/openapi.json").json()
        assert "/api/v1/plugins/{name}/versions" in schema["paths"]


def test_window_arithmetic() -> None:
    assert decide(1, 2, 120.5) == decide(1, 2, 120.0).__class__(True, 2, 1, 60)
    assert decide(3, 2, 179.0).allowed is False
    assert decide(3, 2, 179.0).headers()["Retry-After"] == "1"
    clock = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: clock[0])
    assert [limiter.hit("k", 2).allowed for _ in range(3)] == [True, True, False]
    clock[0] = 61.0
    assert limiter.hit("k", 2).allowed


@pytest.mark.skipif(not REDIS_URL, reason="PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
def test_redis_limits_are_shared_between_nodes() -> None:
    assert REDIS_URL is not None
    clock = [1_000_000.0 + os.getpid() * 60]  # a window no other run uses
    first = RedisRateLimiter(REDIS_URL, clock=lambda: clock[0])
    second = RedisRateLimiter(REDIS_URL, clock=lambda: clock[0])
    key = f"test-{os.getpid()}"
    assert first.hit(key, 2).allowed
    assert second.hit(key, 2).allowed
    assert not first.hit(key, 2).allowed


def test_unknown_hosts_get_json_errors(registry: Registry) -> None:
    response = httpx.get(registry.url + "/nope")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
