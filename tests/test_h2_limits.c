/* The limits of the h2 layer and what a misbehaving peer gets.
 *
 * Memory: a strata server whose allocations are counted byte by byte is
 * flooded by a real nghttp2 client (linked here, not a mock) that opens the
 * most streams it may, sends bodies far larger than the windows and never
 * sees a WINDOW_UPDATE, because the server application never reads. The
 * server's peak stays under max_concurrent_streams x stream_window +
 * BOUND_CONSTANT, the figure the README quotes.
 *
 * Violations: a client written frame by frame onto the pipe (preface,
 * SETTINGS, HPACK literals, DATA) sends past a window, a broken header
 * block, a reused or lower stream id, a garbage preface; the frames the
 * server writes back are parsed for the GOAWAY or RST_STREAM nghttp2
 * chose, and strata's statuses and codes are checked beside them.
 * Resets: a stream reset in the middle of its body leaves the others
 * whole, checked byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>

#include "harness.h"

/* What a connection holds beside its stream windows: nghttp2's session,
 * HPACK tables, stream and frame objects, strata's input chunk, output
 * buffer, stream objects and header lists. Measured peaks are printed. */
#define BOUND_CONSTANT (256u * 1024u)
#define MAX_PEER_STREAMS 160
#define IDLE_ROUNDS 200     /* rounds with nothing moving: the peer is stuck */
#define MAX_ROUNDS 100000
#define MAX_PAD 60000

/* ---- a real nghttp2 client as the peer ---------------------------------- */

typedef struct peer {
    nghttp2_session *ng;
    strata_stream *end;
    size_t left[MAX_PEER_STREAMS];   /* body bytes each request has left */
    unsigned requests;
    uint64_t submitted;     /* body bytes of every request submitted */
    uint64_t data_sent;     /* DATA payload that actually went out */
    unsigned refused;       /* RST_STREAM REFUSED_STREAM from the server */
    uint8_t in[16384];
} peer;

