/* The ws layer: the UTF-8 validator, every frame form written raw into a
 * pipe end and read by the layer, the frames the layer writes read raw and
 * checked byte for byte (RFC 6455 5.7 examples), control frames, close,
 * every violation with its close frame on the wire, the handshake both
 * ways with its refusals and hand-off, permessage-deflate, then property
 * runs client <-> server over a hostile pipe schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/wbuf.h>
#include <strata/ws.h>

#include "protos/utf8.h"
#include "harness.h"

/* ---- helpers -------------------------------------------------------- */

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};
static const uint8_t peer_key[4] = {0xa1, 0xb2, 0xc3, 0xd4};

/* Every masking key (and nonce byte) from the 4 bytes at ud, so what a
 * client writes is known to the byte. */
static int fixed_random(void *ud, uint8_t *buf, size_t n)
{
    const uint8_t *k = ud;
    size_t i;

    for (i = 0; i < n; i++)
        buf[i] = k[i % 4];
    return 0;
}

static strata_ws_opts opts(int role)
{
    strata_ws_opts o;

    memset(&o, 0, sizeof o);
    o.role = role;
    o.no_handshake = 1;
    if (role == STRATA_WS_CLIENT) {
        o.random = fixed_random;
        o.random_ud = (void *)(uintptr_t)rfc_key;
    }
    return o;
}

/* A ws layer on one pipe end; raw is the peer's end, written by hand. */
typedef struct rig {
    strata_stream *raw;
    strata_stream *ws;
    int role;
} rig;

static void rig_open(rig *r, const strata_ws_opts *o)
{
    strata_pipe_opts po;
    strata_stream *b;

    memset(&po, 0, sizeof po);
    po.capacity = 1u << 20;
    assert_int_equal(strata_pipe_pair(&r->raw, &b, &po, NULL), 0);
    r->ws = strata_ws_new(b, o, NULL);
    assert_non_null(r->ws);
    r->role = o->role;
}

static void rig_role(rig *r, int role)
{
    strata_ws_opts o = opts(role);

    rig_open(r, &o);
}

static void rig_close(rig *r)
{
    strata_free(r->ws);
    strata_free(r->raw);
}

static void put(strata_stream *raw, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;

    while (len > 0) {
        ssize_t r = strata_write(raw, p, len);

        assert_true(r > 0);
        p += r;
        len -= (size_t)r;
    }
}

