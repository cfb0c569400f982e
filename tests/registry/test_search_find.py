"""Search finds what people type, on SQLite and PostgreSQL: category names match as tags do, a
misspelt word finds the word it was meant to be and says so ("did you mean"), a search that
finds nothing offers the closest words, and the facet counts beside the filters are what
choosing each value would leave."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from plugport.registry.db import make_sessions
from plugport.registry.migrate import upgrade
from plugport.registry.search import SearchQuery, clear_caches, search_backend
from plugport.registry.search import pages as kept
from plugport.registry.search.query import CategoryCount
from plugport.registry.search.typos import (
    EDITED,
    MAX_EDITED_TERM,
    SIMILARITY,
    Similar,
    Vocabulary,
    corrections,
    edits,
    similarity,
    trigrams,
)
from plugport.registry.services.catalog import today
from tests.registry.conftest import Registry
from tests.registry.test_search import V, find, names, seed

# --- pure ------------------------------------------------------------------------------------


def test_trigrams_and_similarity_as_pg_trgm_computes_them() -> None:
    assert trigrams("cat") == {"  c", " ca", "cat", "at "}
    # "  s" " sl" "sla" shared, of 5 and 6: what PostgreSQL answers for similarity()
    assert similarity("slak", "slack") == pytest.approx(3 / 8)
    assert similarity("slack", "slack") == 1.0
    assert similarity("slak", "zebra") == 0.0


def test_vocabulary_offers_close_words_but_not_those_already_found() -> None:
    vocabulary = Vocabulary([("slack", 40), ("black", 3), ("slacker", 1), ("sl", 9), ("x9y", 1)])
    assert len(vocabulary) == 3  # too short, not letters: left out
    found = vocabulary.similar("slak", 5)
    assert [s.word for s in found] == ["slack", "slacker"]
    # not 'slacker' (found already); 'black' one letter off, ranked so
    assert vocabulary.similar("slack", 5) == [Similar("black", EDITED, 3)]
    assert vocabulary.similar("qqqq", 5) == []


def test_corrections_replace_each_word_by_its_suggestions_in_turn() -> None:
    similar = {
        "slak": [Similar("slack", 0.57, 40), Similar("slab", 0.4, 2)],
        "notify": [],
    }
    assert corrections(("slak", "notify"), similar) == ["slack notify", "slab notify"]
    assert corrections(("slak",), {"slak": []}) == []
    assert corrections(("a", "b"), {}) == []


# --- over a registry ----------------------------------------------------------------------------


def _plugins(registry: Registry) -> None:
    engine = registry.engine
    seed(engine, "acme.slack-notifier", description="posts to a channel", tags=["chat"])
    seed(engine, "acme.slack-digest", description="a daily digest", tags=["chat"], downloads=5)
    seed(engine, "acme.csv-tools", description="reads tables", categories=["data"])
    seed(engine, "acme.json-shape", description="reshapes documents", categories=["data"])
    seed(engine, "acme.sheets", description="spreadsheets", categories=["data", "ui"])
    seed(engine, "acme.data-lake", description="stores everything", tags=["storage"])
    seed(
        engine,
        "acme.fetcher",
        V(permissions={"network": ["a.com"]}),
        description="fetches pages",
        categories=["integration"],
        tags=["http"],
    )


def test_a_category_name_finds_its_plugins_as_a_tag_would(registry: Registry) -> None:
    _plugins(registry)
    found = names(registry, q="data")
    # the three in the category and the one named 'data': as many as the category page shows
    assert set(found) == {"acme.csv-tools", "acme.json-shape", "acme.sheets", "acme.data-lake"}
    assert found[0] == "acme.data-lake"  # the name still weighs most
    assert names(registry, q="integration") == ["acme.fetcher"]
    assert find(registry, q="data")["did_you_mean"] == []  # plenty found: no corrections


def test_a_typo_finds_what_was_meant_and_says_so(registry: Registry) -> None:
    _plugins(registry)
    body = find(registry, q="slak")
    assert {item["name"] for item in body["items"]} == {"acme.slack-notifier", "acme.slack-digest"}
    assert body["total"] == 2
    assert body["corrected_q"] == "slack"
    assert body["did_you_mean"][0] == "slack"
    # two words: the misspelt one is corrected, the other kept
    body = find(registry, q="slak digest")
    assert [item["name"] for item in body["items"]] == ["acme.slack-digest"]
    assert body["corrected_q"] == "slack digest"
    # a plugin's full name found it: nothing else is looked for (though 'fetches' is close)
    seed(registry.engine, "zeta.fetcher")
    body = find(registry, q="zeta.fetcher")
    assert ([i["name"] for i in body["items"]], body["did_you_mean"]) == (["zeta.fetcher"], [])
    assert find(registry, q="zeta fetchr")["did_you_mean"] == ["zeta fetcher"]
    # a word that resembles nothing: nothing found, nothing offered
    body = find(registry, q="qqqqzz")
    assert (body["items"], body["total"], body["did_you_mean"], body["corrected_q"]) == (
        [],
        0,
        [],
        None,
    )


def test_a_few_matches_are_kept_first_and_the_correction_follows(registry: Registry) -> None:
    _plugins(registry)
    seed(registry.engine, "acme.slab-cutter", description="cuts slabs")
    body = find(registry, q="slab")
    listed = [item["name"] for item in body["items"]]
    assert listed[0] == "acme.slab-cutter"  # what the words found, first
    assert body["did_you_mean"]
    assert body["did_you_mean"][0] in {"slack", "slabs"}
    assert body["total"] == len(listed)


def test_suggestions_follow_new_words(engine: Engine) -> None:
    upgrade(engine)
    seed(engine, "acme.weather")
    with make_sessions(engine)() as session:
        result = search_backend(session).search(session, SearchQuery(q="wether"), today=today())
        assert [h.plugin.name for h in result.hits] == ["acme.weather"]
    seed(engine, "acme.tether")
    clear_caches(words=True)  # SQLite keeps its word list up to a minute after a change
    with make_sessions(engine)() as session:
        result = search_backend(session).search(session, SearchQuery(q="tethr"), today=today())
        assert [h.plugin.name for h in result.hits] == ["acme.tether"]
        if engine.dialect.name == "postgresql":  # kept by a trigger, in the same transaction
            words = set(session.scalars(text("SELECT word FROM search_words")))
            assert {"tether", "weather"} <= words


def test_facet_counts_are_what_each_filter_would_leave(engine: Engine) -> None:
    upgrade(engine)
    seed(engine, "f.one", categories=["data"], tags=["csv"], description="tables")
    seed(engine, "f.two", categories=["data", "ui"], tags=["csv", "chart"], description="tables")
    seed(
        engine,
        "f.three",
        V(permissions={"network": ["a.com"]}),
        categories=["ui"],
        tags=["chart"],
        description="tables",
    )
    seed(engine, "f.four", categories=["security"], tags=["csv"], description="locks")
    seed(engine, "f.hidden", categories=["data"], tags=["csv"], description="tables", listed=False)
    with make_sessions(engine)() as session:
        backend = search_backend(session)
        plain = backend.facets(session, SearchQuery(q="tables"))
        assert plain.categories == [CategoryCount("data", 2), CategoryCount("ui", 2)]
        assert plain.tags == [CategoryCount("chart", 2), CategoryCount("csv", 2)]
        assert plain.permissions == [CategoryCount("network", 1)]
        assert not plain.capped
        # under a category: the tags and permissions of its matches; categories as if it
        # were not chosen (what choosing another would leave)
        ui = backend.facets(session, SearchQuery(q="tables", category="ui"))
        assert ui.categories == plain.categories
        assert ui.tags == [CategoryCount("chart", 2), CategoryCount("csv", 1)]
        assert ui.permissions == [CategoryCount("network", 1)]
        # under a permission and a tag
        both = backend.facets(session, SearchQuery(permission="network", tag="chart"))
        assert both.categories == [CategoryCount("ui", 1)]
        assert both.tags == [CategoryCount("chart", 1)]
        assert both.permissions == [CategoryCount("network", 1)]
        # every count matches the total of the search it links to
        for c in plain.categories:
            linked = replace(SearchQuery(q="tables"), category=c.name)
            assert backend.search(session, linked, today=today()).total == c.count
        # the kept copy (the page's) is the same
        assert kept.facets(session, SearchQuery(q="tables")) == plain


def test_postgres_words_follow_inserts_and_updates(engine: Engine) -> None:
    """0023's statement triggers add the words of every plugin written, once each."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's word list is FTS5's own")
    upgrade(engine)
    first = seed(engine, "w.alpha", display_name="Alpha Beacon", tags=["beacon"])
    seed(engine, "w.gamma", categories=["data"], tags=["beacon"])

    def words() -> set[str]:
        with engine.connect() as connection:
            return {str(w) for w in connection.scalars(text("SELECT word FROM search_words"))}

    assert words() == {"alpha", "beacon", "gamma", "data"}
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE plugins SET tags = '[\"lantern\"]', downloads = 3 WHERE id = :id"),
            {"id": first},
        )
        connection.execute(text("UPDATE plugins SET downloads = 9"))  # no word changes
    assert words() == {"alpha", "beacon", "gamma", "data", "lantern"}


