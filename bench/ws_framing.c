/* bench_ws_framing: what WebSocket framing costs in memory, strata against
 * wslay doing the same work.
 *
 * Each row encodes N masked client-to-server messages of one size and
 * decodes them again, in one thread, through a memory transport:
 *  - strata: a client ws stack (no_handshake) sends each message with
 *    strata_send(..., STRATA_MSG_END); a server ws stack (no_handshake)
 *    receives it with strata_recv into the caller's buffer. Twice: ws
 *    right on the memory transport, and ws -> wbuf -> memory transport,
 *    the client stack for small messages (the echo benchmark's), where a
 *    small frame is written straight into the write buffer;
 *  - wslay: wslay_frame_send (mask bit set, genmask callback) encodes, and
 *    wslay_frame_recv decodes and unmasks; the bench copies each decoded
 *    piece out of wslay's input buffer into the same kind of buffer,
 *    since the frame API reuses that buffer on the next call.
 * Both go through the same memory transport: a linear buffer that sends
 * append to and receives take from (for strata a strata_stream_ops at the
 * bottom of both stacks, for wslay its send and recv callbacks). It is the
 * bench's own rather than the pipe pair because it is then the very same
 * code under both libraries; the pipe pair's ring costs strata up to a
 * third more at 16 B and can be added as a row with --pipe. Neither
 * side pays for the OS's randomness: masking keys come from the same PRNG.
 * The writer sends a batch of about 64 KiB of payload, then the reader
 * drains it, so the working set stays in cache for both.
 *
 * The sides alternate measurement by measurement; each row prints the
 * median GB/s and messages/s of each side and the ratio of the medians.
 * Rates are per second of the thread's cpu time (one pinned thread that
 * never waits): other processes on a shared machine stretch the wall
 * time of whichever side they happen to interrupt, not its cpu time.
 * Every message carries a sequence stamp and the source's tail, checked on
 * every decode; an untimed pass before the timed ones compares every
 * decoded message byte for byte with what was sent.
 * The exit code is 0 whatever the goals say (benchmarks report, tests
 * assert); it is 1 only when a side failed or delivered wrong data.
 */
/* sched_setaffinity is Linux's. */
#define _GNU_SOURCE

#include <strata/pipe.h>
#include <strata/stream.h>
#include <strata/wbuf.h>
#include <strata/ws.h>
#include <wslay/wslay.h>

#include "ws_bench.h"

#define BATCH_BYTES (64 * KIB) /* payload the writer sends per step */
#define MEM_MIN (256 * KIB)    /* smallest memory transport */
#define WS_HDR_MAX 14          /* 2 + 8 length + 4 masking key */
#define MSG_SLACK 64           /* receive room past a message: catches one
                                  that comes out longer than it went in */
#define MAX_SIDES 4

static const size_t row_sizes[] = {64 * KIB, 16};

typedef struct options {
    unsigned reps;
    unsigned mib;          /* MiB of payload per measurement, big rows */
    unsigned long msgs;    /* messages per measurement, rows under 1 KiB */
    size_t size;           /* 0: every row size, else only this one */
    size_t scratch;        /* strata client's masking scratch (0: default) */
    size_t rbuf;           /* strata server's buffered input (0: default) */
    int quick, verbose, pipe, pin, cpu;
} options;

/* What one measurement moves. */
typedef struct spec {
    size_t size;           /* payload bytes of a message */
    uint64_t count;        /* messages */
    uint64_t batch;        /* messages the writer sends per step */
    size_t cap;            /* bytes the memory transport holds */
    int verify;            /* compare every message byte for byte */
    const options *opt;
} spec;

/* One measurement: the thread's cpu time (what the rates are computed
 * from: one pinned thread that never waits, so on an idle machine it is
 * the wall time, and on a shared one it leaves out the time another
 * process held the cpu), the wall time, and the part of the wall time
 * spent encoding and decoding (the writer's and the reader's steps). */
typedef struct sample {
    double cpu, wall, enc, dec;
} sample;

typedef int (*side_fn)(const spec *sp, sample *out);

typedef struct side {
    const char *name;
    side_fn run;
} side;

/* ---- the memory transport ---- */

typedef struct memq {
    uint8_t *buf;
    size_t cap, rd, wr;    /* bytes [rd, wr) wait to be received */
} memq;

