"""Host-side DNS for ``net.fetch``: a one-method interface, the system resolver and an
in-memory fake (STYLE rule 3)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["Resolver", "StaticResolver", "SystemResolver"]


class Resolver(Protocol):
    """Host-side DNS: every address a name has, each of which the broker checks."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), without blocking the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class StaticResolver:
    """An in-memory resolver (name -> addresses) for tests and fixed deployments; an unknown
    name fails the way DNS does. ``calls`` records every lookup."""

    def __init__(self, mapping: Mapping[str, Sequence[str]]) -> None:
        self._mapping = {name.lower().rstrip("."): list(addrs) for name, addrs in mapping.items()}
        self.calls: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        try:
            return list(self._mapping[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the table") from None
