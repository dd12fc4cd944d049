/* strata pipe pair: an in-memory duplex stream pair for tests and demos.
 *
 * What one end sends the other receives, through a bounded ring per
 * direction. A schedule makes it a hard transport on purpose: every call
 * moves a random 1..max_chunk bytes, and a call may return an injected
 * NEED_READ or NEED_WRITE (either, on recv and on send, as a TLS or HTTP/2
 * layer below could) with the given percent chance. The schedule is drawn
 * from a seeded generator, so a failing run replays exactly.
 *
 * Contract: recv on an empty ring returns STRATA_NEED_READ, or STRATA_EOF
 * once the peer shut down or was freed; send on a full ring returns
 * STRATA_NEED_WRITE; send after strata_shutdown is STRATA_ERR_STATE; send
 * to a freed peer is STRATA_ERR_CLOSED. strata_fd is -1: drive both ends
 * from one loop, retrying after NEED codes (there is nothing to wait on).
 */
#ifndef STRATA_PIPE_H
#define STRATA_PIPE_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_pipe_opts {
    size_t capacity;       /* bytes each direction holds; 0: 64 KiB */
    size_t max_chunk;      /* most bytes one call moves; 0: no limit */
    unsigned need_percent; /* 0..100: chance of an injected NEED code */
    uint64_t seed;         /* schedule seed */
} strata_pipe_opts;

/* Create a connected pair. opts may be NULL (64 KiB, no schedule).
 * Returns 0 or STRATA_ERR_NOMEM / STRATA_ERR_ARG. Free each end with
 * strata_free; the shared state goes with the second. */
int strata_pipe_pair(strata_stream **a, strata_stream **b,
                     const strata_pipe_opts *opts,
                     const strata_allocator *alloc);

/* Bytes waiting to be received by `end`. */
size_t strata_pipe_pending(strata_stream *end);

#ifdef __cplusplus
}
#endif
#endif
