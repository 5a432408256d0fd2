/* vigilctl: the admin command line for vigil. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "config.h"
#include "strv.h"
#include "unit.h"
#include "value.h"

#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3 /* status: the service is not active (systemctl's code) */

#define DEFAULT_ADDRESS "unix:path=/run/vigil/private"
#define SYSTEM_BUS_ADDRESS "unix:path=/run/dbus/system_bus_socket"
#define BUS_NAME "org.vigil1"
#define MANAGER_PATH "/org/vigil1"
#define MANAGER_INTERFACE "org.vigil1.Manager"
#define SERVICE_INTERFACE "org.vigil1.Service"

static const char *arg_address = DEFAULT_ADDRESS;
static const char *arg_destination; /* --system: "org.vigil1" on the bus; NULL: peer to peer */
static bool arg_json;
static bool arg_runtime;

static void help(FILE *f) {
        fprintf(f,
                "Usage: vigilctl [OPTIONS] VERB [ARGS...]\n"
                "\n"
                "Verbs:\n"
                "  list                               list services\n"
                "  status [NAME]                      show a service and its last log lines,\n"
                "                                     or vigil itself and its boot timeline\n"
                "                                     (exit 3 when it is not active)\n"
                "  start|stop|restart NAME...         change what a service should be doing\n"
                "  kill NAME [SIGNAL]                 signal every process of a service (SIGTERM)\n"
                "  logs NAME [-f] [-n N]              print the last N (50) log lines; -f then\n"
                "                                     follows new lines until interrupted\n"
                "  set-property NAME KEY=VALUE...     change restart and resource settings live\n"
                "                                     (RestartSec=, CPUWeight=, MemoryMax=...);\n"
                "                                     kept across reboots unless --runtime\n"
                "  reload                             re-read unit and policy files; only\n"
                "                                     changed services restart\n"
                "  reset-failed [NAME...]             forget failures (all services without NAME)\n"
                "  reboot | poweroff                  stop every service, then reboot/power off\n"
                "  update stage BUNDLE                stage a signed image update: BUNDLE is\n"
                "                                     STEM.squashfs, STEM.manifest,\n"
                "                                     STEM.manifest.minisig or the STEM path\n"
                "  update apply [--force]             install the staged bundles (--force: also\n"
                "                                     the same or an older version); exit 1 when\n"
                "                                     any was rejected or deferred\n"
                "  update status                      images: current, previous and trial\n"
                "                                     versions, rejected digests; staged bundles\n"
                "  update rollback NAME               go back to the previous version of image\n"
                "                                     NAME\n"
                "  verify [--policy-dir DIR] FILE...  check unit (.service) and policy (.policy)\n"
                "                                     files without running anything\n"
                "\n"
                "A NAME without a unit suffix means NAME.service.\n"
                "\n"
                "Options:\n"
                "      --address ADDRESS  vigil's D-Bus address (default " DEFAULT_ADDRESS ")\n"
                "      --system           through the system bus (" BUS_NAME "), not the private\n"
                "                         socket; --address then names the bus\n"
                "      --json             machine-readable output of list, status and\n"
                "                         update status|apply\n"
                "      --runtime          set-property: until the next boot only\n"
                "  -h, --help             show this help\n"
                "      --version          show the version\n");
}

