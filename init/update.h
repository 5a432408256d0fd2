/* Image updates: staged signed bundles, installing them, the trial of a new image, promotion
 * and rollback.
 *
 * Where things are (LIB is the directory above the state directory, /var/lib/vigil):
 *
 *   LIB/incoming/STEM.{squashfs,manifest,manifest.minisig}   staged bundles (image/bundle.h)
 *   LIB/incoming/rejected/STEM.*, STEM.reason                 bundles that failed, and why
 *   LIB/images/NAME/VERSION.squashfs, LIB/images/NAME/current the image store (image/store.h)
 *   STATE/updates/NAME.state                                  the record of image NAME
 *
 * The record is a few "Key=value" lines, replaced atomically (write_file_atomic) and always
 * written BEFORE the step it announces, so that a power cut at any moment leaves either the
 * old or the new image complete and selected:
 *
 *   Current=VERSION   Sha256=HEX   the version `current` selects (or is about to), its digest
 *   Previous=VERSION  PreviousSha256=HEX   what a rollback goes back to
 *   Trial=yes         Current is on trial: not yet promoted
 *   TrialBoots=N      boots begun with Current on trial
 *   Rejected=HEX VERSION REASON   (repeated, newest last, at most UPDATE_REJECTED_MAX)
 *
 * Installing a bundle (at boot before any service starts, and on ApplyUpdates):
 *   1. bundle_open(): the signature over the manifest with the keys in /etc/vigil/trusted;
 *      then the name is an image some unit uses (Image=), the digest was never rejected, and
 *      the version is newer than Current (unless forced);
 *   2. bundle_install_payload(): images/NAME/VERSION.squashfs holds exactly the hashed bytes;
 *   3. the record: Current=new, Previous=old, Trial=yes, TrialBoots=0;
 *   4. `current` -> VERSION.squashfs (a new link renamed over the old one, directory fsynced);
 *   5. the bundle leaves incoming/.
 * A bundle that fails 1 or 2 for a reason of its own (bundle_error_is_rejection()) moves to
 * incoming/rejected/ with a .reason file; one that fails for a reason of this machine (no
 * space, I/O) stays for the next attempt.
 *
 * Recovery at boot (before installing): a record whose Current is not what `current` says
 * was cut between 3 and 4: the link is completed when VERSION.squashfs is there (it was
 * fsynced before 3), else the record goes back to what the link says. A staged bundle whose
 * digest is the record's Sha256 was cut between 4 and 5: it is simply removed. Staging
 * temporaries (".#*") are removed; parts of a bundle without its manifest and other hidden
 * files go to incoming/rejected/. Installing or rolling back restarts the services of the
 * image with their start limit counted afresh (another image is another program).
 *
 * The trial: the services whose unit says Image=NAME run the new version. The image is
 * promoted (Trial= cleared, versions older than Previous deleted) when every one of them
 * that is wanted started is healthy: RUNNING (for Type=notify that is READY=1) for
 * [Update] TrialHealthySec= without a restart, and its [Container] HealthCmd=, if any,
 * exited 0. It is rolled back when one of them hits its start limit, when the trial is not
 * healthy within [Update] TrialTimeoutSec=, or when a boot begins with TrialBoots= already
 * at [Update] TrialBootsMax=: the record first (Current=Previous, the digest added to
 * Rejected=), then the link, then the bad file is deleted and the services restart on the
 * previous version. Each step is logged, written to the audit log and signalled on D-Bus
 * (ImageUpdate).
 *
 * Nothing here is fatal to PID 1: every failure is logged and leaves the running version. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

typedef struct manager manager;
typedef struct service service;
typedef struct access_caller access_caller;

#define UPDATE_NAME_MAX 64     /* as image_name_is_valid() */
#define UPDATE_REJECTED_MAX 64 /* digests remembered per image */
#define UPDATE_REASON_MAX 256
#define UPDATE_SHA256_HEX 64

