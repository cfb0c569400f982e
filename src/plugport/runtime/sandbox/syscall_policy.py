"""The syscall inventory: one decision for every Linux system call on x86_64 and aarch64, with
why. The seccomp filter is compiled from it and ``plugport doctor --syscalls`` prints it.

The rule it protects: **a worker touches no process but itself, and observes no file outside what
Landlock lets it open.** The filter is an allowlist; every call takes one of four verdicts:

* ``allowed``: it can only act on the worker itself or on descriptors it already holds.
* ``self``: it names a process (pid, pgid, or ``which``/``who``); allowed only when that is the
  worker (its pid, or 0 where the kernel reads 0 as "the caller"), EPERM otherwise. The pid is
  compared as the kernel reads it, an int: the low 32 bits of the argument.
* ``checked``: allowed for some argument values only (threads, unix sockets, ioctls).
* ``refused``: EPERM; ENOSYS where glibc then falls back (``clone3``) or the call does not exist
  on 64-bit kernels.

A number the table does not know (a call newer than the table) gets ENOSYS, as the kernel itself
would answer, so C libraries fall back to the older call. Only a foreign audit architecture and
an x32 syscall kill the process (see :mod:`.seccomp`).

Some calls that read path metadata stay allowed because CPython cannot run without them
(``stat``, ``access``, ``readlink`` on every import); Landlock does not govern them, and the
worker's mount namespace is what hides the host's tree from them.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from plugport.runtime.sandbox._syscall_numbers import AARCH64, X86_64

__all__ = ["NUMBERS", "RULES", "Rule", "Verdict"]

Verdict = Literal["allowed", "self", "checked", "refused"]

NUMBERS: Mapping[str, Mapping[str, int]] = {"x86_64": X86_64, "aarch64": AARCH64}

PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1


@dataclass(frozen=True, slots=True)
class Rule:
    """What the filter does with one system call.

    For ``self``: argument ``pid_arg`` must be the worker's pid (or 0 when ``zero_is_self``), and
    when ``which`` is set, argument ``which[0]`` must equal ``which[1]`` (``PRIO_PROCESS``: a
    process, not a process group or a user). ``errno`` is what a refusal returns.
    """

    name: str
    verdict: Verdict
    why: str
    errno: int = errno.EPERM
    pid_arg: int = 0
    zero_is_self: bool = False
    which: tuple[int, int] | None = None

    @property
    def errno_name(self) -> str:
        return errno.errorcode[self.errno]


def _allow(why: str, names: str) -> list[Rule]:
    return [Rule(name, "allowed", why) for name in names.split()]


def _refuse(why: str, names: str, code: int = errno.EPERM) -> list[Rule]:
    return [Rule(name, "refused", why, code) for name in names.split()]


def _own(
    why: str,
    names: str,
    *,
    pid_arg: int = 0,
    zero_is_self: bool = True,
    which: tuple[int, int] | None = None,
) -> list[Rule]:
    rule = Rule("", "self", why, errno.EPERM, pid_arg, zero_is_self, which)
    return [replace(rule, name=name) for name in names.split()]


_ALLOWED = [
    *_allow(
        "I/O on a descriptor the worker already holds",
        "read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 lseek sendfile "
        "copy_file_range splice tee vmsplice readahead fadvise64 fallocate ftruncate fsync "
        "fdatasync sync_file_range flock fcntl close close_range dup dup2 dup3 pipe pipe2 fstat "
        "fstatfs fgetxattr flistxattr getdents getdents64 fchdir",
    ),
    *_allow(
        "opens, creates or renames by path: Landlock decides which paths",
        "open openat openat2 creat mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2 "
        "link linkat symlink symlinkat truncate chdir",
    ),
    *_allow(
        "path metadata CPython reads on every import; not governed by Landlock, so the mount "
        "namespace is what hides the host's tree",
        "stat lstat newfstatat statx access faccessat faccessat2 readlink readlinkat getcwd umask",
    ),
    *_allow(
        "the worker's own memory",
        "brk mmap munmap mremap mprotect madvise mincore msync mlock mlock2 munlock mlockall "
        "munlockall pkey_mprotect pkey_alloc pkey_free membarrier mseal map_shadow_stack mbind "
        "set_mempolicy get_mempolicy set_mempolicy_home_node",
    ),
    *_allow(
        "an anonymous file; whatever execveat runs from it inherits every layer",
        "memfd_create",
    ),
    *_allow(
        "threads and their synchronisation, within the worker",
        "futex futex_waitv futex_wake futex_wait futex_requeue set_robust_list set_tid_address "
        "rseq sched_yield gettid exit exit_group restart_syscall arch_prctl prctl",
    ),
    *_allow(
        "the worker's own signal handling",
        "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait rt_sigsuspend "
        "sigaltstack pause signalfd signalfd4",
    ),
    *_allow(
        "the event loop",
        "epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 poll ppoll "
        "select pselect6 eventfd eventfd2",
    ),
    *_allow(
        "clocks, sleeps and the worker's own timers",
        "nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time alarm getitimer "
        "setitimer timer_create timer_settime timer_gettime timer_getoverrun timer_delete "
        "timerfd_create timerfd_settime timerfd_gettime",
    ),
    *_allow(
        "reads the caller's own identity, usage or limits, or the machine's shape",
        "getpid getppid getuid geteuid getgid getegid getresuid getresgid getgroups getpgrp "
        "uname getcpu getrandom sysinfo getrusage times getrlimit sched_get_priority_max "
        "sched_get_priority_min",
    ),
    *_allow("the caller's own limits; a hard limit can only be lowered", "setrlimit"),
    *_allow(
        "on a unix socket the worker holds (socket() allows no other family; connect is refused)",
        "bind listen accept accept4 getsockname getpeername sendto recvfrom sendmsg recvmsg "
        "sendmmsg recvmmsg shutdown setsockopt getsockopt",
    ),
    *_allow(
        "reaches only the caller's own children, and it can start none",
        "wait4 waitid",
    ),
    *_allow(
        "what it runs inherits every layer (namespaces, rlimits, Landlock, this filter)",
        "execve execveat",
    ),
    *_allow(
        "can only narrow the caller's own sandbox",
        "seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self",
    ),
    *_allow(
        "made only by the kernel's uprobe trampolines (exempt from seccomp on recent kernels)",
        "uretprobe uprobe",
    ),
]

_SELF = [
    *_own(
        "a signal: only to the worker; 0 and negative pids name process groups that hold the "
        "zygote and the host",
        "kill tgkill rt_sigqueueinfo rt_tgsigqueueinfo",
        zero_is_self=False,
    ),
    *_own("a pidfd: only for the worker itself", "pidfd_open", zero_is_self=False),
    *_own(
        "resource limits of a pid: another process's would be changed or read",
        "prlimit64",
    ),
    *_own(
        "scheduling policy, priority or CPU affinity of a pid",
        "sched_setscheduler sched_getscheduler sched_setparam sched_getparam sched_setattr "
        "sched_getattr sched_rr_get_interval sched_setaffinity sched_getaffinity",
    ),
    *_own(
        "nice value: PRIO_PROCESS for the worker only (PRIO_PGRP and PRIO_USER reach the host)",
        "getpriority setpriority",
        pid_arg=1,
        which=(0, PRIO_PROCESS),
    ),
    *_own(
        "I/O priority: IOPRIO_WHO_PROCESS for the worker only (not a group or a user)",
        "ioprio_get ioprio_set",
        pid_arg=1,
        which=(0, IOPRIO_WHO_PROCESS),
    ),
    *_own(
        "another process's robust futex list, NUMA placement or pages",
        "get_robust_list migrate_pages move_pages",
    ),
    *_own("the process group or session of a pid", "getpgid getsid"),
]

_CHECKED = [
    Rule("clone", "checked", "threads only (CLONE_THREAD, no namespace flag); no new process"),
    Rule(
        "socket",
        "checked",
        "AF_UNIX stream or seqpacket only (EAFNOSUPPORT otherwise; EPERM for datagrams, which "
        "could sendto() any named socket)",
    ),
    Rule("socketpair", "checked", "as socket"),
    Rule("ioctl", "checked", "all but TIOCSTI and TIOCLINUX, which type into the host's terminal"),
]

_REFUSED = [
    *_refuse(
        "reaches another process's memory, descriptors or execution",
        "ptrace process_vm_readv process_vm_writev process_madvise process_mrelease kcmp "
        "pidfd_getfd perf_event_open",
    ),
    *_refuse(
        "a signal by thread id or pidfd, which BPF cannot tie to the worker (tgkill covers its "
        "own threads)",
        "tkill pidfd_send_signal",
    ),
    *_refuse(
        "changes the worker's process group, session or identity; nothing a plugin needs",
        "setpgid setsid setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid "
        "setgroups",
    ),
    *_refuse(
        "capabilities of a pid named in memory BPF cannot read (and the worker holds none)",
        "capget capset",
    ),
    *_refuse("a new process: no fork bomb", "fork vfork"),
    *_refuse("flags in memory BPF cannot read; glibc falls back to clone", "clone3", errno.ENOSYS),
    *_refuse("namespaces are set up before the filter", "unshare setns listns"),
    *_refuse(
        "watches or observes files without opening them (Landlock governs opening only)",
        "inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_init "
        "fanotify_mark name_to_handle_at open_by_handle_at statfs ustat sysfs quotactl "
        "quotactl_fd statmount listmount getxattr lgetxattr listxattr llistxattr getxattrat "
        "listxattrat file_getattr cachestat",
    ),
    *_refuse(
        "changes file metadata: Landlock does not cover it, and the worker's uid may own the "
        "host's files",
        "chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat utime utimes futimesat "
        "utimensat setxattr lsetxattr fsetxattr removexattr lremovexattr fremovexattr "
        "setxattrat removexattrat file_setattr mknod mknodat",
    ),
    *_refuse(
        "mounts and root changes",
        "mount umount2 pivot_root chroot open_tree open_tree_attr move_mount fsopen fsconfig "
        "fsmount fspick mount_setattr",
    ),
    *_refuse(
        "System V and POSIX IPC live outside the sandbox: shared with the host and every plugin",
        "shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl "
        "mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr",
    ),
    *_refuse(
        "the channel arrives connected; Landlock does not restrict connecting to named unix "
        "sockets",
        "connect",
    ),
    *_refuse(
        "large kernel attack surface no plugin needs",
        "io_uring_setup io_uring_enter io_uring_register bpf userfaultfd add_key request_key "
        "keyctl personality modify_ldt io_setup io_destroy io_submit io_cancel io_getevents "
        "io_pgetevents memfd_secret remap_file_pages lsm_get_self_attr lsm_set_self_attr "
        "lsm_list_modules syslog vhangup",
    ),
    *_refuse(
        "the machine's state: modules, kexec, clocks, swap, host names, I/O ports, global syncs",
        "init_module finit_module delete_module kexec_load kexec_file_load acct swapon swapoff "
        "reboot settimeofday clock_settime clock_adjtime adjtimex iopl ioperm sethostname "
        "setdomainname sync syncfs",
    ),
    *_refuse(
        "not implemented for 64-bit processes (or removed): the kernel's own answer",
        "uselib create_module get_kernel_syms query_module nfsservctl getpmsg putpmsg "
        "afs_syscall tuxcall security set_thread_area get_thread_area lookup_dcookie "
        "epoll_ctl_old epoll_wait_old vserver _sysctl",
        errno.ENOSYS,
    ),
]


def _table(rules: Iterable[Rule]) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for rule in rules:
        if rule.name in table:
            raise AssertionError(f"two rules for {rule.name}")  # a bug in this module
        table[rule.name] = rule
    return table


RULES: Mapping[str, Rule] = _table([*_ALLOWED, *_SELF, *_CHECKED, *_REFUSED])
