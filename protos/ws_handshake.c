/* The WebSocket opening handshake (RFC 6455 4) over HTTP/1.1, both sides.
 *
 * The heads are pulled line by line from the same buffered stream the
 * frames come from (protos/http1.h), so bytes the peer sent behind its
 * head stay there as the first frame bytes. The head we send is formatted
 * once into hs_out and pushed with strata_send, resuming at its offset
 * after NEED codes.
 *
 * Decisions the header leaves open:
 *  - Options are copied when the layer is made (the server's protocol list
 *    and extra headers into the handshake's own storage; the client's
 *    request is formatted at once), so the caller's strings need not
 *    outlive strata_ws_new.
 *  - Memory: the server keeps the request's text (max_head bytes) and the
 *    lists joined from it for strata_ws_request_of while the stream lives;
 *    the head it sends is freed once out. A client frees all of it when the
 *    handshake is done.
 *  - Server: a request that is not GET, not HTTP/1.1, lacks Host, the
 *    Upgrade/Connection tokens or a Sec-WebSocket-Key of 16 base64 bytes is
 *    refused with 400; a version other than 13 (or none) with 426 and
 *    "Sec-WebSocket-Version: 13"; a head over max_head with 431. Each
 *    refusal carries Content-Length: 0 and Connection: close, is sent
 *    whole (NEED codes until it is), then the handshake fails with
 *    STRATA_ERR_PROTO. A malformed Sec-WebSocket-Extensions is a 400.
 *  - The accept callback refuses by returning non-zero (403 unless it set
 *    another status) or by setting a status other than 101 (a status
 *    outside 200..599 becomes 500). A protocol it picks that the client
 *    did not offer is the application's mistake: 500.
 *  - Client: a response other than 101, without the Upgrade/Connection
 *    tokens, with a wrong Sec-WebSocket-Accept or a protocol not offered
 *    fails with STRATA_ERR_PROTO. An extension answer we cannot take
 *    (not offered, unknown, malformed) fails it too, after a close frame
 *    1010 (the server already thinks the connection open).
 *  - Subprotocol names compare exactly (case-sensitive), as browsers do.
 *  - SHA-1 is opts.sha1 when given, else wolfCrypt's; base64 is wolfCrypt's.
 *    The embedded profile (STRATA_EMBEDDED) has no wolfCrypt: SHA-1 is the
 *    hook's only, and base64 of the 16-byte nonce and the 20-byte digest
 *    is done here. Memory comes through ws_take (caller storage or the
 *    allocator).
 */
#ifndef STRATA_EMBEDDED
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#endif

#include "ws_internal.h"

#include <string.h>

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define GUID_LEN 36
#define KEY_MAX 128     /* longest key strata_ws_accept_key takes */
#define EXT_MAX 256     /* a permessage-deflate header value */

/* ---- small helpers ---------------------------------------------------- */

static int hs_fail(strata_ws *w, int status)
{
    w->hs = WS_HS_FAILED;
    w->hs_status = status;
    return status;
}

/* Whether the comma-separated list holds the n bytes at s as an item. */
static int list_has(const char *list, const char *s, size_t n)
{
    size_t l;
    const char *item;

    while ((item = strata_http1_list_next(&list, &l)) != NULL)
        if (l == n && memcmp(item, s, n) == 0)
            return 1;
    return 0;
}

/* Strings are built at the end of hs_aux: aux_add puts s and a NUL there,
 * over the NUL of the last string when `more` (to lengthen it); 0 when
 * that does not fit, and nothing is put. */
static int aux_add(strata_ws *w, const char *s, int more)
{
    size_t at = w->hs_aux_len - (more ? 1 : 0), n = strlen(s) + 1;

    if (n > w->hs_aux_cap - at)
        return 0;
    memcpy(w->hs_aux + at, s, n);
    w->hs_aux_len = at + n;
    return 1;
}

/* Every value of header `name`, joined with ", " into hs_aux (they come
 * from a head of at most max_head bytes, which hs_aux can hold), or NULL
 * when the header is absent. */
