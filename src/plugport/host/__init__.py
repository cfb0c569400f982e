"""The embedding application's side: install, verify and run plugins (:class:`PluginHost`)."""

from __future__ import annotations

from plugport.host._retry import RetryPolicy
from plugport.host.consent import ConsentRequest
from plugport.host.context import OperationContext
from plugport.host.host import InstallReport, PluginHost

__all__ = ["ConsentRequest", "InstallReport", "OperationContext", "PluginHost", "RetryPolicy"]
