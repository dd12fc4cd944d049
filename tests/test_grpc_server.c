/* The gRPC server framework (adapters/grpc_server.h) on a real loopback
 * socket, with strata gRPC calls on an HTTP/2 client connection as its
 * peer, both in this thread: the client takes a step, and while it waits
 * (a NEED code) the server's loop runs a round. Messages are raw bytes.
 * Checked: each kind of call (unary, client and server streaming with
 * more than a window of data, bidirectional echo) with its messages and
 * status; UNIMPLEMENTED for an unknown path; a status and trailing
 * metadata from a handler; a deadline the client sent that the server
 * enforces; a client's cancel and a lost connection ending the handler's
 * call; many calls at once on one connection; max_connections; TLS with
 * ALPN h2 and a TLS client that did not agree h2; and that every record
 * the server allocated went back to its allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strata/grpc.h>
#include <strata/grpc_server.h>
#include <strata/h2.h>
#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/blocking.h>
#include <strata/protobuf.h>
#ifdef STRATA_WITH_TLS
#include <strata/tls.h>
#endif

#include "harness.h"

#define STEPS 5000          /* client steps before a wait is a failure */
#define MSG_MAX 4096

/* ---- the server's handlers -------------------------------------------- */

enum { R_UNARY, R_CLIENT, R_SERVER, R_BIDI, R_NEVER, R_ERROR, R_PB,
       N_ROUTES };

/* What the handlers saw, per route. */
static struct {
    int starts[N_ROUTES], ends[N_ROUTES];
    int end_status[N_ROUTES];   /* strata_grpc_status at the last EV_END */
    int bad_events;             /* an event after EV_END, or before START */
} seen;

typedef struct sc {
    int route;
    uint8_t in[MSG_MAX];
    size_t in_len;
    uint8_t out[MSG_MAX];
    size_t out_len, out_off;
    int out_busy;
    long n, i, bytes;
    int got_request;
    strata_pb_buf pin, pout;    /* R_PB */
} sc;

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Continue the message in out: 0 once it went, NEED_* or an error. */
static int push(strata_stream *call, sc *st)
{
    ssize_t n;

    while (st->out_busy) {
        n = strata_send(call, st->out + st->out_off,
                        st->out_len - st->out_off, STRATA_MSG_END);
        if (n < 0)
            return (int)n;
        st->out_off += (size_t)n;
        st->out_busy = st->out_off < st->out_len;
    }
    return 0;
}

static int put(strata_stream *call, sc *st, const void *p, size_t len)
{
    memcpy(st->out, p, len);
    st->out_len = len;
    st->out_off = 0;
    st->out_busy = 1;
    return push(call, st);
}

/* One whole message into in: 1 when complete, else a status. */
static int take(strata_stream *call, sc *st)
{
    unsigned fl;
    ssize_t n;

    for (;;) {
        if (st->in_len == sizeof st->in)
            return STRATA_ERR_TOO_BIG;
        n = strata_recv(call, st->in + st->in_len,
                        sizeof st->in - st->in_len, &fl);
        if (n < 0)
            return (int)n;
        st->in_len += (size_t)n;
        if (fl & STRATA_MSG_END)
            return 1;
    }
}

static void fill(uint8_t *p, size_t len, long seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        p[i] = (uint8_t)(seed * 31 + (long)i * 7);
}

