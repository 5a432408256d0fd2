/* The named system call groups of SystemCallFilter= ("@mount", "@system-service", ...). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct syscall_group {
        const char *name; /* "@mount" */
        const char *help;
        const char *members; /* space-separated; "@name" includes that group */
} syscall_group;

extern const syscall_group syscall_groups[];
extern const size_t N_SYSCALL_GROUPS;

/* The group of that name ("@mount"), or NULL. */
const syscall_group *syscall_group_find(const char *name);

/* Iterates over a member list: the next word and its length, or NULL at the end. */
const char *syscall_group_next(const char **p, size_t *len);

/* True for every system call name that systemd knows (a member of any group), whether or not
 * this machine's libseccomp does. */
bool syscall_name_is_known(const char *name);
