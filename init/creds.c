/* Users and groups read from passwd/group files directly: no NSS in PID 1. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>

#include "creds.h"
#include "fileio.h"
#include "macro.h"

/* Bounds on what we read: a hostile or broken file must not make PID 1 allocate without
 * limit. Lines longer than CREDS_LINE_MAX are skipped, files larger than CREDS_FILE_MAX
 * refused. Group lines can be long (many members), hence the generous line limit. */
#define CREDS_FILE_MAX (16u * 1024 * 1024)
#define CREDS_LINE_MAX (256u * 1024)
#define CREDS_GROUPS_MAX 65536u

void user_record_done(user_record *u) {
        if (!u)
                return;
        u->name = mfree(u->name);
        u->home = mfree(u->home);
        u->shell = mfree(u->shell);
}

/* A decimal id as passwd/group hold it: no sign, no spaces, not the invalid id -1. */
static int parse_id(const char *s, uint32_t *ret) {
        unsigned long long v = 0;

        if (isempty(s) || strlen(s) > 10)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (*p - '0');
        }
        /* (uid_t) -1 means "no change" to setresuid(); 65535 is the 16-bit variant. */
        if (v >= UINT32_MAX || v == 65535)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

static int read_etc_file(const char *root, const char *name, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = NULL;

        if (isempty(root))
                root = "/";
        if (asprintf_safe(&path, "%s%s/etc/%s", root, endswith(root, "/") ? "" : "", name) < 0)
                return -ENOMEM;
        return read_file_bounded(path, CREDS_FILE_MAX, ret, ret_size);
}

/* Splits line in place at ':' into exactly n fields; false when the count differs. */
static bool split_fields(char *line, char **fields, size_t n) {
        size_t i = 0;

        fields[i++] = line;
        for (char *p = line; *p; p++)
                if (*p == ':') {
                        if (i >= n)
                                return false;
                        *p = 0;
                        fields[i++] = p + 1;
                }
        return i == n;
}

/* Calls f for each line of buf (modified in place) that is not too long, not empty, not a
 * comment and not a NIS compat entry (+/-). Stops when f returns non-zero. */
static int foreach_line(char *buf, size_t size, int (*f)(char *line, void *userdata),
                        void *userdata) {
        char *p = buf, *end = buf + size;

        while (p < end) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                char *e = nl ? nl : end;
                size_t len = (size_t) (e - p);
                int r;

                *e = 0;
                if (len > 0 && p[len - 1] == '\r')
                        p[--len] = 0;
                if (len > 0 && len <= CREDS_LINE_MAX && !memchr(p, 0, len) &&
                    !strchr("#+-", p[0])) {
                        r = f(p, userdata);
                        if (r != 0)
                                return r;
                }
                p = e + 1;
        }
        return 0;
}

typedef struct user_match {
        const char *name; /* match by name, or ... */
        uint32_t uid;     /* ... by uid when name is NULL */
        user_record *ret;
} user_match;

static int match_passwd_line(char *line, void *userdata) {
        user_match *m = userdata;
        char *f[7] = {};
        uint32_t uid, gid;
        user_record u = {};

        if (!split_fields(line, f, ELEMENTSOF(f)) || isempty(f[0]))
                return 0;
        if (parse_id(f[2], &uid) < 0 || parse_id(f[3], &gid) < 0)
                return 0;
        if (m->name ? !streq(f[0], m->name) : uid != m->uid)
                return 0;

        u = (user_record){ .uid = uid, .gid = gid };
        u.name = strdup(f[0]);
        u.home = strdup(isempty(f[5]) ? "/" : f[5]);
        u.shell = strdup(isempty(f[6]) ? "/bin/sh" : f[6]);
        if (!u.name || !u.home || !u.shell) {
                user_record_done(&u);
                return -ENOMEM;
        }
        *m->ret = u;
        return 1;
}

