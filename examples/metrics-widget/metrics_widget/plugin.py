"""The ``metrics.display`` tile: each time the dashboard asks (every ``refresh_s``), read the
host's samples of the configured metric, add the sum to the series' short history in storage,
and answer the tree :func:`metrics_widget.display.tile` builds. The host pulls the tree; the
plugin only says when it changed (a reset), so every tile showing that series redraws."""

from __future__ import annotations

import time
from typing import Any

from metrics_widget.display import RESET, history_key, parse_history, read, record, tile
from plugport.sdk import Plugin, UiRequest, widget

WIDGET = "metrics.display"


class MetricsWidget(Plugin):
    @widget(WIDGET)
    async def display(self, request: UiRequest) -> Any:
        config = request.config
        metric, labels = config["metric"], config.get("labels") or {}
        key = history_key(metric, labels)
        reset = request.action == RESET
        history = [] if reset else parse_history(await self.api.storage.get(key))
        now = read(await self.api.ui.metrics(metric), metric, labels)
        if now is not None:
            history = record(history, time.time(), now.value)
            await self.api.storage.set(key, [list(point) for point in history])
        elif reset:
            await self.api.storage.delete(key)
        if reset:  # every other tile of this series redraws from the new history too
            await self.api.ui.invalidate(WIDGET)
        return tile(config, history, now)
