"""Calling one plugin's hook alone (what the host service's execute endpoint does): the other
implementations are not called, a failure is raised rather than an outcome, an undeclared hook
the plugin contributes can be called, and ``measure`` reads the worker's CPU and memory now."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.errors import InvalidInputError, PluginCallError
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import supervise, write_plugin

GREETER = """
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{who} greets " + name

    @hook("shout")
    def shout(self, text):
        return text.upper()

    @hook("fail")
    def fail(self):
        raise ValueError("no")
"""
HOOKS = "[contributes]\nhooks = { greet = 0, shout = 0, fail = 0 }\n"


def test_one_plugin_is_called_alone(tmp_path: Path) -> None:
    one = write_plugin(tmp_path, "acme.one", GREETER.replace("{who}", "one"), HOOKS)
    two = write_plugin(tmp_path, "acme.two", GREETER.replace("{who}", "two"), HOOKS)

    async def scenario(runtime: Supervisor) -> None:
        assert await runtime.call_hook_on("acme.two", "greet", {"name": "Ada"}) == "two greets Ada"
        assert [s.state for s in runtime.status()] == ["inactive", "active"]  # one never ran
        # not declared by the host, contributed by the plugin: called with the caller's input
        assert await runtime.call_hook_on("acme.two", "shout", {"text": "hi"}) == "HI"
        with pytest.raises(PluginCallError, match="ValueError: no"):
            await runtime.call_hook_on("acme.two", "fail", {})
        with pytest.raises(InvalidInputError, match=r"greet' takes \(name\): missing name"):
            await runtime.call_hook_on("acme.two", "greet", {})
        with pytest.raises(InvalidInputError, match=r"contributes no hook 'nope' \(it has: fail"):
            await runtime.call_hook_on("acme.two", "nope", {})
        with pytest.raises(InvalidInputError, match=r"no plugin 'acme\.three' is added"):
            await runtime.call_hook_on("acme.three", "greet", {"name": "Ada"})
        measured = await runtime.measure("acme.two")
        assert measured.cpu_seconds > 0
        assert measured.peak_rss_bytes > 1024 * 1024
        assert (await runtime.measure("acme.one")).peak_rss_bytes == 0  # not running: no reading

    supervise(tmp_path, [one, two], scenario, hooks=(HookSpec("greet", ("name",)),))
