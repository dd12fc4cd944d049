/* Property test of the h2 layer: a strata client and a strata server over
 * the seeded pipe schedule, 100 streams at once, each with a request body
 * of random size (a few up to 4 MiB) that the server answers with a body
 * of the same length, sent only as fast as the request arrives (an echo
 * through a known transform, so a byte that reached the wrong stream or
 * came back unchanged is caught). Both legs are checked byte for byte;
 * half the answers end with trailers, some streams are reset halfway by
 * either side (the others must not notice), and the bytes a sender got
 * ahead of its reader never exceed the reader's window. Windows of 1 byte,
 * the default 64 KiB and 16 MiB (with readers slow enough to use it);
 * small and large transport chunks with injected NEED codes. More streams
 * than the server's limit are asked for, so streams open as others close.
 *
 * Everything runs from one loop (strata_h2_drive, strata_h2_accept,
 * strata_h2_ready, the streams' recv and send) that fails with the seed
 * and the stuck streams when nothing moved for too long, instead of
 * hanging. STRATA_SEED replays a run; STRATA_VALGRIND=1 shrinks bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>

#include "harness.h"

#define FLOWS 130           /* 100 at once, then more as streams close */
#define CONCURRENT 100
#define STALL_ROUNDS 200000 /* rounds without progress before failing */
#define MAX_ROUNDS 20000000ul /* a run that creeps along fails too */
#define RESP_KEY 0xa5a5a5a5a5a5a5a5ull
#define RESET_BY_CLIENT 1   /* CANCEL once half the request went */
#define RESET_BY_SERVER 2   /* INTERNAL_ERROR once half of it came */

typedef struct pcase {
    const char *name;
    uint32_t window;        /* stream_window of both ends; 0: default */
    size_t max_chunk;       /* the pipe's schedule */
    unsigned need_percent;
    size_t pipe_capacity;
    size_t typical;         /* most bodies are 0..typical bytes */
    unsigned big;           /* this many are big_max/2..big_max */
    size_t big_max;
    size_t max_io;          /* sends and reads are 1..max_io bytes */
    unsigned read_percent;  /* chance a readable stream is read; 0: 100 */
} pcase;

typedef struct flow {
    unsigned idx;
    uint64_t key;
    size_t size;
    int trailers;           /* the server ends with trailers */
    int reset;              /* RESET_BY_CLIENT / _SERVER halfway, or 0 */
    int done;
    strata_stream *cs, *ss; /* client's and server's end */
    uint8_t *c_buf, *s_buf; /* bytes of the send in flight */
    size_t c_sent, c_call, c_got;
    size_t s_got, s_sent, s_call;
    int c_shut, c_eof, c_ready, c_dead;
    int s_shut, s_eof, s_ready, s_dead;   /* dead: reset, no more calls */
} flow;

typedef struct rig {
    const pcase *pc;
    uint64_t seed, rng;
    strata_h2 *c, *s;
    flow f[FLOWS];
    flow *by_id[2 * FLOWS + 2];
    unsigned opened, finished;
    size_t max_io, typical, big_max;
    uint8_t *got, *want;
    unsigned long rounds;
    size_t ahead, ahead_max; /* most bytes a sender was ahead; its limit */
} rig;

static void fail_rig(const rig *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_msg("case %s, STRATA_SEED=%" PRIu64 ", round %lu: %s", r->pc->name,
             r->seed, r->rounds, msg);
}

/* Bytes of a body by position, so any range regenerates without storing
 * the bodies: a 64-bit mix of (key, word index) gives 8 bytes. */
static void fill(uint64_t key, size_t off, uint8_t *buf, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint64_t w = key ^ ((uint64_t)((off + i) / 8) * 0x9e3779b97f4a7c15ull);
        uint64_t z = strata_rand(&w);
        size_t b = (off + i) % 8;

        for (; b < 8 && i < n; b++, i++)
            buf[i] = (uint8_t)(z >> (b * 8));
    }
}

static size_t pick(rig *r, size_t left)
{
    size_t most = left < r->max_io ? left : r->max_io;

    return most ? 1 + (size_t)(strata_rand(&r->rng) % most) : 0;
}

/* Flow control seen from outside: what was sent and not yet read is what
 * the window let through, never more. */
