"""Every exception Plugport raises on purpose, in one tree.

Callers catch the narrowest class they can act on; the CLI and the API catch
:class:`PlugportError` at the edge and show its message, which is always written
for the person who has to fix the problem. Data that explains the failure is
attached as attributes, never only formatted into the message::

    PlugportError
    ├── InvalidInputError              input broke a rule; nothing was changed
    │   ├── PluginValidationError      .problems, .source: a plugin that must not be packed or run
    │   │   └── ManifestError          the problems are in plugport.toml (field path, value, rule)
    │   ├── ArchiveError               .path
    │   │   ├── UnsafeArchiveError     .member, .reason: a name, link or device that could escape
    │   │   └── ArchiveLimitError      .limit, .value, .maximum: too big, too many, too compressed
    │   ├── DependencyError            .package, .file: a Python dependency that cannot be
    │   │                              locked, packed or installed (and what to do about it)
    │   ├── TaskValidationError        .task_type, .part, .field: a task payload or result
    │   │                              that does not match its [tasks.TYPE] schema
    │   └── WorkflowError              .workflow, .step, .field: a workflow file or run input
    │                                  that breaks a rule (a cycle, a dangling reference ...)
    ├── NotFoundError                  .kind, .name: no such plugin, version, namespace, token
    ├── ConflictError                  .kind, .name: it exists already (versions are immutable)
    ├── RegistryResponseError          .status, .code, .details: a registry refused a request
    ├── OfflineError                   .missing, .source: offline, and nothing cached to answer with
    ├── IndexKeyMismatchError          .stored, .ours: a registry node's index key is not the
    │                                  one the shared database's index is signed with
    ├── TufKeyMismatchError            .role: a registry node's TUF online key is not the one the
    │                                  newest root lists for that role
    ├── SecretBackendError             .url, .reason: the secrets backend (Vault) cannot answer
    ├── ResolutionError                .conflicts: no set of versions meets every requirement
    ├── ConsentError                   .plugin, .added: permissions the operator did not grant
    ├── TrustError                     something is not what it claims to be
    │   ├── SignatureError             .part: "archive", "statement", "signature" or "key"
    │   ├── AuthenticationError        no token, or one that is unknown, expired or revoked
    │   │   └── WebhookRefusedError    .reason, .status: an inbound webhook failed verification
    │   └── AuthorizationError         .scope: the token is valid but lacks the scope
    └── PluginRuntimeError             a plugin misbehaved while running
        ├── PermissionDeniedError      .plugin, .capability, .reason
        ├── NetworkFetchError          .plugin, .url, .reason: an allowed fetch that failed
        ├── MailDeliveryError          .plugin, .relay, .kind, .code, .reason: an allowed
        │                              message the relay did not take (or no relay is set)
        ├── PluginCrashedError         .plugin, .cause, .kind: the worker died or was ended
        ├── PluginCallError            .plugin, .type, .traceback: the plugin's code raised
        ├── ResourceLimitExceededError .plugin, .limit: refused, or the worker was stopped
        │                              (memory_mb also: .limit_mb, .peak_mb)
        ├── PluginQuarantinedError     .plugin, .reason: failed too often; an operator releases it
        ├── SwapRefusedError           .plugin, .version, .stage, .reason: a hot swap rolled back;
        │                              the worker that was serving goes on serving
        └── SandboxUnavailableError    .layer, .reason: the kernel lacks or refused a sandbox layer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "AuthenticationError",
    "AuthorizationError",
    "ConflictError",
    "ConsentError",
    "CrashKind",
    "DependencyError",
    "IndexKeyMismatchError",
    "InvalidInputError",
    "MailDeliveryError",
    "MailFailure",
    "ManifestError",
    "NetworkFetchError",
    "NotFoundError",
    "OfflineError",
    "PermissionDeniedError",
    "PluginCallError",
    "PluginCrashedError",
    "PluginQuarantinedError",
    "PluginRuntimeError",
    "PluginValidationError",
    "PlugportError",
    "Problem",
    "RegistryResponseError",
    "ResolutionError",
    "ResourceLimitExceededError",
    "SandboxUnavailableError",
    "SecretBackendError",
    "SignatureError",
    "SwapRefusedError",
    "SwapStage",
    "TaskValidationError",
    "TrustError",
    "TufKeyMismatchError",
    "UnsafeArchiveError",
    "WebhookRefusedError",
    "WorkflowError",
]


class PlugportError(Exception):
    """Root of every error Plugport raises on purpose."""


class InvalidInputError(PlugportError):
    """The input breaks a rule; the operation changed nothing."""


class TaskValidationError(InvalidInputError):
    """A task's payload (or its handler's result) does not match the JSON Schema of its
    ``[tasks.TYPE]``: ``part`` is ``payload`` or ``result``, ``field`` a JSON pointer to the
    value at fault (``""``: the whole document)."""

    def __init__(self, task_type: str, part: str, field: str, reason: str) -> None:
        self.task_type = task_type
        self.part = part
        self.field = field
        self.reason = reason
        where = f"field {field!r}" if field else "the document"
        super().__init__(f"task {task_type}: {part} {where}: {reason}")


class WorkflowError(InvalidInputError):
    """A workflow document, or the input of a run, breaks a rule: ``workflow`` is its name
    (``""`` before one is known), ``step`` the step at fault (``None``: the workflow itself),
    ``field`` the key path in the step or document (``needs``, ``payload.text``, ``input/repo``)."""

    def __init__(self, workflow: str, step: str | None, field: str, reason: str) -> None:
        self.workflow = workflow
        self.step = step
        self.field = field
        self.reason = reason
        where = [f"workflow {workflow!r}" if workflow else "workflow"]
        if step is not None:
            where.append(f"step {step!r}")
        if field:
            where.append(field)
        super().__init__(f"{', '.join(where)}: {reason}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a manifest: where, what was found, and what is allowed."""

    path: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PluginValidationError(InvalidInputError):
    """A plugin broke one or more rules; ``problems`` lists every finding, not just the first."""

    what = "invalid plugin"

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        count = len(self.problems)
        head = f"{where}{self.what} ({count} problem{'s' if count != 1 else ''})"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class ManifestError(PluginValidationError):
    """A manifest could not be read or broke the schema."""

    what = "invalid manifest"


