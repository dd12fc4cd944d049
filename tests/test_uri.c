/* URI stacks: every accepted form, every refusal and its reason text, and
 * that the built stacks carry messages end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strata/blocking.h>
#include <strata/pipe.h>
#include <strata/socket.h>
#include <strata/stream.h>
#include <strata/uri.h>
#ifdef STRATA_WITH_WS
#include <strata/ws.h>
#endif

#define TCP STRATA_LAYER_TCP
#define UNIX STRATA_LAYER_UNIX
#define LINES STRATA_LAYER_LINES
#define LEN STRATA_LAYER_LEN
#define WS STRATA_LAYER_WS

#ifdef STRATA_WITH_WS
#define KNOWN "(known: tcp, lines, len, ws)"
#else
#define KNOWN "(known: tcp, lines, len)"
#endif

typedef struct accepted {
    const char *text;
    int n;
    strata_layer_kind layers[4];
    const char *host, *port, *path;
} accepted;

static const accepted good[] = {
    { "tcp://h:1", 1, { TCP }, "h", "1", "" },
    { "tcp://127.0.0.1:7000", 1, { TCP }, "127.0.0.1", "7000", "" },
    { "tcp://localhost:0", 1, { TCP }, "localhost", "0", "" },
    { "tcp://h:65535", 1, { TCP }, "h", "65535", "" },
    { "lines+tcp://h:80", 2, { LINES, TCP }, "h", "80", "" },
    { "lines://h:80", 2, { LINES, TCP }, "h", "80", "" },
    { "len://h:80", 2, { LEN, TCP }, "h", "80", "" },
    { "len+tcp://h:80", 2, { LEN, TCP }, "h", "80", "" },
    { "len+lines://h:80", 3, { LEN, LINES, TCP }, "h", "80", "" },
    { "lines+len+tcp://h:80", 3, { LINES, LEN, TCP }, "h", "80", "" },
    { "tcp://h:80/", 1, { TCP }, "h", "80", "/" },
    { "lines://h:80/a/b?c", 2, { LINES, TCP }, "h", "80", "/a/b?c" },
    { "tcp://[::1]:9000", 1, { TCP }, "::1", "9000", "" },
    { "len://[fe80::1%lo]:9/x", 2, { LEN, TCP }, "fe80::1%lo", "9", "/x" },
    { "unix:///tmp/x.sock", 1, { UNIX }, "/tmp/x.sock", "", "" },
    { "lines+unix:///path", 2, { LINES, UNIX }, "/path", "", "" },
    { "len+lines+unix:///p", 3, { LEN, LINES, UNIX }, "/p", "", "" },
    { "unix://rel.sock", 1, { UNIX }, "rel.sock", "", "" },
#ifdef STRATA_WITH_WS
    { "ws://h:80/chat", 2, { WS, TCP }, "h", "80", "/chat" },
    { "ws://h:80", 2, { WS, TCP }, "h", "80", "" },
    { "ws+tcp://h:80/a?b=c", 2, { WS, TCP }, "h", "80", "/a?b=c" },
    { "ws://[::1]:9/x", 2, { WS, TCP }, "::1", "9", "/x" },
    { "ws+unix:///tmp/w.sock", 2, { WS, UNIX }, "/tmp/w.sock", "", "" },
#endif
};

static void test_accepted_forms(void **state)
{
    size_t i;
    int j;

    (void)state;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        const accepted *a = &good[i];
        char err[256] = "untouched";
        strata_uri u;
        int r = strata_uri_parse(a->text, &u, err, sizeof err);
        if (r != 0)
            fail_msg("'%s' refused: %s", a->text, err);
        assert_string_equal(err, "");
        assert_int_equal(u.n_layers, a->n);
        for (j = 0; j < a->n; j++)
            assert_int_equal(u.layers[j], a->layers[j]);
        assert_string_equal(u.host, a->host);
        assert_string_equal(u.port, a->port);
        assert_string_equal(u.path, a->path);
    }
}

typedef struct refused {
    const char *text;
    const char *reason;
} refused;

static const refused bad[] = {
    { "", "empty URI" },
    { "h:80", "missing '://' (expected LAYERS://HOST:PORT)" },
    { "tcp:/h:80", "missing '://' (expected LAYERS://HOST:PORT)" },
    { "foo://h:80", "unknown layer 'foo' " KNOWN },
    { "lines+foo://h:80", "unknown layer 'foo' " KNOWN },
    { "TCP://h:80", "unknown layer 'TCP' " KNOWN },
    { "WS://h:80", "unknown layer 'WS' " KNOWN },
    { "://h:80", "empty layer name" },
    { "lines+://h:80", "empty layer name" },
    { "+tcp://h:80", "empty layer name" },
    { "lines++tcp://h:80", "empty layer name" },
    { "tls://h:80", "layer 'tls' is not built in this version" },
    { "h2+tls://h:80", "layer 'h2' is not built in this version" },
    { "grpc+h2+tls://h:80", "layer 'grpc' is not built in this version" },
#ifdef STRATA_WITH_WS
    { "lines+ws+tcp://h:80", "'ws' must be the top (first) layer: no layer "
      "goes above WebSocket messages yet, found 'lines' above it" },
    { "len+ws://h:80", "'ws' must be the top (first) layer: no layer "
      "goes above WebSocket messages yet, found 'len' above it" },
    { "ws+lines://h:80", "'ws' goes right on the transport (tcp or unix), "
      "found 'lines' below it" },
    { "ws+len+unix:///p", "'ws' goes right on the transport (tcp or unix), "
      "found 'len' below it" },
    { "ws+ws://h:80", "layer 'ws' given twice" },
    { "tcp+ws://h:80",
      "'tcp' must be the bottom (last) layer, found 'ws' below it" },
    { "ws://h", "missing port (expected HOST:PORT)" },
    { "ws://h/chat", "missing port (expected HOST:PORT)" },
    { "ws+unix://", "missing socket path (unix:///PATH)" },
    { "ws+tls://h:80", "layer 'tls' is not built in this version" },
#else
    { "ws://h:80", "layer 'ws' is not built in this version" },
    { "lines+ws+tcp://h:80", "layer 'ws' is not built in this version" },
    { "ws+unix:///p", "layer 'ws' is not built in this version" },
#endif
    { "lines+lines://h:80", "layer 'lines' given twice" },
    { "len+lines+len://h:80", "layer 'len' given twice" },
    { "tcp+tcp://h:80", "layer 'tcp' given twice" },
    { "tcp+lines://h:80",
      "'tcp' must be the bottom (last) layer, found 'lines' below it" },
    { "unix+len:///p",
      "'unix' must be the bottom (last) layer, found 'len' below it" },
    { "unix+tcp://h:80",
      "'unix' must be the bottom (last) layer, found 'tcp' below it" },
    { "tcp+unix:///p",
      "'tcp' must be the bottom (last) layer, found 'unix' below it" },
    { "tcp://h", "missing port (expected HOST:PORT)" },
    { "tcp://h/x", "missing port (expected HOST:PORT)" },
    { "tcp://h:", "missing port (expected HOST:PORT)" },
    { "tcp://h:/x", "missing port (expected HOST:PORT)" },
    { "tcp://[::1]", "missing port (expected HOST:PORT)" },
    { "tcp://[::1]:", "missing port (expected HOST:PORT)" },
    { "tcp://:80", "empty host" },
    { "tcp://", "empty host" },
    { "lines://[]:80", "empty host" },
    { "tcp://[::1:80", "'[' without ']' in host" },
    { "tcp://[::1]80", "expected ':' after ']'" },
    { "tcp://::1:80", "an IPv6 address goes in brackets: [ADDR]:PORT" },
    { "tcp://h:1:2", "an IPv6 address goes in brackets: [ADDR]:PORT" },
    { "tcp://h:http", "port 'http' is not a number in 0..65535" },
    { "tcp://h:65536", "port '65536' is not a number in 0..65535" },
    { "tcp://h:123456", "port '123456' is not a number in 0..65535" },
    { "tcp://h:-1", "port '-1' is not a number in 0..65535" },
    { "tcp://h:8 0", "port '8 0' is not a number in 0..65535" },
    { "unix://", "missing socket path (unix:///PATH)" },
    { "lines+unix://", "missing socket path (unix:///PATH)" },
};

static void test_refusals(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        strata_uri u;
        int r = strata_uri_parse(bad[i].text, &u, err, sizeof err);
        if (r != STRATA_ERR_ARG || strcmp(err, bad[i].reason) != 0)
            fail_msg("'%s': got %d \"%s\", want \"%s\"", bad[i].text, r, err,
                     bad[i].reason);
    }
}

/* Over-long fields are refused with their limit, never truncated. */
static void test_length_limits(void **state)
{
    char text[2048], err[256];
    strata_uri u;

    (void)state;
    snprintf(text, sizeof text, "tcp://%0300d:80", 0);
    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_string_equal(err, "host too long (at most 255 bytes)");

    snprintf(text, sizeof text, "tcp://h:80/%01100d", 0);
    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_string_equal(err, "path too long (at most 1023 bytes)");

    snprintf(text, sizeof text, "unix:///%0200d", 0);
    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_string_equal(err, "socket path too long (at most 107 bytes)");

    /* The longest path that fits sockaddr_un is fine. */
    snprintf(text, sizeof text, "unix:///%0106d", 0);
    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.host), 107);
}

