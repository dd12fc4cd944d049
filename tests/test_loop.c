/* The event loop: timers (order, cancel, inside callbacks, ids that
 * outlive their timer), the wait rules after a callback (NEED wants, the
 * optimistic re-run, the interest), no busy loop when idle, wakes of
 * fd-less watches, removal and addition in callbacks, a listening
 * descriptor, watches sharing a descriptor, a descriptor number reused, a
 * regular file, many idle watches, and an echo server with many clients
 * all driven by one loop over loopback TCP. Every case runs twice: on the
 * epoll backend (Linux) and on the poll(2) backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strata/blocking.h>
#include <strata/buffered.h>
#include <strata/loop.h>
#include <strata/pipe.h>
#include <strata/socket.h>

/* ---- helpers ------------------------------------------------------------ */

/* The backend the running group tests (set by its setup). */
static int backend = STRATA_LOOP_POLL;

static strata_loop *new_loop(void)
{
    strata_loop *loop = strata_loop_new_backend(NULL, backend);

    assert_non_null(loop);
    assert_string_equal(strata_loop_backend(loop),
                        backend == STRATA_LOOP_EPOLL ? "epoll" : "poll");
    return loop;
}

/* A socketpair; fds[0] wrapped in a stream, fds[1] left raw. */
static strata_stream *sock_pair(int fds[2])
{
    strata_stream *s;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    s = strata_socket_new(fds[0], NULL);
    assert_non_null(s);
    return s;
}

static void write_raw(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static int fd_readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Run rounds for about ms milliseconds; returns the callbacks run. */
static int run_for(strata_loop *loop, int ms, int *rounds)
{
    uint64_t end = strata_now_ms() + (uint64_t)ms;
    int total = 0, n = 0;

    for (;;) {
        uint64_t now = strata_now_ms();
        int r;

        if (now >= end)
            break;
        r = strata_loop_run_once(loop, (int)(end - now));
        assert_true(r >= 0);
        total += r;
        n++;
    }
    if (rounds != NULL)
        *rounds = n;
    return total;
}

/* A watch callback that counts and remembers the last events. */
typedef struct counter {
    int calls;
    unsigned last_events;
    unsigned all_events;
} counter;

static void count_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    counter *c = ud;

    (void)loop;
    (void)w;
    c->calls++;
    c->last_events = events;
    c->all_events |= events;
}

/* Reads everything there is (until NEED), counting calls and bytes. */
typedef struct drain {
    int calls;
    size_t bytes;
    int eof;
    unsigned events;
} drain;

static void drain_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    drain *d = ud;
    char buf[512];
    ssize_t r;

    (void)loop;
    d->calls++;
    d->events |= events;
    while ((r = strata_read(strata_watch_stream(w), buf, sizeof buf)) > 0)
        d->bytes += (size_t)r;
    if (r == STRATA_EOF) {
        d->eof = 1;
        strata_watch_remove(w);
    }
}

static void noop_timer(strata_loop *loop, void *ud)
{
    (void)loop;
    (void)ud;
}

/* ---- timers ------------------------------------------------------------- */

typedef struct tlog {
    int order[16];
    int n;
} tlog;

typedef struct tctx {
    tlog *log;
    int tag;
} tctx;

static void log_timer(strata_loop *loop, void *ud)
{
    tctx *t = ud;

    (void)loop;
    t->log->order[t->log->n++] = t->tag;
}

/* The timers are set from inside a callback, where the loop's clock
 * stands still: outside a round each strata_loop_timer reads the clock, so
 * under load a later timer with a shorter delay may rightly come later. */
typedef struct order_test {
    tlog log;
    tctx t[6];
    unsigned long id[6];
} order_test;

static void set_order_timers(strata_loop *loop, void *ud)
{
    static const uint64_t delays[6] = {30, 10, 20, 10, 5, 0};
    order_test *o = ud;
    int i;

    for (i = 0; i < 6; i++) {
        o->t[i].log = &o->log;
        o->t[i].tag = i;
        o->id[i] = strata_loop_timer(loop, delays[i], log_timer, &o->t[i]);
        assert_true(o->id[i] > 0);
        if (i > 0)
            assert_true(o->id[i] != o->id[i - 1]);
    }
    assert_int_equal(strata_loop_cancel(loop, o->id[4]), 0);
    assert_int_equal(strata_loop_cancel(loop, o->id[4]), STRATA_ERR_ARG);
}

