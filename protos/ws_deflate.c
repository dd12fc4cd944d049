/* permessage-deflate (RFC 7692): negotiation and a streaming codec over
 * zlib raw deflate, with zlib's memory from the stack's allocator.
 *
 * Decisions the header leaves open:
 *  - Extension headers follow RFC 6455 9.1 with optional whitespace around
 *    ",", ";" and "="; empty list elements are skipped (RFC 7230 7). Names
 *    compare case-insensitively. A quoted value must unescape to a token
 *    (RFC 6455 9.1), else the header is malformed. Window bits are decimal
 *    8..15 without leading zeros (RFC 7692 7.1.2).
 *  - Accept: an offer with an unknown or duplicate parameter or a bad value
 *    is declined (RFC 7692 7), not an error; only broken syntax is
 *    STRATA_ERR_PROTO, checked over the whole header. o->enable is the
 *    caller's to check. o's values are preferences: a client that did not
 *    offer client_max_window_bits is granted 15 whatever o says.
 *  - Confirm: the response must hold exactly one element, permessage-deflate.
 *    A parameter we offered that the server must answer, missing
 *    (server_no_context_takeover, server_max_window_bits), is
 *    STRATA_ERR_PROTO. Our own hints (client_no_context_takeover,
 *    client_max_window_bits=N) bind us even when the server did not echo
 *    them (RFC 7692 7.1.1.2, 7.1.2.2).
 *  - zlib streams start at the first message of their direction, so a
 *    receive-only connection never holds a compressor. Calls after an
 *    error return it again (each direction fails on its own).
 *  - Compressing, the message's end is a Z_BLOCK (repeatable) and then a
 *    Z_SYNC_FLUSH into a stage that cannot fill, so zlib never emits a
 *    second 00 00 ff ff whatever the caller's buffer sizes.
 *  - Window bits 8 for our compressor deflates with 9 (see setup_def).
 *    The peer's window is inflated at exactly its agreed size: a peer
 *    reaching further back fails (STRATA_ERR_PROTO), unless the bytes
 *    it points to are still in the caller's output buffer.
 *  - A peer's deflate block with BFINAL set ends its zlib stream; what
 *    follows starts a new one with the window kept (RFC 7692 7.2.3.4).
 *    A message that ends right after such a block (without the 00 byte
 *    the RFC puts there), and a message with no payload byte at all, are
 *    taken as complete: no block is open, so there is nothing to close.
 *  - A message whose data, with 00 00 ff ff appended, does not end on a
 *    block boundary is truncated: STRATA_ERR_PROTO. Out-of-memory while
 *    decompressing (zlib allocates its window at the first output) is
 *    STRATA_ERR_NOMEM.
 */
#define ZLIB_CONST
#include "ws_deflate.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define NAME "permessage-deflate"
#define MEM_LEVEL 8

/* ---- parameters of one extension element --------------------------- */

/* One element's permessage-deflate parameters. Flags: -1 absent, 1 present.
 * Window bits: -1 absent, 0 present without a value, else 8..15. */
typedef struct pmd {
    int snct;
    int cnct;
    int smwb;
    int cmwb;
    int bad;      /* unknown or duplicate parameter, or a bad value */
} pmd;

/* A parameter value, unescaped; only the first bytes are kept since no
 * valid value is longer, but len counts them all. */
typedef struct value {
    int present;
    size_t len;
    char buf[4];
} value;

static void pmd_clear(pmd *d)
{
    d->snct = d->cnct = d->smwb = d->cmwb = -1;
    d->bad = 0;
}

