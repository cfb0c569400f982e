"""A plugin's traceback in two versions. What an API client, a terminal or the plugin's author is
shown holds the plugin's own frames only, with paths relative to its code directory: no host
path (the host's home, site-packages, Plugport's runtime, the interpreter) leaves the host that
way. The complete trace is for the host's log alone."""

from __future__ import annotations

import os
import traceback

__all__ = ["MAX_TRACEBACK_CHARS", "complete", "plugin_only"]

MAX_TRACEBACK_CHARS = 20_000
"""Either version is cut to its last this many characters (the end says what happened)."""


def complete(error: BaseException) -> str:
    """Every frame, as Python prints it: for the host's log."""
    return _tail("".join(traceback.format_exception(error)))


def plugin_only(error: BaseException, code_dir: str) -> str:
    """The frames in files under ``code_dir``, named relative to it; a file elsewhere that a
    SyntaxError names is shown by its base name. Chained exceptions are kept, trimmed alike."""
    root = os.path.abspath(code_dir)
    shown = traceback.TracebackException.from_exception(error)
    pending, seen = [shown], set()
    while pending:
        part = pending.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        frames = [frame for frame in part.stack if _relative(frame.filename, root) is not None]
        for frame in frames:
            frame.filename = _relative(frame.filename, root) or frame.filename
        part.stack = traceback.StackSummary.from_list(frames)
        compiled = getattr(part, "filename", None)  # a SyntaxError: the file it could not read
        if compiled is not None:
            part.filename = _relative(compiled, root) or os.path.basename(compiled)
        pending += [p for p in (part.__cause__, part.__context__) if p is not None]
        pending += part.exceptions or []
    return _tail("".join(shown.format()))


def _relative(filename: str, root: str) -> str | None:
    path = os.path.abspath(filename)
    if not path.startswith(root + os.sep):
        return None
    return os.path.relpath(path, root)


def _tail(text: str) -> str:
    if len(text) <= MAX_TRACEBACK_CHARS:
        return text
    return "...\n" + text[-MAX_TRACEBACK_CHARS:]
