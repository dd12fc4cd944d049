/* permessage-deflate (protos/ws_deflate.h): the negotiation of RFC 7692
 * 7.1 from both ends (offer strings, a server's pick among offers, a
 * client's check of the answer), then the codec: the RFC's example bytes,
 * random messages through random chunk sizes in both roles, context
 * takeover and window bits per direction, interop with zlib used directly,
 * corrupt input, a zip bomb under a bounded allocator, allocator failures.
 *
 * STRATA_SEED replays a run; STRATA_VALGRIND=1 shrinks the big sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <strata/stream.h>
#include <strata/ws.h>

#include "protos/ws_deflate.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

static const uint8_t sync_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* ---- environment, randomness, byte buffers ---------------------------- */

static int under_valgrind(void)
{
    const char *v = getenv("STRATA_VALGRIND");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static uint64_t seed;

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 1..max, log-uniform: tiny and huge chunks are both common. */
static size_t pick(uint64_t *r, size_t max)
{
    unsigned bits = 0;
    size_t span;

    while (bits < 40 && ((size_t)1 << bits) < max)
        bits++;
    span = (size_t)1 << (rnd(r) % (bits + 1));
    if (span > max)
        span = max;
    return 1 + (size_t)(rnd(r) % span);
}

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void drop(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Random content: noise, words, or runs with copies of earlier parts. */
static void fill(uint64_t *r, uint8_t *m, size_t len)
{
    static const char *const words[] = {
        "alpha ", "beta ", "gamma ", "stream ", "layer ", "frame ",
        "deflate ", "window ", "\n", "{\"k\":1}, ", "0123456789 ", "zz "
    };
    unsigned kind = (unsigned)(rnd(r) % 3);
    size_t i = 0, n, k;

    while (i < len) {
        if (kind == 0) {
            m[i++] = (uint8_t)rnd(r);
            continue;
        }
        if (kind == 1) {
            const char *w = words[rnd(r) % 12];
            n = strlen(w);
            for (k = 0; k < n && i < len; k++)
                m[i++] = (uint8_t)w[k];
            continue;
        }
        n = 1 + (size_t)(rnd(r) % 300);
        if (i > 0 && rnd(r) % 2) {
            size_t from = (size_t)(rnd(r) % i);
            for (k = 0; k < n && i < len; k++)
                m[i++] = m[from + k];  /* from + k < i: overlap is fine */
        } else {
            uint8_t c = (uint8_t)rnd(r);
            for (k = 0; k < n && i < len; k++)
                m[i++] = c;
        }
    }
}

/* ---- a counting allocator that can refuse ------------------------------ */

typedef struct counter {
    strata_allocator a;
    size_t live, peak, calls, blocks;
    size_t fail_at;        /* refuse the fail_at-th allocation; 0: never */
} counter;

typedef union head {
    size_t size;
    max_align_t align;
} head;

static void *c_alloc(void *ud, size_t size)
{
    counter *c = ud;
    head *h;

    if (++c->calls == c->fail_at)
        return NULL;
    h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    c->live += size;
    c->blocks++;
    if (c->live > c->peak)
        c->peak = c->live;
    return h + 1;
}

static void c_free(void *ud, void *p)
{
    counter *c = ud;
    head *h = (head *)p - 1;

    c->live -= h->size;
    c->blocks--;
    free(h);
}

static void *c_realloc(void *ud, void *p, size_t size)
{
    void *q;

    if (p == NULL)
        return c_alloc(ud, size);
    q = c_alloc(ud, size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, ((head *)p - 1)->size < size ? ((head *)p - 1)->size : size);
    c_free(ud, p);
    return q;
}

static void counter_init(counter *c)
{
    memset(c, 0, sizeof *c);
    c->a.alloc = c_alloc;
    c->a.realloc = c_realloc;
    c->a.free = c_free;
    c->a.ud = c;
}

#define PMD "permessage-deflate"

/* ---- offer ----------------------------------------------------------- */

static strata_ws_deflate_opts dopts(int snct, int cnct, int smwb, int cmwb)
{
    strata_ws_deflate_opts o;

    memset(&o, 0, sizeof o);
    o.enable = 1;
    o.server_no_context_takeover = snct;
    o.client_no_context_takeover = cnct;
    o.server_max_window_bits = smwb;
    o.client_max_window_bits = cmwb;
    return o;
}

static void offer_is(strata_ws_deflate_opts o, const char *want)
{
    char buf[256];
    int n = ws_deflate_offer(&o, buf, sizeof buf);

    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_offer(void **state)
{
    strata_ws_deflate_opts o = dopts(0, 0, 0, 0);
    char buf[64];
    int len;

    (void)state;
    offer_is(dopts(0, 0, 0, 0), "permessage-deflate");
    offer_is(dopts(1, 0, 0, 0), PMD "; server_no_context_takeover");
    offer_is(dopts(0, 1, 0, 0), PMD "; client_no_context_takeover");
    offer_is(dopts(0, 0, 10, 0), PMD "; server_max_window_bits=10");
    offer_is(dopts(0, 0, 0, 9), PMD "; client_max_window_bits=9");
    offer_is(dopts(0, 0, 8, 15), "permessage-deflate; server_max_window_bits=8;"
                                 " client_max_window_bits=15");
    offer_is(dopts(1, 1, 12, 11),
             "permessage-deflate; server_no_context_takeover; "
             "client_no_context_takeover; server_max_window_bits=12; "
             "client_max_window_bits=11");
    /* Window bits out of 8..15 are the caller's mistake. */
    o.server_max_window_bits = 7;
    assert_int_equal(ws_deflate_offer(&o, buf, sizeof buf), STRATA_ERR_ARG);
    o.server_max_window_bits = 16;
    assert_int_equal(ws_deflate_offer(&o, buf, sizeof buf), STRATA_ERR_ARG);
    o = dopts(0, 0, 0, -1);
    assert_int_equal(ws_deflate_offer(&o, buf, sizeof buf), STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_offer(NULL, buf, sizeof buf), STRATA_ERR_ARG);
    o = dopts(0, 0, 0, 0);
    assert_int_equal(ws_deflate_offer(&o, NULL, 10), STRATA_ERR_ARG);
    /* Room for the text and its NUL, not one byte less. */
    len = (int)strlen("permessage-deflate");
    assert_int_equal(ws_deflate_offer(&o, buf, (size_t)len + 1), len);
    assert_int_equal(ws_deflate_offer(&o, buf, (size_t)len),
                     STRATA_ERR_TOO_BIG);
    assert_int_equal(ws_deflate_offer(&o, buf, 0), STRATA_ERR_TOO_BIG);
    o = dopts(1, 0, 0, 0);
    assert_int_equal(ws_deflate_offer(&o, buf, 30), STRATA_ERR_TOO_BIG);
}

/* ---- accept (server) ------------------------------------------------- */

typedef struct acase {
    int snct, cnct, smwb, cmwb;   /* the server's options */
    const char *offers;
    int ret;
    const char *resp;             /* when ret == 1 */
    int p_snct, p_cnct, p_smwb, p_cmwb;
} acase;

static const acase accept_cases[] = {
    /* plain, and each parameter alone */
    { 0, 0, 0, 0, PMD, 1, PMD, 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; server_no_context_takeover", 1,
      PMD "; server_no_context_takeover", 1, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; client_no_context_takeover", 1,
      PMD "; client_no_context_takeover", 0, 1, 15, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=10", 1,
      PMD "; server_max_window_bits=10", 0, 0, 10, 15 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits", 1, PMD, 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=12", 1,
      PMD "; client_max_window_bits=12", 0, 0, 15, 12 },
    { 0, 0, 0, 0, PMD "; server_no_context_takeover;"
      " client_no_context_takeover;"
      " server_max_window_bits=9; client_max_window_bits=11", 1,
      PMD "; server_no_context_takeover; client_no_context_takeover;"
      " server_max_window_bits=9; client_max_window_bits=11", 1, 1, 9, 11 },
    /* quoted-string values (RFC 6455 9.1, RFC 7692 7.1.2) */
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"10\"", 1,
      PMD "; server_max_window_bits=10", 0, 0, 10, 15 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=\"9\"", 1,
      PMD "; client_max_window_bits=9", 0, 0, 15, 9 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=\"1\\3\"", 1,
      PMD "; client_max_window_bits=13", 0, 0, 15, 13 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"16\"", 0, NULL, 0, 0, 0, 0 },
    /* several offers: the first acceptable one wins */
    { 0, 0, 0, 11, PMD "; server_max_window_bits=7, " PMD
      "; client_max_window_bits", 1, PMD "; client_max_window_bits=11",
      0, 0, 15, 11 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=12, " PMD
      "; server_no_context_takeover", 1, PMD "; server_max_window_bits=12",
      0, 0, 12, 15 },
    { 0, 0, 0, 0, "x-webkit-deflate-frame, " PMD "; client_no_context_takeover",
      1, PMD "; client_no_context_takeover", 0, 1, 15, 15 },
    { 0, 0, 0, 0, "foo; bar=baz, mux", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, "", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, " \t ", 0, NULL, 0, 0, 0, 0 },
    /* duplicates and unknown parameters decline the offer, not the header */
    { 0, 0, 0, 0, PMD "; server_no_context_takeover;"
      " server_no_context_takeover", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=9; server_max_window_bits=9",
      0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits; client_max_window_bits=9",
      0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; foo", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; foo=1, " PMD, 1, PMD, 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; client_no_context_takeover;"
      " client_no_context_takeover, " PMD "; server_max_window_bits=15", 1,
      PMD "; server_max_window_bits=15", 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; server_no_context_takeover=1", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits", 0, NULL, 0, 0, 0, 0 },
    /* window bits: 8 and 15 are the bounds, without leading zeros */
    { 0, 0, 0, 0, PMD "; server_max_window_bits=8", 1,
      PMD "; server_max_window_bits=8", 0, 0, 8, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=15", 1,
      PMD "; server_max_window_bits=15", 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=7", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=16", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=0", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=08", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=+9", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=150", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=abc", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=8", 1,
      PMD "; client_max_window_bits=8", 0, 0, 15, 8 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=15", 1,
      PMD "; client_max_window_bits=15", 0, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=7", 0, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=16", 0, NULL, 0, 0, 0, 0 },
    /* what the server's options add */
    { 1, 0, 0, 0, PMD, 1, PMD "; server_no_context_takeover", 1, 0, 15, 15 },
    { 0, 1, 0, 0, PMD, 1, PMD "; client_no_context_takeover", 0, 1, 15, 15 },
    { 0, 0, 10, 0, PMD, 1, PMD "; server_max_window_bits=10", 0, 0, 10, 15 },
    { 0, 0, 15, 0, PMD, 1, PMD, 0, 0, 15, 15 },
    { 0, 0, 10, 0, PMD "; server_max_window_bits=12", 1,
      PMD "; server_max_window_bits=10", 0, 0, 10, 15 },
    { 0, 0, 12, 0, PMD "; server_max_window_bits=9", 1,
      PMD "; server_max_window_bits=9", 0, 0, 9, 15 },
    { 0, 0, 0, 11, PMD, 1, PMD, 0, 0, 15, 15 },
    { 0, 0, 0, 11, PMD "; client_max_window_bits=9", 1,
      PMD "; client_max_window_bits=9", 0, 0, 15, 9 },
    { 0, 0, 0, 11, PMD "; client_max_window_bits=13", 1,
      PMD "; client_max_window_bits=11", 0, 0, 15, 11 },
    /* spelling: case, whitespace, empty list elements */
    { 0, 0, 0, 0, "PerMessage-Deflate; Server_No_Context_Takeover", 1,
      PMD "; server_no_context_takeover", 1, 0, 15, 15 },
    { 0, 0, 0, 0, " " PMD " ;\tclient_max_window_bits = 10 ,foo", 1,
      PMD "; client_max_window_bits=10", 0, 0, 15, 10 },
    { 0, 0, 0, 0, ", ," PMD ",,", 1, PMD, 0, 0, 15, 15 },
    /* broken syntax anywhere is a bad request */
    { 0, 0, 0, 0, PMD ";", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; =10", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=", STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"\"", STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"10", STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"1 0\"", STRATA_ERR_PROTO,
      NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"10\"x", STRATA_ERR_PROTO,
      NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD "; client_max_window_bits=1 0", STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD " client_max_window_bits", STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, "per message-deflate", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, "@", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, "; " PMD, STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, "foo; bar=\"a b\", " PMD, STRATA_ERR_PROTO, NULL,
      0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD ", foo;", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
    { 0, 0, 0, 0, PMD ", foo=bar", STRATA_ERR_PROTO, NULL, 0, 0, 0, 0 },
};

static void test_accept(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof accept_cases / sizeof accept_cases[0]; i++) {
        const acase *c = &accept_cases[i];
        strata_ws_deflate_opts o = dopts(c->snct, c->cnct, c->smwb, c->cmwb);
        ws_deflate_params p;
        char resp[256];
        int r;

        memset(&p, 0x55, sizeof p);
        r = ws_deflate_accept(&o, c->offers, resp, sizeof resp, &p);
        if (r != c->ret)
            fail_msg("offers \"%s\": %d, want %d", c->offers, r, c->ret);
        if (r != 1)
            continue;
        if (strcmp(resp, c->resp) != 0)
            fail_msg("offers \"%s\": \"%s\", want \"%s\"", c->offers, resp,
                     c->resp);
        assert_int_equal(p.server_no_context_takeover, c->p_snct);
        assert_int_equal(p.client_no_context_takeover, c->p_cnct);
        assert_int_equal(p.server_max_window_bits, c->p_smwb);
        assert_int_equal(p.client_max_window_bits, c->p_cmwb);
    }
}

static void test_accept_args(void **state)
{
    strata_ws_deflate_opts o = dopts(0, 0, 0, 0);
    ws_deflate_params p;
    char resp[64];

    (void)state;
    assert_int_equal(ws_deflate_accept(NULL, PMD, resp, sizeof resp, &p),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_accept(&o, NULL, resp, sizeof resp, &p),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_accept(&o, PMD, NULL, sizeof resp, &p),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_accept(&o, PMD, resp, sizeof resp, NULL),
                     STRATA_ERR_ARG);
    o.client_max_window_bits = 16;
    assert_int_equal(ws_deflate_accept(&o, PMD, resp, sizeof resp, &p),
                     STRATA_ERR_ARG);
    o = dopts(1, 0, 0, 0);
    assert_int_equal(ws_deflate_accept(&o, PMD, resp, 20, &p),
                     STRATA_ERR_TOO_BIG);
    /* No offer for us: nothing to answer, whatever the room. */
    assert_int_equal(ws_deflate_accept(&o, "foo", resp, 1, &p), 0);
}

/* ---- confirm (client) ------------------------------------------------ */

typedef struct ccase {
    int snct, cnct, smwb, cmwb;   /* what the client offered */
    const char *response;
    int ret;
    int p_snct, p_cnct, p_smwb, p_cmwb;
} ccase;

#define BAD STRATA_ERR_PROTO, 0, 0, 0, 0

static const ccase confirm_cases[] = {
    { 0, 0, 0, 0, PMD, 0, 0, 0, 15, 15 },
    /* a server may add these unasked */
    { 0, 0, 0, 0, PMD "; server_no_context_takeover", 0, 1, 0, 15, 15 },
    { 0, 0, 0, 0, PMD "; client_no_context_takeover", 0, 0, 1, 15, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=10", 0, 0, 0, 10, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"9\"", 0, 0, 0, 9, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=8", 0, 0, 0, 8, 15 },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=15", 0, 0, 0, 15, 15 },
    { 0, 0, 0, 0, " permessage-deflate , ", 0, 0, 0, 15, 15 },
    /* but not a client window we did not offer */
    { 0, 0, 0, 0, PMD "; client_max_window_bits=10", BAD },
    { 0, 0, 0, 0, PMD "; client_max_window_bits", BAD },
    /* client_max_window_bits offered */
    { 0, 0, 0, 10, PMD "; client_max_window_bits=9", 0, 0, 0, 15, 9 },
    { 0, 0, 0, 10, PMD "; client_max_window_bits=10", 0, 0, 0, 15, 10 },
    { 0, 0, 0, 10, PMD "; client_max_window_bits=8", 0, 0, 0, 15, 8 },
    { 0, 0, 0, 10, PMD, 0, 0, 0, 15, 10 },
    { 0, 0, 0, 10, PMD "; client_max_window_bits=11", BAD },
    { 0, 0, 0, 10, PMD "; client_max_window_bits", BAD },
    { 0, 0, 0, 10, PMD "; client_max_window_bits=7", BAD },
    /* server_max_window_bits asked: echoed, same or smaller */
    { 0, 0, 10, 0, PMD "; server_max_window_bits=10", 0, 0, 0, 10, 15 },
    { 0, 0, 10, 0, PMD "; server_max_window_bits=8", 0, 0, 0, 8, 15 },
    { 0, 0, 10, 0, PMD "; server_max_window_bits=11", BAD },
    { 0, 0, 10, 0, PMD, BAD },
    /* server_no_context_takeover asked: must be granted */
    { 1, 0, 0, 0, PMD, BAD },
    { 1, 0, 0, 0, PMD "; server_no_context_takeover", 0, 1, 0, 15, 15 },
    /* our client_no_context_takeover binds us even if not echoed */
    { 0, 1, 0, 0, PMD, 0, 0, 1, 15, 15 },
    /* malformed or not what we offered */
    { 0, 0, 0, 0, "", BAD },
    { 0, 0, 0, 0, PMD ", " PMD, BAD },
    { 0, 0, 0, 0, "x-webkit-deflate-frame", BAD },
    { 0, 0, 0, 0, PMD ", foo", BAD },
    { 0, 0, 0, 0, PMD "; server_no_context_takeover;"
      " server_no_context_takeover", BAD },
    { 0, 0, 0, 0, PMD "; server_no_context_takeover=1", BAD },
    { 0, 0, 0, 0, PMD "; foo", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=7", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=16", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=09", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=9; server_max_window_bits=9",
      BAD },
    { 0, 0, 0, 0, PMD ";", BAD },
    { 0, 0, 0, 0, PMD "; server_max_window_bits=\"9", BAD },
};

static void test_confirm(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof confirm_cases / sizeof confirm_cases[0]; i++) {
        const ccase *c = &confirm_cases[i];
        strata_ws_deflate_opts o = dopts(c->snct, c->cnct, c->smwb, c->cmwb);
        ws_deflate_params p;
        int r;

        r = ws_deflate_confirm(&o, c->response, &p);
        if (r != c->ret)
            fail_msg("response \"%s\": %d, want %d", c->response, r, c->ret);
        if (r != 0)
            continue;
        assert_int_equal(p.server_no_context_takeover, c->p_snct);
        assert_int_equal(p.client_no_context_takeover, c->p_cnct);
        assert_int_equal(p.server_max_window_bits, c->p_smwb);
        assert_int_equal(p.client_max_window_bits, c->p_cmwb);
    }
}

/* What a server grants, the client that offered it confirms, with the
 * same parameters on both ends. */
static void test_negotiate_both_ends(void **state)
{
    uint64_t r = seed;
    int i;

    (void)state;
    for (i = 0; i < 2000; i++) {
        strata_ws_deflate_opts co, so;
        ws_deflate_params sp, cp;
        char offer[256], resp[256];

        co = dopts((int)(rnd(&r) % 2), (int)(rnd(&r) % 2),
                   rnd(&r) % 2 ? 8 + (int)(rnd(&r) % 8) : 0,
                   rnd(&r) % 2 ? 8 + (int)(rnd(&r) % 8) : 0);
        so = dopts((int)(rnd(&r) % 2), (int)(rnd(&r) % 2),
                   rnd(&r) % 2 ? 8 + (int)(rnd(&r) % 8) : 0,
                   rnd(&r) % 2 ? 8 + (int)(rnd(&r) % 8) : 0);
        assert_true(ws_deflate_offer(&co, offer, sizeof offer) > 0);
        assert_int_equal(ws_deflate_accept(&so, offer, resp, sizeof resp, &sp),
                         1);
        assert_int_equal(ws_deflate_confirm(&co, resp, &cp), 0);
        assert_memory_equal(&sp, &cp, sizeof sp);
        assert_true(!co.server_no_context_takeover ||
                    cp.server_no_context_takeover);
        assert_true(co.server_max_window_bits == 0 ||
                    cp.server_max_window_bits <= co.server_max_window_bits);
        assert_true(co.client_max_window_bits == 0 ||
                    cp.client_max_window_bits <= co.client_max_window_bits);
    }
}

/* ---- codec drivers --------------------------------------------------- */

static ws_deflate_params params(int snct, int cnct, int smwb, int cmwb)
{
    ws_deflate_params p;

    p.server_no_context_takeover = snct;
    p.client_no_context_takeover = cnct;
    p.server_max_window_bits = smwb;
    p.client_max_window_bits = cmwb;
    return p;
}

#define GUARD 50000000u

/* Compress one message through random input chunks and output buffers
 * (1..max_in, 1..max_out); sometimes fin comes alone after all the bytes.
 * r NULL: the whole message at once into max_out-sized buffers. */
static ssize_t squeeze(ws_deflate *d, const uint8_t *m, size_t len,
                       uint64_t *r, size_t max_in, size_t max_out, bytes *out)
{
    uint8_t *buf = malloc(max_out);
    int late_fin = r != NULL && rnd(r) % 4 == 0;
    int fin = 0, done = 0;
    size_t off = 0, calls = 0;
    ssize_t n = 0;

    assert_non_null(buf);
    while (!done) {
        size_t chunk = len - off, cap = max_out, used;

        if (r != NULL && !fin) {
            chunk = pick(r, max_in);
            if (chunk > len - off)
                chunk = len - off;
        }
        if (!fin)
            fin = late_fin ? off == len : off + chunk == len;
        if (r != NULL)
            cap = pick(r, max_out);
        n = ws_deflate_compress(d, m + off, chunk, fin, buf, cap, &used, &done);
        if (n < 0)
            break;
        assert_true((size_t)n <= cap && used <= chunk);
        put(out, buf, (size_t)n);
        off += used;
        assert_true(++calls < GUARD);
    }
    free(buf);
    if (n >= 0)
        assert_int_equal(off, len);
    return n < 0 ? n : 0;
}

/* Inflate one message's payload, split in frames of 1..max_in bytes, the
 * last with fin, into buffers of 1..max_out bytes (r NULL: one frame,
 * max_out buffers). Returns 0 or the error. */
static ssize_t swell(ws_deflate *d, const uint8_t *data, size_t len,
                     uint64_t *r, size_t max_in, size_t max_out, bytes *out)
{
    uint8_t *buf = malloc(max_out);
    size_t off = 0, calls = 0;
    ssize_t n = 0;
    int fin = 0, done = 0;

    assert_non_null(buf);
    while (!fin) {
        size_t flen = r != NULL ? pick(r, max_in) : len, fo = 0;

        if (flen > len - off)
            flen = len - off;
        fin = off + flen == len;
        for (;;) {
            size_t cap = r != NULL ? pick(r, max_out) : max_out, used;

            n = ws_deflate_decompress(d, data + off + fo, flen - fo, fin, buf,
                                      cap, &used, &done);
            if (n < 0)
                goto out;
            assert_true((size_t)n <= cap && used <= flen - fo);
            put(out, buf, (size_t)n);
            fo += used;
            assert_true(++calls < GUARD);
            if (fin ? done : fo == flen && (size_t)n < cap)
                break;
        }
        off += flen;
    }
out:
    free(buf);
    return n < 0 ? n : 0;
}

static void expect_inflate(ws_deflate *d, const uint8_t *data, size_t len,
                           const void *want, size_t want_len)
{
    bytes got = { 0 };

    assert_int_equal(swell(d, data, len, NULL, 0, 64 * KiB, &got), 0);
    assert_int_equal(got.len, want_len);
    if (want_len > 0)
        assert_memory_equal(got.p, want, want_len);
    drop(&got);
}

/* ---- RFC 7692 7.2.3 examples ----------------------------------------- */

static void test_rfc_examples(void **state)
{
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    static const uint8_t again[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
    static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                      0x65, 0x6c, 0x6c, 0x6f, 0x00 };
    static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00, 0x00 };
    static const uint8_t two[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                   0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00 };
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *c, *s;
    bytes out = { 0 };
    uint8_t buf[64];
    size_t used;
    int done;
    ssize_t n;

    (void)state;
    c = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    assert_non_null(c);
    assert_non_null(s);
    /* 7.2.3.1: "Hello" compresses to exactly these bytes. */
    assert_int_equal(squeeze(c, (const uint8_t *)"Hello", 5, NULL, 0, 64, &out),
                     0);
    assert_int_equal(out.len, sizeof hello);
    assert_memory_equal(out.p, hello, sizeof hello);
    drop(&out);
    expect_inflate(s, hello, sizeof hello, "Hello", 5);
    /* 7.2.3.2: the same again with the window taken over. */
    expect_inflate(s, again, sizeof again, "Hello", 5);
    /* 7.2.3.1 fragmented: two frames. */
    n = ws_deflate_decompress(s, hello, 3, 0, buf, sizeof buf, &used, &done);
    assert_true(n >= 0 && used == 3 && !done);
    out.len = 0;
    put(&out, buf, (size_t)n);
    n = ws_deflate_decompress(s, hello + 3, 4, 1, buf, sizeof buf, &used,
                              &done);
    assert_true(n >= 0 && used == 4 && done);
    put(&out, buf, (size_t)n);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.p, "Hello", 5);
    drop(&out);
    /* 7.2.3.3 a stored block, 7.2.3.4 BFINAL set, 7.2.3.5 two blocks. */
    expect_inflate(s, stored, sizeof stored, "Hello", 5);
    expect_inflate(s, bfinal, sizeof bfinal, "Hello", 5);
    expect_inflate(s, two, sizeof two, "Hello", 5);
    /* 7.2.3.6: an empty message is one byte 00, and inflates to nothing. */
    assert_int_equal(squeeze(c, (const uint8_t *)"", 0, NULL, 0, 64, &out), 0);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.p[0], 0x00);
    expect_inflate(s, out.p, out.len, "", 0);
    drop(&out);
    ws_deflate_free(c);
    ws_deflate_free(s);
}

