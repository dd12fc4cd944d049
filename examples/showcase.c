/* showcase CA.pem SERVER.pem SERVER.key   (scripts/demo.sh runs it)
 *
 * strata's idea in one program: a server and a client, both in this
 * process, talk on loopback through two stacks built by hand, and the
 * program prints every layer of both ends with what crossed it.
 *
 *  1. WebSocket over HTTP/2 over TLS over TCP (RFC 8441). The client's
 *     TLS offers ALPN "h2"; the server's HTTP/2 SETTINGS allow extended
 *     CONNECT; the WebSocket opens with CONNECT :protocol websocket.
 *     Messages of 0 B to 1 MiB go and come back, each echo checked. Then
 *     every layer ends cleanly: WebSocket close 1000 (the HTTP/2 stream's
 *     END_STREAM follows it), GOAWAY, TLS close_notify.
 *  2. TLS inside a WebSocket over TCP: the same TLS layer, now on a
 *     WebSocket (HTTP/1.1 Upgrade) whose binary messages carry its
 *     records. Any layer sits on any stream.
 *
 * Taps (streams/tap.h) sit between layers and count what crosses them;
 * every figure printed comes from a tap, from a layer's own call or from
 * the kernel (TCP_INFO), none from arithmetic. A tap cannot go right
 * under a WebSocket over HTTP/2 (that layer needs the HTTP/2 stream
 * itself), so that boundary is shown by the stream's own facts.
 *
 * One loop drives both ends without blocking: each end runs its list of
 * steps, and when neither can move the loop waits with poll(2) on their
 * sockets for what their stacks want. Exit 0 only when every echo
 * matched and every layer closed cleanly.
 */
#include <arpa/inet.h>
#include <linux/tcp.h>  /* struct tcp_info with the kernel's byte counts */
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strata/h2.h>
#include <strata/socket.h>
#include <strata/tap.h>
#include <strata/tls.h>
#include <strata/ws.h>
#include <strata/ws_h2.h>

#define BUDGET 64           /* moves of one end before the other's turn */
#define STALL_MS 10000      /* nothing at all for this long: a bug */

/* ---- the messages -------------------------------------------------- */

typedef struct message {
    const unsigned char *data;
    size_t len;
    unsigned flags;         /* STRATA_MSG_TEXT, or 0 for binary */
    const char *note;
} message;

static unsigned char pattern[1 << 20];  /* binary messages: its prefixes */

/* Sizes at the WebSocket's length boundaries (RFC 6455 5.2), and large
 * ones that span many TLS records and HTTP/2 flow-control windows. */
static const message rfc8441_msgs[] = {
    {pattern, 0, 0, "empty"},
    {(const unsigned char *)"hello", 5, STRATA_MSG_TEXT, "\"hello\""},
    {pattern, 125, 0, "the longest 7-bit WebSocket length"},
    {pattern, 126, 0, "the shortest 16-bit length"},
    {pattern, 65536, 0, "the shortest 64-bit length"},
    {pattern, 1 << 20, 0, "1 MiB"},
};

/* Through TLS, a byte stream: these are runs of bytes, not messages. */
static const message tunnel_msgs[] = {
    {(const unsigned char *)"hello through TLS inside a WebSocket", 36, 0,
     "\"hello through TLS inside a WebSocket\""},
    {pattern, 40000, 0, "a TLS record holds at most 16 KiB"},
};

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

/* ---- one end of a connection ---------------------------------------- */

typedef struct end end;

/* A step: 0 when it moved (call again), 1 when it is done (the next step
 * runs), STRATA_NEED_* when it waits on the socket, or an error. */
typedef struct step {
    int (*run)(end *e);
    const char *name;
} step;

struct end {
    const char *role;           /* "client" or "server" */
    int server;
    const step *steps;          /* ends with {NULL, NULL} */
    int at;                     /* the step running */
    strata_tls_config *tls_config;
    int listen_fd;              /* server: where the connection comes */
    char authority[32];         /* 127.0.0.1:PORT */

