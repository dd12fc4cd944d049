/* strata grpc: a gRPC call as a message stream over an HTTP/2 stream.
 *
 * The call keeps a lenprefix layer (flag byte, 4-byte length: gRPC's
 * prefix) over a small buffered stream in its own struct, over the h2
 * stream it owns. Identity messages pass through both without a copy;
 * gzip messages are gathered whole and go through zlib (grpc_wire.c). The
 * h2 stream's heads carry everything else: the request head, the response
 * head, trailers with the status. See grpc.h for the contract. */
#include "grpc.h"
#include "grpc_internal.h"

#include <strata/buffered.h>
#include <strata/lenprefix.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX ((size_t)4 << 20)
#define IN_BUF 512          /* prefixes and small messages read ahead */
#define MAX_MD 20           /* metadata entries per head we send */
#define MAX_HEAD (MAX_MD + 12) /* and what gRPC itself puts there */
#define USER_AGENT "strata-grpc/0.1"

/* A decoded "-bin" value, kept for the call's life. */
typedef struct md_dec {
    struct md_dec *next;
    const char *src;        /* the base64 text it came from (its key) */
    size_t len;
    uint8_t data[];
} md_dec;

typedef struct grpc_call {
    strata_stream base;     /* lower: the h2 stream, owned */
    strata_buffered in;
    strata_lenprefix lp;
    uint8_t in_store[IN_BUF];
    int server;
    int status;             /* -1 while open */
    char *message;
    int ended_here;         /* ended on this side: recv/send say so */
    int finishing;          /* server: trailers wait for room */
    int finished;           /* server: its own finish went out */
    int fin_status;
    char *fin_message;
    int head_sent, head_seen, half_closed;
    int gzip_tx, gzip_rx;
    size_t max_recv, max_send;
    long timeout_ms;
    const strata_grpc_method *method;
    void *user;
    /* compressed receive: the message gathered, then inflated */
    uint8_t *zrx;
    size_t zrx_len, zrx_cap;
    uint8_t *zmsg;
    size_t zmsg_len, zmsg_off;
    /* compressed send: the caller's message gathered, then deflated */
    uint8_t *ztx;
    size_t ztx_len, ztx_cap;
    uint8_t *zout;
    size_t zout_len, zout_off;
    md_dec *decoded;
} grpc_call;

static const strata_stream_ops grpc_ops;

static grpc_call *as_call(strata_stream *s)
{
    return s && s->ops == &grpc_ops ? (grpc_call *)s : NULL;
}

static strata_stream *h2s(grpc_call *c)
{
    return c->base.lower;
}

static const strata_allocator *A(grpc_call *c)
{
    return c->base.alloc;
}

/* ---- heads ------------------------------------------------------------ */

/* A head under construction: entries and the strings made for them. */
typedef struct head {
    strata_h2_header h[MAX_HEAD];
    char *owned[MAX_HEAD];
    size_t n, n_owned;
} head;

static int head_add(head *hd, const char *name, const char *value)
{
    if (hd->n == MAX_HEAD)
        return STRATA_ERR_ARG;
    hd->h[hd->n].name = name;
    hd->h[hd->n].value = value;
    hd->n++;
    return 0;
}

static int head_add_owned(head *hd, const char *name, char *value)
{
    if (!value)
        return STRATA_ERR_NOMEM;
    hd->owned[hd->n_owned++] = value;
    return head_add(hd, name, value);
}

static void head_free(head *hd, const strata_allocator *a)
{
    size_t i;

    for (i = 0; i < hd->n_owned; i++)
        strata_dealloc(a, hd->owned[i]);
    hd->n_owned = hd->n = 0;
}

static int md_key_ok(const char *k)
{
    size_t i;

    if (!k || !k[0] || k[0] == ':')
        return 0;
    for (i = 0; k[i]; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9')
              || k[i] == '-' || k[i] == '_' || k[i] == '.'))
            return 0;
    return 1;
}

static int head_add_md(head *hd, const strata_allocator *a,
                       const strata_grpc_md *md, size_t n)
{
    size_t i;
    int r;

    if (n > MAX_MD)
        return STRATA_ERR_ARG;
    for (i = 0; i < n; i++) {
        const char *v = md[i].value ? md[i].value : "";

        if (!md_key_ok(md[i].key) || hd->n_owned == MAX_HEAD)
            return STRATA_ERR_ARG;
        if (grpc_key_is_bin(md[i].key))
            r = head_add_owned(hd, md[i].key,
                               grpc_b64_encode(a, v, md[i].len));
        else if (md[i].len) {
            char *d = strata_alloc(a, md[i].len + 1);

            if (d) {
                memcpy(d, v, md[i].len);
                d[md[i].len] = '\0';
            }
            r = head_add_owned(hd, md[i].key, d);
        } else
            r = head_add(hd, md[i].key, v);
        if (r != 0)
            return r;
    }
    return 0;
}

