"""The registry's settings: one typed object read from ``PLUGPORT_*`` environment variables and
command-line options, with units in the names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RegistrySettings"]

MIB = 1024 * 1024


class RegistrySettings(BaseSettings):
    """Everything ``plugport serve`` can be told; each field is also ``PLUGPORT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PLUGPORT_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("plugport-data")
    """Holds the SQLite database, the blobs and the registry's signing key by default."""
    database_url: str | None = None
    """``sqlite:///path`` or ``postgresql+psycopg://user@host/db``; default: SQLite in data_dir."""
    blob_url: str | None = None
    """``file:///path``, ``s3://bucket/prefix`` or ``memory://``; default: files in data_dir."""
    s3_endpoint_url: str | None = None
    """An S3-compatible server's URL (MinIO, Ceph, moto) for an ``s3://`` blob_url; default:
    AWS. Credentials come from the usual AWS variables or files."""
    redis_url: str | None = None
    """Shares rate limits between registry nodes; without it they are per process. A node
    that loses Redis counts on its own until Redis answers again (``/healthz`` says so)."""
    max_archive_bytes: int = Field(default=20 * MIB, ge=1024)
    """The largest plugin archive a publisher may upload. Everything inside counts: the code,
    the assets and the wheels of the Python libraries the plugin ships (``[python]`` in its
    manifest), so raise it for plugins with large libraries. Hosts have a cap of their own."""
    max_request_bytes: int = Field(default=21 * MIB, ge=1024)
    """The largest request body. An upload's body is the archive, its signature and the form
    around them; when only ``max_archive_bytes`` is set, this follows it (1 MiB above)."""
    index_ttl_s: int = Field(default=24 * 3600, ge=60)
    """How long a signed index is valid; hosts refuse an expired one."""
    index_key_file: Path | None = None
    """The Ed25519 key that signs the index; default ``registry-index.key`` in data_dir,
    created on first start. Nodes behind one load balancer must share it: a node whose key
    is not the one the database's index is signed with refuses to start."""
    rotate_index_key: bool = False
    """Sign the index with this node's key even though the database's index is signed with
    another (a deliberate key rotation; hosts must pin the new key). Set it for one start."""
    tuf_keys_file: Path | None = None
    """The TUF online keys (timestamp, snapshot, targets, namespaces) that ``plugport registry
    tuf init`` writes; default ``tuf-online-keys.json`` in data_dir. Every node shares it; a
    node of a registry that publishes TUF metadata refuses to start without it."""
    blob_gc_interval_s: int = Field(default=3600, ge=0)
    """How often blobs no version refers to (left by a publish killed mid-way) are collected,
    the first time at start; 0 never."""
    blob_gc_min_age_s: int = Field(default=3600, ge=60)
    """Such a blob is collected only once this old (and older than every upload in flight on
    this node): the margin for uploads in flight on other nodes."""
    domain_recheck_interval_s: int = Field(default=24 * 3600, ge=0)
    """How often verified domains are checked again (a removed TXT record or file takes the
    badge away); 0 never."""
    domain_recheck_failures_allowed: int = Field(default=1, ge=0)
    """Checks in a row a verified domain may fail (a DNS hiccup) before its badge goes."""
    domain_check_timeout_s: float = Field(default=10.0, gt=0, le=60)
    """Each method of one check (DNS, then HTTPS with its redirects) as a whole."""
    domain_check_ca_file: Path | None = None
    """PEM certificates of further CAs the HTTPS check trusts (an internal CA); the usual
    ones stay trusted and certificates are always verified."""
    domain_check_loopback: dict[str, str] = Field(default_factory=dict)
    """Tests only: host name -> loopback ``127.0.0.1:PORT`` of an HTTPS server that answers
    for it. Leave empty in production: the check never reaches a private address otherwise."""
    rate_limit_per_minute: int = Field(default=600, ge=1)
    """Requests per minute per authenticated token, else per client address (a missing,
    unknown, expired or revoked token spends the address's budget)."""
    search_freshness_ms: int = Field(default=250, ge=0, le=60_000)
    """How long a node reuses its read of the search generation: a kept search answer is
    served with no database read for that long, so a change made on another node shows in
    searches here within it (one made on this node, at once). 0 reads it for every answer."""
    report_limit_per_hour: int = Field(default=10, ge=1)
    """Abuse reports one identity may file per hour (counted in the database, so every node
    shares the count); the next one answers 429 naming this limit."""
    host_service_url: str | None = None
    """Where a host service runs (``https://apps.example.com``): plugin pages then link to
    ``{host_service_url}/workspaces?install=NAME``."""

    @model_validator(mode="before")
    @classmethod
    def _request_fits_archive(cls, data: Any) -> Any:
        """A raised archive limit raises the request limit with it, so uploads of the new size
        are not refused for the size of their request instead."""
        if isinstance(data, dict) and "max_request_bytes" not in data:
            try:
                archive = int(data["max_archive_bytes"])
            except (KeyError, TypeError, ValueError):
                return data  # unset (the defaults agree) or invalid (its own field says so)
            return {**data, "max_request_bytes": archive + MIB}
        return data

    @field_validator("domain_check_loopback", mode="before")
    @classmethod
    def _table_from_json(cls, value: Any) -> Any:
        """The JSON text an environment variable holds, given as a value too (a settings file
        read by a tool, say): ``{"example.com": "127.0.0.1:8443"}``."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # the field's own error names it
        return value

    def index_key_path(self) -> Path:
        return self.index_key_file or self.data_dir / "registry-index.key"

    def tuf_keys_path(self) -> Path:
        return self.tuf_keys_file or self.data_dir / "tuf-online-keys.json"

    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'registry.sqlite').resolve()}"
