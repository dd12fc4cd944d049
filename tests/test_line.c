/* The line layer: every call and every path of protos/line.h, then a
 * property run of random records through a hostile pipe schedule. */
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
#include <strata/line.h>
#include <strata/wbuf.h>

#include "harness.h"

/* ---- helpers -------------------------------------------------------- */

static void pipes(strata_stream **a, strata_stream **b, size_t cap)
{
    strata_pipe_opts o;

    memset(&o, 0, sizeof o);
    o.capacity = cap;
    assert_int_equal(strata_pipe_pair(a, b, &o, NULL), 0);
}

/* A line layer over pipe end b, with raw access to the other end a. */
typedef struct rig {
    strata_stream *raw;   /* the peer's pipe end: write wire bytes here */
    strata_stream *line;  /* line layer over the other end */
} rig;

static void rig_new(rig *r, const strata_line_opts *o, size_t cap)
{
    strata_stream *b;

    pipes(&r->raw, &b, cap);
    r->line = strata_line_new(b, o, NULL);
    assert_non_null(r->line);
}

static void rig_free(rig *r)
{
    strata_free(r->line);
    strata_free(r->raw);
}

/* Wire bytes into a raw pipe end (which may move them in chunks). */
static void put(strata_stream *raw, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t r = strata_write(raw, bytes, len);

        assert_true(r > 0);
        bytes += r;
        len -= (size_t)r;
    }
}

static void puts_raw(strata_stream *raw, const char *s)
{
    put(raw, s, strlen(s));
}

/* Read one whole record with a buffer of `piece` bytes; END only last. */
static ssize_t get_record(strata_stream *s, char *out, size_t cap,
                          size_t piece)
{
    size_t got = 0;

    for (;;) {
        unsigned fl = 0;
        ssize_t r;

        assert_true(got + piece <= cap);
        r = strata_recv(s, out + got, piece, &fl);
        if (r < 0)
            return r;
        got += (size_t)r;
        if (fl & STRATA_MSG_END)
            return (ssize_t)got;
        assert_true(r > 0); /* 0 only with MSG_END */
    }
}

