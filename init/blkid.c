/* Finding a block device by the UUID or label in its superblock (see blkid.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "blkid.h"
#include "fileio.h"
#include "macro.h"

/* Far more block devices than any appliance has; a bound on the walk all the same. */
#define BLKID_DEVICES_MAX 16384
#define SYSFS_VALUE_MAX 64

static const struct {
        const char *name, *disk_dir;
} tags[_BLKID_TAG_MAX] = {
        [BLKID_TAG_UUID] = { "UUID", "by-uuid" },
        [BLKID_TAG_LABEL] = { "LABEL", "by-label" },
        [BLKID_TAG_PARTUUID] = { "PARTUUID", "by-partuuid" },
        [BLKID_TAG_PARTLABEL] = { "PARTLABEL", "by-partlabel" },
};

const char *blkid_tag_to_string(BlkidTag t) {
        return t >= 0 && t < _BLKID_TAG_MAX ? tags[t].name : NULL;
}

const char *blkid_tag_disk_dir(BlkidTag t) {
        return t >= 0 && t < _BLKID_TAG_MAX ? tags[t].disk_dir : NULL;
}

int blkid_parse_spec(const char *spec, BlkidTag *ret_tag, char **ret_value) {
        for (BlkidTag t = 0; t < _BLKID_TAG_MAX; t++) {
                size_t n = strlen(tags[t].name), l;
                const char *v;
                char *value;

                if (strncmp(spec, tags[t].name, n) != 0 || spec[n] != '=')
                        continue;
                v = spec + n + 1;
                l = strlen(v);
                if (l >= 2 && v[0] == '"' && v[l - 1] == '"')
                        value = strndup(v + 1, l - 2);
                else
                        value = strdup(v);
                if (!value)
                        return -ENOMEM;
                if (*value == '\0') {
                        free(value);
                        return -EINVAL;
                }
                *ret_tag = t;
                *ret_value = value;
                return 0;
        }
        return -ENOENT;
}

/* ---- superblocks ---- */

static uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
               (uint32_t) p[3] << 24;
}

