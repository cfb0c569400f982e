"""Typo tolerance: the words of the index closest to a word that finds (almost) nothing, by
trigram similarity as PostgreSQL's ``pg_trgm`` computes it (shared trigrams over all trigrams
of both, each word padded with two spaces before and one after), or one edit away (a letter
dropped, added or changed, or two neighbours swapped: 'emial' shares too few trigrams with
'email' to be found by them), and the corrected queries they make. Everything here but
:class:`KeptVocabularies` is pure; SQLite looks words up in a :class:`Vocabulary` (an
in-memory trigram table over FTS5's own word list), PostgreSQL in ``search_words`` through
``pg_trgm``'s index and its primary key (migration 0023)."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeGuard
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

__all__ = [
    "COMMON_PLUGINS",
    "FEW_RESULTS",
    "MIN_TERM",
    "SIMILARITY",
    "SUGGESTIONS",
    "VOCABULARY_STALE_S",
    "KeptVocabularies",
    "Similar",
    "Vocabulary",
    "corrections",
    "edits",
    "similarity",
    "trigrams",
]

SIMILARITY = 0.3
"""The least similarity of a suggestion: ``pg_trgm.similarity_threshold``'s default."""
FEW_RESULTS = 3
"""A first page with fewer matches than this looks for what was meant as well."""
SUGGESTIONS = 3
"""Corrected queries offered at most ("did you mean")."""
MIN_TERM = 3
"""Shorter words are still being typed (as prefixes they match plenty), and have too few
trigrams to tell one word from another."""
EDITED = 0.5
"""The similarity a word one edit away is ranked with when its trigrams say less: above words
that merely share some trigrams."""
MAX_EDITED_TERM = 24
"""Longer words are not looked for one edit away (their trigrams tell well enough, and their
edits are many)."""
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOCABULARY_STALE_S = 60.0
"""SQLite: how long a vocabulary is used after the index changed (suggestions may miss the
words of the last minute's changes; a rebuild reads the whole word list)."""


def trigrams(word: str) -> frozenset[str]:
    padded = f"  {word.lower()} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def similarity(a: str, b: str) -> float:
    ta, tb = trigrams(a), trigrams(b)
    shared = len(ta & tb)
    return shared / (len(ta) + len(tb) - shared) if ta or tb else 0.0


def edits(term: str) -> frozenset[str]:
    """Every word one edit from ``term``: a letter dropped, two neighbours swapped, a letter
    changed or added (a to z, and the word's own letters), as Damerau counts them; none for
    a word longer than :data:`MAX_EDITED_TERM`."""
    if len(term) > MAX_EDITED_TERM:
        return frozenset()
    letters = set(_LETTERS) | set(term)
    splits = [(term[:i], term[i:]) for i in range(len(term) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + c + b[1:] for a, b in splits if b for c in letters}
    found |= {a + c + b for a, b in splits for c in letters}
    found.discard(term)
    return frozenset(found)


@dataclass(frozen=True)
class Similar:
    word: str
    similarity: float
    plugins: int
    """How many plugins have the word (visible or not): the more, the likelier it was meant.
    SQLite only (FTS5 counts them); 0 on PostgreSQL, whose word list does not count."""


def _order(similar: Similar) -> tuple[float, int, str]:
    return (-similar.similarity, -similar.plugins, similar.word)


def corrections(
    terms: Sequence[str], similar: dict[str, list[Similar]], limit: int = SUGGESTIONS
) -> list[str]:
    """Up to ``limit`` corrected queries, best first: the n-th replaces every word that has
    suggestions by its n-th best (its last when it has fewer), the others kept as typed."""
    if not any(similar.get(term) for term in terms):
        return []
    depth = max(len(similar.get(term) or ()) for term in terms)
    queries: dict[str, None] = {}
    for n in range(depth):
        words = []
        for term in terms:
            options = sorted(similar.get(term) or (), key=_order)
            words.append(options[min(n, len(options) - 1)].word if options else term)
        queries.setdefault(" ".join(words), None)
    return [q for q in queries if q != " ".join(terms)][:limit]


COMMON_PLUGINS = 2000
"""A vocabulary remembers the words at least this many plugins have (see
:meth:`Vocabulary.plugins_at_least`)."""


NAMED_PLUGINS = 100
"""A vocabulary remembers the words at least this many plugins have in their name (see
:meth:`Vocabulary.named_at_least`)."""

Word = tuple[str, int] | tuple[str, int, int] | tuple[str, int, int, int]
"""A word and how many plugins have it; where the source says, how many have it in the field
where most do, and how many in their name."""


def _most(counts: dict[str, int], prefix: str) -> int:
    """The largest count of a word starting with ``prefix`` (0 for none): as many plugins
    surely have one, where the sum could count a plugin with two of them twice."""
    return max((n for word, n in counts.items() if word.startswith(prefix)), default=0)


class Vocabulary:
    """Words and how many plugins have each, indexed by trigram. A word comes with up to
    three counts: how many times it is in a plugin's name, tags, display name or categories
    (a plugin with it in two of them counts twice), which ranks suggestions; where the source
    says, how many plugins have it in the one of them where most have it (so at least that
    many plugins have it), which tells common words; and how many have it in their name."""

    def __init__(self, words: Iterable[Word]) -> None:
        self._words: list[tuple[str, int, int]] = []  # word, plugins, trigram count
        self._postings: defaultdict[str, list[int]] = defaultdict(list)
        self._index: dict[str, int] = {}
        self._common: dict[str, int] = {}  # word -> plugins that surely have it
        self._named: dict[str, int] = {}  # word -> plugins with it in their name
        for word, plugins, *least in words:
            if least and least[0] >= COMMON_PLUGINS:
                self._common[word] = least[0]
            if len(least) > 1 and least[1] >= NAMED_PLUGINS:
                self._named[word] = least[1]
            if len(word) < MIN_TERM or not word.isalpha() or plugins <= 0:
                continue
            grams = trigrams(word)
            index = len(self._words)
            self._index[word] = index
            self._words.append((word, plugins, len(grams)))
            for gram in grams:
                self._postings[gram].append(index)

    def __len__(self) -> int:
        return len(self._words)

    def plugins_at_least(self, prefix: str) -> int:
        """A number of plugins that surely have a word starting with ``prefix`` in their
        name, tags, display name or categories (visible or not, as of the vocabulary), when
        it is :data:`COMMON_PLUGINS` or more; else 0 (not known to be that many)."""
        return _most(self._common, prefix)

    def named_at_least(self, prefix: str) -> int:
        """A number of plugins that surely have a word starting with ``prefix`` in their name
        (visible or not, as of the vocabulary), when it is :data:`NAMED_PLUGINS` or more;
        else 0 (not known to be that many)."""
        return _most(self._named, prefix)

    def similar(self, term: str, limit: int) -> list[Similar]:
        """The ``limit`` words most similar to ``term`` (at least :data:`SIMILARITY`, or one
        edit away: ranked at :data:`EDITED` at least), but those it is a prefix of (it
        found them already)."""
        grams = trigrams(term)
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._postings.get(gram, ()))
        edited = {self._index[word] for word in edits(term) if word in self._index}
        for index in edited:
            shared.setdefault(index, 0)
        found = []
        for index, count in shared.items():
            word, plugins, size = self._words[index]
            score = count / (len(grams) + size - count)
            if index in edited:
                score = max(score, EDITED)
            if score >= SIMILARITY and not word.startswith(term):
                found.append(Similar(word, round(score, 4), plugins))
        return sorted(found, key=_order)[:limit]


