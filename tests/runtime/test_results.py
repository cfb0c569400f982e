"""A plugin's answer that is too large, for the channel or for the worker's memory, fails its call
with a typed error naming the limit, and never as a crash of the worker (msgspec's ``encode``
segfaulted when its buffer could not grow under the worker's address-space limit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.errors import ResourceLimitExceededError
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import kinds, supervise, write_plugin

BIG = """
class Main(Plugin):
    @hook("answer")
    def answer(self, shape):
        mib = 2**20
        if shape == "bytes":
            return b"x" * (100 * mib)  # fits in memory; encoding it a second time does not
        if shape == "list":
            return ["y" * 1024] * (200 * 1024)  # small in memory, 200 MiB encoded
        if shape == "two-gib":
            return b"x" * (2048 * mib)  # cannot even be built under memory_mb = 256
        return os.getpid()
"""
MANIFEST = "[limits]\nmemory_mb = 256\ntimeout_ms = 20000\n[contributes]\nhooks = { answer = 0 }\n"
HOOKS = (HookSpec("answer", ("shape",)),)


@pytest.mark.parametrize("shape", ["bytes", "list"])
def test_an_answer_too_large_to_send_is_refused_and_the_worker_stays(
    tmp_path: Path, shape: str
) -> None:
    install = write_plugin(tmp_path, "acme.big", BIG, MANIFEST)

    async def scenario(runtime: Supervisor) -> None:
        [before] = await runtime.call_hook("answer", shape="pid")
        [outcome] = await runtime.call_hook("answer", shape=shape)
        error = outcome.error
        assert isinstance(error, ResourceLimitExceededError), error
        assert error.limit == "max_frame_bytes"
        assert "the answer to hook 'answer' is too large to send: frame of" in str(error)
        assert "over the 4194304 byte limit" in str(error)
        [after] = await runtime.call_hook("answer", shape="pid")
        assert after.value == before.value  # the same worker, still serving
        assert runtime.status("acme.big")[0].restarts == 0
        assert 'outcome="limit"' in runtime.metrics.render().decode()

    audit = supervise(tmp_path, [install], scenario, hooks=HOOKS)
    assert kinds(audit, "acme.big") == ["activate", "limit", "deactivate"]


def test_an_answer_too_large_for_memory_names_memory_mb(tmp_path: Path) -> None:
    install = write_plugin(tmp_path, "acme.big", BIG, MANIFEST)

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("answer", shape="two-gib")
        error = outcome.error
        assert isinstance(error, ResourceLimitExceededError), error
        assert error.limit == "memory_mb"
        assert error.limit_mb == 256
        assert error.peak_mb is not None
        assert f"memory_mb 256 MiB, peak {error.peak_mb:.0f} MiB" in str(error)
        [after] = await runtime.call_hook("answer", shape="pid")
        assert isinstance(after.value, int)  # a new worker serves: a MemoryError is not reused

    audit = supervise(tmp_path, [install], scenario, hooks=HOOKS)
    assert kinds(audit, "acme.big") == ["activate", "kill", "restart", "deactivate"]
    [kill] = [e for e in audit.query(plugin="acme.big", limit=100) if e.kind == "kill"]
    assert "over its memory limit: memory_mb 256 MiB, peak " in kill.reason
