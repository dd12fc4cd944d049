/* strata: the command-line tool.
 *
 *   strata connect URI [--binary] [--deflate] [--protocol NAME]
 *                      [--ca FILE | --insecure] [--cert FILE --key FILE]
 *                      [--alpn LIST] [-v | -vv]
 *   strata listen URI (--echo | --forward URI2) [--once] [--deflate]
 *                     [--protocol NAME] --cert FILE --key FILE [--ca FILE]
 *                     [--alpn LIST] [--forward-ca FILE | --forward-insecure]
 *                     [--forward-cert FILE --forward-key FILE]
 *                     [--forward-alpn LIST] [--root DIR] [-v | -vv]
 *
 * Options may stand anywhere. listen --forward bridges each accepted
 * stack (or HTTP/2 stream) to a new client stack of URI2 ("bridges"
 * below); -v builds each stack with a tap between its layers ("-v"
 * below).
 *
 * The tls options go with a URI that has a tls layer (tls://, wss://,
 * lines+tls://, tls+ws://...): --cert and --key are our certificate and key
 * (a server's, or a client's for mutual TLS), --ca the CAs a client trusts
 * (else the system's) or a server requires client certificates from,
 * --insecure turns a client's verification off, --alpn offers / accepts
 * ALPN protocols. The configuration is made once, before any connection,
 * so a bad file is reported at start and a server's connections share it.
 * A TLS connection ends with close_notify both ways; a cut without it is
 * an error (exit 1), not an end.
 *
 * HTTP/2 (h2://HOST:PORT/PATH with prior knowledge, h2+tls:// with ALPN
 * "h2", offered and required unless --alpn says otherwise): connect POSTs
 * stdin to PATH as the request body, streamed as the flow-control windows
 * allow, and prints the response body; the exit is 0 for a 2xx response
 * that ended cleanly, else 1 with the status or the error (and its
 * HTTP/2 error code). ws+h2:// and ws+h2+tls:// are WebSocket over an
 * extended CONNECT stream (RFC 8441) and behave as ws:// and wss://.
 * listen serves, on each connection, many streams at once, each echoed
 * through one bounded buffer: a request's body comes back as the
 * response's with :status 200, a CONNECT tunnel's bytes and a WebSocket's
 * messages come back too; ws+h2:// is the same server (the ws options
 * then apply to its WebSockets). A stream has no descriptor of its own:
 * the connection's descriptor is watched and drives its streams.
 *
 * One event loop drives everything. All I/O on a stack happens in that
 * stack's own callback, so the loop always sees the NEED codes it must wait
 * for; the stdin callback only fills a buffer and wakes the stack. Writes to
 * stdout are plain blocking stdio writes: a slow reader of our output may
 * stall us, which is what a filter is expected to do.
 */
#include "loop.h"
#include "uri.h"
#include "../streams/socket.h"
#include "../streams/tap.h"
#ifdef STRATA_WITH_WS
#include "../protos/ws.h"
#endif
#ifdef STRATA_WITH_TLS
#include "../protos/tls.h"
#endif
#ifdef STRATA_WITH_H2
#include "../protos/h2.h"
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
#include "../protos/ws_h2.h"
#endif
#ifdef STRATA_WITH_GRPC
#include "../protos/grpc.h"
#endif
/* The browsers' front: wss:// and ws+h2+tls:// listeners serve both ALPNs
 * (HTTP/2 with RFC 8441, HTTP/1.1 Upgrade) and plain GETs. */
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS) && \
    defined(STRATA_WITH_TLS)
#define CLI_WEB 1
#include "web.h"
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#define CHUNK (64u * 1024u)          /* one read from stdin or a stack */
#define MAX_MSG (16u * 1024u * 1024u) /* largest message we hold (len's max) */
#define STEPS 64 /* I/O steps per callback before yielding to others */
/* How long a WebSocket or TLS client waits, after its close (close_notify)
 * went, for a peer that neither sends nor closes. The layers own no timer:
 * the deadline is ours. */
#define CLOSE_WAIT_MS 30000
/* How long a TLS client that is done reads what is left on its socket
 * before it exits (client_done). */
#define DRAIN_MS 2000

/* In parts: ISO C promises string literals of 4095 bytes only. */
static const char *const usage_text[] = {
    "usage: strata connect URI [options]\n"
    "       strata listen URI --echo [options]\n"
    "       strata listen URI --forward URI2 [options]\n"
    "       strata --help\n"
    "Options may stand before or after the command and the URI.\n"
    "\n"
    "URI: LAYERS://HOST:PORT[/PATH], layers joined by '+', the top first,\n"
    "tcp implied at the bottom; LAYERS+unix:///PATH for a Unix socket.\n"
    "Layers: tcp; lines (a message per LF-terminated line, up to 64 KiB);\n"
    "len (4-byte big-endian length before each message, up to 16 MiB).\n"
#ifdef STRATA_WITH_WS
    "ws: WebSocket messages (up to 16 MiB), ws://HOST:PORT/PATH, the top\n"
    "layer or right under tls; ws+unix:///PATH requests \"/\".\n"
#endif
#ifdef STRATA_WITH_TLS
    "tls: TLS 1.2 / 1.3, tls://HOST:PORT; lines, len and ws may sit on it\n"
    "(lines+tls://, wss:// = ws+tls); it sits on the transport, on ws\n"
    "(tls+ws://: TLS inside WebSocket messages) or in an h2 tunnel.\n"
#endif
#ifdef STRATA_WITH_H2
    "h2: HTTP/2, h2://HOST:PORT/PATH (prior knowledge)"
#ifdef STRATA_WITH_TLS
    " or h2+tls:// (ALPN h2)"
#endif
    ":\n"
    "a connection with many streams. Above it: nothing (a POST to PATH),\n"
#ifdef STRATA_WITH_WS
    "ws (ws+h2://HOST:PORT/PATH"
#ifdef STRATA_WITH_TLS
    ", ws+h2+tls://"
#endif
    ": WebSocket over HTTP/2, RFC 8441),\n"
#endif
#ifdef STRATA_WITH_GRPC
    "grpc (grpc+h2://HOST:PORT/pkg.Service/Method: one gRPC call),\n"
#endif
    "or any byte layers through a CONNECT tunnel to HOST:PORT\n"
    "(lines+h2://"
#ifdef STRATA_WITH_TLS
    ", lines+tls+h2+tls://: TLS inside the tunnel too"
#endif
    ").\n"
#endif
    "IPv6 addresses go in brackets: tcp://[::1]:7000.\n"
    "Examples: tcp://127.0.0.1:7000  lines://localhost:7000\n"
    "          len+unix:///tmp/strata.sock\n"
#ifdef STRATA_WITH_WS
    "          ws://127.0.0.1:8080/chat\n"
#endif
#ifdef STRATA_WITH_TLS
    "          tls://localhost:8443 --ca ca.pem  lines+tls://127.0.0.1:8443\n"
#endif
#if defined(STRATA_WITH_TLS) && defined(STRATA_WITH_WS)
    "          wss://localhost:8443/chat\n"
#endif
#ifdef STRATA_WITH_H2
    "          h2://127.0.0.1:8080/upload"
#ifdef STRATA_WITH_TLS
    "  h2+tls://localhost:8443/ --ca ca.pem"
#endif
    "\n"
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
    "          ws+h2://127.0.0.1:8080/chat\n"
#endif
#ifdef STRATA_WITH_GRPC
    "          grpc+h2://127.0.0.1:50051/echo.Echo/Say\n"
#endif
    "\n",
    "connect  Send stdin into the stack and write what arrives to stdout.\n"
    "         With a message layer (lines, len, ws, grpc) each stdin line\n"
    "         is one message, sent without its newline, and each message\n"
    "         received is printed followed by a newline. At the end of\n"
    "         stdin the rest is sent and our direction is closed; output\n"
    "         goes on until the peer ends, then the exit is 0.\n"
    "  --binary       each read of stdin is one message and received\n"
    "                 messages are written raw, without a newline\n"
#ifdef STRATA_WITH_WS
    "         ws: lines go as text messages (valid UTF-8), --binary reads\n"
    "         as binary messages. At the end of stdin a close (1000) is\n"
    "         sent; a peer's close with a code other than 1000 or 1005 is\n"
    "         printed (\"closed by peer: CODE REASON\") and exits 1.\n"
#endif
#ifdef STRATA_WITH_H2
    "         h2: stdin is the body of a POST to PATH, the response body is\n"
    "         printed; exit 0 for a 2xx response that ended cleanly, else 1\n"
    "         with the status or the error (and its HTTP/2 error code).\n"
#endif
#ifdef STRATA_WITH_GRPC
    "         grpc: each line (--binary: each read) one request message,\n"
    "         each response message printed; exit 0 for status OK, else 1\n"
    "         with the status's name and message.\n"
#endif
    "listen   Accept connections, many at a time, until killed.\n"
    "  --echo         send everything received back (messages as messages)\n"
    "  --forward URI2 bridge each accepted stack (each HTTP/2 stream) to a\n"
    "                 new client stack of URI2, both ways: a translator or\n"
    "                 a tunnel. Messages stay messages where both sides\n"
    "                 have them (WebSocket text/binary kept between two\n"
    "                 WebSockets, binary otherwise); a side without them\n"
    "                 gets the bytes (a line with its LF), bytes into\n"
    "                 lines are cut at each LF, into other message layers\n"
    "                 one message per read. One side's end (EOF, close,\n"
    "                 close_notify, END_STREAM) ends the other's once what\n"
    "                 came before it went; a slow side holds the other\n"
    "                 back (64 KiB per direction, a whole message for len\n"
    "                 and grpc). A failed upstream ends the client's side\n"
    "                 with its protocol's error: WebSocket close 1014,\n"
    "                 HTTP/2 502 (or a reset once answered), gRPC\n"
    "                 UNAVAILABLE, a TLS or TCP cut.\n"
    "  --once         exit after the first connection closes\n"
#ifdef CLI_WEB
    "  --root DIR     wss:// and ws+h2+tls:// (below): serve DIR's files\n"
    "                 (GET and HEAD, \"/\" is index.html; nothing outside\n"
    "                 DIR: .., hidden names and links out are refused)\n"
    "         wss:// and ws+h2+tls:// listen for browsers: one port offers\n"
    "         ALPN h2 and http/1.1 (--alpn narrows it); a WebSocket comes\n"
    "         by RFC 8441 on HTTP/2 or by HTTP/1.1 Upgrade, plain requests\n"
    "         get the --root files or, without it, a small page at \"/\".\n"
    "         With --forward and no --root, HTTP/2 requests are bridged.\n"
#endif
#ifdef STRATA_WITH_WS
    "         ws: any path is accepted; text comes back as text, binary as\n"
    "         binary; a peer's close is answered with its code and reason.\n"
#endif
#ifdef STRATA_WITH_H2
    "         h2 (and ws+h2, the same server): many streams per connection,\n"
    "         each echoed (or forwarded): a request's body comes back as\n"
    "         the response body with :status 200; a CONNECT tunnel's bytes\n"
    "         after a 200; a WebSocket (extended CONNECT) its messages.\n"
    "         grpc+h2://.../pkg.Svc/Method answers calls to that method;\n"
    "         lines+h2:// and the like answer CONNECT and run the layers\n"
    "         above h2 as servers in each tunnel.\n"
#endif
    "",
#ifdef STRATA_WITH_WS
    "ws options (connect and listen, and the --forward URI's ws):\n"
    "  --deflate        offer / accept permessage-deflate\n"
    "  --protocol NAME  offer / accept subprotocol NAME\n"
#endif
#ifdef STRATA_WITH_TLS
    "tls options (of the URI):\n"
    "  --cert FILE      our certificate chain (PEM): listen needs it; a\n"
    "                   client's for mutual TLS\n"
    "  --key FILE       the private key of --cert (PEM)\n"
    "  --ca FILE        connect: trust these CAs (PEM), not the system's\n"
    "                   listen: require client certificates they signed\n"
    "  --insecure       connect: do not verify the server (tests only)\n"
    "  --alpn LIST      offer / accept ALPN protocols, comma-separated in\n"
    "                   order of preference (\"h2,http/1.1\"); under h2 the\n"
    "                   list is \"h2\" unless given, and h2 must be agreed\n"
    "         connect checks the server's certificate against the URI's\n"
    "         host (sent as SNI; an IP address against the certificate's).\n"
    "         At the end of stdin close_notify is sent; a connection cut\n"
    "         without one is an error (exit 1).\n"
    "  --forward-ca FILE, --forward-insecure, --forward-cert FILE,\n"
    "  --forward-key FILE, --forward-alpn LIST\n"
    "                   the same for the client side of the --forward URI\n"
#endif
    "common:\n"
    "  -v, --verbose  log to stderr: connects, accepts, handshakes (TLS\n"
    "                 version, cipher, ALPN; WebSocket subprotocol and\n"
    "                 deflate; HTTP/2 streams and :status), closes with\n"
    "                 their codes, errors, and when a stack ends what\n"
    "                 crossed each of its layers (\"tls: received 517 B in\n"
    "                 3 calls\"), per connection (\"connection #3: ...\")\n"
    "  -vv            also each call through each layer (\"tls: recv\n"
    "                 517 B\", \"ws: send text 5 B (end)\")\n"
    "  -h, --help     show this text\n"
    "\n"
    "Exit status: 0 success (connect: the peer ended cleanly after all\n"
    "its data was written out), 1 connection, protocol or runtime error\n"
    "(a certificate or key that cannot be loaded too), 2 usage error.\n"
};

typedef struct options {
    const char *command;
    const char *uri;
    int binary, echo, once;
    int deflate;            /* ws: permessage-deflate */
    const char *protocol;   /* ws: subprotocol */
    const char *cert, *key, *ca, *alpn; /* tls */
    int insecure;           /* tls client */
    const char *forward;    /* listen --forward URI2 */
    const char *fwd_cert, *fwd_key, *fwd_ca, *fwd_alpn; /* its tls */
    int fwd_insecure;
    const char *root;       /* listen: static files (web mode) */
} options;

static int verbose;

#ifdef CLI_WEB
static strata_web_site web_site;

/* wss:// and ws+h2+tls:// listeners are the browsers' front. */
static int web_uri(const strata_uri *u)
{
    const strata_layer_kind *l = u->layers;

    return u->server && l[0] == STRATA_LAYER_WS &&
           ((u->n_layers == 3 && l[1] == STRATA_LAYER_TLS) ||
            (u->n_layers == 4 && l[1] == STRATA_LAYER_H2 &&
             l[2] == STRATA_LAYER_TLS));
}
#endif

