"""``plugport registry tuf``: the operator's commands for the registry's TUF repository —
``init`` (root keys, online keys, root version 1), ``rotate`` (a role's keys, or one
namespace's key) and ``status``. Root keys are read only here, from a directory the operator
brings to the server for the command and takes away again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from plugport.cli._output import out, reporting_errors
from plugport.cli.registry import DatabaseUrl, DataDir, _settings
from plugport.errors import InvalidInputError

__all__ = ["register"]

KeysFile = Annotated[
    Path | None,
    typer.Option(
        "--tuf-keys-file", help="The online keys file every node shares (default in data dir)."
    ),
]
RootKeyDir = Annotated[
    Path,
    typer.Option("--root-key-dir", help="The offline root keys (root-N.key files)."),
]
ExportRoot = Annotated[
    Path | None,
    typer.Option(
        "--export-root", help="Where to write the newest root.json for hosts (default in data dir)."
    ),
]
ROLES = ("root", "timestamp", "snapshot", "targets", "namespaces")


@contextlib.contextmanager
def _database(settings: Any, *, create: bool = False) -> Iterator[Any]:
    """A migrated engine for the command, disposed of after. Only ``init`` may start a new
    SQLite registry: rotating or asking about one that is not there says so, and leaves no
    empty database behind."""
    from sqlalchemy.engine import make_url

    from plugport.registry.db import make_engine
    from plugport.registry.migrate import upgrade

    url = settings.sqlalchemy_url()
    parsed = make_url(url)
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not create and sqlite_file and not Path(sqlite_file).is_file():
        raise InvalidInputError(
            f"--data-dir: no registry database at {sqlite_file} (give the registry's "
            "--data-dir or --database-url)"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _removed_on_failure(*paths: Path) -> Iterator[None]:
    """Files a command writes before its database change: gone again if the change fails, so a
    refused command leaves nothing behind. Only those absent on entry: a file that was there
    (a root key in a directory named twice, say) is never the command's to remove."""
    fresh = [path for path in paths if not path.exists()]
    try:
        yield
    except BaseException:
        for path in fresh:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
        raise


def _export(session: Any, settings: Any, export_root: Path | None) -> Path:
    from plugport.registry.services import tuf_repo

    target = export_root or settings.data_dir / "tuf-root.json"
    target.write_bytes(tuf_repo.document(session, "root"))
    return target


def init(  # noqa: PLR0917 one parameter per command-line option
    root_key_dir: RootKeyDir,
    root_keys: Annotated[int, typer.Option("--root-keys", help="How many root keys to make.")] = 1,
    threshold: Annotated[
        int, typer.Option("--threshold", help="How many root keys must sign a root.")
    ] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    tuf_keys_file: KeysFile = None,
    export_root: ExportRoot = None,
) -> None:
    """Start publishing TUF metadata: root keys (offline, in --root-key-dir), online keys
    (--tuf-keys-file) and root version 1, written to --export-root for hosts to pin."""
    from sqlalchemy.orm import Session

    from plugport.registry.models import utcnow
    from plugport.registry.services import tuf_repo
    from plugport.registry.tuf import keys, rules

    with reporting_errors():
        settings = _settings(data_dir=data_dir, database_url=database_url)
        keys_path = tuf_keys_file or settings.tuf_keys_path()
        if keys_path.exists():
            raise InvalidInputError(
                f"--tuf-keys-file: {keys_path} exists already; this registry's TUF keys are "
                "never overwritten (rotate them with `plugport registry tuf rotate`)"
            )
        if threshold > root_keys:
            raise InvalidInputError(
                f"--threshold: {threshold} is more than the {root_keys} root key(s) made"
            )
        with _database(settings, create=True) as engine, Session(engine) as session:
            if tuf_repo.latest_root(session) is not None:
                raise InvalidInputError(
                    "this registry publishes TUF metadata already; use `plugport registry tuf "
                    "rotate` to change its keys"
                )
            online = keys.new_online_keys()
            written = [root_key_dir / f"root-{n}.key" for n in range(1, root_keys + 1)]
            with _removed_on_failure(keys_path, *written):
                signers = keys.write_root_keys(root_key_dir, root_keys)
                keys.write_online_keys(keys_path, online)
                now = utcnow()
                root = rules.new_root(signers, threshold, online.public(), now=now)
                tuf_repo.initialise(session, root, online, now=now)
                session.commit()
            exported = _export(session, settings, export_root)
    out.print(
        f"TUF root version 1 ({root_keys} root key(s), threshold {threshold}) stored; root keys "
        f"in {root_key_dir} (keep them offline), online keys in {keys_path} (every node), "
        f"root for hosts in {exported}"
    )


