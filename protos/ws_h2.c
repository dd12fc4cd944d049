/* strata ws_h2: the RFC 8441 handshake on an HTTP/2 stream, then the ws
 * layer in its no_handshake mode on top (protos/ws_h2.h). */
#include <stdio.h>
#include <string.h>

#include "ws_h2.h"
#include "ws_internal.h"

#define EXT_MAX 256

/* Copy a string with the stack's allocator. */
static char *dup_str(const strata_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = strata_alloc(a, n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* "a, b, c" of a NULL-terminated list, into buf. */
static int join_list(const char *const *p, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (; p && *p; p++) {
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", *p);

        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

int strata_ws_h2_open(strata_h2 *h, const strata_ws_opts *o,
                      const char *scheme, strata_stream **stream)
{
    strata_h2_header head[10];
    char protos[512], ext[EXT_MAX];
    size_t n = 0;

    if (!h || !o || !o->host || !stream)
        return STRATA_ERR_ARG;
    head[n].name = ":method";   head[n++].value = "CONNECT";
    head[n].name = ":protocol"; head[n++].value = "websocket";
    head[n].name = ":scheme";   head[n++].value = scheme ? scheme : "https";
    head[n].name = ":path";     head[n++].value = o->path ? o->path : "/";
    head[n].name = ":authority"; head[n++].value = o->host;
    head[n].name = "sec-websocket-version"; head[n++].value = "13";
    if (o->protocols && o->protocols[0]) {
        if (join_list(o->protocols, protos, sizeof protos) != 0)
            return STRATA_ERR_ARG;
        head[n].name = "sec-websocket-protocol";
        head[n++].value = protos;
    }
    if (o->deflate.enable) {
        if (ws_deflate_offer(&o->deflate, ext, sizeof ext) < 0)
            return STRATA_ERR_ARG;
        head[n].name = "sec-websocket-extensions";
        head[n++].value = ext;
    }
    if (o->origin) {
        head[n].name = "origin";
        head[n++].value = o->origin;
    }
    return strata_h2_request(h, head, n, 0, stream);
}

/* The ws layer on a stream whose handshake is done; protocol may be NULL. */
static int make_ws(strata_stream *stream, const strata_ws_opts *o, int role,
                   const char *agreed, const char *protocol,
                   const strata_allocator *alloc, strata_stream **ws)
{
    strata_ws_opts wo = *o;
    strata_ws *w;

    wo.role = role;
    wo.no_handshake = 1;
    wo.deflate_agreed = agreed;
    *ws = strata_ws_new(stream, &wo, alloc);
    if (!*ws)
        return STRATA_ERR_NOMEM;
    w = (strata_ws *)*ws;
    w->http_status = 200;
    if (protocol && !(w->protocol = dup_str(alloc, protocol))) {
        strata_free(*ws);   /* it owns the stream now: take it back */
        *ws = NULL;
        return STRATA_ERR_NOMEM;
    }
    return 0;
}

/* Is `p` one of the NULL-terminated list? */
static int in_list(const char *const *list, const char *p, size_t len)
{
    for (; list && *list; list++)
        if (strlen(*list) == len && memcmp(*list, p, len) == 0)
            return 1;
    return 0;
}

int strata_ws_h2_client(strata_stream *stream, const strata_ws_opts *o,
                        const strata_allocator *alloc, strata_stream **ws)
{
    ws_deflate_params p;
    const char *ext, *proto;
    int r;

    if (!stream || !o || !ws)
        return STRATA_ERR_ARG;
    *ws = NULL;
    if ((r = strata_h2_response_head(stream)) != 0)
        return r;
    if (strata_h2_status(stream) != 200)
        return STRATA_ERR_PROTO;
    proto = strata_h2_get(stream, "sec-websocket-protocol");
    if (proto && !in_list(o->protocols, proto, strlen(proto)))
        return STRATA_ERR_PROTO;    /* a protocol we did not offer */
    ext = strata_h2_get(stream, "sec-websocket-extensions");
    if (ext && (!o->deflate.enable
                || ws_deflate_confirm(&o->deflate, ext, &p) != 0))
        return STRATA_ERR_PROTO;    /* an extension we did not offer */
    return make_ws(stream, o, STRATA_WS_CLIENT, ext, proto, alloc, ws);
}

/* The first of the client's offered protocols that we have. */
static const char *pick(const strata_ws_opts *o, const char *offered,
                        char *buf, size_t cap)
{
    while (offered && *offered) {
        const char *e = strchr(offered, ',');
        size_t l;

        if (!e)
            e = offered + strlen(offered);
        while (offered < e && (*offered == ' ' || *offered == '\t'))
            offered++;
        l = (size_t)(e - offered);
        while (l > 0 && (offered[l - 1] == ' ' || offered[l - 1] == '\t'))
            l--;
        if (l < cap && in_list(o->protocols, offered, l)) {
            memcpy(buf, offered, l);
            buf[l] = '\0';
            return buf;
        }
        offered = *e == ',' ? e + 1 : e;
    }
    return NULL;
}

/* Is name one of the comma-separated list? */
static int offered(const char *list, const char *name)
{
    size_t l = strlen(name);

    while (list && *list) {
        const char *e = strchr(list, ',');

        if (!e)
            e = list + strlen(list);
        while (list < e && (*list == ' ' || *list == '\t'))
            list++;
        if ((size_t)(e - list) >= l && memcmp(list, name, l) == 0) {
            const char *q = list + l;

            while (q < e && (*q == ' ' || *q == '\t'))
                q++;
            if (q == e)
                return 1;
        }
        list = *e == ',' ? e + 1 : e;
    }
    return 0;
}

/* Refuse with a status; the stream ends there. */
static int refuse(strata_stream *stream, int status)
{
    int r = strata_h2_respond(stream, status, NULL, 0, STRATA_H2_END_STREAM);

    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ? r
                                                           : STRATA_ERR_PROTO;
}

int strata_ws_h2_accept(strata_stream *stream, const strata_ws_opts *o,
                        const strata_allocator *alloc, strata_stream **ws)
{
    strata_h2_header out[2];
    strata_ws_request req;
    strata_ws_response resp;
    ws_deflate_params p;
    char ext[EXT_MAX], pbuf[128];
    const char *method, *protocol, *version, *offers;
    size_t n = 0;
    int r, z = 0;

    if (!stream || !o || !ws)
        return STRATA_ERR_ARG;
    *ws = NULL;
    method = strata_h2_get(stream, ":method");
    protocol = strata_h2_get(stream, ":protocol");
    version = strata_h2_get(stream, "sec-websocket-version");
    if (!method || strcmp(method, "CONNECT") != 0 || !protocol)
        return refuse(stream, 400);
    if (strcmp(protocol, "websocket") != 0)
        return refuse(stream, 501);
    if (!version || strcmp(version, "13") != 0)
        return refuse(stream, 400);
    memset(&req, 0, sizeof req);
    req.path = strata_h2_get(stream, ":path");
    req.host = strata_h2_get(stream, ":authority");
    req.origin = strata_h2_get(stream, "origin");
    req.protocols = strata_h2_get(stream, "sec-websocket-protocol");
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    resp.protocol = pick(o, req.protocols, pbuf, sizeof pbuf);
    if (o->accept) {
        /* the HTTP/1.1 callback's 101 means "accept" here too; a protocol
         * it names must be one the client offered */
        resp.status = 101;
        resp.protocol = NULL;
        if (o->accept(o->accept_ud, &req, &resp) != 0 && resp.status == 101)
            resp.status = 403;
        if (resp.status != 101)
            return refuse(stream, resp.status);
        if (resp.protocol && !offered(req.protocols, resp.protocol))
            return refuse(stream, 500);
    }
    if (resp.protocol) {
        out[n].name = "sec-websocket-protocol";
        out[n++].value = resp.protocol;
    }
    offers = strata_h2_get(stream, "sec-websocket-extensions");
    if (o->deflate.enable && offers) {
        z = ws_deflate_accept(&o->deflate, offers, ext, sizeof ext, &p);
        if (z < 0)
            return refuse(stream, 400);
        if (z == 1) {
            out[n].name = "sec-websocket-extensions";
            out[n++].value = ext;
        }
    }
    r = strata_h2_respond(stream, 200, out, n, 0);
    if (r != 0)
        return r;
    return make_ws(stream, o, STRATA_WS_SERVER, z == 1 ? ext : NULL,
                   resp.protocol, alloc, ws);
}