/* ---- random round trips ---------------------------------------------- */

static size_t big(void)
{
    return under_valgrind() ? 64 * KiB : MiB;
}

/* Messages of 0..max bytes from sender (role) to receiver (other role)
 * over one pair, so that context takeover spans messages. */
static void round_trips(uint64_t *r, const ws_deflate_params *p, int role,
                        unsigned count, size_t max)
{
    ws_deflate *tx = ws_deflate_new(p, role, NULL);
    ws_deflate *rx = ws_deflate_new(p, !role, NULL);
    uint8_t *m = malloc(max + 1);
    unsigned i;

    assert_non_null(tx);
    assert_non_null(rx);
    assert_non_null(m);
    for (i = 0; i < count; i++) {
        size_t len = rnd(r) % 4 == 0 ? (size_t)(rnd(r) % 64)
                                     : pick(r, max + 1) - 1;
        bytes z = { 0 }, back = { 0 };

        fill(r, m, len);
        assert_int_equal(squeeze(tx, m, len, r, 64 * KiB, 64 * KiB, &z), 0);
        assert_int_equal(swell(rx, z.p, z.len, r, 64 * KiB, 64 * KiB, &back),
                         0);
        if (back.len != len || (len > 0 && memcmp(back.p, m, len) != 0))
            fail_msg("seed %" PRIu64 ": message %u of %zu bytes differs", seed,
                     i, len);
        drop(&z);
        drop(&back);
    }
    free(m);
    ws_deflate_free(tx);
    ws_deflate_free(rx);
}

