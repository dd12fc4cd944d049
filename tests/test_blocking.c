/* The blocking helpers: strata_wait (timeouts, EINTR), strata_read_full,
 * strata_write_all (partial sends, flush, a slow peer), strata_recv_msg,
 * over loopback TCP, socketpair(), the pipe pair and a scripted stream.
 * Peers that must run while a helper blocks are pthreads; they never call
 * cmocka (its asserts longjmp) but report what they saw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <strata/blocking.h>
#include <strata/line.h>
#include <strata/pipe.h>
#include <strata/socket.h>

/* ---- fixtures ----------------------------------------------------------- */

enum { KIND_UNIX, KIND_TCP };

/* Two connected raw descriptors, blocking: a socketpair or loopback TCP. */
static void make_pair(int kind, int fds[2])
{
    struct sockaddr_in a;
    struct pollfd p;
    int lfd, port;

    if (kind == KIND_UNIX) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        return;
    }
    lfd = strata_tcp_listen("127.0.0.1", "0", 4);
    assert_true(lfd >= 0);
    port = strata_local_port(lfd);
    assert_true(port > 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    p.fd = lfd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    fds[1] = accept(lfd, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(lfd);
}

/* fds[0] wrapped as a stream (it owns the descriptor); fds[1] stays raw. */
static strata_stream *wrapped_pair(int kind, int fds[2])
{
    strata_stream *s;

    make_pair(kind, fds);
    s = strata_socket_new(fds[0], NULL);
    assert_non_null(s);
    return s;
}

static void write_raw(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- peer threads ------------------------------------------------------- */

typedef struct writer {
    int fd;
    const char *data;
    size_t len, chunk;
    long delay_ms;      /* before each chunk */
    int close_after;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    size_t off = 0;

    while (off < w->len) {
        size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;

        sleep_ms(w->delay_ms);
        if (write(w->fd, w->data + off, n) != (ssize_t)n)
            break;
        off += n;
    }
    if (w->close_after)
        shutdown(w->fd, SHUT_WR);
    return NULL;
}

/* Reads until EOF in small, varying pieces with pauses, checking that
 * byte i is (i * 7 + i / 251) & 0xff. */
typedef struct reader {
    int fd;
    size_t got;
    size_t bad_at;      /* first mismatch + 1, 0 if none */
} reader;

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + i / 251) & 0xff);
}

static void *slow_reader_main(void *arg)
{
    reader *r = arg;
    unsigned char buf[3000];
    unsigned calls = 0;

    for (;;) {
        size_t want = 1 + (calls * 977u) % sizeof buf;
        ssize_t n = read(r->fd, buf, want);
        ssize_t i;

        if (n <= 0)
            break;
        for (i = 0; i < n; i++)
            if (r->bad_at == 0 && buf[i] != pattern(r->got + (size_t)i))
                r->bad_at = r->got + (size_t)i + 1;
        r->got += (size_t)n;
        if (++calls % 64 == 0)
            sleep_ms(1); /* slower than the writer: its sends block */
    }
    return NULL;
}

typedef struct killer {
    pthread_t target;
    long delay_ms;
    int count;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    int i;

    for (i = 0; i < k->count; i++) {
        sleep_ms(k->delay_ms);
        pthread_kill(k->target, SIGUSR1);
    }
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* ---- strata_now_ms, strata_wait ----------------------------------------- */

static void test_now_ms(void **state)
{
    uint64_t a, b;

    (void)state;
    a = strata_now_ms();
    sleep_ms(50);
    b = strata_now_ms();
    assert_true(b >= a + 45);
    assert_true(b < a + 2000);
}

static void wait_timeout(int kind)
{
    int fds[2];
    strata_stream *s = wrapped_pair(kind, fds);
    uint64_t t0, dt;

    t0 = strata_now_ms();
    assert_int_equal(strata_wait(s, STRATA_WANT_READ, 100),
                     STRATA_ERR_TIMEOUT);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 95 && dt < 1000);
    /* Zero timeout: a check, not a wait. */
    assert_int_equal(strata_wait(s, STRATA_WANT_READ, 0), STRATA_ERR_TIMEOUT);
    /* Writable at once. */
    t0 = strata_now_ms();
    assert_int_equal(strata_wait(s, STRATA_WANT_WRITE, 1000), 0);
    assert_true(strata_now_ms() - t0 < 500);
    /* wants 0 with nothing recorded: readable. */
    write_raw(fds[1], "x", 1);
    assert_int_equal(strata_wait(s, 0, 1000), 0);
    strata_free(s);
    close(fds[1]);
}

