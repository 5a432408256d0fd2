/* Resource control of a service: the cgroup v2 limits and CPU policy written to its
 * leaf, and the scheduling settings its processes get before exec. */
#pragma once

#include "unit.h"

/* In the child, before credentials are dropped: Nice=, CPUSchedulingPolicy=,
 * OOMScoreAdjust= and the like. Returns 0 or -errno; no allocation, no logging. */
int resource_apply_child(const unit_resource *r);

/* Human-readable lines for each setting of u that this machine cannot enforce
 * ("CPUWeight= not enforced: cpu controller unavailable"); *ret NULL when none. */
int resource_warnings(const unit *u, char ***ret);
