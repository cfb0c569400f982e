"""The pure decisions of outbound webhook delivery: answers, backoff, rate, signature, payload,
and the ``webhooks.deliver`` permission (manifest, rule, engines)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from plugport._engines import required_plugport
from plugport._permissions import RULES, webhook_target_admitted
from plugport.errors import InvalidInputError, ManifestError
from plugport.manifest import Permissions, parse_manifest
from plugport.runtime.capabilities._delivery_rules import (
    Backoff,
    TokenBucket,
    WebhookOptions,
    classify,
    encode_payload,
    next_attempt,
    parse_retry_after,
    signature_headers,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "done"),
        (204, "done"),
        (301, "dead"),
        (308, "dead"),
        (400, "dead"),
        (404, "dead"),
        (410, "dead"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (None, "retry"),
    ],
)
def test_an_answer_is_done_retried_or_dead(status: int | None, outcome: str) -> None:
    assert classify(status, "connection refused").outcome == outcome


def test_the_reasons_say_why() -> None:
    assert "do not follow redirects" in classify(302).reason
    assert "refused" in classify(410).reason
    assert classify(None, "timed out").reason == "timed out"


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=3600, max_attempts=10)
    assert next_attempt(1, 100.0, backoff, rand=lambda: 1.0) == 101.0
    assert next_attempt(3, 100.0, backoff, rand=lambda: 1.0) == 104.0
    assert next_attempt(3, 100.0, backoff, rand=lambda: 0.0) == 100.0
    assert next_attempt(3, 100.0, backoff, rand=lambda: 0.5) == 102.0
    assert next_attempt(9, 0.0, backoff, rand=lambda: 1.0) == 256.0
    assert next_attempt(9, 0.0, Backoff(1, 60, 10), rand=lambda: 1.0) == 60.0
    assert next_attempt(10, 0.0, backoff) is None


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=30, max_attempts=10)
    assert next_attempt(1, 0.0, backoff, retry_after_s=12, rand=lambda: 0.5) == 12.0
    assert next_attempt(1, 0.0, backoff, retry_after_s=999, rand=lambda: 0.5) == 30.0
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after(None, 0.0) is None


def test_bad_backoff_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="max_attempts"):
        Backoff(max_attempts=0)


def test_the_bucket_lets_a_burst_through_then_paces() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=20)
    assert all(bucket.take(0.0) == 0 for _ in range(20))
    wait = bucket.take(0.0)
    assert wait == pytest.approx(0.1)
    assert bucket.take(0.1) == 0
    assert bucket.take(0.1) > 0


def test_options_give_each_host_its_bucket() -> None:
    options = WebhookOptions(host_rates={"slow.example.com": (1, 1)})
    assert options.bucket("slow.example.com").rate_per_s == 1
    assert options.bucket("other.example.com").burst == 20
    with pytest.raises(InvalidInputError, match=r"for host 'x.example.com'"):
        WebhookOptions(host_rates={"x.example.com": (0, 1)})


def test_the_signature_covers_timestamp_and_body() -> None:
    headers = signature_headers(b"key", b'{"a":1}', 1700000000)
    expected = hmac.new(b"key", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert headers == {
        "X-Plugport-Signature": f"sha256={expected}",
        "X-Plugport-Timestamp": "1700000000",
    }


def test_payloads_are_json_within_the_limit() -> None:
    assert encode_payload({"a": [1, "b"]}) == b'{"a":[1,"b"]}'
    with pytest.raises(InvalidInputError, match="not JSON-able"):
        encode_payload({"a": {1, 2}})
    with pytest.raises(InvalidInputError, match="over the 10-byte limit"):
        encode_payload("x" * 20, limit=10)


# --- the permission ------------------------------------------------------------------------------

HEAD = 'name = "acme.hooks"\nversion = "1.0.0"\nentry = "main:Main"\n'


def test_the_manifest_takes_https_urls_and_host_patterns() -> None:
    manifest = parse_manifest(
        HEAD + '[permissions]\nwebhooks.deliver = ["https://hooks.example.com/in/", '
        '"*.example.org"]\n'
    )
    assert manifest.permissions.webhooks.deliver == ["hooks.example.com/in/", "*.example.org"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://hooks.example.com/", "over https only"),
        ("https://10.0.0.1/", "IP address"),
        ("https://hooks.example.com/a/../b", "invalid path prefix"),
        ("*", "too broad"),
    ],
)
def test_bad_targets_are_refused_in_the_manifest(target: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(HEAD + f'[permissions]\nwebhooks.deliver = ["{target}"]\n')


def test_the_target_must_be_under_a_granted_prefix() -> None:
    targets = ["hooks.example.com/in/", "*.example.org"]
    assert webhook_target_admitted(targets, "https://hooks.example.com/in/abc")
    assert webhook_target_admitted(targets, "https://a.example.org/anything")
    assert not webhook_target_admitted(targets, "https://hooks.example.com/other")
    assert not webhook_target_admitted(targets, "https://example.org/")
    assert not webhook_target_admitted(targets, "https://hooks.example.com:8443/in/")


def test_the_rule_refuses_without_a_grant_and_an_undeclared_key() -> None:
    rule = RULES["webhooks"]
    granted = Permissions.model_validate(
        {"webhooks": {"deliver": ["hooks.example.com"]}, "secrets": {"sign": ["hook"]}}
    )
    args = {"target": "https://hooks.example.com/", "sign_with": None}
    assert rule.refusal(granted, "deliver", args) == ""
    assert "grants no targets" in rule.refusal(Permissions(), "deliver", args)
    refused = rule.refusal(granted, "deliver", {**args, "sign_with": "other"})
    assert "no hmac credential" in refused
    assert rule.manifest_line("deliver", args) == (
        'webhooks.deliver = ["https://hooks.example.com/"]'
    )
    assert rule.describe(granted) == ["Deliver webhooks to: hooks.example.com"]
    assert rule.beyond(Permissions(), granted) == ["webhooks.deliver 'hooks.example.com'"]


def test_packing_raises_the_engine_for_the_new_permission() -> None:
    data = {"permissions": {"webhooks": {"deliver": ["hooks.example.com"]}}}
    assert required_plugport(data) == ("0.2", ["permissions.webhooks"])
    assert required_plugport({"permissions": {"network": ["a.example.com"]}}) is None
