/* Tests for init/bus.c: a forked server over fake services, driven by sd-bus clients and hostile
 * sockets. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>

#include "audit.h"
#include "bus-doubles.h"
#include "bus.h"
#include "config.h"
#include "crash.h"
#include "log.h"
#include "resource.h"
#include "strv.h"
#include "tap.h"
#include "vigil-conf.h"

#define BUS_NAME_PREFIX "/org/vigil1/service"
#define A_PATH BUS_NAME_PREFIX "/a_2eservice"

/* ---- the server (child process) --------------------------------------------------------- */

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static _Noreturn void run_server(const char *path, int ready_fd) {
        manager *m = &fake_manager;
        sigset_t ss;
        int r;

        bus_doubles_setup(m);

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        if (sd_event_new(&m->event) < 0 ||
            sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, NULL) < 0)
                _exit(90);
        r = bus_server_new(m, path, &m->bus);
        if (r < 0) {
                fprintf(stderr, "# bus_server_new: %s\n", strerror(-r));
                _exit(91);
        }
        if (write(ready_fd, "R", 1) != 1)
                _exit(92);
        close(ready_fd);

        r = sd_event_loop(m->event);
        bus_server_free(m->bus);
        sd_event_unref(m->event);
        bus_doubles_done();
        /* exit() rather than _exit(): LeakSanitizer checks at exit. */
        exit(r < 0 ? 93 : 0);
}

/* Ends a forked child at once: the sanitizers' exit hooks would report the parent's objects
 * the child inherited as leaks. */
static _Noreturn void child_exit(int code) {
        syscall(SYS_exit_group, code);
        abort();
}

/* ---- client helpers --------------------------------------------------------------------- */

static char socket_dir[64];
static char socket_path[96];
static char address[128];
static pid_t server;
static char bundle_stem_path[96]; /* WORK/game-1.2: a bundle whose manifest the doubles accept */

static sd_bus *client_new(void) {
        sd_bus *bus = NULL;

        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 ||
            sd_bus_negotiate_fds(bus, true) < 0 || sd_bus_start(bus) < 0)
                return sd_bus_unref(bus);
        return bus;
}

/* Calls a Manager method; returns 0 or -errno, with the error name/message in *e. An earlier
 * *reply is released first. */
static int call(sd_bus *bus, const char *member, sd_bus_error *e, sd_bus_message **reply,
                const char *types, ...) {
        va_list ap;
        int r;

        *reply = sd_bus_message_unref(*reply);
        va_start(ap, types);
        r = sd_bus_call_methodv(bus, NULL, "/org/vigil1", "org.vigil1.Manager", member, e, reply,
                                types, ap);
        va_end(ap);
        return r;
}

static bool serves(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = call(bus, "ListServices", &e, &reply, "");

        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        return r >= 0;
}

/* A fresh connection answers: the server is alive and accepting. */
static bool server_alive(void) {
        sd_bus *bus = client_new();
        bool ok = bus && serves(bus);

        sd_bus_flush_close_unref(bus);
        return ok;
}

static char *get_string_property(sd_bus *bus, const char *path, const char *property) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *v = NULL;

        if (sd_bus_get_property_string(bus, NULL, path, "org.vigil1.Service", property, &e, &v) < 0)
                printf("# Get(%s): %s\n", property, e.message);
        sd_bus_error_free(&e);
        return v;
}

static long long get_u32_property(sd_bus *bus, const char *path, const char *property) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t v;
        int r = sd_bus_get_property_trivial(bus, NULL, path, "org.vigil1.Service", property, &e,
                                            'u', &v);

        sd_bus_error_free(&e);
        return r < 0 ? r : (long long) v;
}

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* 1 when the peer closed fd within ms, 0 when not, -1 on error. */
static int closed_within(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char buf[256];

        for (;;) {
                int r = poll(&p, 1, ms);

                if (r <= 0)
                        return r;
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 1;
                if (n < 0)
                        return -1;
        }
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_manager(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        char *v = NULL;
        uint32_t n = 0;
        int r;

        r = sd_bus_get_property_string(bus, NULL, "/org/vigil1", "org.vigil1.Manager", "Version",
                                       &e, &v);
        tap_ok(r >= 0, "Manager.Version readable");
        tap_streq(v, VIGIL_VERSION, "Version is VIGIL_VERSION");
        free(v);
        r = sd_bus_get_property_trivial(bus, NULL, "/org/vigil1", "org.vigil1.Manager", "NServices",
                                        &e, 'u', &n);
        tap_inteq(n, 4, "NServices counts the services");

        r = call(bus, "ListServices", &e, &reply, "");
        tap_ok(r >= 0, "ListServices succeeds");
        if (r >= 0) {
                const char *name, *desc, *active, *sub, *result;
                uint32_t pid, restarts;
                int count = 0;

                sd_bus_message_enter_container(reply, 'a', "(sssssuu)");
                while (sd_bus_message_read(reply, "(sssssuu)", &name, &desc, &active, &sub, &result,
                                           &pid, &restarts) > 0) {
                        if (count == 0) {
                                tap_streq(name, "a.service", "ListServices: first name");
                                tap_streq(desc, "A fake service", "ListServices: description");
                                tap_streq(active, "inactive", "ListServices: active state");
                                tap_streq(sub, "dead", "ListServices: sub state");
                                tap_streq(result, "success", "ListServices: result");
                                tap_inteq(pid, 0, "ListServices: no main pid is 0");
                        }
                        if (count == 2)
                                tap_streq(desc, "Bad ?? UTF-8",
                                          "ListServices: invalid UTF-8 is replaced, not fatal");
                        count++;
                }
                tap_inteq(count, 4, "ListServices lists every service");
        }
        reply = sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
}

static void test_get_service(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path = NULL;
        _cleanup_free_ char *huge = NULL;
        int r;

        r = call(bus, "GetService", &e, &reply, "s", "a.service");
        if (r >= 0)
                sd_bus_message_read(reply, "o", &path);
        tap_streq(path, A_PATH, "GetService returns the encoded object path");
        reply = sd_bus_message_unref(reply);

        r = call(bus, "GetService", &e, &reply, "s", "nope.service");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.NoSuchService"),
               "GetService of an unknown name: NoSuchService");
        tap_streq(e.message, "no service named nope.service", "NoSuchService message");
        sd_bus_error_free(&e);

        r = call(bus, "GetService", &e, &reply, "s", "not a unit");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.InvalidArgument"),
               "GetService of an invalid name: InvalidArgument");
        sd_bus_error_free(&e);

        r = call(bus, "GetService", &e, &reply, "s", "\x1b[31mx.service");
        tap_streq(e.message, "invalid service name",
                  "control characters are not echoed back in the message");
        sd_bus_error_free(&e);

        huge = malloc(65536 + 9);
        memset(huge, 'a', 65536);
        memcpy(huge + 65536, ".service", sizeof(".service"));
        r = call(bus, "StartService", &e, &reply, "s", huge);
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.InvalidArgument"),
               "StartService of a 64 KiB name: InvalidArgument");
        tap_ok(e.message && strlen(e.message) < 100, "the 64 KiB name is not echoed back");
        sd_bus_error_free(&e);
        r = call(bus, "GetLogs", &e, &reply, "su", huge, 10);
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.InvalidArgument"),
               "GetLogs of a 64 KiB name: InvalidArgument");
        sd_bus_error_free(&e);
        tap_ok(serves(bus), "server still serves after the 64 KiB names");
        sd_bus_message_unref(reply);
}

