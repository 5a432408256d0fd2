/* vigil.conf: the manager's own settings. */
#pragma once

#include "value.h"

typedef enum crash_action {
        CRASH_FREEZE,
        CRASH_REBOOT,
} crash_action;

typedef struct vigil_conf {
        bool log_console;          /* [Manager] LogConsole=: echo service output to the console */
        crash_action crash_action; /* [Manager] CrashAction=freeze|reboot */
        usec_t crash_reboot_delay; /* [Manager] CrashRebootSec= */
        usec_t shutdown_timeout;   /* [Manager] ShutdownTimeoutSec=: TERM → KILL at the end */
} vigil_conf;

/* Defaults, then path if it exists; every problem is logged with file:line and
 * the setting keeps its default. */
void vigil_conf_load(const char *path, vigil_conf *ret);