static void test_timer_order_and_cancel(void **state)
{
    strata_loop *loop = new_loop();
    order_test o;
    uint64_t t0;

    (void)state;
    memset(&o, 0, sizeof o);
    t0 = strata_now_ms();
    assert_true(strata_loop_timer(loop, 0, set_order_timers, &o) > 0);
    assert_int_equal(strata_loop_cancel(loop, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_cancel(loop, 12345), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_run(loop), 0); /* returns: nothing left */
    assert_true(strata_now_ms() - t0 >= 29);
    /* By delay; equal delays in the order they were added (1 before 3). */
    assert_int_equal(o.log.n, 5);
    assert_int_equal(o.log.order[0], 5);
    assert_int_equal(o.log.order[1], 1);
    assert_int_equal(o.log.order[2], 3);
    assert_int_equal(o.log.order[3], 2);
    assert_int_equal(o.log.order[4], 0);
    /* A fired timer is no longer pending. */
    assert_int_equal(strata_loop_cancel(loop, o.id[0]), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_timer(loop, 1, NULL, NULL), 0);
    strata_loop_free(loop);
}

/* Many timers with random delays, added inside a callback (one clock
 * value for all), some cancelled: they fire sorted by delay, equal delays
 * in the order they were added. */
typedef struct heapt {
    unsigned long ids[200];
    uint64_t delay[200];
    int fired[200];
    int n;
} heapt;

typedef struct heapt_ctx {
    heapt *h;
    int i;
} heapt_ctx;

static heapt_ctx heapt_ctxs[200];

static void heapt_fire(strata_loop *loop, void *ud)
{
    heapt_ctx *c = ud;

    (void)loop;
    c->h->fired[c->h->n++] = c->i;
}

static void heapt_add_all(strata_loop *loop, void *ud)
{
    heapt *h = ud;
    uint64_t seed = 7;
    int i;

    for (i = 0; i < 200; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        h->delay[i] = (seed >> 33) % 60;
        heapt_ctxs[i].h = h;
        heapt_ctxs[i].i = i;
        h->ids[i] = strata_loop_timer(loop, h->delay[i], heapt_fire,
                                      &heapt_ctxs[i]);
        assert_true(h->ids[i] > 0);
    }
    /* Cancel every third one: leaves, root and middle of the heap. */
    for (i = 0; i < 200; i += 3)
        assert_int_equal(strata_loop_cancel(loop, h->ids[i]), 0);
}

static void test_timer_heap_many(void **state)
{
    strata_loop *loop = new_loop();
    heapt *h = calloc(1, sizeof *h);
    int k;

    (void)state;
    assert_non_null(h);
    assert_true(strata_loop_timer(loop, 0, heapt_add_all, h) > 0);
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(h->n, 200 - 67);
    for (k = 0; k < h->n; k++)
        assert_true(h->fired[k] % 3 != 0);
    for (k = 1; k < h->n; k++) {
        int a = h->fired[k - 1], b = h->fired[k];

        assert_true(h->delay[a] < h->delay[b] ||
                    (h->delay[a] == h->delay[b] && a < b));
    }
    free(h);
    strata_loop_free(loop);
}

typedef struct chain {
    int round_of_first, round_of_second, round_of_third;
    int *round;
    unsigned long cancel_me;
    int cancelled_fired;
} chain;

static void third_timer(strata_loop *loop, void *ud)
{
    chain *c = ud;

    (void)loop;
    c->round_of_third = *c->round;
}

static void second_timer(strata_loop *loop, void *ud)
{
    chain *c = ud;

    c->round_of_second = *c->round;
    assert_true(strata_loop_timer(loop, 20, third_timer, c) > 0);
}

static void cancelled_timer(strata_loop *loop, void *ud)
{
    chain *c = ud;

    (void)loop;
    c->cancelled_fired = 1;
}

static void first_timer(strata_loop *loop, void *ud)
{
    chain *c = ud;

    c->round_of_first = *c->round;
    /* Delay 0 from inside a timer: the next round, not this one. */
    assert_true(strata_loop_timer(loop, 0, second_timer, c) > 0);
    /* Cancelling another pending timer from inside a callback. */
    assert_int_equal(strata_loop_cancel(loop, c->cancel_me), 0);
}

static void test_timer_inside_callback(void **state)
{
    strata_loop *loop = new_loop();
    chain c;
    int round = 0;
    uint64_t t0;

    (void)state;
    memset(&c, 0, sizeof c);
    c.round = &round;
    t0 = strata_now_ms();
    assert_true(strata_loop_timer(loop, 10, first_timer, &c) > 0);
    c.cancel_me = strata_loop_timer(loop, 10, cancelled_timer, &c);
    assert_true(c.cancel_me > 0);
    for (round = 1; round < 100 && !c.round_of_third; round++)
        assert_true(strata_loop_run_once(loop, 1000) >= 0);
    assert_true(c.round_of_first > 0);
    assert_true(c.round_of_second > c.round_of_first);
    assert_true(c.round_of_third > c.round_of_second);
    assert_int_equal(c.cancelled_fired, 0);
    assert_true(strata_now_ms() - t0 >= 29);
    strata_loop_free(loop);
}

/* run_once with -1 waits only until the nearest timer. */
static void test_run_once_timeout_from_timer(void **state)
{
    strata_loop *loop = new_loop();
    tlog log;
    tctx t = {&log, 1};
    uint64_t t0, dt, n0;

    (void)state;
    memset(&log, 0, sizeof log);
    assert_int_equal(strata_loop_run_once(loop, 0), 0);
    n0 = strata_loop_now(loop);
    t0 = strata_now_ms();
    assert_true(strata_loop_timer(loop, 40, log_timer, &t) > 0);
    while (log.n == 0)
        assert_true(strata_loop_run_once(loop, -1) >= 0);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 39 && dt < 1000);
    assert_true(strata_loop_now(loop) >= n0 + 39);
    /* Nothing left: run_once(-1) must not block forever. */
    assert_int_equal(strata_loop_run_once(loop, -1), 0);
    /* A finite timeout with nothing to do is a sleep. */
    t0 = strata_now_ms();
    assert_int_equal(strata_loop_run_once(loop, 30), 0);
    assert_true(strata_now_ms() - t0 >= 29);
    strata_loop_free(loop);
}

/* ---- wait rules --------------------------------------------------------- */

/* Idle watches must not spin: over 200 ms a socket, a buffered socket and
 * a pipe end nobody writes to are each run once (the first run) and the
 * loop sleeps in few rounds. */
static void test_idle_no_busy_loop(void **state)
{
    strata_loop *loop = new_loop();
    int fa[2], fb[2], rounds = 0;
    strata_stream *sa = sock_pair(fa);
    strata_stream *sb = strata_buffered_new(sock_pair(fb), 256, NULL);
    strata_stream *pa, *pb;
    drain da, db, dp;

    (void)state;
    assert_non_null(sb);
    assert_int_equal(strata_pipe_pair(&pa, &pb, NULL, NULL), 0);
    memset(&da, 0, sizeof da);
    memset(&db, 0, sizeof db);
    memset(&dp, 0, sizeof dp);
    assert_non_null(strata_loop_watch(loop, sa, STRATA_POLL_IN, drain_cb,
                                      &da));
    assert_non_null(strata_loop_watch(loop, sb, STRATA_POLL_IN, drain_cb,
                                      &db));
    assert_non_null(strata_loop_watch(loop, pb, STRATA_POLL_IN, drain_cb,
                                      &dp));
    assert_int_equal(run_for(loop, 200, &rounds), 3);
    assert_int_equal(da.calls, 1);
    assert_int_equal(db.calls, 1);
    assert_int_equal(dp.calls, 1);
    assert_true(rounds <= 4);
    /* Data wakes exactly the right watch, with IN. */
    write_raw(fa[1], "ping", 4);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(da.calls, 2);
    assert_int_equal(da.bytes, 4);
    assert_true(da.events & STRATA_POLL_IN);
    assert_int_equal(run_for(loop, 50, NULL), 0);
    /* Bytes sent into the pipe from outside any callback are noticed by
     * strata_poll at the start of the next round. */
    assert_int_equal(strata_write(pa, "xyz", 3), 3);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(dp.bytes, 3);
    assert_int_equal(run_for(loop, 50, NULL), 0);
    strata_loop_free(loop);
    strata_free(sa);
    strata_free(sb);
    strata_free(pa);
    strata_free(pb);
    close(fa[1]);
    close(fb[1]);
}

