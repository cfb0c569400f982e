"""``mail.send``: the pure decisions (addresses, recipient patterns, header injection, the
message the host builds, the hourly window), the SMTP transport against a real relay on
127.0.0.1 (``aiosmtpd`` with STARTTLS and AUTH), and a real plugin in a real worker sending
through it. The relay's password is searched for in every output."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from plugport._engines import required_plugport
from plugport._mail_addresses import check_address, check_recipient_pattern, match_recipient
from plugport._permissions import describe_permissions, permissions_beyond, refusal
from plugport.errors import (
    InvalidInputError,
    MailDeliveryError,
    ManifestError,
    PlugportError,
    ResourceLimitExceededError,
)
from plugport.manifest import Permissions, parse_manifest
from plugport.runtime.capabilities._mail_rules import (
    MAX_MESSAGE_BYTES,
    check_draft,
    compose,
    decide_rate,
    encoded,
)
from plugport.runtime.capabilities._secret_source import MemorySecrets
from plugport.runtime.capabilities.mail import (
    HOST_SCOPE,
    Mailer,
    MailOptions,
    MailRelay,
    SentMessage,
    SmtpTransport,
)
from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner
from plugport.testing._world import World
from tests.runtime._smtp import PASSWORD, SENDER, USER, Relay, free_port
from tests.testing._plugins import write_plugin

PLUGIN = "acme.mailer"

# --- pure: addresses and patterns ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ops@example.com\r\nBcc: x@evil.com", "control character"),
        ("ops@example.com\nX: y", "control character"),
        ("Ops <ops@example.com>", "not an email address"),
        ("ops", "not an email address"),
        ("ops@localhost", "no valid domain"),
        ("ops@[127.0.0.1]", "no valid domain"),
        ("ops@10.0.0.1", "IP address"),
        ("öps@example.com", "plain ASCII"),
        ("a..b@example.com", "not an email address"),
        (42, "must be a string"),
    ],
)
def test_an_address_is_a_bare_ascii_addr_spec(value: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_address(value)


def test_an_address_keeps_its_local_part_and_lowercases_its_domain() -> None:
    assert check_address(" Ops.Team+x@Example.COM ") == "Ops.Team+x@example.com"


@pytest.mark.parametrize("pattern", ["*", "*@*", "*@*.example.com", "o*s@example.com", "*@com"])
def test_a_pattern_never_admits_everyone(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"too broad|not a recipient pattern|no valid domain"):
        check_recipient_pattern(pattern)


def test_patterns_match_one_domain_or_one_address() -> None:
    assert check_recipient_pattern("*@Example.com") == "*@example.com"
    assert match_recipient("*@example.com", "anyone@EXAMPLE.com")
    assert not match_recipient("*@example.com", "x@sub.example.com")
    assert not match_recipient("*@example.com", "x@example.com.evil.org")
    assert match_recipient("ops@example.org", "OPS@example.org")
    assert not match_recipient("ops@example.org", "ops2@example.org")


def test_the_manifest_takes_mail_to_and_per_hour_and_raises_the_engine() -> None:
    head = 'name = "acme.mm"\nversion = "1.0.0"\nentry = "main:Main"\n'
    manifest = parse_manifest(
        head + '[permissions]\nmail.to = ["*@example.com", "ops@example.org"]\nmail.per_hour = 20\n'
    )
    assert manifest.permissions.mail.to == ["*@example.com", "ops@example.org"]
    assert manifest.permissions.mail.per_hour == 20
    with pytest.raises(ManifestError, match=r"permissions.mail.to.*too broad"):
        parse_manifest(head + '[permissions]\nmail.to = ["*@*"]\n')
    with pytest.raises(ManifestError, match=r"per_hour limits mail to the recipients"):
        parse_manifest(head + "[permissions]\nmail.per_hour = 5\n")
    assert required_plugport({"permissions": {"mail": {"to": ["*@a.com"]}}}) == (
        "0.2",
        ["permissions.mail"],
    )
    assert required_plugport({"permissions": {"network": ["a.com"]}}) is None


# --- pure: the permission rule ------------------------------------------------------------------

GRANTED = Permissions.model_validate({"mail": {"to": ["*@example.com", "ops@example.org"]}})


def test_every_recipient_to_and_cc_must_match() -> None:
    ok = {"to": ["a@example.com"], "cc": ["ops@example.org"]}
    assert refusal(GRANTED, "mail", "send", ok) == ""
    assert refusal(GRANTED, "mail", "send", {"to": "a@example.com", "cc": ()}) == ""
    why = refusal(GRANTED, "mail", "send", {"to": ["a@example.com"], "cc": ["x@evil.org"]})
    assert "'x@evil.org' matches no granted recipient pattern" in why
    assert "permissions.mail.to: *@example.com, ops@example.org" in why
    assert "none granted" in refusal(Permissions(), "mail", "send", {"to": "a@example.com"})
    with pytest.raises(InvalidInputError, match=r"to: .*control character"):
        refusal(GRANTED, "mail", "send", {"to": "a@example.com\r\nBcc: x@evil.org"})
    with pytest.raises(InvalidInputError, match=r"to names no recipient"):
        refusal(GRANTED, "mail", "send", {"to": []})
    with pytest.raises(InvalidInputError, match=r"at most 50 per message"):
        refusal(GRANTED, "mail", "send", {"to": [f"u{i}@example.com" for i in range(51)]})


def test_consent_and_the_diff_show_mail() -> None:
    wider = Permissions.model_validate({"mail": {"to": ["*@example.com", "*@evil.org"]}})
    assert permissions_beyond(GRANTED, wider) == ["mail to '*@evil.org'"]
    narrower = Permissions.model_validate({"mail": {"to": ["boss@example.com"]}})
    assert permissions_beyond(GRANTED, narrower) == []
    faster = Permissions.model_validate({"mail": {"to": ["*@example.com"], "per_hour": 9}})
    assert permissions_beyond(GRANTED, faster) == ["mail.per_hour 9 > the host default"]
    assert describe_permissions(faster) == [
        "Send email (from the host's address) to: *@example.com, up to 9 messages an hour"
    ]


# --- pure: the message --------------------------------------------------------------------------


def _draft(**change: Any) -> Any:
    arguments: dict[str, Any] = {
        "to": ["a@example.com"],
        "cc": [],
        "subject": "Build failed",
        "text": "The build failed.",
        "html": None,
        "reply_to": None,
        "headers": None,
    } | change
    return check_draft(**arguments)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"subject": "Hi\r\nBcc: x@evil.org"}, "subject contains a line break"),
        ({"subject": "Hi\nX: y"}, "subject contains a line break"),
        ({"headers": {"X-Ticket": "1\r\nBcc: x@evil.org"}}, "header 'X-Ticket' contains a line"),
        ({"headers": {"X-Bad\r\nBcc": "x"}}, "is not a header name"),
        ({"headers": {"From": "boss@example.com"}}, "header 'From' is set by the host"),
        ({"headers": {"bcc": "x@evil.org"}}, "header 'bcc' is set by the host"),
        ({"headers": {"Sender": "x@evil.org"}}, "is set by the host"),
        ({"headers": {"X-Plugport-Plugin": "acme.other"}}, "is set by the host"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
        ({"reply_to": "x@evil.org\r\nBcc: y@evil.org"}, "reply_to: .*control character"),
        ({"subject": 5}, "subject must be text"),
        ({"text": b"bytes"}, "text must be text"),
        ({"subject": "x" * 501}, "longer than 500"),
    ],
)
def test_nothing_a_plugin_passes_reaches_a_header_unchecked(
    change: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidInputError, match=why):
        _draft(**change)


def test_the_host_builds_the_message_from_its_own_sender() -> None:
    draft = _draft(
        cc=["ops@example.org"],
        html="<p>The build <b>failed</b>.</p>",
        reply_to="team@example.com",
        headers={"X-Ticket": "42", "In-Reply-To": "<a@b>"},
        subject="Échec du build",
    )
    message = compose(
        draft, sender=SENDER, plugin=PLUGIN, message_id="<1@example.com>", now=0, name=PLUGIN
    )
    assert message["From"] == f'"{PLUGIN}" <{SENDER}>'
    assert (message["To"], message["Cc"]) == ("a@example.com", "ops@example.org")
    assert message["Reply-To"] == "team@example.com"
    assert message["Message-ID"] == "<1@example.com>"
    assert message["X-Plugport-Plugin"] == PLUGIN
    assert message["X-Ticket"] == "42"
    assert message["Subject"] == "Échec du build"
    data = encoded(message, PLUGIN)
    assert data.isascii()  # 7-bit: any relay takes it
    assert b"\r\n" in data
    assert draft.recipients == ["a@example.com", "ops@example.org"]
    assert draft.domains == ["example.com", "example.org"]


def test_a_message_over_the_size_cap_is_refused() -> None:
    draft = _draft(text="é" * 400_000)  # 800 KB of UTF-8, more once encoded in 7 bits
    message = compose(draft, sender=SENDER, plugin=PLUGIN, message_id="<1@x.com>", now=0)
    with pytest.raises(InvalidInputError, match=r"at most 1048576 \(1024 KiB\)"):
        encoded(message, PLUGIN, MAX_MESSAGE_BYTES)


def test_the_hourly_window_slides() -> None:
    assert decide_rate([], 2, 100.0).allowed
    assert decide_rate([0.0], 2, 100.0).allowed
    refused = decide_rate([0.0, 50.0], 2, 100.0)
    assert (refused.allowed, refused.sent, refused.retry_after_s) == (False, 2, 3500.0)
    assert decide_rate([0.0, 50.0], 2, 3600.0).allowed  # the first left the window


def test_a_relay_with_a_password_needs_starttls_and_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"\[mail\]: a username needs starttls = true"):
        MailRelay("smtp.example.com", SENDER, username="u", password_secret="p", starttls=False)  # noqa: S106
    with pytest.raises(InvalidInputError, match=r"\[mail\]: from: 'nobody'"):
        MailRelay("smtp.example.com", "nobody")
    with pytest.raises(InvalidInputError, match=r"username and password-secret go together"):
        MailRelay("smtp.example.com", SENDER, username="u")


# --- the SMTP transport against a real relay ----------------------------------------------------


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    server = Relay(tmp_path / "tls")
    yield server
    server.stop()


def _relay_config(relay: Relay, **change: Any) -> MailRelay:
    config = MailRelay(
        host="127.0.0.1",
        port=relay.port,
        sender=SENDER,
        username=USER,
        password_secret="smtp",  # noqa: S106 - the secret's name, not its value
        cafile=relay.cert,
        timeout_s=5,
    )
    return replace(config, **change)


def _send(config: MailRelay, password: str, recipients: list[str]) -> None:
    draft = _draft(to=recipients)
    message = compose(draft, sender=SENDER, plugin=PLUGIN, message_id="<m@example.com>", now=0)
    envelope = SentMessage(PLUGIN, SENDER, tuple(draft.recipients), message)
    asyncio.run(SmtpTransport().send(config, password.encode(), envelope, encoded(message, "")))


def test_the_transport_uses_starttls_and_auth(relay: Relay) -> None:
    _send(_relay_config(relay), PASSWORD, ["a@example.com", "b@example.com"])
    [received] = relay.messages
    assert (received.tls, received.login, received.sender) == (True, USER, SENDER)
    assert received.recipients == ["a@example.com", "b@example.com"]
    assert received.message["Subject"] == "Build failed"


def _failure(config: MailRelay, password: str, recipients: list[str]) -> MailDeliveryError:
    with pytest.raises(MailDeliveryError) as caught:
        _send(config, password, recipients)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in json.dumps(vars(caught.value))
    return caught.value


def test_relay_failures_are_translated_naming_the_relay_never_the_password(
    relay: Relay, tmp_path: Path
) -> None:
    config = _relay_config(relay)
    wrong = _failure(config, "not-the-password", ["a@example.com"])
    assert (wrong.kind, wrong.code, wrong.relay) == ("auth", 535, f"127.0.0.1:{relay.port}")
    assert "refused the login of user 'relay-user'" in str(wrong)
    assert "plugport secret set _host smtp" in str(wrong)

    bounced = _failure(config, PASSWORD, ["a@example.com", "bounce@example.com"])
    assert (bounced.kind, bounced.code) == ("refused", 550)
    assert "refused recipient 'bounce@example.com'" in str(bounced)
    assert "nothing was sent" in str(bounced)

    later = _failure(config, PASSWORD, ["later@example.com"])
    assert (later.kind, later.code) == ("temporary", 451)
    assert "try again later" in str(later)
    assert relay.messages == []  # a refused recipient sends to nobody

    untrusted = _failure(replace(config, cafile=None), PASSWORD, ["a@example.com"])
    assert untrusted.kind == "tls"
    assert "certificate did not verify" in str(untrusted)

    down = _failure(replace(config, port=free_port()), PASSWORD, ["a@example.com"])
    assert down.kind == "unreachable"
    assert "connection refused; check [mail] host and port" in str(down)
    assert relay.messages == []


def test_a_reply_that_echoes_the_password_loses_it() -> None:
    from plugport.runtime.capabilities._mailer import _clean

    assert _clean(f"bad {PASSWORD}".encode(), PASSWORD.encode(), USER) == "bad [redacted]"


# --- a real plugin in a real worker -------------------------------------------------------------

SENDING = """
class Main(Plugin):
    @command("m.send")
    async def send(self, to, subject="Build failed", text="The build failed.", **options):
        return await self.api.mail.send(to, subject, text, **options)

    @command("m.try")
    async def attempt(self, to, subject="Hi", text="Body", **options):
        try:
            return await self.api.mail.send(to, subject, text, **options)
        except Exception as exc:
            return {"type": type(exc).__name__, "message": str(exc),
                    "kind": getattr(exc, "kind", None), "limit": getattr(exc, "limit", None)}
