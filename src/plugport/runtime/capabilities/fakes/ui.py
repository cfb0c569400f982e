"""The UI fake: what the plugin contributed to the host's UI registry (messages, commands, the
surfaces it invalidated) and its UI handlers' component trees, rendered through the real
sandbox and held to the same schema the host holds them to, as plain JSON for assertions and
snapshot tests; and the host metrics ``api.ui.metrics`` reads, set by the test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from plugport.components import check_tree, widget_config
from plugport.errors import InvalidInputError
from plugport.sdk._ui import UiRequest

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeUi", "metric_families"]


class _Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


class _Family(NamedTuple):
    """What the registry reads of a ``prometheus_client`` metric family: its samples."""

    samples: tuple[_Sample, ...]


def metric_families(samples: Iterable[Mapping[str, Any]]) -> list[_Family]:
    """``samples`` in the shape ``api.ui.metrics`` answers (``{"name", "labels", "value"}``,
    ``labels`` optional) as the metric families the host's registry reads, copied, so a test
    that changes its list afterwards changes nothing; an :class:`InvalidInputError` names the
    first sample that could not come from a host."""
    if isinstance(samples, str | bytes | Mapping):
        raise InvalidInputError("samples must be a list of {'name', 'labels', 'value'} objects")
    found = []
    for index, sample in enumerate(samples):
        where = f"samples[{index}]"
        if not isinstance(sample, Mapping):
            raise InvalidInputError(f"{where} must be an object, not {type(sample).__name__}")
        unknown = sorted(set(sample) - {"name", "labels", "value"})
        if unknown:
            raise InvalidInputError(f"{where} has unknown keys: {', '.join(unknown)}")
        name, labels, value = sample.get("name"), sample.get("labels", {}), sample.get("value")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"{where}.name must be a metric name, not {name!r}")
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InvalidInputError(f"{where}.labels must map label names to text")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInputError(f"{where}.value must be a finite number, not {value!r}")
        found.append(_Sample(name, dict(labels), float(value)))
    return [_Family(tuple(found))]


class FakeUi:
    """One plugin's UI, without timestamps, so snapshots are stable."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._runtime = runtime
        self._ui = runtime.services.ui
        self._surfaces = dict(grants.ui_surfaces)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"level": m.level, "text": m.text} for m in self._ui.messages(self.plugin)]

    @property
    def commands(self) -> dict[str, str]:
        """Registered command id -> title."""
        return {c.id: c.title for c in self._ui.commands(self.plugin)}

    @property
    def invalidated(self) -> dict[str, int]:
        """Surface id -> how many times the plugin called ``ui.invalidate`` for it."""
        return {key[1]: version for key, version in self._ui.versions(self.plugin).items()}

    async def render(
        self,
        surface_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        action: str | None = None,
        payload: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """The tree the plugin's handler for ``surface_id`` returns, as the host would ask for
        it (a widget's ``config`` over its schema's defaults), checked against the component
        schema; a view's answer and a field's verdict come back as they are."""
        kind = self._surfaces.get(surface_id)
        if kind is None:
            declared = ", ".join(sorted(self._surfaces)) or "none"
            raise InvalidInputError(
                f"plugin {self.plugin!r} contributes no UI surface {surface_id!r} "
                f"(its manifest declares: {declared})"
            )
        entry = self._runtime.manifest_of(self.plugin).contributes.ui_surface(surface_id)
        settings: dict[str, Any] = dict(config or {})
        if kind == "widget":
            settings = widget_config(getattr(entry, "config", {}), config)
        request = UiRequest(
            kind,
            surface_id,
            config=settings,
            action=action,
            payload=dict(payload or {}),
            values=dict(values or {}),
            context=dict(context or {}),
            workspace="test",
        ).to_wire()
        answer = await self._runtime.call_ui(self.plugin, surface_id, request)
        if kind in ("view", "field") or (kind == "menu" and answer is None):
            return answer
        return check_tree(
            answer,
            plugin=self.plugin,
            surface=surface_id,
            overlay_allowed=action is not None or kind == "menu",
        )

    async def widget(self, widget_id: str, config: Mapping[str, Any] | None = None) -> Any:
        """The tree of widget ``widget_id`` with ``config`` (default: its schema's defaults)."""
        return await self.render(widget_id, config=config)

    def set_metrics(self, samples: Iterable[Mapping[str, Any]] | None) -> None:
        """Make ``api.ui.metrics`` answer from ``samples`` (``{"name", "labels", "value"}``
        objects, as it returns them) instead of the test runtime's own counters, which every
        call into a plugin moves: a widget that charts metrics gets stable numbers to snapshot.
        ``None`` goes back to the runtime's own. The metrics are the runtime's, as a host's are
        the host's: every plugin loaded in the same test reads the samples set here."""
        if samples is None:
            self._ui.metrics_source = self._runtime.metrics.registry.collect
            return
        families = metric_families(samples)
        self._ui.metrics_source = lambda: families

    def snapshot(self) -> dict[str, Any]:
        """The registry's part as plain data: compare it with a stored JSON file."""
        return {
            "messages": self.messages,
            "commands": self.commands,
            "invalidated": self.invalidated,
        }

    def close(self) -> None:
        """Nothing to release: the registry belongs to the runtime."""
