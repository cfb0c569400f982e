"""plugport.github against FakeGitHub, in the real sandbox: deliveries in, notify.github out,
comments and check runs back over REST, with the failure paths GitHub has (a refused token,
rate limits as 403 and 429, 5xx, a malformed or unsigned delivery, pages)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from github_plugin.notices import (
    MalformedDeliveryError,
    notice_for_pull_request,
    notice_for_push,
    pull_request_of,
    welcome_comment,
)
from github_plugin.rest import (
    expires_at_epoch,
    failure_message,
    jwt_signing_input,
    next_page,
    token_is_fresh,
)

from plugport.errors import PluginCallError, WebhookRefusedError
from plugport.testing import PluginHandle
from plugport.testing.services.github import FakeGitHub

PAT = "ghp_stand-in-token-for-tests-000000000000"
SECRET = "webhook-s3cret"
FAST = {"retry_attempts": 3, "retry_budget_s": 2}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_token(PAT, "plugport-bot")
        fake.add_repo("acme/api")
        yield fake


@pytest.fixture
def gh(plugin: PluginHandle, github: FakeGitHub) -> PluginHandle:
    """The plugin with token auth, talking to the fake."""
    github.mount(plugin)
    plugin.secrets.set("token", PAT)
    plugin.config.set(**FAST)
    return plugin


@pytest.fixture
def app(gh: PluginHandle, github: FakeGitHub) -> PluginHandle:
    """The plugin as a GitHub App: only the key is set, never a token."""
    gh.secrets.set("app_key", github.app_private_key_pem)
    gh.config.set(auth="app", app_id=github.app_id, installation_id=github.installation_id)
    return gh


def deliver(plugin: PluginHandle, github: FakeGitHub, event: str, payload: Any) -> None:
    body, headers = github.delivery(event, payload, SECRET)
    plugin.webhook("events", body, headers, secret=SECRET)


def logged_line(plugin: PluginHandle, text: str, timeout_s: float = 3.0) -> bool:
    """Whether a log line with ``text`` arrived: the worker's log lines reach the test
    asynchronously, a moment after the call returned."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(text in line for line in plugin.logs):
            return True
        time.sleep(0.02)
    return False


def notices(plugin: PluginHandle) -> list[dict[str, Any]]:
    return [e["payload"] for e in plugin.events.published if e["topic"] == "notify.github"]


# --- pure parts -----------------------------------------------------------------------------------


def test_notices_for_pull_requests(github: FakeGitHub) -> None:
    github.add_pull("acme/api", title="Fix login", author="ada", commits=3)
    opened = pull_request_of(github.pull_request_payload("opened", "acme/api", 1))
    assert notice_for_pull_request(opened) == {
        "source": "github",
        "title": "PR #1 opened: Fix login",
        "text": "ada wants to merge 3 commits into main from fix-login",
        "url": "https://github.com/acme/api/pull/1",
        "severity": "info",
        "fields": {"Repository": "acme/api", "Author": "ada", "Branch": "fix-login → main"},
    }
    synced = pull_request_of(github.pull_request_payload("synchronize", "acme/api", 1))
    assert notice_for_pull_request(synced) is None
    closed = notice_for_pull_request(
        pull_request_of(github.pull_request_payload("closed", "acme/api", 1))
    )
    assert closed is not None
    assert (closed["title"], closed["severity"]) == ("PR #1 closed: Fix login", "warning")
    github.merge_pull("acme/api", 1, by="grace")
    merged = notice_for_pull_request(
        pull_request_of(github.pull_request_payload("closed", "acme/api", 1))
    )
    assert merged is not None
    assert (merged["title"], merged["text"], merged["severity"]) == (
        "PR #1 merged: Fix login",
        "Merged by grace into main",
        "success",
    )


def test_notices_for_pushes(github: FakeGitHub) -> None:
    push = github.push_payload("acme/api", commits=2, messages=["Add x\n\nlong", "Fix y"])
    notice = notice_for_push(push)
    assert notice is not None
    assert notice["title"] == "2 new commits pushed to acme/api main"
    assert notice["url"] == push["compare"]
    assert notice["text"].splitlines()[1:] == [
        f"{push['commits'][0]['id'][:7]} Add x",
        f"{push['commits'][1]['id'][:7]} Fix y",
    ]
    assert notice["fields"]["Commits"] == "2"
    assert notice_for_push(github.push_payload("acme/api", ref="refs/heads/feature")) is None
    assert notice_for_push(github.push_payload("acme/api", ref="refs/tags/v1")) is None
    assert notice_for_push(github.push_payload("acme/api", commits=0)) is None
    many = notice_for_push(github.push_payload("acme/api", commits=7))
    assert many is not None
    assert many["text"].endswith("… and 2 more")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"action": "opened"}, "pull_request is missing"),
        (
            {"action": "opened", "number": 1, "pull_request": {"title": 3}, "repository": {}},
            "repository.full_name is missing",
        ),
    ],
)
def test_a_malformed_pull_request_names_the_field(payload: Any, problem: str) -> None:
    with pytest.raises(MalformedDeliveryError, match=problem):
        pull_request_of(payload)


