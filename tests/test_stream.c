/* The generic calls of streams/stream.h: argument checks, NEED bookkeeping
 * behind strata_wants, defaults of optional operations, ownership on free,
 * the allocator hook, strata_strerror. A scripted fake layer stands in for
 * a layer (it is a layer, not a peer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>

typedef struct fake {
    strata_stream base;
    ssize_t next;      /* what the next recv/send returns */
    unsigned extra;    /* ops->wants */
    int closed;
    int *freed_flag;
} fake;

static ssize_t f_recv(strata_stream *s, void *b, size_t l, unsigned *fl)
{
    (void)b;
    (void)l;
    *fl = STRATA_MSG_END;
    return ((fake *)s)->next;
}

static ssize_t f_sendv(strata_stream *s, const struct iovec *v, int n,
                       unsigned fl)
{
    (void)v;
    (void)n;
    (void)fl;
    return ((fake *)s)->next;
}

static unsigned f_wants(strata_stream *s)
{
    return ((fake *)s)->extra;
}

static void f_close(strata_stream *s)
{
    fake *f = (fake *)s;

    f->closed = 1;
    if (f->freed_flag)
        *f->freed_flag += 1;
}

static const strata_stream_ops fake_ops = {
    "fake", f_recv, f_sendv, NULL, NULL, NULL, f_wants, NULL, f_close,
};

static void fake_init(fake *f, strata_stream *lower)
{
    memset(f, 0, sizeof *f);
    strata_stream_init(&f->base, &fake_ops, lower, NULL);
}

