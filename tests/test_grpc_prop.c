/* Property test of the grpc layer: a strata grpc client and server on one
 * HTTP/2 connection over the seeded pipe schedule (random 1..max_chunk
 * byte moves, injected NEED codes), many calls of all four types at once.
 * Each call has random message counts and sizes (0 B up to 256 KiB, most
 * small, some compressible), gzip on or off for each direction on its
 * own, and a planned final status: most OK, some another status with a
 * message and a "-bin" trailer. The server answers at the pace the call
 * type allows (unary and client streaming after the request ended, server
 * streaming after the first message, bidi one for one), sends and reads
 * come in random sizes, every message is checked byte for byte on arrival
 * and every status, message and trailer at the end. Both sides' memory
 * goes back to nothing.
 *
 * Everything runs from one loop that fails with the seed when nothing
 * moved for too long. STRATA_SEED replays a run; STRATA_VALGRIND=1 shrinks
 * it (fewer calls, smaller messages). */
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
#include <strata/grpc.h>

#include "harness.h"

#define MAX_FLOWS 1024
#define STALL_ROUNDS 100000
#define SVC "/strata.prop.Svc/"

enum { UNARY, CLIENT_STREAM, SERVER_STREAM, BIDI };

static const strata_grpc_method methods[] = {
    {SVC "Unary", NULL}, {SVC "ClientStream", NULL},
    {SVC "ServerStream", NULL}, {SVC "Bidi", NULL},
};

typedef struct pcase {
    const char *name;
    unsigned flows, concurrent;
    size_t max_chunk;       /* the pipe's schedule */
    unsigned need_percent;
    size_t typical;         /* most messages are 0..typical bytes */
    size_t big_max;         /* one in 16 is up to this */
    size_t max_io;          /* reads are 1..max_io bytes */
} pcase;

typedef struct flow {
    unsigned idx;
    int type, c_gzip, s_gzip, status;
    uint64_t key;
    unsigned nreq, nresp;
    int opened, done;
    strata_stream *cc, *sc;
    /* client: the request being sent, the answer being read */
    unsigned c_msg;
    size_t c_size, c_off;
    int c_shut, c_end;
    unsigned c_rx;
    size_t c_rx_off;
    /* server */
    unsigned s_rx;
    size_t s_rx_off;
    int s_eof;
    unsigned s_msg;
    size_t s_size, s_off;
    int s_fin;
    uint8_t *c_buf, *s_buf;
} flow;