static const char *join(strata_ws *w, const char *name)
{
    size_t start = w->hs_aux_len, i = 0;
    const char *v;

    while ((v = strata_http1_next_value(&w->head, name, &i)) != NULL) {
        int more = w->hs_aux_len != start;

        if ((more && !aux_add(w, ", ", 1)) || !aux_add(w, v, more)) {
            w->hs_aux_len = start;
            return NULL;
        }
    }
    return w->hs_aux_len != start ? w->hs_aux + start : NULL;
}

/* The negotiated protocol, n bytes at s, copied into memory of the
 * layer's own: 0 or STRATA_ERR_NOMEM. */
static int keep_protocol(strata_ws *w, const char *s, size_t n)
{
    char *p = ws_take(w, n + 1);

    if (p == NULL)
        return STRATA_ERR_NOMEM;
    memcpy(p, s, n);
    p[n] = '\0';
    w->protocol = p;
    return 0;
}

/* ---- SHA-1 and base64 -------------------------------------------------- */

typedef int (*sha1_fn)(void *ud, const uint8_t *data, size_t len,
                       uint8_t out[20]);

static const char b64_abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#ifdef STRATA_EMBEDDED
/* No wolfCrypt: only the caller's hook (strata_ws_init asks for it). */
static int sha1(sha1_fn hook, void *ud, const uint8_t *p, size_t n,
                uint8_t out[20])
{
    return hook != NULL && hook(ud, p, n, out) == 0 ? 0 : STRATA_ERR_ARG;
}

/* base64 (RFC 4648, padded) of n bytes into out (4 * ceil(n / 3) + NUL):
 * only ever 16 or 20 bytes here. Six bits out whenever `bits` hold them;
 * the last symbol's bits padded with zeros, then '=' to a multiple of 4. */
static int b64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    uint32_t acc = 0; /* only its low `bits` bits matter */
    unsigned bits = 0;
    size_t i, o = 0;

    if ((n + 2) / 3 * 4 + 1 > cap)
        return STRATA_ERR_ARG;
    for (i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = b64_abc[(acc >> (bits - 6)) & 63];
    }
    if (bits > 0)
        out[o++] = b64_abc[(acc << (6 - bits)) & 63];
    while (o % 4 != 0)
        out[o++] = '=';
    out[o] = '\0';
    return (int)o;
}
#else
static int sha1(sha1_fn hook, void *ud, const uint8_t *p, size_t n,
                uint8_t out[20])
{
    if (hook != NULL)
        return hook(ud, p, n, out) == 0 ? 0 : STRATA_ERR_ARG;
    return wc_ShaHash(p, (word32)n, out) == 0 ? 0 : STRATA_ERR_ARG;
}

static int b64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    word32 olen = (word32)cap;

    if (Base64_Encode_NoNl(in, (word32)n, (byte *)out, &olen) != 0 ||
        olen >= cap)
        return STRATA_ERR_ARG;
    out[olen] = '\0';
    return (int)olen;
}
#endif

/* ---- Sec-WebSocket-Accept ---------------------------------------------- */

static int accept_key(sha1_fn hook, void *ud, const char *key, char out[29])
{
    uint8_t buf[KEY_MAX + GUID_LEN], hash[20];
    const char *end;
    size_t n;

    if (key == NULL || out == NULL ||
        (end = memchr(key, '\0', KEY_MAX + 1)) == NULL || end == key)
        return STRATA_ERR_ARG;
    n = (size_t)(end - key);
    memcpy(buf, key, n);
    memcpy(buf + n, GUID, GUID_LEN);
    if (sha1(hook, ud, buf, n + GUID_LEN, hash) != 0 ||
        b64(hash, sizeof hash, out, 29) != 28)
        return STRATA_ERR_ARG;
    return 0;
}

#ifndef STRATA_EMBEDDED
int strata_ws_accept_key(const char *key, char out[29])
{
    return accept_key(NULL, NULL, key, out);
}
#endif

/* base64 of 16 bytes: 22 symbols and "==" (RFC 6455 4.1, item 7). */
static int key_ok(const char *k)
{
    return strspn(k, b64_abc) == 22 && strcmp(k + 22, "==") == 0;
}

/* ---- set-up ------------------------------------------------------------ */

static size_t list_size(const char *const *p)
{
    size_t n = 1;

    for (; p != NULL && *p != NULL; p++)
        n += strlen(*p) + 2;
    return n;
}