static void expect_record(strata_stream *s, const char *want)
{
    char buf[4096];
    ssize_t r = get_record(s, buf, sizeof buf, 1000);

    assert_int_equal(r, (ssize_t)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
}

static void expect_status(strata_stream *s, ssize_t status)
{
    char buf[64];
    unsigned fl = 0;

    assert_int_equal(strata_recv(s, buf, sizeof buf, &fl), status);
}

/* Everything waiting in a raw pipe end, as a string. */
static size_t drain_raw(strata_stream *raw, char *out, size_t cap)
{
    size_t got = 0;

    for (;;) {
        ssize_t r = strata_read(raw, out + got, cap - got);

        if (r < 0)
            break;
        got += (size_t)r;
    }
    out[got] = '\0';
    return got;
}

/* ---- construction --------------------------------------------------- */

static void test_new_bad_args(void **state)
{
    strata_stream *a, *b;
    strata_line_opts o;

    (void)state;
    assert_null(strata_line_new(NULL, NULL, NULL));
    pipes(&a, &b, 0);
    memset(&o, 0, sizeof o);
    o.sep = "123456789"; /* over 8 bytes */
    assert_null(strata_line_new(b, &o, NULL));
    o.sep = "";
    assert_null(strata_line_new(b, &o, NULL));
    o.sep = NULL;
    o.sep_len = 2; /* default "\n" is 1 byte */
    assert_null(strata_line_new(b, &o, NULL));
    o.sep_len = 0;
    o.flags = 0x80;
    assert_null(strata_line_new(b, &o, NULL));
    o.flags = STRATA_LINE_ANY_EOL;
    o.sep = "||";
    assert_null(strata_line_new(b, &o, NULL));
    o.sep = NULL;
    o.flags = 0;
    o.max_len = (size_t)-1;
    assert_null(strata_line_new(b, &o, NULL));
    /* a failed constructor left both ends alive: they still work */
    assert_int_equal(strata_write(a, "x", 1), 1);
    assert_int_equal(strata_pipe_pending(b), 1);
    strata_free(a);
    strata_free(b);
}

static void test_init_checks(void **state)
{
    strata_stream *a, *b;
    strata_buffered in;
    strata_line l;
    strata_line_opts o;
    uint8_t storage[16];

    (void)state;
    pipes(&a, &b, 0);
    strata_buffered_init(&in, b, storage, sizeof storage);
    memset(&o, 0, sizeof o);
    assert_int_equal(strata_line_init(NULL, &in, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_line_init(&l, NULL, NULL), STRATA_ERR_ARG);
    /* default max_len 4096 does not fit 16 bytes */
    assert_int_equal(strata_line_init(&l, &in, NULL), STRATA_ERR_ARG);
    o.max_len = 15;
    assert_int_equal(strata_line_init(&l, &in, &o), 0);
    o.max_len = 16;
    assert_int_equal(strata_line_init(&l, &in, &o), STRATA_ERR_ARG);
    o.sep = "\r\n";
    o.max_len = 14;
    assert_int_equal(strata_line_init(&l, &in, &o), 0);
    /* ANY_EOL with "\n" needs room for "\r\n": max_len + 2 */
    o.sep = NULL;
    o.flags = STRATA_LINE_ANY_EOL;
    o.max_len = 15;
    assert_int_equal(strata_line_init(&l, &in, &o), STRATA_ERR_ARG);
    o.max_len = 14;
    assert_int_equal(strata_line_init(&l, &in, &o), 0);
    assert_ptr_equal(l.in, &in);
    assert_string_equal(strata_name(&l.base), "line");
    strata_free(&l.base); /* frees neither storage nor the pipe end */
    strata_free(a);
    strata_free(b);
}

static void test_new_over_buffered(void **state)
{
    strata_stream *a, *b, *buf, *line;
    strata_line_opts o;

    (void)state;
    pipes(&a, &b, 0);
    buf = strata_buffered_new(b, 64, NULL);
    assert_non_null(buf);
    memset(&o, 0, sizeof o);
    assert_null(strata_line_new(buf, &o, NULL)); /* 4096 > 64 */
    o.max_len = 60;
    line = strata_line_new(buf, &o, NULL);
    assert_non_null(line);
    assert_ptr_equal(((strata_line *)line)->in, strata_buffered_of(buf));
    assert_ptr_equal(line->lower, buf);
    puts_raw(a, "over\n");
    expect_record(line, "over");
    assert_int_equal(strata_fd(line), -1);
    strata_free(line);
    strata_free(a);
}

static void test_new_buffer_size(void **state)
{
    strata_stream *a, *b, *line;
    strata_line_opts o;

    (void)state;
    pipes(&a, &b, 0);
    memset(&o, 0, sizeof o);
    o.max_len = 10000;
    o.sep = "\r\n";
    line = strata_line_new(b, &o, NULL);
    assert_non_null(line);
    assert_int_equal(((strata_line *)line)->in->cap, 10002);
    strata_free(line);
    strata_free(a);
    pipes(&a, &b, 0);
    o.max_len = 10;
    line = strata_line_new(b, &o, NULL);
    assert_int_equal(((strata_line *)line)->in->cap, 4096);
    strata_free(line);
    strata_free(a);
}

static void test_allocator(void **state)
{
    strata_test_counter c = {0, 0, 0, 0};
    strata_allocator al = strata_test_allocator(&c);
    strata_stream *a, *b, *line;
    int i;

    (void)state;
    pipes(&a, &b, 0);
    line = strata_line_new(b, NULL, &al);
    assert_non_null(line);
    assert_int_equal(c.live, 3); /* buffered struct, its storage, line */
    strata_free(line);
    strata_free(a);
    assert_int_equal(c.live, 0);
    /* each allocation refused in turn: NULL, nothing leaked, lower kept */
    for (i = 1; i <= 3; i++) {
        c.calls = 0;
        c.fail_at = i;
        pipes(&a, &b, 0);
        assert_null(strata_line_new(b, NULL, &al));
        assert_int_equal(c.live, 0);
        strata_free(b);
        strata_free(a);
    }
}

/* ---- receive -------------------------------------------------------- */

static void test_recv_lf(void **state)
{
    rig r;

    (void)state;
    rig_new(&r, NULL, 0);
    expect_status(r.line, STRATA_NEED_READ);
    puts_raw(r.raw, "hello\n\nworld\n");
    expect_record(r.line, "hello");
    expect_record(r.line, ""); /* 0 bytes with MSG_END */
    expect_record(r.line, "world");
    expect_status(r.line, STRATA_NEED_READ);
    puts_raw(r.raw, "par");
    expect_status(r.line, STRATA_NEED_READ);
    puts_raw(r.raw, "tial\n");
    expect_record(r.line, "partial");
    strata_shutdown(r.raw);
    expect_status(r.line, STRATA_EOF);
    expect_status(r.line, STRATA_EOF);
    rig_free(&r);
}

static void test_recv_small_buffer(void **state)
{
    rig r;
    char buf[4];
    unsigned fl;

    (void)state;
    rig_new(&r, NULL, 0);
    puts_raw(r.raw, "abcdefghij\nxy\n");
    assert_int_equal(strata_recv(r.line, buf, 3, &fl), 3);
    assert_int_equal(fl, 0);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(strata_recv(r.line, buf, 3, &fl), 3);
    assert_int_equal(fl, 0);
    assert_int_equal(strata_recv(r.line, buf, 3, &fl), 3);
    assert_int_equal(fl, 0);
    assert_memory_equal(buf, "ghi", 3);
    assert_int_equal(strata_recv(r.line, buf, 3, &fl), 1);
    assert_int_equal(fl, STRATA_MSG_END);
    assert_int_equal(buf[0], 'j');
    assert_int_equal(strata_recv(r.line, buf, 1, &fl), 1);
    assert_int_equal(fl, 0);
    assert_int_equal(strata_recv(r.line, buf, 1, &fl), 1);
    assert_int_equal(fl, STRATA_MSG_END);
    assert_int_equal(buf[0], 'y');
    /* strata_read of a byte-stream caller ignores boundaries */
    puts_raw(r.raw, "zz\n");
    assert_int_equal(strata_read(r.line, buf, 4), 2);
    rig_free(&r);
}

static void test_recv_crlf(void **state)
{
    rig r;
    strata_line_opts o;

    (void)state;
    memset(&o, 0, sizeof o);
    o.sep = "\r\n";
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "a\r\nb\rc\nd\r\n\r\n");
    expect_record(r.line, "a");
    expect_record(r.line, "b\rc\nd");
    expect_record(r.line, "");
    rig_free(&r);
}

static void test_recv_any_eol(void **state)
{
    rig r;
    strata_line_opts o;
    char wire[64];

    (void)state;
    memset(&o, 0, sizeof o);
    o.flags = STRATA_LINE_ANY_EOL;
    o.max_len = 3;
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "a\nb\r\nc\r\r\n\r\n\nabc\r\nabcd\nok\n");
    expect_record(r.line, "a");
    expect_record(r.line, "b");
    expect_record(r.line, "c\r");
    expect_record(r.line, "");
    expect_record(r.line, "");
    expect_record(r.line, "abc"); /* max_len with its "\r\n": fits */
    expect_status(r.line, STRATA_ERR_TOO_BIG); /* 4 bytes, no "\r" */
    expect_record(r.line, "ok");
    /* sends use the configured separator */
    assert_int_equal(strata_write(r.line, "hi", 2), 2);
    assert_int_equal(drain_raw(r.raw, wire, sizeof wire - 1), 3);
    assert_string_equal(wire, "hi\n");
    rig_free(&r);
}