_Kept = tuple[Hashable, float, Vocabulary]
"""The index's version a vocabulary was built from, when (monotonic), and the vocabulary."""


def _usable(kept: _Kept | None, version: Hashable) -> TypeGuard[_Kept]:
    """Built from this version of the index, or recently enough to be used a while longer."""
    return kept is not None and (
        kept[0] == version or time.monotonic() - kept[1] < VOCABULARY_STALE_S
    )


class KeptVocabularies:
    """A vocabulary per database, built by ``build`` and kept with the index's version (what
    ``version`` reads) and when it was built: used while the version is unchanged; once it
    changed, until the vocabulary is :data:`VOCABULARY_STALE_S` old, then built again (by
    the search that finds it so, in its own transaction). One search builds at a time: the
    others wait for the first vocabulary, and keep using a stale one meanwhile."""

    def __init__(
        self,
        version: Callable[[Session], Hashable],
        build: Callable[[Session], Iterable[Word]],
    ) -> None:
        self._version = version
        self._build = build
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._kept: WeakKeyDictionary[Engine | Connection, _Kept] = WeakKeyDictionary()

    def get(self, session: Session) -> Vocabulary:
        version = self._version(session)
        kept = self._kept_for(session)
        if _usable(kept, version):
            return kept[2]
        if kept is not None and not self._building.acquire(blocking=False):
            return kept[2]  # another search is building the new one: the stale one meanwhile
        if kept is None:
            self._building.acquire()  # the first one: wait for it
        try:
            kept = self._kept_for(session)  # built while this one waited?
            if _usable(kept, version):
                return kept[2]
            now = time.monotonic()
            vocabulary = Vocabulary(self._build(session))
            with self._lock:
                self._kept[session.get_bind()] = (version, now, vocabulary)
            return vocabulary
        finally:
            self._building.release()

    def kept(self, session: Session) -> Vocabulary | None:
        """The vocabulary kept for this database, stale or not, without building one."""
        kept = self._kept_for(session)
        return kept[2] if kept is not None else None

    def current(self, session: Session) -> Vocabulary | None:
        """The vocabulary kept for this database if it was built from the index as it is now
        (what ``version`` reads), without building one."""
        kept = self._kept_for(session)
        return kept[2] if kept is not None and kept[0] == self._version(session) else None

    def _kept_for(self, session: Session) -> _Kept | None:
        with self._lock:
            return self._kept.get(session.get_bind())

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
