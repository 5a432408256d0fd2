/* Tests for init/creds.c: passwd and group parsing without NSS, against fixture files. */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "creds.h"
#include "macro.h"
#include "tap.h"

#define ROOT "creds"

static void test_user(const char *name, int want_r, long uid, long gid, const char *home,
                      const char *shell) {
        user_record u = {};
        int r = creds_lookup_user(ROOT, name, &u);

        tap_inteq(r, want_r, "lookup user \"%s\" returns %d", name, want_r);
        if (r == 0 && want_r == 0) {
                tap_inteq(u.uid, uid, "  %s: uid", name);
                tap_inteq(u.gid, gid, "  %s: gid", name);
                tap_streq(u.home, home, "  %s: home", name);
                tap_streq(u.shell, shell, "  %s: shell", name);
        }
        user_record_done(&u);
}

static void test_users(void) {
        user_record u = {};

        test_user("root", 0, 0, 0, "/root", "/bin/bash");
        test_user("daemon", 0, 1, 1, "/usr/sbin", "/usr/sbin/nologin");
        test_user("alice", 0, 1000, 1000, "/home/alice", "/bin/zsh"); /* first entry wins */
        test_user("1000", 0, 1000, 1000, "/home/alice", "/bin/zsh");  /* by uid */
        test_user("dave", 0, 1002, 1002, "/", "/bin/sh");             /* empty fields */
        test_user("nobody", 0, 65534, 65534, "/nonexistent", "/usr/sbin/nologin");
        test_user("dos", 0, 1600, 1600, "/home/dos", "/bin/sh"); /* CRLF line */

        /* Malformed lines are skipped. */
        test_user("bob", -ESRCH, 0, 0, NULL, NULL);   /* uid not a number */
        test_user("carol", -ESRCH, 0, 0, NULL, NULL); /* six fields */
        test_user("eve", -ESRCH, 0, 0, NULL, NULL);   /* eight fields */
        test_user("frank", -ESRCH, 0, 0, NULL, NULL); /* negative uid */
        test_user("grace", -ESRCH, 0, 0, NULL, NULL); /* uid -1 */
        test_user("+nisentry", -ESRCH, 0, 0, NULL, NULL);
        test_user("this line has no colons at all", -ESRCH, 0, 0, NULL, NULL);
        test_user("# a comment line", -ESRCH, 0, 0, NULL, NULL);
        test_user("nosuchuser", -ESRCH, 0, 0, NULL, NULL);

        /* A numeric id not in passwd stands for itself. */
        test_user("4242", 0, 4242, 4242, "/", "/usr/sbin/nologin");
        tap_inteq(creds_lookup_user(ROOT, "4242", &u), 0, "numeric user");
        tap_streq(u.name, "4242", "  its name is the number");
        user_record_done(&u);
        user_record_done(&u); /* idempotent */

        tap_inteq(creds_lookup_user(ROOT, "", &u), -EINVAL, "empty name");
        tap_inteq(creds_lookup_user(ROOT, "4294967295", &u), -ESRCH, "uid -1 is not an id");
        tap_inteq(creds_lookup_user(ROOT, "-1", &u), -ESRCH, "negative is a (missing) name");

        /* No passwd at all: names fail, except root; numbers work. */
        tap_inteq(creds_lookup_user("/nonexistent-root", "alice", &u), -ESRCH,
                  "missing passwd: unknown name");
        tap_inteq(creds_lookup_user("/nonexistent-root", "root", &u), 0, "missing passwd: root");
        tap_inteq(u.uid, 0, "  root is uid 0");
        tap_streq(u.home, "/root", "  root's home");
        user_record_done(&u);
        tap_inteq(creds_lookup_user("/nonexistent-root", "77", &u), 0, "missing passwd: number");
        user_record_done(&u);
}

static void test_group(const char *name, int want_r, long gid) {
        gid_t g = 4711;
        int r = creds_lookup_group(ROOT, name, &g);

        tap_inteq(r, want_r, "lookup group \"%s\" returns %d", name, want_r);
        if (r == 0 && want_r == 0)
                tap_inteq(g, gid, "  %s: gid", name);
}

static void test_groups(void) {
        test_group("root", 0, 0);
        test_group("audio", 0, 29);
        test_group("video", 0, 44);
        test_group("nogroup", 0, 65534);
        test_group("123", 0, 123); /* need not exist */
        test_group("broken", -ESRCH, 0);
        test_group("short", -ESRCH, 0);
        test_group("# comment", -ESRCH, 0);
        test_group("nosuchgroup", -ESRCH, 0);
        test_group("", -EINVAL, 0);
}

