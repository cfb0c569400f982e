"""The ``plugport dev`` page in a real browser: pick a command, call it, see its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugport import scaffold
from tests.dev._devproc import DevProcess

pytestmark = pytest.mark.slow


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
        assert dev.interrupt() == 0