    /* The stack, bottom up. Each layer owns the one below it; the HTTP/2
     * connection (ours to let go) owns the layers under it. */
    strata_stream *wire;        /* tap right over the TCP socket */
    strata_stream *tls;
    strata_stream *over_tls;    /* tap right over tls */
    strata_h2 *h2;              /* stack 1: the connection */
    strata_stream *stream;      /* stack 1: the HTTP/2 stream */
    strata_stream *ws;
    strata_stream *over_ws;     /* tap right over ws */
    strata_stream *top;         /* the application's end of the stack */

    /* client: the messages, how far they went and came back */
    const message *msgs;
    size_t n_msgs, sending, sent, checking, got;
    int framed;                 /* the top keeps message boundaries */
    /* what arrives goes here: the client checks it, the server holds
     * the piece it echoes */
    unsigned char buf[16384];
    size_t len, off;
    unsigned flags;
    int holding;
    /* the ends of the layers */
    int ws_close_sent, goaway_sent, h2_over, tls_close_sent;
    char tcp_ends[64];          /* "127.0.0.1:A -> 127.0.0.1:B" */
    char opened[160];           /* what the WebSocket's opening said */
};

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static void init_end(end *e, int server, const step *steps,
                     strata_tls_config *config, int listen_fd, int port)
{
    memset(e, 0, sizeof *e);
    e->server = server;
    e->role = server ? "server" : "client";
    e->steps = steps;
    e->tls_config = config;
    e->listen_fd = listen_fd;
    snprintf(e->authority, sizeof e->authority, "127.0.0.1:%d", port);
}

/* Both addresses of the TCP connection, noted while it is up. */
static void note_tcp(end *e)
{
    struct sockaddr_in a, b;
    socklen_t la = sizeof a, lb = sizeof b;
    char sa[INET_ADDRSTRLEN] = "?", sb[INET_ADDRSTRLEN] = "?";
    int fd = strata_fd(e->wire);

    if (e->tcp_ends[0] != '\0')
        return;
    if (getsockname(fd, (struct sockaddr *)&a, &la) == 0)
        inet_ntop(AF_INET, &a.sin_addr, sa, sizeof sa);
    if (getpeername(fd, (struct sockaddr *)&b, &lb) == 0)
        inet_ntop(AF_INET, &b.sin_addr, sb, sizeof sb);
    snprintf(e->tcp_ends, sizeof e->tcp_ends, "%s:%u -> %s:%u", sa,
             (unsigned)ntohs(a.sin_port), sb, (unsigned)ntohs(b.sin_port));
}

/* ---- building the stacks -------------------------------------------- */

/* Stack 1 under HTTP/2, bottom up:
 *   tcp <- tap <- tls (ALPN h2) <- tap <- HTTP/2 connection.
 * Each constructor takes the stream below; a tap that cannot be made
 * frees what it was given, the others leave it to us. */
static int h2_stack(end *e, strata_stream *tcp)
{
    strata_tls_opts to = {0};
    strata_h2_opts ho = {0};

    to.server_name = e->server ? NULL : "127.0.0.1"; /* checked in the cert */
    ho.role = e->server ? STRATA_H2_SERVER : STRATA_H2_CLIENT;
    if ((e->wire = strata_tap_new(tcp, "tcp", NULL, NULL, NULL)) == NULL)
        return STRATA_ERR_NOMEM;
    if ((e->tls = strata_tls_new(e->wire, e->tls_config, &to, NULL)) ==
        NULL) {
        strata_free(e->wire);
        return STRATA_ERR_NOMEM;
    }
    if ((e->over_tls = strata_tap_new(e->tls, "tls", NULL, NULL, NULL)) ==
        NULL)
        return STRATA_ERR_NOMEM;
    /* a server's SETTINGS allow extended CONNECT unless told otherwise */
    if ((e->h2 = strata_h2_new(e->over_tls, &ho, NULL)) == NULL) {
        strata_free(e->over_tls);
        return STRATA_ERR_NOMEM;
    }
    return 0;
}

