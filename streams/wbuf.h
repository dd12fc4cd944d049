/* strata write buffer: coalesces small sends into one write below.
 *
 * Push encoders send header and payload straight down, which costs one
 * system call per small record. A wbuf stacked above the socket gathers
 * small sends in a bounded buffer and writes them together; a send whose
 * payload is at least the threshold goes down at once, together with what
 * was gathered, in one sendv (the payload is not copied).
 *
 * Contract:
 *  - The bytes are kept until strata_flush, until the buffer would
 *    overflow, or until a large send: a caller that stops sending must
 *    flush (strata_shutdown flushes first). Flush returns 0 when all went
 *    out, or a NEED code to retry.
 *  - A send never buffers beyond the capacity: when the gathered bytes and
 *    the new ones do not fit, it writes down first and may return NEED_WRITE
 *    having moved nothing (retry the same send).
 *  - recv passes through; message flags pass through on send, so a wbuf is
 *    transparent to what sits below it except for timing.
 *  - strata_wants includes STRATA_WANT_WRITE while bytes are gathered and a
 *    flush returned NEED_WRITE.
 *  - Not in the embedded profile (STRATA_EMBEDDED): there only the encoders'
 *    fast path below is declared, and finds no wbuf.
 */
#ifndef STRATA_WBUF_H
#define STRATA_WBUF_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef STRATA_EMBEDDED
typedef struct strata_wbuf {
    strata_stream base;
    uint8_t *buf;
    size_t cap;
    size_t len;        /* gathered bytes */
    size_t off;        /* of which this many already went down */
    size_t threshold;  /* sends at least this long are not copied */
    int blocked;       /* the last flush could not finish */
    int own_buf;
} strata_wbuf;

/* A write buffer of cap bytes over lower (owned). threshold 0: cap / 4. */
strata_stream *strata_wbuf_new(strata_stream *lower, size_t cap,
                               size_t threshold,
                               const strata_allocator *alloc);
void strata_wbuf_init(strata_wbuf *w, strata_stream *lower, void *storage,
                      size_t cap, size_t threshold);
/* Bytes gathered and not yet written down. */
size_t strata_wbuf_pending(strata_stream *s);

/* Fast path for encoders of small records sitting right above a wbuf:
 * reserve returns room for n bytes in the gather buffer (NULL when s is
 * not a wbuf, n is not below the threshold, or the bytes would not fit
 * without writing down first: then use strata_sendv); the encoder writes
 * its header and payload there and commits how many it wrote (<= n). It
 * saves the calls and iovec walks of a sendv per record. */
static inline uint8_t *strata_wbuf_reserve(strata_stream *s, size_t n);
static inline void strata_wbuf_commit(strata_stream *s, size_t n);
#endif

#ifdef STRATA_EMBEDDED
/* The embedded profile has no wbuf (a record goes down by sendv, and the
 * transport below may gather): the encoders' fast paths compile away. */
static inline uint8_t *strata_wbuf_reserve(strata_stream *s, size_t n)
{
    (void)s;
    (void)n;
    return NULL;
}

static inline void strata_wbuf_commit(strata_stream *s, size_t n)
{
    (void)s;
    (void)n;
}
#else
/* Inline: they run once per small record, where a call is a real cost. */
extern const strata_stream_ops strata_wbuf_ops;
uint8_t *strata_wbuf_make_room(strata_wbuf *w, size_t n);

static inline uint8_t *strata_wbuf_reserve(strata_stream *s, size_t n)
{
    strata_wbuf *w = (strata_wbuf *)s;

    if (s == NULL || s->ops != &strata_wbuf_ops || n >= w->threshold)
        return NULL;
    if (n <= w->cap - w->len)
        return w->buf + w->len;
    return strata_wbuf_make_room(w, n);
}

static inline void strata_wbuf_commit(strata_stream *s, size_t n)
{
    strata_wbuf *w = (strata_wbuf *)s;

    if (s != NULL && s->ops == &strata_wbuf_ops && n <= w->cap - w->len)
        w->len += n;
}
#endif

#ifdef __cplusplus
}
#endif
#endif
