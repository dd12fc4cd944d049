/* strata h2: the connection and its streams over nghttp2 (protos/h2.h).
 *
 * Receive: drive_input reads what the lower stream has and feeds nghttp2;
 * DATA lands in the stream's ring, which is as large as what the stream's
 * window lets the peer send, and the window reopens only as strata_recv
 * consumes (nghttp2_session_consume; automatic WINDOW_UPDATE is off).
 *
 * Send: frames go out through send_cb (nghttp2's buffers) and DATA through
 * send_data_cb straight from the caller's buffer (NO_COPY): the data
 * source reads only while the stream's strata_send is on the stack, and
 * defers otherwise. What the lower stream does not take at once is copied
 * into the connection's output buffer and counts as sent, so nghttp2 never
 * has to come back to a caller's buffer after the call returned. While
 * that buffer holds bytes, no new DATA is framed (the source defers, and a
 * DATA frame written behind it pauses the send loop): it holds at most
 * one DATA frame plus control frames, within output_max.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_internal.h"

#define H2_IN_CHUNK (16u * 1024u)
#define H2_OUT_WRITES 16
#define H2_GATHER 8             /* large DATA frames per write */
#define H2_DEFAULT_WINDOW (64u * 1024u)
#define H2_DEFAULT_STREAMS 100u
#define H2_DEFAULT_HEADER_LIST (64u * 1024u)
#define H2_MAX_WINDOW 0x7fffffffu

typedef struct h2_stream h2_stream;

struct strata_h2 {
    nghttp2_session *ng;
    strata_stream *lower;
    const strata_allocator *alloc;
    nghttp2_mem mem;
    strata_h2_opts o;
    int refs;                   /* the application's and its streams' */
    int app_freed;
    uint8_t *in;                /* one read of the lower stream */
    uint8_t *out;               /* bytes the lower stream has not taken */
    size_t out_off, out_len, out_cap;
    size_t ends[H2_OUT_WRITES]; /* where each write ends in out */
    int n_ends;
    int partial;                /* the first message has begun going out */
    int starved;                /* a stream call found no room: list the
                                   senders once the buffer drains */
    /* large DATA frames framed by this flush_session, not yet written:
     * their headers (copied) and the caller's payloads, one write */
    int lg_n;
    size_t lg_bytes;
    struct iovec lg_v[2 * H2_GATHER];
    uint8_t lg_hdr[H2_GATHER][9];
    int corked;                 /* pushes wait for strata_h2_cork(h, 0) */
    h2_stream *accept_head, *accept_tail;  /* new, not yet accepted */
    h2_stream *ready_head, *ready_tail;    /* changed since listed */
    h2_stream *all;             /* every stream object alive */
    int failed;                 /* sticky status of the connection */
    uint32_t error_code;
    int settings_seen;          /* the peer's first SETTINGS came */
    int settings_acked;         /* the peer acknowledged ours */
    int lower_eof;
    int goaway_sent;
    int ended;                  /* nghttp2 wants neither read nor write */
    unsigned long pings;
    size_t open;
};

struct h2_stream {
    strata_stream base;
    strata_h2 *h;
    h2_stream *next_all, *prev_all;
    h2_stream *next_accept, *next_ready;
    int32_t id;
    void *user;                 /* the application's pointer */
    int owned;                  /* the application holds it */
    int in_ready, in_accept;
    h2_block head, trailers;
    int status;                 /* client: :status of the response */
    int head_too_big;
    uint8_t *rx;                /* receive ring */
    size_t rx_cap, rx_start, rx_len;
    int rx_eof;
    int closed;                 /* nghttp2 closed it */
    long reset_code;            /* RST_STREAM or connection code, or -1 */
    int has_body;               /* a data source was submitted */
    const uint8_t *tx_buf;      /* the caller's bytes during strata_send */
    size_t tx_len, tx_off;
    int tx_eof;                 /* shutdown asked: END_STREAM when drained */
    int tx_last;                /* these bytes end the body (SEND_END) */
    int tx_done;                /* END_STREAM framed (or trailers) */
    nghttp2_nv *trailer_nva;    /* trailers to send at the end */
    int trailer_n;
};

static const strata_stream_ops h2_stream_ops;

/* ---- memory --------------------------------------------------------- */

static void *mem_malloc(size_t n, void *ud)
{
    return strata_alloc(ud, n);
}

static void mem_free(void *p, void *ud)
{
    strata_dealloc(ud, p);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    void *p;

    if (size && n > (size_t)-1 / size)
        return NULL;
    p = strata_alloc(ud, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    return strata_realloc(ud, p, n);
}

/* ---- the output buffer ----------------------------------------------
 * Frames gather here and go down together: one write per push, not one
 * per frame. A push happens when a stream call ends (unless the
 * connection is corked), when strata_h2_drive or a flush runs, or when
 * H2_PUSH_AT bytes wait. A DATA payload over H2_COPY_MAX is not copied: it
 * goes down in one gathered write behind what waits. Over a lower stream
 * with messages each push is one message, and a message partly sent is
 * continued with its rest alone: `ends` marks where each message ends and
 * `partial` says the first one has begun. */

#define H2_PUSH_AT (16u * 1024u)
#define H2_DATA_MAX 16384u
#define H2_COPY_MAX 2048u

static int out_pending(const strata_h2 *h)
{
    return h->out_off < h->out_len;
}

static size_t out_size(const strata_h2 *h)
{
    return h->out_len - h->out_off;
}

/* Room for n more bytes, within output_max; -1 when there is none. */
static int out_room(strata_h2 *h, size_t n)
{
    size_t need, cap;
    uint8_t *p;
    int i;

    if (h->out_off > 0) {
        memmove(h->out, h->out + h->out_off, out_size(h));
        for (i = 0; i < h->n_ends; i++)
            h->ends[i] -= h->out_off;
        h->out_len -= h->out_off;
        h->out_off = 0;
    }
    need = h->out_len + n;
    if (need <= h->out_cap)
        return 0;
    if (need > h->o.output_max)
        return -1;
    cap = h->out_cap ? h->out_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > h->o.output_max)
        cap = h->o.output_max;
    p = strata_realloc(h->alloc, h->out, cap);
    if (!p)
        return -1;
    h->out = p;
    h->out_cap = cap;
    return 0;
}

/* Copy the iovec's bytes from `skip` on. They join the last message
 * unless that one has begun going out (then they start a new one) or
 * `own` asks for a message of their own. -1 when there is no room. */