def rotate(  # noqa: PLR0917 one parameter per command-line option
    role: Annotated[
        str | None,
        typer.Option("--role", help="root, timestamp, snapshot, targets or namespaces."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Replace this namespace's key (no root keys needed)."),
    ] = None,
    root_key_dir: Annotated[
        Path | None,
        typer.Option("--root-key-dir", help="The current root keys (root-N.key files)."),
    ] = None,
    new_root_key_dir: Annotated[
        Path | None,
        typer.Option("--new-root-key-dir", help="--role root: an empty directory for new keys."),
    ] = None,
    root_keys: Annotated[
        int, typer.Option("--root-keys", help="--role root: how many new root keys.")
    ] = 1,
    threshold: Annotated[
        int | None, typer.Option("--threshold", help="--role root: the new threshold.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    tuf_keys_file: KeysFile = None,
    export_root: ExportRoot = None,
) -> None:
    """Replace a role's keys (a new root version signed by the current root keys) or one
    namespace's key; the online keys file is rewritten: give it to every node (each reads it
    again when it changes)."""
    from sqlalchemy.orm import Session

    from plugport.registry.models import utcnow
    from plugport.registry.services import tuf_repo
    from plugport.registry.tuf import keys

    with reporting_errors():
        if (role is None) == (namespace is None):
            raise InvalidInputError("give one of --role or --namespace")
        if role is not None and role not in ROLES:
            raise InvalidInputError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
        settings = _settings(data_dir=data_dir, database_url=database_url)
        keys_path = tuf_keys_file or settings.tuf_keys_path()
        with _database(settings) as engine, Session(engine) as session:
            current = tuf_repo.latest_root(session)
            if current is None:
                raise InvalidInputError(tuf_repo.NOT_ENABLED)
            online = keys.load_online_keys(keys_path)
            now = utcnow()
            if namespace is not None:
                generation = tuf_repo.replace_namespace_key(session, namespace, online, now=now)
                session.commit()
                out.print(f"namespace {namespace}: TUF key generation {generation}")
                return
            staged = keys_path.with_name(keys_path.name + ".rotating")
            if role == "namespaces":  # the seed is the targets role's business, not root's
                fresh = online.replaced("namespaces")
                with _removed_on_failure(staged):
                    keys.write_online_keys(staged, fresh)
                    tuf_repo.publish(session, fresh, now=now, force=True)
                    session.commit()
            else:
                _rotate_signed_by_root(
                    session,
                    str(role),
                    online,
                    staged,
                    root_key_dir=root_key_dir,
                    new_root_key_dir=new_root_key_dir,
                    root_keys=root_keys,
                    threshold=threshold,
                )
            staged.replace(keys_path)
            exported = _export(session, settings, export_root)
            newest = tuf_repo.latest_root(session)
            version = newest.signed.version if newest is not None else 0
    out.print(
        f"rotated {role}: root version {version} in {exported}; online keys in {keys_path} — "
        "give this file to every registry node (each reads it again when it changes)"
    )


def _rotate_signed_by_root(
    session: Any,
    role: str,
    online: Any,
    staged: Path,
    *,
    root_key_dir: Path | None,
    new_root_key_dir: Path | None,
    root_keys: int,
    threshold: int | None,
) -> None:
    """A new root version (signed by the current root keys) with new keys for ``role``;
    the new online keys go to ``staged`` and the change is committed."""
    from plugport.registry.models import utcnow
    from plugport.registry.services import tuf_repo
    from plugport.registry.tuf import keys, rules

    if root_key_dir is None:
        raise InvalidInputError(f"--role {role}: give --root-key-dir (root signs it)")
    current = tuf_repo.latest_root(session)
    if current is None:  # checked by the caller; the same transaction
        raise InvalidInputError(tuf_repo.NOT_ENABLED)
    signers = keys.load_root_signers(root_key_dir)
    fresh = online if role == "root" else online.replaced(role)
    changed = {} if role == "root" else {role: fresh.public()[role]}
    made: list[Path] = []
    if role == "root":
        if new_root_key_dir is None:
            raise InvalidInputError("--role root: give --new-root-key-dir")
        made = [new_root_key_dir / f"root-{n}.key" for n in range(1, root_keys + 1)]
    now = utcnow()
    with _removed_on_failure(staged, *made):
        new_signers = (
            keys.write_root_keys(new_root_key_dir, root_keys)
            if new_root_key_dir is not None and role == "root"
            else None
        )
        root = rules.rotated_root(
            current,
            signers,
            now=now,
            new_root_signers=new_signers,
            threshold=threshold,
            online=changed,
        )
        keys.write_online_keys(staged, fresh)
        tuf_repo.store_root(session, root, fresh, now=now)
        session.commit()


def status(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The TUF metadata's versions and expiry."""
    from sqlalchemy.orm import Session

    from plugport.registry.services import tuf_repo

    with reporting_errors():
        settings = _settings(data_dir=data_dir, database_url=database_url)
        with _database(settings) as engine, Session(engine) as session:
            found = tuf_repo.status(session)
    out.print(f"root version {found.root_version}, threshold {found.threshold}")
    for role, version in found.versions.items():
        out.print(
            f"  {role:<10} version {version:<6} expires {found.expires[role]:%Y-%m-%d %H:%M}Z"
        )
    out.print(f"  namespaces {found.namespaces}")


def register(group: typer.Typer) -> None:
    tuf = typer.Typer(help="The registry's TUF metadata: keys and rotation.", no_args_is_help=True)
    tuf.command()(init)
    tuf.command()(rotate)
    tuf.command()(status)
    group.add_typer(tuf, name="tuf")
