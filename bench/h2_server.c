/* bench_h2_server: the strata side of bench/h2 (see README.md, "HTTP/2").
 *
 * One process, one event loop, three listeners on 127.0.0.1:
 *  - HTTP/2 with prior knowledge (cleartext, as `nghttpd --no-tls`):
 *      GET /bytes/N           N bytes of body (the large download);
 *      GET anything else      the small body (--body, default the 13
 *                             bytes "Hello, world!"), with content-length,
 *                             as nghttpd answers a request for a small file;
 *      POST/PUT ...           the body is read and dropped, then the small
 *                             body answers;
 *      CONNECT :protocol websocket   WebSocket over HTTP/2 (RFC 8441): an
 *                             echo of every message.
 *  - WebSocket over TCP (HTTP/1.1 Upgrade): the same echo;
 *  - raw TCP: a client sends an 8-byte count (host order), the server
 *    writes that many bytes with blocking write() of 64 KiB and closes
 *    (the large download's baseline; a thread of its own, so the loop
 *    never blocks).
 * It prints "ports h2=P ws=P raw=P build=TYPE" on stdout once listening,
 * and serves until killed.
 *
 * Stacks (the defaults are what a user of strata would write for a server
 * of many small messages; the options are there to measure the others):
 *  - HTTP/2: h2 -> socket, one strata_h2 per connection driven from the
 *    loop (strata_h2_drive, then strata_h2_accept and strata_h2_ready),
 *    corked for the callback as h2.h advises a server answering many
 *    streams per read (strata_h2_cork: the frames of every answer share
 *    writes, pushed when the callback uncorks); the echo example's loop.
 *    --no-cork: one write per stream call.
 *  - WebSocket over HTTP/2: ws (server, no_handshake) -> wbuf (64 KiB) ->
 *    h2 stream, after answering the extended CONNECT with 200 (what
 *    strata_ws_h2_accept does, with a wbuf under ws as the TCP server has);
 *    --ws-h2-api: strata_ws_h2_accept's own stack, ws -> h2 stream.
 *  - WebSocket over TCP: ws (server, handshake) -> wbuf (64 KiB) -> socket.
 * A WebSocket message is received whole and sent back whole; gathered
 * replies are flushed when a receive would wait (bench_ws_echo's server).
 */
#include <strata/h2.h>
#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/wbuf.h>
#include <strata/ws.h>
#include <strata/ws_h2.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

/* An h2.h that can end a body with its last DATA frame: the small answer
 * then takes one frame less (the empty END_STREAM one) and no shutdown. */
#ifdef STRATA_H2_SEND_END
#define SEND_END STRATA_H2_SEND_END
#else
#define SEND_END 0u
#endif

#define KIB 1024u
#define WBUF_CAP (64 * KIB)     /* every write buffer of this server */
#define BIG_PIECE (64 * KIB)    /* large body: bytes per strata_send */
#define RAW_CHUNK (64 * KIB)    /* raw sender: bytes per write() */
#define MAX_MSG (1024 * KIB)    /* largest WebSocket message echoed */
#define DROP_BUF (16 * KIB)     /* request bodies are read into this */
#define STEPS 64                /* steps of one request per callback */
#define DRIVES 64               /* drives of a connection per callback */

typedef struct options {
    int no_cork;                /* a write per stream call */
    int ws_h2_api;              /* strata_ws_h2_accept's stack */
    const char *body;           /* the small response body */
    size_t body_len;
    char body_len_s[24];
} options;

static options opt;
static uint8_t big_src[BIG_PIECE]; /* what a large body repeats */

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "bench_h2_server: %s\n", what);
    exit(1);
}

static int is_need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* ---- WebSocket echo: the same steps over TCP and over an h2 stream --- */

typedef struct echo {
    strata_stream *s;           /* the ws stack */
    uint8_t *buf;
    size_t len, sent;
    unsigned flags;             /* the message's STRATA_MSG_TEXT */
    int ready;                  /* a whole message waits to go back */
    int dirty;                  /* sent since the last flush */
    int eof;
} echo;

