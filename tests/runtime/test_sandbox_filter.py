"""The seccomp program, checked without installing it: decode the BPF instructions and run them
in a small interpreter against syscall numbers and arguments, for both architectures."""

from __future__ import annotations

import errno
import re
import struct
from pathlib import Path

import pytest

from plugport.runtime.sandbox import seccomp
from plugport.runtime.sandbox.seccomp import (
    ARCHES,
    DENIED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    build_filter,
)

OWN_PID = 4242
CLONE_VM = 0x100
CLONE_FS = 0x200
CLONE_FILES = 0x400
CLONE_SIGHAND = 0x800
CLONE_THREAD = 0x10000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIGCHLD = 17
THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
SOCK_CLOEXEC = 0o2000000
TCGETS, TIOCSTI = 0x5401, 0x5412

# Classic BPF opcodes the interpreter understands; anything else fails the test.
LD_W_ABS, JEQ, JGE, JSET, AND, RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    assert len(program) % 8 == 0
    return [tuple(i) for i in struct.iter_unpack("HBBI", program)]


def run(program: bytes, arch: str, nr: int, *args: int, audit: int | None = None) -> int:
    """Execute the filter on one ``struct seccomp_data`` and return the action word."""
    padded = [*args, *[0] * (6 - len(args))]
    audit_arch = ARCHES[arch].audit if audit is None else audit
    data = struct.pack("<iIQ6Q", nr, audit_arch, 0, *padded)
    insns = decode(program)
    acc, pc = 0, 0
    for _ in range(len(insns)):  # forward jumps only, so this bounds the run
        code, jt, jf, k = insns[pc]
        if code == LD_W_ABS:
            assert k % 4 == 0
            assert k + 4 <= len(data)
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == AND:
            acc &= k
        elif code in (JEQ, JGE, JSET):
            taken = {JEQ: acc == k, JGE: acc >= k, JSET: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
            continue
        elif code == RET:
            return k
        else:
            pytest.fail(f"unexpected BPF opcode {code:#x} at {pc}")
        pc += 1
    pytest.fail("the program ran off its end")


def errno_of(action: int) -> int:
    assert action & 0xFFFF0000 == RET_ERRNO, hex(action)
    return action & 0xFFFF


@pytest.fixture(params=sorted(ARCHES))
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def nr(arch: str, name: str) -> int:
    return ARCHES[arch].syscalls[name]


def test_program_is_well_formed_for_the_kernel(arch: str) -> None:
    insns = decode(build_filter(arch, OWN_PID))
    assert 0 < len(insns) <= 4096  # BPF_MAXINSNS
    assert insns[-1][0] == RET  # the verifier requires a final return
    for pc, (code, jt, jf, _k) in enumerate(insns):
        if code in (JEQ, JGE, JSET):
            assert pc + 1 + max(jt, jf) < len(insns), f"jump out of the program at {pc}"
    assert insns[0] == (LD_W_ABS, 0, 0, 4), "the architecture must be checked first"


def test_the_filter_is_a_pure_function_of_arch_and_pid(arch: str) -> None:
    assert build_filter(arch, OWN_PID) == build_filter(arch, OWN_PID)
    assert build_filter(arch, OWN_PID) != build_filter(arch, OWN_PID + 1)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="riscv64"):
        build_filter("riscv64", OWN_PID)


