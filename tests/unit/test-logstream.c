/* Unit tests for init/logstream.c: pipe capture, line splitting, ring bound, rotation, sinks. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logstream.h"
#include "strv.h"
#include "tap.h"

#define TS_LEN 24
#define LINE_MAX_BYTES 4096

static char tmp[] = "/tmp/test-logstream-XXXXXX";

static char *path_in(const char *rel) {
        static char bufs[4][512];
        static unsigned next;
        char *b = bufs[next++ % 4];

        snprintf(b, sizeof(bufs[0]), "%s/%s", tmp, rel);
        return b;
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                buf = strdup("");
        }
        fclose(f);
        return buf;
}

static long long file_size(const char *path) {
        struct stat st;

        return stat(path, &st) < 0 ? -1 : (long long) st.st_size;
}

static void write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(3);
                }
                p = (const char *) p + k;
                n -= (size_t) k;
        }
}

static void write_str(int fd, const char *s) {
        write_all(fd, s, strlen(s));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ " */
static bool has_timestamp(const char *line) {
        static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ ";

        for (size_t i = 0; i < sizeof(pat) - 1; i++) {
                if (pat[i] == 'd' ? line[i] < '0' || line[i] > '9' : line[i] != pat[i])
                        return false;
        }
        return true;
}

static const char *text_of(const char *line) {
        return strlen(line) > TS_LEN ? line + TS_LEN + 1 : "";
}

static void now_timestamp(char *buf) {
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, 20, "%Y-%m-%dT%H:%M:%S", &tm);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        memset(s, c, n);
        s[n] = '\0';
        return s;
}

/* Forks a process whose stdout and stderr are the stream's pipe. */
static pid_t spawn_writer(log_stream *l, void (*fn)(void *), void *arg) {
        pid_t pid = fork();

        if (pid == 0) {
                dup2(log_stream_writer(l), STDOUT_FILENO);
                dup2(log_stream_writer(l), STDERR_FILENO);
                fn(arg);
                _exit(0);
        }
        return pid;
}

static int wait_exit(pid_t pid) {
        int status;

        if (waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the loop until done(arg) or timeout_ms passed; returns done(arg). */
static bool run_until(sd_event *e, bool (*done)(void *), void *arg, int timeout_ms) {
        struct timespec start, now;

        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!done(arg)) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
                    timeout_ms)
                        return false;
                sd_event_run(e, 100 * 1000);
        }
        return true;
}

/* A subscriber that keeps every line. */
typedef struct collector {
        char **lines;
        size_t n;
} collector;

static void collect(const char *line, size_t len, void *userdata) {
        collector *c = userdata;

        if (strlen(line) == len)
                strv_extend(&c->lines, line);
        else
                strv_extend(&c->lines, "(len mismatch)");
        c->n++;
}

static size_t want_lines;
static bool collected_enough(void *arg) {
        return ((collector *) arg)->n >= want_lines;
}

static void basic_writer(void *arg) {
        char *x = repeat('x', 10000), *a = repeat('a', 4095), *b = repeat('b', 4096);
        pid_t gc = fork();

        if (gc == 0) {
                write_str(STDOUT_FILENO, "from grandchild\n");
                _exit(0);
        }
        waitpid(gc, NULL, 0);
        write_str(STDOUT_FILENO, "hello\n");
        write_str(STDERR_FILENO, "to stderr\n");
        write_str(STDOUT_FILENO, "crlf line\r\n");
        write_str(STDOUT_FILENO, "ctl\x01\x1b[31mred\x7f\tend\n");
        write_str(STDOUT_FILENO, x);
        write_str(STDOUT_FILENO, "\n");
        write_str(STDOUT_FILENO, "caf\xc3\xa9 \xff\xfe \xc2\x9b ok \xe2\x82\xac\n");
        write_str(STDOUT_FILENO, a);
        write_str(STDOUT_FILENO, "\xc3\xa9\n");
        write_str(STDOUT_FILENO, b);
        write_str(STDOUT_FILENO, "\n\n");
        write_str(STDOUT_FILENO, b);
        write_str(STDOUT_FILENO, "\r\n");
        write_str(STDOUT_FILENO, "split ");
        usleep(50 * 1000);
        write_str(STDOUT_FILENO, "across writes\n");
        write_str(STDOUT_FILENO, "no newline at end");
        free(x);
        free(a);
        free(b);
}

