/* The HTTP/1.1 head reader and writer: every path of protos/http1.h, the
 * limits at their exact boundaries, resumption at every byte and under a
 * hostile pipe schedule, and the hand-off of the bytes behind a head. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/http1.h>

#include "harness.h"

#define STEP_LIMIT 1000000L
#define STORE 8192

enum { RESPONSE = 0, REQUEST = 1 };

static const char upgrade_req[] =
    "GET /chat?x=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static const char upgrade_resp[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

/* ---- helpers -------------------------------------------------------- */

/* A buffered stream over one pipe end, the peer's raw end, and a head. */
typedef struct rig {
    strata_stream *raw;  /* write the peer's wire bytes here */
    strata_stream *top;  /* buffered stream over the other end */
    strata_buffered *in;
    strata_http1_head h;
    char store[STORE];
} rig;

static rig *rig_open(size_t buffer, size_t store_cap, size_t max_headers,
                     const strata_pipe_opts *po)
{
    rig *r = calloc(1, sizeof *r);
    strata_stream *end;

    assert_non_null(r);
    assert_int_equal(strata_pipe_pair(&r->raw, &end, po, NULL), 0);
    r->top = strata_buffered_new(end, buffer, NULL);
    assert_non_null(r->top);
    r->in = strata_buffered_of(r->top);
    assert_non_null(r->in);
    assert_true(store_cap <= STORE);
    strata_http1_head_init(&r->h, r->store, store_cap, max_headers);
    return r;
}

static rig *rig_plain(void)
{
    return rig_open(4096, STORE, 0, NULL);
}

static void rig_close(rig *r)
{
    strata_free(r->top);
    strata_free(r->raw);
    free(r);
}

