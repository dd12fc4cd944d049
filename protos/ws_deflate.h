/* permessage-deflate (RFC 7692) for the ws layer: the negotiation of its
 * parameters and a per-message codec over zlib with bounded buffers.
 * Internal to protos/ws*.c; not installed.
 *
 * The codec streams: neither side ever holds a whole message. Compressing,
 * the ws layer feeds the bytes of the message being sent and frames what
 * comes out; the 4 trailing bytes 00 00 ff ff of a sync flush are held back
 * and dropped at the message's end, as RFC 7692 7.2.1 says. Decompressing,
 * it feeds the payload bytes of a compressed message and receives inflated
 * bytes into the caller's buffer; at the message's end the codec adds the
 * 00 00 ff ff itself. Context takeover is honoured per direction: with
 * no_context_takeover the direction's zlib stream is reset after each
 * message. The inflated size is bounded by the caller, who counts it.
 */
#ifndef STRATA_WS_DEFLATE_H
#define STRATA_WS_DEFLATE_H

#include <strata/ws.h>

typedef struct ws_deflate_params {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits;  /* 8..15 */
    int client_max_window_bits;  /* 8..15 */
} ws_deflate_params;

#ifdef STRATA_EMBEDDED
/* The embedded profile has no zlib: nothing is offered, no offer is
 * accepted, an answer that names the extension is refused (the client
 * then closes with 1010), and no codec is ever made. Inline, so the
 * compiler drops every compressed path of protos/ws*.c. */
typedef struct ws_deflate ws_deflate;

static inline int ws_deflate_offer(const strata_ws_deflate_opts *o,
                                   char *buf, size_t cap)
{
    (void)o, (void)buf, (void)cap;
    return STRATA_ERR_ARG;
}

static inline int ws_deflate_accept(const strata_ws_deflate_opts *o,
                                    const char *offers, char *resp,
                                    size_t cap, ws_deflate_params *p)
{
    (void)o, (void)offers, (void)resp, (void)cap, (void)p;
    return 0;
}

static inline int ws_deflate_confirm(const strata_ws_deflate_opts *o,
                                     const char *response,
                                     ws_deflate_params *p)
{
    (void)o, (void)response, (void)p;
    return STRATA_ERR_PROTO;
}

static inline ws_deflate *ws_deflate_new(const ws_deflate_params *p,
                                         int role,
                                         const strata_allocator *alloc)
{
    (void)p, (void)role, (void)alloc;
    return NULL;
}

static inline void ws_deflate_free(ws_deflate *d)
{
    (void)d;
}

static inline ssize_t ws_deflate_compress(ws_deflate *d, const uint8_t *in,
                                          size_t len, int fin, uint8_t *out,
                                          size_t cap, size_t *used, int *done)
{
    (void)d, (void)in, (void)len, (void)fin, (void)out, (void)cap;
    (void)used, (void)done;
    return STRATA_ERR_UNSUPPORTED;
}

static inline ssize_t ws_deflate_decompress(ws_deflate *d, const uint8_t *in,
                                            size_t len, int fin, uint8_t *out,
                                            size_t cap, size_t *used,
                                            int *done)
{
    (void)d, (void)in, (void)len, (void)fin, (void)out, (void)cap;
    (void)used, (void)done;
    return STRATA_ERR_UNSUPPORTED;
}
#else
/* Client: the Sec-WebSocket-Extensions value that offers o. Returns its
 * length, or STRATA_ERR_TOO_BIG / STRATA_ERR_ARG (bad window bits). */
int ws_deflate_offer(const strata_ws_deflate_opts *o, char *buf, size_t cap);

/* Server: from the client's Sec-WebSocket-Extensions value(s) (several
 * headers joined with ", "), take the first permessage-deflate offer that
 * o can grant. Returns 1 and fills resp (the response header value) and p;
 * 0 when there is no acceptable offer (the connection goes on without
 * compression): an offer with an unknown or duplicate parameter or a bad
 * value is declined, as RFC 7692 section 7 says; STRATA_ERR_PROTO only
 * when the header's syntax is broken (the server answers 400). */
int ws_deflate_accept(const strata_ws_deflate_opts *o, const char *offers,
                      char *resp, size_t cap, ws_deflate_params *p);

/* Client: check the server's response value against what o offered and
 * fill p. 0, or STRATA_ERR_PROTO when the server answered something not
 * offered or malformed (the client fails the connection, code 1010). Also
 * used for RFC 8441 streams, where the agreed value comes from headers. */
int ws_deflate_confirm(const strata_ws_deflate_opts *o, const char *response,
                       ws_deflate_params *p);

typedef struct ws_deflate ws_deflate;

/* A codec for one connection in `role` (STRATA_WS_CLIENT/SERVER), which
 * picks which parameters bind which direction. NULL on allocation failure
 * (zlib's memory comes from the allocator too), a bad role, or window bits
 * outside 8..15 (0 means 15). Each direction's zlib stream is made at its
 * first message, so a peer that only receives never holds a compressor.
 * Both codec calls return STRATA_ERR_ARG for NULL pointers or cap 0, and an
 * error sticks to its direction only. */
ws_deflate *ws_deflate_new(const ws_deflate_params *p, int role,
                           const strata_allocator *alloc);
void ws_deflate_free(ws_deflate *d);

/* Compress bytes of the message being sent. fin: in holds the message's
 * last bytes. Writes at most cap bytes to out and returns how many;
 * *used is the input consumed; *done becomes 1 when fin was given, all input
 * is consumed and the whole compressed message has been written out. Call
 * again (with the rest of the input, same fin) until *done, or until the
 * input is consumed when not fin. Errors: STRATA_ERR_NOMEM, STRATA_ERR_PROTO
 * (zlib failure). */
ssize_t ws_deflate_compress(ws_deflate *d, const uint8_t *in, size_t len,
                            int fin, uint8_t *out, size_t cap, size_t *used,
                            int *done);

/* Decompress payload bytes of the message being received. fin: in holds
 * the message's last payload bytes (the final frame's). Writes at most cap
 * inflated bytes to out and returns how many; *used is the input consumed;
 * *done becomes 1 when fin was given and the message is fully inflated.
 * Call again while it produces output (out was full) even with no input.
 * STRATA_ERR_PROTO for corrupt or truncated data, STRATA_ERR_NOMEM when
 * zlib's window cannot be had, STRATA_ERR_ARG for input after the
 * message's last bytes. */
ssize_t ws_deflate_decompress(ws_deflate *d, const uint8_t *in, size_t len,
                              int fin, uint8_t *out, size_t cap,
                              size_t *used, int *done);
#endif /* STRATA_EMBEDDED */

#endif
