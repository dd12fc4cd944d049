/* The write buffer: gathering and its accounting against a scripted lower
 * stream, then identity over a real socketpair and over the pipe pair's
 * hostile schedule, then the property harness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/socket.h>
#include <strata/wbuf.h>

#include "harness.h"

#define WAIT_MS 5000

/* A lower stream that records what reaches it. Each sendv takes the next
 * script entry: > 0 the most bytes it accepts, < 0 a status to return;
 * past the script it accepts everything. A status other than a NEED code
 * sticks, as the contract wants of a failed stream. */
typedef struct mock {
    strata_stream base;
    uint8_t got[8192];
    size_t got_len;
    ssize_t script[8];
    int nscript, pos;
    int calls, last_n, flushes, shutdowns, closes;
    unsigned last_flags;
    ssize_t sticky;
    const char *in;      /* what recv hands out, with in_flags */
    unsigned in_flags;
    unsigned ready;      /* what poll says */
} mock;

static ssize_t m_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags)
{
    mock *m = (mock *)s;
    size_t n;

    if (m->in == NULL)
        return STRATA_NEED_READ;
    n = strlen(m->in) < len ? strlen(m->in) : len;
    memcpy(buf, m->in, n);
    *flags = m->in_flags;
    m->in = NULL;
    return (ssize_t)n;
}

static ssize_t m_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags)
{
    mock *m = (mock *)s;
    size_t budget = (size_t)-1, moved = 0;
    int i;

    m->calls++;
    m->last_n = n;
    m->last_flags = flags;
    if (m->sticky != 0)
        return m->sticky;
    if (strata_iov_len(iov, n) == 0)
        return 0;
    if (m->pos < m->nscript) {
        ssize_t step = m->script[m->pos++];

        if (step < 0) {
            if (step != STRATA_NEED_READ && step != STRATA_NEED_WRITE)
                m->sticky = step;
            return step;
        }
        budget = (size_t)step;
    }
    for (i = 0; i < n && moved < budget; i++) {
        size_t k = iov[i].iov_len < budget - moved ? iov[i].iov_len
                                                   : budget - moved;

        assert_true(m->got_len + k <= sizeof m->got);
        memcpy(m->got + m->got_len, iov[i].iov_base, k);
        m->got_len += k;
        moved += k;
    }
    return (ssize_t)moved;
}

static int m_flush(strata_stream *s)
{
    ((mock *)s)->flushes++;
    return 0;
}

static int m_shutdown(strata_stream *s)
{
    ((mock *)s)->shutdowns++;
    ((mock *)s)->sticky = STRATA_ERR_STATE;
    return 0;
}

static unsigned m_poll(strata_stream *s, unsigned events)
{
    return ((mock *)s)->ready & events;
}

static void m_close(strata_stream *s)
{
    ((mock *)s)->closes++;
}

static const strata_stream_ops mock_ops = {
    "mock", m_recv, m_sendv, m_flush, m_shutdown, m_poll, NULL, NULL, m_close,
};

static void mock_init(mock *m)
{
    memset(m, 0, sizeof *m);
    strata_stream_init(&m->base, &mock_ops, NULL, NULL);
}

static void script(mock *m, const ssize_t *steps, int n)
{
    memcpy(m->script, steps, (size_t)n * sizeof *steps);
    m->nscript = n;
    m->pos = 0;
}

static void fill(uint8_t *p, size_t n, uint8_t first)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(first + i * 7);
}

static void test_small_sends_gathered(void **state)
{
    mock m;
    strata_stream *w;
    uint8_t a[5], b[5], c[5];

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 64, 16, NULL);
    assert_non_null(w);
    assert_string_equal(strata_name(w), "wbuf");
    fill(a, 5, 1);
    fill(b, 5, 50);
    fill(c, 5, 100);
    assert_int_equal(strata_send(w, a, 5, 0), 5);
    assert_int_equal(strata_wbuf_pending(w), 5);
    assert_int_equal(strata_write(w, b, 5), 5);
    assert_int_equal(strata_wbuf_pending(w), 10);
    assert_int_equal(strata_send(w, c, 5, 0), 5);
    assert_int_equal(strata_wbuf_pending(w), 15);
    assert_int_equal(m.calls, 0); /* nothing went down yet */
    assert_int_equal(strata_flush(w), 0);
    assert_int_equal(strata_wbuf_pending(w), 0);
    assert_int_equal(m.calls, 1); /* in one write */
    assert_int_equal(m.flushes, 1); /* and the lower stream was flushed */
    assert_int_equal(m.got_len, 15);
    assert_memory_equal(m.got, a, 5);
    assert_memory_equal(m.got + 5, b, 5);
    assert_memory_equal(m.got + 10, c, 5);
    assert_int_equal(strata_flush(w), 0); /* nothing left: no write */
    assert_int_equal(m.calls, 1);
    strata_free(w);
    assert_int_equal(m.closes, 1); /* the lower stream is owned */
}

