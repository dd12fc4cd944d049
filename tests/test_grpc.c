/* The grpc layer over strata HTTP/2 on the pipe pair: a strata grpc client
 * on one connection end, a strata h2 server with strata_grpc_accept on the
 * other, both driven from this thread.
 *
 * Calls: the four call types with their messages checked byte for byte,
 * many calls on one connection, metadata both ways ("-bin" values with NUL
 * and 0xff bytes in the request, the response head and the trailers),
 * statuses with a percent-encoded message, trailers-only answers, unknown
 * methods, gzip both ways, limits (max_recv, max_send, a gzip bomb),
 * cancellation and deadlines both ways, grpc-timeout parsing and
 * formatting, and per-call back-pressure (one stalled call, another one
 * flowing on the same connection).
 *
 * Hostile clients: requests written by hand on the h2 layer (wrong
 * content-type, no te, a bad grpc-timeout, an unknown grpc-encoding,
 * broken message prefixes, a message cut short) get the status the gRPC
 * over HTTP/2 specification gives, with a readable message, and the
 * connection keeps serving calls afterwards.
 *
 * Every test counts both sides' allocations (strata_test_meter): once the
 * calls and connections are freed nothing is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>
#include <strata/grpc.h>

#include "harness.h"

#define SVC "/strata.test.Echo/"
#define ROUNDS 200000       /* pump rounds before a wait counts as stuck */

static const strata_grpc_method methods[] = {
    {SVC "Unary", (void *)"unary"},
    {SVC "ClientStream", (void *)"client-stream"},
    {SVC "ServerStream", (void *)"server-stream"},
    {SVC "Bidi", (void *)"bidi"},
};

/* The interop suite's special_status_message. */
static const char special[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
    "\xf0\x9f\x98\x88\t\n";

/* ---- a tap under each connection: the bytes it wrote ------------------ */

typedef struct tap {
    strata_stream base;
    size_t *sent;
} tap;

static ssize_t tap_recv(strata_stream *s, void *buf, size_t len,
                        unsigned *flags)
{
    return strata_recv(s->lower, buf, len, flags);
}

static ssize_t tap_sendv(strata_stream *s, const struct iovec *iov, int n,
                         unsigned flags)
{
    ssize_t r = strata_sendv(s->lower, iov, n, flags);

    if (r > 0)
        *((tap *)s)->sent += (size_t)r;
    return r;
}

static const strata_stream_ops tap_ops = {
    "tap", tap_recv, tap_sendv, NULL, NULL, NULL, NULL, NULL, NULL,
};

static strata_stream *tap_new(strata_stream *lower, size_t *sent)
{
    tap *t = calloc(1, sizeof *t);

    assert_non_null(t);
    strata_stream_init(&t->base, &tap_ops, lower, NULL);
    t->base.heap = 1;       /* freed by strata_free with malloc's free */
    t->sent = sent;
    return &t->base;
}

/* ---- the rig: two connections over the pipe pair ---------------------- */

typedef struct rig {
    strata_h2 *c, *s;
    size_t c_sent, s_sent;          /* bytes each connection wrote */
    strata_test_meter mc, ms;       /* client's and server's memory */
    strata_allocator ac, as;
    strata_grpc_opts so;            /* the server's accept options */
} rig;

static void rig_open_with(rig *r, const strata_pipe_opts *po,
                          uint32_t s_window)
{
    strata_stream *a, *b;
    strata_h2_opts co, ho;

    memset(r, 0, sizeof *r);
    r->ac = strata_test_meter_allocator(&r->mc);
    r->as = strata_test_meter_allocator(&r->ms);
    memset(&co, 0, sizeof co);
    memset(&ho, 0, sizeof ho);
    co.role = STRATA_H2_CLIENT;
    ho.role = STRATA_H2_SERVER;
    ho.stream_window = s_window;
    assert_int_equal(strata_pipe_pair(&a, &b, po, NULL), 0);
    r->c = strata_h2_new(tap_new(a, &r->c_sent), &co, &r->ac);
    r->s = strata_h2_new(tap_new(b, &r->s_sent), &ho, &r->as);
    assert_non_null(r->c);
    assert_non_null(r->s);
    r->so.methods = methods;
    r->so.n_methods = sizeof methods / sizeof methods[0];
}

static void rig_open(rig *r)
{
    rig_open_with(r, NULL, 0);
}

/* Frees both connections; by now every call was freed, so both sides'
 * memory must be back to nothing. */
static void rig_close(rig *r)
{
    strata_h2_free(r->c);
    strata_h2_free(r->s);
    assert_int_equal(r->mc.bytes, 0);
    assert_int_equal(r->mc.count.live, 0);
    assert_int_equal(r->ms.bytes, 0);
    assert_int_equal(r->ms.count.live, 0);
}

static void pump(rig *r)
{
    (void)strata_h2_drive(r->c);
    (void)strata_h2_drive(r->s);
}

static void settle(rig *r)
{
    int i;

    for (i = 0; i < 20; i++)
        pump(r);
}

static int need(ssize_t v)
{
    return v == STRATA_NEED_READ || v == STRATA_NEED_WRITE;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint64_t x = seed;
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(strata_rand(&x) >> 24);
}

/* Text that compresses well (gzip tests). */
static void fill_text(uint8_t *p, size_t n)
{
    static const char words[] = "the quick brown fox jumps over the lazy "
                                "dog while strata streams carry grpc calls ";
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)words[(i * 7 / 5) % (sizeof words - 1)];
}

/* ---- calls ------------------------------------------------------------ */

static strata_stream *call_with(rig *r, const char *method,
                                const strata_grpc_opts *extra)
{
    strata_grpc_opts o;
    strata_stream *cc = NULL;
    char path[128];

    if (extra)
        o = *extra;
    else
        memset(&o, 0, sizeof o);
    snprintf(path, sizeof path, SVC "%s", method);
    o.path = path;
    o.authority = "test";
    assert_int_equal(strata_grpc_call(r->c, &o, &r->ac, &cc), 0);
    assert_non_null(cc);
    return cc;
}

static strata_stream *call(rig *r, const char *method)
{
    return call_with(r, method, NULL);
}

static strata_stream *accept_h2(rig *r)
{
    strata_stream *s = NULL;
    int i;

    for (i = 0; i < 1000 && !s; i++) {
        pump(r);
        s = strata_h2_accept(r->s);
    }
    assert_non_null(s);
    return s;
}

/* The next request as a server call: strata_grpc_accept's status. */
static int serve_with(rig *r, const strata_grpc_opts *so, strata_stream **out)
{
    *out = NULL;
    return strata_grpc_accept(accept_h2(r), so ? so : &r->so, &r->as, out);
}

static strata_stream *serve(rig *r)
{
    strata_stream *sc;

    assert_int_equal(serve_with(r, NULL, &sc), 0);
    assert_non_null(sc);
    return sc;
}

/* Send one whole message (continuing partial sends): 0 or the error. */
static int put(rig *r, strata_stream *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t off = 0;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        ssize_t w = strata_send(s, b + off, n - off, STRATA_MSG_END);

        if (w >= 0) {
            off += (size_t)w;
            if (off == n)
                return 0;
        } else if (!need(w)) {
            return (int)w;
        }
        pump(r);
    }
    fail_msg("send stuck at %zu of %zu", off, n);
    return -1;
}

/* Read one message into buf: 0 with its length, or the final status
 * (STRATA_EOF, an error). Reads in pieces of varying size. */
static int get(rig *r, strata_stream *s, uint8_t *buf, size_t cap,
               size_t *len)
{
    size_t got = 0;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        size_t want = 1 + (size_t)(i * 7919) % 9000;
        unsigned fl = 0;
        ssize_t g;

        if (want > cap + 1 - got)
            want = cap + 1 - got;
        g = strata_recv(s, buf + got, want, &fl);
        if (g >= 0) {
            got += (size_t)g;
            assert_true(got <= cap);
            assert_true(g > 0 || (fl & STRATA_MSG_END));
            if (fl & STRATA_MSG_END) {
                *len = got;
                return 0;
            }
            continue;
        }
        if (!need(g))   /* after a part of a message if it was cut */
            return (int)g;
        pump(r);
    }
    fail_msg("recv stuck after %zu bytes", got);
    return -1;
}

/* The call's end: no more messages, then EOF or an error. */
static int end_of(rig *r, strata_stream *s)
{
    uint8_t buf[64];
    size_t n;
    int rv = get(r, s, buf, sizeof buf, &n);

    assert_int_not_equal(rv, 0);
    return rv;
}

/* Move one message from one end to the other with both ends active, so
 * messages larger than the windows go through; checks it byte for byte
 * and that MSG_END comes exactly at its end. */
