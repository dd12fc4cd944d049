/* URI stacks: every accepted form, every refusal and its reason text, and
 * that the built stacks carry messages end to end; with tls, the
 * configuration made from the URI's settings, its refusals, and real
 * handshakes over a pipe pair and loopback TCP. */
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
#ifdef STRATA_WITH_H2
#include <strata/h2.h>
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
#include <strata/ws_h2.h>
#endif
#ifdef STRATA_WITH_TLS
#include <strata/tls.h>

#include "harness.h"
#endif

#define TCP STRATA_LAYER_TCP
#define UNIX STRATA_LAYER_UNIX
#define LINES STRATA_LAYER_LINES
#define LEN STRATA_LAYER_LEN
#define WS STRATA_LAYER_WS
#define TLS STRATA_LAYER_TLS

#ifdef STRATA_WITH_WS
#define WS_NAME ", ws"
#else
#define WS_NAME ""
#endif
#ifdef STRATA_WITH_TLS
#define TLS_NAME ", tls"
#else
#define TLS_NAME ""
#endif
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
#define WSS_NAME ", wss"
#else
#define WSS_NAME ""
#endif
#ifdef STRATA_WITH_H2
#define H2_NAME ", h2"
#define H2 STRATA_LAYER_H2
#else
#define H2_NAME ""
#endif
#ifdef STRATA_WITH_GRPC
#define GRPC_NAME ", grpc"
#define GRPC STRATA_LAYER_GRPC
#else
#define GRPC_NAME ""
#endif
#define KNOWN "(known: tcp, lines, len" WS_NAME TLS_NAME WSS_NAME H2_NAME \
              GRPC_NAME ")"

/* What is said of ws's place depends on whether tls may go around it. */
#ifdef STRATA_WITH_TLS
#define WS_TOP "'ws' must be the top (first) layer or sit under 'tls': no " \
               "other layer goes above WebSocket messages, found '"
#ifdef STRATA_WITH_H2
#define WS_BELOW "'ws' goes right on the transport (tcp or unix) or on " \
                 "'tls' or 'h2', found '"
#else
#define WS_BELOW "'ws' goes right on the transport (tcp or unix) or on " \
                 "'tls', found '"
#endif
#else
#define WS_TOP "'ws' must be the top (first) layer: no layer goes above " \
               "WebSocket messages yet, found '"
#ifdef STRATA_WITH_H2
#define WS_BELOW "'ws' goes right on the transport (tcp or unix) or on " \
                 "'h2', found '"
#else
#define WS_BELOW "'ws' goes right on the transport (tcp or unix), found '"
#endif
#endif
#ifndef STRATA_WITH_H2
#define NOT_BUILT_H2_TLS "h2"
#else
#define NOT_BUILT_H2_TLS "tls"
#endif
/* h2 goes on what carries one connection; grpc right on h2. */
#define GRPC_ON "'grpc' goes right on 'h2' (a gRPC call is an HTTP/2 " \
                "stream), found '"
#define GRPC_TOP "'grpc' must be the top (first) layer: gRPC messages " \
                 "carry no other layer, found '"
#define H2_BELOW "'h2' goes right on the transport (tcp or unix) or on " \
                 "'tls', found '"
#define TLS_BELOW "'tls' goes right on the transport (tcp or unix), on " \
                  "'ws' or on 'h2' (a tunnel): its records are binary, " \
                  "found '"

