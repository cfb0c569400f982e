"""Putting plugins in place, all or nothing: stage -> verify -> unpack safely -> validate ->
switch (files in place, state committed in one transaction, journalled) -> the caller activates
and health-checks -> confirm, or roll back to the previous version's files, state and enabled
flag. Plugin data is never touched here.

Files never move under a running plugin: each install gets its own directory,
``plugins/<name>/<version>-<sha12>``, written completely before the state points at it and
deleted only after the state stopped pointing at it. A crash (even SIGKILL) at any step leaves
either the old or the new state; :meth:`Installer.recover` on the next start rolls an
unconfirmed switch back and sweeps directories nothing points at.

``PLUGPORT_FAILPOINT=<step>`` kills the process with SIGKILL at that step: the crash tests use
it to prove the claim above against real processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from plugport import signing
from plugport.archive import ArchiveLimits, safe_unpack, sha256_file
from plugport.authoring import read_archive_manifest, validate_tree
from plugport.deps.libraries import PluginLibraries, archive_wheels, development_wheels
from plugport.deps.lockfile import WHEELS_DIR, LockedWheel
from plugport.deps.store import WheelStore
from plugport.errors import PluginValidationError, PlugportError, SignatureError
from plugport.host.state import HostState, Installation, Journal
from plugport.index import IndexEntry
from plugport.manifest import Manifest, load_manifest
from plugport.plugin_wheel import unpack_plugin_wheel

__all__ = ["FAILPOINTS", "HostPaths", "Installer", "Staged", "failpoint"]

FAILPOINTS = ("staged", "unpacked", "moved", "switched", "activated", "confirmed")


def failpoint(step: str) -> None:
    """Die here, as a power cut would, when ``PLUGPORT_FAILPOINT`` names ``step`` (tests)."""
    if os.environ.get("PLUGPORT_FAILPOINT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class HostPaths:
    """The layout of a host home."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "host.sqlite"

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def wheels(self) -> Path:
        """The wheel store: plugins' locked libraries, installed once by hash."""
        return self.root / "wheels"

    @property
    def logs(self) -> Path:
        """Each plugin's log lines (``host/plugin_logs.py``)."""
        return self.root / "logs"

    def code_dir(self, installation: Installation) -> Path:
        if installation.source_kind == "dev":
            return Path(installation.source)
        return (
            self.plugins / installation.name / f"{installation.version}-{installation.sha256[:12]}"
        )

    def make(self) -> None:
        for path in (self.root, self.runtime, self.plugins, self.staging, self.cache, self.logs):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.wheels.mkdir(exist_ok=True, mode=0o755)  # bound read-only into each sandbox


@dataclass(frozen=True)
class Staged:
    """An archive that passed every check, unpacked in staging, not yet in place."""

    manifest: Manifest
    code_dir: Path
    sha256: str
    key_id: str
    source_kind: str
    source: str

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


