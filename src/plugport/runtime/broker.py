"""The host side of every capability call: is the method real, are the arguments well formed, did
the host grant it, is the plugin within its rate; then the capability service does the work.

:func:`check_grant` is the decision, pure and tested on its own; :class:`CapabilityBroker` wraps it
with the services, the audit log (every denial is recorded) and the metrics.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from plugport._permissions import RULES, permissions_beyond, refusal
from plugport.errors import InvalidInputError, PermissionDeniedError, ResourceLimitExceededError
from plugport.runtime._rate import TokenBucket
from plugport.runtime.activity import Activity
from plugport.runtime.audit import AuditEvent
from plugport.runtime.capabilities import CAPABILITIES
from plugport.runtime.capabilities._record import Grants, NetOptions, Services

__all__ = [
    "CapabilityBroker",
    "Grants",
    "NetOptions",
    "Services",
    "check_grant",
    "permissions_beyond",
]


def check_grant(grants: Grants, capability: str, method: str, arguments: Mapping[str, Any]) -> str:
    """Why ``capability.method(**arguments)`` is refused, or ``""`` when it is granted. Local
    endpoints are the host's own grant of ``net`` (``plugport dev --allow-local``), beside the
    manifest's; the network broker still checks every URL against both."""
    if capability == "net" and grants.local_endpoints:
        return ""
    return refusal(grants.permissions, capability, method, arguments)


def fix_for(capability: str, method: str, arguments: Mapping[str, Any]) -> str:
    """What the author does about a refusal: the manifest line, and how it takes effect."""
    rule = RULES.get(capability)
    if rule is None:
        return ""
    line = rule.manifest_line(method, arguments)
    where = "to plugport.toml" if line.startswith("[") else "under [permissions] in plugport.toml"
    return (
        f"to allow it, add `{line}` {where}, then reinstall the plugin (plugport dev picks "
        "the change up on save)"
    )


Handler = Callable[..., Any]


class CapabilityBroker:
    """One plugin's broker, called as ``broker(capability, method, args, kwargs)`` by its
    :class:`~plugport.runtime.process.PluginProcess`."""

    def __init__(
        self,
        grants: Grants,
        services: Services,
        *,
        calls_per_s: float = 500.0,
        burst: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grants = grants
        self.plugin = grants.plugin
        self.services = services
        self._bucket = TokenBucket(calls_per_s, burst)
        self._clock = clock
        self._handlers: dict[tuple[str, str], tuple[Handler, inspect.Signature]] = {}
        for capability in CAPABILITIES.values():
            calls = capability.calls(grants, services)
            for method in capability.methods():
                handler = getattr(calls, method)
                self._handlers[capability.name, method] = (handler, inspect.signature(handler))

    def offered(self) -> list[str]:
        return sorted(f"{c}.{m}" for c, m in self._handlers)

    async def __call__(
        self, capability: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        name = f"{capability}.{method}"
        started = time.perf_counter()
        try:
            value = await self._dispatch(capability, method, name, args, kwargs)
        except PermissionDeniedError as exc:
            self._record("deny", exc.reason, name)
            self._done(capability, name, "denied", exc.reason, started)
            raise
        except ResourceLimitExceededError as exc:
            if exc.limit != "capability_calls_per_second":
                self._record("limit", str(exc), name)
            self._done(capability, name, "error", str(exc), started)
            raise
        except Exception as exc:
            self._done(capability, name, "error", f"{type(exc).__name__}: {exc}", started)
            raise
        self._done(capability, name, "ok", "", started)
        return value

    def _done(self, capability: str, name: str, outcome: str, why: str, started: float) -> None:
        self.services.metrics.capability(self.plugin, capability, outcome)
        if self.services.activity.watching("capability"):
            verdict = {"ok": "granted"}.get(outcome, outcome)
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.services.activity.emit(
                Activity(self.plugin, "capability", name, verdict, why, elapsed_ms)
            )

    async def _dispatch(
        self, capability: str, method: str, name: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        entry = self._handlers.get((capability, method))
        if entry is None:
            reason = f"the host offers no {name!r} (it offers {', '.join(self.offered())})"
            raise PermissionDeniedError(self.plugin, name, reason)
        if not self._bucket.take(self._clock()):
            if self._bucket.refused == 1:  # one audit line per flood, not one per call
                self._record("limit", "capability calls over the rate limit", name)
            raise ResourceLimitExceededError(
                self.plugin,
                "capability_calls_per_second",
                f"more than {self._bucket.rate_per_s:g} calls per second "
                f"(burst {self._bucket.burst:g})",
            )
        handler, signature = entry
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"{name}{signature}: {exc}") from None
        bound.apply_defaults()
        denial = check_grant(self.grants, capability, method, bound.arguments)
        if denial:
            fix = fix_for(capability, method, bound.arguments)
            raise PermissionDeniedError(self.plugin, name, denial, fix=fix)
        value = handler(*bound.args, **bound.kwargs)
        if isinstance(value, Awaitable):
            value = await value
        return value

    def _record(self, kind: str, reason: str, capability: str) -> None:
        self.services.audit.record(AuditEvent(self.plugin, kind, reason, capability))
