"""Layer ``seccomp``: a classic-BPF syscall allowlist, installed last, compiled from the
inventory in :mod:`.syscall_policy` (one decision per Linux system call, with why; ``plugport
doctor --syscalls`` prints it). A worker touches no process but itself: every call that names a
pid, pgid or pidfd is allowed only for the worker's own pid, or refused; calls that watch or
observe files without opening them are refused; a number the table does not know gets ENOSYS.

:func:`build_filter` is pure (architecture and pid in, bytes out) so its decisions are unit-tested
by simulating the program; :func:`apply` only installs it.

Decisions worth knowing:

* The audit architecture is checked first and a mismatch kills the process, as does an x32
  syscall (``nr >= 0x40000000``) on x86_64: both are only ever attempts to dodge the table. No
  other decision kills: a refusal is an errno the plugin can handle.
* The pid is the one :func:`os.getpid` returns when the filter is applied, so in a worker with
  its own PID namespace it is 1, and nothing outside that namespace can be named anyway.
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
* Layout: the calls decided by argument come first, then ranges of calls decided by number
  alone. Those ranges never load an argument, so the kernel's per-syscall action cache answers
  every allowed call without running the program.
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
from plugport.runtime.sandbox.syscall_policy import NUMBERS, RULES, Rule

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
    "describe",
    "prepare",
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


ARCHES: Mapping[str, Arch] = {
    "x86_64": Arch("x86_64", 0xC000003E, x32_guard=True, syscalls=NUMBERS["x86_64"]),
    "aarch64": Arch("aarch64", 0xC00000B7, x32_guard=False, syscalls=NUMBERS["aarch64"]),
}

DENIED: Mapping[str, int] = {
    name: rule.errno for name, rule in RULES.items() if rule.verdict == "refused"
}
"""Every call refused whatever its arguments, with the errno it gets."""

UNKNOWN_ERRNO = errno.ENOSYS  # a number newer than the table: what the kernel says of no syscall

_Insn = tuple[int, int, int, int]


def _ld(offset: int) -> _Insn:
    return (BPF_LD_W_ABS, 0, 0, offset)


def _jump(code: int, k: int, jt: int, jf: int) -> _Insn:
    return (code, jt, jf, k)


def _ret(action: int) -> _Insn:
    return (BPF_RET_K, 0, 0, action)


def _errno(code: int) -> _Insn:
    return _ret(RET_ERRNO | (code & 0xFFFF))


def _own_process_only(rule: Rule, own_pid: int) -> list[_Insn]:
    """Allow when the pid argument is the worker (or 0, when the kernel reads 0 as the caller)
    and, for ``which``/``who`` calls, ``which`` names a process."""
    tail = [_ld(_arg_low(rule.pid_arg))]
    tail.append(_jump(BPF_JEQ_K, own_pid & 0xFFFFFFFF, 2 if rule.zero_is_self else 1, 0))
    if rule.zero_is_self:
        tail.append(_jump(BPF_JEQ_K, 0, 1, 0))
    tail += [_errno(rule.errno), _ret(RET_ALLOW)]
    if rule.which is None:
        return tail
    which_arg, value = rule.which
    to_refusal = len(tail) - 2  # past the pid checks, onto the errno
    return [_ld(_arg_low(which_arg)), _jump(BPF_JEQ_K, value, 0, to_refusal), *tail]


def _checked_blocks() -> dict[str, list[_Insn]]:
    """The ``checked`` rules: decisions on argument values (each block returns on every path)."""
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
    ioctl = [
        _ld(_arg_low(1)),  # request (an unsigned int to the kernel)
        _jump(BPF_JEQ_K, TIOCSTI, 1, 0),
        _jump(BPF_JEQ_K, TIOCLINUX, 0, 1),
        _errno(errno.EPERM),
        _ret(RET_ALLOW),
    ]
    return {"ioctl": ioctl, "clone": clone, "socket": unix_socket, "socketpair": unix_socket}


def _action(rule: Rule) -> int:
    return RET_ALLOW if rule.verdict == "allowed" else RET_ERRNO | (rule.errno & 0xFFFF)


def _constant_chain(numbers: Mapping[str, int], inspected: set[int]) -> list[_Insn]:
    """Calls decided by number alone, as ascending ranges of equal action: ``nr >= hi + 1``
    goes on to the next range, otherwise the range's action (or ENOSYS for a number below it
    that no rule knows). Numbers in ``inspected`` were decided before and may join any range.

    Ranges without argument loads let the kernel's seccomp action cache answer allowed calls
    without running the program at all."""
    constant = sorted(
        (number, _action(RULES[name]))
        for name, number in numbers.items()
        if number not in inspected
    )
    ranges: list[list[int]] = []  # [lo, hi, action]

    def bridged(low: int, high: int) -> bool:
        return all(n in inspected for n in range(low, high))

    for number, action in constant:
        if ranges and ranges[-1][2] == action and bridged(ranges[-1][1] + 1, number):
            ranges[-1][1] = number
        else:
            ranges.append([number, number, action])
    chain: list[_Insn] = []
    previous_high = -1
    for low, high, action in ranges:
        if bridged(previous_high + 1, low):
            chain += [_jump(BPF_JGE_K, high + 1, 1, 0), _ret(action)]
        else:  # unknown numbers below this range
            chain += [
                _jump(BPF_JGE_K, high + 1, 3, 0),
                _jump(BPF_JGE_K, low, 0, 1),
                _ret(action),
                _errno(UNKNOWN_ERRNO),
            ]
        previous_high = high
    return [*chain, _errno(UNKNOWN_ERRNO)]


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
    blocks = _checked_blocks()
    for name, rule in RULES.items():
        if rule.verdict == "self":
            blocks[name] = _own_process_only(rule, own_pid)
    inspected: set[int] = set()
    for name, block in blocks.items():
        number = table.syscalls.get(name)
        if number is None:
            continue
        inspected.add(number)
        program.append(_jump(BPF_JEQ_K, number, 0, len(block)))
        program += block
    program += _constant_chain(table.syscalls, inspected)
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


_built: dict[tuple[str, int], tuple[bytes, str]] = {}


def prepare(own_pid: int = 1) -> None:
    """Build the program for a worker whose pid will be ``own_pid`` ahead of time: the zygote
    does it once for pid 1 (every worker is pid 1 of its own PID namespace), so workers share
    the bytes instead of each building (and copying the pages of) the whole table."""
    arch = _libc.machine()
    if arch in ARCHES:
        program = build_filter(arch, own_pid)
        _built[(arch, own_pid)] = program, describe(arch, program)


def apply(spec: SandboxSpec) -> str:
    arch = _libc.machine()
    built = _built.get((arch, os.getpid()))
    program = built[0] if built else build_filter(arch, os.getpid())
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
    return built[1] if built else describe(arch, program)


def describe(arch: str, program: bytes) -> str:
    """What a filter for ``arch`` enforces, in one line for the sandbox report."""
    count = len(program) // INSTRUCTION.size
    verdicts = [RULES[name].verdict for name in ARCHES[arch].syscalls]
    return (
        f"{count} BPF instructions on {arch}, allowlist of {len(verdicts)} syscalls: "
        f"{verdicts.count('allowed')} allowed, {verdicts.count('self')} only on the worker itself, "
        f"{verdicts.count('checked')} by argument, {verdicts.count('refused')} refused; "
        "unknown numbers ENOSYS"
    )
