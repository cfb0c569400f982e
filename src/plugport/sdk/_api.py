"""What ``self.api`` is inside a plugin: proxies that turn each capability use into a request
the host checks. Nothing here reaches storage, the network or the UI by itself."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypedDict, cast

from plugport.errors import NetworkFetchError
from plugport.sdk._retry import RetryPolicy, retry_delay
from plugport.sdk._task import CURRENT_TASK

__all__ = [
    "CAPABILITIES",
    "Api",
    "CapabilityProxy",
    "ConfigProxy",
    "EventsProxy",
    "MailProxy",
    "NetProxy",
    "Response",
    "StorageProxy",
    "StorageUsage",
    "TasksProxy",
    "Transport",
    "UiProxy",
    "WebhooksProxy",
]

CAPABILITIES = (
    "config",
    "events",
    "mail",
    "net",
    "secrets",
    "storage",
    "tasks",
    "ui",
    "webhooks",
)


class Transport(Protocol):
    """How a proxy reaches the host; the worker supplies the real one, tests a fake."""

    async def call(
        self, capability: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any: ...


class CapabilityProxy:
    """The base of ``self.api.<capability>``: each typed method sends one request that the host
    checks against the plugin's granted permissions before doing anything. A call the host
    refuses raises :class:`~plugport.errors.PermissionDeniedError`, whose message names the
    ``[permissions]`` line to add; a call over a limit raises
    :class:`~plugport.errors.ResourceLimitExceededError`; bad arguments raise
    :class:`~plugport.errors.InvalidInputError`."""

    capability: ClassVar[str] = ""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def _call(self, method: str, *args: Any) -> Any:
        return await self._transport.call(self.capability, method, list(args), {})

    def __getattr__(self, method: str) -> Any:
        offered = sorted(
            name
            for name, value in vars(type(self)).items()
            if not name.startswith("_") and callable(value)
        )
        raise AttributeError(
            f"api.{self.capability} has no method {method!r} (it has: {', '.join(offered)})"
        )


class StorageUsage(TypedDict):
    """What :meth:`StorageProxy.usage` returns: bytes the plugin's values take, and its quota."""

    used_bytes: int
    quota_bytes: int


class StorageProxy(CapabilityProxy):
    """``self.api.storage``: a key-value store private to the plugin, kept by the host across
    restarts and updates. Needs ``[permissions] storage = "1 MiB"`` (the quota). Keys are
    non-empty strings up to 256 characters; values anything JSON can hold."""

    capability = "storage"

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when there is none."""
        return await self._call("get", key, default)

    async def set(self, key: str, value: Any) -> int:
        """Store ``value`` under ``key``; returns the bytes the plugin now uses. Over the quota:
        :class:`~plugport.errors.ResourceLimitExceededError`, and nothing is written."""
        return int(await self._call("set", key, value))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``False`` when it was not there."""
        return bool(await self._call("delete", key))

    async def keys(self, prefix: str = "", limit: int = 1000) -> list[str]:
        """The plugin's keys that start with ``prefix``, sorted, at most ``limit``."""
        return list(await self._call("keys", prefix, limit))

    async def usage(self) -> StorageUsage:
        """Bytes used and the quota granted."""
        return cast(StorageUsage, await self._call("usage"))


@dataclass(frozen=True)
class Response:
    """What ``api.net.fetch`` returns: the host made the request and read the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    elapsed_ms: float

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding, errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class NetProxy(CapabilityProxy):
    """``self.api.net``: HTTP requests the host makes for the plugin, only to the hosts its
    manifest lists (``[permissions] network = ["api.example.com"]``), never to private
    addresses, re-checked on every redirect, with size and time limits."""

    capability = "net"
    local_options: ClassVar[dict[str, tuple[str, ...]]] = {"fetch": ("retry",)}
    """Options a method handles in the plugin's process, never sent to the host."""

    async def fetch(  # noqa: PLR0917 - url first; the rest read as keywords in practice
        self,
        url: str = "",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        credential: str | None = None,
        *,
        retry: RetryPolicy | bool = False,
    ) -> Response:
        """Request ``url`` and read the whole answer. ``body`` (bytes) or ``json`` (encoded by
        the host) is the request body. ``credential`` names a ``[credentials.NAME]``: the host
        adds it to the request (only to its declared hosts, on every redirect hop too), so the
        plugin never holds it, and takes it out of the answer. A credential of kind ``url`` is
        the whole URL (an incoming-webhook URL): leave ``url`` out and the host sends to the
        URL the operator set, which the plugin never learns. A refused URL raises
        :class:`~plugport.errors.PermissionDeniedError`; a failed fetch
        :class:`~plugport.errors.NetworkFetchError`. Any HTTP status is an answer, not an
        error.

        ``retry`` (``True`` for the default :class:`~plugport.sdk.RetryPolicy`) sends the
        request again after a 429 (when the service's ``Retry-After`` or rate-limit reset says),
        and after a 5xx or a failed connection for idempotent methods, with jittered backoff,
        within the policy's time budget; the last answer (or error) is what comes back."""
        policy = RetryPolicy() if retry is True else retry or None
        waited, attempt = 0.0, 1
        while True:
            status, answer, failure = None, {}, None
            try:
                reply = await self._call("fetch", url, method, headers, body, json, credential)
            except NetworkFetchError as exc:
                if policy is None:
                    raise
                failure = exc
            else:
                response = Response(**reply)
                if policy is None:
                    return response
                status, answer = response.status, response.headers
            delay = retry_delay(
                policy,
                method,
                status,
                headers=answer,
                attempt=attempt,
                waited_s=waited,
                now=time.time(),
            )
            if delay is None:
                if failure is not None:
                    raise failure
                return response
            await asyncio.sleep(delay)
            waited, attempt = waited + delay, attempt + 1