typedef struct accepted {
    const char *text;
    int n;
    strata_layer_kind layers[6];
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
#ifdef STRATA_WITH_TLS
    { "tls://h:443", 2, { TLS, TCP }, "h", "443", "" },
    { "tls+tcp://[::1]:443", 2, { TLS, TCP }, "::1", "443", "" },
    { "lines+tls://h:1", 3, { LINES, TLS, TCP }, "h", "1", "" },
    { "len+tls+unix:///p", 3, { LEN, TLS, UNIX }, "/p", "", "" },
    { "len+lines+tls://h:1", 4, { LEN, LINES, TLS, TCP }, "h", "1", "" },
#endif
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
    { "wss://h:443/chat", 3, { WS, TLS, TCP }, "h", "443", "/chat" },
    { "ws+tls://h:443", 3, { WS, TLS, TCP }, "h", "443", "" },
    { "wss+unix:///w", 3, { WS, TLS, UNIX }, "/w", "", "" },
    { "tls+ws://h:80/t", 3, { TLS, WS, TCP }, "h", "80", "/t" },
    { "lines+tls+ws://h:80", 4, { LINES, TLS, WS, TCP }, "h", "80", "" },
    { "len+tls+ws+unix:///u", 4, { LEN, TLS, WS, UNIX }, "/u", "", "" },
#endif
#ifdef STRATA_WITH_H2
    { "h2://h:80/echo", 2, { H2, TCP }, "h", "80", "/echo" },
    { "h2+tcp://[::1]:80", 2, { H2, TCP }, "::1", "80", "" },
    { "h2+unix:///tmp/h.sock", 2, { H2, UNIX }, "/tmp/h.sock", "", "" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_TLS)
    { "h2+tls://h:443/", 3, { H2, TLS, TCP }, "h", "443", "/" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
    { "ws+h2://h:80/chat", 3, { WS, H2, TCP }, "h", "80", "/chat" },
    { "ws+h2+unix:///w", 3, { WS, H2, UNIX }, "/w", "", "" },
#endif
#ifdef STRATA_WITH_H2
    /* byte layers ride CONNECT tunnels */
    { "lines+h2://h:1", 3, { LINES, H2, TCP }, "h", "1", "" },
    { "len+h2+unix:///p", 3, { LEN, H2, UNIX }, "/p", "", "" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_TLS)
    { "tls+h2://h:1", 3, { TLS, H2, TCP }, "h", "1", "" },
    { "lines+h2+tls://h:1", 4, { LINES, H2, TLS, TCP }, "h", "1", "" },
    { "lines+tls+h2://h:1", 4, { LINES, TLS, H2, TCP }, "h", "1", "" },
    { "len+tls+h2+tls://h:1/x", 5, { LEN, TLS, H2, TLS, TCP }, "h", "1",
      "/x" },
    { "tls+h2+tls://h:1", 4, { TLS, H2, TLS, TCP }, "h", "1", "" },
#endif
#ifdef STRATA_WITH_GRPC
    { "grpc+h2://h:80/p.S/M", 3, { GRPC, H2, TCP }, "h", "80", "/p.S/M" },
    { "grpc+h2+tls://h:443/p.S/M", 4, { GRPC, H2, TLS, TCP }, "h", "443",
      "/p.S/M" },
    { "grpc+h2+unix:///g", 3, { GRPC, H2, UNIX }, "/g", "", "" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS) && \
    defined(STRATA_WITH_TLS)
    { "ws+h2+tls://h:443/c", 4, { WS, H2, TLS, TCP }, "h", "443", "/c" },
    { "h2+tls+ws://h:80/t", 4, { H2, TLS, WS, TCP }, "h", "80", "/t" },
    { "tls+ws+h2://h:1", 4, { TLS, WS, H2, TCP }, "h", "1", "" },
    { "lines+tls+ws+h2+tls://h:1", 6, { LINES, TLS, WS, H2, TLS, TCP }, "h",
      "1", "" },
    { "wss+h2://h:1", 4, { WS, TLS, H2, TCP }, "h", "1", "" },
    { "ws+tls+h2+tls://h:1", 5, { WS, TLS, H2, TLS, TCP }, "h", "1", "" },
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
#ifdef STRATA_WITH_H2
#ifdef STRATA_WITH_GRPC
    { "grpc://h:80", GRPC_ON "tcp' below it" },
    { "grpc+lines+h2://h:80", GRPC_ON "lines' below it" },
    { "lines+grpc+h2://h:80", GRPC_TOP "lines' above it" },
    { "grpc+grpc+h2://h:80", "layer 'grpc' given twice" },
    { "h2+grpc://h:80", GRPC_TOP "h2' above it" },
#else
    { "grpc+h2://h:80", "layer 'grpc' is not built in this version" },
#endif
    { "H2://h:80", "unknown layer 'H2' " KNOWN },
    { "h2+lines://h:1", H2_BELOW "lines' below it" },
    { "h2+len+unix:///p", H2_BELOW "len' below it" },
    { "h2+h2://h:1", "layer 'h2' given twice" },
    { "tcp+h2://h:1",
      "'tcp' must be the bottom (last) layer, found 'h2' below it" },
    { "h2://h/x", "missing port (expected HOST:PORT)" },
    { "h2+unix://", "missing socket path (unix:///PATH)" },
#else
    { "h2://h:80", "layer 'h2' is not built in this version" },
    { "lines+h2://h:80", "layer 'h2' is not built in this version" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_TLS)
    { "h2+tls+lines://h:1", TLS_BELOW "lines' below it" },
    { "tls+tls+h2://h:1", "layer 'tls' given twice" },
    { "tls+h2+tls+tls://h:1", "layer 'tls' given twice" },
    { "h2+tls+h2://h:1", "layer 'h2' given twice" },
#else
    { "h2+tls://h:80", "layer '" NOT_BUILT_H2_TLS "' is not built in this "
      "version" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
    { "h2+ws://h:1", H2_BELOW "ws' below it" },
    { "lines+ws+h2://h:1", WS_TOP "lines' above it" },
    { "ws+h2+ws://h:1", "layer 'ws' given twice" },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS) && \
    defined(STRATA_WITH_TLS)
    { "ws+h2+tls+h2://h:1", "layer 'h2' given twice" },
#endif
#ifndef STRATA_WITH_GRPC
    { "grpc+h2+tls://h:80", "layer 'grpc' is not built in this version" },
#endif
#ifdef STRATA_WITH_TLS
    { "TLS://h:80", "unknown layer 'TLS' " KNOWN },
    { "tls+lines://h:1", TLS_BELOW "lines' below it" },
    { "tls+len+unix:///p", TLS_BELOW "len' below it" },
    { "lines+tls+len://h:1", TLS_BELOW "len' below it" },
    { "tls+tls://h:1", "layer 'tls' given twice" },
    { "tcp+tls://h:1",
      "'tcp' must be the bottom (last) layer, found 'tls' below it" },
    { "tls://h", "missing port (expected HOST:PORT)" },
    { "tls+unix://", "missing socket path (unix:///PATH)" },
#else
    { "tls://h:80", "layer 'tls' is not built in this version" },
    { "lines+tls://h:80", "layer 'tls' is not built in this version" },
    { "wss://h:80", "layer 'wss' is not built in this version" },
#endif
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
    { "WSS://h:80", "unknown layer 'WSS' " KNOWN },
    { "lines+wss://h:1", WS_TOP "lines' above it" },
    { "lines+ws+tls://h:1", WS_TOP "lines' above it" },
    { "ws+lines+tls://h:1", WS_BELOW "lines' below it" },
    { "tls+ws+len://h:1", WS_BELOW "len' below it" },
    { "wss+tls://h:1", "layer 'tls' given twice" },
    { "tls+wss://h:1", "layer 'tls' given twice" },
    { "wss+ws://h:1", "layer 'ws' given twice" },
    { "ws+tls+ws://h:1", "layer 'ws' given twice" },
    { "tcp+wss://h:1",
      "'tcp' must be the bottom (last) layer, found 'ws' below it" },
    { "wss://h/chat", "missing port (expected HOST:PORT)" },
#endif
#ifdef STRATA_WITH_WS
    { "lines+ws+tcp://h:80", WS_TOP "lines' above it" },
    { "len+ws://h:80", WS_TOP "len' above it" },
    { "ws+lines://h:80", WS_BELOW "lines' below it" },
    { "ws+len+unix:///p", WS_BELOW "len' below it" },
    { "ws+ws://h:80", "layer 'ws' given twice" },
    { "tcp+ws://h:80",
      "'tcp' must be the bottom (last) layer, found 'ws' below it" },
    { "ws://h", "missing port (expected HOST:PORT)" },
    { "ws://h/chat", "missing port (expected HOST:PORT)" },
    { "ws+unix://", "missing socket path (unix:///PATH)" },
#ifndef STRATA_WITH_TLS
    { "ws+tls://h:80", "layer 'tls' is not built in this version" },
#endif
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
#ifdef STRATA_WITH_TLS
        { "tls://h:1", 0 }, { "lines+tls://h:1", 1 }, { "len+tls://h:1", 1 },
#endif
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
        /* TLS inside a WebSocket is a byte stream */
        { "wss://h:1", 1 }, { "tls+ws://h:1", 0 }, { "lines+tls+ws://h:1", 1 },
#endif
#ifdef STRATA_WITH_H2
        /* a request's body is a byte stream */
        { "h2://h:1/", 0 }, { "h2+unix:///p", 0 },
#endif
#if defined(STRATA_WITH_H2) && defined(STRATA_WITH_WS)
        { "ws+h2://h:1/", 1 },
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

/* A hand-made layer list the parser would refuse is refused by the
 * builder too: a layer this build lacks, or one in a place it cannot
 * work (tls on lines, lines on ws). */
static void test_stack_hand_made_orders(void **state)
{
    static const struct { int n; strata_layer_kind k[3]; } orders[] = {
        { 3, { LINES, WS, TCP } }, /* refused, or not built */
        { 3, { TLS, LINES, TCP } },
        { 3, { WS, LEN, TCP } },
        { 2, { (strata_layer_kind)99, TCP } },
        { 2, { TCP, UNIX } },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        char err[256];
        strata_stream *a, *b, *top;
        strata_uri u;

        assert_int_equal(strata_uri_parse("tcp://h:1", &u, NULL, 0), 0);
        memcpy(u.layers, orders[i].k, sizeof orders[i].k);
        u.n_layers = orders[i].n;
        assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
        assert_int_equal(strata_uri_stack(&u, a, NULL, &top, err,
                                          sizeof err), STRATA_ERR_ARG);
        assert_null(top);
        assert_string_equal(err, "invalid arguments to strata_uri_stack");
        strata_free(b);
    }
}

static void test_has_layer(void **state)
{
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_has_layer(NULL, TCP), 0);
    assert_int_equal(strata_uri_parse("lines+unix:///p", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_has_layer(&u, LINES), 1);
    assert_int_equal(strata_uri_has_layer(&u, UNIX), 1);
    assert_int_equal(strata_uri_has_layer(&u, TCP), 0);
    assert_int_equal(strata_uri_has_layer(&u, TLS), 0);
#if defined(STRATA_WITH_WS) && defined(STRATA_WITH_TLS)
    assert_int_equal(strata_uri_parse("wss://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_has_layer(&u, WS), 1);
    assert_int_equal(strata_uri_has_layer(&u, TLS), 1);
    assert_int_equal(strata_uri_has_layer(&u, TCP), 1);
    assert_int_equal(strata_uri_has_layer(&u, LINES), 0);
#endif
#ifdef STRATA_WITH_H2
    assert_int_equal(strata_uri_parse("h2://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_has_layer(&u, H2), 1);
    assert_int_equal(strata_uri_has_layer(&u, TLS), 0);
    assert_int_equal(strata_uri_parse("lines://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_has_layer(&u, H2), 0);
#endif
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

#if defined(STRATA_WITH_WS) || defined(STRATA_WITH_TLS) || \
    defined(STRATA_WITH_H2)
static int is_need(int r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}
#endif

#if defined(STRATA_WITH_WS) || defined(STRATA_WITH_TLS)

/* One step of every handshake in a stack, the lowest layer's first (ws
 * under tls, or tls under ws): 0 once all are done. */
static int handshake_step(strata_stream *top)
{
    strata_stream *chain[STRATA_URI_MAX_LAYERS + 2];
    int n = 0, r;

    for (; top != NULL && n < STRATA_URI_MAX_LAYERS + 2; top = top->lower)
        chain[n++] = top;
    while (n-- > 0) {
        const char *name = strata_name(chain[n]);
#ifdef STRATA_WITH_TLS
        if (strcmp(name, "tls") == 0 &&
            (r = strata_tls_handshake(chain[n])) != 0)
            return r;
#endif
#ifdef STRATA_WITH_WS
        if (strcmp(name, "ws") == 0 &&
            (r = strata_ws_handshake(chain[n])) != 0)
            return r;
#endif
        (void)name;
        (void)r;
    }
    return 0;
}

/* Run both ends' handshakes, a step each in turn, until each is done or
 * failed (the other end then learns it from an alert): one thread drives
 * both, so no blocking helper may wait on either. Returns 0 when both are
 * done, else -1 with the statuses in *rc / *rs. */
static int try_handshakes(strata_stream *client, strata_stream *server,
                          int *rc, int *rs)
{
    uint64_t deadline = strata_now_ms() + 5000;

    *rc = STRATA_NEED_WRITE;
    *rs = STRATA_NEED_READ;
    while (is_need(*rc) || is_need(*rs)) {
        if (is_need(*rc))
            *rc = handshake_step(client);
        if (is_need(*rs))
            *rs = handshake_step(server);
        if (strata_now_ms() > deadline)
            fail_msg("handshake: not done within 5 s (client %s, server %s)",
                     strata_strerror(*rc), strata_strerror(*rs));
        if (is_need(*rc) || is_need(*rs))
            poll(NULL, 0, 1);
    }
    return *rc == 0 && *rs == 0 ? 0 : -1;
}

/* What a failed end knows of why: its tls layer's reason, if it has one. */
static const char *why_failed(strata_stream *s)
{
#ifdef STRATA_WITH_TLS
    for (; s != NULL; s = s->lower)
        if (strcmp(strata_name(s), "tls") == 0)
            return strata_tls_reason(s);
#else
    (void)s;
#endif
    return "";
}

static void drive_handshakes(strata_stream *client, strata_stream *server)
{
    int rc, rs;

    if (try_handshakes(client, server, &rc, &rs) != 0)
        fail_msg("handshake: client %s %s, server %s %s", strata_strerror(rc),
                 why_failed(client), strata_strerror(rs), why_failed(server));
}
#endif

#ifdef STRATA_WITH_WS

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

#ifdef STRATA_WITH_TLS
static char cert_paths[4][512];

/* A test certificate's path; a slot per name used at once. */
static const char *cert(int slot, const char *name)
{
    return strata_test_cert(cert_paths[slot], sizeof cert_paths[slot], name);
}

/* The tls layer of a stack, wherever it sits. */
static strata_stream *tls_of(strata_stream *s)
{
    while (s != NULL && strcmp(strata_name(s), "tls") != 0)
        s = s->lower;
    assert_non_null(s);
    return s;
}

typedef struct tls_refusal {
    int server;
    const char *cert, *key, *ca; /* names in the certificate folder */
    int insecure;
    const char *alpn;
    const char *reason;          /* the start of the reason */
} tls_refusal;

/* Settings that cannot make a configuration, each with its reason; the
 * same reason from strata_uri_stack, which then frees the bottom. */
static void test_tls_config_refusals(void **state)
{
    static const tls_refusal cases[] = {
        { 1, NULL, NULL, NULL, 0, NULL, "a tls server needs a certificate "
          "and its key (tls.cert and tls.key)" },
        { 1, "server.pem", NULL, NULL, 0, NULL, "a tls server needs a "
          "certificate and its key (tls.cert and tls.key)" },
        { 0, NULL, "client.key", NULL, 0, NULL, "a tls certificate goes "
          "with its key: give both (tls.cert and tls.key)" },
        { 1, "server.pem", "server.key", NULL, 1, NULL, "'insecure' is for "
          "a tls client: a server verifies only the clients it asks a "
          "certificate of (tls.ca)" },
        { 0, NULL, NULL, "nonexistent.pem", 0, NULL, "cannot read CA file '" },
        { 1, "missing.pem", "server.key", NULL, 0, NULL,
          "cannot read certificate file '" },
        { 1, "server.key", "server.key", NULL, 0, NULL,
          "cannot load certificate '" },
        { 0, NULL, NULL, "server.key", 0, NULL, "cannot load CA file '" },
        { 0, NULL, NULL, "ca.pem", 0, ",h2", "bad ALPN list ',h2' "
          "(comma-separated protocol names, at most 255 bytes)" },
        { 1, "server.pem", "server.key", NULL, 0, "h2,,x", "bad ALPN list" },
    };
    size_t i;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tls_refusal *t = &cases[i];
        strata_tls_config *cfg = (strata_tls_config *)&cfg;
        strata_stream *a, *b, *top;
        char err[512];
        strata_uri u;

        assert_int_equal(strata_uri_parse("lines+tls://localhost:1", &u,
                                          NULL, 0), 0);
        u.server = t->server;
        u.tls.cert = t->cert != NULL ? cert(0, t->cert) : NULL;
        u.tls.key = t->key != NULL ? cert(1, t->key) : NULL;
        u.tls.ca = t->ca != NULL ? cert(2, t->ca) : NULL;
        u.tls.insecure = t->insecure;
        u.tls.alpn = t->alpn;
        if (strata_uri_tls_config(&u, NULL, &cfg, err, sizeof err) == 0 ||
            strncmp(err, t->reason, strlen(t->reason)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
                     t->reason);
        assert_null(cfg);
        assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
        assert_true(strata_uri_stack(&u, a, NULL, &top, err, sizeof err) < 0);
        assert_null(top);
        if (strncmp(err, t->reason, strlen(t->reason)) != 0)
            fail_msg("stack %zu: got \"%s\"", i, err);
        strata_free(b);
    }
}

static void test_tls_config_bad_arguments(void **state)
{
    strata_tls_config *cfg = (strata_tls_config *)&cfg;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_tls_config(NULL, NULL, &cfg, NULL, 0),
                     STRATA_ERR_ARG);
    assert_null(cfg);
    assert_int_equal(strata_uri_parse("tls://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_uri_tls_config(&u, NULL, NULL, NULL, 0),
                     STRATA_ERR_ARG);
}

/* A client config (CAs, ALPN) and a server config (certificate, ALPN)
 * made from a URI's settings. */
static void make_configs(strata_tls_config **client,
                         strata_tls_config **server)
{
    char err[512];
    strata_uri u;

    assert_int_equal(strata_uri_parse("tls://localhost:1", &u, NULL, 0), 0);
    u.tls.ca = cert(0, "ca.pem");
    u.tls.alpn = "h2,http/1.1";
    if (strata_uri_tls_config(&u, NULL, client, err, sizeof err) != 0)
        fail_msg("client config: %s", err);
    u.server = 1;
    u.tls.ca = NULL;
    u.tls.cert = cert(1, "server.pem");
    u.tls.key = cert(2, "server.key");
    u.tls.alpn = "h2";
    if (strata_uri_tls_config(&u, NULL, server, err, sizeof err) != 0)
        fail_msg("server config: %s", err);
}

/* Both ends of one URI over a pipe pair, handshakes done. The configs
 * are the caller's; each stack holds its own reference. */
static void tls_pair(const char *text, strata_tls_config *cc,
                     strata_tls_config *sc, strata_stream **client,
                     strata_stream **server)
{
    char err[256];
    strata_stream *a, *b;
    strata_uri u;

    if (strata_uri_parse(text, &u, err, sizeof err) != 0)
        fail_msg("%s: %s", text, err);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    u.tls.config = cc;
    if (strata_uri_stack(&u, a, NULL, client, err, sizeof err) != 0)
        fail_msg("%s client: %s", text, err);
    u.server = 1;
    u.tls.config = sc;
    if (strata_uri_stack(&u, b, NULL, server, err, sizeof err) != 0)
        fail_msg("%s server: %s", text, err);
    drive_handshakes(*client, *server);
}

/* "hello" one way and "back" the other: whole messages on a message
 * stack (an empty one too), plain bytes on a byte stream. */
static void exchange(strata_stream *c, strata_stream *s, int messages)
{
    char buf[64];
    unsigned flags = 0;

    assert_int_equal(strata_write_all(c, "hello", 5, STRATA_MSG_END, 1000),
                     5);
    if (messages) {
        assert_int_equal(strata_write_all(c, "", 0, STRATA_MSG_END, 1000), 0);
        assert_int_equal(strata_recv_msg(s, buf, sizeof buf, &flags, 1000),
                         5);
        assert_int_equal(strata_recv_msg(s, buf + 5, sizeof buf - 5, &flags,
                                         1000), 0);
        assert_true(flags & STRATA_MSG_END);
    } else {
        assert_int_equal(strata_read_full(s, buf, 5, 1000, NULL), 5);
    }
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(strata_write_all(s, "back", 4, STRATA_MSG_END, 1000), 4);
    if (messages)
        assert_int_equal(strata_recv_msg(c, buf, sizeof buf, &flags, 1000),
                         4);
    else
        assert_int_equal(strata_read_full(c, buf, 4, 1000, NULL), 4);
    assert_memory_equal(buf, "back", 4);
}

/* Every place tls may take, over a pipe pair: the client checks the
 * certificate against the URI's host (a name or an IP address), ALPN is
 * agreed, and bytes or messages pass. The configs are freed before the
 * stacks are used: the stacks keep them alive. */
static void test_tls_stacks(void **state)
{
    static const char *const texts[] = {
        "tls://localhost:1", "tls+tcp://127.0.0.1:1",
        "lines+tls://localhost:1", "len+tls+unix:///p",
        "len+lines+tls://localhost:1",
#ifdef STRATA_WITH_WS
        "wss://localhost:1/chat", "ws+tls+unix:///p",
        "tls+ws://localhost:1/t", "lines+tls+ws://127.0.0.1:1",
        "len+tls+ws+unix:///p",
#endif
    };
    size_t i;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        strata_tls_config *cc, *sc;
        strata_stream *c, *s;
        const char *alpn;
        strata_uri u;

        make_configs(&cc, &sc);
        tls_pair(texts[i], cc, sc, &c, &s);
        strata_tls_config_free(cc);
        strata_tls_config_free(sc);
        alpn = strata_tls_alpn(tls_of(c));
        assert_non_null(alpn);
        assert_string_equal(alpn, "h2");
        assert_true(strata_tls_peer_verified(tls_of(c)));
        assert_int_equal(strata_uri_parse(texts[i], &u, NULL, 0), 0);
        exchange(c, s, strata_uri_has_messages(&u));
        strata_free(c);
        strata_free(s);
    }
}

/* A URI without a config of the caller's: each stack makes its own from
 * the settings. Over loopback TCP, named by IP address (checked against
 * the certificate's), with close_notify both ways at the end. */
static void test_tls_connect_listen(void **state)
{
    char text[64], err[512], buf[16];
    strata_stream *client, *sock, *server;
    strata_uri u;
    struct pollfd p;
    unsigned flags;
    int lfd;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    assert_int_equal(strata_uri_parse("lines+tls://127.0.0.1:0", &u, NULL,
                                      0), 0);
    lfd = strata_uri_listen(&u, err, sizeof err);
    assert_true(lfd >= 0);
    snprintf(text, sizeof text, "lines+tls://127.0.0.1:%d",
             strata_local_port(lfd));
    assert_int_equal(strata_uri_parse(text, &u, NULL, 0), 0);
    u.tls.ca = cert(0, "ca.pem");
    if (strata_uri_connect(&u, NULL, &client, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    p.fd = lfd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(strata_accept(lfd, NULL, &sock), 0);
    u.server = 1;
    u.tls.ca = NULL; /* else the server would ask for client certificates */
    u.tls.cert = cert(1, "server.pem");
    u.tls.key = cert(2, "server.key");
    if (strata_uri_stack(&u, sock, NULL, &server, err, sizeof err) != 0)
        fail_msg("server stack: %s", err);
    drive_handshakes(client, server);
    assert_true(strata_tls_peer_verified(tls_of(client)));
    assert_int_equal(strata_write_all(client, "ping", 4, STRATA_MSG_END,
                                      5000), 4);
    assert_int_equal(strata_recv_msg(server, buf, sizeof buf, &flags, 5000),
                     4);
    assert_memory_equal(buf, "ping", 4);
    /* close_notify: the end of a direction, seen as EOF */
    assert_int_equal(strata_shutdown(client), 0);
    assert_int_equal(strata_recv_msg(server, buf, sizeof buf, &flags, 5000),
                     STRATA_EOF);
    assert_int_equal(strata_shutdown(server), 0);
    assert_int_equal(strata_recv_msg(client, buf, sizeof buf, &flags, 5000),
                     STRATA_EOF);
    strata_free(client);
    strata_free(server);
    close(lfd);
}

/* The client checks the certificate against the URI's host: a server
 * whose certificate names only other.test is refused under 'localhost'
 * and under 127.0.0.1, and told so by an alert (bad_certificate). */
static void test_tls_name_checked(void **state)
{
    static const char *const texts[] = {
        "tls://localhost:1", "tls://127.0.0.1:1",
#ifdef STRATA_WITH_WS
        "wss://localhost:1/",
#endif
    };
    size_t i;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char err[512];
        strata_stream *a, *b, *c, *s;
        strata_uri u;
        int rc, rs;

        assert_int_equal(strata_uri_parse(texts[i], &u, NULL, 0), 0);
        u.tls.ca = cert(0, "ca.pem");
        assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
        assert_int_equal(strata_uri_stack(&u, a, NULL, &c, err, sizeof err),
                         0);
        u.server = 1;
        u.tls.ca = NULL;
        u.tls.cert = cert(1, "other.pem");
        u.tls.key = cert(2, "other.key");
        assert_int_equal(strata_uri_stack(&u, b, NULL, &s, err, sizeof err),
                         0);
        assert_int_equal(try_handshakes(c, s, &rc, &rs), -1);
        assert_int_equal(rc, STRATA_ERR_TLS);
        assert_int_equal(rs, STRATA_ERR_TLS);
        if (strstr(strata_tls_reason(tls_of(c)), "mismatch") == NULL)
            fail_msg("%s: reason \"%s\"", texts[i],
                     strata_tls_reason(tls_of(c)));
        assert_int_equal(strata_tls_alert_sent(tls_of(c)), 42);
        assert_int_equal(strata_tls_alert_received(tls_of(s)), 42);
        strata_free(c);
        strata_free(s);
    }
}

/* Building a tls stack under a failing allocator: STRATA_ERR_NOMEM with
 * what failed named, nothing leaked (ASan / valgrind), with the caller's
 * config and with one made for the stack. */
static void test_tls_stack_out_of_memory(void **state)
{
    int own;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    for (own = 0; own < 2; own++) {
        int left, fails = 0;
        strata_allocator a = { stingy_alloc, stingy_realloc, stingy_free,
                               &left };
        strata_tls_config *cfg = NULL;
        strata_stream *pa, *pb, *top;
        char err[256];
        strata_uri u;

        assert_int_equal(strata_uri_parse("lines+tls://localhost:1", &u,
                                          NULL, 0), 0);
        u.tls.ca = cert(0, "ca.pem");
        if (own)
            assert_int_equal(strata_uri_tls_config(&u, NULL, &cfg, err,
                                                   sizeof err), 0);
        u.tls.config = cfg;
        for (left = 0;; left = fails) {
            int r;
            assert_int_equal(strata_pipe_pair(&pa, &pb, NULL, NULL), 0);
            r = strata_uri_stack(&u, pa, &a, &top, err, sizeof err);
            strata_free(pb);
            if (r == 0)
                break;
            assert_int_equal(r, STRATA_ERR_NOMEM);
            assert_null(top);
            if (strcmp(err, "out of memory building layer 'lines'") != 0 &&
                strcmp(err, "out of memory building layer 'tls'") != 0 &&
                strcmp(err, "out of memory making the tls configuration") !=
                    0)
                fail_msg("reason: %s", err);
            fails++;
        }
        assert_true(fails >= 2);
        strata_free(top);
        strata_tls_config_free(cfg);
    }
}
#endif

#ifdef STRATA_WITH_H2
/* Drive both connections once each; with neither moving, pause a
 * millisecond (over TCP the peer's bytes may be in flight). */
static void h2_step(strata_h2 *a, strata_h2 *b)
{
    int ra = strata_h2_drive(a), rb = strata_h2_drive(b);

    if (ra != 0 && rb != 0)
        poll(NULL, 0, 1);
}

/* Retry `call` while it returns a NEED code, stepping both connections
 * between tries, for at most 5 s. */
#define H2_RETRY(a, b, r, call)                                        \
    do {                                                               \
        uint64_t until_ = strata_now_ms() + 5000;                      \
        while (is_need((r) = (call)) && strata_now_ms() < until_)      \
            h2_step((a), (b));                                         \
    } while (0)

/* Both ends of one h2 URI over a pipe pair: the client's connection and
 * the server's. Of u->tls, the client takes ca and alpn, the server cert,
 * key and server_alpn (NULL: the default). */
static int h2_pair_alpn(strata_uri *u, const char *server_alpn,
                        strata_h2 **client, strata_h2 **server,
                        strata_stream **cbelow, strata_stream **sbelow)
{
    strata_uri_tls t = u->tls;
    char err[512];
    strata_stream *a, *b;

    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    u->server = 0;
    u->tls.cert = u->tls.key = NULL;
    if (strata_uri_h2_stack(u, a, NULL, client, cbelow, err, sizeof err) !=
        0)
        fail_msg("client: %s", err);
    u->server = 1;
    u->tls = t;
    u->tls.ca = NULL; /* else the server would ask for client certificates */
    u->tls.alpn = server_alpn;
    if (strata_uri_h2_stack(u, b, NULL, server, sbelow, err, sizeof err) !=
        0)
        fail_msg("server: %s", err);
    u->server = 0;
    u->tls = t;
    return 0;
}

static void h2_pair(strata_uri *u, strata_h2 **client, strata_h2 **server,
                    strata_stream **cbelow, strata_stream **sbelow)
{
    h2_pair_alpn(u, NULL, client, server, cbelow, sbelow);
}

/* The server's side of one request: the head it saw, the body, an answer
 * with `back` as its body. */
static void h2_serve_one(strata_h2 *hc, strata_h2 *hs, const char *path,
                         const char *authority, const char *scheme,
                         const char *body, const char *back)
{
    strata_stream *srv = NULL;
    char buf[64];
    ssize_t n;
    int r;

    for (r = 0; srv == NULL && r < 5000; r++) {
        h2_step(hc, hs);
        srv = strata_h2_accept(hs);
    }
    assert_non_null(srv);
    assert_string_equal(strata_h2_get(srv, ":method"), "POST");
    assert_string_equal(strata_h2_get(srv, ":path"), path);
    assert_string_equal(strata_h2_get(srv, ":authority"), authority);
    assert_string_equal(strata_h2_get(srv, ":scheme"), scheme);
    H2_RETRY(hc, hs, n, strata_read(srv, buf, sizeof buf));
    assert_int_equal(n, (ssize_t)strlen(body));
    assert_memory_equal(buf, body, (size_t)n);
    H2_RETRY(hc, hs, n, strata_read(srv, buf, sizeof buf));
    assert_int_equal(n, STRATA_EOF);
    assert_int_equal(strata_h2_respond(srv, 200, NULL, 0, 0), 0);
    H2_RETRY(hc, hs, n, strata_send(srv, back, strlen(back), 0));
    assert_int_equal(n, (ssize_t)strlen(back));
    H2_RETRY(hc, hs, r, strata_shutdown(srv));
    assert_int_equal(r, 0);
    strata_free(srv);
}

/* The client's side: open the URI's request, send body, get back. */
static void h2_request(strata_uri *u, strata_h2 *hc, strata_h2 *hs,
                       const char *path, const char *authority,
                       const char *scheme, const char *body,
                       const char *back)
{
    strata_stream *req = NULL;
    char err[512], buf[64];
    ssize_t n;
    int r;

    r = strata_uri_h2_open(u, hc, NULL, &req, err, sizeof err);
    if (r != 0)
        fail_msg("open: %s", err);
    assert_string_equal(strata_name(req), "h2");
    assert_ptr_equal(strata_h2_of(req), hc);
    H2_RETRY(hc, hs, n, strata_send(req, body, strlen(body), 0));
    assert_int_equal(n, (ssize_t)strlen(body));
    H2_RETRY(hc, hs, r, strata_shutdown(req));
    assert_int_equal(r, 0);
    h2_serve_one(hc, hs, path, authority, scheme, body, back);
    H2_RETRY(hc, hs, n, strata_read(req, buf, sizeof buf));
    assert_int_equal(n, (ssize_t)strlen(back));
    assert_memory_equal(buf, back, (size_t)n);
    assert_int_equal(strata_h2_status(req), 200);
    H2_RETRY(hc, hs, n, strata_read(req, buf, sizeof buf));
    assert_int_equal(n, STRATA_EOF);
    strata_free(req);
}

/* h2:// is a POST to the URI's path, :authority from its host and port. */
static void test_h2_request(void **state)
{
    static const struct {
        const char *text, *path, *authority;
    } cases[] = {
        { "h2://example.org:8080/echo?x=1", "/echo?x=1", "example.org:8080" },
        { "h2://[::1]:9", "/", "[::1]:9" },
        { "h2+unix:///tmp/h2.sock", "/", "localhost" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_stream *below;
        strata_h2 *hc, *hs;
        strata_uri u;

        assert_int_equal(strata_uri_parse(cases[i].text, &u, NULL, 0), 0);
        h2_pair(&u, &hc, &hs, &below, NULL);
        assert_string_equal(strata_name(below), "pipe");
        h2_request(&u, hc, hs, cases[i].path, cases[i].authority, "http",
                   "hello", "back");
        /* a second stream on the same connection */
        h2_request(&u, hc, hs, cases[i].path, cases[i].authority, "http",
                   "again", "more");
        strata_h2_free(hc);
        strata_h2_free(hs);
    }
}

/* An h2 URI is not one stream: the one-stream calls refuse it and say
 * what to use; the h2 calls refuse other URIs. Bottoms are freed. */
static void test_h2_refusals(void **state)
{
    char err[256];
    strata_stream *a, *b, *top = (strata_stream *)&top;
    strata_h2 *h = (strata_h2 *)&h;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse("h2://127.0.0.1:1/", &u, NULL, 0), 0);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_stack(&u, a, NULL, &top, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_null(top);
    assert_string_equal(err, "an h2 URI is a connection with streams: build "
                        "it with strata_uri_h2_connect or "
                        "strata_uri_h2_stack, then strata_uri_h2_open");
    assert_int_equal(strata_uri_connect(&u, NULL, &top, err, sizeof err),
                     STRATA_ERR_ARG);
    assert_non_null(strstr(err, "strata_uri_h2_connect"));
    strata_free(b);

    assert_int_equal(strata_uri_parse("lines://h:1", &u, NULL, 0), 0);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_h2_stack(&u, a, NULL, &h, NULL, err,
                                         sizeof err), STRATA_ERR_ARG);
    assert_null(h);
    assert_string_equal(err, "invalid arguments to strata_uri_h2_stack");
    strata_free(b);
    assert_int_equal(strata_uri_h2_connect(&u, NULL, &h, NULL, err,
                                           sizeof err), STRATA_ERR_ARG);
    assert_string_equal(err, "invalid arguments to strata_uri_h2_connect");
    assert_int_equal(strata_uri_h2_open(&u, NULL, NULL, &top, err,
                                        sizeof err), STRATA_ERR_ARG);
    assert_int_equal(strata_uri_parse("h2://h:1", &u, NULL, 0), 0);
    top = NULL;
    assert_int_equal(strata_uri_h2_open(&u, NULL, NULL, &top, err,
                                        sizeof err), STRATA_ERR_ARG);
    assert_string_equal(err, "invalid arguments to strata_uri_h2_open");
    assert_int_equal(strata_uri_h2_stack(&u, NULL, NULL, &h, NULL, err,
                                         sizeof err), STRATA_ERR_ARG);
}

/* Building an h2 connection under a failing allocator: STRATA_ERR_NOMEM,
 * the layer named, nothing leaked (ASan / valgrind). */
static void test_h2_stack_out_of_memory(void **state)
{
    int left, fails = 0;
    strata_allocator a = { stingy_alloc, stingy_realloc, stingy_free, &left };
    char err[256];
    strata_stream *pa, *pb;
    strata_h2 *h;
    strata_uri u;

    (void)state;
    assert_int_equal(strata_uri_parse("h2://h:1/x", &u, NULL, 0), 0);
    for (left = 0;; left = fails) {
        int r;
        assert_int_equal(strata_pipe_pair(&pa, &pb, NULL, NULL), 0);
        r = strata_uri_h2_stack(&u, pa, &a, &h, NULL, err, sizeof err);
        strata_free(pb);
        if (r == 0)
            break;
        assert_int_equal(r, STRATA_ERR_NOMEM);
        assert_null(h);
        assert_string_equal(err, "out of memory building layer 'h2'");
        fails++;
    }
    assert_true(fails >= 1);
    strata_h2_free(h);
}

#ifdef STRATA_WITH_WS
/* ws+h2://: the extended CONNECT carries the URI's path, authority and
 * ws settings; what opens is a WebSocket over the stream, and a server
 * taking it with strata_ws_h2_accept talks to it. */
static void test_ws_h2_open(void **state)
{
    static const char *const protocols[] = { "chat.v2", NULL };
    strata_ws_opts so;
    strata_stream *top = NULL, *srv = NULL, *sws = NULL;
    strata_h2 *hc, *hs;
    char err[512];
    strata_uri u;
    int r, i;

    (void)state;
    memset(&so, 0, sizeof so);
    so.protocols = protocols;
    so.deflate.enable = 1;
    assert_int_equal(strata_uri_parse("ws+h2://h:1/chat", &u, NULL, 0), 0);
    u.ws.deflate = 1;
    u.ws.protocol = "chat.v2";
    h2_pair(&u, &hc, &hs, NULL, NULL);
    for (i = 0; i < 1000; i++) {
        r = strata_uri_h2_open(&u, hc, NULL, &top, err, sizeof err);
        if (!is_need(r))
            break;
        h2_step(hc, hs);
        if (srv == NULL && (srv = strata_h2_accept(hs)) != NULL) {
            assert_string_equal(strata_h2_get(srv, ":protocol"),
                                "websocket");
            assert_string_equal(strata_h2_get(srv, ":path"), "/chat");
            assert_string_equal(strata_h2_get(srv, ":authority"), "h:1");
            assert_string_equal(strata_h2_get(srv, ":scheme"), "http");
        }
        if (srv != NULL && sws == NULL) {
            int ra = strata_ws_h2_accept(srv, &so, NULL, &sws);
            if (ra != 0 && !is_need(ra))
                fail_msg("accept: %s", strata_strerror(ra));
        }
    }
    if (r != 0)
        fail_msg("open: %s", err);
    assert_non_null(sws);
    assert_string_equal(strata_name(top), "ws");
    assert_int_equal(strata_ws_deflate(top), 1);
    assert_string_equal(strata_ws_protocol(top), "chat.v2");
    ws_exchange(top, sws);
    strata_free(top);
    strata_free(sws);
    strata_h2_free(hc);
    strata_h2_free(hs);
}

/* The server's refusals reach the caller with their reasons: no extended
 * CONNECT allowed, and an answer other than 200. */
static void test_ws_h2_refused(void **state)
{
    strata_h2_opts so;
    strata_stream *a, *b, *top = NULL, *srv;
    strata_h2 *hc, *hs;
    char err[512];
    strata_uri u;
    int r, i;

    (void)state;
    assert_int_equal(strata_uri_parse("ws+h2://h:1/", &u, NULL, 0), 0);
    assert_int_equal(strata_pipe_pair(&a, &b, NULL, NULL), 0);
    assert_int_equal(strata_uri_h2_stack(&u, a, NULL, &hc, NULL, err,
                                         sizeof err), 0);
    memset(&so, 0, sizeof so);
    so.role = STRATA_H2_SERVER;
    so.no_connect_protocol = 1;
    hs = strata_h2_new(b, &so, NULL);
    assert_non_null(hs);
    for (i = 0; i < 100 && is_need(r = strata_uri_h2_open(
                                      &u, hc, NULL, &top, err, sizeof err));
         i++)
        h2_step(hc, hs);
    assert_int_equal(r, STRATA_ERR_UNSUPPORTED);
    assert_null(top);
    assert_string_equal(err, "the server does not allow WebSocket over "
                        "HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC "
                        "8441)");
    strata_h2_free(hc);
    strata_h2_free(hs);

    h2_pair(&u, &hc, &hs, NULL, NULL);
    for (i = 0; i < 1000; i++) {
        r = strata_uri_h2_open(&u, hc, NULL, &top, err, sizeof err);
        if (!is_need(r))
            break;
        h2_step(hc, hs);
        if ((srv = strata_h2_accept(hs)) != NULL) {
            assert_int_equal(strata_h2_respond(srv, 404, NULL, 0,
                                               STRATA_H2_END_STREAM), 0);
            strata_free(srv);
        }
    }
    assert_int_equal(r, STRATA_ERR_PROTO);
    assert_null(top);
    assert_string_equal(err, "the server refused the WebSocket over HTTP/2: "
                        "HTTP status 404");
    strata_h2_free(hc);
    strata_h2_free(hs);
}
#endif

#ifdef STRATA_WITH_TLS
/* h2+tls: ALPN "h2" is offered and required without being asked for, the
 * scheme is https; a server that insists on another protocol is refused
 * by the handshake (no_application_protocol). Over a pipe pair. */
static void test_h2_tls(void **state)
{
    strata_stream *cb, *sb;
    strata_h2 *hc, *hs;
    strata_uri u;
    int r, i;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    assert_int_equal(strata_uri_parse("h2+tls://localhost:8443/up", &u, NULL,
                                      0), 0);
    u.tls.ca = cert(0, "ca.pem");
    u.tls.cert = cert(1, "server.pem");
    u.tls.key = cert(2, "server.key");
    h2_pair(&u, &hc, &hs, &cb, &sb);
    assert_string_equal(strata_name(cb), "tls");
    h2_request(&u, hc, hs, "/up", "localhost:8443", "https", "hello",
               "back");
    assert_string_equal(strata_tls_alpn(cb), "h2");
    assert_string_equal(strata_tls_alpn(sb), "h2");
    strata_h2_free(hc);
    strata_h2_free(hs);

    /* The server accepts only http/1.1: no protocol in common. */
    h2_pair_alpn(&u, "http/1.1", &hc, &hs, &cb, &sb);
    for (r = 0, i = 0; i < 1000 && (r == 0 || is_need(r)); i++) {
        r = strata_h2_drive(hc);
        (void)strata_h2_drive(hs);
    }
    assert_int_equal(r, STRATA_ERR_TLS);
    assert_int_equal(strata_tls_alert_received(cb), 120);
    assert_int_equal(strata_tls_alert_sent(sb), 120);
    strata_h2_free(hc);
    strata_h2_free(hs);
}

/* strata_uri_h2_connect over loopback TCP with TLS: a request and its
 * answer, the server's certificate checked against 127.0.0.1. */
static void test_h2_tls_connect(void **state)
{
    char text[64], err[512];
    strata_stream *sock, *cb;
    strata_h2 *hc, *hs;
    struct pollfd p;
    strata_uri u;
    int lfd;

    (void)state;
    if (strata_test_certs() == NULL)
        skip();
    assert_int_equal(strata_uri_parse("h2+tls://127.0.0.1:0", &u, NULL, 0),
                     0);
    lfd = strata_uri_listen(&u, err, sizeof err);
    assert_true(lfd >= 0);
    snprintf(text, sizeof text, "h2+tls://127.0.0.1:%d/x",
             strata_local_port(lfd));
    assert_int_equal(strata_uri_parse(text, &u, NULL, 0), 0);
    u.tls.ca = cert(0, "ca.pem");
    if (strata_uri_h2_connect(&u, NULL, &hc, &cb, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    p.fd = lfd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(strata_accept(lfd, NULL, &sock), 0);
    u.server = 1;
    u.tls.ca = NULL;
    u.tls.cert = cert(1, "server.pem");
    u.tls.key = cert(2, "server.key");
    if (strata_uri_h2_stack(&u, sock, NULL, &hs, NULL, err, sizeof err) != 0)
        fail_msg("server: %s", err);
    u.server = 0;
    snprintf(text, sizeof text, "127.0.0.1:%d", strata_local_port(lfd));
    h2_request(&u, hc, hs, "/x", text, "https", "ping", "pong");
    assert_true(strata_tls_peer_verified(cb));
    strata_h2_free(hc);
    strata_h2_free(hs);
    close(lfd);
}
#endif
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
        cmocka_unit_test(test_stack_hand_made_orders),
        cmocka_unit_test(test_has_layer),
        cmocka_unit_test(test_stack_out_of_memory),
        cmocka_unit_test(test_connect_listen),
        cmocka_unit_test(test_connect_listen_errors),
#ifdef STRATA_WITH_WS
        cmocka_unit_test(test_ws_stack),
        cmocka_unit_test(test_ws_stack_out_of_memory),
        cmocka_unit_test(test_ws_connect_listen),
#endif
#ifdef STRATA_WITH_TLS
        cmocka_unit_test(test_tls_config_refusals),
        cmocka_unit_test(test_tls_config_bad_arguments),
        cmocka_unit_test(test_tls_stacks),
        cmocka_unit_test(test_tls_connect_listen),
        cmocka_unit_test(test_tls_name_checked),
        cmocka_unit_test(test_tls_stack_out_of_memory),
#endif
#ifdef STRATA_WITH_H2
        cmocka_unit_test(test_h2_request),
        cmocka_unit_test(test_h2_refusals),
        cmocka_unit_test(test_h2_stack_out_of_memory),
#ifdef STRATA_WITH_WS
        cmocka_unit_test(test_ws_h2_open),
        cmocka_unit_test(test_ws_h2_refused),
#endif
#ifdef STRATA_WITH_TLS
        cmocka_unit_test(test_h2_tls),
        cmocka_unit_test(test_h2_tls_connect),
#endif
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
