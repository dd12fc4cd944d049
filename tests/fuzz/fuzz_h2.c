/* libFuzzer target for the h2 layer: what a hostile peer sends to a strata
 * HTTP/2 server, or to a strata client after it opened two requests.
 * nghttp2 parses the frames; what is under test is strata's glue around
 * it: the receive rings and windows, the output buffer, NO_COPY DATA from
 * the caller's bytes, the accept and ready lists, stream lifetimes and the
 * connection's reference count.
 *
 * The first two bytes choose the case; the rest is the peer's byte stream,
 * written into the other end of a pipe pair in chunks, between the turns
 * of an application loop that drives the connection, accepts every stream
 * and, with choices from a generator seeded by the same two bytes, reads
 * bodies (random sizes), responds, writes bodies, ends them with a
 * shutdown or trailers, resets, frees streams early and sometimes frees
 * the connection before its streams. Checked, besides ASan/UBSan/LSan:
 *  - every call returns one of its documented statuses;
 *  - a stream never returns more body bytes than the peer declared as
 *    DATA for its id (the input's frames, padding taken off, counted here
 *    by a parser of our own), and one read never returns more than the
 *    stream's window allows (a read as large as any window takes all the
 *    stream holds, so this bounds the ring);
 *  - the output is whole frames (a last partial one only when the
 *    connection failed or was freed with bytes unsent); the DATA of each
 *    stream carries exactly the bytes strata_send said it sent, in order,
 *    once all output went down;
 *  - the loop terminates: after the peer's EOF the connection and every
 *    stream reach a final status within a bounded number of turns.
 *
 * Input: b0 bit 0 = role (0: we are the server, 1: the client); bits 1-2
 * = our stream_window (64 KiB, 1 byte, 1 KiB, 100000); bits 3-5 = pipe
 * max_chunk; bits 6-7 = need percent. b1 bits 0-1 = our
 * max_concurrent_streams (100, 1, 2, 8); bit 2 = keep the input open (no
 * EOF after it); bit 3 = free the connection during the loop; all of b0
 * and b1 seed the application's choices. The rest: the peer's bytes (a
 * server gets the client preface first; a client gets the server's
 * frames, its requests being GET / (END_STREAM) on stream 1 and a POST
 * with a body on stream 3).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/h2.h>

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

#define MAX_APP 16          /* streams the application holds at once */
#define MAX_IDS 256         /* stream ids whose bytes are counted */
#define STALL_LIMIT 2000    /* turns without progress after the EOF */
#define QUIET_TURNS 64      /* turns of an idle open connection */
#define TURN_LIMIT 200000L  /* a hard bound, whatever the input */
#define BODY_MAX 70000u     /* more than a default window */
#define BIG_READ (128u * 1024u + 1)
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static uint8_t pattern[BODY_MAX];
static uint8_t rbuf[BIG_READ];

/* ---- the generator of the application's choices ------------------------ */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 16);
}

static int one_in(unsigned n)
{
    return rnd() % n == 0;
}

/* ---- per stream id: bytes the peer declared, we read, sent, saw sent --- */

typedef struct idrec {
    int32_t id;
    uint64_t declared;      /* DATA payload in the input, padding off */
    uint64_t read;          /* body bytes strata_recv returned */
    uint64_t sent;          /* bytes strata_send said it sent */
    uint64_t seen;          /* DATA payload in the output */
} idrec;

typedef struct ids {
    idrec r[MAX_IDS];
    int n;
    int full;               /* an id did not fit: its checks are off */
} ids;

static idrec *id_find(ids *t, int32_t id, int add)
{
    int i;

    for (i = 0; i < t->n; i++)
        if (t->r[i].id == id)
            return &t->r[i];
    if (!add)
        return NULL;
    if (t->n == MAX_IDS) {
        t->full = 1;
        return NULL;
    }
    memset(&t->r[t->n], 0, sizeof t->r[0]);
    t->r[t->n].id = id;
    return &t->r[t->n++];
}

static uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static int32_t be31(const uint8_t *p)
{
    return (int32_t)(((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                      (uint32_t)p[2] << 8 | p[3]) & 0x7fffffffu);
}

/* The DATA the peer sends, per stream: an upper bound of what nghttp2 can
 * hand over, since it parses the same frames in the same order and stops
 * at the first connection error. */
static void count_input(ids *t, const uint8_t *p, size_t n, int server)
{
    size_t pos = 0;

    if (server) {
        if (n < 24 || memcmp(p, PREFACE, 24) != 0)
            return;     /* a bad preface: nothing may be delivered */
        pos = 24;
    }
    while (n - pos >= 9) {
        uint32_t len = be24(p + pos);
        uint8_t type = p[pos + 3], flags = p[pos + 4];
        int32_t id = be31(p + pos + 5);

        if (type == 0 && id != 0) {
            idrec *r = id_find(t, id, 1);
            uint32_t body = len;

            if ((flags & 0x8) && len >= 1 && n - pos > 9 &&
                p[pos + 9] < len)
                body = len - 1 - p[pos + 9];
            if (r)
                r->declared += body;
        }
        if (n - pos - 9 < len)
            break;
        pos += 9 + len;
    }
}

static uint8_t pat_at(uint64_t off)
{
    return pattern[off % BODY_MAX];
}

/* Whole frames in what we wrote, and each stream's DATA is the pattern
 * from 0 on, never more than was sent. Returns 1 when it ended on a frame
 * boundary. */
static int check_output(ids *t, const uint8_t *p, size_t n, int server)
{
    size_t pos = 0;
    int first = 1;

    if (n == 0)
        return 1;
    if (!server) {      /* a client's preface, maybe cut short */
        CHECK(memcmp(p, PREFACE, n < 24 ? n : 24) == 0);
        if (n < 24)
            return 0;
        pos = 24;
    }
    while (n - pos >= 9) {
        uint32_t len = be24(p + pos);
        uint8_t type = p[pos + 3], flags = p[pos + 4];
        int32_t id = be31(p + pos + 5);

        CHECK((p[pos + 5] & 0x80) == 0);
        CHECK(type <= 9);               /* nothing but RFC 9113 frames */
        CHECK(!first || type == 4);     /* SETTINGS opens our side */
        CHECK(len <= 16384 || type == 0);
        first = 0;
        if (n - pos - 9 < len)
            break;
        if (type == 0) {
            idrec *r = id_find(t, id, 0);
            uint32_t i;

            CHECK(id != 0 && !(flags & 0x8));   /* we never pad */
            CHECK(r != NULL || t->full);
            if (r) {
                for (i = 0; i < len; i++)
                    CHECK(p[pos + 9 + i] == pat_at(r->seen + i));
                r->seen += len;
                CHECK(r->seen <= r->sent);
            }
        }
        pos += 9 + len;
    }
    return pos == n;
}

/* ---- the transport --------------------------------------------------- */

static int need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

typedef struct sink {
    uint8_t *p;
    size_t n, cap;
} sink;

static int take_output(strata_stream *raw, sink *k)
{
    size_t before = k->n;

    for (;;) {
        ssize_t r;

        if (k->n == k->cap) {
            k->cap = k->cap * 2 + 65536;
            k->p = realloc(k->p, k->cap);
            CHECK(k->p != NULL);
        }
        r = strata_read(raw, k->p + k->n, k->cap - k->n);
        if (r > 0)
            k->n += (size_t)r;
        else if (!need(r) || strata_pipe_pending(raw) == 0)
            return k->n != before;
    }
}

static void put_all(strata_stream *raw, const uint8_t *p, size_t len)
{
    long tries = 0;

    while (len > 0) {
        ssize_t r = strata_write(raw, p, len);

        if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE) {
            CHECK(++tries < 100000);
            continue;
        }
        CHECK(r > 0 && (size_t)r <= len);
        p += r;
        len -= (size_t)r;
    }
}

/* ---- statuses ----------------------------------------------------------- */

/* What a connection's failure shows through any call: a protocol error
 * (ours or the peer's, a GOAWAY with an error), the peer gone with
 * streams open, or a clean end. */
static int conn_final(long r)
{
    return r == STRATA_EOF || r == STRATA_ERR_PROTO ||
           r == STRATA_ERR_TRUNCATED;
}

