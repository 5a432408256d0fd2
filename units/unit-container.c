/* Container directives: [Container] (Quadlet's keys), RootDirectory=, RootImage=, bind
 * mounts, and the privilege settings of [Service]. */
#include <sys/capability.h>

#include "unit-private.h"

#define MOUNTS_MAX 256
#define HOSTNAME_MAX 64

static const char *const network_mode_names[_NETWORK_MODE_MAX] = {
        [NETWORK_HOST] = "host",
        [NETWORK_NONE] = "none",
};

const char *network_mode_to_string(network_mode m) {
        return m >= 0 && m < _NETWORK_MODE_MAX ? network_mode_names[m] : NULL;
}

static int parse_image(load_ctx *c, const char *value, void *field) {
        if (*value && !image_name_is_valid(value))
                return load_invalid(c, value,
                                    "an image name has up to 64 letters, digits, \"_\", \".\" or "
                                    "\"-\" and does not start with \".\" or \"-\"");
        return load_parse_string(c, value, field);
}

static int parse_abs_path(load_ctx *c, const char *value, void *field) {
        if (*value && !path_is_normalized_absolute(value))
                return load_invalid(c, value, "expected an absolute, normalized path");
        return load_parse_string(c, value, field);
}

static int parse_hostname(load_ctx *c, const char *value, void *field) {
        size_t n = strlen(value);

        /* RFC 1123 labels: letters, digits and "-", joined by dots. */
        if (n > HOSTNAME_MAX ||
            strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789-.") != n ||
            value[0] == '-' || value[0] == '.' || strstr(value, ".."))
                return load_invalid(c, value,
                                    "a host name has up to 64 letters, digits, \"-\" and dots");
        return load_parse_string(c, value, field);
}

static int parse_network(load_ctx *c, const char *value, void *field) {
        if (streq(value, "private"))
                value = "none";
        if (*value && !streq(value, "host") && !streq(value, "none"))
                return load_invalid(c, value,
                                    "vigil knows Network=host (the host's network) and "
                                    "Network=none (only loopback)");
        return load_parse_enum(c, value, field, network_mode_names, _NETWORK_MODE_MAX,
                               "host or none");
}

/* Quadlet's UserNS=: "auto" (a range of its own) or "host" (none). */
static int parse_userns(load_ctx *c, const char *value, void *field) {
        if (!*value) {
                load_reset_field(c, field, sizeof(int));
                return 0;
        }
        if (streq(value, "auto"))
                *(int *) field = 1;
        else if (streq(value, "host"))
                *(int *) field = 0;
        else
                return load_invalid(c, value,
                                    "vigil knows UserNS=auto (uids 0-65535 mapped to a host "
                                    "range of the service's own) and UserNS=host");
        return 0;
}

/* The unit's block: a parser runs after load_field() made it the unit's own. */
static unit_container *own_container(load_ctx *c) {
        return (unit_container *) c->u->container;
}

static int mount_add(load_ctx *c, const mount_entry *m) {
        unit_container *ct = own_container(c);
        mount_entry *l;

        if (ct->n_mounts >= MOUNTS_MAX)
                return load_report(c, "more than %d mounts in one container", MOUNTS_MAX);
        l = reallocarray(ct->mounts, ct->n_mounts + 1, sizeof(mount_entry));
        if (!l)
                return -ENOMEM;
        ct->mounts = l;
        l[ct->n_mounts++] = *m;
        return 0;
}

/* Which directive made a mount: Volume=, Tmpfs=, BindPaths=, BindReadOnlyPaths=. */
enum {
        ORIGIN_VOLUME,
        ORIGIN_TMPFS,
        ORIGIN_BIND,
        ORIGIN_BIND_RO
};

/* An empty assignment drops the earlier mounts of the same directive. */
static void mounts_reset(load_ctx *c, uint8_t origin) {
        unit_container *ct = own_container(c);
        size_t j = 0;

        for (size_t i = 0; i < ct->n_mounts; i++) {
                mount_entry *m = &ct->mounts[i];

                if (m->origin == origin) {
                        free(m->source);
                        free(m->target);
                        free(m->options);
                        continue;
                }
                ct->mounts[j++] = *m;
        }
        ct->n_mounts = j;
}