static const char *list_get(const strata_h2_header *l, size_t n,
                            const char *key)
{
    size_t i;

    for (i = 0; l && i < n; i++)
        if (strcmp(l[i].name, key) == 0)
            return l[i].value;
    return NULL;
}

/* ---- the end of a call ---------------------------------------------- */

static void set_end(grpc_call *c, int status, const char *msg)
{
    if (c->status >= 0)
        return;
    c->status = status;
    strata_dealloc(A(c), c->message);
    c->message = msg && msg[0] ? grpc_dup(A(c), msg) : NULL;
}

static int end_code(grpc_call *c)
{
    return c->status == STRATA_GRPC_OK ? STRATA_EOF : STRATA_ERR_GRPC;
}

static int send_trailers(grpc_call *c, int status, const char *msg,
                         const strata_grpc_md *md, size_t n);

/* Something here ended the call: a server answers with the status, a
 * client cancels its stream. */
static void fail_here(grpc_call *c, int status, const char *msg)
{
    if (c->status >= 0)
        return;
    if (c->server && !c->finishing)
        (void)send_trailers(c, status, msg, NULL, 0);
    else if (!c->server)
        (void)strata_h2_reset(h2s(c), STRATA_H2_CANCEL);
    set_end(c, status, msg);
    c->ended_here = 1;
}

/* The stream was reset or its connection failed. */
static void end_by_reset(grpc_call *c)
{
    long code = strata_h2_reset_code(h2s(c));
    char msg[64];

    if (code == STRATA_H2_CANCEL)
        snprintf(msg, sizeof msg, "call cancelled by the peer");
    else
        snprintf(msg, sizeof msg, "stream reset (HTTP/2 error 0x%lx)",
                 code < 0 ? 0L : code);
    set_end(c, grpc_status_of_reset(code), msg);
}

/* A client's status from the trailers, or from a trailers-only head. */
static void end_by_trailers(grpc_call *c)
{
    size_t n = 0;
    const strata_h2_header *t = strata_h2_trailers(h2s(c), &n);
    const char *st = list_get(t, n, "grpc-status");
    const char *msg = list_get(t, n, "grpc-message");
    char *dec;
    char *end;
    long v;

    if (!st) {
        st = strata_h2_get(h2s(c), "grpc-status");
        msg = strata_h2_get(h2s(c), "grpc-message");
    }
    if (!st) {
        set_end(c, STRATA_GRPC_UNKNOWN, "the call ended without grpc-status");
        return;
    }
    v = strtol(st, &end, 10);
    if (end == st || *end || v < 0 || v > 0x7fffffff) {
        set_end(c, STRATA_GRPC_UNKNOWN, "malformed grpc-status");
        return;
    }
    dec = msg ? grpc_pct_decode(A(c), msg) : NULL;
    set_end(c, (int)v, dec ? dec : "");
    strata_dealloc(A(c), dec);
}

/* A client got its status: trailers, or a trailers-only head. */
static int has_trailers(grpc_call *c)
{
    return !c->server && (strata_h2_trailers(h2s(c), NULL)
                          || (strata_h2_status(h2s(c))
                              && strata_h2_get(h2s(c), "grpc-status")));
}

/* A reset the application has not read yet still ends the call. */
static void refresh(grpc_call *c)
{
    if (c->status < 0 && strata_h2_reset_code(h2s(c)) >= 0
        && !has_trailers(c))
        end_by_reset(c);
}

/* ---- building a call ------------------------------------------------- */

static int encoding_of(const char *e, int *gzip)
{
    if (!e || !strcmp(e, "identity"))
        *gzip = 0;
    else if (!strcmp(e, "gzip"))
        *gzip = 1;
    else
        return STRATA_ERR_ARG;
    return 0;
}

