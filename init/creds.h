/* Users and groups read from passwd/group files directly: no NSS in PID 1. */
#pragma once

#include <sys/types.h>

typedef struct user_record {
        uid_t uid;
        gid_t gid;
        char *name, *home, *shell;
} user_record;

void user_record_done(user_record *u);

/* root: the directory holding etc/passwd and etc/group (NULL: "/").
 * name_or_id: a user name, or a numeric uid, which need not be in passwd (then
 * gid = uid, home "/", shell "/usr/sbin/nologin"). -ESRCH for an unknown name. */
int creds_lookup_user(const char *root, const char *name_or_id, user_record *ret);
int creds_lookup_group(const char *root, const char *name_or_id, gid_t *ret);
/* The groups that list user in /etc/group (for initgroups() without NSS). */
int creds_user_groups(const char *root, const char *user, gid_t primary, gid_t **ret, size_t *n);
