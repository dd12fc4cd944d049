/* ws_h2_client: strata's WebSocket-over-HTTP/2 client (RFC 8441, prior
 * knowledge over TCP) against another implementation's echo server
 * (python h2 + wsproto, node's http2), started by run_h2.sh.
 *
 *   ws_h2_client HOST PORT PATH [--sockets N] [--deflate]
 *
 * Opens N WebSockets on one connection and runs them side by side: each
 * sends messages of 0 B .. 1 MiB, text and binary (one of them in
 * fragments), reads each echo whole and checks its type and bytes, then
 * closes with 1000 and expects 1000 back. Sends and reads interleave: an
 * echo server streams, and flow control would otherwise stall both ends.
 * --deflate offers permessage-deflate and requires the server to take it.
 * Prints "ok ..." lines and exits 0, or "FAIL ..." and exits 1; the whole
 * run is bounded by RUN_MS.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/blocking.h>
#include <strata/socket.h>
#include <strata/ws_h2.h>

#define RUN_MS 60000
#define MAX_SOCKETS 16
#define BIG ((size_t)1 << 20)
#define FRAG 7000   /* fragment size of the fragmented message */

static const size_t SIZES[] = {0, 1, 125, 126, 127, 65535, 65536, BIG};
#define N_SIZES (sizeof SIZES / sizeof SIZES[0])
#define N_MSGS (2 * N_SIZES + 1)    /* text and binary, + a fragmented one */

typedef struct sock {
    strata_stream *s, *ws;  /* the HTTP/2 stream; the WebSocket on it */
    int id, msg;            /* which message is under way */
    uint8_t *tx, *rx;       /* its bytes; the echo so far */
    size_t len, sent, got;
    unsigned flags;         /* STRATA_MSG_TEXT or 0 */
    int sent_end, closing, done;
    uint64_t rng;
} sock;

