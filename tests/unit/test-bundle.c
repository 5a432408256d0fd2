/* Tests for update bundles (image/bundle.h): version order, the manifest, minisign keys and
 * signatures, installing the payload, and a table of bundles that must be rejected.
 *
 * Signatures come from three places: fixed vectors in bundle/ (made once with image/mkbundle
 * and minisign 0.11; their secret key was not kept), a minisign-compatible signer written here
 * with libsodium (so the rejection table runs without minisign), and, when minisign is
 * installed, keys and bundles made at test time with `minisign -G -W` and image/mkbundle
 * (MKBUNDLE in the environment). */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bundle.h"
#include "macro.h"
#include "tap.h"

#define MAX_PAYLOAD (64 * 1024 * 1024)

static char tmp_root[] = "/tmp/test-bundle.XXXXXX";

static void tap_skip(const char *what, const char *why) {
        printf("ok %d - %s # SKIP %s\n", ++tap_n, what, why);
}

/* ---- files ---- */

static char *path_join(const char *a, const char *b) {
        char *p;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static void write_file(const char *dir, const char *name, const void *data, size_t size) {
        _cleanup_free_ char *p = path_join(dir, name);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || write(fd, data, size) != (ssize_t) size) {
                printf("# cannot write %s: %m\n", p);
                abort();
        }
}

static char *read_file(const char *path, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (!f)
                return NULL;
        buf = malloc(1 << 20);
        if (!buf)
                abort();
        n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        return buf;
}

static char *read_at(const char *dir, const char *name, size_t *ret_size) {
        _cleanup_free_ char *p = path_join(dir, name);
        return read_file(p, ret_size);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *path) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *new_dir(const char *name) {
        static unsigned counter;
        char *p;

        if (asprintf(&p, "%s/%s.%u", tmp_root, name, ++counter) < 0 || mkdir(p, 0755) < 0)
                abort();
        return p;
}

/* Entries in dir other than . and .. */
static int count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void flip_byte(const char *dir, const char *name, size_t offset) {
        _cleanup_free_ char *p = path_join(dir, name);
        _cleanup_close_ int fd = open(p, O_RDWR | O_CLOEXEC);
        char c;

        if (fd < 0 || pread(fd, &c, 1, (off_t) offset) != 1)
                abort();
        c ^= 0x01;
        if (pwrite(fd, &c, 1, (off_t) offset) != 1)
                abort();
}

/* ---- a minisign-compatible signer ---- */

typedef struct signer {
        uint8_t id[BUNDLE_KEY_ID_SIZE];
        uint8_t pk[crypto_sign_PUBLICKEYBYTES];
        uint8_t sk[crypto_sign_SECRETKEYBYTES];
} signer;

static void signer_new(signer *s) {
        crypto_sign_keypair(s->pk, s->sk);
        randombytes_buf(s->id, sizeof(s->id));
}

static void b64(const void *bin, size_t n, char *out, size_t out_size) {
        sodium_bin2base64(out, out_size, bin, n, sodium_base64_VARIANT_ORIGINAL);
}

static char *signer_pubkey(const signer *s) {
        uint8_t blob[2 + BUNDLE_KEY_ID_SIZE + crypto_sign_PUBLICKEYBYTES];
        char text[128], *r;

        memcpy(blob, "Ed", 2);
        memcpy(blob + 2, s->id, BUNDLE_KEY_ID_SIZE);
        memcpy(blob + 2 + BUNDLE_KEY_ID_SIZE, s->pk, sizeof(s->pk));
        b64(blob, sizeof(blob), text, sizeof(text));
        if (asprintf(&r, "untrusted comment: test key\n%s\n", text) < 0)
                abort();
        return r;
}

static char *signer_sign(const signer *s, const void *msg, size_t n, bool prehashed,
                         const char *comment) {
        uint8_t blob[2 + BUNDLE_KEY_ID_SIZE + crypto_sign_BYTES], digest[64];
        uint8_t global[crypto_sign_BYTES], both[crypto_sign_BYTES + 1024];
        char t1[256], t2[256], *r;
        size_t cl = strlen(comment);

        memcpy(blob, prehashed ? "ED" : "Ed", 2);
        memcpy(blob + 2, s->id, BUNDLE_KEY_ID_SIZE);
        if (prehashed) {
                crypto_generichash(digest, sizeof(digest), msg, n, NULL, 0);
                crypto_sign_detached(blob + 10, NULL, digest, sizeof(digest), s->sk);
        } else
                crypto_sign_detached(blob + 10, NULL, msg, n, s->sk);
        memcpy(both, blob + 10, crypto_sign_BYTES);
        memcpy(both + crypto_sign_BYTES, comment, cl);
        crypto_sign_detached(global, NULL, both, crypto_sign_BYTES + cl, s->sk);
        b64(blob, sizeof(blob), t1, sizeof(t1));
        b64(global, sizeof(global), t2, sizeof(t2));
        if (asprintf(&r, "untrusted comment: test signature\n%s\ntrusted comment: %s\n%s\n", t1,
                     comment, t2) < 0)
                abort();
        return r;
}

/* Writes STEM.squashfs, STEM.manifest (the given text, or the right one when NULL) and its
 * signature by s (none when s is NULL). */
static void make_bundle(const char *dir, const signer *s, bool prehashed, const char *name,
                        const char *version, const void *payload, size_t payload_size,
                        const char *manifest_text) {
        char stem[256], file[300], text[BUNDLE_MANIFEST_MAX];
        _cleanup_free_ char *sig = NULL;
        bundle_manifest m = {};

        snprintf(stem, sizeof(stem), "%s-%s", name, version);
        snprintf(file, sizeof(file), "%s.squashfs", stem);
        write_file(dir, file, payload, payload_size);
        if (!manifest_text) {
                snprintf(m.name, sizeof(m.name), "%s", name);
                snprintf(m.version, sizeof(m.version), "%s", version);
                crypto_hash_sha256(m.sha256, payload, payload_size);
                m.size = payload_size;
                if (bundle_manifest_format(&m, text, sizeof(text)) < 0)
                        abort();
                manifest_text = text;
        }
        snprintf(file, sizeof(file), "%s.manifest", stem);
        write_file(dir, file, manifest_text, strlen(manifest_text));
        if (!s)
                return;
        sig = signer_sign(s, manifest_text, strlen(manifest_text), prehashed, "test bundle");
        snprintf(file, sizeof(file), "%s.manifest.minisig", stem);
        write_file(dir, file, sig, strlen(sig));
}

/* Changes one thing in a signature file, whoever made it. */
typedef enum tamper {
        TAMPER_SIGNATURE,
        TAMPER_ALGORITHM,
        TAMPER_PREHASH_FLAG,
        TAMPER_KEY_ID,
        TAMPER_TRUSTED_COMMENT,
        TAMPER_GLOBAL,
        TAMPER_BASE64,
} tamper;