static int echo_init(echo *e, strata_stream *ws)
{
    memset(e, 0, sizeof *e);
    e->s = ws;
    e->buf = malloc(MAX_MSG);
    return e->buf ? 0 : -1;
}

static void echo_free(echo *e)
{
    strata_free(e->s);
    free(e->buf);
}

static int echo_send(echo *e)
{
    ssize_t r = strata_send(e->s, e->buf + e->sent, e->len - e->sent,
                            STRATA_MSG_END | (e->flags & STRATA_MSG_TEXT));

    if (r < 0)
        return (int)r;
    e->dirty = 1;
    e->sent += (size_t)r;
    if (e->sent == e->len)
        e->ready = 0, e->len = e->sent = 0;
    return 1;
}

static int echo_recv(echo *e)
{
    unsigned flags = 0;
    ssize_t r;

    if (e->len == MAX_MSG)
        return STRATA_ERR_TOO_BIG;
    r = strata_recv(e->s, e->buf + e->len, MAX_MSG - e->len, &flags);
    if (r == STRATA_NEED_READ && e->dirty) {
        int f = strata_flush(e->s);     /* replies out before we wait */

        if (f != 0)
            return f;
        e->dirty = 0;
    }
    if (r == STRATA_EOF)
        e->eof = 1;
    if (r < 0)
        return r == STRATA_EOF ? 1 : (int)r;
    e->len += (size_t)r;
    if (flags & STRATA_MSG_END)
        e->ready = 1, e->flags = flags;
    return 1;
}

/* 1: progress; 0: done (the peer closed and we answered); or a status. */
static int echo_step(echo *e)
{
    if (e->ready)
        return echo_send(e);
    if (!e->eof)
        return echo_recv(e);
    return strata_shutdown(e->s);
}

static int echo_run(echo *e)
{
    int r = 1;

    for (int i = 0; i < STEPS && r == 1; i++)
        r = echo_step(e);
    return r;
}

/* ---- WebSocket over TCP ------------------------------------------------ */

static void ws_conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                       void *ud)
{
    echo *e = ud;
    int r = echo_run(e);

    (void)loop;
    (void)events;
    if (r == 1)
        strata_watch_wake(w);   /* budget spent, not blocked */
    else if (!is_need(r)) {
        strata_watch_remove(w);
        echo_free(e);
        free(e);
    }
}

static void ws_accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                         void *ud)
{
    strata_ws_opts o;
    strata_stream *sock, *wb, *ws;
    echo *e;

    (void)events;
    (void)ud;
    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_SERVER;
    while (strata_accept(strata_watch_fd(w), NULL, &sock) == 0) {
        wb = strata_wbuf_new(sock, WBUF_CAP, 0, NULL);
        ws = wb ? strata_ws_new(wb, &o, NULL) : NULL;
        e = malloc(sizeof *e);
        if (!ws || !e || echo_init(e, ws) != 0
            || !strata_loop_watch(loop, ws, STRATA_POLL_IN, ws_conn_cb, e))
            die("ws: out of memory");
    }
}

/* ---- HTTP/2 ---------------------------------------------------------------- */

enum kind { K_SMALL, K_BIG, K_DROP, K_WS };

typedef struct conn conn;

typedef struct req {
    strata_stream *s;           /* the h2 stream */
    conn *c;
    struct req *next_busy;      /* in c->busy or c->blocked */
    int busy;                   /* 1: in c->busy, 2: in c->blocked */
    enum kind kind;
    int stage;                  /* 0 respond, 1 body, 2 end */
    uint64_t left;              /* body bytes still to send */
    size_t off;                 /* into the small body */
    echo ws;                    /* K_WS, once answered */
    int ws_up;
} req;

