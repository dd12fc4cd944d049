/* bench_h2_client: the strata clients of bench/h2 (see README.md,
 * "HTTP/2"); bench/h2/run.sh runs one measurement per process.
 *
 *   bench_h2_client raw PORT BYTES [READ]
 *       the large download's baseline: connect, send the 8-byte count,
 *       read() into a 64 KiB buffer (READ bytes at a time, default 64
 *       KiB) until the server closes;
 *   bench_h2_client get PORT PATH [WINDOW]
 *       a strata HTTP/2 client (h2 -> socket, prior knowledge) that GETs
 *       PATH and reads the body into a 64 KiB buffer until STRATA_EOF;
 *       WINDOW is its stream and connection receive window (default
 *       16 MiB);
 *   bench_h2_client ws PORT SIZE INFLIGHT SECS
 *       WebSocket over TCP: ws (client, HTTP/1.1 handshake) -> wbuf
 *       (64 KiB) -> socket;
 *   bench_h2_client wsh2 PORT SIZE INFLIGHT SECS [api]
 *       WebSocket over HTTP/2: ws (client, no_handshake) -> wbuf (64 KiB)
 *       -> h2 stream (extended CONNECT, strata_ws_h2_open) -> h2 ->
 *       socket; with "api", strata_ws_h2_client's stack (ws -> h2 stream).
 *
 * The echo clients keep INFLIGHT messages of SIZE bytes outstanding and
 * send the next one as each echo returns (bench_ws_echo's client): an
 * untimed warm-up of 0.2 s compares every echoed byte, then the timed run
 * lasts SECS seconds and checks each echo's sequence stamp and tail.
 * Every mode prints one line, "ok KEY=VALUE ...", with the bytes or
 * messages, the wall seconds and the process's cpu seconds; a failure
 * prints "failed: why" and exits 1.
 */
#include <strata/blocking.h>
#include <strata/h2.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/wbuf.h>
#include <strata/ws.h>
#include <strata/ws_h2.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define WBUF_CAP (64 * KIB)
#define READ_BUF (64 * KIB)
#define WAIT_MS 30000           /* a stalled run fails instead of hanging */
#define WARM_SECS 0.2

