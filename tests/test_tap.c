/* The tap layer: what it reports is what crossed, and the stack above it
 * behaves the same with or without it (lines over a hostile pipe). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/tap.h>
#include <strata/line.h>

typedef struct log {
    int calls, ends, errors;
    ssize_t bytes[2];
    const char *label;
} log_t;

static void on_call(void *ud, const char *label, enum strata_tap_dir dir,
                    ssize_t r, unsigned flags)
{
    log_t *l = ud;

    assert_true(r != STRATA_NEED_READ && r != STRATA_NEED_WRITE);
    l->label = label;
    l->calls++;
    if (r >= 0)
        l->bytes[dir] += r;
    else
        l->errors++;
    if (flags & STRATA_MSG_END)
        l->ends++;
}

/* Bytes and flags pass unchanged; counts match; NEED codes pass through
 * without being reported; EOF is reported. */
static void test_pass_through(void **state)
{
    strata_stream *a, *b, *t;
    strata_pipe_opts po = {256, 7, 30, 42};
    log_t l = {0};
    uint8_t out[1000], in[1000];
    size_t sent = 0, got = 0;
    int needs = 0;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    t = strata_tap_new(a, "pipe", on_call, &l, NULL);
    assert_non_null(t);
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (uint8_t)(i * 7);
    while (got < sizeof out) {
        if (sent < sizeof out) {
            ssize_t n = strata_send(t, out + sent, sizeof out - sent, 0);

            if (n >= 0)
                sent += (size_t)n;
            else
                needs += n == STRATA_NEED_WRITE || n == STRATA_NEED_READ;
        }
        ssize_t n = strata_recv(b, in + got, sizeof in - got, NULL);

        if (n > 0)
            got += (size_t)n;
    }
    assert_memory_equal(in, out, sizeof out);
    assert_true(needs > 0);     /* the schedule injected some */
    assert_int_equal(strata_tap_out(t)->bytes, sizeof out);
    assert_int_equal(l.bytes[STRATA_TAP_SEND], sizeof out);
    assert_int_equal((int)strata_tap_out(t)->calls, l.calls);
    assert_string_equal(strata_tap_label(t), "pipe");
    assert_string_equal(l.label, "pipe");
    assert_null(strata_tap_in(b));
    /* the peer ends: the tap reports EOF once it is seen */
    assert_int_equal(strata_shutdown(b), 0);
    while (strata_recv(t, in, sizeof in, NULL) != STRATA_EOF)
        ;
    assert_int_equal(l.errors, 1);
    assert_int_equal(strata_tap_in(t)->bytes, 0);
    strata_free(t);
    strata_free(b);
}

/* Under a line layer: messages above, bytes below; the tap counts the
 * bytes the line layer moved, newline included. */
static void test_under_lines(void **state)
{
    strata_stream *a, *b, *t, *la, *lb;
    log_t l = {0};
    char buf[64];
    unsigned fl = 0;
    ssize_t n;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    t = strata_tap_new(a, "bytes", on_call, &l, NULL);
    la = strata_line_new(t, NULL, NULL);
    lb = strata_line_new(b, NULL, NULL);
    assert_non_null(la);
    assert_non_null(lb);
    assert_int_equal(strata_send(la, "hello", 5, STRATA_MSG_END), 5);
    assert_int_equal(strata_flush(la), 0);
    n = strata_recv(lb, buf, sizeof buf, &fl);
    assert_int_equal(n, 5);
    assert_true(fl & STRATA_MSG_END);
    assert_int_equal(strata_tap_out(t)->bytes, 6);
    assert_int_equal(strata_send(lb, "back", 4, STRATA_MSG_END), 4);
    assert_int_equal(strata_flush(lb), 0);
    n = strata_recv(la, buf, sizeof buf, &fl);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "back", 4);
    assert_int_equal(strata_tap_in(t)->bytes, 5);
    assert_int_equal(l.bytes[STRATA_TAP_RECV], 5);
    /* wants: the tap answers what the stream below it recorded */
    assert_int_equal(strata_recv(la, buf, sizeof buf, &fl),
                     STRATA_NEED_READ);
    assert_true(strata_wants(t) & STRATA_WANT_READ);
    strata_free(la);
    strata_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_through),
        cmocka_unit_test(test_under_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