static void memq_init(memq *q, size_t cap)
{
    q->buf = xmalloc(cap);
    memset(q->buf, 0, cap); /* fault the pages in before timing */
    q->cap = cap;
    q->rd = q->wr = 0;
}

static size_t memq_put(memq *q, const void *p, size_t n)
{
    if (n > q->cap - q->wr && q->rd > 0) { /* rare: reader left bytes */
        memmove(q->buf, q->buf + q->rd, q->wr - q->rd);
        q->wr -= q->rd;
        q->rd = 0;
    }
    if (n > q->cap - q->wr)
        n = q->cap - q->wr;
    if (n > 0)
        memcpy(q->buf + q->wr, p, n);
    q->wr += n;
    return n;
}

static size_t memq_get(memq *q, void *p, size_t n)
{
    if (n > q->wr - q->rd)
        n = q->wr - q->rd;
    if (n > 0)
        memcpy(p, q->buf + q->rd, n);
    q->rd += n;
    if (q->rd == q->wr) /* drained: the next batch starts at the front */
        q->rd = q->wr = 0;
    return n;
}

/* strata's view of it: one end sends into `out`, the other receives from
 * `in`; a stream with no descriptor, like the pipe pair. */
typedef struct mem_end {
    strata_stream base;
    memq *in, *out;
} mem_end;

static ssize_t mem_recv(strata_stream *s, void *buf, size_t len,
                        unsigned *flags)
{
    mem_end *e = (mem_end *)s;
    size_t n = e->in != NULL ? memq_get(e->in, buf, len) : 0;

    (void)flags;
    return n > 0 ? (ssize_t)n : STRATA_NEED_READ;
}

static ssize_t mem_sendv(strata_stream *s, const struct iovec *iov, int n,
                         unsigned flags)
{
    mem_end *e = (mem_end *)s;
    size_t moved = 0, total = 0;

    (void)flags;
    if (e->out == NULL)
        return STRATA_ERR_STATE;
    for (int i = 0; i < n; i++) {
        size_t k = memq_put(e->out, iov[i].iov_base, iov[i].iov_len);

        moved += k;
        total += iov[i].iov_len;
        if (k < iov[i].iov_len)
            break;
    }
    return moved == 0 && total > 0 ? STRATA_NEED_WRITE : (ssize_t)moved;
}

static unsigned mem_poll(strata_stream *s, unsigned events)
{
    mem_end *e = (mem_end *)s;
    unsigned r = 0;

    if (e->in != NULL && e->in->wr > e->in->rd)
        r |= events & STRATA_POLL_IN;
    if (e->out != NULL && e->out->wr < e->out->cap)
        r |= events & STRATA_POLL_OUT;
    return r;
}

static int mem_fd(strata_stream *s)
{
    (void)s;
    return -1;
}

static const strata_stream_ops mem_ops = {
    "mem", mem_recv, mem_sendv, NULL, NULL, mem_poll, NULL, mem_fd, NULL,
};

static strata_stream *mem_end_new(memq *in, memq *out)
{
    mem_end *e = xmalloc(sizeof *e);

    strata_stream_init(&e->base, &mem_ops, NULL, NULL);
    e->base.heap = 1; /* strata_free frees it */
    e->in = in;
    e->out = out;
    return &e->base;
}

/* ---- the message source and the checking reader, shared by the sides */

typedef struct writer {
    uint8_t *src;          /* the message; its stamp changes per message */
    uint64_t next;         /* index of the message being sent */
    size_t off;            /* its bytes already taken */
} writer;

typedef struct reader {
    uint8_t *buf;          /* the message being received */
    uint8_t *ref;          /* the source's bytes, to check against */
    size_t cap, off;
    uint64_t next;         /* index of the message being received */
    uint64_t foff;         /* wslay: payload of the current frame so far */
    uint64_t bad;
} reader;

static void writer_init(writer *w, const spec *sp, uint64_t seed)
{
    w->src = xmalloc(sp->size);
    rng_fill(&seed, w->src, sp->size);
    w->next = 0;
    w->off = 0;
}

