/* strata URI stacks: a client or server stack from one string.
 *
 * Form: LAYERS://HOST:PORT[/PATH], layers joined by '+', the top layer
 * first, TCP implied at the bottom; unix:PATH-form "LAYERS+unix://PATH"
 * puts a Unix-domain socket at the bottom. Layers: tcp, lines (LF
 * records), len (4-byte length-prefixed records) and, when built with
 * them, ws (STRATA_WITH_WS: WebSocket, "ws://HOST:PORT/PATH" is ws over
 * tcp; "ws+unix:///SOCKET" requests "/"), tls (STRATA_WITH_TLS:
 * "tls://HOST:PORT" is tls over tcp; "wss" stands for "ws+tls"), h2
 * (STRATA_WITH_H2) and grpc (STRATA_WITH_GRPC).
 * Where a layer may sit:
 *  - ws carries messages, not a byte stream a layer above could frame:
 *    it is the top layer, or right under tls (TLS inside a WebSocket,
 *    "tls+ws://": tls writes each record as one message and reads bytes);
 *    below it is the transport, tls or h2.
 *  - tls sits right on the transport, on ws, or on h2 (in a tunnel, see
 *    below): its records are binary, so lines could not carry them.
 *    Byte-stream layers (lines, len) and ws may sit on it. tls may come
 *    twice, once on each side of h2 ("lines+tls+h2+tls://").
 *  - h2 (HTTP/2, nghttp2) sits right on the transport (prior knowledge:
 *    "h2://HOST:PORT/PATH") or on tls ("h2+tls://", ALPN "h2"). It
 *    multiplexes, so its stack has another shape (see "HTTP/2" below):
 *    the layers under it carry one connection, and what is above it sits
 *    on one of its streams. ws right on it is a WebSocket over an
 *    extended CONNECT stream (RFC 8441: "ws+h2://", "ws+h2+tls://"; tls
 *    may go on that WebSocket as on any: "tls+ws+h2://"); grpc goes right
 *    on it as the top layer ("grpc+h2+tls://HOST:PORT/pkg.Svc/Method":
 *    one gRPC call per stack, its messages are the stack's messages); any
 *    other layer above h2 rides a CONNECT tunnel (RFC 9113 8.5) to
 *    HOST:PORT, a byte stream on which the rules above hold again:
 *    "lines+h2://", "lines+tls+h2://" (TLS inside the tunnel),
 *    "len+tls+h2+tls://", "ws+tls+h2://" (a WebSocket by HTTP/1.1 Upgrade
 *    inside TLS inside the tunnel; "ws+h2" is always RFC 8441).
 *  - grpc goes right on h2 and nothing goes on grpc.
 * A name this build does not know is refused with a message that says so.
 *
 * TLS settings do not fit in the URI's text: they are u->tls. A client
 * sends the URI's host as SNI and checks the server's certificate against
 * it (an IP literal against the certificate's IP addresses; "localhost"
 * stands for a Unix socket's host), with the CAs of tls.ca or the
 * system's. A server needs tls.cert and tls.key. Under h2, ALPN "h2" is
 * offered (client) or required (server) unless tls.alpn names others; a
 * tls layer in a tunnel offers tls.alpn only when no tls is under h2. The
 * same settings (and tls.config, when given) serve both tls layers of a
 * URI that has two.
 *
 * HTTP/2. An h2 URI is not one stream but a connection with streams, so
 * strata_uri_stack and strata_uri_connect refuse it; it is built in two
 * steps, each of which never blocks:
 *  1. strata_uri_h2_connect (client) or strata_uri_h2_stack (over an
 *     accepted socket; a server with u->server) builds the layers under
 *     h2 and the connection, a strata_h2 (protos/h2.h) that owns them. An
 *     event loop waits on strata_h2_fd for strata_h2_wants and calls
 *     strata_h2_drive: the streams have no descriptor of their own.
 *  2. A client opens the stream the layers above h2 name with
 *     strata_uri_h2_open: for "h2://HOST:PORT/PATH" a POST request to PATH
 *     whose body is what is sent on the stream and whose response body is
 *     what is received; for "ws+h2://" the WebSocket. A server takes its
 *     streams with strata_h2_accept and answers them itself (a WebSocket
 *     with strata_ws_h2_accept, protos/ws_h2.h).
 * Ownership: the caller holds the connection (strata_h2_free) and each
 * stream or WebSocket opened (strata_free; a WebSocket owns its stream).
 * Streams hold the connection too, so it goes when the caller let go of
 * it and of its last stream, in any order; the layers under h2 go with
 * it. Freeing a stream still open resets it (CANCEL).
 */
