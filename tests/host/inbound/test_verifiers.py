"""Every verifier accepts what a genuine sender sends and refuses each way a delivery can be
wrong, with vectors computed here from the senders' documented schemes (not from
:func:`sign`), and no refusal quotes the secret or the signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from plugport.errors import WebhookRefusedError
from plugport.host.inbound.verifiers import safe_headers, sign, verify
from plugport.manifest import WebhookEndpoint

SECRET = b"It's a Secret to Everybody"
NOW = 1_700_000_000
BODY = b'{"action":"opened","number":1}'


def spec(verifier: str, **options: Any) -> WebhookEndpoint:
    return WebhookEndpoint.model_validate({"verifier": verifier, "secret": "hook", **options})


def mac(message: bytes, key: bytes = SECRET) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


GITHUB = spec("github")
SLACK = spec("slack")
STRIPE = spec(
    "hmac-timestamped", **{"signature-header": "X-Sig", "timestamp-header": "X-Ts", "prefix": "v1="}
)
HMAC_B64 = spec("hmac", **{"signature-header": "X-Shopify-Hmac-Sha256", "encoding": "base64"})
HMAC_HEX = spec("hmac", **{"signature-header": "X-Signature", "prefix": "sha256="})
TOKEN = spec(
    "token", **{"token-header": "X-Gitlab-Token", "delivery-id-header": "X-Gitlab-Event-UUID"}
)

GOOD = [
    (
        "github",
        GITHUB,
        {"X-Hub-Signature-256": "sha256=" + mac(BODY).hex(), "X-GitHub-Delivery": "d-1"},
        ("d-1", None),
    ),
    (
        "slack",
        SLACK,
        {
            "X-Slack-Request-Timestamp": str(NOW - 10),
            "X-Slack-Signature": "v0=" + mac(f"v0:{NOW - 10}:".encode() + BODY).hex(),
        },
        (None, NOW - 10),
    ),
    (
        "hmac-timestamped",
        STRIPE,
        {"X-Ts": str(NOW + 5), "X-Sig": "v1=" + mac(f"{NOW + 5}.".encode() + BODY).hex()},
        (None, NOW + 5),
    ),
    (
        "hmac-base64",
        HMAC_B64,
        {"X-Shopify-Hmac-Sha256": base64.b64encode(mac(BODY)).decode()},
        (None, None),
    ),
    ("hmac-hex", HMAC_HEX, {"x-signature": "sha256=" + mac(BODY).hex().upper()}, (None, None)),
    (
        "token",
        TOKEN,
        {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event-UUID": "u-9"},
        ("u-9", None),
    ),
]


@pytest.mark.parametrize(
    ("name", "endpoint", "headers", "expected"), GOOD, ids=[g[0] for g in GOOD]
)
def test_a_genuine_delivery_is_accepted(
    name: str, endpoint: WebhookEndpoint, headers: dict[str, str], expected: tuple[Any, Any]
) -> None:
    verified = verify(endpoint, SECRET, headers, BODY, NOW)
    delivery_id, timestamp = expected
    assert verified.timestamp == timestamp
    if delivery_id is not None:
        assert (verified.delivery_id, verified.derived) == (delivery_id, False)
    elif timestamp is not None:  # replay key from the signed timestamp and signature
        assert verified.derived
        assert verified.delivery_id
        assert verified.delivery_id.startswith("sig-")
    else:
        assert verified.delivery_id is None


@pytest.mark.parametrize(
    ("name", "endpoint", "headers", "expected"), GOOD, ids=[g[0] for g in GOOD]
)
def test_sign_makes_what_verify_accepts(
    name: str, endpoint: WebhookEndpoint, headers: dict[str, str], expected: tuple[Any, Any]
) -> None:
    signed = sign(endpoint, SECRET, BODY, now=NOW, delivery_id="x-1")
    assert verify(endpoint, SECRET, signed, BODY, NOW).timestamp in (None, NOW)


def _slack(stamp: int, body: bytes = BODY, key: bytes = SECRET) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": "v0=" + mac(f"v0:{stamp}:".encode() + body, key).hex(),
    }


GITHUB_SIG = "sha256=" + mac(BODY).hex()
BAD = [
    ("github: no signature", GITHUB, {}, BODY, "missing_signature"),
    (
        "github: another secret",
        GITHUB,
        {"X-Hub-Signature-256": "sha256=" + mac(BODY, b"other").hex()},
        BODY,
        "bad_signature",
    ),
    (
        "github: body changed",
        GITHUB,
        {"X-Hub-Signature-256": GITHUB_SIG},
        BODY + b" ",
        "bad_signature",
    ),
    (
        "github: sha1 scheme",
        GITHUB,
        {"X-Hub-Signature-256": "sha1=" + mac(BODY).hex()},
        BODY,
        "bad_signature",
    ),
    ("github: not hex", GITHUB, {"X-Hub-Signature-256": "sha256=zz"}, BODY, "bad_signature"),
    (
        "github: bad delivery id",
        GITHUB,
        {"X-Hub-Signature-256": GITHUB_SIG, "X-GitHub-Delivery": "x" * 300},
        BODY,
        "bad_delivery_id",
    ),
    ("slack: stale", SLACK, _slack(NOW - 301), BODY, "stale_timestamp"),
    ("slack: future", SLACK, _slack(NOW + 301), BODY, "future_timestamp"),
    (
        "slack: no timestamp",
        SLACK,
        {"X-Slack-Signature": _slack(NOW)["X-Slack-Signature"]},
        BODY,
        "missing_timestamp",
    ),
    (
        "slack: timestamp changed",
        SLACK,
        {**_slack(NOW), "X-Slack-Request-Timestamp": str(NOW - 1)},
        BODY,
        "bad_signature",
    ),
    ("slack: not a number", SLACK, _slack("soon"), BODY, "bad_timestamp"),  # type: ignore[arg-type]
    ("slack: another secret", SLACK, _slack(NOW, key=b"other"), BODY, "bad_signature"),
    ("timestamped: no signature", STRIPE, {"X-Ts": str(NOW)}, BODY, "missing_signature"),
    (
        "timestamped: no prefix",
        STRIPE,
        {"X-Ts": str(NOW), "X-Sig": mac(f"{NOW}.".encode() + BODY).hex()},
        BODY,
        "bad_signature",
    ),
    (
        "timestamped: stale",
        STRIPE,
        {"X-Ts": str(NOW - 400), "X-Sig": "v1=" + mac(f"{NOW - 400}.".encode() + BODY).hex()},
        BODY,
        "stale_timestamp",
    ),
    ("hmac: base64 garbage", HMAC_B64, {"X-Shopify-Hmac-Sha256": "!!!"}, BODY, "bad_signature"),
    (
        "hmac: hex where base64",
        HMAC_B64,
        {"X-Shopify-Hmac-Sha256": mac(BODY).hex()},
        BODY,
        "bad_signature",
    ),
    ("hmac: empty", HMAC_HEX, {"X-Signature": "  "}, BODY, "missing_signature"),
    ("token: missing", TOKEN, {}, BODY, "missing_token"),
    ("token: wrong", TOKEN, {"X-Gitlab-Token": "guess"}, BODY, "wrong_token"),
    (
        "token: prefix of the secret",
        TOKEN,
        {"X-Gitlab-Token": SECRET.decode()[:-1]},
        BODY,
        "wrong_token",
    ),
]


@pytest.mark.parametrize(
    ("name", "endpoint", "headers", "body", "reason"), BAD, ids=[b[0] for b in BAD]
)
def test_each_refusal_names_its_reason_and_never_the_secret(
    name: str, endpoint: WebhookEndpoint, headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(WebhookRefusedError) as caught:
        verify(endpoint, SECRET, headers, body, NOW)
    assert caught.value.reason == reason
    assert caught.value.status == (400 if reason == "bad_delivery_id" else 401)
    text = str(caught.value)
    assert SECRET.decode() not in text
    for value in headers.values():
        if len(value) > 12:
            assert value not in text  # neither the signature nor the token is quoted


def test_a_window_can_be_narrowed() -> None:
    narrow = spec("slack", **{"window-seconds": 30})
    with pytest.raises(WebhookRefusedError, match="30 s window"):
        verify(narrow, SECRET, _slack(NOW - 31), BODY, NOW)
    assert verify(narrow, SECRET, _slack(NOW - 29), BODY, NOW).timestamp == NOW - 29


def test_the_same_signed_delivery_derives_the_same_replay_key() -> None:
    first = verify(SLACK, SECRET, _slack(NOW), BODY, NOW)
    again = verify(SLACK, SECRET, _slack(NOW), BODY, NOW + 20)
    other = verify(SLACK, SECRET, _slack(NOW + 1), BODY, NOW)
    assert first.delivery_id == again.delivery_id != other.delivery_id


def test_kept_headers_leave_out_credentials_and_the_transport() -> None:
    kept = safe_headers(
        HMAC_HEX,
        {
            "X-Signature": "sha256=abc",
            "Authorization": "Bearer t",
            "Cookie": "a=b",
            "Content-Length": "3",
            "X-GitHub-Event": "push",
            "Content-Type": "application/json",
        },
    )
    assert kept == {"x-github-event": "push", "content-type": "application/json"}
    assert "x-gitlab-token" not in safe_headers(TOKEN, {"X-Gitlab-Token": "t"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verifier": "hmac"}, "needs signature-header"),
        ({"verifier": "token"}, "needs token-header"),
        ({"verifier": "github", "prefix": "x"}, "does not use prefix"),
        ({"verifier": "hmac-timestamped", "signature-header": "X-S"}, "needs timestamp-header"),
        ({"verifier": "github", "max-body-bytes": "11 MiB"}, "less than or equal"),
        ({"verifier": "nope"}, "'github'"),
    ],
)
def test_the_manifest_refuses_an_endpoint_its_verifier_cannot_use(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookEndpoint.model_validate({"secret": "hook", **options})
