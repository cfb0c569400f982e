"""The host<->worker wire format: length-prefixed msgpack frames of typed messages.

Typed structs decoded with msgspec mean a worker can only ever send one of these shapes, never a
pickle; every frame is capped in size before it is read, so a hostile worker cannot make the
host allocate more than :data:`MAX_FRAME_BYTES`.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

__all__ = [
    "HEADER",
    "MAX_FRAME_BYTES",
    "Call",
    "CapabilityCall",
    "Failure",
    "FrameError",
    "HandlerInfo",
    "Log",
    "Message",
    "Ping",
    "Pong",
    "Ready",
    "Result",
    "Shutdown",
    "WorkerSpec",
    "decode",
    "encode",
    "frame_length",
]

MAX_FRAME_BYTES = 4 * 1024 * 1024
HEADER = struct.Struct("!I")


class _Message(msgspec.Struct, frozen=True, tag_field="t"):
    """Every frame carries its message type in the short field ``t``."""


class WorkerSpec(msgspec.Struct, frozen=True):
    """Everything a fresh worker needs to sandbox itself and load one plugin."""

    plugin: str
    code_dir: str
    data_dir: str
    entry: str
    memory_mb: int
    cpu_seconds: int
    max_concurrency: int
    sandbox: str = "strict"  # "strict" or "best-effort"
    max_file_bytes: int = 64 * 1024 * 1024  # RLIMIT_FSIZE: no single file in data_dir larger
    keep_stdio: bool = False  # development only: let the plugin's prints reach the terminal
    uid: int | None = None  # a root host's unprivileged uid (and gid) for this plugin
    gid: int | None = None
    data_volume: str = ""  # the data dir's ext4 image, mounted by the zygote ("" = none)
    data_quota_bytes: int = 0  # the volume's quota, reported by the worker's quota layer
    without_layers: tuple[str, ...] = ()  # the attack suite only: layers to leave out


class HandlerInfo(msgspec.Struct, frozen=True):
    """A handler the worker found on the plugin class: ``kind`` hook, command or event."""

    kind: str
    name: str
    attribute: str
    priority: int | None = None


class Ready(_Message, tag="ready", frozen=True):
    """First frame from a worker: it is sandboxed, the plugin is loaded and initialized."""

    pid: int
    handlers: list[HandlerInfo]
    sandbox: dict[str, str]


class Call(_Message, tag="call", frozen=True):
    """Host -> worker: run a handler. ``kind`` is hook, command or event."""

    id: int
    kind: str
    name: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}


class CapabilityCall(_Message, tag="cap", frozen=True):
    """Worker -> host: use a capability; the host checks the grant on every one."""

    id: int
    capability: str
    method: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}


class Result(_Message, tag="result", frozen=True):
    """The answer to a Call (worker -> host) or a CapabilityCall (host -> worker)."""

    id: int
    value: Any = None
    elapsed_us: int = 0


class Failure(_Message, tag="failure", frozen=True):
    """An exception, by class name and message, never by object."""

    id: int
    type: str
    message: str
    traceback: str = ""
    details: dict[str, Any] = {}


class Ping(_Message, tag="ping", frozen=True):
    id: int


class Pong(_Message, tag="pong", frozen=True):
    id: int
    rss_kb: int = 0
    cpu_ms: int = 0


class Log(_Message, tag="log", frozen=True):
    level: str
    message: str
    fields: dict[str, Any] = {}


class Shutdown(_Message, tag="shutdown", frozen=True):
    """Host -> worker: call cleanup() and exit; the host kills the worker after the deadline."""

    id: int
    deadline_ms: int = 2000


Message = Ready | Call | CapabilityCall | Result | Failure | Ping | Pong | Log | Shutdown

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


class FrameError(Exception):
    """A frame that breaks the protocol: too large, truncated or not a known message."""


def encode(message: Message) -> bytes:
    """One frame: a 4-byte big-endian length, then the msgpack body."""
    try:
        body = _encoder.encode(message)
    except RecursionError:
        raise FrameError("the value is nested too deeply to send") from None
    if len(body) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(body)} bytes is over the {MAX_FRAME_BYTES} byte limit")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length announced by a header, refused before reading when over the limit."""
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {length} bytes is over the {MAX_FRAME_BYTES} byte limit")
    return int(length)


def decode(body: bytes) -> Message:
    try:
        message: Message = _decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise FrameError(f"malformed frame: {exc}") from None
    except RecursionError:  # msgspec's own depth guard: a hostile frame nested 10^5 deep
        raise FrameError("malformed frame: nested too deeply") from None
    return message