static void test_basic(sd_event *e) {
        log_settings s = { .dir = path_in("basic/sub/dir"), .file_keep = 3 };
        log_stream *l = NULL;
        collector c = {};
        _cleanup_strv_free_ char **tail = NULL, **want = NULL;
        _cleanup_free_ char *file = NULL, *x = repeat('x', 4096), *a = repeat('a', 4095),
                            *b = repeat('b', 4096);
        char before[32], after[32];
        unsigned id;
        struct stat st;
        pid_t pid;
        bool ts_ok = true, match = true;
        int r;

        tap_inteq(log_stream_new(e, "svc", &s, &l), 0, "new with a missing log directory");
        tap_ok(stat(path_in("basic/sub/dir"), &st) == 0 && S_ISDIR(st.st_mode) &&
                       (st.st_mode & 07777) == 0750,
               "log directory created with mode 0750");
        tap_ok(stat(path_in("basic/sub/dir/svc.log"), &st) == 0 && (st.st_mode & 07777) == 0640,
               "svc.log created with mode 0640");
        tap_ok(log_stream_writer(l) >= 0, "writer fd");
        tap_ok(fcntl(log_stream_writer(l), F_GETFD) & FD_CLOEXEC, "writer is O_CLOEXEC");
        tap_inteq(log_stream_subscribe(l, collect, &c, &id), 0, "subscribe");

        strv_extend(&want, "from grandchild");
        strv_extend(&want, "hello");
        strv_extend(&want, "to stderr");
        strv_extend(&want, "crlf line");
        strv_extend(&want, "ctl??[31mred?\tend");
        strv_extend(&want, x);
        strv_extend(&want, x);
        strv_push(&want, repeat('x', 10000 - 2 * 4096));
        strv_extend(&want, "caf\xc3\xa9 ?? ? ok \xe2\x82\xac");
        strv_extend(&want, a);
        strv_extend(&want, "\xc3\xa9");
        strv_extend(&want, b);
        strv_extend(&want, "");
        strv_extend(&want, b);
        strv_extend(&want, "split across writes");

        now_timestamp(before);
        pid = spawn_writer(l, basic_writer, NULL);
        tap_inteq(wait_exit(pid), 0, "writer exited");
        want_lines = strv_length(want);
        tap_ok(run_until(e, collected_enough, &c, 5000), "all complete lines arrived");
        now_timestamp(after);

        r = log_stream_tail(l, 100, &tail);
        tap_inteq(r, (long long) strv_length(want), "tail returns every line so far");
        for (size_t i = 0; tail && tail[i] && want[i]; i++) {
                if (!has_timestamp(tail[i]) || strncmp(tail[i], before, 19) < 0 ||
                    strncmp(tail[i], after, 19) > 0)
                        ts_ok = false;
                if (strcmp(text_of(tail[i]), want[i]) != 0) {
                        match = false;
                        tap_streq(text_of(tail[i]), want[i], "line %zu", i);
                }
        }
        tap_ok(ts_ok, "every line has a current UTC timestamp");
        tap_ok(match, "lines split, cut at 4096 bytes and cleaned as expected");
        tap_inteq(c.n, strv_length(want), "subscriber saw every line");
        tap_ok(c.lines && tail && strv_length(c.lines) == strv_length(tail) &&
                       streq(c.lines[0], tail[0]) && streq(c.lines[c.n - 1], tail[r - 1]),
               "subscriber lines equal tail lines");

        file = read_file(path_in("basic/sub/dir/svc.log"));
        {
                size_t i = 0;
                bool same = file != NULL;

                for (char *p = file, *nl; same && p && *p; p = nl + 1, i++) {
                        nl = strchr(p, '\n');
                        if (!nl || !tail[i] || (size_t) (nl - p) != strlen(tail[i]) ||
                            memcmp(p, tail[i], (size_t) (nl - p)) != 0)
                                same = false;
                }
                tap_ok(same && i == (size_t) r, "svc.log holds the same lines, one per line");
        }

        log_stream_append(l, "Main process exited, status=0");
        strv_free(tail);
        tail = NULL;
        tap_inteq(log_stream_tail(l, 1, &tail), 1, "tail 1");
        tap_streq(tail ? text_of(tail[0]) : NULL, "Main process exited, status=0",
                  "append goes into the ring (partial service line still waits)");
        tap_ok(tail && has_timestamp(tail[0]), "appended line is timestamped");

        log_stream_free(l);
        free(file);
        file = read_file(path_in("basic/sub/dir/svc.log"));
        {
                static const char m[] = " Main process exited, status=0\n";
                const char *p = file ? strstr(file, m) : NULL;

                tap_ok(p != NULL, "appended line in the file");
                tap_streq(p ? p + strlen(m) + TS_LEN : NULL, " no newline at end\n",
                          "free flushes the pending partial line into the file, last");
        }
        tap_inteq(c.n, strv_length(want) + 2, "subscriber got append and final partial");
        strv_free(c.lines);
}