typedef struct update_rejection {
        char digest[UPDATE_SHA256_HEX + 1];
        char version[IMAGE_VERSION_MAX + 1];
        char reason[UPDATE_REASON_MAX];
} update_rejection;

/* One image some unit uses: its record, and the trial when one runs. */
typedef struct image_record {
        char *name;
        char current[IMAGE_VERSION_MAX + 1]; /* "" when nothing is installed */
        char sha256[UPDATE_SHA256_HEX + 1];  /* of current; "" when unknown (installed by hand) */
        char previous[IMAGE_VERSION_MAX + 1];
        char previous_sha256[UPDATE_SHA256_HEX + 1];
        bool trial;
        unsigned trial_boots;
        update_rejection *rejected;
        size_t n_rejected;

        /* The running trial (not on disk). */
        char trial_status[UPDATE_REASON_MAX]; /* what it waits for, for `update status` */
        uint64_t trial_deadline;              /* CLOCK_MONOTONIC µs */
        pid_t health_pid;                     /* a running HealthCmd=, or 0 */
        int health_pidfd;
        uint64_t health_started; /* when it was started */
        uint64_t health_retry;   /* no new HealthCmd= before this */
        size_t health_passed;    /* the users whose HealthCmd= passed, in order */
} image_record;

/* What ApplyUpdates did with one staged bundle. */
typedef enum update_outcome {
        UPDATE_INSTALLED, /* installed and selected; its trial begins */
        UPDATE_REJECTED,  /* moved to incoming/rejected/ */
        UPDATE_DEFERRED,  /* left in incoming/: this machine could not install it now */
} update_outcome;

typedef struct update_result {
        char stem[UPDATE_NAME_MAX + 1 + IMAGE_VERSION_MAX + 1];
        char image[UPDATE_NAME_MAX + 1];
        char version[IMAGE_VERSION_MAX + 1];
        update_outcome outcome;
        char reason[UPDATE_REASON_MAX]; /* why, for rejected and deferred; "" when installed */
} update_result;

const char *update_outcome_to_string(update_outcome o); /* "installed", "rejected", "deferred" */

/* Loads the records of every image a unit uses (and of images with a record on disk); called
 * from manager_load() and again after ReloadUnits. Problems are logged. */
int update_load(manager *m);
void update_free(manager *m);

/* At boot before any service starts: recovery, trial boot counting, then every staged bundle
 * (update_apply(m, false, ...)). In the sandbox too. */
void update_boot(manager *m);

/* Copies a bundle from three fds (regular files, read from their current offset to the end)
 * into incoming/ as STEM.*: the payload and the signature first, the manifest last, each
 * through a temporary file renamed into place, so apply never sees half a bundle. At most
 * [Update] MaxBundleSize= bytes of payload. -EINVAL (bad stem), -EFBIG, or another -errno;
 * *ret_error says why. Nothing is verified here: ApplyUpdates does that. */
int update_stage(manager *m, const char *stem, int payload_fd, int manifest_fd, int signature_fd,
                 char **ret_error);

/* Installs every staged bundle (oldest version first for each image). force allows the same
 * or an older version. Running services of updated images restart on the new version.
 * Returns the number of results in *ret (malloc'ed; may be 0), or -ENOMEM. */
int update_apply(manager *m, bool force, update_result **ret);

/* An admin's rollback of image to its Previous= version (trial or not): -ENOENT (no such
 * image), -ESRCH (no previous version), else as the automatic one, reason "rolled back by
 * an admin". */
int update_rollback(manager *m, const char *image, char **ret_error);

/* The records, for status (owned by the manager; valid until the next update_* call). */
image_record *const *update_records(manager *m, size_t *ret_n);
/* The staged bundle stems in incoming/, sorted (malloc'ed strv), or NULL on error. */
char **update_staged(manager *m);

/* Hooks: from manager_service_state_changed(), and from the reaper for every child it
 * reaps (true when it was a HealthCmd= process). */
void update_service_state_changed(manager *m, service *s);
bool update_sigchld(manager *m, pid_t pid, int code, int status);
