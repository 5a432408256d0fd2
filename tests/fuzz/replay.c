/* Runs a libFuzzer target over saved inputs without libFuzzer, so gcc builds test the corpus. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_FILE_MAX (4 * 1024 * 1024)

static int n_tests, n_failed;

static int read_file(const char *path, uint8_t **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        /* one byte more than allowed tells a too large file apart */
        buf = malloc(REPLAY_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, REPLAY_FILE_MAX + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > REPLAY_FILE_MAX)
                return -EFBIG;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static void replay_file(const char *path) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, &data, &size);
        if (r < 0) {
                printf("not ok %d - %s: %s\n", ++n_tests, path, strerror(-r));
                n_failed++;
                return;
        }
        /* a crash or sanitizer report ends the run here */
        LLVMFuzzerTestOneInput(data, size);
        printf("ok %d - %s (%zu bytes)\n", ++n_tests, path, size);
        fflush(stdout);
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every regular, non-hidden file in dir, sorted so that runs are reproducible. */
static void replay_dir(const char *dir) {
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;

        d = opendir(dir);
        if (!d) {
                printf("not ok %d - %s: %s\n", ++n_tests, dir, strerror(errno));
                n_failed++;
                return;
        }
        while ((de = readdir(d))) {
                char **c;

                if (de->d_name[0] == '.')
                        continue;
                c = realloc(names, (n + 1) * sizeof(char *));
                if (!c)
                        break;
                names = c;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0)
                        break;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
                        replay_file(names[i]);
                free(names[i]);
        }
        free(names);
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                        replay_dir(argv[i]);
                else
                        replay_file(argv[i]);
        }
        if (n_tests == 0) {
                printf("1..0 # SKIP no inputs\n");
                return 0;
        }
        printf("1..%d\n", n_tests);
        return n_failed > 0 ? 1 : 0;
}
