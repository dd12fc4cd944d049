/* bench_grpc_client: strata's gRPC client of bench/grpc (see
 * bench/README.md, "gRPC"); bench/grpc/run.sh runs one measurement per
 * process, against strata's server and the C++ one alike.
 *
 *   bench_grpc_client unary PORT CONNS INFLIGHT SECS
 *       CONNS connections, each keeping INFLIGHT Echo calls open: a call
 *       sends its 10-byte Msg (a sequence stamp in it) and half-closes,
 *       the answer must carry the same bytes and end with status OK; a
 *       new call replaces each one that ends. An untimed warm-up of 0.3 s,
 *       then SECS seconds: "ok calls=N secs=S cpu=C".
 *   bench_grpc_client stream PORT COUNT SIZE [CALLS [WINDOW]]
 *       one connection, CALLS (default 1) Stream calls at once, each asking
 *       for COUNT messages of SIZE bytes and checking every one's size, the
 *       count and status OK; WINDOW is the stream and connection receive
 *       window (default: strata's, 64 KiB per stream). An untimed warm-up
 *       call first: "ok msgs=N bytes=B secs=S cpu=C".
 *   bench_grpc_client idle PORT CONNS CALLS [HOLD]
 *       CONNS connections with CALLS Echo calls each that send nothing
 *       (their request heads went, no message): prints "ready conns=N
 *       calls=M" once every head is written, then holds them, answering
 *       the server's frames, for HOLD seconds (default 120) or until
 *       killed. With CALLS 0, idle connections.
 * Every call goes through protos/grpc.h and adapters/protobuf.h (protobuf-c
 * pack and unpack), the stack a user of strata would write:
 * call -> h2 stream -> h2 -> socket, one thread, poll() on the
 * connections, strata_h2_ready naming the calls that may move. A failure
 * prints "failed: why" and exits 1.
 */
#include <strata/grpc.h>
#include <strata/h2.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/stream.h>

#include "bench.pb-c.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define WAIT_MS 30000           /* a stalled run fails instead of hanging */
#define WARM_SECS 0.3
#define DRIVES 64               /* drives of a connection per round */
#define REQ_LEN 10              /* Echo's data: as h2load's request */
#define MAX_CONNS 4096