static void reader_init(reader *r, const spec *sp, const writer *w)
{
    r->cap = sp->size + MSG_SLACK;
    r->buf = xmalloc(r->cap);
    memset(r->buf, 0, r->cap);
    r->ref = xmalloc(sp->size);
    memcpy(r->ref, w->src, sp->size);
    r->off = 0;
    r->next = 0;
    r->foff = 0;
    r->bad = 0;
}

static void writer_reader_free(writer *w, reader *r)
{
    free(w->src);
    free(r->buf);
    free(r->ref);
}

/* A piece of message r->next arrived at r->buf + r->off. O(1) per message
 * in timed runs (stamp and tail); the verify pass compares every byte. */
static void reader_piece(reader *r, const spec *sp, size_t n, int end)
{
    r->off += n;
    if (!end)
        return;
    if (r->off != sp->size ||
        !stamp_ok(r->buf, r->ref, sp->size, r->next)) {
        r->bad++;
    } else if (sp->verify) {
        stamp_put(r->ref, sp->size, r->next);
        r->bad += memcmp(r->buf, r->ref, sp->size) != 0;
    }
    r->next++;
    r->off = 0;
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* The last index the writer may send in this step. */
static uint64_t batch_end(const writer *w, const spec *sp)
{
    uint64_t stop = w->next + sp->batch;

    return stop < sp->count ? stop : sp->count;
}

typedef int (*step_fn)(void *ctx, const spec *sp, writer *w, reader *r);

/* Alternate writer and reader steps until every message was decoded; the
 * same driver for both sides, so they differ only in the steps. */
static int drive(const spec *sp, sample *out, void *wctx, step_fn wstep,
                 void *rctx, step_fn rstep, writer *w, reader *r)
{
    double t0 = now_s(), c0 = thread_cpu_s(), enc = 0, dec = 0;
    uint64_t last = (uint64_t)-1;

    while (r->next < sp->count) {
        double t1 = now_s(), t2, t3;
        int ws = wstep(wctx, sp, w, r), rs;
        uint64_t progress;

        t2 = now_s();
        rs = rstep(rctx, sp, w, r);
        t3 = now_s();
        enc += t2 - t1;
        dec += t3 - t2;
        if ((ws < 0 && !is_need(ws)) || (rs < 0 && !is_need(rs))) {
            fprintf(stderr, "%s: writer %s, reader %s\n", bench_prog,
                    strata_strerror(ws), strata_strerror(rs));
            return -1;
        }
        progress = w->next + w->off + r->next + r->off;
        if (progress == last)
            return -1; /* neither side moved: a stalled stack */
        last = progress;
    }
    out->cpu = thread_cpu_s() - c0;
    out->wall = now_s() - t0;
    out->enc = enc;
    out->dec = dec;
    return 0;
}

static int check_result(const char *name, const spec *sp, const reader *r)
{
    if (r->next == sp->count && r->bad == 0 && r->off == 0)
        return 0;
    fprintf(stderr, "%s: %s delivered wrong data: %llu of %llu messages, "
            "%llu bad\n", bench_prog, name, (unsigned long long)r->next,
            (unsigned long long)sp->count, (unsigned long long)r->bad);
    return -1;
}

/* ---- strata ---- */

static int strata_random(void *ud, uint8_t *buf, size_t n)
{
    rng_fill(ud, buf, n);
    return 0;
}

static strata_stream *ws_stack(strata_stream *lower, int role,
                               const spec *sp, uint64_t *rng)
{
    strata_ws_opts o;
    strata_stream *s;

    memset(&o, 0, sizeof o);
    o.role = role;
    o.no_handshake = 1;
    o.random = strata_random;
    o.random_ud = rng;
    o.scratch = sp->opt->scratch;
    o.buffer = sp->opt->rbuf;
    s = strata_ws_new(lower, &o, NULL);
    if (s == NULL)
        die("strata_ws_new failed");
    return s;
}

static int strata_wstep(void *ctx, const spec *sp, writer *w, reader *r)
{
    strata_stream *s = ctx;
    uint64_t stop = batch_end(w, sp);
    int f;

    (void)r;
    while (w->next < stop) {
        ssize_t n;

        if (w->off == 0)
            stamp_put(w->src, sp->size, w->next);
        n = strata_send(s, w->src + w->off, sp->size - w->off,
                        STRATA_MSG_END);
        if (n <= 0)
            return n == 0 ? STRATA_ERR_STATE : (int)n;
        w->off += (size_t)n;
        if (w->off == sp->size) {
            w->off = 0;
            w->next++;
        }
    }
    f = strata_flush(s); /* a wbuf below gives up the batch */
    return f < 0 ? f : 0;
}

static int strata_rstep(void *ctx, const spec *sp, writer *w, reader *r)
{
    strata_stream *s = ctx;

    (void)w;
    for (;;) {
        unsigned flags = 0;
        ssize_t n;

        if (r->off == r->cap)
            return STRATA_ERR_TOO_BIG; /* longer than any message sent */
        n = strata_recv(s, r->buf + r->off, r->cap - r->off, &flags);
        if (n < 0)
            return (int)n;
        reader_piece(r, sp, (size_t)n, (flags & STRATA_MSG_END) != 0);
    }
}

/* What the two ws stacks stand on. */
enum lower_kind { L_MEM, L_MEM_WBUF, L_PIPE };

static const char *const lower_names[] = {"strata", "strata+wbuf",
                                          "strata-pipe"};

/* The client's and server's bottom streams: the bench's memory transport,
 * the same with a write buffer under the client (the stack a client of
 * small messages uses: frames go straight into its buffer), or the pipe
 * pair to show what its ring costs instead. */
static void lower_pair(enum lower_kind kind, const spec *sp, memq *q,
                       strata_stream **a, strata_stream **b)
{
    strata_pipe_opts po = {sp->cap, 0, 0, 1};

    q->buf = NULL;
    if (kind == L_PIPE) {
        if (strata_pipe_pair(a, b, &po, NULL) != 0)
            die("strata_pipe_pair failed");
        return;
    }
    memq_init(q, sp->cap);
    *a = mem_end_new(NULL, q);
    *b = mem_end_new(q, NULL);
    if (kind == L_MEM_WBUF && (*a = strata_wbuf_new(*a, BATCH_BYTES, 0,
                                                    NULL)) == NULL)
        die("strata_wbuf_new failed");
}

static int strata_run(const spec *sp, sample *out, enum lower_kind kind)
{
    uint64_t rng = 0x5eed;
    strata_stream *a, *b, *cws, *sws;
    memq q;
    writer w;
    reader r;
    int rc;

    lower_pair(kind, sp, &q, &a, &b);
    cws = ws_stack(a, STRATA_WS_CLIENT, sp, &rng);
    sws = ws_stack(b, STRATA_WS_SERVER, sp, &rng);
    writer_init(&w, sp, 1);
    reader_init(&r, sp, &w);
    rc = drive(sp, out, cws, strata_wstep, sws, strata_rstep, &w, &r);
    if (rc == 0)
        rc = check_result(lower_names[kind], sp, &r);
    strata_free(cws);
    strata_free(sws);
    free(q.buf);
    writer_reader_free(&w, &r);
    return rc;
}

static int strata_mem_side(const spec *sp, sample *out)
{
    return strata_run(sp, out, L_MEM);
}

static int strata_wbuf_side(const spec *sp, sample *out)
{
    return strata_run(sp, out, L_MEM_WBUF);
}

static int strata_pipe_side(const spec *sp, sample *out)
{
    return strata_run(sp, out, L_PIPE);
}

/* ---- wslay ---- */

typedef struct wslay_io {
    memq *q;
    uint64_t *rng;
} wslay_io;

/* wslay takes a return <= 0 as "would block" (WANT_WRITE / WANT_READ). */
static ssize_t wslay_send_cb(const uint8_t *data, size_t len, int flags,
                             void *ud)
{
    wslay_io *io = ud;
    size_t n = memq_put(io->q, data, len);

    (void)flags;
    return n > 0 ? (ssize_t)n : -1;
}

static ssize_t wslay_recv_cb(uint8_t *buf, size_t len, int flags, void *ud)
{
    wslay_io *io = ud;
    size_t n = memq_get(io->q, buf, len);

    (void)flags;
    return n > 0 ? (ssize_t)n : -1;
}

static int wslay_genmask_cb(uint8_t *buf, size_t len, void *ud)
{
    wslay_io *io = ud;

    rng_fill(io->rng, buf, len);
    return 0;
}

static int wslay_wstep(void *ctx, const spec *sp, writer *w, reader *r)
{
    uint64_t stop = batch_end(w, sp);

    (void)r;
    while (w->next < stop) {
        struct wslay_frame_iocb io;
        ssize_t n;

        if (w->off == 0)
            stamp_put(w->src, sp->size, w->next);
        memset(&io, 0, sizeof io);
        io.fin = 1;
        io.opcode = WSLAY_BINARY_FRAME;
        io.mask = 1;
        io.payload_length = sp->size;
        io.data = w->src + w->off;
        io.data_length = sp->size - w->off;
        n = wslay_frame_send(ctx, &io);
        if (n == WSLAY_ERR_WANT_WRITE)
            return STRATA_NEED_WRITE;
        if (n < 0)
            return STRATA_ERR_PROTO;
        w->off += (size_t)n;
        if (w->off == sp->size) {
            w->off = 0;
            w->next++;
        }
    }
    return 0;
}

/* One decoded piece: check the frame, copy it out of wslay's buffer (the
 * next call overwrites it), account for it. */
static int wslay_piece(reader *r, const spec *sp,
                       const struct wslay_frame_iocb *io)
{
    int end;

    if (io->opcode != WSLAY_BINARY_FRAME || !io->mask ||
        io->data_length > r->cap - r->off)
        return STRATA_ERR_PROTO;
    memcpy(r->buf + r->off, io->data, io->data_length);
    r->foff += io->data_length;
    end = r->foff == io->payload_length;
    if (end)
        r->foff = 0;
    reader_piece(r, sp, io->data_length, end && io->fin);
    return 0;
}

static int wslay_rstep(void *ctx, const spec *sp, writer *w, reader *r)
{
    (void)w;
    for (;;) {
        struct wslay_frame_iocb io;
        ssize_t n;

        memset(&io, 0, sizeof io);
        n = wslay_frame_recv(ctx, &io);
        if (n == WSLAY_ERR_WANT_READ)
            return STRATA_NEED_READ;
        if (n < 0 || wslay_piece(r, sp, &io) != 0)
            return STRATA_ERR_PROTO;
    }
}

static int wslay_side(const spec *sp, sample *out)
{
    struct wslay_frame_callbacks cb = {wslay_send_cb, wslay_recv_cb,
                                       wslay_genmask_cb};
    uint64_t rng = 0x5eed;
    wslay_frame_context_ptr enc, dec;
    wslay_io io;
    memq q;
    writer w;
    reader r;
    int rc;

    memq_init(&q, sp->cap);
    io.q = &q;
    io.rng = &rng;
    if (wslay_frame_context_init(&enc, &cb, &io) != 0 ||
        wslay_frame_context_init(&dec, &cb, &io) != 0)
        die("wslay_frame_context_init failed");
    writer_init(&w, sp, 1);
    reader_init(&r, sp, &w);
    rc = drive(sp, out, enc, wslay_wstep, dec, wslay_rstep, &w, &r);
    if (rc == 0)
        rc = check_result("wslay", sp, &r);
    wslay_frame_context_free(enc);
    wslay_frame_context_free(dec);
    free(q.buf);
    writer_reader_free(&w, &r);
    return rc;
}

/* ---- scale: what the machine does with the same bytes, same run ---- */

/* Keeps the compiler from dropping or merging the loops below. */
static void clobber(void *p)
{
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

static double scale_memcpy(unsigned iters)
{
    uint8_t *a = xmalloc(64 * KIB), *b = xmalloc(64 * KIB);
    double t0;

    memset(a, 1, 64 * KIB);
    memset(b, 2, 64 * KIB);
    t0 = thread_cpu_s();
    for (unsigned i = 0; i < iters; i++) {
        memcpy(b, a, 64 * KIB);
        clobber(b);
    }
    t0 = thread_cpu_s() - t0;
    free(a);
    free(b);
    return (double)iters * 64 * KIB / t0 / 1e9;
}

/* An in-place unmask 8 bytes at a time, scalar as the reference
 * figure: the empty asm keeps each word in a register, else gcc -O2 turns
 * the loop into 16-byte vector XORs (about 2.5x faster here). */
static void xor8(uint8_t *p, size_t n, uint64_t key)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;

        memcpy(&v, p + i, 8);
        v ^= key;
        __asm__("" : "+r"(v));
        memcpy(p + i, &v, 8);
    }
}