class SecretsProxy(CapabilityProxy):
    """``self.api.secrets``: use the secrets the operator set for the plugin without seeing
    them. ``sign`` needs a ``[credentials.NAME]`` of kind ``hmac`` or ``private-key``;
    ``reveal`` needs ``[permissions] secrets.reveal = ["NAME"]``, which the operator sees in red
    at consent."""

    capability = "secrets"

    async def sign(self, name: str, data: bytes | str, alg: str = "hmac-sha256") -> str:
        """The hex HMAC of ``data`` (text is UTF-8) with secret ``name``; ``alg`` is
        ``hmac-sha256`` or ``hmac-sha512``. With a credential of kind ``private-key``, ``alg``
        is ``rs256``, ``es256`` or ``ed25519`` and the answer is the base64url signature a JWT
        carries (no padding)."""
        return str(await self._call("sign", name, data, alg))

    async def reveal(self, name: str) -> str:
        """The raw value of secret ``name`` (audited). Prefer ``net.fetch(credential=...)``
        and ``sign``: with them the value never enters the plugin's process."""
        return str(await self._call("reveal", name))


class EventsProxy(CapabilityProxy):
    """``self.api.events``: publish events to the host and other plugins. Needs the topic to
    match ``[permissions] events.publish``; receiving is declared with ``events.subscribe`` and
    :func:`~plugport.sdk.on_event` handlers."""

    capability = "events"

    async def publish(self, topic: str, payload: Any = None) -> int:
        """Send ``payload`` (JSON-able) on ``topic``; returns how many receivers got it."""
        return int(await self._call("publish", topic, payload))


