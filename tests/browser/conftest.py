"""Browser tests: Playwright drives the machine's own Chromium (Debian's ``chromium``; Playwright
never downloads a browser here), headless and kept off the network, against real servers on
127.0.0.1. Without Playwright or Chromium these tests skip and say which is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

# The flags keep Chromium from reaching for the network (this machine has none) and from
# needing a display or a user namespace (we run as root in CI).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]


def chromium_path() -> str | None:
    for name in (os.environ.get("PLUGPORT_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (make test installs it)"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed (apt-get install chromium; make test does it as root)"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    """Saved as a test artifact under build/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# What a screen-reader or keyboard user needs from every page, checked in the live DOM: one h1,
# headings that never skip a level, a name for every control and every image, a lang.
_ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  let last = 0;
  for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const level = Number(h.tagName[1]);
    if (last && level > last + 1) {
      problems.push(`${h.tagName} "${h.textContent.trim()}" after h${last}`);
    }
    last = level;
  }
  const named = (el) =>
    el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") ||
    (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) || el.closest("label") ||
    el.getAttribute("title");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!named(el)) problems.push(`unlabelled ${el.tagName.toLowerCase()} ${el.name || el.id}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!(el.textContent.trim() || el.getAttribute("aria-label"))) {
      problems.push(`nameless ${el.outerHTML.slice(0, 80)}`);
    }
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`img without alt: ${img.src}`);
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.getAttribute("aria-hidden") === "true") continue;
    const label = svg.getAttribute("aria-label") || svg.getAttribute("aria-labelledby");
    if (!(label || svg.querySelector("title"))) problems.push("svg without a title");
  }
  return problems;
}"""


def accessibility_problems(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(_ACCESSIBILITY_PROBLEMS)
    return problems