static void put(strata_stream *raw, const void *bytes, size_t len)
{
    const char *p = bytes;
    long steps = 0;

    while (len > 0) {
        ssize_t n = strata_write(raw, p, len);

        assert_true(++steps < STEP_LIMIT);
        if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void puts_raw(strata_stream *raw, const char *s)
{
    put(raw, s, strlen(s));
}

static void shut(strata_stream *raw)
{
    long steps = 0;
    int r;

    while ((r = strata_shutdown(raw)) == STRATA_NEED_READ ||
           r == STRATA_NEED_WRITE)
        assert_true(++steps < STEP_LIMIT);
    assert_int_equal(r, 0);
}

static int read_head(rig *r, int request)
{
    return request ? strata_http1_read_request(r->in, &r->h)
                   : strata_http1_read_response(r->in, &r->h);
}

/* Call until the result is not a NEED code; count the NEED codes. */
static int read_until(rig *r, int request, long *needs)
{
    long steps = 0;
    int st;

    while ((st = read_head(r, request)) == STRATA_NEED_READ ||
           st == STRATA_NEED_WRITE) {
        assert_true(++steps < STEP_LIMIT);
        if (needs != NULL)
            (*needs)++;
    }
    return st;
}

/* One call over bytes all present (the stream shut down behind them when
 * eof is set), with the given limits. */
static int once_n(int request, const char *text, size_t len, size_t store_cap,
                  size_t max_headers, int eof)
{
    rig *r = rig_open(4096, store_cap, max_headers, NULL);
    int st;

    put(r->raw, text, len);
    if (eof)
        shut(r->raw);
    st = read_head(r, request);
    rig_close(r);
    return st;
}

static int once(int request, const char *text)
{
    return once_n(request, text, strlen(text), STORE, 0, 0);
}

/* The same for a literal that may hold a NUL. */
#define ONCE_LIT(request, lit) \
    once_n(request, lit, sizeof(lit) - 1, STORE, 0, 0)

/* Everything left readable through the buffered stream, up to EOF. */
static size_t drain(strata_stream *s, char *out, size_t cap)
{
    size_t got = 0;
    long steps = 0;

    for (;;) {
        ssize_t n = strata_read(s, out + got, cap - got);

        assert_true(++steps < STEP_LIMIT);
        if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
            continue;
        if (n == STRATA_EOF)
            return got;
        assert_true(n > 0);
        got += (size_t)n;
        assert_true(got < cap);
    }
}

static void expect_upgrade_req(const strata_http1_head *h)
{
    assert_string_equal(h->method, "GET");
    assert_string_equal(h->target, "/chat?x=1");
    assert_string_equal(h->version, "HTTP/1.1");
    assert_int_equal(h->status, 0);
    assert_null(h->reason);
    assert_int_equal(h->n_headers, 5);
    assert_string_equal(h->headers[0].name, "Host");
    assert_string_equal(h->headers[0].value, "example.com");
    assert_string_equal(h->headers[3].name, "Sec-WebSocket-Key");
    assert_string_equal(h->headers[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(h->headers[4].value, "13");
    assert_int_equal(h->store_len, strlen(upgrade_req));
}

/* ---- requests and responses ---------------------------------------- */

static void test_request(void **state)
{
    rig *r = rig_plain();

    (void)state;
    puts_raw(r->raw, upgrade_req);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    expect_upgrade_req(&r->h);
    assert_int_equal(strata_buffered_len(r->in), 0);
    /* complete: a further call returns 0 again and reads nothing */
    puts_raw(r->raw, "more");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_int_equal(strata_pipe_pending(r->in->base.lower), 4);
    rig_close(r);
}

static void test_request_forms(void **state)
{
    rig *r = rig_plain();

    (void)state;
    puts_raw(r->raw, "OPTIONS * HTTP/1.0\r\n\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(r->h.method, "OPTIONS");
    assert_string_equal(r->h.target, "*");
    assert_string_equal(r->h.version, "HTTP/1.0");
    assert_int_equal(r->h.n_headers, 0);
    rig_close(r);
    /* tchar methods, absolute-form and obs-text targets */
    assert_int_equal(once(REQUEST, "M-SEARCH * HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(once(REQUEST, "X!#$%&'*+.^_`|~9 / HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(
        once(REQUEST, "GET http://h:80/a?b#c HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(once(REQUEST, "GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), 0);
}

static void test_response(void **state)
{
    rig *r = rig_plain();

    (void)state;
    puts_raw(r->raw, upgrade_resp);
    assert_int_equal(strata_http1_read_response(r->in, &r->h), 0);
    assert_null(r->h.method);
    assert_null(r->h.target);
    assert_string_equal(r->h.version, "HTTP/1.1");
    assert_int_equal(r->h.status, 101);
    assert_string_equal(r->h.reason, "Switching Protocols");
    assert_int_equal(r->h.n_headers, 3);
    assert_string_equal(strata_http1_get(&r->h, "sec-websocket-accept"),
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    rig_close(r);
}

static void expect_status_line(const char *text, int status,
                               const char *reason, const char *version)
{
    rig *r = rig_plain();

    puts_raw(r->raw, text);
    assert_int_equal(strata_http1_read_response(r->in, &r->h), 0);
    assert_int_equal(r->h.status, status);
    assert_string_equal(r->h.reason, reason);
    assert_string_equal(r->h.version, version);
    rig_close(r);
}

static void test_status_lines(void **state)
{
    (void)state;
    expect_status_line("HTTP/1.1 200 OK\r\n\r\n", 200, "OK", "HTTP/1.1");
    expect_status_line("HTTP/1.0 404 Not  Found\t!\r\n\r\n", 404,
                       "Not  Found\t!", "HTTP/1.0");
    expect_status_line("HTTP/1.1 204 \r\n\r\n", 204, "", "HTTP/1.1");
    expect_status_line("HTTP/1.1 204\r\n\r\n", 204, "", "HTTP/1.1");
    expect_status_line("HTTP/1.1 100 \xe2\x9c\x93\r\n\r\n", 100,
                       "\xe2\x9c\x93", "HTTP/1.1");
    expect_status_line("HTTP/1.1 599  x\r\n\r\n", 599, " x", "HTTP/1.1");
}

static void test_bad_status_lines(void **state)
{
    static const char *const bad[] = {
        "\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1\t200 OK\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        " HTTP/1.1 200 OK\r\n\r\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (once(RESPONSE, bad[i]) != STRATA_ERR_PROTO)
            fail_msg("accepted status line %zu", i);
    }
    /* NUL inside the reason */
    assert_int_equal(ONCE_LIT(RESPONSE, "HTTP/1.1 200 O\0K\r\n\r\n"),
                     STRATA_ERR_PROTO);
}

static void test_bad_request_lines(void **state)
{
    static const char *const bad[] = {
        "\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET /  HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /\r\n\r\n",
        "GET / \r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/1.2\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n",
        "GET / HTTP/1.\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "G:T / HTTP/1.1\r\n\r\n",
        "GET\t/ HTTP/1.1\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\n\r\n",
        "/ HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (once(REQUEST, bad[i]) != STRATA_ERR_PROTO)
            fail_msg("accepted request line %zu", i);
    }
    assert_int_equal(ONCE_LIT(REQUEST, "GET /\0 HTTP/1.1\r\n\r\n"),
                     STRATA_ERR_PROTO);
}

/* ---- header lines --------------------------------------------------- */

static void test_header_values(void **state)
{
    rig *r = rig_plain();
    const strata_http1_head *h = &r->h;

    (void)state;
    puts_raw(r->raw, "GET / HTTP/1.1\r\n"
                     "Empty:\r\n"
                     "Blank: \t \r\n"
                     "Trim:  \t a  b \t\r\n"
                     "Tight:x\r\n"
                     "Colon: a:b: c\r\n"
                     "Odd: \x01\xff\x7f\r\n"
                     "\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_int_equal(h->n_headers, 6);
    assert_string_equal(h->headers[0].name, "Empty");
    assert_string_equal(h->headers[0].value, "");
    assert_string_equal(h->headers[1].value, "");
    assert_string_equal(h->headers[2].value, "a  b");
    assert_string_equal(h->headers[3].value, "x");
    assert_string_equal(h->headers[4].value, "a:b: c");
    assert_string_equal(h->headers[5].value, "\x01\xff\x7f");
    rig_close(r);
}

static void test_bad_header_names(void **state)
{
    static const char *const bad[] = {
        "Bad Name: x\r\n",  "Bad(Name): x\r\n", ": x\r\n",
        "NoColon\r\n",      "Name : x\r\n",     "Name\t: x\r\n",
        "N\xc3\xa4me: x\r\n", "A/B: x\r\n",     "{x}: y\r\n",
        "\"q\": y\r\n",     "x@y: z\r\n",
    };
    char text[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "GET / HTTP/1.1\r\nOk: 1\r\n%s\r\n",
                 bad[i]);
        if (once(REQUEST, text) != STRATA_ERR_PROTO)
            fail_msg("accepted header line %zu", i);
        snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%s\r\n", bad[i]);
        if (once(RESPONSE, text) != STRATA_ERR_PROTO)
            fail_msg("accepted response header line %zu", i);
    }
    /* NUL in a name and in a value */
    assert_int_equal(ONCE_LIT(REQUEST, "GET / HTTP/1.1\r\nX\0: a\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(ONCE_LIT(REQUEST, "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(ONCE_LIT(REQUEST, "GET / HTTP/1.1\r\nX: \0\r\n\r\n"),
                     STRATA_ERR_PROTO);
}

static void test_obs_fold(void **state)
{
    (void)state;
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"),
                     STRATA_ERR_PROTO);
    /* whitespace between the start line and the first header */
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(RESPONSE, "HTTP/1.1 200 OK\r\n\tX: a\r\n\r\n"),
                     STRATA_ERR_PROTO);
    /* a line of only whitespace is no blank line */
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\n \r\n\r\n"),
                     STRATA_ERR_PROTO);
}

static void test_bare_cr(void **state)
{
    (void)state;
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\r\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET /\r HTTP/1.1\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(RESPONSE, "HTTP/1.1 200 O\rK\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\n\r\r\n"),
                     STRATA_ERR_PROTO);
    /* found before the line's CRLF arrives */
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\rb"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\n\rX"), STRATA_ERR_PROTO);
    /* a CR last may still get its LF */
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\r"),
                     STRATA_NEED_READ);
}

static void test_bare_lf(void **state)
{
    (void)state;
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\nHost: a\r\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nX: a\r\n\n\r\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(RESPONSE, "HTTP/1.1 200 OK\nX: a\r\n\r\n"),
                     STRATA_ERR_PROTO);
    /* a bare-LF peer is refused at once, not left waiting for a CRLF */
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\nHost: a\n\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "GET / HTTP/1.1\r\nHost: a\n"),
                     STRATA_ERR_PROTO);
    assert_int_equal(once(REQUEST, "\n"), STRATA_ERR_PROTO);
    /* a line over the limit is too big, unless a bare LF came first */
    assert_int_equal(once_n(REQUEST, "GET / HTTP/1.1\nxxxxxxxxxx", 25, 12, 0,
                            0),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(once_n(REQUEST, "GET /\nHTTP/1.1 xxxxxxxxxx", 25, 12, 0,
                            0),
                     STRATA_ERR_PROTO);
}