/* Stack 1 above HTTP/2: a tap over the WebSocket, which owns its stream. */
static int put_top(end *e, strata_stream *ws)
{
    e->ws = ws;
    e->over_ws = e->top = strata_tap_new(ws, "ws", NULL, NULL, NULL);
    if (e->top == NULL) {
        e->stream = NULL;   /* went with the WebSocket */
        return STRATA_ERR_NOMEM;
    }
    return 1;
}

/* Stack 2, bottom up:
 *   tcp <- tap <- ws (HTTP/1.1 Upgrade) <- tap <- tls <- tap.
 * The ws and tls handshakes run in the first calls on the top. */
static int tunnel_stack(end *e, strata_stream *tcp)
{
    strata_ws_opts wo = {0};
    strata_tls_opts to = {0};

    wo.role = e->server ? STRATA_WS_SERVER : STRATA_WS_CLIENT;
    wo.host = e->authority;
    wo.path = "/tunnel";
    to.server_name = e->server ? NULL : "127.0.0.1";
    if ((e->wire = strata_tap_new(tcp, "tcp", NULL, NULL, NULL)) == NULL)
        return STRATA_ERR_NOMEM;
    if ((e->ws = strata_ws_new(e->wire, &wo, NULL)) == NULL) {
        strata_free(e->wire);
        return STRATA_ERR_NOMEM;
    }
    /* TLS writes each record as one (binary) WebSocket message */
    if ((e->over_ws = strata_tap_new(e->ws, "ws", NULL, NULL, NULL)) == NULL)
        return STRATA_ERR_NOMEM;
    if ((e->tls = strata_tls_new(e->over_ws, e->tls_config, &to, NULL)) ==
        NULL) {
        strata_free(e->over_ws);
        return STRATA_ERR_NOMEM;
    }
    e->over_tls = e->top = strata_tap_new(e->tls, "tls", NULL, NULL, NULL);
    return e->top != NULL ? 0 : STRATA_ERR_NOMEM;
}

/* Server: take the client's connection (NEED_READ until it comes). */
static int accept_with(end *e, int (*build)(end *, strata_stream *))
{
    strata_stream *tcp;
    int r = strata_accept(e->listen_fd, NULL, &tcp);

    if (r != 0)
        return r;
    r = build(e, tcp);
    return r == 0 ? 1 : r;
}

static int accept_h2(end *e)
{
    return accept_with(e, h2_stack);
}

static int accept_tunnel(end *e)
{
    return accept_with(e, tunnel_stack);
}

/* ---- opening the WebSocket over HTTP/2 (RFC 8441) ------------------- */

/* Client: the extended CONNECT (it waits for the server's SETTINGS),
 * then the server's answer. */
static int client_open_ws(end *e)
{
    strata_ws_opts o = {0};
    strata_stream *ws;
    int r;

    o.host = e->authority;
    o.path = "/showcase";
    if (e->stream == NULL &&
        (r = strata_ws_h2_open(e->h2, &o, "https", &e->stream)) != 0)
        return r;
    if ((r = strata_ws_h2_client(e->stream, &o, NULL, &ws)) != 0)
        return r;
    snprintf(e->opened, sizeof e->opened,
             "stream %d: extended CONNECT -> :status %d",
             (int)strata_h2_stream_id(e->stream),
             strata_h2_status(e->stream));
    return put_top(e, ws);
}

/* A header of the request, or "-" when it has none. */
static const char *header(strata_stream *stream, const char *name)
{
    const char *v = strata_h2_get(stream, name);

    return v != NULL ? v : "-";
}

/* Server: drive the connection until the request comes, then answer it
 * (200) and put the WebSocket on its stream. */
static int server_open_ws(end *e)
{
    strata_ws_opts o = {0};
    strata_stream *ws;
    int r;

    if (e->stream == NULL && (e->stream = strata_h2_accept(e->h2)) == NULL)
        return strata_h2_drive(e->h2);
    if ((r = strata_ws_h2_accept(e->stream, &o, NULL, &ws)) != 0)
        return r;   /* NEED_*, or refused: the answer went */
    snprintf(e->opened, sizeof e->opened,   /* accepted: it answered 200 */
             "stream %d: %s :protocol %s :path %s -> :status 200",
             (int)strata_h2_stream_id(e->stream),
             header(e->stream, ":method"), header(e->stream, ":protocol"),
             header(e->stream, ":path"));
    return put_top(e, ws);
}

