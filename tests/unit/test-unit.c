/* Tests for the unit loader: resolved values, merging, provenance, and a corpus of bad units
 * with the exact messages expected (VIGIL_UPDATE_EXPECTED=1 rewrites the .expected files). */
#include <dirent.h>
#include <signal.h>

#include "lexer.h"
#include "tap.h"
#include "unit.h"

static const unit_load_options opts = { .policy_dir = "units/policies" };

static unit *load(const char *path, const char *as) {
        diag_list diags = {};
        unit *u = NULL;
        int r;

        r = unit_load_file(path, as, &opts, &diags, &u);
        if (!tap_ok(r == 0 && diags.n_errors == 0, "%s loads", as ?: path))
                diag_list_print(&diags, stdout);
        diag_list_done(&diags);
        return u;
}

static char *join(char **l) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        STRV_FOREACH(i, l)
                fprintf(f, "%s%s", i == l ? "" : "|", *i);
        fclose(f);
        return s;
}

#define STRV_EQ(l, want, what)                                                                     \
        do {                                                                                       \
                _cleanup_free_ char *_j = join(l);                                                 \
                tap_streq(_j, want, what);                                                         \
        } while (0)

static char *source(const unit *u, const char *section, const char *key) {
        unit_source s;
        char *r = NULL;

        if (unit_directive_source(u, section, key, &s) && asprintf(&r, "%s:%u", s.path, s.line) < 0)
                r = NULL;
        return r;
}

#define SOURCE_EQ(u, section, key, want)                                                           \
        do {                                                                                       \
                _cleanup_free_ char *_s = source(u, section, key);                                 \
                tap_streq(_s, want, "source of %s.%s", section, key);                              \
        } while (0)

