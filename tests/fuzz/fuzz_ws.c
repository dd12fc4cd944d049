/* libFuzzer target for the ws layer (framing, control frames, close,
 * permessage-deflate) without a handshake.
 *
 * The first two bytes choose the options; the rest is the peer's byte
 * stream, fed through a pipe pair with a schedule taken from the input
 * into strata_ws_new(no_handshake), which is read until EOF or an error.
 * Checked: no message delivers more than max_message bytes; a text
 * message is valid UTF-8 (by a plain decoder written here, not the
 * layer's DFA); a 0-byte recv carries MSG_END; flags stay the same within
 * a message; EOF and errors are final; after an error the close code kept
 * is 1002, 1007, 1009 or 1010 (1009 exactly for STRATA_ERR_TOO_BIG).
 * Then the frames the layer wrote back are parsed: only pongs and one
 * last close, masked exactly when the layer is a client, the close
 * carrying the error's code.
 *
 * Input: b0 = role (bit 0: server), deflate (bit 1, "permessage-deflate"
 * agreed, bit 2 adds no_context_takeover), limits (bits 3-4), read size
 * (bits 5-7); b1 = pipe max_chunk (bits 0-3), need percent (bits 4-7).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/ws.h>

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
    strata_ws_opts wo;
    strata_pipe_opts po;
    size_t read_size;
    size_t max_message;
} config;

static int zero_random(void *ud, uint8_t *buf, size_t n)
{
    (void)ud;
    memset(buf, 0x5a, n);
    return 0;
}

static int configure(config *c, const uint8_t **data, size_t *size)
{
    static const size_t limits[4] = {1u << 20, 125, 1000, 65536};
    static const size_t reads[8] = {1, 2, 3, 7, 64, 126, 1000, 65536};
    const uint8_t *d = *data;

    if (*size < 2)
        return -1;
    memset(c, 0, sizeof *c);
    c->wo.role = d[0] & 1 ? STRATA_WS_SERVER : STRATA_WS_CLIENT;
    c->wo.no_handshake = 1;
    if (d[0] & 2)
        c->wo.deflate_agreed =
            d[0] & 4 ? "permessage-deflate; server_no_context_takeover; "
                       "client_no_context_takeover"
                     : "permessage-deflate";
    c->max_message = limits[(d[0] >> 3) & 3];
    c->wo.max_message = c->max_message;
    c->wo.max_frame = c->max_message;
    c->wo.scratch = 256;
    c->wo.random = zero_random;
    c->read_size = reads[d[0] >> 5];
    c->po.max_chunk = d[1] & 15u;
    c->po.need_percent = (unsigned)(d[1] >> 4) * 2;
    c->po.seed = (uint64_t)d[0] << 8 | d[1];
    *data = d + 2;
    *size -= 2;
    return 0;
}

/* A plain UTF-8 decoder: the reference for text messages. */
static int utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0, j, k;

    while (i < n) {
        uint32_t c = p[i], min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc0 && c < 0xe0) {
            k = 1, c &= 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c < 0xf0) {
            k = 2, c &= 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c < 0xf8) {
            k = 3, c &= 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            c = c << 6 | (p[i + j] & 0x3fu);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
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

/* Take what the layer wrote so far; the pipe never fills. */
typedef struct sink {
    uint8_t *p;
    size_t n, cap;
} sink;

static void drain_raw(strata_stream *raw, sink *k)
{
    for (;;) {
        ssize_t r;

        if (k->n == k->cap) {
            k->cap = k->cap * 2 + 4096;
            k->p = realloc(k->p, k->cap);
            CHECK(k->p != NULL);
        }
        r = strata_read(raw, k->p + k->n, k->cap - k->n);
        if (r == STRATA_NEED_READ && strata_pipe_pending(raw) == 0)
            return;
        if (r > 0)
            k->n += (size_t)r;
        else if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            return;
    }
}

/* Read the layer until a final status; returns it. */
static ssize_t drain(strata_stream *ws, strata_stream *raw, const config *c,
                     uint8_t *msg, uint8_t *buf, sink *k)
{
    size_t got = 0;
    unsigned msg_flags = 0;
    long steps = 0;

    for (;;) {
        unsigned fl = 0;
        ssize_t r;

        CHECK(++steps < STEP_LIMIT);
        (void)strata_poll(ws, STRATA_POLL_IN | STRATA_POLL_OUT);
        (void)strata_wants(ws);
        r = strata_recv(ws, buf, c->read_size, &fl);
        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE) {
            drain_raw(raw, k);
            continue;
        }
        if (r < 0)
            return r;
        CHECK((size_t)r <= c->read_size);
        CHECK(r > 0 || (fl & STRATA_MSG_END));
        CHECK((fl & ~(STRATA_MSG_END | STRATA_MSG_TEXT)) == 0);
        CHECK(got == 0 || (fl & STRATA_MSG_TEXT) == msg_flags);
        msg_flags = fl & STRATA_MSG_TEXT;
        CHECK(got + (size_t)r <= c->max_message);
        memcpy(msg + got, buf, (size_t)r);
        got += (size_t)r;
        if (fl & STRATA_MSG_END) {
            if (msg_flags & STRATA_MSG_TEXT)
                CHECK(utf8_ok(msg, got));
            got = 0;
        }
    }
}

