"""A local GitHub: the REST endpoints the example plugin calls (issues, their comments and
labels, pull requests and their files with ``Link`` pagination, releases, check runs, GitHub
App installation tokens) with GitHub's headers, error
bodies and rate limits, and the sender side of GitHub webhooks (signed ``push`` and
``pull_request`` deliveries).

Shapes follow GitHub's REST reference (API version 2022-11-28):

- https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api
  (``User-Agent`` required, ``X-GitHub-Api-Version``, error bodies)
- https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
  (``x-ratelimit-*`` on every answer; primary limit: 403/429 with ``x-ratelimit-remaining: 0``;
  secondary limit: 403/429 with ``retry-after``)
- https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
  (``per_page`` at most 100, ``page``, the ``Link`` header: ``prev``, ``next``, ``last``,
  ``first``)
- https://docs.github.com/en/rest/issues/comments#create-an-issue-comment
- https://docs.github.com/en/rest/pulls/pulls (get, list with ``state``/``sort``/
  ``direction``, list files)
- https://docs.github.com/en/rest/issues/issues (get; list with ``state``/``labels``/
  ``sort``/``direction``: pull requests are issues too, with a ``pull_request`` key)
- https://docs.github.com/en/rest/issues/comments#list-issue-comments
- https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue
- https://docs.github.com/en/rest/releases/releases#get-a-release-by-tag-name
- https://docs.github.com/en/rest/checks/runs (create and update; GitHub Apps only)
- https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
- https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
- https://docs.github.com/en/rest/apps/installations#list-repositories-accessible-to-the-app-installation
- https://docs.github.com/en/webhooks/webhook-events-and-payloads (delivery headers, ``push``
  and ``pull_request`` payloads)

The fake's GitHub App key is RSA, made here with the standard library (the fake needs no
``cryptography``): :attr:`FakeGitHub.app_private_key_pem` is what an operator would download
from the App's settings page, and JWTs are verified with its public half.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from plugport.testing.services._service import (
    FakeService,
    Fault,
    Refusal,
    Reply,
    Sent,
    ServiceRequest,
    route,
    send,
)

__all__ = ["API", "API_VERSION", "FakeGitHub", "RsaKey"]

API = "https://api.github.com"
API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
HOOKSHOT_AGENT = "GitHub-Hookshot/7c3d9e1"
PRIMARY_LIMIT = 5000
JWT_MAX_LIFETIME_S = 600
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


# --- RSA with the standard library (the App's key pair) ---------------------------------------


@dataclass(frozen=True)
class RsaKey:
    """An RSA key pair: enough to hand out a PEM and verify RS256 signatures."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def private_pem(self) -> str:
        """PKCS#1 (``BEGIN RSA PRIVATE KEY``), the form GitHub's App settings page downloads."""
        dp, dq, qi = self.d % (self.p - 1), self.d % (self.q - 1), pow(self.q, -1, self.p)
        der = _der_sequence(0, self.n, self.e, self.d, self.p, self.q, dp, dq, qi)
        lines = base64.encodebytes(der).decode("ascii").replace("\n", "")
        wrapped = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{wrapped}\n-----END RSA PRIVATE KEY-----\n"

    def verify_rs256(self, message: bytes, signature: bytes) -> bool:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2.2), what a JWT's ``RS256`` means."""
        size = (self.n.bit_length() + 7) // 8
        if len(signature) != size:
            return False
        value = int.from_bytes(signature, "big")
        if value >= self.n:
            return False
        encoded = pow(value, self.e, self.n).to_bytes(size, "big")
        digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
        digest = hashlib.sha256(message).digest()
        expected = b"\x00\x01" + b"\xff" * (size - 3 - 19 - 32) + b"\x00" + digest_info + digest
        return hmac.compare_digest(encoded, expected)


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_sequence(*values: int) -> bytes:
    body = b"".join(_der_integer(v) for v in values)
    return b"\x30" + _der_length(len(body)) + body


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _probable_prime(candidate: int, rounds: int = 40) -> bool:
    if any(candidate % p == 0 for p in _SMALL_PRIMES):
        return candidate in _SMALL_PRIMES
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(candidate - 3) + 2, d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, candidate)
            if x == candidate - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1  # top two bits: n has 2*bits
        if (candidate - 1) % e and _probable_prime(candidate):
            return candidate


