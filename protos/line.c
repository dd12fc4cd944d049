/* The line layer. Receive pulls a whole record out of the buffered stream
 * (strata_buffered_readline) before handing out any byte of it, so a record
 * over max_len is refused before a byte of it is delivered; send pushes the
 * caller's bytes and the separator down in one sendv, without copying.
 *
 * Decisions the header leaves open:
 *  - A caller's mistake on send (STRATA_ERR_ARG, STRATA_ERR_TOO_BIG,
 *    STRATA_ERR_STATE) writes nothing, so the framing is intact and the
 *    stream stays usable; only receive errors other than TOO_BIG are sticky.
 *  - strata_shutdown in the middle of a record (content sent without
 *    STRATA_MSG_END, or a MSG_END send that moved only part of its bytes)
 *    is STRATA_ERR_STATE and shuts nothing down: a graceful close must not
 *    show the peer a truncated record. Finish the record (a 0-byte send
 *    with MSG_END), or strata_free the stack to abort.
 *  - A send whose content went down but whose separator only partly did
 *    returns the content's length; the rest of the separator (at most 8
 *    bytes, held here) goes first on the next send, flush or shutdown, and
 *    strata_wants reports STRATA_WANT_WRITE meanwhile.
 *  - With STRATA_LINE_ANY_EOL the separator received is "\n" with an
 *    optional "\r" before it, so a record of max_len content may need
 *    max_len + 2 bytes: strata_line_init asks the buffered stream for that.
 *    On send, content holding "\n", or (with separator "\n") ending in
 *    "\r", is STRATA_ERR_ARG since the peer would cut the record there.
 *  - A separator split across sends, or formed by the content's end and
 *    the separator appended ("a|" + "||"), is STRATA_ERR_ARG too: the peer
 *    would find the record's end early.
 *  - Message flags other than STRATA_MSG_END are ignored on send, so a
 *    relay may pass on the flags of another layer's recv.
 */
#include "line.h"

#include <strata/wbuf.h>

#include <string.h>

/* Caller iovecs merged with the separator into one sendv without
 * allocating; a longer array goes down as it is, the separator after it. */
#define LOCAL_IOV 16
#define DEFAULT_MAX 4096
#define MIN_BUFFER 4096

static ssize_t line_recv(strata_stream *s, void *buf, size_t len,
                         unsigned *flags);
static ssize_t line_sendv(strata_stream *s, const struct iovec *iov, int n,
                          unsigned flags);
static int line_flush(strata_stream *s);
static int line_shutdown(strata_stream *s);
static unsigned line_poll(strata_stream *s, unsigned events);
static unsigned line_wants(strata_stream *s);

static const strata_stream_ops line_ops = {
    "line", line_recv, line_sendv, line_flush, line_shutdown, line_poll,
    line_wants, NULL, NULL,
};

static const uint8_t lf = '\n';

/* ---- options -------------------------------------------------------- */

static int any_eol(const strata_line *l)
{
    return (l->flags & STRATA_LINE_ANY_EOL) != 0;
}

/* The separator searched for on receive: "\n" under ANY_EOL (a "\r"
 * before it is dropped afterwards), else the configured one. */
static const uint8_t *rx_sep(const strata_line *l, size_t *len)
{
    if (any_eol(l)) {
        *len = 1;
        return &lf;
    }
    *len = l->sep_len;
    return l->sep;
}

/* Content bytes a received line may span before its separator: one more
 * under ANY_EOL for the "\r" that is not content. */
static size_t rx_limit(const strata_line *l)
{
    return l->max_len + (any_eol(l) ? 1 : 0);
}

static size_t need_cap(const strata_line *l)
{
    size_t seplen;

    rx_sep(l, &seplen);
    return rx_limit(l) + seplen;
}

