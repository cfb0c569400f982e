"""The public pages: home, search, a category, a plugin, a namespace. They read through the catalog,
community and namespace services and the search backend, exactly what the JSON API reads, so
a page never shows what the API would hide (pending or rejected versions, unlisted plugins in
search, suspended plugins anywhere)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from plugport._permissions import describe_permissions
from plugport.errors import InvalidInputError
from plugport.manifest import CATEGORIES, PERMISSION_NAMES, Permissions
from plugport.registry.deps import SessionDep
from plugport.registry.libraries import python_table
from plugport.registry.libraries import shown as libraries
from plugport.registry.models import Plugin, Review
from plugport.registry.search import CategoryCount, Facets, SearchQuery, search_backend
from plugport.registry.search import pages as kept
from plugport.registry.search.query import MAX_PAGE, SORTS
from plugport.registry.services import (
    catalog,
    community,
    content,
    marketplace,
    namespaces,
    profiles,
)
from plugport.registry.web._common import HtmlRoute, User, pseudonym_secret, render
from plugport.registry.web._sections import pick_sections
from plugport.registry.web.charts import bar_chart

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

FEATURED_MIN_REVIEWS = 3
SECTION_SIZE = 4
"""Cards per home section: the home grid has 1, 2 or 4 columns (``.grid-home`` in
plugport.css), so four fill whole rows at every width."""
CANDIDATE_ROWS = 4
"""Candidates read per section, in sections of :data:`SECTION_SIZE`: enough that each still
fills up after the sections before it took theirs."""
POPULAR_CATEGORIES = 6
CHART_DAYS = 30
SEARCH_FIELDS = ("q", "category", "tag", "permission", "host", "host_version", "sort", "page")
PARTIAL_HEADER = "x-plugport-partial"


def _search(session: SessionDep, **params: str | None) -> list[Plugin]:
    query = SearchQuery.parse(**params)
    result = search_backend(session).search(session, query, today=catalog.today())
    return [hit.plugin for hit in result.hits]


def _card(plugin: Plugin, icons: dict[int, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A plugin as cards and the page header show it; ``icons``: from :func:`_icons`."""
    return {**catalog.plugin_summary(plugin), "icon": (icons or {}).get(plugin.id), **extra}


def _cards(session: SessionDep, plugins: list[Plugin]) -> list[dict[str, Any]]:
    icons = content.icons(session, plugins)
    return [_card(p, icons) for p in plugins]


@router.get("/", name="web_home")
def home(request: Request, session: SessionDep, user: User) -> Response:
    """Featured, trending and recent, no plugin twice (:func:`pick_sections`), each a full
    row of the home grid at every width; the categories first, as the way to browse."""
    spare = str(SECTION_SIZE * CANDIDATE_ROWS)
    best = [
        p
        for p in _search(session, sort="rating", per_page="50")
        if p.rating_count >= FEATURED_MIN_REVIEWS
    ]
    featured_by = "rating"
    if not best:
        best, featured_by = _search(session, sort="downloads", per_page=spare), "downloads"
    trending_candidates = _search(session, sort="trending", per_page=spare)
    weekly = marketplace.weekly_downloads(
        session, [p.id for p in trending_candidates], today=catalog.today()
    )
    picked = pick_sections(
        [
            ("featured", best),
            ("trending", [p for p in trending_candidates if weekly.get(p.id, 0) > 0]),
            ("recent", _search(session, sort="recent", per_page=spare)),
        ],
        SECTION_SIZE,
        key=lambda p: p.id,
    )
    icons = content.icons(session, [p for section in picked.values() for p in section])
    categories = search_backend(session).categories(session)
    return render(
        request,
        "home.html",
        {
            "featured": [_card(p, icons) for p in picked["featured"]],
            "featured_by": featured_by,
            "trending": [_card(p, icons, weekly=weekly[p.id]) for p in picked["trending"]],
            "recent": [_card(p, icons) for p in picked["recent"]],
            "categories": categories,
            "all_categories": CATEGORIES,
        },
    )


