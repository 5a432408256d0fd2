/* vigil.conf: the manager's own settings, and who may change what over D-Bus. */
#pragma once

#include <sys/types.h>

#include "value.h"

typedef enum crash_action {
        CRASH_FREEZE,
        CRASH_REBOOT,
} crash_action;

/* What a D-Bus caller may be allowed to do. The first group acts on one service, the
 * rest on the whole machine. The names are those of vigil.conf's Grant= and the audit log. */
typedef enum access_verb {
        VERB_START,
        VERB_STOP,
        VERB_RESTART,
        VERB_RELOAD,
        VERB_KILL,
        VERB_RESET_FAILED,
        VERB_SET_PROPERTY,
        _VERB_SERVICE_MAX,
        VERB_RELOAD_UNITS = _VERB_SERVICE_MAX,
        VERB_REBOOT,
        VERB_POWEROFF,
        VERB_UPDATE, /* stage, apply and roll back image updates */
        _VERB_MAX,
} access_verb;

#define ACCESS_GRANTS_MAX 256
#define ACCESS_GRANT_SERVICES_MAX 64

/* [Access] Grant=GROUP VERB[,VERB...] [SERVICE[,SERVICE...]|*] */
typedef struct access_grant {
        gid_t gid;
        unsigned verbs;  /* 1 << access_verb */
        char **services; /* full unit names; NULL: every service */
} access_grant;

typedef struct vigil_conf {
        bool log_console;          /* [Manager] LogConsole=: echo service output to the console */
        crash_action crash_action; /* [Manager] CrashAction=freeze|reboot */
        usec_t crash_reboot_delay; /* [Manager] CrashRebootSec= */
        usec_t shutdown_timeout;   /* [Manager] ShutdownTimeoutSec=: TERM → KILL at the end */
        char *system_bus_address;  /* [Manager] SystemBusAddress=; NULL: no system bus */

        uint64_t update_max_size; /* [Update] MaxBundleSize=: bytes of one bundle's payload */
        usec_t trial_healthy;     /* [Update] TrialHealthySec=: up this long is healthy */
        usec_t trial_timeout;     /* [Update] TrialTimeoutSec=: healthy by then, or rollback */
        unsigned trial_boots_max; /* [Update] TrialBootsMax=: boots on trial, then rollback */

        bool admin_group_set; /* [Access] AdminGroup=: members may do what root may */
        gid_t admin_gid;
        access_grant *grants; /* [Access] Grant= */
        size_t n_grants;
} vigil_conf;

#define UID_INVALID ((uid_t) -1)
#define GID_INVALID ((gid_t) -1)

/* The caller of a D-Bus method, as the kernel or the bus daemon reported it (GID_INVALID:
 * the bus daemon reports no gid). */
typedef struct access_caller {
        uid_t uid; /* effective */
        gid_t gid; /* effective */
        const gid_t *groups;
        size_t n_groups;
        bool groups_known; /* false: only uid and gid may grant anything */
} access_caller;

/* Defaults, then path if it exists; every problem is logged with file:line and the
 * setting keeps its default (an [Access] line with a problem grants nothing). Group names
 * are looked up in ROOT/etc/group (root NULL: "/"). Returns the number of problems, or
 * -errno when the file exists but cannot be read. */
int vigil_conf_load(const char *path, const char *root, vigil_conf *ret);
int vigil_conf_parse(const char *path, const char *data, size_t size, const char *root,
                     vigil_conf *ret);
void vigil_conf_done(vigil_conf *c);
/* Moves the [Access] settings of from into to (freeing to's); from keeps none. */
void vigil_conf_take_access(vigil_conf *to, vigil_conf *from);

/* May caller do verb (to service, for the per-service verbs)? uid 0 and members of the
 * admin group may do everything; others need a grant. */
bool access_allowed(const vigil_conf *c, const access_caller *caller, access_verb verb,
                    const char *service);

const char *access_verb_to_string(access_verb v);
int access_verb_from_string(const char *s); /* -EINVAL when unknown */
