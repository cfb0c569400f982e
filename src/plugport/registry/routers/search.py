"""``/api/v1/plugins`` (search and browse) and ``/api/v1/categories``: what anyone may find.

Query parameters arrive as plain strings and are checked by :class:`SearchQuery`, so a bad
``page`` is a 400 naming ``page``, like every other rule the registry enforces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from plugport.registry.deps import SessionDep
from plugport.registry.search import SearchQuery, pages
from plugport.registry.search.query import MAX_PER_PAGE, SORTS
from plugport.registry.services import catalog

router = APIRouter(prefix="/api/v1", tags=["search"])

_Text = Annotated[str | None, Query()]
_JSON = "application/json"


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
) -> Response:
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
    # Encoded here rather than by FastAPI: its generic encoder walked every value of every item
    # and cost more than most searches; kept answers are reused while they are exact.
    return Response(pages.search_json(session, query, today=catalog.today()), media_type=_JSON)


@router.get("/categories")
def categories(session: SessionDep) -> Response:
    """Categories that have visible plugins, with how many; most populated first."""
    return Response(pages.categories_json(session), media_type=_JSON)