typedef struct rig {
    const pcase *pc;
    uint64_t seed, rng;
    strata_h2 *c, *s;
    strata_test_meter mc, ms;
    strata_allocator ac, as;
    flow f[MAX_FLOWS];
    unsigned n, opened, active, finished;
    size_t typical, big_max;
    unsigned long rounds;
    uint64_t bytes;         /* message bytes checked on arrival */
    unsigned failed;        /* calls that ended with another status */
    uint8_t *got, *want;
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

static int need(ssize_t v)
{
    return v == STRATA_NEED_READ || v == STRATA_NEED_WRITE;
}

/* ---- messages, regenerated from (flow key, direction, index) ---------- */

static uint64_t msg_key(const flow *f, int dir, unsigned i)
{
    uint64_t x = f->key ^ ((uint64_t)dir << 62) ^ ((uint64_t)i * 0x9e37ull);

    return strata_rand(&x);
}

static size_t msg_size(const rig *r, const flow *f, int dir, unsigned i)
{
    uint64_t k = msg_key(f, dir, i), x = k;
    uint64_t v = strata_rand(&x);

    if (v % 8 == 0)
        return 0;
    if (v % 16 == 1)
        return (size_t)(strata_rand(&x) % (r->big_max + 1));
    return (size_t)(strata_rand(&x) % (r->typical + 1));
}

/* Bytes by position, so a piece is checked without keeping the message;
 * half the messages are letters (gzip has something to do). */
static void msg_fill(const flow *f, int dir, unsigned i, size_t off,
                     uint8_t *buf, size_t n)
{
    uint64_t k = msg_key(f, dir, i);
    size_t j = 0;

    while (j < n) {
        uint64_t w = k ^ ((uint64_t)((off + j) / 8) * 0x9e3779b97f4a7c15ull);
        uint64_t z = strata_rand(&w);
        size_t b = (off + j) % 8;

        for (; b < 8 && j < n; b++, j++) {
            uint8_t c = (uint8_t)(z >> (b * 8));

            buf[j] = (k & 1) ? (uint8_t)('a' + c % 8) : c;
        }
    }
}

/* ---- setup ------------------------------------------------------------ */

static void plan(rig *r, flow *f, unsigned idx)
{
    uint64_t x = strata_rand(&r->rng);

    memset(f, 0, sizeof *f);
    f->idx = idx;
    f->key = strata_rand(&r->rng);
    f->type = (int)(x % 4);
    f->c_gzip = (x >> 2) & 1;
    f->s_gzip = (x >> 3) & 1;
    f->status = (x >> 4) % 5 ? STRATA_GRPC_OK : 1 + (int)((x >> 8) % 16);
    f->nreq = f->type == UNARY || f->type == SERVER_STREAM
              ? 1 : (unsigned)((x >> 16) % 7);
    f->nresp = f->type == UNARY || f->type == CLIENT_STREAM
               ? 1 : (unsigned)((x >> 24) % 7);
}

static void rig_open(rig *r, const pcase *pc, uint64_t seed)
{
    strata_pipe_opts po;
    strata_h2_opts o;
    strata_stream *a, *b;
    unsigned i;

    memset(r, 0, sizeof *r);
    r->pc = pc;
    r->seed = seed;
    r->rng = seed ^ 0x6a09e667f3bcc908ull;
    r->n = strata_test_valgrind() ? pc->flows / 4 : pc->flows;
    r->typical = pc->typical;
    r->big_max = strata_test_scaled(pc->big_max);
    r->ac = strata_test_meter_allocator(&r->mc);
    r->as = strata_test_meter_allocator(&r->ms);
    memset(&po, 0, sizeof po);
    po.max_chunk = pc->max_chunk;
    po.need_percent = pc->need_percent;
    po.seed = seed;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_CLIENT;
    r->c = strata_h2_new(a, &o, &r->ac);
    o.role = STRATA_H2_SERVER;
    r->s = strata_h2_new(b, &o, &r->as);
    assert_non_null(r->c);
    assert_non_null(r->s);
    r->got = malloc(pc->max_io);
    r->want = malloc(pc->max_io);
    assert_non_null(r->got);
    assert_non_null(r->want);
    for (i = 0; i < r->n; i++)
        plan(r, &r->f[i], i);
}

/* ---- the client ------------------------------------------------------- */

static void open_next(rig *r)
{
    flow *f = &r->f[r->opened];
    char num[16], tag[4];
    strata_grpc_md md[2] = {{"x-flow", num, 0}, {"tag-bin", tag, 4}};
    strata_grpc_opts o;
    int rv;

    snprintf(num, sizeof num, "%u", f->idx);
    memcpy(tag, &f->idx, 4);
    memset(&o, 0, sizeof o);
    o.path = methods[f->type].path;
    o.authority = "prop";
    o.md = md;
    o.n_md = 2;
    o.encoding = f->c_gzip ? "gzip" : NULL;
    o.max_recv = 1u << 20;
    rv = strata_grpc_call(r->c, &o, &r->ac, &f->cc);
    if (rv != 0)
        fail_rig(r, "call %u: %s", f->idx, strata_strerror(rv));
    f->c_buf = malloc(r->big_max + 1);
    f->s_buf = malloc(r->big_max + 1);
    assert_non_null(f->c_buf);
    assert_non_null(f->s_buf);
    f->opened = 1;
    r->opened++;
    r->active++;
}

static int client_send(rig *r, flow *f)
{
    ssize_t n;
    int rv;

    if (f->c_shut)
        return 0;
    if (f->c_msg == f->nreq) {
        rv = strata_shutdown(f->cc);
        if (need(rv))
            return 0;
        if (rv != 0)
            fail_rig(r, "client shutdown %u: %s", f->idx,
                     strata_strerror(rv));
        f->c_shut = 1;
        return 1;
    }
    if (f->c_off == 0 && f->c_size == 0) {
        f->c_size = msg_size(r, f, 0, f->c_msg);
        msg_fill(f, 0, f->c_msg, 0, f->c_buf, f->c_size);
    }
    n = strata_send(f->cc, f->c_buf + f->c_off, f->c_size - f->c_off,
                    STRATA_MSG_END);
    if (need(n))
        return 0;
    if (n < 0 || (size_t)n > f->c_size - f->c_off
        || (n == 0 && f->c_size != 0))
        fail_rig(r, "client send %u, message %u: %s", f->idx, f->c_msg,
                 n < 0 ? strata_strerror((int)n) : "bad count");
    f->c_off += (size_t)n;
    if (f->c_off == f->c_size) {
        f->c_msg++;
        f->c_off = f->c_size = 0;
    }
    return 1;
}

static void client_end(rig *r, flow *f, ssize_t n)
{
    char want[64];
    const char *m;
    const void *t;
    size_t len = 0;

    if (f->c_rx != f->nresp || f->c_rx_off != 0)
        fail_rig(r, "flow %u ended (%s) after %u of %u answers", f->idx,
                 strata_strerror((int)n), f->c_rx, f->nresp);
    if (n != (f->status ? STRATA_ERR_GRPC : STRATA_EOF))
        fail_rig(r, "flow %u ended with %s (status %d, %s), not status %d",
                 f->idx, strata_strerror((int)n), strata_grpc_status(f->cc),
                 strata_grpc_message(f->cc), f->status);
    if (strata_grpc_status(f->cc) != f->status)
        fail_rig(r, "flow %u: status %d, not %d", f->idx,
                 strata_grpc_status(f->cc), f->status);
    want[0] = '\0';
    if (f->status)
        snprintf(want, sizeof want, "flow %u: \xe2\x98\xba 100%%", f->idx);
    m = strata_grpc_message(f->cc);
    if (!m || strcmp(m, want) != 0)
        fail_rig(r, "flow %u: message \"%s\"", f->idx, m ? m : "(null)");
    t = strata_grpc_trailer_get(f->cc, "flow-bin", &len);
    if (!t || len != 4 || memcmp(t, &f->idx, 4) != 0)
        fail_rig(r, "flow %u: trailer missing or wrong", f->idx);
    f->c_end = 1;
    r->failed += f->status != 0;
}

static int client_recv(rig *r, flow *f)
{
    size_t want = 1 + (size_t)(strata_rand(&r->rng) % r->pc->max_io);
    unsigned fl = 0;
    ssize_t n;

    if (f->c_end)
        return 0;
    n = strata_recv(f->cc, r->got, want, &fl);
    if (need(n))
        return 0;
    if (n < 0) {
        client_end(r, f, n);
        return 1;
    }
    if (f->c_rx >= f->nresp)
        fail_rig(r, "flow %u: more than %u answers", f->idx, f->nresp);
    if (n == 0 && !(fl & STRATA_MSG_END))
        fail_rig(r, "flow %u: 0 bytes without MSG_END", f->idx);
    msg_fill(f, 1, f->c_rx, f->c_rx_off, r->want, (size_t)n);
    if (f->c_rx_off + (size_t)n > msg_size(r, f, 1, f->c_rx)
        || memcmp(r->got, r->want, (size_t)n) != 0)
        fail_rig(r, "flow %u: answer %u differs near %zu", f->idx, f->c_rx,
                 f->c_rx_off);
    f->c_rx_off += (size_t)n;
    r->bytes += (uint64_t)n;
    if (fl & STRATA_MSG_END) {
        if (f->c_rx_off != msg_size(r, f, 1, f->c_rx))
            fail_rig(r, "flow %u: answer %u ends at %zu", f->idx, f->c_rx,
                     f->c_rx_off);
        f->c_rx++;
        f->c_rx_off = 0;
    }
    return 1;
}

/* ---- the server ------------------------------------------------------- */

static void accept_all(rig *r)
{
    strata_stream *h, *sc;

    while ((h = strata_h2_accept(r->s)) != NULL) {
        strata_grpc_opts so;
        const char *v;
        size_t len = 0;
        unsigned idx;
        flow *f;
        int rv;

        /* the flow's number, before the call takes the stream */
        v = strata_h2_get(h, "x-flow");
        idx = v ? (unsigned)atoi(v) : MAX_FLOWS;
        if (idx >= r->n || idx >= MAX_FLOWS || r->f[idx].sc) {
            fail_rig(r, "accepted an unknown call %s", v ? v : "(none)");
            return;
        }
        f = &r->f[idx];
        memset(&so, 0, sizeof so);
        so.methods = methods;
        so.n_methods = 4;
        so.encoding = f->s_gzip ? "gzip" : NULL;
        so.max_recv = 1u << 20;
        rv = strata_grpc_accept(h, &so, &r->as, &sc);
        if (rv != 0)
            fail_rig(r, "accept %u: %s", idx, strata_strerror(rv));
        if (strata_grpc_method_of(sc) != &methods[f->type])
            fail_rig(r, "flow %u: wrong method", idx);
        v = strata_grpc_md_get(sc, "tag-bin", &len);
        if (!v || len != 4 || memcmp(v, &f->idx, 4) != 0)
            fail_rig(r, "flow %u: request metadata wrong", idx);
        f->sc = sc;
    }
}

static int server_recv(rig *r, flow *f)
{
    size_t want = 1 + (size_t)(strata_rand(&r->rng) % r->pc->max_io);
    unsigned fl = 0;
    ssize_t n;

    if (!f->sc || f->s_eof)
        return 0;
    n = strata_recv(f->sc, r->got, want, &fl);
    if (need(n))
        return 0;
    if (n == STRATA_EOF) {
        if (f->s_rx != f->nreq || f->s_rx_off != 0)
            fail_rig(r, "flow %u: EOF after %u of %u requests", f->idx,
                     f->s_rx, f->nreq);
        f->s_eof = 1;
        return 1;
    }
    if (n < 0)
        fail_rig(r, "server recv %u: %s (status %d)", f->idx,
                 strata_strerror((int)n), strata_grpc_status(f->sc));
    if (f->s_rx >= f->nreq)
        fail_rig(r, "flow %u: more than %u requests", f->idx, f->nreq);
    msg_fill(f, 0, f->s_rx, f->s_rx_off, r->want, (size_t)n);
    if (f->s_rx_off + (size_t)n > msg_size(r, f, 0, f->s_rx)
        || memcmp(r->got, r->want, (size_t)n) != 0)
        fail_rig(r, "flow %u: request %u differs near %zu", f->idx, f->s_rx,
                 f->s_rx_off);
    f->s_rx_off += (size_t)n;
    r->bytes += (uint64_t)n;
    if (fl & STRATA_MSG_END) {
        if (f->s_rx_off != msg_size(r, f, 0, f->s_rx))
            fail_rig(r, "flow %u: request %u ends at %zu", f->idx, f->s_rx,
                     f->s_rx_off);
        f->s_rx++;
        f->s_rx_off = 0;
    }
    return 1;
}

/* May answer j go? As the call type has it. */
static int gate(const flow *f, unsigned j)
{
    switch (f->type) {
    case SERVER_STREAM:
        return f->s_rx >= 1;
    case BIDI:
        return f->s_rx >= (j + 1 < f->nreq ? j + 1 : f->nreq);
    default:
        return f->s_eof;
    }
}

static int server_finish(rig *r, flow *f)
{
    char msg[64];
    strata_grpc_md md = {"flow-bin", &f->idx, 4};
    int rv;

    snprintf(msg, sizeof msg, "flow %u: \xe2\x98\xba 100%%", f->idx);
    rv = strata_grpc_finish(f->sc, f->status, f->status ? msg : NULL, &md, 1);
    if (need(rv))
        return 0;
    if (rv != 0)
        fail_rig(r, "finish %u: %s", f->idx, strata_strerror(rv));
    f->s_fin = 1;
    return 1;
}

static int server_send(rig *r, flow *f)
{
    ssize_t n;

    if (!f->sc || f->s_fin)
        return 0;
    if (f->s_msg == f->nresp)
        return f->s_eof ? server_finish(r, f) : 0;
    if (f->s_off == 0 && f->s_size == 0) {
        if (!gate(f, f->s_msg))
            return 0;
        f->s_size = msg_size(r, f, 1, f->s_msg);
        msg_fill(f, 1, f->s_msg, 0, f->s_buf, f->s_size);
    }
    n = strata_send(f->sc, f->s_buf + f->s_off, f->s_size - f->s_off,
                    STRATA_MSG_END);
    if (need(n))
        return 0;
    if (n < 0 || (size_t)n > f->s_size - f->s_off
        || (n == 0 && f->s_size != 0))
        fail_rig(r, "server send %u, message %u: %s", f->idx, f->s_msg,
                 n < 0 ? strata_strerror((int)n) : "bad count");
    f->s_off += (size_t)n;
    if (f->s_off == f->s_size) {
        f->s_msg++;
        f->s_off = f->s_size = 0;
    }
    return 1;
}

/* ---- the loop --------------------------------------------------------- */

static int step_flow(rig *r, flow *f)
{
    int p = 0;

    if (strata_rand(&r->rng) & 1) {
        p |= client_send(r, f);
        p |= server_recv(r, f);
    } else {
        p |= server_recv(r, f);
        p |= client_send(r, f);
    }
    p |= server_send(r, f);
    p |= client_recv(r, f);
    if (f->c_end && f->s_fin && f->c_shut) {
        strata_free(f->cc);
        strata_free(f->sc);
        free(f->c_buf);
        free(f->s_buf);
        f->cc = f->sc = NULL;
        f->c_buf = f->s_buf = NULL;
        f->done = 1;
        r->finished++;
        r->active--;
        p = 1;
    }
    return p;
}

static int round_once(rig *r)
{
    unsigned i, first;
    int p = 0, rv;

    rv = strata_h2_drive(r->c);
    if (rv < STRATA_EOF)
        fail_rig(r, "client connection: %s", strata_strerror(rv));
    p |= rv == 0;
    rv = strata_h2_drive(r->s);
    if (rv < STRATA_EOF)
        fail_rig(r, "server connection: %s", strata_strerror(rv));
    p |= rv == 0;
    while (r->opened < r->n && r->active < r->pc->concurrent) {
        open_next(r);
        p = 1;
    }
    accept_all(r);
    first = (unsigned)(strata_rand(&r->rng) % r->opened);
    for (i = 0; i < r->opened; i++) {
        flow *f = &r->f[(first + i) % r->opened];

        if (!f->done)
            p |= step_flow(r, f);
    }
    return p;
}

static void report_stall(rig *r)
{
    unsigned i;

    for (i = 0; i < r->opened; i++) {
        flow *f = &r->f[i];

        if (!f->done)
            fail_rig(r, "stalled: flow %u type %d gzip %d/%d: sent %u/%u "
                     "(shut %d), server got %u (eof %d), sent %u/%u (fin "
                     "%d), client got %u (end %d)", f->idx, f->type,
                     f->c_gzip, f->s_gzip, f->c_msg, f->nreq, f->c_shut,
                     f->s_rx, f->s_eof, f->s_msg, f->nresp, f->s_fin,
                     f->c_rx, f->c_end);
    }
    fail_rig(r, "stalled");
}

static void run_case(const pcase *pc)
{
    rig *r = calloc(1, sizeof *r);
    unsigned long stalled = 0;

    assert_non_null(r);
    rig_open(r, pc, strata_test_seed());
    while (r->finished < r->n) {
        r->rounds++;
        stalled = round_once(r) ? 0 : stalled + 1;
        if (stalled > STALL_ROUNDS)
            report_stall(r);
    }
    if (strata_h2_open_streams(r->c) || strata_h2_open_streams(r->s))
        fail_rig(r, "streams still open: %zu / %zu",
                 strata_h2_open_streams(r->c), strata_h2_open_streams(r->s));
    strata_h2_free(r->c);
    strata_h2_free(r->s);
    if (r->mc.bytes || r->ms.bytes)
        fail_rig(r, "memory left: client %zu, server %zu bytes", r->mc.bytes,
                 r->ms.bytes);
    fprintf(stderr, "%s: %u calls (%u with a status other than OK), %" PRIu64
            " message bytes, %lu rounds\n", pc->name, r->n, r->failed,
            r->bytes, r->rounds);
    free(r->got);
    free(r->want);
    free(r);
}

/* ---- cases ------------------------------------------------------------ */

/* A transport that moves at most 512 bytes a call and injects a NEED code
 * one call in five; small messages. */
static void test_small_chunks(void **state)
{
    static const pcase pc = {
        .name = "small chunks", .flows = 600, .concurrent = 16,
        .max_chunk = 512, .need_percent = 20, .typical = 2000,
        .big_max = 64 * 1024, .max_io = 3000};

    (void)state;
    run_case(&pc);
}

/* Large moves, messages up to 256 KiB (larger than the windows). */
static void test_large_messages(void **state)
{
    static const pcase pc = {
        .name = "large messages", .flows = 160, .concurrent = 24,
        .max_chunk = 64 * 1024, .need_percent = 10, .typical = 16 * 1024,
        .big_max = 256 * 1024, .max_io = 64 * 1024};

    (void)state;
    run_case(&pc);
}

/* One byte at a time, with NEED codes half the time: every prefix and
 * head is cut everywhere. */
static void test_byte_by_byte(void **state)
{
    static const pcase pc = {
        .name = "byte by byte", .flows = 60, .concurrent = 6,
        .max_chunk = 1, .need_percent = 50, .typical = 300,
        .big_max = 4000, .max_io = 700};

    (void)state;
    run_case(&pc);
}

int main(void)
{
    const char *only = getenv("STRATA_TEST_FILTER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_chunks),
        cmocka_unit_test(test_large_messages),
        cmocka_unit_test(test_byte_by_byte),
    };

    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);   /* replay one test with its seed */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
