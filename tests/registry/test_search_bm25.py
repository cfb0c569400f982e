"""FTS5's bm25 worked out in Python for a page of plugins (``search.bm25``): the pure pieces,
then the numbers against FTS5's own on a real SQLite index, down to the last bit; what is
left to FTS5 (text that is not ASCII, counts that do not add up); and that a popular page is
scored without asking FTS5 to score it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from plugport.registry.db import make_sessions
from plugport.registry.migrate import upgrade
from plugport.registry.search import SearchQuery, bm25, clear_caches, search_backend
from plugport.registry.search import sqlite as search_sqlite
from plugport.registry.search.base import SqlSearchBackend
from plugport.registry.services.catalog import today
from tests.registry.conftest import engine_for
from tests.registry.test_search import seed

WEIGHTS = search_sqlite.BM25_WEIGHTS


# --- pure --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "values"),
    [
        (b"", []),
        (b"\x00\x05\x7f", [0, 5, 127]),
        (b"\x81\x00", [128]),
        (b"\x83\xff\x7f", [0xFFFF]),
        (b"\xff" * 8 + b"\xff", [2**64 - 1]),  # the ninth byte counts all eight bits
        (b"\x81\x00\x03", [128, 3]),
    ],
)
def test_varints_read_as_sqlite_writes_them(blob: bytes, values: list[int]) -> None:
    assert bm25.varints(blob) == values


def test_totals_are_the_rows_and_every_columns_tokens() -> None:
    assert bm25.totals(bytes([3, 4, 2, 0x81, 0x00])) == bm25.Totals(rows=3, tokens=4 + 2 + 128)


def test_frequencies_weigh_each_prefix_hit_by_its_column() -> None:
    columns = ["acme.otter-pond", '["otter", "river"]', None, "An Otter; otters' OTTER2 ot", ""]
    sizes = [3, 2, 0, 5, 0]
    found = bm25.frequencies(columns, sizes, ("otter", "pond", "ot"), WEIGHTS)
    # name x3 (otter, pond), tags x2 (otter), description x1 (Otter, otters, OTTER2, ot)
    assert found == [3 + 2 + 3, 3, 3 + 2 + 4]
    assert bm25.frequencies(columns, sizes, ("zebra",), WEIGHTS) == [0]


@pytest.mark.parametrize(
    ("columns", "sizes"),
    [
        (["café.bar", "", "", "", ""], [2, 0, 0, 0, 0]),  # not ASCII: FTS5 folds it, we do not
        (["a.b", "", "", "", ""], [3, 0, 0, 0, 0]),  # FTS5 counted otherwise
        ([None, "", "", "", ""], [1, 0, 0, 0, 0]),  # no text where FTS5 counted a token
    ],
)
def test_frequencies_leave_to_fts5_what_they_cannot_read_as_it(
    columns: list[str | None], sizes: list[int]
) -> None:
    assert bm25.frequencies(columns, sizes, ("a",), WEIGHTS) is None


def test_score_is_bm25_with_its_idf_floor() -> None:
    whole = bm25.Totals(rows=10, tokens=50)
    common = bm25.score([1.0], 5, [9], whole)  # held by most rows: idf floored at 1e-6
    assert 0 < common < 1e-5
    rare = bm25.score([1.0], 5, [1], whole)
    assert rare > 1
    assert bm25.score([2.0], 5, [1], whole) > rare  # more hits score more
    assert bm25.score([1.0], 20, [1], whole) < rare  # longer rows score less
    assert bm25.score([0.0, 0.0], 5, [1, 1], whole) == 0.0


# --- against FTS5 ------------------------------------------------------------------------------

WORDS = ["otter", "river", "data", "database", "sync", "sink", "ot", "o", "pond", "2fa", "otters"]


def seed_texts(
    engine: Engine, count: int, rng: random.Random, *, unicode: bool = True
) -> list[int]:
    """Plugins whose names, tags, display names, descriptions and categories mix the words
    above (prefixes of each other, digits, punctuation, repeats; one in nine not ASCII
    unless ``unicode`` is false)."""
    ids = []
    for i in range(count):

        def words(k: int) -> list[str]:
            return rng.choices(WORDS, k=k)

        punctuated = " ".join(w + rng.choice(["", ",", ".", "-x", "'s", "!"]) for w in words(9))
        ids.append(
            seed(
                engine,
                f"ns{i % 7}.{'-'.join(words(rng.randint(1, 3)))}-{i}",
                display_name=" ".join(words(rng.randint(0, 3))).title(),
                description=punctuated if i % 9 or not unicode else "Ünïcode ötter " + punctuated,
                tags=sorted(set(words(rng.randint(0, 3)))),
                categories=["data"] if i % 3 == 0 else [],
                downloads=rng.randint(0, 1000),
            )
        )
    return ids


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Any:
    with engine_for("sqlite", tmp_path) as engine:
        upgrade(engine)
        yield engine


def test_scores_worked_here_are_fts5s_own_to_the_bit(sqlite_engine: Engine) -> None:
    """For every word set and page, the scores worked out here equal FTS5's bm25() exactly,
    rows that do not match get none, and what is not ASCII is left to FTS5, whose answer
    ``_scores`` then gives for it."""
    rng = random.Random(7)  # noqa: S311 - a corpus, not a secret
    ids = seed_texts(sqlite_engine, 120, rng)
    backend = search_sqlite.SqliteSearchBackend()
    compared = left = 0
    with make_sessions(sqlite_engine)() as session:
        for term_set in [("otter",), ("ot",), ("d",), ("data", "sync"), ("o", "p"), ("2fa",)]:
            for _ in range(4):
                page = sorted(rng.sample(ids, 20))
                here, rest = backend._scores_here(session, term_set, page)
                fts5 = backend._scores_by_index(session, term_set, page)
                assert here == {i: fts5[i] for i in page if i in fts5 and i not in rest}
                assert backend._scores(session, term_set, page) == fts5
                compared += len(here)
                left += len(rest)
    assert compared > 300
    assert left > 0  # the 'Ünïcode' rows went to FTS5


def test_a_term_not_ascii_is_left_to_fts5(sqlite_engine: Engine) -> None:
    seed(sqlite_engine, "zoo.otter", description="ötter Ötter otter")
    backend = search_sqlite.SqliteSearchBackend()
    with make_sessions(sqlite_engine)() as session:
        scores = backend._scores(session, ("ötter",), [1])
        assert scores == backend._scores_by_index(session, ("ötter",), [1])
        assert scores[1] > 0


def test_the_kept_row_counts_follow_the_index(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word's row count is kept under the FTS5 index's version: a new row holding it
    counts afresh (and scores as FTS5 then does); clear_caches() forgets it."""
    for i in range(12):  # few hold the word: an IDF above its floor
        seed(sqlite_engine, f"zoo.a{i}", description="otter" if i in (1, 2) else "pond")
    backend = search_sqlite.SqliteSearchBackend()

    def scores() -> dict[int, float]:
        with make_sessions(sqlite_engine)() as session:
            got = backend._scores(session, ("otter",), [1, 2, 3])
            assert got == backend._scores_by_index(session, ("otter",), [1, 2, 3])
            return got

    before = scores()
    assert set(before) == {2, 3}
    kept = search_sqlite._HITS._by_database[sqlite_engine]
    assert [(key, entry[1]) for key, entry in kept.items()] == [("otter", 2)]
    seed(sqlite_engine, "zoo.b", description="otter")
    after = scores()
    assert after[2] != before[2]  # the word is in more rows: its IDF changed
    assert [entry[1] for entry in kept.values()] == [3]
    clear_caches()
    assert sqlite_engine not in search_sqlite._HITS._by_database