_Noreturn static void fail(const char *fmt, ...)
{
    va_list ap;

    printf("FAIL ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    exit(1);
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Message k of a socket: its bytes in q->tx, length and type. Text is
 * valid UTF-8 of exactly len bytes with 2- and 3-byte characters. */
static void make_msg(sock *q, int k)
{
    size_t i = 0, n;

    q->msg = k;
    q->len = k < 2 * (int)N_SIZES ? SIZES[k / 2] : 300000;
    q->flags = k % 2 == 0 || k == 2 * (int)N_SIZES ? STRATA_MSG_TEXT : 0;
    q->sent = q->got = 0;
    q->sent_end = 0;
    n = q->len;
    while (i < n) {
        uint64_t r = next_rand(&q->rng);

        if (!q->flags) {
            q->tx[i++] = (uint8_t)r;
        } else if (r % 5 == 0 && n - i >= 3) {
            memcpy(q->tx + i, "\xe2\x9c\x93", 3);
            i += 3;
        } else if (r % 7 == 0 && n - i >= 2) {
            memcpy(q->tx + i, "\xc3\xa9", 2);
            i += 2;
        } else {
            q->tx[i++] = (uint8_t)('a' + r % 26);
        }
    }
}

/* Send more of the message: the fragmented one ends a frame every FRAG
 * bytes (splitting characters: fragments need not be whole text). */
static int send_some(sock *q)
{
    int fragmented = q->msg == 2 * (int)N_SIZES;
    size_t end = fragmented ? (q->sent / FRAG + 1) * FRAG : q->len;
    ssize_t n;

    if (end > q->len)
        end = q->len;
    if (q->sent_end)
        return STRATA_NEED_READ;    /* all went: wait for the echo */
    n = strata_send(q->ws, q->tx + q->sent, end - q->sent,
                    q->flags | (end == q->len ? STRATA_MSG_END : 0));
    if (n < 0)
        return (int)n;
    q->sent += (size_t)n;
    q->sent_end = q->sent == q->len;
    return 0;
}

/* Read more of the echo; at its end check it and start the next. */
static int read_some(sock *q)
{
    unsigned fl = 0;
    int k = q->msg;
    ssize_t n = strata_recv(q->ws, q->rx + q->got, BIG + 1 - q->got, &fl);

    if (n < 0)
        return (int)n;
    q->got += (size_t)n;
    if ((fl & STRATA_MSG_TEXT) != q->flags)
        fail("socket %d message %d: sent %s, echo is %s", q->id, k,
             q->flags ? "text" : "binary", q->flags ? "binary" : "text");
    if (q->got > q->len || q->got > q->sent)
        fail("socket %d message %d: %zu bytes came back, %zu sent", q->id,
             k, q->got, q->sent);
    if (!(fl & STRATA_MSG_END))
        return 0;
    if (q->got != q->len || memcmp(q->rx, q->tx, q->len) != 0)
        fail("socket %d message %d (%s, %zu bytes): echo differs (%zu "
             "bytes)", q->id, k, q->flags ? "text" : "binary", q->len,
             q->got);
    if (k + 1 < (int)N_MSGS)
        make_msg(q, k + 1);
    else
        q->closing = 1;
    return 0;
}

/* Our close 1000, then the server's. 1 when done. */
static int close_some(sock *q)
{
    uint8_t b[16];
    ssize_t n;
    int r = strata_shutdown(q->ws);

    if (r != 0)
        return r;
    n = strata_read(q->ws, b, sizeof b);
    if (n >= 0)
        fail("socket %d: data after our close", q->id);
    if (n != STRATA_EOF)
        return (int)n;
    if (strata_ws_close_code(q->ws) != STRATA_WS_NORMAL)
        fail("socket %d: server closed with %u", q->id,
             strata_ws_close_code(q->ws));
    return 1;
}

/* One socket as far as it goes: 0 when it waits, 1 when it moved. */
static int step(sock *q)
{
    int r, moved = 0;

    while (!q->done) {
        if (q->closing) {
            r = close_some(q);
            if (r == 1) {
                q->done = 1;
                printf("ok socket %d: %d messages echoed, closed 1000\n",
                       q->id, (int)N_MSGS);
                return 1;
            }
        } else {
            r = send_some(q);
            if (r == 0 || is_need(r)) {
                int r2 = read_some(q);

                r = r == 0 ? 0 : r2;
            }
        }
        if (is_need(r))
            return moved;
        if (r != 0)
            fail("socket %d message %d: %s (close sent %u, peer's %u)",
                 q->id, q->msg, strata_strerror(r),
                 strata_ws_error_code(q->ws), strata_ws_close_code(q->ws));
        moved = 1;
    }
    return moved;
}

static void wait_conn(strata_h2 *h)
{
    unsigned w = strata_h2_wants(h);
    struct pollfd p = {strata_h2_fd(h), 0, 0};

    p.events = (short)((w & STRATA_WANT_READ ? POLLIN : 0) |
                       (w & STRATA_WANT_WRITE ? POLLOUT : 0));
    if (poll(&p, 1, 1000) < 0)
        fail("poll");
}

/* Open every WebSocket: requests first, then the answers. */
static void open_all(strata_h2 *h, sock *q, int n, const strata_ws_opts *o,
                     uint64_t deadline)
{
    int i, r, open = 0;

    for (i = 0; i < n; i++) {
        while (is_need(r = strata_ws_h2_open(h, o, "http", &q[i].s)) &&
               strata_now_ms() < deadline)
            wait_conn(h);
        if (r != 0)
            fail("socket %d: extended CONNECT: %s", i, strata_strerror(r));
    }
    while (open < n) {
        for (i = 0; i < n; i++) {
            if (q[i].ws != NULL)
                continue;
            r = strata_ws_h2_client(q[i].s, o, NULL, &q[i].ws);
            if (r == 0) {
                open++;
                if (strata_ws_deflate(q[i].ws) != o->deflate.enable)
                    fail("socket %d: deflate %d, wanted %d", i,
                         strata_ws_deflate(q[i].ws), o->deflate.enable);
            } else if (!is_need(r)) {
                fail("socket %d: refused: %s, :status %d", i,
                     strata_strerror(r), strata_h2_status(q[i].s));
            }
        }
        if (open < n) {
            if (strata_now_ms() > deadline)
                fail("timed out opening the WebSockets");
            wait_conn(h);
        }
    }
    printf("ok %d WebSockets open on one connection%s\n", n,
           o->deflate.enable ? " (permessage-deflate)" : "");
}

int main(int argc, char **argv)
{
    static sock socks[MAX_SOCKETS];
    char authority[300];
    strata_ws_opts o = {0};
    strata_h2_opts ho = {.role = STRATA_H2_CLIENT};
    strata_stream *tcp;
    strata_h2 *h;
    uint64_t deadline = strata_now_ms() + RUN_MS;
    int n = 3, i, left;

    if (argc < 4)
        fail("usage: ws_h2_client HOST PORT PATH [--sockets N] [--deflate]");
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--sockets") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--deflate") == 0)
            o.deflate.enable = 1;
        else
            fail("unknown option %s", argv[i]);
    }
    if (n < 1 || n > MAX_SOCKETS)
        fail("--sockets %d: 1..%d", n, MAX_SOCKETS);
    snprintf(authority, sizeof authority, "%s:%s", argv[1], argv[2]);
    o.host = authority;
    o.path = argv[3];
    if (strata_tcp_connect(argv[1], argv[2], NULL, &tcp) != 0 ||
        (h = strata_h2_new(tcp, &ho, NULL)) == NULL)
        fail("cannot connect to %s", authority);
    open_all(h, socks, n, &o, deadline);
    for (i = 0; i < n; i++) {
        socks[i].id = i;
        socks[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        socks[i].tx = malloc(BIG);
        socks[i].rx = malloc(BIG + 1);
        if (!socks[i].tx || !socks[i].rx)
            fail("out of memory");
        make_msg(&socks[i], 0);
    }
    for (left = n; left > 0;) {
        int moved = 0;

        for (i = 0; i < n; i++) {
            int was = socks[i].done;

            moved |= step(&socks[i]);
            left -= socks[i].done && !was;
        }
        if (moved)
            continue;
        if (strata_now_ms() > deadline)
            fail("timed out with %d WebSockets unfinished", left);
        wait_conn(h);
    }
    while (is_need(strata_h2_shutdown(h)) && strata_now_ms() < deadline)
        wait_conn(h);
    for (i = 0; i < n; i++) {
        strata_free(socks[i].ws);
        free(socks[i].tx);
        free(socks[i].rx);
    }
    strata_h2_free(h);
    printf("all cases passed\n");
    return 0;
}
