/* strata ws: WebSocket (RFC 6455, permessage-deflate RFC 7692) as a layer
 * over any lower stream, client and server.
 *
 * Contract (on top of streams/stream.h):
 *  - Handshake: unless no_handshake is set, the first calls run the HTTP/1.1
 *    Upgrade (protos/http1.h) over the buffered stream below and return
 *    NEED codes until it is done; bytes the peer sent right behind its head
 *    stay in the buffered stream and are the first frame bytes (hand-off).
 *    strata_ws_handshake drives it explicitly. A refused or failed
 *    handshake is STRATA_ERR_PROTO (the HTTP status is strata_ws_status).
 *    With no_handshake the layer frames at once (the handshake happened
 *    elsewhere: HTTP/2 extended CONNECT, or a server that parsed HTTP).
 *  - Messages: strata_send without STRATA_MSG_END sends a fragment, with it
 *    ends the message; STRATA_MSG_TEXT makes it a text message (flag of the
 *    message's first send; text must be valid UTF-8, else STRATA_ERR_ARG).
 *    strata_recv streams a message of any size into a buffer of any size;
 *    STRATA_MSG_END marks its last bytes (a 0-byte recv with MSG_END when the
 *    final frame is empty), STRATA_MSG_TEXT text messages.
 *  - Control frames are handled inside: a ping is answered with a pong (a
 *    recv may return STRATA_NEED_WRITE while the pong waits for room), pings
 *    and pongs may arrive inside fragmented messages; strata_ws_ping sends
 *    one. Control payloads are at most 125 bytes.
 *  - Close: strata_shutdown (or strata_ws_close with a code) sends a close
 *    frame; the peer's close is answered with its own code as soon as the
 *    message being sent is complete (opts.half_close leaves the answer to
 *    strata_shutdown); recv returns STRATA_EOF once the peer's close
 *    arrived (after every data frame before it). The peer's
 *    code and reason are strata_ws_close_code / _reason (1005 when its close
 *    frame had no code, 1006 when the stream ended without one). The layer
 *    owns no timer: after sending a close, the caller frees the stack when
 *    the peer's close or its own deadline comes (strata_ws_closing tells).
 *  - Bad input: every violation sends a close frame with its code (1002
 *    protocol, 1007 bad UTF-8, 1009 too big) and returns STRATA_ERR_PROTO or
 *    STRATA_ERR_TOO_BIG; strata_ws_error_code says which code was sent. Data
 *    already delivered stays delivered. Limits: max_frame, max_message (and
 *    for deflate the inflated size), all buffers bounded.
 *  - Server frames go down as header + payload in one sendv (no copy);
 *    client frames are masked through a bounded scratch buffer in chunks
 *    (in the embedded profile a server's are copied through one too).
 *  - Memory: strata_ws_new takes it from the allocator; strata_ws_init
 *    lives in caller storage and allocates nothing (the embedded profile
 *    has only strata_ws_init). The embedded profile
 *    (built with STRATA_EMBEDDED: no OS, no malloc, no wolfCrypt, no zlib)
 *    needs opts.sha1 for a handshake and opts.random for a client, and has
 *    no permessage-deflate (offers are declined).
 */
#ifndef STRATA_WS_H
#define STRATA_WS_H

#include <strata/stream.h>
#include <strata/buffered.h>
#include <strata/http1.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { STRATA_WS_CLIENT = 0, STRATA_WS_SERVER = 1 };

/* Close codes (RFC 6455 section 7.4.1). */
enum {
    STRATA_WS_NORMAL = 1000,
    STRATA_WS_GOING_AWAY = 1001,
    STRATA_WS_PROTOCOL_ERROR = 1002,
    STRATA_WS_UNSUPPORTED = 1003,
    STRATA_WS_NO_STATUS = 1005,
    STRATA_WS_ABNORMAL = 1006,
    STRATA_WS_BAD_DATA = 1007,
    STRATA_WS_POLICY = 1008,
    STRATA_WS_TOO_BIG = 1009,
    STRATA_WS_EXTENSION = 1010,
    STRATA_WS_INTERNAL = 1011
};

