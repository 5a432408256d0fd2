/* Crash records and restart history, kept in the state directory across reboots. */
#pragma once

#include "service.h"

/* Records the failure that just ended a run of s: time, result, exit code or
 * signal, core dumped, uptime, restart count and its last 50 log lines, as
 * STATE/crash/NAME/<realtime-usec>.record (at most 20 kept per service, oldest
 * removed), and appends one line to STATE/history/NAME.log (rotated at 64 KiB).
 * The record is captured now and written when the loop is idle. Failures to write
 * are logged, never fatal. */
void crash_record_save(service *s);

/* Writes the records still queued (crash_record_save() writes from an idle-priority
 * event so that the disk never delays a restart). */
void crash_records_flush(manager *m);

/* The newest records of a service, newest first, as the text of each file. */
int crash_records_list(manager *m, const char *name, size_t max, char ***ret);
