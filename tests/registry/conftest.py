"""A real registry for tests: the app on a real uvicorn server on 127.0.0.1, over SQLite and,
when ``PLUGPORT_TEST_POSTGRES_URL`` is set, PostgreSQL (each test in a fresh schema)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from plugport.registry.app import create_app
from plugport.registry.db import make_engine, make_sessions
from plugport.registry.ratelimit import RateLimiter
from plugport.registry.services import tokens
from plugport.registry.settings import RegistrySettings
from plugport.registry.verification import DomainChecker
from tests._uvicorn import serving
from tests.conftest import RunCli

POSTGRES_URL = os.environ.get("PLUGPORT_TEST_POSTGRES_URL")


@contextlib.contextmanager
def engine_for(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database: a SQLite file in ``tmp_path``, or a new PostgreSQL schema (skipped
    when ``PLUGPORT_TEST_POSTGRES_URL`` is not set), dropped afterwards."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
        yield engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("PLUGPORT_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    schema = f"t_{secrets.token_hex(6)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with engine_for(request.param, tmp_path) as engine:
        yield engine


@dataclass
class Registry:
    url: str
    engine: Engine
    admin: str
    data_dir: Path
    app: Any = None
    """The FastAPI app serving it (tests may reach into its state)."""

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def token(self, identity: str, *scopes: str, expires_in: timedelta | None = None) -> str:
        with make_sessions(self.engine).begin() as session:
            plaintext, _ = tokens.create_token(
                session, identity, list(scopes), expires_in=expires_in
            )
        return plaintext

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            query = text(f"SELECT count(*) FROM {table}")  # noqa: S608 table names from tests
            return int(connection.execute(query).scalar_one())


@contextlib.contextmanager
def running(
    engine: Engine,
    data_dir: Path,
    *,
    limiter: RateLimiter | None = None,
    domain_checker: DomainChecker | None = None,
    **settings: Any,
) -> Iterator[Registry]:
    """A registry app (with ``settings`` overrides) on uvicorn at 127.0.0.1, for a with block."""
    app = create_app(
        RegistrySettings(data_dir=data_dir, **settings),
        engine=engine,
        limiter=limiter,
        domain_checker=domain_checker,
    )
    with serving(app) as url:
        registry = Registry(url, engine, "", data_dir, app)
        registry.admin = registry.token("root", "admin")
        yield registry


@pytest.fixture
def registry(engine: Engine, tmp_path: Path) -> Iterator[Registry]:
    with running(engine, tmp_path / "data") as registry:
        yield registry


@pytest.fixture
def cli(
    run_cli: RunCli, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RunCli:
    """The ``plugport`` CLI pointed at ``registry`` with its admin token (as the environment
    variables a user would set), with its own config directory."""
    monkeypatch.setenv("PLUGPORT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("PLUGPORT_REGISTRY", registry.url)
    monkeypatch.setenv("PLUGPORT_TOKEN", registry.admin)
    return run_cli
