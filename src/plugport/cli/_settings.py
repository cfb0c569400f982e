"""Settings objects built from command-line options (and their ``PLUGPORT_*`` variables): a
value out of range is an error naming the setting, not a traceback."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from plugport.errors import InvalidInputError

__all__ = ["settings_from"]

T = TypeVar("T")


def settings_from(cls: type[T], label: str, **given: Any) -> T:
    """``cls(**given)`` without the options left unset (so the environment and defaults apply)."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"{label}: {problems}") from None