def test_foreign_architecture_is_killed(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    assert run(program, arch, 0, audit=0x40000003) == RET_KILL_PROCESS  # i386
    assert run(program, arch, nr(arch, "ptrace"), audit=0x40000003) == RET_KILL_PROCESS


def test_x32_syscalls_are_killed_on_x86_64() -> None:
    program = build_filter("x86_64", OWN_PID)
    assert run(program, "x86_64", 0x40000000 | 0) == RET_KILL_PROCESS  # x32 read
    assert run(program, "x86_64", 0x40000000 | 57) == RET_KILL_PROCESS  # x32 fork


def test_ordinary_syscalls_are_allowed(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    for number in (0, 1, 3, 63, 64, 200, 300):
        if number not in ARCHES[arch].syscalls.values():
            assert run(program, arch, number) == RET_ALLOW, number


def test_every_denied_syscall_gets_its_errno(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    present = [name for name in DENIED if name in ARCHES[arch].syscalls]
    legacy = {"fork", "vfork", "iopl", "ioperm", "uselib", "chmod", "chown", "lchown", "utime"}
    legacy |= {"utimes", "futimesat"}  # x86 only: aarch64 has just the *at forms
    assert set(DENIED) - set(present) <= legacy
    for name in present:
        assert errno_of(run(program, arch, nr(arch, name), 0, 0)) == DENIED[name], name


def test_clone3_gets_enosys_so_glibc_falls_back_to_clone(arch: str) -> None:
    assert errno_of(run(build_filter(arch, OWN_PID), arch, nr(arch, "clone3"))) == errno.ENOSYS


def test_clone_allows_threads_only(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    clone = nr(arch, "clone")
    assert run(program, arch, clone, THREAD_FLAGS) == RET_ALLOW
    assert errno_of(run(program, arch, clone, SIGCHLD)) == errno.EPERM  # fork()
    assert errno_of(run(program, arch, clone, CLONE_VM | 0x4000 | SIGCHLD)) == errno.EPERM  # vfork
    for namespace in (CLONE_NEWUSER, CLONE_NEWNET, 0x00020000, 0x20000000):
        flags = THREAD_FLAGS | namespace
        assert errno_of(run(program, arch, clone, flags)) == errno.EPERM, hex(namespace)


def test_sockets_are_unix_stream_or_seqpacket_only(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    for name in ("socket", "socketpair"):
        call = nr(arch, name)
        assert run(program, arch, call, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC) == RET_ALLOW
        assert run(program, arch, call, AF_UNIX, SOCK_SEQPACKET) == RET_ALLOW
        assert errno_of(run(program, arch, call, AF_UNIX, SOCK_DGRAM)) == errno.EPERM
        for family in (AF_INET, AF_INET6, AF_NETLINK, 17):  # 17: AF_PACKET
            action = run(program, arch, call, family, SOCK_STREAM)
            assert errno_of(action) == errno.EAFNOSUPPORT, (name, family)


def test_socket_family_is_read_as_the_kernel_reads_it(arch: str) -> None:
    """The kernel truncates ``domain`` to an int, so junk in the upper half changes nothing."""
    program = build_filter(arch, OWN_PID)
    socket = nr(arch, "socket")
    assert run(program, arch, socket, (0xFFFF << 32) | AF_UNIX, SOCK_STREAM) == RET_ALLOW
    inet = run(program, arch, socket, (0xFFFF << 32) | AF_INET, SOCK_STREAM)
    assert errno_of(inet) == errno.EAFNOSUPPORT


def test_connect_is_refused(arch: str) -> None:
    assert errno_of(run(build_filter(arch, OWN_PID), arch, nr(arch, "connect"))) == errno.EPERM


def test_signals_reach_only_the_worker_itself(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        call = nr(arch, name)
        assert run(program, arch, call, OWN_PID, 9) == RET_ALLOW, name
        for target in (1, OWN_PID + 1, 0, 0xFFFFFFFF):  # init, a neighbour, own group, -1
            assert errno_of(run(program, arch, call, target, 9)) == errno.EPERM, (name, target)
    assert errno_of(run(program, arch, nr(arch, "tkill"), OWN_PID, 9)) == errno.EPERM


def test_terminal_injection_ioctls_are_refused(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    ioctl = nr(arch, "ioctl")
    assert run(program, arch, ioctl, 1, TCGETS) == RET_ALLOW
    assert errno_of(run(program, arch, ioctl, 1, TIOCSTI)) == errno.EPERM
    assert errno_of(run(program, arch, ioctl, 1, 0x541C)) == errno.EPERM  # TIOCLINUX


def test_fork_and_vfork_exist_only_on_x86_64() -> None:
    assert {"fork", "vfork"} <= set(ARCHES["x86_64"].syscalls)
    assert not {"fork", "vfork"} & set(ARCHES["aarch64"].syscalls)


HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}


def test_syscall_numbers_match_the_kernel_headers(arch: str) -> None:
    header = HEADERS[arch]
    if not header.exists():
        pytest.skip(f"{header} not installed")
    numbers = {
        name: int(value)
        for name, value in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text())
    }
    table = ARCHES[arch].syscalls
    # Newer than this machine's headers; numbers from 6.6 / 6.13, shared by every architecture.
    newer = {"fchmodat2": 452, "setxattrat": 463, "removexattrat": 466}
    numbers = {**newer, **numbers}
    wrong = {name: (n, numbers.get(name)) for name, n in table.items() if numbers.get(name) != n}
    assert not wrong, f"table disagrees with {header}: {wrong}"
    assert seccomp.ARCHES[arch].syscalls["seccomp"] == numbers["seccomp"]