def generate_rsa_key(bits: int = 2048) -> RsaKey:
    """A fresh RSA key pair (e = 65537)."""
    e = 65537
    while True:
        p, q = _prime(bits // 2, e), _prime(bits // 2, e)
        if p != q:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    return RsaKey(p * q, e, d, p, q)


@functools.cache
def _shared_app_key() -> RsaKey:
    """One key per test process: making a 2048-bit key in pure Python takes a moment."""
    return generate_rsa_key()


# --- small helpers -------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(login: str, user_id: int) -> dict[str, Any]:
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "url": f"{API}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


@dataclass
class _Installation:
    id: int
    repositories: list[str]


# --- the fake ------------------------------------------------------------------------------------


class FakeGitHub(FakeService):
    """GitHub's REST API at ``api.github.com`` and GitHub's webhook sender.

    State a test sets up: :meth:`add_token` (a personal access token), :meth:`add_repo`,
    :meth:`add_pull` (with ``files``), :meth:`merge_pull`, :meth:`add_issue`,
    :meth:`add_comment`, :meth:`add_release`; the App (:attr:`app_id`, :attr:`app_private_key_pem`,
    :attr:`installation_id`, which can reach every repository added with ``installed=True``).
    What it received: :attr:`comments`, :attr:`check_runs`, :meth:`received`. Failures:
    :meth:`throttle` (429 + ``retry-after``), :meth:`secondary_limit` (403 + ``retry-after``),
    :meth:`exhaust_rate_limit` (403 with ``x-ratelimit-remaining: 0``), :meth:`fail_next`.
    """

    hosts: ClassVar[tuple[str, ...]] = ("api.github.com",)
    name: ClassVar[str] = "github"

    def __init__(
        self, *, app_id: int = 901234, installation_id: int = 55501, key: RsaKey | None = None
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.installation_id = installation_id
        self.app_key = key if key is not None else _shared_app_key()
        self.tokens: dict[str, str] = {}
        """Personal access tokens the fake accepts, and whose they are (login)."""
        self.installation_tokens: dict[str, tuple[int, float]] = {}
        """Installation tokens it issued: token -> (installation id, expires at, Unix s)."""
        self.installation_token_lifetime_s = 3600
        self.repos: dict[str, dict[str, Any]] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self.commits: dict[str, set[str]] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        """Issues that are not pull requests (those live in :attr:`pulls`; both share one
        numbering per repository, as on GitHub)."""
        self.pull_files: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.labels: dict[str, dict[str, dict[str, Any]]] = {}
        """Each repository's labels by name (adding an unknown one to an issue creates it)."""
        self.releases: dict[tuple[str, str], dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        """Issue comments created, oldest first; each has ``repository`` and ``issue_number``
        besides GitHub's fields."""
        self.check_runs: dict[int, dict[str, Any]] = {}
        """Check runs by id; each has ``repository`` besides GitHub's fields."""
        self.installations = {installation_id: _Installation(installation_id, [])}
        self.rate_remaining = PRIMARY_LIMIT
        self.rate_reset = int(time.time()) + 3600
        self._secondary: list[Fault] = []
        self._ids = 1000
        self.hook_id = 424242

    # --- what a test sets up -----------------------------------------------------------------

    @property
    def app_private_key_pem(self) -> str:
        """The App's private key, as the operator stores it (``plugport secret set``)."""
        return self.app_key.private_pem

    def add_token(self, token: str, login: str = "octocat") -> str:
        with self._lock:
            self.tokens[token] = login
        return token

    def add_repo(
        self, full_name: str, *, default_branch: str = "main", installed: bool = True
    ) -> dict[str, Any]:
        owner, _, name = full_name.partition("/")
        with self._lock:
            repo_id = self._next_id()
            repo = {
                "id": repo_id,
                "node_id": f"R_kgDO{repo_id}",
                "name": name,
                "full_name": full_name,
                "private": False,
                "owner": _user(owner, self._next_id()),
                "html_url": f"https://github.com/{full_name}",
                "description": None,
                "fork": False,
                "url": f"{API}/repos/{full_name}",
                "default_branch": default_branch,
                "visibility": "public",
            }
            self.repos[full_name] = repo
            self.commits.setdefault(full_name, set())
            if installed:
                self.installations[self.installation_id].repositories.append(full_name)
        return repo

    def add_commit(self, repo: str, sha: str | None = None) -> str:
        sha = sha or _sha(f"{repo}:{self._next_id()}")
        with self._lock:
            self.commits.setdefault(repo, set()).add(sha)
        return sha

    def add_pull(
        self,
        repo: str,
        *,
        title: str = "Fix login",
        author: str = "ada",
        head_ref: str = "fix-login",
        base_ref: str | None = None,
        state: str = "open",
        commits: int = 1,
        body: str | None = None,
        labels: list[str] | None = None,
        files: list[tuple[str, int, int] | dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A pull request in ``repo`` (added first with :meth:`add_repo`), numbered in order
        with the repository's issues. ``files``: ``(filename, additions, deletions)`` or a
        file object's fields (``status``, ``patch``...); the pull request's ``additions``,
        ``deletions`` and ``changed_files`` then add up to them, as GitHub's do."""
        with self._lock:
            record = self.repos[repo]
            number = self._next_number(repo)
            head_sha = self.add_commit(repo)
            base_sha = self.add_commit(repo)
            now = time.time()
            pull_id = self._next_id()
            base_ref = base_ref or record["default_branch"]
            user = _user(author, self._next_id())
            pull = {
                "url": f"{API}/repos/{repo}/pulls/{number}",
                "id": pull_id,
                "node_id": f"PR_kwDO{pull_id}",
                "html_url": f"https://github.com/{repo}/pull/{number}",
                "diff_url": f"https://github.com/{repo}/pull/{number}.diff",
                "issue_url": f"{API}/repos/{repo}/issues/{number}",
                "comments_url": f"{API}/repos/{repo}/issues/{number}/comments",
                "number": number,
                "state": state,
                "locked": False,
                "title": title,
                "user": user,
                "body": body,
                "labels": [self._label(repo, name) for name in labels or []],
                "created_at": _iso(now),
                "updated_at": _iso(now),
                "closed_at": None,
                "merged_at": None,
                "merge_commit_sha": None,
                "draft": False,
                "head": self._ref(repo, head_ref, head_sha, user),
                "base": self._ref(repo, base_ref, base_sha, record["owner"]),
                "author_association": "CONTRIBUTOR",
                # Only in the single pull request's answer (and webhook payloads):
                "merged": False,
                "mergeable": True,
                "merged_by": None,
                "comments": 0,
                "commits": commits,
                "additions": 10,
                "deletions": 2,
                "changed_files": 1,
            }
            self.pulls[(repo, number)] = pull
            if files is not None:
                self.set_pull_files(repo, number, files)
        return pull

    def set_pull_files(
        self, repo: str, number: int, files: list[tuple[str, int, int] | dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The files pull request ``number`` changes (see :meth:`add_pull`)."""
        with self._lock:
            pull = self.pulls[(repo, number)]
            listed = []
            for given in files:
                fields = (
                    {"filename": given[0], "additions": given[1], "deletions": given[2]}
                    if isinstance(given, tuple)
                    else dict(given)
                )
                listed.append(self._file(repo, pull["head"]["sha"], fields))
            self.pull_files[(repo, number)] = listed
            pull.update(
                additions=sum(f["additions"] for f in listed),
                deletions=sum(f["deletions"] for f in listed),
                changed_files=len(listed),
            )
        return listed

    def _file(self, repo: str, head_sha: str, fields: dict[str, Any]) -> dict[str, Any]:
        name = str(fields["filename"])
        additions, deletions = int(fields.get("additions", 0)), int(fields.get("deletions", 0))
        status = fields.get("status") or ("added" if deletions == 0 and additions else "modified")
        return {
            "sha": _sha(f"{repo}:{head_sha}:{name}"),
            "filename": name,
            "status": status,
            "additions": additions,
            "deletions": deletions,
            "changes": additions + deletions,
            "blob_url": f"https://github.com/{repo}/blob/{head_sha}/{name}",
            "raw_url": f"https://github.com/{repo}/raw/{head_sha}/{name}",
            "contents_url": f"{API}/repos/{repo}/contents/{name}?ref={head_sha}",
            "patch": fields.get("patch", f"@@ -1,{deletions} +1,{additions} @@"),
            **({"previous_filename": fields["previous_filename"]} if status == "renamed" else {}),
        }

    def add_issue(
        self,
        repo: str,
        *,
        title: str = "Login fails",
        body: str | None = None,
        author: str = "ada",
        state: str = "open",
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        """An issue in ``repo``, numbered in order with its pull requests."""
        with self._lock:
            number = self._next_number(repo)
            issue_id = self._next_id()
            now = _iso(time.time())
            issue = {
                "url": f"{API}/repos/{repo}/issues/{number}",
                "repository_url": f"{API}/repos/{repo}",
                "labels_url": f"{API}/repos/{repo}/issues/{number}/labels{{/name}}",
                "comments_url": f"{API}/repos/{repo}/issues/{number}/comments",
                "events_url": f"{API}/repos/{repo}/issues/{number}/events",
                "html_url": f"https://github.com/{repo}/issues/{number}",
                "id": issue_id,
                "node_id": f"I_kwDO{issue_id}",
                "number": number,
                "title": title,
                "user": _user(author, self._next_id()),
                "labels": [self._label(repo, name) for name in labels or []],
                "state": state,
                "state_reason": "completed" if state == "closed" else None,
                "locked": False,
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "comments": 0,
                "created_at": now,
                "updated_at": now,
                "closed_at": now if state == "closed" else None,
                "author_association": "CONTRIBUTOR",
                "body": body,
            }
            self.issues[(repo, number)] = issue
        return issue

    def add_comment(
        self, repo: str, number: int, body: str, *, author: str = "grace"
    ) -> dict[str, Any]:
        """A comment someone left on issue (or pull request) ``number``."""
        with self._lock:
            return self._new_comment(repo, number, body, author)

    def add_release(self, repo: str, tag: str, *, published_at: float) -> dict[str, Any]:
        """A published release of ``repo`` tagged ``tag`` (``published_at``: Unix seconds)."""
        with self._lock:
            release_id = self._next_id()
            release = {
                "url": f"{API}/repos/{repo}/releases/{release_id}",
                "html_url": f"https://github.com/{repo}/releases/tag/{tag}",
                "id": release_id,
                "node_id": f"RE_kwDO{release_id}",
                "tag_name": tag,
                "target_commitish": self.repos[repo]["default_branch"],
                "name": tag,
                "draft": False,
                "prerelease": False,
                "created_at": _iso(published_at),
                "published_at": _iso(published_at),
                "author": _user("grace", self._next_id()),
                "body": "",
                "assets": [],
            }
            self.releases[(repo, tag)] = release
        return release

    def _next_number(self, repo: str) -> int:
        """Issues and pull requests share one sequence per repository."""
        with self._lock:
            taken = [n for (r, n) in [*self.pulls, *self.issues] if r == repo]
            return 1 + max(taken, default=0)

    def _label(self, repo: str, name: str) -> dict[str, Any]:
        """Repository label ``name``, made (grey, as GitHub makes one) when it is new."""
        with self._lock:
            known = self.labels.setdefault(repo, {})
            if name not in known:
                label_id = self._next_id()
                known[name] = {
                    "id": label_id,
                    "node_id": f"LA_kwDO{label_id}",
                    "url": f"{API}/repos/{repo}/labels/{name}",
                    "name": name,
                    "color": "ededed",
                    "default": False,
                    "description": None,
                }
            return dict(known[name])

    def merge_pull(
        self, repo: str, number: int, *, by: str = "grace", at: float | None = None
    ) -> dict[str, Any]:
        """Merge pull request ``number`` now (or at ``at``, Unix seconds)."""
        with self._lock:
            pull = self.pulls[(repo, number)]
            now = _iso(time.time() if at is None else at)
            pull.update(
                state="closed",
                merged=True,
                merged_at=now,
                closed_at=now,
                updated_at=now,
                merge_commit_sha=self.add_commit(repo),
                merged_by=_user(by, self._next_id()),
            )
        return pull

    def _ref(self, repo: str, ref: str, sha: str, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "label": f"{user['login']}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": user,
            "repo": self.repos[repo],
        }

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    # --- failures a test switches on -----------------------------------------------------------

    def secondary_limit(
        self, times: int = 1, *, retry_after_s: int = 1, status: int = 403, path: str | None = None
    ) -> None:
        """The next ``times`` requests hit the secondary rate limit: ``status`` (403, or 429)
        with ``retry-after``."""
        with self._lock:
            self._secondary.append(Fault(status, times, retry_after_s, path))

    def exhaust_rate_limit(self, *, reset_in_s: int = 60, status: int = 403) -> None:
        """The primary limit is used up until ``reset_in_s`` from now: answers are ``status``
        with ``x-ratelimit-remaining: 0`` and the reset time."""
        with self._lock:
            self.rate_remaining = 0
            self.rate_reset = int(time.time()) + reset_in_s
            self._exhausted_status = status

    _exhausted_status = 403

    # --- GitHub's shapes -----------------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        """``{"message", "documentation_url", "status"}``, as every GitHub error is, with
        GitHub's own message where it has one for ``status``."""
        return self._error(status, _MESSAGES.get(status, message))

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        return {"retry-after": str(retry_after_s)}

    def _limit_headers(self) -> dict[str, str]:
        with self._lock:
            return {
                "x-ratelimit-limit": str(PRIMARY_LIMIT),
                "x-ratelimit-remaining": str(self.rate_remaining),
                "x-ratelimit-used": str(PRIMARY_LIMIT - self.rate_remaining),
                "x-ratelimit-reset": str(self.rate_reset),
                "x-ratelimit-resource": "core",
            }

    def handle(self, request: ServiceRequest) -> Reply:
        reply = self._gate(request)
        if reply is None:
            reply = super().handle(request)
        else:
            with self._lock:
                self.requests.append(request)
        headers = {
            **self._limit_headers(),
            "x-github-api-version-selected": API_VERSION,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": f"{self._next_id():X}:{secrets.token_hex(4).upper()}",
            **reply.headers,
        }
        return Reply(reply.status, reply.json, reply.body, headers)

    def _gate(self, request: ServiceRequest) -> Reply | None:
        """What GitHub refuses before routing: no ``User-Agent``, an API version it does not
        have, the secondary limit, an exhausted primary limit. Counts the request."""
        if not request.headers.get("user-agent"):
            text = (
                "Request forbidden by administrative rules. Please make sure your request has a "
                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-"
                "rest-api#user-agent-required). Check https://developer.github.com for other "
                "possible causes.\n"
            )
            return Reply(403, body=text.encode(), headers={"Content-Type": "text/plain"})
        version = request.headers.get("x-github-api-version")
        if version is not None and version != API_VERSION:
            return self._error(400, f"API version {version} is not supported.")
        with self._lock:
            for fault in self._secondary:
                if fault.times > 0 and (
                    fault.path is None or re.fullmatch(fault.path, request.path)
                ):
                    fault.times -= 1
                    reply = self._error(fault.status, SECONDARY_MESSAGE)
                    return Reply(
                        reply.status, reply.json, headers={"retry-after": str(fault.retry_after_s)}
                    )
            if self.rate_remaining == 0 and time.time() >= self.rate_reset:
                self.rate_remaining, self.rate_reset = PRIMARY_LIMIT, int(time.time()) + 3600
            if self.rate_remaining == 0:
                return self._error(
                    self._exhausted_status,
                    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support "
                    "for help, please include the request ID.",
                )
            self.rate_remaining -= 1
        return None

    def _error(self, status: int, message: str, **extra: Any) -> Reply:
        return Reply(
            status,
            json={"message": message, **extra, "documentation_url": DOCS, "status": str(status)},
        )

    def _validation(self, resource: str, field: str, code: str) -> Refusal:
        return Refusal(
            self._error(
                422,
                "Validation Failed",
                errors=[{"resource": resource, "field": field, "code": code}],
            )
        )

    # --- authentication -------------------------------------------------------------------------

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if request.path.startswith("/app/"):
            return self._check_jwt(scheme, credential)
        if not credential:
            return self._error(401, "Requires authentication")
        if scheme.lower() not in ("bearer", "token"):
            return self._error(401, "Bad credentials")
        with self._lock:
            if credential in self.tokens:
                return None
            issued = self.installation_tokens.get(credential)
        if issued is None or issued[1] <= time.time():
            return self._error(401, "Bad credentials")
        return None

    def _check_jwt(self, scheme: str, token: str) -> Reply | None:  # noqa: PLR0911 - one per refusal
        """The App's JWT: RS256, signed by the App's key, ``iss`` the App id, not expired and
        not more than ten minutes ahead."""
        undecodable = self._error(401, "A JSON web token could not be decoded")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return undecodable
        head, claims_part, signature = token.split(".")
        try:
            header = json.loads(_b64url_decode(head))
            claims = json.loads(_b64url_decode(claims_part))
            raw_signature = _b64url_decode(signature)
        except (ValueError, UnicodeDecodeError):
            return undecodable
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return undecodable
        if not self.app_key.verify_rs256(f"{head}.{claims_part}".encode(), raw_signature):
            return undecodable
        if not isinstance(claims, dict):
            return undecodable
        now = time.time()
        exp, iat, iss = claims.get("exp"), claims.get("iat"), claims.get("iss")
        if not isinstance(iat, int) or iat > now + 60:
            return self._error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued.",
            )
        if not isinstance(exp, int) or exp <= now:
            return self._error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires.",
            )
        if exp > now + JWT_MAX_LIFETIME_S or exp - iat > JWT_MAX_LIFETIME_S:
            return self._error(401, "'Expiration time' claim ('exp') is too far in the future.")
        if str(iss) != str(self.app_id):
            return self._error(401, "'Issuer' claim ('iss') must be an Integer.")
        return None

    def _caller(self, request: ServiceRequest) -> tuple[str, int | None]:
        """``("pat", None)`` or ``("installation", id)`` for an authenticated request."""
        token = request.headers.get("authorization", "").partition(" ")[2]
        with self._lock:
            if token in self.tokens:
                return "pat", None
            installation, _ = self.installation_tokens[token]
        return "installation", installation

    def _repo(self, request: ServiceRequest) -> str:
        """The repository the path names, if it exists and the caller can see it (GitHub
        answers 404 for a repository an installation cannot reach)."""
        full_name = f"{request.params['owner']}/{request.params['repo']}"
        kind, installation = self._caller(request)
        with self._lock:
            visible = full_name in self.repos and (
                kind == "pat"
                or (
                    installation is not None
                    and full_name in self.installations[installation].repositories
                )
            )
        if not visible:
            raise Refusal(self._error(404, "Not Found"))
        return full_name

    # --- issue comments ------------------------------------------------------------------------

    @route("POST", _REPO + r"/issues/(?P<number>[0-9]+)/comments")
    def create_comment(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        number = int(request.params["number"])
        payload = self.parse_json(request)
        if not isinstance(payload, dict):
            raise Refusal(self._error(400, "Problems parsing JSON"))
        body = payload.get("body")
        if body is None:
            raise self._validation("IssueComment", "body", "missing_field")
        if not isinstance(body, str) or not body.strip():
            raise self._validation("IssueComment", "body", "invalid")
        with self._lock:
            if self._issue_view(repo, number) is None:
                raise Refusal(self._error(404, "Not Found"))
            comment = self._new_comment(repo, number, body, self._login(request))
        return Reply(201, json=comment, headers={"Location": comment["url"]})

    def _new_comment(self, repo: str, number: int, body: str, login: str) -> dict[str, Any]:
        """Store a comment on issue or pull request ``number``; GitHub's fields only."""
        with self._lock:
            kind = "pull" if (repo, number) in self.pulls else "issues"
            comment_id = self._next_id()
            now = _iso(time.time())
            comment: dict[str, Any] = {
                "id": comment_id,
                "node_id": f"IC_kwDO{comment_id}",
                "url": f"{API}/repos/{repo}/issues/comments/{comment_id}",
                "html_url": f"https://github.com/{repo}/{kind}/{number}#issuecomment-{comment_id}",
                "body": body,
                "user": _user(login, self._next_id()),
                "created_at": now,
                "updated_at": now,
                "issue_url": f"{API}/repos/{repo}/issues/{number}",
                "author_association": "NONE",
            }
            self.comments.append({**comment, "repository": repo, "issue_number": number})
            (self.pulls.get((repo, number)) or self.issues[(repo, number)])["comments"] += 1
        return comment

    @route("GET", _REPO + r"/issues/(?P<number>[0-9]+)/comments")
    def list_comments(self, request: ServiceRequest) -> Reply:
        """Oldest first, as GitHub lists them (``per_page``/``page``)."""
        repo = self._repo(request)
        number = int(request.params["number"])
        with self._lock:
            if self._issue_view(repo, number) is None:
                raise Refusal(self._error(404, "Not Found"))
            found = [
                {k: v for k, v in c.items() if k not in ("repository", "issue_number")}
                for c in self.comments
                if c["repository"] == repo and c["issue_number"] == number
            ]
        return self._page(request, found, f"{API}/repos/{repo}/issues/{number}/comments")

    # --- issues --------------------------------------------------------------------------------

    def _issue_view(self, repo: str, number: int) -> dict[str, Any] | None:
        """Issue ``number`` as the issues API shows it: a pull request is an issue with a
        ``pull_request`` key (and without the pull request's own fields)."""
        with self._lock:
            issue = self.issues.get((repo, number))
            if issue is not None:
                copied: dict[str, Any] = json.loads(json.dumps(issue))
                return copied
            pull = self.pulls.get((repo, number))
            if pull is None:
                return None
            return {
                "url": f"{API}/repos/{repo}/issues/{number}",
                "repository_url": f"{API}/repos/{repo}",
                "comments_url": pull["comments_url"],
                "html_url": pull["html_url"],
                "id": pull["id"],
                "node_id": pull["node_id"],
                "number": number,
                "title": pull["title"],
                "user": pull["user"],
                "labels": json.loads(json.dumps(pull["labels"])),
                "state": pull["state"],
                "locked": False,
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "comments": pull["comments"],
                "created_at": pull["created_at"],
                "updated_at": pull["updated_at"],
                "closed_at": pull["closed_at"],
                "author_association": pull["author_association"],
                "body": pull["body"],
                "draft": pull["draft"],
                "pull_request": {
                    "url": pull["url"],
                    "html_url": pull["html_url"],
                    "diff_url": pull["diff_url"],
                    "patch_url": f"{pull['html_url']}.patch",
                    "merged_at": pull["merged_at"],
                },
            }

    @route("GET", _REPO + r"/issues/(?P<number>[0-9]+)")
    def get_issue(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        issue = self._issue_view(repo, int(request.params["number"]))
        if issue is None:
            raise Refusal(self._error(404, "Not Found"))
        return Reply(200, json=issue)

    @route("GET", _REPO + r"/issues")
    def list_issues(self, request: ServiceRequest) -> Reply:
        """``state`` (open, closed, all; default open), ``labels`` (comma-separated, all
        required), ``sort`` (created, updated, comments) and ``direction`` (default desc)."""
        repo = self._repo(request)
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise self._validation("Issue", "state", "invalid")
        sort = request.query.get("sort", "created")
        if sort not in ("created", "updated", "comments"):
            raise self._validation("Issue", "sort", "invalid")
        wanted = {n.strip() for n in request.query.get("labels", "").split(",") if n.strip()}
        with self._lock:
            numbers = sorted({n for (r, n) in [*self.pulls, *self.issues] if r == repo})
            views = [v for v in (self._issue_view(repo, n) for n in numbers) if v is not None]
        found = [
            v
            for v in views
            if (state == "all" or v["state"] == state)
            and wanted <= {label["name"] for label in v["labels"]}
        ]
        key = {"created": "created_at", "updated": "updated_at", "comments": "comments"}[sort]
        found.sort(
            key=lambda v: (v[key], int(v["number"])),
            reverse=request.query.get("direction", "desc") != "asc",
        )
        return self._page(request, found, f"{API}/repos/{repo}/issues")

    @route("POST", _REPO + r"/issues/(?P<number>[0-9]+)/labels")
    def add_labels(self, request: ServiceRequest) -> Reply:
        """``{"labels": [...]}`` (or a bare array of names): added to the issue's labels,
        creating unknown ones; the answer is every label the issue now has."""
        repo = self._repo(request)
        number = int(request.params["number"])
        payload = self.parse_json(request)
        names = payload.get("labels") if isinstance(payload, dict) else payload
        if names is None:
            raise self._validation("Label", "labels", "missing_field")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self._validation("Label", "labels", "invalid")
        if any(not n.strip() or len(n) > 50 for n in names):
            raise self._validation("Label", "name", "invalid")
        with self._lock:
            target = self.pulls.get((repo, number)) or self.issues.get((repo, number))
            if target is None:
                raise Refusal(self._error(404, "Not Found"))
            have = {label["name"] for label in target["labels"]}
            for name in names:
                if name not in have:
                    target["labels"].append(self._label(repo, name))
                    have.add(name)
            target["updated_at"] = _iso(time.time())
            return Reply(200, json=json.loads(json.dumps(target["labels"])))

    # --- releases ------------------------------------------------------------------------------

    @route("GET", _REPO + r"/releases/tags/(?P<tag>[^/]+)")
    def release_by_tag(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        with self._lock:
            release = self.releases.get((repo, request.params["tag"]))
        if release is None:
            raise Refusal(self._error(404, "Not Found"))
        return Reply(200, json=release)

    def _login(self, request: ServiceRequest) -> str:
        kind, _ = self._caller(request)
        if kind == "pat":
            return self.tokens[request.headers["authorization"].partition(" ")[2]]
        return "plugport-example[bot]"

    # --- pull requests -------------------------------------------------------------------------

    @route("GET", _REPO + r"/pulls/(?P<number>[0-9]+)")
    def get_pull(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        with self._lock:
            pull = self.pulls.get((repo, int(request.params["number"])))
            if pull is None:
                raise Refusal(self._error(404, "Not Found"))
            return Reply(200, json=json.loads(json.dumps(pull)))

    @route("GET", _REPO + r"/pulls")
    def list_pulls(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise self._validation("PullRequest", "state", "invalid")
        sort = request.query.get("sort", "created")
        if sort not in ("created", "updated", "popularity", "long-running"):
            raise self._validation("PullRequest", "sort", "invalid")
        direction = request.query.get("direction", "desc")
        with self._lock:
            found = [
                {k: v for k, v in pull.items() if k not in _DETAIL_ONLY}
                for (r, _), pull in self.pulls.items()
                if r == repo and (state == "all" or pull["state"] == state)
            ]
        key = "updated_at" if sort == "updated" else "created_at"
        found.sort(key=lambda p: (p[key], int(p["number"])), reverse=direction != "asc")
        return self._page(request, found, f"{API}/repos/{repo}/pulls")

    @route("GET", _REPO + r"/pulls/(?P<number>[0-9]+)/files")
    def list_pull_files(self, request: ServiceRequest) -> Reply:
        """The pull request's files, ``per_page`` at most 100 (GitHub lists 3000 at most)."""
        repo = self._repo(request)
        number = int(request.params["number"])
        with self._lock:
            if (repo, number) not in self.pulls:
                raise Refusal(self._error(404, "Not Found"))
            files = json.loads(json.dumps(self.pull_files.get((repo, number), [])))[:3000]
        return self._page(request, files, f"{API}/repos/{repo}/pulls/{number}/files")

    def _page(
        self,
        request: ServiceRequest,
        items: list[dict[str, Any]],
        base: str,
        wrap: Mapping[str, Any] | None = None,
        key: str = "",
    ) -> Reply:
        """One page of ``items`` (``per_page`` default 30, at most 100; ``page`` from 1) with
        the ``Link`` header GitHub sends: other query parameters are kept in each link."""
        per_page = min(max(_int(request.query.get("per_page"), 30), 1), 100)
        page = max(_int(request.query.get("page"), 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        kept = {k: v for k, v in request.query.items() if k not in ("page", "per_page")}

        def link(number: int, rel: str) -> str:
            query = urlencode({**kept, "per_page": per_page, "page": number})
            return f'<{base}?{query}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        headers = {"Link": ", ".join(links)} if links else {}
        body: Any = chunk if wrap is None else {**wrap, key: chunk}
        return Reply(200, json=body, headers=headers)

    # --- check runs ------------------------------------------------------------------------------

    def _app_only(self, request: ServiceRequest) -> None:
        if self._caller(request)[0] != "installation":
            raise Refusal(self._error(403, "You must authenticate via a GitHub App."))

    @route("POST", _REPO + r"/check-runs")
    def create_check_run(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        self._app_only(request)
        payload = self.parse_json(request)
        if not isinstance(payload, dict):
            raise Refusal(self._error(400, "Problems parsing JSON"))
        for name in ("name", "head_sha"):
            if not isinstance(payload.get(name), str) or not payload[name]:
                raise self._validation("CheckRun", name, "missing_field")
        with self._lock:
            if payload["head_sha"] not in self.commits.get(repo, set()):
                raise Refusal(self._error(422, f"No commit found for SHA: {payload['head_sha']}"))
            run_id = self._next_id()
            run = {
                "id": run_id,
                "head_sha": payload["head_sha"],
                "node_id": f"CR_kwDO{run_id}",
                "external_id": payload.get("external_id", ""),
                "url": f"{API}/repos/{repo}/check-runs/{run_id}",
                "html_url": f"https://github.com/{repo}/runs/{run_id}",
                "details_url": payload.get("details_url"),
                "status": "queued",
                "conclusion": None,
                "started_at": _iso(time.time()),
                "completed_at": None,
                "output": {
                    "title": None,
                    "summary": None,
                    "text": None,
                    "annotations_count": 0,
                    "annotations_url": f"{API}/repos/{repo}/check-runs/{run_id}/annotations",
                },
                "name": payload["name"],
                "check_suite": {"id": self._next_id()},
                "app": {"id": self.app_id, "slug": "plugport-example", "name": "Plugport"},
                "pull_requests": [],
            }
            self._apply_run(run, payload)
            self.check_runs[run_id] = {**run, "repository": repo}
        return Reply(201, json=run)

    @route("PATCH", _REPO + r"/check-runs/(?P<run_id>[0-9]+)")
    def update_check_run(self, request: ServiceRequest) -> Reply:
        repo = self._repo(request)
        self._app_only(request)
        payload = self.parse_json(request)
        if not isinstance(payload, dict):
            raise Refusal(self._error(400, "Problems parsing JSON"))
        with self._lock:
            stored = self.check_runs.get(int(request.params["run_id"]))
            if stored is None or stored["repository"] != repo:
                raise Refusal(self._error(404, "Not Found"))
            run = {k: v for k, v in stored.items() if k != "repository"}
            if isinstance(payload.get("name"), str):
                run["name"] = payload["name"]
            self._apply_run(run, payload)
            self.check_runs[run["id"]] = {**run, "repository": repo}
        return Reply(200, json=run)

    def _apply_run(self, run: dict[str, Any], payload: dict[str, Any]) -> None:
        """``status``, ``conclusion`` (which completes the run, and which ``completed``
        needs) and ``output`` (``title`` and ``summary`` required when given)."""
        status = payload.get("status", run["status"] if "conclusion" not in payload else None)
        conclusion = payload.get("conclusion")
        if status is not None and status not in CHECK_STATUSES:
            raise self._validation("CheckRun", "status", "invalid")
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise self._validation("CheckRun", "conclusion", "invalid")
        if status == "completed" and conclusion is None:
            raise self._validation("CheckRun", "conclusion", "missing_field")
        output = payload.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise self._validation("CheckRun", "output", "invalid")
            for name in ("title", "summary"):
                if not isinstance(output.get(name), str):
                    raise self._validation("CheckRun", f"output.{name}", "missing_field")
            run["output"].update(
                title=output["title"], summary=output["summary"], text=output.get("text")
            )
        if conclusion is not None:
            run.update(status="completed", conclusion=conclusion, completed_at=_iso(time.time()))
        elif status is not None:
            run["status"] = status

    # --- GitHub App installations ----------------------------------------------------------------

    @route("POST", r"/app/installations/(?P<installation>[0-9]+)/access_tokens")
    def create_installation_token(self, request: ServiceRequest) -> Reply:
        installation = int(request.params["installation"])
        if installation not in self.installations:
            raise Refusal(self._error(404, "Not Found"))
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
        expires = time.time() + self.installation_token_lifetime_s
        with self._lock:
            self.installation_tokens[token] = (installation, expires)
        return Reply(
            201,
            json={
                "token": token,
                "expires_at": _iso(expires),
                "permissions": {
                    "checks": "write",
                    "issues": "write",
                    "metadata": "read",
                    "pull_requests": "write",
                },
                "repository_selection": "selected",
            },
        )

    @route("GET", r"/installation/repositories")
    def installation_repositories(self, request: ServiceRequest) -> Reply:
        kind, installation = self._caller(request)
        if kind != "installation" or installation is None:
            raise Refusal(
                self._error(
                    403,
                    "You must authenticate with an installation access token in order to list "
                    "repositories for an installation.",
                )
            )
        with self._lock:
            names = self.installations[installation].repositories
            repos = [self.repos[name] for name in names]
        return self._page(
            request,
            repos,
            f"{API}/installation/repositories",
            {"total_count": len(repos), "repository_selection": "selected"},
            "repositories",
        )

    # --- the sender side: webhooks ---------------------------------------------------------------

    def delivery(
        self, event: str, payload: Mapping[str, Any], secret: str | bytes
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a delivery of ``event``, as GitHub sends it to a repository
        webhook with ``secret``."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        key = secret.encode() if isinstance(secret, str) else secret
        repo = payload.get("repository") or {}
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT_AGENT,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(repo.get("id", 0)),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        }
        return body, headers

    def send(self, url: str, event: str, payload: Mapping[str, Any], secret: str | bytes) -> Sent:
        """POST a signed delivery to ``url`` (a Plugport webhook endpoint)."""
        body, headers = self.delivery(event, payload, secret)
        return send(url, body, headers)

    def pull_request_payload(
        self, action: str, repo: str, number: int, *, sender: str | None = None
    ) -> dict[str, Any]:
        """A ``pull_request`` event for a stored pull request: ``opened``, ``closed`` (merged
        when :meth:`merge_pull` merged it), ``synchronize`` (with ``before``/``after``),
        ``reopened``..."""
        with self._lock:
            pull = json.loads(json.dumps(self.pulls[(repo, number)]))
            payload: dict[str, Any] = {
                "action": action,
                "number": number,
                "pull_request": pull,
                "repository": self._event_repo(repo),
                "sender": _user(sender or pull["user"]["login"], self._next_id()),
            }
            if action == "synchronize":
                before = pull["head"]["sha"]
                after = self.add_commit(repo)
                self.pulls[(repo, number)]["head"]["sha"] = after
                pull["head"]["sha"] = after
                payload.update(before=before, after=after)
        return payload

    def push_payload(
        self,
        repo: str,
        *,
        ref: str | None = None,
        commits: int = 1,
        pusher: str = "ada",
        messages: list[str] | None = None,
    ) -> dict[str, Any]:
        """A ``push`` event of ``commits`` new commits to ``ref`` (default: the default
        branch)."""
        with self._lock:
            record = self._event_repo(repo)
            ref = ref or f"refs/heads/{record['default_branch']}"
            before = self.add_commit(repo)
            listed: list[dict[str, Any]] = []
            for index in range(commits):
                sha = self.add_commit(repo)
                given = messages or []
                message = given[index] if index < len(given) else f"Change {index + 1}"
                listed.append(
                    {
                        "id": sha,
                        "tree_id": _sha(f"tree:{sha}"),
                        "distinct": True,
                        "message": message,
                        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                        "url": f"https://github.com/{repo}/commit/{sha}",
                        "author": {
                            "name": pusher,
                            "email": f"{pusher}@example.com",
                            "username": pusher,
                        },
                        "committer": {
                            "name": pusher,
                            "email": f"{pusher}@example.com",
                            "username": pusher,
                        },
                        "added": [],
                        "removed": [],
                        "modified": ["README.md"],
                    }
                )
            after = listed[-1]["id"] if listed else before
        return {
            "ref": ref,
            "before": before,
            "after": after,
            "repository": record,
            "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
            "sender": _user(pusher, self._next_id()),
            "created": False,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"https://github.com/{repo}/compare/{before[:12]}...{after[:12]}",
            "commits": listed,
            "head_commit": listed[-1] if listed else None,
        }

    def _event_repo(self, repo: str) -> dict[str, Any]:
        record = dict(self.repos[repo])
        record.update(
            pushed_at=int(time.time()),
            clone_url=f"https://github.com/{repo}.git",
            master_branch=record["default_branch"],
        )
        return record


_MESSAGES = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    404: "Not Found",
    429: SECONDARY_MESSAGE,
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
    504: "Server Error",
}
_DETAIL_ONLY = frozenset(
    {
        "merged",
        "mergeable",
        "merged_by",
        "comments",
        "commits",
        "additions",
        "deletions",
        "changed_files",
    }
)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
