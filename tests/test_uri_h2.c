/* URI stacks above HTTP/2: what strata_uri_h2_open builds on a client
 * connection and strata_uri_h2_serve on a server's, end to end over a
 * pipe pair: byte layers through CONNECT tunnels (TLS inside one too, and
 * TLS on both sides of h2), TLS inside a WebSocket over h2, a gRPC call;
 * and the refusals with their reasons and HTTP statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <strata/blocking.h>
#include <strata/h2.h>
#include <strata/pipe.h>
#include <strata/stream.h>
#include <strata/uri.h>
#ifdef STRATA_WITH_TLS
#include <strata/tls.h>
#endif
#ifdef STRATA_WITH_GRPC
#include <strata/grpc.h>
#endif
#ifdef STRATA_WITH_WS
#include <strata/ws.h>
#endif

#include "harness.h"

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static void step(strata_h2 *a, strata_h2 *b)
{
    int ra = strata_h2_drive(a), rb = strata_h2_drive(b);

    if (ra != 0 && rb != 0)
        poll(NULL, 0, 1);
}

/* The client's and the server's TLS settings for the layers of u. */
typedef struct sides {
    strata_uri_tls client, server;
} sides;

static char paths[3][512];

static int certs(sides *t)
{
    memset(t, 0, sizeof *t);
    if (strata_test_certs() == NULL)
        return -1;
    t->client.ca = strata_test_cert(paths[0], sizeof paths[0], "ca.pem");
    t->server.cert = strata_test_cert(paths[1], sizeof paths[1],
                                      "server.pem");
    t->server.key = strata_test_cert(paths[2], sizeof paths[2],
                                     "server.key");
    return 0;
}

/* Both connections of u over a pipe pair. */
static void connections(strata_uri *u, const sides *t, strata_h2 **hc,
                        strata_h2 **hs)
{
    strata_stream *a, *b;
    char err[512];

    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    u->server = 0;
    u->tls = t->client;
    if (strata_uri_h2_stack(u, a, NULL, hc, NULL, err, sizeof err) != 0)
        fail_msg("client: %s", err);
    u->server = 1;
    u->tls = t->server;
    if (strata_uri_h2_stack(u, b, NULL, hs, NULL, err, sizeof err) != 0)
        fail_msg("server: %s", err);
}

/* The client opens uc's stack above h2 while the server serves the
 * stream it accepts with us: both tops, or the two results and reasons. */
static void open_both(strata_uri *uc, strata_uri *us, const sides *t,
                      strata_h2 *hc, strata_h2 *hs, strata_stream **ct,
                      strata_stream **st, int *rc, int *rs, char *cerr,
                      char *serr)
{
    strata_stream *srv = NULL;
    int i;

    *ct = *st = NULL;
    *rc = *rs = STRATA_NEED_READ;
    for (i = 0; i < 5000 && (is_need(*rc) || is_need(*rs)); i++) {
        if (is_need(*rc)) {
            uc->tls = t->client;
            *rc = strata_uri_h2_open(uc, hc, NULL, ct, cerr, 256);
        }
        step(hc, hs);
        if (srv == NULL)
            srv = strata_h2_accept(hs);
        if (srv != NULL && is_need(*rs)) {
            us->tls = t->server;
            *rs = strata_uri_h2_serve(us, srv, NULL, st, serr, 256);
        }
    }
}

static void open_ok(strata_uri *u, const sides *t, strata_h2 *hc,
                    strata_h2 *hs, strata_stream **ct, strata_stream **st)
{
    char cerr[256] = "", serr[256] = "";
    int rc, rs;

    open_both(u, u, t, hc, hs, ct, st, &rc, &rs, cerr, serr);
    if (rc != 0 || rs != 0)
        fail_msg("client %s (%s), server %s (%s)", strata_strerror(rc),
                 cerr, strata_strerror(rs), serr);
}

/* One step of every handshake of a stack (tls, and ws over HTTP/1.1
 * inside a tunnel), the lowest first: 0 once all are done. */
static int handshake_step(strata_stream *top)
{
    strata_stream *chain[STRATA_URI_MAX_LAYERS + 2];
    int n = 0, r = 0;

    for (; top != NULL && n < STRATA_URI_MAX_LAYERS + 2; top = top->lower)
        chain[n++] = top;
    while (n-- > 0 && r == 0) {
#ifdef STRATA_WITH_TLS
        if (strcmp(strata_name(chain[n]), "tls") == 0)
            r = strata_tls_handshake(chain[n]);
#endif
#ifdef STRATA_WITH_WS
        if (strcmp(strata_name(chain[n]), "ws") == 0)
            r = strata_ws_handshake(chain[n]);
#endif
    }
    return r;
}

/* Both stacks' handshakes, a step each in turn: one thread drives both
 * ends, so neither may wait for the other. */
