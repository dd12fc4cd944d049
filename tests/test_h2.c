/* The h2 layer over the pipe pair: requests and responses with bodies and
 * trailers, resets both ways, windows that reopen only as the application
 * reads, extended CONNECT advertised and refused, connection errors. */
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

#include "harness.h"

typedef struct conn {
    strata_h2 *c, *s;
} conn;

static void conn_open(conn *k, const strata_h2_opts *co,
                      const strata_h2_opts *so, const strata_pipe_opts *po)
{
    strata_stream *a, *b;
    strata_h2_opts dc, ds;

    memset(&dc, 0, sizeof dc);
    memset(&ds, 0, sizeof ds);
    dc.role = STRATA_H2_CLIENT;
    ds.role = STRATA_H2_SERVER;
    assert_int_equal(strata_pipe_pair(&a, &b, po, NULL), 0);
    k->c = strata_h2_new(a, co ? co : &dc, NULL);
    k->s = strata_h2_new(b, so ? so : &ds, NULL);
    assert_non_null(k->c);
    assert_non_null(k->s);
}

static void conn_close(conn *k)
{
    strata_h2_free(k->c);
    strata_h2_free(k->s);
}

/* Drive both connections a few rounds. */
static void pump(conn *k, int rounds)
{
    int i;

    for (i = 0; i < rounds; i++) {
        (void)strata_h2_drive(k->c);
        (void)strata_h2_drive(k->s);
    }
}

static const strata_h2_header get_head[] = {
    {":method", "POST"}, {":scheme", "http"}, {":authority", "test"},
    {":path", "/echo"}, {"x-test", "1"},
};

static strata_stream *accept_one(conn *k)
{
    strata_stream *s = NULL;
    int i;

    for (i = 0; i < 100 && !s; i++) {
        pump(k, 1);
        s = strata_h2_accept(k->s);
    }
    assert_non_null(s);
    return s;
}

/* Read a whole body (until EOF), driving the other side meanwhile. */
static size_t read_all(conn *k, strata_stream *s, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    int i;

    for (i = 0; i < 100000; i++) {
        r = strata_read(s, buf + got, cap - got);
        if (r == STRATA_EOF)
            return got;
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        assert_true(r == STRATA_NEED_READ || r == STRATA_NEED_WRITE);
        pump(k, 1);
    }
    fail_msg("no EOF");
    return got;
}

static void test_request_response(void **state)
{
    conn k;
    strata_stream *cs, *ss;
    uint8_t buf[256];
    size_t n;
    const strata_h2_header *h;
    static const strata_h2_header resp[] = {{"content-type", "text/plain"}};
    static const strata_h2_header trail[] = {{"grpc-status", "0"}};

    (void)state;
    conn_open(&k, NULL, NULL, NULL);
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &cs), 0);
    assert_int_equal(strata_write(cs, "hello", 5), 5);
    assert_int_equal(strata_shutdown(cs), 0);
    ss = accept_one(&k);
    assert_string_equal(strata_h2_get(ss, ":path"), "/echo");
    assert_string_equal(strata_h2_get(ss, "x-test"), "1");
    h = strata_h2_head(ss, &n);
    assert_non_null(h);
    assert_int_equal(n, 5);
    assert_int_equal(read_all(&k, ss, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(strata_h2_respond(ss, 200, resp, 1, 0), 0);
    assert_int_equal(strata_write(ss, "world", 5), 5);
    assert_int_equal(strata_h2_send_trailers(ss, trail, 1), 0);
    pump(&k, 3);
    assert_int_equal(strata_h2_response_head(cs), 0);
    assert_int_equal(strata_h2_status(cs), 200);
    assert_string_equal(strata_h2_get(cs, "content-type"), "text/plain");
    assert_int_equal(read_all(&k, cs, buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);
    h = strata_h2_trailers(cs, &n);
    assert_non_null(h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].name, "grpc-status");
    strata_free(cs);
    strata_free(ss);
    conn_close(&k);
}

/* The window reopens only as the reader consumes: a sender to a stream
 * nobody reads stops at the window with NEED_READ, and goes on once the
 * reader takes bytes. */
static void test_window_follows_reader(void **state)
{
    conn k;
    strata_h2_opts so;
    strata_stream *cs, *ss;
    static uint8_t data[100000], got[100000];
    size_t sent = 0, rcvd = 0;
    ssize_t r;
    int i;

    (void)state;
    memset(&so, 0, sizeof so);
    so.role = STRATA_H2_SERVER;
    so.stream_window = 1000;
    conn_open(&k, NULL, &so, NULL);
    for (i = 0; i < (int)sizeof data; i++)
        data[i] = (uint8_t)(i * 31);
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &cs), 0);
    ss = accept_one(&k);
    for (i = 0; i < 200; i++) {   /* settle the settings, then fill */
        r = strata_send(cs, data + sent, sizeof data - sent, 0);
        if (r > 0)
            sent += (size_t)r;
        pump(&k, 1);
    }
    /* 1000 of the stream window (the first 64 KiB before the SETTINGS
     * ack may be more); nobody read: the sender is stopped */
    assert_true(sent < sizeof data);
    r = strata_send(cs, data + sent, sizeof data - sent, 0);
    assert_int_equal(r, STRATA_NEED_READ);
    while (rcvd < sizeof data) {
        r = strata_read(ss, got + rcvd, sizeof got - rcvd);
        if (r > 0)
            rcvd += (size_t)r;
        if (sent < sizeof data) {
            r = strata_send(cs, data + sent, sizeof data - sent, 0);
            if (r > 0)
                sent += (size_t)r;
        }
        pump(&k, 1);
    }
    assert_memory_equal(got, data, sizeof data);
    strata_free(cs);
    strata_free(ss);
    conn_close(&k);
}

