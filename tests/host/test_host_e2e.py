"""The host against a real registry on 127.0.0.1, with real sandboxed workers: the issue's
story from install to uninstall, told through the library (the CLI has its own test)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import ConflictError, PlugportError
from plugport.host import ConsentRequest, PluginHost
from plugport.runtime.hooks import HookSpec
from tests.host._plugins import BROKEN, publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

GREET = HookSpec("greet", ("name",))


def host_for(registry: Registry, home: Path, **options: Any) -> PluginHost:
    return PluginHost(
        app="myapp",
        app_version="2.4.0",
        home=home,
        registries=[registry.url],
        hookspecs=[GREET],
        **options,
    )


def run(host: PluginHost, scenario: Callable[[PluginHost], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with host:
            return await scenario(host)

    return asyncio.run(main())


async def greetings(host: PluginHost) -> dict[str, Any]:
    return {
        o.plugin: o.value if o.ok else f"error: {o.error}"
        for o in await host.hooks.greet(name="Ada")
    }


def installed(host_home: Path, registry: Registry) -> dict[str, str]:
    host = host_for(registry, host_home)
    host.open()
    try:
        return {i.name: i.version for i in host.installed()}
    finally:
        asyncio.run(host.stop())


def code_dirs(home: Path) -> set[str]:
    plugins = home / "plugins"
    return (
        {f"{p.name}/{v.name}" for p in plugins.iterdir() for v in p.iterdir()}
        if plugins.is_dir()
        else set()
    )


def test_install_update_rollback_consent_uninstall(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    src, dist, home = tmp_path / "src", tmp_path / "dist", tmp_path / "home"
    publish(registry, publisher, write(src, "acme.alpha", "1.0.0"), dist)
    publish(
        registry,
        publisher,
        write(src, "acme.beta", "1.0.0", dependencies={"acme.alpha": ">=1"}),
        dist,
    )
    asked: list[ConsentRequest] = []

    def consent(request: ConsentRequest) -> bool:
        asked.append(request)
        return True

    # install B pulls A; both answer the hook from their sandboxes
    async def install_b(host: PluginHost) -> Any:
        report = await host.install("acme.beta")
        return report, await greetings(host)

    report, answers = run(host_for(registry, home, consent=consent), install_b)
    assert sorted(report.installed) == [("acme.alpha", "1.0.0", None), ("acme.beta", "1.0.0", None)]
    assert answers == {
        "acme.alpha": "acme.alpha 1.0.0 says hello to Ada",
        "acme.beta": "acme.beta 1.0.0 says hello to Ada",
    }
    assert asked == []  # neither asks for any permission: nothing to consent to
    before = code_dirs(home)

    # A 1.1 cannot start: the update fails, rolls back, and A 1.0 still answers
    publish(registry, publisher, write(src, "acme.alpha", "1.1.0", code=BROKEN), dist)

    async def update_a(host: PluginHost) -> Any:
        with pytest.raises(PlugportError) as failed:
            await host.update("acme.alpha")
        return str(failed.value), await greetings(host)

    message, answers = run(host_for(registry, home, consent=consent), update_a)
    assert "update failed and was rolled back (acme.alpha 1.1.0 -> back to 1.0.0)" in message
    assert answers["acme.alpha"] == "acme.alpha 1.0.0 says hello to Ada"
    assert installed(home, registry) == {"acme.alpha": "1.0.0", "acme.beta": "1.0.0"}
    assert code_dirs(home) == before  # the new files are gone, the old ones untouched

    # A 1.2 wants the network: refused without consent, accepted with it
    publish(
        registry,
        publisher,
        write(src, "acme.alpha", "1.2.0", extra='[permissions]\nnetwork = ["api.example.com"]\n'),
        dist,
    )

    async def update_only(host: PluginHost) -> Any:
        return await host.update("acme.alpha")

    with pytest.raises(PlugportError, match=r"needs consent for: network 'api.example.com'"):
        run(host_for(registry, home), update_only)  # the default: refuse what grows
    assert installed(home, registry)["acme.alpha"] == "1.0.0"
    report = run(host_for(registry, home, consent=consent), update_only)
    assert report.installed == [("acme.alpha", "1.2.0", "1.0.0")]
    assert [(r.name, r.added) for r in asked] == [("acme.alpha", ["network 'api.example.com'"])]

    # uninstall A is refused while B needs it; B then A goes through
    async def uninstall_all(host: PluginHost) -> Any:
        with pytest.raises(
            ConflictError, match=r"needed by acme.beta 1.0.0 \(needs acme.alpha>=1\)"
        ):
            await host.uninstall("acme.alpha")
        await host.uninstall("acme.beta")
        await host.uninstall("acme.alpha", purge=True)
        return [(a.action, a.subject, a.outcome) for a in reversed(host.audit(limit=100))]

    trail = run(host_for(registry, home), uninstall_all)
    assert installed(home, registry) == {}
    assert code_dirs(home) == set()
    assert ("update", "acme.alpha", "rolled-back") in trail
    assert ("consent", "acme.alpha", "refused") in trail
    assert ("uninstall", "acme.alpha", "refused") in trail
    assert ("trust-registry", registry.url, "ok") in trail  # pinned on first use, said so
    assert trail.count(("trust-key", "acme", "ok")) == 1  # once, at the first confirmed install
    assert trail[-2:] == [("uninstall", "acme.beta", "ok"), ("uninstall", "acme.alpha", "ok")]
    with registry.client() as client:
        stats = client.get("/api/v1/plugins/acme.alpha/stats").json()
    # reported by the host (1.0.0 with B, then 1.2.0; the rolled-back 1.1.0 never counted)
    assert stats["totals"]["installs"] == 2
    assert stats["totals"]["uninstalls"] == 1
    assert {(d["version"], d["installs"]) for d in stats["daily"]} >= {("1.0.0", 1), ("1.2.0", 1)}
