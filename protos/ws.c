/* The ws layer: RFC 6455 framing, messages, control frames and the close
 * handshake, with permessage-deflate (RFC 7692) when it is in force.
 *
 * Receive peeks one frame header out of the buffered stream (2 bytes, then
 * the extended length and mask key), then reads the payload through it,
 * limited to what the frame still owes, straight into the caller's buffer
 * and unmasks it there; a small frame already whole in the buffer is
 * copied out in one pass. Control frames (at most 139 bytes on the wire)
 * are peeked whole and handled inside. Send pushes header and payload
 * down: a server's frame in one sendv of the caller's bytes, a client's
 * masked through a bounded scratch buffer (header and payload side by side
 * when the frame fits it, else in chunks), and a small frame of either
 * straight into a write buffer below when there is one. Frame state is
 * kept only for a frame the lower stream took in part.
 *
 * Decisions the header leaves open:
 *  - One strata_send is one frame whose length is the whole send's; a send
 *    that moved only part of its bytes is continued by the rest with the
 *    same flags (a MSG_END send must then be exactly the rest; a send
 *    without it at most the rest). A zero-length send without MSG_END
 *    sends nothing. Text is checked as each frame begins, across the
 *    message, and must be complete at MSG_END; else STRATA_ERR_ARG and
 *    nothing moves.
 *  - The peer's close is the end of ITS direction, as EOF is for any
 *    stream: recv returns STRATA_EOF, and our close frame goes with our
 *    strata_shutdown (or strata_ws_close), echoing the peer's code. So a
 *    side may finish the message it is sending (RFC 6455 5.5.1 allows the
 *    delay) and a duplex application closes as it would a socket. Once both
 *    closes are exchanged, shutdown also shuts the lower stream down.
 *  - strata_shutdown with a message half-sent is STRATA_ERR_STATE (the peer
 *    would see it cut); strata_ws_close may end an open message between two
 *    frames, as RFC 6455 allows; neither may cut into a frame.
 *  - Pongs answer the latest ping only (one 125-byte slot), and not after
 *    our close. Our own frames (pong, ping, close, compressed output) go
 *    between the frames of the caller's sends, never inside one: while a
 *    send is half-way they wait for its continuation. A recv pushes them
 *    first; if they cannot go, it still reads, and answers NEED_WRITE
 *    only when there is nothing to read either (two peers each waiting to
 *    write before reading would otherwise deadlock).
 *  - strata_ws_ping stores the ping and returns 0; it goes out at the next
 *    frame boundary (strata_wants reports WANT_WRITE meanwhile). While an
 *    earlier ping still waits, it answers NEED_WRITE.
 *  - A violation sends a close frame with its code (unless our close went
 *    already, or a frame of ours is half-way out) and its status is
 *    sticky for recv and send; recv answers NEED_* until that frame is out.
 *    The stream ending without a close frame: STRATA_EOF between messages
 *    (close code 1006), STRATA_ERR_PROTO inside a frame or message (1002
 *    sent, best effort). Corrupt compressed data is 1007.
 *  - Close codes accepted from the peer: 1000-1003, 1007-1014 (1012-1014
 *    are IANA-registered: restart, try again later, bad gateway) and
 *    3000-4999; the same may be sent.
 *  - With deflate, every message is compressed, its frames cut by the
 *    scratch buffer (not by the caller's sends). A send returns once the
 *    codec took its bytes; output still waiting goes on the next send,
 *    flush, recv or shutdown. Received compressed bytes count against
 *    max_frame and max_message on the wire (with deflate's worst-case
 *    expansion as slack, see wire_limit), and the inflated bytes against
 *    max_message exactly, so neither a bomb nor an endless run of empty
 *    blocks costs memory or time without bound.
 */
#include "ws_internal.h"
#include "utf8.h"

#include <strata/wbuf.h>

#include <string.h>
#ifndef STRATA_EMBEDDED
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>
#endif

#define DEFAULT_LIMIT ((size_t)16 * 1024 * 1024)
#define DEFAULT_HEAD 8192
#define DEFAULT_BUFFER 16384
#define DEFAULT_SCRATCH 16384
/* A client masks each frame through its scratch buffer and sends it down
 * one scratch at a time: at 16 KiB a 64 KiB message costs four system
 * calls and the client, not the server, limited loopback echo (1.3 GB/s
 * against 2.1 at 64 KiB, bench/README.md). Servers allocate no tx scratch. */
#define DEFAULT_CLIENT_SCRATCH 65536
/* In caller storage (strata_ws_init) memory is the caller's to spend: a
 * small masking buffer, frames go down in chunks of it. */
#define DEFAULT_FIXED_SCRATCH 256
#define MIN_BUFFER 256   /* a whole control frame (139) must fit */
#define MIN_SCRATCH 64
#define LOCAL_IOV 16

/* Whether frames of this side go down through the scratch buffer: a
 * client's, masked there. The embedded profile sends a server's that way
 * too (a zero key copies): one send path in the code, a copy per chunk. */
#ifdef STRATA_EMBEDDED
#define VIA_SCRATCH(role) ((void)(role), 1)
#else
#define VIA_SCRATCH(role) ((role) == STRATA_WS_CLIENT)
#endif

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9,
       OP_PONG = 10 };

#define B0_FIN 0x80u
#define B0_RSV1 0x40u
#define B0_RSV23 0x30u
#define B1_MASK 0x80u

static ssize_t ws_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags);
static ssize_t ws_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags);
static int ws_flush(strata_stream *s);
static int ws_shutdown(strata_stream *s);
static unsigned ws_poll(strata_stream *s, unsigned events);
static unsigned ws_wants(strata_stream *s);
static void ws_close(strata_stream *s);

static const strata_stream_ops ws_ops = {
    "ws", ws_recv, ws_sendv, ws_flush, ws_shutdown, ws_poll, ws_wants, NULL,
    ws_close,
};

strata_ws *ws_of(strata_stream *s)
{
    return s != NULL && s->ops == &ws_ops ? (strata_ws *)s : NULL;
}

/* ---- masking and randomness ------------------------------------------ */

#ifdef STRATA_EMBEDDED
/* dst = src XOR the key, starting at key byte `off`; dst may be src. Byte
 * by byte: the embedded profile spends cycles to save code. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                      const uint8_t key[4], size_t off)
{
    size_t i;

    for (i = 0; i < n; i++)
        dst[i] = src[i] ^ key[(off + i) & 3];
}
#else
/* The 4-byte key twice in a 64-bit word, starting at key byte `off`. */
static uint64_t key_word(const uint8_t key[4], size_t off)
{
    uint8_t k[12];
    uint64_t kw;

    memcpy(k, key, 4);
    memcpy(k + 4, key, 4);
    memcpy(k + 8, key, 4);
    memcpy(&kw, k + (off & 3), 8);
    return kw;
}

/* dst = src XOR the key, starting at key byte `off`. A 64-bit word holds
 * the key twice, so one rotated copy serves the whole run and only the
 * last < 8 bytes go one by one. dst may be src. */
static inline void mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                             const uint8_t key[4], size_t off)
{
    uint64_t kw = key_word(key, off), a, b, c, d;
    uint8_t k[8];
    size_t i;

    while (n >= 32) {
        memcpy(&a, src, 8);
        memcpy(&b, src + 8, 8);
        memcpy(&c, src + 16, 8);
        memcpy(&d, src + 24, 8);
        a ^= kw;
        b ^= kw;
        c ^= kw;
        d ^= kw;
        memcpy(dst, &a, 8);
        memcpy(dst + 8, &b, 8);
        memcpy(dst + 16, &c, 8);
        memcpy(dst + 24, &d, 8);
        src += 32;
        dst += 32;
        n -= 32;
    }
    while (n >= 8) {
        memcpy(&a, src, 8);
        a ^= kw;
        memcpy(dst, &a, 8);
        src += 8;
        dst += 8;
        n -= 8;
    }
    memcpy(k, &kw, 8);
    for (i = 0; i < n; i++)
        dst[i] = src[i] ^ k[i];
}
#endif

#ifdef STRATA_EMBEDDED
/* The embedded profile has no OS: randomness is the caller's hook only
 * (strata_ws_init refuses a client without one). */
