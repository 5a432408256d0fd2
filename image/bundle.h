/* Signed update bundles: the manifest, minisign signatures, version order, and installing
 * exactly the verified payload bytes.
 *
 * A bundle is three files side by side (STEM is "NAME-VERSION"):
 *
 *   STEM.squashfs          the payload
 *   STEM.manifest          [Bundle] Name= Version= SHA256= Size=   (at most 4 KiB)
 *   STEM.manifest.minisig  a minisign signature of the manifest (prehashed "ED" or legacy "Ed")
 *
 * The chain of trust: a trusted minisign public key (NAME.pub in /etc/vigil/trusted/) → the
 * signature and the global signature over the exact manifest bytes → the manifest's SHA256= and
 * Size= → the payload bytes, hashed while they are copied into the image store.
 *
 * What the caller does, in this order (init/ logs; nothing here logs):
 *
 *   bundle_keyring keys = {};
 *   bundle_keyring_load_dir("/etc/vigil/trusted", &keys, report_bad_key, NULL);
 *   r = bundle_open(incoming_fd, "teeworlds-0.7.5-3", &keys, &b, &err);      signature, manifest
 *   r = bundle_check_update(&b.manifest, "teeworlds", current_version, force, &err);
 *   r = bundle_install_payload(b.payload_fd, &b.manifest, image_dir_fd, max_size, 0, &err);
 *   bundle_done(&b);
 *
 * and then points STORE/NAME/current at VERSION.squashfs (not done here).  Each step returns
 * 0 or a negative errno; on failure `err` holds one line saying which file, which line when
 * there is one, and why.  bundle_error_is_rejection(r) tells a bad bundle (move it aside to
 * incoming/rejected/ and never retry) from a failure of this machine (out of memory, I/O
 * error, no space: leave the bundle where it is and retry later).
 *
 * Error codes that mean "this bundle is bad" (bundle_error_is_rejection() is true):
 *   -EBADMSG          a malformed manifest, signature or key file (syntax, base64, a field
 *                     out of its rule), a file name that is not NAME-VERSION, a symbolic
 *                     link or non-regular file where a bundle file should be, or a payload
 *                     whose SHA-256 differs from SHA256=
 *   -EPROTONOSUPPORT  signature or key algorithm bytes that are neither "Ed" nor "ED"
 *   -ENODATA          no STEM.manifest.minisig: the bundle is unsigned
 *   -ENOKEY           no trusted key has the signature's key id (or no trusted key at all)
 *   -EKEYREJECTED     the signature or the global (trusted comment) signature is not valid
 *   -EFBIG            the manifest or signature file is larger than its bound, or Size= is
 *                     larger than the maximum payload size the caller allows
 *   -EMSGSIZE         the payload is shorter or longer than Size=
 *   -EXDEV            Name= is not the image the caller expects, or the file names say
 *                     another NAME-VERSION than the manifest
 *   -ESTALE           Version= is not newer than the installed version (and not forced)
 * Anything else (-ENOENT for a missing manifest or payload, -EEXIST for an installed
 * VERSION.squashfs without BUNDLE_INSTALL_REPLACE, -ENOMEM, -EIO, -ENOSPC, ...) is not a
 * verdict on the bundle.
 *
 * All sizes are 64-bit.  No function keeps a pointer to its arguments.  Every function that
 * takes a `bundle_error *err` accepts NULL there. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define BUNDLE_TRUSTED_DIR "/etc/vigil/trusted" /* NAME.pub: trusted keys on an appliance */

#define BUNDLE_MANIFEST_MAX 4096  /* bytes of STEM.manifest */
#define BUNDLE_LINE_MAX 256       /* bytes of one manifest line, without its newline */
#define BUNDLE_SIGNATURE_MAX 4096 /* bytes of a .minisig or .pub file */
#define BUNDLE_COMMENT_MAX 1024   /* bytes of a trusted comment (minisign allows 8 KiB) */
#define BUNDLE_KEYS_MAX 256       /* trusted keys loaded from one directory */
#define BUNDLE_NAME_MAX 64        /* as image_name_is_valid() */
#define BUNDLE_STEM_MAX (BUNDLE_NAME_MAX + 1 + IMAGE_VERSION_MAX)
#define BUNDLE_ERROR_MAX 512

#define BUNDLE_KEY_ID_SIZE 8
#define BUNDLE_PUBLIC_KEY_SIZE 32 /* crypto_sign_PUBLICKEYBYTES */
#define BUNDLE_SIG_SIZE 64        /* crypto_sign_BYTES */
#define BUNDLE_SHA256_SIZE 32

/* The reason for the last failure: one printable line (bytes taken from the input are
 * escaped, so it is safe to log as is), "" after success. */
typedef struct bundle_error {
        char message[BUNDLE_ERROR_MAX];
} bundle_error;

/* True for the error codes above that condemn the bundle itself. */
bool bundle_error_is_rejection(int r);