static void test_recv_any_eol_crlf(void **state)
{
    rig r;
    strata_line_opts o;
    char wire[64];

    (void)state;
    memset(&o, 0, sizeof o);
    o.flags = STRATA_LINE_ANY_EOL;
    o.sep = "\r\n";
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "x\ny\r\n");
    expect_record(r.line, "x");
    expect_record(r.line, "y");
    assert_int_equal(strata_write(r.line, "x\r", 2), 2); /* "x\r\r\n" */
    assert_int_equal(drain_raw(r.raw, wire, sizeof wire - 1), 4);
    assert_string_equal(wire, "x\r\r\n");
    put(r.raw, wire, 4);
    expect_record(r.line, "x\r");
    rig_free(&r);
}

static void test_recv_multibyte(void **state)
{
    rig r;
    strata_line_opts o;
    strata_pipe_opts po;
    strata_stream *b;

    (void)state;
    memset(&o, 0, sizeof o);
    o.sep = "\r\n\r\n";
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n\r\r\n\r\r\n\r\n");
    expect_record(r.line, "GET / HTTP/1.1\r\nHost: x");
    expect_record(r.line, "");
    expect_record(r.line, "\r\r\n\r");
    rig_free(&r);

    /* a separator split over many one-byte reads */
    memset(&po, 0, sizeof po);
    po.max_chunk = 1;
    assert_int_equal(strata_pipe_pair(&r.raw, &b, &po, NULL), 0);
    o.sep = "||";
    r.line = strata_line_new(b, &o, NULL);
    assert_non_null(r.line);
    puts_raw(r.raw, "a|b||||c|||");
    {
        char buf[16];
        ssize_t n;

        do
            n = get_record(r.line, buf, sizeof buf, 8);
        while (n == STRATA_NEED_READ);
        assert_int_equal(n, 3);
        assert_memory_equal(buf, "a|b", 3);
        do
            n = get_record(r.line, buf, sizeof buf, 8);
        while (n == STRATA_NEED_READ);
        assert_int_equal(n, 0);
        do
            n = get_record(r.line, buf, sizeof buf, 8);
        while (n == STRATA_NEED_READ);
        assert_int_equal(n, 1); /* the first "||" ends it: "c" */
        assert_memory_equal(buf, "c", 1);
    }
    rig_free(&r);
}

/* ---- over-long records and resynchronisation ------------------------ */

static void test_too_big_resync(void **state)
{
    rig r;
    strata_line_opts o;
    char big[300];

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 8;
    rig_new(&r, &o, 0);
    memset(big, 'x', sizeof big);
    puts_raw(r.raw, "12345678\nshort\n");
    put(r.raw, big, sizeof big);
    puts_raw(r.raw, "\nnext\n123456789\n\n");
    expect_record(r.line, "12345678"); /* exactly max_len */
    expect_record(r.line, "short");
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    expect_record(r.line, "next");
    expect_status(r.line, STRATA_ERR_TOO_BIG); /* max_len + 1 */
    expect_record(r.line, "");
    rig_free(&r);
}

