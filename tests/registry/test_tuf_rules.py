"""The registry's TUF builder as data (:mod:`plugport.registry.tuf.rules`): which metadata it
signs next, from what it published (read back from its bytes, as the store gives it) and what
the catalogue offers; and the next root, signed by whom it must be."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import Signer
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from plugport.errors import InvalidInputError
from plugport.index import IndexEntry
from plugport.registry.tuf.keys import OnlineKeys, new_online_keys, signer_for
from plugport.registry.tuf.rules import (
    DEFAULT_LIFETIMES,
    Lifetimes,
    Published,
    Written,
    new_root,
    next_metadata,
    rotated_root,
    serialized,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LIFE = DEFAULT_LIFETIMES
EVERY_ROLE = {"targets", "snapshot", "timestamp"}


def _entry(name: str, version: str) -> IndexEntry:
    data = f"{name} {version}".encode()
    return IndexEntry(name, version, hashlib.sha256(data).hexdigest(), len(data), "ab" * 32, False)


def _signer() -> Signer:
    return signer_for(ed25519.Ed25519PrivateKey.generate())


def _stored(published: Published) -> Published:
    """``published`` as the registry's store gives it back: parsed from its bytes."""

    def again(metadata: Metadata[Any] | None) -> Metadata[Any] | None:
        return None if metadata is None else Metadata.from_bytes(serialized(metadata))

    return Published(
        Metadata[Root].from_bytes(serialized(published.root)),
        again(published.targets),
        {role: Metadata.from_bytes(serialized(md)) for role, md in published.namespaces.items()},
        again(published.snapshot),
        again(published.timestamp),
    )


@dataclass
class Repo:
    """A registry's published metadata, moved on by :func:`next_metadata` only."""

    keys: OnlineKeys = field(default_factory=new_online_keys)
    generations: dict[str, int] = field(default_factory=dict)
    entries: list[IndexEntry] = field(default_factory=list)
    published: Published = field(init=False)

    def __post_init__(self) -> None:
        root = new_root([_signer()], 1, self.keys.public(), now=NOW)
        self.published = Published(root)
        self.step()

    def step(self, *, now: datetime = NOW, lifetimes: Lifetimes = LIFE) -> list[Written]:
        newest, written = next_metadata(
            self.published,
            self.entries,
            self.keys.signers(lambda namespace: self.generations.get(namespace, 1)),
            now=now,
            lifetimes=lifetimes,
        )
        self.published = _stored(newest)
        return written

    def documents(self) -> dict[str, bytes]:
        """Every role's newest bytes."""
        found = {
            role: serialized(md)
            for role in ("targets", "snapshot", "timestamp")
            if (md := getattr(self.published, role)) is not None
        }
        return found | {role: serialized(md) for role, md in self.published.namespaces.items()}


def _roles(written: Iterable[Written]) -> set[str]:
    return {w.role for w in written}


def _timestamp(repo: Repo) -> Timestamp:
    assert repo.published.timestamp is not None
    return repo.published.timestamp.signed


def _snapshot(repo: Repo) -> Snapshot:
    assert repo.published.snapshot is not None
    return repo.published.snapshot.signed


def _targets(repo: Repo) -> Targets:
    assert repo.published.targets is not None
    return repo.published.targets.signed


def _describes_the_snapshot(repo: Repo) -> None:
    described = _timestamp(repo).snapshot_meta
    assert repo.published.snapshot is not None
    document = serialized(repo.published.snapshot)
    assert described.version == _snapshot(repo).version
    assert described.length == len(document)
    assert described.hashes == {"sha256": hashlib.sha256(document).hexdigest()}


# --- next_metadata ---------------------------------------------------------------------------


def test_the_first_metadata_is_every_role_at_version_1() -> None:
    repo = Repo()
    assert repo.documents().keys() == EVERY_ROLE
    assert {role: md.signed.version for role, md in _versions(repo).items()} == dict.fromkeys(
        EVERY_ROLE, 1
    )
    assert _targets(repo).delegations is None
    _describes_the_snapshot(repo)


def _versions(repo: Repo) -> dict[str, Metadata[Any]]:
    found = {
        role: md
        for role in ("targets", "snapshot", "timestamp")
        if (md := getattr(repo.published, role)) is not None
    }
    return found | dict(repo.published.namespaces)