static int parse_opts(strata_line *l, const strata_line_opts *o)
{
    const char *sep = o != NULL && o->sep != NULL ? o->sep : "\n";
    size_t sep_len = o != NULL && o->sep_len != 0 ? o->sep_len : strlen(sep);

    if (o != NULL && o->sep == NULL && o->sep_len > 1)
        return STRATA_ERR_ARG;
    if (sep_len == 0 || sep_len > sizeof l->sep)
        return STRATA_ERR_ARG;
    l->max_len = o != NULL && o->max_len != 0 ? o->max_len : DEFAULT_MAX;
    l->flags = o != NULL ? o->flags : 0;
    /* max_len + 16 must neither overflow nor leave ssize_t's range */
    if (l->max_len > (size_t)-1 / 4 || (l->flags & ~STRATA_LINE_ANY_EOL))
        return STRATA_ERR_ARG;
    if (any_eol(l) && !(sep_len == 1 && sep[0] == '\n') &&
        !(sep_len == 2 && memcmp(sep, "\r\n", 2) == 0))
        return STRATA_ERR_ARG;
    memcpy(l->sep, sep, sep_len);
    l->sep_len = sep_len;
    return 0;
}

int strata_line_init(strata_line *l, strata_buffered *in,
                     const strata_line_opts *opts)
{
    if (l == NULL || in == NULL)
        return STRATA_ERR_ARG;
    memset(l, 0, sizeof *l);
    if (parse_opts(l, opts) != 0 || in->cap < need_cap(l))
        return STRATA_ERR_ARG;
    strata_stream_init(&l->base, &line_ops, &in->base, NULL);
    l->in = in;
    return 0;
}

strata_stream *strata_line_new(strata_stream *lower,
                               const strata_line_opts *opts,
                               const strata_allocator *alloc)
{
    strata_line probe, *l;
    strata_buffered *in;
    size_t cap;

    memset(&probe, 0, sizeof probe);
    if (lower == NULL || parse_opts(&probe, opts) != 0)
        return NULL;
    cap = need_cap(&probe);
    in = strata_buffered_over(lower, cap > MIN_BUFFER ? cap : MIN_BUFFER,
                              alloc);
    if (in == NULL)
        return NULL;
    l = strata_alloc(alloc, sizeof *l);
    if (l == NULL || strata_line_init(l, in, opts) != 0) {
        strata_dealloc(alloc, l);
        strata_buffered_undo(in, lower);
        return NULL;
    }
    l->base.alloc = alloc;
    l->base.heap = 1;
    return &l->base;
}

/* ---- receive -------------------------------------------------------- */

static const uint8_t *find(const uint8_t *p, size_t len, const uint8_t *sep,
                           size_t seplen)
{
    size_t i = 0;

    while (i + seplen <= len) {
        const uint8_t *hit = memchr(p + i, sep[0], len - i - seplen + 1);

        if (hit == NULL)
            return NULL;
        if (memcmp(hit, sep, seplen) == 0)
            return hit;
        i = (size_t)(hit - p) + 1;
    }
    return NULL;
}

/* The bytes buffered now, without reading (peek of what is there). */
static size_t buffered_view(strata_buffered *in, const uint8_t **data)
{
    size_t have = strata_buffered_len(in);

    *data = NULL;
    if (have > 0 && strata_buffered_peek(in, have, data) < 0)
        return 0;
    return have;
}

/* Resynchronise after TOO_BIG: drop bytes up to and including the next
 * separator. The buffer may fill many times before it comes, so drop what
 * is scanned, keeping only a tail that could begin a split separator. */
static ssize_t skip(strata_line *l)
{
    size_t seplen;
    const uint8_t *sep = rx_sep(l, &seplen);

    for (;;) {
        const uint8_t *data;
        size_t have = buffered_view(l->in, &data);
        ssize_t r;

        if (have > 0) {
            const uint8_t *hit = find(data, have, sep, seplen);
            size_t keep = seplen - 1 < have ? seplen - 1 : have;

            if (hit != NULL) {
                strata_buffered_consume(l->in,
                                        (size_t)(hit - data) + seplen);
                l->skipping = 0;
                return 0;
            }
            strata_buffered_consume(l->in, have - keep);
        }
        r = strata_buffered_fill(l->in);
        if (r < 0)
            return r;
    }
}

/* Map a status of the buffered stream onto the layer's: NEED codes pass,
 * TOO_BIG starts a resync, EOF inside a record is a truncation, anything
 * else sticks. */
