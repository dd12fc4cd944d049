/* Writes the seed corpus of fuzz_grpc: what a strata gRPC client really
 * writes to a strata gRPC server (for fuzzing the server) and what the
 * server writes back to a client that opened fuzz_grpc's two calls (for
 * fuzzing the client), captured over a pipe pair by a recording layer,
 * each behind the two option bytes fuzz_grpc reads (see its header).
 * Exchanges: unary and bidi calls with messages, gzip both ways,
 * metadata with "-bin" values, statuses with messages and trailers,
 * trailers-only answers, an unknown method, a cancel.
 *
 * Usage: make_grpc_seeds OUTDIR (built on demand in the fuzz build:
 * cmake --build build/fuzz --target make_grpc_seeds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/h2.h>
#include <strata/grpc.h>

#include "seed_record.h"

/* fuzz_grpc's first byte: bit 0 mode (1: fuzz the client), bits 1-3 pipe
 * max_chunk, bits 4-5 need percent, bit 6 we send gzip, bit 7 max_recv
 * 1000. */
enum { SERVER = 0, CLIENT = 1 };
enum { HOSTILE = 1 << 1 | 2 << 4 };     /* 1-byte chunks, 20% NEEDs */
enum { GZIP = 1 << 6, SMALL = 1 << 7 };

/* ---- a recorded conversation ------------------------------------------- */

typedef struct conv {
    strata_h2 *c, *s;
    seed_bytes from_client, from_server;
    int gzip;
} conv;

static const strata_grpc_method methods[] = {
    {"/fuzz.Svc/Unary", NULL}, {"/fuzz.Svc/Bidi", NULL},
};

