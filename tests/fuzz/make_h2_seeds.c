/* Writes the seed corpus of fuzz_h2: what a strata HTTP/2 client really
 * writes to a strata server (for fuzzing the server) and what the server
 * writes back (for fuzzing a client that opened GET / and a POST, as
 * fuzz_h2's client does), captured over a pipe pair by a recording layer,
 * each behind the two option bytes fuzz_h2 reads (see its header); plus
 * hand-made frames for what strata itself never sends (padding,
 * CONTINUATION, PUSH_PROMISE, informational heads, broken input).
 *
 * Usage: make_h2_seeds OUTDIR (built on demand in the fuzz build:
 * cmake --build build/fuzz --target make_h2_seeds).
 */
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/h2.h>

#include "seed_record.h"

/* fuzz_h2's first byte: bit 0 role (1: fuzz the client), bits 1-2 our
 * stream_window (64 KiB, 1, 1 KiB, 100000), bits 3-5 pipe max_chunk,
 * bits 6-7 need percent. Its second byte: bits 0-1 max streams (100, 1,
 * 2, 8), bit 2 keep the input open, bit 3 free the connection early. */
enum { SERVER = 0, CLIENT = 1 };
enum { W64K = 0 << 1, W1 = 1 << 1, W1K = 2 << 1, W100K = 3 << 1 };
enum { HOSTILE = 1 << 3 | 2 << 6 };     /* 1-byte chunks, 20% NEEDs */
enum { STREAMS1 = 1, KEEP_OPEN = 4, FREE_EARLY = 8 };

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static void add1(seed_bytes *b, unsigned c)
{
    unsigned char x = (unsigned char)c;

    seed_add(b, &x, 1);
}

/* ---- a recorded conversation ------------------------------------------- */

typedef struct conv {
    strata_h2 *c, *s;
    seed_bytes from_client, from_server;
} conv;

static void conv_open(conv *k, uint32_t client_window, uint32_t server_window,
                      const strata_h2_opts *client_opts)
{
    strata_stream *a, *b;
    strata_h2_opts co, so;

    memset(k, 0, sizeof *k);
    seed_pipe_pair(&a, &b, &k->from_client, &k->from_server);
    memset(&co, 0, sizeof co);
    co.role = STRATA_H2_CLIENT;
    co.stream_window = client_window;
    co.max_header_list = 16384;     /* as fuzz_h2's client */
    memset(&so, 0, sizeof so);
    so.role = STRATA_H2_SERVER;
    so.stream_window = server_window;
    so.max_header_list = 16384;
    k->c = strata_h2_new(a, client_opts ? client_opts : &co, NULL);
    k->s = strata_h2_new(b, &so, NULL);
    if (!k->c || !k->s)
        seed_die("strata_h2_new");
}

static void pump(conv *k, int rounds)
{
    int i;

    for (i = 0; i < rounds; i++) {
        (void)strata_h2_drive(k->c);
        (void)strata_h2_drive(k->s);
    }
}

static void conv_close(conv *k)
{
    strata_h2_free(k->c);
    strata_h2_free(k->s);
    free(k->from_client.p);
    free(k->from_server.p);
}

static strata_stream *accept_one(conv *k)
{
    strata_stream *s = NULL;
    int i;

    for (i = 0; i < 1000 && !s; i++) {
        pump(k, 1);
        s = strata_h2_accept(k->s);
    }
    if (!s)
        seed_die("no stream to accept");
    return s;
}

/* Write all of p, pumping while the window is shut. */
static void write_all(conv *k, strata_stream *s, const void *p, size_t n)
{
    const unsigned char *q = p;
    int i;

    for (i = 0; n > 0 && i < 100000; i++) {
        ssize_t r = strata_write(s, q, n);

        if (r > 0) {
            q += r;
            n -= (size_t)r;
        } else if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE) {
            pump(k, 1);
        } else {
            seed_die("write");
        }
    }
    if (n)
        seed_die("write did not finish");
}

