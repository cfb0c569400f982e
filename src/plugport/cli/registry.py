"""Registry commands: ``serve``, and ``registry migrate`` / ``registry create-admin`` for the
operator of a registry on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from plugport._identity import check_identity
from plugport.cli._output import out, reporting_errors
from plugport.errors import InvalidInputError

__all__ = ["register"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Database, blobs and keys (default $PLUGPORT_DATA_DIR)."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="sqlite:///… or postgresql+psycopg://… (default: SQLite in data)"
    ),
]


def _settings(**given: Any) -> Any:
    from plugport.cli._settings import settings_from
    from plugport.registry.settings import RegistrySettings

    return settings_from(RegistrySettings, "registry settings", **given)


def _pairs(given: list[str] | None, option: str) -> dict[str, str] | None:
    """``NAME=VALUE`` options as a table (None when none were given: the environment's)."""
    if not given:
        return None
    found: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InvalidInputError(f"{option}: {item!r} is not NAME=VALUE")
        found[name] = value
    return found


def serve(  # noqa: PLR0917 one parameter per command-line option
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to bind.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: Annotated[
        str | None, typer.Option("--blob-url", help="file:///…, s3://bucket/prefix")
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option("--s3-endpoint-url", help="An S3-compatible server for s3:// (default AWS)."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Share rate limits between nodes.")
    ] = None,
    index_key_file: Annotated[
        Path | None,
        typer.Option("--index-key-file", help="The index signing key every node shares."),
    ] = None,
    rotate_index_key: Annotated[
        bool,
        typer.Option(
            "--rotate-index-key",
            help="Sign the index with this key although the database's is signed with another.",
        ),
    ] = False,
    index_ttl_s: Annotated[
        int | None, typer.Option("--index-ttl-s", help="How long a signed index is valid.")
    ] = None,
    tuf_keys_file: Annotated[
        Path | None,
        typer.Option("--tuf-keys-file", help="The TUF online keys every node shares."),
    ] = None,
    max_archive_bytes: Annotated[
        int | None, typer.Option("--max-archive-bytes", help="The largest archive accepted.")
    ] = None,
    max_request_bytes: Annotated[
        int | None, typer.Option("--max-request-bytes", help="The largest request body.")
    ] = None,
    rate_limit_per_minute: Annotated[
        int | None,
        typer.Option("--rate-limit-per-minute", help="Per token, else per client address."),
    ] = None,
    search_freshness_ms: Annotated[
        int | None,
        typer.Option(
            "--search-freshness-ms",
            help="How long a kept search answer is served without reading the database "
            "(changes on other nodes show within it; 0: always read).",
        ),
    ] = None,
    blob_gc_interval_s: Annotated[
        int | None,
        typer.Option("--blob-gc-interval-s", help="How often unreferenced blobs go (0 never)."),
    ] = None,
    blob_gc_min_age_s: Annotated[
        int | None,
        typer.Option("--blob-gc-min-age-s", help="How old an unreferenced blob must be to go."),
    ] = None,
    host_service_url: Annotated[
        str | None,
        typer.Option("--host-service-url", help="Where plugin pages' install links point."),
    ] = None,
    report_limit_per_hour: Annotated[
        int | None,
        typer.Option("--report-limit-per-hour", help="Abuse reports per identity per hour."),
    ] = None,
    domain_recheck_interval_s: Annotated[
        int | None,
        typer.Option(
            "--domain-recheck-interval-s", help="How often verified domains are checked (0 never)."
        ),
    ] = None,
    domain_recheck_failures_allowed: Annotated[
        int | None,
        typer.Option(
            "--domain-recheck-failures-allowed",
            help="Failed rechecks in a row before a domain's badge goes.",
        ),
    ] = None,
    domain_check_timeout_s: Annotated[
        float | None,
        typer.Option("--domain-check-timeout-s", help="Each method of one domain check."),
    ] = None,
    domain_check_ca_file: Annotated[
        Path | None,
        typer.Option("--domain-check-ca-file", help="Further CAs the HTTPS domain check trusts."),
    ] = None,
    domain_check_loopback: Annotated[
        list[str] | None,
        typer.Option(
            "--domain-check-loopback",
            help="Tests only: NAME=127.0.0.1:PORT answers the domain check for NAME; repeat.",
        ),
    ] = None,
    host_service: Annotated[
        bool,
        typer.Option(
            "--host-service",
            help="Also serve workspaces that install from this registry (data in "
            "DATA_DIR/host-service; PLUGPORT_HOST_SERVICE_* set the rest).",
        ),
    ] = False,
) -> None:
    """Run the registry (migrates its database first)."""
    import uvicorn

    from plugport.registry.allocator import tune_allocator
    from plugport.registry.app import create_app

    tune_allocator()  # before any thread starts: see plugport.registry.allocator

    with reporting_errors():
        settings = _settings(
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            blob_url=blob_url,
            s3_endpoint_url=s3_endpoint_url,
            redis_url=redis_url,
            index_key_file=index_key_file,
            rotate_index_key=True if rotate_index_key else None,  # else the environment's
            index_ttl_s=index_ttl_s,
            tuf_keys_file=tuf_keys_file,
            max_archive_bytes=max_archive_bytes,
            max_request_bytes=max_request_bytes,
            rate_limit_per_minute=rate_limit_per_minute,
            search_freshness_ms=search_freshness_ms,
            blob_gc_interval_s=blob_gc_interval_s,
            blob_gc_min_age_s=blob_gc_min_age_s,
            host_service_url=host_service_url,
            report_limit_per_hour=report_limit_per_hour,
            domain_recheck_interval_s=domain_recheck_interval_s,
            domain_recheck_failures_allowed=domain_recheck_failures_allowed,
            domain_check_timeout_s=domain_check_timeout_s,
            domain_check_ca_file=domain_check_ca_file,
            domain_check_loopback=_pairs(domain_check_loopback, "--domain-check-loopback"),
        )
        if not host_service:
            app = create_app(settings)
    if not host_service:
        where = f"port {settings.port}" if settings.port else "a free port"
        out.print(
            f"starting the plugport registry on {settings.host}, {where} (uvicorn says when up)"
        )
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
        return
    from plugport.cohost import bind, create_cohosted_app

    with reporting_errors():
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            raise InvalidInputError(
                f"--port: cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from exc
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown}:{bound_port}"
        app = create_cohosted_app(settings, url)
    out.print(
        f"serving the plugport registry and its host service at {url}; "
        f"workspaces: {url}/workspaces (plugport host create-admin --data-dir "
        f"{settings.data_dir / 'host-service'} prints the service's admin token)"
    )
    uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])