struct conn {
    strata_h2 *h;
    req *busy;                  /* requests to run again without an event */
    req *blocked;               /* their last send said NEED_WRITE */
};

static void list_add(req **list, req *q, int which)
{
    q->busy = which;
    q->next_busy = *list;
    *list = q;
}

static void req_free(req *q)
{
    if (q->busy) {
        req **pp = q->busy == 1 ? &q->c->busy : &q->c->blocked;

        while (*pp != q)
            pp = &(*pp)->next_busy;
        *pp = q->next_busy;
    }
    if (q->ws_up)
        echo_free(&q->ws);      /* the ws stack owns the stream */
    else
        strata_free(q->s);
    free(q);
}

static enum kind kind_of(strata_stream *s, uint64_t *n)
{
    const char *m = strata_h2_get(s, ":method");
    const char *p = strata_h2_get(s, ":path");
    const char *proto = strata_h2_get(s, ":protocol");

    if (m && strcmp(m, "CONNECT") == 0 && proto
        && strcmp(proto, "websocket") == 0)
        return K_WS;
    if (m && strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
        return K_DROP;
    if (p && strncmp(p, "/bytes/", 7) == 0) {
        *n = strtoull(p + 7, NULL, 10);
        return K_BIG;
    }
    return K_SMALL;
}

static int ws_start(req *q)
{
    strata_ws_opts o;
    strata_stream *below, *ws;
    int r;

    memset(&o, 0, sizeof o);
    o.role = STRATA_WS_SERVER;
    if (opt.ws_h2_api) {
        r = strata_ws_h2_accept(q->s, &o, NULL, &ws);
        if (r != 0)
            return r;
    } else {
        /* strata_ws_h2_accept's answer, with a wbuf under ws */
        r = strata_h2_respond(q->s, 200, NULL, 0, 0);
        if (r != 0)
            return r;
        o.no_handshake = 1;
        below = strata_wbuf_new(q->s, WBUF_CAP, 0, NULL);
        ws = below ? strata_ws_new(below, &o, NULL) : NULL;
        if (!ws)
            die("ws over h2: out of memory");
    }
    if (echo_init(&q->ws, ws) != 0)
        die("ws over h2: out of memory");
    q->ws_up = 1;
    return 1;
}

/* Drop a request body, then answer as for a small GET. */
static int drop_body(req *q)
{
    static uint8_t sink[DROP_BUF];
    ssize_t n = strata_read(q->s, sink, sizeof sink);

    if (n == STRATA_EOF) {
        q->kind = K_SMALL;
        return 1;
    }
    return n < 0 ? (int)n : 1;
}

/* One step: 1 progress, 0 done, or a status. */
static int req_step(req *q)
{
    ssize_t n;

    if (q->kind == K_WS)
        return q->ws_up ? echo_step(&q->ws) : ws_start(q);
    if (q->kind == K_DROP)
        return drop_body(q);
    switch (q->stage) {
    case 0: {
        strata_h2_header hd[1];
        char len_s[24];
        int r;

        hd[0].name = "content-length";
        if (q->kind == K_SMALL) {
            hd[0].value = opt.body_len_s;
            q->left = opt.body_len;
        } else {
            snprintf(len_s, sizeof len_s, "%llu",
                     (unsigned long long)q->left);
            hd[0].value = len_s;
        }
        r = strata_h2_respond(q->s, 200, hd, 1,
                              q->left ? 0 : STRATA_H2_END_STREAM);
        if (r != 0)
            return r;
        q->stage = q->left ? 1 : 3;
        return 1;
    }
    case 1:
        if (q->kind == K_SMALL) {
            n = strata_send(q->s, opt.body + q->off, opt.body_len - q->off,
                            SEND_END);
        } else {
            size_t at = (size_t)((uint64_t)q->off % BIG_PIECE);
            size_t k = BIG_PIECE - at;

            if (k > q->left)
                k = (size_t)q->left;
            n = strata_send(q->s, big_src + at, k,
                            k == q->left ? SEND_END : 0u);
        }
        if (n < 0)
            return (int)n;
        q->off += (size_t)n;
        q->left -= (uint64_t)n;
        if (q->left == 0)
            q->stage = 2;
        return 1;
    case 2: {
        int r = strata_shutdown(q->s);

        if (r != 0)
            return r;
        q->stage = 3;
        return 0;
    }
    default:
        return 0;
    }
}

static void req_run(req *q)
{
    int r = 1;

    if (q->ws_up) {
        r = echo_run(&q->ws);
    } else {
        for (int i = 0; i < STEPS && r == 1; i++)
            r = req_step(q);
    }
    if (r == 1 && !q->busy) {
        /* budget spent, not blocked: no event will name it, so the
         * connection runs it again next round */
        list_add(&q->c->busy, q, 1);
    }
    if (r == STRATA_NEED_WRITE && !q->busy)
        list_add(&q->c->blocked, q, 2);
    if (r == 1 || is_need(r))
        return;     /* more later: the connection names it when ready */
    /* a client that goes without GOAWAY (h2load at its end) cuts them */
    if (r != 0 && r != STRATA_EOF && r != STRATA_ERR_TRUNCATED
        && q->kind != K_WS)
        fprintf(stderr, "bench_h2_server: stream %d: %s\n",
                (int)strata_h2_stream_id(q->s), strata_strerror(r));
    req_free(q);
}

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    conn *c = ud;
    strata_h2 *h = c->h;
    strata_stream *s;
    int r = 0, i;