class MailProxy(CapabilityProxy):
    """``self.api.mail``: email sent by the host through the operator's relay, from the
    operator's address, to the recipients the manifest names (``[permissions] mail.to =
    ["*@example.com", "ops@example.org"]``), at most ``mail.per_hour`` an hour (capped by the
    host)."""

    capability = "mail"

    async def send(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        *,
        html: str | None = None,
        cc: Sequence[str] = (),
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Send a message with a plain ``text`` body (and an ``html`` alternative); returns its
        ``Message-ID``. Every address in ``to`` and ``cc`` must match ``mail.to`` (else
        :class:`~plugport.errors.PermissionDeniedError`); ``headers`` may set ``X-...`` and
        threading headers, never ``From``, ``To`` or the like. Over the hourly limit:
        :class:`~plugport.errors.ResourceLimitExceededError`; the relay refused or is down:
        :class:`~plugport.errors.MailDeliveryError`."""
        kwargs = {
            "html": html,
            "cc": [cc] if isinstance(cc, str) else list(cc),
            "reply_to": reply_to,
            "headers": None if headers is None else dict(headers),
        }
        recipients = to if isinstance(to, str) else list(to)
        return str(await self._transport.call("mail", "send", [recipients, subject, text], kwargs))


class UiProxy(CapabilityProxy):
    """``self.api.ui``: what the plugin shows in the host's UI, always as data the host renders.
    Each call needs its surface in ``[permissions] ui``: ``messages``, ``commands`` or
    ``widgets``."""

    capability = "ui"

    async def message(self, text: str, level: str = "info") -> None:
        """Show ``text`` to the user; ``level`` is ``info``, ``warning`` or ``error``."""
        await self._call("message", text, level)

    async def register_command(self, command_id: str, title: str = "") -> None:
        """Make a command the manifest contributes available now (``ui = ["commands"]``)."""
        await self._call("register_command", command_id, title)

    async def unregister_command(self, command_id: str) -> bool:
        """Withdraw a command registered with :meth:`register_command`."""
        return bool(await self._call("unregister_command", command_id))

    async def invalidate(self, surface_id: str) -> None:
        """Tell the host that a widget, page or view the manifest contributes has changed: the
        pages showing it ask its handler again (``@widget(surface_id)``...). The host pulls
        component trees; this is only the signal to pull now."""
        await self._call("invalidate", surface_id)

    async def update_widget(self, widget_id: str, data: Any = None) -> None:
        """Deprecated since 0.4: the host now asks the ``@widget`` handler for the tree, so
        this only invalidates the widget (``data`` is ignored). Use :meth:`invalidate`."""
        await self._call("update_widget", widget_id, data)

    async def metrics(self, prefix: str = "") -> list[dict[str, Any]]:
        """The host's current metric samples whose name starts with ``prefix``, each
        ``{"name", "labels", "value"}`` (needs ``ui = ["metrics"]``)."""
        return list(await self._call("metrics", prefix))


class ConfigProxy(CapabilityProxy):
    """``self.api.config``: the plugin's settings, as the operator set them, with the defaults
    of the manifest's ``[config]`` schema. Needs ``[permissions] config = true``."""

    capability = "config"

    async def get(self, key: str | None = None, default: Any = None) -> Any:
        """One setting (``default`` when unset), or all of them as a dict when ``key`` is
        ``None``."""
        return await self._call("get", key, default)


class WebhooksProxy(CapabilityProxy):
    """``self.api.webhooks``: POST JSON to a receiver, delivered by the host: persisted before
    ``deliver`` returns, retried with backoff, kept as a dead letter the operator can redeliver.
    Needs the target in ``[permissions] webhooks.deliver = ["https://hooks.example.com/in/"]``;
    never to private addresses; redirects are not followed."""

    capability = "webhooks"

    async def deliver(
        self,
        target: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        sign_with: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a JSON POST of ``payload`` (at most 1 MiB encoded) to ``target`` and return
        the delivery id once it is stored. ``sign_with`` names an ``hmac`` credential: the host
        adds ``X-Plugport-Signature: sha256=<hex>`` over ``"{timestamp}.{body}"`` and
        ``X-Plugport-Timestamp``, without the plugin seeing the key. The same
        ``idempotency_key`` again returns the first delivery's id and sends nothing new."""
        options = {"headers": headers, "sign_with": sign_with, "idempotency_key": idempotency_key}
        return str(
            await self._transport.call(self.capability, "deliver", [target, payload], options)
        )


class TasksProxy(CapabilityProxy):
    """``self.api.tasks``: report progress on the task being processed, and queue follow-up
    tasks. ``submit`` needs the type in ``[permissions] tasks.submit = ["TYPE"]``; the host
    checks the payload against the type's schema before it is queued."""

    capability = "tasks"

    async def progress(
        self, percent: float, message: str = "", *, task_id: str | None = None
    ) -> None:
        """Record how far a task is (0-100) and what it is doing, shown to the operator:
        ``task_id`` defaults to the task the calling ``@task`` handler processes; only the
        plugin's own running tasks take progress."""
        if task_id is None:
            current = CURRENT_TASK.get()
            if current is None:
                raise RuntimeError("api.tasks.progress is for @task handlers: no task is running")
            task_id = current.id
        await self._transport.call(
            self.capability, "progress", [percent, message], {"task_id": task_id}
        )

    async def submit(
        self,
        task_type: str,
        payload: Any = None,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
        parent: str | None = None,
    ) -> str:
        """Queue a task of ``task_type`` (processed by whichever plugin declares it) and
        return its id once it is stored. The same ``idempotency_key`` (or the same value at
        the type's ``idempotency-key``) again returns the first task's id. ``parent``
        defaults to the task the calling ``@task`` handler processes."""
        if parent is None and (current := CURRENT_TASK.get()) is not None:
            parent = current.id
        options = {
            "priority": priority,
            "delay_s": delay_s,
            "idempotency_key": idempotency_key,
            "parent": parent,
        }
        return str(
            await self._transport.call(self.capability, "submit", [task_type, payload], options)
        )


class _BlockingProxy:
    """The same calls for plain (sync) handlers, which the worker runs off the event loop."""

    def __init__(self, proxy: CapabilityProxy, loop: asyncio.AbstractEventLoop) -> None:
        self._proxy = proxy
        self._loop = loop

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is threading.main_thread():
                raise RuntimeError("api.sync is for plain handlers; in async ones use await api")
            current = CURRENT_TASK.get()  # the handler thread's task, for api.tasks

            async def in_context() -> Any:
                CURRENT_TASK.set(current)  # this coroutine's own context: nothing else sees it
                return await target(*args, **kwargs)

            return asyncio.run_coroutine_threadsafe(in_context(), self._loop).result()

        return call


class _Sync:
    def __init__(self, api: Api, loop: asyncio.AbstractEventLoop) -> None:
        for name in CAPABILITIES:
            setattr(self, name, _BlockingProxy(getattr(api, name), loop))


class Api:
    """``self.api``: one typed proxy per capability, awaitable; ``sync`` has the same calls,
    blocking, for plain (non-async) handlers."""

    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.storage = StorageProxy(transport)
        self.net = NetProxy(transport)
        self.events = EventsProxy(transport)
        self.ui = UiProxy(transport)
        self.config = ConfigProxy(transport)
        self.secrets = SecretsProxy(transport)
        self.mail = MailProxy(transport)
        self.webhooks = WebhooksProxy(transport)
        self.tasks = TasksProxy(transport)
        self.sync: Any = _Sync(self, loop) if loop is not None else None
