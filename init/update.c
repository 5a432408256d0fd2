/* Image updates (see update.h). */
#include <errno.h>
#include <stdlib.h>

#include "manager.h"
#include "update.h"

const char *update_outcome_to_string(update_outcome o) {
        static const char *const names[] = {
                [UPDATE_INSTALLED] = "installed",
                [UPDATE_REJECTED] = "rejected",
                [UPDATE_DEFERRED] = "deferred",
        };
        return (unsigned) o < sizeof(names) / sizeof(names[0]) ? names[o] : "invalid";
}

int update_load(manager *m) {
        (void) m;
        return 0;
}

void update_free(manager *m) {
        (void) m;
}

void update_boot(manager *m) {
        (void) m;
}

int update_stage(manager *m, const char *stem, int payload_fd, int manifest_fd, int signature_fd,
                 char **ret_error) {
        (void) m, (void) stem, (void) payload_fd, (void) manifest_fd, (void) signature_fd;
        *ret_error = NULL;
        return -EOPNOTSUPP;
}

int update_apply(manager *m, bool force, update_result **ret) {
        (void) m, (void) force;
        *ret = NULL;
        return 0;
}

int update_rollback(manager *m, const char *image, char **ret_error) {
        (void) m, (void) image;
        *ret_error = NULL;
        return -ENOENT;
}

image_record *const *update_records(manager *m, size_t *ret_n) {
        (void) m;
        *ret_n = 0;
        return NULL;
}

char **update_staged(manager *m) {
        (void) m;
        return calloc(1, sizeof(char *));
}

void update_service_state_changed(manager *m, service *s) {
        (void) m, (void) s;
}

bool update_sigchld(manager *m, pid_t pid, int code, int status) {
        (void) m, (void) pid, (void) code, (void) status;
        return false;
}