    (void)loop;
    (void)events;
    if (!opt.no_cork)   /* the answers to what this read brought share writes */
        strata_h2_cork(h, 1);
    for (i = 0; i < DRIVES && (r = strata_h2_drive(h)) == 0; i++)
        ;
    while ((s = strata_h2_accept(h)) != NULL) {
        req *q = calloc(1, sizeof *q);

        if (!q)
            die("h2: out of memory");
        q->s = s;
        q->c = c;
        q->kind = kind_of(s, &q->left);
        strata_h2_set_user(s, q);
        req_run(q);
    }
    while ((s = strata_h2_ready(h)) != NULL)
        req_run(strata_h2_user(s));
    if (c->busy) {
        req *list = c->busy, *q;

        c->busy = NULL;
        for (q = list; q; q = q->next_busy)
            q->busy = 0;
        while ((q = list) != NULL) {
            list = q->next_busy;
            req_run(q);
        }
    }
    if (!opt.no_cork && (r == 0 || is_need(r))) {
        int f = strata_h2_cork(h, 0);   /* this round's frames go down */

        if (f < STRATA_EOF)
            r = f;
    }
    /* Streams whose send found the output full run again once it is
     * empty. h2.c lists them as ready when strata_h2_drive drains a full
     * buffer, but not when the push that drains it is the uncork above
     * (protos/h2.c of 7079656: without this the large download stalls
     * now and then; see README.md, "HTTP/2"). */
    if (c->blocked && !(strata_h2_wants(h) & STRATA_WANT_WRITE)) {
        req *q;

        while ((q = c->blocked) != NULL) {
            c->blocked = q->next_busy;
            list_add(&c->busy, q, 1);
        }
    }
    if (r == 0 || c->busy) {
        strata_watch_wake(w);   /* budget spent: more may be waiting */
        return;
    }
    if (is_need(r)) {
        strata_watch_set_interest(w, strata_h2_wants(h));
        return;
    }
    if (r != STRATA_EOF && r != STRATA_ERR_TRUNCATED)
        fprintf(stderr, "bench_h2_server: connection: %s (HTTP/2 error %u)\n",
                strata_strerror(r), (unsigned)strata_h2_error_code(h));
    strata_watch_remove(w);
    strata_h2_free(h);          /* goes when its last stream is freed */
    free(c);
}