/* ---- the exchange --------------------------------------------------- */

/* Client: send the next piece of the messages. 0 moved, 1 all sent. */
static int send_more(end *e)
{
    const message *m;
    ssize_t n;

    if (e->sending == e->n_msgs)
        return 1;
    m = &e->msgs[e->sending];
    /* through TLS the bytes are a stream: no message flags */
    n = strata_send(e->top, m->data + e->sent, m->len - e->sent,
                    e->framed ? m->flags | STRATA_MSG_END : 0);
    if (n < 0)
        return (int)n;
    if ((e->sent += (size_t)n) == m->len) {    /* a 0 B message too */
        e->sending++;
        e->sent = 0;
    }
    return 0;
}

/* Client: the echo of one message is complete: its bytes all matched. */
static void echo_done(end *e, const message *m)
{
    printf("  %8zu B  %-6s  echoed, matches   %s\n", m->len,
           !e->framed ? "bytes"
                      : (m->flags & STRATA_MSG_TEXT ? "text" : "binary"),
           m->note);
    e->checking++;
    e->got = 0;
}

/* Client: check what came back against what went. 0 moved, 1 all
 * checked, STRATA_ERR_PROTO when the echo differs. */
static int check_more(end *e)
{
    const message *m;
    unsigned flags = 0;
    ssize_t n;

    if (e->checking == e->n_msgs)
        return 1;
    m = &e->msgs[e->checking];
    if ((n = strata_recv(e->top, e->buf, sizeof e->buf, &flags)) < 0)
        return (int)n;
    if ((size_t)n > m->len - e->got ||
        memcmp(e->buf, m->data + e->got, (size_t)n) != 0 ||
        (e->framed && (flags & STRATA_MSG_TEXT) != m->flags)) {
        fprintf(stderr, "showcase: the echo of the %zu B message differs\n",
                m->len);
        return STRATA_ERR_PROTO;
    }
    e->got += (size_t)n;
    /* a WebSocket marks a message's end; through TLS, count the bytes */
    if (e->framed ? (flags & STRATA_MSG_END) != 0 : e->got == m->len) {
        if (e->got != m->len) {
            fprintf(stderr, "showcase: the echo of the %zu B message "
                            "ended after %zu B\n", m->len, e->got);
            return STRATA_ERR_PROTO;
        }
        echo_done(e, m);
    }
    return 0;
}

/* Client: send and check at the same time: a large message fills the
 * flow-control windows both ways before its echo can drain. */
static int exchange(end *e)
{
    int s, r;

    note_tcp(e);
    s = send_more(e);
    if (s < 0 && !is_need(s))
        return s;
    r = check_more(e);
    if (r < 0 && !is_need(r))
        return r;
    if (s == 0 || r == 0)
        return 0;
    return s == 1 && r == 1 ? 1 : (is_need(r) ? r : s);
}

/* Server: send every piece back as it came, same flags, until the
 * client's end (a WebSocket close, or TLS close_notify). */
static int echo(end *e)
{
    ssize_t n;

    note_tcp(e);
    if (!e->holding) {
        n = strata_recv(e->top, e->buf, sizeof e->buf, &e->flags);
        if (n == STRATA_EOF)
            return 1;
        if (n < 0)
            return (int)n;
        e->len = (size_t)n;
        e->off = 0;
        e->flags &= STRATA_MSG_END | STRATA_MSG_TEXT;
        e->holding = 1;
    }
    n = strata_send(e->top, e->buf + e->off, e->len - e->off, e->flags);
    if (n < 0)
        return (int)n;
    if ((e->off += (size_t)n) == e->len)
        e->holding = 0;
    return 0;
}

