/* libFuzzer target for the tls layer: what a hostile peer sends to a
 * strata TLS server, or to a strata TLS client after its ClientHello.
 *
 * The first byte chooses the case; the rest is the peer's byte stream,
 * fed through a pipe pair (schedule from the first byte) into
 * strata_tls_new's layer, which is driven (handshake, recv and send
 * calls in turn) until it fails or waits for input that is not there;
 * then the peer's EOF is fed and the layer is driven to its end.
 * Checked, besides ASan/UBSan:
 *  - every status is a documented one: NEED_*, EOF, STRATA_ERR_TLS,
 *    STRATA_ERR_TOO_BIG, STRATA_ERR_TRUNCATED (the pipe below reports no
 *    error of its own);
 *  - NEED_READ is never returned while input waits unread (beyond the
 *    pipe's injected NEED codes), and after EOF the layer ends: no stall;
 *  - a failed stream stays failed: every call returns the same status,
 *    poll says POLL_ERR, strata_tls_reason is a real reason;
 *  - what the layer wrote is whole TLS records (type, version, length in
 *    range), a trailing partial record only when it failed; a client's
 *    first record is a handshake record (its ClientHello).
 * wolfSSL itself is not instrumented: coverage is strata's plumbing, and
 * the fuzzer finds inputs that make it take its rarer paths.
 *
 * Input: b0 bit 0 = role (0: we are the server, 1: the client); bits 1-2
 * = config (0: TLS 1.2 and 1.3, 1: 1.2 only, 2: 1.3 only, 3: both with
 * ALPN "h2,http/1.1", a server also asking for an optional client
 * certificate); bits 3-5 = pipe max_chunk; bits 6-7 = need percent.
 * Certificates come from tests/certs/make_certs.sh, run at build time
 * into STRATA_FUZZ_CERTS (never committed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/stream.h>
#include <strata/pipe.h>
#include <strata/tls.h>

#ifndef STRATA_FUZZ_CERTS
#error "STRATA_FUZZ_CERTS: the folder make_certs.sh wrote (set by CMake)"
#endif

#define STALL_LIMIT 10000L
#define RECORD_MAX (16384 + 2048) /* TLSCiphertext limit, RFC 5246 6.2.3 */

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

static strata_tls_config *configs[2][4];

static void must(strata_tls_config *c, int r, const char *what)
{
    if (r != 0) {
        fprintf(stderr, "fuzz_tls: %s: %s\n", what,
                strata_tls_config_reason(c));
        abort();
    }
}

