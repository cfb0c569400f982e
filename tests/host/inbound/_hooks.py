"""A plugin with webhook endpoints, packed, signed and installed into a host home, shared by
the inbound tests that need one in a host service (pages, restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.signing import generate_private_key, public_key_pem, sign
from tests.host._plugins import write

SECRET = "whsec-Pg7-another-secret-value"  # noqa: S105 a test value, grepped for in outputs
PLUGIN = "acme.inbox"
CODE = """\
import asyncio

from plugport.sdk import Plugin, command, hook, webhook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return name

    @webhook("push")
    async def push(self, event):
        if not await self.api.storage.get("fixed", False):
            raise RuntimeError("the plugin is not ready for " + str(event.json()["n"]))
        seen = await self.api.storage.get("seen", [])
        await self.api.storage.set("seen", seen + [event.delivery_id])

    @webhook("slow")
    async def slow(self, event):
        if event.attempt == 1:
            await asyncio.sleep(120)  # killed before it finishes
        seen = await self.api.storage.get("seen", [])
        await self.api.storage.set("seen", seen + [event.delivery_id])

    @command("inbox.fix")
    async def fix(self):
        await self.api.storage.set("fixed", True)

    @command("inbox.seen")
    async def seen(self):
        return await self.api.storage.get("seen", [])
"""
MANIFEST = """
[permissions]
storage = "64 KiB"

[[contributes.commands]]
id = "inbox.fix"
title = "Be ready"

[[contributes.commands]]
id = "inbox.seen"
title = "What was handled"

[webhooks.push]
verifier = "github"
secret = "push_secret"

[webhooks.slow]
verifier = "github"
secret = "push_secret"

[webhooks.unset]
verifier = "token"
secret = "token_secret"
token-header = "X-Token"
"""


def install_into(home: Path, root: Path, *, secret: bool = True) -> None:
    """Install :data:`PLUGIN` into the host home ``home`` (``root``: scratch space), with its
    ``push_secret`` set to :data:`SECRET` unless ``secret`` is false (``token_secret`` never
    is)."""
    key = generate_private_key()
    source = write(root / "src", PLUGIN, "1.0.0", code=CODE, extra=MANIFEST)
    (root / "dist").mkdir()
    archive = pack_plugin(source, root / "dist").result.path
    Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
    public = root / "acme.pub"
    public.write_text(public_key_pem(key.public_key()))

    async def main() -> None:
        host = PluginHost(app="myapp", app_version="2.4.0", home=home, consent=lambda r: True)
        async with host:
            await host.install(str(archive), key=public)
            if secret:
                host.set_secret(PLUGIN, "push_secret", SECRET.encode())

    asyncio.run(main())
