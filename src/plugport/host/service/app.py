"""Composing the host service: :func:`add_host_service` puts its API (and pages) into any
FastAPI app, the registry's included; :func:`create_host_service_app` is the app of
``plugport host serve``, which owns the service and closes it on shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from plugport import _web
from plugport._api_errors import install_error_handlers
from plugport._version import __version__
from plugport.host.service.api import api_router
from plugport.host.service.appearance_routes import appearance_api_router, appearance_pages_router
from plugport.host.service.dashboard import (
    dashboard_api_router,
    dashboard_pages_router,
    ui_api_router,
)
from plugport.host.service.inbound import inbound_router
from plugport.host.service.oauth2 import oauth2_api_router, oauth2_pages_router
from plugport.host.service.pages import PAGE_STATIC_DIR, STATIC_PATH, pages_router
from plugport.host.service.service import HostService
from plugport.host.service.settings import HostServiceSettings
from plugport.host.service.task_pages import task_pages_router
from plugport.host.service.tasks import tasks_router
from plugport.host.service.ui_pages import ui_pages_router
from plugport.host.service.update_pages import update_pages_router
from plugport.host.service.updates import updates_router
from plugport.host.service.views import views_router
from plugport.host.ui.render import STATIC_DIR as UI_STATIC_DIR
from plugport.host.ui.render import STATIC_PATH as UI_STATIC_PATH
from plugport.runtime.hooks import HookSpec

__all__ = ["add_host_service", "create_host_service_app"]


def add_host_service(app: FastAPI, service: HostService, *, pages: bool = True) -> None:
    """Include the service's API and (``pages``) its pages in ``app``: ``/api/v1/workspaces…``
    (their ``…/tasks…``, ``…/workflows…``, ``…/updates…``, ``…/dashboard…``, ``…/ui…`` and
    ``…/appearance`` too), ``/api/v1/tokens…``, ``/hooks/…`` (inbound webhooks),
    ``/workspaces…`` (plugins' pages, menu items and custom views, and a workspace's
    ``theme.css``), ``/host-service/static``, ``/host-ui/static`` (the components' script and
    stylesheets) and ``/host-service/ui-assets`` (custom views' signed files); the shared
    stylesheet at ``/static`` is mounted unless the app has it already. The caller owns
    ``service``: await ``service.close()`` in the app's lifespan."""
    app.include_router(api_router(service))
    app.include_router(tasks_router(service))
    app.include_router(dashboard_api_router(service))
    app.include_router(ui_api_router(service))
    app.include_router(inbound_router(service.webhooks))
    app.include_router(oauth2_api_router(service))
    app.include_router(updates_router(service))
    app.include_router(appearance_api_router(service))
    if not pages:
        return
    app.include_router(update_pages_router(service))  # before pages_router: see its docstring
    app.include_router(pages_router(service))
    app.include_router(task_pages_router(service))
    app.include_router(dashboard_pages_router(service))
    app.include_router(oauth2_pages_router(service))
    app.include_router(views_router(service))
    app.include_router(ui_pages_router(service))
    app.include_router(appearance_pages_router(service))
    app.mount(STATIC_PATH, StaticFiles(directory=PAGE_STATIC_DIR), name="static-host-service")
    app.mount(UI_STATIC_PATH, StaticFiles(directory=UI_STATIC_DIR), name="static-host-ui")
    if not any(getattr(route, "path", None) == "/static" for route in app.routes):
        app.mount("/static", StaticFiles(directory=_web.STATIC_DIR), name="static")


def create_host_service_app(
    settings: HostServiceSettings, *, hookspecs: Iterable[HookSpec] = ()
) -> FastAPI:
    """``hookspecs``: the application's hooks, whose arguments and timeouts execute checks."""
    service = HostService(settings, hookspecs=hookspecs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await service.resume_queues()  # webhooks and tasks queued, and schedules
            yield
        finally:
            await service.close()

    app = FastAPI(title="Plugport host service", version=__version__, lifespan=lifespan)
    app.state.host_service = service
    install_error_handlers(app)  # unmatched routes and wrong methods, in the same JSON shape
    add_host_service(app, service)
    return app
