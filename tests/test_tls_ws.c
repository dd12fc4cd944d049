/* TLS tunnelled in a WebSocket: tls -> ws -> tcp, both ends in this
 * thread over a real loopback connection with a real HTTP/1.1 Upgrade,
 * driven by poll(2) on the two descriptors and strata_wants. Checked:
 * random messages both ways at once arrive byte for byte; close_notify
 * both ways is EOF and the WebSocket below then closes normally; a
 * WebSocket closed under TLS without close_notify is a truncation to the
 * TLS peer. Then the same stack over the hostile pipe schedule through
 * the property harness. Every loop is bounded (waits and a deadline). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/socket.h>
#include <strata/tls.h>
#include <strata/ws.h>

#include "harness.h"

#define MAX_MSG (64 * 1024)
#define WAIT_MS 50
#define IDLE_LIMIT 200      /* waits in a row without progress: 10 s */
#define DEADLINE_S 240      /* a whole phase, valgrind included */

static char path_buf[3][512];

/* Under valgrind (STRATA_VALGRIND set) a tenth of the messages, as the
 * harness does: the native and sanitizer runs carry the full count. */
static unsigned scaled(unsigned messages)
{
    const char *v = getenv("STRATA_VALGRIND");

    if (v != NULL && *v != '\0' && *v != '0' && messages >= 10)
        return messages / 10;
    return messages;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static strata_tls_config *server_cfg(void)
{
    strata_tls_config *c = strata_tls_config_new(STRATA_TLS_SERVER, NULL);

    assert_non_null(c);
    assert_int_equal(strata_tls_config_cert_file(c,
        strata_test_cert(path_buf[0], sizeof path_buf[0], "server.pem"),
        strata_test_cert(path_buf[1], sizeof path_buf[1], "server.key")), 0);
    return c;
}

static strata_tls_config *client_cfg(void)
{
    strata_tls_config *c = strata_tls_config_new(STRATA_TLS_CLIENT, NULL);

    assert_non_null(c);
    assert_int_equal(strata_tls_config_ca_file(c,
        strata_test_cert(path_buf[2], sizeof path_buf[2], "ca.pem"), NULL),
        0);
    return c;
}

/* ---- the stacks over loopback TCP ----------------------------------- */

typedef struct conn {
    strata_tls_config *cc, *sc;
    strata_stream *ws_c, *ws_s;   /* the WebSockets under TLS */
    strata_stream *c, *s;         /* TLS client and server: the tops */
} conn;

/* A connected pair of sockets: a non-blocking connect, then accept. */
static void tcp_pair(strata_stream **client, strata_stream **server)
{
    int lfd = strata_tcp_listen("127.0.0.1", "0", 4), i, r = -1;
    char port[16];

    assert_true(lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    assert_int_equal(strata_tcp_connect("127.0.0.1", port, NULL, client), 0);
    for (i = 0; i < 100 && r != 0; i++) {
        struct pollfd p = {lfd, POLLIN, 0};

        (void)poll(&p, 1, WAIT_MS);
        r = strata_accept(lfd, NULL, server);
        assert_true(r == 0 || r == STRATA_NEED_READ);
    }
    assert_int_equal(r, 0);
    close(lfd);
}

static void conn_open(conn *k)
{
    strata_stream *tc, *ts;
    strata_ws_opts wc, wsv;
    strata_tls_opts to;

    memset(k, 0, sizeof *k);
    k->cc = client_cfg();
    k->sc = server_cfg();
    tcp_pair(&tc, &ts);
    memset(&wc, 0, sizeof wc);
    wc.role = STRATA_WS_CLIENT;
    wc.host = "localhost";
    wc.path = "/tunnel";
    memset(&wsv, 0, sizeof wsv);
    wsv.role = STRATA_WS_SERVER;
    k->ws_c = strata_ws_new(tc, &wc, NULL);
    k->ws_s = strata_ws_new(ts, &wsv, NULL);
    assert_non_null(k->ws_c);
    assert_non_null(k->ws_s);
    memset(&to, 0, sizeof to);
    to.server_name = "localhost";
    k->c = strata_tls_new(k->ws_c, k->cc, &to, NULL);
    k->s = strata_tls_new(k->ws_s, k->sc, NULL, NULL);
    assert_non_null(k->c);
    assert_non_null(k->s);
}

static void conn_close(conn *k)
{
    strata_free(k->c);      /* each top owns the stack below it */
    strata_free(k->s);
    strata_tls_config_free(k->cc);
    strata_tls_config_free(k->sc);
}

static short events_of(unsigned wants)
{
    return (short)((wants & STRATA_WANT_READ ? POLLIN : 0) |
                   (wants & STRATA_WANT_WRITE ? POLLOUT : 0));
}

/* Nothing moved: wait on both descriptors for what each stack asked
 * (its NEED codes and what its layers hold), at most WAIT_MS. */
static void wait_io(conn *k, unsigned want_c, unsigned want_s)
{
    struct pollfd p[2];

    p[0].fd = strata_fd(k->c);
    p[0].events = events_of(want_c | strata_wants(k->c));
    p[1].fd = strata_fd(k->s);
    p[1].events = events_of(want_s | strata_wants(k->s));
    p[0].revents = p[1].revents = 0;
    assert_true(p[0].fd >= 0 && p[1].fd >= 0);
    (void)poll(p, 2, WAIT_MS);
}

/* The bits a NEED status asks for; strata_tls_handshake returns its
 * NEED without recording it for strata_wants, so the caller passes it. */
static unsigned want_of(int r)
{
    return r == STRATA_NEED_READ ? STRATA_WANT_READ
         : r == STRATA_NEED_WRITE ? STRATA_WANT_WRITE : 0;
}

static int waiting(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* One handshake step of a side. Done, its last flight may still sit in
 * the layer (wants says WRITE): an event loop pushes it with a flush. */
static int hs_step(strata_stream *s, int r)
{
    if (r != 0)
        r = strata_tls_handshake(s);
    if (r == 0 && (strata_wants(s) & STRATA_WANT_WRITE)) {
        int f = strata_flush(s);

        assert_true(f == 0 || waiting(f));
    }
    return r;
}

/* Both handshakes: the WebSocket Upgrade below runs inside the first. */
static void handshake(conn *k)
{
    int rc = STRATA_NEED_WRITE, rs = STRATA_NEED_READ, i;
    double end = now_s() + DEADLINE_S;

    for (i = 0; rc != 0 || rs != 0; i++) {
        rc = hs_step(k->c, rc);
        rs = hs_step(k->s, rs);
        if (!(rc == 0 || waiting(rc)) || !(rs == 0 || waiting(rs)))
            fail_msg("handshake: client %s (%s), server %s (%s)",
                     strata_strerror(rc), strata_tls_reason(k->c),
                     strata_strerror(rs), strata_tls_reason(k->s));
        if (rc != 0 || rs != 0)
            wait_io(k, want_of(rc), want_of(rs));
        assert_true(i < IDLE_LIMIT * 10 && now_s() < end);
    }
    assert_int_equal(strata_ws_status(k->ws_c), 101);
    assert_non_null(strata_tls_version(k->c));
    assert_true(strata_tls_peer_verified(k->c));
}

/* ---- random messages one way ---------------------------------------- */

typedef struct flow {
    strata_stream *from, *to;
    uint64_t base, rng;
    unsigned count;
    /* sender */
    unsigned tx_msg;
    size_t tx_size, tx_off;
    int tx_state;            /* 0 sending, 1 shutting down, 2 done */
    int keep_open;           /* no shutdown after the last message */
    uint8_t *tx;
    /* receiver */
    unsigned rx_msg;
    size_t rx_size, rx_off;
    int rx_eof;
    uint8_t *exp, *in;
} flow;

/* Message i of a flow: a quarter are small, the rest 0..MAX_MSG. */
static size_t make_msg(const flow *f, unsigned i, uint8_t *buf)
{
    uint64_t g = f->base ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
    size_t size = strata_rand(&g) % 4 == 0 ? strata_rand(&g) % 65
                                          : strata_rand(&g) % (MAX_MSG + 1);
    size_t k;

    for (k = 0; k < size; k += 8) {
        uint64_t w = strata_rand(&g);

        memcpy(buf + k, &w, size - k < 8 ? size - k : 8);
    }
    return size;
}

static void flow_init(flow *f, strata_stream *from, strata_stream *to,
                      uint64_t seed, unsigned count)
{
    memset(f, 0, sizeof *f);
    f->from = from;
    f->to = to;
    f->base = seed;
    f->rng = ~seed;
    f->count = count;
    f->tx = malloc(MAX_MSG);
    f->exp = malloc(MAX_MSG);
    f->in = malloc(MAX_MSG);
    assert_true(f->tx && f->exp && f->in);
    f->tx_size = make_msg(f, 0, f->tx);
    f->rx_size = make_msg(f, 0, f->exp);
}

static void flow_free(flow *f)
{
    free(f->tx);
    free(f->exp);
    free(f->in);
}

/* Send what can go now; 1 if anything moved. After the last message the
 * sender ends its direction: close_notify, then the WebSocket close. */
static int send_some(flow *f)
{
    int moved = 0;
    ssize_t r;

    while (f->tx_state == 0) {
        if (f->tx_msg == f->count) {
            if (f->keep_open)
                return moved;
            f->tx_state = 1;
            break;
        }
        /* a NEED means: retry the very same bytes later (tls.h) */
        r = strata_send(f->from, f->tx + f->tx_off, f->tx_size - f->tx_off,
                        0);
        if (waiting((int)r))
            return moved;
        if (r < 0)
            fail_msg("send of message %u: %s", f->tx_msg,
                     strata_strerror((int)r));
        moved = 1;
        f->tx_off += (size_t)r;
        if (f->tx_off == f->tx_size) {
            f->tx_off = 0;
            if (++f->tx_msg < f->count)
                f->tx_size = make_msg(f, f->tx_msg, f->tx);
        }
    }
    if (f->tx_state == 1) {
        r = strata_shutdown(f->from);
        if (r == 0) {
            f->tx_state = 2;
            return 1;
        }
        if (!waiting((int)r))
            fail_msg("shutdown: %s", strata_strerror((int)r));
    }
    return moved;
}

/* Compare received bytes with the messages expected, across messages. */
static void check_bytes(flow *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take;

        while (f->rx_off == f->rx_size) {
            if (++f->rx_msg >= f->count)
                fail_msg("%zu bytes after the last message", n);
            f->rx_size = make_msg(f, f->rx_msg, f->exp);
            f->rx_off = 0;
        }
        take = f->rx_size - f->rx_off < n ? f->rx_size - f->rx_off : n;
        if (memcmp(p, f->exp + f->rx_off, take) != 0)
            fail_msg("message %u differs near offset %zu", f->rx_msg,
                     f->rx_off);
        f->rx_off += take;
        p += take;
        n -= take;
    }
}

/* Every message arrived: the rest expected is empty messages only. */
static int all_received(flow *f)
{
    while (f->rx_off == f->rx_size && f->rx_msg + 1 < f->count) {
        f->rx_size = make_msg(f, ++f->rx_msg, f->exp);
        f->rx_off = 0;
    }
    return f->rx_off == f->rx_size && f->rx_msg + 1 >= f->count;
}

static int recv_some(flow *f)
{
    int moved = 0;

    while (!f->rx_eof) {
        size_t want = 1 + (size_t)(strata_rand(&f->rng) % MAX_MSG);
        ssize_t r = strata_recv(f->to, f->in, want, NULL);

        if (waiting((int)r))
            return moved;
        moved = 1;
        if (r == STRATA_EOF) {
            if (!all_received(f))
                fail_msg("EOF in message %u of %u", f->rx_msg, f->count);
            f->rx_eof = 1;
        } else if (r <= 0) {
            fail_msg("recv in message %u: %s (%s)", f->rx_msg,
                     strata_strerror((int)r), strata_tls_reason(f->to));
        } else {
            check_bytes(f, f->in, (size_t)r);
        }
    }
    return moved;
}

/* Both flows at once until each sender shut down and each receiver saw
 * EOF; waits only when neither moved. */
static void run_flows(conn *k, flow *cs, flow *sc)
{
    double end = now_s() + DEADLINE_S;
    int idle = 0;

    while (cs->tx_state != 2 || sc->tx_state != 2 || !cs->rx_eof ||
           !sc->rx_eof) {
        int moved = send_some(cs) | send_some(sc);

        moved |= recv_some(cs) | recv_some(sc);
        if (moved) {
            idle = 0;
            continue;
        }
        wait_io(k, 0, 0);
        if (++idle >= IDLE_LIMIT)
            fail_msg("stalled: c->s sent %u received %u, s->c sent %u "
                     "received %u", cs->tx_msg, cs->rx_msg, sc->tx_msg,
                     sc->rx_msg);
        assert_true(now_s() < end);
    }
}

/* Read a stream until a final status, waiting between tries. */
static ssize_t recv_final(conn *k, strata_stream *s)
{
    double end = now_s() + DEADLINE_S;
    char buf[256];
    int idle = 0;

    for (;;) {
        ssize_t r = strata_recv(s, buf, sizeof buf, NULL);

        if (!waiting((int)r))
            return r;
        wait_io(k, 0, 0);
        assert_true(++idle < IDLE_LIMIT && now_s() < end);
    }
}

/* ---- the cases ------------------------------------------------------ */

static void test_messages_and_close_notify(void **state)
{
    uint64_t seed = strata_test_seed();
    unsigned count = scaled(1000);
    double t0 = now_s();
    flow cs, sc;
    conn k;

    (void)state;
    conn_open(&k);
    handshake(&k);
    flow_init(&cs, k.c, k.s, seed * 2 + 1, count);
    flow_init(&sc, k.s, k.c, seed * 2 + 2, count);
    run_flows(&k, &cs, &sc);
    /* TLS ended both ways by close_notify; the WebSocket under each side
     * then sees the other's close frame, code 1000, and ends too */
    assert_int_equal(recv_final(&k, k.ws_c), STRATA_EOF);
    assert_int_equal(recv_final(&k, k.ws_s), STRATA_EOF);
    assert_int_equal(strata_ws_close_code(k.ws_c), STRATA_WS_NORMAL);
    assert_int_equal(strata_ws_close_code(k.ws_s), STRATA_WS_NORMAL);
    assert_false(strata_ws_closing(k.ws_c));
    assert_int_equal(strata_recv(k.c, cs.in, 1, NULL), STRATA_EOF);
    fprintf(stderr, "%u messages each way in %.2f s\n", count,
            now_s() - t0);
    flow_free(&cs);
    flow_free(&sc);
    conn_close(&k);
}

/* Some data, then the client's WebSocket closes under its TLS: the
 * server's TLS has no close_notify, so the end is a cut; the server's
 * WebSocket answers the close, and the client's TLS sees a cut too. */
static void test_ws_close_under_tls_truncates(void **state)
{
    flow cs;
    conn k;
    int r, idle = 0;

    (void)state;
    conn_open(&k);
    handshake(&k);
    flow_init(&cs, k.c, k.s, strata_test_seed(), 3);
    cs.keep_open = 1;
    while (cs.tx_msg < cs.count || !all_received(&cs)) {
        if (!(send_some(&cs) | recv_some(&cs))) {
            wait_io(&k, 0, 0);
            assert_true(++idle < IDLE_LIMIT);
        }
    }
    while ((r = strata_flush(k.c)) != 0) {
        assert_true(waiting(r));
        wait_io(&k, want_of(r), 0);
        assert_true(++idle < IDLE_LIMIT);
    }
    while ((r = strata_shutdown(k.ws_c)) != 0) {  /* below TLS */
        assert_true(waiting(r));
        wait_io(&k, want_of(r), 0);
        assert_true(++idle < IDLE_LIMIT);
    }
    assert_int_equal(recv_final(&k, k.s), STRATA_ERR_TRUNCATED);
    assert_non_null(strstr(strata_tls_reason(k.s), "close_notify"));
    assert_int_equal(strata_ws_close_code(k.ws_s), STRATA_WS_NORMAL);
    assert_int_equal(recv_final(&k, k.c), STRATA_ERR_TRUNCATED);
    assert_int_equal(strata_ws_close_code(k.ws_c), STRATA_WS_NORMAL);
    /* a cut stream stays cut */
    assert_int_equal(strata_recv(k.s, cs.in, 1, NULL), STRATA_ERR_TRUNCATED);
    flow_free(&cs);
    conn_close(&k);
}

/* ---- the same stack over the hostile pipe schedule ----------------- */

typedef struct prop_cfg {
    strata_tls_config *cc, *sc;
} prop_cfg;

static int build(strata_stream *a, strata_stream *b, strata_stream **ta,
                 strata_stream **tb, void *ud)
{
    prop_cfg *p = ud;
    strata_ws_opts o;
    strata_tls_opts to;
    strata_stream *wa, *wb;

    memset(&o, 0, sizeof o);
    o.no_handshake = 1;
    o.role = STRATA_WS_CLIENT;
    wa = strata_ws_new(a, &o, NULL);
    o.role = STRATA_WS_SERVER;
    wb = strata_ws_new(b, &o, NULL);
    memset(&to, 0, sizeof to);
    to.server_name = "localhost";
    *ta = wa ? strata_tls_new(wa, p->cc, &to, NULL) : NULL;
    *tb = wb ? strata_tls_new(wb, p->sc, NULL, NULL) : NULL;
    return *ta && *tb ? 0 : -1;
}

static void test_prop_pipe(void **state)
{
    prop_cfg p;
    strata_prop_opts o;
    char err[256];

    (void)state;
    p.cc = client_cfg();
    p.sc = server_cfg();
    memset(&o, 0, sizeof o);
    o.seed = strata_test_seed();
    o.messages = 1000;
    o.max_size = 20000;
    o.max_fragment = 5000;
    o.max_read = 3000;
    o.byte_stream = 1;
    o.duplex = 1;
    o.pipe.max_chunk = 13;
    o.pipe.need_percent = 20;
    o.pipe.seed = o.seed;
    if (strata_prop_run(&o, build, NULL, &p, err, sizeof err) != 0)
        fail_msg("%s", err);
    strata_tls_config_free(p.cc);
    strata_tls_config_free(p.sc);
}

/* A record half sent into a WebSocket frame, then close_notify: the rest
 * of the record must go down alone (the frame continues only with its own
 * rest), and the close_notify after it. Found by review: shutdown failed
 * with STRATA_ERR_ARG when both went down in one send. */
static void test_shutdown_after_half_sent_record(void **state)
{
    static uint8_t big[70000];
    strata_stream *a, *b, *top_a, *top_b;
    uint8_t buf[4096];
    unsigned fl;
    size_t got = 0;
    ssize_t r;
    int i, eof = 0;
    prop_cfg p;

    (void)state;
    p.cc = client_cfg();
    p.sc = server_cfg();
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(build(a, b, &top_a, &top_b, &p), 0);
    for (i = 0; i < 100; i++) {
        int ra = strata_tls_handshake(top_a);
        int rb = strata_tls_handshake(top_b);

        if (ra == 0 && rb == 0)
            break;
    }
    assert_int_equal(strata_tls_handshake(top_a), 0);
    r = strata_send(top_a, big, sizeof big, 0);
    assert_true(r > 0 && (size_t)r < sizeof big);   /* the pipe is full */
    assert_true(strata_wants(top_a) & STRATA_WANT_WRITE);
    r = strata_shutdown(top_a);
    assert_true(r == STRATA_NEED_WRITE || r == 0);
    for (i = 0; i < 1000 && !eof; i++) {
        if (r != 0)
            r = strata_shutdown(top_a);
        while ((r = strata_recv(top_b, buf, sizeof buf, &fl)) > 0)
            got += (size_t)r;
        eof = r == STRATA_EOF;
        assert_true(eof || r == STRATA_NEED_READ);
        r = strata_shutdown(top_a);
        assert_true(r == 0 || r == STRATA_NEED_WRITE);
    }
    assert_true(eof);
    assert_true(got > 0);
    strata_free(top_a);
    strata_free(top_b);
    strata_tls_config_free(p.cc);
    strata_tls_config_free(p.sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_and_close_notify),
        cmocka_unit_test(test_ws_close_under_tls_truncates),
        cmocka_unit_test(test_prop_pipe),
        cmocka_unit_test(test_shutdown_after_half_sent_record),
    };

    if (!strata_test_certs()) {
        fprintf(stderr, "test certificates could not be made\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
