"""``[webhooks.NAME]`` in the manifest: each endpoint becomes a consented permission
(``permissions.webhooks.receive``), shown at consent and in the permission diff, and raises the
Plugport a manifest needs."""

from __future__ import annotations

import pytest

from plugport._engines import required_plugport
from plugport._permissions import describe_permissions, permissions_beyond
from plugport.errors import ManifestError
from plugport.manifest import parse_manifest

HEAD = 'name = "acme.gh"\nversion = "1.0.0"\nentry = "main:Main"\n'
PUSH = '[webhooks.push]\nverifier = "github"\nsecret = "github_secret"\n'
ISSUES = '[webhooks.issues]\nverifier = "token"\nsecret = "t"\ntoken-header = "X-Gitlab-Token"\n'


def test_endpoints_are_a_permission_shown_at_consent_and_in_the_diff() -> None:
    one = parse_manifest(HEAD + PUSH)
    two = parse_manifest(HEAD + PUSH + ISSUES)
    assert one.permissions.webhooks.receive == ["push"]
    assert one.webhooks["push"].max_body_bytes == 1024 * 1024
    assert describe_permissions(one.permissions) == [
        "Receive webhooks at /hooks/…/push (verified by the host with the plugin's secret)"
    ]
    assert permissions_beyond(one.permissions, two.permissions) == ["webhooks.receive 'issues'"]
    assert permissions_beyond(two.permissions, one.permissions) == []


def test_the_permission_is_declared_by_the_tables_only() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(HEAD + '[permissions]\nwebhooks.receive = ["push"]\n')
    [problem] = caught.value.problems
    assert problem.path == "permissions.webhooks.receive"
    assert "[webhooks.NAME]" in problem.message


def test_an_endpoint_problem_is_reported_once_at_its_table() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(HEAD + '[webhooks.push]\nverifier = "hmac"\nsecret = "s"\n')
    assert [p.path for p in caught.value.problems] == ["webhooks.push"]
    assert "needs signature-header" in caught.value.problems[0].message


def test_webhooks_need_plugport_0_2() -> None:
    import tomllib

    assert required_plugport(tomllib.loads(HEAD + PUSH)) == ("0.2", ["webhooks"])
