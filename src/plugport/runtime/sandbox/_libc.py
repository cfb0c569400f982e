"""The few libc entry points the layers need and Python 3.11 does not wrap (``syscall``,
``prctl``, ``unshare``, ``capset``), called through ctypes with errors turned into ``OSError``."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

__all__ = ["capset", "errno_name", "machine", "prctl", "syscall", "unshare"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.unshare.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.capset.restype = ctypes.c_int
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


def errno_name(code: int) -> str:
    """``EPERM`` rather than 1: the name is what the operator searches for."""
    return errno.errorcode.get(code, str(code))


def _check(result: int) -> int:
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _arg(value: object) -> object:
    # syscall() and prctl() are variadic: a bare Python int would be passed as a 32-bit int
    # with undefined upper register bits, so widen every integer explicitly.
    return ctypes.c_ulong(value & 0xFFFFFFFFFFFFFFFF) if isinstance(value, int) else value


def syscall(number: int, *args: object) -> int:
    """``syscall(2)``; pointers are passed as ``ctypes.byref(...)`` or ``None``."""
    return _check(int(_libc.syscall(ctypes.c_long(number), *(_arg(a) for a in args))))


def prctl(option: int, *args: object) -> int:
    padded = [*args, *[0] * (4 - len(args))]
    return _check(int(_libc.prctl(ctypes.c_int(option), *(_arg(a) for a in padded))))


def unshare(flags: int) -> None:
    _check(int(_libc.unshare(flags)))


def capset(header: ctypes.Structure, data: ctypes.Array[Any]) -> None:
    _check(int(_libc.capset(ctypes.byref(header), ctypes.byref(data))))


def machine() -> str:
    """The kernel's name for this CPU architecture (``x86_64``, ``aarch64``)."""
    return os.uname().machine