static void tamper_signature(const char *dir, const char *name, tamper how) {
        _cleanup_free_ char *text = read_at(dir, name, NULL);
        char *lines[4], *save = NULL, out[2048], enc[256];
        uint8_t blob[74], global[64];
        size_t n;
        int i = 0;

        if (!text)
                abort();
        for (char *l = strtok_r(text, "\n", &save); l && i < 4; l = strtok_r(NULL, "\n", &save))
                lines[i++] = l;
        if (i != 4 ||
            sodium_base642bin(blob, sizeof(blob), lines[1], strlen(lines[1]), NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            sodium_base642bin(global, sizeof(global), lines[3], strlen(lines[3]), NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
                abort();
        switch (how) {
        case TAMPER_SIGNATURE:
                blob[10 + 17] ^= 0x01;
                break;
        case TAMPER_ALGORITHM:
                blob[1] = 'x';
                break;
        case TAMPER_PREHASH_FLAG:
                blob[1] = blob[1] == 'D' ? 'd' : 'D';
                break;
        case TAMPER_KEY_ID:
                blob[2] ^= 0x80;
                break;
        case TAMPER_TRUSTED_COMMENT:
                lines[2][strlen(lines[2]) - 1] ^= 0x01;
                break;
        case TAMPER_GLOBAL:
                global[5] ^= 0x01;
                break;
        case TAMPER_BASE64:
                break;
        }
        b64(blob, sizeof(blob), enc, sizeof(enc));
        if (how == TAMPER_BASE64)
                enc[20] = '*';
        n = (size_t) snprintf(out, sizeof(out), "%s\n%s\n%s\n", lines[0], enc, lines[2]);
        b64(global, sizeof(global), enc, sizeof(enc));
        n += (size_t) snprintf(out + n, sizeof(out) - n, "%s\n", enc);
        write_file(dir, name, out, n);
}

/* ---- versions ---- */

static void test_version_compare(void) {
        static const struct {
                const char *a, *b;
                int want;
        } cases[] = {
                { "1.0", "1.0", 0 },
                { "01", "1", 0 },
                { "1.0", "1.1", -1 },
                { "1.9", "1.10", -1 },
                { "1.0~rc1", "1.0", -1 },
                { "1.0~~", "1.0~", -1 },
                { "1.0~", "1.0", -1 },
                { "1.0", "1.0a", -1 },
                { "1.0a", "1.0.1", -1 },
                { "1.0", "1.0-1", -1 },
                { "1.0-1", "1.0+b1", -1 },
                { "1.0+b1", "1.0.1", -1 },
                { "0.7.5-3", "0.7.5-10", -1 },
                { "0.7.5-10", "0.7.6-1", -1 },
                { "1.0-1~bpo1", "1.0-1", -1 },
                { "1.0-0", "1.0", 0 },
                { "2-1-1", "2-1-2", -1 },
                { "2-1-9", "2-10-1", -1 },
                { "99999999999999999999999", "99999999999999999999998", 1 },
                { "1.a", "1.B", 1 },
                { "1+", "1.", -1 },
                { "A", "a", -1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int c = image_version_compare(cases[i].a, cases[i].b);
                int d = image_version_compare(cases[i].b, cases[i].a);
                int s = c < 0 ? -1 : c > 0;

                tap_ok(s == cases[i].want && (d < 0 ? -1 : d > 0) == -cases[i].want,
                       "version %s %s %s", cases[i].a,
                       cases[i].want < 0   ? "<"
                       : cases[i].want > 0 ? ">"
                                           : "==",
                       cases[i].b);
        }
}

/* ---- the manifest ---- */

#define DIGEST "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"

static void test_manifest_good(void) {
        static const char text[] = "# made by hand\n"
                                   "\n"
                                   "[Bundle]\n"
                                   "; comment\n"
                                   "  Name = teeworlds  \n"
                                   "Version=0.7.5-3\n"
                                   "SHA256=" DIGEST "\n"
                                   "Size=18446744073709551\n";
        bundle_manifest m = {}, m2 = {};
        bundle_error err;
        char out[BUNDLE_MANIFEST_MAX];
        int r;

        r = bundle_manifest_parse("good.manifest", text, strlen(text), &m, &err);
        tap_inteq(r, 0, "a manifest with comments, blank lines and spaces parses");
        tap_streq(m.name, "teeworlds", "Name=");
        tap_streq(m.version, "0.7.5-3", "Version=");
        tap_ok(m.sha256[0] == 0x01 && m.sha256[15] == 0xef && m.sha256[31] == 0xef,
               "SHA256= in mixed case");
        tap_ok(m.size == 18446744073709551ULL, "Size= as 64 bits");
        tap_ok(bundle_manifest_format(&m, out, sizeof(out)) > 0 &&
                       bundle_manifest_parse("x", out, strlen(out), &m2, NULL) == 0 &&
                       memcmp(&m, &m2, sizeof(m)) == 0,
               "format and parse again: the same manifest");
        tap_inteq(bundle_manifest_format(&m, out, 20), -ENOBUFS, "format: too small a buffer");

        static const char no_newline[] =
                "[Bundle]\nName=a\nVersion=1\nSHA256=" DIGEST "\nSize=9223372036854775807";
        tap_inteq(bundle_manifest_parse("x", no_newline, strlen(no_newline), &m, NULL), 0,
                  "no newline at the end; Size=INT64_MAX");
}

static void test_manifest_bad(void) {
        static const struct {
                const char *what, *text, *message;
        } cases[] = {
                { "empty", "", "x.manifest: no [Bundle] section" },
                { "key before section", "Name=a\n[Bundle]\n",
                  "x.manifest:1: a key before the [Bundle] section" },
                { "unknown section", "[Bundle]\n[Other]\n",
                  "x.manifest:2: unknown section [Other]: a manifest has only [Bundle]" },
                { "duplicate section", "[Bundle]\nName=a\n[Bundle]\n",
                  "x.manifest:3: duplicate section [Bundle] (first on line 1)" },
                { "duplicate key", "[Bundle]\nName=a\nVersion=1\nName=a\n",
                  "x.manifest:4: duplicate key Name= (first on line 2)" },
                { "unknown key", "[Bundle]\nPath=/etc\n",
                  "x.manifest:2: unknown key Path=: a manifest has Name=, Version=, SHA256= and "
                  "Size=" },
                { "key case", "[Bundle]\nname=a\n", "x.manifest:2: unknown key name=" },
                { "missing key", "[Bundle]\nName=a\nVersion=1\nSHA256=" DIGEST "\n",
                  "x.manifest: no Size= in [Bundle]" },
                { "no equals", "[Bundle]\nName\n", "x.manifest:2: expected KEY=VALUE" },
                { "unclosed section", "[Bundle\n", "x.manifest:1: a section header must end" },
                { "empty value", "[Bundle]\nName=\n", "x.manifest:2: Name= is empty" },
                { "name with slash", "[Bundle]\nName=../../etc\n",
                  "x.manifest:2: Name=\"../../etc\" is not a valid image name" },
                { "name ..", "[Bundle]\nName=..\n", "x.manifest:2: Name=\"..\" is not a valid" },
                { "name with dash first", "[Bundle]\nName=-rf\n", "x.manifest:2: Name=\"-rf\"" },
                { "name too long",
                  "[Bundle]\nName="
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                  "x.manifest:2: Name=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is "
                  "not a valid image name" },
                { "version with slash", "[Bundle]\nVersion=1/../../x\n",
                  "x.manifest:2: Version=\"1/../../x\" is not a valid version" },
                { "version ..", "[Bundle]\nVersion=..\n", "x.manifest:2: Version=\"..\"" },
                { "version with space", "[Bundle]\nVersion=1 2\n",
                  "x.manifest:2: Version=\"1 2\"" },
                { "short digest", "[Bundle]\nSHA256=" DIGEST "0\n",
                  "x.manifest:2: SHA256= has 65 characters, a SHA-256 digest is 64 hexadecimal "
                  "digits" },
                { "non-hex digest",
                  "[Bundle]\nSHA256="
                  "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdeg\n",
                  "x.manifest:2: SHA256=\"0123456789abcdef0123456789ABCDEF0123456789abcdef...\": "
                  "'g' at position 64 is not a hexadecimal digit" },
                { "negative size", "[Bundle]\nSize=-1\n",
                  "x.manifest:2: Size=\"-1\": not a decimal number of bytes" },
                { "signed size", "[Bundle]\nSize=+1\n",
                  "x.manifest:2: Size=\"+1\": not a decimal" },
                { "hex size", "[Bundle]\nSize=0x10\n",
                  "x.manifest:2: Size=\"0x10\": not a decimal" },
                { "leading zeros", "[Bundle]\nSize=010\n",
                  "x.manifest:2: Size=\"010\": leading zeros" },
                { "zero size", "[Bundle]\nSize=0\n",
                  "x.manifest:2: Size=\"0\": an image is at least" },
                { "size overflow", "[Bundle]\nSize=18446744073709551616\n",
                  "x.manifest:2: Size=\"18446744073709551616\": larger than 9223372036854775807" },
                { "size beyond off_t", "[Bundle]\nSize=9223372036854775808\n",
                  "x.manifest:2: Size=\"9223372036854775808\": larger than" },
                { "carriage return", "[Bundle]\r\n",
                  "x.manifest:1: control character 0x0d at column 9" },
                { "escape sequence", "[Bundle]\nName=\x1b[31m\n",
                  "x.manifest:2: control character 0x1b at column 6" },
        };
        bundle_manifest m;
        bundle_error err;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = bundle_manifest_parse("x.manifest", cases[i].text, strlen(cases[i].text),
                                              &m, &err);
                bool match = strncmp(err.message, cases[i].message, strlen(cases[i].message)) == 0;

                if (!tap_ok(r == -EBADMSG && match, "manifest rejected: %s", cases[i].what))
                        printf("#   got %d \"%s\"\n#   want \"%s...\"\n", r, err.message,
                               cases[i].message);
        }

        /* a NUL byte, a huge line, a huge file */
        static const char nul[] = "[Bundle]\nName=a\0b\n";
        tap_inteq(bundle_manifest_parse("x", nul, sizeof(nul) - 1, &m, &err), -EBADMSG,
                  "manifest with a NUL byte");
        tap_streq(err.message, "x:2: control character 0x00 at column 7", "  says where");

        char big[BUNDLE_MANIFEST_MAX + 2];
        memset(big, '#', sizeof(big));
        memcpy(big, "[Bundle]\n", 9);
        tap_inteq(bundle_manifest_parse("x", big, BUNDLE_LINE_MAX + 10, &m, &err), -EBADMSG,
                  "manifest with a line of %d bytes", BUNDLE_LINE_MAX + 1);
        tap_streq(err.message, "x:2: the line is 257 bytes long, more than 256", "  says so");
        tap_inteq(bundle_manifest_parse("x", big, sizeof(big), &m, &err), -EFBIG,
                  "manifest of %zu bytes", sizeof(big));
        tap_streq(err.message, "x: 4098 bytes, more than the 4096 a manifest may have",
                  "  says so");
}

/* ---- keys and signatures ---- */

static void test_key_and_signature_parse(void) {
        _cleanup_free_ char *pub = read_file("bundle/trusted.pub", NULL);
        _cleanup_free_ char *sig = read_file("bundle/teeworlds-1.0-1.manifest.minisig", NULL);
        bundle_signature s;
        bundle_error err;
        bundle_key key;
        char id[17], buf[BUNDLE_SIGNATURE_MAX + 2];

        if (!tap_ok(pub && sig, "test vectors readable (run in tests/unit)"))
                return;
        tap_inteq(bundle_key_parse("trusted.pub", pub, strlen(pub), &key, &err), 0,
                  "minisign public key parses");
        bundle_key_id_format(key.id, id);
        tap_ok(strstr(pub, id) != NULL, "key id %s as minisign prints it", id);
        tap_streq(key.source, "trusted.pub", "key source");

        tap_inteq(bundle_signature_parse("s", sig, strlen(sig), &s, &err), 0,
                  "minisign signature parses");
        tap_ok(s.prehashed, "  prehashed (ED)");
        tap_streq(s.trusted_comment, "test vector: prehashed", "  trusted comment");

        static const struct {
                const char *what, *text, *message;
                int want;
        } keys[] = {
                { "no comment line", "RWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\n",
                  "k: ends after line 1; a minisign public key has 2 lines", -EBADMSG },
                { "wrong comment",
                  "comment: x\nRWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\n",
                  "k:1: expected a line starting with \"untrusted comment: \"", -EBADMSG },
                { "bad base64",
                  "untrusted comment: "
                  "x\nRWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/x*q\n",
                  "k:2: not a minisign public key: invalid or non-canonical base64 (\"Ed\", key "
                  "id, Ed25519 key)",
                  -EBADMSG },
                { "short base64", "untrusted comment: x\nRWQv8IA1cA35dk9tk2k9wAtfjf7o\n",
                  "k:2: not a minisign public key: expected 56 characters of base64 (\"Ed\", key "
                  "id, Ed25519 key), found 28",
                  -EBADMSG },
                { "wrong algorithm",
                  "untrusted comment: "
                  "x\nRUQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\n",
                  "k:2: key algorithm \"ED\" is not Ed25519 (\"Ed\")", -EPROTONOSUPPORT },
                { "text after the key",
                  "untrusted comment: "
                  "x\nRWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\n\nmore\n",
                  "k:4: unexpected text after the 2 lines of a minisign public key", -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                int r = bundle_key_parse("k", keys[i].text, strlen(keys[i].text), &key, &err);
                bool match = strncmp(err.message, keys[i].message, strlen(keys[i].message)) == 0;

                if (!tap_ok(r == keys[i].want && match, "key rejected: %s", keys[i].what))
                        printf("#   got %d \"%s\"\n#   want %d \"%s...\"\n", r, err.message,
                               keys[i].want, keys[i].message);
        }
        static const char crlf[] = "untrusted comment: x\r\n"
                                   "RWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\r\n";
        tap_inteq(bundle_key_parse("k", crlf, strlen(crlf), &key, &err), 0,
                  "key with CRLF line ends");

        /* signatures: line by line */
        char *l2 = strchr(sig, '\n') + 1, *l3 = strchr(l2, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
        snprintf(buf, sizeof(buf), "%.*s", (int) (l4 - sig), sig);
        tap_inteq(bundle_signature_parse("s", buf, strlen(buf), &s, &err), -EBADMSG,
                  "signature without its global signature");
        tap_streq(err.message, "s: ends after line 3; a minisign signature has 4 lines",
                  "  says so");
        snprintf(buf, sizeof(buf), "%.*strusted comment:x\n%s", (int) (l3 - sig), sig, l4);
        tap_inteq(bundle_signature_parse("s", buf, strlen(buf), &s, &err), -EBADMSG,
                  "signature with a bad trusted comment prefix");
        tap_streq(err.message, "s:3: expected a line starting with \"trusted comment: \"",
                  "  says so");
        snprintf(buf, sizeof(buf), "%.*strusted comment: %01100d\n%s", (int) (l3 - sig), sig, 0,
                 l4);
        tap_inteq(bundle_signature_parse("s", buf, strlen(buf), &s, &err), -EBADMSG,
                  "signature with a trusted comment of 1100 bytes");
        tap_streq(err.message, "s:3: a comment longer than 1024 bytes", "  says so");
        snprintf(buf, sizeof(buf), "%.*s%.*s=\n", (int) (l4 - sig), sig, 86, l4);
        tap_inteq(bundle_signature_parse("s", buf, strlen(buf), &s, &err), -EBADMSG,
                  "signature with a global signature of bad base64");
        tap_ok(startswith(err.message, "s:4: not a global signature: expected 88 characters of "
                                       "base64 (Ed25519 signature), found 87") != NULL,
               "  says so: %s", err.message);
        /* padding leaves 2 bits of the last character unused: set one */
        snprintf(buf, sizeof(buf), "%s", sig);
        {
                static const char alphabet[] =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                char *pad = strchr(buf + (l2 - sig), '=');
                size_t v = (size_t) (strchr(alphabet, pad[-1]) - alphabet);

                pad[-1] = alphabet[v ^ 1];
        }
        tap_inteq(bundle_signature_parse("s", buf, strlen(buf), &s, &err), -EBADMSG,
                  "signature with non-canonical base64 (a stray bit in the padding)");
        tap_streq(err.message,
                  "s:2: not a minisign signature: invalid or non-canonical base64 (algorithm, key "
                  "id, Ed25519 signature)",
                  "  says so");
        memset(buf, '\n', BUNDLE_SIGNATURE_MAX + 1);
        tap_inteq(bundle_signature_parse("s", buf, BUNDLE_SIGNATURE_MAX + 1, &s, &err), -EFBIG,
                  "signature file of %d bytes", BUNDLE_SIGNATURE_MAX + 1);
}

/* ---- the committed vectors ---- */

static void check_installed(const char *images, const char *version, const char *payload_path) {
        _cleanup_free_ char *name = NULL, *got = NULL, *want = NULL;
        size_t got_n = 0, want_n = 0;
        struct stat st;

        if (asprintf(&name, "%s.squashfs", version) < 0)
                abort();
        got = read_at(images, name, &got_n);
        want = read_file(payload_path, &want_n);
        tap_ok(got && want && got_n == want_n && memcmp(got, want, got_n) == 0,
               "  %s holds exactly the payload (%zu bytes)", name, got_n);
        {
                _cleanup_free_ char *p = path_join(images, name);
                tap_ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0644, "  mode 0644");
        }
        tap_inteq(count_entries(images), 1, "  and nothing else in the image directory");
}

static int open_dir(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                abort();
        return fd;
}

static void test_vectors(void) {
        bundle_keyring keys = {};
        bundle_error err;
        bundle_key key;
        _cleanup_free_ char *pub = read_file("bundle/trusted.pub", NULL);
        _cleanup_free_ char *other = read_file("bundle/other.pub", NULL);
        _cleanup_close_ int in = open_dir("bundle");
        static const struct {
                const char *stem, *version;
                bool prehashed;
        } vectors[] = {
                { "teeworlds-1.0-1", "1.0-1", true },
                { "teeworlds-1.0-2", "1.0-2", false },
        };

        if (!pub || !other || bundle_key_parse("trusted.pub", pub, strlen(pub), &key, NULL) < 0 ||
            bundle_keyring_add(&keys, &key) < 0)
                abort();
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ char *images = new_dir("images"), *payload = NULL;
                _cleanup_close_ int out = open_dir(images);
                bundle b = { .payload_fd = -1 };
                int r;

                r = bundle_open(in, vectors[i].stem, &keys, &b, &err);
                if (!tap_inteq(r, 0, "vector %s (%s, signed by minisign) opens", vectors[i].stem,
                               vectors[i].prehashed ? "prehashed" : "legacy"))
                        printf("#   %s\n", err.message);
                tap_ok(b.signature.prehashed == vectors[i].prehashed, "  algorithm as expected");
                tap_streq(b.key_source, "trusted.pub", "  verified by trusted.pub");
                tap_inteq(bundle_check_update(&b.manifest, "teeworlds", "1.0", false, &err), 0,
                          "  newer than 1.0");
                r = bundle_install_payload(b.payload_fd, &b.manifest, out, MAX_PAYLOAD, 0, &err);
                if (!tap_inteq(r, 0, "  installs"))
                        printf("#   %s\n", err.message);
                if (asprintf(&payload, "bundle/%s.squashfs", vectors[i].stem) < 0)
                        abort();
                check_installed(images, vectors[i].version, payload);
                tap_inteq(bundle_verify_payload(b.payload_fd, &b.manifest, MAX_PAYLOAD, &err), 0,
                          "  the payload verifies again from the same fd");
                bundle_done(&b);
                tap_inteq(b.payload_fd, -1, "  bundle_done() releases the fd");
                bundle_done(&b);
        }

        /* the same files with only the other key trusted */
        bundle_keyring_done(&keys);
        if (bundle_key_parse("other.pub", other, strlen(other), &key, NULL) < 0 ||
            bundle_keyring_add(&keys, &key) < 0)
                abort();
        {
                bundle b;
                tap_inteq(bundle_open(in, "teeworlds-1.0-1", &keys, &b, &err), -ENOKEY,
                          "vector with an untrusted key: -ENOKEY");
                tap_ok(startswith(err.message, "teeworlds-1.0-1.manifest.minisig: signed with key "
                                               "76F90D703580F02F, which is not among the 1 "
                                               "trusted keys") != NULL,
                       "  says which key: %s", err.message);
                tap_inteq(b.payload_fd, -1, "  no fd handed out");
        }
        bundle_keyring_done(&keys);
        bundle_keyring_done(&keys);
}

/* ---- trusted key directories ---- */

static int n_reported;
static char last_report[BUNDLE_ERROR_MAX];

static void on_bad_key(const char *path, int error, const char *message, void *userdata) {
        n_reported++;
        snprintf(last_report, sizeof(last_report), "%s", message);
        printf("#   skipped %s (%s): %s\n", path, strerror(-error), message);
}

static void test_keyring_dir(void) {
        _cleanup_free_ char *dir = new_dir("trusted");
        _cleanup_free_ char *pub = read_file("bundle/trusted.pub", NULL);
        _cleanup_free_ char *other = read_file("bundle/other.pub", NULL);
        _cleanup_free_ char *sub = path_join(dir, "dir.pub");
        bundle_keyring keys = {};
        int r;

        write_file(dir, "a.pub", pub, strlen(pub));
        write_file(dir, "b.pub", other, strlen(other));
        write_file(dir, "bad.pub", "untrusted comment: x\nnot base64\n", 32);
        write_file(dir, "README", "not a key", 9);
        write_file(dir, ".hidden.pub", "junk", 4);
        if (mkdir(sub, 0755) < 0)
                abort();

        n_reported = 0;
        r = bundle_keyring_load_dir(dir, &keys, on_bad_key, NULL);
        tap_inteq(r, 2, "trusted directory: the two good keys load");
        tap_inteq(keys.n, 2, "  two keys in the keyring");
        tap_ok(keys.n == 2 && streq(keys.keys[0].source, "a.pub") &&
                       streq(keys.keys[1].source, "b.pub"),
               "  in name order");
        tap_inteq(n_reported, 2, "  bad.pub and dir.pub reported, README and .hidden.pub ignored");
        tap_ok(strstr(last_report, "dir.pub: not a regular file") != NULL, "  dir.pub: %s",
               last_report);
        bundle_keyring_done(&keys);
        tap_inteq(bundle_keyring_load_dir("/nonexistent-vigil-dir", &keys, NULL, NULL), -ENOENT,
                  "a missing trusted directory: -ENOENT");
}

/* ---- the rejection table ---- */

typedef struct outcome {
        char what[96];
        int want, got;
        char message[BUNDLE_ERROR_MAX];
} outcome;

static outcome table[96];
static size_t n_table;

typedef struct setup {
        const char *incoming;
        const char *images;
        const bundle_keyring *keys;
        const char *image;     /* the configured image name */
        const char *installed; /* its installed version */
        uint64_t max_size;
} setup;

/* What init/ will do with a staged bundle: open, check, install. */
static int apply(const setup *s, const char *stem, bool force, bundle_error *err) {
        _cleanup_close_ int in = open_dir(s->incoming), out = open_dir(s->images);
        bundle b = { .payload_fd = -1 };
        int r;

        r = bundle_open(in, stem, s->keys, &b, err);
        if (r < 0)
                return r;
        r = bundle_check_update(&b.manifest, s->image, s->installed, force, err);
        if (r >= 0)
                r = bundle_install_payload(b.payload_fd, &b.manifest, out, s->max_size, 0, err);
        bundle_done(&b);
        return r;
}

static void expect_rejected(const setup *s, const char *stem, int want, const char *what) {
        bundle_error err = {};
        outcome *o = n_table < ELEMENTSOF(table) ? &table[n_table++] : &table[n_table - 1];
        int r = apply(s, stem, false, &err);
        int left = count_entries(s->images);

        snprintf(o->what, sizeof(o->what), "%s", what);
        o->want = want;
        o->got = r;
        snprintf(o->message, sizeof(o->message), "%s", err.message);
        if (!tap_ok(r == want && bundle_error_is_rejection(r) && *err.message && left == 0,
                    "rejected: %s (%s)", what, strerror(-want)))
                printf("#   got %d (%s): \"%s\"; %d files left in the image directory\n", r,
                       strerror(-r), err.message, left);
}

static void expect_installed(const setup *s, const char *stem, bool force, const char *what) {
        bundle_error err = {};
        int r = apply(s, stem, force, &err);

        if (!tap_inteq(r, 0, "accepted: %s", what))
                printf("#   %s\n", err.message);
}

static void print_table(void) {
        size_t ok = 0;

        printf("# %-44s %-16s %s\n", "bundle", "result", "reason");
        for (size_t i = 0; i < n_table; i++) {
                bool good = table[i].got == table[i].want;

                ok += good;
                printf("# %-44s %-16s %s%s%s\n", table[i].what,
                       table[i].got < 0 ? strerrorname_np(-table[i].got) : "ACCEPTED",
                       table[i].message, good ? "" : "  <- expected ",
                       good ? "" : strerrorname_np(-table[i].want));
        }
        printf("# bundles rejected as expected: %zu/%zu\n", ok, n_table);
}

static void test_rejections(void) {
        _cleanup_free_ char *incoming = new_dir("incoming"), *images = new_dir("images");
        _cleanup_free_ char *pub = NULL, *big = NULL;
        _cleanup_free_ uint8_t *payload = malloc(10000);
        bundle_keyring keys = {}, none = {};
        signer trusted, stranger;
        bundle_key key;
        char text[8192];
        setup s = {
                .incoming = incoming,
                .images = images,
                .keys = &keys,
                .image = "teeworlds",
                .installed = "2.0",
                .max_size = 1 << 20,
        };

        signer_new(&trusted);
        signer_new(&stranger);
        pub = signer_pubkey(&trusted);
        if (!payload || bundle_key_parse("trusted.pub", pub, strlen(pub), &key, NULL) < 0 ||
            bundle_keyring_add(&keys, &key) < 0)
                abort();
        for (size_t i = 0; i < 10000; i++)
                payload[i] = (uint8_t) (i * 7 + i / 251);

        /* the signer agrees with the verifier before it is trusted with the table */
        make_bundle(incoming, &trusted, true, "teeworlds", "2.1", payload, 10000, NULL);
        make_bundle(incoming, &trusted, false, "teeworlds", "2.2", payload, 10000, NULL);
        {
                _cleanup_free_ char *images2 = new_dir("images");
                setup s2 = s;

                s2.images = images2;
                expect_installed(&s2, "teeworlds-2.1", false, "test signer, prehashed");
                expect_installed(&s2, "teeworlds-2.2", false, "test signer, legacy");
                bundle_error err;
                int r = apply(&s2, "teeworlds-2.2", true, &err);
                tap_ok(r == -EEXIST && !bundle_error_is_rejection(r),
                       "installed already, forced: -EEXIST, not a rejection (%s)", err.message);
        }

        make_bundle(incoming, NULL, true, "teeworlds", "3.0", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-3.0", -ENODATA, "unsigned");

        make_bundle(incoming, &stranger, true, "teeworlds", "3.1", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-3.1", -ENOKEY, "signed by an unknown key");
        s.keys = &none;
        make_bundle(incoming, &trusted, true, "teeworlds", "3.2", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-3.2", -ENOKEY, "no trusted keys at all");
        s.keys = &keys;

        make_bundle(incoming, &trusted, true, "teeworlds", "3.3", payload, 10000, NULL);
        flip_byte(incoming, "teeworlds-3.3.squashfs", 5000);
        expect_rejected(&s, "teeworlds-3.3", -EBADMSG, "a flipped byte in the payload");

        make_bundle(incoming, &trusted, true, "teeworlds", "3.4", payload, 10000, NULL);
        flip_byte(incoming, "teeworlds-3.4.manifest", 40);
        expect_rejected(&s, "teeworlds-3.4", -EKEYREJECTED,
                        "a flipped byte in the manifest (prehashed)");
        make_bundle(incoming, &trusted, false, "teeworlds", "3.5", payload, 10000, NULL);
        flip_byte(incoming, "teeworlds-3.5.manifest", 40);
        expect_rejected(&s, "teeworlds-3.5", -EKEYREJECTED,
                        "a flipped byte in the manifest (legacy)");

        static const struct {
                tamper how;
                int want;
                const char *what;
        } tampers[] = {
                { TAMPER_SIGNATURE, -EKEYREJECTED, "a flipped bit in the signature" },
                { TAMPER_TRUSTED_COMMENT, -EKEYREJECTED, "a flipped bit in the trusted comment" },
                { TAMPER_GLOBAL, -EKEYREJECTED, "a flipped bit in the global signature" },
                { TAMPER_PREHASH_FLAG, -EKEYREJECTED, "ED changed to Ed (prehash flag)" },
                { TAMPER_KEY_ID, -ENOKEY, "a flipped bit in the key id" },
                { TAMPER_ALGORITHM, -EPROTONOSUPPORT, "wrong algorithm bytes (Ex)" },
                { TAMPER_BASE64, -EBADMSG, "bad base64 in the signature" },
        };
        for (size_t i = 0; i < ELEMENTSOF(tampers); i++) {
                char version[16], stem[64], sig[96];

                snprintf(version, sizeof(version), "4.%zu", i);
                snprintf(stem, sizeof(stem), "teeworlds-%s", version);
                snprintf(sig, sizeof(sig), "%s.manifest.minisig", stem);
                make_bundle(incoming, &trusted, true, "teeworlds", version, payload, 10000, NULL);
                tamper_signature(incoming, sig, tampers[i].how);
                expect_rejected(&s, stem, tampers[i].want, tampers[i].what);
        }

        make_bundle(incoming, &trusted, true, "teeworlds", "5.0", payload, 10000, NULL);
        write_file(incoming, "teeworlds-5.0.squashfs", payload, 9999);
        expect_rejected(&s, "teeworlds-5.0", -EMSGSIZE, "truncated payload");
        make_bundle(incoming, &trusted, true, "teeworlds", "5.1", payload, 10000, NULL);
        {
                _cleanup_free_ uint8_t *longer = calloc(1, 10001);
                memcpy(longer, payload, 10000);
                write_file(incoming, "teeworlds-5.1.squashfs", longer, 10001);
        }
        expect_rejected(&s, "teeworlds-5.1", -EMSGSIZE, "payload longer than Size=");

        s.max_size = 9999;
        make_bundle(incoming, &trusted, true, "teeworlds", "5.2", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-5.2", -EFBIG, "payload beyond the maximum size");
        s.max_size = 1 << 20;
        snprintf(text, sizeof(text),
                 "[Bundle]\nName=teeworlds\nVersion=5.3\nSHA256=" DIGEST "\nSize=%llu\n",
                 1ULL << 40);
        make_bundle(incoming, &trusted, true, "teeworlds", "5.3", payload, 10000, text);
        expect_rejected(&s, "teeworlds-5.3", -EFBIG, "Size= of 1 TiB (refused before reading)");

        make_bundle(incoming, &trusted, true, "other", "6.0", payload, 10000, NULL);
        expect_rejected(&s, "other-6.0", -EXDEV, "name mismatch (image other, not teeworlds)");
        make_bundle(incoming, &trusted, true, "teeworlds", "6.1", payload, 10000, NULL);
        {
                _cleanup_close_ int in = open_dir(incoming);
                if (renameat(in, "teeworlds-6.1.manifest", in, "teeworlds-9.9.manifest") < 0 ||
                    renameat(in, "teeworlds-6.1.manifest.minisig", in,
                             "teeworlds-9.9.manifest.minisig") < 0 ||
                    renameat(in, "teeworlds-6.1.squashfs", in, "teeworlds-9.9.squashfs") < 0)
                        abort();
        }
        expect_rejected(&s, "teeworlds-9.9", -EXDEV, "renamed to claim another version");

        make_bundle(incoming, &trusted, true, "teeworlds", "1.9", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-1.9", -ESTALE, "downgrade (1.9 over 2.0)");
        make_bundle(incoming, &trusted, true, "teeworlds", "2.0", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-2.0", -ESTALE, "the installed version again");
        make_bundle(incoming, &trusted, true, "teeworlds", "2.0~rc1", payload, 10000, NULL);
        expect_rejected(&s, "teeworlds-2.0~rc1", -ESTALE, "downgrade (2.0~rc1 over 2.0)");

        static const struct {
                const char *stem, *manifest, *what;
                int want;
        } signed_bad[] = {
                { "teeworlds-7.0", "[Bundle]\nName=../../etc\nVersion=7.0\n",
                  "path trick in Name= (../../etc)", -EBADMSG },
                { "teeworlds-7.1", "[Bundle]\nName=teeworlds\nVersion=../../../sbin/init\n",
                  "path trick in Version= (../../../sbin/init)", -EBADMSG },
                { "teeworlds-7.2", "[Bundle]\nName=teeworlds\nVersion=.\n",
                  "path trick in Version= (.)", -EBADMSG },
                { "teeworlds-7.3", "[Bundle]\nName=teeworlds\nName=teeworlds\n",
                  "duplicate key in the manifest", -EBADMSG },
                { "teeworlds-7.4", "[Bundle]\n[Bundle]\n", "duplicate section in the manifest",
                  -EBADMSG },
                { "teeworlds-7.5",
                  "[Bundle]\nName=teeworlds\nVersion=7.5\nSHA256=" DIGEST
                  "\nSize=10000\nInstall=/etc/shadow\n",
                  "unknown key in the manifest", -EBADMSG },
                { "teeworlds-7.6", "[Bundle]\nSize=-10000\n", "signed Size=", -EBADMSG },
                { "teeworlds-7.7", "[Bundle]\nSize=99999999999999999999\n", "Size= overflow",
                  -EBADMSG },
                { "teeworlds-7.8", "[Bundle]\nSHA256=abc\n", "short SHA256=", -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(signed_bad); i++) {
                const char *dash = strchr(signed_bad[i].stem, '-');
                char name[32];

                snprintf(name, sizeof(name), "%.*s", (int) (dash - signed_bad[i].stem),
                         signed_bad[i].stem);
                make_bundle(incoming, &trusted, true, name, dash + 1, payload, 10000,
                            signed_bad[i].manifest);
                expect_rejected(&s, signed_bad[i].stem, signed_bad[i].want, signed_bad[i].what);
        }

        /* a huge line and a huge manifest, both signed */
        snprintf(text, sizeof(text), "[Bundle]\n# %0300d\n", 0);
        make_bundle(incoming, &trusted, true, "teeworlds", "7.9", payload, 10000, text);
        expect_rejected(&s, "teeworlds-7.9", -EBADMSG, "a manifest line of 302 bytes");
        big = malloc(BUNDLE_MANIFEST_MAX + 100);
        memset(big, '#', BUNDLE_MANIFEST_MAX + 99);
        big[BUNDLE_MANIFEST_MAX + 99] = 0;
        make_bundle(incoming, &trusted, true, "teeworlds", "8.0", payload, 10000, big);
        expect_rejected(&s, "teeworlds-8.0", -EFBIG, "a manifest of 4195 bytes");

        /* file names and file types */
        expect_rejected(&s, "../incoming/teeworlds-2.1", -EBADMSG, "path trick in the file name");
        expect_rejected(&s, ".teeworlds-2.1", -EBADMSG, "hidden file name");
        make_bundle(incoming, &trusted, true, "teeworlds", "8.1", payload, 10000, NULL);
        {
                _cleanup_free_ char *p = path_join(incoming, "teeworlds-8.1.squashfs");
                if (unlink(p) < 0 || symlink("/etc/passwd", p) < 0)
                        abort();
        }
        expect_rejected(&s, "teeworlds-8.1", -EBADMSG, "payload is a symbolic link");
        make_bundle(incoming, &trusted, true, "teeworlds", "8.2", payload, 10000, NULL);
        {
                _cleanup_free_ char *p = path_join(incoming, "teeworlds-8.2.manifest");
                _cleanup_free_ char *q = path_join(incoming, "teeworlds-2.1.manifest");
                if (unlink(p) < 0 || symlink(q, p) < 0)
                        abort();
        }
        expect_rejected(&s, "teeworlds-8.2", -EBADMSG, "manifest is a symbolic link");

        /* after all that: forced downgrade works, and a missing payload is not a verdict */
        expect_installed(&s, "teeworlds-1.9", true, "forced downgrade (1.9 over 2.0)");
        make_bundle(incoming, &trusted, true, "teeworlds", "8.3", payload, 10000, NULL);
        {
                _cleanup_free_ char *p = path_join(incoming, "teeworlds-8.3.squashfs");
                bundle_error err;
                int r;

                unlink(p);
                r = apply(&s, "teeworlds-8.3", false, &err);
                tap_ok(r == -ENOENT && !bundle_error_is_rejection(r),
                       "a missing payload: -ENOENT, not a rejection (%s)", err.message);
        }
        bundle_keyring_done(&keys);
}

/* ---- installing ---- */

static void test_install(void) {
        _cleanup_free_ char *dir = new_dir("install"), *src = new_dir("src");
        _cleanup_close_ int dfd = open_dir(dir);
        _cleanup_free_ uint8_t *data = malloc(300000);
        bundle_manifest m = { .name = "teeworlds", .version = "1.0", .size = 300000 };
        bundle_error err;
        int fd, p[2], r;

        for (size_t i = 0; i < 300000; i++)
                data[i] = (uint8_t) (i ^ (i >> 8));
        crypto_hash_sha256(m.sha256, data, 300000);
        write_file(src, "payload", data, 300000);
        {
                _cleanup_free_ char *path = path_join(src, "payload");
                fd = open(path, O_RDONLY | O_CLOEXEC);
        }

        r = bundle_install_payload(fd, &m, dfd, 300000, 0, &err);
        tap_inteq(r, 0, "install at exactly the maximum size");
        tap_inteq(bundle_install_payload(fd, &m, dfd, 300000, 0, &err), -EEXIST,
                  "install again: -EEXIST");
        tap_ok(!bundle_error_is_rejection(-EEXIST), "  which is not a rejection: %s", err.message);
        tap_inteq(bundle_install_payload(fd, &m, dfd, 300000, BUNDLE_INSTALL_REPLACE, &err), 0,
                  "install again with BUNDLE_INSTALL_REPLACE");
        m.version[2] = '1';
        tap_inteq(bundle_install_payload(fd, &m, dfd, 300000, BUNDLE_INSTALL_NAMED_TEMPORARY, &err),
                  0, "install through a named temporary file");
        tap_inteq(bundle_install_payload(fd, &m, dfd, 300000,
                                         BUNDLE_INSTALL_NAMED_TEMPORARY | BUNDLE_INSTALL_REPLACE,
                                         &err),
                  0, "  and replace through one");
        tap_inteq(count_entries(dir), 2, "  1.0.squashfs and 1.1.squashfs, no temporaries");
        {
                _cleanup_close_ int path_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                tap_inteq(bundle_install_payload(fd, &m, path_fd, 300000, BUNDLE_INSTALL_REPLACE,
                                                 &err),
                          0, "install into an O_PATH directory fd");
                tap_inteq(bundle_remove_temporaries(path_fd), 0,
                          "  bundle_remove_temporaries() on it: nothing to remove");
        }
        close(fd);

        /* "refuse before reading": an fd that cannot be read at all */
        {
                _cleanup_free_ char *path = path_join(src, "payload");
                fd = open(path, O_WRONLY | O_CLOEXEC);
        }
        m.version[2] = '2';
        tap_inteq(bundle_install_payload(fd, &m, dfd, 299999, 0, &err), -EFBIG,
                  "Size= beyond the maximum: refused before reading");
        tap_streq(err.message,
                  "teeworlds 1.2: Size=300000 is larger than the largest image allowed (299999 "
                  "bytes)",
                  "  says so");
        close(fd);

        /* a pipe: no size known in advance, digest and length checked at the end */
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                for (size_t o = 0; o < 300000; o += 1000)
                        if (write(p[1], data + o, 1000) != 1000)
                                _exit(1);
                _exit(0);
        }
        close(p[1]);
        r = bundle_install_payload(p[0], &m, dfd, MAX_PAYLOAD, 0, &err);
        if (!tap_inteq(r, 0, "install from a pipe"))
                printf("#   %s\n", err.message);
        close(p[0]);
        waitpid(pid, NULL, 0);

        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                _exit(write(p[1], data, 299000) == 299000 ? 0 : 1);
        }
        close(p[1]);
        m.version[2] = '3';
        tap_inteq(bundle_install_payload(p[0], &m, dfd, MAX_PAYLOAD, 0, &err), -EMSGSIZE,
                  "a short pipe: -EMSGSIZE");
        tap_streq(err.message,
                  "teeworlds-1.3.squashfs: 299000 bytes, but the manifest says Size=300000 "
                  "(truncated)",
                  "  says so");
        close(p[0]);
        waitpid(pid, NULL, 0);
        tap_inteq(count_entries(dir), 3, "  and left nothing behind");

        /* leftovers of an interrupted named-temporary install */
        write_file(dir, ".#1.4.squashfs.abcdef", "x", 1);
        write_file(dir, ".#other", "x", 1);
        tap_inteq(bundle_remove_temporaries(dfd), 1, "bundle_remove_temporaries() removes one");
        tap_inteq(count_entries(dir), 4, "  and keeps the rest");
}

/* ---- with minisign and image/mkbundle ---- */

static int run(char *const argv[]) {
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                dup2(null, 0);
                dup2(null, 1);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool have_minisign(void) {
        char *argv[] = { "minisign", "-v", NULL };
        return run(argv) == 0;
}

static void test_minisign(void) {
        const char *mkbundle = getenv("MKBUNDLE");
        _cleanup_free_ char *work = NULL, *incoming = NULL, *images = NULL, *key = NULL,
                            *pubf = NULL, *key2 = NULL, *pub2 = NULL, *payload = NULL;
        bundle_keyring keys = {};
        bundle_key k;
        setup s;

        if (!mkbundle || !have_minisign()) {
                tap_skip("bundles made by minisign and image/mkbundle",
                         mkbundle ? "minisign is not installed" : "MKBUNDLE is not set");
                return;
        }
        work = new_dir("minisign");
        incoming = new_dir("incoming");
        images = new_dir("images");
        key = path_join(work, "k.key");
        pubf = path_join(work, "k.pub");
        key2 = path_join(work, "o.key");
        pub2 = path_join(work, "o.pub");
        payload = path_join(work, "image.squashfs");
        {
                char *g1[] = { "minisign", "-G", "-W", "-p", pubf, "-s", key, NULL };
                char *g2[] = { "minisign", "-G", "-W", "-p", pub2, "-s", key2, NULL };
                if (!tap_ok(run(g1) == 0 && run(g2) == 0, "minisign -G -W makes two key pairs"))
                        return;
        }
        {
                _cleanup_free_ uint8_t *data = malloc(200000);
                for (size_t i = 0; i < 200000; i++)
                        data[i] = (uint8_t) (i * 13 + (i >> 10));
                write_file(work, "image.squashfs", data, 200000);
        }
        {
                _cleanup_free_ char *t = read_file(pubf, NULL);
                if (!t || bundle_key_parse(pubf, t, strlen(t), &k, NULL) < 0 ||
                    bundle_keyring_add(&keys, &k) < 0)
                        abort();
        }
        s = (setup){ .incoming = incoming,
                     .images = images,
                     .keys = &keys,
                     .image = "teeworlds",
                     .installed = "0.7.5-3",
                     .max_size = 1 << 20 };

        static const struct {
                const char *version;
                bool legacy, other_key;
        } made[] = {
                { "0.7.5-4", false, false },  { "0.7.5-5", true, false },
                { "0.7.5-6", false, true },   { "0.7.5-7", false, false },
                { "0.7.5-8", true, false },   { "0.7.5-9", false, false },
                { "0.7.5-10", true, false },  { "0.7.5-11", false, false },
                { "0.7.5-12", false, false }, { "0.7.5-2", false, false },
        };
        bool all = true;
        for (size_t i = 0; i < ELEMENTSOF(made); i++) {
                char *argv[] = { (char *) mkbundle,
                                 "--key",
                                 made[i].other_key ? key2 : key,
                                 "--name",
                                 "teeworlds",
                                 "--version",
                                 (char *) made[i].version,
                                 "--out",
                                 incoming,
                                 made[i].legacy ? "--legacy" : payload,
                                 made[i].legacy ? payload : NULL,
                                 NULL };
                all = all && run(argv) == 0;
        }
        if (!tap_ok(all, "image/mkbundle makes %zu bundles", ELEMENTSOF(made)))
                return;

        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *dir = new_dir("images");
                setup s2 = s;
                const char *version = i == 0 ? "0.7.5-4" : "0.7.5-5";
                char stem[64];

                s2.images = dir;
                snprintf(stem, sizeof(stem), "teeworlds-%s", version);
                expect_installed(&s2, stem, false,
                                 i == 0 ? "minisign, prehashed (-H)" : "minisign, legacy (-l)");
                check_installed(dir, version, payload);
        }

        expect_rejected(&s, "teeworlds-0.7.5-6", -ENOKEY, "minisign: signed by another key");
        flip_byte(incoming, "teeworlds-0.7.5-7.squashfs", 123456);
        expect_rejected(&s, "teeworlds-0.7.5-7", -EBADMSG, "minisign: a flipped payload byte");
        flip_byte(incoming, "teeworlds-0.7.5-8.manifest", 30);
        expect_rejected(&s, "teeworlds-0.7.5-8", -EKEYREJECTED,
                        "minisign: a flipped manifest byte (legacy)");
        tamper_signature(incoming, "teeworlds-0.7.5-9.manifest.minisig", TAMPER_SIGNATURE);
        expect_rejected(&s, "teeworlds-0.7.5-9", -EKEYREJECTED,
                        "minisign: a flipped signature bit");
        tamper_signature(incoming, "teeworlds-0.7.5-10.manifest.minisig", TAMPER_TRUSTED_COMMENT);
        expect_rejected(&s, "teeworlds-0.7.5-10", -EKEYREJECTED,
                        "minisign: a changed trusted comment");
        {
                _cleanup_free_ char *p = path_join(incoming, "teeworlds-0.7.5-11.squashfs");
                if (truncate(p, 100000) < 0)
                        abort();
        }
        expect_rejected(&s, "teeworlds-0.7.5-11", -EMSGSIZE, "minisign: truncated payload");
        {
                _cleanup_free_ char *p = path_join(incoming, "teeworlds-0.7.5-12.manifest.minisig");
                unlink(p);
        }
        expect_rejected(&s, "teeworlds-0.7.5-12", -ENODATA, "minisign: signature removed");
        expect_rejected(&s, "teeworlds-0.7.5-2", -ESTALE, "minisign: downgrade");
        s.max_size = 199999;
        expect_rejected(&s, "teeworlds-0.7.5-4", -EFBIG, "minisign: beyond the maximum size");
        bundle_keyring_done(&keys);
}

int main(void) {
        if (sodium_init() < 0 || !mkdtemp(tmp_root)) {
                printf("1..0 # SKIP no libsodium or no temporary directory\n");
                return 77;
        }
        test_version_compare();
        test_manifest_good();
        test_manifest_bad();
        test_key_and_signature_parse();
        test_vectors();
        test_keyring_dir();
        test_rejections();
        test_install();
        test_minisign();
        print_table();
        rm_rf(tmp_root);
        return tap_done();
}