def _page_links(page: int, pages: int) -> list[int | None]:
    """Page numbers to link: the first, the last, and two either side of this one (None for
    a gap)."""
    wanted = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    links: list[int | None] = []
    for n in wanted:
        if links and n - (links[-1] or 0) > 1:
            links.append(None)
        links.append(n)
    return links


@router.get("/search", name="web_search")
def search(request: Request, session: SessionDep, user: User) -> Response:
    """The same parameters and rules as ``GET /api/v1/plugins``; a bad one is a 400 page that
    names it, with the form still filled in."""
    return _results_page(request, session, "/search", "search.html")


@router.get("/categories/{name}", name="web_category")
def category_page(name: str, request: Request, session: SessionDep, user: User) -> Response:
    """One category's plugins, as the search page with that category chosen: the same sorts,
    words to narrow it, and pages."""
    if name not in CATEGORIES:
        raise HTTPException(404, f"There is no category {name!r}.")
    return _results_page(
        request, session, f"/categories/{quote(name)}", "category.html", category=name
    )


def _results_page(
    request: Request,
    session: SessionDep,
    path: str,
    template: str,
    *,
    category: str | None = None,
) -> Response:
    raw = {field: request.query_params.get(field) for field in (*SEARCH_FIELDS, "per_page")}
    if category is not None:
        raw["category"] = category
    form = {k: (v or "").strip() for k, v in raw.items()}
    partial = request.headers.get(PARTIAL_HEADER) == "results"
    context: dict[str, Any] = {
        "form": form,
        "category": category,
        "categories": CATEGORIES,
        "permissions": PERMISSION_NAMES,
        "sorts": SORTS,
        "error": None,
        "error_field": "",
        "items": [],
        "total": 0,
        "estimate": False,
        "pages": [],
        "page": 1,
        "last_page": 1,
        "did_you_mean": [],
        "corrected_q": None,
        "facets": None,
        "popular_categories": [],
    }
    status = 200
    try:
        query = SearchQuery.parse(**raw)
    except InvalidInputError as exc:
        context["error"] = str(exc)
        context["error_field"] = str(exc).split(":", 1)[0]
        status = 400
    else:
        result = search_backend(session).search(session, query, today=catalog.today())
        last_page = min(MAX_PAGE, max(1, math.ceil(result.total / query.per_page)))
        context.update(
            items=_cards(session, [hit.plugin for hit in result.hits]),
            total=result.total,
            estimate=result.total_is_estimate,
            page=query.page,
            last_page=last_page,
            pages=_page_links(query.page, last_page),
            sort=query.sort,
            did_you_mean=list(result.did_you_mean),
            corrected_q=result.corrected_q,
        )
        if not partial:  # the filters beside the results: the page's, not the partial's
            context["facets"] = _facet_counts(kept.facets(session, query))
        if not result.hits:
            context["popular_categories"] = search_backend(session).categories(session)[
                :POPULAR_CATEGORIES
            ]
    context["link"] = _linker(form, path, fixed=("category",) if category else ())
    context["partial"] = partial
    return render(request, "_results.html" if partial else template, context, status_code=status)


def _facet_counts(facets: Facets) -> dict[str, Any]:
    """Counts as the filters show them: by value, ``+`` when counting stopped early."""
    more = "+" if facets.capped else ""

    def shown(counts: list[CategoryCount]) -> dict[str, str]:
        return {c.name: f"{c.count:,}{more}" for c in counts}

    return {
        "categories": shown(facets.categories),
        "permissions": shown(facets.permissions),
        "tags": [(c.name, f"{c.count:,}{more}") for c in facets.tags],
    }


def _linker(form: dict[str, str], path: str = "/search", fixed: tuple[str, ...] = ()) -> Any:
    """``link(page=3)``: this search's URL with ``page`` replaced (empty fields left out;
    ``fixed`` fields are in ``path`` already)."""

    def link(**changes: Any) -> str:
        params = {k: v for k, v in form.items() if k != "page" and k not in fixed}
        params.update({k: str(v) for k, v in changes.items()})
        kept = [(k, v) for k, v in params.items() if v and not (k == "page" and v == "1")]
        return path + ("?" + urlencode(kept) if kept else "")

    return link


