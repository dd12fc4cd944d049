/* bench_framing: what lenprefix and line framing cost against plain bytes.
 *
 * Each row moves the same record bytes twice, interleaved rep by rep so that
 * machine noise hits both sides: once as the baseline (plain write()/read()
 * of 64 KiB chunks on a blocking loopback TCP socket, or raw 64 KiB
 * strata_send/strata_recv on the pipe pair) and once through a strata stack
 * (lenprefix or line over wbuf on the sending side, over buffered on the
 * receiving side). It prints the median GB/s of each, the ratio of the
 * medians, and each side's CPU time so a reader sees which side was the
 * limit. The receiver checks every record (count, length, a sequence stamp
 * at its start, a marker at its end) so a fast number cannot be a wrong one.
 *
 * A record of N bytes is N bytes on the wire (4-byte header + payload, or
 * content + newline), and throughput counts payload bytes only: framing is
 * overhead charged to strata.
 * The exit code is 0 whatever the goals say (benchmarks report, tests
 * assert); it is 1 only when a transfer failed or delivered wrong data.
 */
/* RUSAGE_THREAD (per-thread CPU time), thread affinity and thread names
 * are Linux's. */
#define _GNU_SOURCE

#include <strata/blocking.h>
#include <strata/buffered.h>
#include <strata/lenprefix.h>
#include <strata/line.h>
#include <strata/pipe.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/wbuf.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define CHUNK (64 * KIB)     /* baseline send size and every receive buffer */
#define WBUF_CAP (64 * KIB)  /* sender's write buffer (threshold: default) */
#define RBUF_CAP (64 * KIB)  /* receiver's buffered stream (--rbuf) */
#define PIPE_CAP (256 * KIB) /* each direction of the pipe pair */
#define LINE_LIMIT (RBUF_CAP - 1) /* line max_len: the most a 64 KiB
                                     buffered stream can hold */
#define STAMP_LEN 8          /* sequence stamp at the start of a record */
#define TAIL 'Z'             /* marker in the last byte of a record */
#define WAIT_MS 30000        /* a stalled transfer fails instead of hanging */
#define MAX_REPS 99

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

enum proto { P_RAW, P_LENPREFIX, P_LINE };
enum transport { T_TCP, T_PIPE };

static const char *const proto_names[] = {"raw", "lenprefix", "line"};
static const char *const transport_names[] = {"tcp", "pipe"};
static const size_t record_sizes[] = {64 * KIB, 1 * KIB, 64};

typedef struct options {
    unsigned reps;
    unsigned mib;   /* record bytes per measurement */
    int quick;
    int verbose;    /* print every measurement, not only the medians */
    int only;       /* -1: both transports, else one enum transport */
    size_t size;    /* 0: every size of record_sizes, else this one */
    int proto;      /* -1: both protocols, else one enum proto */
    int pin;        /* pin the TCP writer and reader to two cpus */
    unsigned rbuf_kib; /* receiver's buffered stream, KiB */
} options;

/* What one measurement moves. */
typedef struct spec {
    enum proto proto; /* P_RAW: the baseline */
    size_t size;      /* record bytes counted for throughput */
    size_t len;       /* bytes per send: the payload, a line's content */
    uint64_t count;   /* sends */
    uint64_t total;   /* record bytes of the whole run */
    size_t rbuf;      /* capacity of the receiver's buffered stream */
} spec;

/* One measurement. Over TCP cpu_w/cpu_r are each thread's CPU time; over
 * the pipe (one thread) they are the time spent in writer and reader steps. */
typedef struct sample {
    double wall, cpu_w, cpu_r;
} sample;

/* What every measurement needs: the options and the loopback listener. */
typedef struct bench {
    options opt;
    int lfd, port;
    int cpu[2];     /* writer's and reader's cpu, -1: not pinned */
} bench;

typedef struct row {
    enum transport tr;
    enum proto proto;
    size_t size;
    double base_gbs, strata_gbs, ratio, goal;
    sample base_med, strata_med;
} row;

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "bench_framing: %s\n", what);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        die("out of memory");
    return p;
}

