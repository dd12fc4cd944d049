/* The buffered input stream: a linear buffer [start, end) that is compacted
 * only when a peek needs contiguous room, so a decoder gets its unit in one
 * piece without a ring's wrap-around. */
#include "buffered.h"

#include <string.h>

static ssize_t b_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags);
static ssize_t b_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags);
static unsigned b_poll(strata_stream *s, unsigned events);
static void b_close(strata_stream *s);

static const strata_stream_ops buffered_ops = {
    "buffered", b_recv, b_sendv, NULL, NULL, b_poll, NULL, NULL, b_close,
};

void strata_buffered_init(strata_buffered *b, strata_stream *lower,
                          void *storage, size_t cap)
{
    /* initialised without lower, so that it does not own it */
    strata_stream_init(&b->base, &buffered_ops, NULL, NULL);
    b->base.lower = lower;
    b->buf = storage;
    b->cap = cap;
    b->start = b->end = b->scanned = 0;
    b->eof = 0;
    b->own_buf = 0;
}

strata_buffered *strata_buffered_of(strata_stream *s)
{
    return s != NULL && s->ops == &buffered_ops ? (strata_buffered *)s : NULL;
}

#ifndef STRATA_EMBEDDED /* the constructors that allocate */
strata_stream *strata_buffered_new(strata_stream *lower, size_t cap,
                                   const strata_allocator *alloc)
{
    strata_buffered *b;
    void *storage;

    if (lower == NULL || cap == 0)
        return NULL;
    b = strata_alloc(alloc, sizeof *b);
    storage = strata_alloc(alloc, cap);
    if (b == NULL || storage == NULL) {
        strata_dealloc(alloc, b);
        strata_dealloc(alloc, storage);
        return NULL;
    }
    strata_buffered_init(b, lower, storage, cap);
    b->base.alloc = alloc;
    b->base.heap = 1;
    b->base.owns_lower = 1;
    b->own_buf = 1;
    return &b->base;
}

strata_buffered *strata_buffered_over(strata_stream *lower, size_t cap,
                                      const strata_allocator *alloc)
{
    strata_buffered *b = strata_buffered_of(lower);

    return b != NULL ? b
                     : strata_buffered_of(strata_buffered_new(lower, cap, alloc));
}

void strata_buffered_undo(strata_buffered *b, strata_stream *lower)
{
    if (b == NULL || &b->base == lower)
        return;
    b->base.owns_lower = 0;
    strata_free(&b->base);
}
#endif

size_t strata_buffered_len(const strata_buffered *b)
{
    return b->end - b->start;
}

void strata_buffered_consume(strata_buffered *b, size_t n)
{
    size_t have = b->end - b->start;

    if (n > have)
        n = have;
    b->start += n;
    b->scanned = b->scanned > n ? b->scanned - n : 0;
    if (b->start == b->end)
        b->start = b->end = 0;
}

static void compact(strata_buffered *b)
{
    if (b->start == 0)
        return;
    memmove(b->buf, b->buf + b->start, b->end - b->start);
    b->end -= b->start;
    b->start = 0;
}

/* One read from the lower stream into the free space (compacting first
 * when there is none), of no more bytes than lim bytes from start would
 * hold: lim n, a peek takes nothing past its unit; lim cap, all the room.
 * The lower stream's EOF is remembered, and once seen no read is made. */
static ssize_t fill_to(strata_buffered *b, size_t lim)
{
    size_t room, want = lim - (b->end - b->start);
    ssize_t r;

    if (b->eof)
        return STRATA_EOF;
    if (b->end == b->cap)
        compact(b);
    if (b->end == b->cap)
        return STRATA_ERR_TOO_BIG;
    room = b->cap - b->end;
    r = strata_read(b->base.lower, b->buf + b->end, want < room ? want : room);
    if (r > 0)
        b->end += (size_t)r;
    else if (r == STRATA_EOF)
        b->eof = 1;
    return r;
}

ssize_t strata_buffered_fill(strata_buffered *b)
{
    return fill_to(b, b->cap);
}

/* Make n bytes available, reading no more than lim bytes from start
 * would hold (n <= lim <= cap). */
