/* URI stacks: parse "LAYERS://HOST:PORT[/PATH]" and build the stack it
 * names. The parser only checks and splits the text; building is separate
 * so a server can put the same layers on every accepted socket. */
#include "uri.h"

#include "../protos/lenprefix.h"
#include "../protos/line.h"
#include "../streams/socket.h"
#include "../streams/wbuf.h"
#ifdef STRATA_WITH_WS
#include "../protos/ws.h"
#endif
#ifdef STRATA_WITH_TLS
#include "../protos/tls.h"
#endif
#ifdef STRATA_WITH_H2
#include "../protos/h2.h"
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
#include "../protos/ws_h2.h"
#endif
#ifdef STRATA_WITH_GRPC
#include "../protos/grpc.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define LINES_MAX_LEN (64u * 1024u)
#define LEN_MAX_LEN (16u * 1024u * 1024u)
#define LISTEN_BACKLOG 128

/* Layers that later versions (or other builds) add: refused with their own
 * message so a user learns the name is right and the build is what lacks
 * it. "wss" is the alias of ws+tls: known only when both are built. */
static const char *const reserved_layers[] = {
#ifndef STRATA_WITH_WS
    "ws",
#endif
#ifndef STRATA_WITH_TLS
    "tls",
#endif
#if !defined(STRATA_WITH_WS) || !defined(STRATA_WITH_TLS)
    "wss",
#endif
#ifndef STRATA_WITH_H2
    "h2",
#endif
#ifndef STRATA_WITH_GRPC
    "grpc",
#endif
    "-"     /* keeps the list non-empty; never a layer name */
};

#ifdef STRATA_WITH_WS
#define WS_NAME ", ws"
#else
#define WS_NAME ""
#endif
#ifdef STRATA_WITH_TLS
#define TLS_NAME ", tls"
#else
#define TLS_NAME ""
#endif
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
#define WSS_NAME ", wss"
#else
#define WSS_NAME ""
#endif
#ifdef STRATA_WITH_H2
#define H2_NAME ", h2"
#else
#define H2_NAME ""
#endif
#ifdef STRATA_WITH_GRPC
#define GRPC_NAME ", grpc"
#else
#define GRPC_NAME ""
#endif
#define KNOWN_NAMES "tcp, lines, len" WS_NAME TLS_NAME WSS_NAME H2_NAME \
                    GRPC_NAME

/* Returns STRATA_ERR_ARG so a caller can write `return reason(...)`. */
static int reason(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return STRATA_ERR_ARG;
}

static int is_transport(strata_layer_kind k)
{
    return k == STRATA_LAYER_TCP || k == STRATA_LAYER_UNIX;
}

static const char *kind_name(strata_layer_kind k)
{
    switch (k) {
    case STRATA_LAYER_TCP: return "tcp";
    case STRATA_LAYER_UNIX: return "unix";
    case STRATA_LAYER_LINES: return "lines";
    case STRATA_LAYER_LEN: return "len";
    case STRATA_LAYER_WS: return "ws";
    case STRATA_LAYER_TLS: return "tls";
    case STRATA_LAYER_H2: return "h2";
    case STRATA_LAYER_GRPC: return "grpc";
    }
    return "?";
}

/* The kinds this build has. */
static const strata_layer_kind known_kinds[] = {
    STRATA_LAYER_TCP, STRATA_LAYER_UNIX, STRATA_LAYER_LINES,
    STRATA_LAYER_LEN,
#ifdef STRATA_WITH_WS
    STRATA_LAYER_WS,
#endif
#ifdef STRATA_WITH_TLS
    STRATA_LAYER_TLS,
#endif
#ifdef STRATA_WITH_H2
    STRATA_LAYER_H2,
#endif
#ifdef STRATA_WITH_GRPC
    STRATA_LAYER_GRPC,
#endif
};
#define N_KNOWN (sizeof known_kinds / sizeof known_kinds[0])

static int is_known(strata_layer_kind k)
{
    size_t i;

    for (i = 0; i < N_KNOWN; i++)
        if (known_kinds[i] == k)
            return 1;
    return 0;
}

/* One layer name of `len` bytes at `name` into *kind. */
static int parse_layer(const char *name, size_t len, strata_layer_kind *kind,
                       char *err, size_t errlen)
{
    size_t i;

    if (len == 0)
        return reason(err, errlen, "empty layer name");
    for (i = 0; i < N_KNOWN; i++) {
        const char *k = kind_name(known_kinds[i]);
        if (strlen(k) == len && memcmp(k, name, len) == 0) {
            *kind = known_kinds[i];
            return 0;
        }
    }
    for (i = 0; i < sizeof reserved_layers / sizeof reserved_layers[0]; i++) {
        const char *r = reserved_layers[i];
        if (strlen(r) == len && memcmp(r, name, len) == 0)
            return reason(err, errlen, "layer '%s' is not built in this version",
                          r);
    }
    return reason(err, errlen, "unknown layer '%.*s' (known: " KNOWN_NAMES ")",
                  (int)len, name);
}

#ifdef STRATA_WITH_TLS
#define WS_ABOVE " or sit under 'tls': no other layer goes above WebSocket " \
                 "messages"
#else
#define WS_ABOVE ": no layer goes above WebSocket messages yet"
#endif
#if defined(STRATA_WITH_TLS) && defined(STRATA_WITH_H2)
#define WS_BELOW " or on 'tls' or 'h2'"
#elif defined(STRATA_WITH_TLS)
#define WS_BELOW " or on 'tls'"
#elif defined(STRATA_WITH_H2)
#define WS_BELOW " or on 'h2'"
#else
#define WS_BELOW ""
#endif

/* h2 multiplexes: what sits on it sits on one of its streams. ws right
 * on it is a WebSocket over an extended CONNECT (RFC 8441), grpc a gRPC
 * call; any other layer rides a CONNECT tunnel, a byte stream. Under it
 * goes what carries one connection: the transport, or tls. */
static int check_h2_place(strata_layer_kind upper, strata_layer_kind k,
                          char *err, size_t errlen)
{
    if (upper == STRATA_LAYER_GRPC && k != STRATA_LAYER_H2)
        return reason(err, errlen, "'grpc' goes right on 'h2' (a gRPC call "
                      "is an HTTP/2 stream), found '%s' below it",
                      kind_name(k));
    if (upper == STRATA_LAYER_H2 && !is_transport(k) &&
        k != STRATA_LAYER_TLS)
        return reason(err, errlen, "'h2' goes right on the transport (tcp or "
                      "unix) or on 'tls', found '%s' below it",
                      kind_name(k));
    return 0;
}

