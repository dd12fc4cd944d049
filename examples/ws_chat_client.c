/* ws_chat_client [HOST [PORT [PATH]]] (default 127.0.0.1 8080 /): each line
 * typed goes as a WebSocket text message, each message that arrives is
 * printed; at the end of input (Ctrl-D) our close goes, the server's ends. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <strata/loop.h>
#include <strata/socket.h>
#include <strata/ws.h>

typedef struct chat {
    strata_stream *ws;
    strata_watch *sw, *inw;
    char line[4096];   /* stdin bytes not yet sent */
    size_t len, sent;  /* of them; sent: of the first line */
    int stdin_done, closing, status;
} chat;

/* Whether a line waits (or a full buffer, or input's tail); *n: its length */
static int next_line(const chat *c, size_t *n)
{
    const char *nl = memchr(c->line, '\n', c->len);

    *n = nl != NULL ? (size_t)(nl - c->line) : c->len;
    return nl != NULL ||
           (c->len > 0 && (c->len == sizeof c->line || c->stdin_done));
}

/* Send whole lines; at the end of input, our close. 0 or a status. */
static int send_lines(chat *c)
{
    size_t n;

    while (next_line(c, &n)) {
        ssize_t r = strata_send(c->ws, c->line + c->sent, n - c->sent,
                                STRATA_MSG_TEXT | STRATA_MSG_END);
        if (r < 0)
            return (int)r;
        if ((c->sent += (size_t)r) < n)
            continue;
        n += n < c->len; /* and its newline */
        memmove(c->line, c->line + n, c->len - n);
        c->len -= n;
        c->sent = 0;
    }
    if (c->stdin_done && c->len == 0 && !c->closing) {
        c->closing = 1; /* close 1000; after a NEED code, recv pushes it */
        return strata_shutdown(c->ws);
    }
    return 0;
}

/* Print what arrived; returns what stopped it: NEED_*, EOF or an error. */
static int print_messages(chat *c)
{
    char buf[4096];
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

static void ws_cb(strata_loop *loop, strata_watch *w, unsigned events,
                  void *ud)
{
    chat *c = ud;
    int r = send_lines(c);

    (void)w;
    (void)events;
    if (c->inw != NULL) /* read stdin only while there is room */
        strata_watch_set_interest(c->inw,
                                  c->len < sizeof c->line ? STRATA_POLL_IN : 0);
    if (r == 0 || r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        r = print_messages(c);
    if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
        return; /* the loop waits for what the stack needs */
    if (r == STRATA_EOF) {
        unsigned code = strata_ws_close_code(c->ws);
        const char *why = strata_ws_close_reason(c->ws);

        if (!c->closing)
            strata_shutdown(c->ws); /* answer; we stop either way */
        printf("closed by server: %u %s\n", code, why != NULL ? why : "");
        c->status = code != STRATA_WS_NORMAL && code != STRATA_WS_NO_STATUS;
    } else {
        fprintf(stderr, "ws_chat_client: %s\n", strata_strerror(r));
        c->status = 1;
    }
    strata_loop_stop(loop);
}

static void stdin_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    chat *c = ud;
    ssize_t n;

    (void)loop;
    if (!(events & (STRATA_POLL_IN | STRATA_POLL_HUP | STRATA_POLL_ERR)) ||
        c->len == sizeof c->line)
        return; /* the first, unasked run; or a full buffer */
    n = read(STDIN_FILENO, c->line + c->len, sizeof c->line - c->len);
    c->len += n > 0 ? (size_t)n : 0;
    if (n == 0) {
        c->stdin_done = 1;
        strata_watch_remove(w);
        c->inw = NULL;
    }
    strata_watch_wake(c->sw); /* the stack's callback does the sending */
}

int main(int argc, char **argv)
{
    static chat c;
    const char *h = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "8080";
    char host[300];
    strata_ws_opts o = { .role = STRATA_WS_CLIENT, .host = host,
                         .path = argc > 3 ? argv[3] : "/" };
    strata_loop *loop = strata_loop_new(NULL);
    strata_stream *tcp;

    if (loop == NULL || strata_tcp_connect(h, port, NULL, &tcp) != 0) {
        fprintf(stderr, "ws_chat_client: cannot connect to %s:%s\n", h, port);
        return 1;
    }
    snprintf(host, sizeof host, "%s:%s", h, port); /* the Host header */
    c.ws = strata_ws_new(tcp, &o, NULL); /* owns tcp from here on */
    if (c.ws == NULL) {
        strata_free(tcp);
        return 1;
    }
    c.sw = strata_loop_watch(loop, c.ws, STRATA_POLL_IN, ws_cb, &c);
    c.inw = strata_loop_watch_fd(loop, STDIN_FILENO, STRATA_POLL_IN, stdin_cb,
                                 &c);
    if (c.sw == NULL || c.inw == NULL || strata_loop_run(loop) != 0)
        c.status = 1;
    strata_loop_free(loop);
    strata_free(c.ws);
    return c.status;
}