static int protocols_ok(const char *const *p)
{
    for (; p != NULL && *p != NULL; p++)
        if (!strata_http1_is_token(*p))
            return 0;
    return 1;
}

/* ours as "a, b" (the client's header value; what a server matches the
 * client's offers against), or NULL; list_size made room for it */
static const char *put_protocols(strata_ws *w, const char *const *p)
{
    const char *start = w->hs_aux + w->hs_aux_len;
    int more = 0;

    if (p == NULL || *p == NULL)
        return NULL;
    for (; *p != NULL; p++, more = 1) {
        if (more)
            (void)aux_add(w, ", ", 1);
        (void)aux_add(w, *p, more);
    }
    return start;
}

/* The Upgrade and Connection headers of both heads. */
static const char *const upgrade_hd[4] = {"Upgrade", "websocket",
                                          "Connection", "Upgrade"};

static int send_state(strata_ws *w, ssize_t len, int next)
{
    if (len < 0)
        return (int)len == STRATA_ERR_TOO_BIG ? STRATA_ERR_ARG : (int)len;
    w->hs_out_len = (size_t)len;
    w->hs_out_off = 0;
    w->hs = next;
    return 0;
}

static int client_request(strata_ws *w, const strata_ws_opts *o)
{
    uint8_t nonce[16];
    char key[32], ext[EXT_MAX];
    const char *hd[20], **q = hd, *protos;
    int r;

    if ((r = ws_random(w, nonce, sizeof nonce)) < 0)
        return r;
    if (b64(nonce, sizeof nonce, key, sizeof key) != 24)
        return STRATA_ERR_ARG;
    if ((r = accept_key(w->sha1, w->sha1_ud, key, w->hs_accept)) < 0)
        return r;
    *q++ = "Host";
    *q++ = o->host;
    memcpy(q, upgrade_hd, sizeof upgrade_hd);
    q += 4;
    *q++ = "Sec-WebSocket-Key";
    *q++ = key;
    *q++ = "Sec-WebSocket-Version";
    *q++ = "13";
    if (o->origin != NULL) {
        *q++ = "Origin";
        *q++ = o->origin;
    }
    protos = put_protocols(w, o->protocols);
    w->hs_protocols = protos;
    if (protos != NULL) {
        *q++ = "Sec-WebSocket-Protocol";
        *q++ = protos;
    }
    if (o->deflate.enable) {
        if (ws_deflate_offer(&o->deflate, ext, sizeof ext) < 0)
            return STRATA_ERR_ARG;
        *q++ = "Sec-WebSocket-Extensions";
        *q++ = ext;
    }
    *q = NULL;
    return send_state(w, strata_http1_write_request(
                             w->hs_out, w->max_head, "GET",
                             o->path != NULL ? o->path : "/", hd,
                             o->extra_headers),
                      WS_HS_CLIENT_SEND);
}

static size_t extra_size(const strata_ws_opts *o)
{
    return o->extra_headers != NULL ? strlen(o->extra_headers) + 1 : 0;
}

/* The peer's head, hs_aux, our head, and the negotiated protocol's copy:
 * one of ours, or for a server's callback one of the client's offers. */
size_t ws_handshake_mem(const strata_ws_opts *o, size_t max_head)
{
    size_t ours = list_size(o->protocols);
    size_t proto =
        o->role == STRATA_WS_SERVER && o->accept != NULL ? max_head : ours;

    if (o->no_handshake)
        return 0;
    return 3 * max_head + ours + extra_size(o) + proto;
}

/* A request head the caller read (opts.request), copied to be answered.
 * The embedded profile has no HTTP server to hand one over. */
static int take_request(strata_ws *w, const strata_http1_head *req)
{
#ifdef STRATA_EMBEDDED
    (void)w;
    return req != NULL ? STRATA_ERR_ARG : 0;
#else
    return req != NULL && strata_http1_head_copy(&w->head, req) != 0
               ? STRATA_ERR_ARG
               : 0;
#endif
}