static void conv_open(conv *k, int gzip)
{
    strata_stream *a, *b;
    strata_h2_opts o;

    memset(k, 0, sizeof *k);
    k->gzip = gzip;
    seed_pipe_pair(&a, &b, &k->from_client, &k->from_server);
    memset(&o, 0, sizeof o);
    o.max_header_list = 16384;      /* as fuzz_grpc's */
    o.role = STRATA_H2_CLIENT;
    k->c = strata_h2_new(a, &o, NULL);
    o.role = STRATA_H2_SERVER;
    k->s = strata_h2_new(b, &o, NULL);
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

static int need(long r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE;
}

/* fuzz_grpc's client calls: Unary, then Bidi with metadata. */
static strata_stream *call(conv *k, int bidi)
{
    static const unsigned char bin[] = {0, 0xff, 1, 2};
    strata_grpc_md md[2] = {{"x-bin", bin, sizeof bin}, {"x-id", "7", 0}};
    strata_grpc_opts o;
    strata_stream *s;

    memset(&o, 0, sizeof o);
    o.path = methods[bidi].path;
    o.authority = "fuzz";
    o.encoding = k->gzip ? "gzip" : NULL;
    if (bidi) {
        o.md = md;
        o.n_md = 2;
        o.timeout_ms = 1500;
    }
    if (strata_grpc_call(k->c, &o, NULL, &s) != 0)
        seed_die("call");
    return s;
}

/* The next request as a server call (NULL if it was refused). */
static strata_stream *serve(conv *k)
{
    strata_grpc_opts so;
    strata_stream *h = NULL, *s = NULL;
    int i;

    for (i = 0; i < 1000 && !h; i++) {
        pump(k, 1);
        h = strata_h2_accept(k->s);
    }
    if (!h)
        seed_die("no request");
    memset(&so, 0, sizeof so);
    so.methods = methods;
    so.n_methods = 2;
    so.encoding = k->gzip ? "gzip" : NULL;
    (void)strata_grpc_accept(h, &so, NULL, &s);
    pump(k, 4);
    return s;
}

static void put(conv *k, strata_stream *s, const char *msg)
{
    size_t n = strlen(msg), off = 0;
    int i;

    for (i = 0; i < 100000 && off < n + (n == 0); i++) {
        ssize_t w = strata_send(s, msg + off, n - off, STRATA_MSG_END);

        if (w >= 0) {
            off += (size_t)w;
            if (n == 0)
                break;
        } else if (!need(w)) {
            seed_die("send");
        }
        pump(k, 1);
    }
}

/* Read whole messages until the end, pumping meanwhile. */
static void drain(conv *k, strata_stream *s)
{
    unsigned char buf[4096];
    int i;

    for (i = 0; i < 100000; i++) {
        ssize_t r = strata_recv(s, buf, sizeof buf, NULL);

        if (r >= 0)
            continue;
        if (!need(r))
            return;
        pump(k, 1);
    }
    seed_die("read did not end");
}

static void half_close(conv *k, strata_stream *s)
{
    int i;

    for (i = 0; i < 1000 && need(strata_shutdown(s)); i++)
        pump(k, 1);
    pump(k, 2);
}

static void finish(conv *k, strata_stream *s, int status, const char *msg)
{
    static const unsigned char bin[] = {0xde, 0xad, 0, 0xff};
    strata_grpc_md md[2] = {{"trace-bin", bin, sizeof bin},
                            {"x-note", "done", 0}};
    int i;

    for (i = 0; i < 1000 && need(strata_grpc_finish(s, status, msg, md, 2));
         i++)
        pump(k, 1);
    pump(k, 4);
}

/* The two calls answered in full; seeds for both sides. */
static void seed_exchange(int gzip, int status)
{
    conv k;
    strata_stream *u, *b, *su, *sb;
    char name[64];

    conv_open(&k, gzip);
    u = call(&k, 0);
    b = call(&k, 1);
    put(&k, u, "unary request");
    half_close(&k, u);
    put(&k, b, "ping one");
    put(&k, b, "");
    su = serve(&k);
    sb = serve(&k);
    drain(&k, su);
    put(&k, su, "unary answer");
    finish(&k, su, STRATA_GRPC_OK, NULL);
    put(&k, sb, "pong one");
    put(&k, sb, "");
    put(&k, b, "ping two, a little longer than the first one was");
    half_close(&k, b);
    drain(&k, sb);
    put(&k, sb, "pong two");
    finish(&k, sb, status, status ? "failed: 100% \xe2\x98\xba" : NULL);
    drain(&k, u);
    drain(&k, b);
    strata_free(u);
    strata_free(b);
    strata_free(su);
    strata_free(sb);
    pump(&k, 4);
    snprintf(name, sizeof name, "srv_exchange%s%s", gzip ? "_gzip" : "",
             status ? "_status" : "");
    seed_save(name, SERVER | (gzip ? GZIP : 0), 0, &k.from_client);
    snprintf(name, sizeof name, "cli_exchange%s%s", gzip ? "_gzip" : "",
             status ? "_status" : "");
    seed_save(name, CLIENT | (gzip ? GZIP : 0), 0, &k.from_server);
    if (!gzip && !status) {
        seed_save("srv_exchange_hostile", SERVER | HOSTILE, 7, &k.from_client);
        seed_save("cli_exchange_hostile", CLIENT | HOSTILE, 7, &k.from_server);
        seed_save("srv_exchange_small", SERVER | SMALL, 3, &k.from_client);
    }
    conv_close(&k);
}

/* Trailers-only answers, a server cancel, and a bigger message. */
static void seed_trailers_only(void)
{
    static char big[3000];
    conv k;
    strata_stream *u, *b, *su, *sb;

    memset(big, 'z', sizeof big - 1);
    conv_open(&k, 0);
    u = call(&k, 0);
    b = call(&k, 1);
    put(&k, u, big);
    half_close(&k, u);
    su = serve(&k);
    sb = serve(&k);
    finish(&k, su, STRATA_GRPC_NOT_FOUND, "no such thing");
    put(&k, sb, "before the cancel");
    (void)strata_grpc_cancel(sb);
    pump(&k, 4);
    drain(&k, u);
    drain(&k, b);
    strata_free(u);
    strata_free(b);
    strata_free(su);
    strata_free(sb);
    pump(&k, 4);
    seed_save("srv_big_message", SERVER, 1, &k.from_client);
    seed_save("cli_trailers_only_cancel", CLIENT, 1, &k.from_server);
    seed_save("cli_trailers_only_small", CLIENT | SMALL, 2, &k.from_server);
    conv_close(&k);
}

/* A request for a method the server does not have, and a client cancel. */
static void seed_unknown_and_cancel(void)
{
    conv k;
    strata_stream *x, *b, *sb;
    strata_grpc_opts o;

    conv_open(&k, 0);
    memset(&o, 0, sizeof o);
    o.path = "/fuzz.Svc/Nope";
    o.authority = "fuzz";
    if (strata_grpc_call(k.c, &o, NULL, &x) != 0)
        seed_die("call");
    half_close(&k, x);
    (void)serve(&k);        /* refused: UNIMPLEMENTED */
    b = call(&k, 1);
    put(&k, b, "then cancelled");
    sb = serve(&k);
    (void)strata_grpc_cancel(b);
    pump(&k, 4);
    drain(&k, x);
    strata_free(x);
    strata_free(b);
    strata_free(sb);
    pump(&k, 4);
    seed_save("srv_unknown_cancel", SERVER, 0, &k.from_client);
    conv_close(&k);
}

int main(int argc, char **argv)
{
    seed_start("make_grpc_seeds", argc, argv);
    seed_exchange(0, 0);
    seed_exchange(1, 0);
    seed_exchange(0, STRATA_GRPC_INVALID_ARGUMENT);
    seed_exchange(1, STRATA_GRPC_INTERNAL);
    seed_trailers_only();
    seed_unknown_and_cancel();
    return 0;
}
