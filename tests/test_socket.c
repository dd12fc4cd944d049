/* The socket stream over real loopback sockets: TCP over IPv4 and IPv6,
 * Unix-domain sockets and socketpairs. Every wait is a poll() with a
 * timeout, so a broken stream fails the test instead of hanging it.
 * SIGPIPE is left at its default on purpose: a send without MSG_NOSIGNAL
 * to a vanished peer would kill the test, which is the assertion. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/socket.h>

#include "harness.h"

#define WAIT_MS 5000

/* Wait until fd has one of events; fail the test after WAIT_MS. */
static short wait_fd(int fd, short events, int ms)
{
    struct pollfd p;
    int r;

    p.fd = fd;
    p.events = events;
    p.revents = 0;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    assert_int_equal(r, 1);
    return p.revents;
}

/* Wait for what the stream says its descriptor must wait for. */
static void wait_wants(strata_stream *s)
{
    unsigned w = strata_wants(s);
    short ev = 0;

    assert_true(w != 0);
    if (w & STRATA_WANT_READ)
        ev |= POLLIN;
    if (w & STRATA_WANT_WRITE)
        ev |= POLLOUT;
    wait_fd(strata_fd(s), ev, WAIT_MS);
}

static void send_all(strata_stream *s, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    size_t off = 0;

    while (off < n) {
        ssize_t r = strata_send(s, p + off, n - off, 0);

        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        assert_int_equal(r, STRATA_NEED_WRITE);
        wait_wants(s);
    }
}

static void recv_exact(strata_stream *s, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t off = 0;

    while (off < n) {
        ssize_t r = strata_read(s, p + off, n - off);

        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        assert_int_equal(r, STRATA_NEED_READ);
        assert_int_equal(strata_wants(s), STRATA_WANT_READ);
        wait_wants(s);
    }
}

/* The next recv result that is not NEED_READ. */
static ssize_t recv_wait(strata_stream *s, void *buf, size_t n)
{
    ssize_t r;

    while ((r = strata_read(s, buf, n)) == STRATA_NEED_READ)
        wait_fd(strata_fd(s), POLLIN, WAIT_MS);
    return r;
}

static void accept_one(int lfd, strata_stream **out)
{
    int r;

    while ((r = strata_accept(lfd, NULL, out)) == STRATA_NEED_READ)
        wait_fd(lfd, POLLIN, WAIT_MS);
    assert_int_equal(r, 0);
    assert_non_null(*out);
}

/* Flush until the connect is confirmed. */
static void finish_connect(strata_stream *c)
{
    int r;

    while ((r = strata_flush(c)) == STRATA_NEED_WRITE)
        wait_wants(c);
    assert_int_equal(r, 0);
    assert_int_equal(strata_wants(c), 0);
}

/* A connected TCP pair on host; -1 when host cannot be listened on. */
static int tcp_pair(const char *host, strata_stream **c, strata_stream **s)
{
    char port[16];
    int lfd = strata_tcp_listen(host, "0", 8);

    if (lfd < 0)
        return -1;
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    if (strata_tcp_connect(host, port, NULL, c) != 0) {
        close(lfd);
        return -1;
    }
    accept_one(lfd, s);
    finish_connect(*c);
    close(lfd);
    return 0;
}

static void socket_pair(strata_stream **a, strata_stream **b)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    *a = strata_socket_new(sv[0], NULL);
    *b = strata_socket_new(sv[1], NULL);
    assert_non_null(*a);
    assert_non_null(*b);
}