#ifndef STRATA_URI_H
#define STRATA_URI_H

#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_URI_MAX_LAYERS 8

typedef enum strata_layer_kind {
    STRATA_LAYER_TCP,
    STRATA_LAYER_UNIX,
    STRATA_LAYER_LINES,
    STRATA_LAYER_LEN,
    STRATA_LAYER_WS,
    STRATA_LAYER_TLS,
    STRATA_LAYER_H2,
    STRATA_LAYER_GRPC
} strata_layer_kind;

/* A TLS configuration (protos/tls.h) and an HTTP/2 connection
 * (protos/h2.h); declared here too so this header stands without the
 * layers' own. */
typedef struct strata_tls_config strata_tls_config;
typedef struct strata_h2 strata_h2;

/* Settings of the ws layer. strata_uri_parse zeroes them; the caller sets
 * them before building (they do not fit in the URI's text). */
typedef struct strata_uri_ws {
    int deflate;           /* offer (client) / accept (server)
                              permessage-deflate */
    const char *protocol;  /* offer / accept this subprotocol, or NULL */
    /* server: the Upgrade request head already read (a front that
     * dispatched on it, adapters/web.h), answered by the ws layer */
    const struct strata_http1_head *request;
} strata_uri_ws;

/* Settings of the tls layer, zeroed by strata_uri_parse like ws's.
 *
 * Ownership of the configuration: `config` is the caller's. When it is
 * set, every stack built takes a reference of its own, so the caller may
 * free it (strata_tls_config_free) as soon as the last stack it wants was
 * built; it must have the role of the stacks (a client config for
 * strata_uri_connect, a server config for a server's strata_uri_stack).
 * When it is NULL, each strata_uri_stack / strata_uri_connect makes a
 * config from the other fields for that one stack (files read again each
 * time, no session resumption across stacks): a program that builds many
 * stacks makes one with strata_uri_tls_config and sets it here. */
typedef struct strata_uri_tls {
    const char *cert;      /* our certificate chain (PEM file): a server's,
                              or a client's for mutual TLS; with key */
    const char *key;       /* its private key (PEM file) */
    const char *ca;        /* trusted CAs (PEM file). Client: NULL trusts
                              the system's store. Server: asks clients for
                              a certificate and requires one (mutual TLS) */
    int insecure;          /* client: do not verify the server at all */
    const char *alpn;      /* ALPN protocols, comma list in order of
                              preference ("h2,http/1.1"), or NULL
                              ("h2" under an h2 layer) */
    strata_tls_config *config; /* a ready config (see above), or NULL */
} strata_uri_tls;

/* Settings of the grpc layer, zeroed by strata_uri_parse like ws's. */
typedef struct strata_uri_grpc {
    long timeout_ms;       /* client: the call's deadline (grpc-timeout),
                              0 for none */
    int gzip;              /* client: compress requests with gzip */
    size_t max_message;    /* both: largest message received or sent, 0
                              for the call layer's default (4 MiB) */
} strata_uri_grpc;

