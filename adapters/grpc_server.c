/* A gRPC server on the event loop (adapters/grpc_server.h).
 *
 * Three records, each from the server's allocator:
 *  - the server: the listening socket's watch, the route table copied and
 *    the method table strata_grpc_accept matches paths against;
 *  - a connection: one watch on its socket descriptor that runs the TLS
 *    handshake (when configured), then drives the HTTP/2 connection and
 *    serves whatever it names: new streams (strata_h2_accept) become
 *    calls, streams that changed (strata_h2_ready) run their handler;
 *  - a call: the gRPC call, its route and its deadline timer. It hangs on
 *    the h2 stream's user pointer, which is how a ready stream finds it;
 *    the call's own user pointer (strata_grpc_set_user) stays free for the
 *    handler's per-call state.
 * Everything a call needs happens inside its connection's callback: a
 * deadline or strata_grpc_server_wake only marks the call and wakes that
 * watch, so a handler always runs with the connection corked and the
 * connection's lists are always emptied after it (a handler's recv may
 * read the socket and make other streams ready).
 */
#include "grpc_server.h"

#include <string.h>
#include <unistd.h>

#include "../streams/socket.h"
#ifdef STRATA_WITH_TLS
#include "../protos/tls.h"
#endif

#define DRIVE_BUDGET 64     /* drives per callback before others' turn */
#define ACCEPT_BUDGET 64    /* accepts per callback */
#define DEFAULT_MAX_CONNECTIONS 1024
#define ACCEPT_PAUSE_MS 100 /* after an accept failure such as EMFILE */

typedef struct conn conn;
typedef struct gcall gcall;

struct strata_grpc_server {
    strata_loop *loop;
    const strata_allocator *alloc;
    int listen_fd;
    strata_watch *lw;
    unsigned long pause_timer; /* accepting paused after a failure */
    strata_grpc_route *routes;
    strata_grpc_method *methods;
    size_t n_routes;
    strata_grpc_opts call_opts;
    strata_h2_opts h2_opts;
    struct strata_tls_config *tls;
    size_t max_connections;
    conn *conns;
    size_t n_conns, n_calls;
};

struct conn {
    strata_grpc_server *srv;
    conn *prev, *next;
    strata_stream *top;     /* socket, or TLS over it, until h2 owns it */
    strata_h2 *h;           /* NULL during the TLS handshake */
    strata_watch *w;
    gcall *calls;
    int woken;              /* some call waits for its EV_READY */
    size_t n_done;          /* calls done, not yet ended */
};

struct gcall {
    conn *c;
    gcall *prev, *next;
    strata_stream *call;
    const strata_grpc_route *route;
    unsigned long timer;    /* the deadline, 0 when none is pending */
    int woken;              /* EV_READY is due (a wake or the deadline) */
    int done;               /* its status is known: it ends once flushed */
};

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static unsigned poll_of(unsigned wants)
{
    return ((wants & STRATA_WANT_READ) ? STRATA_POLL_IN : 0) |
           ((wants & STRATA_WANT_WRITE) ? STRATA_POLL_OUT : 0);
}

/* ---- calls -------------------------------------------------------------- */

static gcall *call_of(strata_stream *call)
{
    strata_stream *hs = call != NULL ? strata_grpc_h2_stream(call) : NULL;

    return hs != NULL ? strata_h2_user(hs) : NULL;
}

/* EV_END, then the call and its record go. */
static void call_end(gcall *g)
{
    conn *c = g->c;
    strata_grpc_server *s = c->srv;

    if (g->timer != 0)
        strata_loop_cancel(s->loop, g->timer);
    if (g->done)
        c->n_done--;
    g->route->handler(g->call, STRATA_GRPC_EV_END, g->route->ud);
    if (g->prev)
        g->prev->next = g->next;
    else
        c->calls = g->next;
    if (g->next)
        g->next->prev = g->prev;
    strata_h2_set_user(strata_grpc_h2_stream(g->call), NULL);
    strata_free(g->call);
    strata_dealloc(s->alloc, g);
    s->n_calls--;
}