static int wait_for_signal(sd_bus *bus, int *seen) {
        for (int i = 0; i < 50 && !*seen; i++) {
                int r = sd_bus_process(bus, NULL);

                if (r < 0)
                        return r;
                if (r == 0)
                        sd_bus_wait(bus, 100 * 1000);
        }
        return *seen;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        int *seen = userdata;
        const char *iface = NULL;

        if (streq(sd_bus_message_get_path(m), A_PATH) && sd_bus_message_read(m, "s", &iface) > 0 &&
            streq(iface, "org.vigil1.Service"))
                (*seen)++;
        return 0;
}

static void test_operations(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus_slot *slot = NULL;
        char *v;
        int seen = 0, r;
        uint64_t since = 0;

        r = sd_bus_match_signal(bus, &slot, NULL, A_PATH, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, &seen);
        tap_ok(r >= 0, "client matches PropertiesChanged");

        r = call(bus, "StartService", &e, &reply, "s", "a.service");
        tap_ok(r >= 0, "StartService succeeds");
        v = get_string_property(bus, A_PATH, "State");
        tap_streq(v, "active", "StartService reached the service: State active");
        free(v);
        v = get_string_property(bus, A_PATH, "SubState");
        tap_streq(v, "running", "SubState running");
        free(v);
        tap_inteq(get_u32_property(bus, A_PATH, "MainPID"), 4242, "MainPID");
        r = sd_bus_get_property_trivial(bus, NULL, A_PATH, "org.vigil1.Service", "ActiveSince", &e,
                                        't', &since);
        tap_inteq(since, 1700000000000000ULL, "ActiveSince is the realtime timestamp");
        tap_ok(wait_for_signal(bus, &seen) > 0, "StartService emitted PropertiesChanged");
        slot = sd_bus_slot_unref(slot);

        r = call(bus, "StopService", &e, &reply, "s", "a.service");
        tap_ok(r >= 0, "StopService succeeds");
        v = get_string_property(bus, A_PATH, "State");
        tap_streq(v, "inactive", "StopService reached the service");
        free(v);
        r = sd_bus_get_property_trivial(bus, NULL, A_PATH, "org.vigil1.Service", "ActiveSince", &e,
                                        't', &since);
        tap_inteq(since, 0, "ActiveSince is 0 when not running");

        r = call(bus, "RestartService", &e, &reply, "s", "a.service");
        tap_ok(r >= 0, "RestartService succeeds");
        tap_inteq(get_u32_property(bus, A_PATH, "Restarts"), 1, "RestartService reached it");

        r = call(bus, "StartService", &e, &reply, "s", "fail.service");
        tap_ok(r < 0 && e.message && strstr(e.message, "failed to start fail.service"),
               "a failing start is reported with a message");
        printf("# %s: %s\n", e.name, e.message);
        sd_bus_error_free(&e);
        r = call(bus, "StartService", &e, &reply, "s", "c.service");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.StartRefused") && e.message &&
                       streq(e.message, "cannot start c.service: ResourceEnforcement=required, "
                                        "but CPUWeight= not enforced: cpu controller unavailable"),
               "a refused start: StartRefused with the reason");
        sd_bus_error_free(&e);

        r = call(bus, "KillService", &e, &reply, "si", "a.service", 0);
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.InvalidArgument"),
               "KillService with signal 0: InvalidArgument");
        sd_bus_error_free(&e);
        r = call(bus, "KillService", &e, &reply, "si", "a.service", 65);
        tap_ok(r < 0 && sd_bus_error_has_name(&e, "org.vigil1.Error.InvalidArgument"),
               "KillService with signal 65: InvalidArgument");
        sd_bus_error_free(&e);

        r = call(bus, "StartService", &e, &reply, "u", 5);
        tap_ok(r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS),
               "wrong signature: InvalidArgs");
        sd_bus_error_free(&e);
        r = call(bus, "NoSuchMethod", &e, &reply, "");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_METHOD),
               "unknown method: UnknownMethod");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
}

static void test_service_objects(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        _cleanup_free_ char *huge = NULL;
        const char *xml = NULL;
        char *v;
        int r;

        v = get_string_property(bus, A_PATH, "Name");
        tap_streq(v, "a.service", "Service.Name");
        free(v);
        v = get_string_property(bus, BUS_NAME_PREFIX "/c_2eservice", "StatusText");
        tap_streq(v, "status ??? surrogate", "StatusText with a surrogate is sanitized");
        free(v);
        v = get_string_property(bus, BUS_NAME_PREFIX "/b_40x_2eservice", "StatusText");
        tap_streq(v, "", "StatusText unset is empty");
        free(v);

        r = sd_bus_get_property(bus, NULL, BUS_NAME_PREFIX "/nope_2eservice", "org.vigil1.Service",
                                "State", &e, &reply, "s");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_OBJECT),
               "unknown service object: UnknownObject");
        sd_bus_error_free(&e);
        r = sd_bus_get_property(bus, NULL, BUS_NAME_PREFIX "/a_2eservice/deeper",
                                "org.vigil1.Service", "State", &e, &reply, "s");
        tap_ok(r < 0, "a path below a service object is unknown");
        sd_bus_error_free(&e);
        r = sd_bus_get_property(bus, NULL, BUS_NAME_PREFIX "/_ff_fe_2eservice",
                                "org.vigil1.Service", "State", &e, &reply, "s");
        tap_ok(r < 0, "a path decoding to invalid bytes is unknown");
        sd_bus_error_free(&e);

        huge = malloc(strlen(BUS_NAME_PREFIX) + 1 + 65536 + 1);
        memcpy(huge, BUS_NAME_PREFIX "/", sizeof(BUS_NAME_PREFIX "/"));
        memset(huge + strlen(huge), 'a', 65536);
        huge[strlen(BUS_NAME_PREFIX) + 1 + 65536] = '\0';
        r = sd_bus_get_property(bus, NULL, huge, "org.vigil1.Service", "State", &e, &reply, "s");
        tap_ok(r < 0, "a 64 KiB object path is unknown");
        sd_bus_error_free(&e);
        tap_ok(serves(bus), "server still serves after the bad paths");

        r = sd_bus_call_method(bus, NULL, BUS_NAME_PREFIX, "org.freedesktop.DBus.Introspectable",
                               "Introspect", &e, &reply, "");
        if (r >= 0)
                sd_bus_message_read(reply, "s", &xml);
        tap_ok(xml && strstr(xml, "<node name=\"a_2eservice\"") &&
                       strstr(xml, "<node name=\"fail_2eservice\""),
               "the enumerator lists every service object");
        reply = sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
}

static void test_logs(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        char **lines = NULL;
        int r;

        r = call(bus, "GetLogs", &e, &reply, "su", "a.service", 2);
        if (r >= 0)
                sd_bus_message_read_strv(reply, &lines);
        tap_inteq(strv_length(lines), 2, "GetLogs returns the last n lines");
        tap_streq(lines ? lines[1] : NULL, "2024-01-01T00:00:02.000Z bad ? byte",
                  "GetLogs sanitizes invalid UTF-8");
        lines = strv_free(lines);
        reply = sd_bus_message_unref(reply);

        r = call(bus, "GetLogs", &e, &reply, "su", "a.service", UINT32_MAX);
        if (r >= 0)
                sd_bus_message_read_strv(reply, &lines);
        tap_inteq(strv_length(lines), 3, "GetLogs caps a huge count");
        lines = strv_free(lines);
        reply = sd_bus_message_unref(reply);

        r = call(bus, "GetLogs", &e, &reply, "su", "c.service", 10);
        if (r >= 0)
                sd_bus_message_read_strv(reply, &lines);
        tap_ok(r >= 0 && strv_length(lines) == 0, "GetLogs of a service without log is empty");
        lines = strv_free(lines);
        reply = sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
}

