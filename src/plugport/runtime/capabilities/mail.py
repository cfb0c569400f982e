"""``mail.send``: a plugin emails the recipients its manifest names, through the relay the
operator configured, from the operator's address, at most so many an hour.

The broker has already matched every recipient (``to`` and ``cc``) against
``permissions.mail.to`` (``plugport._permissions``) when a call gets here; this checks the rest
of the message (``_mail_rules``), counts it against the plugin's hour, fetches the relay's
password from the secrets store (scope ``_host``) and hands it to the transport (``_mailer``).
Every message, sent or not, is one audit line: plugin, recipient count and domains, message id;
never a body, an address's local part or a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.utils import make_msgid

from plugport._permissions import RULES, mail_recipients
from plugport.errors import MailDeliveryError, NotFoundError
from plugport.runtime.audit import AuditEvent
from plugport.runtime.capabilities._mail_rules import Draft, check_draft, compose, encoded
from plugport.runtime.capabilities._mailer import (
    HOST_SCOPE,
    Mailer,
    MailOptions,
    MailRelay,
    MailTransport,
    MemoryMailTransport,
    SentMessage,
    SmtpTransport,
)
from plugport.runtime.capabilities._record import Calls, Capability, Services
from plugport.sdk._api import MailProxy

__all__ = [
    "HOST_SCOPE",
    "RECORD",
    "MailCalls",
    "MailOptions",
    "MailRelay",
    "MailTransport",
    "Mailer",
    "MemoryMailTransport",
    "SentMessage",
    "SmtpTransport",
]

NOT_CONFIGURED = (
    "no mail relay is configured on this host; the operator sets [mail] host and from in "
    "HOME/policy.toml (the host service: its mail_host and mail_from settings)"
)


class MailCalls(Calls):
    """``api.mail.*`` for one plugin."""

    async def send(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        *,
        html: str | None = None,
        cc: Sequence[str] = (),
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        mailer = self.services.mail
        relay = mailer.relay
        if relay is None:
            raise MailDeliveryError(self.plugin, "", "unconfigured", NOT_CONFIGURED)
        addresses, copies = mail_recipients({"to": to, "cc": cc})
        draft = check_draft(addresses, copies, subject, text, html, reply_to, headers)
        message_id = make_msgid(domain=relay.sender.rpartition("@")[2])
        now = mailer.clock()
        message = compose(
            draft,
            sender=relay.sender,
            plugin=self.plugin,
            message_id=message_id,
            now=now,
            name=self.plugin if relay.plugin_name_in_from else "",
        )
        data = encoded(message, self.plugin, relay.max_message_bytes)
        password = self._password(relay)
        stamp = mailer.reserve(self.plugin, mailer.limit_for(self.grants.permissions.mail.per_hour))
        try:
            envelope = SentMessage(self.plugin, relay.sender, tuple(draft.recipients), message)
            await mailer.transport.send(relay, password, envelope, data)
        except MailDeliveryError as exc:
            mailer.release(self.plugin, stamp)
            self._audit(draft, message_id, relay, f"not sent ({exc.kind}, {exc.code or '-'})")
            raise
        self._audit(draft, message_id, relay, "sent")
        return message_id

    def _password(self, relay: MailRelay) -> bytes | None:
        if relay.password_secret is None:
            return None
        try:
            return self.services.secrets.get(HOST_SCOPE, relay.password_secret)
        except NotFoundError:
            raise MailDeliveryError(
                self.plugin,
                relay.name,
                "unconfigured",
                f"the relay's password (secret {relay.password_secret!r} of {HOST_SCOPE}) is "
                f"not set; the operator sets it with: plugport secret set {HOST_SCOPE} "
                f"{relay.password_secret}",
            ) from None

    def _audit(self, draft: Draft, message_id: str, relay: MailRelay, outcome: str) -> None:
        count = len(draft.recipients)
        self.services.audit.record(
            AuditEvent(
                self.plugin,
                "mail",
                f"{outcome}: message {message_id} to {count} recipient{'s' if count != 1 else ''}"
                f" at {', '.join(draft.domains)} through {relay.name}",
                "mail.send",
            )
        )


def _purge(services: Services, plugin: str) -> None:
    services.mail.forget(plugin)


RECORD = Capability("mail", RULES["mail"], MailCalls, MailProxy, _purge)
