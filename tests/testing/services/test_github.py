"""FakeGitHub against GitHub's documented REST shapes (API version 2022-11-28), driven with httpx:
the fields each answer carries, the headers GitHub requires and returns, its error bodies,
rate limits, ``Link`` pagination, App JWTs, and signed webhook deliveries. The field lists are
written down here from GitHub's REST reference, so a fake that drifts fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from plugport.testing.services import FakeService, Reply, ServiceRequest, route
from plugport.testing.services.github import API_VERSION, FakeGitHub

PAT = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": API_VERSION,
    "User-Agent": "plugport-tests",
    "Authorization": f"Bearer {PAT}",
}
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
RATE_HEADERS = {
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
}
ERROR_FIELDS = {"message", "documentation_url", "status"}
# https://docs.github.com/en/rest/issues/comments#create-an-issue-comment (201)
COMMENT_FIELDS = {
    "id",
    "node_id",
    "url",
    "html_url",
    "body",
    "user",
    "created_at",
    "updated_at",
    "issue_url",
    "author_association",
}
# https://docs.github.com/en/rest/pulls/pulls#list-pull-requests (each item)
PULL_LIST_FIELDS = {
    "url",
    "id",
    "node_id",
    "html_url",
    "number",
    "state",
    "locked",
    "title",
    "user",
    "body",
    "created_at",
    "updated_at",
    "closed_at",
    "merged_at",
    "merge_commit_sha",
    "head",
    "base",
    "draft",
    "author_association",
}
# https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request: the list's fields, and these
PULL_DETAIL_FIELDS = {
    "merged",
    "mergeable",
    "merged_by",
    "comments",
    "commits",
    "additions",
    "deletions",
    "changed_files",
}
REF_FIELDS = {"label", "ref", "sha", "user", "repo"}
# https://docs.github.com/en/rest/checks/runs#create-a-check-run (201)
CHECK_RUN_FIELDS = {
    "id",
    "head_sha",
    "node_id",
    "external_id",
    "url",
    "html_url",
    "details_url",
    "status",
    "conclusion",
    "started_at",
    "completed_at",
    "output",
    "name",
    "check_suite",
    "app",
    "pull_requests",
}
CHECK_OUTPUT_FIELDS = {"title", "summary", "text", "annotations_count", "annotations_url"}
# https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
TOKEN_FIELDS = {"token", "expires_at", "permissions", "repository_selection"}
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
DELIVERY_HEADERS = {
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-ID",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-Hub-Signature",
    "X-Hub-Signature-256",
    "User-Agent",
    "Content-Type",
}
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
PUSH_FIELDS = {
    "ref",
    "before",
    "after",
    "repository",
    "pusher",
    "sender",
    "created",
    "deleted",
    "forced",
    "base_ref",
    "compare",
    "commits",
    "head_commit",
}
COMMIT_FIELDS = {
    "id",
    "tree_id",
    "distinct",
    "message",
    "timestamp",
    "url",
    "author",
    "committer",
    "added",
    "removed",
    "modified",
}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_token(PAT, "octocat")
        fake.add_repo("acme/api")
        yield fake


@pytest.fixture
def client(github: FakeGitHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=github.url, headers=HEADERS) as http:
        yield http


def app_jwt(
    github: FakeGitHub, *, iat: int | None = None, exp: int | None = None, **over: Any
) -> str:
    now = int(time.time())
    key = serialization.load_pem_private_key(github.app_private_key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return sign_jwt(
        key, {"iat": iat or now - 60, "exp": exp or now + 540, "iss": str(github.app_id), **over}
    )


def sign_jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def installation_token(github: FakeGitHub, client: httpx.Client) -> str:
    answer = client.post(
        f"/app/installations/{github.installation_id}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(github)}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def assert_error(answer: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) >= ERROR_FIELDS
    assert body["message"] == message
    assert body["status"] == str(status)
    assert body["documentation_url"].startswith("https://docs.github.com/")
    return dict(body)


# --- headers every answer carries, and what GitHub requires -----------------------------------


def test_every_answer_carries_the_rate_limit_headers_and_counts_down(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_pull("acme/api")
    first = client.get("/repos/acme/api/pulls/1")
    second = client.get("/repos/acme/api/pulls/99")
    for answer in (first, second):
        assert set(answer.headers) >= RATE_HEADERS
        assert answer.headers["x-ratelimit-resource"] == "core"
        assert answer.headers["x-github-api-version-selected"] == API_VERSION
        assert answer.headers["x-github-request-id"]
    assert int(first.headers["x-ratelimit-remaining"]) == 4999
    assert int(second.headers["x-ratelimit-remaining"]) == 4998
    assert int(second.headers["x-ratelimit-used"]) == 2
    assert int(first.headers["x-ratelimit-reset"]) > time.time()


def test_no_user_agent_is_refused_with_403(github: FakeGitHub, client: httpx.Client) -> None:
    request = client.build_request("GET", "/repos/acme/api/pulls")
    del request.headers["User-Agent"]  # httpx adds its own otherwise
    answer = client.send(request)
    assert answer.status_code == 403
    assert "User-Agent header" in answer.text
    assert github.comments == []


def test_an_unknown_api_version_is_a_400(client: httpx.Client) -> None:
    answer = client.get("/repos/acme/api/pulls", headers={"X-GitHub-Api-Version": "2020-01-01"})
    assert_error(answer, 400, "API version 2020-01-01 is not supported.")


def test_bad_and_missing_credentials_are_401(client: httpx.Client) -> None:
    bad = client.get("/repos/acme/api/pulls", headers={"Authorization": "Bearer ghp_wrong"})
    assert_error(bad, 401, "Bad credentials")
    assert set(bad.headers) >= RATE_HEADERS
    none = client.get("/repos/acme/api/pulls", headers={"Authorization": ""})
    assert_error(none, 401, "Requires authentication")
    legacy = client.get("/repos/acme/api/pulls", headers={"Authorization": f"token {PAT}"})
    assert legacy.status_code == 200  # GitHub takes "token" as well as "Bearer"


def test_unknown_repositories_and_routes_are_404(client: httpx.Client) -> None:
    assert_error(client.get("/repos/acme/nope/pulls"), 404, "Not Found")
    assert_error(client.get("/repos/acme/api/pulls/7"), 404, "Not Found")
    assert_error(client.get("/no/such/thing"), 404, "Not Found")


# --- rate limits ----------------------------------------------------------------------------------


def test_secondary_limit_is_403_with_retry_after_then_answers(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.secondary_limit(1, retry_after_s=7)
    limited = client.get("/repos/acme/api/pulls")
    body = assert_error(limited, 403, limited.json()["message"])
    assert "secondary rate limit" in body["message"]
    assert limited.headers["retry-after"] == "7"
    assert client.get("/repos/acme/api/pulls").status_code == 200


def test_throttle_is_429_with_retry_after_in_githubs_shape(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.throttle(1, retry_after_s=3)
    limited = client.get("/repos/acme/api/pulls")
    body = assert_error(limited, 429, limited.json()["message"])
    assert "secondary rate limit" in body["message"]
    assert limited.headers["retry-after"] == "3"
    assert set(limited.headers) >= RATE_HEADERS


@pytest.mark.parametrize("status", [403, 429])
def test_primary_limit_exhausted_has_remaining_zero_until_reset(
    github: FakeGitHub, client: httpx.Client, status: int
) -> None:
    github.exhaust_rate_limit(reset_in_s=120, status=status)
    limited = client.get("/repos/acme/api/pulls")
    body = assert_error(limited, status, limited.json()["message"])
    assert body["message"].startswith("API rate limit exceeded")
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) >= int(time.time()) + 119
    github.exhaust_rate_limit(reset_in_s=0)
    assert client.get("/repos/acme/api/pulls").headers["x-ratelimit-remaining"] == "4999"


@pytest.mark.parametrize(
    ("status", "message"), [(502, "Server Error"), (503, "Service Unavailable")]
)
def test_5xx_in_githubs_shape(
    github: FakeGitHub, client: httpx.Client, status: int, message: str
) -> None:
    github.fail_next(status)
    assert_error(client.get("/repos/acme/api/pulls"), status, message)
    assert client.get("/repos/acme/api/pulls").status_code == 200


# --- issue comments ------------------------------------------------------------------------------


def test_create_comment_on_a_pull_request(github: FakeGitHub, client: httpx.Client) -> None:
    github.add_pull("acme/api")
    answer = client.post("/repos/acme/api/issues/1/comments", json={"body": "Welcome!"})
    assert answer.status_code == 201
    comment = answer.json()
    assert set(comment) == COMMENT_FIELDS
    assert comment["body"] == "Welcome!"
    assert comment["user"]["login"] == "octocat"
    assert answer.headers["location"] == comment["url"]
    assert comment["issue_url"].endswith("/repos/acme/api/issues/1")
    [stored] = github.comments
    assert (stored["repository"], stored["issue_number"], stored["body"]) == (
        "acme/api",
        1,
        "Welcome!",
    )


def test_comment_validation_failures_are_422_and_store_nothing(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_pull("acme/api")
    missing = assert_error(
        client.post("/repos/acme/api/issues/1/comments", json={"text": "x"}),
        422,
        "Validation Failed",
    )
    assert missing["errors"] == [
        {"resource": "IssueComment", "field": "body", "code": "missing_field"}
    ]
    empty = client.post("/repos/acme/api/issues/1/comments", json={"body": " "}).json()
    assert empty["errors"][0]["code"] == "invalid"
    not_json = client.post("/repos/acme/api/issues/1/comments", content=b"{nope")
    assert_error(not_json, 400, "Problems parsing JSON")
    assert_error(
        client.post("/repos/acme/api/issues/42/comments", json={"body": "x"}), 404, "Not Found"
    )
    assert github.comments == []


# --- pull requests -------------------------------------------------------------------------------


def test_get_a_pull_request_has_the_detail_fields(github: FakeGitHub, client: httpx.Client) -> None:
    made = github.add_pull("acme/api", title="Fix login", author="ada", commits=3)
    pull = client.get("/repos/acme/api/pulls/1").json()
    assert set(pull) == PULL_LIST_FIELDS | PULL_DETAIL_FIELDS | {
        "diff_url",
        "issue_url",
        "comments_url",
        "labels",
    }
    assert set(pull["head"]) == REF_FIELDS == set(pull["base"])
    assert (pull["title"], pull["user"]["login"], pull["commits"]) == ("Fix login", "ada", 3)
    assert pull["head"]["sha"] == made["head"]["sha"]
    assert pull["base"]["ref"] == "main"
    assert pull["merged"] is False
    github.merge_pull("acme/api", 1, by="grace")
    merged = client.get("/repos/acme/api/pulls/1").json()
    assert (merged["state"], merged["merged"], merged["merged_by"]["login"]) == (
        "closed",
        True,
        "grace",
    )


def test_list_pull_requests_pages_with_link_headers(
    github: FakeGitHub, client: httpx.Client
) -> None:
    for index in range(5):
        github.add_pull("acme/api", title=f"PR {index + 1}")
    first = client.get("/repos/acme/api/pulls", params={"per_page": 2})
    assert [p["number"] for p in first.json()] == [5, 4]  # newest first
    assert not PULL_DETAIL_FIELDS & set(first.json()[0])  # the list leaves them out
    links = parse_links(first.headers["link"])
    assert set(links) == {"next", "last"}
    assert links["next"] == "https://api.github.com/repos/acme/api/pulls?per_page=2&page=2"
    assert links["last"].endswith("page=3")
    middle = client.get("/repos/acme/api/pulls", params={"per_page": 2, "page": 2})
    assert set(parse_links(middle.headers["link"])) == {"prev", "next", "last", "first"}
    last = client.get("/repos/acme/api/pulls", params={"per_page": 2, "page": 3})
    assert [p["number"] for p in last.json()] == [1]
    assert set(parse_links(last.headers["link"])) == {"prev", "first"}
    beyond = client.get("/repos/acme/api/pulls", params={"per_page": 2, "page": 9})
    assert beyond.json() == []
    single = client.get("/repos/acme/api/pulls")
    assert "link" not in single.headers  # one page: no Link header
    assert len(single.json()) == 5
    capped = client.get("/repos/acme/api/pulls", params={"per_page": 500, "state": "all"})
    assert "per_page=100" not in capped.headers.get("link", "")  # one page of up to 100
    assert len(capped.json()) == 5


def test_list_pull_requests_filters_by_state(github: FakeGitHub, client: httpx.Client) -> None:
    github.add_pull("acme/api")
    github.add_pull("acme/api")
    github.merge_pull("acme/api", 1)
    assert [p["number"] for p in client.get("/repos/acme/api/pulls").json()] == [2]
    closed = client.get("/repos/acme/api/pulls", params={"state": "closed"}).json()
    assert [p["number"] for p in closed] == [1]
    bad = client.get("/repos/acme/api/pulls", params={"state": "merged"})
    assert bad.json()["errors"] == [
        {"resource": "PullRequest", "field": "state", "code": "invalid"}
    ]


def parse_links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


# --- GitHub App: JWT, installation tokens, check runs ---------------------------------------------


def test_the_app_key_is_a_2048_bit_rsa_pem(github: FakeGitHub) -> None:
    pem = github.app_private_key_pem
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_installation_token_for_a_valid_jwt(github: FakeGitHub, client: httpx.Client) -> None:
    answer = client.post(
        f"/app/installations/{github.installation_id}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(github)}"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == TOKEN_FIELDS
    assert body["token"].startswith("ghs_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"])
    repos = client.get(
        "/installation/repositories", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert repos.json()["total_count"] == 1
    assert repos.json()["repositories"][0]["full_name"] == "acme/api"


@pytest.mark.parametrize(
    ("jwt", "message"),
    [
        (lambda g: "not.a.jwt", "A JSON web token could not be decoded"),
        (lambda g: PAT, "A JSON web token could not be decoded"),
        (
            lambda g: app_jwt(g, iat=int(time.time()) - 700, exp=int(time.time()) - 100),
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires.",
        ),
        (
            lambda g: app_jwt(g, exp=int(time.time()) + 3600),
            "'Expiration time' claim ('exp') is too far in the future.",
        ),
        (lambda g: app_jwt(g, iss="1"), "'Issuer' claim ('iss') must be an Integer."),
        (
            lambda g: sign_jwt(
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
                {"iat": int(time.time()), "exp": int(time.time()) + 60, "iss": str(g.app_id)},
            ),
            "A JSON web token could not be decoded",
        ),
    ],
    ids=["garbage", "a-pat", "expired", "too-long", "wrong-app", "other-key"],
)
def test_a_bad_jwt_is_401_and_issues_nothing(
    github: FakeGitHub, client: httpx.Client, jwt: Any, message: str
) -> None:
    answer = client.post(
        f"/app/installations/{github.installation_id}/access_tokens",
        headers={"Authorization": f"Bearer {jwt(github)}"},
    )
    assert_error(answer, 401, message)
    assert github.installation_tokens == {}


def test_check_runs_need_an_installation_token(github: FakeGitHub, client: httpx.Client) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    refused = client.post("/repos/acme/api/check-runs", json={"name": "ci", "head_sha": sha})
    assert_error(refused, 403, "You must authenticate via a GitHub App.")
    listing = client.get("/installation/repositories")
    assert listing.status_code == 403
    assert github.check_runs == {}


def test_create_and_complete_a_check_run(github: FakeGitHub, client: httpx.Client) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    auth = {"Authorization": f"Bearer {installation_token(github, client)}"}
    created = client.post(
        "/repos/acme/api/check-runs",
        json={"name": "plugport", "head_sha": sha, "status": "in_progress"},
        headers=auth,
    )
    assert created.status_code == 201
    run = created.json()
    assert set(run) == CHECK_RUN_FIELDS
    assert set(run["output"]) == CHECK_OUTPUT_FIELDS
    assert (run["status"], run["conclusion"], run["head_sha"]) == ("in_progress", None, sha)
    done = client.patch(
        f"/repos/acme/api/check-runs/{run['id']}",
        json={"conclusion": "success", "output": {"title": "ok", "summary": "all good"}},
        headers=auth,
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["conclusion"]) == ("completed", "success")
    assert done.json()["completed_at"]
    assert github.check_runs[run["id"]]["output"]["summary"] == "all good"


def test_check_run_validation(github: FakeGitHub, client: httpx.Client) -> None:
    sha = github.add_pull("acme/api")["head"]["sha"]
    auth = {"Authorization": f"Bearer {installation_token(github, client)}"}
    post = lambda body: client.post("/repos/acme/api/check-runs", json=body, headers=auth)  # noqa: E731
    assert post({"head_sha": sha}).json()["errors"] == [
        {"resource": "CheckRun", "field": "name", "code": "missing_field"}
    ]
    assert post({"name": "x"}).json()["errors"][0]["field"] == "head_sha"
    assert post({"name": "x", "head_sha": sha, "status": "done"}).json()["errors"][0] == {
        "resource": "CheckRun",
        "field": "status",
        "code": "invalid",
    }
    completed = post({"name": "x", "head_sha": sha, "status": "completed"})
    assert completed.json()["errors"][0]["field"] == "conclusion"
    unknown = post({"name": "x", "head_sha": "0" * 40})
    assert_error(unknown, 422, f"No commit found for SHA: {'0' * 40}")
    missing = client.patch("/repos/acme/api/check-runs/1", json={}, headers=auth)
    assert_error(missing, 404, "Not Found")
    assert github.check_runs == {}


def test_an_installation_sees_only_its_repositories(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_repo("other/private", installed=False)
    github.add_pull("other/private")
    auth = {"Authorization": f"Bearer {installation_token(github, client)}"}
    assert_error(client.get("/repos/other/private/pulls", headers=auth), 404, "Not Found")
    assert client.get("/repos/other/private/pulls").status_code == 200  # the PAT sees it


def test_installation_repositories_page_with_links(
    github: FakeGitHub, client: httpx.Client
) -> None:
    for index in range(4):
        github.add_repo(f"acme/r{index}")
    auth = {"Authorization": f"Bearer {installation_token(github, client)}"}
    page = client.get("/installation/repositories", params={"per_page": 2}, headers=auth)
    assert page.json()["total_count"] == 5
    assert [r["full_name"] for r in page.json()["repositories"]] == ["acme/api", "acme/r0"]
    assert parse_links(page.headers["link"])["next"].endswith("per_page=2&page=2")


def test_an_expired_installation_token_is_401(github: FakeGitHub, client: httpx.Client) -> None:
    token = installation_token(github, client)
    github.installation_tokens[token] = (github.installation_id, time.time() - 1)
    answer = client.get("/repos/acme/api/pulls", headers={"Authorization": f"Bearer {token}"})
    assert_error(answer, 401, "Bad credentials")


# --- the sender side ------------------------------------------------------------------------------


def test_a_delivery_is_signed_as_github_signs(github: FakeGitHub) -> None:
    github.add_pull("acme/api")
    payload = github.pull_request_payload("opened", "acme/api", 1)
    body, headers = github.delivery("pull_request", payload, "s3cret")
    assert set(headers) >= DELIVERY_HEADERS
    assert headers["X-GitHub-Event"] == "pull_request"
    assert uuid.UUID(headers["X-GitHub-Delivery"])
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert json.loads(body) == payload


def test_pull_request_payloads_have_the_documented_fields(github: FakeGitHub) -> None:
    github.add_pull("acme/api", title="Fix login", author="ada")
    opened = github.pull_request_payload("opened", "acme/api", 1)
    assert {"action", "number", "pull_request", "repository", "sender"} <= set(opened)
    pull = opened["pull_request"]
    assert (pull["title"], pull["user"]["login"], pull["merged"]) == ("Fix login", "ada", False)
    assert pull["html_url"] == "https://github.com/acme/api/pull/1"
    assert {"sha", "ref"} <= set(pull["head"])
    assert pull["base"]["ref"] == "main"
    assert opened["repository"]["full_name"] == "acme/api"
    synced = github.pull_request_payload("synchronize", "acme/api", 1)
    assert synced["before"] == pull["head"]["sha"] != synced["after"]
    assert synced["pull_request"]["head"]["sha"] == synced["after"]
    github.merge_pull("acme/api", 1, by="grace")
    closed = github.pull_request_payload("closed", "acme/api", 1, sender="grace")
    assert closed["pull_request"]["merged"] is True
    assert closed["pull_request"]["merged_by"]["login"] == "grace"


def test_push_payload_has_the_documented_fields(github: FakeGitHub) -> None:
    push = github.push_payload("acme/api", commits=3, messages=["one", "two"])
    assert set(push) == PUSH_FIELDS
    assert push["ref"] == "refs/heads/main"
    assert len(push["commits"]) == 3
    assert set(push["commits"][0]) == COMMIT_FIELDS
    assert [c["message"] for c in push["commits"]] == ["one", "two", "Change 3"]
    assert push["head_commit"] == push["commits"][-1]
    assert push["after"] == push["commits"][-1]["id"]
    assert push["compare"].startswith("https://github.com/acme/api/compare/")
    assert push["repository"]["default_branch"] == "main"


def test_send_posts_the_signed_delivery(github: FakeGitHub) -> None:
    with FakeReceiver() as receiver:
        sent = github.send(receiver.url + "/hook", "push", github.push_payload("acme/api"), "k")
        assert sent.status == 202
        [got] = receiver.received("POST", "/hook")
        assert got.headers["x-github-event"] == "push"
        signature = hmac.new(b"k", got.body, hashlib.sha256).hexdigest()
        assert got.headers["x-hub-signature-256"] == f"sha256={signature}"


class FakeReceiver(FakeService):
    """A bare service that answers a POST to /hook with 202, to receive a delivery."""

    @route("POST", r"/hook")
    def hook(self, request: ServiceRequest) -> Reply:
        return Reply(202, json={"ok": True})


# --- pull request files, issues, issue comments, labels, releases ------------------------------

# https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files (each item)
FILE_FIELDS = {
    "sha",
    "filename",
    "status",
    "additions",
    "deletions",
    "changes",
    "blob_url",
    "raw_url",
    "contents_url",
    "patch",
}
# https://docs.github.com/en/rest/issues/issues#get-an-issue
ISSUE_FIELDS = {
    "url",
    "repository_url",
    "comments_url",
    "html_url",
    "id",
    "node_id",
    "number",
    "title",
    "user",
    "labels",
    "state",
    "locked",
    "assignee",
    "assignees",
    "milestone",
    "comments",
    "created_at",
    "updated_at",
    "closed_at",
    "author_association",
    "body",
}
# https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue (each item)
LABEL_FIELDS = {"id", "node_id", "url", "name", "color", "default", "description"}
# https://docs.github.com/en/rest/releases/releases#get-a-release-by-tag-name
RELEASE_FIELDS = {"url", "html_url", "id", "tag_name", "name", "draft", "prerelease"}


def test_pull_request_files_page_with_links_and_add_up(
    github: FakeGitHub, client: httpx.Client
) -> None:
    files = [(f"src/m{i}.py", i, 1) for i in range(205)]
    github.add_pull("acme/api", files=files)
    first = client.get("/repos/acme/api/pulls/1/files", params={"per_page": 100})
    assert set(first.json()[0]) == FILE_FIELDS
    assert first.json()[0]["changes"] == 1
    links = parse_links(first.headers["link"])
    assert (
        links["next"] == "https://api.github.com/repos/acme/api/pulls/1/files?per_page=100&page=2"
    )
    assert links["last"].endswith("page=3")
    last = client.get(links["last"].removeprefix("https://api.github.com"))
    assert [f["filename"] for f in last.json()] == [
        "src/m200.py",
        *[f"src/m{i}.py" for i in range(201, 205)],
    ]
    pull = client.get("/repos/acme/api/pulls/1").json()
    assert pull["changed_files"] == 205
    assert pull["additions"] == sum(range(205))
    assert pull["deletions"] == 205
    assert set(RATE_HEADERS) <= set(first.headers)


def test_pull_request_files_of_a_missing_pull_or_repo_are_404(client: httpx.Client) -> None:
    assert_error(client.get("/repos/acme/api/pulls/3/files"), 404, "Not Found")
    assert_error(client.get("/repos/acme/gone/pulls/1/files"), 404, "Not Found")


def test_get_an_issue_and_a_pull_request_as_an_issue(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_issue("acme/api", title="Login fails", body="Steps...", labels=["bug"])
    github.add_pull("acme/api", title="Fix login")
    issue = client.get("/repos/acme/api/issues/1").json()
    assert set(issue) >= ISSUE_FIELDS
    assert "pull_request" not in issue
    assert (issue["number"], issue["title"], issue["state"]) == (1, "Login fails", "open")
    assert set(issue["labels"][0]) == LABEL_FIELDS
    assert issue["labels"][0]["name"] == "bug"
    pull = client.get("/repos/acme/api/issues/2").json()  # one numbering for both
    assert set(pull) >= ISSUE_FIELDS
    assert pull["pull_request"]["html_url"] == "https://github.com/acme/api/pull/2"
    assert pull["pull_request"]["merged_at"] is None
    assert_error(client.get("/repos/acme/api/issues/3"), 404, "Not Found")
    assert_error(client.get("/repos/acme/gone/issues/1"), 404, "Not Found")


def test_list_issues_filters_sorts_pages_and_includes_pull_requests(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_issue("acme/api", title="A", labels=["bug", "ui"])
    github.add_issue("acme/api", title="B", state="closed")
    github.add_pull("acme/api", title="C")
    github.add_issue("acme/api", title="D", labels=["bug"])
    opened = client.get("/repos/acme/api/issues").json()
    assert [i["number"] for i in opened] == [4, 3, 1]  # default: open, newest first
    assert ["pull_request" in i for i in opened] == [False, True, False]
    everything = client.get("/repos/acme/api/issues", params={"state": "all", "direction": "asc"})
    assert [i["number"] for i in everything.json()] == [1, 2, 3, 4]
    closed = client.get("/repos/acme/api/issues", params={"state": "closed"}).json()
    assert [i["title"] for i in closed] == ["B"]
    both = client.get("/repos/acme/api/issues", params={"labels": "bug,ui"}).json()
    assert [i["number"] for i in both] == [1]
    paged = client.get("/repos/acme/api/issues", params={"per_page": 2, "state": "all"})
    assert set(parse_links(paged.headers["link"])) == {"next", "last"}
    assert "state=all" in parse_links(paged.headers["link"])["next"]
    for name, value in (("state", "merged"), ("sort", "votes")):
        bad = client.get("/repos/acme/api/issues", params={name: value})
        assert_error(bad, 422, "Validation Failed")
        assert bad.json()["errors"] == [{"resource": "Issue", "field": name, "code": "invalid"}]


def test_list_issue_comments_oldest_first_with_pages(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_issue("acme/api")
    for index in range(3):
        github.add_comment("acme/api", 1, f"comment {index}", author="grace")
    client.post("/repos/acme/api/issues/1/comments", json={"body": "mine"})
    listed = client.get("/repos/acme/api/issues/1/comments").json()
    assert [c["body"] for c in listed] == ["comment 0", "comment 1", "comment 2", "mine"]
    assert set(listed[0]) == COMMENT_FIELDS
    assert listed[0]["html_url"].startswith("https://github.com/acme/api/issues/1#issuecomment-")
    assert listed[3]["user"]["login"] == "octocat"
    paged = client.get("/repos/acme/api/issues/1/comments", params={"per_page": 3})
    assert len(paged.json()) == 3
    assert parse_links(paged.headers["link"])["next"].endswith("per_page=3&page=2")
    assert client.get("/repos/acme/api/issues/1").json()["comments"] == 4
    assert_error(client.get("/repos/acme/api/issues/9/comments"), 404, "Not Found")


def test_add_labels_to_an_issue_and_a_pull_request(
    github: FakeGitHub, client: httpx.Client
) -> None:
    github.add_issue("acme/api", labels=["bug"])
    github.add_pull("acme/api")
    answer = client.post("/repos/acme/api/issues/1/labels", json={"labels": ["bug", "ui"]})
    assert answer.status_code == 200
    assert [label["name"] for label in answer.json()] == ["bug", "ui"]  # bug not doubled
    assert set(answer.json()[1]) == LABEL_FIELDS
    assert github.labels["acme/api"]["ui"]["color"] == "ededed"  # made when new
    bare = client.post("/repos/acme/api/issues/2/labels", json=["docs"])  # a bare array works
    assert [label["name"] for label in bare.json()] == ["docs"]
    assert [label["name"] for label in github.pulls[("acme/api", 2)]["labels"]] == ["docs"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"names": ["x"]}, "labels", "missing_field"),
        ({"labels": "bug"}, "labels", "invalid"),
        ({"labels": [1]}, "labels", "invalid"),
        ({"labels": [" "]}, "name", "invalid"),
        ({"labels": ["x" * 51]}, "name", "invalid"),
    ],
)
def test_label_validation_failures_are_422_and_change_nothing(
    github: FakeGitHub, client: httpx.Client, body: Any, field: str, code: str
) -> None:
    github.add_issue("acme/api", labels=["bug"])
    refused = client.post("/repos/acme/api/issues/1/labels", json=body)
    assert_error(refused, 422, "Validation Failed")
    assert refused.json()["errors"] == [{"resource": "Label", "field": field, "code": code}]
    assert [label["name"] for label in github.issues[("acme/api", 1)]["labels"]] == ["bug"]
    assert set(github.labels["acme/api"]) == {"bug"}


def test_labels_on_a_missing_issue_are_404(github: FakeGitHub, client: httpx.Client) -> None:
    assert_error(
        client.post("/repos/acme/api/issues/5/labels", json={"labels": ["x"]}), 404, "Not Found"
    )
    assert github.labels.get("acme/api", {}) == {}


def test_list_pull_requests_sorted_by_update(github: FakeGitHub, client: httpx.Client) -> None:
    for _ in range(3):
        github.add_pull("acme/api")
    github.merge_pull("acme/api", 1, at=time.time() + 120)  # the latest update
    github.merge_pull("acme/api", 3, at=time.time() - 3600)
    updated = client.get(
        "/repos/acme/api/pulls", params={"state": "all", "sort": "updated", "direction": "desc"}
    ).json()
    assert [p["number"] for p in updated] == [1, 2, 3]
    assert updated[0]["merged_at"] is not None
    bad = client.get("/repos/acme/api/pulls", params={"sort": "votes"})
    assert bad.json()["errors"] == [{"resource": "PullRequest", "field": "sort", "code": "invalid"}]


def test_get_a_release_by_tag(github: FakeGitHub, client: httpx.Client) -> None:
    github.add_release("acme/api", "v1.2.0", published_at=1_700_000_000)
    release = client.get("/repos/acme/api/releases/tags/v1.2.0").json()
    assert set(release) >= RELEASE_FIELDS
    assert release["published_at"] == "2023-11-14T22:13:20Z"
    assert_error(client.get("/repos/acme/api/releases/tags/v9"), 404, "Not Found")