/* Reads 5 bytes per call: the rest stays in the buffered layer, where the
 * descriptor cannot see it. */
typedef struct nibbler {
    int calls;
    size_t bytes;
    unsigned events[64];
} nibbler;

static void nibble_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    nibbler *n = ud;
    char buf[5];
    ssize_t r;

    (void)loop;
    if (n->calls < 64)
        n->events[n->calls] = events;
    n->calls++;
    r = strata_read(strata_watch_stream(w), buf, sizeof buf);
    if (r > 0)
        n->bytes += (size_t)r;
}

static void test_optimistic_rerun(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2], i;
    strata_stream *b = strata_buffered_new(sock_pair(fds), 1024, NULL);
    char data[100];
    nibbler n;
    uint64_t t0;

    (void)state;
    assert_non_null(b);
    memset(&n, 0, sizeof n);
    memset(data, 'a', sizeof data);
    write_raw(fds[1], data, sizeof data);
    /* Everything moves into the buffer; the socket is then empty. */
    while (strata_buffered_len(strata_buffered_of(b)) < sizeof data)
        assert_true(strata_buffered_fill(strata_buffered_of(b)) > 0);
    assert_false(fd_readable(fds[0]));
    assert_non_null(strata_loop_watch(loop, b, STRATA_POLL_IN, nibble_cb,
                                      &n));
    /* Each round runs it again at once: a -1 timeout never blocks while
     * the layer holds bytes. */
    t0 = strata_now_ms();
    for (i = 0; i < 20; i++)
        assert_int_equal(strata_loop_run_once(loop, -1), 1);
    assert_true(strata_now_ms() - t0 < 1000);
    assert_int_equal(n.calls, 20);
    assert_int_equal(n.bytes, 100);
    assert_int_equal(n.events[0], 0);          /* the first run */
    for (i = 1; i < 20; i++)
        assert_true(n.events[i] & STRATA_POLL_IN);
    /* Drained: now it waits. */
    assert_int_equal(run_for(loop, 100, NULL), 0);
    assert_int_equal(n.calls, 20);
    strata_loop_free(loop);
    strata_free(b);
    close(fds[1]);
}

/* After a NEED code the loop waits for the wants, whatever the interest:
 * a send blocked on a full socket is retried when it drains even though
 * the interest is only IN. */
typedef struct pusher {
    const char *data;
    size_t len, off;
    int calls;
    int done;
} pusher;

static void push_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    pusher *p = ud;
    ssize_t r;

    (void)loop;
    (void)events;
    p->calls++;
    while (p->off < p->len) {
        r = strata_send(strata_watch_stream(w), p->data + p->off,
                        p->len - p->off, 0);
        if (r <= 0)
            return;
        p->off += (size_t)r;
    }
    p->done = 1;
}

static void test_need_write_waits_for_wants(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2], small = 4096, calls_blocked, rounds = 0;
    strata_stream *s = sock_pair(fds);
    const size_t len = 1u << 20;
    char *data = calloc(1, len), *sink = malloc(65536);
    pusher p;
    ssize_t r;
    size_t drained = 0;

    (void)state;
    assert_non_null(data);
    assert_non_null(sink);
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    memset(&p, 0, sizeof p);
    p.data = data;
    p.len = len;
    assert_non_null(strata_loop_watch(loop, s, STRATA_POLL_IN, push_cb, &p));
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    assert_false(p.done);
    assert_int_equal(strata_wants(s), STRATA_WANT_WRITE);
    /* Blocked and nobody reads: it sleeps. */
    calls_blocked = p.calls;
    assert_int_equal(run_for(loop, 100, &rounds), 0);
    assert_int_equal(p.calls, calls_blocked);
    /* Drain from the other side between rounds until all went through. */
    while (!p.done) {
        r = read(fds[1], sink, 65536);
        assert_true(r > 0);
        drained += (size_t)r;
        assert_true(strata_loop_run_once(loop, 1000) >= 0);
    }
    while (drained < len) {
        r = read(fds[1], sink, 65536);
        assert_true(r > 0);
        drained += (size_t)r;
    }
    /* Done, send record cleared, interest IN with nothing to read: idle. */
    assert_int_equal(run_for(loop, 50, NULL), 0);
    free(data);
    free(sink);
    strata_loop_free(loop);
    strata_free(s);
    close(fds[1]);
}

/* Interest changes: 0 means not run on data; back to IN runs it. */
static void test_set_interest(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2];
    strata_stream *s = sock_pair(fds);
    counter c;
    strata_watch *w;

    (void)state;
    memset(&c, 0, sizeof c);
    w = strata_loop_watch(loop, s, 0, count_cb, &c);
    assert_non_null(w);
    assert_int_equal(strata_loop_run_once(loop, 0), 1); /* the first run */
    write_raw(fds[1], "x", 1);
    assert_int_equal(run_for(loop, 50, NULL), 0);
    strata_watch_set_interest(w, STRATA_POLL_IN);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_true(c.last_events & STRATA_POLL_IN);
    /* OUT on a socket with room: ready at once. */
    strata_watch_set_interest(w, STRATA_POLL_OUT);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_true(c.last_events & STRATA_POLL_OUT);
    strata_watch_set_interest(w, 0);
    assert_int_equal(run_for(loop, 30, NULL), 0);
    strata_loop_free(loop);
    strata_free(s);
    close(fds[1]);
}

/* The peer closing shows up as IN (and maybe HUP); reading gives EOF. */
static void test_peer_close(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2];
    strata_stream *s = sock_pair(fds);
    drain d;

    (void)state;
    memset(&d, 0, sizeof d);
    assert_non_null(strata_loop_watch(loop, s, STRATA_POLL_IN, drain_cb, &d));
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    write_raw(fds[1], "bye", 3);
    close(fds[1]);
    assert_int_equal(strata_loop_run(loop), 0); /* ends: watch removed */
    assert_int_equal(d.eof, 1);
    assert_int_equal(d.bytes, 3);
    strata_loop_free(loop);
    strata_free(s);
}

/* A descriptor closed under a watch: the callback hears ERR (level
 * triggered, so it must remove the watch). */
static void remove_on_err_cb(strata_loop *loop, strata_watch *w,
                             unsigned events, void *ud)
{
    counter *c = ud;

    count_cb(loop, w, events, ud);
    if (c->calls > 1 && (events & STRATA_POLL_ERR))
        strata_watch_remove(w);
}

