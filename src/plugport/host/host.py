"""``PluginHost``: what an application embeds. It installs, updates and removes plugins from
registries, URLs, files and development directories, and runs them in the sandbox.

    async with PluginHost(app="myapp", app_version="2.4.0", home=home,
                          registries=["https://plugins.example.com"]) as host:
        await host.install("acme.hello")
        outcomes = await host.hooks.greet(name="Ada")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from plugport._version import __version__
from plugport.errors import (
    ArchiveLimitError,
    ConflictError,
    ConsentError,
    InvalidInputError,
    NotFoundError,
    OfflineError,
    PluginRuntimeError,
    PlugportError,
    RegistryResponseError,
    SignatureError,
    TrustError,
)
from plugport.host.client import RegistryClient
from plugport.host.consent import Consent, ConsentRequest, needs_consent, refuse_growth
from plugport.host.install import HostPaths, Installer, Staged
from plugport.host.resolver import Candidate, Requirement, Resolution, resolve
from plugport.host.sources import Source, parse_source
from plugport.host.state import HostAudit, HostState, Installation, Journal
from plugport.host.trust import (
    TrustedIndex,
    check_index,
    check_publisher_key,
    index_entry,
    registry_key,
)
from plugport.index import SignedIndex
from plugport.manifest import Permissions, load_manifest
from plugport.runtime.hooks import HookOutcome, HookSpec
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.supervisor import PluginInstall, PluginStatus, Supervisor, SupervisorConfig
from plugport.signing import (
    key_id,
    load_public_key,
    public_key_from_pem,
    signed_facts,
    signer_key_id,
)
from plugport.versions import parse_version

__all__ = ["InstallReport", "PluginHost"]

Progress = Callable[[str, int, int], None]
"""``(what, done, total)`` while an archive downloads."""


@dataclass(frozen=True)
class InstallReport:
    installed: list[tuple[str, str, str | None]] = field(default_factory=list)
    """``(name, new version, previous version or None)`` for each plugin put in place."""
    unchanged: list[tuple[str, str]] = field(default_factory=list)


class _Hooks:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    def __getattr__(self, hook: str) -> Callable[..., Any]:
        async def call(**kwargs: Any) -> list[HookOutcome]:
            return await self._host.supervisor.call_hook(hook, **kwargs)

        return call


class _Commands:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    async def run(self, plugin: str, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self._host.supervisor.run_command(plugin, command, list(args), kwargs)


class _Events:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    async def emit(self, topic: str, payload: Any = None) -> int:
        return await self._host.supervisor.emit(topic, payload)


class _RegistrySource:
    """Candidates from the host's registries, first one that knows a plugin wins."""

    def __init__(self, clients: Sequence[RegistryClient], *, revalidate: bool = False) -> None:
        self.clients = clients
        self.revalidate = revalidate
        self.origin: dict[str, RegistryClient] = {}

    def versions(self, name: str) -> list[Candidate]:
        for client in self.clients:
            try:
                rows = client.versions(name, revalidate=self.revalidate)
            except RegistryResponseError as exc:
                if exc.status == 404:
                    continue
                raise
            self.origin[name] = client
            return [
                Candidate(
                    name,
                    row["version"],
                    dict(row.get("dependencies") or {}),
                    dict(row.get("engines") or {}),
                    bool(row.get("yanked")),
                )
                for row in rows
            ]
        raise NotFoundError("plugin", name)