static void test_reset_both_ways(void **state)
{
    conn k;
    strata_stream *cs, *ss, *cs2, *ss2;
    uint8_t buf[16];

    (void)state;
    conn_open(&k, NULL, NULL, NULL);
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &cs), 0);
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &cs2), 0);
    ss = accept_one(&k);
    ss2 = accept_one(&k);
    assert_int_equal(strata_h2_reset(cs, STRATA_H2_CANCEL), 0);
    pump(&k, 3);
    assert_int_equal(strata_read(ss, buf, sizeof buf), STRATA_ERR_CLOSED);
    assert_int_equal(strata_h2_reset_code(ss), STRATA_H2_CANCEL);
    assert_int_equal(strata_h2_reset(ss2, STRATA_H2_REFUSED_STREAM), 0);
    pump(&k, 3);
    assert_int_equal(strata_read(cs2, buf, sizeof buf), STRATA_ERR_CLOSED);
    assert_int_equal(strata_h2_reset_code(cs2), STRATA_H2_REFUSED_STREAM);
    strata_free(cs);
    strata_free(ss);
    strata_free(cs2);
    strata_free(ss2);
    conn_close(&k);
}

static void test_extended_connect(void **state)
{
    static const strata_h2_header ws_head[] = {
        {":method", "CONNECT"}, {":protocol", "websocket"},
        {":scheme", "http"}, {":path", "/chat"}, {":authority", "test"},
        {"sec-websocket-version", "13"},
    };
    conn k;
    strata_h2_opts so;
    strata_stream *cs = NULL, *ss;
    int r, i;

    (void)state;
    conn_open(&k, NULL, NULL, NULL);
    for (i = 0; i < 50; i++) {
        r = strata_h2_request(k.c, ws_head, 6, 0, &cs);
        if (r != STRATA_NEED_READ)
            break;
        pump(&k, 1);
    }
    assert_int_equal(r, 0);
    assert_true(strata_h2_connect_protocol(k.c));
    ss = accept_one(&k);
    assert_string_equal(strata_h2_get(ss, ":protocol"), "websocket");
    strata_free(cs);
    strata_free(ss);
    conn_close(&k);
    /* a server that does not offer it: the client says so */
    memset(&so, 0, sizeof so);
    so.role = STRATA_H2_SERVER;
    so.no_connect_protocol = 1;
    conn_open(&k, NULL, &so, NULL);
    for (i = 0; i < 50; i++) {
        r = strata_h2_request(k.c, ws_head, 6, 0, &cs);
        if (r != STRATA_NEED_READ)
            break;
        pump(&k, 1);
    }
    assert_int_equal(r, STRATA_ERR_UNSUPPORTED);
    conn_close(&k);
}

static void test_bad_preface(void **state)
{
    strata_stream *a, *b;
    strata_h2_opts so;
    strata_h2 *s;
    uint8_t buf[256];
    unsigned fl;
    ssize_t n;
    int r, i;

    (void)state;
    memset(&so, 0, sizeof so);
    so.role = STRATA_H2_SERVER;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    s = strata_h2_new(b, &so, NULL);
    assert_int_equal(strata_send(a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27,
                                 0), 27);
    for (i = 0; i < 10; i++)
        if ((r = strata_h2_drive(s)) < STRATA_EOF)
            break;
    assert_int_equal(r, STRATA_ERR_PROTO);
    assert_int_equal(strata_h2_error_code(s), STRATA_H2_PROTOCOL_ERROR);
    /* the server's SETTINGS and a GOAWAY went out */
    n = strata_recv(a, buf, sizeof buf, &fl);
    assert_true(n >= 9 + 17);
    strata_h2_free(s);
    strata_free(a);
}

/* PING is answered; a graceful GOAWAY lets the open stream finish and
 * refuses new ones. */
static void test_ping_and_graceful_goaway(void **state)
{
    conn k;
    strata_stream *cs, *ss, *late = NULL;
    uint8_t buf[64];
    int i;

    (void)state;
    conn_open(&k, NULL, NULL, NULL);
    assert_int_equal(strata_h2_ping(k.c), 0);
    for (i = 0; i < 20 && strata_h2_pings(k.c) == 0; i++)
        pump(&k, 1);
    assert_int_equal(strata_h2_pings(k.c), 1);
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &cs), 0);
    ss = accept_one(&k);
    assert_int_equal(strata_h2_shutdown(k.s), 0);  /* GOAWAY, last id */
    pump(&k, 3);
    /* no new stream after the GOAWAY... */
    assert_int_equal(strata_h2_request(k.c, get_head, 5, 0, &late),
                     STRATA_ERR_STATE);
    assert_null(late);
    /* ...but the open one completes both ways */
    assert_int_equal(strata_write(cs, "done", 4), 4);
    assert_int_equal(strata_shutdown(cs), 0);
    assert_int_equal(read_all(&k, ss, buf, sizeof buf), 4);
    assert_int_equal(strata_h2_respond(ss, 200, NULL, 0, 0), 0);
    assert_int_equal(strata_write(ss, "ok", 2), 2);
    assert_int_equal(strata_shutdown(ss), 0);
    pump(&k, 3);
    assert_int_equal(read_all(&k, cs, buf, sizeof buf), 2);
    assert_int_equal(strata_h2_status(cs), 200);
    assert_int_equal(strata_h2_error_code(k.c), STRATA_H2_NO_ERROR);
    strata_free(cs);
    strata_free(ss);
    conn_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_response),
        cmocka_unit_test(test_window_follows_reader),
        cmocka_unit_test(test_reset_both_ways),
        cmocka_unit_test(test_extended_connect),
        cmocka_unit_test(test_bad_preface),
        cmocka_unit_test(test_ping_and_graceful_goaway),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