static void test_wait_timeout_unix(void **state)
{
    (void)state;
    wait_timeout(KIND_UNIX);
}

static void test_wait_timeout_tcp(void **state)
{
    (void)state;
    wait_timeout(KIND_TCP);
}

/* A wait ends when the peer writes, well before its timeout. */
static void test_wait_wakes(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_TCP, fds);
    writer w = {0, "hello", 5, 5, 60, 0};
    pthread_t th;
    uint64_t t0, dt;

    (void)state;
    w.fd = fds[1];
    t0 = strata_now_ms();
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    assert_int_equal(strata_wait(s, STRATA_WANT_READ, -1), 0);
    dt = strata_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(dt >= 50 && dt < 2000);
    strata_free(s);
    close(fds[1]);
}

/* wants 0 uses what the last NEED code recorded. */
static void test_wait_uses_wants(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    char c;

    (void)state;
    assert_int_equal(strata_read(s, &c, 1), STRATA_NEED_READ);
    assert_int_equal(strata_wants(s), STRATA_WANT_READ);
    assert_int_equal(strata_wait(s, 0, 30), STRATA_ERR_TIMEOUT);
    write_raw(fds[1], "y", 1);
    assert_int_equal(strata_wait(s, 0, 1000), 0);
    strata_free(s);
    close(fds[1]);
}

/* Signals interrupt poll(2); the wait goes on for the time left, so the
 * whole call still takes its timeout, no less and not much more. */
static void test_wait_eintr(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    struct sigaction sa, old;
    killer k;
    pthread_t th;
    uint64_t t0, dt;

    (void)state;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    k.target = pthread_self();
    k.delay_ms = 40;
    k.count = 3;
    t0 = strata_now_ms();
    assert_int_equal(pthread_create(&th, NULL, killer_main, &k), 0);
    assert_int_equal(strata_wait(s, STRATA_WANT_READ, 250),
                     STRATA_ERR_TIMEOUT);
    dt = strata_now_ms() - t0;
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    assert_true(dt >= 245 && dt < 1500);
    strata_free(s);
    close(fds[1]);
}

static void test_wait_args(void **state)
{
    strata_stream *a, *b;
    strata_socket sk;
    int fds[2];

    (void)state;
    assert_int_equal(strata_wait(NULL, 0, 0), STRATA_ERR_ARG);
    /* No descriptor: nothing to wait on, ready at once. */
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_wait(a, STRATA_WANT_READ, -1), 0);
    strata_free(a);
    strata_free(b);
    /* A descriptor closed under the stream: an error, not a hang. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    strata_socket_init(&sk, fds[0], 0);
    close(fds[0]);
    assert_int_equal(strata_wait(&sk.base, STRATA_WANT_READ, -1),
                     STRATA_ERR_IO);
    close(fds[1]);
}

/* ---- strata_read_full --------------------------------------------------- */

static void read_full_exact(int kind)
{
    static char data[10000];
    char buf[sizeof data];
    int fds[2];
    strata_stream *s = wrapped_pair(kind, fds);
    writer w = {0, data, sizeof data, 1000, 5, 0};
    pthread_t th;
    size_t got = 99, i;

    for (i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 13);
    w.fd = fds[1];
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    assert_int_equal(strata_read_full(s, buf, sizeof buf, 10000, &got),
                     (ssize_t)sizeof buf);
    pthread_join(th, NULL);
    assert_int_equal(got, sizeof buf);
    assert_memory_equal(buf, data, sizeof data);
    strata_free(s);
    close(fds[1]);
}