static char *gids_str(const gid_t *g, size_t n) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%lu", i ? " " : "", (unsigned long) g[i]);
        fclose(f);
        return s;
}

static void test_user_groups_one(const char *root, const char *user, gid_t primary,
                                 const char *want) {
        _cleanup_free_ gid_t *g = NULL;
        _cleanup_free_ char *s = NULL;
        size_t n = 0;
        int r = creds_user_groups(root, user, primary, &g, &n);

        if (!tap_inteq(r, 0, "groups of %s", user))
                return;
        s = gids_str(g, n);
        tap_streq(s, want, "  groups of %s", user);
}

static void test_user_groups(void) {
        gid_t *g = NULL;
        size_t n = 0;

        /* The primary group first, each group once, malformed lines ignored. */
        test_user_groups_one(ROOT, "alice", 1000, "1000 29 44 100");
        test_user_groups_one(ROOT, "alice", 29, "29 44 100");
        test_user_groups_one(ROOT, "bob", 1000, "1000 29 44");
        test_user_groups_one(ROOT, "svc", 1500, "1500 10");
        test_user_groups_one(ROOT, "nobody", 65534, "65534");
        test_user_groups_one("/nonexistent-root", "alice", 5, "5");
        tap_inteq(creds_user_groups(ROOT, "", 0, &g, &n), -EINVAL, "groups of empty user");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int write_file(const char *path, const char *head, char fill, size_t n, const char *tail) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(head, f);
        for (size_t i = 0; i < n; i++)
                fputc(fill, f);
        fputs(tail, f);
        return fflush(f) == 0 ? 0 : -errno;
}

/* Lines longer than the limit are skipped without losing the lines around them. */
static void test_huge(void) {
        char dir[] = "/tmp/test-creds.XXXXXX", etc[64], passwd[96], group[96];
        user_record u = {};
        _cleanup_free_ gid_t *g = NULL;
        size_t n = 0;
        gid_t gid = 0;

        if (!mkdtemp(dir)) {
                tap_ok(0, "mkdtemp");
                return;
        }
        snprintf(etc, sizeof(etc), "%s/etc", dir);
        snprintf(passwd, sizeof(passwd), "%s/passwd", etc);
        snprintf(group, sizeof(group), "%s/group", etc);
        mkdir(etc, 0755);

        /* A 1 MiB home directory, then a normal user. */
        write_file(passwd, "mallory:x:666:666::/", 'a', 1024 * 1024,
                   ":/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        /* A group with a huge member list that names alice at its end, then a normal one. */
        write_file(group, "huge:x:70:", 'b', 1024 * 1024, ",alice\nsmall:x:71:alice\nbig:x:72:");
        tap_inteq(creds_lookup_user(dir, "mallory", &u), -ESRCH, "huge passwd line skipped");
        tap_inteq(creds_lookup_user(dir, "alice", &u), 0, "line after a huge one");
        tap_inteq(u.uid, 1000, "  its uid");
        user_record_done(&u);
        tap_inteq(creds_lookup_group(dir, "huge", &gid), -ESRCH, "huge group line skipped");
        tap_inteq(creds_lookup_group(dir, "big", &gid), 0, "last line without newline");
        tap_inteq(gid, 72, "  its gid");
        if (tap_inteq(creds_user_groups(dir, "alice", 1000, &g, &n), 0, "groups with a huge line"))
                tap_inteq(n, 2, "  only the normal group is added");

        /* A file above the size limit is refused as a whole. */
        write_file(passwd, "", '#', 17 * 1024 * 1024, "\nalice:x:1000:1000::/:/bin/sh\n");
        tap_inteq(creds_lookup_user(dir, "alice", &u), -EFBIG, "passwd too large");
        /* Root given with a trailing slash. */
        write_file(passwd, "", 'x', 0, "zed:x:5:6::/z:/bin/sh\n");
        snprintf(etc, sizeof(etc), "%s/", dir);
        tap_inteq(creds_lookup_user(etc, "zed", &u), 0, "root with a trailing slash");
        user_record_done(&u);

        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
        test_users();
        test_groups();
        test_user_groups();
        test_huge();
        return tap_done();
}