/* Whether k may sit right below `upper` (k is being added under it).
 * ws carries messages, not a byte stream a layer above could frame: only
 * tls, which writes each record as one message, goes on it; below ws is
 * the transport, tls or h2. tls records are binary (lines could not carry
 * them): tls goes on the transport, on ws, or in a tunnel over h2. */
static int check_place(strata_layer_kind upper, strata_layer_kind k,
                       char *err, size_t errlen)
{
    if (check_h2_place(upper, k, err, errlen) != 0)
        return STRATA_ERR_ARG;
    if (k == STRATA_LAYER_WS && upper != STRATA_LAYER_TLS)
        return reason(err, errlen, "'ws' must be the top (first) layer"
                      WS_ABOVE ", found '%s' above it", kind_name(upper));
    if (upper == STRATA_LAYER_WS && !is_transport(k) &&
        k != STRATA_LAYER_TLS && k != STRATA_LAYER_H2)
        return reason(err, errlen, "'ws' goes right on the transport (tcp or "
                      "unix)" WS_BELOW ", found '%s' below it", kind_name(k));
    if (upper == STRATA_LAYER_TLS && !is_transport(k) &&
        k != STRATA_LAYER_WS && k != STRATA_LAYER_H2)
        return reason(err, errlen, "'tls' goes right on the transport (tcp "
                      "or unix), on 'ws' or on 'h2' (a tunnel): its records "
                      "are binary, found '%s' below it", kind_name(k));
    return 0;
}

/* A layer may come twice only as tls on both sides of h2 (TLS inside a
 * tunnel over an HTTP/2 connection that has its own). */
static int check_repeat(const strata_uri *u, strata_layer_kind k,
                        char *err, size_t errlen)
{
    int i, j;

    for (i = 0; i < u->n_layers; i++) {
        int h2_between = 0;

        if (u->layers[i] != k)
            continue;
        for (j = i + 1; j < u->n_layers; j++)
            h2_between |= u->layers[j] == STRATA_LAYER_H2;
        if (k != STRATA_LAYER_TLS || !h2_between)
            return reason(err, errlen, "layer '%s' given twice",
                          kind_name(k));
    }
    return 0;
}

/* Append a layer, refusing a repeat and anything under the transport. */
static int add_layer(strata_uri *u, strata_layer_kind k, char *err,
                     size_t errlen)
{
    int i;

    if (check_repeat(u, k, err, errlen) != 0)
        return STRATA_ERR_ARG;
    if (k == STRATA_LAYER_GRPC && u->n_layers > 0)
        return reason(err, errlen, "'grpc' must be the top (first) layer: "
                      "gRPC messages carry no other layer, found '%s' "
                      "above it", kind_name(u->layers[u->n_layers - 1]));
    for (i = 0; i < u->n_layers; i++)
        if (is_transport(u->layers[i]))
            return reason(err, errlen,
                          "'%s' must be the bottom (last) layer, found '%s' "
                          "below it", kind_name(u->layers[i]), kind_name(k));
    if (u->n_layers > 0 &&
        check_place(u->layers[u->n_layers - 1], k, err, errlen) != 0)
        return STRATA_ERR_ARG;
    if (u->n_layers >= STRATA_URI_MAX_LAYERS)
        return reason(err, errlen, "too many layers");
    u->layers[u->n_layers++] = k;
    return 0;
}

/* One name of the list: "wss" adds ws and tls below it. */
static int parse_name(const char *name, size_t len, strata_uri *u,
                      char *err, size_t errlen)
{
    strata_layer_kind k = STRATA_LAYER_TCP; /* quiets -Wmaybe-uninit */
    int r;

#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
    if (len == 3 && memcmp(name, "wss", 3) == 0) {
        r = add_layer(u, STRATA_LAYER_WS, err, errlen);
        return r != 0 ? r : add_layer(u, STRATA_LAYER_TLS, err, errlen);
    }
#endif
    r = parse_layer(name, len, &k, err, errlen);
    return r != 0 ? r : add_layer(u, k, err, errlen);
}

/* The '+'-joined layer list in text[0..len); TCP is added when the list
 * does not end in a transport. */
static int parse_layers(const char *text, size_t len, strata_uri *u,
                        char *err, size_t errlen)
{
    size_t start = 0;

    u->n_layers = 0;
    while (start <= len) {
        const char *plus = memchr(text + start, '+', len - start);
        size_t end = plus != NULL ? (size_t)(plus - text) : len;
        int r = parse_name(text + start, end - start, u, err, errlen);
        if (r != 0)
            return r;
        start = end + 1;
    }
    if (!is_transport(u->layers[u->n_layers - 1]))
        return add_layer(u, STRATA_LAYER_TCP, err, errlen);
    return 0;
}

/* Copy len bytes into a field of cap bytes, NUL-terminated. */
static int copy_field(char *dst, size_t cap, const char *src, size_t len,
                      const char *what, char *err, size_t errlen)
{
    if (len >= cap)
        return reason(err, errlen, "%s too long (at most %zu bytes)", what,
                      cap - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int parse_port(const char *p, size_t len, strata_uri *u, char *err,
                      size_t errlen)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0)
        return reason(err, errlen, "missing port (expected HOST:PORT)");
    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || i >= 5)
            return reason(err, errlen, "port '%.*s' is not a number in "
                          "0..65535", (int)len, p);
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v > 65535)
        return reason(err, errlen, "port '%.*s' is not a number in 0..65535",
                      (int)len, p);
    return copy_field(u->port, sizeof u->port, p, len, "port", err, errlen);
}

