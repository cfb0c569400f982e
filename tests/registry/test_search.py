"""Search over a real registry, on SQLite (FTS5) and PostgreSQL (tsvector): what is found, in
which order, with which filters; that the index follows every change without being told; and
that no query text is ever read as query syntax."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from alembic import command
from sqlalchemy import Engine, event, inspect, select, text
from sqlalchemy.orm import Session

from plugport.errors import InvalidInputError
from plugport.manifest import PERMISSION_NAMES
from plugport.registry.db import make_sessions
from plugport.registry.migrate import alembic_config, upgrade
from plugport.registry.models import DailyStat, Namespace, Plugin, PluginVersion
from plugport.registry.search import (
    SearchQuery,
    SearchResult,
    clear_caches,
    include_schema_name,
    search_backend,
    typos,
)
from plugport.registry.search import base as search_base
from plugport.registry.search import pages as search_pages
from plugport.registry.search import postgres as search_postgres
from plugport.registry.search import relevance as search_relevance
from plugport.registry.search import sqlite as search_sqlite
from plugport.registry.search.base import SqlSearchBackend
from plugport.registry.search.postgres import tsquery_text
from plugport.registry.search.query import query_terms
from plugport.registry.search.sqlite import match_expression
from plugport.registry.services.catalog import today
from plugport.registry.services.publish import refresh_latest
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump

INJECTIONS = [
    '"',
    "a OR",
    "name:x",
    "NEAR(a b)",
    "*",
    "^hello",
    "hello AND (",
    "a:* & !b",
    "'; DROP TABLE plugins; --",
    "\\",
    "%_",
    "hello)",
    "-hello",
    "{name}: x",
]


def find(registry: Registry, **params: Any) -> dict[str, Any]:
    with registry.client() as client:
        response = client.get("/api/v1/plugins", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(registry: Registry, **params: Any) -> list[str]:
    return [item["name"] for item in find(registry, **params)["items"]]


# --- seeding rows directly, for ranking and filters ------------------------------------------


class V(NamedTuple):
    version: str = "1.0.0"
    engines: dict[str, str] = {}  # noqa: RUF012 read-only defaults of a NamedTuple
    permissions: dict[str, Any] = {}  # noqa: RUF012
    status: str = "published"
    yanked: str | None = None


def seed(engine: Engine, name: str, *versions: V, **fields: Any) -> int:
    """A plugin row and its version rows, as publishing and review would leave them: the
    descriptive ``fields`` are in every version's manifest, as an upload would put them."""
    described = {
        "display_name": fields.pop("display_name", ""),
        "description": fields.pop("description", ""),
        "categories": fields.pop("categories", []),
        "tags": fields.pop("tags", []),
    }
    namespace = name.split(".", maxsplit=1)[0]
    with make_sessions(engine).begin() as session:
        ns = session.scalar(select(Namespace).where(Namespace.name == namespace))
        if ns is None:
            ns = Namespace(name=namespace)
            session.add(ns)
            session.flush()
        plugin = Plugin(name=name, namespace_id=ns.id, **fields)
        session.add(plugin)
        session.flush()
        for v in versions or (V(),):
            session.add(
                PluginVersion(
                    plugin_id=plugin.id,
                    version=v.version,
                    status=v.status,
                    sha256="0" * 64,
                    length=1,
                    key_id="k" * 64,
                    manifest={
                        "name": name,
                        "version": v.version,
                        "engines": v.engines,
                        "permissions": v.permissions,
                        **described,
                    },
                    scan={},
                    yanked_reason=v.yanked,
                )
            )
        refresh_latest(session, plugin)
        if "updated_at" in fields:  # as given, not when the latest version was chosen here
            plugin.updated_at = fields["updated_at"]
        return plugin.id


# --- pure: parsing and escaping --------------------------------------------------------------


def test_parse_defaults_and_normalises() -> None:
    plain = SearchQuery.parse()
    assert plain == SearchQuery(q="", sort="downloads", page=1, per_page=20)
    assert (plain.terms, plain.offset) == ((), 0)
    worded = SearchQuery.parse(q="  Hello, hello WORLD  ", page="2", per_page="50")
    assert (worded.terms, worded.sort, worded.offset) == (("hello", "world"), "relevance", 50)
    assert worded.exact_name == "hello, hello world"
    # blank form fields are absent; relevance with nothing to rank by means downloads
    blank = SearchQuery.parse(q='"', category="", tag=" ", sort="relevance", page="")
    assert blank == SearchQuery(q='"')
    assert (blank.terms, blank.sort) == ((), "downloads")
    given = {"category": "data", "tag": "db", "permission": "network", "host": "myapp"}
    full = SearchQuery.parse(q="x", host_version="2.0", sort="trending", **given)
    assert full == SearchQuery(q="x", host_version="2.0", sort="trending", **given)
    with pytest.raises(InvalidInputError, match=r"^page: 0 "):  # built directly, same rules
        SearchQuery(page=0)
    with pytest.raises(InvalidInputError, match=r"^per_page: 500 "):
        SearchQuery(per_page=500)


BAD_PARAMS: list[tuple[dict[str, str], str]] = [
    ({"page": "0"}, "page: 0 is not between 1 and 10000"),
    ({"page": "abc"}, "page: 'abc' is not a whole number"),
    ({"page": "1.5"}, "page: '1.5' is not a whole number"),
    ({"per_page": "0"}, "per_page: 0 is not between 1 and 100"),
    ({"per_page": "101"}, "per_page: 101 is not between 1 and 100"),
    ({"sort": "popular"}, "sort: 'popular' is not one of relevance, downloads"),
    ({"category": "games"}, "category: 'games' is not one of automation"),
    ({"permission": "disk"}, "permission: 'disk' is not one of config, credentials, events"),
    ({"tag": "Not A Tag"}, "tag: 'Not A Tag' is not a tag"),
    ({"host": "myapp"}, "host and host_version: give both or neither"),
    ({"host_version": "2.0"}, "host and host_version: give both or neither"),
    ({"host": "My App", "host_version": "2"}, "host: 'My App' is not an application name"),
    ({"host": "myapp", "host_version": "banana"}, "host_version: 'banana' is not a PEP 440"),
    ({"q": "x" * 201}, "q: longer than 200 characters"),
    ({"q": " ".join(f"w{i}" for i in range(17))}, "q: more than 16 words"),
]


@pytest.mark.parametrize(("params", "message"), BAD_PARAMS)
def test_parse_refuses_naming_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SearchQuery.parse(**params)
    assert str(caught.value).startswith(message)


def test_user_text_never_becomes_query_syntax() -> None:
    assert query_terms('a OR "b" NEAR(c) name:d e* ^f (g) a_b é') == (
        "a",
        "or",
        "b",
        "near",
        "c",
        "name",
        "d",
        "e",
        "f",
        "g",
        "é",
    )
    assert match_expression(query_terms("name:x")) == '"name"* "x"*'
    assert match_expression(query_terms("a OR")) == '"a"* "or"*'
    assert tsquery_text(query_terms("a | !b <-> c:*B")) == "a:* & b:* & c:*"
    for raw in INJECTIONS:
        for term in query_terms(raw):
            assert term.isalnum(), (raw, term)
    assert include_schema_name("plugin_search_docsize", "table", {}) is False
    assert include_schema_name("search_vector", "column", {"table_name": "plugins"}) is False
    assert include_schema_name("plugins", "table", {}) is True


# --- over HTTP: the real publish, review and lifecycle flow ---------------------------------


def test_the_real_flow_keeps_search_in_step(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    publisher.upload(publisher.build("acme.hello")).raise_for_status()

    def describe(source: Path) -> None:
        manifest = source / "plugport.toml"
        text_ = manifest.read_text().replace(
            "Greets whoever the host asks it to.", "Forecasts for the hello world."
        )
        manifest.write_text(text_.replace('tags = ["example"]', 'tags = ["forecast"]'))

    publisher.upload(publisher.build("acme.weather", edit=describe)).raise_for_status()
    assert find(registry, q="hello")["total"] == 0  # waiting for review: not there yet
    with registry.client(registry.token("rex", "review")) as reviewer:
        for name in ("acme.hello", "acme.weather"):
            reviewer.post(
                f"/api/v1/review/{name}/0.1.0/approve", json={"reason": "ok"}
            ).raise_for_status()

    found = find(registry, q="hel")  # as you type
    assert [i["name"] for i in found["items"]] == ["acme.hello", "acme.weather"]
    assert (found["total"], found["total_is_estimate"]) == (2, False)
    assert (found["page"], found["per_page"]) == (1, 20)
    first = found["items"][0]
    assert first["latest_version"] == "0.1.0"
    assert first["score"] > found["items"][1]["score"]
    assert names(registry, q="forecast") == ["acme.weather"]
    assert names(registry, tag="example") == ["acme.hello"]
    assert names(registry) == ["acme.hello", "acme.weather"]  # no q: by downloads, then name
    with registry.client() as client:
        assert client.get("/api/v1/categories").json() == [{"name": "other", "count": 2}]

    with registry.client(publisher.token) as owner, registry.client(registry.admin) as admin:
        owner.post("/api/v1/plugins/acme.hello/unlist").raise_for_status()
        assert names(registry, q="hello") == ["acme.weather"]
        owner.post("/api/v1/plugins/acme.hello/list").raise_for_status()
        admin.post("/api/v1/plugins/acme.hello/suspend", json={"reason": "x"}).raise_for_status()
        assert names(registry, q="hello") == ["acme.weather"]
        with registry.client() as client:
            assert client.get("/api/v1/categories").json() == [{"name": "other", "count": 1}]
        admin.post("/api/v1/plugins/acme.hello/unsuspend").raise_for_status()
        owner.post(
            "/api/v1/plugins/acme.hello/versions/0.1.0/yank", json={"reason": "broken"}
        ).raise_for_status()
        assert names(registry, q="hello") == ["acme.weather"]  # nothing left to install
        owner.post("/api/v1/plugins/acme.hello/versions/0.1.0/unyank").raise_for_status()
        owner.post(
            "/api/v1/plugins/acme.weather/deprecate", json={"reason": "use acme.hello"}
        ).raise_for_status()
        shown = find(registry, q="hello")["items"]
        assert [(i["name"], i["deprecated"]) for i in shown] == [
            ("acme.hello", None),
            ("acme.weather", "use acme.hello"),
        ]
        admin.delete("/api/v1/plugins/acme.weather").raise_for_status()
    assert names(registry, q="forecast") == []
    assert names(registry, q="hello") == ["acme.hello"]
    if registry.engine.dialect.name == "sqlite":  # the external-content index matches its rows
        with registry.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO plugin_search(plugin_search, rank) VALUES ('integrity-check', 1)")
            )


