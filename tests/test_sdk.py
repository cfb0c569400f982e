"""Handler declarations attach metadata only; the runtime and validate both read it."""

from __future__ import annotations

from plugport.sdk import Handler, Plugin, command, handlers_of, hook, on_event


class Sample(Plugin):
    @hook
    def bare(self) -> str:
        return "bare"

    @hook("named", priority=7)
    async def impl(self) -> None: ...

    @command("sample.run")
    @on_event("tasks.*")
    def both(self, event: object = None) -> None: ...


def test_handlers_are_declared_not_run() -> None:
    assert handlers_of(Sample) == [
        ("bare", Handler("hook", "bare")),
        ("both", Handler("event", "tasks.*")),
        ("both", Handler("command", "sample.run")),
        ("impl", Handler("hook", "named", 7)),
    ]
    assert handlers_of(Sample()) == handlers_of(Sample)
    assert Sample().bare() == "bare"


def test_plugin_lifecycle_defaults() -> None:
    plugin = Sample()
    assert plugin.initialize() is None
    assert plugin.cleanup() is None
    assert plugin.log.name == "plugport.plugin.Sample"
