/* The generic half of every stream: argument checks, NEED bookkeeping for
 * strata_wants(), defaults for the optional operations, allocation. */
#include "stream.h"

#include <string.h>

/* Memory of a stack given no allocator. The embedded profile has no heap
 * of its own: there is none, and a *_new reports it (NULL); layers live in
 * caller-provided storage (the *_init forms) or take the caller's
 * allocator. Elsewhere it is the C library's. */
#ifdef STRATA_EMBEDDED
static void *heap_alloc(size_t size)
{
    (void)size;
    return NULL;
}

static void *heap_realloc(void *p, size_t size)
{
    (void)p;
    (void)size;
    return NULL;
}

static void heap_free(void *p)
{
    (void)p;
}
#else
#include <stdlib.h>

static void *heap_alloc(size_t size)
{
    return malloc(size);
}

static void *heap_realloc(void *p, size_t size)
{
    return realloc(p, size);
}

static void heap_free(void *p)
{
    free(p);
}
#endif

void strata_stream_init(strata_stream *s, const strata_stream_ops *ops,
                        strata_stream *lower, const strata_allocator *alloc)
{
    s->ops = ops;
    s->lower = lower;
    s->alloc = alloc;
    s->recv_wants = 0;
    s->send_wants = 0;
    s->owns_lower = lower != NULL;
    s->heap = 0;
}

/* The WANT bit a NEED status asks for; any other result clears the record,
 * because the call made progress or failed for good. */
static unsigned char want_of(ssize_t r)
{
    if (r == STRATA_NEED_READ)
        return STRATA_WANT_READ;
    if (r == STRATA_NEED_WRITE)
        return STRATA_WANT_WRITE;
    return 0;
}

ssize_t strata_recv(strata_stream *s, void *buf, size_t len, unsigned *flags)
{
    unsigned dummy = 0;
    ssize_t r;

    if (s == NULL || (buf == NULL && len > 0))
        return STRATA_ERR_ARG;
    if (flags == NULL)
        flags = &dummy;
    *flags = 0;
    if (len == 0)
        return 0;
    r = s->ops->recv(s, buf, len, flags);
    s->recv_wants = want_of(r);
    return r;
}

ssize_t strata_sendv(strata_stream *s, const struct iovec *iov, int n,
                     unsigned flags)
{
    ssize_t r;
    int i;

    size_t total = 0;

    if (s == NULL || n < 0 || (iov == NULL && n > 0))
        return STRATA_ERR_ARG;
    /* One pass: small records cross this check at every layer. */
    for (i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;

        if ((iov[i].iov_base == NULL && l > 0) || l > (size_t)-2 - total)
            return STRATA_ERR_ARG;
        total += l;
    }
    r = s->ops->sendv(s, iov, n, flags);
    s->send_wants = want_of(r);
    return r;
}

ssize_t strata_send(strata_stream *s, const void *buf, size_t len,
                    unsigned flags)
{
    struct iovec iov;

    if (buf == NULL && len > 0)
        return STRATA_ERR_ARG;
    iov.iov_base = (void *)(uintptr_t)buf;
    iov.iov_len = len;
    return strata_sendv(s, &iov, len > 0 ? 1 : 0, flags);
}

ssize_t strata_read(strata_stream *s, void *buf, size_t len)
{
    return strata_recv(s, buf, len, NULL);
}

ssize_t strata_write(strata_stream *s, const void *buf, size_t len)
{
    return strata_send(s, buf, len, STRATA_MSG_END);
}

int strata_flush(strata_stream *s)
{
    int r;

    if (s == NULL)
        return STRATA_ERR_ARG;
    if (s->ops->flush != NULL)
        r = s->ops->flush(s);
    else if (s->lower != NULL)
        r = strata_flush(s->lower);
    else
        r = 0;
    s->send_wants = want_of(r);
    return r;
}

