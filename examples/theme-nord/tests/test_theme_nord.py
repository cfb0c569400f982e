"""The Nord theme as the host sees it: the manifest validates (so its contrast passes the same
checks the host runs), every pair of colours the stylesheet draws reaches WCAG AA in both
palettes, the CSS the host would serve holds the palette, and the plugin loads in the real
sandbox asking for nothing but its theme."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport._theme_rules import (
    CONTRAST_CHECKS,
    contrast_ratio,
    derived_colours,
    theme_css,
    theme_problems,
)
from plugport.manifest import Theme, load_manifest
from plugport.testing import PluginHandle

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def nord() -> Theme:
    manifest = load_manifest(ROOT)  # raises on any contrast problem, as validate and pack do
    assert manifest.permissions.ui == ["themes"]
    [theme] = manifest.contributes.themes
    return theme


def test_both_palettes_are_there(nord: Theme) -> None:
    assert nord.light is not None
    assert nord.dark is not None
    assert (nord.light.text, nord.dark.bg) == ("#2e3440", "#242933")
    assert (nord.font, nord.radius_px) == ("humanist", 4)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_every_pair_reaches_wcag_aa(nord: Theme, mode: str) -> None:
    colours = derived_colours(getattr(nord, mode))
    ratios = {
        f"{c.fg} on {c.bg}": (contrast_ratio(colours[c.fg], colours[c.bg]), c.minimum)
        for c in CONTRAST_CHECKS
    }
    short = {pair: ratio for pair, (ratio, minimum) in ratios.items() if ratio < minimum}
    assert short == {}
    # and with some room: no text pair is a hair's breadth from failing
    assert min(r for r, m in ratios.values() if m == 4.5) >= 4.8
    assert theme_problems(nord) == []


def test_the_css_the_host_serves(nord: Theme) -> None:
    auto = theme_css(nord, mode="auto")
    light, _, dark = auto.partition("@media (prefers-color-scheme: dark) {")
    assert "--bg: #eceff4;" in light
    assert "--accent: #3b6394;" in light
    assert "--bg: #242933;" in dark
    assert "--accent: #88c0d0;" in dark
    assert "--radius: 4px;" in light
    assert "url(" not in auto


def test_it_starts_in_the_sandbox_within_the_smallest_limits(plugin: PluginHandle) -> None:
    assert plugin.manifest.name == "plugport.theme-nord"
    plugin.assert_no_denials()
    assert plugin.calls == []
