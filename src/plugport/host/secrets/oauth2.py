"""OAuth2 run by the host for a plugin's ``kind = "oauth2"`` credentials: the authorization-code
grant with PKCE and a single-use state, the client-credentials grant, refresh before expiry and
after a 401, several accounts per credential, and revocation (RFC 6749, 7636, 7009).

Tokens live in the host's secrets store as JSON under ``oauth2:<credential>:<account>``, with
an index ``oauth2:<credential>`` naming the accounts and the default one (what ``net.fetch``
uses). The OAuth2 client's id and secret are operator-set secrets ``<credential>.client_id``
and ``<credential>.client_secret``. :class:`OAuth2TokenSource` wraps the store so the runtime
asks it for a credential and gets a fresh access token; the plugin never sees one. The protocol
messages are authlib's (:mod:`authlib.oauth2.rfc6749`); every provider failure becomes a
:mod:`plugport.errors` type here, never carrying a token or a client secret.

The rule this module protects: the provider endpoints come from the plugin's manifest, so the
host's own requests to them are a plugin's requests. Each token and revocation request goes
through the runtime's SSRF-safe fetch (:class:`NetworkBroker`: the URL's host name only, every
address DNS gives checked and the connection pinned to one, no redirect followed), reaching a
private address only where the operator listed it for that plugin under ``[private-targets]``.
A refusal is audited and names the policy line that would allow it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from plugport import _sqlite
from plugport._fetch_rules import FetchResult
from plugport.errors import (
    AuthenticationError,
    InvalidInputError,
    NetworkFetchError,
    NotFoundError,
    PermissionDeniedError,
)
from plugport.host.secrets._oauth2_rules import (
    AccountIndex,
    Pending,
    StateProblem,
    TokenRecord,
    authorize_url_problem,
    check_account,
    check_state,
    client_secret_names,
    index_secret,
    needs_refresh,
    new_state,
    new_verifier,
    provider_policy,
    token_from_response,
    token_secret,
)
from plugport.manifest import Manifest, OAuth2Provider
from plugport.runtime.audit import AuditEvent, AuditLog
from plugport.runtime.capabilities._record import NetOptions
from plugport.runtime.capabilities._secret_source import SecretStore
from plugport.runtime.capabilities.network import NetworkBroker

__all__ = [
    "AuthorizationStates",
    "MemoryStates",
    "OAuth2Broker",
    "OAuth2TokenSource",
    "ProviderLookup",
    "ProviderReach",
    "SecretStore",
    "SqliteStates",
    "providers_of",
]

logger = logging.getLogger("plugport.audit")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KEEP_USED_STATES_S = 24 * 3600.0


ProviderLookup = Callable[[str, str], OAuth2Provider]
"""``(plugin, credential)`` -> the provider its installed manifest declares; raises
:class:`NotFoundError` for a plugin or credential that is not there."""


def providers_of(manifest: Manifest, credential: str) -> OAuth2Provider:
    """The provider of ``manifest``'s oauth2 credential ``credential``."""
    declared = manifest.credentials.get(credential)
    if declared is None or declared.oauth2 is None:
        oauth2 = sorted(n for n, c in manifest.credentials.items() if c.oauth2 is not None)
        raise NotFoundError(
            "oauth2 credential",
            f"{manifest.name}/{credential}",
            f"its manifest declares {', '.join(oauth2) or 'no oauth2 credential'}",
        )
    return declared.oauth2


@dataclass(frozen=True)
class ProviderReach:
    """How the broker reaches providers: as the plugin's own fetches do. ``net`` gives the
    host's resolver and transport when a request is made (tests swap them on the supervisor);
    ``private_targets`` are the operator's ``[private-targets]`` (plugin -> ``host:port``
    endpoints it may reach although they are private), ``private_targets_from`` where they are
    written (quoted by a refusal, and by the audit of a request that reaches one)."""

    net: Callable[[], NetOptions] = NetOptions
    private_targets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    private_targets_from: str = ""

    def local_endpoints(self, plugin: str) -> tuple[str, ...]:
        return tuple(self.private_targets.get(plugin, ()))


