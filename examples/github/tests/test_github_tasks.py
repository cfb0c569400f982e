"""plugport.github as a task processor, against FakeGitHub in the real sandbox: each task type
run as the host runs one attempt (``handle.tasks.run``: payload schema first, result schema
after), with GitHub's failure paths (a missing repository, a rate limit waited out, a pull
request where an issue was expected, a release tag that does not exist), the webhook queueing a
review, and the pure modules (``review.py``, ``analysis.py``, ``release_notes.py``) directly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from github_plugin.analysis import (
    classify,
    find_duplicates,
    needs_info,
    suggest_labels,
    title_similarity,
)
from github_plugin.release_notes import (
    merged_in_window,
    page_is_past,
    parse_moment,
    release_notes,
)
from github_plugin.review import ChangedFile, area_of, files_of, review_summary, risk_reasons

from plugport.errors import PluginCallError, TaskValidationError
from plugport.testing import PluginHandle
from plugport.testing.services.github import FakeGitHub

PAT = "ghp_stand-in-token-for-task-tests-0000000"
SECRET = "webhook-s3cret"
FAST = {"retry_attempts": 3, "retry_budget_s": 2}
DAY = 86400.0


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_token(PAT, "plugport-bot")
        fake.add_repo("acme/api")
        yield fake


@pytest.fixture
def gh(plugin: PluginHandle, github: FakeGitHub) -> PluginHandle:
    github.mount(plugin)
    plugin.secrets.set("token", PAT)
    plugin.config.set(**FAST)
    return plugin


def review_payload(github: FakeGitHub, number: int = 1) -> dict[str, Any]:
    pull = github.pulls[("acme/api", number)]
    return {"repo": "acme/api", "number": number, "head_sha": pull["head"]["sha"]}


RISKY_FILES: list[tuple[str, int, int]] = [
    *[(f"src/app/module_{i}.py", 10, 2) for i in range(140)],
    (".github/workflows/ci.yml", 3, 1),
    ("migrations/0042_users.py", 40, 0),
    ("poetry.lock", 200, 180),
    ("README.md", 5, 5),
]


# --- GITHUB_PR_REVIEW -----------------------------------------------------------------------------


def test_a_review_reads_every_page_of_files_and_explains_its_risk(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api", title="Users table", files=RISKY_FILES)
    result = gh.tasks.run("GITHUB_PR_REVIEW", review_payload(github))
    assert (result["files"], result["additions"], result["deletions"]) == (144, 1648, 466)
    assert result["by_area"] == {"src": 1680, ".github": 4, "migrations": 40, "(root)": 390}
    assert result["risk"] == "high"
    assert result["reasons"] == [
        "very large diff: 2114 changed lines",
        "touches CI/workflows (they run with secrets): `.github/workflows/ci.yml`",
        "database migrations (hard to undo): `migrations/0042_users.py`",
        "dependency lockfiles changed: `poetry.lock`",
        "code changed but no tests changed",
    ]
    assert result["markdown"].startswith(f"<!-- plugport-review:{result['head_sha']} -->\n")
    assert "**Risk: high** · 144 files · +1648 -466" in result["markdown"]
    assert "| `src` | 1680 |" in result["markdown"]
    pages = [r.query.get("page", "1") for r in github.received("GET", r".*/files")]
    assert pages == ["1", "2"]
    assert all(r.query["per_page"] == "100" for r in github.received("GET", r".*/files"))
    percents = [p for _, p, _ in gh.tasks.progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert github.comments == []  # review_comment is off
    assert "comment_url" not in result


def test_a_review_comment_is_posted_once_per_head_commit(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    gh.config.set(review_comment=True)
    github.add_pull("acme/api", files=[("src/a.py", 1, 0), ("tests/test_a.py", 3, 0)])
    first = gh.tasks.run("GITHUB_PR_REVIEW", review_payload(github))
    again = gh.tasks.run("GITHUB_PR_REVIEW", review_payload(github), attempt=2)  # a retry
    [comment] = github.comments
    assert first["comment_url"] == again["comment_url"] == comment["html_url"]
    assert comment["body"] == first["markdown"]
    assert first["risk"] == "low"
    assert "- nothing in the risk rules" in comment["body"]


def test_a_review_of_a_missing_repository_fails_and_changes_nothing(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    gh.config.set(review_comment=True)
    payload = {"repo": "acme/gone", "number": 1, "head_sha": "a" * 40}
    with pytest.raises(PluginCallError, match=r"GitHub found nothing while reading pull request"):
        gh.tasks.run("GITHUB_PR_REVIEW", payload)
    assert github.comments == []
    assert len(github.received("GET")) == 1  # a 404 is not retried within the attempt


def test_a_review_waits_out_a_rate_limit(gh: PluginHandle, github: FakeGitHub) -> None:
    github.add_pull("acme/api", files=[("docs/index.md", 2, 1)])
    github.secondary_limit(1, retry_after_s=0, path=r".*/files")
    github.throttle(1, retry_after_s=0, path=r"/repos/acme/api/pulls/1")
    result = gh.tasks.run("GITHUB_PR_REVIEW", review_payload(github))
    assert result["files"] == 1
    assert len(github.received("GET", r"/repos/acme/api/pulls/1")) == 2
    assert len(github.received("GET", r".*/files")) == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"repo": "acme/api", "number": 1}, "/head_sha"),
        ({"repo": "acme/api/../x", "number": 1, "head_sha": "a" * 40}, "/repo"),
        ({"repo": "acme/api", "number": 0, "head_sha": "a" * 40}, "/number"),
        ({"repo": "acme/api", "number": 1, "head_sha": "a" * 40, "x": 1}, "/x"),
    ],
)
def test_a_payload_that_breaks_its_schema_is_refused_before_any_call(
    gh: PluginHandle, github: FakeGitHub, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(TaskValidationError) as refused:
        gh.tasks.run("GITHUB_PR_REVIEW", payload)
    assert (refused.value.part, refused.value.field) == ("payload", field)
    assert github.requests == []


def test_an_opened_pull_request_queues_a_review_when_asked(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_pull("acme/api")
    body, headers = github.delivery(
        "pull_request", github.pull_request_payload("opened", "acme/api", 1), SECRET
    )
    gh.webhook("events", body, headers, secret=SECRET)
    assert gh.tasks.submitted == []  # review_on_open is off
    gh.config.set(review_on_open=True)
    gh.webhook("events", *github.delivery("pull_request", _sync(github), SECRET), secret=SECRET)
    [queued] = gh.tasks.submitted
    assert queued.type == "GITHUB_PR_REVIEW"
    assert queued.payload == review_payload(github)  # the new head commit
    gh.assert_no_denials()


def _sync(github: FakeGitHub) -> dict[str, Any]:
    return github.pull_request_payload("synchronize", "acme/api", 1)


# --- GITHUB_ISSUE_ANALYSIS ------------------------------------------------------------------------


def test_an_issue_is_triaged_with_duplicates_and_labels(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    github.add_issue("acme/api", title="Login fails with error 500 on Safari", body="It crashes.")
    github.add_issue("acme/api", title="Safari: login fails with a 500 error")
    github.add_issue("acme/api", title="Add dark mode")
    github.add_pull("acme/api", title="Login fails with error 500 on Safari")  # not an issue
    github.add_issue("acme/api", title="Login fails with error 500", state="closed")
    github.add_comment("acme/api", 1, "Same here", author="grace")
    result = gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 1})
    assert result["kind"] == "bug"
    assert result["labels"] == ["bug", "crash"]
    assert [d["number"] for d in result["duplicates"]] == [2]
    assert result["needs_info"] is True
    assert result["applied"] == []
    assert github.received("POST") == []
    assert (
        "- possible duplicates:\n  - #2 Safari: login fails with a 500 error" in result["markdown"]
    )


def test_the_reporters_comment_can_supply_the_details(gh: PluginHandle, github: FakeGitHub) -> None:
    github.add_issue("acme/api", title="Export is broken", body="Exporting a report fails.")
    github.add_comment(
        "acme/api", 1, "Steps to reproduce: open a report, export. Version 2.1.", author="ada"
    )
    result = gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 1})
    assert (result["kind"], result["needs_info"]) == ("bug", False)


def test_apply_labels_adds_them_once(gh: PluginHandle, github: FakeGitHub) -> None:
    gh.config.set(apply_labels=True)
    github.add_issue(
        "acme/api",
        title="How do I configure the proxy?",
        body="Is it possible to set a proxy for outgoing calls? I read the docs.",
        labels=["triage"],
    )
    result = gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 1})
    assert (result["kind"], result["applied"]) == ("question", ["question"])
    gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 1}, attempt=2)
    names = [label["name"] for label in github.issues[("acme/api", 1)]["labels"]]
    assert names == ["triage", "question"]


def test_a_pull_request_is_not_analysed_as_an_issue(gh: PluginHandle, github: FakeGitHub) -> None:
    gh.config.set(apply_labels=True)
    github.add_pull("acme/api")
    with pytest.raises(PluginCallError, match=r"acme/api#1 is a pull request: submit GITHUB_PR"):
        gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 1})
    with pytest.raises(PluginCallError, match=r"GitHub found nothing while reading issue"):
        gh.tasks.run("GITHUB_ISSUE_ANALYSIS", {"repo": "acme/api", "number": 7})
    assert github.received("POST") == []
    assert github.pulls[("acme/api", 1)]["labels"] == []


# --- GITHUB_RELEASE_NOTES -------------------------------------------------------------------------


def _merged(github: FakeGitHub, title: str, at: float, labels: list[str] | None = None) -> int:
    number = int(github.add_pull("acme/api", title=title, labels=labels)["number"])
    github.merge_pull("acme/api", number, at=at)
    return number


def test_release_notes_group_the_merges_in_the_window(gh: PluginHandle, github: FakeGitHub) -> None:
    now = time.time()
    _merged(github, "Old feature", now - 30 * DAY, ["feature"])
    fix = _merged(github, "Fix login", now - 2 * DAY, ["bug"])
    feat = _merged(github, "Dark mode", now - 3 * DAY, ["enhancement"])
    _merged(github, "Typo in guide", now - DAY, ["docs"])
    chore = _merged(github, "Bump deps", now - DAY)
    github.add_pull("acme/api", title="Abandoned", state="closed")
    github.add_pull("acme/api", title="Still open")
    since = datetime.fromtimestamp(now - 10 * DAY, UTC).date().isoformat()
    result = gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": since})
    assert result["count"] == 4
    assert result["complete"] is True
    assert [s["title"] for s in result["sections"]] == ["Features", "Fixes", "Docs", "Other"]
    assert result["sections"][0]["items"] == [
        {
            "number": feat,
            "title": "Dark mode",
            "url": f"https://github.com/acme/api/pull/{feat}",
            "author": "ada",
        }
    ]
    assert result["sections"][1]["items"][0]["number"] == fix
    assert result["sections"][3]["items"][0]["number"] == chore
    assert result["markdown"].startswith(f"## acme/api: changes since {since}\n\n### Features\n")
    assert f"- Fix login (#{fix}, @ada)" in result["markdown"]
    [listing] = github.received("GET", r"/repos/acme/api/pulls")
    assert listing.query == {
        "state": "closed",
        "sort": "updated",
        "direction": "desc",
        "per_page": "100",
    }


def test_release_notes_stop_at_the_page_before_the_window(
    gh: PluginHandle, github: FakeGitHub
) -> None:
    now = time.time()
    for index in range(150):
        _merged(github, f"Ancient {index}", now - 400 * DAY + index)
    recent = _merged(github, "Recent", now - DAY, ["fix"])
    result = gh.tasks.run(
        "GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "2000-01-01"}
    )  # everything: both pages
    assert result["count"] == 151
    assert len(github.received("GET", r"/repos/acme/api/pulls")) == 2
    since = datetime.fromtimestamp(now - 10 * DAY, UTC).isoformat()
    result = gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": since})
    assert [i["number"] for s in result["sections"] for i in s["items"]] == [recent]
    assert len(github.received("GET", r"/repos/acme/api/pulls")) == 3  # one page sufficed
    gh.config.set(max_pages=1)
    capped = gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "2000-01-01"})
    assert (capped["count"], capped["complete"]) == (100, False)


def test_release_notes_since_a_release_tag(gh: PluginHandle, github: FakeGitHub) -> None:
    now = time.time()
    github.add_release("acme/api", "v1.0.0", published_at=now - 5 * DAY)
    github.add_release("acme/api", "v1.1.0", published_at=now - 2 * DAY)
    _merged(github, "Before", now - 6 * DAY)
    inside = _merged(github, "Inside", now - 4 * DAY)
    _merged(github, "After", now - DAY)
    result = gh.tasks.run(
        "GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "v1.0.0", "until": "v1.1.0"}
    )
    assert [i["number"] for s in result["sections"] for i in s["items"]] == [inside]
    assert result["markdown"].startswith("## acme/api: changes since v1.0.0 until v1.1.0\n")
    with pytest.raises(PluginCallError, match=r"GitHub found nothing while reading release 'v9'"):
        gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "v9"})
    with pytest.raises(PluginCallError, match=r"since '2025-02-30' looks like a date"):
        gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "2025-02-30"})
    with pytest.raises(TaskValidationError) as refused:
        gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api"})
    assert refused.value.field == "/since"


def test_release_notes_of_a_missing_repository(gh: PluginHandle, github: FakeGitHub) -> None:
    with pytest.raises(PluginCallError, match=r"HTTP 404"):
        gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/gone", "since": "2025-01-01"})


def test_release_notes_with_configured_sections(gh: PluginHandle, github: FakeGitHub) -> None:
    gh.config.set(release_sections=[{"title": "Breaking", "labels": ["breaking"]}])
    _merged(github, "Drop v1 API", time.time() - DAY, ["breaking", "feature"])
    _merged(github, "Fix", time.time() - DAY, ["bug"])
    result = gh.tasks.run("GITHUB_RELEASE_NOTES", {"repo": "acme/api", "since": "2000-01-01"})
    assert [s["title"] for s in result["sections"]] == ["Breaking", "Other"]


# --- the pure modules -----------------------------------------------------------------------------


def _files(*given: tuple[str, int, int]) -> list[ChangedFile]:
    return [ChangedFile(name, "modified", a, d) for name, a, d in given]


@pytest.mark.parametrize(
    ("files", "risk"),
    [
        (_files(("src/a.py", 5, 1), ("tests/test_a.py", 5, 0)), "low"),
        (_files(("docs/guide.md", 1600, 0)), "high"),  # very large: two points
        (_files(("docs/guide.md", 300, 100)), "medium"),
        (_files(("src/a.py", 5, 1)), "medium"),  # no tests
        (_files(("src/a.py", 5, 1), ("uv.lock", 3, 3)), "high"),
        (_files(("app/db/migrate/001.rb", 5, 0), ("spec/a_spec.rb", 1, 0)), "high"),
        (_files(("Jenkinsfile", 1, 1)), "medium"),
        (_files(("web/a.test.ts", 1, 1), ("web/a.ts", 1, 1)), "low"),
    ],
)
def test_risk_rules(files: list[ChangedFile], risk: str) -> None:
    pull = {"number": 1, "title": "T", "html_url": "u", "head": {"sha": "f" * 40}}
    assert review_summary(pull, files)["risk"] == risk


def test_review_helpers() -> None:
    assert area_of("README.md") == "(root)"
    assert area_of("src/pkg/a.py") == "src"
    many = _files(*[(f".github/workflows/w{i}.yml", 1, 0) for i in range(5)])
    [reason] = risk_reasons(many)
    assert reason.text.endswith("`.github/workflows/w2.yml` and 2 more")
    with pytest.raises(ValueError, match=r"file 0 of the pull request has no filename"):
        files_of([{"additions": 1}])
    with pytest.raises(ValueError, match=r"'a.py' has no additions or deletions"):
        files_of([{"filename": "a.py", "additions": "1", "deletions": 0}])


def test_classify_and_labels() -> None:
    assert classify("App crashes on start", "Traceback ...") == "bug"
    assert classify("Add support for SAML", "It would be nice") == "feature"
    assert classify("How do I set a proxy?", None) == "question"
    assert classify("Typo in the README", "") == "docs"
    assert classify("Anything", "", labels=["enhancement"]) == "feature"  # a set label wins
    assert classify("Hello", "") == "question"  # nothing matched
    assert suggest_labels("bug", "Slow and crashes after upgrading", None) == [
        "bug",
        "performance",
        "regression",
        "crash",
    ]
    assert suggest_labels("bug", "XSS in the search box", None, have=["bug"]) == ["security"]


def test_title_similarity_and_duplicates() -> None:
    assert title_similarity("Login fails on Safari", "Login fails on Safari") == 1.0
    assert title_similarity("Login fails on Safari", "Safari: login failing") > 0.5
    assert title_similarity("Login fails on Safari", "Add dark mode") < 0.3
    candidates = [
        {"number": 1, "title": "Login fails on Safari"},
        {"number": 2, "title": "Login fails on Safari 17", "html_url": "u2"},
        {"number": 3, "title": "Login fails on Safari", "pull_request": {}},
        {"number": 4, "title": "Add dark mode"},
    ]
    assert find_duplicates(1, "Login fails on Safari", candidates) == [
        {
            "number": 2,
            "title": "Login fails on Safari 17",
            "url": "u2",
            "similarity": title_similarity("Login fails on Safari", "Login fails on Safari 17"),
        }
    ]


def test_needs_info() -> None:
    assert needs_info("bug", "broken")  # almost no text
    assert needs_info("bug", "The export button does nothing at all when I click it.")
    assert not needs_info("bug", "The export fails. Expected a file, got nothing. Version 2.")
    assert not needs_info("feature", "Please add an option to export reports as CSV files.")
    assert not needs_info("bug", "It fails, see below.", ["```\nTraceback ...\n```"])


def test_release_note_rules() -> None:
    since = datetime(2025, 1, 10, tzinfo=UTC)
    assert parse_moment("2025-01-10") == since
    assert parse_moment("2025-01-10T00:00:00Z") == since
    assert parse_moment("v1.2.0") is None
    with pytest.raises(ValueError, match="month"):
        parse_moment("2025-13-01")
    pulls = [
        {"number": 1, "title": "a", "merged_at": "2025-01-09T00:00:00Z"},
        {"number": 2, "title": "b", "merged_at": "2025-01-11T00:00:00Z"},
        {"number": 3, "title": "c", "merged_at": None},
        {"number": 4, "title": "d", "merged_at": "2025-02-11T00:00:00Z"},
    ]
    until = datetime(2025, 2, 1, tzinfo=UTC)
    assert [p["number"] for p in merged_in_window(pulls, since, until)] == [2]
    assert [p["number"] for p in merged_in_window(pulls, since, None)] == [2, 4]
    assert page_is_past([], since)
    assert page_is_past([{"updated_at": "2025-01-01T00:00:00Z"}], since)
    assert not page_is_past([{"updated_at": "2025-01-11T00:00:00Z"}], since)
    empty = release_notes("acme/api", [], title="T")
    assert empty == {
        "count": 0,
        "sections": [],
        "markdown": "## T\n\nNo pull requests were merged in acme/api in this window.\n",
    }
