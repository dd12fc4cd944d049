/* The event loop: epoll(7) on Linux, poll(2) elsewhere (or when asked),
 * plus a min-heap of one-shot timers.
 *
 * A round is: scan the few watches that must be looked at every round,
 * move the watches due to run without waiting into this round's run
 * queue, wait on descriptors (not at all when that queue is not empty),
 * read the clock, run due timers, run the queue, free removed watches.
 * Only the backend_* functions know poll(2) and epoll(7).
 *
 * Per watch the state after its callback is one of (loop.h):
 *  - waiting on its descriptor for `wait` (the stack's NEED wants, or the
 *    interest when the stack recorded none);
 *  - due next round without waiting: `woken` (a wake, the first run) or
 *    `ready` (strata_poll reported the interest ready: bytes buffered in
 *    a layer). `ready` is recomputed with the interest; a wake stays.
 * A due watch sits in the pending queue; a round takes that queue whole,
 * and what callbacks make due goes to the next round's. The queue is a
 * hint: a watch in it that is neither woken nor ready any more (its
 * interest changed) is dropped when the round takes it.
 *
 * What makes a round cost O(what happens) rather than O(watches):
 *  - epoll keeps the registrations; a watch's descriptor mask is changed
 *    (EPOLL_CTL_MOD) only when what it waits for changes, so an idle
 *    watch costs no system call and no work per round;
 *  - the scan list holds only the watches that must be asked every round:
 *    a stack with no descriptor and a non-zero interest (strata_poll, no
 *    system call), and a descriptor epoll refused (below);
 *  - removal unlinks in O(1); timers are a heap with O(log n) cancel.
 * The poll backend rebuilds its pollfd array from every watch each round:
 * O(watches), as poll(2) itself is.
 *
 * epoll keys registrations by descriptor, so the watches on one
 * descriptor share one registration (the union of their waits) through a
 * table indexed by descriptor; an event goes to each of them that waits
 * for it. epoll refuses descriptors poll(2) takes: a regular file or
 * /dev/null (EPERM) is then reported readable and writable every round,
 * as poll(2) reports it; a descriptor it cannot add otherwise (closed:
 * EBADF) is reported STRATA_POLL_ERR every round, as poll's POLLNVAL.
 */
#ifdef __linux__
#define STRATA_LOOP_HAVE_EPOLL 1
#endif

#include "loop.h"
#include "blocking.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef STRATA_LOOP_HAVE_EPOLL
#include <sys/epoll.h>
#endif

/* The lists a watch is linked into, each doubly linked for O(1) removal:
 * every live watch in the order of adding; the pending or the run queue;
 * the scan list. */
enum { L_ALL, L_QUEUE, L_SCAN, N_LINKS };
enum { Q_NONE, Q_PENDING, Q_RUN };

typedef struct wlink {
    strata_watch *prev, *next;
} wlink;

typedef struct wlist {
    strata_watch *head, *tail;
} wlist;

struct strata_watch {
    strata_loop *loop;
    strata_stream *s;       /* NULL for a bare descriptor */
    int bare_fd;            /* the bare descriptor, or -1 for a stack */
    int fd;                 /* the descriptor it waits on (read when added
                               and after each callback), or -1 */
    unsigned interest;      /* STRATA_POLL_IN / _OUT */
    strata_watch_cb cb;
    void *ud;
    unsigned wait;          /* STRATA_POLL_IN / _OUT to wait for */
    unsigned ready_events;  /* what strata_poll found, for the next run */
    unsigned fd_events;     /* what the descriptor reported this round */
    unsigned forced;        /* epoll refused the descriptor: these events
                               are reported every round instead */
    unsigned char woken;    /* a wake (or the first run) is pending */
    unsigned char ready;    /* strata_poll found the interest ready */
    unsigned char queue;    /* Q_*: which queue it is in */
    unsigned char dead;
    unsigned char on[N_LINKS];
    wlink link[N_LINKS];
    strata_watch *fd_next;  /* epoll: the next watch on the same fd */
};

typedef struct timer {
    uint64_t due;
    uint64_t seq;           /* order of adding: equal dues run in order */
    strata_timer_cb cb;
    void *ud;
    size_t slot;            /* in the slot table, which knows its place */
} timer;

/* A timer's id names a slot (low half of the bits) and the slot's
 * generation (high half), so cancel finds it in O(1) and an id whose timer
 * is gone never cancels the slot's next timer (until the generation wraps:
 * 2^32 reuses of one slot with a 64-bit long, 2^16 with a 32-bit one). */