static void vsay(const char *fmt, va_list ap)
{
    fputs("strata: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* An error the user must see. */
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

/* An event shown with -v only. */
static void logv(const char *fmt, ...)
{
    va_list ap;

    if (!verbose)
        return;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

/* The text of a status; for a transport error the OS reason too, which is
 * what a user can act on ("Connection refused"). */
static const char *describe(strata_stream *s, int status)
{
    static char text[256];
    int e;

    while (s != NULL && s->lower != NULL)
        s = s->lower;
    e = status == STRATA_ERR_IO && s != NULL ? strata_socket_errno(s) : 0;
    if (e == 0)
        return strata_strerror(status);
    snprintf(text, sizeof text, "%s: %s", strata_strerror(status),
             strerror(e));
    return text;
}

static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* ---- -v: what crosses each layer ----
 * Under -v a stack is built one layer at a time with a tap (streams/
 * tap.h) above each: the tap labelled "tls" sees what tls hands up and
 * takes from above (plaintext), the one labelled "tcp" the bytes on the
 * wire, the top one what the tool itself moved. When the stack ends each
 * tap's totals are logged; under -vv each call too. A tap never goes
 * right under a layer that inspects its lower stream (a WebSocket or a
 * gRPC call on an HTTP/2 stream): those get theirs above. */

typedef struct vlog {
    char who[112];         /* "connection #3: ", "" for connect */
    strata_stream *taps[STRATA_URI_MAX_LAYERS + 2]; /* bottom first,
                              borrowed: they go with their stack */
    int n;
} vlog;

#ifdef STRATA_WITH_WS
/* The layer under a tap (the stream itself when it is none): where the
 * tool asks a layer what it knows (a close code, a gRPC status). */
static strata_stream *untap(strata_stream *s)
{
    return s != NULL && strata_tap_label(s) != NULL ? s->lower : s;
}
#endif

static const char *kind_label(strata_layer_kind k)
{
    static const char *const names[] = {
        "tcp", "unix", "lines", "len", "ws", "tls", "h2", "grpc"
    };

    return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static void tap_event(void *ud, const char *label, enum strata_tap_dir dir,
                      ssize_t r, unsigned flags)
{
    const vlog *v = ud;
    const char *what = dir == STRATA_TAP_RECV ? "recv" : "send";

    if (verbose < 2)
        return;
    if (r < 0)
        fprintf(stderr, "strata: %s%s: %s: %s\n", v->who, label, what,
                r == STRATA_EOF ? "end of stream" : strata_strerror((int)r));
    else
        fprintf(stderr, "strata: %s%s: %s %s%zd B%s\n", v->who, label, what,
                (flags & STRATA_MSG_TEXT) ? "text " : "", r,
                (flags & STRATA_MSG_END) ? " (end)" : "");
}

/* A tap labelled with k's name over s (under -v, else s itself); NULL
 * when the allocator refused (s is then freed). */
static strata_stream *tap_on(strata_stream *s, strata_layer_kind k, vlog *v)
{
    strata_stream *t;

    if (!verbose || v == NULL || s == NULL ||
        v->n == (int)(sizeof v->taps / sizeof v->taps[0]))
        return s;
    t = strata_tap_new(s, kind_label(k), tap_event, v, NULL);
    if (t != NULL)
        v->taps[v->n++] = t;
    return t;
}

static void log_count(const vlog *v, const char *label, const char *dir,
                      const strata_tap_counts *c, int messages)
{
    if (messages)
        logv("%s%s: %s %llu B in %llu messages", v->who, label, dir,
             (unsigned long long)c->bytes, (unsigned long long)c->messages);
    else
        logv("%s%s: %s %llu B in %llu calls", v->who, label, dir,
             (unsigned long long)c->bytes, (unsigned long long)c->calls);
}

/* -v: each layer's totals, the top first; then the taps are forgotten
 * (their stack is about to go). */
static void vlog_totals(vlog *v)
{
    int i;

    for (i = v->n - 1; i >= 0; i--) {
        strata_stream *t = v->taps[i];
        const char *label = strata_tap_label(t);
        int msgs = strcmp(label, "lines") == 0 || strcmp(label, "len") == 0 ||
                   strcmp(label, "ws") == 0 || strcmp(label, "grpc") == 0;
        log_count(v, label, "received", strata_tap_in(t), msgs);
        log_count(v, label, "sent", strata_tap_out(t), msgs);
    }
    v->n = 0;
}

/* u's layers first..first+count-1 over its transport. */
static void sub_uri(const strata_uri *u, int first, int count, strata_uri *sub)
{
    *sub = *u;
    memcpy(sub->layers, u->layers + first, (size_t)count * sizeof u->layers[0]);
    sub->layers[count] = u->layers[u->n_layers - 1];
    sub->n_layers = count + 1;
}

/* The layers of u from index `top` down to the one on the transport, on
 * bottom (owned, freed on failure), as strata_uri_stack builds them;
 * under -v one at a time with a tap above each (and above bottom). tls
 * right on ws is built together with it: the library leaves the ws
 * layer's write buffer out under tls, which only the pair shows it. */
static int build_layers(const strata_uri *u, int top, strata_stream *bottom,
                        vlog *v, strata_stream **out, char *err,
                        size_t errlen)
{
    strata_stream *s;
    strata_uri sub;
    int i = u->n_layers - 2;

    *out = NULL;
    if (!verbose || v == NULL) {
        sub_uri(u, top, u->n_layers - 1 - top, &sub);
        return strata_uri_stack(&sub, bottom, NULL, out, err, errlen);
    }
    if ((s = tap_on(bottom, u->layers[u->n_layers - 1], v)) == NULL)
        return STRATA_ERR_NOMEM;
    while (i >= top) {
        int first = i, r;
        if (u->layers[i] == STRATA_LAYER_WS && i - 1 >= top &&
            u->layers[i - 1] == STRATA_LAYER_TLS)
            first = i - 1;
        sub_uri(u, first, i - first + 1, &sub);
        r = strata_uri_stack(&sub, s, NULL, &s, err, errlen);
        if (r != 0)
            return r;
        if ((s = tap_on(s, u->layers[first], v)) == NULL)
            return STRATA_ERR_NOMEM;
        i = first - 1;
    }
    *out = s;
    return 0;
}

/* A client's stack: connect the transport, then build_layers. */
static int connect_stack(const strata_uri *u, vlog *v, strata_stream **out,
                         char *err, size_t errlen)
{
    strata_stream *bottom;
    strata_uri sub;
    int r;

    if (!verbose || v == NULL)
        return strata_uri_connect(u, NULL, out, err, errlen);
    sub_uri(u, u->n_layers - 1, 0, &sub);
    r = strata_uri_connect(&sub, NULL, &bottom, err, errlen);
    if (r != 0)
        return r;
    return build_layers(u, 0, bottom, v, out, err, errlen);
}

#ifdef STRATA_WITH_H2
/* The index of the h2 layer in u, or -1. */
static int h2_at(const strata_uri *u)
{
    int i;

    for (i = 0; i < u->n_layers; i++)
        if (u->layers[i] == STRATA_LAYER_H2)
            return i;
    return -1;
}

/* strata_uri_h2_stack with taps under h2 (-v); bottom NULL: connect. */
static int h2_stack(const strata_uri *u, strata_stream *bottom, vlog *v,
                    strata_h2 **h, strata_stream **below, char *err,
                    size_t errlen)
{
    strata_stream *s;
    strata_uri sub;
    int at = h2_at(u), r;

    if (!verbose || v == NULL)
        return bottom == NULL
                   ? strata_uri_h2_connect(u, NULL, h, below, err, errlen)
                   : strata_uri_h2_stack(u, bottom, NULL, h, below, err,
                                         errlen);
    if (bottom == NULL) {
        sub_uri(u, u->n_layers - 1, 0, &sub);
        if ((r = strata_uri_connect(&sub, NULL, &bottom, err, errlen)) != 0)
            return r;
    }
    if ((r = build_layers(u, at + 1, bottom, v, &s, err, errlen)) != 0)
        return r;
    /* the layers from h2 up, on what was just built as their transport */
    sub_uri(u, 0, at + 1, &sub);
    return strata_uri_h2_stack(&sub, s, NULL, h, below, err, errlen);
}
#endif

#ifdef STRATA_WITH_WS
/* Whether a stack's stream is an HTTP/2 stream (it has no descriptor of
 * its own: the connection has it). */
static int on_h2(strata_stream *s)
{
#ifdef STRATA_WITH_H2
    for (; s != NULL; s = s->lower)
        if (strata_h2_of(s) != NULL)
            return 1;
#else
    (void)s;
#endif
    return 0;
}
#endif

/* describe() with what a ws layer knows: the HTTP status of a refused
 * handshake (0: it never finished), or the close code it sent for a
 * violation. Over HTTP/2 the handshake's success is 200, not 101. */
static const char *describe_ws(strata_stream *s, int status)
{
    const char *base = describe(s, status);
#ifdef STRATA_WITH_WS
    static char text[384];
    int http = strata_ws_status(untap(s));
    unsigned sent = strata_ws_error_code(untap(s));

    if (http != 0 && http != (on_h2(s) ? 200 : 101))
        snprintf(text, sizeof text, "%s (WebSocket handshake: HTTP %d)", base,
                 http);
    else if (http == 0 && status != STRATA_ERR_IO)
        snprintf(text, sizeof text, "%s (in the WebSocket handshake)", base);
    else if (sent != 0)
        snprintf(text, sizeof text, "%s (close %u sent)", base, sent);
    else
        return base;
    return text;
#else
    (void)status;
    return base;
#endif
}


/* What the tls layer knows of a failure, or NULL when TLS did not fail:
 * wolfSSL's reason with the alert sent or received, or a cut. */
static const char *describe_tls(strata_stream *s, int status)
{
#ifdef STRATA_WITH_TLS
    static char text[256];
    strata_stream *t = strata_tls_of(s);

    if (t == NULL)
        return NULL;
    /* After the handshake a cut is the user's fact; during it, TLS's. */
    if (status == STRATA_ERR_TRUNCATED && strata_tls_version(t) != NULL)
        return "connection cut without close_notify";
    if (status != STRATA_ERR_TRUNCATED && status != STRATA_ERR_TLS &&
        strata_tls_error(t) == 0)
        return NULL;
    snprintf(text, sizeof text, "tls: %s", strata_tls_reason(t));
    return text;
#else
    (void)s;
    (void)status;
    return NULL;
#endif
}

/* With -v, what the TLS handshake agreed on. Returns 1 once it is done
 * (logged or not), so the caller asks no more. */
static int log_tls_open(strata_stream *s, const char *who)
{
#ifdef STRATA_WITH_TLS
    strata_stream *t = strata_tls_of(s);
    const char *alpn;

    if (t == NULL)
        return 1;
    if (strata_tls_version(t) == NULL)
        return 0;
    alpn = strata_tls_alpn(t);
    logv("%sTLS handshake done: %s, %s, ALPN %s, %s, peer %s", who,
         strata_tls_version(t), strata_tls_cipher(t),
         alpn != NULL ? alpn : "none",
         strata_tls_resumed(t) ? "resumed" : "new session",
         strata_tls_peer_verified(t) ? "verified" : "not verified");
#else
    (void)s;
    (void)who;
#endif
    return 1;
}

#ifdef STRATA_WITH_H2
/* What the descriptor must wait for, from a stack's STRATA_WANT_* bits. */
static unsigned poll_of(unsigned wants)
{
    return ((wants & STRATA_WANT_READ) ? STRATA_POLL_IN : 0) |
           ((wants & STRATA_WANT_WRITE) ? STRATA_POLL_OUT : 0);
}

/* HTTP/2 over TLS is agreed by ALPN "h2" (RFC 9113 3.2): once the
 * handshake is done, the refusal to say when the peer agreed on another
 * protocol or none, unless --alpn chose the list (alpn_default 0); NULL
 * when all is well or there is no TLS. */
static const char *h2_alpn_refusal(strata_stream *below, int alpn_default,
                                   const char *peer)
{
#ifdef STRATA_WITH_TLS
    static char text[128];
    strata_stream *t = strata_tls_of(below);
    const char *alpn;

    if (t == NULL || !alpn_default || strata_tls_version(t) == NULL)
        return NULL;
    alpn = strata_tls_alpn(t);
    if (alpn != NULL && strcmp(alpn, "h2") == 0)
        return NULL;
    snprintf(text, sizeof text, "tls: the %s did not agree to HTTP/2 over "
             "ALPN (%s)", peer, alpn != NULL ? alpn : "none");
    return text;
#else
    (void)below;
    (void)alpn_default;
    (void)peer;
    return NULL;
#endif
}

/* RFC 9113 7's names of HTTP/2 error codes. */
static const char *h2_code_name(unsigned long code)
{
    static const char *const names[] = {
        "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
        "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"
    };

    return code < sizeof names / sizeof names[0] ? names[code] : "unknown";
}
#endif

/* ---- a growable byte buffer: data[off..len) is pending ---- */

typedef struct bytes {
    char *data;
    size_t off, len, cap;
} bytes;

/* Make room for `room` more bytes without holding more than limit.
 * Returns 0, or -1 when the limit or the allocator refuses. */
static int reserve(bytes *b, size_t room, size_t limit)
{
    size_t want, cap;
    char *p;

    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= room)
        return 0;
    want = b->len + room;
    if (want > limit)
        return -1;
    cap = b->cap > 0 ? b->cap : CHUNK;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap < limit ? cap : limit);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap < limit ? cap : limit;
    return 0;
}

static size_t pending(const bytes *b)
{
    return b->len - b->off;
}

/* ---- connect ---- */

typedef struct client {
    strata_loop *loop;
    strata_stream *s;
    strata_watch *sw;      /* the stack */
    strata_watch *inw;     /* stdin, NULL after its EOF */
    const char *uri;
    int messages;          /* the top layer keeps message boundaries */
    int lines_in;          /* stdin lines are the messages */
    int binary;
    int lines_top;         /* the top layer is lines: no '\n' in a message */
    int ws;                /* the top layer is ws: the peer's close ends it */
    int ws_open;           /* the handshake was seen done (for -v) */
    int tls;               /* the stack has tls: its close_notify ends it */
    int tls_open;          /* the TLS handshake was seen done (for -v) */
    unsigned long close_timer; /* ws: the deadline for the peer's close */
    int rx_activity;       /* bytes arrived since that timer was set */
    bytes out;             /* stdin bytes not yet sent */
    size_t unit_sent;      /* bytes of the current unit already sent */
    int dirty;             /* sent since the last flush */
    int stdin_eof, shut, peer_eof, connected;
    int status;
    /* HTTP/2: s is a stream of a connection, which has the descriptor */
    const strata_uri *u;   /* to open the stream */
    strata_h2 *h;          /* the connection, or NULL */
    strata_stream *below;  /* the layers under it (tls, socket): h's */
    strata_stream *opening; /* the stream being opened (ws) */
    strata_stream *stream; /* the h2 stream: s, or under the WebSocket */
    strata_watch *hw;      /* the connection's descriptor */
    int h2_request;        /* h2://: s is a POST whose response is read */
    int grpc;              /* grpc+h2://: s is a call, its end a status */
    int alpn_default;      /* no --alpn: "h2" must have been agreed */
    int head_logged;       /* the response head was logged (-v) */
    int ending;            /* GOAWAY going out: the conversation is over */
    vlog v;                /* -v: the taps between the layers */
    char rbuf[CHUNK];
} client;

/* What is under the top stream for descriptions (TLS, the socket): over
 * HTTP/2 the stream's chain ends at the stream, the connection has them. */
static strata_stream *stack_of(const client *c)
{
    return c->h != NULL ? c->below : c->s;
}

/* The next unit to send: its length, the bytes to drop once it went (a
 * line's newline too) and its flags. Returns 0 when none is ready. */
static int next_unit(const client *c, size_t *len, size_t *skip,
                     unsigned *flags)
{
    size_t n = pending(&c->out);
    const char *p, *nl;

    if (n == 0)
        return 0;
    p = c->out.data + c->out.off;
    *flags = c->messages ? STRATA_MSG_END : 0;
    if (c->ws && !c->binary)
        *flags |= STRATA_MSG_TEXT; /* a line is text; raw chunks binary */
    *len = *skip = n;
    if (!c->lines_in)
        return 1;
    nl = memchr(p, '\n', n);
    if (nl == NULL)
        return c->stdin_eof; /* a last line without newline still counts */
    *len = (size_t)(nl - p);
    *skip = *len + 1;
    return 1;
}

static int send_units(client *c)
{
    size_t len, skip;
    unsigned flags;

    while (next_unit(c, &len, &skip, &flags)) {
        ssize_t r = strata_send(c->s, c->out.data + c->out.off + c->unit_sent,
                                len - c->unit_sent, flags);
        if (r < 0)
            return (int)r;
        if (r == 0 && len > c->unit_sent)
            return STRATA_ERR_STATE; /* no progress: never spin on it */
        c->dirty = 1;
        c->unit_sent += (size_t)r;
        if (c->unit_sent == len) {
            c->out.off += skip;
            c->unit_sent = 0;
        }
    }
    return 0;
}

static void close_wait_cb(strata_loop *loop, void *ud);

static void arm_close_timer(client *c)
{
    c->rx_activity = 0;
    c->close_timer = strata_loop_timer(c->loop, CLOSE_WAIT_MS, close_wait_cb,
                                       c);
}

/* A peer that still sends is alive: wait on. One that went silent without
 * answering our close gets no more of our time. */
static void close_wait_cb(strata_loop *loop, void *ud)
{
    client *c = ud;

    c->close_timer = 0;
    if (c->peer_eof)
        return;
    if (c->rx_activity) {
        arm_close_timer(c);
        return;
    }
    say("no close from the peer within %d s of ours", CLOSE_WAIT_MS / 1000);
    c->status = EXIT_RUNTIME;
    strata_loop_stop(loop);
}

/* With -v, what the TLS handshake agreed on, once: as soon as it is done,
 * before a close in the same callback could hide it. Under HTTP/2 the
 * handshake must have agreed on "h2" (unless --alpn chose otherwise). */
static void note_tls_open(client *c)
{
    if (c->tls_open)
        return;
    c->tls_open = log_tls_open(stack_of(c), "");
#ifdef STRATA_WITH_H2
    if (c->tls_open && c->h != NULL) {
        const char *why = h2_alpn_refusal(c->below, c->alpn_default,
                                          "server");
        if (why != NULL) {
            say("%s", why);
            c->status = EXIT_RUNTIME;
            strata_loop_stop(c->loop);
        }
    }
#endif
}

/* Send what stdin gave; at its end flush and half-close (ws: close 1000). */
static int pump_out(client *c)
{
    int r = send_units(c);

    note_tls_open(c);
    if (r != 0)
        return r;
    if (c->dirty) {
        r = strata_flush(c->s);
        if (r != 0)
            return r;
        c->dirty = 0;
    }
    if (c->stdin_eof && !c->shut) {
        r = strata_shutdown(c->s);
        if (r != 0)
            return r;
        c->shut = 1;
        if (c->h2_request) {
            logv("end of input: request body ended (END_STREAM)");
        } else if (c->ws) {
            logv("end of input: close (1000) sent");
            arm_close_timer(c);
        } else if (c->tls) {
            logv("end of input: close_notify sent");
            arm_close_timer(c);
        } else {
            logv("end of input sent (half-close)");
        }
    }
    return 0;
}

/* A connect in progress answers NEED_WRITE; data, NEED_READ or EOF mean it
 * completed. */
static void note_connected(client *c, ssize_t r)
{
    if (!c->connected && (r >= 0 || r == STRATA_NEED_READ || r == STRATA_EOF)) {
        c->connected = 1;
        logv("connected");
    }
}

static void log_h2_head(client *c);

/* With -v, what the WebSocket handshake agreed on, once. */
static void log_ws_open(client *c)
{
#ifdef STRATA_WITH_WS
    const char *proto;

    if (!c->ws || c->ws_open ||
        strata_ws_status(untap(c->s)) != (c->h != NULL ? 200 : 101))
        return;
    c->ws_open = 1;
    proto = strata_ws_protocol(untap(c->s));
    logv("WebSocket open (subprotocol %s, deflate %s)",
         proto != NULL ? proto : "none", strata_ws_deflate(untap(c->s)) ? "on" : "off");
#else
    (void)c;
#endif
}

/* Copy what the stack received to stdout. Returns 0 when the budget ran
 * out, else the status that stopped it (NEED code, EOF, error). */
static int pump_in(client *c)
{
    int i;

    for (i = 0; i < STEPS; i++) {
        unsigned flags = 0;
        ssize_t r = strata_recv(c->s, c->rbuf, sizeof c->rbuf, &flags);
        note_connected(c, r);
        note_tls_open(c);
        log_ws_open(c);
        log_h2_head(c);
        if (r < 0)
            return (int)r;
        c->rx_activity = 1;
        fwrite(c->rbuf, 1, (size_t)r, stdout);
        if (c->messages && !c->binary && (flags & STRATA_MSG_END))
            fputc('\n', stdout);
    }
    return 0;
}

static int want_stdin(const client *c)
{
    if (c->stdin_eof)
        return 0;
    if (!c->lines_in || pending(&c->out) == 0)
        return pending(&c->out) == 0;
    /* Lines: read on while only a partial line waits. */
    return memchr(c->out.data + c->out.off, '\n', pending(&c->out)) == NULL;
}

static const char *describe_h2(client *c, int r);

/* A gRPC call's status other than OK, said with its name and message:
 * 1 when that was the failure. */
static int grpc_failed(client *c, int r)
{
#ifdef STRATA_WITH_GRPC
    strata_stream *call = untap(c->s);
    const char *m;
    int st;

    if (r != STRATA_ERR_GRPC || !c->grpc || call == NULL)
        return 0;
    st = strata_grpc_status(call);
    m = strata_grpc_message(call);
    say("gRPC status %s (%d)%s%s", strata_grpc_status_name(st), st,
        m != NULL && m[0] != '\0' ? ": " : "", m != NULL ? m : "");
    return 1;
#else
    (void)c;
    (void)r;
    return 0;
#endif
}

static void client_fail(client *c, const char *what, int r)
{
    const char *tls = describe_tls(stack_of(c), r);

    if (grpc_failed(c, r))
        ; /* said */
    else if (!c->connected && r == STRATA_ERR_IO) /* refused, unreachable */
        say("cannot connect to %s: %s", c->uri, describe(stack_of(c), r));
    else if (tls != NULL)
        say("%s", tls); /* says more than "send" or "receive" would */
    else if (c->h != NULL)
        say("%s: %s", what, describe_h2(c, r));
    else
        say("%s: %s", what, c->ws ? describe_ws(c->s, r) : describe(c->s, r));
    if (r == STRATA_ERR_ARG && c->binary && c->lines_top)
        say("a 'lines' message cannot hold a newline; without --binary each "
            "line of stdin is one message");
    if (r == STRATA_ERR_ARG && c->ws && !c->binary)
        say("a WebSocket text message must be valid UTF-8; --binary sends "
            "stdin as binary messages");
    c->status = EXIT_RUNTIME;
    strata_loop_stop(c->loop);
}

/* Receive side of the stack callback; returns 0 or a fatal status. */
static int client_recv(client *c)
{
    int r = pump_in(c);

    if (fflush(stdout) != 0) {
        say("writing stdout: %s", strerror(errno));
        c->status = EXIT_RUNTIME;
        strata_loop_stop(c->loop);
        return 0;
    }
    if (r == 0)
        strata_watch_wake(c->sw); /* budget spent: more may be waiting */
    if (r == STRATA_EOF) {
        c->peer_eof = 1;
        /* Stop asking for input: EOF keeps the socket readable. */
        strata_watch_set_interest(c->sw, 0);
        logv(c->h2_request ? "response complete (END_STREAM)"
             : c->grpc ? "call ended (trailers)"
             : c->ws ? "peer's close received"
             : c->tls ? "peer's close_notify received"
                      : "peer closed its direction");
        return 0;
    }
    return is_need(r) ? 0 : r;
}

/* The peer's close code decides the exit status: 1000 (normal) and 1005
 * (no code) are success, anything else is reported. */
static void judge_close(client *c)
{
#ifdef STRATA_WITH_WS
    unsigned code = strata_ws_close_code(untap(c->s));
    const char *why = strata_ws_close_reason(untap(c->s));

    if (why == NULL)
        why = "";
    if (code == STRATA_WS_NORMAL || code == STRATA_WS_NO_STATUS) {
        logv("closed by peer: %u%s%s", code, why[0] != '\0' ? " " : "", why);
        return;
    }
    if (code == STRATA_WS_ABNORMAL)
        say("connection ended without a close frame (1006)");
    else
        say("closed by peer: %u%s%s", code, why[0] != '\0' ? " " : "", why);
    c->status = EXIT_RUNTIME;
#else
    (void)c;
#endif
}

static strata_stream *bottom_of(strata_stream *s)
{
    while (s->lower != NULL)
        s = s->lower;
    return s;
}

static void drain_done(strata_loop *loop, void *ud)
{
    (void)ud;
    strata_loop_stop(loop);
}

static void drain_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    char sink[4096];
    ssize_t r;

    (void)events;
    (void)ud;
    while ((r = strata_read(strata_watch_stream(w), sink, sizeof sink)) > 0)
        ;
    if (!is_need(r))
        strata_loop_stop(loop);
}

/* The conversation is over: exit. Over TLS, first read (and drop) what is
 * left on the socket until the peer closes it or DRAIN_MS pass: the peer's
 * close_notify behind a WebSocket close, a WebSocket close behind TLS's.
 * Closing with them unread would reset the connection under the peer's
 * own close, which it may then report as a failure. */
static void drain_then_stop(client *c, strata_stream *sock)
{
    if (c->sw != NULL)
        strata_watch_remove(c->sw);
    if (c->inw != NULL)
        strata_watch_remove(c->inw);
    c->inw = NULL;
    c->sw = strata_loop_watch(c->loop, sock, STRATA_POLL_IN, drain_cb, c);
    if (c->sw == NULL ||
        strata_loop_timer(c->loop, DRAIN_MS, drain_done, c) == 0)
        strata_loop_stop(c->loop);
}

static void h2_end(client *c);

static void client_done(client *c)
{
    if (c->h != NULL) {
        h2_end(c); /* GOAWAY first, then as below */
        return;
    }
    if (!c->tls || c->status != 0) {
        strata_loop_stop(c->loop);
        return;
    }
    drain_then_stop(c, bottom_of(c->s));
}

/* ws: the peer's close arrived. Answer it if ours has not gone (the layer
 * echoes the peer's code) and end; stdin not yet sent is dropped, as the
 * peer will take no more. */
static void ws_finish(client *c)
{
    if (!c->shut) {
        int r = strata_shutdown(c->s);
        if (is_need(r))
            return; /* called again once the socket allows */
        if (r != 0)
            logv("answering the close: %s", describe_ws(c->s, r));
        c->shut = 1;
    }
    if (c->close_timer != 0)
        strata_loop_cancel(c->loop, c->close_timer);
    c->close_timer = 0;
    judge_close(c);
    client_done(c);
}

static void h2_finish(client *c);
static void h2_want(client *c);

/* The peer ended the conversation (its WebSocket close, or the whole
 * response of an h2:// request): 1 when that was handled. */
static int peer_done(client *c)
{
    if (!c->peer_eof)
        return 0;
    if (c->ws)
        ws_finish(c);
    else if (c->h2_request || c->grpc)
        h2_finish(c);
    else
        return 0;
    return 1;
}

/* Whether a send's failure ends the client (after saying why). Not when
 * an h2:// response already came whole: a server may answer before it
 * read the whole request and then stop it (RFC 9113 8.1). */
static int send_failed(client *c, int r)
{
    if (r == 0 || is_need(r))
        return 0;
    if ((c->h2_request || c->grpc) &&
        (strata_poll(c->s, STRATA_POLL_IN) & STRATA_POLL_HUP))
        return 0;
    client_fail(c, "send", r);
    return 1;
}

static void client_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    client *c = ud;
    int r;

    (void)loop;
    (void)w;
    (void)events;
    if (peer_done(c) || send_failed(c, pump_out(c)))
        return;
    r = c->peer_eof ? 0 : client_recv(c);
    if (r != 0) {
        client_fail(c, "receive", r);
        return;
    }
    if (peer_done(c))
        return;
    /* A recv may finish a handshake that a send above waited for (the
     * WebSocket 101, TLS's last flight, read by pump_in): send again now,
     * or the loop would wait on that send's stale NEED code for input
     * that the peer, waiting for our data, never sends. */
    if (send_failed(c, pump_out(c)))
        return;
    if (c->tls && c->peer_eof && c->close_timer != 0) {
        strata_loop_cancel(c->loop, c->close_timer);
        c->close_timer = 0;
    }
    if (c->inw != NULL)
        strata_watch_set_interest(c->inw, want_stdin(c) ? STRATA_POLL_IN : 0);
    if (c->shut && c->peer_eof && c->status == 0)
        client_done(c);
    else
        h2_want(c); /* our sends may have left output to the connection */
}