/* Exit 0 when every file loads, 1 when any does not, 2 on usage errors. */
static int verb_verify(int argc, char **argv) {
        static const struct option options[] = {
                { "policy-dir", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        unit_load_options opts = {};
        bool failed = false;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        opts.policy_dir = optarg;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                fprintf(stderr, "vigilctl verify: no files given\n");
                return EXIT_USAGE;
        }

        for (int i = optind; i < argc; i++) {
                _cleanup_unit_free_ unit *u = NULL;
                diag_list diags = {};
                const char *path = argv[i];
                int r;

                if (endswith(path, ".policy"))
                        r = policy_check_file(path, &diags);
                else if (endswith(path, ".service"))
                        r = unit_load_file(path, NULL, &opts, &diags, &u);
                else {
                        diag_add(&diags, DIAG_ERROR, path, 0,
                                 "not a unit (.service) or policy (.policy) file");
                        r = -EINVAL;
                }
                diag_list_print(&diags, stderr);
                if (r < 0 || diags.n_errors > 0)
                        failed = true;
                diag_list_done(&diags);
        }
        return failed ? 1 : 0;
}

/* ---- talking to vigil ------------------------------------------------------------------- */

/* Options every D-Bus verb accepts before or after its arguments: true when c was one. */
static bool common_option(int c) {
        if (c == 'A')
                arg_address = optarg;
        else if (c == 'S')
                arg_destination = BUS_NAME;
        else if (c == 'J')
                arg_json = true;
        else if (c == 'R')
                arg_runtime = true;
        else
                return false;
        return true;
}

#define COMMON_OPTIONS                                                                             \
        { "address", required_argument, NULL, 'A' }, { "system", no_argument, NULL, 'S' },         \
                { "json", no_argument, NULL, 'J' }, { "runtime", no_argument, NULL, 'R' }, {       \
                "help", no_argument, NULL, 'h'                                                     \
        }

static const char *address_display(void) {
        const char *p = startswith(arg_address, "unix:path=");

        return p && !strchr(p, ',') ? p : arg_address;
}

/* Peer to peer: vigil's private socket has no bus daemon behind it, so no Hello(). With
 * --system, a client of the bus daemon that talks to org.vigil1. */
static int bus_connect(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (arg_destination && streq(arg_address, DEFAULT_ADDRESS))
                arg_address = SYSTEM_BUS_ADDRESS;
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, arg_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, arg_destination != NULL);
        /* vigil authorizes by the socket's peer uid; ANONYMOUS also works when vigil runs in
         * another PID namespace (--sandbox), where EXTERNAL cannot be checked. The bus daemon
         * wants EXTERNAL, and hands vigil the credentials it checked. */
        if (r >= 0 && !arg_destination)
                r = sd_bus_set_anonymous(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "vigilctl: cannot connect to vigil at %s: %s\n", address_display(),
                        strerror(-r));
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int call_failed(const sd_bus_error *e, int r) {
        if (sd_bus_error_is_set(e) && e->message)
                fprintf(stderr, "vigilctl: %s\n", e->message);
        else
                fprintf(stderr, "vigilctl: talking to vigil at %s failed: %s\n", address_display(),
                        strerror(-r));
        return 1;
}

static int bad_reply(int r) {
        fprintf(stderr, "vigilctl: unexpected reply from vigil: %s\n", strerror(-r));
        return 1;
}

static int call_manager(sd_bus *bus, const char *method, sd_bus_message **reply, const char *types,
                        ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = sd_bus_call_methodv(bus, arg_destination, MANAGER_PATH, MANAGER_INTERFACE, method, &e,
                                reply, types, ap);
        va_end(ap);
        if (r < 0)
                call_failed(&e, r);
        sd_bus_error_free(&e);
        return r;
}

/* "foo" means foo.service, as with systemctl. */
static char *service_name(const char *arg) {
        char *n;

        if (unit_name_suffix(arg))
                return strdup(arg);
        if (asprintf(&n, "%s.service", arg) < 0)
                return NULL;
        return n;
}

/* ---- output ----------------------------------------------------------------------------- */

static bool on_tty(void) {
        static int cached = -1;

        if (cached < 0)
                cached = isatty(STDOUT_FILENO);
        return cached;
}

#define ANSI_RED "\033[0;31m"
#define ANSI_GREEN "\033[0;32m"
#define ANSI_BOLD "\033[1m"
#define ANSI_RESET "\033[0m"

static const char *state_color(const char *active) {
        if (!on_tty())
                return "";
        if (streq(active, "active") || streq(active, "reloading"))
                return ANSI_GREEN;
        if (streq(active, "failed"))
                return ANSI_RED;
        return "";
}

/* Text from services (descriptions, STATUS=, logs) reaches a terminal without its control
 * characters: a log line must not be able to drive the admin's terminal. */
static void print_text(const char *s, size_t n) {
        if (!on_tty()) {
                fwrite(s, 1, n, stdout);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                putchar((c < ' ' && c != '\t' && c != '\n') || c == 0x7f ? '?' : c);
        }
}

static void print_str(const char *s) {
        print_text(s, strlen(s));
}

/* Terminal columns, roughly: UTF-8 continuation bytes take none. */
static size_t text_width(const char *s) {
        size_t w = 0;

        for (; *s; s++)
                w += ((unsigned char) *s & 0xc0) != 0x80;
        return w;
}

static void print_padded(const char *s, size_t width, const char *color) {
        size_t w = text_width(s);

        fputs(color, stdout);
        print_str(s);
        if (*color)
                fputs(ANSI_RESET, stdout);
        for (; w < width; w++)
                putchar(' ');
}

static void json_string(const char *s) {
        putchar('"');
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                switch (c) {
                case '"':
                        fputs("\\\"", stdout);
                        break;
                case '\\':
                        fputs("\\\\", stdout);
                        break;
                case '\n':
                        fputs("\\n", stdout);
                        break;
                case '\r':
                        fputs("\\r", stdout);
                        break;
                case '\t':
                        fputs("\\t", stdout);
                        break;
                default:
                        /* D-Bus strings are valid UTF-8, so other bytes pass as they are. */
                        if (c < ' ' || c == 0x7f)
                                printf("\\u%04x", c);
                        else
                                putchar(c);
                }
        }
        putchar('"');
}

static void json_field(const char *key, const char *value, bool last) {
        printf("\"%s\":", key);
        json_string(value);
        if (!last)
                putchar(',');
}

/* ---- list ------------------------------------------------------------------------------- */

typedef struct service_row {
        const char *name, *description, *active, *sub, *result;
        uint32_t main_pid, restarts;
} service_row;

static void print_table(const service_row *rows, size_t n) {
        static const char *const headers[] = {
                "NAME", "ACTIVE", "SUB", "RESULT", "PID", "RESTARTS"
        };
        size_t w[ELEMENTSOF(headers)];
        char num[2][16];

        for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                w[c] = strlen(headers[c]);
        for (size_t i = 0; i < n; i++) {
                const char *cells[] = { rows[i].name, rows[i].active, rows[i].sub, rows[i].result };

                for (size_t c = 0; c < ELEMENTSOF(cells); c++)
                        if (text_width(cells[c]) > w[c])
                                w[c] = text_width(cells[c]);
                snprintf(num[0], sizeof(num[0]), "%" PRIu32, rows[i].main_pid);
                if (strlen(num[0]) > w[4])
                        w[4] = strlen(num[0]);
        }

        fputs(on_tty() ? ANSI_BOLD : "", stdout);
        for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                printf("%-*s ", (int) w[c], headers[c]);
        printf("DESCRIPTION%s\n", on_tty() ? ANSI_RESET : "");

        for (size_t i = 0; i < n; i++) {
                const service_row *r = &rows[i];
                const char *color = state_color(r->active);

                snprintf(num[0], sizeof(num[0]), "%" PRIu32, r->main_pid);
                snprintf(num[1], sizeof(num[1]), "%" PRIu32, r->restarts);
                print_padded(r->name, w[0] + 1, "");
                print_padded(r->active, w[1] + 1, color);
                print_padded(r->sub, w[2] + 1, color);
                print_padded(r->result, w[3] + 1, "");
                print_padded(r->main_pid > 0 ? num[0] : "-", w[4] + 1, "");
                print_padded(num[1], w[5] + 1, "");
                print_str(r->description);
                putchar('\n');
        }
        if (on_tty())
                printf("\n%zu service%s listed.\n", n, n == 1 ? "" : "s");
}