static void test_large_send_with_prefix(void **state)
{
    mock m;
    strata_stream *w;
    uint8_t big[40];
    struct iovec iov[2];

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 64, 16, NULL);
    fill(big, sizeof big, 9);
    assert_int_equal(strata_send(w, "abc", 3, 0), 3);
    iov[0].iov_base = big;
    iov[0].iov_len = 20;
    iov[1].iov_base = big + 20;
    iov[1].iov_len = 20;
    assert_int_equal(strata_sendv(w, iov, 2,
                                  STRATA_MSG_END | STRATA_MSG_TEXT), 40);
    /* One sendv: the gathered prefix, then the caller's iovecs uncopied;
     * the flags went down as given. */
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.last_n, 3);
    assert_int_equal(m.last_flags, STRATA_MSG_END | STRATA_MSG_TEXT);
    assert_int_equal(strata_wbuf_pending(w), 0);
    assert_int_equal(m.got_len, 43);
    assert_memory_equal(m.got, "abc", 3);
    assert_memory_equal(m.got + 3, big, 40);
    /* With nothing gathered a large send is the caller's own sendv. */
    assert_int_equal(strata_send(w, big, 16, 0), 16);
    assert_int_equal(m.calls, 2);
    assert_int_equal(m.last_n, 1);
    strata_free(w);
}

static void test_overflow_forces_write(void **state)
{
    mock m;
    strata_stream *w;
    uint8_t p[20];
    const ssize_t blocked[] = {STRATA_NEED_WRITE};
    int i;

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 64, 32, NULL);
    fill(p, sizeof p, 3);
    for (i = 0; i < 3; i++)
        assert_int_equal(strata_send(w, p, 20, 0), 20);
    assert_int_equal(m.calls, 0);
    /* 60 + 20 > 64: everything goes down at once. */
    assert_int_equal(strata_send(w, p, 20, 0), 20);
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.got_len, 80);
    assert_int_equal(strata_wbuf_pending(w), 0);
    /* Against a blocked lower stream nothing moves: retry the same send. */
    for (i = 0; i < 3; i++)
        assert_int_equal(strata_send(w, p, 20, 0), 20);
    script(&m, blocked, 1);
    assert_int_equal(strata_send(w, p, 20, 0), STRATA_NEED_WRITE);
    assert_int_equal(strata_wbuf_pending(w), 60);
    assert_int_equal(m.got_len, 80);
    assert_true(strata_wants(w) & STRATA_WANT_WRITE);
    assert_int_equal(strata_send(w, p, 20, 0), 20);
    assert_int_equal(strata_wbuf_pending(w), 0);
    assert_int_equal(strata_wants(w), 0);
    assert_int_equal(m.got_len, 160);
    for (i = 0; i < 8; i++)
        assert_memory_equal(m.got + 20 * i, p, 20);
    strata_free(w);
}

/* Partial writes: the gathered bytes count first, the return value counts
 * only the caller's bytes, and a round that moved only gathered bytes goes
 * on instead of returning 0. */
