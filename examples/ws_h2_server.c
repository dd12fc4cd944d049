/* ws_h2_server [PORT]   (default 8080; cleartext HTTP/2, prior knowledge)
 * A WebSocket-over-HTTP/2 (RFC 8441) echo server on the event loop. Each
 * extended CONNECT with :protocol websocket becomes a WebSocket whose
 * messages come back, text as text, binary as binary; a peer's close is
 * answered with its own code. Many WebSockets share one connection; any
 * other request gets a short text page. Try ws_h2_client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/h2.h>
#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/ws_h2.h>

#define CHUNK 16384 /* a message streams through this, whatever its size */
#define STEPS 64    /* steps per turn, so no stream starves the others */

/* Every path, no subprotocol; permessage-deflate when a client offers it */
static const strata_ws_opts ws_opts = {.deflate = {.enable = 1}};

static const char page[] = "ws_h2_server: WebSocket over HTTP/2 (RFC 8441) "
                           "echo; open one with an extended CONNECT, "
                           ":protocol websocket\n";

typedef struct conn {
    strata_h2 *h;
    strata_watch *w;    /* on the socket; NULL once the connection ended */
    int socks;          /* streams being served: the last one frees this */
} conn;

typedef struct sock {
    conn *c;
    strata_stream *s;   /* the HTTP/2 stream */
    strata_stream *ws;  /* the WebSocket on it, once accepted */
    strata_watch *w;    /* runs when woken: a stream has no descriptor */
    char buf[CHUNK];
    size_t len, sent;   /* a piece of a message, or of the page */
    unsigned flags;     /* the piece's MSG_END / MSG_TEXT */
    int plain, holding, closing, responded;
} sock;

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* A plain request: the page, then the end. 1 when done, else a status. */
static int answer(sock *q)
{
    static const strata_h2_header type[] = {{"content-type", "text/plain"}};
    ssize_t n;
    int r;

    if (!q->responded && (r = strata_h2_respond(q->s, 200, type, 1, 0)) != 0)
        return r;
    q->responded = 1;
    while (q->sent < sizeof page - 1) {
        n = strata_send(q->s, page + q->sent, sizeof page - 1 - q->sent, 0);
        if (n < 0)
            return (int)n;
        q->sent += (size_t)n;
    }
    if ((r = strata_shutdown(q->s)) != 0)
        return r;
    /* a request body we will not read: stop it without error (RFC 9113
     * 8.1) rather than with the CANCEL that freeing the stream sends */
    if (!(strata_poll(q->s, STRATA_POLL_IN) & STRATA_POLL_HUP))
        strata_h2_reset(q->s, STRATA_H2_NO_ERROR);
    return 1;
}

/* Echo a piece as soon as it came: a message of any size goes back in
 * fragments through one buffer. 0 on progress, else a status. */
static int echo_step(sock *q)
{
    unsigned fl = 0;
    ssize_t n;

    if (!q->holding) {
        if ((n = strata_recv(q->ws, q->buf, sizeof q->buf, &fl)) < 0)
            return (int)n;
        q->len = (size_t)n;
        q->sent = 0;
        q->flags = fl & (STRATA_MSG_END | STRATA_MSG_TEXT);
        q->holding = 1;
    }
    n = strata_send(q->ws, q->buf + q->sent, q->len - q->sent, q->flags);
    if (n < 0)
        return (int)n;
    if ((q->sent += (size_t)n) < q->len)
        return 0;
    q->holding = 0;
    /* with deflate the codec may hold the tail of the message */
    return q->flags & STRATA_MSG_END ? strata_flush(q->ws) : 0;
}

/* A stream's turn: 0 when the budget ran out, a NEED code, 1 when it is
 * over, or an error. */
static int turn(sock *q)
{
    int r = 0, i;

    if (q->plain)
        return answer(q);
    if (q->ws == NULL && (r = strata_ws_h2_accept(q->s, &ws_opts, NULL,
                                                  &q->ws)) != 0)
        return r == STRATA_ERR_PROTO ? 1 : r;   /* refused: the answer went */
    for (i = 0; i < STEPS && r == 0 && !q->closing; i++)
        r = echo_step(q);
    if (r == STRATA_EOF && strata_ws_close_code(q->ws) == STRATA_WS_ABNORMAL)
        return 1;   /* gone without a close: nobody to answer */
    q->closing |= r == STRATA_EOF;
    if (!q->closing)
        return r;
    if ((r = strata_shutdown(q->ws)) != 0)  /* our close; the stream ends */
        return r;
    /* wait for the peer's END_STREAM: the stream then closes instead of
     * being reset when we free it */
    return strata_poll(q->s, STRATA_POLL_IN) &
                   (STRATA_POLL_HUP | STRATA_POLL_ERR)
               ? 1
               : STRATA_NEED_READ;
}

