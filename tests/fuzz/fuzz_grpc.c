/* libFuzzer target for the grpc layer: what a hostile peer sends to a
 * strata gRPC server, or to a strata gRPC client after it opened two
 * calls. nghttp2 and the h2 layer parse the frames; under test is the
 * grpc layer: request checks and refusals, the 5-byte prefixes cut
 * anywhere, compressed messages gathered and inflated (gzip bombs),
 * "-bin" metadata, grpc-status / grpc-message / grpc-timeout parsing,
 * statuses from trailers, trailers-only heads, HTTP statuses and resets,
 * and call lifetimes (freed early, cancelled, expired).
 *
 * The input's bytes after the first two are the peer's byte stream,
 * written into the other end of a pipe pair in chunks between the turns
 * of an application loop; the loop drives the connection and, with
 * choices from a generator seeded by the first two bytes, accepts calls
 * (server) or keeps its two calls going (client): reads in random sizes,
 * sends messages, finishes with statuses and trailers, sends heads,
 * cancels, expires, frees. Checked, besides ASan/UBSan/LSan:
 *  - every call returns one of its documented statuses;
 *  - a received message is never longer than max_recv (pieces counted up
 *    to each MSG_END) and a read never returns more than asked;
 *  - a call that failed has a status (strata_grpc_status >= 0) and a
 *    message; a client's EOF means status OK and STRATA_ERR_GRPC another
 *    one; final statuses stay;
 *  - the loop terminates within a bounded number of turns.
 *
 * Input: b0 bit 0 = mode (0: we are the server, the bytes are a client's;
 * 1: we are the client, the bytes are a server's answer); bits 1-3 = pipe
 * max_chunk; bits 4-5 = need percent; bit 6 = we send gzip; bit 7 =
 * max_recv 1000 bytes (else 64 KiB). b0 and b1 seed the choices. A
 * client's calls: /fuzz.Svc/Unary on stream 1 (one message, then the
 * half-close) and /fuzz.Svc/Bidi on stream 3 (metadata, a grpc-timeout,
 * messages as the loop goes). tests/fuzz/make_grpc_seeds.c writes seeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>
#include <strata/grpc.h>

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

#define MAX_CALLS 16
#define STALL_LIMIT 500     /* turns without progress after the EOF */
#define QUIET_TURNS 64
#define TURN_LIMIT 100000L
#define PATTERN 4096

static uint8_t pattern[PATTERN];
static uint8_t rbuf[70000];

static const strata_grpc_method methods[] = {
    {"/fuzz.Svc/Unary", NULL}, {"/fuzz.Svc/Bidi", NULL},
};

/* ---- the generator of the application's choices ------------------------ */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 16);
}

static int one_in(unsigned n)
{
    return rnd() % n == 0;
}

static int need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* ---- calls -------------------------------------------------------------- */

typedef struct app_call {
    strata_stream *s;
    size_t rx_msg;          /* bytes of the message being received */
    size_t tx_len, tx_off;  /* a message being sent, continued */
    int tx_failed;          /* a send failed (not NEED) */
    int final;              /* recv returned a final status */
    long final_rv;
    int shut, finished, finish_tried;
} app_call;

typedef struct run {
    strata_stream *raw, *end;
    strata_h2 *h;
    int server, gzip;
    size_t max_recv;
    app_call a[MAX_CALLS];
    int n;
    int progress;
} run;

static void adopt(run *r, strata_stream *s)
{
    app_call *c;

    if (r->n == MAX_CALLS) {
        strata_free(s);
        return;
    }
    c = &r->a[r->n++];
    memset(c, 0, sizeof *c);
    c->s = s;
}

static void drop(run *r, int i)
{
    strata_free(r->a[i].s);
    r->a[i] = r->a[--r->n];
}

/* A call that ended has a status and a message. */
static void check_ended(app_call *c)
{
    int st = strata_grpc_status(c->s);

    CHECK(st >= 0);
    CHECK(strata_grpc_message(c->s) != NULL);
    (void)strata_grpc_status_name(st);
}