def test_unreviewed_text_never_reaches_search(registry: Registry, tmp_path: Path) -> None:
    """A pending upload cannot rewrite what search shows for a published plugin: only the
    latest published version describes it, and approval (or yanking back) changes that."""
    publisher = Publisher(registry, tmp_path)
    publisher.upload(publisher.build()).raise_for_status()
    reviewer = registry.token("rex", "review")

    def approve(version: str) -> None:
        with registry.client(reviewer) as client:
            client.post(
                f"/api/v1/review/acme.hello/{version}/approve", json={"reason": "ok"}
            ).raise_for_status()

    approve("0.1.0")

    def spam(source: Path) -> None:
        bump("0.2.0")(source)
        manifest = source / "plugport.toml"
        text_ = manifest.read_text().replace(
            "Greets whoever the host asks it to.", "Free casino bonus, visit now."
        )
        manifest.write_text(text_.replace('tags = ["example"]', 'tags = ["casino"]'))

    publisher.upload(publisher.build(edit=spam)).raise_for_status()
    assert names(registry, q="casino") == []  # pending: not searchable
    assert names(registry, tag="casino") == []
    with registry.client() as client:
        shown = client.get("/api/v1/plugins/acme.hello").json()
    assert "casino" not in shown["description"].lower()

    approve("0.2.0")
    assert names(registry, q="casino") == ["acme.hello"]  # reviewed: now it describes it
    with registry.client(publisher.token) as owner:
        owner.post(
            "/api/v1/plugins/acme.hello/versions/0.2.0/yank", json={"reason": "spam"}
        ).raise_for_status()
    assert names(registry, q="casino") == []  # back to 0.1.0's text
    assert names(registry, q="greets") == ["acme.hello"]


# --- ranking ------------------------------------------------------------------------------