static void test_round_trips(void **state)
{
    uint64_t r = seed ^ 1;
    unsigned count = under_valgrind() ? 4 : 16;
    int role, snct, cnct;

    (void)state;
    for (role = 0; role < 2; role++)
        for (snct = 0; snct < 2; snct++)
            for (cnct = 0; cnct < 2; cnct++) {
                ws_deflate_params p = params(snct, cnct,
                                             8 + (int)(rnd(&r) % 8),
                                             8 + (int)(rnd(&r) % 8));
                round_trips(&r, &p, role, count, big());
            }
}

/* Every window size in both directions with small messages. */
static void test_round_trips_windows(void **state)
{
    uint64_t r = seed ^ 2;
    int bits;

    (void)state;
    for (bits = 8; bits <= 15; bits++) {
        ws_deflate_params p = params(0, 0, bits, 23 - bits);

        round_trips(&r, &p, STRATA_WS_CLIENT, 6, 40 * KiB);
        round_trips(&r, &p, STRATA_WS_SERVER, 6, 40 * KiB);
    }
}

/* ---- context takeover ------------------------------------------------ */

/* Words only: compressible, and worth a back-reference on repeat. */
static void make_text(uint8_t *m, size_t len)
{
    static const char *const w[] = { "lorem ", "ipsum ", "dolor ", "sit ",
                                     "amet ", "consectetur " };
    uint64_t r = 42;
    size_t i = 0, k;

    while (i < len) {
        const char *s = w[rnd(&r) % 6];

        for (k = 0; s[k] != '\0' && i < len; k++)
            m[i++] = (uint8_t)s[k];
    }
}

