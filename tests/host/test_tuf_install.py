"""Installing through TUF from a real registry (uvicorn on 127.0.0.1, SQLite and PostgreSQL):
the host verifies the registry's metadata with python-tuf's ngclient, from the operator's
root or, on first contact, the registry's root version 1."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine

from plugport.host import PluginHost
from plugport.host.tuf_client import metadata_dir, trusted_roles
from tests.host._plugins import publish, write
from tests.registry._tuf import enable_tuf
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher


def _host(home: Path, registry: Registry, **options: object) -> PluginHost:
    return PluginHost(
        app="myapp",
        app_version="2.4.0",
        home=home,
        registries=[registry.url],
        **options,  # type: ignore[arg-type]
    )


def test_install_through_tuf_from_the_configured_root(engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        publisher = Publisher(registry, tmp_path / "scratch")
        publish(registry, publisher, write(tmp_path / "src", "acme.hello", "1.0.0"), tmp_path / "d")
        home = tmp_path / "home"

        async def install() -> None:
            async with _host(home, registry, tuf_roots={registry.url: tuf.root}) as host:
                await host.install("acme.hello")

        asyncio.run(install())
        assert (home / "plugins" / "acme.hello").is_dir()
        roles = trusted_roles(metadata_dir(home, registry.url)).roles
        assert set(roles) == {"root", "timestamp", "snapshot", "targets"}
        with registry.client() as http:
            assert http.get("/api/v1/index").status_code == 200  # v1 still served