/* Rotation: tiny files, file_keep=2, a file over the limit at open, file_keep=0. */
static void test_rotation(sd_event *e) {
        log_settings s = { .dir = path_in("rot"), .file_max_bytes = 1000, .file_keep = 2 };
        log_stream *l = NULL;
        char line[64];
        DIR *d;
        struct dirent *de;
        int n_files = 0, n_other = 0;
        bool seq_ok = true;
        int expect = -1, last = -1;

        tap_inteq(log_stream_new(e, "rot", &s, &l), 0, "new rot");
        for (int i = 0; i < 100; i++) {
                snprintf(line, sizeof(line), "line %03d with some padding text", i);
                log_stream_append(l, line);
        }

        d = opendir(path_in("rot"));
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (streq(de->d_name, "rot.log") || streq(de->d_name, "rot.log.1") ||
                    streq(de->d_name, "rot.log.2"))
                        n_files++;
                else
                        n_other++;
        }
        if (d)
                closedir(d);
        tap_ok(n_files == 3 && n_other == 0, "exactly rot.log, rot.log.1, rot.log.2 exist");
        tap_ok(file_size(path_in("rot/rot.log")) <= 1000 &&
                       file_size(path_in("rot/rot.log.1")) <= 1000 &&
                       file_size(path_in("rot/rot.log.2")) <= 1000 &&
                       file_size(path_in("rot/rot.log.1")) > 900,
               "every file within file_max_bytes");

        /* .2, .1, .log hold consecutive lines ending with the newest */
        const char *order[] = { "rot/rot.log.2", "rot/rot.log.1", "rot/rot.log" };
        for (size_t f = 0; f < ELEMENTSOF(order); f++) {
                _cleanup_free_ char *c = read_file(path_in(order[f]));

                for (char *p = c; p && *p;) {
                        char *nl = strchr(p, '\n');
                        int num = -2;

                        if (!nl || sscanf(p + TS_LEN + 1, "line %d", &num) != 1 ||
                            (expect >= 0 && num != expect))
                                seq_ok = false;
                        expect = num + 1;
                        last = num;
                        p = nl ? nl + 1 : p + strlen(p);
                }
        }
        tap_ok(seq_ok && last == 99, "rotated files hold consecutive lines up to the newest");
        log_stream_free(l);

        /* over the limit at open: rotate first */
        mkdir(path_in("rot2"), 0750);
        {
                _cleanup_free_ char *big = repeat('y', 4999);
                FILE *f = fopen(path_in("rot2/pre.log"), "we");

                fprintf(f, "%s\n", big);
                fclose(f);
        }
        s.dir = path_in("rot2");
        tap_inteq(log_stream_new(e, "pre", &s, &l), 0, "new pre with an oversized pre.log");
        tap_inteq(file_size(path_in("rot2/pre.log.1")), 5000, "old pre.log became pre.log.1");
        tap_inteq(file_size(path_in("rot2/pre.log")), 0, "pre.log starts empty");
        log_stream_free(l);

        /* file_keep=0: no old files */
        s.dir = path_in("rot3");
        s.file_max_bytes = 200;
        s.file_keep = 0;
        tap_inteq(log_stream_new(e, "k0", &s, &l), 0, "new k0");
        for (int i = 0; i < 30; i++)
                log_stream_append(l, "some line of text");
        tap_ok(file_size(path_in("rot3/k0.log")) <= 200 && file_size(path_in("rot3/k0.log.1")) < 0,
               "file_keep=0 keeps only k0.log");
        log_stream_free(l);
}

/* 10 MB through a default-sized ring; per-dispatch read budget. */
typedef struct flood {
        size_t lines, text_bytes, run_bytes;
        bool end;
} flood;

static void flood_line(const char *line, size_t len, void *userdata) {
        flood *f = userdata;

        f->lines++;
        f->text_bytes += len - TS_LEN - 1;
        f->run_bytes += len - TS_LEN; /* text + newline (or a cut) */
        if (streq(text_of(line), "END"))
                f->end = true;
}

#define FLOOD_BYTES (10u * 1024 * 1024)

static size_t flood_generate(char *buf, size_t i) {
        /* lines of 9..~320 bytes, every 500th one 6000 bytes (cut into two) */
        size_t n = (size_t) snprintf(buf, 32, "L%07zu ", i);
        size_t pad = i % 500 == 0 ? 6000 - n : (i * 37) % 311;

        memset(buf + n, 'z', pad);
        buf[n + pad] = '\n';
        return n + pad + 1;
}

static void flood_writer(void *arg) {
        size_t cap = 128 * 1024, used = 0, total = 0;
        char *buf = malloc(cap);

        for (size_t i = 0; total < FLOOD_BYTES; i++) {
                size_t n = flood_generate(buf + used, i);

                used += n;
                total += n;
                if (used > cap - 8192) {
                        write_all(STDOUT_FILENO, buf, used);
                        used = 0;
                }
        }
        write_all(STDOUT_FILENO, buf, used);
        write_str(STDOUT_FILENO, "END\n");
        free(buf);
}

