"""One version per PEP 440 canonical form: ``1.0``, ``1.0.0`` and ``1.0.0.0`` are one version,
whatever path creates it (the API, the CLI over it, a direct insert), local versions are not
published, and migration 0009 reports duplicates that exist already instead of hiding them."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from plugport.errors import ConflictError
from plugport.registry.migrate import current_revision, head_revision, upgrade
from plugport.registry.models import Namespace, Plugin, PluginVersion
from tests.conftest import RunCli
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher, stored_blobs


def versioned(version: str) -> Callable[[Path], None]:
    """An edit that gives the plugin in ``source`` this version."""

    def edit(source: Path) -> None:
        manifest = source / "plugport.toml"
        text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', manifest.read_text())
        manifest.write_text(text)

    return edit


def blob_files(tmp_path: Path) -> list[Path]:
    return stored_blobs(tmp_path / "data" / "blobs")


@pytest.mark.parametrize("spelling", ["1.0", "1.0.0.0", "1", "v1.0.0.0", "1.0.0"])
def test_another_spelling_of_a_version_is_409_naming_the_existing_one(
    registry: Registry, tmp_path: Path, spelling: str
) -> None:
    publisher = Publisher(registry, tmp_path)
    first = publisher.upload(publisher.build(edit=versioned("1.0.0")))
    assert first.status_code == 201, first.text
    before = (registry.count("plugin_versions"), blob_files(tmp_path))
    audits = registry.count("audit_records")

    again = publisher.upload(publisher.build(edit=versioned(spelling)))
    assert again.status_code == 409, again.text
    error = error_of(again)
    assert error["code"] == "conflict"
    assert error["details"]["existing"] == "1.0.0"
    assert error["details"]["kind"] == "version"
    assert "versions are immutable" in error["message"]
    if spelling != "1.0.0":
        assert "is the same version as 1.0.0" in error["message"]
    assert (registry.count("plugin_versions"), blob_files(tmp_path)) == before
    assert registry.count("audit_records") == audits


def test_a_higher_version_is_still_accepted(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    for version in ("1.0", "1.0.1", "1.0.1.1", "1.0.post1", "1.1rc1"):
        response = publisher.upload(publisher.build(edit=versioned(version)))
        assert response.status_code == 201, (version, response.text)
    with registry.engine.connect() as connection:
        stored = connection.execute(
            select(PluginVersion.version, PluginVersion.canonical_version).order_by(
                PluginVersion.id
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("1.0", "1"),
        ("1.0.1", "1.0.1"),
        ("1.0.1.1", "1.0.1.1"),
        ("1.0.post1", "1.post1"),
        ("1.1rc1", "1.1rc1"),
    ]


def test_a_local_version_is_refused_naming_the_field(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    response = publisher.upload(publisher.build(edit=versioned("1.0.0+local.7")))
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_plugin"
    assert error["details"]["problems"] == [
        {
            "path": "version",
            "message": "'1.0.0+local.7' has a local label ('+local.7'), which only builds that "
            "are never published may have; publish it as '1.0.0'",
        }
    ]
    assert registry.count("plugin_versions") == 0
    assert blob_files(tmp_path) == []


def test_the_cli_shows_the_conflict_and_exits_1(
    cli: RunCli, registry: Registry, tmp_path: Path
) -> None:
    assert cli("namespace", "create", "acme", "--owner", "ada").exit_code == 0
    assert cli("keygen", "--output", "keys/acme.key").exit_code == 0
    assert cli("namespace", "add-key", "acme", "keys/acme.key.pub").exit_code == 0
    assert cli("init", "acme.hello").exit_code == 0
    results = []
    for version in ("1.0.0", "1.0"):
        versioned(version)(tmp_path / "hello")
        assert cli("pack", "hello").exit_code == 0
        archive = f"acme.hello-{version}.plugport"
        assert cli("sign", archive, "--key", "keys/acme.key").exit_code == 0
        results.append(cli("publish", archive))
    assert results[0].exit_code == 0, results[0].output
    published = results[1]
    assert published.exit_code == 1
    assert "is the same version as 1.0.0" in published.output
    assert "(HTTP 409, conflict)" in published.output
    assert registry.count("plugin_versions") == 1


# --- below the API: the index itself --------------------------------------------------------------


def _plugin(engine: Engine) -> int:
    with engine.begin() as connection:
        ns = connection.execute(insert(Namespace).values(name="acme")).inserted_primary_key
        assert ns is not None
        plugin = connection.execute(
            insert(Plugin).values(name="acme.hello", namespace_id=ns[0])
        ).inserted_primary_key
        assert plugin is not None
        return int(plugin[0])


def _version_row(plugin_id: int, version: str) -> dict[str, object]:
    return {
        "plugin_id": plugin_id,
        "version": version,
        "status": "published",
        "sha256": "0" * 64,
        "length": 1,
        "key_id": "k" * 64,
        "manifest": {},
        "scan": {},
    }


def test_any_insert_gets_the_canonical_form_and_the_index_refuses_a_second_spelling(
    engine: Engine,
) -> None:
    """A path that forgets the check (an import, a script) still cannot create a duplicate:
    the column fills itself in and the unique index refuses."""
    upgrade(engine)
    plugin_id = _plugin(engine)
    with engine.begin() as connection:
        connection.execute(insert(PluginVersion), [_version_row(plugin_id, "2.0.0")])
    for spelling in ("2.0", "2", "2.0.0.0"):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(PluginVersion), [_version_row(plugin_id, spelling)])
    with engine.connect() as connection:
        rows = connection.execute(
            select(PluginVersion.version, PluginVersion.canonical_version)
        ).all()
    assert [tuple(r) for r in rows] == [("2.0.0", "2")]


# --- migration 0009 -------------------------------------------------------------------------------


def _old_rows(engine: Engine, versions: list[str]) -> None:
    """Rows as a registry before 0009 stored them (no canonical column yet)."""
    upgrade(engine, "0008")
    plugin_id = _plugin(engine)
    with engine.begin() as connection:
        for number, version in enumerate(versions):
            connection.execute(
                text(
                    "INSERT INTO plugin_versions (plugin_id, version, status, sha256, length, "
                    "key_id, manifest, scan, created_at) VALUES (:p, :v, 'published', :s, 1, "
                    "'k', '{}', '{}', :at)"
                ),
                {
                    "p": plugin_id,
                    "v": version,
                    "s": f"{number:064x}",
                    "at": datetime(2026, 1, 1 + number, tzinfo=UTC),
                },
            )


def _stored(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, version FROM plugin_versions ORDER BY id"))
        return [(int(r[0]), str(r[1])) for r in rows]


def test_the_migration_fills_in_existing_versions(engine: Engine) -> None:
    _old_rows(engine, ["1.0.0", "1.0.1", "2.0rc1", "2.0"])
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT version, canonical_version FROM plugin_versions ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("1.0.0", "1"),
        ("1.0.1", "1.0.1"),
        ("2.0rc1", "2rc1"),
        ("2.0", "2"),
    ]
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("plugin_versions")}
    assert indexes["uq_plugin_versions_canonical"]["unique"]


def test_the_migration_reports_duplicates_and_changes_nothing(engine: Engine) -> None:
    _old_rows(engine, ["1.0.0", "1.0", "1.1.0", "1.0.0.0", "2.0.0+local", "2.0.0", "3.0"])
    before = _stored(engine)
    with pytest.raises(ConflictError) as raised:
        upgrade(engine)
    message = str(raised.value)
    assert "migration 0009 (one version per canonical form) changed nothing" in message
    lines = [line.strip() for line in message.splitlines() if line.startswith("  ")]
    assert len(lines) == 2
    assert lines[0].startswith("acme.hello: 1.0.0 (id ")
    assert ", 1.0 (id " in lines[0]
    assert ", 1.0.0.0 (id " in lines[0]
    assert "2.0.0+local (id " in lines[1]
    assert ", 2.0.0 (id " in lines[1]
    assert "1.1.0" not in message
    assert "3.0" not in message
    # Nothing changed: still at 0008, no column, every row kept.
    assert current_revision(engine) == "0008"
    columns = inspect(engine).get_columns("plugin_versions")
    assert "canonical_version" not in {c["name"] for c in columns}
    assert _stored(engine) == before

    # The operator keeps the first upload of each group; then the migration goes through.
    keep = {"1.0.0", "2.0.0+local"}
    gone = [i for i, v in before if v not in keep | {"1.1.0", "3.0"}]
    with engine.begin() as connection:
        for row_id in gone:
            connection.execute(text("DELETE FROM plugin_versions WHERE id = :i"), {"i": row_id})
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT version, canonical_version FROM plugin_versions ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("1.0.0", "1"),
        ("1.1.0", "1.1"),
        ("2.0.0+local", "2"),
        ("3.0", "3"),
    ]


def test_concurrent_spellings_publish_exactly_one(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    assert publisher.upload(publisher.build()).status_code == 201  # the plugin exists
    spellings = ("2", "2.0", "2.0.0", "2.0.0.0")
    archives = [publisher.build(edit=versioned(v)) for v in spellings]
    with ThreadPoolExecutor(len(archives)) as pool:
        responses = list(pool.map(publisher.upload, archives))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json()["version"] for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            assert error_of(response)["code"] == "conflict"
    with registry.engine.connect() as connection:
        rows = connection.execute(
            select(PluginVersion.version).where(PluginVersion.canonical_version == "2")
        ).all()
    assert [r[0] for r in rows] == [winner]
    # 0.1.0, the winner and the README they share: the losers left nothing
    assert len(blob_files(tmp_path)) == 3
