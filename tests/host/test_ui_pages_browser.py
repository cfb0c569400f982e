"""Plugin pages, menus and field types in a real Chromium with ``plugport-ui.js``: a page opened
from the navigation, a button answered in place, an overlay opened by an action and closed with
Escape (focus back where it was), a table sorted and paged, tabs switched from the keyboard, a
menu item on an installation row, a field type's error on the settings form, and a hostile
plugin's text that never runs. Skips, saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.host._service import Service
from tests.host._ui_plugins import DORMANT, EVIL, PANELS, SCORES, XSS, install_plugins
from tests.host.service._tasks_service import service_at

OVERVIEW = f"/workspaces/ui/plugins/{PANELS}/pages/overview"
SURFACE = "[data-testid=plugin-surface]"
OVERLAY = "[data-pp-overlay]"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    root = tmp_path_factory.mktemp("ui-browser")
    with service_at(root) as service:
        token = service.workspace("ui")
        install_plugins(service.home("ui"), root / "plugins", [PANELS, EVIL, DORMANT])
        yield service, token


@pytest.fixture
def page(chromium: Any, host: tuple[Service, str]) -> Iterator[Any]:
    """A signed-in page; fails the test on a script error or an alert a plugin's text opened."""
    service, token = host
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{service.url}/workspaces")
    page.get_by_label("Workspace token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=installations]")
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def visible_scores(page: Any) -> list[int]:
    cells = page.locator(f"{SURFACE} table[data-pp-table] tbody tr:not([hidden]) td:nth-child(2)")
    return [int(text) for text in cells.all_inner_texts()]


def focused_text(page: Any) -> str:
    text: str = page.evaluate("document.activeElement ? document.activeElement.textContent : ''")
    return text.strip()


def test_a_plugin_page_from_the_nav_its_button_and_its_overlay(page: Any) -> None:
    from tests.browser.conftest import accessibility_problems

    page.click(f"[data-testid=nav-plugin-page][data-plugin='{PANELS}']")
    page.wait_for_selector("[data-testid=plugin-page-title]")
    assert page.inner_text("[data-testid=plugin-page-title]") == "Panels overview"
    assert "A page of plugin acme.panels" in page.inner_text("[data-testid=plugin-page-source]")
    assert accessibility_problems(page) == []
    url = page.url

    page.get_by_role("button", name="Bump", exact=True).click()
    page.wait_for_selector(f"{SURFACE} >> text=Bumped by 1")
    assert page.url == url  # answered in place, not by a new page
    assert focused_text(page) == "Bump"  # the focus stays on the button used

    page.get_by_role("button", name="Show details").click()
    dialog = page.locator(OVERLAY)
    dialog.wait_for()
    assert dialog.get_attribute("role") == "dialog"
    assert "Details of item-1" in dialog.inner_text()
    assert "From plugin acme.panels" in dialog.inner_text()
    assert page.evaluate(
        "document.querySelector('[data-pp-overlay]').contains(document.activeElement)"
    )
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the focus goes round inside the overlay
    assert page.evaluate(
        "document.querySelector('[data-pp-overlay]').contains(document.activeElement)"
    )
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert focused_text(page) == "Show details"  # back where it was

    page.get_by_role("button", name="Show details").click()
    page.get_by_role("button", name="Bump from the overlay").click()
    page.wait_for_selector(f"{SURFACE} >> text=Bumped by 10")
    assert page.locator(OVERLAY).count() == 0

    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Wipe").click()
    assert asked == ["Wipe everything?"]
    assert "Bumped by 10" in page.inner_text(SURFACE)  # not sent


def test_sort_and_page_a_table(page: Any) -> None:
    page.goto(page.url.split("/workspaces")[0] + OVERVIEW)
    status = page.locator(f"{SURFACE} [data-pp-table-status]")
    assert visible_scores(page) == SCORES[:3]
    assert page.inner_text(f"{SURFACE} [data-pp-page]") == "Page 1 of 3"
    assert page.is_disabled(f"{SURFACE} [data-pp-prev]")

    header = page.locator(f"{SURFACE} th[data-pp-key=score]")
    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert page.locator(f"{SURFACE} th[data-pp-key=name]").get_attribute("aria-sort") == "none"
    ordered = sorted(SCORES)
    assert visible_scores(page) == ordered[:3]
    assert status.inner_text() == "Sorted by Score, ascending. Page 1 of 3"
    page.click(f"{SURFACE} [data-pp-next]")
    assert visible_scores(page) == ordered[3:6]
    page.click(f"{SURFACE} [data-pp-next]")
    assert visible_scores(page) == ordered[6:]
    assert page.is_disabled(f"{SURFACE} [data-pp-next]")
    assert status.inner_text() == "Page 3 of 3"

    header.get_by_role("button").press("Enter")  # a real button: the keyboard sorts too
    assert header.get_attribute("aria-sort") == "descending"
    assert visible_scores(page) == sorted(SCORES, reverse=True)[:3]