/* What the layer wrote: pongs, then at most one close, last. */
static void check_output(const sink *k, const config *c, unsigned close)
{
    size_t pos = 0;
    int closed = 0;

    while (pos < k->n) {
        const uint8_t *h = k->p + pos;
        size_t len, hl;
        uint8_t key[4] = {0, 0, 0, 0}, p0, p1;

        CHECK(!closed);
        CHECK(k->n - pos >= 2);
        len = h[1] & 0x7fu;
        CHECK(len <= 125);
        CHECK(h[0] == 0x8a || h[0] == 0x88);
        CHECK(((h[1] & 0x80) != 0) == (c->wo.role == STRATA_WS_CLIENT));
        hl = h[1] & 0x80 ? 6 : 2;
        CHECK(k->n - pos >= hl + len);
        if (hl == 6)
            memcpy(key, h + 2, 4);
        if (h[0] == 0x88) {
            CHECK(len >= 2);
            p0 = h[hl] ^ key[0];
            p1 = h[hl + 1] ^ key[1];
            CHECK(((unsigned)p0 << 8 | p1) == close);
            closed = 1;
        }
        pos += hl + len;
    }
    CHECK(closed == (close != 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config c;
    strata_stream *raw, *end, *ws;
    uint8_t *msg, *buf;
    sink k = {NULL, 0, 0};
    unsigned code, want_close = 0;
    ssize_t r;
    long steps = 0;
    int sr;

    if (configure(&c, &data, &size) != 0)
        return 0;
    c.po.capacity = size + 1;
    CHECK(strata_pipe_pair(&raw, &end, &c.po, NULL) == 0);
    ws = strata_ws_new(end, &c.wo, NULL);
    CHECK(ws != NULL);
    msg = malloc(c.max_message + c.read_size);
    buf = malloc(c.read_size);
    CHECK(msg != NULL && buf != NULL);
    put_all(raw, data, size);
    strata_shutdown(raw);

    r = drain(ws, raw, &c, msg, buf, &k);
    code = strata_ws_error_code(ws);
    if (r == STRATA_EOF) {
        CHECK(code == 0);
        code = strata_ws_close_code(ws);
        CHECK(code == 1005 || code == 1006 || (code >= 1000 && code <= 4999));
    } else {
        CHECK(r == STRATA_ERR_PROTO || r == STRATA_ERR_TOO_BIG);
        CHECK(code == 1002 || code == 1007 || code == 1009 || code == 1010);
        CHECK((r == STRATA_ERR_TOO_BIG) == (code == 1009));
        CHECK(strata_poll(ws, STRATA_POLL_IN) & STRATA_POLL_ERR);
        want_close = code;
    }
    /* final: the same status again */
    CHECK(strata_recv(ws, buf, c.read_size, NULL) == r);
    /* after a clean end our close goes with shutdown, echoing the peer */
    while ((sr = strata_shutdown(ws)) == STRATA_NEED_READ ||
           sr == STRATA_NEED_WRITE) {
        CHECK(++steps < STEP_LIMIT);
        drain_raw(raw, &k);
    }
    if (r == STRATA_EOF) {
        unsigned peer = strata_ws_close_code(ws);

        CHECK(sr == 0);
        want_close = peer >= 1000 && peer <= 4999 && peer != 1005 &&
                             peer != 1006
                         ? peer
                         : 1000;
    } else {
        CHECK(sr == r);
    }
    drain_raw(raw, &k);
    check_output(&k, &c, want_close);
    CHECK(strata_write(ws, "x", 1) < 0);

    strata_free(ws);
    strata_free(raw);
    free(msg);
    free(buf);
    free(k.p);
    return 0;
}
