"""The mail fake: the runtime's real ``mail`` capability (the same permission rule, message
checks, hourly limit and audit) in front of an in-memory relay, so a test reads what the plugin
sent as :class:`email.message.EmailMessage` objects instead of running an SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING

from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._mailer import MailRelay, MemoryMailTransport

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FAKE_SENDER", "FakeMail"]

FAKE_SENDER = "plugport@example.com"
"""The ``From`` address of messages in a test's runtime."""


class FakeMail:
    """One plugin's outbox. A runtime without a relay gets a test relay (``From``
    :data:`FAKE_SENDER`) whose transport keeps the messages; a runtime with a real relay is left
    alone (then the outbox is empty and ``configured`` says so)."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._mailer = runtime.services.mail
        if self._mailer.relay is None:
            self._mailer.relay = MailRelay(host="mail.invalid", sender=FAKE_SENDER)
            self._mailer.transport = MemoryMailTransport()
        self._transport = self._mailer.transport

    @property
    def outbox(self) -> list[EmailMessage]:
        """What this plugin sent, oldest first, as the relay received it."""
        if not isinstance(self._transport, MemoryMailTransport):
            return []
        return [m.message for m in self._transport.outbox if m.plugin == self.plugin]

    def unconfigure(self) -> None:
        """Take the relay away, as on a host whose operator set no ``[mail]``."""
        self._mailer.relay = None

    def limit(self, per_hour: int) -> None:
        """Set the host's ``max_per_hour`` (the cap on every plugin's hourly limit)."""
        relay = self._mailer.relay
        if relay is None:
            raise InvalidInputError("no relay to limit: the test took it away (unconfigure)")
        from dataclasses import replace

        self._mailer.relay = replace(relay, max_per_hour=per_hour)

    def close(self) -> None:
        self._mailer.forget(self.plugin)
