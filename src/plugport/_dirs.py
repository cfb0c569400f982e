"""What a command writes. Directories for its output (``pack -o dist/``, ``init --path a/b``):
made with their missing parents, and removed again when the command fails, so a refused command
leaves no empty directory behind. Files (a signature, a lock): replaced atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from plugport.errors import InvalidInputError

__all__ = ["created_directory", "remove_tree", "write_atomic"]


@contextlib.contextmanager
def created_directory(path: Path, *, what: str) -> Iterator[Path]:
    """``path`` as a directory, made (with its parents) if it is missing; if the body raises,
    whatever this made is removed. ``what`` names the option in the error when an existing
    file stands in the way (e.g. ``"--output"``)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise InvalidInputError(f"{what}: {blocker} is a file, not a directory")
    top = missing[-1] if missing else None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise InvalidInputError(f"{what}: cannot create {path}: {exc.strerror or exc}") from None
    try:
        yield path
    except BaseException:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise


def write_atomic(target: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Readers see the old file or the new one, never half of one. ``mode`` is set before the
    file appears under its name (0o600 for a key)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(name, mode)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """Remove a tree even where it was made read-only (a wheel-store entry): directories are
    made writable for the owner first. What still cannot be removed is left, not raised."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            path.unlink()
        return
    if not path.is_dir():
        return
    for item in [path, *path.rglob("*")]:  # rglob does not follow links
        if item.is_dir() and not item.is_symlink():
            with contextlib.suppress(OSError):
                item.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)