/* What a server's accept callback sees of the client's request. */
typedef struct strata_ws_request {
    const strata_http1_head *head;  /* every header; NULL without handshake */
    const char *path;               /* request target */
    const char *host;               /* Host, or NULL */
    const char *origin;             /* Origin, or NULL */
    const char *protocols;          /* Sec-WebSocket-Protocol as sent, or NULL */
} strata_ws_request;

/* What the callback answers. Preset: status 101, no protocol. */
typedef struct strata_ws_response {
    int status;              /* 101 accepts; anything else refuses with it */
    const char *protocol;    /* chosen subprotocol (one the client offered) */
    const char *headers;     /* extra header lines "Name: value\r\n...", or NULL */
} strata_ws_response;

typedef int (*strata_ws_accept_cb)(void *ud, const strata_ws_request *req,
                                   strata_ws_response *resp);

typedef struct strata_ws_deflate_opts {
    int enable;                     /* client: offer; server: accept offers */
    int server_no_context_takeover; /* ask for / grant it */
    int client_no_context_takeover;
    int server_max_window_bits;     /* 8..15; 0: 15 (not sent) */
    int client_max_window_bits;     /* 8..15; 0: 15 (not sent) */
} strata_ws_deflate_opts;

typedef struct strata_ws_opts {
    int role;                   /* STRATA_WS_CLIENT or STRATA_WS_SERVER */
    int no_handshake;           /* frames from the start */
    /* client handshake */
    const char *host;           /* Host header (required for a client) */
    const char *path;           /* request target; NULL: "/" */
    const char *origin;         /* Origin header, or NULL */
    /* both: client offers these, in order; a server without an accept
     * callback picks the first of the client's that is in its list */
    const char *const *protocols;  /* NULL-terminated, or NULL */
    const char *extra_headers;  /* extra request / response header lines */
    /* server */
    strata_ws_accept_cb accept; /* NULL: accept every valid request */
    void *accept_ud;
    /* limits (0: default) */
    size_t max_frame;           /* payload of one frame; default 16 MiB */
    size_t max_message;         /* whole message; default 16 MiB */
    size_t max_head;            /* HTTP head; default 8 KiB */
    size_t buffer;              /* buffered input put below if lower is not
                                   a buffered stream; default 16 KiB */
    size_t scratch;             /* client masking / deflate buffer;
                                   64 KiB for a client, 16 KiB a server */
    strata_ws_deflate_opts deflate;
    /* randomness for masking keys and Sec-WebSocket-Key; NULL: the OS
     * (the embedded profile has none: a client must give it) */
    int (*random)(void *ud, uint8_t *buf, size_t n);
    void *random_ud;
    /* SHA-1 of data into out (20 bytes), 0 on success: the handshake's
     * Sec-WebSocket-Accept. NULL: wolfCrypt's (the embedded profile has no
     * wolfCrypt: required there unless no_handshake) */
    int (*sha1)(void *ud, const uint8_t *data, size_t len, uint8_t out[20]);
    void *sha1_ud;
    /* The peer's close ends only its direction: our close goes out when we
     * call strata_shutdown, so we may finish sending first (a byte-stream
     * half-close). Default 0: the layer replies to the peer's close by
     * itself as soon as the message it is sending is complete, as RFC 6455
     * 5.5.1 asks; sends after that are STRATA_ERR_CLOSED. */
    int half_close;
    /* negotiated elsewhere (no_handshake with deflate, as RFC 8441 does):
     * the permessage-deflate parameters in force, as a response header
     * value ("permessage-deflate; server_no_context_takeover"), or NULL */
    const char *deflate_agreed;
    /* server: the Upgrade request already read by the caller (an HTTP
     * server that dispatched on it, adapters/web.h); the layer copies it
     * (it must fit max_head, else strata_ws_new fails) and answers it as
     * if it had read it: the bytes behind it are in the buffered stream.
     * Not in the embedded profile (STRATA_ERR_ARG there). */
    const strata_http1_head *request;
} strata_ws_opts;

