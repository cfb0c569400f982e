"""Signing a webhook body as a real sender would, so authors test an endpoint end to end."""

from __future__ import annotations

import time
from typing import Any

from plugport.host.inbound.verifiers import sign
from plugport.manifest import WebhookEndpoint

__all__ = ["sign_webhook"]

_ALIASES = {"window_s": "window-seconds"}


def sign_webhook(
    verifier: str,
    secret: str | bytes,
    body: bytes | str,
    *,
    now: float | None = None,
    delivery_id: str | None = None,
    **options: Any,
) -> dict[str, str]:
    """The headers a genuine sender sends with ``body`` for an endpoint with this ``verifier``
    and ``options`` (as in ``[webhooks.NAME]``, with underscores: ``signature_header``,
    ``timestamp_header``, ``prefix``, ``encoding``, ``token_header``,
    ``delivery_id_header``). ``now`` (Unix seconds) dates timestamped signatures; e.g.
    ``sign_webhook("github", "s3cret", body, delivery_id="d-1")``."""
    fields = {_ALIASES.get(k, k.replace("_", "-")): v for k, v in options.items()}
    spec = WebhookEndpoint.model_validate({"verifier": verifier, "secret": "secret", **fields})
    key = secret.encode() if isinstance(secret, str) else secret
    raw = body.encode() if isinstance(body, str) else body
    return sign(spec, key, raw, now=time.time() if now is None else now, delivery_id=delivery_id)
