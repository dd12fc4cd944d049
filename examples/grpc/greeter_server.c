/* greeter_server [--host H] [--port P] [--cert F --key F]
 * The gRPC hello-world Greeter (helloworld.proto) on strata's event loop:
 * SayHello("world") answers "Hello world". Cleartext HTTP/2 (prior
 * knowledge) by default, TLS with ALPN h2 given a certificate and key.
 * Listens on 127.0.0.1:50051 unless told otherwise (port 0 picks a free
 * one) and prints the port on stdout. Any gRPC client speaks to it, e.g.
 *   greeter_client --target 127.0.0.1:50051 --name you
 *
 * The handler is called with EV_START, EV_READY whenever the call may move
 * on, and EV_END before the call goes. It never blocks: every recv and send
 * may return a NEED code, and then it returns and waits for the next
 * EV_READY. Its state lives on the call's user pointer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/grpc_server.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/tls.h>

#include "helloworld.pb-c.h"

typedef struct say_hello {
    strata_pb_buf in, out;
    int answered;
} say_hello;

/* One request in, one reply out, then status OK. */
static void say_hello_ready(strata_stream *call, say_hello *st)
{
    Helloworld__HelloReply reply = HELLOWORLD__HELLO_REPLY__INIT;
    ProtobufCMessage *m;
    char text[256];
    int r;

    if (strata_pb_flush(call, &st->out) != 0)
        return;             /* the reply still waits (or the call failed) */
    if (!st->answered) {
        r = strata_pb_recv(call, &st->in,
                           &helloworld__hello_request__descriptor, &m);
        if (r == STRATA_EOF) {
            (void)strata_grpc_finish(call, STRATA_GRPC_INVALID_ARGUMENT,
                                     "no HelloRequest", NULL, 0);
            return;
        }
        if (r != 0)
            return;         /* NEED: more later; an error ends the call */
        snprintf(text, sizeof text, "Hello %s",
                 ((Helloworld__HelloRequest *)m)->name);
        strata_pb_free(m, NULL);
        reply.message = text;
        st->answered = 1;
        if (strata_pb_send(call, &st->out, &reply.base) != 0)
            return;         /* the rest goes with strata_pb_flush */
    }
    /* NEED: the next EV_READY tries again */
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

static void say_hello_cb(strata_stream *call, int event, void *ud)
{
    say_hello *st = strata_grpc_user(call);

    (void)ud;
    switch (event) {
    case STRATA_GRPC_EV_START:
        st = calloc(1, sizeof *st);
        if (st == NULL) {
            (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                     "out of memory", NULL, 0);
            return;
        }
        strata_pb_buf_init(&st->in, NULL);
        strata_pb_buf_init(&st->out, NULL);
        strata_grpc_set_user(call, st);
        say_hello_ready(call, st);
        break;
    case STRATA_GRPC_EV_READY:
        if (st != NULL)
            say_hello_ready(call, st);
        break;
    case STRATA_GRPC_EV_END:
        if (st != NULL) {
            strata_pb_buf_free(&st->in);
            strata_pb_buf_free(&st->out);
            free(st);
        }
        break;
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: greeter_server [--host H] [--port P] "
            "[--cert F --key F]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "50051";
    const char *cert = NULL, *key = NULL;
    strata_grpc_route routes[] = {
        {"/helloworld.Greeter/SayHello", say_hello_cb, NULL},
    };
    strata_grpc_server_opts o;
    strata_grpc_server *srv;
    strata_loop *loop;
    int i, lfd;

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = argv[++i];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[++i];
        else
            return usage();
    }
    if ((cert == NULL) != (key == NULL))
        return usage();
    memset(&o, 0, sizeof o);
    o.routes = routes;
    o.n_routes = sizeof routes / sizeof routes[0];
    if (cert != NULL) {
        /* gRPC over TLS is HTTP/2 agreed by ALPN */
        o.tls = strata_tls_config_new(STRATA_TLS_SERVER, NULL);
        if (o.tls == NULL ||
            strata_tls_config_cert_file(o.tls, cert, key) != 0 ||
            strata_tls_config_alpn(o.tls, "h2") != 0) {
            fprintf(stderr, "greeter_server: %s\n",
                    o.tls ? strata_tls_config_reason(o.tls) : "no memory");
            return 1;
        }
    }
    lfd = strata_tcp_listen(host, port, 128);
    loop = strata_loop_new(NULL);
    if (lfd < 0 || loop == NULL) {
        fprintf(stderr, "greeter_server: cannot listen on %s:%s\n", host,
                port);
        return 1;
    }
    srv = strata_grpc_server_new(loop, lfd, &o, NULL);
    if (srv == NULL) {
        fprintf(stderr, "greeter_server: cannot start\n");
        return 1;
    }
    printf("%d\n", strata_local_port(lfd));
    fflush(stdout);
    fprintf(stderr, "greeter_server: listening on %s:%d%s\n", host,
            strata_local_port(lfd), o.tls ? " (TLS)" : "");
    strata_loop_run(loop);
    strata_grpc_server_free(srv);
    strata_loop_free(loop);
    strata_tls_config_free(o.tls);
    return 0;
}
