/* The D-Bus API (org.vigil1): peer-to-peer connections on the private socket, and the
 * system bus when there is one. Every mutating call is authorized here, from credentials
 * the kernel or the bus daemon supplied, and written to the audit log. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <time.h>

#include "audit.h"
#include "bundle.h"
#include "bus.h"
#include "config.h"
#include "crash.h"
#include "log.h"
#include "resource.h"
#include "strv.h"
#include "update.h"
#include "value.h"

#define MANAGER_PATH "/org/vigil1"
#define MANAGER_INTERFACE "org.vigil1.Manager"
#define SERVICE_PREFIX "/org/vigil1/service"
#define SERVICE_INTERFACE "org.vigil1.Service"
#define BUS_NAME "org.vigil1"

#define ERROR_NO_SUCH_SERVICE "org.vigil1.Error.NoSuchService"
#define ERROR_INVALID_ARGUMENT "org.vigil1.Error.InvalidArgument"
#define ERROR_ACCESS_DENIED "org.vigil1.Error.AccessDenied"
#define ERROR_NOT_RUNNING "org.vigil1.Error.NotRunning"
#define ERROR_NOT_SUPPORTED "org.vigil1.Error.NotSupported"
#define ERROR_BAD_UNIT "org.vigil1.Error.BadUnitFile"
#define ERROR_FAILED "org.vigil1.Error.Failed"
#define ERROR_NO_SUCH_IMAGE "org.vigil1.Error.NoSuchImage"
#define ERROR_NO_PREVIOUS_VERSION "org.vigil1.Error.NoPreviousVersion"
#define ERROR_START_REFUSED "org.vigil1.Error.StartRefused"

/* Each connection costs a little memory and an fd; the socket is root-only, so this only
 * guards against runaway scripts. */
#define BUS_CONNECTIONS_MAX 64
#define BUS_FOLLOWERS_MAX 32
#define BUS_LOG_LINES_MAX 100000
#define BUS_CRASH_RECORDS_MAX 20
#define BUS_PROPERTIES_MAX 32
/* More supplementary groups than this read as "unknown": grants by group then give nothing. */
#define BUS_GROUPS_MAX 65536
/* Room for a burst of log lines while a follower's reader is scheduled. */
#define FOLLOW_SNDBUF_BYTES (1024 * 1024)
/* The system bus is retried this often while it is missing (doubling from the first). */
#define SYSTEM_BUS_RETRY_MIN (100 * USEC_PER_MSEC)
#define SYSTEM_BUS_RETRY_MAX (5 * USEC_PER_SEC)
/* A bus daemon that does not answer a credentials query in time denies the call. The query
 * is synchronous (it answers in well under a millisecond): a hung daemon stalls PID 1's loop
 * for at most this long per mutating call. */
#define SYSTEM_BUS_CALL_TIMEOUT (500 * USEC_PER_MSEC)

#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)

typedef struct bus_conn bus_conn;
typedef struct bus_follower bus_follower;

/* One accepted connection, or the system bus connection. */
struct bus_conn {
        bus_server *server;
        sd_bus *bus;
        bool system; /* the system bus: credentials come with each message */
        /* Private socket: SO_PEERCRED and SO_PEERGROUPS, as the kernel recorded them at
         * connect() (a peer cannot change them afterwards). */
        access_caller caller;
        gid_t *groups;
        pid_t pid;
        bus_conn *prev, *next;
};

/* One FollowLogs() caller: new lines of the service's log go to fd (our end of a socketpair;
 * the caller holds the other end). */
struct bus_follower {
        bus_server *server;
        service *service;
        unsigned subscription;
        bool subscribed;
        int fd;
        sd_event_source *hangup_source;
        bus_follower *prev, *next;
};

struct bus_server {
        manager *manager;
        char *path;
        dev_t dev; /* the socket file we bound, so that we only ever remove our own */
        ino_t ino;
        int listen_fd;
        sd_event_source *listen_source, *retry_source;
        bus_conn *conns;
        size_t n_conns;
        bus_follower *followers;
        size_t n_followers;

        /* The system bus, when vigil.conf names one. */
        bus_conn *system;
        bool system_named; /* we own org.vigil1 there */
        sd_event_source *system_retry;
        usec_t system_retry_usec;
        unsigned system_connects; /* how often we got the name, for logs and tests */
};

#define LIST_REMOVE(head, item)                                                                    \
        do {                                                                                       \
                if ((item)->next)                                                                  \
                        (item)->next->prev = (item)->prev;                                         \
                if ((item)->prev)                                                                  \
                        (item)->prev->next = (item)->next;                                         \
                else                                                                               \
                        (head) = (item)->next;                                                     \
                (item)->prev = (item)->next = NULL;                                                \
        } while (0)

#define LIST_PREPEND(head, item)                                                                   \
        do {                                                                                       \
                (item)->prev = NULL;                                                               \
                (item)->next = (head);                                                             \
                if (head)                                                                          \
                        (head)->prev = (item);                                                     \
                (head) = (item);                                                                   \
        } while (0)

/* ---- strings ---------------------------------------------------------------------------- */

/* The length of the valid UTF-8 character at p, 0 when invalid. The rules are sd-bus's
 * (no surrogates, non-characters or overlong forms), so whatever passes here it accepts. */
static size_t utf8_char_len(const unsigned char *p) {
        static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
        uint32_t c;
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2;
                c = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3;
                c = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4;
                c = p[0] & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) ||
            (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe)
                return 0;
        return n;
}

/* D-Bus strings must be valid UTF-8, but descriptions, STATUS= and log lines come from
 * services and need not be: s itself when valid, else a copy in *buf with each bad byte
 * replaced by '?' (NULL when out of memory). NULL reads as "". */
static const char *bus_string(const char *s, char **buf) {
        const unsigned char *p;
        size_t l;
        char *c;

        if (!s)
                return "";
        for (p = (const unsigned char *) s; *p; p += l)
                if ((l = utf8_char_len(p)) == 0)
                        break;
        if (!*p)
                return s;

        c = strdup(s);
        if (!c)
                return NULL;
        for (unsigned char *q = (unsigned char *) c; *q; q += l)
                if ((l = utf8_char_len(q)) == 0) {
                        *q = '?';
                        l = 1;
                }
        return *buf = c;
}

static int append_string(sd_bus_message *reply, const char *s) {
        _cleanup_free_ char *buf = NULL;
        const char *v = bus_string(s, &buf);

        if (!v)
                return -ENOMEM;
        return sd_bus_message_append_basic(reply, 's', v);
}

/* ---- lookups and authorization ---------------------------------------------------------- */

static bool name_is_printable(const char *name) {
        size_t n = 0;

        for (; name[n]; n++)
                if (n >= 64 || name[n] <= ' ' || name[n] >= 0x7f)
                        return false;
        return true;
}

/* Every name from the bus is checked before use: bounded, and a unit name. */
static int check_name(const char *name, sd_bus_error *error) {
        if (strnlen(name, UNIT_NAME_MAX + 1) > UNIT_NAME_MAX ||
            !unit_name_is_valid(name, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE)) {
                if (name_is_printable(name))
                        return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                                 "invalid service name \"%s\"", name);
                return sd_bus_error_set(error, ERROR_INVALID_ARGUMENT, "invalid service name");
        }
        return 0;
}

static int find_service(manager *m, const char *name, service **ret, sd_bus_error *error) {
        service *s = NULL;
        int r;

        r = check_name(name, error);
        if (r < 0)
                return r;
        s = manager_find_service(m, name);
        if (!s)
                return sd_bus_error_setf(error, ERROR_NO_SUCH_SERVICE, "no service named %s", name);
        *ret = s;
        return 0;
}

static char *service_path(const service *s) {
        char *p = NULL;

        if (sd_bus_path_encode(SERVICE_PREFIX, service_name(s), &p) < 0)
                return NULL;
        return p;
}

/* Who sent a message, for the decision and the audit log. */
typedef struct caller_info {
        access_caller creds;
        pid_t pid;
        bool known; /* false: every mutating call is denied */
        sd_bus_creds *bus_creds;
        gid_t *groups;
} caller_info;

static void caller_info_done(caller_info *ci) {
        ci->bus_creds = sd_bus_creds_unref(ci->bus_creds);
        ci->groups = mfree(ci->groups);
}

/* The sender's supplementary groups as the bus daemon reports them (UnixGroupIDs of
 * GetConnectionCredentials; libsystemd 252 does not pass them on). -ENODATA when the daemon
 * does not say. */