/* NULL arguments and a tiny (or absent) reason buffer are handled. */
static void test_bad_arguments(void **state)
{
    char err[8];
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse(NULL, &u, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_string_equal(err, "empty U"); /* truncated, still terminated */
    assert_int_equal(strata_uri_parse("tcp://h:1", NULL, NULL, 0),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_uri_parse("foo://h:1", &u, NULL, 0),
                     STRATA_ERR_ARG);
    assert_int_equal(strata_uri_parse("tcp://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_has_messages(NULL), 0);
}

static void test_has_messages(void **state)
{
    static const struct { const char *text; int messages; } cases[] = {
        { "tcp://h:1", 0 }, { "unix:///p", 0 }, { "lines://h:1", 1 },
        { "len+tcp://h:1", 1 }, { "lines+len://h:1", 1 },
        { "len+unix:///p", 1 },
#ifdef STRATA_WITH_WS
        { "ws://h:1/x", 1 }, { "ws+unix:///p", 1 },
#endif
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_uri u;
        assert_int_equal(strata_uri_parse(cases[i].text, &u, NULL, 0), 0);
        assert_int_equal(strata_uri_has_messages(&u), cases[i].messages);
    }
}

/* Build the URI's layers on both ends of a pipe pair and pass two
 * messages (one empty) each way. */
static void roundtrip(const char *text)
{
    char err[256], buf[64];
    strata_stream *a, *b, *ta, *tb;
    strata_uri u;
    unsigned flags;

    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, &ta, err, sizeof err), 0);
    assert_int_equal(strata_uri_stack(&u, b, NULL, &tb, err, sizeof err), 0);
    assert_int_equal(strata_write_all(ta, "hello", 5, STRATA_MSG_END, 1000),
                     5);
    assert_int_equal(strata_write_all(ta, "", 0, STRATA_MSG_END, 1000), 0);
    assert_int_equal(strata_recv_msg(tb, buf, sizeof buf, &flags, 1000), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(strata_recv_msg(tb, buf, sizeof buf, &flags, 1000), 0);
    assert_true(flags & STRATA_MSG_END);
    assert_int_equal(strata_write_all(tb, "back", 4, STRATA_MSG_END, 1000), 4);
    assert_int_equal(strata_recv_msg(ta, buf, sizeof buf, &flags, 1000), 4);
    assert_memory_equal(buf, "back", 4);
    strata_free(ta);
    strata_free(tb);
}

static void test_stack_roundtrip(void **state)
{
    (void)state;
    roundtrip("lines://h:1");
    roundtrip("len://h:1");
    roundtrip("len+unix:///p");
}

/* A bare transport URI adds no layer: the bottom is the top. */
static void test_stack_transport_only(void **state)
{
    strata_stream *a, *b, *top;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse("tcp://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, &top, NULL, 0), 0);
    assert_ptr_equal(top, a);
    strata_free(top);
    strata_free(b);
}

/* A malformed strata_uri is refused and the bottom is still freed (the
 * leak would show under valgrind / ASan). */
static void test_stack_bad_uri(void **state)
{
    char err[256];
    strata_stream *a, *b, *top = (strata_stream *)&top;
    strata_uri u;

    (void)state;
    memset(&u, 0, sizeof u);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, &top, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_null(top);
    assert_string_equal(err, "invalid arguments to strata_uri_stack");
    strata_free(b);

    assert_int_equal(strata_uri_parse("lines://h:1", &u, NULL, 0), 0);
    u.layers[1] = STRATA_LAYER_LEN; /* no transport at the bottom */
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, &top, err, sizeof err),
                     STRATA_ERR_ARG);
    strata_free(b);
    assert_int_equal(strata_uri_stack(&u, NULL, NULL, &top, NULL, 0),
                     STRATA_ERR_ARG);
}

/* An allocator that refuses after `left` allocations. */
static void *stingy_alloc(void *ud, size_t size)
{
    int *left = ud;

    if (*left <= 0)
        return NULL;
    (*left)--;
    return malloc(size);
}

static void *stingy_realloc(void *ud, void *p, size_t size)
{
    (void)ud;
    return realloc(p, size);
}

static void stingy_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

/* Every allocation failure while building is STRATA_ERR_NOMEM with the
 * layer named, and nothing leaks: the bottom (and any layer already put on
 * it) is freed. Valgrind / ASan runs check the "nothing leaks". */
static void test_stack_out_of_memory(void **state)
{
    int left, fails = 0;
    strata_allocator a = { stingy_alloc, stingy_realloc, stingy_free, &left };
    char err[256];
    strata_stream *pa, *pb, *top;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse("len+lines://h:1", &u, NULL, 0), 0);
    for (left = 0;; left = fails) {
        int r;
        assert_int_equal(strata_pipe_pair(&pa, &pb, NULL, NULL), 0);
        r = strata_uri_stack(&u, pa, &a, &top, err, sizeof err);
        strata_free(pb);
        if (r == 0)
            break;
        assert_int_equal(r, STRATA_ERR_NOMEM);
        assert_null(top);
        assert_true(strcmp(err, "out of memory building layer 'lines'") == 0 ||
                    strcmp(err, "out of memory building layer 'len'") == 0);
        fails++;
    }
    assert_true(fails >= 2); /* both layers failed at least once */
    strata_free(top);
}

