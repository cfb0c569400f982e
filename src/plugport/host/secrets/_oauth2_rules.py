"""The decisions of the host's OAuth2 broker, without I/O: what a stored token looks like, when
it must be refreshed, whether a callback's ``state`` may be used, which account is the default,
the PKCE challenge, and where the host may talk to a provider (the token and revocation
endpoints only through the same SSRF checks as a plugin's ``net.fetch``; the operator's browser
only to an https authorization page, or a plain http one on loopback or on a private target the
operator listed). The broker (:mod:`plugport.host.secrets.oauth2`) runs them at every
step; no token value ever reaches a message made here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx

from plugport._addresses import parse_address
from plugport._fetch_rules import FetchPolicy, parse_endpoint
from plugport.errors import InvalidInputError

__all__ = [
    "ACCOUNT_PATTERN",
    "DEFAULT_ACCOUNT",
    "PROVIDER_HEADERS",
    "REFRESH_MARGIN_S",
    "STATE_TTL_S",
    "AccountIndex",
    "Pending",
    "StateProblem",
    "TokenRecord",
    "authorize_url_problem",
    "check_account",
    "check_state",
    "client_secret_names",
    "code_challenge",
    "index_secret",
    "is_token_secret",
    "needs_refresh",
    "new_state",
    "new_verifier",
    "provider_policy",
    "token_from_response",
    "token_secret",
]

STATE_TTL_S = 600.0
"""How long an authorization may take, from the start page to the provider's callback."""
REFRESH_MARGIN_S = 60.0
"""An access token with less left than this is refreshed before it is used."""
DEFAULT_ACCOUNT = "default"
ACCOUNT_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_ACCOUNT = re.compile(ACCOUNT_PATTERN)


def check_account(account: str) -> str:
    """``account`` if it is a usable label (it becomes part of a secret name and a URL)."""
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise InvalidInputError(
            f"account {account!r} is not a label: 1-64 lowercase letters, digits, '.', '_', "
            "'@' or '-', starting with a letter or digit"
        )
    return account


def token_secret(credential: str, account: str) -> str:
    """The secret that holds one account's tokens (JSON, :class:`TokenRecord`)."""
    return f"oauth2:{credential}:{account}"


def index_secret(credential: str) -> str:
    """The secret that lists a credential's accounts and names the default one."""
    return f"oauth2:{credential}"


def is_token_secret(name: str) -> bool:
    """Whether ``name`` is one the broker keeps (tokens, the account index), not one the
    operator sets: shown as connected accounts, never as a secret to overwrite."""
    return name.startswith("oauth2:")


def client_secret_names(credential: str) -> tuple[str, str]:
    """The operator-set secrets with the OAuth2 client's id and secret for ``credential``."""
    return f"{credential}.client_id", f"{credential}.client_secret"


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    """One account's tokens as the host stores them (JSON in the secrets store)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    refresh_token: str | None = None
    expires_at: float | None = None
    """Epoch seconds; None when the provider did not say (then only a 401 refreshes it)."""
    scopes: tuple[str, ...] = ()
    obtained_at: float = 0.0

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, value: bytes) -> TokenRecord:
        try:
            data = json.loads(value)
            return cls(
                access_token=str(data["access_token"]),
                token_type=str(data.get("token_type") or "Bearer"),
                refresh_token=data.get("refresh_token"),
                expires_at=data.get("expires_at"),
                scopes=tuple(data.get("scopes") or ()),
                obtained_at=float(data.get("obtained_at") or 0.0),
            )
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(
                "the stored OAuth2 token is not readable; reconnect the account"
            ) from None

    def public(self, account: str, *, default: bool) -> dict[str, Any]:
        """What the API and CLI show: never a token."""
        return {
            "account": account,
            "default": default,
            "scopes": list(self.scopes),
            "expires_at": self.expires_at,
            "obtained_at": self.obtained_at,
            "refreshable": self.refresh_token is not None,
        }


def token_from_response(
    data: Mapping[str, Any],
    now: float,
    *,
    requested_scopes: Iterable[str] = (),
    previous: TokenRecord | None = None,
) -> TokenRecord:
    """A :class:`TokenRecord` from a token endpoint's answer (RFC 6749 section 5.1). A refresh
    answer without a new refresh token keeps the old one (section 6); one without ``scope``
    means the scopes asked for (section 5.1)."""
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise InvalidInputError("the provider's token answer has no access_token")
    expires_in = data.get("expires_in")
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = now + float(expires_in)
        except (TypeError, ValueError):
            raise InvalidInputError("the provider's expires_in is not a number") from None
    scope = data.get("scope")
    if isinstance(scope, str) and scope.strip():
        scopes = tuple(scope.split())
    elif previous is not None and not requested_scopes:
        scopes = previous.scopes
    else:
        scopes = tuple(requested_scopes)
    refresh = data.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous.refresh_token if previous is not None else None
    return TokenRecord(
        access_token=access,
        token_type=str(data.get("token_type") or "Bearer"),
        refresh_token=refresh,
        expires_at=expires_at,
        scopes=scopes,
        obtained_at=now,
    )


def needs_refresh(record: TokenRecord, now: float, margin_s: float = REFRESH_MARGIN_S) -> bool:
    """Refresh before use when less than ``margin_s`` is left (a request sent with a token
    about to expire may arrive with an expired one)."""
    return record.expires_at is not None and record.expires_at - now < margin_s


# --- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountIndex:
    """A credential's connected accounts; ``default`` is the one ``net.fetch`` uses."""

    accounts: tuple[str, ...] = ()
    default: str | None = None

    def with_account(self, account: str, *, make_default: bool = False) -> AccountIndex:
        accounts = tuple(sorted({*self.accounts, account}))
        default = account if make_default or self.default is None else self.default
        return AccountIndex(accounts, default)

    def without(self, account: str) -> AccountIndex:
        accounts = tuple(a for a in self.accounts if a != account)
        default = self.default if self.default != account else (accounts[0] if accounts else None)
        return AccountIndex(accounts, default)

    def to_bytes(self) -> bytes:
        return json.dumps({"accounts": list(self.accounts), "default": self.default}).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> AccountIndex:
        try:
            data = json.loads(value)
            return cls(tuple(data["accounts"]), data.get("default"))
        except (ValueError, KeyError, TypeError):
            return cls()