/* Caller storage just big enough: skipping takes many fills, and the
 * multi-byte separator's first byte sits at a fill boundary. */
static void test_too_big_small_buffer(void **state)
{
    strata_stream *a, *b;
    strata_buffered in;
    strata_line l;
    strata_line_opts o;
    uint8_t storage[6];
    strata_pipe_opts po;
    char big[61];
    int i;

    (void)state;
    for (i = 1; i <= 7; i++) {
        memset(&po, 0, sizeof po);
        po.max_chunk = (size_t)i;
        assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
        strata_buffered_init(&in, b, storage, sizeof storage);
        memset(&o, 0, sizeof o);
        o.sep = "||";
        o.max_len = 4;
        assert_int_equal(strata_line_init(&l, &in, &o), 0);
        memset(big, 'y', sizeof big);
        puts_raw(a, "ok||");
        put(a, big, sizeof big);
        puts_raw(a, "||af|r||");
        strata_shutdown(a);
        {
            const char *want[] = {"ok", NULL, "af|r"};
            int k;

            for (k = 0; k < 3; k++) {
                char buf[8];
                ssize_t n;

                do
                    n = get_record(&l.base, buf, sizeof buf, 1);
                while (n == STRATA_NEED_READ);
                if (want[k] == NULL) {
                    assert_int_equal(n, STRATA_ERR_TOO_BIG);
                    continue;
                }
                assert_int_equal(n, (ssize_t)strlen(want[k]));
                assert_memory_equal(buf, want[k], (size_t)n);
            }
            expect_status(&l.base, STRATA_EOF);
        }
        strata_free(&l.base);
        strata_free(a);
        strata_free(b);
    }
}

/* TOO_BIG, then the rest of the over-long record arrives later. */
static void test_too_big_skip_waits(void **state)
{
    rig r;
    strata_line_opts o;

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 4;
    o.sep = "\r\n";
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "to\rolong");
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    assert_true(((strata_line *)r.line)->skipping);
    expect_status(r.line, STRATA_NEED_READ);
    puts_raw(r.raw, "more\r");
    expect_status(r.line, STRATA_NEED_READ);
    puts_raw(r.raw, "\nok\r\n");
    expect_record(r.line, "ok");
    rig_free(&r);
}

static void test_too_big_then_eof(void **state)
{
    rig r;
    strata_line_opts o;

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 4;
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "toolong");
    strata_shutdown(r.raw);
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    expect_status(r.line, STRATA_ERR_PROTO); /* it never ended */
    expect_status(r.line, STRATA_ERR_PROTO);
    rig_free(&r);
}

static void test_truncated(void **state)
{
    rig r;

    (void)state;
    rig_new(&r, NULL, 0);
    puts_raw(r.raw, "whole\nhalf");
    strata_shutdown(r.raw);
    expect_record(r.line, "whole");
    expect_status(r.line, STRATA_ERR_PROTO);
    expect_status(r.line, STRATA_ERR_PROTO); /* sticky */
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN),
                     STRATA_POLL_ERR | STRATA_POLL_IN);
    rig_free(&r);
}

/* ---- send ----------------------------------------------------------- */

static void test_send_basic(void **state)
{
    rig r;
    char wire[64];
    struct iovec v[3];

    (void)state;
    rig_new(&r, NULL, 0);
    assert_int_equal(strata_write(r.line, "one", 3), 3);
    assert_int_equal(strata_write(r.line, "", 0), 0); /* empty record */
    assert_int_equal(strata_send(r.line, "tw", 2, 0), 2); /* fragment */
    assert_int_equal(strata_send(r.line, NULL, 0, 0), 0);  /* no-op */
    assert_int_equal(strata_send(r.line, "o", 1, STRATA_MSG_END), 1);
    v[0].iov_base = "th";
    v[0].iov_len = 2;
    v[1].iov_base = NULL;
    v[1].iov_len = 0;
    v[2].iov_base = "ree";
    v[2].iov_len = 3;
    assert_int_equal(strata_sendv(r.line, v, 3, STRATA_MSG_END), 5);
    /* flags other than MSG_END are ignored */
    assert_int_equal(strata_send(r.line, "t", 1,
                                 STRATA_MSG_END | STRATA_MSG_TEXT), 1);
    drain_raw(r.raw, wire, sizeof wire - 1);
    assert_string_equal(wire, "one\n\ntwo\nthree\nt\n");
    assert_int_equal(strata_wants(r.line), 0);
    rig_free(&r);
}