static void test_ring_bound(sd_event *e) {
        log_settings s = {};
        log_stream *l = NULL;
        flood f = {};
        _cleanup_strv_free_ char **tail = NULL;
        size_t max_run = 0, sum = 0, expect_lines = 0, expect_text = 0, total = 0;
        struct timespec start, now;
        char gen[8192];
        pid_t pid;
        int r;

        for (size_t i = 0; total < FLOOD_BYTES; i++) {
                size_t n = flood_generate(gen, i);

                total += n;
                expect_lines += n - 1 > LINE_MAX_BYTES ? 2 : 1;
                expect_text += n - 1;
        }
        expect_lines++; /* END */
        expect_text += 3;

        tap_inteq(log_stream_new(e, "flood", &s, &l), 0, "new flood (defaults)");
        log_stream_subscribe(l, flood_line, &f, NULL);
        pid = spawn_writer(l, flood_writer, NULL);

        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!f.end) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec > 60)
                        break;
                f.run_bytes = 0;
                sd_event_run(e, 100 * 1000);
                if (f.run_bytes > max_run)
                        max_run = f.run_bytes;
        }
        tap_inteq(wait_exit(pid), 0, "flood writer exited");
        tap_ok(f.end, "all of 10 MB arrived");
        tap_inteq(f.lines, expect_lines, "line count after 10 MB");
        tap_inteq(f.text_bytes, expect_text, "text bytes after 10 MB");
        /* + 64: each cut piece is counted with a newline it did not have */
        tap_ok(max_run <= 64 * 1024 + LINE_MAX_BYTES + 64,
               "at most 64 KiB (+ a carried partial line) per dispatch: %zu", max_run);

        r = log_stream_tail(l, 100000, &tail);
        for (size_t i = 0; tail && tail[i]; i++)
                sum += strlen(tail[i]) + 2; /* each record: u16 length + "TIMESTAMP text" */
        tap_ok(r > 0 && sum <= 64 * 1024, "ring holds at most ring_bytes: %zu in %d lines", sum, r);
        tap_ok(sum > 64 * 1024 - 2 - TS_LEN - 1 - LINE_MAX_BYTES, "ring is full: %zu", sum);
        tap_streq(r > 0 ? text_of(tail[r - 1]) : NULL, "END", "newest line last");
        {
                bool ordered = true;
                unsigned long prev = 0;

                for (int i = 0; i < r - 1; i++) {
                        unsigned long num;

                        if (text_of(tail[i])[0] != 'L')
                                continue; /* the second piece of a cut line */
                        num = strtoul(text_of(tail[i]) + 1, NULL, 10);
                        if (prev && num != prev + 1)
                                ordered = false;
                        prev = num;
                }
                tap_ok(ordered, "tail is oldest first and gapless");
        }
        log_stream_free(l);
}

/* The ring starts small and doubles up to ring_bytes; nothing is lost on the way. */
static void test_ring_growth(sd_event *e) {
        log_settings s = { .ring_bytes = 16 * 1024 };
        log_stream *l = NULL;
        _cleanup_free_ char *big = repeat('g', LINE_MAX_BYTES);
        char line[64];
        size_t sum = 0, appended = 0, used = 0;
        bool whole = true, ordered = true;
        int r;

        tap_inteq(log_stream_new(e, "grow", &s, &l), 0, "new grow (16 KiB ring)");
        /* 80-byte records: the ring doubles several times before it is full */
        for (unsigned i = 0; used + 2 + TS_LEN + 1 + 54 <= 16 * 1024; i++) {
                _cleanup_strv_free_ char **tail = NULL;

                snprintf(line, sizeof(line), "L%06u %045u", i, i);
                log_stream_append(l, line);
                appended++;
                used += 2 + TS_LEN + 1 + strlen(line);
                r = log_stream_tail(l, 100000, &tail);
                if (r != (int) appended || strncmp(text_of(tail[0]), "L000000 ", 8) != 0 ||
                    !streq(text_of(tail[r - 1]), line)) {
                        whole = false;
                        break;
                }
        }
        tap_ok(whole, "every line kept while the ring grows: %zu lines", appended);

        for (unsigned i = (unsigned) appended; i < appended + 500; i++) {
                snprintf(line, sizeof(line), "L%06u %045u", i, i);
                log_stream_append(l, line);
        }
        {
                _cleanup_strv_free_ char **tail = NULL;
                unsigned long prev = 0;

                r = log_stream_tail(l, 100000, &tail);
                for (int i = 0; i < r; i++) {
                        unsigned long num = strtoul(text_of(tail[i]) + 1, NULL, 10);

                        sum += strlen(tail[i]) + 2;
                        if (i > 0 && num != prev + 1)
                                ordered = false;
                        prev = num;
                }
                tap_ok(r > 0 && sum <= 16 * 1024 && sum > 16 * 1024 - 80,
                       "grown ring is bounded by ring_bytes and full: %zu", sum);
                tap_ok(ordered && r > 0 && prev == appended + 499,
                       "after wrapping: oldest first, gapless, newest last");
        }
        log_stream_free(l);

        /* a record bigger than twice the ring so far */
        tap_inteq(log_stream_new(e, "grow", &s, &l), 0, "new grow again");
        log_stream_append(l, "short");
        log_stream_append(l, big);
        {
                _cleanup_strv_free_ char **tail = NULL;

                r = log_stream_tail(l, 10, &tail);
                tap_ok(r == 2 && streq(text_of(tail[0]), "short") && streq(text_of(tail[1]), big),
                       "a longest line after a short one: the ring grows past double");
        }
        log_stream_free(l);

        /* the smallest ring: its bound (one longest line) is no power of 2 */
        s.ring_bytes = 1;
        tap_inteq(log_stream_new(e, "grow", &s, &l), 0, "new grow (smallest ring)");
        log_stream_append(l, big);
        {
                _cleanup_strv_free_ char **tail = NULL;

                r = log_stream_tail(l, 10, &tail);
                tap_ok(r == 1 && streq(text_of(tail[0]), big),
                       "a longest line fits in the smallest ring");
        }
        log_stream_append(l, "after");
        log_stream_append(l, "later");
        {
                _cleanup_strv_free_ char **tail = NULL;

                r = log_stream_tail(l, 10, &tail);
                tap_ok(r == 2 && streq(text_of(tail[0]), "after") &&
                               streq(text_of(tail[1]), "later"),
                       "the smallest ring evicts the longest line and wraps");
        }
        log_stream_free(l);
}

