/* libFuzzer target for the HTTP/1.1 head reader and writer.
 *
 * The input's first byte picks the options; the rest is the peer's byte
 * stream, fed through a pipe pair with a schedule into a buffered stream
 * and read as a request or response head. The result must equal the one
 * of the same bytes read in one call (resumption changes nothing), and a
 * head read must obey the contract: limits kept, names tokens, values
 * without CR/LF or outer spaces, and every byte behind the head still
 * readable, unchanged, from the buffered stream (the hand-off). A head
 * read is then written back with the writer and must read back the same.
 *
 * Input: b0 = response (bit 0), header limit (bits 1-2: 64, 1, 3, 8),
 * head limit (bits 3-5), pipe max_chunk (bits 6-7: none, 1, 2, 7, the
 * last three with 30% injected NEED codes); stream bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/pipe.h>
#include <strata/http1.h>

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
    int request;
    size_t max_headers; /* as given to head_init (0: the default) */
    size_t limit;       /* the header count that applies */
    size_t max_head;
    size_t buffer;      /* capacity of the buffered stream */
    strata_pipe_opts po;
} config;

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static void put_all(strata_stream *s, const uint8_t *p, size_t len)
{
    long steps = 0;

    while (len > 0) {
        ssize_t r = strata_write(s, p, len);

        CHECK(++steps < STEP_LIMIT);
        if (is_need(r))
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

    while (is_need(r = strata_shutdown(s)))
        CHECK(++steps < STEP_LIMIT);
    CHECK(r == 0);
}

/* A peer's bytes behind a pipe pair, a buffered stream and a head. */
typedef struct reader {
    strata_stream *raw, *top;
    strata_buffered *in;
    strata_http1_head h;
    char *store;
} reader;

static int read_once(reader *rd, const config *c)
{
    return c->request ? strata_http1_read_request(rd->in, &rd->h)
                      : strata_http1_read_response(rd->in, &rd->h);
}

static int read_all(reader *rd, const config *c, const uint8_t *data,
                    size_t size, const strata_pipe_opts *po)
{
    strata_pipe_opts o = *po;
    strata_stream *end;
    long steps = 0;
    int st;

    o.capacity = size + 1;
    CHECK(strata_pipe_pair(&rd->raw, &end, &o, NULL) == 0);
    rd->top = strata_buffered_new(end, c->buffer, NULL);
    CHECK(rd->top != NULL);
    rd->in = strata_buffered_of(rd->top);
    rd->store = malloc(c->max_head); /* exact, so ASan sees an overrun */
    CHECK(rd->store != NULL);
    strata_http1_head_init(&rd->h, rd->store, c->max_head, c->max_headers);
    put_all(rd->raw, data, size);
    shut(rd->raw);
    do {
        CHECK(++steps < STEP_LIMIT);
        st = read_once(rd, c);
    } while (is_need(st));
    return st;
}

static void reader_free(reader *rd)
{
    strata_free(rd->top);
    strata_free(rd->raw);
    free(rd->store);
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Two heads read the same; the version too unless one was rewritten. */
static void same_head(const strata_http1_head *a, const strata_http1_head *b,
                      int version)
{
    size_t i;

    CHECK(same_str(a->method, b->method));
    CHECK(same_str(a->target, b->target));
    CHECK(!version || same_str(a->version, b->version));
    CHECK(a->status == b->status);
    CHECK(same_str(a->reason, b->reason));
    CHECK(a->n_headers == b->n_headers);
    for (i = 0; i < a->n_headers; i++) {
        CHECK(same_str(a->headers[i].name, b->headers[i].name));
        CHECK(same_str(a->headers[i].value, b->headers[i].value));
    }
}

static int ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
        int y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;

        if (x != y)
            return 0;
    }
    return *a == *b;
}

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_fields(const strata_http1_head *h, const config *c)
{
    size_t i, j;

    CHECK(h->n_headers <= c->limit);
    for (i = 0; i < h->n_headers; i++) {
        const char *n = h->headers[i].name, *v = h->headers[i].value;
        size_t vl = strlen(v);

        CHECK(n[0] != '\0' && strchr(n, ':') == NULL);
        CHECK(strpbrk(n, " \t\r\n") == NULL);
        CHECK(strpbrk(v, "\r\n") == NULL);
        CHECK(vl == 0 || (!ows(v[0]) && !ows(v[vl - 1])));
        /* get finds the first header of that name */
        for (j = 0; !ieq(h->headers[j].name, n); j++)
            ;
        CHECK(strata_http1_get(h, n) == h->headers[j].value);
        if (vl > 0 && strchr(v, ',') == NULL)
            CHECK(strata_http1_has_token(h, n, v));
    }
}

