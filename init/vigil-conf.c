/* vigil.conf: the manager's own settings, and who may change what over D-Bus. */
#include <stdarg.h>

#include "creds.h"
#include "lexer.h"
#include "log.h"
#include "strv.h"
#include "unit.h"
#include "vigil-conf.h"

#define VIGIL_CONF_MAX (1024 * 1024)
#define BUS_ADDRESS_MAX 4096

static const char *const verb_names[_VERB_MAX] = {
        [VERB_START] = "start",
        [VERB_STOP] = "stop",
        [VERB_RESTART] = "restart",
        [VERB_RELOAD] = "reload",
        [VERB_KILL] = "kill",
        [VERB_RESET_FAILED] = "reset-failed",
        [VERB_SET_PROPERTY] = "set-property",
        [VERB_RELOAD_UNITS] = "reload-units",
        [VERB_REBOOT] = "reboot",
        [VERB_POWEROFF] = "poweroff",
        [VERB_UPDATE] = "update",
};

const char *access_verb_to_string(access_verb v) {
        return v < _VERB_MAX ? verb_names[v] : "invalid";
}

int access_verb_from_string(const char *s) {
        for (size_t i = 0; i < _VERB_MAX; i++)
                if (streq(s, verb_names[i]))
                        return (int) i;
        return -EINVAL;
}

typedef struct conf_ctx {
        vigil_conf *conf;
        const char *path;
        const char *root;
        enum {
                SECTION_NONE,
                SECTION_MANAGER,
                SECTION_ACCESS,
                SECTION_UPDATE,
        } section;
        unsigned line;
        int problems;
} conf_ctx;

_printf_(2, 3) static void conf_error(conf_ctx *c, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_error("%s:%u: %s", c->path, c->line, buf);
        c->problems++;
}

static void grant_done(access_grant *g) {
        g->services = strv_free(g->services);
}

/* "teeworlds" means teeworlds.service, as everywhere else. */
static int service_list_add(char ***l, const char *word) {
        _cleanup_free_ char *n = NULL;

        if (unit_name_suffix(word))
                n = strdup(word);
        else if (asprintf_safe(&n, "%s.service", word) < 0)
                n = NULL;
        if (!n)
                return -ENOMEM;
        if (strnlen(n, UNIT_NAME_MAX + 1) > UNIT_NAME_MAX ||
            !unit_name_is_valid(n, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE) ||
            !endswith(n, ".service"))
                return -EINVAL;
        if (strv_push(l, n) < 0)
                return -ENOMEM;
        TAKE_PTR(n);
        return 0;
}