static void test_read_full_exact_unix(void **state)
{
    (void)state;
    read_full_exact(KIND_UNIX);
}

static void test_read_full_exact_tcp(void **state)
{
    (void)state;
    read_full_exact(KIND_TCP);
}

static void test_read_full_eof(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_TCP, fds);
    char buf[8];
    size_t got = 99;

    (void)state;
    shutdown(fds[1], SHUT_WR);
    assert_int_equal(strata_read_full(s, buf, sizeof buf, 1000, &got),
                     STRATA_EOF);
    assert_int_equal(got, 0);
    strata_free(s);
    close(fds[1]);
}

static void test_read_full_truncated(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    char buf[10];
    size_t got = 99;

    (void)state;
    write_raw(fds[1], "abc", 3);
    close(fds[1]);
    assert_int_equal(strata_read_full(s, buf, sizeof buf, 1000, &got),
                     STRATA_ERR_PROTO);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "abc", 3);
    strata_free(s);
}

/* The timeout bounds the whole call, and *got tells what arrived. */
static void test_read_full_timeout(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_TCP, fds);
    char buf[10];
    size_t got = 99;
    uint64_t t0, dt;

    (void)state;
    write_raw(fds[1], "ab", 2);
    t0 = strata_now_ms();
    assert_int_equal(strata_read_full(s, buf, sizeof buf, 100, &got),
                     STRATA_ERR_TIMEOUT);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 95 && dt < 1000);
    assert_int_equal(got, 2);
    strata_free(s);
    close(fds[1]);
}

/* A trickling peer cannot stretch the timeout: each byte arrives within
 * it, but the whole read takes longer. */
static void test_read_full_deadline_is_whole_call(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    writer w = {0, "0123456789", 10, 1, 40, 0};
    pthread_t th;
    char buf[10];
    size_t got = 0;
    uint64_t t0, dt;

    (void)state;
    w.fd = fds[1];
    t0 = strata_now_ms();
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    assert_int_equal(strata_read_full(s, buf, sizeof buf, 150, &got),
                     STRATA_ERR_TIMEOUT);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 145 && dt < 1000);
    assert_true(got >= 1 && got < 10);
    pthread_join(th, NULL);
    strata_free(s);
    close(fds[1]);
}

static void test_read_full_args(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    size_t got = 99;

    (void)state;
    assert_int_equal(strata_read_full(NULL, NULL, 0, 0, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_read_full(s, NULL, 4, 0, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_read_full(s, NULL, 0, 0, &got), 0);
    assert_int_equal(got, 0);
    strata_free(s);
    close(fds[1]);
}

/* Over the pipe pair there is nothing to wait on: the helper retries
 * through small chunks and injected NEED codes (thousands of calls, each
 * retry yielding the CPU: generous deadlines for loaded machines). */
static void test_read_write_pipe(void **state)
{
    strata_pipe_opts o = {0, 7, 30, 42};
    static char data[50000], back[50000];
    strata_stream *a, *b;
    size_t i, got = 0;

    (void)state;
    for (i = 0; i < sizeof data; i++)
        data[i] = (char)(i ^ (i >> 8));
    assert_int_equal(strata_pipe_pair(&a, &b, &o, NULL), 0);
    assert_int_equal(strata_write_all(a, data, sizeof data, 0, 60000),
                     (ssize_t)sizeof data);
    assert_int_equal(strata_read_full(b, back, sizeof back, 60000, &got),
                     (ssize_t)sizeof back);
    assert_memory_equal(back, data, sizeof data);
    /* Empty and nobody feeding it: the deadline still ends the call. */
    assert_int_equal(strata_read_full(b, back, 1, 50, &got),
                     STRATA_ERR_TIMEOUT);
    strata_free(a);
    strata_free(b);
}

/* ---- strata_write_all --------------------------------------------------- */

static void write_all_slow_reader(int kind)
{
    const size_t len = 8u << 20;
    unsigned char *data = malloc(len);
    int fds[2];
    strata_stream *s = wrapped_pair(kind, fds);
    reader r;
    pthread_t th;
    size_t i;

    assert_non_null(data);
    for (i = 0; i < len; i++)
        data[i] = pattern(i);
    memset(&r, 0, sizeof r);
    r.fd = fds[1];
    assert_int_equal(pthread_create(&th, NULL, slow_reader_main, &r), 0);
    assert_int_equal(strata_write_all(s, data, len, STRATA_MSG_END, 60000),
                     (ssize_t)len);
    assert_int_equal(strata_shutdown(s), 0);
    pthread_join(th, NULL);
    assert_int_equal(r.got, len);
    assert_int_equal(r.bad_at, 0);
    free(data);
    strata_free(s);
    close(fds[1]);
}

static void test_write_all_slow_reader_unix(void **state)
{
    (void)state;
    write_all_slow_reader(KIND_UNIX);
}

static void test_write_all_slow_reader_tcp(void **state)
{
    (void)state;
    write_all_slow_reader(KIND_TCP);
}

static void test_write_all_timeout(void **state)
{
    const size_t len = 32u << 20;
    char *data = calloc(1, len);
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_TCP, fds);
    uint64_t t0, dt;

    (void)state;
    assert_non_null(data);
    t0 = strata_now_ms();
    assert_int_equal(strata_write_all(s, data, len, 0, 150),
                     STRATA_ERR_TIMEOUT);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 145 && dt < 2000);
    free(data);
    strata_free(s);
    close(fds[1]);
}

