/* route_guide_server [--host H] [--port P] [--cert F --key F]
 * The gRPC route guide (route_guide.proto) on strata's event loop: one
 * method of each kind over a small built-in list of features.
 *   GetFeature    unary: the feature at a point
 *   ListFeatures  server streaming: the features inside a rectangle
 *   RecordRoute   client streaming: points in, a summary out at the end
 *   RouteChat     bidirectional: each note brings back the earlier notes
 *                 made at the same point in this call
 * Listens on 127.0.0.1:50051 unless told otherwise (port 0 picks a free
 * one) and prints the port on stdout; TLS (ALPN h2) given a certificate.
 *
 * Handlers never block. Each keeps its state on the call's user pointer
 * and resumes where it stopped: a message strata_pb_send could not send
 * whole waits in its buffer, and strata_pb_flush at the top of each
 * EV_READY sends the rest before anything new is done.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata/grpc_server.h>
#include <strata/protobuf.h>
#include <strata/socket.h>
#include <strata/tls.h>

#include "route_guide.pb-c.h"

#define MAX_NOTES 64    /* notes one RouteChat call remembers */

typedef struct feature {
    const char *name;
    int32_t latitude, longitude;
} feature;

/* A few features of the public route guide database (an empty name: a
 * point known to hold nothing). */
