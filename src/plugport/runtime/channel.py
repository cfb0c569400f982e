"""The RPC channel between host and worker: a small interface, a socket implementation and an
in-memory fake (so broker and hook logic can be tested without processes).

Frames are *pushed* to a listener as they arrive, in the loop iteration that read them: no
reader task, no future per frame. A round trip then wakes each side's event loop once for the
frame, which is most of what separates a call from a raw socket echo."""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol, cast

from plugport.runtime import protocol
from plugport.runtime.protocol import FrameError, Message

__all__ = [
    "Channel",
    "ChannelClosedError",
    "Listener",
    "MemoryChannel",
    "SocketChannel",
    "open_socket_channel",
]


class ChannelClosedError(Exception):
    """The other side went away (exited, crashed or closed its end)."""


class Listener(Protocol):
    """What a channel hands frames to. Both methods run on the event loop, never re-entrantly."""

    def message_received(self, message: Message) -> None: ...

    def channel_lost(self, error: FrameError | None) -> None:
        """The channel ended: ``None`` when the peer closed or went away, a
        :class:`FrameError` when it sent something that is not a frame (then it is closed)."""


class Channel(Protocol):
    def listen(self, listener: Listener) -> None:
        """Start handing frames to ``listener``; frames that came before wait for it."""

    async def send(self, message: Message) -> None:
        """Queue one frame; waits only while the peer is not reading (flow control)."""

    def send_nowait(self, message: Message) -> bool:
        """Queue one frame now, unless flow control holds writes back (False: nothing was
        queued; use :meth:`send`). Frames sent this way keep their order with the others."""

    def close(self) -> None: ...


class SocketChannel(asyncio.Protocol):
    """Length-prefixed frames over a stream socket (a Unix socketpair in practice).

    A frame's length is checked against :data:`protocol.MAX_FRAME_BYTES` from its header,
    before its body is buffered, so a hostile peer cannot make this side hold more than one
    frame plus one read."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._listener: Listener | None = None
        self._ended = False  # the transport is gone (EOF, an error, or our close)
        self._broken_by: FrameError | None = None  # the peer sent something not a frame
        self._told = False  # the listener has heard channel_lost
        self._paused = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._broken_by is not None:
            return
        if self._listener is None:
            self._buffer += data
            return
        buffer = self._buffer
        if not buffer:  # the common case: one whole frame in one read, decoded without a copy
            size = len(data)
            if size >= protocol.HEADER.size:
                try:
                    length = protocol.frame_length(data[: protocol.HEADER.size])
                except FrameError as exc:
                    self._broken(exc)
                    return
                if size == protocol.HEADER.size + length:
                    self._deliver(memoryview(data)[protocol.HEADER.size :])
                    return
        buffer += data
        self._drain_buffer()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._wake_writers(ChannelClosedError("channel closed"))
        self._tell_lost()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writers(None)

    # --- Channel ----------------------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        if self._listener is not None:
            raise RuntimeError("the channel already has a listener")
        self._listener = listener
        self._drain_buffer()  # frames that came first, even from a peer already gone
        if self._ended:
            self._tell_lost()

    async def send(self, message: Message) -> None:
        data = protocol.encode(message)
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ChannelClosedError("channel closed")
        transport.write(data)
        if self._paused:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def send_nowait(self, message: Message) -> bool:
        if self._paused:
            return False
        data = protocol.encode(message)
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ChannelClosedError("channel closed")
        transport.write(data)
        return True

    async def flushed(self, timeout_s: float = 1.0) -> None:
        """Wait (briefly) until what was sent has left this process: a worker about to
        ``_exit`` must not lose its last frame in a buffer."""
        transport = self._transport
        deadline = asyncio.get_running_loop().time() + timeout_s
        while transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size() == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.001)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._wake_writers(ChannelClosedError("channel closed"))

    # --- inside ----------------------------------------------------------------------------

    def _drain_buffer(self) -> None:
        buffer = self._buffer
        header = protocol.HEADER.size
        offset = 0
        try:
            while (
                self._listener is not None
                and self._broken_by is None
                and len(buffer) - offset >= header
            ):
                length = protocol.frame_length(bytes(buffer[offset : offset + header]))
                end = offset + header + length
                if len(buffer) < end:
                    break
                body = bytes(buffer[offset + header : end])
                offset = end
                self._deliver(body)
        except FrameError as exc:
            self._broken(exc)
            return
        finally:
            del buffer[:offset]

    def _deliver(self, body: bytes | memoryview) -> None:
        try:
            message = protocol.decode(body)
        except FrameError as exc:
            self._broken(exc)
            return
        if self._listener is not None:
            self._listener.message_received(message)

    def _broken(self, error: FrameError) -> None:
        """The peer sent something that is not a frame: stop reading it, close, and say why."""
        if self._broken_by is not None:
            return
        self._broken_by = error
        self._buffer.clear()
        if self._transport is not None:
            self._transport.close()
        self._tell_lost()

    def _tell_lost(self) -> None:
        if self._listener is not None and not self._told:
            self._told = True
            self._listener.channel_lost(self._broken_by)

    def _wake_writers(self, error: Exception | None) -> None:
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)


async def open_socket_channel(sock: object) -> SocketChannel:
    """A :class:`SocketChannel` over a connected Unix stream socket (taken over)."""
    loop = asyncio.get_running_loop()
    _, channel = await loop.create_unix_connection(SocketChannel, sock=sock)  # type: ignore[arg-type]
    return channel


class MemoryChannel:
    """One end of an in-process pair; frames are still encoded so limits apply the same.
    ``receive()`` reads frames one at a time for tests that play the other side by hand;
    ``listen()`` pushes them as the socket channel does."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._peer: MemoryChannel | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def pair(cls) -> tuple[MemoryChannel, MemoryChannel]:
        a, b = cls(), cls()
        a._peer, b._peer = b, a
        return a, b

    async def send(self, message: Message) -> None:
        self.send_nowait(message)

    def send_nowait(self, message: Message) -> bool:
        if self._peer is None:
            raise ChannelClosedError("closed")
        data = protocol.encode(message)
        self._peer._inbox.put_nowait(bytes(data[protocol.HEADER.size :]))
        return True

    async def receive(self) -> Message:
        body = await self._inbox.get()
        if body is None:
            raise ChannelClosedError("closed")
        return protocol.decode(body)

    def listen(self, listener: Listener) -> None:
        async def pump() -> None:
            while True:
                try:
                    message = await self.receive()
                except ChannelClosedError:
                    listener.channel_lost(None)
                    return
                except FrameError as exc:
                    self.close()
                    listener.channel_lost(exc)
                    return
                listener.message_received(message)

        self._pump = asyncio.ensure_future(pump())

    def close(self) -> None:
        if self._peer is not None:
            self._peer._inbox.put_nowait(None)
            self._peer._peer = None
        self._peer = None
        self._inbox.put_nowait(None)
