"""Browsing the marketplace: the home page's sections never repeat a plugin (a pure rule), a
category has its own page with the search page's sorts, a misspelt search says what it
searched instead, a search that finds nothing offers a way on, and the filters show how many
plugins each would leave. Over real HTTP on SQLite and PostgreSQL, with test_web's catalogue."""

from __future__ import annotations

import re

from plugport.registry.web._sections import pick_sections
from tests.registry.test_web import CATALOGUE, PENDING_ONLY, Market, ids, market, one_h1

__all__ = ["market"]  # the fixture, shared with test_web

# --- pure --------------------------------------------------------------------------------------


def test_sections_never_repeat_a_plugin_and_fill_up_from_their_own_candidates() -> None:
    picked = pick_sections(
        [
            ("featured", ["a", "b", "c"]),
            ("trending", ["b", "a", "d", "e", "f", "g"]),
            ("recent", ["g", "a", "d", "h", "i", "j", "k", "l"]),
        ],
        size=3,
        key=lambda name: name,
    )
    assert picked == {
        "featured": ["a", "b", "c"],
        "trending": ["d", "e", "f"],
        "recent": ["g", "h", "i"],
    }
    # a section whose candidates run out stays short; repeats within a list count once
    short = pick_sections([("x", ["a", "a", "b"]), ("y", ["b", "a"])], size=4, key=str)
    assert short == {"x": ["a", "b"], "y": []}
    assert pick_sections([], size=4, key=str) == {}


# --- pages -------------------------------------------------------------------------------------


def _options(html: str, testid: str) -> dict[str, str]:
    pattern = rf'<option value="([^"]+)"[^>]*data-testid="{testid}" data-count="([^"]*)"'
    return dict(re.findall(pattern, html))


def test_a_category_page_lists_its_plugins_with_the_search_sorts(market: Market) -> None:
    with market.client() as client:
        data = client.get("/categories/data")
        by_rating = client.get("/categories/data", params={"sort": "rating"})
        narrowed = client.get("/categories/data", params={"q": "words"})
        paged = client.get("/categories/data", params={"sort": "name", "per_page": "2"})
        missing = client.get("/categories/nope", headers={"accept": "text/html"})
    assert data.status_code == 200
    one_h1(data.text)
    assert 'Plugins in <span data-testid="category-name">data</span>' in data.text
    assert sorted(ids(data.text)) == ["acme.csv-cleaner", "acme.sentiment", "acme.word-count"]
    assert ids(by_rating.text) == ["acme.csv-cleaner", "acme.word-count", "acme.sentiment"]
    # what the words find first; fewer than three, so what 'word' finds follows
    assert ids(narrowed.text) == ["acme.word-count", "acme.sentiment"]
    for sort in ("relevance", "downloads", "rating", "recent"):
        assert f'<option value="{sort}"' in data.text
    assert 'action="/categories/data"' in data.text
    # its pages stay on the category's page, and never repeat the category in the query
    assert ids(paged.text) == ["acme.csv-cleaner", "acme.sentiment"]
    assert 'href="/categories/data?sort=name&amp;per_page=2&amp;page=2"' in paged.text
    assert missing.status_code == 404
    assert "There is no category" in missing.text


def test_a_misspelt_search_shows_what_was_meant_and_says_so(market: Market) -> None:
    with market.client() as client:
        page = client.get("/search", params={"q": "cleanr"})
        api = client.get("/api/v1/plugins", params={"q": "cleanr"}).json()
    assert ids(page.text) == ["acme.csv-cleaner"]
    assert 'data-testid="corrected-q">cleaner<' in page.text
    assert 'data-testid="suggestion" data-q="cleaner"' in page.text
    assert 'id="no-results"' not in page.text
    assert (api["corrected_q"], api["did_you_mean"][0], api["total"]) == ("cleaner", "cleaner", 1)


def test_a_search_that_finds_nothing_offers_a_way_on(market: Market) -> None:
    with market.client() as client:
        nothing = client.get("/search", params={"q": "qqqqzz"})
        filtered = client.get("/search", params={"q": "cleanr", "category": "ui"})
    assert nothing.status_code == 200
    panel = nothing.text.split('id="no-results"', 1)[1].split("</div>", 1)[0]
    assert "Nothing matches “qqqqzz”" in panel
    popular = re.findall(r'data-testid="popular-category" data-category="([^"]+)"', panel)
    assert popular[0] == "data"  # the most populated first
    assert 'href="/categories/data"' in panel
    assert 'href="/search" id="search-reset"' in panel
    assert 'data-testid="suggestion"' not in panel  # nothing resembles it
    # a correction that the filters still leave empty: the closest words, as links
    panel = filtered.text.split('id="no-results"', 1)[1].split("</div>", 1)[0]
    assert 'data-testid="suggestion" data-q="cleaner"' in panel
    assert 'href="/search?q=cleaner&amp;category=ui"' in panel


def test_the_filters_show_how_many_each_would_leave(market: Market) -> None:
    visible = [s for s in CATALOGUE if s.name not in PENDING_ONLY]
    with market.client() as client:
        everything = client.get("/search")
        data = client.get("/search", params={"category": "data"})
        partial = client.get("/search", headers={"x-plugport-partial": "results"})
    categories = _options(everything.text, "facet-category")
    in_data = sum(1 for s in visible if "data" in s.categories)
    assert categories["data"] == str(in_data)
    assert categories["security"] == "0"
    permissions = _options(everything.text, "facet-permission")
    assert permissions["network"] == str(sum(1 for s in visible if s.network))
    # under a category: categories as if none were chosen, the rest within the category
    assert _options(data.text, "facet-category") == categories
    tags = dict(
        re.findall(r'data-testid="facet-tag" data-tag="([^"]+)" data-count="([^"]+)"', data.text)
    )
    assert tags == {"csv": "1", "cleaning": "1", "text": "1"} | {
        t: "1" for s in visible if "data" in s.categories for t in s.tags
    }
    assert 'href="/search?category=data&amp;tag=csv"' in data.text
    assert "facet-category" not in partial.text  # as-you-type swaps the results only