/* The fd of FollowLogs(name), or -1. */
static int follow(sd_bus *bus, const char *name, sd_bus_error *e) {
        sd_bus_message *reply = NULL;
        int fd = -1, r;

        r = call(bus, "FollowLogs", e, &reply, "s", name);
        if (r >= 0 && sd_bus_message_read(reply, "h", &fd) > 0)
                fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        else
                fd = -1;
        sd_bus_message_unref(reply);
        return fd;
}

static void test_follow(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int fds[40], fd, n_open = 0;
        char buf[256] = "";
        ssize_t n;
        bool refused = false, again = false;

        fd = follow(bus, "a.service", &e);
        tap_ok(fd >= 0, "FollowLogs returns an fd");
        (void) call(bus, "StartService", &e, &reply, "s", "a.service");
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        buf[n > 0 ? n : 0] = '\0';
        tap_streq(buf, "2024-01-01T00:00:03.000Z started\n",
                  "a followed line arrives as the log stream gave it, with a newline");
        printf("# followed: %s", buf);
        if (fd >= 0)
                close(fd);

        fd = follow(bus, "b@x.service", &e);
        (void) call(bus, "StopService", &e, &reply, "s", "b@x.service");
        tap_inteq(fd >= 0 ? closed_within(fd, 2000) : -1, 1,
                  "bus_service_removed() ends the service's followers");
        if (fd >= 0)
                close(fd);

        fd = follow(bus, "c.service", &e);
        tap_ok(fd < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_NOT_SUPPORTED),
               "FollowLogs of a service without log: NotSupported");
        sd_bus_error_free(&e);

        for (int i = 0; i < 40; i++) {
                fds[i] = follow(bus, "a.service", &e);
                if (fds[i] < 0) {
                        refused = sd_bus_error_has_name(&e, SD_BUS_ERROR_LIMITS_EXCEEDED);
                        sd_bus_error_free(&e);
                        break;
                }
                n_open++;
        }
        tap_ok(refused && n_open == 32, "followers are capped at 32 (opened %d)", n_open);
        for (int i = 0; i < n_open; i++)
                close(fds[i]);
        /* The server frees them when it sees the hangup. */
        for (int i = 0; i < 50 && !again; i++) {
                fd = follow(bus, "a.service", &e);
                sd_bus_error_free(&e);
                again = fd >= 0;
                if (fd >= 0)
                        close(fd);
                else
                        usleep(20 * 1000);
        }
        tap_ok(again, "closed followers are freed");
        reply = sd_bus_message_unref(reply);
}

static void test_hostile_clients(sd_bus *bus) {
        char auth[80], buf[256], uid[16], hex[40] = "";
        int fd, fds[80], refused = 0, n_open = 0, n;
        sd_bus *b2;

        /* Disconnect while the server handles a call. */
        b2 = client_new();
        if (b2) {
                sd_bus_call_method_async(b2, NULL, NULL, "/org/vigil1", "org.vigil1.Manager",
                                         "GetLogs", NULL, NULL, "su", "a.service", 100000);
                sd_bus_call_method_async(b2, NULL, NULL, "/org/vigil1", "org.vigil1.Manager",
                                         "FollowLogs", NULL, NULL, "s", "a.service");
                sd_bus_flush(b2);
                sd_bus_close_unref(b2);
        }
        tap_ok(serves(bus) && server_alive(), "server survives a client that left mid-call");

        /* Garbage after a valid handshake. */
        snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        for (size_t i = 0; uid[i]; i++)
                snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x", (unsigned) uid[i]);
        auth[0] = '\0';
        n = snprintf(auth + 1, sizeof(auth) - 1, "AUTH EXTERNAL %s\r\nBEGIN\r\n", hex);
        fd = raw_connect();
        if (fd >= 0) {
                memset(buf, 0xff, sizeof(buf));
                (void) !write(fd, auth, (size_t) n + 1);
                (void) !write(fd, buf, sizeof(buf));
        }
        tap_inteq(fd >= 0 ? closed_within(fd, 2000) : -1, 1,
                  "garbage after authentication: connection closed");
        if (fd >= 0)
                close(fd);
        tap_ok(serves(bus) && server_alive(), "server survives garbage");

        /* Hang up during the handshake, and before it. */
        fd = raw_connect();
        if (fd >= 0) {
                (void) !write(fd, "\0AUTH EXT", 9);
                close(fd);
        }
        fd = raw_connect();
        if (fd >= 0)
                close(fd);
        tap_ok(serves(bus) && server_alive(), "server survives hangups during the handshake");

        /* More connections than the cap. */
        for (int i = 0; i < 80; i++) {
                fds[i] = raw_connect();
                if (fds[i] >= 0)
                        n_open++;
        }
        for (int i = 0; i < 80; i++)
                if (fds[i] >= 0 && closed_within(fds[i], i < 60 ? 0 : 200) == 1)
                        refused++;
        tap_ok(refused >= 80 - 64 && refused < 80, "connections beyond 64 are refused (%d of %d)",
               refused, n_open);
        tap_ok(serves(bus), "an established connection keeps working at the cap");
        for (int i = 0; i < 80; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        bool alive = false;
        for (int i = 0; i < 50 && !alive; i++) {
                alive = server_alive();
                if (!alive)
                        usleep(20 * 1000);
        }
        tap_ok(alive, "new connections are accepted once the others are gone");
}

/* vigil.conf's [Access]: what parses, what is refused, and what it allows. */
static void test_conf(void) {
        static const char good[] = "[Access]\nAdminGroup=10\nGrant=20 restart,stop game\n"
                                   "Grant=21 reboot,poweroff\nGrant=22 kill *\n"
                                   "[Manager]\nSystemBusAddress=unix:path=/x\n";
        static const char *const bad[] = {
                "[Access]\nGrant=20 restart\n",                   /* no services */
                "[Access]\nGrant=20 explode game\n",              /* unknown verb */
                "[Access]\nGrant=nosuchgroup-xyz restart game\n", /* unknown group */
                "[Access]\nGrant=20 restart bad/name\n",          /* bad service name */
                "[Access]\nGrant=20 reboot game\n", /* machine verbs take no services */
                "[Access]\nAdminGroup=nosuchgroup-xyz\n",
                "[Access]\nBogus=1\n",
                "[Acess]\n",
        };
        gid_t g20[] = { 20 }, g10[] = { 5, 10 }, g21[] = { 21 }, g22[] = { 22 };
        access_caller root = { .uid = 0 }, nobody = { .uid = 65534, .gid = 65534 };
        access_caller ops = {
                .uid = 1000, .gid = 1000, .groups = g20, .n_groups = 1, .groups_known = true
        };
        access_caller admin = {
                .uid = 1001, .gid = 1001, .groups = g10, .n_groups = 2, .groups_known = true
        };
        access_caller power = {
                .uid = 1002, .gid = 1002, .groups = g21, .n_groups = 1, .groups_known = true
        };
        access_caller killer = {
                .uid = 1003, .gid = 22, .groups = g22, .n_groups = 0, .groups_known = false
        };
        access_caller unknown = ops;
        vigil_conf c;
        int n;

        unknown.groups_known = false;
        n = vigil_conf_parse("good.conf", good, strlen(good), NULL, &c);
        tap_inteq(n, 0, "a good [Access] section parses without problems");
        tap_inteq(c.n_grants, 3, "three grants");
        tap_streq(c.system_bus_address, "unix:path=/x", "SystemBusAddress=");
        tap_ok(access_allowed(&c, &root, VERB_POWEROFF, NULL), "root may do anything");
        tap_ok(!access_allowed(&c, &nobody, VERB_START, "game.service"),
               "a caller without grants may not start");
        tap_ok(access_allowed(&c, &ops, VERB_RESTART, "game.service"),
               "a grant allows its verb on its service");
        tap_ok(!access_allowed(&c, &ops, VERB_START, "game.service"), "but not another verb");
        tap_ok(!access_allowed(&c, &ops, VERB_RESTART, "other.service"), "and not another service");
        tap_ok(!access_allowed(&c, &ops, VERB_RESTART, NULL), "nor every service at once");
        tap_ok(!access_allowed(&c, &unknown, VERB_RESTART, "game.service"),
               "unknown groups grant nothing");
        tap_ok(access_allowed(&c, &admin, VERB_REBOOT, NULL) &&
                       access_allowed(&c, &admin, VERB_SET_PROPERTY, "x.service"),
               "the admin group may do anything");
        tap_ok(access_allowed(&c, &power, VERB_POWEROFF, NULL) &&
                       !access_allowed(&c, &power, VERB_RELOAD_UNITS, NULL),
               "machine verbs are granted one by one");
        tap_ok(access_allowed(&c, &killer, VERB_KILL, "any.service"),
               "the effective gid counts, and * means every service");
        tap_ok(!access_allowed(&c, &killer, VERB_KILL + 100, "any.service"),
               "an out-of-range verb is denied");
        vigil_conf_done(&c);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                n = vigil_conf_parse("bad.conf", bad[i], strlen(bad[i]), NULL, &c);
                tap_ok(n > 0 && c.n_grants == 0 && !c.admin_group_set,
                       "a bad [Access] line is a problem and grants nothing (case %zu)", i);
                vigil_conf_done(&c);
        }
        tap_inteq(access_verb_from_string("reset-failed"), VERB_RESET_FAILED, "verb names");
        tap_inteq(access_verb_from_string("Start"), -EINVAL, "verb names are exact");
}

