/* strata h2: an HTTP/2 connection (nghttp2) over any lower stream, whose
 * streams are strata streams any layer can sit on. Client and server.
 *
 * Contract (on top of streams/stream.h and DESIGN.md "HTTP/2: immediate
 * mode"):
 *  - The connection (strata_h2) owns the lower stream: TCP with prior
 *    knowledge, TLS after ALPN "h2", the pipe pair. It is not a stream
 *    itself; its streams are. Any stream's recv or send drives it: reads
 *    what the lower stream has, feeds nghttp2, pushes out what nghttp2
 *    wants to send. strata_h2_drive does the same for an event loop that
 *    waits on strata_h2_fd for strata_h2_wants. No threads, no timers.
 *  - Receive side, immediate mode: each stream's receive buffer is its
 *    flow-control window (opts.stream_window); DATA is copied there as it
 *    arrives and WINDOW_UPDATE goes out only as strata_recv consumes
 *    (padding counted). A peer that sends past a window gets
 *    FLOW_CONTROL_ERROR from nghttp2. Memory of a connection is bounded by
 *    max_concurrent_streams x stream_window + header lists + a constant.
 *  - Send side: strata_send frames the caller's bytes as DATA as far as
 *    the stream and connection windows allow and returns what went; with
 *    a window at 0 it returns STRATA_NEED_READ (a WINDOW_UPDATE must
 *    come). Frames gather in one bounded output buffer and go down in one
 *    write per call; a payload over 2 KiB is not copied (nghttp2's
 *    NO_COPY: one gathered write), and only what the lower stream does not
 *    take is kept, so a byte counted as sent is never asked for again.
 *    strata_shutdown ends the stream (END_STREAM), strata_h2_send_trailers
 *    with trailers. A server answering many streams per read corks the
 *    connection (strata_h2_cork) so their frames share writes.
 *  - Receive: strata_recv returns body bytes, STRATA_EOF after the peer's
 *    END_STREAM, STRATA_ERR_CLOSED after a RST_STREAM (strata_h2_reset_code
 *    gives the peer's code). A client stream's recv first waits for the
 *    response head (strata_h2_response_head). Message flags: MSG_END comes
 *    with nothing; HTTP/2 bodies are byte streams.
 *  - Headers: pseudo-headers go first whatever the order given; names are
 *    lowercase as HTTP/2 demands (an uppercase name is STRATA_ERR_ARG);
 *    the list received is kept per stream up to opts.max_header_list bytes
 *    (a server answers a request head over it with 431 and never offers
 *    that stream to accept).
 *  - Server: new streams whose request head is complete are taken with
 *    strata_h2_accept; streams that got data, an end, a reset or send
 *    room (WINDOW_UPDATE, the output drained) since the last call are
 *    listed by strata_h2_ready, so one socket serves many streams without
 *    polling each. A stream has no descriptor of its own (strata_fd is
 *    -1): an event loop watches strata_h2_fd for strata_h2_wants, drives
 *    the connection, and wakes the streams strata_h2_ready names
 *    (strata_h2_set_user keeps the application's pointer for that).
 *    A stream's own recv may read the socket too, and so make further
 *    streams acceptable or ready: take both lists until they are empty. Extended CONNECT (RFC 8441) is
 *    advertised (SETTINGS_ENABLE_CONNECT_PROTOCOL=1) unless turned off.
 *  - Client: strata_h2_request opens a stream. With :protocol (extended
 *    CONNECT) it waits for the server's first SETTINGS and fails with
 *    STRATA_ERR_UNSUPPORTED when that did not allow it (a permission sent
 *    in a later SETTINGS frame is seen by later requests; browsers decide
 *    the same way).
 *  - Errors: a connection error (bad preface, bad header block, a protocol
 *    violation, GOAWAY with an error) fails every stream with
 *    STRATA_ERR_PROTO (STRATA_EOF for a graceful GOAWAY past the streams);
 *    strata_h2_error_code says which HTTP/2 code was sent or received. A
 *    stream reset leaves the other streams working.
 *  - Lifetime: streams and the application each hold the connection; it
 *    is freed when strata_h2_free was called and the last stream freed.
 *    Freeing an open stream resets it with CANCEL.
 */
#ifndef STRATA_H2_H
#define STRATA_H2_H

#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { STRATA_H2_CLIENT = 0, STRATA_H2_SERVER = 1 };

/* HTTP/2 error codes (RFC 9113 7). */
enum {
    STRATA_H2_NO_ERROR = 0x0,
    STRATA_H2_PROTOCOL_ERROR = 0x1,
    STRATA_H2_INTERNAL_ERROR = 0x2,
    STRATA_H2_FLOW_CONTROL_ERROR = 0x3,
    STRATA_H2_SETTINGS_TIMEOUT = 0x4,
    STRATA_H2_STREAM_CLOSED = 0x5,
    STRATA_H2_FRAME_SIZE_ERROR = 0x6,
    STRATA_H2_REFUSED_STREAM = 0x7,
    STRATA_H2_CANCEL = 0x8,
    STRATA_H2_COMPRESSION_ERROR = 0x9,
    STRATA_H2_CONNECT_ERROR = 0xa,
    STRATA_H2_ENHANCE_YOUR_CALM = 0xb,
    STRATA_H2_INADEQUATE_SECURITY = 0xc,
    STRATA_H2_HTTP_1_1_REQUIRED = 0xd
};

