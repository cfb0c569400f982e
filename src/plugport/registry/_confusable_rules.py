"""Names that imitate a verified namespace or a popular plugin, decided without I/O.

The rule this module protects: a new namespace or plugin whose name a reader could take for a
verified namespace's or a popular plugin's is held for a human to review, never published on
its own. Two names are taken for each other when their *skeletons* are equal (Unicode NFKC,
case folded, common homoglyphs read as the letters they imitate: the Cyrillic letters that
look like ``a e o p c x``, the Greek omicron, ``0`` for ``o``, ``1`` for ``l``, ``rn`` for
``m``; ``-`` and ``_`` dropped), or
when the skeletons are a small edit apart (:func:`max_distance`: none for names under four
characters, where one edit makes another ordinary word, one up to nine, two beyond).
Resembling costs a review, not a refusal, so the thresholds lean towards holding.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Protected", "Resemblance", "edit_distance", "max_distance", "resemblances", "skeleton"]

# One character that imitates another, by its Unicode name (so no look-alike hides in this
# source). NFKC already folds full-width letters, ligatures and mathematical alphabets; these
# are the lookalikes it keeps apart.
_LOOKALIKES = {
    "CYRILLIC SMALL LETTER A": "a",
    "CYRILLIC SMALL LETTER VE": "b",
    "CYRILLIC SMALL LETTER IE": "e",
    "CYRILLIC SMALL LETTER IO": "e",
    "CYRILLIC SMALL LETTER O": "o",
    "CYRILLIC SMALL LETTER ER": "p",
    "CYRILLIC SMALL LETTER ES": "c",
    "CYRILLIC SMALL LETTER U": "y",
    "CYRILLIC SMALL LETTER HA": "x",
    "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I": "i",
    "CYRILLIC SMALL LETTER YI": "i",
    "CYRILLIC SMALL LETTER JE": "j",
    "CYRILLIC SMALL LETTER DZE": "s",
    "CYRILLIC SMALL LETTER SHHA": "h",
    "CYRILLIC SMALL LETTER KOMI DE": "d",
    "CYRILLIC SMALL LETTER QA": "q",
    "CYRILLIC SMALL LETTER WE": "w",
    "CYRILLIC SMALL LETTER KA": "k",
    "CYRILLIC SMALL LETTER EM": "m",
    "CYRILLIC SMALL LETTER TE": "t",
    "CYRILLIC SMALL LETTER PE": "n",
    "CYRILLIC SMALL LETTER GHE": "r",
    "CYRILLIC SMALL LETTER SOFT SIGN": "b",
    "CYRILLIC SMALL LETTER EL": "n",
    "GREEK SMALL LETTER ALPHA": "a",
    "GREEK SMALL LETTER BETA": "b",
    "GREEK SMALL LETTER GAMMA": "y",
    "GREEK SMALL LETTER EPSILON": "e",
    "GREEK SMALL LETTER ETA": "n",
    "GREEK SMALL LETTER IOTA": "i",
    "GREEK SMALL LETTER KAPPA": "k",
    "GREEK SMALL LETTER NU": "v",
    "GREEK SMALL LETTER OMICRON": "o",
    "GREEK SMALL LETTER RHO": "p",
    "GREEK SMALL LETTER TAU": "t",
    "GREEK SMALL LETTER UPSILON": "u",
    "GREEK SMALL LETTER CHI": "x",
    "GREEK SMALL LETTER OMEGA": "w",
    "GREEK LUNATE SIGMA SYMBOL": "c",
    "LATIN SMALL LETTER DOTLESS I": "i",
    "LATIN SMALL LETTER SCRIPT G": "g",
    "LATIN SMALL LETTER ALPHA": "a",
    "SCRIPT SMALL L": "l",
    "LATIN LETTER DENTAL CLICK": "l",
    "VERTICAL LINE": "l",
    "EXCLAMATION MARK": "l",
    "DIGIT ZERO": "o",
    "DIGIT ONE": "l",
}
_SKIPPED = ("HYPHEN-MINUS", "LOW LINE", "SPACE")
"""Separators a reader passes over: ``north-wind`` reads as ``northwind``."""
_HOMOGLYPHS: dict[int, str | None] = {
    ord(unicodedata.lookup(name)): letter for name, letter in _LOOKALIKES.items()
} | {ord(unicodedata.lookup(name)): None for name in _SKIPPED}
_SEQUENCES = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def skeleton(name: str) -> str:
    """What a reader sees in ``name``: equal skeletons are names a reader takes for each
    other."""
    text = unicodedata.normalize("NFKC", name).casefold()
    # Combining marks (a dotless i with a dot added, an o with a ring) read as the bare letter.
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = text.translate(_HOMOGLYPHS)
    for sequence, letter in _SEQUENCES:
        text = text.replace(sequence, letter)
    return text


def max_distance(length: int) -> int:
    """How many edits still make a name of ``length`` characters look like another."""
    if length < 4:
        return 0
    return 1 if length <= 9 else 2


def edit_distance(a: str, b: str, *, limit: int | None = None) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours: a
    swap is one typo). With ``limit``, any answer above it is returned as ``limit + 1``."""
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if limit is not None and min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@dataclass(frozen=True)
class Protected:
    """A name others must not imitate, and why: ``the verified namespace 'northwind'
    (northwind.com)``, ``the popular plugin 'northwind.slack'``."""

    name: str
    why: str


@dataclass(frozen=True)
class Resemblance:
    candidate: str
    protected: Protected
    distance: int
    """0: the same once homoglyphs are read as what they imitate."""

    @property
    def message(self) -> str:
        how = (
            "reads the same once look-alike characters are read as the letters they imitate"
            if self.distance == 0
            else f"is {self.distance} edit{'s' if self.distance > 1 else ''} away from it"
        )
        return (
            f"{self.candidate!r} resembles {self.protected.why}: it {how}; a reviewer checks "
            "that it is not an impersonation"
        )


def resemblances(candidate: str, protected: Iterable[Protected]) -> list[Resemblance]:
    """Every protected name ``candidate`` could be taken for, closest first (a name is never
    taken for itself)."""
    mine = skeleton(candidate)
    found: list[Resemblance] = []
    for other in protected:
        if other.name == candidate:
            continue
        theirs = skeleton(other.name)
        limit = max_distance(min(len(theirs), len(mine)))
        distance = edit_distance(mine, theirs, limit=limit)
        if distance <= limit:
            found.append(Resemblance(candidate, other, distance))
    return sorted(found, key=lambda r: (r.distance, r.protected.name))