static int bus_sender_groups(sd_bus_message *msg, gid_t **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ gid_t *l = NULL;
        const char *sender = sd_bus_message_get_sender(msg), *key;
        size_t n = 0;
        int r;

        if (!sender)
                return -ENXIO;
        r = sd_bus_call_method(sd_bus_message_get_bus(msg), "org.freedesktop.DBus",
                               "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionCredentials", &e, &reply, "s", sender);
        sd_bus_error_free(&e);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (!streq(key, "UnixGroupIDs")) {
                        r = sd_bus_message_skip(reply, "v");
                } else {
                        uint32_t g;

                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_enter_container(reply, 'a', "u");
                        while (r >= 0 && (r = sd_bus_message_read_basic(reply, 'u', &g)) > 0) {
                                gid_t *p;

                                if (n >= BUS_GROUPS_MAX)
                                        return -E2BIG;
                                p = reallocarray(l, n + 1, sizeof(gid_t));
                                if (!p)
                                        return -ENOMEM;
                                l = p;
                                l[n++] = g;
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0 && !l && !(l = malloc(sizeof(gid_t))))
                                r = -ENOMEM;
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return r;
        if (!l)
                return -ENODATA;
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* On the private socket: the kernel's record of the peer. On the system bus: what the bus
 * daemon reports for the sender's unique name (never /proc: no SD_BUS_CREDS_AUGMENT). A
 * sender that already left has no credentials, so its call is denied. No pid is asked for:
 * sd-bus refuses the whole answer when the daemon reports pid 0 (a caller in another PID
 * namespace). */
static void caller_get(sd_bus_message *msg, bus_conn *c, caller_info *ret) {
        uid_t uid;
        gid_t gid;
        int r;

        *ret = (caller_info){ .creds = { .uid = UID_INVALID, .gid = GID_INVALID } };
        if (!c->system) {
                if (c->caller.uid == UID_INVALID)
                        return;
                ret->creds = c->caller;
                ret->pid = c->pid;
                ret->known = true;
                return;
        }
        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID, &ret->bus_creds);
        if (r < 0) {
                log_debug("No credentials for D-Bus caller %s: %s",
                          sd_bus_message_get_sender(msg) ?: "?", strerror(-r));
                return;
        }
        /* dbus-daemon reports the uid the kernel recorded at connect() (the effective one),
         * and sd-bus files it as EUID. */
        r = sd_bus_creds_get_euid(ret->bus_creds, &uid);
        if (r < 0 || uid == UID_INVALID)
                return;
        ret->creds.uid = uid;
        /* dbus-daemon reports no gid. */
        if (sd_bus_creds_get_egid(ret->bus_creds, &gid) >= 0)
                ret->creds.gid = gid;
        r = bus_sender_groups(msg, &ret->groups, &ret->creds.n_groups);
        if (r >= 0) {
                ret->creds.groups = ret->groups;
                ret->creds.groups_known = true;
        } else
                log_debug_errno(r, "No groups for D-Bus caller %s: %m",
                                sd_bus_message_get_sender(msg) ?: "?");
        ret->known = true;
}

/* One mutating call: authorized before anything changes, audited when it ends. */
typedef struct bus_call {
        bus_conn *conn;
        caller_info who;
        access_verb verb;
        const char *target; /* NULL: the machine */
} bus_call;

static void bus_call_done(bus_call *k) {
        caller_info_done(&k->who);
}

static void bus_call_audit(bus_call *k, const char *result) {
        audit_log(k->conn->server->manager->settings.log_dir, k->who.known ? &k->who.creds : NULL,
                  k->who.pid, k->conn->system ? "system-bus" : "private",
                  access_verb_to_string(k->verb), k->target, result);
}

static int bus_call_begin(bus_call *k, sd_bus_message *msg, bus_conn *c, access_verb verb,
                          const char *target, sd_bus_error *error) {
        manager *m = c->server->manager;

        *k = (bus_call){ .conn = c, .verb = verb, .target = target };
        caller_get(msg, c, &k->who);
        if (k->who.known && access_allowed(&m->conf, &k->who.creds, verb, target))
                return 0;
        bus_call_audit(k, "denied");
        if (!k->who.known)
                return sd_bus_error_set(error, ERROR_ACCESS_DENIED,
                                        "access denied: the caller's credentials are unknown");
        if (verb < _VERB_SERVICE_MAX && target)
                return sd_bus_error_setf(error, ERROR_ACCESS_DENIED,
                                         "access denied: uid %u may not %s %s",
                                         (unsigned) k->who.creds.uid, access_verb_to_string(verb),
                                         name_is_printable(target) ? target : "this service");
        return sd_bus_error_setf(error, ERROR_ACCESS_DENIED, "access denied: uid %u may not %s",
                                 (unsigned) k->who.creds.uid, access_verb_to_string(verb));
}

/* Audits how the call ended (r < 0 with error set, or success) and passes r on. */
static int bus_call_end(bus_call *k, int r, const sd_bus_error *error) {
        _cleanup_free_ char *what = NULL;

        if (r >= 0) {
                bus_call_audit(k, "ok");
                return r;
        }
        if (asprintf_safe(&what, "error: %s",
                          sd_bus_error_is_set(error) && error->message ? error->message
                                                                       : strerror(-r)) < 0)
                bus_call_audit(k, "error");
        else
                bus_call_audit(k, what);
        return r;
}

/* ---- log followers ---------------------------------------------------------------------- */

static bus_follower *follower_free(bus_follower *f) {
        if (!f)
                return NULL;
        if (f->subscribed && f->service->log)
                log_stream_unsubscribe(f->service->log, f->subscription);
        sd_event_source_disable_unref(f->hangup_source);
        if (f->fd >= 0)
                close(f->fd);
        if (f->server) {
                LIST_REMOVE(f->server->followers, f);
                f->server->n_followers--;
        }
        return mfree(f);
}

static void follower_freep(bus_follower **f) {
        follower_free(*f);
}

/* Runs inside the log stream's delivery, so it must not unsubscribe here: on failure it
 * shuts the socket down, which raises EPOLLHUP on our end, and on_follower_hangup frees it
 * from the event loop. */
static void on_follower_line(const char *line, size_t len, void *userdata) {
        bus_follower *f = userdata;
        /* The line is already timestamped like log_stream_tail()'s. */
        struct iovec iov[2] = {
                { .iov_base = (void *) line, .iov_len = len },
                { .iov_base = (void *) "\n", .iov_len = 1 },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = ELEMENTSOF(iov) };
        ssize_t k;

        if (f->fd < 0 || !f->subscribed)
                return;
        /* MSG_NOSIGNAL: a reader that went away must not raise SIGPIPE in PID 1. */
        k = sendmsg(f->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k >= 0 && (size_t) k == len + 1)
                return;
        /* Gone (EPIPE), or so far behind that the line would tear (EAGAIN, short write):
         * end the stream rather than block PID 1 or lose lines silently. */
        log_debug("Log follower of %s dropped: %s", service_name(f->service),
                  k < 0 ? strerror(errno) : "reader too slow");
        (void) shutdown(f->fd, SHUT_RDWR);
}

static int on_follower_hangup(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        follower_free(userdata);
        return 0;
}

static int follower_new(bus_server *b, service *s, int *ret_fd, sd_bus_error *error) {
        _cleanup_(follower_freep) bus_follower *f = NULL;
        _cleanup_close_ int peer = -1;
        int fds[2], size = FOLLOW_SNDBUF_BYTES;
        int r;

        if (b->n_followers >= BUS_FOLLOWERS_MAX)
                return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                        "too many log followers");
        if (!s->log)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "%s has no log to follow", service_name(s));

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->fd = -1;
        f->service = s;
        f->server = b;
        LIST_PREPEND(b->followers, f);
        b->n_followers++;

        /* A socket rather than a pipe: send(MSG_NOSIGNAL) and EPOLLHUP when the reader
         * closes, even when no line is ever written. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return -errno;
        f->fd = fds[0];
        peer = fds[1];
        if (fcntl(f->fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        (void) setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void) shutdown(peer, SHUT_WR); /* the reader has nothing to say */

        r = sd_event_add_io(b->manager->event, &f->hangup_source, f->fd, EPOLLHUP,
                            on_follower_hangup, f);
        if (r < 0)
                return r;
        r = log_stream_subscribe(s->log, on_follower_line, f, &f->subscription);
        if (r < 0)
                return r;
        f->subscribed = true;

        *ret_fd = TAKE_FD(peer);
        TAKE_PTR(f);
        return 0;
}

/* ---- org.vigil1.Manager: reading ------------------------------------------------------- */

/* ListServices() → a(sssssuu): name, description, active state (active, activating,
 * deactivating, inactive, failed), sub state (service_state_to_string), result, main pid
 * (0 when none), automatic restarts since boot. Sorted by name. */