#define SLOT_BITS (sizeof(unsigned long) * CHAR_BIT / 2)
#define SLOT_MASK ((1ul << SLOT_BITS) - 1)

typedef struct tslot {
    size_t pos;             /* in the heap; the next free slot when free */
    unsigned long gen;
    int used;
} tslot;

#ifdef STRATA_LOOP_HAVE_EPOLL
/* What epoll knows of one descriptor: the union of the waits of its
 * watches, 0 when it is not registered. */
typedef struct fdent {
    strata_watch *head;
    unsigned reg;
} fdent;

#define EV_BATCH 256        /* events taken per round; the rest next round */
#endif

struct strata_loop {
    const strata_allocator *alloc;
    int backend;            /* STRATA_LOOP_POLL or STRATA_LOOP_EPOLL */
    wlist all, pending, run, scan;
    strata_watch *graveyard; /* removed inside a round: freed after it */
    size_t live;            /* watches not removed */
    timer *heap;
    size_t n_timers, cap_timers;
    tslot *slots;
    size_t free_slot;       /* head of the free slots, or cap_timers */
    uint64_t next_seq;
    uint64_t now;
    int in_round;           /* callbacks may be running: defer freeing */
    int stopped;
    /* poll: one pollfd per waiting watch, rebuilt each round; capacity
     * for every live watch so a round never allocates */
    struct pollfd *pfds;
    strata_watch **pw;      /* the watch of each pollfd */
    size_t n_pfds, cap_pfds;
#ifdef STRATA_LOOP_HAVE_EPOLL
    int epfd;
    fdent *fds;
    size_t cap_fds;
    size_t n_reg;           /* descriptors registered */
    struct epoll_event evs[EV_BATCH];
#endif
};

/* ---- intrusive lists ---------------------------------------------------- */

static void list_push(wlist *l, strata_watch *w, int k)
{
    w->link[k].prev = l->tail;
    w->link[k].next = NULL;
    if (l->tail != NULL)
        l->tail->link[k].next = w;
    else
        l->head = w;
    l->tail = w;
    w->on[k] = 1;
}

static void list_unlink(wlist *l, strata_watch *w, int k)
{
    if (!w->on[k])
        return;
    if (w->link[k].prev != NULL)
        w->link[k].prev->link[k].next = w->link[k].next;
    else
        l->head = w->link[k].next;
    if (w->link[k].next != NULL)
        w->link[k].next->link[k].prev = w->link[k].prev;
    else
        l->tail = w->link[k].prev;
    w->on[k] = 0;
}

static void queue_leave(strata_loop *loop, strata_watch *w)
{
    if (w->queue == Q_PENDING)
        list_unlink(&loop->pending, w, L_QUEUE);
    else if (w->queue == Q_RUN)
        list_unlink(&loop->run, w, L_QUEUE);
    w->queue = Q_NONE;
}

/* Due next round; a watch already queued (this round's run queue
 * included: its run takes the wake) stays where it is. */
static void make_due(strata_loop *loop, strata_watch *w)
{
    if (w->queue != Q_NONE)
        return;
    list_push(&loop->pending, w, L_QUEUE);
    w->queue = Q_PENDING;
}

/* ---- backend: poll(2) --------------------------------------------------- */

static unsigned poll_events_of(short re)
{
    unsigned ev = 0;

    if (re & POLLIN)
        ev |= STRATA_POLL_IN;
    if (re & POLLOUT)
        ev |= STRATA_POLL_OUT;
    if (re & POLLHUP)
        ev |= STRATA_POLL_HUP;
    if (re & (POLLERR | POLLNVAL))
        ev |= STRATA_POLL_ERR;
    return ev;
}

static int poll_reserve(strata_loop *loop, size_t n)
{
    struct pollfd *p;
    strata_watch **pw;
    size_t cap;

    if (n <= loop->cap_pfds)
        return 0;
    cap = loop->cap_pfds ? loop->cap_pfds * 2 : 8;
    while (cap < n)
        cap *= 2;
    p = strata_realloc(loop->alloc, loop->pfds, cap * sizeof *p);
    if (p == NULL)
        return STRATA_ERR_NOMEM;
    loop->pfds = p;
    pw = strata_realloc(loop->alloc, loop->pw, cap * sizeof *pw);
    if (pw == NULL)
        return STRATA_ERR_NOMEM;
    loop->pw = pw;
    loop->cap_pfds = cap;
    return 0;
}

/* One pollfd per watch that waits on a descriptor and is not already due
 * to run this round. */