/* JSON: [{"name", "description", "active", "sub", "result", "main_pid", "restarts"}...] */
static void print_list_json(const service_row *rows, size_t n) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
                printf("%s{", i > 0 ? "," : "");
                json_field("name", rows[i].name, false);
                json_field("description", rows[i].description, false);
                json_field("active", rows[i].active, false);
                json_field("sub", rows[i].sub, false);
                json_field("result", rows[i].result, false);
                printf("\"main_pid\":%" PRIu32 ",\"restarts\":%" PRIu32 "}", rows[i].main_pid,
                       rows[i].restarts);
        }
        puts("]");
}

/* Verbs that take only the common options: parses them, and returns the index of the first
 * argument, or -1 after printing a usage error (or 0 after --help). */
static int parse_common(int argc, char **argv) {
        static const struct option options[] = { COMMON_OPTIONS, {} };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        return -1;
                }
        }
        return optind;
}

/* Options and nothing else (argv[0] is the verb): -1 to go on, else the exit status. */
static int parse_no_operands(int argc, char **argv) {
        int r = parse_common(argc, argv);

        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (r < argc) {
                fprintf(stderr, "vigilctl %s: takes no arguments\n", argv[0]);
                return EXIT_USAGE;
        }
        return -1;
}

static int verb_list(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ service_row *rows = NULL;
        service_row row;
        size_t n = 0;
        int r;

        r = parse_no_operands(argc, argv);
        if (r >= 0)
                return r;
        if (bus_connect(&bus) < 0)
                return 1;
        if (call_manager(bus, "ListServices", &reply, "") < 0)
                return 1;

        r = sd_bus_message_enter_container(reply, 'a', "(sssssuu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssuu)", &row.name, &row.description,
                                                  &row.active, &row.sub, &row.result, &row.main_pid,
                                                  &row.restarts)) > 0) {
                service_row *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n++] = row;
        }
        if (r < 0)
                return bad_reply(r);

        if (arg_json)
                print_list_json(rows, n);
        else
                print_table(rows, n);
        return 0;
}

/* ---- status ----------------------------------------------------------------------------- */

typedef struct service_info {
        const char *name, *description, *state, *sub_state, *result, *status_text, *unit_path;
        const char *image, *image_version;
        uint32_t main_pid, restarts;
        int32_t last_exit_code, last_exit_signal;
        uint64_t active_since;
        char **settings; /* key, value, source, key, value, source... */
        char **warnings;
} service_info;

static void service_info_done(service_info *i) {
        i->settings = strv_free(i->settings);
        i->warnings = strv_free(i->warnings);
}