/* Writes s into the stream's pipe and lets the loop read all of it (one dispatch). */
static void pipe_feed(sd_event *e, log_stream *l, const char *s) {
        int pending = 1;

        write_all(log_stream_writer(l), s, strlen(s));
        for (int i = 0; i < 100 && pending > 0; i++) {
                sd_event_run(e, 100 * 1000);
                if (ioctl(log_stream_writer(l), FIONREAD, &pending) < 0)
                        break;
        }
}

/* A line whose pieces arrive in separate dispatches is held between them. */
static void test_partial_across(sd_event *e) {
        log_settings s = { .dir = path_in("across"), .file_keep = 1 };
        log_stream *l = NULL;
        collector c = {};
        _cleanup_free_ char *a = repeat('a', 3000), *b = repeat('b', 3000),
                            *full = repeat('f', LINE_MAX_BYTES), *file = NULL;
        _cleanup_free_ char *ab = NULL;

        tap_inteq(log_stream_new(e, "across", &s, &l), 0, "new across");
        log_stream_subscribe(l, collect, &c, NULL);

        pipe_feed(e, l, "first half, ");
        tap_inteq(c.n, 0, "a partial line waits across a dispatch");
        pipe_feed(e, l, "second half, ");
        pipe_feed(e, l, "end\nnext whole line\nanother start ");
        tap_inteq(c.n, 2, "completed and whole lines go out, the new partial waits");
        tap_streq(c.n > 0 ? text_of(c.lines[0]) : NULL, "first half, second half, end",
                  "pieces of three dispatches joined");
        tap_streq(c.n > 1 ? text_of(c.lines[1]) : NULL, "next whole line",
                  "a whole line after a joined one");

        pipe_feed(e, l, "done\n");
        pipe_feed(e, l, a);
        pipe_feed(e, l, b);
        tap_inteq(c.n, 4, "a long line is cut at 4096 bytes once the pieces exceed it");
        asprintf(&ab, "%s%.*s", a, LINE_MAX_BYTES - 3000, b);
        tap_streq(c.n > 3 ? text_of(c.lines[3]) : NULL, ab, "the cut piece spans two dispatches");
        pipe_feed(e, l, "\n");
        tap_ok(c.n == 5 && strlen(text_of(c.lines[4])) == 6000 - LINE_MAX_BYTES,
               "the rest of the long line ends at its newline");

        pipe_feed(e, l, full);
        pipe_feed(e, l, "\r\n");
        tap_ok(c.n == 6 && streq(text_of(c.lines[5]), full),
               "a full held line's CRLF in the next dispatch makes no empty piece");
        pipe_feed(e, l, "tail without newline");
        log_stream_free(l);
        tap_ok(c.n == 7 && streq(text_of(c.lines[6]), "tail without newline"),
               "free sends the held partial line");

        file = read_file(path_in("across/across.log"));
        tap_ok(file && strstr(file, " first half, second half, end\n") &&
                       strstr(file, " another start done\n") &&
                       endswith(file, " tail without newline\n"),
               "the file has the joined lines");
        strv_free(c.lines);
}

/* A subscriber of one stream that appends to another: both files stay whole and in order. */
typedef struct relay {
        log_stream *to;
        unsigned n;
} relay;

static void relay_line(const char *line, size_t len, void *userdata) {
        relay *r = userdata;
        char buf[64];

        snprintf(buf, sizeof(buf), "relayed %u", r->n++);
        log_stream_append(r->to, buf);
}

