/* bench_grpc_server: strata's side of bench/grpc (see bench/README.md,
 * "gRPC"): the service of bench.proto on adapters/grpc_server.h, written
 * as a user of strata would write it, with the defaults.
 *
 *   /bench.Bench/Echo    a Msg in, the same data back, OK;
 *   /bench.Bench/Stream  a StreamRequest in, then count Msg of size bytes
 *                        (at most 64 KiB each), then OK.
 * Messages go through adapters/protobuf.h (protobuf-c pack and unpack).
 *
 * One thread, one event loop, cleartext HTTP/2 with prior knowledge on
 * 127.0.0.1. It prints "port=P build=TYPE" once listening and serves until
 * killed. With --stats FILE it rewrites FILE every 50 ms when something
 * changed with "conns=N calls=M heap=B": the open connections and calls
 * the server counts, and the bytes malloc has handed out (mallinfo2: the
 * whole process, nghttp2 included), so the benchmark can wait until N idle
 * calls are really open before it reads the memory they cost.
 */
#include <strata/grpc.h>
#include <strata/grpc_server.h>
#include <strata/loop.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/stream.h>

#include "bench.pb-c.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

#define MAX_STREAM_MSG (64u * 1024u) /* largest Stream message */
#define SEND_BUDGET 64          /* Stream messages per handler run */
#define STATS_MS 50
#define BACKLOG 1024            /* the idle-connection test connects fast */

static uint8_t filler[MAX_STREAM_MSG]; /* what Stream messages carry */

/* What a call goes through; FINISH retries strata_grpc_finish after NEED. */
enum stage { READ_REQ, SEND, FINISH, DONE };

typedef struct call_state {
    enum stage stage;
    strata_pb_buf in, out;
    uint32_t left;              /* Stream: messages still to pack */
    size_t size;                /* Stream: bytes of data in each */
    int status;                 /* what FINISH sends */
    const char *message;
} call_state;

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static void fail_call(call_state *st, int status, const char *message)
{
    st->stage = FINISH;
    st->status = status;
    st->message = message;
}

/* Receive the request; 0 and *m, NEED_*, or 1 when the call now ends
 * (the stage says how). */
static int read_request(strata_stream *call, call_state *st,
                        const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **m)
{
    int r = strata_pb_recv(call, &st->in, d, m);

    if (r == 0 || is_need(r))
        return r;
    if (r == STRATA_EOF)
        fail_call(st, STRATA_GRPC_INVALID_ARGUMENT, "no request message");
    else if (r == STRATA_ERR_PROTO)
        fail_call(st, STRATA_GRPC_INVALID_ARGUMENT, "bad request message");
    else
        st->stage = DONE;   /* the call layer answered or the call is gone */
    return 1;
}

/* FINISH: end the call with the status chosen. */
static void finish(strata_stream *call, call_state *st)
{
    int r = strata_grpc_finish(call, st->status, st->message, NULL, 0);

    if (!is_need(r))
        st->stage = DONE;
}

static void echo_run(strata_stream *call, call_state *st)
{
    if (st->stage == READ_REQ) {
        ProtobufCMessage *m;
        Bench__Msg reply = BENCH__MSG__INIT;
        int r = read_request(call, st, &bench__msg__descriptor, &m);

        if (r != 0)
            goto next;
        reply.data = ((Bench__Msg *)m)->data;   /* packed here: no copy */
        r = strata_pb_send(call, &st->out, &reply.base);
        strata_pb_free(m, NULL);
        st->stage = SEND;
        if (r != 0 && !is_need(r))
            st->stage = DONE;
        if (r != 0)
            return;
        fail_call(st, STRATA_GRPC_OK, NULL);
    } else if (st->stage == SEND) {
        int r = strata_pb_flush(call, &st->out);

        if (is_need(r))
            return;
        if (r != 0) {
            st->stage = DONE;
            return;
        }
        fail_call(st, STRATA_GRPC_OK, NULL);
    }
next:
    if (st->stage == FINISH)
        finish(call, st);
}

/* Pack and send up to SEND_BUDGET messages; 0 when all went, 1 when the
 * budget ran out, NEED_*, or an error. */
static int stream_send(strata_stream *call, call_state *st)
{
    Bench__Msg msg = BENCH__MSG__INIT;
    int r;

    msg.data.data = filler;
    msg.data.len = st->size;
    for (int i = 0; i < SEND_BUDGET; i++) {
        if (st->out.off != st->out.len
            && (r = strata_pb_flush(call, &st->out)) != 0)
            return r;
        if (st->left == 0)
            return 0;
        st->left--;
        if ((r = strata_pb_send(call, &st->out, &msg.base)) != 0)
            return r;
    }
    return 1;
}

