/* ws_client: strata's WebSocket client against another implementation's
 * echo server (Python websockets, node ws), started by run_ws.sh.
 *
 *   ws_client URL [--deflate|--no-deflate]
 *
 * Prints "ok CASE" for each case and exits 1 at the first failure with what
 * went wrong. Every case sends while it reads the echoes: an echo server
 * that streams (or a large message) would otherwise fill both socket
 * buffers and stall both ends. Every wait is bounded by CASE_MS.
 *
 * The ping case checks that pings (even in the middle of a fragmented
 * message) are answered with pongs, and do not disturb the echoes or their
 * order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/blocking.h>
#include <strata/uri.h>
#include <strata/ws.h>

#define CASE_MS 60000
#define BIG ((size_t)16 << 20)
#define PROTOCOL "strata.test"
#define N_PIPELINED 200

static const char UTF8[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 "
                           "\xf0\x9f\x8e\x89 \xe6\x97\xa5\xe6\x9c\xac"
                           "\xe8\xaa\x9e ";

/* One send (a message part, or a ping) or one expected echo. */
typedef struct item {
    const uint8_t *data;
    size_t len;
    unsigned flags; /* send: STRATA_MSG_*; echo: STRATA_MSG_TEXT or 0 */
    int ping;       /* send: a ping with this payload instead */
} item;

static const char *url;
static int deflate;
static uint8_t *random_bytes, *text_bytes; /* BIG bytes each */
static uint8_t rbuf[65536];

static void fail(const char *name, const char *fmt, ...)
{
    va_list ap;

    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    exit(1);
}