def test_one_search_builds_the_vocabulary_while_the_others_wait_or_use_the_stale_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sixteen searches arriving together at a node that has no vocabulary yet build it once
    (each build walks the whole index; sixteen at once held every search up for seconds);
    once the index changed, one rebuilds and the others keep the stale vocabulary."""
    import threading
    import time as clock
    from types import SimpleNamespace

    from plugport.registry.search import typos

    version = ["v1"]
    builds: list[str] = []
    release = threading.Event()

    def build(session: object) -> list[tuple[str, int]]:
        builds.append(version[0])
        release.wait(5)
        return [({"v1": "slackone", "v2": "slacktwo"}[version[0]], 1)]

    kept = typos.KeptVocabularies(lambda session: version[0], build)

    class Database:  # any weak-referenceable key, as an Engine is
        pass

    engine = Database()
    session = SimpleNamespace(get_bind=lambda: engine)
    found: list[int] = []
    threads = [
        threading.Thread(target=lambda: found.append(len(kept.get(session))))  # type: ignore[arg-type]
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    clock.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert builds == ["v1"]
    assert found == [1] * 16

    version[0] = "v2"  # the index changed, and the vocabulary is old enough to rebuild
    monkeypatch.setattr(typos, "VOCABULARY_STALE_S", 0.0)
    release.clear()
    rebuilding = threading.Thread(target=lambda: kept.get(session))  # type: ignore[arg-type]
    rebuilding.start()
    clock.sleep(0.1)
    stale = kept.get(session)  # type: ignore[arg-type]
    assert [s.word for s in stale.similar("slakone", 1)] == ["slackone"]  # v1's, at once
    release.set()
    rebuilding.join(5)
    assert builds == ["v1", "v2"]


def test_a_vocabulary_knows_the_words_in_many_names() -> None:
    """Words in :data:`~.typos.NAMED_PLUGINS` names or more are remembered with that count:
    a prefix of one is in at least as many names (the largest, not their sum: one plugin may
    have both words); fewer, or no count from the source, is not known."""
    from plugport.registry.search import typos

    many = typos.NAMED_PLUGINS
    words: list[typos.Word] = [
        ("slack", 900, 700, many + 50),
        ("slacker", 300, 200, many),
        ("slim", 40, 30, many - 1),
        ("sloth", 5000, 4000),  # no name count given
    ]
    vocabulary = Vocabulary(words)
    assert vocabulary.named_at_least("slack") == many + 50
    assert vocabulary.named_at_least("sl") == many + 50
    assert vocabulary.named_at_least("slacke") == many
    assert vocabulary.named_at_least("slim") == 0
    assert vocabulary.named_at_least("slo") == 0
    assert vocabulary.plugins_at_least("slo") == 4000


def test_only_a_vocabulary_of_the_index_as_it_is_is_current() -> None:
    from types import SimpleNamespace
    from typing import Any

    from plugport.registry.search import typos

    version = ["v1"]
    kept = typos.KeptVocabularies(lambda session: version[0], lambda session: [("otter", 3)])

    class Database:
        pass

    database = Database()
    session: Any = SimpleNamespace(get_bind=lambda: database)
    assert kept.current(session) is None  # none built
    built = kept.get(session)
    assert kept.current(session) is built
    version[0] = "v2"
    assert kept.current(session) is None
    assert kept.kept(session) is built  # still there, stale, for what may use it so


def test_one_edit_away_is_every_single_letter_slip() -> None:
    found = edits("emial")
    assert {"xemial", "emiaal", "emiql"} <= found  # a letter added, another changed
    assert "emial" not in found
    assert {"mial", "eial", "emal", "emil", "emia"} <= found  # each letter dropped
    assert {"meial", "eimal", "email", "emila"} <= found  # each pair swapped
    assert edits("a" * (MAX_EDITED_TERM + 1)) == frozenset()  # long words: trigrams enough
    # of n letters: n drops, n - 1 swaps, 26 changes of each letter, 26 additions at n + 1 places
    assert 150 < len(edits("cat")) <= 3 + 2 + 26 * 3 + 26 * 4


def test_vocabulary_offers_a_word_one_edit_away_that_shares_few_trigrams() -> None:
    vocabulary = Vocabulary([("email", 40), ("notes", 12), ("act", 3), ("emailer", 2)])
    assert similarity("emial", "email") < SIMILARITY  # trigrams alone would not find it
    assert [s.word for s in vocabulary.similar("emial", 3)] == ["email"]
    assert vocabulary.similar("emial", 3)[0].similarity == EDITED
    assert [s.word for s in vocabulary.similar("ntoes", 3)] == ["notes"]
    assert [s.word for s in vocabulary.similar("cat", 3)] == ["act"]  # no trigram in common
    assert vocabulary.similar("emai", 3) == []  # a prefix of 'email': it found it already


def test_a_swapped_pair_of_letters_finds_what_was_meant(registry: Registry) -> None:
    _plugins(registry)
    body = find(registry, q="slakc")
    assert body["corrected_q"] == "slack"
    assert {item["name"] for item in body["items"]} == {"acme.slack-notifier", "acme.slack-digest"}
    body = find(registry, q="dgiest")
    assert body["corrected_q"] == "digest"
    assert [item["name"] for item in body["items"]] == ["acme.slack-digest"]