int ws_random(strata_ws *w, uint8_t *buf, size_t n)
{
    return w->random(w->random_ud, buf, n) == 0 ? 0 : STRATA_ERR_IO;
}

#define mask_key(w, key) ws_random(w, key, 4)
#else
static int urandom(uint8_t *buf, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    if (fd < 0)
        return STRATA_ERR_IO;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : STRATA_ERR_IO;
}

/* The kernel's CSPRNG: getrandom(2) without blocking, /dev/urandom when
 * getrandom is missing or its pool not yet initialised (never blocks). */
static int os_random(uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, GRND_NONBLOCK);

        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            return urandom(buf + got, n - got);
    }
    return 0;
}

/* Masking keys and the handshake nonce come from opts.random when the
 * caller gives one (called for each key), else from the OS (os_random),
 * fetched WS_POOL bytes at a time: one system call per 64 frames rather
 * than per frame, which small messages feel. */
int ws_random(strata_ws *w, uint8_t *buf, size_t n)
{
    if (w->random != NULL)
        return w->random(w->random_ud, buf, n) == 0 ? 0 : STRATA_ERR_IO;
    while (n > 0) {
        size_t take;

        if (w->pool_left == 0) {
            if (os_random(w->pool, WS_POOL) != 0)
                return STRATA_ERR_IO;
            w->pool_left = WS_POOL;
        }
        take = n < w->pool_left ? n : w->pool_left;
        memcpy(buf, w->pool + WS_POOL - w->pool_left, take);
        w->pool_left -= take;
        buf += take;
        n -= take;
    }
    return 0;
}

/* A masking key: the caller's hook directly, it runs once per frame. */
static int mask_key(strata_ws *w, uint8_t key[4])
{
    if (w->random != NULL)
        return w->random(w->random_ud, key, 4) == 0 ? 0 : STRATA_ERR_IO;
    return ws_random(w, key, 4);
}
#endif

/* ---- construction ---------------------------------------------------- */

static size_t or_default(size_t v, size_t d)
{
    return v != 0 ? v : d;
}

void *ws_take(strata_ws *w, size_t n)
{
    uint8_t *p = w->mem;

    if (!WS_FIXED(w))
        return strata_alloc(w->alloc, n);
    if (n > w->mem_left)
        return NULL;
    w->mem += n;
    w->mem_left -= n;
    return p;
}

void ws_give(strata_ws *w, void *p)
{
    if (!WS_FIXED(w))
        strata_dealloc(w->alloc, p);
}

int ws_use_deflate(strata_ws *w, const ws_deflate_params *p)
{
    w->z = ws_deflate_new(p, w->role, w->alloc);
    if (w->z == NULL)
        return STRATA_ERR_NOMEM;
    if (w->tx_scratch == NULL)
        w->tx_scratch = ws_take(w, w->scratch_cap);
    w->rx_scratch = ws_take(w, w->scratch_cap);
    if (w->tx_scratch == NULL || w->rx_scratch == NULL)
        return STRATA_ERR_NOMEM;
    return 0;
}

/* Parameters agreed elsewhere (RFC 8441): read as a server's response to
 * an offer that allowed everything, so any valid value passes. */
static int agreed_deflate(strata_ws *w, const char *agreed)
{
    strata_ws_deflate_opts any;
    ws_deflate_params p;

    memset(&any, 0, sizeof any);
    any.enable = 1;
    any.client_max_window_bits = 15;
    if (ws_deflate_confirm(&any, agreed, &p) != 0)
        return STRATA_ERR_ARG;
    return ws_use_deflate(w, &p);
}

static void release(strata_ws *w)
{
    ws_handshake_free(w);
    ws_deflate_free(w->z);
    ws_give(w, w->rx_scratch);
    ws_give(w, w->tx_scratch);
    ws_give(w, w->protocol);
    w->z = NULL;
    w->rx_scratch = w->tx_scratch = NULL;
    w->protocol = NULL;
}

static size_t scratch_of(const strata_ws_opts *o, int fixed)
{
    return or_default(o->scratch, fixed ? DEFAULT_FIXED_SCRATCH
                                  : o->role == STRATA_WS_CLIENT
                                      ? DEFAULT_CLIENT_SCRATCH
                                      : DEFAULT_SCRATCH);
}

/* fixed: the buffers come from mem (strata_ws_init), else from alloc. */
static int setup(strata_ws *w, strata_buffered *in, const strata_ws_opts *o,
                 const strata_allocator *alloc, int fixed, void *mem,
                 size_t mem_len)
{
    memset(w, 0, sizeof *w);
    strata_stream_init(&w->base, &ws_ops, &in->base, alloc);
    w->in = in;
    w->out = in->base.lower;
    w->alloc = alloc;
    w->fixed = fixed;
    w->mem = mem;
    w->mem_left = mem_len;
    w->role = o->role;
    w->max_frame = or_default(o->max_frame, DEFAULT_LIMIT);
    w->max_message = or_default(o->max_message, DEFAULT_LIMIT);
    w->max_head = or_default(o->max_head, DEFAULT_HEAD);
    w->scratch_cap = scratch_of(o, fixed);
    w->random = o->random;
    w->random_ud = o->random_ud;
    w->sha1 = o->sha1;
    w->sha1_ud = o->sha1_ud;
    w->half_close = o->half_close;
    w->rx.utf8 = w->tx.utf8 = STRATA_UTF8_ACCEPT;
    if (in->cap < MIN_BUFFER || w->scratch_cap < MIN_SCRATCH ||
        w->out == NULL)
        return STRATA_ERR_ARG;
    if (VIA_SCRATCH(w->role)) {
        w->tx_scratch = ws_take(w, w->scratch_cap);
        if (w->tx_scratch == NULL)
            return STRATA_ERR_NOMEM;
    }
    if (!o->no_handshake)
        return ws_handshake_init(w, o);
    if (o->deflate_agreed != NULL)
        return agreed_deflate(w, o->deflate_agreed);
    return 0;
}

static int role_ok(const strata_ws_opts *o)
{
    return o->role == STRATA_WS_CLIENT || o->role == STRATA_WS_SERVER;
}

/* The hooks a build without an OS and without wolfCrypt cannot do
 * without: SHA-1 for a handshake, randomness for a client's masks. */
static int hooks_ok(const strata_ws_opts *o)
{
#ifdef STRATA_EMBEDDED
    return (o->no_handshake || o->sha1 != NULL) &&
           (o->role == STRATA_WS_SERVER || o->random != NULL);
#else
    (void)o;
    return 1;
#endif
}

#ifndef STRATA_EMBEDDED /* the profile has no constructor that allocates */
/* Window bits of an offer: checked here only, strata_ws_init takes no
 * deflate. */
static int deflate_opts_ok(const strata_ws_deflate_opts *d)
{
    int s = d->server_max_window_bits, c = d->client_max_window_bits;

    return (s == 0 || (s >= 8 && s <= 15)) && (c == 0 || (c >= 8 && c <= 15));
}

strata_stream *strata_ws_new(strata_stream *lower, const strata_ws_opts *o,
                             const strata_allocator *alloc)
{
    strata_buffered *in;
    strata_ws *w;

    if (lower == NULL || o == NULL || !role_ok(o) || !hooks_ok(o) ||
        (!o->no_handshake && !deflate_opts_ok(&o->deflate)))
        return NULL;
    in = strata_buffered_over(lower, or_default(o->buffer, DEFAULT_BUFFER),
                              alloc);
    if (in == NULL)
        return NULL;
    w = strata_alloc(alloc, sizeof *w);
    if (w == NULL || setup(w, in, o, alloc, 0, NULL, 0) != 0) {
        if (w != NULL) {
            release(w);
            strata_dealloc(alloc, w);
        }
        strata_buffered_undo(in, lower);
        return NULL;
    }
    w->base.heap = 1;
    return &w->base;
}
#endif

_Static_assert(sizeof(strata_ws) <= sizeof(strata_ws_storage) &&
                   _Alignof(strata_ws) <= _Alignof(strata_ws_storage),
               "STRATA_WS_STATE_SIZE (ws.h) is too small for strata_ws");

size_t strata_ws_mem_size(const strata_ws_opts *o)
{
    size_t n;

    if (o == NULL)
        return 0;
    n = VIA_SCRATCH(o->role) ? scratch_of(o, 1) : 0;
    if (!o->no_handshake)
        n += ws_handshake_mem(o, or_default(o->max_head, DEFAULT_HEAD));
    return n;
}

