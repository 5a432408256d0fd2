/* The audit log: one line per mutating D-Bus call, allowed or not. */
#pragma once

#include "vigil-conf.h"

#define AUDIT_LOG_MAX_BYTES (1024 * 1024) /* then audit.log becomes audit.log.1 */

/* Appends to DIR/audit.log: the time (UTC), the caller (uid, gid, pid: "-" when unknown; and the
 * transport), the verb, the target ("-" for the machine) and the result ("ok", "denied" or
 * "error: MESSAGE"). Every field is bounded and made printable. Failures are logged once
 * per burst, never fatal. */
void audit_log(const char *dir, const access_caller *caller, pid_t pid, const char *transport,
               const char *verb, const char *target, const char *result);
