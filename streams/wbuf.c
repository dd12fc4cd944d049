/* The write buffer: small sends are copied into a linear buffer [off, len)
 * and leave in one sendv together with the next large send, an overflow or
 * a flush.
 *
 * A wbuf belongs directly above a byte-stream transport (a socket, a pipe
 * end), where message flags mean nothing: the gathered bytes leave with
 * the flags of whatever send or flush pushes them out, not with their own.
 * Above a layer that keeps message boundaries it would merge messages.
 *
 * After a shutdown or a failure of the lower stream cap is set to 0:
 * nothing more is gathered, every send goes straight down and the lower
 * stream answers it with its own state (STRATA_ERR_STATE after shutdown,
 * its sticky error after a failure). That keeps both rules of the contract
 * without a field of its own. */
#include "wbuf.h"

#include <string.h>

/* Entries of the combined sendv (gathered bytes + the caller's iovecs). A
 * longer caller array is sent in part, which the contract allows. */
#define GATHER_IOV 32

static ssize_t w_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags);
static ssize_t w_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags);
static int w_flush(strata_stream *s);
static int w_shutdown(strata_stream *s);
static unsigned w_poll(strata_stream *s, unsigned events);
static unsigned w_wants(strata_stream *s);
static void w_close(strata_stream *s);

const strata_stream_ops strata_wbuf_ops = {
    "wbuf", w_recv, w_sendv, w_flush, w_shutdown, w_poll, w_wants, NULL,
    w_close,
};

void strata_wbuf_init(strata_wbuf *w, strata_stream *lower, void *storage,
                      size_t cap, size_t threshold)
{
    if (w == NULL)
        return;
    strata_stream_init(&w->base, &strata_wbuf_ops, lower, NULL);
    /* Caller-provided storage: strata_free releases nothing of the
     * caller's, the lower stream included (as strata_buffered_init). */
    w->base.owns_lower = 0;
    w->buf = storage;
    w->cap = storage != NULL ? cap : 0;
    w->len = w->off = 0;
    w->threshold = threshold != 0 ? threshold : cap / 4;
    w->blocked = 0;
    w->own_buf = 0;
}

strata_stream *strata_wbuf_new(strata_stream *lower, size_t cap,
                               size_t threshold,
                               const strata_allocator *alloc)
{
    strata_wbuf *w;
    void *storage;

    if (lower == NULL || cap == 0)
        return NULL;
    w = strata_alloc(alloc, sizeof *w);
    storage = strata_alloc(alloc, cap);
    if (w == NULL || storage == NULL) {
        strata_dealloc(alloc, w);
        strata_dealloc(alloc, storage);
        return NULL;
    }
    strata_wbuf_init(w, lower, storage, cap, threshold);
    w->base.alloc = alloc;
    w->base.heap = 1;
    w->base.owns_lower = 1;
    w->own_buf = 1;
    return &w->base;
}

size_t strata_wbuf_pending(strata_stream *s)
{
    strata_wbuf *w = (strata_wbuf *)s;

    return s != NULL && s->ops == &strata_wbuf_ops ? w->len - w->off : 0;
}

static size_t gathered(const strata_wbuf *w)
{
    return w->len - w->off;
}

static int fits(strata_wbuf *w, size_t n);

/* The slow half of strata_wbuf_reserve: room only after compacting. */
uint8_t *strata_wbuf_make_room(strata_wbuf *w, size_t n)
{
    return fits(w, n) ? w->buf + w->len : NULL;
}

/* Account for n gathered bytes that went down. */
static void consumed(strata_wbuf *w, size_t n)
{
    w->off += n;
    if (w->off == w->len) {
        w->off = w->len = 0;
        w->blocked = 0;
    }
}

/* Record what the lower stream said when it took nothing. A NEED code is
 * remembered for strata_wants (the generic record is cleared by the next
 * send that is merely gathered, while the bytes still wait); any other
 * status ends gathering for good (see the top of the file). A lower stream
 * that returns 0 for bytes breaks the contract; calling it blocked keeps
 * our callers from spinning on a 0. */
static ssize_t refused(strata_wbuf *w, ssize_t r)
{
    if (r == 0)
        r = STRATA_NEED_WRITE;
    if (r == STRATA_NEED_READ)
        w->blocked = STRATA_WANT_READ;
    else if (r == STRATA_NEED_WRITE)
        w->blocked = STRATA_WANT_WRITE;
    else
        w->cap = 0;
    return r;
}

