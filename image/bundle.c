/* Signed update bundles (see bundle.h): manifest, minisign verification with libsodium,
 * Debian version order, and the payload copied and hashed in one pass. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "fileio.h"
#include "macro.h"
#include "unit.h"

#define PAYLOAD_SUFFIX ".squashfs"
#define MANIFEST_SUFFIX ".manifest"
#define SIGNATURE_SUFFIX ".manifest.minisig"
#define TEMP_PREFIX ".#"
#define COPY_BLOCK (128 * 1024)
#define KEY_DIR_ENTRIES_MAX 4096

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define ALG_LEGACY "Ed"
#define ALG_PREHASHED "ED"

/* The binary layouts minisign encodes in base64. */
#define KEY_BLOB_SIZE (2 + BUNDLE_KEY_ID_SIZE + BUNDLE_PUBLIC_KEY_SIZE)
#define SIG_BLOB_SIZE (2 + BUNDLE_KEY_ID_SIZE + BUNDLE_SIG_SIZE)
/* characters of padded base64 for n bytes */
#define B64_LEN(n) ((size_t) sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1)

_Static_assert(BUNDLE_PUBLIC_KEY_SIZE == crypto_sign_PUBLICKEYBYTES, "Ed25519 key size");
_Static_assert(BUNDLE_SIG_SIZE == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(BUNDLE_SHA256_SIZE == crypto_hash_sha256_BYTES, "SHA-256 size");

/* ---- errors ---- */

_printf_(3, 4) static int fail(bundle_error *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

static void ok(bundle_error *err) {
        if (err)
                err->message[0] = 0;
}

bool bundle_error_is_rejection(int r) {
        switch (r) {
        case -EBADMSG:
        case -EPROTONOSUPPORT:
        case -ENODATA:
        case -ENOKEY:
        case -EKEYREJECTED:
        case -EFBIG:
        case -EMSGSIZE:
        case -EXDEV:
        case -ESTALE:
                return true;
        default:
                return false;
        }
}

/* Input bytes for a message: printable ASCII as is (quotes and backslashes escaped), the rest
 * as \xNN, cut with "..." so that a message stays one short line. */
#define ESCAPE_MAX 48
#define ESCAPE_BUF (ESCAPE_MAX * 4 + 4)

static const char *escape(const char *s, size_t n, char buf[ESCAPE_BUF]) {
        size_t o = 0;

        for (size_t i = 0; i < n && i < ESCAPE_MAX; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char) c;
                } else if (c >= 0x20 && c < 0x7f)
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, 5, "\\x%02x", c);
        }
        if (n > ESCAPE_MAX) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = 0;
        return buf;
}

static const char *escape_str(const char *s, char buf[ESCAPE_BUF]) {
        return escape(s, strlen(s), buf);
}

/* ---- small helpers ---- */

static bool is_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint8_t hex_value(char c) {
        if (c >= '0' && c <= '9')
                return (uint8_t) (c - '0');
        if (c >= 'a' && c <= 'f')
                return (uint8_t) (c - 'a' + 10);
        return (uint8_t) (c - 'A' + 10);
}

static void hex_format(const uint8_t *b, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[b[i] >> 4];
                out[2 * i + 1] = digits[b[i] & 15];
        }
        out[2 * n] = 0;
}

static int sodium_ready(void) {
        /* Idempotent; it may wait once for the kernel's random pool at early boot. */
        return sodium_init() < 0 ? -EIO : 0;
}

/* ---- the manifest ---- */

enum {
        KEY_NAME,
        KEY_VERSION,
        KEY_SHA256,
        KEY_SIZE,
        _KEY_MAX
};

static const char *const manifest_keys[_KEY_MAX] = {
        [KEY_NAME] = "Name",
        [KEY_VERSION] = "Version",
        [KEY_SHA256] = "SHA256",
        [KEY_SIZE] = "Size",
};

static int parse_manifest_size(const char *value, uint64_t *ret, const char **why) {
        uint64_t v = 0;
        size_t n = strlen(value);

        if (n == 0 || strspn(value, "0123456789") != n) {
                *why = "not a decimal number of bytes (digits only, no sign)";
                return -EBADMSG;
        }
        if (n > 1 && value[0] == '0') {
                *why = "leading zeros";
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t d = (uint64_t) (value[i] - '0');

                if (v > ((uint64_t) INT64_MAX - d) / 10) {
                        *why = "larger than 9223372036854775807";
                        return -EBADMSG;
                }
                v = v * 10 + d;
        }
        if (v == 0) {
                *why = "an image is at least 1 byte";
                return -EBADMSG;
        }
        *ret = v;
        return 0;
}