/* After its handler: a call whose status is known (it finished, failed,
 * or its stream was reset: strata_grpc_status sees a reset even when the
 * handler did not touch the call since) waits only for its last frames.
 * It is ended after the connection is uncorked (end_done), so that the
 * answers of one read still share writes. */
static void run(gcall *g, int event)
{
    if (g->done)
        return;     /* nothing more can move on it */
    g->route->handler(g->call, event, g->route->ud);
    if (strata_grpc_status(g->call) >= 0) {
        g->done = 1;
        g->c->n_done++;
    }
}

static void deadline_cb(strata_loop *loop, void *ud)
{
    gcall *g = ud;

    (void)loop;
    g->timer = 0;
    (void)strata_grpc_expire(g->call);
    strata_grpc_server_wake(g->call);
}

static void call_start(conn *c, strata_stream *call)
{
    strata_grpc_server *s = c->srv;
    const strata_grpc_method *m = strata_grpc_method_of(call);
    gcall *g = strata_alloc(s->alloc, sizeof *g);
    long ms;

    if (g == NULL || m == NULL) {
        strata_dealloc(s->alloc, g);
        (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                 "server out of memory", NULL, 0);
        strata_free(call);
        return;
    }
    memset(g, 0, sizeof *g);
    g->c = c;
    g->call = call;
    g->route = m->ud;
    g->next = c->calls;
    if (c->calls)
        c->calls->prev = g;
    c->calls = g;
    s->n_calls++;
    strata_h2_set_user(strata_grpc_h2_stream(call), g);
    ms = strata_grpc_timeout_ms(call);
    if (ms >= 0) {
        g->timer = strata_loop_timer(s->loop, (uint64_t)ms, deadline_cb, g);
        /* a deadline that cannot be kept is not silently dropped */
        if (g->timer == 0)
            (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                     "server out of memory", NULL, 0);
    }
    run(g, STRATA_GRPC_EV_START);
}

void strata_grpc_server_wake(strata_stream *call)
{
    gcall *g = call_of(call);

    if (g == NULL)
        return;
    g->woken = 1;
    g->c->woken = 1;
    strata_watch_wake(g->c->w);
}