/* Does a small send of n bytes fit? Compacts when that makes it fit. */
static int fits(strata_wbuf *w, size_t n)
{
    size_t g = gathered(w);

    if (n > w->cap || g > w->cap - n) /* also when cap fell to 0 */
        return 0;
    if (w->len > w->cap - n) {
        memmove(w->buf, w->buf + w->off, g);
        w->off = 0;
        w->len = g;
    }
    return 1;
}

static void gather(strata_wbuf *w, const struct iovec *iov, int n)
{
    w->len += strata_iov_copy(w->buf + w->len, iov, n);
}

/* One sendv of the gathered bytes followed by the caller's. Returns the
 * caller's bytes that went down (> 0), 0 when only gathered bytes went
 * (they are accounted; the caller tries again), or a status. The gathered
 * bytes come first in the stream, so they are counted first. */
static ssize_t write_through(strata_wbuf *w, const struct iovec *iov, int n,
                             unsigned flags)
{
    struct iovec v[GATHER_IOV];
    size_t g = gathered(w);
    int k = n < GATHER_IOV - 1 ? n : GATHER_IOV - 1;
    ssize_t r;

    if (g == 0) {
        r = strata_sendv(w->base.lower, iov, n, flags);
        return r > 0 ? r : refused(w, r);
    }
    v[0].iov_base = w->buf + w->off;
    v[0].iov_len = g;
    memcpy(v + 1, iov, (size_t)k * sizeof *v);
    r = strata_sendv(w->base.lower, v, k + 1, flags);
    if (r <= 0)
        return refused(w, r);
    if ((size_t)r <= g) {
        consumed(w, (size_t)r);
        return 0;
    }
    consumed(w, g);
    return r - (ssize_t)g;
}

static ssize_t w_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags)
{
    strata_wbuf *w = (strata_wbuf *)s;
    size_t total = strata_iov_len(iov, n);
    ssize_t r;

    /* An empty send carries no bytes; with nothing gathered it goes down
     * as it is, so the lower stream still sees it (and its state). */
    if (total == 0)
        return gathered(w) == 0 ? strata_sendv(s->lower, iov, n, flags) : 0;
    /* Each round either gathers the send, moves caller bytes, fails, or
     * moves at least one gathered byte: it ends within gathered() rounds.
     * A round that freed room may let a small send be gathered after all,
     * which is better than a NEED code. */
    for (;;) {
        if (total < w->threshold && fits(w, total)) {
            gather(w, iov, n);
            return (ssize_t)total;
        }
        r = write_through(w, iov, n, flags);
        if (r != 0)
            return r;
    }
}

/* Write the gathered bytes down: 0 when none are left, else a status.
 * Flags 0: the bytes are a byte-stream fragment, whatever they were sent
 * with (see the top of the file). */
static int drain(strata_wbuf *w)
{
    while (gathered(w) > 0) {
        struct iovec v;
        ssize_t r;

        v.iov_base = w->buf + w->off;
        v.iov_len = gathered(w);
        r = strata_sendv(w->base.lower, &v, 1, 0);
        if (r <= 0)
            return (int)refused(w, r);
        consumed(w, (size_t)r);
    }
    return 0;
}

/* The lower stream may hold bytes too (another buffer, TLS records). */
static int w_flush(strata_stream *s)
{
    int r = drain((strata_wbuf *)s);

    return r != 0 ? r : strata_flush(s->lower);
}

static int w_shutdown(strata_stream *s)
{
    strata_wbuf *w = (strata_wbuf *)s;
    int r = drain(w);

    if (r != 0)
        return r;
    r = strata_shutdown(s->lower);
    if (r == 0)
        w->cap = 0; /* later sends reach the lower stream, which refuses */
    return r;
}

static ssize_t w_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags)
{
    return strata_recv(s->lower, buf, len, flags);
}

/* A send that fits is progress even while the transport is full. */
static unsigned w_poll(strata_stream *s, unsigned events)
{
    strata_wbuf *w = (strata_wbuf *)s;
    unsigned ready = strata_poll(s->lower, events);

    if (w->cap > gathered(w))
        ready |= events & STRATA_POLL_OUT;
    return ready;
}

static unsigned w_wants(strata_stream *s)
{
    strata_wbuf *w = (strata_wbuf *)s;

    return gathered(w) > 0 ? (unsigned)w->blocked : 0;
}

static void w_close(strata_stream *s)
{
    strata_wbuf *w = (strata_wbuf *)s;

    if (w->own_buf)
        strata_dealloc(s->alloc, w->buf);
    w->buf = NULL;
}