static void stdin_cb(strata_loop *loop, strata_watch *w, unsigned events,
                     void *ud)
{
    client *c = ud;
    ssize_t n;

    (void)loop;
    /* The first run comes unasked; a read then could block on a tty. */
    if (!(events & (STRATA_POLL_IN | STRATA_POLL_HUP | STRATA_POLL_ERR)) ||
        !want_stdin(c))
        return;
    if (reserve(&c->out, CHUNK, MAX_MSG + CHUNK) != 0) {
        say("a line of stdin is over the %u-byte message limit", MAX_MSG);
        c->status = EXIT_RUNTIME;
        strata_loop_stop(c->loop);
        return;
    }
    n = read(STDIN_FILENO, c->out.data + c->out.len, CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) {
        say("reading stdin: %s", strerror(errno));
        c->status = EXIT_RUNTIME;
        strata_loop_stop(c->loop);
        return;
    }
    c->out.len += (size_t)n;
    if (n == 0) {
        c->stdin_eof = 1;
        strata_watch_remove(w);
        c->inw = NULL;
    } else if (!want_stdin(c)) {
        strata_watch_set_interest(w, 0); /* until the stack took it */
    }
    strata_watch_wake(c->sw);
}

#ifdef STRATA_WITH_H2
/* ---- connect over HTTP/2 ----
 * The stream has no descriptor of its own (strata_fd is -1). A second
 * watch, on the connection's descriptor, drives the connection, wakes the
 * stream's watch when something came, and waits for what the connection
 * wants; the stream's callback updates that too (h2_want), since its
 * sends may leave output behind. Before the stream exists (a WebSocket
 * waits for the server's SETTINGS, then for its answer) the connection's
 * callback opens it. At the end: GOAWAY, and over TLS close_notify. */

static void h2_want(client *c)
{
    if (c->hw != NULL)
        strata_watch_set_interest(c->hw, poll_of(strata_h2_wants(c->h)));
}

/* The h2 stream of a stack (the top, or under the WebSocket). */
static strata_stream *h2_stream_of(strata_stream *s)
{
    while (s != NULL && strata_h2_of(s) == NULL)
        s = s->lower;
    return s;
}

/* describe() of a failure on an HTTP/2 stream, with the HTTP/2 error
 * code: the peer's RST_STREAM, or the GOAWAY sent or received. */
static const char *describe_h2(client *c, int r)
{
    static char text[512];
    const char *base = c->ws && c->s != NULL ? describe_ws(c->s, r)
                                             : describe(c->below, r);
    uint32_t conn = strata_h2_error_code(c->h);
    long rst = c->stream != NULL ? strata_h2_reset_code(c->stream) : -1;

    if (r == STRATA_ERR_CLOSED && rst >= 0)
        snprintf(text, sizeof text, "%s (HTTP/2 RST_STREAM from the server: "
                 "%s, 0x%lx)", base, h2_code_name((unsigned long)rst), rst);
    else if (conn != 0)
        snprintf(text, sizeof text, "%s (HTTP/2 connection error %s, 0x%x)",
                 base, h2_code_name(conn), (unsigned)conn);
    else
        return base;
    return text;
}

/* With -v, the response head once it came, and its trailers at the end. */
static void log_h2_head(client *c)
{
    const strata_h2_header *hd;
    size_t n, i;

    if (!verbose || c->stream == NULL || c->head_logged ||
        strata_h2_status(c->stream) == 0)
        return;
    c->head_logged = 1;
    hd = strata_h2_head(c->stream, &n);
    logv("response on stream %d:", (int)strata_h2_stream_id(c->stream));
    for (i = 0; i < n; i++)
        logv("  %s: %s", hd[i].name, hd[i].value);
}

static void log_h2_trailers(client *c)
{
    const strata_h2_header *t;
    size_t n, i;

    if (!verbose || (t = strata_h2_trailers(c->stream, &n)) == NULL)
        return;
    for (i = 0; i < n; i++)
        logv("  trailer %s: %s", t[i].name, t[i].value);
}

/* h2://: the response ended. A 2xx status is success, anything else is
 * reported (exit 1). What stdin still had is not sent: the server has
 * answered. */
static void h2_finish(client *c)
{
    int status = strata_h2_status(c->stream);

    log_h2_trailers(c);
    if (c->grpc)
        logv("gRPC status OK");
    if (status < 200 || status > 299) {
        say("the server answered HTTP status %d", status);
        c->status = EXIT_RUNTIME;
    }
    client_done(c);
}

/* The conversation is over: GOAWAY; then over TLS close_notify and, as
 * client_done does, read what is left until the peer closes. */
static void h2_end(client *c)
{
    int r;

    if (!c->ending) {
        c->ending = 1;
        if (c->sw != NULL)
            strata_watch_remove(c->sw);
        if (c->inw != NULL)
            strata_watch_remove(c->inw);
        c->sw = c->inw = NULL;
        if (c->close_timer != 0)
            strata_loop_cancel(c->loop, c->close_timer);
        c->close_timer = 0;
    }
    r = strata_h2_shutdown(c->h);
    if (is_need(r) && c->hw != NULL) {
        h2_want(c); /* the connection's callback calls again */
        return;
    }
    if (c->hw != NULL)
        strata_watch_remove(c->hw);
    c->hw = NULL;
    logv("GOAWAY %s", r == 0 ? "sent" : "not sent: the connection ended");
    if (!c->tls || c->status != 0 || r != 0) {
        strata_loop_stop(c->loop);
        return;
    }
    (void)strata_shutdown(c->below);
    logv("close_notify sent");
    drain_then_stop(c, bottom_of(c->below));
}

/* Open the stream the URI names. 0 once open, NEED_* to call again, or
 * a status after saying why. */
static int h2_open(client *c)
{
    char err[512];
    int r = strata_uri_h2_open(c->u, c->h, NULL, &c->opening, err,
                               sizeof err);
    const char *tls;

    if (is_need(r))
        return r;
    if (r != 0) {
        tls = describe_tls(c->below, r);
        if (!c->connected && r == STRATA_ERR_IO)
            say("cannot connect to %s: %s", c->uri, describe(c->below, r));
        else
            say("%s", tls != NULL ? tls : err);
        c->status = EXIT_RUNTIME;
        strata_loop_stop(c->loop);
        return r;
    }
    c->s = tap_on(c->opening, c->u->layers[0], &c->v);
    c->opening = NULL;
    if (c->s == NULL) {
        client_fail(c, "open", STRATA_ERR_NOMEM);
        return STRATA_ERR_NOMEM;
    }
    c->stream = h2_stream_of(c->s);
    c->sw = strata_loop_watch(c->loop, c->s, STRATA_POLL_IN, client_cb, c);
    if (c->sw == NULL) {
        client_fail(c, "open", STRATA_ERR_NOMEM);
        return STRATA_ERR_NOMEM;
    }
    if (c->h2_request)
        logv("request: POST %s on stream %d", c->u->path[0] ? c->u->path
             : "/", (int)strata_h2_stream_id(c->stream));
    log_h2_head(c);
    log_ws_open(c);
    return 0;
}