static double scale_xor(unsigned iters)
{
    uint8_t *a = xmalloc(64 * KIB);
    double t0;

    memset(a, 3, 64 * KIB);
    t0 = thread_cpu_s();
    for (unsigned i = 0; i < iters; i++) {
        xor8(a, 64 * KIB, 0x0123456789abcdefull + i);
        clobber(a);
    }
    t0 = thread_cpu_s() - t0;
    free(a);
    return (double)iters * 64 * KIB / t0 / 1e9;
}

/* ---- rows ---- */

typedef struct row {
    size_t size;
    int nsides;
    side sides[MAX_SIDES];
    double gbs[MAX_SIDES], mps[MAX_SIDES]; /* medians */
    sample med[MAX_SIDES];
    double ratio[MAX_SIDES]; /* each side / wslay, messages/s */
    double goal;
} row;

static spec make_spec(const options *o, size_t size, int verify)
{
    spec sp;
    uint64_t wire;

    sp.size = size;
    sp.count = size >= KIB ? (uint64_t)o->mib * KIB * KIB / size : o->msgs;
    if (sp.count == 0)
        sp.count = 1;
    sp.batch = size >= BATCH_BYTES ? 1 : BATCH_BYTES / size;
    wire = sp.batch * (size + WS_HDR_MAX);
    sp.cap = wire * 2 > MEM_MIN ? (size_t)wire * 2 : MEM_MIN;
    sp.verify = verify;
    sp.opt = o;
    if (verify && sp.count > 4 * sp.batch)
        sp.count = 4 * sp.batch; /* a few batches prove it; byte compares
                                    are slow */
    return sp;
}