static void test_send_embedded_sep(void **state)
{
    rig r;
    strata_line_opts o;
    char wire[64];

    (void)state;
    rig_new(&r, NULL, 0);
    assert_int_equal(strata_write(r.line, "a\nb", 3), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "a\n", 2, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_pipe_pending(r.raw), 0);
    rig_free(&r);

    memset(&o, 0, sizeof o);
    o.sep = "||";
    rig_new(&r, &o, 0);
    assert_int_equal(strata_write(r.line, "a||b", 4), STRATA_ERR_ARG);
    /* "a|" + "||" would read as "a" then "|...": refused */
    assert_int_equal(strata_write(r.line, "a|", 2), STRATA_ERR_ARG);
    /* a separator split over two sends */
    assert_int_equal(strata_send(r.line, "a|", 2, 0), 2);
    assert_int_equal(strata_send(r.line, "|b", 2, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "", 0, STRATA_MSG_END),
                     STRATA_ERR_ARG);
    /* ... and across iovecs of one send */
    {
        struct iovec v[2] = {{"x", 1}, {"|", 1}};

        assert_int_equal(strata_sendv(r.line, v, 2, 0), 2);
    }
    assert_int_equal(strata_send(r.line, "|", 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "b", 1, STRATA_MSG_END), 1);
    assert_int_equal(strata_write(r.line, "|x|", 3), STRATA_ERR_ARG);
    assert_int_equal(strata_write(r.line, "|x", 2), 2);
    drain_raw(r.raw, wire, sizeof wire - 1);
    assert_string_equal(wire, "a|x|b|||x||");
    rig_free(&r);

    memset(&o, 0, sizeof o);
    o.sep = "\r\n\r\n";
    rig_new(&r, &o, 0);
    assert_int_equal(strata_write(r.line, "h\r\n", 3), STRATA_ERR_ARG);
    assert_int_equal(strata_write(r.line, "h\r\nx\r", 5), 5);
    assert_int_equal(strata_send(r.line, "\r\n\r", 3, 0), 3);
    assert_int_equal(strata_send(r.line, "\n", 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "y", 1, STRATA_MSG_END), 1);
    drain_raw(r.raw, wire, sizeof wire - 1);
    assert_string_equal(wire, "h\r\nx\r\r\n\r\n\r\n\ry\r\n\r\n");
    rig_free(&r);

    memset(&o, 0, sizeof o);
    o.flags = STRATA_LINE_ANY_EOL;
    rig_new(&r, &o, 0);
    assert_int_equal(strata_write(r.line, "a\r", 2), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "a\r", 2, 0), 2);
    assert_int_equal(strata_send(r.line, NULL, 0, STRATA_MSG_END),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "\n", 1, STRATA_MSG_END),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, "b", 1, STRATA_MSG_END), 1);
    {
        struct iovec v[2] = {{"c", 1}, {NULL, 0}};

        assert_int_equal(strata_sendv(r.line, v, 2, STRATA_MSG_END), 1);
    }
    drain_raw(r.raw, wire, sizeof wire - 1);
    assert_string_equal(wire, "a\rb\nc\n");
    rig_free(&r);
}

static void test_send_too_big(void **state)
{
    rig r;
    strata_line_opts o;
    char wire[64];

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 4;
    rig_new(&r, &o, 0);
    assert_int_equal(strata_write(r.line, "12345", 5), STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_pipe_pending(r.raw), 0);
    assert_int_equal(strata_send(r.line, "12", 2, 0), 2);
    assert_int_equal(strata_send(r.line, "345", 3, STRATA_MSG_END),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_send(r.line, "34", 2, STRATA_MSG_END), 2);
    assert_int_equal(strata_write(r.line, "abcd", 4), 4);
    drain_raw(r.raw, wire, sizeof wire - 1);
    assert_string_equal(wire, "1234\nabcd\n");
    rig_free(&r);
}