/* All of buf from offset, or false (short device, read error). */
static bool read_at(int fd, uint64_t offset, void *buf, size_t size) {
        size_t done = 0;

        while (done < size) {
                ssize_t n = pread(fd, (uint8_t *) buf + done, size - done, (off_t) (offset + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                done += (size_t) n;
        }
        return true;
}

static void format_uuid(const uint8_t u[16], char ret[static BLKID_UUID_MAX + 1]) {
        snprintf(ret, BLKID_UUID_MAX + 1,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                 u[15]);
}

/* A fixed-size label field: up to its first NUL, trailing blanks dropped (FAT pads). */
static void copy_label(const uint8_t *p, size_t size, char ret[static BLKID_LABEL_MAX + 1]) {
        size_t n = strnlen((const char *) p, size < BLKID_LABEL_MAX ? size : BLKID_LABEL_MAX);

        while (n > 0 && p[n - 1] == ' ')
                n--;
        memcpy(ret, p, n);
        ret[n] = '\0';
}

static int probe_ext(int fd, BlkidInfo *ret) {
        uint8_t sb[256];
        uint32_t compat, incompat, ro_compat;

        if (!read_at(fd, 1024, sb, sizeof(sb)) || le16(sb + 0x38) != 0xEF53)
                return -ENODATA;
        compat = le32(sb + 0x5c);
        incompat = le32(sb + 0x60);
        ro_compat = le32(sb + 0x64);
        /* An external journal carries the same magic but is no file system to mount. */
        if (incompat & 0x0008)
                return -ENODATA;
        /* As libblkid: features beyond ext3's (filetype, recover, meta_bg; sparse_super,
         * large_file, btree_dir) make it ext4; a journal makes it ext3. */
        if ((incompat & ~(uint32_t) 0x0016) || (ro_compat & ~(uint32_t) 0x0007))
                ret->type = "ext4";
        else if (compat & 0x0004)
                ret->type = "ext3";
        else
                ret->type = "ext2";
        format_uuid(sb + 0x68, ret->uuid);
        copy_label(sb + 0x78, 16, ret->label);
        return 0;
}

static int probe_xfs(int fd, BlkidInfo *ret) {
        uint8_t sb[128];

        if (!read_at(fd, 0, sb, sizeof(sb)) || memcmp(sb, "XFSB", 4) != 0)
                return -ENODATA;
        ret->type = "xfs";
        format_uuid(sb + 32, ret->uuid);
        copy_label(sb + 108, 12, ret->label);
        return 0;
}

static int probe_btrfs(int fd, BlkidInfo *ret) {
        uint8_t sb[0x12b + 256];

        if (!read_at(fd, 64 * 1024, sb, sizeof(sb)) || memcmp(sb + 0x40, "_BHRfS_M", 8) != 0)
                return -ENODATA;
        ret->type = "btrfs";
        format_uuid(sb + 0x20, ret->uuid);
        copy_label(sb + 0x12b, 256, ret->label);
        return 0;
}

static bool is_power_of_2(unsigned v) {
        return v != 0 && (v & (v - 1)) == 0;
}

static int probe_vfat(int fd, BlkidInfo *ret) {
        uint8_t bs[512];
        unsigned sector_size, ext;

        if (!read_at(fd, 0, bs, sizeof(bs)) || bs[510] != 0x55 || bs[511] != 0xAA)
                return -ENODATA;
        /* An MBR or NTFS has the signature too: ask for a plausible BIOS parameter block. */
        sector_size = le16(bs + 11);
        if (sector_size < 512 || sector_size > 4096 || !is_power_of_2(sector_size) ||
            !is_power_of_2(bs[13]) || le16(bs + 14) == 0 || bs[16] == 0 ||
            (bs[21] != 0xF0 && bs[21] < 0xF8))
                return -ENODATA;
        /* No 16-bit sectors per FAT: FAT32, whose extended BPB starts later. */
        ext = le16(bs + 22) == 0 ? 0x40 : 0x24;
        if (bs[ext + 2] != 0x29 && bs[ext + 2] != 0x28)
                return -ENODATA;
        ret->type = "vfat";
        snprintf(ret->uuid, sizeof(ret->uuid), "%04X-%04X", le16(bs + ext + 5), le16(bs + ext + 3));
        if (bs[ext + 2] == 0x29)
                copy_label(bs + ext + 7, 11, ret->label);
        if (streq(ret->label, "NO NAME"))
                ret->label[0] = '\0';
        return 0;
}

static int probe_swap(int fd, BlkidInfo *ret) {
        static const unsigned page_sizes[] = { 4096, 8192, 16384, 65536 };
        uint8_t hdr[44];

        for (size_t i = 0; i < ELEMENTSOF(page_sizes); i++) {
                char magic[10];

                if (!read_at(fd, page_sizes[i] - 10, magic, sizeof(magic)))
                        return -ENODATA;
                if (memcmp(magic, "SWAPSPACE2", 10) != 0)
                        continue;
                if (!read_at(fd, 1024, hdr, sizeof(hdr)))
                        return -ENODATA;
                ret->type = "swap";
                format_uuid(hdr + 12, ret->uuid);
                copy_label(hdr + 28, 16, ret->label);
                return 0;
        }
        return -ENODATA;
}

int blkid_probe_fd(int fd, BlkidInfo *ret) {
        static int (*const probes[])(int, BlkidInfo *) = { probe_ext, probe_xfs, probe_btrfs,
                                                           probe_vfat, probe_swap };

        for (size_t i = 0; i < ELEMENTSOF(probes); i++) {
                *ret = (BlkidInfo){};
                if (probes[i](fd, ret) == 0)
                        return 0;
        }
        *ret = (BlkidInfo){};
        return -ENODATA;
}

/* ---- the walk ---- */

/* A small sysfs attribute of a device (NAME/attr), trailing newline dropped. */
static int read_attr(int sysfd, const char *name, const char *attr,
                     char ret[static SYSFS_VALUE_MAX]) {
        char path[PATH_MAX];
        int r;

        snprintf(path, sizeof(path), "%s/%s", name, attr);
        r = read_small_at(sysfd, path, ret, SYSFS_VALUE_MAX);
        if (r < 0)
                return r;
        ret[strcspn(ret, "\n")] = '\0';
        return 0;
}

static bool is_held(int sysfd, const char *name) {
        _cleanup_close_ int fd = -1;
        struct dirent *de;
        bool held = false;
        char path[NAME_MAX + 16];
        DIR *d;

        snprintf(path, sizeof(path), "%s/holders", name);
        fd = openat(sysfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return false;
        d = fdopendir(fd);
        if (!d)
                return false;
        TAKE_FD(fd);
        while (!held && (de = readdir(d)))
                held = de->d_name[0] != '.';
        closedir(d);
        return held;
}

/* dev_dir/devname, never through a symlink nor out of dev_dir ("cciss!c0d0" is
 * /dev/cciss/c0d0 as devtmpfs names it). */
static int open_node(int devfd, const char *devname, int flags) {
        struct open_how how = {
                .flags = (uint64_t) flags,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        fd = syscall(SYS_openat2, devfd, devname, &how, sizeof(how));
        if (fd >= 0)
                return (int) fd;
        if (errno != ENOSYS && errno != EPERM)
                return -errno;
        /* No openat2 (kernel < 5.6, or a filter): plain names only. */
        if (strchr(devname, '/'))
                return -EOPNOTSUPP;
        fd = openat(devfd, devname, flags | O_NOFOLLOW);
        return fd >= 0 ? (int) fd : -errno;
}

/* Opens device name of the walk for reading: the fd, or -errno when it is to be skipped. */
static int open_device(int sysfd, int devfd, const char *name, char *devname) {
        _cleanup_close_ int path_fd = -1, fd = -1;
        char value[SYSFS_VALUE_MAX];
        unsigned major, minor;
        struct stat st, st2;
        uint64_t size;
        int r;

        /* No size: not a block device; size 0: a loop device with no file, an empty drive. */
        r = read_attr(sysfd, name, "size", value);
        if (r < 0)
                return r;
        if (sscanf(value, "%" SCNu64, &size) != 1 || size == 0)
                return -ENODATA;
        if (is_held(sysfd, name))
                return -EBUSY;

        for (char *p = devname; *p; p++)
                if (*p == '!')
                        *p = '/';
        /* Looked at before it is opened: opening a character device or a FIFO of that name
         * may do something (rewind a tape, block). */
        path_fd = open_node(devfd, devname, O_PATH | O_CLOEXEC);
        if (path_fd < 0)
                return path_fd;
        if (fstat(path_fd, &st) < 0)
                return -errno;
        /* Image files stand in for devices in tests; a device node must be the one sysfs
         * describes. */
        if (S_ISBLK(st.st_mode)) {
                if (read_attr(sysfd, name, "dev", value) == 0 &&
                    sscanf(value, "%u:%u", &major, &minor) == 2 &&
                    st.st_rdev != makedev(major, minor))
                        return -ENODEV;
        } else if (!S_ISREG(st.st_mode))
                return -ENODEV;

        fd = open_node(devfd, devname, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st2) < 0)
                return -errno;
        if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino || st2.st_rdev != st.st_rdev)
                return -ENODEV;
        return TAKE_FD(fd);
}

static bool info_matches(const BlkidInfo *info, BlkidTag tag, const char *value) {
        if (tag == BLKID_TAG_UUID)
                return info->uuid[0] && strcasecmp(info->uuid, value) == 0;
        return info->label[0] && streq(info->label, value);
}

/* ---- partition tables ---- */

static uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
        crc = ~crc;
        while (n--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
        }
        return ~crc;
}

/* A GUID as GPT stores it: the first three fields little-endian. */
static void format_guid(const uint8_t g[16], char ret[static BLKID_UUID_MAX + 1]) {
        snprintf(ret, BLKID_UUID_MAX + 1,
                 "%08" PRIx32 "-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32(g), le16(g + 4),
                 le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* GPT names are UTF-16LE; as UTF-8, unpaired surrogates dropped. */
static void utf16le_to_utf8(const uint8_t *p, size_t units, char *ret, size_t size) {
        size_t n = 0;

        for (size_t i = 0; i < units; i++) {
                uint32_t c = le16(p + 2 * i);

                if (c == 0)
                        break;
                if (c >= 0xD800 && c < 0xDC00 && i + 1 < units) {
                        uint32_t lo = le16(p + 2 * i + 2);

                        if (lo < 0xDC00 || lo >= 0xE000)
                                continue;
                        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                        i++;
                } else if (c >= 0xD800 && c < 0xE000)
                        continue;
                if (n + 5 > size)
                        break;
                if (c < 0x80)
                        ret[n++] = (char) c;
                else if (c < 0x800) {
                        ret[n++] = (char) (0xC0 | c >> 6);
                        ret[n++] = (char) (0x80 | (c & 0x3F));
                } else if (c < 0x10000) {
                        ret[n++] = (char) (0xE0 | c >> 12);
                        ret[n++] = (char) (0x80 | (c >> 6 & 0x3F));
                        ret[n++] = (char) (0x80 | (c & 0x3F));
                } else {
                        ret[n++] = (char) (0xF0 | c >> 18);
                        ret[n++] = (char) (0x80 | (c >> 12 & 0x3F));
                        ret[n++] = (char) (0x80 | (c >> 6 & 0x3F));
                        ret[n++] = (char) (0x80 | (c & 0x3F));
                }
        }
        ret[n] = '\0';
}

#define GPT_ENTRIES_MAX 4096
#define GPT_ENTRY_MAX 4096
#define GPT_ARRAY_MAX (1024 * 1024)

/* A GPT header of hsize bytes whose CRC (taken with its own field zeroed) is right. */
static bool gpt_header_valid(const uint8_t *hdr, uint32_t hsize) {
        uint8_t copy[512];

        if (hsize < 92 || hsize > sizeof(copy))
                return false;
        memcpy(copy, hdr, hsize);
        memset(copy + 16, 0, 4);
        return crc32_update(0, copy, hsize) == le32(hdr + 16);
}

/* The numbers (1-based) of the first two partitions of a GPT disk whose unique GUID or
 * name is value: 0 with *ret_n of them in ret, or -ENODATA without a valid GPT (header
 * and entries CRC checked, as the kernel does). */
static int gpt_find(int fd, unsigned sector, BlkidTag tag, const char *value,
                    unsigned ret[static 2], unsigned *ret_n) {
        _cleanup_free_ uint8_t *entry = NULL;
        uint8_t hdr[512];
        uint32_t count, esize, crc = 0;
        uint64_t lba;
        unsigned n = 0;

        if (!read_at(fd, sector, hdr, sizeof(hdr)) || memcmp(hdr, "EFI PART", 8) != 0 ||
            !gpt_header_valid(hdr, le32(hdr + 12)))
                return -ENODATA;
        lba = le64(hdr + 72);
        count = le32(hdr + 80);
        esize = le32(hdr + 84);
        if (esize < 128 || esize > GPT_ENTRY_MAX || esize % 8 != 0 || count > GPT_ENTRIES_MAX ||
            (uint64_t) count * esize > GPT_ARRAY_MAX || lba < 2 || lba > UINT64_MAX / sector / 2)
                return -ENODATA;
        entry = malloc(esize);
        if (!entry)
                return -ENOMEM;

        for (uint32_t i = 0; i < count; i++) {
                static const uint8_t unused[16];
                char got[BLKID_LABEL_MAX + 1];

                if (!read_at(fd, lba * sector + (uint64_t) i * esize, entry, esize))
                        return -ENODATA;
                crc = crc32_update(crc, entry, esize);
                if (memcmp(entry, unused, 16) == 0)
                        continue;
                if (tag == BLKID_TAG_PARTUUID) {
                        format_guid(entry + 16, got);
                        if (strcasecmp(got, value) != 0)
                                continue;
                } else {
                        utf16le_to_utf8(entry + 56, 36, got, sizeof(got));
                        if (!streq(got, value))
                                continue;
                }
                if (n < 2)
                        ret[n++] = i + 1;
        }
        if (crc != le32(hdr + 88))
                return -ENODATA;
        *ret_n = n;
        return 0;
}

/* The name of partition number partno of disk name (its subdirectory in sysfs holding
 * "partition"), into ret. */
static int partition_name(int sysfd, const char *disk, unsigned partno,
                          char ret[static NAME_MAX + 1]) {
        _cleanup_close_ int fd = -1;
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        fd = openat(sysfd, disk, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        while ((de = readdir(d)) && ++n <= BLKID_DEVICES_MAX) {
                char path[NAME_MAX * 2 + 2], value[SYSFS_VALUE_MAX];
                unsigned got;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", disk, de->d_name);
                if (read_attr(sysfd, path, "partition", value) < 0 ||
                    sscanf(value, "%u", &got) != 1 || got != partno)
                        continue;
                snprintf(ret, NAME_MAX + 1, "%s", de->d_name);
                closedir(d);
                return 0;
        }
        closedir(d);
        return -ENXIO;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

typedef struct Matches {
        const char *dev_dir;
        char *first, *second;
        BlkidInfo info;
} Matches;

static void matches_done(Matches *m) {
        m->first = mfree(m->first);
        m->second = mfree(m->second);
}

/* -ENOTUNIQ once two are found. */
static int matches_add(Matches *m, const char *devname, const BlkidInfo *info) {
        char *node = NULL;

        if (asprintf_safe(&node, "%s/%s", m->dev_dir, devname) < 0)
                return -ENOMEM;
        if (m->first) {
                m->second = node;
                return -ENOTUNIQ;
        }
        m->first = node;
        if (info)
                m->info = *info;
        return 0;
}

/* Whole disks only: their GPT names the partitions. */
static int find_partitions(int sysfd, int devfd, const char *name, BlkidTag tag, const char *value,
                           Matches *m) {
        _cleanup_close_ int fd = -1;
        char devname[NAME_MAX + 1], value_attr[SYSFS_VALUE_MAX];
        unsigned sector = 512, parts[2], n = 0;
        int r;

        if (read_attr(sysfd, name, "partition", value_attr) == 0)
                return 0;
        snprintf(devname, sizeof(devname), "%s", name);
        fd = open_device(sysfd, devfd, name, devname);
        if (fd < 0)
                return 0;
        if (read_attr(sysfd, name, "queue/logical_block_size", value_attr) == 0 &&
            (sscanf(value_attr, "%u", &sector) != 1 || sector < 512 || sector > 65536 ||
             !is_power_of_2(sector)))
                return 0;
        if (gpt_find(fd, sector, tag, value, parts, &n) < 0)
                return 0;
        for (unsigned i = 0; i < n; i++) {
                char part[NAME_MAX + 1];

                /* A GPT entry the kernel has no device for (not rescanned yet): not there. */
                if (partition_name(sysfd, name, parts[i], part) < 0)
                        continue;
                for (char *p = part; *p; p++)
                        if (*p == '!')
                                *p = '/';
                r = matches_add(m, part, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

int blkid_find(const char *sys_block_dir, const char *dev_dir, BlkidTag tag, const char *value,
               char **ret_devnode, char **ret_other, BlkidInfo *ret_info) {
        _cleanup_(matches_done) Matches m = { .dev_dir = dev_dir };
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_close_ int devfd = -1;
        struct dirent *de;
        unsigned n = 0;
        int sysfd, r = 0;

        if (tag < 0 || tag >= _BLKID_TAG_MAX || isempty(value))
                return -EINVAL;

        d = opendir(sys_block_dir);
        if (!d)
                return -errno;
        /* Names are opened relative to it; that moves no readdir() position. */
        sysfd = dirfd(d);
        devfd = open(dev_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (devfd < 0)
                return -errno;

        while (r >= 0 && (de = readdir(d))) {
                char devname[NAME_MAX + 1];
                _cleanup_close_ int fd = -1;
                BlkidInfo info;

                if (de->d_name[0] == '.')
                        continue;
                if (++n > BLKID_DEVICES_MAX)
                        return -E2BIG;
                if (tag == BLKID_TAG_PARTUUID || tag == BLKID_TAG_PARTLABEL) {
                        r = find_partitions(sysfd, devfd, de->d_name, tag, value, &m);
                        continue;
                }
                snprintf(devname, sizeof(devname), "%s", de->d_name);
                fd = open_device(sysfd, devfd, de->d_name, devname);
                if (fd < 0 || blkid_probe_fd(fd, &info) < 0 || !info_matches(&info, tag, value))
                        continue;
                r = matches_add(&m, devname, &info);
        }
        if (r == -ENOTUNIQ) {
                *ret_devnode = TAKE_PTR(m.first);
                if (ret_other)
                        *ret_other = TAKE_PTR(m.second);
                return r;
        }
        if (r < 0)
                return r;
        if (!m.first)
                return -ENXIO;
        *ret_devnode = TAKE_PTR(m.first);
        if (ret_info)
                *ret_info = m.info;
        return 0;
}
