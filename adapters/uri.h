/* strata URI stacks: a client or server stack from one string.
 *
 * Form: LAYERS://HOST:PORT[/PATH], layers joined by '+', the top layer
 * first, TCP implied at the bottom; unix:PATH-form "LAYERS+unix://PATH"
 * puts a Unix-domain socket at the bottom. Layers known so far: tcp,
 * lines (LF records), len (4-byte length-prefixed records) and, when built
 * with STRATA_WITH_WS, ws (WebSocket: "ws://HOST:PORT/PATH" is ws over
 * tcp; "ws+unix:///SOCKET" requests "/"). ws must be the top layer and sit
 * right on the transport: its messages are not a byte stream a layer above
 * could frame, and nothing below it but the transport makes sense yet.
 * A name this build does not know is refused with a message that says so.
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
    STRATA_LAYER_WS
} strata_layer_kind;

/* Settings of the ws layer. strata_uri_parse zeroes them; the caller sets
 * them before building (they do not fit in the URI's text). */
typedef struct strata_uri_ws {
    int deflate;           /* offer (client) / accept (server)
                              permessage-deflate */
    const char *protocol;  /* offer / accept this subprotocol, or NULL */
} strata_uri_ws;

typedef struct strata_uri {
    strata_layer_kind layers[STRATA_URI_MAX_LAYERS]; /* top first */
    int n_layers;          /* including the bottom transport */
    char host[256];        /* or the Unix socket path */
    char port[16];
    char path[1024];       /* "/..." or "" */
    int server;            /* strata_uri_stack builds the server side of
                              layers with roles (ws); set by the caller */
    strata_uri_ws ws;
} strata_uri;

/* Parse text into *u. Returns 0, or STRATA_ERR_ARG with a reason in err. */
int strata_uri_parse(const char *text, strata_uri *u, char *err,
                     size_t errlen);

/* Put the layers above the transport on `bottom` (owned); on failure
 * bottom is freed. Returns 0 and *top, or a status with a reason. A ws
 * layer is a client, or a server when u->server is set; its handshake runs
 * in the first calls on *top. */
int strata_uri_stack(const strata_uri *u, strata_stream *bottom,
                     const strata_allocator *alloc, strata_stream **top,
                     char *err, size_t errlen);
/* Connect the transport and build the stack (the connect may still be in
 * progress: the first calls may return NEED_WRITE). Layers with roles are
 * clients, whatever u->server says. */
int strata_uri_connect(const strata_uri *u, const strata_allocator *alloc,
                       strata_stream **top, char *err, size_t errlen);
/* A listening descriptor for the URI's transport, or a negative status. */
int strata_uri_listen(const strata_uri *u, char *err, size_t errlen);
/* Whether the top layer keeps message boundaries (lines, len, ws). */
int strata_uri_has_messages(const strata_uri *u);

#ifdef __cplusplus
}
#endif
#endif
