/* strata stream: the one interface every layer speaks.
 *
 * A stack is built by giving one stream another as its lower stream. Every
 * call keeps these rules (DESIGN.md, "The stream contract"):
 *
 *  1. A call returns the bytes it moved (>= 0) or a negative status. It
 *     returns 0 only for a zero-length request or with STRATA_MSG_END: a
 *     zero-length message, or the end of a message whose last fragment was
 *     empty (a WebSocket FIN frame with no payload). End of stream is
 *     STRATA_EOF, never 0.
 *  2. STRATA_NEED_READ / STRATA_NEED_WRITE mean: no progress is possible
 *     until the transport at the BOTTOM of the stack is readable / writable.
 *     They speak of the bottom transport, not the layer: a send may return
 *     NEED_READ (TLS handshake, an HTTP/2 window waiting for WINDOW_UPDATE)
 *     and a recv may return NEED_WRITE (a pong or TLS record must go first).
 *     After a NEED code the caller retries the SAME call (same bytes, same
 *     flags) once the bottom descriptor is ready.
 *  3. Optimistic I/O: try the operation first, wait only after a NEED code;
 *     a layer may hold buffered data or room whatever the socket's state.
 *     strata_poll() says what is ready now without moving any data;
 *     strata_wants() says what the bottom descriptor must wait for: a
 *     bitmask, because a layer can need both directions at once.
 *  4. Messages: layers with boundaries mark them with flags. On send,
 *     STRATA_MSG_END ends a message (without it the bytes are a fragment);
 *     on recv it says the bytes just returned end a message. A byte-stream
 *     caller uses strata_read/strata_write and may ignore boundaries.
 *     A send that moved only part of the bytes is continued by sending the
 *     rest with the same flags: the layer knows it is mid-message.
 *  5. Push encoders, pull decoders: sends go straight down (header and
 *     payload in one sendv, no copy where bytes do not change); decoders
 *     pull exactly their unit from the buffered input stream below
 *     (streams/buffered.h) and never read past it.
 *  6. Errors are values: every status has a strata_strerror() text, and a
 *     layer that speaks to a peer also keeps the protocol's own code.
 *     A caller's mistake is STRATA_ERR_ARG or STRATA_ERR_STATE, never a
 *     crash, and since such a call moved nothing the stream stays usable.
 *     Once a stream returned any other error it stays failed, unless its
 *     layer documents a resynchronisation.
 *  7. Bounded memory, one owning thread, no blocking and no clocks inside
 *     a layer; memory comes from the stack's allocator (strata_allocator),
 *     and a layer can also live in caller-provided storage.
 */
#ifndef STRATA_STREAM_H
#define STRATA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>   /* ssize_t (newlib has it too) */

/* struct iovec comes from <sys/uio.h>. The embedded profile
 * (STRATA_EMBEDDED) also builds with bare-metal C libraries that lack it
 * (newlib for arm-none-eabi): there the same struct, with the same field
 * names, is declared here, unless the C library has the header. */
#if defined(STRATA_EMBEDDED) && defined(__has_include)
#if !__has_include(<sys/uio.h>)
#define STRATA_OWN_IOVEC 1
#endif
#endif
#ifdef STRATA_OWN_IOVEC
struct iovec {
    void *iov_base;
    size_t iov_len;
};
#else
#include <sys/uio.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Statuses: all negative, so they never collide with a byte count. */
enum {
    STRATA_OK = 0,
    STRATA_NEED_READ = -1,   /* wait until the bottom transport is readable */
    STRATA_NEED_WRITE = -2,  /* wait until the bottom transport is writable */
    STRATA_EOF = -3,         /* the peer ended its direction cleanly */
    STRATA_ERR_PROTO = -10,  /* the peer broke the protocol (or truncated it) */
    STRATA_ERR_TOO_BIG = -11,/* a record, line or message over its limit */
    STRATA_ERR_IO = -12,     /* the OS transport failed (see errno) */
    STRATA_ERR_TLS = -13,    /* TLS failure */
    STRATA_ERR_NOMEM = -14,  /* the allocator refused */
    STRATA_ERR_CLOSED = -15, /* the stream was closed or reset */
    STRATA_ERR_STATE = -16,  /* call not valid in this state (send after shutdown) */
    STRATA_ERR_ARG = -17,    /* bad argument (NULL, bad size, bad flags) */
    STRATA_ERR_TIMEOUT = -18,/* a deadline passed (blocking helpers, timers) */
    STRATA_ERR_UNSUPPORTED = -19,/* operation not offered by this layer */
    STRATA_ERR_TRUNCATED = -20,/* the transport ended without the peer's
                                  close (TLS close_notify): cut, not ended */
    STRATA_ERR_GRPC = -21    /* a gRPC call ended with a status other than
                                OK (strata_grpc_status says which) */
};