static void check_ahead(rig *r, const flow *f, size_t sent, size_t read,
                        const char *who)
{
    size_t ahead = sent - read;

    if (ahead > r->ahead)
        r->ahead = ahead;
    if (ahead > r->ahead_max)
        fail_rig(r, "%s of stream %u is %zu bytes ahead of its reader, "
                 "past the window", who, f->idx, ahead);
}

/* Readers may be slow, so that large windows fill up. */
static int reader_turn(rig *r)
{
    return r->pc->read_percent == 0
           || strata_rand(&r->rng) % 100 < r->pc->read_percent;
}

/* ---- setup -------------------------------------------------------------- */

static void plan_flows(rig *r)
{
    unsigned i;

    for (i = 0; i < FLOWS; i++) {
        flow *f = &r->f[i];
        uint64_t x = strata_rand(&r->rng);

        f->idx = i;
        f->key = strata_rand(&r->rng);
        f->trailers = (int)(x & 1);
        if (x % 8 == 1)
            f->size = 0;
        else
            f->size = 1 + (size_t)((x >> 8) % r->typical);
        if (f->size >= 2 && x % 16 == 2)
            f->reset = RESET_BY_CLIENT;
        if (f->size >= 2 && x % 16 == 4)
            f->reset = RESET_BY_SERVER;
    }
    for (i = 0; i < r->pc->big; i++) {
        flow *f = &r->f[strata_rand(&r->rng) % FLOWS];

        f->size = r->big_max / 2
                  + (size_t)(strata_rand(&r->rng) % (r->big_max / 2 + 1));
    }
}

static void rig_open(rig *r, const pcase *pc, uint64_t seed)
{
    strata_pipe_opts po;
    strata_h2_opts o;
    strata_stream *a, *b;

    memset(r, 0, sizeof *r);
    r->pc = pc;
    r->seed = seed;
    r->rng = seed ^ 0x5bd1e995u;
    r->max_io = pc->max_io;
    r->typical = strata_test_scaled(pc->typical);
    r->big_max = strata_test_scaled(pc->big_max);
    /* unread bytes are within the window, or the 65535 every stream has
     * before the SETTINGS that set it arrive */
    r->ahead_max = pc->window ? pc->window : 64 * 1024;  /* the default */
    if (r->ahead_max < 65535)
        r->ahead_max = 65535;
    memset(&po, 0, sizeof po);
    po.capacity = pc->pipe_capacity;
    po.max_chunk = pc->max_chunk;
    po.need_percent = pc->need_percent;
    po.seed = seed;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    memset(&o, 0, sizeof o);
    o.stream_window = pc->window;
    o.max_concurrent_streams = CONCURRENT;
    o.role = STRATA_H2_CLIENT;
    r->c = strata_h2_new(a, &o, NULL);
    o.role = STRATA_H2_SERVER;
    r->s = strata_h2_new(b, &o, NULL);
    assert_non_null(r->c);
    assert_non_null(r->s);
    r->got = malloc(r->max_io);
    r->want = malloc(r->max_io);
    assert_non_null(r->got);
    assert_non_null(r->want);
    plan_flows(r);
}

/* ---- the client's side -------------------------------------------------- */

static int open_next(rig *r)
{
    flow *f = &r->f[r->opened];
    char path[32];
    strata_h2_header head[4] = {
        {":method", "POST"}, {":scheme", "http"}, {":authority", "prop"},
        {":path", path},
    };
    unsigned flags = 0;
    int32_t id;
    int rv;

    snprintf(path, sizeof path, "/%u", f->idx);
    /* an empty body as a head with END_STREAM, or as a shutdown later */
    if (f->size == 0 && (f->key & 2))
        flags = STRATA_H2_END_STREAM;
    rv = strata_h2_request(r->c, head, 4, flags, &f->cs);
    if (rv == STRATA_NEED_READ || rv == STRATA_NEED_WRITE)
        return 0;
    if (rv != 0)
        fail_rig(r, "request %u: %s", f->idx, strata_strerror(rv));
    id = strata_h2_stream_id(f->cs);
    if (id <= 0 || id >= (int32_t)(2 * FLOWS + 2) || r->by_id[id])
        fail_rig(r, "request %u: stream id %d", f->idx, (int)id);
    r->by_id[id] = f;
    f->c_shut = flags != 0;
    f->c_buf = malloc(r->max_io);
    f->s_buf = malloc(r->max_io);
    assert_non_null(f->c_buf);
    assert_non_null(f->s_buf);
    r->opened++;
    return 1;
}