/* What we use when passwd does not know a user: root keeps its conventional home. */
static int synthesize_user(const char *name, uint32_t uid, user_record *ret) {
        user_record u = { .uid = uid, .gid = uid };

        if (name)
                u.name = strdup(name);
        else if (asprintf_safe(&u.name, "%" PRIu32, uid) < 0)
                u.name = NULL;
        u.home = strdup(uid == 0 ? "/root" : "/");
        u.shell = strdup(uid == 0 ? "/bin/sh" : "/usr/sbin/nologin");
        if (!u.name || !u.home || !u.shell) {
                user_record_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

int creds_lookup_user(const char *root, const char *name_or_id, user_record *ret) {
        _cleanup_free_ char *buf = NULL;
        user_match m = { .ret = ret };
        bool numeric;
        size_t size = 0;
        int r;

        if (isempty(name_or_id) || !ret || strlen(name_or_id) > LOGIN_NAME_MAX)
                return -EINVAL;
        numeric = parse_id(name_or_id, &m.uid) >= 0;
        if (!numeric)
                m.name = name_or_id;

        r = read_etc_file(root, "passwd", &buf, &size);
        if (r == -ENOENT)
                size = 0;
        else if (r < 0)
                return r;

        r = buf ? foreach_line(buf, size, match_passwd_line, &m) : 0;
        if (r < 0)
                return r;
        if (r > 0)
                return 0;

        /* Not in passwd: a numeric id stands for itself, and root is always root. */
        if (numeric)
                return synthesize_user(NULL, m.uid, ret);
        if (streq(name_or_id, "root"))
                return synthesize_user("root", 0, ret);
        return -ESRCH;
}

typedef struct group_match {
        const char *name;
        gid_t gid;
} group_match;

static int match_group_line(char *line, void *userdata) {
        group_match *m = userdata;
        char *f[4] = {};
        uint32_t gid;

        if (!split_fields(line, f, ELEMENTSOF(f)) || !streq(f[0], m->name))
                return 0;
        if (parse_id(f[2], &gid) < 0)
                return 0;
        m->gid = gid;
        return 1;
}

int creds_lookup_group(const char *root, const char *name_or_id, gid_t *ret) {
        _cleanup_free_ char *buf = NULL;
        group_match m = { .name = name_or_id };
        uint32_t id;
        size_t size = 0;
        int r;

        if (isempty(name_or_id) || !ret || strlen(name_or_id) > LOGIN_NAME_MAX)
                return -EINVAL;
        if (parse_id(name_or_id, &id) >= 0) {
                *ret = id;
                return 0;
        }

        r = read_etc_file(root, "group", &buf, &size);
        if (r == -ENOENT)
                return streq(name_or_id, "root") ? (*ret = 0, 0) : -ESRCH;
        if (r < 0)
                return r;
        r = foreach_line(buf, size, match_group_line, &m);
        if (r < 0)
                return r;
        if (r == 0) {
                if (!streq(name_or_id, "root"))
                        return -ESRCH;
                m.gid = 0;
        }
        *ret = m.gid;
        return 0;
}

typedef struct member_match {
        const char *user;
        gid_t *gids;
        size_t n;
} member_match;

static bool gid_in(const gid_t *l, size_t n, gid_t g) {
        for (size_t i = 0; i < n; i++)
                if (l[i] == g)
                        return true;
        return false;
}

static int match_member_line(char *line, void *userdata) {
        member_match *m = userdata;
        char *f[4] = {}, *saveptr = NULL;
        uint32_t gid;

        if (!split_fields(line, f, ELEMENTSOF(f)) || parse_id(f[2], &gid) < 0)
                return 0;
        for (char *w = strtok_r(f[3], ",", &saveptr); w; w = strtok_r(NULL, ",", &saveptr)) {
                gid_t *l;

                if (!streq(w, m->user))
                        continue;
                if (gid_in(m->gids, m->n, gid))
                        break;
                /* Fewer groups means fewer privileges: stop adding rather than fail. */
                if (m->n >= CREDS_GROUPS_MAX)
                        return 1;
                l = reallocarray(m->gids, m->n + 1, sizeof(gid_t));
                if (!l)
                        return -ENOMEM;
                m->gids = l;
                m->gids[m->n++] = gid;
                break;
        }
        return 0;
}

int creds_user_groups(const char *root, const char *user, gid_t primary, gid_t **ret, size_t *n) {
        _cleanup_free_ char *buf = NULL;
        member_match m = { .user = user };
        size_t size = 0;
        int r;

        if (isempty(user) || !ret || !n)
                return -EINVAL;

        /* Like initgroups(): the primary group comes first. */
        m.gids = malloc(sizeof(gid_t));
        if (!m.gids)
                return -ENOMEM;
        m.gids[m.n++] = primary;

        r = read_etc_file(root, "group", &buf, &size);
        if (r < 0 && r != -ENOENT) {
                free(m.gids);
                return r;
        }
        if (r >= 0) {
                r = foreach_line(buf, size, match_member_line, &m);
                if (r < 0) {
                        free(m.gids);
                        return r;
                }
        }
        *ret = m.gids;
        *n = m.n;
        return 0;
}