static const char *size_name(size_t size)
{
    static char buf[32];

    if (size % KIB == 0)
        snprintf(buf, sizeof buf, "%zuKiB", size / KIB);
    else
        snprintf(buf, sizeof buf, "%zuB", size);
    return buf;
}

/* The stamp is a little-endian base-16 counter whose digits are the
 * letters 'a'..'p': no newline can appear, so the same record bytes serve
 * the line protocol, and stepping it in place costs about one store per
 * record on either side. */
static void stamp_first(uint8_t *p)
{
    memset(p, 'a', STAMP_LEN);
}

static void stamp_next(uint8_t *p)
{
    for (int i = 0; i < STAMP_LEN; i++) {
        if (p[i] != 'p') {
            p[i]++;
            return;
        }
        p[i] = 'a';
    }
}

static spec make_spec(enum proto proto, size_t size, uint64_t total,
                      size_t rbuf)
{
    spec s;

    s.proto = proto;
    s.size = proto == P_RAW ? CHUNK : size;
    /* A record of `size` bytes is `size` bytes on the wire, framing
     * included, as the baseline's chunks are: a 64 KiB record keeps the
     * stream aligned the way 64 KiB writes do (a 65540-byte record slows
     * the kernel's own copies, the baseline's too, by about a third). Only
     * payload bytes count as moved: the framing is strata's overhead. */
    s.len = proto == P_LINE        ? size - 1
            : proto == P_LENPREFIX ? size - 4
                                   : s.size;
    s.count = total / s.size;
    s.total = s.count * s.len;
    s.rbuf = rbuf;
    return s;
}

/* ---- stacks ---- */

static strata_stream *writer_stack(strata_stream *bottom, enum proto p)
{
    strata_lenprefix_opts lp = {4, 0, 0, 0};
    strata_line_opts lo = {NULL, 0, LINE_LIMIT, 0};
    strata_stream *w, *top;

    if (bottom == NULL)
        die("cannot create the bottom stream");
    if (p == P_RAW)
        return bottom;
    w = strata_wbuf_new(bottom, WBUF_CAP, 0, NULL);
    if (w == NULL)
        die("strata_wbuf_new failed");
    top = p == P_LENPREFIX ? strata_lenprefix_new(w, &lp, NULL)
                           : strata_line_new(w, &lo, NULL);
    if (top == NULL)
        die("cannot create the writer's framing layer");
    return top;
}

static strata_stream *reader_stack(strata_stream *bottom, const spec *sp)
{
    enum proto p = sp->proto;
    strata_lenprefix_opts lp = {4, 0, 0, 0};
    strata_line_opts lo = {NULL, 0, LINE_LIMIT, 0};
    strata_stream *b, *top;

    if (bottom == NULL)
        die("cannot create the bottom stream");
    if (p == P_RAW)
        return bottom;
    b = strata_buffered_new(bottom, sp->rbuf, NULL);
    if (b == NULL)
        die("strata_buffered_new failed");
    top = p == P_LENPREFIX ? strata_lenprefix_new(b, &lp, NULL)
                           : strata_line_new(b, &lo, NULL);
    if (top == NULL)
        die("cannot create the reader's framing layer");
    return top;
}

/* ---- the sending side: a step function usable from a thread (waiting
 * between steps) or from the pipe's single loop (reading between steps) */

enum { SENDING, FLUSHING, SHUTTING, DONE };

typedef struct sender {
    strata_stream *s;
    const spec *sp;
    uint8_t *rec;     /* one record; its stamp steps after each */
    uint64_t next;    /* index of the record being sent */
    size_t off;       /* its bytes already taken by the stack */
    int phase;
} sender;

static void sender_init(sender *w, strata_stream *s, const spec *sp)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->sp = sp;
    w->rec = xmalloc(sp->len);
    for (size_t i = 0; i < sp->len; i++)
        w->rec[i] = (uint8_t)('A' + i % 25); /* letters, never '\n' */
    w->rec[sp->len - 1] = TAIL;
    stamp_first(w->rec);
    w->phase = SENDING;
}

