/* WebSocket over HTTP/2 (RFC 8441) over the pipe pair: many WebSockets on
 * one connection, subprotocol and permessage-deflate negotiated in the
 * headers, messages both ways with identity checked, close handshakes;
 * refusals (wrong :protocol, the accept callback, a server that does not
 * offer extended CONNECT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>
#include <strata/ws.h>
#include <strata/ws_h2.h>

#include "harness.h"

#define SOCKETS 20

static const char *const protos[] = {"chat.v2", "chat", NULL};

typedef struct rig {
    strata_h2 *c, *s;
    strata_ws_opts co, so;
} rig;

static void rig_open(rig *r, int deflate, const strata_pipe_opts *po)
{
    strata_stream *a, *b;
    strata_h2_opts ho;

    assert_int_equal(strata_pipe_pair(&a, &b, po, NULL), 0);
    memset(&ho, 0, sizeof ho);
    ho.role = STRATA_H2_CLIENT;
    r->c = strata_h2_new(a, &ho, NULL);
    ho.role = STRATA_H2_SERVER;
    r->s = strata_h2_new(b, &ho, NULL);
    assert_non_null(r->c);
    assert_non_null(r->s);
    memset(&r->co, 0, sizeof r->co);
    r->co.host = "test";
    r->co.path = "/chat";
    r->co.protocols = protos;
    r->co.deflate.enable = deflate;
    r->so = r->co;
    r->so.protocols = protos + 1;       /* the server has only "chat" */
}

static void pump(rig *r)
{
    (void)strata_h2_drive(r->c);
    (void)strata_h2_drive(r->s);
}

/* Open n WebSockets: clients in cw, servers in sw. */
static void open_all(rig *r, strata_stream **cw, strata_stream **sw, int n)
{
    strata_stream *cs[SOCKETS] = {0}, *ss;
    int i, done = 0, acc = 0, spins, rc;

    for (i = 0; i < n; i++) {
        for (spins = 0; spins < 100; spins++) {
            rc = strata_ws_h2_open(r->c, &r->co, "http", &cs[i]);
            if (rc != STRATA_NEED_READ)
                break;
            pump(r);
        }
        assert_int_equal(rc, 0);
        cw[i] = sw[i] = NULL;
    }
    for (spins = 0; spins < 1000 && (done < n || acc < n); spins++) {
        pump(r);
        while ((ss = strata_h2_accept(r->s)) != NULL) {
            rc = strata_ws_h2_accept(ss, &r->so, NULL, &sw[acc]);
            assert_int_equal(rc, 0);
            acc++;
        }
        for (i = 0; i < n; i++) {
            if (cw[i])
                continue;
            rc = strata_ws_h2_client(cs[i], &r->co, NULL, &cw[i]);
            if (rc == 0)
                done++;
            else
                assert_true(rc == STRATA_NEED_READ || rc == STRATA_NEED_WRITE);
        }
    }
    assert_int_equal(done, n);
    assert_int_equal(acc, n);
}

/* Send a message on one side and read it whole on the other. */
static void echo_one(rig *r, strata_stream *from, strata_stream *to,
                     const uint8_t *msg, size_t len, unsigned flags)
{
    static uint8_t got[70000];
    size_t sent = 0, rcvd = 0;
    unsigned fl = 0;
    ssize_t k;
    int spins, end = 0;

    for (spins = 0; spins < 100000 && !end; spins++) {
        if (sent < len || (len == 0 && spins == 0)) {
            k = strata_send(from, msg + sent, len - sent,
                            flags | STRATA_MSG_END);
            if (k > 0)
                sent += (size_t)k;
            else if (k == 0 && len == 0)
                sent = 0;
            else
                assert_true(k == STRATA_NEED_READ || k == STRATA_NEED_WRITE);
        }
        k = strata_recv(to, got + rcvd, sizeof got - rcvd, &fl);
        if (k >= 0) {
            rcvd += (size_t)k;
            end = (fl & STRATA_MSG_END) != 0;
        } else {
            assert_true(k == STRATA_NEED_READ || k == STRATA_NEED_WRITE);
            (void)strata_flush(from);
            pump(r);
        }
    }
    assert_true(end);
    assert_int_equal(rcvd, len);
    assert_memory_equal(got, msg, len);
    assert_int_equal(fl & STRATA_MSG_TEXT, flags & STRATA_MSG_TEXT);
}