/* The same message twice from role: identical output when its direction
 * resets, a much shorter second one when the window carries over. */
static void twice(int role, int reset)
{
    ws_deflate_params p = params(role == STRATA_WS_SERVER && reset,
                                 role == STRATA_WS_CLIENT && reset, 15, 15);
    ws_deflate *d = ws_deflate_new(&p, role, NULL);
    uint8_t m[4096];
    bytes a = { 0 }, b = { 0 };

    assert_non_null(d);
    make_text(m, sizeof m);
    assert_int_equal(squeeze(d, m, sizeof m, NULL, 0, 512, &a), 0);
    assert_int_equal(squeeze(d, m, sizeof m, NULL, 0, 512, &b), 0);
    if (reset) {
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
    } else {
        assert_true(b.len * 4 < a.len);
    }
    drop(&a);
    drop(&b);
    ws_deflate_free(d);
}

static void test_context_takeover_compress(void **state)
{
    (void)state;
    twice(STRATA_WS_CLIENT, 0);
    twice(STRATA_WS_CLIENT, 1);
    twice(STRATA_WS_SERVER, 0);
    twice(STRATA_WS_SERVER, 1);
    /* The other direction's flag does not reset ours. */
    {
        ws_deflate_params p = params(1, 0, 15, 15);
        ws_deflate *d = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
        uint8_t m[4096];
        bytes a = { 0 }, b = { 0 };

        make_text(m, sizeof m);
        assert_int_equal(squeeze(d, m, sizeof m, NULL, 0, 512, &a), 0);
        assert_int_equal(squeeze(d, m, sizeof m, NULL, 0, 512, &b), 0);
        assert_true(b.len * 4 < a.len);
        drop(&a);
        drop(&b);
        ws_deflate_free(d);
    }
}