static int method_list_services(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bus_conn *c = userdata;
        manager *m = c->server->manager;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssssuu)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_services; i++) {
                const service *s = m->services[i];

                r = sd_bus_message_open_container(reply, 'r', "sssssuu");
                if (r < 0)
                        return r;
                r = append_string(reply, service_name(s));
                if (r < 0)
                        return r;
                r = append_string(reply, s->unit ? s->unit->description : NULL);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(
                        reply, "sssuu", service_active_state(s), service_state_to_string(s->state),
                        service_result_to_string(s->result),
                        (uint32_t) (s->main_pid > 0 ? s->main_pid : 0), (uint32_t) s->restarts);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* GetService(s name) → o */
static int method_get_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        bus_conn *c = userdata;
        const char *name;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return r;
        path = service_path(s);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int append_strv(sd_bus_message *reply, char **l) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH(i, l) {
                r = append_string(reply, *i);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int reply_strv(sd_bus_message *msg, char **l) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = append_strv(reply, l);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* GetLogs(s name, u lines) → as: the last lines (at most 100000), oldest first, each
 * "YYYY-MM-DDTHH:MM:SS.mmmZ text". */
static int method_get_logs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **lines = NULL;
        bus_conn *c = userdata;
        const char *name;
        uint32_t n;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "su", &name, &n);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return r;
        if (s->log && n > 0) {
                r = log_stream_tail(s->log, n < BUS_LOG_LINES_MAX ? n : BUS_LOG_LINES_MAX, &lines);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, r, "cannot read the log of %s: %m",
                                                       service_name(s));
        }
        return reply_strv(msg, lines);
}

/* FollowLogs(s name) → h: a stream socket that receives every later log line as
 * "YYYY-MM-DDTHH:MM:SS.mmmZ text\n" until the caller closes it. vigil closes it when the
 * reader falls too far behind or the service goes away. */
static int method_follow_logs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -1;
        bus_conn *c = userdata;
        const char *name;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return r;
        r = follower_new(c->server, s, &fd, error);
        if (r < 0)
                return r;
        /* The reply holds its own copy of fd; if it cannot be sent, the reader never gets
         * it and the follower ends with the hangup when the connection goes. */
        return sd_bus_reply_method_return(msg, "h", fd);
}

/* GetCrashRecords(s name, u max) → as: the newest crash records (at most 20), newest first,
 * each the text of one record (Service=, Time=, Result=, Exit=, Uptime=, Restarts=, then the
 * last log lines). The service need not exist any more. */
static int method_get_crash_records(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **records = NULL;
        bus_conn *c = userdata;
        const char *name;
        uint32_t n;
        int r;

        r = sd_bus_message_read(msg, "su", &name, &n);
        if (r < 0)
                return r;
        r = check_name(name, error);
        if (r < 0)
                return r;
        if (n > 0) {
                r = crash_records_list(c->server->manager, name,
                                       n < BUS_CRASH_RECORDS_MAX ? n : BUS_CRASH_RECORDS_MAX,
                                       &records);
                if (r < 0)
                        return sd_bus_error_setf(error, ERROR_FAILED,
                                                 "cannot read the crash records of %s: %s", name,
                                                 strerror(-r));
        }
        return reply_strv(msg, records);
}

/* ---- org.vigil1.Manager: changing ------------------------------------------------------ */

static int operation_error(service *s, int r, const char *verb, sd_bus_error *error) {
        char why[512] = "it cannot start";

        switch (r) {
        case -ELOOP:
        case -ECANCELED:
                (void) service_start_refused(s, why, sizeof(why));
                return sd_bus_error_setf(error, ERROR_START_REFUSED, "cannot %s %s: %s", verb,
                                         service_name(s), why);
        case -EBUSY:
        case -ESRCH:
                return sd_bus_error_setf(error, ERROR_NOT_RUNNING,
                                         "cannot %s %s: it is not running", verb, service_name(s));
        case -EOPNOTSUPP:
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "cannot %s %s: it has no ExecReload=", verb,
                                         service_name(s));
        default:
                return sd_bus_error_setf(error, ERROR_FAILED, "failed to %s %s: %s", verb,
                                         service_name(s), strerror(-r));
        }
}

static int service_operation(sd_bus_message *msg, bus_conn *c, sd_bus_error *error,
                             int (*op)(service *s), access_verb verb) {
        _cleanup_(bus_call_done) bus_call k = {};
        const char *name;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, verb, name, error);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r >= 0) {
                r = op(s);
                if (r < 0)
                        r = operation_error(s, r, access_verb_to_string(verb), error);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        return bus_call_end(&k, r, error);
}

/* StartService(s name), StopService(s name), RestartService(s name), ReloadService(s name)
 * → (): they change the service's target and return at once; watch State/SubState (or the
 * ServiceStateChanged signal) for the outcome. A start of a stopped service that can never
 * succeed (service_start_refused()) is answered with StartRefused and the reason. */
static int method_start_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_start, VERB_START);
}

static int method_stop_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_stop, VERB_STOP);
}

static int method_restart_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_restart, VERB_RESTART);
}

static int method_reload_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_reload, VERB_RELOAD);
}

/* KillService(s name, i signal) → (): sends the signal to every process of the service. */
static int method_kill_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        bus_conn *c = userdata;
        const char *name;
        int32_t sig;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "si", &name, &sig);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_KILL, name, error);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r >= 0 && (sig < 1 || sig > 64))
                r = sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                      "signal %" PRIi32 " is not between 1 and 64", sig);
        if (r >= 0) {
                r = service_kill(s, sig);
                if (r == -ESRCH)
                        r = sd_bus_error_setf(error, ERROR_NOT_RUNNING, "%s is not running",
                                              service_name(s));
                else if (r < 0)
                        r = operation_error(s, r, "kill", error);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        return bus_call_end(&k, r, error);
}

/* ResetFailed(s name) → (): a failed service becomes inactive with result success and a
 * fresh start limit; "" resets every failed service. */
static int method_reset_failed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        bus_conn *c = userdata;
        manager *m = c->server->manager;
        const char *name;
        service *s = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_RESET_FAILED, isempty(name) ? NULL : name, error);
        if (r < 0)
                return r;
        if (isempty(name))
                for (size_t i = 0; i < m->n_services; i++)
                        service_reset_failed(m->services[i]);
        else {
                r = find_service(m, name, &s, error);
                if (r >= 0)
                        service_reset_failed(s);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        return bus_call_end(&k, r, error);
}

/* SetProperties(s name, b runtime, a(sv) properties) → (): live changes of the restart
 * settings (Restart=, RestartSec=, RestartSteps=, RestartMaxDelaySec=, StartLimitBurst=,
 * StartLimitIntervalSec=...). Values are strings in unit-file syntax, or numbers (t: µs
 * for *Sec keys). All or nothing; kept across reboots unless runtime. */
static int method_set_properties(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        _cleanup_strv_free_ char **assignments = NULL;
        _cleanup_free_ char *why = NULL;
        bus_conn *c = userdata;
        const char *name;
        int runtime;
        service *s = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(msg, "sb", &name, &runtime);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_SET_PROPERTY, name, error);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return bus_call_end(&k, r, error);

        r = sd_bus_message_enter_container(msg, 'a', "(sv)");
        while (r >= 0 && (r = sd_bus_message_enter_container(msg, 'r', "sv")) > 0) {
                _cleanup_free_ char *a = NULL;
                const char *key, *contents, *str;
                char type;
                uint64_t u64;
                uint32_t u32;
                int b;

                if (++n > BUS_PROPERTIES_MAX) {
                        r = sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                              "more than %d properties in one call",
                                              BUS_PROPERTIES_MAX);
                        break;
                }
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        break;
                if (strlen(key) > 64 || !name_is_printable(key) || strchr(key, '=')) {
                        r = sd_bus_error_set(error, ERROR_INVALID_ARGUMENT,
                                             "invalid property name");
                        break;
                }
                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r < 0)
                        break;
                r = sd_bus_message_enter_container(msg, 'v', contents);
                if (r < 0)
                        break;
                if (streq(contents, "s")) {
                        r = sd_bus_message_read_basic(msg, 's', &str);
                        if (r >= 0 && strlen(str) > 1024)
                                r = sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                                      "the value of %s is too long", key);
                        if (r >= 0 && asprintf_safe(&a, "%s=%s", key, str) < 0)
                                r = -ENOMEM;
                } else if (streq(contents, "t")) {
                        r = sd_bus_message_read_basic(msg, 't', &u64);
                        if (r >= 0 && asprintf_safe(&a, "%s=%" PRIu64 "%s", key, u64,
                                                    endswith(key, "Sec") ? "us" : "") < 0)
                                r = -ENOMEM;
                } else if (streq(contents, "u")) {
                        r = sd_bus_message_read_basic(msg, 'u', &u32);
                        if (r >= 0 && asprintf_safe(&a, "%s=%" PRIu32 "%s", key, u32,
                                                    endswith(key, "Sec") ? "us" : "") < 0)
                                r = -ENOMEM;
                } else if (streq(contents, "b")) {
                        r = sd_bus_message_read_basic(msg, 'b', &b);
                        if (r >= 0 && asprintf_safe(&a, "%s=%s", key, b ? "yes" : "no") < 0)
                                r = -ENOMEM;
                } else
                        r = sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                              "%s: values are strings, numbers (t, u) or "
                                              "booleans, not \"%s\"",
                                              key, name_is_printable(contents) ? contents : "?");
                if (r < 0)
                        break;
                r = strv_push(&assignments, a);
                if (r < 0)
                        break;
                TAKE_PTR(a);
                r = sd_bus_message_exit_container(msg);
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r >= 0 && !assignments)
                r = sd_bus_error_set(error, ERROR_INVALID_ARGUMENT, "no properties given");
        if (r >= 0) {
                r = manager_set_properties(c->server->manager, s, assignments, runtime, &why);
                if (r < 0)
                        r = sd_bus_error_setf(error,
                                              r == -EINVAL ? ERROR_INVALID_ARGUMENT : ERROR_FAILED,
                                              "%s: %s", service_name(s), why ?: strerror(-r));
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        else if (!sd_bus_error_is_set(error))
                r = sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT, "malformed properties: %s",
                                      strerror(-r));
        return bus_call_end(&k, r, error);
}