def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Bring the registry database to the newest schema."""
    from plugport.registry.db import make_engine
    from plugport.registry.migrate import current_revision, head_revision, upgrade

    with reporting_errors():
        settings = _settings(data_dir=data_dir, database_url=database_url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.sqlalchemy_url())
        before = current_revision(engine)
        upgrade(engine)
        out.print(
            f"schema {before or 'empty'} -> {current_revision(engine)} (head {head_revision()})"
        )
        engine.dispose()


def create_admin(
    identity: Annotated[
        str, typer.Option("--identity", help="Who the token speaks for.")
    ] = "admin",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a new admin token (shown once). Run it on the registry's machine."""
    from plugport.registry.db import make_engine, make_sessions
    from plugport.registry.migrate import upgrade
    from plugport.registry.services import audit, tokens

    with reporting_errors():
        identity = check_identity(identity, field="--identity")
        settings = _settings(data_dir=data_dir, database_url=database_url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.sqlalchemy_url())
        upgrade(engine)
        with make_sessions(engine).begin() as session:
            plaintext, row = tokens.create_token(
                session, identity, ["admin"], description="created by registry create-admin"
            )
            audit.record(session, "cli", "token.create", row.prefix, scopes=["admin"])
        engine.dispose()
    print(plaintext)  # plain stdout: scripts capture it


def register(app: typer.Typer) -> None:
    app.command()(serve)
    group = typer.Typer(help="Operate a registry on this machine.", no_args_is_help=True)
    group.command()(migrate)
    group.command("create-admin")(create_admin)
    from plugport.cli import registry_tuf

    registry_tuf.register(group)
    app.add_typer(group, name="registry")