static ssize_t rx_status(strata_line *l, ssize_t r)
{
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return r;
    if (r == STRATA_ERR_TOO_BIG) {
        l->skipping = 1;
        return r;
    }
    if (r == STRATA_EOF && strata_buffered_len(l->in) == 0 && !l->skipping)
        return r;
    if (r == STRATA_EOF)
        r = STRATA_ERR_PROTO;
    l->failed = (int)r;
    return r;
}

static ssize_t next_record(strata_line *l)
{
    size_t seplen, content;
    const uint8_t *sep = rx_sep(l, &seplen), *line;
    ssize_t r;

    if (l->skipping) {
        r = skip(l);
        if (r < 0)
            return rx_status(l, r);
    }
    r = strata_buffered_readline(l->in, sep, seplen, rx_limit(l), &line);
    if (r < 0)
        return rx_status(l, r);
    content = (size_t)r - seplen;
    if (any_eol(l) && content > 0 && line[content - 1] == '\r')
        content--;
    if (content > l->max_len) {
        /* found whole (the room kept for a "\r"): already resynchronised */
        strata_buffered_consume(l->in, (size_t)r);
        return STRATA_ERR_TOO_BIG;
    }
    l->rec_len = content;
    l->rec_off = 0;
    l->rec_total = (size_t)r;
    l->in_record = 1;
    return 0;
}

static ssize_t deliver(strata_line *l, void *buf, size_t len, unsigned *flags)
{
    size_t n = l->rec_len - l->rec_off;

    if (n > len)
        n = len;
    if (n > 0) {
        const uint8_t *data;
        /* the record is whole in the buffer: this peek does no I/O */
        ssize_t r = strata_buffered_peek(l->in, l->rec_total, &data);

        if (r < 0)
            return rx_status(l, r);
        memcpy(buf, data + l->rec_off, n);
        l->rec_off += n;
    }
    if (l->rec_off == l->rec_len) {
        strata_buffered_consume(l->in, l->rec_total);
        l->in_record = 0;
        *flags |= STRATA_MSG_END;
    }
    return (ssize_t)n;
}

static ssize_t line_recv(strata_stream *s, void *buf, size_t len,
                         unsigned *flags)
{
    strata_line *l = (strata_line *)s;

    if (l->failed)
        return l->failed;
    if (!l->in_record) {
        ssize_t r = next_record(l);

        if (r < 0)
            return r;
    }
    return deliver(l, buf, len, flags);
}

/* ---- send ----------------------------------------------------------- */

/* The bytes a send is checked against: the tail of what this record sent
 * before (segment 0), the caller's iovecs (1..n), the separator appended
 * by MSG_END (n + 1). */
typedef struct span {
    const strata_line *l;
    const struct iovec *iov;
    int n;
    int end;
} span;

static int segment(const span *v, int k, const uint8_t **p, size_t *len)
{
    if (k == 0) {
        *p = v->l->tx_tail;
        *len = v->l->tx_tail_len;
    } else if (k <= v->n) {
        *p = v->iov[k - 1].iov_base;
        *len = v->iov[k - 1].iov_len;
    } else if (k == v->n + 1 && v->end) {
        *p = v->l->sep;
        *len = v->l->sep_len;
    } else {
        return 0;
    }
    return 1;
}

static int match_at(const span *v, int k, size_t off)
{
    size_t j = 0;

    while (j < v->l->sep_len) {
        const uint8_t *p;
        size_t len;

        if (!segment(v, k, &p, &len))
            return 0;
        if (off >= len) {
            k++;
            off = 0;
            continue;
        }
        if (p[off] != v->l->sep[j])
            return 0;
        off++;
        j++;
    }
    return 1;
}

/* Would the peer see the separator before this record's end? Matches may
 * start in the earlier tail or the new bytes and run into what follows. */
static int has_sep(const span *v)
{
    int k;

    for (k = 0; k <= v->n; k++) {
        const uint8_t *p, *hit;
        size_t len, off = 0;

        segment(v, k, &p, &len);
        while (off < len &&
               (hit = memchr(p + off, v->l->sep[0], len - off)) != NULL) {
            off = (size_t)(hit - p);
            if (match_at(v, k, off))
                return 1;
            off++;
        }
    }
    return 0;
}