/* ReloadUnits() → as: re-reads the unit and policy files (and vigil.conf's [Access]); only
 * services whose files changed restart. A file with an error changes nothing: the reply
 * is BadUnitFile with every problem as FILE:LINE: MESSAGE. The result lists the changes. */
static int method_reload_units(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        _cleanup_strv_free_ char **changes = NULL;
        _cleanup_free_ char *why = NULL;
        bus_conn *c = userdata;
        int r;

        r = bus_call_begin(&k, msg, c, VERB_RELOAD_UNITS, NULL, error);
        if (r < 0)
                return r;
        r = manager_reload_units(c->server->manager, &changes, &why);
        if (r < 0)
                r = sd_bus_error_setf(error, r == -EBADMSG ? ERROR_BAD_UNIT : ERROR_FAILED,
                                      "units not reloaded, nothing changed: %s",
                                      why ?: strerror(-r));
        if (r >= 0)
                r = reply_strv(msg, changes);
        return bus_call_end(&k, r, error);
}

/* Reboot() and PowerOff() → (): stop every service in order, then reboot or power off
 * (in --sandbox: exit as for SIGTERM). The reply comes first. */
static int shutdown_method(sd_bus_message *msg, bus_conn *c, access_verb verb, manager_exit how,
                           sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        manager *m = c->server->manager;
        int r;

        r = bus_call_begin(&k, msg, c, verb, NULL, error);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(msg, NULL);
        if (r >= 0) {
                log_notice("%s requested over D-Bus by uid %u.",
                           verb == VERB_REBOOT ? "Reboot" : "Power-off",
                           (unsigned) k.who.creds.uid);
                (void) sd_bus_flush(c->bus);
                manager_begin_shutdown(m, m->settings.sandbox ? MANAGER_EXIT : how);
        }
        return bus_call_end(&k, r, error);
}

static int method_reboot(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return shutdown_method(msg, userdata, VERB_REBOOT, MANAGER_REBOOT, error);
}

static int method_poweroff(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return shutdown_method(msg, userdata, VERB_POWEROFF, MANAGER_POWEROFF, error);
}

/* ---- org.vigil1.Manager: image updates ------------------------------------------------- */

/* A message naming what the caller sent, when that is short and printable. */
static int invalid_name(sd_bus_error *error, const char *what, const char *name) {
        if (name_is_printable(name))
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT, "invalid %s \"%s\"", what,
                                         name);
        return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT, "invalid %s", what);
}

static const char *file_kind(mode_t mode) {
        return S_ISDIR(mode)    ? "a directory"
               : S_ISFIFO(mode) ? "a pipe"
               : S_ISSOCK(mode) ? "a socket"
               : S_ISCHR(mode)  ? "a character device"
               : S_ISBLK(mode)  ? "a block device"
                                : "not a regular file";
}

/* File systems whose "regular" files may block a read or never end (/proc/kmsg, a FUSE
 * daemon that does not answer). */
static const char *pseudo_fs_name(long type) {
        switch (type) {
        case PROC_SUPER_MAGIC:
                return "procfs";
        case SYSFS_MAGIC:
                return "sysfs";
        case DEBUGFS_MAGIC:
                return "debugfs";
        case TRACEFS_MAGIC:
                return "tracefs";
        case SECURITYFS_MAGIC:
                return "securityfs";
        case FUSE_SUPER_MAGIC:
                return "a FUSE file system";
        default:
                return NULL;
        }
}

/* One file of a bundle from the caller: a regular file open for reading. update_stage()
 * reads it to its end inside PID 1's loop, so a pipe or socket whose writer never closes
 * would stall PID 1, and a device or a pseudo file might never end: those are refused. */
static int check_bundle_fd(int fd, const char *what, sd_bus_error *error) {
        struct statfs sfs;
        struct stat st;
        const char *fs;
        int flags;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT, "the %s fd is unusable: %s",
                                         what, strerror(errno));
        if ((flags & O_PATH) || (flags & O_ACCMODE) == O_WRONLY)
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                         "the %s fd is not open for reading", what);
        if (!S_ISREG(st.st_mode))
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                         "the %s fd is %s; bundle files are passed as regular "
                                         "files",
                                         what, file_kind(st.st_mode));
        fs = pseudo_fs_name((long) sfs.f_type);
        if (fs)
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                         "the %s fd is a file on %s, which may never end", what,
                                         fs);
        return 0;
}

/* Sets error from an update_*() failure: a message update.c gave (made valid UTF-8), else
 * fallback with strerror(). */
static int update_error(sd_bus_error *error, const char *name, int r, const char *why,
                        const char *what, const char *target) {
        _cleanup_free_ char *buf = NULL;
        const char *w = why ? bus_string(why, &buf) : NULL;

        if (why && !w)
                return -ENOMEM;
        if (w)
                return sd_bus_error_setf(error, name, "%s %s: %s", what, target, w);
        return sd_bus_error_setf(error, name, "%s %s: %s", what, target, strerror(-r));
}

/* StageUpdate(s stem, h payload, h manifest, h signature) → (): copies the three files of
 * bundle STEM (STEM.squashfs, STEM.manifest, STEM.manifest.minisig), each a regular file
 * read from its current offset, into incoming/. Nothing is verified until ApplyUpdates. */
static int method_stage_update(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        _cleanup_free_ char *why = NULL;
        bus_conn *c = userdata;
        const char *stem;
        int payload, manifest, signature;
        int r;

        r = sd_bus_message_read(msg, "shhh", &stem, &payload, &manifest, &signature);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_UPDATE, stem, error);
        if (r < 0)
                return r;
        if (!bundle_stem_is_valid(stem))
                r = invalid_name(error, "bundle name (NAME-VERSION)", stem);
        if (r >= 0)
                r = check_bundle_fd(payload, "payload", error);
        if (r >= 0)
                r = check_bundle_fd(manifest, "manifest", error);
        if (r >= 0)
                r = check_bundle_fd(signature, "signature", error);
        if (r >= 0) {
                r = update_stage(c->server->manager, stem, payload, manifest, signature, &why);
                if (r < 0)
                        r = update_error(error,
                                         r == -EINVAL || r == -EFBIG ? ERROR_INVALID_ARGUMENT
                                         : r == -EOPNOTSUPP          ? ERROR_NOT_SUPPORTED
                                                                     : ERROR_FAILED,
                                         r, why, "cannot stage", stem);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        return bus_call_end(&k, r, error);
}

/* ApplyUpdates(b force) → a(sssss): installs every staged bundle (force: also the same or an
 * older version); one row per bundle: stem, image, version, outcome (installed, rejected,
 * deferred), reason ("" when installed). */
static int method_apply_updates(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ update_result *results = NULL;
        bus_conn *c = userdata;
        int force, n;
        int r;

        r = sd_bus_message_read(msg, "b", &force);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_UPDATE, NULL, error);
        if (r < 0)
                return r;
        n = update_apply(c->server->manager, force, &results);
        if (n < 0)
                return bus_call_end(&k,
                                    sd_bus_error_setf(error, ERROR_FAILED,
                                                      "cannot apply the staged updates: %s",
                                                      strerror(-n)),
                                    error);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssss)");
        for (int i = 0; r >= 0 && i < n; i++) {
                const update_result *u = &results[i];

                r = sd_bus_message_open_container(reply, 'r', "sssss");
                if (r >= 0)
                        r = append_string(reply, u->stem);
                if (r >= 0)
                        r = append_string(reply, u->image);
                if (r >= 0)
                        r = append_string(reply, u->version);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", update_outcome_to_string(u->outcome));
                if (r >= 0)
                        r = append_string(reply, u->reason);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return bus_call_end(&k, r, error);
}

