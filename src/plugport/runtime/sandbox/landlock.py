"""Layer ``landlock``: the worker may read its code and the interpreter, read and write its data
directory, and nothing else on any filesystem (procfs included, so ``/proc/self/environ`` and
other processes' entries are closed too). From ABI 4 it also may not bind or connect TCP sockets,
and from ABI 6 it may not signal processes or reach abstract unix sockets outside its domain.

Every access right the running ABI knows is *handled*, so an operation not granted by a rule is
denied. Landlock does not cover metadata (``stat``, ``access``, ``chdir`` still see paths) nor
connecting to named unix sockets; the seccomp layer refuses ``connect`` for that reason.
"""

from __future__ import annotations

import ctypes
import os
import stat

from plugport.runtime.sandbox import _libc
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = [
    "ACCESS_FS",
    "abi_version",
    "apply",
    "available",
    "handled_fs",
    "handled_net",
    "ruleset_attr_size",
    "scopes",
]

NAME = "landlock"
SYS_CREATE_RULESET = 444  # the same on x86_64 and aarch64 (the unified syscall table)
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

# Bit -> the ABI that introduced it.
ACCESS_FS = {
    "EXECUTE": (1 << 0, 1),
    "WRITE_FILE": (1 << 1, 1),
    "READ_FILE": (1 << 2, 1),
    "READ_DIR": (1 << 3, 1),
    "REMOVE_DIR": (1 << 4, 1),
    "REMOVE_FILE": (1 << 5, 1),
    "MAKE_CHAR": (1 << 6, 1),
    "MAKE_DIR": (1 << 7, 1),
    "MAKE_REG": (1 << 8, 1),
    "MAKE_SOCK": (1 << 9, 1),
    "MAKE_FIFO": (1 << 10, 1),
    "MAKE_BLOCK": (1 << 11, 1),
    "MAKE_SYM": (1 << 12, 1),
    "REFER": (1 << 13, 2),
    "TRUNCATE": (1 << 14, 3),
    "IOCTL_DEV": (1 << 15, 5),
}
ACCESS_NET_BIND_TCP = 1 << 0
ACCESS_NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

_READ_ONLY = ACCESS_FS["READ_FILE"][0] | ACCESS_FS["READ_DIR"][0] | ACCESS_FS["EXECUTE"][0]
# Rights that make sense on a file; a rule on a non-directory with any other right is EINVAL.
_FILE_RIGHTS = (
    ACCESS_FS["EXECUTE"][0]
    | ACCESS_FS["WRITE_FILE"][0]
    | ACCESS_FS["READ_FILE"][0]
    | ACCESS_FS["TRUNCATE"][0]
    | ACCESS_FS["IOCTL_DEV"][0]
)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel struct is __attribute__((packed)): 12 bytes, not 16
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def handled_fs(abi: int) -> int:
    """Every filesystem right ``abi`` knows: all of them are denied unless a rule grants them."""
    bits = 0
    for bit, since in ACCESS_FS.values():
        if abi >= since:
            bits |= bit
    return bits


def handled_net(abi: int) -> int:
    return ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def ruleset_attr_size(abi: int) -> int:
    """The struct grew a field at ABI 4 (net) and 6 (scoped); older kernels reject the bigger
    size with E2BIG, so pass the size the running ABI understands."""
    return 24 if abi >= 6 else 16 if abi >= 4 else 8


def abi_version() -> int:
    return _libc.syscall(SYS_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)


def available() -> LayerStatus:
    try:
        abi = abi_version()
    except OSError as exc:
        code = exc.errno or 0
        reason = {
            38: "the kernel has no Landlock (ENOSYS; Linux >= 5.13 built with CONFIG_SECURITY_"
            "LANDLOCK)",
            95: "Landlock is built in but disabled at boot (EOPNOTSUPP; add landlock to lsm=)",
        }.get(code, f"landlock_create_ruleset refused: {_libc.errno_name(code)}")
        return LayerStatus(NAME, False, reason)
    notes = []
    if abi < 4:
        notes.append("TCP not restricted (needs ABI 4)")
    if abi < 6:
        notes.append("signals and abstract unix sockets not scoped (needs ABI 6)")
    return LayerStatus(NAME, True, "; ".join([f"landlock ABI {abi}", *notes]))


def apply(spec: SandboxSpec) -> str:
    abi = abi_version()
    fs = handled_fs(abi)
    attr = _RulesetAttr(fs, handled_net(abi), scopes(abi))
    ruleset = _libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ruleset_attr_size(abi), 0)
    try:
        granted = 0
        for path in spec.read_only:
            granted += _allow(ruleset, str(path), _READ_ONLY & fs)
        if not _allow(ruleset, str(spec.data_dir), fs):
            raise LayerFailedError(f"data dir {spec.data_dir} does not exist")
        try:
            _libc.syscall(SYS_RESTRICT_SELF, ruleset, 0)
        except OSError as exc:
            errname = _libc.errno_name(exc.errno or 0)
            raise LayerFailedError(f"landlock_restrict_self refused: {errname}") from None
    finally:
        os.close(ruleset)
    extras = []
    if handled_net(abi):
        extras.append("TCP bind/connect denied")
    if scopes(abi):
        extras.append("signals and abstract unix sockets scoped")
    return "; ".join([f"ABI {abi}: {granted} read-only paths, data dir read-write", *extras])


def _allow(ruleset: int, path: str, rights: int) -> int:
    """Add a rule for ``path``; 0 when the path does not exist (nothing to grant)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        _libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    finally:
        os.close(fd)
    return 1
