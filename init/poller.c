/* Many fds and timers served by one sd-event source each per event loop (see poller.h). */
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "poller.h"

#define POLL_BATCH 64

struct poller {
        poller *next;
        sd_event *event;
        size_t users; /* watches and timers made */

        sd_event_source *io_source; /* the epoll set; made with the first watch */
        int epoll_fd;
        /* The batch being dispatched, so that a watch removed meanwhile is skipped. */
        struct epoll_event *batch;
        int batch_n;

        sd_event_source *time_source; /* made with the first timer */
        shared_timer **heap;          /* armed timers, a binary min-heap by deadline */
        unsigned n_heap;
        unsigned n_timers;   /* timers made: the heap never holds more */
        unsigned heap_alloc; /* ≥ n_timers */
};

static poller *pollers;

static poller *poller_get(sd_event *e) {
        poller *p;

        for (p = pollers; p && p->event != e; p = p->next)
                ;
        if (p)
                return p;
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->epoll_fd = -1;
        p->event = sd_event_ref(e);
        p->next = pollers;
        pollers = p;
        return p;
}

/* Frees p once its last user is gone (a fresh p from poller_get() has none yet). */
static void poller_release(poller *p) {
        if (p->users > 0)
                return;
        for (poller **pp = &pollers; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        sd_event_source_disable_unref(p->io_source);
        sd_event_source_disable_unref(p->time_source);
        if (p->epoll_fd >= 0)
                close(p->epoll_fd);
        free(p->heap);
        sd_event_unref(p->event);
        free(p);
}

/* ---- fds ------------------------------------------------------------------------------------ */

static int on_pollable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        poller *p = userdata;
        struct epoll_event ev[POLL_BATCH];
        int n;

        n = epoll_wait(p->epoll_fd, ev, POLL_BATCH, 0);
        if (n <= 0)
                return 0;
        p->batch = ev;
        p->batch_n = n;
        p->users++; /* the callbacks may remove every watch */
        /* Level-triggered: whatever a watch leaves over keeps the set readable, so it comes
         * back after the other pending sources had their turn. */
        for (int i = 0; i < n; i++) {
                fd_watch *w = ev[i].data.ptr;

                if (w) /* NULL: removed by an earlier callback of this batch */
                        w->fn(w, ev[i].events);
        }
        p->batch = NULL;
        p->batch_n = 0;
        p->users--;
        poller_release(p);
        return 0;
}

static int poller_open_epoll(poller *p) {
        int r;

        if (p->io_source)
                return 0;
        p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epoll_fd < 0)
                return -errno;
        r = sd_event_add_io(p->event, &p->io_source, p->epoll_fd, EPOLLIN, on_pollable, p);
        if (r < 0) {
                p->epoll_fd = safe_close(p->epoll_fd);
                return r;
        }
        (void) sd_event_source_set_description(p->io_source, "shared-fds");
        return 0;
}