static void h2_conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                       void *ud)
{
    client *c = ud;
    int r = 0, i;

    (void)loop;
    (void)events;
    if (c->ending) {
        h2_end(c);
        return;
    }
    /* Open (again) after each drive: the drive may have brought the
     * SETTINGS or the answer an opening WebSocket waits for. */
    for (i = 0; i < STEPS; i++) {
        if (c->s == NULL && (r = h2_open(c)) != 0 && !is_need(r))
            return;
        r = strata_h2_drive(c->h);
        note_connected(c, r);
        note_tls_open(c);
        if (r != 0)
            break;
    }
    while (strata_h2_ready(c->h) != NULL)
        ; /* one stream: its watch is woken below */
    if (c->sw != NULL)
        strata_watch_wake(c->sw);
    if (r == 0) {
        strata_watch_wake(w); /* budget spent: more may be waiting */
    } else if (!is_need(r)) {
        /* Over or failed: the stream's own calls tell how. */
        strata_watch_remove(w);
        c->hw = NULL;
        if (c->s == NULL)
            client_fail(c, "connection", r);
        return;
    }
    h2_want(c);
}

static int h2_connect(client *c, const strata_uri *u, const options *o)
{
    char err[512];

    c->h2_request = u->layers[0] == STRATA_LAYER_H2;
    c->grpc = u->layers[0] == STRATA_LAYER_GRPC;
    c->alpn_default = o->alpn == NULL;
    if (h2_stack(u, NULL, &c->v, &c->h, &c->below, err, sizeof err) != 0) {
        say("%s", err);
        return EXIT_RUNTIME;
    }
    return 0;
}

static strata_watch *h2_watch(client *c)
{
    c->hw = strata_loop_watch_fd(c->loop, strata_h2_fd(c->h), STRATA_POLL_IN,
                                 h2_conn_cb, c);
    return c->hw;
}
#else
static void h2_want(client *c)
{
    (void)c;
}

static const char *describe_h2(client *c, int r)
{
    return describe(c->s, r);
}

static void log_h2_head(client *c)
{
    (void)c;
}

static void h2_finish(client *c)
{
    client_done(c);
}

static void h2_end(client *c)
{
    strata_loop_stop(c->loop);
}

static int h2_connect(client *c, const strata_uri *u, const options *o)
{
    (void)c;
    (void)u;
    (void)o;
    say("layer 'h2' is not built in this version");
    return EXIT_RUNTIME;
}

static strata_watch *h2_watch(client *c)
{
    (void)c;
    return NULL;
}
#endif

static int run_client(client *c)
{
    if (c->h != NULL)
        h2_watch(c); /* the stream's watch comes once it is open */
    else
        c->sw = strata_loop_watch(c->loop, c->s, STRATA_POLL_IN, client_cb,
                                  c);
    c->inw = strata_loop_watch_fd(c->loop, STDIN_FILENO, STRATA_POLL_IN,
                                  stdin_cb, c);
    if ((c->sw == NULL && c->hw == NULL) || c->inw == NULL) {
        say("out of memory");
        return EXIT_RUNTIME;
    }
    if (strata_loop_run(c->loop) != 0 && c->status == 0) {
        say("event loop: %s", strerror(errno));
        return EXIT_RUNTIME;
    }
    return c->status;
}

static int do_connect(const strata_uri *u, const options *o)
{
    char err[512];
    client *c = calloc(1, sizeof *c);
    int status;

    if (c == NULL) {
        say("out of memory");
        return EXIT_RUNTIME;
    }
    c->uri = o->uri;
    c->messages = strata_uri_has_messages(u);
    c->binary = o->binary;
    c->lines_top = u->layers[0] == STRATA_LAYER_LINES;
    c->ws = u->layers[0] == STRATA_LAYER_WS;
    c->tls = strata_uri_has_layer(u, STRATA_LAYER_TLS);
    c->tls_open = !c->tls;
    c->lines_in = c->messages && !o->binary;
    c->u = u;
    logv("connecting to %s", o->uri);
    if (strata_uri_has_layer(u, STRATA_LAYER_H2)) {
        if (h2_connect(c, u, o) != 0) {
            free(c);
            return EXIT_RUNTIME;
        }
    } else if (connect_stack(u, &c->v, &c->s, err, sizeof err) != 0) {
        say("%s", err);
        free(c);
        return EXIT_RUNTIME;
    }
    c->loop = strata_loop_new(NULL);
    if (c->loop == NULL) {
        say("out of memory");
        status = EXIT_RUNTIME;
    } else {
        status = run_client(c);
        strata_loop_free(c->loop);
    }
    vlog_totals(&c->v);
    if (status == 0)
        logv("done");
    strata_free(c->s);
#ifdef STRATA_WITH_H2
    strata_free(c->opening);
    strata_h2_free(c->h); /* goes with its last stream: now */
#endif
    free(c->out.data);
    free(c);
    return status;
}

/* ---- listen --echo ---- */

typedef struct conn conn;

/* The server's lists of live connections: pushed at the head, unlinked in
 * O(1) through the link that points at each (10,000 connections closing
 * must not walk the list each). */
#define LIST_PUSH(head, x)                                   \
    do {                                                     \
        (x)->next = (head);                                  \
        if ((head) != NULL)                                  \
            (head)->pprev = &(x)->next;                      \
        (x)->pprev = &(head);                                \
        (head) = (x);                                        \
    } while (0)
#define LIST_UNLINK(x)                                       \
    do {                                                     \
        *(x)->pprev = (x)->next;                             \
        if ((x)->next != NULL)                               \
            (x)->next->pprev = (x)->pprev;                   \
    } while (0)
typedef struct bridge bridge;
typedef struct upconn upconn;

typedef struct server {
    strata_loop *loop;
    const strata_uri *uri;
    const strata_uri *fwd; /* --forward: the upstream's URI, or NULL */
    const char *fwd_text;
    int lfd;
    strata_watch *lw;
    unsigned long accept_timer; /* accepting paused after a failure */
    int once;
    unsigned long accepted;
    conn *conns;           /* live connections, freed at exit */
    struct h2conn *h2conns; /* live HTTP/2 connections, too */
    bridge *bridges;       /* live bridges (--forward) */
    upconn *upconns;       /* live HTTP/2 upstream connections */
    int exiting;           /* freeing all: bridges are not taken down */
    int status;
#ifdef CLI_WEB
    int web;               /* wss:// or ws+h2+tls://: the browsers' front */
    int web_h2;            /* its HTTP/2 plain requests go to the site
                              (with --forward and no --root they are
                              bridged, as every stream) */
    strata_web_site site;
#endif
} server;

struct conn {
    server *srv;
    conn *next, **pprev;
    strata_stream *s;
    strata_watch *w;
    unsigned long id;
    int messages;
    int ws;                /* pieces of a message go back as they come */
    int grpc;              /* a gRPC call: it ends with a status */
    int tls;               /* the stack has tls */
    int tls_open;          /* the TLS handshake was seen done (for -v) */
    bytes msg;             /* the message (or chunk) being echoed */
    size_t sent;
    unsigned send_flags;   /* of msg: MSG_END, and MSG_TEXT for ws */
    int ready;             /* msg is whole (ws: a piece): send it back */
    int dirty, eof;
    int lingering;         /* failed: close frame out, waiting for EOF */
    unsigned long linger_timer;
    char name[96];         /* "connection #3" or "connection #3 upstream" */
    vlog v;                /* -v: the taps between its layers */
    bridge *br;            /* --forward: the bridge it is a side of */
    int upstream;          /* the bridge's new client stack */
#ifdef CLI_WEB
    strata_web_front *front; /* web mode: until it says h2 or WebSocket */
    strata_stream *web_tls;  /* its TLS stream (the front's) */
#endif
};

/* After a WebSocket error the layer has queued its close frame, after a
 * TLS failure the alert went; freeing at once could turn a peer's unread
 * bytes into a reset that loses them. So the connection lingers: push the
 * close out, end our direction, and read (discarding) until the peer's EOF
 * or this long. A TLS connection lingers after a clean end too: the bytes
 * of the layers below TLS's close_notify (a WebSocket close under it) may
 * still be unread. */
#define LINGER_MS 2000

static void bridge_drop(bridge *br, const void *gone);

static void conn_free(conn *c)
{
    if (c->br != NULL && !c->srv->exiting)
        bridge_drop(c->br, c);
    LIST_UNLINK(c);
    if (c->w != NULL)
        strata_watch_remove(c->w);
    if (c->linger_timer != 0)
        strata_loop_cancel(c->srv->loop, c->linger_timer);
    vlog_totals(&c->v);
    strata_free(c->s);
#ifdef CLI_WEB
    strata_web_front_free(c->front);
#endif
    free(c->msg.data);
    free(c);
}

/* Name a connection for the log: "connection #3" (upstream: the new
 * client stack of a bridge). */
static void conn_name(conn *c, const char *name, int upstream)
{
    c->upstream = upstream;
    snprintf(c->name, sizeof c->name, "%.60s%s", name,
             upstream ? " upstream" : "");
    snprintf(c->v.who, sizeof c->v.who, "%.80s: ", c->name);
}

/* Send back the rest of the held message. 1: progress, or a status. */
static int echo_send(conn *c)
{
    ssize_t r = strata_send(c->s, c->msg.data + c->sent, c->msg.len - c->sent,
                            c->send_flags);

    if (r < 0)
        return (int)r;
    if (r == 0 && c->msg.len > c->sent)
        return STRATA_ERR_STATE;
    c->dirty = 1;
    c->sent += (size_t)r;
    if (c->sent == c->msg.len) {
        c->ready = 0;
        c->sent = c->msg.len = 0;
    }
    return 1;
}

/* Receive more of a message (or a chunk of bytes). 1: progress, or a
 * status; before waiting for input, push out what layers hold. A ws
 * message streams: each piece goes back as a fragment with the message's
 * flags, so a 16 MiB message costs no 16 MiB buffer. */
static int echo_recv(conn *c)
{
    unsigned flags = 0;
    ssize_t r;

    if (reserve(&c->msg, c->messages && !c->ws ? 1 : CHUNK, MAX_MSG) != 0)
        return STRATA_ERR_TOO_BIG;
    r = strata_recv(c->s, c->msg.data + c->msg.len, c->msg.cap - c->msg.len,
                    &flags);
    if (r == STRATA_NEED_READ && c->dirty) {
        int f = strata_flush(c->s);
        if (f != 0)
            return f;
        c->dirty = 0;
    }
    if (r == STRATA_EOF) {
        c->eof = 1;
        return 1;
    }
    if (r < 0)
        return (int)r;
    c->msg.len += (size_t)r;
    c->ready = !c->messages || (flags & STRATA_MSG_END) || (c->ws && r > 0);
    if (c->ws)
        c->send_flags = flags & (STRATA_MSG_END | STRATA_MSG_TEXT);
    else
        c->send_flags = c->messages ? STRATA_MSG_END : 0;
    return 1;
}

/* ws: answer the peer's close with its own code and reason (a plain
 * shutdown echoes the code only); 1005 (no code) may not be sent, so it
 * gets the plain close, and a stream that ended without a close (1006)
 * has nobody left to answer. */
static int ws_answer_close(strata_stream *s)
{
#ifdef STRATA_WITH_WS
    unsigned code;
    int r;

    s = untap(s);
    code = strata_ws_close_code(s);
    if (code == STRATA_WS_ABNORMAL)
        return 0;
    r = strata_ws_close(s, code, strata_ws_close_reason(s));
    if (r != STRATA_ERR_ARG)
        return r;
#endif
    return strata_shutdown(s);
}

/* One step of echoing: 1 progress, 0 finished cleanly, or a status. */
static int echo_step(conn *c)
{
    int r;

    if (c->ready)
        return echo_send(c);
    if (!c->eof)
        return echo_recv(c);
    /* everything echoed: end our direction (a gRPC call: status OK) */
    r = c->grpc ? 0 : c->ws ? ws_answer_close(c->s) : strata_shutdown(c->s);
#ifdef STRATA_WITH_GRPC
    if (c->grpc)
        r = strata_grpc_finish(untap(c->s), 0, NULL, NULL, 0);
#endif
    if (r == STRATA_ERR_IO && c->tls) {
        /* Our close_notify met a socket the peer closed right after its
         * own (as most TLS clients do): the end was the peer's, clean. */
        logv("connection #%lu: the peer left before our close_notify",
             c->id);
        return 0;
    }
    return r == 0 ? 0 : r;
}

static void log_ws_close(conn *c)
{
#ifdef STRATA_WITH_WS
    const char *why = strata_ws_close_reason(untap(c->s));

    if (why == NULL)
        why = "";
    logv("%s closed (peer's close: %u%s%s)", c->name,
         strata_ws_close_code(untap(c->s)), why[0] != '\0' ? " " : "", why);
#else
    (void)c;
#endif
}

/* The connection is over: free it, and with --once end the server. */
static void conn_done(conn *c)
{
    server *sv = c->srv;

    int upstream = c->upstream;

    conn_free(c);
    if (sv->once && !upstream)
        strata_loop_stop(sv->loop);
}

static void linger_done(strata_loop *loop, void *ud)
{
    conn *c = ud;

    (void)loop;
    c->linger_timer = 0;
    conn_done(c);
}

/* One lingering step: 1 to wait for more, 0 when the peer is done. */
static int linger_step(conn *c)
{
    strata_stream *sock = bottom_of(c->s);
    char sink[4096];
    ssize_t r;

    if (strata_flush(c->s) == STRATA_NEED_WRITE)
        return 1;
    (void)strata_shutdown(sock); /* the peer reads our close, then EOF */
    while ((r = strata_read(sock, sink, sizeof sink)) > 0)
        ;
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud);

/* From now on the socket is watched, not the failed stack above it (whose
 * poll reports its error as ready and would spin). */
static void linger_start(conn *c)
{
    strata_loop *loop = c->srv->loop;

    c->lingering = 1;
    strata_watch_remove(c->w);
    c->w = strata_loop_watch(loop, bottom_of(c->s), STRATA_POLL_IN, conn_cb,
                             c);
    c->linger_timer = strata_loop_timer(loop, LINGER_MS, linger_done, c);
    if (c->w == NULL || c->linger_timer == 0)
        conn_done(c);
}

static const char *conn_describe(conn *c, int r)
{
    const char *tls = describe_tls(c->s, r);

    if (tls != NULL)
        return tls;
    return c->ws ? describe_ws(c->s, r) : describe(c->s, r);
}

/* The connection is over: 0 cleanly, else the status that ended it, said
 * by `why` (NULL: by the status's own description). */
static void conn_end(conn *c, int r, const char *why)
{
    server *sv = c->srv;

    if (r == 0 && c->ws)
        log_ws_close(c);
    else if (r == 0)
        logv("%s closed", c->name);
    else {
        if (why == NULL)
            why = conn_describe(c, r);
        logv("%s: %s", c->name, why);
        if (sv->once && !c->upstream)
            say("%s: %s", c->upstream ? "upstream" : "connection", why);
    }
    if (sv->once && !c->upstream)
        sv->status = r == 0 ? 0 : EXIT_RUNTIME;
    if (c->tls || (r != 0 && c->ws))
        linger_start(c);
    else
        conn_done(c);
}

static void log_conn_tls_open(conn *c)
{
    c->tls_open = log_tls_open(c->s, c->v.who);
}

static void bridge_pump(bridge *br);
#ifdef CLI_WEB
static void web_step(conn *c);
#endif

static void conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                    void *ud)
{
    conn *c = ud;
    int r = 1, i;

    (void)loop;
    (void)events;
    if (c->lingering) {
        if (linger_step(c) == 0)
            conn_done(c);
        return;
    }
#ifdef CLI_WEB
    if (c->front != NULL) {
        web_step(c);
        return;
    }
#endif
    if (!c->tls_open)
        log_conn_tls_open(c);
    if (c->br != NULL) {
        bridge_pump(c->br); /* which may free c */
        return;
    }
    for (i = 0; i < STEPS && r == 1; i++) {
        r = echo_step(c);
        if (!c->tls_open) /* now: a later step may close the connection */
            log_conn_tls_open(c);
    }
    if (r == 1)
        strata_watch_wake(w); /* budget spent, not blocked: go on soon */
    else if (!is_need(r))
        conn_end(c, r, NULL);
}