int strata_ws_init(strata_ws_storage *ws, strata_buffered *in,
                   const strata_ws_opts *o, void *mem, size_t mem_len)
{
    strata_ws *w = (strata_ws *)(void *)ws;

    if (ws == NULL || in == NULL || o == NULL || !role_ok(o) ||
        !hooks_ok(o) || o->deflate.enable || o->deflate_agreed != NULL ||
        (mem == NULL && mem_len > 0))
        return STRATA_ERR_ARG;
    if (mem_len < strata_ws_mem_size(o))
        return STRATA_ERR_NOMEM;
    /* nothing to undo on failure: the memory is the caller's, and no
     * codec is made here (deflate is refused above) */
    return setup(w, in, o, NULL, 1, mem, mem_len);
}

static void ws_close(strata_stream *s)
{
    release((strata_ws *)s);
}

/* ---- headers ---------------------------------------------------------- */

static size_t put_header(uint8_t *h, unsigned b0, ws_len len,
                         const uint8_t *key)
{
    size_t n = 2, i;

    h[0] = (uint8_t)b0;
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        n = 10;
    }
    if (key != NULL) {
        h[1] |= B1_MASK;
        memcpy(h + n, key, 4);
        n += 4;
    }
    return n;
}

/* Header length announced by the first two bytes (control payload not
 * included). */
static size_t header_len(uint8_t b1)
{
    size_t l7 = b1 & 0x7fu;

    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + (b1 & B1_MASK ? 4 : 0);
}

/* The payload length of a whole header at h, or UINT64_MAX when its
 * encoding is not minimal or its top bit is set (RFC 6455 5.2). */
static uint64_t payload_len(const uint8_t *h)
{
    uint64_t len = h[1] & 0x7fu;
    size_t i;

    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        return len < 126 ? UINT64_MAX : len;
    }
    if (len == 127) {
        len = 0;
        for (i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        return len >> 63 || len <= 0xffff ? UINT64_MAX : len;
    }
    return len;
}

/* What the first two bytes decide (RFC 6455 5.2-5.5, RFC 7692 6). */
static inline int start_ok(const strata_ws *w, unsigned b0, unsigned b1)
{
    unsigned op = b0 & 0x0fu;
    int masked = (b1 & B1_MASK) != 0;

    if ((b0 & B0_RSV23) || masked != (w->role == STRATA_WS_SERVER))
        return 0;
    if (op >= OP_CLOSE)
        return op <= OP_PONG && (b0 & B0_FIN) && !(b0 & B0_RSV1) &&
               (b1 & 0x7fu) <= WS_CTL_MAX;
    if (op > OP_BINARY)
        return 0;
    if (op == OP_CONT)
        return w->rx.msg_open && !(b0 & B0_RSV1);
    return !w->rx.msg_open && (!(b0 & B0_RSV1) || WS_Z_ON(w));
}

/* ---- our own frames: control and compressed ----------------------- */

static int valid_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* These two run on every send and recv: bitwise, without branches. */
static int closing_out(const strata_ws *w)
{
    return (w->close_queued | w->ctl_is_close | w->close_sent) != 0;
}

/* Whether our own bytes wait to go (ctl_len and zf_len are 0 when no
 * frame of ours is in flight). */
static int pending(const strata_ws *w)
{
    return (w->ctl_len | w->tx.zf_len |
            (size_t)(w->pong_pending | w->ping_pending | w->close_queued |
                     w->tx.z_finishing)) != 0;
}

void ws_queue_close(strata_ws *w, unsigned code, const char *reason)
{
    size_t n = 0;

    if (reason != NULL) {
        const char *end = memchr(reason, '\0', WS_REASON_MAX + 1);

        n = end != NULL ? (size_t)(end - reason) : WS_REASON_MAX;
        memcpy(w->close_out_reason, reason, n);
    }
    w->close_out_reason[n] = '\0';
    w->close_out_code = code;
    w->close_queued = 1;
}

/* A failure of the send side: NEED codes pass, anything else sticks, as
 * a frame of ours may be cut. */
static int tx_failed(strata_ws *w, int r)
{
    if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE && w->tx_status == 0)
        w->tx_status = r;
    return r;
}

static int build_control(strata_ws *w, unsigned op, const uint8_t *p,
                         size_t len)
{
    uint8_t key[4];
    size_t hl;
    int r;

    if (w->role == STRATA_WS_CLIENT && (r = mask_key(w, key)) < 0)
        return r;
    hl = put_header(w->ctl, B0_FIN | op, len,
                    w->role == STRATA_WS_CLIENT ? key : NULL);
    if (len > 0)
        memcpy(w->ctl + hl, p, len);
    if (w->role == STRATA_WS_CLIENT)
        mask_copy(w->ctl + hl, w->ctl + hl, len, key, 0);
    w->ctl_len = hl + len;
    w->ctl_off = 0;
    w->ctl_is_close = op == OP_CLOSE;
    return 0;
}

/* Take the next waiting control frame into the ctl buffer: 1 if one was
 * loaded, 0 if none waits, or an error. Pongs first: the peer waits. */
static int load_control(strata_ws *w)
{
    uint8_t body[WS_CTL_MAX];
    size_t n;
    int r = 0;

    if (w->pong_pending) {
        w->pong_pending = 0;
        r = build_control(w, OP_PONG, w->pong, w->pong_len);
    } else if (w->ping_pending) {
        w->ping_pending = 0;
        r = build_control(w, OP_PING, w->ping, w->ping_len);
    } else if (w->close_queued) {
        n = strlen(w->close_out_reason);
        body[0] = (uint8_t)(w->close_out_code >> 8);
        body[1] = (uint8_t)w->close_out_code;
        memcpy(body + 2, w->close_out_reason, n);
        w->close_queued = 0;
        r = build_control(w, OP_CLOSE, body, n + 2);
    } else {
        return 0;
    }
    return r < 0 ? r : 1;
}

static int push_bytes(strata_ws *w, const uint8_t *p, size_t len,
                      size_t *off)
{
    while (*off < len) {
        ssize_t r = strata_send(w->out, p + *off, len - *off, 0);

        if (r < 0)
            return (int)r;
        if (r == 0)
            return STRATA_ERR_IO; /* a lower stream broke rule 1 */
        *off += (size_t)r;
    }
    return 0;
}

/* A control frame is the layer's own, not the caller's: the caller will
 * not know to flush a write buffer below for it (a pong must not wait
 * there for the application's next message), so the layer flushes, best
 * effort; what cannot go yet shows in strata_wants below. */
static void control_sent(strata_ws *w)
{
    if (w->ctl_is_close) {
        w->close_sent = 1;
        w->ctl_is_close = 0;
        w->pong_pending = w->ping_pending = 0;
    }
    (void)strata_flush(w->out);
    w->ctl_len = w->ctl_off = 0;
}

static int deflate_step(strata_ws *w, const uint8_t *in, size_t len,
                        int fin, size_t *used);

int ws_push_pending(strata_ws *w)
{
    size_t used;
    int r;

    if (w->tx_status != 0)
        return w->tx_status;
    for (;;) {
        if (w->ctl_off < w->ctl_len) {
            r = push_bytes(w, w->ctl, w->ctl_len, &w->ctl_off);
            if (r < 0)
                return tx_failed(w, r);
            control_sent(w);
            continue;
        }
        if (WS_Z_ON(w) && w->tx.zf_off < w->tx.zf_len) {
            r = push_bytes(w, w->tx_scratch + w->tx.zf_start, w->tx.zf_len,
                           &w->tx.zf_off);
            if (r < 0)
                return tx_failed(w, r);
            w->tx.zf_len = w->tx.zf_off = 0;
            continue;
        }
        /* nothing may cut into a caller's frame, nothing follows a close */
        if (w->tx.in_frame || w->close_sent)
            return 0;
        if (WS_Z_ON(w) && w->tx.z_finishing) {
            r = deflate_step(w, NULL, 0, 1, &used);
            if (r < 0)
                return r;
            continue;
        }
        r = load_control(w);
        if (r <= 0)
            return r < 0 ? tx_failed(w, r) : 0;
    }
}