/* ---- lookups -------------------------------------------------------- */

static void test_get(void **state)
{
    rig *r = rig_plain();
    const strata_http1_head *h = &r->h;

    (void)state;
    puts_raw(r->raw, upgrade_req);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(strata_http1_get(h, "Host"), "example.com");
    assert_string_equal(strata_http1_get(h, "host"), "example.com");
    assert_string_equal(strata_http1_get(h, "HOST"), "example.com");
    assert_string_equal(strata_http1_get(h, "sec-websocket-VERSION"), "13");
    assert_null(strata_http1_get(h, "Hos"));
    assert_null(strata_http1_get(h, "Hostx"));
    assert_null(strata_http1_get(h, ""));
    assert_null(strata_http1_get(h, NULL));
    assert_null(strata_http1_get(NULL, "Host"));
    rig_close(r);

    /* repeated names keep their order; get gives the first */
    r = rig_plain();
    h = &r->h;
    puts_raw(r->raw, "HTTP/1.1 200 OK\r\nSet: 1\r\nOther: x\r\nSET: 2\r\n"
                     "set: 3\r\n\r\n");
    assert_int_equal(strata_http1_read_response(r->in, &r->h), 0);
    assert_string_equal(strata_http1_get(h, "set"), "1");
    assert_string_equal(h->headers[2].name, "SET");
    assert_string_equal(h->headers[2].value, "2");
    assert_string_equal(h->headers[3].value, "3");
    rig_close(r);
}