# --- pending authorizations ----------------------------------------------------------------------


class AuthorizationStates(Protocol):
    """Authorizations the host started, by state, until their callback (single use)."""

    def put(self, pending: Pending) -> None: ...

    def claim(self, state: str, now: float) -> tuple[Pending | None, StateProblem | None]:
        """The pending authorization for ``state``, marked used; or why it may not be used."""
        ...


class MemoryStates:
    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def put(self, pending: Pending) -> None:
        with self._lock:
            self._pending[pending.state] = pending

    def claim(self, state: str, now: float) -> tuple[Pending | None, StateProblem | None]:
        with self._lock:
            found = self._pending.get(state)
            problem = check_state(found, now)
            if found is not None and problem is None:
                found = self._pending[state] = found.used(now)
            return found, problem


_STATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS oauth2_states (
    state TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    plugin TEXT NOT NULL,
    credential TEXT NOT NULL,
    account TEXT NOT NULL,
    actor TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at REAL NOT NULL,
    used_at REAL
)
"""


class SqliteStates:
    """Pending authorizations in a SQLite file, so a callback after a restart still completes.
    Used states are kept a day (to tell "used" from "unknown"), then dropped."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self._db = _sqlite.connect(path)
        self._lock = threading.RLock()
        self._clock = clock
        with _sqlite.immediate(self._db, self._lock) as db:
            _sqlite.create_schema(db, _STATES_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, pending: Pending) -> None:
        with _sqlite.immediate(self._db, self._lock) as db:
            db.execute(
                "DELETE FROM oauth2_states WHERE created_at < ?",
                (self._clock() - _KEEP_USED_STATES_S,),
            )
            db.execute(
                "INSERT INTO oauth2_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    pending.state,
                    pending.workspace,
                    pending.plugin,
                    pending.credential,
                    pending.account,
                    pending.actor,
                    pending.verifier,
                    pending.created_at,
                ),
            )

    def claim(self, state: str, now: float) -> tuple[Pending | None, StateProblem | None]:
        with _sqlite.immediate(self._db, self._lock) as db:
            row = db.execute("SELECT * FROM oauth2_states WHERE state = ?", (state,)).fetchone()
            found = None if row is None else Pending(**dict(row))
            problem = check_state(found, now)
            if found is not None and problem is None:
                db.execute("UPDATE oauth2_states SET used_at = ? WHERE state = ?", (now, state))
                found = found.used(now)
            return found, problem

    def forget_workspace(self, workspace: str) -> None:
        with _sqlite.immediate(self._db, self._lock) as db:
            db.execute("DELETE FROM oauth2_states WHERE workspace = ?", (workspace,))


# --- the broker ----------------------------------------------------------------------------------


