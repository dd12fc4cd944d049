/* interop_server: gRPC's interop test service (grpc.testing.TestService)
 * on strata's gRPC server (adapters/grpc_server.h), for the interop tests
 * against other gRPC implementations' clients.
 *
 *   interop_server --port=P [--use_tls=true --tls_cert_file=F
 *                  --tls_key_file=F]
 *
 * It serves what gRPC's interop test descriptions ask of a server:
 * EmptyCall, UnaryCall, StreamingOutputCall, StreamingInputCall,
 * FullDuplexCall and HalfDuplexCall, with Echo Status (a request's
 * response_status ends the call with that status), Echo Metadata
 * ("x-grpc-test-echo-initial" back in the response head,
 * "x-grpc-test-echo-trailing-bin" in the trailers) and interval_us (a
 * loop timer before the response, never a sleep: other calls go on).
 * Unknown methods are UNIMPLEMENTED from the server framework.
 *
 * It listens on 127.0.0.1. With --port=0 the port picked is printed on
 * stdout as "listening on port P" (otherwise on stderr), for test drivers.
 * SIGINT / SIGTERM end it cleanly (everything freed, exit 0).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/grpc.h>
#include <strata/grpc_server.h>
#include <strata/loop.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/tls.h>

#include "empty.pb-c.h"
#include "messages.pb-c.h"

#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"
#define MAX_PAYLOAD (4 * 1024 * 1024 - 64) /* a response fits max_send */

typedef Grpc__Testing__SimpleRequest SimpleRequest;
typedef Grpc__Testing__StreamingOutputCallRequest OutputRequest;
typedef Grpc__Testing__StreamingInputCallRequest InputRequest;
typedef Grpc__Testing__EchoStatus EchoStatus;

enum kind { EMPTY, UNARY, OUTPUT, INPUT, DUPLEX, HALF_DUPLEX };

typedef struct method {
    enum kind kind;
    const ProtobufCMessageDescriptor *request;
} method;

static const method m_empty = {EMPTY, &grpc__testing__empty__descriptor};
static const method m_unary = {UNARY,
                               &grpc__testing__simple_request__descriptor};
static const method m_output = {
    OUTPUT, &grpc__testing__streaming_output_call_request__descriptor};
static const method m_input = {
    INPUT, &grpc__testing__streaming_input_call_request__descriptor};
static const method m_duplex = {
    DUPLEX, &grpc__testing__streaming_output_call_request__descriptor};
static const method m_half = {
    HALF_DUPLEX, &grpc__testing__streaming_output_call_request__descriptor};

/* One response still to send: its payload size and the pause before it. */
typedef struct pending {
    int32_t size;
    int32_t interval_us;
} pending;

/* A call's progress. The handler runs step() until it has to wait: for the
 * connection (a NEED code), for a timer (interval_us), or for the end. */
typedef struct call_state {
    strata_stream *call;
    const method *m;
    strata_pb_buf in, out;
    pending *queue;          /* responses to send, in order */
    size_t n, next, cap;
    unsigned long timer;     /* pending interval timer, 0 if none */
    int slept;               /* the interval of queue[next] has passed */
    int hold;                /* HalfDuplexCall: answer only after the end */
    int eof;                 /* the client half-closed */
    int head_pending;        /* echo metadata for the response head */
    int finishing, done;     /* finish with status/message, then nothing */
    int status;
    char *message;
    int32_t response_size;   /* UnaryCall's */
    int64_t aggregate;       /* StreamingInputCall's */
} call_state;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int push(call_state *st, int32_t size, int32_t interval_us)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        pending *q = realloc(st->queue, cap * sizeof *q);
        if (q == NULL)
            return -1;
        st->queue = q;
        st->cap = cap;
    }
    st->queue[st->n].size = size;
    st->queue[st->n].interval_us = interval_us;
    st->n++;
    return 0;
}

/* End the call with this status (once: a later reason does not replace
 * the first). */
static void finish_with(call_state *st, int status, const char *message)
{
    if (st->finishing)
        return;
    st->finishing = 1;
    st->status = status;
    free(st->message);
    st->message = strdup(message ? message : "");
}

/* Echo Status: a request naming a status ends the call with it and no
 * further request is served. */
static int echo_status(call_state *st, const EchoStatus *es)
{
    if (es == NULL || es->code == STRATA_GRPC_OK)
        return 0;
    finish_with(st, es->code, es->message);
    return 1;
}

/* Pack a message whose payload is size zero bytes and hand it to the call
 * (what the call did not take waits in st->out for step()). */