/* A frame as a peer writes it, masked with key unless key is NULL. */
static size_t mkframe(uint8_t *out, unsigned b0, const void *payload,
                      size_t len, const uint8_t *key)
{
    const uint8_t *p = payload;
    uint8_t mask = key != NULL ? 0x80 : 0;
    size_t n = 0, i;

    out[n++] = (uint8_t)b0;
    if (len < 126) {
        out[n++] = (uint8_t)(len | mask);
    } else if (len <= 0xffff) {
        out[n++] = (uint8_t)(126 | mask);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = (uint8_t)(127 | mask);
        for (i = 0; i < 8; i++)
            out[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    if (key != NULL) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (i = 0; i < len; i++)
        out[n + i] = (uint8_t)(p[i] ^ (key != NULL ? key[i % 4] : 0));
    return n + len;
}

/* The peer sends a frame: masked when the layer is a server. */
static void peer_frame(rig *r, unsigned b0, const void *payload, size_t len)
{
    uint8_t *buf = malloc(len + 14);

    assert_non_null(buf);
    put(r->raw, buf, mkframe(buf, b0, payload, len,
                             r->role == STRATA_WS_SERVER ? peer_key : NULL));
    free(buf);
}

/* Exactly n bytes the layer wrote. */
static void raw_get(rig *r, uint8_t *out, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = strata_read(r->raw, out + got, n - got);

        assert_true(k > 0);
        got += (size_t)k;
    }
}

static void raw_expect(rig *r, const void *want, size_t n)
{
    uint8_t *buf = malloc(n + 1);

    assert_non_null(buf);
    raw_get(r, buf, n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

static void raw_empty(rig *r)
{
    assert_int_equal(strata_pipe_pending(r->raw), 0);
}

/* One frame the layer wrote, unmasked if it was; returns its first byte
 * and the payload length. */
static unsigned raw_frame(rig *r, uint8_t *payload, size_t cap, size_t *len,
                          int *masked)
{
    uint8_t h[14], key[4] = {0, 0, 0, 0};
    uint64_t l;
    size_t i;

    raw_get(r, h, 2);
    l = h[1] & 0x7f;
    if (l == 126) {
        raw_get(r, h + 2, 2);
        l = (uint64_t)h[2] << 8 | h[3];
    } else if (l == 127) {
        raw_get(r, h + 2, 8);
        l = 0;
        for (i = 0; i < 8; i++)
            l = l << 8 | h[2 + i];
    }
    *masked = (h[1] & 0x80) != 0;
    if (*masked)
        raw_get(r, key, 4);
    assert_true(l <= cap);
    raw_get(r, payload, (size_t)l);
    for (i = 0; i < l; i++)
        payload[i] ^= key[i % 4];
    *len = (size_t)l;
    return h[0];
}

/* The close frame the layer must have written, with its code. */
static void raw_close(rig *r, unsigned code)
{
    uint8_t p[125];
    size_t len;
    int masked;

    assert_int_equal(raw_frame(r, p, sizeof p, &len, &masked), 0x88);
    assert_int_equal(masked, r->role == STRATA_WS_CLIENT);
    assert_true(len >= 2);
    assert_int_equal((unsigned)p[0] << 8 | p[1], code);
}

/* One whole message read in pieces of `piece`; the pieces' flags ORed. */
static ssize_t get_msg(strata_stream *s, uint8_t *out, size_t cap,
                       size_t piece, unsigned *all)
{
    size_t got = 0;

    *all = 0;
    for (;;) {
        unsigned fl = 0;
        size_t want = cap - got < piece ? cap - got : piece;
        ssize_t r = strata_recv(s, out + got, want, &fl);

        if (r < 0)
            return r;
        *all |= fl;
        got += (size_t)r;
        if (fl & STRATA_MSG_END)
            return (ssize_t)got;
    }
}

static void expect_msg(strata_stream *s, const void *want, size_t len,
                       unsigned want_flags)
{
    uint8_t *buf = malloc(len + 16);
    unsigned fl;
    ssize_t r;

    assert_non_null(buf);
    r = get_msg(s, buf, len + 16, 4096, &fl);
    assert_int_equal(r, (ssize_t)len);
    assert_memory_equal(buf, want, len);
    assert_int_equal(fl, want_flags | STRATA_MSG_END);
    free(buf);
}

static ssize_t recv_some(strata_stream *s)
{
    uint8_t buf[256];
    unsigned fl;

    return strata_recv(s, buf, sizeof buf, &fl);
}

/* The peer sends a bad frame: the layer fails with status, having sent a
 * close frame with code, and stays failed. */
static void expect_violation(rig *r, ssize_t status, unsigned code)
{
    assert_int_equal(recv_some(r->ws), status);
    assert_int_equal(strata_ws_error_code(r->ws), code);
    raw_close(r, code);
    raw_empty(r);
    assert_int_equal(recv_some(r->ws), status);
    assert_true(strata_poll(r->ws, STRATA_POLL_IN) & STRATA_POLL_ERR);
    assert_int_equal(strata_write(r->ws, "x", 1), status);
}

static void violation(int role, const uint8_t *wire, size_t n, ssize_t status,
                      unsigned code)
{
    rig r;

    rig_role(&r, role);
    put(r.raw, wire, n);
    expect_violation(&r, status, code);
    rig_close(&r);
}

static void send_all(strata_stream *s, const void *p, size_t len,
                     unsigned flags)
{
    const uint8_t *b = p;
    size_t off = 0;

    for (;;) {
        ssize_t r = strata_send(s, b + off, len - off, flags);

        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        assert_true(r >= 0);
        off += (size_t)r;
        if (off == len)
            return;
    }
}

/* ---- UTF-8 ------------------------------------------------------------ */

static int valid(const char *s, size_t n)
{
    return strata_utf8_valid(s, n);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(valid("", 0));
    assert_true(valid("hello, world 0123456789 plain ascii text", 40));
    assert_true(valid("\x7f", 1));
    assert_true(valid("\xc2\x80", 2));              /* U+0080 */
    assert_true(valid("\xdf\xbf", 2));              /* U+07FF */
    assert_true(valid("\xe0\xa0\x80", 3));          /* U+0800 */
    assert_true(valid("\xed\x9f\xbf", 3));          /* U+D7FF */
    assert_true(valid("\xee\x80\x80", 3));          /* U+E000 */
    assert_true(valid("\xef\xbf\xbf", 3));          /* U+FFFF */
    assert_true(valid("\xf0\x90\x80\x80", 4));      /* U+10000 */
    assert_true(valid("\xf4\x8f\xbf\xbf", 4));      /* U+10FFFF */
    assert_true(valid("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11));
    assert_true(valid("0123456789abcdef\xce\xba" "0123456789abcdef", 34));
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    assert_false(valid("\x80", 1));                 /* stray continuation */
    assert_false(valid("\xbf", 1));
    assert_false(valid("\xc0\x80", 2));             /* overlong NUL */
    assert_false(valid("\xc1\xbf", 2));             /* overlong */
    assert_false(valid("\xe0\x80\x80", 3));         /* overlong */
    assert_false(valid("\xe0\x9f\xbf", 3));         /* overlong U+07FF */
    assert_false(valid("\xf0\x80\x80\x80", 4));     /* overlong */
    assert_false(valid("\xf0\x8f\xbf\xbf", 4));     /* overlong U+FFFF */
    assert_false(valid("\xed\xa0\x80", 3));         /* U+D800 */
    assert_false(valid("\xed\xbf\xbf", 3));         /* U+DFFF */
    assert_false(valid("\xf4\x90\x80\x80", 4));     /* U+110000 */
    assert_false(valid("\xf5\x80\x80\x80", 4));
    assert_false(valid("\xff", 1));
    assert_false(valid("\xfe", 1));
    assert_false(valid("\xc2", 1));                 /* truncated */
    assert_false(valid("\xe1\x80", 2));
    assert_false(valid("\xf1\x80\x80", 3));
    assert_false(valid("\xc2\x41", 2));             /* lead, no continuation */
    assert_false(valid("abcdefgh\xc2", 9));         /* after the fast path */
    assert_false(valid("abcdefghijklmnop\x80xyz", 20));
}

static void test_utf8_incremental(void **state)
{
    const char *s = "a\xf0\x9f\x98\x80" "b\xe2\x82\xac" "c";  /* U+1F600, U+20AC */
    size_t n = strlen(s), cut, cut2;

    (void)state;
    /* every split into three pieces gives the one-piece answer */
    for (cut = 0; cut <= n; cut++)
        for (cut2 = cut; cut2 <= n; cut2++) {
            uint8_t st = strata_utf8_feed(STRATA_UTF8_ACCEPT, s, cut);

            st = strata_utf8_feed(st, s + cut, cut2 - cut);
            if (cut2 < n && cut2 > 0 && (s[cut2] & 0xc0) == 0x80)
                assert_int_not_equal(st, STRATA_UTF8_ACCEPT);
            st = strata_utf8_feed(st, s + cut2, n - cut2);
            assert_int_equal(st, STRATA_UTF8_ACCEPT);
        }
    /* rejection is final */
    assert_int_equal(strata_utf8_feed(STRATA_UTF8_ACCEPT, "\xc0", 1),
                     STRATA_UTF8_REJECT);
    assert_int_equal(strata_utf8_feed(STRATA_UTF8_REJECT, "abc", 3),
                     STRATA_UTF8_REJECT);
}

/* Every code point's encoding passes; every 2-byte sequence is judged as
 * a direct reading of RFC 3629 would. */
static void test_utf8_exhaustive(void **state)
{
    uint32_t cp;
    unsigned a, b;

    (void)state;
    for (cp = 0; cp <= 0x10ffff; cp++) {
        uint8_t e[4];
        size_t n;

        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        if (cp < 0x80) {
            e[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            e[0] = (uint8_t)(0xc0 | cp >> 6);
            e[1] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            e[0] = (uint8_t)(0xe0 | cp >> 12);
            e[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            e[2] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            e[0] = (uint8_t)(0xf0 | cp >> 18);
            e[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            e[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            e[3] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 4;
        }
        if (!strata_utf8_valid(e, n))
            fail_msg("U+%04X rejected", (unsigned)cp);
    }
    for (a = 0; a < 256; a++)
        for (b = 0; b < 256; b++) {
            uint8_t e[2] = {(uint8_t)a, (uint8_t)b};
            int want = (a < 0x80 && b < 0x80) ||
                       (a >= 0xc2 && a <= 0xdf && b >= 0x80 && b <= 0xbf);

            assert_int_equal(strata_utf8_valid(e, 2), want);
        }
}

/* ---- construction ----------------------------------------------------- */

static void test_new_bad_args(void **state)
{
    strata_stream *a, *b, *buf;
    strata_ws_opts o = opts(STRATA_WS_SERVER);

    (void)state;
    assert_null(strata_ws_new(NULL, &o, NULL));
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_null(strata_ws_new(b, NULL, NULL));
    o.role = 7;
    assert_null(strata_ws_new(b, &o, NULL));
    o = opts(STRATA_WS_CLIENT);
    o.no_handshake = 0;            /* a client handshake needs a host */
    assert_null(strata_ws_new(b, &o, NULL));
    o = opts(STRATA_WS_SERVER);
    o.no_handshake = 0;
    o.deflate.server_max_window_bits = 7;
    assert_null(strata_ws_new(b, &o, NULL));
    o = opts(STRATA_WS_SERVER);
    o.deflate_agreed = "x-unknown";
    assert_null(strata_ws_new(b, &o, NULL));
    o = opts(STRATA_WS_SERVER);
    o.buffer = 64;                 /* cannot hold a control frame */
    assert_null(strata_ws_new(b, &o, NULL));
    {
        static const char *const bad[] = {"chat", "two words", NULL};

        o = opts(STRATA_WS_CLIENT);
        o.no_handshake = 0;
        o.host = "h";
        o.protocols = bad;
        assert_null(strata_ws_new(b, &o, NULL));
    }
    /* over a buffered stream given by the caller, which it then owns */
    buf = strata_buffered_new(b, 4096, NULL);
    o = opts(STRATA_WS_SERVER);
    b = strata_ws_new(buf, &o, NULL);
    assert_non_null(b);
    assert_ptr_equal(b->lower, buf);
    assert_string_equal(strata_name(b), "ws");
    assert_int_equal(strata_fd(b), -1);
    assert_int_equal(strata_ws_status(b), 0);
    assert_null(strata_ws_protocol(b));
    assert_null(strata_ws_request_of(b));
    assert_int_equal(strata_ws_deflate(b), 0);
    assert_int_equal(strata_ws_close_code(b), 0);
    assert_null(strata_ws_close_reason(b));
    assert_int_equal(strata_ws_error_code(b), 0);
    assert_int_equal(strata_ws_closing(b), 0);
    /* not a ws stream */
    assert_int_equal(strata_ws_ping(a, "x", 1), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_close(a, 1000, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_handshake(a), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_error_code(a), 0);
    strata_free(b);
    strata_free(a);
}

/* ---- RFC 6455 5.7 examples -------------------------------------------- */

static void test_rfc_hello_server_sends(void **state)
{
    static const uint8_t wire[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    assert_int_equal(strata_send(r.ws, "Hello", 5,
                                 STRATA_MSG_END | STRATA_MSG_TEXT), 5);
    raw_expect(&r, wire, sizeof wire);
    raw_empty(&r);
    rig_close(&r);
}

static void test_rfc_hello_client_sends(void **state)
{
    static const uint8_t wire[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                   0x9f, 0x4d, 0x51, 0x58};
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    assert_int_equal(strata_send(r.ws, "Hello", 5,
                                 STRATA_MSG_END | STRATA_MSG_TEXT), 5);
    raw_expect(&r, wire, sizeof wire);
    raw_empty(&r);
    rig_close(&r);
}

static void test_rfc_hello_received(void **state)
{
    static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c,
                                       0x6f};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                     0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                   0x80, 0x02, 0x6c, 0x6f};
    uint8_t buf[16];
    unsigned fl;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    put(r.raw, unmasked, sizeof unmasked);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    /* a fragmented unmasked text message: the pieces keep their frames */
    put(r.raw, frag, sizeof frag);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 3);
    assert_int_equal(fl, STRATA_MSG_TEXT);
    assert_memory_equal(buf, "Hel", 3);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    assert_int_equal(fl, STRATA_MSG_TEXT | STRATA_MSG_END);
    assert_memory_equal(buf, "lo", 2);
    rig_close(&r);

    rig_role(&r, STRATA_WS_SERVER);
    put(r.raw, masked, sizeof masked);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    rig_close(&r);
}

static void test_rfc_ping_pong(void **state)
{
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t pong[] = {0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    put(r.raw, ping, sizeof ping);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    /* the client's pong is masked */
    {
        static const uint8_t want[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};
        raw_expect(&r, want, sizeof want);
    }
    rig_close(&r);

    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x89, "Hello", 5);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    raw_expect(&r, pong, sizeof pong);
    raw_empty(&r);
    rig_close(&r);
}

/* ---- lengths ------------------------------------------------------------ */

/* A message of n bytes each way, both roles: the header bytes on the wire
 * and the payload round trip. */
static void length_case(int role, size_t n)
{
    uint8_t *msg = malloc(n + 1), *got = malloc(n + 1), hdr[14];
    size_t i, hl, len;
    int masked;
    rig r;

    assert_true(msg != NULL && got != NULL);
    for (i = 0; i < n; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    rig_role(&r, role);
    send_all(r.ws, msg, n, STRATA_MSG_END);
    hl = mkframe(hdr, 0x82, NULL, 0, NULL); /* header form of length 0 */
    (void)hl;
    {
        uint8_t h[2];

        raw_get(&r, h, 2);
        assert_int_equal(h[0], 0x82);
        assert_int_equal((h[1] & 0x80) != 0, role == STRATA_WS_CLIENT);
        if (n < 126) {
            assert_int_equal(h[1] & 0x7f, n);
        } else if (n <= 0xffff) {
            uint8_t e[2];

            assert_int_equal(h[1] & 0x7f, 126);
            raw_get(&r, e, 2);
            assert_int_equal((size_t)e[0] << 8 | e[1], n);
        } else {
            uint8_t e[8];
            uint64_t v = 0;

            assert_int_equal(h[1] & 0x7f, 127);
            raw_get(&r, e, 8);
            for (i = 0; i < 8; i++)
                v = v << 8 | e[i];
            assert_int_equal(v, n);
        }
        if (role == STRATA_WS_CLIENT) {
            uint8_t k[4];

            raw_get(&r, k, 4);
            assert_memory_equal(k, rfc_key, 4);
        }
        raw_get(&r, got, n);
        if (role == STRATA_WS_CLIENT)
            for (i = 0; i < n; i++)
                got[i] ^= rfc_key[i % 4];
        assert_memory_equal(got, msg, n);
    }
    raw_empty(&r);
    /* and the same length received */
    peer_frame(&r, 0x82, msg, n);
    expect_msg(r.ws, msg, n, 0);
    (void)masked;
    (void)len;
    rig_close(&r);
    free(msg);
    free(got);
}

static void test_lengths(void **state)
{
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70001};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        length_case(STRATA_WS_SERVER, sizes[i]);
        length_case(STRATA_WS_CLIENT, sizes[i]);
    }
}

static void test_non_minimal_lengths(void **state)
{
    uint8_t w[32];

    (void)state;
    /* 126 form for 125 bytes */
    w[0] = 0x82;
    w[1] = 126;
    w[2] = 0;
    w[3] = 125;
    violation(STRATA_WS_CLIENT, w, 4, STRATA_ERR_PROTO, 1002);
    /* 127 form for 65535 bytes */
    memset(w, 0, sizeof w);
    w[0] = 0x82;
    w[1] = 127;
    w[8] = 0xff;
    w[9] = 0xff;
    violation(STRATA_WS_CLIENT, w, 10, STRATA_ERR_PROTO, 1002);
    /* 127 form with the top bit set */
    memset(w, 0, sizeof w);
    w[0] = 0x82;
    w[1] = 127;
    w[2] = 0x80;
    w[9] = 1;
    violation(STRATA_WS_CLIENT, w, 10, STRATA_ERR_PROTO, 1002);
    /* the same masked, at a server */
    memset(w, 0, sizeof w);
    w[0] = 0x82;
    w[1] = 0x80 | 126;
    w[3] = 5;
    violation(STRATA_WS_SERVER, w, 8, STRATA_ERR_PROTO, 1002);
}

/* ---- masking rules, RSV bits, opcodes ---------------------------------- */

static void test_masking_rules(void **state)
{
    uint8_t w[16];
    size_t n;

    (void)state;
    /* a server refuses an unmasked client frame */
    n = mkframe(w, 0x82, "abc", 3, NULL);
    violation(STRATA_WS_SERVER, w, n, STRATA_ERR_PROTO, 1002);
    /* a client refuses a masked server frame */
    n = mkframe(w, 0x82, "abc", 3, peer_key);
    violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
    /* control frames too */
    n = mkframe(w, 0x89, "", 0, NULL);
    violation(STRATA_WS_SERVER, w, n, STRATA_ERR_PROTO, 1002);
}

static void test_rsv_bits(void **state)
{
    static const unsigned bad[] = {0xc2, 0xa2, 0x92, 0xf2, 0xc9};
    uint8_t w[16];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = mkframe(w, bad[i], "ab", 2, NULL);
        violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
    }
}

static void test_unknown_opcodes(void **state)
{
    static const unsigned ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    uint8_t w[16];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof ops / sizeof *ops; i++) {
        n = mkframe(w, 0x80 | ops[i], "", 0, peer_key);
        violation(STRATA_WS_SERVER, w, n, STRATA_ERR_PROTO, 1002);
    }
}

static void test_control_rules(void **state)
{
    uint8_t w[200], big[126];
    size_t n;

    (void)state;
    memset(big, 'x', sizeof big);
    /* a fragmented ping */
    n = mkframe(w, 0x09, "a", 1, NULL);
    violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
    /* a 126-byte ping */
    n = mkframe(w, 0x89, big, 126, NULL);
    violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
    /* a 126-byte close */
    n = mkframe(w, 0x88, big, 126, NULL);
    violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
}

static void test_fragment_rules(void **state)
{
    uint8_t w[64];
    size_t n;

    (void)state;
    /* continuation with no message started */
    n = mkframe(w, 0x80, "abc", 3, NULL);
    violation(STRATA_WS_CLIENT, w, n, STRATA_ERR_PROTO, 1002);
    /* a new data frame while a fragmented message is open */
    n = mkframe(w, 0x01, "abc", 3, NULL);
    n += mkframe(w + n, 0x82, "def", 3, NULL);
    {
        rig r;

        rig_role(&r, STRATA_WS_CLIENT);
        put(r.raw, w, n);
        {
            uint8_t buf[8];
            unsigned fl;

            assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 3);
            assert_int_equal(fl, STRATA_MSG_TEXT);
        }
        expect_violation(&r, STRATA_ERR_PROTO, 1002);
        rig_close(&r);
    }
}

/* ---- fragmentation and interleaved control frames -------------------- */

static void test_fragments_with_control(void **state)
{
    uint8_t buf[64];
    unsigned fl;
    size_t len;
    int masked;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x02, "one ", 4);
    peer_frame(&r, 0x89, "p1", 2);
    peer_frame(&r, 0x00, "two ", 4);
    peer_frame(&r, 0x8a, "unsolicited", 11);
    peer_frame(&r, 0x00, "", 0);      /* an empty middle fragment */
    peer_frame(&r, 0x80, "three", 5);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 4);
    assert_int_equal(fl, 0);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 4);
    assert_memory_equal(buf, "two ", 4);
    /* the pong went before more data was returned */
    assert_int_equal(raw_frame(&r, buf, sizeof buf, &len, &masked), 0x8a);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "p1", 2);
    assert_false(masked);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 5);
    assert_int_equal(fl, STRATA_MSG_END);
    assert_memory_equal(buf, "three", 5);
    raw_empty(&r);
    rig_close(&r);
}

