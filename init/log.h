/* vigil's own log: to stderr (the console) and, as PID 1, to the kernel log. */
#pragma once

#include <errno.h>
#include <syslog.h>

#include "macro.h"

void log_open(bool kmsg);
void log_set_max_level(int level);
_printf_(3, 4) int log_internal(int level, int error, const char *fmt, ...);

/* Every log_*_errno() returns -abs(error), so "return log_error_errno(r, ...)" works;
 * "%m" in the format prints strerror(error). */
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_internal(LOG_ERR, ENOMEM, "Out of memory: %m")
