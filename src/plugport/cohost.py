"""A registry and a host service in one process and one origin (``plugport serve
--host-service``): the marketplace's plugin pages link to the workspaces, whose hosts install
from this very registry over HTTP, as they would from any other."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from plugport.host.service import HostService, HostServiceSettings, add_host_service
from plugport.registry.app import create_app
from plugport.registry.settings import RegistrySettings

__all__ = ["bind", "create_cohosted_app"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the app is made so that the app knows its own URL even
    when the port is 0 (any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def create_cohosted_app(
    registry: RegistrySettings, url: str, service_dir: Path | None = None, **service: Any
) -> FastAPI:
    """The registry's app serving at ``url``, with a host service (data in ``service_dir``,
    default ``<data_dir>/host-service``; other settings from ``service`` or the
    ``PLUGPORT_HOST_SERVICE_*`` environment) whose workspaces install from it."""
    url = url.rstrip("/")
    app = create_app(registry.model_copy(update={"host_service_url": url}))
    settings = HostServiceSettings(
        data_dir=service_dir or registry.data_dir / "host-service",
        registries=(url,),
        **service,
    )
    host_service = HostService(settings)
    app.state.host_service = host_service
    add_host_service(app, host_service)
    registry_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with registry_lifespan(app) as state:
            try:
                yield state
            finally:
                await host_service.close()  # plugins stop before the database goes

    app.router.lifespan_context = lifespan
    return app
