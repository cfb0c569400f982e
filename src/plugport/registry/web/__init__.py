"""The marketplace web UI: server-rendered pages over the same services as the JSON API, with
a little progressive JavaScript (as-you-type search). :func:`install` adds it to an app."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from plugport import _web
from plugport.registry.web import account, pages, ratings, reports, review
from plugport.registry.web._common import STATIC_DIR, error_page

__all__ = ["install"]

_NOT_PAGES = ("/api/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc", "/static/")


def install(app: FastAPI) -> None:
    """Mount the pages and their static files; a browser that asks for a page that does not
    exist gets an HTML 404 page (the API's paths keep their JSON errors)."""
    for module in (pages, account, ratings, review, reports):
        app.include_router(module.router)
    _web.mount_static(app, {"registry": STATIC_DIR})
    json_handler = app.exception_handlers[HTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if (
            isinstance(exc, HTTPException)
            and wants_html
            and not request.url.path.startswith(_NOT_PAGES)
        ):
            return error_page(request, exc.status_code, str(exc.detail))
        response: Response = await json_handler(request, exc)  # type: ignore[misc]
        return response

    app.add_exception_handler(HTTPException, http_error)
