/* strata grpc server: a gRPC server on the event loop.
 *
 * It accepts connections on a listening socket (cleartext HTTP/2 with prior
 * knowledge, or TLS with ALPN h2), runs each connection's HTTP/2, turns new
 * streams into calls with strata_grpc_accept and the route table (unknown
 * methods get UNIMPLEMENTED there), arms each call's deadline
 * (grpc-timeout) on the loop's timers and calls strata_grpc_expire when it
 * passes, and runs the route's handler whenever its call may make
 * progress. One thread, no blocking: a handler does non-blocking recv and
 * send on the call and returns on a NEED code; it is called again when the
 * connection brought data, room or an end for that call.
 *
 * Handler events:
 *  - STRATA_GRPC_EV_START once, when the call is accepted;
 *  - STRATA_GRPC_EV_READY whenever the call may make progress, and after
 *    strata_grpc_server_wake;
 *  - STRATA_GRPC_EV_END once, just before the call is freed: it finished
 *    (strata_grpc_finish and its trailers went), or failed (the client
 *    cancelled, the deadline passed, the connection went). Free per-call
 *    state here; the call may not be used afterwards.
 * A connection is closed when the peer ends it or it fails; its calls get
 * EV_END first.
 */
#ifndef STRATA_GRPC_SERVER_H
#define STRATA_GRPC_SERVER_H

#include <strata/stream.h>
#include <strata/loop.h>
#include <strata/h2.h>
#include <strata/grpc.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    STRATA_GRPC_EV_START = 1,
    STRATA_GRPC_EV_READY = 2,
    STRATA_GRPC_EV_END = 3
};

typedef void (*strata_grpc_handler)(strata_stream *call, int event,
                                    void *ud);

typedef struct strata_grpc_route {
    const char *path;              /* "/package.Service/Method" */
    strata_grpc_handler handler;
    void *ud;
} strata_grpc_route;

struct strata_tls_config;

typedef struct strata_grpc_server_opts {
    const strata_grpc_route *routes;
    size_t n_routes;
    struct strata_tls_config *tls; /* NULL: cleartext; else TLS, ALPN h2
                                      (the config is held, not owned) */
    strata_h2_opts h2;             /* role is set to server */
    strata_grpc_opts call;         /* encoding and limits of every call */
    size_t max_connections;        /* default 1024; more are closed */
} strata_grpc_server_opts;

typedef struct strata_grpc_server strata_grpc_server;

/* A server on listen_fd (bound, listening, owned from now on). NULL on
 * bad options or allocation failure; listen_fd is then the caller's.
 * A TLS config must offer ALPN "h2" (strata_tls_config_alpn): the server
 * closes connections that did not agree on it. Accepting pauses 100 ms
 * after a failure such as EMFILE instead of spinning. No handshake
 * timeout: a client that never finishes holds its slot until it goes. */
strata_grpc_server *strata_grpc_server_new(strata_loop *loop, int listen_fd,
                                           const strata_grpc_server_opts *o,
                                           const strata_allocator *alloc);
/* Close every connection (their calls get EV_END) and the socket. */
void strata_grpc_server_free(strata_grpc_server *s);
/* Run the call's handler (EV_READY) in the next loop round: for a handler
 * that waited on its own timer. */
void strata_grpc_server_wake(strata_stream *call);
/* The loop a call's server runs on (for a handler's own timers). */
strata_loop *strata_grpc_server_loop(strata_stream *call);
/* Open connections and calls, for tests and the benchmark. */
size_t strata_grpc_server_connections(const strata_grpc_server *s);
size_t strata_grpc_server_calls(const strata_grpc_server *s);

#ifdef __cplusplus
}
#endif
#endif