static ssize_t peer_send_cb(nghttp2_session *ng, const uint8_t *data,
                            size_t len, int flags, void *ud)
{
    peer *p = ud;
    ssize_t n = strata_send(p->end, data, len, 0);

    (void)ng;
    (void)flags;
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
        return NGHTTP2_ERR_WOULDBLOCK;
    return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Bodies are a counter pattern; nobody checks them here. */
static ssize_t peer_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf,
                            size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *ud)
{
    size_t *left = src->ptr;
    size_t n = *left < len ? *left : len;

    (void)ng;
    (void)ud;
    memset(buf, (int)(id & 0xff), n);
    *left -= n;
    if (*left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int peer_frame_send_cb(nghttp2_session *ng, const nghttp2_frame *f,
                              void *ud)
{
    peer *p = ud;

    (void)ng;
    if (f->hd.type == NGHTTP2_DATA)
        p->data_sent += f->hd.length;
    return 0;
}

static int peer_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *f,
                              void *ud)
{
    peer *p = ud;

    (void)ng;
    if (f->hd.type == NGHTTP2_RST_STREAM
        && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
        p->refused++;
    return 0;
}

static void peer_open(peer *p, strata_stream *end)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;

    memset(p, 0, sizeof *p);
    p->end = end;
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    assert_int_equal(nghttp2_option_new(&opt), 0);
    nghttp2_session_callbacks_set_send_callback(cb, peer_send_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb,
                                                         peer_frame_send_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
                                                         peer_frame_recv_cb);
    /* it would send none anyway (the server sends no DATA); say so */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    assert_int_equal(nghttp2_session_client_new2(&p->ng, cb, p, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(p->ng, NGHTTP2_FLAG_NONE, NULL,
                                             0), 0);
}

/* A request with a body and, when pad is set, a header of pad bytes. */
static void peer_request(peer *p, size_t body, size_t pad)
{
    static uint8_t padding[MAX_PAD];
    nghttp2_nv head[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"limits", 10, 6, 0},
        {(uint8_t *)":path", (uint8_t *)"/flood", 5, 6, 0},
        {(uint8_t *)"x-pad", padding, 5, 0, NGHTTP2_NV_FLAG_NO_INDEX},
    };
    nghttp2_data_provider prd;

    assert_true(p->requests < MAX_PEER_STREAMS);
    assert_true(pad <= MAX_PAD);
    memset(padding, 'p', sizeof padding);
    head[4].valuelen = pad;
    p->left[p->requests] = body;
    prd.source.ptr = &p->left[p->requests];
    prd.read_callback = peer_read_cb;
    assert_true(nghttp2_submit_request(p->ng, NULL, head, pad ? 5 : 4, &prd,
                                       NULL) > 0);
    p->requests++;
    p->submitted += body;
}

/* Send what nghttp2 may, read what came; 1 when something moved. */
static int peer_pump(peer *p)
{
    uint64_t before = p->data_sent;
    unsigned fl;
    ssize_t n;
    int moved = 0;

    assert_int_equal(nghttp2_session_send(p->ng), 0);
    n = strata_recv(p->end, p->in, sizeof p->in, &fl);
    if (n > 0) {
        assert_int_equal(nghttp2_session_mem_recv(p->ng, p->in, (size_t)n),
                         n);
        assert_int_equal(nghttp2_session_send(p->ng), 0);
        moved = 1;
    } else {
        assert_true(n == STRATA_NEED_READ || n == STRATA_NEED_WRITE);
    }
    return moved || p->data_sent != before;
}

static void peer_close(peer *p)
{
    nghttp2_session_del(p->ng);
    strata_free(p->end);
}

/* ---- the memory bound --------------------------------------------------- */

typedef struct bound_case {
    unsigned streams;       /* the server's max_concurrent_streams */
    uint32_t window;        /* the server's stream_window */
    unsigned requests;      /* what the peer asks for */
    size_t body;            /* each request's body */
    int early;              /* open them all before the server's SETTINGS */
    size_t pad;             /* a header this large on each request */
    int answer;             /* the server answers each with a large body */
} bound_case;

typedef struct server_side {
    strata_h2 *h;
    int answer;
    strata_stream *taken[MAX_PEER_STREAMS];
    int answered[MAX_PEER_STREAMS];
    unsigned n;
    uint64_t offered, answer_sent;  /* response bytes tried, accepted */
} server_side;

/* Answer every stream with 1 MiB the peer never opens a window for: each
 * send stops at NEED_READ, and nothing of it may pile up in the server. */
static void server_answer(server_side *sv)
{
    static uint8_t body[64 * 1024];
    unsigned i;

    for (i = 0; i < sv->n; i++) {
        ssize_t k;

        if (!sv->answered[i]) {
            assert_int_equal(strata_h2_respond(sv->taken[i], 200, NULL, 0,
                                               0), 0);
            sv->answered[i] = 1;
        }
        do {
            sv->offered += sizeof body;
            k = strata_send(sv->taken[i], body, sizeof body, 0);
            if (k > 0)
                sv->answer_sent += (uint64_t)k;
        } while (k > 0);
        assert_true(k == STRATA_NEED_READ || k == STRATA_NEED_WRITE);
    }
}

/* Drive and take new streams, never reading them; 1 when input moved. */
static int server_idle_step(server_side *sv)
{
    strata_stream *s;
    int rv = strata_h2_drive(sv->h);

    if (rv < STRATA_EOF)
        fail_msg("server drive: %s (code %u)", strata_strerror(rv),
                 (unsigned)strata_h2_error_code(sv->h));
    while ((s = strata_h2_accept(sv->h)) != NULL) {
        assert_true(sv->n < MAX_PEER_STREAMS);
        sv->taken[sv->n++] = s;
    }
    while (strata_h2_ready(sv->h) != NULL)
        ;   /* listed as readable; the application does not care */
    if (sv->answer)
        server_answer(sv);
    return rv == 0;
}

static void pump_until_stuck(peer *p, server_side *sv)
{
    unsigned idle = 0, rounds = 0;

    while (idle < IDLE_ROUNDS) {
        int moved = peer_pump(p);

        moved |= server_idle_step(sv);
        idle = moved ? 0 : idle + 1;
        if (++rounds > MAX_ROUNDS)
            fail_msg("the flood never settled");
    }
}

static void submit_after_settings(peer *p, server_side *sv,
                                  const bound_case *bc)
{
    unsigned i, rounds = 0;

    while (nghttp2_session_get_remote_settings(p->ng,
               NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) != bc->streams) {
        peer_pump(p);
        server_idle_step(sv);
        if (++rounds > 1000)
            fail_msg("the server's SETTINGS never came");
    }
    for (i = 0; i < bc->requests; i++)
        peer_request(p, bc->body, bc->pad);
}

/* A server with the case's limits, its allocations counted, and the peer
 * on the other end of an unscheduled pipe. */
static void bound_open(const bound_case *bc, server_side *sv, peer *p,
                       const strata_allocator *al)
{
    strata_stream *a, *b;
    strata_h2_opts o;

    memset(sv, 0, sizeof *sv);
    sv->answer = bc->answer;
    /* the pipe is the transport (a socket's kernel buffers): not counted */
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_SERVER;
    o.max_concurrent_streams = bc->streams;
    o.stream_window = bc->window;
    sv->h = strata_h2_new(b, &o, al);
    assert_non_null(sv->h);
    peer_open(p, a);
}

static void bound_report(const bound_case *bc, const strata_test_meter *m,
                         size_t bound, const peer *p, const server_side *sv)
{
    fprintf(stderr, "h2 memory: %u streams x %u window, %zu-byte header "
            "(%s%s): peak %zu bytes = streams x window + %zu; bound %zu; "
            "peer sent %" PRIu64 " of %" PRIu64 " body bytes, %u streams "
            "refused; server sent %" PRIu64 " answer bytes\n", bc->streams,
            (unsigned)bc->window, bc->pad,
            bc->early ? "opened early" : "polite",
            bc->answer ? ", answers stuck" : "", m->peak_bytes,
            m->peak_bytes - (size_t)bc->streams * bc->window, bound,
            p->data_sent, p->submitted, p->refused, sv->answer_sent);
}

static void run_bound(const bound_case *bc)
{
    strata_test_meter m;
    strata_allocator al;
    server_side sv;
    peer p;
    /* header lists count too when a peer makes them large (h2.h) */
    size_t per_stream = bc->window + (bc->pad ? 64u * 1024u : 0);
    size_t bound = (size_t)bc->streams * per_stream + BOUND_CONSTANT;
    unsigned i;

    memset(&m, 0, sizeof m);
    al = strata_test_meter_allocator(&m);
    bound_open(bc, &sv, &p, &al);
    if (bc->early) {
        for (i = 0; i < bc->requests; i++)
            peer_request(&p, bc->body, bc->pad);
    } else {
        submit_after_settings(&p, &sv, bc);
    }
    pump_until_stuck(&p, &sv);
    bound_report(bc, &m, bound, &p, &sv);
    assert_true(m.peak_bytes <= bound);
    /* the windows were really filled, and far more was on offer */
    assert_int_equal(sv.n, bc->streams);
    assert_true(p.data_sent >= (uint64_t)bc->streams * bc->window * 9 / 10);
    assert_true(p.submitted >= 10 * (uint64_t)bound);
    if (bc->early)
        assert_true(p.refused > 0);
    if (bc->answer)     /* the peer's windows, no more, and far more tried */
        assert_true(sv.answer_sent <= 65535 && sv.offered > 10 * bound);
    for (i = 0; i < sv.n; i++)
        strata_free(sv.taken[i]);
    strata_h2_free(sv.h);
    peer_close(&p);
    assert_int_equal(m.bytes, 0);
    assert_int_equal(m.count.live, 0);
}

static void test_memory_bound_10_streams(void **state)
{
    static const bound_case bc = {
        .streams = 10, .window = 64 * 1024, .requests = 30, .body = 1u << 20};

    (void)state;
    run_bound(&bc);
}

/* Streams opened before the server's SETTINGS arrive: those past the
 * limit are refused, their DATA dropped, and the bound holds. */
static void test_memory_bound_early_flood(void **state)
{
    static const bound_case bc = {
        .streams = 10, .window = 64 * 1024, .requests = 40, .body = 1u << 20,
        .early = 1};

    (void)state;
    run_bound(&bc);
}

/* A window that is not a power of two: the rings must not round up. */
static void test_memory_bound_odd_window(void **state)
{
    static const bound_case bc = {
        .streams = 10, .window = 80 * 1024, .requests = 30, .body = 1u << 20};

    (void)state;
    run_bound(&bc);
}

/* Each request also carries a 60000-byte header (within the 64 KiB
 * max_header_list): the bound grows by the header lists, as h2.h says. */
static void test_memory_bound_big_headers(void **state)
{
    static const bound_case bc = {
        .streams = 10, .window = 64 * 1024, .requests = 30, .body = 1u << 20,
        .pad = MAX_PAD};

    (void)state;
    run_bound(&bc);
}

/* The server also answers every stream with a large body, and the peer
 * never opens a window for it (no WINDOW_UPDATE ever): the send side
 * holds nothing beyond its bounded output buffer. */
static void test_memory_bound_answers_stuck(void **state)
{
    static const bound_case bc = {
        .streams = 10, .window = 64 * 1024, .requests = 30, .body = 1u << 20,
        .answer = 1};

    (void)state;
    run_bound(&bc);
}

static void test_memory_bound_100_streams(void **state)
{
    static const bound_case bc = {
        .streams = 100, .window = 64 * 1024, .requests = 150,
        .body = 1u << 20};

    (void)state;
    run_bound(&bc);
}

/* ---- a client written frame by frame ------------------------------------ */

enum { F_DATA = 0, F_HEADERS = 1, F_RST = 3, F_SETTINGS = 4, F_GOAWAY = 7 };
enum { FL_END_STREAM = 0x1, FL_ACK = 0x1, FL_END_HEADERS = 0x4 };

/* :method POST, :scheme http, :path /, :authority test: three static-table
 * entries and a literal without indexing (RFC 7541 6.1, 6.2.2). */
static const uint8_t request_block[] = {
    0x83, 0x86, 0x84, 0x01, 0x04, 't', 'e', 's', 't',
};

typedef struct seen {
    int goaway;
    uint32_t goaway_code;
    uint32_t rst_sid, rst_code;
    int rsts;
} seen;

typedef struct raw {
    strata_stream *end;     /* ours: the hand-written client */
    strata_h2 *s;
    strata_stream *taken[16];
    unsigned n;
    uint8_t *in;
    size_t in_len;
    seen got;
} raw;

#define RAW_IN (1u << 20)

static void raw_write(raw *r, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t k = strata_send(r->end, b, n, 0);

        if (k <= 0)
            fail_msg("raw write: %s", strata_strerror((int)k));
        b += k;
        n -= (size_t)k;
    }
}