int ws_handshake_init(strata_ws *w, const strata_ws_opts *o)
{
    size_t extra = extra_size(o);
    size_t mem, at;

    if ((o->role == STRATA_WS_CLIENT && o->host == NULL) ||
        !protocols_ok(o->protocols))
        return STRATA_ERR_ARG;
    w->hs_aux_cap = w->max_head + list_size(o->protocols) + extra;
    mem = w->max_head + w->hs_aux_cap;
    w->hs_mem = ws_take(w, mem);
    w->hs_out = ws_take(w, w->max_head);
    if (w->hs_mem == NULL || w->hs_out == NULL)
        return STRATA_ERR_NOMEM;
    w->hs_store = w->hs_mem;
    w->hs_aux = w->hs_mem + w->max_head;
    strata_http1_head_init(&w->head, w->hs_store, w->max_head, 0);
    w->dopts = o->deflate;
    if (o->role == STRATA_WS_CLIENT)
        return client_request(w, o);
    w->accept = o->accept;
    w->accept_ud = o->accept_ud;
    w->hs_protocols = put_protocols(w, o->protocols);
    at = w->hs_aux_len;
    if (o->extra_headers != NULL && aux_add(w, o->extra_headers, 0))
        w->hs_extra = w->hs_aux + at;
    w->hs = WS_HS_SERVER_READ;
    return take_request(w, o->request);
}

void ws_handshake_free(strata_ws *w)
{
    ws_give(w, w->hs_mem);
    ws_give(w, w->hs_out);
    w->hs_mem = w->hs_store = w->hs_aux = w->hs_out = NULL;
    w->hs_protocols = w->hs_extra = NULL;
    w->have_req = 0;
}

/* ---- sending our head ------------------------------------------------- */

/* Push the rest of hs_out, then flush it through a write buffer below:
 * the peer waits for the whole head. 0 when it is out, or a status. */
static int send_head(strata_ws *w)
{
    while (w->hs_out_off < w->hs_out_len) {
        ssize_t r = strata_send(w->out, w->hs_out + w->hs_out_off,
                                w->hs_out_len - w->hs_out_off, 0);

        if (r < 0)
            return (int)r;
        if (r == 0)
            return STRATA_ERR_IO;
        w->hs_out_off += (size_t)r;
    }
    return strata_flush(w->out);
}

int ws_handshake_flush(strata_ws *w)
{
    int r;

    if (w->hs == WS_HS_FAILED)
        return w->hs_status;
    if (w->hs_out == NULL || w->hs_out_len == 0)
        return strata_flush(w->out);
    r = send_head(w);
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE || r == 0
               ? r
               : hs_fail(w, r);
}

/* ---- server ------------------------------------------------------------ */

static int refuse(strata_ws *w, int status, const char *extra)
{
    /* a 426 names the version we speak; every refusal ends the talk */
    static const char *const lines[] = {"Sec-WebSocket-Version", "13",
                                        "Content-Length", "0",
                                        "Connection", "close", NULL};
    const char *const *hd = status == 426 ? lines : lines + 2;
    ssize_t n;

    if (status < 200 || status > 599)
        status = 500;
    w->http_status = status;
    while ((n = strata_http1_write_response(w->hs_out, w->max_head, status,
                                            NULL, hd, extra)) < 0 &&
           extra != NULL)
        extra = NULL; /* the caller's lines are bad: without */
    if (n < 0)
        return hs_fail(w, STRATA_ERR_PROTO);
    return send_state(w, n, WS_HS_SERVER_REFUSE);
}

/* The first of the client's protocols that is one of ours (*n bytes, in
 * the offer: not NUL-terminated), or NULL. */
static const char *pick(const strata_ws *w, const char *offered, size_t *n)
{
    const char *item;

    while ((item = strata_http1_list_next(&offered, n)) != NULL)
        if (list_has(w->hs_protocols, item, *n))
            return item;
    return NULL;
}

/* The Upgrade and Connection tokens both sides ask of the other's head. */
static int upgrade_ok(const strata_http1_head *h)
{
    return strata_http1_has_token(h, "Upgrade", "websocket") &&
           strata_http1_has_token(h, "Connection", "Upgrade");
}

static int request_ok(const strata_http1_head *h, const char *host,
                      const char *key)
{
    return strcmp(h->method, "GET") == 0 &&
           strcmp(h->version, "HTTP/1.1") == 0 && host != NULL &&
           upgrade_ok(h) && key != NULL && key_ok(key);
}

