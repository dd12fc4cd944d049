/* h2_echo_server [PORT]   (default 8080; cleartext HTTP/2, prior knowledge)
 * An HTTP/2 server with prior knowledge on the event loop: every request's
 * body comes back as the response body with :status 200. Many streams
 * share one socket: the loop watches the connection's descriptor, and the
 * streams the connection names ready (strata_h2_ready) are served, so
 * nothing is polled in vain. Try:
 *   curl --http2-prior-knowledge --data-binary @FILE http://127.0.0.1:8080/
 */
#include <stdio.h>
#include <stdlib.h>

#include <strata/h2.h>
#include <strata/loop.h>
#include <strata/socket.h>

#define CHUNK 16384

typedef struct req {
    strata_stream *s;
    char buf[CHUNK];
    size_t len, sent;
    int responded, got_eof;
} req;

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Move a request on: read a chunk, send it back; at the body's end, end
 * the response. 0 when it may go on, 1 when done, a NEED code, or an error. */
static int serve(req *q)
{
    ssize_t n;

    if (!q->responded) {
        int r = strata_h2_respond(q->s, 200, NULL, 0, 0);

        if (r != 0)
            return r;
        q->responded = 1;
    }
    if (q->sent < q->len) {
        n = strata_send(q->s, q->buf + q->sent, q->len - q->sent, 0);
        if (n < 0)
            return (int)n;
        q->sent += (size_t)n;
        return 0;
    }
    if (q->got_eof) {
        n = strata_shutdown(q->s);
        return n == 0 ? 1 : (int)n;
    }
    q->len = q->sent = 0;
    n = strata_read(q->s, q->buf, sizeof q->buf);
    if (n == STRATA_EOF) {
        q->got_eof = 1;
        return 0;
    }
    if (n < 0)
        return (int)n;
    q->len = (size_t)n;
    return 0;
}

static void run_request(req *q)
{
    int r, i;

    for (i = 0, r = 0; i < 64 && r == 0; i++)
        r = serve(q);
    if (r == 0 || is_need(r))
        return;     /* more later: the connection lists it when ready */
    if (r != 1)
        fprintf(stderr, "stream %d: %s\n", (int)strata_h2_stream_id(q->s),
                strata_strerror(r));
    strata_free(q->s);
    free(q);
}

static void add_request(strata_stream *s)
{
    req *q = calloc(1, sizeof *q);

    if (!q) {
        strata_h2_reset(s, STRATA_H2_INTERNAL_ERROR);
        strata_free(s);
        return;
    }
    q->s = s;
    strata_h2_set_user(s, q);
    run_request(q);
}

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    strata_h2 *h = ud;
    strata_stream *s;
    int r, i;

    (void)loop;
    (void)events;
    /* corked: the answers to everything this read brought share writes */
    strata_h2_cork(h, 1);
    for (i = 0; i < 64 && (r = strata_h2_drive(h)) == 0; i++)
        ;
    /* a stream's own calls may read more of the socket and so make more
     * streams acceptable or ready: go on until both lists are empty */
    for (;;) {
        if ((s = strata_h2_accept(h)) != NULL)
            add_request(s);
        else if ((s = strata_h2_ready(h)) != NULL)
            run_request(strata_h2_user(s));
        else
            break;
    }
    if (r == 0 || is_need(r)) {
        int f = strata_h2_cork(h, 0);

        if (f < STRATA_EOF)
            r = f;
    }
    if (r == 0) {
        strata_watch_wake(w);   /* budget spent: more may be waiting */
        return;
    }
    if (is_need(r)) {
        strata_watch_set_interest(w, strata_h2_wants(h));
        return;
    }
    if (r != STRATA_EOF)
        fprintf(stderr, "connection: %s (HTTP/2 error %u)\n",
                strata_strerror(r), (unsigned)strata_h2_error_code(h));
    strata_watch_remove(w);
    strata_h2_free(h);      /* goes when its last stream is freed */
}

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    strata_h2_opts o = { 0 };
    strata_stream *sock;
    strata_h2 *h;

    (void)events;
    (void)ud;
    o.role = STRATA_H2_SERVER;
    while (strata_accept(strata_watch_fd(w), NULL, &sock) == 0) {
        h = strata_h2_new(sock, &o, NULL);
        if (!h) {
            strata_free(sock);
            continue;
        }
        if (!strata_loop_watch_fd(loop, strata_h2_fd(h), STRATA_POLL_IN,
                                  conn_cb, h))
            strata_h2_free(h);
    }
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "8080";
    int lfd = strata_tcp_listen(NULL, port, 128);
    strata_loop *loop = strata_loop_new(NULL);

    if (lfd < 0 || loop == NULL) {
        fprintf(stderr, "h2_echo_server: cannot listen on port %s\n", port);
        return 1;
    }
    strata_loop_watch_fd(loop, lfd, STRATA_POLL_IN, accept_cb, NULL);
    printf("h2_echo_server: http://127.0.0.1:%s/ (prior knowledge)\n", port);
    fflush(stdout);
    strata_loop_run(loop);
    strata_loop_free(loop);
    return 0;
}
