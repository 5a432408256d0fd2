/* System call filters: SystemCallFilter= and friends, compiled with libseccomp. */
#pragma once

#include <stdint.h>

typedef struct unit_seccomp {
        int placeholder; /* until the seccomp directives exist */
} unit_seccomp;

#define UNIT_SECCOMP_DEFAULTS                                                                      \
        { .placeholder = 0 }
