/* route_guide_client [--target HOST:PORT] [--tls --ca F]
 * Calls each method of the route guide (route_guide.proto) once, as the
 * other gRPC route-guide clients do, and prints what comes back:
 * GetFeature twice, ListFeatures over a rectangle, RecordRoute with a few
 * points, RouteChat with notes at repeated points.
 *
 * The client drives its HTTP/2 connection itself, without an event loop:
 * every call is tried first, and only a NEED code makes it wait, with
 * poll(), on the connection's descriptor for what the connection wants.
 * (A gRPC call sits on an HTTP/2 stream, which has no descriptor of its
 * own: the connection's is the one to wait on.) All four calls share one
 * connection, one after the other.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/grpc.h>
#include <strata/h2.h>
#include <strata/protobuf.h>
#include <strata/uri.h>

#include "route_guide.pb-c.h"

#define WAIT_MS 10000   /* give up when nothing moves for this long */

typedef struct client {
    strata_h2 *h;
    const char *target;
    int tls;
} client;

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
        fprintf(stderr, "%s: %s\n", "route_guide_client", err);
        return NULL;
    }
    return h;
}

/* ---- one call: open, send, half-close, receive --------------------------- */

static strata_stream *open_call(client *c, const char *method)
{
    strata_grpc_opts o;
    strata_stream *call;

    memset(&o, 0, sizeof o);
    o.path = method;
    o.authority = c->target;
    o.scheme = c->tls ? "https" : "http";
    o.timeout_ms = WAIT_MS;
    if (strata_grpc_call(c->h, &o, NULL, &call) != 0)
        return NULL;
    return call;
}

/* One message, waiting as long as it takes: 0 or a status. */
static int send_msg(client *c, strata_stream *call, strata_pb_buf *out,
                    const ProtobufCMessage *m)
{
    int r = strata_pb_send(call, out, m);

    while (is_need(r) && wait_conn(c->h) == 0)
        r = strata_pb_flush(call, out);
    return r;
}

/* The end of our messages (half-close). */
static int close_send(client *c, strata_stream *call)
{
    int r;

    while (is_need(r = strata_shutdown(call)) && wait_conn(c->h) == 0)
        ;
    return r;
}

/* One message: 0 and *m, STRATA_EOF after the last one (status OK), or
 * another status. */
static int recv_msg(client *c, strata_stream *call, strata_pb_buf *in,
                    const ProtobufCMessageDescriptor *d, ProtobufCMessage **m)
{
    int r;

    while (is_need(r = strata_pb_recv(call, in, d, m)))
        if (wait_conn(c->h) != 0)
            return STRATA_ERR_TIMEOUT;
    return r;
}

/* Say how a call ended unless it ended well; 0 when it did. */
static int report_end(const char *what, strata_stream *call, int r)
{
    if (r == STRATA_EOF)
        return 0;
    if (r == STRATA_ERR_GRPC)
        fprintf(stderr, "%s: %s: %s\n", what,
                strata_grpc_status_name(strata_grpc_status(call)),
                strata_grpc_message(call));
    else
        fprintf(stderr, "%s: %s\n", what, strata_strerror(r));
    return r;
}

static void print_feature(const Routeguide__Feature *f)
{
    int32_t lat = f->location ? f->location->latitude : 0;
    int32_t lon = f->location ? f->location->longitude : 0;

    if (f->name[0] != '\0')
        printf("Found feature called \"%s\" at %.6f, %.6f\n", f->name,
               lat / 1e7, lon / 1e7);
    else
        printf("Found no feature at %.6f, %.6f\n", lat / 1e7, lon / 1e7);
}

static void print_feature_msg(const ProtobufCMessage *m)
{
    print_feature((const Routeguide__Feature *)m);
}

static void print_summary(const ProtobufCMessage *m)
{
    const Routeguide__RouteSummary *s = (const Routeguide__RouteSummary *)m;

    printf("Finished trip with %d points\nPassed %d features\n"
           "Travelled %d meters\nIt took %d seconds\n", (int)s->point_count,
           (int)s->feature_count, (int)s->distance, (int)s->elapsed_time);
}

static void print_note(const ProtobufCMessage *m)
{
    const Routeguide__RouteNote *n = (const Routeguide__RouteNote *)m;

    printf("Got message \"%s\" at %d, %d\n", n->message,
           n->location ? (int)n->location->latitude : 0,
           n->location ? (int)n->location->longitude : 0);
}

/* One call: the client's messages (one for unary and server-streaming
 * methods), all sent first, then the half-close, then every reply printed
 * until the call ends. (Fine for a few small messages; a long bidirectional
 * stream would interleave sends and receives to keep both windows open.) */