static void row_sides(row *rw, const options *o)
{
    rw->nsides = 0;
    rw->sides[rw->nsides++] = (side){"wslay", wslay_side};
    rw->sides[rw->nsides++] = (side){"strata", strata_mem_side};
    rw->sides[rw->nsides++] = (side){"strata+wbuf", strata_wbuf_side};
    if (o->pipe)
        rw->sides[rw->nsides++] = (side){"strata-pipe", strata_pipe_side};
}

/* Untimed: every message of a few batches compared byte for byte. */
static int verify_row(const row *rw, const options *o)
{
    spec sp = make_spec(o, rw->size, 1);
    sample s;

    for (int k = 0; k < rw->nsides; k++)
        if (rw->sides[k].run(&sp, &s) != 0)
            return -1;
    return 0;
}

static void print_sample(const row *rw, int k, unsigned rep, const sample *s,
                         const spec *sp)
{
    printf("  rep %u %-11s %7.3f GB/s %9.3f M msg/s (enc %.3fs dec %.3fs, "
           "%.3fs cpu, %.3fs wall)\n", rep, rw->sides[k].name,
           (double)sp->count * (double)sp->size / s->cpu / 1e9,
           (double)sp->count / s->cpu / 1e6, s->enc, s->dec, s->cpu,
           s->wall);
}

