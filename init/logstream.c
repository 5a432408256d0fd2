/* Per-service log capture: a pipe into a ring buffer of recent lines and a rotated file. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "fileio.h"
#include "logstream.h"
#include "poller.h"
#include "strv.h"

#define LOG_LINE_MAX 4096                   /* longer lines are cut into pieces */
#define TS_LEN 24                           /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
#define REC_MAX (TS_LEN + 1 + LOG_LINE_MAX) /* "TIMESTAMP text" */
#define REC_HDR 2                           /* ring record: u16 length, then the bytes */
#define RING_MIN (REC_HDR + REC_MAX)        /* one longest line always fits */
#define RING_MAX (64u * 1024 * 1024)
#define RING_DEFAULT (64u * 1024)
#define FILE_MAX_DEFAULT (1024u * 1024)
#define FILE_KEEP_MAX 99u
#define READ_BUDGET (64u * 1024) /* per wakeup, so one chatty service cannot starve the loop */
#define READ_CHUNK (8u * 1024)
#define DRAIN_MAX (1024u * 1024) /* at free: a writer that never stops must not hold us */
#define WBUF_SIZE (8u * 1024)
#define FILE_RETRY_NSEC (3ull * 1000 * 1000 * 1000)
#define SUBSCRIBERS_MAX 1024u
#define TAIL_MAX 100000u
#define NAME_LEN_MAX 200u
#define KMSG_TEXT_MAX (1000u - 3 - NAME_LEN_MAX - 2)

#define MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct log_subscriber {
        unsigned id;
        log_line_fn fn; /* NULL: unsubscribed during a dispatch, removed afterwards */
        void *userdata;
} log_subscriber;

/* Who follows a stream's lines: allocated at its first subscription, as few streams have any. */
typedef struct log_subscribers {
        unsigned n, alloc;
        unsigned next_id;
        unsigned dispatching;
        bool dirty;
        log_subscriber items[];
} log_subscribers;

/* The directory of the streams' files and how they rotate: the same for every service of a
 * manager, so kept once, not in each stream. */
typedef struct log_dir {
        struct log_dir *next;
        size_t refs;
        uint64_t file_max;
        unsigned file_keep;
        char path[];
} log_dir;

static log_dir *log_dirs;

/* One per service, so the small fields come in pairs and the counters are 32 bits (the ring
 * is at most RING_MAX, a partial line at most LOG_LINE_MAX, an errno below 256). */
struct log_stream {
        fd_watch watch; /* of the read end (watch.fd); watch.poller NULL once no longer watched */
        int write_fd;

        /* A line still waiting for its newline: LOG_LINE_MAX bytes, allocated only while
         * partial_len > 0, since most lines arrive whole in one read. */
        uint16_t partial_len;
        bool console_owned;
        uint8_t file_errno; /* why the file is closed, 0 if it is not */
        char *partial;

        /* Records packed back to back in one buffer, wrapping around: the memory bound.
         * ring_alloc grows up to ring_size; it stays below only while nothing was evicted,
         * so ring_head is 0 and the records are contiguous whenever it grows. */
        char *ring;
        uint32_t ring_size, ring_alloc, ring_head, ring_used, ring_lines;

        int file_fd;
        log_dir *dir; /* DIR of DIR/NAME.log; NULL: no file */
        uint64_t file_size;
        uint64_t file_retry_at;  /* CLOCK_MONOTONIC ns; no reopen before */
        unsigned long long lost; /* lines not written to the file since file_errno was set */

        int console_fd, kmsg_fd;

        log_subscribers *subs; /* NULL: none so far */

        char name[]; /* one allocation with the stream */
};

static log_dir *log_dir_ref(const char *path, uint64_t file_max, unsigned file_keep) {
        size_t l = strlen(path) + 1;
        log_dir *d;

        for (d = log_dirs; d; d = d->next)
                if (streq(d->path, path) && d->file_max == file_max && d->file_keep == file_keep) {
                        d->refs++;
                        return d;
                }
        d = malloc(sizeof(*d) + l);
        if (!d)
                return NULL;
        memcpy(d->path, path, l);
        d->file_max = file_max;
        d->file_keep = file_keep;
        d->refs = 1;
        d->next = log_dirs;
        log_dirs = d;
        return d;
}