_Noreturn static void fail(const char *what, long code)
{
    if (code)
        printf("failed: %s: %s\n", what, strata_strerror((int)code));
    else
        printf("failed: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (!p)
        fail("out of memory", 0);
    return p;
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* ---- connections ---------------------------------------------------------- */

typedef struct run run;
typedef struct conn conn;

enum kind { ECHO, STREAM };
enum stage { SEND, HALF_CLOSE, RECV, IDLE };

/* One call slot: a call, and the next one when it ends. */
typedef struct slot {
    conn *c;
    strata_stream *call;        /* NULL between calls */
    enum stage stage;
    strata_pb_buf in, out;
    uint64_t seq;               /* ECHO: the stamp sent */
    uint64_t msgs;              /* STREAM: messages received */
} slot;

struct conn {
    run *r;
    strata_h2 *h;
    slot *slots;
    unsigned n_slots;
};

struct run {
    enum kind kind;
    const char *port;
    char authority[64];
    conn *conns;
    unsigned n_conns;
    int starting;               /* new calls may start */
    unsigned active;            /* calls open */
    uint64_t calls, msgs, bytes, next_seq;
    uint32_t count, size;       /* STREAM: what each call asks for */
};

static strata_h2 *h2_connect(const char *port, uint32_t window)
{
    strata_h2_opts o;
    strata_stream *sock;
    strata_h2 *h;
    int r;

    if ((r = strata_tcp_connect("127.0.0.1", port, NULL, &sock)) != 0)
        fail("cannot connect", r);
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_CLIENT;
    o.stream_window = window;
    o.connection_window = window;
    h = strata_h2_new(sock, &o, NULL);
    if (!h)
        fail("h2: cannot start", 0);
    return h;
}

static void conns_open(run *r, unsigned n_conns, unsigned n_slots,
                       uint32_t window)
{
    if (n_conns == 0 || n_conns > MAX_CONNS)
        fail("CONNS must be 1..4096", 0);
    snprintf(r->authority, sizeof r->authority, "127.0.0.1:%s", r->port);
    r->n_conns = n_conns;
    r->conns = xcalloc(n_conns, sizeof *r->conns);
    for (unsigned i = 0; i < n_conns; i++) {
        conn *c = &r->conns[i];

        c->r = r;
        c->h = h2_connect(r->port, window);
        c->n_slots = n_slots;
        c->slots = n_slots ? xcalloc(n_slots, sizeof *c->slots) : NULL;
        for (unsigned k = 0; k < n_slots; k++) {
            c->slots[k].c = c;
            strata_pb_buf_init(&c->slots[k].in, NULL);
            strata_pb_buf_init(&c->slots[k].out, NULL);
        }
    }
}

static void conns_close(run *r)
{
    for (unsigned i = 0; i < r->n_conns; i++) {
        conn *c = &r->conns[i];

        for (unsigned k = 0; k < c->n_slots; k++) {
            strata_free(c->slots[k].call);
            strata_pb_buf_free(&c->slots[k].in);
            strata_pb_buf_free(&c->slots[k].out);
        }
        free(c->slots);
        strata_h2_free(c->h);
    }
    free(r->conns);
    r->conns = NULL;
    r->n_conns = 0;
}

/* ---- calls ------------------------------------------------------------------- */

static int call_open(slot *s, const char *path)
{
    strata_grpc_opts o;
    int r;

    memset(&o, 0, sizeof o);
    o.path = path;
    o.authority = s->c->r->authority;
    r = strata_grpc_call(s->c->h, &o, NULL, &s->call);
    if (r != 0)
        return r;
    /* the connection names the h2 stream when the call may move */
    strata_h2_set_user(strata_grpc_h2_stream(s->call), s);
    s->c->r->active++;
    s->msgs = 0;
    return 0;
}

static void echo_data(uint8_t out[REQ_LEN], uint64_t seq)
{
    memcpy(out, "hello gRPC", REQ_LEN);
    memcpy(out, &seq, sizeof seq);
}

/* Open the slot's next call and send its request. */
static int call_start(slot *s)
{
    run *r = s->c->r;
    int rc;

    if (r->kind == ECHO) {
        Bench__Msg m = BENCH__MSG__INIT;
        uint8_t data[REQ_LEN];

        if ((rc = call_open(s, "/bench.Bench/Echo")) != 0)
            return rc;
        s->seq = r->next_seq++;
        echo_data(data, s->seq);
        m.data.data = data;
        m.data.len = REQ_LEN;
        rc = strata_pb_send(s->call, &s->out, &m.base);
    } else {
        Bench__StreamRequest q = BENCH__STREAM_REQUEST__INIT;

        if ((rc = call_open(s, "/bench.Bench/Stream")) != 0)
            return rc;
        q.count = r->count;
        q.size = r->size;
        rc = strata_pb_send(s->call, &s->out, &q.base);
    }
    s->stage = rc == 0 ? HALF_CLOSE : SEND;
    return is_need(rc) ? 0 : rc;
}

static void check_answer(slot *s, ProtobufCMessage *pm)
{
    const Bench__Msg *m = (const Bench__Msg *)pm;
    run *r = s->c->r;

    if (r->kind == ECHO) {
        uint8_t want[REQ_LEN];

        echo_data(want, s->seq);
        if (m->data.len != REQ_LEN || memcmp(m->data.data, want, REQ_LEN))
            fail("Echo answered other bytes", 0);
        if (s->msgs > 0)
            fail("Echo answered more than one message", 0);
    } else if (m->data.len != r->size) {
        fail("Stream sent a message of another size", 0);
    }
    s->msgs++;
    r->bytes += m->data.len;
}

/* The call ended with this recv status: check it, free the call. */
static void call_end(slot *s, int rc)
{
    run *r = s->c->r;
    uint64_t want = r->kind == ECHO ? 1 : r->count;

    if (rc != STRATA_EOF) {
        if (rc == STRATA_ERR_GRPC) {
            printf("failed: call ended with %s: %s\n",
                   strata_grpc_status_name(strata_grpc_status(s->call)),
                   strata_grpc_message(s->call));
            exit(1);
        }
        fail("call", rc);
    }
    if (strata_grpc_status(s->call) != STRATA_GRPC_OK)
        fail("call ended without status OK", 0);
    if (s->msgs != want)
        fail("call ended with too few messages", 0);
    strata_free(s->call);
    s->call = NULL;
    r->active--;
    r->calls++;
    r->msgs += s->msgs;
}

/* Move a call on until it waits; starts the next one when it ends. */
static void call_run(slot *s)
{
    for (;;) {
        int rc = 0;

        if (!s->call) {
            if (!s->c->r->starting || s->c->r->kind == STREAM)
                return;
            if ((rc = call_start(s)) != 0)
                fail("cannot start a call", rc);
            continue;
        }
        switch (s->stage) {
        case SEND:
            rc = strata_pb_flush(s->call, &s->out);
            if (rc == 0)
                s->stage = HALF_CLOSE;
            break;
        case HALF_CLOSE:
            rc = strata_shutdown(s->call);
            if (rc == 0)
                s->stage = RECV;
            break;
        case RECV: {
            ProtobufCMessage *m;

            rc = strata_pb_recv(s->call, &s->in, &bench__msg__descriptor, &m);
            if (rc == 0) {
                check_answer(s, m);
                strata_pb_free(m, NULL);
            } else if (!is_need(rc)) {
                call_end(s, rc);
                rc = 0;
            }
            break;
        }
        case IDLE:
            return;
        }
        if (is_need(rc))
            return;
        if (rc != 0)
            fail("call", rc);
    }
}

/* One round of a connection: read what came, move the calls it names. */
static void conn_round(conn *c)
{
    strata_stream *st;
    int r = 0, f;

    strata_h2_cork(c->h, 1);    /* this round's frames share writes */
    for (int i = 0; i < DRIVES && (r = strata_h2_drive(c->h)) == 0; i++)
        ;
    if (r != 0 && !is_need(r))
        fail("connection", r);
    while ((st = strata_h2_ready(c->h)) != NULL) {
        slot *s = strata_h2_user(st);

        if (s)
            call_run(s);
    }
    f = strata_h2_cork(c->h, 0);
    if (f != 0 && !is_need(f))
        fail("connection (write)", f);
}

/* Wait until some connection may move. */
static void conns_wait(run *r, int timeout_ms)
{
    static struct pollfd pf[MAX_CONNS];
    int n;

    for (unsigned i = 0; i < r->n_conns; i++) {
        unsigned w = strata_h2_wants(r->conns[i].h) | STRATA_WANT_READ;

        pf[i].fd = strata_h2_fd(r->conns[i].h);
        pf[i].events = (short)(POLLIN | (w & STRATA_WANT_WRITE ? POLLOUT : 0));
        pf[i].revents = 0;
    }
    n = poll(pf, r->n_conns, timeout_ms);
    if (n == 0 && timeout_ms == WAIT_MS)
        fail("nothing moved for 30 s", 0);
}

/* Every connection's round, then a wait, until the deadline passed and
 * no call is open (or, for IDLE slots, until the deadline). */
static void run_until(run *r, double deadline)
{
    for (;;) {
        for (unsigned i = 0; i < r->n_conns; i++)
            conn_round(&r->conns[i]);
        if (now_s() >= deadline) {
            r->starting = 0;
            if (r->active == 0 || r->kind == STREAM)
                break;
        }
        conns_wait(r, WAIT_MS);
    }
}

/* ---- modes ------------------------------------------------------------------- */

static int run_unary(const char *port, unsigned n_conns, unsigned inflight,
                     double secs)
{
    run r;
    double t0, t1, c0;
    uint64_t calls0;

    if (inflight == 0)
        fail("INFLIGHT must be > 0", 0);
    memset(&r, 0, sizeof r);
    r.kind = ECHO;
    r.port = port;
    conns_open(&r, n_conns, inflight, 0);
    r.starting = 1;
    /* a slot with no call starts one in its first round */
    for (unsigned i = 0; i < n_conns; i++)
        for (unsigned k = 0; k < inflight; k++)
            call_run(&r.conns[i].slots[k]);
    run_until(&r, now_s() + WARM_SECS);
    calls0 = r.calls;
    r.starting = 1;
    for (unsigned i = 0; i < n_conns; i++)
        for (unsigned k = 0; k < inflight; k++)
            call_run(&r.conns[i].slots[k]);
    c0 = cpu_s();
    t0 = now_s();
    run_until(&r, t0 + secs);
    t1 = now_s();
    printf("ok calls=%llu secs=%.6f cpu=%.4f\n",
           (unsigned long long)(r.calls - calls0), t1 - t0, cpu_s() - c0);
    conns_close(&r);
    return 0;
}

/* Run n_calls Stream calls of count messages on one connection until all
 * ended. */
static void stream_calls(run *r, unsigned n_calls, uint32_t count)
{
    conn *c = &r->conns[0];

    r->count = count;
    for (unsigned k = 0; k < n_calls; k++) {
        int rc = call_start(&c->slots[k]);

        if (rc != 0)
            fail("cannot start a call", rc);
        call_run(&c->slots[k]);
    }
    while (r->active > 0) {
        conn_round(c);
        if (r->active > 0)
            conns_wait(r, WAIT_MS);
    }
}

static int run_stream(const char *port, uint32_t count, uint32_t size,
                      unsigned n_calls, uint32_t window)
{
    run r;
    double t0, t1, c0;

    if (n_calls == 0 || count == 0)
        fail("COUNT and CALLS must be > 0", 0);
    memset(&r, 0, sizeof r);
    r.kind = STREAM;
    r.port = port;
    r.size = size;
    conns_open(&r, 1, n_calls, window);
    stream_calls(&r, n_calls, count / 10 + 1);  /* warm-up */
    r.msgs = r.bytes = 0;
    c0 = cpu_s();
    t0 = now_s();
    stream_calls(&r, n_calls, count);
    t1 = now_s();
    printf("ok msgs=%llu bytes=%llu secs=%.6f cpu=%.4f\n",
           (unsigned long long)r.msgs, (unsigned long long)r.bytes, t1 - t0,
           cpu_s() - c0);
    conns_close(&r);
    return 0;
}

static int run_idle(const char *port, unsigned n_conns, unsigned n_calls,
                    double hold)
{
    run r;
    double end;
    unsigned opened = 0;

    memset(&r, 0, sizeof r);
    r.kind = ECHO;
    r.port = port;
    conns_open(&r, n_conns, n_calls, 0);
    for (unsigned i = 0; i < n_conns; i++) {
        conn *c = &r.conns[i];

        for (unsigned k = 0; k < n_calls; k++) {
            int rc = call_open(&c->slots[k], "/bench.Bench/Echo");

            if (rc != 0)
                fail("cannot open an idle call", rc);
            c->slots[k].stage = IDLE;
            opened++;
        }
    }
    /* every head written: drive until no connection wants to write */
    for (;;) {
        int busy = 0;

        for (unsigned i = 0; i < n_conns; i++) {
            conn_round(&r.conns[i]);
            busy |= (strata_h2_wants(r.conns[i].h) & STRATA_WANT_WRITE) != 0;
        }
        if (!busy)
            break;
        conns_wait(&r, WAIT_MS);
    }
    printf("ready conns=%u calls=%u\n", n_conns, opened);
    fflush(stdout);
    end = now_s() + hold;
    while (now_s() < end) {
        for (unsigned i = 0; i < n_conns; i++)
            conn_round(&r.conns[i]);
        conns_wait(&r, 1000);
    }
    conns_close(&r);
    return 0;
}

static void usage(void)
{
    puts("usage: bench_grpc_client unary PORT CONNS INFLIGHT SECS\n"
         "       bench_grpc_client stream PORT COUNT SIZE [CALLS [WINDOW]]\n"
         "       bench_grpc_client idle PORT CONNS CALLS [HOLD]\n"
         "One measurement against a server of bench.proto's Bench service;\n"
         "run by bench/grpc/run.sh (see bench/README.md, \"gRPC\").");
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "unary") == 0)
        return run_unary(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
                         (unsigned)strtoul(argv[4], NULL, 10),
                         strtod(argv[5], NULL));
    if (argc >= 5 && strcmp(argv[1], "stream") == 0)
        return run_stream(argv[2], (uint32_t)strtoul(argv[3], NULL, 10),
                          (uint32_t)strtoul(argv[4], NULL, 10),
                          argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 1,
                          argc > 6 ? (uint32_t)strtoul(argv[6], NULL, 10)
                                   : 0);
    if (argc >= 5 && strcmp(argv[1], "idle") == 0)
        return run_idle(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
                        (unsigned)strtoul(argv[4], NULL, 10),
                        argc > 5 ? strtod(argv[5], NULL) : 120.0);
    usage();
    return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