/* listen + connect over loopback TCP and over a Unix socket. */
static void connect_pair(const char *fmt, const char *arg)
{
    char text[256], err[256], buf[16];
    strata_stream *client, *server_sock, *server;
    strata_uri u;
    struct pollfd p;
    unsigned flags;
    int lfd;

    snprintf(text, sizeof text, fmt, arg);
    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err), 0);
    lfd = strata_uri_listen(&u, err, sizeof err);
    if (lfd < 0)
        fail_msg("listen %s: %s", text, err);
    if (u.layers[u.n_layers - 1] == STRATA_LAYER_TCP) {
        snprintf(u.port, sizeof u.port, "%d", strata_local_port(lfd));
    }
    assert_int_equal(strata_uri_connect(&u, NULL, &client, err, sizeof err),
                     0);
    p.fd = lfd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(strata_accept(lfd, NULL, &server_sock), 0);
    assert_int_equal(strata_uri_stack(&u, server_sock, NULL, &server, err,
                                      sizeof err), 0);
    assert_int_equal(strata_write_all(client, "ping", 4, STRATA_MSG_END,
                                      5000), 4);
    assert_int_equal(strata_recv_msg(server, buf, sizeof buf, &flags, 5000),
                     4);
    assert_memory_equal(buf, "ping", 4);
    strata_free(client);
    strata_free(server);
    close(lfd);
}