/* A stream the peer reset: the status and code say so, every time. */
static int peer_reset(rig *r, flow *f, strata_stream *s, ssize_t n, int by,
                      const char *what)
{
    long want = by == RESET_BY_CLIENT ? STRATA_H2_CANCEL
                                      : STRATA_H2_INTERNAL_ERROR;

    if (n != STRATA_ERR_CLOSED || f->reset != by)
        return 0;
    if (strata_h2_reset_code(s) != want)
        fail_rig(r, "%s %u: reset code %ld, not %ld", what, f->idx,
                 strata_h2_reset_code(s), want);
    return 1;
}

/* The client's reset: the server has the stream and half the body went
 * (the stream vanishing before it is accepted is test_h2_limits's). */
static int client_reset(rig *r, flow *f)
{
    int rv;

    if (f->reset != RESET_BY_CLIENT || !f->ss || f->c_sent < f->size / 2)
        return 0;
    rv = strata_h2_reset(f->cs, STRATA_H2_CANCEL);
    if (rv != 0)
        fail_rig(r, "client reset %u: %s", f->idx, strata_strerror(rv));
    f->c_dead = 1;
    return 1;
}

static int client_shutdown(rig *r, flow *f)
{
    int rv = strata_shutdown(f->cs);

    if (rv == 0)
        f->c_shut = 1;
    else if (peer_reset(r, f, f->cs, rv, RESET_BY_SERVER, "client shutdown"))
        f->c_dead = 1;
    else if (rv != STRATA_NEED_READ && rv != STRATA_NEED_WRITE)
        fail_rig(r, "client shutdown %u: %s", f->idx, strata_strerror(rv));
    return rv == 0 || f->c_dead;
}

static int client_send(rig *r, flow *f)
{
    ssize_t n;

    if (f->c_shut || f->c_dead)
        return 0;
    if (client_reset(r, f))
        return 1;
    if (f->c_sent == f->size)
        return client_shutdown(r, f);
    if (f->c_call == 0) {   /* a new send; after NEED the same one again */
        f->c_call = pick(r, f->size - f->c_sent);
        fill(f->key, f->c_sent, f->c_buf, f->c_call);
    }
    n = strata_send(f->cs, f->c_buf, f->c_call, 0);
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
        return 0;
    if (peer_reset(r, f, f->cs, n, RESET_BY_SERVER, "client send"))
        return f->c_dead = 1;
    if (n <= 0 || (size_t)n > f->c_call)
        fail_rig(r, "client send %u at %zu: %s", f->idx, f->c_sent,
                 n < 0 ? strata_strerror((int)n) : "bad count");
    /* the rest of a partial send is sent next, as the contract says */
    memmove(f->c_buf, f->c_buf + n, f->c_call - (size_t)n);
    f->c_call -= (size_t)n;
    f->c_sent += (size_t)n;
    check_ahead(r, f, f->c_sent, f->s_got, "the request");
    return 1;
}

static void client_end(rig *r, flow *f)
{
    size_t n = 0;
    const strata_h2_header *t = strata_h2_trailers(f->cs, &n);
    char num[32];

    if (f->c_got != f->size)
        fail_rig(r, "stream %u: EOF after %zu of %zu bytes", f->idx,
                 f->c_got, f->size);
    if (strata_h2_status(f->cs) != 200)
        fail_rig(r, "stream %u: status %d", f->idx, strata_h2_status(f->cs));
    if (!f->trailers)
        return;
    snprintf(num, sizeof num, "%zu", f->size);
    if (!t || n != 1 || strcmp(t[0].name, "x-bytes") != 0
        || strcmp(t[0].value, num) != 0)
        fail_rig(r, "stream %u: trailers missing or wrong", f->idx);
}

static int client_recv(rig *r, flow *f)
{
    unsigned fl;
    ssize_t n;

    if (!f->c_ready || f->c_eof || f->c_dead || !reader_turn(r))
        return 0;
    n = strata_recv(f->cs, r->got, pick(r, r->max_io), &fl);
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE) {
        f->c_ready = 0;     /* until strata_h2_ready lists it again */
        return 0;
    }
    if (peer_reset(r, f, f->cs, n, RESET_BY_SERVER, "client recv"))
        return f->c_dead = 1;
    if (n == STRATA_EOF) {
        f->c_eof = 1;
        client_end(r, f);
        return 1;
    }
    if (n <= 0)
        fail_rig(r, "client recv %u at %zu: %s", f->idx, f->c_got,
                 n < 0 ? strata_strerror((int)n) : "0 bytes");
    if (f->c_got + (size_t)n > f->size)
        fail_rig(r, "stream %u: response longer than %zu", f->idx, f->size);
    fill(f->key ^ RESP_KEY, f->c_got, r->want, (size_t)n);
    if (memcmp(r->got, r->want, (size_t)n) != 0)
        fail_rig(r, "stream %u: response differs near %zu", f->idx, f->c_got);
    f->c_got += (size_t)n;
    return 1;
}

