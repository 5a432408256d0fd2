/* Unit tests for init/poller.c: shared timers fire in deadline order, one per loop iteration,
 * and can be re-armed, disarmed and freed from a callback; fd watches of one epoll set. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"
#include "tap.h"

#define N_TIMERS 200

typedef struct probe {
        shared_timer timer;
        int id;
        struct probe *other; /* disarmed, or freed, when this one fires */
        bool free_other;
        bool rearm_once;
} probe;

static int fired[4 * N_TIMERS], n_fired;

static void on_probe(shared_timer *t) {
        probe *p = container_of(t, probe, timer);

        fired[n_fired++] = p->id;
        if (p->other && p->free_other)
                shared_timer_free(&p->other->timer);
        else if (p->other)
                shared_timer_set(&p->other->timer, USEC_INFINITY);
        if (p->rearm_once) {
                p->rearm_once = false;
                shared_timer_set_relative(t, 1000);
        }
}

static uint64_t now_mono(sd_event *e) {
        uint64_t now = 0;

        (void) sd_event_now(e, CLOCK_MONOTONIC, &now);
        return now;
}

/* Runs the loop until n timers fired or a second passed. */
static void run_until(sd_event *e, int n) {
        uint64_t until = now_mono(e) + 1000000;

        while (n_fired < n && now_mono(e) < until)
                if (sd_event_run(e, 100000) < 0)
                        break;
}

static void test_order(sd_event *e) {
        static probe p[N_TIMERS];
        uint64_t base = now_mono(e);
        bool ordered = true;
        int n_armed = 0;

        n_fired = 0;
        /* Deadlines in a scrambled order, every third one disarmed again. */
        for (int i = 0; i < N_TIMERS; i++) {
                p[i] = (probe){ .id = i };
                if (shared_timer_make(e, &p[i].timer, on_probe) < 0) {
                        tap_ok(0, "shared_timer_make %d", i);
                        return;
                }
        }
        for (int i = 0; i < N_TIMERS; i++) {
                int k = (i * 37) % N_TIMERS;

                shared_timer_set(&p[k].timer, base + 1000 + (uint64_t) k * 100);
        }
        for (int i = 0; i < N_TIMERS; i += 3)
                shared_timer_set(&p[i].timer, USEC_INFINITY);
        for (int i = 0; i < N_TIMERS; i++)
                n_armed += shared_timer_armed(&p[i].timer);
        tap_inteq(n_armed, N_TIMERS - (N_TIMERS + 2) / 3, "the disarmed timers are not armed");

        run_until(e, n_armed);
        tap_inteq(n_fired, n_armed, "every armed timer fired once");
        for (int i = 1; i < n_fired; i++)
                if (fired[i] <= fired[i - 1])
                        ordered = false;
        tap_ok(ordered, "in deadline order");
        tap_ok(fired[0] == 1 && fired[1] == 2 && fired[2] == 4, "the disarmed ones skipped");
        tap_ok(!shared_timer_armed(&p[1].timer), "a timer that fired is disarmed");
        for (int i = 0; i < N_TIMERS; i++)
                shared_timer_free(&p[i].timer);
        tap_ok(!shared_timer_made(&p[0].timer), "freed");
}

static void test_callbacks(sd_event *e) {
        probe a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 }, d = { .id = 4 };
        uint64_t base = now_mono(e);

        n_fired = 0;
        if (shared_timer_make(e, &a.timer, on_probe) < 0 ||
            shared_timer_make(e, &b.timer, on_probe) < 0 ||
            shared_timer_make(e, &c.timer, on_probe) < 0 ||
            shared_timer_make(e, &d.timer, on_probe) < 0) {
                tap_ok(0, "shared_timer_make");
                return;
        }
        /* a disarms b, c frees d, a fires twice (re-armed from its own callback). */
        a.other = &b;
        a.rearm_once = true;
        c.other = &d;
        c.free_other = true;
        shared_timer_set(&a.timer, base + 100);
        shared_timer_set(&c.timer, base + 200);
        shared_timer_set(&b.timer, base + 5000);
        shared_timer_set(&d.timer, base + 6000);
        run_until(e, 3);
        /* Give b and d the chance to fire wrongly. */
        for (uint64_t until = now_mono(e) + 20000; now_mono(e) < until;)
                (void) sd_event_run(e, 10000);
        tap_inteq(n_fired, 3, "three firings");
        tap_ok(fired[0] == 1 && fired[1] == 3 && fired[2] == 1,
               "a, c, then a again (re-armed in its callback)");
        tap_ok(!shared_timer_made(&d.timer), "d was freed from c's callback");
        shared_timer_free(&a.timer);
        shared_timer_free(&b.timer);
        shared_timer_free(&c.timer);
        shared_timer_free(&d.timer);
}

typedef struct pipe_probe {
        fd_watch watch;
        int hits;
        struct pipe_probe *remove; /* removed from the first callback */
} pipe_probe;

static void on_pipe(fd_watch *w, uint32_t revents) {
        pipe_probe *p = container_of(w, pipe_probe, watch);
        char buf[16];

        p->hits++;
        if (revents & EPOLLIN)
                (void) read(w->fd, buf, sizeof(buf));
        if (p->remove) {
                fd_watch_remove(&p->remove->watch);
                p->remove = NULL;
        }
}

static void test_fds(sd_event *e) {
        pipe_probe a = {}, b = {};
        int pa[2], pb[2];

        if (pipe2(pa, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(pb, O_CLOEXEC | O_NONBLOCK) < 0) {
                tap_ok(0, "pipes");
                return;
        }
        tap_inteq(fd_watch_add(e, &a.watch, pa[0], EPOLLIN, on_pipe), 0, "watch a");
        tap_inteq(fd_watch_add(e, &b.watch, pb[0], EPOLLIN, on_pipe), 0, "watch b");
        tap_inteq(fd_watch_add(e, &b.watch, pb[0], EPOLLIN, on_pipe), -EINVAL,
                  "a watch cannot be added twice");
        (void) write(pa[1], "x", 1);
        for (int i = 0; i < 5 && a.hits == 0; i++)
                (void) sd_event_run(e, 100000);
        tap_ok(a.hits == 1 && b.hits == 0, "only the readable fd's callback ran");

        /* Both readable: whichever runs first removes the other, which then does not run. */
        a.remove = &b;
        b.remove = &a;
        (void) write(pa[1], "x", 1);
        (void) write(pb[1], "x", 1);
        for (int i = 0; i < 5 && a.hits + b.hits < 2; i++)
                (void) sd_event_run(e, 50000);
        tap_inteq(a.hits + b.hits, 2, "a watch removed during a batch is skipped in it");
        fd_watch_remove(&a.watch);
        fd_watch_remove(&b.watch);
        tap_ok(!a.watch.poller && !b.watch.poller && a.watch.fd == pa[0],
               "removed; the fd stays the owner's");
        close(pa[0]);
        close(pa[1]);
        close(pb[0]);
        close(pb[1]);
}

int main(void) {
        sd_event *e = NULL;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (sd_event_new(&e) < 0) {
                printf("1..0 # SKIP no event loop\n");
                return 77;
        }
        test_order(e);
        test_callbacks(e);
        test_fds(e);
        sd_event_unref(e);
        return tap_done();
}