/* ---- listen --forward: bridges ----
 * Each accepted stack (or HTTP/2 stream) is one side of a bridge, a new
 * client stack to the --forward URI the other. Two flows carry what one
 * side receives to the other:
 *  - messages stay messages when both sides keep them (text or binary
 *    kept between two WebSockets, binary otherwise); a side without them
 *    gets the bytes (a line with its LF); bytes into lines are cut at
 *    each LF, into other message layers one message per read;
 *  - back-pressure: a flow holds one buffer (64 KiB, or one whole message
 *    for len and grpc, which send its length first: up to 16 MiB) and
 *    reads only when that is free, so a slow side stops the other;
 *  - a side's end (EOF, a WebSocket close, close_notify, END_STREAM) ends
 *    our direction to the other once what came before it went (a
 *    WebSocket's close code passes to a WebSocket); the bridge is over
 *    when both directions ended;
 *  - a side that fails ends the other with its protocol's error: a
 *    WebSocket close 1014 (bad gateway) toward the client or 1001 toward
 *    the upstream, HTTP/2 502 (a reset once answered), a TLS or TCP cut.
 * A side is a plain stack with its own watch (conn), an accepted HTTP/2
 * stream whose connection's watch drives it (h2unit), or a stream on an
 * HTTP/2 client connection of its own (upconn); side_ops hide which. */

typedef struct side_ops {
    /* wait for what the side needs next (STRATA_POLL_* it wants) */
    void (*rearm)(void *owner, unsigned interest);
    void (*wake)(void *owner);
    /* make it ready for sends (an HTTP/2 stream answered): 1 when done,
     * 0 not yet, or an error; NULL: ready from the start */
    int (*open)(void *owner);
    /* the bridge let go of it: 0 both directions ended, 1 the other side
     * failed (end with the protocol's error), < 0 it failed itself */
    void (*end)(void *owner, int how);
} side_ops;

typedef struct side {
    const side_ops *ops;
    void *owner;
    strata_stream *s;      /* the top of its stack; NULL until open */
    const char *name;      /* "client" or "upstream" */
    strata_layer_kind top; /* its top layer */
    int server;            /* the accepted side */
    int messages, ws, lines, whole;
    int closes;            /* its peer's end ends both directions (ws, grpc
                              clients: the layer answers a close itself) */
    int tls;               /* a tls layer right under its top ones */
    int connected;         /* an I/O call came back: it is reachable */
    int ready;             /* sends may go */
    int eof, shut, closed, dirty;
} side;

typedef struct flow {
    side *from, *to;
    bytes buf;             /* received from `from`, not yet sent to `to` */
    unsigned flags;        /* send flags of what buf holds */
    size_t sent;           /* of the unit being sent */
    int have;              /* buf holds what to send */
    int fragment;          /* a message to `to` was begun, not ended */
} flow;

struct bridge {
    server *srv;
    bridge *next;
    char name[80];         /* the accepted side's: "connection #3" */
    side a, b;             /* the accepted side, the upstream */
    flow ab, ba;
};

static void side_caps(side *d, strata_layer_kind top, int server)
{
    d->top = top;
    d->server = server;
    d->name = server ? "client" : "upstream";
    d->ws = top == STRATA_LAYER_WS;
    d->lines = top == STRATA_LAYER_LINES;
    d->whole = top == STRATA_LAYER_LEN || top == STRATA_LAYER_GRPC;
    d->messages = d->ws || d->lines || d->whole;
    d->closes = !server && (d->ws || top == STRATA_LAYER_GRPC);
}

/* Send what the flow holds. 1 when all went, or a status. */
static int flow_send(flow *f)
{
    side *t = f->to;

    if (!t->ready)
        return 0;
    while (!t->closed) {
        size_t n = pending(&f->buf), len = n, skip = n;
        const char *p = f->buf.data + f->buf.off, *nl = NULL;
        unsigned flags = f->flags;
        ssize_t r;
        if (!f->from->messages && t->lines) { /* bytes into lines */
            nl = n > 0 ? memchr(p, '\n', n) : NULL;
            if (nl == NULL && n == 0)
                break;
            flags = nl != NULL ? STRATA_MSG_END : 0;
            len = nl != NULL ? (size_t)(nl - p) : n;
            skip = nl != NULL ? len + 1 : n;
        }
        r = strata_send(t->s, p + f->sent, len - f->sent, flags);
        if (r == STRATA_ERR_CLOSED && t->closes) {
            t->closed = 1; /* its peer closed: the rest is dropped */
            break;
        }
        if (r < 0)
            return (int)r;
        if (r == 0 && len > f->sent)
            return STRATA_ERR_STATE; /* no progress: never spin on it */
        t->dirty = 1;
        f->sent += (size_t)r;
        if (f->sent < len)
            continue;
        f->buf.off += skip;
        f->sent = 0;
        f->fragment = t->messages && !(flags & STRATA_MSG_END);
        if (nl == NULL)
            break;
    }
    f->have = 0; /* sent, or dropped: `to` takes no more */
    f->buf.off = f->buf.len = 0;
    return 1;
}

/* The send flags of what `from` gave with recv flags rf. */
static unsigned flow_flags(const flow *f, unsigned rf)
{
    if (!f->to->messages)
        return 0;
    if (!f->from->messages)
        return STRATA_MSG_END; /* a read is a message (lines: cut at LF) */
    if (f->from->ws && f->to->ws)
        return rf & (STRATA_MSG_END | STRATA_MSG_TEXT);
    return rf & STRATA_MSG_END;
}

/* Receive into the flow's buffer. 1 progress, or a status. */
static int flow_recv(flow *f)
{
    side *d = f->from;
    int whole = f->to->whole && d->messages; /* gather the message */
    unsigned rf = 0;
    ssize_t r;

    if (d->s == NULL)
        return 0; /* not open yet */
    if (reserve(&f->buf, whole ? CHUNK : CHUNK + 1, MAX_MSG + 1) != 0)
        return STRATA_ERR_TOO_BIG;
    r = strata_recv(d->s, f->buf.data + f->buf.len,
                    whole ? f->buf.cap - f->buf.len - 1 : CHUNK, &rf);
    if (r >= 0 || r == STRATA_NEED_READ || r == STRATA_EOF)
        d->connected = 1;
    if (r == STRATA_EOF) {
        d->eof = 1;
        if (d->closes)
            d->closed = 1;
        return 1;
    }
    if (r < 0)
        return (int)r;
    f->buf.len += (size_t)r;
    if (d->lines && !f->to->messages && (rf & STRATA_MSG_END))
        f->buf.data[f->buf.len++] = '\n'; /* a line's bytes end with LF */
    f->flags = flow_flags(f, rf);
    f->have = whole ? (rf & STRATA_MSG_END) != 0
                    : pending(&f->buf) > 0 ||
                          (f->to->messages && (rf & STRATA_MSG_END));
    return 1;
}

/* End our direction to `to`: the WebSocket close with the code the other
 * WebSocket closed with, a gRPC call finished OK, else a shutdown. */
static int side_shutdown(side *t, side *from)
{
#ifdef STRATA_WITH_WS
    strata_stream *s = untap(t->s);

    if (t->ws && from->ws) {
        unsigned code = strata_ws_close_code(untap(from->s));
        if (code >= 1000 && code < 5000 && code != STRATA_WS_NO_STATUS &&
            code != STRATA_WS_ABNORMAL && code != 1015 &&
            strata_ws_close(s, code, strata_ws_close_reason(untap(from->s)))
                == 0)
            return 0;
    }
    if (t->ws)
        return ws_answer_close(s);
#else
    (void)from;
#endif
#ifdef STRATA_WITH_GRPC
    if (t->top == STRATA_LAYER_GRPC && t->server)
        return strata_grpc_finish(untap(t->s), 0, NULL, NULL, 0);
#endif
    return strata_shutdown(t->s);
}

/* `from` ended (or `to` takes no more): end our direction to `to`. */
static int flow_end(flow *f)
{
    side *t = f->to;
    int r;

    if (!t->ready)
        return 0;
    if (!t->closed && f->fragment) { /* a last line without its LF */
        ssize_t n = strata_send(t->s, "", 0, STRATA_MSG_END);
        if (n < 0)
            return (int)n;
        f->fragment = 0;
    }
    r = t->closed ? 0 : side_shutdown(t, f->from);
    if (r == STRATA_ERR_IO && t->tls)
        r = 0; /* our close_notify met the socket the peer closed after its
                  own: the end was the peer's, and clean */
    if (r != 0)
        return r;
    t->shut = 1;
    t->dirty = 0;
    return 1;
}

/* One step of a flow: 1 progress, 0 nothing to do now, or a status;
 * *blame is the side a failure is whose. */
static int flow_step(flow *f, side **blame)
{
    int r;

    if (f->to->shut)
        return 0;
    if (f->have) {
        *blame = f->to;
        return flow_send(f);
    }
    if (f->from->eof || f->to->closed) {
        *blame = f->to;
        return flow_end(f);
    }
    *blame = f->from;
    r = flow_recv(f);
    if (r == 1 && f->have && (r = flow_send(f)) < 0)
        *blame = f->to;
    return r;
}

static int fatal(int r)
{
    return r < 0 && !is_need(r);
}

/* What a side waits for: input when its flow may read, output when
 * something waits to go to it. */
static unsigned side_interest(const bridge *br, const side *d)
{
    const flow *out = d == &br->a ? &br->ab : &br->ba;
    const flow *in = d == &br->a ? &br->ba : &br->ab;
    unsigned i = 0;

    if (!out->have && !d->eof && !out->to->shut && !out->to->closed)
        i |= STRATA_POLL_IN;
    if ((in->have && d->ready) || d->dirty)
        i |= STRATA_POLL_OUT;
    return i;
}

static void bridge_unlink(bridge *br)
{
    bridge **pp = &br->srv->bridges;

    while (*pp != br)
        pp = &(*pp)->next;
    *pp = br->next;
    free(br->ab.buf.data);
    free(br->ba.buf.data);
    free(br);
}

/* The bridge is over: each side's owner takes back its own end (the
 * owners forget the bridge there, before it goes). */
static void bridge_end(bridge *br, side *failed, int r)
{
    side a = br->a, b = br->b;

    if (failed == NULL) {
        a.ops->end(a.owner, 0);
        b.ops->end(b.owner, 0);
    } else if (failed == &br->a) {
        a.ops->end(a.owner, r);
        b.ops->end(b.owner, 1);
    } else {
        b.ops->end(b.owner, r);
        a.ops->end(a.owner, 1);
    }
    bridge_unlink(br);
}

/* Push what is written out; 0, or the failure's status (*blame set). */
static int bridge_flush(bridge *br, side **blame)
{
    side *d[2];
    int i, r;

    d[0] = &br->a;
    d[1] = &br->b;
    for (i = 0; i < 2; i++) {
        if (!d[i]->dirty || d[i]->s == NULL)
            continue;
        r = strata_flush(d[i]->s);
        if (r == 0)
            d[i]->dirty = 0;
        else if (fatal(r)) {
            *blame = d[i];
            return r;
        }
    }
    return 0;
}

/* Open the side that waits for the other to be reachable (an HTTP/2
 * stream is answered only once the upstream is). */
static int bridge_open(bridge *br, side **blame)
{
    side *d[2];
    int i, r;

    d[0] = &br->a;
    d[1] = &br->b;
    for (i = 0; i < 2; i++) {
        side *o = d[1 - i];
        if (d[i]->ready || d[i]->ops->open == NULL || !o->connected)
            continue;
        r = d[i]->ops->open(d[i]->owner);
        if (fatal(r)) {
            *blame = d[i];
            return r;
        }
        d[i]->ready = r == 1;
    }
    return 0;
}

/* Move what can move both ways, then wait for what the sides need. */
static void bridge_pump(bridge *br)
{
    side *blame = NULL;
    int i, r1 = 0, r2 = 0, r;

    for (i = 0; i < STEPS; i++) {
        if ((r = bridge_open(br, &blame)) != 0)
            break;
        if (fatal(r = r1 = flow_step(&br->ab, &blame)))
            break;
        if (fatal(r = r2 = flow_step(&br->ba, &blame)))
            break;
        r = 0;
        if (r1 != 1 && r2 != 1)
            break;
    }
    if (r == 0)
        r = bridge_flush(br, &blame);
    if (fatal(r)) {
        bridge_end(br, blame, r);
        return;
    }
    if (br->a.shut && br->b.shut && !br->a.dirty && !br->b.dirty) {
        bridge_end(br, NULL, 0);
        return;
    }
    if (i == STEPS) { /* budget spent, not blocked: go on soon */
        br->a.ops->wake(br->a.owner);
        br->b.ops->wake(br->b.owner);
    }
    br->a.ops->rearm(br->a.owner, side_interest(br, &br->a));
    br->b.ops->rearm(br->b.owner, side_interest(br, &br->b));
}

static bridge *bridge_new(server *sv, const char *name)
{
    bridge *br = calloc(1, sizeof *br);

    if (br == NULL)
        return NULL;
    br->srv = sv;
    snprintf(br->name, sizeof br->name, "%.60s", name);
    br->ab.from = br->ba.to = &br->a;
    br->ab.to = br->ba.from = &br->b;
    br->next = sv->bridges;
    sv->bridges = br;
    return br;
}

/* ---- a plain stack as a side ---- */

static void conn_rearm(void *owner, unsigned interest)
{
    conn *c = owner;

    strata_watch_set_interest(c->w, interest);
}

static void conn_wake(void *owner)
{
    strata_watch_wake(((conn *)owner)->w);
}

static void conn_side_end(void *owner, int how)
{
    conn *c = owner;

    c->br = NULL;
    if (how <= 0) {
        conn_end(c, how, NULL);
        return;
    }
#ifdef STRATA_WITH_WS
    /* 1014: bad gateway (RFC 6455's registry); 1001: going away */
    if (c->ws)
        (void)strata_ws_close(untap(c->s), c->upstream ? 1001 : 1014,
                              c->upstream ? "the client went away"
                                          : "the upstream failed");
#endif
    conn_end(c, STRATA_ERR_CLOSED, c->upstream
             ? "closed: the client's side failed"
             : "closed: the upstream failed");
}

static const side_ops conn_side_ops = {
    conn_rearm, conn_wake, NULL, conn_side_end
};

/* Make c side d of its bridge. */
static void conn_side(conn *c, bridge *br, side *d, const strata_uri *u)
{
    c->br = br;
    d->ops = &conn_side_ops;
    d->owner = c;
    d->s = c->s;
    side_caps(d, u->layers[0], !c->upstream);
    d->tls = c->tls;
    d->ready = 1; /* sends wait in the layers (a connect, a handshake) */
}

/* A side's owner is going away on its own (its connection ended under
 * it): the other side ends as after a failure. */
static void bridge_drop(bridge *br, const void *gone)
{
    side other = br->a.owner == gone ? br->b : br->a;

    bridge_unlink(br);
    other.ops->end(other.owner, 1);
}

static int upconn_start(bridge *br);

/* The upstream as a plain stack (side b). 0, or a status after saying
 * why. */
static int upstream_conn(bridge *br)
{
    server *sv = br->srv;
    char err[512];
    conn *c = calloc(1, sizeof *c);
    int r;

    if (c == NULL)
        return STRATA_ERR_NOMEM;
    c->srv = sv;
    conn_name(c, br->name, 1);
    r = connect_stack(sv->fwd, &c->v, &c->s, err, sizeof err);
    if (r != 0) {
        logv("%s: %s", c->name, err);
        free(c);
        return r;
    }
    c->w = strata_loop_watch(sv->loop, c->s, STRATA_POLL_IN, conn_cb, c);
    if (c->w == NULL) {
        strata_free(c->s);
        free(c);
        return STRATA_ERR_NOMEM;
    }
    c->messages = strata_uri_has_messages(sv->fwd);
    c->ws = sv->fwd->layers[0] == STRATA_LAYER_WS;
    c->tls = strata_uri_has_layer(sv->fwd, STRATA_LAYER_TLS);
    c->tls_open = !c->tls;
    LIST_PUSH(sv->conns, c);
    conn_side(c, br, &br->b, sv->fwd);
    return 0;
}

/* A bridge from an accepted side (the caller makes it side a) to a new
 * client stack of the --forward URI; NULL when that could not even be
 * started (said under -v). */
static bridge *bridge_start(server *sv, const char *name)
{
    bridge *br = bridge_new(sv, name);
    int r;

    if (br == NULL)
        return NULL;
    logv("%s: forwarding to %s", name, sv->fwd_text);
    r = strata_uri_has_layer(sv->fwd, STRATA_LAYER_H2) ? upconn_start(br)
                                                       : upstream_conn(br);
    if (r != 0) {
        bridge_unlink(br);
        return NULL;
    }
    return br;
}

