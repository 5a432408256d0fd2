/* The D-Bus API (org.vigil1) on the private socket: one peer-to-peer sd-bus per connection. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <time.h>

#include "bus.h"
#include "config.h"
#include "log.h"
#include "strv.h"
#include "value.h"

#define MANAGER_PATH "/org/vigil1"
#define MANAGER_INTERFACE "org.vigil1.Manager"
#define SERVICE_PREFIX "/org/vigil1/service"
#define SERVICE_INTERFACE "org.vigil1.Service"

#define ERROR_NO_SUCH_SERVICE "org.vigil1.Error.NoSuchService"
#define ERROR_INVALID_ARGUMENT "org.vigil1.Error.InvalidArgument"
#define ERROR_ACCESS_DENIED "org.vigil1.Error.AccessDenied"

/* Each connection costs a little memory and an fd; the socket is root-only, so this only
 * guards against runaway scripts. */
#define BUS_CONNECTIONS_MAX 64
#define BUS_FOLLOWERS_MAX 32
#define BUS_LOG_LINES_MAX 100000
/* Room for a burst of log lines while a follower's reader is scheduled. */
#define FOLLOW_SNDBUF_BYTES (1024 * 1024)

typedef struct bus_conn bus_conn;
typedef struct bus_follower bus_follower;

/* One accepted connection. */
struct bus_conn {
        bus_server *server;
        sd_bus *bus;
        uid_t uid; /* SO_PEERCRED, as the kernel recorded it at connect() */
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
static int find_service(manager *m, const char *name, service **ret, sd_bus_error *error) {
        service *s;

        if (strnlen(name, UNIT_NAME_MAX + 1) > UNIT_NAME_MAX ||
            !unit_name_is_valid(name, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE)) {
                if (name_is_printable(name))
                        return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                                 "invalid service name \"%s\"", name);
                return sd_bus_error_set(error, ERROR_INVALID_ARGUMENT, "invalid service name");
        }
        s = manager_find_service(m, name);
        if (!s)
                return sd_bus_error_setf(error, ERROR_NO_SUCH_SERVICE, "no service named %s", name);
        *ret = s;
        return 0;
}

/* Mutating calls need root. The uid is the kernel's record of the peer at connect() time
 * (a peer cannot change it afterwards); an unknown uid is never 0, so errors deny. */
static int check_privileged(bus_conn *c, sd_bus_error *error) {
        if (c->uid != 0)
                return sd_bus_error_set(error, ERROR_ACCESS_DENIED,
                                        "access denied: only root may change services");
        return 0;
}

static char *service_path(const service *s) {
        char *p = NULL;

        if (sd_bus_path_encode(SERVICE_PREFIX, s->name, &p) < 0)
                return NULL;
        return p;
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
        log_debug("Log follower of %s dropped: %s", f->service->name,
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
                                         "%s has no log to follow", s->name);

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

/* ---- org.vigil1.Manager ----------------------------------------------------------------- */

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
                r = append_string(reply, s->name);
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
        service *s;
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

static int service_operation(sd_bus_message *msg, bus_conn *c, sd_bus_error *error,
                             int (*op)(service *s), const char *verb) {
        const char *name;
        service *s;
        int r;

        r = check_privileged(c, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return r;
        r = op(s);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "failed to %s %s: %m", verb, s->name);
        return sd_bus_reply_method_return(msg, NULL);
}

/* StartService(s name), StopService(s name), RestartService(s name) → (): they change the
 * service's target and return at once; watch State/SubState for the outcome. */
static int method_start_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_start, "start");
}

static int method_stop_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_stop, "stop");
}

static int method_restart_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return service_operation(msg, userdata, error, service_restart, "restart");
}

/* KillService(s name, i signal) → (): sends the signal to every process of the service. */
static int method_kill_service(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        bus_conn *c = userdata;
        const char *name;
        int32_t sig;
        service *s;
        int r;

        r = check_privileged(c, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "si", &name, &sig);
        if (r < 0)
                return r;
        r = find_service(c->server->manager, name, &s, error);
        if (r < 0)
                return r;
        if (sig < 1 || sig > 64)
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT,
                                         "signal %" PRIi32 " is not between 1 and 64", sig);
        r = service_kill(s, sig);
        if (r == -ESRCH)
                return sd_bus_error_setf(error, ERROR_INVALID_ARGUMENT, "%s is not running",
                                         s->name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "failed to kill %s: %m", s->name);
        return sd_bus_reply_method_return(msg, NULL);
}

/* GetLogs(s name, u lines) → as: the last lines (at most 100000), oldest first, each
 * "YYYY-MM-DDTHH:MM:SS.mmmZ text". */