static void unary(strata_stream *call, sc *st)
{
    int r;

    if (!st->got_request) {
        if ((r = take(call, st)) != 1)
            return;
        st->got_request = 1;
        if (put(call, st, st->in, st->in_len) != 0)
            return;
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* Counts the messages and bytes, answers "messages:bytes". */
static void client_stream(strata_stream *call, sc *st)
{
    char text[64];
    int r;

    while (!st->got_request) {
        r = take(call, st);
        if (r == STRATA_EOF) {
            st->got_request = 1;
            snprintf(text, sizeof text, "%ld:%ld", st->n, st->bytes);
            if (put(call, st, text, strlen(text)) != 0)
                return;
            break;
        }
        if (r != 1)
            return;
        st->n++;
        st->bytes += (long)st->in_len;
        st->in_len = 0;
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* The request says how many messages of 1000 bytes to send back. */
static void server_stream(strata_stream *call, sc *st)
{
    uint8_t msg[1000];

    if (!st->got_request) {
        if (take(call, st) != 1)
            return;
        st->in[st->in_len] = '\0';
        st->n = atol((char *)st->in);
        st->got_request = 1;
    }
    while (st->i < st->n) {
        fill(msg, sizeof msg, st->i++);
        if (put(call, st, msg, sizeof msg) != 0)
            return;     /* the window: the next EV_READY goes on */
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

static void bidi(strata_stream *call, sc *st)
{
    int r;

    for (;;) {
        r = take(call, st);
        if (r == STRATA_EOF)
            break;
        if (r != 1)
            return;
        r = put(call, st, st->in, st->in_len);
        st->in_len = 0;
        if (r != 0)
            return;
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

static void error_route(strata_stream *call, sc *st)
{
    strata_grpc_md md = {"x-why", "because", 0};

    (void)st;
    (void)strata_grpc_finish(call, STRATA_GRPC_NOT_FOUND, "no such thing",
                             &md, 1);
}

/* A protobuf message type written out by hand as protoc-c would (so the
 * test needs no generated code): message T { string s = 1; int32 n = 2; }
 */
typedef struct tmsg {
    ProtobufCMessage base;
    char *s;
    int32_t n;
} tmsg;

static const ProtobufCMessageDescriptor tmsg_descriptor;

static void tmsg_init(tmsg *m)
{
    memset(m, 0, sizeof *m);
    m->base.descriptor = &tmsg_descriptor;
    m->s = (char *)protobuf_c_empty_string;
}

static const ProtobufCFieldDescriptor tmsg_fields[2] = {
    {"s", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0,
     offsetof(tmsg, s), NULL, &protobuf_c_empty_string, 0, 0, NULL, NULL},
    {"n", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0,
     offsetof(tmsg, n), NULL, NULL, 0, 0, NULL, NULL},
};
static const unsigned tmsg_by_name[2] = {1, 0};
static const ProtobufCIntRange tmsg_ranges[2] = {{1, 0}, {0, 2}};
static const ProtobufCMessageDescriptor tmsg_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.T", "T", "T", "t",
    sizeof(tmsg), 2, tmsg_fields, tmsg_by_name, 1, tmsg_ranges,
    (ProtobufCMessageInit)tmsg_init, NULL, NULL, NULL,
};

/* protobuf.c's memory, on both sides, counted */
static strata_test_counter pb_count;
static strata_allocator pb_alloc;

/* Each T comes back with n + 1; a message that does not unpack ends the
 * call with INVALID_ARGUMENT. */
static void pb_route(strata_stream *call, sc *st)
{
    ProtobufCMessage *m;
    tmsg reply;
    int r;

    for (;;) {
        if (strata_pb_flush(call, &st->pout) != 0)
            return;
        r = strata_pb_recv(call, &st->pin, &tmsg_descriptor, &m);
        if (r == STRATA_ERR_PROTO) {
            (void)strata_grpc_finish(call, STRATA_GRPC_INVALID_ARGUMENT,
                                     "bad T", NULL, 0);
            return;
        }
        if (r == STRATA_EOF)
            break;
        if (r != 0)
            return;
        tmsg_init(&reply);
        reply.s = ((tmsg *)m)->s;
        reply.n = ((tmsg *)m)->n + 1;
        r = strata_pb_send(call, &st->pout, &reply.base);
        strata_pb_free(m, &pb_alloc);
        if (r != 0 && !is_need(r))
            return;
        if (r != 0) {
            /* the rest waits in the buffer: no new message meanwhile */
            tmsg_init(&reply);
            if (strata_pb_send(call, &st->pout, &reply.base) !=
                STRATA_ERR_STATE)
                seen.bad_events++;
            return;
        }
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

static void handler(strata_stream *call, int event, void *ud)
{
    int route = *(const int *)ud;
    sc *st = strata_grpc_user(call);

    if (event == STRATA_GRPC_EV_START) {
        if (st != NULL)
            seen.bad_events++;
        seen.starts[route]++;
        st = calloc(1, sizeof *st);
        assert_non_null(st);
        st->route = route;
        strata_pb_buf_init(&st->pin, &pb_alloc);
        strata_pb_buf_init(&st->pout, &pb_alloc);
        strata_grpc_set_user(call, st);
    } else if (st == NULL) {
        seen.bad_events++;
        return;
    }
    if (event == STRATA_GRPC_EV_END) {
        seen.ends[route]++;
        seen.end_status[route] = strata_grpc_status(call);
        strata_grpc_set_user(call, NULL);
        strata_pb_buf_free(&st->pin);
        strata_pb_buf_free(&st->pout);
        free(st);
        return;
    }
    if (push(call, st) != 0)
        return;
    switch (route) {
    case R_UNARY: unary(call, st); break;
    case R_CLIENT: client_stream(call, st); break;
    case R_SERVER: server_stream(call, st); break;
    case R_BIDI: bidi(call, st); break;
    case R_ERROR: error_route(call, st); break;
    case R_PB: pb_route(call, st); break;
    default: break;     /* R_NEVER: never answers */
    }
}

static const int route_ids[N_ROUTES] = {R_UNARY, R_CLIENT, R_SERVER, R_BIDI,
                                        R_NEVER, R_ERROR, R_PB};
static const char *const paths[N_ROUTES] = {
    "/t.S/Unary", "/t.S/ClientStream", "/t.S/ServerStream", "/t.S/Bidi",
    "/t.S/Never", "/t.S/Error", "/t.S/Pb",
};

/* ---- the fixture: a server on a loop, a client connection --------------- */

typedef struct fx {
    strata_loop *loop;
    strata_grpc_server *srv;
    strata_test_counter count;
    strata_allocator alloc;
    struct strata_tls_config *tls_s, *tls_c;
    char port[16];
    strata_h2 *h;
} fx;

static void server_start(fx *f, size_t max_conns, int tls)
{
    strata_grpc_route routes[N_ROUTES];
    strata_grpc_server_opts o;
    char a[512], b[512];
    int i, lfd;

    memset(f, 0, sizeof *f);
    memset(&seen, 0, sizeof seen);
    memset(&pb_count, 0, sizeof pb_count);
    pb_alloc = strata_test_allocator(&pb_count);
    f->alloc = strata_test_allocator(&f->count);
    f->loop = strata_loop_new(NULL);
    assert_non_null(f->loop);
    lfd = strata_tcp_listen("127.0.0.1", "0", 64);
    assert_true(lfd >= 0);
    snprintf(f->port, sizeof f->port, "%d", strata_local_port(lfd));
    for (i = 0; i < N_ROUTES; i++) {
        routes[i].path = paths[i];
        routes[i].handler = handler;
        routes[i].ud = (void *)&route_ids[i];
    }
    memset(&o, 0, sizeof o);
    o.routes = routes;      /* copied by the server: a stack table is fine */
    o.n_routes = N_ROUTES;
    o.max_connections = max_conns;
#ifdef STRATA_WITH_TLS
    if (tls) {
        f->tls_s = strata_tls_config_new(STRATA_TLS_SERVER, NULL);
        assert_non_null(f->tls_s);
        assert_int_equal(strata_tls_config_cert_file(f->tls_s,
            strata_test_cert(a, sizeof a, "server.pem"),
            strata_test_cert(b, sizeof b, "server.key")), 0);
        assert_int_equal(strata_tls_config_alpn(f->tls_s, "h2"), 0);
        o.tls = f->tls_s;
    }
#else
    (void)tls;
    (void)a;
    (void)b;
#endif
    f->srv = strata_grpc_server_new(f->loop, lfd, &o, &f->alloc);
    assert_non_null(f->srv);
}

/* One server round without waiting, then a short wait on the client's
 * descriptor for what its connection asks. */
static void step(fx *f)
{
    struct pollfd p;
    unsigned w;

    assert_true(strata_loop_run_once(f->loop, 0) >= 0);
    if (f->h == NULL) {
        (void)strata_loop_run_once(f->loop, 2);
        return;
    }
    w = strata_h2_wants(f->h);
    p.fd = strata_h2_fd(f->h);
    p.events = (short)(((w & STRATA_WANT_READ) ? POLLIN : 0) |
                       ((w & STRATA_WANT_WRITE) ? POLLOUT : 0));
    p.revents = 0;
    (void)poll(&p, 1, 2);
}

/* Rounds until the server holds exactly this many calls. */
static void settle_calls(fx *f, size_t calls)
{
    int i;

    for (i = 0; i < STEPS && strata_grpc_server_calls(f->srv) != calls; i++)
        step(f);
    assert_int_equal(strata_grpc_server_calls(f->srv), calls);
}

static void client_connect(fx *f, const char *alpn)
{
    strata_stream *s;
    strata_h2_opts ho;
    char ca[512];

    assert_int_equal(strata_tcp_connect("127.0.0.1", f->port, NULL, &s), 0);
#ifdef STRATA_WITH_TLS
    if (f->tls_s != NULL) {
        strata_tls_opts to;
        int i, r = STRATA_NEED_READ;

        f->tls_c = strata_tls_config_new(STRATA_TLS_CLIENT, NULL);
        assert_non_null(f->tls_c);
        assert_int_equal(strata_tls_config_ca_file(f->tls_c,
            strata_test_cert(ca, sizeof ca, "ca.pem"), NULL), 0);
        if (alpn != NULL)
            assert_int_equal(strata_tls_config_alpn(f->tls_c, alpn), 0);
        memset(&to, 0, sizeof to);
        to.server_name = "localhost";
        s = strata_tls_new(s, f->tls_c, &to, NULL);
        assert_non_null(s);
        for (i = 0; i < STEPS && is_need(r); i++) {
            r = strata_tls_handshake(s);
            if (is_need(r))
                (void)strata_loop_run_once(f->loop, 2);
        }
        assert_int_equal(r, 0);
        if (alpn != NULL)
            assert_string_equal(strata_tls_alpn(s), "h2");
    }
#else
    (void)alpn;
    (void)ca;
#endif
    memset(&ho, 0, sizeof ho);
    ho.role = STRATA_H2_CLIENT;
    f->h = strata_h2_new(s, &ho, NULL);
    assert_non_null(f->h);
}

static void server_stop(fx *f)
{
    strata_h2_free(f->h);
    f->h = NULL;
    strata_grpc_server_free(f->srv);
    assert_int_equal(f->count.live, 0);  /* every record went back */
    assert_int_equal(pb_count.live, 0);
    strata_loop_free(f->loop);
#ifdef STRATA_WITH_TLS
    strata_tls_config_free(f->tls_s);
    strata_tls_config_free(f->tls_c);
#endif
    assert_int_equal(seen.bad_events, 0);
}

/* ---- client steps --------------------------------------------------------- */

static strata_stream *call_open(fx *f, const char *path, long timeout_ms)
{
    strata_grpc_opts o;
    strata_stream *call;

    memset(&o, 0, sizeof o);
    o.path = path;
    o.authority = "127.0.0.1";
    o.timeout_ms = timeout_ms;
    assert_int_equal(strata_grpc_call(f->h, &o, NULL, &call), 0);
    return call;
}

static void c_send(fx *f, strata_stream *call, const void *p, size_t len)
{
    size_t off = 0;
    ssize_t n = 0;
    int i;

    for (i = 0; i < STEPS; i++) {
        n = strata_send(call, (const uint8_t *)p + off, len - off,
                        STRATA_MSG_END);
        if (n >= 0) {
            off += (size_t)n;
            if (off == len)
                return;
        } else if (is_need(n)) {
            step(f);
        } else {
            break;
        }
    }
    fail_msg("send: %s", strata_strerror((int)n));
}

static void c_close_send(fx *f, strata_stream *call)
{
    int i, r = STRATA_NEED_READ;

    for (i = 0; i < STEPS && is_need(r); i++)
        if (is_need(r = strata_shutdown(call)))
            step(f);
    assert_int_equal(r, 0);
}

/* One whole message: its length, or a status. */
static long c_recv(fx *f, strata_stream *call, uint8_t *buf, size_t cap)
{
    size_t len = 0;
    unsigned fl;
    ssize_t n;
    int i;

    for (i = 0; i < STEPS; i++) {
        n = strata_recv(call, buf + len, cap - len, &fl);
        if (is_need(n)) {
            step(f);
            continue;
        }
        if (n < 0)
            return (long)n;
        len += (size_t)n;
        if (fl & STRATA_MSG_END)
            return (long)len;
    }
    fail_msg("recv waited too long");
    return STRATA_ERR_TIMEOUT;
}

/* The call's end: STRATA_EOF (OK) or STRATA_ERR_GRPC, read after the
 * last message. */
static void c_expect_end(fx *f, strata_stream *call, int status)
{
    uint8_t buf[64];
    long r = c_recv(f, call, buf, sizeof buf);

    assert_int_equal(r, status == STRATA_GRPC_OK ? STRATA_EOF
                                                 : STRATA_ERR_GRPC);
    assert_int_equal(strata_grpc_status(call), status);
}

/* ---- the tests ------------------------------------------------------------ */

static void test_unary(void **state)
{
    fx f;
    strata_stream *call;
    uint8_t buf[64];

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_UNARY], 0);
    c_send(&f, call, "hello", 5);
    c_close_send(&f, call);
    assert_int_equal(c_recv(&f, call, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    c_expect_end(&f, call, STRATA_GRPC_OK);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.starts[R_UNARY], 1);
    assert_int_equal(seen.ends[R_UNARY], 1);
    assert_int_equal(seen.end_status[R_UNARY], STRATA_GRPC_OK);
    assert_int_equal(strata_grpc_server_connections(f.srv), 1);
    server_stop(&f);
}

static void test_client_streaming(void **state)
{
    fx f;
    strata_stream *call;
    uint8_t msg[2000], buf[64];
    long total = 0, n;
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_CLIENT], 0);
    for (i = 0; i < 40; i++) {      /* sizes 0..1950, an empty one first */
        fill(msg, (size_t)i * 50, i);
        c_send(&f, call, msg, (size_t)i * 50);
        total += i * 50;
    }
    c_close_send(&f, call);
    n = c_recv(&f, call, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    snprintf((char *)msg, sizeof msg, "40:%ld", total);
    assert_string_equal((char *)buf, (char *)msg);
    c_expect_end(&f, call, STRATA_GRPC_OK);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_CLIENT], 1);
    server_stop(&f);
}

/* 300 KB back: several stream windows, so the handler meets NEED and is
 * run again as the client's reads reopen the window. */
static void test_server_streaming(void **state)
{
    fx f;
    strata_stream *call;
    uint8_t buf[1000], want[1000];
    long i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_SERVER], 0);
    c_send(&f, call, "300", 3);
    c_close_send(&f, call);
    for (i = 0; i < 300; i++) {
        assert_int_equal(c_recv(&f, call, buf, sizeof buf), 1000);
        fill(want, sizeof want, i);
        assert_memory_equal(buf, want, sizeof want);
    }
    c_expect_end(&f, call, STRATA_GRPC_OK);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_SERVER], 1);
    server_stop(&f);
}

static void test_bidi_echo(void **state)
{
    fx f;
    strata_stream *call;
    uint8_t msg[3000], buf[3000];
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_BIDI], 0);
    for (i = 0; i < 30; i++) {      /* each echo comes before the next */
        size_t len = (size_t)(i * 97) % 3000;

        fill(msg, len, i);
        c_send(&f, call, msg, len);
        assert_int_equal(c_recv(&f, call, buf, sizeof buf), (long)len);
        assert_memory_equal(buf, msg, len);
    }
    c_close_send(&f, call);
    c_expect_end(&f, call, STRATA_GRPC_OK);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_BIDI], 1);
    server_stop(&f);
}

