/* libFuzzer target for the lenprefix layer.
 *
 * The first bytes choose the options; the rest is the peer's byte stream,
 * fed through a pipe pair with a schedule taken from the input. What the
 * layer delivers is checked against a plain reference parser (records,
 * flags, TOO_BIG and PROTO, truncation). Then the records go back through
 * a sending lenprefix layer, whole or in pieces after
 * strata_lenprefix_begin, and must come out of a second receiver unchanged.
 *
 * Input: b0 = length bytes (bits 0-1: 1, 2, 4, 4), flag byte (bit 2),
 * 5-byte caller storage (bit 3), pipe max_chunk (bits 4-7); b1 = max_len
 * / 3 (0: the default); b2 = read size; b3 = need percent; stream bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/lenprefix.h>

#define STEP_LIMIT 10000000L

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

typedef struct config {
    strata_lenprefix_opts lo;
    int storage;
    size_t read_size;
    strata_pipe_opts po;
} config;

/* An event log: 'R' flags len(4) bytes per record, then 'p' len(4) bytes
 * of a truncated record's delivered part, and a final 'E' (EOF), 'P'
 * (PROTO) or 'T' (TOO_BIG). Two logs compare with memcmp. */
typedef struct elog {
    uint8_t *p;
    size_t n, cap;
} elog;

static void log_byte(elog *g, uint8_t b)
{
    CHECK(g->n < g->cap);
    g->p[g->n++] = b;
}

static void log_bytes(elog *g, uint8_t kind, unsigned flags,
                      const uint8_t *p, size_t len)
{
    int i;

    log_byte(g, kind);
    log_byte(g, (uint8_t)flags);
    for (i = 3; i >= 0; i--)
        log_byte(g, (uint8_t)(len >> (8 * i)));
    CHECK(g->n + len <= g->cap);
    if (len > 0)
        memcpy(g->p + g->n, p, len);
    g->n += len;
}

static size_t hdr_len(const config *c)
{
    return (c->lo.flag_byte ? 1u : 0u) + c->lo.len_bytes;
}

/* The reference: what the contract says the bytes mean. */
static void model(const config *c, const uint8_t *in, size_t len, elog *g)
{
    size_t pos = 0, hl = hdr_len(c);
    size_t max = c->lo.max_len ? c->lo.max_len : (size_t)4 << 20;

    while (pos < len) {
        unsigned flag = 0, i;
        size_t n = 0;

        if (len - pos < hl) {
            log_byte(g, 'P');
            return;
        }
        if (c->lo.flag_byte)
            flag = in[pos];
        if (flag & ~1u) {
            log_byte(g, 'P');
            return;
        }
        for (i = 0; i < c->lo.len_bytes; i++)
            n = n << 8 | in[pos + (c->lo.flag_byte ? 1 : 0) + i];
        if (n > max) {
            log_byte(g, 'T');
            return;
        }
        pos += hl;
        if (len - pos < n) {
            if (len > pos) /* the part delivered before the end */
                log_bytes(g, 'p', flag ? STRATA_MSG_COMPRESSED : 0, in + pos,
                          len - pos);
            log_byte(g, 'P');
            return;
        }
        log_bytes(g, 'R', flag ? STRATA_MSG_COMPRESSED : 0, in + pos, n);
        pos += n;
    }
    log_byte(g, 'E');
}

static void put_all(strata_stream *s, const uint8_t *p, size_t len)
{
    long steps = 0;

    while (len > 0) {
        ssize_t r = strata_write(s, p, len);

        CHECK(++steps < STEP_LIMIT);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        CHECK(r > 0 && (size_t)r <= len);
        p += r;
        len -= (size_t)r;
    }
}

static void shut(strata_stream *s)
{
    long steps = 0;
    int r;

    while ((r = strata_shutdown(s)) == STRATA_NEED_READ ||
           r == STRATA_NEED_WRITE)
        CHECK(++steps < STEP_LIMIT);
    CHECK(r == 0);
}