static const feature features[] = {
    {"Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763},
    {"101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179},
    {"U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468},
    {"5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136},
    {"Mid Hudson Psychiatric Center, New Hampton, NY 10958, USA",
     414008389, -743951297},
    {"287 Flugertown Road, Livingston Manor, NY 12758, USA", 419611318,
     -746524769},
    {"4001 Tremley Point Road, Linden, NJ 07036, USA", 406109563,
     -742186778},
    {"352 South Mountain Road, Wallkill, NY 12589, USA", 416802456,
     -742370183},
    {"Bailey Turn Road, Harriman, NY 10926, USA", 412950425, -741077389},
    {"193-199 Wawayanda Road, Hewitt, NJ 07421, USA", 412144655,
     -743949739},
    {"", 409146138, -746188906},
};
#define N_FEATURES (sizeof features / sizeof features[0])

/* Per-call state of every method. */
typedef struct call_state {
    strata_pb_buf in, out;
    int answered;           /* the reply (or every reply) was handed over */
    Routeguide__Rectangle *rect;    /* ListFeatures: the query */
    size_t next;            /* ListFeatures: the next feature to look at;
                               RouteChat: the next stored note to replay */
    int32_t points, found;  /* RecordRoute */
    double distance;
    Routeguide__Point last;
    time_t start;
    Routeguide__RouteNote *notes[MAX_NOTES];    /* RouteChat */
    size_t n_notes;
    Routeguide__RouteNote *pending; /* RouteChat: the note being answered */
} call_state;

typedef void (*ready_fn)(strata_stream *call, call_state *st);

static const feature *feature_at(int32_t lat, int32_t lon)
{
    size_t i;

    for (i = 0; i < N_FEATURES; i++)
        if (features[i].latitude == lat && features[i].longitude == lon)
            return &features[i];
    return NULL;
}

static int in_range(const Routeguide__Rectangle *r, const feature *f)
{
    int32_t lo_lat = 0, hi_lat = 0, lo_lon = 0, hi_lon = 0;

    if (r->lo && r->hi) {
        lo_lat = r->lo->latitude < r->hi->latitude ? r->lo->latitude
                                                   : r->hi->latitude;
        hi_lat = r->lo->latitude < r->hi->latitude ? r->hi->latitude
                                                   : r->lo->latitude;
        lo_lon = r->lo->longitude < r->hi->longitude ? r->lo->longitude
                                                     : r->hi->longitude;
        hi_lon = r->lo->longitude < r->hi->longitude ? r->hi->longitude
                                                     : r->lo->longitude;
    }
    return f->latitude >= lo_lat && f->latitude <= hi_lat &&
           f->longitude >= lo_lon && f->longitude <= hi_lon;
}

/* Great-circle distance in meters (haversine), as the other route guides
 * compute it. */
static double distance_m(const Routeguide__Point *a, const Routeguide__Point *b)
{
    const double r = 6371000.0, f = 1e7, rad = 3.14159265358979323846 / 180;
    double la1 = a->latitude / f * rad, la2 = b->latitude / f * rad;
    double dla = la2 - la1;
    double dlo = (b->longitude - a->longitude) / f * rad;
    double h = sin(dla / 2) * sin(dla / 2) +
               cos(la1) * cos(la2) * sin(dlo / 2) * sin(dlo / 2);

    return r * 2 * atan2(sqrt(h), sqrt(1 - h));
}

static void feature_msg(const feature *f, int32_t lat, int32_t lon,
                        Routeguide__Feature *out, Routeguide__Point *where)
{
    routeguide__feature__init(out);
    routeguide__point__init(where);
    where->latitude = lat;
    where->longitude = lon;
    out->name = (char *)(f != NULL ? f->name : "");
    out->location = where;
}

/* ---- GetFeature: unary ------------------------------------------------- */

static void get_feature(strata_stream *call, call_state *st)
{
    Routeguide__Feature reply;
    Routeguide__Point where;
    ProtobufCMessage *m;
    Routeguide__Point *p;
    int r;

    if (!st->answered) {
        r = strata_pb_recv(call, &st->in, &routeguide__point__descriptor,
                           &m);
        if (r == STRATA_EOF)
            (void)strata_grpc_finish(call, STRATA_GRPC_INVALID_ARGUMENT,
                                     "no Point", NULL, 0);
        if (r != 0)
            return;     /* NEED: more later; an error ends the call */
        p = (Routeguide__Point *)m;
        feature_msg(feature_at(p->latitude, p->longitude), p->latitude,
                    p->longitude, &reply, &where);
        st->answered = 1;
        r = strata_pb_send(call, &st->out, &reply.base);
        strata_pb_free(m, NULL);
        if (r != 0)
            return;     /* the rest goes with strata_pb_flush */
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* ---- ListFeatures: server streaming ------------------------------------ */

static void list_features(strata_stream *call, call_state *st)
{
    Routeguide__Feature reply;
    Routeguide__Point where;
    ProtobufCMessage *m;
    const feature *f;
    int r;

    if (st->rect == NULL) {
        r = strata_pb_recv(call, &st->in, &routeguide__rectangle__descriptor,
                           &m);
        if (r == STRATA_EOF)
            (void)strata_grpc_finish(call, STRATA_GRPC_INVALID_ARGUMENT,
                                     "no Rectangle", NULL, 0);
        if (r != 0)
            return;
        st->rect = (Routeguide__Rectangle *)m;
    }
    while (st->next < N_FEATURES) {
        f = &features[st->next++];
        if (f->name[0] == '\0' || !in_range(st->rect, f))
            continue;
        feature_msg(f, f->latitude, f->longitude, &reply, &where);
        if (strata_pb_send(call, &st->out, &reply.base) != 0)
            return;     /* flow control: resumed at the next EV_READY */
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* ---- RecordRoute: client streaming ------------------------------------- */

static void record_route(strata_stream *call, call_state *st)
{
    Routeguide__RouteSummary sum = ROUTEGUIDE__ROUTE_SUMMARY__INIT;
    ProtobufCMessage *m;
    Routeguide__Point *p;
    const feature *f;
    int r;

    while (!st->answered) {
        r = strata_pb_recv(call, &st->in, &routeguide__point__descriptor,
                           &m);
        if (r == STRATA_EOF) {  /* the route is complete */
            sum.point_count = st->points;
            sum.feature_count = st->found;
            sum.distance = (int32_t)st->distance;
            sum.elapsed_time = (int32_t)(time(NULL) - st->start);
            st->answered = 1;
            if (strata_pb_send(call, &st->out, &sum.base) != 0)
                return;
            break;
        }
        if (r != 0)
            return;
        p = (Routeguide__Point *)m;
        f = feature_at(p->latitude, p->longitude);
        st->found += f != NULL && f->name[0] != '\0';
        if (st->points++ > 0)
            st->distance += distance_m(&st->last, p);
        st->last.latitude = p->latitude;
        st->last.longitude = p->longitude;
        strata_pb_free(m, NULL);
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* ---- RouteChat: bidirectional ----------------------------------------- */

static int same_point(const Routeguide__Point *a, const Routeguide__Point *b)
{
    return a != NULL && b != NULL && a->latitude == b->latitude &&
           a->longitude == b->longitude;
}

/* Send the stored notes made at the pending note's point, then keep it.
 * 0 when done, or the NEED code (or error) of a send. */
static int answer_note(strata_stream *call, call_state *st)
{
    Routeguide__RouteNote *n = st->pending;
    int r;

    while (st->next < st->n_notes) {
        Routeguide__RouteNote *old = st->notes[st->next++];

        if (same_point(old->location, n->location) &&
            (r = strata_pb_send(call, &st->out, &old->base)) != 0)
            return r;
    }
    if (st->n_notes == MAX_NOTES) {
        (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                 "too many notes in one chat", NULL, 0);
        return STRATA_ERR_TOO_BIG;
    }
    st->notes[st->n_notes++] = n;
    st->pending = NULL;
    return 0;
}

static void route_chat(strata_stream *call, call_state *st)
{
    ProtobufCMessage *m;
    int r;

    for (;;) {
        if (st->pending != NULL && answer_note(call, st) != 0)
            return;
        r = strata_pb_recv(call, &st->in, &routeguide__route_note__descriptor,
                           &m);
        if (r == STRATA_EOF)
            break;
        if (r != 0)
            return;
        st->pending = (Routeguide__RouteNote *)m;
        st->next = 0;
    }
    (void)strata_grpc_finish(call, STRATA_GRPC_OK, NULL, NULL, 0);
}

/* ---- the handler every route shares ------------------------------------ */

static void state_free(call_state *st)
{
    size_t i;

    strata_pb_buf_free(&st->in);
    strata_pb_buf_free(&st->out);
    strata_pb_free((ProtobufCMessage *)st->rect, NULL);
    strata_pb_free((ProtobufCMessage *)st->pending, NULL);
    for (i = 0; i < st->n_notes; i++)
        strata_pb_free(&st->notes[i]->base, NULL);
    free(st);
}

/* Each route's ud is its method's ready function. */
static void handler(strata_stream *call, int event, void *ud)
{
    call_state *st = strata_grpc_user(call);
    ready_fn ready = *(const ready_fn *)ud;

    if (event == STRATA_GRPC_EV_END) {
        if (st != NULL)
            state_free(st);
        return;
    }
    if (event == STRATA_GRPC_EV_START) {
        if ((st = calloc(1, sizeof *st)) == NULL) {
            (void)strata_grpc_finish(call, STRATA_GRPC_RESOURCE_EXHAUSTED,
                                     "out of memory", NULL, 0);
            return;
        }
        strata_pb_buf_init(&st->in, NULL);
        strata_pb_buf_init(&st->out, NULL);
        st->start = time(NULL);
        strata_grpc_set_user(call, st);
        /* and on: the request may be here already */
    }
    /* a message left half-sent goes first; NEED: wait again */
    if (st != NULL && strata_pb_flush(call, &st->out) == 0)
        ready(call, st);
}

static const ready_fn get_feature_fn = get_feature;
static const ready_fn list_features_fn = list_features;
static const ready_fn record_route_fn = record_route;
static const ready_fn route_chat_fn = route_chat;

/* The route table comes from the service descriptor protoc-c generated
 * from route_guide.proto: a method renamed there stops the server at
 * start-up instead of leaving clients with UNIMPLEMENTED. */
static const struct {
    const char *method;
    const ready_fn *fn;
} methods[] = {
    {"GetFeature", &get_feature_fn},
    {"ListFeatures", &list_features_fn},
    {"RecordRoute", &record_route_fn},
    {"RouteChat", &route_chat_fn},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

static int make_routes(strata_grpc_route *routes, char (*paths)[64])
{
    size_t i;

    for (i = 0; i < N_METHODS; i++) {
        if (strata_pb_method_path(&routeguide__route_guide__descriptor,
                                  methods[i].method, paths[i], 64) < 0) {
            fprintf(stderr, "route_guide_server: no method %s in %s\n",
                    methods[i].method,
                    routeguide__route_guide__descriptor.name);
            return -1;
        }
        routes[i].path = paths[i];
        routes[i].handler = handler;
        routes[i].ud = (void *)methods[i].fn;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: route_guide_server [--host H] [--port P] "
                    "[--cert F --key F]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "50051";
    const char *cert = NULL, *key = NULL;
    strata_grpc_server_opts o;
    strata_grpc_route routes[N_METHODS];
    char paths[N_METHODS][64];
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
    if (make_routes(routes, paths) != 0)
        return 1;
    memset(&o, 0, sizeof o);
    o.routes = routes;
    o.n_routes = N_METHODS;
    if (cert != NULL) {
        /* gRPC over TLS is HTTP/2 agreed by ALPN */
        o.tls = strata_tls_config_new(STRATA_TLS_SERVER, NULL);
        if (o.tls == NULL ||
            strata_tls_config_cert_file(o.tls, cert, key) != 0 ||
            strata_tls_config_alpn(o.tls, "h2") != 0) {
            fprintf(stderr, "route_guide_server: %s\n",
                    o.tls ? strata_tls_config_reason(o.tls) : "no memory");
            return 1;
        }
    }
    lfd = strata_tcp_listen(host, port, 128);
    loop = strata_loop_new(NULL);
    if (lfd < 0 || loop == NULL ||
        (srv = strata_grpc_server_new(loop, lfd, &o, NULL)) == NULL) {
        fprintf(stderr, "route_guide_server: cannot listen on %s:%s\n",
                host, port);
        return 1;
    }
    printf("%d\n", strata_local_port(lfd));
    fflush(stdout);
    fprintf(stderr, "route_guide_server: listening on %s:%d%s\n", host,
            strata_local_port(lfd), o.tls ? " (TLS)" : "");
    strata_loop_run(loop);
    strata_grpc_server_free(srv);
    strata_loop_free(loop);
    strata_tls_config_free(o.tls);
    return 0;
}
