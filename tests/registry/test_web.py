"""The marketplace pages over real HTTP, on SQLite and PostgreSQL: what each page shows, the
search form's rules (the API's, as a 400 page naming the field), reviews and review decisions
through forms (CSRF-checked, nothing written when refused), and escaping of hostile text.

One small catalogue is published per backend for the whole module; tests that change state
use plugins of their own (or identities of their own), so their order does not matter."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from plugport.authoring import archive_facts, pack_plugin
from plugport.registry._display_names import pseudonym
from plugport.registry.db import make_engine
from plugport.registry.services import marketplace
from plugport.registry.web.charts import bar_chart
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.registry.conftest import POSTGRES_URL, Registry, running
from tests.registry.test_revocation import Signed, revoke

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@dataclass(frozen=True)
class Spec:
    name: str
    display: str
    description: str
    versions: tuple[str, ...] = ("1.0.0",)
    categories: tuple[str, ...] = ("other",)
    tags: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    engines: dict[str, str] = field(default_factory=dict)
    dependencies: dict[str, str] = field(default_factory=dict)


TRUSTED = "acme"  # published at once
UNTRUSTED = "northwind"  # every upload waits for review

CATALOGUE = (
    Spec("acme.csv-cleaner", "CSV Cleaner", "Trims whitespace and drops duplicate rows.",
         versions=("1.0.0", "1.1.0"), categories=("data",), tags=("csv", "cleaning")),
    Spec("acme.clock-widget", "World Clock", "A dashboard widget with the time in six cities.",
         categories=("ui",), tags=("clock", "dashboard"), engines={"myapp": ">=2"}),
    Spec("acme.word-count", "Word Count", "Counts words in text tasks.",
         categories=("task-processor", "data"), tags=("text",)),
    Spec("acme.hostile", "Hostile <b>Name</b>", HOSTILE, tags=("evil",)),
    Spec("acme.hipchat", "HipChat Notifier", "Sends task updates to a HipChat room.",
         categories=("integration",), network=("api.hipchat.com",)),
    Spec("acme.sentiment", "Sentiment Scorer", "Scores text tasks; builds on word count.",
         categories=("data",), dependencies={"acme.word-count": ">=1,<2"}),
    Spec("northwind.slack", "Slack Notifier", "Posts to a Slack channel.",
         versions=("1.0.0", "1.1.0"), categories=("integration",), tags=("slack", "chat"),
         network=("hooks.slack.com",)),
    Spec("northwind.secret-draft", "Secret Draft", "Only ever pending: never shown."),
    Spec("northwind.approve-me", "Approve Me", "Waits for the approve test."),
    Spec("northwind.reject-me", "Reject Me", "Waits for the reject test."),
    Spec("northwind.stay-pending", "Stay Pending", "Waits for refusals that change nothing."),
)  # fmt: skip
PENDING_ONLY = ("northwind.secret-draft", "northwind.approve-me", "northwind.reject-me",
                "northwind.stay-pending")  # fmt: skip
RATINGS = {  # plugin -> stars by rater-1, rater-2, ...
    "acme.csv-cleaner": (5, 5, 4),
    "acme.word-count": (4, 4, 3),
    "acme.clock-widget": (3,),
    "acme.hostile": (1,),
}
DOWNLOADS = {"acme.word-count": 4, "acme.clock-widget": 2, "northwind.slack": 1}


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def write_plugin(root: Path, spec: Spec, version: str, *, network: tuple[str, ...]) -> Path:
    source = root / f"{spec.name}-{version}"
    source.mkdir(parents=True)
    (source / "main.py").write_text(
        "from plugport.sdk import Plugin, hook\n\n\nclass Main(Plugin):\n"
        '    @hook("greet")\n    def greet(self, name):\n        return name\n'
    )
    lines = [
        f'name = "{spec.name}"',
        f'version = "{version}"',
        'entry = "main:Main"',
        f"display_name = {spec.display!r}".replace("'", '"'),
        "description = '''" + spec.description + "'''",
        f"categories = {_toml_list(spec.categories)}",
        f"tags = {_toml_list(spec.tags)}",
        "[contributes]",
        "hooks = { greet = 0 }",
    ]
    if spec.engines:
        lines += ["[engines]", *(f'{k} = "{v}"' for k, v in spec.engines.items())]
    if network:
        lines += ["[permissions]", f"network = {_toml_list(network)}"]
    if spec.dependencies:
        lines += ["[dependencies]", *(f'"{k}" = "{v}"' for k, v in spec.dependencies.items())]
    (source / "plugport.toml").write_text("\n".join(lines) + "\n")
    return source


@dataclass
class Market:
    registry: Registry
    reviewer: str
    reader: str
    publishers: dict[str, str]
    keys: dict[str, Any]

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.registry.url, timeout=10, **options)
        if token is not None:
            client.cookies.set("plugport_registry_token", token)
        return client


def _seed(registry: Registry, root: Path) -> Market:
    keys: dict[str, Any] = {}
    publishers: dict[str, str] = {}
    with registry.client(registry.admin) as admin:
        for namespace, owner in ((TRUSTED, "ada"), (UNTRUSTED, "nora")):
            created = admin.post(
                "/api/v1/namespaces",
                json={"name": namespace, "owner": owner, "trusted": namespace == TRUSTED},
            )
            created.raise_for_status()
            keys[namespace] = generate_private_key()
            pem = public_key_pem(keys[namespace].public_key())
            added = admin.post(f"/api/v1/namespaces/{namespace}/keys", json={"public_key_pem": pem})
            added.raise_for_status()
            publishers[namespace] = registry.token(owner, f"publish:{namespace}")
    reviewer = registry.token("rita", "review")
    for spec in CATALOGUE:
        namespace = spec.name.split(".")[0]
        for n, version in enumerate(spec.versions):
            # northwind.slack 1.1.0 asks for one more host: the review diff shows it
            network = spec.network + (("files.slack.com",) if n else ())
            source = write_plugin(root / "src", spec, version, network=network)
            archive = pack_plugin(source, root / "dist").result.path
            files = {
                "archive": ("a.plugport", archive.read_bytes()),
                "signature": ("a.sig", sign(keys[namespace], archive_facts(archive))),
            }
            with registry.client(publishers[namespace]) as client:
                uploaded = client.post(f"/api/v1/plugins/{spec.name}/versions", files=files)
            assert uploaded.status_code == 201, uploaded.text
            pending = uploaded.json()["status"] == "pending_review"
            keep_pending = spec.name in PENDING_ONLY or (spec.name, version) == (
                "northwind.slack",
                "1.1.0",
            )
            if pending and not keep_pending:
                with registry.client(reviewer) as client:
                    client.post(
                        f"/api/v1/review/{spec.name}/{version}/approve", json={"reason": "ok"}
                    ).raise_for_status()
    with registry.client(publishers[TRUSTED]) as client:
        client.post(
            "/api/v1/plugins/acme.csv-cleaner/versions/1.1.0/yank",
            json={"reason": "corrupts quoted fields"},
        ).raise_for_status()
        client.post(
            "/api/v1/plugins/acme.hipchat/deprecate",
            json={"reason": "HipChat was shut down", "replaced_by": "northwind.slack"},
        ).raise_for_status()
    for name, stars in RATINGS.items():
        for n, value in enumerate(stars):
            review = {"stars": value, "text": HOSTILE if name == "acme.hostile" else "good"}
            with registry.client(registry.token(f"rater-{n}", "publish:acme")) as client:
                client.put(f"/api/v1/plugins/{name}/reviews", json=review).raise_for_status()
    with registry.client() as client:
        for name, count in DOWNLOADS.items():
            for _ in range(count):
                client.get(f"/api/v1/plugins/{name}/versions/1.0.0/download").raise_for_status()
    return Market(registry, reviewer, registry.token("reader", "publish:readers"), publishers, keys)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def market(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Market]:
    root = tmp_path_factory.mktemp(f"web-{request.param}")
    admin: Engine | None = None
    schema = f"t_{secrets.token_hex(6)}"
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{root / 'registry.sqlite'}")
    else:
        if not POSTGRES_URL:
            pytest.skip("PLUGPORT_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with running(
            engine, root / "data", host_service_url="http://apps.example.test/"
        ) as registry:
            yield _seed(registry, root)
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


# --- helpers ----------------------------------------------------------------------------------


def ids(html: str, testid: str = "plugin-card") -> list[str]:
    """The data-name of every element with this data-testid, in page order."""
    return re.findall(rf'data-testid="{testid}" data-name="([^"]+)"', html)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def one_h1(html: str) -> None:
    assert html.count("<h1") == 1, "a page has exactly one h1"
    assert '<html lang="en">' in html
    assert 'href="#main"' in html
    assert 'id="main"' in html


def reviews_api(market: Market, name: str) -> dict[str, dict[str, Any]]:
    """The public reviews of ``name`` by author (a display name or a pseudonym)."""
    with market.registry.client() as client:
        body = client.get(f"/api/v1/plugins/{name}/reviews").json()
    return {item["author"]: item for item in body["items"]}


def shown(market: Market, identity: str) -> str:
    """The pseudonym the public sees for ``identity`` (it has no display name)."""
    return pseudonym(identity, market.registry.app.state.pseudonym_secret)


# --- the public pages --------------------------------------------------------------------------


def test_home_shows_featured_trending_recent_and_categories(market: Market) -> None:
    with market.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    one_h1(html)
    sections = {
        s: html.split(f'id="{s}"', 1)[1].split("</section>", 1)[0]
        for s in ("featured", "trending", "recent")
    }
    # the categories come first, as the way to browse, each to its own page
    categories = html.split('id="categories"', 1)[1].split("</nav>", 1)[0]
    assert html.index('id="categories"') < html.index('id="featured"')
    assert (
        '<a class="badge" href="/categories/data" data-testid="category" data-category="data">'
        'data <span class="count">(3)</span>'
    ) in categories
    # featured: rated by 3 or more, best first (csv-cleaner 4.67 before word-count 3.67)
    assert ids(sections["featured"]) == ["acme.csv-cleaner", "acme.word-count"]
    assert 'data-featured-by="rating"' in html
    # trending: downloaded in the last 7 days, most first, but what Featured shows already
    # (word-count, the most downloaded this week)
    assert ids(sections["trending"]) == ["acme.clock-widget", "northwind.slack"]
    # recent: none shown above; of seven plugins that leaves three (a section holds four)
    recent = ids(sections["recent"])
    shown_above = ids(sections["featured"]) + ids(sections["trending"])
    visible = {s.name for s in CATALOGUE if s.name not in PENDING_ONLY}
    assert set(recent) == visible - set(shown_above)
    assert len(recent) == 3
    assert 'id="search-input"' in html
    assert 'for="search-input"' in html
    for name in PENDING_ONLY:
        assert name not in html


def test_search_filters_sorts_and_pages(market: Market) -> None:
    with market.client() as client:
        by_words = client.get("/search", params={"q": "slack"})
        data = client.get("/search", params={"category": "data", "sort": "rating"})
        tagged = client.get("/search", params={"tag": "clock"})
        network = client.get("/search", params={"permission": "network", "sort": "name"})
        host = client.get(
            "/search", params={"host": "myapp", "host_version": "1.5", "category": "ui"}
        )
        first = client.get("/search", params={"sort": "name", "per_page": "3"})
        second = client.get("/search", params={"sort": "name", "per_page": "3", "page": "2"})
    assert ids(by_words.text)[0] == "northwind.slack"
    assert ids(data.text) == ["acme.csv-cleaner", "acme.word-count", "acme.sentiment"]
    assert ids(tagged.text) == ["acme.clock-widget"]
    assert ids(network.text) == ["acme.hipchat", "northwind.slack"]
    assert ids(host.text) == []  # clock-widget needs myapp >= 2
    assert "No plugins match." in host.text
    visible = sorted(s.name for s in CATALOGUE if s.name not in PENDING_ONLY)
    assert ids(first.text) == visible[:3]
    assert ids(second.text) == visible[3:6]
    assert f'data-total="{len(visible)}"' in first.text
    assert 'aria-current="page" data-testid="page-current">2<' in second.text
    assert 'href="/search?sort=name&amp;per_page=3&amp;page=3"' in second.text  # next
    assert 'rel="prev"' in second.text
    assert 'href="/search?sort=name&amp;per_page=3"' in second.text
    # the form keeps what was asked, so it can be refined
    assert '<option value="rating" selected>' in data.text
    one_h1(data.text)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "zero"}, "page"),
        ({"page": "0"}, "page"),
        ({"sort": "popular"}, "sort"),
        ({"category": "nope"}, "category"),
        ({"permission": "root"}, "permission"),
        ({"host": "myapp"}, "host and host_version"),
        ({"host": "myapp", "host_version": "not a version"}, "host_version"),
        ({"per_page": "1000"}, "per_page"),
    ],
)
def test_a_bad_search_parameter_is_a_400_page_naming_it(
    market: Market, params: dict[str, str], field: str
) -> None:
    with market.client() as client:
        page = client.get("/search", params=params)
        api = client.get("/api/v1/plugins", params=params)
    assert page.status_code == api.status_code == 400
    assert f'data-field="{field}"' in page.text
    assert f"{field}: " in page.text
    assert api.json()["error"]["message"] in page.text.replace("&#39;", "'")
    assert 'id="search-form"' in page.text  # the form is still there to fix it
    one_h1(page.text)


def test_the_results_fragment_is_what_as_you_type_search_swaps_in(market: Market) -> None:
    with market.client() as client:
        fragment = client.get(
            "/search", params={"q": "clock"}, headers={"X-Plugport-Partial": "results"}
        )
        bad = client.get("/search", params={"page": "0"}, headers={"X-Plugport-Partial": "results"})
        script = client.get("/static/registry/search.js")
        css = client.get("/static/plugport.css")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "<h1" not in fragment.text
    assert ids(fragment.text) == ["acme.clock-widget"]
    assert bad.status_code == 400
    assert 'data-field="page"' in bad.text
    assert script.status_code == 200
    assert "replaceState" in script.text
    assert css.status_code == 200
    assert ":focus-visible" in css.text


def test_plugin_page_shows_versions_permissions_compatibility_and_reviews(market: Market) -> None:
    with market.client() as client:
        slack = client.get("/plugins/northwind.slack").text
        csv = client.get("/plugins/acme.csv-cleaner").text
        hipchat = client.get("/plugins/acme.hipchat").text
        clock = client.get("/plugins/acme.clock-widget").text
        sentiment = client.get("/plugins/acme.sentiment").text
    one_h1(slack)
    assert '<h1 id="plugin-title">Slack Notifier</h1>' in slack
    assert 'href="/namespaces/northwind" id="namespace-link"' in slack
    assert "plugport install northwind.slack" in slack
    assert 'href="http://apps.example.test/workspaces?install=northwind.slack"' in slack
    assert "Connect to: hooks.slack.com" in slack
    assert "files.slack.com" not in slack  # only in the pending 1.1.0
    assert re.findall(r'data-testid="version-row" data-version="([^"]+)"', slack) == ["1.0.0"]
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in slack
    assert 'id="downloads-table"' in slack
    assert "<td>1</td>" in slack
    # yanked with its reason; the latest is the highest version not yanked
    assert 'data-version="1.1.0" data-status="yanked"' in csv
    assert "corrupts quoted fields" in csv
    assert '<span id="latest-version">1.0.0</span>' in csv
    assert 'data-average="4.666666666666667" data-count="3"' in csv
    assert len(re.findall(r'data-testid="review" ', csv)) == 3
    assert 'data-testid="category">data<' in csv
    assert 'data-testid="tag">#csv<' in csv
    # deprecated, with its replacement
    assert "HipChat was shut down" in hipchat
    assert 'href="/plugins/northwind.slack" id="replaced-by"' in hipchat
    assert "<dt>myapp</dt><dd><code>&gt;=2</code></dd>" in clock
    assert 'href="/plugins/acme.word-count">acme.word-count</a> <code>&lt;2,&gt;=1</code>' in (
        sentiment
    )
    assert "No permissions" in sentiment
    # signed out: no review form, a link to sign in
    assert 'id="review-form"' not in slack
    assert 'id="signin-to-review"' in slack


def test_namespace_page_shows_owner_members_keys_and_plugins(market: Market) -> None:
    with market.client() as client:
        page = client.get("/namespaces/northwind")
        missing = client.get("/namespaces/nobody")
    one_h1(page.text)
    assert re.findall(r'data-testid="owner">([^<]+)<', page.text) == ["nora"]
    assert 'data-testid="member" data-role="owner">nora' in page.text
    assert re.findall(r'data-key-id="([^"]+)"', page.text)
    assert ids(page.text) == ["northwind.slack"]  # pending-only plugins are not listed
    assert missing.status_code == 404
    assert "<h1>Page not found</h1>" in missing.text


def test_pending_and_rejected_versions_never_appear_on_public_pages(market: Market) -> None:
    with market.client() as client:
        pages = [
            client.get("/").text,
            client.get("/search").text,
            client.get("/search", params={"q": "secret draft"}).text,
            client.get("/namespaces/northwind").text,
            client.get("/plugins/northwind.slack").text,
        ]
        hidden = client.get("/plugins/northwind.secret-draft")
    for html in pages:
        assert "northwind.secret-draft" not in html
        assert "Secret Draft" not in html
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in hidden.text


def test_hostile_text_is_escaped_everywhere(market: Market) -> None:
    with market.client() as client:
        pages = [
            client.get("/plugins/acme.hostile").text,
            client.get("/search", params={"tag": "evil"}).text,
            client.get("/namespaces/acme").text,
            client.get("/search", params={"q": '"><script>x</script>'}).text,
        ]
    for html in pages:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<script>x" not in html
        assert "<b>Name</b>" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in pages[0]
    assert "Hostile &lt;b&gt;Name&lt;/b&gt;" in pages[0]
    assert pages[0].count("&lt;script&gt;alert") >= 2  # the description and the review


def test_unknown_pages_are_html_for_browsers_and_api_errors_stay_json(market: Market) -> None:
    with market.client() as client:
        page = client.get("/no/such/page", headers={"Accept": "text/html"})
        api = client.get("/api/v1/plugins/acme.nothing", headers={"Accept": "text/html"})
        api_route = client.get("/api/v1/nothing-here", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "<h1>Page not found</h1>" in page.text
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    assert api_route.status_code == 404
    assert api_route.json()["error"]["code"] == "not_found"


def test_pages_are_not_in_the_openapi_schema(market: Market) -> None:
    with market.registry.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    machine = ("/api/", "/healthz", "/metrics", "/tuf/")  # /tuf/: the TUF repository's files
    assert all(p.startswith(machine) for p in paths), sorted(paths)


# --- signing in ---------------------------------------------------------------------------------


def sign_in(market: Market, token: str, next_page: str = "/") -> httpx.Client:
    client = market.client()
    form = client.get("/signin", params={"next": next_page})
    assert form.status_code == 200
    signed = client.post(
        "/signin", data={"token": token, "csrf": csrf_of(form.text), "next": next_page}
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == next_page
    cookie = signed.headers["set-cookie"]
    assert "plugport_registry_token=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    return client


def test_sign_in_with_a_token_shows_who_and_sign_out_forgets_it(market: Market) -> None:
    client = sign_in(market, market.reviewer, "/search")
    try:
        page = client.get("/search")
        assert 'data-identity="rita"' in page.text
        assert 'data-testid="scope">review<' in page.text
        assert 'id="nav-review"' in page.text
        assert 'data-testid="flash" data-kind="success">Signed in as rita.' in page.text
        again = client.get("/search")
        assert 'data-testid="flash"' not in again.text  # shown once
        out = client.post("/signout", data={"csrf": csrf_of(again.text)})
        assert out.status_code == 303
        assert 'data-identity="rita"' not in client.get("/").text
    finally:
        client.close()


def test_a_bad_token_or_a_missing_csrf_token_does_not_sign_in(market: Market) -> None:
    with market.client() as client:
        form = client.get("/signin")
        bad = client.post("/signin", data={"token": "ppt_nope", "csrf": csrf_of(form.text)})
        assert bad.status_code == 401
        assert 'id="signin-error"' in bad.text
        forged = client.post("/signin", data={"token": market.reviewer})
        assert forged.status_code == 403
        assert "plugport_registry_token" not in forged.headers.get("set-cookie", "")
    with market.client() as stranger:  # a token from another browser's form is no good
        stolen = stranger.post(
            "/signin", data={"token": market.reviewer, "csrf": csrf_of(form.text)}
        )
        assert stolen.status_code == 403


# --- reviews through the form ---------------------------------------------------------------


def test_a_review_posted_through_the_form_shows_on_the_page_and_in_the_api(market: Market) -> None:
    name = "acme.clock-widget"
    token = market.registry.token("fay", "publish:fay")
    with market.client(token) as client:
        page = client.get(f"/plugins/{name}")
        assert 'id="review-form"' in page.text
        assert 'id="review-delete"' not in page.text
        for n in range(1, 6):
            assert f'<label for="stars-{n}"><input type="radio" name="stars" id="stars-{n}"' in (
                page.text
            )
        posted = client.post(
            f"/plugins/{name}/review",
            data={"stars": "4", "text": "Handy <i>clock</i>", "csrf": csrf_of(page.text)},
        )
        assert posted.status_code == 303
        assert posted.headers["location"] == f"/plugins/{name}#reviews"
        after = client.get(f"/plugins/{name}").text
        assert f'data-author="{shown(market, "fay")}" data-stars="4"' in after
        assert "fay" not in after.split('id="review-list"', 1)[1]
        assert "Handy &lt;i&gt;clock&lt;/i&gt;" in after
        assert 'id="stars-4" value="4" required checked' in after  # the form edits it
        assert reviews_api(market, name)[shown(market, "fay")]["stars"] == 4
        # writing again replaces it
        client.post(
            f"/plugins/{name}/review", data={"stars": "2", "text": "", "csrf": csrf_of(after)}
        )
        assert reviews_api(market, name)[shown(market, "fay")]["stars"] == 2
        assert len([i for i in reviews_api(market, name) if i == shown(market, "fay")]) == 1
        deleted = client.post(f"/plugins/{name}/review/delete", data={"csrf": csrf_of(after)})
        assert deleted.status_code == 303
    assert shown(market, "fay") not in reviews_api(market, name)


def test_a_review_post_without_the_csrf_token_is_refused_and_writes_nothing(
    market: Market,
) -> None:
    name = "acme.word-count"
    token = market.registry.token("mallory", "publish:mallory")
    before = reviews_api(market, name)
    with market.client(token) as client:
        missing = client.post(f"/plugins/{name}/review", data={"stars": "1", "text": "x"})
        wrong = client.post(
            f"/plugins/{name}/review", data={"stars": "1", "text": "x", "csrf": "0" * 64}
        )
        with market.client(market.reader) as reader:
            other = csrf_of(reader.get(f"/plugins/{name}").text)
        someone_elses = client.post(
            f"/plugins/{name}/review", data={"stars": "1", "text": "x", "csrf": other}
        )
    for refused in (missing, wrong, someone_elses):
        assert refused.status_code == 403
        assert "<h1>Not allowed</h1>" in refused.text
    assert reviews_api(market, name) == before


def test_a_signed_out_review_post_is_refused(market: Market) -> None:
    with market.client() as client:
        page = client.get("/signin")  # a signed-out browser's CSRF token
        refused = client.post(
            "/plugins/acme.word-count/review", data={"stars": "5", "csrf": csrf_of(page.text)}
        )
    assert refused.status_code == 401
    assert shown(market, "anonymous") not in reviews_api(market, "acme.word-count")


# --- the review queue -------------------------------------------------------------------------


def version_status(market: Market, name: str, version: str) -> str:
    with market.registry.engine.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT v.status FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id"
                    " WHERE p.name = :name AND v.version = :version"
                ),
                {"name": name, "version": version},
            ).scalar_one()
        )


def test_the_queue_lists_pending_versions_with_findings_and_permission_diff(
    market: Market,
) -> None:
    with market.client(market.reviewer) as client:
        queue = client.get("/review")
        item = client.get("/review/northwind.slack/1.1.0")
    assert queue.status_code == 200
    one_h1(queue.text)
    listed = re.findall(r'data-testid="queue-item" data-name="([^"]+)"', queue.text)
    assert {"northwind.slack", "northwind.secret-draft", "northwind.stay-pending"} <= set(listed)
    assert "acme.csv-cleaner" not in listed
    assert '<li data-testid="permission-added">+ Connect to: files.slack.com</li>' in item.text
    assert 'data-testid="permission-removed"' not in item.text
    assert "since 1.0.0" in item.text
    assert 'id="approve"' in item.text
    assert 'id="reject"' in item.text
    assert 'id="scan-findings"' in item.text


def test_the_queue_refuses_tokens_without_the_review_scope_and_changes_nothing(
    market: Market,
) -> None:
    name, version = "northwind.stay-pending", "1.0.0"
    audits = market.registry.count("audit_records")
    with market.client() as anonymous:
        redirected = anonymous.get("/review")
        assert redirected.status_code == 303
        assert redirected.headers["location"] == "/signin?next=/review"
    with market.client(market.reader) as reader:
        assert reader.get("/review").status_code == 403
        page = reader.get(f"/review/{name}/{version}")
        assert page.status_code == 403
        assert "<h1>Not allowed</h1>" in page.text
        assert "review" in page.text
        token = csrf_of(reader.get("/").text)
        tried = reader.post(
            f"/review/{name}/{version}", data={"decision": "approve", "reason": "x", "csrf": token}
        )
        assert tried.status_code == 403
    with market.client(market.reviewer) as reviewer:  # the right scope, but no CSRF token
        forged = reviewer.post(f"/review/{name}/{version}", data={"decision": "approve"})
        assert forged.status_code == 403
    assert version_status(market, name, version) == "pending_review"
    assert market.registry.count("audit_records") == audits


def test_approve_publishes_the_version_and_it_shows_in_search(market: Market) -> None:
    name = "northwind.approve-me"
    with market.client() as client:
        assert ids(client.get("/search", params={"q": "approve me"}).text) == []
    with market.client(market.reviewer) as reviewer:
        page = reviewer.get(f"/review/{name}/1.0.0")
        decided = reviewer.post(
            f"/review/{name}/1.0.0",
            data={"decision": "approve", "reason": "", "csrf": csrf_of(page.text)},
        )
        assert decided.status_code == 303
        assert decided.headers["location"] == "/review"
        queue = reviewer.get("/review").text
        assert f"{name} 1.0.0 approved and published." in queue
        assert f'data-name="{name}"' not in queue
    assert version_status(market, name, "1.0.0") == "published"
    with market.client() as client:
        assert ids(client.get("/search", params={"q": "approve me"}).text) == [name]
        assert client.get(f"/plugins/{name}").status_code == 200


def test_reject_needs_a_reason_and_then_rejects(market: Market) -> None:
    name = "northwind.reject-me"
    with market.client(market.reviewer) as reviewer:
        page = reviewer.get(f"/review/{name}/1.0.0")
        token = csrf_of(page.text)
        blank = reviewer.post(
            f"/review/{name}/1.0.0", data={"decision": "reject", "reason": "  ", "csrf": token}
        )
        assert blank.status_code == 400
        assert 'id="decision-error"' in blank.text
        assert version_status(market, name, "1.0.0") == "pending_review"
        rejected = reviewer.post(
            f"/review/{name}/1.0.0",
            data={"decision": "reject", "reason": "no tests", "csrf": token},
        )
        assert rejected.status_code == 303
        assert f"{name} 1.0.0 rejected." in reviewer.get("/review").text
        assert 'id="decided"' in reviewer.get(f"/review/{name}/1.0.0").text
    assert version_status(market, name, "1.0.0") == "rejected"
    with market.client() as client:
        assert client.get(f"/plugins/{name}").status_code == 404
        assert name not in client.get("/search", params={"q": "reject"}).text


def test_sign_in_never_redirects_to_another_site(market: Market) -> None:
    with market.client() as client:
        form = client.get("/signin", params={"next": "//evil.example/x"})
        assert 'name="next" value="/"' in form.text
        signed = client.post(
            "/signin",
            data={
                "token": market.reader,
                "csrf": csrf_of(form.text),
                "next": "https://evil.example",
            },
        )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"


def test_the_downloads_chart_scales_bars_and_keeps_labels_inside() -> None:
    start = date(2026, 1, 1)
    chart = bar_chart([(start + timedelta(days=n), v) for n, v in enumerate([0, 5, 10])])
    assert [b.value for b in chart.bars] == [0, 5, 10]
    assert chart.bars[0].height == 0
    assert chart.bars[2].height == pytest.approx(2 * chart.bars[1].height)
    assert chart.bars[2].y + chart.bars[2].height == pytest.approx(chart.baseline)
    assert (chart.maximum, chart.total) == (10, 15)
    assert [anchor for _, _, anchor in chart.labels] == ["start", "middle", "end"]
    assert all(0 <= x <= chart.width for x, _, _ in chart.labels)
    assert bar_chart([]).bars == []


def test_a_failing_page_is_an_html_500_and_the_api_is_untouched(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(marketplace, "daily_downloads", broken)
    with market.client() as client:
        page = client.get("/plugins/acme.word-count")
        api = client.get("/api/v1/plugins/acme.word-count")
    assert page.status_code == 500
    assert "<h1>Something went wrong</h1>" in page.text
    assert "disk on fire" not in page.text
    assert api.status_code == 200


def test_withdrawn_versions_are_shown_with_why_and_never_as_the_latest(
    registry: Registry, tmp_path: Path
) -> None:
    """After a key is revoked, the versions it signed stay on the plugin's page as withdrawn,
    naming the key and the day; a plugin with nothing else says so and offers no install."""
    signed = Signed(registry, tmp_path)  # acme.hello 0.1.0 kept; 0.2.0, 0.3.0, acme.solo leaked
    with registry.client(registry.token("bea", "publish:bea")) as rater:
        rater.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 2}).raise_for_status()
    revoked = revoke(registry, signed.publisher.token, signed.leaked_id)
    revoked.raise_for_status()
    when = datetime.fromisoformat(revoked.json()["revoked_at"])
    with registry.client() as client:
        hello = client.get("/plugins/acme.hello").text
        solo = client.get("/plugins/acme.solo").text
        found = client.get("/search", params={"q": "acme"}).text
        namespace = client.get("/namespaces/acme").text
    one_h1(hello)
    reason = (
        f"signed with key {signed.leaked_id[:16]}… which the publisher revoked on "
        f"{when:%Y-%m-%d %H:%M} UTC"
    )
    rows = re.findall(
        r'data-testid="version-row" data-version="([^"]+)" data-status="(\w+)"', hello
    )
    assert rows == [("0.3.0", "withdrawn"), ("0.2.0", "withdrawn"), ("0.1.0", "published")]
    assert hello.count(f'<span data-testid="withdrawn-reason">{reason}</span>') == 2
    assert '<span id="latest-version">0.1.0</span>' in hello
    assert 'id="install-command">plugport install acme.hello<' in hello
    assert 'id="withdrawn"' not in hello
    assert 'data-count="1"' in hello  # the rating stays
    one_h1(solo)
    assert 'id="withdrawn" role="note"' in solo
    assert "every version of this plugin was signed with a key its publisher revoked" in solo
    assert 'id="install-command"' not in solo
    assert 'id="install-withdrawn"' in solo
    assert '<span id="latest-version">none</span>' in solo
    assert f'<span data-testid="withdrawn-reason">{reason}</span>' in solo
    assert ids(found) == ["acme.hello"]
    assert ids(namespace) == ["acme.hello"]