/* Both extra header sets in one string for the writer. */
static const char *extras(strata_ws *w, const char *theirs)
{
    const char *start = w->hs_aux + w->hs_aux_len;

    if (theirs == NULL || *theirs == '\0')
        return w->hs_extra;
    if (w->hs_extra == NULL)
        return theirs;
    /* on failure, the refusal that follows needs hs_aux no more */
    return aux_add(w, w->hs_extra, 0) && aux_add(w, theirs, 1) ? start
                                                                : NULL;
}

static int accept_101(strata_ws *w, const char *key, const char *theirs,
                      const char *ext)
{
    const char *hd[12], **q = hd;
    char accept[29];
    const char *extra = extras(w, theirs);
    ssize_t n;

    if (accept_key(w->sha1, w->sha1_ud, key, accept) != 0 ||
        (theirs != NULL && extra == NULL))
        return refuse(w, 500, NULL);
    memcpy(q, upgrade_hd, sizeof upgrade_hd);
    q += 4;
    *q++ = "Sec-WebSocket-Accept";
    *q++ = accept;
    if (w->protocol != NULL) {
        *q++ = "Sec-WebSocket-Protocol";
        *q++ = w->protocol;
    }
    if (ext != NULL) {
        *q++ = "Sec-WebSocket-Extensions";
        *q++ = ext;
    }
    *q = NULL;
    n = strata_http1_write_response(w->hs_out, w->max_head, 101, NULL, hd,
                                    extra);
    if (n < 0)
        return refuse(w, 500, NULL);
    w->http_status = 101;
    return send_state(w, n, WS_HS_SERVER_SEND);
}

/* A whole request head is in: refuse it, or ask the application (if it
 * gave a callback) and accept. */
static int server_answer(strata_ws *w)
{
    const strata_http1_head *h = &w->head;
    const char *ver = strata_http1_get(h, "Sec-WebSocket-Version");
    const char *key = strata_http1_get(h, "Sec-WebSocket-Key");
    const char *offers;
    char ext[EXT_MAX];
    strata_ws_response resp = {101, NULL, NULL};
    ws_deflate_params p;
    size_t n = 0;
    int use_z = 0;

    /* the Host check's value; req is seen only once have_req is set */
    w->req.host = strata_http1_get(h, "Host");
    if (!request_ok(h, w->req.host, key))
        return refuse(w, 400, NULL);
    if (ver == NULL || strcmp(ver, "13") != 0)
        return refuse(w, 426, NULL);
    w->req.head = h;
    w->req.path = h->target;
    w->req.origin = strata_http1_get(h, "Origin");
    w->req.protocols = join(w, "Sec-WebSocket-Protocol");
    w->have_req = 1;
    offers = join(w, "Sec-WebSocket-Extensions");
    if (w->dopts.enable && offers != NULL) {
        use_z = ws_deflate_accept(&w->dopts, offers, ext, sizeof ext, &p);
        if (use_z < 0)
            return refuse(w, 400, NULL);
    }
    if (w->accept == NULL) {
        resp.protocol = pick(w, w->req.protocols, &n);
    } else {
        if (w->accept(w->accept_ud, &w->req, &resp) != 0 &&
            resp.status == 101)
            resp.status = 403;
        if (resp.status != 101)
            return refuse(w, resp.status, resp.headers);
        if (resp.protocol != NULL) {
            n = strlen(resp.protocol);
            if (!list_has(w->req.protocols, resp.protocol, n))
                return refuse(w, 500, NULL);
        }
    }
    if (resp.protocol != NULL && keep_protocol(w, resp.protocol, n) != 0)
        return hs_fail(w, STRATA_ERR_NOMEM);
    if (use_z && ws_use_deflate(w, &p) < 0)
        return hs_fail(w, STRATA_ERR_NOMEM);
    return accept_101(w, key, resp.headers, use_z ? ext : NULL);
}

