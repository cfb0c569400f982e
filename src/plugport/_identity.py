"""Identities (who a token speaks for, who owns or belongs to a namespace) are compared as
strings, so each one has a single spelling: NFC-normalised, with no control, format (bidi
override, isolate or mark, zero-width), surrogate, private-use or line-separator character,
and no surrounding space. Every way an identity enters goes through :func:`check_identity`,
so ``ada`` and a look-alike that renders as ``ada`` can never be two different people."""

from __future__ import annotations

import unicodedata

from plugport.errors import InvalidInputError

__all__ = ["MAX_IDENTITY_CHARS", "check_identity"]

MAX_IDENTITY_CHARS = 200
# Cc: controls, NUL among them; Cf: format (U+200E/F, U+202A-E, U+2066-9, U+061C, zero
# widths); Cs, Co: surrogates, private use; Zl, Zp: line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def check_identity(value: object, *, field: str = "identity") -> str:
    """``value`` in its one spelling, or an :class:`InvalidInputError` naming ``field``."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field}: a string, not {type(value).__name__}")
    normal = unicodedata.normalize("NFC", value)
    bad = next((c for c in normal if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise InvalidInputError(
            f"{field}: contains U+{ord(bad):04X} ({unicodedata.name(bad, 'a control character')}"
            "); control, bidi and other invisible characters are not allowed in an identity"
        )
    if not normal or len(normal) > MAX_IDENTITY_CHARS:
        raise InvalidInputError(f"{field}: 1 to {MAX_IDENTITY_CHARS} characters")
    if normal != normal.strip():
        raise InvalidInputError(f"{field}: no space at the start or the end")
    return normal