/* ---- the ends of the layers ----------------------------------------- */

/* Read s until the peer's end: 1, NEED_*, or an error. Bytes still on
 * the way (the peer's GOAWAY under an ended HTTP/2) are read and
 * dropped; the taps count them. */
static int read_to_end(end *e, strata_stream *s)
{
    unsigned flags;
    ssize_t n;

    while ((n = strata_recv(s, e->buf, sizeof e->buf, &flags)) >= 0)
        ;
    return n == STRATA_EOF ? 1 : (int)n;
}

/* The WebSocket: our close (the client's 1000, the server's answer with
 * the client's code), then the peer's. Both went: the layer ends the
 * stream below it (END_STREAM on HTTP/2, FIN on TCP). */
static int close_ws(end *e)
{
    int r;

    if (!e->ws_close_sent) {
        if ((r = strata_shutdown(e->over_ws)) != 0)
            return r;
        e->ws_close_sent = 1;
    }
    return read_to_end(e, e->over_ws);
}

/* HTTP/2: GOAWAY, then drive the connection until it is over (the
 * stream closed, GOAWAY sent or received). */
static int end_h2(end *e)
{
    int r;

    if (!e->goaway_sent) {
        if ((r = strata_h2_shutdown(e->h2)) != 0 && r != STRATA_EOF)
            return r;
        e->goaway_sent = 1;
    }
    if ((r = strata_h2_drive(e->h2)) != STRATA_EOF)
        return r;
    e->h2_over = 1;
    return 1;
}

/* TLS: our close_notify (the layer then ends the stream below), then
 * the peer's. A connection cut without it would be ERR_TRUNCATED. */
static int end_tls(end *e)
{
    int r;

    if (!e->tls_close_sent) {
        if ((r = strata_shutdown(e->over_tls)) != 0)
            return r;
        e->tls_close_sent = 1;
    }
    return read_to_end(e, e->over_tls);
}

static const step rfc8441_client[] = {
    {client_open_ws, "open the WebSocket (extended CONNECT)"},
    {exchange, "exchange the messages"},
    {close_ws, "close the WebSocket"},
    {end_h2, "end HTTP/2 (GOAWAY)"},
    {end_tls, "end TLS (close_notify)"},
    {NULL, NULL},
};
static const step rfc8441_server[] = {
    {accept_h2, "accept the TCP connection"},
    {server_open_ws, "answer the extended CONNECT"},
    {echo, "echo the messages"},
    {close_ws, "close the WebSocket"},
    {end_h2, "end HTTP/2 (GOAWAY)"},
    {end_tls, "end TLS (close_notify)"},
    {NULL, NULL},
};
/* Stack 2 ends from the top: TLS first, and its shutdown sends the
 * WebSocket's close below it. */
static const step tunnel_client[] = {
    {exchange, "exchange through the tunnel"},
    {end_tls, "end TLS (close_notify)"},
    {close_ws, "close the WebSocket"},
    {NULL, NULL},
};
static const step tunnel_server[] = {
    {accept_tunnel, "accept the TCP connection"},
    {echo, "echo through the tunnel"},
    {end_tls, "end TLS (close_notify)"},
    {close_ws, "close the WebSocket"},
    {NULL, NULL},
};

/* ---- the loop ------------------------------------------------------- */

/* Run an end's steps while they move, at most BUDGET moves: 1 when all
 * are done, 0 when the budget ran out, NEED_* or an error. */
static int run_end(end *e)
{
    int r, d, moves = 0;

    while (e->steps[e->at].run != NULL) {
        r = e->steps[e->at].run(e);
        /* the streams of a connection do not read for each other: drive
         * it before waiting, as an event loop does on readiness */
        if (is_need(r) && e->h2 != NULL && !e->h2_over) {
            d = strata_h2_drive(e->h2);
            if (d == 0)
                r = 0;
            else if (d < 0 && !is_need(d) && d != STRATA_EOF)
                return d;   /* the connection failed */
        }
        if (r == 1)
            e->at++;
        else if (r != 0)
            return r;
        else if (++moves == BUDGET)
            return 0;
    }
    return 1;
}