/* Settings a(sss) into a flat list. */
static int read_settings(sd_bus_message *m, char ***ret) {
        const char *k, *v, *src;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(sss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(sss)", &k, &v, &src)) > 0)
                if (strv_extend(ret, k) < 0 || strv_extend(ret, v) < 0 || strv_extend(ret, src) < 0)
                        return -ENOMEM;
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads Properties.GetAll's a{sv}; unknown properties are skipped, so vigil may add some. */
static int read_service_info(sd_bus_message *m, service_info *i) {
        static const struct {
                const char *name;
                char type;
                size_t offset;
        } table[] = {
                { "Name", 's', offsetof(service_info, name) },
                { "Description", 's', offsetof(service_info, description) },
                { "State", 's', offsetof(service_info, state) },
                { "SubState", 's', offsetof(service_info, sub_state) },
                { "Result", 's', offsetof(service_info, result) },
                { "StatusText", 's', offsetof(service_info, status_text) },
                { "MainPID", 'u', offsetof(service_info, main_pid) },
                { "Restarts", 'u', offsetof(service_info, restarts) },
                { "ActiveSince", 't', offsetof(service_info, active_since) },
                { "UnitPath", 's', offsetof(service_info, unit_path) },
                { "Image", 's', offsetof(service_info, image) },
                { "ImageVersion", 's', offsetof(service_info, image_version) },
                { "LastExitCode", 'i', offsetof(service_info, last_exit_code) },
                { "LastExitSignal", 'i', offsetof(service_info, last_exit_signal) },
        };
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                size_t k;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                for (k = 0; k < ELEMENTSOF(table); k++)
                        if (streq(table[k].name, key))
                                break;
                if (k < ELEMENTSOF(table)) {
                        char sig[2] = { table[k].type, '\0' };

                        r = sd_bus_message_enter_container(m, 'v', sig);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read_basic(m, table[k].type,
                                                      (char *) i + table[k].offset);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                } else if (streq(key, "Settings") || streq(key, "Warnings")) {
                        bool settings = streq(key, "Settings");

                        r = sd_bus_message_enter_container(m, 'v', settings ? "a(sss)" : "as");
                        if (r < 0)
                                return r;
                        r = settings ? read_settings(m, &i->settings)
                                     : sd_bus_message_read_strv(m, &i->warnings);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                } else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void print_since(uint64_t usec) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct timespec now;
        struct tm tm;
        char when[64], ago[64];

        if (!localtime_r(&t, &tm) ||
            strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return;
        printf(" since %s", when);
        if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
                uint64_t n = (uint64_t) now.tv_sec * USEC_PER_SEC;

                if (n >= usec) {
                        /* Whole seconds, and two units ("3d 4h") are enough for "ago". */
                        uint64_t d = (n - usec) / USEC_PER_SEC * USEC_PER_SEC;
                        char *space;

                        format_timespan(ago, sizeof(ago), d);
                        space = strchr(ago, ' ');
                        if (space && (space = strchr(space + 1, ' ')))
                                *space = '\0';
                        printf("; %s ago", d > 0 ? ago : "0s");
                }
        }
}

/* The newest crash record's Time=, Result= and Exit= as one line. */
static void print_crash_summary(char **records) {
        const char *keys[] = { "Time=", "Result=", "Exit=", "Uptime=" };

        if (!records || !*records)
                return;
        fputs("  Last crash:", stdout);
        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                for (const char *l = *records; l && *l;) {
                        const char *e = strchrnul(l, '\n');

                        if (startswith(l, keys[k])) {
                                putchar(' ');
                                print_text(l, (size_t) (e - l));
                                break;
                        }
                        l = *e ? e + 1 : e;
                }
        putchar('\n');
}

static void print_status(const service_info *i, char **logs, char **crashes) {
        const char *color = state_color(i->state);

        printf("%s●%s ", color, *color ? ANSI_RESET : "");
        print_str(i->name);
        if (!isempty(i->description)) {
                fputs(" - ", stdout);
                print_str(i->description);
        }
        printf("\n     Active: %s%s (%s)%s", color, i->state, i->sub_state,
               *color ? ANSI_RESET : "");
        if (i->active_since > 0)
                print_since(i->active_since);
        putchar('\n');
        if (i->main_pid > 0)
                printf("   Main PID: %" PRIu32 "\n", i->main_pid);
        printf("   Restarts: %" PRIu32 "\n", i->restarts);
        printf("     Result: %s\n", i->result);
        if (i->last_exit_signal > 0)
                printf("  Last exit: signal %s\n", signal_to_string(i->last_exit_signal) ?: "?");
        else if (i->last_exit_code >= 0)
                printf("  Last exit: status %" PRIi32 "\n", i->last_exit_code);
        if (!isempty(i->status_text)) {
                fputs("     Status: \"", stdout);
                print_str(i->status_text);
                fputs("\"\n", stdout);
        }
        if (!isempty(i->unit_path)) {
                fputs("       Unit: ", stdout);
                print_str(i->unit_path);
                putchar('\n');
        }
        if (!isempty(i->image)) {
                fputs("      Image: ", stdout);
                print_str(i->image);
                if (!isempty(i->image_version)) {
                        putchar(' ');
                        print_str(i->image_version);
                }
                putchar('\n');
        }
        print_crash_summary(crashes);
        STRV_FOREACH(w, i->warnings) {
                fputs(on_tty() ? ANSI_RED "    Warning: " ANSI_RESET : "    Warning: ", stdout);
                print_str(*w);
                putchar('\n');
        }
        if (i->settings) {
                size_t w = 0;

                for (char **k = i->settings; k[0] && k[1] && k[2]; k += 3)
                        if (strlen(k[0]) > w)
                                w = strlen(k[0]);
                fputs("   Settings:\n", stdout);
                for (char **k = i->settings; k[0] && k[1] && k[2]; k += 3) {
                        printf("     %-*s = ", (int) w, k[0]);
                        print_str(k[1]);
                        fputs(on_tty() ? "  \033[2m(" : "  (", stdout);
                        print_str(k[2]);
                        fputs(on_tty() ? ")" ANSI_RESET "\n" : ")\n", stdout);
                }
        }
        if (logs && *logs) {
                putchar('\n');
                STRV_FOREACH(l, logs) {
                        print_str(*l);
                        putchar('\n');
                }
        }
}

/* JSON: {"name", "description", "active", "sub", "result", "main_pid", "restarts",
 * "active_since" (µs since the epoch, 0 when not running), "status_text", "logs": [...]} */
static void print_status_json(const service_info *i, char **logs, char **crashes) {
        putchar('{');
        json_field("name", i->name, false);
        json_field("description", i->description, false);
        json_field("active", i->state, false);
        json_field("sub", i->sub_state, false);
        json_field("result", i->result, false);
        printf("\"main_pid\":%" PRIu32 ",\"restarts\":%" PRIu32 ",\"active_since\":%" PRIu64 ",",
               i->main_pid, i->restarts, i->active_since);
        json_field("status_text", i->status_text, false);
        json_field("unit_path", i->unit_path, false);
        json_field("image", i->image, false);
        json_field("image_version", i->image_version, false);
        printf("\"last_exit_code\":%" PRIi32 ",\"last_exit_signal\":%" PRIi32 ",",
               i->last_exit_code, i->last_exit_signal);
        fputs("\"settings\":[", stdout);
        for (char **k = i->settings; k && k[0] && k[1] && k[2]; k += 3) {
                printf("%s{", k == i->settings ? "" : ",");
                json_field("key", k[0], false);
                json_field("value", k[1], false);
                json_field("source", k[2], true);
                putchar('}');
        }
        fputs("],\"warnings\":[", stdout);
        STRV_FOREACH(w, i->warnings) {
                if (w != i->warnings)
                        putchar(',');
                json_string(*w);
        }
        fputs("],\"crashes\":[", stdout);
        STRV_FOREACH(c, crashes) {
                if (c != crashes)
                        putchar(',');
                json_string(*c);
        }
        fputs("],\"logs\":[", stdout);
        STRV_FOREACH(l, logs) {
                if (l != logs)
                        putchar(',');
                json_string(*l);
        }
        puts("]}");
}

static int manager_u64(sd_bus *bus, const char *property, uint64_t *ret) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_trivial(bus, NULL, MANAGER_PATH, MANAGER_INTERFACE, property, &e,
                                        't', ret);
        if (r < 0)
                call_failed(&e, r);
        sd_bus_error_free(&e);
        return r;
}

/* "vigilctl status" without a name: the manager and its boot timeline. */
static int manager_status(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *version = NULL;
        uint64_t exec = 0, loaded = 0, finished = 0;
        uint32_t n = 0;
        char a[64], b[64];
        int r;

        r = sd_bus_get_property_string(bus, NULL, MANAGER_PATH, MANAGER_INTERFACE, "Version", &e,
                                       &version);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, NULL, MANAGER_PATH, MANAGER_INTERFACE,
                                                "NServices", &e, 'u', &n);
        if (r < 0) {
                call_failed(&e, r);
                sd_bus_error_free(&e);
                return 1;
        }
        if (manager_u64(bus, "ExecTimestampMonotonic", &exec) < 0 ||
            manager_u64(bus, "UnitsLoadTimestampMonotonic", &loaded) < 0 ||
            manager_u64(bus, "FinishTimestampMonotonic", &finished) < 0)
                return 1;
        if (arg_json) {
                printf("{");
                json_field("version", version, false);
                printf("\"services\":%" PRIu32 ",\"exec_usec\":%" PRIu64
                       ",\"units_loaded_usec\":%" PRIu64 ",\"finished_usec\":%" PRIu64 "}\n",
                       n, exec, loaded, finished);
                return 0;
        }
        printf("vigil %s, %u services\n", version, n);
        printf("   Boot: units loaded after %s, ",
               loaded ? format_timespan(a, sizeof(a), loaded - exec) : "-");
        if (finished)
                printf("all started after %s\n", format_timespan(b, sizeof(b), finished - exec));
        else
                printf("still starting\n");
        return 0;
}

