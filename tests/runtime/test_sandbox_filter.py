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
from plugport.runtime.sandbox.syscall_policy import NUMBERS, RULES, Rule

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


def trace_loads(program: bytes, arch: str, nr: int) -> set[int]:
    """The ``struct seccomp_data`` offsets the program loads for syscall ``nr``."""
    data = struct.pack("<iIQ6Q", nr, ARCHES[arch].audit, 0, *[0] * 6)
    insns = decode(program)
    loads: set[int] = set()
    acc, pc = 0, 0
    for _ in range(len(insns)):
        code, jt, jf, k = insns[pc]
        if code == LD_W_ABS:
            loads.add(k)
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == AND:
            acc &= k
        elif code in (JEQ, JGE, JSET):
            taken = {JEQ: acc == k, JGE: acc >= k, JSET: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
            continue
        elif code == RET:
            return loads
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


def test_the_inventory_decides_every_syscall_of_both_tables() -> None:
    for arch, numbers in NUMBERS.items():
        assert set(numbers) <= set(RULES), (arch, sorted(set(numbers) - set(RULES)))
        assert len(set(numbers.values())) == len(numbers), f"{arch}: a number used twice"
    known = set(NUMBERS["x86_64"]) | set(NUMBERS["aarch64"])
    assert set(RULES) <= known, sorted(set(RULES) - known)
    for rule in RULES.values():
        assert rule.why, rule.name


def inventory(arch: str, verdict: str) -> list[Rule]:
    return [RULES[name] for name in ARCHES[arch].syscalls if RULES[name].verdict == verdict]


def test_every_allowed_syscall_is_allowed_whatever_its_arguments(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    allowed = inventory(arch, "allowed")
    assert len(allowed) > 100
    for rule in allowed:
        for args in ((), (1, 2, 3), (0xFFFFFFFF,) * 6):
            assert run(program, arch, nr(arch, rule.name), *args) == RET_ALLOW, rule.name


def test_every_refused_syscall_gets_its_errno(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    refused = inventory(arch, "refused")
    assert {rule.name for rule in refused} == {n for n in DENIED if n in ARCHES[arch].syscalls}
    for rule in refused:
        for args in ((), (OWN_PID,), (0, 0, 0)):
            action = run(program, arch, nr(arch, rule.name), *args)
            assert errno_of(action) == rule.errno, rule.name


def call_naming(program: bytes, arch: str, rule: Rule, pid: int, which: int | None = None) -> int:
    args = [0] * 6
    args[rule.pid_arg] = pid
    if rule.which is not None:
        args[rule.which[0]] = rule.which[1] if which is None else which
    return run(program, arch, nr(arch, rule.name), *args)


def test_every_self_only_syscall_reaches_the_worker_and_nothing_else(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    rules = inventory(arch, "self")
    assert {rule.name for rule in rules} >= {
        "kill", "prlimit64", "setpriority", "sched_setaffinity", "ioprio_set", "pidfd_open"
    }  # fmt: skip
    for rule in rules:
        assert call_naming(program, arch, rule, OWN_PID) == RET_ALLOW, rule.name
        junk_high = (0xFFFF << 32) | OWN_PID  # the kernel reads an int
        assert call_naming(program, arch, rule, junk_high) == RET_ALLOW, rule.name
        zero = RET_ALLOW if rule.zero_is_self else RET_ERRNO | errno.EPERM
        assert call_naming(program, arch, rule, 0) == zero, rule.name
        for other in (1, OWN_PID - 1, OWN_PID + 1, 0xFFFFFFFF, 0x100000000 - OWN_PID):
            action = call_naming(program, arch, rule, other)  # incl. -1 and -pid (its group)
            assert errno_of(action) == errno.EPERM, (rule.name, other)
        if rule.which is not None:
            for which in range(4):  # PRIO_PROCESS/PGRP/USER, IOPRIO_WHO_PROCESS/PGRP/USER
                if which != rule.which[1]:
                    for pid in (0, OWN_PID):
                        action = call_naming(program, arch, rule, pid, which)
                        assert errno_of(action) == errno.EPERM, (rule.name, which, pid)


def test_in_a_pid_namespace_the_worker_is_pid_1(arch: str) -> None:
    program = build_filter(arch, 1)
    kill = nr(arch, "kill")
    assert run(program, arch, kill, 1, 9) == RET_ALLOW
    assert errno_of(run(program, arch, kill, 2, 9)) == errno.EPERM
    assert errno_of(run(program, arch, nr(arch, "prlimit64"), 2, 7)) == errno.EPERM


def test_nice_and_io_priority_reach_only_the_process_not_its_group_or_user(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    prio_process, prio_pgrp, prio_user = 0, 1, 2
    ioprio_who_process, ioprio_who_pgrp = 1, 2
    setpriority = nr(arch, "setpriority")
    assert run(program, arch, setpriority, prio_process, 0, 19) == RET_ALLOW  # os.nice()
    assert errno_of(run(program, arch, setpriority, prio_pgrp, 0, 19)) == errno.EPERM
    assert errno_of(run(program, arch, setpriority, prio_user, 0, 19)) == errno.EPERM
    ioprio_set = nr(arch, "ioprio_set")
    assert run(program, arch, ioprio_set, ioprio_who_process, 0, 0) == RET_ALLOW
    assert errno_of(run(program, arch, ioprio_set, ioprio_who_pgrp, 0, 0)) == errno.EPERM


def test_numbers_no_rule_knows_get_enosys(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    known = set(ARCHES[arch].syscalls.values())
    unknown = [n for n in range(600) if n not in known]
    assert len(unknown) > 100
    for number in [*unknown, 1000, 0x3FFFFFFF]:
        assert errno_of(run(program, arch, number)) == errno.ENOSYS, number


def test_calls_decided_by_number_never_load_an_argument(arch: str) -> None:
    """So the kernel's seccomp action cache answers every allowed call without running the
    program: its emulator gives up at the first load of an argument."""
    program = build_filter(arch, OWN_PID)
    for name, number in ARCHES[arch].syscalls.items():
        if RULES[name].verdict in ("allowed", "refused"):
            loads = trace_loads(program, arch, number)
            assert loads <= {0, 4}, (name, loads)


def test_what_cpython_needs_is_allowed(arch: str) -> None:
    program = build_filter(arch, OWN_PID)
    needed = (
        "read write openat close newfstatat statx mmap munmap mprotect brk rt_sigaction "
        "rt_sigprocmask rt_sigreturn futex set_robust_list rseq epoll_pwait getrandom "
        "getdents64 readlinkat faccessat2 lseek fcntl pipe2 eventfd2 clock_nanosleep "
        "exit_group execve sigaltstack madvise sched_yield getpid gettid uname sysinfo"
    )
    for name in needed.split():
        assert run(program, arch, nr(arch, name), 3, 0, 0) == RET_ALLOW, name
    assert run(program, arch, nr(arch, "prlimit64"), 0, 7) == RET_ALLOW  # getrlimit()
    assert run(program, arch, nr(arch, "sched_getaffinity"), 0) == RET_ALLOW  # cpu_count()
    assert run(program, arch, nr(arch, "tgkill"), OWN_PID, OWN_PID + 1, 10) == RET_ALLOW


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
    # Newer than this machine's headers (6.1): from the 6.18 tables (listns: 6.19).
    newer = {
        "cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454,
        "futex_wait": 455, "futex_requeue": 456, "statmount": 457, "listmount": 458,
        "lsm_get_self_attr": 459, "lsm_set_self_attr": 460, "lsm_list_modules": 461,
        "mseal": 462, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465,
        "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469,
        "listns": 470,
    }  # fmt: skip
    if arch == "x86_64":
        newer |= {"uretprobe": 335, "uprobe": 336}
    else:
        newer |= {"clone3": 435}  # arm64 turns on __ARCH_WANT_SYS_CLONE3 in kernel headers
        numbers["newfstatat"] = numbers["fstatat"]  # __NR3264_fstatat, named for 64-bit
    numbers = {**newer, **numbers}
    wrong = {name: (n, numbers.get(name)) for name, n in table.items() if numbers.get(name) != n}
    assert not wrong, f"table disagrees with {header}: {wrong}"
    assert seccomp.ARCHES[arch].syscalls["seccomp"] == numbers["seccomp"]