static void log_dir_unref(log_dir *d) {
        if (!d || --d->refs > 0)
                return;
        for (log_dir **pp = &log_dirs; *pp; pp = &(*pp)->next)
                if (*pp == d) {
                        *pp = d->next;
                        break;
                }
        free(d);
}

/* "DIR/NAME.log" and suffix, built when a file is opened or rotated (rarely). */
static char *file_path(const log_stream *l, const char *suffix) {
        char *p;

        if (asprintf(&p, "%s/%s.log%s", l->dir->path, l->name, suffix) < 0)
                return NULL;
        return p;
}

/* File output, flushed at the end of each dispatch and each log_stream_append(). One buffer
 * serves all streams (PID 1 has one thread): it holds the lines of its owner only, and a
 * stream that wants it first flushes the owner's, so even a subscriber appending to
 * another stream in the middle of a dispatch keeps every file in order. */
static struct {
        log_stream *owner; /* NULL: empty */
        size_t len, lines;
        char buf[WBUF_SIZE];
} wbuf;

static uint64_t now_monotonic(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* Writes exactly TS_LEN bytes (no NUL) of UTC realtime to buf. */
static void format_timestamp(char *buf) {
        char tmp[64];
        struct timespec ts;
        struct tm tm = {};
        int year;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (!gmtime_r(&ts.tv_sec, &tm))
                memset(&tm, 0, sizeof(tm));
        year = tm.tm_year + 1900;
        year = year < 0 ? 0 : year > 9999 ? 9999 : year;
        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ts.tv_nsec / 1000000));
        memcpy(buf, tmp, TS_LEN);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or
 * values above U+10FFFF), or 0. */
static size_t utf8_sequence_len(const unsigned char *s, size_t n) {
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                if (s[0] == 0xe0)
                        lo = 0xa0;
                else if (s[0] == 0xed)
                        hi = 0x9f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                if (s[0] == 0xf0)
                        lo = 0x90;
                else if (s[0] == 0xf4)
                        hi = 0x8f;
        } else
                return 0;

        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        return len;
}

/* Where to cut s[0..n) so that no UTF-8 sequence is split across two pieces. */
static size_t utf8_cut(const char *s, size_t n) {
        for (size_t i = 1; i <= 3 && i <= n; i++) {
                unsigned char c = (unsigned char) s[n - i];
                size_t want;

                if ((c & 0xc0) == 0x80)
                        continue;
                want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 1;
                return want > i ? n - i : n;
        }
        return n;
}

/* Copies text to dst (at most n bytes) so that log files, terminals and D-Bus (which
 * requires valid UTF-8) get clean text: control characters other than tab, C1
 * controls and each byte of invalid UTF-8 become '?'. */
static size_t sanitize(char *dst, const char *src, size_t n) {
        const unsigned char *s = (const unsigned char *) src;
        size_t i = 0, o = 0;

        while (i < n) {
                size_t len;

                if (s[i] < 0x80) {
                        dst[o++] = (s[i] < ' ' && s[i] != '\t') || s[i] == 0x7f ? '?' : (char) s[i];
                        i++;
                        continue;
                }
                len = utf8_sequence_len(s + i, n - i);
                if (len == 0) {
                        dst[o++] = '?';
                        i++;
                } else if (len == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0) {
                        dst[o++] = '?'; /* U+0080..U+009F: C1 controls, e.g. CSI */
                        i += 2;
                } else {
                        memcpy(dst + o, s + i, len);
                        o += len;
                        i += len;
                }
        }
        return o;
}

static void ring_copy_in(log_stream *l, size_t off, const void *p, size_t n) {
        size_t first;

        off %= l->ring_alloc;
        first = MIN(n, l->ring_alloc - off);
        memcpy(l->ring + off, p, first);
        memcpy(l->ring, (const char *) p + first, n - first);
}

static void ring_copy_out(const log_stream *l, size_t off, void *p, size_t n) {
        size_t first;

        off %= l->ring_alloc;
        first = MIN(n, l->ring_alloc - off);
        memcpy(p, l->ring + off, first);
        memcpy((char *) p + first, l->ring, n - first);
}

static size_t ring_record_len(const log_stream *l, size_t off) {
        unsigned char h[REC_HDR];

        ring_copy_out(l, off, h, sizeof(h));
        return (size_t) h[0] | (size_t) h[1] << 8;
}

