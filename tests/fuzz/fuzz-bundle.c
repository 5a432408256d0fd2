/* libFuzzer target: arbitrary bytes as an update manifest, a minisign signature and a minisign
 * public key, and as a pair of versions (two lines) to order. */
#include <stdint.h>

#include "bundle.h"
#include "macro.h"
#include "unit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key and the message of tests/unit/bundle/teeworlds-1.0-{1,2}: a seed that is one of
 * their signatures verifies, so the whole verification path is reached. */
static const char vector_key[] = "untrusted comment: minisign public key 76F90D703580F02F\n"
                                 "RWQv8IA1cA35dk9tk2k9wAtfjf7oZyP/041Zh/GwXnobKmjA3ue5/xOq\n";
static const char vector_manifest_1[] =
        "[Bundle]\nName=teeworlds\nVersion=1.0-1\n"
        "SHA256=a883c31b026857f60b6bc99274071f433a4ee7792ef075e932983aabea85c021\nSize=3520\n";
static const char vector_manifest_2[] =
        "[Bundle]\nName=teeworlds\nVersion=1.0-2\n"
        "SHA256=a883c31b026857f60b6bc99274071f433a4ee7792ef075e932983aabea85c021\nSize=3520\n";

/* A library bug must be a crash, so that libFuzzer keeps the input. */
static void fail(const char *what, const bundle_error *err) {
        fprintf(stderr, "fuzz-bundle: %s", what);
        if (err)
                fprintf(stderr, " (message \"%s\")", err->message);
        fputc('\n', stderr);
        abort();
}

/* A failure must say why, in one line of printable ASCII (input bytes are escaped). */
static void check_failure(int r, const bundle_error *err, const char *path) {
        const char *p;

        if (r >= 0)
                return;
        if (r != -EBADMSG && r != -EFBIG && r != -EPROTONOSUPPORT)
                fail("unexpected error code", err);
        if (!bundle_error_is_rejection(r))
                fail("a parse error that is not a rejection", err);
        if (!startswith(err->message, path))
                fail("message does not name the file", err);
        if (strnlen(err->message, BUNDLE_ERROR_MAX) >= BUNDLE_ERROR_MAX)
                fail("message not terminated", NULL);
        for (p = err->message; *p; p++)
                if (*p < 0x20 || *p > 0x7e)
                        fail("message is not one printable line", err);
}

static void fuzz_manifest(const uint8_t *data, size_t size) {
        bundle_manifest m, again;
        bundle_error err;
        char text[BUNDLE_MANIFEST_MAX];
        int r, n;

        memset(&m, 0xaa, sizeof(m));
        r = bundle_manifest_parse("f.manifest", data, size, &m, &err);
        check_failure(r, &err, "f.manifest");
        if (r < 0)
                return;
        if (*err.message)
                fail("success with a message", &err);
        if (!image_name_is_valid(m.name) || !image_version_is_valid(m.version))
                fail("accepted an invalid name or version", NULL);
        if (strchr(m.name, '/') || strchr(m.version, '/') || streq(m.name, "..") ||
            streq(m.version, ".."))
                fail("a path in a name or version", NULL);
        if (m.size == 0 || m.size > (uint64_t) INT64_MAX)
                fail("size out of range", NULL);
        if (size > BUNDLE_MANIFEST_MAX)
                fail("accepted more than BUNDLE_MANIFEST_MAX bytes", NULL);
        n = bundle_manifest_format(&m, text, sizeof(text));
        if (n < 0)
                fail("a parsed manifest does not format", NULL);
        memset(&again, 0x55, sizeof(again));
        if (bundle_manifest_parse("g.manifest", text, (size_t) n, &again, &err) < 0)
                fail("a formatted manifest does not parse", &err);
        if (!streq(again.name, m.name) || !streq(again.version, m.version) ||
            again.size != m.size || memcmp(again.sha256, m.sha256, sizeof(m.sha256)) != 0)
                fail("format and parse do not round-trip", NULL);
}