/* Write all of p on w while r reads: the window reopens as r consumes. */
static void transfer(conv *k, strata_stream *w, strata_stream *r,
                     const void *p, size_t n)
{
    const unsigned char *q = p;
    size_t sent = 0;
    int i;

    for (i = 0; sent < n && i < 100000; i++) {
        unsigned char buf[512];
        ssize_t x = strata_write(w, q + sent, n - sent);

        if (x > 0)
            sent += (size_t)x;
        (void)strata_read(r, buf, sizeof buf);
        pump(k, 1);
    }
    if (sent != n)
        seed_die("transfer did not finish");
}

static void end(conv *k, strata_stream *s, const strata_h2_header *t,
                size_t n)
{
    int i, r = STRATA_NEED_READ;

    for (i = 0; i < 1000; i++) {
        r = t ? strata_h2_send_trailers(s, t, n) : strata_shutdown(s);
        if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            break;
        pump(k, 1);
    }
    if (r != 0)
        seed_die("end of stream");
}

/* Read until EOF or a final status, pumping meanwhile. */
static size_t read_all(conv *k, strata_stream *s)
{
    unsigned char buf[4096];
    size_t got = 0;
    int i;

    for (i = 0; i < 100000; i++) {
        ssize_t r = strata_read(s, buf, sizeof buf);

        if (r > 0)
            got += (size_t)r;
        else if (r == STRATA_NEED_READ || r == STRATA_NEED_WRITE)
            pump(k, 1);
        else
            return got;
    }
    seed_die("read did not end");
}

static const strata_h2_header req_get[] = {
    {":method", "GET"}, {":scheme", "http"}, {":authority", "fuzz"},
    {":path", "/"},
};
static const strata_h2_header req_post[] = {
    {":method", "POST"}, {":scheme", "http"}, {":authority", "fuzz"},
    {":path", "/upload"}, {"content-type", "application/octet-stream"},
};
static const strata_h2_header req_ws[] = {
    {":method", "CONNECT"}, {":protocol", "websocket"},
    {":scheme", "http"}, {":authority", "fuzz"}, {":path", "/chat"},
    {"sec-websocket-version", "13"},
};
static const strata_h2_header resp_hdr[] = {{"content-type", "text/plain"}};
static const strata_h2_header trailers[] = {{"grpc-status", "0"}};

static strata_stream *request(conv *k, const strata_h2_header *h, size_t n,
                              unsigned flags)
{
    strata_stream *s = NULL;
    int i, r = STRATA_NEED_READ;

    for (i = 0; i < 1000; i++) {
        r = strata_h2_request(k->c, h, n, flags, &s);
        if (r != STRATA_NEED_READ && r != STRATA_NEED_WRITE)
            break;
        pump(k, 1);
    }
    if (r != 0)
        seed_die("request");
    return s;
}

/* Answer a stream: read its body, respond, write, end. */
static void answer(conv *k, strata_stream *ss, int status, const char *body,
                   int with_trailers)
{
    (void)read_all(k, ss);
    if (strata_h2_respond(ss, status, resp_hdr, 1,
                          body ? 0 : STRATA_H2_END_STREAM) != 0)
        seed_die("respond");
    if (body) {
        write_all(k, ss, body, strlen(body));
        end(k, ss, with_trailers ? trailers : NULL, 1);
    }
    pump(k, 4);
}

/* ---- server-mode seeds: what a client writes ---------------------------- */

static void seed_get(void)
{
    conv k;
    strata_stream *cs, *ss;

    conv_open(&k, 0, 0, NULL);
    cs = request(&k, req_get, 4, STRATA_H2_END_STREAM);
    ss = accept_one(&k);
    answer(&k, ss, 200, "hello", 0);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    pump(&k, 4);
    seed_save("srv_get", SERVER | W64K, 0, &k.from_client);
    seed_save("srv_get_hostile", SERVER | W1K | HOSTILE, 0, &k.from_client);
    seed_save("srv_get_free_early", SERVER | W64K, FREE_EARLY | KEEP_OPEN,
              &k.from_client);
    conv_close(&k);
}