class OAuth2Broker:
    """Obtains, refreshes and revokes one host's OAuth2 tokens. ``providers`` finds a plugin's
    provider; ``reach`` is how providers are reached (:class:`ProviderReach`)."""

    def __init__(
        self,
        store: SecretStore,
        providers: ProviderLookup,
        *,
        states: AuthorizationStates | None = None,
        audit: AuditLog | None = None,
        workspace: str = "",
        clock: Callable[[], float] = time.time,
        reach: ProviderReach | None = None,
        timeout_s: float = 10.0,
        max_retry_after_s: float = 2.0,
    ) -> None:
        self.store = store
        self.providers = providers
        self.states: AuthorizationStates = states if states is not None else MemoryStates()
        self.audit = audit
        self.workspace = workspace
        self.clock = clock
        self.reach = reach if reach is not None else ProviderReach()
        self._ssl_context: ssl.SSLContext | None = None
        self._timeout_s = timeout_s
        self._max_retry_after_s = max_retry_after_s
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    # --- connecting ------------------------------------------------------------------------------

    def begin(
        self, plugin: str, credential: str, account: str, actor: str, redirect_uri: str
    ) -> tuple[str, Pending, OAuth2Provider]:
        """The provider URL to send the operator to, and the pending authorization (stored:
        its state is good once, for ten minutes)."""
        check_account(account)
        provider = self.providers(plugin, credential)
        if provider.grant != "authorization_code" or provider.authorize_url is None:
            raise InvalidInputError(
                f"credential {credential!r} of {plugin} uses the client_credentials grant: "
                f"connect it with `plugport oauth2 connect {plugin} {credential}`, no browser"
            )
        problem = authorize_url_problem(provider.authorize_url, self.reach.local_endpoints(plugin))
        if problem is not None:
            self._audit(plugin, "refuse", f"OAuth2 connect of {credential!r} refused: {problem}")
            raise PermissionDeniedError(plugin, "oauth2", problem, self._policy_fix(plugin))
        client_id, _ = self._client(plugin, credential)
        pending = Pending(
            new_state(),
            self.workspace,
            plugin,
            credential,
            account,
            actor,
            new_verifier(),
            self.clock(),
        )
        extra = {}
        if provider.pkce:
            extra = {
                "code_challenge": create_s256_code_challenge(pending.verifier),
                "code_challenge_method": "S256",
            }
        url = prepare_grant_uri(
            provider.authorize_url,
            client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(provider.scopes) or None,
            state=pending.state,
            **extra,
        )
        self.states.put(pending)
        return url, pending, provider

    async def complete(self, pending: Pending, code: str, redirect_uri: str) -> dict[str, Any]:
        """Exchange the callback's ``code`` for tokens and store them for the account."""
        provider = self.providers(pending.plugin, pending.credential)
        form: dict[str, Any] = {"code": code, "redirect_uri": redirect_uri}
        if provider.pkce:
            form["code_verifier"] = pending.verifier
        answer = await self._grant(
            pending.plugin, pending.credential, provider, "authorization_code", form
        )
        record = token_from_response(answer, self.clock(), requested_scopes=provider.scopes)
        return self._keep(
            pending.plugin, pending.credential, pending.account, record, pending.actor
        )

    async def connect_client(
        self, plugin: str, credential: str, account: str, actor: str
    ) -> dict[str, Any]:
        """Fetch a token with the client-credentials grant now and store it."""
        check_account(account)
        provider = self.providers(plugin, credential)
        if provider.grant != "client_credentials":
            raise InvalidInputError(
                f"credential {credential!r} of {plugin} uses the authorization_code grant: "
                "open the start URL in a browser to connect an account"
            )
        record = await self._client_token(plugin, credential, provider)
        return self._keep(plugin, credential, account, record, actor)

    def _keep(
        self, plugin: str, credential: str, account: str, record: TokenRecord, actor: str
    ) -> dict[str, Any]:
        index = self._index(plugin, credential).with_account(account)
        self.store.set(plugin, token_secret(credential, account), record.to_bytes())
        self.store.set(plugin, index_secret(credential), index.to_bytes())
        scopes = " ".join(record.scopes) or "no scopes"
        self._audit(
            plugin,
            "credential",
            f"{actor} connected account {account!r} of oauth2 credential {credential!r} ({scopes})",
        )
        return record.public(account, default=index.default == account)

    # --- reading ---------------------------------------------------------------------------------

    def accounts(self, plugin: str, credential: str) -> list[dict[str, Any]]:
        """Every connected account with its scopes and expiry (no token)."""
        self.providers(plugin, credential)
        index = self._index(plugin, credential)
        found = []
        for account in index.accounts:
            record = self._record(plugin, credential, account)
            if record is not None:
                found.append(record.public(account, default=index.default == account))
        return found

    def stored_token(self, plugin: str, credential: str) -> bytes | None:
        """The default account's access token as stored (no refresh); None when ``credential``
        has no connected account."""
        index = self._index(plugin, credential)
        if index.default is None:
            return None
        record = self._record(plugin, credential, index.default)
        return None if record is None else record.access_token.encode("utf-8")

    async def token(
        self,
        plugin: str,
        credential: str,
        account: str | None = None,
        *,
        refused: str | None = None,
    ) -> str:
        """A usable access token for ``account`` (default: the default account), refreshed
        first when it is about to expire or is the token a target just ``refused`` (401); two
        fetches refused at once refresh it once."""
        provider = self.providers(plugin, credential)
        if account is None:
            account = self._index(plugin, credential).default
        if account is None:
            raise NotFoundError(
                "oauth2 account",
                f"{plugin}/{credential}",
                f"the operator connects one with: plugport oauth2 connect {plugin} {credential}",
            )
        lock = self._locks.setdefault((plugin, credential, account), asyncio.Lock())
        async with lock:
            record = self._record(plugin, credential, account)
            if record is None:
                raise NotFoundError(
                    "oauth2 account",
                    f"{plugin}/{credential}/{account}",
                    f"the operator connects it with: plugport oauth2 connect {plugin} "
                    f"{credential} --account {account}",
                )
            if record.access_token == refused or needs_refresh(record, self.clock()):
                record = await self._refresh(plugin, credential, account, provider, record)
            return record.access_token

    async def _refresh(
        self,
        plugin: str,
        credential: str,
        account: str,
        provider: OAuth2Provider,
        record: TokenRecord,
    ) -> TokenRecord:
        if provider.grant == "client_credentials":
            fresh = await self._client_token(plugin, credential, provider)
        elif record.refresh_token is None:
            raise self._reconnect(plugin, credential, account, "it has no refresh token")
        else:
            try:
                answer = await self._grant(
                    plugin,
                    credential,
                    provider,
                    "refresh_token",
                    {"refresh_token": record.refresh_token},
                )
            except AuthenticationError as exc:
                raise self._reconnect(plugin, credential, account, str(exc)) from None
            fresh = token_from_response(answer, self.clock(), previous=record)
        self.store.set(plugin, token_secret(credential, account), fresh.to_bytes())
        return fresh

    def _reconnect(
        self, plugin: str, credential: str, account: str, why: str
    ) -> AuthenticationError:
        message = (
            f"the OAuth2 token of account {account!r} of credential {credential!r} can no "
            f"longer be refreshed ({why}); the operator reconnects it with: plugport oauth2 "
            f"connect {plugin} {credential} --account {account}"
        )
        self._audit(plugin, "refuse", message)
        return AuthenticationError(message)

    # --- revoking --------------------------------------------------------------------------------

    async def revoke(
        self, plugin: str, credential: str, account: str, actor: str
    ) -> dict[str, Any]:
        """Revoke the account's tokens at the provider (when it declares ``revoke_url``), then
        forget them here, whatever the provider answered."""
        provider = self.providers(plugin, credential)
        record = self._record(plugin, credential, account)
        if record is None:
            raise NotFoundError(
                "oauth2 account",
                f"{plugin}/{credential}/{account}",
                f"connected accounts: {', '.join(self._index(plugin, credential).accounts)}",
            )
        revoked_at_provider = None
        if provider.revoke_url is not None:
            revoked_at_provider = True
            for value, hint in (
                (record.refresh_token, "refresh_token"),
                (record.access_token, "access_token"),
            ):
                if value is None:
                    continue
                try:
                    await self._post(
                        plugin,
                        credential,
                        provider.revoke_url,
                        {"token": value, "token_type_hint": hint},
                    )
                except (NetworkFetchError, AuthenticationError, PermissionDeniedError) as exc:
                    revoked_at_provider = False
                    self._audit(plugin, "refuse", f"revocation at the provider failed: {exc}")
        index = self._index(plugin, credential).without(account)
        self.store.delete(plugin, token_secret(credential, account))
        if index.accounts:
            self.store.set(plugin, index_secret(credential), index.to_bytes())
        else:
            self.store.delete(plugin, index_secret(credential))
        self._audit(
            plugin,
            "credential",
            f"{actor} disconnected account {account!r} of oauth2 credential {credential!r}",
        )
        return {"account": account, "revoked_at_provider": revoked_at_provider}

    # --- the provider ----------------------------------------------------------------------------

    def _client(self, plugin: str, credential: str) -> tuple[str, str | None]:
        id_name, secret_name = client_secret_names(credential)
        try:
            client_id = self.store.get(plugin, id_name).decode("utf-8")
        except NotFoundError:
            raise NotFoundError(
                "secret",
                f"{plugin}/{id_name}",
                f"the operator registers the app at the provider and sets its client id and "
                f"secret with: plugport secret set {plugin} {id_name} (and {secret_name})",
            ) from None
        try:
            client_secret: str | None = self.store.get(plugin, secret_name).decode("utf-8")
        except NotFoundError:
            client_secret = None  # a public client (PKCE only)
        return client_id, client_secret

    async def _client_token(
        self, plugin: str, credential: str, provider: OAuth2Provider
    ) -> TokenRecord:
        form = {"scope": " ".join(provider.scopes)} if provider.scopes else {}
        answer = await self._grant(plugin, credential, provider, "client_credentials", form)
        return token_from_response(answer, self.clock(), requested_scopes=provider.scopes)

    async def _grant(
        self,
        plugin: str,
        credential: str,
        provider: OAuth2Provider,
        grant: str,
        form: dict[str, Any],
    ) -> dict[str, Any]:
        body = prepare_token_request(grant, **form)
        return await self._post(plugin, credential, provider.token_url, body)

    async def _post(
        self, plugin: str, credential: str, url: str, body: str | dict[str, str]
    ) -> dict[str, Any]:
        """POST to a provider endpoint with the client's authentication; the JSON answer, or
        our error: :class:`AuthenticationError` when the provider refused the grant or the
        client, :class:`NetworkFetchError` when it could not answer."""
        client_id, client_secret = self._client(plugin, credential)
        content = str(httpx.QueryParams(body)) if isinstance(body, dict) else body
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        }
        if client_secret is None:
            content = f"{content}&{httpx.QueryParams({'client_id': client_id})}"
        else:
            # RFC 6749 2.3.1: each part form-encoded, then basic authentication.
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        problem = authorize_url_problem(url, self.reach.local_endpoints(plugin), role="token")
        if problem is not None:  # the same rule as the authorization page's
            self._audit(plugin, "refuse", f"OAuth2 request refused: {problem}")
            raise PermissionDeniedError(plugin, "oauth2", problem, self._policy_fix(plugin))
        network = self._network(plugin, url)
        for attempt in range(2):
            response = await self._send(network, url, content, headers)
            if response.status != 429:
                break
            wait = _retry_after(response)
            if attempt or wait is None or wait > self._max_retry_after_s:
                after = f"; it asks to retry after {wait:g} s" if wait is not None else ""
                raise NetworkFetchError(
                    plugin, url, f"the OAuth2 provider is rate limiting (HTTP 429){after}"
                )
            await asyncio.sleep(wait)
        return _answer(plugin, url, response)

    def _network(self, plugin: str, url: str) -> NetworkBroker:
        """The SSRF-safe fetch for one provider request of ``plugin`` (see the module)."""
        options = self.reach.net()
        policy = provider_policy(
            url,
            local_endpoints=self.reach.local_endpoints(plugin),
            local_policy=self.reach.private_targets_from,
            timeout_ms=round(self._timeout_s * 1000),
            max_response_bytes=min(options.max_response_bytes, 1024**2),
        )
        if url.startswith("https:") and self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()  # costly: made once per broker
        return NetworkBroker(
            plugin,
            policy,
            options.resolver,
            options.transport,
            ssl_context=self._ssl_context,
        )

    async def _send(
        self, network: NetworkBroker, url: str, content: str, headers: dict[str, str]
    ) -> FetchResult:
        """One POST; a refusal or failure as our error naming the provider URL, never what
        was sent (the form holds codes and tokens, the headers the client secret)."""
        plugin = network.plugin
        try:
            result = await network.fetch(
                url, method="POST", headers=headers, body=content.encode("utf-8")
            )
        except PermissionDeniedError as exc:
            reason = f"the OAuth2 provider endpoint {url} is refused: {exc.reason}"
            self._audit(plugin, "refuse", reason)
            raise PermissionDeniedError(
                plugin, "oauth2", reason, exc.fix or self._policy_fix(plugin)
            ) from None
        except NetworkFetchError as exc:
            raise NetworkFetchError(
                plugin, url, f"the OAuth2 provider did not answer: {exc.reason}"
            ) from None
        where = self.reach.private_targets_from or "the operator's private targets"
        for endpoint in result.private_targets:
            self._audit(
                plugin,
                "private-target",
                f"reached private target {endpoint} (OAuth2 provider {url}, HTTP "
                f"{result.status}), allowed by {where}",
            )
        return result

    def _policy_fix(self, plugin: str) -> str:
        if not self.reach.private_targets_from:
            return ""
        return (
            f"a provider on a private address is allowed only by the operator, for {plugin}, "
            f"under {self.reach.private_targets_from}"
        )

    def _index(self, plugin: str, credential: str) -> AccountIndex:
        try:
            return AccountIndex.from_bytes(self.store.get(plugin, index_secret(credential)))
        except NotFoundError:
            return AccountIndex()

    def _record(self, plugin: str, credential: str, account: str) -> TokenRecord | None:
        try:
            value = self.store.get(plugin, token_secret(credential, account))
        except NotFoundError:
            return None
        return TokenRecord.from_bytes(value)

    def _audit(self, plugin: str, kind: str, reason: str) -> None:
        if self.audit is not None:
            self.audit.record(AuditEvent(plugin, kind, reason, "oauth2"))
        else:
            logger.info("%s: %s", plugin, reason)