static void test_shared_wbuf(sd_event *e) {
        log_settings s = { .dir = path_in("shared"), .file_keep = 1 };
        log_stream *a = NULL, *b = NULL;
        relay rl = {};
        _cleanup_free_ char *fa = NULL, *fb = NULL;
        bool ok_a = true, ok_b = true;
        char *p;
        unsigned n;

        tap_inteq(log_stream_new(e, "sa", &s, &a), 0, "new sa");
        tap_inteq(log_stream_new(e, "sb", &s, &b), 0, "new sb");
        rl.to = b;
        log_stream_subscribe(a, relay_line, &rl, NULL);
        log_stream_append(b, "b first");
        pipe_feed(e, a, "a0\na1\na2\na3\n");
        log_stream_append(a, "a4");
        log_stream_append(b, "b last");
        log_stream_free(a);
        log_stream_free(b);

        fa = read_file(path_in("shared/sa.log"));
        fb = read_file(path_in("shared/sb.log"));
        n = 0;
        for (p = fa; p && *p; p = strchr(p, '\n') + 1, n++) {
                char want[16];

                snprintf(want, sizeof(want), " a%u\n", n);
                if (strncmp(p + TS_LEN, want, strlen(want)) != 0)
                        ok_a = false;
        }
        tap_ok(fa && ok_a && n == 5, "sa.log: its 5 lines, in order");
        n = 0;
        for (p = fb; p && *p; p = strchr(p, '\n') + 1, n++) {
                char want[32];

                if (n == 0)
                        snprintf(want, sizeof(want), " b first\n");
                else if (n == 6)
                        snprintf(want, sizeof(want), " b last\n");
                else
                        snprintf(want, sizeof(want), " relayed %u\n", n - 1);
                if (strncmp(p + TS_LEN, want, strlen(want)) != 0)
                        ok_b = false;
        }
        tap_ok(fb && ok_b && n == 7, "sb.log: its own and the relayed lines, in order");
}

/* Two chatty services: neither starves the other. */
typedef struct fair {
        int which;
        int *last_seen; /* per run: bit 1 = A, bit 2 = B */
        size_t bytes;
        bool end;
} fair;

static void fair_line(const char *line, size_t len, void *userdata) {
        fair *f = userdata;

        *f->last_seen |= f->which;
        f->bytes += len;
        if (streq(text_of(line), "END"))
                f->end = true;
}

static void fair_writer(void *arg) {
        char buf[1000];

        memset(buf, 'q', sizeof(buf));
        buf[sizeof(buf) - 1] = '\n';
        for (int i = 0; i < 4 * 1024; i++)
                write_all(STDOUT_FILENO, buf, sizeof(buf));
        write_str(STDOUT_FILENO, "END\n");
}

static bool fair_done(void *arg) {
        fair *f = arg;
        return f[0].end && f[1].end;
}

static void test_fairness(sd_event *e) {
        log_stream *a = NULL, *b = NULL;
        int seen = 0, both_within = -1;
        fair f[2] = { { 1, &seen }, { 2, &seen } };
        pid_t pa, pb;

        tap_ok(log_stream_new(e, "a", NULL, &a) == 0 && log_stream_new(e, "b", NULL, &b) == 0,
               "two streams with NULL settings");
        log_stream_subscribe(a, fair_line, &f[0], NULL);
        log_stream_subscribe(b, fair_line, &f[1], NULL);
        pa = spawn_writer(a, fair_writer, NULL);
        pb = spawn_writer(b, fair_writer, NULL);
        usleep(100 * 1000); /* both pipes full */

        for (int run = 0; run < 8; run++) {
                sd_event_run(e, 100 * 1000);
                if (seen == 3 && both_within < 0)
                        both_within = run;
        }
        tap_ok(both_within >= 0 && both_within <= 3,
               "both streams served within the first runs (%d)", both_within);
        tap_ok(run_until(e, fair_done, f, 20000), "both floods complete");
        tap_inteq(wait_exit(pa), 0, "writer a exited");
        tap_inteq(wait_exit(pb), 0, "writer b exited");
        log_stream_free(a);
        log_stream_free(b);
}

/* Subscribers: self-removal and removal of another inside a callback; ids. */
typedef struct sub {
        log_stream *l;
        unsigned id, other, count;
        collector *adds; /* subscribe this on first call */
        unsigned added_id;
        bool bad_line;
} sub;

static void sub_self(const char *line, size_t len, void *userdata) {
        sub *s = userdata;

        if (strlen(line) != len || !has_timestamp(line))
                s->bad_line = true;
        if (++s->count == 2)
                log_stream_unsubscribe(s->l, s->id);
}

static void sub_other(const char *line, size_t len, void *userdata) {
        sub *s = userdata;

        if (++s->count == 1) {
                log_stream_unsubscribe(s->l, s->other);
                log_stream_subscribe(s->l, collect, s->adds, &s->added_id);
        }
}

static void sub_count(const char *line, size_t len, void *userdata) {
        ((sub *) userdata)->count++;
}