/* Where an end waits: the HTTP/2 connection's socket while it runs,
 * else the stack over TLS, else (before its connection) the listener. */
static void wait_on(end *e, struct pollfd *p)
{
    unsigned w;

    if (e->h2 != NULL && !e->h2_over) {
        p->fd = strata_h2_fd(e->h2);
        w = strata_h2_wants(e->h2);
    } else if (e->over_tls != NULL) {
        p->fd = strata_fd(e->over_tls);
        w = strata_wants(e->over_tls);
    } else {
        p->fd = e->listen_fd;
        w = STRATA_WANT_READ;
    }
    p->events = (short)((w & STRATA_WANT_READ ? POLLIN : 0) |
                        (w & STRATA_WANT_WRITE ? POLLOUT : 0));
    p->revents = 0;
}

static void say_failure(end *e, int r)
{
    fprintf(stderr, "showcase: %s: %s: %s\n", e->role,
            e->steps[e->at].name, strata_strerror(r));
    if (e->tls != NULL && strata_tls_error(e->tls) != 0)
        fprintf(stderr, "  tls: %s\n", strata_tls_reason(e->tls));
    if (e->h2 != NULL && strata_h2_error_code(e->h2) != 0)
        fprintf(stderr, "  HTTP/2 error code %u\n",
                (unsigned)strata_h2_error_code(e->h2));
}

/* Drive both ends until both ran all their steps: 0, or the failure. */
static int drive(end *a, end *b)
{
    end *ends[2] = {a, b};
    struct pollfd p[2];
    int r[2], i, n;

    for (;;) {
        for (i = 0; i < 2; i++) {
            r[i] = run_end(ends[i]);
            if (r[i] < 0 && !is_need(r[i])) {
                say_failure(ends[i], r[i]);
                return r[i];
            }
        }
        if (r[0] == 1 && r[1] == 1)
            return 0;
        if (r[0] == 0 || r[1] == 0)
            continue;   /* a budget ran out: more to do at once */
        for (i = n = 0; i < 2; i++)
            if (r[i] != 1)
                wait_on(ends[i], &p[n++]);
        if ((n = poll(p, (nfds_t)n, STALL_MS)) <= 0) {
            fprintf(stderr, "showcase: %s\n", n == 0 ? "stalled" : "poll");
            return STRATA_ERR_TIMEOUT;
        }
    }
}

/* ---- the table ------------------------------------------------------ */

static void row(const char *layer, const char *text)
{
    printf("  %-5s %s\n", layer, text);
}

/* A figure of the table: "N msgs  B B", or bytes alone (what < 0). */
static const char *cell(char *buf, size_t cap, const char *what,
                        unsigned long long n, unsigned long long bytes)
{
    if (what == NULL)
        snprintf(buf, cap, "%llu B", bytes);
    else
        snprintf(buf, cap, "%llu %s %9llu B", n, what, bytes);
    return buf;
}

/* One boundary between layers: what crossed it down and up. */
static void figures(const char *label, const char *what,
                    unsigned long long n_out, unsigned long long out,
                    unsigned long long n_in, unsigned long long in)
{
    char a[48], b[48];

    printf("    |   %-25s %20s  %20s\n", label,
           cell(a, sizeof a, what, n_out, out),
           cell(b, sizeof b, what, n_in, in));
}

/* What crossed a tap each way; messages where the layer below keeps
 * them. */
static void crossed(const char *label, strata_stream *tap, int messages)
{
    const strata_tap_counts *o = strata_tap_out(tap), *i = strata_tap_in(tap);

    figures(label, messages ? "msgs" : NULL, o->messages, o->bytes,
            i->messages, i->bytes);
}

/* The kernel's own count of the TCP connection (Linux TCP_INFO): data
 * segments and bytes. Its bytes sent count retransmissions too, and its
 * bytes received the peer's FIN (one sequence number). */
