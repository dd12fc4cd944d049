/* libFuzzer target for the line layer.
 *
 * The first bytes choose the options; the rest is the peer's byte stream,
 * fed through a pipe pair with a schedule taken from the input. What the
 * layer delivers is checked against a plain reference splitter (records,
 * TOO_BIG resynchronisation, truncation), so any difference aborts. Then
 * the records go back through a sending line layer in random pieces and
 * must come out of a second receiver unchanged.
 *
 * Input: b0 = separator kind (bits 0-2), caller storage (bit 3), pipe
 * max_chunk (bits 4-7); b1 = max_len; b2 = read size; b3 = need percent
 * and custom separator length; [custom separator]; stream bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/line.h>

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
    strata_line_opts lo;
    uint8_t sep[8];
    int storage;          /* strata_line_init over exact caller storage */
    size_t read_size;
    strata_pipe_opts po;
} config;

/* An event log: 'R' len(4) bytes for a record, 'T' for TOO_BIG, then 'E'
 * (EOF) or 'P' (PROTO). Two logs compare with memcmp. */
typedef struct elog {
    uint8_t *p;
    size_t n, cap;
} elog;

static void log_byte(elog *g, uint8_t b)
{
    CHECK(g->n < g->cap);
    g->p[g->n++] = b;
}

static void log_record(elog *g, const uint8_t *rec, size_t len)
{
    int i;

    log_byte(g, 'R');
    for (i = 3; i >= 0; i--)
        log_byte(g, (uint8_t)(len >> (8 * i)));
    CHECK(g->n + len <= g->cap);
    if (len > 0)
        memcpy(g->p + g->n, rec, len);
    g->n += len;
}

static const uint8_t *find(const uint8_t *p, size_t len, const uint8_t *sep,
                           size_t seplen)
{
    size_t i;

    for (i = 0; i + seplen <= len; i++)
        if (memcmp(p + i, sep, seplen) == 0)
            return p + i;
    return NULL;
}

