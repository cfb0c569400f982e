"""The socket channel: frames pushed to a listener whatever the reads look like, the frame limit
checked from the header, a hostile peer's garbage ending the channel with the reason, and
writers held (not buffered without bound) while the peer does not read."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from plugport.runtime import protocol
from plugport.runtime.channel import ChannelClosedError, SocketChannel, open_socket_channel
from plugport.runtime.protocol import Call, FrameError, FrameTooLargeError, Message, Result


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lost: list[FrameError | None] = []
        self.changed = asyncio.Event()

    def message_received(self, message: Message) -> None:
        self.messages.append(message)
        self.changed.set()

    def channel_lost(self, error: FrameError | None) -> None:
        self.lost.append(error)
        self.changed.set()

    async def until(self, predicate: object, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def _pair() -> tuple[SocketChannel, socket.socket]:
    ours, theirs = socket.socketpair()
    return await open_socket_channel(ours), theirs


def _frames(*messages: Message) -> bytes:
    return b"".join(protocol.encode(m) for m in messages)


def test_frames_arrive_whole_split_and_batched() -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        recorder = Recorder()
        channel.listen(recorder)
        calls = [Call(i, "hook", "greet", kwargs={"name": "x" * i}) for i in range(1, 6)]
        peer.sendall(_frames(calls[0]))  # one whole frame in one read
        await recorder.until(lambda: len(recorder.messages) == 1)
        data = _frames(calls[1])
        peer.sendall(data[:2])  # a header split in two
        await asyncio.sleep(0.01)
        peer.sendall(data[2:7])
        await asyncio.sleep(0.01)
        peer.sendall(data[7:])
        await recorder.until(lambda: len(recorder.messages) == 2)
        peer.sendall(_frames(*calls[2:]))  # three frames in one read
        await recorder.until(lambda: len(recorder.messages) == 5)
        assert recorder.messages == calls
        assert recorder.lost == []
        peer.close()
        await recorder.until(lambda: recorder.lost == [None])
        with pytest.raises(ChannelClosedError):
            await channel.send(Result(1, None))

    asyncio.run(scenario())


def test_frames_sent_before_listening_and_before_the_peer_left_are_all_delivered() -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        peer.sendall(_frames(Result(1, "a"), Result(2, "b")))
        peer.close()
        await asyncio.sleep(0.05)  # EOF is read before anyone listens
        recorder = Recorder()
        channel.listen(recorder)
        assert recorder.messages == [Result(1, "a"), Result(2, "b")]
        assert recorder.lost == [None]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (struct.pack("!I", protocol.MAX_FRAME_BYTES + 1), FrameTooLargeError),
        (struct.pack("!I", 3) + b"\xc1\xc1\xc1", FrameError),  # not msgpack
        (protocol.HEADER.pack(2) + b"\x81\xa1", FrameError),  # truncated map inside a frame
    ],
    ids=["over-the-limit", "not-msgpack", "not-a-message"],
)
def test_a_peer_that_breaks_the_protocol_ends_the_channel_with_the_reason(
    data: bytes, error: type[FrameError]
) -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        recorder = Recorder()
        channel.listen(recorder)
        peer.sendall(data + _frames(Result(9, "after")))
        await recorder.until(lambda: recorder.lost)
        await asyncio.sleep(0.02)
        assert recorder.messages == []  # nothing after the bad frame is believed
        assert len(recorder.lost) == 1
        assert isinstance(recorder.lost[0], error)
        with pytest.raises(ChannelClosedError):
            await channel.send(Result(1, None))
        peer.close()

    asyncio.run(scenario())


def test_a_frame_over_the_limit_is_refused_from_its_header_before_its_body_comes() -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        recorder = Recorder()
        channel.listen(recorder)
        peer.sendall(struct.pack("!I", 2**31))  # announces 2 GiB; nothing follows
        await recorder.until(lambda: recorder.lost)
        assert isinstance(recorder.lost[0], FrameTooLargeError)
        peer.close()

    asyncio.run(scenario())


def test_a_writer_waits_while_the_peer_does_not_read_and_goes_on_when_it_does() -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        channel.listen(Recorder())
        big = Result(1, "x" * 256 * 1024)
        sends = asyncio.ensure_future(_send_many(channel, big, 64))  # 16 MiB, peer not reading
        await asyncio.sleep(0.2)
        assert not sends.done()  # held by flow control, not buffered without bound
        peer.setblocking(False)
        received = 0
        async with asyncio.timeout(10):
            while not sends.done() or received < 64 * 256 * 1024:
                try:
                    chunk = peer.recv(1 << 20)
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                    continue
                received += len(chunk)
        await sends
        peer.close()

    asyncio.run(scenario())


def test_a_writer_held_by_flow_control_learns_when_the_channel_closes() -> None:
    async def scenario() -> None:
        channel, peer = await _pair()
        channel.listen(Recorder())
        sends = asyncio.ensure_future(_send_many(channel, Result(1, "x" * 256 * 1024), 64))
        await asyncio.sleep(0.1)
        assert not sends.done()
        channel.close()
        with pytest.raises(ChannelClosedError):
            await asyncio.wait_for(sends, 5)
        peer.close()

    asyncio.run(scenario())


async def _send_many(channel: SocketChannel, message: Message, count: int) -> None:
    for _ in range(count):
        await channel.send(message)