static void test_zero_length_final_fragment(void **state)
{
    uint8_t buf[16];
    unsigned fl;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x01, "abc", 3);
    peer_frame(&r, 0x80, "", 0);
    peer_frame(&r, 0x82, "", 0);      /* then an empty message */
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 3);
    assert_int_equal(fl, STRATA_MSG_TEXT);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 0);
    assert_int_equal(fl, STRATA_MSG_TEXT | STRATA_MSG_END);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 0);
    assert_int_equal(fl, STRATA_MSG_END);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl),
                     STRATA_NEED_READ);
    rig_close(&r);
}

static void test_send_fragments(void **state)
{
    static const uint8_t want[] = {0x01, 0x03, 'H', 'e', 'l',
                                   0x00, 0x01, 'l',
                                   0x80, 0x01, 'o',
                                   0x82, 0x00,
                                   0x02, 0x01, 'x', 0x80, 0x00};
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    assert_int_equal(strata_send(r.ws, "Hel", 3, STRATA_MSG_TEXT), 3);
    /* the text flag of later sends does not matter */
    assert_int_equal(strata_send(r.ws, "l", 1, 0), 1);
    assert_int_equal(strata_send(r.ws, "", 0, 0), 0); /* nothing */
    assert_int_equal(strata_send(r.ws, "o", 1, STRATA_MSG_END), 1);
    assert_int_equal(strata_send(r.ws, "", 0, STRATA_MSG_END), 0);
    assert_int_equal(strata_send(r.ws, "x", 1, 0), 1);
    assert_int_equal(strata_send(r.ws, "", 0, STRATA_MSG_END), 0);
    raw_expect(&r, want, sizeof want);
    raw_empty(&r);
    /* bad flags */
    assert_int_equal(strata_send(r.ws, "x", 1, STRATA_MSG_COMPRESSED),
                     STRATA_ERR_ARG);
    rig_close(&r);
}

static void test_sendv_iovecs(void **state)
{
    struct iovec v[20];
    uint8_t want[64], got[64];
    size_t len, i, n = 0;
    int masked, role;
    rig r;

    (void)state;
    for (i = 0; i < 20; i++) {
        want[i] = (uint8_t)('a' + i);
        v[i].iov_base = want + i;
        v[i].iov_len = 1;
    }
    v[3].iov_len = 0;   /* an empty one in the middle */
    for (i = 0; i < 20; i++)
        n += v[i].iov_len;
    for (role = 0; role < 2; role++) {
        uint8_t flat[64];
        size_t k = 0;

        for (i = 0; i < 20; i++)
            if (v[i].iov_len)
                flat[k++] = want[i];
        rig_role(&r, role);
        assert_int_equal(strata_sendv(r.ws, v, 20, STRATA_MSG_END),
                         (ssize_t)n);
        assert_int_equal(raw_frame(&r, got, sizeof got, &len, &masked), 0x82);
        assert_int_equal(len, n);
        assert_memory_equal(got, flat, n);
        assert_int_equal(masked, role == STRATA_WS_CLIENT);
        rig_close(&r);
    }
}

static void test_send_text_checked(void **state)
{
    uint8_t buf[16];
    size_t len;
    int masked;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    assert_int_equal(strata_send(r.ws, "a\xc0\x80", 3,
                                 STRATA_MSG_TEXT | STRATA_MSG_END),
                     STRATA_ERR_ARG);
    /* a code point split across fragments is fine, unfinished at the end
     * is not, and a refused send moved nothing */
    assert_int_equal(strata_send(r.ws, "\xe2\x82", 2, STRATA_MSG_TEXT), 2);
    assert_int_equal(strata_send(r.ws, "", 0, STRATA_MSG_END),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_send(r.ws, "\xac", 1, STRATA_MSG_END), 1);
    assert_int_equal(raw_frame(&r, buf, sizeof buf, &len, &masked), 0x01);
    assert_int_equal(raw_frame(&r, buf, sizeof buf, &len, &masked), 0x80);
    assert_int_equal(len, 1);
    raw_empty(&r);
    /* binary is not checked */
    assert_int_equal(strata_send(r.ws, "\xff", 1, STRATA_MSG_END), 1);
    rig_close(&r);
}

/* A send continued after a partial write: the rest goes with the same
 * flags, and the frame on the wire is one frame of the whole length. */
static void test_partial_send_continues(void **state)
{
    strata_pipe_opts po;
    strata_stream *a, *b, *ws;
    strata_ws_opts o;
    uint8_t msg[3000], wire[4000];
    size_t off = 0, got = 0, i;
    int role;

    (void)state;
    for (i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    for (role = 0; role < 2; role++) {
        memset(&po, 0, sizeof po);
        po.max_chunk = 7;
        po.need_percent = 30;
        po.seed = 99;
        o = opts(role);
        o.scratch = 64;  /* the client masks in many chunks */
        assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
        ws = strata_ws_new(b, &o, NULL);
        assert_non_null(ws);
        /* bad continuations are refused and change nothing */
        while (off == 0) {
            ssize_t r = strata_send(ws, msg, sizeof msg, STRATA_MSG_END);

            if (r > 0)
                off += (size_t)r;
        }
        if (off < sizeof msg) {
            assert_int_equal(strata_send(ws, msg + off, sizeof msg - off + 1,
                                         STRATA_MSG_END),
                             STRATA_ERR_ARG);
            assert_int_equal(strata_send(ws, msg + off, sizeof msg - off - 1,
                                         STRATA_MSG_END),
                             STRATA_ERR_ARG);
            assert_int_equal(strata_shutdown(ws), STRATA_ERR_STATE);
            assert_int_equal(strata_ws_ping(ws, "p", 1), 0);
        }
        while (off < sizeof msg) {
            ssize_t r = strata_send(ws, msg + off, sizeof msg - off,
                                    STRATA_MSG_END);

            if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
                continue;
            assert_true(r > 0);
            off += (size_t)r;
        }
        while (strata_flush(ws) != 0)
            ;
        for (;;) {
            ssize_t r = strata_read(a, wire + got, sizeof wire - got);

            if (r == STRATA_NEED_READ && strata_pipe_pending(a) == 0)
                break;
            if (r > 0)
                got += (size_t)r;
        }
        {
            size_t hl = role == STRATA_WS_CLIENT ? 8 : 4;

            assert_int_equal(wire[0], 0x82);
            assert_int_equal(wire[1] & 0x7f, 126);
            assert_int_equal((size_t)wire[2] << 8 | wire[3], sizeof msg);
            if (role == STRATA_WS_CLIENT)
                for (i = 0; i < sizeof msg; i++)
                    wire[hl + i] ^= rfc_key[i % 4];
            assert_memory_equal(wire + hl, msg, sizeof msg);
            if (off == sizeof msg && got > hl + sizeof msg) /* the ping */
                assert_int_equal(wire[hl + sizeof msg], 0x89);
        }
        off = got = 0;
        strata_free(ws);
        strata_free(a);
    }
}

/* ---- ping / pong ------------------------------------------------------- */

/* While the pong cannot go, recv goes on reading; the latest ping's
 * payload is the one answered; recv says NEED_WRITE when it has nothing
 * else to do. */
static void test_pong_waits(void **state)
{
    strata_pipe_opts po;
    strata_stream *raw, *b, *ws;
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    uint8_t fill[62], w[64], buf[64];
    unsigned fl;
    size_t n;

    (void)state;
    memset(&po, 0, sizeof po);
    po.capacity = 64;
    assert_int_equal(strata_pipe_pair(&raw, &b, &po, NULL), 0);
    ws = strata_ws_new(b, &o, NULL);
    memset(fill, 'f', sizeof fill);
    /* our direction is full: 2 + 62 bytes */
    assert_int_equal(strata_send(ws, fill, sizeof fill, STRATA_MSG_END), 62);
    n = mkframe(w, 0x89, "first", 5, peer_key);
    put(raw, w, n);
    n = mkframe(w, 0x89, "second", 6, peer_key);
    put(raw, w, n);
    n = mkframe(w, 0x82, "data", 4, peer_key);
    put(raw, w, n);
    assert_int_equal(strata_recv(ws, buf, sizeof buf, &fl), 4);
    assert_int_equal(fl, STRATA_MSG_END);
    assert_true(strata_wants(ws) & STRATA_WANT_WRITE);
    assert_int_equal(strata_recv(ws, buf, sizeof buf, &fl), STRATA_NEED_WRITE);
    assert_int_equal(strata_read(raw, buf, 64), 64);
    assert_int_equal(strata_recv(ws, buf, sizeof buf, &fl), STRATA_NEED_READ);
    assert_int_equal(strata_read(raw, buf, 64), 8);
    assert_memory_equal(buf, "\x8a\x06second", 8);
    assert_int_equal(strata_wants(ws) & STRATA_WANT_WRITE, 0);
    strata_free(ws);
    strata_free(raw);
}

static void test_ping_api(void **state)
{
    uint8_t buf[200], big[126];
    size_t len;
    int masked;
    rig r;

    (void)state;
    memset(big, 'b', sizeof big);
    rig_role(&r, STRATA_WS_CLIENT);
    assert_int_equal(strata_ws_ping(r.ws, big, 126), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_ping(r.ws, NULL, 1), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_ping(r.ws, big, 125), 0);
    assert_int_equal(raw_frame(&r, buf, sizeof buf, &len, &masked), 0x89);
    assert_int_equal(len, 125);
    assert_true(masked);
    assert_memory_equal(buf, big, 125);
    assert_int_equal(strata_ws_ping(r.ws, NULL, 0), 0);
    assert_int_equal(raw_frame(&r, buf, sizeof buf, &len, &masked), 0x89);
    assert_int_equal(len, 0);
    /* a pong from the peer is taken quietly, and counted */
    assert_int_equal(strata_ws_pongs(r.ws), 0);
    peer_frame(&r, 0x8a, "x", 1);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    assert_int_equal(strata_ws_pongs(r.ws), 1);
    raw_empty(&r);
    rig_close(&r);
}

/* ---- close ---------------------------------------------------------------- */

static void close_payload(uint8_t *p, unsigned code, const char *reason,
                          size_t rlen)
{
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rlen);
}

static void test_close_valid_codes(void **state)
{
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                     1010, 1011, 1012, 1013, 1014, 3000, 3999,
                                     4000, 4999};
    uint8_t p[125];
    size_t i;
    rig r;

    (void)state;
    for (i = 0; i < sizeof codes / sizeof *codes; i++) {
        rig_role(&r, STRATA_WS_SERVER);
        close_payload(p, codes[i], "bye \xce\xba", 6);
        peer_frame(&r, 0x88, p, 8);
        assert_int_equal(recv_some(r.ws), STRATA_EOF);
        assert_int_equal(recv_some(r.ws), STRATA_EOF);
        assert_int_equal(strata_ws_close_code(r.ws), codes[i]);
        assert_string_equal(strata_ws_close_reason(r.ws), "bye \xce\xba");
        assert_int_equal(strata_ws_error_code(r.ws), 0);
        assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_HUP);
        /* answered at once (RFC 6455 5.5.1) with the peer's code, and the
         * transport's direction ended behind it */
        raw_close(&r, codes[i]);
        assert_int_equal(strata_read(r.raw, p, 1), STRATA_EOF);
        assert_int_equal(strata_write(r.ws, "x", 1), STRATA_ERR_CLOSED);
        assert_int_equal(strata_shutdown(r.ws), 0);
        rig_close(&r);
    }
}

