/* The container baseline: the system call filter every containerized service gets
 * (policies/README.md explains each choice). For policies/seccomp.c only. */
#pragma once

#include <linux/filter.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

/* Adds the baseline's rules to ctx, whose default action is the refusal. Calls this
 * libseccomp does not know are skipped. Returns 0 or -errno. */
int seccomp_baseline_add_rules(scmp_filter_ctx ctx);

/* The checks of 32-bit arguments that libseccomp 2.5 compares as 64-bit values: socket()
 * families and ioctl() requests, for the ABIs in tokens (SCMP_ARCH_*). Writes at most max
 * instructions that end by falling through to the program that follows, or return refusal.
 * Returns the number written or -E2BIG. */
int seccomp_baseline_prefix(const uint32_t *tokens, size_t n_tokens, uint32_t refusal,
                            struct sock_filter *out, size_t max);
