"""Kept search answers (``search.pages``), on SQLite and PostgreSQL: reused while nothing they
depend on changed, and never once something did, whichever app instance (node) changed it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from plugport.registry.db import make_engine
from plugport.registry.migrate import upgrade
from plugport.registry.search import pages
from tests.registry.conftest import POSTGRES_URL, Registry, running
from tests.registry.test_lifecycle import two_published
from tests.registry.test_search import find, names, seed


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL ``engine`` runs inside the with block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def generation(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT generation FROM search_state")).scalar_one())


def other_engine(engine: Engine) -> Engine:
    """A second engine on the database behind ``engine``: what another node would have."""
    if engine.dialect.name == "sqlite":
        return make_engine(engine.url.render_as_string(hide_password=False))
    assert POSTGRES_URL is not None
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    return make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture
def other(registry: Registry, tmp_path: Path) -> Iterator[Registry]:
    """A second app instance, with its own engine and kept answers, on the same database."""
    engine = other_engine(registry.engine)
    try:
        with running(engine, tmp_path / "other") as node:
            yield node
    finally:
        engine.dispose()


def strict(registry: Registry) -> None:
    """This node reads the search generation for every answer (``search_freshness_ms=0``):
    another node's change is in its very next answer."""
    pages.configure(registry.engine, freshness_s=0)


def test_an_answer_is_kept_until_the_data_changes(registry: Registry) -> None:
    seed(registry.engine, "kept.alpha", description="a quiet lynx", downloads=5)
    seed(registry.engine, "kept.beta", description="a loud lynx", downloads=9)
    first = find(registry, q="lynx")
    with statements(registry.engine) as seen:  # within the freshness bound: nothing is read
        assert find(registry, q=" Lynx ") == first  # normalised to the same query
    assert seen == []
    strict(registry)
    with statements(registry.engine) as seen:
        assert find(registry, q=" Lynx ") == first
    assert len(seen) == 1
    assert "search_state" in seen[0]  # the generation, and nothing else
    with statements(registry.engine) as seen:
        assert names(registry, q="lynx", per_page="1") == ["kept.alpha"]  # another query
    assert len(seen) > 1
    with registry.engine.begin() as connection:
        connection.execute(text("UPDATE plugins SET listed = false WHERE name = 'kept.alpha'"))
    assert names(registry, q="lynx") == ["kept.beta"]
    assert find(registry, q="lynx")["total"] == 1


