/* Finding a block device by the UUID or label in its superblock, without udev or libblkid
 * (a library: returns -errno, never logs). */
#pragma once

#include <stdint.h>

typedef enum BlkidTag {
        BLKID_TAG_UUID,
        BLKID_TAG_LABEL,
        BLKID_TAG_PARTUUID,
        BLKID_TAG_PARTLABEL,
        _BLKID_TAG_MAX,
} BlkidTag;

/* "UUID", "LABEL", ...; the udev directory of the tag: "by-uuid", "by-label", ... */
const char *blkid_tag_to_string(BlkidTag t);
const char *blkid_tag_disk_dir(BlkidTag t);

/* An fstab source "TAG=value" or "TAG=\"value\"" (quotes stripped): 0, -ENOENT when it
 * names no tag (a path, "tmpfs"), -EINVAL when the value is empty. */
int blkid_parse_spec(const char *spec, BlkidTag *ret_tag, char **ret_value);

#define BLKID_UUID_MAX 36   /* 8-4-4-4-12; FAT's XXXX-XXXX is shorter */
#define BLKID_LABEL_MAX 256 /* btrfs */

typedef struct BlkidInfo {
        const char *type; /* "ext4", "xfs", "btrfs", "vfat", "swap"... (static) */
        char uuid[BLKID_UUID_MAX + 1];
        char label[BLKID_LABEL_MAX + 1];
} BlkidInfo;

/* Reads the superblocks of an open device (or image file) at fixed offsets, a few KiB at
 * most: 0, or -ENODATA when none of ext2/3/4, xfs, btrfs, vfat, swap is there. */
int blkid_probe_fd(int fd, BlkidInfo *ret);

/* Walks sys_block_dir (/sys/class/block: NAME/size, NAME/dev, NAME/holders/, and for a
 * partition NAME/partition) and reads dev_dir/NAME (/dev) of each device that has a size
 * and is held by nobody (not a member of a dm or md device), never following a symlink
 * in dev_dir. UUID and LABEL are read from file system superblocks, PARTUUID and
 * PARTLABEL from the GPT of whole disks (not MBR). UUIDs compare without case, labels
 * exactly. 0 with the device node in *ret_devnode (and for UUID and LABEL the device's
 * info in *ret_info if not NULL); -ENXIO when no device matches; -ENOTUNIQ when two do,
 * both named, in *ret_devnode and *ret_other. */
int blkid_find(const char *sys_block_dir, const char *dev_dir, BlkidTag tag, const char *value,
               char **ret_devnode, char **ret_other, BlkidInfo *ret_info);
