"""Turning what an operator asked for into verified, staged plugins: the registries' signed
index and keys, publisher signatures and downloads, or a local archive, a URL, a directory.
Every refusal on the way is audited; nothing outside staging changes here.

One operation sends each registry request once: the signed index is fetched once per registry
(and not at all while the cached copy is fresh and already lists every version to fetch), a
namespace's keys are revalidated once however many of its plugins are verified."""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from packaging.utils import parse_wheel_filename

from plugport._tls import default_context
from plugport.authoring import read_archive_manifest
from plugport.deps.libraries import running_tags
from plugport.deps.lockfile import LOCK_FILENAME, LockedWheel
from plugport.errors import (
    ArchiveLimitError,
    DependencyError,
    InvalidInputError,
    NotFoundError,
    OfflineError,
    PlugportError,
    RegistryResponseError,
    ResolutionError,
    SignatureError,
    TrustError,
)
from plugport.host import tuf_client
from plugport.host._index_rules import choose_wheel, parse_index_requirement
from plugport.host._withdrawn_rules import quarantined_refusal, withdrawn_refusal
from plugport.host.client import RegistryClient
from plugport.host.context import OperationContext, Progress
from plugport.host.install import HostPaths, Installer, Staged
from plugport.host.package_index import PackageIndex
from plugport.host.resolver import Candidate, Requirement, Resolution, resolve
from plugport.host.sources import Source
from plugport.host.state import HostState
from plugport.host.trust import (
    Listing,
    TrustedIndex,
    check_index,
    check_publisher_key,
    choose_trust,
    index_entry,
    registry_key,
)
from plugport.host.tuf_client import TufListing
from plugport.index import IndexEntry
from plugport.signing import (
    SIGNATURE_SUFFIX,
    key_id,
    load_public_key,
    public_key_from_pem,
    signed_facts,
    signer_key_id,
)

__all__ = ["Fetcher", "Progress", "RegistrySource"]


class RegistrySource:
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