static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t span_token(const char *p)
{
    size_t n = 0;

    while (is_tchar((unsigned char)p[n]))
        n++;
    return n;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether p[0..n) is the lowercase literal lit, ignoring case. */
static int name_is(const char *p, size_t n, const char *lit)
{
    size_t i;

    if (strlen(lit) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != lit[i])
            return 0;
    return 1;
}

static void keep(value *v, char c)
{
    if (v->len < sizeof v->buf)
        v->buf[v->len] = c;
    v->len++;
}

static int parse_quoted(const char **pp, value *v)
{
    const char *p = *pp + 1;

    while (*p != '"') {
        if (*p == '\\')
            p++;
        /* Also catches the missing closing quote: '\0' is no tchar. */
        if (!is_tchar((unsigned char)*p))
            return STRATA_ERR_PROTO;
        keep(v, *p++);
    }
    *pp = p + 1;
    return 0;
}

/* An optional "= value" after a parameter's name. */
static int parse_value(const char **pp, value *v)
{
    const char *p = skip_ows(*pp);
    size_t i, n;

    v->present = 0;
    v->len = 0;
    if (*p != '=')
        return 0;
    p = skip_ows(p + 1);
    v->present = 1;
    if (*p == '"') {
        if (parse_quoted(&p, v) < 0)
            return STRATA_ERR_PROTO;
    } else {
        n = span_token(p);
        for (i = 0; i < n; i++)
            keep(v, p[i]);
        p += n;
    }
    *pp = p;
    return v->len > 0 ? 0 : STRATA_ERR_PROTO;
}

/* "8".."15" without leading zeros, else -1. */
static int window_bits(const value *v)
{
    if (v->len == 1 && (v->buf[0] == '8' || v->buf[0] == '9'))
        return v->buf[0] - '0';
    if (v->len == 2 && v->buf[0] == '1' && v->buf[1] >= '0' &&
        v->buf[1] <= '5')
        return 10 + v->buf[1] - '0';
    return -1;
}

static void set_flag(pmd *d, int *slot, const value *v)
{
    if (*slot != -1 || v->present)
        d->bad = 1;
    *slot = 1;
}

/* A window parameter; bare is allowed here (client_max_window_bits in an
 * offer) and judged by the caller, who knows the direction. */
static void set_bits(pmd *d, int *slot, const value *v)
{
    int b = v->present ? window_bits(v) : 0;

    if (*slot != -1 || b < 0)
        d->bad = 1;
    *slot = b < 0 ? 0 : b;
}

static void pmd_param(pmd *d, const char *name, size_t n, const value *v)
{
    if (name_is(name, n, "server_no_context_takeover"))
        set_flag(d, &d->snct, v);
    else if (name_is(name, n, "client_no_context_takeover"))
        set_flag(d, &d->cnct, v);
    else if (name_is(name, n, "server_max_window_bits")) {
        set_bits(d, &d->smwb, v);
        if (d->smwb == 0)
            d->bad = 1;  /* needs a value in offers and responses alike */
    } else if (name_is(name, n, "client_max_window_bits"))
        set_bits(d, &d->cmwb, v);
    else
        d->bad = 1;
}

/* The ";" parameters of an element; d is filled when is_pmd. */
static int parse_params(const char **pp, int is_pmd, pmd *d)
{
    const char *p = *pp;
    const char *name;
    value v;
    size_t n;

    while (*p == ';') {
        p = skip_ows(p + 1);
        name = p;
        n = span_token(p);
        if (n == 0)
            return STRATA_ERR_PROTO;
        p += n;
        if (parse_value(&p, &v) < 0)
            return STRATA_ERR_PROTO;
        if (is_pmd)
            pmd_param(d, name, n, &v);
        p = skip_ows(p);
    }
    *pp = p;
    return 0;
}

/* One list element at *pp, which moves past it and its comma. Returns 1
 * (an extension: *is_pmd says whether it is ours, d its parameters), 0 for
 * an empty element, or STRATA_ERR_PROTO. */
static int parse_element(const char **pp, int *is_pmd, pmd *d)
{
    const char *p = skip_ows(*pp);
    size_t n = span_token(p);
    int r = 0;

    pmd_clear(d);
    *is_pmd = 0;
    if (n > 0) {
        *is_pmd = name_is(p, n, NAME);
        p = skip_ows(p + n);
        if (parse_params(&p, *is_pmd, d) < 0)
            return STRATA_ERR_PROTO;
        r = 1;
    }
    if (*p == ',')
        p++;
    else if (*p != '\0')
        return STRATA_ERR_PROTO;
    *pp = p;
    return r;
}

/* ---- writing a header value ---------------------------------------- */

static int put(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t l = strlen(s);

    if (l >= cap - *n)
        return STRATA_ERR_TOO_BIG;
    memcpy(buf + *n, s, l + 1);
    *n += l;
    return 0;
}

static int put_bits(char *buf, size_t cap, size_t *n, const char *name,
                    int bits)
{
    char num[4] = { '=', '1', '\0', '\0' };
    int r = put(buf, cap, n, name);

    if (r < 0 || bits <= 0)
        return r;
    num[bits >= 10 ? 2 : 1] = (char)('0' + bits % 10);
    return put(buf, cap, n, num);
}

/* "permessage-deflate" and the parameters present in d; its length. */
static int write_pmd(const pmd *d, char *buf, size_t cap)
{
    size_t n = 0;
    int r;

    if (cap == 0)
        return STRATA_ERR_TOO_BIG;
    buf[0] = '\0';
    r = put(buf, cap, &n, NAME);
    if (r == 0 && d->snct > 0)
        r = put(buf, cap, &n, "; server_no_context_takeover");
    if (r == 0 && d->cnct > 0)
        r = put(buf, cap, &n, "; client_no_context_takeover");
    if (r == 0 && d->smwb >= 0)
        r = put_bits(buf, cap, &n, "; server_max_window_bits", d->smwb);
    if (r == 0 && d->cmwb >= 0)
        r = put_bits(buf, cap, &n, "; client_max_window_bits", d->cmwb);
    if (r < 0)
        return r;
    return n > INT_MAX ? STRATA_ERR_TOO_BIG : (int)n;
}

/* ---- negotiation ----------------------------------------------------- */

static int bits_ok(int b)
{
    return b == 0 || (b >= 8 && b <= 15);
}

static int opts_ok(const strata_ws_deflate_opts *o)
{
    return o != NULL && bits_ok(o->server_max_window_bits) &&
           bits_ok(o->client_max_window_bits);
}

static int min_bits(int a, int b)
{
    return a < b ? a : b;
}

static void to_params(const pmd *d, ws_deflate_params *p)
{
    p->server_no_context_takeover = d->snct > 0;
    p->client_no_context_takeover = d->cnct > 0;
    p->server_max_window_bits = d->smwb > 0 ? d->smwb : 15;
    p->client_max_window_bits = d->cmwb > 0 ? d->cmwb : 15;
}

int ws_deflate_offer(const strata_ws_deflate_opts *o, char *buf, size_t cap)
{
    pmd d;

    if (buf == NULL || !opts_ok(o))
        return STRATA_ERR_ARG;
    pmd_clear(&d);
    d.snct = o->server_no_context_takeover ? 1 : -1;
    d.cnct = o->client_no_context_takeover ? 1 : -1;
    d.smwb = o->server_max_window_bits ? o->server_max_window_bits : -1;
    d.cmwb = o->client_max_window_bits ? o->client_max_window_bits : -1;
    return write_pmd(&d, buf, cap);
}

/* What the server answers to the client's offer c (RFC 7692 7.1). */
static pmd grant(const strata_ws_deflate_opts *o, const pmd *c)
{
    int ours = o->client_max_window_bits;
    pmd r;

    pmd_clear(&r);
    if (c->snct > 0 || o->server_no_context_takeover)
        r.snct = 1;
    if (c->cnct > 0 || o->client_no_context_takeover)
        r.cnct = 1;
    if (c->smwb > 0)
        r.smwb = min_bits(c->smwb, o->server_max_window_bits
                                       ? o->server_max_window_bits : 15);
    else if (o->server_max_window_bits > 0 && o->server_max_window_bits < 15)
        r.smwb = o->server_max_window_bits;
    /* The client's value is a hint worth taking: a smaller window for our
     * inflater at no cost. Without the parameter it cannot be limited. */
    if (c->cmwb > 0)
        r.cmwb = ours > 0 ? min_bits(ours, c->cmwb) : c->cmwb;
    else if (c->cmwb == 0 && ours > 0)
        r.cmwb = ours;
    return r;
}

int ws_deflate_accept(const strata_ws_deflate_opts *o, const char *offers,
                      char *resp, size_t cap, ws_deflate_params *p)
{
    const char *s = offers;
    pmd d, chosen;
    int found = 0, is_pmd, r;

    if (offers == NULL || resp == NULL || p == NULL || !opts_ok(o))
        return STRATA_ERR_ARG;
    pmd_clear(&chosen);
    /* The whole header is read even after a pick: broken syntax anywhere
     * is a bad request. */
    while (*s != '\0') {
        r = parse_element(&s, &is_pmd, &d);
        if (r < 0)
            return r;
        if (r == 1 && is_pmd && !d.bad && !found) {
            chosen = d;
            found = 1;
        }
    }
    if (!found)
        return 0;
    chosen = grant(o, &chosen);
    r = write_pmd(&chosen, resp, cap);
    if (r < 0)
        return r;
    to_params(&chosen, p);
    return 1;
}

/* The server's answer d against what o offered. */
static int answer_ok(const strata_ws_deflate_opts *o, const pmd *d)
{
    int sb = o->server_max_window_bits, cb = o->client_max_window_bits;

    if (d->bad || d->cmwb == 0)
        return 0;
    if (o->server_no_context_takeover && d->snct < 0)
        return 0;
    if (sb > 0 && (d->smwb < 0 || d->smwb > sb))
        return 0;
    if (d->cmwb > 0 && (cb == 0 || d->cmwb > cb))
        return 0;
    return 1;
}

int ws_deflate_confirm(const strata_ws_deflate_opts *o, const char *response,
                       ws_deflate_params *p)
{
    const char *s = response;
    pmd d, got;
    int count = 0, is_pmd, r;

    if (response == NULL || p == NULL || !opts_ok(o))
        return STRATA_ERR_ARG;
    pmd_clear(&got);
    while (*s != '\0') {
        r = parse_element(&s, &is_pmd, &d);
        if (r < 0)
            return r;
        if (r == 1 && !is_pmd)
            return STRATA_ERR_PROTO;  /* an extension we never offered */
        if (r == 1) {
            got = d;
            count++;
        }
    }
    if (count != 1 || !answer_ok(o, &got))
        return STRATA_ERR_PROTO;
    to_params(&got, p);
    /* Our offer's hints bind us whether or not the server echoed them. */
    if (o->client_no_context_takeover)
        p->client_no_context_takeover = 1;
    if (o->client_max_window_bits > 0)
        p->client_max_window_bits =
            min_bits(p->client_max_window_bits, o->client_max_window_bits);
    return 0;
}

/* ---- the codec --------------------------------------------------------- */

static const uint8_t trailer[4] = { 0x00, 0x00, 0xff, 0xff };

struct ws_deflate {
    const strata_allocator *alloc;
    z_stream def;
    z_stream inf;
    int def_bits;             /* zlib windowBits of our compressor */
    int inf_bits;
    unsigned char def_reset;  /* no context takeover, our direction */
    unsigned char inf_reset;  /* no context takeover, the peer's */
    unsigned char def_on;     /* the zlib stream is initialised */
    unsigned char inf_on;
    unsigned char def_fin;    /* the message's last input is consumed */
    unsigned char inf_fin;
    unsigned char def_phase;  /* 0 data, 1 block ended, 2 marker in tail */
    unsigned char inf_trailer;/* bytes of the trailer 00 00 ff ff fed */
    unsigned char inf_clean;  /* no input since a stream or message began */
    int def_err;              /* sticky error of each direction */
    int inf_err;
    size_t ntail;             /* compressed bytes not yet handed out */
    uint8_t tail[24];
};

static voidpf zalloc(voidpf opaque, uInt items, uInt size)
{
    const ws_deflate *d = opaque;

    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return strata_alloc(d->alloc, (size_t)items * size);
}

static void zfree(voidpf opaque, voidpf p)
{
    const ws_deflate *d = opaque;

    strata_dealloc(d->alloc, p);
}

static int param_bits(int b)
{
    return b == 0 ? 15 : b;
}

static void setup_def(ws_deflate *d, int bits, int no_takeover)
{
    /* zlib refuses windowBits 8 for raw deflate (since 1.2.9; before, it
     * silently used 9). 9 is safe for a peer holding 256 bytes: zlib never
     * looks further back than its window less MIN_LOOKAHEAD (262), which
     * for 512 bytes is 250. */
    d->def_bits = bits < 9 ? 9 : bits;
    d->def_reset = no_takeover != 0;
}

static void setup_inf(ws_deflate *d, int bits, int no_takeover)
{
    d->inf_bits = bits;
    d->inf_reset = no_takeover != 0;
}

ws_deflate *ws_deflate_new(const ws_deflate_params *p, int role,
                           const strata_allocator *alloc)
{
    int sb, cb;
    ws_deflate *d;

    if (p == NULL || (role != STRATA_WS_CLIENT && role != STRATA_WS_SERVER))
        return NULL;
    sb = param_bits(p->server_max_window_bits);
    cb = param_bits(p->client_max_window_bits);
    if (sb < 8 || sb > 15 || cb < 8 || cb > 15)
        return NULL;
    d = strata_alloc(alloc, sizeof *d);
    if (d == NULL)
        return NULL;
    memset(d, 0, sizeof *d);
    d->alloc = alloc;
    /* A client compresses what the server inflates: client_* bind it. */
    if (role == STRATA_WS_CLIENT) {
        setup_def(d, cb, p->client_no_context_takeover);
        setup_inf(d, sb, p->server_no_context_takeover);
    } else {
        setup_def(d, sb, p->server_no_context_takeover);
        setup_inf(d, cb, p->client_no_context_takeover);
    }
    return d;
}

void ws_deflate_free(ws_deflate *d)
{
    if (d == NULL)
        return;
    if (d->def_on)
        deflateEnd(&d->def);
    if (d->inf_on)
        inflateEnd(&d->inf);
    strata_dealloc(d->alloc, d);
}

static int zlib_status(int z)
{
    return z == Z_MEM_ERROR ? STRATA_ERR_NOMEM : STRATA_ERR_PROTO;
}

static int def_start(ws_deflate *d)
{
    int z;

    if (d->def_on)
        return 0;
    d->def.zalloc = zalloc;
    d->def.zfree = zfree;
    d->def.opaque = d;
    z = deflateInit2(&d->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -d->def_bits,
                     MEM_LEVEL, Z_DEFAULT_STRATEGY);
    if (z != Z_OK)
        return zlib_status(z);
    d->def_on = 1;
    return 0;
}

static int inf_start(ws_deflate *d)
{
    int z;

    if (d->inf_on)
        return 0;
    d->inf.zalloc = zalloc;
    d->inf.zfree = zfree;
    d->inf.opaque = d;
    d->inf.next_in = NULL;
    d->inf.avail_in = 0;
    z = inflateInit2(&d->inf, -d->inf_bits);
    if (z != Z_OK)
        return zlib_status(z);
    d->inf_on = 1;
    d->inf_clean = 1;
    return 0;
}

static uInt clamp(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* ---- compressing ------------------------------------------------------ */

/* Hand out the tail's bytes but its last 4, as room allows. */
static size_t tail_out(ws_deflate *d, uint8_t *out, size_t room)
{
    size_t n = d->ntail > 4 ? d->ntail - 4 : 0;

    if (n > room)
        n = room;
    if (n == 0)
        return 0;
    memcpy(out, d->tail, n);
    memmove(d->tail, d->tail + n, d->ntail - n);
    d->ntail -= n;
    return n;
}

/* zlib just wrote out[0..len), the newest end of the stream, right behind
 * the tail (at most 4 bytes). Keep the stream's last 4 bytes back, since
 * they may be the 00 00 ff ff to drop, and return how many bytes of the
 * stream now start out. */
static size_t hold_back(ws_deflate *d, uint8_t *out, size_t len)
{
    size_t total = d->ntail + len, emit, i;
    uint8_t last[4];

    if (total <= 4) {
        memcpy(d->tail + d->ntail, out, len);
        d->ntail = total;
        return 0;
    }
    emit = total - 4;
    for (i = 0; i < 4; i++) {
        size_t k = emit + i;
        last[i] = k < d->ntail ? d->tail[k] : out[k - d->ntail];
    }
    if (emit >= d->ntail) {
        memmove(out + d->ntail, out, emit - d->ntail);
        memcpy(out, d->tail, d->ntail);
    } else {
        memcpy(out, d->tail, emit);
    }
    memcpy(d->tail, last, 4);
    d->ntail = 4;
    return emit;
}

/* One deflate call into out. *room_left says whether zlib returned with
 * output space to spare: for Z_BLOCK, that the block is complete. */
static int def_run(ws_deflate *d, const uint8_t *in, size_t len, int flush,
                   uint8_t *out, size_t room, size_t *took, size_t *made,
                   int *room_left)
{
    z_stream *z = &d->def;
    uInt ain = clamp(len), aout = clamp(room);
    int r;

    z->next_in = in;
    z->avail_in = ain;
    z->next_out = out;
    z->avail_out = aout;
    r = deflate(z, flush);
    if (r != Z_OK && r != Z_BUF_ERROR)
        return zlib_status(r);
    *took = ain - z->avail_in;
    *room_left = z->avail_out != 0;
    *made = hold_back(d, out, aout - z->avail_out);
    return 0;
}

/* The empty stored block that ends the message, into the tail. The block
 * was completed by Z_BLOCK before, so at most 7 bits are left in zlib and
 * the flush writes at most 6 bytes: a stage of 16 cannot fill, and a full
 * output buffer (after which zlib would add another marker) never occurs. */
static int def_marker(ws_deflate *d)
{
    z_stream *z = &d->def;
    uint8_t stage[16];
    size_t len;
    int r;

    z->next_in = NULL;
    z->avail_in = 0;
    z->next_out = stage;
    z->avail_out = sizeof stage;
    r = deflate(z, Z_SYNC_FLUSH);
    if (r != Z_OK || z->avail_out == 0)
        return zlib_status(r);
    len = sizeof stage - z->avail_out;
    if (d->ntail + len > sizeof d->tail)
        return STRATA_ERR_PROTO;
    memcpy(d->tail + d->ntail, stage, len);
    d->ntail += len;
    d->def_phase = 2;
    return 0;
}

/* All of the message is out but its 00 00 ff ff: drop it, and reset. */
static int def_finish(ws_deflate *d)
{
    if (d->ntail != 4 || memcmp(d->tail, trailer, 4) != 0)
        return STRATA_ERR_PROTO;
    d->ntail = 0;
    d->def_phase = 0;
    d->def_fin = 0;
    if (d->def_reset && deflateReset(&d->def) != Z_OK)
        return STRATA_ERR_PROTO;
    return 0;
}

/* One step of compression: input first, then at fin the block's end and
 * the marker. Returns 1 when there is nothing to do until the next call. */
static int def_step(ws_deflate *d, const uint8_t *in, size_t len, int fin,
                    uint8_t *out, size_t room, size_t *took, size_t *made)
{
    int left, r;

    *took = 0;
    *made = 0;
    if (len > 0)
        return def_run(d, in, len, Z_NO_FLUSH, out, room, took, made, &left);
    if (!fin)
        return 1;
    if (d->def_phase == 1)
        return def_marker(d);
    /* Z_BLOCK first, which zlib may call again freely: a Z_SYNC_FLUSH
     * answered with a full buffer would add a second marker. */
    r = def_run(d, NULL, 0, Z_BLOCK, out, room, took, made, &left);
    if (r == 0 && left)
        d->def_phase = 1;
    return r;
}

/* The input not yet consumed; NULL when none (no offset to a NULL in). */
static const uint8_t *rest(const uint8_t *in, size_t len, size_t used)
{
    return used < len ? in + used : NULL;
}

static int bad_call(const void *d, const void *in, size_t len,
                    const void *out, size_t cap, size_t *used, int *done)
{
    if (used != NULL)
        *used = 0;
    if (done != NULL)
        *done = 0;
    return d == NULL || (in == NULL && len > 0) || out == NULL || cap == 0 ||
           used == NULL || done == NULL;
}

ssize_t ws_deflate_compress(ws_deflate *d, const uint8_t *in, size_t len,
                            int fin, uint8_t *out, size_t cap, size_t *used,
                            int *done)
{
    size_t n = 0, took, made;
    int r = 0;

    if (bad_call(d, in, len, out, cap, used, done) ||
        (d->def_fin && (len > 0 || !fin)))
        return STRATA_ERR_ARG;  /* input after the message's last bytes */
    if (d->def_err == 0)
        d->def_err = def_start(d);
    if (d->def_err != 0)
        return d->def_err;
    for (;;) {
        n += tail_out(d, out + n, cap - n);
        if (d->def_phase == 2) {
            if (d->ntail == 4) {
                r = def_finish(d);
                *done = r == 0;
            }
            break;
        }
        if (n == cap)
            break;
        r = def_step(d, rest(in, len, *used), len - *used, fin, out + n,
                     cap - n, &took, &made);
        if (r != 0)
            break;
        *used += took;
        n += made;
    }
    if (r < 0)
        return d->def_err = r;
    if (!*done && fin && *used == len)
        d->def_fin = 1;
    return (ssize_t)n;
}

/* ---- decompressing ---------------------------------------------------- */

/* The peer's zlib stream ended (a BFINAL block): start a new one that
 * still sees the window, since the peer's LZ77 window goes on. */
static int inf_restart(ws_deflate *d)
{
    size_t size = (size_t)1 << d->inf_bits;
    uInt len = 0;
    Bytef *win;
    int r = 0;

    win = strata_alloc(d->alloc, size);
    if (win == NULL)
        return STRATA_ERR_NOMEM;
    if (inflateGetDictionary(&d->inf, win, &len) != Z_OK ||
        inflateReset(&d->inf) != Z_OK ||
        (len > 0 && inflateSetDictionary(&d->inf, win, len) != Z_OK))
        r = STRATA_ERR_PROTO;
    strata_dealloc(d->alloc, win);
    d->inf_clean = 1;
    return r;
}

/* One inflate call; a stream that ends there is restarted. */
static int inf_run(ws_deflate *d, const uint8_t *in, size_t len, int flush,
                   uint8_t *out, size_t room, size_t *took, size_t *made)
{
    z_stream *z = &d->inf;
    uInt ain = clamp(len), aout = clamp(room);
    int r;

    z->next_in = in;
    z->avail_in = ain;
    z->next_out = out;
    z->avail_out = aout;
    r = inflate(z, flush);
    *took = ain - z->avail_in;
    *made = aout - z->avail_out;
    if (*took > 0)
        d->inf_clean = 0;
    if (r == Z_STREAM_END)
        return inf_restart(d);
    if (r == Z_OK || r == Z_BUF_ERROR)
        return 0;
    return zlib_status(r == Z_NEED_DICT ? Z_DATA_ERROR : r);
}

static int inf_finish(ws_deflate *d)
{
    d->inf_trailer = 0;
    d->inf_fin = 0;
    d->inf_clean = 1;
    if (d->inf_reset && inflateReset(&d->inf) != Z_OK)
        return STRATA_ERR_PROTO;
    return 1;
}

/* Whether the peer's stream ended right at the payload's end (its last
 * block had BFINAL set) or at the trailer's: no block is open. */
static int at_stream_end(const ws_deflate *d)
{
    return d->inf_clean && (d->inf_trailer == 0 || d->inf_trailer == 4);
}

/* Feed the trailer 00 00 ff ff once the payload is in. With Z_BLOCK,
 * inflate stops at block boundaries, where data_type has bit 128: after
 * the whole trailer that means the message ended properly. */
static int inf_trailer(ws_deflate *d, uint8_t *out, size_t room,
                       size_t *made)
{
    size_t took = 0;
    int r;

    *made = 0;
    if (!at_stream_end(d)) {
        r = inf_run(d, trailer + d->inf_trailer, 4u - d->inf_trailer,
                    Z_BLOCK, out, room, &took, made);
        if (r < 0)
            return r;
        d->inf_trailer += (unsigned char)took;
        if (d->inf_trailer == 4 && (d->inf.data_type & 128))
            return inf_finish(d);
    }
    if (at_stream_end(d))
        return inf_finish(d);
    /* No progress and no boundary: the message stops inside a block. */
    if (took == 0 && *made == 0 && !(d->inf.data_type & 128))
        return STRATA_ERR_PROTO;
    return 0;
}

ssize_t ws_deflate_decompress(ws_deflate *d, const uint8_t *in, size_t len,
                              int fin, uint8_t *out, size_t cap,
                              size_t *used, int *done)
{
    size_t n = 0, took, made;
    int r = 0;

    if (bad_call(d, in, len, out, cap, used, done) ||
        (d->inf_fin && (len > 0 || !fin)))
        return STRATA_ERR_ARG;  /* input after the message's last bytes */
    if (d->inf_err == 0)
        d->inf_err = inf_start(d);
    if (d->inf_err != 0)
        return d->inf_err;
    while (n < cap && r == 0) {
        if (*used < len || !fin) {
            /* Without input, this gives out what inflate still holds. */
            r = inf_run(d, rest(in, len, *used), len - *used, Z_SYNC_FLUSH,
                        out + n, cap - n, &took, &made);
            *used += took;
            if (r == 0 && took == 0 && made == 0 && *used == len)
                break;
        } else {
            r = inf_trailer(d, out + n, cap - n, &made);
        }
        n += made;
    }
    if (r < 0)
        return d->inf_err = r;
    *done = r == 1;
    if (!*done && fin && *used == len)
        d->inf_fin = 1;
    return (ssize_t)n;
}
