"""charts.css: every class the renderer colours has a rule, every variable it reads is defined by
it or by the site's stylesheet, and the default series colours read on a light and a dark
surface and stay apart from each other."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest

from plugport._web import STATIC_DIR
from plugport.host.ui import charts

CSS = (Path(charts.__file__).parent / "static" / "charts.css").read_text(encoding="utf-8")
SITE_CSS = (STATIC_DIR / "plugport.css").read_text(encoding="utf-8")

LIGHT_SURFACE = "#ffffff"
DARK_SURFACE = "#16181d"  # the site header's near-black, a typical dark theme's surface


def _palette() -> dict[int, str]:
    found = dict(re.findall(r"--chart-(\d):\s*(#[0-9a-fA-F]{6})\s*;", CSS))
    return {int(k): v for k, v in found.items()}


def _linear(hex_colour: str) -> tuple[float, float, float]:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return r, g, b


def _luminance(hex_colour: str) -> float:
    r, g, b = _linear(hex_colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def _oklab(hex_colour: str) -> tuple[float, float, float]:
    r, g, b = _linear(hex_colour)
    lms = (
        0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b,
        0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b,
        0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b,
    )
    l_, m_, s_ = (c ** (1 / 3) for c in lms)
    return (
        0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_,
        1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_,
        0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_,
    )


def test_eight_series_colours_are_defined_as_variables() -> None:
    assert sorted(_palette()) == list(range(1, charts.MAX_SERIES + 1))
    for number in range(1, charts.MAX_SERIES + 1):
        assert re.search(
            rf"\.pp-series-{number}\s*\{{\s*--pp-series:\s*var\(--chart-{number}\)", CSS
        )


@pytest.mark.parametrize("surface", [LIGHT_SURFACE, DARK_SURFACE])
def test_each_series_colour_reads_on_light_and_dark_surfaces(surface: str) -> None:
    # WCAG 1.4.11: graphical objects need 3:1 against what is next to them
    for number, colour in _palette().items():
        assert _contrast(colour, surface) >= 3.0, (number, colour, surface)


def test_series_colours_are_told_apart() -> None:
    # 0.02 is about one just-noticeable difference in OKLab; these stay five times apart
    for (a, first), (b, second) in itertools.combinations(_palette().items(), 2):
        assert math.dist(_oklab(first), _oklab(second)) >= 0.1, (a, b)


def test_lines_differ_by_dash_as_well_as_colour() -> None:
    dashes = re.findall(r"\.pp-series-(\d) \.pp-line \{ stroke-dasharray: ([^;]+);", CSS)
    assert len(dashes) == charts.MAX_SERIES - 1  # the first series is solid
    assert len({pattern for _, pattern in dashes}) == len(dashes)


def test_every_coloured_class_has_a_rule() -> None:
    needed = [
        "pp-axis", "pp-grid", "pp-line", "pp-area", "pp-bar", "pp-point", "pp-swatch-box",
        "pp-gauge-track", "pp-gauge-value", "pp-gauge-band",
        *(f"pp-gauge-{level}" for level in (*charts.LEVELS, "none")),
    ]  # fmt: skip
    for css in needed:
        assert re.search(rf"\.{css}[\s,{{.]", CSS), css


def test_every_variable_read_is_defined_here_or_by_the_site() -> None:
    defined = set(re.findall(r"(--[\w-]+)\s*:", CSS + SITE_CSS))
    for name in re.findall(r"var\((--[\w-]+)", CSS):
        assert name in defined, name
    for name in (
        "--accent",
        "--ok",
        "--warn",
        "--bad",
        "--text",
        "--muted",
        "--border",
        "--surface",
    ):
        assert f"var({name})" in CSS, name


def test_the_stylesheet_loads_nothing() -> None:
    assert "url(" not in CSS
    assert "@import" not in CSS
    assert "@font-face" not in CSS