static void take_medians(row *rw, sample s[][MAX_REPS], unsigned reps,
                         const spec *sp)
{
    double c[MAX_REPS], v[MAX_REPS], e[MAX_REPS], d[MAX_REPS];

    for (int k = 0; k < rw->nsides; k++) {
        for (unsigned i = 0; i < reps; i++) {
            c[i] = s[k][i].cpu;
            v[i] = s[k][i].wall;
            e[i] = s[k][i].enc;
            d[i] = s[k][i].dec;
        }
        rw->med[k].cpu = median_of(c, reps);
        rw->med[k].wall = median_of(v, reps);
        rw->med[k].enc = median_of(e, reps);
        rw->med[k].dec = median_of(d, reps);
        /* the median time gives the median rate: same work every rep */
        rw->mps[k] = (double)sp->count / rw->med[k].cpu;
        rw->gbs[k] = rw->mps[k] * (double)sp->size / 1e9;
    }
    for (int k = 0; k < rw->nsides; k++)
        rw->ratio[k] = rw->mps[k] / rw->mps[0];
    rw->goal = rw->size >= 64 * KIB ? 10.0 : rw->size <= 16 ? 1.5 : 0;
}

static int measure_row(row *rw, const options *o)
{
    spec sp = make_spec(o, rw->size, 0);
    sample s[MAX_SIDES][MAX_REPS];

    row_sides(rw, o);
    if (verify_row(rw, o) != 0)
        return -1;
    for (unsigned i = 0; i < o->reps; i++) {
        for (int j = 0; j < rw->nsides; j++) {
            /* Rotate who goes first: no side always inherits the other's
             * warm (or dirty) caches. */
            int k = (int)((j + i) % (unsigned)rw->nsides);

            if (rw->sides[k].run(&sp, &s[k][i]) != 0)
                return -1;
            if (o->verbose)
                print_sample(rw, k, i, &s[k][i], &sp);
        }
    }
    take_medians(rw, s, o->reps, &sp);
    return 0;
}