/* A message being sent when the peer's close arrives is finished first;
 * the answer follows it. */
static void test_close_reply_after_message(void **state)
{
    uint8_t p[125];
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    assert_int_equal(strata_send(r.ws, "ab", 2, 0), 2);
    close_payload(p, 1001, "", 0);
    peer_frame(&r, 0x88, p, 2);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    assert_int_equal(strata_send(r.ws, "cd", 2, STRATA_MSG_END), 2);
    assert_int_equal(raw_frame(&r, p, sizeof p, &(size_t){0}, &(int){0}),
                     0x02);
    assert_int_equal(raw_frame(&r, p, sizeof p, &(size_t){0}, &(int){0}),
                     0x80);
    raw_close(&r, 1001);
    assert_int_equal(strata_write(r.ws, "x", 1), STRATA_ERR_CLOSED);
    rig_close(&r);
}

/* half_close: the peer's close ends its direction only; ours goes on until
 * strata_shutdown, whose close echoes the peer's code. */
static void test_close_half_close(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    uint8_t p[125];
    rig r;

    (void)state;
    o.half_close = 1;
    rig_open(&r, &o);
    close_payload(p, 4000, "", 0);
    peer_frame(&r, 0x88, p, 2);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    raw_empty(&r);
    assert_int_equal(strata_write(r.ws, "x", 1), 1);
    assert_int_equal(strata_shutdown(r.ws), 0);
    assert_int_equal(raw_frame(&r, p, sizeof p, &(size_t){0}, &(int){0}),
                     0x82);
    raw_close(&r, 4000);
    raw_empty(&r);
    assert_int_equal(strata_write(r.ws, "x", 1), STRATA_ERR_CLOSED);
    assert_int_equal(strata_shutdown(r.ws), 0);
    assert_int_equal(strata_read(r.raw, p, 1), STRATA_EOF);
    rig_close(&r);
}

static void test_close_invalid_codes(void **state)
{
    static const unsigned codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016,
                                     1100, 2000, 2999, 5000, 65535};
    uint8_t p[4];
    size_t i;
    rig r;

    (void)state;
    for (i = 0; i < sizeof codes / sizeof *codes; i++) {
        rig_role(&r, STRATA_WS_CLIENT);
        close_payload(p, codes[i], "", 0);
        peer_frame(&r, 0x88, p, 2);
        expect_violation(&r, STRATA_ERR_PROTO, 1002);
        rig_close(&r);
    }
    /* a 1-byte close payload */
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x88, "\x03", 1);
    expect_violation(&r, STRATA_ERR_PROTO, 1002);
    rig_close(&r);
}

static void test_close_reason_utf8(void **state)
{
    uint8_t p[16];
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    close_payload(p, 1000, "ok\xed\xa0\x80", 5);
    peer_frame(&r, 0x88, p, 7);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);
}

static void test_close_empty(void **state)
{
    uint8_t p[16];
    size_t len;
    int masked;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x88, "", 0);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    assert_int_equal(strata_ws_close_code(r.ws), STRATA_WS_NO_STATUS);
    assert_string_equal(strata_ws_close_reason(r.ws), "");
    assert_int_equal(strata_shutdown(r.ws), 0);
    /* no code to echo: 1000 */
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x88);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "\x03\xe8", 2);
    rig_close(&r);
}

/* We close first: our close, then the peer's data still arrives, then
 * its close ends our reading. */
static void test_close_initiated(void **state)
{
    uint8_t p[32];
    size_t len;
    int masked;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    assert_int_equal(strata_ws_close(r.ws, 999, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_close(r.ws, 1005, NULL), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_close(r.ws, 1000, "\xff"), STRATA_ERR_ARG);
    {
        char longr[130];

        memset(longr, 'r', sizeof longr - 1);
        longr[129] = '\0';
        assert_int_equal(strata_ws_close(r.ws, 1000, longr), STRATA_ERR_ARG);
    }
    assert_int_equal(strata_ws_close(r.ws, 4001, "going"), 0);
    assert_int_equal(strata_ws_closing(r.ws), 1);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x88);
    assert_int_equal(len, 7);
    assert_memory_equal(p, "\x0f\xa1going", 7);
    assert_int_equal(strata_write(r.ws, "x", 1), STRATA_ERR_STATE);
    assert_int_equal(strata_ws_ping(r.ws, "x", 1), STRATA_ERR_STATE);
    /* a ping now gets no pong: our close was the last frame */
    peer_frame(&r, 0x82, "late", 4);
    peer_frame(&r, 0x89, "p", 1);
    close_payload(p, 4001, "", 0);
    peer_frame(&r, 0x88, p, 2);
    expect_msg(r.ws, "late", 4, 0);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    assert_int_equal(strata_ws_closing(r.ws), 0);
    raw_empty(&r);
    assert_int_equal(strata_shutdown(r.ws), 0);
    raw_empty(&r);
    rig_close(&r);
}

static void test_shutdown_mid_message(void **state)
{
    uint8_t p[16];
    size_t len;
    int masked;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    assert_int_equal(strata_send(r.ws, "ab", 2, 0), 2);
    assert_int_equal(strata_shutdown(r.ws), STRATA_ERR_STATE);
    /* strata_ws_close may end an open message between frames */
    assert_int_equal(strata_ws_close(r.ws, 1001, NULL), 0);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x02);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x88);
    assert_true(masked);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "\x03\xe9", 2);
    rig_close(&r);
}

/* The stream ending: between messages it is EOF (1006), inside a frame or
 * a message it is a truncation. */
static void test_stream_end(void **state)
{
    uint8_t buf[16];
    unsigned fl;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x82, "ab", 2);
    strata_shutdown(r.raw);
    expect_msg(r.ws, "ab", 2, 0);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    assert_int_equal(strata_ws_close_code(r.ws), STRATA_WS_ABNORMAL);
    assert_int_equal(strata_ws_error_code(r.ws), 0);
    rig_close(&r);

    rig_role(&r, STRATA_WS_CLIENT);
    put(r.raw, "\x82\x05" "ab", 4);
    strata_shutdown(r.raw);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(strata_ws_close_code(r.ws), STRATA_WS_ABNORMAL);
    assert_int_equal(strata_ws_error_code(r.ws), 1002);
    rig_close(&r);

    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x02, "ab", 2);
    strata_shutdown(r.raw);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    rig_close(&r);

    rig_role(&r, STRATA_WS_CLIENT);
    put(r.raw, "\x82", 1);
    strata_shutdown(r.raw);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    rig_close(&r);
}

/* ---- limits -------------------------------------------------------------- */

static void test_max_frame(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_CLIENT);
    uint8_t buf[200];
    rig r;

    (void)state;
    o.max_frame = 100;
    rig_open(&r, &o);
    memset(buf, 'a', sizeof buf);
    peer_frame(&r, 0x82, buf, 100);
    expect_msg(r.ws, buf, 100, 0);
    peer_frame(&r, 0x82, buf, 101);
    expect_violation(&r, STRATA_ERR_TOO_BIG, 1009);
    rig_close(&r);

    /* the header alone decides: no payload byte was sent */
    o.max_frame = 1000;
    rig_open(&r, &o);
    put(r.raw, "\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10);
    expect_violation(&r, STRATA_ERR_TOO_BIG, 1009);
    rig_close(&r);
}

static void test_max_message(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    uint8_t buf[200];
    unsigned fl;
    rig r;

    (void)state;
    o.max_message = 10;
    rig_open(&r, &o);
    peer_frame(&r, 0x01, "12345", 5);
    peer_frame(&r, 0x80, "67890", 5);
    expect_msg(r.ws, "1234567890", 10, STRATA_MSG_TEXT);
    peer_frame(&r, 0x01, "12345", 5);
    peer_frame(&r, 0x00, "6789", 4);
    peer_frame(&r, 0x80, "01", 2);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 5);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 4);
    expect_violation(&r, STRATA_ERR_TOO_BIG, 1009);
    /* the close frame on the wire, byte for byte (server: unmasked) */
    rig_close(&r);

    rig_open(&r, &o);
    peer_frame(&r, 0x82, "12345678901", 11);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_TOO_BIG);
    raw_expect(&r, "\x88\x02\x03\xf1", 4);
    rig_close(&r);
}

/* ---- UTF-8 of received text --------------------------------------------- */

static void test_text_invalid(void **state)
{
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x81, "ok\xc0\xaf", 4);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);

    /* binary is not checked */
    rig_role(&r, STRATA_WS_CLIENT);
    peer_frame(&r, 0x82, "ok\xc0\xaf", 4);
    expect_msg(r.ws, "ok\xc0\xaf", 4, 0);
    rig_close(&r);
}

static void test_text_split_code_point(void **state)
{
    /* U+1F600 split across three fragments, then across 1-byte reads */
    uint8_t buf[16], got[16];
    unsigned fl;
    size_t n = 0;
    ssize_t k;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x01, "a\xf0", 2);
    peer_frame(&r, 0x00, "\x9f\x98", 2);
    peer_frame(&r, 0x80, "\x80z", 2);
    expect_msg(r.ws, "a\xf0\x9f\x98\x80z", 6, STRATA_MSG_TEXT);
    peer_frame(&r, 0x81, "\xe2\x82\xac\xf0\x9f\x98\x80", 7);
    do {
        k = strata_recv(r.ws, got + n, 1, &fl);
        assert_int_equal(k, 1);
        n++;
    } while (!(fl & STRATA_MSG_END));
    assert_int_equal(n, 7);
    assert_memory_equal(got, "\xe2\x82\xac\xf0\x9f\x98\x80", 7);
    rig_close(&r);

    /* an invalid sequence split across fragments */
    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x01, "a\xed", 2);
    peer_frame(&r, 0x80, "\xa0\x80", 2);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);

    /* a code point left unfinished at the message's end */
    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x01, "a\xe2", 2);
    peer_frame(&r, 0x80, "\x82", 1);
    assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);

    /* and across reads of a pipe that moves a byte at a time */
    {
        strata_pipe_opts po;
        strata_stream *raw, *b, *ws;
        strata_ws_opts o = opts(STRATA_WS_CLIENT);
        uint8_t w[32];
        size_t m;

        memset(&po, 0, sizeof po);
        po.max_chunk = 1;
        assert_int_equal(strata_pipe_pair(&raw, &b, &po, NULL), 0);
        ws = strata_ws_new(b, &o, NULL);
        m = mkframe(w, 0x81, "\xf4\x8f\xbf\xbf\xf4\x90", 6, NULL);
        while (m > 0) {
            ssize_t s = strata_write(raw, w, m);

            memmove(w, w + s, m - (size_t)s);
            m -= (size_t)s;
        }
        n = 0;
        for (;;) {
            k = strata_recv(ws, got + n, sizeof got - n, &fl);
            if (k < 0)
                break;
            n += (size_t)k;
        }
        assert_int_equal(k, STRATA_ERR_PROTO);
        assert_int_equal(strata_ws_error_code(ws), 1007);
        strata_free(ws);
        strata_free(raw);
    }
}

/* ---- poll and wants -------------------------------------------------------- */

