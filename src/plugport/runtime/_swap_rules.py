"""What a hot swap decides without touching a process: the drain deadline it runs under, the
error that ends a call the drain outlasted, the words of a refusal and of its audit line.
``_swap.py`` starts, checks, switches and stops the workers.

The rule these protect: a swap either switches every new call to a healthy new worker or leaves
the plugin exactly as it was, and either way the caller is told which, in a sentence that names
the plugin, both versions and why."""

from __future__ import annotations

import math
from dataclasses import dataclass

from plugport.errors import (
    InvalidInputError,
    PlugportError,
    ResourceLimitExceededError,
    SwapRefusedError,
    SwapStage,
)

__all__ = [
    "DRAIN_LIMIT",
    "SwapReport",
    "audit_line",
    "drain_deadline_s",
    "overdue_call",
    "overdue_on_stop",
    "refusal",
]

DRAIN_LIMIT = "swap_drain_deadline_s"
"""The ``limit`` of the :class:`ResourceLimitExceededError` that ends a call still running on
the old worker when the drain runs out (the worker is being stopped cleanly, not killed for it)."""

_STAGES: dict[SwapStage, str] = {
    "start": "the new worker did not start: {cause}",
    "health": "the new worker failed its health check: {cause}",
    "removed": "the plugin was removed while the new worker started",
    "closing": "the runtime is shutting down",
}


@dataclass(frozen=True)
class SwapReport:
    """What one swap did. ``hot``: a worker was running, the new one started beside it and took
    over; otherwise none ran and only the plugin's record was replaced (the new version starts
    on its next activation, as after ``add``)."""

    plugin: str
    from_version: str
    to_version: str
    hot: bool
    new_settings: bool = False
    """The same version restarted onto new settings (``Supervisor.reconfigure``)."""
    old_pid: int | None = None
    new_pid: int | None = None
    switch_ms: float = 0.0
    """From the request to the switch: the new worker's start and health check."""
    drained: int = 0
    """Calls in flight on the old worker at or after the switch that finished there."""
    ended: int = 0
    """Calls still running on the old worker at the drain deadline, ended with an error."""
    drain_ms: float = 0.0
    stopped: str = ""
    """How the old worker ended (``cleanup() finished`` ...), as the process reports it."""


def drain_deadline_s(requested: float | None, default: float) -> float:
    """The drain deadline a swap runs under: the caller's, else the configured one."""
    value = default if requested is None else requested
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"drain_deadline_s must be a number of seconds, not {value!r}")
    if value < 0:
        raise InvalidInputError(f"drain_deadline_s must be >= 0 (got {value:g})")
    return float(value)


def refusal(
    plugin: str,
    version: str,
    stage: SwapStage,
    *,
    kept_version: str,
    serving: bool,
    cause: BaseException | None = None,
    settings: bool = False,
) -> SwapRefusedError:
    """The error a rolled-back swap raises. ``serving``: a worker of ``kept_version`` still
    runs; ``settings``: the swap was a restart onto new settings, which were put back."""
    reason = _STAGES[stage].format(cause=_cause(cause))
    kept = f"{kept_version} keeps running" if serving else f"{kept_version} stays in place"
    if settings:
        kept = f"the previous settings are restored and {kept}"
    return SwapRefusedError(plugin, version, stage, reason, kept)


def _cause(cause: BaseException | None) -> str:
    if cause is None:
        return "no reason given"
    if isinstance(cause, TimeoutError):
        return "it did not answer a ping in time"
    if isinstance(cause, PlugportError):
        return str(cause)
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def overdue_call(
    plugin: str, from_version: str, to_version: str, deadline_s: float
) -> PlugportError:
    """The error for a call still running on the old worker when its drain deadline passed."""
    return ResourceLimitExceededError(
        plugin,
        DRAIN_LIMIT,
        f"{from_version} was replaced by {to_version} and this call was still running on the "
        f"old worker when the {deadline_s:g} s drain deadline passed; it was ended and the old "
        "worker stopped (call again: the new worker answers)",
    )


def overdue_on_stop(plugin: str, deadline_s: float) -> PlugportError:
    """The error for a call still running when a deactivation's drain deadline passed."""
    return ResourceLimitExceededError(
        plugin,
        DRAIN_LIMIT,
        f"{plugin} was being deactivated and this call was still running when the "
        f"{deadline_s:g} s drain deadline passed; it was ended and the worker stopped",
    )


def audit_line(report: SwapReport, deadline_s: float) -> str:
    """The ``swap`` audit event's reason: versions, workers, timing, what the drain did."""
    change = f"{report.from_version} -> {report.to_version}"
    if report.new_settings:
        change = f"{report.to_version} onto new settings"
    if not report.hot:
        return f"{change}; no worker was running: the new one starts on its next activation"
    ended = f", {report.ended} ended at the {deadline_s:g} s deadline" if report.ended else ""
    return (
        f"{change}; pid {report.old_pid} -> "
        f"{report.new_pid}, switched after {report.switch_ms:.0f} ms; old worker: "
        f"{report.drained} call(s) drained{ended} in {report.drain_ms:.0f} ms, {report.stopped}"
    )