/* A blocked write must sleep even when the socket is readable and an old
 * recv recorded NEED_READ: that record is no reason to wake up. */
static void test_write_all_no_spin_on_stale_read(void **state)
{
    const size_t len = 32u << 20;
    char *data = calloc(1, len);
    int fds[2], small = 4096;
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    char c;
    double c0, used;
    uint64_t t0, dt;

    (void)state;
    assert_non_null(data);
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(strata_read(s, &c, 1), STRATA_NEED_READ);
    write_raw(fds[1], "unread", 6); /* readable from now on */
    t0 = strata_now_ms();
    c0 = cpu_ms();
    assert_int_equal(strata_write_all(s, data, len, 0, 300),
                     STRATA_ERR_TIMEOUT);
    used = cpu_ms() - c0;
    dt = strata_now_ms() - t0;
    assert_true(dt >= 295);
    assert_true(used < (double)dt * 0.5);
    free(data);
    strata_free(s);
    close(fds[1]);
}

static void test_write_all_peer_gone(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    static char data[1 << 20];

    (void)state;
    close(fds[1]);
    /* No SIGPIPE: the socket sends with MSG_NOSIGNAL. */
    assert_int_equal(strata_write_all(s, data, sizeof data, 0, 1000),
                     STRATA_ERR_IO);
    strata_free(s);
}

/* A scripted layer: every send takes at most 3 bytes, every other send
 * says NEED_WRITE first, and flush needs two retries. It records the
 * flags of every send so continuation is checked exactly. */
typedef struct script {
    strata_stream base;
    char got[64];
    size_t len;
    unsigned flags[64];
    int sends, toggle, flush_left, flushes;
} script;

static ssize_t sc_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags)
{
    (void)s;
    (void)buf;
    (void)len;
    (void)flags;
    return STRATA_EOF;
}

static ssize_t sc_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags)
{
    script *sc = (script *)s;
    size_t total = strata_iov_len(iov, n), take;

    if (n > 1)
        return STRATA_ERR_ARG;
    if (total == 0) {
        sc->flags[sc->sends++] = flags;
        return 0;
    }
    sc->toggle = !sc->toggle;
    if (sc->toggle)
        return STRATA_NEED_WRITE;
    take = total < 3 ? total : 3;
    memcpy(sc->got + sc->len, iov[0].iov_base, take);
    sc->len += take;
    sc->flags[sc->sends++] = flags;
    return (ssize_t)take;
}

static int sc_flush(strata_stream *s)
{
    script *sc = (script *)s;

    sc->flushes++;
    if (sc->flush_left > 0) {
        sc->flush_left--;
        return STRATA_NEED_WRITE;
    }
    return 0;
}

