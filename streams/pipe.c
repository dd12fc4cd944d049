/* The pipe pair: two bounded rings shared by two ends, plus a seeded
 * schedule that makes the transport as awkward as a real one can be. */
#include "pipe.h"

#include <string.h>

typedef struct ring {
    uint8_t *buf;
    size_t cap, head, len;
    int closed;  /* the writing end shut down or was freed */
} ring;

typedef struct pipe_shared {
    ring dir[2];       /* dir[i]: bytes end i receives */
    int ends;          /* ends still alive */
    const strata_allocator *alloc;
} pipe_shared;

typedef struct pipe_end {
    strata_stream base;
    pipe_shared *sh;
    int side;
    int shut;          /* we called strata_shutdown */
    size_t max_chunk;
    unsigned need_percent;
    uint64_t rng;
} pipe_end;

static uint64_t next_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* An injected NEED code, either direction: the layers above must cope with
 * a recv that waits for writability as TLS can make them. */
static int injected(pipe_end *e)
{
    if (e->need_percent == 0 || next_rand(&e->rng) % 100 >= e->need_percent)
        return 0;
    return next_rand(&e->rng) & 1 ? STRATA_NEED_READ : STRATA_NEED_WRITE;
}

static size_t chunk(pipe_end *e, size_t len)
{
    if (e->max_chunk == 0 || len <= 1)
        return len;
    size_t most = len < e->max_chunk ? len : e->max_chunk;
    return 1 + (size_t)(next_rand(&e->rng) % most);
}

static size_t ring_read(ring *r, uint8_t *out, size_t len)
{
    size_t n = len < r->len ? len : r->len;
    size_t first = r->cap - r->head < n ? r->cap - r->head : n;

    memcpy(out, r->buf + r->head, first);
    memcpy(out + first, r->buf, n - first);
    r->head = (r->head + n) % r->cap;
    r->len -= n;
    return n;
}

static size_t ring_write(ring *r, const uint8_t *in, size_t len)
{
    size_t room = r->cap - r->len;
    size_t n = len < room ? len : room;
    size_t tail = (r->head + r->len) % r->cap;
    size_t first = r->cap - tail < n ? r->cap - tail : n;

    if (n == 0) /* an empty iovec may have a NULL base */
        return 0;
    memcpy(r->buf + tail, in, first);
    memcpy(r->buf, in + first, n - first);
    r->len += n;
    return n;
}

static ssize_t p_recv(strata_stream *s, void *buf, size_t len,
                      unsigned *flags)
{
    pipe_end *e = (pipe_end *)s;
    ring *r = &e->sh->dir[e->side];
    int need = injected(e);

    (void)flags;
    if (need)
        return need;
    if (r->len == 0)
        return r->closed ? STRATA_EOF : STRATA_NEED_READ;
    return (ssize_t)ring_read(r, buf, chunk(e, len));
}

static ssize_t p_sendv(strata_stream *s, const struct iovec *iov, int n,
                       unsigned flags)
{
    pipe_end *e = (pipe_end *)s;
    ring *r = &e->sh->dir[!e->side];
    size_t total = strata_iov_len(iov, n), budget, moved = 0;
    int need, i;

    (void)flags;
    if (e->shut)
        return STRATA_ERR_STATE;
    if (e->sh->ends < 2)
        return STRATA_ERR_CLOSED;
    if (total == 0)
        return 0;
    need = injected(e);
    if (need)
        return need;
    if (r->len == r->cap)
        return STRATA_NEED_WRITE;
    budget = chunk(e, total);
    for (i = 0; i < n && moved < budget; i++) {
        size_t want = iov[i].iov_len < budget - moved ? iov[i].iov_len
                                                      : budget - moved;
        size_t got = ring_write(r, iov[i].iov_base, want);

        moved += got;
        if (got < want)
            break;
    }
    return (ssize_t)moved;
}

