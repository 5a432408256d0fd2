/* System call filter directives: SystemCallFilter=, SystemCallErrorNumber=,
 * SystemCallArchitectures=. */
#include "unit-private.h"

const directive seccomp_directives[] = {};
const size_t N_SECCOMP_DIRECTIVES = 0;

void unit_seccomp_done(unit_seccomp *s) {
}

void unit_seccomp_verify(load_ctx *c) {
}