def test_download_counts_may_lag_but_not_for_longer_than_allowed(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(registry.engine, "dl.a", downloads=5)
    seed(registry.engine, "dl.b", downloads=9)
    assert names(registry) == ["dl.b", "dl.a"]
    before = generation(registry.engine)
    with registry.engine.begin() as connection:  # what counting a download does
        connection.execute(text("UPDATE plugins SET downloads = 50 WHERE name = 'dl.a'"))
    assert generation(registry.engine) == before
    assert names(registry) == ["dl.b", "dl.a"]  # kept: up to PAGE_CACHE_S behind
    monkeypatch.setattr(pages, "PAGE_CACHE_S", 0.0)
    assert names(registry) == ["dl.a", "dl.b"]
    assert find(registry)["items"][0]["downloads"] == 50


def test_every_change_search_depends_on_raises_the_generation(engine: Engine) -> None:
    upgrade(engine)
    plugin = seed(engine, "gen.a", description="before")
    changes = [
        "UPDATE plugins SET description = 'after' WHERE id = :id",
        "UPDATE plugins SET suspended = true WHERE id = :id",
        "UPDATE plugins SET rating_count = 1, rating_sum = 5 WHERE id = :id",
        "UPDATE plugin_versions SET yanked_reason = 'bad' WHERE plugin_id = :id",
        "UPDATE plugin_versions SET status = 'rejected' WHERE plugin_id = :id",
        "DELETE FROM plugin_versions WHERE plugin_id = :id",
        "DELETE FROM plugins WHERE id = :id",
    ]
    for change in changes:
        before = generation(engine)
        with engine.begin() as connection:
            connection.execute(text(change), {"id": plugin})
        assert generation(engine) > before, change
    before = generation(engine)
    seed(engine, "gen.b")  # inserts
    assert generation(engine) > before
    before = generation(engine)
    with engine.connect() as connection:  # rolled back: nothing changed
        connection.execute(text("UPDATE plugins SET listed = false"))
        connection.rollback()
    assert generation(engine) == before


def test_postgresql_raises_the_generation_at_commit_once(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite raises it on every row: one writer at a time, nothing to defer")
    upgrade(engine)
    for name in ("pg.a", "pg.b", "pg.c"):
        seed(engine, name)
    before = generation(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE plugins SET description = 'x'"))
        connection.execute(text("UPDATE plugin_versions SET review_reason = 'y'"))
        # not yet: the counter row is locked only at commit, after every other row
        assert connection.execute(text("SELECT generation FROM search_state")).scalar() == before
    assert generation(engine) == before + 1


def test_another_node_s_changes_reach_this_node_s_answers(
    registry: Registry, other: Registry, tmp_path: Path
) -> None:
    """Publish, review, yank, unlist, suspend, deprecate and rate through the other node; this
    node's kept answers (search and categories) follow every one."""
    strict(registry)
    with registry.client() as client:
        assert client.get("/api/v1/categories").json() == []
    assert find(registry, q="hello")["total"] == 0  # kept, empty
    publisher = two_published(other, tmp_path)  # publish and approve over there
    assert names(registry, q="hello") == ["acme.hello"]
    assert find(registry, q="hello")["items"][0]["latest_version"] == "0.2.0"
    with registry.client() as client:
        assert client.get("/api/v1/categories").json() == [{"name": "other", "count": 1}]

    def hello() -> list[str]:
        return names(registry, q="hello")

    with other.client(publisher.token) as owner, other.client(other.admin) as admin:
        owner.post(
            "/api/v1/plugins/acme.hello/versions/0.2.0/yank", json={"reason": "bad"}
        ).raise_for_status()
        assert find(registry, q="hello")["items"][0]["latest_version"] == "0.1.0"
        owner.post("/api/v1/plugins/acme.hello/unlist").raise_for_status()
        assert hello() == []
        owner.post("/api/v1/plugins/acme.hello/list").raise_for_status()
        assert hello() == ["acme.hello"]
        admin.post("/api/v1/plugins/acme.hello/suspend", json={"reason": "x"}).raise_for_status()
        assert hello() == []
        with registry.client() as client:
            assert client.get("/api/v1/categories").json() == []
        admin.post("/api/v1/plugins/acme.hello/unsuspend").raise_for_status()
        owner.post(
            "/api/v1/plugins/acme.hello/deprecate", json={"reason": "old"}
        ).raise_for_status()
        assert find(registry, q="hello")["items"][0]["deprecated"] == "old"
    with other.client(other.token("bea", "publish:bea")) as rater:
        rater.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 4}).raise_for_status()
    assert find(registry, q="hello")["items"][0]["rating"] == {"average": 4.0, "count": 1}


def test_another_node_s_change_shows_here_within_the_freshness_bound(
    registry: Registry, other: Registry
) -> None:
    """Within ``search_freshness_ms`` of its last read of the generation this node serves
    kept answers with no database read (so another node's change may not show yet); past
    it, the next answer reads the generation and shows the change. A change made through
    this node shows at once."""
    bound_s = 1.5
    pages.configure(registry.engine, freshness_s=bound_s)
    seed(registry.engine, "fresh.one", description="an ibis")
    assert names(registry, q="ibis") == ["fresh.one"]  # read now: the bound starts
    with other.engine.begin() as connection:  # another node unlists it
        connection.execute(text("UPDATE plugins SET listed = false WHERE name = 'fresh.one'"))
    changed_at = time.monotonic()
    with statements(registry.engine) as seen:
        stale = names(registry, q="ibis")
    shown_at = None
    while shown_at is None and time.monotonic() < changed_at + 5:
        if names(registry, q="ibis") == []:
            shown_at = time.monotonic()
        else:
            time.sleep(0.02)
    assert (stale, seen) == (["fresh.one"], [])  # kept, and nothing read to serve it
    assert shown_at is not None
    assert shown_at - changed_at <= bound_s + 0.5
    seed(registry.engine, "fresh.two", description="an ibis")  # through this node
    assert names(registry, q="ibis") == ["fresh.two"]  # at once: its commit is seen here


def test_kept_answers_are_bounded_in_number_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "PAGES_KEPT", 3)
    monkeypatch.setattr(pages, "PAGE_BYTES_KEPT", 10)
    kept = pages._Kept()

    def put(key: str, body: bytes) -> None:
        kept.put(key, pages._Entry(0, 0.0, 1.0, body))

    for key, body in (("a", b"1234"), ("b", b"1234"), ("c", b"12")):
        put(key, body)
    assert (list(kept.entries), kept.size) == (["a", "b", "c"], 10)
    put("d", b"123")  # 13 bytes: the least recently used goes
    assert (list(kept.entries), kept.size) == (["b", "c", "d"], 9)
    put("b", b"1")  # replaced: its old size no longer counts
    assert (list(kept.entries), kept.size) == (["c", "d", "b"], 6)
    put("e", b"1")  # four answers: one too many
    assert (list(kept.entries), kept.size) == (["d", "b", "e"], 5)
    put("f", b"12345678901")  # larger than the budget alone: nothing of it is kept
    assert (list(kept.entries), kept.size) == ([], 0)