static void test_partial_accounting(void **state)
{
    const ssize_t s1[] = {4, STRATA_NEED_WRITE};
    const ssize_t s2[] = {6, STRATA_NEED_WRITE};
    const ssize_t s3[] = {30};
    const ssize_t s4[] = {15};
    const ssize_t s5[] = {4};
    uint8_t g[10], big[100], expect[400];
    size_t elen = 0;
    mock m;
    strata_stream *w;

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 16, 12, NULL);
    fill(g, sizeof g, 200);
    fill(big, sizeof big, 11);
    assert_int_equal(strata_send(w, g, 10, 0), 10);
    /* 4 gathered bytes go, then the lower stream blocks. */
    script(&m, s1, 2);
    assert_int_equal(strata_send(w, big, 100, 0), STRATA_NEED_WRITE);
    assert_int_equal(strata_wbuf_pending(w), 6);
    assert_int_equal(m.got_len, 4);
    /* Retry: exactly the gathered rest goes, then a block: NEED, not 0. */
    script(&m, s2, 2);
    assert_int_equal(strata_send(w, big, 100, 0), STRATA_NEED_WRITE);
    assert_int_equal(strata_wbuf_pending(w), 0);
    assert_int_equal(m.got_len, 10);
    /* Retry: part of the caller's bytes, the rest continues. */
    script(&m, s3, 1);
    assert_int_equal(strata_send(w, big, 100, 0), 30);
    assert_int_equal(strata_send(w, big + 30, 70, 0), 70);
    memcpy(expect, g, 10);
    memcpy(expect + 10, big, 100);
    elen = 110;
    /* Gathered and caller bytes in one write that stops inside the
     * caller's part. */
    assert_int_equal(strata_send(w, g, 10, 0), 10);
    script(&m, s4, 1);
    assert_int_equal(strata_send(w, big, 100, 0), 5);
    assert_int_equal(strata_wbuf_pending(w), 0);
    memcpy(expect + elen, g, 10);
    memcpy(expect + elen + 10, big, 5);
    elen += 15;
    /* A small send that does not fit: the write moved only gathered
     * bytes, which made room, so the send is gathered after all. */
    assert_int_equal(strata_send(w, g, 7, 0), 7);
    assert_int_equal(strata_send(w, g, 7, 0), 7);
    script(&m, s5, 1);
    assert_int_equal(strata_send(w, big, 5, 0), 5);
    assert_int_equal(strata_wbuf_pending(w), 15);
    assert_int_equal(strata_flush(w), 0);
    memcpy(expect + elen, g, 7);
    memcpy(expect + elen + 7, g, 7);
    memcpy(expect + elen + 14, big, 5);
    elen += 19;
    assert_int_equal(m.got_len, elen);
    assert_memory_equal(m.got, expect, elen);
    strata_free(w);
}

static void test_need_read_and_failure(void **state)
{
    const ssize_t needr[] = {STRATA_NEED_READ};
    const ssize_t broken[] = {STRATA_ERR_IO};
    mock m;
    strata_stream *w;

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 64, 16, NULL);
    /* A lower layer that must read before it can write (TLS). */
    assert_int_equal(strata_send(w, "abcd", 4, 0), 4);
    script(&m, needr, 1);
    assert_int_equal(strata_flush(w), STRATA_NEED_READ);
    assert_int_equal(strata_send(w, "ef", 2, 0), 2);
    assert_int_equal(strata_wants(w), STRATA_WANT_READ);
    /* A failed lower stream: the error comes back and nothing more is
     * gathered, so the wbuf stays failed too. */
    script(&m, broken, 1);
    assert_int_equal(strata_flush(w), STRATA_ERR_IO);
    assert_int_equal(strata_send(w, "g", 1, 0), STRATA_ERR_IO);
    assert_int_equal(strata_flush(w), STRATA_ERR_IO);
    assert_int_equal(strata_poll(w, STRATA_POLL_OUT), 0);
    strata_free(w);
}

