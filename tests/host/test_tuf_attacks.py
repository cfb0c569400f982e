"""The attacks TUF defends against, each made on an in-memory registry (:mod:`_tuf_simulator`)
and met by the host's real TUF client: every one is refused with the :class:`SignatureError`
part that names it, and what the host trusted is left as it was. python-tuf persists each role
only once it verified, so where a legitimately newer role was accepted before the failing one,
the test says exactly which files changed and that they hold what the registry signed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import TargetFile

from plugport.errors import SignatureError
from plugport.host.tuf_client import CONFIG
from plugport.registry.tuf.keys import signer_for
from plugport.registry.tuf.rules import DEFAULT_LIFETIMES, Lifetimes
from tests.host._tuf_simulator import TufHost, TufSimulator, changed, expired, new_signer

HELLO = ("acme.hello", "1.0.0")
WANTED = [HELLO]
_PAST = timedelta(minutes=-1)


@pytest.fixture
def sim() -> TufSimulator:
    sim = TufSimulator()
    sim.add(*HELLO)
    sim.publish()
    return sim


@pytest.fixture
def host(sim: TufSimulator, tmp_path: Path) -> TufHost:
    """A host that trusts the registry's metadata after its empty start and acme.hello 1.0.0:
    root 1, timestamp, snapshot and targets 2, ns.acme 1."""
    host = TufHost(sim, tmp_path / "home")
    assert host.listing(WANTED).find(*HELLO) is not None
    return host


def _refused(host: TufHost, part: str, fragment: str) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        host.listing(WANTED)
    assert caught.value.part == part
    assert fragment in str(caught.value)
    return caught.value


def _release(sim: TufSimulator, version: str) -> None:
    """The registry publishes another acme.hello version: new namespace role, snapshot and
    timestamp (targets unchanged)."""
    sim.add(HELLO[0], version)
    sim.publish()


def _meta(*roles: str) -> set[str]:
    return {f"tuf/{role}.json" for role in roles}


def _holds_served(host: TufHost, sim: TufSimulator, **served: str) -> None:
    """The host's copy of each role is the file the registry served under that name."""
    for role, name in served.items():
        assert (host.directory / f"{role}.json").read_bytes() == sim.files[name], role


# --- arbitrary package -----------------------------------------------------------------------


def test_an_archive_other_than_its_target_is_refused(sim: TufSimulator, host: TufHost) -> None:
    """The registry (or whoever answers for it) sends other bytes of the same length: the
    download is checked against the target's sha256 and length before it is kept."""
    entry = host.listing(WANTED).find(*HELLO)
    assert entry is not None
    good = sim.archives[HELLO]
    sim.archives[HELLO] = bytes(reversed(good))
    before = host.trusted()
    with host.client() as client:
        with pytest.raises(SignatureError) as caught:
            client.download(
                *HELLO,
                expected_sha256=entry.sha256,
                expected_length=entry.length,
                max_bytes=1 << 20,
            )
        assert caught.value.part == "archive"
        assert "the downloaded archive's sha256 is" in str(caught.value)
        assert host.trusted() == before  # no archive cached, no metadata changed

        sim.archives[HELLO] = good
        kept = client.download(
            *HELLO, expected_sha256=entry.sha256, expected_length=entry.length, max_bytes=1 << 20
        )
    assert kept.read_bytes() == good


def test_a_namespace_role_signed_by_a_key_not_delegated_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    _release(sim, "1.1.0")

    def evil(targets: dict[str, TargetFile]) -> None:
        for target in targets.values():
            target.hashes = {"sha256": "0" * 64}

    sim.files["2.ns.acme.json"] = sim.namespace_role(
        "acme", edit=evil, version=2, signer=new_signer()
    )
    before = host.trusted()
    _refused(host, "signature", "ns.acme was signed by 0/1 keys")
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot")
    _holds_served(host, sim, timestamp="timestamp.json", snapshot="3.snapshot.json")
    assert host.version("ns.acme") == 1