#ifdef STRATA_WITH_H2
/* ---- listen --echo over HTTP/2 ----
 * One connection carries many streams, each echoed on its own by the
 * machinery above (one CHUNK buffer per stream: bounded memory): a
 * request's body comes back as the response body after :status 200 (a
 * GET gets an empty 200); a CONNECT tunnel's bytes come back after 200;
 * an extended CONNECT with :protocol websocket becomes a WebSocket whose
 * messages come back (strata_ws_h2_accept refuses other protocols: 501).
 * A stream has no descriptor: the connection's watch drives it, takes the
 * new streams and runs those it names ready, corked, so that the answers
 * to what one read brought share writes. A failed stream is reset and
 * logged; a failed connection takes its streams with it. */

/* H2_SERVED: the listen URI has layers above h2 (a tunnel's, a gRPC
 * call, tls+ws+h2): strata_uri_h2_serve answers the stream as they say. */
enum { H2_REQUEST, H2_TUNNEL, H2_WEBSOCKET, H2_SERVED, H2_WEB };

/* Whether the streams of u's server are answered by strata_uri_h2_serve:
 * h2:// and ws+h2:// serve every kind of stream themselves (above). */
static int h2_served(const strata_uri *u)
{
    int at = h2_at(u);

    return at > 1 || (at == 1 && u->layers[0] != STRATA_LAYER_WS);
}


typedef struct h2conn h2conn;

typedef struct h2unit {
    conn e;                /* the echo: e.s is the stream or its WebSocket */
    bridge *br;            /* --forward: its bridge */
    h2conn *hc;
    struct h2unit *next;
    strata_stream *stream; /* the h2 stream (the WebSocket owns it) */
    int kind;
    int answered;          /* 200 sent, or the WebSocket accepted */
    int again;             /* its budget ran out: run it again soon */
    int closing;           /* ws: both closes went, END_STREAM awaited */
#ifdef CLI_WEB
    strata_web_reply *reply; /* H2_WEB: a plain request's answer */
    size_t drained;          /* H2_WEB: request body bytes thrown away */
#endif
} h2unit;

struct h2conn {
    server *srv;
    h2conn *next, **pprev;
    strata_h2 *h;
    strata_stream *below;  /* tls or the socket, the connection's */
    strata_watch *w;
    unsigned long id;
    h2unit *units;
    int tls_open;
    vlog v;                /* -v: the taps under h2 */
};

static void h2_unit_free(h2unit *u)
{
    h2unit **pp = &u->hc->units;

    if (u->br != NULL && !u->hc->srv->exiting)
        bridge_drop(u->br, u);
    while (*pp != u)
        pp = &(*pp)->next;
    *pp = u->next;
    vlog_totals(&u->e.v);
    strata_free(u->e.s); /* resets the stream if it is still open */
#ifdef CLI_WEB
    strata_web_reply_free(u->reply);
#endif
    free(u->e.msg.data);
    free(u);
}

/* The WebSocket on an extended CONNECT stream, with the ws options: 1
 * once accepted, NEED_*, or 0 when refused (the refusal, 400 or 501, is
 * the answer). */
static int h2_accept_ws(h2unit *u)
{
#ifdef STRATA_WITH_WS
    const strata_uri *uri = u->hc->srv->uri;
    const char *protocols[2] = { uri->ws.protocol, NULL };
    strata_stream *ws;
    strata_ws_opts o;
    int r;

    memset(&o, 0, sizeof o);
    o.protocols = uri->ws.protocol != NULL ? protocols : NULL;
    o.deflate.enable = uri->ws.deflate;
    o.half_close = 1; /* the echo answers a close, after what came before */
    r = strata_ws_h2_accept(u->stream, &o, NULL, &ws);
    if (r == 0) {
        u->e.s = tap_on(ws, STRATA_LAYER_WS, &u->e.v);
        if (u->e.s == NULL)
            return STRATA_ERR_NOMEM;
        u->e.ws = u->e.messages = 1;
        return 1;
    }
    /* STRATA_ERR_PROTO is also a connection that failed: not a refusal */
    if (r != STRATA_ERR_PROTO ||
        (strata_poll(u->stream, 0) & STRATA_POLL_ERR))
        return r;
#else
    if (strata_h2_respond(u->stream, 501, NULL, 0, STRATA_H2_END_STREAM) !=
        0)
        return STRATA_ERR_PROTO;
#endif
    logv("connection #%lu: stream %d: refused (:protocol %s)", u->hc->id,
         (int)strata_h2_stream_id(u->stream),
         strata_h2_get(u->stream, ":protocol"));
    /* its request side we will not read: stopped without an error */
    strata_h2_reset(u->stream, STRATA_H2_NO_ERROR);
    return 0;
}

/* The stream answered as the URI's layers above h2 say: 1, NEED_*, or
 * 0 when it was refused (answered, freed, logged). */
static int h2_serve(h2unit *u)
{
    const strata_uri *uri = u->hc->srv->uri;
    char err[512];
    strata_stream *top;
    int i, r = strata_uri_h2_serve(uri, u->stream, NULL, &top, err, sizeof err);

    if (is_need(r))
        return r;
    if (r != 0) {
        logv("%s: refused: %s", u->e.name, err);
        u->e.s = u->stream = NULL; /* answered and freed */
        return 0;
    }
    u->e.s = tap_on(top, uri->layers[0], &u->e.v);
    if (u->e.s == NULL)
        return STRATA_ERR_NOMEM;
    u->e.messages = strata_uri_has_messages(uri);
    u->e.ws = uri->layers[0] == STRATA_LAYER_WS;
    u->e.grpc = uri->layers[0] == STRATA_LAYER_GRPC;
    for (i = 0; i < h2_at(uri); i++)
        u->e.tls |= uri->layers[i] == STRATA_LAYER_TLS; /* in the stream */
    u->e.tls_open = !u->e.tls;
    return 1;
}

#ifdef CLI_WEB
#define WEB_DRAIN_MAX (1024 * 1024)

/* A request body nobody reads (a POST refused with 405) is read to its
 * end, so the stream closes cleanly: a reset would end the client's
 * request with an error, and could drop reply frames still queued. A
 * body past WEB_DRAIN_MAX is stopped with RST_STREAM NO_ERROR (RFC 9113
 * 8.1: the response is complete). 0 once the stream ended, or NEED_*. */
static int h2_web_drain(h2unit *u)
{
    char sink[4096];
    unsigned flags;
    ssize_t n;

    while ((n = strata_recv(u->stream, sink, sizeof sink, &flags)) > 0) {
        u->drained += (size_t)n;
        if (u->drained > WEB_DRAIN_MAX) {
            strata_h2_reset(u->stream, STRATA_H2_NO_ERROR);
            return 0;
        }
    }
    return n == STRATA_EOF || n == 0 ? 0 : (int)n;
}

/* A plain request in web mode: a file, the default page or an error, as
 * the site says. 0 once it all went, NEED_* or an error. */
static int h2_web_step(h2unit *u)
{
    const char *method = strata_h2_get(u->stream, ":method");
    const char *path = strata_h2_get(u->stream, ":path");
    int r;

    if (u->reply == NULL) {
        u->reply = strata_web_reply_new(&u->hc->srv->site,
                                        method != NULL ? method : "",
                                        path != NULL ? path : "", NULL);
        if (u->reply == NULL)
            return STRATA_ERR_NOMEM;
    }
    if (!u->answered) {
        if ((r = strata_web_reply_h2(u->reply, u->stream)) != 0)
            return r;
        logv("%s: %s %s: %d", u->e.name, method != NULL ? method : "?",
             path != NULL ? path : "?", strata_web_reply_status(u->reply));
        u->answered = 1;
    }
    return h2_web_drain(u);
}
#endif

/* One step of a stream: 1 progress, 0 finished, or a status. */
static int h2_unit_step(h2unit *u)
{
    int r;

#ifdef CLI_WEB
    if (u->kind == H2_WEB)
        return h2_web_step(u);
#endif
    if (!u->answered) {
        if (u->kind == H2_SERVED)
            r = h2_serve(u);
        else if (u->kind == H2_WEBSOCKET)
            r = h2_accept_ws(u);
        else if ((r = strata_h2_respond(u->stream, 200, NULL, 0, 0)) == 0)
            r = 1;
        u->answered = r == 1;
        return r;
    }
    if (u->closing) /* freeing it now would reset it (CANCEL) */
        return strata_poll(u->stream, STRATA_POLL_IN) &
                       (STRATA_POLL_HUP | STRATA_POLL_ERR)
                   ? 0 : STRATA_NEED_READ;
    r = echo_step(&u->e);
    if (r == 0 && (u->kind == H2_WEBSOCKET || u->kind == H2_SERVED)) {
        u->closing = 1;
        return 1;
    }
    return r;
}

/* A stream's turn: its steps until it waits, ends or spent its budget. */
static void h2_unit_turn(h2unit *u)
{
    int r = 1, i;

    u->again = 0;
    if (!u->e.tls_open && u->e.s != NULL && u->answered)
        log_conn_tls_open(&u->e); /* TLS inside the stream */
    if (u->br != NULL) {
        bridge_pump(u->br); /* which may free u */
        return;
    }
    for (i = 0; i < STEPS && r == 1; i++)
        r = h2_unit_step(u);
    if (r == 1)
        u->again = 1;
    if (r == 1 || is_need(r))
        return;
    if (r != 0)
        logv("connection #%lu: stream %d: %s", u->hc->id,
             (int)strata_h2_stream_id(u->stream),
             u->e.ws ? describe_ws(u->e.s, r) : strata_strerror(r));
    h2_unit_free(u);
}

/* ---- an accepted HTTP/2 stream as a side (--forward) ----
 * It has no descriptor: its connection's watch drives it and runs its
 * turn, which pumps the bridge. It is answered (200, or the WebSocket
 * accepted) once the upstream is reachable, so that a failed upstream
 * can still be answered 502. */

static void unit_rearm(void *owner, unsigned interest)
{
    h2unit *u = owner;

    (void)interest; /* the connection's watch waits for all its streams */
    strata_watch_set_interest(u->hc->w, poll_of(strata_h2_wants(u->hc->h)));
}

static void unit_wake(void *owner)
{
    h2unit *u = owner;

    u->again = 1;
    strata_watch_wake(u->hc->w);
}

static int unit_open(void *owner)
{
    h2unit *u = owner;
    int r;

    if (u->kind == H2_SERVED) {
        r = h2_serve(u);
        if (r == 0)
            return STRATA_ERR_PROTO; /* refused: answered already */
    } else if (u->kind == H2_WEBSOCKET) {
        r = h2_accept_ws(u);
        if (r == 0)
            return STRATA_ERR_PROTO; /* refused: answered already */
    } else if ((r = strata_h2_respond(u->stream, 200, NULL, 0, 0)) == 0) {
        r = 1;
    }
    if (r == 1) {
        u->answered = 1;
        u->br->a.s = u->e.s;
    }
    return r;
}

static void unit_end(void *owner, int how)
{
    h2unit *u = owner;

    u->br = NULL;
    if (how == 0) {
        logv("%s closed", u->e.name);
        if (u->kind == H2_WEBSOCKET || u->kind == H2_SERVED) {
            /* END_STREAM awaited, then freed */
            u->closing = 1;
            unit_wake(u);
            return;
        }
#ifdef STRATA_WITH_GRPC
    } else if (how == 1 && u->e.grpc && u->answered) {
        logv("%s: finished UNAVAILABLE: the upstream failed", u->e.name);
        (void)strata_grpc_finish(untap(u->e.s), 14, "the upstream failed",
                                 NULL, 0); /* 14: UNAVAILABLE */
#endif
    } else if (how == 1 && !u->answered) {
        logv("%s: answered 502: the upstream failed", u->e.name);
        (void)strata_h2_respond(u->stream, 502, NULL, 0,
                                STRATA_H2_END_STREAM);
    } else if (how == 1) {
        logv("%s: reset: the upstream failed", u->e.name);
        (void)strata_h2_reset(u->stream, u->kind == H2_TUNNEL
                                             ? STRATA_H2_CONNECT_ERROR
                                             : STRATA_H2_INTERNAL_ERROR);
    } else {
        logv("%s: %s", u->e.name, u->e.ws ? describe_ws(u->e.s, how)
                                          : strata_strerror(how));
    }
    h2_unit_free(u);
}

static const side_ops unit_side_ops = {
    unit_rearm, unit_wake, unit_open, unit_end
};

/* The stream's bridge; 0, or -1 after answering 502 and freeing u. */
static int unit_forward(h2unit *u)
{
    bridge *br = bridge_start(u->hc->srv, u->e.name);

    if (br == NULL) {
        unit_end(u, 1);
        return -1;
    }
    u->br = br;
    br->a.ops = &unit_side_ops;
    br->a.owner = u;
    br->a.s = u->kind == H2_REQUEST || u->kind == H2_TUNNEL ? u->e.s : NULL;
    side_caps(&br->a, u->kind == H2_SERVED      ? u->hc->srv->uri->layers[0]
                      : u->kind == H2_WEBSOCKET ? STRATA_LAYER_WS
                                                : STRATA_LAYER_H2, 1);
    return 0;
}

/* ---- an HTTP/2 upstream (--forward h2://, ws+h2://...) ----
 * Each bridge has a client connection of its own with one stream, opened
 * as the URI says; its watch drives the connection and pumps the bridge.
 * When the bridge lets go: GOAWAY (and close_notify), then freed, or
 * after LINGER_MS whatever the peer does. */

struct upconn {
    server *srv;
    upconn *next, **pprev;
    bridge *br;            /* NULL once the bridge let go */
    char name[96];
    vlog v;
    strata_h2 *h;
    strata_stream *below;  /* the layers under h2 (the connection's) */
    strata_stream *opening, *s;
    strata_watch *w;
    int tls_open;
    int closing;
    unsigned long timer;
    char why[512];         /* why it could not open, or "" */
};

static void upconn_free(upconn *up)
{
    if (up->br != NULL && !up->srv->exiting)
        bridge_drop(up->br, up);
    LIST_UNLINK(up);
    if (up->w != NULL)
        strata_watch_remove(up->w);
    if (up->timer != 0)
        strata_loop_cancel(up->srv->loop, up->timer);
    vlog_totals(&up->v);
    strata_free(up->s);
    strata_free(up->opening);
    strata_h2_free(up->h);
    free(up);
}

static void upconn_expire(strata_loop *loop, void *ud)
{
    upconn *up = ud;

    (void)loop;
    up->timer = 0;
    upconn_free(up);
}

static const char *upconn_describe(upconn *up, int r)
{
    static char text[600];
    const char *tls = describe_tls(up->below, r);
    uint32_t code = strata_h2_error_code(up->h);
    long rst = up->s != NULL ? strata_h2_reset_code(h2_stream_of(up->s))
                             : -1;

    if (up->why[0] != '\0')
        return up->why;
    if (tls != NULL)
        return tls;
    if (r == STRATA_ERR_CLOSED && rst >= 0)
        snprintf(text, sizeof text, "%s (HTTP/2 RST_STREAM %s, 0x%lx)",
                 describe(up->below, r), h2_code_name((unsigned long)rst),
                 rst);
    else if (code != 0)
        snprintf(text, sizeof text, "%s (HTTP/2 error %s, 0x%x)",
                 describe(up->below, r), h2_code_name(code), (unsigned)code);
    else if (up->s != NULL && up->srv->fwd->layers[0] == STRATA_LAYER_WS)
        return describe_ws(up->s, r);
    else
        return describe(up->below, r);
    return text;
}

static void upconn_end(void *owner, int how)
{
    upconn *up = owner;

    up->br = NULL;
    if (how < 0)
        logv("%s: %s", up->name, upconn_describe(up, how));
    else
        logv("%s closed%s", up->name,
             how == 1 ? ": the client's side failed" : "");
    vlog_totals(&up->v);
    strata_free(up->s); /* resets the stream if it is still open */
    strata_free(up->opening);
    up->s = up->opening = NULL;
    up->closing = 1;
    up->timer = strata_loop_timer(up->srv->loop, LINGER_MS, upconn_expire,
                                  up);
    strata_watch_wake(up->w);
}

static void upconn_rearm(void *owner, unsigned interest)
{
    upconn *up = owner;

    (void)interest; /* the connection waits for what its streams need */
    strata_watch_set_interest(up->w, poll_of(strata_h2_wants(up->h)));
}

static void upconn_wake(void *owner)
{
    strata_watch_wake(((upconn *)owner)->w);
}

static const side_ops upconn_side_ops = {
    upconn_rearm, upconn_wake, NULL, upconn_end
};

/* Open the stream the URI names: 0 once open, NEED_*, or an error (the
 * reason kept for the log). */