static void test_connect_listen(void **state)
{
    char path[64];

    (void)state;
    connect_pair("lines+tcp://127.0.0.1:%s", "0");
    snprintf(path, sizeof path, "/tmp/strata_test_uri_%ld.sock",
             (long)getpid());
    connect_pair("len+unix://%s", path);
    unlink(path);
}

/* Transport failures name the address and the OS reason. */
static void test_connect_listen_errors(void **state)
{
    char err[256], want[64];
    strata_stream *s = (strata_stream *)&s;
    strata_uri u;
    int lfd;

    (void)state;
    assert_int_equal(strata_uri_parse("lines+unix:///nonexistent/strata.sock",
                                      &u, NULL, 0), 0);
    assert_true(strata_uri_connect(&u, NULL, &s, err, sizeof err) < 0);
    assert_null(s);
    assert_non_null(strstr(err, "cannot connect to unix socket "
                                "'/nonexistent/strata.sock': "));
    assert_true(strata_uri_listen(&u, err, sizeof err) < 0);
    assert_non_null(strstr(err, "cannot listen on unix socket "
                                "'/nonexistent/strata.sock': "));
    /* A port that is taken: the second listen must fail. */
    assert_int_equal(strata_uri_parse("tcp://127.0.0.1:0", &u, NULL, 0), 0);
    lfd = strata_uri_listen(&u, err, sizeof err);
    assert_true(lfd >= 0);
    snprintf(u.port, sizeof u.port, "%d", strata_local_port(lfd));
    assert_true(strata_uri_listen(&u, err, sizeof err) < 0);
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%s: ", u.port);
    assert_non_null(strstr(err, want));
    close(lfd);
}

