"""A version the registry quarantined, seen from hosts (a real registry on 127.0.0.1): refused
even pinned, through the v1 signed index and through TUF, with a message that says so and
nothing installed; a host that has it installed sees it flagged at its update check (the CLI's
``check-updates`` and the host service's installed-plugins pages); a release restores it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from tuf.api.metadata import TargetFile

from plugport.errors import SignatureError
from plugport.host import PluginHost
from plugport.host.state import HostState
from plugport.host.tuf_client import _entry
from tests.conftest import RunCli
from tests.host._plugins import publish, write
from tests.host._service import market_at, serving, settings_for
from tests.host.test_service_pages import signed_in
from tests.host.test_service_updates import install as install_in_workspace
from tests.registry._tuf import enable_tuf
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher

NAME = "acme.hello"


def _with_host(
    home: Path, registry: Registry, act: Callable[[PluginHost], Any], **options: Any
) -> Any:
    async def run() -> Any:
        async with PluginHost(
            app="myapp", app_version="2.4.0", home=home, registries=[registry.url], **options
        ) as host:
            found = act(host)
            return await found if asyncio.iscoroutine(found) else found

    return asyncio.run(run())


def _quarantine(registry: Registry, version: str, reason: str | None) -> None:
    action = "quarantine" if reason else "release"
    with registry.client(registry.admin) as admin:
        admin.post(
            f"/api/v1/plugins/{NAME}/versions/{version}/{action}",
            json={"reason": reason} if reason else None,
        ).raise_for_status()


def _publish_two(registry: Registry, root: Path) -> None:
    publisher = Publisher(registry, root / "scratch")
    for version in ("1.0.0", "1.1.0"):
        publish(registry, publisher, write(root / "src", NAME, version), root / "dist")


def _refusals(home: Path) -> list[str]:
    state = HostState(home / "host.sqlite")
    return [
        str(a.detail.get("reason"))
        for a in state.audit_trail(limit=100)
        if a.action == "verify" and a.outcome == "refused"
    ]


@pytest.mark.parametrize("trust", ["index", "tuf"])
def test_a_quarantined_version_is_refused_even_pinned_and_flagged_where_installed(
    engine: Engine, tmp_path: Path, run_cli: RunCli, trust: str
) -> None:
    data = tmp_path / "data"
    options: dict[str, Any] = {}
    if trust == "tuf":
        tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        if trust == "tuf":
            options["tuf_roots"] = {registry.url: tuf.root}
        _publish_two(registry, tmp_path)
        home = tmp_path / "home"
        _with_host(home, registry, lambda h: h.install(f"{NAME}==1.1.0"), **options)
        _quarantine(registry, "1.1.0", "it sends tokens away")

        # the host that has it: flagged at its next update check
        flagged = _with_host(home, registry, lambda h: h.quarantined_installs(), **options)
        assert flagged == [(NAME, "1.1.0", "it sends tokens away")]
        shown = run_cli("check-updates", "--home", str(home), "--registry", registry.url)
        assert shown.exit_code == 0, shown.output
        assert (
            f"{NAME} 1.1.0 is QUARANTINED by the registry: it sends tokens away; update it or "
            "uninstall it"
        ) in " ".join(shown.output.split())
        assert "everything is up to date" not in shown.output

        # a host that asks for it: refused even pinned, nothing installed, audited
        fresh = tmp_path / "fresh"
        with pytest.raises(SignatureError) as refused:
            _with_host(fresh, registry, lambda h: h.install(f"{NAME}==1.1.0"), **options)
        assert refused.value.part == "quarantined"
        message = str(refused.value)
        assert f"{NAME} 1.1.0 is quarantined by the registry (it sends tokens away)" in message
        assert "refused even when pinned; nothing was installed" in message
        assert not (fresh / "plugins" / NAME).exists()
        assert _refusals(fresh) == [message]
        # unpinned, resolution passes over it
        _with_host(fresh, registry, lambda h: h.install(NAME), **options)
        assert HostState(fresh / "host.sqlite").get(NAME).version == "1.0.0"  # type: ignore[union-attr]

        # released: offered again, and no longer flagged
        _quarantine(registry, "1.1.0", None)
        assert _with_host(home, registry, lambda h: h.quarantined_installs(), **options) == []
        _with_host(fresh, registry, lambda h: h.update(NAME), **options)
        assert HostState(fresh / "host.sqlite").get(NAME).version == "1.1.0"  # type: ignore[union-attr]


def test_a_tuf_target_flagged_quarantined_is_refused_by_the_fetcher() -> None:
    """The TUF facts reach the entry the fetcher checks (a flagged target is refused even if
    a registry's versions list offered it)."""
    custom = {"plugport": {"key_id": "a" * 64, "yanked": False, "quarantined": True}}
    info = TargetFile(
        10, {"sha256": "b" * 64}, "acme.hello/acme.hello-1.0.0.plugport", {"custom": custom}
    )
    assert _entry("https://r.example", info, NAME, "1.0.0").quarantined
    plain = TargetFile(
        10,
        {"sha256": "b" * 64},
        "p",
        {"custom": {"plugport": {"key_id": "a" * 64, "yanked": False}}},
    )
    assert not _entry("https://r.example", plain, NAME, "1.0.0").quarantined


def test_the_host_service_page_flags_an_installed_quarantined_version(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with market_at(tmp_path_factory.mktemp("market")) as market:
        root = tmp_path_factory.mktemp("service")
        with serving(settings_for(root, market, update_check_ttl_s=0)) as service:
            token = service.workspace("flags")
            with service.client(token) as api:
                install_in_workspace(api, "flags", "acme.alpha")
            with signed_in(service, token) as browser:
                page = browser.get("/workspaces/flags").text
                assert 'data-testid="registry-quarantine"' not in page
                with market.registry.client(market.registry.admin) as admin:
                    admin.post(
                        "/api/v1/plugins/acme.alpha/versions/1.0.0/quarantine",
                        json={"reason": "crypto miner"},
                    ).raise_for_status()
                page = browser.get("/workspaces/flags").text
                assert "quarantined by the registry: crypto miner" in page
                item = browser.get("/workspaces/flags/installations/acme.alpha").text
                assert 'data-testid="registry-quarantine"' in item
                assert "crypto miner" in item
                with service.client(token) as api:
                    rows = api.get("/api/v1/workspaces/flags/installations").json()["items"]
                row = next(r for r in rows if r["name"] == "acme.alpha")
                assert row["registry_quarantine"] == "crypto miner"
