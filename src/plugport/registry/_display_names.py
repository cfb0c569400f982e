"""Who wrote a rating, as the public sees it: a display name the person chose, else a
pseudonym derived from the identity. Rule: an identity (often an e-mail address) is never
shown in public; every public page, API answer and export names a rating's author through
:func:`shown_name`, and a display name is accepted only through :func:`check_display_name`.

Pure decisions: the caller passes the secret and what is already taken."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from plugport._identity import check_identity
from plugport.errors import InvalidInputError

__all__ = [
    "FIELD",
    "MAX_DISPLAY_NAME_CHARS",
    "MIN_DISPLAY_NAME_CHARS",
    "check_display_name",
    "display_key",
    "pseudonym",
    "shown_name",
]

FIELD = "display_name"
MIN_DISPLAY_NAME_CHARS = 2
MAX_DISPLAY_NAME_CHARS = 40
PSEUDONYM_PREFIX = "user-"
_PSEUDONYM_HEX = 8
_PSEUDONYM_RE = re.compile(r"user-?[0-9a-f]{4,}")
_RESERVED = frozenset(
    {"admin", "administrator", "moderator", "plugport", "registry", "reviewer", "root", "staff",
     "support", "system", "marketplace", "anonymous"}
)  # fmt: skip
"""Names (as :func:`display_key` spells them) that would look like the registry speaking."""


def _refuse(message: str) -> InvalidInputError:
    error = InvalidInputError(f"{FIELD}: {message}")
    error.field = FIELD  # type: ignore[attr-defined]  # the API's error details name it
    return error


def display_key(name: str) -> str:
    """How two names are told apart: case, spaces and punctuation do not count, so
    ``Ada L.`` and ``ada-l`` are one name."""
    return re.sub(r"[\W_]+", "", name.casefold())


def check_display_name(
    value: object, *, taken: Iterable[str] = (), reserved: Iterable[str] = ()
) -> str:
    """``value`` as it will be shown, or :class:`InvalidInputError` naming ``display_name``:
    2 to 40 characters, no control or invisible character, no e-mail address (nothing with
    an ``@``), nothing that reads as the registry (``admin``…) or as a pseudonym, nothing in
    ``reserved`` (namespaces and their owners, as :func:`display_key` spells them) and no name
    someone else has (``taken``, keys too)."""
    if not isinstance(value, str):
        raise _refuse(f"a string, not {type(value).__name__}")
    if not value.strip() or len(value) > 4 * MAX_DISPLAY_NAME_CHARS:
        raise _refuse(f"{MIN_DISPLAY_NAME_CHARS} to {MAX_DISPLAY_NAME_CHARS} characters")
    try:
        name = check_identity(value.strip(), field=FIELD)
    except InvalidInputError as exc:
        raise _refuse(str(exc).removeprefix(f"{FIELD}: ")) from None
    name = " ".join(name.split())  # one space between words: no look-alike spacing
    if not MIN_DISPLAY_NAME_CHARS <= len(name) <= MAX_DISPLAY_NAME_CHARS:
        raise _refuse(f"{MIN_DISPLAY_NAME_CHARS} to {MAX_DISPLAY_NAME_CHARS} characters")
    if "@" in name or "\uff20" in name:
        raise _refuse("must not be an e-mail address (no '@'): it is shown in public")
    key = display_key(name)
    if not key:
        raise _refuse("needs at least one letter or digit")
    if key in _RESERVED or key.startswith("admin") or key.endswith("admin"):
        raise _refuse(f"{name!r} reads as the registry's own staff; choose another name")
    if _PSEUDONYM_RE.fullmatch(name.casefold()):
        raise _refuse(f"{name!r} reads as another user's pseudonym; choose another name")
    if key in set(reserved):
        raise _refuse(f"{name!r} is a namespace or its owner's name; choose another name")
    if key in set(taken):
        raise _refuse(f"{name!r} is already someone else's display name")
    return name


def pseudonym(identity: str, secret: bytes) -> str:
    """A stable, neutral name for an identity with no display name (``user-3f9a0c12``): a
    keyed hash, so knowing an e-mail address does not let anyone confirm it wrote a rating."""
    digest = hmac.new(secret, identity.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX]


def shown_name(identity: str, display_name: str | None, secret: bytes) -> str:
    """What the public sees for ``identity``: its display name, else its pseudonym."""
    return display_name or pseudonym(identity, secret)
