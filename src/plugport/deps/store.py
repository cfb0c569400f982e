"""The wheel store: every locked wheel a host's plugins use, installed once, by content.

``<root>/<sha256 of the wheel>/`` holds the wheel installed with PyPA's ``installer`` (its
``purelib`` and ``platlib`` at the top, so the directory is an import path entry) and made
read-only. Two plugins that lock the same wheel share one entry; two that pin different
versions get two. A ``.plugport-wheel`` file in each entry records the wheel's name, hash and
the hash of every installed file (from the RECORD ``installer`` wrote), written last: an entry
without it is an interrupted install and is replaced.

Byte-compiling is off the install's path: :meth:`WheelStore.compile_later` hands new entries to
a background process (``python -m plugport.deps.compile``) that writes their ``__pycache__`` and
then ``.plugport-compiled``. Until it has, an import compiles in memory, as Python does for any
read-only directory; the store is read-only inside every sandbox either way.

Nothing here uses pip or the network: wheels come out of a signed archive (or a plugin author's
own lock, in development) and are installed only if their sha256 is the one the lock names.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import posixpath
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from plugport._dirs import remove_tree
from plugport.deps.lockfile import LockedWheel
from plugport.deps.wheels import inspect_wheel
from plugport.errors import DependencyError, SignatureError

__all__ = ["COMPILED", "MARKER", "WheelStore", "make_read_only", "record_digest", "sha256_of"]

MARKER = ".plugport-wheel"
COMPILED = ".plugport-compiled"
_TMP_PREFIX = ".installing-"
_CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    return str(_digest(path).hexdigest())


def record_digest(path: Path) -> str:
    """A file's hash as a wheel's RECORD writes it: ``sha256=<urlsafe base64, unpadded>``."""
    raw = base64.urlsafe_b64encode(_digest(path).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={raw}"


def _digest(path: Path) -> Any:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest


class WheelStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, wheel: LockedWheel) -> Path:
        return self.root / wheel.sha256

    def import_paths(self, wheels: Sequence[LockedWheel]) -> list[str]:
        """The entries to put on a plugin's ``sys.path``, in lock order; each is checked to be
        a complete install of that very wheel (a cheap check: its marker names the hash)."""
        paths = []
        for wheel in wheels:
            entry = self.entry(wheel)
            try:
                recorded = json.loads((entry / MARKER).read_bytes())
            except (OSError, ValueError):
                raise DependencyError(
                    f"{wheel.filename} is not in the wheel store ({entry}); reinstall the plugin",
                    package=wheel.filename.split("-", 1)[0],
                    file=wheel.filename,
                ) from None
            if recorded.get("sha256") != wheel.sha256:
                raise SignatureError(
                    "archive",
                    f"the wheel store entry {entry} is not {wheel.filename}; reinstall the plugin",
                )
            paths.append(str(entry))
        return paths

    def add(self, wheel_file: Path, wheel: LockedWheel) -> Path:
        """Install ``wheel_file`` as the entry for ``wheel`` unless a verified one exists.
        The file's sha256 must be the lock's; a damaged existing entry is replaced."""
        actual = sha256_of(wheel_file)
        if actual != wheel.sha256:
            raise SignatureError(
                "archive",
                f"{wheel.filename}: sha256 is {actual[:16]}…, but plugport.lock says "
                f"{wheel.sha256[:16]}…; the wheel was altered or the lock is wrong, so nothing "
                "was installed",
            )
        entry = self.entry(wheel)
        if entry.is_dir():
            if self.verify(wheel) is None:
                return entry
            remove_tree(entry)  # damaged or interrupted: install it again
        facts = inspect_wheel(wheel_file, filename=wheel.filename)
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            work.mkdir(mode=0o755)
            files = _install(wheel_file, work, facts.name)
            marker = {"filename": wheel.filename, "sha256": wheel.sha256, "files": files}
            (work / MARKER).write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
            make_read_only(work)
            os.rename(work, entry)
        except BaseException:
            remove_tree(work)
            raise
        return entry

    def verify(self, wheel: LockedWheel) -> str | None:
        """``None`` when the entry is intact (every installed file hashes to what was
        recorded when it was installed), else what is wrong."""
        entry = self.entry(wheel)
        try:
            recorded = json.loads((entry / MARKER).read_bytes())
        except (OSError, ValueError):
            return f"{entry} has no readable {MARKER}"
        if recorded.get("sha256") != wheel.sha256:
            return f"{entry} records another wheel"
        for relative, digest in recorded.get("files", {}).items():
            path = entry / relative
            try:
                if record_digest(path) != digest:
                    return f"{path} was changed after it was installed"
            except OSError:
                return f"{path} is missing"
        return None

    def compile_later(self, wheels: Iterable[LockedWheel]) -> subprocess.Popen[bytes] | None:
        """Byte-compile the entries of ``wheels`` that are not yet, in a background process;
        returns it (tests wait for it), or ``None`` when there is nothing to do."""
        pending = [
            str(self.entry(w))
            for w in wheels
            if self.entry(w).is_dir() and not (self.entry(w) / COMPILED).exists()
        ]
        if not pending:
            return None
        process = subprocess.Popen(
            [sys.executable, "-m", "plugport.deps.compile", *pending],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the application's terminal's process group
        )
        threading.Thread(target=process.wait, name="wheel-compile", daemon=True).start()
        return process

    def entries(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))

    def collect(self, needed: Iterable[str]) -> list[str]:
        """Remove every entry whose hash is not in ``needed``, and interrupted installs;
        returns the hashes removed."""
        keep = set(needed)
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        for path in self.root.iterdir():
            if path.name.startswith(_TMP_PREFIX) or path.name not in keep:
                remove_tree(path)
                if not path.name.startswith("."):
                    removed.append(path.name)
        return sorted(removed)


def _install(wheel_file: Path, target: Path, name: str) -> dict[str, str]:
    """Install into ``target`` (purelib and platlib at its top; scripts, headers and data
    below ``.plugport-*`` where nothing imports them) and return each file's sha256."""
    # Imported here: only installing needs it, not every host or CLI start.
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    scheme = {
        "purelib": str(target),
        "platlib": str(target),
        "headers": str(target / ".plugport-headers"),
        "scripts": str(target / ".plugport-scripts"),
        "data": str(target / ".plugport-data"),
    }
    destination = SchemeDictionaryDestination(
        scheme, interpreter=sys.executable, script_kind="posix"
    )
    try:
        with WheelFile.open(wheel_file) as source:
            # Its RECORD was checked when it was locked (plugport lock); the sha256 the signed
            # lock names pins these very bytes, and installer writes a RECORD of its own.
            install(source, destination, {"INSTALLER": b"plugport\n"})
    except Exception as exc:  # installer raises plain exceptions for a malformed wheel
        raise DependencyError(
            f"{wheel_file.name} could not be installed: {exc}", package=name, file=wheel_file.name
        ) from None
    files = {}
    for record in target.glob("*.dist-info/RECORD"):
        with record.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if len(row) >= 2 and row[1]:
                    files[posixpath.normpath(row[0])] = row[1]
    return files


def make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            path.chmod(0o555)
        elif stat.S_ISREG(mode):
            path.chmod(0o555 if mode & stat.S_IXUSR else 0o444)
