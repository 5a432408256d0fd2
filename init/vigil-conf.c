/* vigil.conf: the manager's own settings. */
#include "vigil-conf.h"
#include "lexer.h"
#include "log.h"

typedef struct conf_ctx {
        vigil_conf *conf;
        const char *path;
        bool in_manager;
} conf_ctx;

static int conf_event(const ini_event *ev, void *userdata) {
        conf_ctx *c = userdata;
        vigil_conf *conf = c->conf;
        char esc[INI_ESCAPE_MAX];
        usec_t t;
        int b;

        if (ev->kind == INI_SECTION) {
                c->in_manager = streq(ev->section, "Manager");
                if (!c->in_manager && !startswith(ev->section, "X-"))
                        log_error("%s:%u: unknown section [%s]; vigil.conf has [Manager]", c->path,
                                  ev->line, ini_escape(ev->section, esc, sizeof(esc)));
                return 0;
        }
        if (!c->in_manager || startswith(ev->key, "X-"))
                return 0;

        if (streq(ev->key, "LogConsole")) {
                b = parse_boolean(ev->value);
                if (b >= 0) {
                        conf->log_console = b;
                        return 0;
                }
        } else if (streq(ev->key, "CrashAction")) {
                if (streq(ev->value, "freeze") || streq(ev->value, "reboot")) {
                        conf->crash_action =
                                streq(ev->value, "reboot") ? CRASH_REBOOT : CRASH_FREEZE;
                        return 0;
                }
        } else if (streq(ev->key, "CrashRebootSec") || streq(ev->key, "ShutdownTimeoutSec")) {
                if (parse_sec(ev->value, &t) >= 0) {
                        *(streq(ev->key, "CrashRebootSec") ? &conf->crash_reboot_delay
                                                           : &conf->shutdown_timeout) = t;
                        return 0;
                }
        } else {
                log_error("%s:%u: unknown setting %s= in [Manager]", c->path, ev->line,
                          ini_escape(ev->key, esc, sizeof(esc)));
                return 0;
        }
        log_error("%s:%u: invalid %s= value \"%s\"; keeping the default", c->path, ev->line,
                  ev->key, ini_escape(ev->value, esc, sizeof(esc)));
        return 0;
}

void vigil_conf_load(const char *path, vigil_conf *ret) {
        _cleanup_free_ char *data = NULL;
        conf_ctx c = { .conf = ret, .path = path };
        diag_list diags = {};
        size_t size;
        int r;

        *ret = (vigil_conf){
                .crash_action = CRASH_FREEZE,
                .crash_reboot_delay = 10 * USEC_PER_SEC,
                .shutdown_timeout = 10 * USEC_PER_SEC,
        };
        r = read_file_bounded(path, 1024 * 1024, &data, &size);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_error_errno(r, "%s: cannot read, using defaults: %m", path);
                return;
        }
        r = ini_parse_buffer(path, data, size, &diags, conf_event, &c);
        for (size_t i = 0; i < diags.n; i++)
                log_error("%s:%u: %s", diags.items[i].path, diags.items[i].line,
                          diags.items[i].message);
        diag_list_done(&diags);
        if (r < 0)
                log_error_errno(r, "%s: %m", path);
}
