"""The registry client honours 429 and 503: it waits what ``Retry-After`` asks (seconds or an
HTTP-date), capped and jittered, a bounded number of times, and when it gives up it says which
registry, what it answered and how long it asked to wait; telemetry never waits."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from plugport.errors import RegistryResponseError
from plugport.host._retry import RetryPolicy, decide_retry, parse_retry_after
from plugport.host.client import RegistryClient
from plugport.host.service import HostServiceSettings
from plugport.host.service.workspaces import Workspace
from tests.host.test_client import URL, Clock, error, files_under

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
VERSIONS_PATH = "/api/v1/plugins/acme.hello/versions"
ROWS = [{"version": "1.0.0"}]


def limited(seconds: str | None = "7") -> httpx.Response:
    headers = {"Retry-After": seconds} if seconds is not None else {}
    body = {"error": {"code": "rate_limited", "message": "more than 600 requests a minute"}}
    return httpx.Response(429, json=body, headers=headers)


class Script:
    """Answers in the order given (the last one repeats), recording what was asked."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(
    tmp_path: Path, script: Script, sleeps: Sleeps, *, jitter: float = 0.0, **policy: Any
) -> RegistryClient:
    return RegistryClient(
        URL,
        cache_dir=tmp_path / "cache",
        transport=httpx.MockTransport(script),
        clock=Clock(NOW.timestamp()),
        retry=RetryPolicy(**policy),
        sleep=sleeps,
        jitter=lambda: jitter,
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


# --- the decision, without I/O -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(days=1), usegmt=True), 0.0),  # past: now
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delay-seconds is an integer
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_the_wait_is_what_was_asked_plus_jitter_never_less() -> None:
    policy = RetryPolicy(jitter_ratio=0.1)
    low = decide_retry(
        policy, status=429, retry_after="10", retries=0, waited_s=0, now=NOW, random=0.0
    )
    high = decide_retry(
        policy, status=429, retry_after="10", retries=0, waited_s=0, now=NOW, random=0.999
    )
    assert low.wait_s == 10.0
    assert high.wait_s is not None
    assert 10.0 < high.wait_s < 11.0


def test_an_absurd_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_retry_after_s=30, max_total_wait_s=1000)
    decision = decide_retry(
        policy, status=503, retry_after="31536000", retries=0, waited_s=0, now=NOW, random=0.5
    )
    assert decision.wait_s == 30.0
    assert decision.asked_s == 31536000.0


def test_without_retry_after_the_wait_doubles() -> None:
    policy = RetryPolicy(backoff_s=0.5, jitter_ratio=0)
    waits = [
        decide_retry(
            policy, status=503, retry_after=None, retries=n, waited_s=0, now=NOW, random=0
        ).wait_s
        for n in range(3)
    ]
    assert waits == [0.5, 1.0, 2.0]


def test_it_gives_up_after_max_retries_or_past_the_total_wait() -> None:
    policy = RetryPolicy(max_retries=2, max_total_wait_s=20, jitter_ratio=0)
    ask = {"status": 429, "now": NOW, "random": 0.0}
    assert decide_retry(policy, retry_after="5", retries=2, waited_s=0, **ask).wait_s is None
    assert decide_retry(policy, retry_after="5", retries=1, waited_s=16, **ask).wait_s is None
    assert decide_retry(policy, retry_after="5", retries=1, waited_s=15, **ask).wait_s == 5.0


def test_other_statuses_are_never_retried() -> None:
    for status in (400, 404, 500, 502):
        decision = decide_retry(
            RetryPolicy(), status=status, retry_after="1", retries=0, waited_s=0, now=NOW, random=0
        )
        assert decision.wait_s is None


@pytest.mark.parametrize(
    "field",
    ["max_retries", "max_retry_after_s", "max_total_wait_s", "backoff_s", "jitter_ratio"],
)
def test_a_negative_setting_is_refused_by_name(field: str) -> None:
    with pytest.raises(ValueError, match=rf"RetryPolicy\.{field} must be"):
        RetryPolicy(**{field: -1})


# --- the client against scripted answers -------------------------------------------------------


def test_429_then_503_then_200_waits_as_asked_and_answers(tmp_path: Path, sleeps: Sleeps) -> None:
    date = format_datetime(NOW + timedelta(seconds=3), usegmt=True)
    script = Script(
        limited("2"),
        httpx.Response(503, headers={"Retry-After": date}, text="maintenance"),
        httpx.Response(200, json=ROWS),
    )
    with client_for(tmp_path, script, sleeps, jitter=0.5, jitter_ratio=0.1) as client:
        assert client.versions("acme.hello") == ROWS
        assert client.requests_sent == 3
    assert sleeps == [pytest.approx(2.1), pytest.approx(3.15)]
    assert script.seen == [f"GET {VERSIONS_PATH}"] * 3