#ifdef STRATA_WITH_WS
static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* Run both ends' handshakes to their end, a step each in turn: one thread
 * drives both, so no blocking helper may wait on either. */
static void drive_handshakes(strata_stream *client, strata_stream *server)
{
    uint64_t deadline = strata_now_ms() + 5000;
    int rc = STRATA_NEED_WRITE, rs = STRATA_NEED_READ;

    while (rc != 0 || rs != 0) {
        if (rc != 0)
            rc = strata_ws_handshake(client);
        if (rs != 0)
            rs = strata_ws_handshake(server);
        if ((rc != 0 && !is_need(rc)) || (rs != 0 && !is_need(rs)))
            fail_msg("handshake: client %s, server %s", strata_strerror(rc),
                     strata_strerror(rs));
        if (strata_now_ms() > deadline)
            fail_msg("handshake: not done within 5 s");
        if (rc != 0 || rs != 0)
            poll(NULL, 0, 1);
    }
}

/* A client and a server stack of one ws URI over a pipe pair. */
static void ws_pair(const char *text, int deflate, const char *protocol,
                    strata_stream **client, strata_stream **server)
{
    char err[256];
    strata_stream *a, *b;
    strata_uri u;

    assert_int_equal(strata_uri_parse(text, &u, err, sizeof err), 0);
    u.ws.deflate = deflate;
    u.ws.protocol = protocol;
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, client, err, sizeof err),
                     0);
    u.server = 1;
    assert_int_equal(strata_uri_stack(&u, b, NULL, server, err, sizeof err),
                     0);
    drive_handshakes(*client, *server);
}

/* A text message one way, a binary one back: the flags arrive. */
static void ws_exchange(strata_stream *client, strata_stream *server)
{
    char buf[64];
    unsigned flags = 0;

    assert_int_equal(strata_write_all(client, "h\xc3\xa9llo", 6,
                                      STRATA_MSG_END | STRATA_MSG_TEXT, 1000),
                     6);
    assert_int_equal(strata_recv_msg(server, buf, sizeof buf, &flags, 1000),
                     6);
    assert_memory_equal(buf, "h\xc3\xa9llo", 6);
    assert_true(flags & STRATA_MSG_TEXT);
    assert_int_equal(strata_write_all(server, "\0\1\2", 3, STRATA_MSG_END,
                                      1000), 3);
    assert_int_equal(strata_recv_msg(client, buf, sizeof buf, &flags, 1000),
                     3);
    assert_memory_equal(buf, "\0\1\2", 3);
    assert_false(flags & STRATA_MSG_TEXT);
}

/* The URI's parts reach the handshake: path, Host, options; a Unix socket
 * requests "/" of "localhost". */