class ArchiveError(InvalidInputError):
    """A plugin archive could not be packed or unpacked."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class UnsafeArchiveError(ArchiveError):
    """An archive member could write outside its target or is not a plain file."""

    def __init__(self, member: str, reason: str, *, path: str | None = None) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"unsafe archive member {member!r}: {reason}", path=path)


class ArchiveLimitError(ArchiveError):
    """An archive exceeds a size, count or compression-ratio cap."""

    def __init__(
        self, limit: str, value: float, maximum: float, detail: str, *, path: str | None = None
    ) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(f"{detail} (limit {limit} = {maximum:g})", path=path)


class DependencyError(InvalidInputError):
    """A plugin's Python dependency (``[python]`` in the manifest, ``plugport.lock``, a wheel)
    cannot be locked, packed or installed. ``package`` and ``file`` name what is wrong where
    known; the message says what to do."""

    def __init__(self, message: str, *, package: str = "", file: str = "") -> None:
        self.package = package
        self.file = file
        super().__init__(message)


class NotFoundError(PlugportError):
    """What was asked for does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"no {kind} {name!r}" + (f"; {hint}" if hint else ""))


class ConflictError(PlugportError):
    """It exists already and cannot be replaced (a published version, a namespace)."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} {reason}")


class RegistryResponseError(PlugportError):
    """A registry answered with an error; its message is the registry's own."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        self.status = status
        self.code = code
        self.details = details or {}
        super().__init__(f"{message} (HTTP {status}, {code})")


class OfflineError(PlugportError):
    """Offline mode asked for something the cache does not hold; ``missing`` names it and
    ``source`` the registry it would come from, so the fix (go online once) is obvious."""

    def __init__(self, missing: str, source: str) -> None:
        self.missing = missing
        self.source = source
        super().__init__(
            f"offline: no cached copy of {missing} from {source}; run once online first"
        )


class IndexKeyMismatchError(PlugportError):
    """A registry node's index signing key is not the one the index in the shared database is
    signed with (nodes behind one load balancer must share one key); nothing was signed."""

    def __init__(self, stored: str, ours: str, hint: str) -> None:
        self.stored = stored
        self.ours = ours
        super().__init__(
            f"the signed index in the database is signed by key {stored[:16]}…, and this "
            f"node's index key {ours}: {hint}"
        )