def test_switch_tabs_with_the_keyboard(page: Any) -> None:
    page.goto(page.url.split("/workspaces")[0] + OVERVIEW)
    tabs = page.locator(f"{SURFACE} [role=tab]")
    assert page.is_visible(f"{SURFACE} [role=tablist]")
    assert tabs.all_inner_texts() == ["First", "Second", "Third"]

    def shown() -> list[str]:
        panels = page.locator(f"{SURFACE} [role=tabpanel]:not([hidden]) p")
        texts: list[str] = panels.all_inner_texts()
        return texts

    assert shown() == ["First panel"]
    tabs.nth(0).focus()
    page.keyboard.press("ArrowRight")
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert tabs.nth(0).get_attribute("aria-selected") == "false"
    assert focused_text(page) == "Second"
    assert shown() == ["Second panel"]
    page.keyboard.press("End")
    assert shown() == ["Third panel"]
    page.keyboard.press("ArrowRight")  # round to the first
    assert shown() == ["First panel"]
    assert tabs.nth(0).get_attribute("tabindex") == "0"
    assert tabs.nth(2).get_attribute("tabindex") == "-1"


def test_a_menu_item_on_an_installation_row_opens_its_overlay(page: Any) -> None:
    item = page.locator(
        f"[data-testid=menu-item][data-plugin='{PANELS}'][data-item=inspect]"
        f"[data-target='{DORMANT}']"
    )
    item.click()
    panel = page.locator(f"{OVERLAY}.pp-overlay-panel")
    panel.wait_for()
    text = panel.inner_text()
    assert "Inspect" in text
    assert "From plugin acme.panels" in text
    assert "installation" in text
    assert DORMANT in text
    panel.get_by_role("link", name="Close").click()
    panel.wait_for(state="detached")
    assert page.evaluate("document.activeElement.dataset.item") == "inspect"

    page.locator(
        f"[data-testid=menu-item][data-plugin='{PANELS}'][data-item=ping][data-target='{EVIL}']"
    ).click()
    page.wait_for_selector("[data-testid=flash] >> text=Ping (acme.panels): done.")


def test_a_settings_field_type_shows_its_plugins_error(page: Any) -> None:
    page.click(f"[data-testid=settings-link][data-plugin='{PANELS}']")
    page.wait_for_selector("#settings-form")
    region = page.get_by_label("Region", exact=True)
    assert region.get_attribute("placeholder") == "EU-1"
    region.fill("eu")
    assert page.evaluate(
        "document.querySelector('[name=\"setting.region\"]').validity.patternMismatch"
    )
    region.fill("XX-0")  # the pattern allows it; the plugin does not
    page.click("#save-settings")
    page.wait_for_selector("[data-testid=field-error]")
    assert page.inner_text("[data-testid=field-error]") == "XX-0 is reserved; pick another region"
    assert page.get_by_label("Region", exact=True).input_value() == "XX-0"
    assert page.get_by_label("Region", exact=True).get_attribute("aria-invalid") == "true"


def test_a_hostile_plugins_text_never_runs(page: Any) -> None:
    dialogs: list[tuple[str, str]] = []

    def seen(dialog: Any) -> None:
        dialogs.append((dialog.type, dialog.message))
        dialog.accept()

    page.on("dialog", seen)
    page.click(f"[data-testid=nav-plugin-page][data-plugin='{EVIL}']")
    page.wait_for_selector("[data-testid=plugin-page-title]")
    assert page.inner_text("[data-testid=plugin-page-title]") == XSS
    assert XSS in page.inner_text(SURFACE)
    page.locator(f"{SURFACE} form[data-pp-action] button").first.click()  # asks, then fails
    page.wait_for_selector(f"{SURFACE} [data-pp-failure]")
    assert "window.__pp_xss" in page.inner_text(f"{SURFACE} [data-pp-failure]")

    page.goto(page.url.split("/workspaces")[0] + "/workspaces/ui")
    page.locator(f"[data-testid=menu-item][data-plugin='{EVIL}'][data-target='{PANELS}']").click()
    page.locator(OVERLAY).wait_for()
    assert XSS in page.inner_text(OVERLAY)

    page.goto(page.url.split("/workspaces")[0] + f"/workspaces/ui/installations/{EVIL}/settings")
    page.locator("[name='setting.motto']").fill("hello")
    page.click("#save-settings")
    page.wait_for_selector("[data-testid=field-error]")
    assert page.inner_text("[data-testid=field-error]") == XSS

    assert page.evaluate("typeof window.__pp_xss") == "undefined"
    assert dialogs == [("confirm", XSS)]  # the button's own question, as text; no alert ran