static void test_closed_descriptor(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2], rounds = 0;
    counter c;

    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_non_null(strata_loop_watch_fd(loop, fds[0], STRATA_POLL_IN,
                                         remove_on_err_cb, &c));
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    close(fds[0]);
    if (backend == STRATA_LOOP_POLL) {
        assert_int_equal(strata_loop_run(loop), 0);
        assert_int_equal(c.calls, 2);
        assert_true(c.last_events & STRATA_POLL_ERR);
    } else {
        /* epoll forgets a closed descriptor (loop.h): never run again,
         * and no spinning either. */
        assert_int_equal(run_for(loop, 50, &rounds), 0);
        assert_int_equal(c.calls, 1);
        assert_true(rounds <= 2);
    }
    close(fds[1]);
    strata_loop_free(loop);
    /* NULL is tolerated everywhere. */
    strata_loop_free(NULL);
    assert_int_equal(strata_watch_fd(NULL), -1);
    assert_null(strata_watch_stream(NULL));
    assert_null(strata_watch_ud(NULL));
    strata_watch_wake(NULL);
    strata_watch_remove(NULL);
    strata_watch_set_interest(NULL, STRATA_POLL_IN);
    assert_int_equal(strata_loop_run_once(NULL, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_run(NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_cancel(NULL, 1), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_timer(NULL, 1, noop_timer, NULL), 0);
}

/* ---- fd-less watches, wakes --------------------------------------------- */

static void test_wake_fdless(void **state)
{
    strata_loop *loop = new_loop();
    strata_stream *a, *b;
    counter c;
    strata_watch *w;

    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    /* Interest 0: only a wake can run it. */
    w = strata_loop_watch(loop, b, 0, count_cb, &c);
    assert_non_null(w);
    assert_int_equal(strata_watch_fd(w), -1);
    assert_ptr_equal(strata_watch_stream(w), b);
    assert_ptr_equal(strata_watch_ud(w), &c);
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    assert_int_equal(run_for(loop, 50, NULL), 0);
    strata_watch_wake(w);
    strata_watch_wake(w); /* twice before a round: one run */
    assert_int_equal(strata_loop_run_once(loop, -1), 1);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.last_events, 0);
    assert_int_equal(run_for(loop, 30, NULL), 0);
    /* run() with only an unwoken fd-less watch: nothing can ever happen,
     * so it returns instead of hanging. */
    assert_int_equal(strata_loop_run(loop), 0);
    strata_loop_free(loop);
    strata_free(a);
    strata_free(b);
}

/* Ping-pong over a pipe pair with interest 0, so only wakes run the
 * watches: each side answers and wakes the other; a timer starts it. */
typedef struct pp {
    strata_watch *peer;
    int sent, got, limit;
    int lead, started;
} pp;

static void pp_cb(strata_loop *loop, strata_watch *w, unsigned events,
                  void *ud)
{
    pp *p = ud;
    strata_stream *s = strata_watch_stream(w);
    char c;

    (void)loop;
    (void)events;
    while (strata_read(s, &c, 1) == 1)
        p->got++;
    /* The leader sends when even, the other side answers what it got. */
    if (p->started && p->sent < p->limit &&
        (p->lead ? p->sent == p->got : p->sent < p->got)) {
        assert_int_equal(strata_write(s, "p", 1), 1);
        p->sent++;
        strata_watch_wake(p->peer);
    }
    if (p->got == p->limit && p->sent == p->limit)
        strata_watch_remove(w);
}

typedef struct kickoff {
    pp *p;
    strata_watch *w;
} kickoff;

static void kick(strata_loop *loop, void *ud)
{
    kickoff *k = ud;

    (void)loop;
    k->p->started = 1;
    strata_watch_wake(k->w);
}

static void test_pingpong_pipe(void **state)
{
    strata_loop *loop = new_loop();
    strata_stream *a, *b;
    strata_watch *wa, *wb;
    pp pa, pb;
    kickoff k;

    (void)state;
    memset(&pa, 0, sizeof pa);
    memset(&pb, 0, sizeof pb);
    pa.limit = pb.limit = 100;
    pa.lead = 1;
    pb.started = 1;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    wa = strata_loop_watch(loop, a, 0, pp_cb, &pa);
    wb = strata_loop_watch(loop, b, 0, pp_cb, &pb);
    assert_non_null(wa);
    assert_non_null(wb);
    pa.peer = wb;
    pb.peer = wa;
    k.p = &pa;
    k.w = wa;
    assert_true(strata_loop_timer(loop, 10, kick, &k) > 0);
    assert_int_equal(strata_loop_run(loop), 0); /* both removed */
    assert_int_equal(pa.sent, 100);
    assert_int_equal(pb.got, 100);
    assert_int_equal(pb.sent, 100);
    assert_int_equal(pa.got, 100);
    strata_loop_free(loop);
    strata_free(a);
    strata_free(b);
}

/* ---- adding and removing inside callbacks ------------------------------- */

typedef struct remover {
    strata_watch *victim;
    strata_stream *to_free;
    int calls;
    strata_watch *added;
    counter *added_counter;
    int add;
} remover;

static void remove_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    remover *r = ud;

    (void)events;
    r->calls++;
    if (r->victim != NULL) {
        strata_watch_remove(r->victim);
        strata_watch_remove(r->victim); /* twice is harmless */
        r->victim = NULL;
    }
    if (r->add) {
        r->added = strata_loop_watch_fd(loop, 0, 0, count_cb,
                                        r->added_counter);
        assert_non_null(r->added);
        r->add = 0;
    }
    strata_watch_remove(w);
    /* The stream may go right after its watch. */
    strata_free(r->to_free);
    r->to_free = NULL;
}

static void test_remove_inside_callback(void **state)
{
    strata_loop *loop = new_loop();
    strata_stream *a, *b, *c, *d;
    remover r1, r3;
    counter c2, added;
    strata_watch *w2;

    (void)state;
    memset(&r1, 0, sizeof r1);
    memset(&r3, 0, sizeof r3);
    memset(&c2, 0, sizeof c2);
    memset(&added, 0, sizeof added);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_pipe_pair(&c, &d, NULL, NULL), 0);
    assert_non_null(strata_loop_watch(loop, a, 0, remove_cb, &r1));
    w2 = strata_loop_watch(loop, b, 0, count_cb, &c2);
    assert_non_null(w2);
    assert_non_null(strata_loop_watch(loop, c, 0, remove_cb, &r3));
    r1.victim = w2;       /* removed before its first run */
    r1.to_free = a;       /* freed in its own callback */
    r3.add = 1;           /* adds a watch: it runs next round */
    r3.added_counter = &added;
    assert_int_equal(strata_loop_run_once(loop, 0), 2);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(c2.calls, 0);
    assert_int_equal(r3.calls, 1);
    assert_int_equal(added.calls, 0);
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    assert_int_equal(added.calls, 1);
    /* Removal outside a round frees at once. */
    strata_watch_remove(r3.added);
    assert_int_equal(strata_loop_run_once(loop, 0), 0);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r3.calls, 1);
    strata_loop_free(loop);
    strata_free(b);
    strata_free(c);
    strata_free(d);
}

