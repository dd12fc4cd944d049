/* The embedded profile on the host: the library built from the profile's
 * sources with STRATA_EMBEDDED (tests/CMakeLists.txt), everything in
 * static storage, over a byte pipe of this file's own (the profile has no
 * sockets and streams/pipe.c allocates). A WebSocket client and server
 * shake hands (RFC 6455's example key) and exchange text, binary,
 * fragmented, ping and close; line and lenprefix records go through; an
 * HTTP/1.1 head is parsed and written.
 *
 * No allocation: the program is linked with -Wl,--wrap for malloc, calloc,
 * realloc and free, so any call the library makes lands in the trap below
 * and fails the test (the profile has no constructor that allocates).
 * The SHA-1 hook is wolfCrypt's (the test is host code; the library is not
 * linked with it), the random hook deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/line.h>
#include <strata/lenprefix.h>
#include <strata/http1.h>
#include <strata/ws.h>

/* ---- the allocator trap ---------------------------------------------- */

static unsigned long heap_calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n)
{
    heap_calls++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    heap_calls++;
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    heap_calls++;
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    heap_calls++;
    __real_free(p);
}

static int reset_trap(void **state)
{
    (void)state;
    heap_calls = 0;
    return 0;
}

static int check_trap(void **state)
{
    (void)state;
    assert_int_equal(heap_calls, 0);
    return 0;
}

/* ---- a byte pipe in static storage ------------------------------------ */

#define PIPE_CAP 512
#define LOG_CAP 4096

typedef struct tpipe {
    uint8_t buf[PIPE_CAP];
    size_t len;
    int shut;
} tpipe;

/* One end: reads rx, writes tx, and keeps the first LOG_CAP bytes it
 * wrote (the wire, for the checks). */
typedef struct tend {
    strata_stream base;
    tpipe *rx, *tx;
    uint8_t log[LOG_CAP];
    size_t log_len;
} tend;

static ssize_t t_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags)
{
    tpipe *p = ((tend *)s)->rx;
    size_t n = len < p->len ? len : p->len;

    (void)flags;
    if (p->len == 0)
        return p->shut ? STRATA_EOF : STRATA_NEED_READ;
    memcpy(buf, p->buf, n);
    memmove(p->buf, p->buf + n, p->len - n);
    p->len -= n;
    return (ssize_t)n;
}

static ssize_t t_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags)
{
    tend *e = (tend *)s;
    tpipe *p = e->tx;
    size_t moved = 0;
    int i;

    (void)flags;
    if (p->shut)
        return STRATA_ERR_STATE;
    for (i = 0; i < n && p->len < PIPE_CAP; i++) {
        size_t room = PIPE_CAP - p->len, l = iov[i].iov_len;
        size_t take = l < room ? l : room, keep = LOG_CAP - e->log_len;

        memcpy(p->buf + p->len, iov[i].iov_base, take);
        memcpy(e->log + e->log_len, iov[i].iov_base, take < keep ? take : keep);
        e->log_len += take < keep ? take : keep;
        p->len += take;
        moved += take;
    }
    return moved > 0 || strata_iov_len(iov, n) == 0 ? (ssize_t)moved
                                                    : STRATA_NEED_WRITE;
}

static int t_shutdown(strata_stream *s)
{
    ((tend *)s)->tx->shut = 1;
    return 0;
}

static unsigned t_poll(strata_stream *s, unsigned events)
{
    tend *e = (tend *)s;
    unsigned r = 0;

    if (e->rx->len > 0 || e->rx->shut)
        r |= STRATA_POLL_IN;
    if (e->tx->len < PIPE_CAP)
        r |= STRATA_POLL_OUT;
    return r & events;
}

static const strata_stream_ops tend_ops = {
    "tpipe", t_recv, t_sendv, NULL, t_shutdown, t_poll, NULL, NULL, NULL,
};

static void tend_init(tend *e, tpipe *rx, tpipe *tx)
{
    memset(e, 0, sizeof *e);
    strata_stream_init(&e->base, &tend_ops, NULL, NULL);
    e->rx = rx;
    e->tx = tx;
}

static int logged(const tend *e, const char *s)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= e->log_len; i++)
        if (memcmp(e->log + i, s, n) == 0)
            return 1;
    return 0;
}

/* ---- hooks ------------------------------------------------------------- */

static unsigned sha1_calls;

