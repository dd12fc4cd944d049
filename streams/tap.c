/* The tap layer: counts and reports, changes nothing (tap.h). */
#include "tap.h"

#include <string.h>

static void count(strata_tap *t, strata_tap_counts *c,
                  enum strata_tap_dir dir, ssize_t r, unsigned flags)
{
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return;
    if (r == 0 && !(flags & STRATA_MSG_END))
        return;     /* a zero-length request moved nothing */
    if (r > 0)
        c->bytes += (uint64_t)r;
    if (r >= 0 && (flags & STRATA_MSG_END))
        c->messages++;
    c->calls++;
    if (t->cb != NULL)
        t->cb(t->ud, t->label, dir, r, r >= 0 ? flags : 0);
}

static ssize_t tap_recv(strata_stream *s, void *buf, size_t len,
                        unsigned *flags)
{
    strata_tap *t = (strata_tap *)s;
    ssize_t r = strata_recv(s->lower, buf, len, flags);

    count(t, &t->in, STRATA_TAP_RECV, r, *flags);
    return r;
}

static ssize_t tap_sendv(strata_stream *s, const struct iovec *iov, int n,
                         unsigned flags)
{
    strata_tap *t = (strata_tap *)s;
    ssize_t r = strata_sendv(s->lower, iov, n, flags);
    /* a send ends its message only when it moved all the bytes */
    unsigned f = r >= 0 && (size_t)r == strata_iov_len(iov, n) ? flags
                                                               : 0;

    count(t, &t->out, STRATA_TAP_SEND, r, f);
    return r;
}

static unsigned tap_wants(strata_stream *s)
{
    return strata_wants(s->lower);
}

static const strata_stream_ops tap_ops = {
    "tap", tap_recv, tap_sendv, NULL, NULL, NULL, tap_wants, NULL, NULL,
};

void strata_tap_init(strata_tap *t, strata_stream *lower, const char *label,
                     strata_tap_cb cb, void *ud)
{
    if (t == NULL)
        return;
    memset(t, 0, sizeof *t);
    strata_stream_init(&t->base, &tap_ops, lower, NULL);
    t->base.owns_lower = 0;
    t->label = label;
    t->cb = cb;
    t->ud = ud;
}

strata_stream *strata_tap_new(strata_stream *lower, const char *label,
                              strata_tap_cb cb, void *ud,
                              const strata_allocator *alloc)
{
    strata_tap *t = strata_alloc(alloc, sizeof *t);

    if (t == NULL) {
        strata_free(lower);
        return NULL;
    }
    strata_tap_init(t, lower, label, cb, ud);
    t->base.alloc = alloc;
    t->base.owns_lower = lower != NULL;
    t->base.heap = 1;
    return &t->base;
}

static strata_tap *as_tap(strata_stream *s)
{
    return s != NULL && s->ops == &tap_ops ? (strata_tap *)s : NULL;
}

const strata_tap_counts *strata_tap_in(strata_stream *s)
{
    strata_tap *t = as_tap(s);

    return t != NULL ? &t->in : NULL;
}

const strata_tap_counts *strata_tap_out(strata_stream *s)
{
    strata_tap *t = as_tap(s);

    return t != NULL ? &t->out : NULL;
}

const char *strata_tap_label(strata_stream *s)
{
    strata_tap *t = as_tap(s);

    return t != NULL ? t->label : NULL;
}
