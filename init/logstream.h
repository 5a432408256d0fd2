/* Per-service log capture: a pipe into a ring buffer of recent lines and a rotated file. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct log_settings {
        const char *dir;         /* NAME.log lives here; NULL: no file */
        size_t ring_bytes;       /* recent lines kept in memory (default 64 KiB) */
        uint64_t file_max_bytes; /* NAME.log is rotated beyond this (default 1 MiB) */
        unsigned file_keep;      /* NAME.log.1 .. NAME.log.N are kept (default 3) */
        bool console;            /* echo each line to the console */
        bool kmsg;               /* copy each line to /dev/kmsg */
} log_settings;

typedef struct log_stream log_stream;

/* Called for each new line, formatted like a tail() line ("TIMESTAMP text", no newline,
 * NUL-terminated, len excludes the NUL); used to follow logs. */
typedef void (*log_line_fn)(const char *line, size_t len, void *userdata);

int log_stream_new(sd_event *e, const char *name, const log_settings *s, log_stream **ret);
log_stream *log_stream_free(log_stream *l);

/* The write end of the stream's pipe (owned by the stream, O_CLOEXEC): dup2() it
 * onto a child's stdout/stderr. The same pipe serves every process of the
 * service for the stream's lifetime. */
int log_stream_writer(log_stream *l);

/* Reads what the service wrote so far (up to the per-wakeup budget) now, so that its
 * last words come before vigil's note about its exit, and into its crash record. */
void log_stream_read_pending(log_stream *l);

/* A line from vigil itself about the service ("Main process exited, status=1"). */
void log_stream_append(log_stream *l, const char *line);

/* The last n lines (oldest first), each "YYYY-MM-DDTHH:MM:SS.mmmZ text"; n ≤ 100000. */
int log_stream_tail(const log_stream *l, size_t n, char ***ret);

/* Subscribers get every later line until they unsubscribe. */
int log_stream_subscribe(log_stream *l, log_line_fn fn, void *userdata, unsigned *ret_id);
void log_stream_unsubscribe(log_stream *l, unsigned id);