static grpc_call *call_new(strata_stream *hs, const strata_grpc_opts *o,
                           const strata_allocator *alloc, int server)
{
    grpc_call *c = strata_alloc(alloc, sizeof *c);
    strata_lenprefix_opts lo;

    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    strata_stream_init(&c->base, &grpc_ops, hs, alloc);
    c->base.heap = 1;
    c->server = server;
    c->status = -1;
    c->timeout_ms = -1;
    c->max_recv = o->max_recv ? o->max_recv : DEFAULT_MAX;
    c->max_send = o->max_send ? o->max_send : DEFAULT_MAX;
    strata_buffered_init(&c->in, hs, c->in_store, sizeof c->in_store);
    memset(&lo, 0, sizeof lo);
    lo.len_bytes = 4;
    lo.flag_byte = 1;
    lo.max_len = c->max_recv;
    lo.max_send = c->max_send;
    (void)strata_lenprefix_init(&c->lp, &c->in, &lo);
    return c;
}

int strata_grpc_call(strata_h2 *h, const strata_grpc_opts *o,
                     const strata_allocator *alloc, strata_stream **out)
{
    head hd = {0};
    char tmo[16];
    strata_stream *hs = NULL;
    grpc_call *c;
    int gzip, r;

    if (!h || !o || !out || !o->path || o->path[0] != '/' || !o->authority
        || encoding_of(o->encoding, &gzip) != 0)
        return STRATA_ERR_ARG;
    *out = NULL;
    head_add(&hd, ":method", "POST");
    head_add(&hd, ":scheme", o->scheme ? o->scheme : "http");
    head_add(&hd, ":path", o->path);
    head_add(&hd, ":authority", o->authority);
    head_add(&hd, "content-type", "application/grpc");
    head_add(&hd, "te", "trailers");
    head_add(&hd, "user-agent", o->user_agent ? o->user_agent : USER_AGENT);
    head_add(&hd, "grpc-accept-encoding", "identity,gzip");
    if (gzip)
        head_add(&hd, "grpc-encoding", "gzip");
    if (o->timeout_ms > 0) {
        strata_grpc_timeout_format(o->timeout_ms, tmo);
        head_add(&hd, "grpc-timeout", tmo);
    }
    r = head_add_md(&hd, alloc, o->md, o->n_md);
    if (r == 0)
        r = strata_h2_request(h, hd.h, hd.n, 0, &hs);
    head_free(&hd, alloc);
    if (r != 0)
        return r;
    if (!(c = call_new(hs, o, alloc, 0))) {
        strata_free(hs);
        return STRATA_ERR_NOMEM;
    }
    c->gzip_tx = gzip;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : -1;
    *out = &c->base;
    return 0;
}

/* ---- the server's side of a request ---------------------------------- */

/* Refuse a request with an HTTP status and a gRPC status in one head. */
static int refuse(strata_stream *hs, int http, int status, const char *msg,
                  const strata_allocator *a, int ret)
{
    head hd = {0};
    char num[12];

    snprintf(num, sizeof num, "%d", status);
    head_add(&hd, "content-type", "application/grpc");
    head_add(&hd, "grpc-status", num);
    head_add_owned(&hd, "grpc-message", grpc_pct_encode(a, msg));
    if (status == STRATA_GRPC_UNIMPLEMENTED)
        head_add(&hd, "grpc-accept-encoding", "identity,gzip");
    (void)strata_h2_respond(hs, http, hd.h, hd.n, STRATA_H2_END_STREAM);
    head_free(&hd, a);
    strata_free(hs);
    return ret;
}

static const strata_grpc_method *find_method(const strata_grpc_opts *o,
                                             const char *path,
                                             int *service_known)
{
    const char *slash = strrchr(path, '/');
    size_t i, svc = slash ? (size_t)(slash - path) : 0;

    *service_known = 0;
    for (i = 0; i < o->n_methods; i++) {
        const char *p = o->methods[i].path;

        if (!strcmp(p, path))
            return &o->methods[i];
        if (svc && !strncmp(p, path, svc + 1))
            *service_known = 1;
    }
    return NULL;
}