static ssize_t peek(strata_buffered *b, size_t n, const uint8_t **data,
                    size_t lim)
{
    if (n > b->cap)
        return STRATA_ERR_TOO_BIG;
    while (b->end - b->start < n) {
        ssize_t r;

        if (b->cap - b->start < n)
            compact(b);
        r = fill_to(b, lim);
        if (r < 0)
            return r;
    }
    if (data != NULL)
        *data = b->buf + b->start;
    return (ssize_t)(b->end - b->start);
}

ssize_t strata_buffered_peek(strata_buffered *b, size_t n,
                             const uint8_t **data)
{
    return peek(b, n, data, b->cap);
}

ssize_t strata_buffered_peek_exact(strata_buffered *b, size_t n,
                                   const uint8_t **data)
{
    return peek(b, n, data, n);
}

/* Search the unscanned part for sep; remember how far the search got so a
 * line arriving one byte at a time costs linear, not quadratic, time. */
static ssize_t find_sep(strata_buffered *b, const uint8_t *sep, size_t seplen)
{
    size_t have = b->end - b->start;
    const uint8_t *p = b->buf + b->start;
    size_t i;

    for (i = b->scanned; i + seplen <= have; i++) {
        const uint8_t *hit = memchr(p + i, sep[0], have - i - seplen + 1);

        if (hit == NULL)
            break;
        i = (size_t)(hit - p);
        if (memcmp(hit, sep, seplen) == 0)
            return (ssize_t)i;
    }
    b->scanned = have >= seplen ? have - seplen + 1 : 0;
    return -1;
}

ssize_t strata_buffered_readline(strata_buffered *b, const void *sep,
                                 size_t seplen, size_t max,
                                 const uint8_t **line)
{
    if (sep == NULL || seplen == 0 || max > b->cap ||
        seplen > b->cap - max || line == NULL)
        return STRATA_ERR_ARG;
    for (;;) {
        ssize_t at = find_sep(b, sep, seplen);
        ssize_t r;

        if (at >= 0 && (size_t)at <= max) {
            *line = b->buf + b->start;
            return at + (ssize_t)seplen;
        }
        /* a separator found past max: more than max + seplen bytes are
         * buffered, so this refuses it too */
        if (b->end - b->start >= max + seplen)
            return STRATA_ERR_TOO_BIG;
        if (b->cap - b->start < max + seplen)
            compact(b);
        r = strata_buffered_fill(b);
        if (r < 0)
            return r;
    }
}

static ssize_t b_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags)
{
    strata_buffered *b = (strata_buffered *)s;
    size_t have = b->end - b->start;
    ssize_t r;

    (void)flags;
    if (have == 0) {
        /* A big read goes straight into the caller's buffer: copying it
         * through ours would only cost a second pass over the bytes. */
        if (len >= b->cap / 2 && len > 0) {
            if (b->eof)
                return STRATA_EOF;
            r = strata_read(s->lower, buf, len);
            if (r == STRATA_EOF)
                b->eof = 1;
            return r;
        }
        r = strata_buffered_fill(b);
        if (r < 0)
            return r;
        have = b->end - b->start;
    }
    if (len > have)
        len = have;
    memcpy(buf, b->buf + b->start, len);
    strata_buffered_consume(b, len);
    return (ssize_t)len;
}

static ssize_t b_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags)
{
    return strata_sendv(s->lower, iov, n, flags);
}

static unsigned b_poll(strata_stream *s, unsigned events)
{
    strata_buffered *b = (strata_buffered *)s;
    unsigned ready = 0;

    if (b->end > b->start)
        ready |= events & STRATA_POLL_IN;
    else if (b->eof)
        ready |= (events & STRATA_POLL_IN) | STRATA_POLL_HUP;
    /* Ask below (a system call for a socket) only for what is still open. */
    if ((events & ~ready & (STRATA_POLL_IN | STRATA_POLL_OUT)) != 0)
        ready |= strata_poll(s->lower, events & ~ready);
    return ready;
}

static void b_close(strata_stream *s)
{
    strata_buffered *b = (strata_buffered *)s;

#ifndef STRATA_EMBEDDED /* only strata_buffered_new's buffer is owned */
    if (b->own_buf)
        strata_dealloc(s->alloc, b->buf);
#endif
    b->buf = NULL;
}