static int mount_add_owned(load_ctx *c, mount_entry *m) {
        int r;

        if (!m->target || (m->kind == MOUNT_BIND && !m->source) ||
            (m->kind == MOUNT_TMPFS && !m->options))
                r = -ENOMEM;
        else
                r = mount_add(c, m);
        if (r < 0) {
                free(m->source);
                free(m->target);
                free(m->options);
        }
        return r;
}

static bool target_is_reserved(const char *t) {
        static const char *const reserved[] = { "/", "/proc", "/dev", "/sys" };

        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (streq(t, reserved[i]))
                        return true;
        return startswith(t, "/proc/") || startswith(t, "/sys/");
}

/* Volume=SOURCE:TARGET[:OPTIONS]: SOURCE is a volume name (a directory under
 * /var/lib/vigil/volumes/, created on first use) or an absolute host path; OPTIONS are
 * ro, rw and U (as in Podman: the directory belongs to the container's User=). */
static int parse_volume(load_ctx *c, const char *value, void *field) {
        _cleanup_free_ char *copy = NULL;
        char *src, *dst, *opts;
        mount_entry m = { .kind = MOUNT_BIND, .origin = ORIGIN_VOLUME };

        if (!*value) {
                mounts_reset(c, ORIGIN_VOLUME);
                return 0;
        }
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        src = copy;
        dst = strchr(src, ':');
        if (!dst)
                return load_invalid(c, value, "expected SOURCE:TARGET[:OPTIONS]");
        *dst++ = 0;
        opts = strchr(dst, ':');
        if (opts)
                *opts++ = 0;
        if (!path_is_normalized_absolute(dst))
                return load_invalid(c, value, "the target must be an absolute, normalized path");
        if (target_is_reserved(dst))
                return load_invalid(c, value, "the target may not be /, or in /proc, /dev or /sys");
        if (src[0] == '/') {
                if (!path_is_normalized_absolute(src))
                        return load_invalid(c, value,
                                            "a host path must be absolute and normalized");
        } else {
                if (!image_name_is_valid(src))
                        return load_invalid(c, value,
                                            "the source is a volume name (letters, digits, "
                                            "\"_\", \".\", \"-\") or an absolute host path");
                m.named = true;
        }
        m.source = strdup(src);
        if (opts) {
                const char *p = opts;

                for (;;) {
                        size_t n = strcspn(p, ",");

                        if (n == 2 && (strncmp(p, "ro", 2) == 0))
                                m.read_only = true;
                        else if (n == 2 && (strncmp(p, "rw", 2) == 0))
                                m.read_only = false;
                        else if (n == 1 && *p == 'U')
                                m.chown = true;
                        else {
                                free(m.source);
                                return load_invalid(c, value,
                                                    "vigil knows the volume options ro, rw and U");
                        }
                        if (!p[n])
                                break;
                        p += n + 1;
                }
        }
        m.target = strdup(dst);
        return mount_add_owned(c, &m);
}

/* BindPaths=/BindReadOnlyPaths=: [-]SOURCE[:TARGET[:OPTIONS]], space separated. */
static int parse_bind_paths(load_ctx *c, const char *value, void *field) {
        const char *p = value;
        bool read_only = c->d->arg;
        int r;

        if (!*value) {
                mounts_reset(c, read_only ? ORIGIN_BIND_RO : ORIGIN_BIND);
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;
                mount_entry m = { .kind = MOUNT_BIND,
                                  .read_only = read_only,
                                  .origin = read_only ? ORIGIN_BIND_RO : ORIGIN_BIND };
                char *src, *dst, *opts;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                src = w;
                if (*src == '-') {
                        m.missing_ok = true;
                        src++;
                }
                dst = strchr(src, ':');
                if (dst)
                        *dst++ = 0;
                opts = dst ? strchr(dst, ':') : NULL;
                if (opts)
                        *opts++ = 0;
                if (!path_is_normalized_absolute(src))
                        return load_invalid(c, w,
                                            "the source must be an absolute, normalized path");
                if (dst && !path_is_normalized_absolute(dst))
                        return load_invalid(c, w,
                                            "the target must be an absolute, normalized path");
                if (target_is_reserved(dst ?: src))
                        return load_invalid(c, w,
                                            "the target may not be /, or in /proc, /dev or /sys");
                if (opts && !streq(opts, "rbind") && !streq(opts, "norbind"))
                        return load_invalid(c, w, "vigil knows the options rbind and norbind");
                m.source = strdup(src);
                m.target = strdup(dst ?: src);
                r = mount_add_owned(c, &m);
                if (r < 0)
                        return r;
        }
}