int strata_grpc_accept(strata_stream *hs, const strata_grpc_opts *o,
                       const strata_allocator *alloc, strata_stream **out)
{
    const char *method, *ctype, *te, *path, *tmo, *enc;
    const strata_grpc_method *m;
    char msg[160];
    long ms = -1;
    int known = 0, gzip_rx, gzip_tx;
    grpc_call *c;

    if (!hs || !o || !out || encoding_of(o->encoding, &gzip_tx) != 0) {
        strata_free(hs);
        return STRATA_ERR_ARG;
    }
    *out = NULL;
    method = strata_h2_get(hs, ":method");
    ctype = strata_h2_get(hs, "content-type");
    te = strata_h2_get(hs, "te");
    path = strata_h2_get(hs, ":path");
    tmo = strata_h2_get(hs, "grpc-timeout");
    enc = strata_h2_get(hs, "grpc-encoding");
    if (!method || strcmp(method, "POST"))
        return refuse(hs, 405, STRATA_GRPC_INTERNAL,
                      "gRPC requires method POST", alloc, STRATA_ERR_PROTO);
    if (!grpc_content_type_ok(ctype)) {
        snprintf(msg, sizeof msg, "content-type '%.64s' is not gRPC",
                 ctype ? ctype : "");
        return refuse(hs, 415, STRATA_GRPC_INTERNAL, msg, alloc,
                      STRATA_ERR_PROTO);
    }
    if (!te || strcmp(te, "trailers"))
        return refuse(hs, 400, STRATA_GRPC_INTERNAL,
                      "missing te: trailers", alloc, STRATA_ERR_PROTO);
    if (tmo && strata_grpc_timeout_parse(tmo, &ms) != 0) {
        snprintf(msg, sizeof msg, "malformed grpc-timeout '%.32s'", tmo);
        return refuse(hs, 400, STRATA_GRPC_INTERNAL, msg, alloc,
                      STRATA_ERR_PROTO);
    }
    if (encoding_of(enc, &gzip_rx) != 0) {
        snprintf(msg, sizeof msg, "grpc-encoding '%.32s' is not supported",
                 enc);
        return refuse(hs, 200, STRATA_GRPC_UNIMPLEMENTED, msg, alloc,
                      STRATA_ERR_UNSUPPORTED);
    }
    if (!path || !(m = find_method(o, path, &known))) {
        snprintf(msg, sizeof msg, known ? "unknown method %.100s"
                                        : "unknown service in %.100s",
                 path ? path : "(no path)");
        return refuse(hs, 200, STRATA_GRPC_UNIMPLEMENTED, msg, alloc,
                      STRATA_ERR_UNSUPPORTED);
    }
    if (!(c = call_new(hs, o, alloc, 1))) {
        strata_free(hs);
        return STRATA_ERR_NOMEM;
    }
    c->method = m;
    c->timeout_ms = ms;
    c->gzip_rx = gzip_rx;
    c->gzip_tx = gzip_tx;
    *out = &c->base;
    return 0;
}

const strata_grpc_method *strata_grpc_method_of(strata_stream *call)
{
    grpc_call *c = as_call(call);

    return c ? c->method : NULL;
}

int strata_grpc_send_head(strata_stream *call, const strata_grpc_md *md,
                          size_t n)
{
    grpc_call *c = as_call(call);
    head hd = {0};
    int r;

    if (!c || !c->server)
        return STRATA_ERR_ARG;
    if (c->head_sent || c->status >= 0 || c->finishing)
        return STRATA_ERR_STATE;
    head_add(&hd, "content-type", "application/grpc");
    head_add(&hd, "grpc-accept-encoding", "identity,gzip");
    if (c->gzip_tx)
        head_add(&hd, "grpc-encoding", "gzip");
    r = head_add_md(&hd, A(c), md, n);
    if (r == 0)
        r = strata_h2_respond(h2s(c), 200, hd.h, hd.n, 0);
    head_free(&hd, A(c));
    if (r == 0)
        c->head_sent = 1;
    return r;
}

/* Trailers, or a trailers-only answer when no head went yet. */
static int send_trailers(grpc_call *c, int status, const char *msg,
                         const strata_grpc_md *md, size_t n)
{
    head hd = {0};
    char num[12];
    int r;

    snprintf(num, sizeof num, "%d", status);
    if (!c->head_sent)
        head_add(&hd, "content-type", "application/grpc");
    head_add(&hd, "grpc-status", num);
    if (msg && msg[0])
        head_add_owned(&hd, "grpc-message", grpc_pct_encode(A(c), msg));
    r = hd.n_owned == 0 && msg && msg[0] ? STRATA_ERR_NOMEM : 0;
    if (r == 0)
        r = head_add_md(&hd, A(c), md, n);
    if (r == 0 && !c->head_sent) {
        r = strata_h2_respond(h2s(c), 200, hd.h, hd.n, STRATA_H2_END_STREAM);
        c->head_sent = r == 0;
    } else if (r == 0) {
        c->finishing = 1;
        r = strata_h2_send_trailers(h2s(c), hd.h, hd.n);
    }
    head_free(&hd, A(c));
    return r;
}

/* ---- compressed messages --------------------------------------------- */

