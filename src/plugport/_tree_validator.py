"""The validator :func:`plugport.components.check_tree` runs on every tile, page and action
answer: jsonschema's Draft 2020-12 validator with two shortcuts that give the same errors, in
the same order, for every instance (``tests/test_tree_validator.py`` compares them), at a
fraction of the cost on the trees plugins really send.

- The published schema picks a component's own branch with an ``allOf`` of one ``if`` (``type``
  is this name) / ``then`` per component type, so that an error names that component's field.
  For an object, every ``if`` but the one naming its ``type`` is false and has no ``else``, so
  its branch yields nothing: only the matching one is evaluated.
- ``items`` and ``additionalProperties`` whose schema is a bare type test (table cells, chart
  values and labels) are checked in a loop with the validator's own type checker; only when a
  value fails does the keyword run as jsonschema runs it, to produce its errors.

The rule this protects: the published schema stays the one standard JSON Schema that plugins,
the docs and every other validator read; this module changes how fast it is checked, never
what it accepts or what the error says."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import jsonschema
from jsonschema.protocols import Validator

__all__ = ["fast_validator"]

T = TypeVar("T")

_BASE = jsonschema.Draft202012Validator
_ALL_OF = _BASE.VALIDATORS["allOf"]
_ITEMS = _BASE.VALIDATORS["items"]
_ADDITIONAL = _BASE.VALIDATORS["additionalProperties"]
_SIMPLE_KEYS = {"type", "minLength", "maxLength", "maxProperties", "additionalProperties"}


def _names_one_type(entry: Any) -> str | None:
    """``NAME`` when ``entry`` is exactly ``{"if": {"properties": {"type": {"const": NAME}},
    "required": ["type"]}, "then": ...}``."""
    condition = (
        entry.get("if") if isinstance(entry, Mapping) and set(entry) == {"if", "then"} else None
    )
    if not isinstance(condition, Mapping) or set(condition) != {"properties", "required"}:
        return None
    properties = condition["properties"]
    if condition["required"] != ["type"] or not isinstance(properties, Mapping):
        return None
    test = properties.get("type") if set(properties) == {"type"} else None
    if not isinstance(test, Mapping) or set(test) != {"const"}:
        return None
    return test["const"] if isinstance(test["const"], str) else None


def _branches(all_of: Any) -> dict[str, int] | None:
    """``type`` name -> index when every entry of ``all_of`` names one type, each its own."""
    found: dict[str, int] = {}
    for index, entry in enumerate(all_of):
        name = _names_one_type(entry)
        if name is None or name in found:
            return None
        found[name] = index
    return found


_KEPT: dict[tuple[str, int], tuple[Any, Any]] = {}
"""(what, ``id(schema part)``) -> (the part, kept alive so the id stays its own; what was
made of it)."""


def _kept(what: str, part: Any, make: Callable[[Any], T]) -> T:
    kept = _KEPT.get((what, id(part)))
    if kept is None or kept[0] is not part:
        kept = (part, make(part))
        if len(_KEPT) < 4096:  # the schemas are module constants; a bound all the same
            _KEPT[what, id(part)] = kept
    made: T = kept[1]
    return made


def _all_of(validator: Any, all_of: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    # ``validator`` is jsonschema's concrete class: its ``descend`` is not in the protocol
    branches = _kept("allOf", all_of, _branches)
    if branches is None or not validator.is_type(instance, "object"):
        # a non-object makes every ``if`` true (properties/required ignore it): all branches
        yield from _ALL_OF(validator, all_of, instance, schema)
        return
    name = instance.get("type")
    # jsonschema's ``const`` against a string is plain ``==``: only that same string matches
    index = branches.get(name) if isinstance(name, str) else None
    if index is not None:
        yield from validator.descend(instance, all_of[index], schema_path=index)


Check = Callable[[Validator, Any], bool]
_NAMES = ("array", "boolean", "integer", "null", "number", "object", "string")
_KINDS: dict[type, frozenset[str]] = {
    str: frozenset({"string"}),
    bool: frozenset({"boolean"}),
    int: frozenset({"integer", "number"}),
    float: frozenset({"number"}),  # unless it is whole: then asked of the validator
    type(None): frozenset({"null"}),
    dict: frozenset({"object"}),
    list: frozenset({"array"}),
}
"""The JSON types of a value of exactly these Python types, as Draft 2020-12's type checker
answers (a test holds them to it); anything else is asked of the validator."""


def _check(subschema: Any) -> Check | None:
    """What ``subschema`` decides, as one function, when it only uses ``type``, ``minLength``,
    ``maxLength``, ``maxProperties`` and an ``additionalProperties`` of the same kind (and no
    ``properties``): each as jsonschema's keyword decides it, without a validator per value."""
    if not isinstance(subschema, Mapping) or not set(subschema) <= _SIMPLE_KEYS:
        return None
    names = subschema.get("type", [])
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(t, str) for t in names):
        return None
    sizes = [subschema.get(k) for k in ("minLength", "maxLength", "maxProperties")]
    if any(n is not None and (isinstance(n, bool) or not isinstance(n, int)) for n in sizes):
        return None
    least, most, most_properties = sizes
    inner = None
    if "additionalProperties" in subschema:
        inner = _check(subschema["additionalProperties"])
        if inner is None:
            return None

    def check(validator: Validator, value: Any) -> bool:
        known = _KINDS.get(type(value))
        if known is None or (type(value) is float and value.is_integer()):
            known = frozenset(n for n in _NAMES if validator.is_type(value, n))
        kinds = known
        if "type" in subschema and kinds.isdisjoint(names):
            return False
        if "string" in kinds:
            if (least is not None and len(value) < least) or (
                most is not None and len(value) > most
            ):
                return False
        elif "object" in kinds:
            if most_properties is not None and len(value) > most_properties:
                return False
            if inner is not None and not all(inner(validator, v) for v in value.values()):
                return False
        return True

    return check


def _items(
    validator: Validator, items: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    check = _kept("check", items, _check)
    if (
        check is not None
        and "prefixItems" not in schema
        and validator.is_type(instance, "array")
        and all(check(validator, value) for value in instance)
    ):
        return
    yield from _ITEMS(validator, items, instance, schema)


def _additional(
    validator: Validator, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    check = _kept("check", additional, _check)
    if (
        check is not None
        and "properties" not in schema
        and "patternProperties" not in schema
        and validator.is_type(instance, "object")
        and all(check(validator, value) for value in instance.values())
    ):
        return
    yield from _ADDITIONAL(validator, additional, instance, schema)


_FastValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    _BASE,
    {"allOf": _all_of, "items": _items, "additionalProperties": _additional},
)


def fast_validator(schema: Mapping[str, Any]) -> Validator:
    """A Draft 2020-12 validator of ``schema`` with the shortcuts above."""
    validator: Validator = _FastValidator(schema)
    return validator
