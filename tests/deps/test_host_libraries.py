"""The host side: locked wheels from a signed archive into the shared, read-only wheel store;
the plugin imports them in its sandbox and cannot write to them; shared entries, different pins
side by side, collection on uninstall, and refusals that leave nothing installed."""

from __future__ import annotations

import asyncio
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from plugport.authoring import archive_facts, pack_plugin
from plugport.deps.locker import IndexOptions, lock_plugin
from plugport.deps.lockfile import load_lock
from plugport.deps.store import COMPILED, MARKER, WheelStore
from plugport.errors import DependencyError, PlugportError, SignatureError
from plugport.host import PluginHost
from plugport.runtime.hooks import HookSpec
from plugport.signing import generate_private_key, public_key_pem, sign
from plugport.testing.pypi import LocalIndex
from tests.deps.conftest import plugin_source

HOOKS = [HookSpec("render", ("text",)), HookSpec("where", ()), HookSpec("attack", ())]
KEY = generate_private_key()

WRITER = """\
import os, tinyutil

from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("render")
    def render(self, text):
        return tinyutil.BANG

    @hook("where")
    def where(self):
        return tinyutil.__file__

    @hook("attack")
    def attack(self):
        entry = os.path.dirname(tinyutil.__file__)
        outcomes = {}
        for what, act in {
            "overwrite": lambda: open(tinyutil.__file__, "w").write("BANG = 'owned'"),
            "create": lambda: open(os.path.join(entry, "evil.py"), "w").write("x = 1"),
            "remove": lambda: os.remove(tinyutil.__file__),
            "chmod": lambda: os.chmod(tinyutil.__file__, 0o777),
            "rename": lambda: os.rename(tinyutil.__file__, tinyutil.__file__ + ".bak"),
        }.items():
            try:
                act()
                outcomes[what] = "done"
            except OSError as exc:
                outcomes[what] = type(exc).__name__
        return outcomes
"""


SHOUTER = """\
import tinyfmt

from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("render")
    def render(self, text):
        return tinyfmt.shout(text)

    @hook("where")
    def where(self):
        return tinyfmt.__file__

    @hook("attack")
    def attack(self):
        return None
"""


def packed(
    index: LocalIndex, root: Path, name: str, deps: list[str], code: str | None = None
) -> Path:
    options: dict[str, Any] = {}
    if code:
        options = {"code": code, "hooks": ("render", "where", "attack")}
    source = plugin_source(root / "src", name, deps, **options)
    lock_plugin(source, index=IndexOptions(index_url=index.url))
    archive = pack_plugin(source, root / "dist").result.path
    archive.with_name(archive.name + ".sig").write_bytes(sign(KEY, archive_facts(archive)))
    return archive


def public_key(root: Path) -> Path:
    path = root / "publisher.pub"
    path.write_text(public_key_pem(KEY.public_key()))
    return path


def host(home: Path) -> PluginHost:
    return PluginHost(app="myapp", app_version="1.0", home=home, hookspecs=HOOKS)


def run(home: Path, work: Any) -> Any:
    async def main() -> Any:
        async with host(home) as h:
            return await work(h)

    return asyncio.run(main())


def compiled(entry: Path) -> None:
    """Wait for the background byte-compilation of a store entry to finish."""
    deadline = time.monotonic() + 30
    while not (entry / COMPILED).exists() or entry.stat().st_mode & 0o777 != 0o555:
        assert time.monotonic() < deadline, f"{entry} was not compiled"
        time.sleep(0.02)


def store_entries(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "wheels").iterdir())