/* ---- the server's side -------------------------------------------------- */

static void accept_all(rig *r)
{
    strata_stream *s;

    while ((s = strata_h2_accept(r->s)) != NULL) {
        int32_t id = strata_h2_stream_id(s);
        const char *path = strata_h2_get(s, ":path");
        flow *f = id > 0 && id < (int32_t)(2 * FLOWS + 2) ? r->by_id[id]
                                                          : NULL;
        char want[32];
        int rv;

        if (!f || f->ss)
            fail_rig(r, "accepted an unknown stream %d", (int)id);
        snprintf(want, sizeof want, "/%u", f->idx);
        if (!path || strcmp(path, want) != 0)
            fail_rig(r, "stream %d: path %s, not %s", (int)id,
                     path ? path : "(none)", want);
        f->ss = s;
        f->s_ready = 1;
        rv = strata_h2_respond(s, 200, NULL, 0, 0);
        if (rv != 0)
            fail_rig(r, "respond %u: %s", f->idx, strata_strerror(rv));
    }
}

static int server_recv(rig *r, flow *f)
{
    unsigned fl;
    ssize_t n;

    if (!f->ss || !f->s_ready || f->s_eof || f->s_dead || !reader_turn(r))
        return 0;
    n = strata_recv(f->ss, r->got, pick(r, r->max_io), &fl);
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE) {
        f->s_ready = 0;
        return 0;
    }
    if (peer_reset(r, f, f->ss, n, RESET_BY_CLIENT, "server recv"))
        return f->s_dead = 1;
    if (n == STRATA_EOF) {
        if (f->s_got != f->size)
            fail_rig(r, "server: stream %u ended at %zu of %zu", f->idx,
                     f->s_got, f->size);
        f->s_eof = 1;
        return 1;
    }
    if (n <= 0)
        fail_rig(r, "server recv %u at %zu: %s", f->idx, f->s_got,
                 n < 0 ? strata_strerror((int)n) : "0 bytes");
    if (f->s_got + (size_t)n > f->size)
        fail_rig(r, "server: stream %u longer than %zu", f->idx, f->size);
    fill(f->key, f->s_got, r->want, (size_t)n);
    if (memcmp(r->got, r->want, (size_t)n) != 0)
        fail_rig(r, "server: stream %u differs near %zu", f->idx, f->s_got);
    f->s_got += (size_t)n;
    return 1;
}

/* END_STREAM, or trailers saying how many bytes came. Their value lives
 * on this call's stack: a retry after NEED passes it again, and the layer
 * may not keep pointers into the caller's strings past the call. */
static int server_finish(rig *r, flow *f)
{
    strata_h2_header t = {"x-bytes", NULL};
    char num[24];
    int rv;

    snprintf(num, sizeof num, "%zu", f->size);
    t.value = num;
    rv = f->trailers ? strata_h2_send_trailers(f->ss, &t, 1)
                     : strata_shutdown(f->ss);
    if (rv == 0)
        f->s_shut = 1;
    else if (peer_reset(r, f, f->ss, rv, RESET_BY_CLIENT, "server end"))
        return f->s_dead = 1;
    else if (rv != STRATA_NEED_READ && rv != STRATA_NEED_WRITE)
        fail_rig(r, "server end %u: %s", f->idx, strata_strerror(rv));
    return rv == 0;
}

/* The server's reset, once half the request came. */
static int server_reset(rig *r, flow *f)
{
    int rv;

    if (f->reset != RESET_BY_SERVER || f->s_got < f->size / 2)
        return 0;
    rv = strata_h2_reset(f->ss, STRATA_H2_INTERNAL_ERROR);
    if (rv != 0)
        fail_rig(r, "server reset %u: %s", f->idx, strata_strerror(rv));
    f->s_dead = 1;
    return 1;
}

