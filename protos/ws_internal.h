/* The ws layer's private state, shared by ws.c (framing, messages, control
 * frames, close) and ws_handshake.c (the HTTP/1.1 Upgrade). Not installed.
 */
#ifndef STRATA_WS_INTERNAL_H
#define STRATA_WS_INTERNAL_H

#include <strata/ws.h>
#include <strata/buffered.h>
#include <strata/http1.h>

#include "ws_deflate.h"

#define WS_HDR_MAX 14        /* 2 + 8 extended length + 4 mask key */
#define WS_CTL_MAX 125       /* control frame payload */
#define WS_REASON_MAX 123    /* close reason: 125 - 2 code bytes */
#define WS_POOL 256          /* OS randomness fetched at once (masks) */

enum ws_hs {
    WS_HS_DONE = 0,          /* framing */
    WS_HS_CLIENT_SEND,       /* the request is going out */
    WS_HS_CLIENT_READ,       /* waiting for the response head */
    WS_HS_SERVER_READ,       /* waiting for the request head */
    WS_HS_SERVER_SEND,       /* the 101 is going out */
    WS_HS_SERVER_REFUSE,     /* a refusal is going out, then failure */
    WS_HS_FAILED             /* hs_status says why */
};

/* Payload byte counts. A frame or message is checked against max_frame /
 * max_message (size_t) before it is counted, so size_t would do but for
 * the compressed bytes' slack (wire_limit in ws.c); the embedded profile
 * has no deflate and 32-bit targets, where 64-bit arithmetic costs code. */
#ifdef STRATA_EMBEDDED
typedef size_t ws_len;
#else
typedef uint64_t ws_len;
#endif

/* What one direction of frames is doing on receive. */
typedef struct ws_rx {
    ws_len left;             /* payload bytes of the frame not yet read */
    ws_len msg_size;         /* message bytes declared (or inflated) */
    ws_len msg_wire;         /* compressed payload bytes of the message */
    uint8_t key[4];
    unsigned moff;           /* mask offset of the next payload byte */
    int in_frame;            /* a data frame's header was read */
    int fin;
    int masked;
    int msg_open;            /* a data message is in progress */
    int msg_z;               /* ... and it is compressed */
    unsigned msg_flags;      /* STRATA_MSG_TEXT or 0 */
    uint8_t utf8;            /* validator state of a text message */
    int big;                 /* the last payload was big: no read-ahead */
    size_t zoff, zlen;       /* compressed input waiting in rx_scratch */
} ws_rx;

/* The frame of a caller's send that is going out (header + payload owed). */
typedef struct ws_tx {
    uint8_t hdr[WS_HDR_MAX];
    size_t hdr_len, hdr_off;
    ws_len flen;             /* payload length of the frame */
    ws_len left;             /* payload bytes still owed */
    uint8_t key[4];
    int in_frame;
    int fin;
    int msg_open;            /* frames of a message went: continuation next */
    int text;                /* the open message is text */
    uint8_t utf8;            /* validator state of the text sent */
    /* deflate: the message being compressed */
    int z_msg;               /* a compressed message is open */
    int z_frames;            /* frames built for it */
    int z_finishing;         /* its last input went in; output remains */
    size_t z_ahead;          /* bytes of the caller's call already checked */
    size_t zf_start, zf_len, zf_off; /* own frame in tx_scratch */
} ws_tx;

/* Fields by how much code touches them: those first sit where a Thumb
 * load or store has its short form (offsets up to 124); buffers last. */
struct strata_ws {
    strata_stream base;
    strata_buffered *in;     /* frames and heads are pulled from here */
    strata_stream *out;      /* below `in`: sends skip the buffered hop */
    int role;
    int hs;                  /* enum ws_hs (ws_handshake.c) */
    int rx_status;           /* sticky: STRATA_EOF or an error; 0 while open */
    int tx_status;           /* sticky error of the send side */

    /* our control frames: one in flight (ctl), the rest waiting in slots */
    size_t ctl_len, ctl_off;
    int ctl_is_close;
    int pong_pending;
    int ping_pending;
    int close_queued;        /* our close frame waits for its turn */
    int close_sent;          /* it went: no frame may follow */
    int lower_shut;
    /* the peer's close */
    int peer_closed;
    int half_close;          /* opts.half_close: no automatic close reply */
    int reply_due;           /* answer the peer's close when our message ends */