static int parse_value(const char *path, unsigned line, int key, const char *value,
                       bundle_manifest *m, bundle_error *err) {
        char esc[ESCAPE_BUF];
        const char *why = NULL;
        size_t n = strlen(value);

        if (n == 0)
                return fail(err, -EBADMSG, "%s:%u: %s= is empty", path, line, manifest_keys[key]);
        switch (key) {
        case KEY_NAME:
                if (!image_name_is_valid(value) || n > BUNDLE_NAME_MAX)
                        return fail(err, -EBADMSG,
                                    "%s:%u: Name=\"%s\" is not a valid image name (1 to %d of "
                                    "A-Z a-z 0-9 _ . -, not starting with '.' or '-')",
                                    path, line, escape_str(value, esc), BUNDLE_NAME_MAX);
                memcpy(m->name, value, n + 1);
                return 0;
        case KEY_VERSION:
                if (!image_version_is_valid(value))
                        return fail(err, -EBADMSG,
                                    "%s:%u: Version=\"%s\" is not a valid version (1 to %d of "
                                    "A-Z a-z 0-9 . _ + ~ -, not starting with '.')",
                                    path, line, escape_str(value, esc), IMAGE_VERSION_MAX);
                memcpy(m->version, value, n + 1);
                return 0;
        case KEY_SHA256:
                if (n != 2 * BUNDLE_SHA256_SIZE)
                        return fail(err, -EBADMSG,
                                    "%s:%u: SHA256= has %zu characters, a SHA-256 digest is %d "
                                    "hexadecimal digits",
                                    path, line, n, 2 * BUNDLE_SHA256_SIZE);
                for (size_t i = 0; i < n; i++)
                        if (!is_hex(value[i]))
                                return fail(err, -EBADMSG,
                                            "%s:%u: SHA256=\"%s\": '%s' at position %zu is not a "
                                            "hexadecimal digit",
                                            path, line, escape_str(value, esc),
                                            escape(value + i, 1, (char[ESCAPE_BUF]){}), i + 1);
                for (size_t i = 0; i < BUNDLE_SHA256_SIZE; i++)
                        m->sha256[i] = (uint8_t) (hex_value(value[2 * i]) << 4 |
                                                  hex_value(value[2 * i + 1]));
                return 0;
        case KEY_SIZE:
                if (parse_manifest_size(value, &m->size, &why) < 0)
                        return fail(err, -EBADMSG, "%s:%u: Size=\"%s\": %s", path, line,
                                    escape_str(value, esc), why);
                return 0;
        }
        return -EINVAL;
}

int bundle_manifest_parse(const char *path, const void *data, size_t size, bundle_manifest *ret,
                          bundle_error *err) {
        const char *p = data, *end = p + size;
        unsigned line = 0, section_line = 0, key_line[_KEY_MAX] = {};
        bundle_manifest m = {};
        char esc[ESCAPE_BUF];
        int r;

        if (size > BUNDLE_MANIFEST_MAX)
                return fail(err, -EFBIG, "%s: %zu bytes, more than the %d a manifest may have",
                            path, size, BUNDLE_MANIFEST_MAX);
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = (size_t) ((nl ? nl : end) - p);
                char buf[BUNDLE_LINE_MAX + 1], *s, *eq, *key, *value;
                int k;

                line++;
                if (len > BUNDLE_LINE_MAX)
                        return fail(err, -EBADMSG,
                                    "%s:%u: the line is %zu bytes long, more than %d", path, line,
                                    len, BUNDLE_LINE_MAX);
                for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char) p[i];

                        if ((c < 0x20 && c != '\t') || c == 0x7f)
                                return fail(err, -EBADMSG,
                                            "%s:%u: control character 0x%02x at column %zu", path,
                                            line, c, i + 1);
                }
                memcpy(buf, p, len);
                buf[len] = 0;
                p = nl ? nl + 1 : end;

                s = strstrip(buf);
                if (!*s || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        size_t l = strlen(s);

                        if (s[l - 1] != ']')
                                return fail(err, -EBADMSG,
                                            "%s:%u: a section header must end with ']'", path,
                                            line);
                        s[l - 1] = 0;
                        if (!streq(s + 1, "Bundle"))
                                return fail(err, -EBADMSG,
                                            "%s:%u: unknown section [%s]: a manifest has only "
                                            "[Bundle]",
                                            path, line, escape_str(s + 1, esc));
                        if (section_line)
                                return fail(err, -EBADMSG,
                                            "%s:%u: duplicate section [Bundle] (first on line %u)",
                                            path, line, section_line);
                        section_line = line;
                        continue;
                }
                eq = strchr(s, '=');
                if (!eq)
                        return fail(err, -EBADMSG,
                                    "%s:%u: expected KEY=VALUE, a [section], a comment or a "
                                    "blank line",
                                    path, line);
                if (!section_line)
                        return fail(err, -EBADMSG, "%s:%u: a key before the [Bundle] section", path,
                                    line);
                *eq = 0;
                key = strstrip(s);
                value = strstrip(eq + 1);
                for (k = 0; k < _KEY_MAX; k++)
                        if (streq(key, manifest_keys[k]))
                                break;
                if (k == _KEY_MAX)
                        return fail(err, -EBADMSG,
                                    "%s:%u: unknown key %s=: a manifest has Name=, Version=, "
                                    "SHA256= and Size=",
                                    path, line, escape_str(key, esc));
                if (key_line[k])
                        return fail(err, -EBADMSG, "%s:%u: duplicate key %s= (first on line %u)",
                                    path, line, manifest_keys[k], key_line[k]);
                key_line[k] = line;
                r = parse_value(path, line, k, value, &m, err);
                if (r < 0)
                        return r;
        }
        if (!section_line)
                return fail(err, -EBADMSG, "%s: no [Bundle] section", path);
        for (int k = 0; k < _KEY_MAX; k++)
                if (!key_line[k])
                        return fail(err, -EBADMSG, "%s: no %s= in [Bundle]", path,
                                    manifest_keys[k]);
        *ret = m;
        ok(err);
        return 0;
}