static int drive_ok(long r)
{
    return r == 0 || need(r) || conn_final(r);
}

static int recv_ok(long r)
{
    return need(r) || conn_final(r) || r == STRATA_ERR_CLOSED;
}

/* send, shutdown, trailers, respond */
static int send_ok(long r)
{
    return r == 0 || need(r) || r == STRATA_ERR_CLOSED ||
           r == STRATA_ERR_PROTO || r == STRATA_ERR_TRUNCATED ||
           r == STRATA_ERR_STATE || r == STRATA_EOF;
}

/* ---- the application ---------------------------------------------------- */

enum { END_NONE, END_SHUT, END_TRAILERS, END_DONE };

typedef struct app_stream {
    strata_stream *s;
    int32_t id;
    int head;               /* client: the response head came */
    int responded;          /* server: respond returned 0 */
    int body;               /* a body may be written */
    size_t body_goal;       /* bytes to write in all */
    size_t pending;         /* a send to retry with this length */
    int end;                /* END_* */
    int rx_final;           /* recv returned a final status */
    long rx_status;
    int misuse;
} app_stream;

typedef struct run {
    strata_stream *raw;
    strata_stream *end;     /* the connection's lower: it owns it, so
                               it is gone with the connection */
    strata_h2 *h;           /* NULL once the application freed it */
    int server;
    uint32_t window;        /* our stream_window */
    uint32_t wmax;          /* what one stream may hold */
    app_stream a[MAX_APP];
    int n;
    ids t;
    sink out;
    long conn_status;       /* a final status of strata_h2_drive, or 1 */
    int progress;
    int extended;           /* client: extended CONNECT tried */
    int pings, goaways;
    int requests;
} run;

static const strata_h2_header req_get[] = {
    {":method", "GET"}, {":scheme", "http"}, {":authority", "fuzz"},
    {":path", "/"},
};
static const strata_h2_header req_post[] = {
    {":method", "POST"}, {":scheme", "http"}, {":authority", "fuzz"},
    {":path", "/upload"}, {"content-type", "application/octet-stream"},
};
static const strata_h2_header req_ws[] = {
    {":method", "CONNECT"}, {":protocol", "websocket"},
    {":scheme", "http"}, {":authority", "fuzz"}, {":path", "/chat"},
    {"sec-websocket-version", "13"},
};
static const strata_h2_header resp_hdr[] = {
    {"content-type", "text/plain"}, {"x-fuzz", "1"},
};
static const strata_h2_header trailers[] = {
    {"grpc-status", "0"}, {"x-checksum", "abc"},
};

static void adopt(run *r, strata_stream *s, int body)
{
    app_stream *as;
    int32_t id = strata_h2_stream_id(s);

    CHECK(strata_h2_of(s) == r->h);
    CHECK(id > 0);
    if (r->server) {
        CHECK(id % 2 == 1);
        CHECK(strata_h2_get(s, ":method") != NULL);
        CHECK(strata_h2_head(s, NULL) != NULL);
    }
    strata_h2_set_user(s, id_find(&r->t, id, 1));
    if (r->n == MAX_APP || one_in(16)) {
        strata_free(s);     /* dropped at once: reset with CANCEL */
        return;
    }
    as = &r->a[r->n++];
    memset(as, 0, sizeof *as);
    as->s = s;
    as->id = id;
    as->body = body;
    as->body_goal = rnd() % (one_in(4) ? BODY_MAX : 3000);
}

static void drop(run *r, int i)
{
    strata_free(r->a[i].s);
    r->a[i] = r->a[--r->n];
}

