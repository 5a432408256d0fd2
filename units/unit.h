/* The unit model: a service resolved from its policy, unit file and drop-ins. */
#pragma once

#include <string.h>
#include <sys/resource.h>

#include "diag.h"
#include "resource.h"
#include "seccomp.h"
#include "strv.h"
#include "value.h"

typedef enum service_type {
        SERVICE_SIMPLE,
        SERVICE_EXEC,
        SERVICE_ONESHOT,
        SERVICE_NOTIFY,
        _SERVICE_TYPE_MAX,
} service_type;

typedef enum restart_mode {
        RESTART_NO,
        RESTART_ON_SUCCESS,
        RESTART_ON_FAILURE,
        RESTART_ON_ABNORMAL,
        RESTART_ON_WATCHDOG,
        RESTART_ON_ABORT,
        RESTART_ALWAYS,
        _RESTART_MODE_MAX,
} restart_mode;

typedef enum kill_mode {
        KILL_CONTROL_GROUP,
        KILL_MIXED,
        KILL_PROCESS,
        KILL_NONE,
        _KILL_MODE_MAX,
} kill_mode;

typedef enum output_kind {
        OUTPUT_INHERIT, /* stdout: the console; stderr: wherever stdout goes */
        OUTPUT_NULL,
        OUTPUT_JOURNAL, /* vigil's log capture; "syslog" is an alias */
        OUTPUT_KMSG,    /* log capture, copied to the kernel log */
        OUTPUT_FILE,    /* file:PATH */
        OUTPUT_APPEND,  /* append:PATH */
        OUTPUT_TRUNCATE,
        _OUTPUT_KIND_MAX,
} output_kind;

typedef struct output_setting {
        output_kind kind;
        bool console; /* "+console": also echoed to the console */
        char *path;   /* for file:, append:, truncate: */
} output_setting;

/* Exit codes 0..255 and signals 1..64 that a status list names. */
typedef struct exit_status_set {
        uint64_t status[4];
        uint64_t signal;
} exit_status_set;

bool exit_status_set_has_status(const exit_status_set *s, int status);
bool exit_status_set_has_signal(const exit_status_set *s, int sig);
bool exit_status_set_is_empty(const exit_status_set *s);
/* Nothing in it: what a unit's status lists point to until one is set. */
extern const exit_status_set exit_status_set_empty;

typedef struct exec_list {
        exec_command *items;
        size_t n;
} exec_list;

/* [Unit] Documentation= and the dependencies: most units have none (WantedBy= is apart), so
 * they share an empty block. */
typedef struct unit_relations {
        char **documentation;
        char **after, **before, **requires, **wants, **binds_to, **conflicts;
} unit_relations;

extern const unit_relations unit_no_relations;

/* How restarts back off beyond RestartSec= (vigil's extensions): most units set none, so they
 * share the defaults. Plain values only: they change live (unit_set_property()). */
typedef struct unit_backoff {
        unsigned restart_steps;
        usec_t restart_max_delay;        /* USEC_INFINITY: not set */
        usec_t restart_backoff_reset;    /* uptime that resets the backoff */
        usec_t restart_randomized_delay; /* jitter added to each restart delay */
        usec_t start_limit_retry;        /* retry after the start limit; USEC_INFINITY: never */
} unit_backoff;

extern const unit_backoff unit_backoff_defaults;

/* The commands around the main one: most units have none, so they share an empty block. */
typedef struct unit_commands {
        exec_list exec_start_pre, exec_start_post, exec_stop, exec_reload;
} unit_commands;

extern const unit_commands unit_no_commands;

typedef struct env_file {
        char *path;
        bool missing_ok; /* "-" prefix */
} env_file;

typedef struct rlimit_setting {
        bool set;
        struct rlimit limit;
} rlimit_setting;

#define RLIMIT_COUNT RLIMIT_NLIMITS

/* Every limit unset: what unit->limits points to until one is set. */
extern const rlimit_setting unit_no_limits[RLIMIT_COUNT];

/* How the service's processes run, beyond User= and Group=: a unit with only ExecStart=
 * and Restart= sets none of this, so most units share the defaults. */
typedef struct unit_process {
        char **supplementary_groups;
        char *working_directory;           /* NULL: "/" for root, or ~ */
        bool working_directory_home;       /* "~": the user's home */
        bool working_directory_missing_ok; /* "-" prefix */
        mode_t umask;
        int no_new_privileges; /* -1: unset (yes in a container, else no) */
        char **environment;
        env_file *environment_files;
        size_t n_environment_files;
        /* Limit*=: RLIMIT_COUNT entries, indexed by RLIMIT_*; unit_no_limits (none set)
         * until a unit or its policy sets one, so a block carries a pointer, not 384 bytes. */
        const rlimit_setting *limits;
        output_setting std_output, std_error;
        char *syslog_identifier;
        uint64_t capability_bounding_set; /* bit per capability; all ones: unchanged */
        uint64_t ambient_capabilities;
} unit_process;