/* Drain a lenprefix layer, logging what it delivers. */
static void drain(strata_stream *s, const config *c, elog *g, uint8_t *rec,
                  uint8_t *buf)
{
    size_t got = 0;
    unsigned rec_flags = 0;
    long steps = 0;

    for (;;) {
        unsigned fl = 0;
        ssize_t r;

        CHECK(++steps < STEP_LIMIT);
        (void)strata_poll(s, STRATA_POLL_IN | STRATA_POLL_OUT);
        r = strata_recv(s, buf, c->read_size, &fl);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        if (r >= 0) {
            CHECK((size_t)r <= c->read_size);
            CHECK(r > 0 || (fl & STRATA_MSG_END));
            CHECK((fl & ~(STRATA_MSG_END | STRATA_MSG_COMPRESSED)) == 0);
            CHECK(got == 0 || (fl & STRATA_MSG_COMPRESSED) == rec_flags);
            rec_flags = fl & STRATA_MSG_COMPRESSED;
            memcpy(rec + got, buf, (size_t)r);
            got += (size_t)r;
            if (fl & STRATA_MSG_END) {
                log_bytes(g, 'R', rec_flags, rec, got);
                got = 0;
            }
            continue;
        }
        CHECK(r == STRATA_EOF || r == STRATA_ERR_PROTO ||
              r == STRATA_ERR_TOO_BIG);
        CHECK(r != STRATA_EOF || got == 0);
        if (got > 0)
            log_bytes(g, 'p', rec_flags, rec, got);
        log_byte(g, r == STRATA_EOF ? 'E' : r == STRATA_ERR_PROTO ? 'P' : 'T');
        /* all three are final */
        CHECK(strata_recv(s, buf, c->read_size, &fl) == r);
        if (r != STRATA_EOF)
            CHECK(strata_poll(s, STRATA_POLL_IN) & STRATA_POLL_ERR);
        return;
    }
}

/* Two logs must match; on a difference show where, then fail. */
static void same(const elog *got, const elog *want)
{
    size_t i = 0, k;

    if (got->n == want->n && memcmp(got->p, want->p, got->n) == 0)
        return;
    while (i < got->n && i < want->n && got->p[i] == want->p[i])
        i++;
    fprintf(stderr, "logs differ at %zu (got %zu bytes, want %zu)\n", i,
            got->n, want->n);
    for (k = i < 16 ? 0 : i - 16; k < i + 16; k++)
        fprintf(stderr, "%4zu: got %02x want %02x\n", k,
                k < got->n ? got->p[k] : 0, k < want->n ? want->p[k] : 0);
    abort();
}

static uint64_t mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct stack {
    strata_stream *top, *end;
    strata_buffered in;
    strata_lenprefix lp;
    uint8_t storage[5];
    int caller;           /* caller storage: the pipe end is ours to free */
} stack;

static void stack_new(stack *k, strata_stream *end, const config *c)
{
    memset(k, 0, sizeof *k);
    k->end = end;
    if (!c->storage) {
        k->top = strata_lenprefix_new(end, &c->lo, NULL);
        CHECK(k->top != NULL);
        return;
    }
    /* room for a header and not a byte more: payloads go straight */
    strata_buffered_init(&k->in, end, k->storage, hdr_len(c) - 1);
    CHECK(strata_lenprefix_init(&k->lp, &k->in, &c->lo) == STRATA_ERR_ARG);
    strata_buffered_init(&k->in, end, k->storage, hdr_len(c));
    CHECK(strata_lenprefix_init(&k->lp, &k->in, &c->lo) == 0);
    k->top = &k->lp.base;
    k->caller = 1;
}

static void stack_free(stack *k)
{
    strata_free(k->top);
    if (k->caller)
        strata_free(k->end);
}

static void send_all(strata_stream *s, const uint8_t *p, size_t len,
                     unsigned flags)
{
    long steps = 0;
    size_t off = 0;

    for (;;) {
        ssize_t r = strata_send(s, p + off, len - off, flags);

        CHECK(++steps < STEP_LIMIT);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        CHECK(r >= 0 && (size_t)r <= len - off);
        CHECK(r > 0 || len == off);
        off += (size_t)r;
        if (off == len)
            return;
    }
}