/* Push what a compressed message left; 0 once it all went. */
static int push_zout(grpc_call *c)
{
    while (c->zout_off < c->zout_len) {
        ssize_t r = strata_send(&c->lp.base, c->zout + c->zout_off,
                                c->zout_len - c->zout_off, 0);

        if (r < 0)
            return (int)r;
        c->zout_off += (size_t)r;
    }
    strata_dealloc(A(c), c->zout);
    c->zout = NULL;
    c->zout_len = c->zout_off = 0;
    return 0;
}

static int seal_zmsg(grpc_call *c)
{
    int r = grpc_gzip(A(c), c->ztx, c->ztx_len, &c->zout, &c->zout_len);

    c->ztx_len = 0;
    if (r != 0)
        return r;
    c->zout_off = 0;
    r = strata_lenprefix_begin(&c->lp.base, c->zout_len,
                               STRATA_MSG_COMPRESSED);
    if (r != 0) {   /* compressed past max_send: grown, not shrunk */
        strata_dealloc(A(c), c->zout);
        c->zout = NULL;
        c->zout_len = 0;
    }
    return r;
}

static ssize_t send_compressed(grpc_call *c, const struct iovec *iov, int n,
                               size_t total, unsigned flags)
{
    int r;

    if ((r = push_zout(c)) != 0)
        return r;
    if (c->ztx_len + total > c->max_send)
        return STRATA_ERR_TOO_BIG;
    if (c->ztx_len + total > c->ztx_cap) {
        size_t cap = c->ztx_len + total;
        uint8_t *p = strata_realloc(A(c), c->ztx, cap ? cap : 1);

        if (!p)
            return STRATA_ERR_NOMEM;
        c->ztx = p;
        c->ztx_cap = cap;
    }
    if (total)
        c->ztx_len += strata_iov_copy(c->ztx + c->ztx_len, iov, n);
    if (flags & STRATA_MSG_END) {
        if ((r = seal_zmsg(c)) != 0)
            return r;
        r = push_zout(c);   /* what waits goes with the next call */
        if (r < 0 && r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            return r;
    }
    return (ssize_t)total;
}

/* Gather a compressed message whose first piece (n bytes) is in buf. */
static ssize_t gather_compressed(grpc_call *c, const void *buf, size_t n,
                                 unsigned f)
{
    if (!c->gzip_rx) {
        fail_here(c, STRATA_GRPC_INTERNAL,
                  "compressed message without a grpc-encoding");
        return STRATA_ERR_PROTO;
    }
    if (!c->zrx) {
        c->zrx_cap = n + c->lp.rx_left;
        if (!(c->zrx = strata_alloc(A(c), c->zrx_cap ? c->zrx_cap : 1)))
            return STRATA_ERR_NOMEM;
        c->zrx_len = 0;
    }
    memcpy(c->zrx + c->zrx_len, buf, n);
    c->zrx_len += n;
    while (!(f & STRATA_MSG_END)) {
        ssize_t r = strata_recv(&c->lp.base, c->zrx + c->zrx_len,
                                c->zrx_cap - c->zrx_len, &f);

        if (r < 0)
            return r;
        c->zrx_len += (size_t)r;
    }
    return 0;
}

static ssize_t inflate_zrx(grpc_call *c)
{
    int r = grpc_gunzip(A(c), c->zrx, c->zrx_len, c->max_recv, &c->zmsg,
                        &c->zmsg_len);

    strata_dealloc(A(c), c->zrx);
    c->zrx = NULL;
    c->zrx_len = c->zrx_cap = 0;
    c->zmsg_off = 0;
    if (r == STRATA_ERR_TOO_BIG)
        fail_here(c, STRATA_GRPC_RESOURCE_EXHAUSTED,
                  "decompressed message larger than max_recv");
    else if (r == STRATA_ERR_PROTO)
        fail_here(c, STRATA_GRPC_INTERNAL, "corrupt gzip message");
    return r;
}

static ssize_t deliver_zmsg(grpc_call *c, void *buf, size_t len,
                            unsigned *flags)
{
    size_t k = c->zmsg_len - c->zmsg_off;

    if (k > len)
        k = len;
    memcpy(buf, c->zmsg + c->zmsg_off, k);
    c->zmsg_off += k;
    *flags = 0;
    if (c->zmsg_off == c->zmsg_len) {
        *flags = STRATA_MSG_END;
        strata_dealloc(A(c), c->zmsg);
        c->zmsg = NULL;
    }
    return (ssize_t)k;
}

/* ---- receive ---------------------------------------------------------- */

static int take_head(grpc_call *c)
{
    int r = strata_h2_response_head(h2s(c)), http;
    const char *ct, *enc, *st;
    char msg[96];

    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r < 0) {
        if (strata_h2_reset_code(h2s(c)) >= 0)
            end_by_reset(c);
        else
            set_end(c, STRATA_GRPC_UNAVAILABLE, strata_strerror(r));
        return STRATA_ERR_GRPC;
    }
    c->head_seen = 1;
    http = strata_h2_status(h2s(c));
    ct = strata_h2_get(h2s(c), "content-type");
    enc = strata_h2_get(h2s(c), "grpc-encoding");
    st = strata_h2_get(h2s(c), "grpc-status");
    if (http != 200) {
        snprintf(msg, sizeof msg, "HTTP status %d", http);
        fail_here(c, grpc_status_of_http(http), msg);
        return STRATA_ERR_GRPC;
    }
    if (!st && !grpc_content_type_ok(ct)) {
        snprintf(msg, sizeof msg, "response content-type '%.40s'",
                 ct ? ct : "");
        fail_here(c, STRATA_GRPC_UNKNOWN, msg);
        return STRATA_ERR_GRPC;
    }
    if (encoding_of(enc, &c->gzip_rx) != 0) {
        fail_here(c, STRATA_GRPC_INTERNAL, "unsupported grpc-encoding");
        return STRATA_ERR_GRPC;
    }
    if (st) {   /* trailers-only: the call ended without a head */
        c->head_seen = 0;
        end_by_trailers(c);
        return end_code(c);
    }
    return 0;
}

