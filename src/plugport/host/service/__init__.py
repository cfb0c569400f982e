"""The host's operations over HTTP, for server applications: workspaces (one host home each),
tokens, installations, long operations, calls into one plugin, the audit trail and metrics.
Needs the ``server`` extra."""

from __future__ import annotations

from plugport.host.service.app import add_host_service, create_host_service_app
from plugport.host.service.service import HostService
from plugport.host.service.settings import HostServiceSettings

__all__ = ["HostService", "HostServiceSettings", "add_host_service", "create_host_service_app"]
