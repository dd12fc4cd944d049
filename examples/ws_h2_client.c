/* ws_h2_client [HOST [PORT [PATH]]]  (default 127.0.0.1 8080 /)
 * One WebSocket over HTTP/2 (RFC 8441, cleartext with prior knowledge):
 * each line of stdin goes as a text message, each message that arrives is
 * printed on a line; at the end of stdin our close (1000) goes, and the
 * program ends with the server's close (0 for 1000). Try ws_h2_server.
 * A stream has no descriptor of its own: everything waits, with poll(2),
 * on the connection's socket for what the connection wants.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <strata/socket.h>
#include <strata/ws_h2.h>

typedef struct chat {
    strata_h2 *h;
    strata_stream *ws;
    char line[65536];  /* stdin bytes not yet sent */
    size_t len, sent;  /* of them; sent: of the first line */
    int stdin_done, closing;
} chat;

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Wait on the connection's socket for what it wants, and on stdin while
 * there is room for more of it. */
static void wait_io(chat *c)
{
    unsigned want = strata_h2_wants(c->h);
    struct pollfd p[2] = {{strata_h2_fd(c->h), 0, 0}, {STDIN_FILENO, 0, 0}};
    int n = c->stdin_done || c->len == sizeof c->line ? 1 : 2;

    p[0].events = (short)((want & STRATA_WANT_READ ? POLLIN : 0) |
                          (want & STRATA_WANT_WRITE ? POLLOUT : 0));
    p[1].events = POLLIN;
    if (poll(p, (nfds_t)n, -1) > 0 && n == 2 && p[1].revents) {
        ssize_t k = read(STDIN_FILENO, c->line + c->len,
                         sizeof c->line - c->len);

        c->len += k > 0 ? (size_t)k : 0;
        c->stdin_done = k <= 0;
    }
}

/* Send whole lines; at the end of input, our close. 0 or a status. */
static int send_lines(chat *c)
{
    const char *nl;
    size_t n;
    ssize_t r;

    for (;;) {
        nl = memchr(c->line, '\n', c->len);
        n = nl != NULL ? (size_t)(nl - c->line) : c->len;
        if (nl == NULL && !(c->len > 0 && (c->stdin_done ||
                                           c->len == sizeof c->line)))
            break;  /* no whole line yet */
        r = strata_send(c->ws, c->line + c->sent, n - c->sent,
                        STRATA_MSG_TEXT | STRATA_MSG_END);
        if (r < 0)
            return (int)r;
        if ((c->sent += (size_t)r) < n)
            continue;
        n += nl != NULL; /* and its newline */
        memmove(c->line, c->line + n, c->len - n);
        c->len -= n;
        c->sent = 0;
    }
    if (c->stdin_done && c->len == 0 && !c->closing) {
        int r2 = strata_shutdown(c->ws); /* close 1000; retried on NEED */

        c->closing = r2 == 0;
        return r2;
    }
    return 0;
}

/* Print what arrived; returns what stopped it: NEED_*, EOF or an error. */
static int print_messages(chat *c)
{
    char buf[16384];
    unsigned flags;
    ssize_t r;

    while ((r = strata_recv(c->ws, buf, sizeof buf, &flags)) >= 0) {
        fwrite(buf, 1, (size_t)r, stdout);
        if (flags & STRATA_MSG_END) /* a message of any size, in pieces */
            fputc('\n', stdout);
    }
    fflush(stdout);
    return (int)r;
}

/* Open the WebSocket: the request, then the answer; both may wait. */
static int open_ws(chat *c, const strata_ws_opts *o)
{
    strata_stream *stream = NULL;
    int r;

    while (is_need(r = strata_ws_h2_open(c->h, o, "http", &stream)))
        wait_io(c);     /* the server's SETTINGS must allow :protocol */
    if (r == 0)         /* then the server's answer */
        while (is_need(r = strata_ws_h2_client(stream, o, NULL, &c->ws)))
            wait_io(c);
    if (r != 0)
        fprintf(stderr, "ws_h2_client: cannot open: %s (HTTP status %d)\n",
                strata_strerror(r), stream ? strata_h2_status(stream) : 0);
    if (r != 0 && stream != NULL)
        strata_free(stream);
    return r;
}

/* Send and print until the server's close; the exit status. */
static int chat_run(chat *c)
{
    int r;

    for (;;) {
        r = send_lines(c);
        if (r == 0 || is_need(r))
            r = print_messages(c);
        if (!is_need(r))
            break;
        wait_io(c);
    }
    if (r != STRATA_EOF) {
        fprintf(stderr, "ws_h2_client: %s\n", strata_strerror(r));
        return 1;
    }
    r = (int)strata_ws_close_code(c->ws);
    printf("closed by server: %d %s\n", r,
           strata_ws_close_reason(c->ws) ? strata_ws_close_reason(c->ws)
                                         : "");
    if (!c->closing)
        strata_shutdown(c->ws); /* answer; we stop either way */
    return r != STRATA_WS_NORMAL && r != STRATA_WS_NO_STATUS;
}

int main(int argc, char **argv)
{
    static chat c;
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "8080";
    char authority[300];
    strata_ws_opts o = {.host = authority, .path = argc > 3 ? argv[3] : "/"};
    strata_h2_opts ho = {.role = STRATA_H2_CLIENT};
    strata_stream *tcp;
    int status, i;

    if (strata_tcp_connect(host, port, NULL, &tcp) != 0) {
        fprintf(stderr, "ws_h2_client: cannot connect to %s:%s\n", host,
                port);
        return 1;
    }
    if ((c.h = strata_h2_new(tcp, &ho, NULL)) == NULL) {
        strata_free(tcp);
        return 1;
    }
    snprintf(authority, sizeof authority, "%s:%s", host, port);
    if (open_ws(&c, &o) != 0) {
        strata_h2_free(c.h);
        return 1;
    }
    status = chat_run(&c);
    /* GOAWAY, and a few rounds for it and our last frames to go out */
    for (i = 0; i < 100 && is_need(strata_h2_shutdown(c.h)); i++)
        wait_io(&c);
    strata_free(c.ws);
    strata_h2_free(c.h);
    return status;
}
