"""A host killed (SIGKILL, as a power cut would) at every step of an install and of an update
recovers on its next start to exactly the old state or exactly the new one, never a mix.

Real processes: the CLI runs in a subprocess with ``PLUGPORT_FAILPOINT=<step>`` against a real
registry on 127.0.0.1 and really dies there; a new :class:`PluginHost` then opens the home,
recovers it and runs the plugin in its sandbox. The plugin keeps a visit counter in its storage
and there is a file in its data directory: an update, finished or not, leaves both alone."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plugport.archive import sha256_file
from plugport.authoring import read_archive_manifest
from plugport.host import PluginHost
from plugport.host.install import FAILPOINTS
from plugport.host.state import HostAudit, HostState, Installation
from plugport.manifest import load_manifest
from plugport.registry.db import make_engine
from plugport.runtime.hooks import HookSpec
from plugport.signing import key_id
from tests.host._plugins import STORAGE, STORING, HomeView, publish, write
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher

pytestmark = pytest.mark.slow  # a subprocess per test

GREET = HookSpec("greet", ("name",))
PLUGIN = "acme.alpha"
OLD, NEW = "1.0.0", "1.1.0"

# Which state the next start recovers to after a crash at each step (the same for an install,
# where "old" is "not installed", and for an update 1.0.0 -> 1.1.0).
OUTCOME = {
    "staged": "old",  # verified, nothing unpacked yet: nothing to undo
    "unpacked": "old",  # the tree is in staging: swept
    "moved": "old",  # the new code directory exists, but nothing points at it: swept
    "switched": "old",  # the state points at the new version, journalled: rolled back
    "activated": "old",  # running and healthy, but never confirmed: rolled back all the same
    "confirmed": "new",  # the journal is gone: the new version stays, the old files are swept
}
# What the crash leaves behind, before the next start: (a journal row, the new code directory
# on disk, something in staging). Distinct per step, which shows each failpoint really fired.
LEFT_BEHIND = {
    "staged": (False, False, False),
    "unpacked": (False, False, True),
    "moved": (False, True, True),
    "switched": (True, True, True),
    "activated": (True, True, False),
    "confirmed": (False, True, False),
}


@dataclass(frozen=True)
class Published:
    """acme.alpha 1.0.0 and 1.1.0 on a registry, and a home with 1.0.0 installed through the
    CLI, greeted once (its storage says one visit) and a file in its data directory."""

    registry: Registry
    archives: dict[str, Path]
    publisher_key: str
    old_home: Path

    def expected(self, version: str) -> dict[str, Any]:
        """The facts an installation of ``version`` must have (times aside): what the
        operator granted (64 KiB of storage, --yes) and the flags of a requested plugin."""
        digest, _ = sha256_file(self.archives[version])
        return {
            "name": PLUGIN,
            "version": version,
            "source_kind": "registry",
            "source": self.registry.url,
            "sha256": digest,
            "key_id": self.publisher_key,
            "enabled": True,
            "requested": True,
            "permissions": read_archive_manifest(self.archives[version]).permissions.model_dump(
                mode="json"
            ),
            "dependencies": {},
        }


def plugport(
    home: Path, registry: str, *args: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process (``--yes``: the plugin asks for storage)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGPORT_")}
    if failpoint is not None:
        env["PLUGPORT_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "plugport", *args, "--home", str(home)]
    command += ["--registry", registry, "--yes"]
    return subprocess.run(
        command, env=env, cwd=home.parent, capture_output=True, text=True, timeout=60, check=False
    )


def open_host(home: Path, registry: Registry) -> PluginHost:
    return PluginHost(
        app="plugport-cli",
        app_version="0",
        home=home,
        registries=[registry.url],
        hookspecs=[GREET],
    )


def start_and_greet(home: Path, registry: Registry) -> tuple[list[HostAudit], dict[str, Any]]:
    """The next start: recover, then run the plugin's hook in its sandbox."""

    async def main() -> tuple[list[HostAudit], dict[str, Any]]:
        async with open_host(home, registry) as host:
            answers = {o.plugin: o.value for o in await host.hooks.greet(name="Ada")}
            return host.audit(subject=PLUGIN), answers

    return asyncio.run(main())


