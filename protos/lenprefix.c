/* The lenprefix layer. Receive peeks exactly one header out of the
 * buffered stream, then reads the payload through it limited to what the
 * record still owes, so a big payload goes straight into the caller's
 * buffer and no byte past the record is taken. Send pushes the header and
 * the caller's bytes down in one sendv, without copying them.
 *
 * Decisions the header leaves open:
 *  - A caller's mistake on send (STRATA_ERR_ARG, STRATA_ERR_TOO_BIG,
 *    STRATA_ERR_STATE) writes nothing and leaves the stream usable.
 *  - strata_shutdown while a record is in progress (begun, or a MSG_END
 *    send that moved only part of it) is STRATA_ERR_STATE and shuts
 *    nothing down: the peer would see a truncated record. Finish it, or
 *    strata_free the stack to abort.
 *  - A header that went down only in part, with no payload byte after it,
 *    is continued within the same call; if the lower stream then says
 *    NEED_*, the caller's retry of the same call finishes it.
 *  - STRATA_MSG_COMPRESSED without the flag byte cannot be said on the
 *    wire: STRATA_ERR_ARG rather than a silently uncompressed-looking
 *    record. On receive it is set on every piece of a compressed record.
 *  - The limit on send is the smaller of max_send (default max_len) and
 *    what the length field holds (255, 65535, 2^32 - 1); on receive a 1-
 *    or 2-byte field can never pass a larger max_len.
 *  - Nothing is held here between calls, so flush passes straight down.
 *    In particular flush does not push the header of a record whose send
 *    returned NEED_* half-way: the caller's retry of that same call does,
 *    and for an empty record flush doing it would make the retry send a
 *    second record. A begun empty record goes out on the next send
 *    (0 bytes, with or without MSG_END).
 */
#include "lenprefix.h"

#include <strata/wbuf.h>

#include <string.h>

#define LOCAL_IOV 16
#define DEFAULT_MAX ((size_t)4 * 1024 * 1024)
#define DEFAULT_BUFFER 16384 /* strata_lenprefix_new's buffered stream */

static ssize_t lp_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags);
static ssize_t lp_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags);
static int lp_shutdown(strata_stream *s);
static unsigned lp_poll(strata_stream *s, unsigned events);

static const strata_stream_ops lenprefix_ops = {
    "lenprefix", lp_recv, lp_sendv, NULL, lp_shutdown, lp_poll,
    NULL, NULL, NULL,
};

/* ---- options -------------------------------------------------------- */

/* The header's length (flag byte and length field), fixed at init. */
static size_t hdr_len(const strata_lenprefix *l)
{
    return l->tx_hdr_len;
}

static int parse_opts(strata_lenprefix *l, const strata_lenprefix_opts *opts)
{
    strata_lenprefix_opts o = {0, 0, 0, 0};
    unsigned lb;

    if (opts != NULL)
        o = *opts;
    lb = o.len_bytes != 0 ? o.len_bytes : 4;
    if (lb > 4 || lb == 3)
        return STRATA_ERR_ARG;
    l->len_bytes = lb;
    l->flag_byte = o.flag_byte != 0;
    l->tx_hdr_len = lb + (size_t)l->flag_byte;
    l->max_len = o.max_len != 0 ? o.max_len : DEFAULT_MAX;
    /* what may be sent: max_send (default max_len), at most what the
     * length field holds (255, 65535 or 2^32 - 1) */
    l->max_send = o.max_send != 0 ? o.max_send : l->max_len;
    if (l->max_send > (size_t)0xffffffffu >> (32 - 8 * lb))
        l->max_send = (size_t)0xffffffffu >> (32 - 8 * lb);
    return 0;
}

int strata_lenprefix_init(strata_lenprefix *l, strata_buffered *in,
                          const strata_lenprefix_opts *opts)
{
    if (l == NULL || in == NULL)
        return STRATA_ERR_ARG;
    memset(l, 0, sizeof *l);
    if (parse_opts(l, opts) != 0 || in->cap < hdr_len(l))
        return STRATA_ERR_ARG;
    strata_stream_init(&l->base, &lenprefix_ops, &in->base, NULL);
    l->in = in;
    return 0;
}

#ifndef STRATA_EMBEDDED /* the profile has no constructor that allocates */
strata_stream *strata_lenprefix_new(strata_stream *lower,
                                    const strata_lenprefix_opts *opts,
                                    const strata_allocator *alloc)
{
    strata_lenprefix probe, *l;
    strata_buffered *in;

    memset(&probe, 0, sizeof probe);
    if (lower == NULL || parse_opts(&probe, opts) != 0)
        return NULL;
    in = strata_buffered_over(lower, DEFAULT_BUFFER, alloc);
    if (in == NULL)
        return NULL;
    l = strata_alloc(alloc, sizeof *l);
    if (l == NULL || strata_lenprefix_init(l, in, opts) != 0) {
        strata_dealloc(alloc, l);
        strata_buffered_undo(in, lower);
        return NULL;
    }
    l->base.alloc = alloc;
    l->base.heap = 1;
    return &l->base;
}
#endif