static void test_full(void) {
        _cleanup_unit_free_ unit *u = load("units/good/full.service", NULL);

        if (!u)
                return;
        tap_streq(u->description, "Every directive vigil accepts, once", "Description");
        tap_ok(u->relations != &unit_no_relations, "After=...: a block of its own");
        STRV_EQ(u->relations->documentation, "man:vigil(8)|https://example.org/docs",
                "Documentation");
        STRV_EQ(u->relations->after, "network.target|other.service", "After");
        STRV_EQ(u->relations->requires, "db.service", "Requires");
        STRV_EQ(u->relations->binds_to, "bound.service", "BindsTo");
        tap_inteq(u->start_limit_interval, 30 * USEC_PER_SEC, "StartLimitIntervalSec");
        tap_inteq(u->start_limit_burst, 3, "StartLimitBurst");
        tap_inteq(u->type, SERVICE_NOTIFY, "Type");
        tap_ok(u->commands != &unit_no_commands, "ExecStartPre=...: a block of its own");
        tap_inteq(u->commands->exec_start_pre.n, 1, "one ExecStartPre");
        tap_inteq(u->commands->exec_start_pre.items[0].flags, EXEC_IGNORE_FAILURE, "- prefix");
        tap_inteq(u->exec_start.n, 1, "one ExecStart");
        tap_streq(u->exec_start.items[0].path, "/usr/bin/server", "@: path");
        STRV_EQ(u->exec_start.items[0].argv, "game-server|--port|8303|--motd=hello ; world|a b",
                "@: argv with quoting");
        tap_inteq(u->commands->exec_start_post.items[0].flags, EXEC_NO_ENV_EXPAND, ": prefix");
        STRV_EQ(u->commands->exec_start_post.items[0].argv, "/bin/echo|$NOT_EXPANDED",
                "$VAR is kept for start time");
        tap_inteq(u->commands->exec_stop.items[0].flags, EXEC_PRIVILEGED, "+ prefix");
        tap_inteq(u->restart, RESTART_ON_FAILURE, "Restart");
        tap_inteq(u->restart_sec, 1500 * USEC_PER_MSEC, "RestartSec=1.5s");
        tap_inteq(u->backoff->restart_steps, 5, "RestartSteps");
        tap_inteq(u->backoff->restart_max_delay, 60 * USEC_PER_SEC, "RestartMaxDelaySec");
        tap_ok(exit_status_set_has_status(u->restart_prevent_exit_status, 64) &&
                       exit_status_set_has_status(u->restart_prevent_exit_status, 75) &&
                       exit_status_set_has_signal(u->restart_prevent_exit_status, SIGKILL) &&
                       !exit_status_set_has_status(u->restart_prevent_exit_status, 0),
               "RestartPreventExitStatus=64 TEMPFAIL SIGKILL");
        tap_ok(exit_status_set_has_status(u->success_exit_status, 2) &&
                       exit_status_set_has_signal(u->success_exit_status, SIGUSR1),
               "SuccessExitStatus");
        tap_inteq(u->timeout_start, 150 * USEC_PER_SEC, "TimeoutStartSec=2min 30s");
        tap_ok(u->timeout_stop == USEC_INFINITY, "TimeoutStopSec=0 is no timeout");
        tap_inteq(u->kill_signal, SIGINT, "KillSignal");
        tap_inteq(u->kill_mode, KILL_MIXED, "KillMode");
        tap_inteq(u->watchdog, 10 * USEC_PER_SEC, "WatchdogSec");
        tap_ok(u->process != &unit_process_defaults, "Environment=...: a block of its own");
        tap_streq(u->user, "game", "User");
        tap_streq(u->group, "1000", "Group");
        STRV_EQ(u->process->supplementary_groups, "audio|video", "SupplementaryGroups");
        tap_streq(u->process->working_directory, "/var/lib/game", "WorkingDirectory");
        tap_ok(u->process->working_directory_missing_ok, "WorkingDirectory=- prefix");
        STRV_EQ(u->process->environment, "GREETING=hello world|PLAIN=1|TAB=a\tb", "Environment");
        tap_ok(u->process->n_environment_files == 1 &&
                       u->process->environment_files[0].missing_ok &&
                       strcmp(u->process->environment_files[0].path, "/etc/default/game") == 0,
               "EnvironmentFile");
        tap_inteq(u->process->umask, 027, "UMask");
        tap_ok(u->process->limits[RLIMIT_NOFILE].set &&
                       u->process->limits[RLIMIT_NOFILE].limit.rlim_cur == 1024 &&
                       u->process->limits[RLIMIT_NOFILE].limit.rlim_max == 4096,
               "LimitNOFILE=1024:4096");
        tap_ok(u->process->limits[RLIMIT_CORE].limit.rlim_cur == RLIM_INFINITY,
               "LimitCORE=infinity");
        tap_inteq(u->process->limits[RLIMIT_MEMLOCK].limit.rlim_cur, 64 << 20, "LimitMEMLOCK=64M");
        tap_inteq(u->process->limits[RLIMIT_CPU].limit.rlim_cur, 3600, "LimitCPU=1h");
        tap_inteq(u->process->limits[RLIMIT_NICE].limit.rlim_cur, 25, "LimitNICE=-5");
        tap_ok(!u->process->limits[RLIMIT_AS].set, "LimitAS not set");
        tap_ok(u->process->std_output.kind == OUTPUT_JOURNAL && u->process->std_output.console,
               "StandardOutput=journal+console");
        tap_ok(u->process->std_error.kind == OUTPUT_APPEND &&
                       strcmp(u->process->std_error.path, "/var/log/game.err") == 0,
               "StandardError=append:");
        tap_streq(u->process->syslog_identifier, "game", "SyslogIdentifier");
        STRV_EQ(u->wanted_by, "multi-user.target", "WantedBy");
        SOURCE_EQ(u, "Service", "KillMode", "units/good/full.service:29");
        tap_ok(!unit_directive_source(u, "Service", "Policy", &(unit_source){}),
               "an unset directive has no source");
}