static int verb_status(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *path_reply = NULL, *props = NULL,
                                                        *log_reply = NULL, *crash_reply = NULL;
        _cleanup_strv_free_ char **logs = NULL, **crashes = NULL;
        _cleanup_free_ char *name = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        service_info info = { .name = "",
                              .description = "",
                              .state = "",
                              .sub_state = "",
                              .result = "",
                              .status_text = "",
                              .unit_path = "",
                              .image = "",
                              .image_version = "",
                              .last_exit_code = -1 };
        const char *path;
        int r;

        r = parse_common(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (argc - r == 0) {
                if (bus_connect(&bus) < 0)
                        return 1;
                return manager_status(bus);
        }
        if (argc - r != 1) {
                fprintf(stderr, "vigilctl status: expects at most one service name\n");
                return EXIT_USAGE;
        }
        name = service_name(argv[r]);
        if (!name)
                return 1;
        if (bus_connect(&bus) < 0)
                return 1;
        if (call_manager(bus, "GetService", &path_reply, "s", name) < 0)
                return 1;
        r = sd_bus_message_read(path_reply, "o", &path);
        if (r < 0)
                return bad_reply(r);
        r = sd_bus_call_method(bus, arg_destination, path, "org.freedesktop.DBus.Properties",
                               "GetAll", &e, &props, "s", SERVICE_INTERFACE);
        if (r < 0) {
                call_failed(&e, r);
                sd_bus_error_free(&e);
                return 1;
        }
        r = read_service_info(props, &info);
        if (r < 0) {
                service_info_done(&info);
                return bad_reply(r);
        }
        /* The log is a bonus: a status without it is still a status. */
        if (call_manager(bus, "GetLogs", &log_reply, "su", name, (uint32_t) 10) >= 0)
                (void) sd_bus_message_read_strv(log_reply, &logs);
        if (call_manager(bus, "GetCrashRecords", &crash_reply, "su", name, (uint32_t) 1) >= 0)
                (void) sd_bus_message_read_strv(crash_reply, &crashes);

        if (arg_json)
                print_status_json(&info, logs, crashes);
        else
                print_status(&info, logs, crashes);
        r = streq(info.state, "active") || streq(info.state, "reloading") ? 0 : EXIT_NOT_RUNNING;
        service_info_done(&info);
        return r;
}

/* ---- start, stop, restart --------------------------------------------------------------- */

static int verb_operation(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *method = streq(argv[0], "start")  ? "StartService"
                             : streq(argv[0], "stop") ? "StopService"
                                                      : "RestartService";
        bool failed = false;
        int first;

        first = parse_common(argc, argv);
        if (first <= 0)
                return first < 0 ? EXIT_USAGE : 0;
        if (first >= argc) {
                fprintf(stderr, "vigilctl %s: expects a service name\n", argv[0]);
                return EXIT_USAGE;
        }
        if (bus_connect(&bus) < 0)
                return 1;
        for (int i = first; i < argc; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_free_ char *name = service_name(argv[i]);

                if (!name || call_manager(bus, method, &reply, "s", name) < 0)
                        failed = true;
        }
        return failed ? 1 : 0;
}

/* kill NAME [SIGNAL]: the signal (a name or number, default SIGTERM) to every process. */
static int verb_kill(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *name = NULL;
        int first, sig = SIGTERM;

        first = parse_common(argc, argv);
        if (first <= 0)
                return first < 0 ? EXIT_USAGE : 0;
        if (argc - first < 1 || argc - first > 2) {
                fprintf(stderr, "vigilctl kill: expects a service name and optionally a signal\n");
                return EXIT_USAGE;
        }
        if (argc - first == 2 && parse_signal(argv[first + 1], &sig) < 0) {
                fprintf(stderr, "vigilctl kill: \"%s\" is not a signal name or number\n",
                        argv[first + 1]);
                return EXIT_USAGE;
        }
        name = service_name(argv[first]);
        if (!name || bus_connect(&bus) < 0)
                return 1;
        return call_manager(bus, "KillService", &reply, "si", name, (int32_t) sig) < 0 ? 1 : 0;
}

/* ---- logs ------------------------------------------------------------------------------- */

static int parse_lines(const char *s, uint32_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* Copies the followed stream to stdout until vigil closes it (or we are interrupted). */
static int follow_stream(int fd) {
        char buf[65536];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "vigilctl: reading the log stream failed: %s\n",
                                strerror(errno));
                        return 1;
                }
                if (n == 0) {
                        fprintf(stderr, "vigilctl: vigil ended the log stream\n");
                        return 1;
                }
                print_text(buf, (size_t) n);
                if (fflush(stdout) != 0)
                        return 1;
        }
}