/* ---- receive -------------------------------------------------------- */

/* NEED codes pass; EOF at a record boundary passes, inside one it is a
 * truncation; everything else (TOO_BIG, PROTO, the lower's errors) sticks:
 * once the framing is lost no later byte can be trusted. */
static ssize_t rx_status(strata_lenprefix *l, ssize_t r, int inside)
{
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r == STRATA_EOF && !inside)
        return r;
    if (r == STRATA_EOF)
        r = STRATA_ERR_PROTO;
    l->rx_failed = (int)r;
    return r;
}

static ssize_t read_header(strata_lenprefix *l)
{
    const uint8_t *h;
    size_t n = 0, i, hl = hdr_len(l);
    unsigned flag = 0;
    ssize_t r;

    /* After a big record, read only the next header: reading ahead would
     * pull most of the next big payload into the buffer and cost a second
     * copy, where reading it later goes straight into the caller's. */
    if (l->rx_big)
        r = strata_buffered_peek_exact(l->in, hl, &h);
    else
        r = strata_buffered_peek(l->in, hl, &h);

    if (r < 0)
        return rx_status(l, r, strata_buffered_len(l->in) > 0);
    if (l->flag_byte)
        flag = *h++;
    if (flag & ~1u)
        return rx_status(l, STRATA_ERR_PROTO, 1);
    for (i = 0; i < l->len_bytes; i++)
        n = n << 8 | h[i];
    if (n > l->max_len)
        return rx_status(l, STRATA_ERR_TOO_BIG, 1);
    strata_buffered_consume(l->in, hl);
    l->rx_left = n;
    l->rx_big = n >= l->in->cap / 2;
    l->rx_flags = flag ? STRATA_MSG_COMPRESSED : 0;
    l->rx_in_record = 1;
    return 0;
}

/* Payload bytes through the buffered stream, which may read a big payload
 * straight into buf. */
static ssize_t take_payload(strata_lenprefix *l, void *buf, size_t want)
{
    unsigned ignored;
#ifndef STRATA_EMBEDDED
    /* Fast path, the same as the buffered stream's recv: payload already
     * buffered is copied out here, without the calls. */
    size_t have = strata_buffered_len(l->in);

    if (have > 0) {
        if (want > have)
            want = have;
        memcpy(buf, l->in->buf + l->in->start, want);
        strata_buffered_consume(l->in, want);
        return (ssize_t)want;
    }
#endif
    return strata_recv(&l->in->base, buf, want, &ignored);
}

static ssize_t lp_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags)
{
    strata_lenprefix *l = (strata_lenprefix *)s;
    ssize_t r = 0;

    if (l->rx_failed)
        return l->rx_failed;
    if (!l->rx_in_record && (r = read_header(l)) < 0)
        return r;
    if (l->rx_left > 0) {
        /* at most what the record owes: the next header stays below */
        r = take_payload(l, buf, len < l->rx_left ? len : l->rx_left);
        if (r < 0)
            return rx_status(l, r, 1);
        l->rx_left -= (size_t)r;
    }
    *flags = l->rx_flags;
    if (l->rx_left == 0) {
        l->rx_in_record = 0;
        *flags |= STRATA_MSG_END;
    }
    return r;
}

/* ---- send ----------------------------------------------------------- */

/* Write the header of a len-byte record at dst; returns its length. */
static inline size_t put_header(const strata_lenprefix *l, uint8_t *dst,
                                size_t len, unsigned flags)
{
    size_t n = hdr_len(l), i;

    if (l->flag_byte)
        dst[0] = (flags & STRATA_MSG_COMPRESSED) ? 1 : 0;
    for (i = n; i > n - l->len_bytes; len >>= 8) /* big-endian */
        dst[--i] = (uint8_t)len;
    return n;
}

static int begin_record(strata_lenprefix *l, size_t len, unsigned flags)
{
    if (len > l->max_send)
        return STRATA_ERR_TOO_BIG;
    put_header(l, l->tx_hdr, len, flags);
    l->tx_hdr_off = 0;
    l->tx_left = len;
    l->tx_in_record = 1;
    return 0;
}

int strata_lenprefix_begin(strata_stream *s, size_t len, unsigned flags)
{
    strata_lenprefix *l = (strata_lenprefix *)s;

    if (s == NULL || s->ops != &lenprefix_ops ||
        (flags & ~STRATA_MSG_COMPRESSED))
        return STRATA_ERR_ARG;
    if (l->tx_shut || l->tx_in_record)
        return STRATA_ERR_STATE;
    if ((flags & STRATA_MSG_COMPRESSED) && !l->flag_byte)
        return STRATA_ERR_ARG;
    return begin_record(l, len, flags);
}

/* The record is over once its header and every payload byte went. */
static void settle(strata_lenprefix *l)
{
    if (l->tx_left == 0 && l->tx_hdr_off == l->tx_hdr_len)
        l->tx_in_record = 0;
}