static void test_recv_and_poll_pass_through(void **state)
{
    mock m;
    strata_stream *w;
    unsigned flags = 0;
    char buf[16];

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 64, 0, NULL);
    m.in = "hello";
    m.in_flags = STRATA_MSG_END | STRATA_MSG_TEXT;
    assert_int_equal(strata_recv(w, buf, sizeof buf, &flags), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(flags, STRATA_MSG_END | STRATA_MSG_TEXT);
    assert_int_equal(strata_recv(w, buf, sizeof buf, &flags),
                     STRATA_NEED_READ);
    assert_int_equal(strata_wants(w), STRATA_WANT_READ);
    /* Room in the buffer is a send that makes progress, whatever the
     * transport says; input readiness is the lower stream's. */
    m.ready = STRATA_POLL_IN;
    assert_int_equal(strata_poll(w, STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_IN | STRATA_POLL_OUT);
    assert_int_equal(strata_fd(w), -1);
    strata_free(w);
}

static void test_arguments_and_storage(void **state)
{
    uint8_t storage[32];
    strata_wbuf wb;
    mock m;

    (void)state;
    mock_init(&m);
    assert_null(strata_wbuf_new(NULL, 64, 0, NULL));
    assert_null(strata_wbuf_new(&m.base, 0, 0, NULL));
    assert_int_equal(strata_wbuf_pending(NULL), 0);
    assert_int_equal(strata_wbuf_pending(&m.base), 0);
    /* Caller storage; threshold 0 means cap / 4. */
    strata_wbuf_init(&wb, &m.base, storage, sizeof storage, 0);
    assert_int_equal(wb.threshold, 8);
    assert_int_equal(strata_send(&wb.base, "1234567", 7, 0), 7);
    assert_int_equal(strata_wbuf_pending(&wb.base), 7);
    assert_int_equal(strata_send(&wb.base, "12345678", 8, 0), 8);
    assert_int_equal(strata_wbuf_pending(&wb.base), 0);
    assert_int_equal(m.calls, 1);
    /* Zero-length sends: 0, gathered bytes untouched; with nothing
     * gathered the lower stream sees the send. */
    assert_int_equal(strata_send(&wb.base, "x", 0, STRATA_MSG_END), 0);
    assert_int_equal(m.calls, 2);
    assert_int_equal(strata_send(&wb.base, "x", 1, 0), 1);
    assert_int_equal(strata_send(&wb.base, "x", 0, STRATA_MSG_END), 0);
    assert_int_equal(m.calls, 2);
    assert_int_equal(strata_send(&wb.base, NULL, 1, 0), STRATA_ERR_ARG);
    /* shutdown flushes first, then shuts the lower stream; sends after it
     * are refused, small ones included. */
    assert_int_equal(strata_shutdown(&wb.base), 0);
    assert_int_equal(m.shutdowns, 1);
    assert_int_equal(m.got_len, 16);
    assert_int_equal(strata_send(&wb.base, "y", 1, 0), STRATA_ERR_STATE);
    assert_int_equal(strata_wbuf_pending(&wb.base), 0);
    /* Caller storage owns nothing: neither the buffer nor the lower. */
    strata_free(&wb.base);
    assert_int_equal(m.closes, 0);
}

/* Socket helpers. */
static short wait_fd(int fd, short events)
{
    struct pollfd p;
    int r;

    p.fd = fd;
    p.events = events;
    p.revents = 0;
    do
        r = poll(&p, 1, WAIT_MS);
    while (r < 0 && errno == EINTR);
    assert_int_equal(r, 1);
    return p.revents;
}

/* A wbuf over one end of a socketpair whose send buffer is small, and the
 * other end as a plain socket stream. */
static void wbuf_socketpair(size_t cap, size_t threshold, strata_stream **w,
                            strata_stream **peer)
{
    int sv[2], small = 4096;
    strata_stream *s;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small,
                                sizeof small), 0);
    s = strata_socket_new(sv[0], NULL);
    *peer = strata_socket_new(sv[1], NULL);
    assert_non_null(s);
    assert_non_null(*peer);
    *w = strata_wbuf_new(s, cap, threshold, NULL);
    assert_non_null(*w);
}

/* Read whatever the peer has now; returns the bytes added, or -1 at EOF. */
static ssize_t drain_peer(strata_stream *peer, uint8_t *in, size_t *got,
                          size_t cap, int tries)
{
    size_t before = *got;

    while (tries > 0 && *got < cap) {
        ssize_t r = strata_read(peer, in + *got, cap - *got);

        if (r > 0) {
            *got += (size_t)r;
            continue;
        }
        if (r == STRATA_EOF)
            return -1;
        assert_true(r == STRATA_NEED_READ || r == STRATA_NEED_WRITE);
        tries--;
    }
    return (ssize_t)(*got - before);
}