# --- rollback ------------------------------------------------------------------------------


def test_an_older_timestamp_is_refused(sim: TufSimulator, host: TufHost) -> None:
    _release(sim, "1.1.0")
    host.listing(WANTED)
    sim.files["timestamp.json"] = sim.files["2.timestamp.json"]
    before = host.trusted()
    _refused(host, "rollback", "New timestamp version 2 must be >= 3")
    assert host.trusted() == before


def test_a_timestamp_naming_an_older_snapshot_is_refused(sim: TufSimulator, host: TufHost) -> None:
    """Even signed by the timestamp key (a compromised one)."""
    _release(sim, "1.1.0")
    host.listing(WANTED)
    sim.files["timestamp.json"] = sim.timestamp(snapshot=sim.files["2.snapshot.json"])
    before = host.trusted()
    _refused(host, "rollback", "New snapshot version must be >= 3, got version 2")
    assert host.trusted() == before


def test_older_targets_served_under_the_new_name_are_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    sim.add("beta.tool", "1.0.0")  # a new namespace: targets delegate to it (targets 3)
    sim.publish()
    host.listing(WANTED)
    sim.add("gamma.tool", "1.0.0")  # targets 4
    sim.publish()
    sim.files["4.targets.json"] = sim.files["2.targets.json"]
    before = host.trusted()
    _refused(host, "rollback", "Expected targets v4, got v2")
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot")
    _holds_served(host, sim, timestamp="timestamp.json", snapshot="4.snapshot.json")
    assert host.version("targets") == 3


def test_an_older_namespace_role_served_under_the_new_name_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    _release(sim, "1.1.0")
    host.listing(WANTED)
    _release(sim, "1.2.0")
    sim.files["3.ns.acme.json"] = sim.files["1.ns.acme.json"]
    before = host.trusted()
    _refused(host, "rollback", "Expected ns.acme v3, got v1")
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot")
    _holds_served(host, sim, timestamp="timestamp.json", snapshot="4.snapshot.json")
    assert host.version("ns.acme") == 2


def test_a_snapshot_listing_an_older_namespace_role_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    """Even signed by the snapshot key (a compromised one)."""
    _release(sim, "1.1.0")
    host.listing(WANTED)
    snapshot = sim.snapshot(meta={"ns.acme.json": 1})
    sim.files["4.snapshot.json"] = snapshot
    sim.files["timestamp.json"] = sim.timestamp(snapshot=snapshot)
    before = host.trusted()
    _refused(host, "rollback", "ns.acme.json version")
    assert changed(before, host.trusted()) == _meta("timestamp")
    _holds_served(host, sim, timestamp="timestamp.json")


# --- freeze --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetimes", "name", "fragment", "accepted"),
    [
        (replace(DEFAULT_LIFETIMES, timestamp=_PAST), "acme.new", "timestamp.json is expired", ()),
        (
            replace(DEFAULT_LIFETIMES, snapshot=_PAST),
            "acme.new",
            "snapshot.json is expired",
            ("timestamp",),
        ),
        (
            replace(DEFAULT_LIFETIMES, targets=_PAST),
            "beta.new",  # a new namespace: targets change
            "New targets is expired",
            ("timestamp", "snapshot"),
        ),
        (
            replace(DEFAULT_LIFETIMES, namespace=_PAST),
            "acme.new",
            "New ns.acme is expired",
            ("timestamp", "snapshot"),
        ),
    ],
    ids=["timestamp", "snapshot", "targets", "namespace"],
)
def test_expired_metadata_is_refused(
    sim: TufSimulator,
    host: TufHost,
    *,
    lifetimes: Lifetimes,
    name: str,
    fragment: str,
    accepted: tuple[str, ...],
) -> None:
    """A registry frozen in the past (or an attacker replaying it) serves metadata whose
    expiry has passed, each role in turn."""
    sim.add(name, "1.0.0")
    sim.publish(lifetimes=lifetimes)
    before = host.trusted()
    _refused(host, "expired", fragment)
    assert changed(before, host.trusted()) == _meta(*accepted)
    for role in accepted:
        assert host.version(role) == 3


