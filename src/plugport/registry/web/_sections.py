"""The home page's sections, chosen so that no plugin shows twice: each section, in the page's
order, takes its first candidates that an earlier section did not. Pure: candidates in, cards
out, so the rule is tested without a registry."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["pick_sections"]

T = TypeVar("T")


def pick_sections(
    candidates: Sequence[tuple[str, Sequence[T]]],
    size: int,
    key: Callable[[T], Hashable],
) -> dict[str, list[T]]:
    """Up to ``size`` items per section, in the order the sections are given, none repeated
    (by ``key``) within or across sections; a section whose candidates run out stays short."""
    shown: set[Hashable] = set()
    picked: dict[str, list[T]] = {}
    for section, items in candidates:
        chosen: list[T] = []
        for item in items:
            if len(chosen) == size:
                break
            identity = key(item)
            if identity not in shown:
                shown.add(identity)
                chosen.append(item)
        picked[section] = chosen
    return picked