class Fetcher:
    def __init__(
        self,
        *,
        paths: HostPaths,
        state: HostState,
        installer: Installer,
        clients: Sequence[RegistryClient],
        registry_keys: Mapping[str, str],
        offline: bool,
        actor: str,
        progress: Progress | None,
        allow_unsigned_index: bool = False,
        index_transport: httpx.BaseTransport | None = None,
        tuf_roots: Mapping[str, bytes] | None = None,
        index_fallback: bool = True,
    ) -> None:
        self.paths = paths
        self.state = state
        self.installer = installer
        self.clients = clients
        self.registry_keys = registry_keys
        self.offline = offline
        self.actor = actor
        self.progress = progress
        self.allow_unsigned_index = allow_unsigned_index
        """The operator's policy: a plugin wheel from a package index may be installed with
        no signature and no registry vouching for it (marked, and audited, as unsigned)."""
        self.index_transport = index_transport
        self.tuf_roots = dict(tuf_roots or {})
        """The operator's TUF roots by registry URL: the trust anchor to verify from."""
        self.index_fallback = index_fallback
        """The operator's policy: a registry with no TUF root may be verified by its v1 signed
        index (off: such a registry is refused)."""

    def _for(self, context: OperationContext | None) -> Fetcher:
        """This fetcher for one operation: its audit rows name ``context.actor`` and its
        downloads report to ``context.progress``. A copy, so operations in flight at the same
        time never see each other's (the constructor's ``actor``/``progress`` are the
        default)."""
        if context is None:
            return self
        bound = copy.copy(self)
        bound.actor, bound.progress = context.actor, context.progress
        return bound

    async def resolved(
        self,
        requirements: list[Requirement],
        *,
        environment: Mapping[str, str],
        trust_new_key: bool,
        refresh: set[str] | None = None,
        context: OperationContext | None = None,
    ) -> list[Staged]:
        """Resolve ``requirements`` against the registries and stage every chosen version
        that is not installed already; ``refresh`` names plugins being updated (their metadata
        is revalidated and their installed versions are not preferred)."""
        if context is not None:
            return await self._for(context).resolved(
                requirements,
                environment=environment,
                trust_new_key=trust_new_key,
                refresh=refresh,
            )
        if not requirements:
            return []
        current = {i.name: i for i in self.state.installations()}
        installed = {n: i.version for n, i in current.items() if n not in (refresh or set())}
        # An update must see what was published a minute ago: revalidate (cheap 304s). An
        # install may answer from the cache within its TTL.
        source = RegistrySource(self.clients, revalidate=refresh is not None)
        try:
            resolution: Resolution = await asyncio.to_thread(
                resolve, requirements, source, environment=environment, installed=installed
            )
        except ResolutionError:
            await asyncio.to_thread(self._refuse_withdrawn, requirements, source)
            raise
        staged: list[Staged] = []
        indexes: dict[str, TrustedIndex] = {}
        keys: _KeysSeen = {}
        wanted: dict[str, list[tuple[str, str]]] = {}
        for name in resolution.order:
            candidate, have = resolution.chosen[name], current.get(name)
            if have is None or have.version != candidate.version:
                wanted.setdefault(source.origin[name].url, []).append((name, candidate.version))
        try:
            for name in resolution.order:
                candidate = resolution.chosen[name]
                have = current.get(name)
                if have is not None and have.version == candidate.version:
                    continue
                client = source.origin[name]
                if client.url not in indexes:
                    indexes[client.url] = await asyncio.to_thread(
                        self._trusted_index, client, wanted[client.url]
                    )
                staged.append(
                    await asyncio.to_thread(
                        self._from_registry,
                        client,
                        indexes[client.url].index,
                        candidate,
                        trust_new_key,
                        keys,
                    )
                )
        except BaseException:
            self.installer.discard(staged)
            raise
        for trusted in indexes.values():  # only once everything verified: move the pins on
            self._pin(trusted)
        return staged

    def _refuse_withdrawn(
        self, requirements: Sequence[Requirement], source: RegistrySource
    ) -> None:
        """After a failed resolution: when what the operator asked for is only met by versions
        the registry withdrew (signed with a key its publisher revoked), say so, naming the key
        and when it was revoked (audited as a refused verification, as a revoked key found
        while fetching is); likewise for versions the registry quarantined, with its reason.
        Returns when that is not the reason; the resolver's error stands."""
        for requirement in requirements:
            client = source.origin.get(requirement.name)
            if requirement.parent is not None or client is None:
                continue
            try:
                listed = client.plugin(requirement.name).get("versions")
            except PlugportError:
                continue  # offline, say: the resolver's own explanation is still true
            if not isinstance(listed, list):
                continue
            rows = [row for row in listed if isinstance(row, dict)]
            for part, refusal in (
                ("key", withdrawn_refusal(requirement, rows)),
                ("quarantined", quarantined_refusal(requirement, rows)),
            ):
                if refusal is not None:
                    self.state.audit(
                        "verify", requirement.name, "refused", actor=self.actor, reason=refusal
                    )
                    raise SignatureError(part, refusal)

    def _pin(self, trusted: TrustedIndex) -> None:
        if trusted.pin is None:  # TUF: its client persisted what it verified
            if trusted.how and isinstance(trusted.index, TufListing):
                self.state.audit(
                    "trust-registry",
                    trusted.index.url,
                    "ok",
                    actor=self.actor,
                    how=f"TUF root, {trusted.how}",
                )
            return
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

    def _trusted_index(
        self, client: RegistryClient, wanted: Collection[tuple[str, str]]
    ) -> TrustedIndex:
        """What the registry vouches for, verified through TUF or its v1 signed index
        (:func:`~plugport.host.trust.choose_trust` decides which)."""
        directory = tuf_client.metadata_dir(self.paths.root, client.url)
        configured = self.tuf_roots.get(client.url)
        trusted_root = tuf_client.has_trusted_root(directory)
        served: bytes | None = None
        pinned = self.state.registry(client.url) is not None
        if configured is None and not trusted_root and not pinned and not client.offline:
            served = tuf_client.first_root(client)
        mode = choose_trust(
            client.url,
            configured_root=configured is not None,
            trusted_root=trusted_root,
            pinned_index=pinned,
            serves_tuf=served is not None,
            index_fallback=self.index_fallback,
        )
        if mode == "index":
            return self._trusted_signed_index(client, wanted)
        how = "" if trusted_root else "configured" if configured is not None else "first use"
        try:
            found = tuf_client.listing(
                client, directory, wanted, bootstrap=configured if configured else served
            )
        except TrustError as exc:
            self.state.audit(
                "verify-index", client.url, "refused", actor=self.actor, reason=str(exc)
            )
            raise
        return TrustedIndex(found, None, how)

    def _trusted_signed_index(
        self, client: RegistryClient, wanted: Collection[tuple[str, str]]
    ) -> TrustedIndex:
        """The registry's v1 index, verified. The cached copy while it is fresh (``ttl_s``, as
        the versions it was resolved from) if it lists every ``(name, version)`` wanted; else
        revalidated (a 304 when unchanged), so what was published a minute ago is found."""
        pinned = self.state.registry(client.url)
        configured = self.registry_keys.get(client.url)
        try:
            served = client.keys() if pinned is None and configured is None else None
            key = registry_key(client.url, pinned, served, configured_pem=configured)
            now = datetime.now(UTC)
            sent = client.requests_sent
            try:
                first = check_index(client.url, client.index_document(), pinned, key, now=now)
            except TrustError:
                if client.requests_sent != sent:
                    raise  # what the registry has just sent
                first = None  # the cached copy (expired, say): ask the registry
            if first is not None and (client.requests_sent != sent or _lists(first.index, wanted)):
                return first
            document = client.index_document(revalidate=True)
            return check_index(client.url, document, pinned, key, now=now)
        except TrustError as exc:
            # Never keep a refused document: revalidating it would get a 304 for the real ETag
            # (an attacker can send that too) and refuse the same bytes long after the attack.
            client.forget_index()
            self.state.audit(
                "verify-index", client.url, "refused", actor=self.actor, reason=str(exc)
            )
            raise

    def _from_registry(
        self,
        client: RegistryClient,
        index: Listing,
        candidate: Candidate,
        trust_new_key: bool,
        keys: _KeysSeen,
    ) -> Staged:
        """Every refusal on the way is audited: not in the signed index, an unknown or untrusted
        publisher key, an archive unlike its index entry, a signature that does not verify."""
        try:
            return self._fetch_verified(client, index, candidate, trust_new_key, keys)
        except SignatureError as exc:
            self.state.audit("verify", candidate.name, "refused", actor=self.actor, reason=str(exc))
            raise

    def _fetch_verified(
        self,
        client: RegistryClient,
        index: Listing,
        candidate: Candidate,
        trust_new_key: bool,
        keys: _KeysSeen,
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
        if entry.quarantined:  # a TUF target the registry flagged: refused even when pinned
            raise SignatureError(
                "quarantined",
                f"{candidate} is quarantined by the registry (its TUF target says so): it is "
                "refused even when pinned; nothing was installed",
            )
        namespace = candidate.name.split(".", 1)[0]

        # Revalidated (a 304 when unchanged), once per operation: a key revoked a minute ago
        # must not be trusted, and the answer holds for every plugin of the namespace.
        if (client.url, namespace) not in keys:
            listed = client.namespace_keys(namespace, revalidate=True)
            keys[client.url, namespace] = {k["key_id"]: k for k in listed}
        rows = keys[client.url, namespace]
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
        pem = str(rows[entry.key_id]["public_key_pem"])
        public = public_key_from_pem(pem.encode(), source=f"{namespace}'s key")
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

    async def local(
        self,
        source: Source,
        trust_new_key: bool,
        key: Path | None,
        *,
        context: OperationContext | None = None,
    ) -> Staged:
        if context is not None:
            return await self._for(context).local(source, trust_new_key, key)
        if source.kind == "dev":
            staged = self.installer.stage_directory(Path(source.text))
            self.state.audit(
                "dev-mode", staged.name, "ok", actor=self.actor, directory=str(source.path)
            )
            return staged
        if source.kind == "url":
            return await asyncio.to_thread(self._url, source.text, trust_new_key, key)
        if source.kind == "index" and source.index_url is not None:
            return await asyncio.to_thread(
                self._from_package_index, source.index_url, source.text, trust_new_key, key
            )
        return await asyncio.to_thread(
            self._file, Path(source.text), source.text, "file", trust_new_key, key
        )

    def _url(self, url: str, trust_new_key: bool, key: Path | None) -> Staged:
        limit = self.installer.limits.max_archive_bytes
        with tempfile.TemporaryDirectory(dir=self.paths.staging, prefix="url-") as scratch:
            archive = Path(scratch) / url.rsplit("/", 1)[-1]
            with httpx.Client(timeout=30, follow_redirects=False, verify=default_context()) as http:
                _fetch(http, url, archive, limit)
                _fetch(http, url + ".sig", Path(f"{archive}.sig"), 64 * 1024)
            return self._file(archive, url, "url", trust_new_key, key)

    def _file(
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
        try:
            public = self._signer_key(signature, key, trust_new_key=trust_new_key)
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

    def _signer_key(
        self, signature: bytes, key: Path | None, *, trust_new_key: bool
    ) -> ed25519.Ed25519PublicKey:
        """The key that must verify ``signature``: the one given, or the namespace's on a
        registry; refused unless it is the namespace's pinned key (or pinning it is allowed)."""
        signer = signer_key_id(signature)
        namespace = signing_facts_namespace(signature)
        public = self._publisher_key(namespace, signer, key)
        check_publisher_key(
            namespace, signer, self.state.publisher_keys(namespace), trust_new_key=trust_new_key
        )
        return public

    def _publisher_key(
        self, namespace: str, signer: str, key: Path | None
    ) -> ed25519.Ed25519PublicKey:
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

    # --- plugin wheels on a package index ------------------------------------------------------

    def _from_package_index(
        self, index_url: str, text: str, trust_new_key: bool, key: Path | None
    ) -> Staged:
        """The best wheel of ``text`` on the index, downloaded, trusted (its ``.sig``, a
        registry's signed index, or the operator's policy for unsigned wheels) and staged with
        its locked libraries from the same index. Every refusal of trust is audited."""
        requirement = parse_index_requirement(text)
        if self.offline:
            raise InvalidInputError(
                f"{text}: installing from the package index {index_url} needs the network; "
                "drop --offline"
            )
        limit = self.installer.limits.max_archive_bytes
        with (
            PackageIndex(index_url, transport=self.index_transport) as index,
            tempfile.TemporaryDirectory(dir=self.paths.staging, prefix="index-") as scratch,
        ):
            page, files = index.project(requirement.project)
            chosen = choose_wheel(
                files,
                requirement,
                tags=running_tags(),
                python_version=".".join(map(str, sys.version_info[:3])),
                page_url=page,
            )
            wheel = Path(scratch) / _safe_filename(chosen.filename, chosen.url)
            report = self._reporter(chosen.filename)
            digest, _ = index.download(chosen, wheel, max_bytes=limit, progress=report)
            signature = index.optional(chosen.url + SIGNATURE_SUFFIX, max_bytes=_MAX_SIG_BYTES)
            libraries = _IndexLibraries(index, Path(scratch) / "libraries", limit)
            try:
                staged = self._trusted_wheel(
                    wheel, chosen.url, digest, signature, libraries, trust_new_key, key
                )
            except SignatureError as exc:
                self.state.audit("verify", chosen.url, "refused", actor=self.actor, reason=str(exc))
                raise
        wanted = requirement.plugin_name
        if wanted is not None and staged.name != wanted:
            self.installer.discard([staged])
            raise InvalidInputError(
                f"{text}: {chosen.url} is the plugin {staged.name}, not {wanted}; install it "
                f"by its own name, or by the project name {requirement.project}"
            )
        if not staged.key_id:
            self.state.audit(
                "install-unsigned",
                staged.name,
                "ok",
                actor=self.actor,
                version=staged.version,
                url=chosen.url,
                sha256=digest,
                reason="no signature and no registry lists it; the host policy "
                "allow_unsigned_index allows it",
            )
        return staged

    def _trusted_wheel(  # noqa: PLR0917 the wheel, where it came from, and how to trust it
        self,
        wheel: Path,
        url: str,
        digest: str,
        signature: bytes | None,
        libraries: _IndexLibraries,
        trust_new_key: bool,
        key: Path | None,
    ) -> Staged:
        if signature is not None:
            public = self._signer_key(signature, key, trust_new_key=trust_new_key)
            return self.installer.stage_wheel(
                wheel,
                source=url,
                libraries_from=libraries,
                signature=signature,
                publisher_key=public,
            )
        if key is not None:
            raise SignatureError(
                "signature",
                f"{url}{SIGNATURE_SUFFIX}: no signature beside the wheel, so --key {key} has "
                "nothing to verify; ask its publisher to publish the .sig that `plugport sign` "
                "writes beside the wheel",
            )
        manifest = read_archive_manifest(wheel, shown_as=url)
        listed, unlike = self._listed(manifest.name, manifest.version, digest, trust_new_key)
        if listed is not None:
            entry, trusted = listed
            staged = self.installer.stage_wheel(
                wheel, source=url, libraries_from=libraries, listed=entry
            )
            self._pin(trusted)
            return staged
        if self.allow_unsigned_index:
            return self.installer.stage_wheel(
                wheel, source=url, libraries_from=libraries, unsigned=True
            )
        if unlike:
            vouch = (
                f"{', '.join(unlike)} list{'s' if len(unlike) == 1 else ''} "
                f"{manifest.name} {manifest.version} with another sha256 (a .plugport archive's, "
                "say), so no registry vouches for this wheel"
            )
        elif self.clients:
            vouch = "no configured registry's signed index lists it"
        else:
            vouch = "no registry is configured to vouch for it"
        raise SignatureError(
            "signature",
            f"{url}: {manifest.name} {manifest.version} has no signature "
            f"({url}{SIGNATURE_SUFFIX} does not exist) and {vouch}; ask its publisher to "
            "publish the .sig that `plugport sign` writes beside the wheel, or, if this host "
            "may run unsigned plugins from this index, set allow_unsigned_index = true in the "
            "host home's policy.toml (or PLUGPORT_ALLOW_UNSIGNED_INDEX=1)",
        )

    def _listed(
        self, name: str, version: str, digest: str, trust_new_key: bool
    ) -> tuple[tuple[IndexEntry, TrustedIndex] | None, list[str]]:
        """The entry of a configured registry's signed index that lists ``name`` ``version``
        with this sha256 (and the index, to pin once the wheel is staged), or ``None``; and the
        registries that list that version with another sha256 (they vouch for other bytes, such
        as the version's ``.plugport`` archive, not for this wheel)."""
        unlike = []
        for client in self.clients:
            try:
                trusted = self._trusted_index(client, [(name, version)])
            except TrustError:
                raise
            except PlugportError:
                continue  # unreachable, or offline with nothing cached: it vouches for nothing
            entry = trusted.index.find(name, version)
            if entry is None:
                continue
            if entry.sha256 != digest:
                unlike.append(client.url)
                continue
            namespace = name.split(".", 1)[0]
            check_publisher_key(
                namespace,
                entry.key_id,
                self.state.publisher_keys(namespace),
                trust_new_key=trust_new_key,
            )
            return (entry, trusted), unlike
        return None, unlike

    def _reporter(self, what: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda done, total: progress(what, done, total)


_MAX_SIG_BYTES = 64 * 1024


class _IndexLibraries:
    """A plugin wheel's locked libraries, fetched from the index it came from by file name and
    kept only if each has the sha256 its lock names (the lock is inside the trusted wheel)."""

    def __init__(self, index: PackageIndex, directory: Path, max_bytes: int) -> None:
        self.index = index
        self.directory = directory
        self.max_bytes = max_bytes

    def __call__(self, locked: LockedWheel) -> Path:
        project = parse_wheel_filename(locked.filename)[0]
        try:
            page, files = self.index.project(project)
        except NotFoundError:
            page, files = f"{self.index.url} (no page for {project})", []
        found = next((f for f in files if f.filename == locked.filename), None)
        if found is None:
            raise DependencyError(
                f"{locked.filename}, which the plugin's {LOCK_FILENAME} names, is not on the "
                f"package index: {page} does not list it; its publisher must upload it to "
                "the same index as the plugin",
                package=project,
                file=locked.filename,
            )
        if found.sha256 is not None and found.sha256 != locked.sha256:
            raise DependencyError(
                f"the package index lists {locked.filename} with sha256 {found.sha256[:16]}…, "
                f"but the plugin's {LOCK_FILENAME} names {locked.sha256[:16]}…: it is not the "
                "file the plugin was locked with; nothing was installed",
                package=project,
                file=locked.filename,
            )
        self.directory.mkdir(exist_ok=True)
        path = self.directory / _safe_filename(locked.filename, found.url)
        digest, _ = self.index.download(found, path, max_bytes=self.max_bytes)
        if digest != locked.sha256:
            raise DependencyError(
                f"{found.url} has sha256 {digest[:16]}…, but the plugin's {LOCK_FILENAME} "
                f"names {locked.sha256[:16]}… for {locked.filename}; nothing was installed",
                package=project,
                file=locked.filename,
            )
        return path


def _safe_filename(filename: str, url: str) -> str:
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise InvalidInputError(f"{url}: {filename!r} is not a file name")
    return filename


_KeysSeen = dict[tuple[str, str], dict[str, dict[str, object]]]
"""``(registry url, namespace)`` -> the namespace's keys by id, as fetched in this operation."""


def _lists(index: Listing, wanted: Collection[tuple[str, str]]) -> bool:
    return all(index.find(name, version) is not None for name, version in wanted)


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
