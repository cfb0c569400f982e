"""A real plugin that processes tasks, installed into a host home for the queue's tests: it
echoes, fails on demand, sleeps past its timeout, returns a bad result, reports progress,
submits follow-ups, and records each effect once per idempotency key in its storage; ADD,
CONCAT, FAIL and UNDO are the workflows' steps, each counting its runs in the storage key
``effect:<idempotency key>``.

``EFFECT`` is the crash tests' task: each attempt leaves ``run:<key>:<attempt>``, the effect
``effect:<key>`` is applied once per idempotency key (an attempt that finds it skips it), it
reports progress once both are stored, then (``gated``) waits until the host sets the storage
key ``gate`` (:func:`open_gate`), and counts its completions in ``done:<key>``. ``NOOP`` does
nothing, for the benchmark's figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions
from plugport.signing import generate_private_key, public_key_pem, sign

T = TypeVar("T")

PLUGIN = "acme.tasker"

CODE = """\
import asyncio, time
from plugport.sdk import Plugin, hook, task


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "hello " + name

    @task("ECHO")
    async def echo(self, t):
        await self.api.tasks.progress(50, "half way")
        if t.payload.get("sleep"):
            await asyncio.sleep(t.payload["sleep"])
        effects = await self.api.storage.get("effects") or {}
        effects[t.idempotency_key] = effects.get(t.idempotency_key, 0) + 1
        await self.api.storage.set("effects", effects)
        return {"echo": t.payload["text"], "attempt": t.attempt}

    @task("FLAKY")
    async def flaky(self, t):
        if t.attempt < t.payload["succeed_on"]:
            raise RuntimeError(f"attempt {t.attempt} fails")
        return {"attempts": t.attempt}

    @task("SLOW")
    async def slow(self, t):
        await asyncio.sleep(30)
        return {}

    @task("BAD_RESULT")
    def bad_result(self, t):
        return {"count": "many"}

    @task("FANOUT")
    async def fanout(self, t):
        ids = []
        for i in range(t.payload["n"]):
            ids.append(await self.api.tasks.submit("ECHO", {"text": f"child {i}"}))
        return {"children": ids}

    @task("SLEEPY")
    async def sleepy(self, t):
        await asyncio.sleep(t.payload.get("s", 0.2))
        return {"slept": t.payload.get("s", 0.2)}

    @task("NOOP")
    def noop(self, t):
        return None

    @task("SNEAKY")
    async def sneaky(self, t):
        return {"id": await self.api.tasks.submit("OTHER", {})}

    async def _effect(self, t):
        key = "effect:" + t.idempotency_key
        await self.api.storage.set(key, (await self.api.storage.get(key) or 0) + 1)

    @task("ADD")
    async def add(self, t):
        await self._effect(t)
        if t.payload.get("sleep"):
            await asyncio.sleep(t.payload["sleep"])
        return {"sum": t.payload["a"] + t.payload["b"]}

    @task("CONCAT")
    async def concat(self, t):
        await self._effect(t)
        return {"text": t.payload.get("sep", "").join(str(p) for p in t.payload["parts"])}

    @task("FAIL")
    async def fail(self, t):
        await self._effect(t)
        raise RuntimeError("FAIL fails, as asked")

    @task("UNDO")
    async def undo(self, t):
        await self._effect(t)
        undone = await self.api.storage.get("undone") or []
        await self.api.storage.set("undone", undone + [t.payload["what"]])
        return {"undone": t.payload["what"]}

    @task("EFFECT")
    async def effect(self, t):
        key = t.idempotency_key
        await self.api.storage.set(f"run:{key}:{t.attempt}", t.id)
        if await self.api.storage.get(f"effect:{key}") is None:
            await self.api.storage.set(f"effect:{key}", t.attempt)
        await self.api.tasks.progress(10, "effect recorded")
        while t.payload.get("gated") and not await self.api.storage.get("gate"):
            await asyncio.sleep(0.05)
        done = await self.api.storage.get(f"done:{key}") or 0
        await self.api.storage.set(f"done:{key}", done + 1)
        return {"key": key}
"""

MANIFEST = """\
[permissions]
storage = "1 MiB"
tasks.submit = ["ECHO"]

[limits]
max_concurrency = 4
timeout_ms = 5000

[tasks.ECHO]
result = { type = "object", required = ["echo"] }
idempotency-key = "/text"
max-attempts = 2
backoff-seconds = 0.05

[tasks.ECHO.payload]
type = "object"
required = ["text"]
properties = { text = { type = "string" }, sleep = { type = "number" } }

[tasks.FLAKY]
payload = { type = "object", properties = { succeed_on = { type = "integer" } } }
max-attempts = 3
backoff-seconds = 0.05
max-backoff-seconds = 0.1

[tasks.SLOW]
timeout-ms = 300
max-attempts = 1