static void test_unknown_method_and_status(void **state)
{
    fx f;
    strata_stream *call;
    size_t len = 0;
    const char *v;
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, "/t.S/Nope", 0);
    c_send(&f, call, "x", 1);
    c_close_send(&f, call);
    c_expect_end(&f, call, STRATA_GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(strata_grpc_message(call), "/t.S/Nope"));
    strata_free(call);
    for (i = 0; i < N_ROUTES; i++)
        assert_int_equal(seen.starts[i], 0);    /* no handler ran */

    call = call_open(&f, paths[R_ERROR], 0);
    c_close_send(&f, call);
    c_expect_end(&f, call, STRATA_GRPC_NOT_FOUND);
    assert_string_equal(strata_grpc_message(call), "no such thing");
    v = strata_grpc_trailer_get(call, "x-why", &len);
    assert_non_null(v);
    assert_int_equal(len, 7);
    assert_memory_equal(v, "because", 7);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_ERROR], 1);
    assert_int_equal(seen.end_status[R_ERROR], STRATA_GRPC_NOT_FOUND);
    server_stop(&f);
}

/* The client sends grpc-timeout 50m and never arms a timer of its own:
 * DEADLINE_EXCEEDED can only come from the server's trailers. */
static void test_deadline(void **state)
{
    fx f;
    strata_stream *call;
    uint64_t t0, dt;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    t0 = strata_now_ms();
    call = call_open(&f, paths[R_NEVER], 50);
    c_send(&f, call, "wait", 4);
    c_expect_end(&f, call, STRATA_GRPC_DEADLINE_EXCEEDED);
    dt = strata_now_ms() - t0;
    assert_true(dt >= 50);
    assert_true(dt < 5000);
    assert_string_equal(strata_grpc_trailer_get(call, "grpc-status", NULL),
                        "4");   /* the server's word */
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.starts[R_NEVER], 1);
    assert_int_equal(seen.ends[R_NEVER], 1);
    assert_int_equal(seen.end_status[R_NEVER],
                     STRATA_GRPC_DEADLINE_EXCEEDED);
    server_stop(&f);
}