static void check_head(const strata_http1_head *h, const config *c,
                       const uint8_t *data)
{
    size_t len = h->store_len;

    CHECK(len >= 4 && len <= c->max_head);
    CHECK(memcmp(data + len - 4, "\r\n\r\n", 4) == 0);
    CHECK(same_str(h->version, "HTTP/1.1") || same_str(h->version, "HTTP/1.0"));
    if (c->request) {
        CHECK(h->method != NULL && h->method[0] != '\0');
        CHECK(h->target != NULL && h->target[0] != '\0');
        CHECK(strpbrk(h->target, " \t\r\n") == NULL);
        CHECK(h->status == 0 && h->reason == NULL);
    } else {
        CHECK(h->method == NULL && h->target == NULL);
        CHECK(h->status >= 100 && h->status <= 599);
        CHECK(h->reason != NULL && strpbrk(h->reason, "\r\n") == NULL);
    }
    check_fields(h, c);
}

/* Whatever follows the head comes out of the buffered stream unchanged. */
static void check_tail(reader *rd, const uint8_t *tail, size_t len)
{
    uint8_t buf[512];
    size_t got = 0;
    long steps = 0;

    for (;;) {
        ssize_t r = strata_read(rd->top, buf, sizeof buf);

        CHECK(++steps < STEP_LIMIT);
        if (is_need(r))
            continue;
        if (r == STRATA_EOF)
            break;
        CHECK(r > 0 && got + (size_t)r <= len);
        CHECK(memcmp(buf, tail + got, (size_t)r) == 0);
        got += (size_t)r;
    }
    CHECK(got == len);
}

/* Write the head back and read it again: the same head (as HTTP/1.1).
 * The writer may add a byte per header ("N:v" becomes "N: v") and one to
 * a status line without reason ("HTTP/1.1 204 "), and needs one for NUL. */
static void round_trip(const strata_http1_head *h, const config *c)
{
    const char *hd[2 * STRATA_HTTP1_MAX_HEADERS + 1];
    size_t i, cap = h->store_len + h->n_headers + 2;
    char *out = malloc(cap);
    static const strata_pipe_opts plain;
    config c2 = *c;
    reader rd;
    ssize_t n;

    CHECK(out != NULL);
    for (i = 0; i < h->n_headers; i++) {
        hd[2 * i] = h->headers[i].name;
        hd[2 * i + 1] = h->headers[i].value;
    }
    hd[2 * h->n_headers] = NULL;
    n = c->request ? strata_http1_write_request(out, cap, h->method,
                                                h->target, hd, NULL)
                   : strata_http1_write_response(out, cap, h->status,
                                                 h->reason, hd, NULL);
    CHECK(n > 0 && (size_t)n < cap && out[n] == '\0');
    c2.max_head = (size_t)n;
    c2.buffer = (size_t)n;
    CHECK(read_all(&rd, &c2, (const uint8_t *)out, (size_t)n, &plain) == 0);
    CHECK(rd.h.store_len == (size_t)n);
    same_head(h, &rd.h, 0);
    reader_free(&rd);
    free(out);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t x = 0xcbf29ce484222325ull;

    while (n-- > 0)
        x = (x ^ *p++) * 0x100000001b3ull;
    return x;
}

static int configure(config *c, const uint8_t **data, size_t *size)
{
    static const size_t headers[] = {0, 1, 3, 8};
    static const size_t heads[] = {8192, 16, 32, 64, 100, 256, 1024, 4096};
    static const size_t chunks[] = {0, 1, 2, 7};
    uint8_t b;

    if (*size < 1)
        return -1;
    b = (*data)[0];
    memset(c, 0, sizeof *c);
    c->request = (b & 1) == 0;
    c->max_headers = headers[(b >> 1) & 3];
    c->limit = c->max_headers == 0 ? STRATA_HTTP1_MAX_HEADERS : c->max_headers;
    c->max_head = heads[(b >> 3) & 7];
    c->buffer = 4096; /* below the largest head: lines meet both limits */
    c->po.max_chunk = chunks[b >> 6];
    c->po.need_percent = c->po.max_chunk != 0 ? 30 : 0;
    (*data)++;
    (*size)--;
    c->po.seed = fnv(*data, *size) ^ b;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const strata_pipe_opts plain;
    config c;
    reader a, b;
    int st, st1;

    if (configure(&c, &data, &size) != 0)
        return 0;
    st = read_all(&a, &c, data, size, &c.po);
    st1 = read_all(&b, &c, data, size, &plain);
    CHECK(st == st1);
    CHECK(read_once(&a, &c) == st && read_once(&b, &c) == st); /* final */
    CHECK(a.h.n_headers <= c.limit && a.h.store_len <= c.max_head);
    CHECK((st == STRATA_EOF) == (size == 0));
    if (st == 0) {
        CHECK(a.h.store_len == b.h.store_len);
        same_head(&a.h, &b.h, 1);
        check_head(&a.h, &c, data);
        check_tail(&a, data + a.h.store_len, size - a.h.store_len);
        check_tail(&b, data + b.h.store_len, size - b.h.store_len);
        round_trip(&a.h, &c);
    } else {
        CHECK(st == STRATA_EOF || st == STRATA_ERR_PROTO ||
              st == STRATA_ERR_TOO_BIG);
    }
    reader_free(&a);
    reader_free(&b);
    return 0;
}
