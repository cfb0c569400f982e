"""A small OAuth2 identity provider on 127.0.0.1, for testing what the host's OAuth2 broker does
for a plugin: the authorization-code grant with PKCE, refresh with rotation, client credentials
and revocation (RFC 6749, 7636, 7009), and a protected ``/api/me`` to fetch with the token.

    with FakeIdP(user="alice", token_lifetime_s=3600) as idp:
        idp.authorize_url, idp.token_url, idp.revoke_url, idp.api_url

It runs on the standard library only (a thread serving HTTP), approves every authorization for
its ``user`` unless ``deny`` is set, and lets a test expire or revoke tokens, or make the token
endpoint answer 429, whenever it wants.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from plugport.testing._local_server import serve_locally, stop_serving

__all__ = ["FakeIdP", "IssuedToken"]


@dataclass
class IssuedToken:
    """An access or refresh token the fake issued."""

    value: str
    kind: str  # "access" or "refresh"
    user: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float | None
    revoked: bool = False
    family: str = field(default_factory=lambda: secrets.token_hex(8))
    """Every token from one authorization (its refreshes too): revoking a refresh token revokes
    the family's access tokens."""


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    user: str
    expires_at: float
    used: bool = False


class FakeIdP:
    """The provider. ``token_lifetime_s`` is every access token's lifetime (set it low to make
    the host refresh before each use); ``rotate_refresh_tokens`` issues a new refresh token on
    each refresh and invalidates the old one."""

    def __init__(
        self,
        *,
        client_id: str = "plugport-test-client",
        client_secret: str = "fake-idp-client-secret-0123456789",  # noqa: S107 - a fake's
        user: str = "alice",
        token_lifetime_s: float = 3600.0,
        rotate_refresh_tokens: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.token_lifetime_s = token_lifetime_s
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.deny = False
        """``/authorize`` answers ``error=access_denied`` (the user said no)."""
        self.tokens: dict[str, IssuedToken] = {}
        self.grants: list[str] = []
        """The grant_type of every token request, in order (429s included)."""
        self.api_calls = 0
        self._codes: dict[str, _Code] = {}
        self._throttled = 0
        self._retry_after_s = 1
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> FakeIdP:
        idp = self

        class Handler(_Handler):
            provider = idp

        self._server = serve_locally(Handler)
        return self

    def stop(self) -> None:
        stop_serving(self._server)
        self._server = None

    def __enter__(self) -> FakeIdP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake identity provider is not running: call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``: what a test grants the plugin as a local endpoint."""
        return self.url.removeprefix("http://")

    authorize_url = property(lambda self: f"{self.url}/authorize")
    token_url = property(lambda self: f"{self.url}/token")
    revoke_url = property(lambda self: f"{self.url}/revoke")
    api_url = property(lambda self: f"{self.url}/api/me")

    # --- what tests change -----------------------------------------------------------------------

    def throttle(self, requests: int, retry_after_s: int = 1) -> None:
        """The next ``requests`` token requests are answered 429 with ``Retry-After``."""
        with self._lock:
            self._throttled, self._retry_after_s = requests, retry_after_s

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired now (the host does not know)."""
        with self._lock:
            for token in self.tokens.values():
                if token.kind == "access":
                    token.expires_at = time.time() - 1

    def revoke_all(self, kind: str | None = None) -> None:
        """Revoke every token (of ``kind``): as a user who disconnects the app at the provider."""
        with self._lock:
            for token in self.tokens.values():
                if kind is None or token.kind == kind:
                    token.revoked = True

    def live(self, kind: str) -> list[IssuedToken]:
        now = time.time()
        with self._lock:
            return [t for t in self.tokens.values() if t.kind == kind and _valid(t, now)]

    # --- the endpoints ---------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect.startswith("http"):
            return 400, {}, {"error": "invalid_request", "error_description": "bad client"}
        state = query.get("state")
        extra = {"state": state} if state is not None else {}
        if self.deny:
            params = {"error": "access_denied", "error_description": "the user said no"}
            return 302, {"Location": _with(redirect, {**params, **extra})}, None
        if query.get("response_type") != "code":
            params = {"error": "unsupported_response_type"}
            return 302, {"Location": _with(redirect, {**params, **extra})}, None
        method = query.get("code_challenge_method")
        if query.get("code_challenge") and method != "S256":
            params = {"error": "invalid_request", "error_description": "only S256"}
            return 302, {"Location": _with(redirect, {**params, **extra})}, None
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                self.client_id,
                redirect,
                tuple(query.get("scope", "").split()),
                query.get("code_challenge"),
                method,
                self.user,
                time.time() + 600,
            )
        return 302, {"Location": _with(redirect, {"code": code, **extra})}, None

    def _token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, str], Any]:
        grant = form.get("grant_type", "")
        with self._lock:
            self.grants.append(grant)
            if self._throttled > 0:
                self._throttled -= 1
                retry = {"Retry-After": str(self._retry_after_s)}
                return 429, retry, {"error": "slow_down", "error_description": "too many"}
        if not self._client_ok(form, authorization):
            headers = {"WWW-Authenticate": 'Basic realm="fake-idp"'}
            return 401, headers, {"error": "invalid_client"}
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        if grant == "client_credentials":
            scopes = tuple(form.get("scope", "").split())
            return 200, {}, self._issue(self.client_id, scopes, refresh=False)
        return 400, {}, {"error": "unsupported_grant_type"}

    def _client_ok(self, form: dict[str, str], authorization: str) -> bool:
        given = (form.get("client_id"), form.get("client_secret"))
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            given = (user, password)
        return given == (self.client_id, self.client_secret)

    def _code_grant(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None or code.used or code.expires_at < time.time():
                return 400, {}, _invalid_grant("unknown, used or expired code")
            code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, {}, _invalid_grant("redirect_uri does not match")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                return 400, {}, _invalid_grant("PKCE verification failed")
        return 200, {}, self._issue(code.user, code.scopes, refresh=True)

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            old = self.tokens.get(form.get("refresh_token", ""))
            if old is None or old.kind != "refresh" or not _valid(old, time.time()):
                return 400, {}, _invalid_grant("refresh token is invalid or revoked")
            if self.rotate_refresh_tokens:
                old.revoked = True
        body = self._issue(old.user, old.scopes, refresh=self.rotate_refresh_tokens, family=old)
        return 200, {}, body

    def _issue(
        self,
        user: str,
        scopes: tuple[str, ...],
        *,
        refresh: bool,
        family: IssuedToken | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        access = IssuedToken(
            "at-" + secrets.token_urlsafe(24),
            "access",
            user,
            self.client_id,
            scopes,
            now + self.token_lifetime_s,
        )
        if family is not None:
            access.family = family.family
        body: dict[str, Any] = {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime_s,
            "scope": " ".join(scopes),
        }
        with self._lock:
            self.tokens[access.value] = access
            if refresh:
                token = IssuedToken(
                    "rt-" + secrets.token_urlsafe(24), "refresh", user, self.client_id, scopes, None
                )
                token.family = access.family
                self.tokens[token.value] = token
                body["refresh_token"] = token.value
        return body

    def _revoke(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, str], Any]:
        if not self._client_ok(form, authorization):
            return 401, {"WWW-Authenticate": 'Basic realm="fake-idp"'}, {"error": "invalid_client"}
        with self._lock:
            token = self.tokens.get(form.get("token", ""))
            if token is not None:  # RFC 7009 2.2: an unknown token is answered 200 too
                token.revoked = True
                if token.kind == "refresh":
                    for other in self.tokens.values():
                        if other.family == token.family:
                            other.revoked = True
        return 200, {}, {}

    def _me(self, authorization: str) -> tuple[int, dict[str, str], Any]:
        value = authorization[7:] if authorization.lower().startswith("bearer ") else ""
        with self._lock:
            self.api_calls += 1
            token = self.tokens.get(value)
            ok = token is not None and token.kind == "access" and _valid(token, time.time())
        if not ok or token is None:
            challenge = 'Bearer error="invalid_token"'
            return 401, {"WWW-Authenticate": challenge}, {"error": "invalid_token"}
        return 200, {}, {"user": token.user, "scopes": list(token.scopes)}


def _valid(token: IssuedToken, now: float) -> bool:
    return not token.revoked and (token.expires_at is None or token.expires_at > now)


def _invalid_grant(description: str) -> dict[str, str]:
    return {"error": "invalid_grant", "error_description": description}


def _with(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}{urlencode(params)}"


class _Handler(BaseHTTPRequestHandler):
    provider: FakeIdP

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output stays readable."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/authorize":
            self._answer(*self.provider._authorize(dict(parse_qsl(parts.query))))
        elif parts.path == "/api/me":
            self._answer(*self.provider._me(self.headers.get("Authorization", "")))
        else:
            self._answer(404, {}, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
        authorization = self.headers.get("Authorization", "")
        path = urlsplit(self.path).path
        if path == "/token":
            self._answer(*self.provider._token(form, authorization))
        elif path == "/revoke":
            self._answer(*self.provider._revoke(form, authorization))
        else:
            self._answer(404, {}, {"error": "not_found"})

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