static void do_recv(run *r, app_call *c)
{
    static const size_t sizes[6] = {1, 4, 5, 100, 4096, sizeof rbuf};
    size_t len = sizes[rnd() % 6];
    unsigned fl = 1234;
    ssize_t n = strata_recv(c->s, rbuf, len, &fl);

    if (n >= 0) {
        CHECK((size_t)n <= len);
        CHECK((fl & ~STRATA_MSG_END) == 0);
        CHECK(n > 0 || (fl & STRATA_MSG_END));
        CHECK(!c->final);
        c->rx_msg += (size_t)n;
        CHECK(c->rx_msg <= r->max_recv);
        if (fl & STRATA_MSG_END)
            c->rx_msg = 0;
        r->progress = 1;
        return;
    }
    if (need(n))
        return;
    if (n == STRATA_ERR_STATE) {    /* a server call that ended */
        CHECK(r->server
              && (c->finish_tried || strata_grpc_status(c->s) >= 0));
        return;
    }
    CHECK(n == STRATA_EOF || n == STRATA_ERR_GRPC || n == STRATA_ERR_PROTO
          || n == STRATA_ERR_TOO_BIG || n == STRATA_ERR_NOMEM);
    if (!r->server) {
        /* a client's end says how the call ended, and stays */
        if (c->final && c->final_rv != STRATA_ERR_PROTO
            && c->final_rv != STRATA_ERR_TOO_BIG)
            CHECK(n == c->final_rv);
        check_ended(c);
        if (n == STRATA_EOF)
            CHECK(strata_grpc_status(c->s) == STRATA_GRPC_OK);
        if (n == STRATA_ERR_GRPC)
            CHECK(strata_grpc_status(c->s) != STRATA_GRPC_OK);
        (void)strata_grpc_trailer_get(c->s, "x-bin", NULL);
    } else if (n != STRATA_EOF) {
        check_ended(c);
    }
    if (!c->final)
        r->progress = 1;
    c->final = 1;
    c->final_rv = n;
}

static void do_send(run *r, app_call *c)
{
    ssize_t n;

    if (c->tx_len == 0 && c->tx_off == 0)
        c->tx_len = rnd() % (one_in(8) ? PATTERN : 64);
    n = strata_send(c->s, pattern + c->tx_off, c->tx_len - c->tx_off,
                    STRATA_MSG_END);
    if (n >= 0) {
        CHECK((size_t)n <= c->tx_len - c->tx_off);
        c->tx_off += (size_t)n;
        if (c->tx_off == c->tx_len)
            c->tx_len = c->tx_off = 0;
        r->progress = 1;
        return;
    }
    CHECK(need(n) || n == STRATA_ERR_GRPC || n == STRATA_ERR_STATE
          || n == STRATA_ERR_CLOSED || n == STRATA_ERR_PROTO
          || n == STRATA_EOF || n == STRATA_ERR_TRUNCATED
          || n == STRATA_ERR_NOMEM || n == STRATA_ERR_TOO_BIG
          || (n == STRATA_ERR_ARG && c->tx_failed));
    if (!need(n)) {
        /* a message cut by a failure is not continued: the lenprefix
         * layer below still owes its rest and calls a new one a
         * caller's mistake (STRATA_ERR_ARG) */
        c->tx_failed = 1;
        c->tx_len = c->tx_off = 0;
    }
}

static void do_finish(run *r, app_call *c)
{
    static const char *const msgs[] = {NULL, "", "plain", "100% \xe2\x98\xba",
                                       "\t\r\n\x01\x7f\xff"};
    static const uint8_t bin[] = {0, 0xff, 0x10};
    strata_grpc_md md[2] = {{"x-bin", bin, sizeof bin}, {"x-t", "v", 0}};
    int rv = strata_grpc_finish(c->s, (int)(rnd() % 18), msgs[rnd() % 5],
                                md, rnd() % 3);

    CHECK(rv == 0 || need(rv) || rv < 0);
    CHECK(rv != STRATA_ERR_ARG);
    if (rv == 0 || need(rv))
        c->finish_tried = 1;    /* no more receives, even while NEED */
    if (rv == 0) {
        c->finished = 1;
        r->progress = 1;
        CHECK(strata_grpc_status(c->s) >= 0);
    }
}