/* "[v6]:port" or "host:port" in a[0..len) (the authority, no path). */
static int parse_host_port(const char *a, size_t len, strata_uri *u,
                           char *err, size_t errlen)
{
    const char *host = a, *colon;
    size_t hlen;

    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL)
            return reason(err, errlen, "'[' without ']' in host");
        host = a + 1;
        hlen = (size_t)(close - host);
        colon = close + 1 < a + len ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return reason(err, errlen, "expected ':' after ']'");
    } else {
        colon = memchr(a, ':', len);
        hlen = colon != NULL ? (size_t)(colon - a) : len;
        if (colon != NULL && memchr(colon + 1, ':', len - hlen - 1) != NULL)
            return reason(err, errlen,
                          "an IPv6 address goes in brackets: [ADDR]:PORT");
    }
    if (hlen == 0)
        return reason(err, errlen, "empty host");
    if (colon == NULL)
        return reason(err, errlen, "missing port (expected HOST:PORT)");
    if (copy_field(u->host, sizeof u->host, host, hlen, "host", err,
                   errlen) != 0)
        return STRATA_ERR_ARG;
    return parse_port(colon + 1, (size_t)(a + len - colon - 1), u, err,
                      errlen);
}

/* Everything after "://" of a TCP URI: authority, then an optional path. */
static int parse_tcp_rest(const char *rest, strata_uri *u, char *err,
                          size_t errlen)
{
    const char *slash = strchr(rest, '/');
    size_t alen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);

    if (slash != NULL && copy_field(u->path, sizeof u->path, slash,
                                    strlen(slash), "path", err, errlen) != 0)
        return STRATA_ERR_ARG;
    return parse_host_port(rest, alen, u, err, errlen);
}

/* Everything after "://" of a Unix URI is the socket path. */
static int parse_unix_rest(const char *rest, strata_uri *u, char *err,
                           size_t errlen)
{
    struct sockaddr_un sa;
    size_t len = strlen(rest);

    if (len == 0)
        return reason(err, errlen, "missing socket path (unix:///PATH)");
    if (len >= sizeof sa.sun_path)
        return reason(err, errlen, "socket path too long (at most %zu bytes)",
                      sizeof sa.sun_path - 1);
    return copy_field(u->host, sizeof u->host, rest, len, "socket path", err,
                      errlen);
}

int strata_uri_parse(const char *text, strata_uri *u, char *err,
                     size_t errlen)
{
    const char *sep;
    int r;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (u == NULL)
        return reason(err, errlen, "no place to store the URI");
    memset(u, 0, sizeof *u);
    if (text == NULL || text[0] == '\0')
        return reason(err, errlen, "empty URI");
    sep = strstr(text, "://");
    if (sep == NULL)
        return reason(err, errlen, "missing '://' (expected "
                      "LAYERS://HOST:PORT)");
    r = parse_layers(text, (size_t)(sep - text), u, err, errlen);
    if (r != 0)
        return r;
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        return parse_unix_rest(sep + 3, u, err, errlen);
    return parse_tcp_rest(sep + 3, u, err, errlen);
}

#if defined(STRATA_WITH_WS) || defined(STRATA_WITH_H2)
/* The Host header (ws) or :authority (h2) of a client: HOST:PORT (IPv6 in
 * brackets); a Unix socket has no host name, "localhost" stands for it. */
static void host_header(const strata_uri *u, char *host, size_t cap)
{
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        snprintf(host, cap, "localhost");
    else if (strchr(u->host, ':') != NULL)
        snprintf(host, cap, "[%s]:%s", u->host, u->port);
    else
        snprintf(host, cap, "%s:%s", u->host, u->port);
}

#define HOST_HEADER_MAX (sizeof ((strata_uri *)0)->host + \
                         sizeof ((strata_uri *)0)->port + 4)
#endif

#ifdef STRATA_WITH_WS
/* The ws layer's options from u->ws; host and protocols are the caller's
 * storage (the layer copies what it keeps). */
static void ws_opts_of(const strata_uri *u, int server, char *host,
                       size_t cap, const char *protocols[2],
                       strata_ws_opts *o)
{
    memset(o, 0, sizeof *o);
    protocols[0] = u->ws.protocol;
    protocols[1] = NULL;
    o->role = server ? STRATA_WS_SERVER : STRATA_WS_CLIENT;
    host_header(u, host, cap);
    o->host = host;
    o->path = u->path[0] != '\0' ? u->path : "/";
    o->protocols = u->ws.protocol != NULL ? protocols : NULL;
    o->deflate.enable = u->ws.deflate;
    o->request = server ? u->ws.request : NULL;
    /* The echo server answers a close itself, after echoing everything
     * before it and with the peer's code and reason: half-close. */
    o->half_close = server;
}

static strata_stream *push_ws(const strata_uri *u, int server,
                              strata_stream *lower,
                              const strata_allocator *alloc)
{
    const char *protocols[2];
    char host[HOST_HEADER_MAX];
    strata_ws_opts o;

    ws_opts_of(u, server, host, sizeof host, protocols, &o);
    return strata_ws_new(lower, &o, alloc);
}

/* Small messages leave in batches: a write buffer between ws and the
 * transport (the tool flushes before it waits), 10x the messages per
 * second of one system call per frame (bench/README.md). Not under tls:
 * TLS writes its handshake flights and alerts from inside recv calls,
 * after which nobody flushes, and its records are gathered already. */
static strata_stream *push_ws_buffered(const strata_uri *u, int i,
                                       int server, strata_stream *lower,
                                       const strata_allocator *alloc)
{
    strata_stream *wb, *ws;

    if (i > 0 && u->layers[i - 1] == STRATA_LAYER_TLS)
        return push_ws(u, server, lower, alloc);
    wb = strata_wbuf_new(lower, 64 * 1024, 0, alloc);
    if (wb == NULL)
        return NULL;
    ws = push_ws(u, server, wb, alloc);
    if (ws == NULL) {
        wb->owns_lower = 0; /* a failed push leaves lower to the caller */
        strata_free(wb);
    }
    return ws;
}
#endif

#ifdef STRATA_WITH_TLS
/* u->tls makes sense for the role: said before any file is read. */
static int check_tls_settings(const strata_uri_tls *t, int server,
                              char *err, size_t errlen)
{
    if (server && (t->cert == NULL || t->key == NULL))
        return reason(err, errlen, "a tls server needs a certificate and "
                      "its key (tls.cert and tls.key)");
    if ((t->cert == NULL) != (t->key == NULL))
        return reason(err, errlen, "a tls certificate goes with its key: "
                      "give both (tls.cert and tls.key)");
    if (server && t->insecure)
        return reason(err, errlen, "'insecure' is for a tls client: a "
                      "server verifies only the clients it asks a "
                      "certificate of (tls.ca)");
    return 0;
}