/* Send records until the stack says wait. Returns 0 once everything went
 * and our direction is shut down, a NEED code, or an error status. */
static int sender_step(sender *w)
{
    const spec *sp = w->sp;
    unsigned flags = sp->proto == P_RAW ? 0 : STRATA_MSG_END;
    ssize_t r;

    while (w->phase == SENDING) {
        r = strata_send(w->s, w->rec + w->off, sp->len - w->off, flags);
        if (r < 0)
            return (int)r;
        w->off += (size_t)r;
        if (w->off == sp->len) {
            w->off = 0;
            stamp_next(w->rec);
            if (++w->next == sp->count)
                w->phase = FLUSHING;
        }
    }
    if (w->phase == FLUSHING) {
        int f = strata_flush(w->s);

        if (f < 0)
            return f;
        w->phase = SHUTTING;
    }
    if (w->phase == SHUTTING) {
        int f = strata_shutdown(w->s);

        if (f < 0)
            return f;
        w->phase = DONE;
    }
    return 0;
}

/* ---- the receiving side ---- */

typedef struct receiver {
    strata_stream *s;
    const spec *sp;
    uint8_t *buf;
    uint64_t bytes;    /* bytes received */
    uint64_t records;  /* records ended (STRATA_MSG_END) */
    uint64_t bad;      /* records with a wrong length, stamp or tail */
    size_t off;        /* bytes of the current record so far */
    uint8_t expect[STAMP_LEN]; /* stamp of the record being received */
} receiver;

static void receiver_init(receiver *r, strata_stream *s, const spec *sp)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->sp = sp;
    stamp_first(r->expect);
    r->buf = xmalloc(CHUNK);
    memset(r->buf, 0, CHUNK); /* fault the pages in before timing */
}

/* A short compare without a libc call: this runs once per record and
 * should cost the measurement nothing. */
static int same(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t x, y;

    if (n != STAMP_LEN) {
        while (n-- > 0)
            if (*a++ != *b++)
                return 0;
        return 1;
    }
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x == y;
}

/* O(1) per piece: the stamp proves order and that no record was lost or
 * merged, the length and tail prove the boundaries. */
static void account(receiver *r, size_t n, unsigned flags)
{
    r->bytes += n;
    if (r->sp->proto == P_RAW)
        return;
    if (r->off < STAMP_LEN) { /* this piece holds (part of) the stamp */
        size_t k = STAMP_LEN - r->off < n ? STAMP_LEN - r->off : n;

        r->bad += !same(r->buf, r->expect + r->off, k);
    }
    r->off += n;
    if (flags & STRATA_MSG_END) {
        r->bad += r->off != r->sp->len || n == 0 || r->buf[n - 1] != TAIL;
        stamp_next(r->expect);
        r->records++;
        r->off = 0;
    }
}

/* Receive until the stack says wait. Returns 0 at STRATA_EOF, a NEED code,
 * or an error status. */
static int receiver_step(receiver *r)
{
    for (;;) {
        unsigned flags = 0;
        ssize_t n = strata_recv(r->s, r->buf, CHUNK, &flags);

        if (n == STRATA_EOF)
            return 0;
        if (n < 0)
            return (int)n;
        account(r, (size_t)n, flags);
    }
}

static int receiver_verify(const receiver *r, const char *what)
{
    const spec *sp = r->sp;
    uint64_t want = sp->proto == P_RAW ? sp->total : sp->count * sp->len;

    if (r->bytes == want && r->bad == 0 && r->off == 0 &&
        (sp->proto == P_RAW || r->records == sp->count))
        return 0;
    fprintf(stderr,
            "bench_framing: %s delivered wrong data: %llu of %llu bytes, "
            "%llu of %llu records, %llu bad\n",
            what, (unsigned long long)r->bytes, (unsigned long long)want,
            (unsigned long long)r->records, (unsigned long long)sp->count,
            (unsigned long long)r->bad);
    return -1;
}

/* ---- the pipe pair: one thread alternates writer and reader steps ---- */

