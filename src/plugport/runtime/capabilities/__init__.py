"""Host-side capabilities that plugins reach over the channel; each checks grants on every call.

:data:`CAPABILITIES` is the one list of them: a capability is a module here with a ``RECORD``
(:class:`~plugport.runtime.capabilities._record.Capability`), its fake in ``fakes/``, and one
line below.
"""

from dataclasses import replace

from plugport.runtime.capabilities import (
    config,
    events,
    mail,
    network,
    secrets,
    storage,
    tasks,
    ui,
    webhooks,
)
from plugport.runtime.capabilities._record import Capability
from plugport.runtime.capabilities.fakes import FAKES

__all__ = ["CAPABILITIES", "Capability"]

CAPABILITIES: dict[str, Capability] = {
    record.name: replace(record, fake=FAKES.get(record.name))
    for record in (
        config.RECORD,
        events.RECORD,
        mail.RECORD,
        network.RECORD,
        secrets.RECORD,
        storage.RECORD,
        tasks.RECORD,
        ui.RECORD,
        webhooks.RECORD,
    )
}
"""Every capability the host offers, by the name plugins use (``self.api.<name>``). Each
record's ``fake`` is what ``plugport.testing`` hands a test for it; the fakes live apart
because they import the capability modules they stand in for."""