int bundle_manifest_format(const bundle_manifest *m, char *buf, size_t buf_size) {
        char digest[2 * BUNDLE_SHA256_SIZE + 1];
        int n;

        hex_format(m->sha256, BUNDLE_SHA256_SIZE, digest);
        n = snprintf(buf, buf_size, "[Bundle]\nName=%s\nVersion=%s\nSHA256=%s\nSize=%" PRIu64 "\n",
                     m->name, m->version, digest, m->size);
        if (n < 0 || (size_t) n >= buf_size)
                return -ENOBUFS;
        return n;
}

/* ---- minisign files ---- */

typedef struct text_line {
        const char *s;
        size_t n;
} text_line;

/* Splits a key or signature file into `want` lines (LF or CRLF) and checks that only blank
 * lines follow. */
static int split_lines(const char *path, const char *data, size_t size, text_line *lines,
                       size_t want, const char *what, bundle_error *err) {
        const char *p = data, *end = data + size;
        size_t i = 0;

        if (size > BUNDLE_SIGNATURE_MAX)
                return fail(err, -EFBIG, "%s: %zu bytes, more than the %d a %s may have", path,
                            size, BUNDLE_SIGNATURE_MAX, what);
        if (memchr(data, 0, size))
                return fail(err, -EBADMSG, "%s: a NUL byte: not a %s", path, what);
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = (size_t) ((nl ? nl : end) - p);

                if (len > 0 && p[len - 1] == '\r')
                        len--;
                if (i < want)
                        lines[i] = (text_line){ p, len };
                else if (len > 0)
                        return fail(err, -EBADMSG,
                                    "%s:%zu: unexpected text after the %zu lines of a %s", path,
                                    i + 1, want, what);
                i++;
                p = nl ? nl + 1 : end;
        }
        if (i < want)
                return fail(err, -EBADMSG, "%s: ends after line %zu; a %s has %zu lines", path, i,
                            what, want);
        return 0;
}