/* Grant=GROUP VERB[,VERB...] [SERVICE[,SERVICE...]|*] */
static int parse_grant(conf_ctx *c, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char esc[INI_ESCAPE_MAX], *words[4] = {}, *save = NULL, *w;
        access_grant g = {};
        size_t n = 0;
        int r;

        if (!copy)
                return -ENOMEM;
        for (w = strtok_r(copy, WHITESPACE, &save); w; w = strtok_r(NULL, WHITESPACE, &save)) {
                if (n >= ELEMENTSOF(words)) {
                        conf_error(c, "Grant= takes GROUP VERBS [SERVICES]; too many fields");
                        return 0;
                }
                words[n++] = w;
        }
        if (n < 2) {
                conf_error(c, "Grant= takes GROUP VERBS [SERVICES], e.g. "
                              "\"Grant=gameops restart teeworlds\"");
                return 0;
        }
        if (c->conf->n_grants >= ACCESS_GRANTS_MAX) {
                conf_error(c, "more than %d Grant= lines; ignoring this one", ACCESS_GRANTS_MAX);
                return 0;
        }
        r = creds_lookup_group(c->root, words[0], &g.gid);
        if (r < 0) {
                conf_error(c, "Grant=: unknown group \"%s\"; this grant gives nothing",
                           ini_escape(words[0], esc, sizeof(esc)));
                return 0;
        }

        bool service_verb = false, manager_verb = false;
        save = NULL;
        for (w = strtok_r(words[1], ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                int v = access_verb_from_string(w);

                if (v < 0) {
                        conf_error(c,
                                   "Grant=: unknown verb \"%s\" (start, stop, restart, reload, "
                                   "kill, reset-failed, set-property, reload-units, reboot, "
                                   "poweroff); this grant gives nothing",
                                   ini_escape(w, esc, sizeof(esc)));
                        return 0;
                }
                g.verbs |= 1u << v;
                if (v < _VERB_SERVICE_MAX)
                        service_verb = true;
                else
                        manager_verb = true;
        }
        if (service_verb && n < 3) {
                conf_error(c, "Grant=: name the services the verbs apply to, or \"*\" for all");
                return 0;
        }
        if (manager_verb && !service_verb && n == 3) {
                conf_error(c, "Grant=: %s act on the whole machine and take no services", words[1]);
                return 0;
        }
        if (n == 3 && !streq(words[2], "*")) {
                size_t k = 0;

                save = NULL;
                for (w = strtok_r(words[2], ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                        if (++k > ACCESS_GRANT_SERVICES_MAX) {
                                conf_error(c, "Grant=: more than %d services",
                                           ACCESS_GRANT_SERVICES_MAX);
                                grant_done(&g);
                                return 0;
                        }
                        r = service_list_add(&g.services, w);
                        if (r == -ENOMEM) {
                                grant_done(&g);
                                return r;
                        }
                        if (r < 0) {
                                conf_error(c,
                                           "Grant=: \"%s\" is not a service name; this grant "
                                           "gives nothing",
                                           ini_escape(w, esc, sizeof(esc)));
                                grant_done(&g);
                                return 0;
                        }
                }
        }

        access_grant *l = reallocarray(c->conf->grants, c->conf->n_grants + 1, sizeof(*l));
        if (!l) {
                grant_done(&g);
                return -ENOMEM;
        }
        c->conf->grants = l;
        l[c->conf->n_grants++] = g;
        return 0;
}

static int conf_access(conf_ctx *c, const ini_event *ev) {
        char esc[INI_ESCAPE_MAX];
        int r;

        if (streq(ev->key, "AdminGroup")) {
                if (isempty(ev->value)) {
                        c->conf->admin_group_set = false;
                        return 0;
                }
                r = creds_lookup_group(c->root, ev->value, &c->conf->admin_gid);
                if (r < 0) {
                        c->conf->admin_group_set = false;
                        conf_error(c, "AdminGroup=: unknown group \"%s\"; no admin group",
                                   ini_escape(ev->value, esc, sizeof(esc)));
                        return 0;
                }
                c->conf->admin_group_set = true;
                return 0;
        }
        if (streq(ev->key, "Grant")) {
                if (isempty(ev->value)) { /* an empty assignment resets the list */
                        for (size_t i = 0; i < c->conf->n_grants; i++)
                                grant_done(&c->conf->grants[i]);
                        c->conf->n_grants = 0;
                        return 0;
                }
                return parse_grant(c, ev->value);
        }
        conf_error(c, "unknown setting %s= in [Access] (AdminGroup=, Grant=)",
                   ini_escape(ev->key, esc, sizeof(esc)));
        return 0;
}

static int conf_manager(conf_ctx *c, const ini_event *ev) {
        vigil_conf *conf = c->conf;
        char esc[INI_ESCAPE_MAX];
        usec_t t;
        int b;

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
        } else if (streq(ev->key, "SystemBusAddress")) {
                /* "no" or empty: vigil serves only its private socket. */
                if (isempty(ev->value) || parse_boolean(ev->value) == 0) {
                        conf->system_bus_address = mfree(conf->system_bus_address);
                        return 0;
                }
                if (strlen(ev->value) < BUS_ADDRESS_MAX && strchr(ev->value, ':')) {
                        char *a = strdup(ev->value);

                        if (!a)
                                return -ENOMEM;
                        free(conf->system_bus_address);
                        conf->system_bus_address = a;
                        return 0;
                }
        } else {
                conf_error(c, "unknown setting %s= in [Manager]",
                           ini_escape(ev->key, esc, sizeof(esc)));
                return 0;
        }
        conf_error(c, "invalid %s= value \"%s\"; keeping the default", ev->key,
                   ini_escape(ev->value, esc, sizeof(esc)));
        return 0;
}

static int conf_update(conf_ctx *c, const ini_event *ev) {
        vigil_conf *conf = c->conf;
        char esc[INI_ESCAPE_MAX];
        uint64_t size;
        unsigned n;
        usec_t t;

        if (streq(ev->key, "MaxBundleSize")) {
                if (parse_size(ev->value, &size) >= 0 && size > 0 && size <= INT64_MAX) {
                        conf->update_max_size = size;
                        return 0;
                }
        } else if (streq(ev->key, "TrialHealthySec") || streq(ev->key, "TrialTimeoutSec")) {
                if (parse_sec(ev->value, &t) >= 0 && t > 0 && t != USEC_INFINITY) {
                        *(streq(ev->key, "TrialHealthySec") ? &conf->trial_healthy
                                                            : &conf->trial_timeout) = t;
                        return 0;
                }
        } else if (streq(ev->key, "TrialBootsMax")) {
                if (parse_unsigned(ev->value, &n) >= 0 && n > 0 && n <= 100) {
                        conf->trial_boots_max = n;
                        return 0;
                }
        } else {
                conf_error(c,
                           "unknown setting %s= in [Update] (MaxBundleSize=, TrialHealthySec=, "
                           "TrialTimeoutSec=, TrialBootsMax=)",
                           ini_escape(ev->key, esc, sizeof(esc)));
                return 0;
        }
        conf_error(c, "invalid %s= value \"%s\"; keeping the default", ev->key,
                   ini_escape(ev->value, esc, sizeof(esc)));
        return 0;
}

static int conf_event(const ini_event *ev, void *userdata) {
        conf_ctx *c = userdata;
        char esc[INI_ESCAPE_MAX];

        c->line = ev->line;
        if (ev->kind == INI_SECTION) {
                c->section = streq(ev->section, "Manager")  ? SECTION_MANAGER
                             : streq(ev->section, "Access") ? SECTION_ACCESS
                             : streq(ev->section, "Update") ? SECTION_UPDATE
                                                            : SECTION_NONE;
                if (c->section == SECTION_NONE && !startswith(ev->section, "X-"))
                        conf_error(c,
                                   "unknown section [%s]; vigil.conf has [Manager], [Access] "
                                   "and [Update]",
                                   ini_escape(ev->section, esc, sizeof(esc)));
                return 0;
        }
        if (c->section == SECTION_NONE || startswith(ev->key, "X-"))
                return 0;
        return c->section == SECTION_MANAGER  ? conf_manager(c, ev)
               : c->section == SECTION_ACCESS ? conf_access(c, ev)
                                              : conf_update(c, ev);
}

static void conf_defaults(vigil_conf *c) {
        *c = (vigil_conf){
                .crash_action = CRASH_FREEZE,
                .crash_reboot_delay = 10 * USEC_PER_SEC,
                .shutdown_timeout = 10 * USEC_PER_SEC,
                .update_max_size = UINT64_C(4) << 30,
                .trial_healthy = 30 * USEC_PER_SEC,
                .trial_timeout = 5 * 60 * USEC_PER_SEC,
                .trial_boots_max = 3,
        };
}

int vigil_conf_parse(const char *path, const char *data, size_t size, const char *root,
                     vigil_conf *ret) {
        conf_ctx c = { .conf = ret, .path = path, .root = root };
        diag_list diags = {};
        int r;

        conf_defaults(ret);
        r = ini_parse_buffer(path, data, size, &diags, conf_event, &c);
        for (size_t i = 0; i < diags.n; i++) {
                log_error("%s:%u: %s", diags.items[i].path, diags.items[i].line,
                          diags.items[i].message);
                c.problems++;
        }
        diag_list_done(&diags);
        if (r < 0) {
                log_error_errno(r, "%s: %m", path);
                c.problems++;
        }
        return c.problems;
}

int vigil_conf_load(const char *path, const char *root, vigil_conf *ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        conf_defaults(ret);
        r = read_file_bounded(path, VIGIL_CONF_MAX, &data, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "%s: cannot read, using defaults: %m", path);
        return vigil_conf_parse(path, data, size, root, ret);
}

static void access_done(vigil_conf *c) {
        for (size_t i = 0; i < c->n_grants; i++)
                grant_done(&c->grants[i]);
        c->grants = mfree(c->grants);
        c->n_grants = 0;
        c->admin_group_set = false;
}

void vigil_conf_done(vigil_conf *c) {
        access_done(c);
        c->system_bus_address = mfree(c->system_bus_address);
}

void vigil_conf_take_access(vigil_conf *to, vigil_conf *from) {
        access_done(to);
        to->admin_group_set = from->admin_group_set;
        to->admin_gid = from->admin_gid;
        to->grants = TAKE_PTR(from->grants);
        to->n_grants = from->n_grants;
        from->n_grants = 0;
        from->admin_group_set = false;
}

static bool caller_in_group(const access_caller *caller, gid_t gid) {
        if (caller->gid == gid)
                return true;
        if (!caller->groups_known)
                return false;
        for (size_t i = 0; i < caller->n_groups; i++)
                if (caller->groups[i] == gid)
                        return true;
        return false;
}

bool access_allowed(const vigil_conf *c, const access_caller *caller, access_verb verb,
                    const char *service) {
        if (!caller || verb >= _VERB_MAX)
                return false;
        if (caller->uid == 0)
                return true;
        if (c->admin_group_set && caller_in_group(caller, c->admin_gid))
                return true;
        for (size_t i = 0; i < c->n_grants; i++) {
                const access_grant *g = &c->grants[i];

                if (!(g->verbs & (1u << verb)) || !caller_in_group(caller, g->gid))
                        continue;
                if (verb >= _VERB_SERVICE_MAX || !g->services)
                        return true;
                if (service && strv_contains(g->services, service))
                        return true;
        }
        return false;
}
