/* strata buffered input stream: the one place where input is buffered.
 *
 * Decoders pull exactly what they need from it (peek n bytes, consume n,
 * read a line) so no decoder reads past its own protocol unit. When one
 * miniprotocol ends and another begins on the same bytes (an HTTP/1.1
 * Upgrade head, then WebSocket frames) the next layer is stacked on the same
 * buffered stream and finds the leftover bytes here: that is the hand-off.
 *
 * Contract:
 *  - The buffer has a fixed capacity given at creation; it never grows.
 *    peek(n) with n > capacity is STRATA_ERR_TOO_BIG.
 *  - As a stream, recv returns buffered bytes first; when the buffer is
 *    empty and the caller asks for at least half the capacity, it reads
 *    from the lower stream straight into the caller's buffer (no double
 *    copy for big payloads; a read that large gains little from batching). Message flags of the lower stream are not kept: a buffered
 *    stream is a byte stream. sendv, flush and shutdown pass to the lower
 *    stream untouched.
 *  - The lower stream's EOF is remembered: once seen, peek and readline
 *    that cannot be satisfied return STRATA_EOF, and strata_buffered_len()
 *    tells a caller whether bytes were left over (a truncated unit).
 *  - strata_poll reports STRATA_POLL_IN while bytes are buffered.
 */
#ifndef STRATA_BUFFERED_H
#define STRATA_BUFFERED_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_buffered {
    strata_stream base;
    uint8_t *buf;
    size_t cap;
    size_t start;     /* first unread byte */
    size_t end;       /* one past the last buffered byte */
    size_t scanned;   /* bytes after start known not to begin a separator */
    int eof;          /* the lower stream returned STRATA_EOF */
    int own_buf;
} strata_buffered;

/* The same in caller-provided storage: `b` and `storage` (cap bytes) live
 * as long as the stream; strata_free(&b->base) frees neither. */
void strata_buffered_init(strata_buffered *b, strata_stream *lower,
                          void *storage, size_t cap);
/* `s` as a buffered stream, or NULL if it is another layer. */
strata_buffered *strata_buffered_of(strata_stream *s);
#ifndef STRATA_EMBEDDED /* the profile has no constructor that allocates */
/* A buffered stream of `cap` bytes over `lower` (which it owns). */
strata_stream *strata_buffered_new(strata_stream *lower, size_t cap,
                                   const strata_allocator *alloc);
/* For a decoder's constructor: lower itself when it is a buffered stream,
 * else a new one of cap bytes over it (owning it). NULL when the allocator
 * refused. If the constructor fails afterwards, strata_buffered_undo gives
 * lower back untouched (a failed constructor leaves lower be). */
strata_buffered *strata_buffered_over(strata_stream *lower, size_t cap,
                                      const strata_allocator *alloc);
void strata_buffered_undo(strata_buffered *b, strata_stream *lower);
#endif

/* Make at least n bytes available (reading from lower as needed) and point
 * *data at them. Returns the bytes now available (>= n) or a status:
 * NEED_*, STRATA_EOF (fewer than n bytes will ever come), an error of the
 * lower stream, STRATA_ERR_TOO_BIG (n > capacity). */
ssize_t strata_buffered_peek(strata_buffered *b, size_t n,
                             const uint8_t **data);
/* The same, but reading from the lower stream no more than the missing
 * bytes, so nothing past the unit is taken: for a decoder whose next unit
 * is a big payload better read straight into the caller's buffer. */
ssize_t strata_buffered_peek_exact(strata_buffered *b, size_t n,
                                   const uint8_t **data);
/* Drop n bytes (n <= strata_buffered_len). */
void strata_buffered_consume(strata_buffered *b, size_t n);
/* Bytes buffered now. */
size_t strata_buffered_len(const strata_buffered *b);
/* One read from the lower stream into the free space (compacting first).
 * Returns the bytes added or a status; STRATA_ERR_TOO_BIG when full. */
ssize_t strata_buffered_fill(strata_buffered *b);
/* Find a line ending in `sep` whose content is at most `max` bytes.
 * Returns the line's length INCLUDING the separator (consume that many)
 * and points *line at it; STRATA_ERR_TOO_BIG when max + seplen bytes hold
 * no separator (nothing is consumed: the caller decides how to resync);
 * STRATA_EOF when the stream ends first; NEED_* to wait.
 * max + seplen must not exceed the capacity (else STRATA_ERR_ARG). */
ssize_t strata_buffered_readline(strata_buffered *b, const void *sep,
                                 size_t seplen, size_t max,
                                 const uint8_t **line);

#ifdef __cplusplus
}
#endif
#endif