static int pipe_run(const spec *sp, sample *out)
{
    strata_pipe_opts o = {PIPE_CAP, 0, 0, 1};
    strata_stream *a, *b;
    sender w;
    receiver r;
    double t0, tw = 0, tr = 0;
    uint64_t last = 0, progress;
    int rs, ws = 0;

    if (strata_pipe_pair(&a, &b, &o, NULL) != 0)
        die("strata_pipe_pair failed");
    sender_init(&w, writer_stack(a, sp->proto), sp);
    receiver_init(&r, reader_stack(b, sp), sp);
    t0 = now_s();
    for (;;) {
        double t1 = now_s(), t2;

        if (w.phase != DONE)
            ws = sender_step(&w);
        t2 = now_s();
        rs = receiver_step(&r);
        tw += t2 - t1;
        tr += now_s() - t2;
        if (rs == 0 || (ws < 0 && !is_need(ws)) || !is_need(rs))
            break;
        progress = w.next + w.off + (uint64_t)w.phase + r.bytes;
        if (progress == last)
            break; /* neither side moved: a stalled stack */
        last = progress;
    }
    out->wall = now_s() - t0;
    out->cpu_w = tw;
    out->cpu_r = tr;
    if (rs != 0 || w.phase != DONE)
        fprintf(stderr, "bench_framing: pipe %s: writer %s, reader %s\n",
                proto_names[sp->proto], strata_strerror(ws),
                strata_strerror(rs));
    rs = rs != 0 || w.phase != DONE ? -1 : receiver_verify(&r, "pipe");
    strata_free(w.s);
    strata_free(r.s);
    free(w.rec);
    free(r.buf);
    return rs;
}

/* ---- loopback TCP: one writer thread, one reader thread ---- */

typedef struct tcp_side {
    int fd;
    int strata;               /* 0: plain write()/read() baseline */
    int pin_cpu;              /* run on this cpu, -1: anywhere */
    pthread_barrier_t *start;
    sender w;                 /* strata writer */
    receiver r;               /* strata reader, or the baseline's counters */
    double t0, t1, cpu;
    int status;
} tcp_side;

static int drive_sender(sender *w)
{
    for (;;) {
        int st = sender_step(w);

        if (st == 0 || !is_need(st))
            return st;
        st = strata_wait(w->s, 0, WAIT_MS);
        if (st < 0)
            return st;
    }
}

static int drive_receiver(receiver *r)
{
    for (;;) {
        int st = receiver_step(r);

        if (st == 0 || !is_need(st))
            return st;
        st = strata_wait(r->s, 0, WAIT_MS);
        if (st < 0)
            return st;
    }
}

static int plain_write_all(int fd, const uint8_t *buf, uint64_t total)
{
    while (total > 0) {
        size_t n = total < CHUNK ? (size_t)total : CHUNK, off = 0;

        while (off < n) {
            ssize_t k = write(fd, buf + off, n - off);

            if (k < 0 && errno != EINTR)
                return STRATA_ERR_IO;
            off += k > 0 ? (size_t)k : 0;
        }
        total -= n;
    }
    return shutdown(fd, SHUT_WR) == 0 ? 0 : STRATA_ERR_IO;
}

static int plain_read_all(receiver *r, int fd)
{
    for (;;) {
        ssize_t k = read(fd, r->buf, CHUNK);

        if (k == 0)
            return 0;
        if (k < 0 && errno != EINTR)
            return STRATA_ERR_IO;
        if (k > 0)
            r->bytes += (uint64_t)k;
    }
}