class PluginHost:
    def __init__(
        self,
        *,
        app: str,
        app_version: str,
        home: Path,
        registries: Sequence[str] = (),
        registry_keys: Mapping[str, str] | None = None,
        hookspecs: Iterable[HookSpec] = (),
        sandbox: Literal["strict", "best-effort"] = "strict",
        consent: Consent = refuse_growth,
        preapproved: Permissions | None = None,
        offline: bool = False,
        cache_ttl_s: float = 300.0,
        telemetry: bool = True,
        actor: str | None = None,
        transport: httpx.BaseTransport | None = None,
        supervisor_config: SupervisorConfig | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.app = app
        self.app_version = app_version
        self.paths = HostPaths(Path(home).absolute())  # workers need absolute paths
        self.paths.make()
        self.state = HostState(self.paths.state_file)
        self.installer = Installer(self.paths, self.state)
        self.registry_keys = dict(registry_keys or {})
        self.consent = consent
        self.preapproved = preapproved
        self.offline = offline
        self.telemetry = telemetry
        self.actor = actor or os.environ.get("USER", "host")
        self.progress = progress
        self.clients = [
            RegistryClient(
                url,
                cache_dir=self.paths.cache,
                ttl_s=cache_ttl_s,
                offline=offline,
                transport=transport,
            )
            for url in registries
        ]
        config = supervisor_config or SupervisorConfig(
            state_dir=self.paths.runtime, sandbox=sandbox
        )
        self.supervisor = Supervisor(config)
        for spec in hookspecs:
            self.supervisor.declare_hook(spec)
        self.hooks = _Hooks(self)
        self.commands = _Commands(self)
        self.events = _Events(self)
        self._lock = asyncio.Lock()
        self._opened = False
        self._started = False

    @property
    def environment(self) -> dict[str, str]:
        return {"plugport": __version__, self.app: self.app_version}

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> PluginHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Recover from an interrupted install, then start the runtime with every enabled
        plugin known to it (activation stays lazy, except ``on_startup`` plugins)."""
        self.open()
        await self.start_runtime()

    def open(self) -> None:
        """Only the state: roll back an install a crash interrupted and sweep leftovers. Enough
        for reading (list, audit, search); installing and running start the runtime too."""
        if not self._opened:
            self.installer.recover(actor=self.actor)
            self._opened = True

    async def start_runtime(self) -> None:
        self.open()
        if self._started:
            return
        for installation in self.state.installations():
            if installation.enabled:
                self._add(installation)
        await self.supervisor.start()
        if isinstance(self.supervisor.launcher, ZygoteLauncher):
            # Its imports (~0.5 s) overlap the application's own start-up instead of delaying
            # the first plugin call or install.
            await self.supervisor.launcher.start()
        self._started = True

    async def stop(self) -> None:
        await self.supervisor.close()
        for client in self.clients:
            client.close()
        self.state.close()

    # --- reading ------------------------------------------------------------------------------

    def installed(self) -> list[Installation]:
        return self.state.installations()

    def status(self) -> list[dict[str, Any]]:
        """Every installation with its runtime state (``disabled`` when it is not loaded)."""
        running = {s.name: s for s in self.supervisor.status()}
        rows = []
        for installation in self.state.installations():
            runtime: PluginStatus | None = running.get(installation.name)
            rows.append(
                {
                    "name": installation.name,
                    "version": installation.version,
                    "enabled": installation.enabled,
                    "source": installation.source_kind,
                    "state": runtime.state if runtime else "disabled",
                    "quarantined": runtime.quarantined if runtime else None,
                    "last_error": runtime.last_error if runtime else None,
                    "restarts": runtime.restarts if runtime else 0,
                }
            )
        return rows

    def audit(self, *, subject: str | None = None, limit: int = 100) -> list[HostAudit]:
        return self.state.audit_trail(subject=subject, limit=limit)

    def search(self, q: str = "", **filters: str) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v}
        if self.app and "host" not in params and params.get("compatible", "1") != "0":
            params.pop("compatible", None)
            params |= {"host": self.app, "host_version": self.app_version}
        params.pop("compatible", None)
        return self._client().search(q, **params)

    def info(self, name: str) -> dict[str, Any]:
        for client in self.clients:
            try:
                return client.plugin(name)
            except RegistryResponseError as exc:
                if exc.status != 404:
                    raise
        raise NotFoundError("plugin", name)

    def check_updates(self) -> list[tuple[str, str, str]]:
        """``(name, installed, newest compatible)`` for registry installs with something newer."""
        source = _RegistrySource(self.clients, revalidate=True)
        found = []
        for installation in self.state.installations():
            if installation.source_kind != "registry":
                continue
            try:
                resolution = resolve(
                    [Requirement(installation.name, "*", None)],
                    source,
                    environment=self.environment,
                )
            except PlugportError:
                continue
            newest = resolution.chosen[installation.name].version
            if newest != installation.version and _newer(newest, installation.version):
                found.append((installation.name, installation.version, newest))
        return found

    # --- changing what is installed -----------------------------------------------------------

    async def install(
        self, *specs: str, trust_new_key: bool = False, key: Path | None = None
    ) -> InstallReport:
        """Install each of ``specs`` (registry requirements, URLs, archives, directories) with
        whatever they depend on, all or nothing."""
        if not specs:
            raise InvalidInputError("nothing to install; name at least one plugin")
        await self.start_runtime()
        async with self._lock:
            sources = [
                parse_source(s, is_file=Path(s).is_file(), is_dir=Path(s).is_dir()) for s in specs
            ]
            staged: list[Staged] = []
            try:
                for source in sources:
                    if source.kind != "registry":
                        staged.append(await self._stage_local(source, trust_new_key, key))
                requirements = [s.requirement for s in sources if s.requirement is not None]
                for item in staged:  # what local archives need comes from the registries
                    requirements += [
                        Requirement(dep, spec or "*", f"{item.name} {item.version}")
                        for dep, spec in item.manifest.dependencies.items()
                    ]
                local = {item.name for item in staged}
                staged += await self._stage_resolved(
                    [r for r in requirements if r.name not in local],
                    keep_installed=True,
                    trust_new_key=trust_new_key,
                )
                requested = [s.requirement.name for s in sources if s.requirement is not None]
                requested += list(local)
                return await self._apply(staged, requested=requested, operation="install")
            except BaseException:
                self.installer.discard(staged)
                raise

    async def update(self, *names: str, trust_new_key: bool = False) -> InstallReport:
        """Move ``names`` (or, with none, every registry install) to their newest compatible
        versions, keeping what other plugins need satisfied."""
        await self.start_runtime()
        async with self._lock:
            installed = {i.name: i for i in self.state.installations()}
            targets = list(names) or [
                n for n, i in installed.items() if i.source_kind == "registry"
            ]
            for name in targets:
                if name not in installed:
                    raise NotFoundError("installed plugin", name)
                if installed[name].source_kind != "registry":
                    raise InvalidInputError(
                        f"{name} was installed from {installed[name].source_kind} "
                        f"{installed[name].source}; install the new archive instead"
                    )
            requirements = [Requirement(name, "*", None) for name in targets]
            for other in installed.values():
                requirements += [
                    Requirement(dep, spec or "*", f"{other.name} {other.version}")
                    for dep, spec in other.dependencies.items()
                ]
            staged: list[Staged] = []
            try:
                staged = await self._stage_resolved(
                    requirements,
                    keep_installed=False,
                    refresh=set(targets),
                    trust_new_key=trust_new_key,
                )
                return await self._apply(staged, requested=[], operation="update")
            except BaseException:
                self.installer.discard(staged)
                raise

    async def uninstall(self, name: str, *, purge: bool = False) -> None:
        await self.start_runtime()
        async with self._lock:
            installation = self.state.get(name)
            if installation is None:
                raise NotFoundError("installed plugin", name)
            needed_by = sorted(
                f"{i.name} {i.version} (needs {name}{_spec(i.dependencies[name])})"
                for i in self.state.installations()
                if name in i.dependencies and i.name != name
            )
            if needed_by:
                self.state.audit(
                    "uninstall", name, "refused", actor=self.actor, needed_by=needed_by
                )
                raise ConflictError(
                    "plugin", name, "is needed by " + ", ".join(needed_by) + "; uninstall it first"
                )
            if name in {s.name for s in self.supervisor.status()}:
                await self.supervisor.remove(name, purge_data=purge)
            elif purge:
                shutil.rmtree(self.paths.runtime / "data" / name, ignore_errors=True)
                self.supervisor.services.storage.clear(name)
                self.supervisor.services.settings.clear(name)
            self.installer.remove(installation, actor=self.actor, purge=purge)
            await self._report(installation, "uninstall")

    async def enable(self, name: str) -> None:
        await self.start_runtime()
        async with self._lock:
            installation = self._installed(name)
            if not installation.enabled:
                self.state.set_enabled(name, True)
                self._add(self._installed(name))
            self.state.audit("enable", name, "ok", actor=self.actor)

    async def disable(self, name: str) -> None:
        await self.start_runtime()
        async with self._lock:
            installation = self._installed(name)
            if installation.enabled:
                self.state.set_enabled(name, False)
                if name in {s.name for s in self.supervisor.status()}:
                    await self.supervisor.remove(name)
            self.state.audit("disable", name, "ok", actor=self.actor)

    # --- the steps --------------------------------------------------------------------------

    def _client(self) -> RegistryClient:
        if not self.clients:
            raise InvalidInputError(
                "no registry configured; pass --registry URL or set PLUGPORT_REGISTRY"
            )
        return self.clients[0]

    def _installed(self, name: str) -> Installation:
        installation = self.state.get(name)
        if installation is None:
            raise NotFoundError("installed plugin", name)
        return installation

    def _add(self, installation: Installation) -> None:
        code_dir = self.paths.code_dir(installation)
        manifest = load_manifest(code_dir)
        granted = Permissions.model_validate(installation.permissions)
        self.supervisor.add(PluginInstall(manifest, code_dir, granted))

    async def _stage_resolved(
        self,
        requirements: list[Requirement],
        *,
        keep_installed: bool,
        trust_new_key: bool,
        refresh: set[str] | None = None,
    ) -> list[Staged]:
        if not requirements:
            return []
        installed = {
            i.name: i.version
            for i in self.state.installations()
            if i.name not in (refresh or set())
        }
        # An update must see what was published a minute ago: revalidate (cheap 304s). An
        # install may answer from the cache within its TTL.
        source = _RegistrySource(self.clients or [self._client()], revalidate=refresh is not None)
        resolution: Resolution = await asyncio.to_thread(
            resolve,
            requirements,
            source,
            environment=self.environment,
            installed=installed if keep_installed or refresh else {},
        )
        current = {i.name: i for i in self.state.installations()}
        staged: list[Staged] = []
        indexes: dict[str, TrustedIndex] = {}
        try:
            for name in resolution.order:
                candidate = resolution.chosen[name]
                have = current.get(name)
                if have is not None and have.version == candidate.version:
                    continue
                client = source.origin[name]
                if client.url not in indexes:
                    indexes[client.url] = await asyncio.to_thread(self._trusted_index, client)
                staged.append(
                    await asyncio.to_thread(
                        self._stage_from_registry,
                        client,
                        indexes[client.url].index,
                        candidate,
                        trust_new_key,
                    )
                )
        except BaseException:
            self.installer.discard(staged)
            raise
        for trusted in indexes.values():  # only once everything verified: move the pins on
            if self.state.registry(trusted.pin.url) is None:
                how = "configured" if trusted.pin.url in self.registry_keys else "first use"
                self.state.audit(
                    "trust-registry",
                    trusted.pin.url,
                    "ok",
                    actor=self.actor,
                    key_id=trusted.pin.key_id,
                    how=how,
                )
            self.state.pin_registry(trusted.pin)
        return staged

    def _trusted_index(self, client: RegistryClient) -> TrustedIndex:
        pinned = self.state.registry(client.url)
        configured = self.registry_keys.get(client.url)
        try:
            served = client.keys() if pinned is None and configured is None else None
            key = registry_key(client.url, pinned, served, configured_pem=configured)
            # Always revalidated (a 304 when unchanged): only fetched when something is about
            # to be downloaded, and it must list what was just published.
            document = client.index_document(revalidate=True)
            return check_index(client.url, document, pinned, key, now=datetime.now(UTC))
        except TrustError as exc:
            # Never keep a refused document: revalidating it would get a 304 for the real ETag
            # (an attacker can send that too) and refuse the same bytes long after the attack.
            client.forget_index()
            self.state.audit(
                "verify-index", client.url, "refused", actor=self.actor, reason=str(exc)
            )
            raise

    def _stage_from_registry(
        self, client: RegistryClient, index: SignedIndex, candidate: Candidate, trust_new_key: bool
    ) -> Staged:
        """Every refusal on the way is audited: not in the signed index, an unknown or untrusted
        publisher key, an archive unlike its index entry, a signature that does not verify."""
        try:
            return self._fetch_verified(client, index, candidate, trust_new_key)
        except SignatureError as exc:
            self.state.audit("verify", candidate.name, "refused", actor=self.actor, reason=str(exc))
            raise

    def _fetch_verified(
        self, client: RegistryClient, index: SignedIndex, candidate: Candidate, trust_new_key: bool
    ) -> Staged:
        try:
            entry = index_entry(index, candidate.name, candidate.version)
        except SignatureError:
            if not self.offline:
                raise
            raise OfflineError(
                f"a signed index listing {candidate} (the cached one, version {index.version}, "
                "is older)",
                client.url,
            ) from None
        namespace = candidate.name.split(".", 1)[0]

        # Revalidated (a 304 when unchanged): a key revoked a minute ago must not be trusted.
        rows = {k["key_id"]: k for k in client.namespace_keys(namespace, revalidate=True)}
        if entry.key_id not in rows:
            raise SignatureError(
                "key", f"{namespace} has no registered key {entry.key_id[:16]}… at {client.url}"
            )
        if rows[entry.key_id].get("revoked_at"):
            raise SignatureError(
                "key",
                f"{candidate} is signed by {namespace}'s key {entry.key_id[:16]}…, which its "
                f"publisher revoked at {rows[entry.key_id]['revoked_at']}",
            )
        keys = {key: str(row["public_key_pem"]) for key, row in rows.items()}
        public = public_key_from_pem(keys[entry.key_id].encode(), source=f"{namespace}'s key")
        if key_id(public) != entry.key_id:
            raise SignatureError("key", f"{client.url} served a key that is not {entry.key_id}")
        check_publisher_key(
            namespace,
            entry.key_id,
            self.state.publisher_keys(namespace),
            trust_new_key=trust_new_key,
        )
        progress = self.progress

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(f"{candidate.name} {candidate.version}", done, total)

        archive = client.download(
            candidate.name,
            candidate.version,
            expected_sha256=entry.sha256,
            expected_length=entry.length,
            max_bytes=self.installer.limits.max_archive_bytes,
            progress=report,
        )
        signature = client.signature(candidate.name, candidate.version)
        return self.installer.stage_archive(
            archive,
            signature=signature,
            publisher_key=public,
            expected=entry,
            source_kind="registry",
            source=client.url,
        )

    async def _stage_local(self, source: Source, trust_new_key: bool, key: Path | None) -> Staged:
        if source.kind == "dev":
            staged = self.installer.stage_directory(Path(source.text))
            self.state.audit(
                "dev-mode", staged.name, "ok", actor=self.actor, directory=str(source.path)
            )
            return staged
        if source.kind == "url":
            return await asyncio.to_thread(self._stage_url, source.text, trust_new_key, key)
        return await asyncio.to_thread(
            self._stage_file, Path(source.text), source.text, "file", trust_new_key, key
        )

    def _stage_url(self, url: str, trust_new_key: bool, key: Path | None) -> Staged:
        limit = self.installer.limits.max_archive_bytes
        with tempfile.TemporaryDirectory(dir=self.paths.staging, prefix="url-") as scratch:
            archive = Path(scratch) / url.rsplit("/", 1)[-1]
            with httpx.Client(timeout=30, follow_redirects=False) as http:
                _fetch(http, url, archive, limit)
                _fetch(http, url + ".sig", Path(f"{archive}.sig"), 64 * 1024)
            return self._stage_file(archive, url, "url", trust_new_key, key)

    def _stage_file(
        self, archive: Path, origin: str, kind: str, trust_new_key: bool, key: Path | None
    ) -> Staged:
        signature_path = Path(f"{archive}.sig")
        if not signature_path.is_file():
            raise SignatureError(
                "signature",
                f"{signature_path}: no signature next to the archive; every "
                "install is verified (use a directory for unsigned development)",
            )
        signature = signature_path.read_bytes()
        signer = signer_key_id(signature)
        namespace = signing_facts_namespace(signature)
        public = self._publisher_key(namespace, signer, key)
        try:
            check_publisher_key(
                namespace, signer, self.state.publisher_keys(namespace), trust_new_key=trust_new_key
            )
            return self.installer.stage_archive(
                archive,
                signature=signature,
                publisher_key=public,
                expected=None,
                source_kind=kind,
                source=origin,
            )
        except SignatureError as exc:
            self.state.audit("verify", origin, "refused", actor=self.actor, reason=str(exc))
            raise

    def _publisher_key(self, namespace: str, signer: str, key: Path | None) -> Any:
        """The public key with id ``signer``: from ``--key``, else from a registry that lists
        it for ``namespace``."""
        if key is not None:
            public = load_public_key(key)
            if key_id(public) != signer:
                raise SignatureError(
                    "key",
                    f"the archive is signed by {signer[:16]}…, not by {key} "
                    f"({key_id(public)[:16]}…)",
                )
            return public
        for client in self.clients:
            try:
                keys = {k["key_id"]: k["public_key_pem"] for k in client.namespace_keys(namespace)}
            except PlugportError:
                continue
            if signer in keys:
                return public_key_from_pem(keys[signer].encode(), source=f"{namespace}'s key")
        raise SignatureError(
            "key",
            f"no key {signer[:16]}… known for {namespace}: pass --key PUBLISHER.pub "
            "or configure a registry that lists it",
        )

    async def _apply(
        self, staged: list[Staged], *, requested: list[str], operation: str
    ) -> InstallReport:
        current = {i.name: i for i in self.state.installations()}
        if not staged:
            return InstallReport(unchanged=[(n, i.version) for n, i in current.items()])
        grants = self._consent(staged, current)
        journals = self.installer.switch(
            staged, permissions=grants, requested=requested, actor=self.actor, operation=operation
        )
        try:
            await self._activate(journals)
        except Exception as exc:
            await self._restore_runtime(journals)
            self.installer.roll_back(journals, actor=self.actor, reason=_why(exc))
            raise PluginRuntimeError(
                f"{operation} failed and was rolled back ({_moves(journals)}): {exc}"
            ) from exc
        except BaseException:
            await self._restore_runtime(journals)
            self.installer.roll_back(journals, actor=self.actor, reason="cancelled")
            raise
        self.installer.confirm(journals, actor=self.actor)
        report = InstallReport(
            installed=[
                (j.name, j.version, j.previous.version if j.previous else None) for j in journals
            ]
        )
        for name, _, _ in report.installed:
            await self._report(self._installed(name), "install")
        return report

    def _consent(
        self, staged: list[Staged], current: Mapping[str, Installation]
    ) -> dict[str, dict[str, Any]]:
        grants: dict[str, dict[str, Any]] = {}
        for item in staged:
            previous = current.get(item.name)
            request = ConsentRequest(
                item.name,
                item.version,
                previous.version if previous else None,
                item.manifest.permissions,
                Permissions.model_validate(previous.permissions) if previous else None,
            )
            if needs_consent(request, self.preapproved) and not self.consent(request):
                self.state.audit(
                    "consent",
                    item.name,
                    "refused",
                    actor=self.actor,
                    version=item.version,
                    added=request.added,
                )
                raise ConsentError(
                    f"{item.name} {item.version}",
                    request.added,
                    "not given; run interactively, pass --yes, or pre-approve it in the policy",
                )
            grants[item.name] = item.manifest.permissions.model_dump(mode="json")
        return grants

    async def _activate(self, journals: Sequence[Journal]) -> None:
        """Each new version starts in the sandbox and answers a ping, or the whole operation
        fails. Disabled plugins are checked too, then left stopped."""
        loaded = {s.name for s in self.supervisor.status()}
        for journal in journals:
            if journal.name in loaded:
                await self.supervisor.remove(journal.name)
        for journal in journals:
            installation = self._installed(journal.name)
            self._add(installation)
            await self.supervisor.activate(journal.name)
            await self.supervisor.ping_all()
            [status] = self.supervisor.status(journal.name)
            if status.state != "active":
                raise PluginRuntimeError(
                    f"{journal.name} {journal.version} did not stay up: "
                    f"{status.last_error or status.state}"
                )
            if not installation.enabled:
                await self.supervisor.remove(journal.name)

    async def _restore_runtime(self, journals: Sequence[Journal]) -> None:
        loaded = {s.name for s in self.supervisor.status()}
        for journal in journals:
            if journal.name in loaded:
                with contextlib.suppress(PlugportError):
                    await self.supervisor.remove(journal.name)
        for journal in journals:
            if journal.previous is not None and journal.previous.enabled:
                with contextlib.suppress(PlugportError):
                    self._add(journal.previous)

    async def _report(
        self, installation: Installation, event: Literal["install", "uninstall"]
    ) -> None:
        """Best effort, off the event loop: a slow registry never stalls plugin calls."""
        if not self.telemetry or self.offline or installation.source_kind != "registry":
            return
        for client in self.clients:
            if client.url == installation.source:
                await asyncio.to_thread(
                    client.report_usage, installation.name, installation.version, event
                )


def signing_facts_namespace(signature: bytes) -> str:
    return signed_facts(signature).name.split(".", 1)[0]


def _fetch(http: httpx.Client, url: str, dest: Path, limit: int) -> None:
    """Stream ``url`` into ``dest``, refusing more than ``limit`` bytes."""
    with http.stream("GET", url) as response:
        if response.status_code != 200:
            raise NotFoundError("download", f"{url} (HTTP {response.status_code})")
        received = 0
        with dest.open("wb") as out:
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > limit:
                    raise ArchiveLimitError(
                        "max_archive_bytes", received, limit, f"{url} is too large", path=url
                    )
                out.write(chunk)


def _moves(journals: Sequence[Journal]) -> str:
    return ", ".join(
        f"{j.name} {j.version} -> back to {j.previous.version}"
        if j.previous
        else f"{j.name} {j.version} -> not installed"
        for j in journals
    )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _spec(spec: str) -> str:
    return "" if spec in ("", "*") else spec


def _newer(a: str, b: str) -> bool:
    return parse_version(a) > parse_version(b)
