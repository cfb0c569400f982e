"""The one JSON rule for what plugins hand the host (stored values, event payloads):
strict JSON that decodes back to exactly what was sent, measured as compact UTF-8."""

from __future__ import annotations

import json
from typing import Any

from plugport.errors import InvalidInputError, ResourceLimitExceededError

__all__ = ["encode_json"]

_HINT = "send objects with string keys, arrays, strings, finite numbers, booleans and null"


def encode_json(
    value: Any, what: str, *, plugin: str = "", limit: int | None = None, limit_name: str = ""
) -> bytes:
    """``value`` as compact UTF-8 JSON. Not JSON → :class:`InvalidInputError` naming ``what``;
    over ``limit`` bytes → :class:`ResourceLimitExceededError` (``limit_name``) for ``plugin``.

    Refused beyond what ``json.dumps`` refuses: NaN and infinities, non-string object keys
    (``json`` would turn ``1`` into ``"1"`` and merge it with a real ``"1"``) and lone
    surrogates, so the other side always reads back what the host accepted."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} is not JSON ({exc}); {_HINT}") from None
    except RecursionError:
        raise InvalidInputError(f"{what} is not JSON (it is nested too deeply)") from None
    if problem := _non_string_key(value):
        raise InvalidInputError(f"{what} is not JSON ({problem}); {_HINT}")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not JSON (a string holds a lone surrogate: {exc.reason})"
        ) from None
    if limit is not None and len(encoded) > limit:
        raise ResourceLimitExceededError(
            plugin,
            limit_name,
            f"the {what} is {len(encoded)} bytes as JSON; at most {limit} are allowed",
        )
    return encoded


def _non_string_key(value: Any) -> str:
    # Iterative, and only run after json.dumps has ruled out cycles and excessive depth.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, nested in item.items():
                if not isinstance(key, str):
                    return f"object keys must be strings, got {type(key).__name__} {key!r}"
                pending.append(nested)
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return ""
