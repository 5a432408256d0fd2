/* The lexer for unit and policy files: systemd's line syntax on top of inih. */
#pragma once

#include "diag.h"
#include "fileio.h"

typedef enum ini_event_kind {
        INI_SECTION,    /* a "[Section]" header: section set, key and value NULL */
        INI_ASSIGNMENT, /* "Key=Value" inside the current section */
} ini_event_kind;

typedef struct ini_event {
        ini_event_kind kind;
        const char *section;
        const char *key;
        const char *value; /* whitespace trimmed; continuation lines joined */
        unsigned line;     /* where the logical line starts */
} ini_event;

/* Return < 0 to stop parsing; that value is returned by ini_parse_buffer(). */
typedef int (*ini_event_fn)(const ini_event *ev, void *userdata);

/* Lexes data[0..size): "#" and ";" comment lines, "[Section]" headers,
 * "Key=Value" lines, a trailing backslash continues a line (comment lines
 * inside a continuation are skipped), a leading UTF-8 BOM, CRLF endings.
 * Values keep every byte (";" and "#" included). Lexical problems go to
 * diags as errors with path:line and the line is skipped. Returns 0, or the
 * callback's negative value, or -ENOMEM. */
int ini_parse_buffer(const char *path, const char *data, size_t size, diag_list *diags,
                     ini_event_fn fn, void *userdata);

/* A printable, single-line, bounded rendering of s for messages: control
 * and non-ASCII bytes as \xNN, cut with "..." after about 60 bytes. */
const char *ini_escape(const char *s, char *buf, size_t len);
#define INI_ESCAPE_MAX 256