/* A WebSocket layer over lower (owned). NULL on bad options (no host for a
 * client, bad window bits) or allocation failure; lower is then left to
 * the caller. Not in the embedded profile (only strata_ws_init there). */
#ifndef STRATA_EMBEDDED
strata_stream *strata_ws_new(strata_stream *lower, const strata_ws_opts *o,
                             const strata_allocator *alloc);
#endif

/* Caller-provided storage for a ws layer (strata_ws_init): the stream is
 * `base`; the rest is the layer's private state, whose size the library
 * checks against this when it is built. */
#define STRATA_WS_STATE_SIZE (1280 + 200 * sizeof(void *))
typedef struct strata_ws_storage {
    strata_stream base;
    union {
        uint64_t align;
        void *ptr;
        unsigned char bytes[STRATA_WS_STATE_SIZE];
    } state;
} strata_ws_storage;

/* A ws layer in caller-provided storage, over a buffered stream (at least
 * 256 bytes, which it owns as strata_line_init does): no allocation, ever.
 * Its buffers are carved from mem (mem_len bytes, at least
 * strata_ws_mem_size(o); both live as long as the stream):
 * the handshake's heads (3 * max_head and the lengths of protocols and
 * extra_headers) and, for a client (in the embedded profile for either
 * role), the send buffer (opts.scratch; 0 means 256 here). permessage-deflate is not offered nor accepted
 * (o->deflate.enable and deflate_agreed are STRATA_ERR_ARG). Returns 0,
 * STRATA_ERR_ARG (bad options, or a hook the build needs is missing) or
 * STRATA_ERR_NOMEM (mem too small). The stream is &ws->base;
 * strata_free(&ws->base) frees nothing of the caller's. */
int strata_ws_init(strata_ws_storage *ws, strata_buffered *in,
                   const strata_ws_opts *o, void *mem, size_t mem_len);
/* The bytes of mem strata_ws_init needs for these options. */
size_t strata_ws_mem_size(const strata_ws_opts *o);

/* Run the handshake now: 0 when done, NEED_* to call again, or an error. */
int strata_ws_handshake(strata_stream *s);
/* Send a ping (len <= 125). 0, NEED_* (retry), or an error (as a send's:
 * STRATA_ERR_STATE after our close, STRATA_ERR_CLOSED after both). */
int strata_ws_ping(strata_stream *s, const void *data, size_t len);
/* Pongs received so far: answers to strata_ws_ping (a peer may answer
 * only the latest of several pings, RFC 6455 5.5.3) or unsolicited ones. */
unsigned long strata_ws_pongs(strata_stream *s);
/* Send a close frame with a code (1000..4999, valid per RFC) and reason
 * (<= 123 bytes). 0, NEED_* (retry), STRATA_ERR_ARG for a bad code. */
int strata_ws_close(strata_stream *s, unsigned code, const char *reason);
/* Whether we sent a close and await the peer's (a deadline is the caller's). */
int strata_ws_closing(strata_stream *s);
/* The peer's close code: 0 while open, 1005 no code, 1006 ended without. */
unsigned strata_ws_close_code(strata_stream *s);
const char *strata_ws_close_reason(strata_stream *s);
/* The close code we sent because of an error, 0 if none. */
unsigned strata_ws_error_code(strata_stream *s);
/* The HTTP status of the handshake (101, or the refusal's), 0 before. */
int strata_ws_status(strata_stream *s);
/* The negotiated subprotocol, or NULL. */
const char *strata_ws_protocol(strata_stream *s);
/* Whether permessage-deflate is in force. */
int strata_ws_deflate(strata_stream *s);
/* The request the server accepted (path, headers), NULL for a client or
 * before the handshake. Valid while the stream lives. */
const strata_ws_request *strata_ws_request_of(strata_stream *s);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 chars + NUL
 * into out (29 bytes). 0 or STRATA_ERR_ARG. Not in the embedded profile
 * (no wolfCrypt): its handshake uses opts.sha1. */
#ifndef STRATA_EMBEDDED
int strata_ws_accept_key(const char *key, char out[29]);
#endif

#ifdef __cplusplus
}
#endif
#endif