/* ---- receive: failures ----------------------------------------------- */

/* The sticky receive status, once the close frame that tells the peer is
 * out (a transport failure on the way only ends the wait). */
static unsigned reply_code(const strata_ws *w);

/* Push our close out; once both closes went, end the transport's
 * direction too: 0 or a status (NEED codes while it cannot go). */
static int close_out(strata_ws *w)
{
    int r = ws_push_pending(w);

    if (r == 0)
        r = strata_flush(w->out);
    if (r == 0 && w->peer_closed && w->close_sent && !w->lower_shut) {
        r = strata_shutdown(w->out);
        w->lower_shut = r == 0;
    }
    return r;
}

/* Answer the peer's close (RFC 6455 5.5.1): queue ours once no message of
 * ours is open, push it out best effort, and end the transport's direction
 * once it went. What cannot go now goes on the next call (strata_wants
 * says WANT_WRITE meanwhile). */
static void answer_close(strata_ws *w)
{
    if (w->reply_due && !closing_out(w) && !w->tx.in_frame &&
        !w->tx.msg_open && !w->tx.z_msg) {
        ws_queue_close(w, reply_code(w), NULL);
        w->reply_due = 0;
    }
    if (w->peer_closed && closing_out(w) && w->tx_status == 0)
        (void)close_out(w);
}

static ssize_t rx_final(strata_ws *w)
{
    if (w->rx_status == STRATA_EOF)
        answer_close(w);
    if (w->rx_status != STRATA_EOF && (w->close_queued || w->ctl_is_close)) {
        int r = ws_push_pending(w);

        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return r;
    }
    return w->rx_status;
}

/* The peer broke the protocol: keep the code, tell the peer (unless a
 * close of ours went or is going, or a frame of the caller's is half-way
 * out and may not be cut), and make the status sticky. */
static ssize_t fail(strata_ws *w, unsigned code, int status)
{
    if (w->rx_status == 0) {
        w->rx_status = status;
        w->error_code = code;
        w->pong_pending = w->ping_pending = 0;
        if (!closing_out(w) && !w->tx.in_frame && w->tx_status == 0)
            ws_queue_close(w, code, NULL);
    }
    return rx_final(w);
}

/* A read of the payload failed: the stream ending inside a frame is a
 * truncation; the lower stream's errors stick. */
static ssize_t payload_failed(strata_ws *w, ssize_t r)
{
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r == STRATA_EOF) {
        w->close_code = STRATA_WS_ABNORMAL;
        return fail(w, STRATA_WS_PROTOCOL_ERROR, STRATA_ERR_PROTO);
    }
    w->rx_status = (int)r;
    return r;
}

/* A peek of a header failed: at a message boundary with nothing buffered
 * the stream simply ended without a close frame (1006). */
static ssize_t peek_failed(strata_ws *w, ssize_t r)
{
    if (r == STRATA_EOF && strata_buffered_len(w->in) == 0 &&
        !w->rx.msg_open) {
        w->close_code = STRATA_WS_ABNORMAL;
        w->rx_status = STRATA_EOF;
        return r;
    }
    return payload_failed(w, r);
}

/* ---- receive: headers and control frames -------------------------- */

static ssize_t peek(strata_ws *w, size_t n, const uint8_t **h)
{
    /* After a big payload, read only what the header lacks, so the next
     * big payload is read into the caller's buffer, not copied via ours. */
    if (w->rx.big)
        return strata_buffered_peek_exact(w->in, n, h);
    return strata_buffered_peek(w->in, n, h);
}

static ssize_t on_close(strata_ws *w, const uint8_t *p, size_t len)
{
    unsigned code = STRATA_WS_NO_STATUS;

    if (len == 1)
        return fail(w, STRATA_WS_PROTOCOL_ERROR, STRATA_ERR_PROTO);
    if (len >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!valid_code(code))
            return fail(w, STRATA_WS_PROTOCOL_ERROR, STRATA_ERR_PROTO);
        if (!strata_utf8_valid(p + 2, len - 2))
            return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
        memcpy(w->close_reason, p + 2, len - 2);
        w->close_reason[len - 2] = '\0';
    }
    w->close_code = code;
    w->peer_closed = 1;
    w->pong_pending = 0;
    w->rx_status = STRATA_EOF;
    w->reply_due = !w->half_close && !closing_out(w);
    answer_close(w);
    return STRATA_EOF;
}

/* A whole control frame, header at h (hl bytes), payload behind it. */
static ssize_t on_control(strata_ws *w, const uint8_t *h, size_t hl)
{
    uint8_t body[WS_CTL_MAX];
    unsigned op = h[0] & 0x0fu;
    size_t len = h[1] & 0x7fu;

    memcpy(body, h + hl, len);
    if (h[1] & B1_MASK)
        mask_copy(body, body, len, h + 2, 0);
    strata_buffered_consume(w->in, hl + len);
    if (op == OP_CLOSE)
        return on_close(w, body, len);
    if (op == OP_PONG) {
        w->pongs++;
    } else if (!closing_out(w)) {
        /* only the latest ping is answered: an unsent pong is dropped */
        if (w->ctl_off == 0 && w->ctl_len > 0 && w->ctl[0] == (B0_FIN | OP_PONG))
            w->ctl_len = 0;
        memcpy(w->pong, body, len);
        w->pong_len = len;
        w->pong_pending = 1;
    }
    return 1;
}

/* A limit for compressed bytes on the wire: deflate may expand data it
 * cannot compress (stored blocks: 5 bytes per 64 KiB, zlib's bound is
 * about 0.03%), so a message of exactly max_message bytes may come as a
 * little more. The inflated bytes are held to the limit itself. */
static uint64_t wire_limit(size_t max)
{
    return (uint64_t)max + max / 256 + 1024;
}

/* Limits, checked before a byte of the payload is read. */
static ssize_t check_size(strata_ws *w, unsigned b0, uint64_t len)
{
    int cont = (b0 & 0x0fu) == OP_CONT;
    int z = WS_Z_ON(w) && (cont ? w->rx.msg_z : (b0 & B0_RSV1) != 0);
    uint64_t frame = z ? wire_limit(w->max_frame) : w->max_frame;
    uint64_t message = z ? wire_limit(w->max_message) : w->max_message;
    uint64_t sofar = !cont ? 0 : z ? w->rx.msg_wire : w->rx.msg_size;

    if (len > frame || len > message - sofar)
        return fail(w, STRATA_WS_TOO_BIG, STRATA_ERR_TOO_BIG);
    return 0;
}

static void start_frame(strata_ws *w, const uint8_t *h, size_t hl,
                        uint64_t len)
{
    ws_rx *x = &w->rx;
    unsigned op = h[0] & 0x0fu;

    if (op != OP_CONT) {
        x->msg_open = 1;
        x->msg_z = WS_Z_ON(w) && (h[0] & B0_RSV1) != 0;
        x->msg_flags = op == OP_TEXT ? STRATA_MSG_TEXT : 0;
        x->utf8 = STRATA_UTF8_ACCEPT;
        x->msg_size = x->msg_wire = 0;
    }
    x->masked = (h[1] & B1_MASK) != 0;
    if (x->masked)
        memcpy(x->key, h + hl - 4, 4);
    x->moff = 0;
    x->fin = (h[0] & B0_FIN) != 0;
    x->left = len;
    if (x->msg_z)
        x->msg_wire += len;
    else
        x->msg_size += len;
    x->big = len >= w->in->cap / 2;
    x->in_frame = 1;
    strata_buffered_consume(w->in, hl);
}

/* Pull one frame header: 0 when a data frame's payload is next, 1 when a
 * control frame was handled, or a status. */
static ssize_t read_header(strata_ws *w)
{
    const uint8_t *h;
    uint64_t len;
    size_t hl, need;
    ssize_t r = peek(w, 2, &h);

    if (r < 0)
        return peek_failed(w, r);
    if (!start_ok(w, h[0], h[1]))
        return fail(w, STRATA_WS_PROTOCOL_ERROR, STRATA_ERR_PROTO);
    hl = header_len(h[1]);
    /* a control frame is taken whole: at most 6 + 125 bytes */
    need = hl + ((h[0] & 0x0fu) >= OP_CLOSE ? (h[1] & 0x7fu) : 0);
    if ((size_t)r < need && (r = peek(w, need, &h)) < 0)
        return peek_failed(w, r);
    if ((h[0] & 0x0fu) >= OP_CLOSE)
        return on_control(w, h, hl);
    len = payload_len(h);
    if (len == UINT64_MAX)
        return fail(w, STRATA_WS_PROTOCOL_ERROR, STRATA_ERR_PROTO);
    if ((r = check_size(w, h[0], len)) < 0)
        return r;
    start_frame(w, h, hl, len);
    return 0;
}