static void seed_post(int client_trailers)
{
    conv k;
    strata_stream *cs, *ss;

    conv_open(&k, 0, 0, NULL);
    cs = request(&k, req_post, 5, 0);
    write_all(&k, cs, "hello ", 6);
    write_all(&k, cs, "world", 5);
    end(&k, cs, client_trailers ? trailers : NULL, 1);
    ss = accept_one(&k);
    answer(&k, ss, 200, "echo: hello world", 1);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    pump(&k, 4);
    if (client_trailers) {
        seed_save("srv_post_trailers", SERVER | W64K, 0, &k.from_client);
    } else {
        seed_save("srv_post", SERVER | W64K, 0, &k.from_client);
        seed_save("srv_post_w1", SERVER | W1, 0, &k.from_client);
    }
    conv_close(&k);
}

static void seed_ws_connect(void)
{
    /* a masked text frame "hi" and a close frame, as a WebSocket client
     * would send them over the stream */
    static const unsigned char frame[] = {
        0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2,
        0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2,
    };
    conv k;
    strata_stream *cs, *ss;
    unsigned char buf[64];
    int i;

    conv_open(&k, 0, 0, NULL);
    pump(&k, 4);        /* the server's SETTINGS allow :protocol */
    cs = request(&k, req_ws, 6, 0);
    ss = accept_one(&k);
    if (strata_h2_respond(ss, 200, NULL, 0, 0) != 0)
        seed_die("respond");
    pump(&k, 4);
    write_all(&k, cs, frame, sizeof frame);
    for (i = 0; i < 100; i++) {
        if (strata_read(ss, buf, sizeof buf) > 0)
            break;
        pump(&k, 1);
    }
    write_all(&k, ss, "\x81\x02hi", 4);
    end(&k, cs, NULL, 0);
    end(&k, ss, NULL, 0);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    pump(&k, 4);
    seed_save("srv_ws_connect", SERVER | W64K, 0, &k.from_client);
    conv_close(&k);
}

static void seed_three_rst(void)
{
    conv k;
    strata_stream *cs[3], *ss[3];
    int i;

    conv_open(&k, 0, 0, NULL);
    for (i = 0; i < 3; i++) {
        cs[i] = request(&k, req_post, 5, 0);
        write_all(&k, cs[i], "part", 4);
    }
    for (i = 0; i < 3; i++)
        ss[i] = accept_one(&k);
    if (strata_h2_reset(cs[1], STRATA_H2_CANCEL) != 0)
        seed_die("reset");
    end(&k, cs[0], NULL, 0);
    end(&k, cs[2], NULL, 0);
    pump(&k, 4);
    answer(&k, ss[0], 200, "one", 0);
    answer(&k, ss[2], 200, "three", 1);
    for (i = 0; i < 3; i++) {
        if (i != 1)
            (void)read_all(&k, cs[i]);
        strata_free(cs[i]);
        strata_free(ss[i]);
    }
    pump(&k, 4);
    seed_save("srv_three_rst", SERVER | W64K, 0, &k.from_client);
    seed_save("srv_three_rst_1stream", SERVER | W64K, STREAMS1,
              &k.from_client);
    seed_save("srv_three_rst_hostile", SERVER | W1K | HOSTILE, 0x20,
              &k.from_client);
    conv_close(&k);
}

static void seed_ping_goaway(void)
{
    conv k;
    strata_stream *cs, *ss;

    conv_open(&k, 0, 0, NULL);
    if (strata_h2_ping(k.c) != 0 || strata_h2_ping(k.c) != 0)
        seed_die("ping");
    pump(&k, 4);
    cs = request(&k, req_get, 4, STRATA_H2_END_STREAM);
    ss = accept_one(&k);
    answer(&k, ss, 204, NULL, 0);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    (void)strata_h2_shutdown(k.c);
    pump(&k, 4);
    seed_save("srv_ping_goaway", SERVER | W64K, 0, &k.from_client);
    conv_close(&k);
}

/* Odd settings of a strata client: one stream, a 1-byte window, the
 * largest frames, a tiny header list. */
