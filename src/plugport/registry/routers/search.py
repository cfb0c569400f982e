"""``/api/v1/plugins`` (search and browse) and ``/api/v1/categories``: what anyone may find.

Query parameters arrive as plain strings and are checked by :class:`SearchQuery`, so a bad
``page`` is a 400 naming ``page``, like every other rule the registry enforces."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from plugport.registry.search import SearchQuery, pages
from plugport.registry.search.query import MAX_PER_PAGE, SORTS
from plugport.registry.services import catalog

router = APIRouter(prefix="/api/v1", tags=["search"])

_Text = Annotated[str | None, Query()]
_JSON = "application/json"


def _kept(request: Request, key: Hashable) -> Response | None:
    """A kept answer served on the event loop, with no thread and no database read, when the
    registry's freshness bound allows (``search_freshness_ms``; see ``search.pages``)."""
    body = pages.kept(request.app.state.engine, key)
    return None if body is None else Response(body, media_type=_JSON)


async def _read(request: Request, body: Callable[[Session], bytes]) -> Response:
    """``body`` of a read-only transaction, computed in one worker thread.

    These are the routes every visitor's typing and browsing hits. As sync routes with the
    session dependency they crossed between the event loop and the thread pool three times
    (the session's start, the route, its end), each a thread to wake: with every core busy,
    waiting for those wake-ups was a large part of a search's latency. One crossing here."""

    def answer() -> bytes:
        with request.app.state.sessions.begin() as session:
            return body(session)

    return Response(await run_in_threadpool(answer), media_type=_JSON)


@router.get("/plugins")
async def search_plugins(
    *,
    request: Request,
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
    today = catalog.today()
    kept = _kept(request, pages.search_key(query, today))
    if kept is not None:
        return kept
    return await _read(request, lambda session: pages.search_json(session, query, today=today))


@router.get("/categories")
async def categories(request: Request) -> Response:
    """Categories that have visible plugins, with how many; most populated first."""
    return _kept(request, pages.CATEGORIES_KEY) or await _read(request, pages.categories_json)