/* ---- receive: payload ------------------------------------------------- */

/* Payload already buffered is copied out; an empty buffer costs a recv
 * through the buffered stream, which reads a big request straight into
 * buf. After a partial copy the rest of a big request is tried the same
 * way: NEED or EOF there only ends this call early. */
static ssize_t take_payload(strata_ws *w, uint8_t *buf, size_t want)
{
    strata_buffered *in = w->in;
    size_t have = strata_buffered_len(in), n;
    unsigned ignored;
    ssize_t r;

    if (have == 0)
        return strata_recv(&in->base, buf, want, &ignored);
    n = want < have ? want : have;
    memcpy(buf, in->buf + in->start, n);
    strata_buffered_consume(in, n);
    if (n < want && want - n >= in->cap / 2) {
        r = strata_recv(&in->base, buf + n, want - n, &ignored);
        if (r > 0)
            n += (size_t)r;
    }
    return (ssize_t)n;
}

/* The frame's payload is all read: at a final frame the message ends. */
static ssize_t frame_done(strata_ws *w, ssize_t r, unsigned *flags)
{
    ws_rx *x = &w->rx;

    x->in_frame = 0;
    if (!x->fin)
        return r;
    if ((x->msg_flags & STRATA_MSG_TEXT) && x->utf8 != STRATA_UTF8_ACCEPT)
        return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
    x->msg_open = 0;
    *flags |= STRATA_MSG_END;
    return r;
}

static ssize_t check_text(strata_ws *w, const uint8_t *p, size_t n)
{
    ws_rx *x = &w->rx;

    if (x->msg_flags & STRATA_MSG_TEXT) {
        x->utf8 = strata_utf8_feed(x->utf8, p, n);
        if (x->utf8 == STRATA_UTF8_REJECT)
            return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
    }
    return 0;
}

static ssize_t recv_plain(strata_ws *w, uint8_t *buf, size_t len,
                          unsigned *flags)
{
    ws_rx *x = &w->rx;
    size_t want = len < x->left ? len : (size_t)x->left;
    ssize_t r = 0;

    if (want > 0) {
        r = take_payload(w, buf, want);
        if (r < 0)
            return payload_failed(w, r);
        if (x->masked) {
            mask_copy(buf, buf, (size_t)r, x->key, x->moff);
            x->moff = (x->moff + (unsigned)r) & 3u;
        }
        x->left -= (ws_len)r;
        if (check_text(w, buf, (size_t)r) < 0)
            return rx_final(w);
    }
    *flags = x->msg_flags;
    return x->left == 0 ? frame_done(w, r, flags) : r;
}

/* Compressed payload into rx_scratch, unmasked there: the codec may take
 * only part of it, and the buffered stream's bytes may move meanwhile. */
static ssize_t fill_zin(strata_ws *w)
{
    ws_rx *x = &w->rx;
    size_t want = w->scratch_cap < x->left ? w->scratch_cap : (size_t)x->left;
    ssize_t r = take_payload(w, w->rx_scratch, want);

    if (r < 0)
        return payload_failed(w, r);
    if (x->masked) {
        mask_copy(w->rx_scratch, w->rx_scratch, (size_t)r, x->key, x->moff);
        x->moff = (x->moff + (unsigned)r) & 3u;
    }
    x->left -= (ws_len)r;
    x->zoff = 0;
    x->zlen = (size_t)r;
    return r;
}

/* One decompress call into buf: bytes made, or a status. The room offered
 * stops one byte past max_message, so an excess is seen, never stored. */
static ssize_t inflate_some(strata_ws *w, uint8_t *buf, size_t room,
                            int *done, size_t *used)
{
    ws_rx *x = &w->rx;
    uint64_t allowed = w->max_message - x->msg_size;
    int fin = x->fin && x->left == 0;
    ssize_t r;

    if (room > allowed + 1)
        room = (size_t)allowed + 1;
    r = ws_deflate_decompress(w->z, w->rx_scratch + x->zoff, x->zlen - x->zoff,
                              fin, buf, room, used, done);
    if (r == STRATA_ERR_NOMEM) {
        w->rx_status = STRATA_ERR_NOMEM;
        return r;
    }
    if (r < 0)
        return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
    x->zoff += *used;
    if ((uint64_t)r > allowed)
        return fail(w, STRATA_WS_TOO_BIG, STRATA_ERR_TOO_BIG);
    x->msg_size += (uint64_t)r;
    if (check_text(w, buf, (size_t)r) < 0)
        return rx_final(w);
    return r;
}

/* Inflate the open compressed message into buf. Returns bytes made (0
 * without MSG_END when this frame is spent: the next header comes). */
static ssize_t recv_inflate(strata_ws *w, uint8_t *buf, size_t len,
                            unsigned *flags)
{
    ws_rx *x = &w->rx;
    size_t made = 0, used;
    int done;
    ssize_t r;

    *flags = x->msg_flags;
    for (;;) {
        if (x->zoff == x->zlen && x->left > 0 && (r = fill_zin(w)) < 0)
            return made > 0 ? (ssize_t)made : r;
        r = inflate_some(w, buf + made, len - made, &done, &used);
        if (r < 0) /* what was made before is good: the error comes next */
            return made > 0 ? (ssize_t)made : r;
        made += (size_t)r;
        if (done)
            return frame_done(w, (ssize_t)made, flags);
        if (made == len)
            return (ssize_t)made;
        if (r == 0 && used == 0 && x->zoff == x->zlen && x->left == 0) {
            if (x->fin) /* the codec will not finish the message */
                return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
            x->in_frame = 0;
            return (ssize_t)made;
        }
        if (r == 0 && used == 0 && x->zoff < x->zlen)
            return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
    }
}

#define SLOW_PATH (-1000) /* not a status: the frame needs the general path */

#ifdef STRATA_EMBEDDED
/* The embedded profile keeps the general path only: code over speed. */
static ssize_t recv_small(strata_ws *w, uint8_t *buf, size_t len,
                          unsigned *flags)
{
    (void)w, (void)buf, (void)len, (void)flags;
    return SLOW_PATH;
}
#else

/* The common case in one pass: a whole uncompressed data frame with a
 * 7-bit length is buffered and fits the caller's buffer. No peek, one
 * consume, no frame state. Anything else takes the general path. */
static ssize_t recv_small(strata_ws *w, uint8_t *buf, size_t len,
                          unsigned *flags)
{
    strata_buffered *in = w->in;
    const uint8_t *h = in->buf + in->start;
    size_t have = in->end - in->start, n, hl;
    ws_rx *x = &w->rx;
    unsigned b0, op;

    if (have < 2 || (h[1] & 0x7fu) >= 126 || !start_ok(w, h[0], h[1]))
        return SLOW_PATH;
    b0 = h[0];
    op = b0 & 0x0fu;
    n = h[1] & 0x7fu;
    hl = h[1] & B1_MASK ? 6 : 2;
    if (op >= OP_CLOSE || (b0 & B0_RSV1) || (op == OP_CONT && x->msg_z) ||
        have < hl + n || n > len || n > w->max_frame ||
        n > w->max_message - (op == OP_CONT ? x->msg_size : 0))
        return SLOW_PATH;
    if (op != OP_CONT) {
        x->msg_open = 1;
        x->msg_z = 0;
        x->msg_flags = op == OP_TEXT ? STRATA_MSG_TEXT : 0;
        x->utf8 = STRATA_UTF8_ACCEPT;
        x->msg_size = 0;
    }
    x->msg_size += n;
    x->big = 0;
    if (hl == 6)
        mask_copy(buf, h + 6, n, h + 2, 0);
    else
        memcpy(buf, h + 2, n);
    strata_buffered_consume(in, hl + n);
    if (check_text(w, buf, n) < 0)
        return rx_final(w);
    *flags = x->msg_flags;
    if (!(b0 & B0_FIN))
        return (ssize_t)n;
    if ((x->msg_flags & STRATA_MSG_TEXT) && x->utf8 != STRATA_UTF8_ACCEPT)
        return fail(w, STRATA_WS_BAD_DATA, STRATA_ERR_PROTO);
    x->msg_open = 0;
    *flags |= STRATA_MSG_END;
    return (ssize_t)n;
}
#endif