static int sha1_hook(void *ud, const uint8_t *data, size_t len,
                     uint8_t out[20])
{
    wc_Sha sha;
    int r;

    (*(unsigned *)ud)++;
    if (wc_InitSha(&sha) != 0)
        return -1;
    r = wc_ShaUpdate(&sha, data, (word32)len);
    if (r == 0)
        r = wc_ShaFinal(&sha, out);
    wc_ShaFree(&sha);
    return r;
}

/* The first 16 bytes asked for are RFC 6455's sample nonce (section 1.3:
 * its base64 is the key "dGhlIHNhbXBsZSBub25jZQ=="); then a counter. */
typedef struct rnd {
    unsigned long calls;
    uint8_t next;
} rnd;

static int random_hook(void *ud, uint8_t *buf, size_t n)
{
    rnd *r = ud;
    size_t i;

    if (r->calls++ == 0 && n == 16) {
        memcpy(buf, "the sample nonce", 16);
        return 0;
    }
    for (i = 0; i < n; i++)
        buf[i] = (uint8_t)(0xa5 ^ r->next++);
    return 0;
}

/* ---- WebSocket: a client and a server in static storage --------------- */

typedef struct side {
    tend t;
    strata_buffered in;
    uint8_t in_buf[512];
    strata_ws_storage ws;
    uint8_t mem[4096];
} side;

static tpipe c2s, s2c;
static side cli, srv;
static rnd rng;
static const char *const cli_protos[] = {"chat", "superchat", NULL};
static const char *const srv_protos[] = {"superchat", NULL};

static void ws_pair(void)
{
    strata_ws_opts co, so;

    memset(&c2s, 0, sizeof c2s);
    memset(&s2c, 0, sizeof s2c);
    memset(&rng, 0, sizeof rng);
    sha1_calls = 0;
    tend_init(&cli.t, &s2c, &c2s);
    tend_init(&srv.t, &c2s, &s2c);
    strata_buffered_init(&cli.in, &cli.t.base, cli.in_buf, sizeof cli.in_buf);
    strata_buffered_init(&srv.in, &srv.t.base, srv.in_buf, sizeof srv.in_buf);

    memset(&co, 0, sizeof co);
    co.role = STRATA_WS_CLIENT;
    co.host = "device.local";
    co.path = "/chat";
    co.protocols = cli_protos;
    co.max_head = 1024;
    co.random = random_hook;
    co.random_ud = &rng;
    co.sha1 = sha1_hook;
    co.sha1_ud = &sha1_calls;
    memset(&so, 0, sizeof so);
    so.role = STRATA_WS_SERVER;
    so.protocols = srv_protos;
    so.max_head = 1024;
    so.sha1 = sha1_hook;
    so.sha1_ud = &sha1_calls;

    assert_true(strata_ws_mem_size(&co) <= sizeof cli.mem);
    assert_true(strata_ws_mem_size(&so) <= sizeof srv.mem);
    /* exactly the memory it says it needs is enough */
    assert_int_equal(strata_ws_init(&cli.ws, &cli.in, &co, cli.mem,
                                    strata_ws_mem_size(&co)), 0);
    assert_int_equal(strata_ws_init(&srv.ws, &srv.in, &so, srv.mem,
                                    strata_ws_mem_size(&so)), 0);
}