/* Message flags (strata_send's flags, strata_recv's *flags). */
#define STRATA_MSG_END        0x0001u /* these bytes end a message */
#define STRATA_MSG_TEXT       0x0002u /* text message (WebSocket) */
#define STRATA_MSG_COMPRESSED 0x0004u /* compressed record (gRPC flag byte) */

/* Poll events and wants bits. */
#define STRATA_POLL_IN   0x01u /* recv would make progress now */
#define STRATA_POLL_OUT  0x02u /* send would make progress now */
#define STRATA_POLL_HUP  0x04u /* peer ended its direction (EOF is known) */
#define STRATA_POLL_ERR  0x08u /* the stream has failed */

#define STRATA_WANT_READ  0x01u /* bottom descriptor must become readable */
#define STRATA_WANT_WRITE 0x02u /* bottom descriptor must become writable */

/* The allocator hook of a stack. NULL everywhere means malloc/free. */
typedef struct strata_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *p, size_t size);
    void (*free)(void *ud, void *p);
    void *ud;
} strata_allocator;

typedef struct strata_stream strata_stream;

/* A layer's operations. Every entry but recv and sendv may be NULL:
 *  flush, shutdown: NULL means "pass to the lower stream";
 *  poll:  NULL means "ask the lower stream";
 *  wants: extra wants of this layer (e.g. TLS output waiting), ORed with
 *         what the last NEED codes recorded; NULL means none;
 *  fd:    NULL means "ask the lower stream";
 *  close: release the layer's own resources (not the struct, not lower). */
typedef struct strata_stream_ops {
    const char *name;
    ssize_t (*recv)(strata_stream *s, void *buf, size_t len, unsigned *flags);
    ssize_t (*sendv)(strata_stream *s, const struct iovec *iov, int n,
                     unsigned flags);
    int (*flush)(strata_stream *s);
    int (*shutdown)(strata_stream *s);
    unsigned (*poll)(strata_stream *s, unsigned events);
    unsigned (*wants)(strata_stream *s);
    int (*fd)(strata_stream *s);
    void (*close)(strata_stream *s);
} strata_stream_ops;

/* The common head of every layer; a layer's struct begins with it.
 * Fields are for layer authors; applications use the calls below. */
struct strata_stream {
    const strata_stream_ops *ops;
    strata_stream *lower;             /* NULL at the bottom */
    const strata_allocator *alloc;    /* NULL: malloc */
    unsigned char recv_wants;         /* WANT bits of the last recv's NEED */
    unsigned char send_wants;         /* WANT bits of the last send's NEED */
    unsigned char owns_lower;         /* strata_free frees lower too */
    unsigned char heap;               /* the struct came from alloc */
};

/* Initialise the head of a layer (used by layer constructors). */
void strata_stream_init(strata_stream *s, const strata_stream_ops *ops,
                        strata_stream *lower, const strata_allocator *alloc);

ssize_t strata_recv(strata_stream *s, void *buf, size_t len, unsigned *flags);
ssize_t strata_send(strata_stream *s, const void *buf, size_t len,
                    unsigned flags);
ssize_t strata_sendv(strata_stream *s, const struct iovec *iov, int n,
                     unsigned flags);
/* recv with flags ignored. */
ssize_t strata_read(strata_stream *s, void *buf, size_t len);
/* send with STRATA_MSG_END: the bytes are a whole message. */
ssize_t strata_write(strata_stream *s, const void *buf, size_t len);
/* Push out whatever a layer holds for sending; 0 when all went out. */
int strata_flush(strata_stream *s);
/* Graceful end of our direction (flushes first); the peer sees EOF. */
int strata_shutdown(strata_stream *s);
/* What of `events` (STRATA_POLL_*) is ready now; no data moves. */
unsigned strata_poll(strata_stream *s, unsigned events);
/* STRATA_WANT_* bits the bottom descriptor must wait for, 0 if none. */
unsigned strata_wants(strata_stream *s);
/* The descriptor at the bottom of the stack, or -1 (pipe pair). */
int strata_fd(strata_stream *s);
/* Free the stream and, when it owns it, the stack below. NULL is fine. */
void strata_free(strata_stream *s);

const char *strata_strerror(int status);
/* The layer's name ("socket", "buffered", "line"...). */
const char *strata_name(const strata_stream *s);

/* Allocation through a stack's allocator (NULL: malloc). */
void *strata_alloc(const strata_allocator *a, size_t size);
void *strata_realloc(const strata_allocator *a, void *p, size_t size);
void strata_dealloc(const strata_allocator *a, void *p);

/* Total bytes of an iovec array, or (size_t)-1 on overflow. */
size_t strata_iov_len(const struct iovec *iov, int n);
/* Copy an iovec array's bytes to dst; returns the bytes copied. */
size_t strata_iov_copy(void *dst, const struct iovec *iov, int n);

#ifdef __cplusplus
}
#endif
#endif
