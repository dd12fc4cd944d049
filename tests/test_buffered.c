/* The buffered input stream: peek/consume/readline, the direct read past
 * the buffer, EOF memory, hand-off of leftover bytes to the next layer, and
 * a property run through it with the random schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <strata/buffered.h>
#include <strata/pipe.h>

#include "harness.h"

typedef struct pair {
    strata_stream *a, *b;
} pair;

static int setup(void **state)
{
    static pair p;

    if (strata_pipe_pair(&p.a, &p.b, NULL, NULL) != 0)
        return -1;
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;

    strata_free(p->a);
    strata_free(p->b);
    return 0;
}

static void put(strata_stream *s, const char *text)
{
    assert_int_equal(strata_write(s, text, strlen(text)),
                     (ssize_t)strlen(text));
}

static void test_peek_consume(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[16];
    const uint8_t *d;

    strata_buffered_init(&b, p->b, store, sizeof store);
    assert_ptr_equal(strata_buffered_of(&b.base), &b);
    assert_null(strata_buffered_of(p->b));
    assert_int_equal(strata_buffered_peek(&b, 2, &d), STRATA_NEED_READ);
    put(p->a, "hello");
    assert_int_equal(strata_buffered_peek(&b, 2, &d), 5);
    assert_memory_equal(d, "he", 2);
    assert_int_equal(strata_buffered_peek(&b, 6, &d), STRATA_NEED_READ);
    strata_buffered_consume(&b, 3);
    assert_int_equal(strata_buffered_len(&b), 2);
    assert_true(strata_poll(&b.base, STRATA_POLL_IN) & STRATA_POLL_IN);
    assert_int_equal(strata_buffered_peek(&b, 17, &d), STRATA_ERR_TOO_BIG);
    /* a peek needing contiguous room compacts rather than failing */
    put(p->a, "0123456789abcd");
    assert_int_equal(strata_buffered_peek(&b, 16, &d), 16);
    assert_memory_equal(d, "lo0123456789abcd", 16);
    strata_buffered_consume(&b, 100); /* clamps to what is there */
    assert_int_equal(strata_buffered_len(&b), 0);
    assert_int_equal(strata_buffered_fill(&b), STRATA_NEED_READ);
    strata_free(&b.base); /* caller storage: frees nothing, not lower */
}

static void test_readline(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[32];
    const uint8_t *line;

    strata_buffered_init(&b, p->b, store, sizeof store);
    assert_int_equal(strata_buffered_readline(&b, "\r\n", 2, 31, &line),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_buffered_readline(&b, "", 0, 8, &line),
                     STRATA_ERR_ARG);
    put(p->a, "GET / HTTP/1.1\r");
    assert_int_equal(strata_buffered_readline(&b, "\r\n", 2, 20, &line),
                     STRATA_NEED_READ);
    put(p->a, "\nHost: x\r\n\r\nAB");
    assert_int_equal(strata_buffered_readline(&b, "\r\n", 2, 20, &line), 16);
    assert_memory_equal(line, "GET / HTTP/1.1\r\n", 16);
    strata_buffered_consume(&b, 16);
    assert_int_equal(strata_buffered_readline(&b, "\r\n", 2, 20, &line), 9);
    strata_buffered_consume(&b, 9);
    assert_int_equal(strata_buffered_readline(&b, "\r\n", 2, 20, &line), 2);
    strata_buffered_consume(&b, 2);
    /* the bytes after the head stay for the next layer: hand-off */
    assert_int_equal(strata_buffered_len(&b), 2);
    /* too long: found separator beyond max, or none within max+seplen */
    put(p->a, "CDEFGHIJ\n");
    assert_int_equal(strata_buffered_readline(&b, "\n", 1, 5, &line),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_buffered_len(&b), 11); /* nothing consumed */
    assert_int_equal(strata_buffered_readline(&b, "\n", 1, 10, &line), 11);
    strata_buffered_consume(&b, 11);
    put(p->a, "0123456789");
    assert_int_equal(strata_buffered_readline(&b, "\n", 1, 8, &line),
                     STRATA_ERR_TOO_BIG);
    strata_free(&b.base);
}

static void test_line_one_byte_at_a_time(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[64];
    const uint8_t *line;
    const char *text = "a fairly long line arriving byte by byte||";
    size_t i;
    ssize_t r = 0;

    strata_buffered_init(&b, p->b, store, sizeof store);
    for (i = 0; text[i]; i++) {
        assert_int_equal(strata_send(p->a, text + i, 1, 0), 1);
        r = strata_buffered_readline(&b, "||", 2, 60, &line);
        if (text[i + 1] != '\0')
            assert_int_equal(r, STRATA_NEED_READ);
    }
    assert_int_equal(r, (ssize_t)strlen(text));
    assert_memory_equal(line, text, strlen(text));
    strata_free(&b.base);
}