def test_rest_rules() -> None:
    link = (
        '<https://api.github.com/repos/a/b/pulls?page=1>; rel="prev", '
        '<https://api.github.com/repos/a/b/pulls?page=3>; rel="next", '
        '<https://api.github.com/repos/a/b/pulls?page=9>; rel="last"'
    )
    assert next_page(link) == "https://api.github.com/repos/a/b/pulls?page=3"
    assert next_page('<https://x/?page=1>; rel="first"') is None
    assert next_page(None) is None
    head, claims = (json.loads(_unb64(part)) for part in jwt_signing_input(42, 1000).split("."))
    assert head == {"alg": "RS256", "typ": "JWT"}
    assert claims == {"iat": 940, "exp": 1540, "iss": "42"}
    assert expires_at_epoch("1970-01-01T00:10:00Z") == 600
    assert token_is_fresh(1000, 600)
    assert not token_is_fresh(1000, 701)
    said = failure_message(401, b'{"message": "Bad credentials"}', auth="token", what="x")
    assert said.endswith("set a valid one with `plugport secret set plugport.github token`")


def test_welcome_text_fills_in_only_its_names(github: FakeGitHub) -> None:
    github.add_pull("acme/api", title="T", author="ada")
    pull = pull_request_of(github.pull_request_payload("opened", "acme/api", 1))
    assert welcome_comment("Hi @{author}: {title} in {repository} {x}", pull) == (
        "Hi @ada: T in acme/api {x}"
    )


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- deliveries -----------------------------------------------------------------------------------