static void handshakes(strata_stream *c, strata_stream *s)
{
    int rc = STRATA_NEED_WRITE, rs = STRATA_NEED_READ;
    uint64_t until = strata_now_ms() + 5000;

    while ((is_need(rc) || is_need(rs)) && strata_now_ms() < until) {
        if (is_need(rc))
            rc = handshake_step(c);
        if (is_need(rs))
            rs = handshake_step(s);
    }
    if (rc != 0 || rs != 0)
        fail_msg("handshakes: client %s, server %s", strata_strerror(rc),
                 strata_strerror(rs));
#ifdef STRATA_WITH_TLS
    /* the tunnel's TLS names no protocol, even when the connection's
     * does: its ALPN list speaks of the connection */
    for (; c != NULL; c = c->lower)
        if (strcmp(strata_name(c), "tls") == 0)
            assert_null(strata_tls_alpn(c));
#endif
}

/* Messages (or bytes) both ways, an empty message too, then the
 * client's end reaches the server. */
static void exchange(strata_stream *c, strata_stream *s, int messages)
{
    char buf[64];
    unsigned flags = 0;

    assert_int_equal(strata_write_all(c, "hello", 5, STRATA_MSG_END, 1000),
                     5);
    if (messages) {
        assert_int_equal(strata_recv_msg(s, buf, sizeof buf, &flags, 1000),
                         5);
        assert_true(flags & STRATA_MSG_END);
        assert_int_equal(strata_write_all(c, "", 0, STRATA_MSG_END, 1000),
                         0);
        assert_int_equal(strata_recv_msg(s, buf + 5, sizeof buf - 5, &flags,
                                         1000), 0);
        assert_true(flags & STRATA_MSG_END);
    } else {
        assert_int_equal(strata_read_full(s, buf, 5, 1000, NULL), 5);
    }
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(strata_write_all(s, "back", 4, STRATA_MSG_END, 1000), 4);
    if (messages)
        assert_int_equal(strata_recv_msg(c, buf, sizeof buf, &flags, 1000),
                         4);
    else
        assert_int_equal(strata_read_full(c, buf, 4, 1000, NULL), 4);
    assert_memory_equal(buf, "back", 4);
}

/* One URI end to end: parse, connect both sides, open, exchange. */
static void through(const char *text, const sides *t, int messages,
                    const char *top_name)
{
    strata_stream *ct, *st;
    strata_h2 *hc, *hs;
    strata_uri u;

    if (strata_uri_parse(text, &u, NULL, 0) != 0)
        fail_msg("'%s' refused", text);
    connections(&u, t, &hc, &hs);
    open_ok(&u, t, hc, hs, &ct, &st);
    assert_string_equal(strata_name(ct), top_name);
    assert_string_equal(strata_name(st), top_name);
    handshakes(ct, st);
    exchange(ct, st, messages);
    strata_free(ct);
    strata_free(st);
    strata_h2_free(hc);
    strata_h2_free(hs);
}

static void test_tunnels(void **state)
{
    sides none, t;

    (void)state;
    memset(&none, 0, sizeof none);
    through("lines+h2://h:1", &none, 1, "line");
    through("len+h2://h:1", &none, 1, "lenprefix");
    if (certs(&t) != 0)
        skip();
#ifdef STRATA_WITH_TLS
    through("lines+tls+h2://localhost:1", &t, 1, "line");
    through("tls+h2://localhost:1", &t, 0, "tls");
    through("len+tls+h2+tls://localhost:1", &t, 1, "lenprefix");
#ifdef STRATA_WITH_WS
    through("tls+ws+h2://localhost:1/t", &t, 0, "tls");
    through("ws+tls+h2://localhost:1/w", &t, 1, "ws");
#endif
#endif
}

/* The server serves another kind of stream than the client opens: the
 * server says why and which status it answered; the client learns the
 * status. Returns the client's result; *ct is its top if it has one. */
static int mismatch(const char *client, const char *server, int want_rs,
                    const char *want_serr, char *cerr, strata_stream **ct,
                    strata_h2 **hc, strata_h2 **hs)
{
    char serr[256] = "";
    strata_stream *st;
    strata_uri uc, us;
    sides none;
    int rc, rs;

    memset(&none, 0, sizeof none);
    cerr[0] = '\0';
    assert_int_equal(strata_uri_parse(client, &uc, NULL, 0), 0);
    assert_int_equal(strata_uri_parse(server, &us, NULL, 0), 0);
    connections(&uc, &none, hc, hs);
    open_both(&uc, &us, &none, *hc, *hs, ct, &st, &rc, &rs, cerr, serr);
    assert_int_equal(rs, want_rs);
    assert_string_equal(serr, want_serr);
    assert_null(st);
    return rc;
}

/* A plain request stream's answer: its status once the head came. */
static int answered(strata_stream *s, strata_h2 *hc, strata_h2 *hs)
{
    int r, i;

    for (i = 0; i < 5000 && is_need(r = strata_h2_response_head(s)); i++)
        step(hc, hs);
    assert_int_equal(r, 0);
    return strata_h2_status(s);
}