static const char *goal_mark(const row *rw, int k)
{
    static char text[48];

    if (rw->goal <= 0)
        return "(no goal at this size)";
    snprintf(text, sizeof text, "(goal >= %.1fx) %s", rw->goal,
             rw->ratio[k] >= rw->goal ? "met" : "MISSED");
    return text;
}

static void print_row(const row *rw)
{
    if (rw->goal > 0)
        printf("%s masked (goal: strata >= %.1fx wslay):\n",
               size_name(rw->size), rw->goal);
    else
        printf("%s masked (no goal at this size):\n", size_name(rw->size));
    for (int k = 0; k < rw->nsides; k++) {
        printf("  %-11s %8.3f GB/s %9.3f M msg/s  (%.3fs cpu; wall %.3fs: "
               "enc %.3fs dec %.3fs)", rw->sides[k].name, rw->gbs[k],
               rw->mps[k] / 1e6, rw->med[k].cpu, rw->med[k].wall,
               rw->med[k].enc, rw->med[k].dec);
        if (k > 0)
            printf("  %.2fx wslay %s", rw->ratio[k], goal_mark(rw, k));
        printf("\n");
    }
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_ws_framing [options]\n"
        "\n"
        "In-process WebSocket framing, encode + decode of masked client\n"
        "messages through memory: strata's ws layer (client stack sends,\n"
        "server stack receives, no handshake) against wslay's frame API\n"
        "(wslay_frame_send with masking, wslay_frame_recv), for 64 KiB and\n"
        "16 B messages. strata runs as ws -> memory and as ws -> wbuf ->\n"
        "memory (the client stack for small messages). Prints median GB/s\n"
        "and messages/s per second of cpu time, and the ratios to wslay.\n"
        "Goals: strata >= 10x wslay for 64 KiB, >= 1.5x for 16 B.\n"
        "\n"
        "  --quick       short smoke run (3 reps, 16 MiB / 300k messages)\n"
        "  --reps N      measurements per side and row, interleaved (7)\n"
        "  --mib N       MiB of payload per measurement, rows >= 1 KiB (512)\n"
        "  --msgs N      messages per measurement, rows < 1 KiB (8000000)\n"
        "  --size N      one row of N-byte messages (1..1048576)\n"
        "  --pipe        also run strata over the pipe pair (its ring)\n"
        "  --scratch N   strata client's masking scratch, bytes (default)\n"
        "  --rbuf N      strata server's buffered input, bytes (default)\n"
        "  --cpu N       pin to cpu N (default: the first usable cpu)\n"
        "  --no-pin      let the scheduler place the thread\n"
        "  --verbose     print every measurement\n"
        "  --help        this text\n"
        "\n"
        "Exit code 0 whatever the goals; 1 if a side failed or delivered\n"
        "wrong data.\n");
}

static unsigned long parse_num(const char *s, unsigned long max)
{
    char *end;
    unsigned long v = s != NULL ? strtoul(s, &end, 10) : 0;

    if (s == NULL || *end != '\0' || v == 0 || v > max) {
        usage(stderr);
        exit(2);
    }
    return v;
}

static int parse_cpu(const char *s)
{
    char *end;
    long v = s != NULL ? strtol(s, &end, 10) : -1;

    if (s == NULL || *end != '\0' || v < 0 || v >= CPU_SETSIZE) {
        usage(stderr);
        exit(2);
    }
    return (int)v;
}

