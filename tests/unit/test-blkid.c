/* Unit tests for init/blkid.c: file system images made by the mkfs tools (each skipped when
 * its tool is missing) in a directory laid out like /sys/class/block and /dev. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkid.h"
#include "macro.h"
#include "tap.h"

static char root[] = "/tmp/test-blkid.XXXXXX";
/* What the devices present are about, in the names of the checks. */
static const char *context = "";

static bool have(const char *tool) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "PATH=$PATH:/sbin:/usr/sbin command -v %s > /dev/null 2>&1",
                 tool);
        return system(cmd) == 0;
}

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        r = system(cmd);
        if (r != 0)
                printf("# failed (%d): %s\n", r, cmd);
        return r;
}

/* sys/NAME/size in 512-byte sectors (the file's size unless given), dev/NAME the image. */
static void add_device(const char *name, long sectors) {
        char path[PATH_MAX];
        struct stat st;
        FILE *f;

        snprintf(path, sizeof(path), "%s/sys/%s", root, name);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/dev/%s", root, name);
        if (sectors < 0)
                sectors = stat(path, &st) == 0 ? (long) (st.st_size / 512) : 0;
        snprintf(path, sizeof(path), "%s/sys/%s/size", root, name);
        f = fopen(path, "we");
        if (f) {
                fprintf(f, "%ld\n", sectors);
                fclose(f);
        }
}

/* An image of mib MiB made by "tool args PATH", as device name. */
static bool make(const char *name, unsigned mib, const char *tool, const char *args) {
        char dev[PATH_MAX];

        snprintf(dev, sizeof(dev), "%s/dev/%s", root, name);
        if (sh("truncate -s %uM %s && PATH=$PATH:/sbin:/usr/sbin %s %s %s > /dev/null 2>&1", mib,
               dev, tool, args, dev) != 0)
                return false;
        add_device(name, -1);
        return true;
}

typedef struct Want {
        const char *spec;
        int r;
        const char *node, *other; /* device names under dev/ */
} Want;

static void check(const Want *w) {
        char *node = NULL, *other = NULL, *value = NULL, sys[PATH_MAX], dev[PATH_MAX],
             want[PATH_MAX * 2];
        BlkidTag tag;
        int r;

        snprintf(sys, sizeof(sys), "%s/sys", root);
        snprintf(dev, sizeof(dev), "%s/dev", root);
        r = blkid_parse_spec(w->spec, &tag, &value);
        if (r == 0)
                r = blkid_find(sys, dev, tag, value, &node, &other, NULL);
        tap_inteq(r, w->r, "%s%s: result", context, w->spec);
        if (w->node) {
                snprintf(want, sizeof(want), "%s/%s", dev, w->node);
                tap_streq(node, want, "%s%s: device", context, w->spec);
        }
        if (w->other) {
                snprintf(want, sizeof(want), "%s/%s", dev, w->other);
                tap_streq(other, want, "%s%s: the other device", context, w->spec);
        }
        free(node);
        free(other);
        free(value);
}