/* Data both ways, and what poll says around it. */
static void exchange(strata_stream *c, strata_stream *s)
{
    char buf[16];

    assert_string_equal(strata_name(c), "socket");
    assert_true(strata_fd(c) >= 0);
    assert_int_equal(strata_poll(s, STRATA_POLL_IN), 0);
    assert_int_equal(strata_read(s, buf, sizeof buf), STRATA_NEED_READ);
    send_all(c, "hello", 5);
    wait_fd(strata_fd(s), POLLIN, WAIT_MS);
    assert_int_equal(strata_poll(s, STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_IN | STRATA_POLL_OUT);
    recv_exact(s, buf, 5);
    assert_memory_equal(buf, "hello", 5);
    send_all(s, "world!", 6);
    recv_exact(c, buf, 6);
    assert_memory_equal(buf, "world!", 6);
}

static void test_tcp4(void **state)
{
    strata_stream *c, *s;
    int port;

    (void)state;
    assert_int_equal(tcp_pair("127.0.0.1", &c, &s), 0);
    exchange(c, s);
    port = strata_local_port(strata_fd(s));
    assert_true(port > 0);
    assert_int_not_equal(port, strata_local_port(strata_fd(c)));
    strata_free(c);
    strata_free(s);
}

static void test_tcp6(void **state)
{
    strata_stream *c, *s;

    (void)state;
    if (tcp_pair("::1", &c, &s) != 0) {
        skip(); /* no IPv6 loopback here */
        return;
    }
    exchange(c, s);
    strata_free(c);
    strata_free(s);
}

/* No host: one listener for every address, IPv4 and (where there is
 * IPv6) IPv6 clients alike. */
static void test_listen_any(void **state)
{
    const char *hosts[] = {"127.0.0.1", "::1"};
    char port[16];
    strata_stream *c, *s;
    int lfd = strata_tcp_listen(NULL, "0", 4), i;

    (void)state;
    assert_true(lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    for (i = 0; i < 2; i++) {
        int r = strata_tcp_connect(hosts[i], port, NULL, &c);

        while (r == 0 && (r = strata_flush(c)) == STRATA_NEED_WRITE)
            wait_wants(c);
        if (r != 0) {
            assert_int_equal(i, 1); /* only IPv6 may be missing */
            strata_free(c);
            break;
        }
        accept_one(lfd, &s);
        exchange(c, s);
        strata_free(c);
        strata_free(s);
    }
    close(lfd);
    lfd = strata_tcp_listen("", "0", 4);
    assert_true(lfd >= 0);
    close(lfd);
}

static void test_unix(void **state)
{
    char dir[] = "/tmp/strata_sock_XXXXXX";
    char path[sizeof dir + 8];
    strata_stream *c, *s;
    int lfd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sock", dir);
    assert_int_equal(strata_unix_connect(path, NULL, &c), STRATA_ERR_IO);
    assert_null(c);
    lfd = strata_unix_listen(path, 4);
    assert_true(lfd >= 0);
    assert_true(strata_local_port(lfd) < 0); /* no port on a Unix socket */
    close(lfd);
    /* The socket file left behind is replaced, as a restarted server
     * needs. */
    lfd = strata_unix_listen(path, 4);
    assert_true(lfd >= 0);
    assert_int_equal(strata_accept(lfd, NULL, &s), STRATA_NEED_READ);
    assert_int_equal(strata_unix_connect(path, NULL, &c), 0);
    accept_one(lfd, &s);
    finish_connect(c);
    exchange(c, s);
    strata_free(c);
    strata_free(s);
    close(lfd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_accept_need_read(void **state)
{
    strata_stream *s = (strata_stream *)&s;
    int lfd = strata_tcp_listen("127.0.0.1", "0", 4);

    (void)state;
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(strata_accept(lfd, NULL, &s), STRATA_NEED_READ);
    assert_null(s);
    assert_int_equal(strata_accept(lfd, NULL, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_accept(-1, NULL, &s), STRATA_ERR_ARG);
    close(lfd);
}

/* Port of the peer of fd (to match an accepted socket to its client). */
static int peer_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;

    assert_int_equal(getpeername(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* Connect without strata to fill the listener's queue. */
static int raw_connect(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        assert_int_equal(errno, EINPROGRESS);
    return fd;
}

static int connected_soon(int fd)
{
    struct pollfd p;

    p.fd = fd;
    p.events = POLLOUT;
    p.revents = 0;
    return poll(&p, 1, 200) == 1;
}

/* Accept from lfd until the peer of client c is among the accepted; the
 * others are closed. Bounded by the deadline of wait_fd. */
static strata_stream *accept_peer_of(int lfd, strata_stream *c)
{
    int want = strata_local_port(strata_fd(c));

    for (;;) {
        strata_stream *s;
        int r = strata_accept(lfd, NULL, &s);

        if (r == STRATA_NEED_READ) {
            wait_fd(lfd, POLLIN, 2 * WAIT_MS);
            continue;
        }
        assert_int_equal(r, 0);
        if (peer_port(strata_fd(s)) == want)
            return s;
        strata_free(s);
    }
}

/* A listener whose queue is full drops SYNs, so a connect stays in
 * progress: every call says NEED_WRITE until the listener makes room and
 * the kernel's SYN retry gets through. */
static void test_connect_in_progress(void **state)
{
    char port[16], buf[4];
    int fillers[16], nf = 0, i, lfd = strata_tcp_listen("127.0.0.1", "0", 1);
    strata_stream *c, *s;
    int r;

    (void)state;
    assert_true(lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    do
        fillers[nf] = raw_connect(strata_local_port(lfd));
    while (connected_soon(fillers[nf++]) && nf < 16);
    if (nf == 16) {
        for (i = 0; i < nf; i++)
            close(fillers[i]);
        close(lfd);
        skip(); /* this kernel never leaves a connect in progress */
        return;
    }
    assert_int_equal(strata_tcp_connect("127.0.0.1", port, NULL, &c), 0);
    assert_int_equal(strata_wants(c), STRATA_WANT_WRITE);
    assert_int_equal(strata_send(c, "ping", 4, 0), STRATA_NEED_WRITE);
    assert_int_equal(strata_wants(c), STRATA_WANT_WRITE);
    assert_int_equal(strata_read(c, buf, sizeof buf), STRATA_NEED_WRITE);
    assert_int_equal(strata_flush(c), STRATA_NEED_WRITE);
    assert_int_equal(strata_shutdown(c), STRATA_NEED_WRITE);
    assert_int_equal(strata_poll(c, STRATA_POLL_OUT), 0);
    /* Make room: accept (and drop) whatever is queued until our client's
     * connection comes through, then the same send completes. */
    s = accept_peer_of(lfd, c);
    while ((r = (int)strata_send(c, "ping", 4, 0)) == STRATA_NEED_WRITE)
        wait_wants(c);
    assert_int_equal(r, 4);
    recv_exact(s, buf, 4);
    assert_memory_equal(buf, "ping", 4);
    strata_free(c);
    strata_free(s);
    for (i = 0; i < nf; i++)
        close(fillers[i]);
    close(lfd);
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void small_buffers(strata_stream *c, strata_stream *s)
{
    int small = 4096;

    assert_int_equal(setsockopt(strata_fd(c), SOL_SOCKET, SO_SNDBUF, &small,
                                sizeof small), 0);
    assert_int_equal(setsockopt(strata_fd(s), SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof small), 0);
}

/* The writer fills the socket until NEED_WRITE; the reader then drains in
 * small steps and the writer finishes; the bytes arrive intact. */
static void test_slow_reader(void **state)
{
    enum { TOTAL = 128 * 1024, STEP = 1000 };
    uint8_t *out = malloc(TOTAL), *in = malloc(TOTAL);
    size_t sent = 0, got = 0;
    strata_stream *c, *s;
    ssize_t r;

    (void)state;
    assert_non_null(out);
    assert_non_null(in);
    fill_random(out, TOTAL, 7);
    assert_int_equal(tcp_pair("127.0.0.1", &c, &s), 0);
    small_buffers(c, s);
    while ((r = strata_send(c, out + sent, TOTAL - sent, 0)) > 0)
        sent += (size_t)r;
    assert_int_equal(r, STRATA_NEED_WRITE);
    assert_true(sent < TOTAL);
    assert_int_equal(strata_wants(c), STRATA_WANT_WRITE);
    while (got < TOTAL) {
        size_t want = TOTAL - got < STEP ? TOTAL - got : STEP;

        r = recv_wait(s, in + got, want);
        assert_true(r > 0);
        got += (size_t)r;
        /* Optimistic: try whenever the reader made room, no waiting. */
        while (sent < TOTAL &&
               (r = strata_send(c, out + sent, TOTAL - sent, 0)) > 0)
            sent += (size_t)r;
        if (sent < TOTAL)
            assert_int_equal(r, STRATA_NEED_WRITE);
    }
    assert_int_equal(sent, TOTAL);
    assert_memory_equal(in, out, TOTAL);
    strata_free(c);
    strata_free(s);
    free(out);
    free(in);
}

static void test_half_close(void **state)
{
    strata_stream *c, *s;
    char buf[16];

    (void)state;
    assert_int_equal(tcp_pair("127.0.0.1", &c, &s), 0);
    send_all(c, "last", 4);
    assert_int_equal(strata_shutdown(c), 0);
    assert_int_equal(strata_shutdown(c), 0); /* a second one is harmless */
    assert_int_equal(strata_send(c, "x", 1, 0), STRATA_ERR_STATE);
    assert_int_equal(strata_write(c, "x", 1), STRATA_ERR_STATE);
    recv_exact(s, buf, 4);
    assert_memory_equal(buf, "last", 4);
    assert_int_equal(recv_wait(s, buf, sizeof buf), STRATA_EOF);
    assert_true(strata_poll(s, STRATA_POLL_IN) & STRATA_POLL_HUP);
    assert_int_equal(strata_read(s, buf, sizeof buf), STRATA_EOF);
    /* The other direction still works. */
    send_all(s, "reply", 5);
    recv_exact(c, buf, 5);
    assert_memory_equal(buf, "reply", 5);
    assert_int_equal(strata_shutdown(s), 0);
    assert_int_equal(recv_wait(c, buf, sizeof buf), STRATA_EOF);
    strata_free(c);
    strata_free(s);
}

static void test_refused(void **state)
{
    char port[16];
    strata_stream *c = NULL;
    int lfd = strata_tcp_listen("127.0.0.1", "0", 4), r;

    (void)state;
    assert_true(lfd >= 0);
    snprintf(port, sizeof port, "%d", strata_local_port(lfd));
    close(lfd); /* nobody listens there now */
    r = strata_tcp_connect("127.0.0.1", port, NULL, &c);
    if (r == STRATA_ERR_IO) { /* refused at once */
        assert_int_equal(errno, ECONNREFUSED);
        assert_null(c);
        return;
    }
    assert_int_equal(r, 0);
    while ((r = (int)strata_send(c, "x", 1, 0)) == STRATA_NEED_WRITE)
        wait_wants(c);
    assert_int_equal(r, STRATA_ERR_IO);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(strata_socket_errno(c), ECONNREFUSED);
    assert_int_equal(strata_wants(c), 0); /* nothing to wait for now */
    /* The stream stays failed. */
    errno = 0;
    assert_int_equal(strata_read(c, port, sizeof port), STRATA_ERR_IO);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(strata_poll(c, STRATA_POLL_IN), STRATA_POLL_ERR);
    strata_free(c);
}

/* Sends to a peer that closed end in STRATA_ERR_IO, not in SIGPIPE. */
static void test_peer_gone_tcp(void **state)
{
    static uint8_t chunk[4096];
    strata_stream *c, *s;
    ssize_t r = 0;
    int i;

    (void)state;
    assert_int_equal(tcp_pair("127.0.0.1", &c, &s), 0);
    strata_free(s);
    for (i = 0; i < 200; i++) {
        r = strata_send(c, chunk, sizeof chunk, 0);
        if (r == STRATA_ERR_IO)
            break;
        if (r == STRATA_NEED_WRITE)
            wait_wants(c);
        else
            (void)poll(NULL, 0, 20); /* let the peer's RST arrive */
    }
    assert_int_equal(r, STRATA_ERR_IO);
    assert_true(strata_socket_errno(c) == EPIPE ||
                strata_socket_errno(c) == ECONNRESET);
    assert_int_equal(strata_send(c, chunk, 1, 0), STRATA_ERR_IO);
    strata_free(c);
}

static void test_peer_gone_unix(void **state)
{
    strata_stream *a, *b;

    (void)state;
    socket_pair(&a, &b);
    strata_free(b);
    assert_int_equal(strata_send(a, "x", 1, 0), STRATA_ERR_IO);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(strata_socket_errno(a), EPIPE);
    strata_free(a);
}

static void test_recv_closed_peer(void **state)
{
    strata_stream *c, *s;
    char buf[8];

    (void)state;
    assert_int_equal(tcp_pair("127.0.0.1", &c, &s), 0);
    send_all(s, "bye", 3);
    strata_free(s);
    recv_exact(c, buf, 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(recv_wait(c, buf, sizeof buf), STRATA_EOF);
    assert_true(strata_poll(c, STRATA_POLL_IN) & STRATA_POLL_HUP);
    assert_int_equal(strata_socket_errno(c), 0);
    strata_free(c);
}

static void test_poll_and_wants(void **state)
{
    strata_stream *a, *b;
    char buf[8];

    (void)state;
    socket_pair(&a, &b);
    assert_int_equal(strata_wants(a), 0);
    assert_int_equal(strata_poll(a, STRATA_POLL_IN), 0);
    assert_int_equal(strata_poll(a, STRATA_POLL_OUT), STRATA_POLL_OUT);
    /* Only what was asked for (HUP and ERR excepted). */
    assert_int_equal(strata_poll(a, 0), 0);
    assert_int_equal(strata_read(a, buf, sizeof buf), STRATA_NEED_READ);
    assert_int_equal(strata_wants(a), STRATA_WANT_READ);
    send_all(b, "abc", 3);
    assert_int_equal(strata_poll(a, STRATA_POLL_IN | STRATA_POLL_OUT),
                     STRATA_POLL_IN | STRATA_POLL_OUT);
    assert_int_equal(strata_read(a, buf, sizeof buf), 3);
    assert_int_equal(strata_wants(a), 0);
    strata_free(a);
    strata_free(b);
}

static void test_sendv_iovecs(void **state)
{
    static uint8_t many[2000], in[2000];
    struct iovec iov[2001];
    strata_stream *a, *b;
    size_t off = 0;
    ssize_t r;
    int i;

    (void)state;
    socket_pair(&a, &b);
    iov[0].iov_base = "ab";
    iov[0].iov_len = 2;
    iov[1].iov_base = NULL;
    iov[1].iov_len = 0;
    iov[2].iov_base = "cde";
    iov[2].iov_len = 3;
    iov[3].iov_base = "f";
    iov[3].iov_len = 1;
    assert_int_equal(strata_sendv(a, iov, 4, STRATA_MSG_END), 6);
    recv_exact(b, in, 6);
    assert_memory_equal(in, "abcdef", 6);
    assert_int_equal(strata_sendv(a, iov, 0, 0), 0);
    /* More entries than IOV_MAX: sent in parts, in order. */
    fill_random(many, sizeof many, 3);
    for (i = 0; i < 2000; i++) {
        iov[i].iov_base = many + i;
        iov[i].iov_len = 1;
    }
    while (off < sizeof many) {
        r = strata_sendv(a, iov + off, (int)(sizeof many - off), 0);
        assert_true(r > 0);
        off += (size_t)r;
    }
    recv_exact(b, in, sizeof many);
    assert_memory_equal(in, many, sizeof many);
    /* A non-empty request behind more than IOV_MAX empty entries still
     * moves its byte: never 0 for bytes. */
    for (i = 0; i < 2000; i++) {
        iov[i].iov_base = NULL;
        iov[i].iov_len = 0;
    }
    iov[2000].iov_base = "z";
    iov[2000].iov_len = 1;
    assert_int_equal(strata_sendv(a, iov, 2001, 0), 1);
    recv_exact(b, in, 1);
    assert_int_equal(in[0], 'z');
    strata_free(a);
    strata_free(b);
}

static void test_misuse(void **state)
{
    char longpath[200], buf[4];
    strata_stream *a, *b, *s = NULL;
    struct iovec iov = {.iov_base = NULL, .iov_len = 3};

    (void)state;
    socket_pair(&a, &b);
    assert_int_equal(strata_recv(NULL, buf, 1, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_read(a, NULL, 1), STRATA_ERR_ARG);
    assert_int_equal(strata_read(a, buf, 0), 0);
    assert_int_equal(strata_send(NULL, "x", 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(a, NULL, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_send(a, "x", 0, 0), 0);
    assert_int_equal(strata_sendv(a, NULL, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(a, &iov, 1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_sendv(a, &iov, -1, 0), STRATA_ERR_ARG);
    assert_int_equal(strata_fd(NULL), -1);
    assert_int_equal(strata_socket_errno(NULL), 0);
    assert_int_equal(strata_tcp_connect(NULL, "1", NULL, &s), STRATA_ERR_ARG);
    assert_int_equal(strata_tcp_connect("127.0.0.1", NULL, NULL, &s),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_tcp_connect("127.0.0.1", "1", NULL, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_tcp_listen("127.0.0.1", NULL, 1), STRATA_ERR_ARG);
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(strata_unix_connect(longpath, NULL, &s), STRATA_ERR_ARG);
    assert_int_equal(strata_unix_connect(NULL, NULL, &s), STRATA_ERR_ARG);
    assert_int_equal(strata_unix_listen(longpath, 1), STRATA_ERR_ARG);
    assert_int_equal(strata_unix_listen("", 1), STRATA_ERR_ARG);
    assert_int_equal(strata_local_port(-1), STRATA_ERR_ARG);
    assert_true(strata_local_port(strata_fd(a)) < 0);
    strata_free(a);
    strata_free(b);
    /* A descriptor that is not open: a stream that fails every call. */
    s = strata_socket_new(-1, NULL);
    assert_non_null(s);
    assert_int_equal(strata_read(s, buf, 1), STRATA_ERR_IO);
    assert_int_equal(strata_socket_errno(s), EBADF);
    assert_int_equal(strata_send(s, "x", 1, 0), STRATA_ERR_IO);
    assert_int_equal(strata_poll(s, STRATA_POLL_IN), STRATA_POLL_ERR);
    strata_free(s);
}

static void test_ownership(void **state)
{
    strata_test_counter cnt = {0, 0, 0, 0};
    strata_allocator al = strata_test_allocator(&cnt);
    strata_socket sk;
    strata_stream *s;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Caller storage, descriptor not owned: free leaves it open. */
    strata_socket_init(&sk, sv[0], 0);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(strata_fd(&sk.base), sv[0]);
    send_all(&sk.base, "x", 1);
    strata_free(&sk.base);
    assert_true(fcntl(sv[0], F_GETFD) >= 0);
    /* Heap stream through the allocator: free closes and deallocates. */
    s = strata_socket_new(sv[0], &al);
    assert_non_null(s);
    assert_int_equal(cnt.live, 1);
    strata_free(s);
    assert_int_equal(cnt.live, 0);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1);
    /* A refused allocation leaves the descriptor to the caller. */
    cnt.refuse = 1;
    assert_null(strata_socket_new(sv[1], &al));
    assert_true(fcntl(sv[1], F_GETFD) >= 0);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),
        cmocka_unit_test(test_tcp6),
        cmocka_unit_test(test_listen_any),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_accept_need_read),
        cmocka_unit_test(test_connect_in_progress),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_peer_gone_tcp),
        cmocka_unit_test(test_peer_gone_unix),
        cmocka_unit_test(test_recv_closed_peer),
        cmocka_unit_test(test_poll_and_wants),
        cmocka_unit_test(test_sendv_iovecs),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_ownership),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