static void test_ws_stack(void **state)
{
    static const struct {
        const char *text, *path, *host;
        int deflate;
        const char *protocol;
    } cases[] = {
        { "ws://h:1/chat?x=1", "/chat?x=1", "h:1", 0, NULL },
        { "ws+tcp://example.org:8080", "/", "example.org:8080", 1, NULL },
        { "ws://[::1]:9/v6", "/v6", "[::1]:9", 0, "chat.v2" },
        { "ws+unix:///tmp/w.sock", "/", "localhost", 1, "chat.v2" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_stream *c, *s;
        const strata_ws_request *req;
        const char *pc, *ps;

        ws_pair(cases[i].text, cases[i].deflate, cases[i].protocol, &c, &s);
        req = strata_ws_request_of(s);
        assert_non_null(req);
        assert_string_equal(req->path, cases[i].path);
        assert_non_null(req->host);
        assert_string_equal(req->host, cases[i].host);
        assert_int_equal(strata_ws_deflate(c), cases[i].deflate);
        assert_int_equal(strata_ws_deflate(s), cases[i].deflate);
        pc = strata_ws_protocol(c);
        ps = strata_ws_protocol(s);
        if (cases[i].protocol == NULL) {
            assert_null(pc);
            assert_null(ps);
        } else {
            assert_non_null(pc);
            assert_non_null(ps);
            assert_string_equal(pc, cases[i].protocol);
            assert_string_equal(ps, cases[i].protocol);
        }
        ws_exchange(c, s);
        strata_free(c);
        strata_free(s);
    }
}

/* Building a ws layer under a failing allocator: STRATA_ERR_NOMEM, the
 * layer named, nothing leaked (checked under ASan / valgrind). */
static void test_ws_stack_out_of_memory(void **state)
{
    int left, fails = 0;
    strata_allocator a = { stingy_alloc, stingy_realloc, stingy_free, &left };
    char err[256];
    strata_stream *pa, *pb, *top;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse("ws://h:1/x", &u, NULL, 0), 0);
    u.ws.deflate = 1;
    for (left = 0;; left = fails) {
        int r;
        assert_int_equal(strata_pipe_pair(&pa, &pb, NULL, NULL), 0);
        r = strata_uri_stack(&u, pa, &a, &top, err, sizeof err);
        strata_free(pb);
        if (r == 0)
            break;
        assert_int_equal(r, STRATA_ERR_NOMEM);
        assert_null(top);
        assert_string_equal(err, "out of memory building layer 'ws'");
        fails++;
    }
    assert_true(fails >= 1);
    strata_free(top);
}

/* strata_uri_connect builds a client whatever u.server says; the accepted
 * side with u.server set is the server. */
static void test_ws_connect_listen(void **state)
{
    char err[256];
    strata_stream *client, *sock, *server;
    strata_uri u;
    struct pollfd p;
    int lfd;

    (void)state;
    assert_int_equal(strata_uri_parse("ws://127.0.0.1:0/t", &u, err,
                                      sizeof err), 0);
    u.server = 1;
    lfd = strata_uri_listen(&u, err, sizeof err);
    if (lfd < 0)
        fail_msg("listen: %s", err);
    snprintf(u.port, sizeof u.port, "%d", strata_local_port(lfd));
    assert_int_equal(strata_uri_connect(&u, NULL, &client, err, sizeof err),
                     0);
    p.fd = lfd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(strata_accept(lfd, NULL, &sock), 0);
    assert_int_equal(strata_uri_stack(&u, sock, NULL, &server, err,
                                      sizeof err), 0);
    drive_handshakes(client, server);
    assert_string_equal(strata_ws_request_of(server)->path, "/t");
    ws_exchange(client, server);
    strata_free(client);
    strata_free(server);
    close(lfd);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_has_messages),
        cmocka_unit_test(test_stack_roundtrip),
        cmocka_unit_test(test_stack_transport_only),
        cmocka_unit_test(test_stack_bad_uri),
        cmocka_unit_test(test_stack_out_of_memory),
        cmocka_unit_test(test_connect_listen),
        cmocka_unit_test(test_connect_listen_errors),
#ifdef STRATA_WITH_WS
        cmocka_unit_test(test_ws_stack),
        cmocka_unit_test(test_ws_stack_out_of_memory),
        cmocka_unit_test(test_ws_connect_listen),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
