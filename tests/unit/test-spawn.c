/* Tests for init/spawn.c: real children started from units, plus the environment, argv
 * expansion and EnvironmentFile= parsers on their own. */
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "spawn.h"
#include "tap.h"
#include "unit.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static char tmp[] = "/tmp/test-spawn.XXXXXX";

typedef struct result {
        int code;       /* CLD_EXITED, CLD_KILLED... */
        int status;     /* exit status or signal */
        int exec_errno; /* 0: exec succeeded */
        bool exec_fd_data;
        char *out; /* what the child wrote to the log pipe */
} result;

static void result_done(result *r) {
        r->out = mfree(r->out);
}

static char *tmp_path(const char *name) {
        char *p;

        if (asprintf(&p, "%s/%s", tmp, name) < 0)
                abort();
        return p;
}

static char *read_all(int fd) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        char buf[4096];
        ssize_t k;

        while ((k = read(fd, buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR))
                if (k > 0)
                        fwrite(buf, 1, (size_t) k, f);
        fclose(f);
        return s;
}

static char *read_file(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        return fd < 0 ? NULL : read_all(fd);
}

static void write_file(const char *path, const char *text) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                abort();
        fputs(text, f);
}

static unit *load(const char *text) {
        diag_list diags = {};
        unit *u = NULL;
        int r;

        r = unit_load_buffer("t.service", "/tmp/t.service", text, strlen(text), &diags, &u);
        if (r < 0 || diags.n_errors > 0) {
                printf("# unit failed to load: %d\n", r);
                diag_list_print(&diags, stdout);
        }
        diag_list_done(&diags);
        return u;
}

/* Starts the unit's ExecStart= with stdout/stderr "journal" going to a pipe we read. */
static int run_params(spawn_params *p, result *res) {
        _cleanup_close_ int rfd = -1, wfd = -1, pidfd = -1, exec_fd = -1;
        siginfo_t si = {};
        int fds[2], e = 0;
        ssize_t k;
        pid_t pid;
        int r;

        *res = (result){};
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        p->log_fd = wfd;
        r = spawn_command(p, &pid, &pidfd, &exec_fd);
        if (r < 0)
                return r;
        /* Only the child may hold the write end, or we would never see EOF. */
        close(TAKE_FD(wfd));

        /* The exec pipe reaches EOF at exec or at exit; an int before EOF is an errno. */
        do
                k = read(exec_fd, &e, sizeof(e));
        while (k < 0 && errno == EINTR);
        if (k == sizeof(e)) {
                res->exec_errno = e;
                res->exec_fd_data = true;
        }
        res->out = read_all(rfd);
        if (waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0)
                return -errno;
        res->code = si.si_code;
        res->status = si.si_status;
        return 0;
}

static int run_unit(const char *text, result *res) {
        _cleanup_unit_free_ unit *u = load(text);
        spawn_params p = { .cgroup_fd = -1 };

        *res = (result){};
        if (!u || u->exec_start.n < 1)
                return -EINVAL;
        p.unit = u;
        p.command = &u->exec_start.items[0];
        return run_params(&p, res);
}

/* Runs the unit and checks exit status 0 and the output. */
static void expect_output(const char *what, const char *text, const char *want) {
        result res;
        int r = run_unit(text, &res);

        if (!tap_inteq(r, 0, "%s: spawned", what))
                return;
        tap_ok(res.code == CLD_EXITED && res.status == 0 && !res.exec_fd_data,
               "%s: exec'd and exited 0 (code %d status %d errno %d)", what, res.code, res.status,
               res.exec_errno);
        tap_streq(res.out, want, "%s: output", what);
        result_done(&res);
}

