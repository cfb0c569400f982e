"""Each plugin's log lines, kept in its host home (``logs/<plugin>.jsonl``) so ``plugport logs``
shows what ``self.log`` said in another process.

The rule it protects: a chatty plugin cannot fill the disk. A file is capped at ``max_bytes``
and then rotated once (to ``.1``, replacing the previous one), so a plugin holds at most twice
the cap. The writer listens on the runtime's activity feed, on the event loop: each line is one
``write`` to a descriptor kept open (no buffering to lose, no thread), after the process's own
rate limit (``PluginProcess``, 50 lines a second) has already applied.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from plugport.runtime.activity import Activity

__all__ = ["DEFAULT_MAX_BYTES", "LogRecord", "PluginLogs"]

DEFAULT_MAX_BYTES = 1024 * 1024
"""One file's cap (1 MiB); with its one rotation a plugin keeps at most 2 MiB of log."""
_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class LogRecord:
    """One line a plugin logged: ``at`` in epoch seconds, ``level`` as the plugin gave it."""

    at: float
    level: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"at": self.at, "level": self.level, "message": self.message}
        return json.dumps(data | {"fields": self.fields}, default=str, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> LogRecord | None:
        """None for a line that is not a record (a torn last line after a crash)."""
        try:
            data = json.loads(line)
            return cls(
                float(data["at"]),
                str(data["level"]),
                str(data["message"]),
                dict(data.get("fields") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


class PluginLogs:
    """The ``logs`` directory of a host home: the writer (:meth:`write`, an activity listener)
    and the readers (:meth:`tail`, :meth:`follow`)."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        self.directory = directory
        self.max_bytes = max_bytes
        self._open: dict[str, tuple[int, int]] = {}  # plugin -> (fd, size)

    def path(self, plugin: str) -> Path:
        return self.directory / f"{plugin}{_SUFFIX}"

    def rotated(self, plugin: str) -> Path:
        return self.directory / f"{plugin}{_SUFFIX}.1"

    # --- writing ------------------------------------------------------------------------------

    def write(self, activity: Activity) -> None:
        """The activity listener: a ``log`` activity becomes a line; anything else is ignored."""
        if activity.kind != "log":
            return
        record = LogRecord(activity.at, activity.name, activity.detail, dict(activity.fields))
        self.append(activity.plugin, record)

    def append(self, plugin: str, record: LogRecord) -> None:
        data = (record.to_json() + "\n").encode()
        fd, size = self._open.get(plugin) or self._open_file(plugin)
        if size and size + len(data) > self.max_bytes:
            os.close(fd)
            os.replace(self.path(plugin), self.rotated(plugin))
            fd, size = self._open_file(plugin)
        os.write(fd, data)
        self._open[plugin] = (fd, size + len(data))

    def _open_file(self, plugin: str) -> tuple[int, int]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path(plugin), flags, 0o600)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line torn by a crash: end it
            size += os.write(fd, b"\n")
        return fd, size

    def close(self) -> None:
        for fd, _ in self._open.values():
            os.close(fd)
        self._open.clear()

    def purge(self, plugin: str) -> None:
        """Delete the plugin's log files (``uninstall --purge``)."""
        opened = self._open.pop(plugin, None)
        if opened is not None:
            os.close(opened[0])
        for path in (self.path(plugin), self.rotated(plugin)):
            path.unlink(missing_ok=True)

    # --- reading ------------------------------------------------------------------------------

    def exists(self, plugin: str) -> bool:
        return self.path(plugin).is_file() or self.rotated(plugin).is_file()

    def tail(self, plugin: str, lines: int) -> list[LogRecord]:
        """The last ``lines`` records, oldest first, across the rotation."""
        last: deque[LogRecord] = deque(maxlen=max(lines, 0))
        for path in (self.rotated(plugin), self.path(plugin)):
            with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as file:
                for line in file:
                    record = LogRecord.from_json(line)
                    if record is not None:
                        last.append(record)
        return list(last)

    def follow(self, plugin: str, *, poll_s: float = 0.2) -> Iterator[LogRecord]:
        """New records as they are written, forever (the caller stops on Ctrl-C). Starts at the
        current end; a rotation (the file replaced by a new one) is noticed by its inode and
        the rest of the old file is read first, so no line is lost across it. (Two rotations
        within one ``poll_s`` would lose the middle file: 1 MiB in 0.2 s, far past the rate
        limit on a plugin's log.)"""
        path = self.path(plugin)
        file = _open_at(path, end=True)
        pending = ""
        try:
            while True:
                chunk = file.read() if file is not None else ""
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    for line in complete:
                        record = LogRecord.from_json(line)
                        if record is not None:
                            yield record
                    continue
                if file is None or _replaced(path, file.fileno()):
                    if file is not None:
                        file.close()
                    file, pending = _open_at(path, end=False), ""
                    if file is not None:
                        continue
                time.sleep(poll_s)
        finally:
            if file is not None:
                file.close()


def _open_at(path: Path, *, end: bool) -> TextIO | None:
    """``path`` open for reading, at its end or its start; None while it does not exist."""
    try:
        file = path.open(encoding="utf-8")
    except FileNotFoundError:
        return None
    if end:
        file.seek(0, os.SEEK_END)
    return file


def _replaced(path: Path, fd: int) -> bool:
    try:
        current = path.stat()
    except FileNotFoundError:
        return True
    return current.st_ino != os.fstat(fd).st_ino
