/* strata tap: a pass-through layer that counts and reports what crosses.
 *
 * A tap sits between two layers and changes nothing: every call goes to
 * the lower stream with the same arguments and its result comes back as
 * it was. On the way it counts bytes and message ends in each direction
 * and, when a callback is set, tells it about each call that moved bytes
 * or ended (EOF, an error; not the NEED codes, which are not events).
 * It is how `strata -v` and the showcase demo show each layer of a stack.
 *
 * Contract:
 *  - Transparent: recv, sendv, flush, shutdown, poll and fd are the lower
 *    stream's; wants is the lower stream's wants, so an event loop waits
 *    on the same directions with or without the tap.
 *  - A tap may go under any layer that speaks to the stream below it only
 *    through the strata_* calls (tls, ws over bytes, lines, len, h2's
 *    connection). It may not go under a layer that asks its lower stream
 *    for a concrete type (a WebSocket or a gRPC call over an HTTP/2
 *    stream): put it above such a layer instead.
 *  - The callback runs inside the call and must not call the tap or its
 *    stack. The label is not copied: it must outlive the tap.
 */
#ifndef STRATA_TAP_H
#define STRATA_TAP_H

#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

enum strata_tap_dir { STRATA_TAP_RECV, STRATA_TAP_SEND };

/* One call through the tap: dir, the result (bytes moved, or a status
 * other than NEED_*) and, for bytes, the message flags it carried. */
typedef void (*strata_tap_cb)(void *ud, const char *label,
                              enum strata_tap_dir dir, ssize_t result,
                              unsigned flags);

typedef struct strata_tap_counts {
    uint64_t bytes;     /* bytes moved */
    uint64_t calls;     /* calls that moved at least one byte or ended */
    uint64_t messages;  /* message ends (STRATA_MSG_END) */
} strata_tap_counts;

typedef struct strata_tap {
    strata_stream base;
    const char *label;
    strata_tap_cb cb;
    void *ud;
    strata_tap_counts in, out;  /* received from below, sent down */
} strata_tap;

/* A tap over lower (owned by the tap); NULL on allocation failure, and
 * then lower is freed. */
strata_stream *strata_tap_new(strata_stream *lower, const char *label,
                              strata_tap_cb cb, void *ud,
                              const strata_allocator *alloc);
/* The same in caller storage; lower is not owned (strata_free frees
 * nothing of the caller's). */
void strata_tap_init(strata_tap *t, strata_stream *lower, const char *label,
                     strata_tap_cb cb, void *ud);
/* The counts of a tap, or NULL when s is not one. */
const strata_tap_counts *strata_tap_in(strata_stream *s);
const strata_tap_counts *strata_tap_out(strata_stream *s);
/* The label of a tap, or NULL when s is not one. */
const char *strata_tap_label(strata_stream *s);

#ifdef __cplusplus
}
#endif
#endif