static void test_subscribers(sd_event *e) {
        log_stream *l = NULL;
        collector d = {};
        sub a = {}, b = {}, c = {};
        unsigned next;
        _cleanup_strv_free_ char **tail = NULL;
        _cleanup_free_ char *big = repeat('w', 5000);

        tap_inteq(log_stream_new(e, "subs", NULL, &l), 0, "new subs");
        a.l = b.l = c.l = l;
        b.adds = &d;
        log_stream_subscribe(l, sub_self, &a, &a.id);
        log_stream_subscribe(l, sub_other, &b, &b.id);
        log_stream_subscribe(l, sub_count, &c, &c.id);
        b.other = c.id;
        tap_ok(a.id > 0 && b.id > a.id && c.id > b.id, "ids increase");

        log_stream_append(l, "one");
        log_stream_append(l, "two");
        log_stream_append(l, "three");
        tap_inteq(a.count, 2, "self-unsubscribing callback stopped after its 2nd line");
        tap_ok(!a.bad_line, "callback line is timestamped and NUL-terminated");
        tap_inteq(b.count, 3, "other subscriber got all lines");
        tap_inteq(c.count, 0, "subscriber removed by an earlier callback got nothing");
        tap_inteq(d.n, 2, "subscriber added inside a callback starts with the next line");
        tap_streq(d.lines ? text_of(d.lines[0]) : NULL, "two", "... which is 'two'");
        tap_ok(b.added_id > c.id, "id of a new subscriber is new");

        log_stream_unsubscribe(l, 99999);
        log_stream_unsubscribe(l, a.id);
        log_stream_unsubscribe(NULL, 1);
        log_stream_subscribe(l, sub_count, &c, &next);
        tap_ok(next > b.added_id, "ids are never reused");
        tap_inteq(log_stream_subscribe(l, NULL, NULL, NULL), -EINVAL, "NULL callback refused");

        /* append: embedded newlines, CRLF, long text, NULLs */
        log_stream_append(l, "first\nsecond\r\n");
        log_stream_append(l, big);
        log_stream_append(l, NULL);
        log_stream_append(NULL, "x");
        tap_inteq(log_stream_tail(l, 4, &tail), 4, "tail 4");
        tap_ok(tail && streq(text_of(tail[0]), "first") && streq(text_of(tail[1]), "second") &&
                       strlen(text_of(tail[2])) == 4096 && strlen(text_of(tail[3])) == 904,
               "append splits on newlines and cuts long text");
        strv_free(tail);
        tail = NULL;
        tap_inteq(log_stream_tail(l, 0, &tail), 0, "tail 0");
        tap_ok(tail && !tail[0], "tail 0 is an empty list");
        strv_free(tail);
        tail = NULL;
        tap_inteq(log_stream_tail(l, 1000000, &tail), 7, "tail n larger than the ring: all 7");
        tap_inteq(log_stream_tail(NULL, 1, &tail), -EINVAL, "tail NULL");

        log_stream_free(l);
        strv_free(d.lines);
}

static void pending_writer(void *arg) {
        write_str(STDOUT_FILENO, "p1\np2\np3\nlast-partial");
}

static void test_free_pending(sd_event *e) {
        log_settings s = { .dir = path_in("pend"), .file_keep = 1 };
        log_stream *l = NULL;
        collector c = {};
        _cleanup_free_ char *file = NULL;
        char *p;
        int n = 0;

        tap_inteq(log_stream_new(e, "pend", &s, &l), 0, "new pend");
        log_stream_subscribe(l, collect, &c, NULL);
        tap_inteq(wait_exit(spawn_writer(l, pending_writer, NULL)), 0, "pending writer exited");
        tap_ok(log_stream_free(l) == NULL, "free returns NULL");
        tap_inteq(c.n, 4, "free drained the pipe and the partial line");
        file = read_file(path_in("pend/pend.log"));
        for (p = file; p && (p = strchr(p, '\n')); p++)
                n++;
        tap_ok(n == 4 && endswith(file, " last-partial\n") && strstr(file, " p1\n"),
               "file has all 4 lines");
        tap_ok(log_stream_free(NULL) == NULL, "free(NULL)");
        strv_free(c.lines);
}

