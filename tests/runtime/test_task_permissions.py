"""The ``tasks.submit`` permission as consent, review and the permission diff show it, and why
``[tasks]`` tables are no permission: processing a type gives a plugin work, not reach."""

from __future__ import annotations

import pytest

from plugport._permissions import RULES, describe_permissions, permissions_beyond, refusal
from plugport.manifest import Permissions, validate_manifest_data


def submit(*patterns: str) -> Permissions:
    return Permissions.model_validate({"tasks": {"submit": list(patterns)}})


@pytest.mark.parametrize(
    ("task_type", "granted"),
    [("GITHUB_PR_REVIEW", True), ("GITHUB_", True), ("GITLAB_PUSH", False), ("RESIZE", True)],
)
def test_a_prefix_pattern_admits_the_types_it_starts(task_type: str, granted: bool) -> None:
    reason = refusal(submit("GITHUB_*", "RESIZE"), "tasks", "submit", {"task_type": task_type})
    assert (reason == "") is granted
    if not granted:
        assert reason == (
            f"task type {task_type!r} matches no tasks.submit pattern (GITHUB_*, RESIZE)"
        )


def test_progress_needs_no_grant() -> None:
    assert refusal(Permissions(), "tasks", "progress", {}) == ""


@pytest.mark.parametrize(
    ("requested", "granted", "beyond"),
    [
        (["GITHUB_*"], ["GITHUB_PR_REVIEW"], []),  # the pattern covers the type
        (["GITHUB_*"], ["GITHUB_PR_*"], []),  # and a narrower pattern
        (["GITHUB_PR_REVIEW"], ["GITHUB_*"], ["tasks.submit 'GITHUB_*'"]),
        (["GITHUB_*"], ["GITLAB_*", "GITHUB_X"], ["tasks.submit 'GITLAB_*'"]),
        (["GITHUB_*"], ["*"], ["tasks.submit '*'"]),
        (["*"], ["GITHUB_*", "RESIZE"], []),
        ([], ["RESIZE"], ["tasks.submit 'RESIZE'"]),
    ],
)
def test_the_diff_names_each_grant_beyond_the_request(
    requested: list[str], granted: list[str], beyond: list[str]
) -> None:
    assert RULES["tasks"].beyond(submit(*requested), submit(*granted)) == beyond
    assert permissions_beyond(submit(*requested), submit(*granted)) == beyond


def test_an_update_that_widens_submit_is_asked_again_and_a_narrower_one_is_not() -> None:
    before = submit("GITHUB_PR_REVIEW")
    assert permissions_beyond(before, submit("GITHUB_PR_REVIEW", "GITHUB_PUSH")) == [
        "tasks.submit 'GITHUB_PUSH'"
    ]
    assert permissions_beyond(submit("GITHUB_*"), before) == []


def test_consent_shows_the_submit_patterns() -> None:
    lines = describe_permissions(submit("GITHUB_*", "RESIZE"))
    assert lines == ["Submit tasks: GITHUB_*, RESIZE"]


def test_processing_tasks_is_not_a_permission() -> None:
    """A ``[tasks.TYPE]`` table adds no consent line and no diff: the payloads come from the
    host or from plugins that hold ``tasks.submit`` (asked for there), and what the handler
    does with them goes through the plugin's own permissions, each shown. Webhook endpoints
    are different: ``[webhooks.NAME]`` opens a door to the internet, so it is a permission."""
    manifest = validate_manifest_data(
        {
            "name": "acme.tasker",
            "version": "1.0.0",
            "entry": "tasker.plugin:Main",
            "tasks": {"RESIZE": {}, "GITHUB_PR_REVIEW": {}},
        }
    )
    assert manifest.permissions == Permissions()
    assert describe_permissions(manifest.permissions) == [
        "No permissions: it can only compute on what it is given"
    ]