static void h2_accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                         void *ud)
{
    strata_h2_opts o;
    strata_stream *sock;
    conn *c;

    (void)events;
    (void)ud;
    memset(&o, 0, sizeof o);
    o.role = STRATA_H2_SERVER;
    while (strata_accept(strata_watch_fd(w), NULL, &sock) == 0) {
        c = calloc(1, sizeof *c);
        if (c)
            c->h = strata_h2_new(sock, &o, NULL);
        if (!c || !c->h
            || !strata_loop_watch_fd(loop, strata_h2_fd(c->h), STRATA_POLL_IN,
                                     conn_cb, c))
            die("h2: out of memory");
    }
}

/* ---- raw TCP sender ---------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *raw_thread(void *arg)
{
    int lfd = *(int *)arg, one = 1;

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        uint64_t want = 0, sent = 0;
        size_t got = 0;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            die("raw: accept failed");
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while (got < sizeof want) {
            ssize_t k = read(fd, (uint8_t *)&want + got, sizeof want - got);

            if (k <= 0)
                break;
            got += (size_t)k;
        }
        while (got == sizeof want && sent < want) {
            size_t k = want - sent < RAW_CHUNK ? (size_t)(want - sent)
                                               : RAW_CHUNK;

            if (write_all(fd, big_src, k) != 0)
                break;
            sent += k;
        }
        close(fd);
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

static int listen_on(void)
{
    int fd = strata_tcp_listen("127.0.0.1", "0", 128);

    if (fd < 0)
        die("cannot listen on 127.0.0.1");
    return fd;
}

static void usage(void)
{
    puts("usage: bench_h2_server [--no-cork] [--ws-h2-api] [--body TEXT]\n"
         "Serves HTTP/2 (prior knowledge), WebSocket over TCP and a raw TCP\n"
         "sender on 127.0.0.1; prints \"ports h2=P ws=P raw=P build=B\". Run\n"
         "by bench/h2/run.sh; see bench/README.md, \"HTTP/2\".");
}

int main(int argc, char **argv)
{
    strata_loop *loop;
    pthread_t th;
    int h2fd, wsfd, rawfd;
    uint64_t x = 0x9e3779b97f4a7c15ull;

    opt.body = "Hello, world!";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-cork") == 0)
            opt.no_cork = 1;
        else if (strcmp(argv[i], "--ws-h2-api") == 0)
            opt.ws_h2_api = 1;
        else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc)
            opt.body = argv[++i];
        else {
            usage();
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    opt.body_len = strlen(opt.body);
    snprintf(opt.body_len_s, sizeof opt.body_len_s, "%zu", opt.body_len);
    for (size_t i = 0; i < sizeof big_src; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        big_src[i] = (uint8_t)x;
    }
    signal(SIGPIPE, SIG_IGN);
    h2fd = listen_on();
    wsfd = listen_on();
    rawfd = listen_on();
    /* the raw sender blocks: its own thread, a blocking listener */
    if (fcntl(rawfd, F_SETFL, fcntl(rawfd, F_GETFL) & ~O_NONBLOCK) != 0)
        die("raw: cannot make the listener blocking");
    if (pthread_create(&th, NULL, raw_thread, &rawfd) != 0)
        die("cannot start the raw sender");
    loop = strata_loop_new(NULL);
    if (!loop
        || !strata_loop_watch_fd(loop, h2fd, STRATA_POLL_IN, h2_accept_cb,
                                 NULL)
        || !strata_loop_watch_fd(loop, wsfd, STRATA_POLL_IN, ws_accept_cb,
                                 NULL))
        die("cannot start the loop");
    printf("ports h2=%d ws=%d raw=%d build=%s\n", strata_local_port(h2fd),
           strata_local_port(wsfd), strata_local_port(rawfd),
           BENCH_BUILD_TYPE);
    fflush(stdout);
    strata_loop_run(loop);
    strata_loop_free(loop);
    return 0;
}