/* A pipe of 4 bytes: every send moves part, the rest is continued. */
static void test_send_partial(void **state)
{
    strata_stream *a, *b, *tx, *rx;
    const char *msg = "abcdefghijkl";
    size_t off = 0;
    char buf[32];
    ssize_t r;

    (void)state;
    pipes(&a, &b, 4);
    tx = strata_line_new(a, NULL, NULL);
    rx = strata_line_new(b, NULL, NULL);
    while (off < strlen(msg)) {
        r = strata_send(tx, msg + off, strlen(msg) - off, STRATA_MSG_END);
        if (r == STRATA_NEED_WRITE) {
            assert_int_equal(strata_recv(rx, buf, sizeof buf, NULL),
                             STRATA_NEED_READ); /* drains the pipe */
            continue;
        }
        assert_true(r > 0);
        off += (size_t)r;
        if (off < strlen(msg))
            assert_int_equal(((strata_line *)tx)->sent, off);
    }
    /* the content went, the separator waits for room */
    assert_int_equal(((strata_line *)tx)->sep_pending, 1);
    assert_int_equal(strata_wants(tx), STRATA_WANT_WRITE);
    assert_int_equal(strata_shutdown(tx), STRATA_NEED_WRITE);
    assert_int_equal(strata_flush(tx), STRATA_NEED_WRITE);
    assert_int_equal(strata_recv(rx, buf, sizeof buf, NULL), STRATA_NEED_READ);
    assert_int_equal(strata_flush(tx), 0);
    assert_int_equal(strata_wants(tx), 0);
    expect_record(rx, msg);
    /* a pending separator goes first on the next send */
    assert_int_equal(strata_write(tx, "1234", 4), 4);
    assert_int_equal(((strata_line *)tx)->sep_pending, 1);
    assert_int_equal(strata_write(tx, "5", 1), STRATA_NEED_WRITE);
    assert_int_equal(strata_recv(rx, buf, sizeof buf, NULL), STRATA_NEED_READ);
    assert_int_equal(strata_write(tx, "5", 1), 1);
    expect_record(rx, "1234");
    assert_int_equal(strata_shutdown(tx), 0);
    expect_record(rx, "5");
    expect_status(rx, STRATA_EOF);
    strata_free(tx);
    strata_free(rx);
}

/* A separator that goes half, with the other half failing later. */
static void test_send_sep_split(void **state)
{
    strata_stream *a, *b, *tx;
    strata_line_opts o;
    char wire[16];

    (void)state;
    pipes(&a, &b, 5);
    memset(&o, 0, sizeof o);
    o.sep = "\r\n\r\n";
    tx = strata_line_new(a, &o, NULL);
    assert_int_equal(strata_write(tx, "abc", 3), 3);
    assert_int_equal(((strata_line *)tx)->sep_pending, 2);
    assert_int_equal(strata_write(tx, "", 0), STRATA_NEED_WRITE);
    assert_int_equal(strata_read(b, wire, sizeof wire), 5);
    assert_int_equal(strata_write(tx, "", 0), 0); /* "\r\n" + "\r\n\r\n" */
    assert_int_equal(strata_read(b, wire, sizeof wire), 5);
    assert_int_equal(((strata_line *)tx)->sep_pending, 1);
    strata_free(b); /* the peer goes away: the pending byte fails */
    assert_int_equal(strata_flush(tx), STRATA_ERR_CLOSED);
    assert_int_equal(strata_write(tx, "x", 1), STRATA_ERR_CLOSED);
    strata_free(tx);
}

/* More iovecs than the layer merges: the separator follows separately. */
static void test_send_many_iovecs(void **state)
{
    rig r;
    struct iovec v[40];
    char wire[64];
    int i;

    (void)state;
    rig_new(&r, NULL, 0);
    for (i = 0; i < 40; i++) {
        v[i].iov_base = (void *)"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
        v[i].iov_base = (char *)v[i].iov_base + i;
        v[i].iov_len = 1;
    }
    assert_int_equal(strata_sendv(r.line, v, 40, STRATA_MSG_END), 40);
    assert_int_equal(drain_raw(r.raw, wire, sizeof wire - 1), 41);
    assert_string_equal(wire, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN\n");
    rig_free(&r);
}

static void test_shutdown_mid_record(void **state)
{
    strata_stream *a, *b, *tx, *rx;

    (void)state;
    pipes(&a, &b, 0);
    tx = strata_line_new(a, NULL, NULL);
    rx = strata_line_new(b, NULL, NULL);
    assert_int_equal(strata_send(tx, "abc", 3, 0), 3);
    assert_int_equal(strata_shutdown(tx), STRATA_ERR_STATE);
    assert_int_equal(strata_send(tx, NULL, 0, STRATA_MSG_END), 0);
    assert_int_equal(strata_shutdown(tx), 0);
    assert_int_equal(strata_write(tx, "x", 1), STRATA_ERR_STATE);
    assert_int_equal(strata_send(tx, NULL, 0, STRATA_MSG_END),
                     STRATA_ERR_STATE);
    expect_record(rx, "abc");
    expect_status(rx, STRATA_EOF);
    assert_int_equal(strata_poll(rx, STRATA_POLL_IN),
                     STRATA_POLL_IN | STRATA_POLL_HUP);
    strata_free(tx);
    strata_free(rx);
}

/* Misuse through the generic calls never reaches the layer or crashes. */
static void test_null_args(void **state)
{
    rig r;
    struct iovec bad = {NULL, 2};

    (void)state;
    rig_new(&r, NULL, 0);
    assert_int_equal(strata_recv(r.line, NULL, 4, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.line, NULL, 4, STRATA_MSG_END),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(r.line, &bad, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(r.line, NULL, -1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_recv(r.line, NULL, 0, NULL), 0);
    puts_raw(r.raw, "fine\n");
    expect_record(r.line, "fine");
    rig_free(&r);
}

/* ---- readiness ------------------------------------------------------ */

static void test_poll(void **state)
{
    rig r;
    strata_line_opts o;

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 8;
    rig_new(&r, &o, 0);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_OUT);
    puts_raw(r.raw, "ab");
    /* bytes in the pipe: a recv would move them */
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    expect_status(r.line, STRATA_NEED_READ);
    /* a partial record buffered and nothing more below: not ready, though
     * the buffered stream below says IN */
    assert_int_equal(strata_poll(((strata_line *)r.line)->base.lower,
                                 STRATA_POLL_IN), STRATA_POLL_IN);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0);
    puts_raw(r.raw, "c\nd");
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    expect_record(r.line, "abc");
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0);
    rig_free(&r);
}