static void poll_collect(strata_loop *loop)
{
    strata_watch *w;

    loop->n_pfds = 0;
    for (w = loop->all.head; w != NULL; w = w->link[L_ALL].next) {
        struct pollfd *p;

        if (w->fd < 0 || w->wait == 0 || w->queue == Q_RUN)
            continue;
        p = &loop->pfds[loop->n_pfds];
        p->fd = w->fd;
        p->events = (short)(((w->wait & STRATA_POLL_IN) ? POLLIN : 0) |
                            ((w->wait & STRATA_POLL_OUT) ? POLLOUT : 0));
        p->revents = 0;
        loop->pw[loop->n_pfds++] = w;
    }
}

/* Wait, then queue each watch whose descriptor reported something. A
 * signal ends the wait early with nothing ready; the next round waits
 * again. */
static int poll_wait(strata_loop *loop, int timeout_ms)
{
    int r = poll(loop->pfds, (nfds_t)loop->n_pfds, timeout_ms);
    size_t i;

    if (r < 0)
        return errno == EINTR ? 0 : STRATA_ERR_IO;
    for (i = 0; i < loop->n_pfds && r > 0; i++) {
        strata_watch *w = loop->pw[i];

        if (loop->pfds[i].revents == 0)
            continue;
        r--;
        w->fd_events = poll_events_of(loop->pfds[i].revents);
        list_push(&loop->run, w, L_QUEUE);
        w->queue = Q_RUN;
    }
    return 0;
}

/* ---- backend: epoll(7) -------------------------------------------------- */

static void place(strata_watch *w);

#ifdef STRATA_LOOP_HAVE_EPOLL
static int fds_reserve(strata_loop *loop, int fd)
{
    size_t cap = loop->cap_fds ? loop->cap_fds : 64;
    fdent *f;

    if ((size_t)fd < loop->cap_fds)
        return 0;
    while (cap <= (size_t)fd)
        cap *= 2;
    f = strata_realloc(loop->alloc, loop->fds, cap * sizeof *f);
    if (f == NULL)
        return STRATA_ERR_NOMEM;
    memset(f + loop->cap_fds, 0, (cap - loop->cap_fds) * sizeof *f);
    loop->fds = f;
    loop->cap_fds = cap;
    return 0;
}