def test_a_popular_page_is_scored_without_fts5_scoring_it(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word in many names ranks them by downloads, and the page's scores come from here:
    FTS5's bm25() (which counts every row holding the word, then walks every match to reach
    the page) is never asked; the page carries the same scores FTS5 would give."""
    rng = random.Random(3)  # noqa: S311 - a corpus, not a secret
    seed_texts(sqlite_engine, 60, rng, unicode=False)
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    clear_caches()
    sent: list[str] = []
    event.listen(sqlite_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    with make_sessions(sqlite_engine)() as session:
        result = search_backend(session).search(session, SearchQuery(q="ot"), today=today())
        asked = list(sent)
        ids = [hit.plugin.id for hit in result.hits]
        expected = search_sqlite.SqliteSearchBackend()._scores_by_index(session, ("ot",), ids)
    assert len(ids) == 20
    assert {hit.plugin.id: hit.score for hit in result.hits} == expected
    assert not any("bm25(" in statement for statement in asked), asked


def test_totals_read_the_index_as_fts5_does(sqlite_engine: Engine) -> None:
    rng = random.Random(5)  # noqa: S311 - a corpus, not a secret
    seed_texts(sqlite_engine, 30, rng)
    with sqlite_engine.connect() as connection:
        averages = connection.execute(
            text("SELECT block FROM plugin_search_data WHERE id = 1")
        ).scalar_one()
        stored = connection.execute(text("SELECT sz FROM plugin_search_docsize"))
        sizes = [bm25.varints(sz) for (sz,) in stored]
    assert bm25.totals(averages) == bm25.Totals(30, sum(map(sum, sizes)))


def test_an_index_without_totals_leaves_the_page_to_fts5(sqlite_engine: Engine) -> None:
    """A text index that has no averages record yet, or no rows, has nothing to work the
    formula from: the page goes to FTS5, which answers as it does."""
    backend = search_sqlite.SqliteSearchBackend()
    with make_sessions(sqlite_engine)() as session:
        assert backend._scores_here(session, ("otter",), [1, 2]) == ({}, [1, 2])
        assert backend._scores(session, ("otter",), [1, 2]) == {}
    seed(sqlite_engine, "zoo.otter", description="otter")
    with sqlite_engine.begin() as connection:
        connection.execute(text("DELETE FROM plugins"))
    with make_sessions(sqlite_engine)() as session:
        assert backend._scores_here(session, ("otter",), [1]) == ({}, [1])