static int upconn_open(upconn *up)
{
    const strata_uri *u = up->srv->fwd;
    int r = strata_uri_h2_open(u, up->h, NULL, &up->opening, up->why,
                               sizeof up->why);
    side *d = &up->br->b;

    if (is_need(r))
        return r;
    if (r != 0)
        return r;
    up->why[0] = '\0';
    up->s = tap_on(up->opening, u->layers[0], &up->v);
    up->opening = NULL;
    if (up->s == NULL)
        return STRATA_ERR_NOMEM;
    d->s = up->s;
    d->ready = d->connected = 1;
    logv("%s: stream %d open", up->name,
         (int)strata_h2_stream_id(h2_stream_of(up->s)));
    return 0;
}

/* GOAWAY, then close_notify over TLS, then free. */
static void upconn_close(upconn *up)
{
    int r = strata_h2_shutdown(up->h);

    if (is_need(r)) {
        strata_watch_set_interest(up->w, poll_of(strata_h2_wants(up->h)));
        return;
    }
    if (r == 0 && strata_uri_has_layer(up->srv->fwd, STRATA_LAYER_TLS))
        (void)strata_shutdown(up->below);
    upconn_free(up);
}

/* With -v the TLS handshake, once; then "h2" must have been agreed. */
static int upconn_tls_open(upconn *up)
{
    const char *why;

    if (up->tls_open || !(up->tls_open = log_tls_open(up->below, up->v.who)))
        return 0;
    why = h2_alpn_refusal(up->below, up->srv->fwd->tls.alpn == NULL,
                          "upstream");
    if (why == NULL)
        return 0;
    snprintf(up->why, sizeof up->why, "%s", why);
    return STRATA_ERR_TLS;
}

static void upconn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    upconn *up = ud;
    int r = 0, i;

    (void)loop;
    (void)events;
    if (up->closing) {
        upconn_close(up);
        return;
    }
    for (i = 0; i < STEPS; i++) {
        if (up->s == NULL && (r = upconn_open(up)) != 0 && !is_need(r))
            break;
        if ((r = strata_h2_drive(up->h)) != 0)
            break;
    }
    while (strata_h2_ready(up->h) != NULL)
        ; /* one stream: the pump below runs it */
    if (!fatal(r))
        r = upconn_tls_open(up);
    if (r == 0)
        strata_watch_wake(w); /* budget spent: more may be waiting */
    if (up->s != NULL)
        bridge_pump(up->br); /* which may let go of up (up->closing) */
    if (up->br != NULL && fatal(r)) /* over: the stream's calls did not
                                       tell the bridge yet */
        bridge_end(up->br, &up->br->b, r);
    else if (up->br != NULL)
        strata_watch_set_interest(w, poll_of(strata_h2_wants(up->h)));
}

static int upconn_start(bridge *br)
{
    server *sv = br->srv;
    upconn *up = calloc(1, sizeof *up);
    int r;

    if (up == NULL)
        return STRATA_ERR_NOMEM;
    up->srv = sv;
    up->br = br;
    snprintf(up->name, sizeof up->name, "%.60s upstream", br->name);
    snprintf(up->v.who, sizeof up->v.who, "%.80s: ", up->name);
    r = h2_stack(sv->fwd, NULL, &up->v, &up->h, &up->below, up->why,
                 sizeof up->why);
    if (r != 0) {
        logv("%s: %s", up->name, up->why);
        free(up);
        return r;
    }
    up->w = strata_loop_watch_fd(sv->loop, strata_h2_fd(up->h),
                                 STRATA_POLL_IN, upconn_cb, up);
    if (up->w == NULL) {
        strata_h2_free(up->h);
        free(up);
        return STRATA_ERR_NOMEM;
    }
    up->tls_open = !strata_uri_has_layer(sv->fwd, STRATA_LAYER_TLS);
    LIST_PUSH(sv->upconns, up);
    br->b.ops = &upconn_side_ops;
    br->b.owner = up;
    side_caps(&br->b, sv->fwd->layers[0], 0);
    return 0;
}

static void h2_unit_start(h2conn *hc, strata_stream *s)
{
    const char *method = strata_h2_get(s, ":method");
    const char *protocol = strata_h2_get(s, ":protocol"), *target;
    h2unit *u = calloc(1, sizeof *u);
    char name[48];

    if (u == NULL) {
        logv("connection #%lu: out of memory: stream refused", hc->id);
        strata_h2_reset(s, STRATA_H2_REFUSED_STREAM);
        strata_free(s);
        return;
    }
    u->hc = hc;
    u->stream = u->e.s = s;
    u->e.srv = hc->srv;
    u->e.id = hc->id;
    u->e.tls_open = !h2_served(hc->srv->uri); /* set again once served */
    u->kind = h2_served(hc->srv->uri)                          ? H2_SERVED
              : method == NULL || strcmp(method, "CONNECT") != 0 ? H2_REQUEST
              : protocol != NULL                               ? H2_WEBSOCKET
                                                               : H2_TUNNEL;
#ifdef CLI_WEB
    if (hc->srv->web_h2 && u->kind == H2_REQUEST)
        u->kind = H2_WEB; /* the page and its files, not an echo */
#endif
    snprintf(name, sizeof name, "connection #%lu stream %d", hc->id,
             (int)strata_h2_stream_id(s));
    conn_name(&u->e, name, 0);
    /* a WebSocket or the layers above h2 take the stream themselves */
    if (u->kind == H2_REQUEST || u->kind == H2_TUNNEL)
        u->e.s = tap_on(s, STRATA_LAYER_H2, &u->e.v);
    if (u->e.s == NULL) {
        free(u);
        return;
    }
    u->next = hc->units;
    hc->units = u;
    strata_h2_set_user(s, u);
    target = strata_h2_get(s, ":path");
    if (target == NULL) /* a CONNECT tunnel names its host:port */
        target = strata_h2_get(s, ":authority");
    logv("connection #%lu: stream %d: %s %s%s%s", hc->id,
         (int)strata_h2_stream_id(s), method != NULL ? method : "?",
         target != NULL ? target : "?", protocol != NULL ? " :protocol " : "",
         protocol != NULL ? protocol : "");
    if (hc->srv->fwd != NULL && u->kind != H2_WEB && unit_forward(u) != 0)
        return;
    h2_unit_turn(u);
}

/* Take the new streams and run those named ready, until both lists are
 * empty (a stream's own calls read the socket too), then the ones whose
 * budget ran out. Returns whether some want to run again. */
static int h2conn_tend(h2conn *hc)
{
    strata_stream *s;
    h2unit *u, *next;
    int again = 0;

    for (;;) {
        if ((s = strata_h2_accept(hc->h)) != NULL) {
            h2_unit_start(hc, s);
            continue;
        }
        if ((s = strata_h2_ready(hc->h)) == NULL)
            break;
        if ((u = strata_h2_user(s)) != NULL)
            h2_unit_turn(u);
    }
    for (u = hc->units; u != NULL; u = next) {
        next = u->next; /* a turn frees only its own unit */
        if (u->again)
            h2_unit_turn(u);
    }
    for (u = hc->units; u != NULL; u = u->next)
        again |= u->again;
    return again;
}

/* A connection and its streams (the connection goes with the last). */
static void h2conn_free(h2conn *hc)
{
    while (hc->units != NULL)
        h2_unit_free(hc->units);
    LIST_UNLINK(hc);
    if (hc->w != NULL)
        strata_watch_remove(hc->w);
    vlog_totals(&hc->v);
    strata_h2_free(hc->h);
    free(hc);
}

/* The connection is over (EOF: cleanly). A TLS cut with no stream open
 * loses nothing (HTTP/2 marks each stream's end itself) and is how many
 * clients leave (curl): not an error. */
static void h2conn_end(h2conn *hc, int r)
{
    server *sv = hc->srv;
    const char *tls = describe_tls(hc->below, r);

    if (r == STRATA_ERR_TRUNCATED && strata_h2_open_streams(hc->h) == 0) {
        logv("connection #%lu closed (without close_notify)", hc->id);
        r = STRATA_EOF;
    } else if (r == STRATA_EOF) {
        logv("connection #%lu closed", hc->id);
        (void)strata_shutdown(hc->below); /* our close_notify, over TLS */
    } else {
        char why[512];
        uint32_t code = strata_h2_error_code(hc->h);
        snprintf(why, sizeof why, "%s", tls != NULL ? tls
                                                    : describe(hc->below, r));
        if (code != 0)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     " (HTTP/2 error %s, 0x%x)", h2_code_name(code),
                     (unsigned)code);
        logv("connection #%lu: %s", hc->id, why);
        if (sv->once)
            say("connection: %s", why);
    }
    h2conn_free(hc);
    if (sv->once) {
        sv->status = r == STRATA_EOF ? 0 : EXIT_RUNTIME;
        strata_loop_stop(sv->loop);
    }
}

/* With -v the TLS handshake, once; then "h2" must have been agreed.
 * 0, or the status that ends the connection. */
static int h2conn_tls_open(h2conn *hc)
{
    char who[48];
    const char *why;

    snprintf(who, sizeof who, "connection #%lu: ", hc->id);
    if (hc->tls_open || !(hc->tls_open = log_tls_open(hc->below, who)))
        return 0;
    why = h2_alpn_refusal(hc->below, hc->srv->uri->tls.alpn == NULL,
                          "client");
    if (why == NULL)
        return 0;
    logv("connection #%lu: %s", hc->id, why);
    if (hc->srv->once)
        say("connection: %s", why);
    return STRATA_ERR_TLS;
}

static void h2conn_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    h2conn *hc = ud;
    int r, f, i, again;

    (void)loop;
    (void)events;
    strata_h2_cork(hc->h, 1);
    for (i = 0; i < STEPS && (r = strata_h2_drive(hc->h)) == 0; i++)
        ;
    if ((f = h2conn_tls_open(hc)) != 0) {
        h2conn_end(hc, f);
        return;
    }
    /* once the connection is over its streams can only fail: it says why */
    again = r == 0 || is_need(r) ? h2conn_tend(hc) : 0;
    f = strata_h2_cork(hc->h, 0);
    if ((r == 0 || is_need(r)) && f < STRATA_EOF)
        r = f;
    if (r == 0 || again)
        strata_watch_wake(w); /* budget spent: more may be waiting */
    if (r == 0 || is_need(r))
        strata_watch_set_interest(w, poll_of(strata_h2_wants(hc->h)));
    else
        h2conn_end(hc, r);
}

/* hc with its connection made: watched and listed (freed on failure). */
static int h2conn_add(server *sv, h2conn *hc)
{
    hc->w = strata_loop_watch_fd(sv->loop, strata_h2_fd(hc->h),
                                 STRATA_POLL_IN, h2conn_cb, hc);
    if (hc->w == NULL) {
        logv("out of memory: connection dropped");
        strata_h2_free(hc->h);
        free(hc);
        return STRATA_ERR_NOMEM;
    }
    hc->srv = sv;
    hc->tls_open = !strata_uri_has_layer(sv->uri, STRATA_LAYER_TLS);
    LIST_PUSH(sv->h2conns, hc);
    return 0;
}

static void h2conn_start(server *sv, strata_stream *sock)
{
    char err[256];
    h2conn *hc = calloc(1, sizeof *hc);

    if (hc == NULL) {
        logv("out of memory: connection dropped");
        strata_free(sock);
        return;
    }
    hc->id = ++sv->accepted;
    snprintf(hc->v.who, sizeof hc->v.who, "connection #%lu: ", hc->id);
    if (h2_stack(sv->uri, sock, &hc->v, &hc->h, &hc->below, err,
                 sizeof err) != 0) {
        logv("connection refused: %s", err);
        free(hc);
        return;
    }
    if (h2conn_add(sv, hc) == 0)
        logv("connection #%lu accepted", hc->id);
}

#else
static int upconn_start(bridge *br)
{
    (void)br;
    return STRATA_ERR_UNSUPPORTED;
}
#endif

#ifdef CLI_WEB
/* ---- web mode: the browsers' front (adapters/web.h) ----
 * A connection starts as a front: TLS offering "h2" and "http/1.1" (or
 * what --alpn narrowed it to), plain HTTP/1.1 requests answered from the
 * site, until the front says which way it goes: an HTTP/2 connection
 * (an h2conn whose plain streams are H2_WEB units) or a WebSocket by
 * HTTP/1.1 Upgrade (this conn, with the ws layer over what the front
 * read). Either way the WebSocket is echoed or forwarded as any other. */

/* The conn, now a WebSocket: the ws layer answers the head the front
 * read, over the front's buffered stream (the browser's first frames may
 * be in it already). */
static void web_to_ws(conn *c)
{
    server *sv = c->srv;
    strata_stream *s = strata_web_front_take(c->front), *ws;
    strata_uri sub;
    char err[256];

    sub_uri(sv->uri, 0, 1, &sub);
    sub.ws.request = strata_web_front_request(c->front);
    logv("%s: %s %s: WebSocket (HTTP/1.1 Upgrade)", c->name,
         sub.ws.request->method, sub.ws.request->target);
    if (strata_uri_stack(&sub, s, NULL, &ws, err, sizeof err) != 0) {
        logv("%s: %s", c->name, err);
        conn_done(c);
        return;
    }
    strata_web_front_free(c->front);
    c->front = NULL;
    c->s = ws;
    c->ws = c->messages = 1;
    strata_watch_remove(c->w);
    c->w = strata_loop_watch(sv->loop, c->s, STRATA_POLL_IN, conn_cb, c);
    if (c->w == NULL) {
        logv("out of memory: connection dropped");
        conn_done(c);
        return;
    }
    if (sv->fwd != NULL) {
        bridge *br = bridge_start(sv, c->name);
        if (br == NULL)
            conn_side_end(c, 1);
        else
            conn_side(c, br, &br->a, sv->uri);
    }
}

/* The conn's TLS stream goes to a new HTTP/2 connection (with its -v
 * taps); the conn is done. */
static void web_to_h2(conn *c)
{
    server *sv = c->srv;
    strata_stream *s = strata_web_front_take(c->front);
    h2conn *hc = calloc(1, sizeof *hc);
    strata_uri sub;
    char err[256];

    if (hc == NULL) {
        strata_free(s);
        conn_done(c);
        return;
    }
    /* ws+h2 on what the front holds (a wss:// URI names no h2) */
    sub_uri(sv->uri, 0, 1, &sub);
    sub.layers[1] = STRATA_LAYER_H2;
    sub.layers[2] = sv->uri->layers[sv->uri->n_layers - 1];
    sub.n_layers = 3;
    hc->id = c->id;
    hc->v = c->v;
    c->v.n = 0; /* the taps go with the HTTP/2 connection now */
    if (strata_uri_h2_stack(&sub, s, NULL, &hc->h, &hc->below, err,
                            sizeof err) != 0) {
        logv("%s: %s", c->name, err);
        free(hc);
        conn_done(c);
        return;
    }
    conn_free(c); /* not done: it goes on as hc (--once waits for it) */
    if (h2conn_add(sv, hc) == 0)
        strata_watch_wake(hc->w); /* the client's preface may be read */
}

/* The front ended: cleanly (the client left between requests, or after a
 * reply that ends the connection), or failed (TLS). It lingers either
 * way, so the last reply is read before our close. */
static void web_end(conn *c, int r)
{
    const char *why = strata_web_front_reason(c->front);
    const char *tls;

    c->s = strata_web_front_take(c->front);
    tls = describe_tls(c->s, r);
    if (r != STRATA_EOF)
        conn_end(c, r, tls != NULL ? tls : why);
    else
        conn_end(c, 0, NULL);
}

/* Wait for what the layers recorded, else for what r says. */
static void web_wait(conn *c, int r)
{
    unsigned wants = strata_web_front_wants(c->front);

    if (wants == 0)
        wants = r == STRATA_NEED_WRITE ? STRATA_WANT_WRITE : STRATA_WANT_READ;
    strata_watch_set_interest(c->w, poll_of(wants));
}

static void web_step(conn *c)
{
    unsigned long n = strata_web_front_requests(c->front);
    int r = strata_web_front_step(c->front);

    /* the TLS line first (an HTTP/2 connection logs its own) */
    if (!c->tls_open && r != STRATA_WEB_H2 &&
        (!is_need(r) || strata_web_front_requests(c->front) != n))
        c->tls_open = log_tls_open(c->web_tls, c->v.who);
    if (strata_web_front_requests(c->front) != n)
        logv("%s: %s", c->name, strata_web_front_last(c->front));
    if (r == STRATA_WEB_WEBSOCKET)
        web_to_ws(c);
    else if (r == STRATA_WEB_H2)
        web_to_h2(c);
    else if (is_need(r))
        web_wait(c, r);
    else
        web_end(c, r);
}