static int method_get_logs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        bus_conn *c = userdata;
        const char *name;
        uint32_t n;
        service *s;
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
                                                       s->name);
        }

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH(l, lines) {
                r = append_string(reply, *l);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* FollowLogs(s name) → h: a stream socket that receives every later log line as
 * "YYYY-MM-DDTHH:MM:SS.mmmZ text\n" until the caller closes it. vigil closes it when the
 * reader falls too far behind or the service goes away. */
static int method_follow_logs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -1;
        bus_conn *c = userdata;
        const char *name;
        service *s;
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

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", VIGIL_VERSION);
}

static int property_get_n_services(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        bus_conn *c = userdata;
        size_t n = c->server->manager->n_services;

        return sd_bus_message_append(reply, "u", (uint32_t) (n > UINT32_MAX ? UINT32_MAX : n));
}

/* The boot timeline, CLOCK_MONOTONIC µs; 0 until reached. */
static int property_get_timestamp(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        bus_conn *c = userdata;
        const manager *m = c->server->manager;
        usec_t t = streq(property, "ExecTimestampMonotonic")        ? m->ts_exec
                   : streq(property, "UnitsLoadTimestampMonotonic") ? m->ts_units_loaded
                                                                    : m->ts_all_started;

        return sd_bus_message_append(reply, "t", (uint64_t) t);
}

/* Every method is marked unprivileged for sd-bus: authorization happens here, explicitly,
 * in check_privileged(). */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NServices", "u", property_get_n_services, 0, 0),
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
        SD_BUS_METHOD_WITH_ARGS("KillService", SD_BUS_ARGS("s", name, "i", signal),
                                SD_BUS_NO_RESULT, method_kill_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLogs", SD_BUS_ARGS("s", name, "u", lines),
                                SD_BUS_RESULT("as", lines), method_get_logs,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FollowLogs", SD_BUS_ARGS("s", name), SD_BUS_RESULT("h", fd),
                                method_follow_logs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- org.vigil1.Service ----------------------------------------------------------------- */

/* Name s, Description s, State s (active state), SubState s, Result s, MainPID u,
 * Restarts u, ActiveSince t (CLOCK_REALTIME µs, 0 when not running), StatusText s. */
static int property_get_service(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        const service *s = userdata;

        if (streq(property, "Name"))
                return append_string(reply, s->name);
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
                return append_string(reply, s->status_text);
        return -EINVAL;
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
        SD_BUS_VTABLE_END,
};

/* Maps /org/vigil1/service/<encoded name> to the service; 0 (unknown object) for anything
 * else, however long or malformed. */
static int find_service_object(sd_bus *bus, const char *path, const char *interface, void *userdata,
                               void **found, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        bus_conn *c = userdata;
        service *s;
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

static bus_conn *conn_free(bus_conn *c) {
        if (!c)
                return NULL;
        if (c->server) {
                LIST_REMOVE(c->server->conns, c);
                c->server->n_conns--;
        }
        /* No flush: a peer that stopped reading must not block PID 1. */
        sd_bus_close_unref(c->bus);
        return mfree(c);
}

static void conn_freep(bus_conn **c) {
        conn_free(*c);
}

/* sd-bus synthesizes this when the peer hangs up or the connection fails (bad auth, a
 * malformed message, a timeout): the connection is done. */
static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        bus_conn *c = userdata;

        log_debug("D-Bus connection of uid %u closed", (unsigned) c->uid);
        conn_free(c);
        return 0;
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
        c->uid = uc.uid;
        c->server = b;
        LIST_PREPEND(b->conns, c);
        b->n_conns++;

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
         * ANONYMOUS costs nothing: mutating calls are authorized from the peer's uid,
         * which the kernel recorded at connect(). */
        r = sd_bus_set_anonymous(c->bus, true);
        if (r < 0)
                return r;

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
        /* Peer to peer there is no bus daemon: the match stays local. */
        r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r < 0)
                return r;

        r = sd_bus_start(c->bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(c->bus, b->manager->event, SD_EVENT_PRIORITY_NORMAL);
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

/* ---- the server ------------------------------------------------------------------------- */

bus_server *bus_server_free(bus_server *b) {
        if (!b)
                return NULL;
        while (b->followers)
                follower_free(b->followers);
        while (b->conns)
                conn_free(b->conns);
        sd_event_source_disable_unref(b->listen_source);
        sd_event_source_disable_unref(b->retry_source);
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

        *ret = TAKE_PTR(b);
        return 0;
}

void bus_service_changed(bus_server *b, service *s) {
        _cleanup_free_ char *path = NULL;

        if (!b)
                return;
        path = service_path(s);
        if (!path)
                return;
        for (bus_conn *c = b->conns; c; c = c->next) {
                /* A connection that is closing fails here; its Disconnected cleans up. */
                int r = sd_bus_emit_properties_changed(c->bus, path, SERVICE_INTERFACE, "State",
                                                       "SubState", "Result", "MainPID", "Restarts",
                                                       "ActiveSince", "StatusText", NULL);
                if (r < 0)
                        log_debug("PropertiesChanged for %s not sent: %s", s->name, strerror(-r));
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