/* wolfSSL says little of a file it cannot open ("certificate file"): the
 * OS's reason comes first. */
static int check_readable(const char *what, const char *path, char *err,
                          size_t errlen)
{
    FILE *f;

    if (path == NULL)
        return 0;
    f = fopen(path, "r");
    if (f == NULL)
        return reason(err, errlen, "cannot read %s '%s': %s", what, path,
                      strerror(errno));
    fclose(f);
    return 0;
}

static int apply_tls_settings(strata_tls_config *c, const strata_uri_tls *t,
                              const char *alpn, int server, char *err,
                              size_t errlen)
{
    int r;

    if (check_readable("certificate file", t->cert, err, errlen) != 0 ||
        check_readable("key file", t->key, err, errlen) != 0 ||
        check_readable("CA file", t->ca, err, errlen) != 0)
        return STRATA_ERR_ARG;
    if (t->cert != NULL &&
        (r = strata_tls_config_cert_file(c, t->cert, t->key)) != 0) {
        reason(err, errlen, "cannot load certificate '%s' and key '%s' "
               "(PEM expected): %s", t->cert, t->key,
               strata_tls_config_reason(c));
        return r;
    }
    if (t->ca != NULL &&
        (r = strata_tls_config_ca_file(c, t->ca, NULL)) != 0) {
        reason(err, errlen, "cannot load CA file '%s' (PEM expected): %s",
               t->ca, strata_tls_config_reason(c));
        return r;
    }
    /* A server given CAs wants its clients to prove who they are. */
    if (t->ca != NULL && server &&
        (r = strata_tls_config_verify_client(c, 1)) != 0)
        return reason(err, errlen, "cannot ask for client certificates");
    if (t->insecure && (r = strata_tls_config_insecure(c)) != 0)
        return reason(err, errlen, "cannot turn verification off");
    if (alpn != NULL && (r = strata_tls_config_alpn(c, alpn)) != 0) {
        reason(err, errlen, "bad ALPN list '%s' (comma-separated protocol "
               "names, at most 255 bytes)", alpn);
        return r;
    }
    return 0;
}

/* Whether the URI has a tls layer under h2 (it carries the connection). */
static int tls_under_h2(const strata_uri *u)
{
    int i, h2 = 0;

    for (i = 0; i < u->n_layers; i++) {
        h2 |= u->layers[i] == STRATA_LAYER_H2;
        if (h2 && u->layers[i] == STRATA_LAYER_TLS)
            return 1;
    }
    return 0;
}

/* The ALPN list of a URI's tls layer: the caller's, else "h2" under h2
 * (RFC 9113 3.2: HTTP/2 over TLS is agreed by ALPN). A tls layer in a
 * tunnel above h2 takes the caller's list only when no tls is under h2:
 * the list names what the connection speaks. */
static const char *alpn_of(const strata_uri *u, int above_h2)
{
    if (above_h2)
        return tls_under_h2(u) ? NULL : u->tls.alpn;
    if (u->tls.alpn != NULL || !strata_uri_has_layer(u, STRATA_LAYER_H2))
        return u->tls.alpn;
    return "h2";
}

