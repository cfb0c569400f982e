"""Updating a running plugin under load: the new version's worker starts beside the old one and
takes over its calls (a hot swap), so no call fails; a new version that cannot start is rolled
back while the old one goes on answering."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plugport.authoring import archive_facts, pack_plugin
from plugport.errors import PlugportError
from plugport.host import PluginHost
from plugport.runtime.hooks import HookSpec
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.host._plugins import BROKEN, code_dirs, write

NAME = "acme.alpha"
GREETER = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    async def greet(self, name):
        return "{label} says hello to " + name
"""
"""Async: a sync handler runs on a thread of its own, and under steady concurrent calls the
default 128 MiB address space can refuse one more thread's stack, whatever the update does."""


def test_an_update_under_load_fails_no_call(tmp_path: Path) -> None:
    key = generate_private_key()
    public = tmp_path / "acme.pub"
    public.write_text(public_key_pem(key.public_key()))

    def archive(version: str, code: str = GREETER) -> str:
        source = write(tmp_path / "src", NAME, version, code=code)
        path = pack_plugin(source, tmp_path / "dist").result.path
        Path(f"{path}.sig").write_bytes(sign(key, archive_facts(path)))
        return str(path)

    v1, v2, broken = archive("1.0.0"), archive("1.1.0"), archive("1.2.0", BROKEN)
    home = tmp_path / "home"

    async def main() -> None:
        async with PluginHost(
            app="myapp", app_version="2.4.0", home=home, hookspecs=[HookSpec("greet", ("name",))]
        ) as host:
            await host.install(v1, key=public)
            await host.supervisor.activate(NAME)
            [first] = host.supervisor.status(NAME)
            stop = asyncio.Event()
            failures: list[BaseException] = []

            async def load(task: int) -> list[str]:
                answers = []
                while not stop.is_set():
                    try:
                        if task % 2:
                            answer = await host.supervisor.call_hook_on(
                                NAME, "greet", {"name": "Ada"}
                            )
                        else:
                            [outcome] = await host.hooks.greet(name="Ada")
                            if outcome.error is not None:
                                raise outcome.error
                            answer = outcome.value
                    except PlugportError as exc:
                        failures.append(exc)
                    else:
                        answers.append(answer.removesuffix(" says hello to Ada"))
                    await asyncio.sleep(0.002)
                return answers

            tasks = [asyncio.create_task(load(i)) for i in range(4)]
            await asyncio.sleep(0.1)
            report = await host.install(v2, key=public)
            assert report.installed == [(NAME, "1.1.0", "1.0.0")]
            await asyncio.sleep(0.1)
            [second] = host.supervisor.status(NAME)
            with pytest.raises(PlugportError) as refused:
                await host.install(broken, key=public)
            await asyncio.sleep(0.1)
            stop.set()
            per_task = await asyncio.gather(*tasks)

            assert failures == []
            for answers in per_task:
                assert answers == sorted(answers)  # 1.0.0, then 1.1.0 only, never back
                assert {"acme.alpha 1.0.0", "acme.alpha 1.1.0"} <= set(answers)
            message = str(refused.value)
            assert "install failed and was rolled back (acme.alpha 1.2.0 -> back to 1.1.0)" in (
                message
            )
            assert "swap of acme.alpha to 1.2.0 refused: the new worker did not start" in message
            assert "this version cannot start" in message
            assert "1.1.0 keeps running" in message
            [after] = host.supervisor.status(NAME)
            assert (after.version, after.pid) == ("1.1.0", second.pid)  # untouched by 1.2.0
            assert not Path(f"/proc/{first.pid}").exists()
            assert [i.version for i in host.installed()] == ["1.1.0"]
            assert {d.split("/")[1].split("-")[0] for d in code_dirs(home)} == {"1.1.0"}

    asyncio.run(main())