/* RollbackImage(s image) → (): back to the image's previous version, trial or not; the
 * current one's digest is rejected from then on. NoSuchImage, NoPreviousVersion. */
static int method_rollback_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_call_done) bus_call k = {};
        _cleanup_free_ char *why = NULL;
        bus_conn *c = userdata;
        const char *image;
        int r;

        r = sd_bus_message_read(msg, "s", &image);
        if (r < 0)
                return r;
        r = bus_call_begin(&k, msg, c, VERB_UPDATE, image, error);
        if (r < 0)
                return r;
        if (strnlen(image, UPDATE_NAME_MAX + 1) > UPDATE_NAME_MAX || !image_name_is_valid(image))
                r = invalid_name(error, "image name", image);
        if (r >= 0) {
                r = update_rollback(c->server->manager, image, &why);
                if (r == -ENOENT && !why)
                        r = sd_bus_error_setf(error, ERROR_NO_SUCH_IMAGE, "no image named %s",
                                              image);
                else if (r < 0)
                        r = update_error(error,
                                         r == -ENOENT   ? ERROR_NO_SUCH_IMAGE
                                         : r == -ESRCH  ? ERROR_NO_PREVIOUS_VERSION
                                         : r == -EINVAL ? ERROR_INVALID_ARGUMENT
                                                        : ERROR_FAILED,
                                         r, why, "cannot roll back", image);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, NULL);
        return bus_call_end(&k, r, error);
}

static int append_image_record(sd_bus_message *reply, const image_record *rec) {
        int r;

        r = sd_bus_message_open_container(reply, 'r', "ssssbusa(sss)");
        if (r >= 0)
                r = append_string(reply, rec->name);
        if (r >= 0)
                r = append_string(reply, rec->current);
        if (r >= 0)
                r = append_string(reply, rec->sha256);
        if (r >= 0)
                r = append_string(reply, rec->previous);
        if (r >= 0)
                r = sd_bus_message_append(reply, "bu", (int) rec->trial,
                                          (uint32_t) rec->trial_boots);
        if (r >= 0)
                r = append_string(reply, rec->trial_status);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < rec->n_rejected; i++) {
                const update_rejection *j = &rec->rejected[i];

                r = sd_bus_message_open_container(reply, 'r', "sss");
                if (r >= 0)
                        r = append_string(reply, j->version);
                if (r >= 0)
                        r = append_string(reply, j->digest);
                if (r >= 0)
                        r = append_string(reply, j->reason);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* GetUpdateStatus() → (a(ssssbusa(sss)) images, as staged): per image its name, current
 * version and its SHA-256, previous version, whether current is on trial, the boots begun on
 * trial, what the trial waits for, and the rejected bundles (version, digest, reason); then
 * the staged bundle stems. */
static int method_get_update_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **staged = NULL;
        bus_conn *c = userdata;
        manager *m = c->server->manager;
        image_record *const *records;
        size_t n = 0;
        int r;

        /* The records are valid until the next update_*() call: list incoming/ first. */
        staged = update_staged(m);
        if (!staged)
                return sd_bus_error_set(error, ERROR_FAILED,
                                        "cannot list the staged bundles in incoming/");
        records = update_records(m, &n);

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssbusa(sss))");
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (records[i])
                        r = append_image_record(reply, records[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = append_strv(reply, staged);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- org.vigil1.Manager: properties ---------------------------------------------------- */

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", VIGIL_VERSION);
}

static uint32_t clamp_u32(size_t n) {
        return (uint32_t) (n > UINT32_MAX ? UINT32_MAX : n);
}

/* NServices, NActive (active or reloading), NFailed. */
static int property_get_count(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        bus_conn *c = userdata;
        const manager *m = c->server->manager;
        size_t n = 0;

        if (streq(property, "NServices"))
                n = m->n_services;
        else
                for (size_t i = 0; i < m->n_services; i++) {
                        const char *a = service_active_state(m->services[i]);

                        if (streq(property, "NFailed")
                                    ? streq(a, "failed")
                                    : streq(a, "active") || streq(a, "reloading"))
                                n++;
                }
        return sd_bus_message_append(reply, "u", clamp_u32(n));
}

static int property_get_sandbox(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        bus_conn *c = userdata;

        return sd_bus_message_append(reply, "b", (int) c->server->manager->settings.sandbox);
}

/* The boot timeline, CLOCK_MONOTONIC µs; 0 until reached. ExecTimestamp: the same moment as
 * CLOCK_REALTIME µs. */
static int property_get_timestamp(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        bus_conn *c = userdata;
        const manager *m = c->server->manager;
        usec_t t;

        if (streq(property, "ExecTimestamp")) {
                usec_t mono = now_usec(CLOCK_MONOTONIC), real = now_usec(CLOCK_REALTIME);

                t = real > mono - m->ts_exec ? real - (mono - m->ts_exec) : 0;
        } else
                t = streq(property, "ExecTimestampMonotonic")        ? m->ts_exec
                    : streq(property, "UnitsLoadTimestampMonotonic") ? m->ts_units_loaded
                                                                     : m->ts_all_started;
        return sd_bus_message_append(reply, "t", (uint64_t) t);
}

/* Every method is marked unprivileged for sd-bus: authorization happens here, explicitly,
 * in bus_call_begin(). */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Sandbox", "b", property_get_sandbox, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NServices", "u", property_get_count, 0, 0),
        SD_BUS_PROPERTY("NActive", "u", property_get_count, 0, 0),
        SD_BUS_PROPERTY("NFailed", "u", property_get_count, 0, 0),
        SD_BUS_PROPERTY("ExecTimestamp", "t", property_get_timestamp, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ExecTimestampMonotonic", "t", property_get_timestamp, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UnitsLoadTimestampMonotonic", "t", property_get_timestamp, 0, 0),
        SD_BUS_PROPERTY("FinishTimestampMonotonic", "t", property_get_timestamp, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("ListServices", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssssuu)", services), method_list_services,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetService", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", path),
                                method_get_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartService", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_start_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StopService", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_stop_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RestartService", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_restart_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReloadService", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_reload_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("KillService", SD_BUS_ARGS("s", name, "i", signal),
                                SD_BUS_NO_RESULT, method_kill_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ResetFailed", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_reset_failed, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "SetProperties", SD_BUS_ARGS("s", name, "b", runtime, "a(sv)", properties),
                SD_BUS_NO_RESULT, method_set_properties, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReloadUnits", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", changes),
                                method_reload_units, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLogs", SD_BUS_ARGS("s", name, "u", lines),
                                SD_BUS_RESULT("as", lines), method_get_logs,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FollowLogs", SD_BUS_ARGS("s", name), SD_BUS_RESULT("h", fd),
                                method_follow_logs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCrashRecords", SD_BUS_ARGS("s", name, "u", max),
                                SD_BUS_RESULT("as", records), method_get_crash_records,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reboot", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reboot,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PowerOff", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_poweroff,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StageUpdate",
                                SD_BUS_ARGS("s", stem, "h", payload, "h", manifest, "h", signature),
                                SD_BUS_NO_RESULT, method_stage_update, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ApplyUpdates", SD_BUS_ARGS("b", force),
                                SD_BUS_RESULT("a(sssss)", results), method_apply_updates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RollbackImage", SD_BUS_ARGS("s", image), SD_BUS_NO_RESULT,
                                method_rollback_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetUpdateStatus", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssssbusa(sss))", images, "as", staged),
                                method_get_update_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("ServiceStateChanged",
                                SD_BUS_ARGS("s", name, "s", state, "s", sub_state, "s", result), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ServiceCrashed",
                                SD_BUS_ARGS("s", name, "s", result, "i", exit_code, "i",
                                            exit_signal, "u", restarts),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("ImageUpdate",
                                SD_BUS_ARGS("s", kind, "s", image, "s", version, "s", detail), 0),
        SD_BUS_VTABLE_END,
};

/* ---- org.vigil1.Service ----------------------------------------------------------------- */

/* Name s, Description s, State s (active state), SubState s, Result s, MainPID u,
 * Restarts u, ActiveSince t (CLOCK_REALTIME µs, 0 when not running), StatusText s,
 * LastExitCode i (exit status of the last main process, -1 when it died of a signal or never
 * ended), LastExitSignal i (0 unless it died of one), UnitPath s, Image s. */