/* A peer that keeps its window sends a second message pointing into the
 * first: our inflater follows with takeover, and fails when the params
 * say the peer resets (then such a message is corrupt). */
static void test_context_takeover_decompress(void **state)
{
    int role, reset;
    uint8_t m[4096];

    (void)state;
    make_text(m, sizeof m);
    for (role = 0; role < 2; role++)
        for (reset = 0; reset < 2; reset++) {
            ws_deflate_params peer = params(0, 0, 15, 15);
            ws_deflate_params ours = params(role == STRATA_WS_CLIENT && reset,
                                            role == STRATA_WS_SERVER && reset,
                                            15, 15);
            ws_deflate *tx = ws_deflate_new(&peer, !role, NULL);
            ws_deflate *rx = ws_deflate_new(&ours, role, NULL);
            bytes a = { 0 }, b = { 0 }, got = { 0 };

            assert_int_equal(squeeze(tx, m, sizeof m, NULL, 0, 512, &a), 0);
            assert_int_equal(squeeze(tx, m, sizeof m, NULL, 0, 512, &b), 0);
            expect_inflate(rx, a.p, a.len, m, sizeof m);
            if (reset)
                assert_int_equal(swell(rx, b.p, b.len, NULL, 0, 1, &got),
                                 STRATA_ERR_PROTO);
            else
                expect_inflate(rx, b.p, b.len, m, sizeof m);
            drop(&a);
            drop(&b);
            drop(&got);
            ws_deflate_free(tx);
            ws_deflate_free(rx);
        }
}

/* ---- window bits ----------------------------------------------------- */

/* Noise with each block repeated at a distance just past 2^bits, and once
 * more well inside it: a compressor ignoring its window refers back too
 * far, one keeping to it may only use the near copy. */
static size_t window_data(uint8_t *m, size_t cap, int bits)
{
    uint64_t r = (uint64_t)bits;
    size_t far = ((size_t)1 << bits) + 37, i = 0, k, n = 64;

    while (i + far + 2 * n <= cap) {
        for (k = 0; k < n; k++)
            m[i + k] = (uint8_t)rnd(&r);
        for (k = n; k < far; k++)
            m[i + k] = (uint8_t)rnd(&r);
        memcpy(m + i + far, m + i, n);     /* too far for the window */
        memcpy(m + i + far + n, m + i + far, n);  /* near: fine */
        i += far + 2 * n;
    }
    return i;
}

/* Raw inflate with zlib at windowBits -bits, one output byte at a time so
 * that only the window may serve a back-reference. Z_OK and the bytes. */
static int zlib_inflate_1(const uint8_t *z, size_t zlen, int bits, bytes *out)
{
    z_stream s;
    uint8_t b;
    int r = Z_OK;

    memset(&s, 0, sizeof s);
    assert_int_equal(inflateInit2(&s, -bits), Z_OK);
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)zlen;
    while (r == Z_OK) {
        s.next_out = &b;
        s.avail_out = 1;
        r = inflate(&s, Z_SYNC_FLUSH);
        if (s.avail_out == 0)
            put(out, &b, 1);
        if (r == Z_BUF_ERROR && s.avail_in == 0 && s.avail_out == 1)
            r = Z_STREAM_END;   /* all in, nothing more out */
        else if (r == Z_BUF_ERROR)
            r = Z_OK;
    }
    inflateEnd(&s);
    return r == Z_STREAM_END ? Z_OK : r;
}

/* A raw deflate stream by zlib itself, ended by a sync flush with its
 * 00 00 ff ff removed as RFC 7692 7.2.1 says. */
static void zlib_deflate(const uint8_t *m, size_t len, int bits, int level,
                         bytes *out)
{
    z_stream s;
    uint8_t buf[4096];
    int r;

    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, level, Z_DEFLATED, -bits, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = (Bytef *)(uintptr_t)m;
    s.avail_in = (uInt)len;
    do {
        s.next_out = buf;
        s.avail_out = sizeof buf;
        r = deflate(&s, Z_SYNC_FLUSH);
        assert_true(r == Z_OK || r == Z_BUF_ERROR);
        put(out, buf, sizeof buf - s.avail_out);
    } while (s.avail_out == 0);
    deflateEnd(&s);
    assert_true(out->len >= 4);
    assert_memory_equal(out->p + out->len - 4, sync_tail, 4);
    out->len -= 4;
}