/* UMask=0022, StandardOutput=journal, nothing else set: what unit->process points to until
 * a setting of it is made. */
extern const unit_process unit_process_defaults;

/* Where a value came from: the last assignment that set it. */
typedef struct unit_source {
        const char *path; /* points into unit->files */
        unsigned line;
} unit_source;

#define UNIT_SOURCE_ROWS_MAX 1024 /* directive table rows a source can name (units/unit.c) */

/* The same, stored compactly (5 bytes), for each directive table row that was set. */
typedef struct __attribute__((packed)) unit_source_slot {
        uint64_t row : 10;  /* < UNIT_SOURCE_ROWS_MAX */
        uint64_t file : 9;  /* 1 + index into unit->files: unit, drop-ins, policy */
        uint64_t line : 21; /* files are at most UNIT_FILE_MAX bytes, so fewer lines */
} unit_source_slot;

typedef enum network_mode {
        NETWORK_HOST, /* the host's network namespace */
        NETWORK_NONE, /* an own network namespace with only loopback */
        _NETWORK_MODE_MAX,
} network_mode;

typedef enum mount_kind {
        MOUNT_BIND, /* Volume=, BindPaths=, BindReadOnlyPaths= */
        MOUNT_TMPFS,
} mount_kind;

/* One mount inside a container, in the order the unit gave them. */
typedef struct mount_entry {
        mount_kind kind;
        char *source;  /* bind: an absolute host path, or a volume name when named */
        char *target;  /* absolute path inside the container */
        char *options; /* tmpfs: mount options ("size=64m,mode=1777"); bind: NULL */
        bool read_only;
        bool missing_ok; /* "-" prefix of BindPaths= */
        uint8_t origin;  /* the directive that made it (an empty assignment drops its own) */
        bool named;      /* source names a volume under VOLUMES/, created on first use */
        bool chown;      /* Volume= option U: owned by the container's User=/Group= */
} mount_entry;

typedef struct unit_container {
        /* The service runs in a container: Image=, RootImage= or RootDirectory= set. */
        char *image;          /* [Container] Image=NAME: the image store's current version */
        char *root_image;     /* [Service] RootImage=: a squashfs file */
        char *root_directory; /* [Service] RootDirectory=: a directory tree */
        char *hostname;       /* [Container] HostName=; NULL: the unit's prefix */
        network_mode network;
        bool read_only;  /* [Container] ReadOnly=, default yes */
        bool keep_ready; /* [Container] KeepReady= (vigil): the next start prepared ahead */
        int user_ns;     /* [Container] UserNS=/[Service] PrivateUsers=: -1 unset, 0 no, 1 yes */
        mount_entry *mounts;
        size_t n_mounts;
        exec_list health_cmd; /* [Container] HealthCmd=: an updated image's health check */
} unit_container;

/* No system call filter: what unit->seccomp points to until one is set. */
extern const unit_seccomp unit_seccomp_defaults;

/* No container: what unit->container points to until a setting of it is made. */
extern const unit_container unit_container_defaults;

typedef struct unit unit;

struct unit {
        char *name;   /* foo@bar.service; one allocation with prefix and instance */
        char *prefix; /* foo */
        char *policy_path;
        char **files; /* every file that contributed: policy, unit, drop-ins */

        /* [Unit] */
        char *description;
        const unit_relations *relations; /* unit_no_relations until the unit sets one */
        usec_t start_limit_interval;
        unsigned start_limit_burst;

        /* [Service] (the small fields in pairs: a unit is kept per service) */
        service_type type;
        exec_list exec_start;
        const unit_commands *commands; /* unit_no_commands until the unit sets one */
        restart_mode restart;
        bool packed;        /* its strings and lists are in its own allocation (units/unit.c) */
        uint16_t n_sources; /* at most one per directive table row */
        usec_t restart_sec;
        /* unit_backoff_defaults until the unit or its policy sets one */
        const unit_backoff *backoff;
        /* exit_status_set_empty until the unit or its policy sets one */
        const exit_status_set *restart_prevent_exit_status, *success_exit_status;
        usec_t timeout_start, timeout_stop; /* USEC_INFINITY: no timeout */
        int kill_signal;
        kill_mode kill_mode;
        usec_t watchdog;
        char *user, *group;
        /* unit_process_defaults until the unit or its policy sets one of them */
        const unit_process *process;
        char *policy;
        /* units/unit-resource.c: unit_resource_defaults until the unit or its policy sets one
         * (most units set none, and the block is about 280 bytes) */
        const unit_resource *resource;
        /* units/unit-seccomp.c: unit_seccomp_defaults until the unit or its policy sets one */
        const unit_seccomp *seccomp;