static void test_poll(void **state)
{
    uint8_t w[32];
    size_t n;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    assert_int_equal(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN, 0);
    n = mkframe(w, 0x82, "abc", 3, NULL);
    put(r.raw, w, 1);           /* half a header: nothing to read yet */
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    assert_int_equal(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN, 0);
    put(r.raw, w + 1, n - 1);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN);
    assert_true(strata_poll(r.ws, STRATA_POLL_OUT) & STRATA_POLL_OUT);
    expect_msg(r.ws, "abc", 3, 0);
    peer_frame(&r, 0x88, "\x03\xe8", 2);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN);
    assert_int_equal(recv_some(r.ws), STRATA_EOF);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_HUP);
    assert_int_equal(strata_wants(r.ws), 0);
    rig_close(&r);
}

/* ---- handshake ------------------------------------------------------------- */

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void test_accept_key(void **state)
{
    char out[29];

    (void)state;
    /* RFC 6455 1.3 */
    assert_int_equal(strata_ws_accept_key(RFC_KEY, out), 0);
    assert_string_equal(out, RFC_ACCEPT);
    assert_int_equal(strata_ws_accept_key(NULL, out), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_accept_key("", out), STRATA_ERR_ARG);
    assert_int_equal(strata_ws_accept_key(RFC_KEY, NULL), STRATA_ERR_ARG);
}

/* Everything the raw end received until it is empty, as a string. */
static size_t raw_text(rig *r, char *out, size_t cap)
{
    size_t got = 0;

    while (got + 1 < cap) {
        ssize_t k = strata_read(r->raw, out + got, cap - 1 - got);

        if (k <= 0)
            break;
        got += (size_t)k;
    }
    out[got] = '\0';
    return got;
}

static void server_rig(rig *r, strata_ws_opts *o)
{
    o->role = STRATA_WS_SERVER;
    o->no_handshake = 0;
    rig_open(r, o);
}

#define REQ_HEAD(version, extra)                                            \
    "GET /chat?x=1 HTTP/1.1\r\n"                                             \
    "Host: server.example.com\r\n"                                           \
    "Upgrade: websocket\r\n"                                                 \
    "Connection: keep-alive, Upgrade\r\n"                                    \
    "Sec-WebSocket-Key: " RFC_KEY "\r\n"                                     \
    "Origin: http://example.com\r\n"                                         \
    "Sec-WebSocket-Version: " version "\r\n" extra "\r\n"

static void test_server_handshake_raw(void **state)
{
    static const char *const ours[] = {"superchat", "chat", NULL};
    static const char req[] = REQ_HEAD("13",
                                       "Sec-WebSocket-Protocol: chat\r\n"
                                       "Sec-WebSocket-Protocol: superchat\r\n");
    strata_ws_opts o;
    const strata_ws_request *q;
    char resp[1024];
    rig r;

    (void)state;
    memset(&o, 0, sizeof o);
    o.protocols = ours;
    o.extra_headers = "Server: strata\r\n";
    server_rig(&r, &o);
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_NEED_READ);
    assert_null(strata_ws_request_of(r.ws));
    put(r.raw, req, sizeof req - 1);
    assert_int_equal(strata_ws_handshake(r.ws), 0);
    raw_text(&r, resp, sizeof resp);
    assert_string_equal(resp,
                        "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                        "Sec-WebSocket-Protocol: chat\r\n"
                        "Server: strata\r\n\r\n");
    assert_int_equal(strata_ws_status(r.ws), 101);
    assert_string_equal(strata_ws_protocol(r.ws), "chat");
    q = strata_ws_request_of(r.ws);
    assert_non_null(q);
    assert_string_equal(q->path, "/chat?x=1");
    assert_string_equal(q->host, "server.example.com");
    assert_string_equal(q->origin, "http://example.com");
    assert_string_equal(q->protocols, "chat, superchat");
    assert_string_equal(strata_http1_get(q->head, "Sec-WebSocket-Key"),
                        RFC_KEY);
    assert_int_equal(strata_ws_deflate(r.ws), 0);
    /* framing goes on at once */
    peer_frame(&r, 0x81, "hi", 2);
    expect_msg(r.ws, "hi", 2, STRATA_MSG_TEXT);
    rig_close(&r);
}

/* The client's first frame in the same write as its request head. */
static void test_server_hand_off(void **state)
{
    static const char req[] = REQ_HEAD("13", "");
    uint8_t wire[sizeof req + 64];
    strata_ws_opts o;
    char resp[512];
    size_t n;
    rig r;

    (void)state;
    memset(&o, 0, sizeof o);
    server_rig(&r, &o);
    memcpy(wire, req, sizeof req - 1);
    n = sizeof req - 1;
    n += mkframe(wire + n, 0x82, "first", 5, peer_key);
    n += mkframe(wire + n, 0x89, "p", 1, peer_key);
    put(r.raw, wire, n);
    /* the recv runs the handshake, then reads the frame behind the head */
    expect_msg(r.ws, "first", 5, 0);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    raw_text(&r, resp, sizeof resp);
    assert_non_null(strstr(resp, "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\n\x8a\x01p"));
    rig_close(&r);
}

static void refusal(const char *req, int status, const char *must)
{
    strata_ws_opts o;
    char resp[1024];
    char line[64];
    rig r;

    memset(&o, 0, sizeof o);
    o.max_head = 512;
    o.deflate.enable = 1;
    server_rig(&r, &o);
    put(r.raw, req, strlen(req));
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(strata_ws_status(r.ws), status);
    raw_text(&r, resp, sizeof resp);
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    assert_memory_equal(resp, line, strlen(line));
    assert_non_null(strstr(resp, "Content-Length: 0\r\n"));
    if (must != NULL)
        assert_non_null(strstr(resp, must));
    /* the failure sticks everywhere */
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(strata_write(r.ws, "x", 1), STRATA_ERR_PROTO);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_ERR);
    rig_close(&r);
}

static void test_server_refusals(void **state)
{
    char big[700];

    (void)state;
    refusal(REQ_HEAD("8", ""), 426, "Sec-WebSocket-Version: 13\r\n");
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n\r\n",
            426, "Sec-WebSocket-Version: 13\r\n");
    refusal("POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; ;\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 400, NULL);
    refusal("GET / HTTP/1.1\r\nHost h\r\n\r\n", 400, NULL);
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
    big[sizeof big - 1] = '\0';
    refusal(big, 431, NULL);
}

static int refuse_cb(void *ud, const strata_ws_request *req,
                     strata_ws_response *resp)
{
    int *mode = ud;

    assert_string_equal(req->path, "/chat?x=1");
    assert_non_null(req->head);
    switch (*mode) {
    case 0:
        resp->status = 403;
        resp->headers = "X-Why: no\r\n";
        return 0;
    case 1:
        return -1;                   /* refuse: 403 */
    case 2:
        resp->protocol = "superchat"; /* accept with a protocol */
        resp->headers = "X-Cb: yes\r\n";
        return 0;
    default:
        resp->protocol = "nope";     /* not offered: the app's mistake */
        return 0;
    }
}

static void test_accept_callback(void **state)
{
    static const char req[] = REQ_HEAD("13",
                                       "Sec-WebSocket-Protocol: chat, superchat\r\n");
    strata_ws_opts o;
    char resp[1024];
    int mode;
    rig r;

    (void)state;
    for (mode = 0; mode < 4; mode++) {
        memset(&o, 0, sizeof o);
        o.accept = refuse_cb;
        o.accept_ud = &mode;
        o.extra_headers = "X-Opt: 1\r\n";
        server_rig(&r, &o);
        put(r.raw, req, sizeof req - 1);
        raw_text(&r, resp, sizeof resp);
        if (mode == 2) {
            assert_int_equal(strata_ws_handshake(r.ws), 0);
            raw_text(&r, resp, sizeof resp);
            assert_non_null(strstr(resp, "Sec-WebSocket-Protocol: superchat\r\n"));
            assert_non_null(strstr(resp, "X-Opt: 1\r\nX-Cb: yes\r\n\r\n"));
            assert_string_equal(strata_ws_protocol(r.ws), "superchat");
        } else {
            assert_int_equal(strata_ws_handshake(r.ws), STRATA_ERR_PROTO);
            raw_text(&r, resp, sizeof resp);
            if (mode == 0)
                assert_non_null(strstr(resp, "HTTP/1.1 403 Forbidden\r\n"));
            if (mode == 0)
                assert_non_null(strstr(resp, "X-Why: no\r\n"));
            if (mode == 1)
                assert_int_equal(strata_ws_status(r.ws), 403);
            if (mode == 3)
                assert_int_equal(strata_ws_status(r.ws), 500);
        }
        rig_close(&r);
    }
}

/* Read the client's request head off the raw end; returns its key. */
static void client_request(rig *r, char *head, size_t cap, char key[25])
{
    const char *k;

    raw_text(r, head, cap);
    k = strstr(head, "Sec-WebSocket-Key: ");
    assert_non_null(k);
    memcpy(key, k + 19, 24);
    key[24] = '\0';
}

static void client_rig(rig *r, strata_ws_opts *o)
{
    o->role = STRATA_WS_CLIENT;
    o->no_handshake = 0;
    if (o->host == NULL)
        o->host = "server.example.com";
    rig_open(r, o);
}

static void respond(rig *r, const char *key, const char *extra)
{
    char acc[29], resp[512];

    assert_int_equal(strata_ws_accept_key(key, acc), 0);
    snprintf(resp, sizeof resp,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
             acc, extra);
    put(r->raw, resp, strlen(resp));
}

static void test_client_handshake_raw(void **state)
{
    static const char *const protos[] = {"chat", "superchat", NULL};
    strata_ws_opts o;
    char head[1024], key[25];
    rig r;

    (void)state;
    memset(&o, 0, sizeof o);
    o.path = "/chat";
    o.origin = "http://example.com";
    o.protocols = protos;
    o.extra_headers = "Authorization: Bearer x\r\n";
    o.deflate.enable = 1;
    o.deflate.client_max_window_bits = 15;
    o.random = NULL; /* a real nonce */
    client_rig(&r, &o);
    /* a send waits for the handshake: the request goes, then NEED_READ */
    assert_int_equal(strata_write(r.ws, "x", 1), STRATA_NEED_READ);
    assert_true(strata_poll(r.ws, STRATA_POLL_OUT) & STRATA_POLL_OUT);
    client_request(&r, head, sizeof head, key);
    assert_memory_equal(head, "GET /chat HTTP/1.1\r\n", 20);
    assert_non_null(strstr(head, "\r\nHost: server.example.com\r\n"));
    assert_non_null(strstr(head, "\r\nUpgrade: websocket\r\n"));
    assert_non_null(strstr(head, "\r\nConnection: Upgrade\r\n"));
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_non_null(strstr(head, "\r\nOrigin: http://example.com\r\n"));
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Protocol: chat, superchat\r\n"));
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Extensions: "
                                 "permessage-deflate; client_max_window_bits=15\r\n"));
    assert_non_null(strstr(head, "\r\nAuthorization: Bearer x\r\n\r\n"));
    assert_int_equal(strlen(key), 24);
    assert_string_equal(key + 22, "==");
    respond(&r, key, "Sec-WebSocket-Protocol: superchat\r\n");
    /* the server's first frame right behind its head */
    peer_frame(&r, 0x82, "hey", 3);
    assert_int_equal(strata_write(r.ws, "x", 1), 1);
    assert_int_equal(strata_ws_status(r.ws), 101);
    assert_string_equal(strata_ws_protocol(r.ws), "superchat");
    assert_int_equal(strata_ws_deflate(r.ws), 0);
    assert_null(strata_ws_request_of(r.ws));
    expect_msg(r.ws, "hey", 3, 0);
    rig_close(&r);
}