static void test_defaults(void) {
        _cleanup_unit_free_ unit *u = load("units/good/crlf-bom.service", NULL);

        if (!u)
                return;
        STRV_EQ(u->exec_start.items[0].argv, "/bin/sh|-c|echo a ; echo b|#|kept",
                "CRLF and BOM: ; inside quotes and # after them are arguments");
        STRV_EQ(u->process->environment, "A=1|B=2", "a continuation line in CRLF");
        tap_inteq(u->type, SERVICE_SIMPLE, "default Type=simple");
        tap_inteq(u->restart, RESTART_NO, "default Restart=no");
        tap_inteq(u->restart_sec, 100 * USEC_PER_MSEC, "default RestartSec=100ms");
        tap_inteq(u->timeout_start, 90 * USEC_PER_SEC, "default TimeoutStartSec=90s");
        tap_inteq(u->kill_signal, SIGTERM, "default KillSignal=SIGTERM");
        tap_inteq(u->kill_mode, KILL_CONTROL_GROUP, "default KillMode=control-group");
        tap_inteq(u->start_limit_burst, 5, "default StartLimitBurst=5");
        tap_inteq(u->process->umask, 022, "default UMask=0022");
        tap_inteq(u->process->std_output.kind, OUTPUT_JOURNAL, "default StandardOutput=journal");
        tap_inteq(u->process->std_error.kind, OUTPUT_INHERIT, "default StandardError=inherit");
        tap_ok(u->container == &unit_container_defaults && !unit_is_container(u) &&
                       u->container->read_only && u->container->user_ns == -1,
               "no container settings: the shared defaults (ReadOnly=yes, UserNS= unset)");
        tap_ok(u->commands == &unit_no_commands && u->commands->exec_start_pre.n == 0 &&
                       u->commands->exec_stop.n == 0 && u->commands->exec_reload.n == 0,
               "no ExecStartPre=, ExecStop=...: the shared empty block");
        tap_ok(u->relations == &unit_no_relations && !u->relations->after &&
                       !u->relations->requires && !u->relations->documentation,
               "no After=, Requires=...: the shared empty block");
        tap_ok(u->seccomp == &unit_seccomp_defaults && !u->seccomp->filter && !u->seccomp->archs,
               "no SystemCallFilter=...: the shared defaults");
        tap_ok(u->process != &unit_process_defaults && u->process->limits == unit_no_limits &&
                       u->process->capability_bounding_set == UINT64_MAX &&
                       u->process->no_new_privileges == -1 && !u->process->working_directory,
               "Environment= alone: a block of its own, the rest at the defaults");
}

static void test_policy_merge(void) {
        _cleanup_unit_free_ unit *u = load("units/good/policy-merge.service", NULL);

        if (!u)
                return;
        tap_streq(u->policy, "gameserver", "Policy=");
        tap_streq(u->policy_path, "units/policies/gameserver.policy", "policy path");
        tap_inteq(u->restart, RESTART_ALWAYS, "Restart= from the policy");
        tap_inteq(u->restart_sec, USEC_PER_SEC, "the unit's RestartSec= wins");
        tap_inteq(u->start_limit_burst, 20, "StartLimitBurst= from the policy's [Unit]");
        STRV_EQ(u->process->environment, "FROM_POLICY=1|SHARED=unit|OWN=1",
                "the unit's Environment= adds to the policy's, replacing a variable it sets");
        tap_inteq(u->process->limits[RLIMIT_NOFILE].limit.rlim_max, 65536,
                  "LimitNOFILE from the policy");
        SOURCE_EQ(u, "Service", "Restart", "units/policies/gameserver.policy:7");
        SOURCE_EQ(u, "Service", "RestartSec", "units/good/policy-merge.service:4");
        SOURCE_EQ(u, "Unit", "StartLimitBurst", "units/policies/gameserver.policy:4");
        SOURCE_EQ(u, "Service", "TimeoutSec", NULL);
}

static void test_dropins(void) {
        _cleanup_unit_free_ unit *u = load("units/good/dropin.service", NULL);

        if (!u)
                return;
        tap_streq(u->description, "from 20-b", "drop-ins apply in lexical order");
        tap_inteq(u->exec_start.n, 1, "an empty ExecStart= resets the list");
        tap_streq(u->exec_start.items[0].path, "/bin/replaced", "the drop-in's command");
        STRV_EQ(u->process->environment, "AFTER_RESET=1", "an empty Environment= resets the list");
        SOURCE_EQ(u, "Unit", "Description", "units/good/dropin.service.d/20-b.conf:2");
        STRV_EQ(u->files,
                "units/good/dropin.service|units/good/dropin.service.d/10-a.conf|"
                "units/good/dropin.service.d/20-b.conf",
                "only *.conf files are drop-ins");
}

static void test_template(void) {
        _cleanup_unit_free_ unit *u = load("units/good/tmpl@.service", "tmpl@foo.service");
        _cleanup_unit_free_ unit *t = load("units/good/tmpl@.service", NULL);

        if (u) {
                tap_streq(u->name, "tmpl@foo.service", "instance name");
                STRV_EQ(u->exec_start.items[0].argv,
                        "/bin/echo|foo|tmpl@foo.service|tmpl|tmpl@foo|%", "%%i %%n %%p %%N %%%%");
                tap_streq(u->description, "Instance foo of tmpl", "specifiers in Description=");
                STRV_EQ(u->process->environment, "INSTANCE=foo|T=template|I=instance",
                        "template drop-ins, then the instance's");
        }
        if (t)
                tap_streq(unit_instance(t), "instance",
                          "a template alone is checked as an instance");
}

