"""Byte-compile wheel-store entries in the background: ``python -m plugport.deps.compile
ENTRY...``, started by :meth:`plugport.deps.store.WheelStore.compile_later`.

For each entry not yet compiled: make its directories writable for the owner, write every
module's ``__pycache__`` (atomically, as ``py_compile`` does, so a worker importing meanwhile
reads either no bytecode or a whole file), make it read-only again and mark it compiled. An
entry removed meanwhile (its plugin uninstalled) is skipped. Never raises: the worst case is
an entry that imports from source.
"""

from __future__ import annotations

import compileall
import contextlib
import sys
from pathlib import Path

from plugport.deps.store import COMPILED, make_read_only

__all__ = ["compile_entry", "main"]


def compile_entry(entry: Path) -> bool:
    """Compile one entry; whether it is compiled now."""
    if (entry / COMPILED).exists():
        return True
    try:
        for path in [entry, *entry.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        compileall.compile_dir(entry, quiet=2, optimize=-1, workers=1)
        (entry / COMPILED).write_bytes(b"")
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            make_read_only(entry)


def main(argv: list[str]) -> int:
    for arg in argv:
        compile_entry(Path(arg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
