"""The CLI's registry requests share one verifying TLS context per process (httpx would load
certifi's bundle for every request's client): still verifying, made once, and made again
when the CA settings in the environment change."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from plugport import _tls
from plugport.cli._registry import Connection
from plugport.errors import InvalidInputError
from tests.registry._https_site import Answer, https_site


@pytest.fixture(autouse=True)
def _fresh_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tls, "_KEPT", {})
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_requests_share_one_context_that_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    real = httpx.create_ssl_context

    def counting(*args: object, **kwargs: object) -> object:
        made.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    with https_site(tmp_path, ["127.0.0.1"]) as site:
        site.answers[("127.0.0.1", "/api/v1/ping")] = Answer(
            body=json.dumps({"ok": True}).encode(), headers={"content-type": "application/json"}
        )
        url = f"https://{site.endpoint()}"
        # a registry whose certificate nothing trusts is refused, however the context is kept
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(InvalidInputError, match="CERTIFICATE_VERIFY_FAILED"):
            Connection(url, None).call("GET", "/api/v1/ping")
        # trusted through SSL_CERT_FILE: a new context for the new setting, then reused
        monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
        for _ in range(3):
            assert Connection(url, None).call("GET", "/api/v1/ping") == {"ok": True}
    assert len(made) == 2  # one per CA setting, not one per request
    assert _tls.default_context() is _tls.default_context()
    assert _tls.default_context(trust_env=False) is not _tls.default_context()