static void check_info(const char *name, const char *type, const char *uuid, const char *label) {
        char path[PATH_MAX];
        BlkidInfo info = {};
        int fd, r;

        snprintf(path, sizeof(path), "%s/dev/%s", root, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        r = blkid_probe_fd(fd, &info);
        if (fd >= 0)
                close(fd);
        tap_inteq(r, 0, "%s: probed", name);
        tap_streq(info.type, type, "%s: type", name);
        if (uuid)
                tap_streq(info.uuid, uuid, "%s: uuid", name);
        tap_streq(info.label, label, "%s: label", name);
}

static void skip(const char *what) {
        tap_ok(1, "# SKIP %s", what);
}

static void test_parse_spec(void) {
        static const struct {
                const char *spec;
                int r;
                BlkidTag tag;
                const char *value;
        } cases[] = {
                { "UUID=1234-ABCD", 0, BLKID_TAG_UUID, "1234-ABCD" },
                { "LABEL=\"my data\"", 0, BLKID_TAG_LABEL, "my data" },
                { "LABEL=\"", 0, BLKID_TAG_LABEL, "\"" },
                { "PARTUUID=x", 0, BLKID_TAG_PARTUUID, "x" },
                { "PARTLABEL=\"esp\"", 0, BLKID_TAG_PARTLABEL, "esp" },
                { "LABEL=", -EINVAL, 0, NULL },
                { "UUID=\"\"", -EINVAL, 0, NULL },
                { "/dev/vda", -ENOENT, 0, NULL },
                { "LABELS=x", -ENOENT, 0, NULL },
                { "uuid=x", -ENOENT, 0, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                BlkidTag tag = _BLKID_TAG_MAX;
                char *value = NULL;
                int r = blkid_parse_spec(cases[i].spec, &tag, &value);

                tap_inteq(r, cases[i].r, "spec %s: result", cases[i].spec);
                if (r == 0) {
                        tap_inteq(tag, cases[i].tag, "spec %s: tag", cases[i].spec);
                        tap_streq(value, cases[i].value, "spec %s: value", cases[i].spec);
                }
                free(value);
        }
        tap_streq(blkid_tag_disk_dir(BLKID_TAG_PARTLABEL), "by-partlabel", "by-partlabel");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

int main(void) {
        char path[PATH_MAX];

        if (!mkdtemp(root))
                return 1;
        snprintf(path, sizeof(path), "%s/sys", root);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/dev", root);
        mkdir(path, 0755);

        test_parse_spec();

        /* ext4: found by UUID (any case) and label; a second copy is ambiguous. */
        if (!make("vda", 8, "mkfs.ext4",
                  "-q -F -U 3f2a9c1e-5b7d-4e21-9a0c-1d2e3f405162 -L vigil-data")) {
                tap_ok(0, "mkfs.ext4");
                return tap_done();
        }
        check_info("vda", "ext4", "3f2a9c1e-5b7d-4e21-9a0c-1d2e3f405162", "vigil-data");
        check(&(Want){ "LABEL=vigil-data", 0, "vda", NULL });
        check(&(Want){ "LABEL=\"vigil-data\"", 0, "vda", NULL });
        check(&(Want){ "UUID=3f2a9c1e-5b7d-4e21-9a0c-1d2e3f405162", 0, "vda", NULL });
        check(&(Want){ "UUID=3F2A9C1E-5B7D-4E21-9A0C-1D2E3F405162", 0, "vda", NULL });
        check(&(Want){ "LABEL=VIGIL-DATA", -ENXIO, NULL, NULL });
        check(&(Want){ "LABEL=vigil", -ENXIO, NULL, NULL });
        check(&(Want){ "UUID=3f2a9c1e-5b7d-4e21-9a0c-1d2e3f40516", -ENXIO, NULL, NULL });

        if (make("vdb", 8, "mkfs.ext2", "-q -F -L \"my data\"")) {
                check_info("vdb", "ext2", NULL, "my data");
                check(&(Want){ "LABEL=\"my data\"", 0, "vdb", NULL });
        }

        /* sysfs writes '/' in a name as '!': cciss!c0d0 is dev/cciss/c0d0. */
        if (sh("mkdir %s/dev/cciss && PATH=$PATH:/sbin:/usr/sbin "
               "mkfs.ext3 -q -F -L subdir %s/dev/cciss/c0d0 4M > /dev/null 2>&1",
               root, root) == 0) {
                add_device("cciss!c0d0", 8192);
                check_info("cciss/c0d0", "ext3", NULL, "subdir");
                check(&(Want){ "LABEL=subdir", 0, "cciss/c0d0", NULL });
        }

        /* Held by a dm device, or a loop device with no file: never looked at. */
        sh("cp --sparse=always %s/dev/vda %s/dev/sdz && mkdir -p %s/sys/sdz/holders/dm-0", root,
           root, root);
        add_device("sdz", -1);
        sh("cp --sparse=always %s/dev/vda %s/dev/loop0", root, root);
        add_device("loop0", 0);
        context = "a held device, a loop device of size 0: ";
        check(&(Want){ "LABEL=vigil-data", 0, "vda", NULL });

        /* A symlink in dev/ to the same file system is not followed. */
        snprintf(path, sizeof(path), "%s/dev/evil", root);
        sh("cp --sparse=always %s/dev/vda %s/outside", root, root);
        if (symlink("../outside", path) < 0)
                printf("# symlink: %m\n");
        add_device("evil", 16384);
        sh("mkfifo %s/dev/fifo0", root);
        add_device("fifo0", 16384);
        context = "a symlink and a FIFO in dev/: ";
        check(&(Want){ "LABEL=vigil-data", 0, "vda", NULL });

        /* Truncated in the superblock, and garbage: no match, no harm. */
        sh("head -c 1100 %s/dev/vda > %s/dev/vdc", root, root);
        add_device("vdc", 2);
        sh("head -c 131072 /dev/urandom > %s/dev/vdd", root);
        add_device("vdd", -1);
        context = "a truncated and a garbage image: ";
        check(&(Want){ "LABEL=vigil-data", 0, "vda", NULL });
        check(&(Want){ "LABEL=nothing", -ENXIO, NULL, NULL });

        context = "";
        if (have("mkfs.xfs")) {
                if (make("xfs0", 300, "mkfs.xfs",
                         "-q -f -m uuid=0b3f4e55-6a1c-4d2b-8e9f-a0b1c2d3e4f5 -L xfsdata")) {
                        check_info("xfs0", "xfs", "0b3f4e55-6a1c-4d2b-8e9f-a0b1c2d3e4f5",
                                   "xfsdata");
                        check(&(Want){ "LABEL=xfsdata", 0, "xfs0", NULL });
                }
        } else
                skip("mkfs.xfs is missing (xfsprogs)");

        if (have("mkfs.btrfs")) {
                if (make("btr0", 128, "mkfs.btrfs",
                         "-q -f -U 7c9d8e7f-1a2b-4c3d-9e8f-0a1b2c3d4e5f -L \"btrfs data\"")) {
                        check_info("btr0", "btrfs", "7c9d8e7f-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
                                   "btrfs data");
                        check(&(Want){ "UUID=7C9D8E7F-1A2B-4C3D-9E8F-0A1B2C3D4E5F", 0, "btr0",
                                       NULL });
                }
        } else
                skip("mkfs.btrfs is missing (btrfs-progs)");

        if (have("mkfs.vfat")) {
                if (make("fat16", 16, "mkfs.vfat", "-F 16 -i 1a2b3c4d -n ESP16"))
                        check_info("fat16", "vfat", "1A2B-3C4D", "ESP16");
                if (make("fat32", 64, "mkfs.vfat", "-F 32 -i deadbeef -n BOOT32")) {
                        check_info("fat32", "vfat", "DEAD-BEEF", "BOOT32");
                        check(&(Want){ "UUID=dead-beef", 0, "fat32", NULL });
                        check(&(Want){ "LABEL=BOOT32", 0, "fat32", NULL });
                }
                if (make("fat12", 1, "mkfs.vfat", "-F 12 -i 00c0ffee"))
                        check_info("fat12", "vfat", "00C0-FFEE", "");
        } else
                skip("mkfs.vfat is missing (dosfstools)");

        if (have("mkswap") &&
            make("swap0", 4, "mkswap", "-U 11111111-2222-4333-8444-555555555555 -L swappy")) {
                check_info("swap0", "swap", "11111111-2222-4333-8444-555555555555", "swappy");
                check(&(Want){ "LABEL=swappy", 0, "swap0", NULL });
        } else
                skip("mkswap is missing");

        /* GPT: PARTUUID and PARTLABEL name the partition device (sys/DISK/PART/partition). */
        if (have("sfdisk")) {
                snprintf(path, sizeof(path), "%s/dev/gpt0", root);
                sh("truncate -s 4M %s && printf 'label: gpt\\n"
                   "start=2048, size=2048, uuid=5D2C6E0A-1B3C-4D5E-8F90-A1B2C3D4E5F6, name=\"game "
                   "data\"\\n"
                   "start=4096, size=2048, name=other\\n' | PATH=$PATH:/sbin:/usr/sbin sfdisk -q "
                   "%s > /dev/null",
                   path, path);
                add_device("gpt0", -1);
                sh("mkdir -p %s/sys/gpt0/gpt0p1 %s/sys/gpt0/gpt0p2 %s/sys/gpt0p1 && "
                   "echo 1 > %s/sys/gpt0/gpt0p1/partition && echo 2 > %s/sys/gpt0/gpt0p2/partition "
                   "&& echo 1 > %s/sys/gpt0p1/partition && echo 2048 > %s/sys/gpt0p1/size",
                   root, root, root, root, root, root, root);
                check(&(Want){ "PARTUUID=5d2c6e0a-1b3c-4d5e-8f90-a1b2c3d4e5f6", 0, "gpt0p1",
                               NULL });
                check(&(Want){ "PARTLABEL=\"game data\"", 0, "gpt0p1", NULL });
                check(&(Want){ "PARTLABEL=other", 0, "gpt0p2", NULL });
                check(&(Want){ "PARTLABEL=nothing", -ENXIO, NULL, NULL });
                /* A damaged entry array fails its CRC: the table is not trusted. */
                sh("cp --sparse=always %s %s/dev/gpt1 && printf X | dd of=%s/dev/gpt1 bs=1 "
                   "seek=$((1024 + 56)) conv=notrunc status=none",
                   path, root, root);
                add_device("gpt1", -1);
                context = "a copy with a bad entry CRC: ";
                sh("mkdir -p %s/sys/gpt1/gpt1p2 && echo 2 > %s/sys/gpt1/gpt1p2/partition", root,
                   root);
                check(&(Want){ "PARTLABEL=other", 0, "gpt0p2", NULL });
                /* A copy of the disk: the same PARTUUID twice. */
                sh("cp --sparse=always %s %s/dev/gpt2 && mkdir -p %s/sys/gpt2/gpt2p1 && "
                   "echo 1 > %s/sys/gpt2/gpt2p1/partition",
                   path, root, root, root);
                add_device("gpt2", -1);
                context = "a copy of the disk: ";
                Want w = { "PARTUUID=5D2C6E0A-1B3C-4D5E-8F90-A1B2C3D4E5F6", -ENOTUNIQ };
                check(&w);
        } else
                skip("sfdisk is missing (fdisk)");

        /* Last: a copy of vda makes its label and UUID ambiguous, both devices named. */
        sh("cp --sparse=always %s/dev/vda %s/dev/vdz", root, root);
        add_device("vdz", -1);
        {
                char *node = NULL, *other = NULL, sys[PATH_MAX], dev[PATH_MAX];
                int r;

                snprintf(sys, sizeof(sys), "%s/sys", root);
                snprintf(dev, sizeof(dev), "%s/dev", root);
                r = blkid_find(sys, dev, BLKID_TAG_LABEL, "vigil-data", &node, &other, NULL);
                tap_inteq(r, -ENOTUNIQ, "two devices with one label: ambiguous");
                tap_ok(node && other && strcmp(node, other) != 0 &&
                               (endswith(node, "/vda") || endswith(node, "/vdz")) &&
                               (endswith(other, "/vda") || endswith(other, "/vdz")),
                       "ambiguous: both devices named (%s, %s)", node, other);
                free(node);
                free(other);
                r = blkid_find(sys, dev, BLKID_TAG_UUID, "3F2A9C1E-5B7D-4E21-9A0C-1D2E3F405162",
                               &node, &other, NULL);
                tap_inteq(r, -ENOTUNIQ, "two devices with one UUID: ambiguous");
                free(node);
                free(other);
        }

        if (nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
                printf("# failed to remove %s\n", root);
        return tap_done();
}
