"""Sandboxed execution of plugins: one worker process per plugin, reached over a checked channel.

The names below are what a host embeds. They are imported on first use, so a worker (which
imports ``plugport.runtime.protocol``) never loads the host's side: SQLite, httpx, metrics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugport.runtime._lifecycle import RestartPolicy
    from plugport.runtime.audit import AuditEvent
    from plugport.runtime.broker import NetOptions
    from plugport.runtime.hooks import HookOutcome, HookSpec
    from plugport.runtime.supervisor import (
        PluginInstall,
        PluginStatus,
        Supervisor,
        SupervisorConfig,
    )

__all__ = [
    "AuditEvent",
    "HookOutcome",
    "HookSpec",
    "NetOptions",
    "PluginInstall",
    "PluginStatus",
    "RestartPolicy",
    "Supervisor",
    "SupervisorConfig",
]

_WHERE = {
    "AuditEvent": "audit",
    "HookOutcome": "hooks",
    "HookSpec": "hooks",
    "NetOptions": "broker",
    "PluginInstall": "supervisor",
    "PluginStatus": "supervisor",
    "RestartPolicy": "_lifecycle",
    "Supervisor": "supervisor",
    "SupervisorConfig": "supervisor",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'plugport.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(f"plugport.runtime.{module}"), name)