static ssize_t ws_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags)
{
    strata_ws *w = (strata_ws *)s;
    ssize_t r;
    int out;

    if (w->hs != WS_HS_DONE && (r = ws_handshake_step(w)) != 0)
        return r;
    if (w->rx_status != 0)
        return rx_final(w);
    for (;;) {
        /* our pong first; if it cannot go, read anyway (see above) */
        out = pending(w) ? ws_push_pending(w) : 0;
        if (out != STRATA_NEED_READ && out != STRATA_NEED_WRITE)
            out = 0;
        *flags = 0;
        if (!w->rx.in_frame &&
            (r = recv_small(w, buf, len, flags)) != SLOW_PATH) {
            if (r == 0 && !(*flags & STRATA_MSG_END) && w->rx_status == 0)
                continue; /* an empty fragment */
            return r;
        }
        if (!w->rx.in_frame) {
            r = read_header(w);
            if (r == STRATA_NEED_READ && out < 0 && w->rx_status == 0)
                return out;
            if (r < 0)
                return r;
            if (r > 0)
                continue;
        }
        if (WS_Z_ON(w) && w->rx.msg_z)
            r = recv_inflate(w, buf, len, flags);
        else
            r = recv_plain(w, buf, len, flags);
        if (r == 0 && !(*flags & STRATA_MSG_END) && w->rx_status == 0)
            continue; /* an empty fragment, or a spent compressed frame */
        if (r == STRATA_NEED_READ && out < 0 && w->rx_status == 0)
            return out;
        return r;
    }
}

/* ---- send: a caller's frame ------------------------------------------ */

static void settle(strata_ws *w)
{
    ws_tx *t = &w->tx;

    if (t->left == 0 && t->hdr_off == t->hdr_len) {
        t->in_frame = 0;
        if (t->fin) {
            t->msg_open = 0;
            t->utf8 = STRATA_UTF8_ACCEPT;
        }
    }
}

static uint8_t text_state(uint8_t st, const struct iovec *iov, int n,
                          size_t skip, int end)
{
    int i;

    for (i = 0; i < n && st != STRATA_UTF8_REJECT; i++) {
        size_t l = iov[i].iov_len;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        st = strata_utf8_feed(st, (const uint8_t *)iov[i].iov_base + skip,
                              l - skip);
        skip = 0;
    }
    return end && st != STRATA_UTF8_ACCEPT ? STRATA_UTF8_REJECT : st;
}

#ifndef STRATA_EMBEDDED /* there a server sends through scratch too */
/* One sendv of the header's unsent part (if any) and the caller's bytes. */
static ssize_t send_down(strata_ws *w, const struct iovec *iov, int n)
{
    ws_tx *t = &w->tx;
    struct iovec v[LOCAL_IOV + 1];
    size_t rem = t->hdr_len - t->hdr_off;

    if (rem == 0)
        return strata_sendv(w->out, iov, n, 0);
    if (n > LOCAL_IOV) /* rare: the header alone first, then the iovecs */
        return strata_send(w->out, t->hdr + t->hdr_off, rem, 0);
    v[0].iov_base = t->hdr + t->hdr_off;
    v[0].iov_len = rem;
    if (n > 0)
        memcpy(v + 1, iov, (size_t)n * sizeof *iov);
    return strata_sendv(w->out, v, n + 1, 0);
}

/* Server: send until a payload byte moved (or, for an empty payload, the
 * header is out): a call may not return 0 for bytes it was given. */
static ssize_t push_plain(strata_ws *w, const struct iovec *iov, int n,
                          size_t total)
{
    ws_tx *t = &w->tx;
    size_t moved = 0;

    for (;;) {
        size_t rem = t->hdr_len - t->hdr_off, hdr;
        ssize_t r;

        if (rem == 0 && (total == 0 || moved > 0))
            break;
        r = send_down(w, iov, n);
        if (r < 0)
            return r;
        if (r == 0)
            return STRATA_ERR_IO;
        hdr = (size_t)r < rem ? (size_t)r : rem;
        t->hdr_off += hdr;
        moved = (size_t)r - hdr;
    }
    t->left -= moved;
    settle(w);
    return (ssize_t)moved;
}
#endif

/* Mask up to scratch_cap bytes of the caller's, from byte `from` of this
 * call, into tx_scratch; the key offset follows the frame (a server's key
 * is zero: a copy). */
static size_t mask_chunk(strata_ws *w, const struct iovec *iov, int n,
                         size_t from, size_t want)
{
    ws_tx *t = &w->tx;
    size_t cap = want < w->scratch_cap ? want : w->scratch_cap, done = 0;
    size_t at = (size_t)(t->flen - t->left) + from;
    int i;

    for (i = 0; i < n && done < cap; i++) {
        size_t l = iov[i].iov_len, take;

        if (from >= l) {
            from -= l;
            continue;
        }
        take = l - from < cap - done ? l - from : cap - done;
        mask_copy(w->tx_scratch + done,
                  (const uint8_t *)iov[i].iov_base + from, take, t->key,
                  at + done);
        done += take;
        from = 0;
    }
    return done;
}

/* Header and masked chunks (VIA_SCRATCH), as long as the lower stream
 * takes all it is offered. */
static ssize_t push_masked(strata_ws *w, const struct iovec *iov, int n,
                           size_t total)
{
    ws_tx *t = &w->tx;
    size_t moved = 0;
    ssize_t r;

    for (;;) {
        size_t rem = t->hdr_len - t->hdr_off, chunk, hdr, body;
        struct iovec v[2];

        if (rem == 0 && moved == total)
            break;
        chunk = mask_chunk(w, iov, n, moved, total - moved);
        v[0].iov_base = t->hdr + t->hdr_off;
        v[0].iov_len = rem;
        v[1].iov_base = w->tx_scratch;
        v[1].iov_len = chunk;
        r = strata_sendv(w->out, rem > 0 ? v : v + 1, rem > 0 ? 2 : 1, 0);
        if (r < 0 && moved > 0)
            break;
        if (r <= 0)
            return r < 0 ? r : STRATA_ERR_IO;
        hdr = (size_t)r < rem ? (size_t)r : rem;
        t->hdr_off += hdr;
        body = (size_t)r - hdr;
        moved += body;
        if (moved > 0 && body < chunk)
            break; /* a short write: the lower stream is full */
    }
    t->left -= moved;
    settle(w);
    return (ssize_t)moved;
}

/* The rest of the frame going out. */
static ssize_t push_frame(strata_ws *w, const struct iovec *iov, int n,
                          size_t total)
{
#ifndef STRATA_EMBEDDED
    if (!VIA_SCRATCH(w->role))
        return push_plain(w, iov, n, total);
#endif
    return push_masked(w, iov, n, total);
}

/* A frame of which `sent` bytes went (its header, t->hdr_len bytes in
 * t->hdr, first): once any went, the message is open; a frame that went
 * whole needs no more state; one cut short goes on from t->hdr and t->key.
 * Returns the payload bytes that went, or 0 when only header bytes did. */
static size_t frame_went(strata_ws *w, size_t total, size_t sent,
                         unsigned b0, uint8_t st)
{
    ws_tx *t = &w->tx;
    int end = (b0 & B0_FIN) != 0;
    size_t hl = t->hdr_len, hsent = sent < hl ? sent : hl;

    if ((b0 & 0x0fu) != OP_CONT)
        t->text = (b0 & 0x0fu) == OP_TEXT;
    t->msg_open = !end || sent < hl + total;
    t->utf8 = end ? STRATA_UTF8_ACCEPT : st;
    if (sent == hl + total)
        return total;
    t->hdr_off = hsent;
    t->flen = total;
    t->left = total - (sent - hsent);
    t->fin = end;
    t->utf8 = st;
    t->in_frame = 1;
    return sent - hsent;
}

