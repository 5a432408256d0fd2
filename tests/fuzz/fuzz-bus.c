/* libFuzzer target for vigil's D-Bus API (init/bus.c) over the manager's test doubles: each
 * input is one or more method calls, built from the bytes, sent by a root client over the
 * private socket and answered in the same process. The first byte of a call picks the
 * method (or a property call, or an object path); what follows gives its arguments:
 * strings of any content and length, signal numbers, booleans, string arrays, and fds of
 * every kind for StageUpdate (a file, a pipe, a socket, a directory, a device, O_PATH).
 * Calls whose arguments are not valid D-Bus (bad UTF-8 or object paths) are refused by
 * sd-bus on the client side and never sent; the rest must get an answer and must not crash,
 * leak or hang the server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-doubles.h"
#include "bus.h"
#include "macro.h"

#define MAX_CALLS 8
#define MAX_STRING 4096
#define MAX_ARRAY 64

typedef struct input {
        const uint8_t *p;
        size_t n;
} input;

static uint8_t take_byte(input *in) {
        uint8_t b = 0;

        if (in->n > 0) {
                b = *in->p++;
                in->n--;
        }
        return b;
}

/* A string: a length byte (x16 when the top bit is set), then that many bytes. */
static char *take_string(input *in) {
        size_t len = take_byte(in), i;
        char *s;

        if (len & 0x80)
                len = (len & 0x7f) * 16;
        if (len > in->n)
                len = in->n;
        if (len > MAX_STRING)
                len = MAX_STRING;
        s = malloc(len + 1);
        if (!s)
                abort();
        for (i = 0; i < len; i++)
                s[i] = (char) (in->p[i] ? in->p[i] : 'x'); /* D-Bus strings hold no NUL */
        s[len] = 0;
        in->p += len;
        in->n -= len;
        return s;
}

/* The service names the doubles know, so that calls reach past the lookup, or fuzzed ones. */
static char *take_name(input *in) {
        static const char *const known[] = { "a.service",    "b@x.service", "c.service",
                                             "fail.service", "a",           "" };
        uint8_t b = take_byte(in);

        if (b < 0xc0)
                return strdup(known[b % ELEMENTSOF(known)]);
        return take_string(in);
}

/* New methods go at the end, so that the corpus keeps calling what it called. */
static const char *const methods[] = {
        "ListServices",
        "GetService",
        "StartService",
        "StopService",
        "RestartService",
        "ReloadService",
        "KillService",
        "ResetFailed",
        "GetLogs",
        "FollowLogs",
        "SetProperties",
        "ReloadUnits",
        "GetCrashRecords",
        "Reboot",
        "PowerOff",
        "NoSuchMethod",
        "Get",
        "GetAll",
        "Set",
        "Introspect",
        "StageUpdate",
        "ApplyUpdates",
        "RollbackImage",
        "GetUpdateStatus",
};

/* Bundle stems and image names the doubles know, or fuzzed ones. */
static char *take_update_name(input *in, bool stem) {
        static const char *const stems[] = { "game-1.2", "big-1.0", "x", "" };
        static const char *const images[] = { "game", "fresh", "nope", "" };
        uint8_t b = take_byte(in);

        if (b < 0xc0)
                return strdup((stem ? stems : images)[b % 4]);
        return take_string(in);
}

/* What StageUpdate may be handed: a bundle file, a pipe, a socket, a directory, a device, an
 * O_PATH fd, a write-only file (opened once in setup). */
static int stage_fds[7];

static sd_bus *client;
static bool ready;

