"""``plugport registry tuf init / rotate / status`` as an operator types them, against a
running registry node: every role's rotation is followed by a host's TUF client (root N ->
N+1, new keys accepted), and bad input is refused with a message naming the option or file
and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from plugport.host.client import RegistryClient
from plugport.host.tuf_client import listing, metadata_dir, trusted_roles
from plugport.registry.db import make_engine
from plugport.registry.migrate import upgrade
from tests.conftest import RunCli
from tests.host._plugins import publish, write
from tests.registry.conftest import running
from tests.registry.test_publish import Publisher


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_init_rotate_every_role_and_status(
    run_cli: RunCli, sqlite: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, url = sqlite
    data, root_keys = tmp_path / "data", tmp_path / "offline" / "root"
    where = ["--data-dir", str(data), "--database-url", url]
    done = run_cli(
        "registry", "tuf", "init", "--root-key-dir", str(root_keys), "--root-keys", "3",
        "--threshold", "2", *where,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in root_keys.iterdir()) == ["root-1.key", "root-2.key", "root-3.key"]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in root_keys.iterdir())
    assert (data / "tuf-online-keys.json").stat().st_mode & 0o777 == 0o600
    shipped = (data / "tuf-root.json").read_bytes()
    home = tmp_path / "home"
    with running(engine, data) as registry:
        publisher = Publisher(registry, tmp_path / "scratch")
        publish(registry, publisher, write(tmp_path / "src", "acme.hello", "1.0.0"), tmp_path / "d")
        client = RegistryClient(registry.url, cache_dir=tmp_path / "cache")
        directory = metadata_dir(home, registry.url)

        def refresh() -> dict[str, tuple[int, str]]:
            found = listing(client, directory, [("acme.hello", "1.0.0")], bootstrap=shipped)
            assert found.find("acme.hello", "1.0.0") is not None
            return dict(trusted_roles(directory).roles)

        assert refresh()["root"][0] == 1
        new_root_keys = tmp_path / "offline" / "root-2"
        rotations = [
            (["--role", "timestamp", "--root-key-dir", str(root_keys)], 2),
            (["--role", "snapshot", "--root-key-dir", str(root_keys)], 3),
            (["--role", "targets", "--root-key-dir", str(root_keys)], 4),
            (
                [
                    "--role",
                    "root",
                    "--root-key-dir",
                    str(root_keys),
                    "--new-root-key-dir",
                    str(new_root_keys),
                    "--root-keys",
                    "2",
                    "--threshold",
                    "2",
                ],
                5,
            ),
            (["--role", "namespaces"], 5),
            (["--namespace", "acme"], 5),
        ]
        for args, root_version in rotations:
            done = run_cli("registry", "tuf", "rotate", *args, *where)
            assert done.exit_code == 0, (args, done.output)
            assert refresh()["root"][0] == root_version, args
        # the old root keys signed root 4; root 5's keys are the new ones only
        refused = run_cli(
            "registry", "tuf", "rotate", "--role", "timestamp", "--root-key-dir", str(root_keys),
            *where,
        )  # fmt: skip
        assert refused.exit_code == 1
        assert "root version 5 needs 2 of its own 2 keys" in refused.output
        assert refresh()["root"][0] == 5
        client.close()
    status = run_cli("registry", "tuf", "status", *where)
    assert status.exit_code == 0, status.output
    assert "root version 5, threshold 2" in status.output
    assert "namespaces 1" in status.output


def test_bad_input_is_refused_and_nothing_is_written(
    run_cli: RunCli, sqlite: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, url = sqlite
    data, root_keys = tmp_path / "data", tmp_path / "root"
    where = ["--data-dir", str(data), "--database-url", url]
    too_many = run_cli(
        "registry", "tuf", "init", "--root-key-dir", str(root_keys), "--threshold", "2", *where
    )
    assert too_many.exit_code == 1
    assert "--threshold: 2 is more than the 1 root key(s) made" in too_many.output
    assert not (data / "tuf-online-keys.json").exists()
    assert not root_keys.exists() or not any(root_keys.iterdir())
    absent = run_cli("registry", "tuf", "rotate", "--role", "timestamp", *where)
    assert absent.exit_code == 1
    assert "no registry database at" in absent.output  # the refused init created none
    upgrade(engine)  # a registry that has served, without TUF
    not_yet = run_cli("registry", "tuf", "rotate", "--role", "timestamp", *where)
    assert not_yet.exit_code == 1
    assert "publishes no TUF metadata" in not_yet.output
    assert (
        run_cli("registry", "tuf", "init", "--root-key-dir", str(root_keys), *where).exit_code == 0
    )
    root_before = _tree(root_keys)
    keys_before = (data / "tuf-online-keys.json").read_bytes()
    again = run_cli("registry", "tuf", "init", "--root-key-dir", str(tmp_path / "r2"), *where)
    assert again.exit_code == 1
    assert "exists already" in again.output
    both = run_cli("registry", "tuf", "rotate", "--role", "root", "--namespace", "acme", *where)
    assert both.exit_code == 1
    assert "give one of --role or --namespace" in both.output
    unknown = run_cli("registry", "tuf", "rotate", "--role", "mirror", *where)
    assert "--role: 'mirror' is not one of root, timestamp" in unknown.output
    no_dir = run_cli(
        "registry", "tuf", "rotate", "--role", "root", "--root-key-dir", str(root_keys), *where
    )
    assert no_dir.exit_code == 1
    assert "--role root: give --new-root-key-dir" in no_dir.output
    taken = run_cli(
        "registry", "tuf", "rotate", "--role", "root", "--root-key-dir", str(root_keys),
        "--new-root-key-dir", str(root_keys), *where,
    )  # fmt: skip
    assert taken.exit_code == 1
    assert "already holds root keys" in taken.output
    assert (data / "tuf-online-keys.json").read_bytes() == keys_before
    assert not (data / "tuf-online-keys.json.rotating").exists()
    assert _tree(root_keys) == root_before  # a refusal never removes a key it did not write
    into_keys = run_cli("registry", "tuf", "init", "--root-key-dir", str(root_keys), *where)
    assert into_keys.exit_code == 1
    assert _tree(root_keys) == root_before
    status = run_cli("registry", "tuf", "status", *where)
    assert "root version 1," in status.output
    assert json.loads((data / "tuf-root.json").read_bytes())["signed"]["version"] == 1


def test_status_and_rotate_of_a_registry_that_is_not_there_create_nothing(
    run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "typo"
    for args in (["status"], ["rotate", "--role", "timestamp"]):
        result = run_cli("registry", "tuf", *args, "--data-dir", str(data))
        assert result.exit_code == 1, result.output
        assert f"--data-dir: no registry database at {data / 'registry.sqlite'}" in result.output
        assert not data.exists()  # no empty, migrated database left behind