#define SEND_LATER (-1000) /* not a status: too big to go in one piece */

/* The whole frame down at once, its header (as in t->hdr) built where
 * the frame goes: into a write buffer below; for a client, beside the
 * masked payload in the scratch buffer; for a server, the header beside
 * the caller's iovecs in one sendv. Returns the bytes that went, a status
 * (then none did), or SEND_LATER. */
#ifdef STRATA_EMBEDDED
/* The embedded profile keeps the general path only: code over speed. */
static ssize_t frame_down(strata_ws *w, const uint8_t *key,
                          const struct iovec *iov, int n, size_t total,
                          unsigned b0)
{
    (void)w, (void)key, (void)iov, (void)n, (void)total, (void)b0;
    return SEND_LATER;
}
#else
/* The caller's bytes after a header at p, masked for a client. */
static void put_payload(uint8_t *p, const struct iovec *iov, int n,
                        const uint8_t *key)
{
    size_t off = 0;
    int i;

    for (i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;

        if (l == 0)
            continue;
        if (key != NULL)
            mask_copy(p + off, iov[i].iov_base, l, key, off);
        else
            memcpy(p + off, iov[i].iov_base, l);
        off += l;
    }
}

static ssize_t frame_down(strata_ws *w, const uint8_t *key,
                          const struct iovec *iov, int n, size_t total,
                          unsigned b0)
{
    size_t hl = w->tx.hdr_len;
    struct iovec v[LOCAL_IOV + 1];
    uint8_t *p = strata_wbuf_reserve(w->out, hl + total);

    if (p != NULL) {
        put_header(p, b0, total, key); /* cheaper than a copy of t->hdr */
        put_payload(p + hl, iov, n, key);
        strata_wbuf_commit(w->out, hl + total);
        return (ssize_t)(hl + total);
    }
    if (key != NULL) {
        if (hl + total > w->scratch_cap)
            return SEND_LATER;
        p = w->tx_scratch;
        put_header(p, b0, total, key);
        put_payload(p + hl, iov, n, key);
        v[0].iov_base = p;
        v[0].iov_len = hl + total;
        return strata_sendv(w->out, v, 1, 0);
    }
    if (n > LOCAL_IOV)
        return SEND_LATER;
    v[0].iov_base = w->tx.hdr;
    v[0].iov_len = hl;
    if (n > 0)
        memcpy(v + 1, iov, (size_t)n * sizeof *iov);
    return strata_sendv(w->out, v, n + 1, 0);
}
#endif

/* A new frame: the whole of this send. Its header goes to t->hdr (and a
 * client's key to t->key) at once: a frame cut short goes on from there,
 * and no frame of the caller's is in flight to need them. */
static ssize_t send_frame(strata_ws *w, const struct iovec *iov, int n,
                          size_t total, unsigned flags)
{
    ws_tx *t = &w->tx;
    int end = (flags & STRATA_MSG_END) != 0, was_open = t->msg_open;
    int text = t->msg_open ? t->text : (flags & STRATA_MSG_TEXT) != 0;
    unsigned b0 = (end ? B0_FIN : 0) |
                  (unsigned)(t->msg_open ? OP_CONT : text ? OP_TEXT : OP_BINARY);
    uint8_t st = t->msg_open ? t->utf8 : STRATA_UTF8_ACCEPT, was_utf8 = t->utf8;
    const uint8_t *kp = NULL;
    size_t moved;
    ssize_t r;

    if (text && (st = text_state(st, iov, n, 0, end)) == STRATA_UTF8_REJECT)
        return STRATA_ERR_ARG;
    if (w->role == STRATA_WS_CLIENT) {
        if ((r = mask_key(w, t->key)) < 0)
            return r;
        kp = t->key;
    }
    t->hdr_len = put_header(t->hdr, b0, total, kp);
    r = frame_down(w, kp, iov, n, total, b0);
    if (r == SEND_LATER)
        r = 0;
    else if (r <= 0)
        return r < 0 ? r : STRATA_ERR_IO; /* nothing went */
    moved = frame_went(w, total, (size_t)r, b0, st);
    if (moved > 0 || !t->in_frame)
        return (ssize_t)moved;
    /* no payload byte went yet: go on until one does */
    r = push_frame(w, iov, n, total);
    if (r < 0 && t->hdr_off == 0) {
        /* nothing went: forget the frame, as if the call was not made */
        t->in_frame = 0;
        t->msg_open = was_open;
        t->utf8 = was_utf8;
        return r;
    }
    return r < 0 ? tx_failed(w, (int)r) : r;
}

static ssize_t send_plain(strata_ws *w, const struct iovec *iov, int n,
                          size_t total, unsigned flags)
{
    ws_tx *t = &w->tx;
    int end = (flags & STRATA_MSG_END) != 0;
    ssize_t r;

    if (!t->in_frame) {
        if (total == 0 && !end)
            return 0;
        /* control frames go between frames */
        if (pending(w) && (r = ws_push_pending(w)) < 0)
            return r;
        return send_frame(w, iov, n, total, flags);
    }
    if (total > t->left || (end && (total != t->left || !t->fin)))
        return STRATA_ERR_ARG;
    r = push_frame(w, iov, n, total);
    return r < 0 ? tx_failed(w, (int)r) : r;
}

/* ---- send: compressed messages ---------------------------------------- */

/* The codec's output for one frame went to tx_scratch behind WS_HDR_MAX
 * bytes; the header goes right before it, so the frame is one run. */
static int make_zframe(strata_ws *w, size_t len, int fin)
{
    ws_tx *t = &w->tx;
    uint8_t hdr[WS_HDR_MAX], key[4];
    unsigned b0 = fin ? B0_FIN : 0;
    size_t hl;
    int r;

    if (t->z_frames == 0)
        b0 |= B0_RSV1 | (unsigned)(t->text ? OP_TEXT : OP_BINARY);
    if (w->role == STRATA_WS_CLIENT) {
        if ((r = mask_key(w, key)) < 0)
            return tx_failed(w, r);
        mask_copy(w->tx_scratch + WS_HDR_MAX, w->tx_scratch + WS_HDR_MAX, len,
                  key, 0);
    }
    hl = put_header(hdr, b0, len, w->role == STRATA_WS_CLIENT ? key : NULL);
    memcpy(w->tx_scratch + WS_HDR_MAX - hl, hdr, hl);
    t->zf_start = WS_HDR_MAX - hl;
    t->zf_len = hl + len;
    t->zf_off = 0;
    t->z_frames++;
    return 0;
}

/* Feed the codec; frame what it made. fin: in holds the message's last
 * bytes. Only called with no frame of ours waiting in tx_scratch. */
static int deflate_step(strata_ws *w, const uint8_t *in, size_t len,
                        int fin, size_t *used)
{
    ws_tx *t = &w->tx;
    int done = 0;
    ssize_t c = ws_deflate_compress(w->z, in, len, fin,
                                    w->tx_scratch + WS_HDR_MAX,
                                    w->scratch_cap - WS_HDR_MAX, used, &done);

    if (c < 0)
        return tx_failed(w, (int)c);
    if (fin && *used == len)
        t->z_finishing = 1;
    if ((c > 0 || done) && make_zframe(w, (size_t)c, done) < 0)
        return w->tx_status;
    if (done) {
        t->z_finishing = 0;
        t->z_msg = 0;
    }
    if (c == 0 && *used == 0 && !done && (len > 0 || fin))
        return tx_failed(w, STRATA_ERR_PROTO); /* the codec is stuck */
    return 0;
}

/* The part of the caller's iovecs from byte `at`: the rest of one iovec. */
static const uint8_t *piece(const struct iovec *iov, int n, size_t at,
                            size_t *len)
{
    int i;

    for (i = 0; i < n; i++) {
        if (at < iov[i].iov_len) {
            *len = iov[i].iov_len - at;
            return (const uint8_t *)iov[i].iov_base + at;
        }
        at -= iov[i].iov_len;
    }
    *len = 0;
    return NULL;
}

