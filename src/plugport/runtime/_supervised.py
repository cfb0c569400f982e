"""What the supervisor is told and what it keeps: its settings, an installed plugin as it needs
it, the status it reports, the record it holds per plugin, and how a worker's end is named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from plugport._fetch_rules import parse_local_service
from plugport.errors import (
    InvalidInputError,
    PluginCallError,
    PluginCrashedError,
    PlugportError,
    ResourceLimitExceededError,
)
from plugport.manifest import LIMIT_BOUNDS, Limits, Manifest, Permissions, match_topic
from plugport.runtime._lifecycle import Health, RestartPolicy, State
from plugport.runtime._problem_rules import Thresholds
from plugport.runtime._uids import DEFAULT_RANGE as DEFAULT_UID_RANGE
from plugport.runtime._uids import DEFAULT_REGISTRY as DEFAULT_UID_REGISTRY
from plugport.runtime.broker import CapabilityBroker, Grants, NetOptions
from plugport.runtime.capabilities._delivery_rules import WebhookOptions
from plugport.runtime.capabilities._mailer import MailOptions
from plugport.runtime.capabilities.network import parse_endpoint
from plugport.runtime.process import PluginProcess
from plugport.runtime.protocol import HandlerInfo

__all__ = [
    "HOST_CEILING",
    "PluginInstall",
    "PluginStatus",
    "SupervisorConfig",
    "failure_kind",
]

HOST_CEILING = Limits(**{name: high for name, (_, _, high) in LIMIT_BOUNDS.items()})


@dataclass(frozen=True)
class SupervisorConfig:
    """The host's runtime settings; units are in the names."""

    state_dir: Path
    """Holds ``runtime.sqlite`` (storage, settings, audit) and each plugin's ``data/<name>``."""
    sandbox: Literal["strict", "best-effort"] = "strict"
    ceiling: Limits = HOST_CEILING
    """The host's caps; a plugin's own limits are clamped to these."""
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    ping_interval_s: float = 10.0
    """Health pings to every running worker; 0 turns them off."""
    ping_timeout_s: float = 2.0
    activation_timeout_s: float = 10.0
    """From a worker's start to its Ready: sandboxing, importing and ``initialize()``."""
    spawn_timeout_ms: int = 5000
    """How long the zygote may take to answer a spawn; past it the activation fails and the
    zygote is killed (its workers with it) and started again on the next activation."""
    stop_deadline_ms: int = 2000
    """How long ``cleanup()`` may take before the worker is killed."""
    swap_drain_deadline_s: float = 10.0
    """A hot swap (``Supervisor.swap``): how long calls already running on the old worker may
    take to finish there; past it they end with an error and the old worker is stopped."""
    capability_calls_per_s: float = 500.0
    max_data_dir_mb: int = 256
    """What one plugin's data directory may hold (``PluginInstall.max_data_dir_mb`` overrides it
    per plugin). Where the host is root, the data dir is a volume of this size and a write past
    it fails with ENOSPC (``runtime/volumes.py``); elsewhere the total is measured at every start
    and health ping, and a plugin over it is stopped. No single file can outgrow it either way
    (RLIMIT_FSIZE)."""
    data_volumes: bool = True
    """Where the host is root: back each data dir with a volume of its quota (False: a plain
    directory, measured; the operator can then read plugins' files in place)."""
    max_data_dir_inodes: int = 65536
    """How many files and directories a plugin's data volume holds (where it has one)."""
    worker_uid_range: tuple[int, int] = DEFAULT_UID_RANGE
    """Where the host is root: the uids handed to plugins, one each (``runtime/_uids.py``)."""
    worker_uid_registry: Path = DEFAULT_UID_REGISTRY
    """The machine-wide record of those uids, shared by every host on the machine."""
    net: NetOptions = field(default_factory=NetOptions)
    mail: MailOptions = field(default_factory=MailOptions)
    """The operator's SMTP relay for ``mail.send`` (none: plugins' mail is refused)."""
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)
    """Outbound webhook delivery: per-host rate limits, retries, concurrency."""
    problems: Thresholds = field(default_factory=Thresholds)
    """Where problem detection draws its lines (``runtime/_problem_rules.py``)."""

    def __post_init__(self) -> None:
        if self.sandbox not in ("strict", "best-effort"):
            raise InvalidInputError(
                f"sandbox must be 'strict' or 'best-effort', not {self.sandbox!r}"
            )
        positive = {
            "ping_timeout_s": self.ping_timeout_s,
            "activation_timeout_s": self.activation_timeout_s,
            "spawn_timeout_ms": self.spawn_timeout_ms,
            "capability_calls_per_s": self.capability_calls_per_s,
            "max_data_dir_mb": self.max_data_dir_mb,
            "max_data_dir_inodes": self.max_data_dir_inodes,
        }
        not_negative = {
            "ping_interval_s": self.ping_interval_s,
            "stop_deadline_ms": self.stop_deadline_ms,
            "swap_drain_deadline_s": self.swap_drain_deadline_s,
        }
        wrong = [f"{k} must be > 0 (got {v})" for k, v in positive.items() if v <= 0]
        wrong += [f"{k} must be >= 0 (got {v})" for k, v in not_negative.items() if v < 0]
        if wrong:
            raise InvalidInputError("SupervisorConfig: " + "; ".join(wrong))


