"""``PluginHost.stop`` closes every part even when one fails: a workflow runner whose close
raises must not leave the supervisor (and its plugin processes) or the state database open."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plugport.host import PluginHost


class _Broken:
    async def close(self) -> None:
        raise RuntimeError("the runner could not close")


def test_a_part_that_fails_to_close_does_not_keep_the_others_open(tmp_path: Path) -> None:
    host = PluginHost(app="a", app_version="1", home=tmp_path / "home")

    async def scenario() -> None:
        await host.start_runtime()
        host.workflows = _Broken()  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="the runner could not close"):
            await host.stop()

    asyncio.run(scenario())
    assert host.supervisor._closed  # the supervisor was closed after the runner failed
    with pytest.raises(Exception, match=r"(?i)closed"):
        host.state.installations()  # and so was the state database
