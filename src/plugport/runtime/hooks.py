"""Hooks: the host declares specs, plugins register implementations, and a call loop fans a
call out in priority order. The three are separate, and the loop is handed the function that
calls one implementation, so tracing, timeouts and the sandbox wrap it from outside."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plugport.errors import InvalidInputError, PlugportError

__all__ = ["CallOne", "HookImpl", "HookOutcome", "HookRegistry", "HookSpec", "call_hook"]


@dataclass(frozen=True)
class HookSpec:
    """A hook the host offers: its keyword arguments, and whether the first answer wins."""

    name: str
    args: tuple[str, ...] = ()
    firstresult: bool = False
    timeout_ms: int | None = None  # per implementation; None: the plugin's own timeout_ms
    concurrent: bool = False
    """The host does not care in which order implementations run: call them all at once
    (each in its own worker) and still return the outcomes in priority order."""

    def __post_init__(self) -> None:
        if self.concurrent and self.firstresult:
            raise ValueError(f"hook {self.name!r}: firstresult needs the order, not concurrent")


@dataclass(frozen=True)
class HookImpl:
    plugin: str
    hook: str
    priority: int = 0


@dataclass(frozen=True)
class HookOutcome:
    """One implementation's answer; a failure is an outcome too, never an exception."""

    plugin: str
    ok: bool
    value: Any = None
    error: PlugportError | None = None
    elapsed_ms: float = 0.0


CallOne = Callable[[HookImpl, dict[str, Any]], Awaitable[Any]]


@dataclass
class HookRegistry:
    specs: dict[str, HookSpec] = field(default_factory=dict)
    impls: dict[str, dict[str, HookImpl]] = field(default_factory=dict)  # hook -> plugin -> impl
    _ordered: dict[str, list[HookImpl]] = field(default_factory=dict, repr=False, compare=False)

    def declare(self, spec: HookSpec) -> None:
        self.specs[spec.name] = spec

    def register(self, impl: HookImpl) -> None:
        if impl.hook not in self.specs:
            known = ", ".join(sorted(self.specs)) or "none"
            raise InvalidInputError(
                f"plugin {impl.plugin!r} implements hook {impl.hook!r}, which the host does not "
                f"declare (declared: {known})"
            )
        self.impls.setdefault(impl.hook, {})[impl.plugin] = impl
        self._ordered.pop(impl.hook, None)

    def unregister(self, plugin: str) -> None:
        for by_plugin in self.impls.values():
            by_plugin.pop(plugin, None)
        self._ordered.clear()

    def ordered(self, hook: str, overrides: Mapping[str, int] | None = None) -> list[HookImpl]:
        """Highest priority first; the host's overrides (plugin -> priority) win; ties go by
        plugin name so the order never depends on installation order. Without overrides the
        order is kept until an implementation comes or goes (every hook call asks for it)."""
        if not overrides:
            kept = self._ordered.get(hook)
            if kept is None:
                kept = self._ordered[hook] = self._sorted(hook, {})
            return kept
        return self._sorted(hook, overrides)

    def _sorted(self, hook: str, overrides: Mapping[str, int]) -> list[HookImpl]:
        impls = self.impls.get(hook, {}).values()
        return sorted(impls, key=lambda i: (-overrides.get(i.plugin, i.priority), i.plugin))

    def check_arguments(self, hook: str, kwargs: Mapping[str, Any]) -> HookSpec:
        spec = self.specs.get(hook)
        if spec is None:
            known = ", ".join(sorted(self.specs)) or "none"
            raise InvalidInputError(f"unknown hook {hook!r}; declared hooks: {known}")
        if len(kwargs) == len(spec.args) and all(a in kwargs for a in spec.args):
            return spec  # the common case, checked without building the lists below
        missing = [a for a in spec.args if a not in kwargs]
        unknown = [a for a in kwargs if a not in spec.args]
        if missing or unknown:
            parts = [
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            ]
            raise InvalidInputError(
                f"hook {hook!r} takes ({', '.join(spec.args)}): {'; '.join(p for p in parts if p)}"
            )
        return spec


async def call_hook(
    registry: HookRegistry,
    hook: str,
    kwargs: dict[str, Any],
    call_one: CallOne,
    *,
    overrides: Mapping[str, int] | None = None,
    include: Callable[[HookImpl], bool] | None = None,
) -> list[HookOutcome]:
    """Call every implementation in order (those ``include`` accepts). One failing never stops
    the others; with ``firstresult`` the loop stops at the first successful non-None value."""
    spec = registry.check_arguments(hook, kwargs)
    impls = [i for i in registry.ordered(hook, overrides) if include is None or include(i)]
    if spec.concurrent:
        return list(await asyncio.gather(*(_outcome(i, kwargs, call_one) for i in impls)))
    outcomes = []
    for impl in impls:
        outcome = await _outcome(impl, kwargs, call_one)
        outcomes.append(outcome)
        if spec.firstresult and outcome.ok and outcome.value is not None:
            break
    return outcomes


async def _outcome(impl: HookImpl, kwargs: dict[str, Any], call_one: CallOne) -> HookOutcome:
    started = time.perf_counter()
    try:
        value = await call_one(impl, kwargs)
    except PlugportError as exc:
        return HookOutcome(impl.plugin, False, None, exc, (time.perf_counter() - started) * 1000)
    return HookOutcome(impl.plugin, True, value, None, (time.perf_counter() - started) * 1000)