static strata_tls_config *make_config(int role, int variant)
{
    static const int max_v[4] = {STRATA_TLS_1_3, STRATA_TLS_1_2,
                                 STRATA_TLS_1_3, STRATA_TLS_1_3};
    static const int min_v[4] = {STRATA_TLS_1_2, STRATA_TLS_1_2,
                                 STRATA_TLS_1_3, STRATA_TLS_1_2};
    const char *dir = STRATA_FUZZ_CERTS;
    char crt[1024], key[1024], ca[1024];
    strata_tls_config *c = strata_tls_config_new(role, NULL);

    CHECK(c != NULL);
    snprintf(crt, sizeof crt, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    must(c, strata_tls_config_versions(c, min_v[variant], max_v[variant]),
         "versions");
    if (role == STRATA_TLS_SERVER)
        must(c, strata_tls_config_cert_file(c, crt, key),
             "server certificate (did make_certs.sh run?)");
    if (role == STRATA_TLS_CLIENT || variant == 3)
        must(c, strata_tls_config_ca_file(c, ca, NULL), "CA");
    if (variant == 3) {
        must(c, strata_tls_config_alpn(c, "h2,http/1.1"), "ALPN");
        if (role == STRATA_TLS_SERVER)
            must(c, strata_tls_config_verify_client(c, 0), "verify client");
    }
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The configs are built once: loading keys per input would cost more
 * than most inputs do. They stay reachable, so no leak is reported. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int role, v;

    (void)argc;
    (void)argv;
    for (role = 0; role < 2; role++)
        for (v = 0; v < 4; v++)
            configs[role][v] = make_config(role, v);
    return 0;
}

/* What the layer wrote to the peer. */
typedef struct sink {
    uint8_t *p;
    size_t n, cap;
} sink;

typedef struct run {
    strata_stream *raw, *end, *tls;
    int role;
    int turn;               /* which entry point the next call uses */
    int by_handshake;       /* the last call was strata_tls_handshake */
    int connected;
    sink out;
} run;

static void take_output(run *r)
{
    for (;;) {
        ssize_t n;

        if (r->out.n == r->out.cap) {
            r->out.cap = r->out.cap * 2 + 4096;
            r->out.p = realloc(r->out.p, r->out.cap);
            CHECK(r->out.p != NULL);
        }
        n = strata_read(r->raw, r->out.p + r->out.n, r->out.cap - r->out.n);
        if (n > 0)
            r->out.n += (size_t)n;
        else if (n != STRATA_NEED_READ || strata_pipe_pending(r->raw) == 0)
            return;
    }
}

static void put_all(strata_stream *s, const uint8_t *p, size_t len)
{
    long stalls = 0;

    while (len > 0) {
        ssize_t n = strata_write(s, p, len);

        if (n == STRATA_NEED_READ || n == STRATA_NEED_WRITE) {
            CHECK(++stalls < STALL_LIMIT);
            continue;
        }
        CHECK(n > 0 && (size_t)n <= len);
        p += n;
        len -= (size_t)n;
    }
}

static int documented(ssize_t r)
{
    return r == STRATA_NEED_READ || r == STRATA_NEED_WRITE ||
           r == STRATA_EOF || r == STRATA_ERR_TLS ||
           r == STRATA_ERR_TOO_BIG || r == STRATA_ERR_TRUNCATED;
}

/* One call through one of the three entry points that run a handshake;
 * after it, recv and send move data. Returns a status, or 1 for bytes. */
static ssize_t call(run *r)
{
    char buf[512];
    unsigned fl = 0;
    ssize_t n;

    r->by_handshake = r->turn % 3 == 0;
    switch (r->turn++ % 3) {
    case 0:
        n = strata_tls_handshake(r->tls);
        if (n == 0) {
            r->connected = 1;
            return 1;
        }
        break;
    case 1:
        n = strata_recv(r->tls, buf, sizeof buf, &fl);
        CHECK(n != 0 && fl == 0 && (n < 0 || (size_t)n <= sizeof buf));
        break;
    default:
        /* the same byte every time: a retry after NEED is the same send */
        n = strata_send(r->tls, "x", 1, 0);
        CHECK(n != 0);
        break;
    }
    if (n > 0) {
        r->connected = 1;
        return 1;
    }
    CHECK(documented(n));
    CHECK(n != STRATA_EOF || r->connected);
    return n;
}

/* Drive the layer until a final status, or (before EOF) until it waits
 * for input that is not there. No progress for STALL_LIMIT calls in a
 * row is a stall: the layer waits for something that cannot come. */
static ssize_t drive(run *r, int eof_fed)
{
    long stalls = 0;

    for (;;) {
        size_t pending = strata_pipe_pending(r->end), out = r->out.n;
        ssize_t n = call(r);
        unsigned w = strata_wants(r->tls);

        (void)strata_poll(r->tls, STRATA_POLL_IN | STRATA_POLL_OUT);
        if (n == 1) {
            stalls = 0;
            continue;
        }
        if (n != STRATA_NEED_READ && n != STRATA_NEED_WRITE)
            return n;
        /* recv and send record their NEED for the event loop; the
         * explicit handshake call returns it and records nothing */
        if (!r->by_handshake)
            CHECK(w & (n == STRATA_NEED_READ ? STRATA_WANT_READ
                                             : STRATA_WANT_WRITE));
        take_output(r);
        if (n == STRATA_NEED_READ && !eof_fed &&
            strata_pipe_pending(r->end) == 0)
            return n;
        if (pending != strata_pipe_pending(r->end) || out != r->out.n)
            stalls = 0;
        else
            CHECK(++stalls < STALL_LIMIT);
    }
}

/* Whole records, in range; a partial last one only after a failure (an
 * alert wolfSSL could not finish sending). */
static void check_records(const run *r, ssize_t final)
{
    const uint8_t *p = r->out.p;
    size_t pos = 0;

    /* a client's first bytes are its ClientHello; they may still sit in
     * the layer when an early answer made it fail (a peer that did not
     * wait for it) */
    if (r->role == STRATA_TLS_CLIENT)
        CHECK(r->out.n == 0 || p[0] == 22);
    while (r->out.n - pos >= 5) {
        size_t len = (size_t)p[pos + 3] << 8 | p[pos + 4];

        CHECK(p[pos] >= 20 && p[pos] <= 23);
        /* 3.0 too: wolfSSL answers an SSL 3.0 ClientHello's version
         * with a protocol_version alert in that record version */
        CHECK(p[pos + 1] == 3 && p[pos + 2] <= 4);
        CHECK(len <= RECORD_MAX);
        if (r->out.n - pos - 5 < len)
            break;
        pos += 5 + len;
    }
    CHECK(pos == r->out.n || final != STRATA_EOF);
}

/* A failed stream stays failed, whatever is called. */
static void check_failed(run *r, ssize_t final)
{
    char buf[16];
    const char *why = strata_tls_reason(r->tls);

    CHECK(why != NULL && *why != '\0');
    if (final == STRATA_EOF)
        return;
    CHECK(strcmp(why, "no error") != 0);
    CHECK(strata_tls_handshake(r->tls) == final);
    CHECK(strata_recv(r->tls, buf, sizeof buf, NULL) == final);
    CHECK(strata_send(r->tls, "x", 1, 0) == final);
    CHECK(strata_flush(r->tls) == final);
    CHECK(strata_shutdown(r->tls) == final);
    CHECK(strata_tls_key_update(r->tls) == final);
    CHECK(strata_poll(r->tls, STRATA_POLL_IN) & STRATA_POLL_ERR);
    /* wolfSSL's code may be 0 (a close_notify in the handshake has none),
     * but a record over the limit is its LENGTH_ERROR */
    if (final == STRATA_ERR_TOO_BIG)
        CHECK(strata_tls_error(r->tls) != 0);
}

/* The getters must be safe in any state; before a handshake they say so. */
static void check_getters(run *r)
{
    int sent = strata_tls_alert_sent(r->tls);
    int got = strata_tls_alert_received(r->tls);

    CHECK(sent >= -1 && sent <= 255 && got >= -1 && got <= 255);
    if (!r->connected) {
        CHECK(strata_tls_version(r->tls) == NULL);
        CHECK(strata_tls_cipher(r->tls) == NULL);
        CHECK(strata_tls_alpn(r->tls) == NULL);
        CHECK(!strata_tls_peer_verified(r->tls));
        CHECK(strata_tls_session_get(r->tls) == NULL);
    }
    (void)strata_tls_sni(r->tls);
}

static void open_run(run *r, uint8_t mode, size_t size)
{
    static const size_t chunks[8] = {0, 1, 2, 3, 5, 16, 300, 4096};
    static const unsigned needs[4] = {0, 5, 20, 40};
    strata_pipe_opts po;
    strata_tls_opts to;

    memset(r, 0, sizeof *r);
    memset(&po, 0, sizeof po);
    po.capacity = size + 65536;
    po.max_chunk = chunks[(mode >> 3) & 7];
    po.need_percent = needs[mode >> 6];
    po.seed = (uint64_t)size << 8 | mode;
    CHECK(strata_pipe_pair(&r->raw, &r->end, &po, NULL) == 0);
    memset(&to, 0, sizeof to);
    to.server_name = "localhost";
    r->role = mode & 1 ? STRATA_TLS_CLIENT : STRATA_TLS_SERVER;
    r->tls = strata_tls_new(r->end, configs[r->role][(mode >> 1) & 3],
                            r->role == STRATA_TLS_CLIENT ? &to : NULL, NULL);
    CHECK(r->tls != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run r;
    ssize_t st;

    if (size < 1)
        return 0;
    open_run(&r, data[0], size);
    if (r.role == STRATA_TLS_CLIENT)    /* its ClientHello goes first */
        (void)drive(&r, 0);
    put_all(r.raw, data + 1, size - 1);
    st = drive(&r, 0);
    if (st == STRATA_NEED_READ) {
        CHECK(strata_shutdown(r.raw) == 0);
        st = drive(&r, 1);
    }
    take_output(&r);
    CHECK(st < 0 && st != STRATA_NEED_READ && st != STRATA_NEED_WRITE);
    check_failed(&r, st);
    check_getters(&r);
    check_records(&r, st);
    strata_free(r.tls);
    strata_free(r.raw);
    free(r.out.p);
    return 0;
}
