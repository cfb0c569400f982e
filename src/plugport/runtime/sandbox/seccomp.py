"""Layer ``seccomp``: a classic-BPF syscall filter, installed last, that refuses the kernel
interfaces a plugin never needs and that widen the attack surface or reach outside the worker:
new processes, namespaces, ptrace, io_uring, bpf, keyrings, modules, mounts, clocks, non-unix
sockets, ``connect``, and signals to any process but the worker itself.

:func:`build_filter` is pure (architecture and pid in, bytes out) so its decisions are unit-tested
by simulating the program; :func:`apply` only installs it.

Decisions worth knowing:

* The audit architecture is checked first and a mismatch kills the process, as does an x32
  syscall (``nr >= 0x40000000``) on x86_64: both are only ever attempts to dodge the table.
* ``clone`` is allowed only for threads (``CLONE_THREAD``, no namespace flag); ``fork``,
  ``vfork`` and process ``clone`` get EPERM, so a fork bomb cannot start; ``clone3`` gets ENOSYS
  because its flags live in memory BPF cannot read, and glibc then falls back to ``clone``.
* ``socket``/``socketpair``: only ``AF_UNIX`` stream/seqpacket (EAFNOSUPPORT for other families,
  EPERM for datagrams, which can ``sendto`` any named socket). ``connect`` is refused outright:
  the channel arrives connected, and Landlock does not restrict connecting to named unix sockets
  such as ``/run/docker.sock`` or ``/run/systemd/private``.
* ``kill``, ``tgkill`` and ``rt_(tg)sigqueueinfo`` may only target the worker's own pid; ``tkill``
  and ``pidfd_send_signal`` are refused. Landlock's signal scope (ABI >= 6) covers the same
  ground; this rule keeps the guarantee on kernels without it.
* ``ioctl(TIOCSTI)``/``ioctl(TIOCLINUX)`` are refused: with ``keep_stdio`` a worker could
  otherwise type into the host's terminal.
* File metadata calls (``chmod``, ``chown``, ``utime*``, ``*setxattr``, ``*removexattr``) are
  refused: Landlock does not restrict them and the worker's uid owns the host's files, so a
  plugin could otherwise make the host's database world-writable. (``shutil.copy`` copies the
  mode and fails; ``shutil.copyfile`` works.)
* ``execve`` stays allowed: whatever it runs inherits every layer (namespaces, rlimits, Landlock,
  this filter, no_new_privs), so it is no way out.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from plugport.runtime.sandbox import _libc
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = [
    "ARCHES",
    "DENIED",
    "INSTRUCTION",
    "RET_ALLOW",
    "RET_ERRNO",
    "RET_KILL_PROCESS",
    "Arch",
    "apply",
    "available",
    "build_filter",
]

NAME = "seccomp"

# seccomp return actions (include/uapi/linux/seccomp.h)
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_FILTER_FLAG_TSYNC = 1
PR_GET_SECCOMP = 21

# classic BPF opcodes (include/uapi/linux/bpf_common.h)
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
BPF_JEQ_K = 0x05 | 0x10 | 0x00
BPF_JGE_K = 0x05 | 0x30 | 0x00
BPF_JSET_K = 0x05 | 0x40 | 0x00
BPF_AND_K = 0x04 | 0x50 | 0x00
BPF_RET_K = 0x06 | 0x00 | 0x00
INSTRUCTION = struct.Struct("HBBI")  # struct sock_filter: code, jt, jf, k

# struct seccomp_data offsets; both supported arches are little-endian, so the low 32 bits of
# args[i] sit at 16 + 8 * i.
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


X32_SYSCALL_BIT = 0x40000000
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
AF_UNIX = 1
SOCK_TYPE_MASK = 0xF
SOCK_STREAM = 1
SOCK_SEQPACKET = 5
TIOCSTI = 0x5412
TIOCLINUX = 0x541C


@dataclass(frozen=True, slots=True)
class Arch:
    """What the filter needs to know about one architecture: its audit id and syscall numbers
    (a name missing from ``syscalls`` does not exist there, e.g. ``fork`` on aarch64)."""

    name: str
    audit: int
    x32_guard: bool
    syscalls: Mapping[str, int]


_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "userfaultfd": 323,
    "perf_event_open": 298, "add_key": 248, "request_key": 249, "keyctl": 250, "mount": 165,
    "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
    "kexec_file_load": 320, "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "socket": 41,
    "socketpair": 53, "connect": 42, "kill": 62, "tkill": 200, "tgkill": 234,
    "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_send_signal": 424,
    "pidfd_getfd": 438, "process_madvise": 440, "kcmp": 312, "personality": 135, "acct": 163,
    "swapon": 167, "swapoff": 168, "reboot": 169, "settimeofday": 164, "clock_settime": 227,
    "clock_adjtime": 305, "adjtimex": 159, "quotactl": 179, "quotactl_fd": 443,
    "lookup_dcookie": 212, "name_to_handle_at": 303, "open_by_handle_at": 304, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "syslog": 103, "uselib": 134, "iopl": 172, "ioperm": 173,
    "vhangup": 153, "sethostname": 170, "setdomainname": 171, "ioctl": 16, "seccomp": 317,
    "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93,
    "lchown": 94, "fchownat": 260, "utime": 132, "utimes": 235, "futimesat": 261,
    "utimensat": 280, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197,
    "lremovexattr": 198, "fremovexattr": 199, "setxattrat": 463, "removexattrat": 466,
}  # fmt: skip
_AARCH64 = {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280, "userfaultfd": 282,
    "perf_event_open": 241, "add_key": 217, "request_key": 218, "keyctl": 219, "mount": 40,
    "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
    "kexec_file_load": 294, "clone": 220, "clone3": 435, "socket": 198, "socketpair": 199,
    "connect": 203, "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
    "rt_tgsigqueueinfo": 240, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    "process_madvise": 440, "kcmp": 272, "personality": 92, "acct": 89, "swapon": 224,
    "swapoff": 225, "reboot": 142, "settimeofday": 170, "clock_settime": 112,
    "clock_adjtime": 266, "adjtimex": 171, "quotactl": 60, "quotactl_fd": 443,
    "lookup_dcookie": 18, "name_to_handle_at": 264, "open_by_handle_at": 265, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "syslog": 116, "vhangup": 58, "sethostname": 161,
    "setdomainname": 162, "ioctl": 29, "seccomp": 277,
    "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchownat": 54, "fchown": 55,
    "utimensat": 88, "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14,
    "lremovexattr": 15, "fremovexattr": 16, "setxattrat": 463, "removexattrat": 466,
}  # fmt: skip

ARCHES: Mapping[str, Arch] = {
    "x86_64": Arch("x86_64", 0xC000003E, x32_guard=True, syscalls=_X86_64),
    "aarch64": Arch("aarch64", 0xC00000B7, x32_guard=False, syscalls=_AARCH64),
}

DENIED: Mapping[str, int] = dict.fromkeys(
    (
        # other processes' memory and tracing
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
        "process_madvise",
        # large kernel attack surface no plugin needs
        "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "userfaultfd",
        "perf_event_open", "add_key", "request_key", "keyctl", "personality", "uselib",
        "lookup_dcookie", "name_to_handle_at", "open_by_handle_at", "syslog", "vhangup",
        # namespaces and mounts
        "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
        "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
        # the machine's state
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "acct", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
        "clock_adjtime", "adjtimex", "quotactl", "quotactl_fd", "iopl", "ioperm",
        "sethostname", "setdomainname",
        # new processes, connections, signals to others
        "fork", "vfork", "connect", "tkill", "pidfd_send_signal",
        # file metadata: Landlock does not cover it, and the worker's uid owns what the
        # host's owns, so these would change modes, owners and times of host files
        "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
        "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr",
        "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
    ),
    errno.EPERM,
) | {"clone3": errno.ENOSYS}  # fmt: skip

_Insn = tuple[int, int, int, int]


def _ld(offset: int) -> _Insn:
    return (BPF_LD_W_ABS, 0, 0, offset)


def _jump(code: int, k: int, jt: int, jf: int) -> _Insn:
    return (code, jt, jf, k)


def _ret(action: int) -> _Insn:
    return (BPF_RET_K, 0, 0, action)


def _errno(code: int) -> _Insn:
    return _ret(RET_ERRNO | (code & 0xFFFF))


def _blocks(own_pid: int) -> dict[str, list[_Insn]]:
    """Per-syscall decisions; each block ends in a return on every path, so it may clobber A."""
    clone = [
        _ld(_arg_low(0)),
        _jump(BPF_JSET_K, CLONE_NAMESPACES, 2, 0),  # any namespace flag -> EPERM
        _jump(BPF_JSET_K, CLONE_THREAD, 0, 1),  # a thread -> allow, a process -> EPERM
        _ret(RET_ALLOW),
        _errno(errno.EPERM),
    ]
    unix_socket = [
        _ld(_arg_low(0)),  # domain (the kernel reads an int: the low 32 bits)
        _jump(BPF_JEQ_K, AF_UNIX, 0, 6),  # not AF_UNIX -> EAFNOSUPPORT
        _ld(_arg_low(1)),  # type | SOCK_NONBLOCK | SOCK_CLOEXEC
        (BPF_AND_K, 0, 0, SOCK_TYPE_MASK),
        _jump(BPF_JEQ_K, SOCK_STREAM, 1, 0),
        _jump(BPF_JEQ_K, SOCK_SEQPACKET, 0, 1),
        _ret(RET_ALLOW),
        _errno(errno.EPERM),  # datagrams could sendto() any named socket
        _errno(errno.EAFNOSUPPORT),
    ]
    own_process_only = [
        _ld(_arg_low(0)),  # pid / tgid
        _jump(BPF_JEQ_K, own_pid & 0xFFFFFFFF, 0, 1),
        _ret(RET_ALLOW),
        _errno(errno.EPERM),
    ]
    ioctl = [
        _ld(_arg_low(1)),  # request (an unsigned int to the kernel)
        _jump(BPF_JEQ_K, TIOCSTI, 1, 0),
        _jump(BPF_JEQ_K, TIOCLINUX, 0, 1),
        _errno(errno.EPERM),
        _ret(RET_ALLOW),
    ]
    blocks = {name: [_errno(code)] for name, code in DENIED.items()}
    blocks |= {"clone": clone, "socket": unix_socket, "socketpair": unix_socket, "ioctl": ioctl}
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        blocks[name] = own_process_only
    return blocks


def build_filter(arch: str, own_pid: int) -> bytes:
    """The filter program for ``arch`` (``os.uname().machine``) in a worker whose pid is
    ``own_pid``, as packed ``struct sock_filter`` instructions; ValueError for an unknown arch."""
    if arch not in ARCHES:
        raise ValueError(f"no seccomp syscall table for {arch!r}; known: {', '.join(ARCHES)}")
    table = ARCHES[arch]
    program: list[_Insn] = [
        _ld(_ARCH),
        _jump(BPF_JEQ_K, table.audit, 1, 0),
        _ret(RET_KILL_PROCESS),
        _ld(_NR),
    ]
    if table.x32_guard:
        program += [_jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1), _ret(RET_KILL_PROCESS)]
    for name, block in _blocks(own_pid).items():
        number = table.syscalls.get(name)
        if number is None:
            continue
        program.append(_jump(BPF_JEQ_K, number, 0, len(block)))
        program += block
    program.append(_ret(RET_ALLOW))
    return b"".join(INSTRUCTION.pack(*insn) for insn in program)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def available() -> LayerStatus:
    arch = _libc.machine()
    if arch not in ARCHES:
        return LayerStatus(NAME, False, f"no syscall table for architecture {arch}")
    try:
        _libc.prctl(PR_GET_SECCOMP)
    except OSError as exc:
        reason = f"prctl(PR_GET_SECCOMP) refused: {_libc.errno_name(exc.errno or 0)}"
        return LayerStatus(NAME, False, f"{reason} (kernel without CONFIG_SECCOMP_FILTER)")
    action = ctypes.c_uint32(RET_KILL_PROCESS)
    try:
        _libc.syscall(ARCHES[arch].syscalls["seccomp"], SECCOMP_GET_ACTION_AVAIL, 0,
                      ctypes.byref(action))  # fmt: skip
    except OSError as exc:
        errname = _libc.errno_name(exc.errno or 0)
        return LayerStatus(NAME, False, f"SECCOMP_RET_KILL_PROCESS unsupported: {errname}")
    return LayerStatus(NAME, True, f"seccomp filter mode on {arch}, KILL_PROCESS available")


def apply(spec: SandboxSpec) -> str:
    arch = _libc.machine()
    program = build_filter(arch, os.getpid())
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // INSTRUCTION.size, ctypes.addressof(buffer))
    number = ARCHES[arch].syscalls["seccomp"]
    try:
        # TSYNC puts every thread under the filter, or fails naming the thread it could not.
        thread = _libc.syscall(
            number, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog)
        )
    except OSError as exc:
        errname = _libc.errno_name(exc.errno or 0)
        raise LayerFailedError(f"seccomp(SECCOMP_SET_MODE_FILTER) refused: {errname}") from None
    if thread != 0:
        raise LayerFailedError(f"thread {thread} could not be put under the filter")
    count = len(program) // INSTRUCTION.size
    refused = sum(1 for name in DENIED if name in ARCHES[arch].syscalls)
    return f"{count} BPF instructions on {arch}; {refused} syscalls refused outright"