static void xfer_from(rig *r, strata_stream *from, strata_stream *to,
                      const uint8_t *msg, size_t n, size_t sent)
{
    uint8_t *got = malloc(n + 1);
    size_t rcvd = 0;
    int sent_all = 0, ended = 0, i;

    assert_non_null(got);
    for (i = 0; i < ROUNDS && !(sent_all && ended); i++) {
        if (!sent_all) {
            ssize_t w = strata_send(from, msg + sent, n - sent,
                                    STRATA_MSG_END);

            if (w >= 0) {
                sent += (size_t)w;
                sent_all = sent == n;
            } else {
                assert_true(need(w));
            }
        }
        if (!ended) {
            size_t want = 1 + (size_t)(i * 104729) % 20000;
            unsigned fl = 0;
            ssize_t g;

            if (want > n + 1 - rcvd)
                want = n + 1 - rcvd;
            g = strata_recv(to, got + rcvd, want, &fl);
            if (g >= 0) {
                rcvd += (size_t)g;
                assert_true(rcvd <= n);
                ended = (fl & STRATA_MSG_END) != 0;
                if (ended)
                    assert_int_equal(rcvd, n);
            } else {
                assert_true(need(g));
            }
        }
        pump(r);
    }
    assert_true(sent_all && ended);
    assert_memory_equal(got, msg, n);
    free(got);
}

static void xfer(rig *r, strata_stream *from, strata_stream *to,
                 const uint8_t *msg, size_t n)
{
    xfer_from(r, from, to, msg, n, 0);
}

static void half_close(rig *r, strata_stream *s)
{
    int i, rv = STRATA_NEED_READ;

    for (i = 0; i < 1000 && need(rv); i++) {
        rv = strata_shutdown(s);
        pump(r);
    }
    assert_int_equal(rv, 0);
}

static void finish(rig *r, strata_stream *s, int status, const char *msg,
                   const strata_grpc_md *md, size_t n)
{
    int i, rv = STRATA_NEED_READ;

    for (i = 0; i < 1000 && need(rv); i++) {
        rv = strata_grpc_finish(s, status, msg, md, n);
        pump(r);
    }
    assert_int_equal(rv, 0);
}

/* A whole unary call on the connection: it still serves. */
static void unary_ok(rig *r)
{
    uint8_t req[300], resp[5000], buf[5000];
    strata_stream *cc, *sc;
    size_t n;

    fill(req, sizeof req, 1);
    fill(resp, sizeof resp, 2);
    cc = call(r, "Unary");
    sc = serve(r);
    xfer(r, cc, sc, req, sizeof req);
    half_close(r, cc);
    assert_int_equal(get(r, sc, buf, sizeof buf, &n), STRATA_EOF);
    xfer(r, sc, cc, resp, sizeof resp);
    finish(r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(r, cc), STRATA_EOF);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_OK);
    assert_string_equal(strata_grpc_message(cc), "");
    strata_free(cc);
    strata_free(sc);
}

/* Printable, non-empty: what a person can read in a log. */
static void assert_readable(const char *m)
{
    size_t i;

    assert_non_null(m);
    assert_true(strlen(m) > 3);
    for (i = 0; m[i]; i++)
        assert_true((unsigned char)m[i] >= 0x20 || m[i] == '\t'
                    || m[i] == '\n' || m[i] == '\r');
}

/* ---- the four call types ---------------------------------------------- */

static void test_unary(void **state)
{
    static uint8_t req[100000], resp[70000];
    uint8_t buf[16];
    strata_stream *cc, *sc;
    size_t n;
    rig r;

    (void)state;
    rig_open(&r);
    fill(req, sizeof req, 10);
    fill(resp, sizeof resp, 11);
    cc = call(&r, "Unary");
    sc = serve(&r);
    assert_ptr_equal(strata_grpc_method_of(sc), &methods[0]);
    assert_string_equal(strata_grpc_method_of(sc)->ud, "unary");
    assert_int_equal(strata_grpc_status(cc), -1);
    assert_null(strata_grpc_message(cc));
    xfer(&r, cc, sc, req, sizeof req);     /* larger than a window */
    half_close(&r, cc);
    assert_int_equal(get(&r, sc, buf, sizeof buf, &n), STRATA_EOF);
    xfer(&r, sc, cc, resp, sizeof resp);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_OK);
    assert_string_equal(strata_grpc_message(cc), "");
    /* the call ended: a second finish is refused, the status stays */
    assert_int_equal(strata_grpc_finish(sc, STRATA_GRPC_OK, NULL, NULL, 0),
                     STRATA_ERR_STATE);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

static const size_t stream_sizes[] = {0, 1, 5, 4096, 16384, 70000, 3};

static void test_client_streaming(void **state)
{
    static uint8_t msg[70000], buf[16];
    strata_stream *cc, *sc;
    size_t i, n;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "ClientStream");
    sc = serve(&r);
    assert_string_equal(strata_grpc_method_of(sc)->ud, "client-stream");
    for (i = 0; i < sizeof stream_sizes / sizeof stream_sizes[0]; i++) {
        fill(msg, stream_sizes[i], (uint32_t)(100 + i));
        xfer(&r, cc, sc, msg, stream_sizes[i]);
    }
    half_close(&r, cc);
    assert_int_equal(get(&r, sc, buf, sizeof buf, &n), STRATA_EOF);
    fill(msg, 12, 99);
    xfer(&r, sc, cc, msg, 12);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