static void test_oneshot(void) {
        _cleanup_unit_free_ unit *u = load("units/good/oneshot.service", NULL);

        if (!u)
                return;
        tap_inteq(u->exec_start.n, 3, "a lone ; separates commands; Type=oneshot takes several");
        STRV_EQ(u->exec_start.items[1].argv, "/bin/echo|two|;|three", "\\; is an argument");
        tap_ok(u->process == &unit_process_defaults && u->process->umask == 0022 &&
                       u->process->std_output.kind == OUTPUT_JOURNAL,
               "no Environment=, Limit*=, UMask=...: the shared defaults");
        tap_ok(u->backoff == &unit_backoff_defaults &&
                       u->backoff->restart_max_delay == USEC_INFINITY,
               "no RestartSteps=, StartLimitRetrySec=...: the shared defaults");
}

static void test_buffer(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\nPolicy=whatever\n";
        diag_list diags = {};
        unit *u = NULL;

        tap_inteq(
                unit_load_buffer("buf.service", "buf.service", text, sizeof(text) - 1, &diags, &u),
                0, "unit_load_buffer checks Policy= for syntax only");
        unit_free(u);
        u = NULL;
        tap_inteq(unit_load_buffer("x@y@z.service", "b", text, sizeof(text) - 1, &diags, &u),
                  -EINVAL, "unit_load_buffer refuses an invalid name");
        diag_list_done(&diags);
}

static char *render(const char *path, bool policy) {
        diag_list diags = {};
        char *s = NULL;
        size_t n = 0;
        FILE *f;
        unit *u = NULL;

        if (policy)
                policy_check_file(path, &diags);
        else
                unit_load_file(path, NULL, &opts, &diags, &u);
        unit_free(u);
        f = open_memstream(&s, &n);
        diag_list_print(&diags, f);
        fclose(f);
        diag_list_done(&diags);
        return s;
}

static int cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Each bad file must fail with exactly the messages in its .expected file. */
static void test_bad_corpus(const char *dir) {
        bool update = getenv("VIGIL_UPDATE_EXPECTED") != NULL;
        char *names[256];
        size_t n = 0;
        struct dirent *de;
        DIR *d = opendir(dir);

        if (!tap_ok(d != NULL, "open %s", dir))
                return;
        while ((de = readdir(d)) && n < ELEMENTSOF(names))
                if (de->d_name[0] != '.' && !endswith(de->d_name, ".expected"))
                        names[n++] = strdup(de->d_name);
        closedir(d);
        qsort(names, n, sizeof(char *), cmp);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *exp_path = NULL, *got = NULL, *want = NULL;
                size_t size;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0 ||
                    asprintf(&exp_path, "%s.expected", path) < 0)
                        abort();
                got = render(path, endswith(path, ".policy"));
                if (update) {
                        FILE *f = fopen(exp_path, "we");

                        fputs(got, f);
                        fclose(f);
                }
                if (read_file_bounded(exp_path, 1 << 20, &want, &size) < 0)
                        want = NULL;
                tap_ok(strstr(got, ": error: ") != NULL, "%s is rejected", path);
                tap_streq(got, want, "%s: messages as expected", path);
                free(names[i]);
        }
}