static void client_refused(const char *status_line, const char *extra,
                           int status, unsigned error_code)
{
    static const char *const protos[] = {"chat", NULL};
    strata_ws_opts o;
    char head[1024], key[25], resp[512];
    rig r;

    memset(&o, 0, sizeof o);
    o.protocols = protos;
    client_rig(&r, &o);
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_NEED_READ);
    client_request(&r, head, sizeof head, key);
    if (status_line != NULL) {
        snprintf(resp, sizeof resp, "%s\r\n%s\r\n", status_line, extra);
        put(r.raw, resp, strlen(resp));
    } else {
        respond(&r, key, extra);
    }
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(strata_ws_status(r.ws), status);
    assert_int_equal(strata_ws_error_code(r.ws), error_code);
    if (error_code != 0)
        raw_close(&r, error_code);
    raw_empty(&r);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    rig_close(&r);
}

static void test_client_refused(void **state)
{
    (void)state;
    client_refused("HTTP/1.1 403 Forbidden", "Content-Length: 0\r\n", 403, 0);
    client_refused("HTTP/1.1 101 Switching Protocols",
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n", 101, 0);
    client_refused("HTTP/1.1 101 Switching Protocols",
                   "Connection: Upgrade\r\n", 101, 0);
    client_refused(NULL, "Sec-WebSocket-Protocol: superchat\r\n", 101, 0);
    /* extensions we never offered: the server thinks it open, tell it */
    client_refused(NULL, "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                   101, 1010);
    client_refused(NULL, "Sec-WebSocket-Extensions: x-webkit-deflate\r\n",
                   101, 1010);
}

/* Drive two layers' handshakes over a scheduled pipe pair. */
static void pair_handshake(strata_stream *c, strata_stream *s)
{
    int rc = 1, rs = 1;
    long steps = 0;

    while (rc != 0 || rs != 0) {
        if (rc != 0)
            rc = strata_ws_handshake(c);
        if (rs != 0)
            rs = strata_ws_handshake(s);
        assert_true(rc == 0 || rc == STRATA_NEED_READ ||
                    rc == STRATA_NEED_WRITE);
        assert_true(rs == 0 || rs == STRATA_NEED_READ ||
                    rs == STRATA_NEED_WRITE);
        assert_true(++steps < 100000);
    }
}

static void pair_open(strata_stream **c, strata_stream **s,
                      strata_ws_opts *co, strata_ws_opts *so)
{
    strata_pipe_opts po;
    strata_stream *a, *b;

    memset(&po, 0, sizeof po);
    po.max_chunk = 5;
    po.need_percent = 25;
    po.seed = 7;
    assert_int_equal(strata_pipe_pair(&a, &b, &po, NULL), 0);
    co->role = STRATA_WS_CLIENT;
    so->role = STRATA_WS_SERVER;
    if (co->host == NULL)
        co->host = "h";
    *c = strata_ws_new(a, co, NULL);
    *s = strata_ws_new(b, so, NULL);
    assert_non_null(*c);
    assert_non_null(*s);
    if (!co->no_handshake)
        pair_handshake(*c, *s);
}

static void test_subprotocols(void **state)
{
    static const char *const offer[] = {"v2.chat", "v1.chat", NULL};
    static const char *const have[] = {"v0.chat", "v1.chat", "v2.chat", NULL};
    static const char *const other[] = {"mqtt", NULL};
    strata_ws_opts co, so;
    strata_stream *c, *s;

    (void)state;
    memset(&co, 0, sizeof co);
    memset(&so, 0, sizeof so);
    co.protocols = offer;
    so.protocols = have;
    pair_open(&c, &s, &co, &so);
    /* the client's order wins */
    assert_string_equal(strata_ws_protocol(c), "v2.chat");
    assert_string_equal(strata_ws_protocol(s), "v2.chat");
    strata_free(c);
    strata_free(s);
    /* nothing in common: no protocol, still open */
    so.protocols = other;
    pair_open(&c, &s, &co, &so);
    assert_null(strata_ws_protocol(c));
    assert_null(strata_ws_protocol(s));
    strata_free(c);
    strata_free(s);
}

/* ---- permessage-deflate ------------------------------------------------------ */

/* RFC 7692 7.2.3.1 and 7.2.3.2: "Hello" compressed, and twice with the
 * context taken over. */
static void test_deflate_rfc_examples(void **state)
{
    static const uint8_t hello[] = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9,
                                     0xc9, 0x07, 0x00};
    static const uint8_t again[] = {0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00};
    static const uint8_t frag[] = {0x41, 0x03, 0xf2, 0x48, 0xcd,
                                   0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00};
    strata_ws_opts o = opts(STRATA_WS_CLIENT);
    rig r;

    (void)state;
    o.deflate_agreed = "permessage-deflate";
    rig_open(&r, &o);
    assert_int_equal(strata_ws_deflate(r.ws), 1);
    put(r.raw, hello, sizeof hello);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    put(r.raw, again, sizeof again);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    rig_close(&r);

    /* the same message as two fragments, and an uncompressed one */
    rig_open(&r, &o);
    put(r.raw, frag, sizeof frag);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    peer_frame(&r, 0x82, "plain", 5);
    expect_msg(r.ws, "plain", 5, 0);
    rig_close(&r);
}

/* What a server writes with deflate: RSV1 on the first frame only, and
 * with context takeover the same message shrinks the second time. */
static void deflate_wire(int takeover)
{
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    uint8_t msg[600], p[1200];
    size_t len, first = 0, i;
    int masked, k;
    rig r;

    for (i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)("abcabcabd"[i % 9]);
    o.deflate_agreed = takeover ? "permessage-deflate"
                                : "permessage-deflate; server_no_context_takeover";
    rig_open(&r, &o);
    for (k = 0; k < 2; k++) {
        assert_int_equal(strata_send(r.ws, msg, sizeof msg, STRATA_MSG_END),
                         (ssize_t)sizeof msg);
        assert_int_equal(strata_flush(r.ws), 0);
        assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0xc2);
        assert_true(len < sizeof msg / 4);
        if (k == 0)
            first = len;
        else if (takeover)
            assert_true(len < first);
        else
            assert_int_equal(len, first);
        raw_empty(&r);
    }
    /* control frames are never compressed */
    assert_int_equal(strata_ws_ping(r.ws, "abc", 3), 0);
    raw_expect(&r, "\x89\x03" "abc", 5);
    assert_int_equal(strata_shutdown(r.ws), 0);
    raw_expect(&r, "\x88\x02\x03\xe8", 4);
    rig_close(&r);
}

static void test_deflate_wire(void **state)
{
    (void)state;
    deflate_wire(1);
    deflate_wire(0);
}

/* A message bigger than the scratch buffer goes out as several frames:
 * RSV1 on the first, continuations after, FIN on the last. */
static void test_deflate_frames(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_CLIENT);
    uint8_t *msg = malloc(200000), p[70000];
    size_t len, i, frames = 0;
    unsigned b0;
    uint64_t g = 1;
    int masked;
    rig r;

    (void)state;
    assert_non_null(msg);
    for (i = 0; i < 200000; i++)
        msg[i] = (uint8_t)strata_rand(&g);  /* incompressible */
    o.deflate_agreed = "permessage-deflate; client_no_context_takeover";
    o.scratch = 4096;
    rig_open(&r, &o);
    send_all(r.ws, msg, 200000, STRATA_MSG_END);
    assert_int_equal(strata_flush(r.ws), 0);
    do {
        b0 = raw_frame(&r, p, sizeof p, &len, &masked);
        assert_true(masked);
        assert_true(len <= 4096);
        assert_int_equal(b0 & 0x70, frames == 0 ? 0x40 : 0);
        assert_int_equal(b0 & 0x0f, frames == 0 ? 2 : 0);
        frames++;
    } while (!(b0 & 0x80));
    assert_true(frames > 40);
    raw_empty(&r);
    rig_close(&r);
    free(msg);
}

/* A message that inflates past max_message: 1009 before memory grows. */
static void test_deflate_bomb(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    strata_ws_opts co = opts(STRATA_WS_CLIENT);
    strata_stream *c, *s;
    uint8_t *zeros = calloc(1, 1 << 20), buf[4096];
    unsigned fl;
    ssize_t r;
    size_t got = 0;

    (void)state;
    assert_non_null(zeros);
    co.deflate_agreed = o.deflate_agreed = "permessage-deflate";
    o.max_message = 100000;
    pair_open(&c, &s, &co, &o);
    send_all(c, zeros, 1 << 20, STRATA_MSG_END);
    while (strata_flush(c) != 0)
        ;
    for (;;) {
        r = strata_recv(s, buf, sizeof buf, &fl);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        if (r < 0)
            break;
        got += (size_t)r;
        assert_false(fl & STRATA_MSG_END);
    }
    assert_int_equal(r, STRATA_ERR_TOO_BIG);
    assert_true(got <= 100000);
    assert_int_equal(strata_ws_error_code(s), 1009);
    /* the client reads the close */
    for (;;) {
        r = strata_recv(c, buf, sizeof buf, &fl);
        if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            break;
    }
    assert_int_equal(r, STRATA_EOF);
    assert_int_equal(strata_ws_close_code(c), 1009);
    strata_free(c);
    strata_free(s);
    free(zeros);
}

/* Incompressible data grows a little under deflate: a message of exactly
 * max_message bytes, in one frame of exactly max_frame, still passes. */
static void test_deflate_at_limit(void **state)
{
    strata_ws_opts co = opts(STRATA_WS_CLIENT), so = opts(STRATA_WS_SERVER);
    strata_stream *c, *s;
    uint8_t *msg = malloc(100000), *got = malloc(100001);
    uint64_t g = 5;
    unsigned fl;
    size_t i, n = 0;
    ssize_t r;

    (void)state;
    assert_true(msg != NULL && got != NULL);
    for (i = 0; i < 100000; i++)
        msg[i] = (uint8_t)strata_rand(&g);
    co.deflate_agreed = so.deflate_agreed = "permessage-deflate";
    co.scratch = 200000;   /* one compressed frame, a bit over 100000 */
    so.max_message = so.max_frame = 100000;
    pair_open(&c, &s, &co, &so);
    send_all(c, msg, 100000, STRATA_MSG_END);
    for (;;) {
        (void)strata_flush(c); /* the frame is bigger than the pipe */
        r = strata_recv(s, got + n, 100001 - n, &fl);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        assert_true(r >= 0);
        n += (size_t)r;
        if (fl & STRATA_MSG_END)
            break;
    }
    assert_int_equal(n, 100000);
    assert_memory_equal(got, msg, 100000);
    strata_free(c);
    strata_free(s);
    free(msg);
    free(got);
}

static void test_deflate_violations(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_CLIENT);
    rig r;

    (void)state;
    o.deflate_agreed = "permessage-deflate";
    /* RSV1 on a continuation */
    rig_open(&r, &o);
    put(r.raw, "\x41\x03\xf2\x48\xcd\xc0\x04\xc9\xc9\x07\x00", 11);
    {
        uint8_t buf[16];
        unsigned fl;

        /* "He": inflate holds back what the next bytes may extend */
        assert_int_equal(strata_recv(r.ws, buf, sizeof buf, &fl), 2);
    }
    expect_violation(&r, STRATA_ERR_PROTO, 1002);
    rig_close(&r);
    /* RSV1 on a control frame */
    rig_open(&r, &o);
    put(r.raw, "\xc9\x00", 2);
    expect_violation(&r, STRATA_ERR_PROTO, 1002);
    rig_close(&r);
    /* corrupt data: a reserved block type */
    rig_open(&r, &o);
    put(r.raw, "\xc2\x03\xff\xff\xff", 5);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);
    /* compressed text that inflates to bad UTF-8: "\xc0\xaf" stored */
    rig_open(&r, &o);
    put(r.raw, "\xc1\x07\x00\x02\x00\xfd\xff\xc0\xaf", 9);
    expect_violation(&r, STRATA_ERR_PROTO, 1007);
    rig_close(&r);
}

