/* The property harness: one direction is a sender state and a receiver
 * state over two stack tops. Message i's size and bytes come from a
 * generator seeded by (seed, direction, i), so the receiver regenerates what
 * it expects instead of the harness storing every message. */
#include "harness.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALL_LIMIT 2000000u

uint64_t strata_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *count_alloc(void *ud, size_t size)
{
    strata_test_counter *c = ud;

    if (c->refuse || ++c->calls == c->fail_at)
        return NULL;
    c->live++;
    return malloc(size);
}

static void *count_realloc(void *ud, void *p, size_t size)
{
    return p == NULL ? count_alloc(ud, size) : realloc(p, size);
}

static void count_free(void *ud, void *p)
{
    strata_test_counter *c = ud;

    if (p != NULL)
        c->live--;
    free(p);
}

strata_allocator strata_test_allocator(strata_test_counter *c)
{
    strata_allocator a = {count_alloc, count_realloc, count_free, NULL};

    a.ud = c;
    return a;
}

/* The size header keeps the block's payload aligned as malloc's is. */
typedef union meter_head {
    size_t size;
    max_align_t align;
} meter_head;

static void meter_add(strata_test_meter *m, size_t size)
{
    m->bytes += size;
    if (m->bytes > m->peak_bytes)
        m->peak_bytes = m->bytes;
}

static void *meter_alloc(void *ud, size_t size)
{
    strata_test_meter *m = ud;
    meter_head *h;

    if (size > (size_t)-1 - sizeof *h)
        return NULL;
    h = count_alloc(&m->count, sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    meter_add(m, size);
    return h + 1;
}

static void *meter_realloc(void *ud, void *p, size_t size)
{
    strata_test_meter *m = ud;
    meter_head *h, *n;
    size_t old;

    if (p == NULL)
        return meter_alloc(ud, size);
    if (size > (size_t)-1 - sizeof *h)
        return NULL;
    h = (meter_head *)p - 1;
    old = h->size;
    /* counted as a fresh block beside the old one: the peak is the worst
     * moment of a realloc that has to move */
    meter_add(m, size);
    n = realloc(h, sizeof *n + size);
    m->bytes -= old;
    if (n == NULL) {
        m->bytes += old - size;
        return NULL;
    }
    n->size = size;
    return n + 1;
}

static void meter_free(void *ud, void *p)
{
    strata_test_meter *m = ud;
    meter_head *h;

    if (p == NULL)
        return;
    h = (meter_head *)p - 1;
    m->bytes -= h->size;
    count_free(&m->count, h);
}

strata_allocator strata_test_meter_allocator(strata_test_meter *m)
{
    strata_allocator a = {meter_alloc, meter_realloc, meter_free, NULL};

    a.ud = m;
    return a;
}

int strata_test_valgrind(void)
{
    const char *v = getenv("STRATA_VALGRIND");

    return v != NULL && *v != '\0' && *v != '0';
}

size_t strata_test_scaled(size_t n)
{
    if (!strata_test_valgrind())
        return n;
    return n / 10 ? n / 10 : n;
}

const char *strata_test_certs(void)
{
#if defined(STRATA_CERTS_SCRIPT) && defined(STRATA_CERTS_DIR)
    static int made;
    char cmd[1024];

    if (!made) {
        snprintf(cmd, sizeof cmd, "bash '%s' '%s' >/dev/null",
                 STRATA_CERTS_SCRIPT, STRATA_CERTS_DIR);
        made = system(cmd) == 0 ? 1 : -1;
    }
    return made == 1 ? STRATA_CERTS_DIR : NULL;
#else
    return NULL;
#endif
}

const char *strata_test_cert(char *buf, size_t len, const char *name)
{
    const char *dir = strata_test_certs();

    snprintf(buf, len, "%s/%s", dir ? dir : ".", name);
    return buf;
}

uint64_t strata_test_seed(void)
{
    const char *env = getenv("STRATA_SEED");
    uint64_t seed;

    if (env != NULL && *env != '\0')
        seed = strtoull(env, NULL, 0);
    else
        seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    fprintf(stderr, "STRATA_SEED=%" PRIu64 "\n", seed);
    return seed;
}

typedef struct direction {
    const strata_prop_opts *o;
    strata_stream *from, *to;
    uint64_t base;          /* seed of this direction */
    uint64_t rng;           /* schedule of sends and reads */
    uint8_t *out, *exp, *in;
    /* sender */
    unsigned tx_msg;
    size_t tx_size, tx_off, tx_call;  /* tx_call: bytes of the call in flight */
    unsigned tx_flags;
    int tx_flushed, tx_shut;
    /* receiver */
    unsigned rx_msg;
    size_t rx_size, rx_off;
    int rx_eof;
} direction;

static int fail(char *err, size_t errlen, const strata_prop_opts *o,
                const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "seed %" PRIu64 ": ", o->seed);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Size and bytes of message i: a quarter are small, the rest uniform. */
static size_t make_msg(direction *d, unsigned i, uint8_t *buf)
{
    const strata_prop_opts *o = d->o;
    uint64_t g = d->base ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
    uint64_t r = strata_rand(&g);
    size_t span = o->max_size - o->min_size + 1, size, k;

    if (r % 4 == 0 && span > 64)
        span = 64;
    size = o->min_size + (size_t)(strata_rand(&g) % span);
    for (k = 0; k < size; k++) {
        uint8_t b = (uint8_t)strata_rand(&g);

        buf[k] = o->alphabet ? o->alphabet[b % o->alphabet_len] : b;
    }
    return size;
}

static int send_step(direction *d, char *err, size_t errlen)
{
    const strata_prop_opts *o = d->o;
    ssize_t r;

    if (d->tx_shut)
        return 0;
    if (d->tx_msg == o->messages) {
        r = d->tx_flushed ? strata_shutdown(d->from) : strata_flush(d->from);
        if (r == 0 && d->tx_flushed)
            d->tx_shut = 1;
        else if (r == 0)
            d->tx_flushed = 1;
        else if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            return fail(err, errlen, o, "flush/shutdown: %s",
                        strata_strerror((int)r));
        return r == 0;
    }
    if (d->tx_call == 0 && d->tx_off == 0 && d->tx_flags == 0) {
        d->tx_size = make_msg(d, d->tx_msg, d->out);
        d->tx_flags = 0x8000u; /* "a message is open" */
    }
    if (d->tx_call == 0 && !(d->tx_flags & STRATA_MSG_END)) {
        size_t left = d->tx_size - d->tx_off;

        d->tx_call = left;
        if (o->max_fragment > 0 && left > 0)
            d->tx_call = 1 + (size_t)(strata_rand(&d->rng) %
                                      (left < o->max_fragment ? left
                                                              : o->max_fragment));
        if (d->tx_call == left)
            d->tx_flags |= STRATA_MSG_END;
    }
    r = strata_send(d->from, d->out + d->tx_off, d->tx_call,
                    (d->tx_flags & STRATA_MSG_END) | o->send_flags);
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE) {
        strata_flush(d->from);
        return 0;
    }
    if (r < 0 || (size_t)r > d->tx_call || (r == 0 && d->tx_call > 0))
        return fail(err, errlen, o, "send of message %u: %s", d->tx_msg,
                    r < 0 ? strata_strerror((int)r) : "bad byte count");
    d->tx_off += (size_t)r;
    d->tx_call -= (size_t)r;
    if (d->tx_call == 0 && (d->tx_flags & STRATA_MSG_END)) {
        d->tx_msg++;
        d->tx_off = 0;
        d->tx_flags = 0;
    } else if (d->tx_call == 0) {
        d->tx_flags = 0x8000u;
    }
    if (strata_rand(&d->rng) % 8 == 0)
        strata_flush(d->from);
    return 1;
}

