/* Container directives: [Container] (Quadlet's keys), RootDirectory=, RootImage=, bind
 * mounts, and the privilege settings of [Service]. */
#include "unit-private.h"

const directive container_directives[] = {};
const size_t N_CONTAINER_DIRECTIVES = 0;

void unit_container_done(unit_container *c) {
        free(c->image);
        free(c->root_image);
        free(c->root_directory);
        free(c->hostname);
        for (size_t i = 0; i < c->n_mounts; i++) {
                free(c->mounts[i].source);
                free(c->mounts[i].target);
                free(c->mounts[i].options);
        }
        free(c->mounts);
}

void unit_container_verify(load_ctx *c) {
}