static void web_start(server *sv, strata_stream *sock)
{
    char err[256], name[32];
    strata_stream *s;
    conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        logv("out of memory: connection dropped");
        strata_free(sock);
        return;
    }
    c->srv = sv;
    c->id = ++sv->accepted;
    snprintf(name, sizeof name, "connection #%lu", c->id);
    conn_name(c, name, 0);
    /* the tls layer (and the transport), with taps under -v */
    if (build_layers(sv->uri, sv->uri->n_layers - 2, sock, &c->v, &s, err,
                     sizeof err) != 0) {
        logv("connection refused: %s", err);
        free(c);
        return;
    }
    c->web_tls = s;
    c->front = strata_web_front_new(s, &sv->site, NULL);
    if (c->front != NULL)
        c->w = strata_loop_watch_fd(sv->loop, strata_web_front_fd(c->front),
                                    STRATA_POLL_IN, conn_cb, c);
    if (c->w == NULL) {
        logv("out of memory: connection dropped");
        if (c->front == NULL)
            strata_free(s);
        strata_web_front_free(c->front);
        free(c);
        return;
    }
    c->tls = 1;
    LIST_PUSH(sv->conns, c);
    logv("connection #%lu accepted", c->id);
}
#endif

static void conn_start(server *sv, strata_stream *sock)
{
    char err[256], name[32];
    conn *c;

#ifdef CLI_WEB
    if (sv->web) {
        web_start(sv, sock);
        return;
    }
#endif
#ifdef STRATA_WITH_H2
    if (strata_uri_has_layer(sv->uri, STRATA_LAYER_H2)) {
        h2conn_start(sv, sock);
        return;
    }
#endif
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        logv("out of memory: connection dropped");
        strata_free(sock);
        return;
    }
    c->srv = sv;
    c->id = ++sv->accepted;
    snprintf(name, sizeof name, "connection #%lu", c->id);
    conn_name(c, name, 0);
    if (build_layers(sv->uri, 0, sock, &c->v, &c->s, err, sizeof err) != 0) {
        logv("connection refused: %s", err);
        free(c);
        return;
    }
    c->w = strata_loop_watch(sv->loop, c->s, STRATA_POLL_IN, conn_cb, c);
    if (c->w == NULL) {
        logv("out of memory: connection dropped");
        strata_free(c->s);
        free(c);
        return;
    }
    c->messages = strata_uri_has_messages(sv->uri);
    c->ws = sv->uri->layers[0] == STRATA_LAYER_WS;
    c->tls = strata_uri_has_layer(sv->uri, STRATA_LAYER_TLS);
    c->tls_open = !c->tls;
    LIST_PUSH(sv->conns, c);
    logv("connection #%lu accepted", c->id);
    if (sv->fwd != NULL) {
        bridge *br = bridge_start(sv, c->name);
        if (br == NULL)
            conn_side_end(c, 1); /* the upstream cannot even be tried */
        else
            conn_side(c, br, &br->a, sv->uri);
    }
}

#define ACCEPT_PAUSE_MS 100

static void accept_resume(strata_loop *loop, void *ud)
{
    server *sv = ud;

    (void)loop;
    sv->accept_timer = 0;
    if (sv->lw != NULL)
        strata_watch_set_interest(sv->lw, STRATA_POLL_IN);
}

static void accept_cb(strata_loop *loop, strata_watch *w, unsigned events,
                      void *ud)
{
    server *sv = ud;

    (void)events;
    for (;;) {
        strata_stream *sock;
        int r = strata_accept(sv->lfd, NULL, &sock);
        if (r == STRATA_NEED_READ)
            return;
        if (r != 0) {
            /* Out of descriptors (EMFILE) leaves the listening socket
             * readable: stop listening for a while rather than spin. */
            logv("accept: %s: %s (pausing %d ms)", strata_strerror(r),
                 strerror(errno), ACCEPT_PAUSE_MS);
            sv->accept_timer = strata_loop_timer(loop, ACCEPT_PAUSE_MS,
                                                 accept_resume, sv);
            if (sv->accept_timer != 0)
                strata_watch_set_interest(w, 0);
            return;
        }
        conn_start(sv, sock);
        if (sv->once) {
            strata_watch_remove(w); /* serve this one, take no more */
            sv->lw = NULL;
            return;
        }
    }
}

static void log_listening(const server *sv)
{
    const strata_uri *u = sv->uri;

    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        logv("listening on unix socket %s", u->host);
    else
        logv("listening on %s port %d", u->host, strata_local_port(sv->lfd));
}

static int run_server(server *sv)
{
    sv->lw = strata_loop_watch_fd(sv->loop, sv->lfd, STRATA_POLL_IN,
                                  accept_cb, sv);
    if (sv->lw == NULL) {
        say("out of memory");
        return EXIT_RUNTIME;
    }
    log_listening(sv);
    if (strata_loop_run(sv->loop) != 0 && sv->status == 0) {
        say("event loop: %s", strerror(errno));
        return EXIT_RUNTIME;
    }
    return sv->status;
}

static int do_listen(const strata_uri *u, const strata_uri *fwd,
                     const options *o)
{
    char err[512];
    server sv;
    int status;

    memset(&sv, 0, sizeof sv);
    sv.uri = u;
    sv.fwd = fwd;
    sv.fwd_text = o->forward;
    sv.once = o->once;
#ifdef CLI_WEB
    sv.web = web_uri(u);
    sv.web_h2 = sv.web && (fwd == NULL || o->root != NULL);
    sv.site = web_site;
#endif
    sv.lfd = strata_uri_listen(u, err, sizeof err);
    if (sv.lfd < 0) {
        say("%s", err);
        return EXIT_RUNTIME;
    }
    sv.loop = strata_loop_new(NULL);
    if (sv.loop == NULL) {
        say("out of memory");
        status = EXIT_RUNTIME;
    } else {
        status = run_server(&sv);
        sv.exiting = 1; /* every side goes below: no bridge to take down */
        while (sv.bridges != NULL)
            bridge_unlink(sv.bridges);
        while (sv.conns != NULL)
            conn_free(sv.conns);
#ifdef STRATA_WITH_H2
        while (sv.h2conns != NULL)
            h2conn_free(sv.h2conns);
        while (sv.upconns != NULL)
            upconn_free(sv.upconns);
#endif
        strata_loop_free(sv.loop);
    }
    close(sv.lfd);
    if (u->layers[u->n_layers - 1] == STRATA_LAYER_UNIX)
        unlink(u->host); /* we made the socket file; leave no litter */
    return status;
}

/* ---- arguments ---- */

static int usage_error(const char *fmt, const char *arg)
{
    fputs("strata: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\ntry 'strata --help'\n", stderr);
    return EXIT_USAGE;
}

/* One option into o. Returns 0, -1 for --help, or EXIT_USAGE. */
static int parse_option(const char *a, options *o)
{
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return -1;
    if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
        verbose = verbose > 1 ? verbose : 1;
    else if (strcmp(a, "-vv") == 0)
        verbose = 2;
    else if (strcmp(a, "--binary") == 0)
        o->binary = 1;
    else if (strcmp(a, "--echo") == 0)
        o->echo = 1;
    else if (strcmp(a, "--once") == 0)
        o->once = 1;
    else if (strcmp(a, "--deflate") == 0)
        o->deflate = 1;
    else if (strcmp(a, "--insecure") == 0)
        o->insecure = 1;
    else if (strcmp(a, "--forward-insecure") == 0)
        o->fwd_insecure = 1;
    else
        return usage_error("unknown option '%s'", a);
    return 0;
}

/* Options and the options that fit the command. */
static int check_options(const options *o)
{
    int listen = strcmp(o->command, "listen") == 0;

    if (!listen && strcmp(o->command, "connect") != 0)
        return usage_error("unknown command '%s' (connect or listen)",
                           o->command);
    if (o->uri == NULL)
        return usage_error("%s: missing URI", o->command);
    if (listen && !o->echo && o->forward == NULL)
        return usage_error("%s needs --echo or --forward URI2", "listen");
    if (listen && o->echo && o->forward != NULL)
        return usage_error("%s: either --echo or --forward, not both",
                           "listen");
    if (listen && o->binary)
        return usage_error("%s is an option of 'connect'", "--binary");
    if (!listen && (o->echo || o->once || o->forward != NULL))
        return usage_error("%s are options of 'listen'",
                           "--echo, --once and --forward");
    if (o->forward == NULL &&
        (o->fwd_cert != NULL || o->fwd_key != NULL || o->fwd_ca != NULL ||
         o->fwd_alpn != NULL || o->fwd_insecure))
        return usage_error("%s go with --forward URI2",
                           "the --forward-* options");
    if (listen && o->insecure)
        return usage_error("%s is an option of 'connect' (a server verifies "
                           "clients only with --ca)", "--insecure");
    return 0;
}

/* The options of layers fit the URI's layers. */
static int check_layer_options(const strata_uri *u, const strata_uri *fwd,
                               const options *o)
{
    int tls_opts = o->cert != NULL || o->key != NULL || o->ca != NULL ||
                   o->alpn != NULL || o->insecure;
    int fwd_tls = o->fwd_cert != NULL || o->fwd_key != NULL ||
                  o->fwd_ca != NULL || o->fwd_alpn != NULL || o->fwd_insecure;

    if ((o->deflate || o->protocol != NULL) &&
        !strata_uri_has_layer(u, STRATA_LAYER_WS) &&
        (fwd == NULL || !strata_uri_has_layer(fwd, STRATA_LAYER_WS)))
        return usage_error("%s are options of a ws URI",
                           "--deflate and --protocol");
    if (fwd_tls && !strata_uri_has_layer(fwd, STRATA_LAYER_TLS))
        return usage_error("%s are options of a --forward URI with a tls "
                           "layer", "--forward-cert, --forward-key, "
                           "--forward-ca, --forward-insecure and "
                           "--forward-alpn");
    if ((o->fwd_cert == NULL) != (o->fwd_key == NULL))
        return usage_error("%s go together: a certificate and its key",
                           "--forward-cert and --forward-key");
    if (tls_opts && !strata_uri_has_layer(u, STRATA_LAYER_TLS))
        return usage_error("%s are options of a URI with a tls layer "
                           "(tls://, wss://, lines+tls://...)",
                           "--cert, --key, --ca, --insecure and --alpn");
    if ((o->cert == NULL) != (o->key == NULL))
        return usage_error("%s go together: a certificate and its key",
                           "--cert and --key");
    if (u->server && strata_uri_has_layer(u, STRATA_LAYER_TLS) &&
        o->cert == NULL)
        return usage_error("a TLS server needs its certificate and key: %s",
                           "--cert FILE --key FILE");
    return 0;
}

/* The TLS configuration, made once for every connection; 0, or an exit
 * status after saying why. */
static int make_tls_config(strata_uri *u, const char *cert, const char *key,
                           const char *ca, const char *alpn, int insecure)
{
    char err[512];

    if (!strata_uri_has_layer(u, STRATA_LAYER_TLS))
        return 0;
    u->tls.cert = cert;
    u->tls.key = key;
    u->tls.ca = ca;
    u->tls.insecure = insecure;
    u->tls.alpn = alpn;
    if (strata_uri_tls_config(u, NULL, &u->tls.config, err, sizeof err) != 0) {
        say("%s", err);
        return EXIT_RUNTIME;
    }
    if (insecure)
        logv("tls: the server's certificate will not be verified "
             "(--%sinsecure)", u->server ? "" : "forward-");
    return 0;
}

#ifdef CLI_WEB
/* The site of a web-mode listener: its root, and the ALPN it offers
 * (both unless --alpn narrowed it). 0, or an exit status. */
static int web_setup(strata_uri *u, const options *o)
{
    const char *a = o->alpn;

    if (strata_web_site_init(&web_site, o->root) != 0) {
        say("--root %s: not a directory that can be read", o->root);
        return EXIT_RUNTIME;
    }
    if (a != NULL) {
        web_site.h2 = strstr(a, "h2") != NULL;
        web_site.http1 = strstr(a, "http/1.1") != NULL;
        if (strcmp(a, "h2") != 0 && strcmp(a, "http/1.1") != 0 &&
            strcmp(a, "h2,http/1.1") != 0 && strcmp(a, "http/1.1,h2") != 0)
            return usage_error("--alpn '%s': a wss:// or ws+h2+tls:// "
                               "listener serves h2, http/1.1 or both", a);
    }
    u->tls.alpn = strata_web_alpn(&web_site);
    return 0;
}
#endif

static int run(strata_uri *u, strata_uri *fwd, const options *o)
{
    int r = 0;

#ifdef CLI_WEB
    if (web_uri(u))
        r = web_setup(u, o);
    else if (o->root != NULL)
        r = usage_error("%s serves files on a wss:// or ws+h2+tls:// "
                        "listener", "--root");
    if (r != 0)
        return r;
    r = make_tls_config(u, o->cert, o->key, o->ca,
                        web_uri(u) ? u->tls.alpn : o->alpn, o->insecure);
#else
    r = make_tls_config(u, o->cert, o->key, o->ca, o->alpn, o->insecure);
#endif

    if (r == 0 && fwd != NULL)
        r = make_tls_config(fwd, o->fwd_cert, o->fwd_key, o->fwd_ca,
                            o->fwd_alpn, o->fwd_insecure);
    if (r == 0 && strcmp(o->command, "connect") == 0)
        r = do_connect(u, o);
    else if (r == 0)
        r = do_listen(u, fwd, o);
#ifdef STRATA_WITH_TLS
    strata_tls_config_free(u->tls.config); /* connections held their own */
    if (fwd != NULL)
        strata_tls_config_free(fwd->tls.config);
#endif
    return r;
}

/* Where the value of an option that takes one goes (and what the value
 * is called, for a message); NULL for other options. */
static const char **value_of(const char *a, options *o, const char **what)
{
    *what = "a FILE";
    if (strcmp(a, "--cert") == 0)
        return &o->cert;
    if (strcmp(a, "--key") == 0)
        return &o->key;
    if (strcmp(a, "--ca") == 0)
        return &o->ca;
    if (strcmp(a, "--forward-cert") == 0)
        return &o->fwd_cert;
    if (strcmp(a, "--forward-key") == 0)
        return &o->fwd_key;
    if (strcmp(a, "--forward-ca") == 0)
        return &o->fwd_ca;
    *what = "a DIR";
    if (strcmp(a, "--root") == 0)
        return &o->root;
    *what = "a LIST";
    if (strcmp(a, "--alpn") == 0)
        return &o->alpn;
    if (strcmp(a, "--forward-alpn") == 0)
        return &o->fwd_alpn;
    *what = "a NAME";
    if (strcmp(a, "--protocol") == 0)
        return &o->protocol;
    *what = "a URI";
    if (strcmp(a, "--forward") == 0)
        return &o->forward;
    return NULL;
}

/* Returns 0, -1 for --help, or EXIT_USAGE. */
static int parse_args(int argc, char **argv, options *o)
{
    int i, only_args = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *what = NULL, **val = NULL;
        int r;
        if (!only_args)
            val = value_of(a, o, &what);
        if (!only_args && strcmp(a, "--") == 0) {
            only_args = 1;
        } else if (val != NULL) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                char msg[64];
                snprintf(msg, sizeof msg, "%s needs %s", a, what);
                return usage_error("%s", msg);
            }
            *val = argv[++i];
        } else if (!only_args && a[0] == '-' && a[1] != '\0') {
            if ((r = parse_option(a, o)) != 0)
                return r;
        } else if (o->command == NULL) {
            o->command = a;
        } else if (o->uri == NULL) {
            o->uri = a;
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "one URI only: '%s' after '%s' (the "
                     "upstream of listen goes after --forward)", a, o->uri);
            return usage_error("%s", msg);
        }
    }
    if (o->command == NULL)
        return usage_error("%s", "missing command (connect or listen)");
    return check_options(o);
}

int main(int argc, char **argv)
{
    options o;
    strata_uri u, fwd;
    char err[512];
    int r;

    memset(&o, 0, sizeof o);
    memset(&fwd, 0, sizeof fwd);
    r = parse_args(argc, argv, &o);
    if (r == -1) {
        size_t i;
        for (i = 0; i < sizeof usage_text / sizeof usage_text[0]; i++)
            fputs(usage_text[i], stdout);
        return 0;
    }
    if (r != 0)
        return r;
    if (strata_uri_parse(o.uri, &u, err, sizeof err) != 0) {
        say("bad URI '%s': %s", o.uri, err);
        return EXIT_USAGE;
    }
    u.server = strcmp(o.command, "listen") == 0;
    if (o.forward != NULL &&
        strata_uri_parse(o.forward, &fwd, err, sizeof err) != 0) {
        say("bad --forward URI '%s': %s", o.forward, err);
        return EXIT_USAGE;
    }
    r = check_layer_options(&u, o.forward != NULL ? &fwd : NULL, &o);
    if (r != 0)
        return r;
    u.ws.deflate = fwd.ws.deflate = o.deflate;
    u.ws.protocol = fwd.ws.protocol = o.protocol;
    return run(&u, o.forward != NULL ? &fwd : NULL, &o);
}
