/* interop_client: gRPC's interop test client (grpc.testing.TestService)
 * on strata's gRPC calls (protos/grpc.h), for the interop tests against
 * other gRPC implementations' servers.
 *
 *   interop_client --server_host=H --server_port=P --test_case=NAME
 *                  [--use_tls=true --ca_file=F --server_host_override=N]
 *
 * Each case does what gRPC's interop test descriptions say, with their
 * assertions and the optional ones (payload bodies all zeros, exactly the
 * responses asked for, the final status OK). --test_case=all runs every
 * case, each on its own connection (an extension for manual runs).
 * Exit 0 when the case passed; otherwise 1 and a line naming what differed.
 *
 * The stack is a TCP socket, TLS when asked (the CA file, SNI and the
 * verified name from --server_host_override or the host, ALPN h2), an
 * HTTP/2 client connection, and one gRPC call per RPC with protobuf-c
 * messages (adapters/protobuf.h). It is blocking in the simplest way: try
 * the operation, and after a NEED code poll() the connection's descriptor
 * for what it wants (a call has no descriptor of its own). Deadlines are
 * kept here, as layers own no clock: a wait polls at most until the
 * deadline, then strata_grpc_expire ends the call with DEADLINE_EXCEEDED.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata/grpc.h>
#include <strata/h2.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/tls.h>

#include "empty.pb-c.h"
#include "messages.pb-c.h"

#define SVC "/grpc.testing.TestService/"
#define STALL_MS 20000 /* no progress this long without a deadline: fail */
#define ECHO_INITIAL "x-grpc-test-echo-initial"
#define ECHO_TRAILING "x-grpc-test-echo-trailing-bin"
#define INITIAL_VALUE "test_initial_metadata_value"
#define SPECIAL_MESSAGE                                                       \
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "   \
    "\xf0\x9f\x98\x88\t\n"

typedef Grpc__Testing__Payload Payload;
typedef Grpc__Testing__SimpleRequest SimpleRequest;
typedef Grpc__Testing__SimpleResponse SimpleResponse;
typedef Grpc__Testing__StreamingOutputCallRequest OutputRequest;
typedef Grpc__Testing__StreamingOutputCallResponse OutputResponse;
typedef Grpc__Testing__ResponseParameters ResponseParameters;

static const ProtobufCMessageDescriptor *const d_empty =
    &grpc__testing__empty__descriptor;
static const ProtobufCMessageDescriptor *const d_simple =
    &grpc__testing__simple_response__descriptor;
static const ProtobufCMessageDescriptor *const d_output =
    &grpc__testing__streaming_output_call_response__descriptor;
static const ProtobufCMessageDescriptor *const d_input =
    &grpc__testing__streaming_input_call_response__descriptor;

static const int32_t sizes_in[4] = {27182, 8, 1828, 45904};   /* 74922 */
static const int32_t sizes_out[4] = {31415, 9, 2653, 58979};
static const uint8_t trailing_value[3] = {0xab, 0xab, 0xab};
static uint8_t zeros[271828]; /* the largest request payload */

typedef struct options {
    const char *host, *port, *test_case, *ca_file, *override;
    int tls;
} options;

typedef struct conn {
    strata_h2 *h;
    strata_tls_config *tls;
    char authority[300];
    const char *scheme;
} conn;

typedef struct rpc {
    conn *c;
    strata_stream *call;
    strata_pb_buf in, out;
    uint64_t deadline; /* ms of CLOCK_MONOTONIC; 0: none */
} rpc;

static char why[2048]; /* the first failure of the case */

