"""The ``cron.expression`` field type and the ``cron.next-runs`` tile. A host form whose JSON
Schema says ``"ui:widget": "plugport.cron-field:cron.expression"`` shows a text box with the
manifest's placeholder and pattern, and asks :meth:`CronField.check` about each value before it
saves; the tile shows when a configured expression runs next (its setting names the field)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cron_field.cron import problem
from cron_field.tile import runs_tile
from plugport.sdk import Plugin, UiRequest, field, widget


class CronField(Plugin):
    @field("cron.expression")
    def check(self, request: UiRequest) -> str | None:
        return problem(request.context.get("value"))

    @widget("cron.next-runs")
    def next_runs(self, request: UiRequest) -> Any:
        return runs_tile(request.config, datetime.now(UTC))
