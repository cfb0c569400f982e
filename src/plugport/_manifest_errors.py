"""Turning pydantic's validation errors into :class:`~plugport.errors.Problem` lists written for
plugin authors: a dotted field path, the value found, and for unknown keys the valid ones."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from plugport.errors import Problem

__all__ = ["problems_from"]


def problems_from(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Every pydantic error as a :class:`Problem`: field path, value found, what is allowed."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _format_loc(loc)
        value = error.get("input")
        kind = error["type"]
        if kind == "extra_forbidden":
            message = _unknown_key_message(root, loc)
            value = None
        elif kind == "missing":
            message = "required, but missing"
        elif kind == "manifest_consistency":
            problems.extend(
                Problem(_join(path, p.path), p.message, p.value) for p in error["ctx"]["problems"]
            )
            continue
        elif kind == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]} (got {_show(value)})"
        problems.append(Problem(path, message, value))
    return problems


_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _join(base: str, field: str) -> str:
    return f"{base}.{field}" if base else field


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        elif _PLAIN_KEY_RE.match(str(part)):
            text = _join(text, str(part))
        else:
            text += f"[{str(part)!r}]"
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key_message(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    allowed = _keys_at(root, loc[:-1])
    if not allowed:
        return f"unknown key {key!r}"
    where = "permission" if loc[:-1] == ("permissions",) else "key"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {where} {key!r}{hint}; valid {where}s here: {', '.join(sorted(allowed))}"


def _keys_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by following ``loc`` from ``root``."""
    current: Any = root
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap_model(current)
    if current is None:
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _step(annotation: Any, part: Any) -> Any:
    model = _unwrap_model(annotation)
    if model is not None:
        by_key = {info.alias or name: info for name, info in model.model_fields.items()}
        field = by_key.get(str(part))
        return field.annotation if field else None
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and isinstance(part, int):
        return args[0]
    if typing.get_origin(annotation) is dict:
        return args[1]
    return None