[tasks.BAD_RESULT]
result = { type = "object", properties = { count = { type = "integer" } } }

[tasks.FANOUT]
concurrency = 1

[tasks.SLEEPY]
concurrency = 2

[tasks.NOOP]

[tasks.SNEAKY]
max-attempts = 1

[tasks.ADD]
result = { type = "object", required = ["sum"] }
max-attempts = 1

[tasks.CONCAT]
max-attempts = 1

[tasks.CONCAT.payload]
type = "object"
required = ["parts"]
properties = { parts = { type = "array" }, sep = { type = "string" } }

[tasks.FAIL]
max-attempts = 1
backoff-seconds = 0.05
max-backoff-seconds = 0.05

[tasks.ADD.payload]
type = "object"
required = ["a", "b"]
properties = { a = { type = "number" }, b = { type = "number" }, sleep = { type = "number" } }

[tasks.UNDO]
payload = { type = "object", required = ["what"] }
max-attempts = 1

[tasks.EFFECT]
idempotency-key = "/key"
timeout-ms = 120000

[tasks.EFFECT.payload]
type = "object"
required = ["key"]
properties = { key = { type = "string" }, gated = { type = "boolean" } }
"""


GUARD = "acme.guard"
GUARD_CODE = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return name

    @hook("before_task")
    def before_task(self, task):
        if task["payload"] and task["payload"].get("text") == "blocked":
            return {"reject": "the text 'blocked' is over its rate"}
        return None

    @hook("after_task")
    async def after_task(self, task, result):
        seen = await self.api.storage.get("seen") or []
        await self.api.storage.set("seen", seen + [task["id"]])

    @hook("on_task_error")
    async def on_task_error(self, task, error, final):
        errors = await self.api.storage.get("errors") or []
        await self.api.storage.set("errors", errors + [[task["id"], final]])
"""
GUARD_MANIFEST = """\
[permissions]
storage = "1 MiB"

[contributes.hooks]
before_task = 10
after_task = 0
on_task_error = 0
"""


def install_tasker(
    home: Path,
    root: Path,
    *,
    code: str = CODE,
    manifest: str = MANIFEST,
    name: str = PLUGIN,
    trust: bool = False,
) -> None:
    """Install the tasker plugin (or another, by ``name``) into ``home`` (``root``: scratch
    space)."""
    key = generate_private_key()
    source = root / "src" / name
    source.mkdir(parents=True)
    (source / "main.py").write_text(code)
    contributes = "" if "[contributes" in manifest else "[contributes]\nhooks = { greet = 0 }\n"
    (source / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n'
        f'display_name = "{name}"\ndescription = "A test plugin."\n' + manifest + contributes
    )
    (root / "dist").mkdir(exist_ok=True)
    archive = pack_plugin(source, root / "dist").result.path
    public = root / f"{name}.pub"
    Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
    public.write_text(public_key_pem(key.public_key()))

    async def main() -> None:
        host = PluginHost(
            app="myapp", app_version="2.4.0", home=home, consent=lambda r: True, run_tasks=False
        )
        async with host:
            await host.install(str(archive), key=public, trust_new_key=trust)

    asyncio.run(main())


def open_gate(host: PluginHost) -> None:
    """Let every gated ``EFFECT`` task of ``host``'s tasker finish (set from the host side)."""
    host.supervisor.services.storage.set(PLUGIN, "gate", True, quota_bytes=1 << 20)


def storage_of(home: Path, plugin: str = PLUGIN) -> dict[str, Any]:
    """``plugin``'s storage in ``home``, read straight from the file (its host may be dead)."""
    (found,) = home.rglob("runtime.sqlite")
    with contextlib.closing(sqlite3.connect(found)) as db:
        rows = db.execute("SELECT key, value FROM plugin_storage WHERE plugin = ?", (plugin,))
        return {key: json.loads(value) for key, value in rows}


def effects(storage: dict[str, Any]) -> tuple[Counter[str], dict[str, Any], Counter[str]]:
    """``EFFECT``'s traces in one storage: attempts that ran per key, the effect per key (the
    attempt that applied it), completions per key."""
    runs: Counter[str] = Counter()
    applied: dict[str, Any] = {}
    done: Counter[str] = Counter()
    for name, value in storage.items():
        kind, _, rest = name.partition(":")
        if kind == "run":
            runs[rest.rsplit(":", 1)[0]] += 1
        elif kind == "effect":
            applied[rest] = value
        elif kind == "done":
            done[rest] += value
    return runs, applied, done


def with_host(
    home: Path,
    action: Callable[[PluginHost], Awaitable[T]],
    *,
    options: QueueOptions | None = None,
    **kwargs: Any,
) -> T:
    async def main() -> T:
        host = PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=home,
            consent=lambda r: True,
            task_options=options,
            **kwargs,
        )
        async with host:
            return await action(host)

    return asyncio.run(main())
