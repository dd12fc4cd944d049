/* strata blocking helpers: wait on a stack's bottom descriptor and finish a
 * whole read or write, for programs that do not need an event loop.
 *
 * They keep the optimistic rule: each helper tries the operation first and
 * waits only after a NEED code, for the direction that code names plus the
 * layers' own wants (not a stale record of the other direction: a blocked
 * write must not spin because unread input keeps the socket readable).
 * timeout_ms bounds the whole call (not each wait); -1 waits forever.
 * A stack with no descriptor (the pipe pair) is never waited on: the helper
 * retries at once, so its peer must be driven elsewhere (another thread or
 * a step between retries).
 */
#ifndef STRATA_BLOCKING_H
#define STRATA_BLOCKING_H

#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wait until the bottom descriptor is ready for `wants` (STRATA_WANT_*;
 * 0: strata_wants(s), or readable if that is 0 too). Returns 0 when ready,
 * STRATA_ERR_TIMEOUT, or STRATA_ERR_IO. Returns 0 at once without a
 * descriptor. */
int strata_wait(strata_stream *s, unsigned wants, int timeout_ms);

/* Read exactly len bytes. Returns len; STRATA_EOF if the stream ended
 * before the first byte; STRATA_ERR_PROTO if it ended after some; or another
 * status. How many bytes arrived goes to *got (when not NULL) on every
 * return, a timeout included. */
ssize_t strata_read_full(strata_stream *s, void *buf, size_t len,
                         int timeout_ms, size_t *got);

/* Send all len bytes with `flags` (continuing partial sends as the contract
 * says), then flush. Returns len or a status. */
ssize_t strata_write_all(strata_stream *s, const void *buf, size_t len,
                         unsigned flags, int timeout_ms);

/* Receive one whole message (up to STRATA_MSG_END) into buf. Returns its
 * length and its flags in *flags; STRATA_ERR_TOO_BIG if it does not fit in
 * cap (the stream is then mid-message: its bytes so far are in buf);
 * STRATA_ERR_ARG for cap 0. A timeout mid-message also leaves the stream
 * mid-message: use it for protocols where that ends the conversation. */
ssize_t strata_recv_msg(strata_stream *s, void *buf, size_t cap,
                        unsigned *flags, int timeout_ms);

/* Monotonic milliseconds, for deadlines in callers and the event loop. */
uint64_t strata_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