static int open_stage_fds(const char *dir) {
        char file[64];
        int p[2], sp[2], fd;

        snprintf(file, sizeof(file), "%s/game-1.2.manifest", dir);
        fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, "[Bundle]\n", 9) != 9)
                return -EIO;
        stage_fds[6] = fd;
        if (pipe2(p, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        stage_fds[0] = open(file, O_RDONLY | O_CLOEXEC);
        stage_fds[1] = p[0];
        stage_fds[2] = sp[0];
        stage_fds[3] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        stage_fds[4] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        stage_fds[5] = open(dir, O_PATH | O_CLOEXEC);
        for (size_t i = 0; i < ELEMENTSOF(stage_fds); i++)
                if (stage_fds[i] < 0)
                        return -EIO;
        return 0;
}

static int setup(void) {
        char path[] = "/tmp/fuzz-bus-XXXXXX";
        char sock[64];
        int r;

        if (!mkdtemp(path))
                return -errno;
        snprintf(bus_doubles_work, sizeof(bus_doubles_work), "%s", path);
        snprintf(sock, sizeof(sock), "%s/private", path);
        bus_doubles_setup(&fake_manager);
        r = sd_event_new(&fake_manager.event);
        if (r >= 0)
                r = bus_server_new(&fake_manager, sock, &fake_manager.bus);
        if (r >= 0)
                r = sd_bus_new(&client);
        if (r >= 0) {
                char addr[96];

                snprintf(addr, sizeof(addr), "unix:path=%s", sock);
                r = sd_bus_set_address(client, addr);
        }
        if (r >= 0)
                r = sd_bus_set_anonymous(client, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(client, true);
        if (r >= 0)
                r = sd_bus_start(client);
        if (r >= 0)
                r = sd_bus_attach_event(client, fake_manager.event, 0);
        /* Whether fds may be sent is known once the handshake is done: a first call with fds
         * before that would fail on the client side. */
        for (int i = 0; r >= 0 && i < 1000 && sd_bus_is_ready(client) <= 0; i++)
                r = sd_event_run(fake_manager.event, 10 * USEC_PER_MSEC);
        if (r >= 0)
                r = sd_bus_is_ready(client) > 0 ? open_stage_fds(path) : -ETIMEDOUT;
        return r;
}

/* (A pipe FollowLogs hands over is closed with the reply.) */
static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        *(bool *) userdata = true;
        return 0;
}

/* Appends the arguments of method, from in; 0 or a negative errno (the call is not sent). */
static int append_args(sd_bus_message *m, const char *method, input *in) {
        _cleanup_free_ char *name = NULL;

        if (streq(method, "ListServices") || streq(method, "ReloadUnits") ||
            streq(method, "Reboot") || streq(method, "PowerOff") ||
            streq(method, "GetUpdateStatus"))
                return 0;
        if (streq(method, "ApplyUpdates"))
                return sd_bus_message_append(m, "b", take_byte(in) & 1);
        if (streq(method, "StageUpdate")) {
                int fds[3];

                name = take_update_name(in, true);
                for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                        fds[i] = stage_fds[take_byte(in) % ELEMENTSOF(stage_fds)];
                        /* The bundle file is read from where it is: now and then from the start. */
                        if (fds[i] == stage_fds[0] && (take_byte(in) & 1))
                                (void) lseek(fds[i], 0, SEEK_SET);
                }
                return sd_bus_message_append(m, "shhh", name, fds[0], fds[1], fds[2]);
        }
        if (streq(method, "RollbackImage")) {
                name = take_update_name(in, false);
                return sd_bus_message_append(m, "s", name);
        }
        name = take_name(in);
        if (streq(method, "KillService"))
                return sd_bus_message_append(m, "si", name, (int32_t) (int8_t) take_byte(in));
        if (streq(method, "GetLogs") || streq(method, "FollowLogs") ||
            streq(method, "GetCrashRecords"))
                return sd_bus_message_append(m, "su", name,
                                             (uint32_t) take_byte(in) << (take_byte(in) % 32));
        if (streq(method, "SetProperties")) {
                size_t n = take_byte(in) % MAX_ARRAY;
                int r;

                r = sd_bus_message_append(m, "sb", name, take_byte(in) & 1);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "s");
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        _cleanup_free_ char *a = take_string(in);

                        r = sd_bus_message_append(m, "s", a);
                }
                return r >= 0 ? sd_bus_message_close_container(m) : r;
        }
        return sd_bus_message_append(m, "s", name);
}

/* Properties.Get/GetAll/Set: an interface (one of vigil's, mostly), a property name. */
static int append_property_args(sd_bus_message *m, const char *method, input *in) {
        static const char *const interfaces[] = { "org.vigil1.Manager", "org.vigil1.Service" };
        _cleanup_free_ char *iface = NULL, *prop = NULL;
        uint8_t b = take_byte(in);

        iface = b < 0xe0 ? strdup(interfaces[b % ELEMENTSOF(interfaces)]) : take_string(in);
        if (!iface)
                abort();
        if (streq(method, "GetAll"))
                return sd_bus_message_append(m, "s", iface);
        prop = take_string(in);
        if (streq(method, "Get"))
                return sd_bus_message_append(m, "ss", iface, prop);
        return sd_bus_message_append(m, "ssv", iface, prop, "s", prop);
}

static void one_call(input *in) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *method = methods[take_byte(in) % ELEMENTSOF(methods)];
        const char *interface = "org.vigil1.Manager", *path = "/org/vigil1";
        _cleanup_free_ char *obj = NULL;
        bool done = false;
        int r;

        if (streq(method, "Get") || streq(method, "GetAll") || streq(method, "Set")) {
                interface = "org.freedesktop.DBus.Properties";
                /* a service object, by its escaped name, or the manager */
                if (take_byte(in) & 1) {
                        _cleanup_free_ char *n = take_name(in);

                        if (sd_bus_path_encode("/org/vigil1/service", n, &obj) < 0)
                                return;
                        path = obj;
                }
        } else if (streq(method, "Introspect")) {
                interface = "org.freedesktop.DBus.Introspectable";
                obj = take_string(in);
                path = obj;
        }
        if (sd_bus_message_new_method_call(client, &m, NULL, path, interface, method) < 0)
                return; /* not a valid object path: sd-bus refuses to build it */
        if (streq(interface, "org.freedesktop.DBus.Properties"))
                r = append_property_args(m, method, in);
        else if (streq(method, "Introspect"))
                r = 0;
        else
                r = append_args(m, method, in);
        if (r < 0)
                return;
        if (sd_bus_call_async(client, NULL, m, on_reply, &done, 5 * USEC_PER_SEC) < 0)
                return;
        /* Both ends live on one event loop: run it until the answer is in. */
        for (int i = 0; i < 10000 && !done; i++)
                if (sd_event_run(fake_manager.event, 100 * USEC_PER_MSEC) < 0)
                        abort();
        if (!done)
                abort(); /* the server never answered: a hang */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        input in = { data, size };

        if (!ready) {
                if (setup() < 0)
                        abort();
                ready = true;
        }
        for (int i = 0; i < MAX_CALLS && in.n > 0; i++)
                one_call(&in);
        return 0;
}