    /* handshake (ws_handshake.c) */
    size_t max_head;
    char *hs_aux;            /* our configuration and joined lists */
    size_t hs_aux_cap, hs_aux_len;
    char *hs_out;            /* the head we send (max_head) */
    size_t hs_out_len, hs_out_off;
    int hs_status;           /* the error of a failed handshake */
    int http_status;
    const char *hs_protocols;   /* ours: "a, b" in hs_aux, or NULL */
    char *protocol;          /* negotiated subprotocol, or NULL */
    const char *hs_extra;       /* our extra header lines, or NULL */
    char *hs_mem;            /* store | aux | out, one allocation */
    char *hs_store;          /* the peer's head text (max_head) */
    strata_ws_accept_cb accept;
    void *accept_ud;
    int have_req;

    ws_rx rx;
    ws_tx tx;
    uint8_t *tx_scratch;     /* masked / compressed output */
    size_t max_frame, max_message, scratch_cap;

    size_t pong_len;
    size_t ping_len;
    unsigned close_out_code;
    unsigned close_code;
    unsigned error_code;
    unsigned long pongs;     /* pongs received */

    const strata_allocator *alloc;
    int (*random)(void *ud, uint8_t *buf, size_t n);
    void *random_ud;
    int (*sha1)(void *ud, const uint8_t *data, size_t len, uint8_t out[20]);
    void *sha1_ud;
    /* strata_ws_init: buffers come from the caller's memory, never freed */
    int fixed;
    uint8_t *mem;            /* the caller's memory not yet handed out */
    size_t mem_left;

    /* permessage-deflate, NULL when not in force */
    ws_deflate *z;
    uint8_t *rx_scratch;     /* compressed input, unmasked */
    strata_ws_deflate_opts dopts;

    char hs_accept[29];      /* client: the Sec-WebSocket-Accept expected */
    strata_http1_head head;
    strata_ws_request req;
    uint8_t ctl[WS_HDR_MAX + WS_CTL_MAX];
    uint8_t pong[WS_CTL_MAX];
    uint8_t ping[WS_CTL_MAX];
    char close_out_reason[WS_REASON_MAX + 1];
    char close_reason[WS_REASON_MAX + 1];
#ifndef STRATA_EMBEDDED
    uint8_t pool[WS_POOL];   /* OS randomness not yet used */
    size_t pool_left;
#endif
};

typedef struct strata_ws strata_ws;

/* Whether permessage-deflate is in force. The embedded profile has no
 * zlib (ws_deflate.h stands in for the codec): never, so the
 * compiler drops the compressed paths. */
#ifdef STRATA_EMBEDDED
#define WS_Z_ON(w) ((void)(w), 0)
#else
#define WS_Z_ON(w) ((w)->z != NULL)
#endif

/* Whether buffers come from the caller's memory (strata_ws_init): always
 * in the embedded profile, which has no strata_ws_new. */
#ifdef STRATA_EMBEDDED
#define WS_FIXED(w) ((void)(w), 1)
#else
#define WS_FIXED(w) ((w)->fixed)
#endif

/* ws.c */
strata_ws *ws_of(strata_stream *s);
/* Memory for a buffer: the caller's (strata_ws_init, carved in order) or
 * the allocator's; NULL when there is none. ws_give returns it (nothing
 * for the caller's). */
void *ws_take(strata_ws *w, size_t n);
void ws_give(strata_ws *w, void *p);
/* Random bytes (opts.random, else the OS): 0 or STRATA_ERR_IO. */
int ws_random(strata_ws *w, uint8_t *buf, size_t n);
/* Put permessage-deflate with p in force: 0 or STRATA_ERR_NOMEM. */
int ws_use_deflate(strata_ws *w, const ws_deflate_params *p);
/* Queue a close frame with a code (reason may be NULL). */
void ws_queue_close(strata_ws *w, unsigned code, const char *reason);
/* Push our pending frames (control, compressed): 0 or NEED_* / error. */
int ws_push_pending(strata_ws *w);

/* ws_handshake.c */
/* Prepare the handshake of a new layer from its options: 0, STRATA_ERR_ARG
 * (bad options) or STRATA_ERR_NOMEM. */
int ws_handshake_init(strata_ws *w, const strata_ws_opts *o);
/* Drive the handshake: 0 when framing may go on, NEED_* or an error. */
int ws_handshake_step(strata_ws *w);
/* Push what the handshake holds for sending (a flush): 0 or NEED_*. */
int ws_handshake_flush(strata_ws *w);
void ws_handshake_free(strata_ws *w);
/* The memory ws_handshake_init takes for these options (0 without a
 * handshake). */
size_t ws_handshake_mem(const strata_ws_opts *o, size_t max_head);

#endif
