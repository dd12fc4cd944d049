/* strata grpc: gRPC calls on HTTP/2 streams, client and server.
 *
 * A call is a strata stream of messages: strata_send with STRATA_MSG_END
 * sends one message (its length known from the bytes given; a partial send
 * is continued with the rest, as lenprefix does), and strata_recv delivers
 * a message in pieces with STRATA_MSG_END on its last. The gRPC 5-byte
 * prefix is the lenprefix layer's flag-byte form; the h2 stream below gives
 * each call its own flow control, so a slow reader slows its sender and
 * not the connection.
 *
 * Contract (on top of streams/stream.h and protos/h2.h):
 *  - Client: strata_grpc_call opens an HTTP/2 stream with the request head
 *    (:method POST, :path, content-type application/grpc, te: trailers,
 *    grpc-timeout, user-agent, metadata; "-bin" values base64). strata_
 *    shutdown half-closes. recv waits for the response head, then returns
 *    messages, then STRATA_EOF when the trailers say OK, or
 *    STRATA_ERR_GRPC when the call ended with another status (from the
 *    trailers, a trailers-only answer, the HTTP status, a reset, or found
 *    here: a message over max_recv is RESOURCE_EXHAUSTED, a broken frame
 *    INTERNAL). strata_grpc_status / _message say which.
 *    Every way a call ends other than OK is STRATA_ERR_GRPC from then on,
 *    on both sides (STRATA_ERR_NOMEM aside).
 *  - Server: strata_grpc_accept turns an accepted h2 stream into a call
 *    after checking the request (POST, content-type, te, grpc-timeout,
 *    grpc-encoding, the path in the method table). A refused request is
 *    answered here with a readable grpc-message: HTTP 405 (not POST), 415
 *    (not gRPC), 400 (no te: trailers, a malformed grpc-timeout), each with
 *    grpc-status INTERNAL; or a trailers-only UNIMPLEMENTED (unknown
 *    method or service, unknown grpc-encoding, which also lists ours in
 *    grpc-accept-encoding); accept returns the error.
 *    The response head goes before the first message (or with
 *    strata_grpc_send_head); strata_grpc_finish ends the call with a status,
 *    message and trailing metadata (a trailers-only answer when nothing was
 *    sent). A bad message from the client (over max_recv, broken flag,
 *    truncated) is answered here with its status; recv returns the error.
 *  - Deadlines: layers own no clock. strata_grpc_timeout_ms says how long
 *    the call may last (the client's own, or the server's from
 *    grpc-timeout); the event loop arms a timer and calls
 *    strata_grpc_expire, which ends the call with DEADLINE_EXCEEDED (the
 *    server answers it in trailers, the client cancels the stream).
 *  - Cancellation: strata_grpc_cancel resets the stream with CANCEL and the
 *    status becomes CANCELLED; a reset from the peer ends the call the same
 *    way on this side.
 *  - Limits: a message over max_recv is refused from its prefix, before
 *    any byte of it is buffered; over max_send it is STRATA_ERR_TOO_BIG and
 *    nothing is sent. grpc-encoding gzip (zlib) both ways: a compressed
 *    message is gathered whole (at most max_recv) and inflated into at most
 *    max_recv bytes; sending compressed copies the message once.
 *  - A head we send holds at most 20 metadata entries (more is
 *    STRATA_ERR_ARG); "-bin" values received are decoded once each.
 *  - Freeing a call that did not end resets its stream (CANCEL).
 */
#ifndef STRATA_GRPC_H
#define STRATA_GRPC_H

#include <strata/stream.h>
#include <strata/h2.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes. */
enum {
    STRATA_GRPC_OK = 0,
    STRATA_GRPC_CANCELLED = 1,
    STRATA_GRPC_UNKNOWN = 2,
    STRATA_GRPC_INVALID_ARGUMENT = 3,
    STRATA_GRPC_DEADLINE_EXCEEDED = 4,
    STRATA_GRPC_NOT_FOUND = 5,
    STRATA_GRPC_ALREADY_EXISTS = 6,
    STRATA_GRPC_PERMISSION_DENIED = 7,
    STRATA_GRPC_RESOURCE_EXHAUSTED = 8,
    STRATA_GRPC_FAILED_PRECONDITION = 9,
    STRATA_GRPC_ABORTED = 10,
    STRATA_GRPC_OUT_OF_RANGE = 11,
    STRATA_GRPC_UNIMPLEMENTED = 12,
    STRATA_GRPC_INTERNAL = 13,
    STRATA_GRPC_UNAVAILABLE = 14,
    STRATA_GRPC_DATA_LOSS = 15,
    STRATA_GRPC_UNAUTHENTICATED = 16
};

/* One metadata entry. Keys are lowercase; a key ending in "-bin" carries
 * len binary bytes (base64 on the wire), any other a printable string
 * (len 0: strlen). */