def test_ranking(registry: Registry) -> None:
    engine = registry.engine
    seed(engine, "rank.described", description="a small quokka helper", downloads=900)
    seed(engine, "rank.tagged", tags=["quokka", "misc"], downloads=500)
    seed(engine, "rank.quokka", downloads=1)
    seed(engine, "rank.unrelated", description="nothing to see", downloads=5000)
    # name x3 > tags x2 > description x1, whatever the downloads
    assert names(registry, q="quokka") == ["rank.quokka", "rank.tagged", "rank.described"]
    assert names(registry, q="quo") == ["rank.quokka", "rank.tagged", "rank.described"]
    assert names(registry, q="QUOKKA helper") == ["rank.described"]  # every word must match
    assert names(registry, q="quokka", sort="downloads") == [
        "rank.described",
        "rank.tagged",
        "rank.quokka",
    ]

    # an exact name comes first, even when another plugin's text matches far better
    seed(engine, "acme.cat", description="a long story about nothing in particular " * 5)
    seed(engine, "cat.acme", display_name="Acme cat", tags=["cat", "acme"])
    assert names(registry, q="acme cat") == ["cat.acme", "acme.cat"]
    assert names(registry, q="acme.cat") == ["acme.cat", "cat.acme"]
    assert names(registry, q="  ACME.Cat ") == ["acme.cat", "cat.acme"]

    # deprecated plugins come after the others, unless named exactly; other sorts ignore it
    seed(engine, "dep.widget", deprecated_reason="use dep.other", replaced_by="dep.other")
    seed(engine, "dep.other", description="a widget")
    assert names(registry, q="widget") == ["dep.other", "dep.widget"]
    assert names(registry, q="dep.widget") == ["dep.widget", "dep.other"]
    assert names(registry, q="widget", sort="name") == ["dep.other", "dep.widget"]
    assert names(registry, q="widget", sort="downloads") == ["dep.other", "dep.widget"]

    # the index follows direct changes of the text too (no service tells it)
    with registry.engine.begin() as connection:
        connection.execute(
            text("UPDATE plugins SET description = 'now about wombats' WHERE name = :n"),
            {"n": "rank.described"},
        )
    assert names(registry, q="wombat") == ["rank.described"]
    assert names(registry, q="quokka") == ["rank.quokka", "rank.tagged"]


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "few_granted", [200, 0], ids=["rare-permission-as-a-list", "every-plugin-tested"]
)
def test_filters(registry: Registry, few_granted: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # both ways a permission filter is searched give the same answers (SqlSearchBackend._granted)
    monkeypatch.setattr(search_base, "FEW_GRANTED", few_granted)
    engine = registry.engine
    seed(
        engine,
        "flt.net",
        V(engines={"myapp": ">=2"}, permissions={"network": ["api.x.com"]}),
        categories=["integration"],
        tags=["http"],
    )
    seed(
        engine,
        "flt.store",
        V(engines={"myapp": "<2"}, permissions={"storage": 1024}),
        categories=["data", "integration"],
        tags=["db", "http"],
    )
    seed(
        engine,
        "flt.events",
        V(permissions={"events": {"publish": [], "subscribe": ["a.*"]}}),
        categories=["automation"],
    )
    seed(engine, "flt.ui", V(permissions={"ui": ["widgets"]}), categories=["ui"])
    seed(engine, "flt.config", V(permissions={"config": True}))
    seed(
        engine,
        "flt.none",
        V(
            permissions={
                "network": [],
                "storage": 0,
                "config": False,
                "ui": [],
                "events": {"publish": []},
            }
        ),
    )
    # only the latest published version's permissions count
    seed(engine, "flt.grew", V("1.0.0"), V("2.0.0", permissions={"network": ["a.com"]}))
    seed(
        engine,
        "flt.shrank",
        V("1.0.0", permissions={"network": ["a.com"]}),
        V("2.0.0"),
        V("3.0.0", permissions={"network": ["b.com"]}, status="pending_review"),
    )
    # compatibility: any published, non-yanked, final version for that host will do
    seed(engine, "flt.both", V("1.0.0", {"myapp": "<2"}), V("2.0.0", {"myapp": ">=2"}))
    seed(
        engine,
        "flt.yankold",
        V("1.0.0", {"myapp": "<2"}, yanked="bad"),
        V("2.0.0", {"myapp": ">=2"}),
    )
    seed(engine, "flt.pre", V("1.0.0", {"myapp": ">=2"}), V("2.0.0rc1", {"myapp": "<2"}))
    # never shown, whatever matches
    hidden = V(permissions={"network": ["x.com"]})
    seed(engine, "flt.unlisted", hidden, listed=False, categories=["integration"])
    seed(engine, "flt.suspended", hidden, suspended=True, categories=["integration"])
    seed(
        engine, "flt.pending", hidden._replace(status="pending_review"), categories=["integration"]
    )
    seed(engine, "flt.rejected", hidden._replace(status="rejected"), categories=["integration"])
    seed(engine, "flt.yanked", hidden._replace(yanked="gone"), categories=["integration"])
    everything = [
        "flt.both",
        "flt.config",
        "flt.events",
        "flt.grew",
        "flt.net",
        "flt.none",
        "flt.pre",
        "flt.shrank",
        "flt.store",
        "flt.ui",
        "flt.yankold",
    ]

    assert names(registry, sort="name") == everything
    assert names(registry, category="integration", sort="name") == ["flt.net", "flt.store"]
    assert names(registry, category="security") == []
    assert names(registry, tag="http", sort="name") == ["flt.net", "flt.store"]
    assert names(registry, tag="db", category="integration") == ["flt.store"]
    assert names(registry, permission="network", sort="name") == ["flt.grew", "flt.net"]
    assert names(registry, permission="storage") == ["flt.store"]
    assert names(registry, permission="events") == ["flt.events"]
    assert names(registry, permission="ui") == ["flt.ui"]
    assert names(registry, permission="config") == ["flt.config"]
    assert find(registry, permission="mail", sort="rating")["total"] == 0  # nobody asks for it
    assert names(registry, permission="network", category="integration") == ["flt.net"]
    assert names(registry, permission="network", sort="rating") == ["flt.grew", "flt.net"]
    unconstrained = sorted(
        {*everything} - {"flt.net", "flt.store", "flt.both", "flt.yankold", "flt.pre"}
    )
    assert names(registry, host="myapp", host_version="1.5", sort="name") == sorted(
        [*unconstrained, "flt.both", "flt.store"]
    )
    assert names(registry, host="myapp", host_version="2.5", sort="name") == sorted(
        [*unconstrained, "flt.both", "flt.net", "flt.pre", "flt.yankold"]
    )
    assert names(registry, host="otherapp", host_version="1", sort="name") == everything
    narrowed = find(registry, host="myapp", host_version="2.5", tag="http", per_page=1)
    assert ([i["name"] for i in narrowed["items"]], narrowed["total"]) == (["flt.net"], 1)
    paged = find(registry, host="myapp", host_version="1.5", sort="name", per_page=2, page=2)
    assert [i["name"] for i in paged["items"]] == ["flt.events", "flt.grew"]
    assert paged["total"] == len(unconstrained) + 2
    with registry.client() as client:
        assert client.get("/api/v1/categories").json() == [
            {"name": "integration", "count": 2},
            {"name": "automation", "count": 1},
            {"name": "data", "count": 1},
            {"name": "ui", "count": 1},
        ]


# --- sorts and paging -------------------------------------------------------------------------


def test_sorts_and_pagination(registry: Registry) -> None:
    engine = registry.engine
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ids = {
        "srt.a": seed(engine, "srt.a", downloads=10, rating_count=2, rating_sum=10, updated_at=t0),
        "srt.b": seed(
            engine,
            "srt.b",
            downloads=30,
            rating_count=1,
            rating_sum=5,
            updated_at=t0 + timedelta(days=2),
        ),
        "srt.c": seed(
            engine,
            "srt.c",
            downloads=20,
            rating_count=4,
            rating_sum=16,
            updated_at=t0 + timedelta(days=1),
        ),
        "srt.d": seed(
            engine, "srt.d", V("1.0.0"), V("1.1.0"), downloads=20, updated_at=t0 + timedelta(days=3)
        ),
    }
    now = today()
    stats = [
        ("srt.c", "1.0.0", now, 50),
        ("srt.d", "1.0.0", now - timedelta(days=6), 3),
        ("srt.d", "1.1.0", now - timedelta(days=1), 2),
        ("srt.d", "1.1.0", now, 0),
        ("srt.b", "1.0.0", now - timedelta(days=2), 1),
        ("srt.a", "1.0.0", now - timedelta(days=7), 900),  # a week ago: not trending
        ("srt.b", "1.0.0", now - timedelta(days=100), 1000),
    ]
    add_stats(engine, [(ids[n], v, d, k) for n, v, d, k in stats])

    expected = {
        "downloads": ["srt.b", "srt.c", "srt.d", "srt.a"],  # c and d tie at 20: by name
        "rating": ["srt.a", "srt.b", "srt.c", "srt.d"],  # 5.0 (2) > 5.0 (1) > 4.0 > unrated
        "recent": ["srt.d", "srt.b", "srt.c", "srt.a"],
        "trending": ["srt.c", "srt.d", "srt.b", "srt.a"],  # 50, 5, 1, 0 in the last 7 days
        "name": ["srt.a", "srt.b", "srt.c", "srt.d"],
    }
    for sort, order in expected.items():
        assert names(registry, sort=sort) == order, sort
        assert names(registry, q="srt", sort=sort) == order, sort
        pages = [find(registry, sort=sort, per_page=3, page=p) for p in (1, 2, 3)]
        assert [len(p["items"]) for p in pages] == [3, 1, 0]
        assert {p["total"] for p in pages} == {4}
        assert [i["name"] for p in pages for i in p["items"]] == order
    assert names(registry) == expected["downloads"]  # the default without q
    # relevance: equal text scores fall back to the name, so pages never overlap
    relevance = [find(registry, q="srt", per_page=1, page=p) for p in (1, 2, 3, 4)]
    assert [p["items"][0]["name"] for p in relevance] == expected["name"]
    assert relevance[0]["items"][0]["rating"] == {"average": 5.0, "count": 2}


def add_stats(engine: Engine, rows: list[tuple[int, str, date, int]]) -> None:
    with Session(engine) as session, session.begin():
        session.add_all(
            DailyStat(plugin_id=p, version=v, day=d, downloads=n) for p, v, d, n in rows
        )


# --- at scale: bounded counts, few candidates, caches, indexes ---------------------------------
# Each shortcut is shrunk here (a count limit of 3, two candidates) so a handful of rows
# exercises what 100,000 plugins would; the answer must be the one without the shortcut.


def search(engine: Engine, **params: str) -> SearchResult:
    with make_sessions(engine)() as session:
        query = SearchQuery.parse(**params)
        return search_backend(session).search(session, query, today=today())


def shown(result: SearchResult) -> list[str]:
    return [hit.plugin.name for hit in result.hits]


def test_totals_are_exact_up_to_the_count_limit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(engine)
    for i in range(5):
        network = {"network": ["a.com"]} if i else {}
        seed(
            engine, f"cap.p{i}", V(permissions=network), description="capybara", tags=[f"t{i % 2}"]
        )
    seed(engine, "cap.hidden", description="capybara", listed=False)
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 3)

    first = search(engine, per_page="2")
    assert (shown(first), first.total, first.total_is_estimate) == (["cap.p0", "cap.p1"], 3, True)
    worded = search(engine, q="capybara", sort="name", per_page="2")
    assert (worded.total, worded.total_is_estimate) == (3, True)
    granted = search(engine, permission="network", per_page="1")
    assert (shown(granted), granted.total, granted.total_is_estimate) == (["cap.p1"], 3, True)
    # the last page tells the total itself, without counting
    whole = search(engine, q="capybara", per_page="10")
    assert (whole.total, whole.total_is_estimate) == (5, False)
    last = search(engine, per_page="2", page="3")
    assert (shown(last), last.total, last.total_is_estimate) == (["cap.p4"], 5, False)
    # fewer matches than the limit: exact, counted
    narrowed = search(engine, tag="t1", per_page="1")
    assert (narrowed.total, narrowed.total_is_estimate) == (2, False)
    beyond = search(engine, tag="t1", per_page="1", page="9")
    assert (beyond.hits, beyond.total, beyond.total_is_estimate) == ([], 2, False)
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 10)
    granted = search(engine, permission="network", per_page="1")
    assert (granted.total, granted.total_is_estimate) == (4, False)


def relevance_pages(engine: Engine, **params: str) -> list[tuple[list[str], list[float | None]]]:
    pages = []
    for page in range(1, 8):
        result = search(engine, per_page="3", page=str(page), **params)
        pages.append((shown(result), [hit.score for hit in result.hits]))
    return pages


RELEVANCE_QUERIES: list[dict[str, str]] = [
    {"q": "otter"},
    {"q": "otter.pup"},  # a plugin's exact name
    {"q": "otter", "category": "data"},
    {"q": "ott", "tag": "river"},
    {"q": "otter", "permission": "network"},
]


def seed_otters(engine: Engine) -> None:
    for i in range(6):  # equal text: equal scores, so ties by name
        seed(engine, f"tie.t{i}", description="a river otter", categories=["data"])
    for i in range(4):
        seed(
            engine,
            f"otter.o{i}",
            V(permissions={"network": ["x.com"]} if i % 2 else {}),
            tags=["river"] if i < 3 else [],
            description="otter " * i,
            deprecated_reason="old" if i == 1 else None,
        )
    seed(engine, "otter.pup", description="a small otter", categories=["data"])
    seed(engine, "zoo.otter", tags=["otter", "river"], deprecated_reason="closed")
    seed(engine, "zoo.hidden", description="otter", suspended=True)
    seed(engine, "zoo.other", description="no such animal")