strata_loop *strata_grpc_server_loop(strata_stream *call)
{
    gcall *g = call_of(call);

    return g != NULL ? g->c->srv->loop : NULL;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(conn *c)
{
    strata_grpc_server *s = c->srv;

    while (c->calls)
        call_end(c->calls);
    strata_watch_remove(c->w);
    if (c->h != NULL)
        strata_h2_free(c->h);   /* it owns top */
    else
        strata_free(c->top);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    strata_dealloc(s->alloc, c);
    s->n_conns--;
}

/* Calls woken (strata_grpc_server_wake, a deadline) get EV_READY. Only
 * those marked before: a handler waking itself runs next round. */
static void run_woken(conn *c)
{
    gcall *g, *next;

    if (!c->woken)
        return;
    c->woken = 0;
    for (g = c->calls; g; g = g->next)
        g->woken = g->woken ? 2 : 0;
    for (g = c->calls; g; g = next) {
        next = g->next;     /* run frees only g itself */
        if (g->woken == 2) {
            g->woken = 0;
            run(g, STRATA_GRPC_EV_READY);
        }
    }
}

/* New streams become calls; changed ones run their handler. A handler may
 * read the socket and so add to either list: go on until both are empty. */
static void serve(conn *c)
{
    strata_grpc_server *s = c->srv;
    strata_stream *hs, *call;
    gcall *g;

    run_woken(c);
    for (;;) {
        if ((hs = strata_h2_accept(c->h)) != NULL) {
            /* a refused request is answered there; nothing to do here */
            if (strata_grpc_accept(hs, &s->call_opts, s->alloc, &call) == 0)
                call_start(c, call);
        } else if ((hs = strata_h2_ready(c->h)) != NULL) {
            if ((g = strata_h2_user(hs)) != NULL)
                run(g, STRATA_GRPC_EV_READY);
        } else {
            break;
        }
    }
}

/* Calls done whose frames are out of the call (its trailers framed, or
 * nothing more to say after a reset) get EV_END and go; what they leave
 * in the connection's output goes with it. */
static void end_done(conn *c)
{
    gcall *g, *next;

    for (g = c->calls; g && c->n_done > 0; g = next) {
        next = g->next;     /* call_end frees only g itself */
        if (g->done && !is_need(strata_flush(g->call)))
            call_end(g);
    }
}

/* The TLS handshake, then HTTP/2 only if ALPN agreed on it (RFC 9113
 * 3.2). 0 once h2 runs, NEED_* while the handshake goes on, or an error. */
static int conn_setup(conn *c)
{
#ifdef STRATA_WITH_TLS
    if (c->srv->tls != NULL) {
        const char *alpn;
        int r = strata_tls_handshake(c->top);

        if (r != 0)
            return r;
        alpn = strata_tls_alpn(c->top);
        if (alpn == NULL || strcmp(alpn, "h2") != 0)
            return STRATA_ERR_PROTO;
    }
#endif
    c->h = strata_h2_new(c->top, &c->srv->h2_opts, c->srv->alloc);
    return c->h != NULL ? 0 : STRATA_ERR_NOMEM;
}

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    conn *c = ud;
    int r = 0, f, i;

    (void)loop;
    (void)events;
    if (c->h == NULL && (r = conn_setup(c)) != 0) {
        if (is_need(r)) {
            unsigned want = poll_of(strata_wants(c->top));

            strata_watch_set_interest(w, want ? want : STRATA_POLL_IN);
        } else
            conn_close(c);
        return;
    }
    /* corked: the answers to everything one read brought share writes */
    strata_h2_cork(c->h, 1);
    for (i = 0; i < DRIVE_BUDGET && (r = strata_h2_drive(c->h)) == 0; i++)
        ;
    serve(c);
    f = strata_h2_cork(c->h, 0);
    if ((r == 0 || is_need(r)) && f < STRATA_EOF)
        r = f;
    end_done(c);
    if (r != 0 && !is_need(r)) {
        conn_close(c);      /* the peer ended it, or it failed */
        return;
    }
    if (is_need(r))
        strata_watch_set_interest(w, poll_of(strata_h2_wants(c->h)));
    if (r == 0 || c->woken)
        strata_watch_wake(w);   /* budget spent, or a call woke itself */
}