static void test_poll_states(void **state)
{
    rig r;
    strata_line_opts o;
    char buf[4];
    unsigned fl;

    (void)state;
    memset(&o, 0, sizeof o);
    o.max_len = 8;
    rig_new(&r, &o, 0);
    puts_raw(r.raw, "abcde\nxyz");
    /* nothing buffered yet; the pipe has bytes */
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    assert_int_equal(strata_recv(r.line, buf, 2, &fl), 2);
    /* mid-delivery */
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    assert_int_equal(strata_recv(r.line, buf, 4, &fl), 3);
    assert_int_equal(fl, STRATA_MSG_END);
    /* "xyz" buffered, no separator, pipe empty */
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_OUT), STRATA_POLL_OUT);
    puts_raw(r.raw, "\n");
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    expect_record(r.line, "xyz");
    /* an over-long record buffered: recv would fail now */
    puts_raw(r.raw, "123456789012");
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0); /* skipping */
    puts_raw(r.raw, "3\nnext");
    expect_status(r.line, STRATA_NEED_READ);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0);
    puts_raw(r.raw, "\n");
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    expect_record(r.line, "next");
    /* a whole record buffered behind the rest of a skipped one */
    puts_raw(r.raw, "0123456789abc\nok\n");
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), STRATA_POLL_IN);
    expect_record(r.line, "ok");
    /* ... and a partial one there */
    puts_raw(r.raw, "0123456789abc\nok");
    expect_status(r.line, STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN), 0);
    strata_shutdown(r.raw);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN),
                     STRATA_POLL_IN | STRATA_POLL_HUP);
    expect_status(r.line, STRATA_ERR_PROTO);
    assert_int_equal(strata_poll(r.line, STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_ERR | STRATA_POLL_IN);
    rig_free(&r);
}

/* ---- caller storage ------------------------------------------------- */

static void test_init_storage(void **state)
{
    strata_stream *a, *b;
    strata_buffered in_a, in_b;
    strata_line la, lb;
    strata_line_opts o;
    uint8_t sa[32], sb[32];

    (void)state;
    pipes(&a, &b, 0);
    strata_buffered_init(&in_a, a, sa, sizeof sa);
    strata_buffered_init(&in_b, b, sb, sizeof sb);
    memset(&o, 0, sizeof o);
    o.sep = "\r\n";
    o.max_len = 30;
    assert_int_equal(strata_line_init(&la, &in_a, &o), 0);
    assert_int_equal(strata_line_init(&lb, &in_b, &o), 0);
    assert_int_equal(strata_write(&la.base, "static", 6), 6);
    assert_int_equal(strata_write(&lb.base, "both ways", 9), 9);
    expect_record(&lb.base, "static");
    expect_record(&la.base, "both ways");
    assert_int_equal(strata_shutdown(&la.base), 0);
    expect_status(&lb.base, STRATA_EOF);
    strata_free(&la.base);
    strata_free(&lb.base);
    strata_free(a);
    strata_free(b);
}

/* ---- a misbehaving lower stream ------------------------------------- */

/* A scripted lower stream for what a pipe never does (a send moving 0). */
typedef struct fake {
    strata_stream base;
    const ssize_t *script;
    int at;
} fake;

static ssize_t f_recv(strata_stream *s, void *b, size_t l, unsigned *fl)
{
    (void)s;
    (void)b;
    (void)l;
    (void)fl;
    return STRATA_NEED_READ;
}

static ssize_t f_sendv(strata_stream *s, const struct iovec *v, int n,
                       unsigned fl)
{
    fake *f = (fake *)s;

    (void)v;
    (void)n;
    (void)fl;
    return f->script[f->at++];
}