static void do_read(run *r, app_stream *as)
{
    static const size_t sizes[6] = {1, 7, 100, 1024, 16384, BIG_READ};
    size_t len = sizes[rnd() % 6];
    unsigned fl = 1234;
    idrec *rec = id_find(&r->t, as->id, 0);
    ssize_t n = strata_recv(as->s, rbuf, len, &fl);

    CHECK(fl == 0);
    if (n > 0) {
        CHECK(!as->rx_final);
        CHECK((size_t)n <= len);
        /* all a stream holds is within its window */
        CHECK((size_t)n <= r->wmax);
        CHECK(rec != NULL || r->t.full);
        if (rec) {
            rec->read += (uint64_t)n;
            CHECK(rec->read <= rec->declared);
        }
        r->progress = 1;
        return;
    }
    CHECK(n != 0);
    CHECK(recv_ok(n));
    if (need(n))
        return;
    /* final statuses stay */
    /* final statuses stay (a reset stream's CLOSED may turn into the
     * connection's failure) */
    CHECK(!as->rx_final || n == as->rx_status ||
          as->rx_status == STRATA_ERR_CLOSED);
    if (!as->rx_final)
        r->progress = 1;
    as->rx_final = 1;
    as->rx_status = n;
    if (n == STRATA_EOF)
        (void)strata_h2_trailers(as->s, NULL);
    else
        CHECK(n == STRATA_ERR_CLOSED ? strata_h2_reset_code(as->s) >= 0 : 1);
}

static void do_respond(run *r, app_stream *as)
{
    static const int codes[5] = {200, 204, 404, 500, 299};
    unsigned flags = one_in(4) ? STRATA_H2_END_STREAM : 0;
    int rv = strata_h2_respond(as->s, codes[rnd() % 5], resp_hdr,
                               rnd() % 3, flags);

    (void)r;
    CHECK(send_ok(rv) && !need(rv));
    if (rv == 0) {
        as->responded = 1;
        as->body = !(flags & STRATA_H2_END_STREAM);
        if (!as->body)
            as->end = END_DONE;
    }
}

static void do_write(run *r, app_stream *as)
{
    idrec *rec = id_find(&r->t, as->id, 0);
    uint64_t off = rec ? rec->sent : 0;
    size_t len;
    ssize_t n;

    if (!rec || off >= as->body_goal) {
        if (as->end == END_NONE)
            as->end = one_in(2) ? END_SHUT : END_TRAILERS;
        return;
    }
    if (!as->pending) {
        len = 1 + rnd() % (one_in(3) ? BODY_MAX : 2000);
        if (len > as->body_goal - off)
            len = as->body_goal - off;
        if (len > BODY_MAX - off % BODY_MAX)
            len = BODY_MAX - off % BODY_MAX;
        as->pending = len;
    }
    n = strata_send(as->s, pattern + off % BODY_MAX, as->pending, 0);
    if (n > 0) {
        CHECK((size_t)n <= as->pending);
        rec->sent += (uint64_t)n;
        as->pending = 0;
        r->progress = 1;
        return;
    }
    CHECK(n != 0);
    CHECK(send_ok(n));
    if (!need(n)) {
        as->body = 0;   /* the stream cannot send any more */
        as->pending = 0;
        as->end = END_DONE;
    }
}

static void do_end(run *r, app_stream *as)
{
    int rv;

    if (as->end == END_TRAILERS)
        rv = strata_h2_send_trailers(as->s, trailers, 1 + rnd() % 2);
    else
        rv = strata_shutdown(as->s);
    CHECK(send_ok(rv));
    if (!need(rv)) {
        as->end = END_DONE;
        r->progress = 1;
    }
}

/* Calls a caller may get wrong: each must be refused, never crash. */
static void do_misuse(run *r, app_stream *as)
{
    long rv;

    switch (rnd() % 5) {
    case 0:     /* a body before the head */
        if (r->server && !as->responded) {
            rv = strata_send(as->s, "x", 1, 0);
            CHECK(rv < 0 && send_ok(rv) && !need(rv));
        }
        break;
    case 1:
        if (r->server && !as->responded) {
            rv = strata_h2_send_trailers(as->s, trailers, 1);
            CHECK(rv == STRATA_ERR_STATE);
        }
        break;
    case 2:     /* an uppercase name, a pseudo-header in trailers */
        if (r->server && !as->responded) {
            static const strata_h2_header bad[] = {{"X-Upper", "1"}};

            rv = strata_h2_respond(as->s, 200, bad, 1, 0);
            CHECK(rv == STRATA_ERR_ARG || (rv < 0 && send_ok(rv)));
        } else if (as->body && as->end == END_NONE) {
            static const strata_h2_header bad[] = {{":status", "200"}};

            rv = strata_h2_send_trailers(as->s, bad, 1);
            CHECK(rv == STRATA_ERR_ARG || rv == STRATA_ERR_STATE);
        }
        break;
    case 3:
        if (r->server) {
            rv = strata_h2_respond(as->s, 99, NULL, 0, 0);
            CHECK(rv == STRATA_ERR_ARG);
        } else {
            rv = strata_h2_respond(as->s, 200, NULL, 0, 0);
            CHECK(rv == STRATA_ERR_ARG);
        }
        break;
    default:    /* a send after our end */
        if (as->end == END_DONE) {
            rv = strata_send(as->s, "x", 1, 0);
            CHECK(rv < 0 && send_ok(rv) && !need(rv));
        }
        break;
    }
    as->misuse++;
}