static void test_deflate_negotiated(void **state)
{
    strata_ws_opts co, so;
    strata_stream *c, *s;
    uint8_t buf[256];
    unsigned fl;
    ssize_t r;
    int k;

    (void)state;
    for (k = 0; k < 3; k++) {
        memset(&co, 0, sizeof co);
        memset(&so, 0, sizeof so);
        co.deflate.enable = k != 2;
        so.deflate.enable = 1;
        co.deflate.server_no_context_takeover = k == 1;
        co.deflate.client_max_window_bits = k == 1 ? 9 : 0;
        pair_open(&c, &s, &co, &so);
        assert_int_equal(strata_ws_deflate(c), k != 2);
        assert_int_equal(strata_ws_deflate(s), k != 2);
        send_all(c, "hello hello hello", 17, STRATA_MSG_END | STRATA_MSG_TEXT);
        while (strata_flush(c) != 0)
            ;
        do
            r = get_msg(s, buf, sizeof buf, 3, &fl);
        while (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE);
        /* get_msg restarts on NEED: read what is left whole */
        assert_true(r >= 0);
        strata_free(c);
        strata_free(s);
    }
}

/* ---- more paths: big frames, write buffer, allocator ------------------ */

/* Two big frames back to back, read with big buffers: the payload moves
 * straight into the caller's buffer, the second header is read exactly. */
static void test_big_frames(void **state)
{
    uint8_t *msg = malloc(40000), *buf = malloc(40000);
    unsigned fl;
    size_t i, got;
    rig r;

    (void)state;
    assert_true(msg != NULL && buf != NULL);
    for (i = 0; i < 40000; i++)
        msg[i] = (uint8_t)(i * 13);
    rig_role(&r, STRATA_WS_SERVER);
    peer_frame(&r, 0x82, msg, 40000);
    peer_frame(&r, 0x82, msg, 20000);
    peer_frame(&r, 0x81, "end", 3);
    for (got = 0; got < 40000;) {
        ssize_t k = strata_recv(r.ws, buf + got, 40000 - got, &fl);

        assert_true(k > 0);
        got += (size_t)k;
    }
    assert_true(fl & STRATA_MSG_END);
    assert_memory_equal(buf, msg, 40000);
    expect_msg(r.ws, msg, 20000, 0);
    expect_msg(r.ws, "end", 3, STRATA_MSG_TEXT);
    rig_close(&r);
    free(msg);
    free(buf);
}

/* Over a write buffer, small frames go into it whole (masked there for
 * a client) and leave with the flush. */
static void test_over_wbuf(void **state)
{
    strata_stream *raw, *b, *w, *ws;
    strata_ws_opts o;
    uint8_t p[64], big[3000];
    size_t len;
    int role, masked;
    rig r;

    (void)state;
    memset(big, 'B', sizeof big);
    for (role = 0; role < 2; role++) {
        o = opts(role);
        assert_int_equal(strata_pipe_pair(&raw, &b, NULL, NULL), 0);
        w = strata_wbuf_new(b, 4096, 1024, NULL);
        ws = strata_ws_new(w, &o, NULL);
        assert_non_null(ws);
        assert_int_equal(strata_send(ws, "abc", 3, STRATA_MSG_END), 3);
        assert_int_equal(strata_send(ws, "de", 2, STRATA_MSG_TEXT), 2);
        assert_int_equal(strata_send(ws, "f", 1, STRATA_MSG_END), 1);
        assert_int_equal(strata_pipe_pending(raw), 0);
        assert_int_equal(strata_send(ws, big, sizeof big, STRATA_MSG_END),
                         (ssize_t)sizeof big);
        assert_int_equal(strata_flush(ws), 0);
        r.raw = raw;
        r.ws = ws;
        r.role = role;
        assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x82);
        assert_int_equal(masked, role == STRATA_WS_CLIENT);
        assert_memory_equal(p, "abc", 3);
        assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x01);
        assert_memory_equal(p, "de", 2);
        assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0x80);
        assert_memory_equal(p, "f", 1);
        {
            uint8_t *q = malloc(sizeof big);

            assert_int_equal(raw_frame(&r, q, sizeof big, &len, &masked),
                             0x82);
            assert_int_equal(len, sizeof big);
            assert_memory_equal(q, big, sizeof big);
            free(q);
        }
        rig_close(&r);
    }
}

static void test_deflate_send_edges(void **state)
{
    strata_ws_opts o = opts(STRATA_WS_SERVER);
    uint8_t p[64];
    size_t len;
    int masked;
    rig r;

    (void)state;
    o.deflate_agreed = "permessage-deflate";
    rig_open(&r, &o);
    assert_int_equal(strata_send(r.ws, "", 0, 0), 0);   /* nothing */
    assert_int_equal(strata_send(r.ws, "\xc0", 1,
                                 STRATA_MSG_TEXT | STRATA_MSG_END),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_shutdown(r.ws) == 0, 1);
    rig_close(&r);

    /* a fragmented compressed message: frames only at its end here */
    rig_open(&r, &o);
    assert_int_equal(strata_send(r.ws, "\xe2\x82", 2, STRATA_MSG_TEXT), 2);
    assert_int_equal(strata_shutdown(r.ws), STRATA_ERR_STATE);
    assert_int_equal(strata_send(r.ws, "\xac", 1, STRATA_MSG_END), 1);
    assert_int_equal(strata_send(r.ws, "", 0, STRATA_MSG_END), 0); /* empty */
    assert_int_equal(strata_flush(r.ws), 0);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0xc1);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0xc2);
    assert_int_equal(len, 1);   /* the empty message: one 00 byte */
    assert_int_equal(p[0], 0);
    raw_empty(&r);
    rig_close(&r);
}

static void test_poll_headers(void **state)
{
    uint8_t w[64];
    size_t n = 0;
    rig r;

    (void)state;
    rig_role(&r, STRATA_WS_CLIENT);
    n += mkframe(w + n, 0x82, "a", 1, NULL);
    n += mkframe(w + n, 0x89, "pp", 2, NULL);
    put(r.raw, w, n - 1);   /* the ping lacks its last byte */
    expect_msg(r.ws, "a", 1, 0);
    assert_int_equal(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN, 0);
    put(r.raw, w + n - 1, 1);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    raw_expect(&r, "\x8a\x82\x37\xfa\x21\x3d\x47\x8a", 8);
    /* a header buffered with no payload byte yet */
    n = mkframe(w, 0x82, "abcdef", 6, NULL);
    n += mkframe(w + n, 0x82, "", 0, NULL);
    put(r.raw, w, 1);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    put(r.raw, w + 1, 1);
    assert_int_equal(recv_some(r.ws), STRATA_NEED_READ);
    assert_int_equal(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN, 0);
    put(r.raw, w + 2, n - 2);
    expect_msg(r.ws, "abcdef", 6, 0);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN);
    expect_msg(r.ws, "", 0, 0);
    /* a bad header behind a message is known without reading */
    put(r.raw, "\x82\x01x\x83\x00", 5);
    expect_msg(r.ws, "x", 1, 0);
    assert_true(strata_poll(r.ws, STRATA_POLL_IN) & STRATA_POLL_IN);
    expect_violation(&r, STRATA_ERR_PROTO, 1002);
    rig_close(&r);
}

/* A counting allocator that can refuse its n-th request. */
typedef struct counting {
    long live, peak, calls, fail_at;
    size_t bytes, peak_bytes;
} counting;

typedef struct hdr_t {
    size_t size;
    max_align_t pad;
} hdr_t;

static void *c_alloc(void *ud, size_t size)
{
    counting *c = ud;
    hdr_t *h;

    if (c->calls++ == c->fail_at)
        return NULL;
    h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    c->live++;
    c->bytes += size;
    if (c->bytes > c->peak_bytes)
        c->peak_bytes = c->bytes;
    return h + 1;
}

static void c_free(void *ud, void *p)
{
    counting *c = ud;
    hdr_t *h = (hdr_t *)p - 1;

    if (p == NULL)
        return;
    c->live--;
    c->bytes -= h->size;
    free(h);
}

static void *c_realloc(void *ud, void *p, size_t size)
{
    void *q = c_alloc(ud, size);

    if (q != NULL && p != NULL) {
        hdr_t *h = (hdr_t *)p - 1;

        memcpy(q, p, h->size < size ? h->size : size);
        c_free(ud, p);
    }
    return q;
}

/* Every allocation of a handshake + deflate pair refused in turn: each
 * failure is a clean NULL or an error, and nothing leaks. Then a run with
 * none refused stays within its stated buffers. */