static const strata_stream_ops fake_ops = {
    "fake", f_recv, f_sendv, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* A lower stream that moves 0 bytes of a send breaks rule 1: an error,
 * not a busy loop. */
static void test_lower_moves_nothing(void **state)
{
    static const ssize_t script[] = {3, 0, 0};
    fake f;
    strata_stream *line;

    (void)state;
    memset(&f, 0, sizeof f);
    strata_stream_init(&f.base, &fake_ops, NULL, NULL);
    f.script = script;
    line = strata_line_new(&f.base, NULL, NULL);
    assert_non_null(line);
    assert_int_equal(strata_write(line, "abc", 3), 3); /* "\n" held */
    assert_int_equal(strata_wants(line), STRATA_WANT_WRITE);
    assert_int_equal(strata_flush(line), STRATA_ERR_IO);
    ((strata_buffered *)line->lower)->base.owns_lower = 0;
    strata_free(line);
}

/* ---- property ------------------------------------------------------- */

static int build(strata_stream *ea, strata_stream *eb, strata_stream **ta,
                 strata_stream **tb, void *ud)
{
    *ta = strata_line_new(ea, ud, NULL);
    *tb = strata_line_new(eb, ud, NULL);
    return *ta != NULL && *tb != NULL ? 0 : -1;
}

/* Over a write buffer: whole small records take the reserve/commit fast
 * path, fragments and bigger ones the sendv path. */
static int build_wbuf(strata_stream *ea, strata_stream *eb,
                      strata_stream **ta, strata_stream **tb, void *ud)
{
    strata_stream *wa = strata_wbuf_new(ea, 512, 128, NULL);
    strata_stream *wb = strata_wbuf_new(eb, 512, 128, NULL);

    if (wa == NULL || wb == NULL)
        return -1;
    return build(wa, wb, ta, tb, ud);
}

static strata_prop_build prop_build = build;

static void prop(const char *sep, unsigned flags, const char *forbidden,
                 unsigned messages, size_t max_fragment)
{
    strata_line_opts lo;
    strata_prop_opts o;
    uint8_t alphabet[256];
    size_t n = 0;
    char err[256];
    int c;

    for (c = 0; c < 256; c++)
        if (strchr(forbidden, c) == NULL || c == 0)
            alphabet[n++] = (uint8_t)c;
    memset(&lo, 0, sizeof lo);
    lo.sep = sep;
    lo.flags = flags;
    lo.max_len = 600;
    memset(&o, 0, sizeof o);
    o.seed = strata_test_seed();
    o.messages = messages;
    o.max_size = 600;
    o.max_fragment = max_fragment;
    o.max_read = 700;
    o.duplex = 1;
    o.strict_end = 1;
    o.alphabet = alphabet;
    o.alphabet_len = n;
    o.pipe.capacity = 1024;
    o.pipe.max_chunk = 1 + (size_t)(o.seed % 7);
    o.pipe.need_percent = 20 + (unsigned)(o.seed % 11);
    o.pipe.seed = o.seed;
    if (strata_prop_run(&o, prop_build, NULL, &lo, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static void test_prop_over_wbuf(void **state)
{
    (void)state;
    prop_build = build_wbuf;
    prop("\n", 0, "\n", 10000, 200);
    prop_build = build;
}

static void test_prop_lf(void **state)
{
    (void)state;
    prop("\n", 0, "\n", 10000, 0);
}

static void test_prop_lf_fragments(void **state)
{
    (void)state;
    prop("\n", 0, "\n", 2000, 37);
}

static void test_prop_crlf_any_eol(void **state)
{
    (void)state;
    prop("\r\n", STRATA_LINE_ANY_EOL, "\n", 2000, 13);
}

static void test_prop_multibyte(void **state)
{
    (void)state;
    prop("\r\n\r\n", 0, "\r", 2000, 5);
    prop("||", 0, "|", 2000, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bad_args),
        cmocka_unit_test(test_init_checks),
        cmocka_unit_test(test_new_over_buffered),
        cmocka_unit_test(test_new_buffer_size),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_recv_lf),
        cmocka_unit_test(test_recv_small_buffer),
        cmocka_unit_test(test_recv_crlf),
        cmocka_unit_test(test_recv_any_eol),
        cmocka_unit_test(test_recv_any_eol_crlf),
        cmocka_unit_test(test_recv_multibyte),
        cmocka_unit_test(test_too_big_resync),
        cmocka_unit_test(test_too_big_small_buffer),
        cmocka_unit_test(test_too_big_skip_waits),
        cmocka_unit_test(test_too_big_then_eof),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_send_basic),
        cmocka_unit_test(test_send_embedded_sep),
        cmocka_unit_test(test_send_too_big),
        cmocka_unit_test(test_send_partial),
        cmocka_unit_test(test_send_sep_split),
        cmocka_unit_test(test_send_many_iovecs),
        cmocka_unit_test(test_shutdown_mid_record),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_lower_moves_nothing),
        cmocka_unit_test(test_poll),
        cmocka_unit_test(test_poll_states),
        cmocka_unit_test(test_init_storage),
        cmocka_unit_test(test_prop_lf),
        cmocka_unit_test(test_prop_over_wbuf),
        cmocka_unit_test(test_prop_lf_fragments),
        cmocka_unit_test(test_prop_crlf_any_eol),
        cmocka_unit_test(test_prop_multibyte),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
