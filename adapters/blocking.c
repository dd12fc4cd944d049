/* Blocking helpers over the non-blocking stream contract: try first, wait
 * on the bottom descriptor only after a NEED code, and keep one deadline
 * for the whole call so a slow peer cannot stretch it wait by wait. */
#include "blocking.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

#define NO_DEADLINE UINT64_MAX

uint64_t strata_now_ms(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail on the systems we target; should it,
     * a zero clock makes every deadline expire instead of never. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t deadline_of(int timeout_ms)
{
    if (timeout_ms < 0)
        return NO_DEADLINE;
    return strata_now_ms() + (uint64_t)timeout_ms;
}

/* Milliseconds left for poll(2): -1 forever, 0 when the deadline passed. */
static int remaining(uint64_t deadline)
{
    uint64_t now;

    if (deadline == NO_DEADLINE)
        return -1;
    now = strata_now_ms();
    if (now >= deadline)
        return 0;
    if (deadline - now > (uint64_t)INT_MAX)
        return INT_MAX;
    return (int)(deadline - now);
}

static short poll_events_of(unsigned wants)
{
    short ev = 0;

    if (wants & STRATA_WANT_READ)
        ev |= POLLIN;
    if (wants & STRATA_WANT_WRITE)
        ev |= POLLOUT;
    return ev;
}

/* Poll one descriptor until it is ready or the deadline passes. POLLERR and
 * POLLHUP count as ready: the retried call is what reports the failure. */
static int wait_fd(int fd, unsigned wants, uint64_t deadline)
{
    struct pollfd p;
    int r;

    p.fd = fd;
    p.events = poll_events_of(wants);
    for (;;) {
        p.revents = 0;
        r = poll(&p, 1, remaining(deadline));
        if (r > 0)
            return (p.revents & POLLNVAL) ? STRATA_ERR_IO : 0;
        if (r == 0)
            return STRATA_ERR_TIMEOUT;
        if (errno != EINTR)
            return STRATA_ERR_IO;
        /* A signal: loop, and remaining() shortens the next wait. */
    }
}

/* Wait for `wants` on the stack's descriptor. Without one (the pipe pair)
 * nothing can be waited on: give another thread a chance, then let the
 * caller retry, as long as the deadline allows. */
static int wait_until(strata_stream *s, unsigned wants, uint64_t deadline)
{
    int fd = strata_fd(s);

    if (fd < 0) {
        if (deadline != NO_DEADLINE && strata_now_ms() >= deadline)
            return STRATA_ERR_TIMEOUT;
        sched_yield();
        return 0;
    }
    if (wants == 0)
        wants = STRATA_WANT_READ;
    return wait_fd(fd, wants, deadline);
}

static unsigned want_of(ssize_t r)
{
    if (r == STRATA_NEED_READ)
        return STRATA_WANT_READ;
    if (r == STRATA_NEED_WRITE)
        return STRATA_WANT_WRITE;
    return 0;
}

static int is_need(ssize_t r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* What to wait for after the call we are retrying returned NEED code r:
 * its own direction plus what the layers hold (strata_wants' extras). The
 * other direction's record is left out on purpose: it belongs to a call
 * nobody is retrying now, and waiting for it would spin while, say, the
 * peer's unread bytes keep the socket readable during a blocked write. */
static unsigned retry_wants(strata_stream *s, ssize_t r)
{
    unsigned w = want_of(r);

    if (s->ops->wants != NULL)
        w |= s->ops->wants(s);
    return w;
}

int strata_wait(strata_stream *s, unsigned wants, int timeout_ms)
{
    int fd;

    if (s == NULL)
        return STRATA_ERR_ARG;
    fd = strata_fd(s);
    if (fd < 0)
        return 0;
    if (wants == 0)
        wants = strata_wants(s);
    if (wants == 0)
        wants = STRATA_WANT_READ;
    return wait_fd(fd, wants, deadline_of(timeout_ms));
}

ssize_t strata_read_full(strata_stream *s, void *buf, size_t len,
                         int timeout_ms, size_t *got)
{
    uint64_t deadline = deadline_of(timeout_ms);
    size_t off = 0;
    ssize_t r = 0;

    if (s == NULL || (buf == NULL && len > 0))
        return STRATA_ERR_ARG;
    while (off < len) {
        r = strata_read(s, (char *)buf + off, len - off);
        if (r > 0)
            off += (size_t)r;
        else if (r == 0)
            continue; /* an empty message: no bytes, keep reading */
        else if (is_need(r))
            r = wait_until(s, retry_wants(s, r), deadline);
        if (r < 0)
            break;
    }
    if (got != NULL)
        *got = off;
    if (off == len)
        return (ssize_t)len;
    if (r == STRATA_EOF && off > 0)
        return STRATA_ERR_PROTO; /* truncated: some bytes, then the end */
    return r;
}

/* Retry a flush until the layers hold nothing more for sending. */
static int flush_all(strata_stream *s, uint64_t deadline)
{
    int r;

    for (;;) {
        r = strata_flush(s);
        if (r == 0)
            return 0;
        if (!is_need(r))
            return r > 0 ? 0 : r;
        r = wait_until(s, retry_wants(s, r), deadline);
        if (r < 0)
            return r;
    }
}

ssize_t strata_write_all(strata_stream *s, const void *buf, size_t len,
                         unsigned flags, int timeout_ms)
{
    uint64_t deadline = deadline_of(timeout_ms);
    size_t off = 0;
    ssize_t r;
    int r2;

    if (s == NULL || (buf == NULL && len > 0))
        return STRATA_ERR_ARG;
    /* do-while: a zero-length message (len 0, MSG_END) is one send too. */
    do {
        /* buf may be NULL for an empty message: no arithmetic on it. */
        r = strata_send(s, len > 0 ? (const char *)buf + off : buf,
                        len - off, flags);
        if (r > 0) {
            off += (size_t)r;
        } else if (is_need(r)) {
            r = wait_until(s, retry_wants(s, r), deadline);
            if (r < 0)
                return r;
        } else if (r == 0 && len > 0) {
            /* No progress and no NEED code breaks the contract; retrying
             * would spin forever. */
            return STRATA_ERR_IO;
        } else if (r < 0) {
            return r;
        }
    } while (off < len);
    r2 = flush_all(s, deadline);
    return r2 < 0 ? r2 : (ssize_t)len;
}

ssize_t strata_recv_msg(strata_stream *s, void *buf, size_t cap,
                        unsigned *flags, int timeout_ms)
{
    uint64_t deadline = deadline_of(timeout_ms);
    unsigned all = 0, f = 0;
    size_t off = 0;
    ssize_t r;

    if (flags != NULL)
        *flags = 0;
    /* With no room, a recv cannot even tell an empty message from a long
     * one (a zero-length recv never reaches the layer). */
    if (s == NULL || buf == NULL || cap == 0)
        return STRATA_ERR_ARG;
    for (;;) {
        if (off == cap)
            return STRATA_ERR_TOO_BIG;
        r = strata_recv(s, (char *)buf + off, cap - off, &f);
        if (r >= 0) {
            off += (size_t)r;
            all |= f;
            if (f & STRATA_MSG_END)
                break;
            continue;
        }
        if (!is_need(r))
            return (r == STRATA_EOF && off > 0) ? STRATA_ERR_PROTO : r;
        r = wait_until(s, retry_wants(s, r), deadline);
        if (r < 0)
            return r;
    }
    if (flags != NULL)
        *flags = all;
    return (ssize_t)off;
}