/* Options that take a number; 0 when `a` is not one of them. */
static int parse_valued(const char *a, const char *v, options *o)
{
    if (strcmp(a, "--reps") == 0)
        o->reps = (unsigned)parse_num(v, MAX_REPS);
    else if (strcmp(a, "--mib") == 0)
        o->mib = (unsigned)parse_num(v, 65536);
    else if (strcmp(a, "--msgs") == 0)
        o->msgs = parse_num(v, 1000000000ul);
    else if (strcmp(a, "--size") == 0)
        o->size = parse_num(v, 1024 * KIB);
    else if (strcmp(a, "--scratch") == 0)
        o->scratch = parse_num(v, 16 * KIB * KIB);
    else if (strcmp(a, "--rbuf") == 0)
        o->rbuf = parse_num(v, 16 * KIB * KIB);
    else if (strcmp(a, "--cpu") == 0)
        o->cpu = parse_cpu(v);
    else
        return 0;
    return 1;
}

static void parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->reps = 7;
    o->mib = 512;
    o->msgs = 8000000;
    o->pin = 1;
    o->cpu = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
            o->reps = 3;
            o->mib = 16;
            o->msgs = 300000;
        } else if (strcmp(a, "--pipe") == 0) {
            o->pipe = 1;
        } else if (strcmp(a, "--no-pin") == 0) {
            o->pin = 0;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
        } else if (!parse_valued(a, i + 1 < argc ? argv[i + 1] : NULL, o)) {
            usage(stderr);
            exit(2);
        } else {
            i++;
        }
    }
}

/* ---- main ---- */

/* One thread does all the work: keep it on one cpu so a migration does
 * not land in one side's measurement and not the other's. */
static int place(const options *o)
{
    int cpu = o->cpu;

    if (!o->pin)
        return -1;
    if (cpu < 0 && usable_cpus(&cpu, 1) != 1)
        return -1;
    return pin_task(0, cpu) == 0 ? cpu : -1;
}

static void print_header(const options *o, int cpu)
{
    double load = load_now();

    char where[32] = "not pinned";

    if (cpu >= 0)
        snprintf(where, sizeof where, "pinned to cpu %d", cpu);
    printf("bench_ws_framing: %u reps per side and row, interleaved; "
           "strata over %s; one thread %s\n", o->reps,
           o->pipe ? "the bench's memory stream (and the pipe pair)"
                   : "the bench's memory stream", where);
    printf("build: %s%s; wslay %s; load average before the run %.2f%s\n",
           BENCH_BUILD_TYPE,
           optimized() ? "" : " (unoptimized: numbers are not meaningful)",
           WSLAY_VERSION, load,
           load > 0.5 ? " (other processes compete: expect noise)" : "");
}

static void print_scale(const options *o)
{
    unsigned iters = o->quick ? 2000 : 20000;

    printf("scale, same run: memcpy 64 KiB %.1f GB/s, scalar 8-byte XOR "
           "unmask of 64 KiB %.1f GB/s\n\n", scale_memcpy(iters),
           scale_xor(iters));
}

static void print_summary(const row *rows, int n)
{
    printf("\nsummary (ratio of median messages/s to wslay's):\n");
    for (int i = 0; i < n; i++) {
        const row *rw = &rows[i];

        for (int k = 1; k < rw->nsides; k++)
            printf("  %-7s %-11s %8.3f GB/s %8.3f M msg/s, wslay %7.3f GB/s "
                   "%7.3f M msg/s: %6.2fx  %s\n", size_name(rw->size),
                   rw->sides[k].name, rw->gbs[k], rw->mps[k] / 1e6,
                   rw->gbs[0], rw->mps[0] / 1e6, rw->ratio[k],
                   goal_mark(rw, k));
    }
}

int main(int argc, char **argv)
{
    options o;
    row rows[2];
    int n = 0, cpu;
    size_t nsizes = sizeof row_sizes / sizeof *row_sizes;

    bench_prog = "bench_ws_framing";
    parse_args(argc, argv, &o);
    cpu = place(&o);
    print_header(&o, cpu);
    print_scale(&o);
    for (size_t z = 0; z < (o.size != 0 ? 1 : nsizes); z++) {
        row *rw = &rows[n++];

        memset(rw, 0, sizeof *rw);
        rw->size = o.size != 0 ? o.size : row_sizes[z];
        if (measure_row(rw, &o) != 0)
            return 1;
        print_row(rw);
    }
    print_summary(rows, n);
    return 0;
}