static void test_cancel_and_lost_connection(void **state)
{
    fx f;
    strata_stream *call;
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_NEVER], 0);
    c_send(&f, call, "x", 1);
    settle_calls(&f, 1);
    assert_int_equal(strata_grpc_cancel(call), 0);
    assert_int_equal(strata_grpc_status(call), STRATA_GRPC_CANCELLED);
    strata_free(call);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_NEVER], 1);
    assert_int_equal(seen.end_status[R_NEVER], STRATA_GRPC_CANCELLED);
    assert_int_equal(strata_grpc_server_connections(f.srv), 1);

    /* the client goes away with a call open: EV_END, no connection */
    call = call_open(&f, paths[R_NEVER], 0);
    c_send(&f, call, "x", 1);
    settle_calls(&f, 1);
    strata_free(call);  /* resets it: kept by h2_free's last hold below */
    strata_h2_free(f.h);
    f.h = NULL;
    for (i = 0; i < STEPS && strata_grpc_server_connections(f.srv) > 0; i++)
        step(&f);
    assert_int_equal(strata_grpc_server_connections(f.srv), 0);
    assert_int_equal(strata_grpc_server_calls(f.srv), 0);
    assert_int_equal(seen.ends[R_NEVER], 2);
    server_stop(&f);
}

/* A client that vanishes without a word while its call is open. */
static void test_connection_cut(void **state)
{
    fx f;
    strata_stream *call;
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    call = call_open(&f, paths[R_NEVER], 0);
    c_send(&f, call, "x", 1);
    settle_calls(&f, 1);
    /* shut the socket under the connection: no RST_STREAM, no GOAWAY */
    assert_int_equal(shutdown(strata_h2_fd(f.h), SHUT_RDWR), 0);
    for (i = 0; i < STEPS && strata_grpc_server_connections(f.srv) > 0; i++)
        step(&f);
    assert_int_equal(strata_grpc_server_connections(f.srv), 0);
    assert_int_equal(seen.ends[R_NEVER], 1);
    strata_free(call);
    server_stop(&f);
}