/* ---- image updates ---------------------------------------------------------------------- */

/* WORK/game-1.2 with suffix, opened for reading. */
static int open_bundle(const char *suffix) {
        char path[128];

        snprintf(path, sizeof(path), "%s%s", bundle_stem_path, suffix);
        return open(path, O_RDONLY | O_CLOEXEC);
}

static void make_bundle(void) {
        static const char *const files[][2] = {
                { ".squashfs", "hsqs" },
                { ".manifest", "[Bundle]\nName=game\nVersion=1.2\n" },
                { ".manifest.minisig", "untrusted comment: x\n" },
        };

        snprintf(bundle_stem_path, sizeof(bundle_stem_path), "%s/game-1.2", bus_doubles_work);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char path[128];
                int fd;

                snprintf(path, sizeof(path), "%s%s", bundle_stem_path, files[i][0]);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        (void) !write(fd, files[i][1], strlen(files[i][1]));
                        close(fd);
                }
        }
}

/* The server's open fds, or -1. */
static int server_fds(void) {
        char path[64];
        struct dirent *de;
        DIR *d;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) server);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

/* StageUpdate(stem, fd, manifest fd, fd): 0 or -errno with the error in *e. */
static int stage(sd_bus *bus, sd_bus_error *e, const char *stem, int fd, int manifest) {
        sd_bus_message *reply = NULL;
        int r;

        sd_bus_error_free(e);
        r = call(bus, "StageUpdate", e, &reply, "shhh", stem, fd, manifest, fd);
        sd_bus_message_unref(reply);
        return r;
}

static bool error_is(const sd_bus_error *e, const char *name, const char *part) {
        return sd_bus_error_has_name(e, name) && e->message && strstr(e->message, part);
}

/* GetUpdateStatus: the staged stems as one "a,b," string in staged (may be NULL). */
static void check_update_status(sd_bus *bus, char *staged, size_t size) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *name, *cur, *sha, *prev, *status, *ver, *digest, *reason;
        uint32_t boots;
        int trial, n = 0, r;

        r = call(bus, "GetUpdateStatus", &e, &reply, "");
        tap_ok(r >= 0, "GetUpdateStatus succeeds %s", e.message ?: "");
        if (r < 0) {
                sd_bus_error_free(&e);
                return;
        }
        sd_bus_message_enter_container(reply, 'a', "(ssssbusa(sss))");
        while (sd_bus_message_enter_container(reply, 'r', "ssssbusa(sss)") > 0) {
                r = sd_bus_message_read(reply, "ssssbus", &name, &cur, &sha, &prev, &trial, &boots,
                                        &status);
                if (r > 0 && n == 0 && !staged) {
                        tap_ok(streq(name, "game") && streq(cur, "1.1") && strlen(sha) == 64 &&
                                       streq(prev, "1.0") && trial && boots == 1 &&
                                       strstr(status, "a.service"),
                               "GetUpdateStatus: name, current, sha256, previous, trial, boots, "
                               "status");
                        sd_bus_message_enter_container(reply, 'a', "(sss)");
                        r = sd_bus_message_read(reply, "(sss)", &ver, &digest, &reason);
                        tap_ok(r > 0 && streq(ver, "1.2") && strlen(digest) == 64 &&
                                       streq(reason, "crashed ? on trial"),
                               "GetUpdateStatus: a rejected digest with version and reason (made "
                               "valid UTF-8)");
                        sd_bus_message_exit_container(reply);
                } else
                        sd_bus_message_skip(reply, "a(sss)");
                sd_bus_message_exit_container(reply);
                n++;
        }
        sd_bus_message_exit_container(reply);
        if (!staged)
                tap_inteq(n, 2, "GetUpdateStatus lists every image");
        else {
                staged[0] = '\0';
                sd_bus_message_enter_container(reply, 'a', "s");
                while (sd_bus_message_read(reply, "s", &name) > 0) {
                        strncat(staged, name, size - strlen(staged) - 1);
                        strncat(staged, ",", size - strlen(staged) - 1);
                }
        }
        sd_bus_message_unref(reply);
}

static int on_image_update(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        const char *kind, *image, *version, *detail;

        if (sd_bus_message_read(m, "ssss", &kind, &image, &version, &detail) > 0 &&
            streq(kind, "rolled-back") && streq(image, "game") && streq(version, "1.0") &&
            streq(detail, "rolled back by an admin"))
                (*(int *) userdata)++;
        return 0;
}