/* Decodes canonical, padded base64 of exactly out_size bytes. */
static int decode_base64(const text_line *l, uint8_t *out, size_t out_size) {
        char again[512];
        size_t want = B64_LEN(out_size);
        size_t got = 0;
        const char *stop = NULL;

        if (l->n != want || want >= sizeof(again))
                return -EBADMSG;
        if (sodium_base642bin(out, out_size, l->s, l->n, NULL, &got, &stop,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            got != out_size || stop != l->s + l->n)
                return -EBADMSG;
        /* Only one text per blob: no stray bits in the last character. */
        sodium_bin2base64(again, sizeof(again), out, out_size, sodium_base64_VARIANT_ORIGINAL);
        if (memcmp(again, l->s, l->n) != 0)
                return -EBADMSG;
        return 0;
}

static int bad_base64(const char *path, unsigned line, const char *what, const char *layout,
                      const text_line *l, size_t bytes, bundle_error *err) {
        if (l->n != B64_LEN(bytes))
                return fail(err, -EBADMSG,
                            "%s:%u: not %s: expected %zu characters of base64 (%s), found %zu",
                            path, line, what, B64_LEN(bytes), layout, l->n);
        return fail(err, -EBADMSG, "%s:%u: not %s: invalid or non-canonical base64 (%s)", path,
                    line, what, layout);
}

static int check_comment(const char *path, unsigned line, const text_line *l, const char *prefix,
                         bundle_error *err) {
        size_t n = strlen(prefix);

        if (l->n < n || memcmp(l->s, prefix, n) != 0)
                return fail(err, -EBADMSG, "%s:%u: expected a line starting with \"%s\"", path,
                            line, prefix);
        if (l->n - n > BUNDLE_COMMENT_MAX)
                return fail(err, -EBADMSG, "%s:%u: a comment longer than %d bytes", path, line,
                            BUNDLE_COMMENT_MAX);
        return 0;
}

void bundle_key_id_format(const uint8_t id[BUNDLE_KEY_ID_SIZE], char buf[17]) {
        uint64_t v = 0;

        for (int i = BUNDLE_KEY_ID_SIZE - 1; i >= 0; i--)
                v = v << 8 | id[i];
        snprintf(buf, 17, "%" PRIX64, v);
}

int bundle_key_parse(const char *path, const void *data, size_t size, bundle_key *ret,
                     bundle_error *err) {
        text_line lines[2];
        uint8_t blob[KEY_BLOB_SIZE];
        char esc[ESCAPE_BUF];
        const char *base;
        bundle_key key = {};
        int r;

        r = split_lines(path, data, size, lines, ELEMENTSOF(lines), "minisign public key", err);
        if (r < 0)
                return r;
        r = check_comment(path, 1, &lines[0], UNTRUSTED_PREFIX, err);
        if (r < 0)
                return r;
        if (decode_base64(&lines[1], blob, sizeof(blob)) < 0)
                return bad_base64(path, 2, "a minisign public key", "\"Ed\", key id, Ed25519 key",
                                  &lines[1], sizeof(blob), err);
        if (memcmp(blob, ALG_LEGACY, 2) != 0)
                return fail(err, -EPROTONOSUPPORT,
                            "%s:2: key algorithm \"%s\" is not Ed25519 (\"Ed\")", path,
                            escape((const char *) blob, 2, esc));
        memcpy(key.id, blob + 2, BUNDLE_KEY_ID_SIZE);
        memcpy(key.public_key, blob + 2 + BUNDLE_KEY_ID_SIZE, BUNDLE_PUBLIC_KEY_SIZE);
        base = strrchr(path, '/');
        snprintf(key.source, sizeof(key.source), "%s", base ? base + 1 : path);
        *ret = key;
        ok(err);
        return 0;
}

int bundle_signature_parse(const char *path, const void *data, size_t size, bundle_signature *ret,
                           bundle_error *err) {
        static const size_t trusted_len = sizeof(TRUSTED_PREFIX) - 1;
        text_line lines[4];
        uint8_t blob[SIG_BLOB_SIZE];
        char esc[ESCAPE_BUF];
        bundle_signature sig = {};
        int r;

        r = split_lines(path, data, size, lines, ELEMENTSOF(lines), "minisign signature", err);
        if (r < 0)
                return r;
        r = check_comment(path, 1, &lines[0], UNTRUSTED_PREFIX, err);
        if (r < 0)
                return r;
        if (decode_base64(&lines[1], blob, sizeof(blob)) < 0)
                return bad_base64(path, 2, "a minisign signature",
                                  "algorithm, key id, Ed25519 signature", &lines[1], sizeof(blob),
                                  err);
        if (memcmp(blob, ALG_PREHASHED, 2) == 0)
                sig.prehashed = true;
        else if (memcmp(blob, ALG_LEGACY, 2) != 0)
                return fail(err, -EPROTONOSUPPORT,
                            "%s:2: signature algorithm \"%s\" is neither \"ED\" (Ed25519 of "
                            "BLAKE2b-512) nor \"Ed\" (Ed25519)",
                            path, escape((const char *) blob, 2, esc));
        memcpy(sig.key_id, blob + 2, BUNDLE_KEY_ID_SIZE);
        memcpy(sig.signature, blob + 2 + BUNDLE_KEY_ID_SIZE, BUNDLE_SIG_SIZE);

        r = check_comment(path, 3, &lines[2], TRUSTED_PREFIX, err);
        if (r < 0)
                return r;
        memcpy(sig.trusted_comment, lines[2].s + trusted_len, lines[2].n - trusted_len);
        sig.trusted_comment[lines[2].n - trusted_len] = 0;

        if (decode_base64(&lines[3], sig.global_signature, BUNDLE_SIG_SIZE) < 0)
                return bad_base64(path, 4, "a global signature", "Ed25519 signature", &lines[3],
                                  BUNDLE_SIG_SIZE, err);
        *ret = sig;
        ok(err);
        return 0;
}

int bundle_signature_verify(const char *path, const bundle_signature *sig, const bundle_keyring *k,
                            const void *message, size_t size, const bundle_key **ret_key,
                            bundle_error *err) {
        uint8_t digest[crypto_generichash_BYTES_MAX];
        uint8_t signed_comment[BUNDLE_SIG_SIZE + BUNDLE_COMMENT_MAX];
        size_t comment_len = strnlen(sig->trusted_comment, BUNDLE_COMMENT_MAX);
        const unsigned char *m = message;
        unsigned long long m_len = size;
        const bundle_key *bad_sig = NULL, *bad_global = NULL;
        char id[17];
        int r;

        r = sodium_ready();
        if (r < 0)
                return fail(err, r, "%s: libsodium failed to initialize", path);
        bundle_key_id_format(sig->key_id, id);
        if (sig->prehashed) {
                crypto_generichash(digest, sizeof(digest), message, size, NULL, 0);
                m = digest;
                m_len = sizeof(digest);
        }
        memcpy(signed_comment, sig->signature, BUNDLE_SIG_SIZE);
        memcpy(signed_comment + BUNDLE_SIG_SIZE, sig->trusted_comment, comment_len);

        /* Every key with this id is tried: ids are 64 random bits, not a promise. */
        for (size_t i = 0; k && i < k->n; i++) {
                const bundle_key *key = &k->keys[i];

                if (memcmp(key->id, sig->key_id, BUNDLE_KEY_ID_SIZE) != 0)
                        continue;
                if (crypto_sign_verify_detached(sig->signature, m, m_len, key->public_key) != 0) {
                        bad_sig = key;
                        continue;
                }
                if (crypto_sign_verify_detached(sig->global_signature, signed_comment,
                                                BUNDLE_SIG_SIZE + comment_len,
                                                key->public_key) != 0) {
                        bad_global = key;
                        continue;
                }
                if (ret_key)
                        *ret_key = key;
                ok(err);
                return 0;
        }
        if (bad_global)
                return fail(err, -EKEYREJECTED,
                            "%s: the trusted comment's signature is not valid for key %s (%s): "
                            "the trusted comment or the global signature was altered",
                            path, id, bad_global->source);
        if (bad_sig)
                return fail(err, -EKEYREJECTED,
                            "%s: the signature is not valid for key %s (%s): the manifest or the "
                            "signature was altered",
                            path, id, bad_sig->source);
        return fail(err, -ENOKEY, "%s: signed with key %s, which is not among the %zu trusted keys",
                    path, id, k ? k->n : 0);
}

/* ---- trusted keys ---- */

void bundle_keyring_done(bundle_keyring *k) {
        if (!k)
                return;
        k->keys = mfree(k->keys);
        k->n = 0;
}

int bundle_keyring_add(bundle_keyring *k, const bundle_key *key) {
        bundle_key *keys;

        if (k->n >= BUNDLE_KEYS_MAX)
                return -E2BIG;
        keys = reallocarray(k->keys, k->n + 1, sizeof(bundle_key));
        if (!keys)
                return -ENOMEM;
        k->keys = keys;
        k->keys[k->n++] = *key;
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void free_names(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static void report_key(bundle_key_report_t report, void *userdata, const char *path, int r,
                       const char *fmt, ...) _printf_(5, 6);

static void report_key(bundle_key_report_t report, void *userdata, const char *path, int r,
                       const char *fmt, ...) {
        char message[BUNDLE_ERROR_MAX];
        va_list ap;

        if (!report)
                return;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        report(path, r, message, userdata);
}

static int load_key_file(int dfd, const char *path, const char *name, bundle_key *ret,
                         bundle_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t size;
        int r;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fail(err, -errno, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return fail(err, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(err, -EBADMSG, "%s: not a regular file", path);
        r = read_fd_bounded(fd, BUNDLE_SIGNATURE_MAX, &data, &size);
        if (r == -EFBIG)
                return fail(err, r, "%s: larger than %d bytes: not a minisign public key", path,
                            BUNDLE_SIGNATURE_MAX);
        if (r < 0)
                return fail(err, r, "%s: %s", path, strerror(-r));
        return bundle_key_parse(path, data, size, ret, err);
}

int bundle_keyring_load_dir(const char *dir, bundle_keyring *k, bundle_key_report_t report,
                            void *userdata) {
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        int added = 0, r = 0;

        d = opendir(dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char **c;

                if (de->d_name[0] == '.' || !endswith(de->d_name, ".pub"))
                        continue;
                if (n >= KEY_DIR_ENTRIES_MAX) {
                        report_key(report, userdata, dir, -E2BIG,
                                   "%s: more than %d *.pub files; the rest are ignored", dir,
                                   KEY_DIR_ENTRIES_MAX);
                        break;
                }
                c = reallocarray(names, n + 1, sizeof(char *));
                if (!c) {
                        r = -ENOMEM;
                        goto finish;
                }
                names = c;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        goto finish;
                }
                n++;
        }
        if (n > 0)
                qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                bundle_error err;
                bundle_key key;

                if (asprintf_safe(&path, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = load_key_file(dirfd(d), path, names[i], &key, &err);
                if (r == -ENOMEM)
                        goto finish;
                if (r < 0) {
                        report_key(report, userdata, path, r, "%s", err.message);
                        continue;
                }
                r = bundle_keyring_add(k, &key);
                if (r == -E2BIG) {
                        report_key(report, userdata, path, r,
                                   "%s: more than %d trusted keys; this one is ignored", path,
                                   BUNDLE_KEYS_MAX);
                        continue;
                }
                if (r < 0)
                        goto finish;
                added++;
        }
        r = added;
finish:
        free_names(names, n);
        closedir(d);
        return r;
}

/* ---- a bundle in a directory ---- */

bool bundle_stem_is_valid(const char *stem) {
        size_t n = strnlen(stem, BUNDLE_STEM_MAX + 1);

        if (n < 3 || n > BUNDLE_STEM_MAX || stem[0] == '.' || stem[0] == '-')
                return false;
        return strspn(stem,
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+~-") == n;
}

/* Opens dir_fd/name as a regular file that is not a symbolic link. */
static int open_bundle_file(int dir_fd, const char *name, bundle_error *err) {
        struct stat st;
        int fd;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ELOOP)
                        return fail(err, -EBADMSG, "%s: a symbolic link, not a bundle file", name);
                return fail(err, -errno, "%s: %s", name, strerror(errno));
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return fail(err, r, "%s: %s", name, strerror(-r));
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return fail(err, -EBADMSG, "%s: not a regular file", name);
        }
        return fd;
}

static int read_bundle_file(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size,
                            bundle_error *err) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = open_bundle_file(dir_fd, name, err);
        if (fd < 0)
                return fd;
        r = read_fd_bounded(fd, max, ret, ret_size);
        if (r == -EFBIG)
                return fail(err, r, "%s: larger than %zu bytes", name, max);
        if (r < 0)
                return fail(err, r, "%s: %s", name, strerror(-r));
        return 0;
}

void bundle_done(bundle *b) {
        if (!b)
                return;
        b->payload_fd = safe_close(b->payload_fd);
}

int bundle_open(int dir_fd, const char *stem, const bundle_keyring *k, bundle *ret,
                bundle_error *err) {
        char manifest_name[BUNDLE_STEM_MAX + sizeof(MANIFEST_SUFFIX)];
        char sig_name[BUNDLE_STEM_MAX + sizeof(SIGNATURE_SUFFIX)];
        char payload_name[BUNDLE_STEM_MAX + sizeof(PAYLOAD_SUFFIX)];
        char expected[BUNDLE_STEM_MAX + 1], esc[ESCAPE_BUF];
        _cleanup_free_ char *manifest = NULL, *sig_text = NULL;
        _cleanup_close_ int payload_fd = -1;
        const bundle_key *key = NULL;
        size_t manifest_size, sig_size;
        struct stat st;
        bundle b = { .payload_fd = -1 };
        int r;

        ret->payload_fd = -1;
        if (!bundle_stem_is_valid(stem))
                return fail(err, -EBADMSG,
                            "\"%s\" is not a bundle name (NAME-VERSION, at most %d characters of "
                            "A-Z a-z 0-9 . _ + ~ -, not starting with '.' or '-')",
                            escape(stem, strnlen(stem, BUNDLE_STEM_MAX + 1), esc), BUNDLE_STEM_MAX);
        snprintf(manifest_name, sizeof(manifest_name), "%s" MANIFEST_SUFFIX, stem);
        snprintf(sig_name, sizeof(sig_name), "%s" SIGNATURE_SUFFIX, stem);
        snprintf(payload_name, sizeof(payload_name), "%s" PAYLOAD_SUFFIX, stem);

        r = read_bundle_file(dir_fd, manifest_name, BUNDLE_MANIFEST_MAX, &manifest, &manifest_size,
                             err);
        if (r < 0)
                return r;
        r = read_bundle_file(dir_fd, sig_name, BUNDLE_SIGNATURE_MAX, &sig_text, &sig_size, err);
        if (r == -ENOENT)
                return fail(err, -ENODATA, "%s: missing: the bundle is unsigned", sig_name);
        if (r < 0)
                return r;

        /* Only bytes that a trusted key signed reach the manifest parser. */
        r = bundle_signature_parse(sig_name, sig_text, sig_size, &b.signature, err);
        if (r < 0)
                return r;
        r = bundle_signature_verify(sig_name, &b.signature, k, manifest, manifest_size, &key, err);
        if (r < 0)
                return r;
        snprintf(b.key_source, sizeof(b.key_source), "%s", key->source);
        r = bundle_manifest_parse(manifest_name, manifest, manifest_size, &b.manifest, err);
        if (r < 0)
                return r;
        snprintf(expected, sizeof(expected), "%s-%s", b.manifest.name, b.manifest.version);
        if (!streq(expected, stem))
                return fail(err, -EXDEV,
                            "%s: the manifest is for %s (Name=%s, Version=%s), not for the file "
                            "name's %s",
                            manifest_name, expected, b.manifest.name, b.manifest.version, stem);

        payload_fd = open_bundle_file(dir_fd, payload_name, err);
        if (payload_fd < 0)
                return payload_fd;
        if (fstat(payload_fd, &st) < 0)
                return fail(err, -errno, "%s: %s", payload_name, strerror(errno));
        b.payload_size = (uint64_t) st.st_size;
        b.payload_fd = TAKE_FD(payload_fd);
        *ret = b;
        ok(err);
        return 0;
}

int bundle_check_update(const bundle_manifest *m, const char *name, const char *installed_version,
                        bool allow_downgrade, bundle_error *err) {
        char esc[ESCAPE_BUF];
        int c;

        if (!streq(m->name, name))
                return fail(err, -EXDEV, "the bundle is for image %s, not %s", m->name,
                            escape_str(name, esc));
        if (installed_version && !allow_downgrade) {
                c = image_version_compare(m->version, installed_version);
                if (c == 0)
                        return fail(err, -ESTALE, "%s version %s is already installed", m->name,
                                    m->version);
                if (c < 0)
                        return fail(err, -ESTALE,
                                    "%s version %s is older than the installed %s (a downgrade "
                                    "must be forced)",
                                    m->name, m->version, escape_str(installed_version, esc));
        }
        ok(err);
        return 0;
}

/* ---- the payload ---- */

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static ssize_t read_some(int fd, uint8_t *p, size_t n) {
        for (;;) {
                ssize_t k = read(fd, p, n);

                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd pfd = { .fd = fd, .events = POLLIN };

                        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                                return -errno;
                        continue;
                }
                return -errno;
        }
}

/* Reads in_fd to its end, hashing each block and writing that same block to out_fd (if
 * out_fd >= 0): what is hashed is what is written. */
static int copy_and_hash(int in_fd, int out_fd, const bundle_manifest *m, const char *what,
                         bundle_error *err) {
        _cleanup_free_ uint8_t *buf = NULL;
        crypto_hash_sha256_state h;
        uint8_t digest[BUNDLE_SHA256_SIZE];
        char got_hex[2 * BUNDLE_SHA256_SIZE + 1], want_hex[2 * BUNDLE_SHA256_SIZE + 1];
        uint64_t total = 0;
        struct stat st;
        int r;

        if (fstat(in_fd, &st) < 0)
                return fail(err, -errno, "%s: %s", what, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return fail(err, -EBADMSG, "%s: a directory, not an image", what);
        if (S_ISREG(st.st_mode)) {
                if ((uint64_t) st.st_size != m->size)
                        return fail(err, -EMSGSIZE,
                                    "%s: %" PRIu64 " bytes, but the manifest says Size=%" PRIu64
                                    "%s",
                                    what, (uint64_t) st.st_size, m->size,
                                    (uint64_t) st.st_size < m->size ? " (truncated)" : "");
                if (lseek(in_fd, 0, SEEK_SET) < 0)
                        return fail(err, -errno, "%s: %s", what, strerror(errno));
        }
        buf = malloc(COPY_BLOCK);
        if (!buf)
                return fail(err, -ENOMEM, "%s: out of memory", what);
        crypto_hash_sha256_init(&h);
        for (;;) {
                /* never more than Size + 1 bytes: the one more tells "too long" */
                uint64_t left = m->size + 1 - total;
                size_t want = left < COPY_BLOCK ? (size_t) left : COPY_BLOCK;
                ssize_t n;

                n = read_some(in_fd, buf, want);
                if (n < 0)
                        return fail(err, (int) n, "%s: read: %s", what, strerror((int) -n));
                if (n == 0)
                        break;
                total += (uint64_t) n;
                if (total > m->size)
                        return fail(err, -EMSGSIZE, "%s: longer than the manifest's Size=%" PRIu64,
                                    what, m->size);
                crypto_hash_sha256_update(&h, buf, (unsigned long long) n);
                if (out_fd >= 0) {
                        r = write_all(out_fd, buf, (size_t) n);
                        if (r < 0)
                                return fail(err, r, "%s: write: %s", what, strerror(-r));
                }
        }
        if (total != m->size)
                return fail(err, -EMSGSIZE,
                            "%s: %" PRIu64 " bytes, but the manifest says Size=%" PRIu64
                            " (truncated)",
                            what, total, m->size);
        crypto_hash_sha256_final(&h, digest);
        if (memcmp(digest, m->sha256, BUNDLE_SHA256_SIZE) != 0) {
                hex_format(digest, BUNDLE_SHA256_SIZE, got_hex);
                hex_format(m->sha256, BUNDLE_SHA256_SIZE, want_hex);
                return fail(err, -EBADMSG,
                            "%s: SHA-256 is %s, but the manifest says SHA256=%s: the image was "
                            "altered",
                            what, got_hex, want_hex);
        }
        return 0;
}

static int check_payload_args(const bundle_manifest *m, uint64_t max_size, bundle_error *err) {
        if (!image_version_is_valid(m->version) || m->size == 0 || m->size > (uint64_t) INT64_MAX)
                return fail(err, -EINVAL, "not a parsed manifest");
        if (m->size > max_size)
                return fail(err, -EFBIG,
                            "%s %s: Size=%" PRIu64
                            " is larger than the largest image allowed (%" PRIu64 " bytes)",
                            m->name, m->version, m->size, max_size);
        return 0;
}

int bundle_verify_payload(int fd, const bundle_manifest *m, uint64_t max_size, bundle_error *err) {
        char what[BUNDLE_STEM_MAX + sizeof(PAYLOAD_SUFFIX) + 2];
        int r;

        r = check_payload_args(m, max_size, err);
        if (r < 0)
                return r;
        r = sodium_ready();
        if (r < 0)
                return fail(err, r, "libsodium failed to initialize");
        snprintf(what, sizeof(what), "%s-%s" PAYLOAD_SUFFIX, m->name, m->version);
        r = copy_and_hash(fd, -1, m, what, err);
        if (r < 0)
                return r;
        ok(err);
        return 0;
}

/* Gives the unnamed file fd a name in dfd. Linking by fd needs CAP_DAC_READ_SEARCH on older
 * kernels; /proc/self/fd does not, but needs /proc. */
static int link_tmpfile(int fd, int dfd, const char *name) {
        char proc[64];

        if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
                return 0;
        if (errno == EEXIST)
                return -EEXIST;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0)
                return 0;
        return -errno;
}

static int make_temp_name(const char *target, char *buf, size_t size) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t rnd[6];
        char suffix[sizeof(rnd) + 1];

        /* A name needs no strong randomness: without entropy yet, the pid and an address */
        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                uint64_t v = (uint64_t) getpid() * 2654435761u ^ (uint64_t) (uintptr_t) buf;
                for (size_t i = 0; i < sizeof(rnd); i++, v >>= 8)
                        rnd[i] = (uint8_t) v;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                suffix[i] = chars[rnd[i] % (sizeof(chars) - 1)];
        suffix[sizeof(rnd)] = 0;
        return snprintf(buf, size, TEMP_PREFIX "%s.%s", target, suffix) >= (int) size ? -ENOBUFS
                                                                                      : 0;
}

static int open_named_temp(int dfd, const char *target, char *name, size_t name_size) {
        for (int attempt = 0; attempt < 16; attempt++) {
                int fd, r;

                r = make_temp_name(target, name, name_size);
                if (r < 0)
                        return r;
                fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int bundle_install_payload(int payload_fd, const bundle_manifest *m, int dir_fd, uint64_t max_size,
                           unsigned flags, bundle_error *err) {
        char target[IMAGE_VERSION_MAX + sizeof(PAYLOAD_SUFFIX)];
        char temp[sizeof(TEMP_PREFIX) + sizeof(target) + 8] = "";
        char what[BUNDLE_STEM_MAX + sizeof(PAYLOAD_SUFFIX) + 2];
        _cleanup_close_ int dfd = -1, fd = -1;
        bool named = false;
        int r;

        r = check_payload_args(m, max_size, err);
        if (r < 0)
                return r;
        r = sodium_ready();
        if (r < 0)
                return fail(err, r, "libsodium failed to initialize");
        snprintf(target, sizeof(target), "%s" PAYLOAD_SUFFIX, m->version);
        snprintf(what, sizeof(what), "%s-%s" PAYLOAD_SUFFIX, m->name, m->version);

        dfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return fail(err, -errno, "image directory: %s", strerror(errno));
        if (!(flags & BUNDLE_INSTALL_REPLACE) &&
            faccessat(dfd, target, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return fail(err, -EEXIST, "%s: already installed", target);

        if (!(flags & BUNDLE_INSTALL_NAMED_TEMPORARY)) {
                fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
                /* EOPNOTSUPP, EISDIR (old kernels), EINVAL: no O_TMPFILE here */
                if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                        return fail(err, -errno, "%s: O_TMPFILE: %s", target, strerror(errno));
        }
        if (fd < 0) {
                fd = open_named_temp(dfd, target, temp, sizeof(temp));
                if (fd < 0)
                        return fail(err, fd, "%s: temporary file: %s", target, strerror(-fd));
                named = true;
        }

        /* Reserve the space now so that a full disk fails before the copy, not after it. */
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t) m->size) < 0 &&
            !(errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)) {
                r = fail(err, -errno, "%s: reserving %" PRIu64 " bytes: %s", target, m->size,
                         strerror(errno));
                goto fail;
        }
        r = copy_and_hash(payload_fd, fd, m, what, err);
        if (r < 0)
                goto fail;
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
                r = fail(err, -errno, "%s: %s", target, strerror(errno));
                goto fail;
        }

        if (!named && !(flags & BUNDLE_INSTALL_REPLACE)) {
                r = link_tmpfile(fd, dfd, target);
                if (r < 0) {
                        r = fail(err, r, "%s: %s", target,
                                 r == -EEXIST ? "already installed" : strerror(-r));
                        goto fail;
                }
        } else {
                if (!named) {
                        r = make_temp_name(target, temp, sizeof(temp));
                        if (r >= 0)
                                r = link_tmpfile(fd, dfd, temp);
                        if (r < 0) {
                                r = fail(err, r, "%s: %s", target, strerror(-r));
                                goto fail;
                        }
                        named = true;
                }
                if (flags & BUNDLE_INSTALL_REPLACE)
                        r = renameat(dfd, temp, dfd, target);
                else {
                        r = renameat2(dfd, temp, dfd, target, RENAME_NOREPLACE);
                        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
                                /* a file system without RENAME_NOREPLACE: link is as exclusive */
                                r = linkat(dfd, temp, dfd, target, 0);
                                if (r == 0)
                                        (void) unlinkat(dfd, temp, 0);
                        }
                }
                if (r < 0) {
                        r = fail(err, -errno, "%s: %s", target,
                                 errno == EEXIST ? "already installed" : strerror(errno));
                        goto fail;
                }
                named = false;
        }
        if (fsync(dfd) < 0)
                return fail(err, -errno, "%s: syncing the image directory: %s", target,
                            strerror(errno));
        ok(err);
        return 0;

fail:
        if (named)
                (void) unlinkat(dfd, temp, 0);
        return r;
}