/* What a failed recv from the message layer means for the call. A broken
 * frame counts before the trailers that may follow it. */
static ssize_t recv_failed(grpc_call *c, ssize_t r)
{
    char msg[96];

    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE
        || r == STRATA_ERR_NOMEM)
        return r;
    if (r == STRATA_EOF && c->server) {
        c->half_closed = 1;
        return STRATA_EOF;
    }
    if (r == STRATA_ERR_TOO_BIG) {
        snprintf(msg, sizeof msg, "message larger than max_recv (%zu)",
                 c->max_recv);
        fail_here(c, STRATA_GRPC_RESOURCE_EXHAUSTED, msg);
    } else if (r == STRATA_ERR_PROTO && strata_h2_reset_code(h2s(c)) < 0) {
        fail_here(c, STRATA_GRPC_INTERNAL,
                  "malformed or truncated message frame");
    } else if (r == STRATA_EOF || has_trailers(c)) {
        end_by_trailers(c);
    } else if (strata_h2_reset_code(h2s(c)) >= 0) {
        end_by_reset(c);
    } else {
        snprintf(msg, sizeof msg, "transport failed: %s",
                 strata_strerror((int)r));
        set_end(c, STRATA_GRPC_UNAVAILABLE, msg);
    }
    return end_code(c);
}

static ssize_t call_recv(strata_stream *s, void *buf, size_t len,
                         unsigned *flags)
{
    grpc_call *c = (grpc_call *)s;
    unsigned f = 0;
    ssize_t r;

    *flags = 0;
    if (c->server && c->finished)
        return STRATA_ERR_STATE;
    refresh(c);
    if (c->status >= 0 && !c->zmsg)
        return end_code(c);
    if (c->server && c->finishing)  /* its finish waits for room */
        return STRATA_ERR_STATE;
    if (c->server && c->half_closed)
        return STRATA_EOF;
    if (!c->server && !c->head_seen && (r = take_head(c)) != 0)
        return r;
    for (;;) {
        if (c->zmsg)
            return deliver_zmsg(c, buf, len, flags);
        if (c->zrx)     /* a compressed message gathered in part */
            r = gather_compressed(c, buf, 0, STRATA_MSG_COMPRESSED);
        else {
            r = strata_recv(&c->lp.base, buf, len, &f);
            if (r >= 0 && !(f & STRATA_MSG_COMPRESSED)) {
                *flags = f & STRATA_MSG_END;
                return r;
            }
            if (r >= 0)
                r = gather_compressed(c, buf, (size_t)r, f);
        }
        if (r == 0)
            r = inflate_zrx(c);
        if (r < 0)
            return c->ended_here ? end_code(c) : recv_failed(c, r);
    }
}

/* ---- send ------------------------------------------------------------- */