static void test_args(void **state)
{
    fake f;
    char buf[4];
    struct iovec bad = {NULL, 3};

    (void)state;
    fake_init(&f, NULL);
    f.next = 4;
    assert_int_equal(strata_recv(NULL, buf, 4, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_recv(&f.base, NULL, 4, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_send(NULL, buf, 4, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(&f.base, NULL, 4, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(&f.base, NULL, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(&f.base, &bad, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(&f.base, &bad, -1, 0), STRATA_ERR_ARG);
    /* zero-length recv moves nothing and does not reach the layer */
    assert_int_equal(strata_recv(&f.base, NULL, 0, NULL), 0);
    assert_int_equal(strata_read(&f.base, buf, 4), 4);
    assert_int_equal(strata_flush(NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_shutdown(NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_shutdown(&f.base), STRATA_ERR_UNSUPPORTED);
    assert_int_equal(strata_fd(NULL), -1);
    assert_int_equal(strata_fd(&f.base), -1);
    assert_int_equal(strata_poll(NULL, STRATA_POLL_IN), STRATA_POLL_ERR);
    assert_string_equal(strata_name(&f.base), "fake");
    strata_free(NULL);
}

static void test_wants_bookkeeping(void **state)
{
    fake f;
    char buf[4] = "abc";

    (void)state;
    fake_init(&f, NULL);
    assert_int_equal(strata_wants(&f.base), 0);
    f.next = STRATA_NEED_WRITE; /* a recv that waits for writability */
    assert_int_equal(strata_read(&f.base, buf, 4), STRATA_NEED_WRITE);
    assert_int_equal(strata_wants(&f.base), STRATA_WANT_WRITE);
    f.next = STRATA_NEED_READ; /* a send that waits for readability */
    assert_int_equal(strata_write(&f.base, buf, 3), STRATA_NEED_READ);
    assert_int_equal(strata_wants(&f.base),
                     STRATA_WANT_READ | STRATA_WANT_WRITE);
    f.next = 2; /* progress on recv clears only the recv side */
    assert_int_equal(strata_read(&f.base, buf, 4), 2);
    assert_int_equal(strata_wants(&f.base), STRATA_WANT_READ);
    f.next = STRATA_ERR_PROTO; /* a failure is not a wait */
    assert_int_equal(strata_write(&f.base, buf, 3), STRATA_ERR_PROTO);
    assert_int_equal(strata_wants(&f.base), 0);
    f.extra = STRATA_WANT_WRITE; /* a layer's own wants are ORed in */
    assert_int_equal(strata_wants(&f.base), STRATA_WANT_WRITE);
}

static void test_defaults_pass_to_lower(void **state)
{
    strata_stream *a, *b;
    fake f;
    char buf[8];

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    fake_init(&f, a);
    f.base.owns_lower = 0;
    /* shutdown, flush and poll of a layer without them reach the lower */
    assert_int_equal(strata_flush(&f.base), 0);
    assert_int_equal(strata_poll(&f.base, STRATA_POLL_OUT), STRATA_POLL_OUT);
    assert_int_equal(strata_poll(&f.base, STRATA_POLL_IN), 0);
    assert_int_equal(strata_shutdown(&f.base), 0);
    assert_int_equal(strata_read(b, buf, sizeof buf), STRATA_EOF);
    assert_int_equal(strata_fd(&f.base), -1);
    strata_free(&f.base);
    assert_true(f.closed);
    strata_free(a);
    strata_free(b);
}

static int n_alloc, n_free;

static void *count_alloc(void *ud, size_t n)
{
    (void)ud;
    n_alloc++;
    return test_malloc(n);
}

static void count_free(void *ud, void *p)
{
    (void)ud;
    n_free++;
    test_free(p);
}

static void test_allocator_and_ownership(void **state)
{
    strata_allocator al = {count_alloc, NULL, count_free, NULL};
    strata_stream *a, *b;
    fake *top;
    int freed = 0;

    (void)state;
    n_alloc = n_free = 0;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, &al), 0);
    assert_true(n_alloc >= 3);
    top = strata_alloc(&al, sizeof *top);
    fake_init(top, a);
    top->base.alloc = &al;
    top->base.heap = 1;
    top->freed_flag = &freed;
    assert_true(top->base.owns_lower);
    /* freeing the top frees what it owns below, through the hook */
    strata_free(&top->base);
    assert_int_equal(freed, 1);
    strata_free(b);
    assert_int_equal(n_alloc, n_free);
}

static void test_strerror(void **state)
{
    static const int codes[] = {
        STRATA_NEED_READ, STRATA_NEED_WRITE, STRATA_EOF, STRATA_ERR_PROTO,
        STRATA_ERR_TOO_BIG, STRATA_ERR_IO, STRATA_ERR_TLS, STRATA_ERR_NOMEM,
        STRATA_ERR_CLOSED, STRATA_ERR_STATE, STRATA_ERR_ARG,
        STRATA_ERR_TIMEOUT, STRATA_ERR_UNSUPPORTED, STRATA_ERR_TRUNCATED,
        STRATA_ERR_GRPC,
    };
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_not_equal(strata_strerror(codes[i]), "unknown status");
        for (j = 0; j < i; j++)
            assert_string_not_equal(strata_strerror(codes[i]),
                                    strata_strerror(codes[j]));
    }
    assert_string_equal(strata_strerror(-999), "unknown status");
    assert_string_equal(strata_strerror(-5), "unknown status"); /* a gap */
    assert_string_equal(strata_strerror(3), "success");
}

static void test_iov_len(void **state)
{
    struct iovec v[2] = {{NULL, (size_t)-1}, {NULL, 2}};

    (void)state;
    assert_int_equal(strata_iov_len(v, 0), 0);
    assert_true(strata_iov_len(v, 2) == (size_t)-1);
    v[0].iov_len = 5;
    assert_int_equal(strata_iov_len(v, 2), 7);
}

static void test_iov_copy(void **state)
{
    struct iovec v[3] = {{"ab", 2}, {NULL, 0}, {"cde", 3}};
    char out[8] = {0};

    (void)state;
    assert_int_equal(strata_iov_copy(out, v, 3), 5);
    assert_string_equal(out, "abcde");
    assert_int_equal(strata_iov_copy(out, v, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_wants_bookkeeping),
        cmocka_unit_test(test_defaults_pass_to_lower),
        cmocka_unit_test(test_allocator_and_ownership),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_iov_len),
        cmocka_unit_test(test_iov_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