static void test_write_error(sd_event *e) {
        log_settings s = { .dir = path_in("err"), .file_keep = 1 };
        log_stream *l = NULL;
        _cleanup_strv_free_ char **tail = NULL;
        _cleanup_free_ char *file = NULL;

        if (access("/dev/full", W_OK) < 0) {
                tap_ok(1, "# SKIP no /dev/full");
                return;
        }
        mkdir(path_in("err"), 0750);
        symlink("/dev/full", path_in("err/err.log"));
        tap_inteq(log_stream_new(e, "err", &s, &l), 0, "new err on a full disk");
        log_stream_append(l, "one");
        log_stream_append(l, "two");
        tap_inteq(log_stream_tail(l, 10, &tail), 2, "ring keeps lines while the file fails");
        unlink(path_in("err/err.log"));
        log_stream_append(l, "three (within the retry interval)");
        tap_inteq(file_size(path_in("err/err.log")), -1, "no reopen within the retry interval");
        sleep(3);
        usleep(200 * 1000);
        log_stream_append(l, "four");
        file = read_file(path_in("err/err.log"));
        tap_ok(file && strstr(file, "[vigil: 3 lines not written: No space left on device]\n") &&
                       endswith(file, " four\n"),
               "file reopened with a note about lost lines");
        log_stream_free(l);

        /* a directory that cannot be created: capture still works */
        close(open(path_in("notadir"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        s.dir = path_in("notadir/logs");
        strv_free(tail);
        tail = NULL;
        tap_inteq(log_stream_new(e, "nd", &s, &l), 0, "new with an impossible directory");
        log_stream_append(l, "still captured");
        tap_inteq(log_stream_tail(l, 10, &tail), 1, "ring works without a file");
        log_stream_free(l);
}

/* console and kmsg, redirected inside a private mount namespace */
static int sink_child(bool fallback) {
        sd_event *e = NULL;
        log_stream *l = NULL;
        log_settings s = { .console = true, .kmsg = true };

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;
        if (fallback) {
                int fd =
                        open(path_in("stderr.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                        return 1;
                if (mount("tmpfs", "/dev", "tmpfs", 0, NULL) < 0)
                        return 77;
        } else {
                close(open(path_in("console.out"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
                close(open(path_in("kmsg.out"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
                if (mount(path_in("console.out"), "/dev/console", NULL, MS_BIND, NULL) < 0 ||
                    mount(path_in("kmsg.out"), "/dev/kmsg", NULL, MS_BIND, NULL) < 0)
                        return 77;
        }
        if (sd_event_new(&e) < 0 || log_stream_new(e, "con", &s, &l) < 0)
                return 2;
        log_stream_append(l, "hello console");
        log_stream_append(l, "x\x1by");
        if (!fallback) {
                char *k = repeat('k', 3000);

                log_stream_append(l, k); /* cut at 4096: one line; kmsg gets its start */
                free(k);
        }
        log_stream_free(l);
        sd_event_unref(e);
        return 0;
}

static void test_sinks(void) {
        _cleanup_free_ char *con = NULL, *kmsg = NULL, *err = NULL;
        pid_t pid;
        int r;

        fflush(stdout);
        pid = fork();
        if (pid == 0)
                _exit(sink_child(false));
        r = wait_exit(pid);
        if (r == 77)
                tap_ok(1, "# SKIP no mount namespace for console/kmsg");
        else {
                con = read_file(path_in("console.out"));
                kmsg = read_file(path_in("kmsg.out"));
                tap_ok(con && startswith(con, "con: hello console\ncon: x?y\ncon: kkk") &&
                               strlen(con) == 19 + 9 + 5 + 3000 + 1,
                       "console gets NAME: text lines");
                tap_ok(kmsg && startswith(kmsg, "<6>con: hello console<6>con: x?y<6>con: kkk") &&
                               strlen(kmsg) < 38 + 1024,
                       "kmsg gets <6>NAME: text, long lines shortened to fit a record");
        }

        pid = fork();
        if (pid == 0)
                _exit(sink_child(true));
        r = wait_exit(pid);
        if (r == 77)
                tap_ok(1, "# SKIP no mount namespace for the console fallback");
        else {
                err = read_file(path_in("stderr.out"));
                tap_streq(err, "con: hello console\ncon: x?y\n",
                          "without /dev/console (and /dev/kmsg) lines go to stderr");
        }
}

static void test_invalid(sd_event *e) {
        log_stream *l = NULL;
        log_settings s = { .dir = "" };

        tap_inteq(log_stream_new(e, "a/b", NULL, &l), -EINVAL, "name with a slash refused");
        tap_inteq(log_stream_new(e, "", NULL, &l), -EINVAL, "empty name refused");
        tap_inteq(log_stream_new(e, "..", NULL, &l), -EINVAL, "'..' refused");
        tap_inteq(log_stream_new(NULL, "x", NULL, &l), -EINVAL, "NULL event refused");
        tap_inteq(log_stream_new(e, "x", &s, &l), -EINVAL, "empty dir refused");
        tap_ok(l == NULL, "nothing returned on failure");
        tap_inteq(log_stream_writer(NULL), -EINVAL, "writer(NULL)");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

int main(void) {
        sd_event *e = NULL;
        int r;

        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        umask(022);
        if (!mkdtemp(tmp) || sd_event_new(&e) < 0) {
                printf("1..0 # SKIP no temporary directory or event loop\n");
                return 77;
        }

        test_basic(e);
        test_rotation(e);
        test_ring_bound(e);
        test_ring_growth(e);
        test_partial_across(e);
        test_shared_wbuf(e);
        test_fairness(e);
        test_subscribers(e);
        test_free_pending(e);
        test_write_error(e);
        test_sinks();
        test_invalid(e);

        sd_event_unref(e);
        nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        r = tap_done();
        return r;
}