static int fail(const char *fmt, ...)
{
    va_list ap;

    if (why[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Wait until fd is ready for wants (STRATA_WANT_*), at most ms: 1 ready,
 * 0 the time passed. */
static int wait_fd(int fd, unsigned wants, long ms)
{
    struct pollfd p;
    int n;

    p.fd = fd;
    p.events = 0;
    if (wants & STRATA_WANT_READ)
        p.events |= POLLIN;
    if (wants & STRATA_WANT_WRITE)
        p.events |= POLLOUT;
    if (p.events == 0)
        p.events = POLLIN;
    p.revents = 0;
    do
        n = poll(&p, 1, (int)ms);
    while (n < 0 && errno == EINTR);
    return n != 0;
}

/* After a NEED code on r's call: wait for the connection, until r's
 * deadline at most. 0 to retry; STRATA_ERR_GRPC when the deadline passed
 * (the call is expired: DEADLINE_EXCEEDED); STRATA_ERR_TIMEOUT on a stall. */
static int wait_io(rpc *r)
{
    long ms = STALL_MS;

    if (r->deadline != 0) {
        uint64_t now = now_ms();
        if (now >= r->deadline) {
            strata_grpc_expire(r->call);
            return STRATA_ERR_GRPC;
        }
        if (r->deadline - now < (uint64_t)ms)
            ms = (long)(r->deadline - now);
    }
    if (wait_fd(strata_h2_fd(r->c->h), strata_h2_wants(r->c->h), ms))
        return 0;
    if (r->deadline != 0 && now_ms() >= r->deadline) {
        strata_grpc_expire(r->call);
        return STRATA_ERR_GRPC;
    }
    fail("no progress for %d s: the server does not answer", STALL_MS / 1000);
    return STRATA_ERR_TIMEOUT;
}

static int rpc_open(conn *c, rpc *r, const char *path,
                    const strata_grpc_md *md, size_t n_md, long timeout_ms)
{
    strata_grpc_opts o;
    int s;

    memset(r, 0, sizeof *r);
    r->c = c;
    strata_pb_buf_init(&r->in, NULL);
    strata_pb_buf_init(&r->out, NULL);
    memset(&o, 0, sizeof o);
    o.path = path;
    o.authority = c->authority;
    o.scheme = c->scheme;
    o.timeout_ms = timeout_ms;
    o.md = md;
    o.n_md = n_md;
    s = strata_grpc_call(c->h, &o, NULL, &r->call);
    if (s != 0)
        return fail("strata_grpc_call %s: %s", path, strata_strerror(s));
    if (timeout_ms > 0)
        r->deadline = now_ms() + (uint64_t)timeout_ms;
    return 0;
}

static void rpc_free(rpc *r)
{
    strata_free(r->call); /* a call that did not end is reset here */
    r->call = NULL;
    strata_pb_buf_free(&r->in);
    strata_pb_buf_free(&r->out);
}

/* One message, waiting for room as long as needed. 0, or the status that
 * ended the send (STRATA_ERR_GRPC: the call ended). */
static int rpc_send(rpc *r, const void *m)
{
    int s = strata_pb_send(r->call, &r->out, m);

    while (is_need(s)) {
        if ((s = wait_io(r)) != 0)
            return s;
        s = strata_pb_flush(r->call, &r->out);
    }
    return s;
}

/* Half-close: no more requests. */
static int rpc_close_send(rpc *r)
{
    int s = strata_shutdown(r->call);

    while (is_need(s)) {
        if ((s = wait_io(r)) != 0)
            return s;
        s = strata_shutdown(r->call);
    }
    return s;
}

/* The next response: 0 and *m, STRATA_EOF (ended OK), STRATA_ERR_GRPC
 * (ended with another status), or another failure. */
static int rpc_recv(rpc *r, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage **m)
{
    int s;

    for (;;) {
        s = strata_pb_recv(r->call, &r->in, d, m);
        if (!is_need(s))
            return s;
        if ((s = wait_io(r)) != 0)
            return s;
    }
}

/* A failure of the call that is not a gRPC status: say what it was. */
static int broken(rpc *r, int s, const char *what)
{
    return fail("%s: %s (grpc status %d)", what, strata_strerror(s),
                strata_grpc_status(r->call));
}

/* Read to the end of the call; *extra counts the responses read. 0 when
 * the call ended with a status (strata_grpc_status). */
static int rpc_end(rpc *r, const ProtobufCMessageDescriptor *d, int *extra)
{
    ProtobufCMessage *m;
    int s;

    *extra = 0;
    for (;;) {
        s = rpc_recv(r, d, &m);
        if (s != 0)
            break;
        strata_pb_free(m, NULL);
        (*extra)++;
    }
    if (s == STRATA_EOF || s == STRATA_ERR_GRPC)
        return 0;
    return broken(r, s, "reading to the end of the call");
}

static const char *shown(const char *s)
{
    return s != NULL ? s : "(none)";
}

/* s with control characters as C escapes, so a failure stays one line. */
static const char *escaped(const char *s, char *out, size_t n)
{
    size_t o = 0;

    for (; s != NULL && *s != '\0' && o + 5 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return s != NULL ? out : "(none)";
}

/* The call's status and (when msg is not NULL) message must be these. */
static int expect_status(rpc *r, int code, const char *msg, const char *what)
{
    int got = strata_grpc_status(r->call);
    const char *gmsg = strata_grpc_message(r->call);
    char e1[256], e2[256];

    if (got != code)
        return fail("%s: status %d %s (message \"%s\"), want %d %s", what,
                    got, strata_grpc_status_name(got),
                    escaped(gmsg, e1, sizeof e1), code,
                    strata_grpc_status_name(code));
    if (msg != NULL && (gmsg == NULL || strcmp(gmsg, msg) != 0))
        return fail("%s: status message \"%s\", want \"%s\"", what,
                    escaped(gmsg, e1, sizeof e1), escaped(msg, e2, sizeof e2));
    return 0;
}

/* Read to the end; it must be OK with no further response. */
static int expect_ok_end(rpc *r, const ProtobufCMessageDescriptor *d,
                         const char *what)
{
    int extra;

    if (rpc_end(r, d, &extra) != 0)
        return -1;
    if (extra != 0)
        return fail("%s: %d responses more than asked for", what, extra);
    return expect_status(r, STRATA_GRPC_OK, NULL, what);
}

static int check_payload(const Payload *p, int32_t size, const char *what)
{
    size_t i;

    if (p == NULL)
        return fail("%s: no payload, want %d bytes", what, (int)size);
    if (p->type != GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE)
        return fail("%s: payload type %d, want COMPRESSABLE", what,
                    (int)p->type);
    if (p->body.len != (size_t)size)
        return fail("%s: payload body %zu bytes, want %d", what, p->body.len,
                    (int)size);
    for (i = 0; i < p->body.len; i++)
        if (p->body.data[i] != 0)
            return fail("%s: payload byte %zu is %d, want 0", what, i,
                        p->body.data[i]);
    return 0;
}

/* Receive one StreamingOutputCallResponse of this payload size. */
static int recv_output(rpc *r, int32_t size, const char *what)
{
    ProtobufCMessage *m;
    int s = rpc_recv(r, d_output, &m), rc;

    if (s == STRATA_EOF || s == STRATA_ERR_GRPC)
        return fail("%s: the call ended instead (status %d %s, \"%s\")", what,
                    strata_grpc_status(r->call),
                    strata_grpc_status_name(strata_grpc_status(r->call)),
                    shown(strata_grpc_message(r->call)));
    if (s != 0)
        return broken(r, s, what);
    rc = check_payload(((OutputResponse *)m)->payload, size, what);
    strata_pb_free(m, NULL);
    return rc;
}

static void payload_of(Payload *p, int32_t size)
{
    grpc__testing__payload__init(p);
    p->body.len = (size_t)size;
    p->body.data = zeros;
}

/* A StreamingOutputCallRequest asking one response of out bytes, with a
 * payload of in bytes (no payload when in < 0). */
static int send_output_request(rpc *r, int32_t out, int32_t in,
                               Grpc__Testing__EchoStatus *es)
{
    OutputRequest req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    ResponseParameters rp = GRPC__TESTING__RESPONSE_PARAMETERS__INIT;
    ResponseParameters *rps[1] = {&rp};
    Payload p;

    if (out >= 0) {
        rp.size = out;
        req.n_response_parameters = 1;
        req.response_parameters = rps;
    }
    if (in >= 0) {
        payload_of(&p, in);
        req.payload = &p;
    }
    req.response_status = es;
    return rpc_send(r, &req);
}

/* One request, half-close, one response (*resp), the end. 0 when the call
 * ended (with any status: the caller checks it); the response is NULL when
 * none came. */
static int unary(conn *c, rpc *r, const char *path, const strata_grpc_md *md,
                 size_t n_md, const void *req,
                 const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
    int s, extra = 0;

    *resp = NULL;
    if (rpc_open(c, r, path, md, n_md, 0) != 0)
        return -1;
    s = rpc_send(r, req);
    if (s == 0)
        s = rpc_close_send(r);
    if (s == 0)
        s = rpc_recv(r, d, resp);
    if (s == 0)
        s = rpc_end(r, d, &extra) != 0 ? -1 : extra ? -2 : 0;
    if (s == -2)
        return fail("%s: %d responses more than one", path, extra + 1);
    if (s == 0 || s == STRATA_EOF || s == STRATA_ERR_GRPC)
        return 0;
    return s == -1 ? -1 : broken(r, s, path);
}

/* ---- the cases ---- */

static int empty_unary(conn *c)
{
    Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
    ProtobufCMessage *resp;
    rpc r;
    int rc = unary(c, &r, SVC "EmptyCall", NULL, 0, &req, d_empty, &resp);

    if (rc == 0)
        rc = expect_status(&r, STRATA_GRPC_OK, NULL, "EmptyCall");
    if (rc == 0 && resp == NULL)
        rc = fail("EmptyCall: no response");
    if (rc == 0 && protobuf_c_message_get_packed_size(resp) != 0)
        rc = fail("EmptyCall: the response is not empty");
    strata_pb_free(resp, NULL);
    rpc_free(&r);
    return rc;
}

/* UnaryCall asking 314159 bytes with 271828 bytes: the response checked. */
static int large_unary_with(conn *c, const strata_grpc_md *md, size_t n_md,
                            rpc *r)
{
    SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    ProtobufCMessage *resp;
    Payload p;
    int rc;

    req.response_size = 314159;
    payload_of(&p, 271828);
    req.payload = &p;
    rc = unary(c, r, SVC "UnaryCall", md, n_md, &req, d_simple, &resp);
    if (rc == 0)
        rc = expect_status(r, STRATA_GRPC_OK, NULL, "UnaryCall");
    if (rc == 0 && resp == NULL)
        rc = fail("UnaryCall: no response");
    if (rc == 0)
        rc = check_payload(((SimpleResponse *)resp)->payload, 314159,
                           "UnaryCall response");
    strata_pb_free(resp, NULL);
    return rc;
}

static int large_unary(conn *c)
{
    rpc r;
    int rc = large_unary_with(c, NULL, 0, &r);

    rpc_free(&r);
    return rc;
}

static int client_streaming(conn *c)
{
    Grpc__Testing__StreamingInputCallRequest req =
        GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    Payload p;
    rpc r;
    int i, s = 0, rc;

    if (rpc_open(c, &r, SVC "StreamingInputCall", NULL, 0, 0) != 0)
        return -1;
    req.payload = &p;
    for (i = 0; i < 4 && s == 0; i++) {
        payload_of(&p, sizes_in[i]);
        s = rpc_send(&r, &req);
    }
    if (s == 0)
        s = rpc_close_send(&r);
    if (s == 0)
        s = rpc_recv(&r, d_input, &resp);
    if (s == 0)
        rc = expect_ok_end(&r, d_input, "StreamingInputCall");
    else if (s == STRATA_EOF || s == STRATA_ERR_GRPC)
        rc = expect_status(&r, STRATA_GRPC_OK, NULL, "StreamingInputCall") ?
                 -1 : fail("StreamingInputCall: ended OK without a response");
    else
        rc = broken(&r, s, "StreamingInputCall");
    if (rc == 0) {
        int32_t got =
            ((Grpc__Testing__StreamingInputCallResponse *)resp)
                ->aggregated_payload_size;
        if (got != 74922)
            rc = fail("aggregated_payload_size %d, want 74922", (int)got);
    }
    strata_pb_free(resp, NULL);
    rpc_free(&r);
    return rc;
}

static int server_streaming(conn *c)
{
    OutputRequest req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
    ResponseParameters rp[4], *rps[4];
    char what[64];
    rpc r;
    int i, s, rc = 0;

    for (i = 0; i < 4; i++) {
        grpc__testing__response_parameters__init(&rp[i]);
        rp[i].size = sizes_out[i];
        rps[i] = &rp[i];
    }
    req.n_response_parameters = 4;
    req.response_parameters = rps;
    if (rpc_open(c, &r, SVC "StreamingOutputCall", NULL, 0, 0) != 0)
        return -1;
    s = rpc_send(&r, &req);
    if (s == 0)
        s = rpc_close_send(&r);
    if (s != 0 && s != STRATA_ERR_GRPC)
        rc = broken(&r, s, "sending the request");
    for (i = 0; i < 4 && rc == 0; i++) {
        snprintf(what, sizeof what, "response %d of 4", i + 1);
        rc = recv_output(&r, sizes_out[i], what);
    }
    if (rc == 0)
        rc = expect_ok_end(&r, d_output, "after 4 responses");
    rpc_free(&r);
    return rc;
}

static int ping_pong(conn *c)
{
    char what[64];
    rpc r;
    int i, s, rc = 0;

    if (rpc_open(c, &r, SVC "FullDuplexCall", NULL, 0, 0) != 0)
        return -1;
    for (i = 0; i < 4 && rc == 0; i++) {
        s = send_output_request(&r, sizes_out[i], sizes_in[i], NULL);
        snprintf(what, sizeof what, "response %d of 4", i + 1);
        rc = s == 0 || s == STRATA_ERR_GRPC ? recv_output(&r, sizes_out[i],
                                                          what)
                                            : broken(&r, s, "sending");
    }
    if (rc == 0 && (s = rpc_close_send(&r)) != 0 && s != STRATA_ERR_GRPC)
        rc = broken(&r, s, "half-closing");
    if (rc == 0)
        rc = expect_ok_end(&r, d_output, "after 4 responses");
    rpc_free(&r);
    return rc;
}

static int empty_stream(conn *c)
{
    rpc r;
    int s, rc;

    if (rpc_open(c, &r, SVC "FullDuplexCall", NULL, 0, 0) != 0)
        return -1;
    s = rpc_close_send(&r);
    rc = s != 0 && s != STRATA_ERR_GRPC ? broken(&r, s, "half-closing")
                                        : expect_ok_end(&r, d_output,
                                                        "empty stream");
    rpc_free(&r);
    return rc;
}

/* The echoed metadata: the initial value in the response head, the
 * binary one in the trailers. */
static int check_echo(rpc *r, const char *what)
{
    size_t len = 0;
    const void *v = strata_grpc_md_get(r->call, ECHO_INITIAL, &len);

    if (v == NULL)
        return fail("%s: no %s in the response head", what, ECHO_INITIAL);
    if (len != strlen(INITIAL_VALUE) || memcmp(v, INITIAL_VALUE, len) != 0)
        return fail("%s: %s is \"%.*s\", want \"%s\"", what, ECHO_INITIAL,
                    (int)len, (const char *)v, INITIAL_VALUE);
    v = strata_grpc_trailer_get(r->call, ECHO_TRAILING, &len);
    if (v == NULL)
        return fail("%s: no %s in the trailers", what, ECHO_TRAILING);
    if (len != sizeof trailing_value ||
        memcmp(v, trailing_value, len) != 0)
        return fail("%s: %s has %zu bytes, not 0xababab", what,
                    ECHO_TRAILING, len);
    return 0;
}

static int custom_metadata(conn *c)
{
    const strata_grpc_md md[2] = {
        {ECHO_INITIAL, INITIAL_VALUE, 0},
        {ECHO_TRAILING, trailing_value, sizeof trailing_value}};
    rpc r;
    int s, rc = large_unary_with(c, md, 2, &r);

    if (rc == 0)
        rc = check_echo(&r, "UnaryCall");
    rpc_free(&r);
    if (rc != 0)
        return rc;
    if (rpc_open(c, &r, SVC "FullDuplexCall", md, 2, 0) != 0)
        return -1;
    s = send_output_request(&r, 314159, 271828, NULL);
    rc = s == 0 || s == STRATA_ERR_GRPC ? recv_output(&r, 314159,
                                                      "FullDuplexCall")
                                        : broken(&r, s, "sending");
    if (rc == 0 && (s = rpc_close_send(&r)) != 0 && s != STRATA_ERR_GRPC)
        rc = broken(&r, s, "half-closing");
    if (rc == 0)
        rc = expect_ok_end(&r, d_output, "FullDuplexCall");
    if (rc == 0)
        rc = check_echo(&r, "FullDuplexCall");
    rpc_free(&r);
    return rc;
}

/* UnaryCall asking the status UNKNOWN with this message. */
static int echo_status_unary(conn *c, const char *message)
{
    SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
    ProtobufCMessage *resp;
    Payload p;
    rpc r;
    int rc;

    es.code = STRATA_GRPC_UNKNOWN;
    es.message = (char *)message;
    req.response_status = &es;
    req.response_size = 1;
    payload_of(&p, 1);
    req.payload = &p;
    rc = unary(c, &r, SVC "UnaryCall", NULL, 0, &req, d_simple, &resp);
    if (rc == 0)
        rc = expect_status(&r, STRATA_GRPC_UNKNOWN, message, "UnaryCall");
    strata_pb_free(resp, NULL);
    rpc_free(&r);
    return rc;
}

static int status_code_and_message(conn *c)
{
    static const char message[] = "test status message";
    Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
    rpc r;
    int s, extra, rc = echo_status_unary(c, message);

    if (rc != 0)
        return rc;
    es.code = STRATA_GRPC_UNKNOWN;
    es.message = (char *)message;
    if (rpc_open(c, &r, SVC "FullDuplexCall", NULL, 0, 0) != 0)
        return -1;
    /* the server may end the call before the half-close arrives */
    s = send_output_request(&r, 1, 1, &es);
    if (s == 0)
        s = rpc_close_send(&r);
    rc = s != 0 && s != STRATA_ERR_GRPC ? broken(&r, s, "sending")
                                        : rpc_end(&r, d_output, &extra);
    if (rc == 0)
        rc = expect_status(&r, STRATA_GRPC_UNKNOWN, message,
                           "FullDuplexCall");
    rpc_free(&r);
    return rc;
}

static int special_status_message(conn *c)
{
    return echo_status_unary(c, SPECIAL_MESSAGE);
}

static int unimplemented(conn *c, const char *path)
{
    Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
    ProtobufCMessage *resp;
    rpc r;
    int rc = unary(c, &r, path, NULL, 0, &req, d_empty, &resp);

    if (rc == 0)
        rc = expect_status(&r, STRATA_GRPC_UNIMPLEMENTED, NULL, path);
    strata_pb_free(resp, NULL);
    rpc_free(&r);
    return rc;
}

static int unimplemented_method(conn *c)
{
    return unimplemented(c, SVC "UnimplementedCall");
}

static int unimplemented_service(conn *c)
{
    return unimplemented(c, "/grpc.testing.UnimplementedService/"
                            "UnimplementedCall");
}

/* After a cancel: the status is CANCELLED and no response comes. */
static int expect_cancelled(rpc *r, const char *what)
{
    ProtobufCMessage *m = NULL;
    int s;

    if (expect_status(r, STRATA_GRPC_CANCELLED, NULL, what) != 0)
        return -1;
    s = strata_pb_recv(r->call, &r->in, d_output, &m);
    strata_pb_free(m, NULL);
    if (s == 0 || is_need(s) || s == STRATA_EOF)
        return fail("%s: recv after the cancel gave %s, want the call ended",
                    what, s == 0 ? "a response" : strata_strerror(s));
    return expect_status(r, STRATA_GRPC_CANCELLED, NULL, what);
}

static int cancel_after_begin(conn *c)
{
    rpc r;
    int s, rc;

    if (rpc_open(c, &r, SVC "StreamingInputCall", NULL, 0, 0) != 0)
        return -1;
    /* the request head goes out before the cancel */
    while (is_need(s = strata_h2_flush(c->h)) && (s = wait_io(&r)) == 0)
        ;
    if (s != 0) {
        rc = broken(&r, s, "sending the request head");
    } else {
        strata_grpc_cancel(r.call);
        rc = expect_cancelled(&r, "StreamingInputCall");
    }
    rpc_free(&r);
    return rc;
}

static int cancel_after_first_response(conn *c)
{
    rpc r;
    int s, rc;

    if (rpc_open(c, &r, SVC "FullDuplexCall", NULL, 0, 0) != 0)
        return -1;
    s = send_output_request(&r, 31415, 27182, NULL);
    rc = s == 0 || s == STRATA_ERR_GRPC ? recv_output(&r, 31415,
                                                      "first response")
                                        : broken(&r, s, "sending");
    if (rc == 0) {
        strata_grpc_cancel(r.call);
        rc = expect_cancelled(&r, "FullDuplexCall");
    }
    rpc_free(&r);
    return rc;
}

/* A 1 ms deadline on a call the server does not answer: DEADLINE_EXCEEDED,
 * whether the server said it or our own clock ended the call first. */
static int timeout_on_sleeping_server(conn *c)
{
    ProtobufCMessage *m = NULL;
    rpc r;
    int s, rc;

    if (rpc_open(c, &r, SVC "FullDuplexCall", NULL, 0, 1) != 0)
        return -1;
    s = send_output_request(&r, -1, 27182, NULL);
    if (s == 0)
        s = rpc_recv(&r, d_output, &m);
    strata_pb_free(m, NULL);
    if (s == 0)
        rc = fail("FullDuplexCall: a response, want DEADLINE_EXCEEDED");
    else if (s != STRATA_ERR_GRPC && s != STRATA_EOF)
        rc = broken(&r, s, "FullDuplexCall");
    else
        rc = expect_status(&r, STRATA_GRPC_DEADLINE_EXCEEDED, NULL,
                           "FullDuplexCall");
    rpc_free(&r);
    return rc;
}

typedef struct test_case {
    const char *name;
    int (*run)(conn *c);
} test_case;

#define CASE(f) {#f, f}
static const test_case cases[] = {
    CASE(empty_unary), CASE(large_unary), CASE(client_streaming),
    CASE(server_streaming), CASE(ping_pong), CASE(empty_stream),
    CASE(custom_metadata), CASE(status_code_and_message),
    CASE(special_status_message), CASE(unimplemented_method),
    CASE(unimplemented_service), CASE(cancel_after_begin),
    CASE(cancel_after_first_response), CASE(timeout_on_sleeping_server),
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* ---- the connection ---- */

/* Drive the TLS handshake to its end (blocking), and insist on h2. */
static int tls_handshake(strata_stream *t)
{
    const char *alpn;
    uint64_t until = now_ms() + STALL_MS;
    int s;

    while (is_need(s = strata_tls_handshake(t)))
        if (now_ms() >= until ||
            !wait_fd(strata_fd(t), strata_wants(t), (long)(until - now_ms())))
            return fail("TLS handshake: no progress for %d s",
                        STALL_MS / 1000);
    if (s != 0)
        return fail("TLS handshake: %s (%s)", strata_strerror(s),
                    strata_tls_reason(t));
    alpn = strata_tls_alpn(t);
    if (alpn == NULL || strcmp(alpn, "h2") != 0)
        return fail("TLS: the server selected ALPN %s, not h2", shown(alpn));
    return 0;
}

static int tls_wrap(conn *c, const options *o, strata_stream **s)
{
    strata_tls_opts to;
    strata_stream *t;

    c->tls = strata_tls_config_new(STRATA_TLS_CLIENT, NULL);
    if (c->tls == NULL)
        return fail("TLS: out of memory");
    if ((o->ca_file != NULL &&
         strata_tls_config_ca_file(c->tls, o->ca_file, NULL) != 0) ||
        strata_tls_config_alpn(c->tls, "h2") != 0)
        return fail("TLS: %s", strata_tls_config_reason(c->tls));
    memset(&to, 0, sizeof to);
    to.server_name = o->override != NULL ? o->override : o->host;
    t = strata_tls_new(*s, c->tls, &to, NULL);
    if (t == NULL)
        return fail("TLS: cannot make the layer");
    *s = t;
    return tls_handshake(t);
}

static int conn_open(conn *c, const options *o)
{
    strata_h2_opts ho;
    strata_stream *s;
    int r;

    memset(c, 0, sizeof *c);
    r = strata_tcp_connect(o->host, o->port, NULL, &s);
    if (r != 0)
        return fail("connect to %s:%s: %s", o->host, o->port,
                    strata_strerror(r));
    if (o->tls && tls_wrap(c, o, &s) != 0) {
        strata_free(s);
        return -1;
    }
    memset(&ho, 0, sizeof ho);
    ho.role = STRATA_H2_CLIENT;
    c->h = strata_h2_new(s, &ho, NULL);
    if (c->h == NULL) {
        strata_free(s);
        return fail("cannot make the HTTP/2 connection");
    }
    snprintf(c->authority, sizeof c->authority, "%s:%s",
             o->override != NULL ? o->override : o->host, o->port);
    c->scheme = o->tls ? "https" : "http";
    return 0;
}

/* GOAWAY (briefly waiting for it to go), then let the connection go. */
static void conn_close(conn *c)
{
    uint64_t until = now_ms() + 1000;
    int s;

    if (c->h != NULL) {
        while (is_need(s = strata_h2_shutdown(c->h)) && now_ms() < until &&
               wait_fd(strata_h2_fd(c->h), strata_h2_wants(c->h),
                       (long)(until - now_ms())))
            ;
        strata_h2_free(c->h);
    }
    strata_tls_config_free(c->tls);
    memset(c, 0, sizeof *c);
}

static int run_case(const test_case *tc, const options *o)
{
    conn c;
    int rc;

    why[0] = '\0';
    rc = conn_open(&c, o);
    if (rc == 0)
        rc = tc->run(&c);
    conn_close(&c);
    if (rc == 0) {
        printf("PASS %s\n", tc->name);
        return 0;
    }
    fprintf(stderr, "FAIL %s: %s\n", tc->name, why[0] ? why : "(no reason)");
    return 1;
}

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
    o->host = "localhost";
    for (i = 1; i < argc; i++) {
        if (flag_value(argv[i], "--server_host", &o->host) ||
            flag_value(argv[i], "--server_port", &o->port) ||
            flag_value(argv[i], "--test_case", &o->test_case) ||
            flag_value(argv[i], "--ca_file", &o->ca_file) ||
            flag_value(argv[i], "--server_host_override", &o->override))
            continue;
        if (flag_value(argv[i], "--use_tls", &v)) {
            o->tls = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
            continue;
        }
        fprintf(stderr, "interop_client: unknown argument '%s'\n", argv[i]);
        return -1;
    }
    if (o->port == NULL || o->test_case == NULL) {
        fprintf(stderr,
                "usage: interop_client --server_host=H --server_port=P "
                "--test_case=NAME|all [--use_tls=true --ca_file=F "
                "--server_host_override=NAME]\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    size_t i;
    int failed = 0, found = 0;

    if (parse(argc, argv, &o) != 0)
        return 2;
    for (i = 0; i < N_CASES; i++)
        if (strcmp(o.test_case, "all") == 0 ||
            strcmp(o.test_case, cases[i].name) == 0) {
            found = 1;
            failed += run_case(&cases[i], &o);
        }
    if (!found) {
        fprintf(stderr, "interop_client: unknown test case '%s'\n",
                o.test_case);
        return 2;
    }
    return failed ? 1 : 0;
}