/* Tmpfs=PATH[:OPTIONS] (Quadlet; OPTIONS as for mount -t tmpfs, e.g. size=64m,mode=1777). */
static int parse_tmpfs(load_ctx *c, const char *value, void *field) {
        static const char *const allowed[] = { "size=", "mode=", "nr_inodes=", "uid=",
                                               "gid=",  "ro",    "rw",         "noexec",
                                               "exec",  "nodev", "nosuid" };
        mount_entry m = { .kind = MOUNT_TMPFS, .origin = ORIGIN_TMPFS };
        const char *colon, *opts;
        _cleanup_free_ char *dst = NULL;

        if (!*value) {
                mounts_reset(c, ORIGIN_TMPFS);
                return 0;
        }
        colon = strchr(value, ':');
        dst = colon ? strndup(value, (size_t) (colon - value)) : strdup(value);
        if (!dst)
                return -ENOMEM;
        if (!path_is_normalized_absolute(dst) || target_is_reserved(dst))
                return load_invalid(c, value,
                                    "expected an absolute, normalized path outside /proc, /dev "
                                    "and /sys");
        opts = colon ? colon + 1 : "";
        for (const char *p = opts; *p;) {
                size_t n = strcspn(p, ",");
                bool ok = false;

                for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                        size_t l = strlen(allowed[i]);

                        if (allowed[i][l - 1] == '=' ? n > l && (strncmp(p, allowed[i], l) == 0)
                                                     : n == l && (strncmp(p, allowed[i], l) == 0))
                                ok = true;
                }
                if (n == 2 && (strncmp(p, "ro", 2) == 0))
                        m.read_only = true;
                if (n == 2 && (strncmp(p, "rw", 2) == 0))
                        m.read_only = false;
                if (!ok)
                        return load_invalid(c, value,
                                            "tmpfs options are size=, mode=, nr_inodes=, uid=, "
                                            "gid=, ro, rw, noexec, exec, nodev, nosuid");
                p += n;
                if (*p)
                        p++;
        }
        m.target = TAKE_PTR(dst);
        m.options = strdup(opts);
        return mount_add_owned(c, &m);
}

/* A capability list: names with or without "CAP_", "~" inverts; several assignments
 * add up (CapabilityBoundingSet= combines them with OR as systemd does, and an
 * inverted list removes); an empty one means none. */
static int parse_caps(load_ctx *c, const char *value, void *field) {
        uint64_t *set = field, mask = 0;
        const char *p = value;
        bool invert = false;
        int r;

        /* Empty: no capabilities at all, as in systemd (not back to the full set). */
        if (!*value) {
                *set = 0;
                return 0;
        }
        if (*p == '~') {
                invert = true;
                p++;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL, *full = NULL;
                cap_value_t cap;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (strncasecmp(w, "cap_", 4) != 0 && asprintf_safe(&full, "cap_%s", w) < 0)
                        return -ENOMEM;
                if (cap_from_name(full ?: w, &cap) < 0 || cap < 0 || cap > 63)
                        return load_invalid(c, w, "not a capability name");
                mask |= UINT64_C(1) << cap;
        }
        /* The bounding set starts full: the first plain list replaces it. */
        if (c->d->arg &&
            !unit_directive_source(c->u, "Service", "CapabilityBoundingSet", &(unit_source){}) &&
            !invert)
                *set = 0;
        if (invert)
                *set &= ~mask;
        else
                *set |= mask;
        return 0;
}

