"""``plugport.testing``: a pytest plugin that runs a plugin in the real sandbox with faked
capabilities. Registered as the ``pytest11`` entry point ``plugport``
(:mod:`plugport.testing.plugin`); tests get the ``plugin`` and ``plugin_factory`` fixtures.

Top of the import order: nothing in Plugport imports this package. The names below are for
type annotations in tests and are loaded on first use, so the plugin costs pytest nothing at
start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugport.testing._handle import CapabilityCall, PluginHandle
    from plugport.testing._webhooks import sign_webhook
    from plugport.testing.plugin import PluginFactory

__all__ = ["CapabilityCall", "PluginFactory", "PluginHandle", "sign_webhook"]

_WHERE = {
    "CapabilityCall": "_handle",
    "PluginHandle": "_handle",
    "PluginFactory": "plugin",
    "sign_webhook": "_webhooks",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'plugport.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"plugport.testing.{module}"), name)