static ssize_t send_deflate(strata_ws *w, const struct iovec *iov, int n,
                            size_t total, unsigned flags)
{
    ws_tx *t = &w->tx;
    int fin = (flags & STRATA_MSG_END) != 0;
    int text = t->z_msg ? t->text : (flags & STRATA_MSG_TEXT) != 0;
    size_t moved = 0, len, used;
    uint8_t st = t->z_msg ? t->utf8 : STRATA_UTF8_ACCEPT;
    int r;

    r = ws_push_pending(w); /* also the end of the last message */
    if (r < 0)
        return r;
    if (total == 0 && !fin)
        return 0;
    if (text && (st = text_state(st, iov, n, t->z_msg ? t->z_ahead : 0,
                                 fin)) == STRATA_UTF8_REJECT)
        return STRATA_ERR_ARG;
    if (!t->z_msg) {
        t->z_msg = 1;
        t->z_frames = 0;
        t->text = text;
    }
    t->utf8 = st;
    while (moved < total || (fin && t->z_msg && !t->z_finishing)) {
        const uint8_t *p = piece(iov, n, moved, &len);

        r = deflate_step(w, p, len, fin && moved + len == total, &used);
        if (r < 0)
            break;
        moved += used;
        r = ws_push_pending(w);
        if (r < 0)
            break;
    }
    /* bytes checked but not taken come again in the continuation */
    t->z_ahead = total - moved;
    if (r < 0 && moved == 0 && total > 0)
        return r; /* a frame made waits; the retry pushes it */
    return (ssize_t)moved;
}

/* Whether a frame of ours may go now: 0, or why not (the handshake's NEED
 * codes, a sticky failure, our close already out). */
static int send_ready(strata_ws *w)
{
    int r;

    if (w->hs != WS_HS_DONE && (r = ws_handshake_step(w)) != 0)
        return r;
    if (w->tx_status != 0)
        return w->tx_status;
    if (w->rx_status < 0 && w->rx_status != STRATA_EOF)
        return w->rx_status; /* the connection failed */
    if (closing_out(w))
        return w->peer_closed ? STRATA_ERR_CLOSED : STRATA_ERR_STATE;
    return 0;
}

static ssize_t ws_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags)
{
    strata_ws *w = (strata_ws *)s;
    size_t total;
    ssize_t sent;
    int r;

    if (flags & ~(STRATA_MSG_END | STRATA_MSG_TEXT))
        return STRATA_ERR_ARG;
    if ((r = send_ready(w)) != 0)
        return r;
    total = n == 1 ? iov[0].iov_len : strata_iov_len(iov, n);
    sent = WS_Z_ON(w) ? send_deflate(w, iov, n, total, flags)
                        : send_plain(w, iov, n, total, flags);
    if (w->reply_due)
        answer_close(w); /* the message it waited for may be complete */
    return sent;
}

/* ---- flush, close, ping ----------------------------------------------- */

static int ws_flush(strata_stream *s)
{
    strata_ws *w = (strata_ws *)s;
    int r;

    if (w->hs != WS_HS_DONE)
        return ws_handshake_flush(w);
    r = ws_push_pending(w);
    if (r < 0)
        return r;
    return strata_flush(w->out);
}

static unsigned reply_code(const strata_ws *w)
{
    return w->peer_closed && valid_code(w->close_code) ? w->close_code
                                                       : STRATA_WS_NORMAL;
}

/* Queue our close (code 0: the graceful one), push it, and once both
 * closes are exchanged end the lower stream too. */
static int close_with(strata_ws *w, unsigned code, const char *reason,
                      int graceful)
{
    int r;

    if (w->hs != WS_HS_DONE && (r = ws_handshake_step(w)) != 0)
        return r;
    if (w->tx_status != 0)
        return w->tx_status;
    if (!closing_out(w)) {
        if (w->tx.in_frame ||
            (graceful && (w->tx.msg_open || (w->tx.z_msg && !w->tx.z_finishing))))
            return STRATA_ERR_STATE;
        ws_queue_close(w, code != 0 ? code : reply_code(w), reason);
    }
    /* a failed connection has no peer close: nothing is shut down */
    r = close_out(w);
    if (r < 0)
        return r;
    return w->rx_status < 0 && w->rx_status != STRATA_EOF ? w->rx_status : 0;
}

static int ws_shutdown(strata_stream *s)
{
    return close_with((strata_ws *)s, 0, NULL, 1);
}

int strata_ws_close(strata_stream *s, unsigned code, const char *reason)
{
    strata_ws *w = ws_of(s);
    size_t n = 0;

    if (w == NULL || !valid_code(code))
        return STRATA_ERR_ARG;
    if (reason != NULL) {
        const char *end = memchr(reason, '\0', WS_REASON_MAX + 1);

        if (end == NULL)
            return STRATA_ERR_ARG;
        n = (size_t)(end - reason);
        if (!strata_utf8_valid(reason, n))
            return STRATA_ERR_ARG;
    }
    return close_with(w, code, reason, 0);
}

int strata_ws_ping(strata_stream *s, const void *data, size_t len)
{
    strata_ws *w = ws_of(s);
    int r;

    if (w == NULL || len > WS_CTL_MAX || (data == NULL && len > 0))
        return STRATA_ERR_ARG;
    if ((r = send_ready(w)) != 0)
        return r;
    if (w->ping_pending && (r = ws_push_pending(w)) < 0)
        return r;
    if (w->ping_pending)
        return STRATA_NEED_WRITE; /* the last one waits behind a frame */
    if (len > 0)
        memcpy(w->ping, data, len);
    w->ping_len = len;
    w->ping_pending = 1;
    r = ws_push_pending(w);
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ? 0 : r;
}

/* ---- readiness -------------------------------------------------------- */

/* Would recv return without reading from below? */
static int unit_buffered(strata_ws *w)
{
    const uint8_t *h = w->in->buf + w->in->start;
    size_t have = strata_buffered_len(w->in), hl;
    uint64_t len;

    if (w->in->eof)
        return 1;
    if (w->rx.in_frame)
        return w->rx.left == 0 || have > 0 || w->rx.zoff < w->rx.zlen;
    if (have < 2)
        return 0;
    if (!start_ok(w, h[0], h[1]))
        return 1; /* the error is known */
    hl = header_len(h[1]);
    if (have < hl)
        return 0;
    if ((h[0] & 0x0fu) >= OP_CLOSE)
        return have >= hl + (h[1] & 0x7fu);
    len = payload_len(h);
    return len == UINT64_MAX || len == 0 || have > hl;
}

static unsigned ws_poll(strata_stream *s, unsigned events)
{
    strata_ws *w = (strata_ws *)s;
    unsigned ready;

    if (w->hs == WS_HS_FAILED ||
        (w->rx_status < 0 && w->rx_status != STRATA_EOF))
        return STRATA_POLL_ERR | (events & STRATA_POLL_IN);
    ready = strata_poll(s->lower, events);
    if (!(events & STRATA_POLL_IN) || w->hs != WS_HS_DONE)
        return ready;
    if (w->rx_status == STRATA_EOF)
        return ready | STRATA_POLL_IN | STRATA_POLL_HUP;
    /* the buffered stream says IN for any byte; a frame needs more */
    ready &= ~STRATA_POLL_IN;
    if (unit_buffered(w))
        ready |= STRATA_POLL_IN;
    else
        ready |= strata_poll(w->out, STRATA_POLL_IN) &
                 (STRATA_POLL_IN | STRATA_POLL_HUP);
    return ready;
}

static unsigned ws_wants(strata_stream *s)
{
    strata_ws *w = (strata_ws *)s;

    if (w->hs != WS_HS_DONE)
        return w->hs_out != NULL && w->hs_out_off < w->hs_out_len
                   ? STRATA_WANT_WRITE
                   : 0;
    return pending(w) && w->tx_status == 0 ? STRATA_WANT_WRITE : 0;
}

/* ---- accessors -------------------------------------------------------- */

unsigned long strata_ws_pongs(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? w->pongs : 0;
}

int strata_ws_closing(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL && closing_out(w) && !w->peer_closed;
}

unsigned strata_ws_close_code(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? w->close_code : 0;
}

const char *strata_ws_close_reason(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL && w->peer_closed ? w->close_reason : NULL;
}

unsigned strata_ws_error_code(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL ? w->error_code : 0;
}

int strata_ws_deflate(strata_stream *s)
{
    strata_ws *w = ws_of(s);

    return w != NULL && WS_Z_ON(w);
}