/* The reference: what the contract says the bytes mean. */
static void model(const config *c, const uint8_t *in, size_t len, elog *g)
{
    int any = (c->lo.flags & STRATA_LINE_ANY_EOL) != 0;
    const uint8_t *sep = any ? (const uint8_t *)"\n" : c->sep;
    size_t seplen = any ? 1 : c->lo.sep_len;
    size_t limit = c->lo.max_len + (any ? 1 : 0), pos = 0;

    while (pos < len) {
        const uint8_t *hit = find(in + pos, len - pos, sep, seplen);
        size_t content;

        if (hit == NULL) {
            if (len - pos >= limit + seplen)
                log_byte(g, 'T');
            log_byte(g, 'P');
            return;
        }
        content = (size_t)(hit - (in + pos));
        if (content <= limit && any && content > 0 && hit[-1] == '\r')
            content--;
        if (content > c->lo.max_len)
            log_byte(g, 'T');
        else
            log_record(g, in + pos, content);
        pos = (size_t)(hit - in) + seplen;
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

/* Drain a line layer, logging what it delivers and checking each call. */
static void drain(strata_stream *s, const config *c, elog *g, uint8_t *rec,
                  uint8_t *buf)
{
    size_t got = 0;
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
            CHECK(got + (size_t)r <= c->lo.max_len);
            CHECK(r > 0 || (fl & STRATA_MSG_END));
            memcpy(rec + got, buf, (size_t)r);
            got += (size_t)r;
            if (fl & STRATA_MSG_END) {
                log_record(g, rec, got);
                got = 0;
            }
            continue;
        }
        CHECK(got == 0); /* no error in the middle of a record */
        if (r == STRATA_ERR_TOO_BIG) {
            CHECK(((strata_line *)s)->failed == 0);
            log_byte(g, 'T');
            continue;
        }
        CHECK(r == STRATA_EOF || r == STRATA_ERR_PROTO);
        log_byte(g, r == STRATA_EOF ? 'E' : 'P');
        /* both are final */
        CHECK(strata_recv(s, buf, c->read_size, &fl) == r);
        if (r == STRATA_ERR_PROTO)
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

/* A stack over a pipe end as the config says; *storage keeps the caller
 * storage of the init path alive. */
typedef struct stack {
    strata_stream *top, *end;
    strata_buffered in;
    strata_line line;
    uint8_t *storage;
} stack;

static void stack_new(stack *k, strata_stream *end, const config *c)
{
    memset(k, 0, sizeof *k);
    k->end = end;
    if (!c->storage) {
        k->top = strata_line_new(end, &c->lo, NULL);
        CHECK(k->top != NULL);
        return;
    }
    {
        int any_lf = (c->lo.flags & STRATA_LINE_ANY_EOL) && c->lo.sep_len == 1;
        size_t cap = c->lo.max_len + c->lo.sep_len + (any_lf ? 1 : 0);

        k->storage = malloc(cap);
        CHECK(k->storage != NULL);
        /* one byte less must be refused */
        strata_buffered_init(&k->in, end, k->storage, cap - 1);
        CHECK(strata_line_init(&k->line, &k->in, &c->lo) == STRATA_ERR_ARG);
        strata_buffered_init(&k->in, end, k->storage, cap);
        CHECK(strata_line_init(&k->line, &k->in, &c->lo) == 0);
        k->top = &k->line.base;
    }
}

static void stack_free(stack *k)
{
    strata_free(k->top);
    if (k->storage != NULL) {
        strata_free(k->end); /* caller storage does not own the pipe end */
        free(k->storage);
    }
}

/* Would the peer cut this record early? Only ANY_EOL's "\r" before "\n". */
static int unsendable(const config *c, const uint8_t *rec, size_t len)
{
    return (c->lo.flags & STRATA_LINE_ANY_EOL) && c->lo.sep_len == 1 &&
           len > 0 && rec[len - 1] == '\r';
}

static void send_record(strata_stream *s, const uint8_t *rec, size_t len,
                        uint64_t *rng)
{
    size_t off = 0;
    long steps = 0;
    int how = (int)(mix(rng) % 4);

    if (how == 0 && len > 0 && len <= 40) { /* one iovec per byte */
        struct iovec v[40];
        size_t i;
        ssize_t r;

        for (i = 0; i < len; i++) {
            v[i].iov_base = (void *)(uintptr_t)(rec + i);
            v[i].iov_len = 1;
        }
        do {
            r = strata_sendv(s, v, (int)len, STRATA_MSG_END);
            CHECK(++steps < STEP_LIMIT);
        } while (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE);
        CHECK(r > 0);
        off = (size_t)r;
    }
    while (off < len || (off == 0 && len == 0)) {
        size_t left = len - off;
        size_t n = how == 1 || left == 0 ? left : 1 + mix(rng) % left;
        unsigned fl = n == left ? STRATA_MSG_END : 0;
        ssize_t r = strata_send(s, rec + off, n, fl);

        CHECK(++steps < STEP_LIMIT);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            continue;
        CHECK(r >= 0 && (size_t)r <= n);
        CHECK(r > 0 || n == 0);
        off += (size_t)r;
        if (len == 0)
            break;
    }
}

/* Walk a log's records and send each through `s`. Returns a log of what
 * the receiver must see. */
static void resend(const config *c, const elog *in, strata_stream *s,
                   elog *want, uint64_t seed)
{
    size_t i = 0;
    uint64_t rng = seed;

    while (i < in->n) {
        size_t len;

        if (in->p[i] != 'R') {
            i++;
            continue;
        }
        len = (size_t)in->p[i + 1] << 24 | (size_t)in->p[i + 2] << 16 |
              (size_t)in->p[i + 3] << 8 | in->p[i + 4];
        i += 5;
        if (unsendable(c, in->p + i, len)) {
            CHECK(strata_write(s, in->p + i, len) == STRATA_ERR_ARG);
        } else {
            send_record(s, in->p + i, len, &rng);
            log_record(want, in->p + i, len);
        }
        i += len;
    }
    log_byte(want, 'E');
    shut(s);
}

static int configure(config *c, const uint8_t **data, size_t *size)
{
    static const char *const seps[] = {"\n", "\r\n", "\n", "\r\n",
                                       "||", "\r\n\r\n", "abc"};
    const uint8_t *d = *data;
    unsigned kind;

    if (*size < 4)
        return -1;
    memset(c, 0, sizeof *c);
    kind = d[0] & 7u;
    c->storage = (d[0] >> 3) & 1;
    c->po.max_chunk = d[0] >> 4;
    c->lo.max_len = d[1] == 255 ? 4096 : 1u + d[1];
    c->read_size = d[2] >= 192 ? 4096 : 1u + d[2] % 64;
    c->po.need_percent = d[3] % 31u;
    c->po.seed = (uint64_t)d[0] << 24 | (uint64_t)d[1] << 16 | d[2] << 8 | d[3];
    if (kind == 7) {
        c->lo.sep_len = 1 + (d[3] >> 5);
        if (*size < 4 + c->lo.sep_len)
            return -1;
        memcpy(c->sep, d + 4, c->lo.sep_len);
    } else {
        c->lo.sep_len = strlen(seps[kind]);
        memcpy(c->sep, seps[kind], c->lo.sep_len);
        if (kind == 2 || kind == 3)
            c->lo.flags = STRATA_LINE_ANY_EOL;
    }
    c->lo.sep = (const char *)c->sep;
    *data = d + 4 + (kind == 7 ? c->lo.sep_len : 0);
    *size -= (size_t)(*data - d);
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
    rec = malloc(c.lo.max_len + 1);
    buf = malloc(c.read_size);
    CHECK(want.p && got.p && want2.p && got2.p && rec && buf);
    want.n = got.n = want2.n = got2.n = 0;
    want.cap = got.cap = want2.cap = got2.cap = logcap;

    /* decode the input and compare with the reference */
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

    /* send what was delivered back through a line layer in pieces */
    c.po.capacity = 2 * size + 64;
    CHECK(strata_pipe_pair(&a, &b, &c.po, NULL) == 0);
    stack_new(&tx, a, &c);
    stack_new(&rx2, b, &c);
    resend(&c, &got, tx.top, &want2, c.po.seed ^ size);
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