static int verb_logs(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "follow", no_argument, NULL, 'f' },
                { "lines", required_argument, NULL, 'n' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *follow_reply = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -1;
        uint32_t n = 50;
        bool follow = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hfn:", options, NULL)) >= 0) {
                if (common_option(c))
                        continue;
                switch (c) {
                case 'f':
                        follow = true;
                        break;
                case 'n':
                        if (parse_lines(optarg, &n) < 0) {
                                fprintf(stderr, "vigilctl logs: invalid line count \"%s\"\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        }
        if (argc - optind != 1) {
                fprintf(stderr, "vigilctl logs: expects one service name\n");
                return EXIT_USAGE;
        }
        name = service_name(argv[optind]);
        if (!name)
                return 1;
        if (bus_connect(&bus) < 0)
                return 1;

        /* Subscribe before reading the tail: a line that lands in between may show twice,
         * but none goes missing. */
        if (follow) {
                int f;

                if (call_manager(bus, "FollowLogs", &follow_reply, "s", name) < 0)
                        return 1;
                r = sd_bus_message_read(follow_reply, "h", &f);
                if (r < 0)
                        return bad_reply(r);
                fd = fcntl(f, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return bad_reply(-errno);
        }
        if (n > 0) {
                if (call_manager(bus, "GetLogs", &reply, "su", name, n) < 0)
                        return 1;
                r = sd_bus_message_read_strv(reply, &lines);
                if (r < 0)
                        return bad_reply(r);
                STRV_FOREACH(l, lines) {
                        print_str(*l);
                        putchar('\n');
                }
        }
        if (!follow)
                return 0;
        fflush(stdout);
        bus = sd_bus_flush_close_unref(bus); /* the stream does not need the connection */
        return follow_stream(fd);
}

/* ---- reload, reset-failed, reboot, poweroff, set-property ------------------------------- */

/* reload: ReloadUnits(); prints what changed. Exit 1 (and each problem on stderr) when a
 * file has an error: then nothing changed. */
static int verb_reload(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **changes = NULL;
        int r;

        r = parse_no_operands(argc, argv);
        if (r >= 0)
                return r;
        if (bus_connect(&bus) < 0)
                return 1;
        if (call_manager(bus, "ReloadUnits", &reply, "") < 0)
                return 1;
        r = sd_bus_message_read_strv(reply, &changes);
        if (r < 0)
                return bad_reply(r);
        STRV_FOREACH(c, changes) {
                print_str(*c);
                putchar('\n');
        }
        if (!changes && on_tty())
                puts("No unit changed.");
        return 0;
}

/* reset-failed [NAME...]: without names, every failed service. */
static int verb_reset_failed(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool failed = false;
        int first;

        first = parse_common(argc, argv);
        if (first <= 0)
                return first < 0 ? EXIT_USAGE : 0;
        if (bus_connect(&bus) < 0)
                return 1;
        if (first >= argc) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

                return call_manager(bus, "ResetFailed", &reply, "s", "") < 0 ? 1 : 0;
        }
        for (int i = first; i < argc; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_free_ char *name = service_name(argv[i]);

                if (!name || call_manager(bus, "ResetFailed", &reply, "s", name) < 0)
                        failed = true;
        }
        return failed ? 1 : 0;
}

static int verb_shutdown(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = parse_no_operands(argc, argv);
        if (r >= 0)
                return r;
        if (bus_connect(&bus) < 0)
                return 1;
        return call_manager(bus, streq(argv[0], "reboot") ? "Reboot" : "PowerOff", &reply, "") < 0
                       ? 1
                       : 0;
}

/* set-property NAME KEY=VALUE...: values in unit-file syntax, sent as strings. */
static int verb_set_property(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *name = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int first, r;

        first = parse_common(argc, argv);
        if (first <= 0)
                return first < 0 ? EXIT_USAGE : 0;
        if (argc - first < 2) {
                fprintf(stderr, "vigilctl set-property: expects a service name and "
                                "KEY=VALUE assignments\n");
                return EXIT_USAGE;
        }
        for (int i = first + 1; i < argc; i++) {
                const char *eq = strchr(argv[i], '=');

                if (!eq || eq == argv[i]) {
                        fprintf(stderr, "vigilctl set-property: \"%s\" is not KEY=VALUE\n",
                                argv[i]);
                        return EXIT_USAGE;
                }
        }
        name = service_name(argv[first]);
        if (!name || bus_connect(&bus) < 0)
                return 1;
        r = sd_bus_message_new_method_call(bus, &m, arg_destination, MANAGER_PATH,
                                           MANAGER_INTERFACE, "SetProperties");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", name, (int) arg_runtime);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        for (int i = first + 1; r >= 0 && i < argc; i++) {
                _cleanup_free_ char *key =
                        strndup(argv[i], (size_t) (strchr(argv[i], '=') - argv[i]));

                if (!key)
                        r = -ENOMEM;
                else
                        r = sd_bus_message_append(m, "(sv)", key, "s", strchr(argv[i], '=') + 1);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bad_reply(r);
        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0)
                call_failed(&e, r);
        sd_bus_error_free(&e);
        return r < 0 ? 1 : 0;
}

/* ---- update ----------------------------------------------------------------------------- */

/* Copying or verifying a large image takes a while: wait for vigil's answer this long. */
#define UPDATE_CALL_TIMEOUT (30 * USEC_PER_MINUTE)

static const char *const bundle_suffixes[] = { ".squashfs", ".manifest.minisig", ".manifest" };

/* BUNDLE is any of its three files or the STEM path itself; returns that path (malloc'ed). */
static char *bundle_prefix(const char *arg) {
        size_t n = strlen(arg);

        for (size_t i = 0; i < ELEMENTSOF(bundle_suffixes); i++)
                if (endswith(arg, bundle_suffixes[i])) {
                        n -= strlen(bundle_suffixes[i]);
                        break;
                }
        return strndup(arg, n);
}

static int open_bundle_file(const char *prefix, const char *suffix) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int fd;

        if (asprintf(&path, "%s%s", prefix, suffix) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "vigilctl update stage: cannot open %s: %s\n", path,
                        strerror(errno));
                return -errno;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "vigilctl update stage: %s is not a regular file\n", path);
                close(fd);
                return -EINVAL;
        }
        return fd;
}