#define MANY 60

static void test_many_calls_one_connection(void **state)
{
    fx f;
    strata_stream *calls[MANY];
    uint8_t msg[600], buf[600];
    int i;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    for (i = 0; i < MANY; i++) {
        calls[i] = call_open(&f, paths[i % 2 ? R_UNARY : R_BIDI], 0);
        fill(msg, (size_t)i * 10, i);
        c_send(&f, calls[i], msg, (size_t)i * 10);
        /* unary: half-closed before the server's round can answer (and
         * reset the stream, which protos/h2.c's shutdown does not take) */
        if (i % 2)
            c_close_send(&f, calls[i]);
    }
    /* every call reached its handler; the unary ones answered already */
    for (i = 0; i < STEPS && seen.starts[R_UNARY] + seen.starts[R_BIDI] <
                                 MANY; i++)
        step(&f);
    assert_int_equal(seen.starts[R_UNARY] + seen.starts[R_BIDI], MANY);
    assert_int_equal(strata_grpc_server_calls(f.srv), MANY / 2);
    for (i = MANY - 1; i >= 0; i--) {   /* answers read in another order */
        fill(msg, (size_t)i * 10, i);
        if (i % 2 == 0) {
            assert_int_equal(c_recv(&f, calls[i], buf, sizeof buf),
                             i * 10);
            assert_memory_equal(buf, msg, (size_t)i * 10);
            c_close_send(&f, calls[i]);
        }
    }
    for (i = 0; i < MANY; i++) {
        if (i % 2) {
            fill(msg, (size_t)i * 10, i);
            assert_int_equal(c_recv(&f, calls[i], buf, sizeof buf),
                             i * 10);
            assert_memory_equal(buf, msg, (size_t)i * 10);
        }
        c_expect_end(&f, calls[i], STRATA_GRPC_OK);
        strata_free(calls[i]);
    }
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_UNARY] + seen.ends[R_BIDI], MANY);
    assert_int_equal(strata_grpc_server_connections(f.srv), 1);
    server_stop(&f);
}

