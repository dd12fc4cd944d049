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
 * before it is dropped afterwards), else the configured one. */
static const uint8_t *rx_sep(const strata_line *l, size_t *len)
{
    if (any_eol(l)) {
        *len = 1;
        return (const uint8_t *)crlf + 1;
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

/* The buffer a record of max_len needs: content, the "\r" ANY_EOL may
 * add, the separator. */
static size_t need_cap(const strata_line *l)
{
    return l->max_len + (any_eol(l) ? 2 : l->sep_len);
}

static int parse_opts(strata_line *l, const strata_line_opts *o)
{
    strata_line_opts d = {NULL, 0, 0, 0}; /* NULL options: every default */
    const char *sep;
    size_t len;

    if (o != NULL)
        d = *o;
    sep = d.sep;
    len = d.sep_len;
    if (sep == NULL) {
        /* "\n"; a longer sep_len without sep is a mistake */
        if (len > 1)
            return STRATA_ERR_ARG;
        sep = crlf + 1;
        len = 1;
    } else if (len == 0) {
        len = strlen(sep);
    }
    l->max_len = d.max_len != 0 ? d.max_len : DEFAULT_MAX;
    l->flags = d.flags;
    l->sep_len = len;
    /* max_len + 16 must neither overflow nor leave ssize_t's range;
     * ANY_EOL sends "\n" or "\r\n" (the tail of crlf as long as sep) */
    if (len == 0 || len > sizeof l->sep || l->max_len > (size_t)-1 / 4 ||
        (l->flags & ~STRATA_LINE_ANY_EOL) ||
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
    size_t seplen;
    const uint8_t *sep = rx_sep(l, &seplen);
    const uint8_t *data = l->in->buf + l->in->start;
    const uint8_t *hit = find(data + from, strata_buffered_len(l->in) - from,
                              sep, seplen);

    return hit != NULL ? (size_t)(hit - data) + seplen : 0;
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
    l->rec_off = 0;
    l->rec_total = (size_t)r;
    l->in_record = 1;
    return 0;
}

/* The record is whole at the start of the buffer, where nothing else
 * reads or moves it until it is consumed: it is copied out in place. */
static ssize_t deliver(strata_line *l, void *buf, size_t len, unsigned *flags)
{
    size_t n = l->rec_len - l->rec_off;

    if (n > len)
        n = len;
    if (n > 0) {
        memcpy(buf, l->in->buf + l->in->start + l->rec_off, n);
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

/* Bytes of a record kept once sent: enough to catch a separator split
 * across sends, or for ANY_EOL the last one (a "\r" before "\n"). */
static size_t tail_keep(const strata_line *l)
{
    return any_eol(l) ? 1 : l->sep_len - 1;
}

/* Walk the first `limit` bytes of iov with a window w holding the last
 * bytes of the record (*wl of them, room for twice tail_keep). With check,
 * 1 as soon as the separator the peer looks for (under ANY_EOL "\n") shows
 * in them or across a join: a match there lies in the window and the first
 * bytes after it. CHECK_END checks the separator appended too (but its last
 * byte: a match ending there is the record's end). */
#define CHECK 1
#define CHECK_END 2

static int walk(const strata_line *l, uint8_t *w, size_t *wl,
                const struct iovec *iov, int n, size_t limit, int check)
{
    size_t plen, keep = tail_keep(l);
    const uint8_t *pat = rx_sep(l, &plen);
    int i;

    for (i = 0; i <= n && limit > 0; i++) {
        const uint8_t *p = l->sep, *src;
        size_t len = l->sep_len - 1, have = *wl, j;

        if (i < n) {
            p = iov[i].iov_base;
            len = iov[i].iov_len < limit ? iov[i].iov_len : limit;
            limit -= len;
        } else if (check != CHECK_END) {
            break;
        }
        if (len == 0)
            continue;
        /* at most 7 bytes each: loops, not calls */
        for (j = 0; j < len && j < keep; j++)
            w[have + j] = p[j];
        if (check && (find(p, len, pat, plen) != NULL ||
                      (have > 0 && find(w, have + j, pat, plen) != NULL)))
            return 1;
        /* the window keeps the last bytes: of p, or of what it holds */
        src = len > keep ? p + len : w + have + j;
        have = len > keep || have + j > keep ? keep : have + j;
        for (j = 0; j < have; j++)
            w[j] = (src - have)[j];
        *wl = have;
    }
    return 0;
}

/* Would the peer see a record end before this one's? In the new bytes,
 * across a join with what the record sent before or between iovecs, or
 * with the separator MSG_END appends ("a|" + "||"); under ANY_EOL, at a
 * "\r" before the "\n" appended, which the peer drops. */
static int bad_content(const strata_line *l, const struct iovec *iov, int n,
                       int end)
{
    uint8_t w[2 * sizeof l->tx_tail];
    size_t wl = l->tx_tail_len;

    memcpy(w, l->tx_tail, sizeof l->tx_tail);
    return walk(l, w, &wl, iov, n, (size_t)-1, end ? CHECK_END : CHECK) ||
           (end && any_eol(l) && l->sep_len == 1 && wl > 0 &&
            w[wl - 1] == '\r');
}

/* The common case, one buffer and a one-byte separator: nothing can be
 * split across sends, a memchr says it all. bad_content finds the same,
 * and is all the embedded profile keeps. */
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

static void note_sent(strata_line *l, const struct iovec *iov, int n,
                      size_t moved)
{
    uint8_t w[2 * sizeof l->tx_tail];

    memcpy(w, l->tx_tail, sizeof l->tx_tail);
    walk(l, w, &l->tx_tail_len, iov, n, moved, 0);
    memcpy(l->tx_tail, w, sizeof l->tx_tail);
    l->sent += moved;
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

    if (!end || n > LOCAL_IOV)
        return strata_sendv(l->in->base.lower, iov, n, 0);
    if (n > 0)
        memcpy(v, iov, (size_t)n * sizeof *iov);
    v[n].iov_base = l->sep;
    v[n].iov_len = l->sep_len;
    return strata_sendv(l->in->base.lower, v, n + 1, STRATA_MSG_END);
}

static ssize_t send_record(strata_line *l, const struct iovec *iov, int n,
                           size_t total, int end)
{
    ssize_t r = send_down(l, iov, n, end);

    if (r < 0)
        return r;
    if (!end || (size_t)r < total) {
        /* the record goes on: what moved was content */
        note_sent(l, iov, n, (size_t)r);
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