static void stream_run(strata_stream *call, call_state *st)
{
    int r;

    if (st->stage == READ_REQ) {
        ProtobufCMessage *m;
        const Bench__StreamRequest *q;

        if (read_request(call, st, &bench__stream_request__descriptor, &m)
            != 0)
            goto next;
        q = (const Bench__StreamRequest *)m;
        st->left = q->count;
        st->size = q->size;
        strata_pb_free(m, NULL);
        st->stage = SEND;
        if (st->size > MAX_STREAM_MSG)
            fail_call(st, STRATA_GRPC_INVALID_ARGUMENT, "size over 64 KiB");
    }
    if (st->stage == SEND) {
        r = stream_send(call, st);
        if (r == 1) {
            strata_grpc_server_wake(call); /* let other calls run too */
            return;
        }
        if (is_need(r))
            return;
        if (r == 0)
            fail_call(st, STRATA_GRPC_OK, NULL);
        else
            st->stage = DONE;
    }
next:
    if (st->stage == FINISH)
        finish(call, st);
}

static void state_free(call_state *st)
{
    strata_pb_buf_free(&st->in);
    strata_pb_buf_free(&st->out);
    free(st);
}

/* The events every route shares; run is the method's own step. */
static void handle(strata_stream *call, int event,
                   void (*run)(strata_stream *, call_state *))
{
    call_state *st = strata_grpc_user(call);

    if (event == STRATA_GRPC_EV_END) {
        if (st)
            state_free(st);
        strata_grpc_set_user(call, NULL);
        return;
    }
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) {
            (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                     "out of memory", NULL, 0);
            return;
        }
        strata_pb_buf_init(&st->in, NULL);
        strata_pb_buf_init(&st->out, NULL);
        strata_grpc_set_user(call, st);
    }
    if (st->stage != DONE)
        run(call, st);
}

static void on_echo(strata_stream *call, int event, void *ud)
{
    (void)ud;
    handle(call, event, echo_run);
}

static void on_stream(strata_stream *call, int event, void *ud)
{
    (void)ud;
    handle(call, event, stream_run);
}

/* ---- --stats ----------------------------------------------------------- */

typedef struct stats {
    const char *path;
    strata_grpc_server *server;
    size_t conns, calls, heap;
    int written;
} stats;

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static void stats_tick(strata_loop *loop, void *ud)
{
    stats *s = ud;
    size_t conns = strata_grpc_server_connections(s->server);
    size_t calls = strata_grpc_server_calls(s->server);
    size_t heap = heap_bytes();

    if (!s->written || conns != s->conns || calls != s->calls
        || heap != s->heap) {
        char line[128], tmp[4096];
        int n = snprintf(line, sizeof line, "conns=%zu calls=%zu heap=%zu\n",
                         conns, calls, heap);
        int fd;

        /* written whole, then renamed: a reader never sees half a line */
        snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            if (write(fd, line, (size_t)n) == n)
                (void)rename(tmp, s->path);
            close(fd);
        }
        s->conns = conns, s->calls = calls, s->heap = heap;
        s->written = 1;
    }
    if (!strata_loop_timer(loop, STATS_MS, stats_tick, s))
        fprintf(stderr, "bench_grpc_server: cannot arm the stats timer\n");
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    puts("usage: bench_grpc_server [--stats FILE]\n"
         "The strata gRPC server of bench/grpc (bench.proto's Bench service)\n"
         "on 127.0.0.1; prints \"port=P build=B\". See bench/README.md, "
         "\"gRPC\".");
}

int main(int argc, char **argv)
{
    static const strata_grpc_route routes[] = {
        {"/bench.Bench/Echo", on_echo, NULL},
        {"/bench.Bench/Stream", on_stream, NULL},
    };
    strata_grpc_server_opts o;
    strata_grpc_server *server;
    strata_loop *loop;
    stats st;
    int fd, port;

    memset(&st, 0, sizeof st);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc) {
            st.path = argv[++i];
        } else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    memset(filler, 'x', sizeof filler);
    signal(SIGPIPE, SIG_IGN);
    fd = strata_tcp_listen("127.0.0.1", "0", BACKLOG);
    loop = strata_loop_new(NULL);
    if (fd < 0 || !loop) {
        fprintf(stderr, "bench_grpc_server: cannot listen on 127.0.0.1\n");
        return 1;
    }
    memset(&o, 0, sizeof o);
    o.routes = routes;
    o.n_routes = sizeof routes / sizeof routes[0];
    port = strata_local_port(fd);
    server = strata_grpc_server_new(loop, fd, &o, NULL);
    if (!server) {
        fprintf(stderr, "bench_grpc_server: cannot start the server\n");
        return 1;
    }
    printf("port=%d build=%s\n", port, BENCH_BUILD_TYPE);
    if (st.path) {
        st.server = server;
        stats_tick(loop, &st);
    }
    fflush(stdout);
    strata_loop_run(loop);
    strata_grpc_server_free(server);
    strata_loop_free(loop);
    return 0;
}
