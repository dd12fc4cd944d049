/* The line layer. Receive pulls a whole record out of the buffered stream
 * (strata_buffered_readline) before handing out any byte of it, so a record
 * over max_len is refused before a byte of it is delivered; send pushes the
 * caller's bytes and the separator down in one sendv, without copying (the
 * embedded profile sends the separator after them, see send_down).
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

/* ANY_EOL's separators; crlf + 1 is "\n", the default one */
static const char crlf[] = "\r\n";

/* ---- options -------------------------------------------------------- */

static int any_eol(const strata_line *l)
{
    return (l->flags & STRATA_LINE_ANY_EOL) != 0;
}

/* The separator searched for on receive: "\n" under ANY_EOL (a "\r"
 * before it is dropped afterwards), else the configured one. Either way it
 * ends the configured separator: ANY_EOL's is "\n" or "\r\n". */
static const uint8_t *rx_sep(const strata_line *l, size_t *len)
{
    *len = l->rx_len;
    return l->sep + l->sep_len - l->rx_len;
}

/* Content bytes a received line may span before its separator: one more
 * under ANY_EOL for the "\r" that is not content. */
static size_t rx_limit(const strata_line *l)
{
    return l->max_len + (any_eol(l) ? 1 : 0);
}

/* The buffer a record of max_len needs: the line and its separator. */
static size_t need_cap(const strata_line *l)
{
    size_t plen;

    (void)rx_sep(l, &plen);
    return rx_limit(l) + plen;
}