static void raw_frame(raw *r, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload, size_t len)
{
    uint8_t hd[9];

    hd[0] = (uint8_t)(len >> 16);
    hd[1] = (uint8_t)(len >> 8);
    hd[2] = (uint8_t)len;
    hd[3] = type;
    hd[4] = flags;
    hd[5] = (uint8_t)(sid >> 24);
    hd[6] = (uint8_t)(sid >> 16);
    hd[7] = (uint8_t)(sid >> 8);
    hd[8] = (uint8_t)sid;
    raw_write(r, hd, 9);
    if (len)
        raw_write(r, payload, len);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
           | p[3];
}

/* Parse what the server wrote: the GOAWAY and RST_STREAM it chose. */
static void raw_read(raw *r)
{
    size_t off = 0;
    unsigned fl;
    ssize_t n;

    while ((n = strata_recv(r->end, r->in + r->in_len, RAW_IN - r->in_len,
                            &fl)) > 0)
        r->in_len += (size_t)n;
    while (r->in_len - off >= 9) {
        const uint8_t *f = r->in + off;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];

        if (r->in_len - off < 9 + len)
            break;
        if (f[3] == F_GOAWAY && len >= 8) {
            r->got.goaway = 1;
            r->got.goaway_code = be32(f + 13);
        } else if (f[3] == F_RST && len == 4) {
            r->got.rsts++;
            r->got.rst_sid = be32(f + 5) & 0x7fffffffu;
            r->got.rst_code = be32(f + 9);
        }
        off += 9 + len;
    }
    memmove(r->in, r->in + off, r->in_len - off);
    r->in_len -= off;
}