# --- mix and match -------------------------------------------------------------------------


def test_a_namespace_role_from_another_snapshot_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    _release(sim, "1.1.0")  # snapshot 3 lists ns.acme 2
    _release(sim, "1.2.0")  # snapshot 4 lists ns.acme 3
    sim.files["timestamp.json"] = sim.files["3.timestamp.json"]
    sim.files["2.ns.acme.json"] = sim.files["3.ns.acme.json"]
    before = host.trusted()
    _refused(host, "rollback", "Expected ns.acme v2, got v3")
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot")
    _holds_served(host, sim, timestamp="3.timestamp.json", snapshot="3.snapshot.json")


def test_a_snapshot_that_leaves_out_a_namespace_role_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    """Even signed by the snapshot key: the host still trusts ns.acme."""
    snapshot = sim.snapshot(meta={"ns.acme.json": None})
    sim.files["3.snapshot.json"] = snapshot
    sim.files["timestamp.json"] = sim.timestamp(snapshot=snapshot)
    before = host.trusted()
    _refused(host, "metadata", "New snapshot is missing info for 'ns.acme.json'")
    assert changed(before, host.trusted()) == _meta("timestamp")


# --- fast forward --------------------------------------------------------------------------


def test_a_fast_forwarded_timestamp_is_recovered_from_by_rotating_its_key(
    sim: TufSimulator, host: TufHost
) -> None:
    """The timestamp key leaks; the attacker signs version 10**6. The host accepts it (it is
    signed by the key root names) and then refuses the registry's real timestamps as
    rollbacks, until root replaces the timestamp key: the host then drops the timestamp it
    can no longer verify and trusts the registry's again (TUF spec 5.3.11)."""
    sim.files["timestamp.json"] = sim.timestamp(version=10**6)
    host.listing(WANTED)
    assert host.version("timestamp") == 10**6

    _release(sim, "1.1.0")  # the registry's timestamp 3
    before = host.trusted()
    _refused(host, "rollback", "New timestamp version 3 must be >= 1000000")
    assert host.trusted() == before

    sim.replace_online_key("timestamp")  # root 2; timestamp 4 under the new key
    before = host.trusted()
    assert host.listing(WANTED).find(*HELLO) is not None
    assert host.version("timestamp") == 4
    assert host.version("root") == 2
    assert changed(before, host.trusted()) == _meta(
        "root", "root_history/2.root", "timestamp", "snapshot", "ns.acme"
    )


# --- endless data --------------------------------------------------------------------------


def test_a_timestamp_over_the_cap_is_refused(sim: TufSimulator, host: TufHost) -> None:
    sim.files["timestamp.json"] = sim.timestamp() + b" " * CONFIG.timestamp_max_length
    before = host.trusted()
    _refused(host, "length", f"maximum allowed length of {CONFIG.timestamp_max_length}")
    assert host.trusted() == before


def test_a_snapshot_longer_than_the_timestamp_says_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    _release(sim, "1.1.0")
    declared = len(sim.files["3.snapshot.json"])
    sim.files["3.snapshot.json"] += b" " * (1 << 20)
    before = host.trusted()
    _refused(host, "length", f"maximum allowed length of {declared}")
    assert changed(before, host.trusted()) == _meta("timestamp")


# --- threshold ------------------------------------------------------------------------------


@pytest.fixture
def two_of_two(tmp_path: Path) -> tuple[TufSimulator, TufHost]:
    sim = TufSimulator(root_keys=2, threshold=2)
    sim.add(*HELLO)
    sim.publish()
    host = TufHost(sim, tmp_path / "home")
    host.listing(WANTED)
    return sim, host