static void ok(const char *name)
{
    printf("ok %s\n", name);
    fflush(stdout);
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* A status with what the ws layer adds: the close code it sent. */
static const char *why(strata_stream *s, long r)
{
    static char text[160];

    snprintf(text, sizeof text, "%s (close sent: %u, peer's close: %u)",
             strata_strerror((int)r), strata_ws_error_code(s),
             strata_ws_close_code(s));
    return text;
}

/* Wait for `wants` (0: what the stack recorded) until the deadline. */
static void wait_io(strata_stream *s, unsigned wants, uint64_t deadline,
                    const char *name, const char *doing)
{
    uint64_t now = strata_now_ms();
    int r;

    if (now >= deadline)
        fail(name, "timed out %s", doing);
    r = strata_wait(s, wants, (int)(deadline - now));
    if (r != 0 && r != STRATA_ERR_TIMEOUT)
        fail(name, "waiting: %s", strata_strerror(r));
}

static unsigned want_of(long r)
{
    return r == STRATA_NEED_READ ? STRATA_WANT_READ : STRATA_WANT_WRITE;
}

/* ---- connections ---- */

static strata_stream *open_ws(const char *name, const char *protocol)
{
    uint64_t deadline = strata_now_ms() + CASE_MS;
    char err[256];
    strata_stream *s;
    strata_uri u;
    int r;

    if (strata_uri_parse(url, &u, err, sizeof err) != 0)
        fail(name, "bad URL '%s': %s", url, err);
    if (u.layers[0] != STRATA_LAYER_WS)
        fail(name, "'%s' is not a ws URL", url);
    u.ws.deflate = deflate;
    u.ws.protocol = protocol;
    if (strata_uri_connect(&u, NULL, &s, err, sizeof err) != 0)
        fail(name, "%s", err);
    while ((r = strata_ws_handshake(s)) != 0) {
        if (!is_need(r))
            fail(name, "handshake: %s, HTTP status %d", strata_strerror(r),
                 strata_ws_status(s));
        wait_io(s, want_of(r), deadline, name, "in the handshake");
    }
    return s;
}

/* Read until the peer's close (STRATA_EOF); no data may come first. */
static void read_to_close(strata_stream *s, const char *name)
{
    uint64_t deadline = strata_now_ms() + CASE_MS;
    unsigned flags;
    ssize_t r;

    while ((r = strata_recv(s, rbuf, sizeof rbuf, &flags)) != STRATA_EOF) {
        if (r >= 0)
            fail(name, "%zd bytes of data instead of the close", r);
        if (!is_need(r))
            fail(name, "waiting for the close: %s", why(s, r));
        wait_io(s, 0, deadline, name, "waiting for the peer's close");
    }
}

/* Send a close (code 0: strata_shutdown), read the peer's, check it. */
static void close_and_check(strata_stream *s, const char *name,
                            unsigned code, const char *reason,
                            unsigned want_code, const char *want_reason)
{
    uint64_t deadline = strata_now_ms() + CASE_MS;
    const char *got;
    int r;

    while ((r = code != 0 ? strata_ws_close(s, code, reason)
                          : strata_shutdown(s)) != 0) {
        if (!is_need(r))
            fail(name, "sending the close: %s", why(s, r));
        wait_io(s, want_of(r), deadline, name, "sending the close");
    }
    read_to_close(s, name);
    got = strata_ws_close_reason(s);
    if (strata_ws_close_code(s) != want_code || got == NULL ||
        strcmp(got, want_reason) != 0)
        fail(name, "peer answered %u \"%s\", wanted %u \"%s\"",
             strata_ws_close_code(s), got != NULL ? got : "(none)",
             want_code, want_reason);
    strata_free(s);
}

/* ---- sending while reading the echoes ---- */

typedef struct run {
    strata_stream *s;
    const char *name;
    const item *out, *in;
    size_t nout, nin;
    size_t si, so;  /* send: item, bytes of it sent */
    size_t ri, ro;  /* echo: item, bytes of it checked */
    int flushed;
} run;

/* One send step: 1 progress, 0 blocked. Failures exit. */
static int step_send(run *x)
{
    const item *it = &x->out[x->si];
    ssize_t r;

    if (x->si == x->nout) {
        if (x->flushed)
            return 0;
        r = strata_flush(x->s);
        x->flushed = r == 0;
    } else if (it->ping) {
        r = strata_ws_ping(x->s, it->data, it->len);
        x->si += r == 0;
    } else {
        r = strata_send(x->s, it->data + x->so, it->len - x->so, it->flags);
        if (r == 0 && it->len > x->so)
            fail(x->name, "send #%zu moved nothing", x->si);
        if (r >= 0 && (x->so += (size_t)r) == it->len) {
            x->si++;
            x->so = 0;
        }
    }
    if (r < 0 && !is_need(r))
        fail(x->name, "send #%zu: %s", x->si, why(x->s, r));
    return r >= 0;
}

static void check_echo(run *x, size_t n, unsigned flags)
{
    const item *it = &x->in[x->ri];

    if (x->ro + n > it->len || memcmp(rbuf, it->data + x->ro, n) != 0)
        fail(x->name, "echo #%zu differs in bytes %zu..%zu (of %zu)", x->ri,
             x->ro, x->ro + n, it->len);
    if ((flags & STRATA_MSG_TEXT) != (it->flags & STRATA_MSG_TEXT))
        fail(x->name, "echo #%zu came back as %s", x->ri,
             flags & STRATA_MSG_TEXT ? "text" : "binary");
    x->ro += n;
    if (!(flags & STRATA_MSG_END))
        return;
    if (x->ro != it->len)
        fail(x->name, "echo #%zu ended after %zu of %zu bytes", x->ri, x->ro,
             it->len);
    x->ri++;
    x->ro = 0;
}

/* One receive step: 1 progress, 0 blocked. Failures exit. */
static int step_recv(run *x)
{
    unsigned flags = 0;
    ssize_t r = strata_recv(x->s, rbuf, sizeof rbuf, &flags);

    if (is_need(r))
        return 0;
    if (r < 0)
        fail(x->name, "receive after %zu of %zu echoes: %s", x->ri, x->nin,
             why(x->s, r));
    if (x->ri == x->nin)
        fail(x->name, "%zd bytes more than the echoes expected", r);
    check_echo(x, (size_t)r, flags);
    return 1;
}

/* Send `out` while checking that exactly `in` comes back, in order. */
static void exchange(strata_stream *s, const char *name, const item *out,
                     size_t nout, const item *in, size_t nin)
{
    uint64_t deadline = strata_now_ms() + CASE_MS;
    run x;

    memset(&x, 0, sizeof x);
    x.s = s;
    x.name = name;
    x.out = out;
    x.nout = nout;
    x.in = in;
    x.nin = nin;
    while (x.ri < x.nin || x.si < x.nout) {
        int progress = step_send(&x);
        progress |= step_recv(&x);
        if (!progress)
            wait_io(s, 0, deadline, name, "exchanging messages");
    }
}

/* One whole message and its echo. */
static void roundtrip(strata_stream *s, const char *name, const void *data,
                      size_t len, unsigned text)
{
    item out = { data, len, STRATA_MSG_END | text, 0 };
    item in = { data, len, text, 0 };

    exchange(s, name, &out, 1, &in, 1);
    ok(name);
}

/* ---- the cases ---- */

static void sizes(strata_stream *s)
{
    static const size_t n[] = { 0, 1, 125, 126, 65535, 65536, 1u << 20, BIG };
    char name[64];
    size_t i;

    for (i = 0; i < sizeof n / sizeof n[0]; i++) {
        snprintf(name, sizeof name, "text_%zu", n[i]);
        roundtrip(s, name, text_bytes, n[i], STRATA_MSG_TEXT);
        snprintf(name, sizeof name, "binary_%zu", n[i]);
        roundtrip(s, name, random_bytes, n[i], 0);
    }
}

static void utf8(strata_stream *s)
{
    size_t unit = sizeof UTF8 - 1, n = 20000, i;
    uint8_t *big = malloc(unit * n);

    if (big == NULL)
        fail("utf8_long", "out of memory");
    for (i = 0; i < n; i++)
        memcpy(big + i * unit, UTF8, unit);
    roundtrip(s, "utf8_short", UTF8, unit, STRATA_MSG_TEXT);
    roundtrip(s, "utf8_long", big, unit * n, STRATA_MSG_TEXT);
    free(big);
}

/* Several sends without MSG_END, then one with: one message comes back.
 * The text is cut inside a multi-byte character on purpose, and the
 * binary message ends with an empty final fragment. */
static void fragmented(strata_stream *s)
{
    static const char text[] = "frag" "mented h\xc3\xa9llo \xe2\x9c\x93";
    const uint8_t *t = (const uint8_t *)text, *b = random_bytes;
    item out[] = {
        { t, 4, STRATA_MSG_TEXT, 0 },      { t + 4, 0, 0, 0 },
        { t + 4, 9, 0, 0 }, /* ends in the middle of the e-acute */
        { t + 13, sizeof text - 14, STRATA_MSG_END, 0 },
        { b, 100000, 0, 0 },               { b + 100000, 1, 0, 0 },
        { b + 100001, 70000, 0, 0 },       { b, 0, STRATA_MSG_END, 0 },
    };
    item in[] = {
        { t, sizeof text - 1, STRATA_MSG_TEXT, 0 },
        { b, 170001, 0, 0 },
    };

    exchange(s, "fragmented", out, 8, in, 2);
    ok("fragmented");
}

/* Pings between messages and inside a fragmented one: the peer takes
 * them (a broken ping would make it close) and the echoes stay in order. */
static void pings(strata_stream *s)
{
    const uint8_t *p = (const uint8_t *)"strata-ping", *b = random_bytes;
    item out[] = {
        { p, 11, 0, 1 },
        { b, 125, 0, 1 },
        { (const uint8_t *)"before", 6, STRATA_MSG_END | STRATA_MSG_TEXT, 0 },
        { p, 0, 0, 1 },
        { b, 5000, 0, 0 },
        { p, 4, 0, 1 },
        { b + 5000, 5000, STRATA_MSG_END, 0 },
    };
    item in[] = {
        { (const uint8_t *)"before", 6, STRATA_MSG_TEXT, 0 },
        { b, 10000, 0, 0 },
    };

    unsigned long before = strata_ws_pongs(s), got;

    exchange(s, "ping", out, 7, in, 2);
    /* every ping went before the last echo; a peer may answer only the
     * latest of several unanswered pings (RFC 6455 5.5.3) */
    got = strata_ws_pongs(s) - before;
    if (got < 1 || got > 4)
        fail("ping", "%lu pongs for 4 pings", got);
    ok("ping");
}

/* Many messages in flight at once come back in order. */
static void pipelined(strata_stream *s)
{
    item out[N_PIPELINED], in[N_PIPELINED];
    size_t i;

    for (i = 0; i < N_PIPELINED; i++) {
        unsigned text = i % 2 ? STRATA_MSG_TEXT : 0;
        const uint8_t *data = text ? text_bytes : random_bytes + i;
        size_t len = text ? i * 37 : i * 101;

        out[i] = (item){ data, len, STRATA_MSG_END | text, 0 };
        in[i] = (item){ data, len, text, 0 };
    }
    exchange(s, "pipelined", out, N_PIPELINED, in, N_PIPELINED);
    ok("pipelined");
}

static void subprotocol(void)
{
    strata_stream *s = open_ws("subprotocol", PROTOCOL);
    const char *got = strata_ws_protocol(s);

    if (got == NULL || strcmp(got, PROTOCOL) != 0)
        fail("subprotocol", "negotiated \"%s\", wanted \"%s\"",
             got != NULL ? got : "(none)", PROTOCOL);
    roundtrip(s, "subprotocol", "with a subprotocol", 18, STRATA_MSG_TEXT);
    close_and_check(s, "subprotocol", 0, NULL, 1000, "");
}

/* Our close with a code and reason; the echo servers answer with both. */
static void close_with(const char *name, unsigned code, const char *reason)
{
    strata_stream *s = open_ws(name, NULL);
    char echo[64];

    snprintf(echo, sizeof echo, "%s_echo", name);
    roundtrip(s, echo, "last words", 10, STRATA_MSG_TEXT);
    close_and_check(s, name, code, reason, code, reason);
    ok(name);
}

static void make_data(void)
{
    static const char unit[] = "strata websocket interop 0123456789 ";
    uint64_t x = 0x9e3779b97f4a7c15u;
    size_t i;

    random_bytes = malloc(BIG);
    text_bytes = malloc(BIG);
    if (random_bytes == NULL || text_bytes == NULL)
        fail("setup", "out of memory");
    for (i = 0; i < BIG; i++) {
        x ^= x << 13; /* xorshift64: incompressible enough for deflate */
        x ^= x >> 7;
        x ^= x << 17;
        random_bytes[i] = (uint8_t)x;
        text_bytes[i] = (uint8_t)unit[i % (sizeof unit - 1)];
    }
}

int main(int argc, char **argv)
{
    strata_stream *s;

    if (argc < 2 || (argc == 3 && strcmp(argv[2], "--deflate") != 0 &&
                     strcmp(argv[2], "--no-deflate") != 0) || argc > 3) {
        fprintf(stderr, "usage: ws_client URL [--deflate|--no-deflate]\n");
        return 2;
    }
    url = argv[1];
    deflate = argc == 3 && strcmp(argv[2], "--deflate") == 0;
    make_data();
    s = open_ws("connect", NULL);
    if (strata_ws_deflate(s) != deflate)
        fail("deflate", "in force: %d, wanted %d", strata_ws_deflate(s),
             deflate);
    ok(deflate ? "deflate_on" : "deflate_off");
    sizes(s);
    utf8(s);
    fragmented(s);
    pings(s);
    pipelined(s);
    close_and_check(s, "close_shutdown", 0, NULL, 1000, "");
    ok("close_shutdown");
    subprotocol();
    close_with("close_1000", 1000, "bye");
    close_with("close_4001", 4001, "custom reason \xe2\x9c\x93");
    free(random_bytes);
    free(text_bytes);
    printf("all cases passed\n");
    return 0;
}
