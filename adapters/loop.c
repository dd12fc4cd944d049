/* The event loop: poll(2) over the bottom descriptors of watched stacks,
 * plus a min-heap of one-shot timers.
 *
 * A round is: collect what each watch waits for, wait (poll), read the
 * clock, run due timers, run ready watches, reap removed watches. Only the
 * backend_* functions know about poll(2); an epoll backend replaces them
 * and keeps the rest.
 *
 * Per watch the state after its callback is one of (loop.h):
 *  - waiting on the descriptor for `wait` (the stack's NEED wants, or the
 *    interest when the stack recorded none);
 *  - run next round without waiting: `woken` (a wake, the first run) or
 *    `ready` (strata_poll reported the interest ready: bytes buffered in
 *    a layer). `ready` is recomputed with the interest; a wake stays.
 * Watches live in their own allocations so the pointers the caller holds
 * stay valid while the array of them grows; removal inside a round only
 * marks them dead, and the round reaps them when no callback is running.
 */
#include "loop.h"
#include "blocking.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

struct strata_watch {
    strata_loop *loop;
    strata_stream *s;       /* NULL for a bare descriptor */
    int fd;                 /* the bare descriptor, or -1 for a stack */
    unsigned interest;      /* STRATA_POLL_IN / _OUT */
    strata_watch_cb cb;
    void *ud;
    unsigned wait;          /* STRATA_POLL_IN / _OUT to wait for */
    int woken;              /* a wake (or the first run) is pending */
    int ready;              /* strata_poll found the interest ready */
    unsigned ready_events;  /* what it found, reported on that run */
    int run_now;            /* woken or ready when this round began */
    int slot;               /* backend slot this round, or -1 */
    int dead;
};

typedef struct timer {
    uint64_t due;
    unsigned long id;       /* also the tie-break: equal dues run in order */
    strata_timer_cb cb;
    void *ud;
} timer;

/* The poll(2) backend: one pollfd per waiting watch, rebuilt each round.
 * Its capacity follows the watch array so a round never allocates. */
typedef struct backend {
    struct pollfd *pfds;
    size_t n;
} backend;

struct strata_loop {
    const strata_allocator *alloc;
    strata_watch **watches;
    size_t n_watches, cap_watches;
    size_t live;            /* watches not removed */
    timer *heap;
    size_t n_timers, cap_timers;
    unsigned long next_id;
    uint64_t now;
    backend be;
    int in_round;           /* callbacks may be running: defer reaping */
    int stopped;
};

/* ---- backend (poll) ----------------------------------------------------- */

static int backend_grow(strata_loop *loop, size_t cap)
{
    struct pollfd *p;

    p = strata_realloc(loop->alloc, loop->be.pfds, cap * sizeof *p);
    if (p == NULL)
        return STRATA_ERR_NOMEM;
    loop->be.pfds = p;
    return 0;
}

static void backend_reset(strata_loop *loop)
{
    loop->be.n = 0;
}

static void backend_add(strata_loop *loop, strata_watch *w, int fd,
                        unsigned wait)
{
    struct pollfd *p = &loop->be.pfds[loop->be.n];

    p->fd = fd;
    p->events = (short)(((wait & STRATA_POLL_IN) ? POLLIN : 0) |
                        ((wait & STRATA_POLL_OUT) ? POLLOUT : 0));
    p->revents = 0;
    w->slot = (int)loop->be.n++;
}

/* Wait at most timeout_ms. A signal ends the wait early with nothing
 * ready; the next round simply waits again. */
static int backend_wait(strata_loop *loop, int timeout_ms)
{
    int r = poll(loop->be.pfds, (nfds_t)loop->be.n, timeout_ms);

    if (r < 0 && errno != EINTR)
        return STRATA_ERR_IO;
    if (r < 0) {
        size_t i;
        for (i = 0; i < loop->be.n; i++)
            loop->be.pfds[i].revents = 0;
    }
    return 0;
}

