/* Resource control settings of a unit: cgroup v2 limits, CPU policy, scheduling. */
#pragma once

#include <stdint.h>

typedef struct unit_resource {
        uint64_t cpu_weight; /* placeholder until the resource directives exist */
} unit_resource;

#define UNIT_RESOURCE_DEFAULTS                                                                     \
        { .cpu_weight = 0 }