static void test_flush_against_full_peer(void **state)
{
    enum { CAP = 256 * 1024 };
    uint8_t *out = malloc(CAP), *in = malloc(CAP);
    size_t sent = 0, got = 0;
    strata_stream *w, *peer;
    ssize_t r;
    int i;

    (void)state;
    assert_non_null(out);
    assert_non_null(in);
    fill(out, CAP, 5);
    wbuf_socketpair(4096, 1024, &w, &peer);
    /* Large sends go straight down until the socket is full. */
    while ((r = strata_send(w, out + sent, 2048, 0)) > 0)
        sent += (size_t)r;
    assert_int_equal(r, STRATA_NEED_WRITE);
    assert_true(sent + 4096 < CAP);
    /* Small ones are still gathered, the socket being full or not. */
    for (i = 0; i < 10; i++) {
        assert_int_equal(strata_send(w, out + sent, 100, 0), 100);
        sent += 100;
    }
    assert_int_equal(strata_wbuf_pending(w), 1000);
    assert_int_equal(strata_flush(w), STRATA_NEED_WRITE);
    assert_true(strata_wants(w) & STRATA_WANT_WRITE);
    /* A gathered send after that clears the generic record, but the
     * bytes still wait for the socket: wants says so. */
    assert_int_equal(strata_send(w, out + sent, 100, 0), 100);
    sent += 100;
    assert_int_equal(strata_wants(w), STRATA_WANT_WRITE);
    assert_true(strata_poll(w, STRATA_POLL_OUT) & STRATA_POLL_OUT);
    /* The reader drains; the flush then finishes. */
    for (i = 0; (r = strata_flush(w)) != 0; i++) {
        assert_int_equal(r, STRATA_NEED_WRITE);
        assert_true(i < 1000);
        wait_fd(strata_fd(peer), POLLIN);
        drain_peer(peer, in, &got, CAP, 1);
        wait_fd(strata_fd(w), POLLOUT);
    }
    assert_int_equal(strata_wbuf_pending(w), 0);
    assert_int_equal(strata_wants(w), 0);
    assert_int_equal(strata_shutdown(w), 0);
    while (drain_peer(peer, in, &got, CAP, 1) >= 0)
        wait_fd(strata_fd(peer), POLLIN);
    assert_int_equal(got, sent);
    assert_memory_equal(in, out, sent);
    strata_free(w);
    strata_free(peer);
    free(out);
    free(in);
}

/* Random sends (sizes 0..1500 around a 1 KiB buffer with a 256-byte
 * threshold, random flags and flushes) from w, read by peer, then a
 * shutdown: the peer must see exactly the bytes, then EOF. Without a
 * descriptor (the pipe pair) the loop simply retries. */
static void identity_run(strata_stream *w, strata_stream *peer,
                         uint64_t seed, size_t total)
{
    /* One spare byte in `in`, so bytes beyond the total show up. */
    uint8_t *out = malloc(total), *in = malloc(total + 1);
    uint64_t rng = seed;
    size_t sent = 0, got = 0, rounds = 0;
    ssize_t r;
    int fd = strata_fd(w);

    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < total; i++)
        out[i] = (uint8_t)strata_rand(&rng);
    while (sent < total) {
        size_t n = (size_t)(strata_rand(&rng) % 1501);
        unsigned flags = strata_rand(&rng) % 2 ? STRATA_MSG_END : 0;

        if (n > total - sent)
            n = total - sent;
        assert_true(++rounds < 10000000);
        r = strata_send(w, out + sent, n, flags);
        if (r >= 0) {
            assert_true(r > 0 || n == 0);
            sent += (size_t)r;
        } else {
            assert_true(r == STRATA_NEED_WRITE || r == STRATA_NEED_READ);
        }
        if (r < 0 || strata_rand(&rng) % 4 == 0)
            drain_peer(peer, in, &got, total + 1, 3);
        if (strata_rand(&rng) % 16 == 0)
            (void)strata_flush(w);
        if (r < 0 && fd >= 0)
            wait_fd(fd, POLLOUT);
    }
    while ((r = strata_shutdown(w)) != 0) {
        assert_true(r == STRATA_NEED_WRITE || r == STRATA_NEED_READ);
        assert_true(++rounds < 10000000);
        drain_peer(peer, in, &got, total + 1, 3);
    }
    assert_int_equal(strata_wbuf_pending(w), 0);
    while (drain_peer(peer, in, &got, total + 1, 3) >= 0) {
        assert_true(++rounds < 10000000);
        if (strata_fd(peer) >= 0)
            wait_fd(strata_fd(peer), POLLIN);
    }
    assert_int_equal(got, total);
    assert_memory_equal(in, out, total);
    assert_int_equal(strata_send(w, out, 1, 0), STRATA_ERR_STATE);
    free(out);
    free(in);
}

static void test_identity_socketpair(void **state)
{
    strata_stream *w, *peer;

    (void)state;
    wbuf_socketpair(1024, 256, &w, &peer);
    identity_run(w, peer, strata_test_seed(), 512 * 1024);
    strata_free(w);
    strata_free(peer);
}