static void tcp_row(end *e)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    char text[128];

    row("tcp", e->tcp_ends);
    memset(&ti, 0, sizeof ti);
    if (getsockopt(strata_fd(e->wire), IPPROTO_TCP, TCP_INFO, &ti, &len) !=
            0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_retrans) +
                  sizeof ti.tcpi_bytes_retrans) {
        row("", "(this kernel does not count bytes in TCP_INFO)");
        return;
    }
    figures("kernel (TCP_INFO)", "segs", ti.tcpi_data_segs_out,
            ti.tcpi_bytes_sent, ti.tcpi_data_segs_in, ti.tcpi_bytes_received);
    snprintf(text, sizeof text, "(the kernel counts %llu B sent again and "
             "the peer's FIN as 1 B)",
             (unsigned long long)ti.tcpi_bytes_retrans);
    row("", text);
}

/* The rows below print only once every step of both ends returned 1:
 * "over" and "close_notify both ways" are what end_h2 and end_tls saw
 * (STRATA_EOF from the connection, the peer's close_notify). */
static void tls_row(end *e)
{
    char text[160];
    const char *alpn = strata_tls_alpn(e->tls);

    snprintf(text, sizeof text, "%s %s, ALPN %s", strata_tls_version(e->tls),
             strata_tls_cipher(e->tls), alpn != NULL ? alpn : "none");
    row("tls", text);
    if (!e->server)
        row("", strata_tls_peer_verified(e->tls)
                    ? "server certificate verified; close_notify both ways"
                    : "server NOT verified; close_notify both ways");
    else
        row("", "close_notify both ways");
}

static void ws_row(end *e, const char *how)
{
    char text[160];

    snprintf(text, sizeof text, "opened by %s %d, permessage-deflate %s",
             how, strata_ws_status(e->ws),
             strata_ws_deflate(e->ws) ? "on" : "off");
    row("ws", text);
    snprintf(text, sizeof text, "closed; the peer's close code %u",
             strata_ws_close_code(e->ws));
    row("", text);
}

static void heading(end *e)
{
    printf("\n%-6s top to bottom%*s%20s  %20s\n", e->role, 14, "", "sent",
           "received");
    row("app", e->server ? "echoes each piece as it comes, with its flags"
                         : "sends the messages above, checks each echo");
}

static void print_rfc8441_end(end *e)
{
    char text[160];

    heading(e);
    crossed("WebSocket messages (tap)", e->over_ws, 1);
    ws_row(e, ":status");
    printf("    |   (its frames ride the HTTP/2 stream: no tap fits here)\n");
    row("h2", e->opened);
    snprintf(text, sizeof text, "connection %s; over, error code %u",
             e->server ? "served"
                       : (strata_h2_connect_protocol(e->h2)
                              ? "allows extended CONNECT"
                              : "refuses extended CONNECT"),
             (unsigned)strata_h2_error_code(e->h2));
    row("", text);
    crossed("HTTP/2 frames (tap)", e->over_tls, 0);
    tls_row(e);
    crossed("TLS records (tap)", e->wire, 0);
    tcp_row(e);
}

static void print_tunnel_end(end *e)
{
    heading(e);
    crossed("bytes (tap)", e->over_tls, 0);
    tls_row(e);
    crossed("records as messages (tap)", e->over_ws, 1);
    ws_row(e, "HTTP/1.1");
    crossed("HTTP/1.1, ws frames (tap)", e->wire, 0);
    tcp_row(e);
}

/* ---- the two stacks ------------------------------------------------- */

static void free_end(end *e)
{
    if (e->top != NULL)
        strata_free(e->top);        /* and every layer it owns */
    else if (e->stream != NULL)
        strata_free(e->stream);
    strata_h2_free(e->h2);          /* goes with its last stream */
}

/* Connect the client to the server's port, drive both ends, print
 * both stacks. */