/* update stage BUNDLE: the three files go to vigil as fds; vigil copies them. */
static int update_verb_stage(sd_bus *bus, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *prefix = bundle_prefix(arg);
        _cleanup_close_ int payload = -1, manifest = -1, signature = -1;
        const char *stem;

        if (!prefix)
                return 1;
        stem = strrchr(prefix, '/') ? strrchr(prefix, '/') + 1 : prefix;
        if (!*stem) {
                fprintf(stderr, "vigilctl update stage: \"%s\" names no bundle\n", arg);
                return EXIT_USAGE;
        }
        payload = open_bundle_file(prefix, ".squashfs");
        if (payload < 0)
                return 1;
        manifest = open_bundle_file(prefix, ".manifest");
        if (manifest < 0)
                return 1;
        signature = open_bundle_file(prefix, ".manifest.minisig");
        if (signature < 0)
                return 1;
        if (call_manager(bus, "StageUpdate", &reply, "shhh", stem, payload, manifest, signature) <
            0)
                return 1;
        if (on_tty())
                printf("Staged %s; vigilctl update apply installs it.\n", stem);
        return 0;
}

typedef struct update_row {
        const char *stem, *image, *version, *outcome, *reason;
} update_row;

/* update apply [--force]: one line per bundle; exit 1 when any was not installed. */
static int update_verb_apply(sd_bus *bus, bool force) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool failed = false;
        size_t n = 0;
        update_row u;
        int r;

        if (call_manager(bus, "ApplyUpdates", &reply, "b", (int) force) < 0)
                return 1;
        r = sd_bus_message_enter_container(reply, 'a', "(sssss)");
        if (r >= 0 && arg_json)
                putchar('[');
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssss)", &u.stem, &u.image, &u.version,
                                                  &u.outcome, &u.reason)) > 0) {
                bool installed = streq(u.outcome, "installed");

                failed = failed || !installed;
                if (arg_json) {
                        printf("%s{", n > 0 ? "," : "");
                        json_field("stem", u.stem, false);
                        json_field("image", u.image, false);
                        json_field("version", u.version, false);
                        json_field("outcome", u.outcome, false);
                        json_field("reason", u.reason, true);
                        putchar('}');
                } else {
                        print_str(u.stem);
                        putchar(' ');
                        print_padded(u.outcome, 0,
                                     !on_tty()   ? ""
                                     : installed ? ANSI_GREEN
                                                 : ANSI_RED);
                        if (!isempty(u.reason)) {
                                fputs(": ", stdout);
                                print_str(u.reason);
                        }
                        putchar('\n');
                }
                n++;
        }
        if (r < 0)
                return bad_reply(r);
        if (arg_json)
                puts("]");
        else if (n == 0 && on_tty())
                puts("No bundle staged.");
        return failed ? 1 : 0;
}

/* update rollback NAME */
static int update_verb_rollback(sd_bus *bus, const char *image) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (call_manager(bus, "RollbackImage", &reply, "s", image) < 0)
                return 1;
        if (on_tty())
                printf("Rolled %s back to its previous version.\n", image);
        return 0;
}

typedef struct image_row {
        const char *name, *current, *sha256, *previous, *trial_status;
        int trial;
        uint32_t trial_boots;
        char **rejected; /* version, digest, reason, version, digest, reason... */
} image_row;

static void image_rows_free(image_row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                strv_free(rows[i].rejected);
        free(rows);
}

static int read_image_rows(sd_bus_message *m, image_row **ret, size_t *ret_n) {
        image_row *rows = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ssssbusa(sss))");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "ssssbusa(sss)")) > 0) {
                image_row *p = realloc(rows, (n + 1) * sizeof(*rows));

                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                rows = p;
                rows[n] = (image_row){};
                r = sd_bus_message_read(m, "ssssbus", &rows[n].name, &rows[n].current,
                                        &rows[n].sha256, &rows[n].previous, &rows[n].trial,
                                        &rows[n].trial_boots, &rows[n].trial_status);
                n++;
                if (r >= 0)
                        r = read_settings(m, &rows[n - 1].rejected);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                image_rows_free(rows, n);
                return r;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

static void print_update_status_json(const image_row *rows, size_t n, char **staged) {
        fputs("{\"images\":[", stdout);
        for (size_t i = 0; i < n; i++) {
                const image_row *x = &rows[i];

                printf("%s{", i > 0 ? "," : "");
                json_field("name", x->name, false);
                json_field("current", x->current, false);
                json_field("sha256", x->sha256, false);
                json_field("previous", x->previous, false);
                printf("\"trial\":%s,\"trial_boots\":%" PRIu32 ",", x->trial ? "true" : "false",
                       x->trial_boots);
                json_field("trial_status", x->trial_status, false);
                fputs("\"rejected\":[", stdout);
                for (char **k = x->rejected; k && k[0] && k[1] && k[2]; k += 3) {
                        printf("%s{", k == x->rejected ? "" : ",");
                        json_field("version", k[0], false);
                        json_field("digest", k[1], false);
                        json_field("reason", k[2], true);
                        putchar('}');
                }
                fputs("]}", stdout);
        }
        fputs("],\"staged\":[", stdout);
        STRV_FOREACH(s, staged) {
                if (s != staged)
                        putchar(',');
                json_string(*s);
        }
        puts("]}");
}