/* A callback may not run the loop from inside; stop ends run(). */
static void reenter_cb(strata_loop *loop, strata_watch *w, unsigned events,
                       void *ud)
{
    int *rc = ud;

    (void)w;
    (void)events;
    rc[0] = strata_loop_run_once(loop, 0);
    rc[1] = strata_loop_run(loop);
    strata_loop_stop(loop);
}

static void test_reentry_and_stop(void **state)
{
    strata_loop *loop = new_loop();
    strata_stream *a, *b;
    int rc[2] = {1, 1};
    strata_watch *w;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    /* Interest OUT on a pipe with room: ready every round (level). */
    w = strata_loop_watch(loop, a, STRATA_POLL_OUT, reenter_cb, rc);
    assert_non_null(w);
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(rc[0], STRATA_ERR_STATE);
    assert_int_equal(rc[1], STRATA_ERR_STATE);
    /* stop is one-shot: run() works again (and is stopped again). */
    rc[0] = rc[1] = 1;
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(rc[0], STRATA_ERR_STATE);
    strata_watch_remove(w);
    assert_int_equal(strata_loop_run(loop), 0);
    strata_loop_free(loop);
    strata_free(a);
    strata_free(b);
}

/* ---- a listening descriptor --------------------------------------------- */

typedef struct acceptor {
    int accepted;
    int want;
    strata_stream *conns[8];
    int lfd;
} acceptor;

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    acceptor *a = ud;
    strata_stream *s;

    (void)events;
    assert_int_equal(strata_watch_fd(w), a->lfd);
    assert_null(strata_watch_stream(w));
    while (strata_accept(strata_watch_fd(w), NULL, &s) == 0)
        a->conns[a->accepted++] = s;
    if (a->accepted >= a->want) {
        strata_watch_remove(w);
        strata_loop_stop(loop);
    }
}

static void test_watch_listening_fd(void **state)
{
    strata_loop *loop = new_loop();
    acceptor a;
    strata_stream *clients[5];
    char port[16];
    int i, lfd = strata_tcp_listen("127.0.0.1", "0", 16);

    (void)state;
    assert_true(lfd >= 0);
    memset(&a, 0, sizeof a);
    a.want = 5;
    a.lfd = lfd;
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    assert_non_null(strata_loop_watch_fd(loop, lfd, STRATA_POLL_IN,
                                         accept_cb, &a));
    assert_null(strata_loop_watch_fd(loop, -1, STRATA_POLL_IN, accept_cb,
                                     &a));
    assert_null(strata_loop_watch(loop, NULL, STRATA_POLL_IN, accept_cb,
                                  &a));
    assert_int_equal(strata_loop_run_once(loop, 0), 1); /* nothing yet */
    assert_int_equal(run_for(loop, 30, NULL), 0);
    for (i = 0; i < 5; i++)
        assert_int_equal(strata_tcp_connect("127.0.0.1", port, NULL,
                                            &clients[i]), 0);
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(a.accepted, 5);
    for (i = 0; i < 5; i++) {
        strata_free(clients[i]);
        strata_free(a.conns[i]);
    }
    close(lfd);
    strata_loop_free(loop);
}

/* ---- echo server, many clients, one loop -------------------------------- */

#define N_CLIENTS 50

typedef struct echo_test echo_test;

typedef struct echo_conn {
    strata_stream *s;
    echo_test *t;
    char buf[4096];
    size_t len, off;      /* bytes read, of which echoed */
} echo_conn;

typedef struct client {
    strata_stream *s;
    unsigned char *msg;
    size_t len, sent, got;
    int shut, failed;
    echo_test *t;
} client;

struct echo_test {
    int lfd;
    int done, failed, accepted, server_closed;
    client clients[N_CLIENTS];
};

/* Echo what comes in; stop reading while an echo is pending so the peer
 * is throttled, not buffered without bound. Close after the peer's EOF. */
static void echo_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    echo_conn *c = ud;
    ssize_t r;

    (void)loop;
    (void)events;
    for (;;) {
        if (c->off < c->len) {
            r = strata_send(c->s, c->buf + c->off, c->len - c->off, 0);
            if (r == STRATA_NEED_WRITE)
                return;
            if (r < 0)
                break;
            c->off += (size_t)r;
            continue;
        }
        r = strata_read(c->s, c->buf, sizeof c->buf);
        if (r == STRATA_NEED_READ)
            return;
        if (r < 0)
            break; /* EOF or error: done with this one */
        c->len = (size_t)r;
        c->off = 0;
    }
    strata_watch_remove(w);
    strata_free(c->s);
    c->t->server_closed++;
    free(c);
}

static void listen_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    echo_test *t = ud;
    strata_stream *s;

    (void)events;
    while (strata_accept(strata_watch_fd(w), NULL, &s) == 0) {
        echo_conn *c = calloc(1, sizeof *c);

        assert_non_null(c);
        c->s = s;
        c->t = t;
        t->accepted++;
        assert_non_null(strata_loop_watch(loop, s, STRATA_POLL_IN, echo_cb,
                                          c));
    }
}

static void client_finish(strata_loop *loop, strata_watch *w, client *c)
{
    if (c->failed)
        c->t->failed++;
    c->t->done++;
    strata_watch_remove(w);
    strata_free(c->s);
    c->s = NULL;
    if (c->t->done == N_CLIENTS)
        strata_loop_stop(loop);
}

/* Send the message (the connect may still be in progress: NEED_WRITE),
 * half-close, read the echo until the server closes. */
