/* greeter_client [--target HOST:PORT] [--name N] [--tls --ca F]
 * Calls helloworld.Greeter/SayHello once and prints the reply (the
 * hello-world of gRPC; any Greeter server answers, greeter_server too).
 *
 * The client drives its HTTP/2 connection itself, without an event loop:
 * every call is tried first, and only a NEED code makes it wait, with
 * poll(), on the connection's descriptor for what the connection wants.
 * (A gRPC call sits on an HTTP/2 stream, which has no descriptor of its
 * own: the connection's is the one to wait on.)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/grpc.h>
#include <strata/h2.h>
#include <strata/protobuf.h>
#include <strata/uri.h>

#include "helloworld.pb-c.h"

#define WAIT_MS 10000   /* give up when nothing moves for this long */

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Wait on the HTTP/2 connection's descriptor for what it wants, after a
 * call on one of its streams returned a NEED code. 0, or
 * STRATA_ERR_TIMEOUT. */
static int wait_conn(strata_h2 *h)
{
    unsigned w = strata_h2_wants(h);
    struct pollfd p;

    p.fd = strata_h2_fd(h);
    p.events = (short)(((w & STRATA_WANT_READ) ? POLLIN : 0) |
                       ((w & STRATA_WANT_WRITE) ? POLLOUT : 0));
    if (p.events == 0)
        return 0;       /* nothing to wait for: try again at once */
    return poll(&p, 1, WAIT_MS) > 0 ? 0 : STRATA_ERR_TIMEOUT;
}

/* TCP, then TLS with ALPN h2 when ca is given, then HTTP/2. */
/* TCP, then TLS with ALPN h2 when ca is given, then HTTP/2: the URI
 * builder makes that stack ("h2://" or "h2+tls://", adapters/uri.h); the
 * TLS handshake runs in the connection's first drives. */
static strata_h2 *connect_h2(const char *target, const char *ca)
{
    char text[300], err[160];
    strata_uri u;
    strata_h2 *h = NULL;
    int r;

    snprintf(text, sizeof text, "%s://%s", ca ? "h2+tls" : "h2", target);
    r = strata_uri_parse(text, &u, err, sizeof err);
    if (r == 0) {
        u.tls.ca = ca;
        r = strata_uri_h2_connect(&u, NULL, &h, NULL, err, sizeof err);
    }
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", "greeter_client", err);
        return NULL;
    }
    return h;
}

/* Send the request and half-close: 0 or a status. */
static int send_request(strata_h2 *h, strata_stream *call, const char *name)
{
    Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
    strata_pb_buf out;
    int r;

    req.name = (char *)name;
    strata_pb_buf_init(&out, NULL);
    r = strata_pb_send(call, &out, &req.base);
    while (is_need(r) && wait_conn(h) == 0)
        r = strata_pb_flush(call, &out);
    strata_pb_buf_free(&out);
    while (r == 0 && is_need(r = strata_shutdown(call)) && wait_conn(h) == 0)
        ;
    return r;
}

/* Print the reply; 0 when the call ended with status OK. */
static int read_reply(strata_h2 *h, strata_stream *call)
{
    ProtobufCMessage *m;
    strata_pb_buf in;
    int r;

    strata_pb_buf_init(&in, NULL);
    for (;;) {
        r = strata_pb_recv(call, &in, &helloworld__hello_reply__descriptor,
                           &m);
        if (is_need(r)) {
            if ((r = wait_conn(h)) != 0)
                break;
            continue;
        }
        if (r != 0)
            break;
        printf("Greeter received: %s\n",
               ((Helloworld__HelloReply *)m)->message);
        strata_pb_free(m, NULL);
    }
    strata_pb_buf_free(&in);
    if (r == STRATA_EOF)
        return 0;       /* the trailers said OK */
    if (r == STRATA_ERR_GRPC)
        fprintf(stderr, "greeter_client: %s: %s\n",
                strata_grpc_status_name(strata_grpc_status(call)),
                strata_grpc_message(call));
    else
        fprintf(stderr, "greeter_client: %s\n", strata_strerror(r));
    return r;
}

static int usage(void)
{
    fprintf(stderr, "usage: greeter_client [--target HOST:PORT] [--name N] "
                    "[--tls --ca F]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *target = "127.0.0.1:50051", *name = "world", *ca = NULL;
    strata_grpc_opts o;
    strata_stream *call;
    strata_h2 *h;
    int i, tls = 0, r;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0)
            tls = 1;
        else if (i + 1 >= argc)
            return usage();
        else if (strcmp(argv[i], "--target") == 0)
            target = argv[++i];
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[++i];
        else
            return usage();
    }
    if (tls != (ca != NULL) || strchr(target, ':') == NULL)
        return usage();
    h = connect_h2(target, ca);
    if (h == NULL) {
        fprintf(stderr, "greeter_client: cannot connect to %s\n", target);
        return 1;
    }
    memset(&o, 0, sizeof o);
    o.path = "/helloworld.Greeter/SayHello";
    o.authority = target;
    o.scheme = tls ? "https" : "http";
    o.timeout_ms = WAIT_MS;
    r = strata_grpc_call(h, &o, NULL, &call);
    if (r == 0) {
        /* a failed send may still have a status from the server */
        (void)send_request(h, call, name);
        r = read_reply(h, call);
        strata_free(call);
    }
    strata_h2_free(h);
    return r == 0 ? 0 : 1;
}