class Installer:
    def __init__(
        self,
        paths: HostPaths,
        state: HostState,
        *,
        limits: ArchiveLimits | None = None,
        clock: Any = time.time,
    ) -> None:
        self.paths = paths
        self.state = state
        self.limits = limits or ArchiveLimits()
        self._clock = clock
        self.libraries = PluginLibraries(WheelStore(paths.wheels))
        self._pending_wheels: dict[Path, set[str]] = {}  # staged code dir -> store entries

    # --- stage: nothing outside staging changes ---------------------------------------------

    def stage_archive(
        self,
        archive: Path,
        *,
        signature: bytes,
        publisher_key: ed25519.Ed25519PublicKey,
        expected: IndexEntry | None,
        source_kind: str,
        source: str,
    ) -> Staged:
        """Check ``archive`` before reading anything in it: its sha256 and length against the
        signed index entry (when from a registry), then the publisher's signature over its
        facts; only then unpack it (safely) into staging and validate the tree."""
        manifest, digest, keyid = self._verified(archive, signature, publisher_key, expected)
        failpoint("staged")
        work = self.paths.staging / uuid.uuid4().hex
        work.mkdir(parents=True, mode=0o700)
        try:
            code = safe_unpack(archive, work / "code", limits=self.limits).path
            self._validate(code, manifest)
            self._install_libraries(code, manifest, archive_wheels(code))
            # The store holds them now; the code directory keeps only the lock.
            shutil.rmtree(code / WHEELS_DIR, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        failpoint("unpacked")
        return Staged(manifest, code, digest, keyid, source_kind, source)

    def stage_wheel(
        self,
        wheel: Path,
        *,
        source: str,
        libraries_from: Callable[[LockedWheel], Path],
        signature: bytes | None = None,
        publisher_key: ed25519.Ed25519PublicKey | None = None,
        listed: IndexEntry | None = None,
        unsigned: bool = False,
    ) -> Staged:
        """A plugin wheel from a package index (``source``: its URL), trusted one way: its
        ``signature`` by ``publisher_key``; or ``listed`` in a registry's signed index with its
        sha256 and length; or ``unsigned``, which only the operator's policy may allow. Then
        it is unpacked as a host runs it (:func:`~plugport.plugin_wheel.unpack_plugin_wheel`)
        and its locked libraries, from ``libraries_from``, go into the store (hash-checked
        against the lock, which the trusted wheel carries)."""
        if signature is not None and publisher_key is not None:
            manifest, digest, keyid = self._verified(
                wheel, signature, publisher_key, None, shown_as=source
            )
        elif listed is not None:
            manifest, digest, keyid = self._listed(wheel, listed, shown_as=source)
        elif unsigned:
            digest, _ = sha256_file(wheel)
            manifest, keyid = read_archive_manifest(wheel, shown_as=source), ""
        else:
            raise SignatureError("signature", f"{source}: not signed, and unsigned is not allowed")
        failpoint("staged")
        work = self.paths.staging / uuid.uuid4().hex
        work.mkdir(parents=True, mode=0o700)
        try:
            code = work / "code"
            unpack_plugin_wheel(wheel, code, limits=self.limits, shown_as=source)
            self._validate(code, manifest)
            self._install_libraries(code, manifest, libraries_from)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        failpoint("unpacked")
        return Staged(manifest, code, digest, keyid, "index", source)

    def _verified(
        self,
        archive: Path,
        signature: bytes,
        publisher_key: ed25519.Ed25519PublicKey,
        expected: IndexEntry | None,
        *,
        shown_as: str | None = None,
    ) -> tuple[Manifest, str, str]:
        """The manifest, sha256 and signing key id of an archive whose signature verifies (and
        that matches ``expected``, its signed index entry, when given)."""
        digest, length = sha256_file(archive)
        if expected is not None and (digest, length) != (expected.sha256, expected.length):
            raise SignatureError(
                "archive",
                f"{expected.name} {expected.version}: the archive is {length} bytes with sha256 "
                f"{digest[:16]}…, but the signed index says {expected.length} bytes with sha256 "
                f"{expected.sha256[:16]}…",
            )
        claimed = signing.signed_facts(signature)
        try:
            manifest = read_archive_manifest(archive, shown_as=shown_as)
        except PlugportError:
            if claimed.sha256 == digest:
                raise  # signed as it is: damaged by its author, not on the way
            # Altered after signing so that it no longer reads: say so, as verify would.
            altered = signing.ArchiveFacts(claimed.name, claimed.version, digest, length)
            signing.verify(signature, publisher_key, altered)
            raise
        facts = signing.ArchiveFacts(manifest.name, manifest.version, digest, length)
        verified = signing.verify(signature, publisher_key, facts)
        if expected is not None and (claimed.name, claimed.version) != (
            expected.name,
            expected.version,
        ):
            raise SignatureError(
                "statement",
                f"the signature is for {claimed.name} {claimed.version}, "
                f"not {expected.name} {expected.version}",
            )
        if expected is not None and verified.keyid != expected.key_id:
            raise SignatureError(
                "key",
                f"{manifest.name} {manifest.version} is signed by {verified.keyid[:16]}…, "
                f"but the signed index says {expected.key_id[:16]}…",
            )
        return manifest, digest, verified.keyid

    @staticmethod
    def _listed(wheel: Path, listed: IndexEntry, *, shown_as: str) -> tuple[Manifest, str, str]:
        """The manifest, sha256 and publisher key id of a wheel a registry's signed index lists
        (by name, version, sha256 and length) in place of a signature."""
        digest, length = sha256_file(wheel)
        if (digest, length) != (listed.sha256, listed.length):
            raise SignatureError(
                "archive",
                f"{shown_as} is {length} bytes with sha256 {digest[:16]}…, but the registry's "
                f"signed index lists {listed.name} {listed.version} as {listed.length} bytes "
                f"with sha256 {listed.sha256[:16]}…",
            )
        manifest = read_archive_manifest(wheel, shown_as=shown_as)
        if (manifest.name, manifest.version) != (listed.name, listed.version):
            raise SignatureError(
                "statement",
                f"{shown_as} is {manifest.name} {manifest.version}, but the registry's signed "
                f"index lists its sha256 for {listed.name} {listed.version}",
            )
        return manifest, digest, listed.key_id

    def stage_directory(self, directory: Path) -> Staged:
        """A development directory: run from where it is, unsigned, clearly marked."""
        directory = directory.resolve()
        manifest = load_manifest(directory)
        self._validate(directory, manifest)
        self._install_libraries(directory, manifest, development_wheels(directory))
        return Staged(manifest, directory, "", "", "dev", str(directory))

    def _install_libraries(
        self, code: Path, manifest: Manifest, wheels_from: Callable[[LockedWheel], Path]
    ) -> None:
        wheels = self.libraries.install(code, manifest, wheels_from)
        if wheels:
            self._pending_wheels[code] = {w.sha256 for w in wheels}

    @staticmethod
    def _validate(code: Path, manifest: Manifest) -> None:
        report = validate_tree(code)
        if report.errors:
            raise PluginValidationError(report.errors, source=f"{manifest.name} {manifest.version}")
        if report.manifest is not None and report.manifest != manifest:
            raise SignatureError("archive", "the unpacked manifest differs from the archive's")

    def discard(self, staged: Iterable[Staged]) -> None:
        """Forget staged plugins: their files, and store entries only they needed."""
        dropped = False
        for item in staged:
            dropped |= self._pending_wheels.pop(item.code_dir, None) is not None
            if item.source_kind != "dev":
                shutil.rmtree(item.code_dir.parent, ignore_errors=True)
        if dropped:
            self._collect_wheels()

    # --- switch: files in place, then one transaction -----------------------------------------

    def switch(
        self,
        staged: Sequence[Staged],
        *,
        permissions: Mapping[str, Mapping[str, Any]],
        requested: Iterable[str],
        actor: str,
        operation: str,
        disabled: Iterable[str] = (),
    ) -> list[Journal]:
        """Move every staged plugin into its own directory, then point the state at all of
        them in one transaction, journalled, so a restart before :meth:`confirm` rolls back.
        The plugins named in ``disabled`` are put in place disabled (settings they require are
        missing); the others keep their previous state, enabled when new."""
        off = set(disabled)
        now = self._clock()
        wanted = set(requested)
        rows: list[tuple[Installation, Installation | None]] = []
        for item in staged:
            previous = self.state.get(item.name)
            row = Installation(
                name=item.name,
                version=item.version,
                source_kind=item.source_kind,
                source=item.source,
                sha256=item.sha256,
                key_id=item.key_id,
                enabled=item.name not in off and (previous is None or previous.enabled),
                requested=item.name in wanted or (previous is not None and previous.requested),
                permissions=dict(permissions[item.name]),
                dependencies=dict(item.manifest.dependencies),
                installed_at=previous.installed_at if previous is not None else now,
                updated_at=now,
            )
            target = self.paths.code_dir(row)
            if item.source_kind != "dev" and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.rename(item.code_dir, target)  # same file system: atomic
            # From here the lock in ``target`` (or the state) keeps its store entries.
            self._pending_wheels.pop(item.code_dir, None)
            rows.append((row, previous))
        failpoint("moved")
        with self.state.transaction() as db:
            for row, previous in rows:
                self.state.begin_switch(db, operation, row, previous)
                self.state.audit(
                    operation,
                    row.name,
                    "switched",
                    actor=actor,
                    db=db,
                    version=row.version,
                    previous=previous.version if previous is not None else None,
                    source=row.source,
                )
        failpoint("switched")
        self.discard(staged)
        return [j for j in self.state.journals() if j.name in {r.name for r, _ in rows}]

    def confirm(self, journals: Sequence[Journal], *, actor: str) -> None:
        """The new versions are healthy: forget the journal and the old files."""
        failpoint("activated")
        with self.state.transaction() as db:
            for journal in journals:
                self.state.confirm(db, journal.name)
                self._pin_key(db, journal.name, actor=actor)
                self.state.audit(
                    journal.operation,
                    journal.name,
                    "ok",
                    actor=actor,
                    db=db,
                    version=journal.version,
                    previous=journal.previous.version if journal.previous else None,
                )
        failpoint("confirmed")
        self.sweep()
        for journal in journals:
            installation = self.state.get(journal.name)
            if installation is not None:
                code_dir = self.paths.code_dir(installation)
                with contextlib.suppress(PlugportError):
                    self.libraries.compile_later(code_dir, load_manifest(code_dir))

    def _pin_key(self, db: sqlite3.Connection, name: str, *, actor: str) -> None:
        """Trust the publisher key of a confirmed install for its namespace from now on. Only
        at confirmation: an install that rolls back (or never finishes) pins nothing."""
        installation = self.state.get(name)
        if installation is None or not installation.key_id:
            return
        namespace = name.split(".", 1)[0]
        if self.state.pin_publisher_key(db, namespace, installation.key_id, self._clock()):
            self.state.audit(
                "trust-key",
                namespace,
                "ok",
                actor=actor,
                db=db,
                key_id=installation.key_id,
                first_seen_with=f"{name} {installation.version}",
            )

    def roll_back(self, journals: Sequence[Journal], *, actor: str, reason: str) -> None:
        """Put the previous versions' state back (or remove what was new), in one transaction,
        then delete the files nothing points at any more."""
        with self.state.transaction() as db:
            for journal in journals:
                self.state.restore(db, journal)
                self.state.audit(
                    journal.operation,
                    journal.name,
                    "rolled-back",
                    actor=actor,
                    db=db,
                    version=journal.version,
                    restored=journal.previous.version if journal.previous else None,
                    reason=reason,
                )
        self.sweep()

    def recover(self, *, actor: str = "host") -> list[Journal]:
        """At start: an install that never got confirmed is rolled back (the crash happened
        before it was known to work), and leftovers of interrupted steps are removed."""
        journals = self.state.journals()
        if journals:
            self.roll_back(journals, actor=actor, reason="interrupted before it was confirmed")
        else:
            self.sweep()
        return journals

    def remove(self, installation: Installation, *, actor: str, purge: bool) -> None:
        with self.state.transaction() as db:
            self.state.delete(db, installation.name)
            self.state.audit(
                "uninstall",
                installation.name,
                "ok",
                actor=actor,
                db=db,
                version=installation.version,
                purge=purge,
            )
        self.sweep()

    def sweep(self) -> None:
        """Delete staging leftovers and code directories no installation points at."""
        if self.paths.staging.is_dir():
            for leftover in self.paths.staging.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        kept = {self.paths.code_dir(i) for i in self.state.installations()}
        kept |= {
            self.paths.code_dir(j.previous) for j in self.state.journals() if j.previous is not None
        }
        if self.paths.plugins.is_dir():
            for plugin_dir in self.paths.plugins.iterdir():
                for version_dir in plugin_dir.iterdir():
                    if version_dir not in kept:
                        shutil.rmtree(version_dir, ignore_errors=True)
                if not any(plugin_dir.iterdir()):
                    plugin_dir.rmdir()
        self._collect_wheels(kept)

    def _collect_wheels(self, kept: set[Path] | None = None) -> list[str]:
        """Remove the store entries that no installed plugin, no plugin a rollback could
        restore, and no staged plugin needs."""
        if kept is None:
            kept = {self.paths.code_dir(i) for i in self.state.installations()}
            kept |= {
                self.paths.code_dir(j.previous)
                for j in self.state.journals()
                if j.previous is not None
            }
        pending = set().union(*self._pending_wheels.values()) if self._pending_wheels else set()
        return self.libraries.collect(kept, keep=pending)