def test_versions_only_increase() -> None:
    repo = Repo()
    versions = {role: md.signed.version for role, md in _versions(repo).items()}
    steps: list[Callable[[], object]] = [
        lambda: repo.entries.append(_entry("acme.hello", "1.0.0")),
        lambda: repo.entries.append(_entry("beta.tool", "1.0.0")),
        repo.entries.clear,
        lambda: repo.generations.__setitem__("acme", 2),
        lambda: setattr(repo, "keys", repo.keys.replaced("targets")),
        lambda: setattr(repo, "keys", repo.keys.replaced("namespaces")),
    ]
    for number, change in enumerate(steps):
        change()
        written = repo.step(now=NOW + timedelta(hours=number))
        assert written, number
        for item in written:
            assert item.version == versions.get(item.role, 0) + 1, (number, item.role)
            versions[item.role] = item.version
        assert {r: md.signed.version for r, md in _versions(repo).items()} == versions
    # and time alone: each role signed again at its half-life, one version up
    for days in (1, 4, 16, 46, 100):
        for item in repo.step(now=NOW + timedelta(days=days)):
            assert item.version == versions[item.role] + 1
            versions[item.role] = item.version


def test_nothing_is_signed_again_when_nothing_changed() -> None:
    repo = Repo(entries=[_entry("acme.hello", "1.0.0"), _entry("beta.tool", "2.0.0")])
    repo.step()
    before = repo.documents()
    assert repo.step() == []
    assert repo.step(now=NOW + LIFE.timestamp / 2) == []  # half-life reached, not passed
    assert repo.documents() == before


def test_a_changed_namespace_signs_only_its_role_the_snapshot_and_the_timestamp() -> None:
    repo = Repo(entries=[_entry("acme.hello", "1.0.0"), _entry("beta.tool", "2.0.0")])
    repo.step()
    before = repo.documents()
    repo.entries.append(_entry("acme.hello", "1.1.0"))
    assert _roles(repo.step()) == {"ns.acme", "snapshot", "timestamp"}
    after = repo.documents()
    assert {role for role in after if after[role] != before[role]} == {
        "ns.acme",
        "snapshot",
        "timestamp",
    }
    acme = repo.published.namespaces["ns.acme"].signed
    assert sorted(acme.targets) == [
        "acme.hello/acme.hello-1.0.0.plugport",
        "acme.hello/acme.hello-1.1.0.plugport",
    ]
    assert _snapshot(repo).meta["ns.acme.json"].version == acme.version == 2
    assert _snapshot(repo).meta["ns.beta.json"].version == 1
    _describes_the_snapshot(repo)


@pytest.mark.parametrize(
    ("elapsed", "roles"),
    [
        (LIFE.timestamp / 2 + timedelta(seconds=1), {"timestamp"}),
        (LIFE.snapshot / 2 + timedelta(seconds=1), {"snapshot", "timestamp"}),
        (LIFE.namespace / 2 + timedelta(seconds=1), {"ns.acme", "snapshot", "timestamp"}),
        (LIFE.targets / 2 + timedelta(seconds=1), {"ns.acme", "targets", "snapshot", "timestamp"}),
    ],
    ids=["timestamp", "snapshot", "namespace", "targets"],
)
def test_metadata_is_signed_again_past_half_its_life(elapsed: timedelta, roles: set[str]) -> None:
    repo = Repo(entries=[_entry("acme.hello", "1.0.0")])
    repo.step()
    before = {role: md.signed for role, md in _versions(repo).items()}
    written = repo.step(now=NOW + elapsed)
    assert _roles(written) == roles
    for role in roles:
        signed = _versions(repo)[role].signed
        assert signed.version == before[role].version + 1
        assert signed.expires > before[role].expires
    _describes_the_snapshot(repo)


def test_a_namespace_whose_versions_all_left_keeps_an_empty_role() -> None:
    """The snapshot never drops a role it listed: a host that trusts ns.acme would refuse a
    snapshot without it."""
    repo = Repo(entries=[_entry("acme.hello", "1.0.0")])
    repo.step()
    repo.entries.clear()
    assert _roles(repo.step()) == {"ns.acme", "snapshot", "timestamp"}
    acme = repo.published.namespaces["ns.acme"].signed
    assert acme.targets == {}
    assert acme.version == 2
    assert _snapshot(repo).meta["ns.acme.json"].version == 2
    delegations = _targets(repo).delegations
    assert delegations is not None
    assert delegations.roles is not None
    assert list(delegations.roles) == ["ns.acme"]
    assert repo.step() == []  # and it stays, unchanged