typedef struct strata_uri {
    strata_layer_kind layers[STRATA_URI_MAX_LAYERS]; /* top first */
    int n_layers;          /* including the bottom transport */
    char host[256];        /* or the Unix socket path */
    char port[16];
    char path[1024];       /* "/..." or "" */
    int server;            /* strata_uri_stack builds the server side of
                              layers with roles (ws, tls); set by the
                              caller */
    strata_uri_ws ws;
    strata_uri_tls tls;
    strata_uri_grpc grpc;
} strata_uri;

/* Parse text into *u. Returns 0, or STRATA_ERR_ARG with a reason in err. */
int strata_uri_parse(const char *text, strata_uri *u, char *err,
                     size_t errlen);

/* Put the layers above the transport on `bottom` (owned); on failure
 * bottom is freed. Returns 0 and *top, or a status with a reason. A ws or
 * tls layer is a client, or a server when u->server is set; its handshake
 * runs in the first calls on *top. A tls layer uses u->tls.config, or a
 * config made from u->tls for this stack alone. An h2 URI is refused
 * (STRATA_ERR_ARG): it takes the strata_uri_h2_* calls below. */
int strata_uri_stack(const strata_uri *u, strata_stream *bottom,
                     const strata_allocator *alloc, strata_stream **top,
                     char *err, size_t errlen);
/* Connect the transport and build the stack (the connect may still be in
 * progress: the first calls may return NEED_WRITE). Layers with roles are
 * clients, whatever u->server says. An h2 URI is refused, as above. */
int strata_uri_connect(const strata_uri *u, const strata_allocator *alloc,
                       strata_stream **top, char *err, size_t errlen);
/* A listening descriptor for the URI's transport, or a negative status. */
int strata_uri_listen(const strata_uri *u, char *err, size_t errlen);
/* Whether the top layer keeps message boundaries (lines, len, ws). */
int strata_uri_has_messages(const strata_uri *u);
/* Whether the URI names layer `k` anywhere in its stack. */
int strata_uri_has_layer(const strata_uri *u, strata_layer_kind k);

/* ---- HTTP/2 (see "HTTP/2" above); without STRATA_WITH_H2 each call
 * says the layer is not built ---- */

/* The layers under h2 on `bottom` (owned; freed on failure), then the
 * HTTP/2 connection over them: a client's, or a server's when u->server
 * is set. Returns 0 and *h, the caller's to strata_h2_free (the
 * connection owns the layers under it), or a status with a reason. When
 * below is not NULL, *below is the top of the layers under h2 (tls, or
 * the transport itself), borrowed: valid while the connection lives, for
 * what those layers know (strata_tls_alpn, strata_tls_reason, the
 * socket's errno). A tls layer's handshake runs in the connection's
 * first drives; the caller checks strata_tls_alpn(*below) afterwards if
 * it must know that "h2" was agreed: TLS itself refuses a peer whose
 * ALPN has no protocol in common with ours, not one that uses none. */
int strata_uri_h2_stack(const strata_uri *u, strata_stream *bottom,
                        const strata_allocator *alloc, strata_h2 **h,
                        strata_stream **below, char *err, size_t errlen);
/* Connect the transport, then strata_uri_h2_stack as a client (whatever
 * u->server says). */
int strata_uri_h2_connect(const strata_uri *u, const strata_allocator *alloc,
                          strata_h2 **h, strata_stream **below, char *err,
                          size_t errlen);
/* Client: open on h the stream the layers above h2 name, without
 * blocking. *top must be NULL at the first call.
 *  - "h2://HOST:PORT/PATH": a POST request to PATH ("/" when empty) with
 *    :authority HOST:PORT and :scheme https over tls, else http. 0 at
 *    once (NEED_READ only while the server's stream limit is reached) and
 *    *top, the h2 stream: what is sent on it is the request body
 *    (strata_shutdown ends it), what is received the response body
 *    (strata_h2_status and strata_h2_head tell the rest, protos/h2.h).
 *  - "ws+h2://HOST:PORT/PATH": an extended CONNECT (RFC 8441) to PATH
 *    with u->ws's settings, then the WebSocket over its stream. NEED_*
 *    while the server's SETTINGS or its answer are awaited: drive the
 *    connection (or wait on strata_h2_fd for strata_h2_wants) and call
 *    again with *top as it was left (the stream being opened, or NULL).
 *    STRATA_ERR_UNSUPPORTED when the server does not allow extended
 *    CONNECT, STRATA_ERR_PROTO when it refused (its :status in the
 *    reason). The WebSocket owns its stream.
 * On 0, *top is the caller's (strata_free). On an error *top was freed
 * and is NULL; the connection stays the caller's either way. To give up
 * while NEED_* is returned, strata_free(*top) (it may be NULL). */
