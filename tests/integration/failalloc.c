/* LD_PRELOAD test hook: makes malloc, calloc and realloc fail at random inside PID 1 (and
 * only there: services started from it keep working), during a time window.
 *   VIGIL_FAILALLOC_PERCENT=5       chance of each allocation failing
 *   VIGIL_FAILALLOC_WINDOW=1000-6000 milliseconds after the first allocation */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);

static long percent = -1, from_ms, to_ms;
static struct timespec start;
static unsigned long long seed = 88172645463325252ULL;

static long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (ts.tv_sec - start.tv_sec) * 1000 + (ts.tv_nsec - start.tv_nsec) / 1000000;
}

static bool should_fail(void) {
        if (percent < 0) {
                const char *p = getenv("VIGIL_FAILALLOC_PERCENT"), *w;

                clock_gettime(CLOCK_MONOTONIC, &start);
                percent = p ? atol(p) : 0;
                w = getenv("VIGIL_FAILALLOC_WINDOW");
                if (!w || sscanf(w, "%ld-%ld", &from_ms, &to_ms) != 2) {
                        from_ms = 0;
                        to_ms = 1L << 40;
                }
        }
        if (percent <= 0 || getpid() != 1)
                return false;
        long t = now_ms();
        if (t < from_ms || t > to_ms)
                return false;
        /* xorshift: no allocation, no locks */
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if ((long) (seed % 100) >= percent)
                return false;
        errno = ENOMEM;
        return true;
}

void *malloc(size_t size) {
        return should_fail() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
        return should_fail() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
        return should_fail() ? NULL : __libc_realloc(p, size);
}