static void test_container(void) {
        _cleanup_unit_free_ unit *u = load("units/good/container.service", NULL);
        const unit_container *c;

        if (!u) {
                tap_ok(false, "container.service loads");
                return;
        }
        c = u->container;
        tap_ok(c != &unit_container_defaults, "container settings: a block of its own");
        tap_ok(unit_is_container(u), "Image= makes a container");
        tap_streq(c->image, "teeworlds", "Image=");
        tap_streq(c->hostname, "game-1", "HostName=");
        tap_ok(c->network == NETWORK_NONE, "Network=none");
        tap_ok(!c->read_only, "ReadOnly=no");
        tap_ok(c->user_ns == 1, "PrivateUsers=yes");
        tap_ok(u->process->no_new_privileges == 1, "NoNewPrivileges=yes");
        tap_ok(u->process->capability_bounding_set ==
                       (UINT64_C(1) << 10), /* CAP_NET_BIND_SERVICE */
               "CapabilityBoundingSet= lists add up and ~ removes");
        tap_ok(u->process->ambient_capabilities == (UINT64_C(1) << 10), "AmbientCapabilities=");
        tap_ok(c->n_mounts == 5, "five mounts (got %zu)", c->n_mounts);
        if (c->n_mounts == 5) {
                const mount_entry *m = c->mounts;

                tap_ok(m[0].kind == MOUNT_BIND && m[0].read_only && !m[0].missing_ok &&
                               streq(m[0].source, "/etc/game") && streq(m[0].target, "/etc/game"),
                       "BindReadOnlyPaths= SOURCE:TARGET");
                tap_ok(m[1].missing_ok && streq(m[1].source, "/opt/maybe") &&
                               streq(m[1].target, "/opt/maybe"),
                       "BindReadOnlyPaths= -SOURCE");
                tap_ok(m[2].named && m[2].read_only && streq(m[2].source, "maps") &&
                               streq(m[2].target, "/srv/maps"),
                       "Volume= NAME:TARGET:ro");
                tap_ok(!m[3].named && !m[3].read_only && streq(m[3].source, "/var/log/game"),
                       "Volume= HOST:TARGET");
                tap_ok(m[4].kind == MOUNT_TMPFS && streq(m[4].options, "size=16m,mode=0700") &&
                               streq(m[4].target, "/var/cache/game"),
                       "Tmpfs=PATH:OPTIONS");
        }
        tap_ok(c->health_cmd.n == 1 && streq(c->health_cmd.items[0].path, "/usr/games/check"),
               "HealthCmd= one command");
        SOURCE_EQ(u, "Container", "Image", "units/good/container.service:17");
}

static void test_caps_reset(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\n"
                                   "CapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=\n";
        _cleanup_unit_free_ unit *u = NULL;
        diag_list diags = {};

        tap_ok(unit_load_buffer("caps.service", "caps.service", text, sizeof(text) - 1, &diags,
                                &u) >= 0,
               "CapabilityBoundingSet= empty loads");
        tap_ok(u && u->process->capability_bounding_set == 0,
               "an empty CapabilityBoundingSet= means no capabilities, as in systemd");
        diag_list_done(&diags);
}

/* Sources are kept in 10 bits of row: the last row of the last table still has one. */
static void test_last_row_source(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\n"
                                   "SystemCallArchitectures=native\n";
        _cleanup_unit_free_ unit *u = NULL;
        diag_list diags = {};
        unit_source src = {};

        tap_ok(unit_load_buffer("r.service", "r.service", text, sizeof(text) - 1, &diags, &u) >= 0,
               "SystemCallArchitectures= loads");
        tap_ok(u && unit_directive_source(u, "Service", "SystemCallArchitectures", &src) &&
                       src.line == 3 && sizeof(unit_source_slot) == 5,
               "the last directive row has its source, in a 5-byte slot");
        diag_list_done(&diags);
}

static void test_mounts_reset(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\nRootDirectory=/srv/root\n"
                                   "BindReadOnlyPaths=/etc/game\nBindPaths=/srv/a\n"
                                   "[Container]\nVolume=maps:/maps\nTmpfs=/cache\nVolume=\n"
                                   "[Service]\nBindPaths=\n";
        _cleanup_unit_free_ unit *u = NULL;
        diag_list diags = {};

        tap_ok(unit_load_buffer("m.service", "m.service", text, sizeof(text) - 1, &diags, &u) >= 0,
               "mounts with resets load");
        tap_ok(u && u->container->n_mounts == 2 &&
                       streq(u->container->mounts[0].target, "/etc/game") &&
                       streq(u->container->mounts[1].target, "/cache"),
               "an empty Volume= or BindPaths= drops only that directive's mounts");
        diag_list_done(&diags);
}

int main(void) {
        test_full();
        test_container();
        test_caps_reset();
        test_last_row_source();
        test_mounts_reset();
        test_defaults();
        test_policy_merge();
        test_dropins();
        test_template();
        test_oneshot();
        test_buffer();
        test_bad_corpus("units/bad");
        test_bad_corpus("units/bad-policies");
        return tap_done();
}