static int property_get_service(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        const service *s = userdata;

        if (streq(property, "Name"))
                return append_string(reply, service_name(s));
        if (streq(property, "Description"))
                return append_string(reply, s->unit ? s->unit->description : NULL);
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", service_active_state(s));
        if (streq(property, "SubState"))
                return sd_bus_message_append(reply, "s", service_state_to_string(s->state));
        if (streq(property, "Result"))
                return sd_bus_message_append(reply, "s", service_result_to_string(s->result));
        if (streq(property, "MainPID"))
                return sd_bus_message_append(reply, "u",
                                             (uint32_t) (s->main_pid > 0 ? s->main_pid : 0));
        if (streq(property, "Restarts"))
                return sd_bus_message_append(reply, "u", (uint32_t) s->restarts);
        if (streq(property, "ActiveSince"))
                return sd_bus_message_append(
                        reply, "t",
                        (uint64_t) (s->active_since > 0 ? s->active_since_realtime : 0));
        if (streq(property, "StatusText"))
                return append_string(reply, s->extra->status_text);
        if (streq(property, "LastExitCode"))
                return sd_bus_message_append(
                        reply, "i", (int32_t) (s->exit_code == CLD_EXITED ? s->exit_status : -1));
        if (streq(property, "LastExitSignal"))
                return sd_bus_message_append(
                        reply, "i",
                        (int32_t) (s->exit_code == CLD_KILLED || s->exit_code == CLD_DUMPED
                                           ? s->exit_status
                                           : 0));
        if (streq(property, "UnitPath"))
                return append_string(reply, s->unit ? unit_path(s->unit) : NULL);
        if (streq(property, "Image"))
                return append_string(reply, s->unit ? s->unit->container->image : NULL);
        if (streq(property, "ImageVersion"))
                return append_string(reply, s->extra->image_version);
        return -EINVAL;
}