static int ep_ctl(strata_loop *loop, int op, int fd, unsigned mask)
{
    struct epoll_event ev;
    int r;

    memset(&ev, 0, sizeof ev);
    ev.events = ((mask & STRATA_POLL_IN) ? EPOLLIN : 0u) |
                ((mask & STRATA_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    r = epoll_ctl(loop->epfd, op, fd, &ev);
    /* The table and the kernel disagree when a descriptor was closed
     * under its watches and its number came back: go by the kernel. */
    if (r < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
        r = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (r < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        r = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    return r;
}

static void ep_unregister(strata_loop *loop, fdent *e, int fd)
{
    if (e->reg == 0)
        return;
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL); /* EBADF: gone */
    e->reg = 0;
    loop->n_reg--;
}

/* Bring fd's registration in line with the waits of its watches: a system
 * call only when the union changed (or `force`: a watch joined, and the
 * descriptor may be a new file under an old number). A descriptor epoll
 * refuses makes its waiting watches forced (see the top of the file). */
static void ep_sync(strata_loop *loop, int fd, int force)
{
    fdent *e = &loop->fds[fd];
    unsigned want = 0;
    strata_watch *w;
    int err;

    for (w = e->head; w != NULL; w = w->fd_next)
        if (!w->forced)
            want |= w->wait;
    if (want == e->reg && !force)
        return;
    if (want == 0) {
        ep_unregister(loop, e, fd);
        return;
    }
    if (ep_ctl(loop, e->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, want) == 0) {
        if (e->reg == 0)
            loop->n_reg++;
        e->reg = want;
        return;
    }
    err = errno;
    ep_unregister(loop, e, fd);
    for (w = e->head; w != NULL; w = w->fd_next) {
        if (w->forced || w->wait == 0)
            continue;
        w->forced = err == EPERM ? STRATA_POLL_IN | STRATA_POLL_OUT
                                 : STRATA_POLL_ERR;
        place(w);
    }
}

static void ep_detach(strata_watch *w)
{
    strata_loop *loop = w->loop;
    strata_watch **pp;

    if (w->fd < 0)
        return;
    pp = &loop->fds[w->fd].head;
    while (*pp != w)
        pp = &(*pp)->fd_next;
    *pp = w->fd_next;
    w->fd_next = NULL;
    ep_sync(loop, w->fd, 0);
    w->forced = 0;
}

/* File w under fd. 0, or STRATA_ERR_NOMEM when the table cannot grow. */
static int ep_attach(strata_watch *w, int fd)
{
    strata_loop *loop = w->loop;

    if (fd < 0)
        return 0;
    if (fds_reserve(loop, fd) != 0)
        return STRATA_ERR_NOMEM;
    w->fd_next = loop->fds[fd].head;
    loop->fds[fd].head = w;
    return 0;
}

/* Queue each watch on a descriptor that reported something, with what it
 * waits for of it (and HUP / ERR). A watch already due this round runs
 * anyway and hears only what strata_poll found, as with poll(2). */
static void ep_dispatch_event(strata_loop *loop, const struct epoll_event *e)
{
    unsigned ev = 0;
    strata_watch *w;
    int fd = e->data.fd;

    if (fd < 0 || (size_t)fd >= loop->cap_fds)
        return;
    if (e->events & EPOLLIN)
        ev |= STRATA_POLL_IN;
    if (e->events & EPOLLOUT)
        ev |= STRATA_POLL_OUT;
    if (e->events & EPOLLHUP)
        ev |= STRATA_POLL_HUP;
    if (e->events & EPOLLERR)
        ev |= STRATA_POLL_ERR;
    for (w = loop->fds[fd].head; w != NULL; w = w->fd_next) {
        unsigned mine = ev & (w->wait | STRATA_POLL_HUP | STRATA_POLL_ERR);

        if (w->wait == 0 || w->forced || mine == 0 || w->queue == Q_RUN)
            continue;
        w->fd_events = mine;
        list_push(&loop->run, w, L_QUEUE);
        w->queue = Q_RUN;
    }
}

static int ep_wait(strata_loop *loop, int timeout_ms)
{
    int n = epoll_wait(loop->epfd, loop->evs, EV_BATCH, timeout_ms), i;

    if (n < 0)
        return errno == EINTR ? 0 : STRATA_ERR_IO;
    for (i = 0; i < n; i++)
        ep_dispatch_event(loop, &loop->evs[i]);
    return 0;
}
#endif

/* ---- backend: the common face ------------------------------------------- */

static int backend_open(strata_loop *loop, int backend)
{
#ifdef STRATA_LOOP_HAVE_EPOLL
    loop->epfd = -1;
    if (backend == STRATA_LOOP_ANY) {
        const char *force = getenv("STRATA_LOOP_POLL");
        backend = force != NULL && force[0] != '\0' && strcmp(force, "0")
                      ? STRATA_LOOP_POLL : STRATA_LOOP_EPOLL;
    }
    if (backend == STRATA_LOOP_EPOLL) {
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop->epfd < 0)
            return STRATA_ERR_IO;
    }
#else
    if (backend == STRATA_LOOP_ANY)
        backend = STRATA_LOOP_POLL;
#endif
    if (backend != STRATA_LOOP_POLL && backend != STRATA_LOOP_EPOLL)
        return STRATA_ERR_ARG;
#ifndef STRATA_LOOP_HAVE_EPOLL
    if (backend == STRATA_LOOP_EPOLL)
        return STRATA_ERR_ARG;
#endif
    loop->backend = backend;
    return 0;
}

static void backend_close(strata_loop *loop)
{
    strata_dealloc(loop->alloc, loop->pfds);
    strata_dealloc(loop->alloc, loop->pw);
#ifdef STRATA_LOOP_HAVE_EPOLL
    if (loop->epfd >= 0)
        close(loop->epfd);
    strata_dealloc(loop->alloc, loop->fds);
#endif
}

/* Room for one more watch (poll: a pollfd for each). */
static int backend_reserve(strata_loop *loop)
{
    if (loop->backend == STRATA_LOOP_POLL)
        return poll_reserve(loop, loop->live + 1);
    return 0;
}

/* w now waits on fd (-1: none) for w->wait. 0 or STRATA_ERR_NOMEM. */
static int backend_attach(strata_watch *w, int fd)
{
    int r = 0;

#ifdef STRATA_LOOP_HAVE_EPOLL
    if (w->loop->backend == STRATA_LOOP_EPOLL)
        r = ep_attach(w, fd);
#endif
    if (r == 0)
        w->fd = fd;
    return r;
}

static void backend_detach(strata_watch *w)
{
#ifdef STRATA_LOOP_HAVE_EPOLL
    if (w->loop->backend == STRATA_LOOP_EPOLL)
        ep_detach(w);
#endif
    w->fd = -1;
}

/* w->wait changed, or w just joined its descriptor (`joined`). */
static void backend_update(strata_watch *w, int joined)
{
#ifdef STRATA_LOOP_HAVE_EPOLL
    if (w->loop->backend == STRATA_LOOP_EPOLL && w->fd >= 0)
        ep_sync(w->loop, w->fd, joined);
#else
    (void)w;
    (void)joined;
#endif
}

/* Ready the wait; returns whether some watch waits on a descriptor (so a
 * round can block on it). */
static int backend_prepare(strata_loop *loop)
{
#ifdef STRATA_LOOP_HAVE_EPOLL
    if (loop->backend == STRATA_LOOP_EPOLL)
        return loop->n_reg > 0;
#endif
    poll_collect(loop);
    return loop->n_pfds > 0;
}

static int backend_wait(strata_loop *loop, int timeout_ms)
{
#ifdef STRATA_LOOP_HAVE_EPOLL
    if (loop->backend == STRATA_LOOP_EPOLL)
        return ep_wait(loop, timeout_ms);
#endif
    return poll_wait(loop, timeout_ms);
}

/* ---- timers: a binary min-heap on (due, seq) ---------------------------- */

static int timer_before(const timer *a, const timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(strata_loop *loop, size_t i, const timer *t)
{
    loop->heap[i] = *t;
    loop->slots[t->slot].pos = i;
}

static void sift_up(strata_loop *loop, size_t i)
{
    timer t = loop->heap[i];

    while (i > 0 && timer_before(&t, &loop->heap[(i - 1) / 2])) {
        heap_set(loop, i, &loop->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(loop, i, &t);
}

static void sift_down(strata_loop *loop, size_t i)
{
    timer t = loop->heap[i];
    size_t n = loop->n_timers;

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;

        if (l >= n)
            break;
        if (r < n && timer_before(&loop->heap[r], &loop->heap[l]))
            m = r;
        if (!timer_before(&loop->heap[m], &t))
            break;
        heap_set(loop, i, &loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, &t);
}

static unsigned long slot_id(const strata_loop *loop, size_t slot)
{
    return (loop->slots[slot].gen << SLOT_BITS) | (unsigned long)(slot + 1);
}

static void slot_free(strata_loop *loop, size_t slot)
{
    tslot *s = &loop->slots[slot];

    s->used = 0;
    s->gen = (s->gen + 1) & (ULONG_MAX >> SLOT_BITS);
    s->pos = loop->free_slot;
    loop->free_slot = slot;
}

/* Take the timer at heap position i out (its slot is freed). */
static void heap_remove(strata_loop *loop, size_t i)
{
    slot_free(loop, loop->heap[i].slot);
    loop->n_timers--;
    if (i == loop->n_timers)
        return;
    heap_set(loop, i, &loop->heap[loop->n_timers]);
    sift_down(loop, i);
    sift_up(loop, i);
}

/* Room for one more timer: the heap and the slot table grow together. */
static int heap_reserve(strata_loop *loop)
{
    size_t cap, i;
    timer *h;
    tslot *s;

    if (loop->n_timers < loop->cap_timers)
        return 0;
    cap = loop->cap_timers ? loop->cap_timers * 2 : 8;
    if (cap > SLOT_MASK)
        return STRATA_ERR_NOMEM; /* ids would not name the slots */
    h = strata_realloc(loop->alloc, loop->heap, cap * sizeof *h);
    if (h == NULL)
        return STRATA_ERR_NOMEM;
    loop->heap = h;
    s = strata_realloc(loop->alloc, loop->slots, cap * sizeof *s);
    if (s == NULL)
        return STRATA_ERR_NOMEM;
    loop->slots = s;
    /* all old slots are in use (n_timers == cap_timers): the new ones
     * make the free list */
    for (i = loop->cap_timers; i < cap; i++) {
        s[i].used = 0;
        s[i].gen = 0;
        s[i].pos = i + 1;
    }
    loop->free_slot = loop->cap_timers;
    loop->cap_timers = cap;
    return 0;
}

unsigned long strata_loop_timer(strata_loop *loop, uint64_t delay_ms,
                                strata_timer_cb cb, void *ud)
{
    timer t;

    if (loop == NULL || cb == NULL || heap_reserve(loop) != 0)
        return 0;
    if (!loop->in_round)
        loop->now = strata_now_ms(); /* callbacks keep the round's time */
    t.due = delay_ms > UINT64_MAX - loop->now ? UINT64_MAX
                                              : loop->now + delay_ms;
    t.seq = loop->next_seq++;
    t.cb = cb;
    t.ud = ud;
    t.slot = loop->free_slot;
    loop->free_slot = loop->slots[t.slot].pos;
    loop->slots[t.slot].used = 1;
    loop->heap[loop->n_timers] = t;
    sift_up(loop, loop->n_timers++);
    return slot_id(loop, t.slot);
}

int strata_loop_cancel(strata_loop *loop, unsigned long id)
{
    size_t slot;

    if (loop == NULL || (id & SLOT_MASK) == 0)
        return STRATA_ERR_ARG;
    slot = (size_t)(id & SLOT_MASK) - 1;
    if (slot >= loop->cap_timers || !loop->slots[slot].used ||
        slot_id(loop, slot) != id)
        return STRATA_ERR_ARG;
    heap_remove(loop, loop->slots[slot].pos);
    return 0;
}

/* Wait timeout until the nearest timer: -1 with none, 0 when one is due. */
static int timer_timeout(const strata_loop *loop)
{
    uint64_t due;

    if (loop->n_timers == 0)
        return -1;
    due = loop->heap[0].due;
    if (due <= loop->now)
        return 0;
    return due - loop->now > (uint64_t)INT_MAX ? INT_MAX
                                                : (int)(due - loop->now);
}

/* Run the timers due now. Only those that existed when the round began:
 * a callback re-arming itself with delay 0 runs next round, not forever
 * in this one. Sequence numbers grow, and equal dues order by them, so
 * once the top is a new timer every older due one has run. */
static int run_timers(strata_loop *loop)
{
    uint64_t limit = loop->next_seq;
    int count = 0;

    while (loop->n_timers > 0 && loop->heap[0].due <= loop->now &&
           loop->heap[0].seq < limit) {
        timer t = loop->heap[0];

        heap_remove(loop, 0);
        t.cb(loop, t.ud);
        count++;
    }
    return count;
}

/* ---- the loop and its watches ------------------------------------------- */

strata_loop *strata_loop_new_backend(const strata_allocator *alloc,
                                     int backend)
{
    strata_loop *loop = strata_alloc(alloc, sizeof *loop);

    if (loop == NULL)
        return NULL;
    memset(loop, 0, sizeof *loop);
    loop->alloc = alloc;
    loop->now = strata_now_ms();
    if (backend_open(loop, backend) != 0) {
        backend_close(loop);
        strata_dealloc(alloc, loop);
        return NULL;
    }
    return loop;
}

strata_loop *strata_loop_new(const strata_allocator *alloc)
{
    return strata_loop_new_backend(alloc, STRATA_LOOP_ANY);
}

const char *strata_loop_backend(const strata_loop *loop)
{
    if (loop == NULL)
        return NULL;
    return loop->backend == STRATA_LOOP_EPOLL ? "epoll" : "poll";
}

static void free_graveyard(strata_loop *loop)
{
    while (loop->graveyard != NULL) {
        strata_watch *w = loop->graveyard;

        loop->graveyard = w->link[L_ALL].next;
        strata_dealloc(loop->alloc, w);
    }
}

void strata_loop_free(strata_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->in_round)
        return; /* from inside a callback: not allowed (loop.h) */
    while (loop->all.head != NULL) {
        strata_watch *w = loop->all.head;

        list_unlink(&loop->all, w, L_ALL);
        strata_dealloc(loop->alloc, w);
    }
    free_graveyard(loop);
    strata_dealloc(loop->alloc, loop->heap);
    strata_dealloc(loop->alloc, loop->slots);
    backend_close(loop);
    strata_dealloc(loop->alloc, loop);
}

/* Keep w on the scan list exactly while it must be looked at every round:
 * a stack with no descriptor and an interest, or a forced descriptor. */
static void place(strata_watch *w)
{
    strata_loop *loop = w->loop;
    int scan = (w->s != NULL && w->fd < 0 && w->interest != 0) ||
               (w->forced != 0 && w->wait != 0);

    if (scan && !w->on[L_SCAN])
        list_push(&loop->scan, w, L_SCAN);
    else if (!scan)
        list_unlink(&loop->scan, w, L_SCAN);
}

static strata_watch *add_watch(strata_loop *loop, strata_stream *s, int fd,
                               unsigned interest, strata_watch_cb cb,
                               void *ud)
{
    strata_watch *w;

    if (loop == NULL || cb == NULL || backend_reserve(loop) != 0)
        return NULL;
    w = strata_alloc(loop->alloc, sizeof *w);
    if (w == NULL)
        return NULL;
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->s = s;
    w->bare_fd = fd;
    w->fd = -1;
    w->interest = interest & (STRATA_POLL_IN | STRATA_POLL_OUT);
    w->cb = cb;
    w->ud = ud;
    w->wait = w->interest;
    if (backend_attach(w, s != NULL ? strata_fd(s) : fd) != 0) {
        strata_dealloc(loop->alloc, w);
        return NULL;
    }
    list_push(&loop->all, w, L_ALL);
    loop->live++;
    w->woken = 1; /* the first run starts optimistic I/O */
    make_due(loop, w);
    backend_update(w, 1);
    place(w);
    return w;
}

strata_watch *strata_loop_watch(strata_loop *loop, strata_stream *s,
                                unsigned interest, strata_watch_cb cb,
                                void *ud)
{
    if (s == NULL)
        return NULL;
    return add_watch(loop, s, -1, interest, cb, ud);
}

strata_watch *strata_loop_watch_fd(strata_loop *loop, int fd,
                                   unsigned interest, strata_watch_cb cb,
                                   void *ud)
{
    if (fd < 0)
        return NULL;
    return add_watch(loop, NULL, fd, interest, cb, ud);
}

int strata_watch_fd(const strata_watch *w)
{
    if (w == NULL)
        return -1;
    return w->s != NULL ? strata_fd(w->s) : w->bare_fd;
}

strata_stream *strata_watch_stream(const strata_watch *w)
{
    return w != NULL ? w->s : NULL;
}

void *strata_watch_ud(const strata_watch *w)
{
    return w != NULL ? w->ud : NULL;
}

/* Ask the layers whether the interest is ready now (no data moves). */
static void poll_ready(strata_watch *w)
{
    unsigned r = strata_poll(w->s, w->interest);

    w->ready = (r & w->interest) != 0;
    w->ready_events = w->ready ? r & (w->interest | STRATA_POLL_HUP |
                                      STRATA_POLL_ERR)
                               : 0;
}

/* A stack's descriptor may change between callbacks (rarely: a layer
 * that replaced its transport); follow it. */
static void follow_fd(strata_watch *w)
{
    int fd;

    if (w->s == NULL || (fd = strata_fd(w->s)) == w->fd)
        return;
    backend_detach(w);
    if (backend_attach(w, fd) != 0) {
        /* no room to file it: report it failed until it is removed */
        w->forced = STRATA_POLL_ERR;
        return;
    }
    backend_update(w, 1);
}

/* Decide what w waits for next, after its callback (or a new interest):
 * the stack's NEED wants first, then data a layer holds, then the
 * interest on the descriptor. */
static void rearm(strata_watch *w)
{
    unsigned wants;

    follow_fd(w);
    w->wait = w->interest;
    w->ready = 0;
    w->ready_events = 0;
    if (w->s != NULL) {
        wants = strata_wants(w->s);
        if (wants != 0 && w->fd >= 0)
            w->wait = ((wants & STRATA_WANT_READ) ? STRATA_POLL_IN : 0) |
                      ((wants & STRATA_WANT_WRITE) ? STRATA_POLL_OUT : 0);
        else if (w->interest != 0)
            poll_ready(w);
    }
    backend_update(w, 0);
    place(w);
    if (w->ready)
        make_due(w->loop, w);
}

void strata_watch_set_interest(strata_watch *w, unsigned interest)
{
    if (w == NULL || w->dead)
        return;
    w->interest = interest & (STRATA_POLL_IN | STRATA_POLL_OUT);
    rearm(w);
}

void strata_watch_wake(strata_watch *w)
{
    if (w == NULL || w->dead)
        return;
    w->woken = 1;
    make_due(w->loop, w);
}

void strata_watch_remove(strata_watch *w)
{
    strata_loop *loop;

    if (w == NULL || w->dead)
        return;
    loop = w->loop;
    w->dead = 1;
    loop->live--;
    queue_leave(loop, w);
    list_unlink(&loop->scan, w, L_SCAN);
    list_unlink(&loop->all, w, L_ALL);
    backend_detach(w); /* uses only the remembered fd: s may be freed */
    if (loop->in_round) {
        /* a round may still hold the pointer (a poll slot): free after */
        w->link[L_ALL].next = loop->graveyard;
        loop->graveyard = w;
    } else {
        strata_dealloc(loop->alloc, w);
    }
}

/* ---- rounds ------------------------------------------------------------- */

/* The watches looked at every round: fd-less stacks asked with
 * strata_poll (no system call; so one callback can feed another stack's
 * pipe end without a wake), forced descriptors reported ready. */
static void scan(strata_loop *loop)
{
    strata_watch *w;

    for (w = loop->scan.head; w != NULL; w = w->link[L_SCAN].next) {
        if (w->forced != 0) {
            w->ready = 1;
            w->ready_events = (w->forced & w->wait) |
                              (w->forced & STRATA_POLL_ERR);
        } else {
            poll_ready(w);
        }
        if (w->ready)
            make_due(loop, w);
    }
}

/* This round's run queue from the pending one: what is still woken or
 * ready. Returns how many. */
static size_t take_pending(strata_loop *loop)
{
    size_t n = 0;
    strata_watch *w;

    while ((w = loop->pending.head) != NULL) {
        list_unlink(&loop->pending, w, L_QUEUE);
        w->queue = Q_NONE;
        if (!w->woken && !w->ready)
            continue;
        w->fd_events = 0;
        list_push(&loop->run, w, L_QUEUE);
        w->queue = Q_RUN;
        n++;
    }
    return n;
}

/* The wait timeout of this round from the caller's, the timers' and the
 * due watches'. */
static int round_timeout(const strata_loop *loop, int timeout_ms,
                         size_t due)
{
    int t = timer_timeout(loop);

    if (due > 0)
        return 0;
    if (timeout_ms < 0)
        return t;
    return (t < 0 || timeout_ms < t) ? timeout_ms : t;
}

static int dispatch(strata_loop *loop)
{
    strata_watch *w;
    int count = 0;

    while ((w = loop->run.head) != NULL) {
        unsigned ev;

        list_unlink(&loop->run, w, L_QUEUE);
        w->queue = Q_NONE;
        ev = w->fd_events | w->ready_events;
        w->woken = 0;
        w->ready = 0;
        w->ready_events = 0;
        w->fd_events = 0;
        w->cb(loop, w, ev, w->ud);
        count++;
        if (!w->dead)
            rearm(w);
    }
    return count;
}

/* Empty the run queue without running it (the wait failed): its watches
 * stay due for the next round. */
static void requeue_run(strata_loop *loop)
{
    strata_watch *w;

    while ((w = loop->run.head) != NULL) {
        list_unlink(&loop->run, w, L_QUEUE);
        w->queue = Q_NONE;
        if (w->woken || w->ready)
            make_due(loop, w);
    }
}

/* One round. *idle says that nothing could happen: no watch due, no
 * descriptor to wait on, no timer (fd-less watches nobody woke cannot be
 * woken any more once no callback runs); then an endless wait is skipped. */
static int round_run(strata_loop *loop, int timeout_ms, int *idle)
{
    size_t due;
    int timeout, count, r, waiting;

    loop->now = strata_now_ms();
    scan(loop);
    due = take_pending(loop);
    timeout = round_timeout(loop, timeout_ms, due);
    waiting = backend_prepare(loop);
    *idle = due == 0 && loop->n_timers == 0 && !waiting;
    if (*idle && timeout < 0)
        return 0;
    r = backend_wait(loop, timeout);
    if (r < 0) {
        requeue_run(loop);
        return r;
    }
    loop->now = strata_now_ms();
    loop->in_round = 1;
    count = run_timers(loop);
    count += dispatch(loop);
    loop->in_round = 0;
    free_graveyard(loop);
    return count;
}

int strata_loop_run_once(strata_loop *loop, int timeout_ms)
{
    int idle;

    if (loop == NULL)
        return STRATA_ERR_ARG;
    if (loop->in_round)
        return STRATA_ERR_STATE; /* run_once from inside a callback */
    return round_run(loop, timeout_ms, &idle);
}

int strata_loop_run(strata_loop *loop)
{
    int r = 0, idle = 0;

    if (loop == NULL)
        return STRATA_ERR_ARG;
    if (loop->in_round)
        return STRATA_ERR_STATE;
    while (!loop->stopped && !idle &&
           (loop->live > 0 || loop->n_timers > 0)) {
        r = round_run(loop, -1, &idle);
        if (r < 0)
            break;
    }
    loop->stopped = 0; /* the loop can be run again */
    return r < 0 ? r : 0;
}

void strata_loop_stop(strata_loop *loop)
{
    if (loop != NULL)
        loop->stopped = 1;
}

uint64_t strata_loop_now(const strata_loop *loop)
{
    return loop != NULL ? loop->now : 0;
}
