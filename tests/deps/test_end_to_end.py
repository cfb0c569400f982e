"""The issue's story end to end, through real processes and real HTTP: an author locks a plugin
that uses ``markdown`` against a package index, packs, signs and publishes it; a reviewer sees
the locked library on the review page and approves; a host installs it from the registry and
the plugin renders Markdown with that library inside its sandbox. A second plugin that locks the
same wheel adds no second copy to the host's store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from plugport.authoring import pack_plugin
from plugport.deps.locker import IndexOptions, lock_plugin
from plugport.deps.lockfile import load_lock
from plugport.host import PluginHost
from plugport.runtime.hooks import HookSpec
from plugport.testing.pypi import LocalIndex
from tests.deps.conftest import plugin_source
from tests.host.conftest import engine, registry
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

__all__ = ["engine", "registry"]  # the host tests' registry: SQLite, real HTTP

HOOKS = [HookSpec("render", ("text",)), HookSpec("where", ())]


def page(registry: Registry, path: str, token: str) -> str:
    with httpx.Client(base_url=registry.url, timeout=10) as client:
        client.cookies.set("plugport_registry_token", token)
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def test_lock_pack_publish_review_install_and_run(
    registry: Registry, index: LocalIndex, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "publisher")
    reviewer = registry.token("rex", "review")
    archives = []
    for name in ("acme.notes", "acme.digest"):
        source = plugin_source(tmp_path / "src", name, ["markdown>=3.5"])
        lock_plugin(source, index=IndexOptions(index_url=index.url))
        archive = pack_plugin(source, tmp_path / "dist").result.path
        response = publisher.upload(archive, name=name)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending_review"  # a new namespace: reviewed
        archives.append(archive)
    lock = load_lock(tmp_path / "src" / "acme.notes")
    assert lock is not None
    [markdown] = lock.packages
    [wheel] = markdown.wheels

    # The reviewer sees the locked library, its version and its hash before approving.
    review = page(registry, "/review/acme.notes/1.0.0", reviewer)
    assert re.search(rf'data-name="markdown" data-version="{re.escape(markdown.version)}"', review)
    assert wheel.sha256 in review
    with httpx.Client(
        base_url=registry.url, headers={"Authorization": f"Bearer {reviewer}"}, timeout=10
    ) as client:
        for name in ("acme.notes", "acme.digest"):
            client.post(
                f"/api/v1/review/{name}/1.0.0/approve", json={"reason": "markdown, pinned"}
            ).raise_for_status()
        detail = client.get("/api/v1/plugins/acme.notes/versions/1.0.0").json()
    assert [d["name"] for d in detail["python_dependencies"]] == ["markdown"]

    home = tmp_path / "home"

    async def scenario() -> tuple[list[Any], list[Any], list[str], list[str]]:
        host = PluginHost(
            app="myapp", app_version="1.0", home=home, registries=[registry.url], hookspecs=HOOKS
        )
        async with host:
            await host.install("acme.notes", trust_new_key=True)
            first_store = sorted(p.name for p in (home / "wheels").iterdir())
            await host.install("acme.digest")
            second_store = sorted(p.name for p in (home / "wheels").iterdir())
            rendered = [o.value for o in await host.hooks.render(text="# Hello *world*")]
            where = [o.value for o in await host.hooks.where()]
        return rendered, where, first_store, second_store

    rendered, where, first_store, second_store = asyncio.run(scenario())
    assert all(r.startswith("<h1>Hello <em>world</em></h1> via markdown") for r in rendered)
    assert len(rendered) == 2
    # Both plugins import the one copy in the store, the wheel the signed lock names.
    entry = home / "wheels" / wheel.sha256
    assert where == [str(entry / "markdown" / "__init__.py")] * 2
    assert first_store == second_store == [wheel.sha256]