def facts(installation: Installation) -> dict[str, Any]:
    return {
        k: v for k, v in installation.__dict__.items() if k not in ("installed_at", "updated_at")
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("crash")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite'}")
    try:
        with running(engine, root / "data") as registry:
            publisher = Publisher(registry, root / "scratch")
            archives = {
                version: publish(
                    registry,
                    publisher,
                    write(root / "src", PLUGIN, version, code=STORING, extra=STORAGE),
                    root / "dist",
                )
                for version in (OLD, NEW)
            }
            home = root / "old-home"
            done = plugport(home, registry.url, "install", f"{PLUGIN}=={OLD}")
            assert done.returncode == 0, done.stdout + done.stderr
            _, answers = start_and_greet(home, registry)
            assert answers == {PLUGIN: f"{PLUGIN} {OLD} says hello to Ada (visit 1)"}
            (home / "runtime" / "data" / PLUGIN / "keep.txt").write_text("the plugin's own")
            yield Published(registry, archives, key_id(publisher.key.public_key()), home)
    finally:
        engine.dispose()


def test_every_failpoint_has_an_expected_outcome() -> None:
    assert tuple(OUTCOME) == tuple(LEFT_BEHIND) == FAILPOINTS


def crash(home: Path, published: Published, step: str, *args: str) -> HomeView:
    """Run the CLI until it kills itself at ``step``; what it left, before any recovery."""
    killed = plugport(home, published.registry.url, *args, failpoint=step)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    left = HomeView.of(home, published.registry.url)
    new_dir = any(d.startswith(f"{PLUGIN}/{NEW}-") for d in left.code_dirs)
    assert (bool(left.journals), new_dir, bool(left.staging)) == LEFT_BEHIND[step]
    return left


def check_recovered(
    home: Path, published: Published, version: str, expected: dict[str, Any]
) -> HomeView:
    """Exactly one installation, of ``version``; its code directory and no other; nothing in
    staging; no journal."""
    after = HomeView.of(home, published.registry.url)
    [installation] = after.installations
    assert facts(installation) == expected
    code = f"{PLUGIN}/{version}-{expected['sha256'][:12]}"
    assert after.code_dirs == {code}
    assert load_manifest(home / "plugins" / code).version == version
    assert after.staging == frozenset()
    assert after.journals == ()
    return after


@pytest.mark.parametrize("step", FAILPOINTS)
def test_an_install_killed_at_any_step_is_either_not_there_or_complete(
    published: Published, step: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    crash(home, published, step, "install", PLUGIN)

    trail, answers = start_and_greet(home, published.registry)
    if OUTCOME[step] == "old":  # as if the install had never been tried
        after = HomeView.of(home, published.registry.url)
        assert after.installations == ()
        assert after.code_dirs == frozenset()
        assert after.staging == frozenset()
        assert after.journals == ()
        assert answers == {}
        # activation made the sandbox's empty scratch directory (and, on a root host, the data
        # volume that backs it), and nothing else
        files = [p for p in (home / "runtime" / "data").rglob("*") if not p.is_dir()]
        assert [p.name for p in files] in ([], [f"{PLUGIN}.ext4"])
    else:
        check_recovered(home, published, NEW, published.expected(NEW))
        assert answers == {PLUGIN: f"{PLUGIN} {NEW} says hello to Ada (visit 1)"}
    rolled_back = [a for a in trail if a.outcome == "rolled-back"]
    assert len(rolled_back) == (1 if LEFT_BEHIND[step][0] else 0)


@pytest.mark.parametrize("step", FAILPOINTS)
def test_an_update_killed_at_any_step_keeps_the_old_version_or_the_new(
    published: Published, step: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(published.old_home, home, symlinks=True)
    state = HostState(home / "host.sqlite")
    [old] = state.installations()
    state.close()
    data = home / "runtime" / "data" / PLUGIN / "keep.txt"

    crash(home, published, step, "update", PLUGIN)

    trail, answers = start_and_greet(home, published.registry)
    if OUTCOME[step] == "old":  # 1.0.0 exactly as it was, row and all
        after = check_recovered(home, published, OLD, published.expected(OLD))
        assert after.installations == (old,)
    else:  # 1.1.0, keeping what the operator and the plugin had
        after = check_recovered(home, published, NEW, published.expected(NEW))
        assert after.installations[0].installed_at == old.installed_at
    version = OLD if OUTCOME[step] == "old" else NEW
    # the second visit ever: the counter in the plugin's storage survived the crash
    assert answers == {PLUGIN: f"{PLUGIN} {version} says hello to Ada (visit 2)"}
    assert data.read_text() == "the plugin's own"
    rolled_back = [a for a in trail if a.outcome == "rolled-back"]
    assert len(rolled_back) == (1 if LEFT_BEHIND[step][0] else 0)
    if rolled_back:
        assert rolled_back[0].detail["reason"] == "interrupted before it was confirmed"
        assert rolled_back[0].detail["restored"] == OLD