def test_relevance_from_a_few_candidates_is_the_full_ranking(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the best-scored few candidates are filtered and ordered; with every filter, an
    exact name, deprecated plugins and ties, every page is what ranking all matches gives."""
    upgrade(engine)
    seed_otters(engine)

    monkeypatch.setattr(SqlSearchBackend, "_CANDIDATES", 10**6)  # every match a candidate
    expected = {str(q): relevance_pages(engine, **q) for q in RELEVANCE_QUERIES}
    assert expected[str(RELEVANCE_QUERIES[1])][0][0][0] == "otter.pup"
    ranked = [name for names_, _ in expected[str(RELEVANCE_QUERIES[0])] for name in names_]
    assert len(ranked) == 12
    assert set(ranked[-2:]) == {"otter.o1", "zoo.otter"}  # deprecated: last
    monkeypatch.setattr(SqlSearchBackend, "_CANDIDATES", 2)
    monkeypatch.setattr(SqlSearchBackend, "_MORE_CANDIDATES", 4)
    monkeypatch.setattr(search_sqlite, "RANKING_DEPTH", 5)
    monkeypatch.setattr(search_postgres, "RANKING_DEPTH", 5)
    for _ in range(2):  # the second time from the kept rankings
        for q in RELEVANCE_QUERIES:
            assert relevance_pages(engine, **q) == expected[str(q)], q


def test_common_words_rank_the_plugins_named_by_them_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words in ``_TIERED_FROM`` names or more rank the plugins so named before the others,
    most downloaded first, and a first page of them scores no match but its own: nothing is
    ranked to find it. Every page from a few candidates is still what ordering all matches
    by tier (the named by downloads, the others by score) gives, through every filter, an
    exact name and deprecated plugins."""
    upgrade(engine)
    seed_otters(engine)
    seed(engine, "long.otter", description="a tale told at great length and " * 8)
    seed(engine, "shy.mole", description="otter " * 4)  # out-scores long.otter
    with engine.begin() as connection:  # otter.o0, scored least of the named, downloaded most
        connection.execute(text("UPDATE plugins SET downloads = 9 WHERE name = 'otter.o0'"))

    def order() -> list[str]:
        return [name for names_, _ in relevance_pages(engine, q="otter") for name in names_]

    untiered = order()
    assert untiered.index("shy.mole") < untiered.index("long.otter")
    assert untiered[0] != "otter.o0"
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    search_sqlite._RANKINGS.clear()
    search_postgres._RANKINGS.clear()
    tiered = order()
    assert sorted(tiered) == sorted(untiered)
    named = [name for name in tiered if ".otter" in name or name.startswith("otter.")]
    live = [name for name in named if name not in ("otter.o1", "zoo.otter")]  # not deprecated
    assert tiered[: len(live)] == live  # then the rest, deprecated last
    assert live == ["otter.o0", *sorted(set(live) - {"otter.o0"})]  # downloads, then name
    assert tiered.index("long.otter") < tiered.index("shy.mole")

    search_sqlite._RANKINGS.clear()
    search_postgres._RANKINGS.clear()
    first = search(engine, q="otter", per_page="3")
    assert shown(first) == live[:3]
    assert all(hit.score is not None and hit.score > 0 for hit in first.hits)
    dialect = search_sqlite if engine.dialect.name == "sqlite" else search_postgres
    assert engine not in dialect._RANKINGS._by_database  # nothing ranked

    monkeypatch.setattr(SqlSearchBackend, "_CANDIDATES", 10**6)  # every match a candidate
    expected = {str(q): relevance_pages(engine, **q) for q in RELEVANCE_QUERIES}
    monkeypatch.setattr(SqlSearchBackend, "_CANDIDATES", 2)
    monkeypatch.setattr(SqlSearchBackend, "_MORE_CANDIDATES", 4)
    monkeypatch.setattr(search_sqlite, "RANKING_DEPTH", 5)
    monkeypatch.setattr(search_postgres, "RANKING_DEPTH", 5)
    search_sqlite._RANKINGS.clear()
    search_postgres._RANKINGS.clear()
    for _ in range(2):  # the second time from the kept rankings
        for q in RELEVANCE_QUERIES:
            assert relevance_pages(engine, **q) == expected[str(q)], q


def seed_short_words(engine: Engine) -> None:
    """Plugins named by words starting with 'ot', whose downloads order them otherwise than
    their scores do, and plugins with 'otter' only in their text."""
    seed(engine, "otter.pop", downloads=500)
    seed(engine, "otter.mid", downloads=50, description="otter otter otter", categories=["data"])
    seed(engine, "otter.tie", downloads=50)  # as many as otter.mid: after it, by name
    seed(engine, "otter.low", downloads=5, tags=["otter"])
    seed(engine, "river.oth", downloads=0)  # 'oth' starts with 'ot' too
    seed(engine, "otter.old", downloads=1000, deprecated_reason="old")
    seed(engine, "otter.hidden", downloads=10**6, listed=False)
    seed(engine, "zoo.a1", downloads=10**5, description="otter " * 5, categories=["data"])
    seed(engine, "zoo.a2", downloads=0, description="an otter")
    seed(engine, "zoo.a3", downloads=10**5, description="otter", deprecated_reason="old")


SHORT_WORD_ORDER = [
    # named, most downloaded first, ties by name
    *("otter.pop", "otter.mid", "otter.tie", "otter.low", "river.oth"),
    *("zoo.a1", "zoo.a2"),  # the other matches, by score
    *("otter.old", "zoo.a3"),  # deprecated last: named by downloads, then the rest by score
]


def test_words_in_many_names_rank_the_named_plugins_by_downloads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word, or the start of one, found in ``_TIERED_FROM`` names or more ranks the
    plugins so named most downloaded first (a page read off the downloads index, unscored
    matches left unscored), then the other matches by score, deprecated plugins last; every
    page agrees with that whole order, and each hit still has its score."""
    upgrade(engine)
    seed_short_words(engine)

    def order(**params: str) -> list[str]:
        return [name for names_, _ in relevance_pages(engine, **params) for name in names_]

    untiered = order(q="ot")
    assert sorted(untiered) == sorted(SHORT_WORD_ORDER)
    assert untiered != SHORT_WORD_ORDER  # by score alone while the word is in few names
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    search_sqlite._RANKINGS.clear()
    search_postgres._RANKINGS.clear()
    assert order(q="ot") == SHORT_WORD_ORDER  # pages of 3: the third reaches past the named
    assert order(q="OT!") == SHORT_WORD_ORDER
    first = search(engine, q="ot", per_page="5")
    assert shown(first) == SHORT_WORD_ORDER[:5]
    assert all(hit.score is not None and hit.score > 0 for hit in first.hits)
    assert (first.total, first.total_is_estimate) == (9, False)
    assert shown(search(engine, q="ot", category="data")) == ["otter.mid", "zoo.a1"]
    assert shown(search(engine, q="ot", per_page="2", page="2")) == ["otter.tie", "otter.low"]
    # an exact name still comes first
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 1)
    assert order(q="otter.tie") == ["otter.tie"]
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    # a whole word in as many names ranks them so too ('river.oth' is not named by it)
    assert order(q="otter")[:4] == ["otter.pop", "otter.mid", "otter.tie", "otter.low"]
    # and a word set in fewer names by score
    assert order(q="otter pop") == ["otter.pop"]
    assert order(q="otter ti") == ["otter.tie"]


def test_a_current_word_list_tells_a_word_in_many_names_without_counting_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, the kept word list (built for suggestions) knows how many names have each
    common word: while it is of the index as it is, a word (or a prefix of one) it knows to be
    in ``_TIERED_FROM`` names or more ranks them first without counting them again, in the
    same order as counting gives; once the index changed, they are counted again."""
    upgrade(engine)
    if engine.dialect.name != "sqlite":
        return
    seed_short_words(engine)
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    monkeypatch.setattr(typos, "NAMED_PLUGINS", 3)
    sent: list[str] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "count(*)" in statement:
            sent.extend(str(p) for p in parameters if "{name}" in str(p))

    def names_counted(**params: str) -> tuple[list[str], list[str]]:
        sent.clear()
        clear_caches()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            order = shown(search(engine, **params))
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        return order, list(sent)

    counted, asked = names_counted(q="ot")
    assert counted == SHORT_WORD_ORDER
    assert asked  # no word list yet: the names are counted
    with make_sessions(engine)() as session:  # the word list, as a first suggestion builds it
        search_sqlite._VOCABULARIES.get(session)
    assert names_counted(q="ot") == (SHORT_WORD_ORDER, [])
    assert names_counted(q="otter") == (counted[:4] + counted[5:], [])  # 'river.oth' is not
    assert names_counted(q="otter pop")[1]  # two words: counted
    seed(engine, "otter.new", downloads=1)  # the index changed: the list is not current
    order, asked = names_counted(q="ot")
    assert asked
    assert order[:6] == [*SHORT_WORD_ORDER[:4], "otter.new", "river.oth"]


def test_postgres_walks_a_popular_page_off_one_index(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A popular-first page on PostgreSQL is read off ``ix_plugins_popular_walk`` (0026)
    alone: its order, the name's stored words and the id, no row fetched (once vacuum has
    marked the pages all-visible, as it does for a table that is mostly read)."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed_short_words(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE plugins"))
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    sent: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])))
    with make_sessions(engine)() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a handful of rows here
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
        result = search_backend(session).search(session, SearchQuery(q="ot"), today=today())
        walk, params = next(s for s in sent if "name_vector @@" in s[0] and "ORDER BY" in s[0])
        explained = session.connection().exec_driver_sql(f"EXPLAIN {walk}", params)
        plan = " ".join(row[0] for row in explained)
    assert [hit.plugin.name for hit in result.hits][:4] == SHORT_WORD_ORDER[:4]
    assert "Index Only Scan using ix_plugins_popular_walk" in plan, plan