static void test_allocator(void **state)
{
    counting cnt;
    strata_allocator al = {c_alloc, c_realloc, c_free, &cnt};
    long k;

    (void)state;
    for (k = 0; k < 64; k++) {
        strata_ws_opts co, so;
        strata_stream *a, *b, *c = NULL, *s = NULL;
        uint8_t buf[64];
        unsigned fl;
        long steps;
        int done = 0;

        memset(&cnt, 0, sizeof cnt);
        cnt.fail_at = k;
        memset(&co, 0, sizeof co);
        memset(&so, 0, sizeof so);
        co.role = STRATA_WS_CLIENT;
        co.host = "h";
        co.deflate.enable = so.deflate.enable = 1;
        so.role = STRATA_WS_SERVER;
        if (strata_pipe_pair(&a, &b, NULL, &al) != 0) {
            assert_int_equal(cnt.live, 0);
            continue;
        }
        c = strata_ws_new(a, &co, &al);
        s = strata_ws_new(b, &so, &al);
        for (steps = 0; c != NULL && s != NULL && steps < 1000 && !done;
             steps++) {
            ssize_t r = strata_send(c, "hello hello", 11, STRATA_MSG_END);

            if (r < 0 && r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
                break;
            strata_flush(c);
            r = strata_recv(s, buf, sizeof buf, &fl);
            if (r < 0 && r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
                break;
            done = r > 0;
        }
        strata_free(c != NULL ? c : a);
        strata_free(s != NULL ? s : b);
        assert_int_equal(cnt.live, 0);
        if (cnt.calls <= k) /* nothing was refused: all paths are done */
            break;
    }
    assert_true(k < 64);
    /* the stated bound: buffers, scratch, heads, zlib; nothing per byte */
    assert_true(cnt.peak_bytes < 1024 * 1024);
}

/* The handshake negotiates permessage-deflate; what goes on the wire
 * then carries RSV1, both ways. */
static void test_deflate_handshake_raw(void **state)
{
    static const char req[] = REQ_HEAD("13",
                                       "Sec-WebSocket-Extensions: foo, "
                                       "permessage-deflate; client_max_window_bits\r\n");
    strata_ws_opts o;
    char head[1024], key[25];
    uint8_t p[64];
    size_t len;
    int masked;
    rig r;

    (void)state;
    memset(&o, 0, sizeof o);
    o.deflate.enable = 1;
    o.deflate.server_no_context_takeover = 1;
    server_rig(&r, &o);
    put(r.raw, req, sizeof req - 1);
    assert_int_equal(strata_ws_handshake(r.ws), 0);
    raw_text(&r, head, sizeof head);
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Extensions: permessage-deflate; "
                                 "server_no_context_takeover\r\n"));
    assert_int_equal(strata_ws_deflate(r.ws), 1);
    assert_int_equal(strata_send(r.ws, "Hello", 5,
                                 STRATA_MSG_END | STRATA_MSG_TEXT), 5);
    assert_int_equal(strata_flush(r.ws), 0);
    raw_expect(&r, "\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00", 9);
    put(r.raw, "\xc1\x87\x00\x00\x00\x00\xf2\x48\xcd\xc9\xc9\x07\x00", 13);
    expect_msg(r.ws, "Hello", 5, STRATA_MSG_TEXT);
    rig_close(&r);

    memset(&o, 0, sizeof o);
    o.deflate.enable = 1;
    o.random = fixed_random;
    o.random_ud = (void *)(uintptr_t)rfc_key;
    client_rig(&r, &o);
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_NEED_READ);
    client_request(&r, head, sizeof head, key);
    respond(&r, key, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_int_equal(strata_ws_handshake(r.ws), 0);
    assert_int_equal(strata_ws_deflate(r.ws), 1);
    assert_int_equal(strata_send(r.ws, "Hello", 5, STRATA_MSG_END), 5);
    assert_int_equal(strata_flush(r.ws), 0);
    assert_int_equal(raw_frame(&r, p, sizeof p, &len, &masked), 0xc2);
    assert_true(masked);
    assert_int_equal(len, 7);
    assert_memory_equal(p, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    rig_close(&r);
}

static int odd_cb(void *ud, const strata_ws_request *req,
                  strata_ws_response *resp)
{
    int *mode = ud;

    (void)req;
    if (*mode == 0)
        resp->status = 99;                 /* not a final status: 500 */
    else if (*mode == 1)
        resp->status = 401, resp->headers = "bad header line"; /* dropped */
    else
        resp->headers = "X-Only: cb\r\n";  /* accepted, no extra of ours */
    return 0;
}

static void test_handshake_edges(void **state)
{
    static const char req[] = REQ_HEAD("13", "");
    strata_ws_opts o;
    char resp[1024];
    int mode;
    rig r;

    (void)state;
    for (mode = 0; mode < 3; mode++) {
        memset(&o, 0, sizeof o);
        o.accept = odd_cb;
        o.accept_ud = &mode;
        server_rig(&r, &o);
        put(r.raw, req, sizeof req - 1);
        raw_text(&r, resp, sizeof resp);
        assert_int_equal(strata_ws_handshake(r.ws),
                         mode == 2 ? 0 : STRATA_ERR_PROTO);
        raw_text(&r, resp, sizeof resp);
        if (mode == 0)
            assert_memory_equal(resp, "HTTP/1.1 500 ", 13);
        if (mode == 1) {
            assert_memory_equal(resp, "HTTP/1.1 401 ", 13);
            assert_null(strstr(resp, "bad header"));
        }
        if (mode == 2)
            assert_non_null(strstr(resp, "\r\nX-Only: cb\r\n\r\n"));
        rig_close(&r);
    }
    /* the peer leaves before its head: no answer, a failed handshake */
    memset(&o, 0, sizeof o);
    server_rig(&r, &o);
    strata_shutdown(r.raw);
    assert_int_equal(strata_ws_handshake(r.ws), STRATA_ERR_PROTO);
    assert_int_equal(strata_flush(r.ws), STRATA_ERR_PROTO);
    rig_close(&r);
    memset(&o, 0, sizeof o);
    client_rig(&r, &o);
    assert_true(strata_wants(r.ws) & STRATA_WANT_WRITE);
    assert_int_equal(strata_flush(r.ws), 0);   /* the request goes */
    assert_int_equal(strata_wants(r.ws), 0);
    raw_text(&r, resp, sizeof resp);
    put(r.raw, "HTTP/1.1 101 Switching", 22);
    strata_shutdown(r.raw);
    assert_int_equal(recv_some(r.ws), STRATA_ERR_PROTO);
    rig_close(&r);
}

/* ---- property runs --------------------------------------------------------- */

typedef struct prop {
    int handshake;
    int deflate;
    int no_context_takeover;
    unsigned pings;        /* pings sent by the step hook */
} prop;

static int build(strata_stream *a, strata_stream *b, strata_stream **ta,
                 strata_stream **tb, void *ud)
{
    prop *p = ud;
    strata_ws_opts co, so;

    memset(&co, 0, sizeof co);
    memset(&so, 0, sizeof so);
    co.role = STRATA_WS_CLIENT;
    so.role = STRATA_WS_SERVER;
    co.no_handshake = so.no_handshake = !p->handshake;
    /* the harness ends each direction on its own (duplex: one side shuts
     * down while the other still sends): a byte-stream half-close */
    co.half_close = so.half_close = 1;
    co.host = "example.com";
    co.max_message = so.max_message = 1u << 20;
    if (p->handshake && p->deflate) {
        co.deflate.enable = so.deflate.enable = 1;
        co.deflate.client_no_context_takeover = p->no_context_takeover;
        co.deflate.server_no_context_takeover = p->no_context_takeover;
    } else if (p->deflate) {
        co.deflate_agreed = so.deflate_agreed =
            p->no_context_takeover
                ? "permessage-deflate; server_no_context_takeover; "
                  "client_no_context_takeover"
                : "permessage-deflate";
    }
    co.scratch = so.scratch = 512; /* many compressed frames per message */
    *ta = strata_ws_new(a, &co, NULL);
    *tb = strata_ws_new(b, &so, NULL);
    if (*ta == NULL || *tb == NULL) {
        strata_free(*ta);
        strata_free(*tb);
        return -1;
    }
    return 0;
}

static int ping_step(strata_stream *a, strata_stream *b, uint64_t rnd,
                     void *ud)
{
    prop *p = ud;
    static const uint8_t payload[125] = {1, 2, 3};
    int r;

    if (rnd % 64 != 0)
        return 0;
    r = strata_ws_ping(rnd & 64 ? a : b, payload, (size_t)(rnd >> 8) % 126);
    if (r == 0)
        p->pings++;
    /* after our close no ping may go (CLOSED once the peer's came too,
     * as for a send); a waiting ping answers NEED */
    return r == 0 || r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ||
                   r == STRATA_ERR_STATE || r == STRATA_ERR_CLOSED
               ? 0
               : -1;
}

static void prop_opts(strata_prop_opts *o, uint64_t seed, unsigned messages,
                      size_t max_size)
{
    uint64_t g = seed;

    memset(o, 0, sizeof *o);
    o->seed = seed;
    o->messages = messages;
    o->max_size = max_size;
    o->max_fragment = 1 + (size_t)(strata_rand(&g) % (max_size / 2 + 1));
    o->max_read = 1 + (size_t)(strata_rand(&g) % 700);
    o->duplex = 1;
    o->strict_end = 0;
    o->pipe.max_chunk = 1 + (size_t)(strata_rand(&g) % 13);
    o->pipe.need_percent = 20 + (unsigned)(strata_rand(&g) % 11);
    o->pipe.seed = seed ^ 0x5eedu;
}

static void run_prop_frag(prop *p, unsigned messages, size_t max_size,
                          unsigned flags, size_t max_fragment)
{
    static const uint8_t ascii[] = "abcdefghijklmnopqrstuvwxyz 0123456789";
    uint64_t seed = strata_test_seed();
    strata_prop_opts o;
    char err[256];

    prop_opts(&o, seed, messages, max_size);
    if (max_fragment != 0)
        o.max_fragment = max_fragment;
    o.send_flags = flags;
    if (flags & STRATA_MSG_TEXT) {
        o.alphabet = ascii;
        o.alphabet_len = sizeof ascii - 1;
    }
    if (strata_prop_run(&o, build, ping_step, p, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(p->pings > 0 || messages < 100);
}

static void run_prop(prop *p, unsigned messages, size_t max_size,
                     unsigned flags)
{
    run_prop_frag(p, messages, max_size, flags, 0);
}

static void test_prop_frames(void **state)
{
    prop p = {0, 0, 0, 0};

    (void)state;
    run_prop(&p, 10000, 300, 0);
}

static void test_prop_text(void **state)
{
    prop p = {0, 0, 0, 0};

    (void)state;
    run_prop(&p, 3000, 200, STRATA_MSG_TEXT);
}

/* Frames past half the input buffer: their payload goes straight into
 * the caller's buffer, and the next header is read without read-ahead. */
static void test_prop_big(void **state)
{
    prop p = {0, 0, 0, 0};

    (void)state;
    run_prop_frag(&p, 40, 70000, 0, 70000);
}

static void test_prop_handshake(void **state)
{
    prop p = {1, 0, 0, 0};

    (void)state;
    run_prop(&p, 10000, 300, 0);
}

static void test_prop_deflate(void **state)
{
    prop p = {0, 1, 0, 0};

    (void)state;
    run_prop(&p, 10000, 300, 0);
}

static void test_prop_deflate_handshake(void **state)
{
    prop p = {1, 1, 0, 0};

    (void)state;
    run_prop(&p, 10000, 300, STRATA_MSG_TEXT);
}

static void test_prop_deflate_no_takeover(void **state)
{
    prop p = {1, 1, 1, 0};

    (void)state;
    run_prop(&p, 3000, 300, 0);
    p.handshake = 0;
    p.pings = 0;
    run_prop(&p, 3000, 2000, 0);
}

static void test_prop_deflate_big(void **state)
{
    prop p = {0, 1, 0, 0};

    (void)state;
    run_prop(&p, 30, 70000, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_incremental),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_new_bad_args),
        cmocka_unit_test(test_rfc_hello_server_sends),
        cmocka_unit_test(test_rfc_hello_client_sends),
        cmocka_unit_test(test_rfc_hello_received),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_non_minimal_lengths),
        cmocka_unit_test(test_masking_rules),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_control_rules),
        cmocka_unit_test(test_fragment_rules),
        cmocka_unit_test(test_fragments_with_control),
        cmocka_unit_test(test_zero_length_final_fragment),
        cmocka_unit_test(test_send_fragments),
        cmocka_unit_test(test_sendv_iovecs),
        cmocka_unit_test(test_send_text_checked),
        cmocka_unit_test(test_partial_send_continues),
        cmocka_unit_test(test_pong_waits),
        cmocka_unit_test(test_ping_api),
        cmocka_unit_test(test_close_valid_codes),
        cmocka_unit_test(test_close_reply_after_message),
        cmocka_unit_test(test_close_half_close),
        cmocka_unit_test(test_close_invalid_codes),
        cmocka_unit_test(test_close_reason_utf8),
        cmocka_unit_test(test_close_empty),
        cmocka_unit_test(test_close_initiated),
        cmocka_unit_test(test_shutdown_mid_message),
        cmocka_unit_test(test_stream_end),
        cmocka_unit_test(test_max_frame),
        cmocka_unit_test(test_max_message),
        cmocka_unit_test(test_text_invalid),
        cmocka_unit_test(test_text_split_code_point),
        cmocka_unit_test(test_poll),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_server_handshake_raw),
        cmocka_unit_test(test_server_hand_off),
        cmocka_unit_test(test_server_refusals),
        cmocka_unit_test(test_accept_callback),
        cmocka_unit_test(test_client_handshake_raw),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_subprotocols),
        cmocka_unit_test(test_deflate_rfc_examples),
        cmocka_unit_test(test_deflate_wire),
        cmocka_unit_test(test_deflate_frames),
        cmocka_unit_test(test_deflate_bomb),
        cmocka_unit_test(test_deflate_violations),
        cmocka_unit_test(test_deflate_at_limit),
        cmocka_unit_test(test_deflate_negotiated),
        cmocka_unit_test(test_deflate_handshake_raw),
        cmocka_unit_test(test_handshake_edges),
        cmocka_unit_test(test_big_frames),
        cmocka_unit_test(test_over_wbuf),
        cmocka_unit_test(test_deflate_send_edges),
        cmocka_unit_test(test_poll_headers),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_prop_frames),
        cmocka_unit_test(test_prop_text),
        cmocka_unit_test(test_prop_big),
        cmocka_unit_test(test_prop_handshake),
        cmocka_unit_test(test_prop_deflate),
        cmocka_unit_test(test_prop_deflate_handshake),
        cmocka_unit_test(test_prop_deflate_no_takeover),
        cmocka_unit_test(test_prop_deflate_big),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