static void client_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    client *c = ud;
    unsigned char buf[3000];
    ssize_t r;

    (void)events;
    while (c->sent < c->len) {
        r = strata_send(c->s, c->msg + c->sent, c->len - c->sent, 0);
        if (r == STRATA_NEED_WRITE)
            break;
        if (r < 0) {
            c->failed = 1;
            client_finish(loop, w, c);
            return;
        }
        c->sent += (size_t)r;
    }
    if (c->sent == c->len && !c->shut && strata_shutdown(c->s) == 0)
        c->shut = 1;
    for (;;) {
        r = strata_read(c->s, buf, sizeof buf);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return;
        if (r < 0) {
            c->failed = r != STRATA_EOF || c->got != c->len;
            client_finish(loop, w, c);
            return;
        }
        if (c->got + (size_t)r > c->len ||
            memcmp(buf, c->msg + c->got, (size_t)r) != 0)
            c->failed = 1;
        c->got += (size_t)r;
    }
}

static void watchdog(strata_loop *loop, void *ud)
{
    int *fired = ud;

    *fired = 1;
    strata_loop_stop(loop);
}

static void test_echo_many_clients(void **state)
{
    strata_loop *loop = new_loop();
    echo_test *t = calloc(1, sizeof *t);
    strata_watch *lw;
    char port[16];
    int i, fired = 0;
    uint64_t seed = 99;
    unsigned long wd;

    (void)state;
    assert_non_null(t);
    t->lfd = strata_tcp_listen("127.0.0.1", "0", 128);
    assert_true(t->lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(t->lfd));
    lw = strata_loop_watch_fd(loop, t->lfd, STRATA_POLL_IN, listen_cb, t);
    assert_non_null(lw);
    for (i = 0; i < N_CLIENTS; i++) {
        client *c = &t->clients[i];
        size_t j;

        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c->len = 1 + (size_t)((seed >> 33) % 200000);
        c->msg = malloc(c->len);
        assert_non_null(c->msg);
        for (j = 0; j < c->len; j++)
            c->msg[j] = (unsigned char)(j * 31 + (size_t)i);
        c->t = t;
        assert_int_equal(strata_tcp_connect("127.0.0.1", port, NULL, &c->s),
                         0);
        assert_non_null(strata_loop_watch(loop, c->s, STRATA_POLL_IN,
                                          client_cb, c));
    }
    wd = strata_loop_timer(loop, 30000, watchdog, &fired);
    assert_true(wd > 0);
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(fired, 0);
    assert_int_equal(t->done, N_CLIENTS);
    assert_int_equal(t->failed, 0);
    assert_int_equal(t->accepted, N_CLIENTS);
    for (i = 0; i < N_CLIENTS; i++)
        assert_int_equal(t->clients[i].got, t->clients[i].len);
    /* Each client saw EOF because its server side closed. */
    assert_int_equal(t->server_closed, N_CLIENTS);
    assert_int_equal(strata_loop_cancel(loop, wd), 0);
    strata_watch_remove(lw);
    assert_int_equal(strata_loop_run(loop), 0); /* nothing left */
    for (i = 0; i < N_CLIENTS; i++)
        free(t->clients[i].msg);
    close(t->lfd);
    free(t);
    strata_loop_free(loop);
}

/* ---- descriptors: shared, reused, refused by epoll, many ---------------- */

/* Two watches on one descriptor: each hears only what it waits for, and
 * removing one leaves the other working (epoll: one registration, the
 * union of their waits). */