static int stream_call(client *c, const char *method,
                       const ProtobufCMessage *const *msgs, size_t n,
                       const ProtobufCMessageDescriptor *reply_type,
                       void (*print)(const ProtobufCMessage *))
{
    strata_stream *call = open_call(c, method);
    strata_pb_buf in, out;
    ProtobufCMessage *m;
    size_t i;
    int r = 0;

    if (call == NULL)
        return STRATA_ERR_STATE;
    strata_pb_buf_init(&in, NULL);
    strata_pb_buf_init(&out, NULL);
    for (i = 0; i < n && r == 0; i++)
        r = send_msg(c, call, &out, msgs[i]);
    if (r == 0)
        r = close_send(c, call);
    while ((r = recv_msg(c, call, &in, reply_type, &m)) == 0) {
        print(m);
        strata_pb_free(m, NULL);
    }
    r = report_end(method, call, r);
    strata_pb_buf_free(&in);
    strata_pb_buf_free(&out);
    strata_free(call);
    return r;
}

/* ---- the four methods ------------------------------------------------------ */

static int get_feature(client *c, int32_t lat, int32_t lon)
{
    Routeguide__Point p = ROUTEGUIDE__POINT__INIT;

    const ProtobufCMessage *msg = &p.base;

    p.latitude = lat;
    p.longitude = lon;
    return stream_call(c, "/routeguide.RouteGuide/GetFeature", &msg, 1,
                       &routeguide__feature__descriptor, print_feature_msg);
}

static int list_features(client *c)
{
    Routeguide__Rectangle r = ROUTEGUIDE__RECTANGLE__INIT;
    Routeguide__Point lo = ROUTEGUIDE__POINT__INIT;
    Routeguide__Point hi = ROUTEGUIDE__POINT__INIT;
    const ProtobufCMessage *msg = &r.base;

    lo.latitude = 400000000;
    lo.longitude = -750000000;
    hi.latitude = 420000000;
    hi.longitude = -730000000;
    r.lo = &lo;
    r.hi = &hi;
    printf("Looking for features between 40, -75 and 42, -73\n");
    return stream_call(c, "/routeguide.RouteGuide/ListFeatures", &msg, 1,
                       &routeguide__feature__descriptor, print_feature_msg);
}

static int record_route(client *c)
{
    static const int32_t route[][2] = {
        {407838351, -746143763}, {408122808, -743999179},
        {413628156, -749015468}, {410000000, -745000000},
        {412144655, -743949739},
    };
    Routeguide__Point p[5];
    const ProtobufCMessage *msgs[5];
    size_t i;

    for (i = 0; i < 5; i++) {
        routeguide__point__init(&p[i]);
        p[i].latitude = route[i][0];
        p[i].longitude = route[i][1];
        msgs[i] = &p[i].base;
        printf("Visiting point %.6f, %.6f\n", route[i][0] / 1e7,
               route[i][1] / 1e7);
    }
    return stream_call(c, "/routeguide.RouteGuide/RecordRoute", msgs, 5,
                       &routeguide__route_summary__descriptor, print_summary);
}

static int route_chat(client *c)
{
    static const char *const text[] = {"First message", "Second message",
                                       "Third message", "Fourth message"};
    static const int32_t at[][2] = {{0, 0}, {0, 1}, {1, 0}, {0, 0}};
    Routeguide__RouteNote notes[4];
    Routeguide__Point where[4];
    const ProtobufCMessage *msgs[4];
    size_t i;

    for (i = 0; i < 4; i++) {
        routeguide__route_note__init(&notes[i]);
        routeguide__point__init(&where[i]);
        where[i].latitude = at[i][0];
        where[i].longitude = at[i][1];
        notes[i].location = &where[i];
        notes[i].message = (char *)text[i];
        msgs[i] = &notes[i].base;
        printf("Sending message \"%s\" at %d, %d\n", text[i], (int)at[i][0],
               (int)at[i][1]);
    }
    return stream_call(c, "/routeguide.RouteGuide/RouteChat", msgs, 4,
                       &routeguide__route_note__descriptor, print_note);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: route_guide_client [--target HOST:PORT] [--tls --ca F]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *ca = NULL;
    client c;
    int i, r;

    memset(&c, 0, sizeof c);
    c.target = "127.0.0.1:50051";
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0)
            c.tls = 1;
        else if (i + 1 >= argc)
            return usage();
        else if (strcmp(argv[i], "--target") == 0)
            c.target = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[++i];
        else
            return usage();
    }
    if (c.tls != (ca != NULL) || strchr(c.target, ':') == NULL)
        return usage();
    c.h = connect_h2(c.target, ca);
    if (c.h == NULL) {
        fprintf(stderr, "route_guide_client: cannot connect to %s\n",
                c.target);
        return 1;
    }
    printf("-------------- GetFeature --------------\n");
    r = get_feature(&c, 409146138, -746188906);
    if (r == 0)
        r = get_feature(&c, 407838351, -746143763);
    if (r == 0) {
        printf("-------------- ListFeatures --------------\n");
        r = list_features(&c);
    }
    if (r == 0) {
        printf("-------------- RecordRoute --------------\n");
        r = record_route(&c);
    }
    if (r == 0) {
        printf("-------------- RouteChat --------------\n");
        r = route_chat(&c);
    }
    strata_h2_free(c.h);
    return r == 0 ? 0 : 1;
}
