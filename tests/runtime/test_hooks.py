"""The hook call loop with an injected call function: order, isolation, firstresult."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plugport.errors import InvalidInputError, PluginCallError, PluginCrashedError
from plugport.runtime.hooks import HookImpl, HookRegistry, HookSpec, call_hook


def registry(firstresult: bool = False) -> HookRegistry:
    reg = HookRegistry()
    reg.declare(HookSpec("process", ("task",), firstresult=firstresult))
    reg.register(HookImpl("acme.low", "process", priority=1))
    reg.register(HookImpl("acme.high", "process", priority=10))
    reg.register(HookImpl("acme.mid-b", "process", priority=5))
    reg.register(HookImpl("acme.mid-a", "process", priority=5))
    return reg


def run(reg: HookRegistry, answers: dict[str, Any], **options: Any) -> list[Any]:
    called: list[str] = []

    async def call_one(impl: HookImpl, kwargs: dict[str, Any]) -> Any:
        called.append(impl.plugin)
        answer = answers.get(impl.plugin)
        if isinstance(answer, Exception):
            raise answer
        return answer

    outcomes = asyncio.run(call_hook(reg, "process", {"task": 1}, call_one, **options))
    assert [o.plugin for o in outcomes] == called
    return outcomes


def test_priority_order_with_name_tiebreak() -> None:
    outcomes = run(registry(), {})
    assert [o.plugin for o in outcomes] == ["acme.high", "acme.mid-a", "acme.mid-b", "acme.low"]


def test_host_overrides_priorities() -> None:
    outcomes = run(registry(), {}, overrides={"acme.low": 100})
    assert outcomes[0].plugin == "acme.low"


def test_a_failure_never_stops_the_others() -> None:
    crash = PluginCrashedError("acme.high", "segmentation fault (SIGSEGV)")
    error = PluginCallError("acme.mid-a", "ValueError", "bad task")
    outcomes = run(registry(), {"acme.high": crash, "acme.mid-a": error, "acme.low": 3})
    assert [(o.plugin, o.ok) for o in outcomes] == [
        ("acme.high", False),
        ("acme.mid-a", False),
        ("acme.mid-b", True),
        ("acme.low", True),
    ]
    assert outcomes[0].error is crash
    assert outcomes[3].value == 3


def test_firstresult_stops_at_first_non_none_success() -> None:
    failing = PluginCallError("acme.high", "KeyError", "x")
    outcomes = run(registry(firstresult=True), {"acme.high": failing, "acme.mid-b": "done"})
    assert [o.plugin for o in outcomes] == ["acme.high", "acme.mid-a", "acme.mid-b"]
    assert outcomes[-1].value == "done"


def test_arguments_are_checked_against_the_spec() -> None:
    reg = registry()

    async def never(impl: HookImpl, kwargs: dict[str, Any]) -> Any:
        raise AssertionError("must not be called")

    with pytest.raises(InvalidInputError, match=r"takes \(task\): missing task; unknown job"):
        asyncio.run(call_hook(reg, "process", {"job": 1}, never))
    with pytest.raises(InvalidInputError, match="unknown hook 'nope'; declared hooks: process"):
        asyncio.run(call_hook(reg, "nope", {}, never))


def test_register_undeclared_hook_and_unregister() -> None:
    reg = registry()
    with pytest.raises(InvalidInputError, match="does not declare"):
        reg.register(HookImpl("acme.x1", "other"))
    reg.unregister("acme.high")
    assert "acme.high" not in [i.plugin for i in reg.ordered("process")]


def test_concurrent_hooks_run_at_once_and_answer_in_priority_order() -> None:
    reg = registry()
    reg.declare(HookSpec("process", ("task",), concurrent=True))
    started: list[str] = []
    release = asyncio.Event()

    async def call_one(impl: HookImpl, kwargs: dict[str, Any]) -> Any:
        started.append(impl.plugin)
        if len(started) == 4:
            release.set()
        await release.wait()  # only returns once all four are running at the same time
        if impl.plugin == "acme.mid-a":
            raise PluginCallError(impl.plugin, "ValueError", "bad")
        return impl.plugin

    async def main() -> list[Any]:
        return await asyncio.wait_for(call_hook(reg, "process", {"task": 1}, call_one), 5)

    outcomes = asyncio.run(main())
    assert [(o.plugin, o.ok) for o in outcomes] == [
        ("acme.high", True),
        ("acme.mid-a", False),
        ("acme.mid-b", True),
        ("acme.low", True),
    ]


def test_concurrent_and_firstresult_do_not_mix() -> None:
    with pytest.raises(ValueError, match="firstresult needs the order"):
        HookSpec("pick", firstresult=True, concurrent=True)
