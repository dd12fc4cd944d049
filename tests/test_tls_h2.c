/* TLS inside an HTTP/2 CONNECT tunnel, as HBONE does:
 *   tls -> h2 CONNECT stream -> h2 -> tls (ALPN h2) -> tcp
 * both ends in this thread over real loopback TCP, driven by poll(2) on
 * the two connections' descriptors. Checked: ALPN picked h2, the CONNECT
 * answered 200, random messages both ways at once arrive byte for byte
 * through the inner TLS, close_notify both ways is EOF and the stream
 * then ends; a second tunnel on the same connection works meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/socket.h>
#include <strata/tls.h>
#include <strata/h2.h>

#include "harness.h"

#define MAX_MSG 20000
#define STEP_LIMIT 200000

static char paths[3][512];

typedef struct side {
    strata_tls_config *cfg;
    strata_h2 *h;
    strata_stream *tunnel[2];   /* inner TLS over a CONNECT stream */
} side;

static strata_tls_config *cfg_of(int role, const char *alpn)
{
    strata_tls_config *c = strata_tls_config_new(role, NULL);

    assert_non_null(c);
    if (role == STRATA_TLS_SERVER)
        assert_int_equal(strata_tls_config_cert_file(c,
            strata_test_cert(paths[0], sizeof paths[0], "server.pem"),
            strata_test_cert(paths[1], sizeof paths[1], "server.key")), 0);
    else
        assert_int_equal(strata_tls_config_ca_file(c,
            strata_test_cert(paths[2], sizeof paths[2], "ca.pem"), NULL), 0);
    if (alpn)
        assert_int_equal(strata_tls_config_alpn(c, alpn), 0);
    return c;
}

