"""What ``self.api`` is inside a plugin: proxies that turn each capability use into a request
the host checks. Nothing here reaches storage, the network or the UI by itself."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CAPABILITIES", "Api", "CapabilityProxy", "Response", "Transport"]

CAPABILITIES = ("config", "events", "net", "storage", "ui")


class Transport(Protocol):
    """How a proxy reaches the host; the worker supplies the real one, tests a fake."""

    async def call(
        self, capability: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any: ...


class CapabilityProxy:
    """``await self.api.storage.get("k")`` sends ``storage.get("k")`` to the host."""

    def __init__(self, transport: Transport, capability: str) -> None:
        self._transport = transport
        self._capability = capability

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._transport.call(self._capability, method, list(args), kwargs)

        call.__name__ = f"{self._capability}.{method}"
        setattr(self, method, call)  # built once per method, not on every call
        return call


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


class _NetProxy(CapabilityProxy):
    async def fetch(self, url: str, **options: Any) -> Response:
        """``method``, ``headers``, ``body`` (bytes) or ``json``; the host checks the URL
        against ``permissions.network`` on every hop."""
        reply = await self._transport.call("net", "fetch", [url], options)
        return Response(**reply)


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
            return asyncio.run_coroutine_threadsafe(target(*args, **kwargs), self._loop).result()

        return call


class _Sync:
    def __init__(self, api: Api, loop: asyncio.AbstractEventLoop) -> None:
        for name in CAPABILITIES:
            setattr(self, name, _BlockingProxy(getattr(api, name), loop))


class Api:
    """``storage``, ``net``, ``events``, ``ui``, ``config``: awaitable; ``sync``: blocking."""

    def __init__(self, transport: Transport, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.storage = CapabilityProxy(transport, "storage")
        self.net = _NetProxy(transport, "net")
        self.events = CapabilityProxy(transport, "events")
        self.ui = CapabilityProxy(transport, "ui")
        self.config = CapabilityProxy(transport, "config")
        self.sync: Any = _Sync(self, loop) if loop is not None else None
