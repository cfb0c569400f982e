"""The few libc entry points the layers need and Python 3.11 does not wrap (``syscall``,
``prctl``, ``unshare``, ``capset``, ``mount``, ``umount2``, ``pivot_root``), called through
ctypes with errors turned into ``OSError``."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

__all__ = [
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "capset",
    "errno_name",
    "forget_proc_self",
    "keep_proc_self",
    "machine",
    "mount",
    "pivot_root",
    "prctl",
    "setns",
    "syscall",
    "umount2",
    "unshare",
    "write_proc_self",
]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.unshare.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.capset.restype = ctypes.c_int
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.mount.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.setns.restype = ctypes.c_int
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# Namespace flags for unshare/setns/clone (include/uapi/linux/sched.h), shared by the layers.
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000


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


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    """``mount(2)``; an OSError names the target, which is what the operator needs."""
    args = [None if v is None else os.fsencode(v) for v in (source, target, fstype)]
    options = None if data is None else data.encode()
    if _libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), options) == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def setns(fd: int, nstype: int) -> None:
    _check(int(_libc.setns(fd, nstype)))


def umount2(target: str, flags: int) -> None:
    if _libc.umount2(os.fsencode(target), flags) == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def pivot_root(new_root: str, put_old: str) -> None:
    syscall(_SYS_PIVOT_ROOT[machine()], os.fsencode(new_root), os.fsencode(put_old))


_proc_self: list[int] = []  # a descriptor of /proc/self kept across pivot_root (see filesystem)


def keep_proc_self() -> None:
    """Keep /proc/self open, for writes after /proc has left the process's view."""
    if not _proc_self:
        _proc_self.append(os.open("/proc/self", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))


def forget_proc_self() -> None:
    while _proc_self:
        os.close(_proc_self.pop())


def write_proc_self(name: str, text: str) -> None:
    """Write ``text`` to ``/proc/self/<name>``, through the kept descriptor when there is one."""
    if _proc_self:
        fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=_proc_self[0])
    else:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def capset(header: ctypes.Structure, data: ctypes.Array[Any]) -> None:
    _check(int(_libc.capset(ctypes.byref(header), ctypes.byref(data))))


def machine() -> str:
    """The kernel's name for this CPU architecture (``x86_64``, ``aarch64``)."""
    return os.uname().machine
