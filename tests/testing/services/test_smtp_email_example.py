"""The e-mail example (``examples/email``) through a real SMTP relay (aiosmtpd with STARTTLS and
AUTH, the mail capability's own test relay): the MIME that arrives is what a mail client gets —
a multipart/alternative with a plain and an HTML part, the host's From, the headers the plugin
adds, the Markdown rendered and the payload's HTML escaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugport.runtime.capabilities._mailer import HOST_SCOPE, Mailer, MailOptions, MailRelay
from plugport.runtime.capabilities._secret_source import MemorySecrets
from plugport.testing._runner import Runner
from plugport.testing._world import World
from tests.runtime._smtp import PASSWORD, SENDER, USER, Relay

EXAMPLE = Path(__file__).parents[3] / "examples" / "email"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    server = Relay(tmp_path / "tls")
    yield server
    server.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    runner = Runner()
    world = World(runner, tmp_path / "home", "strict")
    yield world
    world.close()
    runner.close()


@pytest.mark.slow
def test_the_example_sends_a_multipart_message_through_smtp(world: World, relay: Relay) -> None:
    services = world.runtime.services
    services.mail = Mailer(
        MailOptions(
            relay=MailRelay(
                host="127.0.0.1",
                port=relay.port,
                sender=SENDER,
                username=USER,
                password_secret="smtp",  # noqa: S106 - the secret's name, not its value
                cafile=relay.cert,
                timeout_s=5,
            )
        )
    )
    assert isinstance(services.secrets, MemorySecrets)
    services.secrets.set(HOST_SCOPE, "smtp", PASSWORD.encode())
    handle = world.load(
        EXAMPLE, config={"to": ["team@example.com"], "errors_to": ["oncall@example.com"]}
    )
    payload = {
        "source": "sentry",
        "title": "<script>alert(1)</script> in checkout",
        "text": "TypeError in **checkout.js**\n\n- 41 events\n- 3 users",
        "url": "https://sentry.io/organizations/acme/issues/1/",
        "severity": "error",
        "fields": {"Project": "web", "Release": "2.4.1"},
    }
    handle.emit("notify.sentry", payload)

    [received] = relay.messages
    assert (received.tls, received.login, received.sender) == (True, USER, SENDER)
    assert received.recipients == ["team@example.com", "oncall@example.com"]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == f'"plugport.email" <{SENDER}>'
    assert message["To"] == "team@example.com, oncall@example.com"
    assert message["Subject"] == "[sentry] <script>alert(1)</script> in checkout"
    assert message["Auto-Submitted"] == "auto-generated"
    assert (message["X-Plugport-Source"], message["X-Plugport-Severity"]) == ("sentry", "error")
    assert message["X-Plugport-Plugin"] == "plugport.email"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None
    assert rich is not None
    # SMTP carries CRLF line ends; a mail client shows lines.
    text, html = (part.get_content().replace("\r\n", "\n") for part in (plain, rich))
    assert text.startswith("<script>alert(1)</script> in checkout\n\nTypeError in **checkout.js**")
    assert "Project: web\nRelease: 2.4.1" in text
    assert text.endswith("\n-- \nSent by Plugport from sentry (error).\n")  # the signature
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; in checkout</h2>" in html
    assert "<strong>checkout.js</strong>" in html
    assert "<li>41 events</li>" in html
    assert "border-left: 6px solid #d0342c" in html  # the error colour
    assert '<a href="https://sentry.io/organizations/acme/issues/1/">Open in sentry</a>' in html

    sent = handle.command("email.send_test", to="me@example.com")
    assert relay.messages[-1].message["Message-ID"] == sent["message_id"]
    assert relay.messages[-1].recipients == ["me@example.com"]