static void test_refusals(void **state)
{
    char cerr[256];
    strata_stream *ct;
    strata_h2 *hc, *hs;
    strata_uri u;
    int rc;

    (void)state;
    /* a plain request where tunnels are served: 405 */
    rc = mismatch("h2://h:1/x", "lines+h2://h:1", STRATA_ERR_PROTO,
                  "this server takes CONNECT tunnels only (answered 405)",
                  cerr, &ct, &hc, &hs);
    assert_int_equal(rc, 0);
    assert_int_equal(answered(ct, hc, hs), 405);
    strata_free(ct);
    strata_h2_free(hc);
    strata_h2_free(hs);
#ifdef STRATA_WITH_WS
    /* a WebSocket where tunnels are served: 501 */
    rc = mismatch("ws+h2://h:1/", "lines+h2://h:1", STRATA_ERR_PROTO,
                  "this server takes plain CONNECT tunnels, not an extended "
                  "CONNECT (answered 501)", cerr, &ct, &hc, &hs);
    assert_int_equal(rc, STRATA_ERR_PROTO);
    assert_string_equal(cerr, "the server refused the WebSocket over "
                        "HTTP/2: HTTP status 501");
    assert_null(ct);
    strata_h2_free(hc);
    strata_h2_free(hs);
    /* a tunnel where WebSockets are served: the ws layer's refusal */
    rc = mismatch("lines+h2://h:1", "ws+h2://h:1/", STRATA_ERR_PROTO,
                  "the WebSocket request was refused (:status 400 or 501 "
                  "answered) or its connection failed", cerr, &ct, &hc,
                  &hs);
    assert_int_equal(rc, STRATA_ERR_PROTO);
    assert_true(strcmp(cerr, "the server refused the CONNECT tunnel: HTTP "
                       "status 400") == 0 ||
                strcmp(cerr, "the server refused the CONNECT tunnel: HTTP "
                       "status 501") == 0);
    strata_h2_free(hc);
    strata_h2_free(hs);
#endif
    /* nothing above h2 is the application's to serve */
    assert_int_equal(strata_uri_parse("h2://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_h2_serve(&u, NULL, NULL, &ct, cerr,
                                         sizeof cerr), STRATA_ERR_ARG);
}

#ifdef STRATA_WITH_GRPC
/* grpc+h2: one call, its messages both ways, the client's end of the
 * requests, the server's OK; a call to another method is answered
 * UNIMPLEMENTED; a URI without a method is refused. */
static void test_grpc(void **state)
{
    char cerr[256], buf[16];
    strata_stream *ct, *st;
    strata_h2 *hc, *hs;
    sides none;
    strata_uri u;
    int r, i;

    (void)state;
    memset(&none, 0, sizeof none);
    assert_int_equal(strata_uri_parse("grpc+h2://h:1/p.S/M", &u, NULL, 0),
                     0);
    u.grpc.timeout_ms = 60000;
    connections(&u, &none, &hc, &hs);
    open_ok(&u, &none, hc, hs, &ct, &st);
    assert_string_equal(strata_name(ct), "grpc");
    assert_string_equal(strata_name(st), "grpc");
    assert_true(strata_grpc_timeout_ms(st) > 0);
    exchange(ct, st, 1);
    assert_int_equal(strata_shutdown(ct), 0);
    assert_int_equal(strata_recv_msg(st, buf, sizeof buf, NULL, 1000),
                     STRATA_EOF);
    for (i = 0; i < 5000 && is_need(r = strata_grpc_finish(
                                       st, STRATA_GRPC_OK, NULL, NULL, 0));
         i++)
        step(hc, hs);
    assert_int_equal(r, 0);
    assert_int_equal(strata_recv_msg(ct, buf, sizeof buf, NULL, 1000),
                     STRATA_EOF);
    assert_int_equal(strata_grpc_status(ct), STRATA_GRPC_OK);
    strata_free(ct);
    strata_free(st);
    strata_h2_free(hc);
    strata_h2_free(hs);

    r = mismatch("grpc+h2://h:1/p.S/Other", "grpc+h2://h:1/p.S/M",
                 STRATA_ERR_UNSUPPORTED, "a gRPC call to another method or "
                 "in an unknown encoding (answered UNIMPLEMENTED)", cerr,
                 &ct, &hc, &hs);
    assert_int_equal(r, 0);
    assert_int_equal(strata_recv_msg(ct, buf, sizeof buf, NULL, 1000),
                     STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(ct), STRATA_GRPC_UNIMPLEMENTED);
    strata_free(ct);
    strata_h2_free(hc);
    strata_h2_free(hs);

    assert_int_equal(strata_uri_parse("grpc+h2://h:1", &u, NULL, 0), 0);
    connections(&u, &none, &hc, &hs);
    ct = NULL;
    u.server = 0;
    assert_int_equal(strata_uri_h2_open(&u, hc, NULL, &ct, cerr,
                                        sizeof cerr), STRATA_ERR_ARG);
    assert_string_equal(cerr, "a grpc URI names its method: "
                        "grpc+h2://HOST:PORT/package.Service/Method");
    assert_null(ct);
    strata_h2_free(hc);
    strata_h2_free(hs);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnels),
        cmocka_unit_test(test_refusals),
#ifdef STRATA_WITH_GRPC
        cmocka_unit_test(test_grpc),
#endif
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