typedef struct strata_grpc_md {
    const char *key;
    const void *value;
    size_t len;
} strata_grpc_md;

/* A method a server offers: its path "/package.Service/Method" and the
 * application's pointer. */
typedef struct strata_grpc_method {
    const char *path;
    void *ud;
} strata_grpc_method;

typedef struct strata_grpc_opts {
    /* Client only. */
    const char *path;          /* "/package.Service/Method" (required) */
    const char *authority;     /* :authority (required) */
    const char *scheme;        /* "http" (default) or "https" */
    const char *user_agent;    /* default "strata-grpc/VERSION" */
    long timeout_ms;           /* grpc-timeout; <= 0: none */
    const strata_grpc_md *md;  /* request metadata */
    size_t n_md;
    /* Server only: the method table (accept refuses other paths). */
    const strata_grpc_method *methods;
    size_t n_methods;
    /* Both. */
    const char *encoding;      /* for messages we send: NULL or "identity",
                                  "gzip" */
    size_t max_recv;           /* default 4 MiB */
    size_t max_send;           /* default 4 MiB */
} strata_grpc_opts;

/* Client: a call on connection h. 0 and *out, or STRATA_ERR_ARG (bad
 * options, an unknown encoding), STRATA_ERR_STATE (the connection takes no
 * more streams), STRATA_ERR_NOMEM. */
int strata_grpc_call(strata_h2 *h, const strata_grpc_opts *o,
                     const strata_allocator *alloc, strata_stream **out);

/* Server: a call from an accepted h2 stream (taken over in every case).
 * 0 and *out; or the request was refused and answered here:
 * STRATA_ERR_UNSUPPORTED (unknown method or encoding: UNIMPLEMENTED),
 * STRATA_ERR_PROTO (not POST, not gRPC, no te: trailers, a bad
 * grpc-timeout), STRATA_ERR_NOMEM. */
int strata_grpc_accept(strata_stream *h2_stream, const strata_grpc_opts *o,
                       const strata_allocator *alloc, strata_stream **out);
/* The method table entry a server call matched. */
const strata_grpc_method *strata_grpc_method_of(strata_stream *call);

/* Server: send the response head now with this metadata (otherwise it goes
 * with the first message, empty). STRATA_ERR_STATE if already sent. */
int strata_grpc_send_head(strata_stream *call, const strata_grpc_md *md,
                          size_t n);
/* Server: end the call. 0 when the trailers are on their way (or NEED_*:
 * call again; until then the call takes no more sends or receives,
 * STRATA_ERR_STATE), STRATA_ERR_STATE if it already ended (a reset from
 * the client ends it too: strata_grpc_status says how). Any other error
 * ends the call with the transport's status. */
int strata_grpc_finish(strata_stream *call, int status, const char *message,
                       const strata_grpc_md *md, size_t n);
/* Client: wait for the response head: 0, NEED_*, or, when the call ended
 * without one (a trailers-only answer, an HTTP error, a reset), STRATA_EOF
 * for status OK and STRATA_ERR_GRPC for any other. */
int strata_grpc_head(strata_stream *call);

/* Both: cancel (RST_STREAM CANCEL; status CANCELLED). */
int strata_grpc_cancel(strata_stream *call);
/* Both: the deadline passed (status DEADLINE_EXCEEDED; see above). */
int strata_grpc_expire(strata_stream *call);
/* The call's time budget in ms, -1 for none. */
long strata_grpc_timeout_ms(strata_stream *call);

/* The call's status once it ended, -1 before. */
int strata_grpc_status(strata_stream *call);
/* Its message (percent-decoded), "" when none; NULL before the end. */
const char *strata_grpc_message(strata_stream *call);
/* Metadata received: the request's (server) or the response head's
 * (client), and the trailers' (client). The value of the first entry with
 * this key, "-bin" values decoded, with its length in *len; NULL if none.
 * The memory lives as long as the call. */
const void *strata_grpc_md_get(strata_stream *call, const char *key,
                               size_t *len);
const void *strata_grpc_trailer_get(strata_stream *call, const char *key,
                                    size_t *len);
/* The h2 stream below a call. */
strata_stream *strata_grpc_h2_stream(strata_stream *call);

void strata_grpc_set_user(strata_stream *call, void *user);
void *strata_grpc_user(strata_stream *call);

/* Names for status codes ("DEADLINE_EXCEEDED"), "?" for others. */
const char *strata_grpc_status_name(int status);

/* grpc-timeout values (exposed for tests and tools): parse "100m" to ms
 * (rounding up; 0 on success, STRATA_ERR_PROTO if malformed), and format ms
 * into at most 8 digits and a unit. */
int strata_grpc_timeout_parse(const char *v, long *ms);
void strata_grpc_timeout_format(long ms, char out[16]);

#ifdef __cplusplus
}
#endif
#endif