static void fuzz_signature(const uint8_t *data, size_t size, const bundle_keyring *keys) {
        bundle_signature sig;
        bundle_error err;
        const bundle_key *key = NULL;
        int r, r1, r2;

        r = bundle_signature_parse("f.minisig", data, size, &sig, &err);
        check_failure(r, &err, "f.minisig");
        if (r < 0)
                return;
        if (strnlen(sig.trusted_comment, sizeof(sig.trusted_comment)) > BUNDLE_COMMENT_MAX)
                fail("trusted comment too long", NULL);
        if (strchr(sig.trusted_comment, '\n'))
                fail("trusted comment with a newline", NULL);
        r1 = bundle_signature_verify("f.minisig", &sig, keys, vector_manifest_1,
                                     sizeof(vector_manifest_1) - 1, &key, &err);
        r2 = bundle_signature_verify("f.minisig", &sig, keys, vector_manifest_2,
                                     sizeof(vector_manifest_2) - 1, &key, &err);
        for (int i = 0; i < 2; i++) {
                int x = i ? r2 : r1;

                if (x != 0 && x != -ENOKEY && x != -EKEYREJECTED)
                        fail("verify: unexpected error code", &err);
        }
        if (r1 == 0 && r2 == 0)
                fail("one signature verified two different manifests", NULL);
        if ((r1 == 0 || r2 == 0) && (!key || key != &keys->keys[0]))
                fail("verified without naming the key", NULL);
        /* the same bytes with one bit of the message changed never verify */
        if (r1 == 0) {
                char changed[sizeof(vector_manifest_1)];

                memcpy(changed, vector_manifest_1, sizeof(changed));
                changed[size % (sizeof(changed) - 1)] ^= 0x04;
                if (bundle_signature_verify("f.minisig", &sig, keys, changed, sizeof(changed) - 1,
                                            NULL, &err) != -EKEYREJECTED)
                        fail("a changed manifest verified", NULL);
        }
}

static void fuzz_key(const uint8_t *data, size_t size) {
        bundle_key key;
        bundle_error err;
        int r;

        r = bundle_key_parse("f.pub", data, size, &key, &err);
        check_failure(r, &err, "f.pub");
        if (r == 0 && !streq(key.source, "f.pub"))
                fail("key without its source", NULL);
}

static int sign(int c) {
        return c < 0 ? -1 : c > 0;
}

/* Two versions on two lines: the order must be consistent where both are valid. */
static void fuzz_versions(const uint8_t *data, size_t size) {
        char a[IMAGE_VERSION_MAX + 1], b[IMAGE_VERSION_MAX + 1];
        const uint8_t *nl = memchr(data, '\n', size);
        size_t la, lb;

        if (!nl)
                return;
        la = (size_t) (nl - data);
        lb = size - la - 1;
        if (lb > 0 && data[size - 1] == '\n')
                lb--;
        if (la > IMAGE_VERSION_MAX || lb > IMAGE_VERSION_MAX)
                return;
        memcpy(a, data, la);
        a[la] = 0;
        memcpy(b, nl + 1, lb);
        b[lb] = 0;
        if (strlen(a) != la || strlen(b) != lb || !image_version_is_valid(a) ||
            !image_version_is_valid(b))
                return;
        if (image_version_compare(a, a) != 0 || image_version_compare(b, b) != 0)
                fail("a version differs from itself", NULL);
        if (sign(image_version_compare(a, b)) != -sign(image_version_compare(b, a)))
                fail("version order is not antisymmetric", NULL);
        if (streq(a, b) && image_version_compare(a, b) != 0)
                fail("equal strings compare unequal", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bundle_keyring keys;
        static bool ready;

        if (!ready) {
                bundle_key key;

                if (bundle_key_parse("vector.pub", vector_key, sizeof(vector_key) - 1, &key, NULL) <
                            0 ||
                    bundle_keyring_add(&keys, &key) < 0)
                        fail("the vector key does not load", NULL);
                ready = true;
        }
        fuzz_manifest(data, size);
        fuzz_signature(data, size, &keys);
        fuzz_key(data, size);
        fuzz_versions(data, size);
        return 0;
}
