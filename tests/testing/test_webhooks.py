"""Webhooks as an author tests them with the ``plugin`` fixture (pytester, real sandbox):
``plugport.testing.sign_webhook`` signs a body for each verifier, ``PluginHandle.webhook(...,
secret=...)`` checks it as the host would and hands it to the ``@webhook`` handler; a wrong
secret is refused before the handler runs."""

from __future__ import annotations

import textwrap

import pytest

from tests.testing._plugins import kit_args, write_plugin

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.slow

HOOKS = """
from plugport.sdk import webhook


class Main(Plugin):
    async def _seen(self, event):
        count = int(await self.api.storage.get("count", 0)) + 1
        await self.api.storage.set("count", count)
        return {
            "n": event.json()["n"],
            "headers": sorted(event.headers),
            "delivery_id": event.delivery_id,
            "count": count,
        }

    @webhook("gh")
    async def gh(self, event):
        return await self._seen(event)

    @webhook("sl")
    async def sl(self, event):
        return await self._seen(event)

    @webhook("mac")
    async def mac(self, event):
        return await self._seen(event)

    @webhook("ts")
    async def ts(self, event):
        return await self._seen(event)

    @webhook("tok")
    async def tok(self, event):
        return await self._seen(event)
"""
HOOKS_MANIFEST = """
[permissions]
storage = "1 KiB"

[webhooks.gh]
verifier = "github"
secret = "shared"

[webhooks.sl]
verifier = "slack"
secret = "shared"

[webhooks.mac]
verifier = "hmac"
secret = "shared"
signature-header = "X-Sig"
prefix = "sha256="
encoding = "base64"

[webhooks.ts]
verifier = "hmac-timestamped"
secret = "shared"
signature-header = "X-Sig"
timestamp-header = "X-Ts"
delivery-id-header = "X-Id"

[webhooks.tok]
verifier = "token"
secret = "shared"
token-header = "X-Token"
"""
AUTHOR_TESTS = """
import json
import time

import pytest

from plugport.errors import WebhookRefusedError
from plugport.testing import sign_webhook

SECRET = "s3cret-for-tests"
CASES = [
    ("gh", "github", {}, "x-hub-signature-256", "d-1"),
    ("sl", "slack", {}, "x-slack-signature", None),
    ("mac", "hmac", {"signature_header": "X-Sig", "prefix": "sha256=", "encoding": "base64"},
     "x-sig", None),
    ("ts", "hmac-timestamped", {"signature_header": "X-Sig", "timestamp_header": "X-Ts",
     "delivery_id_header": "X-Id"}, "x-sig", "d-1"),
    ("tok", "token", {"token_header": "X-Token"}, "x-token", None),
]


@pytest.mark.parametrize(("endpoint", "verifier", "options", "secret_header", "given_id"), CASES)
def test_a_signed_delivery_reaches_the_handler(
    plugin, endpoint, verifier, options, secret_header, given_id
):
    raw = json.dumps({"n": 5})
    headers = sign_webhook(verifier, SECRET, raw, delivery_id="d-1", **options)
    headers["X-Event"] = "ping"
    got = plugin.webhook(endpoint, raw, headers, secret=SECRET)
    assert got["n"] == 5
    assert got["count"] == 1
    assert "x-event" in got["headers"]
    assert secret_header not in got["headers"]
    if given_id is not None:
        assert got["delivery_id"] == given_id
    elif verifier == "slack":
        assert got["delivery_id"].startswith("sig-")  # derived from the signed timestamp
    else:
        assert got["delivery_id"] is None
    assert plugin.storage.data == {"count": 1}


@pytest.mark.parametrize(("endpoint", "verifier", "options", "secret_header", "given_id"), CASES)
def test_a_wrong_secret_is_refused_before_the_handler(
    plugin, endpoint, verifier, options, secret_header, given_id
):
    raw = json.dumps({"n": 6})
    headers = sign_webhook(verifier, "not-the-secret", raw, **options)
    with pytest.raises(WebhookRefusedError):
        plugin.webhook(endpoint, raw, headers, secret=SECRET)
    assert plugin.storage.data == {}


def test_a_stale_slack_signature_is_refused(plugin):
    raw = json.dumps({"n": 7})
    headers = sign_webhook("slack", SECRET, raw, now=time.time() - 3600)
    with pytest.raises(WebhookRefusedError, match="window"):
        plugin.webhook("sl", raw, headers, secret=SECRET)
    assert plugin.storage.data == {}


def test_without_a_secret_nothing_is_checked(plugin):
    got = plugin.webhook("gh", {"n": 8}, {"X-Hub-Signature-256": "sha256=00"}, delivery_id="x")
    assert (got["n"], got["delivery_id"], got["headers"]) == (8, "x", [])
"""


def test_sign_webhook_and_the_handle_with_each_verifier(pytester: pytest.Pytester) -> None:
    root = write_plugin(pytester.path, "acme.hooks", HOOKS, HOOKS_MANIFEST)
    tests = root / "tests"
    tests.mkdir()
    (tests / "test_hooks.py").write_text(textwrap.dedent(AUTHOR_TESTS))
    result = pytester.runpytest_subprocess(*kit_args(), "-q", "-p", "no:cacheprovider", root)
    result.assert_outcomes(passed=12)