static int send_payload(call_state *st, int32_t size, int unary)
{
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    Grpc__Testing__SimpleResponse sr = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
    Grpc__Testing__StreamingOutputCallResponse so =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    const ProtobufCMessage *msg;
    int r;

    if (size < 0 || size > MAX_PAYLOAD) {
        finish_with(st, STRATA_GRPC_INVALID_ARGUMENT,
                    "response size out of range");
        return 0;
    }
    p.body.len = (size_t)size;
    p.body.data = calloc(1, (size_t)size + 1);
    if (p.body.data == NULL) {
        finish_with(st, STRATA_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    if (unary) {
        sr.payload = &p;
        msg = &sr.base;
    } else {
        so.payload = &p;
        msg = &so.base;
    }
    r = strata_pb_send(st->call, &st->out, msg); /* packed: copied */
    free(p.body.data);
    return r;
}

static int send_empty(call_state *st)
{
    Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
    return strata_pb_send(st->call, &st->out, &e.base);
}

static int send_aggregate(call_state *st)
{
    Grpc__Testing__StreamingInputCallResponse r =
        GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    r.aggregated_payload_size = (int32_t)st->aggregate;
    return strata_pb_send(st->call, &st->out, &r.base);
}

static void on_request(call_state *st, ProtobufCMessage *msg)
{
    if (st->m->kind == UNARY) {
        SimpleRequest *r = (SimpleRequest *)msg;
        if (!echo_status(st, r->response_status))
            st->response_size = r->response_size;
    } else if (st->m->kind == INPUT) {
        InputRequest *r = (InputRequest *)msg;
        if (r->payload != NULL)
            st->aggregate += (int64_t)r->payload->body.len;
    } else if (st->m->kind != EMPTY) {
        OutputRequest *r = (OutputRequest *)msg;
        size_t i;
        if (echo_status(st, r->response_status))
            return;
        for (i = 0; i < r->n_response_parameters; i++)
            if (push(st, r->response_parameters[i]->size,
                     r->response_parameters[i]->interval_us) != 0)
                finish_with(st, STRATA_GRPC_RESOURCE_EXHAUSTED,
                            "out of memory");
    }
}

/* The client half-closed: the single-response methods answer now; the
 * streaming ones finish once their queue is empty (step()). */
static int on_eof(call_state *st)
{
    int r = 0;

    st->eof = 1;
    st->hold = 0;
    if (st->finishing)
        return 0;
    switch (st->m->kind) {
    case EMPTY: r = send_empty(st); break;
    case UNARY: r = send_payload(st, st->response_size, 1); break;
    case INPUT: r = send_aggregate(st); break;
    default: return 0;
    }
    finish_with(st, STRATA_GRPC_OK, NULL);
    return r;
}

static void interval_done(strata_loop *loop, void *ud)
{
    call_state *st = ud;

    (void)loop;
    st->timer = 0;
    st->slept = 1;
    strata_grpc_server_wake(st->call);
}

/* The next queued response: after its interval (a timer), then sent. */
static int send_next(call_state *st)
{
    pending *p = &st->queue[st->next];

    if (p->interval_us > 0 && !st->slept) {
        uint64_t ms = ((uint64_t)p->interval_us + 999) / 1000;
        st->timer = strata_loop_timer(strata_grpc_server_loop(st->call), ms,
                                      interval_done, st);
        if (st->timer == 0) {
            finish_with(st, STRATA_GRPC_RESOURCE_EXHAUSTED, "no timer");
            return 0;
        }
        return STRATA_NEED_READ; /* wait for the timer's wake */
    }
    st->slept = 0;
    st->next++;
    return send_payload(st, p->size, 0);
}

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* One piece of progress: 1 when something moved (call again), 0 when the
 * call waits (the connection, a timer, or its end). */
static int step(call_state *st)
{
    ProtobufCMessage *msg;
    int r;

    if (st->done || st->timer != 0)
        return 0;
    if (st->head_pending) {
        size_t len = 0;
        const void *v = strata_grpc_md_get(st->call, ECHO_INITIAL, &len);
        strata_grpc_md md = {ECHO_INITIAL, v, len};
        r = strata_grpc_send_head(st->call, &md, 1);
        if (is_need(r))
            return 0;
        st->head_pending = 0;
    }
    if (st->out.off != st->out.len) {
        r = strata_pb_flush(st->call, &st->out);
        if (r != 0)
            goto io;
    }
    if (st->finishing) {
        size_t len = 0;
        const void *v = strata_grpc_md_get(st->call, ECHO_TRAILING, &len);
        strata_grpc_md md = {ECHO_TRAILING, v, len};
        r = strata_grpc_finish(st->call, st->status, st->message, &md,
                               v != NULL ? 1 : 0);
        if (is_need(r))
            return 0;
        st->done = 1;
        return 0;
    }
    if (st->next < st->n && !st->hold) {
        r = send_next(st);
        if (r != 0)
            goto io;
        return 1;
    }
    if (!st->eof) {
        r = strata_pb_recv(st->call, &st->in, st->m->request, &msg);
        if (r == 0) {
            on_request(st, msg);
            strata_pb_free(msg, NULL);
            return 1;
        }
        if (r == STRATA_EOF)
            r = on_eof(st);
        if (r != 0)
            goto io;
        return 1;
    }
    finish_with(st, STRATA_GRPC_OK, NULL); /* streams answered, ended */
    return 1;
io:
    if (!is_need(r))
        st->done = 1; /* the call failed (reset, deadline): EV_END comes */
    return 0;
}

static void state_free(call_state *st)
{
    if (st->timer != 0)
        strata_loop_cancel(strata_grpc_server_loop(st->call), st->timer);
    strata_pb_buf_free(&st->in);
    strata_pb_buf_free(&st->out);
    free(st->queue);
    free(st->message);
    free(st);
}

static void handler(strata_stream *call, int event, void *ud)
{
    call_state *st = strata_grpc_user(call);
    size_t len = 0;

    if (event == STRATA_GRPC_EV_START) {
        st = calloc(1, sizeof *st);
        if (st == NULL) {
            strata_grpc_cancel(call);
            return;
        }
        st->call = call;
        st->m = ud;
        st->hold = st->m->kind == HALF_DUPLEX;
        st->head_pending =
            strata_grpc_md_get(call, ECHO_INITIAL, &len) != NULL;
        strata_pb_buf_init(&st->in, NULL);
        strata_pb_buf_init(&st->out, NULL);
        strata_grpc_set_user(call, st);
    }
    if (st == NULL)
        return;
    if (event == STRATA_GRPC_EV_END) {
        strata_grpc_set_user(call, NULL);
        state_free(st);
        return;
    }
    while (step(st))
        ;
}

#define ROUTE(name, m) {"/grpc.testing.TestService/" name, handler, (void *)&(m)}

static const strata_grpc_route routes[] = {
    ROUTE("EmptyCall", m_empty),
    ROUTE("UnaryCall", m_unary),
    ROUTE("StreamingOutputCall", m_output),
    ROUTE("StreamingInputCall", m_input),
    ROUTE("FullDuplexCall", m_duplex),
    ROUTE("HalfDuplexCall", m_half),
};

typedef struct options {
    const char *port;
    int tls;
    const char *cert, *key;
} options;

static int flag_value(const char *arg, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return 0;
    *out = arg + n + 1;
    return 1;
}

static int parse(int argc, char **argv, options *o)
{
    const char *v;
    int i;

    memset(o, 0, sizeof *o);
    for (i = 1; i < argc; i++) {
        if (flag_value(argv[i], "--port", &o->port) ||
            flag_value(argv[i], "--tls_cert_file", &o->cert) ||
            flag_value(argv[i], "--tls_key_file", &o->key))
            continue;
        if (flag_value(argv[i], "--use_tls", &v)) {
            o->tls = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
            continue;
        }
        fprintf(stderr, "interop_server: unknown argument '%s'\n", argv[i]);
        return -1;
    }
    if (o->port == NULL || (o->tls && (o->cert == NULL || o->key == NULL))) {
        fprintf(stderr, "usage: interop_server --port=P [--use_tls=true "
                        "--tls_cert_file=F --tls_key_file=F]\n");
        return -1;
    }
    return 0;
}

static strata_tls_config *tls_config(const options *o)
{
    strata_tls_config *c = strata_tls_config_new(STRATA_TLS_SERVER, NULL);

    if (c == NULL)
        return NULL;
    if (strata_tls_config_cert_file(c, o->cert, o->key) != 0 ||
        strata_tls_config_alpn(c, "h2") != 0) {
        fprintf(stderr, "interop_server: TLS: %s\n",
                strata_tls_config_reason(c));
        strata_tls_config_free(c);
        return NULL;
    }
    return c;
}

static int serve(strata_loop *loop, int fd, strata_tls_config *tls)
{
    strata_grpc_server_opts so;
    strata_grpc_server *s;

    memset(&so, 0, sizeof so);
    so.routes = routes;
    so.n_routes = sizeof routes / sizeof routes[0];
    so.tls = tls;
    s = strata_grpc_server_new(loop, fd, &so, NULL);
    if (s == NULL) {
        fprintf(stderr, "interop_server: cannot start the server\n");
        return 1;
    }
    while (!stop_flag)
        if (strata_loop_run_once(loop, 100) < 0) {
            fprintf(stderr, "interop_server: the event loop failed\n");
            break;
        }
    strata_grpc_server_free(s);
    return stop_flag ? 0 : 1;
}

int main(int argc, char **argv)
{
    strata_tls_config *tls = NULL;
    strata_loop *loop;
    options o;
    int fd, rc;

    if (parse(argc, argv, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (o.tls && (tls = tls_config(&o)) == NULL)
        return 1;
    fd = strata_tcp_listen("127.0.0.1", o.port, 64);
    if (fd < 0) {
        fprintf(stderr, "interop_server: cannot listen on port %s: %s\n",
                o.port, strata_strerror(fd));
        strata_tls_config_free(tls);
        return 1;
    }
    fprintf(strcmp(o.port, "0") == 0 ? stdout : stderr,
            "listening on port %d\n", strata_local_port(fd));
    fflush(stdout);
    loop = strata_loop_new(NULL);
    if (loop == NULL) {
        strata_tls_config_free(tls);
        return 1;
    }
    rc = serve(loop, fd, tls);
    strata_loop_free(loop);
    strata_tls_config_free(tls);
    return rc;
}
