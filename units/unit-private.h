/* What the loader's directive tables share: the load context, the table row type,
 * reporting and the common parsers. Only units/unit*.c include this. */
#pragma once

#include <stddef.h>

#include "lexer.h"
#include "unit.h"

/* Each parser returns 0, -EINVAL after reporting the problem, or -ENOMEM. */
typedef struct load_ctx load_ctx;
typedef int (*parse_fn)(load_ctx *c, const char *value, void *field);

enum {
        D_SPECIFIERS = 1 << 0, /* %n %N %p %i %% are expanded first */
        D_POLICY = 1 << 1,     /* may also be set in a *.policy file */
};

typedef struct directive {
        const char *section;
        const char *key;
        parse_fn parse;
        size_t offset; /* of the field in struct unit */
        unsigned flags;
        int arg;
} directive;

typedef struct directive_table {
        const directive *rows;
        const size_t *n;
} directive_table;

struct load_ctx {
        unit *u;
        const unit *base; /* live changes: the loaded unit u is a copy of (its blocks stay) */
        diag_list *diags;
        const char *path; /* the file being applied */
        unsigned line;
        const directive *d;
        bool policy; /* applying a policy file */
        specifier_context spec;
        bool section_ignored;
        bool exec_start_failed; /* so that a bad ExecStart= is not also reported as missing */
};

#define F(field) offsetof(unit, field)
/* The settings kept in blocks of their own (unit->resource, container, commands, relations,
 * seccomp, process, backoff) have row offsets past the end of struct unit, as in this layout;
 * load_field() turns one into the field. */
typedef struct unit_layout {
        unit u;
        unit_resource resource;
        unit_container container;
        unit_commands commands;
        unit_relations relations;
        unit_seccomp seccomp;
        unit_process process;
        unit_backoff backoff;
} unit_layout;
#define F_RESOURCE(field) offsetof(unit_layout, resource.field)
#define F_CONTAINER(field) offsetof(unit_layout, container.field)
#define F_COMMANDS(field) offsetof(unit_layout, commands.field)
#define F_RELATIONS(field) offsetof(unit_layout, relations.field)
#define F_SECCOMP(field) offsetof(unit_layout, seccomp.field)
#define F_PROCESS(field) offsetof(unit_layout, process.field)
#define F_BACKOFF(field) offsetof(unit_layout, backoff.field)

/* The field the current row writes: in the unit, or in a block of the unit's own (copied
 * from the defaults or from c->base at the first write). NULL when out of memory. */
void *load_field(load_ctx *c);

/* Defaults as systemd has them; an empty assignment restores these. */
extern const unit unit_defaults;

/* An error at the current file:line; returns -EINVAL (or -ENOMEM). */
_printf_(2, 3) int load_report(load_ctx *c, const char *fmt, ...);
_printf_(2, 3) void load_warn(load_ctx *c, const char *fmt, ...);
/* "invalid Key= value "v": why" — the common shape of a bad value. */
int load_invalid(load_ctx *c, const char *value, const char *why);
/* Points c->path and c->line at where Section.Key was set (else at the unit file),
 * for the checks that run once the whole unit is known. */
void load_at(load_ctx *c, const char *section, const char *key);

/* Restores the field of the current row to its default (size bytes). */
void load_reset_field(load_ctx *c, void *field, size_t size);
int load_list_add(load_ctx *c, char ***l, const char *s);
/* The next word of value from *p, quotes removed: 1 with *ret, 0 at the end, -EINVAL after
 * reporting, -ENOMEM. */
int load_next_word(load_ctx *c, const char **p, const char *value, char **ret);
/* Records that the current assignment set the field at offset (for aliases). */
int mark_source(load_ctx *c, size_t offset);

/* Common parsers. */
int load_parse_string(load_ctx *c, const char *value, void *field);
int load_parse_bool(load_ctx *c, const char *value, void *field);
int load_parse_exec(load_ctx *c, const char *value, void *field); /* an exec_list */
/* -1 unset (the default depends on the kind of service), 0 or 1; into an int. */
int load_parse_tristate(load_ctx *c, const char *value, void *field);
int load_parse_user_group(load_ctx *c, const char *value, void *field);
int load_parse_sec(load_ctx *c, const char *value, void *field);
int load_parse_unsigned(load_ctx *c, const char *value, void *field); /* arg > 0: maximum */
int load_parse_enum(load_ctx *c, const char *value, void *field, const char *const *names, size_t n,
                    const char *expected);

/* The tables of each area (units/unit-container.c, unit-resource.c, unit-seccomp.c), with
 * the cleanup and whole-unit checks that go with them. */
extern const directive container_directives[];
extern const size_t N_CONTAINER_DIRECTIVES;
void unit_container_free(const unit_container *c); /* unless the defaults */
void unit_container_verify(load_ctx *c);

extern const directive resource_directives[];
extern const size_t N_RESOURCE_DIRECTIVES;
void unit_resource_free(const unit_resource *r); /* unless the defaults */
void unit_resource_verify(load_ctx *c);

extern const directive seccomp_directives[];
extern const size_t N_SECCOMP_DIRECTIVES;
void unit_seccomp_free(const unit_seccomp *s); /* unless the defaults */
void unit_seccomp_verify(load_ctx *c);
