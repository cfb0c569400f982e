"""Whether an inbound webhook delivery is genuine: one pure function per verifier, taking the
endpoint's declaration, the secret, the headers, the raw body and the time, and returning the
delivery's identity or raising :class:`~plugport.errors.WebhookRefusedError` with a precise
reason.

Rules this module protects: every comparison with a secret-derived value is constant-time
(:func:`hmac.compare_digest`); no refusal's message quotes the secret, the signature or the
token; the signature is computed over the raw body exactly as received (never a re-encoded
JSON). :func:`sign` is the inverse, for the testing kit and the benchmark.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from plugport.errors import WebhookRefusedError
from plugport.manifest import WebhookEndpoint

__all__ = [
    "DEFAULT_WINDOW_S",
    "Verified",
    "canonical_headers",
    "safe_headers",
    "sign",
    "verify",
]

DEFAULT_WINDOW_S = 300
"""How far a signed timestamp may be from the host's clock (Slack's own five minutes)."""
MAX_DELIVERY_ID_CHARS = 200
MAX_KEPT_HEADERS = 50
MAX_KEPT_HEADER_CHARS = 1024

_GITHUB_SIGNATURE = "x-hub-signature-256"
_GITHUB_DELIVERY = "x-github-delivery"
_SLACK_SIGNATURE = "x-slack-signature"
_SLACK_TIMESTAMP = "x-slack-request-timestamp"
_NEVER_KEPT = frozenset(
    {
        # Credentials of the request itself, and the transport's own headers.
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-hub-signature",
        _GITHUB_SIGNATURE,
        _SLACK_SIGNATURE,
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "te",
        "upgrade",
    }
)


@dataclass(frozen=True, slots=True)
class Verified:
    """A genuine delivery. ``delivery_id`` is the sender's id when it sends one, else a key
    derived from the signed timestamp and signature (``derived``), else ``None``: a verifier
    with neither (plain ``hmac`` or ``token`` without ``delivery-id-header``) cannot tell a
    replay from a new delivery."""

    delivery_id: str | None
    timestamp: int | None
    derived: bool = False


def canonical_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case (HTTP names are case-insensitive)."""
    return {name.lower(): value for name, value in headers.items()}


def _window(spec: WebhookEndpoint) -> int:
    return spec.window_s if spec.window_s is not None else DEFAULT_WINDOW_S