static void test_shared_descriptor(void **state)
{
    strata_loop *loop = new_loop();
    int fds[2];
    counter ci, co;
    strata_watch *win, *wout;
    char b;

    (void)state;
    memset(&ci, 0, sizeof ci);
    memset(&co, 0, sizeof co);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    win = strata_loop_watch_fd(loop, fds[0], STRATA_POLL_IN, count_cb, &ci);
    wout = strata_loop_watch_fd(loop, fds[0], STRATA_POLL_OUT, count_cb,
                                &co);
    assert_non_null(win);
    assert_non_null(wout);
    assert_int_equal(strata_loop_run_once(loop, 0), 2); /* first runs */
    /* Room to write, nothing to read: only the OUT watch. */
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(co.calls, 2);
    assert_int_equal(co.last_events & (STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_OUT);
    assert_int_equal(ci.calls, 1);
    strata_watch_set_interest(wout, 0);
    assert_int_equal(run_for(loop, 30, NULL), 0);
    /* Data: only the IN watch, with IN only. */
    write_raw(fds[1], "x", 1);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(ci.calls, 2);
    assert_int_equal(ci.last_events & (STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_IN);
    assert_int_equal(read(fds[0], &b, 1), 1);
    /* The IN watch gone, the other takes IN over. */
    strata_watch_remove(win);
    write_raw(fds[1], "y", 1);
    assert_int_equal(run_for(loop, 30, NULL), 0);
    strata_watch_set_interest(wout, STRATA_POLL_IN);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(co.calls, 3);
    assert_true(co.last_events & STRATA_POLL_IN);
    assert_int_equal(ci.calls, 2);
    strata_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

/* A descriptor closed under its watch (against loop.h's advice) and its
 * number given to a new socket that gets a watch of its own: the new
 * watch hears the new socket (epoll: the stale registration is replaced,
 * not trusted), the old one too while it stays, and removing the old one
 * leaves the new one working. */
static void test_descriptor_number_reused(void **state)
{
    strata_loop *loop = new_loop();
    int a[2], b[2], num;
    counter c1, c2;
    strata_watch *w1, *w2;
    char x;

    (void)state;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    num = a[0];
    w1 = strata_loop_watch_fd(loop, num, STRATA_POLL_IN, count_cb, &c1);
    assert_non_null(w1);
    assert_int_equal(strata_loop_run_once(loop, 0), 1);
    close(a[0]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    if (b[0] != num) { /* the old number for the new socket */
        assert_int_equal(dup2(b[0], num), num);
        close(b[0]);
    }
    w2 = strata_loop_watch_fd(loop, num, STRATA_POLL_IN, count_cb, &c2);
    assert_non_null(w2);
    assert_int_equal(strata_loop_run_once(loop, 0), 1); /* w2's first */
    write_raw(b[1], "x", 1);
    assert_int_equal(strata_loop_run_once(loop, 1000), 2);
    assert_int_equal(c2.calls, 2);
    assert_true(c2.last_events & STRATA_POLL_IN);
    assert_int_equal(c1.calls, 2);
    assert_int_equal(read(num, &x, 1), 1);
    strata_watch_remove(w1);
    assert_int_equal(run_for(loop, 30, NULL), 0);
    write_raw(b[1], "y", 1);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(c2.calls, 3);
    assert_int_equal(c1.calls, 2);
    strata_watch_remove(w2);
    close(num);
    close(a[1]);
    close(b[1]);
    strata_loop_free(loop);
}

/* A regular file is always ready to poll(2); epoll refuses it, and the
 * loop then reports it the same way: the watch reads it to its end, then
 * sleeps once its interest is 0. */
typedef struct filer {
    int calls;
    size_t bytes;
    unsigned events;
} filer;

static void file_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    filer *f = ud;
    char buf[64];
    ssize_t r;

    (void)loop;
    f->calls++;
    f->events |= events;
    r = read(strata_watch_fd(w), buf, sizeof buf);
    if (r > 0)
        f->bytes += (size_t)r;
    else
        strata_watch_set_interest(w, 0);
}

static void test_regular_file(void **state)
{
    strata_loop *loop = new_loop();
    FILE *fp = tmpfile();
    filer f;
    int rounds = 0;

    (void)state;
    assert_non_null(fp);
    memset(&f, 0, sizeof f);
    assert_int_equal(fwrite("hello", 1, 5, fp), 5);
    assert_int_equal(fflush(fp), 0);
    assert_int_equal(lseek(fileno(fp), 0, SEEK_SET), 0);
    assert_non_null(strata_loop_watch_fd(loop, fileno(fp), STRATA_POLL_IN,
                                         file_cb, &f));
    assert_int_equal(run_for(loop, 100, &rounds), 2);
    assert_int_equal(f.bytes, 5);
    assert_true(f.events & STRATA_POLL_IN);
    assert_true(rounds <= 4);
    strata_loop_free(loop);
    fclose(fp);
}

/* Many idle watches: a descriptor that becomes readable runs its watch
 * alone, the others are not called, and the loop sleeps in between. */
#define N_IDLE 2000

typedef struct idle_test {
    int fds[N_IDLE][2];
    int calls[N_IDLE];
    strata_watch *w[N_IDLE];
} idle_test;

static void idle_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    int *calls = ud;
    char buf[16];

    (void)loop;
    (void)events;
    (*calls)++;
    while (read(strata_watch_fd(w), buf, sizeof buf) > 0)
        ;
}

/* Soft descriptor limit up to what is needed (or the hard limit). */
static int enough_fds(rlim_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= need)
        return 1;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need
                      ? need : rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need;
}

static void test_many_idle_watches(void **state)
{
    static const int pick[] = {0, 1999, 1000, 7, 1000};
    strata_loop *loop;
    idle_test *t = calloc(1, sizeof *t);
    int i, k, rounds = 0;

    (void)state;
    assert_non_null(t);
    if (!enough_fds(2 * N_IDLE + 64)) {
        free(t);
        skip();
    }
    loop = new_loop();
    for (i = 0; i < N_IDLE; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t->fds[i]), 0);
        assert_int_equal(fcntl(t->fds[i][0], F_SETFL, O_NONBLOCK), 0);
        t->w[i] = strata_loop_watch_fd(loop, t->fds[i][0], STRATA_POLL_IN,
                                       idle_cb, &t->calls[i]);
        assert_non_null(t->w[i]);
    }
    assert_int_equal(strata_loop_run_once(loop, 0), N_IDLE);
    assert_int_equal(run_for(loop, 50, &rounds), 0);
    assert_true(rounds <= 2);
    for (k = 0; k < (int)(sizeof pick / sizeof pick[0]); k++) {
        int before = t->calls[pick[k]];

        write_raw(t->fds[pick[k]][1], "x", 1);
        assert_int_equal(strata_loop_run_once(loop, 1000), 1);
        assert_int_equal(t->calls[pick[k]], before + 1);
    }
    /* Half of them go (outside a round); the rest still hear data. */
    for (i = 0; i < N_IDLE; i += 2)
        strata_watch_remove(t->w[i]);
    write_raw(t->fds[0][1], "x", 1);
    write_raw(t->fds[1][1], "x", 1);
    assert_int_equal(strata_loop_run_once(loop, 1000), 1);
    assert_int_equal(t->calls[1], 2);
    assert_int_equal(t->calls[0], 2); /* removed: not called */
    strata_loop_free(loop);
    for (i = 0; i < N_IDLE; i++) {
        close(t->fds[i][0]);
        close(t->fds[i][1]);
    }
    free(t);
}

/* An id outlives its timer: once the timer fired or was cancelled, the id
 * cancels nothing, not even a new timer that took its place; thousands of
 * timers cancelled in a scrambled order leave the rest in order. */
typedef struct many_t {
    int fired[4000];
    int n;
    int last;
    int out_of_order;
} many_t;

typedef struct many_ctx {
    many_t *m;
    int i;
} many_ctx;

static many_ctx many_ctxs[4000];
static unsigned long many_ids[4000];

static void many_fire(strata_loop *loop, void *ud)
{
    many_ctx *c = ud;

    (void)loop;
    if (c->i < c->m->last)
        c->m->out_of_order = 1;
    c->m->last = c->i;
    c->m->fired[c->i] = 1;
    c->m->n++;
}

static void many_add(strata_loop *loop, void *ud)
{
    many_t *m = ud;
    int i;

    for (i = 0; i < 4000; i++) {
        many_ctxs[i].m = m;
        many_ctxs[i].i = i;
        /* delays grow with i, several per millisecond */
        many_ids[i] = strata_loop_timer(loop, (uint64_t)(i / 200),
                                        many_fire, &many_ctxs[i]);
        assert_true(many_ids[i] > 0);
    }
    /* cancel the multiples of 3, in a scrambled order */
    for (i = 0; i < 4000; i++) {
        int j = i * 2749 % 4000; /* 2749 is prime to 4000 */

        if (j % 3 == 0)
            assert_int_equal(strata_loop_cancel(loop, many_ids[j]), 0);
    }
}