static void seed_settings_odd(void)
{
    conv k;
    strata_h2_opts co;
    strata_stream *cs, *ss;

    memset(&co, 0, sizeof co);
    co.role = STRATA_H2_CLIENT;
    co.max_concurrent_streams = 1;
    co.stream_window = 1;
    co.max_frame_size = 16777215;
    co.max_header_list = 100;
    conv_open(&k, 0, 0, &co);
    cs = request(&k, req_get, 4, STRATA_H2_END_STREAM);
    ss = accept_one(&k);
    if (strata_h2_respond(ss, 200, resp_hdr, 1, 0) != 0)
        seed_die("respond");
    transfer(&k, ss, cs, "a body through a one-byte window", 32);
    end(&k, ss, NULL, 0);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    pump(&k, 4);
    seed_save("srv_settings_odd", SERVER | W64K, 0, &k.from_client);
    conv_close(&k);
}

/* More than the server's window: the client waits for WINDOW_UPDATEs the
 * server sends as it reads. As a seed for a 1-byte window it overruns. */
static void seed_big_body(void)
{
    static unsigned char body[8000];
    conv k;
    strata_stream *cs, *ss;
    size_t i;

    for (i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)(i * 13);
    conv_open(&k, 0, 1024, NULL);
    pump(&k, 4);        /* the 1 KiB window is in force */
    cs = request(&k, req_post, 5, 0);
    ss = accept_one(&k);
    transfer(&k, cs, ss, body, sizeof body);
    end(&k, cs, NULL, 0);
    answer(&k, ss, 200, "ok", 0);
    (void)read_all(&k, cs);
    strata_free(cs);
    strata_free(ss);
    pump(&k, 4);
    seed_save("srv_big_body_w1k", SERVER | W1K, 0, &k.from_client);
    seed_save("srv_big_body_w1", SERVER | W1, 0, &k.from_client);
    conv_close(&k);
}

/* ---- client-mode seeds: what a server writes to fuzz_h2's client ------- */

typedef struct cli {
    conv k;
    strata_stream *get, *post, *sget, *spost;
} cli;

/* fuzz_h2's client: GET / with END_STREAM, then a POST with a body. */
static void cli_open(cli *c, uint32_t window)
{
    conv_open(&c->k, window, 0, NULL);
    c->get = request(&c->k, req_get, 4, STRATA_H2_END_STREAM);
    c->post = request(&c->k, req_post, 5, 0);
    write_all(&c->k, c->post, "hello", 5);
    end(&c->k, c->post, NULL, 0);
    c->sget = accept_one(&c->k);
    c->spost = accept_one(&c->k);
}

static void cli_close(cli *c, const char *name, unsigned b0, unsigned b1)
{
    strata_free(c->get);
    strata_free(c->post);
    strata_free(c->sget);
    strata_free(c->spost);
    pump(&c->k, 4);
    seed_save(name, CLIENT | b0, b1, &c->k.from_server);
    conv_close(&c->k);
}

static void seed_cli_responses(void)
{
    cli c;

    cli_open(&c, 0);
    answer(&c.k, c.sget, 200, "index", 0);
    answer(&c.k, c.spost, 201, "echo: hello", 1);
    (void)read_all(&c.k, c.get);
    (void)read_all(&c.k, c.post);
    cli_close(&c, "cli_responses", W64K, 0);
    cli_open(&c, 0);
    answer(&c.k, c.sget, 200, "index", 0);
    answer(&c.k, c.spost, 201, "echo: hello", 1);
    cli_close(&c, "cli_responses_hostile", W1K | HOSTILE, 0x10);
}

static void seed_cli_reset_goaway(void)
{
    cli c;

    cli_open(&c, 0);
    if (strata_h2_ping(c.k.s) != 0)
        seed_die("ping");
    if (strata_h2_reset(c.spost, STRATA_H2_REFUSED_STREAM) != 0)
        seed_die("reset");
    pump(&c.k, 4);
    answer(&c.k, c.sget, 404, NULL, 0);
    (void)strata_h2_shutdown(c.k.s);
    pump(&c.k, 4);
    cli_close(&c, "cli_reset_goaway", W64K, 0);
}

