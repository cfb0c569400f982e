"""Host-side capabilities that plugins reach over the channel; each checks grants on every call.

:data:`CAPABILITIES` is the one list of them: a capability is a module here with a ``RECORD``
(:class:`~plugport.runtime.capabilities._record.Capability`) and one line below.
"""

from plugport.runtime.capabilities import config, events, network, storage, ui
from plugport.runtime.capabilities._record import Capability

__all__ = ["CAPABILITIES", "Capability"]

CAPABILITIES: dict[str, Capability] = {
    record.name: record
    for record in (config.RECORD, events.RECORD, network.RECORD, storage.RECORD, ui.RECORD)
}
"""Every capability the host offers, by the name plugins use (``self.api.<name>``)."""