static ssize_t call_sendv(strata_stream *s, const struct iovec *iov, int n,
                          unsigned flags)
{
    grpc_call *c = (grpc_call *)s;
    size_t total = strata_iov_len(iov, n);
    int r;

    if (c->ended_here)
        return STRATA_ERR_GRPC;
    if (c->status >= 0 || c->finishing)
        return STRATA_ERR_STATE;
    if (total == (size_t)-1 || (flags & ~STRATA_MSG_END))
        return STRATA_ERR_ARG;
    if (total > c->max_send && !c->lp.tx_in_record)
        return STRATA_ERR_TOO_BIG;
    if (c->server && !c->head_sent && (r = strata_grpc_send_head(s, NULL, 0)))
        return r;
    if (c->gzip_tx)
        return send_compressed(c, iov, n, total, flags);
    return strata_sendv(&c->lp.base, iov, n, flags);
}

static int call_flush(strata_stream *s)
{
    grpc_call *c = (grpc_call *)s;
    int r = push_zout(c);

    return r ? r : strata_flush(h2s(c));
}

/* Client: half-close. Server: end the call with OK. */
static int call_shutdown(strata_stream *s)
{
    grpc_call *c = (grpc_call *)s;
    int r;

    if (c->server)
        return strata_grpc_finish(s, STRATA_GRPC_OK, NULL, NULL, 0);
    if (c->ended_here)
        return STRATA_ERR_GRPC;
    if (c->status >= 0 || has_trailers(c))
        return 0;   /* the server ended the call: nothing to half-close */
    if ((r = push_zout(c)) != 0)
        return r;
    if (c->ztx_len || c->lp.tx_in_record)
        return STRATA_ERR_STATE;    /* a message was left half-sent */
    return strata_shutdown(h2s(c));
}

static unsigned call_poll(strata_stream *s, unsigned events)
{
    grpc_call *c = (grpc_call *)s;
    unsigned r;

    if (c->ended_here)
        return events | STRATA_POLL_ERR;
    if ((events & STRATA_POLL_IN) && c->zmsg)
        return STRATA_POLL_IN;
    r = strata_poll(&c->lp.base, events);
    if ((events & STRATA_POLL_IN) && strata_buffered_len(&c->in))
        r |= STRATA_POLL_IN;
    return r;
}

static unsigned call_wants(strata_stream *s)
{
    return strata_wants(h2s((grpc_call *)s));
}

static int call_fd(strata_stream *s)
{
    return strata_fd(h2s((grpc_call *)s));
}

static void call_close(strata_stream *s)
{
    grpc_call *c = (grpc_call *)s;
    md_dec *d;

    while ((d = c->decoded)) {
        c->decoded = d->next;
        strata_dealloc(A(c), d);
    }
    strata_dealloc(A(c), c->message);
    strata_dealloc(A(c), c->fin_message);
    strata_dealloc(A(c), c->zrx);
    strata_dealloc(A(c), c->zmsg);
    strata_dealloc(A(c), c->ztx);
    strata_dealloc(A(c), c->zout);
    /* the h2 stream goes next (owned lower): reset unless it ended */
}

static const strata_stream_ops grpc_ops = {
    "grpc", call_recv, call_sendv, call_flush, call_shutdown, call_poll,
    call_wants, call_fd, call_close,
};

/* ---- calls on a call ------------------------------------------------- */

/* The trailers could not go: the stream was reset or the connection
 * failed. The call ends with what the transport says. */
static void finish_failed(grpc_call *c, int r)
{
    char msg[64];

    refresh(c);
    snprintf(msg, sizeof msg, "transport failed: %s", strata_strerror(r));
    set_end(c, STRATA_GRPC_UNAVAILABLE, msg);
}

int strata_grpc_finish(strata_stream *call, int status, const char *message,
                       const strata_grpc_md *md, size_t n)
{
    grpc_call *c = as_call(call);
    int r;

    if (!c || !c->server || status < 0)
        return STRATA_ERR_ARG;
    refresh(c);
    if (c->status >= 0)
        return STRATA_ERR_STATE;
    if (c->finishing) {         /* a retry after NEED */
        r = strata_h2_send_trailers(h2s(c), NULL, 0);
    } else {
        if ((r = push_zout(c)) != 0)
            return r;
        if (c->ztx_len || c->lp.tx_in_record)
            return STRATA_ERR_STATE;
        strata_dealloc(A(c), c->fin_message);
        c->fin_message = message && message[0] ? grpc_dup(A(c), message)
                                               : NULL;
        c->fin_status = status;
        r = send_trailers(c, status, message, md, n);
    }
    if (r == 0) {
        set_end(c, c->fin_status, c->fin_message);
        c->finished = 1;
    } else if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE) {
        finish_failed(c, r);    /* the call is over either way */
    }
    return r;
}