/* Warnings as: the settings this machine cannot enforce (resource_warnings()). */
static int property_get_warnings(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        const service *s = userdata;
        int r;

        if (s->unit) {
                r = resource_warnings(s->unit, &l);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH(w, l) {
                r = append_string(reply, *w);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* The settings an admin asks about, resolved, each with where it came from. */
typedef enum setting_kind {
        SETTING_STRING,
        SETTING_SEC,      /* usec_t, USEC_INFINITY: "infinity" */
        SETTING_UNSIGNED, /* unsigned */
        SETTING_TYPE,
        SETTING_RESTART,
        SETTING_KILL_MODE,
        SETTING_SIGNAL,
        SETTING_EXEC, /* the first command of an exec_list */
} setting_kind;

/* A setting in a block the unit points to (unit->backoff...): offset is in the block. */
#define IN_BLOCK(pointer) .block = 1 + offsetof(unit, pointer)

static const struct setting {
        const char *section, *alt_section, *key;
        setting_kind kind;
        size_t offset;
        size_t block; /* 1 + the offset of the unit's pointer to the block; 0: in struct unit */
} settings[] = {
        { "Service", NULL, "Type", SETTING_TYPE, offsetof(unit, type) },
        { "Service", NULL, "ExecStart", SETTING_EXEC, offsetof(unit, exec_start) },
        { "Service", NULL, "Restart", SETTING_RESTART, offsetof(unit, restart) },
        { "Service", NULL, "RestartSec", SETTING_SEC, offsetof(unit, restart_sec) },
        { "Service", NULL, "RestartSteps", SETTING_UNSIGNED, offsetof(unit_backoff, restart_steps),
          IN_BLOCK(backoff) },
        { "Service", NULL, "RestartMaxDelaySec", SETTING_SEC,
          offsetof(unit_backoff, restart_max_delay), IN_BLOCK(backoff) },
        { "Service", NULL, "RestartBackoffResetSec", SETTING_SEC,
          offsetof(unit_backoff, restart_backoff_reset), IN_BLOCK(backoff) },
        { "Service", NULL, "RestartRandomizedDelaySec", SETTING_SEC,
          offsetof(unit_backoff, restart_randomized_delay), IN_BLOCK(backoff) },
        { "Unit", "Service", "StartLimitIntervalSec", SETTING_SEC,
          offsetof(unit, start_limit_interval) },
        { "Unit", "Service", "StartLimitBurst", SETTING_UNSIGNED,
          offsetof(unit, start_limit_burst) },
        { "Unit", NULL, "StartLimitRetrySec", SETTING_SEC,
          offsetof(unit_backoff, start_limit_retry), IN_BLOCK(backoff) },
        { "Service", NULL, "TimeoutStartSec", SETTING_SEC, offsetof(unit, timeout_start) },
        { "Service", NULL, "TimeoutStopSec", SETTING_SEC, offsetof(unit, timeout_stop) },
        { "Service", NULL, "WatchdogSec", SETTING_SEC, offsetof(unit, watchdog) },
        { "Service", NULL, "KillMode", SETTING_KILL_MODE, offsetof(unit, kill_mode) },
        { "Service", NULL, "KillSignal", SETTING_SIGNAL, offsetof(unit, kill_signal) },
        { "Service", NULL, "User", SETTING_STRING, offsetof(unit, user) },
        { "Service", NULL, "Group", SETTING_STRING, offsetof(unit, group) },
        { "Service", NULL, "WorkingDirectory", SETTING_STRING,
          offsetof(unit_process, working_directory), IN_BLOCK(process) },
        { "Service", NULL, "Policy", SETTING_STRING, offsetof(unit, policy) },
        { "Container", NULL, "Image", SETTING_STRING, offsetof(unit_container, image),
          IN_BLOCK(container) },
};

static void setting_format(const unit *u, const struct setting *st, char *buf, size_t len) {
        const char *base = st->block == 0
                                   ? (const char *) u
                                   : *(const char *const *) ((const char *) u + st->block - 1);
        const void *f = base + st->offset;
        usec_t t;

        switch (st->kind) {
        case SETTING_STRING:
                snprintf(buf, len, "%s", *(char *const *) f ?: "");
                break;
        case SETTING_SEC:
                t = *(const usec_t *) f;
                if (t == USEC_INFINITY)
                        snprintf(buf, len, "infinity");
                else
                        format_timespan(buf, len, t);
                break;
        case SETTING_UNSIGNED:
                snprintf(buf, len, "%u", *(const unsigned *) f);
                break;
        case SETTING_TYPE:
                snprintf(buf, len, "%s", service_type_to_string(*(const service_type *) f));
                break;
        case SETTING_RESTART:
                snprintf(buf, len, "%s", restart_mode_to_string(*(const restart_mode *) f));
                break;
        case SETTING_KILL_MODE:
                snprintf(buf, len, "%s", kill_mode_to_string(*(const kill_mode *) f));
                break;
        case SETTING_SIGNAL:
                snprintf(buf, len, "%s", signal_to_string(*(const int *) f) ?: "?");
                break;
        case SETTING_EXEC: {
                const exec_list *l = f;
                size_t o = 0;

                buf[0] = '\0';
                if (l->n == 0)
                        break;
                for (char **a = l->items[0].argv; a && *a && o < len; a++)
                        o += (size_t) snprintf(buf + o, len - o, "%s%s",
                                               a == l->items[0].argv ? "" : " ", *a);
                if (!l->items[0].argv)
                        snprintf(buf, len, "%s", l->items[0].path);
                break;
        }
        }
}

/* Settings a(sss): Section.Key, the resolved value, and where it came from ("FILE:LINE",
 * what SetProperties set, or "default"). */
static int property_get_settings(sd_bus *bus, const char *path, const char *interface,
                                 const char *property, sd_bus_message *reply, void *userdata,
                                 sd_bus_error *error) {
        const service *s = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        for (size_t i = 0; s->unit && i < ELEMENTSOF(settings); i++) {
                const struct setting *st = &settings[i];
                char value[1024], key[96], where[PATH_MAX + 32];
                const char *override;
                unit_source src;

                setting_format(s->unit, st, value, sizeof(value));
                snprintf(key, sizeof(key), "%s.%s", st->section, st->key);
                override = manager_property_source(s->manager, s, st->key);
                if (override)
                        snprintf(where, sizeof(where), "%s", override);
                else if (unit_directive_source(s->unit, st->section, st->key, &src) ||
                         (st->alt_section &&
                          unit_directive_source(s->unit, st->alt_section, st->key, &src)))
                        snprintf(where, sizeof(where), "%s:%u", src.path, src.line);
                else
                        snprintf(where, sizeof(where), "default");
                r = sd_bus_message_open_container(reply, 'r', "sss");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "s", key);
                if (r >= 0)
                        r = append_string(reply, value);
                if (r >= 0)
                        r = append_string(reply, where);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

#define SERVICE_PROPERTY(name, sig, flags)                                                         \
        SD_BUS_PROPERTY(name, sig, property_get_service, 0, flags)

static const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SERVICE_PROPERTY("Name", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        SERVICE_PROPERTY("Description", "s", 0),
        SERVICE_PROPERTY("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("SubState", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("Result", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("MainPID", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("Restarts", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("ActiveSince", "t", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("StatusText", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("LastExitCode", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("LastExitSignal", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SERVICE_PROPERTY("UnitPath", "s", 0),
        SERVICE_PROPERTY("Image", "s", 0),
        SERVICE_PROPERTY("ImageVersion", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Warnings", "as", property_get_warnings, 0, 0),
        SD_BUS_PROPERTY("Settings", "a(sss)", property_get_settings, 0, 0),
        SD_BUS_VTABLE_END,
};

/* Maps /org/vigil1/service/<encoded name> to the service; 0 (unknown object) for anything
 * else, however long or malformed. */
static int find_service_object(sd_bus *bus, const char *path, const char *interface, void *userdata,
                               void **found, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        bus_conn *c = userdata;
        service *s = NULL;
        int r;

        r = sd_bus_path_decode(path, SERVICE_PREFIX, &name);
        if (r <= 0)
                return r;
        if (strnlen(name, UNIT_NAME_MAX + 1) > UNIT_NAME_MAX ||
            !unit_name_is_valid(name, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE))
                return 0;
        s = manager_find_service(c->server->manager, name);
        if (!s)
                return 0;
        *found = s;
        return 1;
}

static int enumerate_services(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                              sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        bus_conn *c = userdata;
        manager *m = c->server->manager;
        int r;

        for (size_t i = 0; i < m->n_services; i++) {
                char *p = service_path(m->services[i]);

                if (!p)
                        return -ENOMEM;
                r = strv_push(&l, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        *nodes = TAKE_PTR(l);
        return 0;
}

/* ---- connections ------------------------------------------------------------------------ */

static void system_bus_schedule(bus_server *b);

static bus_conn *conn_free(bus_conn *c) {
        if (!c)
                return NULL;
        if (c->server) {
                if (c->system) {
                        c->server->system = NULL;
                        c->server->system_named = false;
                } else {
                        LIST_REMOVE(c->server->conns, c);
                        c->server->n_conns--;
                }
        }
        /* No flush: a peer that stopped reading must not block PID 1. */
        sd_bus_close_unref(c->bus);
        free(c->groups);
        return mfree(c);
}

static void conn_freep(bus_conn **c) {
        conn_free(*c);
}

/* sd-bus synthesizes this when the peer hangs up or the connection fails (bad auth, a
 * malformed message, a timeout): the connection is done. */
static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        bus_conn *c = userdata;
        bus_server *b = c->server;

        if (c->system) {
                log_info("The system bus went away; serving the private socket only until it "
                         "is back.");
                conn_free(c);
                b->system_retry_usec = SYSTEM_BUS_RETRY_MIN;
                system_bus_schedule(b);
                return 0;
        }
        log_debug("D-Bus connection of uid %u closed", (unsigned) c->caller.uid);
        conn_free(c);
        return 0;
}

/* The objects, the same on every connection; userdata is the connection. */
static int conn_add_objects(bus_conn *c) {
        int r;

        r = sd_bus_add_object_vtable(c->bus, NULL, MANAGER_PATH, MANAGER_INTERFACE, manager_vtable,
                                     c);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(c->bus, NULL, SERVICE_PREFIX, SERVICE_INTERFACE,
                                               service_vtable, find_service_object, c);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(c->bus, NULL, SERVICE_PREFIX, enumerate_services, c);
        if (r < 0) {
                /* libsystemd 252 can leave a half-registered object node behind when an
                 * allocation fails here, and then asserts (aborting PID 1) when the bus is
                 * freed. Close the connection and leak the bus object instead. */
                sd_bus_close(c->bus);
                c->bus = NULL;
                return r;
        }
        return 0;
}

/* The peer's supplementary groups as the kernel recorded them at connect(). */
static int peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *l = NULL;
        socklen_t len = 64 * sizeof(gid_t);

        for (;;) {
                gid_t *p = realloc(l, len ? len : sizeof(gid_t));

                if (!p)
                        return -ENOMEM;
                l = p;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, l, &len) >= 0)
                        break;
                if (errno != ERANGE || len > BUS_GROUPS_MAX * sizeof(gid_t))
                        return -errno;
        }
        *ret_n = len / sizeof(gid_t);
        *ret = TAKE_PTR(l);
        return 0;
}

/* The rest of a connection's setup, private or system bus alike: the objects, a local
 * match for the disconnect (peer to peer there is no bus daemon), the handshake, the loop. */
static int conn_start(bus_conn *c, bus_server *b) {
        int r;

        r = conn_add_objects(c);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r < 0)
                return r;
        r = sd_bus_start(c->bus);
        if (r < 0)
                return r;
        return sd_bus_attach_event(c->bus, b->manager->event, SD_EVENT_PRIORITY_NORMAL);
}

static int conn_new(bus_server *b, int fd) {
        _cleanup_(conn_freep) bus_conn *c = NULL;
        _cleanup_close_ int cfd = fd;
        struct ucred uc = {};
        socklen_t sl = sizeof(uc);
        sd_id128_t id;
        int r;

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) < 0)
                return -errno;
        if (sl != sizeof(uc))
                return -EIO;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->caller = (access_caller){ .uid = uc.uid, .gid = uc.gid };
        c->pid = uc.pid;
        c->server = b;
        LIST_PREPEND(b->conns, c);
        b->n_conns++;
        /* Without its groups the peer still has its uid and gid: grants by group just
         * give it nothing. */
        r = peer_groups(cfd, &c->groups, &c->caller.n_groups);
        if (r >= 0) {
                c->caller.groups = c->groups;
                c->caller.groups_known = true;
        } else
                log_debug_errno(r, "Cannot read the groups of a D-Bus peer: %m");

        r = sd_bus_new(&c->bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(c->bus, "vigil-private");
        r = sd_bus_set_fd(c->bus, cfd, cfd);
        if (r < 0)
                return r;
        TAKE_FD(cfd); /* the bus closes it now */
        r = sd_id128_randomize(&id);
        if (r < 0)
                return r;
        r = sd_bus_set_server(c->bus, 1, id);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(c->bus, true); /* FollowLogs() returns one */
        if (r < 0)
                return r;
        /* In the sandbox vigil is PID 1 of its own PID namespace: the kernel reports a
         * client's pid as 0 and sd-bus's EXTERNAL check refuses everyone. Accepting
         * ANONYMOUS costs nothing: mutating calls are authorized from the peer's
         * credentials, which the kernel recorded at connect(). */
        r = sd_bus_set_anonymous(c->bus, true);
        if (r < 0)
                return r;
        r = conn_start(c, b);
        if (r < 0)
                return r;

        TAKE_PTR(c);
        return 0;
}

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        bus_server *b = userdata;

        (void) sd_event_source_set_enabled(b->listen_source, SD_EVENT_ON);
        return 0;
}

/* accept() failing for want of fds or memory would fire again at once: pause the listener
 * for a second instead of spinning (the source stays alive; input never disables it). */
static void pause_accepting(bus_server *b) {
        int r;

        if (!b->retry_source) {
                r = sd_event_add_time_relative(b->manager->event, &b->retry_source, CLOCK_MONOTONIC,
                                               USEC_PER_SEC, 0, on_accept_retry, b);
                if (r < 0)
                        return; /* keep accepting: spinning beats going deaf */
        } else if (sd_event_source_set_time_relative(b->retry_source, USEC_PER_SEC) < 0)
                return;
        if (sd_event_source_set_enabled(b->retry_source, SD_EVENT_ONESHOT) < 0)
                return;
        (void) sd_event_source_set_enabled(b->listen_source, SD_EVENT_OFF);
}

static int on_connection(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        bus_server *b = userdata;
        int nfd, r;

        nfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (nfd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
                    errno == EPERM)
                        return 0;
                log_warning_errno(errno, "Failed to accept a D-Bus connection: %m");
                pause_accepting(b);
                return 0;
        }
        if (b->n_conns >= BUS_CONNECTIONS_MAX) {
                log_warning("Too many D-Bus connections (%d), refusing one", BUS_CONNECTIONS_MAX);
                close(nfd);
                return 0;
        }
        r = conn_new(b, nfd);
        if (r < 0)
                log_warning_errno(r, "Failed to set up a D-Bus connection: %m");
        return 0;
}

/* ---- the system bus --------------------------------------------------------------------- */

/* dbus-daemon runs as an ordinary service, so the bus comes and goes: vigil connects when
 * the socket appears (retrying with a growing delay, and at once whenever a service becomes
 * active), takes the name, and starts over when the bus goes away. Nothing of vigil's state
 * lives in the connection, so nothing is lost. */