/* Makes room for need more bytes by doubling, before anything is evicted; false when the
 * ring is at ring_size (or memory is short) and old records must go instead. */
static bool ring_grow(log_stream *l, size_t need) {
        size_t a;
        char *p;

        if (l->ring_used + need <= l->ring_alloc || l->ring_alloc == l->ring_size)
                return l->ring_used + need <= l->ring_alloc;

        /* The first record sizes the ring (filling malloc's 16-byte granule after its 8-byte
         * header), which then doubles up to ring_size: most services say little, and a
         * thousand services that said one line keep one line each. */
        a = l->ring_alloc > 0 ? l->ring_alloc : ((need + 8 + 15) & ~(size_t) 15) - 8;
        while (a < l->ring_used + need)
                a *= 2;
        a = MIN(a, l->ring_size);
        p = realloc(l->ring, a);
        if (!p) {
                /* Keep what we have as the bound, unless not even this record fits. */
                if (l->ring_alloc >= need)
                        l->ring_size = l->ring_alloc;
                return false;
        }
        l->ring = p;
        l->ring_alloc = a;
        return true;
}

static void ring_push(log_stream *l, const char *rec, size_t n) {
        unsigned char h[REC_HDR] = { (unsigned char) (n & 0xff), (unsigned char) (n >> 8) };
        size_t need = REC_HDR + n;

        if (!ring_grow(l, need) && l->ring_alloc < need)
                return; /* out of memory: this line is not kept */
        while (l->ring_used + need > l->ring_alloc) {
                size_t old = REC_HDR + ring_record_len(l, l->ring_head);

                l->ring_head = (l->ring_head + old) % l->ring_alloc;
                l->ring_used -= old;
                l->ring_lines--;
        }
        ring_copy_in(l, l->ring_head + l->ring_used, h, sizeof(h));
        ring_copy_in(l, l->ring_head + l->ring_used + REC_HDR, rec, n);
        l->ring_used += need;
        l->ring_lines++;
}

/* Opens NAME.log as it is, creating it (and its directory) when missing. */
static int file_open_plain(log_stream *l) {
        _cleanup_free_ char *path = file_path(l, "");
        struct stat st;
        int fd, r;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0 && errno == ENOENT) {
                r = mkdir_p(l->dir->path, 0750);
                if (r < 0)
                        return r;
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        }
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        l->file_fd = fd;
        l->file_size = S_ISREG(st.st_mode) ? (uint64_t) st.st_size : 0;
        return 0;
}