"""

MANIFEST = """
[permissions]
mail.to = ["*@example.com", "ops@example.org"]
mail.per_hour = 3

[contributes]
commands = [{ id = "m.send", title = "Send" }, { id = "m.try", title = "Try" }]
"""


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture
def world(runner: Runner, tmp_path: Path) -> Iterator[World]:
    world = World(runner, tmp_path / "home", "strict")
    yield world
    world.close()


@pytest.fixture
def mailer(world: World, relay: Relay, tmp_path: Path) -> PluginHandle:
    services = world.runtime.services
    services.mail = Mailer(MailOptions(relay=_relay_config(relay)))
    assert isinstance(services.secrets, MemorySecrets)
    services.secrets.set(HOST_SCOPE, "smtp", PASSWORD.encode())
    return world.load(write_plugin(tmp_path / "plugins", PLUGIN, SENDING, MANIFEST))


@pytest.mark.slow
def test_a_plugin_sends_through_the_relay_from_the_operators_address(
    mailer: PluginHandle, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message_id = mailer.command(
        "m.send",
        ["dev@example.com"],
        cc=["ops@example.org"],
        html="<p>failed</p>",
        headers={"X-Build": "77"},
    )
    [received] = relay.messages
    assert (received.tls, received.login) == (True, USER)
    assert received.recipients == ["dev@example.com", "ops@example.org"]
    message: EmailMessage = received.message
    assert message["From"] == f'"{PLUGIN}" <{SENDER}>'
    assert message["Message-ID"] == message_id
    assert message["X-Build"] == "77"
    assert message.get_body(("plain",)).get_content().strip() == "The build failed."  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>failed</p>"  # type: ignore[union-attr]
    [audit] = [e for e in mailer.audit if e.kind == "mail"]
    assert audit.reason.startswith(f"sent: message {message_id} to 2 recipients")
    assert "at example.com, example.org through 127.0.0.1:" in audit.reason
    assert "dev@" not in audit.reason  # no local part
    assert "failed" not in audit.reason  # no body
    assert PASSWORD not in caplog.text


@pytest.mark.slow
def test_refusals_from_a_real_worker(
    mailer: PluginHandle, relay: Relay, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outside = mailer.command("m.try", ["dev@example.com", "ceo@evil.org"])
    assert outside["type"] == "PermissionDeniedError"
    assert "'ceo@evil.org' matches no granted recipient pattern" in outside["message"]
    assert 'mail.to = ["*@evil.org", "*@example.com"]' in outside["message"]  # the fix

    injected = mailer.command("m.try", ["dev@example.com"], subject="Hi\r\nBcc: x@evil.org")
    assert injected["type"] == "InvalidInputError"
    assert "line break" in injected["message"]
    smuggled = mailer.command("m.try", "dev@example.com\r\nBcc: x@evil.org")
    assert smuggled["type"] == "InvalidInputError"
    spoofed = mailer.command("m.try", ["dev@example.com"], headers={"From": "ceo@example.com"})
    assert "is set by the host" in spoofed["message"]

    bounced = mailer.command("m.try", ["bounce@example.com"])
    assert (bounced["type"], bounced["kind"]) == ("MailDeliveryError", "refused")
    assert relay.messages == []  # nothing refused went out

    world.runtime.services.secrets.set(HOST_SCOPE, "smtp", b"wrong")  # type: ignore[attr-defined]
    wrong = mailer.command("m.try", ["dev@example.com"])
    assert (wrong["type"], wrong["kind"]) == ("MailDeliveryError", "auth")
    assert "plugport secret set _host smtp" in wrong["message"]

    outputs = json.dumps([outside, injected, smuggled, spoofed, bounced, wrong])
    outputs += caplog.text + json.dumps([e.reason for e in mailer.audit])
    assert PASSWORD not in outputs
    assert relay.messages == []


@pytest.mark.slow
def test_the_hourly_limit_names_itself(mailer: PluginHandle, relay: Relay) -> None:
    for _ in range(3):
        mailer.command("m.send", ["dev@example.com"])
    over = mailer.command("m.try", ["dev@example.com"])
    assert (over["type"], over["limit"]) == ("ResourceLimitExceededError", "mail_per_hour")
    assert "3 messages in the last hour, the limit is 3" in over["message"]
    assert len(relay.messages) == 3


@pytest.mark.slow
def test_no_relay_configured_names_the_config(world: World, tmp_path: Path) -> None:
    handle = world.load(write_plugin(tmp_path / "plugins", PLUGIN, SENDING, MANIFEST))
    handle.mail.unconfigure()
    answer = handle.command("m.try", ["dev@example.com"])
    assert (answer["type"], answer["kind"]) == ("MailDeliveryError", "unconfigured")
    assert "[mail] host and from in HOME/policy.toml" in answer["message"]


def test_errors_are_plugport_errors() -> None:
    assert issubclass(MailDeliveryError, PlugportError)
    assert issubclass(ResourceLimitExceededError, PlugportError)


# --- the operator's configuration ---------------------------------------------------------------


def test_policy_toml_mail_reaches_the_runtime(tmp_path: Path) -> None:
    from plugport.cli._hostcommon import _mail
    from plugport.host import PluginHost

    home = tmp_path / "home"
    home.mkdir()
    assert _mail(home) is None
    (home / "policy.toml").write_text(
        '[mail]\nhost = "smtp.example.com"\nport = 2525\nusername = "u"\n'
        'password-secret = "smtp"\nfrom = "plugport@example.com"\nmax_per_hour = 7\n'
    )
    relay = _mail(home)
    assert (relay.name, relay.sender, relay.password_secret) == (
        "smtp.example.com:2525",
        SENDER,
        "smtp",
    )
    host = PluginHost(app="t", app_version="1", home=home, mail=relay)
    assert host.supervisor.services.mail.relay == relay
    assert host.supervisor.services.mail.limit_for(None) == 7
    assert host.supervisor.services.mail.limit_for(50) == 7  # the operator's cap wins
    assert host.supervisor.services.mail.limit_for(3) == 3


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ('host = "smtp.example.com"', "needs from"),
        ('host = "smtp.example.com"\nfrom = "x@example.com"\npassword = "p"', "no key 'password'"),
        ('host = "smtp.example.com"\nfrom = "x@example.com"\nport = "25"', "port = '25' has"),
        ('host = "s.example.com"\nfrom = "x@example.com"\nusername = "u"', "go together"),
    ],
)
def test_a_bad_mail_table_names_the_file_and_the_key(tmp_path: Path, table: str, why: str) -> None:
    from plugport.cli._hostcommon import _mail

    (tmp_path / "policy.toml").write_text(f"[mail]\n{table}\n")
    with pytest.raises(InvalidInputError, match=why) as caught:
        _mail(tmp_path)
    assert "policy.toml" in str(caught.value)


def test_the_host_service_has_the_same_settings() -> None:
    from pydantic import ValidationError

    from plugport.host.service.settings import HostServiceSettings

    settings = HostServiceSettings(mail_host="smtp.example.com", mail_from=SENDER)
    assert settings.mail_relay() == MailRelay("smtp.example.com", SENDER)
    assert HostServiceSettings().mail_relay() is None
    with pytest.raises(ValidationError, match=r"mail settings: from"):
        HostServiceSettings(mail_host="smtp.example.com")


# --- the fake plugin authors test with ----------------------------------------------------------


@pytest.mark.slow
def test_the_fake_keeps_an_outbox_with_the_same_checks(world: World, tmp_path: Path) -> None:
    from plugport.runtime.capabilities.fakes import FAKE_SENDER

    handle = world.load(write_plugin(tmp_path / "plugins", PLUGIN, SENDING, MANIFEST))
    message_id = handle.command("m.send", "dev@example.com", subject="Deployed")
    [message] = handle.mail.outbox
    assert message["Message-ID"] == message_id
    assert (message["To"], message["Subject"]) == ("dev@example.com", "Deployed")
    assert message["From"] == f'"{PLUGIN}" <{FAKE_SENDER}>'
    assert message.get_body(("plain",)).get_content().strip() == "The build failed."
    handle.assert_only_declared()  # mail.send is granted by mail.to, whatever the recipients
    denied = handle.command("m.try", "ceo@evil.org")
    assert denied["type"] == "PermissionDeniedError"
    injected = handle.command("m.try", "dev@example.com", subject="a\nBcc: ceo@evil.org")
    assert injected["type"] == "InvalidInputError"
    handle.mail.limit(1)
    over = handle.command("m.try", "dev@example.com")
    assert over["limit"] == "mail_per_hour"
    assert len(handle.mail.outbox) == 1
