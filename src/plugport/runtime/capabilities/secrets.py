"""``secrets.*`` and the credentials ``net.fetch`` injects: a plugin names a credential, the host
uses its value; the value never crosses the channel unless ``secrets.reveal`` grants it.

Where values come from is the host's :class:`SecretSource` (its encrypted store; in tests and
``plugport dev``, :class:`MemorySecrets`). The decisions about a value are here and pure:
:func:`inject` (what a request carries for a credential) and :func:`redact` (an answer that
echoes a credential back loses it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from plugport._manifest_fields import match_credential_target
from plugport._permissions import RULES
from plugport.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from plugport.runtime.audit import AuditEvent
from plugport.runtime.capabilities._record import Calls, Capability, Grants, Services
from plugport.runtime.capabilities._secret_source import MemorySecrets, SecretSource
from plugport.sdk._api import SecretsProxy

__all__ = [
    "RECORD",
    "REDACTED",
    "CredentialUse",
    "MemorySecrets",
    "SecretSource",
    "SecretsCalls",
    "credential_use",
    "inject",
    "redact",
    "secret_value",
    "url_credential_target",
]

REDACTED = b"[redacted]"
SIGNING = {"hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}
PRIVATE_KEY_ALGS = ("rs256", "es256", "ed25519")
MAX_SIGNED_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CredentialUse:
    """How the host uses one credential for a plugin: its kind and where it goes (the
    consented targets)."""

    name: str
    kind: str
    targets: tuple[str, ...] = ()
    header: str | None = None
    param: str | None = None

    def admits(self, url: str) -> bool:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return any(
            match_credential_target(t, parts.hostname or "", port, parts.path or "/")
            for t in self.targets
        )


def credential_use(grants: Grants, name: str) -> CredentialUse:
    """How ``name`` is used for the plugin ``grants`` is for: its kind from the manifest, its
    targets from what was consented."""
    kind, header, param = grants.credential_kinds.get(name, ("", None, None))
    targets = tuple(grants.permissions.credentials.get(name, ()))
    return CredentialUse(name, kind, targets, header, param)


def secret_value(source: SecretSource, plugin: str, name: str) -> bytes:
    """The value, or a :class:`NotFoundError` that tells the operator how to set it."""
    try:
        return source.get(plugin, name)
    except NotFoundError:
        raise NotFoundError(
            "secret",
            f"{plugin}/{name}",
            f"the operator sets it with: plugport secret set {plugin} {name}",
        ) from None


def inject(
    use: CredentialUse, value: bytes, url: str, headers: list[tuple[str, str]]
) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """The URL and headers a request carries for ``use``, and every form of the value that an
    answer might echo (for :func:`redact`). ``headers`` must not already carry the header the
    credential sets: the plugin does not get to choose it."""
    text = value.decode("utf-8", errors="strict")
    forms = [value]
    if use.kind == "url":
        # The request already goes to the value (see url_credential_target); nothing to add.
        # The secret part of such a URL is its path and query: an answer may echo either.
        parts = urlsplit(text)
        secret_part = parts.path + (f"?{parts.query}" if parts.query else "")
        return url, headers, [f for f in (value, secret_part.encode()) if len(f) >= 4]
    if use.kind in ("bearer", "oauth2"):
        name, carried = "authorization", f"Bearer {text}"
    elif use.kind == "basic":
        token = base64.b64encode(value).decode("ascii")
        name, carried = "authorization", f"Basic {token}"
        forms += [token.encode("ascii"), *value.split(b":", 1)[1:]]
    elif use.kind == "header" and use.header:
        name, carried = use.header.lower(), text
    elif use.kind == "query" and use.param:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        if any(k == use.param for k, _ in query):
            raise InvalidInputError(
                f"the URL already has the query parameter {use.param!r} that credential "
                f"{use.name!r} sets"
            )
        query.append((use.param, text))
        return urlunsplit(parts._replace(query=urlencode(query))), headers, forms
    else:
        raise InvalidInputError(f"credential {use.name!r} of kind {use.kind!r} is not sent")
    if any(n.lower() == name for n, _ in headers):
        raise InvalidInputError(
            f"the request already has the {name!r} header that credential {use.name!r} sets; "
            "leave it out"
        )
    return url, [*headers, (name, carried)], [f for f in forms if len(f) >= 4]


def url_credential_target(use: CredentialUse, value: bytes, url: str) -> str:
    """Where a fetch with a credential of kind ``url`` goes: the value itself, an ``https``
    (or, for the operator's local endpoints, ``http``) URL that the plugin does not pass."""
    if url:
        raise InvalidInputError(
            f"credential {use.name!r} is of kind 'url': it is the whole URL, so leave url out "
            f"(fetch(credential={use.name!r}, ...))"
        )
    try:
        text = value.decode("utf-8", errors="strict").strip()
    except UnicodeDecodeError:
        raise InvalidInputError(f"secret {use.name!r} is not text") from None
    if urlsplit(text).scheme not in ("https", "http"):
        raise InvalidInputError(
            f"secret {use.name!r} must be an https URL (the operator sets it with plugport "
            "secret set)"
        )
    return text


def sign_with_private_key(name: str, pem: bytes, message: bytes, alg: str) -> str:
    """The base64url (unpadded) JWS signature of ``message`` with the PEM key ``pem``: RS256
    (RSASSA-PKCS1-v1_5), ES256 (P-256, the raw r||s form JWS uses) or Ed25519."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"secret {name!r} is not an unencrypted PEM private key (the operator sets it "
            "with plugport secret set --from-file)"
        ) from None
    if alg == "rs256" and isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "es256" and isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name != "secp256r1":
            raise InvalidInputError(f"secret {name!r}: es256 needs a P-256 key")
        r, s = utils.decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "ed25519" and isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    else:
        raise InvalidInputError(f"secret {name!r} is not a key for {alg}")
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def redact(data: bytes, forms: Iterable[bytes]) -> bytes:
    """``data`` with every occurrence of a credential's forms replaced by ``[redacted]``."""
    for form in sorted(forms, key=len, reverse=True):
        if form:
            data = data.replace(form, REDACTED)
    return data


class SecretsCalls(Calls):
    """``api.secrets.*`` for one plugin: sign with an HMAC key, or (only where
    ``secrets.reveal`` grants it) read a value."""

    async def sign(self, name: str, data: bytes | str, alg: str = "hmac-sha256") -> str:
        private = credential_use(self.grants, name).kind == "private-key"
        algs = PRIVATE_KEY_ALGS if private else tuple(SIGNING)
        if alg not in algs:
            kind = "private-key" if private else "hmac"
            raise InvalidInputError(
                f"alg must be one of {', '.join(algs)} for a {kind} credential, not {alg!r}"
            )
        message = data.encode("utf-8") if isinstance(data, str) else data
        if not isinstance(message, bytes):
            raise InvalidInputError("data must be bytes or text")
        if len(message) > MAX_SIGNED_BYTES:
            raise InvalidInputError(f"data is larger than {MAX_SIGNED_BYTES} bytes")
        key = secret_value(self.services.secrets, self.plugin, name)
        if private:
            return sign_with_private_key(name, key, message, alg)
        return hmac.new(key, message, SIGNING[alg]).hexdigest()

    async def reveal(self, name: str) -> str:
        value = secret_value(self.services.secrets, self.plugin, name)
        self.services.audit.record(
            AuditEvent(
                self.plugin, "credential", f"revealed secret {name!r} to the plugin", "secrets"
            )
        )
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise PermissionDeniedError(
                self.plugin, "secrets.reveal", f"secret {name!r} is not text"
            ) from None


def _purge(services: Services, plugin: str) -> None:
    services.secrets.purge(plugin)


RECORD = Capability("secrets", RULES["secrets"], SecretsCalls, SecretsProxy, _purge)