@dataclass(frozen=True)
class PluginInstall:
    """An installed plugin as the supervisor needs it: its manifest, where its code is, and the
    permissions the operator consented to (``None``: everything the manifest asks for)."""

    manifest: Manifest
    code_dir: Path
    permissions: Permissions | None = None
    keep_stdio: bool = False
    max_data_dir_mb: int | None = None
    """The operator's quota for this plugin's data dir (None: the host's ``max_data_dir_mb``)."""
    local_endpoints: tuple[str, ...] = ()
    """``host:port`` endpoints its ``net.fetch`` may reach although they are local and not
    granted (``plugport dev --allow-local``); exact matches only, see
    :mod:`plugport._fetch_rules`."""
    local_policy: str = ""
    """Where the operator lists them (``[private-targets] in HOME/policy.toml``): quoted by a
    refusal that such a line would lift, and by the audit of each fetch that reaches one."""
    local_services: Mapping[str, str] = field(default_factory=dict)
    """Host name -> the loopback ``address:port`` that answers for it over plain HTTP (the
    operator's ``[local-services]``; see ``FetchPolicy.local_services``)."""
    libraries: Callable[[], Sequence[Path]] | None = None
    """The wheel-store entries of its locked libraries, asked for at each start (checked
    then, so a damaged store fails that start with the reason): they go on the worker's
    ``sys.path`` after its own code, read-only in its sandbox."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_endpoints", tuple(self.local_endpoints))
        for endpoint in self.local_endpoints:
            try:
                parse_endpoint(endpoint)
            except ValueError as exc:
                raise InvalidInputError(f"local_endpoints: {exc}") from None
        object.__setattr__(self, "local_services", dict(self.local_services))
        for address in self.local_services.values():
            try:
                parse_local_service(address)
            except ValueError as exc:
                raise InvalidInputError(f"local_services: {exc}") from None


@dataclass(frozen=True)
class PluginStatus:
    name: str
    version: str
    state: str
    pid: int | None
    restarts: int
    recent_failures: int
    quarantined: str | None
    last_error: str | None
    cpu_seconds: float
    peak_rss_bytes: int
    sandbox: Mapping[str, str]


@dataclass
class _Entry:
    install: PluginInstall
    grants: Grants
    limits: Limits
    broker: CapabilityBroker
    health: Health
    data_dir: Path
    state: State = State.INACTIVE
    process: PluginProcess | None = None
    handlers: list[HandlerInfo] = field(default_factory=list)
    sandbox: Mapping[str, str] = field(default_factory=dict)
    restarts: int = 0
    last_error: str | None = None
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    watcher: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.install.manifest.name

    @property
    def running(self) -> PluginProcess | None:
        process = self.process
        return process if process is not None and process.alive else None

    def status(self, now: float) -> PluginStatus:
        """What the supervisor reports about this plugin at monotonic time ``now``."""
        window = self.health.policy.breaker_window_s
        running = self.running
        return PluginStatus(
            name=self.name,
            version=self.install.manifest.version,
            state=self.state.value,
            pid=running.handle.pid if running else None,
            restarts=self.restarts,
            recent_failures=sum(1 for t in self.health.failures if now - t <= window),
            quarantined=self.health.quarantined,
            last_error=self.last_error,
            cpu_seconds=self.cpu_seconds,
            peak_rss_bytes=self.peak_rss_bytes,
            sandbox=dict(self.sandbox),
        )

    def data_quota_mb(self, config: SupervisorConfig) -> int:
        return self.install.max_data_dir_mb or config.max_data_dir_mb

    @property
    def always_on(self) -> bool:
        return "on_startup" in self.install.manifest.activation_events()

    def activates_on(self, kind: str, name: str) -> bool:
        if self.always_on:
            return True
        for event in self.install.manifest.activation_events():
            event_kind, _, argument = event.partition(":")
            if event_kind != kind:
                continue
            if argument == name or (kind == "on_event" and match_topic(argument, name)):
                return True
        return False


def failure_kind(error: PlugportError) -> tuple[str, str]:
    """``(audit kind, metrics cause)`` for how a worker ended: ``kill`` when the host stopped it
    (time, memory, CPU, no answer, protocol), ``crash`` when it died by itself. Decided from the
    error's attributes (``limit``, ``kind``), which are set where it is raised; its message is
    for people and may be reworded freely."""
    if isinstance(error, ResourceLimitExceededError):
        cause = {"timeout_ms": "timeout", "memory_mb": "memory", "cpu_seconds": "cpu"}
        return "kill", cause.get(error.limit, "timeout" if error.limit == "activation" else "limit")
    if isinstance(error, PluginCrashedError) and error.kind in ("protocol", "unresponsive"):
        return "kill", error.kind
    if isinstance(error, PluginCallError):
        return "crash", "load"
    if isinstance(error, PluginCrashedError) and error.kind in ("signal", "launch"):
        return "crash", error.kind
    return "crash", "exit"
