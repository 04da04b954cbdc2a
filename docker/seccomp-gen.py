#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes docker/seccomp-io_uring.json: the default container seccomp
policy of Docker/moby (deny by default with EPERM, an allowlist of system
calls, a few calls allowed only with a capability or with safe arguments)
plus the three io_uring calls that the default policy leaves out.

The lists below are our own rendering of that documented policy, grouped
by purpose so a reviewer can check each group.  Run it again after an
edit; docker/test.sh fails when the JSON and this script disagree.

    docker/seccomp-gen.py > docker/seccomp-io_uring.json

With --docker-default it leaves io_uring out, which gives stock Docker's
policy: docker/test.sh runs the image under it to check what a program
says when rings are refused with EPERM.
"""
import json
import sys

EPERM = 1
ENOSYS = 38

# Allowed for every container, whatever its capabilities.
ALLOW = {
    "process and threads": """
        arch_prctl capget capset execve execveat exit
        exit_group fork get_robust_list get_thread_area getcpu getpgid
        getpgrp getpid getppid getpriority getrlimit getrusage getsid
        gettid ioprio_get ioprio_set kill membarrier pause pidfd_open
        pidfd_send_signal prctl prlimit64 process_mrelease ptrace
        restart_syscall rseq sched_get_priority_max sched_get_priority_min
        sched_getaffinity sched_getattr sched_getparam sched_getscheduler
        sched_rr_get_interval sched_rr_get_interval_time64
        sched_setaffinity sched_setattr sched_setparam sched_setscheduler
        sched_yield seccomp set_robust_list set_thread_area
        set_tid_address setpgid setpriority setrlimit setsid tgkill tkill
        ugetrlimit uname vfork wait4 waitid waitpid
        """,
    "credentials": """
        getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
        getgroups32 getresgid getresgid32 getresuid getresuid32 getuid
        getuid32 setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
        setgroups setgroups32 setregid setregid32 setresgid setresgid32
        setresuid setresuid32 setreuid setreuid32 setuid setuid32
        """,
    "signals": """
        alarm rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
        rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
        rt_tgsigqueueinfo sigaltstack signalfd signalfd4 sigprocmask
        sigreturn
        """,
    "memory": """
        brk madvise map_shadow_stack memfd_create memfd_secret mincore
        mlock mlock2 mlockall mmap mmap2 mprotect mremap msync munlock
        munlockall munmap pkey_alloc pkey_free pkey_mprotect
        remap_file_pages
        """,
    "files and descriptors": """
        access chdir chmod chown chown32 close close_range
        copy_file_range creat dup dup2 dup3 faccessat faccessat2 fadvise64
        fadvise64_64 fallocate fchdir fchmod fchmodat fchmodat2 fchown
        fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
        flock fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
        fstatfs64 fsync ftruncate ftruncate64 futimesat getcwd getdents
        getdents64 getxattr lchown lchown32 lgetxattr link linkat
        listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat
        lstat64 mkdir mkdirat mknod mknodat name_to_handle_at newfstatat
        open openat openat2 pipe pipe2 pread64 preadv preadv2 pwrite64
        pwritev pwritev2 read readahead readlink readlinkat readv
        removexattr rename renameat renameat2 rmdir sendfile sendfile64
        setxattr splice stat stat64 statfs statfs64 statx symlink
        symlinkat sync sync_file_range syncfs tee truncate truncate64
        umask unlink unlinkat utime utimensat utimensat_time64 utimes
        vmsplice write writev cachestat
        """,
    "polling and events": """
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait
        epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
        fanotify_mark inotify_add_watch inotify_init inotify_init1
        inotify_rm_watch _newselect poll ppoll ppoll_time64 pselect6
        pselect6_time64 select
        """,
    "asynchronous I/O (aio)": """
        io_cancel io_destroy io_getevents io_pgetevents
        io_pgetevents_time64 io_setup io_submit
        """,
    "futexes": """
        futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake
        """,
    "time and timers": """
        adjtimex clock_adjtime clock_adjtime64 clock_getres
        clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
        clock_nanosleep_time64 getitimer gettimeofday nanosleep setitimer
        time timer_create timer_delete timer_getoverrun timer_gettime
        timer_gettime64 timer_settime timer_settime64 timerfd_create
        timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64 times
        """,
    "sockets": """
        accept accept4 bind connect getpeername getsockname getsockopt
        listen recv recvfrom recvmmsg recvmmsg_time64 recvmsg send
        sendmmsg sendmsg sendto setsockopt shutdown socketcall socketpair
        """,
    "System V and POSIX IPC": """
        ipc mq_getsetattr mq_notify mq_open mq_timedreceive
        mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink
        msgctl msgget msgrcv msgsnd semctl semget semop semtimedop
        semtimedop_time64 shmat shmctl shmdt shmget
        """,
    "misc": """
        getrandom ioctl landlock_add_rule landlock_create_ruleset
        landlock_restrict_self sysinfo
        """,
}

# Calls that only a container granted the capability may make.
BY_CAP = {
    "CAP_SYS_ADMIN": """
        bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
        lookup_dcookie mount mount_setattr move_mount open_tree
        perf_event_open quotactl quotactl_fd setdomainname sethostname
        setns syslog umount umount2 unshare
        """,
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": """
        kcmp pidfd_getfd process_madvise process_vm_readv
        process_vm_writev ptrace
        """,
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": """
        get_mempolicy mbind set_mempolicy set_mempolicy_home_node
        """,
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# Calls that exist on one architecture family only.
BY_ARCH = {
    ("ppc64le",): "sync_file_range2 swapcontext",
    ("arm", "arm64"): """
        arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint
        cacheflush set_tls
        """,
    ("amd64",): "modify_ldt",
    ("s390", "s390x"): "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ("riscv64",): "riscv_flush_icache riscv_hwprobe",
}

IO_URING = ["io_uring_setup", "io_uring_enter", "io_uring_register"]

ARCHES = [
    ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
    ("SCMP_ARCH_MIPS64", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
    ("SCMP_ARCH_MIPS64N32", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
    ("SCMP_ARCH_MIPSEL64", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
    ("SCMP_ARCH_MIPSEL64N32", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
    ("SCMP_ARCH_S390X", ["SCMP_ARCH_S390"]),
    ("SCMP_ARCH_RISCV64", []),
]

# clone() flags that create namespaces; without CAP_SYS_ADMIN a clone
# carrying any of them is refused.
CLONE_NS_MASK = 0x7E020000
AF_VSOCK = 40
# personality() values a program may set without privilege: the default,
# UNAME26, READ_IMPLIES_EXEC, both, and the 0xffffffff query.
PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]


def names(text):
    return sorted(set(text.split()))


def rule(calls, comment, action="SCMP_ACT_ALLOW", args=None, includes=None,
         excludes=None, errno=None):
    r = {"names": calls, "action": action, "args": args or [],
         "comment": comment, "includes": includes or {},
         "excludes": excludes or {}}
    if errno is not None:
        r["errnoRet"] = errno
    return r


def arg(index, value, op, mask=0):
    return {"index": index, "value": value, "valueTwo": mask, "op": op}


def special_rules():
    out = [rule(["personality"], "personality: unprivileged values only",
                args=[arg(0, p, "SCMP_CMP_EQ")]) for p in PERSONALITIES]
    out.append(rule(["socket"], "socket: every family but AF_VSOCK",
                    args=[arg(0, AF_VSOCK, "SCMP_CMP_NE")]))
    out.append(rule(["clone"],
                    "clone without namespace flags (no CAP_SYS_ADMIN)",
                    args=[arg(0, 0, "SCMP_CMP_MASKED_EQ", CLONE_NS_MASK)],
                    excludes={"caps": ["CAP_SYS_ADMIN"],
                              "arches": ["s390", "s390x"]}))
    out.append(rule(["clone"],
                    "s390 passes clone flags second",
                    args=[arg(1, 0, "SCMP_CMP_MASKED_EQ", CLONE_NS_MASK)],
                    includes={"arches": ["s390", "s390x"]},
                    excludes={"caps": ["CAP_SYS_ADMIN"]}))
    out.append(rule(["clone3"],
                    "clone3 cannot be filtered by flags: ENOSYS makes libc "
                    "fall back to clone",
                    action="SCMP_ACT_ERRNO", errno=ENOSYS,
                    excludes={"caps": ["CAP_SYS_ADMIN"]}))
    return out


def profile(with_io_uring=True):
    allowed = sorted({n for text in ALLOW.values() for n in names(text)})
    rules = [rule(allowed, "the default allowlist")]
    rules += special_rules()
    for arches, text in BY_ARCH.items():
        rules.append(rule(names(text), "only on " + ", ".join(arches),
                          includes={"arches": list(arches)}))
    for cap, text in BY_CAP.items():
        rules.append(rule(names(text), "needs " + cap,
                          includes={"caps": [cap]}))
    if with_io_uring:
        rules.append(rule(IO_URING,
                          "patinox: io_uring rings (left out of the "
                          "default policy since 2023)"))
    arch_map = [{"architecture": a, "subArchitectures": s}
                for a, s in ARCHES]
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
            "archMap": arch_map, "syscalls": rules}


def main():
    args = sys.argv[1:]
    if args not in ([], ["--docker-default"]):
        sys.stderr.write("usage: seccomp-gen.py [--docker-default]\n")
        return 2
    json.dump(profile(with_io_uring=not args), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
