/* Many fds and timers served by one sd-event source each per event loop. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "value.h"

/*
 * An sd-event source costs ≈300 bytes of heap. With a thousand services, one io source per
 * log pipe and cgroup file and one time source per service timer would be most of PID 1's
 * memory. Here a watched fd is a registration in one epoll set, and a timer a slot in one
 * heap ordered by deadline. Both are embedded in their owner, which finds itself again
 * from them with container_of(). PID 1 has one loop, so one poller; tests may have more.
 */
typedef struct poller poller;

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) -offsetof(type, member)))

typedef struct fd_watch fd_watch;
typedef void (*fd_watch_fn)(fd_watch *w, uint32_t revents);

struct fd_watch {
        poller *poller; /* NULL: not watching */
        fd_watch_fn fn;
        int fd; /* the owner's to close: it may keep the fd here, watched or not */
};

/* Watches fd for events (EPOLLIN, EPOLLPRI...; level-triggered) on e's poller: 0 or -errno.
 * The fd stays the caller's. */
int fd_watch_add(sd_event *e, fd_watch *w, int fd, uint32_t events, fd_watch_fn fn);
/* Stops watching (nothing when not watching); a pending event of w is dropped. w->fd stays. */
void fd_watch_remove(fd_watch *w);

typedef struct shared_timer shared_timer;
typedef void (*shared_timer_fn)(shared_timer *t);

struct shared_timer {
        poller *poller; /* NULL: not made */
        shared_timer_fn fn;
        usec_t deadline; /* CLOCK_MONOTONIC, while armed */
        unsigned slot;   /* in the poller's heap; TIMER_SLOT_NONE: disarmed */
};

#define TIMER_SLOT_NONE UINT_MAX

/* Makes a disarmed timer with its heap slot reserved, so that arming it never allocates:
 * 0 or -errno. Timers fire one per loop iteration, with 1 µs accuracy. */
int shared_timer_make(sd_event *e, shared_timer *t, shared_timer_fn fn);
void shared_timer_free(shared_timer *t);
static inline bool shared_timer_made(const shared_timer *t) {
        return t->poller;
}
static inline bool shared_timer_armed(const shared_timer *t) {
        return t->poller && t->slot != TIMER_SLOT_NONE;
}
/* Fires at the CLOCK_MONOTONIC time deadline; USEC_INFINITY disarms. Nothing when not made. */
void shared_timer_set(shared_timer *t, usec_t deadline);
/* The same, usec from the loop's current time. */
void shared_timer_set_relative(shared_timer *t, usec_t usec);