/* Next expected message (skipping empty ones in byte-stream mode, where
 * they carry nothing). Returns 0 when every message was received. */
static int next_expected(direction *d)
{
    while (d->rx_msg < d->o->messages) {
        d->rx_size = make_msg(d, d->rx_msg, d->exp);
        d->rx_off = 0;
        if (d->rx_size > 0 || !d->o->byte_stream)
            return 1;
        d->rx_msg++;
    }
    return 0;
}

static int check_bytes(direction *d, const uint8_t *in, size_t n,
                       unsigned flags, char *err, size_t errlen)
{
    const strata_prop_opts *o = d->o;

    while (n > 0 || (!o->byte_stream && (flags & STRATA_MSG_END))) {
        size_t take;

        if (d->rx_msg == o->messages)
            return fail(err, errlen, o, "bytes after the last message");
        take = d->rx_size - d->rx_off < n ? d->rx_size - d->rx_off : n;
        if (!o->byte_stream && take < n)
            return fail(err, errlen, o, "message %u: %zu bytes past its end",
                        d->rx_msg, n - take);
        if (memcmp(in, d->exp + d->rx_off, take) != 0)
            return fail(err, errlen, o, "message %u differs near offset %zu",
                        d->rx_msg, d->rx_off);
        d->rx_off += take;
        in += take;
        n -= take;
        if (!o->byte_stream) {
            int at_end = d->rx_off == d->rx_size;

            if ((flags & STRATA_MSG_END) && !at_end)
                return fail(err, errlen, o,
                            "message %u: MSG_END at %zu of %zu bytes",
                            d->rx_msg, d->rx_off, d->rx_size);
            if (at_end && o->strict_end && !(flags & STRATA_MSG_END))
                return fail(err, errlen, o,
                            "message %u: last bytes without MSG_END",
                            d->rx_msg);
            if (!(flags & STRATA_MSG_END))
                return 0;
        } else if (d->rx_off < d->rx_size) {
            return 0;
        }
        d->rx_msg++;
        if (!next_expected(d) && n > 0)
            return fail(err, errlen, o, "bytes after the last message");
        flags = 0;
    }
    return 0;
}