/* ANY_EOL's peer ends a record at any "\n" and drops a "\r" before it. */
static int has_eol(const span *v)
{
    const strata_line *l = v->l;
    uint8_t last = l->tx_tail_len ? l->tx_tail[l->tx_tail_len - 1] : 0;
    int i;

    for (i = 0; i < v->n; i++) {
        if (v->iov[i].iov_len == 0)
            continue;
        if (memchr(v->iov[i].iov_base, '\n', v->iov[i].iov_len) != NULL)
            return 1;
        last = ((const uint8_t *)v->iov[i].iov_base)[v->iov[i].iov_len - 1];
    }
    return v->end && l->sep_len == 1 && last == '\r';
}

static int bad_content(const strata_line *l, const struct iovec *iov, int n,
                       int end)
{
    span v;

    v.l = l;
    v.iov = iov;
    v.n = n;
    v.end = end;
    return any_eol(l) ? has_eol(&v) : has_sep(&v);
}

/* Remember the last bytes sent of this record: enough to catch a separator
 * split across sends (and the last byte, for ANY_EOL's "\r"). */
static void keep_tail(strata_line *l, const uint8_t *p, size_t len)
{
    size_t keep = any_eol(l) ? 1 : l->sep_len - 1;

    if (keep == 0 || len == 0)
        return;
    if (len >= keep) {
        memcpy(l->tx_tail, p + len - keep, keep);
        l->tx_tail_len = keep;
        return;
    }
    if (l->tx_tail_len + len > keep) {
        size_t drop = l->tx_tail_len + len - keep;

        memmove(l->tx_tail, l->tx_tail + drop, l->tx_tail_len - drop);
        l->tx_tail_len -= drop;
    }
    memcpy(l->tx_tail + l->tx_tail_len, p, len);
    l->tx_tail_len += len;
}

static void note_sent(strata_line *l, const struct iovec *iov, int n,
                      size_t moved)
{
    int i;

    l->sent += moved;
    for (i = 0; i < n && moved > 0; i++) {
        size_t take = iov[i].iov_len < moved ? iov[i].iov_len : moved;

        keep_tail(l, iov[i].iov_base, take);
        moved -= take;
    }
}

/* Push what is left of a separator whose record already returned. */
static int push_sep(strata_line *l)
{
    while (l->sep_pending > 0) {
        size_t off = l->sep_len - (size_t)l->sep_pending;
        ssize_t r = strata_send(l->in->base.lower, l->sep + off,
                                (size_t)l->sep_pending, STRATA_MSG_END);

        if (r < 0)
            return (int)r;
        if (r == 0)
            return STRATA_ERR_IO; /* a lower stream broke rule 1 */
        l->sep_pending -= (int)r;
    }
    return 0;
}

static ssize_t send_down(strata_line *l, const struct iovec *iov, int n,
                         int end)
{
    struct iovec v[LOCAL_IOV + 1];
    unsigned down = end ? STRATA_MSG_END : 0;

    if (n > LOCAL_IOV || !end)
        return strata_sendv(l->in->base.lower, iov, n, n > LOCAL_IOV ? 0 : down);
    if (n > 0)
        memcpy(v, iov, (size_t)n * sizeof *iov);
    v[n].iov_base = l->sep;
    v[n].iov_len = l->sep_len;
    return strata_sendv(l->in->base.lower, v, n + 1, down);
}

static ssize_t send_record(strata_line *l, const struct iovec *iov, int n,
                           size_t total, int end)
{
    ssize_t r = send_down(l, iov, n, end);
    size_t moved;

    if (r < 0)
        return r;
    moved = (size_t)r;
    if (moved < total) {
        note_sent(l, iov, n, moved);
        return r;
    }
    if (!end) {
        note_sent(l, iov, n, total);
        return (ssize_t)total;
    }
    /* the record is accepted; a separator that did not all go is ours to
     * finish, and a failure to do it now shows on the next call */
    l->sent = 0;
    l->tx_tail_len = 0;
    l->sep_pending = (int)(l->sep_len - (moved - total));
    (void)push_sep(l);
    return (ssize_t)total;
}