static void test_identity_pipe(void **state)
{
    strata_pipe_opts po;
    strata_stream *a, *b, *w;
    uint64_t seed = strata_test_seed();

    (void)state;
    memset(&po, 0, sizeof po);
    po.capacity = 4096;
    po.max_chunk = 700;
    po.need_percent = 20;
    po.seed = seed;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    w = strata_wbuf_new(a, 1024, 256, NULL);
    assert_non_null(w);
    assert_int_equal(strata_fd(w), -1);
    identity_run(w, b, seed, 256 * 1024);
    strata_free(w);
    strata_free(b);
}

static int build_wbuf(strata_stream *end_a, strata_stream *end_b,
                      strata_stream **top_a, strata_stream **top_b, void *ud)
{
    (void)ud;
    *top_a = strata_wbuf_new(end_a, 256, 64, NULL);
    *top_b = end_b;
    if (*top_a == NULL) {
        strata_free(end_a);
        strata_free(end_b);
        return STRATA_ERR_NOMEM;
    }
    return 0;
}

/* The harness flushes the sender when it has nothing else to send and
 * after NEED codes, and shuts it down at the end: through a wbuf on end
 * a the bytes must arrive intact both ways (recv passes through it). */
static void test_property(void **state)
{
    strata_prop_opts o;
    char err[256];

    (void)state;
    memset(&o, 0, sizeof o);
    o.seed = strata_test_seed();
    o.messages = 10000;
    o.max_size = 300;
    o.max_fragment = 100;
    o.max_read = 512;
    o.byte_stream = 1;
    o.duplex = 1;
    o.pipe.capacity = 2048;
    o.pipe.max_chunk = 13;
    o.pipe.need_percent = 20;
    o.pipe.seed = o.seed;
    if (strata_prop_run(&o, build_wbuf, NULL, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static void test_allocator(void **state)
{
    strata_test_counter cnt = {0, 0, 0, 0};
    strata_allocator al = strata_test_allocator(&cnt);
    strata_stream *w;
    mock m;

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 128, 0, &al);
    assert_non_null(w);
    assert_int_equal(cnt.live, 2);
    strata_free(w);
    assert_int_equal(cnt.live, 0);
    /* A refusal leaves the lower stream to the caller. */
    cnt.refuse = 1;
    assert_null(strata_wbuf_new(&m.base, 128, 0, &al));
    assert_int_equal(m.closes, 1); /* only the free above */
    assert_int_equal(cnt.live, 0);
}

/* reserve/commit: room in the gather buffer for small records only, after
 * compacting if need be, never past the capacity; other streams get NULL. */
static void test_reserve_commit(void **state)
{
    static const ssize_t part[] = {10};
    mock m;
    strata_stream *w;
    uint8_t *p;

    (void)state;
    mock_init(&m);
    w = strata_wbuf_new(&m.base, 32, 16, NULL);
    assert_null(strata_wbuf_reserve(&m.base, 4)); /* not a wbuf */
    assert_null(strata_wbuf_reserve(NULL, 4));
    assert_null(strata_wbuf_reserve(w, 16));      /* not below threshold */
    p = strata_wbuf_reserve(w, 15);
    assert_non_null(p);
    memcpy(p, "0123456789abcde", 15);
    strata_wbuf_commit(w, 15);
    p = strata_wbuf_reserve(w, 15);
    memcpy(p, "fghijklmnopqrst", 15);
    strata_wbuf_commit(w, 15);
    assert_int_equal(strata_wbuf_pending(w), 30);
    assert_null(strata_wbuf_reserve(w, 5));       /* would not fit */
    strata_wbuf_commit(w, 5);                     /* past the room: ignored */
    assert_int_equal(strata_wbuf_pending(w), 30);
    script(&m, part, 1);                          /* 10 bytes go down */
    assert_int_equal(strata_flush(w), 0);
    assert_int_equal(m.got_len, 30);
    assert_memory_equal(m.got, "0123456789abcdefghijklmnopqrst", 30);
    assert_int_equal(m.calls, 2);                 /* 10, then the rest */
    strata_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_sends_gathered),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_large_send_with_prefix),
        cmocka_unit_test(test_overflow_forces_write),
        cmocka_unit_test(test_partial_accounting),
        cmocka_unit_test(test_need_read_and_failure),
        cmocka_unit_test(test_recv_and_poll_pass_through),
        cmocka_unit_test(test_arguments_and_storage),
        cmocka_unit_test(test_flush_against_full_peer),
        cmocka_unit_test(test_identity_socketpair),
        cmocka_unit_test(test_identity_pipe),
        cmocka_unit_test(test_property),
        cmocka_unit_test(test_allocator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