def test_a_root_signed_by_fewer_than_the_threshold_is_refused(
    two_of_two: tuple[TufSimulator, TufHost],
) -> None:
    sim, host = two_of_two
    online = {"timestamp": new_signer().public_key}
    sim.files["2.root.json"] = sim.root(online=online, signers=sim.root_signers[:1])
    before = host.trusted()
    _refused(host, "signature", "root was signed by 1/2 keys")
    assert host.trusted() == before

    sim.replace_online_key("timestamp")  # the same change signed by both keys: accepted
    host.listing(WANTED)
    assert host.version("root") == 2


def test_a_root_not_signed_by_its_own_new_keys_is_refused(
    two_of_two: tuple[TufSimulator, TufHost],
) -> None:
    sim, host = two_of_two
    new_keys = [new_signer(), new_signer()]
    sim.files["2.root.json"] = sim.root(root_keys=new_keys, threshold=2, signers=sim.root_signers)
    before = host.trusted()
    _refused(host, "signature", "root was signed by 0/2 keys")
    assert host.trusted() == before

    sim.rotate_root(new_root_signers=new_keys, threshold=2)  # old and new sign: accepted
    host.listing(WANTED)
    assert host.version("root") == 2


# --- key compromise -----------------------------------------------------------------------


def test_a_leaked_timestamp_key_is_refused_once_rotated(sim: TufSimulator, host: TufHost) -> None:
    leaked = sim.replace_online_key("timestamp")  # root 2, timestamp 3
    sim.files["timestamp.json"] = sim.timestamp(version=10, signer=leaked)
    before = host.trusted()
    _refused(host, "signature", "timestamp was signed by 0/1 keys")
    assert changed(before, host.trusted()) == _meta("root", "root_history/2.root")
    _holds_served(host, sim, root="2.root.json")


def test_leaked_targets_key_is_refused_once_rotated(sim: TufSimulator, host: TufHost) -> None:
    leaked = sim.replace_online_key("targets")  # root 2, targets/snapshot/timestamp 3
    assert sim.published.targets is not None
    sim.files["3.targets.json"] = sim.sign(sim.published.targets.signed, leaked)
    before = host.trusted()
    _refused(host, "signature", "targets was signed by 0/1 keys")
    assert changed(before, host.trusted()) == _meta(
        "root", "root_history/2.root", "timestamp", "snapshot"
    )
    assert host.version("targets") == 2


def test_a_revoked_namespace_key_is_refused(sim: TufSimulator, host: TufHost) -> None:
    """After the namespace's key generation is raised (``plugport registry tuf rotate
    --namespace``), what its old key signs no longer verifies."""
    old = signer_for(sim.online.namespace_key("acme", 1))
    sim.generations["acme"] = 2
    assert {w.role for w in sim.publish()} == {"ns.acme", "targets", "snapshot", "timestamp"}
    sim.files["2.ns.acme.json"] = sim.namespace_role("acme", version=2, signer=old)
    before = host.trusted()
    _refused(host, "signature", "ns.acme was signed by 0/1 keys")
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot", "targets")
    assert host.version("ns.acme") == 1


# --- root rotation ------------------------------------------------------------------------


def test_a_root_rotation_that_skips_a_version_is_refused(sim: TufSimulator, host: TufHost) -> None:
    sim.rotate_root(online={"timestamp": new_signer().public_key})
    third = sim.rotate_root(online={"timestamp": new_signer().public_key})
    sim.files["2.root.json"] = sim.files["3.root.json"]
    before = host.trusted()
    _refused(host, "rollback", "Expected root version 2 instead got version 3")
    assert host.trusted() == before
    assert third.signed.version == 3


# --- bad input ----------------------------------------------------------------------------


def _no_custom(target: TargetFile) -> None:
    del target.unrecognized_fields["custom"]


def _facts(**facts: object) -> Callable[[TargetFile], None]:
    def edit(target: TargetFile) -> None:
        target.unrecognized_fields["custom"]["plugport"].update(facts)

    return edit


def _sha512_only(target: TargetFile) -> None:
    target.hashes = {"sha512": "0" * 128}


