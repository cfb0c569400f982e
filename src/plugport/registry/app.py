"""The registry's ASGI app: ``create_app(settings)`` migrates the database, opens the blob
store, and mounts one router per resource; every error leaves as the same JSON shape."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from plugport._version import __version__
from plugport.registry import web
from plugport.registry.blobs import BlobStore, LocalBlobStore, open_blob_store
from plugport.registry.db import make_engine, make_sessions
from plugport.registry.errors import install_error_handlers
from plugport.registry.http import RegistryMiddleware, RequestMetrics
from plugport.registry.migrate import upgrade
from plugport.registry.orphans import Uploads, collecting
from plugport.registry.ratelimit import (
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from plugport.registry.routers import (
    community,
    health,
    lifecycle,
    metrics,
    namespaces,
    plugins,
    profiles,
    reports,
    review,
    search,
    signed_index,
    tokens,
    tuf,
)
from plugport.registry.search import pages as search_pages
from plugport.registry.services import domains, tuf_repo
from plugport.registry.services.index_key import node_index_key
from plugport.registry.services.profiles import pseudonym_secret
from plugport.registry.services.tokens import StoredTokens
from plugport.registry.settings import RegistrySettings
from plugport.registry.verification import CheckOptions, DomainChecker, SystemResolver, rechecking
from plugport.signing import key_id

__all__ = ["create_app"]


def _private_paths(settings: RegistrySettings, blobs: BlobStore) -> list[Path]:
    """Where this node keeps things (data, blobs, uploads being received): no error shows them."""
    paths = [settings.data_dir.absolute(), Path(tempfile.gettempdir())]
    if isinstance(blobs, LocalBlobStore):
        paths.append(blobs.root.absolute())
    return paths


def create_app(
    settings: RegistrySettings,
    *,
    engine: Engine | None = None,
    blobs: BlobStore | None = None,
    limiter: RateLimiter | None = None,
    domain_checker: DomainChecker | None = None,
) -> FastAPI:
    """``domain_checker`` replaces the DNS and HTTPS check of publishers' domains (tests)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or make_engine(settings.sqlalchemy_url())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            collecting(
                app.state.blobs,
                app.state.sessions,
                app.state.uploads,
                interval_s=settings.blob_gc_interval_s,
                min_age_s=settings.blob_gc_min_age_s,
            ),
            rechecking(
                app.state.sessions,
                app.state.domain_checker,
                functools.partial(
                    domains.recheck_due,
                    older_than_s=settings.domain_recheck_interval_s / 2,
                    allowed_failures=settings.domain_recheck_failures_allowed,
                ),
                interval_s=settings.domain_recheck_interval_s,
            ),
        ):
            yield
        engine.dispose()

    upgrade(engine)  # before the first request: a node never serves an old schema
    app = FastAPI(
        title="Plugport registry",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessions(engine)
    search_pages.configure(engine, freshness_s=settings.search_freshness_ms / 1000)
    app.state.index_key = node_index_key(
        engine, settings.index_key_path(), rotate=settings.rotate_index_key
    )
    app.state.pseudonym_secret = pseudonym_secret(app.state.index_key)
    app.state.tuf_keys = tuf_repo.node_keys(engine, settings.tuf_keys_path())
    if blobs is None:  # not `blobs or`: an empty MemoryBlobStore is falsy (it has a len)
        blobs = open_blob_store(
            settings.blob_url, settings.data_dir, s3_endpoint_url=settings.s3_endpoint_url
        )
    app.state.blobs = blobs
    app.state.uploads = Uploads()
    app.state.domain_checker = domain_checker or DomainChecker(
        SystemResolver(),
        CheckOptions(
            timeout_s=settings.domain_check_timeout_s,
            ca_file=settings.domain_check_ca_file,
            loopback=settings.domain_check_loopback,
        ),
    )
    install_error_handlers(app, private_paths=_private_paths(settings, blobs))
    if limiter is None and settings.redis_url:
        # Keyed by the index key every node of this registry shares: another registry on the
        # same Redis database counts apart.
        namespace = key_id(app.state.index_key.public_key())[:16]
        limiter = RedisRateLimiter(settings.redis_url, namespace=namespace)
    app.state.limiter = FallbackRateLimiter(
        limiter or MemoryRateLimiter(), shared=isinstance(limiter, RedisRateLimiter)
    )
    app.state.metrics = RequestMetrics(app.state.limiter)
    app.add_middleware(
        RegistryMiddleware,
        limiter=app.state.limiter,
        tokens=StoredTokens(app.state.sessions),
        limit_per_minute=settings.rate_limit_per_minute,
        max_request_bytes=settings.max_request_bytes,
        metrics=app.state.metrics,
    )
    routers = (
        health,
        metrics,
        tokens,
        namespaces,
        search,
        plugins,
        lifecycle,
        review,
        community,
        profiles,
        reports,
        signed_index,
        tuf,
    )
    for module in routers:
        app.include_router(module.router)
    web.install(app)  # the marketplace pages, after the API: /api/* keeps its JSON errors
    return app