static int p_shutdown(strata_stream *s)
{
    pipe_end *e = (pipe_end *)s;

    e->shut = 1;
    e->sh->dir[!e->side].closed = 1;
    return 0;
}

static unsigned p_poll(strata_stream *s, unsigned events)
{
    pipe_end *e = (pipe_end *)s;
    ring *in = &e->sh->dir[e->side];
    ring *out = &e->sh->dir[!e->side];
    unsigned ready = 0;

    if (in->len > 0 || in->closed)
        ready |= events & STRATA_POLL_IN;
    if (in->len == 0 && in->closed)
        ready |= STRATA_POLL_HUP;
    if (!e->shut && out->len < out->cap && e->sh->ends == 2)
        ready |= events & STRATA_POLL_OUT;
    return ready;
}

static int p_fd(strata_stream *s)
{
    (void)s;
    return -1;
}

static void p_close(strata_stream *s)
{
    pipe_end *e = (pipe_end *)s;
    pipe_shared *sh = e->sh;

    sh->dir[!e->side].closed = 1;
    if (--sh->ends > 0)
        return;
    strata_dealloc(sh->alloc, sh->dir[0].buf);
    strata_dealloc(sh->alloc, sh->dir[1].buf);
    strata_dealloc(sh->alloc, sh);
}

static const strata_stream_ops pipe_ops = {
    "pipe", p_recv, p_sendv, NULL, p_shutdown, p_poll, NULL, p_fd, p_close,
};

static pipe_end *new_end(pipe_shared *sh, int side, const strata_pipe_opts *o,
                         const strata_allocator *alloc)
{
    pipe_end *e = strata_alloc(alloc, sizeof *e);

    if (e == NULL)
        return NULL;
    strata_stream_init(&e->base, &pipe_ops, NULL, alloc);
    e->base.heap = 1;
    e->sh = sh;
    e->side = side;
    e->shut = 0;
    e->max_chunk = o->max_chunk;
    e->need_percent = o->need_percent > 100 ? 100 : o->need_percent;
    e->rng = o->seed ^ (side ? 0x5bd1e995u : 0x27d4eb2fu);
    return e;
}

int strata_pipe_pair(strata_stream **a, strata_stream **b,
                     const strata_pipe_opts *opts,
                     const strata_allocator *alloc)
{
    strata_pipe_opts o = {0, 0, 0, 0};
    pipe_shared *sh;
    pipe_end *ea, *eb;

    if (a == NULL || b == NULL)
        return STRATA_ERR_ARG;
    if (opts != NULL)
        o = *opts;
    if (o.capacity == 0)
        o.capacity = 64 * 1024;
    sh = strata_alloc(alloc, sizeof *sh);
    if (sh == NULL)
        return STRATA_ERR_NOMEM;
    memset(sh, 0, sizeof *sh);
    sh->alloc = alloc;
    sh->ends = 2;
    sh->dir[0].cap = sh->dir[1].cap = o.capacity;
    sh->dir[0].buf = strata_alloc(alloc, o.capacity);
    sh->dir[1].buf = strata_alloc(alloc, o.capacity);
    ea = new_end(sh, 0, &o, alloc);
    eb = new_end(sh, 1, &o, alloc);
    if (sh->dir[0].buf == NULL || sh->dir[1].buf == NULL || ea == NULL ||
        eb == NULL) {
        strata_dealloc(alloc, sh->dir[0].buf);
        strata_dealloc(alloc, sh->dir[1].buf);
        strata_dealloc(alloc, ea);
        strata_dealloc(alloc, eb);
        strata_dealloc(alloc, sh);
        return STRATA_ERR_NOMEM;
    }
    *a = &ea->base;
    *b = &eb->base;
    return 0;
}

size_t strata_pipe_pending(strata_stream *end)
{
    pipe_end *e = (pipe_end *)end;

    return end != NULL && end->ops == &pipe_ops ? e->sh->dir[e->side].len : 0;
}