static int on_name_acquired(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        bus_conn *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e) {
                log_error("Cannot take the name " BUS_NAME " on the system bus: %s",
                          e->message ?: e->name);
                return 0;
        }
        c->server->system_named = true;
        c->server->system_connects++;
        log_info("Serving " BUS_NAME " on the system bus.");
        return 0;
}

static int system_bus_connect(bus_server *b) {
        _cleanup_(conn_freep) bus_conn *c = NULL;
        const char *address = b->manager->conf.system_bus_address;
        int r;

        if (!address || b->system)
                return 0;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->server = b;
        c->system = true;
        c->caller.uid = UID_INVALID; /* each message carries its own caller */
        b->system = c;

        r = sd_bus_new(&c->bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(c->bus, "vigil-system-bus");
        r = sd_bus_set_address(c->bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(c->bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(c->bus, true);
        /* Credentials queries to the bus daemon are synchronous: bound them. */
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(c->bus, SYSTEM_BUS_CALL_TIMEOUT);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(c->bus, false);
        if (r < 0)
                return r;
        r = conn_start(c, b);
        if (r < 0)
                return r;
        r = sd_bus_request_name_async(c->bus, NULL, BUS_NAME, 0, on_name_acquired, c);
        if (r < 0)
                return r;
        TAKE_PTR(c);
        log_debug("Connected to the system bus at %s.", address);
        return 0;
}

static int on_system_bus_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        bus_server *b = userdata;
        int r;

        r = system_bus_connect(b);
        if (r >= 0)
                return 0;
        log_debug_errno(r, "System bus not there yet: %m");
        if (b->system_retry_usec < SYSTEM_BUS_RETRY_MAX)
                b->system_retry_usec *= 2;
        system_bus_schedule(b);
        return 0;
}

static void system_bus_schedule(bus_server *b) {
        int r;

        if (!b->manager->conf.system_bus_address || b->system || b->manager->shutting_down)
                return;
        if (b->system_retry_usec == 0)
                b->system_retry_usec = SYSTEM_BUS_RETRY_MIN;
        if (b->system_retry_usec > SYSTEM_BUS_RETRY_MAX)
                b->system_retry_usec = SYSTEM_BUS_RETRY_MAX;
        if (!b->system_retry) {
                r = sd_event_add_time_relative(b->manager->event, &b->system_retry, CLOCK_MONOTONIC,
                                               b->system_retry_usec, 0, on_system_bus_retry, b);
                if (r < 0)
                        log_warning_errno(r, "Cannot schedule the system bus connection: %m");
                return;
        }
        r = sd_event_source_set_time_relative(b->system_retry, b->system_retry_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->system_retry, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule the system bus connection: %m");
}

/* A service just became active: maybe it is the bus. */
static void system_bus_poke(bus_server *b) {
        if (!b->manager->conf.system_bus_address || b->system)
                return;
        b->system_retry_usec = SYSTEM_BUS_RETRY_MIN;
        system_bus_schedule(b);
}

/* ---- the server ------------------------------------------------------------------------- */

bus_server *bus_server_free(bus_server *b) {
        if (!b)
                return NULL;
        while (b->followers)
                follower_free(b->followers);
        while (b->conns)
                conn_free(b->conns);
        conn_free(b->system);
        sd_event_source_disable_unref(b->listen_source);
        sd_event_source_disable_unref(b->retry_source);
        sd_event_source_disable_unref(b->system_retry);
        if (b->listen_fd >= 0) {
                struct stat st;

                close(b->listen_fd);
                /* Another vigil may have replaced a socket we thought stale: leave it. */
                if (lstat(b->path, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino)
                        (void) unlink(b->path);
        }
        free(b->path);
        return mfree(b);
}

static void bus_server_freep(bus_server **b) {
        bus_server_free(*b);
}

int bus_server_new(manager *m, const char *path, bus_server **ret) {
        _cleanup_(bus_server_freep) bus_server *b = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t l = strlen(path);
        struct stat st;
        mode_t mask;
        int r;

        if (l == 0 || l >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, l);

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->manager = m;
        b->listen_fd = -1;
        b->path = strdup(path);
        if (!b->path)
                return -ENOMEM;

        /* Replace a stale socket from an earlier run, but nothing else: not a file, and
         * not a socket some server still listens on. */
        if (lstat(path, &st) == 0) {
                _cleanup_close_ int probe = -1;

                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return -errno;
                if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        r = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (r < 0)
                return -errno;
        /* No unlink() on free until bind() made the socket ours. */
        {
                _cleanup_close_ int fd = r;

                /* Created 0600 from the start: no window in which others may connect. */
                mask = umask(0177);
                r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
                umask(mask);
                if (r < 0)
                        return -errno;
                b->listen_fd = TAKE_FD(fd);
        }
        if (chmod(path, 0600) < 0 || lstat(path, &st) < 0)
                return -errno;
        b->dev = st.st_dev;
        b->ino = st.st_ino;
        if (listen(b->listen_fd, SOMAXCONN) < 0)
                return -errno;

        r = sd_event_add_io(m->event, &b->listen_source, b->listen_fd, EPOLLIN, on_connection, b);
        if (r < 0)
                return r;

        /* The system bus, if vigil.conf names one: from the loop, never blocking here. */
        system_bus_poke(b);

        *ret = TAKE_PTR(b);
        return 0;
}

/* Calls f for every connection that can carry signals. */
#define FOREACH_SIGNAL_CONN(b, c)                                                                  \
        for (bus_conn *c = (b)->conns ? (b)->conns : (b)->system; c;                               \
             c = c->system ? NULL : (c->next ? c->next : (b)->system))

void bus_service_changed(bus_server *b, service *s) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!b)
                return;
        if (s->state == SERVICE_RUNNING)
                system_bus_poke(b);
        path = service_path(s);
        if (!path)
                return;
        FOREACH_SIGNAL_CONN(b, c) {
                if (c->system && !b->system_named)
                        continue;
                /* A connection that is closing fails here; its Disconnected cleans up. */
                r = sd_bus_emit_properties_changed(c->bus, path, SERVICE_INTERFACE, "State",
                                                   "SubState", "Result", "MainPID", "Restarts",
                                                   "ActiveSince", "StatusText", "LastExitCode",
                                                   "LastExitSignal", NULL);
                if (r >= 0)
                        r = sd_bus_emit_signal(c->bus, MANAGER_PATH, MANAGER_INTERFACE,
                                               "ServiceStateChanged", "ssss", service_name(s),
                                               service_active_state(s),
                                               service_state_to_string(s->state),
                                               service_result_to_string(s->result));
                if (r < 0)
                        log_debug("Signals for %s not sent: %s", service_name(s), strerror(-r));
        }
}

void bus_service_crashed(bus_server *b, service *s) {
        int r;

        if (!b)
                return;
        FOREACH_SIGNAL_CONN(b, c) {
                if (c->system && !b->system_named)
                        continue;
                r = sd_bus_emit_signal(
                        c->bus, MANAGER_PATH, MANAGER_INTERFACE, "ServiceCrashed", "ssiiu",
                        service_name(s), service_result_to_string(s->result),
                        (int32_t) (s->exit_code == CLD_EXITED ? s->exit_status : -1),
                        (int32_t) (s->exit_code == CLD_KILLED || s->exit_code == CLD_DUMPED
                                           ? s->exit_status
                                           : 0),
                        (uint32_t) s->restarts);
                if (r < 0)
                        log_debug("ServiceCrashed for %s not sent: %s", service_name(s),
                                  strerror(-r));
        }
}

void bus_image_update(bus_server *b, const char *kind, const char *image, const char *version,
                      const char *detail) {
        _cleanup_free_ char *kb = NULL, *ib = NULL, *vb = NULL, *db = NULL;
        const char *k, *i, *v, *d;
        int r;

        if (!b)
                return;
        k = bus_string(kind, &kb);
        i = bus_string(image, &ib);
        v = bus_string(version, &vb);
        d = bus_string(detail, &db);
        if (!k || !i || !v || !d) {
                log_debug("ImageUpdate for %s not sent: out of memory", image ?: "?");
                return;
        }
        FOREACH_SIGNAL_CONN(b, c) {
                if (c->system && !b->system_named)
                        continue;
                r = sd_bus_emit_signal(c->bus, MANAGER_PATH, MANAGER_INTERFACE, "ImageUpdate",
                                       "ssss", k, i, v, d);
                if (r < 0)
                        log_debug("ImageUpdate for %s not sent: %s", i, strerror(-r));
        }
}

void bus_service_removed(bus_server *b, service *s) {
        bus_follower *next;

        if (!b)
                return;
        for (bus_follower *f = b->followers; f; f = next) {
                next = f->next;
                if (f->service == s)
                        follower_free(f);
        }
}

bool bus_server_system_named(bus_server *b) {
        return b && b->system_named;
}