class TufKeyMismatchError(PlugportError):
    """A registry node's TUF online key for ``role`` is not the one the newest root in the
    shared database lists (a rotation this node has not been given); nothing was signed."""

    def __init__(self, role: str, message: str) -> None:
        self.role = role
        super().__init__(message)


class SecretBackendError(PlugportError):
    """The secrets backend (HashiCorp Vault) is unreachable, sealed or rate limiting; ``url``
    names it and ``reason`` says what happened. Nothing was changed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"secrets backend {url}: {reason}")


class ConsentError(PlugportError):
    """An install or update needs permissions nobody granted (refused at the prompt, or no
    one to ask and no policy covering them); nothing was changed."""

    def __init__(self, plugin: str, added: Sequence[str], hint: str) -> None:
        self.plugin = plugin
        self.added = tuple(added)
        super().__init__(f"{plugin} needs consent for: {'; '.join(self.added)} ({hint})")


class ResolutionError(PlugportError):
    """No set of versions meets every requirement, engine range and yank rule at once.

    ``conflicts`` holds the requirements that clash, each naming who asked for it (the user
    or the plugin version that depends on it), so a caller can show them as a list."""

    def __init__(self, message: str, conflicts: Sequence[str] = ()) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__(message)


class TrustError(PlugportError):
    """Something is not what it claims to be; treat it as an attack until shown otherwise."""


class SignatureError(TrustError):
    """A signature does not verify; ``part`` says whether the archive, statement, signature or
    key is the one that does not match."""

    def __init__(self, part: str, message: str) -> None:
        self.part = part
        super().__init__(message)


class AuthenticationError(TrustError):
    """The request carries no usable token: none, unknown, expired or revoked."""


class WebhookRefusedError(AuthenticationError):
    """An inbound webhook delivery failed its endpoint's verifier. ``reason`` is a short code
    (``bad_signature``, ``stale_timestamp``, ...) a sender's operator can act on; ``status`` the
    HTTP status to answer. Never carries the secret, the signature or the token."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(message)


class AuthorizationError(TrustError):
    """The token is valid, but does not carry ``scope``."""

    def __init__(self, scope: str, message: str) -> None:
        self.scope = scope
        super().__init__(message)


class PluginRuntimeError(PlugportError):
    """A plugin failed or was stopped while running."""


class PermissionDeniedError(PluginRuntimeError):
    """A plugin asked for a capability it was not granted."""

    def __init__(self, plugin: str, capability: str, reason: str, fix: str = "") -> None:
        self.plugin = plugin
        self.capability = capability
        self.reason = reason
        self.fix = fix  # what the author does about it, e.g. the manifest line to add
        message = f"plugin {plugin!r} may not use {capability}: {reason}"
        super().__init__(f"{message}; {fix}" if fix else message)


class NetworkFetchError(PluginRuntimeError):
    """A fetch the plugin was allowed to make failed: unreachable, too slow, too big, or the
    server broke HTTP. Refusals are :class:`PermissionDeniedError`, never this."""

    def __init__(self, plugin: str, url: str, reason: str) -> None:
        self.plugin = plugin
        self.url = url
        self.reason = reason
        super().__init__(f"plugin {plugin!r} could not fetch {url}: {reason}")


MailFailure = Literal[
    "unconfigured", "unreachable", "tls", "auth", "refused", "temporary", "protocol"
]
"""Why a message was not handed over: ``unconfigured`` the host has no relay; ``unreachable``
no connection; ``tls`` STARTTLS failed or the certificate did not verify; ``auth`` the relay
refused the login; ``refused`` a permanent (5xx) refusal of the sender, a recipient or the
message; ``temporary`` a 4xx answer (try again later); ``protocol`` anything else."""


class MailDeliveryError(PluginRuntimeError):
    """A message the plugin was allowed to send was not taken by the operator's relay (or no
    relay is configured). ``kind`` is one of :data:`MailFailure`, for code to branch on;
    ``code`` the SMTP reply code (0 without one); the message never holds a credential.
    Refusals by the plugin's permissions are :class:`PermissionDeniedError`, never this."""

    def __init__(
        self, plugin: str, relay: str, kind: MailFailure, reason: str, *, code: int = 0
    ) -> None:
        self.plugin = plugin
        self.relay = relay
        self.kind: MailFailure = kind
        self.code = code
        self.reason = reason
        where = f" through {relay}" if relay else ""
        super().__init__(f"plugin {plugin!r} could not send mail{where}: {reason}")