static void pin_to(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *tcp_writer(void *arg)
{
    tcp_side *t = arg;
    double c0;

    pin_to(t->pin_cpu);
    pthread_setname_np(pthread_self(), "bench-writer"); /* for perf, top */
    pthread_barrier_wait(t->start);
    t->t0 = now_s();
    c0 = thread_cpu_s();
    t->status = t->strata ? drive_sender(&t->w)
                          : plain_write_all(t->fd, t->w.rec, t->w.sp->total);
    t->cpu = thread_cpu_s() - c0;
    t->t1 = now_s();
    return NULL;
}

static void *tcp_reader(void *arg)
{
    tcp_side *t = arg;
    double c0;

    pin_to(t->pin_cpu);
    pthread_setname_np(pthread_self(), "bench-reader");
    pthread_barrier_wait(t->start);
    t->t0 = now_s();
    c0 = thread_cpu_s();
    t->status = t->strata ? drive_receiver(&t->r)
                          : plain_read_all(&t->r, t->fd);
    t->cpu = thread_cpu_s() - c0;
    t->t1 = now_s();
    return NULL;
}

/* A fresh connection per measurement, made the same way for both sides so
 * that they differ only in what runs on top of the descriptors. */
static void tcp_connect_pair(int lfd, int port, int *wfd, int *rfd)
{
    struct sockaddr_in sa;
    struct pollfd p = {lfd, POLLIN, 0};
    int one = 1;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *wfd = socket(AF_INET, SOCK_STREAM, 0);
    if (*wfd < 0 || connect(*wfd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect to the loopback listener failed");
    if (poll(&p, 1, WAIT_MS) != 1)
        die("the loopback listener did not see the connection");
    *rfd = accept(lfd, NULL, NULL); /* blocking: accept does not inherit
                                       the listener's O_NONBLOCK */
    if (*rfd < 0)
        die("accept failed");
    /* strata's socket stream sets TCP_NODELAY; the baseline gets it too so
     * that both sides run on identically configured sockets. */
    (void)setsockopt(*wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(*rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void tcp_prepare(tcp_side *w, tcp_side *r, const spec *sp,
                        int strata)
{
    if (strata) {
        sender_init(&w->w, writer_stack(strata_socket_new(w->fd, NULL),
                                        sp->proto), sp);
        receiver_init(&r->r, reader_stack(strata_socket_new(r->fd, NULL),
                                          sp), sp);
    } else {
        sender_init(&w->w, NULL, sp);
        receiver_init(&r->r, NULL, sp);
    }
}

static int tcp_run(const spec *sp, int strata, const bench *b, sample *out)
{
    pthread_barrier_t start;
    pthread_t tw, tr;
    tcp_side w, r;
    int rc;

    memset(&w, 0, sizeof w);
    memset(&r, 0, sizeof r);
    tcp_connect_pair(b->lfd, b->port, &w.fd, &r.fd);
    w.strata = r.strata = strata;
    w.pin_cpu = b->cpu[0];
    r.pin_cpu = b->cpu[1];
    w.start = r.start = &start;
    tcp_prepare(&w, &r, sp, strata);
    pthread_barrier_init(&start, NULL, 2);
    if (pthread_create(&tw, NULL, tcp_writer, &w) != 0 ||
        pthread_create(&tr, NULL, tcp_reader, &r) != 0)
        die("pthread_create failed");
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    pthread_barrier_destroy(&start);
    out->wall = (r.t1 > w.t1 ? r.t1 : w.t1) - (r.t0 < w.t0 ? r.t0 : w.t0);
    out->cpu_w = w.cpu;
    out->cpu_r = r.cpu;
    if (w.status != 0 || r.status != 0)
        fprintf(stderr, "bench_framing: tcp %s: writer %s, reader %s\n",
                strata ? proto_names[sp->proto] : "baseline",
                strata_strerror(w.status), strata_strerror(r.status));
    rc = w.status != 0 || r.status != 0 ? -1
                                        : receiver_verify(&r.r, "tcp");
    if (strata) {
        strata_free(w.w.s); /* closes the descriptors */
        strata_free(r.r.s);
    } else {
        close(w.fd);
        close(r.fd);
    }
    free(w.w.rec);
    free(r.r.buf);
    return rc;
}

/* ---- rows: interleaved repetitions and their medians ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
    double tmp[MAX_REPS];

    memcpy(tmp, v, n * sizeof *v);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static sample median_sample(const sample *s, unsigned n)
{
    double wall[MAX_REPS], cw[MAX_REPS], cr[MAX_REPS];
    sample m;

    for (unsigned i = 0; i < n; i++) {
        wall[i] = s[i].wall;
        cw[i] = s[i].cpu_w;
        cr[i] = s[i].cpu_r;
    }
    m.wall = median(wall, n);
    m.cpu_w = median(cw, n);
    m.cpu_r = median(cr, n);
    return m;
}

static int run_once(enum transport tr, const spec *sp, int strata,
                    const bench *b, sample *out)
{
    if (tr == T_PIPE)
        return pipe_run(sp, out); /* the baseline is the raw pipe pair */
    return tcp_run(sp, strata, b, out);
}

static int measure_row(row *rw, const bench *b)
{
    const options *o = &b->opt;
    uint64_t total = (uint64_t)o->mib * KIB * KIB;
    size_t rbuf = (size_t)o->rbuf_kib * KIB;
    spec base = make_spec(P_RAW, rw->size, total, rbuf);
    spec fr = make_spec(rw->proto, rw->size, total, rbuf);
    sample s[2][MAX_REPS];
    double gbs[2][MAX_REPS];

    for (unsigned i = 0; i < o->reps; i++) {
        for (int k = 0; k < 2; k++) {
            /* Alternate which side goes first so that neither always
             * inherits the other's warm (or dirty) caches. */
            int strata = (int)((unsigned)k ^ (i & 1u));

            if (run_once(rw->tr, strata ? &fr : &base, strata, b,
                         &s[strata][i]) != 0)
                return -1;
            gbs[strata][i] = (double)(strata ? fr.total : base.total) /
                             s[strata][i].wall / 1e9;
            if (o->verbose)
                printf("  rep %u %-8s %6.2f GB/s (w %.3fs r %.3fs, "
                       "%.3fs wall)\n", i, strata ? "strata" : "baseline",
                       gbs[strata][i], s[strata][i].cpu_w,
                       s[strata][i].cpu_r, s[strata][i].wall);
        }
    }
    rw->base_med = median_sample(s[0], o->reps);
    rw->strata_med = median_sample(s[1], o->reps);
    rw->base_gbs = median(gbs[0], o->reps);
    rw->strata_gbs = median(gbs[1], o->reps);
    rw->ratio = rw->strata_gbs / rw->base_gbs;
    rw->goal = rw->size >= 64 * KIB ? 0.95 : 0.5;
    return 0;
}

/* Which thread kept its cpu busy for (nearly) the whole transfer: that one
 * set the pace. Neither means both waited: for each other, or for a cpu
 * that another process held. */
static const char *limit_of(const sample *m)
{
    if (m->cpu_w >= 0.85 * m->wall && m->cpu_w >= m->cpu_r)
        return "writer-bound";
    if (m->cpu_r >= 0.85 * m->wall)
        return "reader-bound";
    return "neither cpu-bound";
}

static void print_side(const char *name, double gbs, const sample *m,
                       enum transport tr)
{
    if (tr == T_TCP)
        printf("%s %.2f GB/s (w %.3fs r %.3fs cpu, %.3fs wall, %s)", name,
               gbs, m->cpu_w, m->cpu_r, m->wall, limit_of(m));
    else
        printf("%s %.2f GB/s (w %.3fs r %.3fs steps in one thread, %.3fs "
               "wall)", name, gbs, m->cpu_w, m->cpu_r, m->wall);
}

static void print_row(const row *rw)
{
    printf("%-4s %-9s %5s: ", transport_names[rw->tr],
           proto_names[rw->proto], size_name(rw->size));
    print_side("baseline", rw->base_gbs, &rw->base_med, rw->tr);
    printf(", ");
    print_side("strata", rw->strata_gbs, &rw->strata_med, rw->tr);
    if (rw->tr == T_PIPE)
        printf(", ratio %.3f (cpu view, no goal)\n", rw->ratio);
    else
        printf(", ratio %.3f (goal >= %.2f %s)\n", rw->ratio, rw->goal,
               rw->ratio >= rw->goal ? "met" : "MISSED");
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_framing [options]\n"
            "\n"
            "Throughput of strata's lenprefix and line layers against plain\n"
            "bytes, over loopback TCP (plain write()/read() baseline) and\n"
            "through the in-memory pipe pair (raw strata_send/strata_recv\n"
            "baseline), for records of 64 KiB, 1 KiB and 64 B. Prints the\n"
            "median GB/s of each side, the ratio of the medians and each\n"
            "side's CPU time.\n"
            "Goals: ratio >= 0.95 for 64 KiB records, >= 0.5 for small ones.\n"
            "\n"
            "  --quick   short smoke run (3 reps of 32 MiB, a few seconds)\n"
            "  --reps N  measurements per side and row, interleaved (7)\n"
            "  --mib N   MiB of records per measurement (256)\n"
            "  --verbose print every measurement, not only the medians\n"
            "  --tcp     only the loopback TCP rows; --pipe: only the pipe's\n"
            "  --size N  only records of N bytes (16..65536)\n"
            "  --lenprefix, --line  only that protocol's rows\n"
            "  --rbuf N  receiver's buffered stream of N KiB (>= 64; 64)\n"
            "  --no-pin  let the scheduler place the TCP writer and reader\n"
            "            (default: pinned to the first two usable cpus)\n"
            "  --help    this text\n"
            "\n"
            "Exit code 0 whatever the goals; 1 if a transfer failed or\n"
            "delivered wrong data.\n");
}

static unsigned parse_count(const char *s, unsigned max)
{
    char *end;
    unsigned long v = s != NULL ? strtoul(s, &end, 10) : 0;

    if (s == NULL || *end != '\0' || v == 0 || v > max) {
        usage(stderr);
        exit(2);
    }
    return (unsigned)v;
}

static void parse_args(int argc, char **argv, options *o)
{
    o->reps = 7;
    o->mib = 256;
    o->quick = 0;
    o->verbose = 0;
    o->only = -1;
    o->size = 0;
    o->proto = -1;
    o->pin = 1;
    o->rbuf_kib = RBUF_CAP / KIB;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->quick = 1;
            o->reps = 3;
            o->mib = 32;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            o->verbose = 1;
        } else if (strcmp(argv[i], "--size") == 0) {
            o->size = parse_count(i + 1 < argc ? argv[++i] : NULL, 64 * KIB);
            if (o->size < 2 * STAMP_LEN) {
                usage(stderr);
                exit(2);
            }
        } else if (strcmp(argv[i], "--lenprefix") == 0) {
            o->proto = P_LENPREFIX;
        } else if (strcmp(argv[i], "--line") == 0) {
            o->proto = P_LINE;
        } else if (strcmp(argv[i], "--rbuf") == 0) {
            /* at least 64 KiB: line's max_len needs 64 KiB of buffer */
            o->rbuf_kib = parse_count(i + 1 < argc ? argv[++i] : NULL, 65536);
            if (o->rbuf_kib < RBUF_CAP / KIB) {
                usage(stderr);
                exit(2);
            }
        } else if (strcmp(argv[i], "--no-pin") == 0) {
            o->pin = 0;
        } else if (strcmp(argv[i], "--tcp") == 0) {
            o->only = T_TCP;
        } else if (strcmp(argv[i], "--pipe") == 0) {
            o->only = T_PIPE;
        } else if (strcmp(argv[i], "--reps") == 0) {
            o->reps = parse_count(i + 1 < argc ? argv[++i] : NULL, MAX_REPS);
        } else if (strcmp(argv[i], "--mib") == 0) {
            o->mib = parse_count(i + 1 < argc ? argv[++i] : NULL, 4096);
        } else {
            usage(stderr);
            exit(2);
        }
    }
}

/* ---- main ---- */

static void print_summary(const row *rows, int n)
{
    printf("\nsummary (ratio of medians, strata / baseline):\n");
    for (int t = T_TCP; t <= T_PIPE; t++) {
        int met = 0, rows_t = 0;

        for (int i = 0; i < n; i++) {
            const row *rw = &rows[i];
            int ok = rw->ratio >= rw->goal;

            if (rw->tr != (enum transport)t)
                continue;
            rows_t++;
            met += ok;
            if (t == T_PIPE)
                printf("  %-4s %-9s %5s  %.3f  (cpu view, no goal)\n",
                       transport_names[rw->tr], proto_names[rw->proto],
                       size_name(rw->size), rw->ratio);
            else
                printf("  %-4s %-9s %5s  %.3f  goal >= %.2f  %s\n",
                       transport_names[rw->tr], proto_names[rw->proto],
                       size_name(rw->size), rw->ratio, rw->goal,
                       ok ? "met" : "MISSED");
        }
        /* The pipe baseline is two memcpy per byte and nothing else: its
         * ratios magnify the layers' cpu cost; the goals are about a real
         * transport. */
        if (rows_t > 0 && t == T_TCP)
            printf("  %s: %d of %d goals met\n", transport_names[t], met,
                   rows_t);
    }
}

/* One row per transport and protocol for each record size. */
static int run_rows(const bench *b, row *rows, int *n)
{
    size_t nsizes = sizeof record_sizes / sizeof *record_sizes;

    for (size_t z = 0; z < nsizes; z++) {
        size_t size = b->opt.size != 0 ? b->opt.size : record_sizes[z];

        if (b->opt.size != 0 && z > 0)
            break;
        printf("\n== records of %s ==\n", size_name(size));
        for (int t = T_TCP; t <= T_PIPE; t++) {
            if (b->opt.only >= 0 && t != b->opt.only)
                continue;
            for (int p = P_LENPREFIX; p <= P_LINE; p++) {
                if (b->opt.proto >= 0 && p != b->opt.proto)
                    continue;
                row *rw = &rows[(*n)++];

                rw->tr = (enum transport)t;
                rw->proto = (enum proto)p;
                rw->size = size;
                if (measure_row(rw, b) != 0)
                    return -1;
                print_row(rw);
            }
        }
    }
    return 0;
}

/* Other processes on the machine take cpu from one side or both: the
 * 1-minute load average before the run says whether they were busy. */
static double load_now(void)
{
    double l[1];

    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

static int optimized(void)
{
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}

/* Each side on its own cpu (the first two this process may use): left to
 * the scheduler, the two threads share a core in some runs and not in
 * others, which moves loopback throughput by up to 2x between otherwise
 * identical runs. */
static void choose_cpus(bench *b)
{
    cpu_set_t set;
    int k = 0;

    b->cpu[0] = b->cpu[1] = -1;
    if (!b->opt.pin || sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &set))
            b->cpu[k++] = c;
    if (k < 2)
        b->cpu[0] = b->cpu[1] = -1;
}

static void print_header(const bench *b)
{
    char pinned[64] = "";
    double load = load_now();

    if (b->cpu[0] >= 0)
        snprintf(pinned, sizeof pinned, " (tcp writer on cpu %d, reader on "
                 "cpu %d)", b->cpu[0], b->cpu[1]);
    printf("bench_framing: %u reps x %u MiB per side and row, %ld cpus%s, "
           "reader buffered %u KiB, median GB/s (1 GB = 1e9 bytes)%s\n",
           b->opt.reps, b->opt.mib, sysconf(_SC_NPROCESSORS_ONLN), pinned,
           b->opt.rbuf_kib, b->opt.quick ? ", quick smoke run" : "");
    printf("build: %s%s; load average before the run %.2f%s\n",
           BENCH_BUILD_TYPE,
           optimized() ? "" : " (this file unoptimized: numbers are "
                              "not meaningful)",
           load, load > 0.5 ? " (other processes compete for the cpus: "
                              "expect noise)" : "");
}

int main(int argc, char **argv)
{
    bench b;
    row rows[12];
    int n = 0;

    parse_args(argc, argv, &b.opt);
    signal(SIGPIPE, SIG_IGN); /* a dead peer is an error, not a kill */
    b.lfd = strata_tcp_listen("127.0.0.1", "0", 16);
    b.port = b.lfd >= 0 ? strata_local_port(b.lfd) : -1;
    if (b.port < 0)
        die("cannot listen on 127.0.0.1");
    choose_cpus(&b);
    print_header(&b);
    if (run_rows(&b, rows, &n) != 0)
        return 1;
    print_summary(rows, n);
    close(b.lfd);
    return 0;
}