def test_the_plugin_imports_its_locked_library_from_the_store(
    index: LocalIndex, tmp_path: Path
) -> None:
    archive = packed(index, tmp_path, "acme.md", ["markdown>=3.5"])
    key = public_key(tmp_path)
    home = tmp_path / "home"

    async def work(h: PluginHost) -> tuple[list[Any], list[Any]]:
        await h.install(str(archive), key=key)
        rendered = [o.value for o in await h.hooks.render(text="# Hi *there*")]
        where = [o.value for o in await h.hooks.where()]
        return rendered, where

    rendered, where = run(home, work)
    assert rendered[0].startswith("<h1>Hi <em>there</em></h1> via markdown ")
    lock = load_lock(next((home / "plugins" / "acme.md").iterdir()))
    assert lock is not None
    [wheel] = lock.wheels()
    assert where == [str(home / "wheels" / wheel.sha256 / "markdown" / "__init__.py")]
    # The code directory keeps the lock, not a second copy of the wheels.
    code_dir = next((home / "plugins" / "acme.md").iterdir())
    assert not (code_dir / "wheels").exists()
    entry = home / "wheels" / wheel.sha256
    compiled(entry)
    assert entry.stat().st_mode & 0o777 == 0o555  # read-only again once byte-compiled
    assert (entry / "markdown" / "__pycache__").is_dir()


def test_a_plugin_cannot_write_to_the_wheel_store(index: LocalIndex, tmp_path: Path) -> None:
    archive = packed(index, tmp_path, "acme.writer", ["tinyutil"], code=WRITER)
    home = tmp_path / "home"

    async def work(h: PluginHost) -> Any:
        await h.install(str(archive), key=public_key(tmp_path))
        [outcome] = await h.hooks.attack()
        [bang] = await h.hooks.render(text="")
        return outcome.value, bang.value

    outcomes, bang = run(home, work)
    assert set(outcomes.values()) <= {"PermissionError", "OSError"}, outcomes
    assert "done" not in outcomes.values()
    assert bang == "!"
    [_entry] = store_entries(home)
    assert (
        WheelStore(home / "wheels").verify(
            load_lock(  # type: ignore[union-attr]
                next((home / "plugins" / "acme.writer").iterdir())
            ).wheels()[0]
        )
        is None
    )


def test_plugins_share_one_copy_and_different_pins_coexist(
    index: LocalIndex, tmp_path: Path
) -> None:
    key = public_key(tmp_path)
    first = packed(index, tmp_path / "a", "acme.one", ["tinyfmt==1.1"], code=SHOUTER)
    second = packed(index, tmp_path / "b", "acme.two", ["tinyfmt==1.1"], code=SHOUTER)
    older = packed(index, tmp_path / "c", "acme.old", ["tinyfmt==1.0"], code=SHOUTER)
    home = tmp_path / "home"

    def install(*archives: Path) -> Any:
        async def work(h: PluginHost) -> Any:
            await h.install(*map(str, archives), key=key)
            return sorted(o.value for o in await h.hooks.where())

        return run(home, work)

    install(first)
    after_first = store_entries(home)
    assert len(after_first) == 2  # tinyfmt 1.1 and tinyutil 1.0
    install(second)
    assert store_entries(home) == after_first  # the same wheels: no second copy
    where = install(older)
    assert len(store_entries(home)) == 3  # tinyfmt 1.0 beside 1.1
    assert len({Path(w).parent.parent for w in where}) == 2

    def uninstall(*names: str) -> None:
        async def work(h: PluginHost) -> None:
            for name in names:
                await h.uninstall(name)

        run(home, work)

    uninstall("acme.old")
    assert store_entries(home) == after_first  # 1.0 was only acme.old's
    uninstall("acme.one")
    assert store_entries(home) == after_first  # acme.two still needs them
    uninstall("acme.two")
    assert store_entries(home) == []