/* The answer goes out no faster than the request came in: an echo. */
static int server_send(rig *r, flow *f)
{
    ssize_t n;

    if (!f->ss || f->s_shut || f->s_dead)
        return 0;
    if (server_reset(r, f))
        return 1;
    if (f->s_sent == f->s_got)
        return f->s_eof ? server_finish(r, f) : 0;
    if (f->s_call == 0) {
        f->s_call = pick(r, f->s_got - f->s_sent);
        fill(f->key ^ RESP_KEY, f->s_sent, f->s_buf, f->s_call);
    }
    n = strata_send(f->ss, f->s_buf, f->s_call, 0);
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
        return 0;
    if (peer_reset(r, f, f->ss, n, RESET_BY_CLIENT, "server send"))
        return f->s_dead = 1;
    if (n <= 0 || (size_t)n > f->s_call)
        fail_rig(r, "server send %u at %zu: %s", f->idx, f->s_sent,
                 n < 0 ? strata_strerror((int)n) : "bad count");
    memmove(f->s_buf, f->s_buf + n, f->s_call - (size_t)n);
    f->s_call -= (size_t)n;
    f->s_sent += (size_t)n;
    check_ahead(r, f, f->s_sent, f->c_got, "the answer");
    return 1;
}

/* ---- the loop ----------------------------------------------------------- */

static void mark_ready(rig *r, strata_h2 *h, int server)
{
    strata_stream *s;

    while ((s = strata_h2_ready(h)) != NULL) {
        int32_t id = strata_h2_stream_id(s);
        flow *f = id > 0 && id < (int32_t)(2 * FLOWS + 2) ? r->by_id[id]
                                                          : NULL;

        if (!f)
            fail_rig(r, "ready: unknown stream %d", (int)id);
        if (server)
            f->s_ready = 1;
        else
            f->c_ready = 1;
    }
}

static int drive(rig *r, strata_h2 *h, const char *who)
{
    int rv = strata_h2_drive(h);

    if (rv < STRATA_EOF)
        fail_rig(r, "%s drive: %s (code %u)", who, strata_strerror(rv),
                 (unsigned)strata_h2_error_code(h));
    return rv == 0;
}

static void finish_flow(rig *r, flow *f)
{
    strata_free(f->cs);
    strata_free(f->ss);
    free(f->c_buf);
    free(f->s_buf);
    f->cs = f->ss = NULL;
    f->c_buf = f->s_buf = NULL;
    f->done = 1;
    r->finished++;
}

static int step_flow(rig *r, flow *f)
{
    int p = 0;

    /* the order of the four moves varies with the schedule */
    if (strata_rand(&r->rng) & 1) {
        p |= client_send(r, f);
        p |= server_recv(r, f);
    } else {
        p |= server_recv(r, f);
        p |= client_send(r, f);
    }
    p |= server_send(r, f);
    p |= client_recv(r, f);
    if ((f->c_dead || (f->c_eof && f->c_shut))
        && (f->s_dead || (f->s_shut && f->s_eof))) {
        finish_flow(r, f);
        p = 1;
    }
    return p;
}

static void report_stall(rig *r)
{
    char line[512];
    size_t len = 0;
    unsigned i, shown = 0;

    line[0] = '\0';
    for (i = 0; i < r->opened && shown < 4; i++) {
        flow *f = &r->f[i];
        int w;

        if (f->done)
            continue;
        w = snprintf(line + len, sizeof line - len,
                     " [%u: size %zu c_sent %zu s_got %zu s_sent %zu "
                     "c_got %zu flags %d%d%d%d]", f->idx, f->size, f->c_sent,
                     f->s_got, f->s_sent, f->c_got, f->c_shut, f->s_eof,
                     f->s_shut, f->c_eof);
        if (w < 0 || (size_t)w >= sizeof line - len)
            break;
        len += (size_t)w;
        shown++;
    }
    fail_rig(r, "stalled (%u rounds without progress, or %lu in all), "
             "%u of %u done:%s", STALL_ROUNDS, MAX_ROUNDS, r->finished, FLOWS,
             line);
}

static int round_once(rig *r)
{
    unsigned i, first, n = r->opened;
    int p = 0;

    p |= drive(r, r->c, "client");
    p |= drive(r, r->s, "server");
    while (r->opened < FLOWS && open_next(r))
        p = 1;
    accept_all(r);
    mark_ready(r, r->s, 1);
    mark_ready(r, r->c, 0);
    first = n ? (unsigned)(strata_rand(&r->rng) % n) : 0;
    for (i = 0; i < n; i++) {
        flow *f = &r->f[(first + i) % n];

        if (!f->done)
            p |= step_flow(r, f);
    }
    return p;
}