/* Drive the server until it waits or fails; its last status. */
static int raw_drive(raw *r)
{
    strata_stream *s;
    int rv = 0, i;

    for (i = 0; i < 1000; i++) {
        rv = strata_h2_drive(r->s);
        while ((s = strata_h2_accept(r->s)) != NULL) {
            assert_true(r->n < 16);
            r->taken[r->n++] = s;
        }
        if (rv != 0)
            break;
    }
    raw_read(r);
    return rv;
}

/* A server over a roomy unscheduled pipe, and our preface, SETTINGS and
 * the ack of the server's (so its windows apply from the first DATA). */
static void raw_open(raw *r, const strata_h2_opts *o,
                     const strata_allocator *alloc)
{
    strata_stream *b;
    strata_pipe_opts po;

    memset(r, 0, sizeof *r);
    memset(&po, 0, sizeof po);
    po.capacity = 1u << 20;
    assert_int_equal(strata_pipe_pair(&r->end, &b, &po, NULL), 0);
    r->s = strata_h2_new(b, o, alloc);
    assert_non_null(r->s);
    r->in = malloc(RAW_IN);
    assert_non_null(r->in);
    assert_int_equal(raw_drive(r), STRATA_NEED_READ);  /* SETTINGS out */
    raw_write(r, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    raw_frame(r, F_SETTINGS, 0, 0, NULL, 0);
    raw_frame(r, F_SETTINGS, FL_ACK, 0, NULL, 0);
}

static void raw_close(raw *r)
{
    unsigned i;

    for (i = 0; i < r->n; i++)
        strata_free(r->taken[i]);
    strata_h2_free(r->s);
    strata_free(r->end);
    free(r->in);
}

static void raw_request(raw *r, uint32_t sid, uint8_t flags)
{
    raw_frame(r, F_HEADERS, (uint8_t)(FL_END_HEADERS | flags), sid,
              request_block, sizeof request_block);
}

/* n bytes of DATA on sid in frames of the default maximum. */
static void raw_data(raw *r, uint32_t sid, size_t n)
{
    static uint8_t body[16384];

    memset(body, 'x', sizeof body);
    while (n > 0) {
        size_t k = n < sizeof body ? n : sizeof body;

        raw_frame(r, F_DATA, 0, sid, body, k);
        n -= k;
    }
}

static strata_h2_opts server_opts(uint32_t window, uint32_t conn_window)
{
    strata_h2_opts o;

    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_SERVER;
    o.stream_window = window;
    o.connection_window = conn_window;
    return o;
}

/* Read a stream until it stops; the bytes it gave and its last status. */
static ssize_t read_out(strata_stream *s, size_t *got)
{
    static uint8_t buf[65536];
    ssize_t n;

    *got = 0;
    while ((n = strata_read(s, buf, sizeof buf)) > 0)
        *got += (size_t)n;
    return n;
}

/* One byte past a stream's window: RST_STREAM FLOW_CONTROL_ERROR for that
 * stream (a stream error, RFC 9113 6.9), the connection lives on. */
static void test_past_stream_window(void **state)
{
    strata_h2_opts o = server_opts(16384, 0);
    raw r;
    size_t got;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_request(&r, 1, 0);
    raw_data(&r, 1, 16384 + 1);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(r.got.rsts, 1);
    assert_int_equal(r.got.rst_sid, 1);
    assert_int_equal(r.got.rst_code, STRATA_H2_FLOW_CONTROL_ERROR);
    assert_false(r.got.goaway);
    assert_int_equal(r.n, 1);
    /* the window's worth arrived; then the reset, with its code */
    assert_int_equal(read_out(r.taken[0], &got), STRATA_ERR_CLOSED);
    assert_int_equal(got, 16384);
    assert_int_equal(strata_h2_reset_code(r.taken[0]),
                     STRATA_H2_FLOW_CONTROL_ERROR);
    assert_int_equal(strata_h2_error_code(r.s), 0);
    /* another stream on the same connection still works */
    raw_request(&r, 3, 0);
    raw_data(&r, 3, 100);
    raw_frame(&r, F_DATA, FL_END_STREAM, 3, NULL, 0);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(r.n, 2);
    assert_int_equal(read_out(r.taken[1], &got), STRATA_EOF);
    assert_int_equal(got, 100);
    raw_close(&r);
}

/* Every stream overflowed by one frame at once (8 streams x (65535 +
 * 16384) bytes stay within the connection window of 10 x 64 KiB): each
 * gets RST_STREAM FLOW_CONTROL_ERROR, and what came past the windows must
 * not be kept, or the memory bound breaks. The application holds the
 * streams and never reads, as in the flood above. */
static void test_past_every_window(void **state)
{
    strata_test_meter m;
    strata_allocator al;
    strata_h2_opts o = server_opts(64 * 1024, 0);
    size_t bound = 10 * 64 * 1024 + BOUND_CONSTANT;
    uint32_t sid;
    raw r;

    (void)state;
    memset(&m, 0, sizeof m);
    al = strata_test_meter_allocator(&m);
    o.max_concurrent_streams = 10;
    raw_open(&r, &o, &al);
    for (sid = 1; sid <= 15; sid += 2) {
        raw_request(&r, sid, 0);
        raw_data(&r, sid, 65535);
        raw_data(&r, sid, 16384);
        assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
        assert_int_equal(r.got.rst_sid, sid);
        assert_int_equal(r.got.rst_code, STRATA_H2_FLOW_CONTROL_ERROR);
    }
    fprintf(stderr, "h2 memory, every window overflowed: peak %zu bytes, "
            "bound %zu\n", m.peak_bytes, bound);
    assert_int_equal(r.got.rsts, 8);
    assert_false(r.got.goaway);
    assert_int_equal(r.n, 8);
    assert_true(m.peak_bytes <= bound);
    raw_close(&r);
    assert_int_equal(m.bytes, 0);
}

/* One byte past the connection's window: GOAWAY FLOW_CONTROL_ERROR, and
 * every strata call says the connection failed with that code. */
static void test_past_connection_window(void **state)
{
    strata_h2_opts o = server_opts(1u << 20, 65535);
    raw r;
    size_t got;
    int rv;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_request(&r, 1, 0);
    raw_data(&r, 1, 65535 + 1);
    rv = raw_drive(&r);
    assert_int_equal(rv, STRATA_ERR_PROTO);
    assert_true(r.got.goaway);
    assert_int_equal(r.got.goaway_code, STRATA_H2_FLOW_CONTROL_ERROR);
    assert_int_equal(strata_h2_error_code(r.s), STRATA_H2_FLOW_CONTROL_ERROR);
    assert_int_equal(strata_h2_drive(r.s), STRATA_ERR_PROTO);
    assert_int_equal(r.n, 1);
    assert_int_equal(read_out(r.taken[0], &got), STRATA_ERR_PROTO);
    assert_int_equal(strata_h2_reset_code(r.taken[0]),
                     STRATA_H2_FLOW_CONTROL_ERROR);
    raw_close(&r);
}

/* A header block HPACK cannot decode: GOAWAY COMPRESSION_ERROR. */
static void test_bad_header_block(void **state)
{
    /* index 62 names the first dynamic-table entry; the table is empty */
    static const uint8_t garbage[] = {0x83, 0x86, 0x84, 0xbe};
    strata_h2_opts o = server_opts(0, 0);
    raw r;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_frame(&r, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, garbage,
              sizeof garbage);
    assert_int_equal(raw_drive(&r), STRATA_ERR_PROTO);
    assert_true(r.got.goaway);
    assert_int_equal(r.got.goaway_code, STRATA_H2_COMPRESSION_ERROR);
    assert_int_equal(strata_h2_error_code(r.s), STRATA_H2_COMPRESSION_ERROR);
    assert_int_equal(r.n, 0);
    raw_close(&r);
}

/* HEADERS again on a stream whose request already ended (half-closed on
 * the server): nghttp2 makes it a connection error, STREAM_CLOSED. */
static void test_stream_id_reuse(void **state)
{
    strata_h2_opts o = server_opts(0, 0);
    raw r;
    size_t got;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_request(&r, 1, FL_END_STREAM);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(r.n, 1);
    raw_request(&r, 1, FL_END_STREAM);
    assert_int_equal(raw_drive(&r), STRATA_ERR_PROTO);
    assert_true(r.got.goaway);
    assert_int_equal(r.got.goaway_code, STRATA_H2_STREAM_CLOSED);
    assert_int_equal(strata_h2_error_code(r.s), STRATA_H2_STREAM_CLOSED);
    assert_int_equal(r.n, 1);
    /* the stream had its whole request: EOF, not the failure */
    assert_int_equal(read_out(r.taken[0], &got), STRATA_EOF);
    raw_close(&r);
}

/* HEADERS again on a stream closed both ways: nghttp2 still remembers it
 * and answers the same, GOAWAY STREAM_CLOSED. */
static void test_stream_id_reuse_closed(void **state)
{
    strata_h2_opts o = server_opts(0, 0);
    raw r;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_request(&r, 1, FL_END_STREAM);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(r.n, 1);
    assert_int_equal(strata_h2_respond(r.taken[0], 200, NULL, 0,
                                       STRATA_H2_END_STREAM), 0);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(strata_h2_open_streams(r.s), 0);
    raw_request(&r, 1, FL_END_STREAM);
    assert_int_equal(raw_drive(&r), STRATA_ERR_PROTO);
    assert_true(r.got.goaway);
    assert_int_equal(r.got.goaway_code, STRATA_H2_STREAM_CLOSED);
    assert_int_equal(strata_h2_error_code(r.s), STRATA_H2_STREAM_CLOSED);
    assert_int_equal(r.n, 1);
    raw_close(&r);
}

/* A new stream with an id below one already used (RFC 9113 5.1.1: a
 * PROTOCOL_ERROR). nghttp2 cannot tell it from a late frame of a stream
 * it forgot, so it drops the header block; strata must not surface a
 * stream for it, and the connection goes on. */
static void test_stream_id_lower(void **state)
{
    strata_h2_opts o = server_opts(0, 0);
    raw r;
    size_t got;

    (void)state;
    raw_open(&r, &o, NULL);
    raw_request(&r, 5, FL_END_STREAM);
    raw_request(&r, 3, FL_END_STREAM);
    raw_request(&r, 7, FL_END_STREAM);
    assert_int_equal(raw_drive(&r), STRATA_NEED_READ);
    assert_int_equal(r.n, 2);
    assert_int_equal(strata_h2_stream_id(r.taken[0]), 5);
    assert_int_equal(strata_h2_stream_id(r.taken[1]), 7);
    assert_false(r.got.goaway);
    assert_int_equal(read_out(r.taken[1], &got), STRATA_EOF);
    raw_close(&r);
}

/* Not HTTP/2 at all: GOAWAY PROTOCOL_ERROR on the wire, ERR_PROTO here. */
static void test_garbage_preface(void **state)
{
    static const char junk[] = "PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n";
    strata_h2_opts o = server_opts(0, 0);
    strata_stream *b;
    raw r;

    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(strata_pipe_pair(&r.end, &b, NULL, NULL), 0);
    r.s = strata_h2_new(b, &o, NULL);
    r.in = malloc(RAW_IN);
    assert_non_null(r.s);
    assert_non_null(r.in);
    raw_write(&r, junk, sizeof junk - 1);
    assert_int_equal(raw_drive(&r), STRATA_ERR_PROTO);
    assert_true(r.got.goaway);
    assert_int_equal(r.got.goaway_code, STRATA_H2_PROTOCOL_ERROR);
    assert_int_equal(strata_h2_error_code(r.s), STRATA_H2_PROTOCOL_ERROR);
    raw_close(&r);
}

/* ---- resets in the middle of a body ------------------------------------- */

#define BODY (256u * 1024u)

typedef struct duo {
    strata_h2 *c, *s;
} duo;

static void duo_open(duo *d, uint64_t seed, const strata_allocator *sa)
{
    strata_pipe_opts po;
    strata_h2_opts o;
    strata_stream *a, *b;

    memset(&po, 0, sizeof po);
    po.max_chunk = 3000;
    po.need_percent = 15;
    po.seed = seed;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_CLIENT;
    d->c = strata_h2_new(a, &o, NULL);
    o.role = STRATA_H2_SERVER;
    d->s = strata_h2_new(b, &o, sa);
    assert_non_null(d->c);
    assert_non_null(d->s);
}

static void duo_pump(duo *d)
{
    assert_true(strata_h2_drive(d->c) >= STRATA_EOF);
    assert_true(strata_h2_drive(d->s) >= STRATA_EOF);
}

static strata_stream *duo_request(duo *d)
{
    static const strata_h2_header head[] = {
        {":method", "POST"}, {":scheme", "http"}, {":authority", "test"},
        {":path", "/"},
    };
    strata_stream *s = NULL;

    assert_int_equal(strata_h2_request(d->c, head, 4, 0, &s), 0);
    return s;
}

/* An empty request body: END_STREAM once the transport lets it go. */
static void duo_shutdown(duo *d, strata_stream *s)
{
    int i, rv = STRATA_NEED_WRITE;

    for (i = 0; i < 1000 && rv != 0; i++) {
        rv = strata_shutdown(s);
        assert_true(rv == 0 || rv == STRATA_NEED_READ
                    || rv == STRATA_NEED_WRITE);
        duo_pump(d);
    }
    assert_int_equal(rv, 0);
}

static uint8_t pattern(size_t i, int which)
{
    return (uint8_t)((i * 131u + i / 251u) ^ (unsigned)which * 0x5a);
}

/* One end of a body: sends or reads it, byte-checked, a bounded step. */
typedef struct leg {
    strata_stream *s;
    int which;
    size_t off, stop;       /* stop: where the sender stops (reset) */
    ssize_t last;           /* the last status */
} leg;

static int send_step(leg *l)
{
    uint8_t buf[4096];
    size_t n = l->stop - l->off, i;
    ssize_t k;

    if (n == 0)
        return 0;
    if (n > sizeof buf)
        n = sizeof buf;
    for (i = 0; i < n; i++)
        buf[i] = pattern(l->off + i, l->which);
    k = strata_send(l->s, buf, n, 0);
    l->last = k;
    if (k > 0)
        l->off += (size_t)k;
    return k > 0;
}

static int recv_step(leg *l)
{
    uint8_t buf[4096];
    ssize_t k = strata_read(l->s, buf, sizeof buf), i;

    l->last = k;
    for (i = 0; i < k; i++)
        if (buf[i] != pattern(l->off + (size_t)i, l->which))
            fail_msg("stream %d: byte %zu differs", (int)l->which,
                     l->off + (size_t)i);
    if (k > 0)
        l->off += (size_t)k;
    return k > 0;
}

static void accept_two(duo *d, strata_stream **s1, strata_stream **s2)
{
    int i;

    *s1 = *s2 = NULL;
    for (i = 0; i < 1000 && !*s2; i++) {
        duo_pump(d);
        if (!*s1)
            *s1 = strata_h2_accept(d->s);
        else
            *s2 = strata_h2_accept(d->s);
    }
    assert_non_null(*s2);
}

/* The client cancels stream A halfway through its body; stream B, sent at
 * the same time over the same hostile schedule, arrives whole. */
static void test_reset_mid_message(void **state)
{
    duo d;
    leg ca, cb, sa, sb;
    int i, a_reset = 0, b_shut = 0;

    (void)state;
    duo_open(&d, strata_test_seed(), NULL);
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    ca.s = duo_request(&d);
    cb.s = duo_request(&d);
    ca.which = sa.which = 1;
    cb.which = sb.which = 2;
    ca.stop = BODY / 2;
    cb.stop = BODY;
    accept_two(&d, &sa.s, &sb.s);
    for (i = 0; i < 200000; i++) {
        send_step(&ca);
        send_step(&cb);
        if (ca.off == ca.stop && !a_reset)
            a_reset = strata_h2_reset(ca.s, STRATA_H2_CANCEL) == 0;
        if (cb.off == cb.stop && !b_shut)
            b_shut = strata_shutdown(cb.s) == 0;
        if (sa.last != STRATA_ERR_CLOSED)
            recv_step(&sa);
        if (sb.last != STRATA_EOF)
            recv_step(&sb);
        if (sa.last == STRATA_ERR_CLOSED && sb.last == STRATA_EOF)
            break;
        duo_pump(&d);
    }
    assert_true(a_reset);
    assert_int_equal(sa.last, STRATA_ERR_CLOSED);
    assert_int_equal(strata_h2_reset_code(sa.s), STRATA_H2_CANCEL);
    assert_true(sa.off <= BODY / 2);
    assert_int_equal(sb.last, STRATA_EOF);
    assert_int_equal(sb.off, BODY);
    strata_free(ca.s);
    strata_free(cb.s);
    strata_free(sa.s);
    strata_free(sb.s);
    strata_h2_free(d.c);
    strata_h2_free(d.s);
}

/* The server resets one response halfway; the client's other response
 * arrives whole, and the client sees the reset with its code. */
static void test_server_reset_mid_response(void **state)
{
    duo d;
    strata_stream *c1, *c2;
    leg s1, s2, r1, r2;
    int i, reset = 0, shut = 0;

    (void)state;
    duo_open(&d, strata_test_seed(), NULL);
    c1 = duo_request(&d);
    c2 = duo_request(&d);
    duo_shutdown(&d, c1);
    duo_shutdown(&d, c2);
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    accept_two(&d, &s1.s, &s2.s);
    assert_int_equal(strata_h2_respond(s1.s, 200, NULL, 0, 0), 0);
    assert_int_equal(strata_h2_respond(s2.s, 200, NULL, 0, 0), 0);
    s1.which = r1.which = 3;
    s2.which = r2.which = 4;
    s1.stop = BODY / 2;
    s2.stop = BODY;
    r1.s = c1;
    r2.s = c2;
    for (i = 0; i < 200000; i++) {
        send_step(&s1);
        send_step(&s2);
        if (s1.off == s1.stop && !reset)
            reset = strata_h2_reset(s1.s, STRATA_H2_INTERNAL_ERROR) == 0;
        if (s2.off == s2.stop && !shut)
            shut = strata_shutdown(s2.s) == 0;
        if (r1.last != STRATA_ERR_CLOSED)
            recv_step(&r1);
        if (r2.last != STRATA_EOF)
            recv_step(&r2);
        if (r1.last == STRATA_ERR_CLOSED && r2.last == STRATA_EOF)
            break;
        duo_pump(&d);
    }
    assert_int_equal(r1.last, STRATA_ERR_CLOSED);
    assert_int_equal(strata_h2_reset_code(c1), STRATA_H2_INTERNAL_ERROR);
    assert_int_equal(r2.last, STRATA_EOF);
    assert_int_equal(r2.off, BODY);
    strata_free(c1);
    strata_free(c2);
    strata_free(s1.s);
    strata_free(s2.s);
    strata_h2_free(d.c);
    strata_h2_free(d.s);
}

/* A stream reset before the server application took it: it is never
 * offered, and what it held goes back (the server's memory returns to
 * where it was before the stream came). */
static void test_reset_before_accept(void **state)
{
    strata_test_meter m;
    strata_allocator al;
    duo d;
    leg c;
    size_t before;
    int i;

    (void)state;
    memset(&m, 0, sizeof m);
    al = strata_test_meter_allocator(&m);
    duo_open(&d, strata_test_seed(), &al);
    for (i = 0; i < 50; i++)
        duo_pump(&d);   /* settings both ways */
    before = m.bytes;
    memset(&c, 0, sizeof c);
    c.s = duo_request(&d);
    c.stop = 30000;
    for (i = 0; i < 10000 && c.off < c.stop; i++) {
        send_step(&c);
        assert_true(strata_h2_drive(d.c) >= STRATA_EOF);
    }
    assert_int_equal(c.off, c.stop);
    assert_int_equal(strata_h2_reset(c.s, STRATA_H2_CANCEL), 0);
    for (i = 0; i < 2000; i++)
        duo_pump(&d);
    assert_null(strata_h2_accept(d.s));
    assert_null(strata_h2_ready(d.s));
    assert_int_equal(strata_h2_open_streams(d.s), 0);
    fprintf(stderr, "server memory: %zu before the stream, %zu after it "
            "was reset (peak %zu)\n", before, m.bytes, m.peak_bytes);
    assert_true(m.bytes <= before + 4096);
    strata_free(c.s);
    strata_h2_free(d.c);
    strata_h2_free(d.s);
    assert_int_equal(m.bytes, 0);
}

int main(void)
{
    const char *only = getenv("STRATA_TEST_FILTER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_bound_10_streams),
        cmocka_unit_test(test_memory_bound_early_flood),
        cmocka_unit_test(test_memory_bound_odd_window),
        cmocka_unit_test(test_memory_bound_big_headers),
        cmocka_unit_test(test_memory_bound_answers_stuck),
        cmocka_unit_test(test_memory_bound_100_streams),
        cmocka_unit_test(test_past_stream_window),
        cmocka_unit_test(test_past_every_window),
        cmocka_unit_test(test_past_connection_window),
        cmocka_unit_test(test_bad_header_block),
        cmocka_unit_test(test_stream_id_reuse),
        cmocka_unit_test(test_stream_id_reuse_closed),
        cmocka_unit_test(test_stream_id_lower),
        cmocka_unit_test(test_garbage_preface),
        cmocka_unit_test(test_reset_mid_message),
        cmocka_unit_test(test_server_reset_mid_response),
        cmocka_unit_test(test_reset_before_accept),
    };

    if (only != NULL && *only != '\0')
        cmocka_set_test_filter(only);   /* replay one test with its seed */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