int strata_uri_h2_open(const strata_uri *u, strata_h2 *h,
                       const strata_allocator *alloc, strata_stream **top,
                       char *err, size_t errlen);
/* The other layers above h2, opened by strata_uri_h2_open the same way
 * (layers above a WebSocket over h2, "tls+ws+h2://", are built on it once
 * it is open):
 *  - "grpc+h2://HOST:PORT/pkg.Svc/Method": a gRPC call (protos/grpc.h)
 *    with :authority HOST:PORT and u->grpc's settings; 0 at once (the
 *    call's head goes out with it), *top the call: each message sent is a
 *    request message (STRATA_MSG_END ends one), strata_shutdown ends the
 *    requests, and the call's end is STRATA_EOF (status OK) or
 *    STRATA_ERR_GRPC (strata_grpc_status says which).
 *  - a tunnel ("lines+h2://", "tls+h2+tls://", ...): a CONNECT with
 *    :authority HOST:PORT; NEED_* until the server answered 2xx, then the
 *    layers above are built on the tunnel stream as strata_uri_stack
 *    builds them on a socket (clients), and *top is their top.
 *    STRATA_ERR_PROTO when the server refused (its :status in the
 *    reason). */

/* Server: answer one stream accepted on an h2 server connection
 * (strata_h2_accept) as the layers above h2 in u say, without blocking
 * (NEED_*: the answer could not go out yet; call again with the same
 * stream, which is still the caller's):
 *  - ws: the WebSocket (extended CONNECT, RFC 8441; strata_ws_h2_accept
 *    with u->ws's settings);
 *  - grpc: a gRPC call to the URI's path (strata_grpc_accept with one
 *    method, u->path; another path is answered UNIMPLEMENTED by the call
 *    layer, STRATA_ERR_UNSUPPORTED here, a request that is not gRPC
 *    with an HTTP error, STRATA_ERR_PROTO);
 *  - a tunnel: a CONNECT is answered 200 and the layers above are built
 *    on it as servers (u->tls must hold a server's settings);
 *  - nothing above h2 ("h2://"): refused (STRATA_ERR_ARG), the caller
 *    answers plain requests itself.
 * A stream that asks for something else (a CONNECT where a WebSocket is
 * served, a POST where a tunnel is) is answered with an HTTP error status
 * (400, 405 or 501) and STRATA_ERR_PROTO is returned, with the reason.
 * On 0 *top is the caller's (strata_free) and owns the stream; on an
 * error the stream was answered and freed, and *top is NULL. */
int strata_uri_h2_serve(const strata_uri *u, strata_stream *stream,
                        const strata_allocator *alloc, strata_stream **top,
                        char *err, size_t errlen);

/* Make a TLS configuration from u->tls, a server's when u->server is set,
 * else a client's; memory from alloc (kept by the config: it must outlive
 * it). Returns 0 and *config, which the caller owns and frees with
 * strata_tls_config_free (stacks built with it keep their own reference),
 * or a status with a reason: a server without tls.cert and tls.key, a key
 * without its certificate, insecure on a server, a file that cannot be
 * loaded, a bad ALPN list, or a build without the tls layer. Under an h2
 * layer the ALPN list is "h2" unless u->tls.alpn says otherwise. */
int strata_uri_tls_config(const strata_uri *u, const strata_allocator *alloc,
                          strata_tls_config **config, char *err,
                          size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