static int out_append(strata_h2 *h, const struct iovec *iov, int n,
                      size_t skip, int own)
{
    size_t total = strata_iov_len(iov, n) - skip;
    int i;

    if (out_room(h, total) != 0)
        return -1;
    for (i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;

        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(h->out + h->out_len, (const uint8_t *)iov[i].iov_base + skip,
               len - skip);
        h->out_len += len - skip;
        skip = 0;
    }
    if (h->n_ends == 0 || own || (h->n_ends == 1 && h->partial)) {
        if (h->n_ends == H2_OUT_WRITES) {
            h->out_len -= strata_iov_len(iov, n) - skip;
            return -1;
        }
        h->ends[h->n_ends++] = h->out_len;
    }
    else
        h->ends[h->n_ends - 1] = h->out_len;
    return 0;
}

static void out_reset(strata_h2 *h)
{
    h->out_off = h->out_len = 0;
    h->n_ends = 0;
    h->partial = 0;
}

static void mark_senders(strata_h2 *h);

/* 0 once empty, else the lower's NEED code or its error (kept). */
static int push_out(strata_h2 *h)
{
    while (out_pending(h)) {
        size_t end = h->ends[0];
        ssize_t r = strata_send(h->lower, h->out + h->out_off,
                                end - h->out_off, STRATA_MSG_END);

        if (r > 0) {
            h->out_off += (size_t)r;
            h->partial = h->out_off < end;
            if (!h->partial) {
                h->n_ends--;
                memmove(h->ends, h->ends + 1,
                        (size_t)h->n_ends * sizeof h->ends[0]);
            }
            continue;
        }
        if (r == 0 || r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            return r == 0 ? STRATA_NEED_WRITE : (int)r;
        return h->failed = (int)r;
    }
    out_reset(h);
    if (h->starved) {   /* whoever pushed, the senders hear of the room */
        h->starved = 0;
        mark_senders(h);
    }
    return 0;
}

/* A push when a call ends: not while corked, unless much waits. */
static void push_soon(strata_h2 *h)
{
    if (!h->failed && (!h->corked || out_size(h) >= H2_PUSH_AT))
        (void)push_out(h);
}

static int flush_large(strata_h2 *h);

/* Small bytes: into the buffer; -1 when there is no room even after a
 * push. */
static int out_small(strata_h2 *h, const struct iovec *iov, int n)
{
    int r;

    if (h->lg_n && (r = flush_large(h)) != 0)   /* keep the order */
        return r;
    if (out_append(h, iov, n, 0, 0) == 0)
        return 0;
    if (push_out(h) < STRATA_EOF)
        return h->failed;
    return out_append(h, iov, n, 0, 0);
}

/* A large DATA frame: one gathered write of what waits, the frame header
 * and the caller's payload; what the lower does not take is copied. 0,
 * -1 (no room), or the lower's error. */
static int out_large(strata_h2 *h, const struct iovec *frame, int nv)
{
    struct iovec v[1 + 2 * H2_GATHER];
    size_t pend, total;
    ssize_t r;
    int k = 0, i;

    if (h->partial && push_out(h) < STRATA_EOF)
        return h->failed;
    if (h->partial)     /* the lower is full: the frame waits, copied */
        return out_append(h, frame, nv, 0, 1);
    pend = out_size(h);
    if (pend) {
        v[k].iov_base = h->out + h->out_off;
        v[k++].iov_len = pend;
    }
    for (i = 0; i < nv; i++)
        v[k++] = frame[i];
    total = pend + strata_iov_len(frame, nv);
    r = strata_sendv(h->lower, v, k, STRATA_MSG_END);
    if (r == (ssize_t)total) {
        out_reset(h);
        return 0;
    }
    if (r == 0 || r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        r = 0;
    else if (r < 0)
        return h->failed = (int)r;
    if ((size_t)r < pend) {
        /* one message was begun: its rest is the buffer and the frame */
        h->out_off += (size_t)r;
        h->partial = r > 0;
        if (out_append(h, frame, nv, 0, 0) != 0)
            return -1;
        h->ends[h->n_ends - 1] = h->out_len;
        return 0;
    }
    out_reset(h);
    if (out_append(h, frame, nv, (size_t)r - pend, 0) != 0)
        return -1;
    h->partial = 1;
    return 0;
}

/* The large frames gathered: one write behind what waits. */
static int flush_large(strata_h2 *h)
{
    int n = h->lg_n;

    if (n == 0)
        return 0;
    h->lg_n = 0;
    h->lg_bytes = 0;
    return out_large(h, h->lg_v, 2 * n);
}

/* ---- streams: lists and lifetime ------------------------------------ */

static h2_stream *stream_of(strata_h2 *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

static void mark_ready(h2_stream *st)
{
    strata_h2 *h = st->h;

    if (!st->owned || st->in_ready)
        return;
    st->in_ready = 1;
    st->next_ready = NULL;
    if (h->ready_tail)
        h->ready_tail->next_ready = st;
    else
        h->ready_head = st;
    h->ready_tail = st;
}

/* Streams that may want to send: a window opened or the output drained. */
static void mark_senders(strata_h2 *h)
{
    h2_stream *st;

    for (st = h->all; st; st = st->next_all)
        if (st->has_body && !st->tx_done && !st->closed)
            mark_ready(st);
}

static void unlink_ready(h2_stream *st)
{
    strata_h2 *h = st->h;
    h2_stream **pp = &h->ready_head, *prev = NULL;

    if (!st->in_ready)
        return;
    while (*pp && *pp != st) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    if (*pp)
        *pp = st->next_ready;
    if (h->ready_tail == st)
        h->ready_tail = prev;
    st->in_ready = 0;
}

static void unlink_accept(h2_stream *st)
{
    strata_h2 *h = st->h;
    h2_stream **pp = &h->accept_head, *prev = NULL;

    if (!st->in_accept)
        return;
    while (*pp && *pp != st) {
        prev = *pp;
        pp = &(*pp)->next_accept;
    }
    if (*pp)
        *pp = st->next_accept;
    if (h->accept_tail == st)
        h->accept_tail = prev;
    st->in_accept = 0;
}

static h2_stream *stream_new(strata_h2 *h, int32_t id)
{
    h2_stream *st = strata_alloc(h->alloc, sizeof *st);

    if (!st)
        return NULL;
    memset(st, 0, sizeof *st);
    strata_stream_init(&st->base, &h2_stream_ops, NULL, h->alloc);
    st->base.heap = 1;
    st->h = h;
    st->id = id;
    st->reset_code = -1;
    st->next_all = h->all;
    if (h->all)
        h->all->prev_all = st;
    h->all = st;
    return st;
}

static void stream_release(h2_stream *st)
{
    strata_h2 *h = st->h;

    unlink_ready(st);
    unlink_accept(st);
    if (st->prev_all)
        st->prev_all->next_all = st->next_all;
    else
        h->all = st->next_all;
    if (st->next_all)
        st->next_all->prev_all = st->prev_all;
    h2_block_reset(&st->head, h->alloc);
    h2_block_reset(&st->trailers, h->alloc);
    strata_dealloc(h->alloc, st->rx);
    strata_dealloc(h->alloc, st->trailer_nva);
}

static int flush_session(strata_h2 *h);

static void conn_destroy(strata_h2 *h)
{
    /* best effort: what was said (an END_STREAM, a GOAWAY) goes out */
    if (!h->failed && flush_session(h) == 0)
        (void)push_out(h);
    while (h->all) {    /* streams never accepted are the connection's */
        h2_stream *st = h->all;

        stream_release(st);
        strata_dealloc(h->alloc, st);
    }
    nghttp2_session_del(h->ng);
    strata_free(h->lower);
    strata_dealloc(h->alloc, h->in);
    strata_dealloc(h->alloc, h->out);
    strata_dealloc(h->alloc, h);
}

static void conn_unref(strata_h2 *h)
{
    if (--h->refs == 0)
        conn_destroy(h);
}

/* ---- failing ---------------------------------------------------------- */

static void fail_conn(strata_h2 *h, int status)
{
    h2_stream *st;

    if (!h->failed)
        h->failed = status;
    for (st = h->all; st; st = st->next_all) {
        if (st->reset_code < 0 && !st->rx_eof)
            st->reset_code = h->error_code;
        mark_ready(st);
    }
}

/* nghttp2 finished (GOAWAY sent or received and nothing left), or the
 * lower ended: what open streams see from now on. */
static void check_ended(strata_h2 *h)
{
    if (h->failed || h->ended)
        return;
    if (nghttp2_session_want_read(h->ng) || nghttp2_session_want_write(h->ng))
        return;
    h->ended = 1;
    (void)push_out(h);  /* the last frames (a GOAWAY) go before the end */
    if (h->error_code != STRATA_H2_NO_ERROR)
        fail_conn(h, STRATA_ERR_PROTO);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len,
                       int flags, void *ud)
{
    strata_h2 *h = ud;
    struct iovec iov;
    int r;

    (void)ng;
    (void)flags;
    iov.iov_base = (void *)(uintptr_t)data;
    iov.iov_len = len;
    r = out_small(h, &iov, 1);
    if (r == 0)
        return (ssize_t)len;
    return r == -1 ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int send_data_cb(nghttp2_session *ng, nghttp2_frame *frame,
                        const uint8_t *framehd, size_t length,
                        nghttp2_data_source *source, void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st = source->ptr;
    struct iovec iov[2];
    int r;

    (void)ng;
    (void)frame;
    iov[0].iov_base = (void *)(uintptr_t)framehd;
    iov[0].iov_len = 9;
    iov[1].iov_base = length ? (void *)(uintptr_t)(st->tx_buf + st->tx_off)
                             : NULL;
    iov[1].iov_len = length;
    if (length > H2_COPY_MAX && !h->partial) {
        /* gathered: written at the end of this flush_session, while the
         * caller's buffer is still on the stack */
        r = h->lg_n == H2_GATHER ? flush_large(h) : 0;
        if (r == 0) {
            int k = h->lg_n++;

            memcpy(h->lg_hdr[k], framehd, 9);
            h->lg_v[2 * k].iov_base = h->lg_hdr[k];
            h->lg_v[2 * k].iov_len = 9;
            h->lg_v[2 * k + 1] = iov[1];
            h->lg_bytes += 9 + length;
        }
    } else
        r = length > H2_COPY_MAX ? out_large(h, iov, 2)
                                 : out_small(h, iov, length ? 2 : 1);
    if (r == -1)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (r < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->tx_off += length;
    /* the lower is full: frame nothing more until it drains */
    return h->partial ? NGHTTP2_ERR_PAUSE : 0;
}

/* Whether a whole DATA frame could still be kept if the lower is full. */
static int frame_room(const strata_h2 *h)
{
    return out_size(h) + h->lg_bytes + H2_DATA_MAX + 9 <= h->o.output_max
        && h->n_ends < H2_OUT_WRITES;
}

static ssize_t data_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *ud)
{
    h2_stream *st = source->ptr;
    size_t left = st->tx_buf ? st->tx_len - st->tx_off : 0;

    (void)buf;
    (void)ud;
    if (!frame_room(st->h) || (left == 0 && !st->tx_eof))
        return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (length > H2_DATA_MAX)   /* a frame the output buffer can keep */
        length = H2_DATA_MAX;
    if (left > 0 && !(st->tx_last && left <= length))
        return (ssize_t)(left < length ? left : length);
    *flags |= NGHTTP2_DATA_FLAG_EOF;   /* with the body's last bytes */
    st->tx_done = 1;
    if (st->trailer_nva) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(ng, id, st->trailer_nva,
                                   (size_t)st->trailer_n) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)left;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame,
                            void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS
        || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = stream_new(h, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h->open++;
    return nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st = stream_of(h, frame->hd.stream_id);
    h2_block *b;

    (void)ng;
    (void)flags;
    if (!st)
        return 0;
    b = st->head.done ? &st->trailers : &st->head;
    if (b->bytes + nlen + vlen + 32 > h->o.max_header_list) {
        st->head_too_big = 1;   /* keep reading the block, store no more */
        return 0;
    }
    if (h2_block_add(b, h->alloc, name, nlen, value, vlen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

/* A server answers a head over its limit with 431 (RFC 9113 10.5.1). */
static void refuse_head(strata_h2 *h, h2_stream *st)
{
    static const nghttp2_nv nv[1] = {
        {(uint8_t *)":status", (uint8_t *)"431", 7, 3, NGHTTP2_NV_FLAG_NONE}};

    nghttp2_submit_response(h->ng, st->id, nv, 1, NULL);
}

static void head_done(strata_h2 *h, h2_stream *st)
{
    if (h->o.role == STRATA_H2_SERVER) {
        if (st->head_too_big) {
            refuse_head(h, st);
            return;
        }
        st->in_accept = 1;
        if (h->accept_tail)
            h->accept_tail->next_accept = st;
        else
            h->accept_head = st;
        h->accept_tail = st;
        return;
    }
    {
        const char *s = h2_block_get(&st->head, ":status");
        int code = s ? atoi(s) : 0;

        if (code >= 100 && code < 200) {    /* informational: next head */
            h2_block_reset(&st->head, h->alloc);
            return;
        }
        st->status = code;
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame,
                         void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st = frame->hd.stream_id ? stream_of(h, frame->hd.stream_id)
                                        : NULL;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            h->settings_acked = 1;
        else
            h->settings_seen = 1;
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            h->pings++;
        return 0;
    case NGHTTP2_GOAWAY:
        h->error_code = frame->goaway.error_code;
        return 0;
    case NGHTTP2_WINDOW_UPDATE:
        /* a sender stopped at a window may go on */
        if (st)
            mark_ready(st);
        else if (frame->hd.stream_id == 0)
            mark_senders(h);
        return 0;
    case NGHTTP2_HEADERS:
        if (!st)
            return 0;
        {
            h2_block *b = st->head.done ? &st->trailers : &st->head;

            if (!b->done && h2_block_finish(b, h->alloc) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            if (b == &st->head)
                head_done(h, st);
        }
        break;
    case NGHTTP2_DATA:
        if (!st)
            return 0;
        break;
    default:
        return 0;
    }
    (void)ng;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        st->rx_eof = 1;
    mark_ready(st);
    return 0;
}

/* The most a stream may hold: its window, or the 65535 of RFC 9113 6.9.2
 * that the peer may use until it acknowledged our SETTINGS. */
static size_t rx_limit(const strata_h2 *h)
{
    size_t w = h->o.stream_window;

    return h->settings_acked || w >= 65535 ? w : 65535;
}

/* Room for n more bytes in the ring, which grows by doubling up to the
 * limit and never past it: -1 when n does not fit (a peer past its
 * window) or allocation fails. */
static int rx_room(strata_h2 *h, h2_stream *st, size_t n)
{
    size_t cap, i, limit = rx_limit(h);
    uint8_t *p;

    if (st->rx_len + n <= st->rx_cap)
        return 0;
    if (st->rx_len + n > limit)
        return -1;
    cap = st->rx_cap ? st->rx_cap : 1024;
    while (cap < st->rx_len + n)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    p = strata_alloc(h->alloc, cap);
    if (!p)
        return -1;
    for (i = 0; i < st->rx_len; i++)   /* unwrap the ring into p */
        p[i] = st->rx[(st->rx_start + i) % st->rx_cap];
    strata_dealloc(h->alloc, st->rx);
    st->rx = p;
    st->rx_cap = cap;
    st->rx_start = 0;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st = stream_of(h, id);
    size_t i, end;

    (void)flags;
    if (!st) {  /* freed by the application: take the bytes off the window */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (rx_room(h, st, len) != 0) {
        /* past the window: nghttp2 resets the stream with
         * FLOW_CONTROL_ERROR; these bytes are not the application's */
        if (st->rx_len + len > rx_limit(h)) {
            if (st->reset_code < 0)
                st->reset_code = NGHTTP2_FLOW_CONTROL_ERROR;
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id,
                                      NGHTTP2_FLOW_CONTROL_ERROR);
            nghttp2_session_consume_connection(ng, len);
            mark_ready(st);
            return 0;
        }
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    end = (st->rx_start + st->rx_len) % st->rx_cap;
    for (i = 0; i < len; ) {
        size_t run = st->rx_cap - end < len - i ? st->rx_cap - end : len - i;

        memcpy(st->rx + end, data + i, run);
        i += run;
        end = (end + run) % st->rx_cap;
    }
    st->rx_len += len;
    mark_ready(st);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code,
                           void *ud)
{
    strata_h2 *h = ud;
    h2_stream *st = stream_of(h, id);

    (void)ng;
    if (h->open > 0)
        h->open--;
    if (!st)
        return 0;
    st->closed = 1;
    if (st->reset_code < 0 && !st->rx_eof)
        st->reset_code = code;
    mark_ready(st);
    if (!st->owned) {   /* never accepted: nobody else will free it */
        if (st->rx_len)
            nghttp2_session_consume_connection(ng, st->rx_len);
        stream_release(st);
        strata_dealloc(h->alloc, st);
    }
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame,
                         void *ud)
{
    strata_h2 *h = ud;

    (void)ng;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        h->error_code = frame->goaway.error_code;
    return 0;
}

/* ---- driving ------------------------------------------------------------ */

/* Let nghttp2 write what it wants; 0, or the connection's failure. */
static int flush_session(strata_h2 *h)
{
    int rv;

    if (h->failed)      /* nothing goes out of a failed connection */
        return h->failed;
    rv = nghttp2_session_send(h->ng);
    if (h->lg_n && flush_large(h) != 0 && !h->failed)
        h->failed = STRATA_ERR_NOMEM;   /* no room: cannot happen */

    if (rv != 0 && !h->failed) {
        h->error_code = STRATA_H2_INTERNAL_ERROR;
        fail_conn(h, STRATA_ERR_PROTO);
    }
    check_ended(h);
    return h->failed;
}

/* One read of the lower stream into nghttp2. 0 when bytes were processed,
 * NEED_* when none came, STRATA_EOF when the connection ended cleanly,
 * or the failure. */
static int drive_input(strata_h2 *h)
{
    unsigned fl;
    ssize_t n, rv;

    if (h->failed)
        return h->failed;
    if (h->ended || h->lower_eof)
        return STRATA_EOF;
    n = strata_recv(h->lower, h->in, H2_IN_CHUNK, &fl);
    if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE)
        return (int)n;
    if (n == STRATA_EOF) {
        h->lower_eof = 1;
        h->ended = 1;
        fail_conn(h, h->open ? STRATA_ERR_TRUNCATED : STRATA_EOF);
        return h->failed;
    }
    if (n < 0) {
        fail_conn(h, (int)n);
        return h->failed;
    }
    rv = nghttp2_session_mem_recv(h->ng, h->in, (size_t)n);
    if (rv < 0) {
        /* a bad preface or a flood: say why in a GOAWAY, then fail */
        h->error_code = rv == NGHTTP2_ERR_FLOODED
                            ? STRATA_H2_ENHANCE_YOUR_CALM
                            : STRATA_H2_PROTOCOL_ERROR;
        nghttp2_session_terminate_session(h->ng, h->error_code);
        (void)nghttp2_session_send(h->ng);
        (void)push_out(h);
        fail_conn(h, STRATA_ERR_PROTO);
        return h->failed;
    }
    return flush_session(h);
}

/* After waiting on input: bytes of ours still below go first. */
static int settle(strata_h2 *h, int status)
{
    int r;

    if (status != STRATA_NEED_READ && status != STRATA_NEED_WRITE)
        return status;
    if (!out_pending(h))
        return status;
    r = push_out(h);
    return r != 0 ? r : status;
}

int strata_h2_drive(strata_h2 *h)
{
    int r, was_full;

    if (!h)
        return STRATA_ERR_ARG;
    was_full = h->partial || !frame_room(h);
    if ((r = push_out(h)) < STRATA_EOF)
        return r;
    if (was_full && r == 0)
        mark_senders(h);
    if (r == 0 && flush_session(h) != 0)
        return h->failed;
    r = drive_input(h);
    push_soon(h);   /* what the input made nghttp2 say (acks, windows) */
    if (r == 0)
        return 0;
    if (r == STRATA_EOF && !h->failed && h->ended)
        return STRATA_EOF;
    return settle(h, r);
}

/* ---- the connection ------------------------------------------------------ */

static void fill_defaults(strata_h2_opts *o)
{
    if (!o->max_concurrent_streams)
        o->max_concurrent_streams = H2_DEFAULT_STREAMS;
    if (!o->stream_window)
        o->stream_window = H2_DEFAULT_WINDOW;
    if (!o->connection_window) {
        uint64_t w = (uint64_t)o->max_concurrent_streams * o->stream_window;

        o->connection_window = w > H2_MAX_WINDOW ? H2_MAX_WINDOW
                                                 : (uint32_t)w;
    }
    if (o->connection_window < 65535)
        o->connection_window = 65535;
    if (!o->max_frame_size)
        o->max_frame_size = 16384;
    if (!o->max_header_list)
        o->max_header_list = H2_DEFAULT_HEADER_LIST;
    if (!o->output_max)
        o->output_max = (size_t)o->max_frame_size + 9 + 64u * 1024u;
}

static int opts_ok(const strata_h2_opts *o)
{
    return (o->role == STRATA_H2_CLIENT || o->role == STRATA_H2_SERVER)
        && o->stream_window <= H2_MAX_WINDOW
        && o->connection_window <= H2_MAX_WINDOW
        && (o->max_frame_size == 0
            || (o->max_frame_size >= 16384 && o->max_frame_size <= 16777215));
}

static int make_session(strata_h2 *h)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    int rv;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
                                                           on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    /* immediate mode: windows reopen only as the application reads */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt,
        h->o.max_concurrent_streams);
    if (h->o.role == STRATA_H2_SERVER)
        rv = nghttp2_session_server_new3(&h->ng, cb, h, opt, &h->mem);
    else
        rv = nghttp2_session_client_new3(&h->ng, cb, h, opt, &h->mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return rv == 0 ? 0 : -1;
}

static int send_settings(strata_h2 *h)
{
    nghttp2_settings_entry iv[5];
    size_t n = 0;

    iv[n].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[n++].value = h->o.max_concurrent_streams;
    iv[n].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[n++].value = h->o.stream_window;
    iv[n].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
    iv[n++].value = h->o.max_frame_size;
    iv[n].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[n++].value = h->o.max_header_list;
    if (h->o.role == STRATA_H2_SERVER && !h->o.no_connect_protocol) {
        iv[n].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
        iv[n++].value = 1;
    }
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, n) != 0)
        return -1;
    return nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
               (int32_t)h->o.connection_window) == 0 ? 0 : -1;
}

strata_h2 *strata_h2_new(strata_stream *lower, const strata_h2_opts *o,
                         const strata_allocator *alloc)
{
    strata_h2 *h;

    if (!lower || !o || !opts_ok(o))
        return NULL;
    h = strata_alloc(alloc, sizeof *h);
    if (!h)
        return NULL;
    memset(h, 0, sizeof *h);
    h->alloc = alloc;
    h->o = *o;
    fill_defaults(&h->o);
    h->mem.mem_user_data = (void *)(uintptr_t)alloc;
    h->mem.malloc = mem_malloc;
    h->mem.free = mem_free;
    h->mem.calloc = mem_calloc;
    h->mem.realloc = mem_realloc;
    h->in = strata_alloc(alloc, H2_IN_CHUNK);
    if (!h->in || make_session(h) != 0 || send_settings(h) != 0) {
        if (h->ng)
            nghttp2_session_del(h->ng);
        strata_dealloc(alloc, h->in);
        strata_dealloc(alloc, h);
        return NULL;
    }
    h->lower = lower;
    h->refs = 1;
    return h;
}

void strata_h2_free(strata_h2 *h)
{
    if (!h || h->app_freed)
        return;
    h->app_freed = 1;
    conn_unref(h);
}

unsigned strata_h2_wants(strata_h2 *h)
{
    unsigned w;

    if (!h)
        return 0;
    w = strata_wants(h->lower);
    if (out_pending(h))
        w |= STRATA_WANT_WRITE;
    if (!w && !h->failed && !h->ended)
        w = STRATA_WANT_READ;
    return w;
}

int strata_h2_fd(strata_h2 *h)
{
    return h ? strata_fd(h->lower) : -1;
}

int strata_h2_shutdown(strata_h2 *h)
{
    int r;

    if (!h)
        return STRATA_ERR_ARG;
    if (h->failed)
        return h->failed;
    /* GOAWAY naming the last stream we took: those still open finish */
    if (!h->goaway_sent) {
        if (nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                nghttp2_session_get_last_proc_stream_id(h->ng),
                NGHTTP2_NO_ERROR, NULL, 0) != 0)
            return STRATA_ERR_STATE;
        h->goaway_sent = 1;
    }
    if ((r = flush_session(h)) != 0)
        return r;
    return push_out(h);
}

int strata_h2_flush(strata_h2 *h)
{
    int r;

    if (!h)
        return STRATA_ERR_ARG;
    if ((r = flush_session(h)) != 0)
        return r;
    return push_out(h);
}

int strata_h2_cork(strata_h2 *h, int on)
{
    if (!h)
        return STRATA_ERR_ARG;
    h->corked = on != 0;
    return on ? 0 : strata_h2_flush(h);
}

int strata_h2_ping(strata_h2 *h)
{
    if (!h)
        return STRATA_ERR_ARG;
    if (h->failed)
        return h->failed;
    if (nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        return STRATA_ERR_NOMEM;
    if (flush_session(h) != 0)
        return h->failed;
    push_soon(h);
    return 0;
}

unsigned long strata_h2_pings(strata_h2 *h)
{
    return h ? h->pings : 0;
}

uint32_t strata_h2_error_code(strata_h2 *h)
{
    return h ? h->error_code : 0;
}

int strata_h2_connect_protocol(strata_h2 *h)
{
    return h && h->settings_seen
        && nghttp2_session_get_remote_settings(h->ng,
               NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
}

size_t strata_h2_open_streams(strata_h2 *h)
{
    return h ? h->open : 0;
}

/* ---- opening streams ------------------------------------------------------ */

static int has_protocol(const strata_h2_header *head, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (head[i].name && strcmp(head[i].name, ":protocol") == 0)
            return 1;
    return 0;
}

static void own(h2_stream *st)
{
    st->owned = 1;
    st->h->refs++;
}

int strata_h2_request(strata_h2 *h, const strata_h2_header *head, size_t n,
                      unsigned flags, strata_stream **out)
{
    nghttp2_data_provider prd;
    nghttp2_nv *nva;
    h2_stream *st;
    int k, r;
    int32_t id;

    if (!h || !out || h->o.role != STRATA_H2_CLIENT)
        return STRATA_ERR_ARG;
    *out = NULL;
    if (h->failed)
        return h->failed;
    if (h->ended || h->error_code || !nghttp2_session_check_request_allowed(
                                          h->ng))
        return STRATA_ERR_STATE;
    if (has_protocol(head, n) && !h->settings_seen) {
        r = strata_h2_drive(h);     /* the server's SETTINGS say if */
        if (h->failed)
            return h->failed;
        if (!h->settings_seen)
            return r < 0 ? r : STRATA_NEED_READ;
    }
    if (has_protocol(head, n) && !strata_h2_connect_protocol(h))
        return STRATA_ERR_UNSUPPORTED;
    if (h->open >= nghttp2_session_get_remote_settings(h->ng,
                       NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
        return STRATA_NEED_READ;    /* a stream must end first */
    k = h2_nva_build(h->alloc, NULL, head, n, &nva);
    if (k < 0)
        return k;
    st = stream_new(h, 0);
    if (!st) {
        strata_dealloc(h->alloc, nva);
        return STRATA_ERR_NOMEM;
    }
    prd.source.ptr = st;
    prd.read_callback = data_read_cb;
    st->has_body = !(flags & STRATA_H2_END_STREAM);
    st->tx_done = !st->has_body;
    id = nghttp2_submit_request(h->ng, NULL, nva, (size_t)k,
                                st->has_body ? &prd : NULL, st);
    strata_dealloc(h->alloc, nva);
    if (id < 0) {
        stream_release(st);
        strata_dealloc(h->alloc, st);
        return id == NGHTTP2_ERR_NOMEM ? STRATA_ERR_NOMEM : STRATA_ERR_ARG;
    }
    st->id = id;
    h->open++;
    own(st);
    *out = &st->base;
    /* the stream is the caller's now: a failure shows on its calls */
    (void)flush_session(h);
    push_soon(h);
    return 0;
}

strata_stream *strata_h2_accept(strata_h2 *h)
{
    h2_stream *st;

    if (!h || !h->accept_head)
        return NULL;
    st = h->accept_head;
    unlink_accept(st);
    own(st);
    if (st->rx_len || st->rx_eof || st->closed)
        mark_ready(st);
    return &st->base;
}

strata_stream *strata_h2_ready(strata_h2 *h)
{
    h2_stream *st;

    if (!h || !h->ready_head)
        return NULL;
    st = h->ready_head;
    unlink_ready(st);
    return &st->base;
}

/* ---- stream calls ---------------------------------------------------------- */

static h2_stream *as_h2(strata_stream *s)
{
    return s && s->ops == &h2_stream_ops ? (h2_stream *)s : NULL;
}

/* The status a stream's calls return once it cannot move any more. */
static int stream_end_status(h2_stream *st)
{
    if (st->reset_code >= 0 && !st->rx_eof)
        return st->h->failed && st->h->failed != STRATA_EOF
                   ? st->h->failed : STRATA_ERR_CLOSED;
    if (st->h->failed && st->h->failed != STRATA_EOF)
        return st->h->failed;
    return 0;
}

int strata_h2_respond(strata_stream *s, int status,
                      const strata_h2_header *head, size_t n, unsigned flags)
{
    h2_stream *st = as_h2(s);
    strata_h2 *h;
    nghttp2_data_provider prd;
    strata_h2_header code;
    char num[4];
    nghttp2_nv nv_small[H2_NV_SMALL], *nva;
    int k, rv;

    if (!st || st->h->o.role != STRATA_H2_SERVER || status < 100
        || status > 999)
        return STRATA_ERR_ARG;
    h = st->h;
    if ((rv = stream_end_status(st)) != 0)
        return rv;
    if (st->closed)
        return STRATA_ERR_CLOSED;
    num[0] = (char)('0' + status / 100);
    num[1] = (char)('0' + status / 10 % 10);
    num[2] = (char)('0' + status % 10);
    num[3] = '\0';
    code.name = ":status";
    code.value = num;
    k = h2_nva_build_in(h->alloc, &code, head, n, nv_small, H2_NV_SMALL,
                        &nva);
    if (k < 0)
        return k;
    prd.source.ptr = st;
    prd.read_callback = data_read_cb;
    st->has_body = !(flags & STRATA_H2_END_STREAM);
    st->tx_done = !st->has_body;
    rv = nghttp2_submit_response(h->ng, st->id, nva, (size_t)k,
                                 st->has_body ? &prd : NULL);
    if (nva != nv_small)
        strata_dealloc(h->alloc, nva);
    if (rv != 0)
        return rv == NGHTTP2_ERR_NOMEM ? STRATA_ERR_NOMEM : STRATA_ERR_STATE;
    if (h->corked && st->has_body)
        return 0;   /* the head goes with the first DATA, or at the uncork */
    rv = flush_session(h);
    push_soon(h);
    return rv < STRATA_EOF ? rv : 0;
}

static ssize_t h2_recv(strata_stream *s, void *buf, size_t len,
                       unsigned *flags)
{
    h2_stream *st = (h2_stream *)s;
    strata_h2 *h = st->h;
    size_t n, i;
    int r;

    *flags = 0;
    for (;;) {
        if (st->rx_len > 0 && (h->o.role == STRATA_H2_SERVER
                               || st->head.done)) {
            n = st->rx_len < len ? st->rx_len : len;
            for (i = 0; i < n; ) {
                size_t run = st->rx_cap - st->rx_start;

                if (run > n - i)
                    run = n - i;
                memcpy((uint8_t *)buf + i, st->rx + st->rx_start, run);
                i += run;
                st->rx_start = (st->rx_start + run) % st->rx_cap;
            }
            st->rx_len -= n;
            if (!st->closed)    /* the window reopens as we read */
                nghttp2_session_consume(h->ng, st->id, n);
            else
                nghttp2_session_consume_connection(h->ng, n);
            (void)flush_session(h);
            push_soon(h);
            return (ssize_t)n;
        }
        if (st->rx_eof)
            return STRATA_EOF;
        if ((r = stream_end_status(st)) != 0)
            return r;
        if (st->closed)
            return STRATA_ERR_CLOSED;
        r = push_out(h);
        if (r < STRATA_EOF)
            return r;
        r = drive_input(h);
        if (r != 0) {
            if (r == STRATA_EOF && (st->rx_eof || st->rx_len))
                continue;
            return r == STRATA_EOF ? STRATA_ERR_TRUNCATED : settle(h, r);
        }
    }
}

/* Room for another DATA frame: push when the buffer is full or a message
 * is half out. 0, NEED_* or the failure. */
static int make_room(strata_h2 *h)
{
    int r = frame_room(h) && !h->partial ? 0 : push_out(h);

    if (r == STRATA_NEED_WRITE || r == STRATA_NEED_READ)
        h->starved = 1;
    return r;
}

/* Copy the leading iovecs that fit in H2_COPY_MAX bytes into small;
 * returns how many (their bytes in *len). */
static int gather_small(const struct iovec *iov, int n, uint8_t *small,
                        size_t *len)
{
    size_t k = 0;
    int i;

    for (i = 0; i < n && k + iov[i].iov_len <= H2_COPY_MAX; i++) {
        if (iov[i].iov_len)
            memcpy(small + k, iov[i].iov_base, iov[i].iov_len);
        k += iov[i].iov_len;
    }
    *len = k;
    return i;
}

static ssize_t h2_sendv(strata_stream *s, const struct iovec *iov, int n,
                        unsigned flags)
{
    h2_stream *st = (h2_stream *)s;
    strata_h2 *h = st->h;
    uint8_t small[H2_COPY_MAX];
    const uint8_t *piece;
    size_t len;
    int r, used;

    if ((r = stream_end_status(st)) != 0)
        return r;
    if (!st->has_body || st->tx_eof || st->tx_done)
        return STRATA_ERR_STATE;
    if (st->closed)
        return STRATA_ERR_CLOSED;
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    if (n == 0)
        return 0;
    /* One piece per call: DATA frames the caller's bytes in place. Small
     * leading pieces (a record's prefix and payload) are joined first:
     * they would be copied into the output buffer anyway, and one frame
     * beats a 5-byte frame and another. */
    used = n > 1 ? gather_small(iov, n, small, &len) : 0;
    piece = used > 1 ? small : (const uint8_t *)iov[0].iov_base;
    if (used <= 1) {
        used = 1;
        len = iov[0].iov_len;
    }
    /* Until the window opens or the input runs dry: a WINDOW_UPDATE may
     * come in any read, and a NEED_READ returned after the read that
     * brought it would wait for input that never comes. */
    for (;;) {
        if ((r = make_room(h)) != 0)
            return r;
        st->tx_buf = piece;
        st->tx_len = len;
        st->tx_off = 0;
        st->tx_last = (flags & STRATA_H2_SEND_END) && used == n;
        nghttp2_session_resume_data(h->ng, st->id);
        (void)flush_session(h);
        st->tx_buf = NULL;
        st->tx_last = 0;
        if (st->tx_off > 0) {
            push_soon(h);
            return (ssize_t)st->tx_off;
        }
        if ((r = stream_end_status(st)) != 0)
            return r;
        if ((r = make_room(h)) != 0)
            return r;
        /* the window is shut: read what the peer sent (WINDOW_UPDATE?) */
        r = drive_input(h);
        if (r != 0)
            return r == STRATA_EOF ? STRATA_ERR_CLOSED : settle(h, r);
    }
}

static int h2_flush(strata_stream *s)
{
    h2_stream *st = (h2_stream *)s;
    int r;

    if ((r = stream_end_status(st)) != 0)
        return r;
    if ((r = flush_session(st->h)) != 0)
        return r;
    if ((r = push_out(st->h)) != 0)
        return r;
    return strata_flush(st->h->lower);
}

static int h2_shutdown(strata_stream *s)
{
    h2_stream *st = (h2_stream *)s;
    strata_h2 *h = st->h;
    int r;

    if ((r = stream_end_status(st)) != 0)
        return r;
    if (st->closed)     /* the peer answered and let the stream go */
        return st->rx_eof ? 0 : STRATA_ERR_CLOSED;
    if (!st->has_body || st->tx_done) {
        push_soon(h);
        return 0;
    }
    st->tx_eof = 1;
    if ((r = make_room(h)) != 0)
        return r;
    nghttp2_session_resume_data(h->ng, st->id);
    if ((r = flush_session(h)) != 0)
        return r;
    if (!st->tx_done)   /* no room, or the head itself still waits */
    {
        if (frame_room(h))
            return STRATA_NEED_READ;
        h->starved = 1;
        return STRATA_NEED_WRITE;
    }
    push_soon(h);
    return 0;
}

int strata_h2_send_trailers(strata_stream *s, const strata_h2_header *t,
                            size_t n)
{
    h2_stream *st = as_h2(s);
    size_t i;
    int k;

    if (!st)
        return STRATA_ERR_ARG;
    if (st->trailer_nva)        /* a retry after NEED: finish the end */
        return h2_shutdown(s);
    if (!n || !t)
        return STRATA_ERR_ARG;
    if (!st->has_body || st->tx_done || st->tx_eof)
        return STRATA_ERR_STATE;
    for (i = 0; i < n; i++)
        if (t[i].name && t[i].name[0] == ':')
            return STRATA_ERR_ARG;  /* no pseudo-headers in trailers */
    /* copied: they go out later, from nghttp2's data source */
    k = h2_nva_copy(st->h->alloc, t, n, &st->trailer_nva);
    if (k < 0)
        return k;
    st->trailer_n = k;
    return h2_shutdown(s);
}

int strata_h2_reset(strata_stream *s, uint32_t code)
{
    h2_stream *st = as_h2(s);

    if (!st)
        return STRATA_ERR_ARG;
    if (st->closed || st->h->failed)
        return 0;
    if (nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id,
                                  code) != 0)
        return STRATA_ERR_STATE;
    (void)flush_session(st->h);
    push_soon(st->h);
    return 0;
}

static unsigned h2_poll(strata_stream *s, unsigned events)
{
    h2_stream *st = (h2_stream *)s;
    strata_h2 *h = st->h;
    unsigned ready = 0;

    if (stream_end_status(st) != 0)
        return events | STRATA_POLL_ERR;
    if ((events & STRATA_POLL_IN) && (st->rx_len || st->rx_eof || st->closed))
        ready |= STRATA_POLL_IN;
    if (st->rx_eof)
        ready |= STRATA_POLL_HUP;
    if ((events & STRATA_POLL_OUT) && st->has_body && !st->tx_done
        && frame_room(h) && !h->partial && st->id > 0
        && nghttp2_session_get_stream_remote_window_size(h->ng, st->id) > 0
        && nghttp2_session_get_remote_window_size(h->ng) > 0)
        ready |= STRATA_POLL_OUT;
    return ready;
}

static unsigned h2_wants(strata_stream *s)
{
    return out_pending(((h2_stream *)s)->h) ? STRATA_WANT_WRITE : 0;
}

/* A stream has no descriptor of its own: the connection has it
 * (strata_h2_fd), and an event loop runs a stream when strata_h2_ready
 * names it. */
static int h2_fd(strata_stream *s)
{
    (void)s;
    return -1;
}

/* The application let go of a stream nghttp2 still knows (a data source
 * of it may still be queued): keep the struct, drop its buffers, and let
 * on_stream_close or the connection's end free it. */
static void orphan(h2_stream *st)
{
    strata_h2 *h = st->h;

    unlink_ready(st);
    h2_block_reset(&st->head, h->alloc);
    h2_block_reset(&st->trailers, h->alloc);
    strata_dealloc(h->alloc, st->rx);
    st->rx = NULL;
    st->rx_cap = st->rx_len = st->rx_start = 0;
    st->tx_buf = NULL;
    st->tx_eof = 1;     /* a queued source ends the stream, nothing more */
    st->owned = 0;
    st->user = NULL;
    st->base.heap = 0;  /* strata_free must not free it: we will */
}

static void h2_close(strata_stream *s)
{
    h2_stream *st = (h2_stream *)s;
    strata_h2 *h = st->h;

    if (!h->failed && st->id > 0) {
        /* After a complete answer the peer is only asked to stop
         * sending: NO_ERROR (RFC 9113 8.1), so a client still streaming
         * its request reads the answer, not a cancellation. */
        if (!st->closed && !(st->rx_eof && st->tx_done))
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id,
                                      st->tx_done ? NGHTTP2_NO_ERROR
                                                  : NGHTTP2_CANCEL);
        /* what it held in its ring goes back to the connection window */
        if (st->rx_len)
            nghttp2_session_consume_connection(h->ng, st->rx_len);
        st->rx_len = 0;
        /* still owned here, so a close this causes only marks it */
        (void)flush_session(h);
        push_soon(h);
    }
    /* An orphan needs the session to outlive this call; when this was the
     * last hold, the session goes now and takes no more callbacks. */
    if (!st->closed && st->id > 0 && h->refs > 1)
        orphan(st);
    else
        stream_release(st);
    conn_unref(h);
}

static const strata_stream_ops h2_stream_ops = {
    "h2", h2_recv, h2_sendv, h2_flush, h2_shutdown, h2_poll, h2_wants,
    h2_fd, h2_close,
};

/* ---- what a stream knows ------------------------------------------------ */

int strata_h2_response_head(strata_stream *s)
{
    h2_stream *st = as_h2(s);
    int r;

    if (!st)
        return STRATA_ERR_ARG;
    while (!st->head.done || (st->h->o.role == STRATA_H2_CLIENT
                              && st->status == 0)) {
        if ((r = stream_end_status(st)) != 0)
            return r;
        if (st->closed)
            return STRATA_ERR_CLOSED;
        if ((r = push_out(st->h)) < STRATA_EOF)
            return r;
        r = drive_input(st->h);
        if (r != 0)
            return r == STRATA_EOF ? STRATA_ERR_TRUNCATED : settle(st->h, r);
    }
    return 0;
}

const strata_h2_header *strata_h2_head(strata_stream *s, size_t *n)
{
    h2_stream *st = as_h2(s);

    if (n)
        *n = st && st->head.done ? st->head.n : 0;
    return st && st->head.done ? st->head.list : NULL;
}

const strata_h2_header *strata_h2_trailers(strata_stream *s, size_t *n)
{
    h2_stream *st = as_h2(s);

    if (n)
        *n = st && st->trailers.done ? st->trailers.n : 0;
    return st && st->trailers.done ? st->trailers.list : NULL;
}

const char *strata_h2_get(strata_stream *s, const char *name)
{
    h2_stream *st = as_h2(s);

    return st && name ? h2_block_get(&st->head, name) : NULL;
}

int strata_h2_status(strata_stream *s)
{
    h2_stream *st = as_h2(s);

    return st ? st->status : 0;
}

long strata_h2_reset_code(strata_stream *s)
{
    h2_stream *st = as_h2(s);

    return st ? st->reset_code : -1;
}

int32_t strata_h2_stream_id(strata_stream *s)
{
    h2_stream *st = as_h2(s);

    return st ? st->id : 0;
}

void strata_h2_set_user(strata_stream *s, void *user)
{
    h2_stream *st = as_h2(s);

    if (st)
        st->user = user;
}

void *strata_h2_user(strata_stream *s)
{
    h2_stream *st = as_h2(s);

    return st ? st->user : NULL;
}

strata_h2 *strata_h2_of(strata_stream *s)
{
    h2_stream *st = as_h2(s);

    return st ? st->h : NULL;
}