        /* [Container], RootDirectory=, RootImage=: units/unit-container.c;
         * unit_container_defaults until the unit or its policy sets one */
        const unit_container *container;

        /* [Install] */
        char **wanted_by;

        unit_source_slot *sources; /* see unit_directive_source() */
};

typedef struct unit_load_options {
        /* where Policy=NAME is looked up; NULL: VIGIL_CONFIG_DIR/policies */
        const char *policy_dir;
} unit_load_options;

#define UNIT_FILE_MAX (1024 * 1024)
#define UNIT_DROPINS_MAX 256
_Static_assert(UNIT_FILE_MAX + 1 < (1 << 21) && 1 + UNIT_DROPINS_MAX + 1 < (1 << 9),
               "unit_source_slot holds every line and file");
#define UNIT_LIST_MAX 4096 /* entries in one list directive */

unit *unit_free(unit *u);
static inline void unit_freep(unit **u) {
        unit_free(*u);
}
#define _cleanup_unit_free_ _cleanup_(unit_freep)

/* Loads PATH (a NAME.service file), its drop-ins NAME.service.d/?*.conf (for an
 * instance also the template's, first) and the policy it names. Every problem
 * goes to diags. Returns 0 and the unit, -EBADMSG when any error was
 * reported (no unit), or another -errno (also reported). A template file
 * (foo@.service) is checked as if instantiated with "instance"; load_as,
 * when not NULL, names the instance to load PATH as. */
int unit_load_file(const char *path, const char *load_as, const unit_load_options *opts,
                   diag_list *diags, unit **ret);

/* Parses a unit from memory with no file system access (Policy= is checked
 * for syntax only). For fuzzing and tests. */
int unit_load_buffer(const char *name, const char *path, const char *data, size_t size,
                     diag_list *diags, unit **ret);

/* Checks a policy file on its own. */
int policy_check_file(const char *path, diag_list *diags);
int policy_check_buffer(const char *path, const char *data, size_t size, diag_list *diags);

/* A live change of one setting in u, a shallow copy of the loaded unit base: the restart
 * rules (Restart=, RestartSec=, ..., StartLimitBurst=) and the resource settings
 * (CPUWeight=, MemoryMax=, ...), parsed as in a unit file. A block u still shares with base
 * is copied before it is written, so base keeps its settings. 0, -ENOENT when KEY cannot
 * change live, -EINVAL with *ret_error saying why, -ENOMEM. */
int unit_set_property(unit *u, const unit *base, const char *key, const char *value,
                      char **ret_error);
/* After unit_set_property() on a copy: unit_changes_take() makes the copy's settings base's
 * (freeing the blocks of base the copy no longer shares), unit_changes_drop() forgets them
 * (freeing the blocks the copy made). */
void unit_changes_take(unit *base, const unit *copy);
void unit_changes_drop(unit *copy, const unit *base);
/* The loader's whole-unit checks, after live changes: 0, or -EINVAL with *ret_error. */
int unit_check(unit *u, char **ret_error);

/* The file:line that set Section.Key: true, or false when it has its default. */
bool unit_directive_source(const unit *u, const char *section, const char *key, unit_source *ret);

/* The instance, bar of foo@bar.service, or NULL: after the prefix in the name's allocation. */
static inline const char *unit_instance(const unit *u) {
        return strchr(u->name, '@') ? u->prefix + strlen(u->prefix) + 1 : NULL;
}

/* The unit file: the first of unit->files. */
static inline const char *unit_path(const unit *u) {
        return u->files ? u->files[0] : NULL;
}

/* True when the service runs in its own root (Image=, RootImage=, RootDirectory=). */
static inline bool unit_is_container(const unit *u) {
        return u->container->image || u->container->root_image || u->container->root_directory;
}

/* Image, volume and policy names: up to 64 of [A-Za-z0-9_.-], not starting with "." or
 * "-" (so never a path or an option). */
bool image_name_is_valid(const char *s);
const char *network_mode_to_string(network_mode m);

const char *service_type_to_string(service_type t);
const char *restart_mode_to_string(restart_mode m);
const char *kill_mode_to_string(kill_mode m);
