/* Writes the seed corpus of fuzz_tls: real handshake bytes of a strata
 * client and server, captured over a pipe pair, each behind the mode byte
 * fuzz_tls reads (see its header), plus a few hand-made hostile inputs.
 * Seeds hold only public bytes (hellos, certificates, encrypted flights).
 *
 * Usage: make_tls_seeds OUTDIR (built on demand in the fuzz build:
 * cmake --build build/fuzz --target make_tls_seeds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/tls.h>

/* Mode bytes: bit 0 role (1: fuzz the client), bits 1-2 config. */
enum { SERVER = 0, CLIENT = 1, V12 = 2, V13 = 4, ALPN = 6 };
enum { CHUNK1_NEED20 = 1 << 3 | 2 << 6 };

typedef struct bytes {
    unsigned char p[65536];
    size_t n;
} bytes;

static const char *dir;    /* the certificates */
static const char *outdir;

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "make_tls_seeds: %s\n", what);
    exit(1);
}

/* Config `variant` of fuzz_tls for a role (the same meaning there). */
static strata_tls_config *config(int role, int variant)
{
    strata_tls_config *c = strata_tls_config_new(role, NULL);
    char a[1024], b[1024];
    int ok = c != NULL;

    snprintf(a, sizeof a, "%s/server.pem", dir);
    snprintf(b, sizeof b, "%s/server.key", dir);
    if (ok && role == STRATA_TLS_SERVER)
        ok = strata_tls_config_cert_file(c, a, b) == 0;
    snprintf(a, sizeof a, "%s/ca.pem", dir);
    if (ok && (role == STRATA_TLS_CLIENT || variant == 3))
        ok = strata_tls_config_ca_file(c, a, NULL) == 0;
    if (ok && variant == 1)
        ok = strata_tls_config_versions(c, STRATA_TLS_1_2,
                                        STRATA_TLS_1_2) == 0;
    if (ok && variant == 2)
        ok = strata_tls_config_versions(c, STRATA_TLS_1_3,
                                        STRATA_TLS_1_3) == 0;
    if (ok && variant == 3)
        ok = strata_tls_config_alpn(c, "h2,http/1.1") == 0 &&
             (role == STRATA_TLS_CLIENT ||
              strata_tls_config_verify_client(c, 0) == 0);
    if (!ok)
        die(c ? strata_tls_config_reason(c) : "config");
    return c;
}

/* Everything waiting at a pipe end. */
static void take(strata_stream *end, bytes *b)
{
    ssize_t r;

    b->n = 0;
    while ((r = strata_read(end, b->p + b->n, sizeof b->p - b->n)) > 0)
        b->n += (size_t)r;
}

static void give(strata_stream *end, const bytes *b)
{
    if (strata_write(end, b->p, b->n) != (ssize_t)b->n)
        die("pipe full");
}

/* One step of a handshake: it must wait for the peer, or be done. */
static void step(strata_stream *tls)
{
    int r = strata_tls_handshake(tls);

    if (r != 0 && r != STRATA_NEED_READ)
        die(strata_tls_reason(tls));
}

/* Run a handshake flight by flight, two pipe pairs apart so that every
 * flight is captured: the ClientHello, the server's answer, the client's
 * second flight. */
static void capture(int cvar, int svar, bytes *hello, bytes *answer,
                    bytes *second)
{
    strata_tls_config *cc = config(STRATA_TLS_CLIENT, cvar);
    strata_tls_config *sc = config(STRATA_TLS_SERVER, svar);
    strata_stream *c_end, *c_raw, *s_end, *s_raw, *c, *s;
    strata_tls_opts o;

    memset(&o, 0, sizeof o);
    o.server_name = "localhost";
    if (strata_pipe_pair(&c_end, &c_raw, NULL, NULL) != 0 ||
        strata_pipe_pair(&s_end, &s_raw, NULL, NULL) != 0)
        die("pipe pair");
    c = strata_tls_new(c_end, cc, &o, NULL);
    s = strata_tls_new(s_end, sc, NULL, NULL);
    if (!c || !s)
        die("tls stream");
    step(c);
    take(c_raw, hello);
    give(s_raw, hello);
    step(s);
    take(s_raw, answer);
    give(c_raw, answer);
    step(c);
    take(c_raw, second);
    strata_free(c);
    strata_free(s);
    strata_free(c_raw);
    strata_free(s_raw);
    strata_tls_config_free(cc);
    strata_tls_config_free(sc);
}

static void put(const char *name, unsigned char mode, const void *a,
                size_t na, const void *b, size_t nb)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (!f || fputc(mode, f) == EOF || fwrite(a, 1, na, f) != na ||
        (nb && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0)
        die(path);
}

static void handshakes(void)
{
    static bytes h, a, s;

    capture(0, 0, &h, &a, &s);
    put("ch13", SERVER, h.p, h.n, NULL, 0);
    put("ch13_full", SERVER, h.p, h.n, s.p, s.n);
    put("ch13_chunk1", SERVER | CHUNK1_NEED20, h.p, h.n, NULL, 0);
    put("ch13_to_tls12_server", SERVER | V12, h.p, h.n, NULL, 0);
    put("ch13_truncated", SERVER, h.p, h.n / 2, NULL, 0);
    put("sh13", CLIENT, a.p, a.n, NULL, 0);
    put("sh13_chunk1", CLIENT | CHUNK1_NEED20, a.p, a.n, NULL, 0);
    capture(1, 0, &h, &a, &s);
    put("ch12", SERVER, h.p, h.n, NULL, 0);
    put("ch12_full", SERVER, h.p, h.n, s.p, s.n);
    put("sh12", CLIENT | V12, a.p, a.n, NULL, 0);
    capture(3, 3, &h, &a, &s);
    put("ch13_alpn", SERVER | ALPN, h.p, h.n, NULL, 0);
    put("sh13_alpn_certreq", CLIENT | ALPN, a.p, a.n, NULL, 0);
}

/* Inputs no real peer sends. */
static void hostile(void)
{
    /* a handshake record header over the 2^14 + 2048 limit */
    static const unsigned char big[21] = {22, 3, 3, 0x48, 0x01};
    /* a fatal handshake_failure alert instead of a ServerHello */
    static const unsigned char alert[7] = {21, 3, 3, 0, 2, 2, 40};
    static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

    put("record_oversize", SERVER, big, sizeof big, NULL, 0);
    put("record_oversize_client", CLIENT, big, sizeof big, NULL, 0);
    put("alert_to_client", CLIENT, alert, sizeof alert, NULL, 0);
    put("http_get", SERVER, get, sizeof get - 1, NULL, 0);
    put("http_response", CLIENT, resp, sizeof resp - 1, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    dir = STRATA_FUZZ_CERTS;
    outdir = argv[1];
    handshakes();
    hostile();
    return 0;
}