static void look(app_stream *as)
{
    size_t n = 0;
    unsigned p = strata_poll(as->s, STRATA_POLL_IN | STRATA_POLL_OUT);
    long code = strata_h2_reset_code(as->s);

    CHECK((p & ~(STRATA_POLL_IN | STRATA_POLL_OUT | STRATA_POLL_HUP |
                 STRATA_POLL_ERR)) == 0);
    CHECK(code >= -1 && code <= 0xffffffffL);
    (void)strata_wants(as->s);
    (void)strata_h2_head(as->s, &n);
    (void)strata_h2_trailers(as->s, &n);
    (void)strata_h2_status(as->s);
    (void)strata_h2_get(as->s, "content-type");
    CHECK(strata_fd(as->s) == -1);  /* the connection has the fd */
}

/* One turn of one stream; returns 1 when it was freed. */
static int act(run *r, int i)
{
    app_stream *as = &r->a[i];
    unsigned c = rnd() % 24;

    if (!r->server && !as->head) {
        int rv = strata_h2_response_head(as->s);

        CHECK(rv == 0 || recv_ok(rv));
        if (rv == 0) {
            int st = strata_h2_status(as->s);

            /* nghttp2 takes any three digits ("029" too) as final */
            CHECK(st > 0 && st <= 999);
            as->head = 1;
        }
    }
    /* a send or an end that got a NEED is retried (the same call), or
     * the stream is read meanwhile: the window may wait on our reading */
    if (as->pending && one_in(2)) {
        do_write(r, as);
        return 0;
    }
    if ((as->end == END_SHUT || as->end == END_TRAILERS) && one_in(2)) {
        do_end(r, as);
        return 0;
    }
    if (c < 9) {
        do_read(r, as);
    } else if (c < 11) {
        if (r->server && !as->responded)
            do_respond(r, as);
        else if (as->body && as->end == END_NONE)
            do_write(r, as);
    } else if (c < 15) {
        if (as->body && as->end == END_NONE)
            do_write(r, as);
    } else if (c == 15) {
        if (one_in(4)) {
            static const uint32_t codes[4] = {STRATA_H2_CANCEL,
                STRATA_H2_NO_ERROR, STRATA_H2_INTERNAL_ERROR, 0xdeadbeefu};
            int rv = strata_h2_reset(as->s, codes[rnd() % 4]);

            CHECK(rv == 0 || rv == STRATA_ERR_STATE);
        }
    } else if (c == 16) {
        if (one_in(8)) {
            drop(r, i);
            return 1;
        }
    } else if (c == 17) {
        if (one_in(4))
            do_misuse(r, as);
    } else if (c == 18) {
        int rv = strata_flush(as->s);

        CHECK(rv == 0 || send_ok(rv));
    } else {
        look(as);
    }
    return 0;
}

/* Client: more requests as the loop goes, extended CONNECT once. */
static void client_open(run *r)
{
    strata_stream *s = NULL;
    int ws = !r->extended && one_in(2);
    int get = one_in(2);
    int rv;

    if (ws)
        rv = strata_h2_request(r->h, req_ws, 6, 0, &s);
    else
        rv = strata_h2_request(r->h, get ? req_get : req_post,
                               get ? 4 : 5, get ? STRATA_H2_END_STREAM : 0,
                               &s);
    CHECK(rv == 0 || need(rv) || conn_final(rv) ||
          rv == STRATA_ERR_STATE || rv == STRATA_ERR_UNSUPPORTED);
    CHECK((rv == 0) == (s != NULL));
    if (ws && rv != STRATA_NEED_READ && rv != STRATA_NEED_WRITE)
        r->extended = 1;
    if (rv == 0) {
        r->requests++;
        adopt(r, s, !(get && !ws));
    }
}