static void test_timer_stale_ids(void **state)
{
    strata_loop *loop = new_loop();
    many_t *m = calloc(1, sizeof *m);
    tlog log;
    tctx t = {&log, 7};
    unsigned long a, b, c;
    int i;

    (void)state;
    assert_non_null(m);
    memset(&log, 0, sizeof log);
    a = strata_loop_timer(loop, 100000, log_timer, &t);
    assert_true(a > 0);
    assert_int_equal(strata_loop_cancel(loop, a), 0);
    b = strata_loop_timer(loop, 0, log_timer, &t);
    assert_true(b > 0 && b != a);
    assert_int_equal(strata_loop_cancel(loop, a), STRATA_ERR_ARG);
    assert_true(strata_loop_run_once(loop, 1000) >= 0);
    assert_int_equal(log.n, 1);                          /* b fired */
    c = strata_loop_timer(loop, 0, log_timer, &t);
    assert_true(c > 0 && c != a && c != b);
    assert_int_equal(strata_loop_cancel(loop, b), STRATA_ERR_ARG);
    assert_int_equal(strata_loop_cancel(loop, a), STRATA_ERR_ARG);
    assert_true(strata_loop_run_once(loop, 1000) >= 0);
    assert_int_equal(log.n, 2);                          /* c fired */
    /* Many. */
    m->last = -1;
    assert_true(strata_loop_timer(loop, 0, many_add, m) > 0);
    assert_int_equal(strata_loop_run(loop), 0);
    assert_int_equal(m->n, 4000 - 1334);
    assert_int_equal(m->out_of_order, 0);
    for (i = 0; i < 4000; i++)
        assert_int_equal(m->fired[i], i % 3 != 0);
    for (i = 0; i < 4000; i++)
        assert_int_equal(strata_loop_cancel(loop, many_ids[i]),
                         STRATA_ERR_ARG);
    free(m);
    strata_loop_free(loop);
}

/* ---- backends ----------------------------------------------------------- */

/* strata_loop_new takes epoll on Linux unless STRATA_LOOP_POLL says poll;
 * strata_loop_new_backend takes what it is asked, or refuses. */
static void expect_default(const char *want)
{
    strata_loop *loop = strata_loop_new(NULL);

    assert_non_null(loop);
    assert_string_equal(strata_loop_backend(loop), want);
    strata_loop_free(loop);
}

static void test_backend_choice(void **state)
{
    const char *was = getenv("STRATA_LOOP_POLL");
    char *saved = was != NULL ? strdup(was) : NULL;
#ifdef __linux__
    const char *best = "epoll";
#else
    const char *best = "poll";
#endif

    (void)state;
    assert_int_equal(setenv("STRATA_LOOP_POLL", "1", 1), 0);
    expect_default("poll");
    assert_int_equal(setenv("STRATA_LOOP_POLL", "0", 1), 0);
    expect_default(best);
    assert_int_equal(setenv("STRATA_LOOP_POLL", "", 1), 0);
    expect_default(best);
    assert_int_equal(unsetenv("STRATA_LOOP_POLL"), 0);
    expect_default(best);
    if (saved != NULL) {
        assert_int_equal(setenv("STRATA_LOOP_POLL", saved, 1), 0);
        free(saved);
    }
    assert_null(strata_loop_new_backend(NULL, 99));
    assert_null(strata_loop_backend(NULL));
#ifndef __linux__
    assert_null(strata_loop_new_backend(NULL, STRATA_LOOP_EPOLL));
#endif
}

/* ---- allocator ---------------------------------------------------------- */

typedef struct counting {
    long live;
    long allocs;
    long fail_after; /* -1: never */
} counting;

static void *c_alloc(void *ud, size_t n)
{
    counting *c = ud;

    if (c->fail_after >= 0 && c->allocs >= c->fail_after)
        return NULL;
    c->allocs++;
    c->live++;
    return malloc(n);
}

static void *c_realloc(void *ud, void *p, size_t n)
{
    counting *c = ud;

    if (c->fail_after >= 0 && c->allocs >= c->fail_after)
        return NULL;
    c->allocs++;
    if (p == NULL)
        c->live++;
    return realloc(p, n);
}

static void c_free(void *ud, void *p)
{
    counting *c = ud;

    if (p != NULL)
        c->live--;
    free(p);
}

static void test_allocator(void **state)
{
    counting cnt = {0, 0, -1};
    strata_allocator al = {c_alloc, c_realloc, c_free, &cnt};
    strata_loop *loop;
    counter c;
    int i;

    (void)state;
    memset(&c, 0, sizeof c);
    loop = strata_loop_new_backend(&al, backend);
    assert_non_null(loop);
    for (i = 0; i < 40; i++)
        assert_non_null(strata_loop_watch_fd(loop, 0, 0, count_cb, &c));
    for (i = 0; i < 40; i++)
        assert_true(strata_loop_timer(loop, 100000, noop_timer, NULL) > 0);
    assert_int_equal(strata_loop_timer(loop, 1, NULL, NULL), 0);
    assert_true(cnt.live > 0);
    /* The allocator refuses from now on: failures are values. */
    cnt.fail_after = cnt.allocs;
    assert_null(strata_loop_watch_fd(loop, 0, 0, count_cb, &c));
    for (i = 0; i < 1000; i++)
        if (strata_loop_timer(loop, 100000, noop_timer, NULL) == 0)
            break;
    assert_true(i < 1000);
    /* What exists still works. */
    assert_int_equal(strata_loop_run_once(loop, 0), 40);
    strata_loop_free(loop);
    assert_int_equal(cnt.live, 0);
    assert_null(strata_loop_new_backend(&al, backend));
}

static int on_epoll(void **state)
{
    (void)state;
    backend = STRATA_LOOP_EPOLL;
    return 0;
}

static int on_poll(void **state)
{
    (void)state;
    backend = STRATA_LOOP_POLL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order_and_cancel),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_timer_inside_callback),
        cmocka_unit_test(test_run_once_timeout_from_timer),
        cmocka_unit_test(test_timer_stale_ids),
        cmocka_unit_test(test_idle_no_busy_loop),
        cmocka_unit_test(test_optimistic_rerun),
        cmocka_unit_test(test_need_write_waits_for_wants),
        cmocka_unit_test(test_set_interest),
        cmocka_unit_test(test_peer_close),
        cmocka_unit_test(test_closed_descriptor),
        cmocka_unit_test(test_wake_fdless),
        cmocka_unit_test(test_pingpong_pipe),
        cmocka_unit_test(test_remove_inside_callback),
        cmocka_unit_test(test_reentry_and_stop),
        cmocka_unit_test(test_watch_listening_fd),
        cmocka_unit_test(test_shared_descriptor),
        cmocka_unit_test(test_descriptor_number_reused),
        cmocka_unit_test(test_regular_file),
        cmocka_unit_test(test_many_idle_watches),
        cmocka_unit_test(test_echo_many_clients),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_backend_choice),
    };
    int failed = 0;

    alarm(240); /* a hung loop fails the run instead of stalling it */
#ifdef __linux__
    failed += cmocka_run_group_tests_name("loop on epoll", tests, on_epoll,
                                          NULL);
#endif
    failed += cmocka_run_group_tests_name("loop on poll", tests, on_poll,
                                          NULL);
    return failed;
}