static const strata_stream_ops script_ops = {
    "script", sc_recv, sc_sendv, sc_flush, NULL, NULL, NULL, NULL, NULL
};

static void test_write_all_continues_with_same_flags(void **state)
{
    script sc;
    int i;

    (void)state;
    memset(&sc, 0, sizeof sc);
    strata_stream_init(&sc.base, &script_ops, NULL, NULL);
    sc.flush_left = 2;
    assert_int_equal(strata_write_all(&sc.base, "abcdefghij", 10,
                                      STRATA_MSG_END | STRATA_MSG_TEXT, 1000),
                     10);
    assert_int_equal(sc.len, 10);
    assert_memory_equal(sc.got, "abcdefghij", 10);
    assert_int_equal(sc.sends, 4); /* 3 + 3 + 3 + 1 */
    for (i = 0; i < sc.sends; i++)
        assert_int_equal(sc.flags[i], STRATA_MSG_END | STRATA_MSG_TEXT);
    assert_int_equal(sc.flushes, 3);
    /* A zero-length message is one send, not none. */
    sc.sends = 0;
    assert_int_equal(strata_write_all(&sc.base, NULL, 0, STRATA_MSG_END, 0),
                     0);
    assert_int_equal(sc.sends, 1);
    assert_int_equal(sc.flags[0], STRATA_MSG_END);
    assert_int_equal(strata_write_all(NULL, "x", 1, 0, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_write_all(&sc.base, NULL, 1, 0, 0),
                     STRATA_ERR_ARG);
}

/* ---- strata_recv_msg ---------------------------------------------------- */

static strata_stream *line_over_socket(int kind, int fds[2], size_t max_len)
{
    strata_line_opts o = {NULL, 0, max_len, 0};
    strata_stream *l = strata_line_new(wrapped_pair(kind, fds), &o, NULL);

    assert_non_null(l);
    return l;
}

static void test_recv_msg_lines(void **state)
{
    int fds[2];
    strata_stream *l = line_over_socket(KIND_TCP, fds, 0);
    writer w = {0, "hello\nwor", 9, 9, 0, 0};
    writer w2 = {0, "ld\n\nlast\n", 9, 9, 80, 1};
    pthread_t th;
    char buf[64];
    unsigned f = 99;

    (void)state;
    w.fd = w2.fd = fds[1];
    writer_main(&w);
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w2), 0);
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 5000), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_true(f & STRATA_MSG_END);
    /* "wor" is there, "ld\n" comes later: the helper waits for the end. */
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 5000), 5);
    assert_memory_equal(buf, "world", 5);
    /* An empty record is a zero-length message. */
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 5000), 0);
    assert_true(f & STRATA_MSG_END);
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, NULL, 5000), 4);
    assert_memory_equal(buf, "last", 4);
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 5000),
                     STRATA_EOF);
    pthread_join(th, NULL);
    strata_free(l);
    close(fds[1]);
}

/* read_full over a message stream reads bytes across records; empty
 * records add nothing. */
static void test_read_full_over_records(void **state)
{
    int fds[2];
    strata_stream *l = line_over_socket(KIND_UNIX, fds, 0);
    char buf[5];

    (void)state;
    write_raw(fds[1], "\n\nab\n\ncde\n", 10);
    assert_int_equal(strata_read_full(l, buf, sizeof buf, 1000, NULL), 5);
    assert_memory_equal(buf, "abcde", 5);
    strata_free(l);
    close(fds[1]);
}

/* A message longer than the buffer: TOO_BIG, its first bytes in buf, and
 * the rest of it is what the stream delivers next. */