@pytest.mark.parametrize(
    ("change", "roles"),
    [
        ("timestamp", {"timestamp"}),
        ("snapshot", {"snapshot", "timestamp"}),
        ("targets", {"targets", "snapshot", "timestamp"}),
        ("namespace", {"ns.acme", "targets", "snapshot", "timestamp"}),
        ("namespaces", {"ns.acme", "ns.beta", "targets", "snapshot", "timestamp"}),
    ],
)
def test_a_changed_online_key_signs_again_the_roles_it_signs(change: str, roles: set[str]) -> None:
    repo = Repo(entries=[_entry("acme.hello", "1.0.0"), _entry("beta.tool", "1.0.0")])
    repo.step()
    before = repo.documents()
    if change == "namespace":  # one namespace's key generation raised
        repo.generations["acme"] = 2
    else:
        repo.keys = repo.keys.replaced(change)
    assert _roles(repo.step()) == roles
    after = repo.documents()
    assert {role for role in after if after[role] != before[role]} == roles
    signers = repo.keys.signers(lambda namespace: repo.generations.get(namespace, 1))
    for role in roles:
        signer = (
            signers.namespace(role.removeprefix("ns."))
            if role.startswith("ns.")
            else getattr(signers, role)
        )
        assert list(_versions(repo)[role].signatures) == [signer.public_key.keyid], role
    delegations = _targets(repo).delegations
    assert delegations is not None
    assert delegations.roles is not None
    assert delegations.roles["ns.acme"].keyids == [signers.namespace("acme").public_key.keyid]


# --- roots -----------------------------------------------------------------------------------


def _root(count: int, threshold: int) -> tuple[list[Signer], Metadata[Root]]:
    signers = [_signer() for _ in range(count)]
    return signers, new_root(signers, threshold, new_online_keys().public(), now=NOW)


def test_a_new_root_needs_as_many_keys_as_its_threshold() -> None:
    signers = [_signer()]
    with pytest.raises(InvalidInputError, match="2 signatures needed but only 1 root key"):
        new_root(signers, 2, new_online_keys().public(), now=NOW)
    with pytest.raises(InvalidInputError, match="must be at least 1, not 0"):
        new_root(signers, 0, new_online_keys().public(), now=NOW)


@pytest.mark.parametrize("given", [1, 0], ids=["one of them", "none of them"])
def test_rotated_root_refuses_too_few_old_root_keys(given: int) -> None:
    signers, previous = _root(3, 2)
    before = serialized(previous)
    strangers = [_signer(), _signer()]
    with pytest.raises(InvalidInputError) as caught:
        rotated_root(
            previous,
            signers[:given] + strangers,
            now=NOW,
            new_root_signers=strangers,
            online={"timestamp": _signer().public_key},
        )
    assert str(caught.value) == (
        "root keys: root version 1 needs 2 of its own 3 keys to sign the next root; "
        f"{given} of the keys given are among them"
    )
    assert serialized(previous) == before  # the previous root was not touched


def test_rotated_root_is_signed_by_the_old_and_the_new_root_keys() -> None:
    old, previous = _root(3, 2)
    new = [_signer(), _signer()]
    timestamp = _signer().public_key
    root = rotated_root(
        previous,
        old[:2],
        now=NOW + timedelta(days=1),
        new_root_signers=new,
        threshold=2,
        online={"timestamp": timestamp},
    )
    assert root.signed.version == 2
    assert set(root.signatures) == {s.public_key.keyid for s in old[:2] + new}
    assert set(root.signed.roles["root"].keyids) == {s.public_key.keyid for s in new}
    assert root.signed.roles["root"].threshold == 2
    assert root.signed.roles["timestamp"].keyids == [timestamp.keyid]
    assert root.signed.roles["snapshot"] == previous.signed.roles["snapshot"]
    previous.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    assert previous.signed.version == 1


def test_rotated_root_that_keeps_its_root_keys_is_signed_by_the_old_ones_only() -> None:
    old, previous = _root(2, 2)
    root = rotated_root(previous, old, now=NOW, online={"snapshot": _signer().public_key})
    assert set(root.signatures) == {s.public_key.keyid for s in old}
    assert root.signed.roles["root"] == previous.signed.roles["root"]
    previous.signed.verify_delegate("root", root.signed_bytes, root.signatures)


def test_lifetimes_are_what_the_roles_expire_by() -> None:
    lifetimes = replace(LIFE, timestamp=timedelta(hours=2))
    repo = Repo()
    repo.entries.append(_entry("acme.hello", "1.0.0"))
    repo.step(lifetimes=lifetimes, now=NOW + timedelta(seconds=1, microseconds=5))
    assert _timestamp(repo).expires == NOW + timedelta(seconds=1, hours=2)  # whole seconds
    assert repo.published.namespaces["ns.acme"].signed.expires == NOW + timedelta(
        seconds=1, days=30
    )