def test_an_opened_pull_request_is_announced_and_welcomed(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    gh.config.set(comment_on_open=True, welcome_text="Thanks @{author}!")
    github.add_pull("acme/api", title="Fix login", author="ada")
    deliver(gh, github, "pull_request", github.pull_request_payload("opened", "acme/api", 1))
    [notice] = notices(gh)
    assert notice["title"] == "PR #1 opened: Fix login"
    [comment] = github.comments
    assert (comment["repository"], comment["issue_number"], comment["body"]) == (
        "acme/api",
        1,
        "Thanks @ada!",
    )
    [sent] = github.received("POST", r"/repos/acme/api/issues/1/comments")
    assert sent.headers["authorization"] == f"Bearer {PAT}"  # added by the host
    assert sent.headers["user-agent"].startswith("plugport-github-example/")
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["accept"] == "application/vnd.github+json"
    gh.assert_only_declared()


def test_a_merged_pull_request_and_a_default_branch_push_are_announced(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api", title="Fix login")
    github.merge_pull("acme/api", 1, by="grace")
    deliver(gh, github, "pull_request", github.pull_request_payload("closed", "acme/api", 1))
    deliver(gh, github, "push", github.push_payload("acme/api", commits=3))
    deliver(gh, github, "push", github.push_payload("acme/api", ref="refs/heads/wip"))
    titles = [n["title"] for n in notices(gh)]
    assert titles == ["PR #1 merged: Fix login", "3 new commits pushed to acme/api main"]
    assert github.requests == []  # no comment without comment_on_open, no REST call at all


def test_an_unsigned_or_tampered_delivery_is_refused_by_the_host(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api")
    body, headers = github.delivery(
        "pull_request", github.pull_request_payload("opened", "acme/api", 1), SECRET
    )
    with pytest.raises(WebhookRefusedError):
        gh.webhook("events", body + b" ", headers, secret=SECRET)
    unsigned = {k: v for k, v in headers.items() if not k.startswith("X-Hub-Signature")}
    with pytest.raises(WebhookRefusedError):
        gh.webhook("events", body, unsigned, secret=SECRET)
    with pytest.raises(WebhookRefusedError):
        gh.webhook("events", *github.delivery("push", {}, "wrong-secret"), secret=SECRET)
    assert notices(gh) == []


@pytest.mark.parametrize(
    ("event", "body", "logged"),
    [
        ("pull_request", b'{"action": "opened", "number": 1}', "pull_request is missing"),
        ("push", b'{"ref": "refs/heads/main"}', "repository.full_name is missing"),
        ("push", b"not json", "the body is not JSON"),
        ("issues", b'{"action": "opened"}', "ignored a 'issues' delivery"),
        ("ping", b'{"zen": "Keep it simple."}', "the webhook is set up"),
    ],
)
def test_a_delivery_of_another_shape_is_logged_and_dropped(
    gh: PluginHandle, github: FakeGitHub, event: str, body: bytes, logged: str
) -> None:
    headers = {**github.delivery(event, {}, SECRET)[1]}
    headers["X-Hub-Signature-256"] = "sha256=" + _hmac(body)
    gh.webhook("events", body, headers, secret=SECRET)  # no crash: the handler returns
    assert logged_line(gh, logged), gh.logs
    assert notices(gh) == []
    assert github.requests == []


def _hmac(body: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- commands and REST failure paths ----------------------------------------------------------


def test_comment_command(gh: PluginHandle, github: FakeGitHub) -> None:
    github.add_pull("acme/api")
    answer = gh.command("github.comment", "acme/api", 1, "Looks good")
    [comment] = github.comments
    assert answer == {"id": comment["id"], "url": comment["html_url"]}
    assert comment["user"]["login"] == "plugport-bot"


def test_a_bad_token_is_a_clear_error_naming_the_secret_command(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api")
    gh.secrets.set("token", "ghp_revoked")
    with pytest.raises(PluginCallError) as refused:
        gh.command("github.comment", "acme/api", 1, "hi")
    message = str(refused.value)
    assert (
        "GitHub refused the token while commenting on acme/api#1 (HTTP 401: Bad credentials)"
        in message
    )
    assert "`plugport secret set plugport.github token`" in message
    assert "ghp_revoked" not in message
    assert github.comments == []
    assert len(github.received("POST")) == 1  # a 401 is not retried


@pytest.mark.parametrize("kind", ["secondary-403", "throttle-429"])
def test_rate_limits_are_waited_out(gh: PluginHandle, github: FakeGitHub, kind: str) -> None:
    github.add_pull("acme/api")
    if kind == "secondary-403":
        github.secondary_limit(1, retry_after_s=0)
    else:
        github.throttle(1, retry_after_s=0)
    gh.command("github.comment", "acme/api", 1, "hi")
    assert len(github.received("POST")) == 2
    assert len(github.comments) == 1


def test_a_rate_limit_that_holds_gives_up_with_a_clear_error(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api")
    github.secondary_limit(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"GitHub's rate limit held after every retry"):
        gh.command("github.comment", "acme/api", 1, "hi")
    assert len(github.received("POST")) == 3  # retry_attempts
    assert github.comments == []
    github.secondary_limit(1, retry_after_s=30)  # longer than retry_budget_s: not waited for
    github.faults.clear()
    started = time.monotonic()
    with pytest.raises(PluginCallError, match=r"rate limit"):
        gh.command("github.comment", "acme/api", 1, "hi")
    assert time.monotonic() - started < 5


def test_pulls_follow_link_pages_and_retry_5xx(gh: PluginHandle, github: FakeGitHub) -> None:
    for index in range(205):
        github.add_pull("acme/api", title=f"PR {index + 1}")
    github.fail_next(502, path=r"/repos/acme/api/pulls")
    found = gh.command("github.pulls", "acme/api")
    assert [p["number"] for p in found] == list(range(205, 0, -1))
    assert found[0] == {
        "number": 205,
        "title": "PR 205",
        "url": "https://github.com/acme/api/pull/205",
        "author": "ada",
        "state": "open",
    }
    pages = [r.query.get("page", "1") for r in github.received("GET")]
    assert pages == ["1", "1", "2", "3"]  # the first one answered 502, then retried
    gh.config.set(max_pages=1)
    assert len(gh.command("github.pulls", "acme/api")) == 100
    assert logged_line(gh, "first 1 pages")


def test_a_5xx_on_a_post_is_not_retried(gh: PluginHandle, github: FakeGitHub) -> None:
    github.add_pull("acme/api")
    github.fail_next(503)
    with pytest.raises(PluginCallError, match=r"HTTP 503: Service Unavailable"):
        gh.command("github.comment", "acme/api", 1, "hi")
    assert len(github.received("POST")) == 1  # a comment may have been made: not sent twice


def test_an_answer_missing_fields_is_refused(gh: PluginHandle, github: FakeGitHub) -> None:
    gh.net.route("POST", "https://api.github.com/repos/acme/api/issues/1/comments", json={"x": 1})
    with pytest.raises(PluginCallError, match=r"lacks id, html_url"):
        gh.command("github.comment", "acme/api", 1, "hi")
    with pytest.raises(PluginCallError, match=r"repo must be 'owner/name'"):
        gh.command("github.comment", "acme/api/../x", 1, "hi")


# --- GitHub App -----------------------------------------------------------------------------------


def test_app_auth_checks_a_pull_request_and_reuses_its_token(
    app: PluginHandle, github: FakeGitHub
) -> None:
    app.config.set(check_runs=True, comment_on_open=True)
    head = github.add_pull("acme/api")["head"]["sha"]
    deliver(app, github, "pull_request", github.pull_request_payload("opened", "acme/api", 1))
    [run] = github.check_runs.values()
    assert (run["head_sha"], run["name"], run["status"], run["conclusion"]) == (
        head,
        "Plugport",
        "completed",
        "success",
    )
    assert github.comments[0]["user"]["login"] == "plugport-example[bot]"
    deliver(app, github, "pull_request", github.pull_request_payload("synchronize", "acme/api", 1))
    assert len(github.check_runs) == 2
    [exchange] = github.received("POST", r"/app/installations/\d+/access_tokens")  # cached
    jwt = exchange.headers["authorization"].removeprefix("Bearer ")
    claims = json.loads(_unb64(jwt.split(".")[1]))
    assert claims["iss"] == str(github.app_id)
    assert claims["exp"] - claims["iat"] == 600
    assert github.app_private_key_pem not in json.dumps(app.logs)
    # Not assert_only_declared(): its grant check cannot judge secrets.sign without the
    # secret's name (plugport.testing._handle passes none) and reports it as undeclared.
    app.assert_no_denials()


def test_check_command_needs_app_auth(gh: PluginHandle, github: FakeGitHub) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    with pytest.raises(PluginCallError, match=r'check runs need auth = "app"'):
        gh.command("github.check", "acme/api", sha)
    assert github.requests == []


def test_check_command_as_an_app(app: PluginHandle, github: FakeGitHub) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    answer = app.command("github.check", "acme/api", sha, "lint", "failure")
    assert answer["status"] == "completed"
    assert answer["conclusion"] == "failure"
    assert github.check_runs[answer["id"]]["name"] == "lint"


def test_an_expiring_installation_token_is_renewed(app: PluginHandle, github: FakeGitHub) -> None:
    github.installation_token_lifetime_s = 200  # inside the five-minute margin: never reused
    sha = github.add_pull("acme/api")["head"]["sha"]
    app.command("github.check", "acme/api", sha)
    assert len(github.received("POST", r"/app/.*")) == 2  # one per call


def test_a_revoked_installation_token_is_replaced_once(
    app: PluginHandle, github: FakeGitHub
) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    app.command("github.check", "acme/api", sha)
    github.installation_tokens.clear()  # revoked on GitHub's side
    app.command("github.check", "acme/api", sha)
    assert len(github.received("POST", r"/app/.*")) == 2
    assert len(github.check_runs) == 2


def test_a_wrong_app_key_is_a_clear_error(app: PluginHandle, github: FakeGitHub) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app.secrets.set(
        "app_key",
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
    )
    sha = github.add_pull("acme/api")["head"]["sha"]
    with pytest.raises(PluginCallError) as refused:
        app.command("github.check", "acme/api", sha)
    assert "A JSON web token could not be decoded" in str(refused.value)
    assert "plugport secret set plugport.github app_key" in str(refused.value)
    assert github.check_runs == {}
    assert github.installation_tokens == {}


def test_check_runs_with_token_auth_are_skipped_with_a_warning(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    gh.config.set(check_runs=True)
    github.add_pull("acme/api")
    deliver(gh, github, "pull_request", github.pull_request_payload("opened", "acme/api", 1))
    assert logged_line(gh, 'check_runs needs auth = "app"')
    assert github.requests == []
    assert len(notices(gh)) == 1


def test_the_test_command_publishes_a_sample(gh: PluginHandle) -> None:
    gh.command("github.test")
    [notice] = notices(gh)
    assert notice["title"] == "Test notification from GitHub"