static void test_recv_msg_too_big(void **state)
{
    int fds[2];
    strata_stream *l = line_over_socket(KIND_UNIX, fds, 0);
    char buf[8];
    unsigned f = 0;

    (void)state;
    write_raw(fds[1], "abcdefgh\nxy\n", 12);
    assert_int_equal(strata_recv_msg(l, buf, 3, &f, 1000),
                     STRATA_ERR_TOO_BIG);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 1000), 5);
    assert_memory_equal(buf, "defgh", 5);
    /* Exactly the capacity fits. */
    assert_int_equal(strata_recv_msg(l, buf, 2, &f, 1000), 2);
    assert_memory_equal(buf, "xy", 2);
    assert_int_equal(strata_recv_msg(l, buf, 0, &f, 1000), STRATA_ERR_ARG);
    assert_int_equal(strata_recv_msg(l, buf, sizeof buf, &f, 50),
                     STRATA_ERR_TIMEOUT);
    strata_free(l);
    close(fds[1]);
}

/* A byte stream has no boundaries: bytes, then EOF mid-"message". */
static void test_recv_msg_byte_stream(void **state)
{
    int fds[2];
    strata_stream *s = wrapped_pair(KIND_UNIX, fds);
    char buf[4];

    (void)state;
    write_raw(fds[1], "abcdef", 6);
    assert_int_equal(strata_recv_msg(s, buf, sizeof buf, NULL, 1000),
                     STRATA_ERR_TOO_BIG);
    shutdown(fds[1], SHUT_WR);
    assert_int_equal(strata_recv_msg(s, buf, sizeof buf, NULL, 1000),
                     STRATA_ERR_PROTO);
    assert_int_equal(strata_recv_msg(s, buf, sizeof buf, NULL, 1000),
                     STRATA_EOF);
    strata_free(s);
    close(fds[1]);
}

/* Line records over the pipe pair in tiny chunks with NEED codes. */
static void test_recv_msg_pipe(void **state)
{
    strata_pipe_opts o = {0, 2, 40, 9};
    strata_line_opts lo = {NULL, 0, 0, 0};
    strata_stream *a, *b, *la, *lb;
    char buf[32];
    unsigned f = 0;
    int i;

    (void)state;
    assert_int_equal(strata_pipe_pair(&a, &b, &o, NULL), 0);
    la = strata_line_new(a, &lo, NULL);
    lb = strata_line_new(b, &lo, NULL);
    assert_non_null(la);
    assert_non_null(lb);
    for (i = 0; i < 20; i++)
        assert_int_equal(strata_write_all(la, "record", 6, STRATA_MSG_END,
                                          60000), 6);
    for (i = 0; i < 20; i++) {
        assert_int_equal(strata_recv_msg(lb, buf, sizeof buf, &f, 60000), 6);
        assert_memory_equal(buf, "record", 6);
        assert_true(f & STRATA_MSG_END);
    }
    strata_free(la);
    strata_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test(test_wait_timeout_unix),
        cmocka_unit_test(test_wait_timeout_tcp),
        cmocka_unit_test(test_wait_wakes),
        cmocka_unit_test(test_wait_uses_wants),
        cmocka_unit_test(test_wait_eintr),
        cmocka_unit_test(test_wait_args),
        cmocka_unit_test(test_read_full_exact_unix),
        cmocka_unit_test(test_read_full_exact_tcp),
        cmocka_unit_test(test_read_full_eof),
        cmocka_unit_test(test_read_full_truncated),
        cmocka_unit_test(test_read_full_timeout),
        cmocka_unit_test(test_read_full_deadline_is_whole_call),
        cmocka_unit_test(test_read_full_args),
        cmocka_unit_test(test_read_write_pipe),
        cmocka_unit_test(test_write_all_slow_reader_unix),
        cmocka_unit_test(test_write_all_slow_reader_tcp),
        cmocka_unit_test(test_write_all_timeout),
        cmocka_unit_test(test_write_all_no_spin_on_stale_read),
        cmocka_unit_test(test_write_all_peer_gone),
        cmocka_unit_test(test_write_all_continues_with_same_flags),
        cmocka_unit_test(test_recv_msg_lines),
        cmocka_unit_test(test_recv_msg_too_big),
        cmocka_unit_test(test_read_full_over_records),
        cmocka_unit_test(test_recv_msg_byte_stream),
        cmocka_unit_test(test_recv_msg_pipe),
    };

    /* A hung helper must fail the run, not stall it. */
    alarm(120);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
