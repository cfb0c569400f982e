"""Frames: typed, size-capped before reading, never pickle."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from typing import Any

import msgspec
import pytest

from plugport.runtime import protocol
from plugport.runtime.channel import ChannelClosedError, MemoryChannel
from plugport.runtime.protocol import Call, Failure, FrameError, FrameTooLargeError, Result


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
    with pytest.raises(FrameTooLargeError, match="over the") as caught:
        protocol.encode(big)
    assert caught.value.limit == "max_frame_bytes"
    with pytest.raises(FrameTooLargeError, match="over the"):
        protocol.frame_length(protocol.HEADER.pack(protocol.MAX_FRAME_BYTES + 1))


def test_a_frame_exactly_at_the_limit_is_sent() -> None:
    overhead = len(protocol.encode(Result(1, b""))) - protocol.HEADER.size
    frame = protocol.encode(Result(1, b"x" * (protocol.MAX_FRAME_BYTES - overhead - 4)))
    assert protocol.frame_length(frame[:4]) == len(frame) - 4 <= protocol.MAX_FRAME_BYTES


# Under an address-space limit msgspec's encode() crashed the process (SIGSEGV) when its output
# buffer could not grow; a result too big for memory must be an error instead.
OUT_OF_MEMORY = """
import resource, sys
from plugport.runtime import protocol
resource.setrlimit(resource.RLIMIT_AS, (300 * 2**20, 300 * 2**20))
value = {"bytes": b"x" * (120 * 2**20), "list": ["y" * 1024] * (280 * 1024)}[sys.argv[1]]
try:
    protocol.encode(protocol.Result(1, value))
except protocol.FrameTooLargeError as exc:
    print(exc.limit, exc)
"""


@pytest.mark.parametrize("shape", ["bytes", "list"])
def test_a_message_too_big_for_memory_is_an_error_not_a_crash(shape: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_MEMORY, shape],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = f"max_frame_bytes frame of more than {protocol.MAX_FRAME_BYTES} bytes is over"
    assert done.stdout.startswith(expected)


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("x" * 10, 11, True),  # a field tag and a string
        ("x" * 10, 20, False),
        ([b"ab"] * 3, 9, True),
        ({"k": ["v" * 100]}, 100, True),
        ({"k": ["v" * 100]}, 200, False),
        (list(range(10**6)), 1000, True),  # stops early: holds under 1000 items at a time
    ],
)
def test_the_lower_bound_used_after_a_memory_error(value: Any, size: int, expected: bool) -> None:
    assert protocol._at_least(Result(1, value), size) is expected


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
