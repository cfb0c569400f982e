"""plugport.cron-field in a real sandboxed worker: the ``cron.expression`` field type answers a
host form's question about each value (an error message or ``None``), and the ``cron.next-runs``
tile lists the next runs, compared with ``tests/snapshots/`` (the run times themselves depend
on when the test runs: each is checked against the schedule, then written as a placeholder)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cron_field.cron import parse

from plugport.components import ComponentError
from plugport.testing import PluginHandle

FIELD = "cron.expression"
TILE = "cron.next-runs"
SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(tree: Any, name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("PLUGPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} is missing: run once with PLUGPORT_UPDATE_SNAPSHOTS=1"
    assert tree == json.loads(path.read_text())


def runs_checked(tree: Any, expression: str, before: datetime) -> Any:
    """``tree`` with its listed runs replaced by ``run 1``, ``run 2``, ... once each is shown to
    be a time ``expression`` runs at, later than ``before`` and later than the one above it."""
    schedule = parse(expression)
    listed = tree["children"][2]["items"]
    previous = before.replace(second=0, microsecond=0)
    for number, item in enumerate(listed, start=1):
        when = datetime.strptime(item["text"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        assert when > previous, (when, previous)
        assert schedule.runs_at(when), item
        assert item["secondary"] == when.strftime("%A")
        previous = when
        item["text"], item["secondary"] = f"run {number}", "weekday"
    return tree


# --- the field type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("*/5 * * * *", None),
        ("30 2 * * MON-FRI", None),
        ("  0 0 1 jan *  ", None),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 0 31 2 *", "day: never runs: no month in 2 has a day 31"),
        ("@daily", "write the five fields instead of '@daily' (@daily is 0 0 * * *)"),
        (
            "<script>alert(1)</script> * * * *",
            "minute: the step in '<script>alert(1)</script>' must be a whole number from 1",
        ),
        (42, "a cron expression is text, not int"),
    ],
)
def test_the_field_type_answers_a_form(plugin: PluginHandle, value: Any, said: str | None) -> None:
    assert plugin.ui.render(FIELD, context={"value": value}) == said
    plugin.assert_only_declared()


def test_a_field_question_without_a_value_is_refused(plugin: PluginHandle) -> None:
    assert plugin.ui.render(FIELD) == "a cron expression is text, not NoneType"


# --- the tile ---------------------------------------------------------------------------------


def test_the_tile_with_its_default_expression(plugin: PluginHandle) -> None:
    before = datetime.now(UTC)
    tree = plugin.ui.widget(TILE)
    assert_snapshot(runs_checked(tree, "*/5 * * * *", before), "next-runs-default")


def test_the_tile_with_both_day_fields_restricted(plugin: PluginHandle) -> None:
    before = datetime.now(UTC)
    tree = plugin.ui.widget(TILE, {"expression": "0 9 1,15 * mon", "count": 8})
    assert_snapshot(runs_checked(tree, "0 9 1,15 * mon", before), "next-runs-either-day")
    assert len(tree["children"][2]["items"]) == 8


def test_the_tile_says_what_is_wrong_with_its_expression(plugin: PluginHandle) -> None:
    tree = plugin.ui.widget(TILE, {"expression": "*/5 * * *"})
    assert_snapshot(tree, "next-runs-invalid")


def test_settings_the_schema_refuses_never_reach_the_plugin(plugin: PluginHandle) -> None:
    with pytest.raises(ComponentError, match="21 is greater than the maximum of 20"):
        plugin.ui.widget(TILE, {"count": 21})
    with pytest.raises(ComponentError, match="is too long"):
        plugin.ui.widget(TILE, {"expression": "* " * 101})
    assert plugin.calls == []
