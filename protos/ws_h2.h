/* strata ws_h2: WebSocket over an HTTP/2 stream (RFC 8441).
 *
 * Contract (on top of protos/ws.h and protos/h2.h):
 *  - The opening handshake is an extended CONNECT (:method CONNECT,
 *    :protocol websocket, :scheme, :path, :authority,
 *    sec-websocket-version 13) answered by :status 200; subprotocol and
 *    permessage-deflate are negotiated in sec-websocket-protocol and
 *    sec-websocket-extensions exactly as over HTTP/1.1, with no key and no
 *    accept hash. Then the ws layer frames over the stream (its
 *    no_handshake mode); the stream's END_STREAM follows the close.
 *  - Client, two steps that never block: strata_ws_h2_open sends the
 *    request (NEED_READ while the server's SETTINGS are awaited,
 *    STRATA_ERR_UNSUPPORTED when the server does not allow extended
 *    CONNECT); strata_ws_h2_client waits for the response (NEED_*) and
 *    then returns the WebSocket layer, which owns the stream. A status
 *    other than 200 is STRATA_ERR_PROTO (strata_h2_status tells which).
 *  - Server: strata_ws_h2_accept checks an accepted stream's request,
 *    asks opts.accept (if set) as the HTTP/1.1 server does, answers 200
 *    (or the refusal: 400 for a malformed request, 501 for another
 *    :protocol, the callback's status) and returns the layer. Its
 *    STRATA_ERR_PROTO means "refused, the answer went" unless the
 *    connection itself failed (strata_poll(stream, 0) & STRATA_POLL_ERR).
 *  - Options are strata_ws_opts: host is the :authority, path the :path,
 *    protocols, origin, deflate, limits and accept as for HTTP/1.1;
 *    role and no_handshake are set here.
 */
#ifndef STRATA_WS_H2_H
#define STRATA_WS_H2_H

#include <strata/h2.h>
#include <strata/ws.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Client: open the extended CONNECT stream. scheme is "https" or "http".
 * 0 and *stream, NEED_*, or an error. */
int strata_ws_h2_open(strata_h2 *h, const strata_ws_opts *o,
                      const char *scheme, strata_stream **stream);
/* Client: once the response came, the WebSocket over the stream (owned);
 * 0 and *ws, NEED_*, or an error (the stream is then the caller's). */
int strata_ws_h2_client(strata_stream *stream, const strata_ws_opts *o,
                        const strata_allocator *alloc, strata_stream **ws);
/* Server: answer an accepted stream and return the WebSocket over it
 * (owned). 0 and *ws, NEED_* (the answer could not go out yet: call
 * again), or STRATA_ERR_PROTO after a refusal (the stream is the
 * caller's to free). */
int strata_ws_h2_accept(strata_stream *stream, const strata_ws_opts *o,
                        const strata_allocator *alloc, strata_stream **ws);

#ifdef __cplusplus
}
#endif
#endif