def _header(headers: Mapping[str, str], name: str, reason: str, what: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise WebhookRefusedError(reason, f"no {what}: the {name} header is missing or empty")
    return value


def _digest(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def _check_signature(
    given: str, expected: bytes, *, prefix: str, encoding: str, header: str
) -> None:
    if not given.startswith(prefix):
        raise WebhookRefusedError(
            "bad_signature", f"the {header} header does not start with {prefix!r}"
        )
    text = given[len(prefix) :].strip()
    if encoding == "base64":
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRefusedError(
                "bad_signature", f"the {header} header is not base64"
            ) from None
    else:
        try:
            decoded = bytes.fromhex(text)
        except ValueError:
            raise WebhookRefusedError("bad_signature", f"the {header} header is not hex") from None
    if not hmac.compare_digest(decoded, expected):
        raise WebhookRefusedError(
            "bad_signature",
            f"the signature in {header} does not match the body: the sender signs with another "
            "secret, or the body was changed on the way",
        )


def _timestamp(value: str, header: str, now: float, window: int) -> int:
    try:
        stamp = int(value)
    except ValueError:
        raise WebhookRefusedError(
            "bad_timestamp", f"the {header} header is not Unix seconds"
        ) from None
    if now - stamp > window:
        raise WebhookRefusedError(
            "stale_timestamp",
            f"the delivery was signed {int(now - stamp)} s ago, more than the {window} s window "
            "(window-seconds): a replay, or the sender's clock is wrong",
        )
    if stamp - now > window:
        raise WebhookRefusedError(
            "future_timestamp",
            f"the delivery is dated {int(stamp - now)} s ahead, more than the {window} s window "
            "(window-seconds): the sender's or this host's clock is wrong",
        )
    return stamp


def _delivery_id(spec: WebhookEndpoint, headers: Mapping[str, str]) -> str | None:
    name = spec.delivery_id_header or (_GITHUB_DELIVERY if spec.verifier == "github" else None)
    if name is None:
        return None
    value = headers.get(name.lower(), "").strip()
    if not value:
        return None
    if len(value) > MAX_DELIVERY_ID_CHARS or not value.isprintable():
        raise WebhookRefusedError(
            "bad_delivery_id",
            f"the {name} header is not a delivery id (printable, at most "
            f"{MAX_DELIVERY_ID_CHARS} characters)",
            status=400,
        )
    return value


def _derived(stamp: int, signature: str) -> str:
    return "sig-" + hashlib.sha256(f"{stamp}:{signature}".encode()).hexdigest()


def verify(
    spec: WebhookEndpoint,
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> Verified:
    """Check one delivery to ``spec``'s endpoint; ``headers`` in any case, ``now`` in Unix
    seconds. Raises :class:`WebhookRefusedError` (401, or 400 for a malformed delivery id)."""
    headers = canonical_headers(headers)
    given_id = _delivery_id(spec, headers)
    if spec.verifier == "token":
        header = str(spec.token_header)
        token = _header(headers, header, "missing_token", "token")
        if not hmac.compare_digest(token.encode(), secret):
            raise WebhookRefusedError(
                "wrong_token", f"the token in {header} is not the endpoint's secret"
            )
        return Verified(given_id, None)
    if spec.verifier == "github":
        header = "X-Hub-Signature-256"
        given = _header(headers, header, "missing_signature", "signature")
        _check_signature(
            given, _digest(secret, body), prefix="sha256=", encoding="hex", header=header
        )
        return Verified(given_id, None)
    if spec.verifier == "hmac":
        header = str(spec.signature_header)
        given = _header(headers, header, "missing_signature", "signature")
        _check_signature(
            given,
            _digest(secret, body),
            prefix=spec.prefix or "",
            encoding=spec.encoding or "hex",
            header=header,
        )
        return Verified(given_id, None)
    if spec.verifier == "slack":
        header, stamp_header, prefix, encoding = (
            "X-Slack-Signature",
            "X-Slack-Request-Timestamp",
            "v0=",
            "hex",
        )
    else:  # hmac-timestamped
        header, stamp_header = str(spec.signature_header), str(spec.timestamp_header)
        prefix, encoding = spec.prefix or "", spec.encoding or "hex"
    given = _header(headers, header, "missing_signature", "signature")
    stamp_text = _header(headers, stamp_header, "missing_timestamp", "timestamp")
    message = (
        b"v0:" + stamp_text.encode() + b":" + body
        if spec.verifier == "slack"
        else stamp_text.encode() + b"." + body
    )
    _check_signature(
        given, _digest(secret, message), prefix=prefix, encoding=encoding, header=header
    )
    stamp = _timestamp(stamp_text, stamp_header, now, _window(spec))
    if given_id is not None:
        return Verified(given_id, stamp)
    return Verified(_derived(stamp, given), stamp, derived=True)


def sign(
    spec: WebhookEndpoint,
    secret: bytes,
    body: bytes,
    *,
    now: float,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """The headers a genuine sender would send with ``body`` (what :func:`verify` accepts)."""
    headers: dict[str, str] = {}
    stamp = str(int(now))

    def encoded(digest: bytes) -> str:
        if (spec.encoding or "hex") == "base64":
            return base64.b64encode(digest).decode()
        return digest.hex()

    if spec.verifier == "token":
        headers[str(spec.token_header)] = secret.decode()
    elif spec.verifier == "github":
        headers["X-Hub-Signature-256"] = "sha256=" + _digest(secret, body).hex()
    elif spec.verifier == "hmac":
        headers[str(spec.signature_header)] = (spec.prefix or "") + encoded(_digest(secret, body))
    elif spec.verifier == "slack":
        digest = _digest(secret, b"v0:" + stamp.encode() + b":" + body)
        headers["X-Slack-Request-Timestamp"] = stamp
        headers["X-Slack-Signature"] = "v0=" + digest.hex()
    else:
        digest = _digest(secret, stamp.encode() + b"." + body)
        headers[str(spec.timestamp_header)] = stamp
        headers[str(spec.signature_header)] = (spec.prefix or "") + encoded(digest)
    id_header = spec.delivery_id_header or (
        "X-GitHub-Delivery" if spec.verifier == "github" else None
    )
    if delivery_id is not None and id_header is not None:
        headers[id_header] = delivery_id
    return headers


def safe_headers(spec: WebhookEndpoint, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping with a delivery and showing the plugin: lower-case names,
    without the request's credentials (the endpoint's signature or token header, cookies,
    authorization) or the transport's own, capped in number and length."""
    secret_headers = {
        h.lower() for h in (spec.signature_header, spec.token_header) if h is not None
    }
    kept: dict[str, str] = {}
    for name, value in canonical_headers(headers).items():
        if name in _NEVER_KEPT or name in secret_headers:
            continue
        if len(kept) >= MAX_KEPT_HEADERS:
            break
        kept[name] = value[:MAX_KEPT_HEADER_CHARS]
    return kept