const directive container_directives[] = {
        { "Container", "Image", parse_image, F_CONTAINER(image), D_SPECIFIERS, 0 },
        { "Container", "HostName", parse_hostname, F_CONTAINER(hostname), D_SPECIFIERS | D_POLICY,
          0 },
        { "Container", "User", load_parse_user_group, F(user), D_SPECIFIERS | D_POLICY, 0 },
        { "Container", "Group", load_parse_user_group, F(group), D_SPECIFIERS | D_POLICY, 0 },
        { "Container", "Network", parse_network, F_CONTAINER(network), D_POLICY, 0 },
        { "Container", "ReadOnly", load_parse_bool, F_CONTAINER(read_only), D_POLICY, 0 },
        { "Container", "KeepReady", load_parse_bool, F_CONTAINER(keep_ready), D_POLICY, 0 },
        { "Container", "UserNS", parse_userns, F_CONTAINER(user_ns), D_POLICY, 0 },
        { "Container", "Volume", parse_volume, F_CONTAINER(mounts), D_SPECIFIERS | D_POLICY, 0 },
        { "Container", "Tmpfs", parse_tmpfs, F_CONTAINER(mounts), D_SPECIFIERS | D_POLICY, 0 },
        { "Container", "HealthCmd", load_parse_exec, F_CONTAINER(health_cmd), D_SPECIFIERS, 0 },
        { "Service", "RootDirectory", parse_abs_path, F_CONTAINER(root_directory), D_SPECIFIERS,
          0 },
        { "Service", "RootImage", parse_abs_path, F_CONTAINER(root_image), D_SPECIFIERS, 0 },
        { "Service", "PrivateUsers", load_parse_tristate, F_CONTAINER(user_ns), D_POLICY, 0 },
        { "Service", "BindPaths", parse_bind_paths, F_CONTAINER(mounts), D_SPECIFIERS | D_POLICY,
          false },
        { "Service", "BindReadOnlyPaths", parse_bind_paths, F_CONTAINER(mounts),
          D_SPECIFIERS | D_POLICY, true },
        { "Service", "NoNewPrivileges", load_parse_tristate, F_PROCESS(no_new_privileges), D_POLICY,
          0 },
        { "Service", "CapabilityBoundingSet", parse_caps, F_PROCESS(capability_bounding_set),
          D_POLICY, true },
        { "Service", "AmbientCapabilities", parse_caps, F_PROCESS(ambient_capabilities), D_POLICY,
          false },
};
const size_t N_CONTAINER_DIRECTIVES = ELEMENTSOF(container_directives);

const unit_container unit_container_defaults = { .read_only = true, .user_ns = -1 };

void unit_container_free(const unit_container *ct) {
        unit_container *c = (unit_container *) ct;

        if (ct == &unit_container_defaults)
                return;
        free(c->image);
        free(c->root_image);
        free(c->root_directory);
        free(c->hostname);
        for (size_t i = 0; i < c->n_mounts; i++) {
                free(c->mounts[i].source);
                free(c->mounts[i].target);
                free(c->mounts[i].options);
        }
        free(c->mounts);
        free(c);
}

void unit_container_verify(load_ctx *c) {
        unit *u = c->u;
        const unit_container *ct = u->container;
        int roots = !!ct->image + !!ct->root_image + !!ct->root_directory;

        if (roots > 1) {
                load_at(c, "Container", "Image");
                load_report(c, "Image=, RootImage= and RootDirectory= each name the root: "
                               "set only one of them");
        }
        if (ct->n_mounts > 0 && roots == 0) {
                load_at(c, "Container", "Volume");
                load_report(c, "mounts (Volume=, Tmpfs=, BindPaths=) need a container root: "
                               "set Image=, RootImage= or RootDirectory=");
        }
        if (roots == 0 && unit_directive_source(u, "Container", "Network", &(unit_source){}) &&
            !c->policy) {
                load_at(c, "Container", "Network");
                load_report(c, "Network= needs a container root: set Image=, RootImage= or "
                               "RootDirectory=");
        }
        if (ct->health_cmd.n > 0 && !ct->image) {
                load_at(c, "Container", "HealthCmd");
                load_report(c, "HealthCmd= checks an updated image on trial: it needs Image=");
        }
        if (ct->health_cmd.n > 1) {
                load_at(c, "Container", "HealthCmd");
                load_report(c, "HealthCmd= takes one command, not %zu", ct->health_cmd.n);
        }
        if ((u->process->ambient_capabilities & ~u->process->capability_bounding_set) != 0) {
                load_at(c, "Service", "AmbientCapabilities");
                load_report(c, "AmbientCapabilities= names a capability that "
                               "CapabilityBoundingSet= removes");
        }
        for (size_t i = 0; i < ct->n_mounts; i++)
                for (size_t j = i + 1; j < ct->n_mounts; j++)
                        if (streq(ct->mounts[i].target, ct->mounts[j].target)) {
                                char esc[INI_ESCAPE_MAX];

                                load_at(c, "Container", "Volume");
                                load_report(c, "two mounts have the target %s",
                                            ini_escape(ct->mounts[j].target, esc, sizeof(esc)));
                        }
}