static void send_record(strata_stream *s, const uint8_t *rec, size_t len,
                        unsigned flags, uint64_t *rng)
{
    size_t off = 0;

    if (mix(rng) % 2 == 0) {
        send_all(s, rec, len, flags | STRATA_MSG_END);
        return;
    }
    CHECK(strata_lenprefix_begin(s, len, flags) == 0);
    CHECK(strata_lenprefix_begin(s, len, flags) == STRATA_ERR_STATE);
    if (len == 0)
        send_all(s, rec, 0, 0);
    while (off < len) {
        size_t n = 1 + mix(rng) % (len - off);

        send_all(s, rec + off, n, 0);
        off += n;
    }
    CHECK(((strata_lenprefix *)s)->tx_in_record == 0);
}

/* Send the records of a log through `s`; log what the receiver must see. */
static void resend(const elog *in, strata_stream *s, elog *want,
                   uint64_t seed)
{
    size_t i = 0;
    uint64_t rng = seed;

    while (i < in->n) {
        unsigned flags;
        size_t len;

        if (in->p[i] != 'R' && in->p[i] != 'p') {
            i++;
            continue;
        }
        flags = in->p[i + 1];
        len = (size_t)in->p[i + 2] << 24 | (size_t)in->p[i + 3] << 16 |
              (size_t)in->p[i + 4] << 8 | in->p[i + 5];
        i += 6;
        send_record(s, in->p + i, len, flags, &rng);
        log_bytes(want, 'R', flags, in->p + i, len);
        i += len;
    }
    log_byte(want, 'E');
    shut(s);
    CHECK(strata_write(s, "x", 1) == STRATA_ERR_STATE);
}

static int configure(config *c, const uint8_t **data, size_t *size)
{
    static const unsigned lens[] = {1, 2, 4, 4};
    const uint8_t *d = *data;

    if (*size < 4)
        return -1;
    memset(c, 0, sizeof *c);
    c->lo.len_bytes = lens[d[0] & 3u];
    c->lo.flag_byte = (d[0] >> 2) & 1;
    c->storage = (d[0] >> 3) & 1;
    c->po.max_chunk = d[0] >> 4;
    c->lo.max_len = (size_t)d[1] * 3;
    c->read_size = d[2] >= 192 ? 8192 : 1u + d[2] % 64;
    c->po.need_percent = d[3] % 31u;
    c->po.seed = (uint64_t)d[0] << 24 | (uint64_t)d[1] << 16 | d[2] << 8 | d[3];
    *data = d + 4;
    *size -= 4;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config c;
    strata_stream *a, *b;
    stack rx, rx2, tx;
    elog want, got, want2, got2;
    size_t logcap;
    uint8_t *rec, *buf;

    if (configure(&c, &data, &size) != 0)
        return 0;
    logcap = 8 * size + 64;
    want.p = malloc(logcap);
    got.p = malloc(logcap);
    want2.p = malloc(logcap);
    got2.p = malloc(logcap);
    rec = malloc(size + 1);
    buf = malloc(c.read_size);
    CHECK(want.p && got.p && want2.p && got2.p && rec && buf);
    want.n = got.n = want2.n = got2.n = 0;
    want.cap = got.cap = want2.cap = got2.cap = logcap;

    c.po.capacity = size + 1;
    CHECK(strata_pipe_pair(&a, &b, &c.po, NULL) == 0);
    stack_new(&rx, b, &c);
    put_all(a, data, size);
    shut(a);
    model(&c, data, size, &want);
    drain(rx.top, &c, &got, rec, buf);
    same(&got, &want);
    stack_free(&rx);
    strata_free(a);

    /* records (and a truncated one's part) back through a sender */
    c.po.capacity = 2 * size + 64;
    CHECK(strata_pipe_pair(&a, &b, &c.po, NULL) == 0);
    stack_new(&tx, a, &c);
    stack_new(&rx2, b, &c);
    resend(&got, tx.top, &want2, c.po.seed ^ size);
    drain(rx2.top, &c, &got2, rec, buf);
    same(&got2, &want2);
    stack_free(&tx);
    stack_free(&rx2);

    free(want.p);
    free(got.p);
    free(want2.p);
    free(got2.p);
    free(rec);
    free(buf);
    return 0;
}
