"""The ``plugport dev`` page in a real browser: pick a command, call it, see its result; see a
widget's tree, follow its invalidation, use its action, and never run what a tree carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugport import scaffold
from tests.dev._devproc import DevProcess

pytestmark = pytest.mark.slow

HOSTILE_LABEL = "<img src=x onerror=window.pwned=1>"


def test_the_page_calls_a_command_and_shows_the_result(tmp_path: Path, page: Any) -> None:
    root = tmp_path / "counter"
    scaffold.create_plugin("acme.counter", "widget", root)
    with DevProcess(root, "--fresh") as dev:
        dev.started()
        page.goto(dev.url + "/")
        page.wait_for_selector("#target option[value='counter.increment']", state="attached")
        page.select_option("#target", "counter.increment")
        page.click("#call")
        result = page.locator("#result")
        result.filter(has_text='"value": 1').wait_for()
        assert "ok" in (result.get_attribute("class") or "")
        page.locator("#storage").filter(has_text='"count": 1').wait_for()

        # The widget's tree, rendered by its handler and shown as JSON.
        page.wait_for_selector("#widget option[value='counter.counter']", state="attached")
        page.click("#render")
        tree = page.locator("#tree")
        tree.filter(has_text='"value": 1').wait_for()
        assert '"type": "stat"' in tree.inner_text()
        # A command elsewhere invalidates it: the page renders it again by itself.
        page.click("#call")
        tree.filter(has_text='"value": 2').wait_for()
        # The tree's button, as an action the page offers.
        page.get_by_role("button", name="action: increment").click()
        tree.filter(has_text='"value": 3').wait_for()

        # Whatever a tree holds is shown as text, never run.
        page.fill("#widget-config", f'{{"label": "{HOSTILE_LABEL}"}}')
        page.click("#render")
        tree.filter(has_text=HOSTILE_LABEL).wait_for()
        assert page.evaluate("window.pwned") is None
        assert page.locator("#tree img").count() == 0
        # A setting the schema refuses: the error names the field.
        page.fill("#widget-config", '{"label": 7}')
        page.click("#render")
        tree.filter(has_text="/label").wait_for()
        assert "err" in (tree.get_attribute("class") or "")
        assert dev.interrupt() == 0