static void conn_new(strata_grpc_server *s, strata_stream *sock)
{
    conn *c = strata_alloc(s->alloc, sizeof *c);

    if (c == NULL) {
        strata_free(sock);
        return;
    }
    memset(c, 0, sizeof *c);
    c->srv = s;
    c->top = sock;
#ifdef STRATA_WITH_TLS
    if (s->tls != NULL) {
        c->top = strata_tls_new(sock, s->tls, NULL, s->alloc);
        if (c->top == NULL) {
            strata_free(sock);
            strata_dealloc(s->alloc, c);
            return;
        }
    }
#endif
    /* a bare descriptor watch: the connection says what it waits for */
    c->w = strata_loop_watch_fd(s->loop, strata_fd(sock), STRATA_POLL_IN,
                                conn_cb, c);
    if (c->w == NULL) {
        strata_free(c->top);
        strata_dealloc(s->alloc, c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
}

static void accept_resume(strata_loop *loop, void *ud)
{
    strata_grpc_server *s = ud;

    (void)loop;
    s->pause_timer = 0;
    strata_watch_set_interest(s->lw, STRATA_POLL_IN);
}

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    strata_grpc_server *s = ud;
    strata_stream *sock;
    int i, r;

    (void)w;
    (void)events;
    for (i = 0; i < ACCEPT_BUDGET; i++) {
        if ((r = strata_accept(s->listen_fd, s->alloc, &sock)) != 0) {
            /* Out of descriptors (EMFILE) leaves the socket readable:
             * stop listening for a while rather than spin. */
            if (r != STRATA_NEED_READ && s->pause_timer == 0) {
                strata_watch_set_interest(s->lw, 0);
                s->pause_timer = strata_loop_timer(loop, ACCEPT_PAUSE_MS,
                                                   accept_resume, s);
            }
            return;
        }
        if (s->n_conns >= s->max_connections)
            strata_free(sock);      /* over the limit: closed at once */
        else
            conn_new(s, sock);
    }
}

/* ---- the server ------------------------------------------------------------- */

static int opts_ok(const strata_grpc_server_opts *o)
{
    size_t i;

    if (o == NULL || o->routes == NULL || o->n_routes == 0)
        return 0;
    for (i = 0; i < o->n_routes; i++)
        if (o->routes[i].path == NULL || o->routes[i].handler == NULL)
            return 0;
#ifndef STRATA_WITH_TLS
    if (o->tls != NULL)
        return 0;
#endif
    return 1;
}

/* The routes are copied (the caller's table may be on its stack); their
 * paths and ud are held. Each method's ud is its route. */
static int build_tables(strata_grpc_server *s,
                        const strata_grpc_server_opts *o)
{
    size_t i;

    s->routes = strata_alloc(s->alloc, o->n_routes * sizeof *s->routes);
    s->methods = strata_alloc(s->alloc, o->n_routes * sizeof *s->methods);
    if (s->routes == NULL || s->methods == NULL)
        return STRATA_ERR_NOMEM;
    memcpy(s->routes, o->routes, o->n_routes * sizeof *s->routes);
    for (i = 0; i < o->n_routes; i++) {
        s->methods[i].path = s->routes[i].path;
        s->methods[i].ud = &s->routes[i];
    }
    s->n_routes = o->n_routes;
    s->call_opts = o->call;
    s->call_opts.methods = s->methods;
    s->call_opts.n_methods = s->n_routes;
    return 0;
}

static void server_dealloc(strata_grpc_server *s)
{
    strata_dealloc(s->alloc, s->routes);
    strata_dealloc(s->alloc, s->methods);
    strata_dealloc(s->alloc, s);
}

strata_grpc_server *strata_grpc_server_new(strata_loop *loop, int listen_fd,
                                           const strata_grpc_server_opts *o,
                                           const strata_allocator *alloc)
{
    strata_grpc_server *s;

    if (loop == NULL || listen_fd < 0 || !opts_ok(o))
        return NULL;
    s = strata_alloc(alloc, sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->alloc = alloc;
    s->listen_fd = listen_fd;
    s->tls = o->tls;
    s->h2_opts = o->h2;
    s->h2_opts.role = STRATA_H2_SERVER;
    s->max_connections = o->max_connections ? o->max_connections
                                            : DEFAULT_MAX_CONNECTIONS;
    if (build_tables(s, o) != 0) {
        server_dealloc(s);
        return NULL;
    }
    s->lw = strata_loop_watch_fd(loop, listen_fd, STRATA_POLL_IN, accept_cb,
                                 s);
    if (s->lw == NULL) {
        server_dealloc(s);
        return NULL;
    }
    return s;
}

void strata_grpc_server_free(strata_grpc_server *s)
{
    if (s == NULL)
        return;
    while (s->conns)
        conn_close(s->conns);
    if (s->pause_timer != 0)
        strata_loop_cancel(s->loop, s->pause_timer);
    strata_watch_remove(s->lw);
    close(s->listen_fd);
    server_dealloc(s);
}

size_t strata_grpc_server_connections(const strata_grpc_server *s)
{
    return s != NULL ? s->n_conns : 0;
}

size_t strata_grpc_server_calls(const strata_grpc_server *s)
{
    return s != NULL ? s->n_calls : 0;
}
