"""The host's mail service: the operator's relay (:class:`MailRelay`), the one-method boundary
that hands a message over (:class:`MailTransport`, with :class:`MemoryMailTransport` for tests
and :class:`SmtpTransport`, ``smtplib`` with STARTTLS and AUTH, run in a thread), and each
plugin's hourly count (:class:`Mailer`).

Every ``smtplib``, ``ssl`` and socket error is translated in :func:`_translated` into a
:class:`~plugport.errors.MailDeliveryError` that names the relay and what to fix; the relay's
password is never in it (a reply that echoes it loses it).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from plugport._mail_addresses import check_address
from plugport.errors import (
    InvalidInputError,
    MailDeliveryError,
    MailFailure,
    ResourceLimitExceededError,
)
from plugport.runtime.capabilities._mail_rules import MAX_MESSAGE_BYTES, decide_rate
from plugport.runtime.capabilities._secret_source import HOST_SCOPE

__all__ = [
    "HOST_SCOPE",
    "MailOptions",
    "MailRelay",
    "MailTransport",
    "Mailer",
    "MemoryMailTransport",
    "SentMessage",
    "SmtpTransport",
]

DEFAULT_MAX_PER_HOUR = 100


@dataclass(frozen=True)
class MailRelay:
    """The operator's SMTP relay (``[mail]`` in ``HOME/policy.toml``, or the host service's
    ``mail_*`` settings). Sending always uses STARTTLS with certificate verification unless
    ``starttls`` is off, and then never with a password."""

    host: str
    sender: str
    """The ``From`` address of every message (``from`` in the policy)."""
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password_secret: str | None = None
    """The name of the relay's password in the secrets store, scope :data:`HOST_SCOPE`."""
    max_per_hour: int = DEFAULT_MAX_PER_HOUR
    """Each plugin's messages per hour: the default, and the cap on ``mail.per_hour``."""
    plugin_name_in_from: bool = True
    """Show the plugin's name as the ``From`` display name (the address stays ``sender``)."""
    cafile: Path | None = None
    """CA certificates to trust for the relay instead of the system's (a private CA)."""
    timeout_s: float = 30.0
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        wrong = []
        if not self.host or any(c in self.host for c in "/: \r\n"):
            wrong.append(f"host {self.host!r} is not a host name or address")
        if not 1 <= self.port <= 65535:
            wrong.append(f"port {self.port} is not 1-65535")
        try:
            check_address(self.sender)
        except ValueError as exc:
            wrong.append(f"from: {exc}")
        if (self.username is None) != (self.password_secret is None):
            wrong.append("username and password-secret go together (both or neither)")
        if self.username is not None and not self.starttls:
            wrong.append("a username needs starttls = true: the password would cross in clear")
        if not 1 <= self.max_per_hour <= 100_000:
            wrong.append(f"max_per_hour {self.max_per_hour} is not 1-100000")
        if self.timeout_s <= 0 or self.max_message_bytes < 1024:
            wrong.append("timeout_s must be > 0 and max_message_bytes >= 1024")
        if wrong:
            raise InvalidInputError("[mail]: " + "; ".join(wrong))

    @classmethod
    def from_policy(cls, table: Mapping[str, Any], where: str) -> MailRelay:
        """The relay from a ``[mail]`` table (``HOME/policy.toml``): ``host``, ``port``,
        ``starttls``, ``username``, ``password-secret``, ``from``, ``max_per_hour``,
        ``plugin_name_in_from``, ``cafile``, ``timeout_s``. An unknown key or a wrong type is an
        :class:`InvalidInputError` naming ``where`` and the key."""
        types: dict[str, tuple[str, type | tuple[type, ...]]] = {
            "host": ("host", str),
            "port": ("port", int),
            "starttls": ("starttls", bool),
            "username": ("username", str),
            "password-secret": ("password_secret", str),
            "from": ("sender", str),
            "max_per_hour": ("max_per_hour", int),
            "plugin_name_in_from": ("plugin_name_in_from", bool),
            "cafile": ("cafile", str),
            "timeout_s": ("timeout_s", (int, float)),
        }
        unknown = sorted(set(table) - set(types))
        if unknown:
            raise InvalidInputError(
                f"{where}: [mail] has no key {', '.join(map(repr, unknown))} "
                f"(keys: {', '.join(types)})"
            )
        missing = [key for key in ("host", "from") if key not in table]
        if missing:
            raise InvalidInputError(f"{where}: [mail] needs {' and '.join(missing)}")
        values: dict[str, Any] = {}
        for key, value in table.items():
            field_name, expected = types[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise InvalidInputError(f"{where}: [mail] {key} = {value!r} has the wrong type")
            values[field_name] = Path(str(value)) if key == "cafile" else value
        try:
            return cls(**values)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None

    @property
    def name(self) -> str:
        """How errors and audit lines name the relay."""
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context: the system's CAs, or only ``cafile``'s."""
        return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)


@dataclass(frozen=True)
class SentMessage:
    """One message to hand over: who sends it (the plugin; ``sender`` is the envelope's
    ``MAIL FROM``), to whom, and the message."""

    plugin: str
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


class MailTransport(Protocol):
    """Hands one composed message to the relay, or raises :class:`MailDeliveryError`."""

    async def send(
        self,
        relay: MailRelay,
        password: bytes | None,
        envelope: SentMessage,
        data: bytes,
    ) -> None: ...


class MemoryMailTransport:
    """A :class:`MailTransport` that keeps what it is given (``plugport.testing``)."""

    def __init__(self) -> None:
        self.outbox: list[SentMessage] = []

    async def send(
        self,
        relay: MailRelay,
        password: bytes | None,
        envelope: SentMessage,
        data: bytes,
    ) -> None:
        self.outbox.append(envelope)


class SmtpTransport:
    """A :class:`MailTransport` over ``smtplib``: connect, STARTTLS (verified), AUTH, then one
    ``MAIL FROM``, a ``RCPT TO`` per recipient and ``DATA``. A refused recipient resets the
    transaction before ``DATA``, so a message goes to all its recipients or to none."""

    async def send(
        self,
        relay: MailRelay,
        password: bytes | None,
        envelope: SentMessage,
        data: bytes,
    ) -> None:
        await asyncio.to_thread(
            _deliver, relay, password, envelope.plugin, data, list(envelope.recipients)
        )


class _Stage:
    """Where in the SMTP conversation an error happened, for its message."""

    def __init__(self) -> None:
        self.now = "connect"


def _deliver(
    relay: MailRelay, password: bytes | None, plugin: str, data: bytes, recipients: list[str]
) -> None:
    stage = _Stage()
    with _translated(relay, plugin, password, stage):
        smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_s)
        try:
            stage.now = "greeting"
            smtp.ehlo()
            if relay.starttls:
                stage.now = "starttls"
                smtp.starttls(context=relay.ssl_context())
                smtp.ehlo()
            if relay.username is not None and password is not None:
                stage.now = "login"
                smtp.login(relay.username, password.decode("utf-8"))
            stage.now = "sender"
            code, reply = smtp.mail(relay.sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, relay.sender)
            stage.now = "recipient"
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    with contextlib.suppress(smtplib.SMTPException, OSError):
                        smtp.rset()
                    raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
            stage.now = "data"
            smtp.data(data)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()


def _clean(reply: object, password: bytes | None, username: str | None) -> str:
    """A relay's reply as text for an error message: one line, short, and without the
    password in any form an AUTH exchange uses."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = " ".join(text.split())[:200]
    if password:
        forms = [password, base64.b64encode(password)]
        if username is not None:
            user = username.encode()
            forms.append(base64.b64encode(b"\0" + user + b"\0" + password))
        for form in forms:
            text = text.replace(form.decode("utf-8", "replace"), "[redacted]")
    return text


def _failure(code: int) -> tuple[MailFailure, str]:
    return ("temporary", "; try again later") if 400 <= code < 500 else ("refused", "")


@dataclass(frozen=True)
class _Context:
    """What an error message may name: the relay, the plugin, the step; and the password,
    only so that it can be taken out of a reply."""

    relay: MailRelay
    plugin: str
    password: bytes | None
    stage: _Stage

    def error(self, kind: MailFailure, reason: str, code: int = 0) -> MailDeliveryError:
        return MailDeliveryError(self.plugin, self.relay.name, kind, reason, code=code)

    def said(self, code: int, reply: object) -> str:
        return f"{code} {_clean(reply, self.password, self.relay.username)}".strip()


def _replied(exc: smtplib.SMTPResponseException, at: _Context) -> MailDeliveryError:
    """An SMTP reply that refused a step."""
    relay, code = at.relay, exc.smtp_code
    said = at.said(code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return at.error(
            "auth",
            f"the relay refused the login of user {relay.username!r} ({said}); check [mail] "
            f"username and the secret {relay.password_secret!r} "
            f"(plugport secret set {HOST_SCOPE} {relay.password_secret})",
            code,
        )
    kind, hint = _failure(code)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        fix = hint or "; check [mail] from: the relay must accept it as the sender"
        return at.error(kind, f"the relay refused the sender {relay.sender!r} ({said}){fix}", code)
    return at.error(kind, f"the relay answered {said} at the {at.stage.now} step{hint}", code)


def _broke(exc: smtplib.SMTPException, at: _Context) -> MailDeliveryError:
    """Any other SMTP failure: a refused recipient, a missing extension, a dropped line."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        address, (code, reply) = next(iter(exc.recipients.items()))
        kind, hint = _failure(code)
        return at.error(
            kind,
            f"the relay refused recipient {address!r} ({at.said(code, reply)}); nothing was "
            f"sent{hint}",
            code,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError) and at.stage.now == "starttls":
        return at.error(
            "tls",
            "the relay does not offer STARTTLS; use a relay that does (or, without a "
            "username, set [mail] starttls = false)",
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return at.error("auth", "the relay offers no AUTH; check [mail] host, port and username")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return at.error("protocol", f"the relay closed the connection at the {at.stage.now} step")
    return at.error("protocol", f"SMTP failed at the {at.stage.now} step ({type(exc).__name__})")


def _unreachable(exc: OSError, at: _Context) -> MailDeliveryError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return at.error(
            "tls",
            f"the relay's TLS certificate did not verify ({exc.verify_message}); give its CA "
            "in [mail] cafile",
        )
    if isinstance(exc, ssl.SSLError):
        return at.error("tls", f"TLS with the relay failed ({exc.reason or 'handshake'})")
    if isinstance(exc, TimeoutError):
        return at.error(
            "unreachable",
            f"the relay did not answer within {at.relay.timeout_s:g} s ({at.stage.now} step)",
        )
    if isinstance(exc, ConnectionRefusedError):
        return at.error("unreachable", "connection refused; check [mail] host and port")
    return at.error("unreachable", f"cannot reach the relay ({exc.strerror or type(exc).__name__})")


@contextlib.contextmanager
def _translated(
    relay: MailRelay, plugin: str, password: bytes | None, stage: _Stage
) -> Iterator[None]:
    """``smtplib``, ``ssl`` and socket errors as :class:`MailDeliveryError` (the one place)."""
    at = _Context(relay, plugin, password, stage)
    try:
        yield
    except smtplib.SMTPResponseException as exc:
        raise _replied(exc, at) from None
    except smtplib.SMTPException as exc:
        raise _broke(exc, at) from None
    except OSError as exc:
        raise _unreachable(exc, at) from None


@dataclass(frozen=True)
class MailOptions:
    """How the runtime sends mail: the operator's relay (``None``: mail is not configured) and
    the transport (default: SMTP; tests use :class:`MemoryMailTransport`)."""

    relay: MailRelay | None = None
    transport: MailTransport | None = None
    clock: Callable[[], float] = field(default=time.time)


class Mailer:
    """The runtime's mail service, shared by every plugin's ``mail`` calls: the relay, the
    transport, and each plugin's recent sends for the hourly rate (in memory: a restart of the
    host starts the hour again)."""

    def __init__(self, options: MailOptions | None = None) -> None:
        options = options or MailOptions()
        self.relay = options.relay
        self.transport: MailTransport = options.transport or SmtpTransport()
        self.clock = options.clock
        self._sent: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def limit_for(self, requested: int | None) -> int:
        """A plugin's messages per hour: what it asked for, capped by the relay's maximum."""
        cap = self.relay.max_per_hour if self.relay else DEFAULT_MAX_PER_HOUR
        return min(requested or cap, cap)

    def reserve(self, plugin: str, limit: int) -> float:
        """Count one message against ``plugin``'s hour, or raise
        :class:`ResourceLimitExceededError` (``mail_per_hour``) naming the limit."""
        now = self.clock()
        with self._lock:
            sent = self._sent.setdefault(plugin, collections.deque())
            while sent and now - sent[0] >= 3600:
                sent.popleft()
            decision = decide_rate(sent, limit, now)
            if not decision.allowed:
                raise ResourceLimitExceededError(
                    plugin,
                    "mail_per_hour",
                    f"{decision.sent} messages in the last hour, the limit is {limit} "
                    "(permissions.mail.per_hour, capped by [mail] max_per_hour); the next may "
                    f"go in {decision.retry_after_s:.0f} s",
                )
            sent.append(now)
        return now

    def release(self, plugin: str, stamp: float) -> None:
        """Give back a reservation whose message was not sent."""
        with self._lock, contextlib.suppress(ValueError):
            self._sent.get(plugin, collections.deque()).remove(stamp)

    def forget(self, plugin: str) -> None:
        with self._lock:
            self._sent.pop(plugin, None)