static void look(run *r, app_call *c)
{
    size_t len = 0;
    long t = strata_grpc_timeout_ms(c->s);
    const void *v;

    CHECK(t == -1 || t >= 0);
    v = strata_grpc_md_get(c->s, "x-bin", &len);
    CHECK(v != NULL || len == 0);
    (void)strata_grpc_md_get(c->s, "user-agent", &len);
    (void)strata_poll(c->s, STRATA_POLL_IN | STRATA_POLL_OUT);
    (void)strata_wants(c->s);
    CHECK(strata_grpc_h2_stream(c->s) != NULL);
    if (r->server)
        CHECK(strata_grpc_method_of(c->s) != NULL);
    else
        (void)strata_grpc_head(c->s);
}

/* One turn of one call; returns 1 when it was freed. */
static int act(run *r, int i)
{
    app_call *c = &r->a[i];
    unsigned k = rnd() % 32;
    int rv;

    if (c->tx_len && one_in(2)) {   /* a send that waited goes on */
        do_send(r, c);
        return 0;
    }
    if (k < 12) {
        do_recv(r, c);
    } else if (k < 16) {
        do_send(r, c);
    } else if (k == 16 && r->server && !c->finished && !c->tx_len) {
        do_finish(r, c);
    } else if (k == 17 && !r->server && !c->shut && !c->tx_len) {
        rv = strata_shutdown(c->s);
        CHECK(rv == 0 || need(rv) || rv < 0);
        c->shut = rv == 0;
    } else if (k == 18 && r->server && one_in(4)) {
        rv = strata_grpc_send_head(c->s, NULL, 0);
        CHECK(rv == 0 || rv == STRATA_ERR_STATE || rv < 0);
    } else if (k == 19 && one_in(16)) {
        CHECK(strata_grpc_cancel(c->s) == 0);
        check_ended(c);
    } else if (k == 20 && one_in(16)) {
        CHECK(strata_grpc_expire(c->s) == 0);
        check_ended(c);
    } else if (k == 21 && one_in(16)) {
        drop(r, i);
        return 1;
    } else if (k == 22) {
        rv = strata_flush(c->s);
        CHECK(rv == 0 || need(rv) || rv < 0);
    } else {
        look(r, c);
    }
    return 0;
}

static void accept_all(run *r)
{
    strata_stream *h;

    while ((h = strata_h2_accept(r->h)) != NULL) {
        strata_grpc_opts so;
        strata_stream *s = NULL;
        int rv;

        memset(&so, 0, sizeof so);
        so.methods = methods;
        so.n_methods = 2;
        so.encoding = r->gzip ? "gzip" : NULL;
        so.max_recv = r->max_recv;
        rv = strata_grpc_accept(h, &so, NULL, &s);
        CHECK(rv == 0 || rv == STRATA_ERR_UNSUPPORTED
              || rv == STRATA_ERR_PROTO || rv == STRATA_ERR_NOMEM);
        CHECK((rv == 0) == (s != NULL));
        r->progress = 1;
        if (s)
            adopt(r, s);
    }
}

static void open_calls(run *r)
{
    static const uint8_t bin[] = {0, 0xff, 1, 2};
    strata_grpc_md md[2] = {{"x-bin", bin, sizeof bin}, {"x-id", "7", 0}};
    strata_grpc_opts o;
    strata_stream *s;

    memset(&o, 0, sizeof o);
    o.path = methods[0].path;
    o.authority = "fuzz";
    o.max_recv = r->max_recv;
    o.encoding = r->gzip ? "gzip" : NULL;
    CHECK(strata_grpc_call(r->h, &o, NULL, &s) == 0);
    adopt(r, s);
    r->a[0].tx_len = 20;
    o.path = methods[1].path;
    o.md = md;
    o.n_md = 2;
    o.timeout_ms = 1500;
    CHECK(strata_grpc_call(r->h, &o, NULL, &s) == 0);
    adopt(r, s);
}

/* ---- the transport ------------------------------------------------------ */

