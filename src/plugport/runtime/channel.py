"""The RPC channel between host and worker: two methods, a socket implementation and an
in-memory fake (so broker and hook logic can be tested without processes)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from plugport.runtime import protocol
from plugport.runtime.protocol import Message

__all__ = ["Channel", "ChannelClosedError", "MemoryChannel", "StreamChannel"]


class ChannelClosedError(Exception):
    """The other side went away (exited, crashed or closed its end)."""


class Channel(Protocol):
    async def send(self, message: Message) -> None: ...
    async def receive(self) -> Message: ...
    def close(self) -> None: ...


class StreamChannel:
    """Frames over an asyncio stream pair (a Unix socket in practice)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, message: Message) -> None:
        data = protocol.encode(message)
        # write() queues the whole frame at once, so concurrent senders never interleave, and
        # drain() accepts several waiters: no lock on the hot path.
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosedError(str(exc)) from None

    async def receive(self) -> Message:
        try:
            header = await self._reader.readexactly(protocol.HEADER.size)
            length = protocol.frame_length(header)
            return protocol.decode(await self._reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosedError(str(exc) or "channel closed") from None

    def close(self) -> None:
        self._writer.close()


class MemoryChannel:
    """One end of an in-process pair; frames are still encoded so limits apply the same."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._peer: MemoryChannel | None = None

    @classmethod
    def pair(cls) -> tuple[MemoryChannel, MemoryChannel]:
        a, b = cls(), cls()
        a._peer, b._peer = b, a
        return a, b

    async def send(self, message: Message) -> None:
        if self._peer is None:
            raise ChannelClosedError("closed")
        data = protocol.encode(message)
        self._peer._inbox.put_nowait(data[protocol.HEADER.size :])

    async def receive(self) -> Message:
        body = await self._inbox.get()
        if body is None:
            raise ChannelClosedError("closed")
        return protocol.decode(body)

    def close(self) -> None:
        if self._peer is not None:
            self._peer._inbox.put_nowait(None)
            self._peer._peer = None
        self._peer = None
        self._inbox.put_nowait(None)