/* A small whole record goes straight into a write buffer below, when
 * there is one with room: no sendv, no iovec walk (streams/wbuf.h). */
static int gather_record(strata_line *l, const struct iovec *iov, int n,
                         size_t total)
{
    strata_stream *out = l->in->base.lower;
    uint8_t *p = strata_wbuf_reserve(out, total + l->sep_len);

    if (p == NULL)
        return 0;
    p += strata_iov_copy(p, iov, n);
    memcpy(p, l->sep, l->sep_len);
    strata_wbuf_commit(out, total + l->sep_len);
    return 1;
}

static ssize_t line_sendv(strata_stream *s, const struct iovec *iov, int n,
                          unsigned flags)
{
    strata_line *l = (strata_line *)s;
    size_t total = strata_iov_len(iov, n);
    int end = (flags & STRATA_MSG_END) != 0;
    int r;

    if (l->tx_shut)
        return STRATA_ERR_STATE;
    if (total > l->max_len - l->sent)
        return STRATA_ERR_TOO_BIG;
    if (n == 1 && l->sep_len == 1 && !any_eol(l)) {
        /* the common case, one buffer and a one-byte separator: nothing
         * can be split across sends, a memchr says it all */
        if (total > 0 && memchr(iov[0].iov_base, l->sep[0], total) != NULL)
            return STRATA_ERR_ARG;
    } else if (bad_content(l, iov, n, end)) {
        return STRATA_ERR_ARG;
    }
    r = push_sep(l);
    if (r < 0)
        return r;
    if (total == 0 && !end)
        return 0;
    if (end && l->sent == 0 && gather_record(l, iov, n, total))
        return (ssize_t)total;
    return send_record(l, iov, n, total, end);
}

static int line_flush(strata_stream *s)
{
    strata_line *l = (strata_line *)s;
    int r = push_sep(l);

    return r < 0 ? r : strata_flush(s->lower);
}

static int line_shutdown(strata_stream *s)
{
    strata_line *l = (strata_line *)s;
    int r;

    if (l->sent > 0)
        return STRATA_ERR_STATE;
    r = push_sep(l);
    if (r < 0)
        return r;
    l->tx_shut = 1;
    return strata_shutdown(s->lower);
}

/* ---- readiness ------------------------------------------------------ */

/* Would recv return without reading: a whole record (or an over-long
 * one) is buffered, past the rest of a record being skipped. */
static int record_buffered(strata_line *l)
{
    size_t seplen, start = 0, have;
    const uint8_t *sep = rx_sep(l, &seplen), *data, *hit;

    have = buffered_view(l->in, &data);
    if (l->in->eof)
        return 1;
    if (have == 0)
        return 0;
    if (l->skipping) {
        hit = find(data, have, sep, seplen);
        if (hit == NULL)
            return 0;
        start = (size_t)(hit - data) + seplen;
    }
    return find(data + start, have - start, sep, seplen) != NULL ||
           have - start >= rx_limit(l) + seplen;
}

static unsigned line_poll(strata_stream *s, unsigned events)
{
    strata_line *l = (strata_line *)s;
    unsigned ready;

    if (l->failed)
        return STRATA_POLL_ERR | (events & STRATA_POLL_IN);
    ready = strata_poll(s->lower, events);
    if (!(events & STRATA_POLL_IN))
        return ready;
    /* the buffered stream says IN for any byte; a record needs more */
    ready &= ~STRATA_POLL_IN;
    if (l->in_record || record_buffered(l))
        ready |= STRATA_POLL_IN;
    else if (l->in->base.lower != NULL)
        ready |= strata_poll(l->in->base.lower, STRATA_POLL_IN) &
                 (STRATA_POLL_IN | STRATA_POLL_HUP);
    return ready;
}

static unsigned line_wants(strata_stream *s)
{
    return ((strata_line *)s)->sep_pending > 0 ? STRATA_WANT_WRITE : 0;
}
