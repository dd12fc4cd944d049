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
 */
#ifndef STRATA_WBUF_H
#define STRATA_WBUF_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif
