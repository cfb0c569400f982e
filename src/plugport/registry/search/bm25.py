"""FTS5's ``bm25()``, computed here for the few plugins of a page whose text is in hand.

Asked for the scores of a page, FTS5 first counts, for each phrase of the query, every row of
the index that holds it (the IDF), then walks the query's matches to reach the page's rows:
two passes over the matches of a common word, 5-15 ms at 100,000 plugins, for 20 numbers.
The count depends only on the index, so it is kept between searches; the rest of the formula
needs each row's own text, token counts and the index's totals, all cheap to read. Worked
here, the score is the very number FTS5 returns (same operations, same order, in doubles).

Only rows whose indexed text and query terms are ASCII are scored here: for those, FTS5's
``unicode61`` tokenizer is plain (a token is a run of ASCII letters and digits, folded to
lower case). Anything else, and any row whose tokens do not add up to the counts FTS5 stored
for it, is left to FTS5. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["K1", "B", "Totals", "frequencies", "score", "totals", "varints"]

K1 = 1.2
B = 0.75
"""The constants of SQLite's ``fts5Bm25Function``."""

_TOKEN = re.compile(r"[0-9A-Za-z]+")


class Totals(NamedTuple):
    """The whole index's row count and token count (its averages record)."""

    rows: int
    tokens: int


def varints(blob: bytes) -> list[int]:
    """SQLite's varints (big-endian, 7 bits a byte, the ninth byte whole), as FTS5 stores its
    averages record and each row's column sizes."""
    values: list[int] = []
    at = 0
    while at < len(blob):
        value = 0
        for index in range(9):
            byte = blob[at]
            at += 1
            if index == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


def totals(averages: bytes) -> Totals:
    """The averages record (id 1 of ``<table>_data``): the row count, then each column's
    token count."""
    values = varints(averages)
    return Totals(values[0], sum(values[1:]))


def frequencies(
    columns: Sequence[str | None],
    sizes: Sequence[int],
    terms: Sequence[str],
    weights: Sequence[float],
) -> list[float] | None:
    """Each term's weighted count of tokens it is a prefix of, over a row's ``columns`` (its
    indexed text, in the table's column order), as FTS5 sums them; None when this row cannot
    be worked here: text that is not ASCII, or tokens that differ in number from the row's
    stored ``sizes``."""
    counts = [0.0] * len(terms)
    for index, text in enumerate(columns):
        if not text:
            if sizes[index]:
                return None
            continue
        if not text.isascii():
            return None
        tokens = _TOKEN.findall(text.lower())
        if len(tokens) != sizes[index]:
            return None
        weight = weights[index] if index < len(weights) else 1.0
        for token in tokens:
            for at, term in enumerate(terms):
                if token.startswith(term):
                    counts[at] += weight
    return counts


def score(frequency: Sequence[float], size: int, hits: Sequence[int], whole: Totals) -> float:
    """bm25 of a row whose text holds each phrase ``frequency`` times (weighted), ``size``
    tokens long, in an index of ``whole`` where ``hits`` rows hold each phrase; higher is
    better (FTS5's ``-bm25()``)."""
    average = whole.tokens / whole.rows
    total = 0.0
    for found, rows in zip(frequency, hits, strict=True):
        idf = math.log((0.5 + whole.rows - rows) / (0.5 + rows))
        if idf <= 0.0:
            idf = 1e-6
        total += idf * ((found * (K1 + 1.0)) / (found + K1 * (1 - B + B * size / average)))
    return total
