"""Consent for credentials, decided without I/O: a new host for an existing credential, a new
credential, a raw read, all ask again; fewer hosts do not."""

from __future__ import annotations

from typing import Any

from plugport.host.consent import ConsentRequest, needs_consent
from plugport.manifest import Permissions


def _request(before: dict[str, Any], after: dict[str, Any]) -> ConsentRequest:
    return ConsentRequest(
        "acme.jira",
        "2.0.0",
        "1.0.0",
        Permissions.model_validate(after),
        Permissions.model_validate(before),
    )


V1 = {"credentials": {"jira": ["acme.atlassian.net/rest/"]}}


def test_a_new_host_for_an_existing_credential_asks_again() -> None:
    request = _request(V1, {"credentials": {"jira": ["acme.atlassian.net/rest/", "evil.io"]}})
    assert request.added == ["credential 'jira' sent to 'evil.io'"]
    assert needs_consent(request, preapproved=None)


def test_a_wider_path_asks_again_a_narrower_one_does_not() -> None:
    wider = _request(V1, {"credentials": {"jira": ["acme.atlassian.net/"]}})
    assert wider.added == ["credential 'jira' sent to 'acme.atlassian.net/'"]
    narrower = _request(V1, {"credentials": {"jira": ["acme.atlassian.net/rest/api/"]}})
    assert narrower.added == []
    assert not needs_consent(narrower, preapproved=None)


def test_a_new_credential_or_a_raw_read_asks_again() -> None:
    more = {
        "credentials": {"jira": ["acme.atlassian.net/rest/"], "slack": ["slack.com"]},
        "secrets": {"reveal": ["jira"]},
    }
    request = _request(V1, more)
    assert request.added == [
        "credential 'slack' sent to 'slack.com'",
        "secrets.reveal 'jira'",
    ]
    assert any(line.startswith("READS THE RAW VALUE") for line in request.lines)


def test_the_operators_policy_may_pre_approve_a_credential_but_not_more() -> None:
    request = _request({}, V1)
    assert not needs_consent(request, preapproved=Permissions.model_validate(V1))
    wider = Permissions.model_validate({"credentials": {"jira": ["other.example.com"]}})
    assert needs_consent(request, preapproved=wider)