/* What the descriptor of w reported this round, as STRATA_POLL_* bits. */
static unsigned backend_events(const strata_loop *loop, const strata_watch *w)
{
    short re;
    unsigned ev = 0;

    if (w->slot < 0)
        return 0;
    re = loop->be.pfds[w->slot].revents;
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

static void backend_free(strata_loop *loop)
{
    strata_dealloc(loop->alloc, loop->be.pfds);
}

/* ---- timers: a binary min-heap on (due, id) ----------------------------- */

static int timer_before(const timer *a, const timer *b)
{
    return a->due < b->due || (a->due == b->due && a->id < b->id);
}

static void heap_swap(timer *h, size_t i, size_t j)
{
    timer t = h[i];

    h[i] = h[j];
    h[j] = t;
}

static void sift_up(timer *h, size_t i)
{
    while (i > 0 && timer_before(&h[i], &h[(i - 1) / 2])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(timer *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < n && timer_before(&h[l], &h[m]))
            m = l;
        if (r < n && timer_before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_remove(strata_loop *loop, size_t i)
{
    timer *h = loop->heap;

    loop->n_timers--;
    if (i == loop->n_timers)
        return;
    h[i] = h[loop->n_timers];
    sift_down(h, loop->n_timers, i);
    sift_up(h, i);
}

static int heap_reserve(strata_loop *loop)
{
    size_t cap;
    timer *h;

    if (loop->n_timers < loop->cap_timers)
        return 0;
    cap = loop->cap_timers ? loop->cap_timers * 2 : 8;
    h = strata_realloc(loop->alloc, loop->heap, cap * sizeof *h);
    if (h == NULL)
        return STRATA_ERR_NOMEM;
    loop->heap = h;
    loop->cap_timers = cap;
    return 0;
}

unsigned long strata_loop_timer(strata_loop *loop, uint64_t delay_ms,
                                strata_timer_cb cb, void *ud)
{
    timer t;

    if (loop == NULL || cb == NULL || heap_reserve(loop) != 0)
        return 0;
    if (loop->next_id == 0)
        loop->next_id = 1; /* after a wrap: 0 means failure */
    if (!loop->in_round)
        loop->now = strata_now_ms(); /* callbacks keep the round's time */
    t.due = delay_ms > UINT64_MAX - loop->now ? UINT64_MAX
                                              : loop->now + delay_ms;
    t.id = loop->next_id++;
    t.cb = cb;
    t.ud = ud;
    loop->heap[loop->n_timers] = t;
    sift_up(loop->heap, loop->n_timers++);
    return t.id;
}

int strata_loop_cancel(strata_loop *loop, unsigned long id)
{
    size_t i;

    if (loop == NULL || id == 0)
        return STRATA_ERR_ARG;
    for (i = 0; i < loop->n_timers; i++) {
        if (loop->heap[i].id == id) {
            heap_remove(loop, i);
            return 0;
        }
    }
    return STRATA_ERR_ARG;
}

/* Poll timeout until the nearest timer: -1 with none, 0 when one is due. */
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
 * in this one. Ids grow, and equal dues order by id, so once the top is a
 * new timer every older due one has run. */
static int run_timers(strata_loop *loop)
{
    unsigned long limit = loop->next_id;
    int count = 0;

    while (loop->n_timers > 0 && loop->heap[0].due <= loop->now &&
           loop->heap[0].id < limit) {
        timer t = loop->heap[0];

        heap_remove(loop, 0);
        t.cb(loop, t.ud);
        count++;
    }
    return count;
}

/* ---- watches ------------------------------------------------------------ */

strata_loop *strata_loop_new(const strata_allocator *alloc)
{
    strata_loop *loop = strata_alloc(alloc, sizeof *loop);

    if (loop == NULL)
        return NULL;
    memset(loop, 0, sizeof *loop);
    loop->alloc = alloc;
    loop->next_id = 1;
    loop->now = strata_now_ms();
    return loop;
}

void strata_loop_free(strata_loop *loop)
{
    size_t i;

    if (loop == NULL)
        return;
    for (i = 0; i < loop->n_watches; i++)
        strata_dealloc(loop->alloc, loop->watches[i]);
    strata_dealloc(loop->alloc, loop->watches);
    strata_dealloc(loop->alloc, loop->heap);
    backend_free(loop);
    strata_dealloc(loop->alloc, loop);
}

static int watches_reserve(strata_loop *loop)
{
    strata_watch **a;
    size_t cap;

    if (loop->n_watches < loop->cap_watches)
        return 0;
    cap = loop->cap_watches ? loop->cap_watches * 2 : 8;
    if (backend_grow(loop, cap) != 0)
        return STRATA_ERR_NOMEM;
    a = strata_realloc(loop->alloc, loop->watches, cap * sizeof *a);
    if (a == NULL)
        return STRATA_ERR_NOMEM;
    loop->watches = a;
    loop->cap_watches = cap;
    return 0;
}

static strata_watch *add_watch(strata_loop *loop, strata_stream *s, int fd,
                               unsigned interest, strata_watch_cb cb,
                               void *ud)
{
    strata_watch *w;

    if (loop == NULL || cb == NULL || watches_reserve(loop) != 0)
        return NULL;
    w = strata_alloc(loop->alloc, sizeof *w);
    if (w == NULL)
        return NULL;
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->s = s;
    w->fd = fd;
    w->interest = interest & (STRATA_POLL_IN | STRATA_POLL_OUT);
    w->cb = cb;
    w->ud = ud;
    w->wait = w->interest;
    w->woken = 1; /* the first run starts optimistic I/O */
    w->slot = -1;
    loop->watches[loop->n_watches++] = w;
    loop->live++;
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
    return w->s != NULL ? strata_fd(w->s) : w->fd;
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

/* Decide what w waits for next, after its callback (or a new interest):
 * the stack's NEED wants first, then data a layer holds, then the
 * interest on the descriptor. */
static void rearm(strata_watch *w)
{
    unsigned wants;

    w->wait = w->interest;
    w->ready = 0;
    w->ready_events = 0;
    if (w->s == NULL)
        return;
    wants = strata_wants(w->s);
    if (wants != 0 && strata_fd(w->s) >= 0) {
        w->wait = ((wants & STRATA_WANT_READ) ? STRATA_POLL_IN : 0) |
                  ((wants & STRATA_WANT_WRITE) ? STRATA_POLL_OUT : 0);
        return;
    }
    if (w->interest != 0)
        poll_ready(w);
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
    if (w != NULL && !w->dead)
        w->woken = 1;
}

static void reap(strata_loop *loop)
{
    size_t i, j = 0;

    for (i = 0; i < loop->n_watches; i++) {
        if (loop->watches[i]->dead)
            strata_dealloc(loop->alloc, loop->watches[i]);
        else
            loop->watches[j++] = loop->watches[i];
    }
    loop->n_watches = j;
}

void strata_watch_remove(strata_watch *w)
{
    strata_loop *loop;

    if (w == NULL || w->dead)
        return;
    loop = w->loop;
    w->dead = 1;
    loop->live--;
    /* Inside a round the dispatch still walks the array: reap afterwards. */
    if (!loop->in_round)
        reap(loop);
}

/* ---- rounds ------------------------------------------------------------- */

/* A watch without a descriptor of its own has nothing to wait on: it runs
 * when woken or when its layer reports the interest ready. Asking here
 * each round costs no system call (no descriptor below) and lets one
 * callback feed another stack's pipe end without an explicit wake. */
static void poll_fdless(strata_watch *w)
{
    if (w->interest != 0)
        poll_ready(w);
    else
        w->ready = 0;
}

/* Fill the backend with what each watch waits for; return how many watches
 * are ready to run without waiting. */
static size_t collect(strata_loop *loop)
{
    size_t i, ready = 0;

    backend_reset(loop);
    for (i = 0; i < loop->n_watches; i++) {
        strata_watch *w = loop->watches[i];
        int fd = strata_watch_fd(w);

        w->slot = -1;
        if (fd < 0 && w->s != NULL)
            poll_fdless(w);
        w->run_now = w->woken || w->ready;
        if (w->run_now)
            ready++;
        else if (fd >= 0 && w->wait != 0)
            backend_add(loop, w, fd, w->wait);
    }
    return ready;
}

/* The poll timeout of this round from the caller's, the timers' and the
 * ready watches'. */
static int round_timeout(const strata_loop *loop, int timeout_ms,
                         size_t ready)
{
    int t = timer_timeout(loop);

    if (ready > 0)
        return 0;
    if (timeout_ms < 0)
        return t;
    return (t < 0 || timeout_ms < t) ? timeout_ms : t;
}

static int dispatch(strata_loop *loop, size_t n)
{
    size_t i;
    int count = 0;

    for (i = 0; i < n; i++) {
        strata_watch *w = loop->watches[i];
        unsigned ev;

        if (w->dead)
            continue;
        ev = backend_events(loop, w);
        if (!w->run_now && ev == 0)
            continue;
        if (w->run_now)
            ev |= w->ready_events;
        w->woken = 0;
        w->ready = 0;
        w->ready_events = 0;
        w->run_now = 0;
        w->cb(loop, w, ev, w->ud);
        count++;
        if (!w->dead)
            rearm(w);
    }
    return count;
}

/* One round. *idle says that nothing could happen: no watch ready, no
 * descriptor to wait on, no timer (fd-less watches nobody woke cannot be
 * woken any more once no callback runs); then an endless wait is skipped. */
static int round_run(strata_loop *loop, int timeout_ms, int *idle)
{
    size_t ready, n;
    int timeout, count, r;

    loop->now = strata_now_ms();
    ready = collect(loop);
    timeout = round_timeout(loop, timeout_ms, ready);
    *idle = ready == 0 && loop->be.n == 0 && loop->n_timers == 0;
    if (*idle && timeout < 0)
        return 0;
    r = backend_wait(loop, timeout);
    if (r < 0)
        return r;
    loop->now = strata_now_ms();
    loop->in_round = 1;
    n = loop->n_watches; /* watches added by callbacks run next round */
    count = run_timers(loop);
    count += dispatch(loop, n);
    loop->in_round = 0;
    reap(loop);
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