static void add_sock(strata_loop *loop, conn *c, strata_stream *s);

/* Take the connection's new streams, wake those it names ready (data, an
 * end, a reset or room to send came), and wait on the socket for what it
 * wants now: output a stream left behind, say. Any stream's calls may
 * read or write the socket, so every callback of the connection does it. */
static void tend(strata_loop *loop, conn *c)
{
    strata_stream *s;

    while ((s = strata_h2_accept(c->h)) != NULL)
        add_sock(loop, c, s);   /* its first run comes next round */
    while ((s = strata_h2_ready(c->h)) != NULL)
        strata_watch_wake(((sock *)strata_h2_user(s))->w);
    if (c->w != NULL)
        strata_watch_set_interest(c->w, strata_h2_wants(c->h));
}

static void sock_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    sock *q = ud;
    conn *c = q->c;
    int r = turn(q);

    (void)events;
    tend(loop, c);
    if (r == 0)
        strata_watch_wake(w);   /* budget spent: more may be held above */
    if (r == 0 || is_need(r))
        return;     /* else the connection names it when it can go on */
    if (r != 1)
        fprintf(stderr, "stream %d: %s\n", (int)strata_h2_stream_id(q->s),
                strata_strerror(r));
    strata_watch_remove(w);
    strata_free(q->ws != NULL ? q->ws : q->s);  /* ws owns the stream */
    free(q);
    if (--c->socks == 0 && c->w == NULL)
        free(c);    /* and the connection went with its last stream */
}

static void add_sock(strata_loop *loop, conn *c, strata_stream *s)
{
    const char *method = strata_h2_get(s, ":method");
    sock *q = calloc(1, sizeof *q);

    /* interest 0: it runs when woken, never polled in vain */
    if (q == NULL || (q->w = strata_loop_watch(loop, s, 0, sock_cb, q)) ==
                         NULL) {
        strata_h2_reset(s, STRATA_H2_INTERNAL_ERROR);
        strata_free(s);
        free(q);
        return;
    }
    q->c = c;
    q->s = s;
    q->plain = method == NULL || strcmp(method, "CONNECT") != 0;
    strata_h2_set_user(s, q);
    c->socks++;
}

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    conn *c = ud;
    int r, i;

    (void)events;
    for (i = 0; i < STEPS && (r = strata_h2_drive(c->h)) == 0; i++)
        ;
    tend(loop, c);
    if (r == 0)
        strata_watch_wake(w);   /* budget spent: more may be waiting */
    if (r == 0 || is_need(r))
        return;
    if (r != STRATA_EOF)
        fprintf(stderr, "connection: %s (HTTP/2 error %u)\n",
                strata_strerror(r), (unsigned)strata_h2_error_code(c->h));
    strata_watch_remove(w);
    c->w = NULL;
    strata_h2_free(c->h);   /* goes with its last stream; they all woke */
    if (c->socks == 0)
        free(c);
}

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    strata_h2_opts o = {0};
    strata_stream *sock;
    conn *c;

    (void)events;
    (void)ud;
    o.role = STRATA_H2_SERVER;  /* extended CONNECT is offered by default */
    while (strata_accept(strata_watch_fd(w), NULL, &sock) == 0) {
        if ((c = calloc(1, sizeof *c)) == NULL ||
            (c->h = strata_h2_new(sock, &o, NULL)) == NULL) {
            strata_free(sock);
            free(c);
            continue;
        }
        c->w = strata_loop_watch_fd(loop, strata_h2_fd(c->h), STRATA_POLL_IN,
                                    conn_cb, c);
        if (c->w == NULL) {
            strata_h2_free(c->h);
            free(c);
        }
    }
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080";
    int lfd = strata_tcp_listen(NULL, port, 128);
    strata_loop *loop = strata_loop_new(NULL);

    if (lfd < 0 || loop == NULL ||
        strata_loop_watch_fd(loop, lfd, STRATA_POLL_IN, accept_cb, NULL) ==
            NULL) {
        fprintf(stderr, "ws_h2_server: cannot listen on port %s\n", port);
        return 1;
    }
    printf("ws_h2_server: listening on port %d (prior knowledge)\n",
           strata_local_port(lfd));
    fflush(stdout);
    return strata_loop_run(loop) == 0 ? 0 : 1;
}