static void test_server_streaming(void **state)
{
    static uint8_t msg[70000], buf[16];
    strata_stream *cc, *sc;
    size_t i, n;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "ServerStream");
    sc = serve(&r);
    fill(msg, 7, 7);
    xfer(&r, cc, sc, msg, 7);
    half_close(&r, cc);
    assert_int_equal(get(&r, sc, buf, sizeof buf, &n), STRATA_EOF);
    for (i = 0; i < sizeof stream_sizes / sizeof stream_sizes[0]; i++) {
        fill(msg, stream_sizes[i], (uint32_t)(200 + i));
        xfer(&r, sc, cc, msg, stream_sizes[i]);
    }
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_OK);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* Ping-pong: each request answered before the next goes. */
static void test_bidi(void **state)
{
    static uint8_t msg[70001], buf[16];
    strata_stream *cc, *sc;
    size_t i, n;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Bidi");
    sc = serve(&r);
    for (i = 0; i < sizeof stream_sizes / sizeof stream_sizes[0]; i++) {
        fill(msg, stream_sizes[i], (uint32_t)(300 + i));
        xfer(&r, cc, sc, msg, stream_sizes[i]);
        fill(msg, stream_sizes[i] + 1, (uint32_t)(400 + i));
        xfer(&r, sc, cc, msg, stream_sizes[i] + 1);
    }
    half_close(&r, cc);
    assert_int_equal(get(&r, sc, buf, sizeof buf, &n), STRATA_EOF);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* 64 calls open at once on one connection, their messages interleaved on
 * the wire; the server finds each call by its metadata. */
#define MANY 64
static void test_many_calls(void **state)
{
    strata_stream *cc[MANY], *sc[MANY];
    uint8_t msg[3000], buf[3000];
    strata_grpc_opts o;
    strata_grpc_md md;
    char num[16];
    size_t n, len;
    int i, k;
    rig r;

    (void)state;
    rig_open(&r);
    memset(&o, 0, sizeof o);
    md.key = "x-call";
    md.len = 0;
    o.md = &md;
    o.n_md = 1;
    for (i = 0; i < MANY; i++) {
        snprintf(num, sizeof num, "%d", i);
        md.value = num;
        cc[i] = call_with(&r, methods[i % 4].path + sizeof SVC - 1, &o);
        for (k = 0; k < 2; k++) {
            fill(msg, (size_t)(i * 37 + k) % sizeof msg,
                 (uint32_t)(i * 2 + k));
            assert_int_equal(put(&r, cc[i],  msg,
                                 (size_t)(i * 37 + k) % sizeof msg), 0);
        }
        half_close(&r, cc[i]);
    }
    memset(sc, 0, sizeof sc);
    for (i = 0; i < MANY; i++) {
        strata_stream *s = serve(&r);
        const char *v = strata_grpc_md_get(s, "x-call", &len);

        assert_non_null(v);
        k = atoi(v);
        assert_true(k >= 0 && k < MANY && sc[k] == NULL);
        assert_ptr_equal(strata_grpc_method_of(s), &methods[k % 4]);
        sc[k] = s;
    }
    /* answers in another order than the requests */
    for (i = MANY - 1; i >= 0; i--) {
        for (k = 0; k < 2; k++) {
            n = (size_t)(i * 37 + k) % sizeof msg;
            fill(msg, n, (uint32_t)(i * 2 + k));
            assert_int_equal(get(&r, sc[i], buf, sizeof buf, &len), 0);
            assert_int_equal(len, n);
            assert_memory_equal(buf, msg, n);
        }
        assert_int_equal(end_of(&r, sc[i]), STRATA_EOF);
        fill(msg, (size_t)i * 11, (uint32_t)(1000 + i));
        assert_int_equal(put(&r, sc[i], msg, (size_t)i * 11), 0);
        finish(&r, sc[i], i % 5 ? STRATA_GRPC_OK : STRATA_GRPC_ABORTED,
               i % 5 ? NULL : "aborted", NULL, 0);
    }
    for (i = 0; i < MANY; i++) {
        fill(msg, (size_t)i * 11, (uint32_t)(1000 + i));
        assert_int_equal(get(&r, cc[i], buf, sizeof buf, &len), 0);
        assert_int_equal(len, (size_t)i * 11);
        assert_memory_equal(buf, msg, len);
        assert_int_equal(end_of(&r, cc[i]),
                         i % 5 ? STRATA_EOF : STRATA_ERR_GRPC);
        assert_int_equal(strata_grpc_status(cc[i]),
                         i % 5 ? STRATA_GRPC_OK : STRATA_GRPC_ABORTED);
        strata_free(cc[i]);
        strata_free(sc[i]);
    }
    assert_int_equal(strata_h2_open_streams(r.c), 0);
    rig_close(&r);
}

/* ---- metadata ----------------------------------------------------------- */

static const uint8_t bin5[5] = {0x00, 0xff, 0x10, 0x00, 0x80};

/* A head holds at most 20 metadata entries we send; a binary value
 * read twice is decoded once (the call's memory does not grow). */
static void test_metadata_limits(void **state)
{
    strata_grpc_md md[21];
    strata_grpc_opts o;
    strata_stream *cc = NULL, *sc;
    const void *first, *again;
    size_t len = 0, used;
    int i;
    rig r;

    (void)state;
    rig_open(&r);
    for (i = 0; i < 21; i++) {
        md[i].key = i == 0 ? "x-data-bin" : "x-pad";
        md[i].value = i == 0 ? "\001\002\003" : "v";
        md[i].len = i == 0 ? 3 : 0;
    }
    memset(&o, 0, sizeof o);
    o.path = SVC "Unary";
    o.authority = "test";
    o.md = md;
    o.n_md = 21;
    assert_int_equal(strata_grpc_call(r.c, &o, &r.ac, &cc), STRATA_ERR_ARG);
    assert_null(cc);
    o.n_md = 20;
    cc = call_with(&r, "Unary", &o);
    sc = serve(&r);
    first = strata_grpc_md_get(sc, "x-data-bin", &len);
    assert_non_null(first);
    assert_int_equal(len, 3);
    assert_memory_equal(first, "\001\002\003", 3);
    used = r.ms.bytes;
    for (i = 0; i < 100; i++) {
        again = strata_grpc_md_get(sc, "x-data-bin", &len);
        assert_ptr_equal(again, first);
    }
    assert_int_equal(r.ms.bytes, used);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

/* A metadata value received (trailer: from the trailers) is these bytes. */
static void check_md(strata_stream *c, int trailer, const char *key,
                     const void *want, size_t n)
{
    size_t len = (size_t)-1;
    const void *v = trailer ? strata_grpc_trailer_get(c, key, &len)
                            : strata_grpc_md_get(c, key, &len);

    if (!v)
        fail_msg("no metadata \"%s\"", key);
    assert_int_equal(len, n);
    assert_memory_equal(v, want, n);
}

static void test_metadata_both_ways(void **state)
{
    uint8_t bytes[256];
    strata_grpc_md req[4], head[2], trail[3];
    strata_grpc_opts o;
    strata_stream *cc, *sc;
    const char *wire;
    size_t len, i;
    rig r;

    (void)state;
    for (i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(255 - i);  /* every byte value, 0xff first */
    rig_open(&r);
    req[0] = (strata_grpc_md){"x-user", "alice", 0};
    req[1] = (strata_grpc_md){"trace-bin", bin5, sizeof bin5};
    req[2] = (strata_grpc_md){"all-bin", bytes, sizeof bytes};
    req[3] = (strata_grpc_md){"empty-bin", "", 0};
    memset(&o, 0, sizeof o);
    o.md = req;
    o.n_md = 4;
    cc = call_with(&r, "Unary", &o);
    sc = serve(&r);
    check_md(sc, 0, "x-user", "alice", 5);
    check_md(sc, 0, "trace-bin", bin5,
              sizeof bin5);
    check_md(sc, 0, "all-bin", bytes,
              sizeof bytes);
    check_md(sc, 0, "empty-bin", "", 0);
    assert_null(strata_grpc_md_get(sc, "x-none", &len));
    /* on the wire a "-bin" value is base64 (padding optional) */
    wire = strata_h2_get(strata_grpc_h2_stream(sc), "trace-bin");
    assert_non_null(wire);
    assert_true(strcmp(wire, "AP8QAIA") == 0 || strcmp(wire, "AP8QAIA=") == 0);
    assert_string_equal(strata_h2_get(strata_grpc_h2_stream(sc), "te"),
                        "trailers");
    assert_non_null(strata_h2_get(strata_grpc_h2_stream(sc), "user-agent"));

    head[0] = (strata_grpc_md){"x-head", "h", 0};
    head[1] = (strata_grpc_md){"head-bin", bytes, 1};  /* just 0xff */
    assert_int_equal(strata_grpc_send_head(sc, head, 2), 0);
    assert_int_equal(strata_grpc_send_head(sc, head, 2), STRATA_ERR_STATE);
    for (i = 0; i < 1000; i++) {
        int rv = strata_grpc_head(cc);

        if (rv == 0)
            break;
        assert_true(need(rv));
        pump(&r);
    }
    assert_int_equal(strata_grpc_head(cc), 0);
    check_md(cc, 0, "x-head", "h", 1);
    check_md(cc, 0, "head-bin", bytes, 1);
    assert_null(strata_grpc_trailer_get(cc, "x-trail", &len));

    xfer(&r, cc, sc, bytes, 10);
    half_close(&r, cc);
    assert_int_equal(end_of(&r, sc), STRATA_EOF);
    xfer(&r, sc, cc, bytes, 20);
    trail[0] = (strata_grpc_md){"x-trail", "t t", 0};
    trail[1] = (strata_grpc_md){"trail-bin", bin5, sizeof bin5};
    trail[2] = (strata_grpc_md){"all-bin", bytes, sizeof bytes};
    finish(&r, sc, STRATA_GRPC_OK, NULL, trail, 3);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    check_md(cc, 1, "x-trail", "t t", 3);
    check_md(cc, 1, "trail-bin", bin5,
              sizeof bin5);
    check_md(cc, 1, "all-bin", bytes,
              sizeof bytes);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* ---- statuses ----------------------------------------------------------- */

/* A status other than OK with the interop suite's special message: it
 * goes percent-encoded (printable ASCII on the wire) and comes back
 * exactly, with the messages sent before it and the trailers. */
static void test_status_message_round_trip(void **state)
{
    strata_grpc_md trail = {"detail-bin", bin5, sizeof bin5};
    uint8_t msg[100];
    strata_stream *cc, *sc;
    const strata_h2_header *t;
    const char *wire = NULL;
    size_t n, i;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "ServerStream");
    sc = serve(&r);
    half_close(&r, cc);
    assert_int_equal(end_of(&r, sc), STRATA_EOF);
    fill(msg, sizeof msg, 5);
    xfer(&r, sc, cc, msg, sizeof msg);
    finish(&r, sc, STRATA_GRPC_UNKNOWN, special, &trail, 1);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_UNKNOWN);
    assert_string_equal(strata_grpc_message(cc), special);
    check_md(cc, 1, "detail-bin", bin5,
              sizeof bin5);
    t = strata_h2_trailers(strata_grpc_h2_stream(cc), &n);
    assert_non_null(t);
    for (i = 0; i < n; i++)
        if (strcmp(t[i].name, "grpc-message") == 0)
            wire = t[i].value;
    assert_non_null(wire);
    for (i = 0; wire[i]; i++)
        assert_true(wire[i] >= 0x20 && wire[i] <= 0x7e);
    assert_non_null(strstr(wire, "%09"));       /* the tab, encoded */
    assert_non_null(strstr(wire, "test with whitespace"));
    /* the status stays, and so does the error */
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_string_equal(strata_grpc_status_name(STRATA_GRPC_UNKNOWN),
                        "UNKNOWN");
    assert_string_equal(strata_grpc_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(strata_grpc_status_name(17), "?");
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* Finishing with nothing sent is a trailers-only answer: the status in
 * the response head, which ends the stream. */
static void test_trailers_only(void **state)
{
    strata_grpc_md trail = {"why", "missing", 0};
    strata_stream *cc, *sc, *h;
    size_t len;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Unary");
    sc = serve(&r);
    finish(&r, sc, STRATA_GRPC_NOT_FOUND, "no such thing", &trail, 1);
    for (len = 0; len < 1000 && need(strata_grpc_head(cc)); len++)
        pump(&r);
    assert_int_equal(strata_grpc_head(cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_NOT_FOUND);
    assert_string_equal(strata_grpc_message(cc), "no such thing");
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    check_md(cc, 1, "why", "missing", 7);
    h = strata_grpc_h2_stream(cc);
    assert_int_equal(strata_h2_status(h), 200);
    assert_string_equal(strata_h2_get(h, "grpc-status"), "5");
    assert_non_null(strata_h2_get(h, "content-type"));
    assert_null(strata_h2_trailers(h, &len));
    strata_free(cc);
    strata_free(sc);

    /* OK the same way: EOF, no message */
    cc = call(&r, "Unary");
    sc = serve(&r);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_OK);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

static void test_unimplemented(void **state)
{
    strata_stream *cc, *sc;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Nope");
    assert_int_equal(serve_with(&r, NULL, &sc), STRATA_ERR_UNSUPPORTED);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_UNIMPLEMENTED);
    assert_readable(strata_grpc_message(cc));
    strata_free(cc);
    unary_ok(&r);
    rig_close(&r);
}

/* ---- a hostile client, written by hand on the h2 layer ------------------ */

typedef struct answer {
    int http;               /* :status */
    int grpc;               /* grpc-status from the trailers or head; -1 */
    char msg[256];          /* grpc-message as on the wire */
    char accept[64];        /* grpc-accept-encoding */
    size_t body;            /* DATA bytes */
} answer;

static const char *find(const strata_h2_header *h, size_t n,
                        const char *name)
{
    size_t i;

    for (i = 0; h && i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

/* Wait for the whole answer on a raw stream and say what it was. */
static void raw_answer(rig *r, strata_stream *cs, answer *a)
{
    const strata_h2_header *h, *t;
    size_t nh = 0, nt = 0;
    const char *v;
    uint8_t buf[4096];
    int i;

    memset(a, 0, sizeof *a);
    a->grpc = -1;
    for (i = 0; i < ROUNDS; i++) {
        ssize_t g = strata_read(cs, buf, sizeof buf);

        if (g > 0) {
            a->body += (size_t)g;
            continue;
        }
        if (!need(g)) {
            /* the answer ended, or a reset came after it */
            assert_true(g == STRATA_EOF || g == STRATA_ERR_CLOSED);
            break;
        }
        pump(r);
    }
    assert_true(i < ROUNDS);
    a->http = strata_h2_status(cs);
    h = strata_h2_head(cs, &nh);
    t = strata_h2_trailers(cs, &nt);
    v = find(t, nt, "grpc-status");
    if (!v)
        v = find(h, nh, "grpc-status");
    if (v)
        a->grpc = atoi(v);
    v = find(t, nt, "grpc-message");
    if (!v)
        v = find(h, nh, "grpc-message");
    snprintf(a->msg, sizeof a->msg, "%s", v ? v : "");
    v = find(h, nh, "grpc-accept-encoding");
    snprintf(a->accept, sizeof a->accept, "%s", v ? v : "");
}

#define BASE_HEAD                                                          \
    {":method", "POST"}, {":scheme", "http"}, {":authority", "test"},      \
    {":path", SVC "Unary"}

static strata_stream *raw_open(rig *r, const strata_h2_header *h, size_t n)
{
    strata_stream *cs = NULL;

    assert_int_equal(strata_h2_request(r->c, h, n, 0, &cs), 0);
    return cs;
}

static void raw_send(rig *r, strata_stream *cs, const void *p, size_t n)
{
    const uint8_t *b = p;
    int i;

    for (i = 0; i < ROUNDS && n > 0; i++) {
        ssize_t w = strata_send(cs, b, n, 0);

        if (w > 0) {
            b += w;
            n -= (size_t)w;
        } else {
            assert_true(need(w));
            pump(r);
        }
    }
    assert_int_equal(n, 0);
}

static void prefix(uint8_t out[5], unsigned flag, uint32_t len)
{
    out[0] = (uint8_t)flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* A request refused at its head: accept says why, the client gets the
 * status, and the connection still serves. */
static void refused_head(const strata_h2_header *h, size_t n, int want_rv,
                         int want_http, int want_grpc, answer *a)
{
    strata_stream *cs, *sc;
    uint8_t msg[5 + 3] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    rig r;

    rig_open(&r);
    cs = raw_open(&r, h, n);
    raw_send(&r, cs, msg, sizeof msg);
    half_close(&r, cs);
    assert_int_equal(serve_with(&r, NULL, &sc), want_rv);
    raw_answer(&r, cs, a);
    if (want_http)
        assert_int_equal(a->http, want_http);
    else    /* no status given by the specification: 200 or 400 */
        assert_true(a->http == 200 || a->http == 400);
    if (want_grpc >= 0) {
        assert_int_equal(a->grpc, want_grpc);
        assert_readable(a->msg);
    }
    strata_free(cs);
    unary_ok(&r);
    rig_close(&r);
}

static void test_wrong_content_type(void **state)
{
    static const strata_h2_header h[] = {
        BASE_HEAD, {"content-type", "application/json"}, {"te", "trailers"},
    };
    static const strata_h2_header none[] = {BASE_HEAD, {"te", "trailers"}};
    answer a;

    (void)state;
    /* the specification: "SHOULD respond with HTTP status of 415" */
    refused_head(h, 6, STRATA_ERR_PROTO, 415, -1, &a);
    refused_head(none, 5, STRATA_ERR_PROTO, 415, -1, &a);
}

static void test_not_post(void **state)
{
    static const strata_h2_header h[] = {
        {":method", "GET"}, {":scheme", "http"}, {":authority", "test"},
        {":path", SVC "Unary"}, {"content-type", "application/grpc"},
        {"te", "trailers"},
    };
    answer a;

    (void)state;
    refused_head(h, 6, STRATA_ERR_PROTO, 405, -1, &a);
}

static void test_missing_te(void **state)
{
    static const strata_h2_header h[] = {
        BASE_HEAD, {"content-type", "application/grpc"},
    };
    answer a;

    (void)state;
    refused_head(h, 5, STRATA_ERR_PROTO, 0, STRATA_GRPC_INTERNAL, &a);
}

static void test_bad_timeout(void **state)
{
    static const char *const bad[] = {"", "1", "m", "123456789m", "10x",
                                      "-5S", "1.5S", "5 S"};
    strata_h2_header h[] = {
        BASE_HEAD, {"content-type", "application/grpc+proto"},
        {"te", "trailers"}, {"grpc-timeout", NULL},
    };
    answer a;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h[6].value = bad[i];
        refused_head(h, 7, STRATA_ERR_PROTO, 0, STRATA_GRPC_INTERNAL, &a);
    }
}

static void test_unknown_encoding(void **state)
{
    static const strata_h2_header h[] = {
        BASE_HEAD, {"content-type", "application/grpc"}, {"te", "trailers"},
        {"grpc-encoding", "snappy"},
    };
    answer a;

    (void)state;
    refused_head(h, 7, STRATA_ERR_UNSUPPORTED, 200,
                 STRATA_GRPC_UNIMPLEMENTED, &a);
    assert_non_null(strstr(a.accept, "gzip"));
}

/* "-bin" values arrive padded or not (the specification: MUST accept
 * both). */
static void test_bin_padding_accepted(void **state)
{
    static const strata_h2_header h[] = {
        BASE_HEAD, {"content-type", "application/grpc"}, {"te", "trailers"},
        {"a-bin", "AP8QAIA="}, {"b-bin", "AP8QAIA"}, {"c-bin", "/w"},
    };
    strata_stream *cs, *sc;
    rig r;

    (void)state;
    rig_open(&r);
    cs = raw_open(&r, h, 9);
    half_close(&r, cs);
    sc = serve(&r);
    check_md(sc, 0, "a-bin", bin5, 5);
    check_md(sc, 0, "b-bin", bin5, 5);
    check_md(sc, 0, "c-bin", bin5 + 1, 1);
    assert_int_equal(end_of(&r, sc), STRATA_EOF);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    strata_free(sc);
    strata_free(cs);
    rig_close(&r);
}

/* A request whose messages are broken: accept takes it, the server's recv
 * fails with the status the server answers, the client sees it. */
static void refused_message(rig *r, const strata_grpc_opts *so,
                            const strata_h2_header *h, size_t nh,
                            const uint8_t *data, size_t n, int end,
                            int want_status)
{
    strata_stream *cs, *sc;
    uint8_t buf[256];
    size_t len;
    answer a;
    int rv;

    cs = raw_open(r, h, nh);
    raw_send(r, cs, data, n);
    if (end)
        half_close(r, cs);
    assert_int_equal(serve_with(r, so, &sc), 0);
    while ((rv = get(r, sc, buf, sizeof buf, &len)) == 0)
        ;   /* whole messages before the broken one */
    assert_true(rv < 0 && rv != STRATA_EOF);
    assert_int_equal(strata_grpc_status(sc), want_status);
    raw_answer(r, cs, &a);
    assert_int_equal(a.http, 200);
    assert_int_equal(a.grpc, want_status);
    assert_readable(a.msg);
    strata_free(sc);
    strata_free(cs);
}

static const strata_h2_header plain_head[] = {
    BASE_HEAD, {"content-type", "application/grpc"}, {"te", "trailers"},
};
static const strata_h2_header gzip_head[] = {
    BASE_HEAD, {"content-type", "application/grpc"}, {"te", "trailers"},
    {"grpc-encoding", "gzip"},
};

static void test_compressed_without_encoding(void **state)
{
    uint8_t d[5 + 4];
    rig r;

    (void)state;
    rig_open(&r);
    prefix(d, 1, 4);
    memcpy(d + 5, "abcd", 4);
    refused_message(&r, NULL, plain_head, 6, d, sizeof d, 1,
                    STRATA_GRPC_INTERNAL);
    unary_ok(&r);
    rig_close(&r);
}

static void test_flag_other_bits(void **state)
{
    static const unsigned flags[] = {2, 3, 0x80, 0xff};
    uint8_t d[5 + 4];
    size_t i;
    rig r;

    (void)state;
    rig_open(&r);
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        prefix(d, flags[i], 4);
        memcpy(d + 5, "abcd", 4);
        refused_message(&r, NULL, plain_head, 6, d, sizeof d, 1,
                        STRATA_GRPC_INTERNAL);
    }
    unary_ok(&r);
    rig_close(&r);
}

/* END_STREAM inside a message: in its prefix, in its payload. */
static void test_truncated_message(void **state)
{
    uint8_t d[5 + 10];
    rig r;

    (void)state;
    rig_open(&r);
    prefix(d, 0, 10);
    memset(d + 5, 'x', 10);
    refused_message(&r, NULL, plain_head, 6, d, 5 + 4, 1,
                    STRATA_GRPC_INTERNAL);
    refused_message(&r, NULL, plain_head, 6, d, 3, 1, STRATA_GRPC_INTERNAL);
    /* a whole message, then a cut one */
    prefix(d, 0, 0);
    prefix(d + 5, 0, 7);
    refused_message(&r, NULL, plain_head, 6, d, 10, 1, STRATA_GRPC_INTERNAL);
    unary_ok(&r);
    rig_close(&r);
}

/* A message declared over max_recv is refused from its prefix: the
 * server's recv delivers none of it and fails, and the server does not
 * gather it (its memory stays far below the declared size while the
 * client keeps sending), compressed or not. */
static void over_max_recv(int compressed)
{
    static uint8_t junk[200000];
    strata_grpc_opts so;
    strata_stream *cs, *sc;
    uint8_t d[5], buf[64];
    size_t len, before, sent;
    answer a;
    int i, rv;
    rig r;

    rig_open(&r);
    so = r.so;
    so.max_recv = 1u << 20;
    cs = raw_open(&r, compressed ? gzip_head : plain_head,
                  compressed ? 7 : 6);
    prefix(d, compressed ? 1 : 0, 3u << 20);
    raw_send(&r, cs, d, 5);
    raw_send(&r, cs, junk, 1000);
    assert_int_equal(serve_with(&r, &so, &sc), 0);
    settle(&r);
    before = r.ms.bytes;
    r.ms.peak_bytes = r.ms.bytes;
    rv = get(&r, sc, buf, sizeof buf, &len);
    assert_true(rv < 0 && rv != STRATA_EOF);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_RESOURCE_EXHAUSTED);
    /* the client goes on sending what it declared, as far as it may */
    for (sent = 0, i = 0; i < 2000 && sent < sizeof junk; i++) {
        ssize_t w = strata_send(cs, junk, sizeof junk - sent, 0);

        if (w > 0)
            sent += (size_t)w;
        else if (!need(w))
            break;      /* the server reset the stream */
        pump(&r);
    }
    fprintf(stderr, "over max_recv (%s): server memory %zu before, peak "
            "%zu; client sent %zu more bytes\n",
            compressed ? "gzip" : "identity", before, r.ms.peak_bytes, sent);
    assert_true(r.ms.peak_bytes < before + 256u * 1024u);
    raw_answer(&r, cs, &a);
    assert_int_equal(a.grpc, STRATA_GRPC_RESOURCE_EXHAUSTED);
    assert_readable(a.msg);
    strata_free(sc);
    strata_free(cs);
    unary_ok(&r);
    rig_close(&r);
}

static void test_over_max_recv(void **state)
{
    (void)state;
    over_max_recv(0);
}

static void test_over_max_recv_compressed(void **state)
{
    (void)state;
    over_max_recv(1);
}

/* The strata client learns the same from a server call's limit: the
 * server answers RESOURCE_EXHAUSTED and the client's recv says so; and a
 * client's own max_recv refuses a large answer. */
static void test_max_recv_both_sides(void **state)
{
    static uint8_t msg[5000];
    strata_grpc_opts so, co;
    strata_stream *cc, *sc;
    uint8_t buf[64];
    size_t len;
    rig r;

    (void)state;
    rig_open(&r);
    so = r.so;
    so.max_recv = 4096;
    cc = call(&r, "Unary");
    assert_int_equal(serve_with(&r, &so, &sc), 0);
    xfer(&r, cc, sc, msg, 4096);        /* at the limit: fine */
    assert_int_equal(put(&r, cc, msg, 4097), 0);
    assert_true(get(&r, sc, buf, sizeof buf, &len) < STRATA_EOF);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_RESOURCE_EXHAUSTED);
    strata_free(cc);
    strata_free(sc);

    memset(&co, 0, sizeof co);
    co.max_recv = 100;
    cc = call_with(&r, "Unary", &co);
    sc = serve(&r);
    half_close(&r, cc);
    assert_int_equal(put(&r, sc, msg, 101), 0);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_RESOURCE_EXHAUSTED);
    assert_readable(strata_grpc_message(cc));
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

/* A server that is not quite gRPC, written by hand on the h2 layer: the
 * client synthesizes a status (the specification: "Implementations must
 * synthesize a Status & Status-Message"), its recv says STRATA_ERR_GRPC
 * every time, and the connection goes on. */
typedef struct broken {
    int http;
    const char *ctype;      /* NULL: none */
    const uint8_t *data;    /* DATA after the head */
    size_t n;
    const char *status;     /* grpc-status in trailers; NULL: no trailers */
    uint32_t reset;         /* instead of an end: RST_STREAM this code */
    int want;
    int no_text;            /* a message may be empty (the peer's fault) */
} broken;

static void broken_server(rig *r, const broken *b)
{
    strata_h2_header head[1] = {{"content-type", b->ctype}};
    strata_h2_header trail[1] = {{"grpc-status", b->status}};
    strata_stream *cc, *hs;
    uint8_t buf[64];
    size_t len;
    int i, rv = STRATA_NEED_READ;

    cc = call(r, "Unary");
    half_close(r, cc);
    hs = accept_h2(r);
    if (b->reset) {
        assert_int_equal(strata_h2_reset(hs, b->reset), 0);
    } else {
        assert_int_equal(strata_h2_respond(hs, b->http, head, b->ctype ? 1
                                                                       : 0,
                                           0), 0);
        if (b->n)
            assert_int_equal(put(r, hs, b->data, b->n), 0);
        for (i = 0; i < 1000 && need(rv); i++) {
            rv = b->status ? strata_h2_send_trailers(hs, trail, 1)
                           : strata_shutdown(hs);
            pump(r);
        }
        assert_int_equal(rv, 0);
    }
    while ((rv = get(r, cc, buf, sizeof buf, &len)) == 0)
        ;   /* the whole messages before the end */
    if (rv != STRATA_ERR_GRPC || strata_grpc_status(cc) != b->want)
        fail_msg("HTTP %d, reset %u: %s, status %d (%s), not %d", b->http,
                 (unsigned)b->reset, strata_strerror(rv),
                 strata_grpc_status(cc), strata_grpc_message(cc), b->want);
    if (!b->no_text && strlen(strata_grpc_message(cc)) < 4)
        fail_msg("HTTP %d, reset %u, status %d: message \"%s\"", b->http,
                 (unsigned)b->reset, b->want, strata_grpc_message(cc));
    assert_non_null(strata_grpc_message(cc));
    assert_int_equal(end_of(r, cc), STRATA_ERR_GRPC);   /* it stays */
    strata_free(cc);
    strata_free(hs);
}

static void test_client_broken_server(void **state)
{
    static const uint8_t bad_flag[] = {2, 0, 0, 0, 1, 'x'};
    static const uint8_t cut[] = {0, 0, 0, 0, 9, 'x'};
    static const uint8_t ok_msg[] = {0, 0, 0, 0, 1, 'x'};
    static const broken cases[] = {
        {503, NULL, NULL, 0, NULL, 0, STRATA_GRPC_UNAVAILABLE, 0},
        {404, "text/html", NULL, 0, NULL, 0, STRATA_GRPC_UNIMPLEMENTED, 0},
        {200, "text/html", NULL, 0, NULL, 0, STRATA_GRPC_UNKNOWN, 0},
        /* a gRPC head, then the end without a status */
        {200, "application/grpc", ok_msg, 6, NULL, 0, STRATA_GRPC_UNKNOWN, 0},
        {200, "application/grpc", NULL, 0, "abc", 0, STRATA_GRPC_UNKNOWN,
         1},
        {0, NULL, NULL, 0, NULL, STRATA_H2_REFUSED_STREAM,
         STRATA_GRPC_UNAVAILABLE, 0},
        {0, NULL, NULL, 0, NULL, STRATA_H2_ENHANCE_YOUR_CALM,
         STRATA_GRPC_RESOURCE_EXHAUSTED, 0},
        {0, NULL, NULL, 0, NULL, STRATA_H2_INTERNAL_ERROR,
         STRATA_GRPC_INTERNAL, 0},
        /* a broken message, then trailers saying OK: not OK */
        {200, "application/grpc", bad_flag, 6, "0", 0, STRATA_GRPC_INTERNAL, 0},
        {200, "application/grpc", cut, 6, "0", 0, STRATA_GRPC_INTERNAL, 0},
        /* the same without trailers */
        {200, "application/grpc", bad_flag, 6, NULL, 0, STRATA_GRPC_INTERNAL,
         0},
        {200, "application/grpc", cut, 6, NULL, 0, STRATA_GRPC_INTERNAL, 0},
    };
    size_t i;
    rig r;

    (void)state;
    rig_open(&r);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        broken_server(&r, &cases[i]);
    unary_ok(&r);
    rig_close(&r);
}

/* ---- gzip ---------------------------------------------------------------- */

static size_t gzip_buf(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream z;
    size_t len;

    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    len = z.total_out;
    deflateEnd(&z);
    return len;
}

static void test_gzip_both_ways(void **state)
{
    static uint8_t text[300000];
    strata_grpc_opts co, so;
    strata_stream *cc, *sc;
    size_t c0, s0;
    rig r;

    (void)state;
    fill_text(text, sizeof text);
    rig_open(&r);
    so = r.so;
    so.encoding = "gzip";
    memset(&co, 0, sizeof co);
    co.encoding = "gzip";
    cc = call_with(&r, "Bidi", &co);
    assert_int_equal(serve_with(&r, &so, &sc), 0);
    assert_string_equal(strata_h2_get(strata_grpc_h2_stream(sc),
                                      "grpc-encoding"), "gzip");
    settle(&r);
    /* an empty message first: nothing to compress, nothing gathered */
    xfer(&r, cc, sc, text, 0);
    xfer(&r, sc, cc, text, 0);
    c0 = r.c_sent;
    s0 = r.s_sent;
    xfer(&r, cc, sc, text, sizeof text);
    xfer(&r, cc, sc, text, 0);
    xfer(&r, cc, sc, text + 7, 1);
    /* 300 KB of text went as a few KB */
    fprintf(stderr, "gzip: 300001 bytes of messages took %zu bytes\n",
            r.c_sent - c0);
    assert_true(r.c_sent - c0 < 30000);
    xfer(&r, sc, cc, text, sizeof text);
    xfer(&r, sc, cc, text, 0);
    assert_true(r.s_sent - s0 < 30000);
    assert_string_equal(strata_h2_get(strata_grpc_h2_stream(cc),
                                      "grpc-encoding"), "gzip");
    half_close(&r, cc);
    assert_int_equal(end_of(&r, sc), STRATA_EOF);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* A compressed message a client wrote by hand (zlib) is inflated; one
 * that inflates past max_recv (a bomb: a few KB on the wire) is
 * RESOURCE_EXHAUSTED, and the server never holds much more than max_recv
 * of it. A corrupt one is INTERNAL. */
static void test_gzip_bomb(void **state)
{
    static uint8_t zeros[8u << 20], z[1u << 16], d[5 + sizeof z];
    strata_grpc_opts so;
    strata_stream *cs, *sc;
    uint8_t buf[2000];
    size_t zn, len, before;
    rig r;

    (void)state;
    rig_open(&r);
    so = r.so;
    so.max_recv = 1u << 20;

    /* a small one first: it arrives whole */
    fill_text(buf, sizeof buf);
    zn = gzip_buf(buf, sizeof buf, z, sizeof z);
    prefix(d, 1, (uint32_t)zn);
    memcpy(d + 5, z, zn);
    cs = raw_open(&r, gzip_head, 7);
    raw_send(&r, cs, d, 5 + zn);
    half_close(&r, cs);
    assert_int_equal(serve_with(&r, &so, &sc), 0);
    {
        uint8_t got[sizeof buf];

        assert_int_equal(get(&r, sc, got, sizeof got, &len), 0);
        assert_int_equal(len, sizeof buf);
        assert_memory_equal(got, buf, sizeof buf);
    }
    assert_int_equal(end_of(&r, sc), STRATA_EOF);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    strata_free(sc);
    strata_free(cs);

    /* 8 MiB of zeros in a few KB */
    zn = gzip_buf(zeros, sizeof zeros, z, sizeof z);
    fprintf(stderr, "gzip bomb: 8 MiB in %zu bytes\n", zn);
    prefix(d, 1, (uint32_t)zn);
    memcpy(d + 5, z, zn);
    settle(&r);
    before = r.ms.bytes;
    r.ms.peak_bytes = r.ms.bytes;
    refused_message(&r, &so, gzip_head, 7, d, 5 + zn, 1,
                    STRATA_GRPC_RESOURCE_EXHAUSTED);
    fprintf(stderr, "gzip bomb: server memory %zu before, peak %zu "
            "(max_recv %zu)\n", before, r.ms.peak_bytes, so.max_recv);
    assert_true(r.ms.peak_bytes < before + 2 * so.max_recv + 512u * 1024u);

    /* not gzip at all */
    prefix(d, 1, 20);
    memset(d + 5, 0x55, 20);
    refused_message(&r, &so, gzip_head, 7, d, 25, 1, STRATA_GRPC_INTERNAL);
    unary_ok(&r);
    rig_close(&r);
}

/* ---- max_send -------------------------------------------------------- */

static void test_max_send(void **state)
{
    static uint8_t msg[1001];
    strata_grpc_opts co, so;
    strata_stream *cc, *sc;
    uint8_t buf[2000];
    size_t len, before;
    rig r;

    (void)state;
    fill(msg, sizeof msg, 3);
    rig_open(&r);
    memset(&co, 0, sizeof co);
    co.max_send = 1000;
    so = r.so;
    so.max_send = 1000;
    cc = call_with(&r, "Bidi", &co);
    assert_int_equal(serve_with(&r, &so, &sc), 0);
    settle(&r);
    before = r.c_sent;
    assert_int_equal(strata_send(cc, msg, 1001, STRATA_MSG_END),
                     STRATA_ERR_TOO_BIG);
    settle(&r);
    assert_int_equal(r.c_sent, before);     /* nothing went */
    xfer(&r, cc, sc, msg, 1000);            /* and the call goes on */
    before = r.s_sent;
    assert_int_equal(strata_send(sc, msg, 1001, STRATA_MSG_END),
                     STRATA_ERR_TOO_BIG);
    settle(&r);
    assert_int_equal(r.s_sent, before);
    xfer(&r, sc, cc, msg + 1, 1000);
    half_close(&r, cc);
    assert_int_equal(get(&r, sc, buf, sizeof buf, &len), STRATA_EOF);
    finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cc), STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    rig_close(&r);
}

/* ---- cancellation and deadlines ----------------------------------------- */

static void test_cancel_by_client(void **state)
{
    strata_stream *cc, *sc;
    uint8_t msg[10] = "0123456789";
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Bidi");
    sc = serve(&r);
    xfer(&r, cc, sc, msg, sizeof msg);
    assert_int_equal(strata_grpc_cancel(cc), 0);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_CANCELLED);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(end_of(&r, sc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    assert_int_equal(strata_h2_reset_code(strata_grpc_h2_stream(sc)),
                     STRATA_H2_CANCEL);
    assert_true(strata_send(sc, msg, 3, STRATA_MSG_END) < STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    /* the server asks for the status before it reads: the same answers */
    cc = call(&r, "Bidi");
    sc = serve(&r);
    assert_int_equal(strata_grpc_cancel(cc), 0);
    settle(&r);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    assert_int_equal(end_of(&r, sc), STRATA_ERR_GRPC);
    strata_free(cc);
    strata_free(sc);
    /* the server finishes a call the client cancelled: refused, and the
     * call says it was cancelled */
    cc = call(&r, "Bidi");
    sc = serve(&r);
    xfer(&r, cc, sc, msg, sizeof msg);
    assert_int_equal(strata_grpc_cancel(cc), 0);
    settle(&r);
    assert_int_equal(strata_grpc_finish(sc, STRATA_GRPC_OK, NULL, NULL, 0),
                     STRATA_ERR_STATE);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    assert_int_equal(end_of(&r, sc), STRATA_ERR_GRPC);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

static void test_cancel_by_server(void **state)
{
    strata_stream *cc, *sc;
    uint8_t msg[10] = "0123456789";
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Bidi");
    sc = serve(&r);
    xfer(&r, sc, cc, msg, sizeof msg);
    assert_int_equal(strata_grpc_cancel(sc), 0);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_CANCELLED);
    assert_non_null(strata_grpc_message(cc));
    assert_true(strata_send(cc, msg, 3, STRATA_MSG_END) < STRATA_EOF);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

/* Freeing a call that did not end resets it: the peer sees CANCELLED. */
static void test_free_unfinished(void **state)
{
    strata_stream *cc, *sc;
    rig r;

    (void)state;
    rig_open(&r);
    cc = call(&r, "Bidi");
    sc = serve(&r);
    strata_free(cc);
    assert_int_equal(end_of(&r, sc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    strata_free(sc);
    cc = call(&r, "Bidi");
    sc = serve(&r);
    strata_free(sc);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_CANCELLED);
    strata_free(cc);
    unary_ok(&r);
    rig_close(&r);
}

static void test_deadline_propagates(void **state)
{
    static const long budgets[] = {1, 1500, 99999999L, 100000000L,
                                   3600000L * 30};
    strata_grpc_opts co;
    strata_stream *cc, *sc;
    size_t i;
    rig r;

    (void)state;
    rig_open(&r);
    memset(&co, 0, sizeof co);
    for (i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        co.timeout_ms = budgets[i];
        cc = call_with(&r, "Unary", &co);
        sc = serve(&r);
        assert_int_equal(strata_grpc_timeout_ms(cc), budgets[i]);
        assert_int_equal(strata_grpc_timeout_ms(sc), budgets[i]);
        assert_non_null(strata_h2_get(strata_grpc_h2_stream(sc),
                                      "grpc-timeout"));
        strata_free(cc);
        strata_free(sc);
    }
    /* none set: none on either side, and no header */
    cc = call(&r, "Unary");
    sc = serve(&r);
    assert_int_equal(strata_grpc_timeout_ms(cc), -1);
    assert_int_equal(strata_grpc_timeout_ms(sc), -1);
    assert_null(strata_h2_get(strata_grpc_h2_stream(sc), "grpc-timeout"));
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

/* The server's timer fired: the client gets DEADLINE_EXCEEDED in the
 * answer, after the messages that went before. */
static void test_expire_on_server(void **state)
{
    strata_grpc_opts co;
    strata_stream *cc, *sc;
    uint8_t msg[3] = "abc";
    rig r;

    (void)state;
    rig_open(&r);
    memset(&co, 0, sizeof co);
    co.timeout_ms = 50;
    cc = call_with(&r, "ServerStream", &co);
    sc = serve(&r);
    xfer(&r, sc, cc, msg, sizeof msg);
    assert_int_equal(strata_grpc_expire(sc), 0);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_DEADLINE_EXCEEDED);
    assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_DEADLINE_EXCEEDED);
    /* the call ended: nothing more to finish */
    assert_int_equal(strata_grpc_finish(sc, STRATA_GRPC_OK, NULL, NULL, 0),
                     STRATA_ERR_STATE);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

/* The client's timer fired: DEADLINE_EXCEEDED here at once, a reset
 * (CANCEL) for the server, which sees a cancelled call. */
static void test_expire_on_client(void **state)
{
    strata_grpc_opts co;
    strata_stream *cc, *sc;
    uint8_t msg[3] = "abc";
    rig r;

    (void)state;
    rig_open(&r);
    memset(&co, 0, sizeof co);
    co.timeout_ms = 50;
    cc = call_with(&r, "Bidi", &co);
    sc = serve(&r);
    xfer(&r, cc, sc, msg, sizeof msg);
    assert_int_equal(strata_grpc_expire(cc), 0);
    assert_int_equal(strata_grpc_status(cc), STRATA_GRPC_DEADLINE_EXCEEDED);
    assert_non_null(strata_grpc_message(cc));
    assert_int_equal(strata_recv(cc, msg, sizeof msg, NULL), STRATA_ERR_GRPC);
    assert_true(strata_send(cc, msg, 1, STRATA_MSG_END) < STRATA_EOF);
    assert_int_equal(end_of(&r, sc), STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(sc), STRATA_GRPC_CANCELLED);
    assert_int_equal(strata_h2_reset_code(strata_grpc_h2_stream(sc)),
                     STRATA_H2_CANCEL);
    strata_free(cc);
    strata_free(sc);
    unary_ok(&r);
    rig_close(&r);
}

static void test_timeout_parse(void **state)
{
    static const struct {
        const char *v;
        long ms;
    } good[] = {
        {"1H", 3600000L}, {"2M", 120000L}, {"3S", 3000L}, {"100m", 100L},
        {"1u", 1L}, {"1000u", 1L}, {"1001u", 2L}, {"1n", 1L},
        {"1000000n", 1L}, {"1000001n", 2L}, {"99999999m", 99999999L},
        {"00000007S", 7000L}, {"99999999H", 99999999L * 3600000L},
        {"99999999n", 100L}, {"12345678u", 12346L},
    };
    static const char *const bad[] = {
        "", "m", "1", "123456789m", "000000001m", "10x", "10mm", "-1m",
        "+1m", " 1m", "1 m", "1m ", "1.5S", "1h", "1s", "0x10m", "1U",
    };
    size_t i;
    long ms;

    (void)state;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ms = -7;
        assert_int_equal(strata_grpc_timeout_parse(good[i].v, &ms), 0);
        if (ms != good[i].ms)
            fail_msg("\"%s\": %ld ms, not %ld", good[i].v, ms, good[i].ms);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strata_grpc_timeout_parse(bad[i], &ms) != STRATA_ERR_PROTO)
            fail_msg("\"%s\" was taken as a grpc-timeout", bad[i]);
}

/* A grpc-timeout has at most 8 digits; larger budgets go in a coarser
 * unit, rounded up (a deadline never shrinks), and what is written parses
 * back to at least what was meant. */
static void test_timeout_format(void **state)
{
    static const long cases[] = {
        1, 2, 999, 1000, 99999999L, 100000000L, 100000001L,
        99999999000L, 99999999001L, 99999999999L, 100000000000L,
        5999999940000L, 5999999940001L, 359999996400000L, 359999996400001L,
        1L << 62,
    };
    char out[16];
    size_t i, digits;
    long back;

    (void)state;
    strata_grpc_timeout_format(1500, out);
    assert_string_equal(out, "1500m");
    strata_grpc_timeout_format(100000000L, out);
    assert_string_equal(out, "100000S");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long ms = cases[i];

        strata_grpc_timeout_format(ms, out);
        for (digits = 0; out[digits] >= '0' && out[digits] <= '9'; digits++)
            ;
        if (digits < 1 || digits > 8)
            fail_msg("%ld ms formatted as \"%s\": %zu digits", ms, out,
                     digits);
        assert_int_equal(strata_grpc_timeout_parse(out, &back), 0);
        /* rounded up, by less than one unit of what was chosen; past the
         * largest expressible the most there is */
        if (ms <= 99999999L * 3600000L) {
            long unit = out[digits] == 'm' ? 1 : out[digits] == 'S' ? 1000
                      : out[digits] == 'M' ? 60000 : 3600000;

            if (back < ms || back - ms >= unit)
                fail_msg("%ld ms formatted as \"%s\" = %ld ms", ms, out,
                         back);
        } else {
            assert_string_equal(out, "99999999H");
        }
    }
}

/* ---- back-pressure -------------------------------------------------------- */

/* One call whose server never reads fills its window and its client's
 * send returns NEED_READ; another call on the same connection moves 300 KB
 * each way meanwhile. Then the slow reader reads and the first call
 * finishes, every byte in place. */
static void test_back_pressure_per_call(void **state)
{
    static uint8_t big[300000], chunk[16384], got[16384];
    strata_stream *ca, *sa, *cb, *sb;
    size_t a_msgs = 0, off = 0, len, i;
    ssize_t w = 0;
    int stalled = 0, k;

    rig r;

    (void)state;
    rig_open(&r);
    fill(big, sizeof big, 77);
    ca = call(&r, "ClientStream");
    sa = serve(&r);
    cb = call(&r, "Bidi");
    sb = serve(&r);
    settle(&r);
    /* A: 16 KiB messages until its window is full */
    for (k = 0; k < 10000 && !stalled; k++) {
        fill(chunk, sizeof chunk, (uint32_t)a_msgs);
        w = strata_send(ca, chunk + off, sizeof chunk - off, STRATA_MSG_END);
        if (w >= 0) {
            off += (size_t)w;
            if (off == sizeof chunk) {
                a_msgs++;
                off = 0;
            }
        } else if (w == STRATA_NEED_READ) {
            /* still so after the peer had every chance to answer */
            for (i = 0; i < 20; i++)
                pump(&r);
            w = strata_send(ca, chunk + off, sizeof chunk - off,
                            STRATA_MSG_END);
            stalled = w == STRATA_NEED_READ;
            if (w > 0)
                off += (size_t)w;
        } else {
            assert_true(need(w));
        }
        pump(&r);
    }
    assert_true(stalled);
    /* a window's worth went: 64 KiB, not the connection's */
    fprintf(stderr, "back-pressure: %zu messages and %zu bytes went before "
            "the stall\n", a_msgs, off);
    assert_true(a_msgs * (5 + sizeof chunk) + off <= 65535 + 5 + 16384);
    /* B flows both ways while A stays stalled */
    xfer(&r, cb, sb, big, sizeof big);
    xfer(&r, sb, cb, big, sizeof big);
    assert_int_equal(strata_send(ca, chunk + off, sizeof chunk - off,
                                 STRATA_MSG_END), STRATA_NEED_READ);
    half_close(&r, cb);
    assert_int_equal(end_of(&r, sb), STRATA_EOF);
    finish(&r, sb, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, cb), STRATA_EOF);
    /* A's reader reads: every message in order, then the one whose
     * send was stopped goes on */
    for (i = 0; i < a_msgs; i++) {
        assert_int_equal(get(&r, sa, got, sizeof got, &len), 0);
        assert_int_equal(len, sizeof chunk);
        fill(chunk, sizeof chunk, (uint32_t)i);
        assert_memory_equal(got, chunk, len);
    }
    fill(chunk, sizeof chunk, (uint32_t)a_msgs);
    xfer_from(&r, ca, sa, chunk, sizeof chunk, off);
    half_close(&r, ca);
    assert_int_equal(end_of(&r, sa), STRATA_EOF);
    finish(&r, sa, STRATA_GRPC_OK, NULL, NULL, 0);
    assert_int_equal(end_of(&r, ca), STRATA_EOF);
    strata_free(ca);
    strata_free(sa);
    strata_free(cb);
    strata_free(sb);
    rig_close(&r);
}

/* ---- misuse and memory ------------------------------------------------- */

/* Bad options are refused at once; nothing was opened or kept. */
static void test_bad_options(void **state)
{
    strata_grpc_opts o;
    strata_stream *cc = NULL;
    int rv;
    rig r;

    (void)state;
    rig_open(&r);
    memset(&o, 0, sizeof o);
    o.authority = "test";
    assert_int_equal(strata_grpc_call(r.c, &o, &r.ac, &cc), STRATA_ERR_ARG);
    o.path = SVC "Unary";
    o.encoding = "snappy";
    assert_int_equal(strata_grpc_call(r.c, &o, &r.ac, &cc), STRATA_ERR_ARG);
    o.encoding = "identity";
    o.authority = NULL;
    assert_int_equal(strata_grpc_call(r.c, &o, &r.ac, &cc), STRATA_ERR_ARG);
    assert_null(cc);
    assert_int_equal(strata_h2_open_streams(r.c), 0);
    o.authority = "test";
    assert_int_equal(strata_grpc_call(r.c, &o, &r.ac, &cc), 0);
    /* a client cannot finish; a server cannot wait for a response head */
    rv = strata_grpc_finish(cc, 0, NULL, NULL, 0);
    assert_true(rv == STRATA_ERR_STATE || rv == STRATA_ERR_ARG);
    rv = strata_grpc_send_head(cc, NULL, 0);
    assert_true(rv == STRATA_ERR_STATE || rv == STRATA_ERR_ARG);
    strata_free(cc);
    unary_ok(&r);
    rig_close(&r);
}

/* Every allocation of both sides comes back: calls freed in any state and
 * the connections after them or before them. */
static void test_allocator_balance(void **state)
{
    strata_stream *cc[4], *sc[4];
    uint8_t msg[100];
    int i;
    rig r;

    (void)state;
    rig_open(&r);
    fill(msg, sizeof msg, 8);
    for (i = 0; i < 4; i++) {
        cc[i] = call(&r, "Bidi");
        sc[i] = serve(&r);
        xfer(&r, cc[i], sc[i], msg, sizeof msg);
    }
    assert_true(r.mc.bytes > 0 && r.ms.bytes > 0);
    finish(&r, sc[0], STRATA_GRPC_OK, NULL, NULL, 0);   /* ended */
    assert_int_equal(strata_grpc_cancel(cc[1]), 0);     /* cancelled */
    assert_int_equal(put(&r, sc[2], msg, 50), 0);       /* unread data */
    settle(&r);
    /* the application lets go of the connections first: the calls keep
     * them until the last is freed */
    strata_h2_free(r.c);
    strata_h2_free(r.s);
    for (i = 0; i < 4; i++) {
        strata_free(cc[i]);
        strata_free(sc[i]);
    }
    assert_int_equal(r.mc.bytes, 0);
    assert_int_equal(r.mc.count.live, 0);
    assert_int_equal(r.ms.bytes, 0);
    assert_int_equal(r.ms.count.live, 0);
}

/* The allocator refuses at each point in turn: the call or the accept
 * fails with NOMEM (or the connection below fails: nghttp2 takes an
 * allocation failure in its own sends as fatal), and nothing leaks. */
static void test_allocation_failures(void **state)
{
    strata_grpc_md md = {"x-bin", bin5, sizeof bin5};
    strata_grpc_opts o;
    strata_stream *cc, *sc, *h;
    long at;
    int rv, done = 0;
    rig r;

    (void)state;
    memset(&o, 0, sizeof o);
    o.path = SVC "Unary";
    o.authority = "test";
    o.md = &md;
    o.n_md = 1;
    o.encoding = "gzip";
    for (at = 1; at < 100 && !done; at++) {
        rig_open(&r);
        settle(&r);
        cc = NULL;
        r.mc.count.fail_at = r.mc.count.calls + at;
        rv = strata_grpc_call(r.c, &o, &r.ac, &cc);
        done = r.mc.count.calls < r.mc.count.fail_at;  /* none refused */
        r.mc.count.fail_at = 0;
        if (rv == 0) {
            assert_non_null(cc);
            strata_free(cc);
        } else {
            assert_int_equal(rv, STRATA_ERR_NOMEM);
            assert_null(cc);
        }
        settle(&r);
        rig_close(&r);
    }
    assert_true(done);
    for (done = 0, at = 1; at < 100 && !done; at++) {
        rig_open(&r);
        cc = call_with(&r, "Unary", &o);
        h = accept_h2(&r);
        sc = NULL;
        r.ms.count.fail_at = r.ms.count.calls + at;
        rv = strata_grpc_accept(h, &r.so, &r.as, &sc);
        done = r.ms.count.calls < r.ms.count.fail_at;
        r.ms.count.fail_at = 0;
        if (rv == 0) {
            assert_non_null(sc);
            finish(&r, sc, STRATA_GRPC_OK, NULL, NULL, 0);
        } else {
            /* refused here: the client learns the call is over */
            assert_int_equal(rv, STRATA_ERR_NOMEM);
            assert_null(sc);
            assert_int_equal(end_of(&r, cc), STRATA_ERR_GRPC);
        }
        strata_free(sc);
        strata_free(cc);
        settle(&r);
        rig_close(&r);
    }
    assert_true(done);
}

int main(void)
{
    const char *only = getenv("STRATA_TEST_FILTER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_client_streaming),
        cmocka_unit_test(test_server_streaming),
        cmocka_unit_test(test_bidi),
        cmocka_unit_test(test_many_calls),
        cmocka_unit_test(test_metadata_both_ways),
        cmocka_unit_test(test_metadata_limits),
        cmocka_unit_test(test_status_message_round_trip),
        cmocka_unit_test(test_trailers_only),
        cmocka_unit_test(test_unimplemented),
        cmocka_unit_test(test_wrong_content_type),
        cmocka_unit_test(test_not_post),
        cmocka_unit_test(test_missing_te),
        cmocka_unit_test(test_bad_timeout),
        cmocka_unit_test(test_unknown_encoding),
        cmocka_unit_test(test_bin_padding_accepted),
        cmocka_unit_test(test_compressed_without_encoding),
        cmocka_unit_test(test_flag_other_bits),
        cmocka_unit_test(test_truncated_message),
        cmocka_unit_test(test_over_max_recv),
        cmocka_unit_test(test_over_max_recv_compressed),
        cmocka_unit_test(test_max_recv_both_sides),
        cmocka_unit_test(test_client_broken_server),
        cmocka_unit_test(test_gzip_both_ways),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_max_send),
        cmocka_unit_test(test_cancel_by_client),
        cmocka_unit_test(test_cancel_by_server),
        cmocka_unit_test(test_free_unfinished),
        cmocka_unit_test(test_deadline_propagates),
        cmocka_unit_test(test_expire_on_server),
        cmocka_unit_test(test_expire_on_client),
        cmocka_unit_test(test_timeout_parse),
        cmocka_unit_test(test_timeout_format),
        cmocka_unit_test(test_back_pressure_per_call),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_allocator_balance),
        cmocka_unit_test(test_allocation_failures),
    };

    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);   /* run one test */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