/* Over the limit, a connection is closed as soon as it is accepted. */
static void test_max_connections(void **state)
{
    fx f;
    strata_stream *extra;
    uint8_t b;
    ssize_t n = STRATA_NEED_READ;
    int i;

    (void)state;
    server_start(&f, 1, 0);
    client_connect(&f, NULL);
    for (i = 0; i < STEPS && strata_grpc_server_connections(f.srv) < 1; i++)
        step(&f);
    assert_int_equal(strata_tcp_connect("127.0.0.1", f.port, NULL, &extra),
                     0);
    for (i = 0; i < STEPS && is_need(n); i++) {
        step(&f);
        n = strata_read(extra, &b, 1);
    }
    assert_true(n == STRATA_EOF || n == STRATA_ERR_IO);
    assert_int_equal(strata_grpc_server_connections(f.srv), 1);
    strata_free(extra);
    server_stop(&f);
}

#ifdef STRATA_WITH_TLS
static void test_tls(void **state)
{
    fx f;
    strata_stream *call;
    uint8_t buf[64];
    int i, r = 0;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    server_start(&f, 0, 1);
    client_connect(&f, "h2");
    call = call_open(&f, paths[R_UNARY], 0);
    c_send(&f, call, "secret", 6);
    c_close_send(&f, call);
    assert_int_equal(c_recv(&f, call, buf, sizeof buf), 6);
    assert_memory_equal(buf, "secret", 6);
    c_expect_end(&f, call, STRATA_GRPC_OK);
    strata_free(call);
    settle_calls(&f, 0);
    strata_h2_free(f.h);
    f.h = NULL;
    strata_tls_config_free(f.tls_c);
    f.tls_c = NULL;

    /* a TLS client that offers no ALPN: no HTTP/2 for it */
    client_connect(&f, NULL);
    for (i = 0; i < STEPS && (r == 0 || is_need(r)); i++) {
        r = strata_h2_drive(f.h);
        if (r == 0 || is_need(r))
            step(&f);
    }
    assert_true(r != 0 && !is_need(r));
    for (i = 0; i < STEPS && strata_grpc_server_connections(f.srv) > 0; i++)
        step(&f);
    assert_int_equal(strata_grpc_server_connections(f.srv), 0);
    assert_int_equal(seen.starts[R_UNARY], 1);
    server_stop(&f);
}
#endif

