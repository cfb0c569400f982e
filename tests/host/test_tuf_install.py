"""Installing through TUF from a real registry (uvicorn on 127.0.0.1, SQLite and PostgreSQL):
the host verifies the registry's metadata with python-tuf's ngclient, from the operator's
root or, on first contact, the registry's root version 1; the v1 index stays a fallback the
operator can turn off, and a host that pinned a v1 key is not moved to TUF by the network."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from plugport.errors import TrustError
from plugport.host import PluginHost
from plugport.host.state import HostState
from plugport.host.tuf_client import metadata_dir, trusted_roles
from plugport.registry.models import utcnow
from plugport.registry.services import tuf_repo
from plugport.registry.tuf.keys import load_root_signers, write_online_keys
from plugport.registry.tuf.rules import rotated_root
from tests.conftest import RunCli
from tests.host._plugins import publish, write
from tests.registry._tuf import TufKeys, enable_tuf
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher


def _install(home: Path, registry: Registry, name: str, **options: object) -> None:
    async def run() -> None:
        async with PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=home,
            registries=[registry.url],
            **options,  # type: ignore[arg-type]
        ) as host:
            await host.install(name)

    asyncio.run(run())


def _tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` by relative path -> sha256 of its bytes."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _audit(home: Path, action: str) -> list[dict[str, object]]:
    state = HostState(home / "host.sqlite")
    return [
        {"subject": a.subject, "outcome": a.outcome, **a.detail}
        for a in state.audit_trail(limit=100)
        if a.action == action
    ]


_PUBLISHERS: dict[Path, Publisher] = {}


def _published(registry: Registry, tmp_path: Path, name: str, version: str) -> None:
    """Publish through one publisher per test (its namespace made once, whichever node of
    the registry, restarted or not, it publishes through)."""
    publisher = _PUBLISHERS.get(tmp_path)
    if publisher is None:
        publisher = _PUBLISHERS[tmp_path] = Publisher(registry, tmp_path / "scratch")
    publisher.registry = registry
    publish(registry, publisher, write(tmp_path / "src", name, version), tmp_path / "dist")


def test_install_through_tuf_from_the_configured_root(
    engine: Engine, tmp_path: Path, run_cli: RunCli
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        home = tmp_path / "home"
        _install(home, registry, "acme.hello", tuf_roots={registry.url: tuf.root})
        assert (home / "plugins" / "acme.hello").is_dir()
        roles = trusted_roles(metadata_dir(home, registry.url)).roles
        assert set(roles) == {"root", "timestamp", "snapshot", "targets"}
        assert _audit(home, "trust-registry") == [
            {"subject": registry.url, "outcome": "ok", "how": "TUF root, configured"}
        ]
        assert HostState(home / "host.sqlite").registry(registry.url) is None  # no v1 pin
        shown = run_cli("trust", "status", "--home", str(home), "--registry", registry.url)
        assert shown.exit_code == 0, shown.output
        assert "TUF" in shown.output
        assert "timestamp v" in shown.output


def test_first_contact_trusts_root_1_and_later_versions_follow(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    enable_tuf(engine, data)
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        home = tmp_path / "home"
        _install(home, registry, "acme.hello")
        assert _audit(home, "trust-registry") == [
            {"subject": registry.url, "outcome": "ok", "how": "TUF root, first use"}
        ]
        before = trusted_roles(metadata_dir(home, registry.url)).roles
        _published(registry, tmp_path, "acme.other", "1.0.0")
        _install(home, registry, "acme.other")
        after = trusted_roles(metadata_dir(home, registry.url)).roles
        assert after["timestamp"][0] > before["timestamp"][0]
        assert after["snapshot"][0] > before["snapshot"][0]


def test_online_key_rotation_reaches_hosts(engine: Engine, tmp_path: Path) -> None:
    """The operator rotates the timestamp key (a new root, signed offline) and replaces the
    node's keys file: the running node signs with the new key from its next request, and
    hosts follow root 1 -> 2 and go on installing."""
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    home = tmp_path / "home"
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        _install(home, registry, "acme.hello", tuf_roots={registry.url: tuf.root})
        _published(registry, tmp_path, "acme.other", "1.0.0")
        _rotate_timestamp_key(engine, data, tuf)
        _install(home, registry, "acme.other", tuf_roots={registry.url: tuf.root})
    roles = trusted_roles(metadata_dir(home, registry.url)).roles
    assert roles["root"][0] == 2


def _rotate_timestamp_key(engine: Engine, data: Path, tuf: TufKeys) -> None:
    fresh = tuf.online.replaced("timestamp")
    with Session(engine) as session:
        current = tuf_repo.latest_root(session)
        assert current is not None
        signers = load_root_signers(data.parent / "root-keys")
        root = rotated_root(
            current, signers, now=utcnow(), online={"timestamp": fresh.public()["timestamp"]}
        )
        tuf_repo.store_root(session, root, fresh, now=utcnow())
        session.commit()
    write_online_keys(data / "tuf-online-keys.json", fresh)
    tuf.online = fresh


def test_a_node_with_the_old_keys_signs_nothing(engine: Engine, tmp_path: Path) -> None:
    """After a rotation, a node still holding the old keys file answers 503 naming the role
    (it would sign what no host accepts), and nothing is stored."""
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    old = (data / "tuf-online-keys.json").read_bytes()
    with running(engine, data) as registry:
        _rotate_timestamp_key(engine, data, tuf)
        (data / "tuf-online-keys.json").write_bytes(old)  # this node never got the new file
        with Session(engine) as session:
            stored = tuf_repo.status(session).versions
        with registry.client() as http:
            response = http.get("/tuf/timestamp.json")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "tuf_key_mismatch"
        assert response.json()["error"]["details"] == {"role": "timestamp"}
        with Session(engine) as session:
            assert tuf_repo.status(session).versions == stored


def test_a_pinned_v1_host_is_not_moved_to_tuf_by_the_network(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    home = tmp_path / "home"
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        _install(home, registry, "acme.hello")  # no TUF yet: v1 index, key pinned
        enable_tuf(engine, data)
        with running(engine, data) as node:  # a node that publishes TUF, serving the same URL
            registry.app.state.tuf_keys = node.app.state.tuf_keys
        _published(registry, tmp_path, "acme.other", "1.0.0")
        with registry.client() as http:
            assert http.get("/tuf/timestamp.json").status_code == 200
        _install(home, registry, "acme.other")
    assert not metadata_dir(home, registry.url).exists()
    assert HostState(home / "host.sqlite").registry(registry.url) is not None


def test_index_fallback_off_refuses_a_registry_without_tuf(engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    home = tmp_path / "home"
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        with pytest.raises(
            TrustError, match=r"serves no TUF metadata .*\(index_fallback = false\)"
        ):
            _install(home, registry, "acme.hello", index_fallback=False)
    assert not (home / "plugins" / "acme.hello").exists()
    assert HostState(home / "host.sqlite").registry(registry.url) is None


def test_policy_toml_names_the_root_and_the_cli_installs(
    engine: Engine, tmp_path: Path, run_cli: RunCli
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry-root.json").write_bytes(tuf.root)
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        (home / "policy.toml").write_text(
            f'[trust]\nindex_fallback = false\n[trust.tuf_roots]\n"{registry.url}" = '
            '"registry-root.json"\n'
        )
        done = run_cli(
            "install", "acme.hello", "--home", str(home), "--registry", registry.url, "--yes"
        )
        assert done.exit_code == 0, done.output
        assert _audit(home, "trust-registry")[0]["how"] == "TUF root, configured"
        shown = run_cli("trust", "status", "--home", str(home))
        assert "TUF" in shown.output
        assert "off (index_fallback = false)" in shown.output


def test_a_policy_naming_a_missing_root_file_is_refused(tmp_path: Path, run_cli: RunCli) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "policy.toml").write_text('[trust.tuf_roots]\n"http://127.0.0.1:9" = "gone.json"\n')
    done = run_cli("trust", "status", "--home", str(home))
    assert done.exit_code == 1
    assert "[trust.tuf_roots] 'http://127.0.0.1:9': cannot read" in done.output
    assert "gone.json" in done.output


def test_trust_status_refuses_a_registry_that_is_not_a_url(tmp_path: Path, run_cli: RunCli) -> None:
    done = run_cli("trust", "status", "--home", str(tmp_path / "home"), "--registry", "ftp://x")
    assert done.exit_code == 1
    assert "--registry: 'ftp://x' is not an http:// or https:// URL" in done.output
    assert not (tmp_path / "home").exists()


def test_tuf_endpoints_cache_headers_and_errors(engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(engine, data) as registry, registry.client() as http:
        missing = http.get("/tuf/timestamp.json")
        assert missing.status_code == 404
        assert "plugport registry tuf init" in missing.json()["error"]["message"]
    enable_tuf(engine, data)
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        with registry.client() as http:
            timestamp = http.get("/tuf/timestamp.json")
            assert timestamp.headers["cache-control"] == "no-cache"
            snapshot_version = timestamp.json()["signed"]["meta"]["snapshot.json"]["version"]
            snapshot = http.get(f"/tuf/{snapshot_version}.snapshot.json")
            assert snapshot.status_code == 200
            assert "immutable" in snapshot.headers["cache-control"]
            role = json.loads(snapshot.content)["signed"]["meta"]["ns.acme.json"]["version"]
            targets = http.get(f"/tuf/{role}.ns.acme.json").json()["signed"]["targets"]
            info = targets["acme.hello/acme.hello-1.0.0.plugport"]
            sha = info["hashes"]["sha256"]
            archive = http.get(f"/tuf/targets/acme.hello/{sha}.acme.hello-1.0.0.plugport")
            assert archive.status_code == 200
            assert hashlib.sha256(archive.content).hexdigest() == sha
            assert len(archive.content) == info["length"]
            wrong = http.get(f"/tuf/targets/acme.hello/{'0' * 64}.acme.hello-1.0.0.plugport")
            assert wrong.status_code == 404
            assert http.get("/tuf/999.snapshot.json").status_code == 404
            assert http.get("/tuf/..%2Froot.json").status_code == 404


def test_a_node_without_the_keys_file_refuses_to_start(engine: Engine, tmp_path: Path) -> None:
    from plugport.errors import InvalidInputError
    from plugport.registry.app import create_app
    from plugport.registry.settings import RegistrySettings

    data = tmp_path / "data"
    enable_tuf(engine, data)
    (data / "tuf-online-keys.json").unlink()
    with pytest.raises(InvalidInputError, match=r"no online keys file at .*--tuf-keys-file"):
        create_app(RegistrySettings(data_dir=data), engine=engine)


def test_a_revoked_publisher_key_takes_its_versions_out_of_the_tuf_targets(
    engine: Engine, tmp_path: Path
) -> None:
    """Versions signed by a key its publisher revoked leave the namespace's TUF role; an
    install through TUF then takes the newest version still offered, and a pin to a
    withdrawn one is refused, naming the key."""
    from plugport.errors import SignatureError
    from plugport.signing import generate_private_key, key_id, public_key_pem
    from tests.host._plugins import publish_signed_by

    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        _published(registry, tmp_path, "acme.hello", "1.0.0")
        publisher = _PUBLISHERS[tmp_path]
        leaked = generate_private_key()
        with registry.client(registry.admin) as admin:
            pem = public_key_pem(leaked.public_key())
            admin.post("/api/v1/namespaces/acme/keys", json={"public_key_pem": pem})
        publish_signed_by(
            registry, publisher, leaked, write(tmp_path / "src", "acme.hello", "2.0.0"), tmp_path
        )
        with registry.client(publisher.token) as owner:
            owner.delete(f"/api/v1/namespaces/acme/keys/{key_id(leaked.public_key())}")
        with registry.client() as http:
            timestamp = http.get("/tuf/timestamp.json").json()
            snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
            snapshot = http.get(f"/tuf/{snapshot_version}.snapshot.json").json()
            role = snapshot["signed"]["meta"]["ns.acme.json"]["version"]
            targets = http.get(f"/tuf/{role}.ns.acme.json").json()["signed"]["targets"]
        assert sorted(targets) == ["acme.hello/acme.hello-1.0.0.plugport"]
        home = tmp_path / "home"
        roots = {registry.url: tuf.root}
        with pytest.raises(SignatureError, match=r"revoked"):
            _install(home, registry, "acme.hello==2.0.0", tuf_roots=roots)
        assert not (home / "plugins" / "acme.hello").exists()
        _install(home, registry, "acme.hello", tuf_roots=roots)
        installed = {i.name: i.version for i in HostState(home / "host.sqlite").installations()}
        assert installed == {"acme.hello": "1.0.0"}