int fd_watch_add(sd_event *e, fd_watch *w, int fd, uint32_t events, fd_watch_fn fn) {
        struct epoll_event ev = { .events = events, .data.ptr = w };
        poller *p;
        int r;

        if (!e || !w || fd < 0 || !fn || w->poller)
                return -EINVAL;
        p = poller_get(e);
        if (!p)
                return -ENOMEM;
        r = poller_open_epoll(p);
        if (r >= 0 && epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                r = -errno;
        if (r < 0) {
                poller_release(p);
                return r;
        }
        p->users++;
        w->poller = p;
        w->fn = fn;
        w->fd = fd;
        return 0;
}

void fd_watch_remove(fd_watch *w) {
        poller *p = w ? w->poller : NULL;

        if (!p)
                return;
        (void) epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
        for (int i = 0; i < p->batch_n; i++)
                if (p->batch[i].data.ptr == w)
                        p->batch[i].data.ptr = NULL;
        w->poller = NULL;
        p->users--;
        poller_release(p);
}

/* ---- timers --------------------------------------------------------------------------------- */

static void heap_put(poller *p, unsigned i, shared_timer *t) {
        p->heap[i] = t;
        t->slot = i;
}

static void heap_up(poller *p, unsigned i) {
        shared_timer *t = p->heap[i];

        while (i > 0 && p->heap[(i - 1) / 2]->deadline > t->deadline) {
                heap_put(p, i, p->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_put(p, i, t);
}

static void heap_down(poller *p, unsigned i) {
        shared_timer *t = p->heap[i];

        for (;;) {
                unsigned c = 2 * i + 1;

                if (c >= p->n_heap)
                        break;
                if (c + 1 < p->n_heap && p->heap[c + 1]->deadline < p->heap[c]->deadline)
                        c++;
                if (p->heap[c]->deadline >= t->deadline)
                        break;
                heap_put(p, i, p->heap[c]);
                i = c;
        }
        heap_put(p, i, t);
}

static void heap_remove(poller *p, shared_timer *t) {
        unsigned i = t->slot;
        shared_timer *last = p->heap[--p->n_heap];

        t->slot = TIMER_SLOT_NONE;
        if (last == t)
                return;
        heap_put(p, i, last);
        heap_up(p, i);
        heap_down(p, last->slot);
}

/* Points the loop's time source at the earliest deadline. */
static void poller_schedule(poller *p) {
        int r;

        if (p->n_heap == 0) {
                (void) sd_event_source_set_enabled(p->time_source, SD_EVENT_OFF);
                return;
        }
        r = sd_event_source_set_time(p->time_source, p->heap[0]->deadline);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->time_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Cannot arm the service timers: %m");
}

/* One timer per iteration, like a time source of its own: the other sources that became
 * pending meanwhile (a child's exit...) get their turn in between. */
static int on_time(sd_event_source *src, uint64_t usec, void *userdata) {
        poller *p = userdata;
        shared_timer *t;
        uint64_t now;

        if (p->n_heap == 0)
                return 0;
        if (sd_event_now(p->event, CLOCK_MONOTONIC, &now) < 0)
                now = usec;
        t = p->heap[0];
        if (t->deadline <= now) {
                heap_remove(p, t);
                p->users++;
                t->fn(t); /* may arm, disarm or free any timer, t too */
                p->users--;
        }
        if (p->users == 0)
                poller_release(p);
        else
                poller_schedule(p);
        return 0;
}

int shared_timer_make(sd_event *e, shared_timer *t, shared_timer_fn fn) {
        poller *p;
        int r;

        if (!e || !t || !fn || t->poller)
                return -EINVAL;
        p = poller_get(e);
        if (!p)
                return -ENOMEM;
        if (!p->time_source) {
                r = sd_event_add_time(e, &p->time_source, CLOCK_MONOTONIC, 0, 1, on_time, p);
                if (r >= 0)
                        r = sd_event_source_set_enabled(p->time_source, SD_EVENT_OFF);
                if (r < 0) {
                        p->time_source = sd_event_source_disable_unref(p->time_source);
                        poller_release(p);
                        return r;
                }
                (void) sd_event_source_set_description(p->time_source, "shared-timers");
        }
        if (p->n_timers >= UINT_MAX / 2) {
                poller_release(p);
                return -ENOMEM;
        }
        /* Room for every timer made, so that arming never allocates. */
        if (p->n_timers == p->heap_alloc) {
                unsigned a = p->heap_alloc < 16 ? 16 : p->heap_alloc + p->heap_alloc / 2;
                shared_timer **h = reallocarray(p->heap, a, sizeof(*h));

                if (!h) {
                        poller_release(p);
                        return -ENOMEM;
                }
                p->heap = h;
                p->heap_alloc = a;
        }
        p->n_timers++;
        p->users++;
        t->poller = p;
        t->fn = fn;
        t->slot = TIMER_SLOT_NONE;
        return 0;
}

void shared_timer_free(shared_timer *t) {
        poller *p = t ? t->poller : NULL;

        if (!p)
                return;
        shared_timer_set(t, USEC_INFINITY);
        p->n_timers--;
        p->users--;
        t->poller = NULL;
        poller_release(p);
}

void shared_timer_set(shared_timer *t, usec_t deadline) {
        poller *p = t->poller;
        bool first;

        if (!p)
                return;
        first = t->slot == 0;
        if (t->slot != TIMER_SLOT_NONE)
                heap_remove(p, t);
        if (deadline != USEC_INFINITY) {
                t->deadline = deadline;
                p->heap[p->n_heap] = t;
                t->slot = p->n_heap++;
                heap_up(p, t->slot);
        }
        if (first || t->slot == 0)
                poller_schedule(p);
}

void shared_timer_set_relative(shared_timer *t, usec_t usec) {
        uint64_t now;

        if (!t->poller)
                return;
        if (usec == USEC_INFINITY) {
                shared_timer_set(t, USEC_INFINITY);
                return;
        }
        /* The loop's time, as sd_event_source_set_time_relative() takes it. */
        if (sd_event_now(t->poller->event, CLOCK_MONOTONIC, &now) < 0) {
                struct timespec ts;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        }
        shared_timer_set(t, now >= USEC_INFINITY - 1 - usec ? USEC_INFINITY - 1 : now + usec);
}
