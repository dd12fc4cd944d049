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
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
static const char *const reserved_layers[] = { "h2", "grpc" };
#define KNOWN_NAMES "tcp, lines, len, ws, tls, wss"
#elif defined(STRATA_WITH_WS)
static const char *const reserved_layers[] = { "tls", "wss", "h2", "grpc" };
#define KNOWN_NAMES "tcp, lines, len, ws"
#elif defined(STRATA_WITH_TLS)
static const char *const reserved_layers[] = { "ws", "wss", "h2", "grpc" };
#define KNOWN_NAMES "tcp, lines, len, tls"
#else
static const char *const reserved_layers[] = { "ws", "tls", "wss", "h2",
                                               "grpc" };
#define KNOWN_NAMES "tcp, lines, len"
#endif

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
#define WS_BELOW " or on 'tls'"
#else
#define WS_ABOVE ": no layer goes above WebSocket messages yet"
#define WS_BELOW ""
#endif

/* Whether k may sit right below `upper` (k is being added under it).
 * ws carries messages, not a byte stream a layer above could frame: only
 * tls, which writes each record as one message, goes on it; below ws is
 * the transport or tls. tls records are binary (lines could not carry
 * them): tls goes on the transport or on ws. */
static int check_place(strata_layer_kind upper, strata_layer_kind k,
                       char *err, size_t errlen)
{
    if (k == STRATA_LAYER_WS && upper != STRATA_LAYER_TLS)
        return reason(err, errlen, "'ws' must be the top (first) layer"
                      WS_ABOVE ", found '%s' above it", kind_name(upper));
    if (upper == STRATA_LAYER_WS && !is_transport(k) &&
        k != STRATA_LAYER_TLS)
        return reason(err, errlen, "'ws' goes right on the transport (tcp or "
                      "unix)" WS_BELOW ", found '%s' below it", kind_name(k));
    if (upper == STRATA_LAYER_TLS && !is_transport(k) &&
        k != STRATA_LAYER_WS)
        return reason(err, errlen, "'tls' goes right on the transport (tcp "
                      "or unix) or on 'ws': its records are binary, found "
                      "'%s' below it", kind_name(k));
    return 0;
}

/* Append a layer, refusing a repeat and anything under the transport. */
static int add_layer(strata_uri *u, strata_layer_kind k, char *err,
                     size_t errlen)
{
    int i;

    for (i = 0; i < u->n_layers; i++)
        if (u->layers[i] == k)
            return reason(err, errlen, "layer '%s' given twice", kind_name(k));
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

#ifdef STRATA_WITH_WS
/* The Host header of a client: HOST:PORT (IPv6 in brackets); a Unix socket
 * has no host name, "localhost" stands for it. */
static void ws_host(const strata_uri *u, char *host, size_t cap)
{
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        snprintf(host, cap, "localhost");
    else if (strchr(u->host, ':') != NULL)
        snprintf(host, cap, "[%s]:%s", u->host, u->port);
    else
        snprintf(host, cap, "%s:%s", u->host, u->port);
}

static strata_stream *push_ws(const strata_uri *u, int server,
                              strata_stream *lower,
                              const strata_allocator *alloc)
{
    const char *protocols[2] = { u->ws.protocol, NULL };
    char host[sizeof u->host + sizeof u->port + 4];
    strata_ws_opts o;

    memset(&o, 0, sizeof o);
    o.role = server ? STRATA_WS_SERVER : STRATA_WS_CLIENT;
    ws_host(u, host, sizeof host);
    o.host = host;  /* copied by the layer into its handshake */
    o.path = u->path[0] != '\0' ? u->path : "/";
    o.protocols = u->ws.protocol != NULL ? protocols : NULL;
    o.deflate.enable = u->ws.deflate;
    /* The echo server answers a close itself, after echoing everything
     * before it and with the peer's code and reason: half-close. */
    o.half_close = server;
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
                              int server, char *err, size_t errlen)
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
    if (t->alpn != NULL && (r = strata_tls_config_alpn(c, t->alpn)) != 0) {
        reason(err, errlen, "bad ALPN list '%s' (comma-separated protocol "
               "names, at most 255 bytes)", t->alpn);
        return r;
    }
    return 0;
}

static int make_tls_config(const strata_uri_tls *t, int server,
                           const strata_allocator *alloc,
                           strata_tls_config **out, char *err, size_t errlen)
{
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
    r = apply_tls_settings(c, t, server, err, errlen);
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
        strata_lenprefix_opts o = { 4, 0, LEN_MAX_LEN };
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

/* Push the layers above the transport, the one just above it first. */
static int push_all(const strata_uri *u, int server, strata_tls_config *cfg,
                    strata_stream *bottom, const strata_allocator *alloc,
                    strata_stream **top, char *err, size_t errlen)
{
    strata_stream *s = bottom;
    int i;

    for (i = u->n_layers - 2; i >= 0; i--) {
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

/* strata_uri_stack with the role of role-dependent layers given. */
static int build(const strata_uri *u, int server, strata_stream *bottom,
                 const strata_allocator *alloc, strata_stream **top,
                 char *err, size_t errlen)
{
    strata_tls_config *cfg = NULL;
    int r;

    if (top != NULL)
        *top = NULL;
    if (u == NULL || bottom == NULL || top == NULL || !valid_layers(u)) {
        strata_free(bottom);
        return reason(err, errlen, "invalid arguments to strata_uri_stack");
    }
#ifdef STRATA_WITH_TLS
    /* Without the caller's config, one for this stack alone: the tls
     * layer keeps a reference, ours goes at the end. */
    if (u->tls.config == NULL && strata_uri_has_layer(u, STRATA_LAYER_TLS)) {
        r = make_tls_config(&u->tls, server, alloc, &cfg, err, errlen);
        if (r != 0) {
            strata_free(bottom);
            return r;
        }
    }
    r = push_all(u, server, cfg != NULL ? cfg : u->tls.config, bottom, alloc,
                 top, err, errlen);
    strata_tls_config_free(cfg);
#else
    r = push_all(u, server, cfg, bottom, alloc, top, err, errlen);
#endif
    return r;
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

int strata_uri_connect(const strata_uri *u, const strata_allocator *alloc,
                       strata_stream **top, char *err, size_t errlen)
{
    strata_stream *bottom = NULL;
    int r;

    if (top != NULL)
        *top = NULL;
    if (u == NULL || top == NULL || !valid_layers(u))
        return reason(err, errlen, "invalid arguments to strata_uri_connect");
    errno = 0;
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        r = strata_unix_connect(u->host, alloc, &bottom);
    else
        r = strata_tcp_connect(u->host, u->port, alloc, &bottom);
    if (r != 0)
        return transport_failed(r, "cannot connect to", u, errno, err,
                                errlen);
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
    return make_tls_config(&u->tls, u->server, alloc, config, err, errlen);
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
           u->layers[0] == STRATA_LAYER_LEN || u->layers[0] == STRATA_LAYER_WS;
}