static void test_update(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus_slot *slot = NULL;
        _cleanup_free_ char *huge = NULL, *xml = NULL;
        char staged[256];
        int file, manifest, fds[2], fd, before, after, seen = 0, n = 0, r;
        const char *stem, *image, *version, *outcome, *reason;

        make_bundle();
        check_update_status(bus, NULL, 0);

        file = open_bundle(".squashfs");
        manifest = open_bundle(".manifest");
        r = stage(bus, &e, "game-1.2", file, manifest);
        tap_ok(r >= 0, "StageUpdate with three regular files succeeds %s", e.message ?: "");
        check_update_status(bus, staged, sizeof(staged));
        tap_streq(staged, "game-1.2,", "the staged bundle is listed (the manifest fd was read)");

        lseek(manifest, 0, SEEK_SET);
        tap_ok(stage(bus, &e, "../etc-1", file, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "\"../etc-1\""),
               "StageUpdate of a stem with a slash: InvalidArgument naming it");
        tap_ok(stage(bus, &e, "", file, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "bundle name"),
               "StageUpdate of an empty stem: InvalidArgument");
        huge = malloc(65537);
        memset(huge, 'a', 65536);
        huge[65536] = '\0';
        tap_ok(stage(bus, &e, huge, file, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "bundle name") &&
                       strlen(e.message) < 100,
               "StageUpdate of a 64 KiB stem: InvalidArgument, not echoed back");
        tap_ok(stage(bus, &e, "big-1.0", file, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument",
                                "cannot stage big-1.0: big-1.0.squashfs: larger than"),
               "a bundle that is too large: InvalidArgument with the engine's reason");
        tap_ok(stage(bus, &e, "game-1.3", file, file) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument",
                                "game-1.3.manifest: not a manifest"),
               "the engine's -EINVAL is InvalidArgument with its message");

        /* Connections of earlier tests may still be closing: a leak would add 3 fds a call. */
        (void) serves(bus);
        before = server_fds();
        if (pipe2(fds, O_CLOEXEC) == 0) {
                tap_ok(stage(bus, &e, "game-1.2", fds[0], manifest) < 0 &&
                               error_is(&e, "org.vigil1.Error.InvalidArgument",
                                        "the payload fd is a pipe"),
                       "a pipe is refused: it could stall PID 1");
                close(fds[0]);
                close(fds[1]);
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
                tap_ok(stage(bus, &e, "game-1.2", file, fds[0]) < 0 &&
                               error_is(&e, "org.vigil1.Error.InvalidArgument",
                                        "the manifest fd is a socket"),
                       "a socket is refused");
                close(fds[0]);
                close(fds[1]);
        }
        fd = open(bus_doubles_work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        tap_ok(stage(bus, &e, "game-1.2", fd, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "is a directory"),
               "a directory is refused");
        close(fd);
        fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        tap_ok(stage(bus, &e, "game-1.2", fd, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "a character device"),
               "a device that never ends is refused");
        close(fd);
        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        tap_ok(stage(bus, &e, "game-1.2", file, fd) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument",
                                "the manifest fd is a file on procfs"),
               "a regular file on procfs is refused (such files may block or never end)");
        close(fd);
        fd = open(bus_doubles_work, O_PATH | O_CLOEXEC);
        tap_ok(stage(bus, &e, "game-1.2", fd, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "not open for reading"),
               "an O_PATH fd is refused");
        close(fd);
        {
                char path[128];

                snprintf(path, sizeof(path), "%s.squashfs", bundle_stem_path);
                fd = open(path, O_WRONLY | O_CLOEXEC);
        }
        tap_ok(stage(bus, &e, "game-1.2", fd, manifest) < 0 &&
                       error_is(&e, "org.vigil1.Error.InvalidArgument", "not open for reading"),
               "a write-only fd is refused");
        close(fd);
        for (int i = 0; i < 50; i++) {
                lseek(manifest, 0, SEEK_SET);
                (void) stage(bus, &e, i % 2 ? "game-1.2" : "x", file, manifest);
        }
        tap_ok(serves(bus), "the server serves after the bad fds");
        after = server_fds();
        tap_ok(before > 0 && after > 0 && after <= before,
               "no fd leaks in the server after 56 calls with fds (%d, then %d)", before, after);
        close(file);
        close(manifest);
        sd_bus_error_free(&e);

        r = call(bus, "ApplyUpdates", &e, &reply, "b", 0);
        tap_ok(r >= 0, "ApplyUpdates succeeds");
        if (r >= 0) {
                sd_bus_message_enter_container(reply, 'a', "(sssss)");
                while (sd_bus_message_read(reply, "(sssss)", &stem, &image, &version, &outcome,
                                           &reason) > 0) {
                        if (n == 0)
                                tap_ok(streq(stem, "game-1.2") && streq(image, "game") &&
                                               streq(version, "1.2") &&
                                               streq(outcome, "installed") && streq(reason, ""),
                                       "ApplyUpdates: an installed bundle");
                        if (n == 1)
                                tap_ok(streq(outcome, "rejected") && strstr(reason, "no trusted") &&
                                               strchr(reason, '?'),
                                       "ApplyUpdates: a rejected bundle and why (valid UTF-8)");
                        if (n == 2)
                                tap_ok(streq(outcome, "deferred") &&
                                               streq(reason, "No space left on device"),
                                       "ApplyUpdates: a deferred bundle and why");
                        n++;
                }
                tap_inteq(n, 3, "ApplyUpdates: one row per staged bundle");
        }
        r = call(bus, "ApplyUpdates", &e, &reply, "b", 1);
        n = 0;
        if (r >= 0) {
                sd_bus_message_enter_container(reply, 'a', "(sssss)");
                while (sd_bus_message_read(reply, "(sssss)", &stem, &image, &version, &outcome,
                                           &reason) > 0)
                        n++;
        }
        tap_inteq(n, 1, "ApplyUpdates(force) reaches the engine");
        check_update_status(bus, staged, sizeof(staged));
        tap_streq(staged, "", "nothing is staged after ApplyUpdates");

        r = sd_bus_match_signal(bus, &slot, NULL, "/org/vigil1", "org.vigil1.Manager",
                                "ImageUpdate", on_image_update, &seen);
        r = call(bus, "RollbackImage", &e, &reply, "s", "game");
        tap_ok(r >= 0, "RollbackImage of an image with a previous version succeeds");
        tap_ok(wait_for_signal(bus, &seen) > 0, "ImageUpdate(rolled-back, game, 1.0, why) is "
                                                "emitted");
        sd_bus_slot_unref(slot);
        r = call(bus, "RollbackImage", &e, &reply, "s", "nope");
        tap_ok(r < 0 && error_is(&e, "org.vigil1.Error.NoSuchImage", "no image named nope"),
               "RollbackImage of an unknown image: NoSuchImage");
        sd_bus_error_free(&e);
        r = call(bus, "RollbackImage", &e, &reply, "s", "fresh");
        tap_ok(r < 0 && error_is(&e, "org.vigil1.Error.NoPreviousVersion",
                                 "cannot roll back fresh: fresh has no previous version"),
               "RollbackImage without a previous version: NoPreviousVersion with the reason");
        sd_bus_error_free(&e);
        r = call(bus, "RollbackImage", &e, &reply, "s", "../x");
        tap_ok(r < 0 && error_is(&e, "org.vigil1.Error.InvalidArgument", "invalid image name"),
               "RollbackImage of an invalid name: InvalidArgument");
        sd_bus_error_free(&e);
        r = call(bus, "RollbackImage", &e, &reply, "s", huge);
        tap_ok(r < 0 && error_is(&e, "org.vigil1.Error.InvalidArgument", "invalid image name") &&
                       strlen(e.message) < 100,
               "RollbackImage of a 64 KiB name: InvalidArgument");
        sd_bus_error_free(&e);
        r = call(bus, "StageUpdate", &e, &reply, "s", "game-1.2");
        tap_ok(r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_INVALID_ARGS),
               "StageUpdate without fds: a signature error");
        sd_bus_error_free(&e);

        r = sd_bus_call_method(bus, NULL, "/org/vigil1", "org.freedesktop.DBus.Introspectable",
                               "Introspect", &e, &reply, "");
        if (r >= 0 && sd_bus_message_read(reply, "s", &stem) > 0)
                xml = strdup(stem);
        tap_ok(xml && strstr(xml, "name=\"StageUpdate\"") && strstr(xml, "name=\"ApplyUpdates\"") &&
                       strstr(xml, "name=\"RollbackImage\"") &&
                       strstr(xml, "name=\"GetUpdateStatus\"") &&
                       strstr(xml, "type=\"a(ssssbusa(sss))\"") &&
                       strstr(xml, "<signal name=\"ImageUpdate\">"),
               "introspection lists the update methods and the ImageUpdate signal");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
}