/* Both ends say goodbye: GOAWAY each way, then the connection ends. */
static void close_both(rig *r)
{
    int c = 0, s = 0, i;

    for (i = 0; i < 100000 && (c != STRATA_EOF || s != STRATA_EOF); i++) {
        if (c != STRATA_EOF && (c = strata_h2_shutdown(r->c)) == 0)
            c = strata_h2_drive(r->c);
        if (s != STRATA_EOF && (s = strata_h2_shutdown(r->s)) == 0)
            s = strata_h2_drive(r->s);
        if (c < STRATA_EOF || s < STRATA_EOF)
            fail_rig(r, "closing: %s / %s", strata_strerror(c),
                     strata_strerror(s));
    }
    if (c != STRATA_EOF || s != STRATA_EOF)
        fail_rig(r, "closing: the connections did not end (%d / %d)", c, s);
}

static void run_case(const pcase *pc)
{
    rig *r = calloc(1, sizeof *r);
    unsigned long stalled = 0;

    assert_non_null(r);
    rig_open(r, pc, strata_test_seed());
    while (r->finished < FLOWS) {
        r->rounds++;
        stalled = round_once(r) ? 0 : stalled + 1;
        if (stalled > STALL_ROUNDS || r->rounds > MAX_ROUNDS)
            report_stall(r);
    }
    if (pc->window > 64 * 1024 && r->ahead <= 64 * 1024)
        fail_rig(r, "the large window was never used (at most %zu ahead)",
                 r->ahead);
    if (strata_h2_open_streams(r->c) || strata_h2_open_streams(r->s))
        fail_rig(r, "streams still open: %zu / %zu",
                 strata_h2_open_streams(r->c), strata_h2_open_streams(r->s));
    close_both(r);
    strata_h2_free(r->c);
    strata_h2_free(r->s);
    free(r->got);
    free(r->want);
    free(r);
}

/* ---- cases -------------------------------------------------------------- */

/* Windows of one byte: every DATA frame carries a byte and waits for a
 * WINDOW_UPDATE, so the bodies stay small (a stream's first 65535 bytes
 * may still come before the SETTINGS ack, as RFC 9113 allows). */
static void test_window_1_byte(void **state)
{
    static const pcase pc = {
        .name = "window 1", .window = 1, .max_chunk = 64, .need_percent = 15,
        .typical = 1500, .big = 2, .big_max = 32 * 1024, .max_io = 512};

    (void)state;
    run_case(&pc);
}

/* The default 64 KiB, over a transport that moves at most 512 bytes a
 * call and injects a NEED code one call in five. */
static void test_default_window_small_chunks(void **state)
{
    static const pcase pc = {
        .name = "default window, small chunks", .max_chunk = 512,
        .need_percent = 20, .typical = 16 * 1024, .big = 3,
        .big_max = 1u << 20, .max_io = 4096};

    (void)state;
    run_case(&pc);
}

static void test_default_window_large_chunks(void **state)
{
    static const pcase pc = {
        .name = "default window, large chunks", .max_chunk = 64 * 1024,
        .need_percent = 10, .pipe_capacity = 256 * 1024,
        .typical = 64 * 1024, .big = 6, .big_max = 4u << 20,
        .max_io = 64 * 1024};

    (void)state;
    run_case(&pc);
}

/* 16 MiB windows with readers that take their turn one time in ten, so
 * that megabytes wait in the windows. */
static void test_window_16_mib(void **state)
{
    static const pcase pc = {
        .name = "window 16 MiB", .window = 16u << 20, .max_chunk = 64 * 1024,
        .need_percent = 10, .pipe_capacity = 256 * 1024,
        .typical = 64 * 1024, .big = 6, .big_max = 4u << 20,
        .max_io = 64 * 1024, .read_percent = 10};

    (void)state;
    run_case(&pc);
}

int main(void)
{
    const char *only = getenv("STRATA_TEST_FILTER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_1_byte),
        cmocka_unit_test(test_default_window_small_chunks),
        cmocka_unit_test(test_default_window_large_chunks),
        cmocka_unit_test(test_window_16_mib),
    };

    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);   /* replay one test with its seed */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