int bundle_remove_temporaries(int dir_fd) {
        DIR *d;
        struct dirent *de;
        int fd, n = 0;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                if (!startswith(de->d_name, TEMP_PREFIX) || !strstr(de->d_name, PAYLOAD_SUFFIX "."))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

/* ---- versions ---- */

/* dpkg's weights: '~' sorts before the end, the end before letters, letters before the rest. */
static int order(char c) {
        if (c == '~')
                return -1;
        if (c == 0)
                return 0;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
                return (unsigned char) c;
        return (unsigned char) c + 256;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Compares [a, a_end) and [b, b_end) alternately as runs of non-digits and numbers. */
static int compare_part(const char *a, const char *a_end, const char *b, const char *b_end) {
        while (a < a_end || b < b_end) {
                while ((a < a_end && !is_digit(*a)) || (b < b_end && !is_digit(*b))) {
                        int ca = a < a_end && !is_digit(*a) ? order(*a) : 0;
                        int cb = b < b_end && !is_digit(*b) ? order(*b) : 0;

                        if (ca != cb)
                                return ca < cb ? -1 : 1;
                        /* equal weights here mean the same non-digit on both sides */
                        a++;
                        b++;
                }
                while (a < a_end && *a == '0')
                        a++;
                while (b < b_end && *b == '0')
                        b++;
                /* numbers without leading zeros: the longer is larger, else the first digit
                 * that differs decides */
                {
                        const char *da = a, *db = b;
                        int first = 0;

                        while (da < a_end && is_digit(*da))
                                da++;
                        while (db < b_end && is_digit(*db))
                                db++;
                        if (da - a != db - b)
                                return da - a < db - b ? -1 : 1;
                        for (; a < da; a++, b++)
                                if (!first && *a != *b)
                                        first = *a < *b ? -1 : 1;
                        if (first)
                                return first;
                }
        }
        return 0;
}

int image_version_compare(const char *a, const char *b) {
        const char *ra = strrchr(a, '-'), *rb = strrchr(b, '-');
        const char *ua_end = ra ? ra : a + strlen(a), *ub_end = rb ? rb : b + strlen(b);
        const char *ra_start = ra ? ra + 1 : ua_end, *rb_start = rb ? rb + 1 : ub_end;
        int c;

        c = compare_part(a, ua_end, b, ub_end);
        if (c != 0)
                return c;
        return compare_part(ra_start, ra_start + strlen(ra_start), rb_start,
                            rb_start + strlen(rb_start));
}