@pytest.mark.parametrize(
    "edit",
    [
        _no_custom,
        _facts(key_id="not a key id"),
        _facts(key_id="AB" * 32),
        _facts(yanked="no"),
        _facts(signed_by="someone"),
        _sha512_only,
    ],
    ids=["no custom", "key_id", "key_id upper case", "yanked", "unknown fact", "no sha256"],
)
def test_a_target_without_sound_plugport_facts_is_refused(
    sim: TufSimulator, host: TufHost, edit: Callable[[TargetFile], None]
) -> None:
    """Signed by the namespace's own key, but it does not say which publisher key signed the
    archive (or its sha256): the host cannot check the archive, so it refuses the target."""

    def edited(targets: dict[str, TargetFile]) -> None:
        for target in targets.values():
            edit(target)

    role = sim.namespace_role("acme", edit=edited)
    snapshot = sim.snapshot(meta={"ns.acme.json": 2})
    sim.files.update(
        {
            "2.ns.acme.json": role,
            "3.snapshot.json": snapshot,
            "timestamp.json": sim.timestamp(snapshot=snapshot),
        }
    )
    before = host.trusted()
    _refused(host, "target", "does not say which publisher key signed it, or has no sha256")
    # the metadata is genuine, so python-tuf keeps it; nothing else was written
    assert changed(before, host.trusted()) == _meta("timestamp", "snapshot", "ns.acme")
    _holds_served(host, sim, snapshot="3.snapshot.json", **{"ns.acme": "2.ns.acme.json"})


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (lambda sim: b"<html>not json</html>", "Failed to deserialize"),
        (lambda sim: b'{"signed": {"_type": "timestamp"}, "signatures": []}', "Failed to"),
        (lambda sim: sim.files["2.snapshot.json"], "Expected 'timestamp', got 'snapshot'"),
    ],
    ids=["not json", "not metadata", "another role"],
)
def test_a_timestamp_that_is_not_one_is_refused(
    sim: TufSimulator, host: TufHost, document: Callable[[TufSimulator], bytes], fragment: str
) -> None:
    sim.files["timestamp.json"] = document(sim)
    before = host.trusted()
    _refused(host, "metadata", fragment)
    assert host.trusted() == before


def test_a_snapshot_other_than_the_timestamp_describes_is_refused(
    sim: TufSimulator, host: TufHost
) -> None:
    """Same version, signed by the snapshot key, but not the bytes the timestamp hashed."""
    _release(sim, "1.1.0")
    sim.files["3.snapshot.json"] = sim.snapshot(meta={"ns.acme.json": 1}, version=3)
    before = host.trusted()
    _refused(host, "hash", "does not match expected hash")
    assert changed(before, host.trusted()) == _meta("timestamp")


# --- offline ------------------------------------------------------------------------------


def test_offline_an_unexpired_timestamp_answers_with_no_request(
    sim: TufSimulator, host: TufHost
) -> None:
    before = host.trusted()
    sim.requests.clear()
    found = host.listing(WANTED, offline=True)
    assert found.find(*HELLO) == sim.entries[HELLO]
    assert sim.requests == []
    assert host.trusted() == before


def test_offline_an_expired_timestamp_refuses(sim: TufSimulator, host: TufHost) -> None:
    """Time passing, without waiting for it: the host's trusted timestamp replaced by the
    same statement (version, snapshot) signed by the registry's timestamp key, its expiry
    past. Offline nothing newer can be fetched, so the host refuses, saying why."""
    trusted = host.directory / "timestamp.json"
    trusted.write_bytes(sim.timestamp(version=host.version("timestamp"), expires=expired()))
    before = host.trusted()
    sim.requests.clear()
    with pytest.raises(SignatureError) as caught:
        host.listing(WANTED, offline=True)
    assert caught.value.part == "expired"
    assert "the TUF timestamp this host trusts (version 2) expired at" in str(caught.value)
    assert sim.requests == []
    assert host.trusted() == before