static int recv_step(direction *d, char *err, size_t errlen)
{
    const strata_prop_opts *o = d->o;
    size_t most = o->max_read ? o->max_read : 4096;
    size_t want = 1 + (size_t)(strata_rand(&d->rng) % most);
    unsigned flags = 0;
    ssize_t r;

    if (d->rx_eof)
        return 0;
    r = strata_recv(d->to, d->in, want, &flags);
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return 0;
    if (r == STRATA_EOF) {
        if (d->rx_msg != o->messages)
            return fail(err, errlen, o, "EOF at message %u of %u (offset %zu)",
                        d->rx_msg, o->messages, d->rx_off);
        d->rx_eof = 1;
        return 1;
    }
    if (r < 0)
        return fail(err, errlen, o, "recv in message %u: %s", d->rx_msg,
                    strata_strerror((int)r));
    if (r == 0 && !(flags & STRATA_MSG_END))
        return fail(err, errlen, o, "recv returned 0 without MSG_END");
    if (check_bytes(d, d->in, (size_t)r, flags, err, errlen) < 0)
        return -1;
    return 1;
}

static int dir_init(direction *d, const strata_prop_opts *o, int which,
                    strata_stream *from, strata_stream *to)
{
    size_t most = o->max_read ? o->max_read : 4096;

    memset(d, 0, sizeof *d);
    d->o = o;
    d->from = from;
    d->to = to;
    d->base = o->seed * 2 + (uint64_t)which + 1;
    d->rng = ~d->base;
    d->out = malloc(o->max_size + 1);
    d->exp = malloc(o->max_size + 1);
    d->in = malloc(most);
    if (d->out == NULL || d->exp == NULL || d->in == NULL)
        return -1;
    if (!next_expected(d))
        d->rx_msg = o->messages;
    return 0;
}

static void dir_free(direction *d)
{
    free(d->out);
    free(d->exp);
    free(d->in);
}

static int drive(direction *dirs, int n, strata_stream *a, strata_stream *b,
                 strata_prop_step step, void *ud, uint64_t *rng, char *err,
                 size_t errlen)
{
    const strata_prop_opts *o = dirs[0].o;
    unsigned stalled = 0;

    for (;;) {
        int progress = 0, done = 1, i;

        int first = (int)(strata_rand(rng) % (uint64_t)n);

        for (i = 0; i < n; i++) {
            direction *d = &dirs[(first + i) % n];
            int s = send_step(d, err, errlen);
            int r = recv_step(d, err, errlen);

            if (s < 0 || r < 0)
                return -1;
            progress |= s | r;
        }
        if (step != NULL && step(a, b, strata_rand(rng), ud) < 0)
            return fail(err, errlen, o, "step hook failed");
        for (i = 0; i < n; i++)
            done &= dirs[i].tx_shut && dirs[i].rx_eof;
        if (done)
            return 0;
        stalled = progress ? 0 : stalled + 1;
        if (stalled > STALL_LIMIT)
            return fail(err, errlen, o, "no progress (sent %u, received %u)",
                        dirs[0].tx_msg, dirs[0].rx_msg);
    }
}

/* Under valgrind (STRATA_VALGRIND set) a tenth of the messages: the full
 * count runs in the native and sanitizer passes of the same CI run, and
 * valgrind is there to find memory errors, which a shorter run still hits. */
static unsigned scaled(unsigned messages)
{
    return strata_test_valgrind() && messages >= 10 ? messages / 10
                                                    : messages;
}

int strata_prop_run(const strata_prop_opts *opts, strata_prop_build build,
                    strata_prop_step step, void *ud, char *err, size_t errlen)
{
    strata_prop_opts scaled_opts = *opts;
    const strata_prop_opts *o = &scaled_opts;
    strata_stream *ea, *eb, *a = NULL, *b = NULL;
    direction dirs[2];
    uint64_t rng = o->seed;
    int n = o->duplex ? 2 : 1, rc;

    scaled_opts.messages = scaled(opts->messages);

    if (o->max_size < o->min_size || (o->alphabet && o->alphabet_len == 0))
        return fail(err, errlen, o, "bad options");
    if (strata_pipe_pair(&ea, &eb, &o->pipe, NULL) != 0)
        return fail(err, errlen, o, "pipe pair");
    if (build(ea, eb, &a, &b, ud) != 0)
        return fail(err, errlen, o, "building the stacks failed");
    memset(dirs, 0, sizeof dirs);
    rc = dir_init(&dirs[0], o, 0, a, b);
    if (rc == 0 && n == 2)
        rc = dir_init(&dirs[1], o, 1, b, a);
    if (rc == 0)
        rc = drive(dirs, n, a, b, step, ud, &rng, err, errlen);
    else
        fail(err, errlen, o, "out of memory");
    dir_free(&dirs[0]);
    if (n == 2)
        dir_free(&dirs[1]);
    strata_free(a);
    strata_free(b);
    return rc;
}