static void handshake(strata_stream *c, strata_stream *s)
{
    int rc = STRATA_NEED_READ, rs = STRATA_NEED_READ, i;

    for (i = 0; i < 20 && (rc != 0 || rs != 0); i++) {
        rc = strata_ws_handshake(c);
        rs = strata_ws_handshake(s);
        assert_true(rc == 0 || rc == STRATA_NEED_READ || rc == STRATA_NEED_WRITE);
        assert_true(rs == 0 || rs == STRATA_NEED_READ || rs == STRATA_NEED_WRITE);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
}

/* Send msg from a while b receives, until b has a whole message. */
static size_t exchange(strata_stream *a, strata_stream *b, const void *msg,
                       size_t len, unsigned flags, uint8_t *out, size_t cap,
                       unsigned *got_flags)
{
    size_t off = 0, got = 0;
    int sent = 0, i;

    for (i = 0; i < 10000; i++) {
        unsigned f = 0;
        ssize_t r;

        if (!sent) {
            r = strata_send(a, (const uint8_t *)msg + off, len - off, flags);
            if (r >= 0)
                off += (size_t)r;
            else
                assert_true(r == STRATA_NEED_WRITE || r == STRATA_NEED_READ);
            sent = off == len && r >= 0;
        }
        r = strata_recv(b, out + got, cap - got, &f);
        if (r >= 0) {
            got += (size_t)r;
            if (f & STRATA_MSG_END) {
                *got_flags = f;
                return got;
            }
        } else {
            assert_true(r == STRATA_NEED_READ || r == STRATA_NEED_WRITE);
        }
    }
    fail_msg("the message did not arrive");
    return 0;
}

static void test_ws_in_storage(void **state)
{
    strata_stream *c = &cli.ws.base, *s = &srv.ws.base;
    static uint8_t big[3000], out[4096];
    const char *text = "h\xc3\xa9llo, embedded";
    unsigned f = 0;
    size_t i, n;

    (void)state;
    ws_pair();
    handshake(c, s);
    /* RFC 6455 1.3: the sample nonce's key and its accept value */
    assert_true(logged(&cli.t, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert_true(logged(&srv.t,
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_true(logged(&srv.t, "HTTP/1.1 101 "));
    assert_int_equal(sha1_calls, 2); /* client's expectation, server's answer */
    assert_int_equal(strata_ws_status(c), 101);
    assert_string_equal(strata_ws_protocol(c), "superchat");
    assert_string_equal(strata_ws_protocol(s), "superchat");
    assert_string_equal(strata_ws_request_of(s)->path, "/chat");
    assert_int_equal(strata_ws_deflate(c), 0);

    /* text, client to server */
    n = exchange(c, s, text, strlen(text), STRATA_MSG_END | STRATA_MSG_TEXT,
                 out, sizeof out, &f);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(out, text, n);
    assert_int_equal(f, STRATA_MSG_END | STRATA_MSG_TEXT);

    /* binary, bigger than the pipe, the buffers and the client's masking
     * scratch: partial sends and NEED codes on the way */
    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    n = exchange(c, s, big, sizeof big, STRATA_MSG_END, out, sizeof out, &f);
    assert_int_equal(n, sizeof big);
    assert_memory_equal(out, big, n);
    assert_int_equal(f, STRATA_MSG_END);
    n = exchange(s, c, big, sizeof big, STRATA_MSG_END, out, sizeof out, &f);
    assert_int_equal(n, sizeof big);
    assert_memory_equal(out, big, n);

    /* fragmented text, server to client: three frames, one message */
    assert_int_equal(strata_send(s, "frag", 4, STRATA_MSG_TEXT), 4);
    assert_int_equal(strata_send(s, "ment", 4, STRATA_MSG_TEXT), 4);
    n = exchange(s, c, "ed", 2, STRATA_MSG_END | STRATA_MSG_TEXT, out,
                 sizeof out, &f);
    assert_int_equal(n, 10);
    assert_memory_equal(out, "fragmented", 10);
    assert_int_equal(f, STRATA_MSG_END | STRATA_MSG_TEXT);

    /* ping: the server answers by itself, the client counts the pong */
    assert_int_equal(strata_ws_ping(c, "are you there", 13), 0);
    assert_int_equal(strata_recv(s, out, sizeof out, &f), STRATA_NEED_READ);
    assert_int_equal(strata_recv(c, out, sizeof out, &f), STRATA_NEED_READ);
    assert_int_equal(strata_ws_pongs(c), 1);

    /* the client's masks came from the hook: after the nonce, one key
     * per frame it sent (text, binary, ping) */
    assert_int_equal(rng.calls, 1 + 3);

    /* close: the client's, the server's answer, EOF on both sides */
    assert_int_equal(strata_ws_close(c, STRATA_WS_NORMAL, "bye"), 0);
    assert_int_equal(strata_ws_closing(c), 1);
    assert_int_equal(rng.calls, 1 + 4);
    assert_int_equal(strata_recv(s, out, sizeof out, &f), STRATA_EOF);
    assert_int_equal(strata_ws_close_code(s), STRATA_WS_NORMAL);
    assert_string_equal(strata_ws_close_reason(s), "bye");
    assert_int_equal(strata_recv(c, out, sizeof out, &f), STRATA_EOF);
    assert_int_equal(strata_ws_close_code(c), STRATA_WS_NORMAL);
    assert_int_equal(strata_ws_closing(c), 0);
    assert_int_equal(strata_send(c, "x", 1, STRATA_MSG_END), STRATA_ERR_CLOSED);
    strata_free(c); /* frees nothing of the caller's */
    strata_free(s);
}

/* A server in caller storage declines permessage-deflate (the profile has
 * no zlib): the connection opens without it. */
static void test_ws_deflate_declined(void **state)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    strata_ws_opts so;
    strata_stream *s = &srv.ws.base;

    (void)state;
    memset(&c2s, 0, sizeof c2s);
    memset(&s2c, 0, sizeof s2c);
    tend_init(&srv.t, &c2s, &s2c);
    strata_buffered_init(&srv.in, &srv.t.base, srv.in_buf, sizeof srv.in_buf);
    memcpy(c2s.buf, req, sizeof req - 1);
    c2s.len = sizeof req - 1;
    memset(&so, 0, sizeof so);
    so.role = STRATA_WS_SERVER;
    so.max_head = 1024;
    so.sha1 = sha1_hook;
    so.sha1_ud = &sha1_calls;
    assert_int_equal(strata_ws_init(&srv.ws, &srv.in, &so, srv.mem,
                                    sizeof srv.mem), 0);
    assert_int_equal(strata_ws_handshake(s), 0);
    assert_true(logged(&srv.t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_false(logged(&srv.t, "Sec-WebSocket-Extensions"));
    assert_int_equal(strata_ws_deflate(s), 0);
}

/* What strata_ws_init refuses: a hook the profile cannot do without,
 * deflate, too little memory. */
static void test_ws_init_refusals(void **state)
{
    strata_ws_opts o;

    (void)state;
    tend_init(&cli.t, &s2c, &c2s);
    strata_buffered_init(&cli.in, &cli.t.base, cli.in_buf, sizeof cli.in_buf);
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_CLIENT;
    o.host = "h";
    o.max_head = 512;
    o.random = random_hook;
    o.random_ud = &rng;
    assert_int_equal(strata_ws_init(&cli.ws, &cli.in, &o, cli.mem,
                                    sizeof cli.mem), STRATA_ERR_ARG);
    o.sha1 = sha1_hook;
    o.sha1_ud = &sha1_calls;
    o.random = NULL;
    assert_int_equal(strata_ws_init(&cli.ws, &cli.in, &o, cli.mem,
                                    sizeof cli.mem), STRATA_ERR_ARG);
    o.random = random_hook;
    o.deflate.enable = 1;
    assert_int_equal(strata_ws_init(&cli.ws, &cli.in, &o, cli.mem,
                                    sizeof cli.mem), STRATA_ERR_ARG);
    o.deflate.enable = 0;
    assert_int_equal(strata_ws_init(&cli.ws, &cli.in, &o, cli.mem,
                                    strata_ws_mem_size(&o) - 1),
                     STRATA_ERR_NOMEM);
    /* without a handshake a server needs no hook, and memory only for its
     * send buffer (in this profile its frames are copied through one) */
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_SERVER;
    o.no_handshake = 1;
    assert_int_equal(strata_ws_mem_size(&o), 256);
    assert_int_equal(strata_ws_init(&srv.ws, &srv.in, &o, NULL, 0),
                     STRATA_ERR_NOMEM);
    assert_int_equal(strata_ws_init(&srv.ws, &srv.in, &o, srv.mem, 256), 0);
}

/* ---- no allocator anywhere ------------------------------------------- */

/* The profile has no constructor that allocates (no strata_*_new); the one
 * allocation entry left, for a caller's own layers, has no heap behind it. */
static void test_no_heap(void **state)
{
    (void)state;
    assert_null(strata_alloc(NULL, 16));
    assert_int_equal(heap_calls, 0);
}

/* ---- line and lenprefix records --------------------------------------- */

typedef struct rec_side {
    tend t;
    strata_buffered in;
    uint8_t in_buf[256];
} rec_side;

static rec_side ra, rb;

static void rec_pair(void)
{
    memset(&c2s, 0, sizeof c2s);
    memset(&s2c, 0, sizeof s2c);
    tend_init(&ra.t, &s2c, &c2s);
    tend_init(&rb.t, &c2s, &s2c);
    strata_buffered_init(&ra.in, &ra.t.base, ra.in_buf, sizeof ra.in_buf);
    strata_buffered_init(&rb.in, &rb.t.base, rb.in_buf, sizeof rb.in_buf);
}

static void expect_record(strata_stream *s, const char *want)
{
    char buf[64];
    unsigned f = 0;
    ssize_t r = strata_recv(s, buf, sizeof buf, &f);

    assert_int_equal(r, (ssize_t)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    assert_true(f & STRATA_MSG_END);
}

static void test_line_records(void **state)
{
    static strata_line la, lb;
    strata_line_opts o;
    char buf[16];

    (void)state;
    rec_pair();
    memset(&o, 0, sizeof o);
    o.max_len = 64;
    assert_int_equal(strata_line_init(&la, &ra.in, &o), 0);
    assert_int_equal(strata_line_init(&lb, &rb.in, &o), 0);
    assert_int_equal(strata_write(&la.base, "alpha", 5), 5);
    assert_int_equal(strata_send(&la.base, "be", 2, 0), 2);
    assert_int_equal(strata_send(&la.base, "ta", 2, STRATA_MSG_END), 2);
    assert_int_equal(ra.t.log_len, 11);
    assert_memory_equal(ra.t.log, "alpha\nbeta\n", 11);
    expect_record(&lb.base, "alpha");
    expect_record(&lb.base, "beta");
    assert_int_equal(strata_read(&lb.base, buf, sizeof buf), STRATA_NEED_READ);
    /* a separator inside a record is the caller's mistake */
    assert_int_equal(strata_write(&la.base, "a\nb", 3), STRATA_ERR_ARG);
}

static void test_lenprefix_records(void **state)
{
    static strata_lenprefix la, lb;
    strata_lenprefix_opts o;

    (void)state;
    rec_pair();
    memset(&o, 0, sizeof o);
    o.len_bytes = 2;
    o.max_len = 64;
    assert_int_equal(strata_lenprefix_init(&la, &ra.in, &o), 0);
    assert_int_equal(strata_lenprefix_init(&lb, &rb.in, &o), 0);
    assert_int_equal(strata_write(&la.base, "hello", 5), 5);
    assert_int_equal(strata_lenprefix_begin(&la.base, 6, 0), 0);
    assert_int_equal(strata_send(&la.base, "abc", 3, 0), 3);
    assert_int_equal(strata_send(&la.base, "def", 3, 0), 3);
    assert_int_equal(ra.t.log_len, 2 + 5 + 2 + 6);
    assert_memory_equal(ra.t.log, "\0\5hello\0\6abcdef", 15);
    expect_record(&lb.base, "hello");
    expect_record(&lb.base, "abcdef");
    assert_int_equal(strata_lenprefix_begin(&la.base, 65, 0),
                     STRATA_ERR_TOO_BIG);
}

/* ---- an HTTP/1.1 head ------------------------------------------------- */

static void test_http1_head(void **state)
{
    static const char req[] = "GET /chat?x=1 HTTP/1.1\r\nHost: dev\r\n"
                              "X-Tag:  a, b \r\n\r\nLEFT";
    static strata_http1_head h;
    static char store[512];
    static const char *const hd[] = {"Upgrade", "websocket", NULL};
    char out[128];
    ssize_t n;

    (void)state;
    rec_pair();
    memcpy(c2s.buf, req, sizeof req - 1);
    c2s.len = sizeof req - 1;
    strata_http1_head_init(&h, store, sizeof store, 0);
    assert_int_equal(strata_http1_read_request(&rb.in, &h), 0);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.target, "/chat?x=1");
    assert_string_equal(strata_http1_get(&h, "host"), "dev");
    assert_string_equal(strata_http1_get(&h, "X-Tag"), "a, b");
    assert_true(strata_http1_has_token(&h, "x-tag", "B"));
    /* the bytes behind the head stay for the next layer */
    assert_int_equal(strata_buffered_len(&rb.in), 4);

    n = strata_http1_write_response(out, sizeof out, 404, NULL, hd, NULL);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "HTTP/1.1 404 Status\r\n"
                             "Upgrade: websocket\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ws_in_storage, reset_trap,
                                        check_trap),
        cmocka_unit_test_setup_teardown(test_ws_deflate_declined, reset_trap,
                                        check_trap),
        cmocka_unit_test_setup_teardown(test_ws_init_refusals, reset_trap,
                                        check_trap),
        cmocka_unit_test_setup_teardown(test_no_heap, reset_trap, check_trap),
        cmocka_unit_test_setup_teardown(test_line_records, reset_trap,
                                        check_trap),
        cmocka_unit_test_setup_teardown(test_lenprefix_records, reset_trap,
                                        check_trap),
        cmocka_unit_test_setup_teardown(test_http1_head, reset_trap,
                                        check_trap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