/* ---- the manifest ---- */

typedef struct bundle_manifest {
        char name[BUNDLE_NAME_MAX + 1];      /* image_name_is_valid() */
        char version[IMAGE_VERSION_MAX + 1]; /* image_version_is_valid() */
        uint8_t sha256[BUNDLE_SHA256_SIZE];  /* of the payload */
        uint64_t size;                       /* of the payload: 1 .. INT64_MAX */
} bundle_manifest;

/* Parses a manifest (the bytes, not NUL-terminated).  Strict: at most BUNDLE_MANIFEST_MAX
 * bytes (-EFBIG) and BUNDLE_LINE_MAX per line; no NUL or control characters but tab; blank
 * lines and lines starting with '#' or ';' are ignored; exactly one [Bundle] section before
 * any key; each of Name=, Version=, SHA256=, Size= exactly once and nothing else; spaces
 * around keys and values are trimmed.  SHA256= is 64 hex digits (either case); Size= is
 * decimal digits without sign or leading zeros, 1 to INT64_MAX.  `path` names the file in
 * messages ("PATH:LINE: why").  -EBADMSG on any error; *ret is written only on success. */
int bundle_manifest_parse(const char *path, const void *data, size_t size, bundle_manifest *ret,
                          bundle_error *err);

/* The manifest text mkbundle writes for m (a NUL-terminated string, newline at the end).
 * Returns its length, or -ENOBUFS when it does not fit in buf_size. */
int bundle_manifest_format(const bundle_manifest *m, char *buf, size_t buf_size);

/* ---- minisign keys and signatures ---- */

typedef struct bundle_key {
        uint8_t id[BUNDLE_KEY_ID_SIZE];
        uint8_t public_key[BUNDLE_PUBLIC_KEY_SIZE];
        char source[256]; /* the file it came from (base name), for messages */
} bundle_key;

/* Parses a minisign public key file: "untrusted comment: ..." then the base64 of
 * "Ed" || key id || Ed25519 public key, then nothing but blank lines.  -EBADMSG,
 * -EPROTONOSUPPORT for other algorithm bytes, -EFBIG beyond BUNDLE_SIGNATURE_MAX. */
int bundle_key_parse(const char *path, const void *data, size_t size, bundle_key *ret,
                     bundle_error *err);

/* Trusted keys.  Owns `keys`; free with bundle_keyring_done() (which accepts an empty one). */
typedef struct bundle_keyring {
        bundle_key *keys;
        size_t n;
} bundle_keyring;

void bundle_keyring_done(bundle_keyring *k);

/* Appends a copy of *key.  -ENOMEM, or -E2BIG beyond BUNDLE_KEYS_MAX. */
int bundle_keyring_add(bundle_keyring *k, const bundle_key *key);

/* Called for each *.pub file that is skipped: its path, the -errno, and why (one line). */
typedef void (*bundle_key_report_t)(const char *path, int error, const char *message,
                                    void *userdata);

/* Loads every DIR/NAME.pub (regular files, in name order) into *k, appending.  A bad or
 * unreadable file is skipped and reported through `report` (may be NULL); the others still
 * load.  Returns the number of keys added (0 is not an error: nothing will then verify), or a
 * negative errno when DIR cannot be read (-ENOENT when it does not exist). */
int bundle_keyring_load_dir(const char *dir, bundle_keyring *k, bundle_key_report_t report,
                            void *userdata);

typedef struct bundle_signature {
        bool prehashed; /* "ED": Ed25519 over BLAKE2b-512 of the file; "Ed": over the file */
        uint8_t key_id[BUNDLE_KEY_ID_SIZE];
        uint8_t signature[BUNDLE_SIG_SIZE];
        char trusted_comment[BUNDLE_COMMENT_MAX + 1]; /* without "trusted comment: " */
        uint8_t global_signature[BUNDLE_SIG_SIZE];    /* over signature || trusted_comment */
} bundle_signature;

/* Parses a .minisig file: four lines (untrusted comment, signature, trusted comment, global
 * signature), LF or CRLF, then nothing but blank lines.  Base64 must be canonical with
 * padding.  -EBADMSG, -EPROTONOSUPPORT, -EFBIG.  The trusted comment is returned raw: it is
 * authenticated only after bundle_signature_verify(), and may hold tabs. */
int bundle_signature_parse(const char *path, const void *data, size_t size, bundle_signature *ret,
                           bundle_error *err);

/* Verifies sig (read from `path`, named in messages) over the message with the keyring: a
 * key with the same id must validate both the signature and the global signature.  *ret_key (may be
 * NULL) points into k on success. -ENOKEY, -EKEYREJECTED, or -EIO if libsodium cannot start. */
int bundle_signature_verify(const char *path, const bundle_signature *sig, const bundle_keyring *k,
                            const void *message, size_t size, const bundle_key **ret_key,
                            bundle_error *err);

