"""``/api/v1/plugins`` (search and browse) and ``/api/v1/categories``: what anyone may find.

Query parameters arrive as plain strings and are checked by :class:`SearchQuery`, so a bad
``page`` is a 400 naming ``page``, like every other rule the registry enforces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from plugport.registry.deps import SessionDep
from plugport.registry.search import SearchQuery, search_backend
from plugport.registry.search.query import MAX_PER_PAGE, SORTS
from plugport.registry.services import catalog

router = APIRouter(prefix="/api/v1", tags=["search"])

_Text = Annotated[str | None, Query()]


@router.get("/plugins")
def search_plugins(
    *,
    session: SessionDep,
    q: Annotated[str | None, Query(description="words; each matches as a prefix")] = None,
    category: _Text = None,
    tag: _Text = None,
    permission: Annotated[
        str | None, Query(description="network, storage, events, ui or config")
    ] = None,
    host: Annotated[str | None, Query(description="with host_version")] = None,
    host_version: Annotated[str | None, Query(description="PEP 440; with host")] = None,
    sort: Annotated[
        str | None,
        Query(description=f"{', '.join(SORTS)}; default relevance with q, else downloads"),
    ] = None,
    page: Annotated[str | None, Query(description="from 1")] = None,
    per_page: Annotated[str | None, Query(description=f"1 to {MAX_PER_PAGE}")] = None,
) -> dict[str, Any]:
    """Visible plugins (published, listed, not suspended) matching every filter given."""
    query = SearchQuery.parse(
        q=q,
        category=category,
        tag=tag,
        permission=permission,
        host=host,
        host_version=host_version,
        sort=sort,
        page=page,
        per_page=per_page,
    )
    result = search_backend(session).search(session, query, today=catalog.today())
    return {
        "items": [
            {**catalog.plugin_summary(hit.plugin), "score": hit.score} for hit in result.hits
        ],
        "total": result.total,
        # Counting stops at COUNT_LIMIT matches, and the host filter may extrapolate: then
        # ``total`` is a lower bound / estimate, and this says so.
        "total_is_estimate": result.total_is_estimate,
        "page": query.page,
        "per_page": query.per_page,
    }


@router.get("/categories")
def categories(session: SessionDep) -> list[dict[str, Any]]:
    """Categories that have visible plugins, with how many; most populated first."""
    return [{"name": c.name, "count": c.count} for c in search_backend(session).categories(session)]