static int show(const char *title, const char *layers, end *c, end *s,
                int (*build)(end *, strata_stream *),
                void (*print_end)(end *))
{
    strata_stream *tcp;
    int r = STRATA_ERR_IO;

    printf("\n== %s, 127.0.0.1:%d\n   %s\n\n", title,
           strata_local_port(s->listen_fd), layers);
    printf("client -> server -> client, each echo checked:\n");
    if (strata_tcp_connect("127.0.0.1", strchr(c->authority, ':') + 1, NULL,
                           &tcp) == 0 &&
        (r = build(c, tcp)) == 0 && (r = drive(c, s)) == 0) {
        print_end(c);
        print_end(s);
    }
    free_end(c);
    free_end(s);
    return r;
}

/* A client and a server end on a fresh listening port, then show. */
static int run_stack(int stack, strata_tls_config *client_tls,
                     strata_tls_config *server_tls)
{
    static end c, s;    /* static: each holds a 16 KiB buffer */
    int lfd = strata_tcp_listen("127.0.0.1", "0", 8), port, r;

    if (lfd < 0)
        return lfd;
    port = strata_local_port(lfd);
    init_end(&c, 0, stack == 1 ? rfc8441_client : tunnel_client, client_tls,
             -1, port);
    init_end(&s, 1, stack == 1 ? rfc8441_server : tunnel_server, server_tls,
             lfd, port);
    if (stack == 1) {
        c.msgs = rfc8441_msgs;
        c.n_msgs = COUNT(rfc8441_msgs);
        c.framed = 1;
        r = show("1. WebSocket over HTTP/2 over TLS over TCP (RFC 8441)",
                 "app | tap | ws | h2 stream : h2 connection | tap | tls | "
                 "tap | tcp", &c, &s, h2_stack, print_rfc8441_end);
    } else {
        c.msgs = tunnel_msgs;
        c.n_msgs = COUNT(tunnel_msgs);
        r = show("2. TLS inside a WebSocket over TCP",
                 "app | tap | tls | tap | ws | tap | tcp", &c, &s,
                 tunnel_stack, print_tunnel_end);
    }
    close(lfd);
    return r;
}

/* A TLS configuration: the server's certificate, or the client's trust
 * in the CA that signed it; ALPN when alpn is not NULL. */
static strata_tls_config *tls_config(int role, const char *alpn,
                                     char **files)
{
    strata_tls_config *c = strata_tls_config_new(role, NULL);
    int r;

    if (c == NULL)
        return NULL;
    r = role == STRATA_TLS_SERVER
            ? strata_tls_config_cert_file(c, files[1], files[2])
            : strata_tls_config_ca_file(c, files[0], NULL);
    if (r == 0 && alpn != NULL)
        r = strata_tls_config_alpn(c, alpn);
    if (r != 0) {
        fprintf(stderr, "showcase: tls: %s\n", strata_tls_config_reason(c));
        strata_tls_config_free(c);
        return NULL;
    }
    return c;
}

int main(int argc, char **argv)
{
    strata_tls_config *tls[4] = {NULL, NULL, NULL, NULL};
    size_t i;
    int r = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: showcase CA.pem SERVER.pem SERVER.key\n"
                        "  (a server certificate for 127.0.0.1 signed by "
                        "the CA; scripts/demo.sh makes them)\n");
        return 2;
    }
    for (i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 7 + i / 251);
    /* HTTP/2 over TLS is agreed by ALPN "h2"; the tunnel offers none */
    tls[0] = tls_config(STRATA_TLS_CLIENT, "h2", argv + 1);
    tls[1] = tls_config(STRATA_TLS_SERVER, "h2", argv + 1);
    tls[2] = tls_config(STRATA_TLS_CLIENT, NULL, argv + 1);
    tls[3] = tls_config(STRATA_TLS_SERVER, NULL, argv + 1);
    if (tls[0] && tls[1] && tls[2] && tls[3] &&
        run_stack(1, tls[0], tls[1]) == 0 && run_stack(2, tls[2], tls[3]) == 0)
        r = 0;
    for (i = 0; i < 4; i++)
        strata_tls_config_free(tls[i]);
    printf("\n%s\n", r == 0 ? "every echo matched; every layer closed "
                              "cleanly"
                            : "FAILED");
    return r;
}