def _retry_after(response: FetchResult) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _answer(plugin: str, url: str, response: FetchResult) -> dict[str, Any]:
    """The provider's JSON; its RFC 6749 error code (never its free text, which could echo
    what was sent) in our error."""
    try:
        data = json.loads(response.body)
    except ValueError:
        data = None
    if response.status == 200 and isinstance(data, dict):
        return data
    code = data.get("error") if isinstance(data, dict) else None
    named = code if isinstance(code, str) and _ERROR_CODE.match(code) else None
    if named in ("invalid_grant", "invalid_client", "unauthorized_client") or (
        response.status == 401
    ):
        raise AuthenticationError(
            f"the OAuth2 provider refused: {named or 'HTTP 401'} (HTTP {response.status})"
        )
    what = named or "no RFC 6749 error"
    raise NetworkFetchError(
        plugin, url, f"the OAuth2 provider answered HTTP {response.status} ({what})"
    )


class OAuth2TokenSource:
    """The runtime's secret source: the host's store, with oauth2 credentials read as their
    default account's access token. ``current`` and ``refreshed`` are what ``net.fetch`` asks
    for an oauth2 credential, before sending and after a 401."""

    def __init__(self, store: SecretStore, broker: OAuth2Broker) -> None:
        self.store = store
        self.broker = broker

    def set(self, plugin: str, name: str, value: bytes) -> None:
        self.store.set(plugin, name, value)

    def get(self, plugin: str, name: str) -> bytes:
        token = self.broker.stored_token(plugin, name)
        return token if token is not None else self.store.get(plugin, name)

    def delete(self, plugin: str, name: str) -> bool:
        return self.store.delete(plugin, name)

    def purge(self, plugin: str) -> int:
        return self.store.purge(plugin)

    async def current(self, plugin: str, name: str) -> bytes:
        return (await self.broker.token(plugin, name)).encode("utf-8")

    async def refreshed(self, plugin: str, name: str, refused: bytes) -> bytes:
        token = await self.broker.token(plugin, name, refused=refused.decode("utf-8", "replace"))
        return token.encode("utf-8")
