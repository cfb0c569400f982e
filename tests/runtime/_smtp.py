"""A real SMTP relay on 127.0.0.1 for the mail tests: ``aiosmtpd`` with STARTTLS (a self-signed
certificate made here; the client trusts it through ``MailRelay.cafile``, never by turning
verification off) and AUTH LOGIN/PLAIN required. Recipients whose local part is ``bounce``
are refused with 550, ``later`` with 451; every accepted message is kept."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests._certs import self_signed

USER = "relay-user"
PASSWORD = "smtp-Pa55w0rd-7e6d5c4b"  # noqa: S105 - a test's stand-in, searched for in every output
SENDER = "plugport@example.com"


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), and its key."""
    return self_signed(folder, "relay", ["localhost", "127.0.0.1"], common_name="relay.test")


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    transactions: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        local = address.partition("@")[0]
        if local == "bounce":
            return "550 5.1.1 no such mailbox"
        if local == "later":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(cast(bytes, envelope.content), policy=policy.default)
        login = session.auth_data.login.decode() if session.auth_data else ""
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                cast(EmailMessage, message),
                session.ssl is not None,
                login,
            )
        )
        return "250 OK: queued"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class Relay:
    """A running relay: ``port``, ``cert`` (what the client trusts), ``messages``."""

    def __init__(self, folder: Path) -> None:
        self.cert, key = certificate(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.port = free_port()
        self.handler = _Handler()
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=_authenticate,
        )
        self._controller.start()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def stop(self) -> None:
        self._controller.stop()


def free_port() -> int:
    """A port nothing listens on (for the relay, or for a relay that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