/* NAME.log.(K-1) → NAME.log.K … NAME.log → NAME.log.1, then a fresh NAME.log. */
static int file_rotate(log_stream *l) {
        /* the names are built only here: rotation is rare, streams are many; ".K" has at
         * most two digits (FILE_KEEP_MAX) */
        _cleanup_free_ char *path = file_path(l, ""), *a = file_path(l, ".99"),
                            *b = file_path(l, ".99");
        size_t size = path ? strlen(path) + strlen(".99") + 1 : 0;

        if (!path || !a || !b)
                return -ENOMEM;
        if (l->file_fd >= 0)
                close(l->file_fd);
        l->file_fd = -1;

        for (unsigned k = l->dir->file_keep; k >= 2; k--) {
                snprintf(a, size, "%s.%u", path, k - 1);
                snprintf(b, size, "%s.%u", path, k);
                if (rename(a, b) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (l->dir->file_keep > 0) {
                snprintf(a, size, "%s.1", path);
                if (rename(path, a) < 0 && errno != ENOENT)
                        return -errno;
        } else if (unlink(path) < 0 && errno != ENOENT)
                return -errno;

        return file_open_plain(l);
}

static int file_open(log_stream *l) {
        int r;

        r = file_open_plain(l);
        if (r < 0)
                return r;
        if (l->file_size > 0 && l->file_size >= l->dir->file_max)
                return file_rotate(l);
        return 0;
}

/* The file stays closed until file_retry_at; the ring and everything else go on. */
static void file_fail(log_stream *l, int error) {
        if (l->file_fd >= 0)
                close(l->file_fd);
        l->file_fd = -1;
        l->file_errno = (uint8_t) (-error < UINT8_MAX ? -error : UINT8_MAX);
        l->file_retry_at = now_monotonic() + FILE_RETRY_NSEC;
        if (wbuf.owner == l) {
                l->lost += wbuf.lines;
                wbuf.owner = NULL;
                wbuf.len = wbuf.lines = 0;
        }
}

/* l's pending bytes in the shared buffer (0 when another stream owns it). */
static size_t wbuf_len(const log_stream *l) {
        return wbuf.owner == l ? wbuf.len : 0;
}

static void file_flush(log_stream *l) {
        size_t off = 0;

        if (wbuf.owner != l)
                return; /* nothing pending; and file_fail() empties it, so l->file_fd ≥ 0 */
        while (off < wbuf.len) {
                ssize_t k = write(l->file_fd, wbuf.buf + off, wbuf.len - off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        file_fail(l, k < 0 ? -errno : -EIO);
                        return;
                }
                off += (size_t) k;
                l->file_size += (uint64_t) k;
        }
        wbuf.owner = NULL;
        wbuf.len = wbuf.lines = 0;
}

/* Makes the shared buffer l's, writing out the lines of its previous owner. */
static void wbuf_take(log_stream *l) {
        if (wbuf.owner && wbuf.owner != l)
                file_flush(wbuf.owner);
        wbuf.owner = l;
}

/* After an outage, say in the file itself that lines are missing. */
static void file_note_lost(log_stream *l) {
        char ts[TS_LEN];
        int n;

        format_timestamp(ts);
        wbuf_take(l);
        n = snprintf(wbuf.buf, sizeof(wbuf.buf), "%.*s [vigil: %llu lines not written: %s]\n",
                     TS_LEN, ts, l->lost, strerror(l->file_errno));
        wbuf.len = n > 0 ? MIN((size_t) n, sizeof(wbuf.buf) - 1) : 0;
        wbuf.lines = 0;
        l->lost = 0;
        l->file_errno = 0;
}

static void file_write(log_stream *l, const char *rec, size_t n) {
        int r;

        if (!l->dir)
                return;
        if (l->file_fd < 0) {
                if (now_monotonic() < l->file_retry_at) {
                        l->lost++;
                        return;
                }
                r = file_open(l);
                if (r < 0) {
                        file_fail(l, r);
                        l->lost++;
                        return;
                }
                if (l->lost > 0)
                        file_note_lost(l);
                l->file_errno = 0;
        }

        if (l->file_size + wbuf_len(l) + n > l->dir->file_max && l->file_size + wbuf_len(l) > 0) {
                file_flush(l);
                if (l->file_fd < 0) {
                        l->lost++;
                        return;
                }
                r = file_rotate(l);
                if (r < 0) {
                        file_fail(l, r);
                        l->lost++;
                        return;
                }
        }
        if (wbuf_len(l) + n > sizeof(wbuf.buf)) {
                file_flush(l);
                if (l->file_fd < 0) {
                        l->lost++;
                        return;
                }
        }
        wbuf_take(l);
        memcpy(wbuf.buf + wbuf.len, rec, n);
        wbuf.len += n;
        wbuf.lines++;
}

static void subscribers_compact(log_subscribers *subs) {
        unsigned j = 0;

        for (unsigned i = 0; i < subs->n; i++)
                if (subs->items[i].fn)
                        subs->items[j++] = subs->items[i];
        subs->n = j;
        subs->dirty = false;
}

static void subscribers_notify(log_stream *l, const char *rec, size_t n) {
        /* Subscribers added by a callback start with the next line. */
        size_t count = l->subs ? l->subs->n : 0;

        if (count == 0)
                return;
        l->subs->dispatching++;
        for (size_t i = 0; i < count; i++) {
                /* a callback may grow (move) the subscribers: l->subs is read again each time */
                log_subscriber s = l->subs->items[i];

                if (s.fn)
                        s.fn(rec, n, s.userdata);
        }
        l->subs->dispatching--;
        if (l->subs->dispatching == 0 && l->subs->dirty)
                subscribers_compact(l->subs);
}

/* One line (len ≤ LOG_LINE_MAX, no newline) to every sink. */
static void emit_line(log_stream *l, const char *text, size_t len, bool newline) {
        char rec[REC_MAX + 1];
        size_t n, tlen;

        if (newline && len > 0 && text[len - 1] == '\r')
                len--; /* CRLF */

        format_timestamp(rec);
        rec[TS_LEN] = ' ';
        tlen = sanitize(rec + TS_LEN + 1, text, len);
        n = TS_LEN + 1 + tlen;

        ring_push(l, rec, n);

        rec[n] = '\n';
        file_write(l, rec, n + 1);

        if (l->console_fd >= 0) {
                struct iovec iov[] = {
                        { l->name, strlen(l->name) },
                        { (char *) ": ", 2 },
                        { rec + TS_LEN + 1, tlen + 1 },
                };
                /* O_NONBLOCK: on EAGAIN or a short write the rest is dropped */
                (void) !writev(l->console_fd, iov, ELEMENTSOF(iov));
        }
        if (l->kmsg_fd >= 0) {
                /* the kernel refuses records over 1024 bytes: send the start of long lines */
                size_t klen =
                        tlen <= KMSG_TEXT_MAX ? tlen : utf8_cut(rec + TS_LEN + 1, KMSG_TEXT_MAX);
                struct iovec iov[] = {
                        { (char *) "<6>", 3 },
                        { l->name, strlen(l->name) },
                        { (char *) ": ", 2 },
                        { rec + TS_LEN + 1, klen },
                };
                /* one write is one record; EINVAL/ENOSPC/EAGAIN just lose this copy */
                (void) !writev(l->kmsg_fd, iov, ELEMENTSOF(iov));
        }

        rec[n] = '\0';
        subscribers_notify(l, rec, n);
}

/* The partial line is full and more of the line follows: send what we have. */
static void partial_cut(log_stream *l) {
        size_t k = utf8_cut(l->partial, l->partial_len);

        emit_line(l, l->partial, k, false);
        memmove(l->partial, l->partial + k, l->partial_len - k);
        l->partial_len -= k;
}

/* Keeps the start of a line (n ≤ LOG_LINE_MAX) until more of it arrives. */
static void partial_keep(log_stream *l, const char *p, size_t n) {
        if (!l->partial) {
                l->partial = malloc(LOG_LINE_MAX);
                if (!l->partial) {
                        emit_line(l, p, n, false); /* out of memory: cut the line here */
                        return;
                }
        }
        memcpy(l->partial, p, n);
        l->partial_len = n;
}

/* One segment of input: the bytes up to a newline (nl) or up to the end of the read. */
static void feed_segment(log_stream *l, const char *p, size_t seg, bool nl) {
        /* First complete a pending partial line. */
        while (l->partial_len > 0 && seg > 0) {
                size_t k;

                if (l->partial_len == LOG_LINE_MAX) {
                        if (nl && seg == 1 && *p == '\r')
                                seg = 0; /* a full line's CRLF: no empty piece */
                        else
                                partial_cut(l);
                        continue;
                }
                k = MIN(seg, (size_t) LOG_LINE_MAX - l->partial_len);
                memcpy(l->partial + l->partial_len, p, k);
                l->partial_len += k;
                p += k;
                seg -= k;
        }
        if (l->partial_len > 0) {
                if (nl) {
                        emit_line(l, l->partial, l->partial_len, true);
                        l->partial_len = 0;
                }
                return;
        }

        /* Nothing pending: the same cuts, straight from the read buffer. */
        while (seg > LOG_LINE_MAX) {
                size_t k;

                if (nl && seg == LOG_LINE_MAX + 1 && p[LOG_LINE_MAX] == '\r') {
                        seg = LOG_LINE_MAX; /* a full line's CRLF: no empty piece */
                        break;
                }
                k = utf8_cut(p, LOG_LINE_MAX);
                emit_line(l, p, k, false);
                p += k;
                seg -= k;
        }
        if (nl)
                emit_line(l, p, seg, true);
        else if (seg > 0)
                partial_keep(l, p, seg);
}

static void feed(log_stream *l, const char *p, size_t n) {
        while (n > 0) {
                const char *nl = memchr(p, '\n', n);
                size_t seg = nl ? (size_t) (nl - p) : n;

                feed_segment(l, p, seg, nl);
                p += seg + !!nl;
                n -= seg + !!nl;
        }
        if (l->partial_len == 0)
                l->partial = mfree(l->partial);
}

static size_t drain(log_stream *l, size_t budget) {
        char buf[READ_CHUNK];
        size_t total = 0;

        while (total < budget) {
                size_t want = MIN(sizeof(buf), budget - total);
                ssize_t k = read(l->watch.fd, buf, want);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break; /* EAGAIN: empty; EOF cannot happen while we hold the writer */
                feed(l, buf, (size_t) k);
                total += (size_t) k;
                if ((size_t) k < want)
                        break; /* a pipe returns less only when it is empty */
        }
        return total;
}

/* Every stream's read end is a registration in the loop's one epoll set (init/poller.c), not
 * an sd-event source of its own. */
static void on_readable(fd_watch *w, uint32_t revents) {
        log_stream *l = container_of(w, log_stream, watch);

        drain(l, READ_BUDGET);
        file_flush(l);
}

void log_stream_read_pending(log_stream *l) {
        if (!l)
                return;
        drain(l, READ_BUDGET);
        file_flush(l);
}

static bool name_is_valid(const char *name) {
        size_t n = strnlen(name, NAME_LEN_MAX + 1);

        if (n == 0 || n > NAME_LEN_MAX || streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *p = name; *p; p++)
                if (*p == '/' || (unsigned char) *p < ' ' || *p == 0x7f)
                        return false;
        return true;
}

static void log_stream_freep(log_stream **l) {
        log_stream_free(*l);
}

static int open_console(log_stream *l) {
        int fd;

        fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                /* A new open file description of our stderr, so that O_NONBLOCK does not
                 * leak into whoever shares it; O_APPEND so a log file is not overwritten. */
                fd = open("/proc/self/fd/2",
                          O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
                l->console_owned = true;
                return fd;
        }
        return STDERR_FILENO; /* last resort; blocking if stderr is */
}

int log_stream_new(sd_event *e, const char *name, const log_settings *s, log_stream **ret) {
        static const log_settings defaults = {
                .ring_bytes = RING_DEFAULT,
                .file_max_bytes = FILE_MAX_DEFAULT,
                .file_keep = 3,
        };
        _cleanup_(log_stream_freep) log_stream *l = NULL;
        size_t name_len, path_len, ring;
        int fds[2], r;

        if (!e || !name || !ret || !name_is_valid(name))
                return -EINVAL;
        if (!s)
                s = &defaults;
        if (s->dir && isempty(s->dir))
                return -EINVAL;
        name_len = strlen(name);
        if (s->dir) {
                path_len = strlen(s->dir) + 1 + name_len + strlen(".log");
                if (path_len + 4 >= PATH_MAX) /* and ".K" of the rotated files */
                        return -ENAMETOOLONG;
        }

        l = calloc(1, offsetof(log_stream, name) + name_len + 1);
        if (!l)
                return -ENOMEM;
        l->watch.fd = l->write_fd = l->file_fd = l->console_fd = l->kmsg_fd = -1;
        memcpy(l->name, name, name_len + 1);
        if (s->dir) {
                /* 0 keeps no old files: rotation starts NAME.log afresh */
                l->dir = log_dir_ref(s->dir,
                                     s->file_max_bytes == 0 ? FILE_MAX_DEFAULT : s->file_max_bytes,
                                     MIN(s->file_keep, FILE_KEEP_MAX));
                if (!l->dir)
                        return -ENOMEM;
        }

        ring = s->ring_bytes == 0 ? RING_DEFAULT : s->ring_bytes;
        l->ring_size = (uint32_t) (ring < RING_MIN ? RING_MIN : MIN(ring, RING_MAX));

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        l->watch.fd = fds[0];
        l->write_fd = fds[1];
        /* only our end: the services' stdout stays blocking, as programs expect */
        if (fcntl(l->watch.fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;

        r = fd_watch_add(e, &l->watch, l->watch.fd, EPOLLIN, on_readable);
        if (r < 0)
                return r;

        if (s->console)
                l->console_fd = open_console(l);
        if (s->kmsg)
                l->kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

        if (l->dir) {
                /* not fatal: the ring still captures, and the file is retried later */
                r = file_open(l);
                if (r < 0)
                        file_fail(l, r);
        }

        *ret = TAKE_PTR(l);
        return 0;
}

log_stream *log_stream_free(log_stream *l) {
        if (!l)
                return NULL;

        if (l->watch.fd >= 0 && l->watch.poller) {
                drain(l, DRAIN_MAX);
                if (l->partial_len > 0)
                        emit_line(l, l->partial, l->partial_len, false);
                l->partial_len = 0;
        }
        file_flush(l);
        if (wbuf.owner == l) { /* cannot be after file_flush(), but it must not dangle */
                wbuf.owner = NULL;
                wbuf.len = wbuf.lines = 0;
        }

        fd_watch_remove(&l->watch);
        if (l->watch.fd >= 0)
                close(l->watch.fd);
        if (l->write_fd >= 0)
                close(l->write_fd);
        if (l->file_fd >= 0)
                close(l->file_fd);
        if (l->console_fd >= 0 && l->console_owned)
                close(l->console_fd);
        if (l->kmsg_fd >= 0)
                close(l->kmsg_fd);

        free(l->subs);
        free(l->partial);
        free(l->ring);
        log_dir_unref(l->dir);
        return mfree(l);
}

int log_stream_writer(log_stream *l) {
        return l ? l->write_fd : -EINVAL;
}

void log_stream_append(log_stream *l, const char *line) {
        const char *p = line;
        size_t n;

        if (!l || !line)
                return;

        n = strlen(line);
        while (n > 0) {
                const char *nl = memchr(p, '\n', n);
                size_t seg = nl ? (size_t) (nl - p) : n;

                while (seg > LOG_LINE_MAX) {
                        size_t k = utf8_cut(p, LOG_LINE_MAX);

                        emit_line(l, p, k, false);
                        p += k;
                        n -= k;
                        seg -= k;
                }
                emit_line(l, p, seg, nl);
                p += seg;
                n -= seg;
                if (nl) {
                        p++;
                        n--;
                }
        }
        file_flush(l);
}

int log_stream_tail(const log_stream *l, size_t n, char ***ret) {
        _cleanup_strv_free_ char **v = NULL;
        size_t off;

        if (!l || !ret)
                return -EINVAL;

        n = MIN(MIN(n, (size_t) TAIL_MAX), l->ring_lines);
        v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;

        off = l->ring_head;
        for (size_t i = 0; i < l->ring_lines - n; i++)
                off += REC_HDR + ring_record_len(l, off);
        for (size_t i = 0; i < n; i++) {
                size_t len = ring_record_len(l, off);

                v[i] = malloc(len + 1);
                if (!v[i])
                        return -ENOMEM;
                ring_copy_out(l, off + REC_HDR, v[i], len);
                v[i][len] = '\0';
                off += REC_HDR + len;
        }

        *ret = TAKE_PTR(v);
        return (int) n;
}

int log_stream_subscribe(log_stream *l, log_line_fn fn, void *userdata, unsigned *ret_id) {
        log_subscribers *subs;

        if (!l || !fn)
                return -EINVAL;
        subs = l->subs;
        if (subs && subs->next_id == 0)
                return -ENOSPC; /* ids are never reused, and all 2^32-1 were handed out */
        if (subs && subs->n >= SUBSCRIBERS_MAX)
                return -ENOBUFS;

        if (!subs || subs->n == subs->alloc) {
                unsigned a = subs ? subs->alloc * 2 : 4;

                subs = realloc(subs, sizeof(*subs) + a * sizeof(log_subscriber));
                if (!subs)
                        return -ENOMEM;
                if (!l->subs)
                        *subs = (log_subscribers){ .next_id = 1 };
                subs->alloc = a;
                l->subs = subs;
        }
        subs->items[subs->n++] =
                (log_subscriber){ .id = subs->next_id, .fn = fn, .userdata = userdata };
        if (ret_id)
                *ret_id = subs->next_id;
        subs->next_id++;
        return 0;
}

void log_stream_unsubscribe(log_stream *l, unsigned id) {
        log_subscribers *subs = l ? l->subs : NULL;

        if (!subs)
                return;
        for (unsigned i = 0; i < subs->n; i++) {
                if (subs->items[i].id != id || !subs->items[i].fn)
                        continue;
                subs->items[i].fn = NULL;
                if (subs->dispatching > 0)
                        subs->dirty = true; /* the dispatch loop is walking the array */
                else
                        subscribers_compact(subs);
                return;
        }
}
