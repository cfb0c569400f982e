"""Theme plugins for the appearance tests: ``acme.nord`` (a light and a dark palette that pass
WCAG AA) written, packed and published to a test market, installed into a workspace with its
consent; and a way to make an installed manifest's theme unreadable on disk, as a manifest
checked under older rules (or changed behind the host's back) would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.host._plugins import write
from tests.host._service import Market, Service, wait_for

NORD = "acme.nord"
NORD_KEY = f"{NORD}:nord"
NORD_LIGHT_BG = "#eceff4"
NORD_DARK_BG = "#242933"
THEMES = f"""\
[permissions]
ui = ["themes"]

[[contributes.themes]]
id = "nord"
title = "Nord"
font = "humanist"
radius_px = 4
density = "comfortable"
light = {{ bg = "{NORD_LIGHT_BG}", surface = "#ffffff", text = "#2e3440", muted = "#4c566a", border = "#d8dee9", accent = "#3b6394", ok = "#3f6b2a", warn = "#8a5a00", bad = "#a33a44" }}
dark = {{ bg = "{NORD_DARK_BG}", surface = "#2e3440", text = "#eceff4", muted = "#d8dee9", border = "#4c566a", accent = "#88c0d0", ok = "#a3be8c", warn = "#ebcb8b", bad = "#e5959c" }}

[[contributes.themes]]
id = "frost"
title = "Nord frost (light only)"
light = {{ bg = "#e5e9f0", surface = "#f8f9fb", text = "#242933", muted = "#434c5e", border = "#c2c9d6", accent = "#2f5a86", ok = "#3c6628", warn = "#7f5300", bad = "#9c3640" }}
"""  # noqa: E501 - a palette reads best on one line
CONSENT = ["ui 'themes'"]
UNREADABLE_TEXT = "#9aa3b5"
"""A text colour that fails on Nord's light background (2.35:1)."""


def publish_nord(market: Market) -> None:
    market.publish(write(market.root / "src-themes", NORD, "1.0.0", extra=THEMES))


def install(service: Service, token: str, ws: str, plugin: str = NORD) -> None:
    with service.client(token) as api:
        started = api.post(
            f"/api/v1/workspaces/{ws}/installations", json={"plugin": plugin, "consent": CONSENT}
        )
        assert started.status_code == 202, started.text
        done: dict[str, Any] = wait_for(api, ws, started.json())
        assert done["state"] == "succeeded", done


def installed_manifest(service: Service, ws: str, plugin: str = NORD) -> Path:
    host = service.service.workspace(ws).host
    installation = host.state.get(plugin)
    assert installation is not None
    return host.paths.code_dir(installation) / "plugport.toml"


def spoil_nord(service: Service, ws: str) -> str:
    """Give the installed Nord theme unreadable light text, on disk; the text before."""
    manifest = installed_manifest(service, ws)
    before = manifest.read_text()
    manifest.write_text(before.replace('text = "#2e3440"', f'text = "{UNREADABLE_TEXT}"', 1))
    assert manifest.read_text() != before
    return before