static void put_all(strata_stream *raw, const uint8_t *p, size_t len)
{
    long tries = 0;

    while (len > 0) {
        ssize_t w = strata_write(raw, p, len);

        if (need(w)) {
            CHECK(++tries < 100000);
            continue;
        }
        CHECK(w > 0 && (size_t)w <= len);
        p += w;
        len -= (size_t)w;
    }
}

/* Our output is read and dropped: the peer is the input. */
static void drain(strata_stream *raw)
{
    static uint8_t sink[65536];
    int i;

    for (i = 0; i < 64 && strata_pipe_pending(raw) > 0; i++)
        (void)strata_read(raw, sink, sizeof sink);
}

static int all_final(const run *r)
{
    int i;

    for (i = 0; i < r->n; i++)
        if (!r->a[i].final)
            return 0;
    return 1;
}

static void open_run(run *r, const uint8_t *d, size_t size)
{
    static const size_t chunks[8] = {0, 1, 2, 5, 9, 64, 1000, 16384};
    static const unsigned needs[4] = {0, 5, 20, 50};
    strata_pipe_opts po;
    strata_h2_opts ho;

    memset(r, 0, sizeof *r);
    r->server = !(d[0] & 1);
    r->gzip = (d[0] >> 6) & 1;
    r->max_recv = (d[0] & 0x80) ? 1000 : 65536;
    memset(&po, 0, sizeof po);
    po.capacity = size + 65536;
    po.max_chunk = chunks[(d[0] >> 1) & 7];
    po.need_percent = needs[(d[0] >> 4) & 3];
    po.seed = (uint64_t)d[0] << 8 | d[1];
    CHECK(strata_pipe_pair(&r->raw, &r->end, &po, NULL) == 0);
    memset(&ho, 0, sizeof ho);
    ho.role = r->server ? STRATA_H2_SERVER : STRATA_H2_CLIENT;
    ho.max_header_list = 16384;
    r->h = strata_h2_new(r->end, &ho, NULL);
    CHECK(r->h != NULL);
    rng_state = (uint64_t)d[0] << 8 | d[1];
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t i;

    (void)argc;
    (void)argv;
    for (i = 0; i < PATTERN; i++)
        pattern[i] = (uint8_t)(i * 7 + (i >> 8) * 3 + 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;
    const uint8_t *in;
    size_t len, pos = 0;
    int eof_fed = 0, i, rv;
    long turn, stalls = 0;

    if (size < 2)
        return 0;
    open_run(&r, data, size);
    in = data + 2;
    len = size - 2;
    if (!r.server)
        open_calls(&r);
    for (turn = 0;; turn++) {
        CHECK(turn < TURN_LIMIT);
        r.progress = 0;
        if (pos < len) {
            static const size_t feeds[5] = {1, 5, 9, 100, (size_t)-1};
            size_t n = feeds[rnd() % 5];

            if (n > len - pos)
                n = len - pos;
            put_all(r.raw, in + pos, n);
            pos += n;
            r.progress = 1;
        } else if (!eof_fed) {
            CHECK(strata_shutdown(r.raw) == 0);
            eof_fed = 1;
            r.progress = 1;
        }
        drain(r.raw);
        rv = strata_h2_drive(r.h);
        CHECK(rv == 0 || need(rv) || rv == STRATA_EOF
              || rv == STRATA_ERR_PROTO || rv == STRATA_ERR_TRUNCATED);
        if (r.server)
            accept_all(&r);
        while (strata_h2_ready(r.h) != NULL)
            ;
        for (i = 0; i < r.n; i++)
            if (one_in(2) && act(&r, i))
                i--;
        if (eof_fed && (all_final(&r) || (!r.progress
                                          && ++stalls >= STALL_LIMIT)))
            break;
    }
    /* nothing leaks, whatever order things go in */
    if (one_in(2)) {
        strata_h2_free(r.h);
        r.h = NULL;
    }
    while (r.n > 0)
        drop(&r, (int)(rnd() % (unsigned)r.n));
    strata_h2_free(r.h);
    strata_free(r.raw);
    return 0;
}