static void seed_cli_big_response(void)
{
    static char body[8001];
    cli c;

    memset(body, 'b', sizeof body - 1);
    cli_open(&c, 1024);
    pump(&c.k, 4);
    if (strata_h2_respond(c.sget, 200, resp_hdr, 1, 0) != 0)
        seed_die("respond");
    /* the client reads as the body comes, reopening its window */
    transfer(&c.k, c.sget, c.get, body, sizeof body - 1);
    end(&c.k, c.sget, NULL, 0);
    answer(&c.k, c.spost, 200, NULL, 0);
    (void)read_all(&c.k, c.get);
    cli_close(&c, "cli_big_response_w1k", W1K, 0);
}

/* ---- hand-made frames ---------------------------------------------------- */

static void frame(seed_bytes *b, unsigned type, unsigned flags, uint32_t id,
                  const void *p, size_t n)
{
    add1(b, (unsigned)(n >> 16) & 0xff);
    add1(b, (unsigned)(n >> 8) & 0xff);
    add1(b, (unsigned)n & 0xff);
    add1(b, type);
    add1(b, flags);
    add1(b, (id >> 24) & 0x7f);
    add1(b, (id >> 16) & 0xff);
    add1(b, (id >> 8) & 0xff);
    add1(b, id & 0xff);
    seed_add(b, p, n);
}

enum { DATA = 0, HEADERS = 1, PRIORITY = 2, RST = 3, SETTINGS = 4,
       PUSH = 5, PING = 6, GOAWAY = 7, WINUP = 8, CONT = 9 };
enum { END_STREAM = 1, ACK = 1, END_HEADERS = 4, PADDED = 8 };

/* HPACK integer with an n-bit prefix (RFC 7541 5.1). */
static void hint(seed_bytes *b, unsigned first, int bits, size_t v)
{
    size_t max = (1u << bits) - 1;

    if (v < max) {
        add1(b, first | (unsigned)v);
        return;
    }
    add1(b, first | (unsigned)max);
    v -= max;
    while (v >= 128) {
        add1(b, (unsigned)(v & 0x7f) | 0x80);
        v >>= 7;
    }
    add1(b, (unsigned)v);
}

/* A literal field without indexing, new name (RFC 7541 6.2.2). */
static void hlit(seed_bytes *b, const char *name, const char *value,
                 size_t vlen)
{
    add1(b, 0);
    hint(b, 0, 7, strlen(name));
    seed_add(b, name, strlen(name));
    hint(b, 0, 7, vlen);
    seed_add(b, value, vlen);
}

/* :method (0x82 GET, 0x83 POST), :scheme http, :path /, :authority fuzz */
static void hreq(seed_bytes *b, int post)
{
    add1(b, post ? 0x83 : 0x82);
    add1(b, 0x86);
    add1(b, 0x84);
    add1(b, 0x01);      /* literal, indexed name 1 (:authority) */
    hint(b, 0, 7, 4);
    seed_add(b, "fuzz", 4);
}

static void settings(seed_bytes *b, const unsigned *kv, size_t n)
{
    seed_bytes p = {NULL, 0, 0};
    size_t i;

    for (i = 0; i < n; i += 2) {
        add1(&p, kv[i] >> 8);
        add1(&p, kv[i] & 0xff);
        add1(&p, (kv[i + 1] >> 24) & 0xff);
        add1(&p, (kv[i + 1] >> 16) & 0xff);
        add1(&p, (kv[i + 1] >> 8) & 0xff);
        add1(&p, kv[i + 1] & 0xff);
    }
    frame(b, SETTINGS, 0, 0, p.p, p.n);
    free(p.p);
}

static void u32(seed_bytes *b, uint32_t v)
{
    add1(b, v >> 24);
    add1(b, (v >> 16) & 0xff);
    add1(b, (v >> 8) & 0xff);
    add1(b, v & 0xff);
}

static void client_start(seed_bytes *b)
{
    seed_add(b, PREFACE, 24);
    settings(b, NULL, 0);
}

