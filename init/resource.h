/* Resource control of a service: the cgroup v2 limits and CPU policy written to its
 * leaf (init/cgroup.c), and the scheduling settings its processes get before exec. */
#pragma once

#include "unit.h"

/* In the child, before credentials are dropped: Nice=, CPUSchedulingPolicy=,
 * CPUSchedulingPriority=, CPUSchedulingResetOnFork=, the realtime tier's SCHED_RR, the
 * RLIMIT_RTTIME cap of real-time processes (when LimitRTTIME= left it unlimited) and
 * OOMScoreAdjust=. Returns 0 or -errno; no allocation, no logging. */
int resource_apply_child(const unit_resource *r);

/* Human-readable lines for each setting of u that this machine does not enforce
 * ("CPUWeight= not enforced: cpu controller unavailable"), including what could not be
 * written to its cgroup; *ret NULL when none. Returns 0 or -ENOMEM. */
int resource_warnings(const unit *u, char ***ret);

/* Like resource_warnings() without allocating (for the start path): the number of such
 * lines, the first one in buf (untouched when none). */
size_t resource_unenforced(const unit *u, char *buf, size_t size);