int strata_grpc_head(strata_stream *call)
{
    grpc_call *c = as_call(call);

    if (!c || c->server)
        return STRATA_ERR_ARG;
    if (c->head_seen)
        return 0;
    if (c->status >= 0)
        return end_code(c);
    return take_head(c);
}

int strata_grpc_cancel(strata_stream *call)
{
    grpc_call *c = as_call(call);

    if (!c)
        return STRATA_ERR_ARG;
    if (c->status >= 0)
        return 0;
    (void)strata_h2_reset(h2s(c), STRATA_H2_CANCEL);
    set_end(c, STRATA_GRPC_CANCELLED, "call cancelled");
    c->ended_here = 1;
    return 0;
}

int strata_grpc_expire(strata_stream *call)
{
    grpc_call *c = as_call(call);

    if (!c)
        return STRATA_ERR_ARG;
    if (c->status >= 0)
        return 0;
    if (c->server && !c->finishing) {
        c->fin_status = STRATA_GRPC_DEADLINE_EXCEEDED;
        (void)send_trailers(c, STRATA_GRPC_DEADLINE_EXCEEDED,
                            "deadline exceeded", NULL, 0);
    } else if (!c->server) {
        (void)strata_h2_reset(h2s(c), STRATA_H2_CANCEL);
    }
    set_end(c, STRATA_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    c->ended_here = 1;
    return 0;
}

long strata_grpc_timeout_ms(strata_stream *call)
{
    grpc_call *c = as_call(call);

    return c ? c->timeout_ms : -1;
}

int strata_grpc_status(strata_stream *call)
{
    grpc_call *c = as_call(call);

    if (!c)
        return -1;
    refresh(c);
    return c->status;
}

const char *strata_grpc_message(strata_stream *call)
{
    grpc_call *c = as_call(call);

    if (!c)
        return NULL;
    refresh(c);
    return c->status >= 0 ? (c->message ? c->message : "") : NULL;
}

static const void *md_value(grpc_call *c, const strata_h2_header *l,
                            size_t n, const char *key, size_t *len)
{
    const char *v = list_get(l, n, key);
    uint8_t *bin;
    size_t bl;
    md_dec *d;

    if (!v)
        return NULL;
    if (!grpc_key_is_bin(key)) {
        if (len)
            *len = strlen(v);
        return v;
    }
    /* decoded once: asking again must not grow the call's memory */
    for (d = c->decoded; d; d = d->next)
        if (d->src == v) {
            if (len)
                *len = d->len;
            return d->data;
        }
    if (grpc_b64_decode(A(c), v, &bin, &bl) != 0)
        return NULL;
    d = strata_alloc(A(c), sizeof *d + bl + 1);
    if (d) {
        memcpy(d->data, bin, bl);
        d->data[bl] = 0;
        d->len = bl;
        d->src = v;
        d->next = c->decoded;
        c->decoded = d;
        if (len)
            *len = bl;
    }
    strata_dealloc(A(c), bin);
    return d ? d->data : NULL;
}

const void *strata_grpc_md_get(strata_stream *call, const char *key,
                               size_t *len)
{
    grpc_call *c = as_call(call);
    size_t n = 0;
    const strata_h2_header *l;

    if (!c || !key)
        return NULL;
    l = strata_h2_head(h2s(c), &n);
    return md_value(c, l, n, key, len);
}

const void *strata_grpc_trailer_get(strata_stream *call, const char *key,
                                    size_t *len)
{
    grpc_call *c = as_call(call);
    size_t n = 0;
    const strata_h2_header *l;

    if (!c || !key || c->server)
        return NULL;
    l = strata_h2_trailers(h2s(c), &n);
    if (!l && strata_h2_status(h2s(c)) && strata_h2_get(h2s(c), "grpc-status"))
        l = strata_h2_head(h2s(c), &n);     /* trailers-only */
    return md_value(c, l, n, key, len);
}

strata_stream *strata_grpc_h2_stream(strata_stream *call)
{
    grpc_call *c = as_call(call);

    return c ? h2s(c) : NULL;
}

void strata_grpc_set_user(strata_stream *call, void *user)
{
    grpc_call *c = as_call(call);

    if (c)
        c->user = user;
}

void *strata_grpc_user(strata_stream *call)
{
    grpc_call *c = as_call(call);

    return c ? c->user : NULL;
}