/* Flags of strata_h2_request / strata_h2_respond. */
#define STRATA_H2_END_STREAM 0x1u   /* no body follows the head */
/* Flag of strata_send on an HTTP/2 stream: these are the body's last
 * bytes; END_STREAM goes on their last DATA frame (no empty frame, no
 * strata_shutdown needed once they all went). */
#define STRATA_H2_SEND_END 0x100u

typedef struct strata_h2_header {
    const char *name;
    const char *value;
} strata_h2_header;

typedef struct strata_h2_opts {
    int role;                        /* STRATA_H2_CLIENT or _SERVER */
    /* Settings we send (0: default). */
    uint32_t max_concurrent_streams; /* default 100 */
    uint32_t stream_window;          /* per-stream receive buffer and
                                        window; default 64 KiB, 1..2^31-1 */
    uint32_t connection_window;      /* default streams x stream_window,
                                        at most 2^31-1 */
    uint32_t max_frame_size;         /* default 16384 (16384..2^24-1) */
    uint32_t max_header_list;        /* default 64 KiB */
    int no_connect_protocol;         /* server: do not offer RFC 8441 */
    size_t output_max;               /* output buffer bound; default
                                        max frame + 64 KiB */
} strata_h2_opts;

typedef struct strata_h2 strata_h2;

/* A connection over lower (owned). A client sends its preface at once
 * (on the first drive). NULL on bad options or allocation failure; lower
 * is then left to the caller. */
strata_h2 *strata_h2_new(strata_stream *lower, const strata_h2_opts *o,
                         const strata_allocator *alloc);
/* Drop the application's hold; the connection goes when its streams do.
 * Does not send GOAWAY (strata_h2_shutdown does). NULL is fine. */
void strata_h2_free(strata_h2 *h);

/* Read, process, write what can be: 0 when it moved something and may
 * be called again, NEED_* when it waits, STRATA_EOF once the connection
 * ended cleanly (GOAWAY both ways or the peer closed after ours), or an
 * error (strata_h2_error_code). */
int strata_h2_drive(strata_h2 *h);
unsigned strata_h2_wants(strata_h2 *h);
int strata_h2_fd(strata_h2 *h);
/* Graceful end: no new streams (GOAWAY with the last stream id); the
 * open ones finish. 0 or NEED_* (call again) or an error. */
int strata_h2_shutdown(strata_h2 *h);
/* Push out what waits (0, NEED_*, or an error). */
int strata_h2_flush(strata_h2 *h);
/* Corked, the stream calls leave their frames in the output buffer (up
 * to 16 KiB) instead of one write each; uncorking pushes them (0, NEED_*
 * or an error), and so do strata_h2_drive and strata_h2_flush. */
int strata_h2_cork(strata_h2 *h, int on);
/* Send a PING; strata_h2_pings counts the acknowledgements. */
int strata_h2_ping(strata_h2 *h);
unsigned long strata_h2_pings(strata_h2 *h);
/* The HTTP/2 error code the connection failed with (sent or received),
 * and whether the peer allows extended CONNECT (after its SETTINGS). */
uint32_t strata_h2_error_code(strata_h2 *h);
int strata_h2_connect_protocol(strata_h2 *h);
/* Streams open now. */
size_t strata_h2_open_streams(strata_h2 *h);

/* Client: open a stream with this request head. 0 and *out, NEED_* while
 * an extended CONNECT waits for the server's SETTINGS, STRATA_ERR_
 * UNSUPPORTED when the server does not allow :protocol, STRATA_ERR_STATE
 * after GOAWAY or at max_concurrent_streams, STRATA_ERR_ARG for a bad
 * head. */
int strata_h2_request(strata_h2 *h, const strata_h2_header *head, size_t n,
                      unsigned flags, strata_stream **out);
/* Server: the next new stream with its request head complete, or NULL
 * (drive the connection and try again). */
strata_stream *strata_h2_accept(strata_h2 *h);
/* Streams that became readable, ended or were reset since they were last
 * listed, one per call, or NULL. */
strata_stream *strata_h2_ready(strata_h2 *h);

/* Server: answer with :status and more headers. */
int strata_h2_respond(strata_stream *s, int status,
                      const strata_h2_header *head, size_t n,
                      unsigned flags);
/* End our side of the stream with trailers (after the body). 0 or NEED_*
 * (retry) or an error. */
int strata_h2_send_trailers(strata_stream *s, const strata_h2_header *t,
                            size_t n);
/* Reset the stream with an HTTP/2 error code. */
int strata_h2_reset(strata_stream *s, uint32_t code);

/* The head received: a server's request (at accept), a client's response
 * (0 once it came, NEED_* before, an error if the stream failed). */
int strata_h2_response_head(strata_stream *s);
const strata_h2_header *strata_h2_head(strata_stream *s, size_t *n);
/* Trailers received (after STRATA_EOF), or NULL. */
const strata_h2_header *strata_h2_trailers(strata_stream *s, size_t *n);
/* The value of a header of the head (first match), or NULL. */
const char *strata_h2_get(strata_stream *s, const char *name);
/* The response :status of a client stream, 0 before it came. */
int strata_h2_status(strata_stream *s);
/* The peer's RST_STREAM code, or the connection's error code once the
 * stream failed; -1 while neither happened. */
long strata_h2_reset_code(strata_stream *s);
int32_t strata_h2_stream_id(strata_stream *s);
/* The application's pointer on a stream (NULL until set). */
void strata_h2_set_user(strata_stream *s, void *user);
void *strata_h2_user(strata_stream *s);
/* The connection a stream belongs to. */
strata_h2 *strata_h2_of(strata_stream *s);

#ifdef __cplusplus
}
#endif
#endif