def _permission_lines(manifest: dict[str, Any]) -> list[str]:
    try:
        permissions = Permissions.model_validate(manifest.get("permissions") or {})
    except ValidationError:  # stored by an older manifest schema: say so, do not guess
        return ["Permissions could not be read: see the API's version record"]
    return describe_permissions(permissions)


def _custom_views(manifest: dict[str, Any]) -> list[str]:
    """The titles of the custom views a version declares: its own HTML and scripts, which the
    marketplace marks so no one mistakes them for the host's own pages."""
    views = (manifest.get("contributes") or {}).get("views") or []
    return [str(v.get("title") or v.get("id") or "") for v in views if isinstance(v, dict)]


def _review(review: Review, names: dict[str, str]) -> dict[str, Any]:
    """A review as the public sees it: by its author's display name or pseudonym, never by
    the identity (often an e-mail address)."""
    return {
        "author": names[review.identity],
        "stars": review.stars,
        "text": review.text,
        "updated_at": review.updated_at,
    }


def _author(text: str) -> dict[str, str]:
    """A manifest author, ``Name <address>`` or an address or a name: the name as the text
    of a mailto link, so an address never has to wrap."""
    name, _, rest = text.partition("<")
    address = rest.rstrip(">").strip() if rest.endswith(">") else ""
    if not address and "@" in text and " " not in text.strip():
        address = text.strip()
    return {"name": name.strip() or address or text, "address": address}


@router.get("/plugins/{name}", name="web_plugin")
def plugin_page(name: str, request: Request, session: SessionDep, user: User) -> Response:
    plugin = catalog.get_plugin(session, name)
    versions = catalog.published(session, plugin)
    latest = next((v for v in versions if v.version == plugin.latest_version), None)
    shown = latest or versions[0]
    withdrawn = {
        v.version: catalog.withdrawn_reason(v) for v in versions if v.signer_revoked_at is not None
    }
    points = marketplace.daily_downloads(session, plugin, days=CHART_DAYS, today=catalog.today())
    mine = marketplace.review_by(session, plugin, user.identity) if user else None
    reviews = community.reviews_of(session, plugin, page=1, per_page=50)
    shows = content.of_version(session, shown)
    blobs = request.app.state.blobs
    names = profiles.shown_names(session, (r.identity for r in reviews), pseudonym_secret(request))
    return render(
        request,
        "plugin.html",
        {
            "plugin": _card(plugin),
            "icon": content.url(plugin.name, shows.icon) if shows.icon else None,
            "screenshots": [
                {"url": content.url(plugin.name, s), "width": s.width, "height": s.height}
                for s in shows.screenshots
            ],
            "readme": content.rendered(blobs, shows.readme) if shows.readme else None,
            "changelog": content.rendered(blobs, shows.changelog) if shows.changelog else None,
            "namespace": plugin.name.split(".", 1)[0],
            "versions": versions,
            "withdrawn": withdrawn,
            "all_withdrawn": len(withdrawn) == len(versions),
            "shown": shown,
            "permissions": _permission_lines(shown.manifest),
            "custom_views": _custom_views(shown.manifest),
            "engines": shown.manifest.get("engines") or {},
            "dependencies": shown.manifest.get("dependencies") or {},
            "libraries": libraries(shown.libraries, shown.manifest),
            "python": python_table(shown.manifest),
            "authors": [_author(str(a)) for a in shown.manifest.get("authors") or []],
            "chart": bar_chart(points),
            "reviews": [_review(r, names) for r in reviews],
            "mine": mine,
            "stars_choices": range(5, 0, -1),
        },
    )


@router.get("/namespaces/{name}", name="web_namespace")
def namespace_page(name: str, request: Request, session: SessionDep, user: User) -> Response:
    namespace = namespaces.get_namespace(session, name)
    return render(
        request,
        "namespace.html",
        {
            "namespace": namespace,
            "owners": sorted(m.identity for m in namespace.members if m.role == "owner"),
            "members": sorted((m.identity, m.role) for m in namespace.members),
            "keys": namespaces.keys_of(session, name),
            "plugins": _cards(session, marketplace.plugins_in_namespace(session, namespace)),
        },
    )
