/* Resource control directives: cgroup v2 limits, CPU policies, scheduling. */
#include "unit-private.h"

const directive resource_directives[] = {};
const size_t N_RESOURCE_DIRECTIVES = 0;

void unit_resource_done(unit_resource *r) {
}

void unit_resource_verify(load_ctx *c) {
}
