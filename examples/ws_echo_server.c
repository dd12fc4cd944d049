/* ws_echo_server [PORT]   (default 8080, every address)
 * A WebSocket echo server for many clients at once, on the event loop.
 * Each message comes back whole, text as text, binary as binary; a
 * client's close is answered with its own code. Try ws_chat_client. */
#include <stdio.h>
#include <stdlib.h>

#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/ws.h>

#define MAX_MSG (64u * 1024u) /* larger messages are refused with 1009 */
#define STEPS 64              /* steps per turn, so no client starves others */

typedef struct client {
    strata_stream *ws;
    strata_watch *w;
    char msg[MAX_MSG + 1]; /* + 1: room to learn a full message ended */
    size_t len, sent;
    unsigned flags;        /* of the held message, for its echo */
    int echoing;           /* msg is whole and goes back */
    int closing;           /* the peer closed: answer, then drop */
} client;

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Receive more of the next message. 0 on progress, else a status. */
static int read_some(client *c)
{
    unsigned flags = 0;
    ssize_t n = strata_recv(c->ws, c->msg + c->len, sizeof c->msg - c->len,
                            &flags);

    if (n < 0)
        return (int)n;
    c->len += (size_t)n;
    if (flags & STRATA_MSG_END) {
        c->flags = STRATA_MSG_END | (flags & STRATA_MSG_TEXT);
        c->echoing = 1;
    }
    return 0;
}

/* Send more of the held message back. 0 on progress, else a status. */
static int echo_some(client *c)
{
    ssize_t n = strata_send(c->ws, c->msg + c->sent, c->len - c->sent,
                            c->flags);

    if (n < 0)
        return (int)n;
    c->sent += (size_t)n;
    if (c->sent < c->len)
        return 0;
    c->echoing = 0;
    c->len = c->sent = 0;
    return strata_flush(c->ws); /* deflate may hold the tail of it */
}

static void drop(client *c, int status)
{
    if (status != 0)
        fprintf(stderr, "client dropped: %s\n", strata_strerror(status));
    strata_watch_remove(c->w);
    strata_free(c->ws);
    free(c);
}

/* All I/O of a client happens here, so the loop sees every NEED code and
 * waits on exactly what the stack needs. */
static void client_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    client *c = ud;
    int r = 0, i;

    (void)loop;
    (void)events;
    for (i = 0; i < STEPS && r == 0 && !c->closing; i++)
        r = c->echoing ? echo_some(c) : read_some(c);
    if (r == STRATA_EOF && strata_ws_close_code(c->ws) == STRATA_WS_ABNORMAL) {
        drop(c, 0); /* gone without a close: nobody to answer */
        return;
    }
    if (r == STRATA_EOF)
        c->closing = 1; /* after every message before it was echoed */
    if (c->closing)
        r = strata_shutdown(c->ws); /* our close, with the peer's code */
    if (is_need(r))
        return;
    if (r == 0 && !c->closing)
        strata_watch_wake(w); /* budget spent: more may be waiting */
    else
        drop(c, r);
}

static void add_client(strata_loop *loop, strata_stream *sock)
{
    strata_ws_opts o = { 0 };
    client *c = calloc(1, sizeof *c);

    o.role = STRATA_WS_SERVER; /* every path, no subprotocol */
    o.max_message = MAX_MSG;
    o.deflate.enable = 1;      /* accept permessage-deflate when offered */
    if (c == NULL || (c->ws = strata_ws_new(sock, &o, NULL)) == NULL) {
        strata_free(sock);
        free(c);
        return;
    }
    /* The handshake runs inside the first strata_recv. */
    c->w = strata_loop_watch(loop, c->ws, STRATA_POLL_IN, client_cb, c);
    if (c->w == NULL) {
        strata_free(c->ws);
        free(c);
    }
}

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    strata_stream *sock;

    (void)events;
    (void)ud;
    while (strata_accept(strata_watch_fd(w), NULL, &sock) == 0)
        add_client(loop, sock);
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080";
    int lfd = strata_tcp_listen(NULL, port, 128);
    strata_loop *loop = strata_loop_new(NULL);

    if (lfd < 0 || loop == NULL) {
        fprintf(stderr, "ws_echo_server: cannot listen on port %s\n", port);
        return 1;
    }
    if (strata_loop_watch_fd(loop, lfd, STRATA_POLL_IN, accept_cb, NULL) ==
        NULL)
        return 1;
    printf("ws_echo_server: listening on port %d\n", strata_local_port(lfd));
    fflush(stdout);
    return strata_loop_run(loop) == 0 ? 0 : 1;
}