static void test_environment(void) {
        _cleanup_free_ char *f1 = tmp_path("env1"), *f2 = tmp_path("env2"), *text = NULL;

        expect_output("Environment=",
                      "[Service]\nEnvironment=FOO=bar \"BAZ=a b\"\n"
                      "ExecStart=/bin/sh -c 'echo $FOO; echo \"$BAZ\"'\n",
                      "bar\na b\n");
        expect_output("default PATH", "[Service]\nExecStart=/bin/sh -c 'echo $PATH'\n",
                      "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
        expect_output("only what we set",
                      "[Service]\nExecStart=/bin/sh -c 'env | grep -v ^PWD= | sort'\n",
                      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");

        write_file(f1, "# comment\n; comment\nA=plain\nB = spaced  \nC=\"double \\\"q\\\"\"\n"
                       "D='single $x \\'\nE=one\\\ntwo\nFOO=from-file\n");
        write_file(f2, "E=second file wins\n");
        if (asprintf(&text,
                     "[Service]\nEnvironment=FOO=from-unit X=unit\nEnvironmentFile=%s\n"
                     "EnvironmentFile=-%s/missing\nEnvironmentFile=%s\n"
                     "ExecStart=/bin/sh -c 'printf \"[%%%%s]\" \"$A\" \"$B\" \"$C\" \"$D\" "
                     "\"$E\" \"$FOO\" \"$X\"'\n",
                     f1, tmp, f2) < 0)
                abort();
        expect_output("EnvironmentFile=", text,
                      "[plain][spaced][double \"q\"][single $x \\][second file wins][from-file]"
                      "[unit]");
        free(text);

        /* A missing file without "-" fails the start. */
        if (asprintf(&text, "[Service]\nEnvironmentFile=%s/missing\nExecStart=/bin/true\n", tmp) <
            0)
                abort();
        {
                result res;

                if (tap_inteq(run_unit(text, &res), 0, "missing EnvironmentFile=: spawned")) {
                        tap_inteq(res.status, EXIT_MEMORY, "  exit status");
                        tap_inteq(res.exec_errno, ENOENT, "  errno on the exec pipe");
                        tap_ok(res.out && strstr(res.out, "vigil: t.service: building the "
                                                          "environment failed: No such file"),
                               "  message in the log");
                }
                result_done(&res);
        }
}

static void test_argv_expansion(void) {
        expect_output("$VAR splitting",
                      "[Service]\nEnvironment=\"ARGS=a 'b c'\" ONE=1\n"
                      "ExecStart=/bin/sh -c 'for a; do echo \"[$a]\"; done' sh $ARGS ${ARGS} "
                      "$UNSET x${ONE}y $$ONE ${UNSET} a$ONE\n",
                      "[a]\n[b c]\n[a 'b c']\n[x1y]\n[$ONE]\n[]\n[a$ONE]\n");
        expect_output("\":\" keeps $VAR",
                      "[Service]\nEnvironment=ARGS=a\n"
                      "ExecStart=:/bin/sh -c 'for a; do echo \"[$a]\"; done' sh $ARGS ${ARGS}\n",
                      "[$ARGS]\n[${ARGS}]\n");
        expect_output("PATH lookup with the child's PATH",
                      "[Service]\nEnvironment=PATH=/nonexistent:/bin\nExecStart=sh -c 'echo ok'\n",
                      "ok\n");
}

static void test_dirs_and_limits(void) {
        _cleanup_free_ char *wd = tmp_path("wd"), *text = NULL, *want = NULL;

        mkdir(wd, 0755);
        if (asprintf(&text, "[Service]\nWorkingDirectory=%s\nExecStart=/bin/pwd\n", wd) < 0 ||
            asprintf(&want, "%s\n", wd) < 0)
                abort();
        expect_output("WorkingDirectory=", text, want);
        expect_output("default working directory is /", "[Service]\nExecStart=/bin/pwd\n", "/\n");
        expect_output("\"-\" tolerates a missing directory",
                      "[Service]\nWorkingDirectory=-/nonexistent/dir\nExecStart=/bin/pwd\n", "/\n");
        expect_output("UMask=", "[Service]\nUMask=0077\nExecStart=/bin/sh -c umask\n", "0077\n");
        expect_output("default UMask", "[Service]\nExecStart=/bin/sh -c umask\n", "0022\n");
        expect_output("LimitNOFILE=",
                      "[Service]\nLimitNOFILE=123\nExecStart=/bin/sh -c 'ulimit -n'\n", "123\n");
        expect_output("LimitNOFILE= soft:hard",
                      "[Service]\nLimitNOFILE=100:200\n"
                      "ExecStart=/bin/sh -c 'ulimit -Sn; ulimit -Hn'\n",
                      "100\n200\n");
}

static void expect_failure(const char *what, const char *text, int status, int err,
                           const char *message) {
        result res;

        if (!tap_inteq(run_unit(text, &res), 0, "%s: spawned", what))
                return;
        tap_ok(res.code == CLD_EXITED && res.status == status, "%s: exit status %d (got %d/%d)",
               what, status, res.code, res.status);
        tap_inteq(res.exec_errno, err, "%s: errno on the exec pipe", what);
        if (!tap_ok(res.out && strstr(res.out, message), "%s: the log has the message", what))
                printf("#   got:  \"%s\"\n#   want: \"%s\"\n", res.out ? res.out : "", message);
        result_done(&res);
}

static void test_failures(void) {
        expect_failure("missing program", "[Service]\nExecStart=/nonexistent/prog arg\n", EXIT_EXEC,
                       ENOENT,
                       "vigil: t.service: executing /nonexistent/prog failed: No such file or "
                       "directory");
        expect_failure("missing program in PATH", "[Service]\nExecStart=no-such-prog-vigil\n",
                       EXIT_EXEC, ENOENT, "executing no-such-prog-vigil failed");
        expect_failure("not executable", "[Service]\nExecStart=/etc/passwd\n", EXIT_EXEC, EACCES,
                       "Permission denied");
        expect_failure("missing working directory",
                       "[Service]\nWorkingDirectory=/nonexistent/dir\nExecStart=/bin/true\n",
                       EXIT_CHDIR, ENOENT,
                       "vigil: t.service: changing to directory /nonexistent/dir failed: No "
                       "such file or directory");
        expect_failure("unknown user", "[Service]\nUser=no-such-user-vigil\nExecStart=/bin/true\n",
                       EXIT_USER, ESRCH, "looking up user no-such-user-vigil failed");
        expect_failure("unknown group",
                       "[Service]\nGroup=no-such-group-vigil\nExecStart=/bin/true\n", EXIT_GROUP,
                       ESRCH, "looking up group no-such-group-vigil failed");
}

static void test_outputs(void) {
        _cleanup_free_ char *f = tmp_path("out"), *text = NULL, *got = NULL;
        static const struct {
                const char *kind, *want;
        } cases[] = {
                { "file",
                  "ab\nerr\nXXXXXXXXXXXXXXX\n" }, /* overwrites in place, stderr shares it */
                { "append", "XXXXXXXXXXXXXXXXXXXXXX\nab\nerr\n" },
                { "truncate", "ab\nerr\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                write_file(f, "XXXXXXXXXXXXXXXXXXXXXX\n");
                free(text);
                if (asprintf(&text,
                             "[Service]\nStandardOutput=%s:%s\n"
                             "ExecStart=/bin/sh -c 'echo ab; echo err >&2'\n",
                             cases[i].kind, f) < 0)
                        abort();
                expect_output(cases[i].kind, text, "");
                free(got);
                got = read_file(f);
                tap_streq(got, cases[i].want, "StandardOutput=%s: file contents", cases[i].kind);
        }

        unlink(f);
        free(text);
        if (asprintf(&text, "[Service]\nStandardOutput=file:%s\nExecStart=/bin/sh -c 'echo new'\n",
                     f) < 0)
                abort();
        expect_output("file: creates", text, "");
        {
                struct stat st;

                tap_ok(stat(f, &st) == 0 && (st.st_mode & 07777) == 0644, "created with 0644");
        }

        expect_output("StandardOutput=null",
                      "[Service]\nStandardOutput=null\n"
                      "ExecStart=/bin/sh -c 'echo out; echo err >&2'\n",
                      "");
        free(text);
        if (asprintf(&text,
                     "[Service]\nStandardError=truncate:%s\n"
                     "ExecStart=/bin/sh -c 'echo out; echo err >&2'\n",
                     f) < 0)
                abort();
        expect_output("StandardError= apart", text, "out\n");
        free(got);
        got = read_file(f);
        tap_streq(got, "err\n", "StandardError=truncate: file contents");
        expect_output("StandardError=null",
                      "[Service]\nStandardError=null\n"
                      "ExecStart=/bin/sh -c 'echo out; echo err >&2'\n",
                      "out\n");
        expect_output("stdin is /dev/null",
                      "[Service]\nExecStart=/bin/sh -c 'readlink /proc/self/fd/0; cat'\n",
                      "/dev/null\n");
}

static void test_fds_and_signals(void) {
        sigset_t mask, old;
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_usr2;
        int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */

        tap_ok(fd >= 0 && dup2(fd, 50) == 50, "leaking fd 50 into spawn");
        expect_output("fds >= 3 closed", "[Service]\nExecStart=/bin/ls /proc/self/fd\n",
                      "0\n1\n2\n3\n");
        close(50);
        close(fd);

        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, &old);
        sigaction(SIGUSR2, &ign, &old_usr2);
        expect_output("signals unblocked and defaulted",
                      "[Service]\nExecStart=/bin/grep -E ^Sig(Blk|Ign) /proc/self/status\n",
                      "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
        sigprocmask(SIG_SETMASK, &old, NULL);
        sigaction(SIGUSR2, &old_usr2, NULL);

        /* /proc/self/stat of the shell itself: field 1 is the pid, field 6 the session. */
        expect_output("new session",
                      "[Service]\nExecStart=/bin/sh -c 'read -r pid comm state ppid pgrp sid rest "
                      "< /proc/self/stat; test $pid = $sid && echo leader'\n",
                      "leader\n");
}

/* vigil may run with 0..2 closed, so the pipes land there: the child must cope. */
static void test_closed_stdio(void) {
        _cleanup_unit_free_ unit *u =
                load("[Service]\nExecStart=/bin/sh -c 'echo hi; echo err >&2; "
                     "readlink /proc/self/fd/0'\n");
        int report[2];
        char buf[256] = {};
        pid_t pid;
        ssize_t k;

        if (!u || pipe2(report, O_CLOEXEC) < 0)
                return;
        pid = fork();
        if (pid == 0) {
                spawn_params p = { .unit = u, .command = &u->exec_start.items[0], .cgroup_fd = -1 };
                result res;
                char *msg = NULL;
                int r;

                close(0);
                close(1);
                close(2);
                r = run_params(&p, &res);
                if (asprintf(&msg, "%d %d %d %s", r, res.code, res.status, res.out ?: "(null)") < 0)
                        _exit(1);
                (void) !write(report[1], msg, strlen(msg));
                _exit(0);
        }
        close(report[1]);
        k = read(report[0], buf, sizeof(buf) - 1);
        close(report[0]);
        waitpid(pid, NULL, 0);
        tap_streq(k > 0 ? buf : NULL, "0 1 0 hi\nerr\n/dev/null\n", "spawn with fds 0..2 closed");
}

static void test_user(void) {
        _cleanup_free_ char *root = realpath("creds", NULL);
        _cleanup_unit_free_ unit *u = NULL;
        spawn_params p = { .cgroup_fd = -1, .root = root };
        result res;

        if (geteuid() != 0) {
                printf("ok %d - # SKIP User= needs root\n", ++tap_n);
                return;
        }
        expect_output("User=nobody",
                      "[Service]\nUser=nobody\nExecStart=/bin/sh -c 'id -u; id -g; "
                      "echo $USER $LOGNAME $HOME $SHELL'\n",
                      "65534\n65534\nnobody nobody /nonexistent /usr/sbin/nologin\n");
        expect_output("\"+\" keeps root but sets USER=",
                      "[Service]\nUser=nobody\nExecStart=+/bin/sh -c 'id -u; echo $USER'\n",
                      "0\nnobody\n");

        /* Users from a fixture root: primary group, Group=, /etc/group, SupplementaryGroups=. */
        u = load("[Service]\nUser=alice\nSupplementaryGroups=7 audio\nWorkingDirectory=-~\n"
                 "ExecStart=/bin/sh -c 'grep -E \"^(Uid|Gid|Groups):\" /proc/self/status; echo "
                 "$HOME'\n");
        p.unit = u;
        p.command = u ? &u->exec_start.items[0] : NULL;
        if (tap_inteq(u ? run_params(&p, &res) : -EINVAL, 0, "alice from a fixture root")) {
                tap_streq(res.out,
                          "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n"
                          "Groups:\t7 29 44 100 1000 \n/home/alice\n",
                          "  uids, gids and groups");
                result_done(&res);
        }
        u = unit_free(u);

        u = load("[Service]\nUser=svc\nGroup=daemon\nWorkingDirectory=~\n"
                 "ExecStart=/bin/sh -c 'grep -E \"^(Gid|Groups):\" /proc/self/status; pwd'\n");
        p.unit = u;
        p.command = u ? &u->exec_start.items[0] : NULL;
        if (tap_inteq(u ? run_params(&p, &res) : -EINVAL, 0, "Group= overrides")) {
                tap_streq(res.out, "Gid:\t1\t1\t1\t1\nGroups:\t1 10 \n/tmp\n",
                          "  gid, groups and ~");
                result_done(&res);
        }
        u = unit_free(u);

        u = load("[Service]\nSupplementaryGroups=audio\n"
                 "ExecStart=/bin/sh -c 'grep -E \"^(Uid|Groups):\" /proc/self/status'\n");
        p.unit = u;
        p.command = u ? &u->exec_start.items[0] : NULL;
        if (tap_inteq(u ? run_params(&p, &res) : -EINVAL, 0, "SupplementaryGroups= alone")) {
                tap_streq(res.out, "Uid:\t0\t0\t0\t0\nGroups:\t29 \n", "  only those groups");
                result_done(&res);
        }
        u = unit_free(u);

        /* The working directory is entered as the user. */
        {
                _cleanup_free_ char *d = tmp_path("private"), *text = NULL;

                mkdir(d, 0700);
                if (asprintf(&text,
                             "[Service]\nUser=nobody\nWorkingDirectory=%s\nExecStart=/bin/pwd\n",
                             d) < 0)
                        abort();
                expect_failure("private working directory", text, EXIT_CHDIR, EACCES,
                               "Permission denied");
        }
}

static void test_build_environment(void) {
        _cleanup_unit_free_ unit *u = load("[Service]\nEnvironment=PATH=/x USER=override A=1\n"
                                           "ExecStart=/bin/true\n");
        _cleanup_strv_free_ char **env = NULL;
        spawn_params p = { .unit = u,
                           .log_fd = -1,
                           .cgroup_fd = -1,
                           .notify_socket = "/run/vigil/notify",
                           .main_pid = 42,
                           .watchdog_usec = 3000000 };
        char *s = NULL;
        size_t n = 0;
        FILE *f;

        if (!u)
                return;
        tap_inteq(spawn_build_environment(&p, "svc", "/home/svc", "/bin/sh", 77, &env), 0,
                  "spawn_build_environment");
        f = open_memstream(&s, &n);
        STRV_FOREACH(e, env)
                fprintf(f, "%s|", *e);
        fclose(f);
        tap_streq(s,
                  "PATH=/x|USER=override|LOGNAME=svc|HOME=/home/svc|SHELL=/bin/sh|"
                  "NOTIFY_SOCKET=/run/vigil/notify|MAINPID=42|WATCHDOG_USEC=3000000|"
                  "WATCHDOG_PID=77|A=1|",
                  "  order and overrides");
        free(s);
        env = strv_free(env);

        p = (spawn_params){ .unit = u, .log_fd = -1, .cgroup_fd = -1 };
        tap_inteq(spawn_build_environment(&p, NULL, NULL, NULL, 1, &env), 0, "no user");
        tap_inteq(strv_length(env), 3, "  PATH, USER, A only");
}

static char *joined(char **l) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        STRV_FOREACH(i, l)
                fprintf(f, "%s%s", i == l ? "" : "|", *i);
        fclose(f);
        return s;
}

static void test_expand_one(char **argv, const char *want) {
        char *env[] = { "FOO=a b", "Q=x \"y z\" 'w'", "E=", "S=  ", NULL };
        _cleanup_strv_free_ char **out = NULL;
        _cleanup_free_ char *in = joined(argv), *got = NULL;

        if (!tap_inteq(spawn_expand_argv(argv, env, &out), 0, "expand %s", in))
                return;
        got = joined(out);
        tap_streq(got, want, "  expanded %s", in);
}

static void test_expand_argv(void) {
        test_expand_one((char *[]){ "$FOO", NULL }, "a|b");
        test_expand_one((char *[]){ "${FOO}", NULL }, "a b");
        test_expand_one((char *[]){ "x$FOO", NULL }, "x$FOO");
        test_expand_one((char *[]){ "x${FOO}y${FOO}", NULL }, "xa bya b");
        test_expand_one((char *[]){ "$Q", NULL }, "x|y z|w");
        test_expand_one((char *[]){ "a", "$NOPE", "b", NULL }, "a|b");
        test_expand_one((char *[]){ "$E", "$S", "${E}", NULL }, "");
        test_expand_one((char *[]){ "$$", "$$FOO", "a$$b", "$", "${FOO", "$1", NULL },
                        "$|$FOO|a$b|$|${FOO|$1");
        test_expand_one((char *[]){ "${NOPE}", "${}", NULL }, "|");
        test_expand_one((char *[]){ NULL }, "");
}

static void test_env_file_one(const char *content, const char *want) {
        _cleanup_free_ char *f = tmp_path("envfile"), *got = NULL;
        _cleanup_strv_free_ char **env = NULL;
        int r;

        write_file(f, content);
        r = env_file_load(f, &env);
        got = joined(env);
        tap_inteq(r, 0, "env_file_load");
        tap_streq(got, want, "  contents");
}

static void test_env_file(void) {
        _cleanup_strv_free_ char **env = NULL;

        test_env_file_one("A=1\nB=2", "A=1|B=2");
        test_env_file_one("  # c\n;c\n\nA = 1 \n", "A=1");
        test_env_file_one("A='x y' \"z\"\n", "A=x yz");
        test_env_file_one("A=\"a\\$b\\\\c\\d\\\"\"\n", "A=a$b\\c\\d\"");
        test_env_file_one("A='a\\'\n", "A=a\\");
        test_env_file_one("A=x\\\ny\nB=z\\ \n", "A=xy|B=z ");
        test_env_file_one("A=\"multi\nline\"\nB=x", "A=multi\nline|B=x");
        test_env_file_one("A=\"con\\\ntinued\"\n", "A=continued");
        test_env_file_one("A=a # not a comment\n", "A=a # not a comment");
        test_env_file_one("# comment \\\ncontinued=1\nA=1\n", "A=1");
        test_env_file_one("A=1\nA=2\n", "A=2");
        test_env_file_one("export X=1\n1BAD=2\nNOEQUALS\nB-C=3\nOK=4\n", "OK=4");
        test_env_file_one("A=1\r\nB=2\r\n", "A=1|B=2");
        test_env_file_one("A=\nB=\"\"\nC='unterminated", "A=|B=|C=unterminated");
        test_env_file_one("", "");

        tap_inteq(env_file_load("/nonexistent/file", &env), -ENOENT, "missing file");
        {
                _cleanup_free_ char *f = tmp_path("big");
                _cleanup_fclose_ FILE *fp = fopen(f, "we");

                for (int i = 0; i < 1100 * 1024 / 16; i++)
                        fputs("A=xxxxxxxxxxxxx\n", fp);
                fflush(fp);
                tap_inteq(env_file_load(f, &env), -EFBIG, "file above 1 MiB refused");
        }
        {
                _cleanup_free_ char *f = tmp_path("many");
                _cleanup_fclose_ FILE *fp = fopen(f, "we");

                for (int i = 0; i < 9000; i++)
                        fprintf(fp, "V%d=1\n", i);
                fflush(fp);
                tap_inteq(env_file_load(f, &env), -E2BIG, "more than 8192 entries refused");
        }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

int main(void) {
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        /* Make the temp dir reachable for User=nobody. */
        chmod(tmp, 0755);

        test_expand_argv();
        test_env_file();
        test_build_environment();
        test_environment();
        test_argv_expansion();
        test_dirs_and_limits();
        test_failures();
        test_outputs();
        test_fds_and_signals();
        test_closed_stdio();
        test_user();

        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