/* One sendv of the header's unsent part (if any) and the caller's bytes,
 * to the stream below the buffered input: on the way out that buffered
 * stream only passes calls on, and small records pay for every hop.
 * Returns what went down in all. */
static ssize_t send_down(strata_lenprefix *l, const struct iovec *iov, int n,
                         size_t total)
{
    struct iovec v[LOCAL_IOV + 1];
    size_t rem = l->tx_hdr_len - l->tx_hdr_off;
    unsigned down = total == l->tx_left ? STRATA_MSG_END : 0;

    strata_stream *out = l->in->base.lower;

    if (rem == 0)
        return strata_sendv(out, iov, n, down);
    if (n > LOCAL_IOV) /* rare: the header alone first, then the iovecs */
        return strata_send(out, l->tx_hdr + l->tx_hdr_off, rem, 0);
    v[0].iov_base = l->tx_hdr + l->tx_hdr_off;
    v[0].iov_len = rem;
    if (n > 0)
        memcpy(v + 1, iov, (size_t)n * sizeof *iov);
    return strata_sendv(out, v, n + 1, down);
}

/* Send until a payload byte moved (or, for an empty payload, the header
 * is out): a call may not return 0 for bytes it was given. */
static ssize_t push(strata_lenprefix *l, const struct iovec *iov, int n,
                    size_t total)
{
    size_t moved = 0;

    for (;;) {
        size_t rem = l->tx_hdr_len - l->tx_hdr_off, hdr;
        ssize_t r;

        if (rem == 0 && (total == 0 || moved > 0))
            break;
        r = send_down(l, iov, n, total);
        if (r < 0)
            return r;
        if (r == 0)
            return STRATA_ERR_IO; /* a lower stream broke rule 1 */
        hdr = (size_t)r < rem ? (size_t)r : rem;
        l->tx_hdr_off += hdr;
        moved = (size_t)r - hdr;
    }
    l->tx_left -= moved;
    settle(l);
    return (ssize_t)moved;
}

/* A small whole record goes straight into a write buffer below, when
 * there is one with room: no sendv, no iovec walk (streams/wbuf.h). */
static int gather_record(strata_lenprefix *l, const struct iovec *iov, int n,
                         size_t total, unsigned flags)
{
    strata_stream *out = l->in->base.lower;
    uint8_t *p;

    if (total > l->max_send)
        return 0;
    p = strata_wbuf_reserve(out, hdr_len(l) + total);
    if (p == NULL)
        return 0;
    p += put_header(l, p, total, flags);
    strata_wbuf_commit(out, hdr_len(l) + strata_iov_copy(p, iov, n));
    return 1;
}

static ssize_t lp_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags)
{
    strata_lenprefix *l = (strata_lenprefix *)s;
    size_t total = strata_iov_len(iov, n);
    int began = 0;
    ssize_t r;

    if (l->tx_shut)
        return STRATA_ERR_STATE;
    if ((flags & STRATA_MSG_COMPRESSED) && !l->flag_byte)
        return STRATA_ERR_ARG;
    if (!l->tx_in_record) {
        if (!(flags & STRATA_MSG_END))
            return STRATA_ERR_ARG;
        if (gather_record(l, iov, n, total, flags))
            return (ssize_t)total;
        r = begin_record(l, total, flags);
        if (r < 0)
            return r;
        began = 1;
    } else if (total > l->tx_left ||
               ((flags & STRATA_MSG_END) && total != l->tx_left)) {
        return STRATA_ERR_ARG;
    }
    r = push(l, iov, n, total);
    /* nothing went: forget the record, so the call is as if not made */
    if (r < 0 && began && l->tx_hdr_off == 0)
        l->tx_in_record = 0;
    return r;
}

static int lp_shutdown(strata_stream *s)
{
    strata_lenprefix *l = (strata_lenprefix *)s;

    if (l->tx_in_record)
        return STRATA_ERR_STATE;
    l->tx_shut = 1;
    return strata_shutdown(s->lower);
}

/* ---- readiness ------------------------------------------------------ */

/* Would recv return without reading from below? */
static int unit_buffered(strata_lenprefix *l)
{
    size_t have = strata_buffered_len(l->in);

    if (l->in->eof)
        return 1;
    if (l->rx_in_record)
        return l->rx_left == 0 || have > 0;
    return have >= hdr_len(l);
}

static unsigned lp_poll(strata_stream *s, unsigned events)
{
    strata_lenprefix *l = (strata_lenprefix *)s;
    unsigned ready;

    if (l->rx_failed)
        return STRATA_POLL_ERR | (events & STRATA_POLL_IN);
    ready = strata_poll(s->lower, events);
    if (!(events & STRATA_POLL_IN))
        return ready;
    /* the buffered stream says IN for any byte; a header needs all of its */
    ready &= ~STRATA_POLL_IN;
    if (unit_buffered(l))
        ready |= STRATA_POLL_IN;
    else /* no lower: strata_poll says POLL_ERR alone, masked off here */
        ready |= strata_poll(l->in->base.lower, STRATA_POLL_IN) &
                 (STRATA_POLL_IN | STRATA_POLL_HUP);
    return ready;
}
