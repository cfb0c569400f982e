"""Themes in a real Chromium: pick a plugin's theme on the Appearance page and see the page's
computed colours change, toggle dark mode (and follow the system's preference in ``auto``),
check that every piece of text on the workspace page keeps WCAG AA contrast in the light and
dark themes, and see an unreadable theme refused. Screenshots of the workspace page in light
and dark at 1280 and 390 px are kept as artifacts (build/screenshots)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from plugport._theme_rules import contrast_ratio
from tests.browser.conftest import accessibility_problems, screenshot
from tests.host._service import Service, market_at, serving, settings_for, wait_for
from tests.host._themes import (
    NORD_DARK_BG,
    NORD_KEY,
    NORD_LIGHT_BG,
    install,
    installed_manifest,
    publish_nord,
    spoil_nord,
)

WS = "studio"
PLUGPORT_LIGHT_BG = "#f7f8fa"
PLUGPORT_DARK_BG = "#0f1217"


@dataclass
class Site:
    service: Service
    token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("appearance")
    with market_at(root / "market") as market, serving(settings_for(root, market)) as service:
        publish_nord(market)
        token = service.workspace(WS)
        install(service, token, WS)
        with service.client(token) as api:  # a second row, and audit rows, to see in a table
            started = api.post(
                f"/api/v1/workspaces/{WS}/installations", json={"plugin": "acme.alpha"}
            )
            assert wait_for(api, WS, started.json())["state"] == "succeeded"
            api.post(f"/api/v1/workspaces/{WS}/installations/acme.alpha/disable")
        yield Site(service, token)


def rgb(hex_colour: str) -> str:
    value = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(value[i : i + 2], 16) for i in (0, 2, 4)))


def body_background(page: Any) -> str:
    colour: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return colour


# Every element with text of its own that is shown: its colour and the first opaque background
# behind it (ancestors' included), as #rrggbb.
_TEXT_PAIRS = """() => {
  const hex = (c) => {
    const m = c.match(/rgba?\\((\\d+), (\\d+), (\\d+)(?:, ([\\d.]+))?\\)/);
    if (!m || (m[4] !== undefined && Number(m[4]) < 1)) return null;
    return "#" + [m[1], m[2], m[3]].map((n) => Number(n).toString(16).padStart(2, "0")).join("");
  };
  const behind = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const found = hex(getComputedStyle(node).backgroundColor);
      if (found) return found;
    }
    return "#ffffff";
  };
  const pairs = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("[aria-hidden=true], .visually-hidden, .skip-link, svg, script")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const fg = hex(getComputedStyle(el).color);
    if (fg) pairs.push([el.tagName.toLowerCase() + "." + el.className, fg, behind(el)]);
  }
  return pairs;
}"""


def low_contrast(page: Any) -> list[str]:
    pairs = page.evaluate(_TEXT_PAIRS)
    assert len(pairs) > 30, pairs  # the walk saw the page
    return [
        f"{where}: {fg} on {bg} = {contrast_ratio(fg, bg):.2f}"
        for where, fg, bg in pairs
        if contrast_ratio(fg, bg) < 4.5
    ]


def sign_in(page: Any, site: Site) -> None:
    page.goto(f"{site.service.url}/workspaces")
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill(site.token)
    page.click("#signin-button")
    page.wait_for_url(re.compile(f"/workspaces/{WS}$"))


def choose(page: Any, site: Site, theme: str, mode: str) -> None:
    page.goto(f"{site.service.url}/workspaces/{WS}/appearance")
    page.check(f"[data-testid=theme-option][data-theme='{theme}'] input[type=radio]")
    page.check(f"#mode-{mode}")
    page.click("#apply-appearance")
    page.wait_for_selector(f"[data-testid=in-effect][data-theme='{theme}'][data-mode='{mode}']")
    page.wait_for_load_state("load")  # the page's stylesheets (its theme.css) have arrived


def workspace_at(page: Any, site: Site, name: str) -> None:
    """The workspace page at 1280 and 390 px, each saved; nothing wider than the phone."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{site.service.url}/workspaces/{WS}")
        page.wait_for_selector("[data-testid=installation-row]")
        screenshot(page, f"appearance-workspace-{name}-{width}")
        if width == 390:
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= 390, f"{name}: the page is {scroll} px wide at 390 px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_pick_a_plugin_theme_and_toggle_dark_mode(page: Any, site: Site) -> None:
    sign_in(page, site)
    assert body_background(page) == rgb(PLUGPORT_LIGHT_BG)
    assert low_contrast(page) == []
    workspace_at(page, site, "light")
    page.click("[data-testid=nav-appearance]")
    page.wait_for_selector("#appearance-form")
    assert accessibility_problems(page) == []
    assert page.get_attribute("[data-testid=in-effect]", "data-source") == "default"

    choose(page, site, NORD_KEY, "light")
    assert page.inner_text("[data-testid=flash]") == f"Applied {NORD_KEY} (light) for you."
    assert body_background(page) == rgb(NORD_LIGHT_BG)
    assert "Seravek" in page.evaluate("getComputedStyle(document.body).fontFamily")
    radius = page.evaluate("getComputedStyle(document.querySelector('.panel')).borderRadius")
    assert radius == "4px"
    page.goto(f"{site.service.url}/workspaces/{WS}")
    assert body_background(page) == rgb(NORD_LIGHT_BG)
    assert low_contrast(page) == []
    screenshot(page, "appearance-workspace-nord-light-1280")

    choose(page, site, NORD_KEY, "dark")
    assert body_background(page) == rgb(NORD_DARK_BG)
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
    page.goto(f"{site.service.url}/workspaces/{WS}")
    assert body_background(page) == rgb(NORD_DARK_BG)
    assert low_contrast(page) == []
    screenshot(page, "appearance-workspace-nord-dark-1280")

    # auto follows the system's preference, with no reload of the choice
    choose(page, site, NORD_KEY, "auto")
    page.emulate_media(color_scheme="dark")
    assert body_background(page) == rgb(NORD_DARK_BG)
    page.emulate_media(color_scheme="light")
    assert body_background(page) == rgb(NORD_LIGHT_BG)

    # the host's own dark theme: every text on the workspace page stays readable
    choose(page, site, "plugport:dark", "dark")
    assert body_background(page) == rgb(PLUGPORT_DARK_BG)
    assert accessibility_problems(page) == []
    assert low_contrast(page) == []
    screenshot(page, "appearance-page-dark-1280")
    page.goto(f"{site.service.url}/workspaces/{WS}")
    assert low_contrast(page) == []
    workspace_at(page, site, "dark")
    header = page.evaluate(
        "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    )
    assert header != rgb(PLUGPORT_DARK_BG)

    page.goto(f"{site.service.url}/workspaces/{WS}/appearance")
    page.click("#reset-own")
    page.wait_for_selector("[data-testid=in-effect][data-source=default]")
    page.wait_for_load_state("load")
    assert body_background(page) == rgb(PLUGPORT_LIGHT_BG)


def test_an_unreadable_theme_is_refused_in_the_page(page: Any, site: Site) -> None:
    sign_in(page, site)
    before = spoil_nord(site.service, WS)
    try:
        page.goto(f"{site.service.url}/workspaces/{WS}/appearance")
        option = f"[data-testid=theme-option][data-theme='{NORD_KEY}']"
        assert page.is_disabled(f"{option} input[type=radio]")
        assert "fails the WCAG AA contrast check" in page.inner_text(
            f"{option} [data-testid=theme-refused]"
        )
        # a form sent anyway (the radio enabled by hand) is refused by the server
        page.evaluate(f'document.querySelector("{option} input").disabled = false')
        page.check(f"{option} input[type=radio]")
        page.click("#apply-appearance")
        page.wait_for_selector("[data-testid=appearance-error]")
        page.wait_for_load_state("load")
        error = page.inner_text("[data-testid=appearance-error]")
        assert "contributes.themes[0].light.text" in error
        assert "WCAG AA needs 4.5:1" in error
        screenshot(page, "appearance-page-refused-1280")
        assert body_background(page) == rgb(PLUGPORT_LIGHT_BG)
        assert page.get_attribute("[data-testid=in-effect]", "data-source") == "default"
    finally:
        installed_manifest(site.service, WS).write_text(before)
