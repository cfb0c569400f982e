"""The decisions of the host's OAuth2 broker, without I/O: what a stored token looks like, when
it must be refreshed, whether a callback's ``state`` may be used, which account is the default,
and the PKCE challenge. The broker (:mod:`plugport.host.secrets.oauth2`) runs them at every
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

from plugport.errors import InvalidInputError

__all__ = [
    "ACCOUNT_PATTERN",
    "DEFAULT_ACCOUNT",
    "REFRESH_MARGIN_S",
    "STATE_TTL_S",
    "AccountIndex",
    "Pending",
    "StateProblem",
    "TokenRecord",
    "check_account",
    "check_state",
    "client_secret_names",
    "code_challenge",
    "index_secret",
    "needs_refresh",
    "new_state",
    "new_verifier",
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