# --- authorization (code flow) ------------------------------------------------------------------


def new_state() -> str:
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    """A PKCE code verifier (RFC 7636 section 4.1: 43-128 unreserved characters)."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pending:
    """An authorization the host started: what the callback's ``state`` is bound to."""

    state: str
    workspace: str
    plugin: str
    credential: str
    account: str
    actor: str
    verifier: str = field(repr=False)
    created_at: float
    used_at: float | None = None

    def used(self, now: float) -> Pending:
        return replace(self, used_at=now)


@dataclass(frozen=True)
class StateProblem:
    """Why a callback's state is refused: ``reason`` is one of unknown, used, expired."""

    reason: str
    pending: Pending | None = None

    @property
    def message(self) -> str:
        return {
            "unknown": "this authorization link is not one the host started; start again "
            "from the installation page",
            "used": "this authorization was already completed; start again to connect "
            "another account",
            "expired": f"this authorization took longer than {int(STATE_TTL_S // 60)} "
            "minutes; start again",
        }[self.reason]


def check_state(
    pending: Pending | None, now: float, ttl_s: float = STATE_TTL_S
) -> StateProblem | None:
    """None when the callback may complete ``pending``; else why not. A state is good once,
    for ``ttl_s`` seconds after the start page made it."""
    if pending is None:
        return StateProblem("unknown")
    if pending.used_at is not None:
        return StateProblem("used", pending)
    if now - pending.created_at > ttl_s or now < pending.created_at:
        return StateProblem("expired", pending)
    return None


# --- reaching the provider -----------------------------------------------------------------------

PROVIDER_HEADERS = frozenset({"accept", "authorization", "content-type"})
"""What a token or revocation request sends: the client's authentication and the form."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL, the host lower case as the fetch rules
    compare it; None for anything else."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.raw_host:
        return None
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    return parsed.scheme, host, parsed.port or _DEFAULT_PORTS[parsed.scheme]


def provider_policy(
    url: str,
    *,
    local_endpoints: Iterable[str] = (),
    local_policy: str = "",
    timeout_ms: int = 10_000,
    max_response_bytes: int = 1024**2,
) -> FetchPolicy:
    """The fetch policy of one token or revocation request to ``url`` (from the plugin's
    manifest, so not trusted): a POST to that URL's own host and port, to public addresses
    only unless the operator listed the endpoint for the plugin (``local_endpoints``, from
    ``[private-targets]``; ``local_policy`` names where, for the refusal's hint), following no
    redirect (a redirect would carry the client's authentication elsewhere)."""
    found = _host_port(url)
    allowed = () if found is None else (f"{found[1]}:{found[2]}",)
    return FetchPolicy(
        allowed=allowed,
        methods=frozenset({"POST"}),
        max_response_bytes=max_response_bytes,
        timeout_ms=timeout_ms,
        max_redirects=0,
        allowed_request_headers=PROVIDER_HEADERS,
        allow_custom_x_headers=False,
        local_endpoints=tuple(local_endpoints),
        local_policy=local_policy,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return parse_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def authorize_url_problem(
    url: str, local_endpoints: Iterable[str] = (), *, role: str = "authorization"
) -> str | None:
    """Why the operator's browser may not be sent to the authorization page ``url`` (None: it
    may). The operator signs in there, so it is https; plain http only where nothing crosses a
    network (a loopback host: ``localhost``, ``127.0.0.0/8``, ``::1``) or where the operator
    said so (the ``host:port`` is one of the plugin's ``local_endpoints`` from
    ``[private-targets]``: an on-premises provider)."""
    found = _host_port(url)
    if found is None:
        return f"the {role} URL {url} is not an http(s) URL"
    scheme, host, port = found
    if scheme == "https" or _is_loopback(host):
        return None
    listed = set()
    for endpoint in local_endpoints:
        try:
            listed.add(parse_endpoint(endpoint))
        except ValueError:
            continue
    try:
        here = parse_endpoint(f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}")
    except ValueError:
        here = None
    if here is not None and here in listed:
        return None
    exposed = (
        "the operator would sign in to the provider unencrypted"
        if role == "authorization"
        else "codes, tokens and the client secret would cross the network unencrypted"
    )
    return (
        f"the {role} URL {url} is plain http: {exposed}. The plugin's manifest must use an "
        f"https {'authorize_url' if role == 'authorization' else 'token_url'}; "
        f"only an endpoint the operator lists under [private-targets] ({host}:{port}) or a "
        "loopback host may be plain http"
    )