static int server_read(strata_ws *w)
{
    /* a head handed over (opts.request) is done already */
    int r = w->head.done > 0 ? 0 : strata_http1_read_request(w->in, &w->head);

    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r == STRATA_ERR_TOO_BIG)
        return refuse(w, 431, NULL);
    if (r == STRATA_ERR_PROTO)
        return refuse(w, 400, NULL);
    if (r < 0) /* the peer left before a byte, or the transport failed */
        return hs_fail(w, r == STRATA_EOF ? STRATA_ERR_PROTO : r);
    return server_answer(w);
}

/* ---- client ------------------------------------------------------------ */

static int client_check(strata_ws *w)
{
    const strata_http1_head *h = &w->head;
    const char *proto = strata_http1_get(h, "Sec-WebSocket-Protocol");
    const char *acc = strata_http1_get(h, "Sec-WebSocket-Accept");
    size_t n;

    w->http_status = h->status;
    if (h->status != 101 || !upgrade_ok(h) || acc == NULL ||
        strcmp(acc, w->hs_accept) != 0)
        return STRATA_ERR_PROTO;
    if (proto == NULL)
        return 0;
    /* one of ours exactly (they are tokens, so it is one) */
    n = strlen(proto);
    if (!list_has(w->hs_protocols, proto, n))
        return STRATA_ERR_PROTO;
    return keep_protocol(w, proto, n);
}

/* An answer to our extension offer we cannot take: the server believes
 * the connection open, so tell it why we leave (1010). */
static int refuse_extensions(strata_ws *w)
{
    w->error_code = STRATA_WS_EXTENSION;
    ws_queue_close(w, STRATA_WS_EXTENSION, NULL);
    hs_fail(w, STRATA_ERR_PROTO);
    return ws_handshake_step(w);
}

static int client_read(strata_ws *w)
{
    const char *exts;
    ws_deflate_params p;
    int r = strata_http1_read_response(w->in, &w->head);

    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r < 0)
        return hs_fail(w, r == STRATA_EOF ? STRATA_ERR_PROTO : r);
    if ((r = client_check(w)) < 0)
        return hs_fail(w, r);
    exts = join(w, "Sec-WebSocket-Extensions");
    if (exts != NULL) {
        if (!w->dopts.enable || ws_deflate_confirm(&w->dopts, exts, &p) != 0)
            return refuse_extensions(w);
        if (ws_use_deflate(w, &p) < 0)
            return hs_fail(w, STRATA_ERR_NOMEM);
    }
    w->hs = WS_HS_DONE;
    ws_handshake_free(w); /* a client keeps nothing of the heads */
    return 0;
}

/* ---- the state machine ---------------------------------------------- */

static int failed(strata_ws *w)
{
    if (w->close_queued || w->ctl_is_close) {
        int r = ws_push_pending(w);

        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return r;
    }
    return w->hs_status;
}

/* A head went out: go on to `next`, or fail on a transport error. */
static int sent(strata_ws *w, int next)
{
    int r = send_head(w);

    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r < 0)
        return hs_fail(w, r);
    ws_give(w, w->hs_out);
    w->hs_out = NULL;
    w->hs_out_len = w->hs_out_off = 0;
    w->hs = next;
    return 0;
}

int ws_handshake_step(strata_ws *w)
{
    int r = 0;

    while (r == 0) {
        switch (w->hs) {
        case WS_HS_DONE:
            return 0;
        case WS_HS_CLIENT_SEND:
            r = sent(w, WS_HS_CLIENT_READ);
            break;
        case WS_HS_CLIENT_READ:
            r = client_read(w);
            break;
        case WS_HS_SERVER_READ:
            r = server_read(w);
            break;
        case WS_HS_SERVER_SEND:
            r = sent(w, WS_HS_DONE);
            break;
        case WS_HS_SERVER_REFUSE:
            r = sent(w, WS_HS_FAILED);
            if (r == 0)
                r = hs_fail(w, STRATA_ERR_PROTO);
            break;
        default:
            return failed(w);
        }
    }
    return r;
}

int strata_ws_handshake(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? ws_handshake_step(w) : STRATA_ERR_ARG;
}

int strata_ws_status(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? w->http_status : 0;
}

const char *strata_ws_protocol(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? w->protocol : NULL;
}

const strata_ws_request *strata_ws_request_of(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    /* only a server sets have_req */
    return w != NULL && w->have_req ? &w->req : NULL;
}