static void seed_hand_made(void)
{
    seed_bytes b = {NULL, 0, 0}, h = {NULL, 0, 0};
    static const unsigned odd[] = {
        1, 0,               /* HEADER_TABLE_SIZE 0 */
        2, 0,               /* ENABLE_PUSH 0 */
        3, 1,               /* MAX_CONCURRENT_STREAMS 1 */
        4, 0,               /* INITIAL_WINDOW_SIZE 0: we cannot send */
        5, 16777215,        /* MAX_FRAME_SIZE at its top */
        6, 1,               /* MAX_HEADER_LIST_SIZE 1 */
        8, 1,               /* ENABLE_CONNECT_PROTOCOL from a client */
        0x99, 7,            /* unknown: ignored */
    };
    static const unsigned char garbage[] = {
        0xff, 0xff, 0xff, 0xff, 0x7f, 0x80, 0x00, 0x3f, 0xe1, 0x1f, 0xbe,
    };
    static const unsigned char big[2000] = {0};
    size_t i;

    seed_add(&b, "GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n", 30);
    seed_save("bad_preface", SERVER, 0, &b);
    b.n = 0;

    client_start(&b);
    frame(&b, HEADERS, END_HEADERS | END_STREAM, 1, garbage, sizeof garbage);
    seed_save("bad_hpack", SERVER, 0, &b);
    b.n = 0;

    client_start(&b);
    frame(&b, DATA, 0, 0, "hi", 2);
    seed_save("bad_data_stream0", SERVER, 0, &b);
    b.n = 0;

    /* odd settings, then a GET that the window 0 leaves unanswerable */
    seed_add(&b, PREFACE, 24);
    settings(&b, odd, sizeof odd / sizeof odd[0]);
    h.n = 0;
    hreq(&h, 0);
    frame(&b, HEADERS, END_HEADERS | END_STREAM, 1, h.p, h.n);
    frame(&b, SETTINGS, ACK, 0, NULL, 0);
    frame(&b, WINUP, 0, 1, "\0\0\0\x05", 4);
    seed_save("odd_settings", SERVER, 0, &b);
    b.n = 0;

    /* padding, CONTINUATION, padded DATA, trailers, PRIORITY, a window
     * update of 0 */
    client_start(&b);
    frame(&b, SETTINGS, ACK, 0, NULL, 0);
    h.n = 0;
    hreq(&h, 1);        /* its last 2 bytes go in a CONTINUATION */
    {
        seed_bytes f = {NULL, 0, 0};

        add1(&f, 3);    /* pad length */
        seed_add(&f, h.p, h.n - 2);
        seed_add(&f, "\0\0\0", 3);
        frame(&b, HEADERS, PADDED, 1, f.p, f.n);
        frame(&b, CONT, END_HEADERS, 1, h.p + h.n - 2, 2);
        free(f.p);
    }
    frame(&b, DATA, PADDED, 1, "\x04" "abcdef" "\0\0\0\0", 11);
    frame(&b, DATA, 0, 1, "ghij", 4);
    h.n = 0;
    hlit(&h, "x-checksum", "1234", 4);
    frame(&b, HEADERS, END_HEADERS | END_STREAM, 1, h.p, h.n);
    frame(&b, PRIORITY, 0, 3, "\0\0\0\x01\x10", 5);
    frame(&b, WINUP, 0, 0, "\0\0\x10\0", 4);
    frame(&b, WINUP, 0, 1, "\0\0\0\0", 4);
    frame(&b, PING, 0, 0, "12345678", 8);
    seed_save("padded_continuation_trailers", SERVER, 0, &b);
    seed_save("padded_continuation_trailers_hostile", SERVER | W1 | HOSTILE, 0,
              &b);
    b.n = 0;

    /* past the window: the SETTINGS ACK puts our 1 KiB in force, then
     * 2000 bytes arrive; stream 3 goes on */
    client_start(&b);
    frame(&b, SETTINGS, ACK, 0, NULL, 0);
    h.n = 0;
    hreq(&h, 1);
    frame(&b, HEADERS, END_HEADERS, 1, h.p, h.n);
    frame(&b, HEADERS, END_HEADERS, 3, h.p, h.n);
    frame(&b, DATA, 0, 1, big, sizeof big);
    frame(&b, DATA, 0, 3, big, 1000);
    frame(&b, DATA, END_STREAM, 3, big, 24);
    seed_save("flow_overrun_w1k", SERVER | W1K, 0, &b);
    b.n = 0;

    /* more streams than allowed, a RST on an idle one, GOAWAY */
    client_start(&b);
    h.n = 0;
    hreq(&h, 0);
    for (i = 1; i <= 9; i += 2)
        frame(&b, HEADERS, END_HEADERS | END_STREAM, (uint32_t)i, h.p,
              h.n);
    frame(&b, RST, 0, 3, "\0\0\0\x08", 4);
    h.n = 0;
    u32(&h, 9);
    u32(&h, 0);
    frame(&b, GOAWAY, 0, 0, h.p, h.n);
    seed_save("many_streams_1", SERVER, STREAMS1, &b);
    seed_save("many_streams", SERVER, 0, &b);
    frame(&b, RST, 0, 11, "\0\0\0\x08", 4);     /* idle: a connection error */
    seed_save("rst_idle", SERVER, 0, &b);
    b.n = 0;

    /* a head over our 16 KiB header list, across CONTINUATION frames */
    client_start(&b);
    {
        static char v[20000];

        memset(v, 'v', sizeof v);
        h.n = 0;
        hreq(&h, 0);
        hlit(&h, "x-big", v, sizeof v);
        frame(&b, HEADERS, END_STREAM, 1, h.p, 16384);
        frame(&b, CONT, END_HEADERS, 1, h.p + 16384, h.n - 16384);
        h.n = 0;
        hreq(&h, 0);
        frame(&b, HEADERS, END_HEADERS | END_STREAM, 3, h.p, h.n);
    }
    seed_save("header_too_big", SERVER, 0, &b);
    b.n = 0;

    /* to the client: SETTINGS, a PUSH_PROMISE and the pushed response,
     * an informational head, DATA, trailers */
    settings(&b, NULL, 0);
    frame(&b, SETTINGS, ACK, 0, NULL, 0);
    h.n = 0;
    u32(&h, 2);
    hreq(&h, 0);
    frame(&b, PUSH, END_HEADERS, 1, h.p, h.n);
    h.n = 0;
    add1(&h, 0x08);     /* literal, indexed name 8 (:status) */
    hint(&h, 0, 7, 3);
    seed_add(&h, "103", 3);
    frame(&b, HEADERS, END_HEADERS, 1, h.p, h.n);
    frame(&b, HEADERS, END_HEADERS, 1, "\x88", 1);     /* :status 200 */
    frame(&b, HEADERS, END_HEADERS, 2, "\x88", 1);
    frame(&b, DATA, END_STREAM, 2, "pushed", 6);
    frame(&b, DATA, PADDED, 1, "\x02" "body" "\0\0", 7);
    h.n = 0;
    hlit(&h, "grpc-status", "0", 1);
    frame(&b, HEADERS, END_HEADERS | END_STREAM, 1, h.p, h.n);
    frame(&b, HEADERS, END_HEADERS, 3, "\x8d", 1);     /* :status 404 */
    frame(&b, DATA, 0, 3, "not found", 9);
    frame(&b, RST, 0, 3, "\0\0\0\x02", 4);
    h.n = 0;
    u32(&h, 3);
    u32(&h, 1);
    frame(&b, GOAWAY, 0, 0, h.p, h.n);
    seed_save("cli_push_informational", CLIENT, 0, &b);
    b.n = 0;

    /* to the client: DATA before any SETTINGS, then DATA before a head */
    frame(&b, DATA, 0, 1, "early", 5);
    seed_save("cli_bad_first_frame", CLIENT, 0, &b);
    b.n = 0;
    settings(&b, NULL, 0);
    frame(&b, DATA, END_STREAM, 1, "early", 5);
    frame(&b, HEADERS, END_HEADERS | END_STREAM, 3, "\x88", 1);
    seed_save("cli_data_before_head", CLIENT, 0, &b);

    free(b.p);
    free(h.p);
}

int main(int argc, char **argv)
{
    seed_start("make_h2_seeds", argc, argv);
    seed_get();
    seed_post(0);
    seed_post(1);
    seed_ws_connect();
    seed_three_rst();
    seed_ping_goaway();
    seed_settings_odd();
    seed_big_body();
    seed_cli_responses();
    seed_cli_reset_goaway();
    seed_cli_big_response();
    seed_hand_made();
    return 0;
}