/* A child with uid 65534 and the given supplementary group (0: none) calls method(s name)
 * and returns 0 (allowed), 1 (AccessDenied) or 2 (another error). */
static int call_as(gid_t group, const char *method, const char *name) {
        pid_t pid;
        int status = -1;

        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                sd_bus *bus;
                int r;

                int fd = -1;

                /* A bundle file only root can open: vigil never opens it for the caller. */
                if (streq(method, "StageUpdate") && (fd = open_bundle(".manifest")) < 0)
                        child_exit(12);
                if (setgroups(group ? 1 : 0, &group) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        child_exit(10);
                bus = client_new();
                if (!bus)
                        child_exit(11);
                if (streq(method, "ApplyUpdates"))
                        r = call(bus, method, &e, &reply, "b", 0);
                else if (!name)
                        r = call(bus, method, &e, &reply, "");
                else if (streq(method, "KillService"))
                        r = call(bus, method, &e, &reply, "si", name, SIGTERM);
                else if (streq(method, "StageUpdate"))
                        r = call(bus, method, &e, &reply, "shhh", name, fd, fd, fd);
                else
                        r = call(bus, method, &e, &reply, "s", name);
                child_exit(r >= 0                                                       ? 0
                           : sd_bus_error_has_name(&e, "org.vigil1.Error.AccessDenied") ? 1
                                                                                        : 2);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* Non-root peers: everyone reads; groups get what vigil.conf grants; every mutating call is
 * in the audit log. */
static void test_access(void) {
        char path[128], *log = NULL;
        size_t size = 0;
        FILE *f;

        if (getuid() != 0) {
                printf("ok %d - # SKIP access checks need root\n", ++tap_n);
                return;
        }
        /* The socket is 0600; let the test's unprivileged peers in. */
        chmod(socket_dir, 0711);
        chmod(socket_path, 0666);
        tap_inteq(call_as(0, "ListServices", NULL), 0, "nobody may list");
        tap_inteq(call_as(0, "StartService", "a.service"), 1, "nobody may not start");
        tap_inteq(call_as(0, "RestartService", "nope.service"), 1,
                  "nobody gets AccessDenied before NoSuchService");
        tap_inteq(call_as(4242, "RestartService", "a.service"), 0, "gameops may restart a.service");
        tap_inteq(call_as(4242, "StopService", "a.service"), 1, "gameops may not stop it");
        tap_inteq(call_as(4242, "RestartService", "c.service"), 1,
                  "gameops may not restart c.service");
        tap_inteq(call_as(4242, "StartService", "b@x.service"), 0,
                  "gameops may start the instance it was granted");
        tap_inteq(call_as(4242, "Reboot", NULL), 1, "gameops may not reboot");
        tap_inteq(call_as(4244, "Reboot", NULL), 0, "the reboot group may reboot");
        tap_inteq(call_as(4244, "ReloadUnits", NULL), 1, "but not reload units");
        tap_inteq(call_as(4243, "StopService", "c.service"), 0, "the admin group may stop");
        tap_inteq(call_as(4243, "KillService", "a.service"), 0, "and kill");
        tap_inteq(call_as(4243, "ReloadUnits", NULL), 0, "and reload units");
        tap_inteq(call_as(0, "GetUpdateStatus", NULL), 0, "nobody may read the update status");
        tap_inteq(call_as(0, "StageUpdate", "game-1.2"), 1, "nobody may not stage an update");
        tap_inteq(call_as(4242, "ApplyUpdates", NULL), 1, "gameops may not apply updates");
        tap_inteq(call_as(4244, "RollbackImage", "game"), 1, "the reboot group may not roll back");
        tap_inteq(call_as(0, "RollbackImage", "nope"), 1,
                  "nobody gets AccessDenied before NoSuchImage");
        tap_inteq(call_as(4243, "StageUpdate", "game-1.2"), 0, "the admin group may stage");
        tap_inteq(call_as(4243, "RollbackImage", "game"), 0, "and roll back");
        chmod(socket_path, 0600);
        chmod(socket_dir, 0700);

        snprintf(path, sizeof(path), "%s/audit.log", bus_doubles_work);
        f = fopen(path, "re");
        if (f) {
                char buf[4096];
                size_t n;

                FILE *m = open_memstream(&log, &size);
                while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                        fwrite(buf, 1, n, m);
                fclose(m);
                fclose(f);
        }
        tap_ok(log && strstr(log, "uid=65534 gid=65534 pid=") &&
                       strstr(log, "via=private verb=start target=a.service result=denied") &&
                       strstr(log, "verb=restart target=a.service result=ok") &&
                       strstr(log, "verb=reboot target=- result=ok") &&
                       strstr(log, "verb=reload-units target=- result=denied") &&
                       strstr(log, "verb=update target=game-1.2 result=denied") &&
                       strstr(log, "verb=update target=- result=denied") &&
                       strstr(log, "verb=update target=game-1.2 result=ok") &&
                       strstr(log, "verb=update target=game result=ok"),
               "the audit log has caller, verb, target and result of each call");
        printf("# audit.log:\n");
        for (char *l = log, *e; l && *l; l = e) {
                e = strchrnul(l, '\n');
                printf("#   %.*s\n", (int) (e - l), l);
                e += *e == '\n';
        }
        free(log);
}

/* vigilctl end to end, when $VIGILCTL names the binary. */
static int run_vigilctl(const char *const *argv, bool quiet) {
        const char *bin = getenv("VIGILCTL");
        const char *args[16];
        size_t n = 0;
        pid_t pid;
        int status;

        args[n++] = bin;
        for (; *argv && n < ELEMENTSOF(args) - 1; argv++)
                args[n++] = *argv;
        args[n] = NULL;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                dup2(null, STDOUT_FILENO);
                if (quiet)
                        dup2(null, STDERR_FILENO);
                execv(bin, (char **) args);
                child_exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* vigilctl logs -f prints followed lines and exits 1 when vigil ends the stream. */
static void test_vigilctl_follow(void) {
        const char *bin = getenv("VIGILCTL");
        sd_bus *bus = client_new();
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        char buf[4096] = "";
        size_t got = 0;
        int out[2], status = -1;
        pid_t pid;

        if (!bus || pipe2(out, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                execl(bin, bin, "--address", address, "logs", "-f", "-n", "0", "b@x", NULL);
                child_exit(127);
        }
        close(out[1]);
        /* Lines flow once vigilctl has subscribed; keep producing until one arrives. */
        for (int i = 0; i < 100 && !strstr(buf, " started\n"); i++) {
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                ssize_t n;

                call(bus, "StartService", &e, &reply, "s", "b@x.service");
                sd_bus_error_free(&e);
                if (poll(&p, 1, 50) <= 0)
                        continue;
                n = read(out[0], buf + got, sizeof(buf) - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t) n;
                buf[got] = '\0';
        }
        tap_ok(strstr(buf, " started\n") != NULL, "vigilctl logs -f prints followed lines");
        call(bus, "StopService", &e, &reply, "s", "b@x.service"); /* ends the stream */
        sd_bus_error_free(&e);
        waitpid(pid, &status, 0);
        close(out[0]);
        tap_inteq(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1,
                  "vigilctl logs -f exits 1 when vigil ends the stream");
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
}

/* vigilctl --address ADDRESS argv...: its exit code, and its stdout and stderr in out. */
static int vigilctl_output(const char *const *argv, char *out, size_t size) {
        const char *bin = getenv("VIGILCTL");
        const char *args[16] = { bin, "--address", address };
        size_t n = 3, got = 0;
        int p[2], status = -1;
        ssize_t k;
        pid_t pid;

        for (; *argv && n < ELEMENTSOF(args) - 1; argv++)
                args[n++] = *argv;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                dup2(p[1], STDERR_FILENO);
                execv(bin, (char **) args);
                child_exit(127);
        }
        close(p[1]);
        while (got < size - 1 && (k = read(p[0], out + got, size - 1 - got)) > 0)
                got += (size_t) k;
        out[got] = '\0';
        close(p[0]);
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* vigilctl start of a service vigil refuses to start: exit 1, and the reason on stderr. */
static void test_vigilctl_refused(void) {
        char out[1024];
        int r;

        r = vigilctl_output((const char *[]){ "start", "c.service", NULL }, out, sizeof(out));
        tap_ok(r == 1 && strstr(out, "cannot start c.service: ResourceEnforcement=required, but "
                                     "CPUWeight= not enforced: cpu controller unavailable"),
               "vigilctl start of a refused service: exit 1 and the reason");
        if (r != 1)
                printf("# exit %d: %s\n", r, out);
}

/* vigilctl update: what it prints, and each way of naming a bundle. */
static void test_vigilctl_update(void) {
        static const char *const forms[] = { ".squashfs", ".manifest", ".manifest.minisig", "" };
        char out[4096], arg[160], moved[128];
        bool ok;
        int r;

        r = vigilctl_output((const char *[]){ "update", "status", NULL }, out, sizeof(out));
        ok = tap_ok(r == 0 && strstr(out, "IMAGE") && strstr(out, "PREVIOUS") &&
                            strstr(out, "game ") &&
                            strstr(out, "on trial, boot 1: waiting for a.service") &&
                            strstr(out, "game 1.2 sha256:cdcdcdcd") &&
                            strstr(out, "crashed ? on trial") && strstr(out, "fresh ") &&
                            strstr(out, "No bundle staged."),
                    "vigilctl update status: the images, the rejected digests, the staged bundles");
        for (char *l = strtok(out, "\n"); !ok && l; l = strtok(NULL, "\n"))
                printf("#   %s\n", l);
        r = vigilctl_output((const char *[]){ "--json", "update", "status", NULL }, out,
                            sizeof(out));
        tap_ok(r == 0 && startswith(out, "{\"images\":[{\"name\":\"game\",\"current\":\"1.1\"") &&
                       strstr(out, "\"trial\":true,\"trial_boots\":1,") &&
                       strstr(out, "\"rejected\":[{\"version\":\"1.2\",\"digest\":\"cdcd") &&
                       strstr(out, "\"trial\":false") && strstr(out, "],\"staged\":[]}\n"),
               "vigilctl --json update status");
        r = vigilctl_output((const char *[]){ "update", "apply", NULL }, out, sizeof(out));
        tap_ok(r == 1 && strstr(out, "game-1.2 installed\n") &&
                       strstr(out, "bad-0.1 rejected: bad-0.1.manifest.minisig: no trusted key") &&
                       strstr(out, "full-1.0 deferred: No space left on device\n"),
               "vigilctl update apply: one line per bundle, exit 1 when any was not installed");
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                snprintf(arg, sizeof(arg), "%s%s", bundle_stem_path, forms[i]);
                r = vigilctl_output((const char *[]){ "update", "stage", arg, NULL }, out,
                                    sizeof(out));
                tap_inteq(r, 0, "vigilctl update stage STEM%s", forms[i]);
        }
        r = vigilctl_output((const char *[]){ "update", "status", NULL }, out, sizeof(out));
        tap_ok(r == 0 && strstr(out, "Staged:\n  game-1.2\n"), "the staged bundle is listed");
        snprintf(arg, sizeof(arg), "%s.manifest.minisig", bundle_stem_path);
        snprintf(moved, sizeof(moved), "%s/moved", bus_doubles_work);
        rename(arg, moved);
        r = vigilctl_output((const char *[]){ "update", "stage", bundle_stem_path, NULL }, out,
                            sizeof(out));
        tap_ok(r == 1 && strstr(out, "cannot open ") &&
                       strstr(out, "game-1.2.manifest.minisig: No such file"),
               "vigilctl update stage without the signature file: exit 1, naming it");
        rename(moved, arg);
}

static void test_vigilctl(void) {
        char missing[160];
        static const struct {
                const char *args[6];
                int code;
        } cases[] = {
                { { "list" }, 0 },
                { { "--json", "list" }, 0 },
                { { "status", "a.service" }, 0 },
                { { "status", "a" }, 0 },
                { { "--json", "status", "a.service" }, 0 },
                { { "status", "fail.service" }, 3 },
                { { "status", "nope.service" }, 1 },
                { { "status" }, 0 }, /* vigil itself */
                { { "status", "a.service", "b.service" }, 2 },
                { { "start", "a.service" }, 0 },
                { { "restart", "a" }, 0 },
                { { "kill", "a.service" }, 0 },
                { { "kill", "a", "SIGKILL" }, 0 },
                { { "kill", "a", "9" }, 0 },
                { { "kill", "a", "SIGBOGUS" }, 2 },
                { { "kill" }, 2 },
                { { "kill", "nope.service" }, 1 },
                { { "stop", "a.service" }, 0 },
                { { "kill", "a.service" }, 1 }, /* not running */
                { { "start", "fail.service" }, 1 },
                { { "start", "c.service" }, 1 },
                { { "start" }, 2 },
                { { "logs", "a.service" }, 0 },
                { { "logs", "a.service", "-n", "1" }, 0 },
                { { "logs", "a.service", "-n", "x" }, 2 },
                { { "logs", "-n" }, 2 },
                { { "reload" }, 0 },
                { { "reload", "x" }, 2 },
                { { "reset-failed" }, 0 },
                { { "reset-failed", "a", "c" }, 0 },
                { { "reset-failed", "nope" }, 1 },
                { { "set-property", "a", "RestartSec=1" }, 0 },
                { { "set-property", "--runtime", "a", "Restart=always" }, 0 },
                { { "set-property", "a", "ExecStart=/x" }, 1 },
                { { "set-property", "a" }, 2 },
                { { "set-property", "a", "=1" }, 2 },
                { { "update", "status" }, 0 },
                { { "--json", "update", "status" }, 0 },
                { { "update", "apply" }, 1 }, /* one rejected, one deferred */
                { { "update", "apply", "--force" }, 0 },
                { { "--json", "update", "apply" }, 1 },
                { { "update", "rollback", "game" }, 0 },
                { { "update", "rollback", "fresh" }, 1 },
                { { "update", "rollback", "nope" }, 1 },
                { { "update", "stage", "/nonexistent/x-1.squashfs" }, 1 },
                { { "update", "rollback" }, 2 },
                { { "update", "rollback", "game", "x" }, 2 },
                { { "update", "rollback", "--force", "game" }, 2 },
                { { "update" }, 2 },
                { { "update", "bogus" }, 2 },
                { { "update", "status", "x" }, 2 },
                { { "update", "apply", "x" }, 2 },
                { { "update", "stage" }, 2 },
                { { "update", "stage", "dir/" }, 2 },
                { { "poweroff", "now" }, 2 },
                { { "bogus" }, 2 },
                { { "--bogus", "list" }, 2 },
        };

        if (!getenv("VIGILCTL")) {
                printf("ok %d - # SKIP set VIGILCTL=path/to/vigilctl for end-to-end checks\n",
                       ++tap_n);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *argv[10] = { "--address", address };
                char desc[128] = "";

                for (size_t j = 0; j < ELEMENTSOF(cases[i].args) && cases[i].args[j]; j++) {
                        argv[2 + j] = cases[i].args[j];
                        strncat(desc, " ", sizeof(desc) - strlen(desc) - 1);
                        strncat(desc, cases[i].args[j], sizeof(desc) - strlen(desc) - 1);
                }
                tap_inteq(run_vigilctl(argv, true), cases[i].code, "vigilctl%s", desc);
        }
        test_vigilctl_follow();
        test_vigilctl_update();
        test_vigilctl_refused();
        snprintf(missing, sizeof(missing), "unix:path=%s.missing", socket_path);
        tap_inteq(run_vigilctl((const char *[]){ "--address", missing, "list", NULL }, true), 1,
                  "vigilctl against a missing socket exits 1");
        tap_inteq(run_vigilctl((const char *[]){ "--version", NULL }, true), 0,
                  "vigilctl --version");
}

/* bus_server_new() replaces only a stale socket: never a live one, never another file. */
static void test_server_new(void) {
        manager m = {};
        bus_server *b = NULL;
        char file[160];
        int fd;

        if (sd_event_new(&m.event) < 0)
                return;
        tap_inteq(bus_server_new(&m, socket_path, &b), -EADDRINUSE,
                  "a socket another server listens on is not taken over");
        snprintf(file, sizeof(file), "%s/file", socket_dir);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        tap_inteq(bus_server_new(&m, file, &b), -EEXIST, "a regular file is not replaced");
        unlink(file);
        sd_event_unref(m.event);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
        (void) st, (void) flag, (void) f;
        (void) remove(path);
        return 0;
}

/* Ids nobody reported are "-", not (gid_t) -1 or pid 0: dbus-daemon gives no gid, and a
 * caller outside vigil's PID namespace has no pid there. */
static void test_audit_ids(void) {
        char dir[] = "/tmp/test-audit-XXXXXX", path[64], line[256] = "";
        access_caller bus_caller = { .uid = 65534, .gid = GID_INVALID };
        access_caller kernel_caller = { .uid = 0, .gid = 0 };
        FILE *f;

        if (!mkdtemp(dir)) {
                tap_ok(false, "a directory for the audit log");
                return;
        }
        snprintf(path, sizeof(path), "%s/audit.log", dir);
        audit_log(dir, &bus_caller, 0, "system-bus", "stop", "a.service", "denied");
        audit_log(dir, &kernel_caller, 42, "private", "reboot", NULL, "ok");
        audit_log(dir, NULL, 0, "private", "start", "b.service", "denied");
        f = fopen(path, "re");
        tap_ok(f && fgets(line, sizeof(line), f) &&
                       strstr(line, " uid=65534 gid=- pid=- via=system-bus verb=stop "
                                    "target=a.service result=denied\n"),
               "audit: no gid from the bus daemon and no pid are \"-\"");
        tap_ok(f && fgets(line, sizeof(line), f) &&
                       strstr(line, " uid=0 gid=0 pid=42 via=private verb=reboot target=- "
                                    "result=ok\n"),
               "audit: known ids are numbers, root's 0 too");
        tap_ok(f && fgets(line, sizeof(line), f) &&
                       strstr(line, " uid=- gid=- pid=- via=private verb=start "),
               "audit: a caller with no credentials is all \"-\"");
        if (f)
                fclose(f);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        char *dir = memcpy(socket_dir, "/tmp/test-bus-XXXXXX", sizeof("/tmp/test-bus-XXXXXX"));
        struct stat st;
        int ready[2], status = -1;
        char c;
        sd_bus *bus;

        setvbuf(stdout, NULL, _IOLBF, 0); /* sanitizers end processes without flushing */
        if (!mkdtemp(dir)) {
                printf("1..0 # SKIP no temporary directory\n");
                return 77;
        }
        snprintf(socket_path, sizeof(socket_path), "%s/private", dir);
        snprintf(bus_doubles_work, sizeof(bus_doubles_work), "/tmp/test-bus-work-XXXXXX");
        if (!mkdtemp(bus_doubles_work)) {
                printf("1..0 # SKIP no temporary directory\n");
                return 77;
        }
        test_conf();
        test_audit_ids();
        snprintf(address, sizeof(address), "unix:path=%s", socket_path);
        /* A stale socket from an "earlier run" must be replaced. */
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
                if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        chmod(socket_dir, 0711);
                chmod(socket_path, 0666);
                if (fd >= 0)
                        close(fd);
        }

        if (pipe2(ready, O_CLOEXEC) < 0)
                return 1;
        fflush(stdout);
        server = fork();
        if (server < 0)
                return 1;
        if (server == 0) {
                close(ready[0]);
                run_server(socket_path, ready[1]);
        }
        close(ready[1]);
        tap_ok(read(ready[0], &c, 1) == 1, "server started");
        close(ready[0]);

        if (stat(socket_path, &st) < 0)
                st.st_mode = 0;
        tap_ok(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600,
               "socket replaces the stale one and is 0600 (%o)", st.st_mode & 07777);

        test_server_new();

        bus = client_new();
        tap_ok(bus != NULL, "client connects");
        if (bus) {
                test_manager(bus);
                test_get_service(bus);
                test_operations(bus);
                test_service_objects(bus);
                test_logs(bus);
                test_follow(bus);
                test_hostile_clients(bus);
                test_update(bus);
                test_access();
                test_vigilctl();
                tap_ok(serves(bus), "the first connection still works at the end");
                sd_bus_flush_close_unref(bus);
        }

        kill(server, SIGTERM);
        waitpid(server, &status, 0);
        tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "server exits cleanly, sanitizers quiet (status %d)",
               WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
        tap_ok(access(socket_path, F_OK) < 0, "bus_server_free() removes the socket");
        rmdir(dir);
        (void) nftw(bus_doubles_work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
