"""The decisions about a secret that need no I/O: which plugin and secret names and values
are acceptable, what the ciphertext is bound to, how a fingerprint is made, and whether an
installed plugin declares the credential being set.

The rule it protects: nothing here ever puts a value into a message; errors name the plugin,
the secret, the limit and the fix."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from plugport._manifest_fields import _IDENT_RE, check_plugin_name
from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._secret_source import HOST_SCOPE

__all__ = [
    "MAX_VALUE_BYTES",
    "associated_data",
    "check_declared",
    "check_names",
    "check_value",
    "fingerprint",
    "fingerprint_key",
]

MAX_VALUE_BYTES = 64 * 1024

_DERIVED = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*\.client_(?:id|secret)$"  # an oauth2 credential's client, set by
    # the operator; and the tokens the host's OAuth2 broker keeps (never set by hand):
    r"|^oauth2:[A-Za-z_][A-Za-z0-9_]*(?::[a-z0-9][a-z0-9._@-]{0,63})?$"
)
"""Secret names derived from a credential's name (see :mod:`._oauth2_rules`)."""


def check_names(plugin: str, name: str) -> None:
    """``plugin`` is a plugin's name, or :data:`HOST_SCOPE` for the host's own secrets."""
    try:
        if plugin != HOST_SCOPE:
            check_plugin_name(plugin)
    except ValueError as exc:
        raise InvalidInputError(f"plugin: {exc}") from None
    if not (_IDENT_RE.match(name) or _DERIVED.match(name)):
        raise InvalidInputError(
            f"secret name {name!r}: use the [credentials.NAME] name of the plugin's manifest "
            "(letters, digits and '_', not first a digit), or for an oauth2 credential "
            "NAME.client_id / NAME.client_secret"
        )


def check_value(plugin: str, name: str, value: bytes) -> None:
    if not value:
        raise InvalidInputError(f"secret {plugin}/{name}: the value is empty; give a value")
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidInputError(
            f"secret {plugin}/{name}: the value is {len(value)} bytes, over the limit of "
            f"{MAX_VALUE_BYTES} bytes (64 KiB)"
        )


def check_declared(plugin: str, name: str, declared: Iterable[str]) -> None:
    """An installed plugin's secrets are the ones its manifest names: its credentials and the
    secrets its webhooks verify with."""
    names = sorted(declared)
    if name not in names:
        raise InvalidInputError(
            f"{plugin} declares no credential {name!r} (its [credentials] tables and "
            f"[webhooks] secrets: {', '.join(names) or 'none'}); set one of those"
        )


def associated_data(plugin: str, name: str) -> bytes:
    """What a ciphertext is bound to: a row copied to another plugin or name fails to decrypt."""
    return b"plugport-secret\x00" + plugin.encode() + b"\x00" + name.encode()


def fingerprint_key(master_key: bytes) -> bytes:
    """A key for fingerprints only, derived from the master key (so a fingerprint is no
    plain hash of the value, which would give away a short one)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"plugport secret fingerprint"
    ).derive(master_key)


def fingerprint(key: bytes, value: bytes) -> str:
    return hmac.new(key, value, hashlib.sha256).hexdigest()[:12]
