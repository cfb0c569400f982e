"""plugport.email in a real sandboxed worker with the locked ``markdown`` library: what reaches
``plugin.mail.outbox`` (the in-memory relay, with the host's own checks) for each notification,
and the refusals: a bad template, the hourly limit, no relay."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from email_plugin.render import TemplateError, check_template, notice, recipients, render

from plugport.errors import PermissionDeniedError, PluginCallError

NOTE = {
    "source": "gitlab",
    "title": "MR !7 merged: Fix login",
    "text": "ada merged **3 commits**\n\n- one\n- two",
    "url": "https://gitlab.com/acme/api/-/merge_requests/7",
    "severity": "success",
    "fields": {"Project": "acme/api", "Author": "ada"},
}
DEFAULTS = {
    "subject_template": "[$source] $title",
    "text_template": "$title\n\n$text\n\n$fields\n\n$url\n",
    "html_template": "<h2>$title</h2><div>$text</div>$fields$link",
}


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert text is not None
    assert rich is not None
    return text.get_content(), rich.get_content()


@pytest.fixture
def configured(plugin: Any) -> Any:
    plugin.config.set(to=["team@example.com"], errors_to=["oncall@example.com"])
    return plugin


# --- pure parts -----------------------------------------------------------------------------


def test_a_payload_without_a_title_is_dropped() -> None:
    assert notice({"text": "no title"}) is None
    assert notice({"title": "  "}) is None
    assert notice("not an object") is None
    assert notice({"title": "T", "severity": "odd", "fields": [1]}) == {
        "title": "T",
        "text": "",
        "source": "plugport",
        "severity": "info",
        "url": "",
        "fields": {},
    }


def test_recipients_by_severity() -> None:
    to, errors = ["a@example.com", "B@Example.com "], ["oncall@example.com", "a@example.com"]
    assert recipients("info", to, errors) == ["a@example.com", "b@example.com"]
    assert recipients("error", to, errors) == [
        "a@example.com",
        "b@example.com",
        "oncall@example.com",
    ]
    assert recipients("success", to, errors, min_severity="warning") == []


def test_every_value_is_escaped_in_html_and_plain_in_text() -> None:
    payload = notice({**NOTE, "title": "<script>alert(1)</script> & co", "text": "<b>hi</b>"})
    assert payload is not None
    message = render(payload, DEFAULTS)
    assert message.subject == "[gitlab] <script>alert(1)</script> & co"
    assert message.text.startswith("<script>alert(1)</script> & co\n\n<b>hi</b>\n")
    assert "<script>" not in message.html
    assert "<h2>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</h2>" in message.html
    assert "<p>&lt;b&gt;hi&lt;/b&gt;</p>" in message.html


def test_links_keep_only_safe_targets_and_the_subject_is_one_line() -> None:
    payload = notice({**NOTE, "title": "two\nlines", "url": "javascript:alert(1)"})
    assert payload is not None
    message = render(payload, DEFAULTS, lambda text: f'<a href="javascript:x()">{text}</a>')
    assert message.subject == "[gitlab] two lines"
    assert 'href="#"' in message.html
    assert "javascript" not in message.html


def test_a_bad_template_names_the_setting() -> None:
    with pytest.raises(
        TemplateError, match=r"setting subject_template: unknown placeholder \$tittle"
    ):
        check_template("subject_template", "$tittle")
    with pytest.raises(
        TemplateError, match=r"setting text_template: a \$ that starts no placeholder"
    ):
        check_template("text_template", "costs 5$")
    with pytest.raises(TemplateError, match=r"unknown placeholder \$link"):
        check_template("text_template", "$link")  # HTML-only
    check_template("html_template", "$link $color $$5", html_part=True)


# --- in the sandbox ---------------------------------------------------------------------------


def test_a_notification_is_mailed_with_both_parts(configured: Any) -> None:
    assert configured.emit("notify.gitlab", NOTE) == 1
    [message] = configured.mail.outbox
    assert message["Subject"] == "[gitlab] MR !7 merged: Fix login"
    assert message["To"] == "team@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Plugport-Source"] == "gitlab"
    text, rich = parts(message)
    assert "ada merged **3 commits**" in text
    assert "Project: acme/api\nAuthor: ada" in text
    assert "https://gitlab.com/acme/api/-/merge_requests/7" in text
    assert "<strong>3 commits</strong>" in rich  # Markdown, by the locked library
    assert "<li>one</li>" in rich
    assert '<a href="https://gitlab.com/acme/api/-/merge_requests/7">Open in gitlab</a>' in rich
    assert "<th" in rich
    assert "acme/api</td>" in rich
    configured.assert_only_declared()


def test_errors_also_go_to_errors_to(configured: Any) -> None:
    configured.emit("notify.sentry", {**NOTE, "source": "sentry", "severity": "error"})
    [message] = configured.mail.outbox
    assert message["To"] == "team@example.com, oncall@example.com"


def test_a_script_in_the_title_arrives_escaped(configured: Any) -> None:
    configured.emit("notify.github", {**NOTE, "title": "<script>alert('x')</script>"})
    [message] = configured.mail.outbox
    text, rich = parts(message)
    assert "<script>" not in rich
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in rich
    assert text.startswith("<script>alert('x')</script>")  # plain text is plain


def test_dropped_notifications_send_nothing(configured: Any) -> None:
    configured.emit("notify.github", {"text": "no title"})
    configured.config.set(min_severity="warning")
    configured.emit("notify.github", NOTE)  # success < warning
    configured.config.set(min_severity="info", sources=["github"])
    configured.emit("notify.gitlab", NOTE)
    assert configured.mail.outbox == []
    assert any("dropped a notification without a title" in line for line in configured.logs)


def test_templates_from_settings(configured: Any) -> None:
    configured.config.set(
        subject_template="$severity: $title",
        text_template="T=$title",
        html_template="<i>$title</i>",
    )
    configured.emit("notify.gitlab", NOTE)
    [message] = configured.mail.outbox
    assert message["Subject"] == "success: MR !7 merged: Fix login"
    assert parts(message) == ("T=MR !7 merged: Fix login\n", "<i>MR !7 merged: Fix login</i>\n")


def test_a_bad_template_placeholder_is_refused_naming_the_setting(configured: Any) -> None:
    configured.config.set(html_template="<p>$titel</p>")
    with pytest.raises(
        PluginCallError, match=r"setting html_template: unknown placeholder \$titel"
    ):
        configured.command("email.send_test")
    assert configured.mail.outbox == []


def test_send_test(configured: Any) -> None:
    sent = configured.command("email.send_test")
    assert sent["to"] == ["team@example.com"]
    [message] = configured.mail.outbox
    assert message["Message-ID"] == sent["message_id"]
    assert message["Subject"] == "[plugport] Test message from Plugport"
    configured.command("email.send_test", to="me@example.com")
    assert configured.mail.outbox[-1]["To"] == "me@example.com"


def test_send_test_without_recipients_says_how_to_set_them(plugin: Any) -> None:
    with pytest.raises(PluginCallError, match=r"plugport config set plugport.email to"):
        plugin.command("email.send_test")


def test_a_recipient_outside_mail_to_is_refused_by_the_host(plugin: Any) -> None:
    with pytest.raises(
        PermissionDeniedError, match=r"'ceo@other\.org' matches no granted recipient"
    ):
        plugin.command("email.send_test", to="ceo@other.org")
    assert plugin.mail.outbox == []
    plugin.assert_denied("mail.send")


def test_the_hourly_limit_gives_a_clear_error(configured: Any) -> None:
    configured.mail.limit(2)
    configured.command("email.send_test")
    configured.command("email.send_test")
    with pytest.raises(PluginCallError) as caught:
        configured.command("email.send_test")
    assert caught.value.type == "ResourceLimitExceededError"
    assert "exceeded mail_per_hour: 2 messages in the last hour, the limit is 2" in str(
        caught.value
    )
    assert len(configured.mail.outbox) == 2


def test_no_relay_configured(configured: Any) -> None:
    configured.mail.unconfigure()
    with pytest.raises(PluginCallError) as caught:
        configured.command("email.send_test")
    assert caught.value.type == "MailDeliveryError"
    assert "no mail relay is configured on this host" in str(caught.value)
    assert "[mail] host and from in HOME/policy.toml" in str(caught.value)
    assert configured.mail.outbox == []
