/* The pipe pair: bounded capacity, the schedule (chunk sizes, injected NEED
 * codes, reproducible by seed), EOF and close semantics, poll. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <strata/pipe.h>

static void test_capacity(void **state)
{
    strata_pipe_opts o = {8, 0, 0, 1};
    strata_stream *a, *b;
    char out[16];

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, &o, NULL), 0);
    assert_int_equal(strata_fd(a), -1);
    assert_int_equal(strata_read(b, out, 4), STRATA_NEED_READ);
    assert_int_equal(strata_wants(b), STRATA_WANT_READ);
    assert_int_equal(strata_write(a, "0123456789", 10), 8);
    assert_int_equal(strata_pipe_pending(b), 8);
    assert_int_equal(strata_poll(a, STRATA_POLL_OUT), 0);
    assert_int_equal(strata_write(a, "89", 2), STRATA_NEED_WRITE);
    assert_int_equal(strata_poll(b, STRATA_POLL_IN), STRATA_POLL_IN);
    assert_int_equal(strata_read(b, out, 5), 5);
    assert_memory_equal(out, "01234", 5);
    /* the ring wraps */
    assert_int_equal(strata_write(a, "89ab", 4), 4);
    assert_int_equal(strata_read(b, out, 16), 7);
    assert_memory_equal(out, "56789ab", 7);
    strata_free(a);
    strata_free(b);
}

static void test_sendv_and_chunks(void **state)
{
    strata_pipe_opts o = {64, 1, 0, 7};
    strata_stream *a, *b;
    struct iovec v[3] = {{"ab", 2}, {"", 0}, {"cd", 2}};
    char out[8];
    size_t got = 0;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, &o, NULL), 0);
    /* max_chunk 1: every call moves exactly one byte */
    assert_int_equal(strata_sendv(a, v, 3, 0), 1);
    assert_int_equal(strata_send(a, "bcd", 3, 0), 1);
    assert_int_equal(strata_send(a, "cd", 2, 0), 1);
    assert_int_equal(strata_send(a, "d", 1, 0), 1);
    while (got < 4) {
        assert_int_equal(strata_read(b, out + got, sizeof out - got), 1);
        got++;
    }
    assert_memory_equal(out, "abcd", 4);
    assert_int_equal(strata_send(a, "", 0, STRATA_MSG_END), 0);
    strata_free(a);
    strata_free(b);
}

/* Record the outcome of a fixed call sequence under a schedule. */
static void trace(uint64_t seed, ssize_t *out, int n)
{
    strata_pipe_opts o = {4096, 13, 40, seed};
    strata_stream *a, *b;
    char buf[64] = {0};
    int i;

    assert_int_equal(strata_pipe_pair(&a, &b, &o, NULL), 0);
    for (i = 0; i < n; i++)
        out[i] = i % 2 ? strata_read(b, buf, sizeof buf)
                       : strata_write(a, buf, sizeof buf);
    strata_free(a);
    strata_free(b);
}

static void test_schedule_reproducible(void **state)
{
    ssize_t t1[200], t2[200], t3[200];
    int i, needr = 0, needw = 0, small = 0;

    (void)state;
    trace(42, t1, 200);
    trace(42, t2, 200);
    trace(43, t3, 200);
    assert_memory_equal(t1, t2, sizeof t1);
    assert_memory_not_equal(t1, t3, sizeof t1);
    for (i = 0; i < 200; i++) {
        needr += t1[i] == STRATA_NEED_READ;
        needw += t1[i] == STRATA_NEED_WRITE;
        small += t1[i] > 0 && t1[i] <= 13;
        assert_true(t1[i] <= 13);
    }
    /* both injected codes appear, on both calls, and chunks are bounded */
    assert_true(needr > 5 && needw > 5 && small > 50);
}

static void test_shutdown_and_close(void **state)
{
    strata_stream *a, *b;
    char out[8];

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_write(a, "xy", 2), 2);
    assert_int_equal(strata_shutdown(a), 0);
    assert_int_equal(strata_write(a, "z", 1), STRATA_ERR_STATE);
    /* data sent before the shutdown is still delivered, then EOF */
    assert_true(strata_poll(b, STRATA_POLL_IN) & STRATA_POLL_IN);
    assert_int_equal(strata_read(b, out, sizeof out), 2);
    assert_int_equal(strata_poll(b, STRATA_POLL_IN),
                     STRATA_POLL_IN | STRATA_POLL_HUP);
    assert_int_equal(strata_read(b, out, sizeof out), STRATA_EOF);
    /* half-close: the other direction still works */
    assert_int_equal(strata_write(b, "back", 4), 4);
    assert_int_equal(strata_read(a, out, sizeof out), 4);
    strata_free(a);
    assert_int_equal(strata_write(b, "z", 1), STRATA_ERR_CLOSED);
    strata_free(b);
}

static void test_args(void **state)
{
    strata_stream *a;

    (void)state;
    assert_int_equal(strata_pipe_pair(NULL, &a, NULL, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_pipe_pending(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_sendv_and_chunks),
        cmocka_unit_test(test_schedule_reproducible),
        cmocka_unit_test(test_shutdown_and_close),
        cmocka_unit_test(test_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
