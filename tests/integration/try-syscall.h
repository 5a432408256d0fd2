/* The calls try-syscall makes: each with harmless arguments that fail (or, for the controls,
 * do nothing) when the call is let through, so that a refusal by the filter stands out. */
#pragma once

#define AF_ALG_HI 0x100000026L  /* AF_ALG with high bits set: the kernel truncates to int */
#define TIOCSTI_HI 0x100005412L /* TIOCSTI likewise */

/* X(probe, system call, six arguments). The probe names ending in _ok are controls that
 * every filter of vigil lets through. */
#define TRY_PROBES(X)                                                                              \
        X(getpid_ok, getpid, 0, 0, 0, 0, 0, 0)                                                     \
        X(keyctl, keyctl, 0xffff, 0, 0, 0, 0, 0)                                                   \
        X(add_key, add_key, 0, 0, 0, 0, 0, 0)                                                      \
        X(request_key, request_key, 0, 0, 0, 0, 0, 0)                                              \
        X(bpf, bpf, -1, 0, 0, 0, 0, 0)                                                             \
        X(ptrace, ptrace, 0x7fffffff, 0, 0, 0, 0, 0)                                               \
        X(process_vm_readv, process_vm_readv, 0, 0, 0, 0, 0, 1)                                    \
        X(process_vm_writev, process_vm_writev, 0, 0, 0, 0, 0, 1)                                  \
        X(mount, mount, 0, 0, 0, 0, 0, 0)                                                          \
        X(umount2, umount2, 0, -1, 0, 0, 0, 0)                                                     \
        X(pivot_root, pivot_root, 0, 0, 0, 0, 0, 0)                                                \
        X(move_mount, move_mount, -1, 0, -1, 0, -1, 0)                                             \
        X(fsopen, fsopen, 0, -1, 0, 0, 0, 0)                                                       \
        X(fsmount, fsmount, -1, -1, 0, 0, 0, 0)                                                    \
        X(fsconfig, fsconfig, -1, -1, 0, 0, 0, 0)                                                  \
        X(fspick, fspick, -1, 0, -1, 0, 0, 0)                                                      \
        X(open_tree, open_tree, -1, 0, -1, 0, 0, 0)                                                \
        X(mount_setattr, mount_setattr, -1, 0, -1, 0, 0, 0)                                        \
        X(chroot, chroot, 0, 0, 0, 0, 0, 0)                                                        \
        X(unshare, unshare, 1, 0, 0, 0, 0, 0)                                                      \
        X(setns, setns, -1, 0, 0, 0, 0, 0)                                                         \
        X(clone_newuser, clone, 0x10000000 | 0x200, 0, 0, 0, 0, 0)                                 \
        X(clone_newns, clone, 0x20000 | 0x200, 0, 0, 0, 0, 0)                                      \
        X(clone_plain_ok, clone, 0x800, 0, 0, 0, 0, 0)                                             \
        X(clone3, clone3, 0, 0, 0, 0, 0, 0)                                                        \
        X(open_by_handle_at, open_by_handle_at, -1, 0, 0, 0, 0, 0)                                 \
        X(name_to_handle_at, name_to_handle_at, -1, 0, 0, 0, -1, 0)                                \
        X(userfaultfd, userfaultfd, -1, 0, 0, 0, 0, 0)                                             \
        X(perf_event_open, perf_event_open, 0, 0, -1, -1, 0, 0)                                    \
        X(kexec_load, kexec_load, 0, 0, 0, -1, 0, 0)                                               \
        X(kexec_file_load, kexec_file_load, -1, -1, 0, 0, -1, 0)                                   \
        X(init_module, init_module, 0, 0, 0, 0, 0, 0)                                              \
        X(finit_module, finit_module, -1, 0, 0, 0, 0, 0)                                           \
        X(delete_module, delete_module, 0, 0, 0, 0, 0, 0)                                          \
        X(io_uring_setup, io_uring_setup, 0, 0, 0, 0, 0, 0)                                        \
        X(io_uring_enter, io_uring_enter, -1, 0, 0, 0, 0, 0)                                       \
        X(io_uring_register, io_uring_register, -1, 0, 0, 0, 0, 0)                                 \
        X(personality, personality, 0x0040000, 0, 0, 0, 0, 0)                                      \
        X(personality_ok, personality, 0xffffffff, 0, 0, 0, 0, 0)                                  \
        X(socket_alg, socket, 38, 0xffff, 0, 0, 0, 0)                                              \
        X(socket_alg_hi, socket, AF_ALG_HI, 0xffff, 0, 0, 0, 0)                                    \
        X(socket_vsock, socket, 40, 0xffff, 0, 0, 0, 0)                                            \
        X(socket_ok, socket, 1, 0xffff, 0, 0, 0, 0)                                                \
        X(ioctl_tiocsti, ioctl, -1, 0x5412, 0, 0, 0, 0)                                            \
        X(ioctl_tiocsti_hi, ioctl, -1, TIOCSTI_HI, 0, 0, 0, 0)                                     \
        X(ioctl_ok, ioctl, -1, 0x5401, 0, 0, 0, 0)                                                 \
        X(socketcall, socketcall, -1, 0, 0, 0, 0, 0)                                               \
        X(reboot, reboot, 0, 0, 0, 0, 0, 0)                                                        \
        X(swapon, swapon, 0, 0, 0, 0, 0, 0)                                                        \
        X(swapoff, swapoff, 0, 0, 0, 0, 0, 0)                                                      \
        X(acct, acct, 0, 0, 0, 0, 0, 0)                                                            \
        X(settimeofday, settimeofday, 0, 1, 0, 0, 0, 0)                                            \
        X(clock_settime, clock_settime, -1, 0, 0, 0, 0, 0)                                         \
        X(adjtimex, adjtimex, 0, 0, 0, 0, 0, 0)                                                    \
        X(syslog, syslog, -1, 0, 0, 0, 0, 0)                                                       \
        X(iopl, iopl, 4, 0, 0, 0, 0, 0)                                                            \
        X(ioperm, ioperm, -1, 1, 0, 0, 0, 0)                                                       \
        X(quotactl, quotactl, 0, 0, 0, 0, 0, 0)                                                    \
        X(lookup_dcookie, lookup_dcookie, 0, 0, 0, 0, 0, 0)                                        \
        X(vhangup, vhangup, 0, 0, 0, 0, 0, 0)                                                      \
        X(nfsservctl, nfsservctl, 0, 0, 0, 0, 0, 0)                                                \
        X(uselib, uselib, 0, 0, 0, 0, 0, 0)                                                        \
        X(kcmp, kcmp, 0, 0, -1, 0, 0, 0)                                                           \
        X(sethostname, sethostname, 0, -1, 0, 0, 0, 0)

#define TRY_ENUM(probe, call, ...) P_##probe,
enum {
        TRY_PROBES(TRY_ENUM) N_PROBES
};

/* Each ABI's numbers, -1 where the ABI lacks the call; from the kernel's headers. */
extern const long try_nr_native[N_PROBES];
extern const long try_nr_i386[N_PROBES];
extern const long try_nr_x32[N_PROBES];