static void conn_turn(run *r)
{
    strata_stream *s;
    int rv, k;

    (void)strata_h2_wants(r->h);
    (void)strata_h2_open_streams(r->h);
    if (r->pings < 3 && one_in(64)) {
        r->pings++;
        rv = strata_h2_ping(r->h);
        CHECK(rv == 0 || conn_final(rv));
    }
    if (r->goaways < 3 && one_in(200)) {
        r->goaways++;
        rv = strata_h2_shutdown(r->h);
        CHECK(rv == 0 || need(rv) || conn_final(rv));
    }
    rv = strata_h2_drive(r->h);
    CHECK(drive_ok(rv));
    if (rv == 0)
        r->progress = 1;
    if (conn_final(rv)) {
        /* final statuses stay */
        CHECK(r->conn_status == 1 || rv == r->conn_status);
        r->conn_status = rv;
    }
    if (r->server) {
        while ((s = strata_h2_accept(r->h)) != NULL) {
            r->progress = 1;
            adopt(r, s, 0);
        }
    } else if (r->requests < 6 && one_in(32)) {
        client_open(r);
    }
    while ((s = strata_h2_ready(r->h)) != NULL) {
        idrec *rec = strata_h2_user(s);

        for (k = 0; k < r->n && r->a[k].s != s; k++)
            ;
        CHECK(k < r->n);    /* only streams the application holds */
        CHECK(rec == NULL ? r->t.full : rec->id == r->a[k].id);
    }
}

/* Every stream and the connection at a final status? */
static int all_final(const run *r)
{
    int i;

    if (r->h && r->conn_status == 1)
        return 0;
    for (i = 0; i < r->n; i++)
        if (!r->a[i].rx_final || r->a[i].pending ||
            r->a[i].end == END_SHUT || r->a[i].end == END_TRAILERS)
            return 0;
    return 1;
}

