"""The host<->worker wire format: length-prefixed msgpack frames of typed messages.

Typed structs decoded with msgspec mean a worker can only ever send one of these shapes, never a
pickle; every frame is capped in size before it is read, so a hostile worker cannot make the
host allocate more than :data:`MAX_FRAME_BYTES`.
"""

from __future__ import annotations

import struct
from itertools import chain, islice
from typing import Any

import msgspec

__all__ = [
    "HEADER",
    "MAX_FRAME_BYTES",
    "Call",
    "CapabilityCall",
    "Failure",
    "FrameError",
    "FrameTooLargeError",
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
    import_paths: tuple[str, ...] = ()  # wheel-store entries: sys.path after code_dir, read-only


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
    """An exception, by class name and message, never by object. ``traceback`` holds the
    plugin's own frames (paths relative to its code dir), what users are shown;
    ``full_traceback`` every frame, for the host's log only."""

    id: int
    type: str
    message: str
    traceback: str = ""
    details: dict[str, Any] = {}
    full_traceback: str = ""


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


class FrameTooLargeError(FrameError):
    """A frame over :data:`MAX_FRAME_BYTES`; ``limit`` names the setting for the error the
    plugin or the host is shown."""

    limit = "max_frame_bytes"

    def __init__(self, size: str) -> None:
        super().__init__(f"frame of {size} bytes is over the {MAX_FRAME_BYTES} byte limit")


def encode(message: Message) -> bytearray:
    """One frame: a 4-byte big-endian length, then the msgpack body.

    ``encode_into`` a bytearray rather than ``encode``: msgspec's ``encode`` crashes the process
    (SIGSEGV) when growing its output fails under an address-space limit, where ``encode_into``
    raises :class:`MemoryError`. That error is then told apart: a message that could never be
    a frame is :class:`FrameTooLargeError`, anything else really is out of memory."""
    frame = bytearray(HEADER.size)
    try:
        _encoder.encode_into(message, frame, HEADER.size)
    except RecursionError:
        raise FrameError("the value is nested too deeply to send") from None
    except MemoryError:
        del frame
        if _at_least(message, MAX_FRAME_BYTES + 1):
            raise FrameTooLargeError(f"more than {MAX_FRAME_BYTES}") from None
        raise
    length = len(frame) - HEADER.size
    if length > MAX_FRAME_BYTES:
        raise FrameTooLargeError(str(length))
    HEADER.pack_into(frame, 0, length)
    return frame  # a bytearray: bytes-like for every writer, and one copy fewer per frame


def frame_length(header: bytes) -> int:
    """The body length announced by a header, refused before reading when over the limit."""
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameTooLargeError(str(length))
    return int(length)


def decode(body: bytes | memoryview) -> Message:
    try:
        message: Message = _decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise FrameError(f"malformed frame: {exc}") from None
    except RecursionError:  # msgspec's own depth guard: a hostile frame nested 10^5 deep
        raise FrameError("malformed frame: nested too deeply") from None
    return message


def _at_least(message: Message, size: int) -> bool:
    """Whether ``message`` encodes to at least ``size`` bytes, from a lower bound (every item
    takes a byte, a string or bytes its length) that stops once it gets there. Items still to
    look at count too, so the walk holds fewer than ``size`` of them: it runs right after a
    MemoryError and must not need much memory itself."""
    total = 0
    stack: list[Any] = [getattr(message, name) for name in message.__struct_fields__]
    while stack:
        if total + len(stack) >= size:
            return True
        item = stack.pop()
        total += 1
        room = size - total - len(stack)
        if isinstance(item, str | bytes | bytearray | memoryview):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(islice(chain.from_iterable(item.items()), room))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(islice(item, room))
        elif isinstance(item, msgspec.Struct):
            stack.extend(islice((getattr(item, f) for f in item.__struct_fields__), room))
    return total >= size