static void test_window_bits(void **state)
{
    size_t cap = 160 * KiB, len;
    uint8_t *m = malloc(cap);
    int bits, role;

    (void)state;
    assert_non_null(m);
    for (bits = 8; bits <= 15; bits++) {
        len = window_data(m, cap, bits);
        assert_true(len > 0);
        for (role = 0; role < 2; role++) {
            /* Only our direction's window is small: the other is 15. */
            ws_deflate_params p = params(0, 0, role ? bits : 15,
                                         role ? 15 : bits);
            ws_deflate *d = ws_deflate_new(&p, role, NULL);
            bytes z = { 0 }, back = { 0 };

            assert_int_equal(squeeze(d, m, len, NULL, 0, 64 * KiB, &z), 0);
            put(&z, sync_tail, 4);
            assert_int_equal(zlib_inflate_1(z.p, z.len, bits, &back), Z_OK);
            assert_int_equal(back.len, len);
            assert_memory_equal(back.p, m, len);
            drop(&z);
            drop(&back);
            ws_deflate_free(d);
        }
    }
    free(m);
}

/* zlib refuses a raw 8-bit window, so for 8 we deflate with 9; that is
 * safe because zlib looks back at most 512 - 262 = 250 bytes, which an
 * inflater holding 256 follows even on data repeating 293 bytes back. */
static void test_window_8(void **state)
{
    size_t cap = 64 * KiB, len;
    uint8_t *m = malloc(cap);
    z_stream s;
    bytes z = { 0 }, back = { 0 };

    (void)state;
    assert_non_null(m);
    memset(&s, 0, sizeof s);
    assert_int_not_equal(deflateInit2(&s, 6, Z_DEFLATED, -8, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
    len = window_data(m, cap, 8);
    zlib_deflate(m, len, 9, 9, &z);
    put(&z, sync_tail, 4);
    assert_int_equal(zlib_inflate_1(z.p, z.len, 8, &back), Z_OK);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.p, m, len);
    drop(&z);
    drop(&back);
    free(m);
}

/* A peer deflating with a bigger window than agreed is caught. */
static void test_window_peer_too_far(void **state)
{
    size_t cap = 64 * KiB, len;
    uint8_t *m = malloc(cap);
    ws_deflate_params p = params(0, 0, 10, 15);
    ws_deflate *d = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    bytes z = { 0 }, got = { 0 };

    (void)state;
    assert_non_null(m);
    len = window_data(m, cap, 10);
    zlib_deflate(m, len, 15, 6, &z);
    assert_int_equal(swell(d, z.p, z.len, NULL, 0, 1, &got), STRATA_ERR_PROTO);
    /* and the error stays */
    assert_int_equal(swell(d, z.p, z.len, NULL, 0, 1, &got), STRATA_ERR_PROTO);
    drop(&z);
    drop(&got);
    ws_deflate_free(d);
    free(m);
}

/* ---- zlib interop ---------------------------------------------------- */

/* Several messages of ours, each with 00 00 ff ff put back, are one raw
 * deflate stream for zlib; zlib's own sync-flushed messages inflate here. */
static void test_zlib_interop(void **state)
{
    uint64_t r = seed ^ 3;
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *c = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    ws_deflate *s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    size_t max = 200 * KiB;
    uint8_t *m = malloc(max);
    z_stream zs;
    int i;

    (void)state;
    assert_non_null(m);
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, -15), Z_OK);
    for (i = 0; i < 8; i++) {
        size_t len = pick(&r, max + 1) - 1;
        bytes z = { 0 }, back = { 0 };
        uint8_t buf[4096];
        int zr;

        fill(&r, m, len);
        assert_int_equal(squeeze(c, m, len, &r, 4 * KiB, 4 * KiB, &z), 0);
        put(&z, sync_tail, 4);
        zs.next_in = z.p;
        zs.avail_in = (uInt)z.len;
        do {
            zs.next_out = buf;
            zs.avail_out = sizeof buf;
            zr = inflate(&zs, Z_SYNC_FLUSH);
            assert_true(zr == Z_OK || zr == Z_BUF_ERROR);
            put(&back, buf, sizeof buf - zs.avail_out);
        } while (zs.avail_in > 0 || zs.avail_out == 0);
        assert_int_equal(back.len, len);
        if (len > 0)
            assert_memory_equal(back.p, m, len);
        drop(&z);
        drop(&back);
    }
    inflateEnd(&zs);
    /* The other way, one zlib stream per message (a peer that resets). */
    for (i = 0; i < 8; i++) {
        size_t len = pick(&r, max + 1) - 1;
        bytes z = { 0 }, back = { 0 };

        fill(&r, m, len);
        zlib_deflate(m, len, 15, (int)(rnd(&r) % 10), &z);
        assert_int_equal(swell(s, z.p, z.len, &r, 4 * KiB, 4 * KiB, &back), 0);
        assert_int_equal(back.len, len);
        if (len > 0)
            assert_memory_equal(back.p, m, len);
        drop(&z);
        drop(&back);
    }
    free(m);
    ws_deflate_free(c);
    ws_deflate_free(s);
}

/* A peer ending messages with BFINAL blocks (RFC 7692 7.2.3.4): a new zlib
 * stream follows, which may still point into the earlier messages. */
static void test_bfinal_peer(void **state)
{
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    uint8_t m[3000], buf[8192];
    z_stream z;
    int i;

    (void)state;
    make_text(m, sizeof m);
    for (i = 0; i < 3; i++) {
        bytes msg = { 0 };

        memset(&z, 0, sizeof z);
        assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
        if (i > 0)  /* the peer keeps its window across streams */
            assert_int_equal(deflateSetDictionary(&z, m, sizeof m), Z_OK);
        z.next_in = m;
        z.avail_in = sizeof m;
        z.next_out = buf;
        z.avail_out = sizeof buf;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        put(&msg, buf, sizeof buf - z.avail_out);
        deflateEnd(&z);
        if (i > 0)
            assert_true(msg.len < 100);
        /* RFC form: 0x00 after the final block; the last one without it,
         * which we take as complete too. */
        if (i < 2)
            put(&msg, "", 1);
        expect_inflate(s, msg.p, msg.len, m, sizeof m);
        drop(&msg);
    }
    ws_deflate_free(s);
}

/* The same through every chunking: the stream's end may be seen with the
 * payload's last byte or only later, when output room comes. */
static void test_bfinal_chunked(void **state)
{
    static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00, 0x00 };
    uint64_t r = seed ^ 5;
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    int i, cut;

    (void)state;
    for (i = 0; i < 300; i++) {
        for (cut = 0; cut < 2; cut++) {
            bytes got = { 0 };

            /* cut: without the 00 that RFC 7692 7.2.3.4 puts after it */
            assert_int_equal(swell(s, bfinal, sizeof bfinal - (size_t)cut, &r,
                                   4, 4, &got), 0);
            assert_int_equal(got.len, 5);
            assert_memory_equal(got.p, "Hello", 5);
            drop(&got);
        }
    }
    ws_deflate_free(s);
}

/* An empty payload (no byte at all) is an empty message, at the start and
 * between others. */