CrashKind = Literal[
    "exit", "signal", "protocol", "unresponsive", "launch", "lost", "stopped", "shutdown", "backoff"
]
"""How a worker ended, decided where the error is raised (never read back from the message):
``exit`` it exited by itself; ``signal`` a signal ended it (a segfault, a forbidden system call);
``protocol`` the host killed it for breaking the channel's protocol; ``unresponsive`` the host
killed it for not answering a health ping; ``launch`` no worker could be started; ``lost`` its
channel closed and it did not exit, or it is gone without a recorded reason; ``stopped`` the host
stopped it; ``shutdown`` the host runtime is closing (or a start was cancelled); ``backoff`` it
failed before and its next start is not due yet."""


class PluginCrashedError(PluginRuntimeError):
    """A worker process ended without being asked to; ``cause`` says how in words (signal, exit
    code) and ``kind`` in one of :data:`CrashKind`'s values, for code to branch on."""

    def __init__(self, plugin: str, cause: str, *, kind: CrashKind = "exit") -> None:
        self.plugin = plugin
        self.cause = cause
        self.kind: CrashKind = kind
        super().__init__(f"plugin {plugin!r} crashed: {cause}")


class PluginCallError(PluginRuntimeError):
    """The plugin's own code raised; ``type`` is the exception class name inside the worker."""

    def __init__(self, plugin: str, type: str, message: str, traceback: str = "") -> None:
        self.plugin = plugin
        self.type = type
        self.traceback = traceback
        super().__init__(f"plugin {plugin!r} raised {type}: {message}")


class ResourceLimitExceededError(PluginRuntimeError):
    """A plugin went over one of its limits: the request was refused (a quota, a rate) or the
    worker was stopped (time, memory, CPU)."""

    def __init__(
        self,
        plugin: str,
        limit: str,
        detail: str,
        *,
        limit_mb: int | None = None,
        peak_mb: float | None = None,
    ) -> None:
        self.plugin = plugin
        self.limit = limit
        self.limit_mb = limit_mb
        """For ``memory_mb``: the limit the worker ran under, in MiB."""
        self.peak_mb = peak_mb
        """For ``memory_mb``: the worker's peak resident memory in MiB, when it was measured."""
        super().__init__(f"plugin {plugin!r} exceeded {limit}: {detail}")


class PluginQuarantinedError(PluginRuntimeError):
    """The circuit breaker opened: the plugin failed too often and is not started again until
    an operator releases it."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(
            f"plugin {plugin!r} is quarantined: {reason}; it stays stopped until an operator "
            "releases it"
        )


SwapStage = Literal["start", "health", "removed", "closing"]
"""Where a hot swap stopped: ``start`` the new worker did not start (it crashed, could not load,
or ``initialize()`` raised); ``health`` it started but did not answer its health check; ``removed``
the plugin was removed meanwhile; ``closing`` the runtime is shutting down."""


class SwapRefusedError(PluginRuntimeError):
    """A hot swap (a new version, or the same one onto new settings) was rolled back before any
    call went to the new worker: the new worker was stopped and the one serving goes on serving.
    ``kept`` says what stayed in place, in words (``1.1.0 keeps running``)."""

    def __init__(self, plugin: str, version: str, stage: SwapStage, reason: str, kept: str) -> None:
        self.plugin = plugin
        self.version = version
        self.stage: SwapStage = stage
        self.reason = reason
        self.kept = kept
        super().__init__(f"swap of {plugin} to {version} refused: {reason}; {kept}")


class SandboxUnavailableError(PluginRuntimeError):
    """A sandbox layer the policy requires is missing or was refused by the kernel, so the plugin
    must not run; ``reason`` is the kernel fact to fix (a sysctl, a boot option, an errno)."""

    def __init__(self, layer: str, reason: str) -> None:
        self.layer = layer
        self.reason = reason
        super().__init__(f"sandbox layer {layer!r} is not available: {reason}")