def tampered(archive: Path, member_prefix: str, change: bytes) -> None:
    """Rewrite one wheel inside ``archive`` and sign the result again: a publisher's (or a
    build's) mistake that only the lock's hash can catch."""
    with zipfile.ZipFile(archive) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    name = next(m for m in members if m.startswith(member_prefix))
    members[name] += change
    with zipfile.ZipFile(archive, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    archive.with_name(archive.name + ".sig").write_bytes(sign(KEY, archive_facts(archive)))


def test_a_wheel_that_does_not_match_the_lock_is_refused_and_nothing_stays(
    index: LocalIndex, tmp_path: Path
) -> None:
    archive = packed(index, tmp_path, "acme.md", ["tinyfmt"])
    tampered(archive, "wheels/tinyutil", b"\0")
    home = tmp_path / "home"

    async def work(h: PluginHost) -> None:
        await h.install(str(archive), key=public_key(tmp_path))

    with pytest.raises(
        SignatureError, match=r"tinyutil-1.0-py3-none-any.whl: sha256 is .* but plugport.lock says"
    ):
        run(home, work)
    assert store_entries(home) == []  # tinyfmt, installed first, was taken out again
    assert not any((home / "plugins").iterdir())
    assert not any((home / "staging").iterdir())


def test_a_damaged_store_entry_fails_the_start_and_a_reinstall_repairs_it(
    index: LocalIndex, tmp_path: Path
) -> None:
    archive = packed(index, tmp_path, "acme.md", ["tinyutil"], code=WRITER)
    key = public_key(tmp_path)
    home = tmp_path / "home"

    async def install(h: PluginHost) -> Any:
        await h.install(str(archive), key=key)
        return [o.value for o in await h.hooks.where()]

    run(home, install)
    [entry] = (home / "wheels").iterdir()
    entry.chmod(0o755)
    (entry / MARKER).unlink()  # an install interrupted, or someone tidying up

    async def call(h: PluginHost) -> Any:
        return [(o.value, str(o.error)) for o in await h.hooks.where()]

    [(value, error)] = run(home, call)
    assert value is None
    assert "tinyutil-1.0-py3-none-any.whl is not in the wheel store" in error

    async def reinstall(h: PluginHost) -> Any:
        await h.uninstall("acme.md")
        return await install(h)

    assert run(home, reinstall)[0].endswith("tinyutil.py")


def test_no_wheel_for_this_platform_is_refused_at_install(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path
) -> None:
    from plugport.testing.pypi import build_wheel

    wheel = build_wheel(
        wheelhouse, "winonly", "1.0", {"winonly.pyd": b"MZ"}, tag="cp311-cp311-win_amd64"
    )
    try:
        source = plugin_source(
            tmp_path / "src", "acme.win", ["winonly"], extra='platforms = ["win_amd64"]\n'
        )
        lock_plugin(source, index=IndexOptions(index_url=index.url))
        archive = pack_plugin(source, tmp_path / "dist").result.path
        archive.with_name(archive.name + ".sig").write_bytes(sign(KEY, archive_facts(archive)))
    finally:
        wheel.unlink()
    home = tmp_path / "home"

    async def work(h: PluginHost) -> None:
        await h.install(str(archive), key=public_key(tmp_path))

    with pytest.raises(
        DependencyError, match=r"acme.win 1.0.0: no wheel of winonly 1.0 runs on this platform"
    ):
        run(home, work)
    assert store_entries(home) == []
    assert not any((home / "plugins").iterdir())


def test_a_plugin_needing_another_python_is_refused(index: LocalIndex, tmp_path: Path) -> None:
    source = plugin_source(
        tmp_path / "src", "acme.py2", ["tinyutil"], extra='requires-python = "<3"\n'
    )
    with pytest.raises(PlugportError, match=r"requires-python is '<3' but this is Python 3"):
        lock_plugin(source, index=IndexOptions(index_url=index.url))


def test_a_locked_library_wins_over_the_copy_the_worker_already_imported(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path
) -> None:
    """The zygote imports typing_extensions for the SDK; a plugin that locks its own version
    imports that version, not the zygote's module from sys.modules."""
    import typing_extensions

    from plugport.testing.pypi import build_wheel

    code = SHOUTER.replace("import tinyfmt", "import typing_extensions as tinyfmt")
    wheel = build_wheel(
        wheelhouse, "typing-extensions", "99.0", {"typing_extensions.py": "MARK = 'locked'\n"}
    )
    try:
        archive = packed(index, tmp_path, "acme.te", ["typing-extensions==99.0"], code=code)
    finally:
        wheel.unlink()

    async def work(h: PluginHost) -> Any:
        await h.install(str(archive), key=public_key(tmp_path))
        return [o.value for o in await h.hooks.where()]

    [where] = run(tmp_path / "home", work)
    assert where.startswith(str(tmp_path / "home" / "wheels"))
    assert where != typing_extensions.__file__