static void test_empty_payload(void **state)
{
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    uint8_t out[16];
    size_t used;
    int done = 0;

    (void)state;
    assert_int_equal(ws_deflate_decompress(s, NULL, 0, 1, out, sizeof out,
                                           &used, &done), 0);
    assert_true(done);
    expect_inflate(s, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00", 7,
                   "Hello", 5);
    assert_int_equal(ws_deflate_decompress(s, NULL, 0, 1, out, sizeof out,
                                           &used, &done), 0);
    assert_true(done);
    expect_inflate(s, (const uint8_t *)"\xf2\x00\x11\x00\x00", 5, "Hello", 5);
    ws_deflate_free(s);
}

/* What zlib inflates of a raw stream's first len bytes, given any room. */
static size_t zlib_prefix_out(const uint8_t *z, size_t len)
{
    static uint8_t big_out[64 * 1024];
    z_stream s;

    memset(&s, 0, sizeof s);
    assert_int_equal(inflateInit2(&s, -15), Z_OK);
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)len;
    s.next_out = big_out;
    s.avail_out = sizeof big_out;
    (void)inflate(&s, Z_SYNC_FLUSH);
    assert_true(s.avail_out > 0);
    inflateEnd(&s);
    return sizeof big_out - s.avail_out;
}

/* After each prefix of the payload (a frame without fin), calls without
 * input give out all that the prefix holds, before the message's end. */
static void test_pending_output(void **state)
{
    ws_deflate_params p = params(0, 1, 15, 15);
    ws_deflate *c = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    ws_deflate *s = ws_deflate_new(&p, STRATA_WS_SERVER, NULL);
    uint8_t m[12000], out[100];
    bytes z = { 0 };
    size_t used, total, off, k;
    int done;
    ssize_t n;

    (void)state;
    make_text(m, sizeof m);
    memset(m + 6000, 'a', 3000);
    assert_int_equal(squeeze(c, m, sizeof m, NULL, 0, 4096, &z), 0);
    for (k = 1; k < z.len; k++) {
        total = 0;
        for (off = 0; off < k; off += used) {
            n = ws_deflate_decompress(s, z.p + off, k - off, 0, out,
                                      sizeof out, &used, &done);
            assert_true(n >= 0);
            total += (size_t)n;
        }
        do {
            n = ws_deflate_decompress(s, NULL, 0, 0, out, sizeof out, &used,
                                      &done);
            assert_true(n >= 0);
            total += (size_t)n;
        } while (n == (ssize_t)sizeof out);
        assert_false(done);
        assert_int_equal(total, zlib_prefix_out(z.p, k));
        /* the rest, to end the message (the codec resets for the next) */
        off = k;
        do {
            n = ws_deflate_decompress(s, z.p + off, z.len - off, 1, out,
                                      sizeof out, &used, &done);
            assert_true(n >= 0);
            off += used;
            total += (size_t)n;
        } while (!done);
        assert_int_equal(total, sizeof m);
    }
    drop(&z);
    ws_deflate_free(c);
    ws_deflate_free(s);
}

/* ---- corrupt input and misuse ---------------------------------------- */

static ssize_t inflate_once(const uint8_t *data, size_t len, size_t cap)
{
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *d = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    bytes got = { 0 };
    ssize_t r;

    assert_non_null(d);
    r = swell(d, data, len, NULL, 0, cap, &got);
    drop(&got);
    ws_deflate_free(d);
    return r;
}

static void test_corrupt(void **state)
{
    static const uint8_t btype3[] = { 0xff, 0xff, 0xff };
    static const uint8_t truncated[] = { 0xf2, 0x48 };
    static const uint8_t hello_cut[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07 };
    static const uint8_t bad_len[] = { 0x00, 0x05, 0x00, 0x00, 0x00, 0x48 };
    uint64_t r = seed ^ 4;
    uint8_t junk[512];
    int i;

    (void)state;
    assert_int_equal(inflate_once(btype3, sizeof btype3, 64), STRATA_ERR_PROTO);
    assert_int_equal(inflate_once(truncated, sizeof truncated, 64),
                     STRATA_ERR_PROTO);
    assert_int_equal(inflate_once(hello_cut, sizeof hello_cut, 64),
                     STRATA_ERR_PROTO);
    assert_int_equal(inflate_once(bad_len, sizeof bad_len, 64),
                     STRATA_ERR_PROTO);
    /* A fixed block whose first code is a match: nothing to copy from. */
    {
        /* BFINAL 0, BTYPE 01, length code 257 (3), distance code 0. */
        static const uint8_t match_first[] = { 0x02, 0x02, 0x00 };
        assert_int_equal(inflate_once(match_first, sizeof match_first, 64),
                         STRATA_ERR_PROTO);
    }
    /* Random junk never crashes: an error, or some output. */
    for (i = 0; i < 2000; i++) {
        size_t len = pick(&r, sizeof junk), k;
        ssize_t res;

        for (k = 0; k < len; k++)
            junk[k] = (uint8_t)rnd(&r);
        res = inflate_once(junk, len, pick(&r, 256));
        assert_true(res == 0 || res == STRATA_ERR_PROTO);
    }
}