def test_postgres_reads_a_rating_page_off_the_averages_index(engine: Engine) -> None:
    """A rating page on PostgreSQL is the first entries of ``ix_plugins_rating_walk`` (0028),
    in its order: no rated plugin's average is computed and no sort runs. The unrated follow
    by name, as on SQLite."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    rated = {  # name: (ratings, sum): averages 4.5, 4.5 (fewer ratings), 4, 3, 2
        "acme.top": (10, 45),
        "acme.also": (2, 9),
        "acme.good": (5, 20),
        "acme.fine": (1, 3),
        "acme.meh": (3, 6),
    }
    for name, (count, total) in rated.items():
        seed(engine, name, rating_count=count, rating_sum=total)
    seed(engine, "acme.unrated")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE plugins"))
    sent: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])))
    with make_sessions(engine)() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a handful of rows here
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
        result = search_backend(session).search(
            session, SearchQuery(sort="rating", per_page=3), today=today()
        )
        page, params = next(s for s in sent if "rating_count > 0 ORDER BY" in s[0])
        explained = session.connection().exec_driver_sql(f"EXPLAIN {page}", params)
        plan = "\n".join(row[0] for row in explained)
    assert [hit.plugin.name for hit in result.hits] == ["acme.top", "acme.also", "acme.good"]
    assert "ix_plugins_rating_walk" in plan, plan
    assert "Sort" not in plan, plan
    everything = shown(search(engine, sort="rating"))
    assert everything == [*rated, "acme.unrated"]


def name_word_counts(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """PostgreSQL: ``(kept, counted)``, how many plugins have each word in their name as
    ``name_words`` keeps it (words no name has any more left out) and as the rows say."""
    with engine.connect() as connection:
        kept = dict(connection.execute(text("SELECT word, plugins FROM name_words")).all())
        counted = dict(
            connection.execute(
                text(
                    "SELECT w, count(*) FROM plugins,"
                    " unnest(tsvector_to_array(name_vector)) AS w GROUP BY w"
                )
            ).all()
        )
    return {w: n for w, n in kept.items() if n}, counted


def test_name_word_counts_follow_every_change(engine: Engine) -> None:
    """How many plugins have each word in their name (0029, PostgreSQL) stays what the rows
    say through the backfill, publishing, a bulk insert, a rename, a delete, a change that
    leaves names alone, and a downgrade and upgrade."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed(engine, "otter.pop")
    seed(engine, "otter.mid", description="otter otter")
    seed(engine, "river.otter")  # 'otter' twice in the index, once in this name
    downgrade(engine, "0028")
    seed(engine, "river.new")  # while nothing keeps the counts: the backfill finds it
    upgrade(engine)
    kept, counted = name_word_counts(engine)
    assert kept == counted == {"otter": 3, "pop": 1, "mid": 1, "river": 2, "new": 1}
    with engine.begin() as connection:  # several rows in one statement
        connection.execute(
            Plugin.__table__.insert(),
            [{"name": f"bulk.b{i}", "namespace_id": 1} for i in range(3)],
        )
        connection.execute(
            text("UPDATE plugins SET name = 'river.renamed' WHERE name = 'river.new'")
        )
        connection.execute(text("DELETE FROM plugins WHERE name = 'otter.mid'"))
        connection.execute(text("UPDATE plugins SET downloads = downloads + 1"))
    kept, counted = name_word_counts(engine)
    assert kept == counted
    assert (counted["otter"], counted["bulk"], counted["renamed"]) == (2, 3, 1)
    assert not {"new", "mid"} & set(kept)


