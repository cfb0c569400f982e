"""plugport.slack's SLACK_POST task against FakeSlack, run as the host runs one attempt
(``handle.tasks.run``: the payload schema first, the result schema after): text and Markdown
posts with the bot token, the payload's own blocks, the failure paths (an unknown channel, a
rate limit waited out, a refused token, a payload without text) and the Markdown conversion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_plugin.blocks import SECTION_MAX, markdown_blocks, markdown_to_mrkdwn

from plugport.errors import PluginCallError, TaskValidationError
from plugport.testing import PluginHandle
from plugport.testing.services.slack import FakeSlack, block_kit_errors

FAST = {"retry_budget_s": 1, "retry_base_s": 0.01, "retry_attempts": 3}
NOTES = """\
## acme/api: changes since v1.0.0

### Fixes

- Fix **login** on Safari (#12, @ada)
- Escape <html> & friends, see [the guide](https://docs.example.com/guide)
"""


@pytest.fixture
def slack(plugin: PluginHandle) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.mount(plugin)
        plugin.secrets.set("bot", fake.bot_token)
        plugin.config.set(**FAST)
        fake.add_channel("releases", id="C0REL")
        yield fake


def test_markdown_is_posted_as_mrkdwn_with_the_bot_token(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    answer = plugin.tasks.run("SLACK_POST", {"channel": "#releases", "markdown": NOTES})
    [posted] = slack.posted("releases")
    assert answer == {"channel": "C0REL", "ts": posted["ts"]}
    assert posted["blocks"] == [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*acme/api: changes since v1.0.0*\n\n*Fixes*\n\n"
                "• Fix *login* on Safari (#12, @ada)\n"
                "• Escape &lt;html&gt; &amp; friends, see "
                "<https://docs.example.com/guide|the guide>",
            },
        }
    ]
    assert block_kit_errors(posted["blocks"]) == []
    [request] = slack.received("POST", r"/api/chat\.postMessage")
    assert request.headers["authorization"] == f"Bearer {slack.bot_token}"
    assert [p for _, p, _ in plugin.tasks.progress] == [10, 100]
    plugin.assert_only_declared()


def test_text_and_own_blocks(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.tasks.run("SLACK_POST", {"channel": "C0REL", "text": "Released *v1.1*"})
    blocks = [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]
    plugin.tasks.run("SLACK_POST", {"channel": "C0REL", "text": "fallback", "blocks": blocks})
    first, second = slack.posted("releases")
    assert first["text"] == "Released *v1.1*"
    assert first["blocks"][0]["text"]["text"] == "Released *v1.1*"
    assert (second["text"], second["blocks"]) == ("fallback", blocks)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "hi"}, "/channel"),
        ({"channel": "C0REL", "text": ""}, "/text"),
        ({"channel": "C0REL", "text": "hi", "as_user": True}, "/as_user"),
    ],
)
def test_a_payload_that_breaks_its_schema_posts_nothing(
    plugin: PluginHandle, slack: FakeSlack, payload: dict[str, object], field: str
) -> None:
    with pytest.raises(TaskValidationError) as refused:
        plugin.tasks.run("SLACK_POST", payload)
    assert (refused.value.part, refused.value.field) == ("payload", field)
    assert slack.requests == []


def test_a_payload_without_text_or_markdown_posts_nothing(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    with pytest.raises(TaskValidationError, match=r"payload the document"):
        plugin.tasks.run("SLACK_POST", {"channel": "C0REL"})
    assert slack.requests == []


def test_an_unknown_channel_fails_the_attempt(plugin: PluginHandle, slack: FakeSlack) -> None:
    with pytest.raises(PluginCallError, match=r"channel_not_found"):
        plugin.tasks.run("SLACK_POST", {"channel": "#nowhere", "text": "hi"})
    assert slack.messages == {}


def test_a_rate_limit_is_waited_out(plugin: PluginHandle, slack: FakeSlack) -> None:
    slack.throttle(1, retry_after_s=0)
    plugin.tasks.run("SLACK_POST", {"channel": "C0REL", "text": "hi"})
    assert len(slack.received("POST", r"/api/chat\.postMessage")) == 2
    assert len(slack.posted("releases")) == 1


def test_a_refused_token_names_the_secret_command(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.secrets.set("bot", "xoxb-revoked")
    with pytest.raises(PluginCallError, match=r"plugport secret set plugport\.slack bot"):
        plugin.tasks.run("SLACK_POST", {"channel": "C0REL", "text": "hi"})
    assert slack.messages == {}


def test_markdown_conversion_rules() -> None:
    assert markdown_to_mrkdwn("<!-- plugport-review:abc -->\n# Title #\n__b__ and **c**") == (
        "*Title*\n*b* and *c*"
    )
    assert markdown_to_mrkdwn("* one\n  + two\n`a < b`") == "• one\n  • two\n`a &lt; b`"
    assert markdown_to_mrkdwn("[a|b](https://x.test/p)") == "<https://x.test/p|a¦b>"
    assert markdown_to_mrkdwn("[not a web link](javascript:alert(1))") == (
        "[not a web link](javascript:alert(1))"
    )


def test_long_markdown_is_split_within_slacks_limits() -> None:
    blocks = markdown_blocks("\n".join(f"- item {i} " + "x" * 90 for i in range(100)))
    assert len(blocks) == 4
    assert all(len(b["text"]["text"]) <= SECTION_MAX for b in blocks)
    assert block_kit_errors(blocks) == []
    huge = markdown_blocks("\n".join("y" * 2999 for _ in range(60)))
    assert len(huge) == 50
    assert huge[-1]["text"]["text"].startswith("… (cut")
    assert markdown_blocks("<!-- only a marker -->") == []
