"""The host service's settings: one typed object read from ``PLUGPORT_HOST_SERVICE_*``
environment variables and command-line options, with units in the names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from plugport.versions import parse_version

__all__ = ["HostServiceSettings"]

KIB = 1024
MIB = 1024 * KIB


class HostServiceSettings(BaseSettings):
    """Everything ``plugport host serve`` can be told; each field is also
    ``PLUGPORT_HOST_SERVICE_<NAME>`` (``REGISTRIES`` is comma-separated)."""

    model_config = SettingsConfigDict(
        env_prefix="PLUGPORT_HOST_SERVICE_", extra="forbid", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    data_dir: Path = Path("plugport-host-service")
    """Holds ``service.sqlite`` (workspaces, tokens) and ``workspaces/<name>``, one host home
    each."""
    registries: Annotated[tuple[str, ...], NoDecode] = ()
    """Registry URLs every workspace installs from, first one that knows a plugin wins."""
    app: str = Field(default="plugport-host", min_length=1, max_length=100)
    """The application the plugins extend (plugins' ``engines`` name it)."""
    app_version: str = "0"
    sandbox: Literal["strict", "best-effort"] = "strict"
    telemetry: bool = True
    """Report installs and uninstalls (no identifiers) to the registry."""
    registry_cache_ttl_s: float = Field(default=300.0, ge=0)
    registry_max_retries: int = Field(default=3, ge=0, le=100)
    """How often a request a registry answered with 429 or 503 is sent again."""
    registry_max_retry_after_s: float = Field(default=60.0, ge=0, le=3600)
    """The longest single wait, whatever the registry's ``Retry-After`` asks."""
    registry_max_total_wait_s: float = Field(default=120.0, ge=0, le=3600)
    """The longest one request waits in all before the workspace gives up."""
    update_check_ttl_s: float = Field(default=60.0, ge=0)
    """How long a workspace's update check is reused when listing installations."""
    auto_update_interval_s: float = Field(default=3600.0, ge=1, le=7 * 86400)
    """How often a workspace whose plugins have an auto-update policy checks its registries
    and applies what the policies allow (a task on its queue, so it survives restarts)."""
    max_input_bytes: int = Field(default=1 * MIB, ge=1 * KIB)
    """The largest execute request body."""
    max_body_bytes: int = Field(default=64 * KIB, ge=1 * KIB)
    """The largest body of every other request."""
    operations_kept: int = Field(default=200, ge=1)
    """Finished operations remembered per workspace (oldest forgotten first)."""
    public_url: str = ""
    """Where senders reach this service from outside (``https://hooks.example.com``): webhook
    URLs are shown as ``{public_url}/hooks/WORKSPACE/PLUGIN/ENDPOINT``. Empty: the listening
    address."""
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    """Attempts to hand a received webhook to its plugin before it is dead."""
    webhook_retry_base_s: float = Field(default=1.0, gt=0, le=3600)
    """The first retry's wait (doubling, capped at an hour, jittered)."""
    webhook_retention_days: float = Field(default=7.0, ge=0, le=3650)
    """How long a handled webhook stays in the inbox (listed, and a resend with its delivery
    id answered as a duplicate), counted after its replay window; dead ones stay until
    retried or purged."""
    ui_timeout_ms: int = Field(default=5_000, ge=100, le=60_000)
    """How long a page waits for one plugin UI surface (a dashboard tile, a page, a menu
    item's answer) before it shows that surface's error instead."""
    ui_min_refresh_s: int = Field(default=5, ge=1, le=3600)
    """The shortest refresh interval a dashboard tile gets, whatever its widget asks for."""
    secure_cookies: bool = False
    """Mark the sign-in cookie ``Secure`` (set it when the pages are served over https)."""
    mail_host: str = ""
    """The SMTP relay plugins' ``mail.send`` goes through (empty: no mail); every workspace
    uses it. The ``mail_*`` settings are ``[mail]`` of ``HOME/policy.toml``."""
    mail_port: int = Field(default=587, ge=1, le=65535)
    mail_starttls: bool = True
    mail_username: str | None = None
    mail_password_secret: str | None = None
    """The name of the relay's password in each workspace's secrets store, scope ``_host``."""
    mail_from: str = ""
    """The ``From`` address of every message."""
    mail_max_per_hour: int = Field(default=100, ge=1, le=100_000)
    """Each plugin's messages per hour: the default and the cap on ``mail.per_hour``."""
    mail_cafile: Path | None = None

    def mail_relay(self) -> Any:
        """The relay as the runtime takes it, or ``None`` without ``mail_host``."""
        if not self.mail_host:
            return None
        from plugport.runtime.capabilities.mail import MailRelay

        return MailRelay(
            host=self.mail_host,
            port=self.mail_port,
            starttls=self.mail_starttls,
            username=self.mail_username,
            password_secret=self.mail_password_secret,
            sender=self.mail_from,
            max_per_hour=self.mail_max_per_hour,
            cafile=self.mail_cafile,
        )

    @model_validator(mode="after")
    def _mail(self) -> HostServiceSettings:
        from plugport.errors import InvalidInputError

        try:
            self.mail_relay()  # the same checks as [mail] in policy.toml, at startup
        except InvalidInputError as exc:
            raise ValueError(str(exc).replace("[mail]", "mail settings")) from None
        return self

    @field_validator("registries", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip())
        return value

    @field_validator("registries")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return tuple(url.rstrip("/") for url in value)

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        if value and (
            not value.startswith(("https://", "http://")) or "?" in value or "#" in value
        ):
            raise ValueError(f"{value!r} is not an http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("app_version")
    @classmethod
    def _version(cls, value: str) -> str:
        parse_version(value)
        return value
