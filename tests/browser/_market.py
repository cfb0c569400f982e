"""A small marketplace for the browser tests: a real registry on uvicorn (SQLite) holding a few
published plugins from real archives, one waiting for review, and tokens for a reader, a
reviewer and a publisher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plugport.authoring import pack_plugin
from tests.host._plugins import approve, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

WORD_COUNT = "acme.word-count"
NOTIFIER = "acme.slack-notifier"
CHART = "acme.chart-widget"
PENDING = "acme.pending-tool"

_PLUGINS = {
    WORD_COUNT: (
        "Word Count",
        "Counts the words in text tasks.",
        'categories = ["task-processor"]\ntags = ["text", "words"]\n'
        '[permissions]\nstorage = "64 KiB"\n',
    ),
    NOTIFIER: (
        "Slack Notifier",
        "Posts a message to Slack when a task is done.",
        'categories = ["integration"]\ntags = ["slack", "chat"]\n'
        '[permissions]\nnetwork = ["hooks.slack.com"]\n',
    ),
    CHART: (
        "Chart Widget",
        "Draws a chart of processed tasks on the dashboard.",
        'categories = ["ui"]\ntags = ["chart", "dashboard"]\n[permissions]\nui = ["widgets"]\n',
    ),
}


@dataclass
class Market:
    registry: Registry
    reader: str
    reviewer: str


def seed(registry: Registry, root: Path) -> Market:
    publisher = Publisher(registry, root / "publisher")
    for name, (display, description, extra) in {
        **_PLUGINS,
        PENDING: ("Pending Tool", "Waits for a reviewer.", 'categories = ["devtools"]\n'),
    }.items():
        source = write(root / "src", name, "1.0.0", extra=extra)
        manifest = source / "plugport.toml"
        manifest.write_text(
            manifest.read_text()
            .replace(f'display_name = "{name}"', f'display_name = "{display}"')
            .replace('description = "A test plugin."', f'description = "{description}"')
        )
        archive = pack_plugin(source, root / "dist").result.path
        response = publisher.upload(archive, name=name)
        assert response.status_code == 201, response.text
        if name != PENDING and response.json()["status"] != "published":
            approve(registry, name, "1.0.0")
    return Market(
        registry, registry.token("reader", "publish:reader"), registry.token("rex", "review")
    )