def test_postgres_knows_most_word_counts_without_counting_names(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a term is in ``_TIERED_FROM`` names or more is read off ``name_words`` where
    that decides it (a word in that many names; words in fewer together), and the names are
    counted only where it does not; the answer is the count's either way."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed_short_words(engine)
    for name in ("alpha.one", "alpine.two", "alps.three"):  # 'alp': three words, one name each
        seed(engine, name)
    monkeypatch.setattr(SqlSearchBackend, "_TIERED_FROM", 3)
    with make_sessions(engine)() as session:
        backend = search_backend(session)
        counted: list[tuple[str, ...]] = []
        original = backend._named_count

        def count(session_: Session, terms: tuple[str, ...], limit: int) -> int:
            counted.append(terms)
            return original(session_, terms, limit)

        monkeypatch.setattr(backend, "_named_count", count)
        decided = {
            terms: backend._named_many(session, terms)
            for terms in [("ot",), ("zoo",), ("river",), ("heron",), ("alp",), ("otter", "zoo")]
        }
        truth = {terms: original(session, terms, 3) >= 3 for terms in decided}
    assert decided == truth
    assert [decided[t] for t in [("ot",), ("zoo",), ("alp",), ("river",), ("heron",)]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert counted == [("alp",), ("otter", "zoo")]  # the only ones the counts leave open
    # The words a term starts are read off the key alone (0030), once vacuum has marked the
    # table's pages all-visible.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE name_words"))
        connection.execute(text("SET enable_seqscan = off"))  # a handful of rows here
        connection.execute(text("SET enable_bitmapscan = off"))
        bounds = search_postgres._name_word_bounds(1).compile(dialect=engine.dialect)
        plan = " ".join(
            row[0]
            for row in connection.exec_driver_sql(
                f"EXPLAIN {bounds}", bounds.construct_params({"lo0": "al", "hi0": "am"})
            )
        )
    assert "Index Only Scan using name_words_pkey" in plan, plan


def test_kept_rankings_follow_every_change_of_the_text(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a ranking is kept under the FTS5 index's version, on PostgreSQL under the
    search generation: either way a change of the text is a new version, a download is not."""
    upgrade(engine)
    dialect = search_sqlite if engine.dialect.name == "sqlite" else search_postgres
    monkeypatch.setattr(dialect, "RANKING_DEPTH", 3)
    monkeypatch.setattr(SqlSearchBackend, "_CANDIDATES", 1)
    for name in ("bdg.a", "bdg.b", "bdg.c"):
        seed(engine, name, description="badger")

    def best() -> list[str]:
        return shown(search(engine, q="badger", per_page="1"))

    assert best() == ["bdg.a"]
    kept = dialect._RANKINGS._by_database[engine]
    assert list(kept) == [("badger",)]
    first = kept[("badger",)][0]
    with engine.begin() as connection:
        connection.execute(text("UPDATE plugins SET tags = '[\"badger\"]' WHERE name = 'bdg.c'"))
    assert best() == ["bdg.c"]
    version = kept[("badger",)][0]
    assert version != first  # scored afresh
    with engine.begin() as connection:  # a column outside the text index keeps the ranking
        connection.execute(text("UPDATE plugins SET downloads = 7 WHERE name = 'bdg.c'"))
    assert best() == ["bdg.c"]
    assert kept[("badger",)][0] == version
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM plugins WHERE name = 'bdg.c'"))
    assert best() == ["bdg.a"]
    assert shown(search(engine, q="badger")) == ["bdg.a", "bdg.b"]


def trending_on(engine: Engine, day: date, *, commit: bool = True) -> list[str]:
    """Trending on ``day``, in a transaction committed as a request's is (or rolled back)."""
    with make_sessions(engine)() as session:
        query = SearchQuery(sort="trending")
        found = shown(search_backend(session).search(session, query, today=day))
        if commit:
            session.commit()
        return found


def through_day(engine: Engine) -> date | None:
    with engine.connect() as connection:
        day = connection.execute(text("SELECT through_day FROM trending_state")).scalar()
    return date.fromisoformat(day) if isinstance(day, str) else day


def test_trending_follows_every_count_and_the_day(engine: Engine) -> None:
    """``trending`` is kept by triggers on ``daily_stats`` and summed afresh only when the day
    moves on; whatever happened in between, it is what summing the week gives."""
    upgrade(engine)
    a, b = seed(engine, "trd.a"), seed(engine, "trd.b")
    seed(engine, "trd.c", listed=False)
    day = today()
    add_stats(engine, [(a, "1.0.0", day, 5), (b, "1.0.0", day - timedelta(days=7), 50)])
    assert trending_on(engine, day) == ["trd.a", "trd.b"]  # summed: b's 50 are too old
    add_stats(engine, [(b, "1.0.0", day, 9)])  # added by the trigger
    assert trending_on(engine, day) == ["trd.b", "trd.a"]
    changes = [
        ("UPDATE daily_stats SET downloads = 20 WHERE plugin_id = :a", ["trd.a", "trd.b"]),
        ("UPDATE daily_stats SET day = :old WHERE plugin_id = :a", ["trd.b", "trd.a"]),
        ("UPDATE daily_stats SET day = :day WHERE plugin_id = :a", ["trd.a", "trd.b"]),
        ("DELETE FROM daily_stats WHERE plugin_id = :a", ["trd.b", "trd.a"]),
        ("UPDATE plugins SET listed = false WHERE id = :b", ["trd.a"]),  # shown: never behind
        ("UPDATE plugins SET listed = true WHERE id = :b", ["trd.b", "trd.a"]),
    ]
    old = day - timedelta(days=7)
    for change, expected in changes:
        with engine.begin() as connection:
            connection.execute(text(change), {"a": a, "b": b, "day": day, "old": old})
        assert trending_on(engine, day) == expected, change
    assert through_day(engine) == day  # summed once: every change since came by trigger
    assert trending_on(engine, day + timedelta(days=6)) == ["trd.b", "trd.a"]  # still this week
    later = day + timedelta(days=7)
    assert trending_on(engine, later, commit=False) == ["trd.a", "trd.b"]
    assert through_day(engine) == day + timedelta(days=6)  # rolled back with its transaction
    assert trending_on(engine, later) == ["trd.a", "trd.b"]  # nothing this week: by name
    add_stats(engine, [(a, "1.0.0", later, 1), (b, "1.0.0", later, 2)])
    assert trending_on(engine, later) == ["trd.b", "trd.a"]
    assert trending_on(engine, day) == ["trd.b", "trd.a"]  # the week never moves back
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT plugin_id, downloads FROM trending")).all()
        summed = connection.execute(
            text(
                "SELECT plugin_id, sum(downloads) FROM daily_stats WHERE day >= :since"
                " GROUP BY plugin_id"
            ),
            {"since": later - timedelta(days=6)},
        ).all()
    assert {k: v for k, v in kept if v} == dict(summed)


def test_the_host_filter_stops_at_a_full_page_and_estimates_the_total(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(engine)
    for i in range(8):
        engines = {"myapp": "<2"} if i % 2 else {}
        seed(engine, f"hst.p{i}", V(engines=engines), downloads=100 - i)
    monkeypatch.setattr(SqlSearchBackend, "_HOST_BATCH", 2)
    newer = search(engine, host="myapp", host_version="3", per_page="1")
    assert shown(newer) == ["hst.p0"]
    # stopped after 6 of the 8, 3 of them compatible: about half of 8
    assert (newer.total, newer.total_is_estimate) == (4, True)
    deeper = search(engine, host="myapp", host_version="3", per_page="2", page="2")
    assert shown(deeper) == ["hst.p4", "hst.p6"]
    whole = search(engine, host="myapp", host_version="3", per_page="10")
    assert (shown(whole), whole.total, whole.total_is_estimate) == (
        ["hst.p0", "hst.p2", "hst.p4", "hst.p6"],
        4,
        False,
    )
    assert search(engine, host="myapp", host_version="1", per_page="3").total == 8


def query_plans(engine: Engine, **params: str) -> list[str]:
    """The plan of every SELECT one search runs, but its settings (PostgreSQL told to avoid
    sequential scans, so tiny tables do not hide an index that could not be used)."""
    statements: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "set_config(" not in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        search(engine, **params)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if not sqlite:
            connection.exec_driver_sql("SET enable_seqscan = off")
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        return [
            " ".join(str(row[-1]) for row in connection.exec_driver_sql(prefix + sql, args))
            for sql, args in statements
        ]


def test_searches_use_the_indexes_made_for_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexes are partial: a query whose predicate drifted from the index's would still
    give the right answer, only by reading every row. So look at the plans."""
    upgrade(engine)
    asks = {
        "network": ["a.com"],
        "storage": 1024,
        "events": {"subscribe": ["a.*"]},
        "ui": ["widgets"],
        "config": True,
        "credentials": {"jira": ["a.com/rest/"]},
        "secrets": {"reveal": ["jira"]},
        "webhooks": {"receive": ["push"], "deliver": ["a.com/in/"]},
        "mail": {"to": ["*@a.com"]},
        "tasks": {"submit": ["X"]},
    }
    for i in range(3):
        seed(engine, f"idx.p{i}", V(permissions=asks), categories=["ui"], tags=["x"])
    for permission in PERMISSION_NAMES:
        index = f"ix_plugin_versions_grants_{permission}"
        plans = query_plans(engine, permission=permission)  # three: read as a list
        assert index in plans[0], (permission, plans)
    monkeypatch.setattr(search_base, "FEW_GRANTED", 0)  # as if many: each plugin tested
    for permission in PERMISSION_NAMES:
        index = f"ix_plugin_versions_grants_{permission}"
        plans = query_plans(engine, permission=permission)
        assert index in plans[0], (permission, plans)
        assert index in plans[1], (permission, plans)
        counted = query_plans(engine, permission=permission, per_page="1")
        assert index in counted[2], (permission, counted)
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's choice among usable indexes depends on statistics
    for sort, index in [
        ("downloads", "ix_plugins_visible_downloads"),
        ("recent", "ix_plugins_visible_updated"),
        ("name", "ix_plugins_visible_name"),
        ("rating", "ix_plugins_visible_rated"),
    ]:
        assert index in query_plans(engine, sort=sort)[0], sort
    assert any("ix_trending_downloads" in plan for plan in query_plans(engine, sort="trending"))
    # A tag's or a category's plugins are counted on write (0027): one row is read.
    for listed in ({"category": "ui"}, {"tag": "x"}):
        counting = query_plans(engine, per_page="1", **listed)[1]
        assert "SEARCH plugin_list_counts USING PRIMARY KEY" in counting, listed
    # Both at once are counted from the text index's plugins with the values' words (a
    # superset), each then looked up by id and tested exactly.
    counting = query_plans(engine, per_page="1", tag="x", category="ui")[1]
    assert "SCAN plugin_search VIRTUAL TABLE" in counting
    assert "SEARCH plugins USING INTEGER PRIMARY KEY" in counting
    # With words too, one MATCH asks for both: the index hands over the plugins with the words
    # and the value's words, not every plugin with the words to be tested one by one.
    sent: list[str] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "count(*)" in statement:
            sent.extend(str(p) for p in parameters if isinstance(p, str))

    for listed, phrase in [({"category": "ui"}, '{categories} : "ui"'), ({"tag": "x"}, "{tags}")]:
        sent.clear()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            result = search(engine, q="idx", per_page="1", **listed)
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        assert result.total == 3, listed
        assert any('"idx"*' in match and phrase in match for match in sent), (listed, sent)


# --- refusals and hostile text -----------------------------------------------------------------


def test_bad_parameters_are_400_naming_the_parameter(registry: Registry) -> None:
    seed(registry.engine, "acme.hello")
    with registry.client() as client:
        for params, message in BAD_PARAMS:
            response = client.get("/api/v1/plugins", params=params)
            assert response.status_code == 400, (params, response.text)
            error = error_of(response)
            assert error["code"] == "invalid_input"
            assert error["message"].startswith(message), (params, error)
    assert names(registry) == ["acme.hello"]  # nothing changed


def test_query_syntax_is_text(registry: Registry) -> None:
    seed(registry.engine, "acme.hello", description="says hello")
    for q in INJECTIONS:
        find(registry, q=q)  # 200, whatever it finds
    assert find(registry, q='"')["total"] == 1  # no words: no text filter
    assert names(registry, q="hello)") == ["acme.hello"]
    assert names(registry, q='"hello" OR') == []  # 'or' is a word here, and nothing has it
    assert names(registry, q="name:hello") == []  # no column filters either
    assert names(registry, q="-hello") == ["acme.hello"]  # nor negation
    assert registry.count("plugins") == 1


# --- the migration ------------------------------------------------------------------------------


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_migration_indexes_existing_rows_and_downgrades(engine: Engine) -> None:
    sessions = make_sessions(engine)
    upgrade(engine, "0001")
    # The namespace as schema 0001 had it: only its columns (the model has grown since).
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO namespaces (name, trusted, created_at) "
                "VALUES ('old', false, CURRENT_TIMESTAMP)"
            )
        )
    with sessions() as session, session.begin():
        ns_id = session.execute(text("SELECT id FROM namespaces WHERE name = 'old'")).scalar_one()
        plugin = Plugin(
            name="old.timer",
            namespace_id=ns_id,
            description="counts seconds",
            tags=["clock"],
            latest_version="1.0.0",
        )
        session.add(plugin)
    upgrade(engine)
    with sessions() as session:
        backend = search_backend(session)
        for q in ("timer", "seco", "clock"):
            result = backend.search(session, SearchQuery(q=q), today=today())
            assert [h.plugin.name for h in result.hits] == ["old.timer"], q
    assert "ix_daily_stats_day" in {i["name"] for i in inspect(engine).get_indexes("daily_stats")}

    downgrade(engine, "0001")
    inspector = inspect(engine)
    assert not [t for t in inspector.get_table_names() if t.startswith("plugin_search")]
    assert "search_vector" not in {c["name"] for c in inspector.get_columns("plugins")}
    assert "ix_daily_stats_day" not in {i["name"] for i in inspector.get_indexes("daily_stats")}
    assert not {"search_state", "trending", "trending_state"} & set(inspector.get_table_names())
    with engine.begin() as connection:  # no trigger is left to fail on a write
        connection.execute(text("UPDATE plugins SET description = 'ticks'"))
    upgrade(engine)
    with sessions() as session:
        result = search_backend(session).search(session, SearchQuery(q="tick"), today=today())
        assert [h.plugin.name for h in result.hits] == ["old.timer"]


def test_postgres_knows_how_common_a_tag_or_a_grant_is(engine: Engine) -> None:
    """0015: statistics on the very expressions the tag and permission filters test (without
    them PostgreSQL guessed a common tag rare and read every plugin); SQLite has none."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        downgrade(engine, "0014")  # nothing to undo either
        upgrade(engine)
        return
    for i in range(40):
        seed(
            engine,
            f"st.p{i}",
            V(permissions={"config": i % 2 == 0}),
            tags=["common"] if i % 2 else ["rare", "other"],
            categories=["ui"] if i % 2 else ["data"],
        )
    with engine.begin() as connection:
        connection.execute(text("ANALYZE plugins"))
        connection.execute(text("ANALYZE plugin_versions"))
        kept = connection.execute(
            text(
                "SELECT statistics_name FROM pg_stats_ext_exprs"
                " WHERE statistics_schemaname = current_schema()"
            )
        ).all()
    gathered = {name for (name,) in kept}
    assert {"st_plugins_tags_text", "st_plugins_categories_text"} <= gathered
    assert {f"st_plugin_versions_grants_{p}" for p in PERMISSION_NAMES} <= gathered
    # the planner matches them to what the filters send: estimates near the truth
    estimates = {
        "tag": "SELECT id FROM plugins WHERE tags::text LIKE '%\"common\"%'",
        "category": "SELECT id FROM plugins WHERE categories::text LIKE '%\"ui\"%'",
        "grant": "SELECT id FROM plugin_versions"
        " WHERE manifest #>> '{permissions,config}' = 'true'",
    }
    with engine.connect() as connection:
        for what, query in estimates.items():
            plan = connection.execute(text(f"EXPLAIN (FORMAT JSON) {query}")).scalar_one()
            assert 12 <= plan[0]["Plan"]["Plan Rows"] <= 28, (what, plan)
    downgrade(engine, "0014")
    with engine.connect() as connection:
        left = connection.execute(
            text(
                "SELECT count(*) FROM pg_statistic_ext"
                " WHERE stxnamespace = current_schema()::regnamespace"
            )
        ).scalar_one()
    assert left == 0
    upgrade(engine)


def test_postgres_searches_without_jit_or_parallel_workers(engine: Engine) -> None:
    """A search's plan may cost over ``jit_above_cost`` while reading little: compiling it
    would cost more than running it."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed(engine, "jit.p", description="fast")
    with make_sessions(engine)() as session:
        search_backend(session).search(session, SearchQuery(q="fast"), today=today())
        settings = session.execute(
            text(
                "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')"
            )
        ).one()
    assert tuple(settings) == ("off", "0")


def statements(engine: Engine) -> list[str]:
    """Every statement ``engine`` sends from now on (the listener goes with the test)."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    return sent


def test_postgres_leaves_the_count_out_when_its_planner_expects_many_times_the_limit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting the first thousand plugins with a common tag or word reads thousands of rows;
    the planner's estimate (from ANALYZE's statistics) costs a plan. Only an estimate of
    ``ESTIMATE_MARGIN`` times the limit or more is trusted; below it the count runs and is
    exact, as before."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    for i in range(60):
        seed(engine, f"wom.p{i}", tags=["burrow", "rare"] if i < 4 else ["burrow"])
    with engine.begin() as connection:
        connection.execute(text("ANALYZE plugins"))
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 10)
    sent = statements(engine)
    common = search(engine, tag="burrow", per_page="5")
    assert (common.total, common.total_is_estimate) == (10, True)
    assert [s for s in sent if s.startswith("EXPLAIN")]
    assert not [s for s in sent if s.startswith("SELECT count(*)")]  # not counted
    sent.clear()
    few = search(engine, tag="rare", per_page="2")
    assert (few.total, few.total_is_estimate) == (4, False)
    assert [s for s in sent if s.startswith("SELECT count(*)")]  # counted: exact
    monkeypatch.setattr(search_postgres, "ESTIMATE_MARGIN", 100)  # never sure enough
    sent.clear()
    counted = search(engine, tag="burrow", per_page="5")
    assert (counted.total, counted.total_is_estimate) == (10, True)
    assert [s for s in sent if s.startswith("SELECT count(*)")]


def test_sqlite_leaves_the_count_out_for_a_word_its_kept_word_list_has_in_many_plugins(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The word list kept for suggestions says how many plugins have each common word in
    their name, tags, display name or categories (at least). A lone word in
    ``ESTIMATE_MARGIN`` times the limit's plugins or more is not counted; a word below that,
    two words, a word with a filter, or any word before the list is built, are counted."""
    upgrade(engine)
    if engine.dialect.name != "sqlite":
        return
    for i in range(60):
        tags = ["burrow", "rare"] if i < 4 else ["burrow"]
        seed(engine, f"wom.p{i}", tags=tags, categories=["data"] if i < 30 else [])
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 10)
    monkeypatch.setattr(typos, "COMMON_PLUGINS", 20)  # what the word list remembers
    clear_caches(words=True)

    def counted(sent: list[str]) -> bool:  # the visible matches, joined to plugins
        return any(s.startswith("SELECT count(*)") and "FROM plugins" in s for s in sent)

    sent = statements(engine)
    before = search(engine, q="burrow", per_page="5")  # no word list yet: counted
    assert (before.total, before.total_is_estimate, counted(sent)) == (10, True, True)
    with make_sessions(engine)() as session:
        search_sqlite._VOCABULARIES.get(session)  # what a first suggestion builds
    sent.clear()
    common = search(engine, q="burrow", per_page="5")
    assert (common.total, common.total_is_estimate, counted(sent)) == (10, True, False)
    assert len(shown(common)) == 5
    sent.clear()
    prefix = search(engine, q="bur", per_page="5")  # a word it starts
    assert (prefix.total, prefix.total_is_estimate, counted(sent)) == (10, True, False)
    for params, total, estimate in [
        ({"q": "rare"}, 4, False),  # in too few plugins to be remembered
        ({"q": "burrow rare"}, 4, False),  # two words: the list cannot say
        ({"q": "burrow", "category": "data"}, 10, True),  # filtered: maybe fewer
    ]:
        sent.clear()
        found = search(engine, per_page="2", **params)
        assert (found.total, found.total_is_estimate, counted(sent)) == (total, estimate, True)
    monkeypatch.setattr(search_sqlite, "ESTIMATE_MARGIN", 100)  # never sure enough
    sent.clear()
    strict = search(engine, q="burrow", per_page="5")
    assert (strict.total, strict.total_is_estimate, counted(sent)) == (10, True, True)


def test_a_tags_count_is_exact_where_other_tags_share_its_words(engine: Engine) -> None:
    """SQLite counts a tag's plugins from the text index's plugins with the tag's words, a
    superset ('task' is a word of 'task-manager' too); the exact test leaves only the tag's."""
    upgrade(engine)
    for i in range(5):
        seed(engine, f"tsk.only{i}", tags=["task"], categories=["data"])
    for i in range(4):
        seed(engine, f"tsk.manager{i}", tags=["task-manager"], categories=["task-processor"])
    for i in range(3):
        seed(engine, f"tsk.both{i}", tags=["task-manager", "task"], categories=["ui"])
    seed(engine, "tsk.words", tags=["manager"], categories=["other"], description="task data")
    for params, total in [
        ({"tag": "task"}, 8),
        ({"tag": "task-manager"}, 7),
        ({"category": "data"}, 5),  # not the description's 'data'
        ({"category": "task-processor"}, 4),
        ({"tag": "task", "category": "data"}, 5),
        ({"tag": "manager"}, 1),
    ]:
        found = search(engine, per_page="2", **params)
        assert (found.total, found.total_is_estimate) == (total, False), params
        assert len(found.hits) == min(total, 2), params


def visible_lists(engine: Engine) -> Counter[tuple[str, str]]:
    """How many visible plugins have each tag and category, counted here from the rows."""
    counts: Counter[tuple[str, str]] = Counter()
    with make_sessions(engine)() as session:
        for plugin in session.scalars(select(Plugin)):
            if plugin.listed and not plugin.suspended and plugin.latest_version is not None:
                counts.update(("tags", tag) for tag in set(plugin.tags))
                counts.update(("categories", c) for c in set(plugin.categories))
    return counts


def kept_lists(engine: Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT list, value, plugins FROM plugin_list_counts"))
        return Counter({(str(k), str(v)): int(n) for k, v, n in rows if n})


def test_a_tags_and_a_categorys_totals_follow_every_change(engine: Engine) -> None:
    """Totals by tag and by category stay exact through every way a plugin gains or loses a
    value or its visibility. On SQLite they are kept on write (0027): the kept counts equal
    the rows' after the migration fills them in and after every change, and a downgrade
    leaves no trigger behind."""
    sqlite = engine.dialect.name == "sqlite"
    upgrade(engine, "0026")
    ids = [
        seed(engine, "lst.a", tags=["x", "y", "x"], categories=["ui"]),
        seed(engine, "lst.b", tags=["y"], categories=["ui", "data"]),
        seed(engine, "lst.c", tags=["x-y"], categories=["data"], listed=False),
        seed(engine, "lst.d", tags=["x"], categories=["ui"], suspended=True),
        seed(engine, "lst.e", V(yanked="broken"), tags=["x"], categories=["data"]),
    ]
    upgrade(engine)
    values = [("tags", v) for v in ("x", "y", "x-y", "z")] + [
        ("categories", v) for v in ("ui", "data", "other")
    ]

    def check(step: str) -> None:
        expected = visible_lists(engine)
        if sqlite:
            assert kept_lists(engine) == expected, step
        with make_sessions(engine)() as session:
            listed = search_backend(session).categories(session)
        assert [(c.name, c.count) for c in listed] == sorted(
            ((v, n) for (kind, v), n in expected.items() if kind == "categories"),
            key=lambda item: (-item[1], item[0]),
        ), step
        for listed, value in values:
            found = search(engine, **{listed[:-1] if listed == "tags" else "category": value})
            assert (found.total, found.total_is_estimate) == (expected[listed, value], False), (
                step,
                listed,
                value,
            )

    check("filled in by the migration")
    changes: list[tuple[str, dict[str, Any]]] = [
        ("tags changed", {"tags": ["z", "y"]}),
        ("categories changed", {"categories": ["other"]}),
        ("unlisted", {"listed": False}),
        ("listed again", {"listed": True}),
        ("suspended", {"suspended": True}),
        ("reinstated", {"suspended": False}),
        ("no latest version", {"latest_version": None}),
        ("a latest version again", {"latest_version": "1.0.0"}),
        ("downloads (not watched)", {"downloads": 7}),
    ]
    for step, values_set in changes:
        with make_sessions(engine).begin() as session:
            for plugin in session.scalars(select(Plugin).where(Plugin.id.in_(ids[:2]))):
                for key, value in values_set.items():
                    setattr(plugin, key, value)
        check(step)
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM plugin_versions WHERE plugin_id = :id"), {"id": ids[1]}
        )
        connection.execute(text("DELETE FROM plugins WHERE id = :id"), {"id": ids[1]})
    check("deleted")
    seed(engine, "lst.f", tags=["x", "z"], categories=["data", "ui"])
    check("published")
    if sqlite:
        downgrade(engine, "0026")
        assert "plugin_list_counts" not in inspect(engine).get_table_names()
        with engine.begin() as connection:  # no trigger is left to fail on a write
            connection.execute(text("UPDATE plugins SET tags = '[\"w\"]', listed = 1"))
        upgrade(engine)
        check("filled in again")


def test_postgres_filters_by_tag_and_category_off_their_gin_indexes(engine: Engine) -> None:
    """The filters' expressions are the very ones migration 0024 indexes: the planner can
    read one value's plugins off them (shown here with sequential scans ruled out)."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed(engine, "gin.a", tags=["river", "otter"], categories=["data"])
    seed(engine, "gin.b", tags=["otters"], categories=["ui"])
    with make_sessions(engine)() as session:
        backend = search_backend(session)
        for column, value, index in (
            (Plugin.tags, "river", "ix_plugins_tags_values"),
            (Plugin.categories, "data", "ix_plugins_categories_values"),
        ):
            stmt = select(Plugin.id).where(backend._contains(column, value))
            compiled = stmt.compile(dialect=engine.dialect)
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = (
                session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
            )
            assert index in " ".join(row[0] for row in plan), plan
        assert shown(search(engine, tag="otter")) == ["gin.a"]  # a value, not a substring
        assert shown(search(engine, tag="otters")) == ["gin.b"]
        assert shown(search(engine, category="ui")) == ["gin.b"]


def test_postgres_looks_similar_words_up_off_their_indexes(engine: Engine) -> None:
    """A misspelt word's suggestions are read off the trigram index and the primary key,
    however many edits the word has, and with words just added: the planner chose to test
    every word's trigrams (a scan growing with the vocabulary) for a long word's few hundred
    edits in one ``OR``, and for any word while the index held new words in its pending
    list (migration 0025). The plan is a fresh one, as for a connection's first searches."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    with make_sessions(engine)() as session:
        rng = random.Random(5)  # noqa: S311 - made-up words, as varied as real ones
        letters = "abcdefghijklmnopqrstuvwxyz"
        made_up = {"".join(rng.choices(letters, k=rng.randint(4, 10))) for _ in range(6000)}
        words = sorted(made_up | {"calendar"})
        session.execute(
            text("INSERT INTO search_words(word) VALUES (:w)"), [{"w": w} for w in words]
        )
        session.execute(text("ANALYZE search_words"))
        term = "caelndar"  # 441 words one edit away
        # Every word of a search in one statement: each branch on its own indexes.
        stmt = search_postgres._similar_words(search_postgres._trgm_schema(session), 2)
        params = {"least": 0.3, "edited": typos.EDITED, "limit": 3}
        for i, word in enumerate([term, "calendr"]):
            params |= {
                f"term{i}": word,
                f"edits{i}": sorted(typos.edits(word)),
                f"prefix{i}": f"{word}%",
            }
        compiled = stmt.compile(dialect=engine.dialect)
        plan = [
            row[0]
            for row in session.connection().exec_driver_sql(
                f"EXPLAIN {compiled}", compiled.construct_params(params)
            )
        ]
        trigram_tests = [line.strip() for line in plan if "OPERATOR(" in line]
        assert trigram_tests, plan
        assert not [line for line in trigram_tests if line.startswith("Filter")], plan
        assert any("ix_search_words_trigrams" in line for line in plan), plan
        found = search_backend(session)._similar(session, term, typos.SUGGESTIONS)
        assert [s.word for s in found] == ["calendar"]
        sent = statements(engine)
        each = search_backend(session)._similar_each(
            session, [term, "zzqqxx", "calendr", term], typos.SUGGESTIONS
        )
        assert {t: [s.word for s in found] for t, found in each.items()} == {
            term: ["calendar"],
            "zzqqxx": [],
            "calendr": ["calendar"],
        }
        assert len([s for s in sent if "search_words" in s]) == 1  # one trip for all
        session.rollback()


def test_a_host_filtered_search_counts_the_named_plugins_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host filter reads the order a window at a time; whether the words rank the named
    plugins first is asked for each window and counted once per search."""
    upgrade(engine)
    for i in range(16):  # the last six only for this host's version
        wanted = ">=1" if i >= 10 else ">=3"
        seed(engine, f"hst.p{i:02}", V(engines={"myapp": wanted}), description="heron")
    monkeypatch.setattr(SqlSearchBackend, "_HOST_BATCH", 2)
    with make_sessions(engine)() as session:
        backend = type(search_backend(session))
    calls: Counter[str] = Counter()
    for method in ("_window", "_named_many"):
        original = getattr(backend, method)

        def counted(*args: Any, _original: Any = original, _name: str = method, **kw: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(backend, method, counted)
    result = search(engine, q="heron", host="myapp", host_version="2.0", per_page="5")
    assert shown(result) == [f"hst.p{i}" for i in range(10, 15)]
    assert calls["_window"] > 1  # several windows were read
    assert calls["_named_many"] == 1
    search(engine, q="heron", host="myapp", host_version="2.0", per_page="5")
    assert calls["_named_many"] == 2  # once per search: a new transaction asks afresh


def test_postgres_counts_the_visible_matches_while_scoring_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranking a word set by score reads every match's row: the visible ones are counted
    there, and a search by those words alone takes its total from the kept ranking while it
    is current, without counting again. Hidden plugins are not counted, a change is."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    for i in range(6):
        seed(engine, f"vol.p{i}", description="vole")
    seed(engine, "vol.hidden", description="vole", listed=False)
    seed(engine, "vol.gone", description="vole", suspended=True)
    sent = statements(engine)
    first = search(engine, q="vole", per_page="2")
    assert (first.total, first.total_is_estimate) == (6, False)
    assert not [s for s in sent if s.endswith("AS capped")]  # _count's own: not sent
    again = search(engine, q="vole", per_page="2", page="2")  # from the kept ranking
    assert (again.total, again.total_is_estimate) == (6, False)
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 4)
    capped = search(engine, q="vole", per_page="2", page="3")
    assert (capped.total, capped.total_is_estimate) == (4, True)
    monkeypatch.setattr(search_base, "COUNT_LIMIT", 1000)
    with engine.begin() as connection:
        connection.execute(text("UPDATE plugins SET suspended = true WHERE name = 'vol.p0'"))
    after = search(engine, q="vole", per_page="2")
    assert (after.total, after.total_is_estimate) == (5, False)
    filtered = search(engine, q="vole", tag="x", per_page="2")  # words and a filter: counted
    assert (filtered.total, filtered.total_is_estimate) == (0, False)
    # A ranking kept only so deep knows how many of its own rows are visible, not of every
    # match: past the count limit that is enough, else the total is counted.
    monkeypatch.setattr(search_postgres, "RANKING_DEPTH", 3)
    for limit in (2, 1000):
        monkeypatch.setattr(search_base, "COUNT_LIMIT", limit)
        monkeypatch.setattr(search_relevance, "COUNT_LIMIT", limit)
        clear_caches()
        sent.clear()
        deep = search(engine, q="vole", per_page="2")
        counted = [s for s in sent if s.endswith("AS capped")]
        assert (deep.total, deep.total_is_estimate, bool(counted)) == (
            (2, True, False) if limit == 2 else (5, False, True)
        )


def test_postgres_search_settings_ride_along_with_the_generation_read(engine: Engine) -> None:
    """A kept-answer search reads the generation first; on PostgreSQL the transaction's
    search settings are set by that very statement, and not sent again by the search."""
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    seed(engine, "set.p", description="settings")
    sent = statements(engine)
    with make_sessions(engine)() as session:
        body = search_pages.search_json(session, SearchQuery(q="settings"), today=today())
        settings = session.execute(
            text(
                "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')"
            )
        ).one()
    assert b"set.p" in body
    assert tuple(settings) == ("off", "0")
    (setting,) = [s for s in sent if "set_config('jit'" in s]
    assert setting.startswith("SELECT generation")
