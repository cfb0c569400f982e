"""Layers ``parent_death`` and ``no_new_privs``: the worker dies with the process that forked it
(the zygote), and can never gain privileges again: no set-uid, no file capabilities, and none of
the capabilities a new user namespace hands out. Landlock and seccomp both require no_new_privs
from an unprivileged process, which is why it comes right before them.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the worker exits, so the zygote must fork
from its main thread (it is single-threaded). The setting survives the user-namespace switch:
the kernel keeps it when the new credentials are a subset of the old, which a child namespace
owned by the same uid is.
"""

from __future__ import annotations

import ctypes
import os
import signal

from plugport.runtime.sandbox import _libc
from plugport.runtime.sandbox._types import LayerStatus, SandboxSpec

__all__ = [
    "apply_no_new_privs",
    "apply_parent_death",
    "drop_capabilities",
    "no_new_privs_available",
    "parent_death_available",
    "parent_death_signal",
]

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_MAX_CAPABILITIES = 64


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def parent_death_signal() -> int:
    """The signal this process gets when its parent thread exits (0: none)."""
    value = ctypes.c_int(0)
    _libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(value))
    return value.value


def parent_death_available() -> LayerStatus:
    try:
        parent_death_signal()
    except OSError as exc:
        reason = _libc.errno_name(exc.errno or 0)
        return LayerStatus("parent_death", False, f"prctl(PR_GET_PDEATHSIG) refused: {reason}")
    return LayerStatus("parent_death", True, "prctl(PR_SET_PDEATHSIG) supported")


def apply_parent_death(spec: SandboxSpec) -> str:
    parent = os.getppid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took hold: nobody will signal us
        os.kill(os.getpid(), signal.SIGKILL)
    if parent == 0:  # pid 1 of its own PID namespace: the parent (the zygote) is outside it
        return "SIGKILL when the zygote exits"
    return f"SIGKILL when parent pid {parent} exits"


def no_new_privs_available() -> LayerStatus:
    try:
        _libc.prctl(PR_GET_NO_NEW_PRIVS)
    except OSError as exc:
        reason = _libc.errno_name(exc.errno or 0)
        return LayerStatus("no_new_privs", False, f"prctl(PR_GET_NO_NEW_PRIVS) refused: {reason}")
    return LayerStatus("no_new_privs", True, "prctl(PR_SET_NO_NEW_PRIVS) supported")


def apply_no_new_privs(spec: SandboxSpec) -> str:
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    dropped = drop_capabilities()
    return f"no_new_privs set; capabilities cleared ({dropped} dropped from the bounding set)"


def drop_capabilities() -> int:
    """Clear the ambient, bounding, effective, permitted and inheritable sets.

    After ``unshare(CLONE_NEWUSER)`` the worker holds every capability inside its namespace
    (enough to bring up its own loopback or mount things); as root without a namespace it holds
    them on the host. Returns how many bounding-set entries were dropped (0 when the process
    lacks CAP_SETPCAP, which also means it has nothing there worth dropping).
    """
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    dropped = 0
    for cap in range(_MAX_CAPABILITIES):
        try:
            _libc.prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno == 22:  # EINVAL: past the kernel's last capability
                break
            if exc.errno == 1:  # EPERM: no CAP_SETPCAP, so none to drop either
                break
            raise
        dropped += 1
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()  # all zero: lowering capabilities is always allowed
    _libc.capset(header, data)
    return dropped
