"""Frames: typed, size-capped before reading, never pickle."""

from __future__ import annotations

import asyncio
import pickle

import msgspec
import pytest

from plugport.runtime import protocol
from plugport.runtime.channel import ChannelClosedError, MemoryChannel
from plugport.runtime.protocol import Call, Failure, FrameError, Result


def test_round_trip_every_message() -> None:
    messages = [
        protocol.Ready(1, [protocol.HandlerInfo("hook", "greet", "greet", 3)], {"seccomp": "on"}),
        Call(1, "hook", "greet", ["Ada"], {"loud": True}),
        protocol.CapabilityCall(2, "storage", "get", ["k"], {}),
        Result(1, {"nested": [1, 2.5, None, "x", b"raw"]}, 42),
        Failure(1, "ValueError", "bad", "tb", {"capability": "net.fetch"}),
        protocol.Ping(3),
        protocol.Pong(3, 1024, 5),
        protocol.Log("info", "hello", {"k": 1}),
        protocol.Shutdown(4, 100),
    ]
    for message in messages:
        frame = protocol.encode(message)
        assert protocol.frame_length(frame[:4]) == len(frame) - 4
        assert protocol.decode(frame[4:]) == message


def test_oversized_frames_refused_both_ways() -> None:
    big = Result(1, "x" * (protocol.MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameError, match="over the"):
        protocol.encode(big)
    with pytest.raises(FrameError, match="over the"):
        protocol.frame_length(protocol.HEADER.pack(protocol.MAX_FRAME_BYTES + 1))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        msgspec.msgpack.encode({"t": "call"}),  # missing fields
        msgspec.msgpack.encode({"t": "exec", "id": 1}),  # unknown message type
        msgspec.msgpack.encode({"t": "call", "id": "1", "kind": "hook", "name": "x"}),
        pickle.dumps(Call(1, "hook", "x")),  # pickle is never accepted
    ],
)
def test_malformed_frames(body: bytes) -> None:
    with pytest.raises(FrameError, match="malformed frame"):
        protocol.decode(body)


def test_memory_channel_pair() -> None:
    async def scenario() -> None:
        host, worker = MemoryChannel.pair()
        await host.send(Call(1, "hook", "greet"))
        assert await worker.receive() == Call(1, "hook", "greet")
        worker.close()
        with pytest.raises(ChannelClosedError):
            await host.receive()
        with pytest.raises(ChannelClosedError):
            await host.send(Call(2, "hook", "greet"))

    asyncio.run(scenario())
