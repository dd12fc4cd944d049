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
_Static_assert(STRATA_WANT_READ == -STRATA_NEED_READ &&
                   STRATA_WANT_WRITE == -STRATA_NEED_WRITE,
               "want_of maps a NEED status to its WANT bit by negation");

static unsigned char want_of(ssize_t r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ? (unsigned char)-r
                                                           : 0;
}

ssize_t strata_recv(strata_stream *s, void *buf, size_t len, unsigned *flags)
{
    unsigned dummy;
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

    /* strata_sendv refuses a NULL buf with len > 0 */
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

/* flush (shut 0) and shutdown (shut 1): the layer's own operation, else
 * the lower stream's; at the bottom of a stack without one, flushing has
 * nothing to do and shutting down is not offered. */
static int pass_down(strata_stream *s, int shut)
{
    int (*op)(strata_stream *);
    int r;

    if (s == NULL)
        return STRATA_ERR_ARG;
    op = shut ? s->ops->shutdown : s->ops->flush;
    if (op != NULL)
        r = op(s);
    else if (s->lower != NULL)
        r = pass_down(s->lower, shut);
    else
        r = shut ? STRATA_ERR_UNSUPPORTED : 0;
    s->send_wants = want_of(r);
    return r;
}

int strata_flush(strata_stream *s)
{
    return pass_down(s, 0);
}

int strata_shutdown(strata_stream *s)
{
    return pass_down(s, 1);
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

/* The texts, NUL-separated and indexed by -status (an empty text: a gap
 * between EOF and ERR_PROTO); packed, because a table of pointers would
 * cost flash as large as the short texts. The embedded profile has a word
 * or two per status: flash is scarcer there than explanations. */
#ifdef STRATA_EMBEDDED
#define TEXT(brief, full) brief "\0"
#else
#define TEXT(brief, full) full "\0"
#endif

static const char status_text[] =
    TEXT("ok", "success")
    TEXT("need read", "need read: wait until the transport is readable")
    TEXT("need write", "need write: wait until the transport is writable")
    TEXT("eof", "end of stream")
    "\0\0\0\0\0\0"
    TEXT("bad protocol", "protocol error (or stream truncated mid-unit)")
    TEXT("too big", "too big: a record, line or message over its size limit")
    TEXT("I/O error", "transport I/O error")
    TEXT("TLS error", "TLS error")
    TEXT("no memory", "out of memory")
    TEXT("closed", "stream closed or reset")
    TEXT("bad state", "call not valid in this state")
    TEXT("bad argument", "invalid argument")
    TEXT("timed out", "timed out")
    TEXT("unsupported", "not supported by this layer")
    TEXT("cut", "connection cut: the transport ended without the peer's close")
    TEXT("gRPC failed", "gRPC call failed: it ended with a status other than OK")
    TEXT("unknown", "unknown status");

/* The last text answers for every status without one of its own. */
#define UNKNOWN_AT (1 - STRATA_ERR_GRPC)

const char *strata_strerror(int status)
{
    const char *t = status_text;
    int i = status < STRATA_ERR_GRPC ? UNKNOWN_AT : status > 0 ? 0 : -status;

    while (i-- > 0)
        while (*t++ != '\0')
            ;
    return *t != '\0' ? t : strata_strerror(STRATA_ERR_GRPC - 1);
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

    for (; n > 0; n--, iov++) {
        if (iov->iov_len > (size_t)-1 - 1 - total)
            return (size_t)-1;
        total += iov->iov_len;
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
