"""The pure decisions of task processing: whether a payload or a result matches its type's
schema (and which field does not), which idempotency key a task has, when a failed attempt is
tried again, and what a JSON pointer points at. Data in, data out: the host's queue, the
testing kit's fake and the workflows all decide with these, so a test of one is a test of all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from plugport.errors import InvalidInputError, TaskValidationError
from plugport.manifest import TaskSpec

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "check_document",
    "encode_document",
    "idempotency_key_for",
    "next_attempt",
    "resolve_pointer",
    "retry_delay_s",
]

MAX_PAYLOAD_BYTES = 1024 * 1024
"""The largest payload or result a task may carry, encoded as JSON."""


def encode_document(
    task_type: str, part: str, value: Any, *, limit: int = MAX_PAYLOAD_BYTES
) -> str:
    """``value`` as compact JSON text, or a :class:`TaskValidationError` naming the limit."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskValidationError(task_type, part, "", f"not JSON: {exc}") from None
    size = len(text.encode())
    if size > limit:
        raise TaskValidationError(task_type, part, "", f"{size} bytes; at most {limit}")
    return text


def check_document(task_type: str, part: str, schema: Mapping[str, Any], value: Any) -> None:
    """Raise :class:`TaskValidationError` for the first place ``value`` breaks ``schema``
    (the deepest, most specific error jsonschema finds), naming the field as a JSON pointer."""
    encode_document(task_type, part, value)
    if not schema:
        return
    import jsonschema  # ~0.1 s to import: only hosts that run tasks pay it

    validator = jsonschema.Draft202012Validator(dict(schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return
    field = "".join(f"/{_escape(str(p))}" for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            field = f"{field}/{_escape(missing[0])}"
            raise TaskValidationError(task_type, part, field, "is required and missing")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            raise TaskValidationError(
                task_type, part, f"{field}/{_escape(extra[0])}", "is not an allowed field"
            )
    raise TaskValidationError(task_type, part, field, error.message)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at RFC 6901 ``pointer`` in ``document`` (``""``: the whole document), or a
    ``KeyError`` naming the first token that is not there."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise KeyError(f"{pointer!r} is not a JSON pointer (it starts with '/')")
    value = document
    walked = ""
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        walked += "/" + raw
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            raise KeyError(f"nothing at {walked!r}")
    return value


def idempotency_key_for(
    task_type: str, spec: TaskSpec, payload: Any, given: str | None
) -> str | None:
    """The task's idempotency key: the one the submitter gave, else the payload's value at
    the type's ``idempotency-key`` pointer, else ``None`` (every submit is a new task)."""
    if given is not None:
        if not isinstance(given, str) or not 0 < len(given) <= 200:
            raise InvalidInputError(
                f"task {task_type}: idempotency_key must be text of 1-200 characters"
            )
        return given
    if spec.idempotency_key is None:
        return None
    try:
        value = resolve_pointer(payload, spec.idempotency_key)
    except KeyError as exc:
        raise TaskValidationError(
            task_type,
            "payload",
            spec.idempotency_key,
            f"is the type's idempotency-key and is missing ({exc.args[0]})",
        ) from None
    if isinstance(value, dict | list) or value is None:
        raise TaskValidationError(
            task_type,
            "payload",
            spec.idempotency_key,
            "is the type's idempotency-key and must be a string, number or boolean",
        )
    return json.dumps(value) if not isinstance(value, str) else value


def retry_delay_s(
    attempt: int, *, base_s: float = 1.0, cap_s: float = 3600.0, random: Callable[[], float]
) -> float:
    """The wait after failed attempt ``attempt`` (1 = the first): exponential, capped, with
    "equal jitter" (half fixed, half random) so retries of a burst spread out without any
    coming back at once."""
    ceiling: float = min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + random() * ceiling / 2


def next_attempt(
    attempts: int,
    now: float,
    *,
    max_attempts: int,
    base_s: float,
    cap_s: float,
    random: Callable[[], float],
    retryable: bool = True,
) -> tuple[Literal["retry", "dead"], float]:
    """``("retry", at)`` after failed attempt number ``attempts``, or ``("dead", now)`` once
    ``max_attempts`` are used up or the failure is not ``retryable`` (a payload the schema
    refuses fails the same way every time)."""
    if not retryable or attempts >= max_attempts:
        return "dead", now
    return "retry", now + retry_delay_s(attempts, base_s=base_s, cap_s=cap_s, random=random)