def test_giving_up_names_the_registry_and_the_wait_and_caches_nothing(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    script = Script(limited("45"))
    client = client_for(tmp_path, script, sleeps, max_retries=2, max_total_wait_s=600)
    with client, pytest.raises(RegistryResponseError) as caught:
        client.versions("acme.hello")
    exc = caught.value
    assert (exc.status, exc.code) == (429, "rate_limited")
    assert exc.details["registry"] == URL
    assert exc.details["retry_after_s"] == 45.0
    assert exc.details["retries"] == 2
    text = str(exc)
    assert f"the registry at {URL} is rate limiting this host" in text
    assert "more than 600 requests a minute" in text
    assert "gave up after 2 retries and 90.0 s of waiting" in text
    assert "it asks to wait 45 s more" in text
    assert sleeps == [45.0, 45.0]
    assert len(script.seen) == 3
    assert files_under(tmp_path / "cache") == []


def test_an_absurd_retry_after_is_capped_and_the_message_says_so(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    script = Script(limited("86400"))
    client = client_for(
        tmp_path, script, sleeps, max_retries=1, max_retry_after_s=5, max_total_wait_s=60
    )
    with client, pytest.raises(RegistryResponseError, match="more than max_retry_after_s = 5"):
        client.versions("acme.hello")
    assert sleeps == [5.0]


def test_the_total_wait_bounds_the_retries(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(limited("30"))
    client = client_for(tmp_path, script, sleeps, max_retries=10, max_total_wait_s=70)
    with client, pytest.raises(RegistryResponseError, match="gave up after 2 retries"):
        client.versions("acme.hello")
    assert sleeps == [30.0, 30.0]


def test_a_503_without_retry_after_backs_off_then_gives_up(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(httpx.Response(503, text="down for maintenance"))
    client = client_for(tmp_path, script, sleeps, max_retries=3, backoff_s=0.25)
    with client, pytest.raises(RegistryResponseError) as caught:
        client.versions("acme.hello")
    assert caught.value.status == 503
    assert "is unavailable" in str(caught.value)
    assert "it named no wait" in str(caught.value)
    assert "down for maintenance" in str(caught.value)
    assert sleeps == [0.25, 0.5, 1.0]


def test_max_retries_zero_never_waits(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(limited("1"), httpx.Response(200, json=ROWS))
    client = client_for(tmp_path, script, sleeps, max_retries=0)
    with client, pytest.raises(RegistryResponseError, match="gave up after 0 retries"):
        client.versions("acme.hello")
    assert sleeps == []
    assert len(script.seen) == 1


def test_a_500_is_not_retried(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(error(500, "internal", "boom"), httpx.Response(200, json=ROWS))
    with client_for(tmp_path, script, sleeps) as client, pytest.raises(RegistryResponseError):
        client.versions("acme.hello")
    assert sleeps == []
    assert len(script.seen) == 1


def test_a_download_waits_too_and_lands_checked(tmp_path: Path, sleeps: Sleeps) -> None:
    data = b"archive bytes"
    sha = hashlib.sha256(data).hexdigest()
    script = Script(limited("1"), httpx.Response(200, content=data))
    with client_for(tmp_path, script, sleeps) as client:
        path = client.download(
            "acme.hello", "1.0.0", expected_sha256=sha, expected_length=len(data), max_bytes=100
        )
    assert path.read_bytes() == data
    assert sleeps == [1.0]


def test_a_download_that_gives_up_leaves_no_file(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(limited("1"))
    client = client_for(tmp_path, script, sleeps, max_retries=1)
    with client, pytest.raises(RegistryResponseError, match="rate limiting"):
        client.download(
            "acme.hello", "1.0.0", expected_sha256="a" * 64, expected_length=3, max_bytes=100
        )
    assert files_under(tmp_path / "cache") == []


def test_telemetry_never_waits(tmp_path: Path, sleeps: Sleeps) -> None:
    script = Script(limited("30"))
    with client_for(tmp_path, script, sleeps) as client:
        assert client.report_usage("acme.hello", "1.0.0", "install") is False
    assert sleeps == []
    assert len(script.seen) == 1


# --- the settings ------------------------------------------------------------------------------


def test_the_host_service_settings_reach_every_workspace_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGPORT_HOST_SERVICE_REGISTRY_MAX_RETRY_AFTER_S", "15")
    settings = HostServiceSettings(
        data_dir=tmp_path, registries=(URL,), registry_max_retries=5, registry_max_total_wait_s=40
    )
    workspace = Workspace("team", tmp_path / "team", settings, [])
    try:
        [client] = workspace.host.clients
        assert client.retry == RetryPolicy(max_retries=5, max_retry_after_s=15, max_total_wait_s=40)
    finally:
        asyncio.run(workspace.close())


@pytest.mark.parametrize(
    "field", ["registry_max_retries", "registry_max_retry_after_s", "registry_max_total_wait_s"]
)
def test_a_host_service_retry_setting_out_of_range_is_named(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        HostServiceSettings(**{field: -1})