static void test_bad_calls(void **state)
{
    ws_deflate_params p = params(0, 0, 15, 15);
    ws_deflate *d = ws_deflate_new(&p, STRATA_WS_CLIENT, NULL);
    uint8_t out[64];
    size_t used = 99;
    int done = 99;

    (void)state;
    assert_non_null(d);
    assert_int_equal(ws_deflate_compress(NULL, NULL, 0, 1, out, 64, &used,
                                         &done), STRATA_ERR_ARG);
    assert_int_equal(used, 0);
    assert_int_equal(done, 0);
    assert_int_equal(ws_deflate_compress(d, NULL, 3, 1, out, 64, &used, &done),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_compress(d, NULL, 0, 1, out, 0, &used, &done),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_compress(d, NULL, 0, 1, NULL, 5, &used, &done),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_compress(d, NULL, 0, 1, out, 5, NULL, &done),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_decompress(d, NULL, 0, 1, out, 5, &used, NULL),
                     STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_decompress(NULL, NULL, 0, 1, out, 5, &used,
                                           &done), STRATA_ERR_ARG);
    /* Mid-flush (1-byte buffer), more input is a mistake that costs
     * nothing: the message still ends right. */
    assert_int_equal(ws_deflate_compress(d, (const uint8_t *)"Hello", 5, 1, out,
                                         1, &used, &done), 1);
    assert_int_equal(used, 5);
    assert_int_equal(ws_deflate_compress(d, (const uint8_t *)"x", 1, 1, out + 1,
                                         63, &used, &done), STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_compress(d, NULL, 0, 0, out + 1, 63, &used,
                                         &done), STRATA_ERR_ARG);
    assert_int_equal(ws_deflate_compress(d, NULL, 0, 1, out + 1, 63, &used,
                                         &done), 6);
    assert_int_equal(done, 1);
    assert_memory_equal(out, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    /* Bad parameters and roles give no codec. */
    p.server_max_window_bits = 7;
    assert_null(ws_deflate_new(&p, STRATA_WS_CLIENT, NULL));
    p.server_max_window_bits = 16;
    assert_null(ws_deflate_new(&p, STRATA_WS_CLIENT, NULL));
    p.server_max_window_bits = 15;
    assert_null(ws_deflate_new(&p, 2, NULL));
    assert_null(ws_deflate_new(NULL, STRATA_WS_CLIENT, NULL));
    ws_deflate_free(d);
    ws_deflate_free(NULL);
}

/* ---- zip bomb -------------------------------------------------------- */

/* size bytes of zeros as a raw deflate message (level 9, ~1:1000). */
static void bomb(size_t size, bytes *out)
{
    static const uint8_t zeros[64 * 1024];
    uint8_t buf[16384];
    z_stream s;
    int r;

    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    while (size > 0 || s.avail_out == 0) {
        size_t n = size < sizeof zeros ? size : sizeof zeros;

        s.next_in = (Bytef *)(uintptr_t)zeros;
        s.avail_in = (uInt)n;
        size -= n;
        do {
            s.next_out = buf;
            s.avail_out = sizeof buf;
            r = deflate(&s, size > 0 ? Z_NO_FLUSH : Z_SYNC_FLUSH);
            assert_true(r == Z_OK || r == Z_BUF_ERROR);
            put(out, buf, sizeof buf - s.avail_out);
        } while (s.avail_out == 0);
    }
    deflateEnd(&s);
    out->len -= 4;
}

/* Inflate with a fixed 16 KiB buffer, stopping after limit bytes (or at
 * the message's end): returns the count; 1 in *done at the end. */
static size_t count_out(ws_deflate *d, const bytes *z, size_t limit,
                        int *done)
{
    uint8_t buf[16384];
    size_t off = 0, total = 0;

    *done = 0;
    while (!*done && total < limit) {
        size_t used;
        ssize_t n = ws_deflate_decompress(d, z->p + off, z->len - off, 1, buf,
                                          sizeof buf, &used, done);

        assert_true(n >= 0);
        off += used;
        total += (size_t)n;
    }
    return total;
}

static void test_zip_bomb(void **state)
{
    size_t size = under_valgrind() ? 8 * MiB : 100 * MiB, total;
    ws_deflate_params p = params(0, 0, 15, 15);
    bytes z = { 0 };
    counter c;
    ws_deflate *d;
    int done;

    (void)state;
    bomb(size, &z);
    assert_true(z.len < size / 500);
    counter_init(&c);
    /* The caller cuts it off at its limit: it stops calling, frees. */
    d = ws_deflate_new(&p, STRATA_WS_CLIENT, &c.a);
    assert_non_null(d);
    total = count_out(d, &z, MiB, &done);
    assert_false(done);
    assert_true(total >= MiB && total < MiB + 16384);
    ws_deflate_free(d);
    assert_int_equal(c.live, 0);
    /* Or reads it all, and memory never grows with it. */
    c.peak = 0;
    d = ws_deflate_new(&p, STRATA_WS_CLIENT, &c.a);
    total = count_out(d, &z, (size_t)-1, &done);
    assert_true(done);
    assert_int_equal(total, size);
    ws_deflate_free(d);
    assert_int_equal(c.live, 0);
    assert_int_equal(c.blocks, 0);
    /* inflate state and a 32 KiB window: no more */
    assert_true(c.peak < 64 * KiB);
    drop(&z);
}

/* ---- allocator failures ---------------------------------------------- */

/* A whole exchange in both directions under c; 0 or the first error. */
static int exchange(counter *c)
{
    static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00, 0x00 };
    ws_deflate_params p = params(0, 1, 12, 15);
    ws_deflate *a = NULL, *b = NULL;
    uint8_t m[20000];
    bytes z = { 0 }, back = { 0 };
    int r = STRATA_ERR_NOMEM, k;

    make_text(m, sizeof m);
    a = ws_deflate_new(&p, STRATA_WS_CLIENT, &c->a);
    b = ws_deflate_new(&p, STRATA_WS_SERVER, &c->a);
    if (a == NULL || b == NULL)
        goto out;
    for (k = 0; k < 2; k++) {
        z.len = back.len = 0;
        r = (int)squeeze(a, m, sizeof m, NULL, 0, 4096, &z);
        if (r == 0)
            r = (int)swell(b, z.p, z.len, NULL, 0, 4096, &back);
        if (r == 0)
            r = (int)squeeze(b, m, sizeof m, NULL, 0, 4096, &z);
        if (r == 0)
            r = (int)swell(b, bfinal, sizeof bfinal, NULL, 0, 4096, &back);
        if (r != 0)
            break;
    }
out:
    ws_deflate_free(a);
    ws_deflate_free(b);
    drop(&z);
    drop(&back);
    return r;
}

static void test_alloc_failures(void **state)
{
    counter c;
    size_t n;
    int r;

    (void)state;
    counter_init(&c);
    assert_int_equal(exchange(&c), 0);
    assert_true(c.calls >= 5);
    for (n = 1;; n++) {
        counter_init(&c);
        c.fail_at = n;
        r = exchange(&c);
        assert_int_equal(c.live, 0);
        assert_int_equal(c.blocks, 0);
        if (r == 0) {
            assert_true(c.calls < n);  /* every allocation was tried */
            break;
        }
        assert_int_equal(r, STRATA_ERR_NOMEM);
    }
    /* After a refusal the codec stays failed but frees cleanly. */
    {
        ws_deflate_params p = params(0, 0, 15, 15);
        ws_deflate *d;
        uint8_t out[64];
        size_t used;
        int done;

        counter_init(&c);
        c.fail_at = 2;  /* the first of the compressor's */
        d = ws_deflate_new(&p, STRATA_WS_CLIENT, &c.a);
        assert_non_null(d);
        assert_int_equal(ws_deflate_compress(d, (const uint8_t *)"a", 1, 1, out,
                                             sizeof out, &used, &done),
                         STRATA_ERR_NOMEM);
        assert_int_equal(ws_deflate_compress(d, (const uint8_t *)"a", 1, 1, out,
                                             sizeof out, &used, &done),
                         STRATA_ERR_NOMEM);
        /* the other direction is not hurt */
        assert_int_equal(ws_deflate_decompress(
                             d, (const uint8_t *)"\xf2\x48\xcd\xc9\xc9\x07\x00",
                             7, 1, out, sizeof out, &used, &done), 5);
        assert_true(done);
        ws_deflate_free(d);
        assert_int_equal(c.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offer),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_accept_args),
        cmocka_unit_test(test_confirm),
        cmocka_unit_test(test_negotiate_both_ends),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_round_trips_windows),
        cmocka_unit_test(test_context_takeover_compress),
        cmocka_unit_test(test_context_takeover_decompress),
        cmocka_unit_test(test_window_bits),
        cmocka_unit_test(test_window_8),
        cmocka_unit_test(test_window_peer_too_far),
        cmocka_unit_test(test_zlib_interop),
        cmocka_unit_test(test_bfinal_peer),
        cmocka_unit_test(test_bfinal_chunked),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_pending_output),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_alloc_failures),
    };
    const char *env = getenv("STRATA_SEED");

    seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 0)
                                       : (uint64_t)time(NULL);
    fprintf(stderr, "STRATA_SEED=%" PRIu64 "\n", seed);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
