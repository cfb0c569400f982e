"""``webhooks.deliver``: a plugin hands the host a JSON payload and a target; the host stores it
in the outbox (:mod:`plugport.runtime.outbox`) before answering, then sends it, signs it with an
``hmac`` credential the plugin never sees, retries what may succeed later and keeps the rest as
dead letters the operator can redeliver.

The target passes the checks ``net.fetch`` runs (:func:`check_url` against the hosts of
``webhooks.deliver``, then every address DNS returns through :func:`check_addresses`, the
connection pinned to a checked address) when it is delivered and again at every attempt; the
plugin's ``local_endpoints`` are the only private addresses reachable. Redirects are never
followed. The decisions (answer, backoff, rate, signature) are pure, in :mod:`._delivery_rules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx

from plugport._fetch_rules import (
    FetchPolicy,
    Target,
    check_addresses,
    check_headers,
    check_url,
)
from plugport._permissions import RULES, webhook_target_admitted
from plugport.errors import (
    InvalidInputError,
    NetworkFetchError,
    NotFoundError,
    PermissionDeniedError,
)
from plugport.runtime.activity import Activity
from plugport.runtime.audit import AuditEvent
from plugport.runtime.capabilities._delivery_rules import (
    DELIVERY_HEADER,
    TokenBucket,
    Verdict,
    WebhookOptions,
    check_idempotency_key,
    classify,
    encode_payload,
    next_attempt,
    parse_retry_after,
    signature_headers,
)
from plugport.runtime.capabilities._record import Calls, Capability, Grants, Services
from plugport.runtime.capabilities._resolver import SystemResolver
from plugport.runtime.capabilities.network import PIN_EXTENSION, PinnedTransport, _is_address
from plugport.runtime.capabilities.secrets import secret_value
from plugport.runtime.outbox import Delivery, NewDelivery, SqliteOutbox
from plugport.sdk._api import WebhooksProxy

__all__ = [
    "CAPABILITY",
    "RECORD",
    "AttemptOutcome",
    "DeliveryQueue",
    "Interceptor",
    "WebhookOptions",
    "WebhookService",
    "WebhooksCalls",
    "check_target",
]

CAPABILITY = "webhooks.deliver"
_log = logging.getLogger("plugport.webhooks")
_RESERVED_HEADERS = frozenset({"content-type", "idempotency-key", "user-agent"})
_UNKNOWN_PLUGIN_WAIT_S = 60.0

Answer = tuple[int, dict[str, str]]
Interceptor = Callable[[Delivery, str, list[tuple[str, str]]], Awaitable[Answer]]
"""``(delivery, url, headers) -> (status, response headers)``: answers one plugin's attempts
instead of the network (the testing kit's fake); everything before sending still runs."""


@dataclass(frozen=True)
class AttemptOutcome:
    """One attempt, decided: ``done`` (``status`` answered), ``retry`` at ``at``, ``dead``, or
    ``wait`` until ``at`` without it counting as an attempt (the target host's rate, or a
    plugin not added yet). ``reason`` is for the operator (never the body or the path)."""

    outcome: Literal["done", "retry", "dead", "wait"]
    reason: str = ""
    status: int | None = None
    at: float | None = None


class DeliveryQueue(Protocol):
    """The host's durable task queue, when it keeps and schedules deliveries instead of this
    runtime's own outbox: it stores ``delivery`` (the id it returns is the delivery's) and
    runs :meth:`WebhookService.attempt` for each attempt."""

    async def submit_delivery(self, delivery: NewDelivery) -> str: ...


def _policy(grants: Grants) -> FetchPolicy:
    hosts = tuple(dict.fromkeys(t.partition("/")[0] for t in grants.permissions.webhooks.deliver))
    return FetchPolicy(allowed=hosts, local_endpoints=grants.local_endpoints)


def _fix(url: str) -> str:
    return (
        f"to allow it, add {RULES['webhooks'].manifest_line('deliver', {'target': url})} "
        "under [permissions] in plugport.toml, then reinstall the plugin"
    )


def check_target(grants: Grants, url: str) -> Target:
    """The checked target of a delivery to ``url`` for the plugin ``grants`` is for (no DNS:
    the addresses are checked at each attempt), or :class:`PermissionDeniedError`."""
    plugin = grants.plugin
    if not isinstance(url, str):
        raise InvalidInputError(f"webhooks.deliver: target must be a URL string, not {url!r}")
    try:
        target = check_url(url, _policy(grants), plugin=plugin)
    except PermissionDeniedError as exc:
        raise PermissionDeniedError(plugin, CAPABILITY, exc.reason, _fix(url)) from None
    if target.local:
        return target  # the operator's exact host:port grant (plugport dev --allow-local)
    if target.scheme != "https":
        raise PermissionDeniedError(
            plugin, CAPABILITY, f"webhooks are delivered over https only, not to {url}"
        )
    targets = grants.permissions.webhooks.deliver
    if not webhook_target_admitted(targets, url):
        raise PermissionDeniedError(
            plugin,
            CAPABILITY,
            f"{url} is under none of the granted webhooks.deliver targets ({', '.join(targets)})",
            _fix(url),
        )
    return target


class _UnknownPlugin(Exception):
    """The delivery's plugin is not added to this runtime (yet): the row waits."""


class WebhookService:
    """The host's outbox and its sender: :meth:`deliver` stores (several plugins' deliveries
    arriving together share one commit) and returns once committed; the sender loop
    (:meth:`start`) sends due rows, at most ``max_in_flight`` at once, each target host within
    its token bucket. ``grants_of(plugin)`` is the plugin's current grants (``None``: not added),
    so a narrowed grant stops deliveries already queued."""

    def __init__(
        self,
        outbox: SqliteOutbox,
        options: WebhookOptions,
        services: Services,
        grants_of: Callable[[str], Grants | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.options = options
        self._services = services
        self._grants_of = grants_of
        self._clock = clock
        self._queued: list[tuple[NewDelivery, asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._answered: list[tuple[str, int, AuditEvent, asyncio.Future[None]]] = []
        self._marker: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._buckets: dict[str, TokenBucket] = {}
        self._interceptors: dict[str, Interceptor] = {}
        self._transport: PinnedTransport | None = None
        self._next_prune = 0.0
        self.queue: DeliveryQueue | None = None
        """The host's task queue, when it keeps and retries the deliveries (then this
        service's own outbox and sender loop stay idle)."""

    # --- storing -------------------------------------------------------------------------------

    async def deliver(
        self,
        grants: Grants,
        target: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        sign_with: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        plugin = grants.plugin
        checked = check_target(grants, target)
        body = encode_payload(payload)
        if headers is not None and not isinstance(headers, Mapping):
            raise InvalidInputError("webhooks.deliver: headers must be a dict of strings")
        extra = check_headers(headers, FetchPolicy(allowed=()), plugin=plugin)
        for name, _ in extra:
            if name in _RESERVED_HEADERS or name.startswith("x-plugport-"):
                raise InvalidInputError(
                    f"webhooks.deliver: header {name!r} is set by the host; leave it out"
                )
        key = check_idempotency_key(idempotency_key)
        if sign_with is not None:
            secret_value(self._services.secrets, plugin, sign_with)  # set? say how, now
        if not checked.local:
            await self._addresses(grants, checked)
        delivery = NewDelivery(uuid.uuid4().hex, plugin, target, body, tuple(extra), sign_with, key)
        if self.queue is not None:
            return await self.queue.submit_delivery(delivery)
        return await self._store(delivery)

    async def _store(self, delivery: NewDelivery) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queued.append((delivery, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="plugport-outbox-writer")
        return await future

    async def _flush(self) -> None:
        """Commit what has queued up, in one transaction per batch: while one commits, the
        next batch gathers."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                ids = await asyncio.to_thread(
                    self.outbox.enqueue, [d for d, _ in batch], self._clock()
                )
            except Exception as exc:  # handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), delivery_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(delivery_id)
            self._wake.set()

    # --- sending -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._sender is None and self.queue is None:
            self._transport = PinnedTransport(self._services.net.transport)
            self._sender = asyncio.create_task(self._run(), name="plugport-webhook-sender")

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        for task in list(self._in_flight):
            task.cancel()
        # A cancelled attempt stays 'sending' in the outbox: recovered at the next start.
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    def purge(self, plugin: str) -> int:
        """Forget the plugin's deliveries, dead letters included (uninstall --purge)."""
        return self.outbox.purge(plugin)

    def wake(self) -> None:
        """Look for due deliveries now (after a redeliver)."""
        self._wake.set()

    def intercept(self, plugin: str, interceptor: Interceptor | None) -> None:
        """Answer ``plugin``'s attempts with ``interceptor`` (``None``: the network again)."""
        if interceptor is None:
            self._interceptors.pop(plugin, None)
        else:
            self._interceptors[plugin] = interceptor

    async def _run(self) -> None:
        recovered = await asyncio.to_thread(self.outbox.recover, self._clock())
        if recovered:
            _log.info("resuming %d webhook deliveries interrupted by a stop", recovered)
        options = self.options
        while True:
            self._wake.clear()
            now = self._clock()
            if now >= self._next_prune:
                await self._prune(now)
            free = options.max_in_flight - len(self._in_flight)
            claimed = await asyncio.to_thread(self.outbox.claim_due, now, free) if free > 0 else []
            waiting: list[tuple[str, float]] = []
            for delivery in claimed:
                wait = self._bucket(delivery.target).take(time.monotonic())
                if wait > 0:
                    waiting.append((delivery.id, now + wait))
                    continue
                task = asyncio.create_task(self._attempt(delivery))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            if waiting:
                await asyncio.to_thread(self._postpone, waiting)
            if free > 0 and len(claimed) == free and not waiting:
                continue  # there may be more due: claim again when a slot frees
            timeout = options.poll_s
            if len(self._in_flight) < options.max_in_flight:
                due = await asyncio.to_thread(self.outbox.next_due)
                if due is not None:
                    timeout = min(timeout, max(due - self._clock(), 0.0))
            if timeout > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # lands as the wait ends, and stopping would wait for this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()

    async def _prune(self, now: float) -> None:
        """Forget the ``done`` rows older than ``done_retention_s``; a failure is logged and
        tried again at the next interval (the sender keeps sending)."""
        self._next_prune = now + self.options.prune_every_s
        try:
            removed = await asyncio.to_thread(
                self.outbox.prune_done, now - self.options.done_retention_s
            )
        except sqlite3.Error as exc:
            _log.warning("could not prune delivered webhooks from the outbox: %s", exc)
            return
        if removed:
            _log.info("pruned %d delivered webhooks older than done_retention_s", removed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    def _postpone(self, waiting: Sequence[tuple[str, float]]) -> None:
        now = self._clock()
        for delivery_id, at in waiting:
            self.outbox.retry_at(delivery_id, at, now, attempted=False)

    def _bucket(self, url: str) -> TokenBucket:
        host = (urlsplit(url).hostname or "").lower()
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = self.options.bucket(host)
        return bucket

    async def attempt(self, delivery: Delivery, *, take_token: bool = True) -> AttemptOutcome:
        """One attempt at ``delivery`` (``delivery.attempts``: those made before), sent and
        decided but not stored: what the host's queue runs. Every counted attempt is
        audited (plugin, target host, result; never the body or the path)."""
        now = self._clock()
        if take_token:
            wait = self._bucket(delivery.target).take(time.monotonic())
            if wait > 0:
                return AttemptOutcome("wait", "the target host's rate", at=now + wait)
        verdict, status, retry_after = await self._try(delivery)
        if verdict is None:
            return AttemptOutcome(
                "wait", "the plugin is not added", at=now + _UNKNOWN_PLUGIN_WAIT_S
            )
        attempts = delivery.attempts + 1
        outcome, reason, at = verdict.outcome, verdict.reason, None
        if outcome == "retry":
            at = next_attempt(attempts, now, self.options.backoff, retry_after_s=retry_after)
            if at is None:
                outcome, reason = "dead", f"gave up after {attempts} attempts; last: {reason}"
            else:
                reason = f"{reason}; next attempt in {at - now:.1f} s"
        event = self._audit_event(delivery, attempts, outcome, reason)
        self._services.audit.record(event)
        self._emit(event, outcome)
        return AttemptOutcome(outcome, reason, status, at)

    async def _try(self, delivery: Delivery) -> tuple[Verdict | None, int | None, float | None]:
        """``(verdict, status, retry_after)`` of one send; no verdict: the plugin is unknown."""
        retry_after: float | None = None
        status: int | None = None
        try:
            async with asyncio.timeout(self.options.timeout_ms / 1000):
                status, answer_headers = await self._send(delivery)
            verdict = classify(status)
            retry_after = parse_retry_after(answer_headers.get("retry-after"), self._clock())
        except _UnknownPlugin:
            return None, None, None
        except PermissionDeniedError as exc:
            verdict = Verdict("dead", f"refused: {exc.reason}")
        except NotFoundError as exc:
            verdict = Verdict("dead", str(exc))
        except TimeoutError:
            verdict = classify(None, f"no answer within timeout_ms = {self.options.timeout_ms}")
        except NetworkFetchError as exc:
            verdict = classify(None, exc.reason)
        except httpx.HTTPError as exc:
            verdict = classify(None, f"{type(exc).__name__}: {exc}")
        return verdict, status, retry_after

    async def _attempt(self, delivery: Delivery) -> None:
        verdict, status, retry_after = await self._try(delivery)
        if verdict is None:
            at = self._clock() + _UNKNOWN_PLUGIN_WAIT_S
            await asyncio.to_thread(
                self.outbox.retry_at, delivery.id, at, self._clock(), attempted=False
            )
            return
        await self._settle(delivery, verdict, status, retry_after)

    async def _settle(
        self, delivery: Delivery, verdict: Verdict, status: int | None, retry_after: float | None
    ) -> None:
        attempts = delivery.attempts + 1
        now = self._clock()
        backoff = self.options.backoff
        outcome, reason = verdict.outcome, verdict.reason
        if outcome == "done":
            event = self._audit_event(delivery, attempts, outcome, reason)
            await self._done(delivery.id, status or 0, event)
            self._emit(event, outcome)
            return
        if outcome == "retry":
            at = next_attempt(attempts, now, backoff, retry_after_s=retry_after)
            if at is None:
                outcome, reason = "dead", f"gave up after {attempts} attempts; last: {reason}"
                await asyncio.to_thread(
                    self.outbox.dead, delivery.id, now, status=status, error=reason
                )
            else:
                reason = f"{reason}; next attempt in {at - now:.1f} s"
                await asyncio.to_thread(
                    self.outbox.retry_at, delivery.id, at, now, status=status, error=reason
                )
        else:
            await asyncio.to_thread(self.outbox.dead, delivery.id, now, status=status, error=reason)
        event = self._audit_event(delivery, attempts, outcome, reason)
        self._services.audit.record(event)
        self._emit(event, outcome)

    async def _done(self, delivery_id: str, status: int, event: AuditEvent) -> None:
        """Audit the attempt and mark it done, sharing one audit commit and one outbox commit
        with the others answered meanwhile (a commit per success would halve the rate)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answered.append((delivery_id, status, event, future))
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_done(), name="plugport-outbox-done")
        await future

    async def _mark_done(self) -> None:
        while self._answered:
            batch, self._answered = self._answered, []
            try:
                await asyncio.to_thread(self._commit_done, batch)
            except Exception as exc:  # handed to every waiting attempt
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)

    def _commit_done(self, batch: Sequence[tuple[str, int, AuditEvent, object]]) -> None:
        """The audit rows first, then the outbox's: a host killed between the two sends the
        delivery again (it is still ``sending``), and that attempt is audited too, so no
        attempt is ever missing from the log (one may be there twice)."""
        self._services.audit.record_many([event for _, _, event, _ in batch])
        self.outbox.done_many([(i, s) for i, s, _, _ in batch], self._clock())

    def _audit_event(
        self, delivery: Delivery, attempts: int, outcome: str, reason: str
    ) -> AuditEvent:
        """One audit row per attempt: plugin, target host, result, attempt; never the body,
        the headers or the target's path (a receiver's URL may carry its token)."""
        host = urlsplit(delivery.target).hostname or "?"
        line = (
            f"delivery {delivery.id} to {host}: {outcome} ({reason}); attempt {attempts} of "
            f"{self.options.backoff.max_attempts}"
        )
        return AuditEvent(delivery.plugin, "webhook", line, CAPABILITY)

    def _emit(self, event: AuditEvent, outcome: str) -> None:
        activity = self._services.activity
        if activity.watching("audit"):
            activity.emit(Activity(event.plugin, "audit", "webhook", outcome, event.reason))

    async def _send(self, delivery: Delivery) -> tuple[int, dict[str, str]]:
        grants = self._grants_of(delivery.plugin)
        if grants is None:
            raise _UnknownPlugin(delivery.plugin)
        target = check_target(grants, delivery.target)
        headers = [
            *delivery.headers,
            ("content-type", "application/json"),
            ("user-agent", "Plugport-Webhooks"),
            (DELIVERY_HEADER.lower(), delivery.id),
        ]
        if delivery.idempotency_key is not None:
            headers.append(("idempotency-key", delivery.idempotency_key))
        if delivery.sign_with is not None:
            key = secret_value(self._services.secrets, delivery.plugin, delivery.sign_with)
            signed = signature_headers(key, delivery.body, int(self._clock()))
            headers += [(name.lower(), value) for name, value in signed.items()]
        interceptor = self._interceptors.get(delivery.plugin)
        if interceptor is not None:
            return await interceptor(delivery, target.url, headers)
        if target.local and _is_address(target.host):
            addresses = [target.host]
        else:
            addresses = await self._addresses(grants, target)
        return await self._post(delivery, target, headers, addresses)

    async def _addresses(self, grants: Grants, target: Target) -> list[str]:
        resolver = self._services.net.resolver or SystemResolver()
        url = target.url
        try:
            addresses = await resolver.resolve(target.host, target.port)
        except OSError as exc:
            reason = f"could not resolve {target.host}: {exc}"
            raise NetworkFetchError(grants.plugin, url, reason) from None
        if not addresses:
            raise NetworkFetchError(grants.plugin, url, f"{target.host} has no addresses")
        try:
            check_addresses(target, addresses, _policy(grants), plugin=grants.plugin)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(grants.plugin, CAPABILITY, exc.reason) from None
        return addresses

    async def _post(
        self,
        delivery: Delivery,
        target: Target,
        headers: list[tuple[str, str]],
        addresses: list[str],
    ) -> tuple[int, dict[str, str]]:
        if self._transport is None:
            self._transport = PinnedTransport(self._services.net.transport)
        seconds = self.options.timeout_ms / 1000
        failures = []
        for address in addresses:
            request = httpx.Request(
                "POST",
                target.url,
                headers=[*headers, ("accept-encoding", "identity")],
                content=delivery.body,
                extensions={
                    PIN_EXTENSION: address,
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), seconds),
                },
            )
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.ConnectError as exc:
                failures.append(f"{address}: {exc}")  # nothing was sent: the next is safe
                continue
            try:
                return response.status_code, {k.lower(): v for k, v in response.headers.items()}
            finally:
                await response.aclose()
        raise NetworkFetchError(
            delivery.plugin, target.url, f"could not connect ({'; '.join(failures)})"
        )


class WebhooksCalls(Calls):
    """``api.webhooks.*`` for one plugin: deliveries through the host's outbox."""

    async def deliver(
        self,
        target: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        sign_with: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        service = self.services.webhooks
        if service is None:
            raise InvalidInputError("this runtime has no webhook outbox")
        return await service.deliver(
            self.grants,
            target,
            payload,
            headers=headers,
            sign_with=sign_with,
            idempotency_key=idempotency_key,
        )


def _purge(services: Services, plugin: str) -> None:
    if services.webhooks is not None:
        services.webhooks.purge(plugin)


RECORD = Capability("webhooks", RULES["webhooks"], WebhooksCalls, WebhooksProxy, _purge)