static int make_tls_config(const strata_uri *u, int server, int above_h2,
                           const strata_allocator *alloc,
                           strata_tls_config **out, char *err, size_t errlen)
{
    const strata_uri_tls *t = &u->tls;
    strata_tls_config *c;
    int r = check_tls_settings(t, server, err, errlen);

    if (r != 0)
        return r;
    c = strata_tls_config_new(server ? STRATA_TLS_SERVER : STRATA_TLS_CLIENT,
                              alloc);
    if (c == NULL) {
        reason(err, errlen, "out of memory making the tls configuration");
        return STRATA_ERR_NOMEM;
    }
    r = apply_tls_settings(c, t, alpn_of(u, above_h2), server, err, errlen);
    if (r != 0) {
        strata_tls_config_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* A client names the URI's host (SNI, certificate check); a Unix socket
 * has no host name, "localhost" stands for it as in ws's Host. */
static int push_tls(const strata_uri *u, int server, strata_tls_config *cfg,
                    strata_stream *lower, const strata_allocator *alloc,
                    strata_stream **up, char *err, size_t errlen)
{
    strata_tls_opts o;
    const char *why;

    memset(&o, 0, sizeof o);
    if (!server)
        o.server_name = u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX
                            ? "localhost" : u->host;
    *up = strata_tls_new(lower, cfg, &o, alloc);
    if (*up != NULL)
        return 0;
    /* The config says why when it was not the allocator (no system CA). */
    why = strata_tls_config_reason(cfg);
    if (strcmp(why, "no error") != 0) {
        reason(err, errlen, "cannot set up layer 'tls': %s", why);
        return STRATA_ERR_TLS;
    }
    reason(err, errlen, "out of memory building layer 'tls'");
    return STRATA_ERR_NOMEM;
}
#endif

/* A layer without settings of its own (lines, len) or ws, or NULL when
 * the allocator refused. */
static strata_stream *push_simple(const strata_uri *u, int i, int server,
                                  strata_stream *lower,
                                  const strata_allocator *alloc)
{
    strata_layer_kind k = u->layers[i];

#ifdef STRATA_WITH_WS
    if (k == STRATA_LAYER_WS)
        return push_ws_buffered(u, i, server, lower, alloc);
#else
    (void)server;
#endif
    if (k == STRATA_LAYER_LINES) {
        strata_line_opts o = { NULL, 0, LINES_MAX_LEN, 0 };
        return strata_line_new(lower, &o, alloc);
    }
    {
        strata_lenprefix_opts o = { 4, 0, LEN_MAX_LEN, 0 };
        return strata_lenprefix_new(lower, &o, alloc);
    }
}

/* Layer i over lower: 0 and *up (which owns lower), or a status with a
 * reason (lower is then left to the caller). */
static int push_layer(const strata_uri *u, int i, int server,
                      strata_tls_config *cfg, strata_stream *lower,
                      const strata_allocator *alloc, strata_stream **up,
                      char *err, size_t errlen)
{
#ifdef STRATA_WITH_TLS
    if (u->layers[i] == STRATA_LAYER_TLS)
        return push_tls(u, server, cfg, lower, alloc, up, err, errlen);
#else
    (void)cfg;
#endif
    *up = push_simple(u, i, server, lower, alloc);
    if (*up != NULL)
        return 0;
    reason(err, errlen, "out of memory building layer '%s'",
           kind_name(u->layers[i]));
    return STRATA_ERR_NOMEM;
}

/* A hand-made strata_uri passes the parser's own checks: every layer is
 * built here, in an order add_layer accepts, over one transport. */
static int valid_layers(const strata_uri *u)
{
    strata_uri check;
    int i;

    if (u->n_layers < 1 || u->n_layers > STRATA_URI_MAX_LAYERS)
        return 0;
    check.n_layers = 0;
    for (i = 0; i < u->n_layers; i++)
        if (!is_known(u->layers[i]) ||
            add_layer(&check, u->layers[i], NULL, 0) != 0)
            return 0;
    return is_transport(u->layers[u->n_layers - 1]);
}

/* Push layers from..first over bottom (from is the one right above it;
 * layers are numbered top first). On failure bottom is freed. */
static int push_all(const strata_uri *u, int from, int first, int server,
                    strata_tls_config *cfg, strata_stream *bottom,
                    const strata_allocator *alloc, strata_stream **top,
                    char *err, size_t errlen)
{
    strata_stream *s = bottom;
    int i;

    for (i = from; i >= first; i--) {
        strata_stream *up;
        int r = push_layer(u, i, server, cfg, s, alloc, &up, err, errlen);
        if (r != 0) {
            strata_free(s);
            return r;
        }
        s = up;
    }
    *top = s;
    return 0;
}

#ifdef STRATA_WITH_TLS
/* Whether layers from..first hold a tls layer. */
static int tls_in(const strata_uri *u, int from, int first)
{
    int i;

    for (i = from; i >= first; i--)
        if (u->layers[i] == STRATA_LAYER_TLS)
            return 1;
    return 0;
}
#endif

/* push_all with the tls configuration: u->tls.config, or one made for
 * this stack alone (the tls layer keeps a reference, ours goes at the
 * end). above_h2: the layers ride an HTTP/2 stream (ALPN, alpn_of). On
 * failure bottom is freed. */
static int push_range(const strata_uri *u, int from, int first, int server,
                      int above_h2, strata_stream *bottom,
                      const strata_allocator *alloc, strata_stream **top,
                      char *err, size_t errlen)
{
    strata_tls_config *cfg = NULL;
    int r;

#ifdef STRATA_WITH_TLS
    if (u->tls.config == NULL && tls_in(u, from, first)) {
        r = make_tls_config(u, server, above_h2, alloc, &cfg, err, errlen);
        if (r != 0) {
            strata_free(bottom);
            return r;
        }
    }
    r = push_all(u, from, first, server, cfg != NULL ? cfg : u->tls.config,
                 bottom, alloc, top, err, errlen);
    strata_tls_config_free(cfg);
#else
    (void)above_h2;
    r = push_all(u, from, first, server, cfg, bottom, alloc, top, err,
                 errlen);
#endif
    return r;
}

/* The layers between the transport and `first`. */
static int push_with_config(const strata_uri *u, int first, int server,
                            strata_stream *bottom,
                            const strata_allocator *alloc,
                            strata_stream **top, char *err, size_t errlen)
{
    return push_range(u, u->n_layers - 2, first, server, 0, bottom, alloc,
                      top, err, errlen);
}

/* An h2 URI is a connection with streams, not one stream. */
static int refuse_h2(const strata_uri *u, char *err, size_t errlen)
{
    if (!strata_uri_has_layer(u, STRATA_LAYER_H2))
        return 0;
    return reason(err, errlen, "an h2 URI is a connection with streams: "
                  "build it with strata_uri_h2_connect or "
                  "strata_uri_h2_stack, then strata_uri_h2_open");
}

/* strata_uri_stack with the role of role-dependent layers given. */
static int build(const strata_uri *u, int server, strata_stream *bottom,
                 const strata_allocator *alloc, strata_stream **top,
                 char *err, size_t errlen)
{
    if (top != NULL)
        *top = NULL;
    if (u == NULL || bottom == NULL || top == NULL || !valid_layers(u)) {
        strata_free(bottom);
        return reason(err, errlen, "invalid arguments to strata_uri_stack");
    }
    if (refuse_h2(u, err, errlen) != 0) {
        strata_free(bottom);
        return STRATA_ERR_ARG;
    }
    return push_with_config(u, 0, server, bottom, alloc, top, err, errlen);
}

int strata_uri_stack(const strata_uri *u, strata_stream *bottom,
                     const strata_allocator *alloc, strata_stream **top,
                     char *err, size_t errlen)
{
    return build(u, u != NULL && u->server, bottom, alloc, top, err, errlen);
}

/* The reason text of a failed transport call: the OS error when known. */
static int transport_failed(int status, const char *what, const strata_uri *u,
                            int saved_errno, char *err, size_t errlen)
{
    const char *os = status == STRATA_ERR_IO && saved_errno != 0
                         ? strerror(saved_errno) : strata_strerror(status);
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        reason(err, errlen, "%s unix socket '%s': %s", what, u->host, os);
    else
        reason(err, errlen, "%s %s:%s: %s", what, u->host, u->port, os);
    return status;
}

/* The URI's transport, connecting (maybe still in progress). */
static int connect_transport(const strata_uri *u,
                             const strata_allocator *alloc,
                             strata_stream **bottom, char *err, size_t errlen)
{
    int r;

    errno = 0;
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        r = strata_unix_connect(u->host, alloc, bottom);
    else
        r = strata_tcp_connect(u->host, u->port, alloc, bottom);
    if (r != 0)
        return transport_failed(r, "cannot connect to", u, errno, err,
                                errlen);
    return 0;
}

int strata_uri_connect(const strata_uri *u, const strata_allocator *alloc,
                       strata_stream **top, char *err, size_t errlen)
{
    strata_stream *bottom = NULL;
    int r;

    if (top != NULL)
        *top = NULL;
    if (u == NULL || top == NULL || !valid_layers(u))
        return reason(err, errlen, "invalid arguments to strata_uri_connect");
    if (refuse_h2(u, err, errlen) != 0)
        return STRATA_ERR_ARG;
    r = connect_transport(u, alloc, &bottom, err, errlen);
    if (r != 0)
        return r;
    return build(u, 0, bottom, alloc, top, err, errlen);
}

int strata_uri_listen(const strata_uri *u, char *err, size_t errlen)
{
    int fd;

    if (u == NULL || !valid_layers(u))
        return reason(err, errlen, "invalid arguments to strata_uri_listen");
    errno = 0;
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        fd = strata_unix_listen(u->host, LISTEN_BACKLOG);
    else
        fd = strata_tcp_listen(u->host, u->port, LISTEN_BACKLOG);
    if (fd < 0)
        return transport_failed(fd, "cannot listen on", u, errno, err,
                                errlen);
    return fd;
}

int strata_uri_has_layer(const strata_uri *u, strata_layer_kind k)
{
    int i;

    if (u == NULL)
        return 0;
    for (i = 0; i < u->n_layers && i < STRATA_URI_MAX_LAYERS; i++)
        if (u->layers[i] == k)
            return 1;
    return 0;
}

int strata_uri_tls_config(const strata_uri *u, const strata_allocator *alloc,
                          strata_tls_config **config, char *err,
                          size_t errlen)
{
    if (config != NULL)
        *config = NULL;
    if (u == NULL || config == NULL)
        return reason(err, errlen, "invalid arguments to "
                      "strata_uri_tls_config");
#ifdef STRATA_WITH_TLS
    return make_tls_config(u, u->server, 0, alloc, config, err, errlen);
#else
    (void)alloc;
    return reason(err, errlen, "layer 'tls' is not built in this version");
#endif
}

int strata_uri_has_messages(const strata_uri *u)
{
    if (u == NULL || u->n_layers < 1)
        return 0;
    return u->layers[0] == STRATA_LAYER_LINES ||
           u->layers[0] == STRATA_LAYER_LEN ||
           u->layers[0] == STRATA_LAYER_WS ||
           u->layers[0] == STRATA_LAYER_GRPC;
}

/* ---- HTTP/2 ---- */

#ifdef STRATA_WITH_H2
static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static int h2_index(const strata_uri *u)
{
    int i;

    for (i = 0; i < u->n_layers; i++)
        if (u->layers[i] == STRATA_LAYER_H2)
            return i;
    return -1;
}

/* The layers under h2 on bottom (freed on failure), then the connection
 * over them. */
static int build_h2(const strata_uri *u, int server, strata_stream *bottom,
                    const strata_allocator *alloc, strata_h2 **h,
                    strata_stream **below, char *err, size_t errlen)
{
    strata_h2_opts o;
    strata_stream *s;
    int r = push_with_config(u, h2_index(u) + 1, server, bottom, alloc, &s,
                             err, errlen);

    if (r != 0)
        return r;
    memset(&o, 0, sizeof o); /* nghttp2's and strata's defaults */
    o.role = server ? STRATA_H2_SERVER : STRATA_H2_CLIENT;
    *h = strata_h2_new(s, &o, alloc);
    if (*h == NULL) {
        strata_free(s);
        reason(err, errlen, "out of memory building layer 'h2'");
        return STRATA_ERR_NOMEM;
    }
    if (below != NULL)
        *below = s;
    return 0;
}

static const char *scheme_of(const strata_uri *u)
{
    return strata_uri_has_layer(u, STRATA_LAYER_TLS) ? "https" : "http";
}

/* Why a stream could not be opened on a connection. */
static int open_failed(int r, const char *what, char *err, size_t errlen)
{
    if (r == STRATA_ERR_STATE)
        reason(err, errlen, "cannot open %s: the connection takes no new "
               "stream (it ended, or the server sent GOAWAY)", what);
    else if (r == STRATA_ERR_ARG)
        reason(err, errlen, "cannot open %s: the server or the request "
               "head was refused by HTTP/2", what);
    else
        reason(err, errlen, "cannot open %s: the connection failed: %s",
               what, strata_strerror(r));
    return r;
}

/* h2://: a POST to the URI's path; never waits but for a stream limit. */
static int open_request(const strata_uri *u, strata_h2 *h,
                        strata_stream **top, char *err, size_t errlen)
{
    char authority[HOST_HEADER_MAX];
    strata_h2_header head[4];
    int r;

    host_header(u, authority, sizeof authority);
    head[0].name = ":method";
    head[0].value = "POST";
    head[1].name = ":scheme";
    head[1].value = scheme_of(u);
    head[2].name = ":path";
    head[2].value = u->path[0] != '\0' ? u->path : "/";
    head[3].name = ":authority";
    head[3].value = authority;
    r = strata_h2_request(h, head, 4, 0, top);
    if (r != 0 && !is_need(r))
        return open_failed(r, "the request", err, errlen);
    return r;
}

#ifdef STRATA_WITH_WS
/* Why the server's answer to an extended CONNECT was not a WebSocket. */
static int ws_refused(int r, strata_stream *stream, char *err, size_t errlen)
{
    int status = strata_h2_status(stream);

    if (r == STRATA_ERR_PROTO && status != 200)
        reason(err, errlen, "the server refused the WebSocket over HTTP/2: "
               "HTTP status %d", status);
    else if (r == STRATA_ERR_PROTO)
        reason(err, errlen, "the server accepted the WebSocket over HTTP/2 "
               "with a subprotocol or an extension that was not offered");
    else if (r == STRATA_ERR_CLOSED)
        reason(err, errlen, "the server reset the WebSocket's stream "
               "(HTTP/2 error code %ld)", strata_h2_reset_code(stream));
    else
        open_failed(r, "the WebSocket", err, errlen);
    return r;
}

/* ws+h2://: the extended CONNECT, then the answer; *top holds the stream
 * in between. */
static int open_ws(const strata_uri *u, strata_h2 *h,
                   const strata_allocator *alloc, strata_stream **top,
                   char *err, size_t errlen)
{
    const char *protocols[2];
    char host[HOST_HEADER_MAX];
    strata_stream *ws;
    strata_ws_opts o;
    int r;

    ws_opts_of(u, 0, host, sizeof host, protocols, &o);
    if (*top == NULL) {
        r = strata_ws_h2_open(h, &o, scheme_of(u), top);
        if (r == STRATA_ERR_UNSUPPORTED) {
            reason(err, errlen, "the server does not allow WebSocket over "
                   "HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)");
            return r;
        }
        if (r != 0)
            return is_need(r) ? r : open_failed(r, "the WebSocket", err,
                                                errlen);
    }
    r = strata_ws_h2_client(*top, &o, alloc, &ws);
    if (is_need(r))
        return r;
    if (r != 0) {
        ws_refused(r, *top, err, errlen);
        strata_free(*top);
        *top = NULL;
        return r;
    }
    *top = ws;
    return 0;
}
#endif
#endif

/* The shared checks of the h2 calls: 0, or the refusal. */
static int h2_args(const strata_uri *u, const void *out, const char *fn,
                   char *err, size_t errlen)
{
#ifdef STRATA_WITH_H2
    if (u == NULL || out == NULL || !valid_layers(u) ||
        !strata_uri_has_layer(u, STRATA_LAYER_H2))
        return reason(err, errlen, "invalid arguments to %s", fn);
    return 0;
#else
    (void)u;
    (void)out;
    (void)fn;
    return reason(err, errlen, "layer 'h2' is not built in this version");
#endif
}

int strata_uri_h2_stack(const strata_uri *u, strata_stream *bottom,
                        const strata_allocator *alloc, strata_h2 **h,
                        strata_stream **below, char *err, size_t errlen)
{
    int r = h2_args(u, h, "strata_uri_h2_stack", err, errlen);

    if (h != NULL)
        *h = NULL;
    if (below != NULL)
        *below = NULL;
    if (r == 0 && bottom == NULL)
        r = reason(err, errlen, "invalid arguments to strata_uri_h2_stack");
    if (r != 0) {
        strata_free(bottom);
        return r;
    }
#ifdef STRATA_WITH_H2
    return build_h2(u, u->server, bottom, alloc, h, below, err, errlen);
#else
    (void)alloc;
    return STRATA_ERR_ARG;
#endif
}

int strata_uri_h2_connect(const strata_uri *u, const strata_allocator *alloc,
                          strata_h2 **h, strata_stream **below, char *err,
                          size_t errlen)
{
    int r = h2_args(u, h, "strata_uri_h2_connect", err, errlen);

    if (h != NULL)
        *h = NULL;
    if (below != NULL)
        *below = NULL;
    if (r != 0)
        return r;
#ifdef STRATA_WITH_H2
    {
        strata_stream *bottom = NULL;

        r = connect_transport(u, alloc, &bottom, err, errlen);
        if (r != 0)
            return r;
        return build_h2(u, 0, bottom, alloc, h, below, err, errlen);
    }
#else
    (void)alloc;
    return STRATA_ERR_ARG;
#endif
}

#ifdef STRATA_WITH_H2
/* The layers above layer `from` (they ride the stream or the WebSocket
 * just opened), as clients or servers. */
static int push_above(const strata_uri *u, int from, int server,
                      strata_stream *s, const strata_allocator *alloc,
                      strata_stream **top, char *err, size_t errlen)
{
    if (from < 0) {
        *top = s;
        return 0;
    }
    return push_range(u, from, 0, server, 1, s, alloc, top, err, errlen);
}

/* A tunnel: CONNECT to HOST:PORT (RFC 9113 8.5), then the layers above
 * on the stream once a 2xx came; *top holds the stream in between. */
static int open_tunnel(const strata_uri *u, strata_h2 *h,
                       const strata_allocator *alloc, strata_stream **top,
                       char *err, size_t errlen)
{
    char authority[HOST_HEADER_MAX];
    strata_h2_header head[2];
    strata_stream *s;
    int r, status;

    if (*top == NULL) {
        host_header(u, authority, sizeof authority);
        head[0].name = ":method";
        head[0].value = "CONNECT";
        head[1].name = ":authority";
        head[1].value = authority;
        r = strata_h2_request(h, head, 2, 0, top);
        if (r != 0)
            return is_need(r) ? r : open_failed(r, "the tunnel", err, errlen);
    }
    r = strata_h2_response_head(*top);
    if (is_need(r))
        return r;
    status = strata_h2_status(*top);
    if (r == 0 && (status < 200 || status > 299)) {
        reason(err, errlen, "the server refused the CONNECT tunnel: HTTP "
               "status %d", status);
        r = STRATA_ERR_PROTO;
    } else if (r != 0) {
        open_failed(r, "the tunnel", err, errlen);
    }
    s = *top;
    *top = NULL;
    if (r != 0) {
        strata_free(s);
        return r;
    }
    return push_above(u, h2_index(u) - 1, 0, s, alloc, top, err, errlen);
}

#ifdef STRATA_WITH_GRPC
static void grpc_opts_of(const strata_uri *u, strata_grpc_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = u->grpc.timeout_ms;
    o->encoding = u->grpc.gzip ? "gzip" : NULL;
    o->max_recv = u->grpc.max_message;
    o->max_send = u->grpc.max_message;
}

/* grpc+h2://HOST:PORT/pkg.Svc/Method: one call; never waits. */
static int open_grpc(const strata_uri *u, strata_h2 *h,
                     const strata_allocator *alloc, strata_stream **top,
                     char *err, size_t errlen)
{
    char authority[HOST_HEADER_MAX];
    strata_grpc_opts o;
    int r;

    if (u->path[0] == '\0')
        return reason(err, errlen, "a grpc URI names its method: "
                      "grpc+h2://HOST:PORT/package.Service/Method");
    host_header(u, authority, sizeof authority);
    grpc_opts_of(u, &o);
    o.path = u->path;
    o.authority = authority;
    o.scheme = scheme_of(u);
    r = strata_grpc_call(h, &o, alloc, top);
    if (r != 0)
        return open_failed(r, "the gRPC call", err, errlen);
    return 0;
}
#endif

/* What sits right on h2 decides how its stream is opened. */
static int open_above(const strata_uri *u, strata_h2 *h,
                      const strata_allocator *alloc, strata_stream **top,
                      char *err, size_t errlen)
{
    int i = h2_index(u);

    if (i == 0)
        return open_request(u, h, top, err, errlen);
#ifdef STRATA_WITH_GRPC
    if (u->layers[i - 1] == STRATA_LAYER_GRPC)
        return open_grpc(u, h, alloc, top, err, errlen);
#endif
#ifdef STRATA_WITH_WS
    if (u->layers[i - 1] == STRATA_LAYER_WS) {
        strata_stream *ws;
        int r = open_ws(u, h, alloc, top, err, errlen);

        if (r != 0)
            return r;
        ws = *top;
        *top = NULL;
        return push_above(u, i - 2, 0, ws, alloc, top, err, errlen);
    }
#endif
    return open_tunnel(u, h, alloc, top, err, errlen);
}
#endif

int strata_uri_h2_open(const strata_uri *u, strata_h2 *h,
                       const strata_allocator *alloc, strata_stream **top,
                       char *err, size_t errlen)
{
    int r = h2_args(u, top, "strata_uri_h2_open", err, errlen);

    if (r != 0)
        return r;
#ifdef STRATA_WITH_H2
    /* *top: NULL, or the stream this connection is opening */
    if (h == NULL || (*top != NULL && (h2_index(u) == 0 ||
                                       strata_h2_of(*top) != h)))
        return reason(err, errlen, "invalid arguments to strata_uri_h2_open");
    return open_above(u, h, alloc, top, err, errlen);
#else
    (void)h;
    (void)alloc;
    return STRATA_ERR_ARG;
#endif
}

/* ---- the server side of the layers above h2 ---- */

#ifdef STRATA_WITH_H2
/* Refuse a stream with an HTTP status; the stream goes. */
static int serve_refuse(strata_stream *stream, int status, const char *why,
                        char *err, size_t errlen)
{
    (void)strata_h2_respond(stream, status, NULL, 0, STRATA_H2_END_STREAM);
    strata_free(stream);
    reason(err, errlen, "%s (answered %d)", why, status);
    return STRATA_ERR_PROTO;
}

/* A CONNECT tunnel: 200, then the layers above as servers. */
static int serve_tunnel(const strata_uri *u, strata_stream *stream,
                        const strata_allocator *alloc, strata_stream **top,
                        char *err, size_t errlen)
{
    const char *method = strata_h2_get(stream, ":method");
    int r;

    if (method == NULL || strcmp(method, "CONNECT") != 0)
        return serve_refuse(stream, 405, "this server takes CONNECT "
                            "tunnels only", err, errlen);
    if (strata_h2_get(stream, ":protocol") != NULL)
        return serve_refuse(stream, 501, "this server takes plain CONNECT "
                            "tunnels, not an extended CONNECT", err, errlen);
    r = strata_h2_respond(stream, 200, NULL, 0, 0);
    if (r != 0) {
        strata_free(stream);
        reason(err, errlen, "cannot answer the tunnel: %s",
               strata_strerror(r));
        return r;
    }
    return push_above(u, h2_index(u) - 1, 1, stream, alloc, top, err,
                      errlen);
}

#ifdef STRATA_WITH_WS
/* An extended CONNECT for a WebSocket (RFC 8441), then the layers above
 * it; NEED_* leaves the stream to the caller for another try. */
static int serve_ws(const strata_uri *u, strata_stream *stream,
                    const strata_allocator *alloc, strata_stream **top,
                    char *err, size_t errlen)
{
    const char *protocols[2];
    char host[HOST_HEADER_MAX];
    strata_stream *ws;
    strata_ws_opts o;
    int r;

    ws_opts_of(u, 1, host, sizeof host, protocols, &o);
    r = strata_ws_h2_accept(stream, &o, alloc, &ws);
    if (is_need(r))
        return r;
    if (r != 0) {
        strata_free(stream);
        reason(err, errlen, "the WebSocket request was refused (:status "
               "400 or 501 answered) or its connection failed");
        return r;
    }
    return push_above(u, h2_index(u) - 2, 1, ws, alloc, top, err, errlen);
}
#endif

#ifdef STRATA_WITH_GRPC
/* A gRPC call to the URI's path; the call layer answers the others. */
static int serve_grpc(const strata_uri *u, strata_stream *stream,
                      const strata_allocator *alloc, strata_stream **top,
                      char *err, size_t errlen)
{
    strata_grpc_method m;
    strata_grpc_opts o;
    int r;

    grpc_opts_of(u, &o);
    o.encoding = NULL;  /* a server answers in the client's encoding */
    m.path = u->path;
    m.ud = NULL;
    o.methods = &m;
    o.n_methods = 1;
    r = strata_grpc_accept(stream, &o, alloc, top);
    if (r == STRATA_ERR_UNSUPPORTED)
        reason(err, errlen, "a gRPC call to another method or in an "
               "unknown encoding (answered UNIMPLEMENTED)");
    else if (r != 0)
        reason(err, errlen, "not a gRPC call (answered with an HTTP error "
               "and INTERNAL): %s", strata_strerror(r));
    return r;
}
#endif

static int serve_above(const strata_uri *u, strata_stream *stream,
                       const strata_allocator *alloc, strata_stream **top,
                       char *err, size_t errlen)
{
    strata_layer_kind on_h2 = u->layers[h2_index(u) - 1];

#ifdef STRATA_WITH_GRPC
    if (on_h2 == STRATA_LAYER_GRPC)
        return serve_grpc(u, stream, alloc, top, err, errlen);
#endif
#ifdef STRATA_WITH_WS
    if (on_h2 == STRATA_LAYER_WS)
        return serve_ws(u, stream, alloc, top, err, errlen);
#endif
    (void)on_h2;
    return serve_tunnel(u, stream, alloc, top, err, errlen);
}
#endif

int strata_uri_h2_serve(const strata_uri *u, strata_stream *stream,
                        const strata_allocator *alloc, strata_stream **top,
                        char *err, size_t errlen)
{
    int r = h2_args(u, top, "strata_uri_h2_serve", err, errlen);

    if (top != NULL)
        *top = NULL;
    if (r == 0 && stream == NULL)
        r = reason(err, errlen, "invalid arguments to strata_uri_h2_serve");
    if (r != 0)
        return r;
#ifdef STRATA_WITH_H2
    if (h2_index(u) == 0)
        return reason(err, errlen, "an h2 URI with nothing above h2: its "
                      "requests are the application's to answer");
    return serve_above(u, stream, alloc, top, err, errlen);
#else
    (void)alloc;
    return STRATA_ERR_ARG;
#endif
}