static void run_many(int deflate)
{
    static uint8_t msg[60000];
    strata_stream *cw[SOCKETS], *sw[SOCKETS];
    uint64_t rng = strata_test_seed();
    rig r;
    int i, j;

    rig_open(&r, deflate, NULL);
    open_all(&r, cw, sw, SOCKETS);
    for (i = 0; i < SOCKETS; i++) {
        assert_string_equal(strata_ws_protocol(cw[i]), "chat");
        assert_string_equal(strata_ws_protocol(sw[i]), "chat");
        assert_int_equal(strata_ws_deflate(cw[i]), deflate);
        assert_int_equal(strata_ws_deflate(sw[i]), deflate);
    }
    for (j = 0; j < 5; j++) {
        for (i = 0; i < SOCKETS; i++) {
            size_t len = (size_t)(strata_rand(&rng) % sizeof msg), k;

            for (k = 0; k < len; k++)
                msg[k] = (uint8_t)(k % 7 == 0 ? strata_rand(&rng) : 'a' + k % 26);
            echo_one(&r, cw[i], sw[i], msg, len, 0);
            echo_one(&r, sw[i], cw[i], msg, len / 3, 0);
            echo_one(&r, cw[i], sw[i], (const uint8_t *)"text", 4,
                     STRATA_MSG_TEXT);
        }
    }
    /* close every WebSocket from the client: the server sees EOF, 1000 */
    for (i = 0; i < SOCKETS; i++) {
        uint8_t b[16];
        ssize_t k = 0;
        int spins;

        for (spins = 0; spins < 1000; spins++) {
            int rc = strata_shutdown(cw[i]);

            k = strata_read(sw[i], b, sizeof b);
            if (k == STRATA_EOF && rc == 0)
                break;
            pump(&r);
        }
        assert_int_equal(k, STRATA_EOF);
        assert_int_equal(strata_ws_close_code(sw[i]), 1000);
        strata_free(cw[i]);
        strata_free(sw[i]);
    }
    strata_h2_free(r.c);
    strata_h2_free(r.s);
}

static void test_many_plain(void **state)
{
    (void)state;
    run_many(0);
}

static void test_many_deflate(void **state)
{
    (void)state;
    run_many(1);
}

static int refuse_all(void *ud, const strata_ws_request *req,
                      strata_ws_response *resp)
{
    (void)ud;
    assert_string_equal(req->path, "/chat");
    resp->status = 403;
    return 0;
}

static void test_refusals(void **state)
{
    static const strata_h2_header bad[] = {
        {":method", "CONNECT"}, {":protocol", "not-websocket"},
        {":scheme", "http"}, {":path", "/"}, {":authority", "test"},
    };
    strata_stream *cs, *ss, *ws;
    rig r;
    int rc = 0, spins;

    (void)state;
    rig_open(&r, 0, NULL);
    /* the accept callback says 403 */
    r.so.accept = refuse_all;
    for (spins = 0; spins < 100; spins++) {
        if ((rc = strata_ws_h2_open(r.c, &r.co, "http", &cs)) == 0)
            break;
        pump(&r);
    }
    assert_int_equal(rc, 0);
    for (ss = NULL, spins = 0; !ss && spins < 100; spins++) {
        pump(&r);
        ss = strata_h2_accept(r.s);
    }
    assert_non_null(ss);
    assert_int_equal(strata_ws_h2_accept(ss, &r.so, NULL, &ws),
                     STRATA_ERR_PROTO);
    for (spins = 0; spins < 100; spins++) {
        rc = strata_ws_h2_client(cs, &r.co, NULL, &ws);
        if (rc != STRATA_NEED_READ)
            break;
        pump(&r);
    }
    assert_int_equal(rc, STRATA_ERR_PROTO);
    assert_int_equal(strata_h2_status(cs), 403);
    strata_free(cs);
    strata_free(ss);
    /* another :protocol: 501 */
    assert_int_equal(strata_h2_request(r.c, bad, 5, 0, &cs), 0);
    for (ss = NULL, spins = 0; !ss && spins < 100; spins++) {
        pump(&r);
        ss = strata_h2_accept(r.s);
    }
    assert_int_equal(strata_ws_h2_accept(ss, &r.so, NULL, &ws),
                     STRATA_ERR_PROTO);
    for (spins = 0; spins < 100 && strata_h2_response_head(cs) != 0; spins++)
        pump(&r);
    assert_int_equal(strata_h2_status(cs), 501);
    strata_free(cs);
    strata_free(ss);
    strata_h2_free(r.c);
    strata_h2_free(r.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_plain),
        cmocka_unit_test(test_many_deflate),
        cmocka_unit_test(test_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
