/* strata event loop: drives many stacks from one thread.
 *
 * Each stack is watched with an interest (STRATA_POLL_IN / _OUT) and a
 * callback. The loop keeps the stream contract's optimistic rule:
 *  - after a callback, if the stack recorded a NEED code (strata_wants is
 *    not 0) the loop waits on the bottom descriptor for exactly those
 *    directions;
 *  - otherwise, if strata_poll reports the interest ready (bytes buffered
 *    inside a layer: TLS plaintext, a line already read) the callback runs
 *    again in the next round without waiting on anything;
 *  - otherwise it waits on the descriptor for the interest.
 * Callbacks are level-triggered: a callback that ignores readiness it asked
 * for is called again. A stream with no descriptor of its own (an HTTP/2
 * stream, a pipe end) is run when its layer calls strata_watch_wake, so a
 * multiplexed layer marks its streams ready when the connection read data:
 * no busy loop. Timers are one-shot, in milliseconds of a monotonic clock
 * that only the loop reads (layers own no clocks).
 * Watches and timers may be added and removed inside callbacks (a watch
 * removed outside a round is freed at once); running or freeing the loop
 * from inside a callback is not allowed (STRATA_ERR_STATE). A watch with
 * no descriptor and a non-zero interest is also re-checked with
 * strata_poll each round (no system call), so bytes written into a pipe
 * end are noticed without a wake.
 *
 * Backends: epoll(7) on Linux, poll(2) elsewhere; strata_loop_new takes
 * poll(2) on Linux too when the environment has STRATA_LOOP_POLL set (not
 * empty, not "0"), and strata_loop_new_backend asks for one. With epoll a
 * round costs what happens in it: the watches that are due, woken or
 * reported, the timers due (O(log n) each, cancel too), and the watches
 * looked at every round (no descriptor and an interest); an idle watch
 * costs nothing, and its descriptor's registration changes (a system call)
 * only when what it waits for changes. With poll(2) a round also walks
 * every watch. A round with nothing due blocks until a descriptor, a
 * signal or the nearest timer.
 *
 * Descriptors: a stack's descriptor is read when it is watched and after
 * each of its callbacks. Several watches may share one descriptor. Remove
 * a watch before closing its descriptor (before freeing its stream):
 * poll(2) reports a descriptor closed under a watch as STRATA_POLL_ERR,
 * but epoll forgets it silently and the watch never runs again. A
 * descriptor epoll cannot wait on (a regular file, /dev/null) is reported
 * ready for IN and OUT every round, as poll(2) does.
 */
#ifndef STRATA_LOOP_H
#define STRATA_LOOP_H

#include <strata/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_loop strata_loop;
typedef struct strata_watch strata_watch;

/* events: STRATA_POLL_* that were seen ready (IN/OUT from the descriptor or
 * from strata_poll; 0 for a wake or the first run). */
typedef void (*strata_watch_cb)(strata_loop *loop, strata_watch *w,
                                unsigned events, void *ud);
typedef void (*strata_timer_cb)(strata_loop *loop, void *ud);

/* A loop on the platform's best backend (see above for STRATA_LOOP_POLL).
 * NULL on allocation failure. */
strata_loop *strata_loop_new(const strata_allocator *alloc);
enum { STRATA_LOOP_ANY = 0, STRATA_LOOP_POLL = 1, STRATA_LOOP_EPOLL = 2 };
/* A loop on the asked backend; NULL if it is not built in (EPOLL off
 * Linux), on allocation failure or when epoll_create1 fails. ANY is
 * strata_loop_new. */
strata_loop *strata_loop_new_backend(const strata_allocator *alloc,
                                     int backend);
/* "epoll" or "poll". */
const char *strata_loop_backend(const strata_loop *loop);
/* Frees the loop and its watches (not the streams). */
void strata_loop_free(strata_loop *loop);

/* Watch a stack; the callback runs once in the next round so it can start
 * optimistic I/O. Returns NULL on allocation failure. */
strata_watch *strata_loop_watch(strata_loop *loop, strata_stream *s,
                                unsigned interest, strata_watch_cb cb,
                                void *ud);
/* Watch a bare descriptor (a listening socket) for STRATA_POLL_IN/_OUT. */
strata_watch *strata_loop_watch_fd(strata_loop *loop, int fd,
                                   unsigned interest, strata_watch_cb cb,
                                   void *ud);
void strata_watch_set_interest(strata_watch *w, unsigned interest);
/* Run this watch's callback in the next round without waiting. */
void strata_watch_wake(strata_watch *w);
/* Stop watching (the stream is not freed). Safe inside any callback. */
void strata_watch_remove(strata_watch *w);
strata_stream *strata_watch_stream(const strata_watch *w);
int strata_watch_fd(const strata_watch *w);
void *strata_watch_ud(const strata_watch *w);

/* One-shot timer after delay_ms; returns an id > 0, or 0 on failure. */
unsigned long strata_loop_timer(strata_loop *loop, uint64_t delay_ms,
                                strata_timer_cb cb, void *ud);
/* Cancel a pending timer; 0, or STRATA_ERR_ARG if it is not pending. */
int strata_loop_cancel(strata_loop *loop, unsigned long id);
/* The loop's clock (ms), read once per round. */
uint64_t strata_loop_now(const strata_loop *loop);

/* One round: wait at most timeout_ms (-1: until something happens) and run
 * what is ready. Returns the callbacks run, or STRATA_ERR_IO. */
int strata_loop_run_once(strata_loop *loop, int timeout_ms);
/* Run until strata_loop_stop, or until nothing can happen any more (no
 * timer, and no watch that waits on a descriptor or was woken).
 * Returns 0 or STRATA_ERR_IO. */
int strata_loop_run(strata_loop *loop);
void strata_loop_stop(strata_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