/* The key id as minisign prints it (hexadecimal, upper case, of the little-endian number). */
void bundle_key_id_format(const uint8_t id[BUNDLE_KEY_ID_SIZE], char buf[17]);

/* ---- a bundle in a directory ---- */

typedef struct bundle {
        bundle_manifest manifest;
        bundle_signature signature; /* verified */
        char key_source[256];       /* the trusted key file that verified it */
        int payload_fd;             /* STEM.squashfs, O_RDONLY|O_CLOEXEC; owned; -1 if none */
        uint64_t payload_size;      /* its size when opened (st_size) */
} bundle;

/* A NAME-VERSION stem: 3 .. BUNDLE_STEM_MAX of the characters names and versions use, not
 * starting with '.' or '-', so that no file name built from it leaves its directory. */
bool bundle_stem_is_valid(const char *stem);

/* Opens the bundle STEM in dir_fd: reads STEM.manifest (≤ BUNDLE_MANIFEST_MAX) and
 * STEM.manifest.minisig, verifies the signature over those manifest bytes with the keyring,
 * then parses the same bytes, checks that STEM is exactly Name-Version, and opens
 * STEM.squashfs.  None of the files may be a symbolic link or anything but a regular file.
 * On success *ret is filled and owns payload_fd (release it with bundle_done()); the payload
 * is NOT verified yet: only bundle_install_payload() (or bundle_verify_payload()) checks its
 * size and digest.  On failure *ret is left with payload_fd = -1. */
int bundle_open(int dir_fd, const char *stem, const bundle_keyring *k, bundle *ret,
                bundle_error *err);

/* Closes payload_fd; accepts a zeroed or already released bundle (payload_fd -1). */
void bundle_done(bundle *b);

/* Whether m may replace the installed image: Name= must equal `name` (-EXDEV), and Version=
 * must be newer than `installed_version` by image_version_compare() (-ESTALE), unless
 * `allow_downgrade`, which accepts any version, including the same one.  A NULL
 * installed_version (nothing installed) accepts any version. */
int bundle_check_update(const bundle_manifest *m, const char *name, const char *installed_version,
                        bool allow_downgrade, bundle_error *err);

/* ---- the payload ---- */

enum {
        /* Replace an existing VERSION.squashfs atomically; otherwise -EEXIST. */
        BUNDLE_INSTALL_REPLACE = 1 << 0,
        /* Write to a named temporary file (".#VERSION.squashfs.XXXXXX", mode 0600 while
         * written) instead of an unnamed O_TMPFILE; used anyway where the file system has no
         * O_TMPFILE.  For tests and odd file systems. */
        BUNDLE_INSTALL_NAMED_TEMPORARY = 1 << 1,
};

/* Copies the payload from payload_fd into dir_fd/VERSION.squashfs (VERSION from m): refuses
 * Size= > max_size (-EFBIG) before reading anything; reads payload_fd to its end (from offset 0
 * when it is seekable, else from where it is: a pipe works), at most Size= + 1 bytes; hashes
 * each block with SHA-256 in memory and writes that same block to a new file that has no name
 * yet (O_TMPFILE, mode 0644); checks the byte count (-EMSGSIZE) and the digest (-EBADMSG)
 * against m; fsyncs the file; only then gives it its name (linkat, or rename over an existing
 * one with BUNDLE_INSTALL_REPLACE) and fsyncs dir_fd.  So the installed file holds exactly the
 * bytes that were hashed, whatever happens to the source meanwhile.  On any failure nothing
 * is left in dir_fd (a power cut can leave a ".#*" temporary only in the named-temporary
 * mode; bundle_remove_temporaries() cleans those).  dir_fd may be O_PATH. */
int bundle_install_payload(int payload_fd, const bundle_manifest *m, int dir_fd, uint64_t max_size,
                           unsigned flags, bundle_error *err);

/* Reads fd (from offset 0 when seekable) and checks its size and SHA-256 against m, as
 * bundle_install_payload() does, without writing anything: for re-checking an installed
 * image.  Same bounds and error codes. */
int bundle_verify_payload(int fd, const bundle_manifest *m, uint64_t max_size, bundle_error *err);

/* Removes the ".#*.squashfs.*" temporaries an interrupted install left in dir_fd (which may
 * be O_PATH).  Returns how many were removed, or a negative errno. */
int bundle_remove_temporaries(int dir_fd);

/* ---- versions ---- */

/* Orders two versions as Debian does (deb-version(7)) without epochs, which
 * image_version_is_valid() does not allow (no ':'): the part after the last '-' is the
 * revision and is compared only when the upstream parts are equal; in each, runs of
 * non-digits compare by character with '~' before everything, even the end, and letters
 * before other characters; runs of digits compare as numbers of any length.
 * "1.0~rc1" < "1.0" < "1.0-1" < "1.0+b1" < "1.0.1" < "1.10"; "01" == "1".
 * Returns <0, 0 or >0, like strcmp(). */
int image_version_compare(const char *a, const char *b);