int strata_shutdown(strata_stream *s)
{
    int r;

    if (s == NULL)
        return STRATA_ERR_ARG;
    if (s->ops->shutdown != NULL)
        r = s->ops->shutdown(s);
    else if (s->lower != NULL)
        r = strata_shutdown(s->lower);
    else
        r = STRATA_ERR_UNSUPPORTED;
    s->send_wants = want_of(r);
    return r;
}

unsigned strata_poll(strata_stream *s, unsigned events)
{
    if (s == NULL)
        return STRATA_POLL_ERR;
    if (s->ops->poll != NULL)
        return s->ops->poll(s, events);
    if (s->lower != NULL)
        return strata_poll(s->lower, events);
    return 0;
}

unsigned strata_wants(strata_stream *s)
{
    unsigned w;

    if (s == NULL)
        return 0;
    w = (unsigned)s->recv_wants | s->send_wants;
    if (s->ops->wants != NULL)
        w |= s->ops->wants(s);
    return w;
}

int strata_fd(strata_stream *s)
{
    if (s == NULL)
        return -1;
    if (s->ops->fd != NULL)
        return s->ops->fd(s);
    if (s->lower != NULL)
        return strata_fd(s->lower);
    return -1;
}

void strata_free(strata_stream *s)
{
    strata_stream *lower;

    if (s == NULL)
        return;
    lower = s->owns_lower ? s->lower : NULL;
    if (s->ops->close != NULL)
        s->ops->close(s);
    if (s->heap)
        strata_dealloc(s->alloc, s);
    strata_free(lower);
}

const char *strata_name(const strata_stream *s)
{
    return s != NULL && s->ops->name != NULL ? s->ops->name : "?";
}

/* The embedded profile keeps the first words of each text only: flash is
 * scarcer there than explanations. */
#ifdef STRATA_EMBEDDED
#define TEXT(brief, more) brief
#else
#define TEXT(brief, more) brief more
#endif

/* Indexed by -status; the statuses between EOF and ERR_PROTO are unused. */
static const char *const status_text[] = {
    "success",
    TEXT("need read", ": wait until the transport is readable"),
    TEXT("need write", ": wait until the transport is writable"),
    "end of stream",
    NULL, NULL, NULL, NULL, NULL, NULL,
    TEXT("protocol error", " (or stream truncated mid-unit)"),
    TEXT("too big", ": a record, line or message over its size limit"),
    "transport I/O error",
    "TLS error",
    "out of memory",
    "stream closed or reset",
    "call not valid in this state",
    "invalid argument",
    "timed out",
    TEXT("not supported", " by this layer"),
    TEXT("connection cut", ": the transport ended without the peer's close"),
    TEXT("gRPC call failed", ": it ended with a status other than OK"),
};

_Static_assert(sizeof status_text / sizeof *status_text ==
                   1 - STRATA_ERR_GRPC,
               "a status without its text in status_text");

const char *strata_strerror(int status)
{
    const char *t = NULL;

    if (status >= 0)
        return status_text[0];
    if (status >= -(int)(sizeof status_text / sizeof *status_text) + 1)
        t = status_text[-status];
    return t != NULL ? t : "unknown status";
}

void *strata_alloc(const strata_allocator *a, size_t size)
{
    if (a != NULL && a->alloc != NULL)
        return a->alloc(a->ud, size);
    return heap_alloc(size);
}

void *strata_realloc(const strata_allocator *a, void *p, size_t size)
{
    if (a != NULL && a->realloc != NULL)
        return a->realloc(a->ud, p, size);
    return heap_realloc(p, size);
}

void strata_dealloc(const strata_allocator *a, void *p)
{
    if (p == NULL)
        return;
    if (a != NULL && a->free != NULL)
        a->free(a->ud, p);
    else
        heap_free(p);
}

size_t strata_iov_len(const struct iovec *iov, int n)
{
    size_t total = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (iov[i].iov_len > (size_t)-1 - 1 - total)
            return (size_t)-1;
        total += iov[i].iov_len;
    }
    return total;
}

size_t strata_iov_copy(void *dst, const struct iovec *iov, int n)
{
    uint8_t *p = dst;
    int i;

    for (i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    return (size_t)(p - (uint8_t *)dst);
}