static void test_has_token(void **state)
{
    rig *r = rig_plain();
    const strata_http1_head *h = &r->h;

    (void)state;
    puts_raw(r->raw, "GET / HTTP/1.1\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Upgrade: websocket\r\n"
                     "connection: close\r\n"
                     "List: ,, \t,a , \tB\t,,\r\n"
                     "Empty:\r\n"
                     "Spaced: x y, z\r\n"
                     "\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_true(strata_http1_has_token(h, "Connection", "upgrade"));
    assert_true(strata_http1_has_token(h, "CONNECTION", "Keep-Alive"));
    assert_true(strata_http1_has_token(h, "connection", "close"));
    assert_true(strata_http1_has_token(h, "upgrade", "WebSocket"));
    assert_true(strata_http1_has_token(h, "List", "a"));
    assert_true(strata_http1_has_token(h, "List", "b"));
    assert_true(strata_http1_has_token(h, "Spaced", "x y"));
    assert_true(strata_http1_has_token(h, "Spaced", "z"));
    assert_false(strata_http1_has_token(h, "Spaced", "x"));
    assert_false(strata_http1_has_token(h, "Connection", "upgrad"));
    assert_false(strata_http1_has_token(h, "Connection", "upgrade2"));
    assert_false(strata_http1_has_token(h, "Connection", "keep"));
    assert_false(strata_http1_has_token(h, "Connection", "keep-alive, Upgrade"));
    assert_false(strata_http1_has_token(h, "Upgrade", "Upgrade"));
    assert_false(strata_http1_has_token(h, "Missing", "x"));
    assert_false(strata_http1_has_token(h, "List", ""));
    assert_false(strata_http1_has_token(h, "Empty", ""));
    assert_false(strata_http1_has_token(h, "Empty", "x"));
    assert_false(strata_http1_has_token(h, NULL, "x"));
    assert_false(strata_http1_has_token(h, "List", NULL));
    assert_false(strata_http1_has_token(NULL, "List", "a"));
    rig_close(r);
}

/* Every value of a repeated header, in order, and every element of a
 * list value as the WebSocket handshake walks them. */
static void test_next_value_and_lists(void **state)
{
    rig *r = rig_plain();
    const strata_http1_head *h = &r->h;
    const char *v, *item, *list;
    size_t i = 0, n = 99;

    (void)state;
    puts_raw(r->raw, "GET / HTTP/1.1\r\n"
                     "Sec-WebSocket-Protocol: chat, superchat\r\n"
                     "Host: x\r\n"
                     "sec-websocket-protocol: \t v2 \r\n"
                     "SEC-WEBSOCKET-PROTOCOL:\r\n"
                     "\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    v = strata_http1_next_value(h, "Sec-WebSocket-Protocol", &i);
    assert_string_equal(v, "chat, superchat");
    assert_int_equal(i, 1);
    assert_string_equal(strata_http1_next_value(h, "sec-websocket-protocol",
                                                &i),
                        "v2");
    assert_string_equal(strata_http1_next_value(h, "Sec-WebSocket-Protocol",
                                                &i),
                        "");
    assert_null(strata_http1_next_value(h, "Sec-WebSocket-Protocol", &i));
    assert_int_equal(i, 4);
    assert_null(strata_http1_next_value(h, "Sec-WebSocket-Protocol", &i));
    i = 0;
    assert_null(strata_http1_next_value(h, "Sec-WebSocket-Protoco", &i));
    assert_null(strata_http1_next_value(NULL, "Host", &i));
    assert_null(strata_http1_next_value(h, NULL, &i));
    assert_null(strata_http1_next_value(h, "Host", NULL));

    /* elements trimmed of spaces and tabs; empty ones have length 0 */
    item = strata_http1_list_next(&v, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(item, "chat", 4);
    item = strata_http1_list_next(&v, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(item, "superchat", 9);
    assert_null(strata_http1_list_next(&v, &n));
    list = " a ,,\tb c\t, ";
    assert_non_null(item = strata_http1_list_next(&list, &n));
    assert_int_equal(n, 1);
    assert_int_equal(item[0], 'a');
    assert_non_null(strata_http1_list_next(&list, &n));
    assert_int_equal(n, 0);
    assert_non_null(item = strata_http1_list_next(&list, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(item, "b c", 3);
    assert_non_null(strata_http1_list_next(&list, &n));
    assert_int_equal(n, 0);
    assert_null(strata_http1_list_next(&list, &n));
    list = NULL;
    assert_null(strata_http1_list_next(&list, &n));
    rig_close(r);
}

static void test_is_token(void **state)
{
    (void)state;
    assert_true(strata_http1_is_token("GET"));
    assert_true(strata_http1_is_token("chat.v2"));
    assert_true(strata_http1_is_token("!#$%&'*+-.^_`|~09azAZ"));
    assert_false(strata_http1_is_token(""));
    assert_false(strata_http1_is_token(NULL));
    assert_false(strata_http1_is_token("a b"));
    assert_false(strata_http1_is_token("a,b"));
    assert_false(strata_http1_is_token("a:"));
    assert_false(strata_http1_is_token("\"a\""));
    assert_false(strata_http1_is_token("caf\xc3\xa9"));
    assert_false(strata_http1_is_token("a\x7f"));
    assert_false(strata_http1_is_token("(x)"));
}

/* ---- limits --------------------------------------------------------- */

/* Every store size up to the head's length fails, the length succeeds. */
static void test_head_size_boundary(void **state)
{
    size_t len = strlen(upgrade_req), cap;
    rig *r;

    (void)state;
    for (cap = 0; cap < len; cap++) {
        int st = once_n(REQUEST, upgrade_req, len, cap, 0, 0);

        if (st != STRATA_ERR_TOO_BIG)
            fail_msg("store %zu of %zu: %d", cap, len, st);
    }
    r = rig_open(4096, len, 0, NULL);
    puts_raw(r->raw, upgrade_req);
    puts_raw(r->raw, "tail");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    expect_upgrade_req(&r->h);
    assert_int_equal(strata_buffered_len(r->in), 4);
    rig_close(r);
    assert_int_equal(once_n(REQUEST, upgrade_req, len, len + 1, 0, 0), 0);
    /* the limit holds before the stream ends too */
    assert_int_equal(once_n(REQUEST, "GET / HTTP/1.1\r\nX: aaaaaaaa", 27, 26,
                            0, 0),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(once_n(REQUEST, "GET / HTTP/1.1\r\nX: aaaaaaaa", 27, 28,
                            0, 0),
                     STRATA_NEED_READ);
}

/* A line longer than the buffered stream can hold is too big as well. */
static void test_line_over_buffer(void **state)
{
    rig *r;

    (void)state;
    /* every line at most 16 bytes: fits a 16-byte buffer exactly */
    r = rig_open(16, STORE, 0, NULL);
    puts_raw(r->raw, "GET / HTTP/1.1\r\nHost: abcdefgh\r\n\r\nrest");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(strata_http1_get(&r->h, "host"), "abcdefgh");
    rig_close(r);
    r = rig_open(16, STORE, 0, NULL);
    puts_raw(r->raw, "GET / HTTP/1.1\r\nHost: abcdefghi\r\n\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_TOO_BIG);
    rig_close(r);
    /* a buffer below one CRLF holds no line at all */
    r = rig_open(1, STORE, 0, NULL);
    puts_raw(r->raw, "\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_TOO_BIG);
    rig_close(r);
}

static size_t make_headers(char *out, size_t cap, int request, size_t n)
{
    size_t len, i;

    len = (size_t)snprintf(out, cap, "%s",
                           request ? "GET / HTTP/1.1\r\n" : "HTTP/1.1 200 OK\r\n");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "H%zu: %zu\r\n", i, i);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void count_case(int request, size_t max_headers, size_t n, int want)
{
    char text[2048];
    size_t len = make_headers(text, sizeof text, request, n);
    rig *r = rig_open(4096, STORE, max_headers, NULL);
    int st;

    put(r->raw, text, len);
    st = read_head(r, request);
    if (st != want)
        fail_msg("max %zu, %zu headers: %d, want %d", max_headers, n, st,
                 want);
    if (want == 0) {
        char last[32];

        assert_int_equal(r->h.n_headers, n);
        snprintf(last, sizeof last, "%zu", n - 1);
        if (n > 0)
            assert_string_equal(r->h.headers[n - 1].value, last);
    }
    rig_close(r);
}

static void test_header_count_boundary(void **state)
{
    int k;

    (void)state;
    for (k = 0; k < 2; k++) {
        count_case(k, 1, 0, 0);
        count_case(k, 1, 1, 0);
        count_case(k, 1, 2, STRATA_ERR_TOO_BIG);
        count_case(k, 3, 3, 0);
        count_case(k, 3, 4, STRATA_ERR_TOO_BIG);
        count_case(k, 0, STRATA_HTTP1_MAX_HEADERS, 0);
        count_case(k, 0, STRATA_HTTP1_MAX_HEADERS + 1, STRATA_ERR_TOO_BIG);
        count_case(k, STRATA_HTTP1_MAX_HEADERS, STRATA_HTTP1_MAX_HEADERS, 0);
        /* a larger limit is clamped to the slots there are */
        count_case(k, 1000, STRATA_HTTP1_MAX_HEADERS, 0);
        count_case(k, 1000, STRATA_HTTP1_MAX_HEADERS + 1, STRATA_ERR_TOO_BIG);
    }
}

/* ---- stream ends and resumption ------------------------------------ */

/* Cut after every byte: the stream's end there is PROTO, or EOF before
 * the first byte. */
static void test_truncated(void **state)
{
    size_t len = strlen(upgrade_req), k;

    (void)state;
    assert_int_equal(once_n(REQUEST, "", 0, STORE, 0, 1), STRATA_EOF);
    assert_int_equal(once_n(RESPONSE, "", 0, STORE, 0, 1), STRATA_EOF);
    for (k = 1; k < len; k++) {
        int st = once_n(REQUEST, upgrade_req, k, STORE, 0, 1);

        if (st != STRATA_ERR_PROTO)
            fail_msg("cut at %zu: %d", k, st);
    }
    for (k = 1; k < strlen(upgrade_resp); k++)
        assert_int_equal(once_n(RESPONSE, upgrade_resp, k, STORE, 0, 1),
                         STRATA_ERR_PROTO);
    assert_int_equal(once_n(REQUEST, upgrade_req, len, STORE, 0, 1), 0);
}

/* Stop after every byte: NEED_READ there, then the rest completes it. */
static void test_resume_every_byte(void **state)
{
    static const char tail[] = "\x81\x05hello";
    size_t len = strlen(upgrade_req), k;

    (void)state;
    for (k = 0; k <= len; k++) {
        rig *r = rig_plain();
        char rest[64];

        put(r->raw, upgrade_req, k);
        assert_int_equal(strata_http1_read_request(r->in, &r->h),
                         k < len ? STRATA_NEED_READ : 0);
        assert_int_equal(strata_http1_read_request(r->in, &r->h),
                         k < len ? STRATA_NEED_READ : 0);
        put(r->raw, upgrade_req + k, len - k);
        puts_raw(r->raw, tail);
        assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
        expect_upgrade_req(&r->h);
        shut(r->raw);
        assert_int_equal(drain(r->top, rest, sizeof rest), strlen(tail));
        assert_memory_equal(rest, tail, strlen(tail));
        rig_close(r);
    }
}

/* One byte per call and 30% injected NEED codes on both sides. */
static void scheduled(int request, const char *head, uint64_t seed)
{
    static const char tail[] = "\x82\x03" "abc after the head";
    strata_pipe_opts po;
    rig *r;
    char rest[64];
    long needs = 0;

    memset(&po, 0, sizeof po);
    po.max_chunk = 1;
    po.need_percent = 30;
    po.seed = seed;
    r = rig_open(4096, STORE, 0, &po);
    puts_raw(r->raw, head);
    puts_raw(r->raw, tail);
    shut(r->raw);
    assert_int_equal(read_until(r, request, &needs), 0);
    assert_true(needs > 0);
    assert_int_equal(r->h.store_len, strlen(head));
    if (request) {
        expect_upgrade_req(&r->h);
    } else {
        assert_int_equal(r->h.status, 101);
        assert_string_equal(r->h.reason, "Switching Protocols");
        assert_string_equal(strata_http1_get(&r->h, "upgrade"), "websocket");
    }
    assert_int_equal(drain(r->top, rest, sizeof rest), strlen(tail));
    assert_memory_equal(rest, tail, strlen(tail));
    rig_close(r);
}

static void test_incremental_schedule(void **state)
{
    uint64_t seed = strata_test_seed();
    int i;

    (void)state;
    for (i = 0; i < 200; i++) {
        scheduled(REQUEST, upgrade_req, seed + (uint64_t)i);
        scheduled(RESPONSE, upgrade_resp, seed ^ (uint64_t)i << 32);
    }
}

/* Errors under the schedule are the same as all at once. */
static void test_incremental_errors(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    };
    uint64_t seed = strata_test_seed();
    strata_pipe_opts po;
    size_t i;

    (void)state;
    memset(&po, 0, sizeof po);
    po.max_chunk = 1;
    po.need_percent = 30;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rig *r;

        po.seed = seed + i;
        r = rig_open(4096, STORE, 0, &po);
        puts_raw(r->raw, bad[i]);
        assert_int_equal(read_until(r, REQUEST, NULL), STRATA_ERR_PROTO);
        rig_close(r);
    }
    po.seed = seed;
    {
        rig *r = rig_open(4096, 30, 0, &po);

        puts_raw(r->raw, upgrade_req);
        assert_int_equal(read_until(r, REQUEST, NULL), STRATA_ERR_TOO_BIG);
        rig_close(r);
    }
}

/* ---- hand-off ------------------------------------------------------- */

/* Head and frame bytes in one write: after the head only the frame is
 * left, in the buffered stream, for the next layer. */
static void handoff(int request, const char *head)
{
    static const char tail[] = "\x81\x85\x01\x02\x03\x04 frame bytes";
    char wire[512], rest[64];
    size_t hl = strlen(head), tl = sizeof tail - 1;
    rig *r = rig_plain();

    memcpy(wire, head, hl);
    memcpy(wire + hl, tail, tl);
    put(r->raw, wire, hl + tl);
    assert_int_equal(read_head(r, request), 0);
    assert_int_equal(r->h.store_len, hl);
    assert_int_equal(strata_buffered_len(r->in), tl);
    assert_true(strata_poll(r->top, STRATA_POLL_IN) & STRATA_POLL_IN);
    shut(r->raw);
    assert_int_equal(drain(r->top, rest, sizeof rest), tl);
    assert_memory_equal(rest, tail, tl);
    rig_close(r);
}

static void test_handoff(void **state)
{
    rig *r;

    (void)state;
    handoff(REQUEST, upgrade_req);
    handoff(RESPONSE, upgrade_resp);

    /* a second head right behind the first is the next reader's */
    r = rig_plain();
    puts_raw(r->raw, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(r->h.target, "/a");
    assert_int_equal(strata_buffered_len(r->in), 19);
    strata_http1_head_init(&r->h, r->store, STORE, 0);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(r->h.target, "/b");
    assert_int_equal(strata_buffered_len(r->in), 0);
    rig_close(r);
}

/* ---- calling mistakes and sticky errors ----------------------------- */

static void test_args_and_state(void **state)
{
    rig *r = rig_plain();
    strata_http1_head h;

    (void)state;
    strata_http1_head_init(NULL, NULL, 0, 0);
    assert_int_equal(strata_http1_read_request(NULL, &r->h), STRATA_ERR_ARG);
    assert_int_equal(strata_http1_read_request(r->in, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_http1_read_response(NULL, &r->h),
                     STRATA_ERR_ARG);
    strata_http1_head_init(&h, NULL, 100, 0);
    assert_int_equal(strata_http1_read_request(r->in, &h), STRATA_ERR_ARG);
    assert_int_equal(h.store_cap, 0);

    /* a head begun as a request is not continued as a response */
    puts_raw(r->raw, "GET / HTTP/1.1\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_NEED_READ);
    assert_int_equal(strata_http1_read_response(r->in, &r->h),
                     STRATA_ERR_STATE);
    puts_raw(r->raw, "\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_int_equal(strata_http1_read_response(r->in, &r->h),
                     STRATA_ERR_STATE);
    rig_close(r);

    /* and the other way round */
    r = rig_plain();
    puts_raw(r->raw, "HTTP/1.1 200 OK\r\n");
    assert_int_equal(strata_http1_read_response(r->in, &r->h),
                     STRATA_NEED_READ);
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_STATE);
    rig_close(r);
}

static void test_sticky_errors(void **state)
{
    rig *r = rig_plain();

    (void)state;
    puts_raw(r->raw, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_PROTO);
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_PROTO);
    /* the bad line was taken; what follows it was not */
    assert_int_equal(strata_buffered_len(r->in), 2);
    rig_close(r);

    r = rig_open(4096, STORE, 1, NULL);
    puts_raw(r->raw, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n");
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_http1_read_request(r->in, &r->h),
                     STRATA_ERR_TOO_BIG);
    rig_close(r);

    r = rig_plain();
    shut(r->raw);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), STRATA_EOF);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), STRATA_EOF);
    rig_close(r);
}

/* The peer gone mid-head is a truncated head. */
static void test_peer_gone(void **state)
{
    strata_stream *a, *b, *top;
    strata_http1_head h;
    char store[256];

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    top = strata_buffered_new(b, 256, NULL);
    assert_non_null(top);
    strata_http1_head_init(&h, store, sizeof store, 0);
    puts_raw(a, "GET / HTTP/1.1\r\n");
    assert_int_equal(strata_http1_read_request(strata_buffered_of(top), &h),
                     STRATA_NEED_READ);
    strata_free(a); /* the peer vanished: its end reads as EOF */
    assert_int_equal(strata_http1_read_request(strata_buffered_of(top), &h),
                     STRATA_ERR_PROTO);
    strata_free(top);
}

/* A lower stream that fails every call. */
static ssize_t io_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)flags;
    return STRATA_ERR_IO;
}

static ssize_t io_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags)
{
    (void)s;
    (void)iov;
    (void)n;
    (void)flags;
    return STRATA_ERR_IO;
}

static const strata_stream_ops io_ops = {
    "failing", io_recv, io_sendv, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* A lower stream's error passes through, and stays. */
static void test_lower_error(void **state)
{
    strata_stream f;
    strata_buffered in;
    strata_http1_head h;
    uint8_t storage[64];
    char store[64];

    (void)state;
    strata_stream_init(&f, &io_ops, NULL, NULL);
    strata_buffered_init(&in, &f, storage, sizeof storage);
    strata_http1_head_init(&h, store, sizeof store, 0);
    assert_int_equal(strata_http1_read_request(&in, &h), STRATA_ERR_IO);
    assert_int_equal(strata_http1_read_request(&in, &h), STRATA_ERR_IO);
    strata_free(&in.base);
}

/* ---- writers -------------------------------------------------------- */

static void test_write_request(void **state)
{
    static const char *const hd[] = {"Host", "example.com", "Upgrade",
                                     "websocket", "Empty", "", NULL};
    static const char want[] = "GET /chat HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Empty: \r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n";
    char buf[512];
    ssize_t n;
    rig *r;

    (void)state;
    n = strata_http1_write_request(buf, sizeof buf, "GET", "/chat", hd,
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Version: 13\r\n");
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);

    /* parse it back */
    r = rig_plain();
    put(r->raw, buf, (size_t)n);
    assert_int_equal(strata_http1_read_request(r->in, &r->h), 0);
    assert_string_equal(r->h.method, "GET");
    assert_string_equal(r->h.target, "/chat");
    assert_int_equal(r->h.n_headers, 5);
    assert_string_equal(strata_http1_get(&r->h, "empty"), "");
    assert_true(strata_http1_has_token(&r->h, "connection", "upgrade"));
    assert_int_equal(r->h.store_len, (size_t)n);
    rig_close(r);

    /* no headers at all */
    n = strata_http1_write_request(buf, sizeof buf, "OPTIONS", "*", NULL,
                                   NULL);
    assert_string_equal(buf, "OPTIONS * HTTP/1.1\r\n\r\n");
    assert_int_equal(n, 22);
    n = strata_http1_write_request(buf, sizeof buf, "GET", "/", NULL, "");
    assert_string_equal(buf, "GET / HTTP/1.1\r\n\r\n");
}

static void expect_reason(int status, const char *line)
{
    char buf[128];
    ssize_t n = strata_http1_write_response(buf, sizeof buf, status, NULL,
                                            NULL, NULL);
    rig *r;

    assert_true(n > 0);
    assert_int_equal(strncmp(buf, line, strlen(line)), 0);
    assert_string_equal(buf + strlen(line), "\r\n\r\n");
    r = rig_plain();
    put(r->raw, buf, (size_t)n);
    assert_int_equal(strata_http1_read_response(r->in, &r->h), 0);
    assert_int_equal(r->h.status, status);
    assert_string_equal(r->h.reason, line + 13);
    rig_close(r);
}

static void test_write_response(void **state)
{
    static const char *const hd[] = {"Upgrade", "websocket", "Connection",
                                     "Upgrade", NULL};
    char buf[512];
    ssize_t n;
    rig *r;

    (void)state;
    expect_reason(101, "HTTP/1.1 101 Switching Protocols");
    expect_reason(200, "HTTP/1.1 200 OK");
    expect_reason(400, "HTTP/1.1 400 Bad Request");
    expect_reason(403, "HTTP/1.1 403 Forbidden");
    expect_reason(404, "HTTP/1.1 404 Not Found");
    expect_reason(426, "HTTP/1.1 426 Upgrade Required");
    expect_reason(431, "HTTP/1.1 431 Request Header Fields Too Large");
    expect_reason(500, "HTTP/1.1 500 Internal Server Error");
    expect_reason(100, "HTTP/1.1 100 Status");
    expect_reason(302, "HTTP/1.1 302 Status");
    expect_reason(599, "HTTP/1.1 599 Status");

    n = strata_http1_write_response(buf, sizeof buf, 101, NULL, hd,
                                    "Sec-WebSocket-Accept: "
                                    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    assert_int_equal(n, strlen(upgrade_resp));
    assert_string_equal(buf, upgrade_resp);

    /* an empty reason parses back as empty */
    n = strata_http1_write_response(buf, sizeof buf, 204, "", NULL, NULL);
    assert_string_equal(buf, "HTTP/1.1 204 \r\n\r\n");
    r = rig_plain();
    put(r->raw, buf, (size_t)n);
    assert_int_equal(strata_http1_read_response(r->in, &r->h), 0);
    assert_int_equal(r->h.status, 204);
    assert_string_equal(r->h.reason, "");
    rig_close(r);
    n = strata_http1_write_response(buf, sizeof buf, 418, "I'm a teapot",
                                    NULL, NULL);
    assert_string_equal(buf, "HTTP/1.1 418 I'm a teapot\r\n\r\n");
}

static void test_write_errors(void **state)
{
    static const char *const cr_name[] = {"A\r", "b", NULL};
    static const char *const colon_name[] = {"A:", "b", NULL};
    static const char *const sp_name[] = {"A B", "b", NULL};
    static const char *const empty_name[] = {"", "b", NULL};
    static const char *const lf_value[] = {"A", "b\nc", NULL};
    static const char *const cr_value[] = {"A", "b\r", NULL};
    static const char *const odd[] = {"A", "b", "C", NULL};
    static const char *const *const bad_fields[] = {
        cr_name, colon_name, sp_name, empty_name, lf_value, cr_value, odd,
    };
    static const char *const bad_extra[] = {
        "A: b",           /* no CRLF at the end */
        "A: b\n",         /* bare LF */
        "A: b\nC: d\r\n",  /* bare LF inside a line */
        "A: b\rc\r\n",    /* bare CR */
        "A: b\r\n\r\n",   /* a blank line would end the head early */
        "\r\n",
        " A: b\r\n",      /* obs-fold */
        "A b\r\n",        /* no name */
        "A: b\r\nC\r\n",
    };
    char buf[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET",
                                                    "/", bad_fields[i], NULL),
                         STRATA_ERR_ARG);
        assert_int_equal(strata_http1_write_response(buf, sizeof buf, 200,
                                                     NULL, bad_fields[i],
                                                     NULL),
                         STRATA_ERR_ARG);
    }
    for (i = 0; i < sizeof bad_extra / sizeof bad_extra[0]; i++) {
        assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET",
                                                    "/", NULL, bad_extra[i]),
                         STRATA_ERR_ARG);
        assert_int_equal(strata_http1_write_response(buf, sizeof buf, 200,
                                                     NULL, NULL, bad_extra[i]),
                         STRATA_ERR_ARG);
    }
    /* start lines */
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET",
                                                "/a b", NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET",
                                                "/a\r\nX: y", NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET", "",
                                                NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "G T", "/",
                                                NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET\r\n",
                                                "/", NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "", "/",
                                                NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, NULL, "/",
                                                NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(buf, sizeof buf, "GET",
                                                NULL, NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_request(NULL, 0, "GET", "/", NULL,
                                                NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(buf, sizeof buf, 200,
                                                 "O\r\nK", NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(buf, sizeof buf, 200, "O\nK",
                                                 NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(buf, sizeof buf, 99, NULL,
                                                 NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(buf, sizeof buf, 600, NULL,
                                                 NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(buf, sizeof buf, -200, NULL,
                                                 NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_http1_write_response(NULL, 10, 200, NULL, NULL,
                                                 NULL),
                     STRATA_ERR_ARG);
    /* a bad argument is reported whatever the room */
    assert_int_equal(strata_http1_write_request(buf, 0, "GET", "/", odd,
                                                NULL),
                     STRATA_ERR_ARG);
}

/* The head and its NUL fit exactly, or the call is TOO_BIG. */
static void test_write_too_big(void **state)
{
    static const char *const hd[] = {"Host", "a", NULL};
    char buf[128], want[128];
    ssize_t n, m;
    size_t cap;

    (void)state;
    n = strata_http1_write_request(want, sizeof want, "GET", "/", hd,
                                   "X: y\r\n");
    assert_int_equal(n, 33);
    for (cap = 0; cap <= (size_t)n; cap++)
        assert_int_equal(strata_http1_write_request(buf, cap, "GET", "/", hd,
                                                    "X: y\r\n"),
                         STRATA_ERR_TOO_BIG);
    memset(buf, 'z', sizeof buf);
    assert_int_equal(strata_http1_write_request(buf, (size_t)n + 1, "GET",
                                                "/", hd, "X: y\r\n"),
                     n);
    assert_string_equal(buf, want);
    m = strata_http1_write_response(want, sizeof want, 101, NULL, hd, NULL);
    assert_true(m > 0);
    for (cap = 0; cap <= (size_t)m; cap++)
        assert_int_equal(strata_http1_write_response(buf, cap, 101, NULL, hd,
                                                     NULL),
                         STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_http1_write_response(buf, (size_t)m + 1, 101,
                                                 NULL, hd, NULL),
                     m);
    assert_string_equal(buf, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_request_forms),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_status_lines),
        cmocka_unit_test(test_bad_status_lines),
        cmocka_unit_test(test_bad_request_lines),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_bad_header_names),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_next_value_and_lists),
        cmocka_unit_test(test_is_token),
        cmocka_unit_test(test_head_size_boundary),
        cmocka_unit_test(test_line_over_buffer),
        cmocka_unit_test(test_header_count_boundary),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_resume_every_byte),
        cmocka_unit_test(test_incremental_schedule),
        cmocka_unit_test(test_incremental_errors),
        cmocka_unit_test(test_handoff),
        cmocka_unit_test(test_args_and_state),
        cmocka_unit_test(test_sticky_errors),
        cmocka_unit_test(test_peer_gone),
        cmocka_unit_test(test_lower_error),
        cmocka_unit_test(test_write_request),
        cmocka_unit_test(test_write_response),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_write_too_big),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