static void tcp_pair(strata_stream **client, strata_stream **server)
{
    int lfd = strata_tcp_listen("127.0.0.1", "0", 4), i, r = -1;
    char port[16];

    assert_true(lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    assert_int_equal(strata_tcp_connect("127.0.0.1", port, NULL, client), 0);
    for (i = 0; i < 100 && r != 0; i++) {
        struct pollfd p = {lfd, POLLIN, 0};

        (void)poll(&p, 1, 50);
        r = strata_accept(lfd, NULL, server);
    }
    assert_int_equal(r, 0);
    close(lfd);
}

/* Wait a little on both connections for what each asks. */
static void wait_both(side *c, side *s)
{
    struct pollfd p[2];
    unsigned w;
    int i;
    side *sd[2] = {c, s};

    for (i = 0; i < 2; i++) {
        w = strata_h2_wants(sd[i]->h);
        p[i].fd = strata_h2_fd(sd[i]->h);
        p[i].events = (short)((w & STRATA_WANT_READ ? POLLIN : 0)
                              | (w & STRATA_WANT_WRITE ? POLLOUT : 0));
        p[i].revents = 0;
    }
    (void)poll(p, 2, 5);
}

static int waiting(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* The outer TLS handshakes run inside the first h2 drives. */
static void open_conns(side *c, side *s)
{
    strata_stream *tc, *ts, *tls_c, *tls_s;
    strata_tls_opts o;
    strata_h2_opts ho;
    int rc = 1, rs = 1, i;

    c->cfg = cfg_of(STRATA_TLS_CLIENT, "h2");
    s->cfg = cfg_of(STRATA_TLS_SERVER, "h2,http/1.1");
    tcp_pair(&tc, &ts);
    memset(&o, 0, sizeof o);
    o.server_name = "localhost";
    tls_c = strata_tls_new(tc, c->cfg, &o, NULL);
    tls_s = strata_tls_new(ts, s->cfg, NULL, NULL);
    assert_non_null(tls_c);
    assert_non_null(tls_s);
    for (i = 0; i < 2000 && (rc != 0 || rs != 0); i++) {
        if (rc != 0)
            rc = strata_tls_handshake(tls_c);
        if (rs != 0)
            rs = strata_tls_handshake(tls_s);
        assert_true(rc == 0 || waiting(rc));
        assert_true(rs == 0 || waiting(rs));
        (void)strata_flush(tls_c);
        (void)strata_flush(tls_s);
        usleep(200);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
    assert_string_equal(strata_tls_alpn(tls_c), "h2");
    assert_string_equal(strata_tls_alpn(tls_s), "h2");
    memset(&ho, 0, sizeof ho);
    ho.role = STRATA_H2_CLIENT;
    c->h = strata_h2_new(tls_c, &ho, NULL);
    ho.role = STRATA_H2_SERVER;
    s->h = strata_h2_new(tls_s, &ho, NULL);
    assert_non_null(c->h);
    assert_non_null(s->h);
}

/* A CONNECT tunnel with TLS inside, client and server ends. */
static void open_tunnel(side *c, side *s, int k, strata_tls_config *ic,
                        strata_tls_config *is)
{
    static const strata_h2_header head[] = {
        {":method", "CONNECT"}, {":authority", "inner.test:443"},
    };
    strata_stream *cs, *ss = NULL;
    strata_tls_opts o;
    int i, r;

    assert_int_equal(strata_h2_request(c->h, head, 2, 0, &cs), 0);
    for (i = 0; i < STEP_LIMIT && !ss; i++) {
        (void)strata_h2_drive(c->h);
        (void)strata_h2_drive(s->h);
        ss = strata_h2_accept(s->h);
        if (!ss)
            wait_both(c, s);
    }
    assert_non_null(ss);
    assert_string_equal(strata_h2_get(ss, ":method"), "CONNECT");
    assert_string_equal(strata_h2_get(ss, ":authority"), "inner.test:443");
    assert_int_equal(strata_h2_respond(ss, 200, NULL, 0, 0), 0);
    for (i = 0; i < STEP_LIMIT; i++) {
        r = strata_h2_response_head(cs);
        if (r == 0)
            break;
        assert_true(waiting(r));
        (void)strata_h2_drive(s->h);
        wait_both(c, s);
    }
    assert_int_equal(strata_h2_status(cs), 200);
    memset(&o, 0, sizeof o);
    o.server_name = "localhost";
    c->tunnel[k] = strata_tls_new(cs, ic, &o, NULL);
    s->tunnel[k] = strata_tls_new(ss, is, NULL, NULL);
    assert_non_null(c->tunnel[k]);
    assert_non_null(s->tunnel[k]);
}

typedef struct flow {
    strata_stream *from, *to;
    uint64_t seed;
    unsigned sent_msgs, rcvd_msgs, total;
    size_t sent, rcvd;          /* of the current message */
    uint8_t out[MAX_MSG], exp[MAX_MSG], in[4096];
} flow;

static size_t msg_of(uint64_t seed, unsigned i, uint8_t *buf)
{
    uint64_t x = seed * 1000003u + i;
    size_t n = (size_t)(strata_rand(&x) % MAX_MSG), k;

    for (k = 0; k < n; k++)
        buf[k] = (uint8_t)strata_rand(&x);
    return n;
}

/* Move a flow on; returns whether anything moved. Messages are a byte
 * stream here: the receiver regenerates and checks the bytes in order. */
static int flow_step(flow *f)
{
    int moved = 0;
    ssize_t r;
    unsigned fl;

    if (f->sent_msgs < f->total) {
        size_t n = msg_of(f->seed, f->sent_msgs, f->out);

        r = n ? strata_send(f->from, f->out + f->sent, n - f->sent, 0) : 0;
        if (r >= 0) {
            f->sent += (size_t)r;
            moved = r > 0 || n == 0;
            if (f->sent == n) {
                f->sent_msgs++;
                f->sent = 0;
            }
        } else {
            assert_true(waiting(r));
        }
    }
    (void)strata_flush(f->from);
    for (;;) {
        size_t n = 0;

        while (f->rcvd_msgs < f->total
               && (n = msg_of(f->seed, f->rcvd_msgs, f->exp)) == 0)
            f->rcvd_msgs++;
        if (f->rcvd_msgs == f->total)
            break;
        r = strata_recv(f->to, f->in, n - f->rcvd < sizeof f->in
                                          ? n - f->rcvd : sizeof f->in, &fl);
        if (r <= 0) {
            assert_true(waiting(r));
            break;
        }
        assert_memory_equal(f->in, f->exp + f->rcvd, (size_t)r);
        f->rcvd += (size_t)r;
        moved = 1;
        if (f->rcvd == n) {
            f->rcvd_msgs++;
            f->rcvd = 0;
        }
    }
    return moved;
}

static void run_flows(side *c, side *s, flow **fl, int n)
{
    int i, steps, done;

    for (steps = 0; steps < STEP_LIMIT; steps++) {
        int moved = 0;

        for (done = 1, i = 0; i < n; i++) {
            moved |= flow_step(fl[i]);
            done &= fl[i]->rcvd_msgs == fl[i]->total;
        }
        if (done)
            return;
        (void)strata_h2_drive(c->h);
        (void)strata_h2_drive(s->h);
        if (!moved)
            wait_both(c, s);
    }
    fail_msg("flows stalled");
}

static void close_tunnel(side *c, side *s, int k)
{
    uint8_t b[16];
    int i, rc = 1, rs = 1;
    ssize_t ec = 0, es = 0;

    for (i = 0; i < STEP_LIMIT && (ec != STRATA_EOF || es != STRATA_EOF);
         i++) {
        if (rc != 0)
            rc = strata_shutdown(c->tunnel[k]);
        if (rs != 0)
            rs = strata_shutdown(s->tunnel[k]);
        if (es != STRATA_EOF)
            es = strata_recv(s->tunnel[k], b, sizeof b, NULL);
        if (ec != STRATA_EOF)
            ec = strata_recv(c->tunnel[k], b, sizeof b, NULL);
        (void)strata_h2_drive(c->h);
        (void)strata_h2_drive(s->h);
        wait_both(c, s);
    }
    assert_int_equal(es, STRATA_EOF);
    assert_int_equal(ec, STRATA_EOF);
    strata_free(c->tunnel[k]);  /* the inner TLS owns its h2 stream */
    strata_free(s->tunnel[k]);
}

static void test_tls_in_connect_tunnel(void **state)
{
    static flow f[4];
    flow *fl[4] = {&f[0], &f[1], &f[2], &f[3]};
    strata_tls_config *ic = cfg_of(STRATA_TLS_CLIENT, NULL);
    strata_tls_config *is = cfg_of(STRATA_TLS_SERVER, NULL);
    uint64_t seed = strata_test_seed();
    side c, s;
    int i;

    (void)state;
    memset(&c, 0, sizeof c);
    memset(&s, 0, sizeof s);
    open_conns(&c, &s);
    open_tunnel(&c, &s, 0, ic, is);
    open_tunnel(&c, &s, 1, ic, is);
    for (i = 0; i < 4; i++) {
        memset(&f[i], 0, sizeof f[i]);
        f[i].seed = seed + (uint64_t)i;
        f[i].total = getenv("STRATA_VALGRIND") ? 20 : 200;
        f[i].from = i % 2 ? s.tunnel[i / 2] : c.tunnel[i / 2];
        f[i].to = i % 2 ? c.tunnel[i / 2] : s.tunnel[i / 2];
    }
    run_flows(&c, &s, fl, 4);
    assert_string_equal(strata_tls_version(c.tunnel[0]), "TLSv1.3");
    close_tunnel(&c, &s, 0);
    close_tunnel(&c, &s, 1);
    strata_h2_free(c.h);
    strata_h2_free(s.h);
    strata_tls_config_free(c.cfg);
    strata_tls_config_free(s.cfg);
    strata_tls_config_free(ic);
    strata_tls_config_free(is);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_in_connect_tunnel),
    };

    if (!strata_test_certs()) {
        fprintf(stderr, "test certificates could not be made\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