static int parse_opts(strata_line *l, const strata_line_opts *o)
{
    static const strata_line_opts none; /* NULL options: every default */
    const char *sep;
    size_t len;

    if (o == NULL)
        o = &none;
    sep = o->sep != NULL ? o->sep : crlf + 1; /* "\n" */
    len = o->sep_len != 0 ? o->sep_len : strlen(sep);
    l->max_len = o->max_len != 0 ? o->max_len : DEFAULT_MAX;
    l->flags = o->flags;
    l->sep_len = (uint8_t)len;
    l->rx_len = any_eol(l) ? 1 : (uint8_t)len;
    l->keep = any_eol(l) ? 1 : (uint8_t)(len - 1);
    /* a longer sep_len without sep is a mistake; max_len + 16 must
     * neither overflow nor leave ssize_t's range; ANY_EOL sends "\n" or
     * "\r\n" (the tail of crlf as long as sep) */
    if ((o->sep == NULL && len > 1) || len - 1 >= sizeof l->sep ||
        l->max_len > (size_t)-1 / 4 || (l->flags & ~STRATA_LINE_ANY_EOL) ||
        (any_eol(l) &&
         (len > 2 || memcmp(sep, crlf + 2 - len, len) != 0)))
        return STRATA_ERR_ARG;
    memcpy(l->sep, sep, len);
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

#ifndef STRATA_EMBEDDED /* the constructor that allocates */
#define MIN_BUFFER 4096

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
#endif

/* ---- receive -------------------------------------------------------- */

/* Where the first separator the peer sends (rx_sep) ends in p[0..len),
 * or NULL. */
static const uint8_t *find(const strata_line *l, const uint8_t *p,
                           size_t len)
{
    size_t plen, i = 0;
    const uint8_t *pat = rx_sep(l, &plen);

    while (i + plen <= len) {
        const uint8_t *hit = memchr(p + i, pat[0], len - i - plen + 1);

        if (hit == NULL)
            return NULL;
        if (memcmp(hit, pat, plen) == 0)
            return hit + plen;
        i = (size_t)(hit - p) + 1;
    }
    return NULL;
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

/* How far the buffered bytes run to the end of the first separator the
 * peer sent from `from` on; 0 if there is none yet. Looks in place: no
 * I/O. */
static size_t past_sep(strata_line *l, size_t from)
{
    const uint8_t *data = l->in->buf + l->in->start;
    const uint8_t *end = find(l, data + from,
                              strata_buffered_len(l->in) - from);

    return end != NULL ? (size_t)(end - data) : 0;
}

/* Resynchronise after TOO_BIG: drop bytes up to and including the next
 * separator. The buffer may fill many times before it comes, so drop what
 * is scanned, keeping only a tail that could begin a split separator. */
static ssize_t skip(strata_line *l, size_t seplen)
{
    for (;;) {
        size_t end = past_sep(l, 0), have = strata_buffered_len(l->in);
        ssize_t r;

        if (end > 0) {
            strata_buffered_consume(l->in, end);
            l->skipping = 0;
            return 0;
        }
        if (have >= seplen)
            strata_buffered_consume(l->in, have - seplen + 1);
        r = strata_buffered_fill(l->in);
        if (r < 0)
            return r;
    }
}

static ssize_t next_record(strata_line *l)
{
    size_t seplen, content;
    const uint8_t *sep = rx_sep(l, &seplen), *line;
    ssize_t r = l->skipping ? skip(l, seplen) : 0;

    if (r >= 0)
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
    l->rec_sep = (size_t)r - content;
    return 0;
}

/* The record is whole at the start of the buffer, where nothing else
 * reads or moves it: it is copied out in place and consumed as it goes,
 * its separator with its last piece. */
static ssize_t deliver(strata_line *l, void *buf, size_t len, unsigned *flags)
{
    size_t n = l->rec_len < len ? l->rec_len : len, drop = n;

    if (n > 0)
        memcpy(buf, l->in->buf + l->in->start, n);
    l->rec_len -= n;
    if (l->rec_len == 0) {
        drop += l->rec_sep;
        l->rec_sep = 0;
        *flags |= STRATA_MSG_END;
    }
    strata_buffered_consume(l->in, drop);
    return (ssize_t)n;
}

static ssize_t line_recv(strata_stream *s, void *buf, size_t len,
                         unsigned *flags)
{
    strata_line *l = (strata_line *)s;

    if (l->failed)
        return l->failed;
    if (l->rec_sep == 0) {
        ssize_t r = next_record(l);

        if (r < 0)
            return r;
    }
    return deliver(l, buf, len, flags);
}

/* ---- send ----------------------------------------------------------- */

/* Bytes of a record kept once sent: enough to catch a separator split
 * across sends, or for ANY_EOL the last one (a "\r" before "\n"). */
static size_t tail_keep(const strata_line *l)
{
    return l->keep;
}

/* What walk does with a record's bytes: remember the last ones, look for
 * a separator in them, or in them and the separator MSG_END appends. */
#define TRACK 0
#define CHECK 1
#define CHECK_END 2

/* Walk the first `limit` bytes of iov with a window w holding the last
 * bytes of the record (room for twice tail_keep). TRACK leaves the last
 * ones in tx_tail. A check is 1 as soon as the peer would see a record end
 * before this one's: the separator it looks for (under ANY_EOL "\n") in
 * the bytes or across a join (a match there lies in the window and the
 * first bytes after it); with CHECK_END, anywhere but at the end of the
 * separator appended ("a|" + "||"), or under ANY_EOL after a "\r" the
 * peer drops before it. */
static int walk(strata_line *l, const struct iovec *iov, int n, size_t limit,
                int mode)
{
    uint8_t w[2 * sizeof l->tx_tail];
    size_t have = l->tx_tail_len, keep = tail_keep(l), j;
    int i;

    memcpy(w, l->tx_tail, sizeof l->tx_tail);
    for (i = 0; i < n && limit > 0; i++) {
        const uint8_t *p = iov[i].iov_base, *src;
        size_t len = iov[i].iov_len < limit ? iov[i].iov_len : limit;

        limit -= len;
        if (len == 0)
            continue;
        /* at most 7 bytes each: loops, not calls */
        for (j = 0; j < len && j < keep; j++)
            w[have + j] = p[j];
        /* the window alone holds no match: it was checked before (and
         * the bytes of p are) */
        if (mode != TRACK &&
            (find(l, p, len) != NULL ||
             (have > 0 && find(l, w, have + j) != NULL)))
            return 1;
        /* the window keeps the last bytes: of p, or of what it holds */
        have += len;
        if (have > keep) {
            src = (len > keep ? p + len : w + have) - keep;
            for (j = 0; j < keep; j++)
                w[j] = src[j];
            have = keep;
        }
    }
    if (mode == TRACK) {
        memcpy(l->tx_tail, w, sizeof l->tx_tail);
        l->tx_tail_len = have;
    }
    if (mode != CHECK_END)
        return 0;
    /* the separator after the window: a match ending before its last byte
     * is an early end (one needs a separator of two bytes or more, "\n"
     * alone shows in the bytes); under ANY_EOL the window holds one byte,
     * so w[0] is the record's last (or the "\n" appended, when it has
     * none) */
    memcpy(w + have, l->sep, l->sep_len);
    return (l->rx_len > 1 && find(l, w, have + l->sep_len - 1) != NULL) ||
           (any_eol(l) && l->sep_len == 1 && w[0] == '\r');
}

/* The common case, one buffer and a one-byte separator: nothing can be
 * split across sends, a memchr says it all. walk finds the same, and is
 * all the embedded profile keeps. */
static int one_memchr(const strata_line *l, int n)
{
#ifdef STRATA_EMBEDDED
    (void)l;
    (void)n;
    return 0;
#else
    return n == 1 && l->sep_len == 1 && !any_eol(l);
#endif
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

/* One sendv of the caller's bytes and, with end, the separator after them
 * (so the count may pass total). The embedded profile sends the bytes
 * alone, the separator after them by push_sep (or alone, for an empty
 * record, so that a NEED code still means nothing went): no iovec array
 * to build. */
static ssize_t send_down(strata_line *l, const struct iovec *iov, int n,
                         size_t total, int end)
{
#ifdef STRATA_EMBEDDED
    (void)end; /* an empty send without it returned before */
    if (total > 0)
        return strata_sendv(l->in->base.lower, iov, n, 0);
    return strata_send(l->in->base.lower, l->sep, l->sep_len,
                       STRATA_MSG_END);
#else
    struct iovec v[LOCAL_IOV + 1];

    (void)total;
    if (!end || n > LOCAL_IOV)
        return strata_sendv(l->in->base.lower, iov, n, 0);
    if (n > 0)
        memcpy(v, iov, (size_t)n * sizeof *iov);
    v[n].iov_base = l->sep;
    v[n].iov_len = l->sep_len;
    return strata_sendv(l->in->base.lower, v, n + 1, STRATA_MSG_END);
#endif
}

static ssize_t send_record(strata_line *l, const struct iovec *iov, int n,
                           size_t total, int end)
{
    ssize_t r = send_down(l, iov, n, total, end);

    if (r < 0)
        return r;
    if (!end || (size_t)r < total) {
        /* the record goes on: what moved was content */
        walk(l, iov, n, (size_t)r, TRACK);
        l->sent += (size_t)r;
        return r;
    }
    /* the record is accepted; a separator that did not all go is ours to
     * finish, and a failure to do it now shows on the next call */
    l->sent = 0;
    l->tx_tail_len = 0;
    l->sep_pending = (int)(l->sep_len - ((size_t)r - total));
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
    if (one_memchr(l, n)) {
        if (total > 0 && memchr(iov[0].iov_base, l->sep[0], total) != NULL)
            return STRATA_ERR_ARG;
    } else if (walk(l, iov, n, (size_t)-1, end ? CHECK_END : CHECK)) {
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
 * one) is buffered, past the rest of a record being skipped. What is
 * buffered is looked at in place: this does no I/O. */
static int record_buffered(strata_line *l)
{
    size_t start = 0;

    if (l->in->eof)
        return 1;
    if (l->skipping && (start = past_sep(l, 0)) == 0)
        return 0;
    /* need_cap: the bytes that hold a longest record or show it too long */
    return past_sep(l, start) > 0 ||
           strata_buffered_len(l->in) - start >= need_cap(l);
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
    if (l->rec_sep > 0 || record_buffered(l))
        ready |= STRATA_POLL_IN;
    else /* no lower: strata_poll says POLL_ERR alone, masked off here */
        ready |= strata_poll(l->in->base.lower, STRATA_POLL_IN) &
                 (STRATA_POLL_IN | STRATA_POLL_HUP);
    return ready;
}

static unsigned line_wants(strata_stream *s)
{
    return ((strata_line *)s)->sep_pending > 0 ? STRATA_WANT_WRITE : 0;
}