/* protobuf-c messages on calls both ways: an empty one (no bytes at all),
 * a small one, one over the stream window (partial sends continued by
 * strata_pb_flush, a new message refused meanwhile; pieces gathered on
 * receipt), and bytes that are no T. */
static void c_pb_send(fx *f, strata_stream *call, strata_pb_buf *out,
                      const tmsg *m, int *partial)
{
    tmsg other;
    int i, r = strata_pb_send(call, out, &m->base);

    if (is_need(r)) {
        *partial = 1;
        tmsg_init(&other);
        assert_int_equal(strata_pb_send(call, out, &other.base),
                         STRATA_ERR_STATE);
    }
    for (i = 0; i < STEPS && is_need(r); i++) {
        step(f);
        r = strata_pb_flush(call, out);
    }
    assert_int_equal(r, 0);
}

static tmsg *c_pb_recv(fx *f, strata_stream *call, strata_pb_buf *in)
{
    ProtobufCMessage *m = NULL;
    int i, r = STRATA_NEED_READ;

    for (i = 0; i < STEPS && is_need(r); i++)
        if (is_need(r = strata_pb_recv(call, in, &tmsg_descriptor, &m)))
            step(f);
    assert_int_equal(r, 0);
    return (tmsg *)m;
}

static void test_protobuf_messages(void **state)
{
    static char big[200001];
    const char *texts[3] = {"", "abc", big};
    strata_pb_buf in, out;
    strata_stream *call;
    int i, partial = 0;
    fx f;

    (void)state;
    server_start(&f, 0, 0);
    client_connect(&f, NULL);
    memset(big, 'x', sizeof big - 1);
    strata_pb_buf_init(&in, &pb_alloc);
    strata_pb_buf_init(&out, &pb_alloc);
    call = call_open(&f, paths[R_PB], 0);
    for (i = 0; i < 3; i++) {
        tmsg m, *r;

        tmsg_init(&m);
        m.s = (char *)texts[i];
        m.n = i * 10;   /* the first T has no field set: 0 bytes */
        if (i == 0)
            assert_int_equal(protobuf_c_message_get_packed_size(&m.base), 0);
        c_pb_send(&f, call, &out, &m, &partial);
        r = c_pb_recv(&f, call, &in);
        assert_string_equal(r->s, texts[i]);
        assert_int_equal(r->n, i * 10 + 1);
        strata_pb_free(&r->base, &pb_alloc);
    }
    assert_true(partial);   /* the big one met the window */
    c_send(&f, call, "\xff\xff\xff", 3);  /* a truncated varint */
    c_expect_end(&f, call, STRATA_GRPC_INVALID_ARGUMENT);
    strata_free(call);
    strata_pb_buf_free(&in);
    strata_pb_buf_free(&out);
    settle_calls(&f, 0);
    assert_int_equal(seen.ends[R_PB], 1);
    server_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_client_streaming),
        cmocka_unit_test(test_server_streaming),
        cmocka_unit_test(test_bidi_echo),
        cmocka_unit_test(test_unknown_method_and_status),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_cancel_and_lost_connection),
        cmocka_unit_test(test_connection_cut),
        cmocka_unit_test(test_many_calls_one_connection),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_protobuf_messages),
#ifdef STRATA_WITH_TLS
        cmocka_unit_test(test_tls),
#endif
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