static void test_eof_and_truncation(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[16];
    const uint8_t *d;
    char out[8];

    strata_buffered_init(&b, p->b, store, sizeof store);
    put(p->a, "abc");
    assert_int_equal(strata_shutdown(p->a), 0);
    assert_int_equal(strata_buffered_peek(&b, 5, &d), STRATA_EOF);
    /* EOF with bytes left: the caller can tell a truncated unit */
    assert_int_equal(strata_buffered_len(&b), 3);
    assert_true(strata_poll(&b.base, STRATA_POLL_IN) & STRATA_POLL_IN);
    assert_int_equal(strata_read(&b.base, out, sizeof out), 3);
    assert_int_equal(strata_read(&b.base, out, sizeof out), STRATA_EOF);
    assert_int_equal(strata_buffered_fill(&b), STRATA_EOF);
    assert_int_equal(strata_buffered_readline(&b, "\n", 1, 4, &d),
                     STRATA_EOF);
    assert_true(strata_poll(&b.base, STRATA_POLL_IN) & STRATA_POLL_HUP);
    strata_free(&b.base);
}

/* Big reads bypass the buffer: after a direct read nothing is buffered. */
static void test_direct_read(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[8];
    char big[64], out[64];

    memset(big, 'x', sizeof big);
    strata_buffered_init(&b, p->b, store, sizeof store);
    assert_int_equal(strata_write(p->a, big, sizeof big), sizeof big);
    assert_int_equal(strata_read(&b.base, out, sizeof out), sizeof out);
    assert_int_equal(strata_buffered_len(&b), 0);
    /* a small read goes through the buffer and leaves the rest there */
    assert_int_equal(strata_write(p->a, big, 6), 6);
    assert_int_equal(strata_read(&b.base, out, 2), 2);
    assert_int_equal(strata_buffered_len(&b), 4);
    /* and sends pass straight down */
    assert_int_equal(strata_write(&b.base, "hi", 2), 2);
    assert_int_equal(strata_read(p->a, out, sizeof out), 2);
    strata_free(&b.base);
}

/* peek_exact reads only what the unit lacks: what follows stays below. */
static void test_peek_exact(void **state)
{
    pair *p = *state;
    strata_buffered b;
    uint8_t store[16];
    const uint8_t *d;

    strata_buffered_init(&b, p->b, store, sizeof store);
    assert_int_equal(strata_buffered_peek_exact(&b, 17, &d),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(strata_buffered_peek_exact(&b, 3, &d), STRATA_NEED_READ);
    put(p->a, "hdrPAYLOAD");
    assert_int_equal(strata_buffered_peek_exact(&b, 3, &d), 3);
    assert_memory_equal(d, "hdr", 3);
    assert_int_equal(strata_pipe_pending(p->b), 7);
    strata_buffered_consume(&b, 3);
    assert_int_equal(strata_shutdown(p->a), 0);
    assert_int_equal(strata_buffered_peek_exact(&b, 7, &d), 7);
    strata_buffered_consume(&b, 7);
    assert_int_equal(strata_buffered_peek_exact(&b, 1, &d), STRATA_EOF);
    assert_int_equal(strata_buffered_peek_exact(&b, 1, &d), STRATA_EOF);
    strata_free(&b.base);
}

static void test_new_and_free(void **state)
{
    strata_stream *a, *b, *top;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_null(strata_buffered_new(NULL, 16, NULL));
    assert_null(strata_buffered_new(b, 0, NULL));
    top = strata_buffered_new(b, 16, NULL);
    assert_non_null(top);
    assert_string_equal(strata_name(top), "buffered");
    strata_free(top); /* frees b too: it owns it */
    assert_int_equal(strata_write(a, "x", 1), STRATA_ERR_CLOSED);
    strata_free(a);
}

/* over: reuse a buffered stream, or make one; undo gives lower back. */
static void test_over_and_undo(void **state)
{
    strata_stream *a, *b, *top;
    strata_buffered *in;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    in = strata_buffered_over(b, 32, NULL);
    assert_non_null(in);
    assert_ptr_equal(in->base.lower, b);
    assert_ptr_equal(strata_buffered_over(&in->base, 64, NULL), in);
    strata_buffered_undo(in, &in->base); /* it was lower itself: kept */
    strata_buffered_undo(in, b);         /* made here: freed, b is not */
    assert_int_equal(strata_write(a, "x", 1), 1);
    assert_int_equal(strata_pipe_pending(b), 1);
    top = strata_buffered_new(b, 16, NULL);
    strata_free(top);
    strata_free(a);
}

static int build(strata_stream *a, strata_stream *b, strata_stream **ta,
                 strata_stream **tb, void *ud)
{
    size_t cap = *(size_t *)ud;

    *ta = strata_buffered_new(a, cap, NULL);
    *tb = strata_buffered_new(b, cap, NULL);
    return *ta && *tb ? 0 : -1;
}

static void test_property(void **state)
{
    static size_t caps[] = {1, 7, 4096};
    strata_prop_opts o;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < 3; i++) {
        memset(&o, 0, sizeof o);
        o.seed = strata_test_seed();
        o.messages = 10000;
        o.max_size = 2000;
        o.max_fragment = 300;
        o.max_read = 3000;
        o.byte_stream = 1;
        o.duplex = 1;
        o.pipe.capacity = 1500;
        o.pipe.max_chunk = 9;
        o.pipe.need_percent = 25;
        o.pipe.seed = o.seed;
        if (strata_prop_run(&o, build, NULL, &caps[i], err, sizeof err))
            fail_msg("%s", err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peek_consume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_one_byte_at_a_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eof_and_truncation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_direct_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_exact, setup, teardown),
        cmocka_unit_test(test_new_and_free),
        cmocka_unit_test(test_over_and_undo),
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