static void open_run(run *r, const uint8_t *d, size_t size)
{
    static const uint32_t windows[4] = {65536, 1, 1024, 100000};
    static const size_t chunks[8] = {0, 1, 2, 3, 7, 64, 1000, 16384};
    static const unsigned needs[4] = {0, 5, 20, 50};
    static const uint32_t streams[4] = {100, 1, 2, 8};
    strata_pipe_opts po;
    strata_h2_opts ho;
    memset(r, 0, sizeof *r);
    r->server = !(d[0] & 1);
    r->window = windows[(d[0] >> 1) & 3];
    /* before our SETTINGS are acknowledged the peer may use 65535 */
    r->wmax = r->window > 65535 ? r->window : 65535;
    r->conn_status = 1;
    memset(&po, 0, sizeof po);
    po.capacity = size + 65536;
    po.max_chunk = chunks[(d[0] >> 3) & 7];
    po.need_percent = needs[d[0] >> 6];
    po.seed = (uint64_t)d[0] << 8 | d[1];
    CHECK(strata_pipe_pair(&r->raw, &r->end, &po, NULL) == 0);
    memset(&ho, 0, sizeof ho);
    ho.role = r->server ? STRATA_H2_SERVER : STRATA_H2_CLIENT;
    ho.stream_window = r->window;
    ho.max_concurrent_streams = streams[d[1] & 3];
    ho.max_header_list = 16384;
    r->h = strata_h2_new(r->end, &ho, NULL);
    CHECK(r->h != NULL);
    rng_state = (uint64_t)d[0] << 8 | d[1];
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t i;

    (void)argc;
    (void)argv;
    for (i = 0; i < BODY_MAX; i++)
        pattern[i] = (uint8_t)(i * 7 + (i >> 8) * 3 + 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static run r;
    const uint8_t *in;
    size_t len, pos = 0;
    int keep_open, free_conn, eof_fed = 0, i, rv, whole, flushed = 0;
    long turn, stalls = 0, quiet = 0, free_at;

    if (size < 2)
        return 0;
    open_run(&r, data, size);
    keep_open = (data[1] >> 2) & 1;
    free_conn = (data[1] >> 3) & 1;
    free_at = free_conn ? (long)(rnd() % 400) : -1;
    in = data + 2;
    len = size - 2;
    count_input(&r.t, in, len, r.server);

    if (!r.server) {            /* two requests before the server speaks */
        strata_stream *s;

        CHECK(strata_h2_request(r.h, req_get, 4, STRATA_H2_END_STREAM,
                                &s) == 0);
        adopt(&r, s, 0);
        /* our own max_concurrent_streams is the peer's until its
         * SETTINGS say otherwise: with 1, the POST waits (NEED_READ) and
         * the loop opens more requests later */
        rv = strata_h2_request(r.h, req_post, 5, 0, &s);
        CHECK(rv == 0 || rv == STRATA_NEED_READ);
        if (rv == 0)
            adopt(&r, s, 1);
        r.requests = 2;
    }

    for (turn = 0;; turn++) {
        int fed = 0;

        CHECK(turn < TURN_LIMIT);
        r.progress = 0;
        if (pos < len) {
            static const size_t feeds[5] = {1, 9, 100, 4096, (size_t)-1};
            size_t n = feeds[rnd() % 5];

            if (n > len - pos)
                n = len - pos;
            put_all(r.raw, in + pos, n);
            pos += n;
            fed = 1;
        } else if (!eof_fed && !keep_open) {
            CHECK(strata_shutdown(r.raw) == 0);
            eof_fed = 1;
            fed = 1;
        }
        /* what we write is not progress: pings and bodies are ours */
        (void)take_output(r.raw, &r.out);
        if (r.h)
            conn_turn(&r);
        for (i = 0; i < r.n; i++)
            if (one_in(2) && act(&r, i))
                i--;
        if (r.h && turn == free_at) {
            strata_h2_free(r.h);    /* the streams keep it alive */
            r.h = NULL;
        }
        if (!r.h && r.n == 0)
            break;          /* the connection went with its last stream */
        if (fed || r.progress)
            stalls = quiet = 0;
        if (pos < len || (!eof_fed && !keep_open))
            continue;
        if (eof_fed) {
            /* after the EOF everything ends: no waiting on what cannot
             * come (streams still writing may wait on a window) */
            if (all_final(&r))
                break;
            if (!r.progress && ++stalls >= STALL_LIMIT) {
                int k;

                for (k = 0; k < r.n; k++)
                    CHECK(r.a[k].rx_final);
                CHECK(!r.h || r.conn_status != 1);
                break;
            }
        } else if (!r.progress && ++quiet >= QUIET_TURNS) {
            /* input left unread only by a connection that failed (or
             * that only its streams drive now, if they do) */
            CHECK(!r.h || r.conn_status != 1 ||
                  strata_pipe_pending(r.end) == 0);
            break;
        }
    }

    /* everything that can go out goes, then the DATA sent is compared */
    if (r.h) {
        for (i = 0; i < 64; i++) {
            (void)take_output(r.raw, &r.out);
            if (!(strata_h2_wants(r.h) & STRATA_WANT_WRITE)) {
                flushed = 1;
                break;
            }
            CHECK(drive_ok(strata_h2_drive(r.h)));
        }
    }
    whole = check_output(&r.t, r.out.p, r.out.n, r.server);
    if (flushed) {
        CHECK(whole);
        for (i = 0; i < r.t.n; i++)
            CHECK(r.t.r[i].seen == r.t.r[i].sent);
    }

    /* the connection first or last: either way nothing leaks */
    if (r.h && one_in(2)) {
        strata_h2_free(r.h);
        r.h = NULL;
    }
    while (r.n > 0)
        drop(&r, (int)(rnd() % (unsigned)r.n));
    strata_h2_free(r.h);
    strata_free(r.raw);
    free(r.out.p);
    return 0;
}