_Noreturn static void fail(const char *what, long code)
{
    if (code)
        printf("failed: %s: %s\n", what, strata_strerror((int)code));
    else
        printf("failed: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (!p)
        fail("out of memory", 0);
    return p;
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static int is_err(long r)
{
    return r < 0 && !is_need(r);
}

static unsigned want_of(long r)
{
    return r == STRATA_NEED_READ    ? STRATA_WANT_READ
           : r == STRATA_NEED_WRITE ? STRATA_WANT_WRITE
                                    : 0;
}

/* ---- raw TCP ---------------------------------------------------------- */

static int run_raw(const char *port, uint64_t bytes, size_t piece)
{
    struct sockaddr_in a;
    uint8_t *buf = xmalloc(READ_BUF);
    uint64_t got = 0;
    double t0, t1, c0 = cpu_s();
    int fd, one = 1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t0 = now_s();
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail("raw: cannot connect", 0);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (write(fd, &bytes, sizeof bytes) != (ssize_t)sizeof bytes)
        fail("raw: cannot send the count", 0);
    for (;;) {
        ssize_t n = read(fd, buf, piece);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("raw: read failed", 0);
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    t1 = now_s();
    close(fd);
    if (got != bytes)
        fail("raw: short body", 0);
    printf("ok bytes=%llu secs=%.6f cpu=%.4f\n", (unsigned long long)got,
           t1 - t0, cpu_s() - c0);
    free(buf);
    return 0;
}

/* ---- HTTP/2 client plumbing ------------------------------------------- */

/* A stream has no descriptor: wait on the connection's for what the
 * NEED code names and what the connection wants. */
static void h2_wait(strata_h2 *h, long code)
{
    struct pollfd pf;
    unsigned w = want_of(code) | strata_h2_wants(h);

    pf.fd = strata_h2_fd(h);
    pf.events = (short)((w & STRATA_WANT_READ ? POLLIN : 0)
                        | (w & STRATA_WANT_WRITE ? POLLOUT : 0));
    pf.revents = 0;
    if (poll(&pf, 1, WAIT_MS) <= 0)
        fail("h2: nothing moved for 30 s", 0);
}

static strata_h2 *h2_connect(const char *port, uint32_t window)
{
    strata_h2_opts o;
    strata_stream *sock;
    strata_h2 *h;
    int r;

    if ((r = strata_tcp_connect("127.0.0.1", port, NULL, &sock)) != 0)
        fail("h2: cannot connect", r);
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_CLIENT;
    o.stream_window = window;
    o.connection_window = window;
    h = strata_h2_new(sock, &o, NULL);
    if (!h)
        fail("h2: cannot start", 0);
    return h;
}

static int run_get(const char *port, const char *path, uint32_t window)
{
    char auth[64];
    strata_h2_header head[4];
    strata_stream *s;
    strata_h2 *h;
    uint8_t *buf = xmalloc(READ_BUF);
    uint64_t got = 0;
    double t0, t1, c0 = cpu_s();
    const char *cl;
    int r;

    t0 = now_s();
    h = h2_connect(port, window);
    snprintf(auth, sizeof auth, "127.0.0.1:%s", port);
    head[0].name = ":method";    head[0].value = "GET";
    head[1].name = ":scheme";    head[1].value = "http";
    head[2].name = ":path";      head[2].value = path;
    head[3].name = ":authority"; head[3].value = auth;
    while (is_need(r = strata_h2_request(h, head, 4, STRATA_H2_END_STREAM,
                                         &s)))
        h2_wait(h, r);
    if (r != 0)
        fail("h2: request", r);
    for (;;) {
        ssize_t n = strata_recv(s, buf, READ_BUF, NULL);

        if (n == STRATA_EOF)
            break;
        if (is_need(n)) {
            h2_wait(h, n);
            continue;
        }
        if (n < 0)
            fail("h2: body", n);
        got += (uint64_t)n;
    }
    t1 = now_s();
    if (strata_h2_status(s) != 200)
        fail("h2: status is not 200", 0);
    cl = strata_h2_get(s, "content-length");
    if (cl && strtoull(cl, NULL, 10) != got)
        fail("h2: body shorter than its content-length", 0);
    strata_free(s);
    strata_h2_free(h);
    printf("ok bytes=%llu secs=%.6f cpu=%.4f\n", (unsigned long long)got,
           t1 - t0, cpu_s() - c0);
    free(buf);
    return 0;
}

/* ---- WebSocket echo ----------------------------------------------------- */

typedef struct flow {
    strata_stream *s;           /* the ws stack */
    strata_h2 *h;               /* over HTTP/2: the connection, else NULL */
    size_t size;
    unsigned inflight;
    double deadline;
    int verify;                 /* compare every byte (warm-up) */
    uint8_t *src, *buf;
    size_t cap, soff, roff;
    uint64_t sent, got, bad, seq0;
    int dirty;                  /* sent since the last flush */
} flow;

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

/* Every message starts with its 8-byte sequence number (as much of it as
 * fits) over a fixed random pattern. */
static void stamp_put(uint8_t *msg, size_t len, uint64_t seq)
{
    memcpy(msg, &seq, len < 8 ? len : 8);
}

static int may_send(const flow *f)
{
    return f->sent - f->got < f->inflight && now_s() < f->deadline;
}

static void flow_message(flow *f, const uint8_t *msg, size_t len)
{
    uint64_t seq = f->seq0 + f->got;
    uint8_t want[8];
    int ok = len == f->size;

    memcpy(want, &seq, 8);
    if (ok)
        ok = memcmp(msg, want, len < 8 ? len : 8) == 0;
    if (ok && len > 8)
        ok = f->verify ? memcmp(msg + 8, f->src + 8, len - 8) == 0
                       : (len < 16 ? memcmp(msg + 8, f->src + 8, len - 8) == 0
                                   : load64(msg + len - 8)
                                         == load64(f->src + len - 8));
    f->bad += !ok;
    f->got++;
}

static int ws_fill(flow *f)
{
    while (f->soff > 0 || may_send(f)) {
        ssize_t n;

        if (f->soff == 0)
            stamp_put(f->src, f->size, f->seq0 + f->sent);
        n = strata_send(f->s, f->src + f->soff, f->size - f->soff,
                        STRATA_MSG_END);
        if (n <= 0)
            return n == 0 ? STRATA_ERR_STATE : (int)n;
        f->dirty = 1;
        f->soff += (size_t)n;
        if (f->soff == f->size) {
            f->soff = 0;
            f->sent++;
        }
    }
    return 0;
}

static int ws_flush(flow *f)
{
    int r = f->dirty ? strata_flush(f->s) : 0;

    if (r == 0)
        f->dirty = 0;
    return r;
}

static int ws_drain(flow *f)
{
    while (f->got < f->sent || f->roff > 0) {
        unsigned flags = 0;
        ssize_t n;

        if (f->roff == f->cap)
            return STRATA_ERR_TOO_BIG;
        n = strata_recv(f->s, f->buf + f->roff, f->cap - f->roff, &flags);
        if (n < 0)
            return (int)n;
        f->roff += (size_t)n;
        if (flags & STRATA_MSG_END) {
            flow_message(f, f->buf, f->roff);
            f->roff = 0;
        }
    }
    return 0;
}

static int ws_wait(flow *f, unsigned wants)
{
    if (f->h) {
        struct pollfd pf;
        unsigned w = wants | strata_h2_wants(f->h);

        pf.fd = strata_h2_fd(f->h);
        pf.events = (short)((w & STRATA_WANT_READ ? POLLIN : 0)
                            | (w & STRATA_WANT_WRITE ? POLLOUT : 0));
        pf.revents = 0;
        return poll(&pf, 1, WAIT_MS) > 0 ? 0 : STRATA_ERR_TIMEOUT;
    }
    return strata_wait(f->s, wants, WAIT_MS);
}

/* Fill the window, flush, read the echoes that are there, wait only when
 * nothing moves (bench_ws_echo's flow_run). */
static int flow_run(flow *f)
{
    int dry = 0;

    for (;;) {
        uint64_t got0 = f->got;
        int s, fl, d, r;

        if (is_err(s = ws_fill(f)))
            return s;
        if (is_err(fl = ws_flush(f)))
            return fl;
        d = dry ? STRATA_NEED_READ : ws_drain(f);
        if (is_err(d))
            return d;
        if (now_s() >= f->deadline && f->got == f->sent && f->soff == 0
            && f->roff == 0)
            return 0;
        dry = !dry && d == STRATA_NEED_READ && f->got != got0;
        if (dry || (d == 0 && s == 0 && fl == 0))
            continue;
        r = ws_wait(f, want_of(s) | want_of(fl) | want_of(d));
        if (r < 0)
            return r;
    }
}

static strata_stream *ws_tcp(const char *port)
{
    char host[64];
    strata_stream *sock, *wb, *ws;
    strata_ws_opts o;
    int r;

    snprintf(host, sizeof host, "127.0.0.1:%s", port);
    if ((r = strata_tcp_connect("127.0.0.1", port, NULL, &sock)) != 0)
        fail("ws: cannot connect", r);
    wb = strata_wbuf_new(sock, WBUF_CAP, 0, NULL);
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_CLIENT;
    o.host = host;
    ws = wb ? strata_ws_new(wb, &o, NULL) : NULL;
    if (!ws)
        fail("ws: out of memory", 0);
    while (is_need(r = strata_ws_handshake(ws)))
        if ((r = strata_wait(ws, want_of(r), WAIT_MS)) != 0)
            break;
    if (r != 0)
        fail("ws: handshake", r);
    return ws;
}

static strata_stream *ws_h2(const char *port, int api, strata_h2 **hp)
{
    char host[64];
    strata_stream *st, *wb, *ws;
    strata_ws_opts o;
    strata_h2 *h = h2_connect(port, 0);
    int r;

    snprintf(host, sizeof host, "127.0.0.1:%s", port);
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_CLIENT;
    o.host = host;
    o.path = "/";
    while (is_need(r = strata_ws_h2_open(h, &o, "http", &st)))
        h2_wait(h, r);
    if (r != 0)
        fail("ws over h2: extended CONNECT", r);
    if (api) {
        while (is_need(r = strata_ws_h2_client(st, &o, NULL, &ws)))
            h2_wait(h, r);
        if (r != 0)
            fail("ws over h2: response", r);
    } else {
        /* strata_ws_h2_client's checks, with a wbuf under ws */
        while (is_need(r = strata_h2_response_head(st)))
            h2_wait(h, r);
        if (r != 0 || strata_h2_status(st) != 200)
            fail("ws over h2: response", r);
        o.no_handshake = 1;
        wb = strata_wbuf_new(st, WBUF_CAP, 0, NULL);
        ws = wb ? strata_ws_new(wb, &o, NULL) : NULL;
        if (!ws)
            fail("ws over h2: out of memory", 0);
    }
    *hp = h;
    return ws;
}

static int run_ws(int over_h2, const char *port, size_t size,
                  unsigned inflight, double secs, int api)
{
    flow f;
    double t0, t1, c0;
    uint64_t x = 7;
    int r;

    memset(&f, 0, sizeof f);
    f.size = size;
    f.inflight = inflight;
    f.src = xmalloc(size);
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        f.src[i] = (uint8_t)x;
    }
    f.cap = size + 64;          /* room past a message: catches a longer one */
    f.buf = xmalloc(f.cap);
    f.s = over_h2 ? ws_h2(port, api, &f.h) : ws_tcp(port);
    f.verify = 1;
    f.deadline = now_s() + WARM_SECS;
    if ((r = flow_run(&f)) != 0)
        fail("echo (warm-up)", r);
    if (f.bad)
        fail("echo (warm-up): wrong bytes came back", 0);
    f.seq0 += f.got;
    f.sent = f.got = 0;
    f.verify = 0;
    c0 = cpu_s();
    t0 = now_s();
    f.deadline = t0 + secs;
    if ((r = flow_run(&f)) != 0)
        fail("echo", r);
    t1 = now_s();
    if (f.bad)
        fail("echo: wrong bytes came back", 0);
    printf("ok msgs=%llu secs=%.6f cpu=%.4f\n", (unsigned long long)f.got,
           t1 - t0, cpu_s() - c0);
    /* a polite end is not needed: the server frees a stack that fails */
    strata_free(f.s);
    if (f.h)
        strata_h2_free(f.h);
    free(f.src);
    free(f.buf);
    return 0;
}

static void usage(void)
{
    puts("usage: bench_h2_client raw PORT BYTES [READ]\n"
         "       bench_h2_client get PORT PATH [WINDOW]\n"
         "       bench_h2_client ws PORT SIZE INFLIGHT SECS\n"
         "       bench_h2_client wsh2 PORT SIZE INFLIGHT SECS [api]\n"
         "One measurement against bench_h2_server; run by bench/h2/run.sh.");
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "raw") == 0) {
        size_t piece = argc > 4 ? strtoul(argv[4], NULL, 10) : READ_BUF;

        if (piece == 0 || piece > READ_BUF)
            fail("READ must be 1..65536", 0);
        return run_raw(argv[2], strtoull(argv[3], NULL, 10), piece);
    }
    if (argc >= 4 && strcmp(argv[1], "get") == 0)
        return run_get(argv[2], argv[3],
                       argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10)
                                : 16u * KIB * KIB);
    if (argc >= 6 && (strcmp(argv[1], "ws") == 0
                      || strcmp(argv[1], "wsh2") == 0)) {
        size_t size = strtoul(argv[3], NULL, 10);
        unsigned inflight = (unsigned)strtoul(argv[4], NULL, 10);

        if (size == 0 || inflight == 0)
            fail("SIZE and INFLIGHT must be > 0", 0);
        return run_ws(argv[1][2] == 'h', argv[2], size, inflight,
                      strtod(argv[5], NULL),
                      argc > 6 && strcmp(argv[6], "api") == 0);
    }
    usage();
    return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