static void print_update_status(const image_row *rows, size_t n, char **staged) {
        static const char *const headers[] = { "IMAGE", "CURRENT", "PREVIOUS" };
        size_t w[ELEMENTSOF(headers)];
        bool any_rejected = false;

        for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                w[c] = strlen(headers[c]);
        for (size_t i = 0; i < n; i++) {
                const char *cells[] = { rows[i].name, rows[i].current, rows[i].previous };

                for (size_t c = 0; c < ELEMENTSOF(cells); c++)
                        if (text_width(cells[c]) > w[c])
                                w[c] = text_width(cells[c]);
                any_rejected = any_rejected || rows[i].rejected;
        }
        if (n == 0)
                puts("No image is updated by vigil.");
        else {
                fputs(on_tty() ? ANSI_BOLD : "", stdout);
                for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                        printf("%-*s ", (int) w[c], headers[c]);
                printf("TRIAL%s\n", on_tty() ? ANSI_RESET : "");
        }
        for (size_t i = 0; i < n; i++) {
                const image_row *x = &rows[i];

                print_padded(x->name, w[0] + 1, "");
                print_padded(isempty(x->current) ? "-" : x->current, w[1] + 1,
                             x->trial && on_tty() ? ANSI_BOLD : "");
                print_padded(isempty(x->previous) ? "-" : x->previous, w[2] + 1, "");
                if (x->trial) {
                        printf("on trial, boot %" PRIu32, x->trial_boots);
                        if (!isempty(x->trial_status)) {
                                fputs(": ", stdout);
                                print_str(x->trial_status);
                        }
                } else
                        fputs("-", stdout);
                putchar('\n');
        }
        if (any_rejected) {
                printf("\n%sRejected:%s\n", on_tty() ? ANSI_BOLD : "", on_tty() ? ANSI_RESET : "");
                for (size_t i = 0; i < n; i++)
                        for (char **k = rows[i].rejected; k && k[0] && k[1] && k[2]; k += 3) {
                                fputs("  ", stdout);
                                print_str(rows[i].name);
                                putchar(' ');
                                print_str(k[0]);
                                fputs(" sha256:", stdout);
                                print_str(k[1]);
                                fputs(on_tty() ? "  " ANSI_RED : "  ", stdout);
                                print_str(k[2]);
                                fputs(on_tty() ? ANSI_RESET "\n" : "\n", stdout);
                        }
        }
        if (!staged || !*staged) {
                puts(n > 0 ? "\nNo bundle staged." : "No bundle staged.");
                return;
        }
        printf("\n%sStaged:%s\n", on_tty() ? ANSI_BOLD : "", on_tty() ? ANSI_RESET : "");
        STRV_FOREACH(s, staged) {
                fputs("  ", stdout);
                print_str(*s);
                putchar('\n');
        }
}

/* update status: readable by everyone. */
static int update_verb_status(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **staged = NULL;
        image_row *rows = NULL;
        size_t n = 0;
        int r;

        if (call_manager(bus, "GetUpdateStatus", &reply, "") < 0)
                return 1;
        r = read_image_rows(reply, &rows, &n);
        if (r >= 0)
                r = sd_bus_message_read_strv(reply, &staged);
        if (r < 0) {
                image_rows_free(rows, n);
                return bad_reply(r);
        }
        if (arg_json)
                print_update_status_json(rows, n, staged);
        else
                print_update_status(rows, n, staged);
        image_rows_free(rows, n);
        return 0;
}

/* update stage BUNDLE | apply [--force] | status | rollback NAME */
static int verb_update(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "force", no_argument, NULL, 'f' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *what;
        bool force = false;
        int c, n;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (common_option(c))
                        continue;
                switch (c) {
                case 'f':
                        force = true;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "vigilctl update: expects stage, apply, status or rollback\n");
                return EXIT_USAGE;
        }
        what = argv[optind];
        n = argc - optind - 1; /* arguments after the subcommand */
        if (!streq(what, "stage") && !streq(what, "apply") && !streq(what, "status") &&
            !streq(what, "rollback")) {
                fprintf(stderr,
                        "vigilctl update: unknown \"%s\" (stage, apply, status or rollback)\n",
                        what);
                return EXIT_USAGE;
        }
        if (force && !streq(what, "apply")) {
                fprintf(stderr, "vigilctl update %s: --force is for update apply\n", what);
                return EXIT_USAGE;
        }
        if ((streq(what, "stage") || streq(what, "rollback")) && n != 1) {
                fprintf(stderr, "vigilctl update %s: expects one %s\n", what,
                        streq(what, "stage") ? "bundle" : "image name");
                return EXIT_USAGE;
        }
        if ((streq(what, "apply") || streq(what, "status")) && n != 0) {
                fprintf(stderr, "vigilctl update %s: takes no arguments\n", what);
                return EXIT_USAGE;
        }
        if (bus_connect(&bus) < 0)
                return 1;
        (void) sd_bus_set_method_call_timeout(bus, UPDATE_CALL_TIMEOUT);
        if (streq(what, "stage"))
                return update_verb_stage(bus, argv[optind + 1]);
        if (streq(what, "apply"))
                return update_verb_apply(bus, force);
        if (streq(what, "rollback"))
                return update_verb_rollback(bus, argv[optind + 1]);
        return update_verb_status(bus);
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} verbs[] = {
        { "list", verb_list },
        { "status", verb_status },
        { "start", verb_operation },
        { "stop", verb_operation },
        { "restart", verb_operation },
        { "logs", verb_logs },
        { "kill", verb_kill },
        { "verify", verb_verify },
        { "reload", verb_reload },
        { "reset-failed", verb_reset_failed },
        { "reboot", verb_shutdown },
        { "poweroff", verb_shutdown },
        { "set-property", verb_set_property },
        { "update", verb_update },
};

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "address", required_argument, NULL, 'A' },
                { "system", no_argument, NULL, 'S' },
                { "json", no_argument, NULL, 'J' },
                { "runtime", no_argument, NULL, 'R' },
                {},
        };
        int c;

        /* "+": options after the verb belong to the verb. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                if (common_option(c))
                        continue;
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case 'V':
                        printf("vigilctl %s\n", VIGIL_VERSION);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                help(stderr);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(argc - optind, argv + optind);
        fprintf(stderr, "vigilctl: unknown verb \"%s\" (see vigilctl --help)\n", argv[optind]);
        return EXIT_USAGE;
}
